//! The models, and what they share: a key, options, and the key commands (expire,
//! ttl, persist, rename) of the seed models (the Lock keeps only `ttl`, since the
//! others would bypass its token; the compound models have `clear` instead).

pub mod bounded_queue;
pub mod counter;
pub mod guard;
pub mod hash_map;
pub mod lock;
pub mod map;
pub mod pool;
pub mod priority_queue;
pub mod queue;
pub mod rate_limiter;
pub mod reliable_queue;
pub mod resource_pool;
pub mod semaphore;
pub mod sorted_set;
pub mod stack;

use std::marker::PhantomData;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use crate::call::{self, Arg, Durable, Node, ScriptCall, Target};
use crate::error::{Error, Result};
use crate::key::Key;
use crate::once::OpId;
use crate::op::{Executor, Op, Wait, decode, encode};
use crate::serializer::Serializer;
use crate::wire::Reply;

/// Settings shared by every key of a model, like the class attributes of a Python
/// redisext model (`EXPIRE`, the connection's read routing) plus a namespace.
///
/// ```
/// use std::time::Duration;
/// use redisext::ModelOptions;
/// let options = ModelOptions::new()
///     .namespace("shop:")                       // keys become shop:<key>
///     .expire(Duration::from_secs(3600))        // what `expire(None)` uses
///     .read_from_master(true);                  // read-your-writes
/// ```
#[derive(Clone, Debug, Default)]
pub struct ModelOptions {
    namespace: Option<Arc<[u8]>>,
    expire: Option<Duration>,
    read_from_master: bool,
    durable: Option<Durable>,
    /// How long the server remembers a lane's last operation; `None`: off.
    exactly_once: Option<Duration>,
}

impl ModelOptions {
    /// The defaults: no namespace, no default expiry, reads from the replica when
    /// the client has one.
    ///
    /// ```
    /// # let server = redisext::testing::RedisServer::start()?;
    /// # let client = redisext::Client::open(&server.url())?;
    /// # use std::time::Duration;
    /// # use redisext::{Counter, Model, ModelOptions};
    /// let visits = Counter::with_options(&client, "visits", ModelOptions::new())?;
    /// assert_eq!(visits.key().as_bytes(), b"visits");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn new() -> ModelOptions {
        ModelOptions::default()
    }

    /// A prefix put before every key, as is (`"app:"` turns `users` into `app:users`).
    ///
    /// ```
    /// # let server = redisext::testing::RedisServer::start()?;
    /// # let client = redisext::Client::open(&server.url())?;
    /// # use std::time::Duration;
    /// # use redisext::{Counter, Model, ModelOptions};
    /// let visits = Counter::with_options(&client, "visits", ModelOptions::new().namespace("shop:"))?;
    /// assert_eq!(visits.key().as_bytes(), b"shop:visits");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn namespace(mut self, prefix: impl AsRef<[u8]>) -> ModelOptions {
        self.namespace = Some(Arc::from(prefix.as_ref()));
        self
    }

    /// The expiry `expire(None)` applies (Python's `EXPIRE` attribute).
    ///
    /// ```
    /// # let server = redisext::testing::RedisServer::start()?;
    /// # let client = redisext::Client::open(&server.url())?;
    /// # use std::time::Duration;
    /// # use redisext::{Counter, Model, ModelOptions};
    /// let options = ModelOptions::new().expire(Duration::from_secs(3600));
    /// let visits = Counter::with_options(&client, "visits", options)?;
    /// visits.incr(1)?;
    /// assert!(visits.expire(None)?); // the default: an hour
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn expire(mut self, ttl: Duration) -> ModelOptions {
        self.expire = Some(ttl);
        self
    }

    /// Read from the master even when the client has a replica, so a read always
    /// sees this client's earlier writes (Python redisext cannot do this).
    ///
    /// ```
    /// # let server = redisext::testing::RedisServer::start()?;
    /// # let client = redisext::Client::open(&server.url())?;
    /// # use std::time::Duration;
    /// # use redisext::{Counter, Model, ModelOptions};
    /// // With a replica configured, this model still reads its own writes.
    /// let visits = Counter::with_options(&client, "visits", ModelOptions::new().read_from_master(true))?;
    /// visits.incr(1)?;
    /// assert_eq!(visits.get()?, 1);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn read_from_master(mut self, yes: bool) -> ModelOptions {
        self.read_from_master = yes;
        self
    }

    /// Durable writes for this model: each write waits until `replicas` replicas
    /// acknowledged it, for up to `timeout` (see [`Durable`]); overrides the
    /// client's [`durable`](crate::ClientBuilder::durable) setting.
    ///
    /// ```
    /// # let server = redisext::testing::RedisServer::start()?;
    /// # let client = redisext::Client::open(&server.url())?;
    /// # use std::time::Duration;
    /// # use redisext::{Counter, Model, ModelOptions};
    /// # let replica = redisext::testing::RedisServer::start_replica_of(&server)?;
    /// let options = ModelOptions::new().durable(1, Duration::from_secs(1));
    /// let visits = Counter::with_options(&client, "visits", options)?;
    /// assert_eq!(visits.incr(1)?, 1); // acknowledged by 1 replica too
    /// # drop(replica);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn durable(mut self, replicas: u32, timeout: Duration) -> ModelOptions {
        self.durable = Some(Durable { replicas, timeout });
        self
    }
    /// Exactly-once mode for the model's writes that no token settles (a counter's
    /// `incr`, pushes, pops, sets): each carries an operation id, and the script
    /// returns a resent operation's first result instead of applying it twice. So
    /// the client may send such a write again after an unknown outcome (a
    /// connection lost after sending) and the caller sees a plain result.
    /// (Acquisitions — permits, leases, deliveries, locks — are settled by their
    /// token in every mode.)
    ///
    /// **What the server keeps:** beside the model's key, in the same hash slot,
    /// one hash per client process, `{key}:ops:<client id>`, with one field per
    /// *lane*: the sequence number and first result of the last operation sent on
    /// that lane. A lane serves one operation at a time, so a process uses as many
    /// lanes as it has had exactly-once operations unsettled at once (its peak
    /// concurrency: threads, tasks, operations queued in one pipeline), whatever its
    /// operation rate. The bound, per key: one hash per live client, of at most
    /// that many fields, each a result (a popped value is kept as long as its hash
    /// lives). Each operation sets the hash to expire
    /// [`EXACTLY_ONCE_WINDOW`](Self::EXACTLY_ONCE_WINDOW) after it (see
    /// [`exactly_once_window`](Self::exactly_once_window)), so a client that stops
    /// leaves nothing behind. The model's own key keeps exactly what Python
    /// redisext reads and writes.
    ///
    /// Costs: a longer script (one `HGET` before the write, an `HSET` and a
    /// `PEXPIRE` after), and a key containing `}` without a hash tag is refused
    /// (its sibling could not share its slot, see [`Key::sibling`](crate::Key::sibling)).
    ///
    /// ```
    /// # let server = redisext::testing::RedisServer::start()?;
    /// # let client = redisext::Client::open(&server.url())?;
    /// # use std::time::Duration;
    /// # use redisext::{Counter, Model, ModelOptions};
    /// let visits = Counter::with_options(&client, "visits", ModelOptions::new().exactly_once(true))?;
    /// assert_eq!(visits.incr(1)?, 1); // safe for the client to resend after a lost reply
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn exactly_once(mut self, yes: bool) -> ModelOptions {
        self.exactly_once = yes.then_some(self.exactly_once.unwrap_or(Self::EXACTLY_ONCE_WINDOW));
        self
    }

    /// Exactly-once mode (see [`exactly_once`](Self::exactly_once)), the server
    /// remembering each operation for `window` after it (at least 1 ms, at most
    /// 100 years): a resend later than that may apply again. Keep it well above
    /// the client's retry deadline.
    ///
    /// ```
    /// # let server = redisext::testing::RedisServer::start()?;
    /// # let client = redisext::Client::open(&server.url())?;
    /// # use std::time::Duration;
    /// # use redisext::{Counter, Model, ModelOptions};
    /// let options = ModelOptions::new().exactly_once_window(Duration::from_secs(60));
    /// let visits = Counter::with_options(&client, "visits", options)?;
    /// assert_eq!(visits.incr(2)?, 2);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn exactly_once_window(mut self, window: Duration) -> ModelOptions {
        self.exactly_once = Some(window);
        self
    }

    /// How long the server remembers a lane's last operation by default: 10 minutes.
    pub const EXACTLY_ONCE_WINDOW: Duration = Duration::from_secs(600);
}

/// What every model holds: its executor, its full key and its options.
#[derive(Clone, Debug)]
pub(crate) struct Core<E> {
    exec: E,
    key: Key,
    options: Arc<ModelOptions>,
    redis_type: &'static str,
}

impl<E: Executor> Core<E> {
    /// Checks the key and applies the namespace; fails before any round trip.
    pub(crate) fn new(
        exec: &E,
        key: impl AsRef<[u8]>,
        options: ModelOptions,
        redis_type: &'static str,
    ) -> Result<Core<E>> {
        let key = Key::new(key)?.in_namespace(options.namespace.as_deref())?;
        Ok(Core { exec: exec.clone(), key, options: Arc::new(options), redis_type })
    }

    pub(crate) fn key(&self) -> &Key {
        &self.key
    }

    /// The same key and options on another executor.
    pub(crate) fn rebind<E2: Executor>(&self, exec: &E2) -> Core<E2> {
        Core {
            exec: exec.clone(),
            key: self.key.clone(),
            options: Arc::clone(&self.options),
            redis_type: self.redis_type,
        }
    }

    /// Where this model's calls go, and what its key holds.
    pub(crate) fn target(&self) -> Target {
        let reads = if self.options.read_from_master { Node::Master } else { Node::Replica };
        Target { reads, redis_type: self.redis_type, durable: self.options.durable }
    }

    /// A write that exactly-once mode settles: `build` makes the call from the
    /// `ops` keys and the `op` argument its script's header names (none and an
    /// empty argument when the mode is off). In exactly-once mode the call carries
    /// a fresh operation id and is resendable.
    pub(crate) fn once(&self, build: impl FnOnce(Vec<&Key>, Arg) -> Result<ScriptCall>) -> Result<ScriptCall> {
        let Some(window) = self.options.exactly_once else { return build(Vec::new(), Arg::Word("")) };
        let ttl_ms = millis(window, "exactly_once_window")?;
        let op = OpId::next();
        let ops = self.key.sibling(&format!("ops:{}", op.client()))?;
        let call = build(vec![&ops], Arg::Bytes(op.arg(ttl_ms)))?;
        Ok(call.carrying(op))
    }

    /// `value` encoded by the model's serializer, as a script argument.
    pub(crate) fn encode<S: Serializer>(&self, value: &S::Value) -> Result<Arg> {
        encode::<S>(&self.key, value).map(Arg::Bytes)
    }

    /// Executes a call and decodes its reply.
    pub(crate) fn run<T: Send + 'static>(
        &self,
        call: Result<ScriptCall>,
        decode: fn(Reply, &ScriptCall) -> Result<T>,
    ) -> E::Output<T> {
        self.exec.execute(Op::new(call, decode))
    }

    /// Executes a call that yields `None` until it can proceed, retrying as
    /// `wait` says (see [`Executor::execute_waiting`]).
    pub(crate) fn run_waiting<T: Send + 'static>(
        &self,
        call: Result<ScriptCall>,
        decode: fn(Reply, &ScriptCall) -> Result<Option<T>>,
        wait: Wait,
    ) -> E::Output<Option<T>> {
        self.exec.execute_waiting(Op::new(call, decode), wait)
    }

    pub(crate) fn expire(&self, ttl: Option<Duration>) -> E::Output<bool> {
        let call = self
            .expiry_ms(ttl, call::key::Expire::SCRIPT)
            .and_then(|ms| call::key::Expire { key: &self.key, ttl_ms: ms.into() }.call(self.target()));
        self.run(call, decode::flag)
    }

    /// `ttl`, else the model's default expiry, in milliseconds for `script`.
    fn expiry_ms(&self, ttl: Option<Duration>, script: crate::Script) -> Result<u64> {
        match ttl.or(self.options.expire) {
            None => Err(Error::NoDefaultExpiry { key: self.key.display() }),
            Some(ttl) => millis(ttl, script.name()),
        }
    }

    pub(crate) fn ttl(&self) -> E::Output<Ttl> {
        self.run(call::key::Ttl { key: &self.key }.call(self.target()), decode_ttl)
    }

    pub(crate) fn persist(&self) -> E::Output<bool> {
        self.run(call::key::Persist { key: &self.key }.call(self.target()), decode::flag)
    }

    pub(crate) fn rename(&self, new_key: &[u8]) -> E::Output<bool> {
        let call = Key::new(new_key)
            .and_then(|new_key| new_key.in_namespace(self.options.namespace.as_deref()))
            .and_then(|new_key| call::key::Rename { key: &self.key, new_key: &new_key }.call(self.target()));
        self.run(call, decode::flag)
    }
}

/// The most expired leases or deliveries one call reclaims (`LIMIT` in the
/// `resource_pool/checkout` and `reliable_queue/pop` scripts): it bounds the work of
/// one script, and one reclaimed entry is all a call needs to proceed.
pub(crate) const RECLAIM_LIMIT: u64 = 100;

/// How long a waiting operation blocks on its signal before trying again anyway:
/// leases and deadlines that simply pass send no signal.
pub(crate) const WAIT_RECHECK: Duration = Duration::from_millis(100);

/// How a compound model's waiting operation waits: blocking on its `signal`
/// sibling, rechecking every [`WAIT_RECHECK`], for up to `timeout`.
pub(crate) fn signal_wait(timeout: Duration, signal: &Key) -> Wait {
    Wait::on_signal(timeout, signal.clone()).recheck_every(WAIT_RECHECK)
}

impl<E: Executor> Core<E> {
    /// A sibling key of this model's key, in the same hash slot (`{key}:suffix`).
    pub(crate) fn sibling(&self, suffix: &str) -> Result<Key> {
        self.key.sibling(suffix)
    }

    /// Deletes the model's key and the given sibling keys at once.
    pub(crate) fn clear<const N: usize>(&self, siblings: [&Key; N]) -> E::Output<u64> {
        let call = call::compound::Clear { key: &self.key, siblings: siblings.to_vec() }.call(self.target());
        self.run(call, decode::count)
    }

    /// Sets the time to live of the model's key and the given sibling keys at
    /// once (`ttl`, else the model's default); true when any of them exists.
    pub(crate) fn expire_all(&self, ttl: Option<Duration>, siblings: &[&Key]) -> E::Output<bool> {
        let call = self.expiry_ms(ttl, call::compound::Expire::SCRIPT).and_then(|ms| {
            call::compound::Expire { key: &self.key, siblings: siblings.to_vec(), ttl_ms: ms.into() }
                .call(self.target())
        });
        self.run(call, decode::flag)
    }

    /// The remaining time to live of the model's key and the given sibling keys:
    /// the smallest among those that exist and expire.
    pub(crate) fn ttl_all(&self, siblings: &[&Key]) -> E::Output<Ttl> {
        self.run(call::compound::Ttl { key: &self.key, siblings: siblings.to_vec() }.call(self.target()), decode_ttl)
    }

    /// Removes the expiry of the model's key and the given sibling keys; true
    /// when any had one.
    pub(crate) fn persist_all(&self, siblings: &[&Key]) -> E::Output<bool> {
        self.run(
            call::compound::Persist { key: &self.key, siblings: siblings.to_vec() }.call(self.target()),
            decode::flag,
        )
    }
}

/// Adds expire, ttl and persist to a compound model whose `fn expiring(&self) ->
/// [&Key; N]` lists its sibling keys that `clear` deletes: all of them
/// change at once, in one script, on the model's hash slot.
macro_rules! compound_expiry {
    (impl [$($generics:tt)*] $model:ty, $noun:literal) => {
        impl<$($generics)*> $model {
            #[doc = concat!("Sets the time to live of the whole ", $noun, " — its key and every")]
            /// sibling key [`clear`](Self::clear) would delete, at once in one
            /// script — to `ttl`, or with `None` the model's default
            /// ([`ModelOptions::expire`](crate::ModelOptions::expire)); with neither
            /// it is [`Error::NoDefaultExpiry`](crate::Error::NoDefaultExpiry). True
            /// when any of those keys exists. Keys that do not exist yet get no
            /// expiry when a later operation creates them: call it again after
            /// writes to keep the whole model expiring (as with any Redis key). A
            /// counter that keeps ids or fencing numbers growing is not touched, as
            /// `clear` keeps it, so that they never start over. Millisecond
            /// precision; below 1 ms or beyond 100 years is refused.
            ///
            /// ```
            /// # let server = redisext::testing::RedisServer::start()?;
            /// # let client = redisext::Client::open(&server.url())?;
            /// # use std::time::Duration;
            /// # use redisext::{Semaphore, Ttl};
            /// # let slots = Semaphore::new(&client, "slots", 2)?;
            /// // (the same on every compound model but RateLimiter)
            /// assert!(!slots.expire(Duration::from_secs(60))?); // nothing stored yet
            /// slots.acquire(Duration::from_secs(30))?;
            /// assert!(slots.expire(Duration::from_secs(60))?); // the permits and their siblings
            /// # Ok::<(), Box<dyn std::error::Error>>(())
            /// ```
            pub fn expire(&self, ttl: impl Into<Option<std::time::Duration>>) -> E::Output<bool> {
                self.core.expire_all(ttl.into(), &self.expiring())
            }

            #[doc = concat!("The remaining time to live of the ", $noun, ": the smallest among its")]
            /// keys that exist and expire (when the first part of it goes);
            /// [`Ttl::Persistent`](crate::Ttl::Persistent) when keys exist but none
            /// expires, [`Ttl::Missing`](crate::Ttl::Missing) when none exists. The
            /// keys are those of [`expire`](Self::expire).
            ///
            /// ```
            /// # let server = redisext::testing::RedisServer::start()?;
            /// # let client = redisext::Client::open(&server.url())?;
            /// # use std::time::Duration;
            /// # use redisext::{Semaphore, Ttl};
            /// # let slots = Semaphore::new(&client, "slots", 2)?;
            /// assert_eq!(slots.ttl()?, Ttl::Missing);
            /// slots.acquire(Duration::from_secs(30))?;
            /// slots.expire(Duration::from_secs(60))?;
            /// assert!(matches!(slots.ttl()?, Ttl::Expires(left) if left <= Duration::from_secs(60)));
            /// # Ok::<(), Box<dyn std::error::Error>>(())
            /// ```
            pub fn ttl(&self) -> E::Output<$crate::Ttl> {
                self.core.ttl_all(&self.expiring())
            }

            #[doc = concat!("Removes the expiry of every key of the ", $noun, " (those of")]
            /// [`expire`](Self::expire)) at once; true when any had one.
            ///
            /// ```
            /// # let server = redisext::testing::RedisServer::start()?;
            /// # let client = redisext::Client::open(&server.url())?;
            /// # use std::time::Duration;
            /// # use redisext::{Semaphore, Ttl};
            /// # let slots = Semaphore::new(&client, "slots", 2)?;
            /// slots.acquire(Duration::from_secs(30))?;
            /// slots.expire(Duration::from_secs(60))?;
            /// assert!(slots.persist()?);
            /// assert!(!slots.persist()?); // nothing expires any more
            /// # Ok::<(), Box<dyn std::error::Error>>(())
            /// ```
            pub fn persist(&self) -> E::Output<bool> {
                self.core.persist_all(&self.expiring())
            }
        }
    };
}

pub(crate) use compound_expiry;

/// Nil, or a new deadline in server milliseconds (the `extend` scripts).
pub(crate) fn decode_deadline(reply: Reply, call: &ScriptCall) -> Result<Option<SystemTime>> {
    decode::optional_count(reply, call).map(|ms| ms.map(server_time))
}

/// A point in the server's time from milliseconds since the Unix epoch.
pub(crate) fn server_time(ms: u64) -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_millis(ms)
}

/// The longest duration a script is given (leases, deadlines, expiries, rate
/// limiter bursts): 100 years. Scripts add durations to the server's time as Lua
/// numbers (doubles), exact only up to 2^53 — 285 years in microseconds — and a
/// deadline past that would be stored rounded and read back as garbage.
pub(crate) const MAX_DURATION: Duration = Duration::from_secs(100 * 365 * 24 * 3600);

/// A duration in whole milliseconds, from 1 ms (0 would delete the key at once)
/// to [`MAX_DURATION`]; anything else is refused before a round trip.
pub(crate) fn millis(duration: Duration, op: &'static str) -> Result<u64> {
    if duration > MAX_DURATION {
        return Err(Error::InvalidArgument { op, reason: format!("{duration:?} is longer than 100 years") });
    }
    match u64::try_from(duration.as_millis()) {
        Ok(0) => Err(Error::InvalidArgument { op, reason: "durations must be at least 1 ms".into() }),
        Ok(ms) => Ok(ms),
        Err(_) => Err(Error::InvalidArgument { op, reason: format!("{duration:?} is longer than 100 years") }),
    }
}

/// A key's remaining time to live.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ttl {
    /// The key does not exist.
    Missing,
    /// The key exists and has no expiry.
    Persistent,
    /// The key expires after this long (millisecond precision).
    Expires(Duration),
}

pub(crate) fn decode_ttl(reply: Reply, call: &ScriptCall) -> Result<Ttl> {
    match decode::int(reply, call)? {
        -2 => Ok(Ttl::Missing),
        -1 => Ok(Ttl::Persistent),
        ms => Ok(Ttl::Expires(Duration::from_millis(ms.max(0).unsigned_abs()))),
    }
}

/// A model that can be made for any key from an executor and options: what
/// [`ModelClass`] needs.
///
/// Models with settings that [`ModelOptions`] cannot carry and that have no
/// default — [`Semaphore`](crate::Semaphore) (permits),
/// [`BoundedQueue`](crate::BoundedQueue) (capacity, overflow),
/// [`RateLimiter`](crate::RateLimiter) (quota) — do not implement it; each has an
/// inherent `with_options(exec, key, <settings>, options)` instead, the settings
/// after the key and before the options. Settings with a default are set on the
/// model afterwards ([`ReliableQueue::with_max_deliveries`](crate::ReliableQueue::with_max_deliveries)).
pub trait Model: Sized {
    /// What the model sends its operations to.
    type Executor: Executor;

    /// The model at `key`, with `options`. Fails on an empty key, before any
    /// round trip.
    fn with_options(exec: &Self::Executor, key: impl AsRef<[u8]>, options: ModelOptions) -> Result<Self>;
}

/// A family of models sharing a client and options, optionally bound to one fixed
/// key: the Rust form of a Python redisext model class with `CONNECTION`,
/// `EXPIRE` and `KEY` attributes.
///
/// ```
/// # let server = redisext::testing::RedisServer::start()?;
/// # let url = server.url();
/// use std::time::Duration;
/// use redisext::{Client, Counter, ModelClass, ModelOptions};
/// let client = Client::open(&url)?;
/// // class Visitors(Counter): CONNECTION = …; EXPIRE = 86400
/// let visitors = ModelClass::<Counter>::new(&client)
///     .options(ModelOptions::new().expire(Duration::from_secs(86400)));
/// // class SiteVisitors(Visitors): KEY = 'site'
/// let site_visitors = visitors.clone().fixed_key("site")?;
///
/// site_visitors.instance()?.incr(1)?;                 // SiteVisitors().incr()
/// assert_eq!(visitors.at("site")?.get()?, 1);         // Visitors('site').get()
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct ModelClass<M: Model> {
    exec: M::Executor,
    options: ModelOptions,
    fixed_key: Option<Key>,
    model: PhantomData<fn() -> M>,
}

impl<M: Model> Clone for ModelClass<M> {
    fn clone(&self) -> Self {
        ModelClass {
            exec: self.exec.clone(),
            options: self.options.clone(),
            fixed_key: self.fixed_key.clone(),
            model: PhantomData,
        }
    }
}

impl<M: Model> ModelClass<M> {
    /// A class of models on `exec` with default options and no fixed key.
    ///
    /// ```
    /// # let server = redisext::testing::RedisServer::start()?;
    /// # let client = redisext::Client::open(&server.url())?;
    /// use redisext::{Counter, ModelClass};
    /// let visitors = ModelClass::<Counter>::new(&client);
    /// assert_eq!(visitors.at("site")?.get()?, 0);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn new(exec: &M::Executor) -> Self {
        ModelClass { exec: exec.clone(), options: ModelOptions::default(), fixed_key: None, model: PhantomData }
    }

    /// Replaces the options.
    ///
    /// ```
    /// # let server = redisext::testing::RedisServer::start()?;
    /// # let client = redisext::Client::open(&server.url())?;
    /// use redisext::{Counter, ModelClass, ModelOptions};
    /// let visitors = ModelClass::<Counter>::new(&client).options(ModelOptions::new().namespace("v:"));
    /// assert_eq!(visitors.at("site")?.key().as_bytes(), b"v:site");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn options(mut self, options: ModelOptions) -> Self {
        self.options = options;
        self
    }

    /// Binds the class to one key (Python's `KEY` attribute).
    ///
    /// ```
    /// # let server = redisext::testing::RedisServer::start()?;
    /// # let client = redisext::Client::open(&server.url())?;
    /// use redisext::{Counter, ModelClass};
    /// let site = ModelClass::<Counter>::new(&client).fixed_key("site")?; // Python's KEY
    /// assert_eq!(site.instance()?.incr(1)?, 1);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn fixed_key(mut self, key: impl AsRef<[u8]>) -> Result<Self> {
        self.fixed_key = Some(Key::new(key)?);
        Ok(self)
    }

    /// The model at the fixed key. Without one it is [`Error::Config`].
    ///
    /// ```
    /// # let server = redisext::testing::RedisServer::start()?;
    /// # let client = redisext::Client::open(&server.url())?;
    /// use redisext::{Counter, ModelClass};
    /// let visitors = ModelClass::<Counter>::new(&client);
    /// assert!(visitors.instance().is_err()); // no fixed key
    /// assert!(visitors.fixed_key("site")?.instance().is_ok());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn instance(&self) -> Result<M> {
        match &self.fixed_key {
            Some(key) => M::with_options(&self.exec, key.as_bytes(), self.options.clone()),
            None => Err(Error::Config("this model class has no fixed key: use `at(key)`".into())),
        }
    }

    /// The model at `key`.
    ///
    /// ```
    /// # let server = redisext::testing::RedisServer::start()?;
    /// # let client = redisext::Client::open(&server.url())?;
    /// use redisext::{Counter, ModelClass};
    /// let visitors = ModelClass::<Counter>::new(&client);
    /// visitors.at("a")?.incr(1)?;
    /// assert_eq!(visitors.at("a")?.get()?, 1);
    /// assert_eq!(visitors.at("b")?.get()?, 0);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn at(&self, key: impl AsRef<[u8]>) -> Result<M> {
        M::with_options(&self.exec, key, self.options.clone())
    }
}

/// Adds the key commands (expire, ttl, persist, rename) as inherent methods.
macro_rules! key_commands {
    (impl [$($generics:tt)*] $model:ty) => {
        impl<$($generics)*> $model {
            /// The model's full key (namespace included).
            ///
            /// ```
            /// # let server = redisext::testing::RedisServer::start()?;
            /// # let client = redisext::Client::open(&server.url())?;
            /// # use std::time::Duration;
            /// # use redisext::{Counter, ModelOptions, Model, Ttl};
            /// let visits = Counter::with_options(&client, "visits", ModelOptions::new().namespace("app:"))?;
            /// assert_eq!(visits.key().as_bytes(), b"app:visits");
            /// # Ok::<(), Box<dyn std::error::Error>>(())
            /// ```
            pub fn key(&self) -> &$crate::Key {
                self.core.key()
            }

            /// Sets the key's time to live: `ttl`, or with `None` the model's
            /// default ([`ModelOptions::expire`](crate::ModelOptions::expire)); with
            /// neither it is [`Error::NoDefaultExpiry`](crate::Error::NoDefaultExpiry).
            /// True when the key exists. Millisecond precision; below 1 ms or beyond 100
            /// years is refused.
            ///
            /// ```
            /// # let server = redisext::testing::RedisServer::start()?;
            /// # let client = redisext::Client::open(&server.url())?;
            /// # use std::time::Duration;
            /// # use redisext::{Counter, ModelOptions, Model, Ttl};
            /// let visits = Counter::new(&client, "visits")?;
            /// assert!(!visits.expire(Duration::from_secs(60))?); // no key yet
            /// visits.incr(1)?;
            /// assert!(visits.expire(Duration::from_secs(60))?);
            /// assert!(visits.expire(None).is_err()); // no default expiry in its options
            /// # Ok::<(), Box<dyn std::error::Error>>(())
            /// ```
            pub fn expire(&self, ttl: impl Into<Option<std::time::Duration>>) -> E::Output<bool> {
                self.core.expire(ttl.into())
            }

            /// The key's remaining time to live.
            ///
            /// ```
            /// # let server = redisext::testing::RedisServer::start()?;
            /// # let client = redisext::Client::open(&server.url())?;
            /// # use std::time::Duration;
            /// # use redisext::{Counter, ModelOptions, Model, Ttl};
            /// let visits = Counter::new(&client, "visits")?;
            /// assert_eq!(visits.ttl()?, Ttl::Missing);
            /// visits.incr(1)?;
            /// assert_eq!(visits.ttl()?, Ttl::Persistent);
            /// visits.expire(Duration::from_secs(60))?;
            /// assert!(matches!(visits.ttl()?, Ttl::Expires(_)));
            /// # Ok::<(), Box<dyn std::error::Error>>(())
            /// ```
            pub fn ttl(&self) -> E::Output<$crate::Ttl> {
                self.core.ttl()
            }

            /// Removes the key's expiry; true when there was one.
            ///
            /// ```
            /// # let server = redisext::testing::RedisServer::start()?;
            /// # let client = redisext::Client::open(&server.url())?;
            /// # use std::time::Duration;
            /// # use redisext::{Counter, ModelOptions, Model, Ttl};
            /// let visits = Counter::new(&client, "visits")?;
            /// visits.incr(1)?;
            /// visits.expire(Duration::from_secs(60))?;
            /// assert!(visits.persist()?);
            /// assert_eq!(visits.ttl()?, Ttl::Persistent);
            /// # Ok::<(), Box<dyn std::error::Error>>(())
            /// ```
            pub fn persist(&self) -> E::Output<bool> {
                self.core.persist()
            }

            /// Renames the key (namespace applied to `new_key`) when it exists, at
            /// once on the server; true when renamed. A value already at `new_key`
            /// is replaced. This model keeps using its old key.
            ///
            /// ```
            /// # let server = redisext::testing::RedisServer::start()?;
            /// # let client = redisext::Client::open(&server.url())?;
            /// # use std::time::Duration;
            /// # use redisext::{Counter, ModelOptions, Model, Ttl};
            /// let visits = Counter::new(&client, "visits")?;
            /// visits.incr(7)?;
            /// assert!(visits.rename("visits:old")?);
            /// assert_eq!(Counter::new(&client, "visits:old")?.get()?, 7);
            /// assert_eq!(visits.get()?, 0); // this model keeps its old key
            /// # Ok::<(), Box<dyn std::error::Error>>(())
            /// ```
            pub fn rename(&self, new_key: impl AsRef<[u8]>) -> E::Output<bool> {
                self.core.rename(new_key.as_ref())
            }
        }
    };
}

pub(crate) use key_commands;

/// What every model with a serializer has besides its operations, for a struct
/// `$model<S, E> { core: Core<E>, serializer: PhantomData<fn() -> S> }` stored as
/// the Redis type `$redis_type`: `new`, `on`, [`Model`], `Clone`, `Debug` and the
/// key commands.
macro_rules! serialized_model {
    ($model:ident, $redis_type:literal, $noun:literal) => {
        impl<S: $crate::serializer::Serializer, E: $crate::Executor> $model<S, E> {
            #[doc = concat!("The ", $noun, " at `key` (nothing is sent; an empty key is an error).")]
            ///
            /// ```
            /// # let server = redisext::testing::RedisServer::start()?;
            /// # let client = redisext::Client::open(&server.url())?;
            #[doc = concat!("use redisext::{", stringify!($model), ", serializer::Str};")]
            #[doc = concat!("let model = ", stringify!($model), "::<Str>::new(&client, \"things\")?;")]
            /// assert_eq!(model.key().as_bytes(), b"things");
            /// # Ok::<(), Box<dyn std::error::Error>>(())
            /// ```
            pub fn new(exec: &E, key: impl AsRef<[u8]>) -> $crate::Result<Self> {
                <Self as $crate::Model>::with_options(exec, key, $crate::ModelOptions::default())
            }

            #[doc = concat!("This ", $noun, " on another executor (an async client, a pipeline), same key and options.")]
            ///
            /// ```
            /// # let server = redisext::testing::RedisServer::start()?;
            /// # let client = redisext::Client::open(&server.url())?;
            #[doc = concat!("use redisext::{", stringify!($model), ", serializer::Str};")]
            #[doc = concat!("let model = ", stringify!($model), "::<Str>::new(&client, \"things\")?;")]
            /// let pipe = client.pipeline();
            /// let queued = model.on(&pipe); // the same key, on the pipeline
            /// assert_eq!(queued.key(), model.key());
            /// # Ok::<(), Box<dyn std::error::Error>>(())
            /// ```
            pub fn on<E2: $crate::Executor>(&self, exec: &E2) -> $model<S, E2> {
                $model { core: self.core.rebind(exec), serializer: std::marker::PhantomData }
            }
        }

        impl<S: $crate::serializer::Serializer, E: $crate::Executor> $crate::Model for $model<S, E> {
            type Executor = E;

            fn with_options(
                exec: &E,
                key: impl AsRef<[u8]>,
                options: $crate::ModelOptions,
            ) -> $crate::Result<Self> {
                Ok($model {
                    core: $crate::model::Core::new(exec, key, options, $redis_type)?,
                    serializer: std::marker::PhantomData,
                })
            }
        }

        impl<S: $crate::serializer::Serializer, E: $crate::Executor> Clone for $model<S, E> {
            fn clone(&self) -> Self {
                $model { core: self.core.clone(), serializer: std::marker::PhantomData }
            }
        }

        impl<S: $crate::serializer::Serializer, E: $crate::Executor> std::fmt::Debug for $model<S, E> {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.debug_struct(stringify!($model))
                    .field("key", self.core.key())
                    .field("serializer", &S::NAME)
                    .finish()
            }
        }

        $crate::model::key_commands!(impl[S: $crate::serializer::Serializer, E: $crate::Executor] $model<S, E>);
    };
}

pub(crate) use serialized_model;
