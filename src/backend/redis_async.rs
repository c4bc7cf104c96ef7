//! The default async backend, on the `redis` crate's multiplexed tokio
//! connections: a master and an optional replica, a master and replicas found
//! through Sentinel, or the nodes of a Redis Cluster — routed by
//! `route` (the crate's routing core), as the blocking backend is.

use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use redis::aio::{ConnectionLike, MultiplexedConnection};

use super::Request;
use super::nonblocking::{AsyncBackend, AsyncSession};
use super::redis_conversions::{redis_client, reply_from, server_error_of};
use super::redis_crate::{check_cluster_seeds, copy_error};
use super::watched_stream::{self, Ended};
use crate::call::Node;
use crate::connection::{AsyncReuse, Dsn, Timeouts};
use crate::error::{Error, Result};
use crate::route::{Answer, BatchPlan, Hops, Learned, NodeId, Probe, Servers, Shape, unknown_topology};
use crate::wire::{CommandError, Delivery, Reply, ServerError};

/// The default [`AsyncBackend`]: the `redis` crate's multiplexed connections on
/// tokio, kept as [`AsyncReuse`] says, to a master and an optional replica, to the
/// master and replicas a set of sentinels names, or to the nodes of a Redis
/// Cluster.
///
/// A shared connection that fails is dropped and opened again on its next use.
/// Every connection uses the response timeout of [`Timeouts`] (the redis crate's
/// own default, 500 ms, would fail slow scripts that did run). Blocking commands
/// get connections of their own.
///
/// It must be used inside a tokio runtime; connections open on first use, on the
/// runtime that first uses them.
pub struct RedisAsyncBackend {
    shared: Arc<Shared>,
}

struct Shared {
    servers: Servers,
    reuse: AsyncReuse,
    timeouts: Timeouts,
    /// Send `READONLY` on new connections (cluster replica reads).
    readonly: bool,
    nodes: RwLock<Vec<Option<Arc<AsyncNode>>>>,
}

impl RedisAsyncBackend {
    /// A backend for `master` and an optional `replica`. Nothing is connected yet.
    pub fn new(
        master: &Dsn,
        replica: Option<&Dsn>,
        reuse: AsyncReuse,
        timeouts: Timeouts,
    ) -> Result<RedisAsyncBackend> {
        let given: Vec<Dsn> = std::iter::once(master).chain(replica).cloned().collect();
        RedisAsyncBackend::with_servers(Servers::new(Shape::Fixed, given, master.clone(), true), reuse, timeouts, false)
    }

    /// A backend for the Redis Cluster that the `seeds` belong to, as
    /// [`RedisBackend::cluster`](super::RedisBackend::cluster).
    pub fn cluster(
        seeds: &[Dsn],
        reuse: AsyncReuse,
        timeouts: Timeouts,
        replica_reads: bool,
    ) -> Result<RedisAsyncBackend> {
        let template = check_cluster_seeds(seeds)?;
        let shape = Shape::Cluster { seeds: (0..seeds.len()).collect() };
        let servers = Servers::new(shape, seeds.to_vec(), template, replica_reads);
        RedisAsyncBackend::with_servers(servers, reuse, timeouts, replica_reads)
    }

    /// A backend for the master that the `sentinels` call `master_name`, as
    /// [`RedisBackend::sentinel`](super::RedisBackend::sentinel).
    pub fn sentinel(
        master_name: &str,
        sentinels: &[Dsn],
        data: &Dsn,
        reuse: AsyncReuse,
        timeouts: Timeouts,
        replica_reads: bool,
    ) -> Result<RedisAsyncBackend> {
        if sentinels.is_empty() {
            return Err(Error::Config("Sentinel needs at least one sentinel address".into()));
        }
        let shape = Shape::Sentinel { name: master_name.to_owned(), sentinels: (0..sentinels.len()).collect() };
        let servers = Servers::new(shape, sentinels.to_vec(), data.clone(), replica_reads);
        RedisAsyncBackend::with_servers(servers, reuse, timeouts, false)
    }

    fn with_servers(
        servers: Servers,
        reuse: AsyncReuse,
        timeouts: Timeouts,
        readonly: bool,
    ) -> Result<RedisAsyncBackend> {
        timeouts.check().map_err(Error::Config)?;
        if reuse == (AsyncReuse::Multiplexed { connections: 0 }) {
            return Err(Error::Config("multiplexed reuse needs at least one connection".into()));
        }
        let shared = Shared { servers, reuse, timeouts, readonly, nodes: RwLock::new(Vec::new()) };
        // The nodes given are checked now (a bad TLS setting is a configuration error).
        if shared.servers.shape() == Shape::Fixed {
            for node in 0..shared.servers.dsn_count() {
                shared.node(node)?;
            }
        }
        Ok(RedisAsyncBackend { shared: Arc::new(shared) })
    }

    /// True when reads go to a separate replica.
    pub fn has_replica(&self) -> bool {
        self.shared.servers.has_replica()
    }

    /// True for a Redis Cluster backend.
    pub fn is_cluster(&self) -> bool {
        self.shared.servers.is_cluster()
    }
}

impl Shared {
    /// The connections of `node`, made when first needed.
    fn node(&self, node: NodeId) -> Result<Arc<AsyncNode>> {
        if let Some(Some(found)) = self.nodes.read().unwrap_or_else(|poisoned| poisoned.into_inner()).get(node) {
            return Ok(Arc::clone(found));
        }
        let made = Arc::new(AsyncNode::new(&self.servers.dsn(node), &self.reuse, self.timeouts, self.readonly)?);
        let mut nodes = self.nodes.write().unwrap_or_else(|poisoned| poisoned.into_inner());
        if nodes.len() <= node {
            nodes.resize(node + 1, None);
        }
        Ok(Arc::clone(nodes[node].get_or_insert(made)))
    }

    /// Reads the topology again when it is due; waits for it while nothing is known.
    async fn refresh(&self) -> Result<(), CommandError> {
        if let Some(plan) = self.servers.begin_refresh(Instant::now()) {
            let before = crate::observe::topology_watched().then(|| self.servers.masters());
            let outcome = self.probe(&plan).await;
            self.servers.refreshed();
            if let Some(before) = before {
                crate::observe::topology_read(
                    &before,
                    &self.servers.masters(),
                    outcome.as_ref().err().map(String::as_str),
                );
            }
            if let Err(why) = outcome
                && self.servers.is_unknown()
            {
                return Err(unknown_topology(why));
            }
        }
        let waited = Instant::now();
        while self.servers.is_unknown() && self.servers.is_refreshing() && waited.elapsed() <= self.timeouts.connect {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        Ok(())
    }

    /// Makes the probes in turn until one gives a topology that installs.
    async fn probe(&self, plan: &[Probe]) -> std::result::Result<(), String> {
        let mut why = String::from("no node to ask");
        for probe in plan {
            let answer = match probe {
                Probe::ClusterShards(node) => match self.ask(*node, &Request::ClusterShards).await {
                    Ok(Ok(reply)) => Ok(Answer::ClusterShards { asked: *node, reply }),
                    // Before Redis 7: no CLUSTER SHARDS.
                    Ok(Err(_)) => match self.ask(*node, &Request::ClusterSlots).await {
                        Ok(Ok(reply)) => Ok(Answer::ClusterSlots { asked: *node, reply }),
                        Ok(Err(error)) => Err(format!("{}: {error}", self.servers.address(*node))),
                        Err(error) => Err(error),
                    },
                    Err(error) => Err(error),
                },
                Probe::Sentinel(node, name) => self.ask_sentinel(*node, name).await,
                Probe::Roles(nodes) => {
                    let mut roles = Vec::new();
                    for node in nodes {
                        if let Ok(Ok(reply)) = self.ask(*node, &Request::Role).await {
                            roles.push((*node, reply));
                        }
                    }
                    Ok(Answer::Roles(roles))
                }
            };
            match answer.and_then(|answer| self.servers.install(answer)) {
                Ok(()) => return Ok(()),
                Err(error) => why = error,
            }
        }
        Err(why)
    }

    async fn ask_sentinel(&self, node: NodeId, name: &str) -> std::result::Result<Answer, String> {
        let master = self.ask(node, &Request::SentinelMaster(name)).await?.map_err(|e| e.to_string())?;
        let replicas = self.ask(node, &Request::SentinelReplicas(name)).await?.unwrap_or(Reply::Nil);
        Ok(Answer::Sentinel { master, replicas })
    }

    /// One command on a connection of its own to `node`: an error reply is the
    /// inner `Err`, a node that cannot be reached the outer one.
    async fn ask(
        &self,
        node: NodeId,
        request: &Request<'_>,
    ) -> std::result::Result<Result<Reply, ServerError>, String> {
        let address = self.servers.address(node);
        let found = self.node(node).map_err(|e| format!("{address}: {e}"))?;
        let mut connection = found.open(self.timeouts.response).await.map_err(|e| format!("{address}: {e}"))?;
        match connection.send_packed_command(&command(request)).await.map_err(command_error).and_then(reply_from) {
            Ok(reply) => Ok(Ok(reply)),
            Err(CommandError::Server(error)) => Ok(Err(error)),
            Err(error) => Err(format!("{address}: {error}")),
        }
    }
}

impl AsyncBackend for RedisAsyncBackend {
    type Session = RedisAsyncSession;

    fn session(&self, node: Node) -> impl Future<Output = Result<RedisAsyncSession, CommandError>> + Send {
        let shared = Arc::clone(&self.shared);
        async move { Ok(RedisAsyncSession { shared, node, current: None, block: None, redirects: 0 }) }
    }

    fn dedicated_session(
        &self,
        node: Node,
        block: Duration,
    ) -> impl Future<Output = Result<RedisAsyncSession, CommandError>> + Send {
        let shared = Arc::clone(&self.shared);
        async move { Ok(RedisAsyncSession { shared, node, current: None, block: Some(block), redirects: 0 }) }
    }

    fn describe(&self, node: Node) -> String {
        let servers = &self.shared.servers;
        match servers.shape() {
            Shape::Cluster { .. } => format!("cluster via {}", servers.dsn(0)),
            Shape::Sentinel { name, .. } => match servers.route(None, node) {
                Ok(id) => format!("{} (master {name} per sentinel {})", servers.dsn(id), servers.dsn(0)),
                Err(_) => format!("master {name} per sentinel {}", servers.dsn(0)),
            },
            Shape::Fixed => servers.route(None, node).map_or_else(|_| servers.dsn(0), |id| servers.dsn(id)).to_string(),
        }
    }

    fn serving(&self, node: Node) -> Node {
        if self.shared.servers.is_cluster() { Node::Master } else { self.shared.servers.serving(node) }
    }

    fn is_cluster(&self) -> bool {
        self.shared.servers.is_cluster()
    }
}

/// The connections of one node.
struct AsyncNode {
    client: redis::Client,
    timeouts: Timeouts,
    readonly: bool,
    keeping: Keeping,
}

enum Keeping {
    /// Shared connections, taken in turn; each opened on first use and again
    /// after it failed.
    Multiplexed {
        slots: Vec<Slot>,
        next: AtomicUsize,
    },
    PerCommand,
}

/// One shared connection and its generation: a session that saw it fail drops
/// it only if it is still the one it used.
#[derive(Default)]
struct Slot {
    connection: tokio::sync::Mutex<Option<(u64, Opened, RuntimeAlive)>>,
    generations: AtomicU64,
}

/// A multiplexed connection and, for plain TCP and Unix sockets, the flag its
/// stream sets when it ends (see `watched_stream`).
struct Opened {
    connection: MultiplexedConnection,
    ended: Option<Ended>,
}

impl Opened {
    /// False once the server closed the connection: it must take no request.
    fn is_open(&self) -> bool {
        !self.ended.as_ref().is_some_and(Ended::is_set)
    }
}

/// Whether the runtime a shared connection was opened on still runs. The
/// connection's driver task lives on that runtime: once the runtime is dropped
/// (a client kept across `#[tokio::test]`s, or across `block_on` calls on
/// runtimes of their own), every request on it fails as "broken pipe" with no
/// telling whether it went out. Checked before each use, it makes the next
/// operation open a connection on its own runtime instead, with nothing sent.
struct RuntimeAlive {
    alive: Arc<AtomicBool>,
    /// Dropped with the slot's connection: ends the watching task.
    _watching: tokio::sync::oneshot::Sender<()>,
}

impl RuntimeAlive {
    /// Watches the current runtime with a task that ends when it is dropped.
    fn watch() -> RuntimeAlive {
        struct Flag(Arc<AtomicBool>);
        impl Drop for Flag {
            fn drop(&mut self) {
                self.0.store(false, Ordering::Release);
            }
        }
        let alive = Arc::new(AtomicBool::new(true));
        let (watching, ended) = tokio::sync::oneshot::channel::<()>();
        let flag = Flag(Arc::clone(&alive));
        tokio::spawn(async move {
            let _flag = flag;
            let _ = ended.await;
        });
        RuntimeAlive { alive, _watching: watching }
    }

    fn is_alive(&self) -> bool {
        self.alive.load(Ordering::Acquire)
    }
}

impl AsyncNode {
    fn new(dsn: &Dsn, reuse: &AsyncReuse, timeouts: Timeouts, readonly: bool) -> Result<AsyncNode> {
        let keeping = match reuse {
            AsyncReuse::Multiplexed { connections } => Keeping::Multiplexed {
                slots: (0..*connections).map(|_| Slot::default()).collect(),
                next: AtomicUsize::new(0),
            },
            AsyncReuse::PerCommand => Keeping::PerCommand,
        };
        Ok(AsyncNode { client: redis_client(dsn)?, timeouts, readonly, keeping })
    }

    /// A connection for one operation: a shared one (and which), or one of its own.
    async fn connection(&self) -> Result<(MultiplexedConnection, Option<(usize, u64)>, bool), CommandError> {
        match &self.keeping {
            Keeping::Multiplexed { slots, next } => {
                let index = next.fetch_add(1, Ordering::Relaxed) % slots.len();
                let slot = &slots[index];
                let mut held = slot.connection.lock().await;
                match held.as_ref() {
                    // One the server closed is replaced before any request goes
                    // into it: the operation goes out on the new one.
                    Some((generation, opened, runtime)) if runtime.is_alive() && opened.is_open() => {
                        return Ok((opened.connection.clone(), Some((index, *generation)), false));
                    }
                    _ => *held = None,
                }
                let opened = self.open_watched(self.timeouts.response).await?;
                let connection = opened.connection.clone();
                let generation = slot.generations.fetch_add(1, Ordering::Relaxed);
                *held = Some((generation, opened, RuntimeAlive::watch()));
                Ok((connection, Some((index, generation)), true))
            }
            Keeping::PerCommand => Ok((self.open(self.timeouts.response).await?, None, true)),
        }
    }

    /// Drops the shared connection `used` once it failed, so that the next
    /// operation opens a new one.
    async fn failed(&self, used: Option<(usize, u64)>) {
        if let (Keeping::Multiplexed { slots, .. }, Some((index, generation))) = (&self.keeping, used) {
            let mut held = slots[index].connection.lock().await;
            if held.as_ref().is_some_and(|(current, _, _)| *current == generation) {
                *held = None;
            }
        }
    }

    /// A connection of its own, waiting up to `response` for each reply.
    async fn open(&self, response: Option<Duration>) -> Result<MultiplexedConnection, CommandError> {
        self.open_watched(response).await.map(|opened| opened.connection)
    }

    /// [`open`](AsyncNode::open), with the flag of a plain TCP or Unix-socket
    /// stream that says when the server has closed it. Such a stream is opened
    /// here and set up by the redis crate (`AUTH`, `SELECT`, `CLIENT SETINFO`),
    /// its driver spawned on the current runtime; TLS is opened by the crate.
    async fn open_watched(&self, response: Option<Duration>) -> Result<Opened, CommandError> {
        require_runtime()?;
        let config = redis::AsyncConnectionConfig::new()
            .set_connection_timeout(Some(self.timeouts.connect))
            .set_response_timeout(response);
        let info = self.client.get_connection_info();
        let (mut connection, ended) = if watched_stream::is_watched(info.addr()) {
            let opening = async {
                let (stream, ended) = watched_stream::connect(info.addr()).await?;
                let (connection, driver) =
                    MultiplexedConnection::new_with_config(info.redis_settings(), stream, config).await?;
                Ok::<_, redis::RedisError>((connection, driver, ended))
            };
            // One deadline for the lookup, the connect and the set-up (AUTH,
            // SELECT), as the redis crate's own connect has.
            let (connection, driver, ended) = tokio::time::timeout(self.timeouts.connect, opening)
                .await
                .map_err(|_| not_sent(format!("connecting timed out after {:?}", self.timeouts.connect)))?
                .map_err(not_sent)?;
            tokio::spawn(driver);
            (connection, Some(ended))
        } else {
            (self.client.get_multiplexed_async_connection_with_config(&config).await.map_err(not_sent)?, None)
        };
        if self.readonly {
            redis::cmd("READONLY").exec_async(&mut connection).await.map_err(not_sent)?;
        }
        Ok(Opened { connection, ended })
    }
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

/// The connections held for one operation or batch: to the node each command is
/// routed to.
pub struct RedisAsyncSession {
    shared: Arc<Shared>,
    node: Node,
    current: Option<Current>,
    /// Set for a dedicated session: connections of its own, with a response
    /// timeout long enough for a blocking command.
    block: Option<Duration>,
    /// Cluster redirections followed, for observability.
    redirects: u32,
}

/// The connection a session is on.
struct Current {
    node: NodeId,
    connection: MultiplexedConnection,
    /// Which shared connection it is, if shared.
    shared: Option<(usize, u64)>,
    fresh: bool,
}

impl RedisAsyncSession {
    /// The connection to `node`, opening one if the session is elsewhere.
    async fn on(&mut self, node: NodeId) -> Result<&mut Current, CommandError> {
        if self.current.as_ref().is_none_or(|current| current.node != node) {
            self.current = None;
            self.current = Some(self.take(node).await?);
        }
        self.current.as_mut().ok_or_else(|| unknown_topology("no session".into()))
    }

    /// The connection to `node`, taken out of this session (the current one if
    /// it is there, else a new one): a batch holds one per node it spans.
    async fn take(&mut self, node: NodeId) -> Result<Current, CommandError> {
        if let Some(current) = self.current.take() {
            if current.node == node {
                return Ok(current);
            }
            self.current = Some(current);
        }
        let opened = self.open(node).await;
        if opened.is_err() {
            self.shared.servers.unreachable(node);
        }
        opened
    }

    async fn open(&self, node: NodeId) -> Result<Current, CommandError> {
        let found = self.shared.node(node).map_err(|e| unknown_topology(e.to_string()))?;
        match self.block {
            Some(block) => {
                // The reply may take as long as the block itself, plus the network.
                let response = self.shared.timeouts.response.map(|t| t.saturating_add(block));
                Ok(Current { node, connection: found.open(response).await?, shared: None, fresh: true })
            }
            None => {
                let (connection, shared, fresh) = found.connection().await?;
                Ok(Current { node, connection, shared, fresh })
            }
        }
    }

    /// Sends on the current connection; a connection failure drops it.
    async fn send(&mut self, node: NodeId, request: &Request<'_>) -> Result<Reply, CommandError> {
        let current = self.on(node).await?;
        let result = current.connection.send_packed_command(&command(request)).await;
        if result.as_ref().err().is_some_and(is_broken) {
            self.drop_current().await;
        }
        result.map_err(command_error).and_then(reply_from)
    }

    async fn drop_current(&mut self) {
        if let Some(current) = self.current.take() {
            self.failed(current).await;
        }
    }

    /// Drops a connection that failed, so that the next operation opens another.
    async fn failed(&self, current: Current) {
        if let Ok(found) = self.shared.node(current.node) {
            found.failed(current.shared).await;
        }
    }
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

/// True when the connection is done for: a connection error other than a timeout
/// (after a timeout the multiplexed connection stays usable, and a request the
/// server still holds, paused, may yet run: closing it would decide that).
fn is_broken(error: &redis::RedisError) -> bool {
    error.code().is_none() && !error.is_timeout()
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
    async fn query(&mut self, request: &Request<'_>) -> Result<Reply, CommandError> {
        {
            self.shared.refresh().await?;
            let mut node = match (request.key(), &self.current) {
                (None, Some(current)) => current.node,
                (key, _) => self.shared.servers.route(key, self.node)?,
            };
            let mut hops = Hops::default();
            let mut asking = false;
            loop {
                if asking {
                    // ASK: the slot is being imported by this node; ASKING lets the
                    // next command through once.
                    self.send(node, &Request::Asking).await?;
                }
                let result = self.send(node, request).await;
                match self.shared.servers.learn(node, request.key(), &result) {
                    Learned::Nothing => return result,
                    Learned::Redirect(redirect) => {
                        let Some(pause) = hops.redirect() else {
                            return Err(CommandError::Server(ServerError::parse(
                                "ERR too many cluster redirections for one command",
                            )));
                        };
                        self.redirects += 1;
                        crate::observe::redirected(|| self.shared.servers.address(redirect.node), redirect.asking);
                        tokio::time::sleep(pause).await;
                        (node, asking) = (redirect.node, redirect.asking);
                    }
                }
            }
        }
    }

    fn is_fresh(&self) -> bool {
        self.current.as_ref().is_none_or(|current| current.fresh)
    }

    fn redirects(&self) -> u32 {
        self.redirects
    }

    /// Splits the batch by node (one group per node, as the routing core plans it): one round trip per node.
    /// Commands redirected inside a batch did not run; they are sent again one
    /// by one.
    async fn query_pipelined(&mut self, requests: &[Request<'_>]) -> Vec<Result<Reply, CommandError>> {
        {
            let current = self.current.as_ref().map(|current| current.node);
            let planned = match self.shared.refresh().await {
                Ok(()) => BatchPlan::new(&self.shared.servers, requests, self.node, current),
                Err(error) => Err(error),
            };
            let plan = match planned {
                Ok(plan) => plan,
                Err(error) => return requests.iter().map(|_| Err(copy_error(&error))).collect(),
            };
            let batches: Vec<(NodeId, Vec<Request<'_>>)> = plan
                .groups
                .iter()
                .map(|(node, members)| (*node, members.iter().map(|&index| requests[index]).collect()))
                .collect();
            let answers = self.send_batches(&batches).await;
            let replies = plan
                .groups
                .iter()
                .zip(answers)
                .map(|((node, members), answered)| (*node, members.clone(), answered))
                .collect();
            let merged = plan.merge(&self.shared.servers, replies);
            // A command redirected did not run: it is sent again on its own, and so
            // are the keyless commands after it (a `WAIT` must follow it).
            let mut resent = false;
            let mut results = Vec::with_capacity(merged.len());
            for (request, result) in requests.iter().zip(merged) {
                results.push(match result {
                    Some(result) if !(resent && request.key().is_none()) => result,
                    _ => {
                        resent = true;
                        self.query(request).await
                    }
                });
            }
            results
        }
    }
}

impl RedisAsyncSession {
    /// Sends one node's part of a batch in one round trip; a broken connection
    /// is dropped (not one that only timed out).
    async fn send_batch(&mut self, node: NodeId, batch: &[Request<'_>]) -> Vec<Result<Reply, CommandError>> {
        let current = match self.on(node).await {
            Ok(current) => current,
            Err(error) => return batch.iter().map(|_| Err(copy_error(&error))).collect(),
        };
        let results = query_pipelined_on(&mut current.connection, &pipeline(batch)).await;
        if is_broken_batch(&results) {
            self.drop_current().await;
        }
        results
    }

    /// Sends each node's part of a batch, all at once: one round trip for the
    /// batch however many nodes it spans.
    async fn send_batches(&mut self, batches: &[(NodeId, Vec<Request<'_>>)]) -> Vec<Vec<Result<Reply, CommandError>>> {
        if let [(node, batch)] = batches {
            return vec![self.send_batch(*node, batch).await];
        }
        let mut taken = Vec::with_capacity(batches.len());
        for (node, _) in batches {
            taken.push(self.take(*node).await);
        }
        let sending = taken.into_iter().zip(batches).map(|(current, (_, batch))| async move {
            match current {
                Ok(mut current) => {
                    let results = query_pipelined_on(&mut current.connection, &pipeline(batch)).await;
                    (Some(current), results)
                }
                Err(error) => (None, batch.iter().map(|_| Err(copy_error(&error))).collect()),
            }
        });
        let mut answers = Vec::with_capacity(batches.len());
        for (current, results) in futures_util::future::join_all(sending).await {
            match current {
                Some(current) if is_broken_batch(&results) => self.failed(current).await,
                Some(current) => self.current = Some(current),
                None => {}
            }
            answers.push(results);
        }
        answers
    }
}

/// True when a batch's connection is done for: its first command failed on the
/// connection, other than by a timeout (see [`is_broken`]).
fn is_broken_batch(results: &[Result<Reply, CommandError>]) -> bool {
    results.first().and_then(|result| result.as_ref().err()).is_some_and(|error| match error {
        CommandError::Connection { source, .. } => {
            !source.downcast_ref::<redis::RedisError>().is_some_and(redis::RedisError::is_timeout)
        }
        CommandError::Server(_) => false,
    })
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
