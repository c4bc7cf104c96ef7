//! [`Counter`]: an integer at a string key.

use crate::call::{ScriptCall, counter};
use crate::client::Client;
use crate::error::Result;
use crate::model::{Core, Model, ModelOptions, key_commands};
use crate::op::{Executor, decode};
use crate::wire::Reply;

/// An integer counter stored as a decimal string (Python's `redisext.counter.Counter`
/// with the `Numeric` serializer: the same bytes, so either language may count).
///
/// | method | script |
/// |---|---|
/// | [`get`](Self::get) | `counter/get` (read-only) |
/// | [`incr`](Self::incr) | `counter/incr` |
///
/// ```
/// # let server = redisext::testing::RedisServer::start()?;
/// # let url = server.url();
/// use redisext::{Client, Counter};
/// let client = Client::open(&url)?; // url: "redis://127.0.0.1:6379/0"
/// let visitors = Counter::new(&client, "visitors")?;
/// assert_eq!(visitors.incr(1)?, 1);
/// assert_eq!(visitors.incr(41)?, 42);
/// assert_eq!(visitors.get()?, 42);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug)]
pub struct Counter<E: Executor = Client> {
    core: Core<E>,
}

impl<E: Executor> Counter<E> {
    /// The counter at `key` (nothing is sent; an empty key is an error).
    ///
    /// ```
    /// # let server = redisext::testing::RedisServer::start()?;
    /// # let client = redisext::Client::open(&server.url())?;
    /// use redisext::Counter;
    /// let hits = Counter::new(&client, "hits")?; // nothing sent yet
    /// assert_eq!(hits.get()?, 0);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn new(exec: &E, key: impl AsRef<[u8]>) -> Result<Self> {
        Self::with_options(exec, key, ModelOptions::default())
    }

    /// This counter on another executor (an async client, a pipeline), same key
    /// and options.
    ///
    /// ```
    /// # let server = redisext::testing::RedisServer::start()?;
    /// # let client = redisext::Client::open(&server.url())?;
    /// use redisext::Counter;
    /// let hits = Counter::new(&client, "hits")?;
    /// let pipe = client.pipeline();
    /// let slot = hits.on(&pipe).incr(5);
    /// pipe.run()?;
    /// assert_eq!(slot.take()?, 5);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn on<E2: Executor>(&self, exec: &E2) -> Counter<E2> {
        Counter { core: self.core.rebind(exec) }
    }

    /// The counter's value; 0 when the key does not exist (as `incr` counts from 0).
    ///
    /// ```
    /// # let server = redisext::testing::RedisServer::start()?;
    /// # let client = redisext::Client::open(&server.url())?;
    /// use redisext::Counter;
    /// let hits = Counter::new(&client, "hits")?;
    /// assert_eq!(hits.get()?, 0); // missing: 0 (Python: None)
    /// hits.incr(3)?;
    /// assert_eq!(hits.get()?, 3);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn get(&self) -> E::Output<i64> {
        self.core.run(counter::Get { counter: self.core.key() }.call(self.core.target()), decode_count)
    }

    /// Adds `amount` (which may be negative) and returns the new value. Overflow past
    /// `i64` is [`Error::Overflow`](crate::Error::Overflow), a stored value that is
    /// no integer [`Error::NotAnInteger`](crate::Error::NotAnInteger); either way the
    /// value is left unchanged.
    ///
    /// ```
    /// # let server = redisext::testing::RedisServer::start()?;
    /// # let client = redisext::Client::open(&server.url())?;
    /// use redisext::Counter;
    /// let hits = Counter::new(&client, "hits")?;
    /// assert_eq!(hits.incr(10)?, 10);
    /// assert_eq!(hits.incr(-4)?, 6);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn incr(&self, amount: i64) -> E::Output<i64> {
        let call = self.core.once(|ops, op| {
            counter::Incr { counter: self.core.key(), ops, amount: amount.into(), op }.call(self.core.target())
        });
        self.core.run(call, decode::int)
    }
}

fn decode_count(reply: Reply, call: &ScriptCall) -> Result<i64> {
    decode::optional_int(reply, call).map(Option::unwrap_or_default)
}

impl<E: Executor> Model for Counter<E> {
    type Executor = E;

    fn with_options(exec: &E, key: impl AsRef<[u8]>, options: ModelOptions) -> Result<Self> {
        Ok(Counter { core: Core::new(exec, key, options, "string")? })
    }
}

key_commands!(impl[E: Executor] Counter<E>);
