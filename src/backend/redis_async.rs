//! The default async backend, on the `redis` crate's multiplexed tokio connections.

use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig, MultiplexedConnection};

use super::nonblocking::{AsyncBackend, AsyncSession};
use super::redis_conversions::{redis_client, reply_from, server_error_of};
use super::{Request, Routed};
use crate::call::Node;
use crate::connection::{AsyncReuse, Dsn, Timeouts};
use crate::error::{Error, Result};
use crate::wire::{CommandError, Delivery, Reply};

/// The default [`AsyncBackend`]: the `redis` crate's multiplexed connections on
/// tokio, to a master and an optional replica, kept as [`AsyncReuse`] says.
///
/// Shared connections are `ConnectionManager`s: they reconnect by themselves after
/// a failure. Every connection uses the response timeout of [`Timeouts`] (the
/// redis crate's own default, 500 ms, would fail slow scripts that did run).
/// Blocking commands get connections of their own.
///
/// It must be used inside a tokio runtime; connections open on first use, on the
/// runtime that first uses them.
pub struct RedisAsyncBackend {
    nodes: Routed<AsyncNode>,
}

impl RedisAsyncBackend {
    /// A backend for `master` and an optional `replica`. Nothing is connected yet.
    pub fn new(
        master: &Dsn,
        replica: Option<&Dsn>,
        reuse: AsyncReuse,
        timeouts: Timeouts,
    ) -> Result<RedisAsyncBackend> {
        timeouts.check().map_err(Error::Config)?;
        if reuse == (AsyncReuse::Multiplexed { connections: 0 }) {
            return Err(Error::Config("multiplexed reuse needs at least one connection".into()));
        }
        Ok(RedisAsyncBackend {
            nodes: Routed::new(
                AsyncNode::new(master, &reuse, timeouts)?,
                replica.map(|dsn| AsyncNode::new(dsn, &reuse, timeouts)).transpose()?,
            ),
        })
    }

    fn node(&self, node: Node) -> &AsyncNode {
        self.nodes.get(node)
    }

    /// True when reads go to a separate replica.
    pub fn has_replica(&self) -> bool {
        self.nodes.has_replica()
    }
}

impl AsyncBackend for RedisAsyncBackend {
    type Session = RedisAsyncSession;

    fn session(&self, node: Node) -> impl Future<Output = Result<RedisAsyncSession, CommandError>> + Send {
        self.node(node).session()
    }

    fn dedicated_session(
        &self,
        node: Node,
        block: Duration,
    ) -> impl Future<Output = Result<RedisAsyncSession, CommandError>> + Send {
        let node = self.node(node);
        // The reply may take as long as the block itself, plus the network.
        let response = node.timeouts.response.map(|t| t.saturating_add(block));
        async move { Ok(RedisAsyncSession { link: Link::Own(node.open(response).await?), fresh: true }) }
    }

    fn describe(&self, node: Node) -> String {
        self.node(node).shown.clone()
    }

    fn serving(&self, node: Node) -> Node {
        self.nodes.serving(node)
    }
}

/// How the connections of one node are kept.
enum Keeping {
    /// Created on first use (that needs the runtime), then taken in turn.
    Multiplexed {
        size: usize,
        managers: Mutex<Option<Arc<[ConnectionManager]>>>,
        next: AtomicUsize,
    },
    PerCommand,
}

struct AsyncNode {
    client: redis::Client,
    timeouts: Timeouts,
    keeping: Keeping,
    /// The DSN with its password hidden, for messages.
    shown: String,
}

/// A connection error from which nothing was sent.
pub(super) fn not_sent(error: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> CommandError {
    CommandError::Connection { delivery: Delivery::NotSent, source: error.into() }
}

/// Connections and their background tasks live on a tokio runtime: without one
/// the redis crate would panic.
pub(super) fn require_runtime() -> Result<(), CommandError> {
    tokio::runtime::Handle::try_current()
        .map(drop)
        .map_err(|_| not_sent("the async client must run inside a tokio runtime"))
}

impl AsyncNode {
    fn new(dsn: &Dsn, reuse: &AsyncReuse, timeouts: Timeouts) -> Result<AsyncNode> {
        let keeping = match reuse {
            AsyncReuse::Multiplexed { connections } => {
                Keeping::Multiplexed { size: *connections, managers: Mutex::new(None), next: AtomicUsize::new(0) }
            }
            AsyncReuse::PerCommand => Keeping::PerCommand,
        };
        Ok(AsyncNode { client: redis_client(dsn)?, timeouts, keeping, shown: dsn.to_string() })
    }

    async fn session(&self) -> Result<RedisAsyncSession, CommandError> {
        require_runtime()?;
        match &self.keeping {
            Keeping::Multiplexed { size, managers, next } => {
                let managers = {
                    // A panic while creating the managers leaves none: create them again.
                    let mut slot = managers.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
                    match &*slot {
                        Some(managers) => Arc::clone(managers),
                        None => {
                            let created: Arc<[ConnectionManager]> =
                                (0..*size).map(|_| self.manager()).collect::<Result<_, _>>()?;
                            *slot = Some(Arc::clone(&created));
                            created
                        }
                    }
                };
                let manager = &managers[next.fetch_add(1, Ordering::Relaxed) % managers.len()];
                Ok(RedisAsyncSession { link: Link::Managed(manager.clone()), fresh: false })
            }
            Keeping::PerCommand => {
                Ok(RedisAsyncSession { link: Link::Own(self.open(self.timeouts.response).await?), fresh: true })
            }
        }
    }

    /// A lazily connecting, self-reconnecting shared connection.
    fn manager(&self) -> Result<ConnectionManager, CommandError> {
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(self.timeouts.connect))
            .set_response_timeout(self.timeouts.response);
        ConnectionManager::new_lazy_with_config(self.client.clone(), config).map_err(not_sent)
    }

    /// A connection of its own, waiting up to `response` for each reply.
    async fn open(&self, response: Option<Duration>) -> Result<MultiplexedConnection, CommandError> {
        require_runtime()?;
        let config = redis::AsyncConnectionConfig::new()
            .set_connection_timeout(Some(self.timeouts.connect))
            .set_response_timeout(response);
        self.client.get_multiplexed_async_connection_with_config(&config).await.map_err(not_sent)
    }
}

/// A connection held for one operation or batch.
pub struct RedisAsyncSession {
    link: Link,
    fresh: bool,
}

enum Link {
    /// A handle on a shared, self-reconnecting connection.
    Managed(ConnectionManager),
    /// A connection of the session's own, closed when it drops.
    Own(MultiplexedConnection),
}

/// A request in the redis crate's form (its multiplexed connections take
/// nothing else); the arguments are those of [`Request::for_each_arg`].
pub(super) fn command(request: &Request<'_>) -> redis::Cmd {
    let mut command = redis::Cmd::new();
    request.for_each_arg(|arg| {
        command.arg(arg);
    });
    command
}

/// A failure of the redis crate as a backend error. On a multiplexed connection
/// there is no telling whether a request went out before it failed, except when
/// the connection was refused outright.
fn command_error(error: redis::RedisError) -> CommandError {
    if error.code().is_some() {
        return server_error_of(&error);
    }
    let delivery = if error.is_connection_refusal() { Delivery::NotSent } else { Delivery::Unknown };
    CommandError::Connection { delivery, source: error.into() }
}

impl AsyncSession for RedisAsyncSession {
    fn query(&mut self, request: &Request<'_>) -> impl Future<Output = Result<Reply, CommandError>> + Send {
        let command = command(request);
        async move {
            match &mut self.link {
                Link::Managed(manager) => query_on(manager, &command).await,
                Link::Own(connection) => query_on(connection, &command).await,
            }
        }
    }

    fn is_fresh(&self) -> bool {
        self.fresh
    }

    fn query_pipelined(
        &mut self,
        requests: &[Request<'_>],
    ) -> impl Future<Output = Vec<Result<Reply, CommandError>>> + Send {
        let pipeline = pipeline(requests);
        async move {
            match &mut self.link {
                Link::Managed(manager) => query_pipelined_on(manager, &pipeline).await,
                Link::Own(connection) => query_pipelined_on(connection, &pipeline).await,
            }
        }
    }
}

/// Requests as one redis crate pipeline (see [`query_pipelined_on`]).
pub(super) fn pipeline(requests: &[Request<'_>]) -> redis::Pipeline {
    let mut pipeline = redis::Pipeline::with_capacity(requests.len());
    for request in requests {
        pipeline.add_command(command(request));
    }
    pipeline
}

/// Sends one command (from [`command`]) on any async connection of the redis
/// crate and converts its reply.
pub(super) async fn query_on<C: ConnectionLike>(
    connection: &mut C,
    command: &redis::Cmd,
) -> Result<Reply, CommandError> {
    connection.req_packed_command(command).await.map_err(command_error).and_then(reply_from)
}

/// Sends a pipeline (from [`pipeline`]) in one round trip on any async
/// connection of the redis crate, with one result per command (the contract of
/// [`AsyncSession::query_pipelined`]).
pub(super) async fn query_pipelined_on<C: ConnectionLike>(
    connection: &mut C,
    pipeline: &redis::Pipeline,
) -> Vec<Result<Reply, CommandError>> {
    let count = pipeline.len();
    match connection.req_packed_commands(pipeline, 0, count).await {
        // Error replies are values here, one per command.
        Ok(values) => values.into_iter().map(reply_from).collect(),
        Err(error) => {
            let cause = error.to_string();
            let first = command_error(error);
            let delivery = match &first {
                CommandError::Connection { delivery, .. } => *delivery,
                CommandError::Server(_) => Delivery::Unknown,
            };
            let mut results = vec![Err(first)];
            results.extend((1..count).map(|_| {
                Err(CommandError::Connection {
                    delivery,
                    source: format!("no reply: the batch failed on an earlier command: {cause}").into(),
                })
            }));
            results
        }
    }
}
