//! One test matrix for the ways of running an operation — the blocking client, the
//! async client, a pipeline on either: master/replica routing, per-command
//! connections, the expire helpers and restarts are written once, as scenarios
//! generic over a [`Path`], and run on every path.

mod common;

use std::time::Duration;

use common::info_number;
use redisext::serializer::Str;
use redisext::testing::RedisServer;
use redisext::{Client, Counter, Error, Executor, Map, ModelClass, ModelOptions, Pipeline, Result, Reuse, Ttl};

/// A way of running operations: its executor, and how an operation's output
/// becomes its result.
trait Path {
    type Exec: Executor;

    /// A path to `master` (and `replica`), opening a connection per operation when
    /// `per_command`.
    fn connect(master: &RedisServer, replica: Option<&RedisServer>, per_command: bool) -> Self;

    fn exec(&self) -> &Self::Exec;

    fn resolve<T: Send + 'static>(&self, output: <Self::Exec as Executor>::Output<T>) -> Result<T>;
}

fn blocking_client(master: &RedisServer, replica: Option<&RedisServer>, per_command: bool) -> Client {
    let mut builder = Client::builder().master(&master.url());
    if let Some(replica) = replica {
        builder = builder.replica(&replica.url());
    }
    if per_command {
        builder = builder.reuse(Reuse::PerCommand);
    }
    builder.build().unwrap()
}

struct Blocking(Client);

impl Path for Blocking {
    type Exec = Client;

    fn connect(master: &RedisServer, replica: Option<&RedisServer>, per_command: bool) -> Self {
        Blocking(blocking_client(master, replica, per_command))
    }

    fn exec(&self) -> &Client {
        &self.0
    }

    fn resolve<T: Send + 'static>(&self, output: Result<T>) -> Result<T> {
        output
    }
}

/// Each operation alone in a batch, so the same counts hold on every path.
struct Pipelined(Pipeline<Client>);

impl Path for Pipelined {
    type Exec = Pipeline<Client>;

    fn connect(master: &RedisServer, replica: Option<&RedisServer>, per_command: bool) -> Self {
        Pipelined(blocking_client(master, replica, per_command).pipeline())
    }

    fn exec(&self) -> &Pipeline<Client> {
        &self.0
    }

    fn resolve<T: Send + 'static>(&self, slot: redisext::Slot<T>) -> Result<T> {
        match self.0.run() {
            // The slot holds the operation's own error.
            Ok(()) | Err(Error::BatchIncomplete { .. }) => slot.take(),
            Err(other) => Err(other),
        }
    }
}

#[cfg(feature = "tokio")]
struct Async(tokio::runtime::Runtime, redisext::AsyncClient);

#[cfg(feature = "tokio")]
impl Path for Async {
    type Exec = redisext::AsyncClient;

    fn connect(master: &RedisServer, replica: Option<&RedisServer>, per_command: bool) -> Self {
        let mut builder = redisext::AsyncClient::builder().master(&master.url());
        if let Some(replica) = replica {
            builder = builder.replica(&replica.url());
        }
        if per_command {
            builder = builder.reuse(redisext::AsyncReuse::PerCommand);
        }
        Async(tokio::runtime::Runtime::new().unwrap(), builder.build().unwrap())
    }

    fn exec(&self) -> &redisext::AsyncClient {
        &self.1
    }

    fn resolve<T: Send + 'static>(&self, pending: redisext::Pending<T>) -> Result<T> {
        self.0.block_on(pending)
    }
}

/// A pipeline on the async client: the async batch driver.
#[cfg(feature = "tokio")]
struct AsyncPipelined(tokio::runtime::Runtime, Pipeline<redisext::AsyncClient>);

#[cfg(feature = "tokio")]
impl Path for AsyncPipelined {
    type Exec = Pipeline<redisext::AsyncClient>;

    fn connect(master: &RedisServer, replica: Option<&RedisServer>, per_command: bool) -> Self {
        let Async(runtime, client) = Async::connect(master, replica, per_command);
        AsyncPipelined(runtime, client.pipeline())
    }

    fn exec(&self) -> &Pipeline<redisext::AsyncClient> {
        &self.1
    }

    fn resolve<T: Send + 'static>(&self, slot: redisext::Slot<T>) -> Result<T> {
        match self.0.block_on(self.1.run()) {
            Ok(()) | Err(Error::BatchIncomplete { .. }) => slot.take(),
            Err(other) => Err(other),
        }
    }
}

fn server() -> RedisServer {
    common::server()
}

fn reads_go_to_the_replica_and_writes_to_the_master<P: Path>() {
    let master = server();
    let replica = RedisServer::start_replica_of(&master).unwrap();
    let path = P::connect(&master, Some(&replica), false);
    let map = Map::<Str, P::Exec>::new(path.exec(), "routed").unwrap();
    let counter = Counter::new(path.exec(), "count").unwrap();
    path.resolve(map.set("v")).unwrap();
    assert_eq!(path.resolve(counter.incr(3)).unwrap(), 3);
    replica.wait_for_key("routed").unwrap();
    replica.wait_for_key("count").unwrap();

    assert_eq!(path.resolve(map.get()).unwrap().as_deref(), Some("v"));
    assert!(path.resolve(map.exists()).unwrap());
    assert_eq!(path.resolve(counter.get()).unwrap(), 3);
    assert!(matches!(path.resolve(counter.ttl()).unwrap(), Ttl::Persistent));

    let (replica_reads, replica_writes) =
        (replica.command_calls("evalsha_ro").unwrap(), replica.command_calls("evalsha").unwrap());
    assert!(replica_reads >= 4, "the four reads ran on the replica: {replica_reads}");
    assert_eq!(replica_writes, 0, "no write reached the replica");
    assert_eq!(master.command_calls("evalsha_ro").unwrap(), 0, "no read reached the master");
    assert!(master.command_calls("evalsha").unwrap() >= 2, "the two writes ran on the master");
    // The replica never had the scripts: they were loaded there too.
    assert!(replica.command_calls("script|load").unwrap() >= 1);

    // A model reading from the master sees its own writes at once.
    let own = ModelClass::<Counter<P::Exec>>::new(path.exec())
        .options(ModelOptions::new().read_from_master(true))
        .at("own")
        .unwrap();
    for expected in 1..=5 {
        path.resolve(own.incr(1)).unwrap();
        assert_eq!(path.resolve(own.get()).unwrap(), expected);
    }
    // Five reads; paths that meet NOSCRIPT first also count its retry.
    let master_reads = master.command_calls("evalsha_ro").unwrap();
    assert!((5..=6).contains(&master_reads), "the five reads ran on the master: {master_reads}");
    assert_eq!(replica.command_calls("evalsha_ro").unwrap(), replica_reads, "no new read on the replica");
}

fn per_command_mode_opens_and_closes_a_connection_per_operation<P: Path>() {
    let server = server();
    let path = P::connect(&server, None, true);
    let counter = Counter::new(path.exec(), "c").unwrap();
    path.resolve(counter.incr(1)).unwrap(); // loads the script
    let before = info_number(&server, "stats", "total_connections_received");
    for expected in 2..=11 {
        assert_eq!(path.resolve(counter.incr(1)).unwrap(), expected);
    }
    let after = info_number(&server, "stats", "total_connections_received");
    assert_eq!(after - before, 11, "ten operations, ten connections (plus the INFO)");
    // Closed after use: only the INFO connection is left.
    server.wait_until(Duration::from_secs(5), |s| Ok(info_number(s, "clients", "connected_clients") == 1)).unwrap();
}

fn expire_ttl_persist_and_rename_behave_the_same<P: Path>() {
    let server = server();
    let path = P::connect(&server, None, false);
    let map = Map::<Str, P::Exec>::new(path.exec(), "m").unwrap();

    assert!(matches!(path.resolve(map.expire(None)), Err(Error::NoDefaultExpiry { .. })));
    assert!(!path.resolve(map.expire(Duration::from_secs(60))).unwrap(), "no key yet");
    assert_eq!(path.resolve(map.ttl()).unwrap(), Ttl::Missing);
    path.resolve(map.set("v")).unwrap();
    assert!(path.resolve(map.expire(Duration::from_secs(60))).unwrap());
    match path.resolve(map.ttl()).unwrap() {
        Ttl::Expires(left) => assert!(left > Duration::from_secs(50) && left <= Duration::from_secs(60), "{left:?}"),
        other => panic!("expected an expiry, got {other:?}"),
    }
    assert!(path.resolve(map.persist()).unwrap());
    assert_eq!(path.resolve(map.ttl()).unwrap(), Ttl::Persistent);
    assert!(!path.resolve(map.persist()).unwrap(), "nothing left to persist");
    assert!(matches!(path.resolve(map.expire(Duration::ZERO)), Err(Error::InvalidArgument { .. })));

    assert!(path.resolve(map.rename("renamed")).unwrap());
    assert_eq!(server.command(&["GET", "renamed"]).unwrap(), redisext::Reply::Bulk(b"v".to_vec()));
    assert!(!path.resolve(map.rename("again")).unwrap(), "the old key is gone");
    assert!(matches!(path.resolve(map.rename("")), Err(Error::EmptyKey)));

    // The model's default expiry, in its options.
    let session = ModelClass::<Map<Str, P::Exec>>::new(path.exec())
        .options(ModelOptions::new().expire(Duration::from_secs(5)))
        .at("session")
        .unwrap();
    path.resolve(session.set("x")).unwrap();
    assert!(path.resolve(session.expire(None)).unwrap());
    assert!(matches!(path.resolve(session.ttl()).unwrap(), Ttl::Expires(left) if left <= Duration::from_secs(5)));
}

fn reads_survive_a_restart_and_writes_are_never_resent<P: Path>() {
    let mut server = server();
    let path = P::connect(&server, None, false);
    let map = Map::<Str, P::Exec>::new(path.exec(), "m").unwrap();
    let counter = Counter::new(path.exec(), "c").unwrap();
    path.resolve(map.set("before")).unwrap();

    // The reused connection is dead; a read is sent again on a fresh one.
    server.restart().unwrap();
    assert_eq!(path.resolve(map.get()).unwrap(), None, "the restarted server is empty");

    // A write sent on a dead connection is never sent again: the new server never
    // sees it, and the caller is told.
    server.restart().unwrap();
    match path.resolve(counter.incr(1)) {
        Err(error @ Error::Connection { .. }) => {
            println!("{}: a write cut by a restart: {error}", std::any::type_name::<P>());
            assert_eq!(server.command_calls("evalsha").unwrap(), 0, "the write was resent");
        }
        // A client may have noticed the close and reconnected before sending.
        Ok(value) => {
            println!("{}: a write after a restart went to the new server", std::any::type_name::<P>());
            assert_eq!(value, 1)
        }
        Err(other) => panic!("expected a connection error, got {other}"),
    }
    // Work resumes.
    let after = path.resolve(counter.incr(1)).unwrap();
    assert!((1..=2).contains(&after), "{after}");
}

/// Instantiates every scenario on every path.
macro_rules! on_every_path {
    ($($scenario:ident),* $(,)?) => {
        mod blocking {
            $(#[test] fn $scenario() { super::$scenario::<super::Blocking>() })*
        }
        mod pipelined {
            $(#[test] fn $scenario() { super::$scenario::<super::Pipelined>() })*
        }
        #[cfg(feature = "tokio")]
        mod asynchronous {
            $(#[test] fn $scenario() { super::$scenario::<super::Async>() })*
        }
        #[cfg(feature = "tokio")]
        mod async_pipelined {
            $(#[test] fn $scenario() { super::$scenario::<super::AsyncPipelined>() })*
        }
    };
}

on_every_path!(
    reads_go_to_the_replica_and_writes_to_the_master,
    per_command_mode_opens_and_closes_a_connection_per_operation,
    expire_ttl_persist_and_rename_behave_the_same,
    reads_survive_a_restart_and_writes_are_never_resent,
);
