//! Throwaway Redis Clusters: masters with replicas, failovers, slot migrations.

use std::collections::BTreeMap;
use std::time::Duration;

use super::{RedisServer, SETTLE_TIMEOUT, ServerError, bulk_text, expect_ok, free_port, replicas_online, settle};
use crate::Reply;

/// A throwaway Redis Cluster on free loopback ports: masters with the 16384 slots
/// split evenly between them, each with the same number of replicas (none for
/// [`start`](Self::start)). Dropping it stops every node.
///
/// Nodes detect a dead master after [`NODE_TIMEOUT`](Self::NODE_TIMEOUT) and its
/// replica takes over a moment later; replicas never migrate between masters and
/// may fail over however stale they are, so failovers are predictable.
///
/// ```
/// use redisext::testing::RedisCluster;
/// let cluster = RedisCluster::start(3)?;
/// assert_eq!(cluster.nodes().len(), 3);
/// let info = cluster.nodes()[0].command(&["CLUSTER", "INFO"])?;
/// assert!(matches!(info, redisext::Reply::Bulk(ref text) if text.starts_with(b"cluster_state:ok")));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct RedisCluster {
    nodes: Vec<RedisServer>,
    /// Each node's cluster id, in the order of `nodes`.
    ids: Vec<String>,
}

/// The master serving a hash slot and its running replicas, as a node of the
/// cluster sees them.
#[derive(Debug)]
pub struct Shard<'c> {
    /// The master (not running if it was killed and no replica has taken over yet).
    pub master: &'c RedisServer,
    /// Its replicas that are running.
    pub replicas: Vec<&'c RedisServer>,
}

impl RedisCluster {
    /// The number of hash slots in a Redis Cluster.
    pub const SLOTS: u16 = 16384;

    /// The nodes' `cluster-node-timeout`: how long a master may not answer before
    /// the others start to count it as failing. A killed master's replica takes
    /// over about 1 to 2 node timeouts after the kill.
    pub const NODE_TIMEOUT: Duration = Duration::from_millis(1000);

    /// Starts `masters` nodes, assigns the slots, introduces the nodes to each
    /// other and waits until every node reports `cluster_state:ok`.
    pub fn start(masters: usize) -> Result<RedisCluster, ServerError> {
        RedisCluster::start_with_replicas(masters, 0)
    }

    /// Starts `masters` masters with `replicas_per_master` replicas each, and waits
    /// until every node reports `cluster_state:ok`, every node sees the same
    /// masters, replicas and slots, and every replica is online (its initial sync
    /// done).
    ///
    /// [`nodes`](Self::nodes) lists the masters first, in slot order, then the
    /// replicas of the first master, of the second, and so on.
    ///
    /// ```
    /// use redisext::testing::RedisCluster;
    /// let cluster = RedisCluster::start_with_replicas(2, 1)?;
    /// let shard = cluster.shard_of(0)?;
    /// assert_eq!(shard.master.port(), cluster.nodes()[0].port());
    /// assert_eq!(shard.replicas[0].port(), cluster.nodes()[2].port());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn start_with_replicas(masters: usize, replicas_per_master: usize) -> Result<RedisCluster, ServerError> {
        if masters == 0 || masters > usize::from(Self::SLOTS) {
            return Err(ServerError::Command(format!("a cluster of {masters} masters is not possible")));
        }
        let total = masters * (1 + replicas_per_master);
        let mut nodes = Vec::with_capacity(total);
        for _ in 0..total {
            nodes.push(start_node()?);
        }
        let ids = nodes.iter().map(node_id).collect::<Result<Vec<_>, _>>()?;
        let slots = usize::from(Self::SLOTS);
        for (index, node) in nodes[..masters].iter().enumerate() {
            let first = (slots * index / masters).to_string();
            let last = (slots * (index + 1) / masters - 1).to_string();
            expect_ok(node.command(&["CLUSTER", "ADDSLOTSRANGE", &first, &last])?)?;
        }
        let first_port = nodes[0].port().to_string();
        let first_bus = bus_port(&nodes[0]);
        for node in &nodes[1..] {
            expect_ok(node.command(&["CLUSTER", "MEET", "127.0.0.1", &first_port, &first_bus])?)?;
        }
        let cluster = RedisCluster { nodes, ids };
        settle(SETTLE_TIMEOUT, &format!("every node to know all {total} nodes"), |seen| {
            for node in &cluster.nodes {
                let lines = view(node)?;
                if lines.len() != total || lines.iter().any(NodeLine::is_troubled) {
                    *seen = format!("port {} knows {} nodes: {lines:?}", node.port(), lines.len());
                    return Ok(None);
                }
            }
            Ok(Some(()))
        })?;
        let master_of_replica = |replica: usize| (replica - masters) / replicas_per_master;
        for replica in masters..total {
            let master_id = &cluster.ids[master_of_replica(replica)];
            expect_ok(cluster.nodes[replica].command(&["CLUSTER", "REPLICATE", master_id])?)?;
        }
        let layout = cluster.wait_until_settled_layout()?;
        for replica in masters..total {
            let expected = cluster.nodes[master_of_replica(replica)].port();
            let role = layout.get(&cluster.nodes[replica].port());
            if role.map(|role| role.master) != Some(Some(expected)) {
                return Err(ServerError::Command(format!(
                    "node {} was made a replica of {expected} but the cluster sees {role:?}",
                    cluster.nodes[replica].port()
                )));
            }
        }
        Ok(cluster)
    }

    /// Every node as started, killed ones included: the masters first, in slot
    /// order (node 0 serves the lowest slots), then the replicas, grouped by master.
    /// Failovers change roles, not this order.
    pub fn nodes(&self) -> &[RedisServer] {
        &self.nodes
    }

    /// The node listening on `port`.
    pub fn node(&self, port: u16) -> Result<&RedisServer, ServerError> {
        self.index_of(port).map(|index| &self.nodes[index])
    }

    /// The cluster id (`CLUSTER MYID`) of the node on `port`.
    pub fn node_id(&self, port: u16) -> Result<&str, ServerError> {
        self.index_of(port).map(|index| self.ids[index].as_str())
    }

    fn index_of(&self, port: u16) -> Result<usize, ServerError> {
        self.nodes
            .iter()
            .position(|node| node.port() == port)
            .ok_or_else(|| ServerError::Command(format!("no node of the cluster listens on port {port}")))
    }

    fn running(&self) -> impl Iterator<Item = &RedisServer> {
        self.nodes.iter().filter(|node| node.is_running())
    }

    /// A DSN for one running node of the cluster (any node serves as a seed).
    pub fn url(&self) -> String {
        self.running().next().unwrap_or(&self.nodes[0]).url()
    }

    /// The DSNs of every running node.
    pub fn urls(&self) -> Vec<String> {
        self.running().map(RedisServer::url).collect()
    }

    /// The master serving `slot` and its running replicas, as the first running
    /// node sees them.
    pub fn shard_of(&self, slot: u16) -> Result<Shard<'_>, ServerError> {
        let observer = self.running().next().ok_or_else(|| ServerError::Command("no node is running".into()))?;
        let lines = view(observer)?;
        let master = lines.iter().find(|line| line.is_master() && line.serves(slot)).ok_or_else(|| {
            ServerError::Command(format!("port {} sees no master serving slot {slot}", observer.port()))
        })?;
        let replicas = lines
            .iter()
            .filter(|line| line.master_id.as_ref() == Some(&master.id))
            .map(|line| self.node(line.port))
            .filter(|replica| replica.as_ref().map_or(true, |replica| replica.is_running()))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Shard { master: self.node(master.port)?, replicas })
    }

    /// The master serving `slot`, as the first running node sees it.
    pub fn master_of(&self, slot: u16) -> Result<&RedisServer, ServerError> {
        Ok(self.shard_of(slot)?.master)
    }

    /// Kills the node on `port` with SIGKILL (see [`RedisServer::kill`]); it keeps
    /// its cluster config for [`restart`](Self::restart).
    pub fn kill(&mut self, port: u16) -> Result<(), ServerError> {
        let index = self.index_of(port)?;
        self.nodes[index].kill();
        Ok(())
    }

    /// Kills the master serving `slot` and returns its port. Its replica takes
    /// over: [`wait_for_failover`](Self::wait_for_failover) waits for that.
    ///
    /// ```no_run
    /// # // Runs in tests/topologies.rs; a failover takes a few seconds.
    /// use redisext::testing::RedisCluster;
    /// let mut cluster = RedisCluster::start_with_replicas(3, 1)?;
    /// let replica = cluster.shard_of(0)?.replicas[0].port();
    /// let old_master = cluster.kill_master_of(0)?;
    /// let new_master = cluster.wait_for_failover(0)?;
    /// assert_eq!(new_master.port(), replica);
    /// cluster.restart(old_master)?; // it rejoins as the new master's replica
    /// assert_eq!(cluster.shard_of(0)?.replicas[0].port(), old_master);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn kill_master_of(&mut self, slot: u16) -> Result<u16, ServerError> {
        let master = self.master_of(slot)?.port();
        self.kill(master)?;
        Ok(master)
    }

    /// Waits until a running master serves `slot` — after a kill of its master,
    /// the replica that took over — and the cluster has settled (as
    /// [`wait_until_settled`](Self::wait_until_settled)); returns that master.
    /// When the slot's master was never killed, that is the master it has.
    pub fn wait_for_failover(&self, slot: u16) -> Result<&RedisServer, ServerError> {
        let waiting_for = format!("a running master to serve slot {slot} and the cluster to settle");
        let port = settle(SETTLE_TIMEOUT, &waiting_for, |seen| {
            Ok(self.settled(seen)?.and_then(|layout| {
                layout
                    .iter()
                    .find(|(_, role)| role.slots.iter().any(|range| range.contains(&slot)))
                    .map(|(port, _)| *port)
            }))
        })?;
        self.node(port)
    }

    /// Starts the killed node on `port` again, on the same port and with its
    /// cluster config, and waits until the cluster has settled with it. A master
    /// whose replica took over comes back as that replica's replica (empty, then
    /// synced: persistence is off).
    pub fn restart(&mut self, port: u16) -> Result<(), ServerError> {
        let index = self.index_of(port)?;
        self.nodes[index].restart()?;
        self.wait_until_settled()
    }

    /// Waits (up to 30 s) until every running node reports `cluster_state:ok` and
    /// sees the same roles and slots for every running node (none of them
    /// failing), running masters serve all 16384 slots, and every running
    /// replica follows a running master and is online.
    pub fn wait_until_settled(&self) -> Result<(), ServerError> {
        self.wait_until_settled_layout().map(drop)
    }

    fn wait_until_settled_layout(&self) -> Result<Layout, ServerError> {
        settle(SETTLE_TIMEOUT, "the cluster to settle", |seen| self.settled(seen))
    }

    /// The layout of the running nodes if the cluster has settled (see
    /// [`wait_until_settled`](Self::wait_until_settled)); `seen` says why not.
    fn settled(&self, seen: &mut String) -> Result<Option<Layout>, ServerError> {
        let mut agreed: Option<Layout> = None;
        for node in self.running() {
            let state = node.info_field("cluster", "cluster_state")?;
            if state != "ok" {
                *seen = format!("port {} has cluster_state {state:?}", node.port());
                return Ok(None);
            }
            let lines = view(node)?;
            let mut layout = Layout::new();
            for other in self.running() {
                let line = lines.iter().find(|line| line.port == other.port());
                let Some(line) = line.filter(|line| !line.is_troubled()) else {
                    *seen = format!("port {} sees port {} as {line:?}", node.port(), other.port());
                    return Ok(None);
                };
                // A master this node does not list is port 0: not running.
                let master = line.master_id.as_ref().map(|id| lines.iter().find(|l| &l.id == id).map_or(0, |l| l.port));
                let slots = line.slots.iter().map(|(first, last)| *first..=*last).collect();
                layout.insert(other.port(), Role { master, slots });
            }
            match &agreed {
                Some(first) if *first != layout => {
                    *seen = format!("nodes disagree: {first:?} vs port {}: {layout:?}", node.port());
                    return Ok(None);
                }
                Some(_) => {}
                None => agreed = Some(layout),
            }
        }
        let Some(layout) = agreed else { return Ok(None) };
        let served: usize = layout.values().flat_map(|role| &role.slots).map(|range| range.clone().count()).sum();
        if served != usize::from(Self::SLOTS) {
            *seen = format!("running masters serve {served} slots: {layout:?}");
            return Ok(None);
        }
        for (port, role) in &layout {
            if role.master.is_some_and(|master| !layout.contains_key(&master)) {
                *seen = format!("replica {port} follows {:?}, which is not running", role.master);
                return Ok(None);
            }
            let replicas = layout
                .iter()
                .filter(|(_, other)| other.master == Some(*port))
                .map(|(replica, _)| self.node(*replica))
                .collect::<Result<Vec<_>, _>>()?;
            if !replicas.is_empty() && !replicas_online(self.node(*port)?, &replicas, seen)? {
                return Ok(None);
            }
        }
        Ok(Some(layout))
    }

    /// Moves `slot` and its keys to the master on port `to`, as `redis-cli
    /// --cluster reshard` does, and waits until every running node sees the new
    /// owner; returns how many keys moved. [`begin_migration`](Self::begin_migration)
    /// does the same a step at a time.
    pub fn migrate_slot(&self, slot: u16, to: u16) -> Result<usize, ServerError> {
        self.begin_migration(slot, to)?.finish()
    }

    /// Starts moving `slot` to the master on port `to`: marks it `IMPORTING` there
    /// and `MIGRATING` on its owner. Until [`SlotMigration::finish`], the owner
    /// answers `ASK` for keys of the slot that it no longer holds (those
    /// [`SlotMigration::move_keys`] moved), and the target answers them only after
    /// `ASKING`.
    ///
    /// ```
    /// use redisext::{Reply, testing::{RedisCluster, ServerError}};
    /// let cluster = RedisCluster::start(2)?;
    /// let slot = redisext::hash_slot(b"k");
    /// let owner = cluster.master_of(slot)?;
    /// let target = cluster.nodes().iter().find(|node| node.port() != owner.port()).unwrap();
    /// owner.command(&["SET", "k", "v"])?;
    ///
    /// let migration = cluster.begin_migration(slot, target.port())?;
    /// assert_eq!(migration.move_keys(10)?, 1);
    /// let redirect = owner.command(&["GET", "k"]).unwrap_err();
    /// assert!(matches!(redirect, ServerError::ErrorReply { ref error, .. } if error.code == "ASK"));
    /// let replies = target.commands(&[&["ASKING"], &["GET", "k"]])?;
    /// assert_eq!(replies[1], Reply::Bulk(b"v".to_vec()));
    /// migration.finish()?;
    /// assert_eq!(cluster.master_of(slot)?.port(), target.port());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn begin_migration(&self, slot: u16, to: u16) -> Result<SlotMigration<'_>, ServerError> {
        if slot >= Self::SLOTS {
            return Err(ServerError::Command(format!("slot {slot} does not exist (0..{})", Self::SLOTS)));
        }
        let source = self.master_of(slot)?;
        let target = self.node(to)?;
        if source.port() == to {
            return Err(ServerError::Command(format!("slot {slot} is already served by port {to}")));
        }
        let slot_text = slot.to_string();
        let (source_id, target_id) = (self.node_id(source.port())?, self.node_id(to)?);
        expect_ok(target.command(&["CLUSTER", "SETSLOT", &slot_text, "IMPORTING", source_id])?)?;
        expect_ok(source.command(&["CLUSTER", "SETSLOT", &slot_text, "MIGRATING", target_id])?)?;
        Ok(SlotMigration { cluster: self, slot, source, target })
    }
}

impl Drop for RedisCluster {
    fn drop(&mut self) {
        // Stop every node before any directory goes, so no node spends its last
        // moments failing over to a neighbour being torn down.
        for node in &mut self.nodes {
            node.kill();
        }
    }
}

/// A slot being moved between two masters, a step at a time (from
/// [`RedisCluster::begin_migration`]). Dropping it unfinished leaves the slot
/// half-migrated.
#[derive(Debug)]
pub struct SlotMigration<'c> {
    cluster: &'c RedisCluster,
    slot: u16,
    source: &'c RedisServer,
    target: &'c RedisServer,
}

impl<'c> SlotMigration<'c> {
    /// The slot being moved.
    pub fn slot(&self) -> u16 {
        self.slot
    }

    /// The master the slot is moving from.
    pub fn source(&self) -> &'c RedisServer {
        self.source
    }

    /// The master the slot is moving to.
    pub fn target(&self) -> &'c RedisServer {
        self.target
    }

    /// Moves up to `batch` of the keys still on the source to the target
    /// (`CLUSTER GETKEYSINSLOT`, then one `MIGRATE … KEYS`); returns how many it
    /// moved, 0 once none are left.
    pub fn move_keys(&self, batch: usize) -> Result<usize, ServerError> {
        let (slot, batch) = (self.slot.to_string(), batch.max(1).to_string());
        let Reply::Array(keys) = self.source.command(&["CLUSTER", "GETKEYSINSLOT", &slot, &batch])? else {
            return Err(ServerError::Command("CLUSTER GETKEYSINSLOT did not answer an array".into()));
        };
        let keys: Vec<Vec<u8>> = keys
            .into_iter()
            .map(|key| match key {
                Reply::Bulk(key) => Ok(key),
                other => Err(ServerError::Command(format!("CLUSTER GETKEYSINSLOT listed {}", other.describe()))),
            })
            .collect::<Result<_, _>>()?;
        if keys.is_empty() {
            return Ok(0);
        }
        let port = self.target.port().to_string();
        let mut args: Vec<&[u8]> = vec![b"MIGRATE", b"127.0.0.1", port.as_bytes(), b"", b"0", b"10000", b"KEYS"];
        args.extend(keys.iter().map(Vec::as_slice));
        match self.source.command_bytes(&args)? {
            // NOKEY: the keys expired meanwhile.
            Reply::Status(status) if status == "NOKEY" => Ok(0),
            reply => expect_ok(reply).map(|()| keys.len()),
        }
    }

    /// Moves the remaining keys, gives the slot to the target on the target, the
    /// source and every other running master (`CLUSTER SETSLOT … NODE`), and
    /// waits until every running node sees the target serve it. Returns how many
    /// keys it moved.
    pub fn finish(self) -> Result<usize, ServerError> {
        let mut moved = 0;
        loop {
            match self.move_keys(100)? {
                0 => break,
                batch => moved += batch,
            }
        }
        let slot = self.slot.to_string();
        let target_id = self.cluster.node_id(self.target.port())?;
        let target_view = view(self.target)?;
        let others = self.cluster.running().filter(|node| {
            node.port() != self.target.port()
                && node.port() != self.source.port()
                && target_view.iter().any(|line| line.port == node.port() && line.is_master())
        });
        for node in [self.target, self.source].into_iter().chain(others) {
            expect_ok(node.command(&["CLUSTER", "SETSLOT", &slot, "NODE", target_id])?)?;
        }
        let waiting_for = format!("every node to see port {} serve slot {slot}", self.target.port());
        settle(SETTLE_TIMEOUT, &waiting_for, |seen| {
            for node in self.cluster.running() {
                let lines = view(node)?;
                let owner = lines.iter().find(|line| line.is_master() && line.serves(self.slot));
                if owner.map(|line| line.port) != Some(self.target.port()) {
                    *seen = format!("port {} sees {owner:?}", node.port());
                    return Ok(None);
                }
            }
            Ok(Some(moved))
        })
    }
}

/// Starts one cluster node; retries with another bus port if its bus port was
/// taken meanwhile.
fn start_node() -> Result<RedisServer, ServerError> {
    let timeout = RedisCluster::NODE_TIMEOUT.as_millis().to_string();
    let mut last_error = None;
    for _ in 0..3 {
        // The cluster bus needs a port of its own; ask for a free one rather than
        // relying on port + 10000 being free (or below 65536).
        let bus = free_port()?.to_string();
        let args = super::owned(&[
            "--cluster-enabled",
            "yes",
            "--cluster-config-file",
            "nodes.conf",
            "--cluster-node-timeout",
            &timeout,
            "--cluster-port",
            &bus,
            // A replica may take over however long ago it last heard from its master,
            // and never moves to another master: failovers go where tests expect.
            "--cluster-replica-validity-factor",
            "0",
            "--cluster-allow-replica-migration",
            "no",
        ]);
        match RedisServer::start_configured(args, true, None) {
            Ok(node) => return Ok(node),
            Err(error @ ServerError::DidNotStart { .. }) => last_error = Some(error),
            Err(error) => return Err(error),
        }
    }
    Err(last_error.unwrap_or_else(|| ServerError::Command("no free port".into())))
}

/// The bus port a node was started with.
fn bus_port(node: &RedisServer) -> String {
    let position = node.extra_args.iter().position(|arg| arg == "--cluster-port");
    position.and_then(|position| node.extra_args.get(position + 1)).cloned().unwrap_or_default()
}

fn node_id(node: &RedisServer) -> Result<String, ServerError> {
    bulk_text(node.command(&["CLUSTER", "MYID"])?, "CLUSTER MYID")
}

/// What the running nodes agree on: each one's role and slots, by port.
type Layout = BTreeMap<u16, Role>;

#[derive(Debug, PartialEq, Eq)]
struct Role {
    /// The port of its master, for a replica.
    master: Option<u16>,
    slots: Vec<std::ops::RangeInclusive<u16>>,
}

/// One line of `CLUSTER NODES`.
#[derive(Debug)]
struct NodeLine {
    id: String,
    port: u16,
    /// `master`, `slave`, `fail?`, `fail`, `handshake`, … (not `myself`).
    flags: Vec<String>,
    master_id: Option<String>,
    slots: Vec<(u16, u16)>,
}

impl NodeLine {
    fn parse(line: &str) -> Option<NodeLine> {
        // <id> <ip:port@bus[,hostname]> <flags> <master> <ping> <pong> <epoch> <link> <slot>…
        let mut fields = line.split(' ');
        let id = fields.next()?.to_owned();
        let port = fields.next()?.split('@').next()?.rsplit(':').next()?.parse().ok()?;
        let flags = fields.next()?.split(',').filter(|flag| *flag != "myself").map(str::to_owned).collect();
        let master_id = Some(fields.next()?).filter(|master| *master != "-").map(str::to_owned);
        let slots = fields
            .skip(4)
            // `[slot->-id]` and `[slot-<-id]` mark a migration, not ownership.
            .filter(|range| !range.starts_with('['))
            .filter_map(|range| match range.split_once('-') {
                Some((first, last)) => Some((first.parse().ok()?, last.parse().ok()?)),
                None => range.parse().ok().map(|slot| (slot, slot)),
            })
            .collect();
        Some(NodeLine { id, port, flags, master_id, slots })
    }

    fn is_master(&self) -> bool {
        self.flags.iter().any(|flag| flag == "master")
    }

    fn is_troubled(&self) -> bool {
        self.flags.iter().any(|flag| matches!(flag.as_str(), "fail" | "fail?" | "handshake" | "noaddr"))
    }

    fn serves(&self, slot: u16) -> bool {
        self.slots.iter().any(|(first, last)| (*first..=*last).contains(&slot))
    }
}

/// The cluster as `node` sees it (`CLUSTER NODES`).
fn view(node: &RedisServer) -> Result<Vec<NodeLine>, ServerError> {
    let text = bulk_text(node.command(&["CLUSTER", "NODES"])?, "CLUSTER NODES")?;
    text.lines()
        .filter(|line| !line.is_empty())
        .map(|line| NodeLine::parse(line).ok_or_else(|| ServerError::Command(format!("CLUSTER NODES line {line:?}"))))
        .collect()
}
