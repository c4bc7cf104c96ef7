//! The default backend, on the `redis` crate's blocking connections: a master and
//! an optional replica, or the nodes of a Redis Cluster.

use std::time::Duration;

use super::cluster::{Cluster, ClusterSession};
use super::node::{NodeConnections, NodeSession, Opener};
use super::{Backend, Request, Routed, Session};
use crate::call::Node;
use crate::connection::{Dsn, Reuse, Timeouts};
use crate::error::{Error, Result};
use crate::wire::{CommandError, Reply};

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
        timeouts.check().map_err(Error::Config)?;
        Ok(RedisBackend {
            topology: Topology::Standalone(Routed::new(
                NodeConnections::new(master, &reuse, timeouts)?,
                replica.map(|dsn| NodeConnections::new(dsn, &reuse, timeouts)).transpose()?,
            )),
        })
    }

    /// A backend on a `redis::Client` you already have (its address, TLS,
    /// database, credentials and protocol as you configured them), with this
    /// crate's connection reuse and timeouts on the connections it opens. No
    /// replica. Nothing is connected yet. See `Client::from_redis_client`.
    pub fn from_redis_client(client: redis::Client, reuse: Reuse, timeouts: Timeouts) -> Result<RedisBackend> {
        timeouts.check().map_err(Error::Config)?;
        let shown = client.get_connection_info().addr().to_string();
        let opener = Opener::from_client(client, timeouts);
        Ok(RedisBackend {
            topology: Topology::Standalone(Routed::new(NodeConnections::with_opener(opener, &reuse, shown)?, None)),
        })
    }

    /// A backend for the Redis Cluster that the `seeds` belong to (any nodes of
    /// it; the slot map is read from the first that answers, on first use). Each
    /// operation goes to the master serving its key's hash slot, following
    /// `MOVED` and `ASK` redirections; reads go to masters too.
    pub fn cluster(seeds: &[Dsn], reuse: Reuse, timeouts: Timeouts) -> Result<RedisBackend> {
        timeouts.check().map_err(Error::Config)?;
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
                Ok(RedisSession::node(NodeSession::owned(connection)))
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

/// The connection held for one operation (on a cluster: the connections to the
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
    fn query(&mut self, request: &Request<'_>) -> Result<Reply, CommandError> {
        match &mut self.inner {
            Inner::Node(session) => session.query(request),
            Inner::Cluster(session) => session.query(request),
        }
    }

    fn is_fresh(&self) -> bool {
        match &self.inner {
            Inner::Node(session) => session.is_fresh(),
            Inner::Cluster(session) => session.is_fresh(),
        }
    }

    fn query_pipelined(&mut self, requests: &[Request<'_>]) -> Vec<Result<Reply, CommandError>> {
        match &mut self.inner {
            Inner::Node(session) => session.query_pipelined(requests),
            Inner::Cluster(session) => session.query_pipelined(requests),
        }
    }
}
