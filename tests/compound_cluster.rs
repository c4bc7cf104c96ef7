//! Every script of every compound model (and the fenced Lock) runs on a real Redis Cluster: a script
//! naming keys of two slots is refused there (`CROSSSLOT`), and one naming a key
//! another node serves is redirected (`MOVED`), so running each operation on the
//! node that serves the model's key proves all its sibling keys share that slot.

use std::time::Duration;

use redisext::serializer::Str;
use redisext::testing::{RedisCluster, RedisServer};
use redisext::{
    BoundedQueue, Client, Counter, Error, Lock, Overflow, Quota, RateLimiter, ReliableQueue, Reply, ResourcePool,
    Semaphore,
};

const LONG: Duration = Duration::from_secs(60);

/// The node of `cluster` serving `key`'s hash slot.
fn node_for<'c>(cluster: &'c RedisCluster, key: &str) -> &'c RedisServer {
    let Reply::Int(slot) = cluster.nodes()[0].command(&["CLUSTER", "KEYSLOT", key]).unwrap() else { panic!("KEYSLOT") };
    let nodes = cluster.nodes();
    let slots = i64::from(RedisCluster::SLOTS);
    let count = nodes.len() as i64;
    let index = (0..count).find(|i| slot >= slots * i / count && slot < slots * (i + 1) / count).unwrap();
    &nodes[index as usize]
}

fn client_for(cluster: &RedisCluster, key: &str) -> Client {
    Client::open(&node_for(cluster, key).url()).unwrap()
}

#[test]
fn every_compound_script_keeps_to_one_hash_slot() {
    let cluster = RedisCluster::start(3).expect("start a 3-node cluster");

    // The harness can tell: a rename into another slot is refused.
    let counter = Counter::new(&client_for(&cluster, "a"), "a").unwrap();
    counter.incr(1).unwrap();
    let error = counter.rename("b").unwrap_err();
    assert!(matches!(&error, Error::Server { code, .. } if code == "CROSSSLOT"), "{error:?}");

    for key in ["pool", "{tenant-9}:pool"] {
        let pool = ResourcePool::<Str>::new(&client_for(&cluster, key), key).unwrap();
        pool.add("m1").unwrap();
        pool.add("m2").unwrap();
        let lease = pool.checkout(LONG).unwrap().unwrap();
        pool.extend(&lease, LONG).unwrap().unwrap();
        pool.remove("m2").unwrap();
        pool.counts().unwrap();
        assert!(pool.checkin(&lease).unwrap());
        pool.checkout_wait(LONG, Duration::from_millis(20)).unwrap().unwrap();
        pool.clear().unwrap();
    }

    for key in ["bounded", "{tenant-9}:bounded"] {
        let queue = BoundedQueue::<Str>::new(&client_for(&cluster, key), key, 2, Overflow::EvictOldest).unwrap();
        queue.push_many(["1", "2"]).unwrap();
        assert_eq!(queue.push("3").unwrap().as_deref(), Some("1"));
        queue.size().unwrap();
        queue.stored_settings().unwrap().unwrap();
        queue.pop().unwrap().unwrap();
        queue.pop_wait(Duration::from_millis(20)).unwrap().unwrap();
        queue.clear().unwrap();
    }

    for key in ["jobs", "{tenant-9}:jobs"] {
        let jobs = ReliableQueue::<Str>::new(&client_for(&cluster, key), key).unwrap().with_max_deliveries(1).unwrap();
        jobs.push_many(["a", "b", "c"]).unwrap();
        let a = jobs.pop(LONG).unwrap().unwrap();
        jobs.extend(a.receipt(), LONG).unwrap().unwrap();
        assert!(jobs.ack(a.receipt()).unwrap());
        let b = jobs.pop_wait(LONG, Duration::from_millis(20)).unwrap().unwrap();
        jobs.nack(b.receipt()).unwrap();
        jobs.counts().unwrap();
        assert_eq!(jobs.pop_dead().unwrap().as_deref(), Some("b"));
        jobs.push_delayed("later", LONG).unwrap();
        assert!(jobs.expire(LONG).unwrap());
        assert!(matches!(jobs.ttl().unwrap(), redisext::Ttl::Expires(_)));
        assert!(jobs.persist().unwrap());
        jobs.clear().unwrap();
    }

    for key in ["permits", "{tenant-9}:permits"] {
        let semaphore = Semaphore::new(&client_for(&cluster, key), key, 1).unwrap();
        let permit = semaphore.acquire(LONG).unwrap().unwrap();
        semaphore.extend(&permit, LONG).unwrap().unwrap();
        semaphore.held().unwrap();
        assert!(semaphore.release(&permit).unwrap());
        semaphore.acquire_wait(LONG, Duration::from_millis(20)).unwrap().unwrap();
        semaphore.clear().unwrap();
    }

    for key in ["api", "{tenant-9}:api"] {
        let limiter = RateLimiter::new(&client_for(&cluster, key), key, Quota::per_second(5)).unwrap();
        assert!(limiter.acquire(1).unwrap().allowed);
        assert!(limiter.reset().unwrap());
    }

    for key in ["lock", "{tenant-9}:lock"] {
        let lock = Lock::new(&client_for(&cluster, key), key).unwrap();
        let token = lock.acquire(LONG).unwrap().unwrap();
        assert!(lock.locked().unwrap() && lock.extend(&token, LONG).unwrap());
        assert_eq!(lock.holds(&token).unwrap().map(|held| held.fence()), Some(token.fence()));
        assert!(lock.release(&token).unwrap());
        // A renewing guard renews on connections of its own, through the slot map:
        // the lock's time to live goes up again.
        let guard = lock.renewing_guard(Duration::from_secs(3), Duration::ZERO).unwrap().unwrap();
        let ttl = || match lock.ttl().unwrap() {
            redisext::Ttl::Expires(left) => left,
            other => panic!("{other:?}"),
        };
        // Down below 2.6 s as time passes, then up again: renewed (every second).
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        let threshold = Duration::from_millis(2600);
        for renewed in [false, true] {
            while (ttl() > threshold) != renewed {
                assert!(std::time::Instant::now() < deadline, "no renewal within 10 s");
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        assert!(!guard.lost() && guard.release().unwrap());
        assert!(lock.acquire(LONG).unwrap().unwrap().fence() > token.fence());
    }

    // Exactly-once state is a sibling too: same slot, with or without a hash tag.
    for key in ["visits", "{tenant-9}:visits"] {
        let options = redisext::ModelOptions::new().exactly_once(true);
        let counter = <redisext::Counter<_> as redisext::Model>::with_options(&client_for(&cluster, key), key, options);
        assert_eq!(counter.unwrap().incr(2).unwrap(), 2);
    }

    // Every script of these models ran: each was loaded (after NOSCRIPT) on some node.
    let models = ["resource_pool", "bounded_queue", "reliable_queue", "semaphore", "rate_limiter", "compound", "lock"];
    for script in redisext::script::all().filter(|script| models.contains(&script.model())) {
        let loaded = cluster.nodes().iter().any(|node| {
            node.command(&["SCRIPT", "EXISTS", script.sha1()]).unwrap() == Reply::Array(vec![Reply::Int(1)])
        });
        assert!(loaded, "script {} never ran on the cluster", script.name());
    }
}
