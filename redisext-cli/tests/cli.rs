//! The `redisext` binary, run as a user runs it: every subcommand, its output and
//! its exit status, against real servers (a master with a replica that lacks the
//! scripts, a three-node cluster, a server with a password, no server at all).
use std::process::{Command, Output};
use std::time::Duration;

use redisext::testing::RedisServer;
use redisext::{Reply, script};
use serde_json::Value;

/// The repository root (where `lua/` is), which the tests run `redisext` from.
const ROOT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/..");

/// Runs `redisext args…` from the repository root, with `env` set and the URL
/// variables otherwise unset.
fn redisext_with(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_redisext"));
    command.args(args).current_dir(ROOT).env_remove("REDISEXT_URL").env_remove("REDIS_URL");
    for (name, value) in env {
        command.env(name, value);
    }
    let output = command.output().expect("run redisext");
    println!(
        "$ redisext {}\n{}{}(exit {:?})",
        args.join(" "),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr),
        output.status.code()
    );
    output
}

/// A fresh standalone server for one test.
fn server() -> RedisServer {
    RedisServer::start().expect("start redis-server (is it installed?)")
}

fn redisext(args: &[&str]) -> Output {
    redisext_with(args, &[])
}

fn stdout(output: &Output) -> String {
    String::from_utf8(output.stdout.clone()).expect("UTF-8 output")
}

fn stderr(output: &Output) -> String {
    String::from_utf8(output.stderr.clone()).expect("UTF-8 output")
}

fn json(output: &Output) -> Value {
    serde_json::from_slice(&output.stdout).expect("JSON output")
}

fn status(output: &Output) -> i32 {
    output.status.code().expect("exited")
}

/// How many bundled scripts `server` has (`SCRIPT EXISTS`), asked directly.
fn loaded_on(server: &RedisServer) -> usize {
    let mut args = vec!["SCRIPT", "EXISTS"];
    args.extend(script::all().map(|s| s.sha1()));
    let Reply::Array(flags) = server.command(&args).expect("SCRIPT EXISTS") else { panic!("not an array") };
    flags.iter().filter(|flag| **flag == Reply::Int(1)).count()
}

fn load_all_directly(server: &RedisServer) {
    for script in script::all() {
        server.command(&["SCRIPT", "LOAD", script.source()]).expect("SCRIPT LOAD");
    }
}

#[test]
fn help_explains_each_command() {
    let top = redisext(&["--help"]);
    assert_eq!(status(&top), 0);
    for part in ["scripts", "bench", "Exit status", "2  a usage error", "3  a server could not be reached"] {
        assert!(stdout(&top).contains(part), "--help lacks {part:?}");
    }
    let group = redisext(&["scripts", "--help"]);
    for command in ["list", "show", "manifest", "lint", "verify", "load"] {
        assert!(stdout(&group).contains(&format!("  {command} ")), "scripts --help lacks {command}");
        let help = redisext(&["scripts", command, "--help"]);
        assert_eq!(status(&help), 0, "{command} --help");
        assert!(stdout(&help).lines().count() > 5, "{command} --help says too little");
    }
    let verify = stdout(&redisext(&["scripts", "verify", "--help"]));
    for part in ["SCRIPT EXISTS", "INFO replication", "CLUSTER NODES", "REDISEXT_URL", "REDIS_URL", "--no-discovery"] {
        assert!(verify.contains(part), "verify --help lacks {part:?}");
    }
    let lint = stdout(&redisext(&["scripts", "lint", "--help"]));
    for part in ["KEYS[i]/ARGV[i]", "flags=no-writes", "FLUSHALL", "loop"] {
        assert!(lint.contains(part), "lint --help lacks {part:?}");
    }
    assert_eq!(status(&redisext(&["scripts", "no-such-command"])), 2);
    assert_eq!(status(&redisext(&[])), 2);
}

#[test]
fn list_shows_one_row_per_script() {
    // Piped, `auto` prints tab-separated rows.
    let output = redisext(&["scripts", "list"]);
    assert_eq!(status(&output), 0);
    let text = stdout(&output);
    let rows: Vec<Vec<&str>> = text.lines().map(|line| line.split('\t').collect()).collect();
    assert_eq!(rows[0], ["NAME", "SHA1", "MODE", "KEYS", "ARGS", "LINES"]);
    assert_eq!(rows.len(), script::all().len() + 1);
    for (row, script) in rows[1..].iter().zip(script::all()) {
        assert_eq!(row[0], script.name());
        assert_eq!(row[1], script.sha1());
        assert_eq!(row[2].starts_with("read"), script.is_read_only(), "{row:?}");
        assert_eq!(row[2].ends_with("+oom"), script.allows_oom(), "{row:?}");
        assert_eq!(row[3], script.header().keys.len().to_string());
        assert_eq!(row[5], script.source().lines().count().to_string());
    }
    let incr = rows.iter().find(|row| row[0] == "counter/incr").expect("counter/incr");
    assert_eq!((incr[2], incr[4]), ("write", "amount, op"), "op: the exactly-once operation id");
    let rename = rows.iter().find(|row| row[0] == "key/rename").expect("key/rename");
    assert_eq!((rename[3], rename[4]), ("2", "-"));

    // As a table: every column starts at the same place on every line.
    let table = stdout(&redisext(&["scripts", "list", "--format", "table"]));
    let lines: Vec<&str> = table.lines().collect();
    let sha1_column = lines[0].find("SHA1").expect("SHA1 header");
    for (line, script) in lines[1..].iter().zip(script::all()) {
        assert_eq!(line.find(script.sha1()), Some(sha1_column), "{line}");
    }

    let listed = json(&redisext(&["scripts", "list", "--json"]));
    let listed = listed.as_array().expect("an array");
    assert_eq!(listed.len(), script::all().len());
    assert_eq!(listed[0]["sha1"], script::all().next().expect("a script").sha1());
    assert_eq!(status(&redisext(&["scripts", "list", "--json", "--format", "tsv"])), 2);
}

#[test]
fn show_prints_the_exact_source_and_its_sha1() {
    for script in script::all() {
        let raw = redisext(&["scripts", "show", "--raw", script.name()]);
        assert_eq!(status(&raw), 0);
        assert_eq!(raw.stdout, script.source().as_bytes(), "{}", script.name());
        assert_eq!(sha1_smol::Sha1::from(&raw.stdout).digest().to_string(), script.sha1());
    }
    let shown = stdout(&redisext(&["scripts", "show", "map/remove"]));
    let (title, source) = shown.split_once("\n\n").expect("a title, a blank line, the source");
    assert_eq!(source, script::find("map/remove").expect("map/remove").source());
    let remove = script::find("map/remove").expect("map/remove");
    let expected = format!(
        "map/remove  sha1 {}  (write+oom, {} lines, {} bytes)",
        remove.sha1(),
        remove.source().lines().count(),
        remove.source().len()
    );
    assert_eq!(title, expected);

    let unknown = redisext(&["scripts", "show", "counter/decr"]);
    assert_eq!(status(&unknown), 2);
    assert!(stdout(&unknown).is_empty());
    let message = stderr(&unknown);
    assert!(message.contains("no bundled script is named `counter/decr`"), "{message}");
    assert!(message.contains("counter/get, counter/incr"), "suggests the model's scripts: {message}");
}

#[test]
fn manifest_is_the_librarys() {
    let output = redisext(&["scripts", "manifest"]);
    assert_eq!(status(&output), 0);
    assert_eq!(json(&output), redisext::manifest::manifest());
    assert_eq!(stdout(&output), redisext::manifest::manifest_json());
    let manifest = json(&output);
    assert_eq!(manifest["version"], env!("CARGO_PKG_VERSION"));
    let set = manifest["scripts"].as_array().unwrap().iter().find(|s| s["name"] == "map/set").unwrap().clone();
    assert_eq!(set["args"][0]["description"], "encoded value");
    // SET, and the exactly-once mode's HGET before it and HSET, PEXPIRE after.
    assert_eq!(set["commands"], serde_json::json!(["HGET", "HSET", "PEXPIRE", "SET"]));
}

#[test]
fn lint_checks_the_repository_the_binary_and_any_directory() {
    let repo = redisext(&["scripts", "lint"]);
    assert_eq!(status(&repo), 0, "lua/ must pass the lint");
    assert!(stdout(&repo).ends_with(&format!("checked {} scripts in lua: no findings\n", script::all().len())));
    let embedded = redisext(&["scripts", "lint", "--embedded"]);
    assert_eq!(status(&embedded), 0);
    assert!(stdout(&embedded).contains("in the scripts built into redisext: no findings"));

    // The fixture directory is laid out as lua/ is: bad/*.lua and good/*.lua.
    let fixtures = redisext(&["scripts", "lint", "redisext-cli/tests/lint_fixtures"]);
    assert_eq!(status(&fixtures), 1, "findings make the exit status 1");
    let text = stdout(&fixtures);
    assert!(text.contains("redisext-cli/tests/lint_fixtures/bad/loops.lua:10: [loop-bound] "), "{text}");
    assert!(
        text.contains("redisext-cli/tests/lint_fixtures/bad/built_key.lua:14: [key-from-keys] argument 2 of RENAME"),
        "{text}"
    );
    assert!(!text.contains("/good/"), "the good fixtures have findings: {text}");
    let report =
        redisext_cli::lint::check_dir(std::path::Path::new(ROOT).join("redisext-cli/tests/lint_fixtures").as_path())
            .expect("lint");
    let last = format!(
        "checked {} scripts in redisext-cli/tests/lint_fixtures: {} findings\n",
        report.scripts,
        report.findings.len()
    );
    assert!(text.ends_with(&last), "{text}");
    assert_eq!(text.lines().count(), report.findings.len() + 1);

    let as_json = json(&redisext(&["scripts", "lint", "--json", "redisext-cli/tests/lint_fixtures"]));
    let findings = as_json["findings"].as_array().expect("findings");
    assert_eq!(findings.len(), report.findings.len());
    assert_eq!(as_json["scripts"], report.scripts);
    assert!(findings.iter().any(|f| f["path"] == "redisext-cli/tests/lint_fixtures/bad/read_only_writes.lua"
        && f["rule"] == "no-writes"
        && f["line"] == 9));

    let missing = redisext(&["scripts", "lint", "no/such/dir"]);
    assert_eq!(status(&missing), 2);
    assert!(stderr(&missing).contains("no/such/dir is not a directory"));
}

/// A master that has every script and a replica that has none (Redis does not
/// copy SCRIPT LOAD to replicas): verify names what is missing where and fails;
/// load fills the replica in; verify then passes. Found from either node.
#[test]
fn verify_and_load_a_master_and_a_replica_that_lacks_the_scripts() {
    let master = server();
    let replica = RedisServer::start_replica_of(&master).expect("replica");
    load_all_directly(&master);
    let total = script::all().len();
    assert_eq!((loaded_on(&master), loaded_on(&replica)), (total, 0), "SCRIPT LOAD reached the replica");

    let before = redisext(&["scripts", "verify", "--url", &master.url()]);
    assert_eq!(status(&before), 1, "a replica lacks the scripts");
    let text = stdout(&before);
    let master_line = format!("{} (master): all {total} scripts loaded", master.url());
    let replica_line =
        format!("{} (replica of 127.0.0.1:{}): 0 of {total} scripts loaded; missing:", replica.url(), master.port());
    assert!(text.contains(&master_line), "{text}");
    assert!(text.contains(&replica_line), "{text}");
    for script in script::all() {
        let listed = text.lines().any(|line| {
            let words: Vec<&str> = line.split_whitespace().collect();
            words == [script.name(), script.sha1()]
        });
        assert!(listed, "{} is not listed as missing with its SHA1", script.name());
    }
    assert!(text.ends_with("2 nodes checked; 1 node missing scripts (`redisext scripts load` loads them)\n"));

    let as_json = json(&redisext(&["scripts", "verify", "--json", "--url", &replica.url()]));
    assert_eq!(as_json["ok"], false);
    let nodes = as_json["nodes"].as_array().expect("nodes");
    assert_eq!(nodes.len(), 2, "found the master from the replica");
    assert_eq!(nodes[0]["node"], replica.url());
    assert_eq!(nodes[0]["missing"].as_array().map(Vec::len), Some(total));
    assert_eq!(nodes[1]["node"], master.url());
    assert_eq!(nodes[1]["loaded"].as_array().map(Vec::len), Some(total));

    let only_master = redisext(&["scripts", "verify", "--no-discovery", "--url", &master.url()]);
    assert_eq!(status(&only_master), 0, "--no-discovery checks the master alone");
    assert!(stdout(&only_master).ends_with("1 node checked: every script is loaded everywhere\n"));

    let load = redisext(&["scripts", "load", "--url", &master.url()]);
    assert_eq!(status(&load), 0);
    let text = stdout(&load);
    assert!(text.contains(&format!("{} (master): nothing to do, all {total} scripts were loaded", master.url())));
    assert!(text.contains(&format!(
        "(replica of 127.0.0.1:{}): loaded {total} scripts (0 were loaded already)",
        master.port()
    )));
    assert_eq!(loaded_on(&replica), total, "load reached the replica");

    // One script flushed away on the replica: verify names exactly that one.
    replica.command(&["SCRIPT", "FLUSH"]).expect("flush");
    let kept = script::find("map/get").expect("map/get");
    replica.command(&["SCRIPT", "LOAD", kept.source()]).expect("load one");
    let partial = json(&redisext(&["scripts", "verify", "--json", "--url", &master.url()]));
    let replica_node = &partial["nodes"][1];
    assert_eq!(replica_node["loaded"], serde_json::json!(["map/get"]));
    assert_eq!(replica_node["missing"].as_array().map(Vec::len), Some(total - 1));

    let reload = json(&redisext(&["scripts", "load", "--json", "--url", &master.url()]));
    assert_eq!(reload["ok"], true);
    assert_eq!(reload["nodes"][1]["already_loaded"], serde_json::json!(["map/get"]));
    assert_eq!(reload["nodes"][1]["loaded"].as_array().map(Vec::len), Some(total - 1));
    let after = redisext(&["scripts", "verify", "--url", &replica.url()]);
    assert_eq!(status(&after), 0);
    assert!(stdout(&after).ends_with("2 nodes checked: every script is loaded everywhere\n"));
}

/// Every node of a cluster, found through CLUSTER NODES from any one of them.
#[test]
fn verify_and_load_every_node_of_a_cluster() {
    let cluster_args = ["--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf"];
    let nodes: Vec<RedisServer> =
        (0..3).map(|_| RedisServer::start_with(&cluster_args).expect("cluster node")).collect();
    for node in &nodes[1..] {
        nodes[0].command(&["CLUSTER", "MEET", "127.0.0.1", &node.port().to_string()]).expect("MEET");
    }
    nodes[0].command(&["CLUSTER", "ADDSLOTSRANGE", "0", "16383"]).expect("slots");
    for node in &nodes {
        node.wait_until(Duration::from_secs(20), |server| {
            let Reply::Bulk(text) = server.command(&["CLUSTER", "NODES"])? else { return Ok(false) };
            let text = String::from_utf8_lossy(&text);
            Ok(text.lines().count() == 3 && !text.contains("handshake"))
        })
        .expect("the cluster nodes know each other");
    }

    let before = redisext(&["scripts", "verify", "--url", &nodes[2].url()]);
    assert_eq!(status(&before), 1);
    let text = stdout(&before);
    for node in &nodes {
        assert!(text.contains(&format!("{} (cluster master): 0 of", node.url())), "{text}");
    }
    assert!(text.ends_with("3 nodes checked; 3 nodes missing scripts (`redisext scripts load` loads them)\n"));

    assert_eq!(status(&redisext(&["scripts", "load", "--url", &nodes[1].url()])), 0);
    for node in &nodes {
        assert_eq!(loaded_on(node), script::all().len());
    }
    assert_eq!(status(&redisext(&["scripts", "verify", "--url", &nodes[0].url()])), 0);
}

#[test]
fn urls_come_from_the_environment_and_passwords_never_show() {
    let password = "s3cret-Passw0rd";
    let server = RedisServer::start_with(&["--requirepass", password]).expect("server with a password");
    let url = server.url();
    assert!(url.contains(password));
    let shown = format!("redis://:***@127.0.0.1:{}/0", server.port());

    // REDISEXT_URL wins over REDIS_URL.
    let output = redisext_with(&["scripts", "load"], &[("REDISEXT_URL", &url), ("REDIS_URL", "redis://127.0.0.1:1/0")]);
    assert_eq!(status(&output), 0);
    assert!(stdout(&output).starts_with(&format!("{shown} (master): loaded")), "{}", stdout(&output));
    let output = redisext_with(&["scripts", "verify"], &[("REDIS_URL", &url)]);
    assert_eq!(status(&output), 0);

    let wrong = url.replace(password, "not-the-password");
    let refused = redisext(&["scripts", "verify", "--url", &wrong]);
    assert_eq!(status(&refused), 3, "a refused login is a server failure");
    for output in [&output, &refused] {
        let all = stdout(output) + &stderr(output);
        assert!(!all.contains(password) && !all.contains("not-the-password"), "a password was printed: {all}");
    }
    assert!(stdout(&refused).contains("unreachable"), "{}", stdout(&refused));

    let bad = redisext(&["scripts", "verify", "--url", &format!("http://user:{password}@host/0")]);
    assert_eq!(status(&bad), 2);
    assert!(stderr(&bad).contains("unknown scheme"), "{}", stderr(&bad));
    assert!(!stderr(&bad).contains(password));
}

#[test]
fn clear_errors_and_exit_statuses() {
    // A port nobody listens on: bind one, then let it go.
    let port = std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("address").port();
    let url = format!("redis://127.0.0.1:{port}/0");
    for command in ["verify", "load"] {
        let output = redisext(&["scripts", command, "--url", &url, "--timeout", "2"]);
        assert_eq!(status(&output), 3, "{command}: unreachable server");
        assert!(stdout(&output).contains(&format!("{url}: ")), "{command} names the node");
        assert!(stdout(&output).contains("cannot connect"), "{}", stdout(&output));
        assert!(stderr(&output).starts_with("redisext: error: 1 of 1 nodes could not be"), "{}", stderr(&output));
    }

    let no_url = redisext(&["scripts", "verify"]);
    assert_eq!(status(&no_url), 2);
    assert!(stderr(&no_url).contains("pass --url URL or set REDISEXT_URL or REDIS_URL"));

    let bad_db = redisext(&["scripts", "load", "--url", "redis://127.0.0.1/notadb"]);
    assert_eq!(status(&bad_db), 2);
    assert!(stderr(&bad_db).contains("is not a non-negative number"), "{}", stderr(&bad_db));

    let bad_timeout = redisext(&["scripts", "verify", "--url", &url, "--timeout", "0"]);
    assert_eq!(status(&bad_timeout), 2);
}

/// A fresh directory for files a command writes.
fn scratch_directory(name: &str) -> std::path::PathBuf {
    let directory = std::env::temp_dir().join(format!("redisext-cli-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&directory).expect("scratch directory");
    directory
}

#[test]
fn bench_prints_tables_writes_json_and_a_chart_and_leaves_no_keys() {
    let server = server();
    server.command(&["SET", "user:data", "kept"]).expect("SET");
    let directory = scratch_directory("bench");
    let (json_path, chart_path) = (directory.join("bench.json"), directory.join("bench.svg"));
    let output = redisext(&[
        "bench",
        "--url",
        &server.url(),
        "--quick",
        "--only",
        "counter.incr,priority_queue.pop,lock.acquire_release",
        "--clients",
        "1,4",
        "--depths",
        "1,16",
        "--json",
        json_path.to_str().expect("UTF-8 path"),
        "--chart",
        chart_path.to_str().expect("UTF-8 path"),
        "--no-progress",
    ]);
    assert_eq!(status(&output), 0, "{}", stderr(&output));
    let text = stdout(&output);
    for part in
        ["Single client", "Pipelined", "Contended", "Ratios", "Targets", "zero invariant violations", "watch_multi"]
    {
        assert!(text.contains(part), "the tables lack {part:?}");
    }

    let report: Value = serde_json::from_slice(&std::fs::read(&json_path).expect("JSON written")).expect("JSON parses");
    assert_eq!(report["script_violations"], 0);
    assert!(!report["environment"]["redis_version"].as_str().unwrap_or_default().is_empty());
    let results = report["results"].as_array().expect("results");
    let cells = |op: &str, path: &str| results.iter().filter(|r| r["operation"] == op && r["path"] == path).count();
    // latency + 2 depths + 2 client counts for a pipelinable operation; latency +
    // 2 client counts for the lock, on all four paths.
    assert_eq!(cells("counter.incr", "library"), 5);
    assert_eq!(cells("counter.incr", "watch_multi"), 0);
    assert_eq!(cells("lock.acquire_release", "watch_multi"), 3);
    assert_eq!(cells("priority_queue.pop", "plain"), 3, "Python's two-command pop cannot be pipelined");
    for result in results {
        assert!(result["per_second"].as_f64().is_some_and(|rate| rate > 0.0), "{result}");
        if result["path"] == "library" || result["path"] == "evalsha" {
            assert_eq!(result["violations"], 0, "{result}");
        }
    }
    assert!(report["ratios"].as_array().is_some_and(|ratios| !ratios.is_empty()));
    assert!(report["ceiling"]["runs"].is_array() || report["ceiling"]["skipped"].is_string(), "{}", report["ceiling"]);

    let chart = std::fs::read_to_string(&chart_path).expect("chart written");
    assert!(chart.starts_with("<svg") && chart.trim_end().ends_with("</svg>"));
    assert!(chart.contains("lock.acquire_release") && chart.contains("WATCH/MULTI/EXEC"));

    // Only the user's key is left.
    assert_eq!(server.command(&["DBSIZE"]).expect("DBSIZE"), Reply::Int(1));
    assert_eq!(server.command(&["GET", "user:data"]).expect("GET"), Reply::Bulk(b"kept".to_vec()));
    let _ = std::fs::remove_dir_all(directory);
}

#[test]
fn bench_refuses_bad_input_before_running() {
    let port = std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("address").port();
    let unreachable = format!("redis://127.0.0.1:{port}/0");
    let directory = scratch_directory("bench-bad");
    let json_path = directory.join("out.json");
    let files = ["--json", json_path.to_str().expect("UTF-8 path"), "--no-progress", "--no-ceiling"];
    let bench = |extra: &[&str]| {
        let mut args = vec!["bench"];
        args.extend(extra);
        args.extend(files);
        redisext(&args)
    };
    for (args, says) in [
        (&["--url", &unreachable, "--rounds", "0"][..], "at least one round"),
        (&["--url", &unreachable, "--only", "counter.nope"], "known: counter.incr"),
        (&["--url", &unreachable, "--clients", "4,0"], "at least 1"),
        (&["--url", &unreachable, "--scale", "0"], "--scale 0 is not a positive number"),
        (&["--url", &unreachable, "--chart", "chart.png"], "only SVG"),
        (&["--url", &unreachable, "--chart", "/no/such/directory/chart.svg"], "no directory"),
        (&["--url", "http://localhost"], "unknown scheme"),
        (&[], "pass --url URL"),
    ] {
        let output = bench(args);
        assert_eq!(status(&output), 2, "{args:?}");
        assert!(stderr(&output).contains(says), "{args:?}: {}", stderr(&output));
    }
    let output = bench(&["--url", &unreachable, "--quick"]);
    assert_eq!(status(&output), 3, "an unreachable server");
    assert!(stderr(&output).contains(&unreachable), "{}", stderr(&output));
    assert!(!json_path.exists(), "nothing is written when the run fails");
    let _ = std::fs::remove_dir_all(directory);
}

/// docs/auditing.md shows `redisext scripts list` with every SHA1: it must be the
/// output of the scripts as they are now, so a reader auditing from the docs
/// reads the truth.
#[test]
fn the_auditing_page_shows_the_current_script_list() {
    let page = std::fs::read_to_string(format!("{ROOT}/docs/auditing.md")).unwrap();
    let start = page.find("$ redisext scripts list\n").expect("docs/auditing.md shows the list") + 24;
    let shown = &page[start..start + page[start..].find("```").expect("the block ends")];
    let output = redisext(&["scripts", "list", "--format", "table"]);
    assert!(output.status.success());
    let current = String::from_utf8(output.stdout).unwrap();
    assert_eq!(
        shown.trim_end(),
        current.trim_end(),
        "docs/auditing.md's script list is stale: paste the output of `redisext scripts list --format table`"
    );
}
