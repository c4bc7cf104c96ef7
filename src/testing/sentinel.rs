//! A throwaway Sentinel-managed master with replicas.

use std::collections::BTreeMap;
use std::time::Duration;

use super::{RedisServer, SETTLE_TIMEOUT, ServerError, expect_ok, replicas_online, settle};
use crate::Reply;

/// A master, its replicas and three Sentinels (quorum 2) watching them, on free
/// loopback ports. Dropping it stops every process.
///
/// The Sentinels count a master as down after [`DOWN_AFTER`](Self::DOWN_AFTER)
/// without an answer and promote a replica a moment later.
///
/// ```
/// use redisext::testing::RedisSentinels;
/// let sentinels = RedisSentinels::start("mymaster", 1)?;
/// assert_eq!(sentinels.sentinel_addresses().len(), 3);
/// assert_eq!(sentinels.master()?.port(), sentinels.nodes()[0].port());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct RedisSentinels {
    master_name: String,
    /// The data nodes: the first master, then the replicas.
    nodes: Vec<RedisServer>,
    sentinels: Vec<RedisServer>,
    /// The port of the master before the last `kill_master` or `failover`.
    previous_master: Option<u16>,
}

impl RedisSentinels {
    /// How many Sentinels watch the master.
    pub const SENTINELS: usize = 3;

    /// Each Sentinel's `down-after-milliseconds`: how long the master may not
    /// answer before a Sentinel counts it as down. Sentinels ping once a second
    /// and reconnect at most once a second: at 1000 ms a just-promoted master that
    /// answered one ping late was failed over again (seen on a loaded machine).
    pub const DOWN_AFTER: Duration = Duration::from_millis(2000);

    /// Each Sentinel's `failover-timeout`: the most a failover may take before it
    /// is abandoned (and the least time before another try).
    pub const FAILOVER_TIMEOUT: Duration = Duration::from_millis(3000);

    /// Starts a master named `master_name`, `replicas` replicas of it and three
    /// Sentinels (`<server> <config> --sentinel`), and waits until every Sentinel
    /// sees the master up, every replica (online) and the two other Sentinels.
    pub fn start(master_name: &str, replicas: usize) -> Result<RedisSentinels, ServerError> {
        if master_name.is_empty() || master_name.contains(char::is_whitespace) {
            return Err(ServerError::Command(format!("{master_name:?} is not a Sentinel master name")));
        }
        let master = RedisServer::start()?;
        let mut nodes = Vec::with_capacity(1 + replicas);
        for _ in 0..replicas {
            nodes.push(RedisServer::start_replica_of(&master)?);
        }
        nodes.insert(0, master);
        let (port, down_after, failover_timeout) =
            (nodes[0].port(), Self::DOWN_AFTER.as_millis(), Self::FAILOVER_TIMEOUT.as_millis());
        let config = format!(
            "sentinel monitor {master_name} 127.0.0.1 {port} 2\n\
             sentinel down-after-milliseconds {master_name} {down_after}\n\
             sentinel failover-timeout {master_name} {failover_timeout}\n\
             sentinel parallel-syncs {master_name} 1\n"
        );
        let mut sentinels = Vec::with_capacity(Self::SENTINELS);
        for _ in 0..Self::SENTINELS {
            sentinels.push(RedisServer::start_configured(Vec::new(), true, Some(config.clone()))?);
        }
        let topology = RedisSentinels { master_name: master_name.to_owned(), nodes, sentinels, previous_master: None };
        topology.wait_until_settled()?;
        Ok(topology)
    }

    /// The name the Sentinels know the master by.
    pub fn master_name(&self) -> &str {
        &self.master_name
    }

    /// The data nodes as started, killed ones included: the first master, then
    /// the replicas. Failovers change roles, not this order.
    pub fn nodes(&self) -> &[RedisServer] {
        &self.nodes
    }

    /// The Sentinels.
    pub fn sentinels(&self) -> &[RedisServer] {
        &self.sentinels
    }

    /// The Sentinels' addresses, `127.0.0.1:<port>`.
    pub fn sentinel_addresses(&self) -> Vec<String> {
        self.sentinels.iter().map(RedisServer::address).collect()
    }

    /// The Sentinels' DSNs, `redis://127.0.0.1:<port>/0`.
    pub fn sentinel_urls(&self) -> Vec<String> {
        self.sentinels.iter().map(RedisServer::url).collect()
    }

    /// The master, as every Sentinel names it (`SENTINEL
    /// GET-MASTER-ADDR-BY-NAME`); an error while they disagree (mid-failover).
    pub fn master(&self) -> Result<&RedisServer, ServerError> {
        let mut agreed = None;
        for sentinel in &self.sentinels {
            let port = self.master_port_by(sentinel)?;
            match agreed {
                Some(first) if first != port => {
                    return Err(ServerError::Command(format!(
                        "the Sentinels disagree on the master: port {first} or port {port}"
                    )));
                }
                _ => agreed = Some(port),
            }
        }
        self.node(agreed.unwrap_or_default())
    }

    /// The running data nodes other than the [master](Self::master).
    pub fn replicas(&self) -> Result<Vec<&RedisServer>, ServerError> {
        Ok(self.replicas_of(self.master()?.port()))
    }

    /// Kills the master with SIGKILL and returns its port; the Sentinels promote a
    /// replica: [`wait_for_failover`](Self::wait_for_failover) waits for that.
    /// The killed node stays down.
    ///
    /// ```no_run
    /// # // Runs in tests/topologies.rs; a failover takes a few seconds.
    /// use redisext::testing::RedisSentinels;
    /// let mut sentinels = RedisSentinels::start("mymaster", 2)?;
    /// let old = sentinels.kill_master()?;
    /// let new = sentinels.wait_for_failover()?;
    /// assert_ne!(new.port(), old);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn kill_master(&mut self) -> Result<u16, ServerError> {
        let port = self.master()?.port();
        self.previous_master = Some(port);
        let index = self.index_of(port)?;
        self.nodes[index].kill();
        Ok(port)
    }

    /// Asks a Sentinel for a planned switch (`SENTINEL FAILOVER`): a replica is
    /// promoted and the old master becomes its replica.
    /// [`wait_for_failover`](Self::wait_for_failover) waits for the switch. Soon
    /// after a previous switch the Sentinel may refuse (`NOGOODSLAVE`, `INPROG`):
    /// call [`wait_until_settled`](Self::wait_until_settled) in between.
    pub fn failover(&mut self) -> Result<(), ServerError> {
        let port = self.master()?.port();
        self.previous_master = Some(port);
        expect_ok(self.sentinels[0].command(&["SENTINEL", "FAILOVER", &self.master_name])?)
    }

    /// Waits (up to 30 s) until every Sentinel names a master other than the one
    /// before the last [`kill_master`](Self::kill_master) or
    /// [`failover`](Self::failover), and that node has the master role; returns
    /// it. That is the switch as clients see it. The rest follows:
    /// [`wait_until_settled`](Self::wait_until_settled) waits for it. After a kill
    /// the other replicas follow the new master within a second or so; after a
    /// planned switch the old master keeps the master role (and takes writes)
    /// until a Sentinel next looks at it and makes it a replica, up to 10 s later.
    pub fn wait_for_failover(&self) -> Result<&RedisServer, ServerError> {
        let waiting_for = match self.previous_master {
            Some(port) => format!("the Sentinels to replace the master on port {port}"),
            None => "the Sentinels to agree on a master".to_owned(),
        };
        let port = settle(SETTLE_TIMEOUT, &waiting_for, |seen| {
            Ok(self.switched(seen)?.filter(|port| {
                let replaced = Some(*port) != self.previous_master;
                if !replaced {
                    *seen = format!("the Sentinels still name port {port}");
                }
                replaced
            }))
        })?;
        self.node(port)
    }

    /// Waits (up to 30 s) until every Sentinel names the same running master, it
    /// lists every other running data node as an online replica, and every
    /// Sentinel sees the master up (no failover in progress), every running
    /// replica up and the two other Sentinels: another failover can then proceed
    /// at once.
    pub fn wait_until_settled(&self) -> Result<(), ServerError> {
        settle(SETTLE_TIMEOUT, "the Sentinels to know the master, its replicas and each other", |seen| {
            self.settled(seen)
        })
        .map(drop)
    }

    /// The master's port if every Sentinel names the same running master and it
    /// has the master role.
    fn switched(&self, seen: &mut String) -> Result<Option<u16>, ServerError> {
        let mut agreed = None;
        for sentinel in &self.sentinels {
            let port = self.master_port_by(sentinel)?;
            if agreed.is_some_and(|first| first != port) {
                *seen = format!("the Sentinels name port {agreed:?} and port {port}");
                return Ok(None);
            }
            agreed = Some(port);
        }
        let Some(port) = agreed else { return Ok(None) };
        let master = self.node(port)?;
        if !master.is_running() {
            *seen = format!("the Sentinels name port {port}, which is not running");
            return Ok(None);
        }
        let role = master.info_field("replication", "role")?;
        if role != "master" {
            *seen = format!("port {port}, named master, has role {role:?}");
            return Ok(None);
        }
        Ok(Some(port))
    }

    /// [`switched`](Self::switched), the master lists every other running data
    /// node online, and every Sentinel sees the master up, every running replica
    /// up and the other Sentinels.
    fn settled(&self, seen: &mut String) -> Result<Option<u16>, ServerError> {
        let Some(port) = self.switched(seen)? else { return Ok(None) };
        let replicas = self.replicas_of(port);
        if !replicas_online(self.node(port)?, &replicas, seen)? {
            return Ok(None);
        }
        let name = self.master_name.as_str();
        for sentinel in &self.sentinels {
            let master = fields(sentinel.command(&["SENTINEL", "MASTER", name])?);
            if !healthy(&master, "master") {
                *seen = format!("Sentinel {} sees the master as {:?}", sentinel.port(), master.get("flags"));
                return Ok(None);
            }
            let known = entries(sentinel.command(&["SENTINEL", "REPLICAS", name])?);
            if let Some(replica) =
                replicas.iter().map(|r| r.port()).find(|p| !known.iter().any(|r| is_up(r, *p, "slave")))
            {
                *seen = format!("Sentinel {} does not see replica {replica} up", sentinel.port());
                return Ok(None);
            }
            let known = entries(sentinel.command(&["SENTINEL", "SENTINELS", name])?);
            let mut others = self.sentinels.iter().map(RedisServer::port).filter(|other| *other != sentinel.port());
            if let Some(other) = others.find(|p| !known.iter().any(|s| is_up(s, *p, "sentinel"))) {
                *seen = format!("Sentinel {} does not see Sentinel {other}", sentinel.port());
                return Ok(None);
            }
        }
        Ok(Some(port))
    }

    /// The running data nodes other than the one on port `master`.
    fn replicas_of(&self, master: u16) -> Vec<&RedisServer> {
        self.nodes.iter().filter(|node| node.is_running() && node.port() != master).collect()
    }

    /// The master's port according to `sentinel`.
    fn master_port_by(&self, sentinel: &RedisServer) -> Result<u16, ServerError> {
        let reply = sentinel.command(&["SENTINEL", "GET-MASTER-ADDR-BY-NAME", &self.master_name])?;
        let port = match &reply {
            Reply::Array(address) => match address.get(1) {
                Some(Reply::Bulk(port)) => std::str::from_utf8(port).ok().and_then(|port| port.parse().ok()),
                _ => None,
            },
            _ => None,
        };
        port.ok_or_else(|| {
            ServerError::Command(format!("Sentinel {} names the master {}", sentinel.port(), reply.describe()))
        })
    }

    fn node(&self, port: u16) -> Result<&RedisServer, ServerError> {
        self.index_of(port).map(|index| &self.nodes[index])
    }

    fn index_of(&self, port: u16) -> Result<usize, ServerError> {
        self.nodes
            .iter()
            .position(|node| node.port() == port)
            .ok_or_else(|| ServerError::Command(format!("port {port} is not a data node of this topology")))
    }
}

impl Drop for RedisSentinels {
    fn drop(&mut self) {
        // The Sentinels first, so none reconfigures a data node being torn down.
        for process in self.sentinels.iter_mut().chain(&mut self.nodes) {
            process.kill();
        }
    }
}

/// A Sentinel's description of one instance: a flat array of names and values.
fn fields(reply: Reply) -> BTreeMap<String, String> {
    let Reply::Array(items) = reply else { return BTreeMap::new() };
    let text = |item: &Reply| match item {
        Reply::Bulk(bytes) => String::from_utf8_lossy(bytes).into_owned(),
        other => other.describe(),
    };
    items.chunks_exact(2).map(|pair| (text(&pair[0]), text(&pair[1]))).collect()
}

/// A list of instance descriptions (`SENTINEL REPLICAS`, `SENTINEL SENTINELS`).
fn entries(reply: Reply) -> Vec<BTreeMap<String, String>> {
    match reply {
        Reply::Array(items) => items.into_iter().map(fields).collect(),
        _ => Vec::new(),
    }
}

/// Whether `entry` describes the instance on `port` as up: see [`healthy`].
fn is_up(entry: &BTreeMap<String, String>, port: u16, role: &str) -> bool {
    entry.get("port").map(String::as_str) == Some(port.to_string().as_str()) && healthy(entry, role)
}

/// Whether a Sentinel's `flags` for an instance say `role` and neither down,
/// disconnected nor mid-failover (other flags, such as `master_down` — that
/// Sentinel's opinion of the master — do not matter).
fn healthy(entry: &BTreeMap<String, String>, role: &str) -> bool {
    let flags = entry.get("flags").map(String::as_str).unwrap_or_default();
    flags.split(',').any(|flag| flag == role)
        && !flags.split(',').any(|flag| matches!(flag, "s_down" | "o_down" | "disconnected" | "failover_in_progress"))
}
