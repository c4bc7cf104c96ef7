//! Waiting operations (blocking pops, waits for a permit): limits of the timeout
//! and what happens when the wait's own connection fails.

mod common;

use std::time::Duration;

use common::server;
use redisext::serializer::Str;
use redisext::{BoundedQueue, Client, Overflow, Reply, Semaphore, Timeouts};

#[test]
fn a_timeout_too_long_to_represent_means_wait_without_end_not_a_panic() {
    let server = server();
    // A response timeout of "forever" as well, which the wait's connection adds to.
    let timeouts = Timeouts { response: Some(Duration::MAX), ..Timeouts::default() };
    let client = Client::builder().master(&server.url()).timeouts(timeouts).build().unwrap();
    let queue = BoundedQueue::<Str>::new(&client, "q", 10, Overflow::Reject).unwrap();
    queue.push("ready").unwrap();
    assert_eq!(queue.pop_wait(Duration::MAX).unwrap().as_deref(), Some("ready"));
    std::thread::scope(|scope| {
        let waiter = scope.spawn(|| queue.pop_wait(Duration::MAX).unwrap());
        server.wait_until(Duration::from_secs(10), |s| Ok(s.info_field("clients", "blocked_clients")? == "1")).unwrap();
        queue.push("later").unwrap();
        assert_eq!(waiter.join().unwrap().as_deref(), Some("later"));
    });
}

/// The id of the client blocked in BLPOP, from CLIENT LIST.
fn blocked_client_id(server: &redisext::testing::RedisServer) -> Option<String> {
    let Reply::Bulk(list) = server.command(&["CLIENT", "LIST"]).ok()? else { return None };
    String::from_utf8_lossy(&list)
        .lines()
        .find(|line| line.contains("cmd=blpop"))
        .and_then(|line| line.split_whitespace().find_map(|field| field.strip_prefix("id=")).map(str::to_owned))
}

#[test]
fn a_killed_signal_connection_does_not_end_the_wait() {
    let server = server();
    let client = Client::open(&server.url()).unwrap();
    let semaphore = Semaphore::new(&client, "permits", 1).unwrap();
    let held = semaphore.acquire(Duration::from_secs(60)).unwrap().unwrap();
    std::thread::scope(|scope| {
        let waiter = scope.spawn(|| {
            let own_client = Client::open(&server.url()).unwrap();
            Semaphore::new(&own_client, "permits", 1)
                .unwrap()
                .acquire_wait(Duration::from_secs(60), Duration::from_secs(30))
        });
        // Kill the wait's BLPOP connection (a failover or a restart does the same).
        let mut id = None;
        server
            .wait_until(Duration::from_secs(10), |s| {
                id = blocked_client_id(s);
                Ok(id.is_some())
            })
            .unwrap();
        server.command(&["CLIENT", "KILL", "ID", id.as_deref().unwrap()]).unwrap();
        // The waiter carries on (on a new connection) and gets the permit when it
        // is released: the killed connection said nothing about the operation.
        server
            .wait_until(Duration::from_secs(10), |s| {
                Ok(blocked_client_id(s).is_some_and(|new| Some(&new) != id.as_ref()))
            })
            .unwrap();
        assert!(semaphore.release(&held).unwrap());
        let permit = waiter.join().unwrap().expect("the wait survived its connection");
        assert!(permit.is_some(), "it got the released permit");
    });
}

#[test]
fn a_lock_release_wakes_a_waiter_through_the_signal_list() {
    let server = server();
    let client = Client::open(&server.url()).unwrap();
    let lock = redisext::Lock::new(&client, "door").unwrap();
    let signals = || server.command(&["LLEN", "{door}:signal"]).unwrap();

    // With nobody waiting, releases leave one signal, never more.
    for _ in 0..3 {
        let token = lock.acquire(Duration::from_secs(60)).unwrap().unwrap();
        assert!(lock.release(&token).unwrap());
    }
    assert_eq!(signals(), Reply::Int(1));
    server.command(&["DEL", "{door}:signal"]).unwrap();

    let held = lock.acquire(Duration::from_secs(60)).unwrap().unwrap();
    std::thread::scope(|scope| {
        let waiter = scope.spawn(|| {
            let own = Client::open(&server.url()).unwrap();
            redisext::Lock::new(&own, "door").unwrap().acquire_wait(Duration::from_secs(60), Duration::from_secs(30))
        });
        server.wait_until(Duration::from_secs(10), |s| Ok(s.info_field("clients", "blocked_clients")? == "1")).unwrap();
        assert!(lock.release(&held).unwrap());
        let taken = waiter.join().unwrap().unwrap().expect("the waiter took the released lock");
        assert!(taken.fence() > held.fence());
    });
    // The waiter's BLPOP took the release's signal.
    assert_eq!(signals(), Reply::Int(0));
}
