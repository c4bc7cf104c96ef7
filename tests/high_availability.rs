//! Clients through failovers, slot migrations and promotions, on real topologies
//! (a 3 + 3 Redis Cluster, a master with replicas under 3 sentinels): every client
//! — blocking, async, single operations or pipelines — resumes after a master is
//! killed and its replica promoted; no increment is lost or doubled while a slot
//! migrates; durable writes lose no acknowledged write through a failover; reads
//! are seen on replicas when asked for. `--nocapture` prints the figures.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use redisext::testing::{RedisCluster, RedisSentinels, RedisServer};
use redisext::{AsyncClient, Client, Counter, Error, Map, Model, ModelOptions, Reuse, SortedSet, serializer::Str};

/// What one client did around a failover.
#[derive(Default)]
struct Record {
    ok: AtomicU64,
    /// Successes since the promotion was seen.
    ok_after: AtomicU64,
    /// Operations that ended with an error (after the client's own retries).
    errors: AtomicU64,
    /// Of which said the write may have applied (in flight when the master died).
    may_have_applied: AtomicU64,
    /// Time from the promotion to this client's first success after it, µs.
    first_after: AtomicU64,
}

impl Record {
    fn note(&self, result: redisext::Result<()>, promoted: &Mutex<Option<Instant>>) {
        match result {
            Ok(()) => {
                self.ok.fetch_add(1, Ordering::Relaxed);
                if let Some(at) = *promoted.lock().unwrap()
                    && self.ok_after.fetch_add(1, Ordering::Relaxed) == 0
                {
                    let micros = u64::try_from(at.elapsed().as_micros()).unwrap_or(u64::MAX);
                    self.first_after.store(micros, Ordering::Relaxed);
                }
            }
            Err(error) => {
                self.errors.fetch_add(1, Ordering::Relaxed);
                if error.may_have_applied() {
                    self.may_have_applied.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
    }
}

fn summary(kind: &str, records: &[Arc<Record>]) {
    let mut firsts: Vec<u64> = records.iter().map(|r| r.first_after.load(Ordering::Relaxed)).collect();
    firsts.sort_unstable();
    let errors: u64 = records.iter().map(|r| r.errors.load(Ordering::Relaxed)).sum();
    let unknown: u64 = records.iter().map(|r| r.may_have_applied.load(Ordering::Relaxed)).sum();
    let ok: u64 = records.iter().map(|r| r.ok.load(Ordering::Relaxed)).sum();
    println!(
        "{kind}: {} clients, {ok} ops ok, {errors} errors ({unknown} may have applied); promotion to first success: \
         median {:.0} ms, max {:.0} ms",
        records.len(),
        firsts[firsts.len() / 2] as f64 / 1000.0,
        firsts[firsts.len() - 1] as f64 / 1000.0
    );
}

/// Until every record has `n` successes after the promotion, or `limit` passes.
fn wait_for_everyone(records: &[Arc<Record>], n: u64, limit: Duration) {
    let started = Instant::now();
    while records.iter().any(|r| r.ok_after.load(Ordering::Relaxed) < n) && started.elapsed() < limit {
        thread::sleep(Duration::from_millis(20));
    }
}

fn assert_everyone_resumed(kind: &str, records: &[Arc<Record>]) {
    for (index, record) in records.iter().enumerate() {
        assert!(
            record.ok_after.load(Ordering::Relaxed) >= 5,
            "{kind} client {index} never resumed after the promotion ({} ok before, {} errors)",
            record.ok.load(Ordering::Relaxed),
            record.errors.load(Ordering::Relaxed)
        );
    }
}

fn cluster_client(cluster: &RedisCluster) -> Client {
    let mut builder = Client::builder();
    for url in cluster.urls() {
        builder = builder.cluster(&url);
    }
    builder.build().unwrap()
}

fn async_cluster_client(cluster: &RedisCluster) -> AsyncClient {
    let mut builder = AsyncClient::builder();
    for url in cluster.urls() {
        builder = builder.cluster(&url);
    }
    builder.build().unwrap()
}

/// A key for worker `i` whose slot the master of `slot` serves, or any other.
fn key_for(i: usize) -> String {
    format!("worker:{i}")
}

#[test]
fn a_cluster_master_killed_under_load_every_client_resumes() {
    let mut cluster = RedisCluster::start_with_replicas(3, 1).unwrap();
    let promoted = Arc::new(Mutex::new(None::<Instant>));
    let stop = Arc::new(AtomicBool::new(false));
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();

    // 16 blocking clients doing single operations, 4 pipelining, 64 async tasks.
    let mut threads = Vec::new();
    let mut blocking = Vec::new();
    for i in 0..16 {
        let (record, client) = (Arc::new(Record::default()), cluster_client(&cluster));
        blocking.push(Arc::clone(&record));
        let (promoted, stop) = (Arc::clone(&promoted), Arc::clone(&stop));
        threads.push(thread::spawn(move || {
            let counter = Counter::new(&client, key_for(i)).unwrap();
            while !stop.load(Ordering::Relaxed) {
                record.note(counter.incr(1).map(drop), &promoted);
            }
        }));
    }
    let mut pipelining = Vec::new();
    for i in 0..4 {
        let (record, client) = (Arc::new(Record::default()), cluster_client(&cluster));
        pipelining.push(Arc::clone(&record));
        let (promoted, stop) = (Arc::clone(&promoted), Arc::clone(&stop));
        threads.push(thread::spawn(move || {
            let counters: Vec<Counter> =
                (0..8).map(|k| Counter::new(&client, format!("pipe:{i}:{k}")).unwrap()).collect();
            while !stop.load(Ordering::Relaxed) {
                let pipe = client.pipeline();
                let _slots: Vec<_> = counters.iter().map(|c| c.on(&pipe).incr(1)).collect();
                record.note(pipe.run(), &promoted);
            }
        }));
    }
    let client = async_cluster_client(&cluster);
    let mut tasks = Vec::new();
    let mut asynchronous = Vec::new();
    for i in 0..64 {
        let record = Arc::new(Record::default());
        asynchronous.push(Arc::clone(&record));
        let (promoted, stop, client) = (Arc::clone(&promoted), Arc::clone(&stop), client.clone());
        tasks.push(runtime.spawn(async move {
            let counter = Counter::new(&client, format!("task:{i}")).unwrap();
            while !stop.load(Ordering::Relaxed) {
                record.note(counter.incr(1).await.map(drop), &promoted);
            }
        }));
    }

    thread::sleep(Duration::from_millis(500));
    let slot = redisext::hash_slot(key_for(0).as_bytes());
    cluster.kill_master_of(slot).unwrap();
    cluster.wait_for_failover(slot).unwrap();
    *promoted.lock().unwrap() = Some(Instant::now());
    let everyone: Vec<Arc<Record>> = blocking.iter().chain(&pipelining).chain(&asynchronous).cloned().collect();
    wait_for_everyone(&everyone, 5, Duration::from_secs(30));
    stop.store(true, Ordering::Relaxed);
    for thread in threads {
        thread.join().unwrap();
    }
    runtime.block_on(async {
        for task in tasks {
            task.await.unwrap();
        }
    });
    summary("blocking, single ops", &blocking);
    summary("blocking, pipelines of 8", &pipelining);
    summary("async tasks", &asynchronous);
    assert_everyone_resumed("blocking", &blocking);
    assert_everyone_resumed("pipelining", &pipelining);
    assert_everyone_resumed("async", &asynchronous);
}

/// Increments from 8 blocking threads and 16 async tasks while the slot of their
/// keys migrates: `MOVED` and `ASK` mean "not run here", so the counters end
/// exact, with no error at all.
#[test]
fn increments_stay_exact_while_their_slot_migrates() {
    let cluster = RedisCluster::start_with_replicas(3, 0).unwrap();
    let keys: Vec<String> = (0..24).map(|i| format!("{{moving}}:{i}")).collect();
    let slot = redisext::hash_slot(keys[0].as_bytes());
    let source = cluster.master_of(slot).unwrap().port();
    let target = cluster.nodes().iter().map(RedisServer::port).find(|port| *port != source).unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicU64::new(0));
    let failures = Arc::new(Mutex::new(Vec::new()));

    let mut threads = Vec::new();
    for key in keys[..8].iter().cloned() {
        let client = cluster_client(&cluster);
        let (stop, done, failures) = (Arc::clone(&stop), Arc::clone(&done), Arc::clone(&failures));
        threads.push(thread::spawn(move || {
            let counter = Counter::new(&client, &key).unwrap();
            let mut ok = 0;
            while !stop.load(Ordering::Relaxed) {
                match counter.incr(1) {
                    Ok(_) => ok += 1,
                    Err(error) => failures.lock().unwrap().push(error.to_string()),
                }
            }
            done.fetch_add(1, Ordering::Relaxed);
            (key, ok)
        }));
    }
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let client = async_cluster_client(&cluster);
    let tasks: Vec<_> = keys[8..]
        .iter()
        .cloned()
        .map(|key| {
            let (stop, failures, client) = (Arc::clone(&stop), Arc::clone(&failures), client.clone());
            runtime.spawn(async move {
                let counter = Counter::new(&client, &key).unwrap();
                let mut ok = 0;
                while !stop.load(Ordering::Relaxed) {
                    match counter.incr(1).await {
                        Ok(_) => ok += 1,
                        Err(error) => failures.lock().unwrap().push(error.to_string()),
                    }
                }
                (key, ok)
            })
        })
        .collect();

    thread::sleep(Duration::from_millis(300));
    let migration = cluster.begin_migration(slot, target).unwrap();
    // Half the keys move, load goes on against a half-migrated slot (ASK), then the rest.
    let mut moved = 0;
    loop {
        match migration.move_keys(3).unwrap() {
            0 => break,
            batch => moved += batch,
        }
        thread::sleep(Duration::from_millis(30));
    }
    thread::sleep(Duration::from_millis(200));
    moved += migration.finish().unwrap();
    assert_eq!(moved, keys.len(), "every key moved while the load ran");
    thread::sleep(Duration::from_millis(300));
    stop.store(true, Ordering::Relaxed);
    let mut counted: Vec<(String, u64)> = threads.into_iter().map(|t| t.join().unwrap()).collect();
    counted.extend(runtime.block_on(async {
        let mut all = Vec::new();
        for task in tasks {
            all.push(task.await.unwrap());
        }
        all
    }));
    let failures = failures.lock().unwrap();
    assert!(failures.is_empty(), "{} operations failed during the migration: {:?}", failures.len(), &failures[..1]);
    let check = cluster_client(&cluster);
    let mut total = 0;
    for (key, ok) in counted {
        assert_eq!(Counter::new(&check, &key).unwrap().get().unwrap(), i64::try_from(ok).unwrap(), "{key}");
        total += ok;
    }
    assert_eq!(cluster.master_of(slot).unwrap().port(), target);
    println!("slot migration: {moved} keys moved, {total} increments, all exact, 0 errors");
}

/// Writes to a sorted set (a member per write) through a failover: counts the
/// acknowledged members missing afterwards.
fn acknowledged_writes_lost(durable: bool) -> (usize, usize, usize) {
    let mut cluster = RedisCluster::start_with_replicas(3, 1).unwrap();
    let mut builder = Client::builder();
    for url in cluster.urls() {
        builder = builder.cluster(&url);
    }
    if durable {
        builder = builder.durable(1, Duration::from_millis(500));
    }
    let client = builder.build().unwrap();
    let key = "{acked}:members";
    let slot = redisext::hash_slot(key.as_bytes());
    let stop = Arc::new(AtomicBool::new(false));
    let acked = Arc::new(Mutex::new(BTreeSet::new()));
    let not_replicated = Arc::new(AtomicU64::new(0));
    let threads: Vec<_> = (0..8)
        .map(|worker| {
            let (client, stop, acked, not_replicated) =
                (client.clone(), Arc::clone(&stop), Arc::clone(&acked), Arc::clone(&not_replicated));
            thread::spawn(move || {
                let set = SortedSet::<Str>::new(&client, key).unwrap();
                let mut n = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    n += 1;
                    let member = format!("{worker}:{n}");
                    match set.add(&member, 1.0) {
                        Ok(_) => {
                            acked.lock().unwrap().insert(member);
                        }
                        Err(Error::NotReplicated { .. }) => {
                            not_replicated.fetch_add(1, Ordering::Relaxed);
                        }
                        Err(_) => {}
                    }
                }
            })
        })
        .collect();
    thread::sleep(Duration::from_millis(700));
    cluster.kill_master_of(slot).unwrap();
    cluster.wait_for_failover(slot).unwrap();
    thread::sleep(Duration::from_millis(500));
    stop.store(true, Ordering::Relaxed);
    for thread in threads {
        thread.join().unwrap();
    }
    let present: BTreeSet<String> =
        SortedSet::<Str>::new(&client, key).unwrap().members().unwrap().into_iter().collect();
    let acked = acked.lock().unwrap();
    let lost = acked.difference(&present).count();
    (lost, acked.len(), usize::try_from(not_replicated.load(Ordering::Relaxed)).unwrap_or(usize::MAX))
}

#[test]
fn durable_writes_lose_no_acknowledged_write_through_a_failover() {
    let (lost_off, acked_off, _) = acknowledged_writes_lost(false);
    let (lost_on, acked_on, refused) = acknowledged_writes_lost(true);
    println!(
        "acknowledged writes lost through a failover: durable off {lost_off} of {acked_off}; durable on (WAIT 1) \
         {lost_on} of {acked_on} ({refused} reported NotReplicated)"
    );
    assert!(acked_on > 100 && acked_off > 100, "the load ran: {acked_on}, {acked_off}");
    assert_eq!(lost_on, 0, "a durable write acknowledged by a replica survives the replica's promotion");
}

#[test]
fn cluster_reads_go_to_replicas_when_asked_and_writes_to_masters() {
    let cluster = RedisCluster::start_with_replicas(3, 1).unwrap();
    let mut builder = Client::builder().read_from_replicas(true);
    for url in cluster.urls() {
        builder = builder.cluster(&url);
    }
    let client = builder.build().unwrap();
    let map = Map::<Str>::new(&client, "greeting").unwrap();
    map.set("hello").unwrap();
    let slot = redisext::hash_slot(b"greeting");
    let shard = cluster.shard_of(slot).unwrap();
    shard.replicas[0].wait_for_key("greeting").unwrap_or(());
    let mut seen = None;
    for _ in 0..50 {
        seen = map.get().unwrap();
        if seen.is_some() {
            break;
        }
        thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(seen.as_deref(), Some("hello"));
    assert!(shard.replicas[0].command_calls("evalsha_ro").unwrap() > 0, "the read ran on the replica");
    assert_eq!(shard.master.command_calls("evalsha_ro").unwrap(), 0, "not on the master");
    // A model that must read its own writes stays on the master.
    let own = Map::<Str>::with_options(&client, "greeting", ModelOptions::new().read_from_master(true)).unwrap();
    let replica_reads = shard.replicas[0].command_calls("evalsha_ro").unwrap();
    assert_eq!(own.get().unwrap().as_deref(), Some("hello"));
    assert!(shard.master.command_calls("evalsha_ro").unwrap() > 0, "read on the master");
    assert_eq!(shard.replicas[0].command_calls("evalsha_ro").unwrap(), replica_reads, "not on the replica");
}

#[test]
fn a_sentinel_failover_under_load_is_followed_by_blocking_and_async_clients() {
    let mut sentinels = RedisSentinels::start("mymaster", 2).unwrap();
    let urls = sentinels.sentinel_urls();
    let promoted = Arc::new(Mutex::new(None::<Instant>));
    let stop = Arc::new(AtomicBool::new(false));
    let mut threads = Vec::new();
    let mut blocking = Vec::new();
    for i in 0..16 {
        let record = Arc::new(Record::default());
        blocking.push(Arc::clone(&record));
        let client = Client::builder().sentinel("mymaster", &urls).reuse(Reuse::Lazy).build().unwrap();
        let (promoted, stop) = (Arc::clone(&promoted), Arc::clone(&stop));
        threads.push(thread::spawn(move || {
            let counter = Counter::new(&client, format!("sentinel:{i}")).unwrap();
            while !stop.load(Ordering::Relaxed) {
                record.note(counter.incr(1).map(drop), &promoted);
            }
        }));
    }
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let client = AsyncClient::builder().sentinel("mymaster", &urls).build().unwrap();
    let mut asynchronous = Vec::new();
    let tasks: Vec<_> = (0..64)
        .map(|i| {
            let record = Arc::new(Record::default());
            asynchronous.push(Arc::clone(&record));
            let (promoted, stop, client) = (Arc::clone(&promoted), Arc::clone(&stop), client.clone());
            runtime.spawn(async move {
                let counter = Counter::new(&client, format!("sentinel-task:{i}")).unwrap();
                while !stop.load(Ordering::Relaxed) {
                    record.note(counter.incr(1).await.map(drop), &promoted);
                }
            })
        })
        .collect();
    thread::sleep(Duration::from_millis(500));
    sentinels.kill_master().unwrap();
    sentinels.wait_for_failover().unwrap();
    *promoted.lock().unwrap() = Some(Instant::now());
    let everyone: Vec<Arc<Record>> = blocking.iter().chain(&asynchronous).cloned().collect();
    wait_for_everyone(&everyone, 5, Duration::from_secs(30));
    stop.store(true, Ordering::Relaxed);
    for thread in threads {
        thread.join().unwrap();
    }
    runtime.block_on(async {
        for task in tasks {
            task.await.unwrap();
        }
    });
    summary("sentinel, blocking", &blocking);
    summary("sentinel, async", &asynchronous);
    assert_everyone_resumed("sentinel blocking", &blocking);
    assert_everyone_resumed("sentinel async", &asynchronous);
    // The writes land on the new master.
    let master = sentinels.master().unwrap();
    assert_eq!(master.info_field("replication", "role").unwrap(), "master");
    assert!(master.command(&["EXISTS", "sentinel:0"]).unwrap() == redisext::Reply::Int(1));
}

#[test]
fn a_replica_promoted_by_hand_is_followed_after_the_old_master_refuses_a_write() {
    let master = RedisServer::start().unwrap();
    let replica = RedisServer::start_replica_of(&master).unwrap();
    let client = Client::builder().master(&master.url()).replica(&replica.url()).build().unwrap();
    let counter = Counter::new(&client, "c").unwrap();
    assert_eq!(counter.incr(1).unwrap(), 1);
    replica.wait_for_key("c").unwrap();
    // The operator swaps the roles.
    replica.command(&["REPLICAOF", "NO", "ONE"]).unwrap();
    master.command(&["REPLICAOF", "127.0.0.1", &replica.port().to_string()]).unwrap();
    master
        .wait_until(Duration::from_secs(10), |m| Ok(m.info_field("replication", "master_link_status")? == "up"))
        .unwrap();
    // The first write meets READONLY at the old master, the client asks both
    // nodes their ROLE, and sends it (and the next ones) to the new master.
    assert_eq!(counter.incr(1).unwrap(), 2);
    assert_eq!(counter.incr(1).unwrap(), 3);
    assert_eq!(replica.command(&["GET", "c"]).unwrap(), redisext::Reply::Bulk(b"3".to_vec()));
}
