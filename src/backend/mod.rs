//! The abstract client layer: the little redisext needs from a Redis client library.
//!
//! Models never touch a socket. They describe script calls
//! ([`ScriptCall`](crate::ScriptCall)); the dispatcher turns each into typed
//! [`Request`]s (`EVALSHA`, `SCRIPT LOAD`, `TYPE`…) and sends them through a
//! [`Session`] that a [`Backend`] opens on the right node. The default backend,
//! [`RedisBackend`], uses the `redis` crate; implement these two traits to use
//! another client, a proxy or a test double of your own ([`Request::write_resp`]
//! gives a request's bytes).
//!
//! Layout, bottom up: `request` (the typed commands and their bytes), this file
//! (the traits), `redis_conversions` (the redis crate's types into ours), `node`
//! (blocking connections to one server: open, reuse, pool), `redis_crate`
//! ([`RedisBackend`]: sessions routed by the crate's `route` module over fixed
//! nodes, Sentinel or Redis Cluster), and the async counterparts `nonblocking`
//! (traits) and `redis_async`. For redis crate objects you already have:
//! `external` (a `redis::Client`, an r2d2 pool), `external_async` (a
//! `ConnectionManager`, a `MultiplexedConnection`) and `deadpool` (a
//! deadpool-redis pool, feature `deadpool`).

#[cfg(feature = "deadpool")]
mod deadpool;
mod external;
#[cfg(feature = "tokio")]
mod external_async;
mod node;
#[cfg(feature = "tokio")]
mod nonblocking;
#[cfg(feature = "tokio")]
mod redis_async;
mod redis_conversions;
mod redis_crate;
mod request;
mod socket;
#[cfg(feature = "tokio")]
mod watched_stream;

#[cfg(feature = "deadpool")]
#[cfg_attr(docsrs, doc(cfg(feature = "deadpool")))]
pub use deadpool::{DeadpoolBackend, DeadpoolSession};
#[cfg(feature = "pool")]
#[cfg_attr(docsrs, doc(cfg(feature = "pool")))]
pub use external::{R2d2Backend, R2d2Session};
#[cfg(feature = "tokio")]
#[cfg_attr(docsrs, doc(cfg(feature = "tokio")))]
pub use external_async::{ConnectionBackend, ConnectionSession};
#[cfg(feature = "tokio")]
#[cfg_attr(docsrs, doc(cfg(feature = "tokio")))]
pub use nonblocking::{AsyncBackend, AsyncSession};
#[cfg(feature = "tokio")]
#[cfg_attr(docsrs, doc(cfg(feature = "tokio")))]
pub use redis_async::{RedisAsyncBackend, RedisAsyncSession};
pub use redis_conversions::redis_client;
pub use redis_crate::{RedisBackend, RedisSession};
pub use request::{Request, write_resp_all};

use std::time::Duration;

use crate::call::Node;
use crate::wire::{CommandError, Reply, is_connection_error};

/// Opens sessions on the master or the replica.
pub trait Backend: Send + Sync + 'static {
    /// A connection held for the length of one operation.
    type Session<'a>: Session
    where
        Self: 'a;

    /// A session on `node`. A backend without a replica answers
    /// [`Node::Replica`] with a session on the master. Errors here mean nothing
    /// was sent.
    fn session(&self, node: Node) -> Result<Self::Session<'_>, CommandError>;

    /// The node's address for messages, without any password.
    fn describe(&self, node: Node) -> String;

    /// A session on a new connection of its own: for a blocking command (`BLPOP`)
    /// that may hold it for up to `block`, which must not stall other operations;
    /// and (with `block` zero) for retrying a read after a reused connection
    /// failed, as another reused one may be just as stale. The default reuses
    /// [`session`](Self::session), which suits only backends whose sessions are
    /// never shared or reused.
    fn dedicated_session(&self, node: Node, block: Duration) -> Result<Self::Session<'_>, CommandError> {
        let _ = block;
        self.session(node)
    }

    /// A backend on the same servers with connections of its own, kept open
    /// (one per node): for a helper that must never queue behind this backend's
    /// users, like a lock's renewing thread. `None` (the default) when the backend
    /// cannot make one; callers then fall back to
    /// [`dedicated_session`](Self::dedicated_session) for each operation.
    fn fork(&self) -> Option<Self>
    where
        Self: Sized,
    {
        None
    }

    /// The node that really serves operations routed to `node`. Pipelines send all
    /// the operations one server serves in one batch. The default keeps master and
    /// replica apart, which is always correct; a backend without a replica answers
    /// [`Node::Master`] for both, saving a round trip.
    fn serving(&self, node: Node) -> Node {
        node
    }

    /// True for a Redis Cluster, where one command's keys must share a hash slot:
    /// the client's shared waiter connections then wait on one slot's signal
    /// keys each. The default is false (one server, or a master and replicas).
    fn is_cluster(&self) -> bool {
        false
    }
}

/// A connection to one node, held while one operation runs. All the commands of
/// one operation (`EVALSHA`, and on `NOSCRIPT` the `SCRIPT LOAD` and the retry) go
/// through the same session.
pub trait Session {
    /// Sends one command and reads the reply. An error reply is
    /// `Err(CommandError::Server)`.
    fn query(&mut self, request: &Request<'_>) -> Result<Reply, CommandError>;

    /// True when the connection was opened for this session (not reused): a
    /// failure on a fresh connection is not a stale-connection problem.
    fn is_fresh(&self) -> bool;

    /// How many cluster redirections (`MOVED`, `ASK`) this session has followed,
    /// for the operation's span (feature `tracing`). The default: none.
    fn redirects(&self) -> u32 {
        0
    }

    /// Sends several commands in one round trip and reads one result per command,
    /// in order. Once a command meets a connection error the connection is done
    /// for: every later command must carry a connection error too (with
    /// [`Delivery::NotSent`](crate::Delivery) only when it surely never reached
    /// the server).
    ///
    /// The default sends them one by one with [`query`](Self::query): correct for
    /// any backend, but one round trip per command.
    fn query_pipelined(&mut self, requests: &[Request<'_>]) -> Vec<Result<Reply, CommandError>> {
        let mut results = Vec::with_capacity(requests.len());
        for request in requests {
            let failed = results.last().is_some_and(is_connection_error);
            results.push(if failed { Err(CommandError::not_sent_after_failure()) } else { self.query(request) });
        }
        results
    }
}
