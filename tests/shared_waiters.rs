//! Many async waiters on one client share its waiter connection (one per server,
//! one per hash slot waited on in a cluster): a Lock taken in turn by 250 tasks,
//! 250 `pop_wait`s on one queue and on many, and waits in a cluster — every
//! waiter served, nothing delivered twice, and the connections counted.

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use redisext::serializer::Str;
use redisext::testing::{RedisCluster, RedisServer};
use redisext::{AsyncClient, BoundedQueue, Lock, Overflow, hash_slot};

/// The most connections `servers` had at once (sampled every 5 ms on connections
/// of the sampler's own, which are not counted) until `done` is set.
fn peak_connections(servers: &[&RedisServer], done: &AtomicBool) -> u64 {
    let mut peak = 0;
    while !done.load(Ordering::Relaxed) {
        let mut connected = 0;
        for server in servers {
            let count: u64 = server.info_field("clients", "connected_clients").unwrap().parse().unwrap();
            connected += count.saturating_sub(1);
        }
        peak = peak.max(connected);
        std::thread::sleep(Duration::from_millis(5));
    }
    peak
}

/// Runs `work` while sampling the server's connections; returns the peak.
async fn with_connections_counted<F: Future<Output = ()>>(server: &Arc<RedisServer>, work: F) -> u64 {
    let done = Arc::new(AtomicBool::new(false));
    let sampler = {
        let (server, done) = (Arc::clone(server), Arc::clone(&done));
        tokio::task::spawn_blocking(move || peak_connections(&[&server], &done))
    };
    work.await;
    done.store(true, Ordering::Relaxed);
    sampler.await.unwrap()
}

/// The client's multiplexed connection and its waiter connection, plus one the
/// server may not have reaped yet (the sampler's previous one).
const FEW: u64 = 3;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_fifty_tasks_take_one_lock_in_turn_on_a_few_connections() {
    let server = Arc::new(RedisServer::start().unwrap());
    let client = AsyncClient::open(&server.url()).unwrap();
    let lock = Lock::new(&client, "turns").unwrap();
    let held = Arc::new(AtomicBool::new(false));
    let peak = with_connections_counted(&server, async {
        let tasks: Vec<_> = (0..250)
            .map(|_| {
                let (lock, held) = (lock.clone(), Arc::clone(&held));
                tokio::spawn(async move {
                    let token = lock.acquire_wait(Duration::from_secs(60), Duration::from_secs(300)).await.unwrap();
                    let token = token.expect("every task takes the lock in its turn");
                    assert!(!held.swap(true, Ordering::SeqCst), "two holders at once");
                    tokio::task::yield_now().await;
                    held.store(false, Ordering::SeqCst);
                    assert!(lock.release(&token).await.unwrap());
                })
            })
            .collect();
        for task in tasks {
            task.await.unwrap();
        }
    })
    .await;
    assert!(peak <= FEW, "250 waiters held {peak} connections");
}

/// `waiters` tasks `pop_wait` on `queues` (round robin) while as many values are
/// pushed: every value is popped exactly once.
async fn every_value_popped_once(queues: usize, waiters: usize) {
    let server = Arc::new(RedisServer::start().unwrap());
    let client = AsyncClient::open(&server.url()).unwrap();
    let queues: Vec<BoundedQueue<Str, AsyncClient>> =
        (0..queues).map(|i| BoundedQueue::new(&client, format!("jobs{i}"), 1000, Overflow::Reject).unwrap()).collect();
    let peak = with_connections_counted(&server, async {
        let tasks: Vec<_> = (0..waiters)
            .map(|i| {
                let queue = queues[i % queues.len()].clone();
                tokio::spawn(async move { queue.pop_wait(Duration::from_secs(300)).await.unwrap() })
            })
            .collect();
        for i in 0..waiters {
            queues[i % queues.len()].push(&format!("v{i}")).await.unwrap();
        }
        let mut popped = HashSet::new();
        for task in tasks {
            let value = task.await.unwrap().expect("every waiter gets a value");
            assert!(popped.insert(value), "a value popped twice");
        }
        assert_eq!(popped.len(), waiters);
    })
    .await;
    for queue in &queues {
        assert_eq!(queue.size().await.unwrap(), 0);
    }
    assert!(peak <= FEW, "{waiters} waiters held {peak} connections");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_fifty_pop_waits_on_one_queue_share_one_waiter_connection() {
    every_value_popped_once(1, 250).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_fifty_pop_waits_on_fifty_queues_share_one_waiter_connection() {
    every_value_popped_once(50, 250).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropped_pop_waits_take_nothing_and_the_others_get_every_value() {
    let server = RedisServer::start().unwrap();
    let client = AsyncClient::open(&server.url()).unwrap();
    let queue = BoundedQueue::<Str, _>::new(&client, "dropped", 1000, Overflow::Reject).unwrap();
    let spawn = || {
        let queue = queue.clone();
        tokio::spawn(async move { queue.pop_wait(Duration::from_secs(300)).await.unwrap() })
    };
    let dropped: Vec<_> = (0..100).map(|_| spawn()).collect();
    let kept: Vec<_> = (0..100).map(|_| spawn()).collect();
    server.wait_until(Duration::from_secs(10), |s| Ok(s.info_field("clients", "blocked_clients")? == "1")).unwrap();
    for task in &dropped {
        task.abort();
    }
    for task in dropped {
        assert!(task.await.unwrap_err().is_cancelled());
    }
    for i in 0..100 {
        queue.push(&format!("v{i}")).await.unwrap();
    }
    let mut popped = HashSet::new();
    for task in kept {
        assert!(popped.insert(task.await.unwrap().expect("every remaining waiter gets a value")));
    }
    assert_eq!(popped.len(), 100);
    assert_eq!(queue.size().await.unwrap(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_a_cluster_waits_share_one_connection_per_slot_waited_on() {
    let cluster = RedisCluster::start(3).unwrap();
    let client = AsyncClient::builder().cluster(&cluster.url()).build().unwrap();
    // Six queues, each in a slot of its own, two on each node.
    let names: Vec<String> = (0..6).map(|i| format!("cq{i}")).collect();
    let slots: HashSet<u16> = names.iter().map(|name| hash_slot(name.as_bytes())).collect();
    assert_eq!(slots.len(), names.len());
    let queues: Vec<BoundedQueue<Str, AsyncClient>> =
        names.iter().map(|name| BoundedQueue::new(&client, name, 1000, Overflow::Reject).unwrap()).collect();
    let done = Arc::new(AtomicBool::new(false));
    let cluster = Arc::new(cluster);
    let sampler = {
        let (cluster, done) = (Arc::clone(&cluster), Arc::clone(&done));
        tokio::task::spawn_blocking(move || peak_connections(&cluster.nodes().iter().collect::<Vec<_>>(), &done))
    };
    let waiters = 120;
    let tasks: Vec<_> = (0..waiters)
        .map(|i| {
            let queue = queues[i % queues.len()].clone();
            tokio::spawn(async move { queue.pop_wait(Duration::from_secs(300)).await.unwrap() })
        })
        .collect();
    for i in 0..waiters {
        queues[i % queues.len()].push(&format!("v{i}")).await.unwrap();
    }
    let mut popped = HashSet::new();
    for task in tasks {
        assert!(popped.insert(task.await.unwrap().expect("every waiter gets a value")));
    }
    done.store(true, Ordering::Relaxed);
    let peak = sampler.await.unwrap();
    assert_eq!(popped.len(), waiters);
    // One waiter connection per slot waited on; per node the multiplexed
    // connection, one the topology was read on, and one not yet reaped.
    let bound = slots.len() as u64 + 3 * cluster.nodes().len() as u64;
    assert!(peak <= bound, "{waiters} waiters on {} slots held {peak} connections", slots.len());
}
