//! [`Queue`]: first in, first out.

use std::marker::PhantomData;

use crate::call::queue;
use crate::client::Client;
use crate::model::{Core, serialized_model};
use crate::op::{Executor, decode};
use crate::serializer::{Raw, Serializer};

/// A first-in, first-out queue of items encoded by the serializer `S` (Python's
/// `redisext.queue.Queue`): a Redis list whose head holds the newest item
/// (`LPUSH`) and whose tail the oldest (`RPOP`).
///
/// | method | script |
/// |---|---|
/// | [`push`](Self::push) | `queue/push` |
/// | [`pop`](Self::pop) | `queue/pop` |
/// | [`size`](Self::size) | `queue/size` (read-only) |
/// | [`items`](Self::items) | `queue/items` (read-only) |
///
/// ```
/// # let server = redisext::testing::RedisServer::start()?;
/// # let url = server.url();
/// use redisext::{Client, Queue, serializer::Str};
/// let client = Client::open(&url)?; // url: "redis://127.0.0.1:6379/0"
/// let jobs = Queue::<Str>::new(&client, "jobs")?;
/// assert_eq!(jobs.push("first")?, 1);
/// assert_eq!(jobs.push("second")?, 2);
/// assert_eq!(jobs.items()?, vec!["second".to_owned(), "first".to_owned()]); // newest first
/// assert_eq!(jobs.pop()?.as_deref(), Some("first"));
/// assert_eq!(jobs.size()?, 1);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Queue<S: Serializer = Raw, E: Executor = Client> {
    core: Core<E>,
    serializer: PhantomData<fn() -> S>,
}

impl<S: Serializer, E: Executor> Queue<S, E> {
    /// Adds `item` behind every item already queued; returns the new length.
    ///
    /// ```
    /// # let server = redisext::testing::RedisServer::start()?;
    /// # let client = redisext::Client::open(&server.url())?;
    /// # use redisext::{Queue, serializer::Str};
    /// # let jobs = Queue::<Str>::new(&client, "jobs")?;
    /// assert_eq!(jobs.push("a")?, 1); // the new length
    /// assert_eq!(jobs.push("b")?, 2);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn push(&self, item: &S::Value) -> E::Output<u64> {
        let call = self.core.encode::<S>(item).and_then(|item| {
            self.core.once(|ops, op| queue::Push { queue: self.core.key(), ops, item, op }.call(self.core.target()))
        });
        self.core.run(call, decode::count)
    }

    /// Removes and returns the oldest item; `None` when the queue is empty. Each
    /// item is handed to exactly one caller.
    ///
    /// An item the serializer cannot decode is still removed (the pop is one
    /// atomic step): the error, [`Error::PoppedUndecodable`](crate::Error::PoppedUndecodable),
    /// carries its bytes so it is not lost.
    ///
    /// ```
    /// # let server = redisext::testing::RedisServer::start()?;
    /// # let client = redisext::Client::open(&server.url())?;
    /// # use redisext::{Queue, serializer::Str};
    /// # let jobs = Queue::<Str>::new(&client, "jobs")?;
    /// jobs.push("a")?;
    /// jobs.push("b")?;
    /// assert_eq!(jobs.pop()?.as_deref(), Some("a")); // oldest first
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn pop(&self) -> E::Output<Option<S::Owned>> {
        let call = self.core.once(|ops, op| queue::Pop { queue: self.core.key(), ops, op }.call(self.core.target()));
        self.core.run(call, decode::popped::<S>)
    }

    /// The number of items queued.
    ///
    /// ```
    /// # let server = redisext::testing::RedisServer::start()?;
    /// # let client = redisext::Client::open(&server.url())?;
    /// # use redisext::{Queue, serializer::Str};
    /// # let jobs = Queue::<Str>::new(&client, "jobs")?;
    /// jobs.push("a")?;
    /// assert_eq!(jobs.size()?, 1);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn size(&self) -> E::Output<u64> {
        self.core.run(queue::Size { queue: self.core.key() }.call(self.core.target()), decode::count)
    }

    /// Every item, newest first (the order Python redisext returns), none removed.
    ///
    /// ```
    /// # let server = redisext::testing::RedisServer::start()?;
    /// # let client = redisext::Client::open(&server.url())?;
    /// # use redisext::{Queue, serializer::Str};
    /// # let jobs = Queue::<Str>::new(&client, "jobs")?;
    /// jobs.push("a")?;
    /// jobs.push("b")?;
    /// assert_eq!(jobs.items()?, ["b", "a"]); // newest first
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn items(&self) -> E::Output<Vec<S::Owned>> {
        self.core.run(queue::Items { queue: self.core.key() }.call(self.core.target()), decode::list::<S>)
    }
}

serialized_model!(Queue, "list", "queue");
