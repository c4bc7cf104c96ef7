//! Helpers shared by the integration tests: throwaway servers and checks.
#![allow(dead_code)] // each test binary uses its own subset

pub mod proxy;
pub mod resend;

use redisext::testing::RedisServer;
use redisext::{Client, Reply};

/// A fresh standalone server for one test.
pub fn server() -> RedisServer {
    RedisServer::start().expect("start redis-server (is it installed?)")
}

/// A lazy client on `server`.
pub fn client(server: &RedisServer) -> Client {
    Client::open(&server.url()).expect("client")
}

/// Asserts that every bundled script of `model` has been loaded on `server`.
/// On a fresh server a script is only loaded when an operation ran it (after its
/// first EVALSHA met NOSCRIPT), so this proves each one was exercised.
pub fn assert_every_script_ran(server: &RedisServer, model: &str) {
    let scripts: Vec<_> = redisext::script::all().filter(|s| s.model() == model).collect();
    assert!(!scripts.is_empty(), "no scripts for model {model}");
    let mut args = vec!["SCRIPT", "EXISTS"];
    args.extend(scripts.iter().map(|s| s.sha1()));
    let Reply::Array(flags) = server.command(&args).expect("SCRIPT EXISTS") else { panic!("not an array") };
    for (script, flag) in scripts.iter().zip(flags) {
        assert_eq!(flag, Reply::Int(1), "script {} never ran in this test", script.name());
    }
}

/// The value of one `INFO` field, as a number.
pub fn info_number(server: &RedisServer, section: &str, field: &str) -> u64 {
    let value = server.info_field(section, field).expect("INFO");
    value.parse().unwrap_or_else(|_| panic!("INFO {section} {field} is {value:?}, not a number"))
}

/// The server's clock (`TIME`), the clock every lease and deadline is measured on.
pub fn server_time(server: &RedisServer) -> std::time::SystemTime {
    let Reply::Array(parts) = server.command(&["TIME"]).expect("TIME") else { panic!("TIME is not an array") };
    let number = |reply: &Reply| match reply {
        Reply::Bulk(bytes) => std::str::from_utf8(bytes).expect("ASCII").parse::<u64>().expect("a number"),
        other => panic!("TIME part {other:?}"),
    };
    std::time::SystemTime::UNIX_EPOCH
        + std::time::Duration::from_secs(number(&parts[0]))
        + std::time::Duration::from_micros(number(&parts[1]))
}

/// Waits (polling, up to 10 s) until the server's clock has passed `moment`.
pub fn wait_past(server: &RedisServer, moment: std::time::SystemTime) {
    server
        .wait_until(std::time::Duration::from_secs(10), |server| Ok(server_time(server) > moment))
        .expect("server time");
}

/// Whether a result is the server's refusal for lack of memory (`OOM`).
pub fn is_oom<T>(result: &redisext::Result<T>) -> bool {
    matches!(result, Err(redisext::Error::Server { code, .. }) if code == "OOM")
}

/// Fills a server started with a small `--maxmemory` (and `noeviction`) through
/// `filler` until even a small push is refused: a lasting out-of-memory state (a
/// big value alone would only be refused for its own size).
pub fn fill_memory(filler: &redisext::Queue<redisext::serializer::Raw>) {
    for size in [64 * 1024, 1024, 16] {
        let item = vec![b'x'; size];
        for attempt in 0.. {
            assert!(attempt < 10_000, "maxmemory never reached");
            if is_oom(&filler.push(&item)) {
                break;
            }
        }
    }
}

/// The Python with redisext 2.0.2 that the Python interoperability tests run:
/// `REDISEXT_PYTHON`, or `.venv/bin/python` at the repository root (made by
/// `ensure_python_venv` in scripts/setup.sh, which scripts/test calls). Fails the
/// test saying how to make it when there is none: never skips silently.
pub fn python() -> std::path::PathBuf {
    if let Some(path) = std::env::var_os("REDISEXT_PYTHON") {
        return std::path::PathBuf::from(path);
    }
    let venv = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(".venv/bin/python");
    assert!(
        venv.exists(),
        "the Python interoperability tests need Python redisext 2.0.2, and {} does not exist. \
         Make it with `bash scripts/test` (or `source scripts/setup.sh && ensure_python_venv`), \
         or set REDISEXT_PYTHON to a Python with redisext==2.0.2 and redis installed",
        venv.display()
    );
    venv
}
