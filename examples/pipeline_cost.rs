//! The client's cost per pipelined operation, for a profiler to count: runs
//! `PIPELINES` pipelines (first argument, default 300) of 64 `Counter::incr`
//! against `REDIS_URL` (else a throwaway server). Run it under callgrind twice
//! with different counts and divide the difference by the extra operations, so
//! that start-up cancels out:
//!
//! ```sh
//! cargo build --release --features testing --example pipeline_cost
//! REDIS_URL=redis://127.0.0.1:6399 valgrind --tool=callgrind --callgrind-out-file=/dev/null \
//!     target/release/examples/pipeline_cost 100
//! REDIS_URL=redis://127.0.0.1:6399 valgrind --tool=callgrind --callgrind-out-file=/dev/null \
//!     target/release/examples/pipeline_cost 400
//! # (instructions at 400 - instructions at 100) / (300 * 64)
//! ```
//!
//! With a second argument `metrics`, the client reports to a metrics hook that
//! counts operations: the cost of a hook that is set. Built with feature
//! `tracing` (and no subscriber), the cost of spans nobody records.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use redisext::observe::OperationEvent;
use redisext::testing::RedisServer;
use redisext::{Client, Counter};

const DEPTH: usize = 64;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let pipelines: usize = args.next().map_or(Ok(300), |count| count.parse())?;
    let with_metrics = args.next().is_some_and(|arg| arg == "metrics");
    let (_server, url) = RedisServer::start_unless_env()?;
    let operations = Arc::new(AtomicU64::new(0));
    let mut client = Client::open(&url)?;
    if with_metrics {
        let counted = Arc::clone(&operations);
        client = client.with_metrics(move |_: &OperationEvent<'_>| {
            counted.fetch_add(1, Ordering::Relaxed);
        });
    }
    let counter = Counter::new(&client, "pipeline_cost")?;
    let pipe = client.pipeline();
    let mut last = 0;
    for _ in 0..pipelines {
        let slots: Vec<_> = (0..DEPTH).map(|_| counter.on(&pipe).incr(1)).collect();
        pipe.run()?;
        for slot in slots {
            last = slot.take()?;
        }
    }
    println!(
        "{pipelines} pipelines of {DEPTH}: counter at {last}, {} operations reported",
        operations.load(Ordering::Relaxed)
    );
    Ok(())
}
