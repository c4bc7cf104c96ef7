//! Servers: which URL to use, and every node reachable behind it — the master,
//! its replicas (`INFO replication`, followed both ways and through chains), and
//! in a cluster every node `CLUSTER NODES` lists. Connects as the library does
//! (`redisext::backend::redis_client`), so URLs, TLS and passwords are the library's.

use std::collections::{HashSet, VecDeque};
use std::time::Duration;

use clap::Args;
use std::sync::Mutex;

use redisext::{Dsn, Reply, Timeouts};

use crate::Failure;

/// The environment variables read, in order, when `--url` is not given.
pub(crate) const URL_VARIABLES: [&str; 2] = ["REDISEXT_URL", "REDIS_URL"];

/// The most nodes one run will contact, against a misconfigured topology.
const MAX_NODES: usize = 1000;

/// Options of every command that talks to servers.
#[derive(Debug, Args)]
pub(crate) struct ServerArgs {
    /// The server, as a DSN: redis://[user:password@]host[:port][/db],
    /// unix:///path.sock[?db=N] or rediss://… Without it, REDISEXT_URL, then
    /// REDIS_URL. Prefer the variables for a password: a command line is
    /// visible to other users of the machine. Passwords are never printed.
    #[arg(long, value_name = "URL", verbatim_doc_comment)]
    url: Option<String>,
    /// Talk to this server only: do not follow its replicas, its master or its
    /// cluster.
    #[arg(long, verbatim_doc_comment)]
    no_discovery: bool,
    /// Seconds to wait for a connection, and then for each reply.
    #[arg(long, value_name = "SECONDS", default_value_t = 5.0)]
    timeout: f64,
}

impl ServerArgs {
    /// The URL to use: `--url`, else the first variable of [`URL_VARIABLES`] set.
    pub(crate) fn dsn(&self) -> Result<Dsn, Failure> {
        resolve_url(self.url.as_deref())
    }

    fn timeouts(&self) -> Result<Timeouts, Failure> {
        let timeout = Duration::try_from_secs_f64(self.timeout)
            .ok()
            .filter(|timeout| !timeout.is_zero())
            .ok_or_else(|| Failure::usage(format!("--timeout {} is not a positive number of seconds", self.timeout)))?;
        Ok(Timeouts { connect: timeout, response: Some(timeout) })
    }

    /// Connects to the server and, unless `--no-discovery`, every node behind it.
    pub(crate) fn reach(&self) -> Result<Vec<NodeLink>, Failure> {
        let dsn = self.dsn()?;
        discover(dsn, self.timeouts()?, !self.no_discovery)
    }
}

/// The server's DSN: `url` when given, else the first variable of
/// [`URL_VARIABLES`] that is set.
pub(crate) fn resolve_url(url: Option<&str>) -> Result<Dsn, Failure> {
    let from_environment =
        || URL_VARIABLES.iter().find_map(|name| std::env::var(name).ok().filter(|value| !value.is_empty()));
    let Some(url) = url.map(str::to_owned).or_else(from_environment) else {
        return Err(Failure::usage(format!(
            "no server given: pass --url URL or set {} or {}",
            URL_VARIABLES[0], URL_VARIABLES[1]
        )));
    };
    // The error shows the URL with its password hidden.
    Dsn::parse(&url).map_err(|error| Failure::usage(error.to_string()))
}

/// A node and the connection to it.
pub(crate) struct NodeLink {
    /// Its DSN (shown with the password hidden).
    pub(crate) dsn: Dsn,
    /// `master`, `replica of host:port`, with `cluster` in front in a cluster;
    /// `unknown` when it could not be asked.
    pub(crate) role: String,
    client: redis::Client,
    timeouts: Timeouts,
    /// Opened on the first query, kept for the next.
    connection: Mutex<Option<redis::Connection>>,
    /// Why the node could not be reached or asked, if so.
    pub(crate) error: Option<String>,
}

impl NodeLink {
    fn new(dsn: Dsn, timeouts: Timeouts) -> Result<NodeLink, Failure> {
        let client =
            redisext::backend::redis_client(&dsn).map_err(|error| Failure::usage(format!("{dsn}: {error}")))?;
        Ok(NodeLink { dsn, role: "unknown".to_owned(), client, timeouts, connection: Mutex::new(None), error: None })
    }

    /// Sends one command on this node's connection.
    pub(crate) fn query(&self, args: &[&[u8]]) -> Result<Reply, String> {
        let mut slot = self.connection.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if slot.is_none() {
            let connection = self
                .client
                .get_connection_with_timeout(self.timeouts.connect)
                .map_err(|error| format!("cannot connect: {error}"))?;
            connection.set_read_timeout(self.timeouts.response).map_err(|error| format!("cannot connect: {error}"))?;
            *slot = Some(connection);
        }
        let mut command = redis::Cmd::new();
        for arg in args {
            command.arg(*arg);
        }
        let connection = slot.as_mut().ok_or("cannot connect")?;
        match command.query::<redis::Value>(connection) {
            Ok(value) => Ok(Reply::from(value)).and_then(|reply| match reply {
                Reply::Error(error) => Err(format!("server error: {error}")),
                reply => Ok(reply),
            }),
            Err(error) if error.code().is_some() => {
                Err(format!("server error: {} {}", error.code().unwrap_or("ERR"), error.detail().unwrap_or_default()))
            }
            Err(error) => {
                *slot = None;
                Err(format!("connection lost: {error}"))
            }
        }
    }
}

/// What `INFO server replication cluster` says about a node's neighbours.
#[derive(Debug, Default, PartialEq, Eq)]
struct NodeInfo {
    run_id: String,
    /// The master's address when the node is a replica.
    master: Option<(String, u16)>,
    replicas: Vec<(String, u16)>,
    cluster: bool,
}

fn parse_info(info: &str) -> NodeInfo {
    let mut node = NodeInfo::default();
    let mut master_host = None;
    let mut master_port = None;
    for line in info.lines() {
        let Some((field, value)) = line.trim_end().split_once(':') else { continue };
        match field {
            "run_id" => node.run_id = value.to_owned(),
            "master_host" => master_host = Some(value.to_owned()),
            "master_port" => master_port = value.parse().ok(),
            "cluster_enabled" => node.cluster = value == "1",
            // slave0:ip=10.0.0.6,port=6380,state=online,offset=…,lag=0
            field if field.starts_with("slave") && field[5..].chars().all(|c| c.is_ascii_digit()) => {
                let part = |name: &str| {
                    value.split(',').find_map(|pair| pair.strip_prefix(name).and_then(|v| v.strip_prefix('=')))
                };
                if let (Some(ip), Some(Ok(port))) = (part("ip"), part("port").map(str::parse)) {
                    node.replicas.push((ip.to_owned(), port));
                }
            }
            _ => {}
        }
    }
    node.master = master_host.zip(master_port);
    node
}

/// The addresses in `CLUSTER NODES` (`<id> <ip:port@cport[,hostname]> <flags> …`),
/// without nodes that have no address yet.
fn parse_cluster_nodes(text: &str) -> Vec<(String, u16)> {
    text.lines()
        .filter_map(|line| {
            let mut fields = line.split_whitespace();
            let address = fields.nth(1)?;
            let flags = fields.next()?;
            if flags.split(',').any(|flag| flag == "noaddr" || flag == "handshake") {
                return None;
            }
            let host_port = address.split(['@', ',']).next()?;
            let (host, port) = host_port.rsplit_once(':')?;
            let host = host.trim_start_matches('[').trim_end_matches(']');
            let port: u16 = port.parse().ok()?;
            (!host.is_empty() && port != 0).then(|| (host.to_owned(), port))
        })
        .collect()
}

fn text_of(reply: Reply) -> Result<String, String> {
    match reply {
        Reply::Bulk(bytes) => Ok(String::from_utf8_lossy(&bytes).into_owned()),
        Reply::Status(text) => Ok(text),
        other => Err(format!("unexpected reply: {}", other.describe())),
    }
}

/// Reaches `start` and, when `follow`, every node it leads to. A node that
/// cannot be reached is in the list with its error; the same server met under
/// two addresses (its `run_id`) is listed once.
fn discover(start: Dsn, timeouts: Timeouts, follow: bool) -> Result<Vec<NodeLink>, Failure> {
    let mut queue = VecDeque::from([start]);
    let mut queued: HashSet<String> = HashSet::new();
    let mut run_ids = HashSet::new();
    let mut nodes = Vec::new();
    while let Some(dsn) = queue.pop_front() {
        let mut node = NodeLink::new(dsn, timeouts)?;
        let info = node.query(&[b"INFO", b"server", b"replication", b"cluster"]).and_then(text_of);
        let info = match info {
            Ok(info) => parse_info(&info),
            Err(error) => {
                node.error = Some(error);
                nodes.push(node);
                continue;
            }
        };
        if !info.run_id.is_empty() && !run_ids.insert(info.run_id.clone()) {
            continue;
        }
        node.role = match &info.master {
            Some((host, port)) => format!("replica of {}", redisext::connection::host_port(host, *port)),
            None => "master".to_owned(),
        };
        if info.cluster {
            node.role.insert_str(0, "cluster ");
        }
        if follow {
            let mut neighbours: Vec<(String, u16)> = info.master.iter().cloned().chain(info.replicas).collect();
            if info.cluster {
                match node.query(&[b"CLUSTER", b"NODES"]).and_then(text_of) {
                    Ok(text) => neighbours.extend(parse_cluster_nodes(&text)),
                    Err(error) => node.error = Some(format!("CLUSTER NODES failed: {error}")),
                }
            }
            queued.insert(address_key(&node.dsn));
            for (host, port) in neighbours {
                let next = node.dsn.at_address(host, port);
                if queued.insert(address_key(&next)) && queued.len() <= MAX_NODES {
                    queue.push_back(next);
                }
            }
        }
        nodes.push(node);
    }
    Ok(nodes)
}

/// A DSN's address, to tell nodes apart before asking them their `run_id`.
fn address_key(dsn: &Dsn) -> String {
    dsn.address().host_port().unwrap_or_else(|| format!("{:?}", dsn.address()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_masters_replicas_and_cluster_flags_from_info() {
        let master = "# Server\r\nrun_id:abc\r\n# Replication\r\nrole:master\r\nconnected_slaves:2\r\n\
                      slave0:ip=10.0.0.6,port=6380,state=online,offset=1,lag=0\r\n\
                      slave1:ip=10.0.0.7,port=6381,state=wait_bgsave,offset=0,lag=0\r\n\
                      master_repl_offset:1\r\n# Cluster\r\ncluster_enabled:0\r\n";
        assert_eq!(
            parse_info(master),
            NodeInfo {
                run_id: "abc".into(),
                master: None,
                replicas: vec![("10.0.0.6".into(), 6380), ("10.0.0.7".into(), 6381)],
                cluster: false,
            }
        );
        let replica = "run_id:def\r\nrole:slave\r\nmaster_host:10.0.0.5\r\nmaster_port:6379\r\ncluster_enabled:1\r\n";
        let info = parse_info(replica);
        assert_eq!(info.master, Some(("10.0.0.5".into(), 6379)));
        assert!(info.cluster);
    }

    #[test]
    fn reads_addresses_from_cluster_nodes() {
        let text = "e7d1 127.0.0.1:30001@40001 myself,master - 0 0 1 connected 0-5460\n\
                    67ed 127.0.0.1:30002@40002,host-b master - 0 1 2 connected 5461-10922\n\
                    292f ::1:30003@40003 slave e7d1 0 1 3 connected\n\
                    6ec2 :0@0 master,noaddr - 0 1 4 disconnected\n\
                    824f 127.0.0.1:30005@40005 handshake - 0 0 0 connected\n";
        assert_eq!(
            parse_cluster_nodes(text),
            vec![("127.0.0.1".into(), 30001), ("127.0.0.1".into(), 30002), ("::1".into(), 30003)]
        );
    }
}
