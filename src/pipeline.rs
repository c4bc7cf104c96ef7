//! Pipelines: any model operations, across models and keys, sent in one round trip
//! (per server), optionally as one MULTI/EXEC transaction.
//!
//! A [`Pipeline`] is an [`Executor`]: a model rebound to it with `on(&pipe)` queues
//! its operations instead of running them, and each queued operation gives back a
//! typed [`Slot`]. [`Pipeline::run`] (or [`run_atomic`](Pipeline::run_atomic))
//! sends the queue and fills the slots. The operations are the very ones the
//! blocking and async clients run — same scripts, keys, arguments and decoding.

use std::sync::{Arc, Mutex, MutexGuard};

use crate::batch::Outcome;
use crate::call::{Node, ScriptCall};
use crate::error::{Error, Result};
use crate::op::{Executor, Op, Wait};
use crate::wire::Reply;

/// A batch of model operations sent in one round trip, with typed results.
///
/// Cheap to clone: clones share the queue. Rebind any model to it with `on`, call
/// its methods to queue operations (each gives a [`Slot`]), then
/// [`run`](Pipeline::run) — or [`run_atomic`](Pipeline::run_atomic) for a MULTI/EXEC
/// transaction — and read the slots. A pipeline can be run again: each run sends
/// what was queued since the last one.
///
/// ```
/// # let server = redisext::testing::RedisServer::start()?;
/// # let url = server.url();
/// use redisext::{Client, Counter, Map, Slots, serializer::Str};
/// let client = Client::open(&url)?;
/// let visitors = Counter::new(&client, "visitors")?;
/// let greeting = Map::<Str>::new(&client, "greeting")?;
///
/// let pipe = client.pipeline();
/// let slots = (visitors.on(&pipe).incr(1), greeting.on(&pipe).set("hi"), visitors.on(&pipe).incr(2));
/// pipe.run()?; // one round trip
/// let (first, (), second) = slots.take()?;
/// assert_eq!((first, second), (1, 3));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// **Scripts.** Every script of the batch is loaded (`SCRIPT LOAD`) in the same round
/// trip, before the first `EVALSHA`, so a batch never depends on the server's
/// script cache. In [`run_atomic`](Pipeline::run_atomic) the loads are inside the
/// transaction, so nothing can flush them before the operations run. In a plain
/// [`run`](Pipeline::run) another client may flush the scripts between the load
/// and an operation: the operations refused with `NOSCRIPT` did not run, and when
/// they are the whole end of the batch they are sent again once, in order.
/// Otherwise run returns [`Error::BatchIncomplete`], naming which operations ran;
/// no operation is ever dropped silently or applied twice. A plain run of a single
/// operation sends no load, as a lone call does: it is loaded and sent again only
/// if the server answers `NOSCRIPT`.
///
/// **Routing.** A plain run sends each operation where the blocking client would:
/// writes to the master, reads to the replica when the client has one — one batch
/// per server, the master's first. An atomic run sends everything to the master.
///
/// **Waiting operations** (those that wait for a lock or a free member) make exactly
/// one attempt in a pipeline: their slot holds `None` when they could not proceed
/// at that moment, as if their timeout were zero. A pipeline cannot wait between
/// attempts without holding up every other operation of the batch.
pub struct Pipeline<C> {
    pub(crate) client: C,
    queue: Arc<Mutex<Vec<Entry>>>,
}

impl<C: Clone> Clone for Pipeline<C> {
    fn clone(&self) -> Self {
        Pipeline { client: self.client.clone(), queue: Arc::clone(&self.queue) }
    }
}

impl<C> std::fmt::Debug for Pipeline<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pipeline").field("queued", &self.len()).finish()
    }
}

/// Stores a call's decoded result (or error) into its slot.
type Fill = Arc<dyn FillSlot>;

/// A slot's cell: where its result lands, and how its reply is decoded. One
/// allocation per queued operation, shared by the queue and the [`Slot`].
#[derive(Debug)]
struct Cell<T> {
    /// Boxed: an error is far larger than most results, and a big pipeline holds
    /// one cell per operation.
    result: Mutex<Option<std::result::Result<T, Box<Error>>>>,
    decode: crate::op::Decoder<T>,
}

/// Fills a slot from its call's reply, whatever the slot's type.
trait FillSlot: Send + Sync {
    fn fill(&self, reply: std::result::Result<Reply, Box<Error>>, call: &ScriptCall);
}

impl<T: Send> FillSlot for Cell<T> {
    fn fill(&self, reply: std::result::Result<Reply, Box<Error>>, call: &ScriptCall) {
        *lock(&self.result) = Some(reply.and_then(|reply| (self.decode)(reply, call).map_err(Box::new)));
    }
}

/// One queued operation.
enum Entry {
    /// Ready to send.
    Queued { call: ScriptCall, fill: Fill },
    /// Building it failed; its slot already holds the error. The message says why.
    Failed { reason: String },
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding one of these locks cannot leave a half-made change:
    // every critical section is a single push or take.
    mutex.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl<C> Pipeline<C> {
    /// An empty pipeline on `client` (a [`Client`](crate::Client), or an
    /// `AsyncClient` with the `tokio` feature).
    pub fn new(client: &C) -> Pipeline<C>
    where
        C: Clone,
    {
        Pipeline { client: client.clone(), queue: Arc::new(Mutex::new(Vec::new())) }
    }

    /// How many operations are queued.
    pub fn len(&self) -> usize {
        lock(&self.queue).len()
    }

    /// True when nothing is queued.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Takes the queue for a run.
    pub(crate) fn take(&self, atomic: bool) -> Taken {
        let entries = std::mem::take(&mut *lock(&self.queue));
        // Most operations are answered: that list is sized once.
        let report = Report {
            settled: vec![false; entries.len()],
            answered: Vec::with_capacity(entries.len()),
            ..Report::default()
        };
        Taken { entries, atomic, sent: Default::default(), report: Mutex::new(report) }
    }
}

impl<C: Clone> crate::op::sealed::Sealed for Pipeline<C> {}

impl<C: Clone> Executor for Pipeline<C> {
    type Output<T: Send + 'static> = Slot<T>;

    /// Queues the operation; its result lands in the slot when the pipeline runs.
    fn execute<T: Send + 'static>(&self, op: Op<T>) -> Slot<T> {
        let cell = Arc::new(Cell { result: Mutex::new(None), decode: op.decode });
        let mut queue = lock(&self.queue);
        let index = queue.len();
        match op.call {
            Ok(call) => {
                let fill: Fill = cell.clone();
                queue.push(Entry::Queued { call, fill });
            }
            Err(error) => {
                queue.push(Entry::Failed { reason: error.to_string() });
                *lock(&cell.result) = Some(Err(Box::new(error)));
            }
        }
        Slot { index, cell }
    }

    /// Queues one attempt: the slot holds `None` when the operation could not
    /// proceed when the pipeline ran (see [`Pipeline`]).
    fn execute_waiting<T: Send + 'static>(&self, op: Op<Option<T>>, _single_attempt: Wait) -> Slot<Option<T>> {
        self.execute(op)
    }
}

/// The typed result of one queued operation, filled when its pipeline runs.
///
/// Reading it before is [`Error::PipelineNotRun`].
#[derive(Debug)]
pub struct Slot<T> {
    index: usize,
    cell: Arc<Cell<T>>,
}

impl<T> Slot<T> {
    /// The operation's position in its batch (from 0), as
    /// [`Error::BatchIncomplete`] names it.
    pub fn index(&self) -> usize {
        self.index
    }

    /// True once the pipeline has run (the slot holds a result or an error).
    pub fn is_ready(&self) -> bool {
        lock(&self.cell.result).is_some()
    }

    /// The operation's result, or its error.
    pub fn take(self) -> Result<T> {
        match lock(&self.cell.result).take() {
            Some(result) => result.map_err(|error| *error),
            None => Err(Error::PipelineNotRun { index: self.index }),
        }
    }
}

/// Slots whose results can be taken together: one [`Slot`], a tuple of up to 8
/// (nested as you like), or a `Vec` of slots of one type.
pub trait Slots {
    /// The results: `T` for a `Slot<T>`, a tuple of results for a tuple of slots,
    /// a `Vec<T>` for a `Vec<Slot<T>>`.
    type Values;
    /// Each result on its own: `Result<T>` for a `Slot<T>`, a tuple of those for a
    /// tuple of slots, a `Vec` of those for a `Vec` of slots.
    type Each;

    /// Takes every result, or the first error in order.
    ///
    /// On an error the other results are dropped. When the batch holds operations
    /// that hand you something you must not lose — a popped item, a lock token, a
    /// lease, a delivery — use [`take_each`](Self::take_each) instead.
    fn take(self) -> Result<Self::Values>;

    /// Takes every result on its own, so one operation's error never hides what
    /// the others returned.
    fn take_each(self) -> Self::Each;
}

impl<T> Slots for Slot<T> {
    type Values = T;
    type Each = Result<T>;

    fn take(self) -> Result<T> {
        Slot::take(self)
    }

    fn take_each(self) -> Result<T> {
        Slot::take(self)
    }
}

impl<S: Slots> Slots for Vec<S> {
    type Values = Vec<S::Values>;
    type Each = Vec<S::Each>;

    fn take(self) -> Result<Vec<S::Values>> {
        self.into_iter().map(Slots::take).collect()
    }

    fn take_each(self) -> Vec<S::Each> {
        self.into_iter().map(Slots::take_each).collect()
    }
}

macro_rules! tuple_slots {
    ($($name:ident),+) => {
        impl<$($name: Slots),+> Slots for ($($name,)+) {
            type Values = ($($name::Values,)+);
            type Each = ($($name::Each,)+);

            #[allow(non_snake_case, reason = "the type names double as value names")]
            fn take(self) -> Result<Self::Values> {
                let ($($name,)+) = self;
                Ok(($($name.take()?,)+))
            }

            #[allow(non_snake_case, reason = "the type names double as value names")]
            fn take_each(self) -> Self::Each {
                let ($($name,)+) = self;
                ($($name.take_each(),)+)
            }
        }
    };
}

tuple_slots!(A);
tuple_slots!(A, B);
tuple_slots!(A, B, C);
tuple_slots!(A, B, C, D);
tuple_slots!(A, B, C, D, E);
tuple_slots!(A, B, C, D, E, F);
tuple_slots!(A, B, C, D, E, F, G);
tuple_slots!(A, B, C, D, E, F, G, H);

/// The queue of one run, and what the drivers need from it.
///
/// Dropped before [`finish`](Taken::finish) — an async run whose future was
/// dropped part-way — it fills every slot it still holds with a connection error
/// saying whether the operation may have run, so that no slot claims "not run yet"
/// (which would invite running it again) for an operation that was sent.
pub(crate) struct Taken {
    entries: Vec<Entry>,
    pub(crate) atomic: bool,
    /// Set just before the first batch is sent.
    sent: std::sync::atomic::AtomicBool,
    /// What became of the operations so far, filled as each batch is answered.
    report: Mutex<Report>,
}

/// Which operations of a run were answered, surely did not run, or may have.
#[derive(Default)]
struct Report {
    answered: Vec<usize>,
    not_run: Vec<usize>,
    unknown: Vec<usize>,
    /// What happened to the first operation that did not run.
    first: Option<String>,
    /// The operations whose slot holds their outcome already.
    settled: Vec<bool>,
}

impl Drop for Taken {
    fn drop(&mut self) {
        let delivery = if self.sent.load(std::sync::atomic::Ordering::SeqCst) {
            crate::Delivery::Unknown
        } else {
            crate::Delivery::NotSent
        };
        let settled = std::mem::take(&mut lock(&self.report).settled);
        for (index, entry) in std::mem::take(&mut self.entries).into_iter().enumerate() {
            if let Entry::Queued { call, fill } = entry
                && !settled.get(index).copied().unwrap_or(false)
            {
                let error = Error::Connection {
                    script: Some(call.script),
                    key: Some(call.key().display()),
                    node: String::new(),
                    delivery,
                    source: "the pipeline's run was abandoned (its future was dropped) before it finished".into(),
                };
                fill.fill(Err(Box::new(error)), &call);
            }
        }
    }
}

impl Taken {
    /// Notes that a batch is about to be sent: from now on, abandoning the run
    /// leaves the unanswered operations' fate unknown.
    pub(crate) fn mark_sent(&self) {
        self.sent.store(true, std::sync::atomic::Ordering::SeqCst);
    }

    /// The batches to send: which server, and which entries. An atomic run is one
    /// batch on the master, or none when one of its operations failed to build.
    pub(crate) fn groups(&self, serving: impl Fn(Node) -> Node) -> Vec<(Node, Vec<&ScriptCall>, Vec<usize>)> {
        if self.atomic && self.entries.iter().any(|entry| matches!(entry, Entry::Failed { .. })) {
            return Vec::new();
        }
        let mut groups: Vec<(Node, Vec<&ScriptCall>, Vec<usize>)> = Vec::new();
        for (index, entry) in self.entries.iter().enumerate() {
            let Entry::Queued { call, .. } = entry else { continue };
            let node = if self.atomic { Node::Master } else { serving(call.node) };
            let group = match groups.iter().position(|(n, ..)| *n == node) {
                Some(group) => group,
                None => {
                    // Most runs are one batch: the first is sized for all the rest.
                    let room = if groups.is_empty() { self.entries.len() - index } else { 0 };
                    groups.push((node, Vec::with_capacity(room), Vec::with_capacity(room)));
                    groups.len() - 1
                }
            };
            let (_, calls, indices) = &mut groups[group];
            calls.push(call);
            indices.push(index);
        }
        // The master's batch first: a read routed to a replica sees at best what
        // the master had.
        groups.sort_by_key(|(node, ..)| *node != Node::Master);
        groups
    }

    /// Fills the slots of the operations at `indices` (positions in the run) with
    /// their `outcomes`, as soon as their batch is answered: no batch's outcomes
    /// are kept around for the others.
    pub(crate) fn record(&self, indices: Vec<usize>, outcomes: Vec<Outcome>) {
        let mut report = lock(&self.report);
        for (index, outcome) in indices.into_iter().zip(outcomes) {
            let Some(Entry::Queued { call, fill }) = self.entries.get(index) else { continue };
            let result = match outcome {
                Outcome::Answered(result) => {
                    report.answered.push(index);
                    result
                }
                Outcome::NotRun(error) => {
                    report.not_run.push(index);
                    report.first.get_or_insert_with(|| format!("operation #{index}: {error}"));
                    Err(error)
                }
                Outcome::Unknown(error) => {
                    report.unknown.push(index);
                    report.first.get_or_insert_with(|| format!("operation #{index}: {error}"));
                    Err(error)
                }
            };
            report.settled[index] = true;
            fill.fill(result, call);
        }
    }

    /// Fills the slots no batch answered (a transaction refused before any round
    /// trip) and tells whether every operation was answered.
    pub(crate) fn finish(mut self) -> Result<()> {
        let entries = std::mem::take(&mut self.entries);
        let mut report = std::mem::take(&mut *lock(&self.report));
        let unbuilt = entries.iter().enumerate().find_map(|(index, entry)| match entry {
            Entry::Failed { reason } => Some(format!("operation #{index} could not be built: {reason}")),
            Entry::Queued { .. } => None,
        });
        for (index, entry) in entries.into_iter().enumerate() {
            match entry {
                Entry::Failed { .. } => report.not_run.push(index),
                Entry::Queued { call, fill } if !report.settled[index] => {
                    let reason = unbuilt.clone().unwrap_or_else(|| "not sent".to_owned());
                    let error = Error::NotApplied { script: call.script, key: call.key().display(), reason };
                    report.not_run.push(index);
                    report.first.get_or_insert_with(|| format!("operation #{index}: {error}"));
                    fill.fill(Err(Box::new(error)), &call);
                }
                Entry::Queued { .. } => {}
            }
        }
        report.answered.sort_unstable();
        report.not_run.sort_unstable();
        report.unknown.sort_unstable();
        let Report { answered, not_run, unknown, first, .. } = report;
        match first.or(unbuilt) {
            Some(first) => Err(Error::BatchIncomplete { answered, not_run, unknown, first }),
            None => Ok(()),
        }
    }
}
