//! Where operations go (master, replica), how connections are reused, and what
//! happens when the server loses its scripts or restarts.

mod common;

use std::time::Duration;

use common::{client, info_number, server};
use redisext::serializer::Str;
use redisext::testing::RedisServer;
use redisext::{Client, Counter, Error, Map, ModelClass, ModelOptions, Reuse};

#[test]
fn script_flush_between_calls_is_harmless() {
    let server = server();
    let client = client(&server);
    let counter = Counter::new(&client, "c").unwrap();
    for round in 1..=20 {
        server.command(&["SCRIPT", "FLUSH"]).unwrap();
        assert_eq!(counter.incr(1).unwrap(), round);
        assert_eq!(counter.get().unwrap(), round);
    }
    // Each round met NOSCRIPT once per script and loaded it: 2 loads a round.
    assert_eq!(server.command_calls("script|load").unwrap(), 40);
    assert_eq!(counter.get().unwrap(), 20, "every increment applied exactly once");
}

#[test]
fn scripts_are_loaded_once_then_reused() {
    let server = server();
    let counter = Counter::new(&client(&server), "c").unwrap();
    for _ in 0..50 {
        counter.incr(1).unwrap();
    }
    assert_eq!(server.command_calls("script|load").unwrap(), 1);
    assert_eq!(server.command_calls("evalsha").unwrap(), 51, "50 calls plus the retry after NOSCRIPT");
}

#[test]
fn reads_go_to_the_replica_writes_to_the_master() {
    let master = server();
    let replica = RedisServer::start_replica_of(&master).unwrap();
    let client = Client::builder().master(&master.url()).replica(&replica.url()).build().unwrap();
    let map = Map::<Str>::new(&client, "routed").unwrap();
    map.set("v").unwrap();
    replica.wait_for_key("routed").unwrap();

    // The replica never had the scripts: its first EVALSHA_RO meets NOSCRIPT, the
    // client loads the script there, and the read succeeds.
    assert_eq!(replica.command_calls("script|load").unwrap(), 0);
    assert_eq!(map.get().unwrap().as_deref(), Some("v"));
    assert!(map.exists().unwrap());
    assert_eq!(replica.command_calls("script|load").unwrap(), 2);
    assert_eq!(replica.command_calls("evalsha_ro").unwrap(), 4, "two reads, each retried once after loading");
    assert_eq!(replica.command_calls("evalsha").unwrap(), 0, "no write reached the replica");
    assert_eq!(master.command_calls("evalsha_ro").unwrap(), 0, "no read reached the master");
    assert_eq!(master.command_calls("evalsha").unwrap(), 2, "the write, and its retry after NOSCRIPT");
}

#[test]
fn read_from_master_gives_read_your_writes() {
    let master = server();
    let replica = RedisServer::start_replica_of(&master).unwrap();
    let client = Client::builder().master(&master.url()).replica(&replica.url()).build().unwrap();
    let options = ModelOptions::new().read_from_master(true);
    let counter = ModelClass::<Counter>::new(&client).options(options).at("c").unwrap();
    for expected in 1..=10 {
        counter.incr(1).unwrap();
        assert_eq!(counter.get().unwrap(), expected, "no replication lag on the master");
    }
    assert_eq!(replica.command_calls("evalsha_ro").unwrap(), 0);
    assert!(master.command_calls("evalsha_ro").unwrap() >= 10);
}

#[test]
fn a_replica_that_loses_its_scripts_still_serves_reads() {
    let master = server();
    let replica = RedisServer::start_replica_of(&master).unwrap();
    let client = Client::builder().master(&master.url()).replica(&replica.url()).build().unwrap();
    let counter = Counter::new(&client, "c").unwrap();
    counter.incr(5).unwrap();
    replica.wait_for_key("c").unwrap();
    for _ in 0..5 {
        replica.command(&["SCRIPT", "FLUSH"]).unwrap();
        assert_eq!(counter.get().unwrap(), 5);
    }
}

#[test]
fn per_command_mode_opens_and_closes_a_connection_per_operation() {
    let server = server();
    let client = Client::builder().master(&server.url()).reuse(Reuse::PerCommand).build().unwrap();
    let counter = Counter::new(&client, "c").unwrap();
    counter.incr(1).unwrap(); // loads the script
    let before = info_number(&server, "stats", "total_connections_received");
    for _ in 0..10 {
        counter.incr(1).unwrap();
    }
    let after = info_number(&server, "stats", "total_connections_received");
    // `info_number` itself opens one connection per call.
    assert_eq!(after - before, 11, "ten operations, ten connections (plus the INFO)");
    // Closed after use: only the INFO connection is open now.
    server.wait_until(Duration::from_secs(5), |s| Ok(info_number(s, "clients", "connected_clients") == 1)).unwrap();
}

#[test]
fn lazy_mode_reuses_one_connection_and_closes_it_on_drop() {
    let server = server();
    let client = client(&server);
    let counter = Counter::new(&client, "c").unwrap();
    let before = info_number(&server, "stats", "total_connections_received");
    for _ in 0..10 {
        counter.incr(1).unwrap();
    }
    let after = info_number(&server, "stats", "total_connections_received");
    assert_eq!(after - before, 2, "one lazy connection, plus the INFO");
    assert_eq!(info_number(&server, "clients", "connected_clients"), 2, "the lazy connection stays open");
    drop(counter);
    drop(client);
    server.wait_until(Duration::from_secs(5), |s| Ok(info_number(s, "clients", "connected_clients") == 1)).unwrap();
}

#[cfg(feature = "pool")]
#[test]
fn pooled_mode_bounds_connections_under_load() {
    let server = server();
    let client = Client::builder().master(&server.url()).reuse(Reuse::Pooled { max_size: 4 }).build().unwrap();
    let counter = Counter::new(&client, "c").unwrap();
    let before = info_number(&server, "stats", "total_connections_received");
    std::thread::scope(|scope| {
        for _ in 0..8 {
            scope.spawn(|| {
                for _ in 0..200 {
                    counter.incr(1).unwrap();
                }
            });
        }
    });
    assert_eq!(counter.get().unwrap(), 1600);
    // Minus the INFO connection.
    let opened = info_number(&server, "stats", "total_connections_received") - before - 1;
    assert!(opened <= 4, "a pool of 4 opened {opened} connections");
}

#[test]
fn a_server_restart_leaves_no_stale_connection_to_write_on() {
    let mut server = server();
    // No retry: what keeps the write whole is the check before it.
    let client = client(&server).with_retry(redisext::RetryPolicy::never());
    let counter = Counter::new(&client, "c").unwrap();
    assert_eq!(counter.incr(1).unwrap(), 1);
    server.restart().unwrap();

    // The lazy connection is dead: it is seen closed before the write, which goes
    // out on a new connection to the new server (empty: persistence is off). It
    // finds no scripts there, loads them, and runs.
    assert_eq!(counter.incr(1).unwrap(), 1);
    assert_eq!(counter.get().unwrap(), 1);
}

#[test]
fn a_server_restart_is_a_typed_error_then_work_resumes() {
    let mut server = server();
    // The redis crate's connections cannot be looked at before a write.
    let mine = redis::Client::open(server.url().as_str()).unwrap();
    let client = Client::from_redis_client(mine).unwrap();
    let counter = Counter::new(&client, "c").unwrap();
    assert_eq!(counter.incr(1).unwrap(), 1);
    server.restart().unwrap();

    // The lazy connection is dead. A write on it is a connection error and is not
    // resent (the error's `delivery` says whether it may have reached a server:
    // `Unknown` when the write went out and no reply came, `NotSent` when the dead
    // socket refused the write itself).
    let error = counter.incr(1).unwrap_err();
    assert!(matches!(error, Error::Connection { .. }), "{error:?}");
    // The next operation reconnects, finds no scripts on the new server, loads
    // them, and runs. It counts from 1: the failed increment never ran on the new
    // server (and data was lost with the old one: persistence is off).
    assert_eq!(counter.incr(1).unwrap(), 1);
    assert_eq!(counter.get().unwrap(), 1);
}

#[test]
fn reads_survive_a_restart_transparently() {
    let mut server = server();
    let client = client(&server);
    let map = Map::<Str>::new(&client, "m").unwrap();
    map.set("before").unwrap();
    server.restart().unwrap();
    // A read on the stale connection is retried once on a fresh one: safe, as a
    // read cannot apply twice.
    assert_eq!(map.get().unwrap(), None, "the restarted server is empty");
}

#[test]
fn unix_socket_dsns_connect_and_select_the_db() {
    let dir = std::env::temp_dir().join(format!("redisext-sock-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let socket = dir.join("redis.sock");
    let server = RedisServer::start_with(&["--unixsocket", socket.to_str().unwrap()]).unwrap();
    let client = Client::open(&format!("unix://{}?db=3", socket.display())).unwrap();
    let counter = Counter::new(&client, "over-the-socket").unwrap();
    assert_eq!(counter.incr(2).unwrap(), 2);
    // The key is absent from db 0 (where `command` connects) and counted in db 3.
    assert_eq!(server.command(&["EXISTS", "over-the-socket"]).unwrap(), redisext::Reply::Int(0));
    assert!(server.info("keyspace").unwrap().contains("db3:keys=1"), "the key lives in db 3");
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
}

#[cfg(feature = "pool")]
#[test]
fn after_a_restart_a_pool_fails_at_most_one_write_and_no_read() {
    let mut server = server();
    let client = Client::builder().master(&server.url()).reuse(Reuse::Pooled { max_size: 4 }).build().unwrap();
    let map = Map::<Str>::new(&client, "m").unwrap();
    let fill_the_pool = || {
        std::thread::scope(|scope| {
            for _ in 0..4 {
                scope.spawn(|| {
                    for _ in 0..50 {
                        map.set("v").unwrap();
                    }
                });
            }
        })
    };
    fill_the_pool();
    server.restart().unwrap();
    // Reads are retried on a new connection: none fails.
    for _ in 0..4 {
        assert_eq!(map.get().unwrap(), None, "the restarted server is empty");
    }

    fill_the_pool();
    server.restart().unwrap();
    // Writes are never resent, but the first failure retires every connection
    // opened before it, so at most one write fails (not one per pooled connection).
    let failures = (0..8).filter(|_| map.set("w").is_err()).count();
    assert!(failures <= 1, "{failures} writes failed after the restart");
    assert_eq!(map.get().unwrap().as_deref(), Some("w"));
}
