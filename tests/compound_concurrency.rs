//! The compound models under real concurrency: 8+ threads, each with its own
//! client (its own connection), and for ResourcePool and ReliableQueue several OS
//! processes too — this test binary re-run as workers. Invariants are counted, and
//! the counts printed (`--nocapture`) and put in the assertion messages: no double
//! leases, no item delivered twice while in flight, nothing lost, capacities and
//! permits never exceeded, and a consumer killed between pop and ack loses nothing.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::{Duration, SystemTime};

use common::{client, server, server_time};
use redisext::serializer::Str;
use redisext::{
    BoundedQueue, Client, Counter, Error, Overflow, Quota, RateLimiter, ReliableQueue, ResourcePool, Semaphore,
};

const LONG: Duration = Duration::from_secs(60);
const WAIT: Duration = Duration::from_secs(30);
/// Tells a re-run of this binary which worker it is: `role url key count`.
const WORKER_ENV: &str = "REDISEXT_COMPOUND_WORKER";
/// Worker processes print their results on lines starting with this.
const REPORT: &str = "WORKER-REPORT ";

/// What one pool client saw.
#[derive(Default)]
struct PoolTally {
    checkouts: u64,
    /// A member found in use by someone else right after checkout, or a checkin refused.
    violations: u64,
    fences: Vec<u64>,
}

/// `rounds` times: check a member out (waiting), mark it in use with a counter that
/// must go from 0 to 1 (else another holder has it), unmark it, check it in.
fn pool_rounds(url: &str, key: &str, rounds: u64) -> PoolTally {
    let client = Client::open(url).unwrap();
    let pool = ResourcePool::<Str>::new(&client, key).unwrap();
    let mut tally = PoolTally::default();
    for _ in 0..rounds {
        let lease = pool.checkout_wait(LONG, WAIT).unwrap().expect("a member within the wait");
        tally.checkouts += 1;
        tally.fences.push(lease.fence());
        let in_use = Counter::new(&client, format!("in-use:{}", lease.member())).unwrap();
        if in_use.incr(1).unwrap() != 1 {
            tally.violations += 1;
        }
        if in_use.incr(-1).unwrap() != 0 {
            tally.violations += 1;
        }
        if !pool.checkin(&lease).unwrap() {
            tally.violations += 1;
        }
    }
    tally
}

/// What one queue consumer saw.
#[derive(Default)]
struct QueueTally {
    deliveries: u64,
    nacks: u64,
    /// An item found in flight with another consumer, or an ack/nack refused.
    violations: u64,
    acked: Vec<String>,
}

/// Pops until the queue stays empty for a while; marks each item busy with a
/// counter that must go from 0 to 1 (else it is delivered twice while in flight);
/// nacks the first delivery of every 7th item, acks the rest.
fn queue_consume(url: &str, key: &str) -> QueueTally {
    let client = Client::open(url).unwrap();
    let queue = ReliableQueue::<Str>::new(&client, key).unwrap();
    let mut tally = QueueTally::default();
    while let Some(delivered) = queue.pop_wait(LONG, Duration::from_millis(500)).unwrap() {
        tally.deliveries += 1;
        let busy = Counter::new(&client, format!("busy:{}", delivered.value())).unwrap();
        if busy.incr(1).unwrap() != 1 {
            tally.violations += 1;
        }
        if busy.incr(-1).unwrap() != 0 {
            tally.violations += 1;
        }
        let number: u64 = delivered.value().trim_start_matches("item-").parse().unwrap();
        if number.is_multiple_of(7) && delivered.delivery() == 1 {
            tally.nacks += 1;
            if queue.nack(delivered.receipt()).unwrap() != redisext::Nacked::Requeued {
                tally.violations += 1;
            }
        } else if queue.ack(delivered.receipt()).unwrap() {
            tally.acked.push(delivered.into_value());
        } else {
            tally.violations += 1;
        }
    }
    tally
}

/// The entry point of worker processes: this test binary, re-run by the tests
/// below with `WORKER_ENV` set. Without it (a plain `--ignored` run) it does nothing.
#[test]
#[ignore = "a worker process, started by the multi-process tests"]
fn worker() {
    let Ok(spec) = std::env::var(WORKER_ENV) else { return };
    let fields: Vec<&str> = spec.split(' ').collect();
    let [role, url, key, count] = fields[..] else { panic!("bad worker spec {spec:?}") };
    let count: u64 = count.parse().unwrap();
    match role {
        "pool" => {
            let threads: Vec<_> = (0..4)
                .map(|_| {
                    let (url, key) = (url.to_owned(), key.to_owned());
                    thread::spawn(move || pool_rounds(&url, &key, count))
                })
                .collect();
            for tally in threads.into_iter().map(|t| t.join().unwrap()) {
                let fences: Vec<String> = tally.fences.iter().map(u64::to_string).collect();
                println!("{REPORT}{} {} {}", tally.checkouts, tally.violations, fences.join(","));
            }
        }
        "queue" => {
            let threads: Vec<_> = (0..4)
                .map(|_| {
                    let (url, key) = (url.to_owned(), key.to_owned());
                    thread::spawn(move || queue_consume(&url, &key))
                })
                .collect();
            for tally in threads.into_iter().map(|t| t.join().unwrap()) {
                println!("{REPORT}{} {} {} {}", tally.deliveries, tally.nacks, tally.violations, tally.acked.join(","));
            }
        }
        "crash-queue" => {
            let client = Client::open(url).unwrap();
            let queue = ReliableQueue::<Str>::new(&client, key).unwrap();
            let delivered = queue.pop(Duration::from_millis(count)).unwrap().expect("an item to hold");
            println!("{REPORT}{} {} {}", delivered.value(), delivered.delivery(), unix_ms(delivered.deadline()));
            thread::sleep(Duration::from_secs(120)); // killed here, between pop and ack
        }
        "crash-pool" => {
            let client = Client::open(url).unwrap();
            let pool = ResourcePool::<Str>::new(&client, key).unwrap();
            let lease = pool.checkout(Duration::from_millis(count)).unwrap().expect("a member to hold");
            println!("{REPORT}{} {} {}", lease.member(), lease.fence(), unix_ms(lease.deadline()));
            thread::sleep(Duration::from_secs(120)); // killed here, before checkin
        }
        other => panic!("unknown worker role {other}"),
    }
}

/// A server-time deadline as milliseconds since the Unix epoch.
fn unix_ms(moment: SystemTime) -> u128 {
    moment.duration_since(SystemTime::UNIX_EPOCH).unwrap().as_millis()
}

/// Starts this test binary as a worker process.
fn spawn_worker(role: &str, url: &str, key: &str, count: u64) -> Child {
    Command::new(std::env::current_exe().unwrap())
        .args(["worker", "--exact", "--ignored", "--nocapture", "--test-threads=1", "-q"])
        .env(WORKER_ENV, format!("{role} {url} {key} {count}"))
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap()
}

/// Reads a worker's report lines until it exits (or, with `first_only`, the first one).
fn reports(child: &mut Child, first_only: bool) -> Vec<String> {
    let stdout = child.stdout.take().unwrap();
    let mut lines = Vec::new();
    for line in BufReader::new(stdout).lines() {
        if let Some(report) = line.unwrap().strip_prefix(REPORT) {
            lines.push(report.to_owned());
            if first_only {
                break;
            }
        }
    }
    lines
}

#[test]
fn resource_pool_never_leases_a_member_twice_across_threads_and_processes() {
    let server = server();
    let url = server.url();
    let pool = ResourcePool::<Str>::new(&client(&server), "shared-pool").unwrap();
    const MEMBERS: u64 = 4;
    for i in 0..MEMBERS {
        pool.add(&format!("member-{i}")).unwrap();
    }
    const ROUNDS: u64 = 40;
    let mut processes: Vec<Child> = (0..3).map(|_| spawn_worker("pool", &url, "shared-pool", ROUNDS)).collect();
    let threads: Vec<_> = (0..8)
        .map(|_| {
            let url = url.clone();
            thread::spawn(move || pool_rounds(&url, "shared-pool", ROUNDS))
        })
        .collect();

    let (mut checkouts, mut violations, mut fences) = (0, 0, Vec::new());
    for tally in threads.into_iter().map(|t| t.join().unwrap()) {
        checkouts += tally.checkouts;
        violations += tally.violations;
        fences.extend(tally.fences);
    }
    for process in &mut processes {
        for report in reports(process, false) {
            let mut fields = report.splitn(3, ' ');
            checkouts += fields.next().unwrap().parse::<u64>().unwrap();
            violations += fields.next().unwrap().parse::<u64>().unwrap();
            fences
                .extend(fields.next().unwrap().split(',').filter(|f| !f.is_empty()).map(|f| f.parse::<u64>().unwrap()));
        }
        assert!(process.wait().unwrap().success(), "a worker process failed");
    }
    let distinct_fences = fences.iter().collect::<BTreeSet<_>>().len() as u64;
    let counts = pool.counts().unwrap();
    println!(
        "resource pool: 8 threads + 3 processes x 4 threads, {MEMBERS} members: {checkouts} checkouts, \
         {violations} double leases or refused checkins, {distinct_fences} distinct fencing numbers, final {counts:?}"
    );
    let expected = (8 + 3 * 4) * ROUNDS;
    assert_eq!(checkouts, expected, "every round checked a member out");
    assert_eq!(violations, 0, "double leases or refused checkins: {violations} of {checkouts}");
    assert_eq!(distinct_fences, checkouts, "one fencing number per lease");
    assert_eq!(counts.idle, MEMBERS, "no member lost: {counts:?}");
    assert_eq!(counts.leased + counts.expired, 0, "{counts:?}");
}

#[test]
fn reliable_queue_delivers_each_item_once_at_a_time_and_loses_none() {
    let server = server();
    let url = server.url();
    let queue = ReliableQueue::<Str>::new(&client(&server), "shared-jobs").unwrap();
    const ITEMS: u64 = 700;
    let items: Vec<String> = (0..ITEMS).map(|i| format!("item-{i}")).collect();
    for chunk in items.chunks(100) {
        queue.push_many(chunk.iter().map(String::as_str)).unwrap();
    }
    let mut processes: Vec<Child> = (0..3).map(|_| spawn_worker("queue", &url, "shared-jobs", 0)).collect();
    let threads: Vec<_> = (0..8)
        .map(|_| {
            let url = url.clone();
            thread::spawn(move || queue_consume(&url, "shared-jobs"))
        })
        .collect();

    let (mut deliveries, mut nacks, mut violations) = (0, 0, 0);
    let mut acked: BTreeMap<String, u64> = BTreeMap::new();
    let mut record = |value: String| *acked.entry(value).or_default() += 1;
    for tally in threads.into_iter().map(|t| t.join().unwrap()) {
        deliveries += tally.deliveries;
        nacks += tally.nacks;
        violations += tally.violations;
        tally.acked.into_iter().for_each(&mut record);
    }
    let mut per_process = Vec::new();
    for process in &mut processes {
        let mut by_this_process = 0;
        for report in reports(process, false) {
            let mut fields = report.splitn(4, ' ');
            let count = fields.next().unwrap().parse::<u64>().unwrap();
            by_this_process += count;
            deliveries += count;
            nacks += fields.next().unwrap().parse::<u64>().unwrap();
            violations += fields.next().unwrap().parse::<u64>().unwrap();
            fields.next().unwrap().split(',').filter(|v| !v.is_empty()).map(str::to_owned).for_each(&mut record);
        }
        per_process.push(by_this_process);
        assert!(process.wait().unwrap().success(), "a worker process failed");
    }
    let acked_twice = acked.values().filter(|&&n| n > 1).count();
    let lost = items.iter().filter(|item| !acked.contains_key(*item)).count();
    let counts = queue.counts().unwrap();
    println!(
        "reliable queue: 8 threads + 3 processes x 4 threads, {ITEMS} items: {deliveries} deliveries, {nacks} nacks, \
         {violations} deliveries while in flight elsewhere or refused acks, {acked_twice} acked twice, {lost} lost, \
         final {counts:?}; deliveries by each worker process: {per_process:?}"
    );
    assert_eq!(violations, 0, "items delivered twice while in flight, or acks refused: {violations}");
    assert_eq!((acked_twice, lost), (0, 0), "acked twice, lost");
    assert_eq!(nacks, ITEMS.div_ceil(7), "every 7th item was nacked once");
    assert_eq!(deliveries, ITEMS + nacks, "each nack caused exactly one redelivery");
    assert_eq!((counts.total(), counts.dead), (0, 0), "{counts:?}");
}

/// Starts a worker that takes one item or member with a 300 ms deadline and
/// reports `value number deadline`; kills it (SIGKILL) right after the report, so it
/// never acknowledges nor checks in. Returns what it held, its delivery or fencing
/// number, and its deadline in Unix ms.
fn killed_holding(role: &str, url: &str, key: &str) -> (String, u64, u128) {
    let mut worker = spawn_worker(role, url, key, 300);
    let report = reports(&mut worker, true);
    worker.kill().unwrap();
    worker.wait().unwrap();
    let fields: Vec<&str> = report.first().expect("the worker's report").split(' ').collect();
    let [held, number, deadline] = fields[..] else { panic!("{report:?}") };
    (held.to_owned(), number.parse().unwrap(), deadline.parse().unwrap())
}

#[test]
fn reliable_queue_item_of_a_killed_consumer_comes_back_once() {
    let server = server();
    let queue = ReliableQueue::<Str>::new(&client(&server), "crash-jobs").unwrap();
    queue.push("precious").unwrap();
    let (value, delivery, first_deadline) = killed_holding("crash-queue", &server.url(), "crash-jobs");
    assert_eq!((value.as_str(), delivery), ("precious", 1), "the worker popped the item");
    let counts = queue.counts().unwrap();
    assert_eq!((counts.ready, counts.in_flight + counts.overdue), (0, 1), "in flight with the dead consumer");

    let again = queue.pop_wait(LONG, WAIT).unwrap().expect("back after its deadline");
    assert_eq!((again.value().as_str(), again.delivery()), ("precious", 2));
    let redelivered_at = unix_ms(again.deadline()) - LONG.as_millis();
    assert!(redelivered_at >= first_deadline, "redelivered at {redelivered_at}, before the deadline {first_deadline}");
    assert!(queue.pop(LONG).unwrap().is_none(), "delivered once more, not twice");
    assert!(queue.ack(again.receipt()).unwrap());
    assert_eq!(queue.counts().unwrap().total(), 0);
    println!("reliable queue crash: killed consumer's item redelivered once (delivery 2) and acknowledged");
}

#[test]
fn resource_pool_member_of_a_killed_holder_comes_back() {
    let server = server();
    let pool = ResourcePool::<Str>::new(&client(&server), "crash-pool").unwrap();
    pool.add("connection-1").unwrap();
    let (member, fence, first_deadline) = killed_holding("crash-pool", &server.url(), "crash-pool");
    assert_eq!(member, "connection-1", "the worker checked the member out");
    let lease = pool.checkout_wait(LONG, WAIT).unwrap().expect("reclaimed after the dead holder's deadline");
    assert_eq!(lease.member(), "connection-1");
    assert!(lease.fence() > fence, "the new lease fences out the dead holder");
    let leased_at = unix_ms(lease.deadline()) - LONG.as_millis();
    assert!(leased_at >= first_deadline, "leased again at {leased_at}, before the deadline {first_deadline}");
    assert!(pool.checkin(&lease).unwrap());
    println!("resource pool crash: dead holder's member reclaimed with fence {} > {fence}", lease.fence());
}

#[test]
fn bounded_queue_never_exceeds_its_capacity_and_loses_nothing() {
    let server = server();
    let url = server.url();
    const CAPACITY: u64 = 10;
    const PER_PRODUCER: u64 = 150;
    let queue = BoundedQueue::<Str>::new(&client(&server), "bounded", CAPACITY, Overflow::Reject).unwrap();
    let done = Arc::new(AtomicBool::new(false));
    let max_seen = Arc::new(AtomicU64::new(0));
    let monitor = {
        let (queue, done, max_seen) = (queue.on(&client(&server)), done.clone(), max_seen.clone());
        thread::spawn(move || {
            while !done.load(Ordering::Relaxed) {
                max_seen.fetch_max(queue.size().unwrap(), Ordering::Relaxed);
            }
        })
    };
    let fulls = Arc::new(AtomicU64::new(0));
    let producers: Vec<_> = (0..4)
        .map(|p| {
            let (url, fulls) = (url.clone(), fulls.clone());
            thread::spawn(move || {
                let queue =
                    BoundedQueue::<Str>::new(&Client::open(&url).unwrap(), "bounded", CAPACITY, Overflow::Reject)
                        .unwrap();
                for i in 0..PER_PRODUCER {
                    let item = format!("p{p}-{i}");
                    // Every other push is a batch of two, all or nothing.
                    loop {
                        let result = if i.is_multiple_of(2) {
                            queue.push(&item).map(|_| ())
                        } else {
                            queue.push_many([item.as_str(), &format!("{item}-b")]).map(|_| ())
                        };
                        match result {
                            Ok(()) => break,
                            Err(Error::Full { .. }) => {
                                fulls.fetch_add(1, Ordering::Relaxed);
                                thread::yield_now();
                            }
                            Err(other) => panic!("{other}"),
                        }
                    }
                }
            })
        })
        .collect();
    let consumers: Vec<_> = (0..4)
        .map(|_| {
            let url = url.clone();
            thread::spawn(move || {
                let queue =
                    BoundedQueue::<Str>::new(&Client::open(&url).unwrap(), "bounded", CAPACITY, Overflow::Reject)
                        .unwrap();
                let mut got = Vec::new();
                while let Some(item) = queue.pop_wait(Duration::from_millis(500)).unwrap() {
                    got.push(item);
                }
                got
            })
        })
        .collect();
    producers.into_iter().for_each(|p| p.join().unwrap());
    let mut consumed: BTreeMap<String, u64> = BTreeMap::new();
    for item in consumers.into_iter().flat_map(|c| c.join().unwrap()) {
        *consumed.entry(item).or_default() += 1;
    }
    done.store(true, Ordering::Relaxed);
    monitor.join().unwrap();
    let produced = 4 * (PER_PRODUCER + PER_PRODUCER / 2);
    let twice = consumed.values().filter(|&&n| n > 1).count();
    let max_seen = max_seen.load(Ordering::Relaxed);
    println!(
        "bounded queue: 4 producers + 4 consumers + 1 monitor, capacity {CAPACITY}: {produced} items pushed, \
         {} consumed, {twice} consumed twice, {} refused pushes (Full), largest length seen {max_seen}",
        consumed.len(),
        fulls.load(Ordering::Relaxed)
    );
    assert!(max_seen <= CAPACITY, "length {max_seen} exceeded the capacity {CAPACITY}");
    assert_eq!(twice, 0, "items consumed twice");
    assert_eq!(consumed.len() as u64, produced, "items lost");
    assert_eq!(queue.size().unwrap(), 0);
}

#[test]
fn bounded_queue_with_eviction_accounts_for_every_item() {
    let server = server();
    let url = server.url();
    const CAPACITY: u64 = 5;
    const PER_THREAD: u64 = 200;
    let barrier = Arc::new(Barrier::new(8));
    let threads: Vec<_> = (0..8)
        .map(|t| {
            let (url, barrier) = (url.clone(), barrier.clone());
            thread::spawn(move || {
                let queue =
                    BoundedQueue::<Str>::new(&Client::open(&url).unwrap(), "ring", CAPACITY, Overflow::EvictOldest)
                        .unwrap();
                barrier.wait();
                let (mut evicted, mut popped, mut violations) = (Vec::new(), Vec::new(), 0);
                for i in 0..PER_THREAD {
                    evicted.extend(queue.push(&format!("t{t}-{i}")).unwrap());
                    if queue.size().unwrap() > CAPACITY {
                        violations += 1;
                    }
                    if i.is_multiple_of(3) {
                        popped.extend(queue.pop().unwrap());
                    }
                }
                (evicted, popped, violations)
            })
        })
        .collect();
    let mut seen: BTreeMap<String, u64> = BTreeMap::new();
    let (mut evicted_count, mut violations) = (0, 0);
    for (evicted, popped, bad) in threads.into_iter().map(|t| t.join().unwrap()) {
        evicted_count += evicted.len();
        violations += bad;
        for item in evicted.into_iter().chain(popped) {
            *seen.entry(item).or_default() += 1;
        }
    }
    let queue = BoundedQueue::<Str>::new(&client(&server), "ring", CAPACITY, Overflow::EvictOldest).unwrap();
    let remaining = queue.size().unwrap();
    while let Some(item) = queue.pop().unwrap() {
        *seen.entry(item).or_default() += 1;
    }
    let twice = seen.values().filter(|&&n| n > 1).count();
    println!(
        "bounded queue (evict): 8 threads, capacity {CAPACITY}: {} pushed, {evicted_count} evicted, {remaining} left, \
         {twice} seen twice, {violations} lengths above capacity",
        8 * PER_THREAD
    );
    assert_eq!(violations, 0, "lengths above the capacity");
    assert!(remaining <= CAPACITY);
    assert_eq!(twice, 0, "an item evicted or popped twice");
    assert_eq!(seen.len() as u64, 8 * PER_THREAD, "every item was evicted, popped or left: none lost");
}

#[test]
fn semaphore_never_grants_more_than_its_permits() {
    let server = server();
    let url = server.url();
    const PERMITS: u32 = 3;
    const ROUNDS: u64 = 40;
    let threads: Vec<_> = (0..10)
        .map(|_| {
            let url = url.clone();
            thread::spawn(move || {
                let client = Client::open(&url).unwrap();
                let semaphore = Semaphore::new(&client, "permits", PERMITS).unwrap();
                let holders = Counter::new(&client, "holders").unwrap();
                let (mut violations, mut most) = (0, 0);
                for _ in 0..ROUNDS {
                    let permit = semaphore.acquire_wait(LONG, WAIT).unwrap().expect("a permit within the wait");
                    let now = holders.incr(1).unwrap();
                    most = most.max(now);
                    if now > i64::from(PERMITS) {
                        violations += 1;
                    }
                    holders.incr(-1).unwrap();
                    if !semaphore.release(&permit).unwrap() {
                        violations += 1;
                    }
                }
                (violations, most)
            })
        })
        .collect();
    let (mut violations, mut most) = (0, 0);
    for (bad, top) in threads.into_iter().map(|t| t.join().unwrap()) {
        violations += bad;
        most = most.max(top);
    }
    let held = Semaphore::new(&client(&server), "permits", PERMITS).unwrap().held().unwrap();
    println!(
        "semaphore: 10 threads x {ROUNDS} rounds, {PERMITS} permits: most holders at once {most}, \
         {violations} over-grants or refused releases, {held} held at the end"
    );
    assert_eq!(violations, 0, "over-grants or refused releases");
    assert!((1..=i64::from(PERMITS)).contains(&most), "most holders at once: {most}");
    assert_eq!(held, 0);
}

#[test]
fn rate_limiter_never_admits_more_than_the_quota() {
    let server = server();
    let url = server.url();
    const ATTEMPTS: u64 = 60;
    // Slow refill (1 unit per 36 s): the burst of 100 is essentially all there is.
    let slow = Quota::new(100, Duration::from_secs(3600));
    // Fast refill (1 unit per 5 ms, burst 10): admissions follow the clock.
    let fast = Quota::new(200, Duration::from_secs(1)).burst(10);
    for (name, quota, interval) in [("slow", slow, Duration::from_secs(36)), ("fast", fast, Duration::from_millis(5))] {
        let start = server_time(&server);
        let threads: Vec<_> = (0..8)
            .map(|_| {
                let url = url.clone();
                thread::spawn(move || {
                    let limiter = RateLimiter::new(&Client::open(&url).unwrap(), name, quota).unwrap();
                    (0..ATTEMPTS).filter(|_| limiter.acquire(1).unwrap().allowed).count() as u64
                })
            })
            .collect();
        let admitted: u64 = threads.into_iter().map(|t| t.join().unwrap()).sum();
        let elapsed = server_time(&server).duration_since(start).unwrap();
        let burst = if name == "slow" { 100 } else { 10 };
        let bound = burst + (elapsed.as_micros() / interval.as_micros()) as u64 + 1;
        println!(
            "rate limiter ({name}): 8 threads x {ATTEMPTS} attempts over {elapsed:?} of server time: {admitted} admitted, \
             at most {bound} allowed"
        );
        assert!(admitted <= bound, "{admitted} admitted, more than the quota's {bound}");
        assert!(admitted >= burst.min(8 * ATTEMPTS), "the burst was admitted: {admitted}");
    }
}
