//! Guards that give back a Semaphore permit or a ResourcePool lease when dropped
//! (blocking and async), and what an async acquisition dropped in flight leaves:
//! with a guard, nothing; with a plain acquire, a grant that ends at its deadline.

mod common;

use std::collections::HashSet;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use common::proxy::Proxy;
use common::{client, server};
use redisext::serializer::Str;
use redisext::testing::RedisServer;
use redisext::{AsyncClient, ReliableQueue, Reply, ResourcePool, Semaphore, Timeouts};

const LONG: Duration = Duration::from_secs(60);
const THREADS: usize = 16;

fn exists(server: &RedisServer, key: &str) -> bool {
    server.command(&["EXISTS", key]).unwrap() == Reply::Int(1)
}

fn get(server: &RedisServer, key: &str) -> Reply {
    server.command(&["GET", key]).unwrap()
}

#[test]
fn blocking_guards_give_back_when_dropped() {
    let server = server();
    let client = client(&server);
    let slots = Semaphore::new(&client, "slots", 1).unwrap();
    let guard = slots.guard(LONG, Duration::ZERO).unwrap().expect("free");
    assert_eq!(slots.held().unwrap(), 1);
    assert!(slots.guard(LONG, Duration::ZERO).unwrap().is_none(), "the one permit is held");
    assert!(guard.extend(LONG).unwrap().is_some());
    drop(guard);
    assert_eq!(slots.held().unwrap(), 0, "released on drop");
    let guard = slots.guard(LONG, Duration::ZERO).unwrap().expect("free again");
    assert!(guard.release().unwrap(), "an explicit release reports its result");
    assert!(!exists(&server, "{slots}:tokens"));

    let pool = ResourcePool::<Str>::new(&client, "pool").unwrap();
    pool.add("m").unwrap();
    let guard = pool.guard(LONG, Duration::ZERO).unwrap().expect("idle");
    assert_eq!(guard.member(), "m");
    assert_eq!(pool.counts().unwrap().leased, 1);
    drop(guard);
    assert_eq!(pool.counts().unwrap().idle, 1, "checked in on drop");
    let guard = pool.guard(LONG, Duration::ZERO).unwrap().expect("idle again");
    assert!(guard.checkin().unwrap());
    assert!(!exists(&server, "{pool}:tokens"));
}

#[test]
fn guards_under_16_threads_never_exceed_the_permits_or_share_a_member() {
    let server = server();
    let client = client(&server);
    const PERMITS: i64 = 2;
    let (holding, most) = (Arc::new(AtomicI64::new(0)), Arc::new(AtomicI64::new(0)));
    let pool = ResourcePool::<Str>::new(&client, "pool").unwrap();
    for member in ["a", "b", "c"] {
        pool.add(member).unwrap();
    }
    let leased = Arc::new(Mutex::new(HashSet::new()));
    let violations = Arc::new(AtomicU64::new(0));
    let workers: Vec<_> = (0..THREADS)
        .map(|_| {
            let client = redisext::Client::open(&server.url()).unwrap();
            let slots = Semaphore::new(&client, "slots", PERMITS as u32).unwrap();
            let pool = pool.on(&client);
            let (holding, most, leased, violations) =
                (Arc::clone(&holding), Arc::clone(&most), Arc::clone(&leased), Arc::clone(&violations));
            thread::spawn(move || {
                for _ in 0..30 {
                    let permit = slots.guard(LONG, Duration::from_secs(10)).unwrap().expect("a permit");
                    most.fetch_max(holding.fetch_add(1, Ordering::SeqCst) + 1, Ordering::SeqCst);
                    let lease = pool.guard(LONG, Duration::from_secs(10)).unwrap().expect("a member");
                    if !leased.lock().unwrap().insert(lease.member().clone()) {
                        violations.fetch_add(1, Ordering::SeqCst);
                    }
                    leased.lock().unwrap().remove(lease.member());
                    drop(lease);
                    holding.fetch_sub(1, Ordering::SeqCst);
                    drop(permit);
                }
            })
        })
        .collect();
    workers.into_iter().for_each(|w| w.join().unwrap());
    println!("guards: {THREADS} threads x 30, at most {} permits held at once", most.load(Ordering::SeqCst));
    assert!(most.load(Ordering::SeqCst) <= PERMITS);
    assert_eq!(violations.load(Ordering::SeqCst), 0, "a member leased to two guards at once");
    assert_eq!(Semaphore::new(&client, "slots", PERMITS as u32).unwrap().held().unwrap(), 0, "a permit leaked");
    assert_eq!(pool.counts().unwrap().idle, 3, "a lease leaked");
    assert!(!exists(&server, "{slots}:tokens") && !exists(&server, "{pool}:tokens"), "a token leaked");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn async_guards_give_back_when_dropped() {
    let server = server();
    let client = AsyncClient::open(&server.url()).unwrap();
    let slots = Semaphore::new(&client, "slots", 1).unwrap();
    let guard = slots.guard(LONG, Duration::ZERO).await.unwrap().expect("free");
    assert_eq!(guard.permit().id(), 1);
    assert!(slots.guard(LONG, Duration::ZERO).await.unwrap().is_none(), "the one permit is held");
    drop(guard);
    // The release was spawned on the runtime: it lands shortly.
    let waiting = slots.guard(LONG, Duration::from_secs(10)).await.unwrap().expect("released by the spawned task");
    assert!(waiting.release().await.unwrap());

    let pool = ResourcePool::<Str, _>::new(&client, "pool").unwrap();
    pool.add("m").await.unwrap();
    let guard = pool.guard(LONG, Duration::ZERO).await.unwrap().expect("idle");
    assert_eq!(guard.member(), "m");
    drop(guard);
    let waiting = pool.guard(LONG, Duration::from_secs(10)).await.unwrap().expect("checked in by the spawned task");
    assert!(waiting.checkin().await.unwrap());
    assert!(!exists(&server, "{slots}:tokens") && !exists(&server, "{pool}:tokens"));
}

/// An async client behind `proxy` that waits long for replies, so that an
/// operation whose reply is held back stays in flight until its future is dropped.
fn patient_client(proxy: &Proxy) -> AsyncClient {
    let timeouts = Timeouts { connect: Duration::from_secs(5), response: Some(Duration::from_secs(30)) };
    AsyncClient::builder().master(&proxy.url()).timeouts(timeouts).build().unwrap()
}

/// Drops `future` once it has been in flight a while: its request has reached the
/// server, its reply is held back by the proxy.
async fn drop_in_flight<F: std::future::Future>(future: F) {
    assert!(tokio::time::timeout(Duration::from_millis(300), future).await.is_err(), "the reply got through");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_async_acquisition_dropped_in_flight_holds_nothing_beyond_its_deadline() {
    let server = server();
    let direct = client(&server);
    let proxy = Proxy::start(server.port());
    let client = patient_client(&proxy);

    let slots = Semaphore::new(&client, "slots", 2).unwrap();
    let pool = ResourcePool::<Str, _>::new(&client, "pool").unwrap();
    let jobs = ReliableQueue::<Str, _>::new(&client, "jobs").unwrap();
    // Open the proxied connection and load every script used below.
    pool.add("m").await.unwrap();
    jobs.push("job").await.unwrap();
    slots.guard(LONG, Duration::ZERO).await.unwrap().unwrap().release().await.unwrap();
    pool.guard(LONG, Duration::ZERO).await.unwrap().unwrap().checkin().await.unwrap();
    let loading = jobs.pop(LONG).await.unwrap().unwrap();
    assert!(jobs.nack(loading.receipt()).await.unwrap() == redisext::Nacked::Requeued);
    let direct_slots = Semaphore::new(&direct, "slots", 2).unwrap();
    let direct_pool = ResourcePool::<Str>::new(&direct, "pool").unwrap();
    let direct_jobs = ReliableQueue::<Str>::new(&direct, "jobs").unwrap();

    // From now on requests reach the server and replies never come back.
    proxy.set_existing(true, false);

    // A guard's future dropped in flight: what its acquire took is given back.
    drop_in_flight(slots.guard(LONG, Duration::ZERO)).await;
    drop_in_flight(pool.guard(LONG, Duration::ZERO)).await;
    server
        .wait_until(Duration::from_secs(10), |server| {
            Ok(!exists(server, "{slots}:tokens") && !exists(server, "{pool}:tokens"))
        })
        .unwrap();
    assert_eq!(get(&server, "{slots}:ids"), Reply::Bulk(b"2".to_vec()), "the dropped acquire did take a permit");
    assert_eq!(get(&server, "{pool}:fence"), Reply::Bulk(b"2".to_vec()), "the dropped checkout did take a lease");
    assert_eq!(direct_slots.held().unwrap(), 0, "and the spawned release gave it back");
    assert_eq!(direct_pool.counts().unwrap().idle, 1, "and the spawned checkin gave it back");

    // A plain acquire, checkout or pop dropped in flight: held until its deadline.
    // (Deadlines long enough to outlast the three drops and the checks below.)
    let short = Duration::from_secs(3);
    drop_in_flight(slots.acquire(short)).await;
    drop_in_flight(pool.checkout(short)).await;
    drop_in_flight(jobs.pop(short)).await;
    server.wait_until(Duration::from_secs(10), |_| Ok(direct_slots.held().unwrap() == 1)).unwrap();
    assert_eq!(direct_pool.counts().unwrap().leased + direct_pool.counts().unwrap().expired, 1);
    assert_eq!(direct_jobs.counts().unwrap().total(), 1);
    // The deadlines pass: the permit lapses, the lease is reclaimed, the job comes back.
    server.wait_until(Duration::from_secs(10), |_| Ok(direct_slots.held().unwrap() == 0)).unwrap();
    let lease = direct_pool.checkout_wait(LONG, Duration::from_secs(10)).unwrap().expect("reclaimed");
    let job = direct_jobs.pop_wait(LONG, Duration::from_secs(10)).unwrap().expect("delivered again");
    assert_eq!((job.value().as_str(), job.delivery()), ("job", 3), "after the loading pop and the dropped one");
    assert!(direct_pool.checkin(&lease).unwrap());
    assert!(direct_jobs.ack(job.receipt()).unwrap());
    let permit = direct_slots.acquire(LONG).unwrap().unwrap();
    assert!(direct_slots.release(&permit).unwrap());
    // And the tokens nobody kept went with what they held: nothing left.
    for key in ["{slots}:tokens", "{pool}:tokens", "{jobs}:tokens"] {
        assert!(!exists(&server, key), "{key} outlived what it held");
    }
    proxy.set_existing(true, true);
}
