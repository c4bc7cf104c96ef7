//! The blocking client: configuration, and its drivers — one call, a waiting
//! call, a pipeline's batches — each running the I/O-free dispatcher
//! ([`dispatch`](crate::dispatch), [`batch`](crate::batch)) on blocking sessions.

use std::sync::Arc;
use std::time::Duration;

use crate::backend::{Backend, RedisBackend, Request, Session};
use crate::batch::{Batch, BatchStep, Outcome, name_nodes, to_resend};
use crate::call::{Durable, Node, ScriptCall};
use crate::connection::{Dsn, DsnError, Reuse, SentinelDsn, Timeouts};
use crate::dispatch::{Dispatch, Step, name_node};
use crate::error::{Error, Result};
use crate::observe::{Counts, Metrics, Observer};
use crate::op::{Executor, Op, Pause, Wait, Waiting};
use crate::pipeline::{Pipeline, Taken};
use crate::retry::{RetryPolicy, Retrying, Sending};
use crate::waiters::{Waiters, Woken};
use crate::wire::{CommandError, Reply};

/// A blocking client: where models send their operations.
///
/// Cheap to clone (an `Arc`); clones share connections. With the default
/// [`Reuse::Lazy`] the connection to each node opens on first use and is shared by
/// every model made from this client, one operation at a time; for many threads,
/// use [`Reuse::Pooled`](Reuse) (feature `pool`).
///
/// ```no_run
/// use redisext::{Client, Counter};
/// let client = Client::open("redis://127.0.0.1:6379/0")?;
/// let visitors = Counter::new(&client, "visitors")?;
/// visitors.incr(1)?;
/// # Ok::<(), redisext::Error>(())
/// ```
pub struct Client<B: Backend = RedisBackend> {
    backend: Arc<B>,
    sending: Sending,
    /// The shared connections every waiting operation blocks on.
    waiters: Arc<Waiters<B>>,
    observer: Observer,
}

impl<B: Backend> Clone for Client<B> {
    fn clone(&self) -> Self {
        Client {
            backend: Arc::clone(&self.backend),
            sending: self.sending,
            waiters: Arc::clone(&self.waiters),
            observer: self.observer.clone(),
        }
    }
}

impl Client {
    /// A client for one server, from a DSN (see [`Dsn`]), with lazy connections;
    /// or, from a `redis+sentinel://` DSN (see [`SentinelDsn`]), for the master
    /// a set of sentinels names. Nothing is connected until the first operation.
    pub fn open(dsn: &str) -> Result<Client> {
        Client::builder().url(dsn).build()
    }

    /// A builder for a master, an optional replica, reuse and timeouts.
    pub fn builder() -> ClientBuilder {
        ClientBuilder::default()
    }
}

impl<B: Backend> Client<B> {
    /// A client on a backend of your own (see [`Backend`]).
    pub fn with_backend(backend: B) -> Client<B> {
        let backend = Arc::new(backend);
        let waiters = Arc::new(Waiters::new(&backend));
        Client { backend, sending: Sending::default(), waiters, observer: Observer::default() }
    }

    /// This client (same connections) with another retry policy.
    pub fn with_retry(&self, retry: RetryPolicy) -> Client<B> {
        Client { sending: Sending { retry, ..self.sending }, ..self.clone() }
    }

    /// This client (same connections) reporting every operation to `metrics`
    /// (see [`observe`](crate::observe)); [`Builder::metrics`] sets it when building.
    pub fn with_metrics(&self, metrics: impl Metrics) -> Client<B> {
        let metrics: Arc<dyn Metrics> = Arc::new(metrics);
        Client { observer: Observer { metrics: Some(metrics), ..self.observer.clone() }, ..self.clone() }
    }

    /// This client (same connections) naming the keys of each operation in its
    /// span, or not (see [`Builder::trace_keys`]).
    pub fn with_trace_keys(&self, yes: bool) -> Client<B> {
        Client { observer: Observer { trace_keys: yes, ..self.observer.clone() }, ..self.clone() }
    }

    /// The retry policy (see [`RetryPolicy`]).
    pub fn retry_policy(&self) -> RetryPolicy {
        self.sending.retry
    }

    /// This client (same connections) with durable writes (see [`Durable`](crate::Durable))
    /// for the models that have no setting of their own; `None` turns them off.
    pub fn with_durable(&self, durable: Option<crate::Durable>) -> Client<B> {
        Client { sending: Sending { durable, ..self.sending }, ..self.clone() }
    }

    /// The backend.
    pub fn backend(&self) -> &B {
        &self.backend
    }

    /// Runs one operation and decodes its result.
    pub fn run<T>(&self, op: Op<T>) -> Result<T> {
        let call = op.call?;
        let reply = run_call(&*self.backend, &call, self.sending, &self.observer)?;
        (op.decode)(reply, &call)
    }
}

impl<B: Backend> crate::op::sealed::Sealed for Client<B> {}

impl<B: Backend> Executor for Client<B> {
    type Output<T: Send + 'static> = Result<T>;

    fn execute<T: Send + 'static>(&self, op: Op<T>) -> Result<T> {
        self.run(op)
    }

    fn execute_waiting<T: Send + 'static>(&self, op: Op<Option<T>>, wait: Wait) -> Result<Option<T>> {
        let call = op.call?;
        let mut waiting = Waiting::start(&wait);
        loop {
            if let Some(value) = (op.decode)(run_call(&*self.backend, &call, self.sending, &self.observer)?, &call)? {
                return Ok(Some(value));
            }
            match waiting.next_pause() {
                None => return Ok(None),
                Some(Pause::Sleep(pause)) => std::thread::sleep(pause),
                // On the client's shared waiter connection, not one per waiter.
                Some(Pause::Signal(signal, block)) => {
                    if self.waiters.wait_blocking(signal, block) == Woken::Failed {
                        // That connection failed, not the operation: pause
                        // otherwise until the next attempt.
                        waiting.signal_failed();
                    }
                }
            }
        }
    }
}

/// A backend error met while running `call`, as the crate's error.
pub(crate) fn command_error(node: impl FnOnce() -> String, call: &ScriptCall, error: CommandError) -> Error {
    match error {
        CommandError::Connection { delivery, source } => Error::Connection {
            script: Some(call.script),
            key: Some(call.key().display()),
            node: node(),
            delivery,
            source,
        },
        CommandError::Server(e) => crate::dispatch::server_error(call, e),
    }
}

impl<B: Backend> std::fmt::Debug for Client<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client").field("master", &self.backend.describe(crate::Node::Master)).finish()
    }
}

/// Drives one script call through the dispatcher on blocking sessions, trying
/// again as the retry policy says: where every operation of the blocking client
/// ends, and is observed.
pub(crate) fn run_call<B: Backend>(
    backend: &B,
    call: &ScriptCall,
    sending: Sending,
    observer: &Observer,
) -> Result<Reply> {
    let observation = observer.start_call(call, || backend.describe(call.node));
    let _entered = observation.enter();
    let mut counts = Counts::default();
    let mut retrying = Retrying::start(sending.retry);
    let result = loop {
        match run_call_once(backend, call, sending.durable, &mut counts) {
            Err(error) => match retrying.after(&error, call.resendable) {
                Some(pause) => {
                    observer.retrying(Some(call.script), retrying.attempts, pause, &error);
                    std::thread::sleep(pause)
                }
                None => break Err(error),
            },
            reply => break reply,
        }
    };
    observer.finish_call(&observation, call, result.as_ref().err(), retrying.attempts, &counts);
    result
}

fn run_call_once<B: Backend>(
    backend: &B,
    call: &ScriptCall,
    durable: Option<Durable>,
    counts: &mut Counts,
) -> Result<Reply> {
    let describe = || backend.describe(call.node);
    let mut session = backend.session(call.node).map_err(|error| command_error(describe, call, error))?;
    let (mut dispatch, mut request) = Dispatch::start(call, durable);
    loop {
        let step = match dispatch.wait_with(&request) {
            Some(wait) => {
                let mut replies = session.query_pipelined(&[request, wait]).into_iter();
                let mut next = || replies.next().unwrap_or_else(|| Err(CommandError::not_sent_after_failure()));
                let (outcome, waited) = (next(), next());
                dispatch.advance_durable(outcome, waited, session.is_fresh())
            }
            None => dispatch.advance(session.query(&request), session.is_fresh()),
        };
        match step {
            Step::Send(next) => {
                counts.noscript_reloads += u32::from(matches!(next, Request::Load(_)));
                request = next
            }
            Step::Reconnect(next) => {
                counts.redirects += session.redirects();
                drop(session);
                // A new connection of its own: another shared or pooled one may be
                // just as stale as the one that failed.
                session = backend
                    .dedicated_session(call.node, Duration::ZERO)
                    .map_err(|error| command_error(describe, call, error))?;
                request = next;
            }
            Step::Done(result) => {
                counts.redirects += session.redirects();
                return name_node(result, describe);
            }
        }
    }
}

impl<B: Backend> Client<B> {
    /// An empty [`Pipeline`] on this client.
    pub fn pipeline(&self) -> Pipeline<Client<B>> {
        Pipeline::new(self)
    }
}

impl<B: Backend> Pipeline<Client<B>> {
    /// Sends every queued operation — one round trip per server — and fills the
    /// slots.
    ///
    /// `Ok` means the server answered every operation: each slot holds its result,
    /// or that operation's own error (a wrong type, a refusal). Otherwise it is
    /// [`Error::BatchIncomplete`], which lists the operations that did not run or
    /// may not have; the slots of those that did hold their results.
    pub fn run(&self) -> Result<()> {
        self.run_taken(self.take(false))
    }

    /// Sends every queued operation as one MULTI/EXEC transaction on the master:
    /// no other client's command runs between them. As with Redis transactions, an
    /// operation refused with an error does not undo the others.
    ///
    /// Results are as for [`run`](Self::run). When the transaction could not run
    /// at all (an operation failed to build, the server aborted it), nothing was
    /// applied and every operation is listed as not run.
    pub fn run_atomic(&self) -> Result<()> {
        self.run_taken(self.take(true))
    }

    fn run_taken(&self, taken: Taken) -> Result<()> {
        let backend = self.client.backend();
        for (node, calls, indices) in taken.groups(|node| backend.serving(node)) {
            taken.mark_sent();
            let results = run_batch(backend, node, calls, taken.atomic, self.client.sending, &self.client.observer);
            taken.record(indices, name_nodes(results, || backend.describe(node)));
        }
        taken.finish()
    }
}

/// Drives one batch through the batch dispatcher on blocking sessions, sending it
/// again as the retry policy says when none of it ran (or all of it settles a
/// resend). Where every pipelined operation of the blocking client ends, and is
/// observed.
fn run_batch<B: Backend>(
    backend: &B,
    node: Node,
    calls: Vec<&ScriptCall>,
    atomic: bool,
    sending: Sending,
    observer: &Observer,
) -> Vec<Outcome> {
    let observation = observer.start_batch(calls.len(), atomic, || backend.describe(node));
    let _entered = observation.enter();
    let mut retrying = Retrying::start(sending.retry);
    let mut outcomes = run_batch_once(backend, node, calls.clone(), atomic, sending.durable);
    while let Some((pause, part)) = to_resend(&mut retrying, &outcomes, &calls, atomic) {
        if let Some(error) = part.first().and_then(|&index| outcomes[index].error()) {
            observer.retrying(None, retrying.attempts, pause, error);
        }
        std::thread::sleep(pause);
        let again =
            run_batch_once(backend, node, part.iter().map(|&index| calls[index]).collect(), atomic, sending.durable);
        for (index, outcome) in part.into_iter().zip(again) {
            outcomes[index] = outcome;
        }
    }
    observer.finish_batch(&observation, &calls, outcomes.iter().map(Outcome::error), retrying.attempts);
    outcomes
}

fn run_batch_once<B: Backend>(
    backend: &B,
    node: Node,
    calls: Vec<&ScriptCall>,
    atomic: bool,
    durable: Option<Durable>,
) -> Vec<Outcome> {
    let (mut batch, mut requests) = Batch::start(calls, atomic, durable);
    let mut session = match backend.session(node) {
        Ok(session) => session,
        Err(error) => return batch.fail(error),
    };
    loop {
        let replies = session.query_pipelined(&requests);
        match batch.advance(replies, session.is_fresh()) {
            BatchStep::Send(next) => requests = next,
            BatchStep::Reconnect(next) => {
                drop(session);
                // A new connection of its own: another pooled one may be as stale.
                session = match backend.dedicated_session(node, std::time::Duration::ZERO) {
                    Ok(session) => session,
                    Err(error) => return batch.fail(error),
                };
                requests = next;
            }
            BatchStep::Done(outcomes) => return outcomes,
        }
    }
}

/// A backend with connections of its own, so that a helper (a lock's renewals)
/// never queues behind the client's other operations: a persistent private
/// connection per node when the backend can [`fork`](Backend::fork) (the default
/// backend can), else a new connection for each operation
/// ([`Backend::dedicated_session`]).
pub(crate) struct OwnConnections<B: Backend> {
    own: Option<B>,
    shared: Client<B>,
}

impl<B: Backend> Client<B> {
    /// A client on the same servers whose operations use connections of their own.
    pub(crate) fn with_own_connections(&self) -> Client<OwnConnections<B>> {
        let backend = Arc::new(OwnConnections { own: self.backend.fork(), shared: self.clone() });
        let waiters = Arc::new(Waiters::new(&backend));
        Client { backend, sending: self.sending, waiters, observer: self.observer.clone() }
    }
}

impl<B: Backend> Backend for OwnConnections<B> {
    type Session<'a>
        = B::Session<'a>
    where
        Self: 'a;

    fn session(&self, node: Node) -> Result<B::Session<'_>, CommandError> {
        match &self.own {
            Some(own) => own.session(node),
            // Nothing blocks: the session needs no more than the usual response timeout.
            None => self.shared.backend().dedicated_session(node, Duration::ZERO),
        }
    }

    fn describe(&self, node: Node) -> String {
        self.shared.backend().describe(node)
    }

    fn serving(&self, node: Node) -> Node {
        self.shared.backend().serving(node)
    }

    fn is_cluster(&self) -> bool {
        self.shared.backend().is_cluster()
    }
}

/// Builds a client: a master and an optional replica, or the seed nodes of a
/// Redis Cluster; connection reuse; timeouts. `R` is how connections are reused:
/// [`Reuse`] for the blocking [`Client`] ([`ClientBuilder`]), `AsyncReuse` for the
/// async client (`AsyncClientBuilder`, feature `tokio`).
///
/// ```
/// use redisext::{Client, Reuse};
/// let client = Client::builder()
///     .master("redis://10.0.0.1:6379/0")
///     .replica("redis://10.0.0.2:6379/0")
///     .reuse(Reuse::PerCommand)
///     .build()?; // parses and checks; connects on first use
///
/// // A Redis Cluster: any of its nodes as seeds.
/// let cluster = Client::builder()
///     .cluster("redis://10.0.0.1:7000")
///     .cluster("redis://10.0.0.2:7000")
///     .build()?;
/// # Ok::<(), redisext::Error>(())
/// ```
#[derive(Debug, Default)]
pub struct Builder<R> {
    // Parsed on the spot so that `Debug` (and any error) shows them redacted.
    master: Option<Result<Dsn, DsnError>>,
    replica: Option<Result<Dsn, DsnError>>,
    cluster: Vec<Result<Dsn, DsnError>>,
    sentinel: Option<(String, Vec<Result<Dsn, DsnError>>)>,
    sentinel_data: Option<Result<Dsn, DsnError>>,
    replica_reads: bool,
    durable: Option<Durable>,
    reuse: R,
    timeouts: Timeouts,
    retry: RetryPolicy,
    observer: Observer,
}

/// The builder of the blocking [`Client`].
pub type ClientBuilder = Builder<Reuse>;

/// Where a client connects, once its builder's DSNs are parsed and checked.
pub(crate) enum Endpoints {
    Standalone { master: Dsn, replica: Option<Dsn> },
    Cluster { seeds: Vec<Dsn> },
    Sentinel { master_name: String, sentinels: Vec<Dsn>, data: Dsn },
}

/// What a builder was given, parsed and checked.
pub(crate) struct Parts<R> {
    pub(crate) endpoints: Endpoints,
    pub(crate) reuse: R,
    pub(crate) timeouts: Timeouts,
    pub(crate) retry: RetryPolicy,
    pub(crate) replica_reads: bool,
    pub(crate) durable: Option<Durable>,
    pub(crate) observer: Observer,
}

impl<R> Builder<R> {
    /// The master's DSN: every write goes there.
    pub fn master(mut self, dsn: &str) -> Self {
        self.master = Some(Dsn::parse(dsn));
        self
    }

    /// A DSN of any form: `redis+sentinel://…` (or `rediss+sentinel://…`) as
    /// [`sentinel`](Self::sentinel) with [`sentinel_data`](Self::sentinel_data),
    /// anything else as [`master`](Self::master).
    pub fn url(self, dsn: &str) -> Self {
        if dsn.split_once("://").is_some_and(|(scheme, _)| scheme.ends_with("+sentinel")) {
            match SentinelDsn::parse(dsn) {
                Ok(parsed) => {
                    let sentinels: Vec<Result<Dsn, DsnError>> = parsed.sentinels().iter().cloned().map(Ok).collect();
                    let mut builder = self;
                    builder.sentinel = Some((parsed.master_name().to_owned(), sentinels));
                    builder.sentinel_data = Some(Ok(parsed.data().clone()));
                    builder
                }
                Err(error) => Builder { master: Some(Err(error)), ..self },
            }
        } else {
            self.master(dsn)
        }
    }

    /// The master that the `sentinels` (their DSNs: `redis://[:password@]host:26379`,
    /// or `rediss://`) call `master_name`, and its replicas. The client asks the
    /// sentinels on first use, and again whenever the master cannot be reached or
    /// refuses a write (`READONLY`: it was demoted): a failover is followed.
    /// Data nodes are reached as [`sentinel_data`](Self::sentinel_data) says (by
    /// default with the first sentinel's TLS setting, no password, database 0).
    /// Reads go to the master unless [`read_from_replicas`](Self::read_from_replicas).
    ///
    /// ```
    /// use redisext::Client;
    /// let client = Client::builder()
    ///     .sentinel("mymaster", ["redis://10.0.0.1:26379", "redis://10.0.0.2:26379"])
    ///     .sentinel_data("redis://app:s3cret@unused/2")
    ///     .build()?; // connects on first use
    /// // The same as one DSN:
    /// let same = Client::open("redis+sentinel://app:s3cret@10.0.0.1,10.0.0.2/mymaster/2")?;
    /// # Ok::<(), redisext::Error>(())
    /// ```
    pub fn sentinel<S: AsRef<str>>(mut self, master_name: &str, sentinels: impl IntoIterator<Item = S>) -> Self {
        let sentinels = sentinels.into_iter().map(|dsn| Dsn::parse(dsn.as_ref())).collect();
        self.sentinel = Some((master_name.to_owned(), sentinels));
        self
    }

    /// How a Sentinel client reaches the data nodes: the user, password,
    /// database and TLS setting of `dsn` (its host and port are not used).
    pub fn sentinel_data(mut self, dsn: &str) -> Self {
        self.sentinel_data = Some(Dsn::parse(dsn));
        self
    }

    /// Read-only scripts of models that do not read from the master go to
    /// replicas: a cluster slot's replicas (after `READONLY`), or the replicas
    /// the sentinels name (default: off; a [`replica`](Self::replica) given by
    /// DSN is always read from). A replica may lag behind its master.
    pub fn read_from_replicas(mut self, yes: bool) -> Self {
        self.replica_reads = yes;
        self
    }

    /// A replica's DSN: reads go there unless a model reads from the master.
    pub fn replica(mut self, dsn: &str) -> Self {
        self.replica = Some(Dsn::parse(dsn));
        self
    }

    /// A seed node of a Redis Cluster (call again to add more; any node will do).
    /// Each operation then goes to the master serving its key's hash slot, every
    /// key of a model being in one slot; reads go to masters too, unless
    /// [`read_from_replicas`](Self::read_from_replicas). Not combinable with
    /// [`master`](Self::master) or [`replica`](Self::replica). Blocking and async
    /// clients alike (see `docs/connections.md`).
    ///
    /// With [`Reuse::Lazy`] each node keeps the connections it has opened (up to
    /// 16 idle) for reuse, so concurrent operations on one node do not queue
    /// behind a single connection.
    pub fn cluster(mut self, dsn: &str) -> Self {
        self.cluster.push(Dsn::parse(dsn));
        self
    }

    /// How connections are reused (default: lazy, one per node).
    pub fn reuse(mut self, reuse: R) -> Self {
        self.reuse = reuse;
        self
    }

    /// Connection and response timeouts (default: 5 s and 30 s).
    pub fn timeouts(mut self, timeouts: Timeouts) -> Self {
        self.timeouts = timeouts;
        self
    }

    /// Durable writes: every write (of a model without its own setting, see
    /// [`ModelOptions::durable`](crate::ModelOptions::durable)) waits, in the same
    /// round trip, until `replicas` replicas acknowledged it, for up to `timeout`;
    /// fewer is [`Error::NotReplicated`]. Without it (the default) a write is
    /// acknowledged by the master alone, and a failover may lose it.
    pub fn durable(mut self, replicas: u32, timeout: std::time::Duration) -> Self {
        self.durable = Some(Durable { replicas, timeout });
        self
    }

    /// What is retried, for how long (default: [`RetryPolicy::default`], 10 s;
    /// [`RetryPolicy::never`] turns retries off).
    pub fn retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    /// A hook told of every operation when it ends: its script, outcome,
    /// attempts and latency, for your metrics (see [`observe`](crate::observe)).
    /// Default: none, which costs one branch per operation.
    pub fn metrics(mut self, metrics: impl Metrics) -> Self {
        self.observer.metrics = Some(Arc::new(metrics));
        self
    }

    /// Whether each operation's span (feature `tracing`) names its keys, in the
    /// field `keys` (default: no — key names may be personal data).
    pub fn trace_keys(mut self, yes: bool) -> Self {
        self.observer.trace_keys = yes;
        self
    }

    /// The parsed endpoints and settings.
    pub(crate) fn parts(self) -> Result<Parts<R>> {
        let kinds = [self.master.is_some(), !self.cluster.is_empty(), self.sentinel.is_some()];
        if kinds.iter().filter(|given| **given).count() > 1 {
            return Err(Error::Config(
                "a client is for a master (and replica), a cluster or a Sentinel master: not several".into(),
            ));
        }
        let endpoints = if let Some((master_name, sentinels)) = self.sentinel {
            if self.replica.is_some() {
                return Err(Error::Config("a Sentinel client finds its replicas itself: do not give one".into()));
            }
            let sentinels = sentinels.into_iter().collect::<Result<Vec<Dsn>, DsnError>>()?;
            let first = sentinels.first().ok_or_else(|| Error::Config("no sentinel given".into()))?;
            let data = match self.sentinel_data.transpose()? {
                Some(data) => data,
                None => Dsn::parse(&format!(
                    "{}://{}",
                    if first.to_string().starts_with("rediss") { "rediss" } else { "redis" },
                    first.address().host_port().unwrap_or_default()
                ))?,
            };
            Endpoints::Sentinel { master_name, sentinels, data }
        } else if self.cluster.is_empty() {
            let master = self.master.ok_or_else(|| Error::Config("no master DSN given".into()))??;
            Endpoints::Standalone { master, replica: self.replica.transpose()? }
        } else {
            if self.replica.is_some() {
                return Err(Error::Config("a client is either for a cluster or for a master and replica".into()));
            }
            Endpoints::Cluster { seeds: self.cluster.into_iter().collect::<Result<Vec<Dsn>, DsnError>>()? }
        };
        Ok(Parts {
            endpoints,
            reuse: self.reuse,
            timeouts: self.timeouts,
            retry: self.retry,
            replica_reads: self.replica_reads,
            durable: self.durable,
            observer: self.observer,
        })
    }
}

impl Builder<Reuse> {
    /// Parses the DSNs and checks the settings. Connects to nothing.
    pub fn build(self) -> Result<Client> {
        let Parts { endpoints, reuse, timeouts, retry, replica_reads, durable, observer } = self.parts()?;
        let backend = match endpoints {
            Endpoints::Standalone { master, replica } => RedisBackend::new(&master, replica.as_ref(), reuse, timeouts)?,
            Endpoints::Cluster { seeds } => RedisBackend::cluster(&seeds, reuse, timeouts, replica_reads)?,
            Endpoints::Sentinel { master_name, sentinels, data } => {
                RedisBackend::sentinel(&master_name, &sentinels, &data, reuse, timeouts, replica_reads)?
            }
        };
        let client = Client::with_backend(backend).with_retry(retry).with_durable(durable);
        Ok(Client { observer, ..client })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::call;
    use crate::key::Key;
    use crate::model::{Core, ModelOptions};
    use crate::op::decode;
    use crate::testing::RedisServer;

    fn opened(reply: Reply, call: &ScriptCall) -> Result<Option<i64>> {
        decode::optional_int(reply, call).map(|value| value.filter(|n| *n >= 1))
    }

    fn gate_op<E: Executor>(core: &Core<E>) -> Op<Option<i64>> {
        Op::new(call::counter::Get { counter: core.key() }.call(core.target()), opened)
    }

    #[test]
    fn a_waiting_operation_makes_exactly_one_attempt_in_a_pipeline() {
        let server = RedisServer::start().unwrap();
        let client = Client::open(&server.url()).unwrap();
        let pipe = client.pipeline();
        let core = Core::new(&pipe, "gate", ModelOptions::default(), "string").unwrap();
        let wait = Wait::on_signal(Duration::from_secs(3600), Key::new("gate:signal").unwrap());
        // Loaded beforehand, so that no NOSCRIPT retry is counted as an attempt.
        server.command(&["SCRIPT", "LOAD", call::counter::Get::SCRIPT.source()]).unwrap();
        let closed = pipe.execute_waiting(gate_op(&core), wait.clone());
        pipe.run().unwrap();
        assert_eq!(closed.take().unwrap(), None, "could not proceed: no wait inside a batch");
        assert_eq!(server.command_calls("evalsha_ro").unwrap(), 1, "one attempt");
        assert_eq!(server.command_calls("blpop").unwrap(), 0, "never blocked");

        server.command(&["SET", "gate", "1"]).unwrap();
        let open = pipe.execute_waiting(gate_op(&core), wait);
        pipe.run().unwrap();
        assert_eq!(open.take().unwrap(), Some(1));
    }
}
