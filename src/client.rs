//! The blocking client: configuration, and the driver that runs the dispatcher on
//! a backend session.

use std::sync::Arc;
use std::time::Duration;

use crate::backend::{Backend, RedisBackend, Session};
use crate::connection::{Dsn, DsnError, Reuse, Timeouts};
use crate::dispatch::{Dispatch, Request, Step, name_node};
use crate::error::{CommandError, Error, Result};
use crate::op::{Executor, Node, Op, Pause, ScriptCall, Wait, Waiting};
use crate::reply::Reply;

/// A blocking client: where models send their operations.
///
/// Cheap to clone (an `Arc`); clones share connections. With the default
/// [`Reuse::Lazy`] the connection to each node opens on first use and is shared by
/// every model made from this client, one operation at a time; for many threads,
/// use [`Reuse::Pooled`](Reuse) (feature `pool`).
///
/// ```no_run
/// use redisext::{Client, Counter};
/// let client = Client::open("redis://127.0.0.1:6379/0")?;
/// let visitors = Counter::new(&client, "visitors")?;
/// visitors.incr(1)?;
/// # Ok::<(), redisext::Error>(())
/// ```
pub struct Client<B: Backend = RedisBackend> {
    backend: Arc<B>,
}

impl<B: Backend> Clone for Client<B> {
    fn clone(&self) -> Self {
        Client { backend: Arc::clone(&self.backend) }
    }
}

impl Client {
    /// A client for one server, from a DSN (see [`Dsn`]), with lazy connections.
    /// Nothing is connected until the first operation.
    pub fn open(dsn: &str) -> Result<Client> {
        Client::builder().master(dsn).build()
    }

    /// A builder for a master, an optional replica, reuse and timeouts.
    pub fn builder() -> ClientBuilder {
        ClientBuilder::default()
    }
}

impl<B: Backend> Client<B> {
    /// A client on a backend of your own (see [`Backend`]).
    pub fn with_backend(backend: B) -> Client<B> {
        Client { backend: Arc::new(backend) }
    }

    /// The backend.
    pub fn backend(&self) -> &B {
        &self.backend
    }

    /// Runs one operation and decodes its result.
    pub fn run<T>(&self, op: Op<T>) -> Result<T> {
        let call = op.call?;
        let reply = run_call(&*self.backend, &call)?;
        (op.decode)(reply, &call)
    }
}

impl<B: Backend> crate::op::sealed::Sealed for Client<B> {}

impl<B: Backend> Executor for Client<B> {
    type Output<T: Send + 'static> = Result<T>;

    fn execute<T: Send + 'static>(&self, op: Op<T>) -> Result<T> {
        self.run(op)
    }

    fn execute_waiting<T: Send + 'static>(&self, op: Op<Option<T>>, wait: Wait) -> Result<Option<T>> {
        let call = op.call?;
        let mut waiting = Waiting::start(&wait);
        let mut signal_session = None;
        loop {
            if let Some(value) = (op.decode)(run_call(&*self.backend, &call)?, &call)? {
                return Ok(Some(value));
            }
            match waiting.next_pause() {
                None => return Ok(None),
                Some(Pause::Sleep(pause)) => std::thread::sleep(pause),
                Some(Pause::Signal(signal, block)) => {
                    if signal_session.is_none() {
                        signal_session = self.backend.dedicated_session(Node::Master, Wait::MAX_BLOCK).ok();
                    }
                    let woken = match signal_session.as_mut() {
                        Some(session) => Request::Pop(signal.as_bytes(), block).with_args(|args| session.query(args)),
                        None => Err(crate::backend::not_sent_after_failure()),
                    };
                    if woken.is_err() {
                        // The wait's own connection failed, not the operation:
                        // retry on a new one after a pause.
                        signal_session = None;
                        waiting.signal_failed();
                    }
                }
            }
        }
    }
}

/// A backend error met while running `call`, as the crate's error.
pub(crate) fn command_error(node: impl FnOnce() -> String, call: &ScriptCall, error: CommandError) -> Error {
    match error {
        CommandError::Connection { delivery, source } => {
            Error::Connection { op: call.op_name(), key: Some(call.key().display()), node: node(), delivery, source }
        }
        CommandError::Server(e) => crate::dispatch::server_error(call, e),
    }
}

impl<B: Backend> std::fmt::Debug for Client<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client").field("master", &self.backend.describe(crate::Node::Master)).finish()
    }
}

/// Drives one script call through the dispatcher on blocking sessions.
pub(crate) fn run_call<B: Backend>(backend: &B, call: &ScriptCall) -> Result<Reply> {
    let describe = || backend.describe(call.node);
    let mut session = backend.session(call.node).map_err(|error| command_error(describe, call, error))?;
    let (mut dispatch, mut request) = Dispatch::start(call);
    loop {
        let outcome = request.with_args(|args| session.query(args));
        match dispatch.advance(outcome, session.is_fresh()) {
            Step::Send(next) => request = next,
            Step::Reconnect(next) => {
                drop(session);
                // A new connection of its own: another shared or pooled one may be
                // just as stale as the one that failed.
                session = backend
                    .dedicated_session(call.node, Duration::ZERO)
                    .map_err(|error| command_error(describe, call, error))?;
                request = next;
            }
            Step::Done(result) => return name_node(result, describe),
        }
    }
}

/// Builds a client: a master and an optional replica, or the seed nodes of a
/// Redis Cluster; connection reuse; timeouts. `R` is how connections are reused:
/// [`Reuse`] for the blocking [`Client`] ([`ClientBuilder`]), `AsyncReuse` for the
/// async client (`AsyncClientBuilder`, feature `tokio`).
///
/// ```
/// use redisext::{Client, Reuse};
/// let client = Client::builder()
///     .master("redis://10.0.0.1:6379/0")
///     .replica("redis://10.0.0.2:6379/0")
///     .reuse(Reuse::PerCommand)
///     .build()?; // parses and checks; connects on first use
///
/// // A Redis Cluster: any of its nodes as seeds.
/// let cluster = Client::builder()
///     .cluster("redis://10.0.0.1:7000")
///     .cluster("redis://10.0.0.2:7000")
///     .build()?;
/// # Ok::<(), redisext::Error>(())
/// ```
#[derive(Debug, Default)]
pub struct Builder<R> {
    // Parsed on the spot so that `Debug` (and any error) shows them redacted.
    master: Option<Result<Dsn, DsnError>>,
    replica: Option<Result<Dsn, DsnError>>,
    cluster: Vec<Result<Dsn, DsnError>>,
    reuse: R,
    timeouts: Timeouts,
}

/// The builder of the blocking [`Client`].
pub type ClientBuilder = Builder<Reuse>;

/// Where a client connects, once its builder's DSNs are parsed and checked.
pub(crate) enum Endpoints {
    Standalone { master: Dsn, replica: Option<Dsn> },
    Cluster { seeds: Vec<Dsn> },
}

impl<R> Builder<R> {
    /// The master's DSN: every write goes there.
    pub fn master(mut self, dsn: &str) -> Self {
        self.master = Some(Dsn::parse(dsn));
        self
    }

    /// A replica's DSN: reads go there unless a model reads from the master.
    pub fn replica(mut self, dsn: &str) -> Self {
        self.replica = Some(Dsn::parse(dsn));
        self
    }

    /// A seed node of a Redis Cluster (call again to add more; any node will do).
    /// Each operation then goes to the master serving its key's hash slot, every
    /// key of a model being in one slot; reads go to masters too. Not combinable
    /// with [`master`](Self::master) or [`replica`](Self::replica). The blocking
    /// client only, for now.
    ///
    /// With [`Reuse::Lazy`] each node keeps the connections it has opened (up to
    /// 16 idle) for reuse, so concurrent operations on one node do not queue
    /// behind a single connection.
    pub fn cluster(mut self, dsn: &str) -> Self {
        self.cluster.push(Dsn::parse(dsn));
        self
    }

    /// How connections are reused (default: lazy, one per node).
    pub fn reuse(mut self, reuse: R) -> Self {
        self.reuse = reuse;
        self
    }

    /// Connection and response timeouts (default: 5 s and 30 s).
    pub fn timeouts(mut self, timeouts: Timeouts) -> Self {
        self.timeouts = timeouts;
        self
    }

    /// The parsed endpoints, the reuse and the timeouts.
    pub(crate) fn parts(self) -> Result<(Endpoints, R, Timeouts)> {
        let endpoints = if self.cluster.is_empty() {
            let master = self.master.ok_or_else(|| Error::Config("no master DSN given".into()))??;
            Endpoints::Standalone { master, replica: self.replica.transpose()? }
        } else {
            if self.master.is_some() || self.replica.is_some() {
                return Err(Error::Config("a client is either for a cluster or for a master and replica".into()));
            }
            Endpoints::Cluster { seeds: self.cluster.into_iter().collect::<Result<Vec<Dsn>, DsnError>>()? }
        };
        Ok((endpoints, self.reuse, self.timeouts))
    }
}

impl Builder<Reuse> {
    /// Parses the DSNs and checks the settings. Connects to nothing.
    pub fn build(self) -> Result<Client> {
        let backend = match self.parts()? {
            (Endpoints::Standalone { master, replica }, reuse, timeouts) => {
                RedisBackend::new(&master, replica.as_ref(), reuse, timeouts)?
            }
            (Endpoints::Cluster { seeds }, reuse, timeouts) => RedisBackend::cluster(&seeds, reuse, timeouts)?,
        };
        Ok(Client::with_backend(backend))
    }
}
