//! Redis Cluster for the default backend: the slot map, `MOVED` and `ASK`
//! redirections, and connections to each node.
//!
//! Every model keeps all its keys in one hash slot, so each operation has one
//! node: the master serving the slot of its first key. A cluster session routes
//! each command it is given by that key, and sends commands without a key
//! (`SCRIPT LOAD` after a `NOSCRIPT`) to the node that answered last: the one that
//! lacks the script. A redirection means the node did not run the command, so
//! following one never runs a write twice.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use super::node::{NodeConnections, NodeSession};
use super::{Request, Session};
use crate::connection::{Dsn, Reuse, Timeouts, host_port};
use crate::error::{Error, Result};
use crate::key::{Key, hash_slot};
use crate::wire::{CommandError, Delivery, Reply, ServerError};

/// How many redirections one command may follow (a slot moving twice while one
/// command is under way is already rare).
const MAX_REDIRECTS: usize = 5;
/// The pause before following a second redirection for the same command, times
/// the redirections so far.
const REDIRECT_PAUSE: Duration = Duration::from_millis(10);
const SLOTS: usize = 16384;

/// The nodes of one cluster and the map of which serves each slot.
pub(crate) struct Cluster {
    seeds: Vec<Dsn>,
    reuse: Reuse,
    timeouts: Timeouts,
    map: RwLock<SlotMap>,
}

#[derive(Default)]
struct SlotMap {
    /// The master serving each slot; empty until the map is first read.
    slots: Vec<Option<Arc<ClusterNode>>>,
    /// Every node met, by `host:port`, so that connections survive a refresh.
    nodes: HashMap<String, Arc<ClusterNode>>,
    /// Set after a connection error: the topology may have changed (failover).
    stale: bool,
}

/// One cluster node and its connections.
struct ClusterNode {
    address: String,
    connections: NodeConnections,
}

impl Cluster {
    pub(crate) fn new(seeds: &[Dsn], reuse: Reuse, timeouts: Timeouts) -> Result<Cluster> {
        if seeds.is_empty() {
            return Err(Error::Config("a cluster needs at least one seed node".into()));
        }
        if let Some(dsn) = seeds.iter().find(|dsn| dsn.db() != 0) {
            return Err(Error::Config(format!("{dsn}: Redis Cluster has only database 0")));
        }
        #[cfg(feature = "pool")]
        if let Reuse::Pooled { max_size: 0 } = reuse {
            return Err(Error::Config("a pool needs at least one connection".into()));
        }
        Ok(Cluster { seeds: seeds.to_vec(), reuse, timeouts, map: RwLock::new(SlotMap::default()) })
    }

    /// The same cluster with connections of its own (reused: one idle list per node).
    pub(crate) fn fork(&self) -> Cluster {
        Cluster {
            seeds: self.seeds.clone(),
            reuse: Reuse::Lazy,
            timeouts: self.timeouts,
            map: RwLock::new(SlotMap::default()),
        }
    }

    pub(crate) fn describe(&self) -> String {
        format!("cluster via {}", self.seeds[0])
    }

    /// A session; `block` makes it a dedicated one, for a blocking command.
    pub(crate) fn session(&self, block: Option<Duration>) -> ClusterSession<'_> {
        ClusterSession { cluster: self, current: None, block }
    }

    fn read_map(&self) -> std::sync::RwLockReadGuard<'_, SlotMap> {
        self.map.read().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn write_map(&self) -> std::sync::RwLockWriteGuard<'_, SlotMap> {
        self.map.write().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The master serving `slot`, reading the slot map first when it is missing or
    /// stale.
    fn node_for_slot(&self, slot: u16) -> Result<Arc<ClusterNode>, CommandError> {
        {
            let map = self.read_map();
            if !map.slots.is_empty() && !map.stale {
                return map.slots[usize::from(slot)].clone().ok_or_else(|| unserved(slot));
            }
        }
        self.refresh()?;
        self.read_map().slots[usize::from(slot)].clone().ok_or_else(|| unserved(slot))
    }

    /// Any node: for a command without a key and no node chosen yet.
    fn any_node(&self) -> Result<Arc<ClusterNode>, CommandError> {
        if let Some(node) = self.read_map().slots.iter().flatten().next() {
            return Ok(Arc::clone(node));
        }
        self.refresh()?;
        self.read_map().slots.iter().flatten().next().cloned().ok_or_else(|| unserved(0))
    }

    /// The node at `address` (`host:port`), made known if it is new.
    fn node_at(&self, address: &str) -> Result<Arc<ClusterNode>, CommandError> {
        if let Some(node) = self.read_map().nodes.get(address) {
            return Ok(Arc::clone(node));
        }
        let node = Arc::new(self.new_node(address)?);
        Ok(Arc::clone(self.write_map().nodes.entry(address.to_owned()).or_insert(node)))
    }

    fn new_node(&self, address: &str) -> Result<ClusterNode, CommandError> {
        let config = |reason: String| CommandError::Connection { delivery: Delivery::NotSent, source: reason.into() };
        let (host, port) = address
            .rsplit_once(':')
            .and_then(|(host, port)| Some((host.trim_start_matches('[').trim_end_matches(']'), port.parse().ok()?)))
            .ok_or_else(|| config(format!("the cluster named a node at {address:?}, which is not host:port")))?;
        let dsn = self.seeds[0].at_address(host, port);
        let connections =
            NodeConnections::for_cluster(&dsn, &self.reuse, self.timeouts).map_err(|e| config(e.to_string()))?;
        Ok(ClusterNode { address: address.to_owned(), connections })
    }

    /// Reads the slot map (`CLUSTER SLOTS`) from the first node that answers:
    /// known masters first, then the seeds.
    fn refresh(&self) -> Result<(), CommandError> {
        let mut candidates: Vec<String> = self.read_map().nodes.keys().cloned().collect();
        candidates.extend(self.seeds.iter().filter_map(|seed| seed.address().host_port()));
        let mut last_error = None;
        for address in candidates {
            let answer = self.node_at(&address).and_then(|node| {
                let mut session = NodeSession::owned(node.connections.opener.open()?);
                session.query(&Request::ClusterSlots)
            });
            match answer.map(|reply| parse_slots(&reply, &address)) {
                Ok(Some(ranges)) => return self.install(ranges),
                Ok(None) => {
                    last_error = Some(CommandError::Server(ServerError::parse(&format!(
                        "ERR unexpected CLUSTER SLOTS reply from {address}"
                    ))))
                }
                Err(error) => last_error = Some(error),
            }
        }
        Err(last_error.unwrap_or_else(|| unserved(0)))
    }

    fn install(&self, ranges: Vec<(u16, u16, String)>) -> Result<(), CommandError> {
        let mut slots = vec![None; SLOTS];
        for (first, last, address) in ranges {
            let node = self.node_at(&address)?;
            for slot in &mut slots[usize::from(first)..=usize::from(last).min(SLOTS - 1)] {
                *slot = Some(Arc::clone(&node));
            }
        }
        let mut map = self.write_map();
        map.slots = slots;
        map.stale = false;
        Ok(())
    }

    /// Records what a `MOVED` said: `slot` is now served at `address`.
    fn moved(&self, slot: u16, node: &Arc<ClusterNode>) {
        let mut map = self.write_map();
        if let Some(entry) = map.slots.get_mut(usize::from(slot)) {
            *entry = Some(Arc::clone(node));
        }
    }

    fn mark_stale(&self) {
        self.write_map().stale = true;
    }
}

fn unserved(slot: u16) -> CommandError {
    CommandError::Server(ServerError::parse(&format!("CLUSTERDOWN hash slot {slot} is not served by any known node")))
}

/// `CLUSTER SLOTS` as `(first, last, "host:port")` per range; an empty host means
/// "the node you asked" (`asked`).
fn parse_slots(reply: &Reply, asked: &str) -> Option<Vec<(u16, u16, String)>> {
    let Reply::Array(ranges) = reply else { return None };
    let asked_host = asked.rsplit_once(':').map_or(asked, |(host, _)| host);
    ranges
        .iter()
        .map(|range| {
            let Reply::Array(parts) = range else { return None };
            let (Some(Reply::Int(first)), Some(Reply::Int(last)), Some(Reply::Array(master))) =
                (parts.first(), parts.get(1), parts.get(2))
            else {
                return None;
            };
            let host = match master.first()? {
                Reply::Bulk(host) if host.is_empty() => asked_host.to_owned(),
                Reply::Bulk(host) => String::from_utf8_lossy(host).into_owned(),
                _ => return None,
            };
            let Some(Reply::Int(port)) = master.get(1) else { return None };
            let port = u16::try_from(*port).ok()?;
            Some((u16::try_from(*first).ok()?, u16::try_from(*last).ok()?, host_port(&host, port)))
        })
        .collect()
}

/// Where a redirection points: the slot and the node's `host:port`.
fn redirection(error: &ServerError) -> Option<(u16, &str)> {
    let (slot, address) = error.message.split_once(' ')?;
    Some((slot.parse().ok()?, address.trim()))
}

/// A session on a cluster: a connection to the node of the command under way,
/// switched when a command's key lives elsewhere or a redirection says so.
pub(crate) struct ClusterSession<'a> {
    cluster: &'a Cluster,
    current: Option<(Arc<ClusterNode>, NodeSession<'static>)>,
    /// Set for a dedicated session: connections of its own, with a read timeout
    /// long enough for a blocking command.
    block: Option<Duration>,
}

impl ClusterSession<'_> {
    /// The session on `node`, opening one if the current session is elsewhere.
    fn on(&mut self, node: Arc<ClusterNode>) -> Result<&mut NodeSession<'static>, CommandError> {
        let same = self.current.as_ref().is_some_and(|(current, _)| current.address == node.address);
        if !same {
            // Hand back the previous node's connection before taking another.
            self.current = None;
            let session = self.open(&node)?;
            self.current = Some((node, session));
        }
        match self.current.as_mut() {
            Some((_, session)) => Ok(session),
            None => Err(unserved(0)),
        }
    }

    fn open(&self, node: &ClusterNode) -> Result<NodeSession<'static>, CommandError> {
        match self.block {
            Some(block) => Ok(NodeSession::owned(node.connections.opener.open_blocking(block)?)),
            None => node.connections.session_of_its_own(),
        }
    }

    /// The node a command goes to first.
    fn target(&self, key: Option<&Key>) -> Result<Arc<ClusterNode>, CommandError> {
        match key {
            Some(key) => self.cluster.node_for_slot(hash_slot(key.as_bytes())),
            None => match &self.current {
                Some((node, _)) => Ok(Arc::clone(node)),
                None => self.cluster.any_node(),
            },
        }
    }

    /// Sends one command to `node`, following redirections.
    fn send(&mut self, mut node: Arc<ClusterNode>, request: &Request<'_>) -> Result<Reply, CommandError> {
        let mut asking = false;
        let mut redirects = 0;
        for _ in 0..=MAX_REDIRECTS {
            let session = self.on(Arc::clone(&node))?;
            if asking {
                // ASK: the slot is being imported by this node; ASKING lets the
                // next command through once.
                session.query(&Request::Asking)?;
            }
            let result = session.query(request);
            match &result {
                Err(CommandError::Server(error)) if error.code == "MOVED" || error.code == "ASK" => {
                    let Some((slot, address)) = redirection(error) else { return result };
                    if redirects > 0 {
                        // Redirected again: the nodes may not agree yet on a slot
                        // that just moved. Give them a moment to converge.
                        std::thread::sleep(REDIRECT_PAUSE * redirects);
                    }
                    redirects += 1;
                    let next = self.cluster.node_at(address)?;
                    asking = error.code == "ASK";
                    if !asking {
                        self.cluster.moved(slot, &next);
                    }
                    node = next;
                }
                Err(CommandError::Connection { .. }) => {
                    self.cluster.mark_stale();
                    return result;
                }
                _ => return result,
            }
        }
        Err(CommandError::Server(ServerError::parse("ERR too many cluster redirections for one command")))
    }
}

impl Session for ClusterSession<'_> {
    fn query(&mut self, request: &Request<'_>) -> Result<Reply, CommandError> {
        let node = self.target(request.key())?;
        self.send(node, request)
    }

    fn is_fresh(&self) -> bool {
        self.current.as_ref().is_none_or(|(_, session)| session.is_fresh())
    }

    /// Splits the batch by node, keeping the order within each node: one round
    /// trip per node. Commands without a key (`SCRIPT LOAD`) go to every node of
    /// the batch. A transaction (`MULTI` … `EXEC`) goes whole to the node of its
    /// first key: keys elsewhere make the server abort it (`EXECABORT`). Commands
    /// redirected inside a batch did not run; they are sent again one by one.
    fn query_pipelined(&mut self, commands: &[Request<'_>]) -> Vec<Result<Reply, CommandError>> {
        let transaction = commands.iter().any(|command| matches!(command, Request::Multi));
        // The node of each command (`None`: no key).
        let mut targets = Vec::with_capacity(commands.len());
        for command in commands {
            match command.key().map(|key| self.cluster.node_for_slot(hash_slot(key.as_bytes()))) {
                Some(Ok(node)) => targets.push(Some(node)),
                Some(Err(error)) => return commands.iter().map(|_| Err(copy_error(&error))).collect(),
                None => targets.push(None),
            }
        }
        let mut groups: Vec<Arc<ClusterNode>> = Vec::new();
        for node in targets.iter().flatten() {
            if transaction && !groups.is_empty() {
                break;
            }
            if !groups.iter().any(|known| known.address == node.address) {
                groups.push(Arc::clone(node));
            }
        }
        if groups.is_empty() {
            match self.target(None) {
                Ok(node) => groups.push(node),
                Err(error) => return commands.iter().map(|_| Err(copy_error(&error))).collect(),
            }
        }
        let mut results: Vec<Option<Result<Reply, CommandError>>> = commands.iter().map(|_| None).collect();
        for node in groups {
            let members: Vec<usize> = (0..commands.len())
                .filter(|&i| match &targets[i] {
                    Some(target) => transaction || target.address == node.address,
                    None => true,
                })
                .collect();
            let batch: Vec<Request<'_>> = members.iter().map(|&i| commands[i]).collect();
            let replies = match self.on(node) {
                Ok(session) => session.query_pipelined(&batch),
                Err(error) => batch.iter().map(|_| Err(copy_error(&error))).collect(),
            };
            for (index, reply) in members.into_iter().zip(replies) {
                if matches!(reply, Err(CommandError::Connection { .. })) {
                    self.cluster.mark_stale();
                }
                // A keyless command answers for the first node it reached.
                if results[index].is_none() || targets[index].is_some() {
                    results[index] = Some(reply);
                }
            }
        }
        commands
            .iter()
            .zip(results)
            .map(|(command, result)| match result {
                Some(Err(CommandError::Server(error)))
                    if !transaction && (error.code == "MOVED" || error.code == "ASK") =>
                {
                    self.query(command)
                }
                Some(result) => result,
                None => Err(unserved(0)),
            })
            .collect()
    }
}

/// A `CommandError` for each of several commands (the type is not `Clone`).
fn copy_error(error: &CommandError) -> CommandError {
    match error {
        CommandError::Server(error) => CommandError::Server(error.clone()),
        CommandError::Connection { delivery, source } => {
            CommandError::Connection { delivery: *delivery, source: source.to_string().into() }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redirections_name_a_slot_and_a_node() {
        let moved = ServerError::parse("MOVED 3999 127.0.0.1:6381");
        assert_eq!(redirection(&moved), Some((3999, "127.0.0.1:6381")));
        assert_eq!(redirection(&ServerError::parse("MOVED nonsense")), None);
    }

    #[test]
    fn slot_ranges_are_parsed_with_empty_hosts_meaning_the_node_asked() {
        let node = |host: &[u8], port| {
            Reply::Array(vec![Reply::Bulk(host.to_vec()), Reply::Int(port), Reply::Bulk(b"id".to_vec())])
        };
        let reply = Reply::Array(vec![
            Reply::Array(vec![Reply::Int(0), Reply::Int(5460), node(b"10.0.0.1", 7000), node(b"10.0.0.4", 7003)]),
            Reply::Array(vec![Reply::Int(5461), Reply::Int(16383), node(b"", 7001)]),
        ]);
        assert_eq!(
            parse_slots(&reply, "10.0.0.9:7001"),
            Some(vec![(0, 5460, "10.0.0.1:7000".to_owned()), (5461, 16383, "10.0.0.9:7001".to_owned())])
        );
        assert_eq!(parse_slots(&Reply::Int(1), "h:1"), None);
    }
}
