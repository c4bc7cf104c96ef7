//! Throwaway Redis (or Valkey) topologies on free loopback ports, for tests,
//! examples, benchmarks and demos — this crate's and yours: a standalone server
//! ([`RedisServer`], optionally persistent), a master with replicas, a Redis Cluster
//! with or without replicas ([`RedisCluster`]) and a Sentinel-managed master with
//! replicas ([`RedisSentinels`]), with the faults a failover test needs (kill,
//! pause, restart, slot migration, Sentinel failover).
//!
//! Behind the feature `testing`: add `redisext = { version = "…", features = ["testing"] }`
//! to your `[dev-dependencies]`.
//!
//! Each server runs in a temporary directory, is stopped and its directory removed
//! when its handle drops, and (on Linux) dies with the thread that started it even
//! if the test process is killed — so start a server on a thread that outlives its
//! use (not, say, inside a short-lived `spawn_blocking` task). Port 6379 is never
//! used: every port is a free one the kernel picks.
//!
//! The binary is `redis-server` on the `PATH`, or the one `REDIS_SERVER` names
//! (a `valkey-server` works too): every topology, Sentinel included, runs it.
//! The helpers talk to the servers over plain `redis` crate connections, not
//! through this crate's client, so they keep working whatever the client does.
//!
//! ```
//! use redisext::testing::RedisServer;
//! let master = RedisServer::start()?;
//! let replica = RedisServer::start_replica_of(&master)?;
//! assert_eq!(master.command(&["SET", "k", "v"])?, redisext::Reply::Status("OK".into()));
//! replica.wait_for_key("k")?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod cluster;
mod sentinel;

pub use cluster::{RedisCluster, Shard, SlotMigration};
pub use sentinel::RedisSentinels;

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::Reply;

/// Why a throwaway server could not be started, queried or brought into the
/// state a test asked for.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServerError {
    /// The server binary (`redis-server`, or `REDIS_SERVER`) is not installed.
    #[error(
        "{0} was not found; install it (Debian/Ubuntu: `sudo apt-get install -y redis-server`, \
         macOS: `brew install redis`) or set REDIS_SERVER to the path of a redis-server or valkey-server"
    )]
    NotInstalled(String),
    /// The server did not come up; the log's last lines are attached.
    #[error("the server on port {port} did not start: {log}")]
    DidNotStart {
        /// The port it was given.
        port: u16,
        /// The end of its log.
        log: String,
    },
    /// The server could not be reached, or answered something unexpected.
    #[error("command on the test server failed: {0}")]
    Command(String),
    /// The server answered a command with an error reply (`ASK`, `MOVED`,
    /// `WRONGTYPE`, …).
    #[error("{command} on port {port} answered {error}")]
    ErrorReply {
        /// The command's name.
        command: String,
        /// The port of the server that answered.
        port: u16,
        /// The error reply, split into its code and message.
        error: crate::ServerError,
    },
    /// A topology did not reach the state waited for.
    #[error("timed out after {after:?} waiting for {waiting_for}")]
    Timeout {
        /// What was awaited, with the last state seen.
        waiting_for: String,
        /// How long it waited.
        after: Duration,
    },
    /// A filesystem or process error.
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

/// One throwaway `redis-server` (or `valkey-server`, or a Sentinel).
#[derive(Debug)]
pub struct RedisServer {
    child: Option<Child>,
    port: u16,
    dir: PathBuf,
    extra_args: Vec<String>,
    /// Whether the directory survives a restart: the AOF of a persistent server,
    /// the `nodes.conf` of a cluster node, the rewritten config of a Sentinel.
    keep_dir: bool,
    /// The config file a Sentinel starts from, written on first launch.
    sentinel_config: Option<String>,
}

static NEXT_DIR: AtomicU64 = AtomicU64::new(0);

/// The server's log, in its directory.
const LOG_FILE: &str = "redis.log";
/// What the server wrote to stdout and stderr, in its directory.
const OUTPUT_FILE: &str = "output.log";

/// How long a server gets to answer after its process starts (an AOF to load
/// included).
const START_TIMEOUT: Duration = Duration::from_secs(10);
/// How long the helpers wait for replication, a cluster or Sentinels to settle.
const SETTLE_TIMEOUT: Duration = Duration::from_secs(30);

impl RedisServer {
    /// Starts a standalone server on a free loopback port, persistence off.
    pub fn start() -> Result<RedisServer, ServerError> {
        RedisServer::start_with(&[])
    }

    /// Starts a server with extra `redis-server` arguments (`["--maxmemory", "1mb"]`).
    pub fn start_with(args: &[&str]) -> Result<RedisServer, ServerError> {
        RedisServer::start_configured(owned(args), false, None)
    }

    /// Starts a server that writes every command to its append-only file before
    /// answering (`appendonly yes`, `appendfsync always`) and keeps its directory
    /// across [`restart`](Self::restart) and [`kill`](Self::kill): what a server
    /// acknowledged survives a crash.
    ///
    /// ```
    /// use redisext::{Reply, testing::RedisServer};
    /// let mut server = RedisServer::start_persistent()?;
    /// server.command(&["SET", "k", "v"])?;
    /// server.kill();
    /// server.restart()?;
    /// assert_eq!(server.command(&["GET", "k"])?, Reply::Bulk(b"v".to_vec()));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn start_persistent() -> Result<RedisServer, ServerError> {
        RedisServer::start_persistent_with(&[])
    }

    /// [`start_persistent`](Self::start_persistent) with extra `redis-server` arguments.
    pub fn start_persistent_with(args: &[&str]) -> Result<RedisServer, ServerError> {
        let mut all = owned(&["--appendonly", "yes", "--appendfsync", "always"]);
        all.extend(owned(args));
        RedisServer::start_configured(all, true, None)
    }

    /// Starts a replica of `master` and waits until its link is up.
    pub fn start_replica_of(master: &RedisServer) -> Result<RedisServer, ServerError> {
        let port = master.port.to_string();
        let replica = RedisServer::start_with(&["--replicaof", "127.0.0.1", &port])?;
        replica
            .wait_until(SETTLE_TIMEOUT, |server| Ok(server.info("replication")?.contains("master_link_status:up")))?;
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

    /// Starts a server on a free port, trying another port when the one found free
    /// was taken before the server bound it.
    fn start_configured(
        extra_args: Vec<String>,
        keep_dir: bool,
        sentinel_config: Option<String>,
    ) -> Result<RedisServer, ServerError> {
        let mut last_error = None;
        for _ in 0..5 {
            let mut server = RedisServer {
                child: None,
                port: free_port()?,
                dir: PathBuf::new(),
                extra_args: extra_args.clone(),
                keep_dir,
                sentinel_config: sentinel_config.clone(),
            };
            match server.launch() {
                Ok(()) => return Ok(server),
                Err(error @ ServerError::DidNotStart { .. }) => last_error = Some(error),
                Err(error) => return Err(error),
            }
        }
        Err(last_error.unwrap_or_else(|| ServerError::Command("no free port".into())))
    }

    /// Starts the process for this server's port and arguments (in a new directory,
    /// or in its kept one), and waits until it answers.
    fn launch(&mut self) -> Result<(), ServerError> {
        let port = self.port;
        let binary = server_binary();
        if self.dir.as_os_str().is_empty() {
            self.dir = std::env::temp_dir().join(format!(
                "redisext-{}-{}-{}",
                std::process::id(),
                port,
                NEXT_DIR.fetch_add(1, Ordering::Relaxed)
            ));
        }
        std::fs::create_dir_all(&self.dir)?;
        let output = std::fs::File::create(self.dir.join(OUTPUT_FILE))?;
        let mut command = Command::new(&binary);
        if let Some(config) = &self.sentinel_config {
            // A Sentinel rewrites its config file as it learns the topology: a
            // restart starts from what it had learned.
            let path = self.dir.join("sentinel.conf");
            if !path.exists() {
                std::fs::write(&path, config)?;
            }
            command.arg(path).arg("--sentinel");
        }
        command
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .args(["--daemonize", "no", "--protected-mode", "no", "--logfile", LOG_FILE])
            // Replicas sync at once instead of after the default 5 s batching delay.
            .args(["--repl-diskless-sync-delay", "0"])
            .arg("--dir")
            .arg(&self.dir)
            .args(&self.extra_args)
            .current_dir(&self.dir)
            .stdin(Stdio::null())
            // What the server prints before its log is open (a bad option, a port in use).
            .stdout(output.try_clone()?)
            .stderr(output);
        die_with_parent(&mut command);
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
        let deadline = Instant::now() + START_TIMEOUT;
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
                // A persistent server answers LOADING until its AOF is read.
                && self.info_field("persistence", "loading").is_ok_and(|loading| loading != "1")
            {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(ServerError::DidNotStart { port: self.port, log: self.log_tail() });
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// The last lines the server printed and logged (the directory goes when the
    /// handle drops, so an error carries them).
    fn log_tail(&self) -> String {
        let mut lines = Vec::new();
        for file in [OUTPUT_FILE, LOG_FILE] {
            let text = std::fs::read_to_string(self.dir.join(file)).unwrap_or_default();
            let all: Vec<&str> = text.lines().filter(|line| !line.trim().is_empty()).collect();
            lines.extend(all[all.len().saturating_sub(5)..].iter().map(|line| line.trim().to_owned()));
        }
        lines.join(" | ")
    }

    /// The server's DSN, `redis://127.0.0.1:<port>/0` (with the password when the
    /// server was started with `--requirepass`).
    pub fn url(&self) -> String {
        match self.password() {
            Some(password) => format!("redis://:{password}@127.0.0.1:{}/0", self.port),
            None => format!("redis://127.0.0.1:{}/0", self.port),
        }
    }

    /// The server's address, `127.0.0.1:<port>` (as Sentinel and `CLUSTER NODES`
    /// write it).
    pub fn address(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    fn password(&self) -> Option<&str> {
        let position = self.extra_args.iter().position(|arg| arg == "--requirepass")?;
        self.extra_args.get(position + 1).map(String::as_str)
    }

    /// The server's port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The directory the server runs in (its log is `redis.log` there).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Whether the process is running: false after [`kill`](Self::kill) until
    /// [`restart`](Self::restart). A [suspended](Self::suspend) server is running.
    pub fn is_running(&self) -> bool {
        self.child.is_some()
    }

    /// Runs one command on a new connection (for test set-up and checks). An error
    /// reply is [`ServerError::ErrorReply`].
    pub fn command(&self, args: &[&str]) -> Result<Reply, ServerError> {
        let bytes: Vec<&[u8]> = args.iter().map(|a| a.as_bytes()).collect();
        self.command_bytes(&bytes)
    }

    /// Runs one command with binary arguments on a new connection.
    pub fn command_bytes(&self, args: &[&[u8]]) -> Result<Reply, ServerError> {
        let mut connection = self.connect()?;
        self.run(&mut connection, args)
    }

    /// Runs commands in order on one connection, for what a connection remembers
    /// (`ASKING` then a read of a key being imported, `READONLY`, `MULTI`); stops
    /// at the first error reply.
    ///
    /// ```
    /// use redisext::{Reply, testing::RedisServer};
    /// let server = RedisServer::start()?;
    /// let replies = server.commands(&[&["SELECT", "1"], &["SET", "k", "v"], &["DBSIZE"]])?;
    /// assert_eq!(replies[2], Reply::Int(1));
    /// assert_eq!(server.command(&["DBSIZE"])?, Reply::Int(0)); // a new connection is on db 0
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn commands(&self, commands: &[&[&str]]) -> Result<Vec<Reply>, ServerError> {
        let mut connection = self.connect()?;
        commands
            .iter()
            .map(|args| self.run(&mut connection, &args.iter().map(|a| a.as_bytes()).collect::<Vec<_>>()))
            .collect()
    }

    fn run(&self, connection: &mut redis::Connection, args: &[&[u8]]) -> Result<Reply, ServerError> {
        run_on(self.port, connection, args)
    }

    fn connect(&self) -> Result<redis::Connection, ServerError> {
        use redis::IntoConnectionInfo;
        let connect = || -> redis::RedisResult<redis::Connection> {
            let mut settings = redis::RedisConnectionInfo::default().set_skip_set_lib_name();
            if let Some(password) = self.password() {
                settings = settings.set_password(password);
            }
            let info = ("127.0.0.1", self.port).into_connection_info()?.set_redis_settings(settings);
            let connection = redis::Client::open(info)?.get_connection_with_timeout(Duration::from_secs(2))?;
            connection.set_read_timeout(Some(Duration::from_secs(10)))?;
            connection.set_write_timeout(Some(Duration::from_secs(10)))?;
            Ok(connection)
        };
        connect().map_err(|error| ServerError::Command(format!("connecting to port {}: {error}", self.port)))
    }

    /// The text of `INFO section`.
    pub fn info(&self, section: &str) -> Result<String, ServerError> {
        bulk_text(self.command(&["INFO", section])?, "INFO")
    }

    /// One `field:value` of `INFO section` (for `CLUSTER INFO`, pass section
    /// `cluster`); empty when the field is absent.
    pub fn info_field(&self, section: &str, field: &str) -> Result<String, ServerError> {
        let text = if section == "cluster" {
            bulk_text(self.command(&["CLUSTER", "INFO"])?, "CLUSTER INFO")?
        } else {
            self.info(section)?
        };
        Ok(field_of(&text, field).unwrap_or_default().to_owned())
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

    /// Polls `check` every 10 ms until it is true or `timeout` passes; an error
    /// from `check` ends the wait at once.
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
                return Err(ServerError::Timeout {
                    waiting_for: format!("a condition on port {}", self.port),
                    after: timeout,
                });
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Waits (up to 10 s) until `key` exists here: replication has caught up with it.
    pub fn wait_for_key(&self, key: &str) -> Result<(), ServerError> {
        self.wait_until(Duration::from_secs(10), |server| Ok(server.command(&["EXISTS", key])? == Reply::Int(1)))
    }

    /// Runs `args` every `period` on a connection of its own, from a thread of its
    /// own, until [`Repeating::stop`]: a fault under load (`CLIENT KILL TYPE
    /// normal`, which spares the caller's own connection, or `SCRIPT FLUSH`).
    /// An error reply stops the loop; `stop` returns it.
    ///
    /// ```
    /// use std::time::Duration;
    /// use redisext::testing::RedisServer;
    /// let server = RedisServer::start()?;
    /// let flushing = server.repeat(Duration::from_millis(10), &["SCRIPT", "FLUSH"]);
    /// std::thread::sleep(Duration::from_millis(50));
    /// assert!(flushing.stop()?.runs > 0);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn repeat(&self, period: Duration, args: &[&str]) -> Repeating {
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let stopping = std::sync::Arc::clone(&stop);
        let connection = self.connect();
        let (port, args) = (self.port, owned(args));
        let runs = std::thread::spawn(move || {
            let mut connection = connection?;
            let mut repeated = Repeated::default();
            let args: Vec<&[u8]> = args.iter().map(|arg| arg.as_bytes()).collect();
            while !stopping.load(Ordering::SeqCst) {
                if let Reply::Int(n) = run_on(port, &mut connection, &args)? {
                    repeated.sum += n;
                }
                repeated.runs += 1;
                std::thread::sleep(period);
            }
            Ok(repeated)
        });
        Repeating { stop, runs: Some(runs) }
    }

    /// Stops the server if it runs and starts it again on the same port: a server
    /// restart, as clients see it. A persistent server reloads its append-only
    /// file; any other loses its data (a cluster node keeps its cluster config and
    /// rejoins, a Sentinel keeps what it had learned).
    pub fn restart(&mut self) -> Result<(), ServerError> {
        self.stop_process();
        if !self.keep_dir {
            self.remove_dir();
        }
        self.launch()
    }

    /// Kills the process with SIGKILL (a crash: nothing is flushed, clients see
    /// their connections reset or refused) and keeps its directory for
    /// [`restart`](Self::restart). Does nothing if it is not running.
    pub fn kill(&mut self) {
        self.stop_process();
    }

    /// Stops the process with SIGSTOP: it keeps its connections and port but
    /// answers nothing until [`resume`](Self::resume) (or drop, which kills it).
    pub fn suspend(&self) -> Result<(), ServerError> {
        self.signal(Signal::Stop)
    }

    /// Lets a [suspended](Self::suspend) process run again (SIGCONT).
    pub fn resume(&self) -> Result<(), ServerError> {
        self.signal(Signal::Continue)
    }

    /// Makes the server unresponsive for `duration`: [`suspend`](Self::suspend),
    /// sleep, [`resume`](Self::resume). It blocks the calling thread; run it on
    /// a thread of its own (`std::thread::scope`) to send requests meanwhile.
    ///
    /// ```
    /// use redisext::{Reply, testing::RedisServer};
    /// let server = RedisServer::start()?;
    /// std::thread::scope(|scope| {
    ///     let paused = scope.spawn(|| server.pause(std::time::Duration::from_millis(100)));
    ///     // Requests sent meanwhile wait until the server resumes (or time out).
    ///     assert_eq!(server.command(&["PING"])?, Reply::Status("PONG".into()));
    ///     paused.join().expect("the pausing thread")
    /// })?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn pause(&self, duration: Duration) -> Result<(), ServerError> {
        self.suspend()?;
        std::thread::sleep(duration);
        self.resume()
    }

    fn signal(&self, signal: Signal) -> Result<(), ServerError> {
        let child = self
            .child
            .as_ref()
            .ok_or_else(|| ServerError::Command(format!("the server on port {} is not running", self.port)))?;
        // While the child is not reaped its pid cannot be reused: this signals our server.
        send_signal(child.id(), signal)
    }

    fn stop_process(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    fn remove_dir(&mut self) {
        if !self.dir.as_os_str().is_empty() {
            let _ = std::fs::remove_dir_all(&self.dir);
            self.dir = PathBuf::new();
        }
    }
}

/// A command repeated on a server ([`RedisServer::repeat`]) until stopped.
#[derive(Debug)]
pub struct Repeating {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    runs: Option<std::thread::JoinHandle<Result<Repeated, ServerError>>>,
}

/// What a [`Repeating`] command did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Repeated {
    /// How many times it ran.
    pub runs: u64,
    /// The sum of its integer replies (for `CLIENT KILL`: the connections closed).
    pub sum: i64,
}

impl Repeating {
    /// Stops repeating (after the run under way) and says what was done, or the
    /// error that stopped it earlier.
    pub fn stop(mut self) -> Result<Repeated, ServerError> {
        self.halt()
    }

    fn halt(&mut self) -> Result<Repeated, ServerError> {
        self.stop.store(true, Ordering::SeqCst);
        match self.runs.take().map(std::thread::JoinHandle::join) {
            Some(Ok(repeated)) => repeated,
            Some(Err(_)) => Err(ServerError::Command("the repeating thread panicked".into())),
            None => Ok(Repeated::default()),
        }
    }
}

impl Drop for Repeating {
    fn drop(&mut self) {
        let _ = self.halt();
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.stop_process();
        self.remove_dir();
    }
}

fn owned(args: &[&str]) -> Vec<String> {
    args.iter().map(|a| (*a).to_owned()).collect()
}

/// `REDIS_SERVER`, else `redis-server`.
fn server_binary() -> String {
    std::env::var("REDIS_SERVER").ok().filter(|binary| !binary.is_empty()).unwrap_or_else(|| "redis-server".into())
}

fn free_port() -> std::io::Result<u16> {
    Ok(TcpListener::bind(("127.0.0.1", 0))?.local_addr()?.port())
}

/// The text of a bulk reply (`INFO`, `CLUSTER NODES`).
fn bulk_text(reply: Reply, command: &str) -> Result<String, ServerError> {
    match reply {
        Reply::Bulk(bytes) => Ok(String::from_utf8_lossy(&bytes).into_owned()),
        other => Err(ServerError::Command(format!("{command} answered {}", other.describe()))),
    }
}

/// The value of `field:value` in `INFO`-style text.
fn field_of<'t>(text: &'t str, field: &str) -> Option<&'t str> {
    text.lines().find_map(|line| line.strip_prefix(field)?.strip_prefix(':')).map(str::trim)
}

fn expect_ok(reply: Reply) -> Result<(), ServerError> {
    match reply {
        Reply::Status(status) if status == "OK" => Ok(()),
        other => Err(ServerError::Command(format!("expected OK, got {}", other.describe()))),
    }
}

/// Polls `check` every 20 ms for up to `timeout` until it yields a value. `check`
/// notes what it saw in its `String` argument, and its errors count as "not yet"
/// (a node restarting refuses connections or answers `LOADING`): the timeout error
/// reports the last note or error.
fn settle<T>(
    timeout: Duration,
    waiting_for: &str,
    mut check: impl FnMut(&mut String) -> Result<Option<T>, ServerError>,
) -> Result<T, ServerError> {
    let deadline = Instant::now() + timeout;
    let mut seen = String::new();
    loop {
        seen.clear();
        match check(&mut seen) {
            Ok(Some(value)) => return Ok(value),
            Ok(None) => {}
            Err(error) => seen = error.to_string(),
        }
        if Instant::now() > deadline {
            let waiting_for =
                if seen.is_empty() { waiting_for.to_owned() } else { format!("{waiting_for} (last seen: {seen})") };
            return Err(ServerError::Timeout { waiting_for, after: timeout });
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Whether every one of `replicas` has finished its initial sync from `master`
/// and follows its stream: the master lists it online, and it reports its link
/// up with no sync in progress (Valkey lists a replica online while it is still
/// loading the snapshot). On a quiet topology it then holds the master's data.
fn replicas_online(master: &RedisServer, replicas: &[&RedisServer], seen: &mut String) -> Result<bool, ServerError> {
    let info = master.info("replication")?;
    for replica in replicas {
        let port = format!("port={}", replica.port);
        let listed = info.lines().filter_map(|line| line.split_once(':')).any(|(name, entry)| {
            name.starts_with("slave")
                && entry.split(',').any(|part| part == port)
                && entry.split(',').any(|part| part == "state=online")
        });
        let own = replica.info("replication")?;
        let synced = field_of(&own, "master_port") == Some(master.port.to_string().as_str())
            && field_of(&own, "master_link_status") == Some("up")
            && field_of(&own, "master_sync_in_progress") == Some("0");
        if !listed || !synced {
            *seen = format!("replica {} of {} is not in sync yet", replica.port, master.port);
            return Ok(false);
        }
    }
    Ok(true)
}

#[derive(Clone, Copy, Debug)]
enum Signal {
    Stop,
    Continue,
}

#[cfg(target_os = "linux")]
fn send_signal(pid: u32, signal: Signal) -> Result<(), ServerError> {
    let number = match signal {
        Signal::Stop => libc::SIGSTOP,
        Signal::Continue => libc::SIGCONT,
    };
    let pid = libc::pid_t::try_from(pid).map_err(|_| ServerError::Command(format!("pid {pid} out of range")))?;
    // SAFETY: kill(2) only sends a signal; the pid is our unreaped child.
    if unsafe { libc::kill(pid, number) } == 0 { Ok(()) } else { Err(std::io::Error::last_os_error().into()) }
}

#[cfg(not(target_os = "linux"))]
fn send_signal(pid: u32, signal: Signal) -> Result<(), ServerError> {
    let name = match signal {
        Signal::Stop => "-STOP",
        Signal::Continue => "-CONT",
    };
    let status = Command::new("kill").arg(name).arg(pid.to_string()).status()?;
    if status.success() { Ok(()) } else { Err(ServerError::Command(format!("kill {name} {pid}: {status}"))) }
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

/// Runs one command on a connection to the server on `port`.
fn run_on(port: u16, connection: &mut redis::Connection, args: &[&[u8]]) -> Result<Reply, ServerError> {
    let name = args.first().map(|name| String::from_utf8_lossy(name).to_ascii_uppercase()).unwrap_or_default();
    let mut command = redis::Cmd::new();
    for arg in args {
        command.arg(*arg);
    }
    let value = redis::ConnectionLike::req_command(connection, &command)
        .map_err(|error| ServerError::Command(format!("{name} on port {port}: {error}")))?;
    // Only a top-level error reply converts to a top-level `Reply::Error`.
    match Reply::from(value) {
        Reply::Error(error) => Err(ServerError::ErrorReply { command: name, port, error }),
        reply => Ok(reply),
    }
}
