//! Throwaway `redis-server` processes on free loopback ports, for tests, examples,
//! benchmarks and demos — this crate's and yours (feature `testing`: add
//! `redisext = { version = "…", features = ["testing"] }` to your
//! `[dev-dependencies]`).
//!
//! `REDIS_SERVER` names the server binary (default `redis-server` on the `PATH`),
//! for every server started here: standalone, replicas and cluster nodes. A
//! `valkey-server` serves as well.
//!
//! Each server runs with persistence off in a temporary directory, is stopped and
//! its directory removed when the handle drops, and (on Linux) dies with the
//! thread that started it even if the test process is killed — so start a server
//! on a thread that outlives its use (not, say, inside a short-lived
//! `spawn_blocking` task).
//!
//! ```
//! use redisext::testing::RedisServer;
//! let master = RedisServer::start()?;
//! let replica = RedisServer::start_replica_of(&master)?;
//! assert_eq!(master.command(&["SET", "k", "v"])?, redisext::Reply::Status("OK".into()));
//! replica.wait_for_key("k")?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::Reply;

/// Why a throwaway server could not be started or queried.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServerError {
    /// `redis-server` is not installed.
    #[error(
        "redis-server was not found ({0}); install it (Debian/Ubuntu: `sudo apt-get install -y redis-server`, \
         macOS: `brew install redis`) or set REDIS_SERVER to its path"
    )]
    NotInstalled(String),
    /// The server did not come up; the log's last lines are attached.
    #[error("redis-server on port {port} did not start: {log}")]
    DidNotStart {
        /// The port it was given.
        port: u16,
        /// The end of its log.
        log: String,
    },
    /// The server started but a command failed.
    #[error("command on the test server failed: {0}")]
    Command(String),
    /// A filesystem or process error.
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

/// One throwaway `redis-server`.
#[derive(Debug)]
pub struct RedisServer {
    child: Option<Child>,
    port: u16,
    dir: PathBuf,
    extra_args: Vec<String>,
}

static NEXT_DIR: AtomicU64 = AtomicU64::new(0);

impl RedisServer {
    /// Starts a standalone server on a free loopback port.
    pub fn start() -> Result<RedisServer, ServerError> {
        RedisServer::start_with(&[])
    }

    /// Starts a server with extra `redis-server` arguments (`["--maxmemory", "1mb"]`).
    pub fn start_with(args: &[&str]) -> Result<RedisServer, ServerError> {
        let extra_args: Vec<String> = args.iter().map(|a| (*a).to_owned()).collect();
        let mut last_error = None;
        // A port found free may be taken by someone else before the server binds it.
        for _ in 0..5 {
            let port = free_port()?;
            match RedisServer::spawn(port, extra_args.clone()) {
                Ok(server) => return Ok(server),
                Err(error @ ServerError::DidNotStart { .. }) => last_error = Some(error),
                Err(error) => return Err(error),
            }
        }
        Err(last_error.unwrap_or_else(|| ServerError::Command("no free port".into())))
    }

    /// Starts a replica of `master` and waits until its link is up.
    pub fn start_replica_of(master: &RedisServer) -> Result<RedisServer, ServerError> {
        let port = master.port.to_string();
        let replica = RedisServer::start_with(&["--replicaof", "127.0.0.1", &port])?;
        replica.wait_until(Duration::from_secs(20), |server| {
            Ok(server.info("replication")?.contains("master_link_status:up"))
        })?;
        Ok(replica)
    }

    /// Uses the server at `REDIS_URL` when the variable is set (`None` then), else
    /// starts a throwaway one. For demos that should also run against a real server.
    pub fn start_unless_env() -> Result<(Option<RedisServer>, String), ServerError> {
        match std::env::var("REDIS_URL") {
            Ok(url) if !url.is_empty() => Ok((None, url)),
            _ => {
                let server = RedisServer::start()?;
                let url = server.url();
                Ok((Some(server), url))
            }
        }
    }

    fn spawn(port: u16, extra_args: Vec<String>) -> Result<RedisServer, ServerError> {
        let mut server = RedisServer { child: None, port, dir: PathBuf::new(), extra_args };
        server.launch()?;
        Ok(server)
    }

    /// Starts the process for this server's port and arguments in a new directory,
    /// and waits until it answers.
    fn launch(&mut self) -> Result<(), ServerError> {
        let port = self.port;
        let binary = std::env::var("REDIS_SERVER").unwrap_or_else(|_| "redis-server".to_owned());
        let dir = std::env::temp_dir().join(format!(
            "redisext-{}-{}-{}",
            std::process::id(),
            port,
            NEXT_DIR.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir)?;
        let mut command = Command::new(&binary);
        command
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .args(["--daemonize", "no", "--protected-mode", "no", "--logfile", "redis.log"])
            // Replicas sync at once instead of after the default 5 s batching delay.
            .args(["--repl-diskless-sync-delay", "0"])
            .arg("--dir")
            .arg(&dir)
            .args(&self.extra_args)
            .current_dir(&dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        die_with_parent(&mut command);
        self.dir = dir;
        match command.spawn() {
            Ok(child) => self.child = Some(child),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
                return Err(ServerError::NotInstalled(binary));
            }
            Err(error) => return Err(error.into()),
        }
        self.wait_ready()
    }

    fn wait_ready(&mut self) -> Result<(), ServerError> {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(child) = self.child.as_mut()
                && let Ok(Some(_)) = child.try_wait()
            {
                return Err(ServerError::DidNotStart { port: self.port, log: self.log_tail() });
            }
            // The server answering must be ours: after a port race, another test's
            // server could be listening on this port while ours failed to bind.
            let pid = self.child.as_ref().map(|child| child.id().to_string());
            if TcpStream::connect(("127.0.0.1", self.port)).is_ok()
                && self.info_field("server", "process_id").ok() == pid
            {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(ServerError::DidNotStart { port: self.port, log: self.log_tail() });
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    fn log_tail(&self) -> String {
        let log = std::fs::read_to_string(self.dir.join("redis.log")).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(5)..].join(" | ")
    }

    /// The server's DSN, `redis://127.0.0.1:<port>/0` (with the password when the
    /// server was started with `--requirepass`).
    pub fn url(&self) -> String {
        match self.password() {
            Some(password) => format!("redis://:{password}@127.0.0.1:{}/0", self.port),
            None => format!("redis://127.0.0.1:{}/0", self.port),
        }
    }

    fn password(&self) -> Option<&str> {
        let position = self.extra_args.iter().position(|arg| arg == "--requirepass")?;
        self.extra_args.get(position + 1).map(String::as_str)
    }

    /// The server's port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Runs one command on a new connection (for test set-up and checks).
    pub fn command(&self, args: &[&str]) -> Result<Reply, ServerError> {
        let bytes: Vec<&[u8]> = args.iter().map(|a| a.as_bytes()).collect();
        self.command_bytes(&bytes)
    }

    /// Runs one command with binary arguments on a new connection.
    pub fn command_bytes(&self, args: &[&[u8]]) -> Result<Reply, ServerError> {
        let failed = |e: redis::RedisError| ServerError::Command(e.to_string());
        let client = redis::Client::open(self.url()).map_err(failed)?;
        let mut connection = client.get_connection_with_timeout(Duration::from_secs(2)).map_err(failed)?;
        connection.set_read_timeout(Some(Duration::from_secs(10))).map_err(failed)?;
        let mut command = redis::Cmd::new();
        for arg in args {
            command.arg(*arg);
        }
        match command.query::<redis::Value>(&mut connection) {
            Ok(value) => Ok(Reply::from(value)),
            Err(error) if error.code().is_some() => Err(ServerError::Command(error.to_string())),
            Err(error) => Err(failed(error)),
        }
    }

    /// The text of `INFO section`.
    pub fn info(&self, section: &str) -> Result<String, ServerError> {
        match self.command(&["INFO", section])? {
            Reply::Bulk(bytes) => Ok(String::from_utf8_lossy(&bytes).into_owned()),
            other => Err(ServerError::Command(format!("INFO answered {}", other.describe()))),
        }
    }

    /// How many times the server has run `command` (from `INFO commandstats`; 0 if never).
    pub fn command_calls(&self, command: &str) -> Result<u64, ServerError> {
        let info = self.info("commandstats")?;
        let prefix = format!("cmdstat_{}:calls=", command.to_ascii_lowercase());
        Ok(info
            .lines()
            .find_map(|line| line.strip_prefix(&prefix))
            .and_then(|rest| rest.split(',').next())
            .and_then(|n| n.parse().ok())
            .unwrap_or(0))
    }

    /// Polls `check` every 10 ms until it is true or `timeout` passes.
    pub fn wait_until(
        &self,
        timeout: Duration,
        mut check: impl FnMut(&RedisServer) -> Result<bool, ServerError>,
    ) -> Result<(), ServerError> {
        let deadline = Instant::now() + timeout;
        loop {
            if check(self)? {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(ServerError::Command(format!("condition not met within {timeout:?}")));
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Waits (up to 10 s) until `key` exists here: replication has caught up with it.
    pub fn wait_for_key(&self, key: &str) -> Result<(), ServerError> {
        self.wait_until(Duration::from_secs(10), |server| Ok(server.command(&["EXISTS", key])? == Reply::Int(1)))
    }

    /// Stops the server (data is lost: persistence is off) and starts a new one on
    /// the same port: a server restart, as clients see it.
    pub fn restart(&mut self) -> Result<(), ServerError> {
        self.stop_process();
        self.launch()
    }

    /// Kills the process and removes its directory.
    fn stop_process(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        if !self.dir.as_os_str().is_empty() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.stop_process();
    }
}

fn free_port() -> std::io::Result<u16> {
    Ok(TcpListener::bind(("127.0.0.1", 0))?.local_addr()?.port())
}

/// On Linux, asks the kernel to kill the server when the thread that started it
/// exits, so a killed test run leaves no server behind.
#[cfg(target_os = "linux")]
fn die_with_parent(command: &mut Command) {
    use std::os::unix::process::CommandExt;
    // SAFETY: prctl is async-signal-safe and touches no memory of the parent.
    unsafe {
        command.pre_exec(|| {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            Ok(())
        });
    }
}

#[cfg(not(target_os = "linux"))]
fn die_with_parent(_command: &mut Command) {}

/// A throwaway Redis Cluster: `masters` nodes on free loopback ports, the 16384
/// slots split evenly between them, no replicas.
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
}

impl RedisCluster {
    /// The number of hash slots in a Redis Cluster.
    pub const SLOTS: u16 = 16384;

    /// Starts the nodes, assigns the slots, introduces the nodes to each other and
    /// waits until every node reports `cluster_state:ok`.
    pub fn start(masters: usize) -> Result<RedisCluster, ServerError> {
        if masters == 0 || masters > usize::from(Self::SLOTS) {
            return Err(ServerError::Command(format!("a cluster of {masters} masters is not possible")));
        }
        let mut nodes = Vec::with_capacity(masters);
        let mut bus_ports = Vec::with_capacity(masters);
        for _ in 0..masters {
            // The cluster bus needs a port of its own; ask for a free one rather than
            // relying on port + 10000 being free (or below 65536).
            let bus = free_port()?.to_string();
            bus_ports.push(bus.clone());
            nodes.push(RedisServer::start_with(&[
                "--cluster-enabled",
                "yes",
                "--cluster-config-file",
                "nodes.conf",
                "--cluster-node-timeout",
                "2000",
                "--cluster-port",
                &bus,
            ])?);
        }
        let slots = usize::from(Self::SLOTS);
        for (index, node) in nodes.iter().enumerate() {
            let first = (slots * index / masters).to_string();
            let last = (slots * (index + 1) / masters - 1).to_string();
            expect_ok(node.command(&["CLUSTER", "ADDSLOTSRANGE", &first, &last])?)?;
        }
        let first_port = nodes[0].port().to_string();
        for node in &nodes[1..] {
            expect_ok(node.command(&["CLUSTER", "MEET", "127.0.0.1", &first_port, &bus_ports[0]])?)?;
        }
        let cluster = RedisCluster { nodes };
        for node in &cluster.nodes {
            node.wait_until(Duration::from_secs(30), |node| {
                let known = match node.command(&["CLUSTER", "NODES"])? {
                    Reply::Bulk(text) => String::from_utf8_lossy(&text).lines().count(),
                    _ => 0,
                };
                Ok(known == masters && node.info_field("cluster", "cluster_state")? == "ok")
            })?;
        }
        Ok(cluster)
    }

    /// The nodes, in slot order (node 0 serves the lowest slots).
    pub fn nodes(&self) -> &[RedisServer] {
        &self.nodes
    }

    /// A DSN for one node of the cluster (any node serves as a seed).
    pub fn url(&self) -> String {
        self.nodes[0].url()
    }
}

fn expect_ok(reply: Reply) -> Result<(), ServerError> {
    match reply {
        Reply::Status(status) if status == "OK" => Ok(()),
        other => Err(ServerError::Command(format!("expected OK, got {}", other.describe()))),
    }
}

impl RedisServer {
    /// One `field:value` of `INFO section` (for `CLUSTER INFO`, pass section `cluster`).
    pub fn info_field(&self, section: &str, field: &str) -> Result<String, ServerError> {
        let text = if section == "cluster" {
            match self.command(&["CLUSTER", "INFO"])? {
                Reply::Bulk(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
                other => return Err(ServerError::Command(format!("CLUSTER INFO answered {}", other.describe()))),
            }
        } else {
            self.info(section)?
        };
        let prefix = format!("{field}:");
        Ok(text.lines().find_map(|line| line.strip_prefix(&prefix)).unwrap_or_default().trim().to_owned())
    }
}
