//! The default backend, on blocking connections (this crate's own for plain TCP
//! and Unix sockets, the `redis` crate's for TLS and a given `redis::Client`): a master and
//! an optional replica, a master and replicas found through Sentinel, or the
//! nodes of a Redis Cluster. Where each command goes is decided by
//! `route` (the crate's routing core) (the async backend drives the same); this file opens
//! the connections, sends, and reads the topology when it says so.

use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use super::node::{NodeConnections, NodeSession, Opener};
use super::{Backend, Request, Session};
use crate::call::Node;
use crate::connection::{Dsn, Reuse, Timeouts};
use crate::error::{Error, Result};
use crate::route::{Answer, BatchPlan, Hops, Learned, NodeId, Probe, Servers, Shape};
use crate::wire::{CommandError, Reply, ServerError};

/// The default [`Backend`]: blocking connections, reused as
/// [`Reuse`] says, to a master and an optional replica, to the master and
/// replicas a set of sentinels names, or to the nodes of a Redis Cluster.
pub struct RedisBackend {
    servers: Arc<Servers>,
    nodes: NodeTable,
}

/// The connections of each node, by [`NodeId`], made on first use.
struct NodeTable {
    reuse: Reuse,
    timeouts: Timeouts,
    /// Send `READONLY` on new connections (cluster replica reads).
    readonly: bool,
    nodes: RwLock<Vec<Option<Arc<NodeConnections>>>>,
}

impl RedisBackend {
    /// A backend for `master` and an optional `replica`. Nothing is connected yet:
    /// connections open on first use. Should the replica be promoted (by hand or
    /// by an orchestrator), a `READONLY` refusal from the old master makes the
    /// client ask both nodes their `ROLE` and follow.
    pub fn new(master: &Dsn, replica: Option<&Dsn>, reuse: Reuse, timeouts: Timeouts) -> Result<RedisBackend> {
        let given: Vec<Dsn> = std::iter::once(master).chain(replica).cloned().collect();
        let servers = Servers::new(Shape::Fixed, given, master.clone(), true);
        RedisBackend::with_servers(servers, reuse, timeouts, false)
    }

    /// A backend on a `redis::Client` you already have (its address, TLS,
    /// database, credentials and protocol as you configured them), with this
    /// crate's connection reuse and timeouts on the connections it opens. No
    /// replica. Nothing is connected yet. See `Client::from_redis_client`. The
    /// connections are the redis crate's, which cannot be checked before a write:
    /// one the server closed while idle fails the operation written to it
    /// ("may have applied" for a plain write) where this crate's own connections
    /// (plain TCP and Unix-socket DSNs) would be replaced first.
    pub fn from_redis_client(client: redis::Client, reuse: Reuse, timeouts: Timeouts) -> Result<RedisBackend> {
        timeouts.check().map_err(Error::Config)?;
        let dsn = dsn_of(client.get_connection_info());
        let connections = NodeConnections::with_opener(Opener::from_client(client, timeouts), &reuse)?;
        Ok(RedisBackend {
            servers: Arc::new(Servers::new(Shape::Fixed, vec![dsn.clone()], dsn, true)),
            nodes: NodeTable {
                reuse,
                timeouts,
                readonly: false,
                nodes: RwLock::new(vec![Some(Arc::new(connections))]),
            },
        })
    }

    /// A backend for the Redis Cluster that the `seeds` belong to (any nodes of
    /// it; the slot map is read from the first that answers, on first use). Each
    /// operation goes to the master serving its key's hash slot, following
    /// `MOVED` and `ASK` redirections; with `replica_reads`, read-only scripts go
    /// to the slot's replicas (after `READONLY`).
    pub fn cluster(seeds: &[Dsn], reuse: Reuse, timeouts: Timeouts, replica_reads: bool) -> Result<RedisBackend> {
        let template = check_cluster_seeds(seeds)?;
        let shape = Shape::Cluster { seeds: (0..seeds.len()).collect() };
        let servers = Servers::new(shape, seeds.to_vec(), template, replica_reads);
        RedisBackend::with_servers(servers, reuse, timeouts, replica_reads)
    }

    /// A backend for the master that the `sentinels` call `master_name`, and its
    /// replicas (read from with `replica_reads`). Data nodes are reached as
    /// `data` says (user, password, database, TLS; its host is not used).
    pub fn sentinel(
        master_name: &str,
        sentinels: &[Dsn],
        data: &Dsn,
        reuse: Reuse,
        timeouts: Timeouts,
        replica_reads: bool,
    ) -> Result<RedisBackend> {
        if sentinels.is_empty() {
            return Err(Error::Config("Sentinel needs at least one sentinel address".into()));
        }
        let shape = Shape::Sentinel { name: master_name.to_owned(), sentinels: (0..sentinels.len()).collect() };
        let servers = Servers::new(shape, sentinels.to_vec(), data.clone(), replica_reads);
        RedisBackend::with_servers(servers, reuse, timeouts, false)
    }

    fn with_servers(servers: Servers, reuse: Reuse, timeouts: Timeouts, readonly: bool) -> Result<RedisBackend> {
        timeouts.check().map_err(Error::Config)?;
        #[cfg(feature = "pool")]
        if let Reuse::Pooled { max_size: 0 } = reuse {
            return Err(Error::Config("a pool needs at least one connection".into()));
        }
        let backend = RedisBackend {
            servers: Arc::new(servers),
            nodes: NodeTable { reuse, timeouts, readonly, nodes: RwLock::new(Vec::new()) },
        };
        // The nodes given are checked now (a bad TLS setting is a configuration error).
        if backend.servers.shape() == Shape::Fixed {
            for node in 0..backend.servers.dsn_count() {
                backend.nodes.get(node, &backend.servers)?;
            }
        }
        Ok(backend)
    }

    /// True when reads go to a separate replica.
    pub fn has_replica(&self) -> bool {
        self.servers.has_replica()
    }

    /// True for a Redis Cluster backend.
    pub fn is_cluster(&self) -> bool {
        self.servers.is_cluster()
    }

    /// Reads the topology again when it is due (see `route` (the crate's routing core)):
    /// waits for it while nothing is known yet.
    fn refresh(&self) -> Result<(), CommandError> {
        let now = Instant::now();
        if let Some(plan) = self.servers.begin_refresh(now) {
            let before = crate::observe::topology_watched().then(|| self.servers.masters());
            let outcome = self.probe(&plan);
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
                return Err(crate::route::unknown_topology(why));
            }
        }
        // Someone else is reading it: the first operations wait for that.
        let waited = Instant::now();
        while self.servers.is_unknown() && self.servers.is_refreshing() {
            if waited.elapsed() > self.nodes.timeouts.connect {
                break;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        Ok(())
    }

    /// Makes the probes in turn until one gives a topology that installs.
    fn probe(&self, plan: &[Probe]) -> std::result::Result<(), String> {
        let mut why = String::from("no node to ask");
        for probe in plan {
            let answer = match probe {
                Probe::ClusterShards(node) => self.ask(*node, &Request::ClusterShards).and_then(|reply| match reply {
                    Ok(reply) => Ok(Answer::ClusterShards { asked: *node, reply }),
                    // Before Redis 7: no CLUSTER SHARDS.
                    Err(_) => match self.ask(*node, &Request::ClusterSlots)? {
                        Ok(reply) => Ok(Answer::ClusterSlots { asked: *node, reply }),
                        Err(error) => Err(format!("{}: {error}", self.servers.address(*node))),
                    },
                }),
                Probe::Sentinel(node, name) => self.ask_sentinel(*node, name),
                Probe::Roles(nodes) => Ok(Answer::Roles(
                    nodes
                        .iter()
                        .filter_map(|node| match self.ask(*node, &Request::Role) {
                            Ok(Ok(reply)) => Some((*node, reply)),
                            _ => None,
                        })
                        .collect(),
                )),
            };
            match answer.and_then(|answer| self.servers.install(answer)) {
                Ok(()) => return Ok(()),
                Err(error) => why = error,
            }
        }
        Err(why)
    }

    fn ask_sentinel(&self, node: NodeId, name: &str) -> std::result::Result<Answer, String> {
        let master = self.ask(node, &Request::SentinelMaster(name))?.map_err(|e| e.to_string())?;
        let replicas = self.ask(node, &Request::SentinelReplicas(name))?.unwrap_or(Reply::Nil);
        Ok(Answer::Sentinel { master, replicas })
    }

    /// One command on a connection of its own to `node`: an error reply is the
    /// inner `Err`, a node that cannot be reached the outer one.
    fn ask(&self, node: NodeId, request: &Request<'_>) -> std::result::Result<Result<Reply, ServerError>, String> {
        let address = self.servers.address(node);
        let connections = self.nodes.get(node, &self.servers).map_err(|e| format!("{address}: {e}"))?;
        let mut session = NodeSession::owned(connections.opener.open().map_err(|e| format!("{address}: {e}"))?);
        match session.query(request) {
            Ok(reply) => Ok(Ok(reply)),
            Err(CommandError::Server(error)) => Ok(Err(error)),
            Err(error) => Err(format!("{address}: {error}")),
        }
    }
}

impl NodeTable {
    /// The connections of `node`, made when first needed.
    fn get(&self, node: NodeId, servers: &Servers) -> Result<Arc<NodeConnections>> {
        if let Some(Some(connections)) = self.read().get(node) {
            return Ok(Arc::clone(connections));
        }
        let dsn = servers.dsn(node);
        let made = Arc::new(if servers.is_cluster() {
            NodeConnections::for_cluster(&dsn, &self.reuse, self.timeouts, self.readonly)?
        } else {
            NodeConnections::new(&dsn, &self.reuse, self.timeouts)?
        });
        let mut nodes = self.nodes.write().unwrap_or_else(|poisoned| poisoned.into_inner());
        if nodes.len() <= node {
            nodes.resize(node + 1, None);
        }
        Ok(Arc::clone(nodes[node].get_or_insert(made)))
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Vec<Option<Arc<NodeConnections>>>> {
        self.nodes.read().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// A DSN saying where a user's `redis::Client` connects, for messages (its
/// password left out).
fn dsn_of(info: &redis::ConnectionInfo) -> Dsn {
    let db = info.redis_settings().db();
    let text = match info.addr() {
        redis::ConnectionAddr::Tcp(host, port) => format!("redis://{}/{db}", crate::connection::host_port(host, *port)),
        redis::ConnectionAddr::TcpTls { host, port, .. } => {
            format!("rediss://{}/{db}", crate::connection::host_port(host, *port))
        }
        redis::ConnectionAddr::Unix(path) => format!("unix://{}?db={db}", path.display()),
        #[allow(unreachable_patterns)]
        other => format!("redis://{other}"),
    };
    Dsn::parse(&text).unwrap_or_else(|_| Dsn::tcp("unknown", 0, db))
}

/// The seeds of a cluster, checked; the first is the template for the nodes met.
pub(crate) fn check_cluster_seeds(seeds: &[Dsn]) -> Result<Dsn> {
    let first = seeds.first().ok_or_else(|| Error::Config("a cluster needs at least one seed node".into()))?;
    if let Some(dsn) = seeds.iter().find(|dsn| dsn.db() != 0) {
        return Err(Error::Config(format!("{dsn}: Redis Cluster has only database 0")));
    }
    Ok(first.clone())
}

impl Backend for RedisBackend {
    type Session<'a> = RedisSession<'a>;

    fn session(&self, node: Node) -> Result<RedisSession<'_>, CommandError> {
        Ok(RedisSession { backend: self, node, current: None, block: None, redirects: 0 })
    }

    fn describe(&self, node: Node) -> String {
        match self.servers.shape() {
            Shape::Cluster { .. } => format!("cluster via {}", self.servers.dsn(0)),
            Shape::Sentinel { name, .. } => match self.servers.route(None, node) {
                Ok(id) => format!("{} (master {name} per sentinel {})", self.servers.dsn(id), self.servers.dsn(0)),
                Err(_) => format!("master {name} per sentinel {}", self.servers.dsn(0)),
            },
            Shape::Fixed => match self.servers.route(None, node) {
                Ok(id) => self.servers.dsn(id).to_string(),
                Err(_) => self.servers.dsn(0).to_string(),
            },
        }
    }

    fn dedicated_session(&self, node: Node, block: Duration) -> Result<RedisSession<'_>, CommandError> {
        Ok(RedisSession { backend: self, node, current: None, block: Some(block), redirects: 0 })
    }

    fn serving(&self, node: Node) -> Node {
        if self.servers.is_cluster() { Node::Master } else { self.servers.serving(node) }
    }

    fn is_cluster(&self) -> bool {
        self.servers.is_cluster()
    }

    fn fork(&self) -> Option<RedisBackend> {
        Some(RedisBackend {
            servers: Arc::clone(&self.servers),
            nodes: NodeTable {
                reuse: Reuse::Lazy,
                timeouts: self.nodes.timeouts,
                readonly: self.nodes.readonly,
                nodes: RwLock::new(Vec::new()),
            },
        })
    }
}

/// The connections held for one operation: to the node each command is routed
/// to (one node, but for a cluster pipeline spanning several).
pub struct RedisSession<'a> {
    backend: &'a RedisBackend,
    /// Which kind of node the operation asked for.
    node: Node,
    current: Option<(NodeId, NodeSession)>,
    /// Set for a dedicated session: connections of its own, with a read timeout
    /// long enough for a blocking command.
    block: Option<Duration>,
    /// Cluster redirections followed, for observability.
    redirects: u32,
}

impl RedisSession<'_> {
    /// The session on `node`, opening one if the current session is elsewhere.
    fn on(&mut self, node: NodeId) -> Result<&mut NodeSession, CommandError> {
        if self.current.as_ref().is_none_or(|(current, _)| *current != node) {
            // Hand back the previous node's connection before taking another.
            self.current = None;
            self.current = Some((node, self.take(node)?));
        }
        match self.current.as_mut() {
            Some((_, session)) => Ok(session),
            None => Err(crate::route::unknown_topology("no session".into())),
        }
    }

    /// The session on `node`, taken out of this session (the current one if it
    /// is there, else a new one): a batch holds one per node it spans.
    fn take(&mut self, node: NodeId) -> Result<NodeSession, CommandError> {
        if let Some((current, session)) = self.current.take() {
            if current == node {
                return Ok(session);
            }
            self.current = Some((current, session));
        }
        let opened = self.open(node);
        if opened.is_err() {
            self.backend.servers.unreachable(node);
        }
        opened
    }

    fn open(&self, node: NodeId) -> Result<NodeSession, CommandError> {
        let backend = self.backend;
        let connections =
            backend.nodes.get(node, &backend.servers).map_err(|e| crate::route::unknown_topology(e.to_string()))?;
        match self.block {
            Some(block) => Ok(NodeSession::owned(connections.opener.open_blocking(block)?)),
            None => connections.session(),
        }
    }

    /// The node a command goes to first: by its key, or (without one) where the
    /// session already is.
    fn target(&mut self, request: &Request<'_>) -> Result<NodeId, CommandError> {
        self.backend.refresh()?;
        match (request.key(), &self.current) {
            (None, Some((current, _))) => Ok(*current),
            (key, _) => self.backend.servers.route(key, self.node),
        }
    }

    /// Sends one command to `node`, following redirections.
    fn send(&mut self, mut node: NodeId, request: &Request<'_>) -> Result<Reply, CommandError> {
        let mut hops = Hops::default();
        let mut asking = false;
        loop {
            let session = self.on(node)?;
            if asking {
                // ASK: the slot is being imported by this node; ASKING lets the
                // next command through once.
                session.query(&Request::Asking)?;
            }
            let result = session.query(request);
            match self.backend.servers.learn(node, request.key(), &result) {
                Learned::Nothing => return result,
                Learned::Redirect(redirect) => {
                    let Some(pause) = hops.redirect() else {
                        return Err(CommandError::Server(ServerError::parse(
                            "ERR too many cluster redirections for one command",
                        )));
                    };
                    self.redirects += 1;
                    crate::observe::redirected(|| self.backend.servers.address(redirect.node), redirect.asking);
                    std::thread::sleep(pause);
                    (node, asking) = (redirect.node, redirect.asking);
                }
            }
        }
    }
}

impl Session for RedisSession<'_> {
    fn query(&mut self, request: &Request<'_>) -> Result<Reply, CommandError> {
        let node = self.target(request)?;
        self.send(node, request)
    }

    fn is_fresh(&self) -> bool {
        self.current.as_ref().is_none_or(|(_, session)| session.is_fresh())
    }

    fn redirects(&self) -> u32 {
        self.redirects
    }

    /// Splits the batch by node (one group per node, as the routing core plans it): one round trip per node.
    /// Commands redirected inside a batch did not run; they are sent again one by
    /// one.
    fn query_pipelined(&mut self, requests: &[Request<'_>]) -> Vec<Result<Reply, CommandError>> {
        let current = self.current.as_ref().map(|(node, _)| *node);
        let plan = match self
            .backend
            .refresh()
            .and_then(|()| BatchPlan::new(&self.backend.servers, requests, self.node, current))
        {
            Ok(plan) => plan,
            Err(error) => return requests.iter().map(|_| Err(copy_error(&error))).collect(),
        };
        // Written to every node first, then read: one round trip for the batch,
        // however many nodes it spans.
        let mut sent = Vec::with_capacity(plan.groups.len());
        for (node, members) in &plan.groups {
            let batch: Vec<Request<'_>> = members.iter().map(|&index| requests[index]).collect();
            let written = self.take(*node).map(|mut session| {
                let batch = session.send_pipelined(&batch);
                (session, batch)
            });
            sent.push((*node, members, written));
        }
        let mut replies = Vec::with_capacity(sent.len());
        for (node, members, written) in sent {
            let answered = match written {
                Ok((mut session, batch)) => {
                    let answered = session.receive_pipelined(batch);
                    self.current = Some((node, session));
                    answered
                }
                Err(error) => members.iter().map(|_| Err(copy_error(&error))).collect(),
            };
            replies.push((node, members.clone(), answered));
        }
        let merged = plan.merge(&self.backend.servers, replies);
        // A command redirected did not run: it is sent again on its own, and so are
        // the keyless commands after it (a `WAIT` must follow it to its new node).
        let mut resent = false;
        let mut results = Vec::with_capacity(merged.len());
        for (request, result) in requests.iter().zip(merged) {
            results.push(match result {
                Some(result) if !(resent && request.key().is_none()) => result,
                _ => {
                    resent = true;
                    self.query(request)
                }
            });
        }
        results
    }
}

/// A `CommandError` for each of several commands (the type is not `Clone`).
pub(super) fn copy_error(error: &CommandError) -> CommandError {
    match error {
        CommandError::Server(error) => CommandError::Server(error.clone()),
        CommandError::Connection { delivery, source } => {
            CommandError::Connection { delivery: *delivery, source: source.to_string().into() }
        }
    }
}
