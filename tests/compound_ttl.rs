//! A compound model's time to live, against real servers: `expire`, `ttl` and
//! `persist` act on the model's key and every sibling key `clear` deletes, at
//! once in one script (`compound/expire`, `compound/ttl`, `compound/persist`);
//! the id and fencing counters are kept, as `clear` keeps them. `ttl` is the
//! smallest remaining time to live among the keys that exist and expire. On a
//! cluster, every key of the model is in one hash slot, so each script runs on
//! one node.

mod common;

use std::time::Duration;

use common::{client, server};
use redisext::serializer::Str;
use redisext::testing::{RedisCluster, RedisServer};
use redisext::{
    BoundedQueue, Client, Error, Model, ModelOptions, Overflow, ReliableQueue, Reply, ResourcePool, Result, Semaphore,
    Ttl,
};

const LONG: Duration = Duration::from_secs(60);

/// A compound model's expiry commands, whatever its type.
struct Expiry<'m> {
    expire: Box<dyn Fn(Option<Duration>) -> Result<bool> + 'm>,
    ttl: Box<dyn Fn() -> Result<Ttl> + 'm>,
    persist: Box<dyn Fn() -> Result<bool> + 'm>,
    clear: Box<dyn Fn() -> Result<u64> + 'm>,
}

macro_rules! expiry {
    ($model:expr) => {{
        let model = &$model;
        Expiry {
            expire: Box::new(move |ttl| model.expire(ttl)),
            ttl: Box::new(move || model.ttl()),
            persist: Box::new(move || model.persist()),
            clear: Box::new(move || model.clear()),
        }
    }};
}

/// The counters that outlive `clear`, and so are never given an expiry.
fn is_counter(key: &str) -> bool {
    key.ends_with(":ids") || key.ends_with(":fence")
}

fn keys(server: &RedisServer) -> Vec<String> {
    let Reply::Array(keys) = server.command(&["KEYS", "*"]).unwrap() else { panic!("KEYS") };
    let mut keys: Vec<String> = keys
        .into_iter()
        .map(|key| match key {
            Reply::Bulk(bytes) => String::from_utf8(bytes).unwrap(),
            other => panic!("{other:?}"),
        })
        .collect();
    keys.sort();
    keys
}

fn pttl(server: &RedisServer, key: &str) -> i64 {
    match server.command(&["PTTL", key]).unwrap() {
        Reply::Int(ms) => ms,
        other => panic!("PTTL {key}: {other:?}"),
    }
}

fn expires_within(ttl: Ttl, most: Duration) -> bool {
    matches!(ttl, Ttl::Expires(left) if !left.is_zero() && left <= most)
}

/// On a server holding nothing but one filled model: its expiry covers every key
/// but the counters, `ttl` is the smallest, `persist` undoes it, and after `clear`
/// there is nothing left to expire.
fn check_the_whole_model_expires(server: &RedisServer, model: &Expiry<'_>, at_least_keys: usize) {
    let all = keys(server);
    let expiring: Vec<&String> = all.iter().filter(|key| !is_counter(key)).collect();
    assert!(expiring.len() >= at_least_keys, "the model's siblings exist: {all:?}");
    assert_eq!((model.ttl)().unwrap(), Ttl::Persistent);

    assert!((model.expire)(Some(LONG)).unwrap());
    for key in &all {
        let left = pttl(server, key);
        if is_counter(key) {
            assert_eq!(left, -1, "{key}: a counter keeps no expiry");
        } else {
            assert!(left > 0 && left <= 60_000, "{key}: {left} ms");
        }
    }
    assert!(expires_within((model.ttl)().unwrap(), LONG));

    // The smallest time to live among the keys is the model's.
    let sibling = expiring.last().unwrap();
    server.command(&["PEXPIRE", sibling, "5000"]).unwrap();
    assert!(expires_within((model.ttl)().unwrap(), Duration::from_secs(5)), "{sibling} goes first");
    // A key without an expiry (say, created after `expire`) does not hide the others'.
    server.command(&["PERSIST", sibling]).unwrap();
    assert!(expires_within((model.ttl)().unwrap(), LONG));

    assert!((model.persist)().unwrap());
    assert!(all.iter().all(|key| pttl(server, key) == -1), "no key expires any more");
    assert_eq!((model.ttl)().unwrap(), Ttl::Persistent);
    assert!(!(model.persist)().unwrap(), "nothing left to persist");

    assert!((model.clear)().unwrap() >= 1);
    assert_eq!((model.ttl)().unwrap(), Ttl::Missing, "only counters are left, and they are not the model's data");
    assert!(!(model.expire)(Some(LONG)).unwrap(), "nothing to expire");
    assert!(!(model.persist)().unwrap());
}

#[test]
fn a_reliable_queue_expires_whole() {
    let server = server();
    let queue = ReliableQueue::<Str>::new(&client(&server), "jobs").unwrap();
    queue.push_many(["a", "b", "c"]).unwrap();
    queue.push_delayed("later", LONG).unwrap();
    let delivered = queue.pop(LONG).unwrap().unwrap();
    queue.extend(delivered.receipt(), LONG).unwrap().unwrap();
    check_the_whole_model_expires(&server, &expiry!(queue), 4);
}

#[test]
fn a_resource_pool_expires_whole() {
    let server = server();
    let pool = ResourcePool::<Str>::new(&client(&server), "printers").unwrap();
    pool.add("p1").unwrap();
    pool.add("p2").unwrap();
    pool.checkout(LONG).unwrap().unwrap();
    check_the_whole_model_expires(&server, &expiry!(pool), 3);
}

#[test]
fn a_semaphore_expires_whole() {
    let server = server();
    let semaphore = Semaphore::new(&client(&server), "permits", 2).unwrap();
    semaphore.acquire(LONG).unwrap().unwrap();
    check_the_whole_model_expires(&server, &expiry!(semaphore), 2);
}

#[test]
fn a_bounded_queue_expires_whole() {
    let server = server();
    let queue = BoundedQueue::<Str>::new(&client(&server), "recent", 5, Overflow::EvictOldest).unwrap();
    queue.push_many(["1", "2", "3"]).unwrap();
    check_the_whole_model_expires(&server, &expiry!(queue), 2);
}

#[test]
fn an_expired_model_is_gone_and_its_counter_stays() {
    let server = server();
    let queue = ReliableQueue::<Str>::new(&client(&server), "jobs").unwrap();
    queue.push_many(["a", "b"]).unwrap();
    queue.pop(LONG).unwrap().unwrap();
    assert!(queue.expire(Duration::from_millis(30)).unwrap());
    server.wait_until(Duration::from_secs(10), |s| Ok(keys(s).iter().all(|key| is_counter(key)))).unwrap();
    assert_eq!(queue.ttl().unwrap(), Ttl::Missing);
    assert_eq!(keys(&server), ["{jobs}:ids"], "the id counter outlives the data, as with clear");
    // The queue works again from scratch, ids still growing.
    queue.push("c").unwrap();
    assert!(queue.pop(LONG).unwrap().unwrap().value() == "c");
}

#[test]
fn expire_without_a_duration_uses_the_model_default_or_is_refused() {
    let server = server();
    let client = client(&server);
    let plain = ReliableQueue::<Str>::new(&client, "plain").unwrap();
    plain.push("a").unwrap();
    assert!(matches!(plain.expire(None), Err(Error::NoDefaultExpiry { .. })));
    assert!(matches!(plain.expire(Duration::ZERO), Err(Error::InvalidArgument { .. })));
    assert_eq!(plain.ttl().unwrap(), Ttl::Persistent, "nothing was sent");

    let options = ModelOptions::new().expire(Duration::from_secs(30));
    let defaulted = <ReliableQueue<Str> as Model>::with_options(&client, "defaulted", options).unwrap();
    defaulted.push("a").unwrap();
    assert!(defaulted.expire(None).unwrap());
    assert!(expires_within(defaulted.ttl().unwrap(), Duration::from_secs(30)));
}

#[cfg(feature = "tokio")]
#[tokio::test]
async fn the_async_client_expires_a_whole_model_too() {
    let server = server();
    let client = redisext::AsyncClient::open(&server.url()).unwrap();
    let semaphore = Semaphore::new(&client, "permits", 1).unwrap();
    semaphore.acquire(LONG).await.unwrap().unwrap();
    assert!(semaphore.expire(LONG).await.unwrap());
    assert!(expires_within(semaphore.ttl().await.unwrap(), LONG));
    assert!(semaphore.persist().await.unwrap());
    assert_eq!(semaphore.ttl().await.unwrap(), Ttl::Persistent);
}

/// On a cluster the keys of a model share one slot: each script runs on one node
/// (a key of another slot would be refused with `CROSSSLOT`), with or without a
/// hash tag in the model's key.
#[test]
fn on_a_cluster_each_model_expires_in_one_script() {
    let cluster = RedisCluster::start(3).expect("start a 3-node cluster");
    let client = Client::builder().cluster(&cluster.url()).build().unwrap();
    for key in ["jobs", "{tenant-9}:jobs"] {
        let queue = ReliableQueue::<Str>::new(&client, key).unwrap();
        queue.push_many(["a", "b"]).unwrap();
        queue.pop(LONG).unwrap().unwrap();
        let pool = ResourcePool::<Str>::new(&client, format!("{key}-pool")).unwrap();
        pool.add("p").unwrap();
        pool.checkout(LONG).unwrap().unwrap();
        let semaphore = Semaphore::new(&client, format!("{key}-permits"), 1).unwrap();
        semaphore.acquire(LONG).unwrap().unwrap();
        let bounded = BoundedQueue::<Str>::new(&client, format!("{key}-recent"), 1, Overflow::EvictOldest).unwrap();
        bounded.push("x").unwrap();
        for model in [expiry!(queue), expiry!(pool), expiry!(semaphore), expiry!(bounded)] {
            assert!((model.expire)(Some(LONG)).unwrap());
            assert!(expires_within((model.ttl)().unwrap(), LONG));
            assert!((model.persist)().unwrap());
            assert_eq!((model.ttl)().unwrap(), Ttl::Persistent);
            assert!((model.clear)().unwrap() >= 1);
            assert_eq!((model.ttl)().unwrap(), Ttl::Missing);
        }
    }
}
