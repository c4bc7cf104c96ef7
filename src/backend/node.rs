//! Blocking connections to one server, shared by the standalone and the cluster
//! backends: opening them (timeouts applied), keeping them for reuse (lazy, an
//! idle list, per command, an r2d2 pool), and sending requests on them.
//!
//! Plain TCP and Unix-socket connections are this crate's own (`socket`): a
//! reused one is looked at before it takes a command, and one the server closed
//! while it sat idle is replaced before anything is written, so the operation
//! goes out on the new one. TLS connections and those of a `redis::Client` you
//! gave are the `redis` crate's, which cannot be looked at: a write into one the
//! server closed fails only when its reply is awaited ("may have applied").

use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::ThreadId;
use std::time::Duration;

use super::redis_conversions::{redis_client, reply_from, server_error_of};
use super::socket::{OwnConnection, can_own};
use super::{Request, Session, write_resp_all};
use crate::connection::{Dsn, Reuse, Timeouts};
#[cfg(feature = "pool")]
use crate::error::Error;
use crate::error::Result;
#[cfg(feature = "pool")]
use crate::wire::ServerError;
use crate::wire::{CommandError, Delivery, Reply, is_connection_error};

/// Opens configured connections (timeouts applied) to one node.
#[derive(Clone)]
pub(super) struct Opener {
    target: Target,
    timeouts: Timeouts,
    /// Send `READONLY` on each new connection: a cluster node whose replicas serve reads.
    readonly: bool,
}

#[derive(Clone)]
enum Target {
    /// Plain TCP or a Unix socket: connections of this crate's own.
    Own(Dsn),
    /// TLS, or a `redis::Client` the user configured: the crate's connections.
    Crate(redis::Client),
}

impl Opener {
    pub(super) fn new(dsn: &Dsn, timeouts: Timeouts) -> Result<Opener> {
        let target = if can_own(dsn) { Target::Own(dsn.clone()) } else { Target::Crate(redis_client(dsn)?) };
        Ok(Opener { target, timeouts, readonly: false })
    }

    /// An opener on a `redis::Client` the user configured.
    pub(super) fn from_client(client: redis::Client, timeouts: Timeouts) -> Opener {
        Opener { target: Target::Crate(client), timeouts, readonly: false }
    }

    /// A connection for a blocking command that may hold it for up to `block`.
    pub(super) fn open_blocking(&self, block: Duration) -> Result<NodeConnection, CommandError> {
        let connection = self.open()?;
        // The reply may take as long as the block itself: wait that long, plus the
        // usual response timeout for the network.
        let timeout = self.timeouts.response.map(|t| t.saturating_add(block));
        let set = match &connection {
            NodeConnection::Own(own) => own.set_read_timeout(timeout).map_err(redis::RedisError::from),
            NodeConnection::Crate(crate_connection) => crate_connection.set_read_timeout(timeout),
        };
        set.map_err(|e| CommandError::Connection { delivery: Delivery::NotSent, source: e.into() })?;
        Ok(connection)
    }

    pub(super) fn open(&self) -> Result<NodeConnection, CommandError> {
        let client = match &self.target {
            Target::Own(dsn) => {
                return Ok(NodeConnection::Own(OwnConnection::open(dsn, self.timeouts, self.readonly)?));
            }
            Target::Crate(client) => client,
        };
        let not_sent =
            |e: redis::RedisError| CommandError::Connection { delivery: Delivery::NotSent, source: e.into() };
        let mut connection = client.get_connection_with_timeout(self.timeouts.connect).map_err(not_sent)?;
        connection.set_read_timeout(self.timeouts.response).map_err(not_sent)?;
        connection.set_write_timeout(self.timeouts.response).map_err(not_sent)?;
        if self.readonly {
            redis::cmd("READONLY").exec(&mut connection).map_err(not_sent)?;
        }
        Ok(NodeConnection::Crate(connection))
    }
}

/// A blocking connection to one node: this crate's own (plain TCP, Unix socket),
/// or the `redis` crate's (TLS, a user's `redis::Client`).
pub(crate) enum NodeConnection {
    Own(OwnConnection),
    Crate(redis::Connection),
}

impl NodeConnection {
    /// True when a connection used before was closed by the server (or got out
    /// of step) while idle: it must not take a command. Always false for the
    /// crate's connections, which cannot be looked at without a round trip.
    fn closed_while_idle(&self) -> bool {
        match self {
            NodeConnection::Own(own) => own.closed_while_idle(),
            NodeConnection::Crate(_) => false,
        }
    }
}

/// The two halves of an exchange on a blocking connection, ours or the crate's.
pub(super) trait Exchange {
    /// Writes packed commands.
    fn send_packed(&mut self, bytes: &[u8]) -> redis::RedisResult<()>;
    /// Reads one reply (an error reply may be `Ok(ServerError)` or an `Err` with a code).
    fn receive(&mut self) -> redis::RedisResult<redis::Value>;
}

impl Exchange for redis::Connection {
    fn send_packed(&mut self, bytes: &[u8]) -> redis::RedisResult<()> {
        self.send_packed_command(bytes)
    }

    fn receive(&mut self) -> redis::RedisResult<redis::Value> {
        self.recv_response()
    }
}

impl Exchange for NodeConnection {
    fn send_packed(&mut self, bytes: &[u8]) -> redis::RedisResult<()> {
        match self {
            NodeConnection::Own(own) => own.send(bytes),
            NodeConnection::Crate(connection) => connection.send_packed_command(bytes),
        }
    }

    fn receive(&mut self) -> redis::RedisResult<redis::Value> {
        match self {
            NodeConnection::Own(own) => own.recv(),
            NodeConnection::Crate(connection) => connection.receive(),
        }
    }
}

/// Idle connections kept per node by [`Keeping::Idle`]; more are closed when handed back.
const MAX_IDLE: usize = 16;

/// How the connections of one node are kept.
enum Keeping {
    /// One connection, opened on first use and shared by every operation, one at
    /// a time.
    Lazy(Arc<Lazy>),
    /// Connections opened as needed and kept for reuse, up to [`MAX_IDLE`] idle.
    Idle(Arc<Mutex<Vec<NodeConnection>>>),
    PerCommand,
    #[cfg(feature = "pool")]
    Pooled(r2d2::Pool<PoolManager>),
}

/// The lazy connection, lent to one session at a time: the others wait for it to
/// be handed back. A thread that holds it already (a session of its own still
/// open) gets a connection of its own instead of waiting for itself forever.
#[derive(Default)]
struct Lazy {
    slot: Mutex<LazySlot>,
    handed_back: Condvar,
}

#[derive(Default)]
struct LazySlot {
    /// The connection, when open and not lent.
    connection: Option<NodeConnection>,
    /// The thread it is lent to.
    lent_to: Option<ThreadId>,
    /// Sessions waiting for it: handing it back wakes one only when there is
    /// one (a notification is a system call, once per pipeline otherwise).
    waiting: usize,
}

/// The connections of one node.
pub(super) struct NodeConnections {
    pub(super) opener: Opener,
    keeping: Keeping,
}

impl NodeConnections {
    /// The connections of a node, kept as `reuse` says.
    pub(super) fn new(dsn: &Dsn, reuse: &Reuse, timeouts: Timeouts) -> Result<NodeConnections> {
        NodeConnections::with_opener(Opener::new(dsn, timeouts)?, reuse)
    }

    /// A node whose connections `opener` opens, kept as `reuse` says.
    pub(super) fn with_opener(opener: Opener, reuse: &Reuse) -> Result<NodeConnections> {
        let keeping = match reuse {
            Reuse::Lazy => Keeping::Lazy(Arc::default()),
            Reuse::PerCommand => Keeping::PerCommand,
            #[cfg(feature = "pool")]
            Reuse::Pooled { max_size } => Keeping::Pooled(pool(&opener, *max_size)?),
        };
        Ok(NodeConnections { opener, keeping })
    }

    /// A node of a cluster: with [`Reuse::Lazy`], an idle list rather than one
    /// connection, so that operations on one node do not queue behind each other;
    /// `readonly` sends `READONLY` on each new connection (replica reads).
    pub(super) fn for_cluster(dsn: &Dsn, reuse: &Reuse, timeouts: Timeouts, readonly: bool) -> Result<NodeConnections> {
        let mut node = NodeConnections::new(dsn, reuse, timeouts)?;
        node.opener.readonly = readonly;
        if let Keeping::Lazy(_) = node.keeping {
            node.keeping = Keeping::Idle(Arc::default());
        }
        Ok(node)
    }

    /// A session on one of the node's connections, as the keeping says.
    pub(super) fn session(&self) -> Result<NodeSession, CommandError> {
        match &self.keeping {
            Keeping::Lazy(lazy) => {
                let me = std::thread::current().id();
                let mut slot = lock(&lazy.slot);
                if slot.lent_to == Some(me) {
                    // This thread holds the shared connection already (a session it
                    // opened itself): waiting would wait for ever.
                    drop(slot);
                    return Ok(NodeSession::owned(self.opener.open()?));
                }
                if slot.lent_to.is_some() {
                    slot.waiting += 1;
                    while slot.lent_to.is_some() {
                        slot = lazy.handed_back.wait(slot).unwrap_or_else(|poisoned| poisoned.into_inner());
                    }
                    slot.waiting -= 1;
                }
                // One the server closed while it was idle is replaced before
                // anything is written: the operation goes out on the new one.
                let reused = slot.connection.take().filter(|connection| !connection.closed_while_idle());
                slot.lent_to = Some(me);
                drop(slot);
                let fresh = reused.is_none();
                // Handed back when dropped, even if opening fails here.
                let mut lease = LazyLease { lazy: Arc::clone(lazy), connection: reused };
                if fresh {
                    lease.connection = Some(self.opener.open()?);
                }
                Ok(NodeSession::new(Held::Lazy(lease), fresh))
            }
            Keeping::Idle(idle) => {
                // The newest idle connection the server has not closed (those it
                // closed are dropped: one killed need not mean all were).
                let reused = std::iter::from_fn(|| lock(idle).pop()).find(|connection| !connection.closed_while_idle());
                let fresh = reused.is_none();
                let connection = match reused {
                    Some(connection) => connection,
                    None => self.opener.open()?,
                };
                let lease = IdleLease { connection: Some(connection), home: Arc::clone(idle) };
                Ok(NodeSession::new(Held::Idle(lease), fresh))
            }
            Keeping::PerCommand => Ok(NodeSession::owned(self.opener.open()?)),
            #[cfg(feature = "pool")]
            Keeping::Pooled(pool) => {
                let mut connection = pool
                    .get()
                    .map_err(|e| CommandError::Connection { delivery: Delivery::NotSent, source: Box::new(e) })?;
                let mut fresh = connection.returned == 0;
                // Even one never lent may have waited in the pool (r2d2 opens
                // some ahead of need).
                if connection.connection.closed_while_idle() {
                    // Replaced in its pool slot, before anything is written on it.
                    let born = connection.epoch.load(std::sync::atomic::Ordering::SeqCst);
                    match self.opener.open() {
                        Ok(opened) => (connection.connection, connection.born, fresh) = (opened, born, true),
                        Err(error) => {
                            connection.broken = true;
                            return Err(error);
                        }
                    }
                }
                Ok(NodeSession::new(Held::Pooled(connection), fresh))
            }
        }
    }
}

/// Locks a mutex whose data stays consistent whatever a panicking holder did: a
/// connection in an unknown state is dropped by the next error, an id or a list
/// is replaced whole.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// A connection to one node, held for one operation.
pub(crate) struct NodeSession {
    held: Held,
    fresh: bool,
    /// Something was written in this session: a later write is looked at first
    /// (a dedicated session waits on one connection for long), but a connection
    /// found closed then is not replaced, as the session's state (`MULTI`, what
    /// a `WAIT` counts) went with it.
    wrote: bool,
}

enum Held {
    /// The node's lazy connection, lent.
    Lazy(LazyLease),
    Owned(Option<NodeConnection>),
    #[cfg(feature = "pool")]
    Pooled(r2d2::PooledConnection<PoolManager>),
    /// Taken from the node's idle connections; handed back when the session ends
    /// (unless discarded).
    Idle(IdleLease),
}

/// The lazy connection, lent to a session: handed back (unless discarded) when
/// dropped, waking one waiting session.
struct LazyLease {
    lazy: Arc<Lazy>,
    connection: Option<NodeConnection>,
}

impl Drop for LazyLease {
    fn drop(&mut self) {
        let mut slot = lock(&self.lazy.slot);
        slot.connection = self.connection.take();
        slot.lent_to = None;
        let someone_waits = slot.waiting > 0;
        drop(slot);
        if someone_waits {
            self.lazy.handed_back.notify_one();
        }
    }
}

impl NodeSession {
    fn new(held: Held, fresh: bool) -> NodeSession {
        NodeSession { held, fresh, wrote: false }
    }

    /// A session on a connection of its own, closed at the end.
    pub(super) fn owned(connection: NodeConnection) -> NodeSession {
        NodeSession::new(Held::Owned(Some(connection)), true)
    }

    /// The connection, ready for a write: `Err` (not sent) when it was discarded
    /// after an earlier error, or when the server closed it since this
    /// session's last command (it is discarded then).
    fn writable(&mut self) -> Result<&mut NodeConnection, CommandError> {
        let check = std::mem::replace(&mut self.wrote, true);
        let closed = match self.connection() {
            None => return Err(discarded()),
            Some(connection) => check && connection.closed_while_idle(),
        };
        if closed {
            self.discard();
            return Err(CommandError::Connection {
                delivery: Delivery::NotSent,
                source: "the server closed the connection since the session's last command".into(),
            });
        }
        self.connection().ok_or_else(discarded)
    }

    fn connection(&mut self) -> Option<&mut NodeConnection> {
        match &mut self.held {
            Held::Lazy(lease) => lease.connection.as_mut(),
            Held::Owned(connection) => connection.as_mut(),
            #[cfg(feature = "pool")]
            Held::Pooled(pooled) => (!pooled.broken).then_some(&mut pooled.connection),
            Held::Idle(lease) => lease.connection.as_mut(),
        }
    }

    /// After an I/O error or a timeout a reply may still be in flight: the
    /// connection must never be used again.
    fn discard(&mut self) {
        match &mut self.held {
            Held::Lazy(lease) => lease.connection = None,
            Held::Owned(connection) => *connection = None,
            #[cfg(feature = "pool")]
            Held::Pooled(pooled) => {
                pooled.broken = true;
                pooled.epoch.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            }
            Held::Idle(lease) => {
                lease.connection = None;
                // The other idle connections of the node may be dead as well (a
                // restart): close them rather than fail one operation each.
                lock(&lease.home).clear();
            }
        }
    }
}

/// A connection taken from an idle list, given back when dropped (unless the
/// session discarded it after an error).
struct IdleLease {
    connection: Option<NodeConnection>,
    home: Arc<Mutex<Vec<NodeConnection>>>,
}

impl Drop for IdleLease {
    fn drop(&mut self) {
        if let Some(connection) = self.connection.take() {
            let mut idle = lock(&self.home);
            if idle.len() < MAX_IDLE {
                idle.push(connection);
            }
        }
    }
}

impl Session for NodeSession {
    fn query(&mut self, request: &Request<'_>) -> Result<Reply, CommandError> {
        let result = self.writable().and_then(|connection| query_connection(connection, request));
        if is_connection_error(&result) {
            self.discard();
        }
        result
    }

    fn is_fresh(&self) -> bool {
        self.fresh
    }

    fn query_pipelined(&mut self, requests: &[Request<'_>]) -> Vec<Result<Reply, CommandError>> {
        let sent = self.send_pipelined(requests);
        self.receive_pipelined(sent)
    }
}

impl NodeSession {
    /// The first half of [`Session::query_pipelined`]: writes the batch, so that
    /// a batch spanning several nodes is written to all of them before any reply
    /// is awaited (one round trip for the batch, not one per node).
    pub(crate) fn send_pipelined(&mut self, requests: &[Request<'_>]) -> SentBatch {
        match self.writable() {
            Ok(connection) => send_pipelined_connection(connection, requests),
            Err(_) => SentBatch { count: requests.len(), failure: None, discarded: true },
        }
    }

    /// The second half: reads one result per request sent.
    pub(crate) fn receive_pipelined(&mut self, sent: SentBatch) -> Vec<Result<Reply, CommandError>> {
        let connection = match self.connection() {
            Some(connection) if !sent.discarded => connection,
            _ => return (0..sent.count).map(|_| Err(discarded())).collect(),
        };
        let results = receive_pipelined_connection(connection, sent);
        if results.iter().any(is_connection_error) {
            self.discard();
        }
        results
    }
}

/// Sends one request on a blocking connection and reads its reply. After a
/// connection error the connection must not be used again.
pub(super) fn query_connection(connection: &mut impl Exchange, request: &Request<'_>) -> Result<Reply, CommandError> {
    let mut packed = Vec::with_capacity(request.resp_len());
    request.write_resp(&mut packed);
    // A write that fails leaves the command incomplete on the server, which
    // never runs a partial command: not sent. A failure while reading the
    // reply leaves the outcome unknown.
    let outcome = match connection.send_packed(&packed) {
        Err(e) => Err((Delivery::NotSent, e)),
        Ok(()) => connection.receive().map_err(|e| (Delivery::Unknown, e)),
    };
    match outcome {
        Ok(value) => reply_from(value),
        Err((delivery, error)) => match error.code() {
            Some(_) => Err(server_error_of(&error)),
            None => Err(CommandError::Connection { delivery, source: error.into() }),
        },
    }
}

/// Sends requests in one write on a blocking connection and reads one result
/// per request (the contract of [`Session::query_pipelined`]). After a
/// connection error the connection must not be used again.
#[cfg(feature = "pool")]
pub(super) fn query_pipelined_connection(
    connection: &mut impl Exchange,
    requests: &[Request<'_>],
) -> Vec<Result<Reply, CommandError>> {
    let sent = send_pipelined_connection(connection, requests);
    receive_pipelined_connection(connection, sent)
}

/// A batch written to a connection whose replies are still to be read.
pub(crate) struct SentBatch {
    count: usize,
    /// The write's failure. Part of a pipeline may have been written (and run)
    /// before a write fails: then no command's fate is known.
    failure: Option<redis::RedisError>,
    /// Nothing was sent: the session's connection had been discarded after an
    /// earlier error.
    discarded: bool,
}

fn send_pipelined_connection(connection: &mut impl Exchange, requests: &[Request<'_>]) -> SentBatch {
    let packed = write_resp_all(requests);
    SentBatch { count: requests.len(), failure: connection.send_packed(&packed).err(), discarded: false }
}

fn receive_pipelined_connection(connection: &mut impl Exchange, sent: SentBatch) -> Vec<Result<Reply, CommandError>> {
    let mut failure = sent.failure;
    let mut results = Vec::with_capacity(sent.count);
    for _ in 0..sent.count {
        if failure.is_none() {
            match connection.receive() {
                Ok(value) => results.push(reply_from(value)),
                Err(error) if error.code().is_some() => results.push(Err(server_error_of(&error))),
                Err(error) => failure = Some(error),
            }
        }
        if let Some(error) = &failure {
            // The first failed command carries the error itself; the later
            // ones were in the same write, so their fate is just as unknown.
            let source: Box<dyn std::error::Error + Send + Sync> = if results.iter().any(is_connection_error) {
                format!("no reply: the connection failed on an earlier command of the same batch: {error}").into()
            } else {
                error.to_string().into()
            };
            results.push(Err(CommandError::Connection { delivery: Delivery::Unknown, source }));
        }
    }
    results
}

/// The error for a session whose connection was dropped after an earlier failure.
fn discarded() -> CommandError {
    CommandError::Connection {
        delivery: Delivery::NotSent,
        source: "the connection was discarded after an earlier error".into(),
    }
}

/// An r2d2 pool of connections opened by `opener`.
#[cfg(feature = "pool")]
fn pool(opener: &Opener, max_size: u32) -> Result<r2d2::Pool<PoolManager>> {
    if max_size == 0 {
        return Err(Error::Config("a pool needs at least one connection".into()));
    }
    Ok(r2d2::Pool::builder()
        .max_size(max_size)
        .min_idle(Some(0))
        .connection_timeout(opener.timeouts.connect)
        // `is_valid` sends nothing (a PING would double the round trips): it only
        // refuses connections marked broken, or opened before a failure.
        .test_on_check_out(true)
        .build_unchecked(PoolManager { opener: opener.clone(), epoch: Default::default() }))
}

/// A pooled connection with a flag for "must not be reused".
#[cfg(feature = "pool")]
pub(crate) struct PooledConnection {
    connection: NodeConnection,
    broken: bool,
    returned: u64,
    /// The pool's epoch when this connection was opened.
    born: u64,
    /// The pool's epoch, bumped whenever a connection of the pool fails: the
    /// failure may be a server restart, which leaves every older connection dead.
    epoch: Arc<std::sync::atomic::AtomicU64>,
}

#[cfg(feature = "pool")]
impl PooledConnection {
    fn is_stale(&self) -> bool {
        self.broken || self.born < self.epoch.load(std::sync::atomic::Ordering::SeqCst)
    }
}

#[cfg(feature = "pool")]
pub(crate) struct PoolManager {
    opener: Opener,
    epoch: Arc<std::sync::atomic::AtomicU64>,
}

#[cfg(feature = "pool")]
impl r2d2::ManageConnection for PoolManager {
    type Connection = PooledConnection;
    type Error = CommandError;

    fn connect(&self) -> Result<PooledConnection, CommandError> {
        let born = self.epoch.load(std::sync::atomic::Ordering::SeqCst);
        let connection = self.opener.open()?;
        Ok(PooledConnection { connection, broken: false, returned: 0, born, epoch: Arc::clone(&self.epoch) })
    }

    fn is_valid(&self, pooled: &mut PooledConnection) -> Result<(), CommandError> {
        if pooled.is_stale() {
            Err(CommandError::Server(ServerError::parse("ERR connection opened before a failure")))
        } else {
            Ok(())
        }
    }

    fn has_broken(&self, pooled: &mut PooledConnection) -> bool {
        // Called when a connection goes back to the pool: count it as used.
        pooled.returned += 1;
        pooled.is_stale()
            || match &pooled.connection {
                NodeConnection::Own(_) => false,
                NodeConnection::Crate(connection) => !redis::ConnectionLike::is_open(connection),
            }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::RedisServer;

    #[test]
    fn a_thread_holding_the_lazy_connection_gets_another_instead_of_waiting_for_itself() {
        let server = RedisServer::start().unwrap();
        let node =
            NodeConnections::new(&Dsn::parse(&server.url()).unwrap(), &Reuse::Lazy, Timeouts::default()).unwrap();
        let key = crate::key::Key::new("k").unwrap();
        let none = Reply::Status("none".into());
        let mut held = node.session().unwrap();
        let mut nested = node.session().unwrap();
        assert!(nested.is_fresh(), "a connection of its own");
        assert_eq!(nested.query(&Request::Type(&key)).unwrap(), none);
        drop(nested);
        assert_eq!(held.query(&Request::Type(&key)).unwrap(), none);
        drop(held);
        let mut again = node.session().unwrap();
        assert!(!again.is_fresh(), "the shared connection is reused once handed back");
        assert_eq!(again.query(&Request::Type(&key)).unwrap(), none);
    }
}
