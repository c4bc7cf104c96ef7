//! [`BoundedQueue`]: a FIFO queue whose length never passes a capacity fixed at
//! creation.

use std::marker::PhantomData;
use std::time::Duration;

use crate::call::{Arg, ScriptCall, bounded_queue};
use crate::client::Client;
use crate::error::{Error, Result};
use crate::key::Key;
use crate::model::{Core, ModelOptions, signal_wait};
use crate::op::{Executor, decode, unexpected};
use crate::serializer::{Raw, Serializer};
use crate::wire::Reply;

/// What a [`BoundedQueue`] does with a push that does not fit.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Overflow {
    /// Refuse the whole push with [`Error::Full`]; nothing is added.
    Reject,
    /// Drop the oldest items to make room, and return them.
    EvictOldest,
}

impl Overflow {
    /// The policy's name as stored in the settings hash.
    fn as_str(self) -> &'static str {
        match self {
            Overflow::Reject => "reject",
            Overflow::EvictOldest => "evict",
        }
    }

    fn parse(stored: &[u8]) -> Option<Overflow> {
        match stored {
            b"reject" => Some(Overflow::Reject),
            b"evict" => Some(Overflow::EvictOldest),
            _ => None,
        }
    }
}

/// A FIFO queue with a capacity fixed when it is created: its length never passes
/// it. A push that does not fit is refused ([`Error::Full`]) or, by the policy
/// chosen at creation, evicts the oldest items and returns them.
///
/// The capacity and policy are stored in the sibling hash `{key}:settings` by the
/// first push, and a client that later opens the queue with other settings gets
/// [`Error::SettingsMismatch`] on push, so all clients enforce one bound.
/// [`push_many`](Self::push_many) is all or nothing. [`pop_wait`](Self::pop_wait)
/// blocks on a dedicated connection (on the sibling `{key}:signal`, never on the
/// queue itself) until an item arrives.
///
/// The list is laid out as Python redisext's `Queue` (newest at the head, `RPOP`
/// takes the oldest), so Python can read it; but a writer that pushes with plain
/// `LPUSH` bypasses the bound — only this model's scripts enforce it.
///
/// Not a [`Model`](crate::Model): the capacity and overflow policy are required,
/// and [`ModelOptions`] cannot carry them, so there is no
/// [`ModelClass`](crate::ModelClass) of bounded queues. As for every model with
/// required settings, [`with_options`](Self::with_options) takes them after the
/// key and before the options.
///
/// | method | script |
/// |---|---|
/// | [`push`](Self::push) / [`push_many`](Self::push_many) | `bounded_queue/push` |
/// | [`pop`](Self::pop) / [`pop_wait`](Self::pop_wait) | `bounded_queue/pop` |
/// | [`size`](Self::size) | `bounded_queue/size` (read-only) |
/// | [`stored_settings`](Self::stored_settings) | `bounded_queue/settings` (read-only) |
/// | [`clear`](Self::clear) | `compound/clear` |
/// | [`expire`](Self::expire) | `compound/expire` |
/// | [`ttl`](Self::ttl) | `compound/ttl` |
/// | [`persist`](Self::persist) | `compound/persist` |
///
/// ```
/// # let server = redisext::testing::RedisServer::start()?;
/// # let url = server.url();
/// use std::time::Duration;
/// use redisext::{BoundedQueue, Client, Error, Overflow, serializer::Str};
/// let client = Client::open(&url)?;
/// let uploads = BoundedQueue::<Str>::new(&client, "uploads", 2, Overflow::Reject)?;
/// uploads.push("a.png")?;
/// uploads.push("b.png")?;
/// assert!(matches!(uploads.push("c.png"), Err(Error::Full { .. })));
/// assert_eq!(uploads.size()?, 2);
/// assert_eq!(uploads.pop()?.as_deref(), Some("a.png"));
///
/// let recent = BoundedQueue::<Str>::new(&client, "recent", 2, Overflow::EvictOldest)?;
/// recent.push_many(["x", "y"])?;
/// assert_eq!(recent.push("z")?.as_deref(), Some("x"), "the oldest made room");
/// assert_eq!(recent.pop_wait(Duration::from_millis(100))?.as_deref(), Some("y"));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct BoundedQueue<S: Serializer = Raw, E: Executor = Client> {
    core: Core<E>,
    settings: Key,
    signal: Key,
    capacity: u64,
    overflow: Overflow,
    serializer: PhantomData<fn() -> S>,
}

impl<S: Serializer, E: Executor> BoundedQueue<S, E> {
    /// The queue at `key` holding at most `capacity` items (nothing is sent; a
    /// capacity of 0 is [`Error::Config`]).
    ///
    /// ```
    /// # let server = redisext::testing::RedisServer::start()?;
    /// # let client = redisext::Client::open(&server.url())?;
    /// use redisext::{BoundedQueue, Overflow, serializer::Str};
    /// let inbox = BoundedQueue::<Str>::new(&client, "inbox", 100, Overflow::Reject)?;
    /// assert_eq!(inbox.capacity(), 100);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn new(exec: &E, key: impl AsRef<[u8]>, capacity: u64, overflow: Overflow) -> Result<Self> {
        Self::with_options(exec, key, capacity, overflow, ModelOptions::default())
    }

    /// [`new`](Self::new) with model options (a namespace, read routing), the
    /// settings after the key as in `new`.
    ///
    /// ```
    /// # let server = redisext::testing::RedisServer::start()?;
    /// # let client = redisext::Client::open(&server.url())?;
    /// use redisext::{BoundedQueue, ModelOptions, Overflow, serializer::Str};
    /// let options = ModelOptions::new().namespace("app:");
    /// let inbox = BoundedQueue::<Str>::with_options(&client, "inbox", 100, Overflow::Reject, options)?;
    /// assert_eq!(inbox.key().as_bytes(), b"app:inbox");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn with_options(
        exec: &E,
        key: impl AsRef<[u8]>,
        capacity: u64,
        overflow: Overflow,
        options: ModelOptions,
    ) -> Result<Self> {
        if capacity == 0 {
            return Err(Error::Config("a bounded queue needs a capacity of at least 1".into()));
        }
        let core = Core::new(exec, key, options, "list")?;
        Ok(BoundedQueue {
            settings: core.sibling("settings")?,
            signal: core.sibling("signal")?,
            core,
            capacity,
            overflow,
            serializer: PhantomData,
        })
    }

    /// This queue on another executor, same keys and settings.
    ///
    /// ```
    /// # let server = redisext::testing::RedisServer::start()?;
    /// # let client = redisext::Client::open(&server.url())?;
    /// # use std::time::Duration;
    /// # use redisext::{BoundedQueue, Overflow, serializer::Str};
    /// # let inbox = BoundedQueue::<Str>::new(&client, "inbox", 2, Overflow::EvictOldest)?;
    /// let pipe = client.pipeline();
    /// let slot = inbox.on(&pipe).push("a");
    /// pipe.run()?;
    /// assert_eq!(slot.take()?, None); // nothing evicted
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn on<E2: Executor>(&self, exec: &E2) -> BoundedQueue<S, E2> {
        BoundedQueue {
            core: self.core.rebind(exec),
            settings: self.settings.clone(),
            signal: self.signal.clone(),
            capacity: self.capacity,
            overflow: self.overflow,
            serializer: PhantomData,
        }
    }

    /// The queue's key (the list; the namespace included).
    ///
    /// ```
    /// # let server = redisext::testing::RedisServer::start()?;
    /// # let client = redisext::Client::open(&server.url())?;
    /// # use std::time::Duration;
    /// # use redisext::{BoundedQueue, Overflow, serializer::Str};
    /// # let inbox = BoundedQueue::<Str>::new(&client, "inbox", 2, Overflow::EvictOldest)?;
    /// assert_eq!(inbox.key().as_bytes(), b"inbox");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn key(&self) -> &Key {
        self.core.key()
    }

    /// The capacity this client enforces (the stored one, or the push fails).
    ///
    /// ```
    /// # let server = redisext::testing::RedisServer::start()?;
    /// # let client = redisext::Client::open(&server.url())?;
    /// # use std::time::Duration;
    /// # use redisext::{BoundedQueue, Overflow, serializer::Str};
    /// # let inbox = BoundedQueue::<Str>::new(&client, "inbox", 2, Overflow::EvictOldest)?;
    /// assert_eq!(inbox.capacity(), 2);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn capacity(&self) -> u64 {
        self.capacity
    }

    /// The overflow policy this client enforces.
    ///
    /// ```
    /// # let server = redisext::testing::RedisServer::start()?;
    /// # let client = redisext::Client::open(&server.url())?;
    /// # use std::time::Duration;
    /// # use redisext::{BoundedQueue, Overflow, serializer::Str};
    /// # let inbox = BoundedQueue::<Str>::new(&client, "inbox", 2, Overflow::EvictOldest)?;
    /// assert_eq!(inbox.overflow(), Overflow::EvictOldest);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn overflow(&self) -> Overflow {
        self.overflow
    }

    /// Appends `value`. With [`Overflow::EvictOldest`] a full queue first drops its
    /// oldest item, which is returned; with [`Overflow::Reject`] a full queue is
    /// [`Error::Full`] and nothing changes. An evicted item the serializer cannot
    /// decode is [`Error::PoppedUndecodable`], with its bytes: the push happened.
    ///
    /// ```
    /// # let server = redisext::testing::RedisServer::start()?;
    /// # let client = redisext::Client::open(&server.url())?;
    /// # use std::time::Duration;
    /// # use redisext::{BoundedQueue, Overflow, serializer::Str};
    /// # let inbox = BoundedQueue::<Str>::new(&client, "inbox", 2, Overflow::EvictOldest)?;
    /// assert_eq!(inbox.push("a")?, None);
    /// assert_eq!(inbox.push("b")?, None);
    /// assert_eq!(inbox.push("c")?.as_deref(), Some("a")); // full: the oldest goes
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn push(&self, value: &S::Value) -> E::Output<Option<S::Owned>> {
        let call = self.core.encode::<S>(value).and_then(|value| self.push_call(vec![value]));
        self.core.run(call, decode_evicted_one::<S>)
    }

    /// Appends every value, oldest first, all or nothing: when they do not all fit
    /// the push is refused ([`Error::Full`]), or with [`Overflow::EvictOldest`] the
    /// oldest items are dropped to make room and returned (oldest first). More
    /// values than the capacity are always refused.
    ///
    /// ```
    /// # let server = redisext::testing::RedisServer::start()?;
    /// # let client = redisext::Client::open(&server.url())?;
    /// # use std::time::Duration;
    /// # use redisext::{BoundedQueue, Overflow, serializer::Str};
    /// # let inbox = BoundedQueue::<Str>::new(&client, "inbox", 2, Overflow::EvictOldest)?;
    /// assert!(inbox.push_many(["a", "b"])?.is_empty());
    /// assert_eq!(inbox.push_many(["c"])?, ["a"]);
    /// assert!(inbox.push_many(["x", "y", "z"]).is_err()); // more than the capacity
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn push_many<'v>(&self, values: impl IntoIterator<Item = &'v S::Value>) -> E::Output<Vec<S::Owned>>
    where
        S::Value: 'v,
    {
        let call = values
            .into_iter()
            .map(|value| self.core.encode::<S>(value))
            .collect::<Result<Vec<_>>>()
            .and_then(|values| self.push_call(values));
        self.core.run(call, decode::popped_list::<S>)
    }

    fn push_call(&self, values: Vec<Arg>) -> Result<ScriptCall> {
        self.core.once(|ops, op| {
            bounded_queue::Push {
                queue: self.core.key(),
                settings: &self.settings,
                signal: &self.signal,
                ops,
                capacity: self.capacity.into(),
                overflow: self.overflow.as_str().into(),
                op,
                values,
            }
            .call(self.core.target())
        })
    }

    /// Takes the oldest item, or `None` when the queue is empty.
    ///
    /// ```
    /// # let server = redisext::testing::RedisServer::start()?;
    /// # let client = redisext::Client::open(&server.url())?;
    /// # use std::time::Duration;
    /// # use redisext::{BoundedQueue, Overflow, serializer::Str};
    /// # let inbox = BoundedQueue::<Str>::new(&client, "inbox", 2, Overflow::EvictOldest)?;
    /// inbox.push("a")?;
    /// assert_eq!(inbox.pop()?.as_deref(), Some("a"));
    /// assert_eq!(inbox.pop()?, None);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn pop(&self) -> E::Output<Option<S::Owned>> {
        self.core.run(self.pop_call(), decode::popped::<S>)
    }

    /// Takes the oldest item, waiting up to `timeout` for one to be pushed (woken by
    /// pushes; checking again every 100 ms for writers that do not signal). `None`
    /// when the timeout passes first.
    ///
    /// ```
    /// # let server = redisext::testing::RedisServer::start()?;
    /// # let client = redisext::Client::open(&server.url())?;
    /// # use std::time::Duration;
    /// # use redisext::{BoundedQueue, Overflow, serializer::Str};
    /// # let inbox = BoundedQueue::<Str>::new(&client, "inbox", 2, Overflow::EvictOldest)?;
    /// inbox.push("a")?;
    /// assert_eq!(inbox.pop_wait(Duration::from_secs(1))?.as_deref(), Some("a"));
    /// assert_eq!(inbox.pop_wait(Duration::from_millis(50))?, None); // waited, nothing came
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn pop_wait(&self, timeout: Duration) -> E::Output<Option<S::Owned>> {
        let wait = signal_wait(timeout, &self.signal);
        self.core.run_waiting(self.pop_call(), decode::popped::<S>, wait)
    }

    fn pop_call(&self) -> Result<ScriptCall> {
        self.core.once(|ops, op| bounded_queue::Pop { queue: self.core.key(), ops, op }.call(self.core.target()))
    }

    /// The number of items.
    ///
    /// ```
    /// # let server = redisext::testing::RedisServer::start()?;
    /// # let client = redisext::Client::open(&server.url())?;
    /// # use std::time::Duration;
    /// # use redisext::{BoundedQueue, Overflow, serializer::Str};
    /// # let inbox = BoundedQueue::<Str>::new(&client, "inbox", 2, Overflow::EvictOldest)?;
    /// inbox.push("a")?;
    /// assert_eq!(inbox.size()?, 1);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn size(&self) -> E::Output<u64> {
        self.core.run(bounded_queue::Size { queue: self.core.key() }.call(self.core.target()), decode::count)
    }

    /// The capacity and policy stored by the first push, or `None` before it.
    ///
    /// ```
    /// # let server = redisext::testing::RedisServer::start()?;
    /// # let client = redisext::Client::open(&server.url())?;
    /// # use std::time::Duration;
    /// # use redisext::{BoundedQueue, Overflow, serializer::Str};
    /// # let inbox = BoundedQueue::<Str>::new(&client, "inbox", 2, Overflow::EvictOldest)?;
    /// assert_eq!(inbox.stored_settings()?, None); // stored by the first push
    /// inbox.push("a")?;
    /// assert_eq!(inbox.stored_settings()?, Some((2, Overflow::EvictOldest)));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn stored_settings(&self) -> E::Output<Option<(u64, Overflow)>> {
        let call =
            bounded_queue::Settings { queue: self.core.key(), settings: &self.settings }.call(self.core.target());
        self.core.run(call, decode_settings)
    }

    /// Deletes the queue, its stored settings and its signal; returns how many keys
    /// existed. The next push stores its client's settings anew.
    ///
    /// ```
    /// # let server = redisext::testing::RedisServer::start()?;
    /// # let client = redisext::Client::open(&server.url())?;
    /// # use std::time::Duration;
    /// # use redisext::{BoundedQueue, Overflow, serializer::Str};
    /// # let inbox = BoundedQueue::<Str>::new(&client, "inbox", 2, Overflow::EvictOldest)?;
    /// inbox.push("a")?;
    /// assert!(inbox.clear()? > 0); // keys deleted
    /// assert_eq!(inbox.size()?, 0);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn clear(&self) -> E::Output<u64> {
        self.core.clear(self.expiring())
    }

    /// The sibling keys that `clear` deletes and `expire` sets to expire: all of them.
    fn expiring(&self) -> [&Key; 2] {
        [&self.settings, &self.signal]
    }
}

super::compound_expiry!(impl[S: Serializer, E: Executor] BoundedQueue<S, E>, "queue");

fn decode_evicted_one<S: Serializer>(reply: Reply, call: &ScriptCall) -> Result<Option<S::Owned>> {
    Ok(decode::popped_list::<S>(reply, call)?.into_iter().next())
}

fn decode_settings(reply: Reply, call: &ScriptCall) -> Result<Option<(u64, Overflow)>> {
    match reply {
        Reply::Nil => Ok(None),
        Reply::Array(items) => match items.as_slice() {
            [Reply::Int(capacity), Reply::Bulk(overflow)] if *capacity > 0 => match Overflow::parse(overflow) {
                Some(overflow) => Ok(Some((capacity.unsigned_abs(), overflow))),
                None => Err(unexpected(&Reply::Array(items), call)),
            },
            _ => Err(unexpected(&Reply::Array(items), call)),
        },
        other => Err(unexpected(&other, call)),
    }
}

impl<S: Serializer, E: Executor> Clone for BoundedQueue<S, E> {
    fn clone(&self) -> Self {
        self.on(&self.core.exec)
    }
}

impl<S: Serializer, E: Executor + std::fmt::Debug> std::fmt::Debug for BoundedQueue<S, E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BoundedQueue")
            .field("key", self.core.key())
            .field("capacity", &self.capacity)
            .field("overflow", &self.overflow)
            .field("serializer", &S::NAME)
            .finish()
    }
}
