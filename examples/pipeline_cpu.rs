//! Client CPU per pipelined operation: pipelines of 64 `counter.incr` through this
//! crate's pipeline, the same EVALSHA commands with the redis crate's
//! `redis::pipe()` by hand, and `redis-benchmark -P 64` sending the same EVALSHA,
//! in turn, round after round (so they share the machine's noise). For each it
//! prints operations per second, the client's CPU time per operation (the
//! thread's, or redis-benchmark's process), and throughput as a share of
//! redis-benchmark's in the same round (median over rounds).
//!
//! `cargo run --release --features testing --example pipeline_cpu`
//! (`REDIS_URL` for a server of your own; `PIPELINE_CPU_ROUNDS`, default 7;
//! `PIPELINE_CPU_OPS` operations per path and round, default 64,000;
//! `PIPELINE_CPU_PATHS=ours` or `by_hand` to run one path only, without
//! redis-benchmark: for `valgrind --tool=callgrind --collect-atstart=no
//! --toggle-collect='*pipelines_of*'`, whose instruction count divided by the
//! operations is the client's instructions per operation).

use std::process::Command;
use std::time::{Duration, Instant};

use redisext::testing::RedisServer;
use redisext::{Client, Counter, Script, Slots};

const DEPTH: usize = 64;
const KEY: &str = "pipeline-cpu";

/// The calling thread's CPU time (user and system).
fn thread_cpu() -> Duration {
    let mut now = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: a valid clock id and a pointer to a timespec we own.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut now) };
    Duration::new(now.tv_sec.unsigned_abs(), now.tv_nsec.unsigned_abs() as u32)
}

/// The CPU time (user and system) of the children that have been waited for.
fn children_cpu() -> Duration {
    // SAFETY: getrusage fills the struct we own.
    let usage = unsafe {
        let mut usage = std::mem::zeroed::<libc::rusage>();
        libc::getrusage(libc::RUSAGE_CHILDREN, &mut usage);
        usage
    };
    let time = |t: libc::timeval| Duration::new(t.tv_sec.unsigned_abs(), t.tv_usec.unsigned_abs() as u32 * 1000);
    time(usage.ru_utime) + time(usage.ru_stime)
}

/// One path's figure for one round: wall time and client CPU time.
#[derive(Clone, Copy)]
struct Figure {
    wall: Duration,
    cpu: Duration,
}

/// `ops / DEPTH` pipelines of `counter.incr` through the crate.
#[inline(never)]
fn ours_pipelines_of_64(client: &Client, counter: &Counter, ops: usize) -> Result<(), redisext::Error> {
    for _ in 0..ops / DEPTH {
        let pipe = client.pipeline();
        let slots: Vec<_> = (0..DEPTH).map(|_| counter.on(&pipe).incr(1)).collect();
        pipe.run()?;
        slots.take()?;
    }
    Ok(())
}

/// `ops / DEPTH` pipelines of the same EVALSHA with `redis::pipe()`.
#[inline(never)]
fn by_hand_pipelines_of_64(connection: &mut redis::Connection, sha1: &str, ops: usize) -> redis::RedisResult<()> {
    for _ in 0..ops / DEPTH {
        let mut pipe = redis::pipe();
        for _ in 0..DEPTH {
            // KEYS[1] the counter; ARGV: the amount, and no operation id.
            pipe.cmd("EVALSHA").arg(sha1).arg(1).arg(KEY).arg(1).arg("");
        }
        let values: Vec<i64> = pipe.query(connection)?;
        assert_eq!(values.len(), DEPTH);
    }
    Ok(())
}

fn timed(f: impl FnOnce()) -> Figure {
    let (start, cpu) = (Instant::now(), thread_cpu());
    f();
    Figure { wall: start.elapsed(), cpu: thread_cpu() - cpu }
}

/// `redis-benchmark -c 1 -P 64` of the same EVALSHA; `None` when it cannot run.
fn redis_benchmark(url: &str, sha1: &str, ops: usize) -> Option<Figure> {
    let dsn: redisext::Dsn = url.parse().ok()?;
    let redisext::connection::Address::Tcp { host, port } = dsn.address() else { return None };
    let cpu = children_cpu();
    let output = Command::new("redis-benchmark")
        .args(["-h", host, "-p", &port.to_string(), "--dbnum", &dsn.db().to_string()])
        .args(["-n", &ops.to_string(), "-c", "1", "-P", &DEPTH.to_string(), "--csv"])
        .args(["EVALSHA", sha1, "1", KEY, "1", ""])
        .output()
        .ok()?;
    let cpu = children_cpu() - cpu;
    if !output.status.success() {
        return None;
    }
    // Its own figure (requests per second) leaves out its start-up; its CPU time
    // does not (a few milliseconds).
    let csv = String::from_utf8_lossy(&output.stdout);
    let row = csv.lines().find(|line| !line.is_empty() && !line.starts_with("\"test\""))?;
    let per_second: f64 = row.split("\",\"").nth(1)?.trim_matches('"').parse().ok()?;
    Some(Figure { wall: Duration::from_secs_f64(ops as f64 / per_second), cpu })
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    let middle = values.len() / 2;
    if values.len() % 2 == 1 { values[middle] } else { (values[middle - 1] + values[middle]) / 2.0 }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let env = |name: &str, default: usize| std::env::var(name).ok().and_then(|n| n.parse().ok()).unwrap_or(default);
    let rounds = env("PIPELINE_CPU_ROUNDS", 7).max(1);
    let ops = env("PIPELINE_CPU_OPS", 64_000).div_ceil(DEPTH) * DEPTH;
    let only = std::env::var("PIPELINE_CPU_PATHS").unwrap_or_default();
    let (_server, url) = RedisServer::start_unless_env()?;
    let client = Client::open(&url)?;
    let counter = Counter::new(&client, KEY)?;
    counter.incr(0)?; // the script is loaded, the connection open
    let mut connection = redis::Client::open(url.as_str())?.get_connection()?;
    let sha1 = Script::bundled("counter/incr").sha1();

    match only.as_str() {
        "ours" => {
            ours_pipelines_of_64(&client, &counter, ops)?;
            println!("{ops} operations, ours");
            return Ok(());
        }
        "by_hand" => {
            by_hand_pipelines_of_64(&mut connection, sha1, ops)?;
            println!("{ops} operations, by hand");
            return Ok(());
        }
        _ => {}
    }
    let names = ["redisext pipeline", "redis::pipe() by hand", "redis-benchmark -P 64"];
    let mut figures: [Vec<Figure>; 3] = Default::default();
    for round in 0..rounds {
        // Each round starts one path further on, so that none is always first.
        for turn in 0..3 {
            let path = (round + turn) % 3;
            let figure = match path {
                0 => timed(|| ours_pipelines_of_64(&client, &counter, ops).expect("redisext pipeline")),
                1 => timed(|| by_hand_pipelines_of_64(&mut connection, sha1, ops).expect("pipeline by hand")),
                _ => match redis_benchmark(&url, sha1, ops) {
                    Some(figure) => figure,
                    None => return Err("redis-benchmark could not be run against this URL".into()),
                },
            };
            figures[path].push(figure);
        }
    }
    println!("{rounds} rounds of {ops} pipelined counter.incr per path, depth {DEPTH}, against {url}");
    println!("{:<24} {:>10} {:>14} {:>16}", "path", "ops/s", "client µs/op", "÷ redis-benchmark");
    for (path, name) in names.iter().enumerate() {
        let per_second = median(figures[path].iter().map(|f| ops as f64 / f.wall.as_secs_f64()).collect());
        let cpu = median(figures[path].iter().map(|f| f.cpu.as_secs_f64() * 1e6 / ops as f64).collect());
        let ratio = median(
            figures[path]
                .iter()
                .zip(&figures[2])
                .map(|(mine, ceiling)| ceiling.wall.as_secs_f64() / mine.wall.as_secs_f64())
                .collect(),
        );
        println!("{name:<24} {per_second:>10.0} {cpu:>14.3} {ratio:>16.3}");
    }
    Ok(())
}
