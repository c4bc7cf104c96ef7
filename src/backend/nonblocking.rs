//! The async client layer: the little [`AsyncClient`](crate::AsyncClient) needs
//! from an async Redis client — the async counterpart of [`Backend`](super::Backend)
//! and [`Session`](super::Session). The dispatcher is the same; only the sending
//! awaits.

use std::future::Future;
use std::time::Duration;

use super::Request;
use crate::call::Node;
use crate::wire::{CommandError, Reply, is_connection_error};

/// Opens async sessions on the master or the replica.
///
/// Sessions are owned handles (a clone of a multiplexed connection, or a
/// connection of their own), so the futures of [`AsyncClient`](crate::AsyncClient)
/// are `'static` and can be spawned.
pub trait AsyncBackend: Send + Sync + 'static {
    /// A handle on a connection, held for the length of one operation.
    type Session: AsyncSession;

    /// A session on `node`. A backend without a replica answers
    /// [`Node::Replica`] with a session on the master. Errors here mean nothing was
    /// sent.
    fn session(&self, node: Node) -> impl Future<Output = Result<Self::Session, CommandError>> + Send;

    /// A session on a connection of its own, for a blocking command (`BLPOP`) that
    /// may hold it for up to `block`: it must never be a connection other
    /// operations share (a multiplexed connection would stall them all), and its
    /// response timeout must allow for `block`.
    fn dedicated_session(
        &self,
        node: Node,
        block: Duration,
    ) -> impl Future<Output = Result<Self::Session, CommandError>> + Send;

    /// The node's address for messages, without any password.
    fn describe(&self, node: Node) -> String;

    /// The node that really serves operations routed to `node` (see
    /// [`Backend::serving`](super::Backend::serving)).
    fn serving(&self, node: Node) -> Node {
        node
    }
}

/// A connection to one node, held while one operation (or one batch) runs.
pub trait AsyncSession: Send {
    /// Sends one command and reads the reply. An error reply is
    /// `Err(CommandError::Server)`.
    fn query(&mut self, request: &Request<'_>) -> impl Future<Output = Result<Reply, CommandError>> + Send;

    /// True when the connection was opened for this session (not reused or
    /// shared): a failure on a fresh connection is not a stale-connection problem.
    fn is_fresh(&self) -> bool;

    /// How many cluster redirections (`MOVED`, `ASK`) this session has followed,
    /// for the operation's span (feature `tracing`). The default: none.
    fn redirects(&self) -> u32 {
        0
    }

    /// Sends several commands in one round trip and reads one result per command,
    /// in order, with the contract of
    /// [`Session::query_pipelined`](super::Session::query_pipelined). The default
    /// sends them one by one with [`query`](Self::query).
    fn query_pipelined(
        &mut self,
        requests: &[Request<'_>],
    ) -> impl Future<Output = Vec<Result<Reply, CommandError>>> + Send {
        async move {
            let mut results = Vec::with_capacity(requests.len());
            for request in requests {
                let failed = results.last().is_some_and(is_connection_error);
                results.push(if failed {
                    Err(CommandError::not_sent_after_failure())
                } else {
                    self.query(request).await
                });
            }
            results
        }
    }
}
