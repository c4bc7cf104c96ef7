//! The client on a real Redis Cluster: routing by hash slot, scripts loaded per
//! node, MOVED and ASK followed while a slot migrates, pipelines across nodes,
//! and every model (compound ones included) through one cluster client.

use std::time::Duration;

use redisext::serializer::Str;
use redisext::testing::{RedisCluster, RedisServer};
use redisext::{
    BoundedQueue, Client, Counter, Error, Lock, Map, Overflow, Pool, PriorityQueue, Quota, RateLimiter, ReliableQueue,
    Reply, ResourcePool, Semaphore, SortedSet, hash_slot,
};

fn cluster_client(cluster: &RedisCluster) -> Client {
    Client::builder().cluster(&cluster.url()).build().unwrap()
}

/// The node the harness gave `key`'s slot to (slots are split evenly, in order).
fn owner<'c>(cluster: &'c RedisCluster, key: &str) -> &'c RedisServer {
    let nodes = cluster.nodes();
    let slot = usize::from(hash_slot(key.as_bytes()));
    &nodes[slot * nodes.len() / usize::from(RedisCluster::SLOTS)]
}

fn node_id(node: &RedisServer) -> String {
    match node.command(&["CLUSTER", "MYID"]).unwrap() {
        Reply::Bulk(id) => String::from_utf8(id).unwrap(),
        other => panic!("CLUSTER MYID answered {other:?}"),
    }
}

/// Three keys in slots served by three different nodes.
fn keys_on_every_node(cluster: &RedisCluster) -> Vec<String> {
    let mut keys = Vec::new();
    for node in cluster.nodes() {
        let key = (0..).map(|i| format!("k{i}")).find(|key| std::ptr::eq(owner(cluster, key), node)).unwrap();
        keys.push(key);
    }
    keys
}

#[test]
fn hash_slots_match_the_server() {
    let cluster = RedisCluster::start(1).unwrap();
    let node = &cluster.nodes()[0];
    for key in ["", "a", "foo", "{user1000}.following", "{}x", "a{b}c", "ключ", "\u{1F600}", "{{x}}"] {
        let Reply::Int(slot) = node.command(&["CLUSTER", "KEYSLOT", key]).unwrap() else { panic!() };
        assert_eq!(i64::from(hash_slot(key.as_bytes())), slot, "{key:?}");
    }
}

#[test]
fn operations_go_to_the_node_serving_their_slot_and_load_scripts_there() {
    let cluster = RedisCluster::start(3).unwrap();
    let client = cluster_client(&cluster);
    let keys = keys_on_every_node(&cluster);
    for (round, key) in keys.iter().enumerate() {
        let counter = Counter::new(&client, key).unwrap();
        assert_eq!(counter.incr(round as i64 + 1).unwrap(), round as i64 + 1);
        assert_eq!(counter.get().unwrap(), round as i64 + 1);
    }
    for (round, key) in keys.iter().enumerate() {
        let node = owner(&cluster, key);
        // The value lives on the owner, which ran the scripts (each loaded there
        // after its NOSCRIPT): nothing was sent to the other nodes.
        assert_eq!(node.command(&["GET", key]).unwrap(), Reply::Bulk((round + 1).to_string().into_bytes()));
        assert_eq!(node.command_calls("script|load").unwrap(), 2, "counter/incr and counter/get on {key}");
        assert_eq!(node.command_calls("evalsha").unwrap(), 2, "one incr and its retry after NOSCRIPT");
    }
    // Flushed scripts are loaded again on the node that lost them.
    for node in cluster.nodes() {
        node.command(&["SCRIPT", "FLUSH"]).unwrap();
    }
    assert_eq!(Counter::new(&client, &keys[1]).unwrap().incr(10).unwrap(), 12);
}

#[test]
fn seed_models_work_through_one_cluster_client() {
    let cluster = RedisCluster::start(3).unwrap();
    let client = cluster_client(&cluster);
    let map = Map::<Str>::new(&client, "map").unwrap();
    map.set("v").unwrap();
    assert_eq!(map.get().unwrap().as_deref(), Some("v"));
    let pool = Pool::<Str>::new(&client, "pool").unwrap();
    assert!(pool.push("m").unwrap());
    assert!(pool.contains("m").unwrap());
    let set = SortedSet::<Str>::new(&client, "zset").unwrap();
    set.add("a", 1.0).unwrap();
    assert_eq!(set.members().unwrap(), vec!["a".to_owned()]);
    let queue = PriorityQueue::<Str>::new(&client, "pq").unwrap();
    queue.push("low", 5).unwrap();
    queue.push("high", 1).unwrap();
    assert_eq!(queue.pop().unwrap().as_deref(), Some("high"));
    // A rename to a key of another slot is refused by the cluster, not half done.
    let error = map.rename("elsewhere").unwrap_err();
    assert!(matches!(&error, Error::Server { code, .. } if code == "CROSSSLOT"), "{error:?}");
    assert_eq!(map.get().unwrap().as_deref(), Some("v"));
}

#[test]
fn compound_models_and_their_waits_work_through_one_cluster_client() {
    let cluster = RedisCluster::start(3).unwrap();
    let client = cluster_client(&cluster);
    let long = Duration::from_secs(60);

    let pool = ResourcePool::<Str>::new(&client, "licences").unwrap();
    pool.add("l1").unwrap();
    let lease = pool.checkout(long).unwrap().unwrap();
    assert!(pool.checkout(long).unwrap().is_none());
    assert!(pool.checkin(&lease).unwrap());

    let queue = BoundedQueue::<Str>::new(&client, "jobs", 2, Overflow::Reject).unwrap();
    queue.push("a").unwrap();
    assert_eq!(queue.pop().unwrap().as_deref(), Some("a"));
    // A blocking pop waits on its signal key (same slot) on a dedicated
    // connection while another thread pushes through the shared client.
    std::thread::scope(|scope| {
        let waiter = scope.spawn(|| queue.pop_wait(Duration::from_secs(20)).unwrap());
        std::thread::sleep(Duration::from_millis(50));
        queue.push("b").unwrap();
        assert_eq!(waiter.join().unwrap().as_deref(), Some("b"));
    });

    let reliable = ReliableQueue::<Str>::new(&client, "tasks").unwrap();
    reliable.push("t").unwrap();
    let delivered = reliable.pop(long).unwrap().unwrap();
    assert!(reliable.ack(delivered.receipt()).unwrap());

    let semaphore = Semaphore::new(&client, "sem", 1).unwrap();
    let permit = semaphore.acquire(long).unwrap().unwrap();
    assert!(semaphore.acquire(long).unwrap().is_none());
    assert!(semaphore.release(&permit).unwrap());

    let limiter = RateLimiter::new(&client, "api", Quota::new(1, Duration::from_secs(60))).unwrap();
    assert!(limiter.acquire(1).unwrap().allowed);
    assert!(!limiter.acquire(1).unwrap().allowed);

    let lock = Lock::new(&client, "lock").unwrap();
    let first = lock.acquire(long).unwrap().unwrap();
    assert!(lock.release(&first).unwrap());
    let second = lock.acquire(long).unwrap().unwrap();
    assert!(second.fence() > first.fence());
}

#[test]
fn pipelines_span_nodes_with_one_round_trip_per_node() {
    let cluster = RedisCluster::start(3).unwrap();
    let client = cluster_client(&cluster);
    let keys = keys_on_every_node(&cluster);
    let counters: Vec<Counter> = keys.iter().map(|key| Counter::new(&client, key).unwrap()).collect();
    for round in 1..=3 {
        let pipe = client.pipeline();
        let slots: Vec<_> = counters.iter().map(|counter| counter.on(&pipe).incr(round)).collect();
        pipe.run().unwrap();
        let values: Vec<i64> = slots.into_iter().map(|slot| slot.take().unwrap()).collect();
        let expected = (1..=round).sum::<i64>();
        assert_eq!(values, vec![expected; 3]);
    }
    for (key, node) in keys.iter().zip(cluster.nodes()) {
        assert_eq!(node.command(&["GET", key]).unwrap(), Reply::Bulk(b"6".to_vec()));
    }
    // A transaction must stay on one node: keys of one hash tag can share one.
    let a = Counter::new(&client, "{tx}:a").unwrap();
    let b = Counter::new(&client, "{tx}:b").unwrap();
    let pipe = client.pipeline();
    let (x, y) = (a.on(&pipe).incr(5), b.on(&pipe).incr(-5));
    pipe.run_atomic().unwrap();
    assert_eq!((x.take().unwrap(), y.take().unwrap()), (5, -5));
}

#[test]
fn moved_and_ask_are_followed_while_a_slot_migrates() {
    let cluster = RedisCluster::start(3).unwrap();
    let client = cluster_client(&cluster);
    let key = "migrating";
    let counter = Counter::new(&client, key).unwrap();
    assert_eq!(counter.incr(1).unwrap(), 1); // the client now knows the slot map
    let source = owner(&cluster, key);
    let target = cluster.nodes().iter().find(|node| !std::ptr::eq(*node, source)).unwrap();
    let slot = hash_slot(key.as_bytes()).to_string();
    let (source_id, target_id) = (node_id(source), node_id(target));

    // Migration starts: the slot is importing on the target, migrating on the source.
    target.command(&["CLUSTER", "SETSLOT", &slot, "IMPORTING", &source_id]).unwrap();
    source.command(&["CLUSTER", "SETSLOT", &slot, "MIGRATING", &target_id]).unwrap();
    // A key still on the source is served there.
    assert_eq!(counter.incr(1).unwrap(), 2);
    // A new key of the same slot is not on the source: it answers ASK, and the
    // client asks the target (ASKING) without changing its slot map.
    let fresh = Map::<Str>::new(&client, "{migrating}:new").unwrap();
    fresh.set("made during the migration").unwrap();
    // The target holds the new key, the source still holds the old one.
    let keys_in_slot = |node: &RedisServer| node.command(&["CLUSTER", "COUNTKEYSINSLOT", &slot]).unwrap();
    assert_eq!((keys_in_slot(target), keys_in_slot(source)), (Reply::Int(1), Reply::Int(1)));
    assert!(target.command_calls("asking").unwrap() >= 1, "the client sent ASKING to the target");

    // Move the old key and hand the slot over: the client's map is now stale, the
    // source answers MOVED, and the client follows and updates its map.
    let port = target.port().to_string();
    source.command(&["MIGRATE", "127.0.0.1", &port, "", "0", "5000", "KEYS", key]).unwrap();
    // The order Redis documents: the new owner first (it bumps its config epoch),
    // then the old one, then the rest, so no node points back at the source.
    let others = cluster.nodes().iter().filter(|node| !std::ptr::eq(*node, source) && !std::ptr::eq(*node, target));
    for node in [target, source].into_iter().chain(others) {
        node.command(&["CLUSTER", "SETSLOT", &slot, "NODE", &target_id]).unwrap();
    }
    let moved_replies = || source.info_field("errorstats", "errorstat_MOVED").unwrap();
    assert_eq!(moved_replies(), "", "no MOVED yet");
    assert_eq!(counter.incr(1).unwrap(), 3, "the increment ran once, on the target");
    assert_eq!(target.command(&["GET", key]).unwrap(), Reply::Bulk(b"3".to_vec()));
    assert_eq!(moved_replies(), "count=1", "the source redirected the client once");
    // The client updated its slot map: the next operations go straight to the target.
    assert_eq!(counter.get().unwrap(), 3);
    assert_eq!(fresh.get().unwrap().as_deref(), Some("made during the migration"));
    assert_eq!(moved_replies(), "count=1", "no further redirection");
}

#[test]
fn a_cluster_client_refuses_a_master_too_and_database_numbers() {
    let error = Client::builder().cluster("redis://127.0.0.1:7000").master("redis://h").build().unwrap_err();
    assert!(matches!(error, Error::Config(_)), "{error:?}");
    let error = Client::builder().cluster("redis://127.0.0.1:7000/3").build().unwrap_err();
    assert!(matches!(error, Error::Config(_)), "{error:?}");
    let error = Client::builder().cluster("nope").build().unwrap_err();
    assert!(matches!(error, Error::Dsn(_)), "{error:?}");
    // An unreachable cluster is a connection error that sent nothing.
    let client = Client::builder().cluster("redis://127.0.0.1:1").build().unwrap();
    let error = Counter::new(&client, "c").unwrap().incr(1).unwrap_err();
    assert!(matches!(error, Error::Connection { .. }) && !error.may_have_applied(), "{error:?}");
}

/// A batch over many keys on every node, blocking and async: each batch is
/// sent to every node before any reply is read, and every slot still gets its
/// own call's reply, in the order the calls were queued.
#[test]
fn pipelines_over_many_nodes_answer_each_call_in_order_blocking_and_async() {
    let cluster = RedisCluster::start(3).unwrap();
    let client = cluster_client(&cluster);
    let keys: Vec<String> = (0..48).map(|n| format!("spread:{n}")).collect();
    let nodes_used: std::collections::HashSet<u16> = keys.iter().map(|key| owner(&cluster, key).port()).collect();
    assert_eq!(nodes_used.len(), 3, "the keys span every node");
    let counters: Vec<Counter> = keys.iter().map(|key| Counter::new(&client, key).unwrap()).collect();
    let pipe = client.pipeline();
    let slots: Vec<_> = counters.iter().zip(1..).map(|(counter, n)| counter.on(&pipe).incr(n)).collect();
    pipe.run().unwrap();
    let values: Vec<i64> = slots.into_iter().map(|slot| slot.take().unwrap()).collect();
    assert_eq!(values, (1..=48).collect::<Vec<i64>>());

    #[cfg(feature = "tokio")]
    {
        let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
        let async_client = redisext::AsyncClient::builder().cluster(&cluster.url()).build().unwrap();
        let values: Vec<i64> = runtime.block_on(async {
            let pipe = async_client.pipeline();
            let slots: Vec<_> = counters.iter().zip(1..).map(|(counter, n)| counter.on(&pipe).incr(n * 100)).collect();
            pipe.run().await.unwrap();
            slots.into_iter().map(|slot| slot.take().unwrap()).collect()
        });
        assert_eq!(values, (1..=48).map(|n| n * 101).collect::<Vec<i64>>());
    }
    for (key, n) in keys.iter().zip(1..) {
        let expected = if cfg!(feature = "tokio") { n * 101 } else { n };
        assert_eq!(
            owner(&cluster, key).command(&["GET", key]).unwrap(),
            Reply::Bulk(expected.to_string().into_bytes())
        );
    }
}
