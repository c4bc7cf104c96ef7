//! Where each command goes, with no I/O of its own: the blocking and the async
//! backends both drive it, so they route alike.
//!
//! A [`Topology`] is one of three shapes: a fixed master (and replica) given by
//! the user, a master and replicas found through Sentinel, or a Redis Cluster's
//! slot map. It answers which node serves a command ([`Topology::route`]),
//! learns from replies ([`Topology::redirected`] for `MOVED`/`ASK`,
//! [`Topology::failed`] for a node that could not be reached or refused a write
//! with `READONLY`), and says when and how to read the topology again
//! ([`Topology::refresh_plan`], [`Topology::install`]): after any of those, at
//! most once per [`MIN_REFRESH_INTERVAL`].
//!
//! Nodes get a [`NodeId`] when first met and keep it: a backend indexes its
//! connections by it, and connections survive a refresh.

use std::sync::RwLock;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use crate::call::Node;
use crate::connection::{Dsn, host_port};
use crate::key::{Key, hash_slot};
use crate::wire::{CommandError, Delivery, Reply, ServerError};

/// A node of the topology, by the order in which it was met.
pub(crate) type NodeId = usize;

/// Refreshes of one topology are at least this far apart: a failover makes every
/// client's every operation fail for a moment, and they must not all ask at once.
pub(crate) const MIN_REFRESH_INTERVAL: Duration = Duration::from_millis(100);

/// How many redirections one command may follow.
pub(crate) const MAX_REDIRECTS: usize = 16;

const SLOTS: usize = 16384;

/// The shape of a topology, and what it needs to be read again.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Shape {
    /// The nodes the user gave: the first is the master until a `ROLE` says
    /// otherwise (a replica promoted by hand).
    Fixed,
    /// Sentinels (by id) that know the master called `name`.
    Sentinel { name: String, sentinels: Vec<NodeId> },
    /// A Redis Cluster, found from its seed nodes (by id).
    Cluster { seeds: Vec<NodeId> },
}

/// One shard of a cluster (or the whole of a non-cluster topology).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct Shard {
    master: Option<NodeId>,
    replicas: Vec<NodeId>,
}

/// What is known of the servers, and when it was last read.
#[derive(Debug)]
pub(crate) struct Topology {
    shape: Shape,
    /// Every node met, as `host:port`; a [`NodeId`] indexes this list.
    nodes: Vec<String>,
    /// The shards; a fixed or Sentinel topology has exactly one.
    shards: Vec<Shard>,
    /// For a cluster: the shard serving each slot (`u16::MAX`: none known).
    slots: Vec<u16>,
    /// Set when something says the topology changed.
    stale: bool,
    last_refresh: Option<Instant>,
    /// Turned for each read from a replica, so they take turns.
    next_replica: AtomicUsize,
}

/// Why no node can take a command.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Unroutable {
    /// No node serves the slot (or the master is not known yet): read the topology.
    Unknown(String),
}

/// A redirection a node answered.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Redirect {
    /// The node to send the command to.
    pub(crate) node: NodeId,
    /// `ASK`: send `ASKING` first, and do not change the map.
    pub(crate) asking: bool,
}

/// How to read a topology again: which node to ask, with which command, in turn
/// until one answers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Probe {
    /// `CLUSTER SHARDS` (Redis 7), falling back to `CLUSTER SLOTS`.
    ClusterShards(NodeId),
    /// `SENTINEL get-master-addr-by-name` and `SENTINEL replicas`.
    Sentinel(NodeId, String),
    /// `ROLE` of each fixed node.
    Roles(Vec<NodeId>),
}

impl Topology {
    /// A topology over `nodes` (as `host:port`), shaped by `shape` whose ids index
    /// `nodes`. A fixed topology's first node is the master and the others its
    /// replicas; the other shapes are unknown until read.
    pub(crate) fn new(shape: Shape, nodes: Vec<String>) -> Topology {
        let shards = match shape {
            Shape::Fixed => vec![Shard { master: Some(0), replicas: (1..nodes.len()).collect() }],
            Shape::Sentinel { .. } => vec![Shard::default()],
            Shape::Cluster { .. } => Vec::new(),
        };
        let stale = !matches!(shape, Shape::Fixed);
        Topology {
            shape,
            nodes,
            shards,
            slots: Vec::new(),
            stale,
            last_refresh: None,
            next_replica: AtomicUsize::new(0),
        }
    }

    pub(crate) fn shape(&self) -> &Shape {
        &self.shape
    }

    pub(crate) fn is_cluster(&self) -> bool {
        matches!(self.shape, Shape::Cluster { .. })
    }

    /// The address of a node.
    pub(crate) fn address(&self, node: NodeId) -> &str {
        self.nodes.get(node).map_or("unknown node", String::as_str)
    }

    /// The id of the node at `address`, adding it when new.
    pub(crate) fn node_at(&mut self, address: &str) -> NodeId {
        match self.nodes.iter().position(|known| known == address) {
            Some(id) => id,
            None => {
                self.nodes.push(address.to_owned());
                self.nodes.len() - 1
            }
        }
    }

    /// True when the topology has a replica to read from (for `key`'s slot).
    pub(crate) fn has_replica(&self, key: Option<&Key>) -> bool {
        self.shard_of(key).is_some_and(|shard| !shard.replicas.is_empty())
    }

    fn shard_of(&self, key: Option<&Key>) -> Option<&Shard> {
        if self.is_cluster() {
            let slot = usize::from(hash_slot(key?.as_bytes()));
            let shard = *self.slots.get(slot)?;
            self.shards.get(usize::from(shard))
        } else {
            self.shards.first()
        }
    }

    /// The node for a command on `key` (or, without a key, any master) routed to
    /// `node`: reads may go to a replica when `replicas` allows it.
    pub(crate) fn route(&self, key: Option<&Key>, node: Node, replicas: bool) -> Result<NodeId, Unroutable> {
        let shard = match key {
            None if self.is_cluster() => self.shards.iter().find(|shard| shard.master.is_some()),
            key => self.shard_of(key),
        };
        let Some(shard) = shard else {
            let slot = key.map(|key| hash_slot(key.as_bytes()));
            return Err(Unroutable::Unknown(match slot {
                Some(slot) if self.is_cluster() => format!("no known node serves hash slot {slot}"),
                _ => "the master is not known yet".to_owned(),
            }));
        };
        if node == Node::Replica && replicas && !shard.replicas.is_empty() {
            let turn = self.next_replica.fetch_add(1, Ordering::Relaxed);
            return Ok(shard.replicas[turn % shard.replicas.len()]);
        }
        shard.master.ok_or_else(|| Unroutable::Unknown("the master is not known yet".to_owned()))
    }

    /// What an error reply says about the topology: for `MOVED` and `ASK` where to
    /// send the command (a `MOVED` also updates the slot map, and the map is read
    /// again soon: a slot that moved rarely moves alone).
    pub(crate) fn redirected(&mut self, error: &ServerError) -> Option<Redirect> {
        let asking = match error.code.as_str() {
            "MOVED" => false,
            "ASK" => true,
            _ => return None,
        };
        let (slot, address) = error.message.split_once(' ')?;
        let slot: usize = slot.parse().ok().filter(|slot| *slot < SLOTS)?;
        let node = self.node_at(address.trim());
        if !asking {
            self.stale = true;
            let shard = match self.shards.iter().position(|shard| shard.master == Some(node)) {
                Some(shard) => shard,
                None => {
                    self.shards.push(Shard { master: Some(node), replicas: Vec::new() });
                    self.shards.len() - 1
                }
            };
            if self.slots.len() == SLOTS {
                self.slots[slot] = u16::try_from(shard).unwrap_or(u16::MAX);
            }
        }
        Some(Redirect { node, asking })
    }

    /// `node` could not be reached (`unreachable`), or refused what its role does
    /// not allow (`READONLY`, `MASTERDOWN`, `CLUSTERDOWN`): the topology may have
    /// changed. For fixed nodes only a refusal says so: one that cannot be reached
    /// is down, not demoted, and asking the others their role would not help.
    pub(crate) fn failed(&mut self, node: NodeId, unreachable: bool) {
        let _ = node;
        if !(unreachable && self.shape == Shape::Fixed) {
            self.stale = true;
        }
    }

    /// True when the topology should be read again now.
    pub(crate) fn refresh_due(&self, now: Instant) -> bool {
        self.stale && self.last_refresh.is_none_or(|last| now.duration_since(last) >= MIN_REFRESH_INTERVAL)
    }

    /// How many shards have a master: 0 while nothing routes.
    fn route_count(&self) -> usize {
        self.shards.iter().filter(|shard| shard.master.is_some()).count()
    }

    /// The probes to make, in order, until one answers; marks the refresh as
    /// started (so that others do not start one too).
    pub(crate) fn refresh_plan(&mut self, now: Instant) -> Vec<Probe> {
        self.last_refresh = Some(now);
        match &self.shape {
            Shape::Fixed => {
                let mut nodes: Vec<NodeId> =
                    self.shards.iter().flat_map(|s| s.master.into_iter().chain(s.replicas.clone())).collect();
                nodes.sort_unstable();
                nodes.dedup();
                vec![Probe::Roles(nodes)]
            }
            Shape::Sentinel { name, sentinels } => {
                sentinels.iter().map(|sentinel| Probe::Sentinel(*sentinel, name.clone())).collect()
            }
            Shape::Cluster { seeds } => {
                // Known masters first (they know the map best), then replicas, then the seeds.
                let mut order: Vec<NodeId> = self.shards.iter().filter_map(|shard| shard.master).collect();
                order.extend(self.shards.iter().flat_map(|shard| shard.replicas.iter().copied()));
                order.extend(seeds.iter().copied());
                let mut seen = Vec::new();
                order.retain(|node| {
                    !seen.contains(node) && {
                        seen.push(*node);
                        true
                    }
                });
                order.into_iter().map(Probe::ClusterShards).collect()
            }
        }
    }

    /// Installs what a probe answered; an error says why the answer was not
    /// usable (the next probe of the plan is then tried).
    pub(crate) fn install(&mut self, answer: Answer) -> Result<(), String> {
        match answer {
            Answer::ClusterShards { asked, reply } => {
                let shards = parse_cluster_shards(&reply, self.address(asked))?;
                self.install_shards(shards)
            }
            Answer::ClusterSlots { asked, reply } => {
                let shards = parse_cluster_slots(&reply, self.address(asked))?;
                self.install_shards(shards)
            }
            Answer::Sentinel { master, replicas } => {
                let (master, replicas) = parse_sentinel(&master, &replicas)?;
                let master = self.node_at(&master);
                let replicas = replicas.iter().map(|replica| self.node_at(replica)).collect();
                self.shards = vec![Shard { master: Some(master), replicas }];
                self.stale = false;
                Ok(())
            }
            Answer::Roles(roles) => {
                let masters: Vec<NodeId> =
                    roles.iter().filter(|(_, role)| role_is_master(role)).map(|(node, _)| *node).collect();
                let [master] = masters.as_slice() else {
                    return Err(format!("{} of the nodes say they are a master", masters.len()));
                };
                let replicas = roles.iter().map(|(node, _)| *node).filter(|node| node != master).collect();
                self.shards = vec![Shard { master: Some(*master), replicas }];
                self.stale = false;
                Ok(())
            }
        }
    }

    fn install_shards(&mut self, shards: Shards) -> Result<(), String> {
        if shards.is_empty() {
            return Err("the node serves no slots".to_owned());
        }
        let mut slots = vec![u16::MAX; SLOTS];
        let mut installed = Vec::with_capacity(shards.len());
        for (index, (ranges, master, replicas)) in shards.into_iter().enumerate() {
            let master = self.node_at(&master);
            let replicas = replicas.iter().map(|replica| self.node_at(replica)).collect();
            for (first, last) in ranges {
                let last = usize::from(last).min(SLOTS - 1);
                for slot in &mut slots[usize::from(first)..=last] {
                    *slot = u16::try_from(index).unwrap_or(u16::MAX);
                }
            }
            installed.push(Shard { master: Some(master), replicas });
        }
        self.shards = installed;
        self.slots = slots;
        self.stale = false;
        Ok(())
    }
}

/// What a probe got back, for [`Topology::install`].
#[derive(Debug)]
pub(crate) enum Answer {
    /// The reply to `CLUSTER SHARDS` from `asked`.
    ClusterShards { asked: NodeId, reply: Reply },
    /// The reply to `CLUSTER SLOTS` from `asked` (servers before Redis 7).
    ClusterSlots { asked: NodeId, reply: Reply },
    /// The replies to `SENTINEL get-master-addr-by-name` and `SENTINEL replicas`.
    Sentinel { master: Reply, replicas: Reply },
    /// Each fixed node's reply to `ROLE` (those that answered).
    Roles(Vec<(NodeId, Reply)>),
}

/// True for a `ROLE` reply saying `master`.
fn role_is_master(reply: &Reply) -> bool {
    matches!(reply, Reply::Array(items) if matches!(items.first(), Some(Reply::Bulk(role)) if role == b"master"))
}

fn text(reply: &Reply) -> Option<String> {
    match reply {
        Reply::Bulk(bytes) => String::from_utf8(bytes.clone()).ok(),
        Reply::Status(text) => Some(text.clone()),
        _ => None,
    }
}

/// The value of `field` in a flat `[name, value, name, value…]` array.
fn field<'r>(pairs: &'r [Reply], name: &str) -> Option<&'r Reply> {
    pairs.chunks(2).find(|pair| pair.first().and_then(text).as_deref() == Some(name)).and_then(|pair| pair.get(1))
}

/// `CLUSTER SHARDS`: per shard its slot ranges, its master and its healthy
/// replicas (`host:port`). An endpoint of `?` or empty means "the node asked"'s
/// host (as Redis writes it when it does not know its own address).
type Shards = Vec<(Vec<(u16, u16)>, String, Vec<String>)>;

fn parse_cluster_shards(reply: &Reply, asked: &str) -> Result<Shards, String> {
    let unexpected = || format!("unexpected CLUSTER SHARDS reply from {asked}: {}", reply.describe());
    let Reply::Array(shards) = reply else { return Err(unexpected()) };
    let asked_host = asked.rsplit_once(':').map_or(asked, |(host, _)| host);
    let mut parsed = Vec::new();
    for shard in shards {
        let Reply::Array(shard) = shard else { return Err(unexpected()) };
        let Some(Reply::Array(bounds)) = field(shard, "slots") else { return Err(unexpected()) };
        let bounds: Vec<u16> = bounds
            .iter()
            .map(|bound| match bound {
                Reply::Int(n) => u16::try_from(*n).ok(),
                other => text(other).and_then(|t| t.parse().ok()),
            })
            .collect::<Option<_>>()
            .ok_or_else(unexpected)?;
        let ranges: Vec<(u16, u16)> = bounds.chunks(2).filter_map(|pair| Some((pair[0], *pair.get(1)?))).collect();
        let Some(Reply::Array(nodes)) = field(shard, "nodes") else { return Err(unexpected()) };
        let (mut master, mut replicas) = (None, Vec::new());
        for node in nodes {
            let Reply::Array(node) = node else { return Err(unexpected()) };
            let endpoint = field(node, "endpoint").and_then(text).filter(|e| !e.is_empty() && e != "?");
            let host = endpoint.or_else(|| field(node, "ip").and_then(text)).unwrap_or_else(|| asked_host.to_owned());
            let port = match field(node, "port") {
                Some(Reply::Int(port)) => u16::try_from(*port).ok(),
                other => other.and_then(text).and_then(|t| t.parse().ok()),
            };
            let Some(port) = port else { continue };
            // Redis 7.0 says `loading` for a replica in sync that has not yet seen a
            // write (offset 0): only a failed one is left out. One really loading
            // answers LOADING, and its reads go to the master meanwhile.
            let healthy = field(node, "health").and_then(text).is_none_or(|health| health != "fail");
            match field(node, "role").and_then(text).as_deref() {
                Some("master") => master = Some(host_port(&host, port)),
                Some("replica") if healthy => replicas.push(host_port(&host, port)),
                _ => {}
            }
        }
        // A shard without slots (a master just added, or one whose replica took
        // over) serves nothing: leave it out.
        if let (Some(master), false) = (master, ranges.is_empty()) {
            parsed.push((ranges, master, replicas));
        }
    }
    Ok(parsed)
}

/// `CLUSTER SLOTS` (before Redis 7): one entry per slot range, its master then
/// its replicas. An empty host means the node asked.
fn parse_cluster_slots(reply: &Reply, asked: &str) -> Result<Shards, String> {
    let unexpected = || format!("unexpected CLUSTER SLOTS reply from {asked}: {}", reply.describe());
    let Reply::Array(ranges) = reply else { return Err(unexpected()) };
    let asked_host = asked.rsplit_once(':').map_or(asked, |(host, _)| host);
    let address = |node: &Reply| -> Option<String> {
        let Reply::Array(parts) = node else { return None };
        let host = match parts.first()? {
            Reply::Bulk(host) if host.is_empty() => asked_host.to_owned(),
            other => text(other)?,
        };
        let Some(Reply::Int(port)) = parts.get(1) else { return None };
        Some(host_port(&host, u16::try_from(*port).ok()?))
    };
    let mut shards: Shards = Vec::new();
    for range in ranges {
        let Reply::Array(parts) = range else { return Err(unexpected()) };
        let (Some(Reply::Int(first)), Some(Reply::Int(last)), Some(master)) =
            (parts.first(), parts.get(1), parts.get(2))
        else {
            return Err(unexpected());
        };
        let first = u16::try_from(*first).map_err(|_| unexpected())?;
        let last = u16::try_from(*last).map_err(|_| unexpected())?;
        let master = address(master).ok_or_else(unexpected)?;
        let replicas: Vec<String> = parts[3..].iter().filter_map(address).collect();
        match shards.iter_mut().find(|(_, known, _)| *known == master) {
            Some((ranges, _, _)) => ranges.push((first, last)),
            None => shards.push((vec![(first, last)], master, replicas)),
        }
    }
    Ok(shards)
}

/// `SENTINEL get-master-addr-by-name` (`[host, port]`) and `SENTINEL replicas`
/// (a list of field arrays): the master and the replicas in service.
fn parse_sentinel(master: &Reply, replicas: &Reply) -> Result<(String, Vec<String>), String> {
    let Reply::Array(parts) = master else {
        return Err(format!("the sentinel does not know the master ({})", master.describe()));
    };
    let (Some(host), Some(port)) = (parts.first().and_then(text), parts.get(1).and_then(text)) else {
        return Err(format!("unexpected master address from the sentinel: {}", master.describe()));
    };
    let port: u16 = port.parse().map_err(|_| format!("the sentinel gave the master port {port:?}"))?;
    let mut found = Vec::new();
    if let Reply::Array(replicas) = replicas {
        for replica in replicas {
            let Reply::Array(fields) = replica else { continue };
            let flags = field(fields, "flags").and_then(text).unwrap_or_default();
            let down = flags.split(',').any(|flag| matches!(flag, "s_down" | "o_down" | "disconnected"));
            let link_ok = field(fields, "master-link-status").and_then(text).is_none_or(|status| status == "ok");
            if let (Some(ip), Some(port), false, true) =
                (field(fields, "ip").and_then(text), field(fields, "port").and_then(text), down, link_ok)
                && let Ok(port) = port.parse::<u16>()
            {
                found.push(host_port(&ip, port));
            }
        }
    }
    Ok((host_port(&host, port), found))
}

/// How one command follows redirections: at most [`MAX_REDIRECTS`], with a short
/// pause before each one after the first (the nodes may not agree yet on a slot
/// that just moved).
#[derive(Debug, Default)]
pub(crate) struct Hops {
    redirects: usize,
}

impl Hops {
    /// The pause before following another redirection, or `None` when the command
    /// has followed too many.
    pub(crate) fn redirect(&mut self) -> Option<Duration> {
        if self.redirects >= MAX_REDIRECTS {
            return None;
        }
        // While a migration ends, the two nodes may send a command back and forth
        // for a moment: up to 16 hops over about a second.
        let pause = (Duration::from_millis(10) * u32::try_from(self.redirects).unwrap_or(u32::MAX))
            .min(Duration::from_millis(100));
        self.redirects += 1;
        Some(pause)
    }
}

/// What the backends on one set of servers share: the topology, how to reach
/// each node, and who is reading the topology again right now.
#[derive(Debug)]
pub(crate) struct Servers {
    topology: RwLock<Topology>,
    /// The DSNs of the first nodes (the fixed nodes, the sentinels, the seeds).
    given: Vec<Dsn>,
    /// How to reach a node met later (its user, password, database, TLS).
    template: Dsn,
    /// Reads may go to replicas (a fixed replica always serves reads).
    replica_reads: bool,
    refreshing: AtomicBool,
}

/// What a reply taught about the topology, for the command that got it.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Learned {
    /// The reply stands.
    Nothing,
    /// Send the command there instead.
    Redirect(Redirect),
}

impl Servers {
    /// Servers shaped by `shape` whose first nodes are `given`; nodes met later
    /// are reached as `template` says, at their own address.
    pub(crate) fn new(shape: Shape, given: Vec<Dsn>, template: Dsn, replica_reads: bool) -> Servers {
        let nodes = given.iter().map(|dsn| dsn.address().host_port().unwrap_or_else(|| dsn.to_string())).collect();
        let replica_reads = replica_reads || matches!(shape, Shape::Fixed);
        Servers {
            topology: RwLock::new(Topology::new(shape, nodes)),
            given,
            template,
            replica_reads,
            refreshing: AtomicBool::new(false),
        }
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Topology> {
        self.topology.read().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Topology> {
        self.topology.write().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// How to reach `node`.
    pub(crate) fn dsn(&self, node: NodeId) -> Dsn {
        if let Some(dsn) = self.given.get(node) {
            return dsn.clone();
        }
        let address = self.read().address(node).to_owned();
        let (host, port) = split_host_port(&address).unwrap_or((address.as_str(), 0));
        self.template.at_address(host, port)
    }

    /// How many nodes were given (fixed nodes, sentinels or seeds).
    pub(crate) fn dsn_count(&self) -> usize {
        self.given.len()
    }

    /// The address of `node`, for messages.
    pub(crate) fn address(&self, node: NodeId) -> String {
        self.read().address(node).to_owned()
    }

    /// True for a Redis Cluster.
    pub(crate) fn is_cluster(&self) -> bool {
        self.read().is_cluster()
    }

    /// The shape of the servers.
    pub(crate) fn shape(&self) -> Shape {
        self.read().shape().clone()
    }

    /// True when reads of `node` may go to another server than writes: pipelines
    /// then send them in a batch of their own.
    pub(crate) fn serving(&self, node: Node) -> Node {
        if node == Node::Replica && self.replica_reads && self.read().has_replica(None) { node } else { Node::Master }
    }

    /// True when a separate replica serves reads.
    pub(crate) fn has_replica(&self) -> bool {
        self.replica_reads && self.read().has_replica(None)
    }

    /// The node for a command on `key` routed to `node`.
    pub(crate) fn route(&self, key: Option<&Key>, node: Node) -> Result<NodeId, CommandError> {
        self.read().route(key, node, self.replica_reads).map_err(|Unroutable::Unknown(why)| unknown_topology(why))
    }

    /// What `result`, answered by `node`, says: a redirection to follow, or a
    /// change of topology (a node unreachable, demoted, or without quorum) to
    /// read again soon.
    pub(crate) fn learn(&self, node: NodeId, key: Option<&Key>, result: &Result<Reply, CommandError>) -> Learned {
        match result {
            Err(CommandError::Server(error)) => {
                if let Some(redirect) = self.write().redirected(error) {
                    return Learned::Redirect(redirect);
                }
                // A replica that cannot serve reads yet (loading, or cut off from its
                // master): the read goes to the master instead.
                if matches!(error.code.as_str(), "LOADING" | "MASTERDOWN")
                    && let Ok(master) = self.route(key, Node::Master)
                    && master != node
                {
                    self.write().failed(node, false);
                    return Learned::Redirect(Redirect { node: master, asking: false });
                }
                if matches!(error.code.as_str(), "READONLY" | "MASTERDOWN" | "CLUSTERDOWN") {
                    self.write().failed(node, false);
                }
                Learned::Nothing
            }
            Err(CommandError::Connection { .. }) => {
                self.write().failed(node, true);
                Learned::Nothing
            }
            Ok(_) => Learned::Nothing,
        }
    }

    /// The addresses of the masters known, shard by shard: what an observer
    /// compares before and after a refresh to see a failover.
    pub(crate) fn masters(&self) -> Vec<String> {
        let topology = self.read();
        topology.shards.iter().filter_map(|shard| shard.master).map(|node| topology.address(node).to_owned()).collect()
    }

    /// `node` could not be reached.
    pub(crate) fn unreachable(&self, node: NodeId) {
        self.write().failed(node, true);
    }

    /// The probes to make when the topology is due to be read again and no one
    /// else is reading it; `None` otherwise. The caller makes them and hands the
    /// answers to [`install`](Self::install), then calls [`refreshed`](Self::refreshed).
    pub(crate) fn begin_refresh(&self, now: Instant) -> Option<Vec<Probe>> {
        if !self.read().refresh_due(now) || self.refreshing.swap(true, Ordering::AcqRel) {
            return None;
        }
        Some(self.write().refresh_plan(now))
    }

    /// Installs what a probe answered (see [`Topology::install`]).
    pub(crate) fn install(&self, answer: Answer) -> Result<(), String> {
        self.write().install(answer)
    }

    /// The refresh begun by [`begin_refresh`](Self::begin_refresh) is over.
    pub(crate) fn refreshed(&self) {
        self.refreshing.store(false, Ordering::Release);
    }

    /// True while nothing is known of the topology (no read has succeeded).
    pub(crate) fn is_unknown(&self) -> bool {
        self.read().route_count() == 0
    }

    /// True while another caller is reading the topology.
    pub(crate) fn is_refreshing(&self) -> bool {
        self.refreshing.load(Ordering::Acquire)
    }
}

/// One node's replies to its part of a batch: the node, the positions of its
/// commands in the batch, and their replies.
pub(crate) type GroupReplies = (NodeId, Vec<usize>, Vec<Result<Reply, CommandError>>);

/// How a batch of commands is split over the nodes that serve them: one round
/// trip per node, the order kept within each. Commands without a key (`SCRIPT
/// LOAD`, `WAIT`) go to every node of the batch; a transaction (`MULTI` … `EXEC`)
/// goes whole to the node of its first key (keys elsewhere make the server abort
/// it).
#[derive(Debug)]
pub(crate) struct BatchPlan {
    /// Each node and the positions of the commands it gets.
    pub(crate) groups: Vec<(NodeId, Vec<usize>)>,
    /// The node of each command (`None`: no key).
    targets: Vec<Option<NodeId>>,
    transaction: bool,
}

impl BatchPlan {
    /// Plans `requests`, routed to `node`; `current` is where a keyless batch goes.
    pub(crate) fn new(
        servers: &Servers,
        requests: &[crate::backend::Request<'_>],
        node: Node,
        current: Option<NodeId>,
    ) -> Result<BatchPlan, CommandError> {
        let transaction = requests.iter().any(|request| matches!(request, crate::backend::Request::Multi));
        let targets = requests
            .iter()
            .map(|request| request.key().map(|key| servers.route(Some(key), node)).transpose())
            .collect::<Result<Vec<Option<NodeId>>, CommandError>>()?;
        let mut nodes: Vec<NodeId> = Vec::new();
        for target in targets.iter().flatten() {
            if transaction && !nodes.is_empty() {
                break;
            }
            if !nodes.contains(target) {
                nodes.push(*target);
            }
        }
        if nodes.is_empty() {
            nodes.push(match current {
                Some(current) => current,
                None => servers.route(None, node)?,
            });
        }
        let groups = nodes
            .into_iter()
            .map(|group| {
                let members = (0..requests.len())
                    .filter(|&index| match targets[index] {
                        Some(target) => transaction || target == group,
                        None => true,
                    })
                    .collect();
                (group, members)
            })
            .collect();
        Ok(BatchPlan { groups, targets, transaction })
    }

    /// Puts each group's replies back in the order of the commands. A keyless
    /// command answers for the first node it reached. Returns, for each command,
    /// its reply, or `None` when it must be sent again on its own: it was
    /// redirected (`MOVED`/`ASK`, so it did not run) outside a transaction.
    pub(crate) fn merge(
        &self,
        servers: &Servers,
        replies: Vec<GroupReplies>,
    ) -> Vec<Option<Result<Reply, CommandError>>> {
        let mut results: Vec<Option<Result<Reply, CommandError>>> = self.targets.iter().map(|_| None).collect();
        for (node, members, group_replies) in replies {
            for (index, reply) in members.into_iter().zip(group_replies) {
                if reply.as_ref().err().is_some_and(CommandError::is_connection) {
                    servers.unreachable(node);
                }
                if results[index].is_none() || self.targets[index].is_some() {
                    results[index] = Some(reply);
                }
            }
        }
        results
            .into_iter()
            .map(|result| match result {
                Some(Err(CommandError::Server(error)))
                    if !self.transaction && (error.code == "MOVED" || error.code == "ASK") =>
                {
                    None
                }
                Some(result) => Some(result),
                None => Some(Err(unknown_topology("no node answered".into()))),
            })
            .collect()
    }
}

/// The error for a command that no known node can take yet: nothing was sent.
pub(crate) fn unknown_topology(why: String) -> CommandError {
    CommandError::Connection { delivery: Delivery::NotSent, source: format!("not sent: {why}").into() }
}

/// `host:port` split (the host without IPv6 brackets).
pub(crate) fn split_host_port(address: &str) -> Option<(&str, u16)> {
    let (host, port) = address.rsplit_once(':')?;
    Some((host.trim_start_matches('[').trim_end_matches(']'), port.parse().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bulk(text: &str) -> Reply {
        Reply::Bulk(text.as_bytes().to_vec())
    }

    fn cluster() -> Topology {
        Topology::new(Shape::Cluster { seeds: vec![0] }, vec!["10.0.0.9:7000".to_owned()])
    }

    fn shard_node(ip: &str, port: i64, role: &str, health: &str) -> Reply {
        Reply::Array(vec![
            bulk("id"),
            bulk("abc"),
            bulk("port"),
            Reply::Int(port),
            bulk("ip"),
            bulk(ip),
            bulk("endpoint"),
            bulk(ip),
            bulk("role"),
            bulk(role),
            bulk("health"),
            bulk(health),
        ])
    }

    fn shards_reply() -> Reply {
        Reply::Array(vec![
            Reply::Array(vec![
                bulk("slots"),
                Reply::Array(vec![Reply::Int(0), Reply::Int(8191)]),
                bulk("nodes"),
                Reply::Array(vec![
                    shard_node("10.0.0.1", 7000, "master", "online"),
                    shard_node("10.0.0.4", 7003, "replica", "online"),
                ]),
            ]),
            Reply::Array(vec![
                bulk("slots"),
                Reply::Array(vec![Reply::Int(8192), Reply::Int(16383)]),
                bulk("nodes"),
                Reply::Array(vec![
                    shard_node("10.0.0.2", 7001, "master", "online"),
                    shard_node("10.0.0.5", 7004, "replica", "fail"),
                ]),
            ]),
        ])
    }

    #[test]
    fn a_cluster_is_unknown_until_read_then_routes_by_slot_and_to_replicas_for_reads() {
        let mut topology = cluster();
        let key = Key::new("{user1000}").unwrap();
        assert!(topology.route(Some(&key), Node::Master, false).is_err());
        assert!(topology.refresh_due(Instant::now()));
        assert_eq!(topology.refresh_plan(Instant::now()), vec![Probe::ClusterShards(0)]);
        topology.install(Answer::ClusterShards { asked: 0, reply: shards_reply() }).unwrap();
        let slot = hash_slot(key.as_bytes());
        let (master, replica) = if slot <= 8191 { ("10.0.0.1:7000", "10.0.0.4:7003") } else { ("10.0.0.2:7001", "") };
        let routed = topology.route(Some(&key), Node::Master, true).unwrap();
        assert_eq!(topology.address(routed), master);
        let read = topology.route(Some(&key), Node::Replica, true).unwrap();
        if replica.is_empty() {
            assert_eq!(topology.address(read), master, "a failed replica is not read from");
        } else {
            assert_eq!(topology.address(read), replica);
        }
        let read = topology.route(Some(&key), Node::Replica, false).unwrap();
        assert_eq!(topology.address(read), master, "replica reads are opt-in");
        assert!(!topology.refresh_due(Instant::now()));
    }

    #[test]
    fn moved_updates_the_slot_and_asks_for_a_refresh_ask_does_not() {
        let mut topology = cluster();
        topology.refresh_plan(Instant::now() - MIN_REFRESH_INTERVAL);
        topology.install(Answer::ClusterShards { asked: 0, reply: shards_reply() }).unwrap();
        let key = Key::new("a").unwrap(); // slot 15495
        let ask = topology.redirected(&ServerError::parse("ASK 15495 10.0.0.3:7002")).unwrap();
        assert!(ask.asking);
        assert_eq!(topology.address(topology.route(Some(&key), Node::Master, false).unwrap()), "10.0.0.2:7001");
        let moved = topology.redirected(&ServerError::parse("MOVED 15495 10.0.0.3:7002")).unwrap();
        assert!(!moved.asking);
        assert_eq!(topology.route(Some(&key), Node::Master, false).unwrap(), moved.node);
        assert!(topology.refresh_due(Instant::now()));
        assert_eq!(topology.redirected(&ServerError::parse("MOVED nonsense")), None);
        assert_eq!(topology.redirected(&ServerError::parse("ERR x")), None);
    }

    #[test]
    fn refreshes_are_rate_limited() {
        let mut topology = cluster();
        let now = Instant::now();
        topology.refresh_plan(now);
        topology.install(Answer::ClusterShards { asked: 0, reply: shards_reply() }).unwrap();
        topology.failed(0, true);
        assert!(!topology.refresh_due(now + MIN_REFRESH_INTERVAL / 2));
        assert!(topology.refresh_due(now + MIN_REFRESH_INTERVAL));
    }

    #[test]
    fn cluster_slots_is_understood_too_with_empty_hosts_meaning_the_node_asked() {
        let node = |host: &str, port| Reply::Array(vec![bulk(host), Reply::Int(port), bulk("id")]);
        let reply = Reply::Array(vec![
            Reply::Array(vec![Reply::Int(0), Reply::Int(5460), node("10.0.0.1", 7000), node("10.0.0.4", 7003)]),
            Reply::Array(vec![Reply::Int(5461), Reply::Int(16383), node("", 7001)]),
        ]);
        let shards = parse_cluster_slots(&reply, "10.0.0.9:7001").unwrap();
        assert_eq!(
            shards,
            vec![
                (vec![(0, 5460)], "10.0.0.1:7000".to_owned(), vec!["10.0.0.4:7003".to_owned()]),
                (vec![(5461, 16383)], "10.0.0.9:7001".to_owned(), vec![]),
            ]
        );
        assert!(parse_cluster_slots(&Reply::Int(1), "h:1").is_err());
    }

    #[test]
    fn a_fixed_master_demoted_by_hand_is_found_by_role() {
        let mut topology = Topology::new(Shape::Fixed, vec!["m:1".to_owned(), "r:2".to_owned()]);
        assert_eq!(topology.route(None, Node::Master, true).unwrap(), 0);
        assert_eq!(topology.route(None, Node::Replica, true).unwrap(), 1);
        topology.failed(0, true);
        assert!(!topology.refresh_due(Instant::now()), "a fixed node that is down was not demoted");
        topology.failed(0, false);
        assert_eq!(topology.refresh_plan(Instant::now()), vec![Probe::Roles(vec![0, 1])]);
        let role = |role: &str| Reply::Array(vec![bulk(role)]);
        topology.install(Answer::Roles(vec![(0, role("slave")), (1, role("master"))])).unwrap();
        assert_eq!(topology.route(None, Node::Master, true).unwrap(), 1);
        assert_eq!(topology.route(None, Node::Replica, true).unwrap(), 0);
        let two_masters = Answer::Roles(vec![(0, role("master")), (1, role("master"))]);
        assert!(topology.install(two_masters).is_err(), "a split brain is not installed");
    }

    #[test]
    fn sentinels_give_the_master_and_the_replicas_in_service() {
        let mut topology = Topology::new(
            Shape::Sentinel { name: "mymaster".into(), sentinels: vec![0, 1] },
            vec!["s1:26379".to_owned(), "s2:26379".to_owned()],
        );
        assert_eq!(topology.route_count(), 0);
        assert_eq!(
            topology.refresh_plan(Instant::now()),
            vec![Probe::Sentinel(0, "mymaster".into()), Probe::Sentinel(1, "mymaster".into())]
        );
        let replica = |ip: &str, flags: &str| {
            Reply::Array(vec![bulk("ip"), bulk(ip), bulk("port"), bulk("6380"), bulk("flags"), bulk(flags)])
        };
        let answer = Answer::Sentinel {
            master: Reply::Array(vec![bulk("10.0.0.1"), bulk("6379")]),
            replicas: Reply::Array(vec![replica("10.0.0.2", "slave"), replica("10.0.0.3", "s_down,slave")]),
        };
        topology.install(answer).unwrap();
        assert_eq!(topology.address(topology.route(None, Node::Master, true).unwrap()), "10.0.0.1:6379");
        assert_eq!(topology.address(topology.route(None, Node::Replica, true).unwrap()), "10.0.0.2:6380");
        let unknown = Answer::Sentinel { master: Reply::Nil, replicas: Reply::Array(vec![]) };
        assert!(topology.install(unknown).is_err());
    }

    #[test]
    fn redirections_are_bounded() {
        let mut hops = Hops::default();
        let pauses: Vec<_> = std::iter::from_fn(|| hops.redirect()).collect();
        assert_eq!(pauses.len(), MAX_REDIRECTS);
        assert_eq!(pauses[0], Duration::ZERO);
        assert!(pauses.iter().sum::<Duration>() < Duration::from_secs(2));
    }
}
