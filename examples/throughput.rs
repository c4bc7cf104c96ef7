//! Operations per second of one model operation (`Counter::incr`) through each way
//! of running it: the figures behind the pooling advice in docs/connections.md. Runs against
//! `REDIS_URL` when set, else a throwaway server. Compare the rows of one run, not
//! runs on different machines.
//!
//! ```sh
//! cargo run --release --features tokio,pool --example throughput
//! ```

use std::time::{Duration, Instant};

use redisext::testing::RedisServer;
use redisext::{AsyncClient, AsyncReuse, Client, Counter, Reuse, Slots};

const OPERATIONS: usize = 32_000;

fn report(what: &str, elapsed: Duration) {
    let per_second = OPERATIONS as f64 / elapsed.as_secs_f64();
    println!("{what:<52} {per_second:>10.0} ops/s");
}

fn blocking(url: &str, reuse: Reuse, threads: usize) -> Result<Duration, redisext::Error> {
    let client = Client::builder().master(url).reuse(reuse).build()?;
    let counter = Counter::new(&client, "throughput")?;
    counter.incr(0)?;
    let start = Instant::now();
    std::thread::scope(|scope| {
        for _ in 0..threads {
            scope.spawn(|| (0..OPERATIONS / threads).try_for_each(|_| counter.incr(1).map(drop)));
        }
    });
    Ok(start.elapsed())
}

fn asynchronous(url: &str, connections: usize, tasks: usize) -> Result<Duration, Box<dyn std::error::Error>> {
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    runtime.block_on(async {
        let client = AsyncClient::builder().master(url).reuse(AsyncReuse::Multiplexed { connections }).build()?;
        let counter = Counter::new(&client, "throughput")?;
        counter.incr(0).await?;
        let start = Instant::now();
        let handles: Vec<_> = (0..tasks)
            .map(|_| {
                let counter = counter.clone();
                tokio::spawn(async move {
                    for _ in 0..OPERATIONS / tasks {
                        counter.incr(1).await?;
                    }
                    Ok::<(), redisext::Error>(())
                })
            })
            .collect();
        for handle in handles {
            handle.await??;
        }
        Ok(start.elapsed())
    })
}

fn pipelined(url: &str, batch: usize) -> Result<Duration, redisext::Error> {
    let client = Client::open(url)?;
    let counter = Counter::new(&client, "throughput")?;
    let start = Instant::now();
    for _ in 0..OPERATIONS / batch {
        let pipe = client.pipeline();
        let slots: Vec<_> = (0..batch).map(|_| counter.on(&pipe).incr(1)).collect();
        pipe.run()?;
        slots.take()?;
    }
    Ok(start.elapsed())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let (_server, url) = RedisServer::start_unless_env()?;
    println!("{OPERATIONS} × Counter::incr against {url}");
    report("blocking, 1 thread, lazy connection", blocking(&url, Reuse::Lazy, 1)?);
    report("blocking, 16 threads sharing one lazy connection", blocking(&url, Reuse::Lazy, 16)?);
    report("blocking, 16 threads, r2d2 pool of 8", blocking(&url, Reuse::Pooled { max_size: 8 }, 16)?);
    report("async, 64 tasks, 1 multiplexed connection", asynchronous(&url, 1, 64)?);
    report("async, 64 tasks, 4 multiplexed connections", asynchronous(&url, 4, 64)?);
    report("pipeline, 1 thread, batches of 100", pipelined(&url, 100)?);
    Ok(())
}
