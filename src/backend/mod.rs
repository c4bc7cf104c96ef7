//! The abstract client layer: the little redisext needs from a Redis client library.
//!
//! Models never touch a socket. They describe script calls ([`Op`](crate::Op)); the
//! dispatcher turns each into commands (`EVALSHA`, `SCRIPT LOAD`, `TYPE`) and sends
//! them through a [`Session`] that a [`Backend`] opens on the right node. The default
//! backend, [`RedisBackend`], uses the `redis` crate; implement these two traits to
//! use another client, a proxy or a test double of your own.

mod redis_crate;

pub use redis_crate::{RedisBackend, RedisSession};

use std::time::Duration;

use crate::error::{CommandError, ServerError};
use crate::op::Node;
use crate::reply::Reply;

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

    /// A session on a connection of its own, for a blocking command (`BLPOP`) that
    /// may hold it for up to `block`: it must not stall other operations. The
    /// default reuses [`session`](Self::session), which suits only backends whose
    /// sessions are never shared.
    fn dedicated_session(&self, node: Node, block: Duration) -> Result<Self::Session<'_>, CommandError> {
        let _ = block;
        self.session(node)
    }
}

/// A connection to one node, held while one operation runs. All the commands of
/// one operation (`EVALSHA`, and on `NOSCRIPT` the `SCRIPT LOAD` and the retry) go
/// through the same session.
pub trait Session {
    /// Sends one command (its name first, then its arguments) and reads the reply.
    /// An error reply is `Err(CommandError::Server)`.
    fn query(&mut self, args: &[&[u8]]) -> Result<Reply, CommandError>;

    /// True when the connection was opened for this session (not reused): a
    /// failure on a fresh connection is not a stale-connection problem.
    fn is_fresh(&self) -> bool;
}

impl From<ServerError> for CommandError {
    fn from(error: ServerError) -> Self {
        CommandError::Server(error)
    }
}
