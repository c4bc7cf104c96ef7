//! Issue 12's figures, against throwaway servers:
//!
//! 1. `CLIENT KILL TYPE normal` every 50 ms under 64 client threads (each a
//!    client of its own, as 64 processes would be): successful acquisitions per
//!    model against the same run without faults, permits and leases leaked,
//!    errors surfaced by kind; and plain writes (no token, no operation id) under
//!    the same kills: how many "may have applied" errors had in fact not applied,
//!    on this crate's connections (a reused one the server closed is seen before
//!    the write) and on the redis crate's (a `redis::Client` you give; not seen);
//!    with `--features testing,tokio`, the async client's too (its watched
//!    streams against a redis crate `ConnectionManager`).
//! 2. `SCRIPT FLUSH` every 10 ms: failed operations, single calls and pipelines.
//! 3. A restart of a persistent server (AOF, `appendfsync always`) mid-load:
//!    operations under way that failed against those that rode through.
//! 4. The throughput cost of tokens (the semaphore's scripts before and after
//!    them, run alike) and of exactly-once mode (a counter with and without).
//! 5. What detecting a closed connection before writing costs.
//!
//! Rounds are interleaved and medians printed: the machine may be shared.
//!
//! ```text
//! cargo run --release --features testing --example faults
//! cargo run --release --features testing --example faults -- costs   # 4 and 5 only
//! cargo run --release --features testing --example faults -- plain   # plain writes under kills only
//! cargo run --release --features testing,tokio --example faults -- plain   # and the async client's
//! ```

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use redisext::serializer::Str;
use redisext::testing::RedisServer;
use redisext::{
    Client, Counter, Error, Lock, Model, ModelOptions, ReliableQueue, ResourcePool, Result, Semaphore, Token,
};

const CLIENTS: usize = 64;
const RUN: Duration = Duration::from_millis(1500);
const ROUNDS: usize = 3;
const HOLD: Duration = Duration::from_secs(60);
const WAIT: Duration = Duration::from_secs(2);
const PERMITS: u32 = 8;
const KILL: [&str; 4] = ["CLIENT", "KILL", "TYPE", "normal"];

fn main() -> std::result::Result<(), Box<dyn std::error::Error>> {
    let server = RedisServer::start()?;
    // `-- plain`: only the plain writes under kills (end of 1).
    if std::env::args().nth(1).as_deref() == Some("plain") {
        plain_writes_under_client_kill(&server)?;
        #[cfg(feature = "tokio")]
        async_plain_writes_under_client_kill(&server)?;
        return Ok(());
    }
    // `-- costs`: only the costs (4 and 5).
    if std::env::args().nth(1).as_deref() != Some("costs") {
        under_client_kill(&server)?;
        plain_writes_under_client_kill(&server)?;
        #[cfg(feature = "tokio")]
        async_plain_writes_under_client_kill(&server)?;
        under_script_flush(&server)?;
        across_a_restart()?;
    }
    cost_of_tokens_and_exactly_once(&server)?;
    cost_of_detecting_a_closed_connection(&server)?;
    Ok(())
}

/// Errors seen, by kind.
#[derive(Default)]
struct Surfaced(Mutex<BTreeMap<String, u64>>);

impl Surfaced {
    fn record(&self, error: &Error) {
        let kind = match error {
            Error::Connection { delivery, .. } if error.may_have_applied() => {
                format!("Connection({delivery:?}), may have applied")
            }
            Error::Connection { delivery, .. } => format!("Connection({delivery:?})"),
            Error::Server { code, .. } => format!("Server({code})"),
            other => format!("{other:?}").split([' ', '{', '(']).next().unwrap_or_default().to_owned(),
        };
        *self.0.lock().unwrap().entry(kind).or_default() += 1;
    }

    fn ok<T>(&self, result: Result<T>) -> Option<T> {
        result.map_err(|error| self.record(&error)).ok()
    }

    fn take(&self) -> BTreeMap<String, u64> {
        std::mem::take(&mut self.0.lock().unwrap())
    }
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

fn exactly_once() -> ModelOptions {
    ModelOptions::new().exactly_once(true)
}

// --- 1. CLIENT KILL every 50 ms ------------------------------------------------

#[derive(Clone, Copy, Debug)]
enum Workload {
    Semaphore,
    ResourcePool,
    Lock,
    ReliableQueue,
    CounterExactlyOnce,
}

const MODELS: [Workload; 5] = [
    Workload::Semaphore,
    Workload::ResourcePool,
    Workload::Lock,
    Workload::ReliableQueue,
    Workload::CounterExactlyOnce,
];

/// One acquisition and its release (a delivery and its ack; an increment): true
/// when it was granted.
fn cycle(model: Workload, client: &Client, key: &str) -> Result<bool> {
    match model {
        Workload::Semaphore => {
            let slots = Semaphore::new(client, key, PERMITS)?;
            let Some(permit) = slots.acquire_wait(HOLD, WAIT)? else { return Ok(false) };
            slots.release(&permit)?;
        }
        Workload::ResourcePool => {
            let pool = ResourcePool::<Str>::new(client, key)?;
            let Some(lease) = pool.checkout_wait(HOLD, WAIT)? else { return Ok(false) };
            pool.checkin(&lease)?;
        }
        Workload::Lock => {
            let lock = Lock::new(client, key)?;
            let Some(token) = lock.acquire_wait(HOLD, WAIT)? else { return Ok(false) };
            lock.release(&token)?;
        }
        Workload::ReliableQueue => {
            let jobs = ReliableQueue::<Str>::with_options(client, key, exactly_once())?;
            jobs.push("job")?;
            let Some(job) = jobs.pop(HOLD)? else { return Ok(false) };
            jobs.ack(job.receipt())?;
        }
        Workload::CounterExactlyOnce => {
            Counter::with_options(client, key, exactly_once())?.incr(1)?;
        }
    }
    Ok(true)
}

/// What is left held once every client has released what it got.
fn leaked(model: Workload, client: &Client, key: &str) -> Result<u64> {
    Ok(match model {
        Workload::Semaphore => Semaphore::new(client, key, PERMITS)?.held()?,
        Workload::ResourcePool => ResourcePool::<Str>::new(client, key)?.counts()?.leased,
        Workload::Lock => u64::from(Lock::new(client, key)?.locked()?),
        Workload::ReliableQueue => ReliableQueue::<Str>::new(client, key)?.counts()?.in_flight,
        Workload::CounterExactlyOnce => 0,
    })
}

struct Outcome {
    granted: u64,
    leaked: u64,
    errors: BTreeMap<String, u64>,
}

/// `CLIENTS` clients cycle on `model` for [`RUN`], under `CLIENT KILL` every
/// 50 ms when `kill`.
fn load(server: &RedisServer, model: Workload, key: &str, kill: bool) -> Result<Outcome> {
    let setup = Client::open(&server.url())?;
    if let Workload::ResourcePool = model {
        let pool = ResourcePool::<Str>::new(&setup, key)?;
        for member in 0..PERMITS {
            pool.add(&member.to_string())?;
        }
    }
    let clients: Vec<Client> = (0..CLIENTS).map(|_| Client::open(&server.url())).collect::<Result<_>>()?;
    let (surfaced, granted) = (Surfaced::default(), AtomicU64::new(0));
    let killing = kill.then(|| server.repeat(Duration::from_millis(50), &KILL));
    let end = Instant::now() + RUN;
    thread::scope(|scope| {
        for client in &clients {
            let (surfaced, granted) = (&surfaced, &granted);
            scope.spawn(move || {
                while Instant::now() < end {
                    if surfaced.ok(cycle(model, client, key)) == Some(true) {
                        granted.fetch_add(1, Ordering::Relaxed);
                    }
                }
            });
        }
    });
    if let Some(killing) = killing {
        killing.stop().map_err(|e| Error::Config(e.to_string()))?;
    }
    let mut leaked = leaked(model, &setup, key)?;
    if let Workload::CounterExactlyOnce = model {
        let stored = Counter::new(&setup, key)?.get()?;
        leaked = stored.abs_diff(granted.load(Ordering::Relaxed) as i64);
    }
    Ok(Outcome { granted: granted.into_inner(), leaked, errors: surfaced.take() })
}

/// One model's figures over the rounds: rates without and with faults.
#[derive(Default)]
struct Row {
    calm: Vec<f64>,
    killed: Vec<f64>,
    leaked: u64,
    errors: BTreeMap<String, u64>,
}

fn under_client_kill(server: &RedisServer) -> Result<()> {
    println!("1. CLIENT KILL TYPE normal every 50 ms, {CLIENTS} clients, {RUN:?} per run, {ROUNDS} rounds interleaved");
    println!(
        "   {:<22} {:>10} {:>10} {:>7} {:>7}  errors surfaced (all rounds)",
        "model", "no fault/s", "killed/s", "ratio", "leaked"
    );
    let mut rows: Vec<Row> = MODELS.iter().map(|_| Row::default()).collect();
    for round in 0..ROUNDS {
        for (index, model) in MODELS.iter().enumerate() {
            // Alternate which goes first, lest the order favour one.
            let order = if round % 2 == 0 { [false, true] } else { [true, false] };
            for kill in order {
                let key = format!("{model:?}-{round}-{kill}");
                let outcome = load(server, *model, &key, kill)?;
                let rate = outcome.granted as f64 / RUN.as_secs_f64();
                let row = &mut rows[index];
                if kill {
                    row.killed.push(rate)
                } else {
                    row.calm.push(rate)
                }
                row.leaked += outcome.leaked;
                for (kind, count) in outcome.errors {
                    *row.errors.entry(format!("{}{kind}", if kill { "" } else { "no fault: " })).or_default() += count;
                }
            }
        }
    }
    for (model, Row { calm, killed, leaked, errors }) in MODELS.iter().zip(rows) {
        let (calm, killed) = (median(calm), median(killed));
        let name = format!("{model:?}");
        println!("   {name:<22} {calm:>10.0} {killed:>10.0} {:>6.2}x {leaked:>7}  {errors:?}", killed / calm);
    }
    Ok(())
}

/// Plain writes cannot settle an unknown outcome: how many of those surfaced
/// had in fact never run. On this crate's own connections (plain TCP) a reused
/// connection the server closed while idle is seen before the write and
/// replaced; on the redis crate's (a `redis::Client` given to
/// `Client::from_redis_client`) the write goes into the closed socket. Both in
/// the same run, alternated; with each client's next operation at once (the
/// server saturated: nearly every connection killed has a command in flight,
/// which no check can save) and after 1 ms idle (as clients that do other work
/// between operations: a kill often finds the connection idle).
fn plain_writes_under_client_kill(server: &RedisServer) -> Result<()> {
    let ours = || Client::open(&server.url());
    let crates =
        || Client::from_redis_client(redis::Client::open(server.url()).map_err(|e| Error::Config(e.to_string()))?);
    type Open<'a> = &'a dyn Fn() -> Result<Client>;
    for pause in [Duration::ZERO, Duration::from_millis(1)] {
        let mut sums: BTreeMap<&str, [u64; 4]> = BTreeMap::new();
        for round in 0..2 {
            let mut order: [(&str, Open<'_>); 2] =
                [("checked before each write", &ours), ("redis crate connections", &crates)];
            if round % 2 == 1 {
                order.reverse();
            }
            for (name, open) in order {
                let key = format!("plain-{pause:?}-{round}-{name}");
                let seen = plain_incr_under_kills(server, &key, open, pause)?;
                let sum = sums.entry(name).or_default();
                for (total, value) in sum.iter_mut().zip(seen) {
                    *total += value;
                }
            }
        }
        for (name, [closed, acked, unknown, applied]) in sums {
            println!(
                "   plain Counter::incr under the same kills, {:?} idle between operations, {name} (2 runs, {closed} \
                 connections closed): {acked} acknowledged, {unknown} \"may have applied\" of which {applied} had \
                 applied and {} had not",
                pause,
                unknown - applied
            );
        }
    }
    Ok(())
}

/// Connections closed, acknowledged, "may have applied", and of those how many applied.
fn plain_incr_under_kills(
    server: &RedisServer,
    key: &str,
    open: &dyn Fn() -> Result<Client>,
    pause: Duration,
) -> Result<[u64; 4]> {
    let clients: Vec<Client> = (0..CLIENTS).map(|_| open()).collect::<Result<_>>()?;
    let (surfaced, acked, unknown) = (Surfaced::default(), AtomicU64::new(0), AtomicU64::new(0));
    let killing = server.repeat(Duration::from_millis(50), &KILL);
    let end = Instant::now() + RUN;
    thread::scope(|scope| {
        for client in &clients {
            let (surfaced, acked, unknown) = (&surfaced, &acked, &unknown);
            scope.spawn(move || {
                let counter = Counter::new(client, key).expect("a key");
                while Instant::now() < end {
                    match counter.incr(1) {
                        Ok(_) => {
                            acked.fetch_add(1, Ordering::Relaxed);
                        }
                        Err(error) => {
                            if error.may_have_applied() {
                                unknown.fetch_add(1, Ordering::Relaxed);
                            }
                            surfaced.record(&error);
                        }
                    }
                    if !pause.is_zero() {
                        thread::sleep(pause);
                    }
                }
            });
        }
    });
    let kills = killing.stop().map_err(|e| Error::Config(e.to_string()))?;
    let stored = Counter::new(&Client::open(&server.url())?, key)?.get()?.unsigned_abs();
    let (acked, unknown) = (acked.into_inner(), unknown.into_inner());
    let errors = surfaced.take();
    if errors.keys().any(|kind| !kind.starts_with("Connection")) {
        println!("   (errors other than the connection's: {errors:?})");
    }
    Ok([kills.sum.unsigned_abs(), acked, unknown, stored.saturating_sub(acked)])
}

/// The same for the async client (with `--features testing,tokio`): 64 tasks,
/// each on a client of its own, on this crate's watched streams and on a redis
/// crate `ConnectionManager` (which reconnects by itself but sends into a dead
/// connection until its driver has noticed).
#[cfg(feature = "tokio")]
fn async_plain_writes_under_client_kill(server: &RedisServer) -> Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| Error::Config(e.to_string()))?;
    runtime.block_on(async {
        let ours = |key: String| -> Result<Incr> {
            Ok(boxed_incr(Counter::new(&redisext::AsyncClient::open(&server.url())?, key)?))
        };
        let managed = async |key: String| -> Result<Incr> {
            let client = redis::Client::open(server.url()).map_err(|e| Error::Config(e.to_string()))?;
            let manager = client.get_connection_manager().await.map_err(|e| Error::Config(e.to_string()))?;
            Ok(boxed_incr(Counter::new(&redisext::AsyncClient::from_connection_manager(manager), key)?))
        };
        for pause in [Duration::ZERO, Duration::from_millis(1)] {
            let mut sums: BTreeMap<&str, [u64; 4]> = BTreeMap::new();
            for round in 0..2 {
                for turn in 0..2 {
                    let name = if (round + turn) % 2 == 0 { "watched streams" } else { "ConnectionManager" };
                    let key = format!("async-plain-{pause:?}-{round}-{name}");
                    let mut incrs = Vec::with_capacity(CLIENTS);
                    for _ in 0..CLIENTS {
                        incrs.push(if name == "watched streams" {
                            ours(key.clone())?
                        } else {
                            managed(key.clone()).await?
                        });
                    }
                    let seen = async_incr_under_kills(server, &key, incrs, pause).await?;
                    let sum = sums.entry(name).or_default();
                    for (total, value) in sum.iter_mut().zip(seen) {
                        *total += value;
                    }
                }
            }
            for (name, [closed, acked, unknown, applied]) in sums {
                println!(
                    "   async plain Counter::incr under the same kills, {pause:?} idle between operations, {name} (2 \
                     runs, {closed} connections closed): {acked} acknowledged, {unknown} \"may have applied\" of \
                     which {applied} had applied and {} had not",
                    unknown - applied
                );
            }
        }
        Ok(())
    })
}

/// One increment of a counter, whatever its client's backend.
#[cfg(feature = "tokio")]
type Incr = Box<dyn Fn() -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<i64>> + Send>> + Send + Sync>;

#[cfg(feature = "tokio")]
fn boxed_incr<B: redisext::backend::AsyncBackend>(counter: Counter<redisext::AsyncClient<B>>) -> Incr {
    Box::new(move || {
        let counter = counter.clone();
        Box::pin(async move { counter.incr(1).await })
    })
}

#[cfg(feature = "tokio")]
async fn async_incr_under_kills(
    server: &RedisServer,
    key: &str,
    incrs: Vec<Incr>,
    pause: Duration,
) -> Result<[u64; 4]> {
    let (acked, unknown) = (std::sync::Arc::new(AtomicU64::new(0)), std::sync::Arc::new(AtomicU64::new(0)));
    let killing = server.repeat(Duration::from_millis(50), &KILL);
    let end = Instant::now() + RUN;
    let tasks: Vec<_> = incrs
        .into_iter()
        .map(|incr| {
            let (acked, unknown) = (std::sync::Arc::clone(&acked), std::sync::Arc::clone(&unknown));
            tokio::spawn(async move {
                while Instant::now() < end {
                    match incr().await {
                        Ok(_) => acked.fetch_add(1, Ordering::Relaxed),
                        Err(error) if error.may_have_applied() => unknown.fetch_add(1, Ordering::Relaxed),
                        Err(_) => 0,
                    };
                    if pause.is_zero() {
                        tokio::task::yield_now().await;
                    } else {
                        tokio::time::sleep(pause).await;
                    }
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.map_err(|e| Error::Config(e.to_string()))?;
    }
    let kills = killing.stop().map_err(|e| Error::Config(e.to_string()))?;
    let stored = Counter::new(&Client::open(&server.url())?, key)?.get()?.unsigned_abs();
    let (acked, unknown) = (acked.load(Ordering::Relaxed), unknown.load(Ordering::Relaxed));
    Ok([kills.sum.unsigned_abs(), acked, unknown, stored.saturating_sub(acked)])
}

// --- 2. SCRIPT FLUSH every 10 ms -----------------------------------------------

fn under_script_flush(server: &RedisServer) -> Result<()> {
    let clients: Vec<Client> = (0..CLIENTS).map(|_| Client::open(&server.url())).collect::<Result<_>>()?;
    let (surfaced, operations) = (Surfaced::default(), AtomicU64::new(0));
    let evals_before = server.command_calls("eval").unwrap_or(0);
    let flushing = server.repeat(Duration::from_millis(10), &["SCRIPT", "FLUSH"]);
    let end = Instant::now() + RUN;
    thread::scope(|scope| {
        for client in &clients {
            let (surfaced, operations) = (&surfaced, &operations);
            scope.spawn(move || {
                let counter = Counter::new(client, "flushed").expect("a key");
                while Instant::now() < end {
                    surfaced.ok(counter.incr(1));
                    let pipe = client.pipeline();
                    let slots: Vec<_> = (0..5).map(|_| counter.on(&pipe).incr(1)).collect();
                    match pipe.run() {
                        Ok(()) => slots.into_iter().for_each(|slot| {
                            surfaced.ok(slot.take());
                        }),
                        Err(error) => surfaced.record(&error),
                    }
                    operations.fetch_add(6, Ordering::Relaxed);
                }
            });
        }
    });
    let flushes = flushing.stop().map_err(|e| Error::Config(e.to_string()))?;
    let evals = server.command_calls("eval").unwrap_or(0) - evals_before;
    let failed = surfaced.take();
    println!(
        "2. SCRIPT FLUSH every 10 ms ({} flushes), {CLIENTS} clients, single calls and pipelines of 5: {} \
         operations, {} failed {failed:?}, {evals} EVAL fallbacks",
        flushes.runs,
        operations.into_inner(),
        failed.values().sum::<u64>()
    );
    Ok(())
}

// --- 3. a restart ------------------------------------------------------------------

fn across_a_restart() -> Result<()> {
    let mut server = RedisServer::start_persistent().map_err(|e| Error::Config(e.to_string()))?;
    let clients: Vec<Client> = (0..CLIENTS).map(|_| Client::open(&server.url())).collect::<Result<_>>()?;
    let stop = AtomicBool::new(false);
    let window = Mutex::new(None::<(Instant, Instant)>);
    // Per kind of write: acknowledged, operations spanning the restart that rode through, failed.
    let ops: Mutex<Vec<(bool, Instant, Instant, bool)>> = Mutex::new(Vec::new());
    let (plain_failed, exact_failed) = (Surfaced::default(), Surfaced::default());
    thread::scope(|scope| -> Result<()> {
        for client in &clients {
            let (stop, ops, plain_failed, exact_failed) = (&stop, &ops, &plain_failed, &exact_failed);
            scope.spawn(move || {
                let plain = Counter::new(client, "plain").expect("a key");
                let exact = Counter::with_options(client, "exact", exactly_once()).expect("a key");
                let mut mine = Vec::new();
                while !stop.load(Ordering::SeqCst) {
                    let started = Instant::now();
                    let ok = plain_failed.ok(plain.incr(1)).is_some();
                    mine.push((false, started, Instant::now(), ok));
                    let started = Instant::now();
                    let ok = exact_failed.ok(exact.incr(1)).is_some();
                    mine.push((true, started, Instant::now(), ok));
                }
                ops.lock().unwrap().extend(mine);
            });
        }
        thread::sleep(Duration::from_millis(500));
        let down = Instant::now();
        server.restart().map_err(|e| Error::Config(e.to_string()))?;
        *window.lock().unwrap() = Some((down, Instant::now()));
        thread::sleep(Duration::from_millis(500));
        stop.store(true, Ordering::SeqCst);
        Ok(())
    })?;
    let (down, up) = window.into_inner().unwrap().expect("restarted");
    let ops = ops.into_inner().unwrap();
    let setup = Client::open(&server.url())?;
    println!("3. a restart of a persistent server (appendfsync always), {CLIENTS} clients, down for {:?}", up - down);
    let kinds = [(false, "plain", "plain", plain_failed.take()), (true, "exactly-once", "exact", exact_failed.take())];
    for (exact, name, key, failed) in kinds {
        let mine = ops.iter().filter(|op| op.0 == exact);
        let acked = mine.clone().filter(|op| op.3).count();
        let spanning: Vec<_> = mine.filter(|op| op.1 <= up && op.2 >= down).collect();
        let rode = spanning.iter().filter(|op| op.3).count();
        let stored = Counter::new(&setup, key)?.get()?;
        println!(
            "   {name:<13} incr: {acked} acknowledged, {stored} stored; under way across the restart: {rode} rode \
             through, {} failed {failed:?}",
            spanning.len() - rode
        );
    }
    Ok(())
}

// --- 4. the cost of tokens and of exactly-once ---------------------------------------

const THREADS: usize = 8;
const OPS: usize = 5_000;
/// The first round loads the scripts and warms up; the others are measured.
const COST_ROUNDS: usize = 8;

/// Operations per second of `THREADS` threads, each on a client of its own,
/// running `op` `OPS` times.
fn rate<S: Sync>(setups: &[S], op: impl Fn(&S, usize) + Sync) -> f64 {
    let start = Instant::now();
    thread::scope(|scope| {
        for setup in setups {
            let op = &op;
            scope.spawn(move || (0..OPS).for_each(|i| op(setup, i)));
        }
    });
    (setups.len() * OPS) as f64 / start.elapsed().as_secs_f64()
}

/// `EVALSHA sha` on a plain redis crate connection.
fn evalsha(connection: &mut redis::Connection, sha: &str, keys: &[&str], args: &[&str]) -> redis::Value {
    redis::cmd("EVALSHA").arg(sha).arg(keys.len()).arg(keys).arg(args).query(connection).expect("EVALSHA")
}

fn cost_of_tokens_and_exactly_once(server: &RedisServer) -> Result<()> {
    let raw = || redis::Client::open(server.url()).and_then(|c| c.get_connection()).expect("a connection");
    let mut loader = raw();
    let mut load = |source: &str| -> String {
        redis::cmd("SCRIPT").arg("LOAD").arg(source).query(&mut loader).expect("SCRIPT LOAD")
    };
    let before_acquire = load(include_str!("before_tokens/semaphore_acquire.lua"));
    let before_release = load(include_str!("before_tokens/semaphore_release.lua"));
    let now_acquire = load(redisext::script::find("semaphore/acquire").expect("bundled").source());
    let now_release = load(redisext::script::find("semaphore/release").expect("bundled").source());
    let connections: Vec<Mutex<redis::Connection>> = (0..THREADS).map(|_| Mutex::new(raw())).collect();
    let clients: Vec<Client> = (0..THREADS).map(|_| Client::open(&server.url())).collect::<Result<_>>()?;
    let permits = CLIENTS.to_string();
    let plain_counters: Vec<Counter> = clients.iter().map(|c| Counter::new(c, "cost-plain")).collect::<Result<_>>()?;
    let once_counters: Vec<Counter> =
        clients.iter().map(|c| Counter::with_options(c, "cost-once", exactly_once())).collect::<Result<_>>()?;

    // For 1 thread (latency) and THREADS threads (the server's CPU shared with
    // the clients on a small machine): rates before/with tokens, plain/exactly-once.
    for threads in [1, THREADS] {
        let mut rates: [Vec<f64>; 4] = Default::default();
        let mut ratios: [Vec<f64>; 2] = Default::default();
        for round in 0..COST_ROUNDS {
            let before = rate(&connections[..threads], |connection, _| {
                let mut connection = connection.lock().unwrap();
                let keys = ["{b}", "{b}:settings", "{b}:ids"];
                let granted = evalsha(&mut connection, &before_acquire, &keys, &[&permits, "60000"]);
                if let redis::Value::Array(permit) = granted {
                    let id: i64 = redis::from_redis_value(permit[0].clone()).expect("an id");
                    evalsha(&mut connection, &before_release, &["{b}", "{b}:signal"], &[&id.to_string(), &permits]);
                }
            });
            let now = rate(&connections[..threads], |connection, _| {
                let mut connection = connection.lock().unwrap();
                let token = Token::generate();
                let keys = ["{n}", "{n}:settings", "{n}:ids", "{n}:tokens"];
                evalsha(&mut connection, &now_acquire, &keys, &[&permits, "60000", token.as_str()]);
                let release_keys = ["{n}", "{n}:signal", "{n}:tokens"];
                evalsha(&mut connection, &now_release, &release_keys, &[token.as_str(), "", &permits]);
            });
            let plain = rate(&plain_counters[..threads], |counter, _| {
                counter.incr(1).unwrap();
            });
            let once = rate(&once_counters[..threads], |counter, _| {
                counter.incr(1).unwrap();
            });
            if round > 0 {
                for (rates, value) in rates.iter_mut().zip([before, now, plain, once]) {
                    rates.push(value);
                }
                ratios[0].push(now / before);
                ratios[1].push(once / plain);
            }
        }
        let [before, now, plain, once] = rates.map(median);
        let [tokens, exactly] = ratios.map(median);
        println!(
            "4. cost, {threads} thread(s) x {OPS} operations, medians of {} interleaved rounds (of rates, and of \
             each round's ratio):\n   semaphore acquire+release before tokens {before:.0}/s, with tokens \
             {now:.0}/s: {tokens:.3}x\n   Counter::incr plain {plain:.0}/s, exactly-once {once:.0}/s: {exactly:.3}x",
            COST_ROUNDS - 1
        );
    }
    // At 8 threads the server's one thread is the bottleneck: its time per call
    // (INFO commandstats, which no client-side noise touches) says what the
    // extra reads and writes of a token or an operation id cost there.
    let micros = |op: &dyn Fn()| -> Result<f64> {
        server.command(&["CONFIG", "RESETSTAT"]).map_err(|e| Error::Config(e.to_string()))?;
        (0..OPS).for_each(|_| op());
        let stats = server.info("commandstats").map_err(|e| Error::Config(e.to_string()))?;
        Ok(stats
            .lines()
            .find_map(|line| line.strip_prefix("cmdstat_evalsha:"))
            .and_then(|fields| fields.split(',').find_map(|field| field.strip_prefix("usec_per_call=")))
            .and_then(|value| value.parse().ok())
            .unwrap_or(f64::NAN))
    };
    let (plain, once) = (&plain_counters[0], &once_counters[0]);
    let plain_us = micros(&|| {
        plain.incr(1).unwrap();
    })?;
    let once_us = micros(&|| {
        once.incr(1).unwrap();
    })?;
    println!(
        "   server time per Counter::incr call (INFO commandstats): plain {plain_us:.2} µs, exactly-once \
         {once_us:.2} µs"
    );
    Ok(())
}

// --- 5. detecting a closed connection before writing ---------------------------------

/// Each of `N` calls of `check`, in nanoseconds, the median of 7 rounds.
fn per_call(mut check: impl FnMut()) -> f64 {
    const N: u32 = 20_000;
    median(
        (0..7)
            .map(|_| {
                let start = Instant::now();
                (0..N).for_each(|_| check());
                start.elapsed().as_nanos() as f64 / f64::from(N)
            })
            .collect(),
    )
}

/// What the check before a write costs: this crate's (one `recv` with
/// `MSG_PEEK | MSG_DONTWAIT` on an idle socket), against making the socket
/// non-blocking for a peek and back (three system calls), a PING round trip
/// (the only check the redis crate's blocking connection offers), and one
/// operation. Then a `Counter::incr` on this crate's connections (checked before
/// each write) against the same on the redis crate's (not checked), rounds
/// interleaved.
fn cost_of_detecting_a_closed_connection(server: &RedisServer) -> Result<()> {
    let config = |e: std::io::Error| Error::Config(e.to_string());
    let stream = std::net::TcpStream::connect(server.address()).map_err(config)?;
    let socket = socket2::SockRef::from(&stream);
    let mut byte = [std::mem::MaybeUninit::uninit()];
    let idle =
        |peeked: std::io::Result<usize>| matches!(peeked, Err(ref e) if e.kind() == std::io::ErrorKind::WouldBlock);
    let flags = libc::MSG_PEEK | libc::MSG_DONTWAIT;
    let ours = per_call(|| assert!(idle(socket.recv_with_flags(&mut byte, flags)), "open, nothing to read"));
    let toggled = per_call(|| {
        stream.set_nonblocking(true).expect("non-blocking");
        assert!(idle(stream.peek(&mut [0u8])), "open, nothing to read");
        stream.set_nonblocking(false).expect("blocking");
    });
    let mut connection = redis::Client::open(server.url()).and_then(|c| c.get_connection()).expect("a connection");
    let ping = per_call(|| assert!(redis::ConnectionLike::check_connection(&mut connection)));
    let checked = Counter::new(&Client::open(&server.url())?, "probe")?;
    let unchecked_client =
        Client::from_redis_client(redis::Client::open(server.url()).map_err(|e| Error::Config(e.to_string()))?)?;
    let unchecked = Counter::new(&unchecked_client, "probe")?;
    let (mut with, mut without, mut ratios) = (Vec::new(), Vec::new(), Vec::new());
    for round in 0..COST_ROUNDS {
        let a = per_call(|| {
            checked.incr(1).expect("incr");
        });
        let b = per_call(|| {
            unchecked.incr(1).expect("incr");
        });
        if round > 0 {
            with.push(a);
            without.push(b);
            ratios.push(a / b);
        }
    }
    // A closed connection: the check sees the end of the stream at once.
    server.command(&KILL).map_err(|e| Error::Config(e.to_string()))?;
    thread::sleep(Duration::from_millis(20));
    let closed = matches!(socket.recv_with_flags(&mut byte, flags), Ok(0));
    println!(
        "5. the check before a write, per call (medians): recv(MSG_PEEK|MSG_DONTWAIT) {ours:.0} ns (sees a killed \
         connection: {closed}); set_nonblocking + peek + set_nonblocking {toggled:.0} ns; PING round trip {ping:.0} \
         ns\n   Counter::incr, 1 thread, {} interleaved rounds: on this crate's connections (checked) {:.0} ns, on \
         the redis crate's (unchecked) {:.0} ns: {:.3}x",
        COST_ROUNDS - 1,
        median(with),
        median(without),
        median(ratios)
    );
    Ok(())
}
