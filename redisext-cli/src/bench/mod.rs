//! What atomicity costs: the library's script path measured side by side with the
//! same script sent by hand, the plain commands Python redisext sends, and
//! optimistic `WATCH`/`MULTI`/`EXEC` transactions.
//!
//! One engine serves both `cargo bench` (benches/paths.rs) and `redisext bench`.
//! For each operation and each way of measuring it ([`Mode`]), it runs every
//! [`Path`] in turn, round after round (A, B, C, D, B, C, D, A, …), so that all
//! paths share the machine's noise, and reports each ratio as the median of the
//! ratios of single rounds. Invariants are checked all along: a lock or pool
//! member held twice at once, an item popped twice, a queue over its capacity.
//!
//! ```no_run
//! use redisext_cli::bench::{self, Settings};
//! let dsn = "redis://127.0.0.1:6379/0".parse()?;
//! let report = bench::run(&dsn, &Settings::quick(), &mut |progress| eprintln!("{progress}"))?;
//! print!("{}", report.tables());
//! std::fs::write("bench.svg", report.svg())?;
//! std::fs::write("bench.json", report.json().to_string())?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Every key the run creates starts with `{redisext-bench:<run id>}:`, and all of
//! them are deleted at the end (also after an error). The bundled scripts the run
//! uses stay loaded in the server's script cache, as after any use of the library.

mod ceiling;
mod environment;
mod measure;
mod ops;
mod progress;
mod report;

use std::fmt;
use std::time::{SystemTime, UNIX_EPOCH};

pub use environment::Environment;
pub use progress::ProgressBar;
pub use report::{Ceiling, CeilingRun, Ratio, Report, Summary, Table, Target};

use redisext::Client;
use redisext::Key;
use redisext::backend::RedisBackend;
use redisext::connection::{Dsn, Reuse, Timeouts};

/// An operation measured.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum Operation {
    /// `Counter::incr(1)`.
    CounterIncr,
    /// `Map::get` of a 16-byte value.
    MapGet,
    /// `Map::set` of a 16-byte value.
    MapSet,
    /// `PriorityQueue::push`, cycling through 1000 items.
    PriorityQueuePush,
    /// `PriorityQueue::pop` from a queue filled with one item per attempt.
    PriorityQueuePop,
    /// `Lock::acquire`, then (when taken) one round trip of work while holding it,
    /// then `Lock::release`. Done when the lock was taken and released; contended
    /// clients try again at once until each has done its share.
    LockCycle,
    /// `ResourcePool::checkout` from a pool of 4 members, one round trip of work
    /// while holding the member, then `ResourcePool::checkin`. Done when a member
    /// was leased and returned; contended clients try again at once until each has
    /// done its share.
    ResourcePoolCycle,
    /// `BoundedQueue::push` (overflow: reject) into a queue whose capacity is nine
    /// tenths of the measurement's attempts: it fills up during the run. Done when
    /// the push was accepted.
    BoundedQueuePush,
}

impl Operation {
    /// Every operation, in the order reports list them.
    pub const ALL: [Operation; 8] = [
        Operation::CounterIncr,
        Operation::MapGet,
        Operation::MapSet,
        Operation::PriorityQueuePush,
        Operation::PriorityQueuePop,
        Operation::LockCycle,
        Operation::ResourcePoolCycle,
        Operation::BoundedQueuePush,
    ];

    /// The name used in tables, JSON and `--only`.
    pub fn name(self) -> &'static str {
        match self {
            Operation::CounterIncr => "counter.incr",
            Operation::MapGet => "map.get",
            Operation::MapSet => "map.set",
            Operation::PriorityQueuePush => "priority_queue.push",
            Operation::PriorityQueuePop => "priority_queue.pop",
            Operation::LockCycle => "lock.acquire_release",
            Operation::ResourcePoolCycle => "resource_pool.checkout_checkin",
            Operation::BoundedQueuePush => "bounded_queue.push",
        }
    }

    /// The operation called `name`.
    pub fn from_name(name: &str) -> Option<Operation> {
        Operation::ALL.into_iter().find(|op| op.name() == name)
    }

    /// True for operations Python redisext does in several commands or that need
    /// a check and a write at once: they get a WATCH/MULTI/EXEC baseline.
    pub fn is_compound(self) -> bool {
        matches!(
            self,
            Operation::PriorityQueuePop
                | Operation::LockCycle
                | Operation::ResourcePoolCycle
                | Operation::BoundedQueuePush
        )
    }

    /// True for the cycles (lock, pool): with several clients, each client retries a
    /// failed attempt at once until it has done its share, as a worker that must
    /// take the lock that many times would; the others stop after their attempts.
    pub fn retries_until_done(self) -> bool {
        matches!(self, Operation::LockCycle | Operation::ResourcePoolCycle)
    }

    /// The paths this operation is measured on.
    pub fn paths(self) -> &'static [Path] {
        if self.is_compound() { &Path::ALL } else { &Path::ALL[..3] }
    }

    /// True when `path` can send several attempts of this operation in one round
    /// trip: never when an attempt needs the reply of its own first command (a
    /// release needs the token acquire returned; Python's pop needs the item it
    /// read before removing it; a transaction needs its read).
    pub fn pipelines(self, path: Path) -> bool {
        let one_call = !matches!(self, Operation::LockCycle | Operation::ResourcePoolCycle);
        match path {
            Path::Library | Path::Evalsha => one_call,
            Path::Plain => one_call && !matches!(self, Operation::PriorityQueuePop | Operation::BoundedQueuePush),
            Path::Optimistic => false,
        }
    }

    /// What `path` sends for one attempt, for people reading a report.
    pub fn commands(self, path: Path) -> &'static str {
        match (self, path) {
            (Operation::CounterIncr, Path::Plain) => "INCRBY",
            (Operation::MapGet, Path::Plain) => "GET",
            (Operation::MapSet, Path::Plain) => "SET",
            (Operation::PriorityQueuePush, Path::Plain) => "ZADD",
            (Operation::PriorityQueuePop, Path::Plain) => "ZRANGEBYSCORE LIMIT 0 1; ZREM",
            (Operation::PriorityQueuePop, Path::Optimistic) => "WATCH+ZRANGE; MULTI ZREM EXEC",
            (Operation::LockCycle, Path::Plain) => "EXISTS; SET; EXPIRE; (work); DEL",
            (Operation::LockCycle, Path::Optimistic) => {
                "WATCH+EXISTS; MULTI SET PX, INCR fence EXEC; (work); WATCH+GET; MULTI DEL EXEC"
            }
            (Operation::ResourcePoolCycle, Path::Plain) => "SPOP; (work); SADD",
            (Operation::ResourcePoolCycle, Path::Optimistic) => {
                "WATCH+reads; MULTI ZREM, SET fence, ZADD, HSET EXEC; (work); WATCH+reads; MULTI ZREM, HDEL, ZADD, LPUSH, LTRIM EXEC"
            }
            (Operation::BoundedQueuePush, Path::Plain) => "LLEN; LPUSH",
            (Operation::BoundedQueuePush, Path::Optimistic) => "WATCH+HMGET+LLEN; MULTI LPUSH, LPUSH, LTRIM EXEC",
            (Operation::LockCycle, _) => "EVALSHA lock/acquire; (work); EVALSHA lock/release",
            (Operation::ResourcePoolCycle, _) => {
                "EVALSHA resource_pool/checkout; (work); EVALSHA resource_pool/checkin"
            }
            (Operation::CounterIncr, _) => "EVALSHA counter/incr",
            (Operation::MapGet, _) => "EVALSHA_RO map/get",
            (Operation::MapSet, _) => "EVALSHA map/set",
            (Operation::PriorityQueuePush, _) => "EVALSHA priority_queue/push",
            (Operation::PriorityQueuePop, _) => "EVALSHA priority_queue/pop",
            (Operation::BoundedQueuePush, _) => "EVALSHA bounded_queue/push",
        }
    }
}

impl fmt::Display for Operation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A way of running an operation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum Path {
    /// The library: the model's method on a [`Client`] (one connection per client),
    /// or on a [`Pipeline`](redisext::Pipeline) when pipelined.
    Library,
    /// The same bundled script sent by hand with the `redis` crate: `EVALSHA` with
    /// the SHA1 of [`script::find`](redisext::script::find), loaded beforehand.
    Evalsha,
    /// The plain commands Python redisext 2.0.2 sends for the operation.
    Plain,
    /// An optimistic transaction: reads under `WATCH`, then `MULTI` … `EXEC`,
    /// retried while `EXEC` aborts (compound operations only).
    Optimistic,
}

impl Path {
    /// Every path, in the order reports list them.
    pub const ALL: [Path; 4] = [Path::Library, Path::Evalsha, Path::Plain, Path::Optimistic];

    /// The name used in tables and JSON.
    pub fn name(self) -> &'static str {
        match self {
            Path::Library => "library",
            Path::Evalsha => "evalsha",
            Path::Plain => "plain",
            Path::Optimistic => "watch_multi",
        }
    }

    /// True for the paths that run the bundled scripts: they must never break an
    /// invariant.
    pub fn runs_scripts(self) -> bool {
        matches!(self, Path::Library | Path::Evalsha)
    }
}

impl fmt::Display for Path {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// How an operation is measured.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum Mode {
    /// One client, one attempt at a time, each timed: p50, p99 and throughput.
    Latency,
    /// One client sending this many attempts per round trip.
    Pipelined(usize),
    /// This many clients at once on the same keys, each on a thread of its own
    /// with connections of its own: successful operations per second.
    Contended(usize),
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Mode::Latency => f.write_str("single client"),
            Mode::Pipelined(depth) => write!(f, "pipelined, depth {depth}"),
            Mode::Contended(1) => f.write_str("1 client"),
            Mode::Contended(clients) => write!(f, "{clients} clients"),
        }
    }
}

/// How much to measure.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct Settings {
    /// Rounds: each runs every path once per operation and mode.
    pub rounds: usize,
    /// Timed attempts per path and round in [`Mode::Latency`].
    pub latency_attempts: usize,
    /// Attempts per path and round in [`Mode::Pipelined`].
    pub pipelined_attempts: usize,
    /// Attempts of all clients together per path and round in [`Mode::Contended`].
    /// The lock and pool cycles, which retry until done, complete a sixteenth of
    /// this many cycles.
    pub contended_attempts: usize,
    /// Pipeline depths.
    pub depths: Vec<usize>,
    /// Client counts for the contended runs.
    pub clients: Vec<usize>,
    /// The operations to measure.
    pub operations: Vec<Operation>,
    /// Requests per `redis-benchmark` run for the server's ceiling (one run per
    /// round in each `counter.incr` cell it bounds); 0 skips it.
    pub ceiling_requests: usize,
}

impl Default for Settings {
    /// A few minutes on a two-core machine with the server on it.
    fn default() -> Settings {
        Settings {
            rounds: 5,
            latency_attempts: 2000,
            pipelined_attempts: 6400,
            contended_attempts: 3200,
            depths: vec![1, 16, 64],
            clients: vec![1, 4, 16, 64],
            operations: Operation::ALL.to_vec(),
            ceiling_requests: 100_000,
        }
    }
}

impl Settings {
    /// A run of a few seconds that still goes through every operation, path and
    /// mode once: for tests and for trying the tool. Its figures mean little.
    pub fn quick() -> Settings {
        Settings {
            rounds: 1,
            latency_attempts: 40,
            pipelined_attempts: 128,
            contended_attempts: 128,
            ceiling_requests: 2000,
            ..Settings::default()
        }
    }

    /// Every attempt count multiplied by `factor` (rounds unchanged): longer runs
    /// give steadier figures.
    pub fn scaled(mut self, factor: f64) -> Settings {
        let scale = |count: usize| ((count as f64 * factor).round() as usize).max(1);
        self.latency_attempts = scale(self.latency_attempts);
        self.pipelined_attempts = scale(self.pipelined_attempts);
        self.contended_attempts = scale(self.contended_attempts);
        self.ceiling_requests = if self.ceiling_requests == 0 { 0 } else { scale(self.ceiling_requests) };
        self
    }

    /// Refuses settings that cannot be run.
    pub fn check(&self) -> Result<(), BenchError> {
        let refuse = |reason: &str| Err(BenchError::Settings(reason.to_owned()));
        if self.rounds == 0 {
            return refuse("at least one round is needed");
        }
        if self.operations.is_empty() {
            return refuse("no operation to measure");
        }
        if self.latency_attempts == 0 || self.pipelined_attempts == 0 || self.contended_attempts == 0 {
            return refuse("attempt counts must be at least 1");
        }
        if self.depths.contains(&0) || self.clients.contains(&0) {
            return refuse("depths and client counts must be at least 1");
        }
        if self.clients.iter().any(|&clients| clients > 1024) {
            return refuse("at most 1024 clients (each is a thread with its own connections)");
        }
        Ok(())
    }

    /// Every (operation, mode) measured, in order.
    fn cells(&self) -> Vec<(Operation, Mode)> {
        let mut cells = Vec::new();
        for &op in &self.operations {
            cells.push((op, Mode::Latency));
            if op.paths().iter().any(|&path| op.pipelines(path)) {
                cells.extend(self.depths.iter().map(|&depth| (op, Mode::Pipelined(depth))));
            }
            cells.extend(self.clients.iter().map(|&clients| (op, Mode::Contended(clients))));
        }
        cells
    }

    /// The paths measured in `mode` for `op`.
    fn paths(op: Operation, mode: Mode) -> Vec<Path> {
        op.paths().iter().copied().filter(|&path| !matches!(mode, Mode::Pipelined(_)) || op.pipelines(path)).collect()
    }

    /// How many attempts one measurement of `op` in `mode` makes (all clients
    /// together); for contended lock and pool cycles, how many cycles they complete.
    fn attempts(&self, op: Operation, mode: Mode) -> usize {
        match mode {
            Mode::Latency => self.latency_attempts,
            Mode::Pipelined(depth) => self.pipelined_attempts.div_ceil(depth) * depth,
            Mode::Contended(clients) if op.retries_until_done() => {
                (self.contended_attempts / CYCLE_SHARE / clients).max(1) * clients
            }
            Mode::Contended(clients) => (self.contended_attempts / clients).max(1) * clients,
        }
    }
}

/// Contended lock and pool cycles complete this fraction of
/// [`Settings::contended_attempts`]: under contention each cycle takes many
/// attempts (64 clients spinning on one lock manage a few hundred cycles a second
/// on two cores).
const CYCLE_SHARE: usize = 16;

/// Why a benchmark could not run to the end.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BenchError {
    /// The settings cannot be run.
    #[error("invalid benchmark settings: {0}")]
    Settings(String),
    /// The server could not be reached.
    #[error("cannot reach the server: {0}")]
    Connection(String),
    /// The server refused a command, or answered what no path expects.
    #[error("{0}")]
    Unexpected(String),
    /// A library operation failed.
    #[error(transparent)]
    Library(#[from] redisext::Error),
}

impl BenchError {
    /// True when the server could not be reached (as opposed to refusing a command).
    pub fn is_connection(&self) -> bool {
        match self {
            BenchError::Connection(_) => true,
            BenchError::Library(error) => matches!(error, redisext::Error::Connection { .. }),
            _ => false,
        }
    }
}

impl From<redis::RedisError> for BenchError {
    fn from(error: redis::RedisError) -> BenchError {
        if error.is_io_error() || error.is_connection_refusal() || error.is_connection_dropped() {
            BenchError::Connection(error.to_string())
        } else {
            BenchError::Unexpected(error.to_string())
        }
    }
}

/// Where a run is: reported before each measurement.
#[derive(Clone, Debug)]
pub struct Progress {
    /// Measurements done so far.
    pub done: usize,
    /// Measurements in the whole run.
    pub total: usize,
    /// The measurement about to start (`lock.acquire_release, 16 clients, round 2/5, watch_multi`).
    pub step: String,
}

impl fmt::Display for Progress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let width = self.total.to_string().len();
        write!(f, "[{:>width$}/{}] {}", self.done, self.total, self.step)
    }
}

/// Runs the benchmark against the server at `dsn` and reports. `progress` is
/// called before every measurement. The keys it made are deleted before it
/// returns, also after an error.
pub fn run(dsn: &Dsn, settings: &Settings, progress: &mut dyn FnMut(&Progress)) -> Result<Report, BenchError> {
    settings.check()?;
    let run_id =
        SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos()) ^ u128::from(std::process::id());
    let prefix = format!("{{redisext-bench:{:x}}}:", run_id & 0xffff_ffff_ffff);
    let mut setup = redisext::backend::redis_client(dsn)?.get_connection()?;
    let environment = Environment::read(&mut setup, dsn)?;
    let ceiling = if settings.ceiling_requests == 0 {
        Err("not asked for".to_owned())
    } else {
        ceiling::Runner::new(dsn, settings, &prefix)
    };
    let outcome = measure::all(dsn, settings, &prefix, &mut setup, ceiling, progress);
    let cleaned = delete_run_keys(&mut setup, &prefix);
    let (measured, ceiling) = outcome?;
    cleaned?;
    Ok(Report::new(environment, settings.clone(), measured, ceiling))
}

/// The library client for setting keys up: a connection of its own.
fn setup_client(dsn: &Dsn) -> Result<Client, BenchError> {
    Ok(Client::with_backend(RedisBackend::new(dsn, None, Reuse::Lazy, Timeouts::default())?))
}

/// The key of an operation on a path in this run: a hash tag shared by all the
/// run's keys, so that sibling keys follow it and one `SCAN` finds them all.
fn base_key(prefix: &str, op: Operation, path: Path) -> Result<Key, BenchError> {
    Ok(Key::new(format!("{prefix}{}:{}", op.name(), path.name()))?)
}

/// Deletes every key of the run (`SCAN MATCH prefix*`, then `DEL`).
fn delete_run_keys(setup: &mut redis::Connection, prefix: &str) -> Result<(), BenchError> {
    let pattern = format!("{}*", prefix.replace('[', "\\[").replace('*', "\\*").replace('?', "\\?"));
    let mut cursor: u64 = 0;
    loop {
        let (next, keys): (u64, Vec<Vec<u8>>) =
            redis::cmd("SCAN").arg(cursor).arg("MATCH").arg(&pattern).arg("COUNT").arg(1000).query(setup)?;
        if !keys.is_empty() {
            redis::cmd("DEL").arg(keys).exec(setup)?;
        }
        if next == 0 {
            return Ok(());
        }
        cursor = next;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_paths_fit_the_operation() {
        for op in Operation::ALL {
            assert_eq!(Operation::from_name(op.name()), Some(op));
            assert_eq!(op.paths().contains(&Path::Optimistic), op.is_compound(), "{op}");
            for &path in op.paths() {
                assert!(!op.commands(path).is_empty());
            }
        }
        assert!(Operation::CounterIncr.pipelines(Path::Plain));
        assert!(!Operation::LockCycle.pipelines(Path::Library));
        assert!(!Operation::PriorityQueuePop.pipelines(Path::Plain));
    }

    #[test]
    fn settings_are_checked_and_attempts_fill_whole_batches() {
        assert!(Settings::default().check().is_ok());
        assert!(Settings { rounds: 0, ..Settings::quick() }.check().is_err());
        assert!(Settings { clients: vec![4, 0], ..Settings::quick() }.check().is_err());
        assert!(Settings { operations: vec![], ..Settings::quick() }.check().is_err());
        let settings = Settings { pipelined_attempts: 100, contended_attempts: 100, ..Settings::quick() };
        let incr = Operation::CounterIncr;
        assert_eq!(settings.attempts(incr, Mode::Pipelined(16)), 112);
        assert_eq!(settings.attempts(incr, Mode::Contended(64)), 64);
        assert_eq!(settings.attempts(incr, Mode::Contended(4)), 100);
        // Lock cycles: a sixteenth, at least one per client.
        assert_eq!(Settings::default().attempts(Operation::LockCycle, Mode::Contended(16)), 192);
        assert_eq!(settings.attempts(Operation::LockCycle, Mode::Contended(4)), 4);
        assert_eq!(Settings::quick().scaled(2.0).latency_attempts, 80);
        // Locks and pools cannot be pipelined: no pipelined cells for them.
        let cells = Settings { operations: vec![Operation::LockCycle], ..Settings::quick() }.cells();
        assert!(cells.iter().all(|(_, mode)| !matches!(mode, Mode::Pipelined(_))));
        assert_eq!(Settings::paths(Operation::PriorityQueuePop, Mode::Pipelined(16)), [Path::Library, Path::Evalsha]);
    }
}
