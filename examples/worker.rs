//! A small worker service on a reliable queue: a producer, a worker running four
//! handlers at once (some fail and are retried after a backoff; a poison job is
//! dead-lettered), a blocking worker on threads, and a shutdown on a timer. Then
//! the worker's throughput against a hand-written `pop_wait`/`ack` loop on the
//! same queue, with the same concurrency, as a ratio.
//!
//! Runs against `REDIS_URL` when it is set, else starts a throwaway
//! `redis-server` on a free loopback port (and stops it at the end).
//!
//!     cargo run --release --features tokio --example worker
//!     WORKER_JOBS=50000 cargo run --release --features tokio --example worker

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use redisext::serializer::Str;
use redisext::testing::RedisServer;
use redisext::worker::{Backoff, BlockingWorker, Worker};
use redisext::{AsyncClient, Client, Model, ModelOptions, ReliableQueue};

type Queue = ReliableQueue<Str, AsyncClient>;

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    if let Err(error) = run().await {
        eprintln!("worker example failed: {error}");
        std::process::exit(1);
    }
}

async fn run() -> Result<(), Box<dyn std::error::Error>> {
    let (_server, url) = RedisServer::start_unless_env()?;
    println!("redisext worker example against {}", redisext::Dsn::parse(&url)?);
    let client = AsyncClient::open(&url)?;
    // A namespace keeps the example's keys apart from anything else on the server.
    let options = ModelOptions::new().namespace("redisext-worker-example:");
    let queue = Queue::with_options(&client, "images", options.clone())?.with_max_deliveries(3)?;
    queue.clear().await?;

    service(&queue).await?;
    blocking_service(&url, &options)?;
    throughput(&queue).await?;
    queue.clear().await?;
    Ok(())
}

/// A producer and a worker; a timer shuts the worker down.
async fn service(queue: &Queue) -> Result<(), Box<dyn std::error::Error>> {
    println!("\n== a worker service: 1 producer, 4 handlers at once, shutdown after 1.5 s");
    let producer = tokio::spawn({
        let queue = queue.clone();
        async move {
            for n in 1..=60 {
                queue.push(&format!("image-{n}.png")).await?;
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            queue.push("poison.png").await?;
            Ok::<(), redisext::Error>(())
        }
    });

    let worker = Worker::new(queue, |job| async move {
        tokio::time::sleep(Duration::from_millis(10)).await; // the work
        if job.value() == "poison.png" {
            return Err(format!("{} cannot be resized", job.value()));
        }
        if job.value().ends_with("7.png") && job.delivery() == 1 {
            return Err(format!("{}: a transient failure", job.value()));
        }
        Ok(())
    })
    .concurrency(4)
    .backoff(Backoff::exponential(Duration::from_millis(50), Duration::from_secs(1)));
    let shutdown = worker.shutdown_handle();
    let live = worker.stats_handle();
    let running = tokio::spawn(worker.run());

    tokio::time::sleep(Duration::from_millis(1500)).await;
    println!("  timer: shutting down ({} handlers running)", live.get().in_flight);
    shutdown.trigger();
    let stats = running.await?;
    producer.await??;
    println!("  {stats:?}");
    println!("  last error: {}", live.last_error().unwrap_or_else(|| "none".into()));
    let counts = queue.counts().await?;
    println!("  queue after the shutdown: {counts:?}");
    while let Some(dead) = queue.pop_dead().await? {
        println!("  dead letter: {dead}");
    }
    queue.clear().await?;
    Ok(())
}

/// The same on threads, with the blocking client.
fn blocking_service(url: &str, options: &ModelOptions) -> Result<(), Box<dyn std::error::Error>> {
    println!("\n== a blocking worker: 3 threads");
    let client = Client::open(url)?;
    let queue = ReliableQueue::<Str>::with_options(&client, "thumbnails", options.clone())?;
    let names: Vec<String> = (1..=30).map(|n| format!("thumb-{n}.png")).collect();
    queue.push_many(names.iter().map(String::as_str))?;
    let worker = BlockingWorker::new(&queue, |job| {
        std::thread::sleep(Duration::from_millis(2));
        if job.value().is_empty() { Err("empty name") } else { Ok(()) }
    })
    .threads(3);
    let shutdown = worker.shutdown_handle();
    let running = std::thread::spawn(move || worker.run());
    while queue.counts()?.total() > 0 {
        std::thread::sleep(Duration::from_millis(5));
    }
    shutdown.trigger();
    let stats = running.join().map_err(|_| "the blocking worker panicked")?;
    println!("  delivered {}, acked {}, in flight at the end {}", stats.delivered, stats.acked, stats.in_flight);
    queue.clear()?;
    Ok(())
}

/// Jobs per second through the worker and through a loop written by hand, on the
/// same queue with the same concurrency and no-op handlers.
async fn throughput(queue: &Queue) -> Result<(), Box<dyn std::error::Error>> {
    let jobs: u64 = std::env::var("WORKER_JOBS").ok().and_then(|n| n.parse().ok()).unwrap_or(5_000);
    let concurrency = 16;
    println!("\n== throughput: {jobs} no-op jobs, {concurrency} at once, one multiplexed connection");
    let mut ratios = Vec::new();
    // Alternated, so that neither side has the warmer server; the median ratio
    // of the rounds is robust to one noisy round.
    for round in 1..=5 {
        let (hand, worker) = if round % 2 == 1 {
            let hand = by_hand(queue, jobs, concurrency).await?;
            (hand, with_worker(queue, jobs, concurrency).await?)
        } else {
            let worker = with_worker(queue, jobs, concurrency).await?;
            (by_hand(queue, jobs, concurrency).await?, worker)
        };
        println!(
            "  round {round}: hand-written loop {hand:>7.0} jobs/s   worker {worker:>7.0} jobs/s   worker / hand {:.2}",
            worker / hand
        );
        ratios.push(worker / hand);
    }
    ratios.sort_by(f64::total_cmp);
    println!("  median worker / hand-written loop: {:.2}", ratios[ratios.len() / 2]);
    Ok(())
}

async fn fill(queue: &Queue, jobs: u64) -> Result<(), redisext::Error> {
    let names: Vec<String> = (0..jobs).map(|n| format!("job-{n}")).collect();
    for chunk in names.chunks(1000) {
        queue.push_many(chunk.iter().map(String::as_str)).await?;
    }
    Ok(())
}

/// `concurrency` tasks, each: pop_wait, ack, until every job is acked.
async fn by_hand(queue: &Queue, jobs: u64, concurrency: usize) -> Result<f64, Box<dyn std::error::Error>> {
    fill(queue, jobs).await?;
    let acked = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..concurrency {
        let (queue, acked) = (queue.clone(), Arc::clone(&acked));
        tasks.push(tokio::spawn(async move {
            let mut last_ack = None;
            while acked.load(Ordering::Relaxed) < jobs {
                if let Some(job) = queue.pop_wait(Duration::from_secs(30), Duration::from_millis(100)).await?
                    && queue.ack(job.receipt()).await?
                    && acked.fetch_add(1, Ordering::Relaxed) + 1 == jobs
                {
                    last_ack = Some(start.elapsed());
                }
            }
            Ok::<_, redisext::Error>(last_ack)
        }));
    }
    // Timed to the last ack, as the worker is (the other tasks' waits then time out).
    let mut elapsed = None;
    for task in tasks {
        elapsed = elapsed.or(task.await??);
    }
    let elapsed = elapsed.ok_or("no task acked the last job")?;
    Ok(jobs as f64 / elapsed.as_secs_f64())
}

/// The worker with a no-op handler, until every job is acked.
async fn with_worker(queue: &Queue, jobs: u64, concurrency: usize) -> Result<f64, Box<dyn std::error::Error>> {
    fill(queue, jobs).await?;
    let worker = Worker::new(queue, |_job| async { Ok::<(), String>(()) })
        .concurrency(concurrency)
        .idle_wait(Duration::from_millis(100));
    let (shutdown, stats) = (worker.shutdown_handle(), worker.stats_handle());
    let start = Instant::now();
    let running = tokio::spawn(worker.run());
    while stats.get().acked < jobs {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let elapsed = start.elapsed();
    shutdown.trigger();
    running.await?;
    Ok(jobs as f64 / elapsed.as_secs_f64())
}
