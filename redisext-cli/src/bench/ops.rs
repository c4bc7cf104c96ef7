//! The operations measured, each run four ways: the library's model method
//! (`library`), the same bundled script sent by hand with the `redis` crate
//! (`evalsha`), the plain commands Python redisext 2.0.2 sends (`plain`) and, for
//! compound operations, an optimistic `WATCH`/`MULTI`/`EXEC` transaction retried
//! until it commits (`watch_multi`).
//!
//! Every client of a measurement is a [`Worker`] with connections of its own. The
//! invariants are checked by [`Shared`]: a lock or pool member held by two clients
//! at once, an item delivered twice, a queue longer than its capacity.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU8, AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use redis::Value;

use super::{BenchError, Operation, Path};
use redisext::Client;
use redisext::Error;
use redisext::Key;
use redisext::Lock;
use redisext::backend::RedisBackend;
use redisext::connection::{Dsn, Reuse, Timeouts};
use redisext::serializer::Raw;
use redisext::{BoundedQueue, Counter, Map, Overflow, PriorityQueue, ResourcePool, script};
use redisext::{Slot, Slots};

/// The value written by `map.set`, pushed by `bounded_queue.push`, read by `map.get`.
const VALUE: &[u8] = b"redisext-bench-v";
/// How long a benchmark lock is held at most (never reached: holders release at once).
const LOCK_TTL: Duration = Duration::from_secs(10);
/// The lease of a benchmark pool member (never reached either).
const LEASE: Duration = Duration::from_secs(60);
/// Members of the benchmark resource pool: fewer than most client counts, so
/// clients compete for them.
pub(crate) const POOL_MEMBERS: usize = 4;
/// Distinct items `priority_queue.push` cycles through, so the set stays small.
const PUSH_ITEMS: u64 = 1000;
/// The most aborted transactions one optimistic operation retries before it gives
/// up (and counts as not done).
const MAX_RETRIES: u64 = 10_000;
/// Expired leases one optimistic checkout reclaims, as `RECLAIM_LIMIT` in the script.
const RECLAIM_LIMIT: usize = 100;

/// The capacity of the bounded queue of a measurement of `attempts` pushes: nine
/// tenths of them fit, so the queue fills up during the run and the capacity check
/// is decided under contention.
pub(crate) fn bounded_capacity(attempts: usize) -> usize {
    (attempts * 9 / 10).max(1)
}

/// What one measurement runs on: an operation, a path, its keys and how many
/// attempts all its clients make together.
#[derive(Clone, Debug)]
pub(crate) struct Target {
    pub(crate) op: Operation,
    pub(crate) path: Path,
    pub(crate) key: Key,
    pub(crate) attempts: usize,
}

impl Target {
    fn sibling(&self, suffix: &str) -> Key {
        // The base key carries a hash tag, so a sibling is the key plus a suffix.
        self.key.sibling(suffix).unwrap_or_else(|_| self.key.clone())
    }

    /// Every key the operation may create, for deleting between rounds.
    pub(crate) fn keys(&self) -> Vec<Key> {
        let siblings: &[&str] = match self.op {
            Operation::LockCycle => &["fence", "work"],
            Operation::ResourcePoolCycle => &["leased", "leases", "fence", "retiring", "signal", "work"],
            Operation::BoundedQueuePush => &["settings", "signal"],
            _ => &[],
        };
        std::iter::once(self.key.clone()).chain(siblings.iter().map(|suffix| self.sibling(suffix))).collect()
    }

    /// Puts the keys in their starting state: a value to read, items to pop, idle
    /// pool members. The keys were deleted before.
    pub(crate) fn prepare(&self, setup: &mut redis::Connection, client: &Client) -> Result<(), BenchError> {
        let key = self.key.as_bytes();
        match self.op {
            Operation::MapGet => redis::cmd("SET").arg(key).arg(VALUE).exec(setup)?,
            Operation::PriorityQueuePop => {
                // One item per attempt: items are their own priority, so the pops
                // take them in order.
                for chunk in (0..self.attempts).collect::<Vec<_>>().chunks(1000) {
                    let mut zadd = redis::cmd("ZADD");
                    zadd.arg(key);
                    for item in chunk {
                        zadd.arg(item).arg(item);
                    }
                    zadd.exec(setup)?;
                }
            }
            Operation::ResourcePoolCycle if self.path == Path::Plain => {
                let mut sadd = redis::cmd("SADD");
                sadd.arg(key);
                for member in 0..POOL_MEMBERS {
                    sadd.arg(member);
                }
                sadd.exec(setup)?;
            }
            Operation::ResourcePoolCycle => {
                // The WATCH/MULTI baseline keeps the library's layout, so the
                // library sets up the pool for it too.
                let pool = ResourcePool::<Raw>::new(client, key)?;
                for member in 0..POOL_MEMBERS {
                    pool.add(member.to_string().as_bytes())?;
                }
            }
            _ => {}
        }
        Ok(())
    }

    /// Checks what can only be checked at the end: a bounded queue never popped
    /// during the run is at its longest then, so any excess over the capacity is
    /// a violation.
    pub(crate) fn check(&self, setup: &mut redis::Connection, shared: &Shared) -> Result<(), BenchError> {
        if self.op == Operation::BoundedQueuePush {
            let length: usize = redis::cmd("LLEN").arg(self.key.as_bytes()).query(setup)?;
            let excess = length.saturating_sub(bounded_capacity(self.attempts));
            shared.violations.fetch_add(excess as u64, Ordering::Relaxed);
        }
        Ok(())
    }
}

/// The invariant checks shared by the clients of one measurement.
pub(crate) struct Shared {
    violations: AtomicU64,
    lock_holders: AtomicI64,
    member_holders: [AtomicI64; POOL_MEMBERS],
    deliveries: Vec<AtomicU8>,
}

impl Shared {
    pub(crate) fn new(target: &Target) -> Shared {
        let items = if target.op == Operation::PriorityQueuePop { target.attempts } else { 0 };
        Shared {
            violations: AtomicU64::new(0),
            lock_holders: AtomicI64::new(0),
            member_holders: std::array::from_fn(|_| AtomicI64::new(0)),
            deliveries: (0..items).map(|_| AtomicU8::new(0)).collect(),
        }
    }

    /// Invariant violations seen so far.
    pub(crate) fn violations(&self) -> u64 {
        self.violations.load(Ordering::Relaxed)
    }

    fn violation(&self) {
        self.violations.fetch_add(1, Ordering::Relaxed);
    }

    /// A client believes it holds the lock (from the acquire's reply until it sends
    /// the release): another believer at the same time is a violation. A correct
    /// lock orders the two through the server, so this never misfires.
    fn hold(holders: &AtomicI64, shared: &Shared) {
        if holders.fetch_add(1, Ordering::SeqCst) != 0 {
            shared.violation();
        }
    }

    fn member(&self, member: &[u8]) -> Result<&AtomicI64, BenchError> {
        std::str::from_utf8(member)
            .ok()
            .and_then(|text| text.parse::<usize>().ok())
            .and_then(|index| self.member_holders.get(index))
            .ok_or_else(|| BenchError::Unexpected(format!("unknown pool member {:?}", String::from_utf8_lossy(member))))
    }

    /// An item popped from the priority queue: popped before is a violation.
    fn delivered(&self, item: &[u8]) -> Result<(), BenchError> {
        let slot = std::str::from_utf8(item)
            .ok()
            .and_then(|text| text.parse::<usize>().ok())
            .and_then(|index| self.deliveries.get(index))
            .ok_or_else(|| BenchError::Unexpected(format!("unknown item {:?}", String::from_utf8_lossy(item))))?;
        if slot.fetch_add(1, Ordering::Relaxed) != 0 {
            self.violation();
        }
        Ok(())
    }
}

/// What some attempts achieved.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Attempt {
    /// Attempts made.
    pub(crate) attempts: u64,
    /// Attempts that did what they were for (a lock taken and released, an item
    /// popped, a push accepted).
    pub(crate) done: u64,
    /// Aborted transactions sent again (WATCH/MULTI only).
    pub(crate) retries: u64,
}

impl Attempt {
    /// One attempt, successful or not, without retries.
    fn once(done: bool) -> Attempt {
        Attempt { attempts: 1, done: u64::from(done), retries: 0 }
    }

    /// One attempt, with the transactions it retried.
    fn retried(done: bool, retries: u64) -> Attempt {
        Attempt { attempts: 1, done: u64::from(done), retries }
    }

    /// `depth` attempts of one batch, `done` of them successful.
    fn batch(depth: usize, done: u64) -> Attempt {
        Attempt { attempts: depth as u64, done, retries: 0 }
    }

    pub(crate) fn add(&mut self, other: Attempt) {
        self.attempts += other.attempts;
        self.done += other.done;
        self.retries += other.retries;
    }
}

/// One client of a measurement.
pub(crate) trait Worker: Send {
    /// One attempt of the operation.
    fn once(&mut self) -> Result<Attempt, BenchError>;

    /// `depth` attempts sent in one round trip (only where
    /// [`Operation::pipelines`] says the path can).
    fn batch(&mut self, depth: usize) -> Result<Attempt, BenchError>;
}

/// A client for `target` on `path`, with connections of its own. `client` numbers
/// the clients of a measurement (it makes their lock tokens distinct).
pub(crate) fn worker(
    target: &Target,
    dsn: &Dsn,
    shared: Arc<Shared>,
    client: usize,
) -> Result<Box<dyn Worker>, BenchError> {
    let connect =
        || -> Result<redis::Connection, BenchError> { Ok(redisext::backend::redis_client(dsn)?.get_connection()?) };
    let work = match target.op {
        Operation::LockCycle | Operation::ResourcePoolCycle => {
            Some(Work { connection: connect()?, key: target.sibling("work") })
        }
        _ => None,
    };
    let common = Common { target: target.clone(), shared, work, sequence: 0, client: client as u64 };
    Ok(match target.path {
        Path::Library => Box::new(LibraryWorker::new(common, dsn)?),
        Path::Evalsha => Box::new(EvalshaWorker { connection: connect()?, common }),
        Path::Plain => Box::new(PlainWorker { connection: connect()?, common }),
        Path::Optimistic => Box::new(OptimisticWorker { connection: connect()?, common, watching: false }),
    })
}

/// The round trip of work a holder does while it holds a lock or a pool member:
/// `INCR` of a counter, on a connection of its own so every path does it the same.
struct Work {
    connection: redis::Connection,
    key: Key,
}

/// What every worker has, whatever its path.
struct Common {
    target: Target,
    shared: Arc<Shared>,
    work: Option<Work>,
    sequence: u64,
    client: u64,
}

impl Common {
    fn key(&self) -> &[u8] {
        self.target.key.as_bytes()
    }

    /// The next item and priority for `priority_queue.push`.
    fn next_push(&mut self) -> (Vec<u8>, i64) {
        self.sequence += 1;
        ((self.sequence % PUSH_ITEMS).to_string().into_bytes(), i64::try_from(self.sequence).unwrap_or(i64::MAX))
    }

    /// A lock token no other client of the run uses.
    fn next_token(&mut self) -> String {
        self.sequence += 1;
        format!("{:016x}{:016x}", self.client, self.sequence)
    }

    /// Holds `holders` for one round trip of work, then lets go: call between a
    /// successful acquire (or checkout) and its release (checkin).
    fn hold_and_work(&mut self, holders: Holders<'_>) -> Result<(), BenchError> {
        let counter = match holders {
            Holders::Lock => &self.shared.lock_holders,
            Holders::Member(member) => self.shared.member(member)?,
        };
        Shared::hold(counter, &self.shared);
        let worked = match &mut self.work {
            Some(work) => {
                redis::cmd("INCR").arg(work.key.as_bytes()).exec(&mut work.connection).map_err(BenchError::from)
            }
            None => Ok(()),
        };
        counter.fetch_sub(1, Ordering::SeqCst);
        worked
    }
}

/// Which holder count a holder enters.
#[derive(Clone, Copy)]
enum Holders<'m> {
    Lock,
    Member(&'m [u8]),
}

// ---------------------------------------------------------------------------------
// library: the models, through a Client (one connection of its own) or a Pipeline.

enum Model {
    Counter(Counter),
    Map(Map<Raw>),
    PriorityQueue(PriorityQueue<Raw>),
    Lock(Lock),
    Pool(ResourcePool<Raw>),
    Bounded(BoundedQueue<Raw>),
}

struct LibraryWorker {
    client: Client,
    model: Model,
    common: Common,
}

impl LibraryWorker {
    fn new(common: Common, dsn: &Dsn) -> Result<LibraryWorker, BenchError> {
        let client = Client::with_backend(RedisBackend::new(dsn, None, Reuse::Lazy, Timeouts::default())?);
        let key = common.key();
        let model = match common.target.op {
            Operation::CounterIncr => Model::Counter(Counter::new(&client, key)?),
            Operation::MapGet | Operation::MapSet => Model::Map(Map::new(&client, key)?),
            Operation::PriorityQueuePush | Operation::PriorityQueuePop => {
                Model::PriorityQueue(PriorityQueue::new(&client, key)?)
            }
            Operation::LockCycle => Model::Lock(Lock::new(&client, key)?),
            Operation::ResourcePoolCycle => Model::Pool(ResourcePool::new(&client, key)?),
            Operation::BoundedQueuePush => {
                let capacity = bounded_capacity(common.target.attempts) as u64;
                Model::Bounded(BoundedQueue::new(&client, key, capacity, Overflow::Reject)?)
            }
        };
        // Open the connection now, outside the measurement.
        Counter::new(&client, common.target.sibling("connect").as_bytes())?.get()?;
        Ok(LibraryWorker { client, model, common })
    }
}

/// A bounded-queue push: accepted, or refused because the queue is full.
fn accepted<T>(result: redisext::Result<T>) -> Result<bool, BenchError> {
    match result {
        Ok(_) => Ok(true),
        Err(Error::Full { .. }) => Ok(false),
        Err(error) => Err(error.into()),
    }
}

impl Worker for LibraryWorker {
    fn once(&mut self) -> Result<Attempt, BenchError> {
        let done = match &self.model {
            Model::Counter(counter) => counter.incr(1).map(|_| true)?,
            Model::Map(map) if self.common.target.op == Operation::MapGet => map.get().map(|_| true)?,
            Model::Map(map) => map.set(VALUE).map(|()| true)?,
            Model::PriorityQueue(queue) if self.common.target.op == Operation::PriorityQueuePush => {
                let (item, priority) = self.common.next_push();
                queue.push(&item, priority).map(|_| true)?
            }
            Model::PriorityQueue(queue) => match queue.pop()? {
                Some(item) => self.common.shared.delivered(&item).map(|()| true)?,
                None => false,
            },
            Model::Lock(lock) => match lock.acquire(LOCK_TTL)? {
                Some(token) => {
                    self.common.hold_and_work(Holders::Lock)?;
                    if !lock.release(&token)? {
                        return Err(BenchError::Unexpected("a held lock was not released".into()));
                    }
                    true
                }
                None => false,
            },
            Model::Pool(pool) => match pool.checkout(LEASE)? {
                Some(lease) => {
                    self.common.hold_and_work(Holders::Member(lease.member()))?;
                    if !pool.checkin(&lease)? {
                        return Err(BenchError::Unexpected("a lease was lost".into()));
                    }
                    true
                }
                None => false,
            },
            Model::Bounded(queue) => accepted(queue.push(VALUE))?,
        };
        Ok(Attempt::once(done))
    }

    fn batch(&mut self, depth: usize) -> Result<Attempt, BenchError> {
        let pipe = self.client.pipeline();
        let op = self.common.target.op;
        let done = match &self.model {
            Model::Counter(counter) => run_slots(&pipe, (0..depth).map(|_| counter.on(&pipe).incr(1)).collect())?,
            Model::Map(map) if op == Operation::MapGet => {
                run_slots(&pipe, (0..depth).map(|_| map.on(&pipe).get()).collect())?
            }
            Model::Map(map) => run_slots(&pipe, (0..depth).map(|_| map.on(&pipe).set(VALUE)).collect())?,
            Model::PriorityQueue(queue) if op == Operation::PriorityQueuePush => {
                let slots = (0..depth)
                    .map(|_| {
                        let (item, priority) = self.common.next_push();
                        queue.on(&pipe).push(&item, priority)
                    })
                    .collect();
                run_slots(&pipe, slots)?
            }
            Model::PriorityQueue(queue) => {
                let slots: Vec<_> = (0..depth).map(|_| queue.on(&pipe).pop()).collect();
                pipe.run()?;
                let mut done = 0;
                for item in slots.take()?.into_iter().flatten() {
                    self.common.shared.delivered(&item)?;
                    done += 1;
                }
                done
            }
            Model::Bounded(queue) => {
                let slots: Vec<_> = (0..depth).map(|_| queue.on(&pipe).push(VALUE)).collect();
                pipe.run()?;
                let mut done = 0;
                for slot in slots {
                    done += u64::from(accepted(slot.take())?);
                }
                done
            }
            Model::Lock(_) | Model::Pool(_) => return Err(not_pipelined(op, Path::Library)),
        };
        Ok(Attempt::batch(depth, done))
    }
}

/// Runs a pipeline whose slots all must succeed, and counts them.
fn run_slots<T>(pipe: &redisext::Pipeline<Client>, slots: Vec<Slot<T>>) -> Result<u64, BenchError> {
    pipe.run()?;
    Ok(slots.take()?.len() as u64)
}

fn not_pipelined(op: Operation, path: Path) -> BenchError {
    BenchError::Unexpected(format!("{} cannot be pipelined on the {} path", op.name(), path.name()))
}

// ---------------------------------------------------------------------------------
// evalsha: the bundled scripts, sent by hand with the redis crate.

struct EvalshaWorker {
    connection: redis::Connection,
    common: Common,
}

/// `EVALSHA sha numkeys keys… args…` of a bundled script (`EVALSHA_RO` for a
/// read-only one, as the library sends), as a user would write it.
/// The `op` argument of a write that exactly-once mode settles, with the mode off
/// (as the models send it by default).
const NOT_EXACTLY_ONCE: &[u8] = b"";

fn evalsha(name: &str, keys: &[&[u8]], args: &[&[u8]]) -> Result<redis::Cmd, BenchError> {
    let script = script::find(name).ok_or_else(|| BenchError::Unexpected(format!("no bundled script {name}")))?;
    let mut command = redis::cmd(if script.is_read_only() { "EVALSHA_RO" } else { "EVALSHA" });
    command.arg(script.sha1()).arg(keys.len()).arg(keys).arg(args);
    Ok(command)
}

impl EvalshaWorker {
    /// The command of one attempt, for the operations that are one script call.
    fn command(&mut self) -> Result<redis::Cmd, BenchError> {
        let common = &mut self.common;
        let key = common.target.key.clone();
        let key = key.as_bytes();
        match common.target.op {
            Operation::CounterIncr => evalsha("counter/incr", &[key], &[b"1", NOT_EXACTLY_ONCE]),
            Operation::MapGet => evalsha("map/get", &[key], &[]),
            Operation::MapSet => evalsha("map/set", &[key], &[VALUE, NOT_EXACTLY_ONCE]),
            Operation::PriorityQueuePush => {
                let (item, priority) = common.next_push();
                evalsha("priority_queue/push", &[key], &[priority.to_string().as_bytes(), &item, NOT_EXACTLY_ONCE])
            }
            Operation::PriorityQueuePop => evalsha("priority_queue/pop", &[key], &[NOT_EXACTLY_ONCE]),
            Operation::BoundedQueuePush => {
                let (settings, signal) = (common.target.sibling("settings"), common.target.sibling("signal"));
                let capacity = bounded_capacity(common.target.attempts).to_string();
                evalsha(
                    "bounded_queue/push",
                    &[key, settings.as_bytes(), signal.as_bytes()],
                    &[capacity.as_bytes(), b"reject", VALUE],
                )
            }
            op @ (Operation::LockCycle | Operation::ResourcePoolCycle) => Err(not_pipelined(op, Path::Evalsha)),
        }
    }

    /// What the reply to [`command`](Self::command) means.
    fn outcome(&self, reply: Value) -> Result<bool, BenchError> {
        match (self.common.target.op, reply) {
            (Operation::PriorityQueuePop, Value::BulkString(item)) => {
                self.common.shared.delivered(&item).map(|()| true)
            }
            (Operation::PriorityQueuePop, Value::Nil) => Ok(false),
            (Operation::BoundedQueuePush, Value::ServerError(error)) if error.code() == "REDISEXT_FULL" => Ok(false),
            (_, Value::ServerError(error)) => Err(BenchError::Unexpected(format!("{error:?}"))),
            _ => Ok(true),
        }
    }

    fn lock_cycle(&mut self) -> Result<bool, BenchError> {
        let token = self.common.next_token();
        let key = self.common.target.key.clone();
        let fence = self.common.target.sibling("fence");
        let ttl = LOCK_TTL.as_millis().to_string();
        let acquire =
            evalsha("lock/acquire", &[key.as_bytes(), fence.as_bytes()], &[token.as_bytes(), ttl.as_bytes()])?;
        if acquire.query::<Value>(&mut self.connection)? == Value::Nil {
            return Ok(false);
        }
        self.common.hold_and_work(Holders::Lock)?;
        let signal = self.common.target.sibling("signal");
        let released: i64 = evalsha("lock/release", &[key.as_bytes(), signal.as_bytes()], &[token.as_bytes()])?
            .query(&mut self.connection)?;
        if released != 1 {
            return Err(BenchError::Unexpected("a held lock was not released".into()));
        }
        Ok(true)
    }

    fn pool_cycle(&mut self) -> Result<bool, BenchError> {
        let target = &self.common.target;
        let [idle, leased, leases, fence, retiring, signal] = [
            target.key.clone(),
            target.sibling("leased"),
            target.sibling("leases"),
            target.sibling("fence"),
            target.sibling("retiring"),
            target.sibling("signal"),
        ];
        let lease = LEASE.as_millis().to_string();
        let limit = RECLAIM_LIMIT.to_string();
        let checkout = evalsha(
            "resource_pool/checkout",
            &[idle.as_bytes(), leased.as_bytes(), leases.as_bytes(), fence.as_bytes(), retiring.as_bytes()],
            &[lease.as_bytes(), limit.as_bytes()],
        )?;
        let Some((member, number, _deadline)) = checkout.query::<Option<(Vec<u8>, i64, i64)>>(&mut self.connection)?
        else {
            return Ok(false);
        };
        self.common.hold_and_work(Holders::Member(&member))?;
        let checkin = evalsha(
            "resource_pool/checkin",
            &[idle.as_bytes(), leased.as_bytes(), leases.as_bytes(), retiring.as_bytes(), signal.as_bytes()],
            &[&member, number.to_string().as_bytes()],
        )?;
        if checkin.query::<i64>(&mut self.connection)? != 1 {
            return Err(BenchError::Unexpected("a lease was lost".into()));
        }
        Ok(true)
    }
}

impl Worker for EvalshaWorker {
    fn once(&mut self) -> Result<Attempt, BenchError> {
        let done = match self.common.target.op {
            Operation::LockCycle => self.lock_cycle()?,
            Operation::ResourcePoolCycle => self.pool_cycle()?,
            _ => {
                let reply = self.command()?.query::<Value>(&mut self.connection);
                // The redis crate returns an error reply as an Err; the outcome
                // decides whether it is an expected refusal.
                let reply = match reply {
                    Err(error) if error.code() == Some("REDISEXT_FULL") => return Ok(Attempt::once(false)),
                    other => other?,
                };
                self.outcome(reply)?
            }
        };
        Ok(Attempt::once(done))
    }

    fn batch(&mut self, depth: usize) -> Result<Attempt, BenchError> {
        let mut pipe = redis::pipe();
        pipe.ignore_errors();
        for _ in 0..depth {
            pipe.add_command(self.command()?);
        }
        let replies: Vec<Value> = pipe.query(&mut self.connection)?;
        let mut done = 0;
        for reply in replies {
            done += u64::from(self.outcome(reply)?);
        }
        Ok(Attempt::batch(depth, done))
    }
}

// ---------------------------------------------------------------------------------
// plain: the commands Python redisext 2.0.2 sends for the same operation.

struct PlainWorker {
    connection: redis::Connection,
    common: Common,
}

impl PlainWorker {
    /// The one command of the operations Python does in one command.
    fn command(&mut self) -> Result<redis::Cmd, BenchError> {
        let op = self.common.target.op;
        let mut command = redis::cmd(match op {
            Operation::CounterIncr => "INCRBY",
            Operation::MapGet => "GET",
            Operation::MapSet => "SET",
            Operation::PriorityQueuePush => "ZADD",
            _ => return Err(not_pipelined(op, Path::Plain)),
        });
        command.arg(self.common.key());
        match op {
            Operation::CounterIncr => command.arg(1),
            Operation::MapSet => command.arg(VALUE),
            Operation::PriorityQueuePush => {
                let (item, priority) = self.common.next_push();
                command.arg(priority).arg(item)
            }
            _ => &mut command,
        };
        Ok(command)
    }
}

impl Worker for PlainWorker {
    fn once(&mut self) -> Result<Attempt, BenchError> {
        let key = self.common.target.key.clone();
        let key = key.as_bytes();
        let connection = &mut self.connection;
        let done = match self.common.target.op {
            Operation::PriorityQueuePop => {
                // PriorityQueue.pop: ZRANGEBYSCORE … LIMIT 0 1, then ZREM, and the
                // item is returned whatever ZREM said.
                let first: Vec<Vec<u8>> = redis::cmd("ZRANGEBYSCORE")
                    .arg(key)
                    .arg("-inf")
                    .arg("+inf")
                    .arg("LIMIT")
                    .arg(0)
                    .arg(1)
                    .query(connection)?;
                match first.into_iter().next() {
                    Some(item) => {
                        redis::cmd("ZREM").arg(key).arg(&item).exec(connection)?;
                        self.common.shared.delivered(&item)?;
                        true
                    }
                    None => false,
                }
            }
            Operation::LockCycle => {
                // Lock.acquire: EXISTS, SET "", EXPIRE; Lock.release: DEL.
                let exists: bool = redis::cmd("EXISTS").arg(key).query(connection)?;
                if exists {
                    false
                } else {
                    redis::cmd("SET").arg(key).arg("").exec(connection)?;
                    redis::cmd("EXPIRE").arg(key).arg(LOCK_TTL.as_secs()).exec(connection)?;
                    self.common.hold_and_work(Holders::Lock)?;
                    redis::cmd("DEL").arg(key).exec(&mut self.connection)?;
                    true
                }
            }
            Operation::ResourcePoolCycle => {
                // Pool.pop (SPOP) and Pool.push (SADD): no leases, no fencing.
                let member: Option<Vec<u8>> = redis::cmd("SPOP").arg(key).query(connection)?;
                match member {
                    Some(member) => {
                        self.common.hold_and_work(Holders::Member(&member))?;
                        redis::cmd("SADD").arg(key).arg(&member).exec(&mut self.connection)?;
                        true
                    }
                    None => false,
                }
            }
            Operation::BoundedQueuePush => {
                // Python has no bounded queue: Queue.size() (LLEN), then Queue.push()
                // (LPUSH) when there is room.
                let length: usize = redis::cmd("LLEN").arg(key).query(connection)?;
                if length >= bounded_capacity(self.common.target.attempts) {
                    false
                } else {
                    redis::cmd("LPUSH").arg(key).arg(VALUE).exec(connection)?;
                    true
                }
            }
            _ => {
                let command = self.command()?;
                command.exec(&mut self.connection)?;
                true
            }
        };
        Ok(Attempt::once(done))
    }

    fn batch(&mut self, depth: usize) -> Result<Attempt, BenchError> {
        let mut pipe = redis::pipe();
        for _ in 0..depth {
            pipe.add_command(self.command()?).ignore();
        }
        pipe.exec(&mut self.connection)?;
        Ok(Attempt::batch(depth, depth as u64))
    }
}

// ---------------------------------------------------------------------------------
// watch_multi: the compound operations as optimistic transactions. Each reads with
// WATCH in one round trip, then sends MULTI … EXEC in one more; an EXEC answered
// nil (a watched key changed) is retried. A transaction given up after a read
// leaves the keys watched, so the next one starts with UNWATCH in its first round
// trip (a stale WATCH would abort it for nothing).

struct OptimisticWorker {
    connection: redis::Connection,
    common: Common,
    watching: bool,
}

/// The reads of an optimistic checkout: expired leases, the member idle longest,
/// the fencing counter, the retiring members.
type CheckoutReads = (Vec<Vec<u8>>, Vec<Vec<u8>>, Option<u64>, Vec<Vec<u8>>);

/// What the read half of a transaction decided.
enum Decision<T> {
    /// Nothing to do (the lock is held, the queue is empty or full): give up.
    GiveUp,
    /// Send this transaction; `T` is what it achieves when it commits.
    Commit(redis::Pipeline, T),
}

impl OptimisticWorker {
    /// Runs the read-decide-commit loop: `read` gets the watched keys and a
    /// pipeline holding UNWATCH (when needed) and WATCH, adds its reads, sends
    /// them and decides. Returns what the committed transaction achieved, or None.
    fn transact<T>(
        &mut self,
        watched: &[&[u8]],
        mut read: impl FnMut(&mut redis::Connection, redis::Pipeline) -> Result<Decision<T>, BenchError>,
    ) -> Result<(Option<T>, u64), BenchError> {
        let mut retries = 0;
        loop {
            let mut pipe = redis::pipe();
            if self.watching {
                pipe.cmd("UNWATCH").ignore();
            }
            pipe.cmd("WATCH").arg(watched).ignore();
            self.watching = true;
            match read(&mut self.connection, pipe)? {
                Decision::GiveUp => return Ok((None, retries)),
                Decision::Commit(mut transaction, value) => {
                    // EXEC ends the WATCH, committed or not.
                    self.watching = false;
                    let committed: Value = transaction.atomic().query(&mut self.connection)?;
                    if committed != Value::Nil {
                        return Ok((Some(value), retries));
                    }
                    retries += 1;
                    if retries >= MAX_RETRIES {
                        return Ok((None, retries));
                    }
                }
            }
        }
    }

    fn pop(&mut self) -> Result<Attempt, BenchError> {
        let key = self.common.target.key.clone();
        let key = key.as_bytes();
        let (item, retries) = self.transact(&[key], |connection, mut pipe| {
            let (first,): (Vec<Vec<u8>>,) = pipe.cmd("ZRANGE").arg(key).arg(0).arg(0).query(connection)?;
            Ok(match first.into_iter().next() {
                None => Decision::GiveUp,
                Some(item) => {
                    let mut transaction = redis::pipe();
                    transaction.cmd("ZREM").arg(key).arg(&item).ignore();
                    Decision::Commit(transaction, item)
                }
            })
        })?;
        if let Some(item) = &item {
            self.common.shared.delivered(item)?;
        }
        Ok(Attempt::retried(item.is_some(), retries))
    }

    fn lock_cycle(&mut self) -> Result<Attempt, BenchError> {
        let key = self.common.target.key.clone();
        let fence = self.common.target.sibling("fence");
        let token = self.common.next_token();
        let ttl = LOCK_TTL.as_millis() as u64;
        // acquire: the lock key absent → SET token PX ttl, INCR the fencing counter.
        let (taken, mut retries) = self.transact(&[key.as_bytes(), fence.as_bytes()], |connection, mut pipe| {
            let (exists,): (bool,) = pipe.cmd("EXISTS").arg(key.as_bytes()).query(connection)?;
            if exists {
                return Ok(Decision::GiveUp);
            }
            let mut transaction = redis::pipe();
            transaction.cmd("SET").arg(key.as_bytes()).arg(&token).arg("PX").arg(ttl).ignore();
            transaction.cmd("INCR").arg(fence.as_bytes()).ignore();
            Ok(Decision::Commit(transaction, ()))
        })?;
        if taken.is_none() {
            return Ok(Attempt::retried(false, retries));
        }
        self.common.hold_and_work(Holders::Lock)?;
        // release: the key holds our token → DEL, and one wake-up signal.
        let signal = self.common.target.sibling("signal");
        let (released, more) = self.transact(&[key.as_bytes()], |connection, mut pipe| {
            let (value,): (Option<String>,) = pipe.cmd("GET").arg(key.as_bytes()).query(connection)?;
            if value.as_deref() != Some(token.as_str()) {
                return Ok(Decision::GiveUp);
            }
            let mut transaction = redis::pipe();
            transaction.cmd("DEL").arg(key.as_bytes()).ignore();
            transaction.cmd("LPUSH").arg(signal.as_bytes()).arg("1").ignore();
            transaction.cmd("LTRIM").arg(signal.as_bytes()).arg(0).arg(0).ignore();
            Ok(Decision::Commit(transaction, ()))
        })?;
        retries += more;
        if released.is_none() {
            return Err(BenchError::Unexpected("a held lock was not released".into()));
        }
        Ok(Attempt::retried(true, retries))
    }

    fn pool_cycle(&mut self) -> Result<Attempt, BenchError> {
        let target = &self.common.target;
        let keys = [
            target.key.clone(),
            target.sibling("leased"),
            target.sibling("leases"),
            target.sibling("fence"),
            target.sibling("retiring"),
            target.sibling("signal"),
        ];
        let [idle, leased, leases, fence, retiring, signal] = keys.each_ref().map(|key| key.as_bytes());
        let lease = LEASE.as_millis() as u64;
        // checkout: reclaim expired leases, take the member idle longest, draw a
        // fencing number — as resource_pool/checkout does, with the client's clock.
        let (checked_out, mut retries) =
            self.transact(&[idle, leased, leases, fence, retiring], |connection, mut pipe| {
                let now = now_ms();
                pipe.cmd("ZRANGE")
                    .arg(leased)
                    .arg("-inf")
                    .arg(now)
                    .arg("BYSCORE")
                    .arg("LIMIT")
                    .arg(0)
                    .arg(RECLAIM_LIMIT);
                pipe.cmd("ZRANGE").arg(idle).arg(0).arg(0);
                pipe.cmd("GET").arg(fence);
                pipe.cmd("SMEMBERS").arg(retiring);
                let (expired, oldest, number, retiring_members): CheckoutReads = pipe.query(connection)?;
                let mut transaction = redis::pipe();
                let mut reclaimed = None;
                for member in &expired {
                    transaction.cmd("ZREM").arg(leased).arg(member).ignore();
                    transaction.cmd("HDEL").arg(leases).arg(member).ignore();
                    if retiring_members.contains(member) {
                        transaction.cmd("SREM").arg(retiring).arg(member).ignore();
                    } else {
                        reclaimed.get_or_insert_with(|| member.clone());
                    }
                }
                let Some(member) = oldest.into_iter().next().or(reclaimed.clone()) else {
                    return Ok(Decision::GiveUp);
                };
                for member in expired.iter().filter(|m| !retiring_members.contains(m) && Some(*m) != Some(&member)) {
                    transaction.cmd("ZADD").arg(idle).arg(now).arg(member).ignore();
                }
                let number = number.unwrap_or(0) + 1;
                transaction.cmd("ZREM").arg(idle).arg(&member).ignore();
                transaction.cmd("SET").arg(fence).arg(number).ignore();
                transaction.cmd("ZADD").arg(leased).arg(now + lease).arg(&member).ignore();
                transaction.cmd("HSET").arg(leases).arg(&member).arg(number).ignore();
                Ok(Decision::Commit(transaction, (member, number)))
            })?;
        let Some((member, number)) = checked_out else {
            return Ok(Attempt::retried(false, retries));
        };
        self.common.hold_and_work(Holders::Member(&member))?;
        // checkin: the lease still ours → back to the idle set, one waiter signalled.
        let (checked_in, more) = self.transact(&[idle, leases, retiring], |connection, mut pipe| {
            pipe.cmd("HGET").arg(leases).arg(&member);
            pipe.cmd("SISMEMBER").arg(retiring).arg(&member);
            pipe.cmd("ZCARD").arg(idle);
            let (holder, retiring_member, idle_count): (Option<u64>, bool, u64) = pipe.query(connection)?;
            if holder != Some(number) {
                return Ok(Decision::GiveUp);
            }
            let mut transaction = redis::pipe();
            transaction.cmd("ZREM").arg(leased).arg(&member).ignore();
            transaction.cmd("HDEL").arg(leases).arg(&member).ignore();
            if retiring_member {
                transaction.cmd("SREM").arg(retiring).arg(&member).ignore();
            } else {
                transaction.cmd("ZADD").arg(idle).arg(now_ms()).arg(&member).ignore();
                transaction.cmd("LPUSH").arg(signal).arg(1).ignore();
                transaction.cmd("LTRIM").arg(signal).arg(0).arg(idle_count).ignore();
            }
            Ok(Decision::Commit(transaction, ()))
        })?;
        retries += more;
        if checked_in.is_none() {
            return Err(BenchError::Unexpected("a lease was lost".into()));
        }
        Ok(Attempt::retried(true, retries))
    }

    fn push(&mut self) -> Result<Attempt, BenchError> {
        let key = self.common.target.key.clone();
        let (settings, signal) = (self.common.target.sibling("settings"), self.common.target.sibling("signal"));
        let capacity = bounded_capacity(self.common.target.attempts);
        // bounded_queue/push: settings stored on first use (and checked), the
        // length checked against the capacity, the value pushed, a waiter signalled.
        let (pushed, retries) = self.transact(&[key.as_bytes(), settings.as_bytes()], |connection, mut pipe| {
            pipe.cmd("HMGET").arg(settings.as_bytes()).arg("capacity").arg("overflow");
            pipe.cmd("LLEN").arg(key.as_bytes());
            let ((stored_capacity, _), length): ((Option<usize>, Option<String>), usize) = pipe.query(connection)?;
            if stored_capacity.is_some_and(|stored| stored != capacity) {
                return Err(BenchError::Unexpected("the bounded queue has other settings".into()));
            }
            if length >= capacity {
                return Ok(Decision::GiveUp);
            }
            let mut transaction = redis::pipe();
            if stored_capacity.is_none() {
                transaction
                    .cmd("HSET")
                    .arg(settings.as_bytes())
                    .arg("capacity")
                    .arg(capacity)
                    .arg("overflow")
                    .arg("reject")
                    .ignore();
            }
            transaction.cmd("LPUSH").arg(key.as_bytes()).arg(VALUE).ignore();
            transaction.cmd("LPUSH").arg(signal.as_bytes()).arg(1).ignore();
            transaction.cmd("LTRIM").arg(signal.as_bytes()).arg(0).arg(length).ignore();
            Ok(Decision::Commit(transaction, ()))
        })?;
        Ok(Attempt::retried(pushed.is_some(), retries))
    }
}

impl Worker for OptimisticWorker {
    fn once(&mut self) -> Result<Attempt, BenchError> {
        match self.common.target.op {
            Operation::PriorityQueuePop => self.pop(),
            Operation::LockCycle => self.lock_cycle(),
            Operation::ResourcePoolCycle => self.pool_cycle(),
            Operation::BoundedQueuePush => self.push(),
            op => Err(BenchError::Unexpected(format!("{} has no WATCH/MULTI path", op.name()))),
        }
    }

    fn batch(&mut self, _depth: usize) -> Result<Attempt, BenchError> {
        Err(not_pipelined(self.common.target.op, Path::Optimistic))
    }
}

/// The client's clock in milliseconds since the epoch (the WATCH/MULTI baseline
/// cannot read the server's `TIME` inside its transaction; the script does).
fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |elapsed| elapsed.as_millis() as u64)
}
