//! The async client's lock guards against a real server: mutual exclusion
//! among many tasks with releases on drop, renewal on a tokio task, the `lost`
//! signal and its notification, and what dropping an acquire in flight leaves
//! behind (nothing held for ever).
#![cfg(feature = "tokio")]

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use common::server;
use redisext::testing::RedisServer;
use redisext::{AsyncClient, Lock, LockToken, Ttl};

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

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sixteen_tasks_never_hold_the_lock_at_once_and_dropped_guards_release_it() {
    let server = server();
    let client = async_client(&server);
    let lock = Lock::new(&client, "exclusive").unwrap();
    let holders = Arc::new(AtomicU32::new(0));
    let mut tasks = Vec::new();
    for _ in 0..16 {
        let (lock, holders) = (lock.clone(), Arc::clone(&holders));
        tasks.push(tokio::spawn(async move {
            let mut held = 0;
            while held < 10 {
                let Some(guard) = lock.guard(Duration::from_secs(30), Duration::from_secs(30)).await.unwrap() else {
                    continue;
                };
                assert_eq!(holders.fetch_add(1, Ordering::SeqCst), 0, "another task holds the lock");
                tokio::task::yield_now().await;
                holders.fetch_sub(1, Ordering::SeqCst);
                held += 1;
                if held % 2 == 0 {
                    assert!(guard.release().await.unwrap());
                } else {
                    drop(guard); // the release is spawned
                }
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    eventually("the last dropped guard's release ran", async || !lock.locked().await.unwrap()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_renewing_guard_outlives_its_ttl_and_release_stops_the_renewals() {
    let server = server();
    let client = async_client(&server);
    let lock = Lock::new(&client, "long-job").unwrap();
    let guard = lock.renewing_guard(Duration::from_millis(300), Duration::ZERO).await.unwrap().unwrap();
    let first = guard.valid_until().unwrap();
    // Renewed (valid_until moves on) well past the first expiry: the renewing
    // task works.
    eventually("renewed past the first expiry", async || {
        guard.valid_until().unwrap() > first + Duration::from_millis(600)
    })
    .await;
    assert!(!guard.lost());
    assert!(matches!(lock.ttl().await.unwrap(), Ttl::Expires(_)));
    assert_eq!(lock.acquire(None).await.unwrap(), None, "still held");
    assert!(guard.release().await.unwrap());
    // Every renewal sent before the release ran before it (one connection, in order).
    let after_release = server.command_calls("evalsha").unwrap();
    assert!(!lock.locked().await.unwrap());
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(server.command_calls("evalsha").unwrap(), after_release, "no renewal after the release");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_renewal_that_finds_the_lock_gone_reports_the_loss_and_notifies() {
    let server = server();
    let client = async_client(&server);
    let lock = Lock::new(&client, "taken-away").unwrap();
    let guard = lock.renewing_guard(Duration::from_millis(300), Duration::ZERO).await.unwrap().unwrap();
    server.command(&["DEL", "taken-away"]).unwrap();
    tokio::time::timeout(Duration::from_secs(30), guard.lost_notification()).await.expect("notified of the loss");
    assert!(guard.lost());
    assert!(!guard.extend(Duration::from_secs(1)).await.unwrap(), "not held with this token");
    assert!(!guard.release().await.unwrap());
}

#[tokio::test]
async fn an_unrenewed_guard_is_lost_once_its_expiry_passes() {
    let server = server();
    let client = async_client(&server);
    let lock = Lock::new(&client, "short").unwrap();
    let guard = lock.guard(Duration::from_millis(100), Duration::ZERO).await.unwrap().unwrap();
    tokio::time::timeout(Duration::from_secs(30), guard.lost_notification()).await.expect("lost when it expires");
    assert!(guard.lost());
}

/// Starts `future`, lets it run 200 ms while the server holds every write (so
/// its acquire is sent and in flight), then drops it; the pause then ends.
async fn drop_in_flight<F: std::future::Future>(server: &RedisServer, future: F) {
    server.command(&["CLIENT", "PAUSE", "600", "WRITE"]).unwrap();
    assert!(tokio::time::timeout(Duration::from_millis(200), future).await.is_err(), "still in flight when dropped");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_guard_acquire_dropped_in_flight_releases_what_it_took() {
    let server = server();
    let client = async_client(&server);
    let lock = Lock::new(&client, "dropped").unwrap();
    // Scripts loaded, so that the acquire under the pause is one EVALSHA.
    lock.guard(Duration::from_secs(60), Duration::ZERO).await.unwrap().unwrap().release().await.unwrap();
    let before = server.command_calls("evalsha").unwrap();

    drop_in_flight(&server, lock.guard(Duration::from_secs(60), Duration::ZERO)).await;
    // After the pause the dropped acquire runs, then the release its drop spawned.
    eventually("the acquire and the release ran", async || server.command_calls("evalsha").unwrap() >= before + 2)
        .await;
    assert!(!lock.locked().await.unwrap(), "the lock taken by the dropped acquire was released");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_acquire_dropped_in_flight_leaves_the_lock_until_its_expiry_or_its_token_releases_it() {
    let server = server();
    let client = async_client(&server);
    let lock = Lock::new(&client, "settled").unwrap();
    let token = LockToken::generate();
    assert!(lock.acquire_with(&token, Duration::from_secs(1)).await.unwrap().is_some());
    assert!(lock.release(&token).await.unwrap());

    // A plain acquire has no drop guard: what it took stays taken until expiry…
    drop_in_flight(&server, lock.acquire(Duration::from_millis(500))).await;
    eventually("the dropped acquire ran", async || lock.locked().await.unwrap()).await;
    assert!(matches!(lock.ttl().await.unwrap(), Ttl::Expires(left) if left <= Duration::from_millis(500)));
    eventually("its expiry frees it", async || !lock.locked().await.unwrap()).await;

    // …and with a token of one's own, it can be found and released at once.
    let token = LockToken::generate();
    drop_in_flight(&server, lock.acquire_with(&token, Duration::from_secs(3600))).await;
    eventually("the dropped acquire ran", async || lock.locked().await.unwrap()).await;
    let held = lock.holds(&token).await.unwrap().expect("held with the token");
    assert!(held.fence() > 0);
    assert!(lock.release(&token).await.unwrap());
    assert!(!lock.locked().await.unwrap());
}
