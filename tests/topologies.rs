//! The throwaway topologies of `redisext::testing` themselves: a 3 + 3 cluster, a
//! master failover, a half-done slot migration, Sentinel failovers, persistence,
//! a suspended server and clean-up. Run them against Valkey with
//! `REDIS_SERVER=/path/to/valkey-server`; `--nocapture` prints how long each step took.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use redisext::Reply;
use redisext::testing::{RedisCluster, RedisSentinels, RedisServer, ServerError};

/// Prints how long a step took (failover times help set client timeouts), with
/// the server it ran on.
fn report(step: &str, started: Instant, server: &RedisServer) {
    let info = server.info("server").unwrap_or_default();
    let field = |name: &str| {
        info.lines().find_map(|line| line.strip_prefix(name)?.strip_prefix(':')).unwrap_or("").trim().to_owned()
    };
    let version = match field("valkey_version") {
        version if version.is_empty() => format!("redis {}", field("redis_version")),
        version => format!("valkey {version}"),
    };
    eprintln!("[{version}] {step}: {:?}", started.elapsed());
}

fn bulk(text: &str) -> Reply {
    Reply::Bulk(text.as_bytes().to_vec())
}

/// The error reply's code and message, or a panic naming what came instead.
fn error_reply(result: Result<Reply, ServerError>) -> redisext::ServerError {
    match result {
        Err(ServerError::ErrorReply { error, .. }) => error,
        other => panic!("expected an error reply, got {other:?}"),
    }
}

fn role(server: &RedisServer) -> String {
    server.info_field("replication", "role").unwrap()
}

/// `key` read on a cluster replica (which redirects reads until `READONLY`).
fn read_on_replica(replica: &RedisServer, key: &str) -> Reply {
    replica.commands(&[&["READONLY"], &["GET", key]]).unwrap().pop().unwrap()
}

/// Keys that all hash to one slot, and that slot.
fn keys_in_one_slot(count: usize) -> (u16, Vec<String>) {
    let keys: Vec<String> = (0..count).map(|i| format!("{{moving}}:{i}")).collect();
    (redisext::hash_slot(keys[0].as_bytes()), keys)
}

#[test]
fn a_cluster_of_three_masters_and_three_replicas_comes_up() {
    let started = Instant::now();
    let cluster = RedisCluster::start_with_replicas(3, 1).unwrap();
    report("3 + 3 cluster up, replicas online", started, &cluster.nodes()[0]);

    assert_eq!(cluster.nodes().len(), 6);
    for node in cluster.nodes() {
        assert_eq!(node.info_field("cluster", "cluster_state").unwrap(), "ok");
        assert_eq!(node.info_field("cluster", "cluster_known_nodes").unwrap(), "6");
    }
    let mut replicas_seen = Vec::new();
    for (index, master) in cluster.nodes()[..3].iter().enumerate() {
        assert_eq!(role(master), "master");
        let first_slot = u16::try_from(usize::from(RedisCluster::SLOTS) * index / 3).unwrap();
        let shard = cluster.shard_of(first_slot).unwrap();
        assert_eq!(shard.master.port(), master.port());
        assert_eq!(shard.replicas.len(), 1, "replicas of {}", master.port());
        let replica = shard.replicas[0];
        assert_eq!(role(replica), "slave");
        assert_eq!(replica.info_field("replication", "master_port").unwrap(), master.port().to_string());
        assert_eq!(replica.info_field("replication", "master_link_status").unwrap(), "up");
        replicas_seen.push(replica.port());

        // A write on the master reaches its replica.
        let key = format!("{{{}}}:k", master.port());
        let owner = cluster.master_of(redisext::hash_slot(key.as_bytes())).unwrap();
        owner.command(&["SET", &key, "v"]).unwrap();
        let replica = cluster.shard_of(redisext::hash_slot(key.as_bytes())).unwrap().replicas[0];
        replica.wait_until(Duration::from_secs(10), |replica| Ok(read_on_replica(replica, &key) == bulk("v"))).unwrap();
    }
    replicas_seen.sort_unstable();
    let mut started_replicas: Vec<u16> = cluster.nodes()[3..].iter().map(RedisServer::port).collect();
    started_replicas.sort_unstable();
    assert_eq!(replicas_seen, started_replicas);
    assert_eq!(cluster.urls().len(), 6);
}

#[test]
fn killing_a_master_promotes_its_replica_and_the_old_master_rejoins_as_replica() {
    let mut cluster = RedisCluster::start_with_replicas(3, 1).unwrap();
    let slot = redisext::hash_slot(b"survivor");
    let shard = cluster.shard_of(slot).unwrap();
    let replica = shard.replicas[0].port();
    shard.master.command(&["SET", "survivor", "1"]).unwrap();
    shard.replicas[0]
        .wait_until(Duration::from_secs(10), |replica| Ok(read_on_replica(replica, "survivor") == bulk("1")))
        .unwrap();

    let killed_at = Instant::now();
    let old_master = cluster.kill_master_of(slot).unwrap();
    assert!(!cluster.node(old_master).unwrap().is_running());
    let new_master = cluster.wait_for_failover(slot).unwrap();
    report("master kill -> replica promoted, every node agrees", killed_at, new_master);

    assert_eq!(new_master.port(), replica);
    assert_eq!(role(new_master), "master");
    assert_eq!(new_master.command(&["GET", "survivor"]).unwrap(), bulk("1"));
    // Every running node sends the slot's keys to the new master.
    for node in cluster.nodes().iter().filter(|node| node.is_running() && node.port() != replica) {
        let redirect = error_reply(node.command(&["GET", "survivor"]));
        assert_eq!(redirect.code, "MOVED", "from {}", node.port());
        assert!(redirect.message.ends_with(&format!(":{replica}")), "{redirect} from {}", node.port());
    }

    let restarted_at = Instant::now();
    cluster.restart(old_master).unwrap();
    report("old master restarted -> replica of the new one, online", restarted_at, cluster.node(replica).unwrap());
    let old = cluster.node(old_master).unwrap();
    assert_eq!(role(old), "slave");
    assert_eq!(old.info_field("replication", "master_port").unwrap(), replica.to_string());
    let shard = cluster.shard_of(slot).unwrap();
    assert_eq!(shard.master.port(), replica);
    assert_eq!(shard.replicas.iter().map(|node| node.port()).collect::<Vec<_>>(), [old_master]);
    assert_eq!(read_on_replica(old, "survivor"), bulk("1"));
}

#[test]
fn a_half_migrated_slot_answers_ask_for_the_keys_already_moved() {
    let cluster = RedisCluster::start_with_replicas(3, 1).unwrap();
    let (slot, keys) = keys_in_one_slot(10);
    let source = cluster.master_of(slot).unwrap();
    for key in &keys {
        source.command(&["SET", key, key]).unwrap();
    }
    let target = cluster.nodes()[..3].iter().find(|node| node.port() != source.port()).unwrap();

    let migration = cluster.begin_migration(slot, target.port()).unwrap();
    assert_eq!(
        (migration.slot(), migration.source().port(), migration.target().port()),
        (slot, source.port(), target.port())
    );
    assert_eq!(migration.move_keys(4).unwrap(), 4);

    let mut moved = Vec::new();
    for key in &keys {
        match source.command(&["GET", key]) {
            Ok(value) => assert_eq!(value, bulk(key), "{key} still on the source"),
            Err(error) => {
                let redirect = error_reply(Err(error));
                assert_eq!(redirect.code, "ASK", "{key}");
                assert_eq!(redirect.message, format!("{slot} 127.0.0.1:{}", target.port()));
                moved.push(key.clone());
            }
        }
    }
    assert_eq!(moved.len(), 4, "exactly the moved batch redirects: {moved:?}");
    for key in &moved {
        // The target serves them only to a client that was sent there by ASK.
        assert_eq!(error_reply(target.command(&["GET", key])).code, "MOVED");
        assert_eq!(target.commands(&[&["ASKING"], &["GET", key]]).unwrap()[1], bulk(key));
    }
    // A new key of the slot goes to the target too.
    assert_eq!(error_reply(source.command(&["SET", "{moving}:new", "x"])).code, "ASK");
    // The slot still belongs to the source meanwhile.
    assert_eq!(cluster.master_of(slot).unwrap().port(), source.port());

    assert_eq!(migration.finish().unwrap(), 6);
    assert_eq!(cluster.master_of(slot).unwrap().port(), target.port());
    for key in &keys {
        assert_eq!(target.command(&["GET", key]).unwrap(), bulk(key));
        let redirect = error_reply(source.command(&["GET", key]));
        assert_eq!(
            (redirect.code.as_str(), redirect.message),
            ("MOVED", format!("{slot} 127.0.0.1:{}", target.port()))
        );
    }
    cluster.wait_until_settled().unwrap();

    // And back in one go.
    assert_eq!(cluster.migrate_slot(slot, source.port()).unwrap(), 10);
    assert_eq!(cluster.master_of(slot).unwrap().port(), source.port());
    assert_eq!(source.command(&["GET", &keys[9]]).unwrap(), bulk(&keys[9]));
}

#[test]
fn a_sentinel_failover_after_a_master_kill_is_seen_by_every_sentinel() {
    let started = Instant::now();
    let mut sentinels = RedisSentinels::start("mymaster", 2).unwrap();
    report("master + 2 replicas + 3 Sentinels up", started, &sentinels.nodes()[0]);
    let master = sentinels.master().unwrap();
    assert_eq!(master.port(), sentinels.nodes()[0].port());
    assert_eq!(sentinels.replicas().unwrap().len(), 2);
    assert_eq!(sentinels.sentinel_addresses().len(), 3);
    master.command(&["SET", "survivor", "1"]).unwrap();
    for replica in sentinels.replicas().unwrap() {
        replica.wait_for_key("survivor").unwrap();
    }

    let killed_at = Instant::now();
    let old_master = sentinels.kill_master().unwrap();
    let new_master = sentinels.wait_for_failover().unwrap();
    report("master kill -> replica promoted, every Sentinel agrees", killed_at, new_master);

    assert_ne!(new_master.port(), old_master);
    assert_eq!(role(new_master), "master");
    assert_eq!(new_master.command(&["GET", "survivor"]).unwrap(), bulk("1"));
    for sentinel in sentinels.sentinels() {
        let address = sentinel.command(&["SENTINEL", "GET-MASTER-ADDR-BY-NAME", "mymaster"]).unwrap();
        assert_eq!(address, Reply::Array(vec![bulk("127.0.0.1"), bulk(&new_master.port().to_string())]));
    }
    let settling = Instant::now();
    sentinels.wait_until_settled().unwrap();
    report("then the other replica follows it, every Sentinel sees all", settling, new_master);
    let remaining = sentinels.replicas().unwrap();
    let state = || describe_sentinels(&sentinels);
    assert_eq!(remaining.len(), 1, "{}", state());
    assert_eq!(
        remaining[0].info_field("replication", "master_port").unwrap(),
        new_master.port().to_string(),
        "{}",
        state()
    );
    assert_eq!(remaining[0].info_field("replication", "master_link_status").unwrap(), "up", "{}", state());
}

/// Each running node's replication state and each Sentinel's view, for a failure message.
fn describe_sentinels(sentinels: &RedisSentinels) -> String {
    let mut text = String::new();
    for node in sentinels.nodes().iter().filter(|node| node.is_running()) {
        text += &format!("node {}: {:?}\n", node.port(), node.info("replication"));
    }
    for sentinel in sentinels.sentinels() {
        for what in ["MASTER", "REPLICAS", "SENTINELS"] {
            let view = sentinel.command(&["SENTINEL", what, sentinels.master_name()]);
            text += &format!("Sentinel {} {what}: {view:?}\n", sentinel.port());
        }
        let log = std::fs::read_to_string(sentinel.dir().join("redis.log")).unwrap_or_default();
        let events: Vec<&str> = log.lines().filter(|line| line.contains(" # ") || line.contains(" * +")).collect();
        text += &format!("Sentinel {} log:\n{}\n", sentinel.port(), events.join("\n"));
    }
    text
}

#[test]
fn a_planned_sentinel_failover_makes_the_old_master_a_replica() {
    let mut sentinels = RedisSentinels::start("planned", 1).unwrap();
    let old_master = sentinels.master().unwrap().port();
    let asked_at = Instant::now();
    sentinels.failover().unwrap();
    let new_master = sentinels.wait_for_failover().unwrap();
    report("SENTINEL FAILOVER -> switch seen by every Sentinel", asked_at, new_master);

    assert_eq!(new_master.port(), sentinels.nodes()[1].port());
    assert_eq!(sentinels.master().unwrap().port(), new_master.port());

    let settling = Instant::now();
    sentinels.wait_until_settled().unwrap();
    report("then a Sentinel makes the old master a replica, every Sentinel sees all", settling, &sentinels.nodes()[1]);
    let old = &sentinels.nodes()[0];
    assert_eq!(old.port(), old_master);
    assert_eq!(role(old), "slave");
    assert_eq!(old.info_field("replication", "master_port").unwrap(), sentinels.nodes()[1].port().to_string());

    // Settled, a switch back works.
    sentinels.failover().unwrap();
    let back = sentinels.wait_for_failover().unwrap();
    assert_eq!(back.port(), old_master);
    assert_eq!(role(back), "master");
}

#[test]
fn a_persistent_server_keeps_acknowledged_writes_through_a_crash() {
    let mut server = RedisServer::start_persistent().unwrap();
    for _ in 0..100 {
        server.command(&["INCR", "acknowledged"]).unwrap();
    }
    server.kill();
    assert!(!server.is_running());
    assert!(server.command(&["PING"]).is_err());
    server.restart().unwrap();
    assert_eq!(server.command(&["GET", "acknowledged"]).unwrap(), bulk("100"));
    assert_eq!(server.info_field("persistence", "aof_enabled").unwrap(), "1");

    // Without persistence a restart starts empty.
    let mut volatile = RedisServer::start().unwrap();
    volatile.command(&["SET", "k", "v"]).unwrap();
    volatile.restart().unwrap();
    assert_eq!(volatile.command(&["GET", "k"]).unwrap(), Reply::Nil);
}

#[test]
fn a_suspended_server_answers_nothing_until_it_resumes() {
    let server = RedisServer::start().unwrap();
    server.suspend().unwrap();
    // The kernel still accepts the connection; the stopped process cannot answer.
    let mut stream = TcpStream::connect(("127.0.0.1", server.port())).unwrap();
    stream.write_all(b"PING\r\n").unwrap();
    stream.set_read_timeout(Some(Duration::from_millis(200))).unwrap();
    let mut answer = [0u8; 7];
    let error = stream.read(&mut answer).unwrap_err();
    assert!(matches!(error.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut), "{error}");

    server.resume().unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    stream.read_exact(&mut answer).unwrap();
    assert_eq!(&answer, b"+PONG\r\n");
}

#[test]
fn a_server_that_cannot_start_reports_its_own_words() {
    let error = RedisServer::start_with(&["--no-such-option", "1"]).unwrap_err();
    assert!(matches!(error, ServerError::DidNotStart { .. }), "{error:?}");
    assert!(error.to_string().contains("no-such-option"), "{error}");
}

#[test]
fn dropping_a_topology_stops_its_processes_and_removes_its_directories() {
    let cluster = RedisCluster::start_with_replicas(3, 1).unwrap();
    let sentinels = RedisSentinels::start("dropped", 1).unwrap();
    let mut processes: Vec<(u16, std::path::PathBuf)> =
        cluster.nodes().iter().map(|node| (node.port(), node.dir().to_owned())).collect();
    processes
        .extend(sentinels.nodes().iter().chain(sentinels.sentinels()).map(|node| (node.port(), node.dir().to_owned())));
    assert_eq!(processes.len(), 6 + 2 + 3);
    assert!(processes.iter().all(|(port, dir)| *port != 6379 && dir.is_dir()));
    drop(cluster);
    drop(sentinels);
    for (port, dir) in processes {
        assert!(TcpStream::connect(("127.0.0.1", port)).is_err(), "port {port} still answers");
        assert!(!dir.exists(), "{} is left behind", dir.display());
    }
}
