//! Real faults under load, 16 threads per model, each thread a client of its own
//! (as separate processes would be): the server kills every client connection
//! every 50 ms, flushes its scripts every 10 ms, or is restarted (its append-only
//! file written before each reply). The models that settle an uncertain outcome
//! by a token or an operation id must hide every fault: no error surfaced, no
//! permit, lease or delivery leaked, counters exact. Plain writes may fail, but
//! only with a typed error that says whether they may have applied, and nothing
//! acknowledged is lost.

mod common;

use std::collections::{BTreeMap, HashSet};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, AtomicUsize, Ordering};
use std::thread;
use std::time::Duration;

use common::{client, server};
use redisext::serializer::Str;
use redisext::testing::{RedisServer, Repeated, Repeating};
use redisext::{
    Client, Counter, Error, Lock, Map, Model, ModelOptions, Queue, ReliableQueue, Reply, ResourcePool, Semaphore,
};

const THREADS: usize = 16;
const LONG: Duration = Duration::from_secs(60);
const WAIT: Duration = Duration::from_secs(10);

/// `CLIENT KILL TYPE normal` every 50 ms.
fn killing(server: &RedisServer) -> Repeating {
    server.repeat(Duration::from_millis(50), &["CLIENT", "KILL", "TYPE", "normal"])
}

/// Errors seen, by kind.
#[derive(Default)]
struct Surfaced(Mutex<BTreeMap<String, u64>>);

impl Surfaced {
    fn record(&self, model: &str, error: &Error) {
        *self.0.lock().unwrap().entry(format!("{model}: {}", kind(error))).or_default() += 1;
    }

    /// The value of `result`, or `None` after recording its error.
    fn ok<T>(&self, model: &str, result: redisext::Result<T>) -> Option<T> {
        result.map_err(|error| self.record(model, &error)).ok()
    }

    fn take(&self) -> BTreeMap<String, u64> {
        std::mem::take(&mut self.0.lock().unwrap())
    }
}

/// An error's variant, and for a connection error whether it may have applied.
fn kind(error: &Error) -> String {
    match error {
        Error::Connection { delivery, .. } if error.may_have_applied() => {
            format!("Connection({delivery:?}), may have applied")
        }
        Error::Connection { delivery, .. } => format!("Connection({delivery:?})"),
        Error::Server { code, .. } => format!("Server({code})"),
        other => format!("{other:?}").split([' ', '{', '(']).next().unwrap_or_default().to_owned(),
    }
}

fn exists(server: &RedisServer, key: &str) -> bool {
    server.command(&["EXISTS", key]).unwrap() == Reply::Int(1)
}

fn exactly_once() -> ModelOptions {
    ModelOptions::new().exactly_once(true)
}

/// One client per thread, as one per process.
fn clients(server: &RedisServer) -> Vec<Client> {
    (0..THREADS).map(|_| client(server)).collect()
}

// --- CLIENT KILL every 50 ms ----------------------------------------------------

#[test]
fn client_kills_every_50_ms_leak_nothing_and_surface_nothing_for_the_models_that_settle() {
    let server = server();
    let surfaced = Surfaced::default();
    const PERMITS: i64 = 4;
    const ACQUISITIONS: usize = 25;
    const ITEMS: usize = 400;
    const INCREMENTS: usize = 100;

    let setup = client(&server);
    let pool = ResourcePool::<Str>::new(&setup, "pool").unwrap();
    for member in ["a", "b", "c", "d"] {
        pool.add(member).unwrap();
    }

    let holding = AtomicI64::new(0);
    let most_holding = AtomicI64::new(0);
    let leased = Mutex::new(HashSet::new());
    let double_leases = AtomicU64::new(0);
    let in_lock = AtomicUsize::new(0);
    let lock_overlaps = AtomicU64::new(0);
    let pushed = AtomicUsize::new(0);
    let delivered = Mutex::new(Vec::new());
    let redelivered = AtomicU64::new(0);
    let increments = Mutex::new(Vec::new());
    let granted = AtomicU64::new(0);

    let kills = killing(&server);
    thread::scope(|scope| {
        let (surfaced, holding, most_holding, leased, double_leases) =
            (&surfaced, &holding, &most_holding, &leased, &double_leases);
        let (in_lock, lock_overlaps, pushed, delivered, redelivered, increments, granted) =
            (&in_lock, &lock_overlaps, &pushed, &delivered, &redelivered, &increments, &granted);
        for client in clients(&server) {
            scope.spawn(move || {
                let slots = Semaphore::new(&client, "slots", PERMITS as u32).unwrap();
                for _ in 0..ACQUISITIONS {
                    let Some(Some(permit)) = surfaced.ok("semaphore", slots.acquire_wait(LONG, WAIT)) else { continue };
                    granted.fetch_add(1, Ordering::SeqCst);
                    most_holding.fetch_max(holding.fetch_add(1, Ordering::SeqCst) + 1, Ordering::SeqCst);
                    thread::sleep(Duration::from_millis(1));
                    holding.fetch_sub(1, Ordering::SeqCst);
                    surfaced.ok("semaphore", slots.release(&permit));
                }
            });
        }
        for client in clients(&server) {
            scope.spawn(move || {
                let pool = ResourcePool::<Str>::new(&client, "pool").unwrap();
                for _ in 0..ACQUISITIONS {
                    let Some(Some(lease)) = surfaced.ok("pool", pool.checkout_wait(LONG, WAIT)) else { continue };
                    granted.fetch_add(1, Ordering::SeqCst);
                    if !leased.lock().unwrap().insert(lease.member().clone()) {
                        double_leases.fetch_add(1, Ordering::SeqCst);
                    }
                    thread::sleep(Duration::from_millis(1));
                    leased.lock().unwrap().remove(lease.member());
                    surfaced.ok("pool", pool.checkin(&lease));
                }
            });
        }
        for client in clients(&server) {
            scope.spawn(move || {
                let lock = Lock::new(&client, "door").unwrap();
                for _ in 0..ACQUISITIONS / 2 {
                    let Some(Some(token)) = surfaced.ok("lock", lock.acquire_wait(LONG, WAIT)) else { continue };
                    granted.fetch_add(1, Ordering::SeqCst);
                    if in_lock.fetch_add(1, Ordering::SeqCst) > 0 {
                        lock_overlaps.fetch_add(1, Ordering::SeqCst);
                    }
                    thread::sleep(Duration::from_millis(1));
                    in_lock.fetch_sub(1, Ordering::SeqCst);
                    surfaced.ok("lock", lock.release(&token));
                }
            });
        }
        // Half the queue's threads produce, half consume; pushes settle by
        // their operation id, pops and acks by their token.
        for (index, client) in clients(&server).into_iter().enumerate() {
            scope.spawn(move || {
                let jobs = ReliableQueue::<Str>::with_options(&client, "jobs", exactly_once()).unwrap();
                if index % 2 == 0 {
                    for item in (index / 2..ITEMS).step_by(THREADS / 2) {
                        if surfaced.ok("reliable queue", jobs.push(&format!("item-{item}"))).is_some() {
                            pushed.fetch_add(1, Ordering::SeqCst);
                        }
                    }
                    return;
                }
                while delivered.lock().unwrap().len() < ITEMS {
                    let Some(popped) = surfaced.ok("reliable queue", jobs.pop(LONG)) else { continue };
                    let Some(job) = popped else {
                        thread::sleep(Duration::from_millis(2));
                        continue;
                    };
                    if job.delivery() != 1 {
                        redelivered.fetch_add(1, Ordering::SeqCst);
                    }
                    // False when a resend found the first attempt's ack done.
                    surfaced.ok("reliable queue", jobs.ack(job.receipt()));
                    delivered.lock().unwrap().push(job.into_value());
                }
            });
        }
        for client in clients(&server) {
            scope.spawn(move || {
                let counter = Counter::with_options(&client, "hits", exactly_once()).unwrap();
                for _ in 0..INCREMENTS {
                    if let Some(value) = surfaced.ok("counter", counter.incr(1)) {
                        increments.lock().unwrap().push(value);
                    }
                }
            });
        }
    });
    let Repeated { runs: kills, sum: killed } = kills.stop().unwrap();
    let surfaced = surfaced.take();

    let slots = Semaphore::new(&setup, "slots", PERMITS as u32).unwrap();
    let counts = pool.counts().unwrap();
    let jobs = ReliableQueue::<Str>::new(&setup, "jobs").unwrap();
    let mut delivered = delivered.into_inner().unwrap();
    let mut increments = increments.into_inner().unwrap();
    println!(
        "CLIENT KILL x{kills} (every 50 ms, {killed} connections closed), {THREADS} clients per model: {} acquisitions granted, {} of {ITEMS} \
         items delivered, {} increments; errors surfaced: {surfaced:?}",
        granted.load(Ordering::SeqCst),
        delivered.len(),
        increments.len()
    );
    assert!(killed > 0, "no connection was killed");
    assert!(surfaced.is_empty(), "errors surfaced by models that settle their outcomes: {surfaced:?}");

    assert!(most_holding.load(Ordering::SeqCst) <= PERMITS, "more permits held than exist");
    assert_eq!(slots.held().unwrap(), 0, "a permit leaked");
    assert!(!exists(&server, "{slots}:tokens"), "a semaphore token leaked");

    assert_eq!(double_leases.load(Ordering::SeqCst), 0, "a member was leased to two holders at once");
    assert_eq!((counts.idle, counts.leased, counts.expired), (4, 0, 0), "a lease leaked or a member was lost");
    assert!(!exists(&server, "{pool}:tokens"), "a pool token leaked");

    assert_eq!(lock_overlaps.load(Ordering::SeqCst), 0, "two holders of the lock at once");
    assert!(!Lock::new(&setup, "door").unwrap().locked().unwrap(), "the lock leaked");

    assert_eq!(pushed.load(Ordering::SeqCst), ITEMS);
    assert_eq!(redelivered.load(Ordering::SeqCst), 0, "an item was delivered a second time");
    delivered.sort();
    let mut expected: Vec<String> = (0..ITEMS).map(|item| format!("item-{item}")).collect();
    expected.sort();
    assert_eq!(delivered, expected, "an item was lost or delivered twice");
    assert_eq!(jobs.counts().unwrap().total(), 0, "an item left in the queue");
    assert!(!exists(&server, "{jobs}:tokens"), "a delivery token leaked");

    let total = (THREADS * INCREMENTS) as i64;
    assert_eq!(Counter::new(&setup, "hits").unwrap().get().unwrap(), total, "an increment applied twice or was lost");
    increments.sort_unstable();
    assert_eq!(increments, (1..=total).collect::<Vec<_>>(), "each increment answered its own new value");
}

// --- SCRIPT FLUSH every 10 ms ---------------------------------------------------

#[test]
fn script_flushes_every_10_ms_fail_no_operation_single_or_pipelined() {
    let server = server();
    let surfaced = Surfaced::default();
    const ROUNDS: usize = 150;
    const BATCH: usize = 5;
    let flushes = server.repeat(Duration::from_millis(10), &["SCRIPT", "FLUSH"]);
    thread::scope(|scope| {
        let surfaced = &surfaced;
        for (index, client) in clients(&server).into_iter().enumerate() {
            scope.spawn(move || {
                let counter = Counter::new(&client, "count").unwrap();
                let queue = Queue::<Str>::new(&client, "queue").unwrap();
                let map = Map::<Str>::new(&client, format!("map-{index}")).unwrap();
                for round in 0..ROUNDS {
                    surfaced.ok("single", counter.incr(1));
                    surfaced.ok("single", map.set(&round.to_string()));
                    let pipe = client.pipeline();
                    let slots: Vec<_> = (0..BATCH).map(|_| counter.on(&pipe).incr(1)).collect();
                    let pushed = queue.on(&pipe).push(&format!("{index}-{round}"));
                    let read = map.on(&pipe).get();
                    match pipe.run() {
                        Ok(()) => {
                            for slot in slots {
                                surfaced.ok("pipelined", slot.take());
                            }
                            surfaced.ok("pipelined", pushed.take());
                            if surfaced.ok("pipelined", read.take()) != Some(Some(round.to_string())) {
                                surfaced.record("pipelined", &Error::Config("the map read back wrong".into()));
                            }
                        }
                        Err(error) => surfaced.record("pipeline", &error),
                    }
                }
            });
        }
    });
    let flushes = flushes.stop().unwrap().runs;
    let surfaced = surfaced.take();
    let setup = client(&server);
    let evals = server.command_calls("eval").unwrap();
    println!(
        "SCRIPT FLUSH x{flushes} (every 10 ms), {THREADS} threads x {ROUNDS} rounds of 2 calls and a pipeline of \
         {}: {evals} EVAL fallbacks; failed operations: {surfaced:?}",
        BATCH + 2
    );
    assert!(flushes > 0);
    assert!(surfaced.is_empty(), "operations failed under SCRIPT FLUSH: {surfaced:?}");
    let expected = (THREADS * ROUNDS * (BATCH + 1)) as i64;
    assert_eq!(Counter::new(&setup, "count").unwrap().get().unwrap(), expected, "an increment lost or doubled");
    assert_eq!(Queue::<Str>::new(&setup, "queue").unwrap().size().unwrap(), (THREADS * ROUNDS) as u64);
}

// --- a restart of a persistent server -------------------------------------------

#[test]
fn a_restart_of_a_persistent_server_loses_nothing_acknowledged() {
    let mut server = RedisServer::start_persistent().expect("start a persistent redis-server");
    let url = server.url();
    let stop = AtomicBool::new(false);
    let acked_plain = AtomicI64::new(0);
    let acked_exact = AtomicI64::new(0);
    let before_restart = AtomicI64::new(0);
    let surfaced_plain = Surfaced::default();
    let surfaced_exact = Surfaced::default();
    let maybe_plain = AtomicI64::new(0);
    let mut restarted = 0;
    thread::scope(|scope| {
        let (stop, acked_plain, acked_exact, surfaced_plain, surfaced_exact, maybe_plain) =
            (&stop, &acked_plain, &acked_exact, &surfaced_plain, &surfaced_exact, &maybe_plain);
        for _ in 0..THREADS {
            let client = Client::open(&url).unwrap();
            scope.spawn(move || {
                let plain = Counter::new(&client, "plain").unwrap();
                let exact = Counter::with_options(&client, "exact", exactly_once()).unwrap();
                while !stop.load(Ordering::SeqCst) {
                    match plain.incr(1) {
                        Ok(_) => {
                            acked_plain.fetch_add(1, Ordering::SeqCst);
                        }
                        Err(error) => {
                            if error.may_have_applied() {
                                maybe_plain.fetch_add(1, Ordering::SeqCst);
                            }
                            surfaced_plain.record("plain counter", &error);
                        }
                    }
                    if surfaced_exact.ok("exactly-once counter", exact.incr(1)).is_some() {
                        acked_exact.fetch_add(1, Ordering::SeqCst);
                    }
                }
            });
        }
        // Mid-load: after some acknowledged writes, twice.
        for _ in 0..2 {
            let start = acked_exact.load(Ordering::SeqCst);
            while acked_exact.load(Ordering::SeqCst) < start + 300 {
                thread::sleep(Duration::from_millis(5));
            }
            before_restart.store(acked_exact.load(Ordering::SeqCst), Ordering::SeqCst);
            server.restart().expect("restart");
            restarted += 1;
        }
        let start = acked_exact.load(Ordering::SeqCst);
        while acked_exact.load(Ordering::SeqCst) < start + 300 {
            thread::sleep(Duration::from_millis(5));
        }
        stop.store(true, Ordering::SeqCst);
    });
    let (plain_errors, exact_errors) = (surfaced_plain.take(), surfaced_exact.take());
    let client = Client::open(&url).unwrap();
    let plain = Counter::new(&client, "plain").unwrap().get().unwrap();
    let exact = Counter::new(&client, "exact").unwrap().get().unwrap();
    let (acked_plain, acked_exact, maybe_plain) =
        (acked_plain.into_inner(), acked_exact.into_inner(), maybe_plain.into_inner());
    println!(
        "{restarted} restarts of a persistent server (appendfsync always) under {THREADS} clients: \
         plain incr {acked_plain} acknowledged, stored {plain}, failed {plain_errors:?}; exactly-once incr \
         {acked_exact} acknowledged, stored {exact}, failed {exact_errors:?}"
    );
    for kind in plain_errors.keys() {
        assert!(kind.contains("Connection("), "a plain write failed with an error other than a connection's: {kind}");
    }
    assert!(plain >= acked_plain, "an acknowledged plain write was lost: {plain} < {acked_plain}");
    assert!(plain <= acked_plain + maybe_plain, "a write applied that was reported as not applied");
    assert!(exact_errors.is_empty(), "exactly-once writes settle through a restart: {exact_errors:?}");
    assert_eq!(exact, acked_exact, "an exactly-once write lost or applied twice");
}
