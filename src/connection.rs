//! Where to connect and how: DSNs, master/replica, connection reuse, timeouts.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

/// A parsed connection string.
///
/// Accepted forms:
///
/// - `redis://[user[:password]@]host[:port][/db]` (port 6379, db 0 by default;
///   IPv6 hosts in brackets; user and password percent-encoded),
/// - `unix:///path/to/redis.sock[?db=N]` (user and password as above),
/// - `rediss://…`, as `redis://` but over TLS (feature `tls`),
/// - `valkey://…` and `valkeys://…`, the same as `redis://` and `rediss://` (the
///   schemes Valkey's clients use); shown as `redis://` and `rediss://`.
///
/// Anything else — an unknown scheme, a missing host, a db that is not a number,
/// an unknown query parameter — is a [`DsnError`], never a silent default.
/// `Display` and `Debug` hide the password.
///
/// ```
/// use redisext::Dsn;
/// let dsn: Dsn = "redis://app:s3cret@10.0.0.5:6380/2".parse()?;
/// assert_eq!(dsn.db(), 2);
/// assert_eq!(dsn.to_string(), "redis://app:***@10.0.0.5:6380/2");
/// assert!("http://localhost".parse::<Dsn>().is_err());
/// let valkey: Dsn = "valkey://10.0.0.7/1".parse()?;
/// assert_eq!(valkey, "redis://10.0.0.7:6379/1".parse()?);
/// # Ok::<(), redisext::DsnError>(())
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct Dsn {
    address: Address,
    db: i64,
    username: Option<String>,
    password: Option<Secret>,
}

/// The network address part of a [`Dsn`].
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Address {
    /// Plain TCP.
    Tcp {
        /// Host name or IP address (IPv6 without brackets).
        host: String,
        /// Port.
        port: u16,
    },
    /// TCP with TLS (`rediss://`).
    Tls {
        /// Host name or IP address, also checked against the certificate.
        host: String,
        /// Port.
        port: u16,
    },
    /// A Unix domain socket.
    Unix(PathBuf),
}

/// `host:port`, with an IPv6 host in brackets (`[::1]:6379`), as Redis and DSNs
/// write node addresses. A host already in brackets is not bracketed twice.
///
/// ```
/// use redisext::connection::host_port;
/// assert_eq!(host_port("10.0.0.1", 7000), "10.0.0.1:7000");
/// assert_eq!(host_port("::1", 7000), "[::1]:7000");
/// assert_eq!(host_port("[::1]", 7000), "[::1]:7000");
/// ```
pub fn host_port(host: &str, port: u16) -> String {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if host.contains(':') { format!("[{host}]:{port}") } else { format!("{host}:{port}") }
}

impl Address {
    /// The address as `host:port`, or `None` for a Unix socket.
    pub fn host_port(&self) -> Option<String> {
        match self {
            Address::Tcp { host, port } | Address::Tls { host, port } => Some(host_port(host, *port)),
            Address::Unix(_) => None,
        }
    }
}

/// A password: kept out of `Debug` and `Display`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// The password itself, for handing to a client library.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// Why a DSN was refused. The DSN is shown with its password hidden.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("invalid DSN {shown}: {reason}")]
pub struct DsnError {
    shown: String,
    reason: String,
}

impl DsnError {
    fn new(dsn: &str, reason: impl Into<String>) -> DsnError {
        DsnError { shown: redact(dsn), reason: reason.into() }
    }

    /// What is wrong with the DSN.
    pub fn reason(&self) -> &str {
        &self.reason
    }
}

/// Hides everything between `scheme://` and the last `@` (user and password) when
/// showing a DSN that may not even parse.
pub(crate) fn redact(dsn: &str) -> String {
    match (dsn.find("://"), dsn.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end + 3 => {
            format!("{}://***{}", &dsn[..scheme_end], &dsn[at..])
        }
        _ => dsn.to_owned(),
    }
}

impl Dsn {
    /// Parses a DSN (see the type's documentation for the accepted forms).
    pub fn parse(dsn: &str) -> Result<Dsn, DsnError> {
        let url = url::Url::parse(dsn).map_err(|e| DsnError::new(dsn, e.to_string()))?;
        if url.fragment().is_some() {
            return Err(DsnError::new(dsn, "a fragment (#…) has no meaning in a DSN"));
        }
        let username = match url.username() {
            "" => None,
            name => Some(percent_decode(dsn, name, "user name")?),
        };
        let password = url.password().map(|p| percent_decode(dsn, p, "password").map(Secret)).transpose()?;
        let mut db_from_query = None;
        for (name, value) in url.query_pairs() {
            match name.as_ref() {
                "db" if url.scheme() == "unix" => {
                    db_from_query = Some(parse_db(dsn, &value)?);
                }
                other => {
                    return Err(DsnError::new(dsn, format!("unknown query parameter {other:?}")));
                }
            }
        }
        let (address, db) = match url.scheme() {
            scheme @ ("redis" | "rediss" | "valkey" | "valkeys") => {
                let host = match url.host() {
                    Some(url::Host::Ipv6(ip)) => ip.to_string(),
                    Some(host) => host.to_string(),
                    None => return Err(DsnError::new(dsn, "no host")),
                };
                if host.is_empty() {
                    return Err(DsnError::new(dsn, "no host"));
                }
                let port = url.port().unwrap_or(6379);
                let db = match url.path().trim_start_matches('/') {
                    "" => 0,
                    path => parse_db(dsn, path)?,
                };
                let address = if matches!(scheme, "redis" | "valkey") {
                    Address::Tcp { host, port }
                } else if cfg!(feature = "tls") {
                    Address::Tls { host, port }
                } else {
                    return Err(DsnError::new(dsn, format!("{scheme}:// needs redisext built with the `tls` feature")));
                };
                (address, db)
            }
            "unix" => {
                if url.host().is_some_and(|h| !h.to_string().is_empty()) {
                    return Err(DsnError::new(dsn, "a unix DSN has no host: write unix:///path/to/socket"));
                }
                let path = url.path();
                if path.is_empty() || path == "/" {
                    return Err(DsnError::new(dsn, "no socket path"));
                }
                let path = percent_decode(dsn, path, "socket path")?;
                (Address::Unix(PathBuf::from(path)), db_from_query.unwrap_or(0))
            }
            other => {
                return Err(DsnError::new(
                    dsn,
                    format!("unknown scheme {other:?}: use redis://, rediss://, valkey://, valkeys:// or unix://"),
                ));
            }
        };
        Ok(Dsn { address, db, username, password })
    }

    /// The address to connect to.
    pub fn address(&self) -> &Address {
        &self.address
    }

    /// The database number.
    pub fn db(&self) -> i64 {
        self.db
    }

    /// The ACL user name, if any.
    pub fn username(&self) -> Option<&str> {
        self.username.as_deref()
    }

    /// The password, if any.
    pub fn password(&self) -> Option<&Secret> {
        self.password.as_ref()
    }

    /// A DSN for a TCP address (no TLS, no password).
    pub fn tcp(host: impl Into<String>, port: u16, db: i64) -> Dsn {
        Dsn { address: Address::Tcp { host: host.into(), port }, db, username: None, password: None }
    }

    /// The same DSN — user, password, database, TLS or not — at another host and
    /// port: how to reach a replica or a cluster node that a server names. A
    /// Unix-socket DSN gives a plain TCP one.
    ///
    /// ```
    /// use redisext::Dsn;
    /// let master: Dsn = "redis://app:s3cret@10.0.0.5:6379/2".parse()?;
    /// let replica = master.at_address("10.0.0.6", 6380);
    /// assert_eq!(replica.to_string(), "redis://app:***@10.0.0.6:6380/2");
    /// assert_eq!(replica.password(), master.password());
    /// # Ok::<(), redisext::DsnError>(())
    /// ```
    pub fn at_address(&self, host: impl Into<String>, port: u16) -> Dsn {
        let host = host.into();
        let address = match self.address {
            Address::Tls { .. } => Address::Tls { host, port },
            _ => Address::Tcp { host, port },
        };
        Dsn { address, ..self.clone() }
    }
}

fn parse_db(dsn: &str, text: &str) -> Result<i64, DsnError> {
    text.parse::<u32>()
        .map(i64::from)
        .map_err(|_| DsnError::new(dsn, format!("database {text:?} is not a non-negative number")))
}

fn percent_decode(dsn: &str, text: &str, what: &str) -> Result<String, DsnError> {
    percent_encoding::percent_decode_str(text)
        .decode_utf8()
        .map(|decoded| decoded.into_owned())
        .map_err(|_| DsnError::new(dsn, format!("the {what} is not UTF-8 once percent-decoded")))
}

impl FromStr for Dsn {
    type Err = DsnError;

    fn from_str(dsn: &str) -> Result<Dsn, DsnError> {
        Dsn::parse(dsn)
    }
}

impl fmt::Display for Dsn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let credentials = match (&self.username, &self.password) {
            (Some(user), Some(_)) => format!("{user}:***@"),
            (None, Some(_)) => ":***@".to_owned(),
            (Some(user), None) => format!("{user}@"),
            (None, None) => String::new(),
        };
        match &self.address {
            Address::Tcp { host, port } | Address::Tls { host, port } => {
                let scheme = if matches!(self.address, Address::Tcp { .. }) { "redis" } else { "rediss" };
                write!(f, "{scheme}://{credentials}{}/{}", host_port(host, *port), self.db)
            }
            Address::Unix(path) => write!(f, "unix://{credentials}{}?db={}", path.display(), self.db),
        }
    }
}

impl fmt::Debug for Dsn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Dsn({self})")
    }
}

/// A Sentinel DSN: the sentinels to ask, the name of the master they watch, and
/// how to reach the data nodes they name.
///
/// The form is `redis+sentinel://[user[:password]@]host[:port][,host[:port]…]/master_name[/db]`
/// (port 26379 by default), or `rediss+sentinel://…` for TLS to the sentinels and
/// the data nodes alike. The user and password are the data nodes'; the
/// sentinels' own, when they have one, go in the query:
/// `?sentinel_password=…` (and `sentinel_username=…`), percent-encoded.
///
/// ```
/// use redisext::connection::SentinelDsn;
/// let dsn = SentinelDsn::parse("redis+sentinel://:s3cret@10.0.0.1,10.0.0.2:26380/mymaster/2")?;
/// assert_eq!(dsn.master_name(), "mymaster");
/// assert_eq!(dsn.sentinels().len(), 2);
/// assert_eq!(dsn.sentinels()[0].to_string(), "redis://10.0.0.1:26379/0");
/// assert_eq!(dsn.data().db(), 2);
/// assert_eq!(dsn.data().password().map(|p| p.expose()), Some("s3cret"));
/// # Ok::<(), redisext::DsnError>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SentinelDsn {
    master_name: String,
    sentinels: Vec<Dsn>,
    data: Dsn,
}

impl SentinelDsn {
    /// Parses the form described on the type.
    pub fn parse(text: &str) -> Result<SentinelDsn, DsnError> {
        let fail = |reason: &str| DsnError::new(text, reason);
        let (scheme, rest) = text.split_once("://").ok_or_else(|| fail("no scheme"))?;
        let base = match scheme {
            "redis+sentinel" | "valkey+sentinel" => "redis",
            "rediss+sentinel" | "valkeys+sentinel" => "rediss",
            _ => return Err(fail("a Sentinel DSN starts with redis+sentinel:// or rediss+sentinel://")),
        };
        let (rest, query) = rest.split_once('?').unwrap_or((rest, ""));
        let (authority, path) = rest.split_once('/').ok_or_else(|| fail("no master name: add /master_name"))?;
        let (credentials, hosts) = match authority.rsplit_once('@') {
            Some((credentials, hosts)) => (Some(credentials), hosts),
            None => (None, authority),
        };
        let (master_name, db) = match path.split_once('/') {
            Some((name, db)) => (name, db.trim_end_matches('/')),
            None => (path, ""),
        };
        if master_name.is_empty() {
            return Err(fail("no master name: add /master_name"));
        }
        let master_name = percent_decode(text, master_name, "master name")?;
        let mut sentinel_credentials = String::new();
        let (mut user, mut password) = (None, None);
        for pair in query.split('&').filter(|pair| !pair.is_empty()) {
            match pair.split_once('=') {
                Some(("sentinel_username", value)) => user = Some(value),
                Some(("sentinel_password", value)) => password = Some(value),
                _ => return Err(fail(&format!("unknown query parameter {pair:?}"))),
            }
        }
        if user.is_some() || password.is_some() {
            sentinel_credentials = format!("{}:{}@", user.unwrap_or(""), password.unwrap_or(""));
        }
        let mut sentinels = Vec::new();
        for host in hosts.split(',') {
            if host.is_empty() {
                return Err(fail("an empty sentinel address"));
            }
            // The default port, for a host given without one ("[::1]" or "h").
            let has_port = match host.rfind(']') {
                Some(bracket) => host[bracket..].contains(':'),
                None => host.contains(':'),
            };
            let host = if has_port { host.to_owned() } else { format!("{host}:26379") };
            let dsn = Dsn::parse(&format!("{base}://{sentinel_credentials}{host}"))
                .map_err(|e| fail(&format!("sentinel {host}: {}", e.reason())))?;
            sentinels.push(dsn);
        }
        let credentials = credentials.map(|c| format!("{c}@")).unwrap_or_default();
        let first = hosts.split(',').next().unwrap_or_default();
        let data = Dsn::parse(&format!("{base}://{credentials}{first}/{db}")).map_err(|e| fail(e.reason()))?;
        Ok(SentinelDsn { master_name, sentinels, data })
    }

    /// The name the sentinels know the master by.
    pub fn master_name(&self) -> &str {
        &self.master_name
    }

    /// The sentinels (with their own password, when one was given).
    pub fn sentinels(&self) -> &[Dsn] {
        &self.sentinels
    }

    /// How the data nodes are reached: user, password, database and TLS (the host
    /// is the first sentinel's, and is not used).
    pub fn data(&self) -> &Dsn {
        &self.data
    }
}

/// How connections are opened and reused.
///
/// Whichever is chosen, a reused connection that the server closed while it sat
/// idle (`CLIENT KILL`, an idle `timeout`, a restart) is seen before a command is
/// written to it and replaced, so the operation goes out on the new one: for
/// plain TCP and Unix-socket DSNs, whose connections are this crate's own. TLS
/// connections are the redis crate's and cannot be checked without a round trip.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Reuse {
    /// One connection per node, opened on first use, reused by every operation
    /// (one at a time), closed when the client is dropped. Python redisext's
    /// default (`CONNECTION_REUSE = True`).
    #[default]
    Lazy,
    /// A new connection for every operation, closed right after it (Python's
    /// `CONNECTION_REUSE = False`). Slow; for rarely used clients.
    PerCommand,
    /// A pool of up to `max_size` connections per node (r2d2), for many threads
    /// sharing one client under load.
    #[cfg(feature = "pool")]
    #[cfg_attr(docsrs, doc(cfg(feature = "pool")))]
    Pooled {
        /// The most connections open at once per node.
        max_size: u32,
    },
}

/// How the async client ([`AsyncClient`](crate::AsyncClient)) keeps its
/// connections to each node.
#[cfg(feature = "tokio")]
#[cfg_attr(docsrs, doc(cfg(feature = "tokio")))]
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum AsyncReuse {
    /// `connections` multiplexed connections per node, each shared by every task
    /// and opened again on its next use after it failed;
    /// operations take them in turn. One is the default and enough for most
    /// services: a multiplexed connection already carries any number of concurrent
    /// requests. More spread the load over several sockets (see `docs/connections.md`).
    Multiplexed {
        /// How many connections per node (at least 1).
        connections: usize,
    },
    /// A new connection for every operation, closed right after it. Slow; for
    /// rarely used clients.
    PerCommand,
}

#[cfg(feature = "tokio")]
#[cfg_attr(docsrs, doc(cfg(feature = "tokio")))]
impl Default for AsyncReuse {
    fn default() -> Self {
        AsyncReuse::Multiplexed { connections: 1 }
    }
}

/// Timeouts for the default backend.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timeouts {
    /// How long opening a connection may take. Default: 5 s.
    pub connect: Duration,
    /// How long a reply may take once a command is sent; `None` waits forever.
    /// Default: 30 s. A timeout after sending a write leaves its outcome unknown
    /// ([`Delivery::Unknown`](crate::Delivery)).
    pub response: Option<Duration>,
}

impl Timeouts {
    /// Refuses zero durations, which would fail every operation.
    pub(crate) fn check(&self) -> Result<(), String> {
        if self.connect.is_zero() || self.response.is_some_and(|t| t.is_zero()) {
            return Err("timeouts must be longer than zero (use None to wait forever)".into());
        }
        Ok(())
    }
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts { connect: Duration::from_secs(5), response: Some(Duration::from_secs(30)) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reason(dsn: &str) -> String {
        Dsn::parse(dsn).unwrap_err().reason().to_owned()
    }

    #[test]
    fn parses_the_documented_forms() {
        let dsn = Dsn::parse("redis://localhost").unwrap();
        assert_eq!(dsn.address(), &Address::Tcp { host: "localhost".into(), port: 6379 });
        assert_eq!(dsn.db(), 0);
        let dsn = Dsn::parse("redis://u%40x:p%3Ass@[::1]:7000/15").unwrap();
        assert_eq!(dsn.address(), &Address::Tcp { host: "::1".into(), port: 7000 });
        assert_eq!(dsn.username(), Some("u@x"));
        assert_eq!(dsn.password().map(Secret::expose), Some("p:ss"));
        assert_eq!(dsn.db(), 15);
        let dsn = Dsn::parse("redis://:pw@h/").unwrap();
        assert_eq!((dsn.username(), dsn.db()), (None, 0));
        let dsn = Dsn::parse("unix:///run/redis.sock?db=3").unwrap();
        assert_eq!(dsn.address(), &Address::Unix("/run/redis.sock".into()));
        assert_eq!(dsn.db(), 3);
    }

    #[test]
    fn valkey_schemes_are_redis_ones() {
        let dsn = Dsn::parse("valkey://app:pw@[::1]:7000/4").unwrap();
        assert_eq!(dsn, Dsn::parse("redis://app:pw@[::1]:7000/4").unwrap());
        assert_eq!(dsn.to_string(), "redis://app:***@[::1]:7000/4");
        assert_eq!(Dsn::parse("valkey://h").unwrap().address(), &Address::Tcp { host: "h".into(), port: 6379 });
        if cfg!(feature = "tls") {
            let dsn = Dsn::parse("valkeys://h:6380/2").unwrap();
            assert_eq!(dsn, Dsn::parse("rediss://h:6380/2").unwrap());
            assert_eq!(dsn.address(), &Address::Tls { host: "h".into(), port: 6380 });
            assert_eq!(dsn.to_string(), "rediss://h:6380/2");
        } else {
            assert_eq!(reason("valkeys://h"), "valkeys:// needs redisext built with the `tls` feature");
        }
        assert!(reason("valkey://").contains("host"));
        assert!(reason("valkey://h/x").contains("not a non-negative number"));
        assert!(reason("valkey://h/0?db=1").contains("unknown query parameter"));
        assert!(reason("valkey+unix:///s").contains("valkey://"));
    }

    #[test]
    fn refuses_malformed_dsns() {
        assert!(reason("localhost:6379").contains("unknown scheme"));
        assert!(reason("http://localhost").contains("unknown scheme"));
        assert!(reason("redis://").contains("host"));
        assert!(reason("redis://h:99999").contains("port"));
        assert!(reason("redis://h/abc").contains("not a non-negative number"));
        assert!(reason("redis://h/-1").contains("not a non-negative number"));
        assert!(reason("redis://h/0?timeout=5").contains("unknown query parameter"));
        assert!(reason("redis://h/0#x").contains("fragment"));
        assert!(reason("unix://").contains("no socket path"));
        assert!(reason("unix://host/sock").contains("no host"));
        assert!(reason("").contains("relative URL"));
        if !cfg!(feature = "tls") {
            assert!(reason("rediss://h").contains("tls"));
        }
    }

    #[test]
    fn passwords_never_show() {
        let dsn = Dsn::parse("redis://user:hunter2@h:1/2").unwrap();
        assert!(!dsn.to_string().contains("hunter2"));
        assert!(!format!("{dsn:?}").contains("hunter2"));
        let error = Dsn::parse("redis://user:hunter2@h:notaport/2").unwrap_err();
        assert!(!error.to_string().contains("hunter2"), "{error}");
        assert!(!format!("{error:?}").contains("hunter2"));
        let error = Dsn::parse("bogus://user:hunter2@h").unwrap_err();
        assert!(!error.to_string().contains("hunter2"), "{error}");
    }
}
