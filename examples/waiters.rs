//! Many waiters on one client: how many connections they open and how soon a
//! release or a push wakes one of them.
//!
//! Three runs against one throwaway `redis-server` (or `REDIS_URL`):
//! - `async lock`: `WAITERS` tasks (default 1,000) on one `AsyncClient` all call
//!   `acquire_wait` on one Lock; each holder keeps it 1 ms and releases it.
//!   Wake-up latency: from just before the release is sent to the next holder's
//!   `acquire_wait` returning.
//! - `async queue`: `WAITERS` tasks call `pop_wait` once on one BoundedQueue while
//!   a producer pushes one item every 2 ms. Latency: from just before the push is
//!   sent to the `pop_wait` that returns that item.
//! - `async 100 queues`: the same over 100 queues (waiters and pushes in turn),
//!   so the waits are on 100 signal keys.
//! - `blocking lock`: `THREADS` threads (default 64) on one blocking `Client`, as
//!   `async lock`.
//!
//! Connections: the peak of `connected_clients` (sampled every 5 ms on a
//! connection of the sampler's own, not counted) and the growth of
//! `total_connections_received` during the run.
//!
//!     cargo run --release --features testing,tokio --example waiters
//!     WAITERS=200 THREADS=16 cargo run --release --features testing,tokio --example waiters

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use redisext::serializer::Str;
use redisext::testing::RedisServer;
use redisext::{AsyncClient, BoundedQueue, Client, Lock, Overflow};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    if let Err(error) = run().await {
        eprintln!("waiters example failed: {error}");
        std::process::exit(1);
    }
}

fn env_count(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

async fn run() -> Result<(), BoxError> {
    let (_server, url) = RedisServer::start_unless_env()?;
    let waiters = env_count("WAITERS", 1000);
    let threads = env_count("THREADS", 64);
    println!("redisext waiters example against {}", redisext::Dsn::parse(&url)?);
    println!(
        "{:<16} {:>7} {:>12} {:>12} {:>9} {:>9} {:>9}",
        "run", "waiters", "peak conns", "conns opened", "p50 ms", "p99 ms", "max ms"
    );

    let measured = measure(&url, || async_lock(&url, waiters)).await?;
    measured.print("async lock", waiters);
    let measured = measure(&url, || async_queue(&url, waiters, 1)).await?;
    measured.print("async queue", waiters);
    let measured = measure(&url, || async_queue(&url, waiters, 100)).await?;
    measured.print("async 100 queues", waiters);
    let blocking_url = url.clone();
    let measured = measure(&url, move || async move {
        tokio::task::spawn_blocking(move || blocking_lock(&blocking_url, threads)).await?
    })
    .await?;
    measured.print("blocking lock", threads);
    Ok(())
}

/// Microseconds since a fixed start, comparable across tasks and threads.
fn now_micros(start: Instant) -> u64 {
    u64::try_from(start.elapsed().as_micros()).unwrap_or(u64::MAX)
}

struct Measured {
    latencies_us: Vec<u64>,
    peak_connections: u64,
    opened: u64,
}

impl Measured {
    fn print(mut self, name: &str, waiters: usize) {
        self.latencies_us.sort_unstable();
        let at = |q: f64| {
            let len = self.latencies_us.len();
            if len == 0 {
                return f64::NAN;
            }
            let index = ((len as f64 - 1.0) * q).round() as usize;
            self.latencies_us[index] as f64 / 1000.0
        };
        println!(
            "{name:<16} {waiters:>7} {:>12} {:>12} {:>9.2} {:>9.2} {:>9.2}",
            self.peak_connections,
            self.opened,
            at(0.5),
            at(0.99),
            at(1.0)
        );
    }
}

fn info_field(connection: &mut redis::Connection, section: &str, field: &str) -> Result<u64, BoxError> {
    let text: String = redis::cmd("INFO").arg(section).query(connection)?;
    let prefix = format!("{field}:");
    Ok(text
        .lines()
        .find_map(|line| line.strip_prefix(&prefix))
        .ok_or_else(|| format!("no {field} in INFO {section}"))?
        .trim()
        .parse()?)
}

/// Runs `work` (which returns the wake-up latencies) while a thread samples the
/// server's connection counts.
async fn measure<F, Fut>(url: &str, work: F) -> Result<Measured, BoxError>
where
    F: FnOnce() -> Fut,
    Fut: std::future::Future<Output = Result<Vec<u64>, BoxError>>,
{
    let mut sampler_connection = redis::Client::open(url)?.get_connection()?;
    let opened_before = info_field(&mut sampler_connection, "stats", "total_connections_received")?;
    let done = Arc::new(AtomicBool::new(false));
    let sampler = {
        let done = Arc::clone(&done);
        std::thread::spawn(move || -> Result<(u64, redis::Connection), String> {
            let mut peak = 0;
            while !done.load(Ordering::Relaxed) {
                let connected =
                    info_field(&mut sampler_connection, "clients", "connected_clients").map_err(|e| e.to_string())?;
                peak = peak.max(connected);
                std::thread::sleep(Duration::from_millis(5));
            }
            Ok((peak, sampler_connection))
        })
    };
    let latencies_us = work().await;
    done.store(true, Ordering::Relaxed);
    let (peak, mut sampler_connection) = sampler.join().map_err(|_| "the sampler panicked")??;
    let opened_after = info_field(&mut sampler_connection, "stats", "total_connections_received")?;
    // The sampler's own connection is not counted.
    Ok(Measured {
        latencies_us: latencies_us?,
        peak_connections: peak.saturating_sub(1),
        opened: opened_after - opened_before,
    })
}

async fn async_lock(url: &str, waiters: usize) -> Result<Vec<u64>, BoxError> {
    let client = AsyncClient::open(url)?;
    let lock = Lock::new(&client, format!("redisext-waiters-example:lock:{}", std::process::id()))?;
    let start = Instant::now();
    // When the last holder sent its release (0: nobody has released yet).
    let released_at = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::with_capacity(waiters);
    for _ in 0..waiters {
        let (lock, released_at) = (lock.clone(), Arc::clone(&released_at));
        tasks.push(tokio::spawn(async move {
            let token =
                lock.acquire_wait(Duration::from_secs(30), Duration::from_secs(600)).await?.ok_or("timed out")?;
            let returned = now_micros(start);
            let released = released_at.load(Ordering::SeqCst);
            tokio::time::sleep(Duration::from_millis(1)).await;
            released_at.store(now_micros(start), Ordering::SeqCst);
            lock.release(&token).await?;
            Ok::<_, BoxError>((released > 0).then(|| returned.saturating_sub(released)))
        }));
    }
    let mut latencies = Vec::with_capacity(waiters);
    for task in tasks {
        latencies.extend(task.await??);
    }
    Ok(latencies)
}

async fn async_queue(url: &str, waiters: usize, queues: usize) -> Result<Vec<u64>, BoxError> {
    let client = AsyncClient::open(url)?;
    let mut all = Vec::with_capacity(queues);
    for i in 0..queues {
        let key = format!("redisext-waiters-example:queue:{}:{i}", std::process::id());
        let queue = BoundedQueue::<Str, _>::new(&client, key, u64::try_from(waiters)?.max(1), Overflow::Reject)?;
        queue.clear().await?;
        all.push(queue);
    }
    let start = Instant::now();
    let mut tasks = Vec::with_capacity(waiters);
    for i in 0..waiters {
        let queue = all[i % queues].clone();
        tasks.push(tokio::spawn(async move {
            let item = queue.pop_wait(Duration::from_secs(600)).await?.ok_or("timed out")?;
            let pushed: u64 = item.parse()?;
            Ok::<_, BoxError>(now_micros(start).saturating_sub(pushed))
        }));
    }
    // Let every waiter start waiting before the first push.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut ticks = tokio::time::interval(Duration::from_millis(2));
    for i in 0..waiters {
        ticks.tick().await;
        all[i % queues].push(&now_micros(start).to_string()).await?;
    }
    let mut latencies = Vec::with_capacity(waiters);
    for task in tasks {
        latencies.push(task.await??);
    }
    Ok(latencies)
}

fn blocking_lock(url: &str, threads: usize) -> Result<Vec<u64>, BoxError> {
    let client = Client::open(url)?;
    let lock = Lock::new(&client, format!("redisext-waiters-example:blocking-lock:{}", std::process::id()))?;
    let start = Instant::now();
    let released_at = Arc::new(AtomicU64::new(0));
    let handles: Vec<_> = (0..threads)
        .map(|_| {
            let (lock, released_at) = (lock.clone(), Arc::clone(&released_at));
            std::thread::spawn(move || -> Result<Option<u64>, String> {
                let token = lock
                    .acquire_wait(Duration::from_secs(30), Duration::from_secs(600))
                    .map_err(|e| e.to_string())?
                    .ok_or("timed out")?;
                let returned = now_micros(start);
                let released = released_at.load(Ordering::SeqCst);
                std::thread::sleep(Duration::from_millis(1));
                released_at.store(now_micros(start), Ordering::SeqCst);
                lock.release(&token).map_err(|e| e.to_string())?;
                Ok((released > 0).then(|| returned.saturating_sub(released)))
            })
        })
        .collect();
    let mut latencies = Vec::with_capacity(threads);
    for handle in handles {
        latencies.extend(handle.join().map_err(|_| "a waiter thread panicked")??);
    }
    Ok(latencies)
}
