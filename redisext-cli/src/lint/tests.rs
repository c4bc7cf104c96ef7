use super::commands::{self, Access, KeySpec};
use super::*;
use redisext::Reply;
use redisext::testing::RedisServer;

/// A field of a RESP2 flat map (`[name, value, name, value, …]`).
fn field<'r>(map: &'r Reply, name: &str) -> Option<&'r Reply> {
    let Reply::Array(items) = map else { return None };
    items.chunks(2).find(|pair| matches!(&pair[0], Reply::Bulk(b) if b == name.as_bytes())).map(|pair| &pair[1])
}

fn text(reply: Option<&Reply>) -> String {
    match reply {
        Some(Reply::Bulk(bytes)) => String::from_utf8_lossy(bytes).into_owned(),
        Some(Reply::Status(status)) => status.clone(),
        other => format!("{other:?}"),
    }
}

fn number(reply: Option<&Reply>) -> i64 {
    match reply {
        Some(Reply::Int(n)) => *n,
        other => panic!("not a number: {other:?}"),
    }
}

/// A server's key specification in the lint's terms.
fn key_spec(spec: &Reply) -> KeySpec {
    let begin = field(spec, "begin_search").expect("begin_search");
    let find = field(spec, "find_keys").expect("find_keys");
    let begin_spec = field(begin, "spec");
    let find_spec = field(find, "spec");
    let unsigned = |reply| usize::try_from(number(reply)).expect("non-negative");
    match (text(field(begin, "type")).as_str(), text(field(find, "type")).as_str()) {
        ("index", "range") => {
            assert_eq!(number(field(find_spec.unwrap(), "limit")), 0, "{spec:?}");
            KeySpec::Span {
                first: unsigned(field(begin_spec.unwrap(), "index")),
                last: number(field(find_spec.unwrap(), "lastkey")),
                step: unsigned(field(find_spec.unwrap(), "keystep")),
            }
        }
        ("index", "keynum") => {
            let find_spec = find_spec.unwrap();
            assert_eq!(
                (
                    number(field(find_spec, "keynumidx")),
                    number(field(find_spec, "firstkey")),
                    number(field(find_spec, "keystep"))
                ),
                (0, 1, 1)
            );
            KeySpec::NumKeys { at: unsigned(field(begin_spec.unwrap(), "index")) }
        }
        ("keyword", "range") => {
            let find_spec = find_spec.unwrap();
            assert_eq!((number(field(find_spec, "lastkey")), number(field(find_spec, "limit"))), (-1, 2));
            let keyword = text(field(begin_spec.unwrap(), "keyword"));
            let start_from = unsigned(field(begin_spec.unwrap(), "startfrom"));
            let known = commands::all()
                .iter()
                .flat_map(|c| c.keys)
                .find_map(|k| match k {
                    KeySpec::Keyword { keyword: known, .. } if *known == keyword => Some(*known),
                    _ => None,
                })
                .expect("a keyword the table uses");
            KeySpec::Keyword { keyword: known, start_from }
        }
        other => panic!("key specification of a kind the lint does not model: {other:?}"),
    }
}

/// Every entry of the command table says what Redis itself says: the write flag
/// (as a `flags=no-writes` script meets it) and the key positions.
#[test]
fn command_table_matches_the_server() {
    let server = RedisServer::start().expect("start redis-server");
    let mut checked = 0;
    for command in commands::all() {
        let name = command.name.to_ascii_lowercase();
        let info = server.command(&["COMMAND", "INFO", &name]).expect("COMMAND INFO");
        let Reply::Array(entries) = &info else { panic!("COMMAND INFO answered {info:?}") };
        let entry = &entries[0];
        assert_ne!(entry, &Reply::Nil, "{}: the server does not know this command", command.name);
        if matches!(command.access, Access::Forbidden(_) | Access::Container) {
            continue;
        }
        let Reply::Array(parts) = entry else { panic!("{entry:?}") };
        let Reply::Array(specs) = &parts[8] else { panic!("{:?}", parts[8]) };
        let specs: Vec<KeySpec> = specs.iter().map(key_spec).collect();
        assert_eq!(specs, command.keys, "{}: key specifications", command.name);

        // Whether Redis counts it as a write: call it from a read-only script
        // with as many placeholder arguments as its arity asks.
        let Reply::Int(arity) = parts[1] else { panic!("{:?}", parts[1]) };
        let words: Vec<String> = command.name.split('|').map(str::to_owned).collect();
        let mut args: Vec<String> = words.iter().map(|w| format!("'{w}'")).collect();
        let wanted = usize::try_from(arity.unsigned_abs()).unwrap();
        while args.len() < wanted {
            args.push("'0'".to_owned());
        }
        let script = format!("#!lua flags=no-writes\nreturn redis.pcall({})", args.join(", "));
        let reply = server.command(&["EVAL", &script, "0"]);
        let refused = matches!(&reply, Err(e) if e.to_string().contains("Write commands are not allowed"));
        assert_eq!(refused, command.access == Access::Write, "{}: answered {reply:?}", command.name);
        checked += 1;
    }
    println!("{checked} commands match the server's COMMAND INFO and write checks");
    assert!(checked > 150, "only {checked} commands checked");
}

fn call_args(source: &str) -> Vec<Expr> {
    let chunk = lua::parse(source).unwrap();
    chunk.calls[0].args[1..].to_vec()
}

#[test]
fn key_positions_follow_the_specifications() {
    let positions = |source: &str| {
        let args = call_args(source);
        let chunk = lua::parse(source).unwrap();
        let name = literal(&chunk.calls[0].args[0]).unwrap().to_ascii_uppercase();
        key_positions(commands::find(&name).unwrap(), &args)
    };
    assert_eq!(positions("redis.call('SET', KEYS[1], ARGV[1])"), vec![1]);
    assert_eq!(positions("redis.call('DEL', KEYS[1], KEYS[2], KEYS[3])"), vec![1, 2, 3]);
    assert_eq!(positions("redis.call('MSET', KEYS[1], 'a', KEYS[2], 'b')"), vec![1, 3]);
    assert_eq!(positions("redis.call('ZUNIONSTORE', KEYS[1], 2, KEYS[2], KEYS[3], 'WEIGHTS', 1, 2)"), vec![1, 3, 4]);
    assert_eq!(positions("redis.call('ZUNIONSTORE', KEYS[1], n, KEYS[2], KEYS[3], 'WEIGHTS', 1, 2)"), vec![1, 3, 4]);
    assert_eq!(positions("redis.call('XREAD', 'COUNT', 5, 'STREAMS', KEYS[1], KEYS[2], '0', '0')"), vec![4, 5]);
    assert_eq!(positions("redis.call('BITOP', 'AND', KEYS[1], KEYS[2], KEYS[3])"), vec![2, 3, 4]);
    // A last argument that expands: it holds the keys the positions reach.
    assert_eq!(positions("redis.call('DEL', unpack(KEYS))"), vec![1]);
    assert_eq!(positions("redis.call('SMOVE', KEYS[1], unpack(ARGV))"), vec![1, 2]);
    assert_eq!(positions("redis.call('HSET', KEYS[1], unpack(ARGV))"), vec![1]);
    assert_eq!(positions("redis.call('TIME')"), Vec::<usize>::new());
}

/// For calls written out in full, the positions are the ones `COMMAND GETKEYS`
/// answers for the same command.
#[test]
fn key_positions_agree_with_command_getkeys() {
    let server = RedisServer::start().expect("start redis-server");
    let samples = [
        "redis.call('SET', 'k1', 'v', 'PX', '100')",
        "redis.call('MSET', 'k1', 'a', 'k2', 'b')",
        "redis.call('ZUNIONSTORE', 'k1', 2, 'k2', 'k3', 'WEIGHTS', 1, 2)",
        "redis.call('ZINTERCARD', 2, 'k1', 'k2', 'LIMIT', 5)",
        "redis.call('LMPOP', 2, 'k1', 'k2', 'LEFT', 'COUNT', 3)",
        "redis.call('XREAD', 'COUNT', 5, 'STREAMS', 'k1', 'k2', '0', '0')",
        "redis.call('XREADGROUP', 'GROUP', 'g', 'c', 'COUNT', 1, 'STREAMS', 'k1', '>')",
        "redis.call('BITOP', 'AND', 'k1', 'k2', 'k3')",
        "redis.call('LMOVE', 'k1', 'k2', 'LEFT', 'RIGHT')",
        "redis.call('PFMERGE', 'k1', 'k2', 'k3')",
        "redis.call('GEOSEARCHSTORE', 'k1', 'k2', 'FROMLONLAT', 0, 0, 'BYRADIUS', 1, 'km')",
    ];
    for sample in samples {
        let chunk = lua::parse(sample).unwrap();
        let words: Vec<String> = chunk.calls[0]
            .args
            .iter()
            .map(|arg| match &arg.kind {
                ExprKind::Str(text) => text.clone(),
                ExprKind::Number(n) => n.to_string(),
                other => panic!("{other:?}"),
            })
            .collect();
        let command = commands::find(&words[0].to_ascii_uppercase()).unwrap();
        let ours: Vec<String> =
            key_positions(command, &chunk.calls[0].args[1..]).into_iter().map(|p| words[p].clone()).collect();
        let mut request = vec!["COMMAND", "GETKEYS"];
        request.extend(words.iter().map(String::as_str));
        let Reply::Array(keys) = server.command(&request).expect("COMMAND GETKEYS") else { panic!() };
        let theirs: Vec<String> = keys.iter().map(|key| text(Some(key))).collect();
        assert_eq!(ours, theirs, "{sample}");
    }
}

#[test]
fn the_bundled_scripts_pass_the_lint() {
    let report = check_bundled();
    let shown: Vec<String> = report.findings.iter().map(ToString::to_string).collect();
    assert!(report.is_clean(), "the lint finds {} problems in lua/:\n{}", shown.len(), shown.join("\n"));
    assert_eq!(report.scripts, redisext::script::all().len());
}

/// The library's manifest lists the commands a script calls with a scanner of
/// its own; the lint's parser must find the same in every bundled script.
#[test]
fn the_manifest_lists_the_commands_the_parser_finds() {
    for script in redisext::script::all() {
        let (name, source) = (script.name(), script.source());
        let chunk = lua::parse(source).expect("readable Lua");
        let parsed: std::collections::BTreeSet<String> = chunk
            .calls
            .iter()
            .filter_map(|call| {
                let command = literal(call.args.first()?)?.to_ascii_uppercase();
                match commands::find(&command).map(|c| c.access) {
                    Some(Access::Container) => {
                        Some(format!("{command} {}", literal(call.args.get(1)?)?.to_ascii_uppercase()))
                    }
                    _ => Some(command),
                }
            })
            .collect();
        assert_eq!(redisext::manifest::commands_called(source), parsed.into_iter().collect::<Vec<_>>(), "{name}");
    }
}
