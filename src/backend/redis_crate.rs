//! The default backend, on the `redis` crate's blocking connections.

use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use crate::backend::cluster::{Cluster, ClusterSession};
use crate::backend::{Backend, Routed, Session, is_connection_error};
use crate::connection::{Address, Dsn, Reuse, Timeouts};
use crate::error::{CommandError, Delivery, Error, Result, ServerError};
use crate::op::Node;
use crate::reply::Reply;

/// The default [`Backend`]: blocking `redis` crate connections to a master and an
/// optional replica, or to the nodes of a Redis Cluster, reused as [`Reuse`] says.
pub struct RedisBackend {
    topology: Topology,
}

// One per client, behind the client's `Arc`: its size does not matter.
#[allow(clippy::large_enum_variant)]
enum Topology {
    Standalone(Routed<NodeConnections>),
    Cluster(Cluster),
}

impl RedisBackend {
    /// A backend for `master` and an optional `replica`. Nothing is connected yet:
    /// connections open on first use.
    pub fn new(master: &Dsn, replica: Option<&Dsn>, reuse: Reuse, timeouts: Timeouts) -> Result<RedisBackend> {
        timeouts.check()?;
        Ok(RedisBackend {
            topology: Topology::Standalone(Routed::new(
                NodeConnections::new(master, &reuse, timeouts)?,
                replica.map(|dsn| NodeConnections::new(dsn, &reuse, timeouts)).transpose()?,
            )),
        })
    }

    /// A backend for the Redis Cluster that the `seeds` belong to (any nodes of
    /// it; the slot map is read from the first that answers, on first use). Each
    /// operation goes to the master serving its key's hash slot, following
    /// `MOVED` and `ASK` redirections; reads go to masters too.
    pub fn cluster(seeds: &[Dsn], reuse: Reuse, timeouts: Timeouts) -> Result<RedisBackend> {
        timeouts.check()?;
        Ok(RedisBackend { topology: Topology::Cluster(Cluster::new(seeds, reuse, timeouts)?) })
    }

    /// True when reads go to a separate replica.
    pub fn has_replica(&self) -> bool {
        match &self.topology {
            Topology::Standalone(nodes) => nodes.has_replica(),
            Topology::Cluster(_) => false,
        }
    }

    /// True for a Redis Cluster backend.
    pub fn is_cluster(&self) -> bool {
        matches!(self.topology, Topology::Cluster(_))
    }
}

impl Backend for RedisBackend {
    type Session<'a> = RedisSession<'a>;

    fn session(&self, node: Node) -> Result<RedisSession<'_>, CommandError> {
        match &self.topology {
            Topology::Standalone(nodes) => nodes.get(node).session().map(RedisSession::node),
            Topology::Cluster(cluster) => Ok(RedisSession { inner: Inner::Cluster(cluster.session(None)) }),
        }
    }

    fn describe(&self, node: Node) -> String {
        match &self.topology {
            Topology::Standalone(nodes) => nodes.get(node).shown.clone(),
            Topology::Cluster(cluster) => cluster.describe(),
        }
    }

    fn dedicated_session(&self, node: Node, block: Duration) -> Result<RedisSession<'_>, CommandError> {
        match &self.topology {
            Topology::Standalone(nodes) => {
                let connection = nodes.get(node).opener.open_blocking(block)?;
                Ok(RedisSession::node(NodeSession { held: Held::Owned(Some(connection)), fresh: true }))
            }
            Topology::Cluster(cluster) => Ok(RedisSession { inner: Inner::Cluster(cluster.session(Some(block))) }),
        }
    }

    fn serving(&self, node: Node) -> Node {
        match &self.topology {
            Topology::Standalone(nodes) => nodes.serving(node),
            Topology::Cluster(_) => Node::Master,
        }
    }

    fn fork(&self) -> Option<RedisBackend> {
        let topology = match &self.topology {
            Topology::Standalone(nodes) => Topology::Standalone(nodes.map(NodeConnections::fork)),
            Topology::Cluster(cluster) => Topology::Cluster(cluster.fork()),
        };
        Some(RedisBackend { topology })
    }
}

/// How the connections of one node are kept.
enum Keeping {
    Lazy(Mutex<Option<redis::Connection>>),
    PerCommand,
    #[cfg(feature = "pool")]
    Pooled(r2d2::Pool<PoolManager>),
}

struct NodeConnections {
    opener: Opener,
    keeping: Keeping,
    /// The DSN with its password hidden, for messages.
    shown: String,
}

/// Opens configured connections (timeouts applied) to one node.
#[derive(Clone)]
pub(super) struct Opener {
    client: redis::Client,
    timeouts: Timeouts,
}

impl Opener {
    pub(super) fn new(dsn: &Dsn, timeouts: Timeouts) -> Result<Opener> {
        Ok(Opener { client: redis_client(dsn)?, timeouts })
    }

    /// A connection for a blocking command that may hold it for up to `block`.
    pub(super) fn open_blocking(&self, block: Duration) -> Result<redis::Connection, CommandError> {
        let connection = self.open()?;
        // The reply may take as long as the block itself: wait that long, plus the
        // usual response timeout for the network.
        connection
            .set_read_timeout(self.timeouts.response.map(|t| t.saturating_add(block)))
            .map_err(|e| CommandError::Connection { delivery: Delivery::NotSent, source: e.into() })?;
        Ok(connection)
    }

    pub(super) fn open(&self) -> Result<redis::Connection, CommandError> {
        let not_sent =
            |e: redis::RedisError| CommandError::Connection { delivery: Delivery::NotSent, source: e.into() };
        let connection = self.client.get_connection_with_timeout(self.timeouts.connect).map_err(not_sent)?;
        connection.set_read_timeout(self.timeouts.response).map_err(not_sent)?;
        connection.set_write_timeout(self.timeouts.response).map_err(not_sent)?;
        Ok(connection)
    }
}

impl NodeConnections {
    fn new(dsn: &Dsn, reuse: &Reuse, timeouts: Timeouts) -> Result<NodeConnections> {
        let opener = Opener::new(dsn, timeouts)?;
        let keeping = match reuse {
            Reuse::Lazy => Keeping::Lazy(Mutex::new(None)),
            Reuse::PerCommand => Keeping::PerCommand,
            #[cfg(feature = "pool")]
            Reuse::Pooled { max_size } => Keeping::Pooled(pool(&opener, *max_size)?),
        };
        Ok(NodeConnections { opener, keeping, shown: dsn.to_string() })
    }

    /// The same node with one lazy connection of its own.
    fn fork(&self) -> NodeConnections {
        NodeConnections {
            opener: self.opener.clone(),
            keeping: Keeping::Lazy(Mutex::new(None)),
            shown: self.shown.clone(),
        }
    }

    fn session(&self) -> Result<NodeSession<'_>, CommandError> {
        match &self.keeping {
            Keeping::Lazy(slot) => {
                // A panic elsewhere while holding the lock leaves at worst a connection
                // in an unknown state: drop it and carry on.
                let mut guard = slot.lock().unwrap_or_else(|poisoned| {
                    let mut guard = poisoned.into_inner();
                    *guard = None;
                    guard
                });
                let fresh = guard.is_none();
                if fresh {
                    *guard = Some(self.opener.open()?);
                }
                Ok(NodeSession { held: Held::Shared(guard), fresh })
            }
            Keeping::PerCommand => Ok(NodeSession { held: Held::Owned(Some(self.opener.open()?)), fresh: true }),
            #[cfg(feature = "pool")]
            Keeping::Pooled(pool) => {
                let (connection, fresh) = checkout(pool)?;
                Ok(NodeSession { held: Held::Pooled(connection), fresh })
            }
        }
    }
}

/// Builds the `redis` crate's client for a DSN, as [`RedisBackend`] connects
/// (address, TLS, user, password, database, client name); nothing is connected.
/// For code that sends commands of its own beside the library's, such as
/// set-up and clean-up connections. A `rediss://` DSN needs the `tls` feature.
///
/// ```
/// let dsn: redisext::Dsn = "redis://127.0.0.1:6379/2".parse()?;
/// let client = redisext::backend::redis_client(&dsn)?;
/// assert_eq!(client.get_connection_info().redis_settings().db(), 2);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn redis_client(dsn: &Dsn) -> Result<redis::Client> {
    use redis::IntoConnectionInfo;

    let address = match dsn.address() {
        Address::Tcp { host, port } => redis::ConnectionAddr::Tcp(host.clone(), *port),
        #[cfg(feature = "tls")]
        Address::Tls { host, port } => {
            // rustls needs a process-wide crypto provider; another crate may have
            // installed one already, which is fine.
            let _ = rustls::crypto::ring::default_provider().install_default();
            redis::ConnectionAddr::TcpTls { host: host.clone(), port: *port, insecure: false, tls_params: None }
        }
        Address::Unix(path) => redis::ConnectionAddr::Unix(path.clone()),
        #[allow(unreachable_patterns)]
        other => return Err(Error::Config(format!("address {other:?} needs the `tls` feature"))),
    };
    let mut settings =
        redis::RedisConnectionInfo::default().set_db(dsn.db()).set_lib_name("redisext", env!("CARGO_PKG_VERSION"));
    if let Some(user) = dsn.username() {
        settings = settings.set_username(user);
    }
    if let Some(password) = dsn.password() {
        settings = settings.set_password(password.expose());
    }
    let info =
        address.into_connection_info().map_err(|e| Error::Config(format!("{dsn}: {e}")))?.set_redis_settings(settings);
    redis::Client::open(info).map_err(|e| Error::Config(format!("{dsn}: {e}")))
}

/// A connection held for one operation (on a cluster: the connections to the
/// nodes the operation's commands are routed to).
pub struct RedisSession<'a> {
    inner: Inner<'a>,
}

enum Inner<'a> {
    Node(NodeSession<'a>),
    Cluster(ClusterSession<'a>),
}

impl<'a> RedisSession<'a> {
    fn node(session: NodeSession<'a>) -> RedisSession<'a> {
        RedisSession { inner: Inner::Node(session) }
    }
}

impl Session for RedisSession<'_> {
    fn query(&mut self, args: &[&[u8]]) -> Result<Reply, CommandError> {
        match &mut self.inner {
            Inner::Node(session) => session.query(args),
            Inner::Cluster(session) => session.query(args),
        }
    }

    fn is_fresh(&self) -> bool {
        match &self.inner {
            Inner::Node(session) => session.is_fresh(),
            Inner::Cluster(session) => session.is_fresh(),
        }
    }

    fn query_pipelined(&mut self, commands: &[&[&[u8]]]) -> Vec<Result<Reply, CommandError>> {
        match &mut self.inner {
            Inner::Node(session) => session.query_pipelined(commands),
            Inner::Cluster(session) => session.query_pipelined(commands),
        }
    }
}

/// A connection to one node, held for one operation.
pub(super) struct NodeSession<'a> {
    held: Held<'a>,
    fresh: bool,
}

enum Held<'a> {
    Shared(MutexGuard<'a, Option<redis::Connection>>),
    Owned(Option<redis::Connection>),
    #[cfg(feature = "pool")]
    Pooled(r2d2::PooledConnection<PoolManager>),
    /// Borrowed from a cluster node's idle connections; handed back when the
    /// session ends (unless discarded).
    Leased(Lease),
}

impl NodeSession<'_> {
    /// A session on a connection leased from a cluster node.
    pub(super) fn leased(lease: Lease, fresh: bool) -> NodeSession<'static> {
        NodeSession { held: Held::Leased(lease), fresh }
    }

    /// A session on a connection of its own, closed at the end.
    pub(super) fn owned(connection: redis::Connection) -> NodeSession<'static> {
        NodeSession { held: Held::Owned(Some(connection)), fresh: true }
    }

    #[cfg(feature = "pool")]
    pub(super) fn pooled(connection: r2d2::PooledConnection<PoolManager>, fresh: bool) -> NodeSession<'static> {
        NodeSession { held: Held::Pooled(connection), fresh }
    }

    fn connection(&mut self) -> Option<&mut redis::Connection> {
        match &mut self.held {
            Held::Shared(guard) => guard.as_mut(),
            Held::Owned(connection) => connection.as_mut(),
            #[cfg(feature = "pool")]
            Held::Pooled(pooled) => (!pooled.broken).then_some(&mut pooled.connection),
            Held::Leased(lease) => lease.connection.as_mut(),
        }
    }

    /// After an I/O error or a timeout a reply may still be in flight: the
    /// connection must never be used again.
    fn discard(&mut self) {
        match &mut self.held {
            Held::Shared(guard) => **guard = None,
            Held::Owned(connection) => *connection = None,
            #[cfg(feature = "pool")]
            Held::Pooled(pooled) => {
                pooled.broken = true;
                pooled.epoch.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            }
            Held::Leased(lease) => {
                lease.connection = None;
                // The other idle connections of the node may be dead as well (a
                // restart): close them rather than fail one operation each.
                if let Ok(mut idle) = lease.home.lock() {
                    idle.clear();
                }
            }
        }
    }
}

/// A connection taken from an idle list, given back when dropped (unless the
/// session discarded it after an error).
pub(super) struct Lease {
    pub(super) connection: Option<redis::Connection>,
    pub(super) home: std::sync::Arc<Mutex<Vec<redis::Connection>>>,
    /// Connections beyond this many idle ones are closed instead of kept.
    pub(super) max_idle: usize,
}

impl Drop for Lease {
    fn drop(&mut self) {
        if let Some(connection) = self.connection.take()
            && let Ok(mut idle) = self.home.lock()
            && idle.len() < self.max_idle
        {
            idle.push(connection);
        }
    }
}

impl Session for NodeSession<'_> {
    fn query(&mut self, args: &[&[u8]]) -> Result<Reply, CommandError> {
        let mut packed = Vec::with_capacity(packed_size(args));
        pack_command(&mut packed, args);
        let Some(connection) = self.connection() else {
            return Err(discarded());
        };
        // A write that fails leaves the command incomplete on the server, which
        // never runs a partial command: not sent. A failure while reading the
        // reply leaves the outcome unknown.
        let outcome = match connection.send_packed_command(&packed) {
            Err(e) => Err((Delivery::NotSent, e)),
            Ok(()) => connection.recv_response().map_err(|e| (Delivery::Unknown, e)),
        };
        match outcome {
            Ok(value) => reply_from(value),
            Err((delivery, error)) => match error.code() {
                Some(_) => Err(server_error_of(&error)),
                None => {
                    self.discard();
                    Err(CommandError::Connection { delivery, source: error.into() })
                }
            },
        }
    }

    fn is_fresh(&self) -> bool {
        self.fresh
    }

    fn query_pipelined(&mut self, commands: &[&[&[u8]]]) -> Vec<Result<Reply, CommandError>> {
        let mut packed = Vec::with_capacity(commands.iter().map(|command| packed_size(command)).sum());
        for command in commands {
            pack_command(&mut packed, command);
        }
        let Some(connection) = self.connection() else {
            return commands.iter().map(|_| Err(discarded())).collect();
        };
        // Part of a pipeline may have been written (and run) before a write fails:
        // then no command's fate is known.
        let mut failure = connection.send_packed_command(&packed).err().map(|e| (Delivery::Unknown, e));
        let mut results = Vec::with_capacity(commands.len());
        for _ in commands {
            if failure.is_none() {
                match connection.recv_response() {
                    Ok(value) => results.push(reply_from(value)),
                    Err(error) if error.code().is_some() => results.push(Err(server_error_of(&error))),
                    Err(error) => failure = Some((Delivery::Unknown, error)),
                }
            }
            if let Some((delivery, error)) = &failure {
                // The first failed command carries the error itself; the later
                // ones were in the same write, so their fate is just as unknown.
                let source: Box<dyn std::error::Error + Send + Sync> = if results.iter().any(is_connection_error) {
                    format!("no reply: the connection failed on an earlier command of the same batch: {error}").into()
                } else {
                    error.to_string().into()
                };
                results.push(Err(CommandError::Connection { delivery: *delivery, source }));
            }
        }
        if failure.is_some() {
            self.discard();
        }
        results
    }
}

/// The error for a session whose connection was dropped after an earlier failure.
fn discarded() -> CommandError {
    CommandError::Connection {
        delivery: Delivery::NotSent,
        source: "the connection was discarded after an earlier error".into(),
    }
}

/// An error reply the `redis` crate returned as an `Err`.
pub(super) fn server_error_of(error: &redis::RedisError) -> CommandError {
    CommandError::Server(ServerError {
        code: error.code().unwrap_or("ERR").to_owned(),
        message: error.detail().unwrap_or_default().to_owned(),
    })
}

/// An upper bound of a command's size in RESP, for reserving the buffer once.
fn packed_size(args: &[&[u8]]) -> usize {
    args.iter().map(|arg| arg.len() + 16).sum::<usize>() + 16
}

/// Appends a command in RESP to `packed`: `*<n>` then `$<len>` and the bytes of
/// each argument. Lengths are written without allocating: this runs for every
/// command sent (a profile of pipelined batches found the allocations of
/// `to_string` here to be a quarter of the client's instructions).
fn pack_command(packed: &mut Vec<u8>, args: &[&[u8]]) {
    packed.push(b'*');
    push_decimal(packed, args.len());
    packed.extend_from_slice(b"\r\n");
    for arg in args {
        packed.push(b'$');
        push_decimal(packed, arg.len());
        packed.extend_from_slice(b"\r\n");
        packed.extend_from_slice(arg);
        packed.extend_from_slice(b"\r\n");
    }
}

/// Appends `number` in decimal ASCII.
fn push_decimal(out: &mut Vec<u8>, mut number: usize) {
    // Most lengths and counts are one or two digits.
    if number < 10 {
        out.push(b'0' + number as u8);
        return;
    }
    if number < 100 {
        out.extend_from_slice(&[b'0' + (number / 10) as u8, b'0' + (number % 10) as u8]);
        return;
    }
    let mut digits = [0u8; 20];
    let mut start = digits.len();
    loop {
        start -= 1;
        digits[start] = b'0' + (number % 10) as u8;
        number /= 10;
        if number == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[start..]);
}

/// Converts a top-level reply; an error reply becomes `Err`.
pub(super) fn reply_from(value: redis::Value) -> Result<Reply, CommandError> {
    match value {
        redis::Value::ServerError(error) => Err(CommandError::Server(server_error(&error))),
        other => Ok(convert(other)),
    }
}

fn server_error(error: &redis::ServerError) -> ServerError {
    ServerError { code: error.code().to_owned(), message: error.details().unwrap_or_default().to_owned() }
}

/// Maps the `redis` crate's values onto [`Reply`]. RESP3-only types (never sent on
/// the RESP2 connections this backend opens) are mapped to their RESP2 shapes.
fn convert(value: redis::Value) -> Reply {
    use redis::Value;
    match value {
        Value::Nil => Reply::Nil,
        Value::Int(n) => Reply::Int(n),
        Value::BulkString(bytes) => Reply::Bulk(bytes),
        Value::Array(items) | Value::Set(items) => Reply::Array(items.into_iter().map(convert).collect()),
        Value::SimpleString(status) => Reply::Status(status),
        Value::Okay => Reply::Status("OK".to_owned()),
        Value::Map(pairs) => Reply::Array(pairs.into_iter().flat_map(|(k, v)| [convert(k), convert(v)]).collect()),
        Value::Attribute { data, .. } => convert(*data),
        Value::Double(number) => Reply::Bulk(number.to_string().into_bytes()),
        Value::Boolean(flag) => Reply::Int(i64::from(flag)),
        Value::VerbatimString { text, .. } => Reply::Bulk(text.into_bytes()),
        Value::BigNumber(number) => Reply::Bulk(format!("{number:?}").into_bytes()),
        Value::Push { data, .. } => Reply::Array(data.into_iter().map(convert).collect()),
        Value::ServerError(error) => Reply::Error(server_error(&error)),
        // `redis::Value` is non-exhaustive.
        #[allow(unreachable_patterns)]
        other => Reply::Bulk(format!("{other:?}").into_bytes()),
    }
}

/// An r2d2 pool of connections opened by `opener`.
#[cfg(feature = "pool")]
pub(super) fn pool(opener: &Opener, max_size: u32) -> Result<r2d2::Pool<PoolManager>> {
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

/// A connection from the pool, and whether it is fresh (never used before).
#[cfg(feature = "pool")]
pub(super) fn checkout(
    pool: &r2d2::Pool<PoolManager>,
) -> Result<(r2d2::PooledConnection<PoolManager>, bool), CommandError> {
    let connection =
        pool.get().map_err(|e| CommandError::Connection { delivery: Delivery::NotSent, source: Box::new(e) })?;
    let fresh = connection.returned == 0;
    Ok((connection, fresh))
}

/// A pooled connection with a flag for "must not be reused".
#[cfg(feature = "pool")]
pub(crate) struct PooledConnection {
    connection: redis::Connection,
    broken: bool,
    returned: u64,
    /// The pool's epoch when this connection was opened.
    born: u64,
    /// The pool's epoch, bumped whenever a connection of the pool fails: the
    /// failure may be a server restart, which leaves every older connection dead.
    epoch: std::sync::Arc<std::sync::atomic::AtomicU64>,
}

#[cfg(feature = "pool")]
impl PooledConnection {
    fn is_stale(&self) -> bool {
        self.broken || self.born < self.epoch.load(std::sync::atomic::Ordering::SeqCst)
    }
}

#[cfg(feature = "pool")]
pub(super) struct PoolManager {
    opener: Opener,
    epoch: std::sync::Arc<std::sync::atomic::AtomicU64>,
}

#[cfg(feature = "pool")]
impl r2d2::ManageConnection for PoolManager {
    type Connection = PooledConnection;
    type Error = CommandError;

    fn connect(&self) -> Result<PooledConnection, CommandError> {
        let born = self.epoch.load(std::sync::atomic::Ordering::SeqCst);
        let connection = self.opener.open()?;
        Ok(PooledConnection { connection, broken: false, returned: 0, born, epoch: std::sync::Arc::clone(&self.epoch) })
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
        pooled.is_stale() || !redis::ConnectionLike::is_open(&pooled.connection)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_are_packed_as_the_redis_crate_packs_them() {
        let long = vec![b'x'; 12_345];
        for args in [&[b"PING".as_slice()][..], &[b"EVALSHA", b"abc", b"1", b"key", b"", &long]] {
            let mut packed = Vec::new();
            pack_command(&mut packed, args);
            let mut expected = redis::cmd(std::str::from_utf8(args[0]).unwrap());
            for arg in &args[1..] {
                expected.arg(*arg);
            }
            assert_eq!(packed, expected.get_packed_command());
            assert!(packed.len() <= packed_size(args));
        }
        let mut number = Vec::new();
        push_decimal(&mut number, 0);
        push_decimal(&mut number, usize::MAX);
        assert_eq!(number, format!("0{}", usize::MAX).into_bytes());
    }
}
