//! A reused connection the server closed while it sat idle (`CLIENT KILL`, an
//! idle `timeout`, a restart) is seen before a command is written to it: the
//! operation goes out on a new connection, on its first try. Retries are off in
//! these tests, so that it is that check, not a resend, that keeps the operation
//! whole. The `redis` crate's connections (a `redis::Client` you give) cannot be
//! looked at: there the same write fails, its outcome unknown.

mod common;

use std::sync::atomic::{AtomicU64, Ordering};
use std::thread;
use std::time::Duration;

use common::{info_number, server};
use redisext::testing::{RedisCluster, RedisServer};
use redisext::{Client, Counter, Delivery, Error, Reply, RetryPolicy, Reuse};

/// The ids of the normal clients other than the one asking.
fn client_ids(server: &RedisServer) -> Vec<String> {
    let Reply::Bulk(list) = server.command(&["CLIENT", "LIST", "TYPE", "normal"]).unwrap() else {
        panic!("CLIENT LIST is not a bulk string")
    };
    String::from_utf8(list)
        .unwrap()
        .lines()
        .filter(|line| !line.contains("cmd=client|list"))
        .filter_map(|line| line.split(' ').find_map(|field| field.strip_prefix("id=")).map(str::to_owned))
        .collect()
}

/// Closes every client connection of `server` (but the one asking), waits until
/// none is left, and says how many it closed.
fn kill_all(server: &RedisServer) -> i64 {
    let Reply::Int(killed) = server.command(&["CLIENT", "KILL", "TYPE", "normal"]).unwrap() else {
        panic!("CLIENT KILL answers a count")
    };
    server.wait_until(Duration::from_secs(5), |server| Ok(client_ids(server).is_empty())).unwrap();
    killed
}

/// Connections the server has accepted so far (the asking one included).
fn accepted(server: &RedisServer) -> u64 {
    info_number(server, "stats", "total_connections_received")
}

/// `incr` once, kill its connections, `incr` again: the second succeeds on its
/// first try (retries are off), on exactly one new connection.
fn survives_a_kill_while_idle(server: &RedisServer, client: &Client, key: &str) {
    let counter = Counter::new(&client.with_retry(RetryPolicy::never()), key).unwrap();
    assert_eq!(counter.incr(1).unwrap(), 1);
    assert!(kill_all(server) > 0, "no connection to kill");
    let before = accepted(server);
    assert_eq!(counter.incr(1).unwrap(), 2, "the operation went out on a new connection, unretried");
    // Minus the connection that asked for `before`.
    assert_eq!(accepted(server) - before - 1, 1, "one new connection, for the closed one");
    assert_eq!(counter.get().unwrap(), 2);
}

#[test]
fn the_lazy_connection_killed_while_idle_is_replaced_before_the_write() {
    let server = server();
    survives_a_kill_while_idle(&server, &Client::open(&server.url()).unwrap(), "lazy");
}

#[test]
fn a_connection_killed_by_id_is_replaced_before_the_write() {
    let server = server();
    let client = Client::open(&server.url()).unwrap().with_retry(RetryPolicy::never());
    let counter = Counter::new(&client, "by-id").unwrap();
    for round in 1..=5 {
        assert_eq!(counter.incr(1).unwrap(), 2 * round - 1);
        let ids = client_ids(&server);
        assert_eq!(ids.len(), 1, "one lazy connection: {ids:?}");
        assert_eq!(server.command(&["CLIENT", "KILL", "ID", &ids[0]]).unwrap(), Reply::Int(1));
        server.wait_until(Duration::from_secs(5), |server| Ok(client_ids(server).is_empty())).unwrap();
        assert_eq!(counter.incr(1).unwrap(), 2 * round);
    }
}

#[test]
fn a_unix_socket_connection_killed_while_idle_is_replaced_before_the_write() {
    let dir = std::env::temp_dir().join(format!("redisext-closed-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let socket = dir.join("redis.sock");
    let server = RedisServer::start_with(&["--unixsocket", socket.to_str().unwrap()]).unwrap();
    let client = Client::open(&format!("unix://{}?db=2", socket.display())).unwrap();
    survives_a_kill_while_idle(&server, &client, "unix");
    let replies = server.commands(&[&["SELECT", "2"], &["DBSIZE"]]).unwrap();
    assert_eq!(replies[1], Reply::Int(1), "the counter is in database 2");
}

#[test]
fn per_command_connections_are_new_for_every_operation() {
    let server = server();
    let client = Client::builder().master(&server.url()).reuse(Reuse::PerCommand).build().unwrap();
    let counter = Counter::new(&client.with_retry(RetryPolicy::never()), "per-command").unwrap();
    assert_eq!(counter.incr(1).unwrap(), 1);
    assert_eq!(kill_all(&server), 0, "the connection was closed after the operation");
    assert_eq!(counter.incr(1).unwrap(), 2);
}

#[cfg(feature = "pool")]
#[test]
fn a_pooled_connection_killed_while_idle_is_replaced_before_the_write() {
    let server = server();
    let client = Client::builder().master(&server.url()).reuse(Reuse::Pooled { max_size: 4 }).build().unwrap();
    survives_a_kill_while_idle(&server, &client, "pooled");
    // Four connections in the pool, all killed: each is replaced as it is taken.
    let counter = Counter::new(&client.with_retry(RetryPolicy::never()), "pooled-4").unwrap();
    let incr_on_4 = || {
        thread::scope(|scope| {
            for _ in 0..4 {
                scope.spawn(|| {
                    for _ in 0..50 {
                        counter.incr(1).unwrap();
                    }
                });
            }
        })
    };
    incr_on_4();
    assert!(kill_all(&server) > 0, "no connection to kill");
    incr_on_4();
    assert_eq!(counter.get().unwrap(), 400);
}

#[test]
fn a_cluster_node_connection_killed_while_idle_is_replaced_before_the_write() {
    let cluster = RedisCluster::start(3).unwrap();
    let client = Client::builder().cluster(&cluster.url()).build().unwrap().with_retry(RetryPolicy::never());
    let keys = ["a", "b", "c", "d", "e", "f"];
    let counters: Vec<Counter> = keys.iter().map(|key| Counter::new(&client, key).unwrap()).collect();
    // Several idle connections per node: threads run at once.
    let incr_all = |expected: i64| {
        thread::scope(|scope| {
            for counter in &counters {
                scope.spawn(move || assert_eq!(counter.incr(1).unwrap(), expected));
            }
        })
    };
    incr_all(1);
    let killed: i64 = cluster.nodes().iter().map(kill_all).sum();
    assert!(killed >= 3, "each node had a connection: {killed} killed");
    incr_all(2);
    for counter in &counters {
        assert_eq!(counter.get().unwrap(), 2);
    }
}

#[test]
fn a_redis_crate_connection_killed_while_idle_cannot_be_seen_before_the_write() {
    let server = server();
    let mine = redis::Client::open(server.url().as_str()).unwrap();
    let client = Client::from_redis_client(mine).unwrap().with_retry(RetryPolicy::never());
    let counter = Counter::new(&client, "crate").unwrap();
    assert_eq!(counter.incr(1).unwrap(), 1);
    assert!(kill_all(&server) > 0, "no connection to kill");
    // The write goes into the closed socket; the failure shows when the reply is
    // awaited, too late to know whether the server read it.
    let error = counter.incr(1).unwrap_err();
    assert!(matches!(error, Error::Connection { delivery: Delivery::Unknown, .. }), "{error:?}");
    assert!(error.may_have_applied());
    assert_eq!(counter.incr(1).unwrap(), 2, "the next operation reconnects");
}

/// What `THREADS` threads of plain increments saw under `CLIENT KILL` every 10 ms.
struct UnderKills {
    acked: u64,
    unknown: u64,
    not_sent: u64,
    stored: u64,
    kills: u64,
}

const THREADS: usize = 16;
const INCREMENTS: usize = 500;

fn plain_incr_under_kills(server: &RedisServer, clients: &[Client], key: &str) -> UnderKills {
    let (acked, unknown, not_sent) = (AtomicU64::new(0), AtomicU64::new(0), AtomicU64::new(0));
    let killing = server.repeat(Duration::from_millis(10), &["CLIENT", "KILL", "TYPE", "normal"]);
    thread::scope(|scope| {
        for client in clients {
            let (acked, unknown, not_sent) = (&acked, &unknown, &not_sent);
            scope.spawn(move || {
                let counter = Counter::new(client, key).unwrap();
                for _ in 0..INCREMENTS {
                    match counter.incr(1) {
                        Ok(_) => acked.fetch_add(1, Ordering::SeqCst),
                        Err(error @ Error::Connection { .. }) if error.may_have_applied() => {
                            unknown.fetch_add(1, Ordering::SeqCst)
                        }
                        Err(Error::Connection { delivery: Delivery::NotSent, .. }) => {
                            not_sent.fetch_add(1, Ordering::SeqCst)
                        }
                        Err(other) => panic!("a plain increment failed otherwise than by its connection: {other:?}"),
                    };
                    // Idle a little, as real clients do: kills land between operations too.
                    thread::sleep(Duration::from_micros(200));
                }
            });
        }
    });
    let kills = killing.stop().unwrap().runs;
    let stored = Counter::new(&Client::open(&server.url()).unwrap(), key).unwrap().get().unwrap();
    UnderKills {
        acked: acked.into_inner(),
        unknown: unknown.into_inner(),
        not_sent: not_sent.into_inner(),
        stored: stored.unsigned_abs(),
        kills,
    }
}

#[test]
fn under_client_kills_what_was_not_sent_never_applied() {
    let server = server();
    let never = RetryPolicy::never();
    let own: Vec<Client> = (0..THREADS).map(|_| Client::open(&server.url()).unwrap().with_retry(never)).collect();
    let crates: Vec<Client> = (0..THREADS)
        .map(|_| {
            let mine = redis::Client::open(server.url().as_str()).unwrap();
            Client::from_redis_client(mine).unwrap().with_retry(never)
        })
        .collect();
    for (name, clients) in [("checked before each write", &own), ("redis crate connections", &crates)] {
        let seen = plain_incr_under_kills(&server, clients, name);
        let UnderKills { acked, unknown, not_sent, stored, kills } = seen;
        println!(
            "{name}: {kills} kills; {acked} acknowledged, {unknown} may have applied, {not_sent} not sent; {stored} \
             stored"
        );
        assert!(kills > 0, "no kill ran");
        assert_eq!(acked + unknown + not_sent, (THREADS * INCREMENTS) as u64, "every operation has one outcome");
        assert!(stored >= acked, "an acknowledged increment was lost: {stored} < {acked}");
        assert!(stored <= acked + unknown, "an increment reported not sent applied: {stored} > {acked} + {unknown}");
    }
}

#[test]
fn a_user_and_password_and_a_database_are_set_up_on_each_connection() {
    let server = RedisServer::start_with(&["--requirepass", "admin-pass"]).unwrap();
    server.command(&["ACL", "SETUSER", "app", "on", ">app-pass", "~*", "+@all"]).unwrap();
    let port = server.port();
    let client = Client::open(&format!("redis://app:app-pass@127.0.0.1:{port}/3")).unwrap();
    survives_a_kill_while_idle(&server, &client, "acl");
    let replies = server.commands(&[&["SELECT", "3"], &["DBSIZE"], &["SELECT", "0"], &["DBSIZE"]]).unwrap();
    assert_eq!((&replies[1], &replies[3]), (&Reply::Int(1), &Reply::Int(0)), "the counter is in database 3");

    for (dsn, what) in [
        (format!("redis://app:not-the-pass@127.0.0.1:{port}/3"), "a wrong password"),
        (format!("redis://nobody:app-pass@127.0.0.1:{port}/0"), "an unknown user"),
    ] {
        let client = Client::open(&dsn).unwrap().with_retry(RetryPolicy::never());
        let error = Counter::new(&client, "c").unwrap().incr(1).unwrap_err();
        let Error::Connection { delivery, .. } = &error else { panic!("{what}: {error:?}") };
        assert_eq!(*delivery, Delivery::NotSent, "{what}: refused before the command was sent");
        assert!(error.to_string().contains("authentication failed"), "{what}: {error}");
        for text in [error.to_string(), format!("{error:?}")] {
            assert!(!text.contains("not-the-pass") && !text.contains("app-pass"), "a password in {text}");
        }
    }

    let no_such_db = Client::open(&format!("redis://app:app-pass@127.0.0.1:{port}/99")).unwrap();
    let error = Counter::new(&no_such_db.with_retry(RetryPolicy::never()), "c").unwrap().incr(1).unwrap_err();
    assert!(matches!(error, Error::Connection { delivery: Delivery::NotSent, .. }), "{error:?}");
    assert!(error.to_string().contains("SELECT 99"), "{error}");
}

/// The async client: its plain TCP streams are this crate's own, watched, so a
/// shared multiplexed connection the server closed while idle is replaced before
/// a request goes into it. `flavor` as tokio's test attribute takes it.
#[cfg(feature = "tokio")]
mod async_client {
    use super::*;
    use redisext::AsyncClient;

    /// Lets the connections' driver tasks run, as a service's runtime does
    /// between operations: they read the end of the stream and flag it.
    async fn idle_a_moment() {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    async fn survives_kills_while_idle(server: &RedisServer, client: &AsyncClient, key: &str) {
        let counter = redisext::Counter::new(&client.with_retry(RetryPolicy::never()), key).unwrap();
        assert_eq!(counter.incr(1).await.unwrap(), 1);
        for round in 1..=5 {
            assert!(kill_all(server) > 0, "no connection to kill");
            idle_a_moment().await;
            let before = accepted(server);
            assert_eq!(counter.incr(1).await.unwrap(), round + 1, "went out on a new connection, unretried");
            assert_eq!(accepted(server) - before - 1, 1, "one new connection, for the closed one");
        }
    }

    #[tokio::test]
    async fn a_multiplexed_connection_killed_while_idle_is_replaced_before_the_request_current_thread() {
        let server = server();
        survives_kills_while_idle(&server, &AsyncClient::open(&server.url()).unwrap(), "current-thread").await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_multiplexed_connection_killed_while_idle_is_replaced_before_the_request_multi_thread() {
        let server = server();
        survives_kills_while_idle(&server, &AsyncClient::open(&server.url()).unwrap(), "multi-thread").await;
    }

    #[tokio::test]
    async fn a_cluster_nodes_multiplexed_connections_killed_while_idle_are_replaced() {
        let cluster = RedisCluster::start(3).unwrap();
        let client = AsyncClient::builder().cluster(&cluster.url()).build().unwrap().with_retry(RetryPolicy::never());
        let counters: Vec<redisext::Counter<_>> =
            ["a", "b", "c", "d", "e", "f"].iter().map(|key| redisext::Counter::new(&client, key).unwrap()).collect();
        for counter in &counters {
            assert_eq!(counter.incr(1).await.unwrap(), 1);
        }
        let killed: i64 = cluster.nodes().iter().map(kill_all).sum();
        assert!(killed >= 3, "each node had a connection: {killed} killed");
        idle_a_moment().await;
        for counter in &counters {
            assert_eq!(counter.incr(1).await.unwrap(), 2, "went out on a new connection, unretried");
        }
    }
}
