//! Writes that are safe to send again: acquisitions settled by their client token
//! (Semaphore, ResourcePool, ReliableQueue pop, Lock), and the other writes in
//! exactly-once mode, settled by an operation id. Against real servers: a resend
//! is simulated by a backend of the test's own that sends every resendable script
//! call twice (the same bytes: same token, same operation id) and hands the
//! caller the second reply, as a client whose first reply was lost would see.

mod common;

use std::collections::HashSet;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use common::resend::{Resending, assert_resends_answered_alike, every_write, resendable_writes};
use common::{client, server, server_time, wait_past};
use redisext::serializer::Str;
use redisext::testing::RedisServer;
use redisext::{
    Backend, Client, Counter, Lock, LockToken, Map, Model, ModelOptions, Queue, ReliableQueue, Reply, ResourcePool,
    ScriptCall, Semaphore, Token,
};

const LONG: Duration = Duration::from_secs(60);
const THREADS: usize = 16;

fn resending_client(server: &RedisServer, twice: fn(&ScriptCall) -> bool) -> Client<Resending> {
    common::resend::client(server, twice)
}

fn key_count(server: &RedisServer, pattern: &str) -> usize {
    match server.command(&["KEYS", pattern]).unwrap() {
        Reply::Array(keys) => keys.len(),
        other => panic!("KEYS {pattern}: {other:?}"),
    }
}

fn exists(server: &RedisServer, key: &str) -> bool {
    server.command(&["EXISTS", key]).unwrap() == Reply::Int(1)
}

// --- one token, sent twice ------------------------------------------------------------

#[test]
fn an_acquisition_sent_again_with_its_token_returns_what_the_first_got() {
    let server = server();
    let client = client(&server);

    let slots = Semaphore::new(&client, "slots", 2).unwrap();
    let token = Token::generate();
    let permit = slots.acquire_with(&token, LONG).unwrap().expect("free");
    assert_eq!(slots.acquire_with(&token, LONG).unwrap(), Some(permit), "the same permit, same id and deadline");
    assert_eq!(slots.held().unwrap(), 1, "not a second permit");
    assert_eq!(permit.token(), token);
    let other = slots.acquire(LONG).unwrap().expect("the second permit is still free");
    assert!(other.id() > permit.id());
    assert!(slots.release(&permit).unwrap());
    assert!(!slots.release(&permit).unwrap(), "released already");
    assert!(slots.release(&other).unwrap());
    assert!(!exists(&server, "{slots}:tokens"), "no token outlives its permit");

    let pool = ResourcePool::<Str>::new(&client, "printers").unwrap();
    pool.add("laser").unwrap();
    pool.add("inkjet").unwrap();
    let token = Token::generate();
    let lease = pool.checkout_with(&token, LONG).unwrap().expect("idle");
    let again = pool.checkout_with(&token, LONG).unwrap().expect("the same lease");
    assert_eq!((again.member(), again.fence(), again.deadline()), (lease.member(), lease.fence(), lease.deadline()));
    assert_eq!(pool.counts().unwrap().leased, 1, "not a second lease");
    assert!(pool.checkin(&again).unwrap());
    assert!(!pool.checkin(&lease).unwrap(), "checked in already");
    assert!(!exists(&server, "{printers}:tokens"), "no token outlives its lease");

    let jobs = ReliableQueue::<Str>::new(&client, "jobs").unwrap();
    jobs.push_many(["first", "second"]).unwrap();
    let token = Token::generate();
    let job = jobs.pop_with(&token, LONG).unwrap().expect("ready");
    assert_eq!(jobs.pop_with(&token, LONG).unwrap().as_ref(), Some(&job), "the same delivery");
    let counts = jobs.counts().unwrap();
    assert_eq!((counts.ready, counts.in_flight), (1, 1), "not a second delivery");
    assert!(jobs.ack(job.receipt()).unwrap());
    let next = jobs.pop_with(&token, LONG).unwrap().expect("the token holds nothing now: a new delivery");
    assert_eq!(next.value(), "second");
    assert_eq!(jobs.nack(next.receipt()).unwrap(), redisext::Nacked::Requeued);
    assert!(!exists(&server, "{jobs}:tokens"), "no token outlives its delivery");

    let lock = Lock::new(&client, "door").unwrap();
    let token = LockToken::generate();
    let held = lock.acquire_with(&token, LONG).unwrap().expect("free");
    assert_eq!(lock.acquire_with(&token, LONG).unwrap(), Some(held.clone()), "the same token and fencing number");
    assert_eq!(lock.acquire(LONG).unwrap(), None, "another token is still refused");
    assert!(lock.release(&held).unwrap());
    let next = lock.acquire_with(&token, LONG).unwrap().expect("free again");
    assert!(next.fence() > held.fence(), "a new acquisition draws a new number");
    assert!(lock.release(&next).unwrap());
}

#[test]
fn a_resend_after_expiry_takes_a_new_grant_and_the_old_token_is_gone() {
    let server = server();
    let client = client(&server);
    let short = Duration::from_millis(50);

    let slots = Semaphore::new(&client, "slots", 1).unwrap();
    let token = Token::generate();
    let lapsed = slots.acquire_with(&token, short).unwrap().unwrap();
    wait_past(&server, lapsed.deadline());
    let fresh = slots.acquire_with(&token, LONG).unwrap().expect("the lapsed permit was dropped");
    assert!(fresh.id() > lapsed.id());
    assert_eq!(server.command(&["HLEN", "{slots}:tokens"]).unwrap(), Reply::Int(2), "one token, both ways");
    assert!(!slots.release(&lapsed).unwrap(), "the lapsed permit is not the one held");
    assert!(slots.release(&fresh).unwrap());

    let pool = ResourcePool::<Str>::new(&client, "pool").unwrap();
    pool.add("m").unwrap();
    let token = Token::generate();
    let expired = pool.checkout_with(&token, short).unwrap().unwrap();
    wait_past(&server, expired.deadline());
    let fresh = pool.checkout_with(&token, LONG).unwrap().expect("the expired lease was reclaimed");
    assert!(fresh.fence() > expired.fence());
    assert!(!pool.checkin(&expired).unwrap(), "the fence tells the leases apart");
    assert!(pool.checkin(&fresh).unwrap());
    assert!(!exists(&server, "{pool}:tokens"));

    let jobs = ReliableQueue::<Str>::new(&client, "jobs").unwrap();
    jobs.push("job").unwrap();
    let token = Token::generate();
    let first = jobs.pop_with(&token, short).unwrap().unwrap();
    wait_past(&server, first.deadline());
    let second = jobs.pop_with(&token, LONG).unwrap().expect("reclaimed and delivered again");
    assert_eq!(second.delivery(), 2);
    assert!(!jobs.ack(first.receipt()).unwrap());
    assert!(jobs.ack(second.receipt()).unwrap());
    assert!(!exists(&server, "{jobs}:tokens"));
}

// --- 16 threads, every acquisition and release sent twice --------------------------

#[test]
fn semaphore_acquisitions_sent_twice_never_grant_twice() {
    let server = server();
    let client = resending_client(&server, resendable_writes);
    const PERMITS: i64 = 3;
    let holding = Arc::new(AtomicI64::new(0));
    let most = Arc::new(AtomicI64::new(0));
    let workers: Vec<_> = (0..THREADS)
        .map(|_| {
            let slots = Semaphore::new(&client, "slots", PERMITS as u32).unwrap();
            let (holding, most) = (Arc::clone(&holding), Arc::clone(&most));
            thread::spawn(move || {
                let mut taken = 0;
                while taken < 40 {
                    let Some(permit) = slots.acquire_wait(LONG, Duration::from_secs(10)).unwrap() else { continue };
                    taken += 1;
                    let now = holding.fetch_add(1, Ordering::SeqCst) + 1;
                    most.fetch_max(now, Ordering::SeqCst);
                    // A round trip while holding, so that others race for the rest.
                    assert!(slots.held().unwrap() <= PERMITS as u64, "more permits held than exist");
                    holding.fetch_sub(1, Ordering::SeqCst);
                    slots.release(&permit).unwrap();
                }
                taken
            })
        })
        .collect();
    let taken: u64 = workers.into_iter().map(|w| w.join().unwrap()).sum();
    let slots = Semaphore::new(&client, "slots", PERMITS as u32).unwrap();
    println!(
        "semaphore: {THREADS} threads, {taken} acquisitions each sent twice, at most {} permits held at once",
        most.load(Ordering::SeqCst)
    );
    assert!(most.load(Ordering::SeqCst) <= PERMITS, "more holders than permits");
    assert_eq!(slots.held().unwrap(), 0, "a permit leaked");
    assert!(!exists(&server, "{slots}:tokens"), "a token leaked");
    assert_resends_answered_alike(&client);
}

#[test]
fn pool_checkouts_sent_twice_never_lease_a_member_twice() {
    let server = server();
    let client = resending_client(&server, resendable_writes);
    let pool = ResourcePool::<Str, _>::new(&client, "pool").unwrap();
    for member in ["a", "b", "c", "d"] {
        pool.add(member).unwrap();
    }
    let leased = Arc::new(Mutex::new(HashSet::new()));
    let violations = Arc::new(AtomicU64::new(0));
    let workers: Vec<_> = (0..THREADS)
        .map(|_| {
            let (pool, leased, violations) = (pool.clone(), Arc::clone(&leased), Arc::clone(&violations));
            thread::spawn(move || {
                for _ in 0..40 {
                    let lease = pool.checkout_wait(LONG, Duration::from_secs(10)).unwrap().expect("a member");
                    if !leased.lock().unwrap().insert(lease.member().clone()) {
                        violations.fetch_add(1, Ordering::SeqCst);
                    }
                    leased.lock().unwrap().remove(lease.member());
                    pool.checkin(&lease).unwrap();
                }
            })
        })
        .collect();
    workers.into_iter().for_each(|w| w.join().unwrap());
    let counts = pool.counts().unwrap();
    println!("pool: {THREADS} threads x 40 checkouts, each sent twice: {counts:?}");
    assert_eq!(violations.load(Ordering::SeqCst), 0, "a member was leased to two holders at once");
    assert_eq!((counts.idle, counts.leased, counts.expired), (4, 0, 0), "a lease leaked or a member was lost");
    assert!(!exists(&server, "{pool}:tokens"), "a token leaked");
    assert_resends_answered_alike(&client);
}

#[test]
fn queue_pops_sent_twice_deliver_each_item_once() {
    let server = server();
    let client = resending_client(&server, resendable_writes);
    let jobs = ReliableQueue::<Str, _>::new(&client, "jobs").unwrap();
    const ITEMS: usize = 800;
    let items: Vec<String> = (0..ITEMS).map(|i| format!("item-{i}")).collect();
    jobs.push_many(items.iter().map(String::as_str)).unwrap();
    let workers: Vec<_> = (0..THREADS)
        .map(|_| {
            let jobs = jobs.clone();
            thread::spawn(move || {
                let mut got = Vec::new();
                while let Some(job) = jobs.pop(LONG).unwrap() {
                    assert_eq!(job.delivery(), 1, "{}: delivered again", job.value());
                    jobs.ack(job.receipt()).unwrap();
                    got.push(job.into_value());
                }
                got
            })
        })
        .collect();
    let mut delivered: Vec<String> = workers.into_iter().flat_map(|w| w.join().unwrap()).collect();
    println!(
        "reliable queue: {ITEMS} items, {THREADS} consumers, every pop and ack sent twice: {} delivered",
        delivered.len()
    );
    delivered.sort();
    let mut expected = items;
    expected.sort();
    assert_eq!(delivered, expected, "an item was lost or delivered twice");
    assert_eq!(jobs.counts().unwrap().total(), 0);
    assert!(!exists(&server, "{jobs}:tokens"), "a token leaked");
    assert_resends_answered_alike(&client);
}

// --- exactly-once mode ----------------------------------------------------------------

fn exactly_once() -> ModelOptions {
    ModelOptions::new().exactly_once(true)
}

/// `threads` threads each add 1 `rounds` times to the counter at `key`.
fn count_up<B: Backend>(client: &Client<B>, key: &str, options: &ModelOptions, rounds: usize) -> Vec<i64> {
    let workers: Vec<_> = (0..THREADS)
        .map(|_| {
            let counter = Counter::with_options(client, key, options.clone()).unwrap();
            thread::spawn(move || (0..rounds).map(|_| counter.incr(1).unwrap()).collect::<Vec<_>>())
        })
        .collect();
    workers.into_iter().flat_map(|w| w.join().unwrap()).collect()
}

#[test]
fn in_exactly_once_mode_a_write_sent_twice_applies_once() {
    let server = server();
    const ROUNDS: usize = 200;
    let expected = (THREADS * ROUNDS) as i64;

    // The control: sent twice without an operation id, every increment counts twice.
    let blind = resending_client(&server, every_write);
    let values = count_up(&blind, "blind", &ModelOptions::new(), ROUNDS);
    assert_eq!(Counter::new(&blind, "blind").unwrap().get().unwrap(), 2 * expected, "the resends did happen");
    assert_eq!(values.len(), THREADS * ROUNDS);

    let client = resending_client(&server, resendable_writes);
    let mut values = count_up(&client, "exact", &exactly_once(), ROUNDS);
    let counter = Counter::new(&client, "exact").unwrap();
    println!("counter: {THREADS} threads x {ROUNDS} increments, each sent twice: {}", counter.get().unwrap());
    assert_eq!(counter.get().unwrap(), expected, "an increment applied twice or was lost");
    values.sort_unstable();
    assert_eq!(values, (1..=expected).collect::<Vec<_>>(), "each increment answered its own new value");

    // Pushes and pops, the seed queue's: each item once, none lost.
    let queue = Queue::<Str, _>::with_options(&client, "queue", exactly_once()).unwrap();
    let producers: Vec<_> = (0..THREADS / 2)
        .map(|p| {
            let queue = queue.clone();
            thread::spawn(move || {
                for i in 0..100 {
                    queue.push(&format!("{p}-{i}")).unwrap();
                }
            })
        })
        .collect();
    producers.into_iter().for_each(|p| p.join().unwrap());
    assert_eq!(queue.size().unwrap(), (THREADS / 2 * 100) as u64, "a push applied twice or was lost");
    let consumers: Vec<_> = (0..THREADS)
        .map(|_| {
            let queue = queue.clone();
            thread::spawn(move || std::iter::from_fn(|| queue.pop().unwrap()).collect::<Vec<_>>())
        })
        .collect();
    let popped: Vec<String> = consumers.into_iter().flat_map(|c| c.join().unwrap()).collect();
    let distinct: HashSet<&String> = popped.iter().collect();
    assert_eq!((popped.len(), distinct.len()), (THREADS / 2 * 100, THREADS / 2 * 100), "an item popped twice or lost");

    // A map's set, incr and remove answer as once.
    let map = Map::<Str, _>::with_options(&client, "map", exactly_once()).unwrap();
    assert_eq!(map.incr(5).unwrap(), 5);
    assert!(map.remove().unwrap(), "the resend does not find it gone");
    map.set("v").unwrap();
    assert_eq!(map.get().unwrap().as_deref(), Some("v"));
    assert_resends_answered_alike(&client);
}

#[test]
fn exactly_once_state_lives_beside_the_key_and_expires() {
    let server = server();
    let client = client(&server);
    let counter =
        Counter::with_options(&client, "visits", ModelOptions::new().exactly_once_window(Duration::from_millis(300)))
            .unwrap();
    counter.incr(1).unwrap();
    assert_eq!(key_count(&server, "{visits}:ops:*"), 1, "one hash for this process");
    assert_eq!(server.command(&["GET", "visits"]).unwrap(), Reply::Bulk(b"1".to_vec()), "what Python reads");
    let Reply::Int(ttl) = server.command(&["PTTL", "{visits}:ops:*"]).unwrap() else { panic!("PTTL") };
    assert!(ttl < 0, "the pattern is no key: {ttl}");
    server.wait_until(Duration::from_secs(10), |server| Ok(key_count(server, "{visits}:ops:*") == 0)).unwrap();
    assert_eq!(counter.get().unwrap(), 1, "the counter stays");
    // Off by default: no sibling at all, and a key that cannot have siblings works.
    let plain = Counter::new(&client, "a}b").unwrap();
    plain.incr(1).unwrap();
    assert_eq!(key_count(&server, "*ops*"), 0);
    let refused = Counter::with_options(&client, "a}b", exactly_once()).unwrap().incr(1);
    assert!(refused.is_err(), "its sibling could not share its slot: {refused:?}");
}

// --- delayed delivery ---------------------------------------------------------------

#[test]
fn delayed_items_are_delivered_once_due_earliest_first() {
    let server = server();
    let client = client(&server);
    let jobs = ReliableQueue::<Str>::new(&client, "later").unwrap();
    let mut due = Vec::new();
    for (name, delay_ms) in [("c", 450), ("a", 150), ("d", 600), ("b", 300)] {
        due.push((jobs.push_delayed(name, Duration::from_millis(delay_ms)).unwrap(), name));
    }
    // One with a due time of its own, on the server's clock, between b and c.
    let at = due[3].0 + Duration::from_millis(75);
    assert_eq!(jobs.push_at("b2", at).unwrap(), at);
    due.push((at, "b2"));
    due.sort();
    assert_eq!(jobs.counts().unwrap().delayed, 5);
    assert_eq!(jobs.counts().unwrap().total(), 5);

    let mut delivered = Vec::new();
    let mut empty_pops = 0;
    while delivered.len() < due.len() {
        let before = server_time(&server);
        let popped = jobs.pop(LONG).unwrap();
        let after = server_time(&server);
        let waiting = &due[delivered.len()..];
        match popped {
            Some(job) => {
                let (when, name) = waiting[0];
                assert_eq!(job.value(), name, "the earliest due is delivered first");
                assert!(when <= after, "{name} delivered before its due time");
                assert!(jobs.ack(job.receipt()).unwrap());
                delivered.push(name);
            }
            None => {
                empty_pops += 1;
                assert!(waiting.iter().all(|(when, _)| *when > before), "an item was due, yet nothing was delivered");
                thread::sleep(Duration::from_millis(10));
            }
        }
    }
    println!("delayed: delivered {delivered:?} in due order, {empty_pops} pops found nothing due yet");
    assert!(empty_pops > 0, "the first pop came before any due time");
    assert_eq!(jobs.counts().unwrap(), redisext::QueueCounts::default());

    // A time in the past is due at once; one before the epoch is refused.
    jobs.push_at("overdue", std::time::UNIX_EPOCH + Duration::from_secs(1)).unwrap();
    assert_eq!(jobs.pop(LONG).unwrap().expect("due").value(), "overdue");
    assert!(jobs.push_at("never", std::time::UNIX_EPOCH - Duration::from_secs(1)).is_err());
    // A waiting pop sees a delayed item once it is due.
    let due = jobs.push_delayed("soon", Duration::from_millis(100)).unwrap();
    let job = jobs.pop_wait(LONG, Duration::from_secs(10)).unwrap().expect("due within the wait");
    assert_eq!(job.value(), "soon");
    assert!(server_time(&server) >= due);
}

#[test]
fn moving_due_items_is_bounded_per_pop() {
    let server = server();
    let client = client(&server);
    let jobs = ReliableQueue::<Str>::new(&client, "many").unwrap();
    let past = std::time::UNIX_EPOCH + Duration::from_secs(1);
    for i in 0..250 {
        jobs.push_at(&format!("{i}"), past).unwrap();
    }
    jobs.pop(LONG).unwrap().expect("due");
    let counts = jobs.counts().unwrap();
    assert_eq!((counts.delayed, counts.ready, counts.in_flight), (150, 99, 1), "100 moved by one pop");
}

#[test]
fn every_exactly_once_write_sent_twice_answers_as_once() {
    use redisext::{BoundedQueue, HashMap, Overflow, Pool, PriorityQueue, Quota, RateLimiter, SortedSet, Stack};
    let server = server();
    let client = resending_client(&server, resendable_writes);
    let once = exactly_once;

    let hash = HashMap::<Str, _>::with_options(&client, "hash", once()).unwrap();
    assert!(hash.set("f", "v").unwrap(), "a new field, though the resend found it there");
    assert!(hash.remove("f").unwrap());
    let pool = Pool::<Str, _>::with_options(&client, "pool", once()).unwrap();
    assert!(pool.push("m").unwrap());
    assert_eq!(pool.pop().unwrap().as_deref(), Some("m"));
    let set = SortedSet::<Str, _>::with_options(&client, "set", once()).unwrap();
    for (member, score) in [("a", 1.0), ("b", 2.0), ("c", 3.0), ("d", 4.0)] {
        assert!(set.add(member, score).unwrap());
    }
    assert!(set.rem("a").unwrap());
    assert_eq!(set.truncate(2).unwrap(), 1, "one removed, not a second on the resend");
    assert_eq!(set.clean_by_score(..=3.0).unwrap(), 1);
    assert!(set.clean().unwrap());
    let stack = Stack::<Str, _>::with_options(&client, "stack", once()).unwrap();
    assert_eq!(stack.push("x").unwrap(), 1);
    assert_eq!(stack.pop().unwrap().as_deref(), Some("x"));
    let priorities = PriorityQueue::<Str, _>::with_options(&client, "pq", once()).unwrap();
    assert!(priorities.push("p", 1).unwrap());
    assert_eq!(priorities.pop().unwrap().as_deref(), Some("p"));
    let bounded = BoundedQueue::<Str, _>::with_options(&client, "bq", 2, Overflow::EvictOldest, once()).unwrap();
    bounded.push_many(["1", "2"]).unwrap();
    assert_eq!(bounded.push("3").unwrap().as_deref(), Some("1"), "evicted once");
    assert_eq!(bounded.pop().unwrap().as_deref(), Some("2"));
    assert_eq!(bounded.size().unwrap(), 1);
    let jobs = ReliableQueue::<Str, _>::with_options(&client, "rq", once()).unwrap().with_max_deliveries(1).unwrap();
    assert_eq!(jobs.push("job").unwrap(), 1);
    jobs.push_delayed("later", LONG).unwrap();
    let job = jobs.pop(Duration::from_millis(300)).unwrap().unwrap();
    wait_past(&server, job.deadline());
    assert!(jobs.pop(LONG).unwrap().is_none(), "reclaims the job into the dead letters");
    assert_eq!(jobs.pop_dead().unwrap().as_deref(), Some("job"));
    assert_eq!(jobs.counts().unwrap().delayed, 1, "pushed once");
    let limiter = RateLimiter::with_options(&client, "api", Quota::per_second(10).burst(3), once()).unwrap();
    assert_eq!(limiter.acquire(2).unwrap().remaining, 1, "2 of 3 taken, not 4");

    assert_resends_answered_alike(&client);
    let resent = client.backend().scripts.lock().unwrap().clone();
    let exactly_once_scripts: Vec<&str> = redisext::script::all()
        .filter(|script| script.header().keys.iter().any(|key| key.name == "ops"))
        .map(|script| script.name())
        .collect();
    let missing: Vec<&&str> = exactly_once_scripts
        .iter()
        .filter(|name| {
            !["counter/incr", "map/set", "map/incr", "map/decr", "map/remove", "queue/push", "queue/pop"].contains(name)
                && !resent.contains(*name)
        })
        .collect();
    assert!(missing.is_empty(), "scripts with an operation id that this test never resent: {missing:?}");
}
