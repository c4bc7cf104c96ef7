//! [`ReliableQueue`]: an at-least-once work queue with visibility deadlines,
//! acknowledgements and a dead-letter list.

use std::marker::PhantomData;
use std::time::{Duration, SystemTime};

use crate::call::{ScriptCall, reliable_queue};
use crate::client::Client;
use crate::error::{Error, Result};
use crate::key::Key;
use crate::model::{Core, Model, ModelOptions, RECLAIM_LIMIT, decode_deadline, millis, server_time, signal_wait};
use crate::op::{Executor, decode, unexpected};
use crate::receipt::{Delivered, Receipt, Token};
use crate::serializer::{Raw, Serializer};
use crate::wire::Reply;

/// An at-least-once work queue: [`pop`](Self::pop) does not remove an item but
/// moves it *in flight* with a visibility deadline (server time) and returns it
/// with a [`Receipt`]; [`ack`](Self::ack) deletes it. An item whose deadline passes
/// without an ack (its consumer crashed, or was too slow) or that is
/// [`nack`](Self::nack)ed becomes ready again and is delivered once more, with its
/// delivery count; after [`max_deliveries`](Self::max_deliveries) it moves to a
/// dead-letter list instead. Expired deliveries are reclaimed inside `pop` itself
/// (up to 100 per call): no reaper process is needed.
///
/// Guarantees: an item is never delivered to a second consumer while a delivery's
/// deadline is ahead; a consumer that dies between pop and ack loses nothing.
/// **Not guaranteed:** exactly-once processing. A consumer that outlives its
/// deadline may still be working when the item is delivered again — its `ack` then
/// returns false. Make the work idempotent, or [`extend`](Self::extend) the
/// deadline while working.
///
/// | method | script |
/// |---|---|
/// | [`push`](Self::push) / [`push_many`](Self::push_many) | `reliable_queue/push` |
/// | [`push_delayed`](Self::push_delayed) / [`push_at`](Self::push_at) | `reliable_queue/push_delayed` |
/// | [`pop`](Self::pop) / [`pop_wait`](Self::pop_wait) / [`pop_with`](Self::pop_with) / [`pop_with_wait`](Self::pop_with_wait) | `reliable_queue/pop` |
/// | [`ack`](Self::ack) | `reliable_queue/ack` |
/// | [`nack`](Self::nack) | `reliable_queue/nack` |
/// | [`extend`](Self::extend) | `reliable_queue/extend` |
/// | [`counts`](Self::counts) | `reliable_queue/counts` (read-only) |
/// | [`pop_dead`](Self::pop_dead) | `reliable_queue/pop_dead` |
/// | [`clear`](Self::clear) | `compound/clear` |
/// | [`expire`](Self::expire) | `compound/expire` |
/// | [`ttl`](Self::ttl) | `compound/ttl` |
/// | [`persist`](Self::persist) | `compound/persist` |
///
/// **Delayed delivery:** [`push_delayed`](Self::push_delayed) and
/// [`push_at`](Self::push_at) keep an item in `{key}:delayed` until it is due;
/// the first pop after that moves it to the ready list (up to 100 per call,
/// earliest due first), behind the items already ready.
///
/// **Settled by a token.** Every pop carries a [`Token`] the client generates (or
/// that you pass to [`pop_with`](Self::pop_with)); the server keeps it with the
/// delivery while it is in flight, and a pop sent again with the same token
/// returns the same delivery instead of a second one. So a pop whose reply was
/// lost is safe to send again: the client does so by itself after an unknown
/// outcome. With the async client, dropping a `pop` future after it was sent may
/// leave an item in flight that nobody holds: it is delivered again once its
/// visibility deadline passes (its delivery count grown by one).
///
/// Keys: the ready ids are a list at the key itself; the siblings `{key}:items`
/// (hash id → value), `{key}:deliveries` (hash id → count), `{key}:inflight` (zset
/// id → deadline), `{key}:delayed` (zset id → due time), `{key}:tokens` (hash,
/// each delivery's token, deleted with the delivery), `{key}:ids` (the id
/// counter), `{key}:dead` (list), `{key}:foreign` (list) and `{key}:signal` (list,
/// for waiters) share its hash slot. An element of the ready list that is no id of this queue (a plain
/// `LPUSH` by another writer) does not block it: `pop` moves it, whole, to
/// `{key}:foreign` (counted in [`QueueCounts::foreign`]) and goes on.
///
/// ```
/// # let server = redisext::testing::RedisServer::start()?;
/// # let url = server.url();
/// use std::time::Duration;
/// use redisext::{Client, ReliableQueue, serializer::Str};
/// let client = Client::open(&url)?;
/// let jobs = ReliableQueue::<Str>::new(&client, "jobs")?;
/// jobs.push("resize 42.png")?;
///
/// let job = jobs.pop(Duration::from_secs(30))?.expect("one job is ready");
/// assert_eq!(job.value(), "resize 42.png");
/// assert_eq!(job.delivery(), 1);
/// assert!(jobs.pop(Duration::from_secs(30))?.is_none(), "in flight, not delivered twice");
/// assert!(jobs.ack(job.receipt())?);
/// assert_eq!(jobs.counts()?.total(), 0);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct ReliableQueue<S: Serializer = Raw, E: Executor = Client> {
    core: Core<E>,
    keys: QueueKeys,
    max_deliveries: u32,
    serializer: PhantomData<fn() -> S>,
}

/// The sibling keys of a reliable queue (the ready list is the model's own key).
#[derive(Clone, Debug)]
struct QueueKeys {
    items: Key,
    deliveries: Key,
    inflight: Key,
    ids: Key,
    dead: Key,
    foreign: Key,
    signal: Key,
    delayed: Key,
    tokens: Key,
}

/// What [`ReliableQueue::nack`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Nacked {
    /// The receipt was stale (the item was delivered again, or acknowledged):
    /// nothing changed.
    Stale,
    /// The item is ready again and is delivered next.
    Requeued,
    /// The item had been delivered the maximum number of times and moved to the
    /// dead-letter list.
    DeadLettered,
}

/// How many items a reliable queue holds in each state (see [`ReliableQueue::counts`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct QueueCounts {
    /// Items waiting to be delivered.
    pub ready: u64,
    /// Items delivered and not yet acknowledged, with the deadline ahead.
    pub in_flight: u64,
    /// Items delivered whose deadline has passed, not yet reclaimed (the next pop
    /// will).
    pub overdue: u64,
    /// Items in the dead-letter list.
    pub dead: u64,
    /// Elements `pop` found in the ready list that are no ids of this queue
    /// (another writer pushed them there) and moved, whole, to `{key}:foreign`.
    pub foreign: u64,
    /// Items pushed with a delay, not yet moved to the ready list (due or not:
    /// the next pop moves those that are due).
    pub delayed: u64,
}

impl QueueCounts {
    /// Every item not yet acknowledged nor dead: ready, delayed, in flight or
    /// overdue.
    ///
    /// ```
    /// # let server = redisext::testing::RedisServer::start()?;
    /// # let client = redisext::Client::open(&server.url())?;
    /// # use std::time::Duration;
    /// # use redisext::{ReliableQueue, serializer::Str};
    /// # let jobs = ReliableQueue::<Str>::new(&client, "jobs")?;
    /// # let visibility = Duration::from_secs(30);
    /// jobs.push_many(["a", "b"])?;
    /// jobs.pop(visibility)?;
    /// let counts = jobs.counts()?;
    /// assert_eq!((counts.ready, counts.in_flight, counts.total()), (1, 1, 2));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn total(&self) -> u64 {
        self.ready + self.delayed + self.in_flight + self.overdue
    }
}

impl<S: Serializer, E: Executor> ReliableQueue<S, E> {
    /// By default an item is dead-lettered after this many deliveries.
    pub const DEFAULT_MAX_DELIVERIES: u32 = 5;

    /// The queue at `key`, dead-lettering after
    /// [`DEFAULT_MAX_DELIVERIES`](Self::DEFAULT_MAX_DELIVERIES) deliveries (nothing
    /// is sent; an empty key, or a key with `}` but no hash tag, is an error).
    ///
    /// ```
    /// # let server = redisext::testing::RedisServer::start()?;
    /// # let client = redisext::Client::open(&server.url())?;
    /// use redisext::{ReliableQueue, serializer::Str};
    /// let jobs = ReliableQueue::<Str>::new(&client, "jobs")?;
    /// assert_eq!(jobs.counts()?.total(), 0);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn new(exec: &E, key: impl AsRef<[u8]>) -> Result<Self> {
        Self::with_options(exec, key, ModelOptions::default())
    }

    /// The same queue, dead-lettering an item after `max_deliveries` deliveries
    /// (at least 1). Clients of one queue should agree on it: each applies its own
    /// when it reclaims or nacks.
    ///
    /// ```
    /// # let server = redisext::testing::RedisServer::start()?;
    /// # let client = redisext::Client::open(&server.url())?;
    /// # use std::time::Duration;
    /// # use redisext::{ReliableQueue, serializer::Str};
    /// # let jobs = ReliableQueue::<Str>::new(&client, "jobs")?;
    /// # let visibility = Duration::from_secs(30);
    /// use redisext::Nacked;
    /// let jobs = jobs.with_max_deliveries(1)?;
    /// jobs.push("flaky")?;
    /// let delivery = jobs.pop(visibility)?.unwrap();
    /// assert_eq!(jobs.nack(delivery.receipt())?, Nacked::DeadLettered);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn with_max_deliveries(mut self, max_deliveries: u32) -> Result<Self> {
        if max_deliveries == 0 {
            return Err(Error::Config("a reliable queue needs max_deliveries of at least 1".into()));
        }
        self.max_deliveries = max_deliveries;
        Ok(self)
    }

    /// How many deliveries an item gets before it is dead-lettered.
    ///
    /// ```
    /// # let server = redisext::testing::RedisServer::start()?;
    /// # let client = redisext::Client::open(&server.url())?;
    /// # use std::time::Duration;
    /// # use redisext::{ReliableQueue, serializer::Str};
    /// # let jobs = ReliableQueue::<Str>::new(&client, "jobs")?;
    /// # let visibility = Duration::from_secs(30);
    /// assert_eq!(jobs.with_max_deliveries(3)?.max_deliveries(), 3);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn max_deliveries(&self) -> u32 {
        self.max_deliveries
    }

    /// This queue on another executor, same keys and settings.
    ///
    /// ```
    /// # let server = redisext::testing::RedisServer::start()?;
    /// # let client = redisext::Client::open(&server.url())?;
    /// # use std::time::Duration;
    /// # use redisext::{ReliableQueue, serializer::Str};
    /// # let jobs = ReliableQueue::<Str>::new(&client, "jobs")?;
    /// # let visibility = Duration::from_secs(30);
    /// let pipe = client.pipeline();
    /// let slot = jobs.on(&pipe).push("a");
    /// pipe.run()?;
    /// assert_eq!(slot.take()?, 1);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn on<E2: Executor>(&self, exec: &E2) -> ReliableQueue<S, E2> {
        ReliableQueue {
            core: self.core.rebind(exec),
            keys: self.keys.clone(),
            max_deliveries: self.max_deliveries,
            serializer: PhantomData,
        }
    }

    /// The queue's key (the ready list; the namespace included).
    ///
    /// ```
    /// # let server = redisext::testing::RedisServer::start()?;
    /// # let client = redisext::Client::open(&server.url())?;
    /// # use std::time::Duration;
    /// # use redisext::{ReliableQueue, serializer::Str};
    /// # let jobs = ReliableQueue::<Str>::new(&client, "jobs")?;
    /// # let visibility = Duration::from_secs(30);
    /// assert_eq!(jobs.key().as_bytes(), b"jobs");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn key(&self) -> &Key {
        self.core.key()
    }

    /// Adds `value` under a new id; returns the number of ready items.
    ///
    /// ```
    /// # let server = redisext::testing::RedisServer::start()?;
    /// # let client = redisext::Client::open(&server.url())?;
    /// # use std::time::Duration;
    /// # use redisext::{ReliableQueue, serializer::Str};
    /// # let jobs = ReliableQueue::<Str>::new(&client, "jobs")?;
    /// # let visibility = Duration::from_secs(30);
    /// assert_eq!(jobs.push("resize:42")?, 1); // ready items
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn push(&self, value: &S::Value) -> E::Output<u64> {
        self.push_many([value])
    }

    /// Adds every value (oldest first) at once; returns the number of ready items.
    ///
    /// ```
    /// # let server = redisext::testing::RedisServer::start()?;
    /// # let client = redisext::Client::open(&server.url())?;
    /// # use std::time::Duration;
    /// # use redisext::{ReliableQueue, serializer::Str};
    /// # let jobs = ReliableQueue::<Str>::new(&client, "jobs")?;
    /// # let visibility = Duration::from_secs(30);
    /// assert_eq!(jobs.push_many(["a", "b", "c"])?, 3);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn push_many<'v>(&self, values: impl IntoIterator<Item = &'v S::Value>) -> E::Output<u64>
    where
        S::Value: 'v,
    {
        let call = values.into_iter().map(|value| self.core.encode::<S>(value)).collect::<Result<Vec<_>>>().and_then(
            |values| {
                let QueueKeys { items, ids, signal, .. } = &self.keys;
                self.core.once(|ops, op| {
                    reliable_queue::Push { ready: self.core.key(), items, ids, signal, ops, op, values }
                        .call(self.core.target())
                })
            },
        );
        self.core.run(call, decode::count)
    }

    /// Adds `value` under a new id, delivered once `delay` has passed on the
    /// server's clock: until then it waits in `{key}:delayed` (counted in
    /// [`QueueCounts::delayed`]), and no pop delivers it. Returns when it is due,
    /// in the server's time. Waiting pops notice it within 100 ms of its due time.
    ///
    /// ```
    /// # let server = redisext::testing::RedisServer::start()?;
    /// # let client = redisext::Client::open(&server.url())?;
    /// # use std::time::Duration;
    /// # use redisext::{ReliableQueue, serializer::Str};
    /// # let jobs = ReliableQueue::<Str>::new(&client, "jobs")?;
    /// # let visibility = Duration::from_secs(30);
    /// let due = jobs.push_delayed("later", Duration::from_secs(60))?;
    /// assert!(due > std::time::SystemTime::now());
    /// assert!(jobs.pop(visibility)?.is_none()); // not due yet
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn push_delayed(&self, value: &S::Value, delay: Duration) -> E::Output<SystemTime> {
        let call = millis(delay, reliable_queue::PushDelayed::SCRIPT.name())
            .and_then(|ms| self.push_delayed_call(value, 0, ms));
        self.core.run(call, decode_due)
    }

    /// Adds `value` under a new id, delivered once `due` has passed — a point in
    /// the **server's** clock, as the deadlines this crate returns are
    /// ([`Delivered::deadline`], [`push_delayed`](Self::push_delayed)'s result), so
    /// that every client of the queue agrees on it. A time from this machine's
    /// `SystemTime::now()` is off by the difference between the two clocks; a time
    /// in the past is due at once. Returns `due` (to the millisecond). Times
    /// before the Unix epoch or more than 100 years ahead are refused.
    ///
    /// ```
    /// # let server = redisext::testing::RedisServer::start()?;
    /// # let client = redisext::Client::open(&server.url())?;
    /// # use std::time::Duration;
    /// # use redisext::{ReliableQueue, serializer::Str};
    /// # let jobs = ReliableQueue::<Str>::new(&client, "jobs")?;
    /// # let visibility = Duration::from_secs(30);
    /// let at = std::time::SystemTime::now() + Duration::from_secs(3600);
    /// jobs.push_at("in an hour", at)?;
    /// assert!(jobs.pop(visibility)?.is_none());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn push_at(&self, value: &S::Value, due: SystemTime) -> E::Output<SystemTime> {
        let op = reliable_queue::PushDelayed::SCRIPT.name();
        let call = due
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_err(|_| Error::InvalidArgument { op, reason: "the due time is before the Unix epoch".into() })
            .and_then(|since_epoch| {
                millis(since_epoch, op).map_err(|_| Error::InvalidArgument {
                    op,
                    reason: format!("the due time {due:?} is not between the Unix epoch and 100 years ahead"),
                })
            })
            .and_then(|due_ms| self.push_delayed_call(value, due_ms, 0));
        self.core.run(call, decode_due)
    }

    fn push_delayed_call(&self, value: &S::Value, due_ms: u64, delay_ms: u64) -> Result<ScriptCall> {
        let value = self.core.encode::<S>(value)?;
        let QueueKeys { items, ids, delayed, .. } = &self.keys;
        self.core.once(|ops, op| {
            reliable_queue::PushDelayed {
                ready: self.core.key(),
                items,
                ids,
                delayed,
                ops,
                due_ms: due_ms.into(),
                delay_ms: delay_ms.into(),
                value,
                op,
            }
            .call(self.core.target())
        })
    }

    /// Delivers the next item, in flight for `visibility` (server time), or `None`
    /// when nothing is ready. Overdue deliveries are reclaimed first (up to 100),
    /// and delayed items that are due join the ready list (up to 100). The pop
    /// carries a new [`Token`], so it is safe to send again (see the type's
    /// documentation).
    /// Foreign elements met on the way are set aside (up to 100 per call; with
    /// more, `None` until the next call goes on). Works on a server out of memory,
    /// so consumers can drain the queue (with [`ack`](Self::ack)).
    ///
    /// An item the serializer cannot decode is
    /// [`Error::DeliveredUndecodable`], which
    /// carries its receipt: it is in flight like any other.
    ///
    /// ```
    /// # let server = redisext::testing::RedisServer::start()?;
    /// # let client = redisext::Client::open(&server.url())?;
    /// # use std::time::Duration;
    /// # use redisext::{ReliableQueue, serializer::Str};
    /// # let jobs = ReliableQueue::<Str>::new(&client, "jobs")?;
    /// # let visibility = Duration::from_secs(30);
    /// jobs.push("a")?;
    /// let delivery = jobs.pop(visibility)?.unwrap();
    /// assert_eq!(delivery.value(), "a");
    /// assert_eq!(delivery.delivery(), 1); // first delivery
    /// jobs.ack(delivery.receipt())?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn pop(&self, visibility: Duration) -> E::Output<Option<Delivered<S::Owned>>> {
        self.pop_with(&Token::generate(), visibility)
    }

    /// Like [`pop`](Self::pop), with a token of your own (from
    /// [`Token::generate`]): sending it again, after an error that
    /// [`may have applied`](crate::Error::may_have_applied) or from another
    /// process, returns the delivery the token holds while it is in flight, or
    /// delivers an item under it when it holds none. Use a token for one pop only.
    ///
    /// ```
    /// # let server = redisext::testing::RedisServer::start()?;
    /// # let client = redisext::Client::open(&server.url())?;
    /// # use std::time::Duration;
    /// # use redisext::{ReliableQueue, serializer::Str};
    /// # let jobs = ReliableQueue::<Str>::new(&client, "jobs")?;
    /// # let visibility = Duration::from_secs(30);
    /// use redisext::Token;
    /// jobs.push("a")?;
    /// let token = Token::generate();
    /// let first = jobs.pop_with(&token, visibility)?.unwrap();
    /// let again = jobs.pop_with(&token, visibility)?.unwrap(); // a resend: the same delivery
    /// assert_eq!(first.receipt(), again.receipt());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn pop_with(&self, token: &Token, visibility: Duration) -> E::Output<Option<Delivered<S::Owned>>> {
        self.core.run(self.pop_call(token, visibility), decode_delivered::<S>)
    }

    /// Like [`pop`](Self::pop), but waits up to `timeout` for an item: woken by
    /// pushes and nacks, and checking again every 100 ms for deadlines that pass.
    /// `None` when the timeout passes first.
    ///
    /// ```
    /// # let server = redisext::testing::RedisServer::start()?;
    /// # let client = redisext::Client::open(&server.url())?;
    /// # use std::time::Duration;
    /// # use redisext::{ReliableQueue, serializer::Str};
    /// # let jobs = ReliableQueue::<Str>::new(&client, "jobs")?;
    /// # let visibility = Duration::from_secs(30);
    /// jobs.push("a")?;
    /// let delivery = jobs.pop_wait(visibility, Duration::from_secs(1))?;
    /// assert_eq!(delivery.map(|d| d.into_value()).as_deref(), Some("a"));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn pop_wait(&self, visibility: Duration, timeout: Duration) -> E::Output<Option<Delivered<S::Owned>>> {
        self.pop_with_wait(&Token::generate(), visibility, timeout)
    }

    /// [`pop_with`](Self::pop_with), waiting up to `timeout` as
    /// [`pop_wait`](Self::pop_wait) does.
    ///
    /// ```
    /// # let server = redisext::testing::RedisServer::start()?;
    /// # let client = redisext::Client::open(&server.url())?;
    /// # use std::time::Duration;
    /// # use redisext::{ReliableQueue, serializer::Str};
    /// # let jobs = ReliableQueue::<Str>::new(&client, "jobs")?;
    /// # let visibility = Duration::from_secs(30);
    /// use redisext::Token;
    /// jobs.push("a")?;
    /// let delivery = jobs.pop_with_wait(&Token::generate(), visibility, Duration::from_secs(1))?;
    /// assert!(delivery.is_some());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn pop_with_wait(
        &self,
        token: &Token,
        visibility: Duration,
        timeout: Duration,
    ) -> E::Output<Option<Delivered<S::Owned>>> {
        let wait = signal_wait(timeout, &self.keys.signal);
        self.core.run_waiting(self.pop_call(token, visibility), decode_delivered::<S>, wait)
    }

    fn pop_call(&self, token: &Token, visibility: Duration) -> Result<ScriptCall> {
        let visibility = millis(visibility, reliable_queue::Pop::SCRIPT.name())?;
        let QueueKeys { items, deliveries, inflight, dead, foreign, delayed, tokens, .. } = &self.keys;
        let call = reliable_queue::Pop {
            ready: self.core.key(),
            items,
            deliveries,
            inflight,
            dead,
            foreign,
            delayed,
            tokens,
            visibility_ms: visibility.into(),
            max_deliveries: self.max_deliveries.into(),
            limit: RECLAIM_LIMIT.into(),
            token: token.as_bytes().to_vec().into(),
        }
        .call(self.core.target())?;
        Ok(call.resendable())
    }

    /// Acknowledges a delivery: the item is deleted. False when the receipt is
    /// stale — the deadline passed and the item was reclaimed (it will be, or has
    /// been, delivered again), or it was acknowledged already (also by an earlier
    /// attempt of this same call, which the client sends again after an unknown
    /// outcome) — and then nothing changes. Works on a server out of memory.
    ///
    /// ```
    /// # let server = redisext::testing::RedisServer::start()?;
    /// # let client = redisext::Client::open(&server.url())?;
    /// # use std::time::Duration;
    /// # use redisext::{ReliableQueue, serializer::Str};
    /// # let jobs = ReliableQueue::<Str>::new(&client, "jobs")?;
    /// # let visibility = Duration::from_secs(30);
    /// jobs.push("a")?;
    /// let delivery = jobs.pop(visibility)?.unwrap();
    /// assert!(jobs.ack(delivery.receipt())?);
    /// assert!(!jobs.ack(delivery.receipt())?); // already acknowledged
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn ack(&self, receipt: &Receipt) -> E::Output<bool> {
        let QueueKeys { items, deliveries, inflight, tokens, .. } = &self.keys;
        let call = reliable_queue::Ack {
            ready: self.core.key(),
            items,
            deliveries,
            inflight,
            tokens,
            id: receipt.id.into(),
            delivery: receipt.delivery.into(),
        }
        .call(self.core.target())
        .map(ScriptCall::resendable);
        self.core.run(call, decode::flag)
    }

    /// Gives a delivery back at once: the item is delivered next (or, after
    /// [`max_deliveries`](Self::max_deliveries), dead-lettered). [`Nacked::Stale`]
    /// also when an earlier attempt of this same call applied (the client sends it
    /// again after an unknown outcome). Works on a server out of memory.
    ///
    /// ```
    /// # let server = redisext::testing::RedisServer::start()?;
    /// # let client = redisext::Client::open(&server.url())?;
    /// # use std::time::Duration;
    /// # use redisext::{ReliableQueue, serializer::Str};
    /// # let jobs = ReliableQueue::<Str>::new(&client, "jobs")?;
    /// # let visibility = Duration::from_secs(30);
    /// use redisext::Nacked;
    /// jobs.push("a")?;
    /// let delivery = jobs.pop(visibility)?.unwrap();
    /// assert_eq!(jobs.nack(delivery.receipt())?, Nacked::Requeued);
    /// assert_eq!(jobs.pop(visibility)?.unwrap().delivery(), 2); // delivered again
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn nack(&self, receipt: &Receipt) -> E::Output<Nacked> {
        let QueueKeys { items, deliveries, inflight, dead, signal, tokens, .. } = &self.keys;
        let call = reliable_queue::Nack {
            ready: self.core.key(),
            items,
            deliveries,
            inflight,
            dead,
            signal,
            tokens,
            id: receipt.id.into(),
            delivery: receipt.delivery.into(),
            max_deliveries: self.max_deliveries.into(),
        }
        .call(self.core.target())
        .map(ScriptCall::resendable);
        self.core.run(call, decode_nacked)
    }

    /// Moves a delivery's deadline to `visibility` from now (server time) and
    /// returns it; `None` when the receipt is stale (nothing changes).
    ///
    /// ```
    /// # let server = redisext::testing::RedisServer::start()?;
    /// # let client = redisext::Client::open(&server.url())?;
    /// # use std::time::Duration;
    /// # use redisext::{ReliableQueue, serializer::Str};
    /// # let jobs = ReliableQueue::<Str>::new(&client, "jobs")?;
    /// # let visibility = Duration::from_secs(30);
    /// jobs.push("a")?;
    /// let delivery = jobs.pop(Duration::from_secs(1))?.unwrap();
    /// let until = jobs.extend(delivery.receipt(), Duration::from_secs(60))?;
    /// assert!(until.is_some_and(|until| until > delivery.deadline()));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn extend(&self, receipt: &Receipt, visibility: Duration) -> E::Output<Option<SystemTime>> {
        let call = millis(visibility, reliable_queue::Extend::SCRIPT.name()).and_then(|ms| {
            let QueueKeys { deliveries, inflight, .. } = &self.keys;
            reliable_queue::Extend {
                ready: self.core.key(),
                deliveries,
                inflight,
                id: receipt.id.into(),
                delivery: receipt.delivery.into(),
                visibility_ms: ms.into(),
            }
            .call(self.core.target())
            .map(ScriptCall::resendable)
        });
        self.core.run(call, decode_deadline)
    }

    /// How many items are ready, delayed, in flight, overdue and dead, and how
    /// many foreign elements `pop` has set aside.
    ///
    /// ```
    /// # let server = redisext::testing::RedisServer::start()?;
    /// # let client = redisext::Client::open(&server.url())?;
    /// # use std::time::Duration;
    /// # use redisext::{ReliableQueue, serializer::Str};
    /// # let jobs = ReliableQueue::<Str>::new(&client, "jobs")?;
    /// # let visibility = Duration::from_secs(30);
    /// jobs.push("a")?;
    /// let counts = jobs.counts()?;
    /// assert_eq!((counts.ready, counts.in_flight, counts.overdue, counts.dead), (1, 0, 0, 0));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn counts(&self) -> E::Output<QueueCounts> {
        let QueueKeys { inflight, dead, foreign, delayed, .. } = &self.keys;
        let call = reliable_queue::Counts { ready: self.core.key(), inflight, dead, foreign, delayed }
            .call(self.core.target());
        self.core.run(call, decode_counts)
    }

    /// Takes the oldest dead letter (an item delivered
    /// [`max_deliveries`](Self::max_deliveries) times without an ack), or `None`.
    ///
    /// ```
    /// # let server = redisext::testing::RedisServer::start()?;
    /// # let client = redisext::Client::open(&server.url())?;
    /// # use std::time::Duration;
    /// # use redisext::{ReliableQueue, serializer::Str};
    /// # let jobs = ReliableQueue::<Str>::new(&client, "jobs")?;
    /// # let visibility = Duration::from_secs(30);
    /// let jobs = jobs.with_max_deliveries(1)?;
    /// jobs.push("poison")?;
    /// let delivery = jobs.pop(visibility)?.unwrap();
    /// jobs.nack(delivery.receipt())?; // dead-lettered
    /// assert_eq!(jobs.pop_dead()?.as_deref(), Some("poison"));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn pop_dead(&self) -> E::Output<Option<S::Owned>> {
        let call = self.core.once(|ops, op| {
            reliable_queue::PopDead { ready: self.core.key(), dead: &self.keys.dead, ops, op }.call(self.core.target())
        });
        self.core.run(call, decode::popped::<S>)
    }

    /// Deletes every item (ready, delayed, in flight with their tokens, dead) and
    /// the foreign elements set aside, and returns how many keys existed. The id
    /// counter is kept, so an old receipt never matches a new item.
    ///
    /// ```
    /// # let server = redisext::testing::RedisServer::start()?;
    /// # let client = redisext::Client::open(&server.url())?;
    /// # use std::time::Duration;
    /// # use redisext::{ReliableQueue, serializer::Str};
    /// # let jobs = ReliableQueue::<Str>::new(&client, "jobs")?;
    /// # let visibility = Duration::from_secs(30);
    /// jobs.push("a")?;
    /// jobs.clear()?;
    /// assert_eq!(jobs.counts()?.total(), 0);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn clear(&self) -> E::Output<u64> {
        self.core.clear(self.expiring())
    }

    /// The sibling keys that `clear` deletes and `expire` sets to expire: all but
    /// the id counter.
    fn expiring(&self) -> [&Key; 8] {
        let QueueKeys { items, deliveries, inflight, ids: _, dead, foreign, signal, delayed, tokens } = &self.keys;
        [items, deliveries, inflight, dead, foreign, signal, delayed, tokens]
    }
}

super::compound_expiry!(impl[S: Serializer, E: Executor] ReliableQueue<S, E>, "queue");

fn decode_delivered<S: Serializer>(reply: Reply, call: &ScriptCall) -> Result<Option<Delivered<S::Owned>>> {
    let mut items = match reply {
        Reply::Nil => return Ok(None),
        Reply::Array(items) => items,
        other => return Err(unexpected(&other, call)),
    };
    let checked = match items.as_slice() {
        [Reply::Int(id), Reply::Int(delivery), Reply::Int(deadline), Reply::Bulk(_)] => {
            match (u64::try_from(*id), u32::try_from(*delivery), u64::try_from(*deadline)) {
                (Ok(id @ 1..), Ok(delivery @ 1..), Ok(deadline)) => {
                    Some((Receipt { id, delivery }, server_time(deadline)))
                }
                _ => None,
            }
        }
        _ => None,
    };
    let Some((receipt, deadline)) = checked else { return Err(unexpected(&Reply::Array(items), call)) };
    let Some(Reply::Bulk(bytes)) = items.pop() else { return Err(unexpected(&Reply::Nil, call)) };
    match S::decode(&bytes) {
        Ok(value) => Ok(Some(Delivered { value, receipt, deadline })),
        // The item is in flight now: the caller needs its receipt to ack or nack it.
        Err(reason) => Err(Error::DeliveredUndecodable {
            script: call.script,
            key: call.key().display(),
            serializer: S::name(),
            reason,
            delivered: Box::new(Delivered { value: bytes, receipt, deadline }),
        }),
    }
}

fn decode_nacked(reply: Reply, call: &ScriptCall) -> Result<Nacked> {
    match reply {
        Reply::Int(0) => Ok(Nacked::Stale),
        Reply::Int(1) => Ok(Nacked::Requeued),
        Reply::Int(2) => Ok(Nacked::DeadLettered),
        other => Err(unexpected(&other, call)),
    }
}

fn decode_counts(reply: Reply, call: &ScriptCall) -> Result<QueueCounts> {
    let [ready, in_flight, overdue, dead, foreign, delayed] = decode::counts::<6>(reply, call)?;
    Ok(QueueCounts { ready, in_flight, overdue, dead, foreign, delayed })
}

/// The due time from `reliable_queue/push_delayed` ({due ms, delayed count}).
fn decode_due(reply: Reply, call: &ScriptCall) -> Result<SystemTime> {
    let [due, _delayed] = decode::counts::<2>(reply, call)?;
    Ok(server_time(due))
}

impl<S: Serializer, E: Executor> Model for ReliableQueue<S, E> {
    type Executor = E;

    fn with_options(exec: &E, key: impl AsRef<[u8]>, options: ModelOptions) -> Result<Self> {
        let core = Core::new(exec, key, options, "list")?;
        let keys = QueueKeys {
            items: core.sibling("items")?,
            deliveries: core.sibling("deliveries")?,
            inflight: core.sibling("inflight")?,
            ids: core.sibling("ids")?,
            dead: core.sibling("dead")?,
            foreign: core.sibling("foreign")?,
            signal: core.sibling("signal")?,
            delayed: core.sibling("delayed")?,
            tokens: core.sibling("tokens")?,
        };
        Ok(ReliableQueue { core, keys, max_deliveries: Self::DEFAULT_MAX_DELIVERIES, serializer: PhantomData })
    }
}

impl<S: Serializer, E: Executor> Clone for ReliableQueue<S, E> {
    fn clone(&self) -> Self {
        self.on(&self.core.exec)
    }
}

impl<S: Serializer, E: Executor + std::fmt::Debug> std::fmt::Debug for ReliableQueue<S, E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReliableQueue")
            .field("key", self.core.key())
            .field("max_deliveries", &self.max_deliveries)
            .field("serializer", &S::NAME)
            .finish()
    }
}
