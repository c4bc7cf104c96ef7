//! The compound models, one behaviour at a time, against a real redis-server:
//! ResourcePool, BoundedQueue, ReliableQueue, Semaphore, RateLimiter. Expiry is
//! tested with short durations, by polling the server's clock with a bound.

mod common;

use std::thread;
use std::time::{Duration, Instant};

use common::{assert_every_script_ran, client, info_number, server, wait_past};
use redisext::serializer::{Json, Raw, Str};
use redisext::{
    BoundedQueue, Client, Error, Model, ModelOptions, Nacked, Overflow, PoolCounts, QueueCounts, Quota, RateLimiter,
    ReliableQueue, Removal, Reply, ResourcePool, Semaphore,
};

const LONG: Duration = Duration::from_secs(60);
const SHORT: Duration = Duration::from_millis(40);

/// Waits (polling, up to 10 s) until `clients` clients are blocked in a `BLPOP`:
/// a waiter has found nothing to take and now blocks on its signal.
fn wait_blocked(server: &redisext::testing::RedisServer, clients: u64) {
    server
        .wait_until(Duration::from_secs(10), |s| Ok(info_number(s, "clients", "blocked_clients") == clients))
        .unwrap();
}

/// The length of a signal list.
fn signals(server: &redisext::testing::RedisServer, key: &str) -> i64 {
    match server.command(&["LLEN", key]).unwrap() {
        Reply::Int(n) => n,
        other => panic!("LLEN {key}: {other:?}"),
    }
}

/// A wait of up to 20 s for something no script signals (a deadline passing) must
/// end by the 100 ms recheck, not the timeout: the only check on elapsed time here,
/// with a 100-fold margin.
fn assert_woken_early(started: Instant) {
    let waited = started.elapsed();
    assert!(waited < Duration::from_secs(10), "waited {waited:?}: the recheck did not notice the passed deadline");
}

#[test]
fn resource_pool_leases_each_member_to_one_holder() {
    let server = server();
    let client = client(&server);
    let pool = ResourcePool::<Str>::new(&client, "printers").unwrap();
    for member in ["a", "b", "c"] {
        assert!(pool.add(member).unwrap());
    }
    assert!(!pool.add("b").unwrap(), "already a member");
    assert_eq!(pool.counts().unwrap(), PoolCounts { idle: 3, ..PoolCounts::default() });

    let leases: Vec<_> = (0..3).map(|_| pool.checkout(LONG).unwrap().expect("a member is idle")).collect();
    let mut members: Vec<&str> = leases.iter().map(|lease| lease.member().as_str()).collect();
    members.sort_unstable();
    assert_eq!(members, ["a", "b", "c"], "each member leased once");
    assert!(leases.windows(2).all(|pair| pair[0].fence() < pair[1].fence()), "fencing numbers grow");
    assert!(pool.checkout(LONG).unwrap().is_none(), "every member is leased");
    assert!(!pool.add("a").unwrap(), "a leased member already belongs");
    assert_eq!(pool.counts().unwrap(), PoolCounts { idle: 0, leased: 3, expired: 0, retiring: 0 });

    assert!(pool.checkin(&leases[1]).unwrap());
    assert!(!pool.checkin(&leases[1]).unwrap(), "a lease ends once");
    let again = pool.checkout(LONG).unwrap().expect("checked in");
    assert_eq!(again.member(), leases[1].member());
    assert!(again.fence() > leases[2].fence());
    assert!(!pool.checkin(&leases[1]).unwrap(), "an old lease cannot end the new one");
    assert!(pool.extend(&leases[1], LONG).unwrap().is_none(), "nor extend it");
    for lease in [&leases[0], &again, &leases[2]] {
        assert!(pool.checkin(lease).unwrap());
    }
    assert_eq!(pool.counts().unwrap().idle, 3);

    // Members are ordered by the time they became idle: the longest idle goes first.
    let first = pool.checkout(LONG).unwrap().unwrap();
    assert_eq!(first.member(), leases[0].member());
    assert!(pool.clear().unwrap() >= 3);
    assert_eq!(pool.counts().unwrap().total(), 0);
    assert!(!pool.checkin(&first).unwrap(), "a cleared pool has no leases");
    assert!(pool.add("z").unwrap());
    let after_clear = pool.checkout(LONG).unwrap().unwrap();
    assert!(after_clear.fence() > first.fence(), "clear keeps the fencing counter");
    assert_eq!(pool.remove("nobody").unwrap(), Removal::NotMember);
    // The whole pool's expiry (tests/compound_ttl.rs tests it in depth).
    assert!(pool.expire(LONG).unwrap());
    assert!(matches!(pool.ttl().unwrap(), redisext::Ttl::Expires(_)));
    assert!(pool.persist().unwrap());
    assert_every_script_ran(&server, "resource_pool");
    assert_every_script_ran(&server, "compound");
}

#[test]
fn resource_pool_reclaims_an_expired_lease_inside_checkout() {
    let server = server();
    let client = client(&server);
    let pool = ResourcePool::<Str>::new(&client, "licences").unwrap();
    pool.add("seat-1").unwrap();
    let stale = pool.checkout(SHORT).unwrap().unwrap();
    wait_past(&server, stale.deadline());
    assert_eq!(pool.counts().unwrap(), PoolCounts { idle: 0, leased: 0, expired: 1, retiring: 0 });

    let fresh = pool.checkout(LONG).unwrap().expect("the expired lease was reclaimed");
    assert_eq!(fresh.member(), "seat-1");
    assert!(fresh.fence() > stale.fence(), "the new holder fences out the old one");
    assert!(!pool.checkin(&stale).unwrap(), "the late holder is told its lease was lost");
    assert!(pool.extend(&stale, LONG).unwrap().is_none());
    assert_eq!(pool.counts().unwrap(), PoolCounts { idle: 0, leased: 1, expired: 0, retiring: 0 });
    assert!(pool.checkin(&fresh).unwrap());
}

#[test]
fn resource_pool_extend_moves_the_deadline() {
    let server = server();
    let client = client(&server);
    let pool = ResourcePool::<Str>::new(&client, "workers").unwrap();
    pool.add("w1").unwrap();
    let lease = pool.checkout(SHORT).unwrap().unwrap();
    let deadline = pool.extend(&lease, LONG).unwrap().expect("still the holder");
    assert!(deadline > lease.deadline());
    wait_past(&server, lease.deadline());
    assert!(pool.checkout(LONG).unwrap().is_none(), "the extended lease is not reclaimed");
    assert_eq!(pool.counts().unwrap().leased, 1);
    assert!(pool.checkin(&lease).unwrap());
}

#[test]
fn resource_pool_removal_waits_for_the_holder() {
    let server = server();
    let client = client(&server);
    let pool = ResourcePool::<Str>::new(&client, "gpus").unwrap();
    pool.add("idle").unwrap();
    pool.add("busy").unwrap();
    assert_eq!(pool.remove("idle").unwrap(), Removal::Removed);
    assert_eq!(pool.remove("idle").unwrap(), Removal::NotMember);

    let lease = pool.checkout(LONG).unwrap().unwrap();
    assert_eq!(lease.member(), "busy");
    assert_eq!(pool.remove("busy").unwrap(), Removal::Retiring);
    assert_eq!(pool.remove("busy").unwrap(), Removal::Retiring, "idempotent");
    assert_eq!(pool.counts().unwrap(), PoolCounts { idle: 0, leased: 1, expired: 0, retiring: 1 });
    assert!(pool.checkin(&lease).unwrap());
    assert_eq!(pool.counts().unwrap().total(), 0, "the retiring member left at checkin");
    assert!(pool.checkout(LONG).unwrap().is_none());

    // Re-adding a retiring member cancels the removal; an expired retiring member leaves.
    pool.add("busy").unwrap();
    let lease = pool.checkout(LONG).unwrap().unwrap();
    pool.remove("busy").unwrap();
    assert!(pool.add("busy").unwrap(), "removal cancelled");
    assert!(pool.checkin(&lease).unwrap());
    assert_eq!(pool.counts().unwrap().idle, 1, "back to idle");
    let lease = pool.checkout(SHORT).unwrap().unwrap();
    pool.remove("busy").unwrap();
    wait_past(&server, lease.deadline());
    assert!(pool.checkout(LONG).unwrap().is_none(), "reclaimed and dropped, not leased again");
    assert_eq!(pool.counts().unwrap(), PoolCounts::default());
}

#[test]
fn resource_pool_checkout_wait_is_woken_by_checkin_and_by_expiry() {
    let server = server();
    let pool = ResourcePool::<Str>::new(&client(&server), "seats").unwrap();
    pool.add("only").unwrap();
    assert!(pool.checkout_wait(LONG, Duration::ZERO).unwrap().is_some(), "no wait when one is idle");
    assert!(pool.checkout_wait(LONG, Duration::from_millis(30)).unwrap().is_none(), "times out");

    // Woken by a checkin from another client.
    pool.clear().unwrap();
    pool.add("only").unwrap();
    let held = pool.checkout(LONG).unwrap().unwrap();
    let waiter = {
        let pool = pool.on(&client(&server));
        thread::spawn(move || pool.checkout_wait(LONG, Duration::from_secs(20)).unwrap())
    };
    wait_blocked(&server, 1);
    assert!(pool.checkin(&held).unwrap());
    let got = waiter.join().unwrap().expect("woken by the checkin");
    assert!(got.fence() > held.fence());

    // Woken (within the recheck interval) by the lease's expiry: no script signals it.
    let expiring = pool.checkout(SHORT).unwrap();
    assert!(expiring.is_none(), "still leased to the waiter");
    assert!(pool.extend(&got, SHORT).unwrap().is_some());
    let started = Instant::now();
    let reclaimed = pool.checkout_wait(LONG, Duration::from_secs(20)).unwrap().expect("reclaimed after its deadline");
    assert!(reclaimed.fence() > got.fence());
    assert_woken_early(started);
    let signal = server.command(&["LLEN", "{seats}:signal"]).unwrap();
    assert!(matches!(signal, Reply::Int(n) if n <= 1), "signals stay bounded: {signal:?}");
}

#[test]
fn resource_pool_members_use_the_serializer_and_model_options() {
    let server = server();
    let client = client(&server);
    #[derive(serde::Serialize, serde::Deserialize, Debug, PartialEq)]
    struct Endpoint {
        host: String,
        port: u16,
    }
    let options = ModelOptions::new().namespace("app:");
    let pool = ResourcePool::<Json<Endpoint>>::with_options(&client, "endpoints", options).unwrap();
    assert_eq!(pool.key().as_bytes(), b"app:endpoints");
    pool.add(&Endpoint { host: "db1".into(), port: 5432 }).unwrap();
    let lease = pool.checkout(LONG).unwrap().unwrap();
    assert_eq!(lease.member(), &Endpoint { host: "db1".into(), port: 5432 });
    let leased = server.command(&["ZRANGE", "{app:endpoints}:leased", "0", "-1"]).unwrap();
    assert_eq!(leased, Reply::Array(vec![Reply::Bulk(br#"{"host": "db1", "port": 5432}"#.to_vec())]));
    assert!(pool.checkin(&lease).unwrap());
    assert!(ResourcePool::<Str>::new(&client, "a}b").is_err(), "no sibling can share the slot of such a key");
}

#[test]
fn bounded_queue_rejects_when_full_and_stores_its_settings() {
    let server = server();
    let client = client(&server);
    let queue = BoundedQueue::<Str>::new(&client, "uploads", 3, Overflow::Reject).unwrap();
    assert_eq!(queue.stored_settings().unwrap(), None, "stored by the first push");
    assert_eq!(queue.push("a").unwrap(), None);
    assert_eq!(queue.stored_settings().unwrap(), Some((3, Overflow::Reject)));
    assert!(queue.push_many(["b", "c"]).unwrap().is_empty());
    let error = queue.push("d").unwrap_err();
    assert!(matches!(error, Error::Full { .. }), "{error:?}");
    assert!(error.to_string().contains("capacity 3"), "{error}");
    assert_eq!(queue.size().unwrap(), 3);
    // Python's Queue layout: newest at the head.
    assert_eq!(
        server.command(&["LRANGE", "uploads", "0", "-1"]).unwrap(),
        Reply::Array(["c", "b", "a"].map(|v| Reply::Bulk(v.into())).to_vec())
    );

    assert_eq!(queue.pop().unwrap().as_deref(), Some("a"), "first in, first out");
    let error = queue.push_many(["x", "y"]).unwrap_err();
    assert!(matches!(error, Error::Full { .. }), "all or nothing: {error:?}");
    assert_eq!(queue.size().unwrap(), 2, "nothing of the refused batch was added");
    assert!(queue.push_many(["d"]).unwrap().is_empty());

    let other = BoundedQueue::<Str>::new(&client, "uploads", 10, Overflow::Reject).unwrap();
    let error = other.push("e").unwrap_err();
    assert!(matches!(error, Error::SettingsMismatch { .. }), "{error:?}");
    assert!(error.to_string().contains("stored capacity 3"), "{error}");
    let evicting = BoundedQueue::<Str>::new(&client, "uploads", 3, Overflow::EvictOldest).unwrap();
    assert!(matches!(evicting.push("e"), Err(Error::SettingsMismatch { .. })));
    assert_eq!(queue.size().unwrap(), 3);

    for expected in ["b", "c", "d"] {
        assert_eq!(other.pop().unwrap().as_deref(), Some(expected), "popping needs no settings");
    }
    assert_eq!(queue.pop().unwrap(), None);
    assert!(queue.clear().unwrap() >= 1);
    assert_eq!(other.push("fresh").unwrap(), None, "a cleared queue takes new settings");
    assert_eq!(other.stored_settings().unwrap(), Some((10, Overflow::Reject)));
    assert!(matches!(BoundedQueue::<Str>::new(&client, "q", 0, Overflow::Reject), Err(Error::Config(_))));
    assert_every_script_ran(&server, "bounded_queue");
}

#[test]
fn bounded_queue_evicts_the_oldest_by_policy() {
    let server = server();
    let client = client(&server);
    let recent = BoundedQueue::<Str>::new(&client, "recent", 3, Overflow::EvictOldest).unwrap();
    assert!(recent.push_many(["1", "2"]).unwrap().is_empty());
    assert_eq!(recent.push("3").unwrap(), None, "fits exactly");
    assert_eq!(recent.push("4").unwrap().as_deref(), Some("1"));
    assert_eq!(recent.push_many(["5", "6"]).unwrap(), ["2", "3"], "oldest first");
    assert_eq!(recent.size().unwrap(), 3);
    let error = recent.push_many(["a", "b", "c", "d"]).unwrap_err();
    assert!(matches!(error, Error::Full { .. }), "more than the capacity never fits: {error:?}");
    assert_eq!(recent.size().unwrap(), 3);
    for expected in ["4", "5", "6"] {
        assert_eq!(recent.pop().unwrap().as_deref(), Some(expected));
    }
    // A big batch goes in chunks, beyond Lua's unpack limit.
    let big = BoundedQueue::<Str>::new(&client, "big", 20_000, Overflow::Reject).unwrap();
    let values: Vec<String> = (0..20_000).map(|i| i.to_string()).collect();
    assert!(big.push_many(values.iter().map(String::as_str)).unwrap().is_empty());
    assert_eq!(big.size().unwrap(), 20_000);
    assert_eq!(big.pop().unwrap().as_deref(), Some("0"));
    let signal = server.command(&["LLEN", "{big}:signal"]).unwrap();
    assert!(matches!(signal, Reply::Int(n) if n <= 64), "signals are bounded: {signal:?}");
}

#[test]
fn bounded_queue_pop_wait_is_woken_by_a_push() {
    let server = server();
    let queue = BoundedQueue::<Str>::new(&client(&server), "inbox", 5, Overflow::Reject).unwrap();
    assert_eq!(queue.pop_wait(Duration::from_millis(30)).unwrap(), None, "times out");
    let consumer = {
        let queue = queue.on(&client(&server));
        thread::spawn(move || queue.pop_wait(Duration::from_secs(20)).unwrap())
    };
    wait_blocked(&server, 1);
    queue.push("hello").unwrap();
    assert_eq!(consumer.join().unwrap().as_deref(), Some("hello"));
    assert_eq!(queue.size().unwrap(), 0);
}

#[test]
fn reliable_queue_delivers_until_acknowledged() {
    let server = server();
    let client = client(&server);
    let jobs = ReliableQueue::<Str>::new(&client, "jobs").unwrap();
    assert_eq!(jobs.push("one").unwrap(), 1);
    assert_eq!(jobs.push_many(["two", "three"]).unwrap(), 3);
    let one = jobs.pop(LONG).unwrap().unwrap();
    assert_eq!((one.value().as_str(), one.delivery()), ("one", 1));
    let counts = jobs.counts().unwrap();
    assert_eq!((counts.ready, counts.in_flight, counts.overdue, counts.dead), (2, 1, 0, 0));

    // nack: delivered next, with its count.
    assert_eq!(jobs.nack(one.receipt()).unwrap(), Nacked::Requeued);
    assert_eq!(jobs.nack(one.receipt()).unwrap(), Nacked::Stale);
    let again = jobs.pop(LONG).unwrap().unwrap();
    assert_eq!((again.value().as_str(), again.delivery()), ("one", 2));
    assert_eq!(again.receipt().id(), one.receipt().id());
    assert!(!jobs.ack(one.receipt()).unwrap(), "the first delivery's receipt is stale");
    assert!(jobs.extend(one.receipt(), LONG).unwrap().is_none());
    assert!(jobs.extend(again.receipt(), LONG).unwrap().unwrap() >= again.deadline());
    assert!(jobs.ack(again.receipt()).unwrap());
    assert!(!jobs.ack(again.receipt()).unwrap(), "acknowledged once");

    let two = jobs.pop(LONG).unwrap().unwrap();
    let three = jobs.pop(LONG).unwrap().unwrap();
    assert_eq!((two.value().as_str(), three.value().as_str()), ("two", "three"));
    assert!(two.receipt().id() < three.receipt().id());
    assert!(jobs.pop(LONG).unwrap().is_none(), "everything is in flight");
    assert!(jobs.ack(two.receipt()).unwrap() && jobs.ack(three.receipt()).unwrap());
    assert_eq!(jobs.counts().unwrap().total(), 0);
    let leftovers = server.command(&["EXISTS", "{jobs}:items", "{jobs}:deliveries", "{jobs}:inflight"]).unwrap();
    assert_eq!(leftovers, Reply::Int(0), "acknowledged items leave nothing behind");
}

#[test]
fn reliable_queue_redelivers_after_the_deadline_then_dead_letters() {
    let server = server();
    let client = client(&server);
    let jobs = ReliableQueue::<Str>::new(&client, "emails").unwrap().with_max_deliveries(2).unwrap();
    jobs.push("welcome").unwrap();
    let first = jobs.pop(SHORT).unwrap().unwrap();
    wait_past(&server, first.deadline());
    assert_eq!(jobs.counts().unwrap().overdue, 1);
    let second = jobs.pop(SHORT).unwrap().expect("reclaimed inside pop");
    assert_eq!((second.value().as_str(), second.delivery()), ("welcome", 2));
    assert!(!jobs.ack(first.receipt()).unwrap(), "the crashed consumer's receipt is stale");
    assert!(jobs.extend(first.receipt(), LONG).unwrap().is_none(), "and cannot be extended");
    wait_past(&server, second.deadline());
    assert!(jobs.pop(LONG).unwrap().is_none(), "delivered twice: dead-lettered, not delivered");
    let counts = jobs.counts().unwrap();
    assert_eq!((counts.total(), counts.dead), (0, 1));
    assert_eq!(jobs.pop_dead().unwrap().as_deref(), Some("welcome"));
    assert_eq!(jobs.pop_dead().unwrap(), None);

    // nack on the last allowed delivery dead-letters too.
    jobs.push("report").unwrap();
    let first = jobs.pop(LONG).unwrap().unwrap();
    assert_eq!(jobs.nack(first.receipt()).unwrap(), Nacked::Requeued);
    let second = jobs.pop(LONG).unwrap().unwrap();
    assert_eq!(jobs.nack(second.receipt()).unwrap(), Nacked::DeadLettered);
    assert_eq!(jobs.counts().unwrap().dead, 1);
    assert!(jobs.clear().unwrap() >= 1);
    assert_eq!(jobs.counts().unwrap().dead, 0);
    jobs.push("after clear").unwrap();
    let fresh = jobs.pop(LONG).unwrap().unwrap();
    assert!(fresh.receipt().id() > second.receipt().id(), "clear keeps the id counter");
    assert!(matches!(ReliableQueue::<Str>::new(&client, "x").unwrap().with_max_deliveries(0), Err(Error::Config(_))));

    // Elements some other writer pushed do not block the queue: set aside, whole.
    let mixed = ReliableQueue::<Str>::new(&client, "mixed").unwrap();
    mixed.push("first").unwrap();
    server.command(&["LPUSH", "mixed", "not an id"]).unwrap();
    mixed.push("second").unwrap();
    assert_eq!(mixed.pop(LONG).unwrap().unwrap().value(), "first");
    assert_eq!(mixed.pop(LONG).unwrap().expect("past the foreign element").value(), "second");
    let counts = mixed.counts().unwrap();
    assert_eq!((counts.foreign, counts.ready, counts.in_flight), (1, 0, 2));
    assert_eq!(
        server.command(&["LRANGE", "{mixed}:foreign", "0", "-1"]).unwrap(),
        Reply::Array(vec![Reply::Bulk(b"not an id".to_vec())])
    );
    // At most 100 set aside per call (bounded work); the next call goes on.
    let values: Vec<String> = (0..150).map(|i| format!("foreign {i}")).collect();
    let mut command = vec!["LPUSH", "mixed"];
    command.extend(values.iter().map(String::as_str));
    server.command(&command).unwrap();
    mixed.push("behind them").unwrap();
    assert!(mixed.pop(LONG).unwrap().is_none(), "100 set aside, none delivered yet");
    assert_eq!(mixed.pop(LONG).unwrap().expect("the rest set aside").value(), "behind them");
    assert_eq!(mixed.counts().unwrap().foreign, 151);
    assert!(mixed.clear().unwrap() >= 1);
    assert_eq!(mixed.counts().unwrap(), QueueCounts::default(), "clear takes the foreign list too");
    // A delayed item counts as delayed, and clear takes it too.
    mixed.push_delayed("later", LONG).unwrap();
    assert_eq!(mixed.counts().unwrap().delayed, 1);
    assert!(mixed.pop(LONG).unwrap().is_none(), "not due yet");
    assert!(mixed.clear().unwrap() >= 1);
    assert_eq!(mixed.counts().unwrap(), QueueCounts::default(), "clear takes the delayed items too");
    assert_every_script_ran(&server, "reliable_queue");
}

#[test]
fn reliable_queue_pop_wait_is_woken_by_push_and_by_a_passing_deadline() {
    let server = server();
    let jobs = ReliableQueue::<Str>::new(&client(&server), "tasks").unwrap();
    assert!(jobs.pop_wait(LONG, Duration::from_millis(30)).unwrap().is_none());
    let consumer = {
        let jobs = jobs.on(&client(&server));
        thread::spawn(move || jobs.pop_wait(LONG, Duration::from_secs(20)).unwrap())
    };
    wait_blocked(&server, 1);
    jobs.push("task").unwrap();
    let delivered = consumer.join().unwrap().expect("woken by the push");
    assert!(jobs.extend(delivered.receipt(), SHORT).unwrap().is_some());
    let started = Instant::now();
    let again = jobs.pop_wait(LONG, Duration::from_secs(20)).unwrap().expect("back after its deadline");
    assert_eq!((again.value().as_str(), again.delivery()), ("task", 2));
    assert_woken_early(started);
}

#[test]
fn semaphore_grants_at_most_its_permits() {
    let server = server();
    let client = client(&server);
    let slots = Semaphore::new(&client, "slots", 2).unwrap();
    let a = slots.acquire(LONG).unwrap().unwrap();
    let b = slots.acquire(LONG).unwrap().unwrap();
    assert!(a.id() < b.id());
    assert!(slots.acquire(LONG).unwrap().is_none());
    assert_eq!(slots.held().unwrap(), 2);
    assert!(slots.release(&a).unwrap());
    assert!(!slots.release(&a).unwrap(), "released once");
    assert_eq!(slots.held().unwrap(), 1);

    let other = Semaphore::new(&client, "slots", 3).unwrap();
    let error = other.acquire(LONG).unwrap_err();
    assert!(matches!(error, Error::SettingsMismatch { .. }), "{error:?}");
    assert!(error.to_string().contains("stored permits 2"), "{error}");

    // A lapsed permit comes back by itself; its holder learns it lost it.
    let c = slots.acquire(SHORT).unwrap().unwrap();
    assert!(slots.acquire(LONG).unwrap().is_none());
    wait_past(&server, c.deadline());
    assert_eq!(slots.held().unwrap(), 1);
    let d = slots.acquire(LONG).unwrap().expect("the lapsed permit was dropped");
    assert!(!slots.release(&c).unwrap());
    assert!(slots.extend(&c, LONG).unwrap().is_none());
    assert!(slots.extend(&d, LONG).unwrap().unwrap() >= d.deadline());

    // Waiting: woken by a release from another client.
    let waiter = {
        let slots = slots.on(&common::client(&server));
        thread::spawn(move || slots.acquire_wait(LONG, Duration::from_secs(20)).unwrap())
    };
    wait_blocked(&server, 1);
    assert!(slots.release(&b).unwrap());
    assert!(waiter.join().unwrap().is_some());
    assert!(slots.acquire_wait(LONG, Duration::from_millis(30)).unwrap().is_none(), "times out");
    // Waiting: woken (within the recheck interval) by a permit that lapses.
    let lapsing = slots.acquire_wait(LONG, Duration::ZERO);
    assert!(lapsing.unwrap().is_none(), "both permits held");
    assert!(slots.extend(&d, SHORT).unwrap().is_some());
    let started = Instant::now();
    assert!(slots.acquire_wait(LONG, Duration::from_secs(20)).unwrap().is_some(), "the lapsed permit");
    assert_woken_early(started);
    assert!(slots.clear().unwrap() >= 2);
    assert_eq!(slots.held().unwrap(), 0);
    assert!(other.acquire(LONG).unwrap().is_some(), "a cleared semaphore takes new settings");
    assert!(matches!(Semaphore::new(&client, "s", 0), Err(Error::Config(_))));
    assert_every_script_ran(&server, "semaphore");
}

#[test]
fn rate_limiter_admits_the_burst_then_says_how_long_to_wait() {
    let server = server();
    let client = client(&server);
    // One unit per minute, burst 3: the figures below hold however slowly these
    // few round trips run (they would only drift after a minute).
    let interval = Duration::from_secs(60);
    let limiter = RateLimiter::new(&client, "api", Quota::new(1, interval).burst(3)).unwrap();
    let answers: Vec<_> = (0..3).map(|_| limiter.acquire(1).unwrap()).collect();
    assert!(answers.iter().all(|a| a.allowed && a.retry_after.is_zero()), "{answers:?}");
    assert_eq!(answers.iter().map(|a| a.remaining).collect::<Vec<_>>(), [2, 1, 0]);
    let refused = limiter.acquire(1).unwrap();
    assert!(!refused.allowed && refused.remaining == 0, "{refused:?}");
    // The next unit comes one interval after the first was taken.
    assert!(refused.retry_after > interval / 2 && refused.retry_after <= interval, "{refused:?}");
    // Back to a full burst three intervals after the first was taken.
    assert!(refused.reset_after > interval * 2 && refused.reset_after <= interval * 3, "{refused:?}");
    let full_in_ms = i64::try_from((interval * 3).as_millis()).unwrap();
    assert!(matches!(server.command(&["PTTL", "api"]).unwrap(), Reply::Int(ms) if ms > 0 && ms <= full_in_ms));

    // After the wait it names, a request is admitted (poll the server clock). One
    // unit per 300 ms, burst 1: the second request is refused unless the first was
    // 300 ms ago, and waiting longer only helps.
    let quick = RateLimiter::new(&client, "quick", Quota::new(1, Duration::from_millis(300)).burst(1)).unwrap();
    assert!(quick.acquire(1).unwrap().allowed);
    let refused = quick.acquire(1).unwrap();
    assert!(!refused.allowed && refused.retry_after <= Duration::from_millis(300), "{refused:?}");
    let refused_at = common::server_time(&server);
    wait_past(&server, refused_at + refused.retry_after);
    assert!(quick.acquire(1).unwrap().allowed);

    let error = limiter.acquire(4).unwrap_err();
    assert!(matches!(error, Error::InvalidArgument { .. }), "cost above the burst: {error:?}");
    assert!(matches!(limiter.acquire(0), Err(Error::InvalidArgument { .. })));
    assert!(limiter.reset().unwrap());
    assert_eq!(limiter.acquire(3).unwrap().remaining, 0, "a reset limiter has its whole burst");
    assert!(matches!(RateLimiter::new(&client, "x", Quota::per_second(0)), Err(Error::Config(_))));
    assert!(matches!(RateLimiter::new(&client, "x", Quota::per_second(2_000_000)), Err(Error::Config(_))));
    assert_every_script_ran(&server, "rate_limiter");
}

#[test]
fn compound_keys_share_one_hash_slot() {
    let server = server();
    let client = client(&server);
    // With a hash tag in the key, every sibling keeps it: `{tenant7}` decides the slot.
    let pool = ResourcePool::<Str>::new(&client, "{tenant7}:pool").unwrap();
    pool.add("m").unwrap();
    pool.checkout(LONG).unwrap().unwrap();
    let Reply::Array(keys) = server.command(&["KEYS", "*"]).unwrap() else { panic!("KEYS") };
    assert_eq!(keys.len(), 5, "idle, leased, leases, fence, tokens: {keys:?}");
    for key in &keys {
        let Reply::Bulk(key) = key else { panic!("{key:?}") };
        assert!(key.starts_with(b"{tenant7}:pool"), "{}", String::from_utf8_lossy(key));
    }
}

#[test]
fn durations_beyond_100_years_are_refused_before_anything_is_sent() {
    let server = server();
    let client = client(&server);
    let pool = ResourcePool::<Str>::new(&client, "huge-pool").unwrap();
    pool.add("m").unwrap();
    let slots = Semaphore::new(&client, "huge-slots", 1).unwrap();
    let jobs = ReliableQueue::<Str>::new(&client, "huge-jobs").unwrap();
    jobs.push("job").unwrap();
    let lock = redisext::Lock::new(&client, "huge-lock").unwrap();
    let counter = redisext::Counter::new(&client, "huge-counter").unwrap();
    let calls_before = server.command_calls("evalsha").unwrap();
    let refused = |what: &str, error: Error| {
        assert!(
            matches!(&error, Error::InvalidArgument { reason, .. } if reason.contains("100 years")),
            "{what}: {error:?}"
        );
    };
    for huge in [Duration::from_millis(u64::MAX), Duration::MAX, LONG * 365 * 24 * 60 * 101] {
        refused("checkout", pool.checkout(huge).unwrap_err());
        refused("semaphore acquire", slots.acquire(huge).unwrap_err());
        refused("reliable pop", jobs.pop(huge).unwrap_err());
        refused("lock acquire", lock.acquire(huge).unwrap_err());
        refused("expire", counter.expire(huge).unwrap_err());
    }
    assert_eq!(server.command_calls("evalsha").unwrap(), calls_before, "nothing was sent");
    assert_eq!(pool.counts().unwrap(), PoolCounts { idle: 1, ..PoolCounts::default() }, "nothing leased");
    assert_eq!(slots.held().unwrap(), 0, "no permit taken");
    assert_eq!(jobs.counts().unwrap().ready, 1, "nothing delivered");
    assert!(!lock.locked().unwrap());

    // 100 years is accepted, and its deadline decodes.
    let century = LONG * 365 * 24 * 60 * 100;
    let lease = pool.checkout(century).unwrap().expect("idle");
    assert!(lease.deadline() > std::time::SystemTime::now() + century - LONG * 60 * 24 * 30);
    let permit = slots.acquire(century).unwrap().expect("free");
    assert!(permit.deadline() > lease.deadline() - LONG);
    assert!(jobs.pop(century).unwrap().is_some());

    // A wait may be as long as you like: "forever" gets the item too.
    jobs.push("next").unwrap();
    assert!(jobs.pop_wait(LONG, Duration::MAX).unwrap().is_some());
    assert!(pool.checkin(&lease).unwrap());
    assert!(pool.checkout_wait(LONG, Duration::MAX).unwrap().is_some());
    assert!(slots.release(&permit).unwrap());
    assert!(slots.acquire_wait(LONG, Duration::MAX).unwrap().is_some());
    assert!(lock.acquire_wait(LONG, Duration::MAX).unwrap().is_some());
    let queue = BoundedQueue::<Str>::new(&client, "huge-queue", 1, Overflow::Reject).unwrap();
    queue.push("x").unwrap();
    assert_eq!(queue.pop_wait(Duration::MAX).unwrap().as_deref(), Some("x"));
}

#[test]
fn an_undecodable_delivery_or_lease_comes_with_its_receipt_or_lease() {
    let server = server();
    let client = client(&server);
    let bad: &[u8] = b"\xff not json";

    // ReliableQueue: the item is in flight; the error's receipt acks or nacks it.
    ReliableQueue::<Raw>::new(&client, "bad-jobs").unwrap().push(bad).unwrap();
    let jobs = ReliableQueue::<Json<u32>>::new(&client, "bad-jobs").unwrap();
    let error = jobs.pop(LONG).unwrap_err();
    let Error::DeliveredUndecodable { ref delivered, ref serializer, .. } = error else { panic!("{error:?}") };
    let receipt = *delivered.receipt();
    assert_eq!((delivered.value().as_slice(), serializer.as_str(), receipt.delivery()), (bad, "Json<u32>", 1));
    assert!(delivered.deadline() > common::server_time(&server));
    assert!(error.to_string().contains("in flight"), "{error}");
    assert_eq!(jobs.counts().unwrap().in_flight, 1, "the pop happened");
    assert_eq!(jobs.nack(&receipt).unwrap(), Nacked::Requeued, "the receipt is the delivery's");
    let Error::DeliveredUndecodable { delivered, .. } = jobs.pop(LONG).unwrap_err() else { panic!("delivered again") };
    let receipt = *delivered.receipt();
    assert_eq!(receipt.delivery(), 2);
    assert!(jobs.extend(&receipt, LONG).unwrap().is_some());
    assert!(jobs.ack(&receipt).unwrap());
    assert_eq!(jobs.counts().unwrap().total(), 0);
    jobs.push(&7).unwrap();
    assert_eq!(jobs.pop(LONG).unwrap().map(|d| *d.value()), Some(7), "later pops are unaffected");

    // ResourcePool: the member is leased; the error's lease checks it in.
    ResourcePool::<Raw>::new(&client, "bad-pool").unwrap().add(bad).unwrap();
    let pool = ResourcePool::<Json<u32>>::new(&client, "bad-pool").unwrap();
    let error = pool.checkout(LONG).unwrap_err();
    let Error::LeasedUndecodable { ref lease, ref serializer, .. } = error else { panic!("{error:?}") };
    assert_eq!((lease.member().as_slice(), serializer.as_str()), (bad, "Json<u32>"));
    assert!(error.to_string().contains("fencing number 1"), "{error}");
    assert_eq!(pool.counts().unwrap().leased, 1, "the checkout happened");
    assert!(pool.extend(lease, LONG).unwrap().is_some());
    assert!(pool.checkin(lease).unwrap(), "the error's lease is the current one");
    assert_eq!(pool.counts().unwrap(), PoolCounts { idle: 1, ..PoolCounts::default() });
}

/// Every key on the server with its `DUMP`: equal snapshots, equal data.
fn snapshot(server: &redisext::testing::RedisServer) -> Vec<(String, Reply)> {
    let Reply::Array(keys) = server.command(&["KEYS", "*"]).unwrap() else { panic!("KEYS") };
    let mut keys: Vec<String> = keys
        .into_iter()
        .map(|key| match key {
            Reply::Bulk(name) => String::from_utf8(name).unwrap(),
            other => panic!("{other:?}"),
        })
        .collect();
    keys.sort();
    keys.into_iter().map(|key| (key.clone(), server.command(&["DUMP", &key]).unwrap())).collect()
}

/// For each key in `keys`: from a fresh `setup`, replaces the key with a value of
/// another type (a string, or a list where a string belongs), and checks that
/// `op` fails and changes nothing at all — so a caller may retry once the key is
/// fixed without applying anything twice. Failures are collected in `failures`.
fn check_wrong_types_change_nothing<T>(
    server: &redisext::testing::RedisServer,
    failures: &mut Vec<String>,
    what: &str,
    keys: &[&str],
    setup: impl Fn() -> T,
    op: impl Fn(&T) -> redisext::Result<()>,
) {
    for key in keys {
        server.command(&["FLUSHALL"]).unwrap();
        let state = setup();
        let was_string = server.command(&["TYPE", key]).unwrap() == Reply::Status("string".into());
        server.command(&["DEL", key]).unwrap();
        if was_string {
            server.command(&["RPUSH", key, "wrong type"]).unwrap();
        } else {
            server.command(&["SET", key, "wrong type"]).unwrap();
        }
        let before = snapshot(server);
        match op(&state) {
            Ok(()) => failures.push(format!("{what} with a wrong type at {key} succeeded")),
            Err(error) if snapshot(server) != before => {
                failures.push(format!("{what} with a wrong type at {key} failed ({error}), yet changed data"))
            }
            Err(Error::WrongType { .. } | Error::WrongSiblingType { .. }) => {}
            // A counter that was missing now holds a string that is no integer.
            Err(Error::Server { message, .. }) if message.contains("not an integer") => {}
            Err(error) => failures.push(format!("{what} with a wrong type at {key} failed with {error:?}")),
        }
    }
}

#[test]
fn a_key_of_the_wrong_type_fails_a_compound_write_before_it_changes_anything() {
    let server = server();
    let client = client(&server);
    let short_past = |deadline| wait_past(&server, deadline);
    let mut failures = Vec::new();

    let queue = BoundedQueue::<Str>::new(&client, "bq", 5, Overflow::Reject).unwrap();
    let keys = ["bq", "{bq}:settings", "{bq}:signal"];
    check_wrong_types_change_nothing(
        &server,
        &mut failures,
        "bounded_queue/push",
        &keys,
        || queue.push("a").unwrap(),
        |_| queue.push("b").map(drop),
    );

    let jobs = ReliableQueue::<Str>::new(&client, "rq").unwrap();
    let nack_keys = ["rq", "{rq}:items", "{rq}:deliveries", "{rq}:inflight", "{rq}:dead", "{rq}:signal", "{rq}:tokens"];
    let push_keys = ["rq", "{rq}:items", "{rq}:ids", "{rq}:signal"];
    check_wrong_types_change_nothing(
        &server,
        &mut failures,
        "reliable_queue/push",
        &push_keys,
        || (),
        |_| jobs.push("a").map(drop),
    );
    // One overdue delivery to reclaim (the last one: dead-lettered), one item ready.
    let with_overdue = || {
        let jobs = jobs.clone().with_max_deliveries(1).unwrap();
        jobs.push_many(["overdue", "ready"]).unwrap();
        let overdue = jobs.pop(SHORT).unwrap().unwrap();
        short_past(overdue.deadline());
        jobs
    };
    let pop_keys = [
        "rq",
        "{rq}:items",
        "{rq}:deliveries",
        "{rq}:inflight",
        "{rq}:dead",
        "{rq}:foreign",
        "{rq}:delayed",
        "{rq}:tokens",
    ];
    check_wrong_types_change_nothing(&server, &mut failures, "reliable_queue/pop", &pop_keys, with_overdue, |jobs| {
        jobs.pop(LONG).map(drop)
    });
    let in_flight = || {
        jobs.push("a").unwrap();
        jobs.pop(LONG).unwrap().unwrap()
    };
    check_wrong_types_change_nothing(
        &server,
        &mut failures,
        "reliable_queue/nack",
        &nack_keys,
        in_flight,
        |delivered| jobs.nack(delivered.receipt()).map(drop),
    );
    let ack_keys = ["{rq}:items", "{rq}:deliveries", "{rq}:inflight", "{rq}:tokens"];
    check_wrong_types_change_nothing(&server, &mut failures, "reliable_queue/ack", &ack_keys, in_flight, |delivered| {
        jobs.ack(delivered.receipt()).map(drop)
    });

    let pool = ResourcePool::<Str>::new(&client, "rp").unwrap();
    let keys = ["rp", "{rp}:leased", "{rp}:leases", "{rp}:retiring", "{rp}:signal", "{rp}:tokens"];
    check_wrong_types_change_nothing(
        &server,
        &mut failures,
        "resource_pool/add",
        &["rp", "{rp}:leased", "{rp}:signal"],
        || (),
        |_| pool.add("m").map(drop),
    );
    let leased = || {
        pool.add("m").unwrap();
        pool.checkout(LONG).unwrap().unwrap()
    };
    check_wrong_types_change_nothing(&server, &mut failures, "resource_pool/checkin", &keys, leased, |lease| {
        pool.checkin(lease).map(drop)
    });
    check_wrong_types_change_nothing(
        &server,
        &mut failures,
        "resource_pool/remove",
        &["rp", "{rp}:leased", "{rp}:retiring"],
        leased,
        |lease| pool.remove(lease.member()).map(drop),
    );
    // One expired lease to reclaim, one member idle.
    let with_expired = || {
        pool.add("expired").unwrap();
        let lease = pool.checkout(SHORT).unwrap().unwrap();
        pool.add("idle").unwrap();
        short_past(lease.deadline());
    };
    let checkout_keys = ["rp", "{rp}:leased", "{rp}:leases", "{rp}:fence", "{rp}:retiring", "{rp}:tokens"];
    check_wrong_types_change_nothing(
        &server,
        &mut failures,
        "resource_pool/checkout",
        &checkout_keys,
        with_expired,
        |_| pool.checkout(LONG).map(drop),
    );

    let slots = Semaphore::new(&client, "sem", 2).unwrap();
    let with_lapsed = || {
        let permit = slots.acquire(SHORT).unwrap().unwrap();
        short_past(permit.deadline());
    };
    check_wrong_types_change_nothing(
        &server,
        &mut failures,
        "semaphore/acquire",
        &["sem", "{sem}:settings", "{sem}:ids", "{sem}:tokens"],
        with_lapsed,
        |_| slots.acquire(LONG).map(drop),
    );
    let held = || slots.acquire(LONG).unwrap().unwrap();
    check_wrong_types_change_nothing(
        &server,
        &mut failures,
        "semaphore/release",
        &["sem", "{sem}:signal", "{sem}:tokens"],
        held,
        |permit| slots.release(permit).map(drop),
    );

    let lock = redisext::Lock::new(&client, "lk").unwrap();
    let released = || {
        let token = lock.acquire(None).unwrap().unwrap();
        assert!(lock.release(&token).unwrap());
    };
    check_wrong_types_change_nothing(&server, &mut failures, "lock/acquire", &["{lk}:fence"], released, |_| {
        lock.acquire(None).map(drop)
    });
    println!("wrong-type keys: {} compound writes changed data or succeeded", failures.len());
    assert!(failures.is_empty(), "{failures:#?}");
}

#[test]
fn consumers_drain_compound_models_on_a_server_out_of_memory() {
    let server =
        redisext::testing::RedisServer::start_with(&["--maxmemory", "3mb", "--maxmemory-policy", "noeviction"])
            .unwrap();
    let client = client(&server);
    let filler = redisext::Queue::<Raw>::new(&client, "filler").unwrap();
    let jobs = ReliableQueue::<Str>::new(&client, "jobs").unwrap();
    jobs.push_many(["a", "b", "c"]).unwrap();
    let slots = Semaphore::new(&client, "slots", 2).unwrap();
    let permit = slots.acquire(LONG).unwrap().unwrap();
    let pool = ResourcePool::<Str>::new(&client, "pool").unwrap();
    pool.add("busy").unwrap();
    pool.add("idle").unwrap();
    let lease = pool.checkout(LONG).unwrap().unwrap();
    assert_eq!(lease.member(), "busy");
    let queue = BoundedQueue::<Str>::new(&client, "bounded", 5, Overflow::Reject).unwrap();
    queue.push("item").unwrap();
    let drain = redisext::Queue::<Str>::new(&client, "drain").unwrap();
    drain.push("x").unwrap();

    let mut checked = 0;
    let mut under_oom = |what: &str, op: &dyn Fn() -> bool| {
        common::fill_memory(&filler);
        assert!(common::is_oom(&jobs.push("more")), "{what}: the server refuses writes that add data");
        assert!(op(), "{what} under OOM");
        checked += 1;
    };
    under_oom("reliable_queue/pop", &|| jobs.pop(LONG).unwrap().is_some_and(|job| job.value() == "a"));
    under_oom("reliable_queue/ack", &|| {
        let job = jobs.pop(LONG).unwrap().unwrap();
        jobs.ack(job.receipt()).unwrap()
    });
    under_oom("reliable_queue/nack", &|| {
        let job = jobs.pop(LONG).unwrap().unwrap();
        jobs.nack(job.receipt()).unwrap() == redisext::Nacked::Requeued
    });
    under_oom("semaphore/release", &|| slots.release(&permit).unwrap());
    under_oom("resource_pool/remove (idle)", &|| pool.remove("idle").unwrap() == Removal::Removed);
    under_oom("resource_pool/remove (leased)", &|| pool.remove("busy").unwrap() == Removal::Retiring);
    under_oom("resource_pool/checkin", &|| pool.checkin(&lease).unwrap());
    under_oom("bounded_queue/pop", &|| queue.pop().unwrap().as_deref() == Some("item"));
    println!("{checked} compound removals ran while writes were refused for lack of memory");

    // Inside MULTI: a transaction with a write that may use memory is refused
    // whole, on Redis and Valkey alike; one of allow-oom scripts only is refused
    // whole by Redis 7 (it refuses every command queued while over maxmemory) and
    // runs on Valkey 9. Either way nothing applies in part.
    let pipe = client.pipeline();
    let (popped, pushed) = (drain.on(&pipe).pop(), jobs.on(&pipe).push("more"));
    assert!(pipe.run_atomic().is_err(), "a transaction with a write that adds data");
    assert!(popped.take().is_err() && pushed.take().is_err());
    assert_eq!(drain.size().unwrap(), 1, "nothing applied");
    let pipe = client.pipeline();
    let popped = drain.on(&pipe).pop();
    let valkey = server.info("server").unwrap().contains("valkey_version");
    match pipe.run_atomic() {
        Ok(()) if valkey => assert_eq!(popped.take().unwrap().as_deref(), Some("x")),
        Err(error) if !valkey => {
            println!("run_atomic of an allow-oom pop at maxmemory on Redis: {error}");
            assert_eq!(drain.size().unwrap(), 1, "nothing applied");
            let pipe = client.pipeline();
            let popped = drain.on(&pipe).pop();
            pipe.run().expect("a plain pipeline drains it");
            assert_eq!(popped.take().unwrap().as_deref(), Some("x"));
        }
        other => panic!("valkey {valkey}: {other:?}"),
    }
}

#[test]
fn scripts_that_free_something_push_one_signal() {
    let server = server();
    let client = client(&server);
    // Nobody waits here, so every signal pushed stays in its list.
    let pool = ResourcePool::<Str>::new(&client, "p").unwrap();
    pool.add("m").unwrap();
    assert_eq!(signals(&server, "{p}:signal"), 1, "resource_pool/add signals");
    let lease = pool.checkout(LONG).unwrap().unwrap();
    server.command(&["DEL", "{p}:signal"]).unwrap();
    assert!(pool.checkin(&lease).unwrap());
    assert_eq!(signals(&server, "{p}:signal"), 1, "resource_pool/checkin signals");

    let slots = Semaphore::new(&client, "s", 2).unwrap();
    let permit = slots.acquire(LONG).unwrap().unwrap();
    assert_eq!(signals(&server, "{s}:signal"), 0);
    assert!(slots.release(&permit).unwrap());
    assert_eq!(signals(&server, "{s}:signal"), 1, "semaphore/release signals");

    let queue = BoundedQueue::<Str>::new(&client, "b", 5, Overflow::Reject).unwrap();
    queue.push("x").unwrap();
    assert_eq!(signals(&server, "{b}:signal"), 1, "bounded_queue/push signals");

    let jobs = ReliableQueue::<Str>::new(&client, "r").unwrap();
    jobs.push("x").unwrap();
    assert_eq!(signals(&server, "{r}:signal"), 1, "reliable_queue/push signals");
    let job = jobs.pop(LONG).unwrap().unwrap();
    server.command(&["DEL", "{r}:signal"]).unwrap();
    assert_eq!(jobs.nack(job.receipt()).unwrap(), Nacked::Requeued);
    assert_eq!(signals(&server, "{r}:signal"), 1, "reliable_queue/nack signals");
}

#[test]
fn waiters_block_on_the_signal_list_the_scripts_push_to() {
    let server = server();
    let client = client(&server);
    let pool = ResourcePool::<Str>::new(&client, "p").unwrap();
    let slots = Semaphore::new(&client, "s", 1).unwrap();
    let held = slots.acquire(LONG).unwrap().unwrap();
    let queue = BoundedQueue::<Str>::new(&client, "b", 5, Overflow::Reject).unwrap();
    let jobs = ReliableQueue::<Str>::new(&client, "r").unwrap();
    /// Waits on its own client; true when it got something.
    type Waiter = Box<dyn FnOnce(Client) -> bool + Send>;
    let waiters: Vec<(&str, Waiter)> = vec![
        (
            "{p}:signal",
            Box::new({
                let pool = pool.clone();
                move |own| pool.on(&own).checkout_wait(LONG, Duration::from_secs(20)).unwrap().is_some()
            }),
        ),
        (
            "{s}:signal",
            Box::new({
                let slots = slots.clone();
                move |own| slots.on(&own).acquire_wait(LONG, Duration::from_secs(20)).unwrap().is_some()
            }),
        ),
        (
            "{b}:signal",
            Box::new({
                let queue = queue.clone();
                move |own| queue.on(&own).pop_wait(Duration::from_secs(20)).unwrap().is_some()
            }),
        ),
        (
            "{r}:signal",
            Box::new({
                let jobs = jobs.clone();
                move |own| jobs.on(&own).pop_wait(LONG, Duration::from_secs(20)).unwrap().is_some()
            }),
        ),
    ];
    for (signal, wait) in waiters {
        let own = common::client(&server);
        let waiter = thread::spawn(move || wait(own));
        wait_blocked(&server, 1);
        // A bare signal (nothing to take): the waiter's BLPOP takes it, the waiter
        // finds nothing and blocks again. Had it blocked on another key, the
        // signal would stay.
        server.command(&["LPUSH", signal, "1"]).unwrap();
        server
            .wait_until(Duration::from_secs(10), |s| Ok(signals(s, signal) == 0))
            .unwrap_or_else(|_| panic!("nobody took the signal at {signal}"));
        assert!(!waiter.is_finished(), "{signal}: a bare signal gives nothing to take");
        // Now something to take, and its own signal.
        match signal {
            "{p}:signal" => assert!(pool.add("m").unwrap()),
            "{s}:signal" => assert!(slots.release(&held).unwrap()),
            "{b}:signal" => queue.push("x").map(drop).unwrap(),
            _ => jobs.push("x").map(drop).unwrap(),
        }
        assert!(waiter.join().unwrap(), "{signal}: the waiter got what was freed");
    }
}
