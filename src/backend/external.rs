//! Bringing your own blocking redis crate objects: a [`Client`] from a
//! `redis::Client`, or from an r2d2 pool of them (feature `pool`).

#[cfg(feature = "pool")]
use std::time::Duration;

#[cfg(feature = "pool")]
use super::node::{query_connection, query_pipelined_connection};
use super::redis_crate::RedisBackend;
#[cfg(feature = "pool")]
use super::{Backend, Request, Session};
#[cfg(feature = "pool")]
use crate::call::Node;
use crate::client::Client;
use crate::connection::{Reuse, Timeouts};
use crate::error::Result;
#[cfg(feature = "pool")]
use crate::wire::{CommandError, Delivery, Reply};

impl Client {
    /// A client on a `redis::Client` you already have: its address, TLS,
    /// database, credentials and protocol as you configured them, with this
    /// crate's default reuse (one lazy connection) and timeouts. For other
    /// settings, [`RedisBackend::from_redis_client`] and
    /// [`Client::with_backend`].
    ///
    /// Its connections are the redis crate's, which cannot be checked before a
    /// write: one the server closed while idle (`CLIENT KILL`, an idle timeout, a
    /// restart) fails the operation written to it, "may have applied" for a plain
    /// write. [`Client::open`] on the same plain TCP or Unix-socket DSN uses
    /// connections of this crate's own, replaced before the write instead.
    ///
    /// ```
    /// # let server = redisext::testing::RedisServer::start()?;
    /// # let url = server.url();
    /// use redisext::{Client, Counter};
    /// let mine = redis::Client::open(url.as_str())?; // url: "redis://127.0.0.1:6379/0"
    /// let client = Client::from_redis_client(mine)?;
    /// assert_eq!(Counter::new(&client, "visits")?.incr(1)?, 1);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn from_redis_client(client: redis::Client) -> Result<Client> {
        Ok(Client::with_backend(RedisBackend::from_redis_client(client, Reuse::Lazy, Timeouts::default())?))
    }
}

/// A [`Backend`] on an r2d2 pool of `redis::Client` connections you already
/// have (feature `pool`): every operation takes a connection from your pool
/// and gives it back.
///
/// The pool's connections get this backend's [`Timeouts`] as their read and
/// write timeouts each time one is taken (a blocking wait, longer), so that a
/// dead server fails an operation instead of hanging it; other users of the
/// pool then see those timeouts too. Like [`Client::from_redis_client`]'s, the
/// pool's connections cannot be checked before a write. A connection on which a command failed is
/// given back to the pool, which tells a closed one by `is_open` (the redis
/// crate skips a late reply on one that timed out). A blocking wait holds one of
/// the pool's connections for as long as it blocks (at most 100 ms at a time).
///
/// ```
/// # let server = redisext::testing::RedisServer::start()?;
/// # let url = server.url();
/// use redisext::{Client, Lock};
/// let pool = r2d2::Pool::builder().max_size(4).build(redis::Client::open(url.as_str())?)?;
/// let client = Client::from_r2d2_pool(pool)?;
/// let lock = Lock::new(&client, "report")?;
/// let token = lock.acquire(None)?.expect("free");
/// assert!(lock.release(&token)?);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[cfg(feature = "pool")]
pub struct R2d2Backend {
    pool: r2d2::Pool<redis::Client>,
    timeouts: Timeouts,
    shown: String,
}

#[cfg(feature = "pool")]
impl R2d2Backend {
    /// A backend on `pool`, setting `timeouts` on the connections it takes (see
    /// [`R2d2Backend`]).
    pub fn new(pool: r2d2::Pool<redis::Client>, timeouts: Timeouts) -> Result<R2d2Backend> {
        timeouts.check().map_err(crate::error::Error::Config)?;
        Ok(R2d2Backend { pool, timeouts, shown: "an r2d2 pool of redis::Client connections".to_owned() })
    }

    /// The pool.
    pub fn pool(&self) -> &r2d2::Pool<redis::Client> {
        &self.pool
    }

    fn take(&self, read_timeout: Option<Duration>) -> Result<R2d2Session, CommandError> {
        let not_sent = |e: Box<dyn std::error::Error + Send + Sync>| CommandError::Connection {
            delivery: Delivery::NotSent,
            source: e,
        };
        let connection = self.pool.get_timeout(self.timeouts.connect).map_err(|e| not_sent(e.into()))?;
        connection.set_read_timeout(read_timeout).map_err(|e| not_sent(e.into()))?;
        connection.set_write_timeout(self.timeouts.response).map_err(|e| not_sent(e.into()))?;
        Ok(R2d2Session { connection })
    }
}

#[cfg(feature = "pool")]
impl Client<R2d2Backend> {
    /// A client on an r2d2 pool of `redis::Client` connections you already have,
    /// with the default [`Timeouts`] (see [`R2d2Backend`]).
    pub fn from_r2d2_pool(pool: r2d2::Pool<redis::Client>) -> Result<Client<R2d2Backend>> {
        Ok(Client::with_backend(R2d2Backend::new(pool, Timeouts::default())?))
    }
}

#[cfg(feature = "pool")]
impl Backend for R2d2Backend {
    type Session<'a>
        = R2d2Session
    where
        Self: 'a;

    fn session(&self, _node: Node) -> Result<R2d2Session, CommandError> {
        self.take(self.timeouts.response)
    }

    fn describe(&self, _node: Node) -> String {
        self.shown.clone()
    }

    fn dedicated_session(&self, _node: Node, block: Duration) -> Result<R2d2Session, CommandError> {
        // A pooled connection is the holder's alone: blocking on it stalls no
        // other operation. Its reply may take as long as the block itself.
        self.take(self.timeouts.response.map(|t| t.saturating_add(block)))
    }

    fn serving(&self, _node: Node) -> Node {
        Node::Master
    }
}

/// A connection taken from the pool for one operation (see [`R2d2Backend`]).
#[cfg(feature = "pool")]
pub struct R2d2Session {
    connection: r2d2::PooledConnection<redis::Client>,
}

#[cfg(feature = "pool")]
impl Session for R2d2Session {
    fn query(&mut self, request: &Request<'_>) -> Result<Reply, CommandError> {
        query_connection(&mut *self.connection, request)
    }

    fn is_fresh(&self) -> bool {
        // The pool does not say; a failure is then retried on another connection.
        false
    }

    fn query_pipelined(&mut self, requests: &[Request<'_>]) -> Vec<Result<Reply, CommandError>> {
        query_pipelined_connection(&mut *self.connection, requests)
    }
}
