//! A deadpool-redis pool as an async backend (feature `deadpool`).

use std::future::Future;
use std::time::Duration;

use super::external_async::ConnectionSession;
use super::nonblocking::AsyncBackend;
use super::redis_async::{not_sent, require_runtime};
use crate::async_client::AsyncClient;
use crate::call::Node;
use crate::wire::CommandError;

/// An [`AsyncBackend`] on a `deadpool_redis::Pool` you already have (feature
/// `deadpool`): each operation takes one of the pool's multiplexed connections
/// and gives it back when done.
///
/// A blocking wait holds a connection from the pool, which is the holder's
/// alone while held, for as long as it blocks (at most 100 ms at a time), so the
/// pool's response timeout must exceed 100 ms plus a round trip (the redis
/// crate's default, 500 ms, does). Set that timeout deliberately, through the
/// pool's `Manager::new_with_config`: at 500 ms a slow script that did run fails
/// with an unknown outcome.
///
/// ```
/// # let server = redisext::testing::RedisServer::start()?;
/// # let url = server.url();
/// # tokio::runtime::Runtime::new()?.block_on(async {
/// use redisext::{AsyncClient, Counter};
/// let pool = deadpool_redis::Config::from_url(url.as_str()) // url: "redis://127.0.0.1:6379/0"
///     .create_pool(Some(deadpool_redis::Runtime::Tokio1))?;
/// let client = AsyncClient::from_deadpool(pool);
/// assert_eq!(Counter::new(&client, "hits")?.incr(1).await?, 1);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// # })?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct DeadpoolBackend {
    pool: deadpool_redis::Pool,
}

/// A connection taken from a deadpool-redis pool for one operation.
pub type DeadpoolSession = ConnectionSession<deadpool_redis::Connection>;

impl DeadpoolBackend {
    /// A backend taking its connections from `pool`.
    pub fn new(pool: deadpool_redis::Pool) -> DeadpoolBackend {
        DeadpoolBackend { pool }
    }

    /// The pool.
    pub fn pool(&self) -> &deadpool_redis::Pool {
        &self.pool
    }

    fn take(&self) -> impl Future<Output = Result<DeadpoolSession, CommandError>> + Send + use<> {
        let pool = self.pool.clone();
        async move {
            require_runtime()?;
            // An error here (a timeout, a refused connection) means nothing was sent.
            let connection = pool.get().await.map_err(not_sent)?;
            Ok(ConnectionSession::shared(connection))
        }
    }
}

impl AsyncClient<DeadpoolBackend> {
    /// An async client on a deadpool-redis pool (see [`DeadpoolBackend`]).
    pub fn from_deadpool(pool: deadpool_redis::Pool) -> Self {
        AsyncClient::with_backend(DeadpoolBackend::new(pool))
    }
}

impl AsyncBackend for DeadpoolBackend {
    type Session = DeadpoolSession;

    fn session(&self, _node: Node) -> impl Future<Output = Result<DeadpoolSession, CommandError>> + Send {
        self.take()
    }

    fn dedicated_session(
        &self,
        _node: Node,
        _block: Duration,
    ) -> impl Future<Output = Result<DeadpoolSession, CommandError>> + Send {
        // A pooled connection is the holder's alone until it is given back.
        self.take()
    }

    fn describe(&self, _node: Node) -> String {
        "a deadpool-redis pool".to_owned()
    }

    fn serving(&self, _node: Node) -> Node {
        Node::Master
    }
}
