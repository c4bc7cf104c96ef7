//! `cargo bench`: the library's script path against hand-written `EVALSHA`, the
//! plain commands Python redisext sends, and WATCH/MULTI/EXEC transactions — the
//! engine of `redisext bench` (`redisext_cli::bench`), against a throwaway
//! `redis-server` (or `REDIS_URL` when set).
//!
//! Prints the tables and the targets, and writes `results.json` and `chart.svg` to
//! `target/redisext-bench/`. The default run takes a few minutes; change it with:
//!
//! ```sh
//! REDISEXT_BENCH_ROUNDS=9 cargo bench          # more rounds (default 5)
//! REDISEXT_BENCH_SCALE=4 cargo bench           # 4 × the attempts per measurement
//! REDISEXT_BENCH_ONLY=lock.acquire_release,counter.incr cargo bench
//! REDISEXT_BENCH_QUICK=1 cargo bench           # a few seconds, figures mean little
//! ```
//!
//! `cargo test --all-targets` also runs this file, without `--bench`: then it only
//! checks, in a second, that the harness runs (one operation, one quick round) and
//! writes nothing.

use std::error::Error;
use std::path::PathBuf;

use redisext::testing::RedisServer;
use redisext_cli::bench::{self, Operation, ProgressBar, Settings};

fn variable(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|value| !value.is_empty())
}

fn settings() -> Result<Settings, Box<dyn Error>> {
    let mut settings = if variable("REDISEXT_BENCH_QUICK").is_some() { Settings::quick() } else { Settings::default() };
    if let Some(rounds) = variable("REDISEXT_BENCH_ROUNDS") {
        settings.rounds = rounds.parse().map_err(|_| format!("REDISEXT_BENCH_ROUNDS={rounds} is not a number"))?;
    }
    if let Some(scale) = variable("REDISEXT_BENCH_SCALE") {
        settings = settings.scaled(scale.parse().map_err(|_| format!("REDISEXT_BENCH_SCALE={scale} is not a number"))?);
    }
    if let Some(only) = variable("REDISEXT_BENCH_ONLY") {
        settings.operations = only
            .split(',')
            .map(|name| Operation::from_name(name.trim()).ok_or_else(|| format!("no operation {name:?}")))
            .collect::<Result<_, _>>()?;
    }
    Ok(settings)
}

fn main() -> Result<(), Box<dyn Error>> {
    // `cargo bench` passes --bench; `cargo test --all-targets` does not, and the
    // test suite must not wait for a benchmark.
    let benchmarking = std::env::args().any(|arg| arg == "--bench");
    let settings = if benchmarking {
        settings()?
    } else {
        let mut check = Settings::quick();
        check.operations = vec![Operation::CounterIncr];
        check.ceiling_requests = 0;
        check
    };
    let (_server, url) = RedisServer::start_unless_env()?;
    let mut bar = ProgressBar::new();
    let report = bench::run(&url.parse()?, &settings, &mut |progress| bar.show(progress))?;
    bar.finish();
    if !benchmarking {
        println!("the harness runs; `cargo bench` measures ({} measurements in this check)", report.summaries.len());
        return Ok(());
    }
    print!("{}", report.tables());
    let directory = variable("CARGO_TARGET_DIR")
        .map_or_else(|| PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../target")), PathBuf::from)
        .join("redisext-bench");
    std::fs::create_dir_all(&directory)?;
    std::fs::write(directory.join("results.json"), format!("{:#}\n", report.json()))?;
    std::fs::write(directory.join("chart.svg"), report.svg())?;
    println!("\nwrote {0}/results.json and {0}/chart.svg", directory.display());
    if report.script_violations() > 0 {
        return Err(format!("{} invariant violations on the script paths", report.script_violations()).into());
    }
    Ok(())
}
