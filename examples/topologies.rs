//! Throughput through a Redis Cluster of 3 masters against one server, on this
//! machine, in one run: async tasks (64, single operations) and blocking
//! pipelines (depth 64), in interleaved rounds. Prints ops/s and the ratios
//! (per cluster node against the single server: the nodes share this machine's
//! cores with each other and with the client).
//!
//! `cargo run --release --features testing,tokio --example topologies`
//! (`TOPOLOGY_SECONDS=2` to measure each figure longer, `TOPOLOGY_ROUNDS=9` for more rounds). The failover figures — time from a
//! promotion to each client's first success, acknowledged writes lost with and
//! without durable writes — are printed by
//! `cargo test --all-features --test high_availability -- --nocapture`.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use redisext::testing::{RedisCluster, RedisServer};
use redisext::{AsyncClient, Client, Counter, Slots};

fn seconds() -> Duration {
    Duration::from_secs_f64(std::env::var("TOPOLOGY_SECONDS").ok().and_then(|s| s.parse().ok()).unwrap_or(1.0))
}

/// Operations per second of 64 async tasks incrementing counters of their own
/// (`key_of(task)` names each task's counter).
fn async_ops_per_second(client: &AsyncClient, key_of: fn(usize) -> String) -> f64 {
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    let (stop, done) = (Arc::new(AtomicBool::new(false)), Arc::new(AtomicU64::new(0)));
    runtime.block_on(async {
        let tasks: Vec<_> = (0..64)
            .map(|task| {
                let (client, stop, done) = (client.clone(), Arc::clone(&stop), Arc::clone(&done));
                tokio::spawn(async move {
                    let counter = Counter::new(&client, key_of(task)).expect("key");
                    while !stop.load(Ordering::Relaxed) {
                        counter.incr(1).await.expect("incr");
                        done.fetch_add(1, Ordering::Relaxed);
                    }
                })
            })
            .collect();
        // Warm up (connections, scripts), then count.
        tokio::time::sleep(Duration::from_millis(300)).await;
        let (start, before) = (Instant::now(), done.load(Ordering::Relaxed));
        tokio::time::sleep(seconds()).await;
        let counted = done.load(Ordering::Relaxed) - before;
        stop.store(true, Ordering::Relaxed);
        for task in tasks {
            task.await.expect("task");
        }
        counted as f64 / start.elapsed().as_secs_f64()
    })
}

/// Operations per second of one blocking client sending pipelines of 64
/// increments over 64 keys (spread over the cluster's nodes).
fn pipelined_ops_per_second(client: &Client) -> f64 {
    let counters: Vec<Counter> = (0..64).map(|k| Counter::new(client, format!("pipe:{k}")).expect("key")).collect();
    let round = || {
        let pipe = client.pipeline();
        let slots: Vec<_> = counters.iter().map(|counter| counter.on(&pipe).incr(1)).collect();
        pipe.run().expect("pipeline");
        slots.take().expect("results");
    };
    for _ in 0..20 {
        round();
    }
    let (start, mut ops) = (Instant::now(), 0u64);
    while start.elapsed() < seconds() {
        round();
        ops += 64;
    }
    ops as f64 / start.elapsed().as_secs_f64()
}

/// A task's counter, spread over the cluster's slots.
fn spread_key(task: usize) -> String {
    format!("async:{task}")
}

/// A task's counter in the first master's slots (0..5461 of 3 masters).
fn one_node_key(task: usize) -> String {
    (0u64..)
        .map(|n| format!("one-node:{task}:{n}"))
        .find(|key| redisext::hash_slot(key.as_bytes()) < 5461)
        .unwrap_or_default()
}

/// The median of `values` (not empty).
fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let rounds: usize = std::env::var("TOPOLOGY_ROUNDS").ok().and_then(|s| s.parse().ok()).unwrap_or(5);
    let server = RedisServer::start()?;
    let cluster = RedisCluster::start(3)?;
    let mut builder = AsyncClient::builder();
    let mut blocking = Client::builder();
    for url in cluster.urls() {
        builder = builder.cluster(&url);
        blocking = blocking.cluster(&url);
    }
    let (async_cluster, blocking_cluster) = (builder.build()?, blocking.build()?);
    let (async_single, blocking_single) = (AsyncClient::open(&server.url())?, Client::open(&server.url())?);

    // Interleaved rounds, so that each ratio compares runs that shared the
    // machine's noise; the figures are medians over the rounds.
    let mut measured: [Vec<f64>; 4] = Default::default();
    let (mut async_ratios, mut piped_ratios, mut one_node_ratios) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..rounds {
        let figures = [
            async_ops_per_second(&async_single, spread_key),
            async_ops_per_second(&async_cluster, spread_key),
            pipelined_ops_per_second(&blocking_single),
            pipelined_ops_per_second(&blocking_cluster),
        ];
        // One node's share of the cluster client, measured alone: keys all in
        // slots of the first master, the other nodes idle.
        one_node_ratios.push(async_ops_per_second(&async_cluster, one_node_key) / figures[0]);
        async_ratios.push(figures[1] / figures[0]);
        piped_ratios.push(figures[3] / figures[2]);
        for (all, figure) in measured.iter_mut().zip(figures) {
            all.push(figure);
        }
    }
    let [async_single, async_cluster, piped_single, piped_cluster] = measured.map(median);
    let (async_ratio, piped_ratio) = (median(async_ratios), median(piped_ratios));

    println!("{rounds} interleaved rounds of {:.1} s per figure, medians", seconds().as_secs_f64());
    println!("{:<44} {:>12} {:>12}", "", "one server", "cluster of 3");
    println!("{:<44} {async_single:>12.0} {async_cluster:>12.0}", "async, 64 tasks, ops/s");
    println!("{:<44} {piped_single:>12.0} {piped_cluster:>12.0}", "blocking pipelines of 64, ops/s");
    println!("async cluster, per node / one server: {:.2} (all nodes: {async_ratio:.2})", async_ratio / 3.0);
    println!(
        "async cluster, keys on one node only / one server: {:.2} (the routing's cost, with the node alone busy)",
        median(one_node_ratios)
    );
    println!("pipelined, cluster of 3 / one server: {piped_ratio:.2}");
    println!("(the cluster's 3 nodes, the single server and the client share this machine's cores)");
    Ok(())
}
