//! Queue workers and streams against a real server: every item handled, each
//! success exactly once, failures retried after their backoff and dead-lettered
//! after the queue's maximum deliveries, deadlines extended while handlers run,
//! a graceful shutdown that settles what is in flight and pops nothing more, and
//! streams of pops for the plain models.
#![cfg(feature = "tokio")]

mod common;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{client, server};
use futures_util::StreamExt;
use redisext::serializer::{Raw, Str};
use redisext::testing::RedisServer;
use redisext::worker::{Backoff, BlockingWorker, PopStream, Shutdown, Worker, WorkerStats, deliveries};
use redisext::{AsyncClient, PriorityQueue, Queue, ReliableQueue, Stack};

fn async_client(server: &RedisServer) -> AsyncClient {
    AsyncClient::open(&server.url()).unwrap()
}

/// Waits (up to 30 s: a liveness bound, not a timing claim) until `check` holds.
async fn eventually(what: &str, mut check: impl AsyncFnMut() -> bool) {
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while !check().await {
        assert!(std::time::Instant::now() < deadline, "timed out waiting until {what}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Successes per item, shared by a test's handlers.
type Tally = Arc<Mutex<HashMap<String, u32>>>;

fn count(tally: &Tally, item: &str) {
    *tally.lock().unwrap().entry(item.to_owned()).or_default() += 1;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_item_succeeds_once_failures_are_retried_and_poison_is_dead_lettered() {
    let server = server();
    let client = async_client(&server);
    let queue = ReliableQueue::<Str, _>::new(&client, "jobs").unwrap().with_max_deliveries(3).unwrap();
    let items: Vec<String> = (0..300).map(|i| format!("job {i}")).collect();
    queue.push_many(items.iter().map(String::as_str)).await.unwrap();
    queue.push("poison").await.unwrap();

    let succeeded = Tally::default();
    let tally = Arc::clone(&succeeded);
    let worker = Worker::new(&queue, move |job| {
        let tally = Arc::clone(&tally);
        async move {
            let number: Option<u32> = job.value().strip_prefix("job ").and_then(|n| n.parse().ok());
            match number {
                None => panic!("a poison item panics its handler"),
                // Every tenth job fails its first delivery.
                Some(n) if n % 10 == 0 && job.delivery() == 1 => Err(format!("{} failed once", job.value())),
                Some(_) => {
                    count(&tally, job.value());
                    Ok(())
                }
            }
        }
    })
    .concurrency(16)
    .backoff(Backoff::fixed(Duration::from_millis(20)));
    let shutdown = worker.shutdown_handle();
    let stats = worker.stats_handle();
    let running = tokio::spawn(worker.run());

    eventually("the queue is drained", async || queue.counts().await.unwrap().total() == 0).await;
    shutdown.trigger();
    let stats_at_end = running.await.unwrap();
    assert_eq!(stats_at_end, stats.get());

    {
        let succeeded = succeeded.lock().unwrap();
        assert_eq!(succeeded.len(), 300, "every job succeeded");
        assert!(succeeded.values().all(|times| *times == 1), "and each exactly once");
    }
    assert_eq!(queue.pop_dead().await.unwrap().as_deref(), Some("poison"));
    assert_eq!(queue.counts().await.unwrap().dead, 0);
    let WorkerStats {
        delivered,
        succeeded,
        failed,
        panicked,
        acked,
        retried,
        dead_lettered,
        stale,
        errors,
        in_flight,
        ..
    } = stats_at_end;
    assert_eq!((succeeded, acked, stale, errors, in_flight), (300, 300, 0, 0, 0));
    assert_eq!((failed, panicked), (30 + 3, 3), "30 first deliveries and the poison's 3");
    assert_eq!((retried, dead_lettered), (30 + 2, 1), "the poison's last delivery is dead-lettered");
    assert_eq!(delivered, 300 + 30 + 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_running_handler_keeps_its_delivery_and_a_shutdown_settles_it_and_pops_nothing_more() {
    let server = server();
    let client = async_client(&server);
    let queue = ReliableQueue::<Str, _>::new(&client, "reports").unwrap();
    let reports: Vec<String> = (0..10).map(|i| format!("report {i}")).collect();
    queue.push_many(reports.iter().map(String::as_str)).await.unwrap();

    // Handlers wait for the gate, which opens after the shutdown is triggered.
    let (open_gate, gate) = tokio::sync::watch::channel(false);
    let worker = Worker::new(&queue, move |_job| {
        let mut gate = gate.clone();
        async move { gate.wait_for(|open| *open).await.map(drop).map_err(|e| e.to_string()) }
    })
    .concurrency(2)
    // Short deadlines: without the extensions the items would be redelivered.
    .visibility(Duration::from_millis(300));
    let shutdown = worker.shutdown_handle();
    let stats = worker.stats_handle();
    let running = tokio::spawn(worker.run());

    eventually("two handlers run", async || stats.get().in_flight == 2).await;
    // Well past the 300 ms visibility: only the extensions keep both in flight.
    eventually("the deadlines were extended three times each", async || stats.get().extended >= 6).await;
    let other_consumer = queue.pop(Duration::from_secs(30)).await.unwrap().expect("eight are ready");
    assert_eq!(other_consumer.delivery(), 1, "a ready item, not one of the two being handled");
    assert!(queue.ack(other_consumer.receipt()).await.unwrap());
    let counts = queue.counts().await.unwrap();
    assert_eq!((counts.in_flight, counts.overdue, counts.ready), (2, 0, 7));

    shutdown.trigger();
    open_gate.send(true).unwrap();
    let stats = running.await.unwrap();
    assert_eq!((stats.delivered, stats.acked, stats.stale, stats.leases_lost, stats.in_flight), (2, 2, 0, 0, 0));
    assert_eq!(queue.counts().await.unwrap().total(), 7, "popped nothing after the shutdown");
}

#[tokio::test]
async fn a_delivery_the_serializer_cannot_decode_fails_until_it_is_dead_lettered() {
    let server = server();
    let client = async_client(&server);
    let queue = ReliableQueue::<Str, _>::new(&client, "texts").unwrap().with_max_deliveries(2).unwrap();
    ReliableQueue::<Raw, _>::new(&client, "texts").unwrap().push(b"\xff not UTF-8").await.unwrap();
    let worker = Worker::new(&queue, |_job| async { Ok::<(), String>(()) }).backoff(Backoff::none());
    let (shutdown, stats) = (worker.shutdown_handle(), worker.stats_handle());
    let running = tokio::spawn(worker.run());
    eventually("it is dead", async || queue.counts().await.unwrap().dead == 1).await;
    shutdown.trigger();
    let stats_at_end = running.await.unwrap();
    assert_eq!((stats_at_end.undecodable, stats_at_end.retried, stats_at_end.dead_lettered), (2, 1, 1));
    assert!(stats.last_error().unwrap().contains("Str"), "{:?}", stats.last_error());
}

#[test]
fn the_blocking_worker_handles_every_item_once_on_threads() {
    let server = server();
    let client = Client::builder().master(&server.url()).reuse(pooled()).build().unwrap();
    let queue = ReliableQueue::<Str>::new(&client, "tasks").unwrap().with_max_deliveries(2).unwrap();
    let items: Vec<String> = (0..200).map(|i| format!("task {i}")).collect();
    queue.push_many(items.iter().map(String::as_str)).unwrap();
    queue.push("poison").unwrap();

    let succeeded = Tally::default();
    let tally = Arc::clone(&succeeded);
    let worker = BlockingWorker::new(&queue, move |job| {
        if job.value() == "poison" {
            return Err("poison");
        }
        if job.value().ends_with('7') && job.delivery() == 1 {
            panic!("{} panics on its first delivery", job.value());
        }
        count(&tally, job.value());
        Ok(())
    })
    .threads(8)
    .backoff(Backoff::fixed(Duration::from_millis(10)));
    let shutdown = worker.shutdown_handle();
    let running = std::thread::spawn(move || worker.run());
    server.wait_until(Duration::from_secs(30), |_| Ok(queue.counts().unwrap().total() == 0)).unwrap();
    shutdown.trigger();
    let stats = running.join().unwrap();

    let succeeded = succeeded.lock().unwrap();
    assert_eq!(succeeded.len(), 200);
    assert!(succeeded.values().all(|times| *times == 1));
    assert_eq!(queue.pop_dead().unwrap().as_deref(), Some("poison"));
    assert_eq!((stats.acked, stats.panicked, stats.dead_lettered, stats.stale, stats.in_flight), (200, 20, 1, 0, 0));
    assert_eq!(stats.retried, 20 + 1);
}

#[cfg(feature = "pool")]
fn pooled() -> redisext::Reuse {
    redisext::Reuse::Pooled { max_size: 10 }
}

#[cfg(not(feature = "pool"))]
fn pooled() -> redisext::Reuse {
    redisext::Reuse::Lazy
}

use redisext::Client;

#[test]
fn the_blocking_worker_extends_long_handlers_and_stops_on_shutdown() {
    let server = server();
    let client = client(&server);
    let queue = ReliableQueue::<Str>::new(&client, "long").unwrap();
    queue.push_many(["one", "two", "three"]).unwrap();
    let (started, release) = (Arc::new(std::sync::Barrier::new(2)), Shutdown::new());
    let (started_in_handler, release_in_handler) = (Arc::clone(&started), release.clone());
    let worker = BlockingWorker::new(&queue, move |_job| {
        started_in_handler.wait();
        // Blocks until the test lets it go: many visibilities later.
        release_in_handler.wait_timeout(Duration::from_secs(60));
        Ok::<(), String>(())
    })
    .threads(1)
    .visibility(Duration::from_millis(300));
    let (shutdown, stats) = (worker.shutdown_handle(), worker.stats_handle());
    let running = std::thread::spawn(move || worker.run());
    started.wait();
    server.wait_until(Duration::from_secs(30), |_| Ok(stats.get().extended >= 4)).unwrap();
    let counts = queue.counts().unwrap();
    assert_eq!((counts.in_flight, counts.overdue, counts.ready), (1, 0, 2), "still held, never redelivered");
    shutdown.trigger();
    release.trigger();
    let stats = running.join().unwrap();
    assert_eq!((stats.delivered, stats.acked, stats.stale), (1, 1, 0));
    assert_eq!(queue.counts().unwrap().ready, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn eight_delivery_streams_share_a_queue_without_a_double_delivery() {
    let server = server();
    let client = async_client(&server);
    let queue = ReliableQueue::<Str, _>::new(&client, "stream").unwrap();
    let items: Vec<String> = (0..400).map(|i| i.to_string()).collect();
    queue.push_many(items.iter().map(String::as_str)).await.unwrap();
    let shutdown = Shutdown::new();
    let seen = Tally::default();
    let mut consumers = Vec::new();
    for _ in 0..8 {
        let mut stream = deliveries(&queue, Duration::from_secs(30)).until(&shutdown);
        let (queue, seen) = (queue.clone(), Arc::clone(&seen));
        consumers.push(tokio::spawn(async move {
            while let Some(delivered) = stream.next().await {
                let delivered = delivered.unwrap();
                count(&seen, delivered.value());
                assert!(queue.ack(delivered.receipt()).await.unwrap());
            }
        }));
    }
    eventually("all are acked", async || queue.counts().await.unwrap().total() == 0).await;
    shutdown.trigger();
    for consumer in consumers {
        consumer.await.unwrap();
    }
    let seen = seen.lock().unwrap();
    assert_eq!(seen.len(), 400);
    assert!(seen.values().all(|times| *times == 1), "no item delivered twice");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn polling_streams_pop_queues_stacks_and_priority_queues_in_order_and_see_late_pushes() {
    let server = server();
    let client = async_client(&server);
    let queue = Queue::<Str, _>::new(&client, "q").unwrap();
    let stack = Stack::<Str, _>::new(&client, "s").unwrap();
    let tasks = PriorityQueue::<Str, _>::new(&client, "p").unwrap();
    for item in ["a", "b", "c"] {
        queue.push(item).await.unwrap();
        stack.push(item).await.unwrap();
    }
    tasks.push("low", 9).await.unwrap();
    tasks.push("high", 1).await.unwrap();

    let shutdown = Shutdown::new();
    let popper = queue.clone();
    let mut from_queue = PopStream::polling(move || popper.pop()).until(&shutdown);
    let popper = stack.clone();
    let from_stack = PopStream::polling(move || popper.pop()).until(&shutdown);
    let popper = tasks.clone();
    let from_tasks = PopStream::polling(move || popper.pop()).max_pause(Duration::from_millis(20));
    let firsts: Vec<String> = from_queue.by_ref().take(3).map(Result::unwrap).collect().await;
    assert_eq!(firsts, ["a", "b", "c"]);
    let lifo: Vec<String> = from_stack.take(3).map(Result::unwrap).collect().await;
    assert_eq!(lifo, ["c", "b", "a"]);
    let by_priority: Vec<String> = from_tasks.take(2).map(Result::unwrap).collect().await;
    assert_eq!(by_priority, ["high", "low"]);

    // An empty queue is polled until a late push arrives.
    let late = tokio::spawn({
        let queue = queue.clone();
        async move {
            tokio::time::sleep(Duration::from_millis(50)).await;
            queue.push("late").await.unwrap();
        }
    });
    assert_eq!(from_queue.next().await.unwrap().unwrap(), "late");
    late.await.unwrap();
    shutdown.trigger();
    assert!(from_queue.next().await.is_none(), "ends after the shutdown");
}
