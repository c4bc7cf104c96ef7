//! Atomicity as invariants under real concurrency: 8 threads, each with its own
//! client (its own connection), against one key. Each test prints its counts
//! (`cargo test -- --nocapture` shows them) and puts them in its assertions.

mod common;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Barrier};
use std::time::Duration;

use common::{client, server};
use redisext::serializer::Numeric;
use redisext::testing::RedisServer;
use redisext::{Counter, Lock, Pool, PriorityQueue, Queue, Stack};

const THREADS: usize = 8;

/// Runs `work(thread index, own client)` on `THREADS` threads started together,
/// and returns their results in thread order.
fn on_threads<T: Send + 'static>(
    server: &RedisServer,
    work: impl Fn(usize, redisext::Client) -> T + Send + Sync + 'static,
) -> Vec<T> {
    let work = Arc::new(work);
    let start = Arc::new(Barrier::new(THREADS));
    let handles: Vec<_> = (0..THREADS)
        .map(|index| {
            let (work, start, client) = (Arc::clone(&work), Arc::clone(&start), client(server));
            std::thread::spawn(move || {
                start.wait();
                work(index, client)
            })
        })
        .collect();
    handles.into_iter().map(|handle| handle.join().expect("worker panicked")).collect()
}

/// How many items were delivered more than once, and how many never.
fn delivery_counts(pushed: u64, delivered: &[Vec<i64>]) -> (u64, u64, u64) {
    let mut times: BTreeMap<i64, u64> = BTreeMap::new();
    for item in delivered.iter().flatten() {
        *times.entry(*item).or_default() += 1;
    }
    let total = delivered.iter().map(|items| items.len() as u64).sum::<u64>();
    let duplicates = times.values().filter(|&&n| n > 1).count() as u64;
    let missing = (0..pushed as i64).filter(|item| !times.contains_key(item)).count() as u64;
    (total, duplicates, missing)
}

#[test]
fn lock_never_has_two_holders() {
    let server = server();
    const ROUNDS: usize = 150;
    let holders = Arc::new(AtomicU64::new(0));
    let overlaps = Arc::new(AtomicU64::new(0));
    let failed_releases = Arc::new(AtomicU64::new(0));
    let (h, o, f) = (Arc::clone(&holders), Arc::clone(&overlaps), Arc::clone(&failed_releases));
    let acquired = on_threads(&server, move |_, client| {
        let lock = Lock::new(&client, "the-lock").unwrap();
        let mut acquired = 0u64;
        for _ in 0..ROUNDS {
            // Expiry far beyond the hold time, so only a real double grant can overlap.
            let Some(token) = lock.acquire_wait(Duration::from_secs(60), Duration::from_secs(30)).unwrap() else {
                continue;
            };
            acquired += 1;
            if h.fetch_add(1, Ordering::SeqCst) > 0 {
                o.fetch_add(1, Ordering::SeqCst);
            }
            std::thread::yield_now();
            h.fetch_sub(1, Ordering::SeqCst);
            if !lock.release(&token).unwrap() {
                f.fetch_add(1, Ordering::SeqCst);
            }
        }
        acquired
    });
    let acquired: u64 = acquired.iter().sum();
    let (overlaps, failed) = (overlaps.load(Ordering::SeqCst), failed_releases.load(Ordering::SeqCst));
    println!(
        "lock: {THREADS} threads, {acquired} acquisitions, {overlaps} overlapping holders, {failed} failed releases"
    );
    assert_eq!(overlaps, 0, "two holders at once: {overlaps} times in {acquired} acquisitions");
    assert_eq!(failed, 0, "a holder could not release its own lock {failed} times");
    assert_eq!(acquired, (THREADS * ROUNDS) as u64, "every attempt eventually acquired (timeouts: 30 s)");
}

#[test]
fn the_overlap_count_catches_python_redisexts_three_command_lock() {
    // A control for the test above: the same count, on Python redisext's acquire
    // (EXISTS, then SET; release is DEL) sent as plain commands. If it never saw
    // an overlap here, a zero above would prove nothing.
    let server = Arc::new(server());
    const MAX_ROUNDS: usize = 200;
    let holders = Arc::new(AtomicU64::new(0));
    let overlaps = Arc::new(AtomicU64::new(0));
    let (h, o, shared) = (Arc::clone(&holders), Arc::clone(&overlaps), Arc::clone(&server));
    let acquired = on_threads(&server, move |_, _| {
        let mut acquired = 0u64;
        // Stop at the first overlap anyone sees: one is all this needs to show.
        for _ in 0..MAX_ROUNDS {
            if o.load(Ordering::SeqCst) > 0 {
                break;
            }
            if shared.command(&["EXISTS", "racy"]).unwrap() != redisext::Reply::Int(0) {
                continue;
            }
            shared.command(&["SET", "racy", ""]).unwrap();
            acquired += 1;
            if h.fetch_add(1, Ordering::SeqCst) > 0 {
                o.fetch_add(1, Ordering::SeqCst);
            }
            std::thread::yield_now();
            h.fetch_sub(1, Ordering::SeqCst);
            shared.command(&["DEL", "racy"]).unwrap();
        }
        acquired
    });
    let acquired: u64 = acquired.iter().sum();
    let overlaps = overlaps.load(Ordering::SeqCst);
    println!("python-style lock (control): {acquired} acquisitions, {overlaps} overlapping holders before stopping");
    assert!(overlaps > 0, "the racy lock showed no overlap in {acquired} acquisitions: the count is not sensitive");
}

#[test]
fn lock_try_acquire_storm_admits_one_holder_at_a_time() {
    // Without waiting: every thread hammers `acquire` and counts what it gets.
    let server = server();
    let holders = Arc::new(AtomicU64::new(0));
    let overlaps = Arc::new(AtomicU64::new(0));
    let (h, o) = (Arc::clone(&holders), Arc::clone(&overlaps));
    let results = on_threads(&server, move |_, client| {
        let lock = Lock::new(&client, "storm").unwrap();
        let (mut won, mut lost) = (0u64, 0u64);
        for _ in 0..300 {
            match lock.acquire(Duration::from_secs(60)).unwrap() {
                Some(token) => {
                    won += 1;
                    if h.fetch_add(1, Ordering::SeqCst) > 0 {
                        o.fetch_add(1, Ordering::SeqCst);
                    }
                    h.fetch_sub(1, Ordering::SeqCst);
                    assert!(lock.release(&token).unwrap());
                }
                None => lost += 1,
            }
        }
        (won, lost)
    });
    let won: u64 = results.iter().map(|r| r.0).sum();
    let lost: u64 = results.iter().map(|r| r.1).sum();
    let overlaps = overlaps.load(Ordering::SeqCst);
    println!(
        "lock storm: {THREADS} threads, {won} acquired, {lost} refused while held, {overlaps} overlapping holders"
    );
    assert_eq!(overlaps, 0, "two holders at once: {overlaps} times in {won} acquisitions");
    assert!(won > 0, "someone acquired the lock");
}

#[test]
fn priority_queue_delivers_every_item_exactly_once_in_priority_order() {
    let server = server();
    const ITEMS: u64 = 4000;
    let client = client(&server);
    let pq = PriorityQueue::<Numeric>::new(&client, "pq").unwrap();
    // Priorities repeat (item % 97), so equal priorities are contended too.
    for item in 0..ITEMS as i64 {
        pq.push(&item, item % 97).unwrap();
    }
    let delivered = on_threads(&server, |_, client| {
        let pq = PriorityQueue::<Numeric>::new(&client, "pq").unwrap();
        std::iter::from_fn(|| pq.pop().unwrap()).collect::<Vec<i64>>()
    });
    let (total, duplicates, missing) = delivery_counts(ITEMS, &delivered);
    // Pops are serialized on the server in priority order, so what each consumer
    // received is in non-decreasing priority order too.
    let out_of_order: u64 =
        delivered.iter().map(|items| items.windows(2).filter(|w| w[0] % 97 > w[1] % 97).count() as u64).sum();
    let per_thread: Vec<usize> = delivered.iter().map(Vec::len).collect();
    println!(
        "priority queue: {ITEMS} pushed, {total} delivered to {THREADS} consumers {per_thread:?}, \
         {duplicates} duplicates, {missing} missing, {out_of_order} out of priority order"
    );
    assert_eq!((duplicates, missing, total), (0, 0, ITEMS), "duplicates, missing, delivered");
    assert_eq!(out_of_order, 0, "a consumer received a lower priority after a higher one");
}

#[test]
fn pool_pop_delivers_every_member_exactly_once() {
    let server = server();
    const ITEMS: u64 = 4000;
    let client = client(&server);
    let pool = Pool::<Numeric>::new(&client, "pool").unwrap();
    for item in 0..ITEMS as i64 {
        assert!(pool.push(&item).unwrap());
    }
    let delivered = on_threads(&server, |_, client| {
        let pool = Pool::<Numeric>::new(&client, "pool").unwrap();
        std::iter::from_fn(|| pool.pop().unwrap()).collect::<Vec<i64>>()
    });
    let (total, duplicates, missing) = delivery_counts(ITEMS, &delivered);
    println!(
        "pool: {ITEMS} pushed, {total} delivered to {THREADS} consumers, {duplicates} duplicates, {missing} missing"
    );
    assert_eq!((duplicates, missing, total), (0, 0, ITEMS), "duplicates, missing, delivered");
}

#[test]
fn queue_and_stack_deliver_every_item_exactly_once_while_producers_push() {
    // Half the threads produce while the other half consume, so pops race pushes.
    let server = server();
    const PER_PRODUCER: u64 = 500;
    let producers = THREADS / 2;
    for model in ["queue", "stack"] {
        let done = Arc::new(AtomicU64::new(0));
        let finished = Arc::new(AtomicBool::new(false));
        let (d, f) = (Arc::clone(&done), Arc::clone(&finished));
        let delivered = on_threads(&server, move |index, client| {
            let queue = Queue::<Numeric>::new(&client, "q").unwrap();
            let stack = Stack::<Numeric>::new(&client, "s").unwrap();
            let mut got = Vec::new();
            if index < producers {
                for n in 0..PER_PRODUCER {
                    let item = (index as u64 * PER_PRODUCER + n) as i64;
                    if model == "queue" {
                        queue.push(&item).unwrap()
                    } else {
                        stack.push(&item).unwrap()
                    };
                }
                if d.fetch_add(1, Ordering::SeqCst) + 1 == producers as u64 {
                    f.store(true, Ordering::SeqCst);
                }
            } else {
                loop {
                    // Read the flag before popping: an empty pop after every
                    // producer finished means the list is drained for good.
                    let all_pushed = f.load(Ordering::SeqCst);
                    let popped = if model == "queue" { queue.pop().unwrap() } else { stack.pop().unwrap() };
                    match popped {
                        Some(item) => got.push(item),
                        None if all_pushed => break,
                        None => std::thread::yield_now(),
                    }
                }
            }
            got
        });
        let pushed = producers as u64 * PER_PRODUCER;
        let (total, duplicates, missing) = delivery_counts(pushed, &delivered);
        println!(
            "{model}: {pushed} pushed by {producers} producers, {total} delivered to {} consumers, {duplicates} duplicates, {missing} missing",
            THREADS - producers
        );
        assert_eq!((duplicates, missing, total), (0, 0, pushed), "{model}: duplicates, missing, delivered");
    }
}

#[test]
fn counter_total_is_exact() {
    let server = server();
    const PER_THREAD: i64 = 500;
    let returned = on_threads(&server, |index, client| {
        let counter = Counter::new(&client, "hits").unwrap();
        // Mixed amounts; each returned value must be unique across all threads.
        (0..PER_THREAD).map(|n| counter.incr(1 + (index as i64 + n) % 3).unwrap()).collect::<Vec<i64>>()
    });
    let expected: i64 = (0..THREADS as i64).map(|t| (0..PER_THREAD).map(|n| 1 + (t + n) % 3).sum::<i64>()).sum();
    let total = Counter::new(&client(&server), "hits").unwrap().get().unwrap();
    let mut all: Vec<i64> = returned.into_iter().flatten().collect();
    all.sort_unstable();
    let repeated = all.windows(2).filter(|w| w[0] == w[1]).count();
    println!(
        "counter: {THREADS} threads x {PER_THREAD} increments, total {total} (expected {expected}), {repeated} repeated results"
    );
    assert_eq!(total, expected);
    assert_eq!(repeated, 0, "two increments returned the same value");
}
