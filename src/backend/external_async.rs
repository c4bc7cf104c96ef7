//! Bringing your own async redis crate connection: an [`AsyncClient`] on a
//! `redis::aio::ConnectionManager` or a `redis::aio::MultiplexedConnection`.

use std::future::Future;
use std::time::Duration;

use redis::aio::{ConnectionLike, ConnectionManager, MultiplexedConnection};

use super::Request;
use super::nonblocking::{AsyncBackend, AsyncSession};
use super::redis_async::{command, not_sent, pipeline, query_on, query_pipelined_on, require_runtime};
use crate::async_client::AsyncClient;
use crate::call::Node;
use crate::connection::Timeouts;
use crate::wire::{CommandError, Reply};

/// An [`AsyncBackend`] on an async connection of the redis crate you already
/// have — a `ConnectionManager` (which reconnects by itself) or a
/// `MultiplexedConnection` — shared by every operation, as the default backend
/// shares its own. The connection keeps its own settings, response timeout
/// included (the redis crate's default is 500 ms: a slow script that did run
/// would then fail with an unknown outcome; set it deliberately).
///
/// Blocking waits (a `pop_wait`, a lock's `acquire_wait`) must not block the
/// shared connection. Give the backend a `redis::Client` for them with
/// [`with_waits_on`](Self::with_waits_on): each wait then opens a connection of
/// its own. Without one, waits poll every 100 ms instead of blocking on the
/// model's signal.
///
/// ```
/// # let server = redisext::testing::RedisServer::start()?;
/// # let url = server.url();
/// # tokio::runtime::Runtime::new()?.block_on(async {
/// use std::time::Duration;
/// use redisext::{AsyncClient, ReliableQueue, backend::ConnectionBackend, serializer::Str};
///
/// let redis_client = redis::Client::open(url.as_str())?; // url: "redis://127.0.0.1:6379/0"
/// let manager = redis::aio::ConnectionManager::new(redis_client.clone()).await?;
/// let client = AsyncClient::from_connection_manager(manager);
/// let jobs = ReliableQueue::<Str, _>::new(&client, "jobs")?;
/// jobs.push("one").await?;
/// assert_eq!(jobs.pop(Duration::from_secs(30)).await?.map(|job| job.into_value()).as_deref(), Some("one"));
///
/// // A multiplexed connection, with a client for blocking waits.
/// let connection = redis_client.get_multiplexed_async_connection().await?;
/// let backend = ConnectionBackend::new(connection).with_waits_on(redis_client);
/// let client = AsyncClient::with_backend(backend);
/// let jobs = ReliableQueue::<Str, _>::new(&client, "jobs")?;
/// assert!(jobs.pop_wait(Duration::from_secs(30), Duration::from_millis(10)).await?.is_none());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// # })?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct ConnectionBackend<C> {
    connection: C,
    /// Opens the connections of blocking waits.
    waits: Option<redis::Client>,
    timeouts: Timeouts,
    shown: String,
}

impl<C: ConnectionLike + Clone + Send + Sync + 'static> ConnectionBackend<C> {
    /// A backend sharing `connection` (see [`ConnectionBackend`]).
    pub fn new(connection: C) -> ConnectionBackend<C> {
        let shown = format!("a redis crate connection (db {})", connection.get_db());
        ConnectionBackend { connection, waits: None, timeouts: Timeouts::default(), shown }
    }

    /// Blocking waits open connections of their own from `client`, with this
    /// backend's [`Timeouts`] (the response timeout lengthened by each wait's
    /// block); messages name its address.
    pub fn with_waits_on(mut self, client: redis::Client) -> ConnectionBackend<C> {
        self.shown = client.get_connection_info().addr().to_string();
        self.waits = Some(client);
        self
    }

    /// The timeouts of the connections opened for blocking waits (default 5 s
    /// to connect, 30 s for a reply, plus the block).
    pub fn wait_timeouts(mut self, timeouts: Timeouts) -> ConnectionBackend<C> {
        self.timeouts = timeouts;
        self
    }

    /// The shared connection.
    pub fn connection(&self) -> &C {
        &self.connection
    }
}

impl AsyncClient<ConnectionBackend<ConnectionManager>> {
    /// An async client sharing a `ConnectionManager` you already have (see
    /// [`ConnectionBackend`]).
    pub fn from_connection_manager(manager: ConnectionManager) -> Self {
        AsyncClient::with_backend(ConnectionBackend::new(manager))
    }
}

impl AsyncClient<ConnectionBackend<MultiplexedConnection>> {
    /// An async client sharing a `MultiplexedConnection` you already have (see
    /// [`ConnectionBackend`]). It does not reconnect after the connection fails:
    /// a `ConnectionManager` does.
    pub fn from_multiplexed_connection(connection: MultiplexedConnection) -> Self {
        AsyncClient::with_backend(ConnectionBackend::new(connection))
    }
}

impl<C: ConnectionLike + Clone + Send + Sync + 'static> AsyncBackend for ConnectionBackend<C> {
    type Session = ConnectionSession<C>;

    fn session(&self, _node: Node) -> impl Future<Output = Result<ConnectionSession<C>, CommandError>> + Send {
        let session = ConnectionSession::shared(self.connection.clone());
        async move { Ok(session) }
    }

    fn dedicated_session(
        &self,
        _node: Node,
        block: Duration,
    ) -> impl Future<Output = Result<ConnectionSession<C>, CommandError>> + Send {
        let (shared, waits, timeouts) = (self.connection.clone(), self.waits.clone(), self.timeouts);
        async move {
            if block.is_zero() {
                // Nothing blocks (a retry after a failure): the shared connection will do.
                return Ok(ConnectionSession::shared(shared));
            }
            let Some(client) = waits else {
                // The driver then sleeps between attempts instead of blocking.
                return Err(not_sent(
                    "no connection of its own for a blocking wait: see ConnectionBackend::with_waits_on",
                ));
            };
            require_runtime()?;
            let config = redis::AsyncConnectionConfig::new()
                .set_connection_timeout(Some(timeouts.connect))
                .set_response_timeout(timeouts.response.map(|t| t.saturating_add(block)));
            let own = client.get_multiplexed_async_connection_with_config(&config).await.map_err(not_sent)?;
            Ok(ConnectionSession { link: Link::Own(own) })
        }
    }

    fn describe(&self, _node: Node) -> String {
        self.shown.clone()
    }

    fn serving(&self, _node: Node) -> Node {
        Node::Master
    }
}

/// A handle on the shared connection (or a wait's own) for one operation.
pub struct ConnectionSession<C> {
    link: Link<C>,
}

enum Link<C> {
    Shared(C),
    Own(MultiplexedConnection),
}

impl<C> ConnectionSession<C> {
    pub(super) fn shared(connection: C) -> ConnectionSession<C> {
        ConnectionSession { link: Link::Shared(connection) }
    }
}

impl<C: ConnectionLike + Send> AsyncSession for ConnectionSession<C> {
    fn query(&mut self, request: &Request<'_>) -> impl Future<Output = Result<Reply, CommandError>> + Send {
        let command = command(request);
        async move {
            match &mut self.link {
                Link::Shared(connection) => query_on(connection, &command).await,
                Link::Own(connection) => query_on(connection, &command).await,
            }
        }
    }

    fn is_fresh(&self) -> bool {
        matches!(self.link, Link::Own(_))
    }

    fn query_pipelined(
        &mut self,
        requests: &[Request<'_>],
    ) -> impl Future<Output = Vec<Result<Reply, CommandError>>> + Send {
        let pipeline = pipeline(requests);
        async move {
            match &mut self.link {
                Link::Shared(connection) => query_pipelined_on(connection, &pipeline).await,
                Link::Own(connection) => query_pipelined_on(connection, &pipeline).await,
            }
        }
    }
}
