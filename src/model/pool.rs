//! [`Pool`]: an unordered set of distinct members.

use std::marker::PhantomData;

use crate::call::pool;
use crate::client::Client;
use crate::model::{Core, serialized_model};
use crate::op::{Executor, decode};
use crate::serializer::{Raw, Serializer};

/// A set of distinct members, encoded by the serializer `S` (Python's
/// `redisext.pool.Pool`, a Redis set). Members are compared by their encoded
/// bytes: with [`Json`](crate::serializer::Json), [`Str`](crate::serializer::Str)
/// and [`Numeric`](crate::serializer::Numeric) a member pushed by Python is found
/// by Rust and the reverse; with [`Pickle`](crate::serializer::Pickle) it is not
/// (the two languages pickle the same value to different bytes).
///
/// | method | script |
/// |---|---|
/// | [`push`](Self::push) | `pool/push` |
/// | [`pop`](Self::pop) | `pool/pop` |
/// | [`members`](Self::members) | `pool/members` (read-only) |
/// | [`contains`](Self::contains) | `pool/contains` (read-only) |
///
/// ```
/// # let server = redisext::testing::RedisServer::start()?;
/// # let url = server.url();
/// use redisext::{Client, Pool, serializer::Str};
/// let client = Client::open(&url)?; // url: "redis://127.0.0.1:6379/0"
/// let workers = Pool::<Str>::new(&client, "workers")?;
/// assert!(workers.push("w1")?);
/// assert!(!workers.push("w1")?, "already a member");
/// assert!(workers.contains("w1")?);
/// assert_eq!(workers.members()?, vec!["w1".to_owned()]);
/// assert_eq!(workers.pop()?.as_deref(), Some("w1"));
/// assert_eq!(workers.pop()?, None);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Pool<S: Serializer = Raw, E: Executor = Client> {
    core: Core<E>,
    serializer: PhantomData<fn() -> S>,
}

impl<S: Serializer, E: Executor> Pool<S, E> {
    /// Adds `member`; true when it is new, false when it was already there.
    ///
    /// ```
    /// # let server = redisext::testing::RedisServer::start()?;
    /// # let client = redisext::Client::open(&server.url())?;
    /// # use redisext::{Pool, serializer::Str};
    /// # let tags = Pool::<Str>::new(&client, "tags")?;
    /// assert!(tags.push("rust")?);
    /// assert!(!tags.push("rust")?); // already a member
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn push(&self, member: &S::Value) -> E::Output<bool> {
        let call = self.core.encode::<S>(member).and_then(|member| {
            self.core.once(|ops, op| pool::Push { pool: self.core.key(), ops, member, op }.call(self.core.target()))
        });
        self.core.run(call, decode::flag)
    }

    /// Removes one member chosen at random and returns it; `None` when the pool is
    /// empty. Each member is handed to exactly one caller, however many pop at once.
    ///
    /// A member the serializer cannot decode is still removed (the pop is one
    /// atomic step): the error, [`Error::PoppedUndecodable`](crate::Error::PoppedUndecodable),
    /// carries its bytes so it is not lost.
    ///
    /// ```
    /// # let server = redisext::testing::RedisServer::start()?;
    /// # let client = redisext::Client::open(&server.url())?;
    /// # use redisext::{Pool, serializer::Str};
    /// # let tags = Pool::<Str>::new(&client, "tags")?;
    /// tags.push("rust")?;
    /// assert_eq!(tags.pop()?.as_deref(), Some("rust"));
    /// assert_eq!(tags.pop()?, None);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn pop(&self) -> E::Output<Option<S::Owned>> {
        let call = self.core.once(|ops, op| pool::Pop { pool: self.core.key(), ops, op }.call(self.core.target()));
        self.core.run(call, decode::popped::<S>)
    }

    /// Every member, in no particular order (the whole set is read, as in Python).
    ///
    /// ```
    /// # let server = redisext::testing::RedisServer::start()?;
    /// # let client = redisext::Client::open(&server.url())?;
    /// # use redisext::{Pool, serializer::Str};
    /// # let tags = Pool::<Str>::new(&client, "tags")?;
    /// tags.push("a")?;
    /// tags.push("b")?;
    /// let mut all = tags.members()?;
    /// all.sort();
    /// assert_eq!(all, ["a", "b"]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn members(&self) -> E::Output<Vec<S::Owned>> {
        self.core.run(pool::Members { pool: self.core.key() }.call(self.core.target()), decode::list::<S>)
    }

    /// True when `member` is in the pool (its encoded bytes are).
    ///
    /// ```
    /// # let server = redisext::testing::RedisServer::start()?;
    /// # let client = redisext::Client::open(&server.url())?;
    /// # use redisext::{Pool, serializer::Str};
    /// # let tags = Pool::<Str>::new(&client, "tags")?;
    /// tags.push("rust")?;
    /// assert!(tags.contains("rust")?);
    /// assert!(!tags.contains("go")?);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn contains(&self, member: &S::Value) -> E::Output<bool> {
        let call = self
            .core
            .encode::<S>(member)
            .and_then(|member| pool::Contains { pool: self.core.key(), member }.call(self.core.target()));
        self.core.run(call, decode::flag)
    }
}

serialized_model!(Pool, "set", "pool");
