//! The script lint on deliberately bad scripts (tests/lint_fixtures/bad): each
//! breaks one convention and must get exactly the findings listed here, at the
//! right lines; the scripts in tests/lint_fixtures/good use every pattern the
//! lint must accept and get none.

use std::collections::BTreeMap;
use std::path::Path;

use redisext_cli::lint::{self, Finding, Rule};

fn fixtures(kind: &str) -> BTreeMap<String, Vec<Finding>> {
    // The fixture directory stands for lua/: `bad/loops.lua` is script `bad/loops`.
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/lint_fixtures");
    let report = lint::check_dir(&root).expect("read the fixtures");
    let mut by_file: BTreeMap<String, Vec<Finding>> = BTreeMap::new();
    let mut count = 0;
    for dir in ["good", "bad"] {
        for entry in std::fs::read_dir(root.join(dir)).expect("list fixtures") {
            let name = entry.expect("entry").file_name().to_string_lossy().into_owned();
            if dir == kind {
                by_file.insert(name, Vec::new());
            }
            count += 1;
        }
    }
    assert_eq!(report.scripts, count);
    for finding in report.findings {
        let path = Path::new(&finding.path);
        let dir = path.parent().and_then(Path::file_name).expect("a directory").to_string_lossy();
        if dir == kind {
            let file = path.file_name().expect("a file").to_string_lossy().into_owned();
            by_file.get_mut(&file).expect("a fixture file").push(finding);
        }
    }
    by_file
}

/// `(line, rule)` of each finding, in order.
fn summary(findings: &[Finding]) -> Vec<(usize, Rule)> {
    findings.iter().map(|f| (f.line, f.rule)).collect()
}

fn assert_findings(by_file: &BTreeMap<String, Vec<Finding>>, file: &str, expected: &[(usize, Rule)]) {
    let findings = &by_file[file];
    let shown: Vec<String> = findings.iter().map(ToString::to_string).collect();
    assert_eq!(summary(findings), expected, "{file}:\n{}", shown.join("\n"));
}

fn message<'f>(by_file: &'f BTreeMap<String, Vec<Finding>>, file: &str, line: usize) -> Vec<&'f str> {
    by_file[file].iter().filter(|f| f.line == line).map(|f| f.message.as_str()).collect()
}

#[test]
fn good_scripts_have_no_findings() {
    let by_file = fixtures("good");
    for (file, findings) in &by_file {
        let shown: Vec<String> = findings.iter().map(ToString::to_string).collect();
        assert!(findings.is_empty(), "{file} should be clean:\n{}", shown.join("\n"));
    }
    assert_eq!(by_file.len(), 5);
}

#[test]
fn shebang_name_and_header() {
    let by_file = fixtures("bad");
    assert_findings(&by_file, "no_shebang.lua", &[(1, Rule::Shebang), (1, Rule::Header)]);
    assert_findings(&by_file, "unknown_flag.lua", &[(1, Rule::Shebang), (1, Rule::Shebang)]);
    let flags = message(&by_file, "unknown_flag.lua", 1);
    assert!(flags.iter().any(|m| m.contains("`name=x`")), "{flags:?}");
    assert!(flags.iter().any(|m| m.contains("`allow-cross-slot-keys`")), "{flags:?}");
    assert_findings(&by_file, "BadName.lua", &[(1, Rule::Name)]);
    assert_findings(&by_file, "no_header.lua", &[(2, Rule::Header), (2, Rule::HeaderKeys)]);
    assert_findings(&by_file, "wrong_name.lua", &[(2, Rule::Header)]);
    assert!(message(&by_file, "wrong_name.lua", 2)[0].contains("`bad/another_name` but the file is `bad/wrong_name`"));
    assert_findings(&by_file, "incomplete_header.lua", &[(3, Rule::Header); 4]);
    let header = message(&by_file, "incomplete_header.lua", 3);
    for part in ["line 2", "summary", "`Returns`", "`Worst case`"] {
        assert!(header.iter().any(|m| m.contains(part)), "no finding about {part}: {header:?}");
    }
}

#[test]
fn header_keys_and_argv_match_the_body() {
    let by_file = fixtures("bad");
    assert_findings(
        &by_file,
        "header_keys.lua",
        &[(5, Rule::HeaderKeys), (7, Rule::HeaderKeys), (12, Rule::HeaderKeys)],
    );
    assert!(message(&by_file, "header_keys.lua", 5)[0].contains("declares KEYS[2] but the script never reads it"));
    assert!(message(&by_file, "header_keys.lua", 7)[0].contains("ARGV[3] is number 2"));
    assert!(message(&by_file, "header_keys.lua", 12)[0].contains("reads KEYS[3] but the header has no `KEYS[3]` line"));
    assert_findings(&by_file, "unnamed.lua", &[(5, Rule::HeaderKeys)]);
    assert!(message(&by_file, "unnamed.lua", 5)[0].contains("ARGV[1] has no name"));
}

#[test]
fn every_key_comes_from_keys() {
    let by_file = fixtures("bad");
    assert_findings(
        &by_file,
        "built_key.lua",
        &[
            (10, Rule::KeyFromKeys),
            (11, Rule::KeyFromKeys),
            (13, Rule::KeyFromKeys),
            (14, Rule::KeyFromKeys),
            (15, Rule::KeyFromKeys),
            (16, Rule::KeyFromKeys),
        ],
    );
    assert!(
        message(&by_file, "built_key.lua", 10)[0].contains("argument 1 of GET is a key, but `'prefix:' .. ARGV[1]`")
    );
    assert!(message(&by_file, "built_key.lua", 14)[0].contains("argument 2 of RENAME"));
    assert!(message(&by_file, "built_key.lua", 16)[0].contains("argument 3 of MSET is a key, but `'b'`"));
}

#[test]
fn no_writes_scripts_call_no_write_command() {
    let by_file = fixtures("bad");
    assert_findings(&by_file, "read_only_writes.lua", &[(9, Rule::NoWrites), (11, Rule::NoWrites)]);
    assert!(message(&by_file, "read_only_writes.lua", 11)[0].contains("PFCOUNT is a write command"));
}

#[test]
fn forbidden_and_unknown_commands() {
    let by_file = fixtures("bad");
    let forbidden: Vec<(usize, Rule)> = (9..=16).map(|line| (line, Rule::Forbidden)).collect();
    assert_findings(&by_file, "forbidden.lua", &forbidden);
    let named: Vec<&str> = (9..=16).flat_map(|line| message(&by_file, "forbidden.lua", line)).collect();
    for (index, name) in
        ["KEYS", "FLUSHALL", "CONFIG", "EVAL", "SCRIPT", "BLPOP", "loadstring", "redis.set_repl"].iter().enumerate()
    {
        assert!(named[index].starts_with(&format!("{name} is forbidden: ")), "{}", named[index]);
    }
    assert_findings(
        &by_file,
        "unknown_command.lua",
        &[(9, Rule::UnknownCommand), (11, Rule::UnknownCommand), (12, Rule::UnknownCommand)],
    );
    assert!(message(&by_file, "unknown_command.lua", 9)[0].contains("unknown command FROBNICATE"));
    assert!(message(&by_file, "unknown_command.lua", 11)[0].contains("not a string literal"));
    assert!(message(&by_file, "unknown_command.lua", 12)[0].contains("unknown XGROUP subcommand"));
}

#[test]
fn every_loop_is_bounded() {
    let by_file = fixtures("bad");
    let lines = [10, 13, 16, 20, 24, 28, 31, 34, 37, 40];
    let expected: Vec<(usize, Rule)> = lines.iter().map(|&line| (line, Rule::LoopBound)).collect();
    assert_findings(&by_file, "loops.lua", &expected);
    assert!(message(&by_file, "loops.lua", 10)[0].contains("runs to `redis.call('LLEN', KEYS[1])`"));
    assert!(message(&by_file, "loops.lua", 31)[0].contains("step `0` is 0"));
    assert!(message(&by_file, "loops.lua", 34)[0].contains("`while true`"));
}

#[test]
fn unreadable_lua_is_a_finding_with_its_line() {
    let by_file = fixtures("bad");
    assert_findings(&by_file, "syntax.lua", &[(10, Rule::Syntax)]);
    assert!(message(&by_file, "syntax.lua", 10)[0].contains("expected"));
}

#[test]
fn findings_show_file_line_and_rule() {
    let findings = lint::check_script("x/y", "lua/x/y.lua", "#!lua\nreturn redis.call('DEL', KEYS[1])\n");
    assert_eq!(
        findings[0].to_string(),
        "lua/x/y.lua:2: [header] no header comment: line 2 must open it with `--[[ x/y`"
    );
}

/// Every fixture breaks a rule on purpose: none may sit under lua/, where the
/// build would embed it.
#[test]
fn fixtures_are_not_bundled() {
    for script in redisext::script::all() {
        assert!(!script.name().starts_with("bad/") && !script.name().starts_with("good/"), "{}", script.name());
    }
}

/// Exactly-once mode repeats one prologue and one epilogue in every script that
/// takes an `ops` key (a script run by EVALSHA cannot share code with another):
/// this keeps every copy identical to the one text below, with the script's own
/// indices, so that they cannot drift apart.
#[test]
fn every_exactly_once_script_carries_the_same_prologue_and_epilogue() {
    let mut checked = 0;
    for script in redisext::script::all() {
        let header = script.header();
        let Some(ops) = header.keys.iter().find(|key| key.name == "ops") else { continue };
        let op = header.args.iter().find(|arg| arg.name == "op").expect("an `op` argument beside the `ops` key");
        assert!(ops.variadic && ops.index == header.keys.len(), "{}: `ops` is the last, optional key", script.name());
        let (n, m) = (ops.index, op.index);
        let prologue = format!(
            "-- Exactly-once mode: the lane's last operation, sent again, gets its first result back.
local lane, seq, ttl = string.match(ARGV[{m}], '^(%d+):(%d+):(%d+)$')
if lane then
  local last = redis.call('HGET', KEYS[{n}], lane)
  local last_seq, first = 0, false
  if last then
    last_seq, first = cmsgpack.unpack(last)
  end
  if last_seq == tonumber(seq) then
    return first
  elseif last_seq > tonumber(seq) then
    return redis.error_reply('REDISEXT_SUPERSEDED lane ' .. lane .. ' has moved on to operation ' .. last_seq)
  end
end
"
        );
        let epilogue = format!(
            "if lane and result then
  redis.call('HSET', KEYS[{n}], lane, cmsgpack.pack(tonumber(seq), result))
  redis.call('PEXPIRE', KEYS[{n}], ttl)
end
return result
"
        );
        let source = script.source();
        let body = &source[source.find("]]\n").expect("the header ends") + 3..];
        assert!(body.starts_with(&prologue), "{}: the exactly-once prologue differs, or is not first", script.name());
        assert!(body.ends_with(&epilogue), "{}: the exactly-once epilogue differs, or is not last", script.name());
        checked += 1;
    }
    println!("{checked} exactly-once scripts carry the same prologue and epilogue");
    assert!(checked >= 25, "only {checked} scripts take an operation id");
}
