//! The async client (feature `tokio`): the same operations as the blocking
//! [`Client`](crate::Client), returned as futures, run by the same dispatcher —
//! and its drivers (one call, a waiting call, a pipeline's batches) on async
//! sessions.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use crate::backend::{AsyncBackend, AsyncSession, RedisAsyncBackend, Request};
use crate::batch::{Batch, BatchStep, Outcome, name_nodes, to_resend};
use crate::call::{Durable, Node, ScriptCall};
use crate::client::{Builder, Endpoints, Parts, command_error};
use crate::connection::AsyncReuse;
use crate::dispatch::{Dispatch, Step, name_node};
use crate::error::Result;
use crate::observe::{Counts, Metrics, Observer};
use crate::op::{Executor, Op, Pause, Wait, Waiting};
use crate::pipeline::{Pipeline, Taken};
use crate::retry::{RetryPolicy, Retrying, Sending};
use crate::wire::{CommandError, Reply};

/// An async client on tokio: where models send their operations when every call
/// should return a future.
///
/// Any model works on it unchanged: build the model on the async client (or rebind
/// one with `on(&async_client)`) and `.await` its methods. Each future is `Send`
/// and `'static`, so it may be spawned; nothing is sent until it is polled.
///
/// Cheap to clone (an `Arc`); clones share connections. By default each node gets
/// one multiplexed connection that every task shares and that reconnects by
/// itself; blocking waits use connections of their own (see [`AsyncReuse`]).
///
/// ```
/// # let server = redisext::testing::RedisServer::start()?;
/// # let url = server.url();
/// # tokio::runtime::Runtime::new()?.block_on(async {
/// use redisext::{AsyncClient, Counter};
/// let client = AsyncClient::open(&url)?; // url: "redis://127.0.0.1:6379/0"
/// let visitors = Counter::new(&client, "visitors")?;
/// assert_eq!(visitors.incr(1).await?, 1);
/// assert_eq!(visitors.get().await?, 1);
/// # Ok::<(), redisext::Error>(())
/// # })?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct AsyncClient<B: AsyncBackend = RedisAsyncBackend> {
    backend: Arc<B>,
    sending: Sending,
    observer: Observer,
}

impl<B: AsyncBackend> Clone for AsyncClient<B> {
    fn clone(&self) -> Self {
        AsyncClient { backend: Arc::clone(&self.backend), sending: self.sending, observer: self.observer.clone() }
    }
}

impl<B: AsyncBackend> std::fmt::Debug for AsyncClient<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AsyncClient").field("master", &self.backend.describe(Node::Master)).finish()
    }
}

impl AsyncClient {
    /// A client for one server, from a DSN (see [`Dsn`](crate::Dsn)). Nothing is connected
    /// until the first operation, which must run inside a tokio runtime.
    pub fn open(dsn: &str) -> Result<AsyncClient> {
        AsyncClient::builder().url(dsn).build()
    }

    /// A builder for a master, an optional replica, reuse and timeouts.
    pub fn builder() -> AsyncClientBuilder {
        AsyncClientBuilder::default()
    }
}

impl<B: AsyncBackend> AsyncClient<B> {
    /// A client on an async backend of your own (see [`AsyncBackend`]).
    pub fn with_backend(backend: B) -> AsyncClient<B> {
        AsyncClient { backend: Arc::new(backend), sending: Sending::default(), observer: Observer::default() }
    }

    /// This client (same connections) with another retry policy.
    pub fn with_retry(&self, retry: RetryPolicy) -> AsyncClient<B> {
        AsyncClient { sending: Sending { retry, ..self.sending }, ..self.clone() }
    }

    /// This client (same connections) reporting every operation to `metrics`
    /// (see [`observe`](crate::observe)); [`Builder::metrics`] sets it when building.
    pub fn with_metrics(&self, metrics: impl Metrics) -> AsyncClient<B> {
        let metrics: Arc<dyn Metrics> = Arc::new(metrics);
        AsyncClient { observer: Observer { metrics: Some(metrics), ..self.observer.clone() }, ..self.clone() }
    }

    /// This client (same connections) naming the keys of each operation in its
    /// span, or not (see [`Builder::trace_keys`]).
    pub fn with_trace_keys(&self, yes: bool) -> AsyncClient<B> {
        AsyncClient { observer: Observer { trace_keys: yes, ..self.observer.clone() }, ..self.clone() }
    }

    /// The retry policy (see [`RetryPolicy`]).
    pub fn retry_policy(&self) -> RetryPolicy {
        self.sending.retry
    }

    /// This client (same connections) with durable writes (see [`Durable`](crate::Durable))
    /// for the models that have no setting of their own; `None` turns them off.
    pub fn with_durable(&self, durable: Option<crate::Durable>) -> AsyncClient<B> {
        AsyncClient { sending: Sending { durable, ..self.sending }, ..self.clone() }
    }

    /// The backend.
    pub fn backend(&self) -> &B {
        &self.backend
    }

    pub(crate) fn shared_backend(&self) -> &Arc<B> {
        &self.backend
    }

    /// An empty [`Pipeline`](crate::Pipeline) on this client; its `run` is async.
    pub fn pipeline(&self) -> crate::Pipeline<AsyncClient<B>> {
        crate::Pipeline::new(self)
    }
}

/// The future of one operation on an [`AsyncClient`]: resolves to its result.
/// `Send` and `'static`; nothing is sent until it is polled.
#[must_use = "an operation does nothing until it is awaited"]
pub struct Pending<T> {
    future: Pin<Box<dyn Future<Output = Result<T>> + Send + 'static>>,
}

impl<T> Pending<T> {
    fn new(future: impl Future<Output = Result<T>> + Send + 'static) -> Pending<T> {
        Pending { future: Box::pin(future) }
    }
}

impl<T> Future for Pending<T> {
    type Output = Result<T>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<T>> {
        self.future.as_mut().poll(cx)
    }
}

impl<T> std::fmt::Debug for Pending<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Pending")
    }
}

impl<B: AsyncBackend> crate::op::sealed::Sealed for AsyncClient<B> {}

impl<B: AsyncBackend> Executor for AsyncClient<B> {
    type Output<T: Send + 'static> = Pending<T>;

    fn execute<T: Send + 'static>(&self, op: Op<T>) -> Pending<T> {
        let (backend, sending, observer) = (Arc::clone(&self.backend), self.sending, self.observer.clone());
        Pending::new(async move {
            let call = op.call?;
            let reply = run_call(&*backend, &call, sending, &observer).await?;
            (op.decode)(reply, &call)
        })
    }

    fn execute_waiting<T: Send + 'static>(&self, op: Op<Option<T>>, wait: Wait) -> Pending<Option<T>> {
        let (backend, sending, observer) = (Arc::clone(&self.backend), self.sending, self.observer.clone());
        Pending::new(async move {
            let backend = &*backend;
            let call = op.call?;
            let mut waiting = Waiting::start(&wait);
            let mut signal_session = None;
            loop {
                if let Some(value) = (op.decode)(run_call(backend, &call, sending, &observer).await?, &call)? {
                    return Ok(Some(value));
                }
                match waiting.next_pause() {
                    None => return Ok(None),
                    Some(Pause::Sleep(pause)) => tokio::time::sleep(pause).await,
                    Some(Pause::Signal(signal, block)) => {
                        // A connection of its own: a BLPOP on a multiplexed
                        // connection would hold up every other task's requests.
                        if signal_session.is_none() {
                            signal_session = backend.dedicated_session(Node::Master, Wait::MAX_BLOCK).await.ok();
                        }
                        let woken = match signal_session.as_mut() {
                            Some(session) => session.query(&Request::Pop(signal, block)).await,
                            None => Err(CommandError::not_sent_after_failure()),
                        };
                        if woken.is_err() {
                            // The wait's own connection failed, not the operation:
                            // retry on a new one after a pause.
                            signal_session = None;
                            waiting.signal_failed();
                        }
                    }
                }
            }
        })
    }
}

/// Drives one script call through the dispatcher on async sessions, trying again
/// as the retry policy says: where every operation of the async client ends, and
/// is observed.
pub(crate) async fn run_call<B: AsyncBackend>(
    backend: &B,
    call: &ScriptCall,
    sending: Sending,
    observer: &Observer,
) -> Result<Reply> {
    // Without a runtime there is no timer to wait with: the backend says why.
    let retry = if tokio::runtime::Handle::try_current().is_ok() { sending.retry } else { RetryPolicy::never() };
    let observation = observer.start_call(call, || backend.describe(call.node));
    let mut counts = Counts::default();
    let mut retrying = Retrying::start(retry);
    let attempts = observation.instrument(async {
        loop {
            match run_call_once(backend, call, sending.durable, &mut counts).await {
                Err(error) => match retrying.after(&error, call.resendable) {
                    Some(pause) => {
                        observer.retrying(Some(call.script), retrying.attempts, pause, &error);
                        tokio::time::sleep(pause).await
                    }
                    None => break Err(error),
                },
                reply => break reply,
            }
        }
    });
    let result = attempts.await;
    observer.finish_call(&observation, call, result.as_ref().err(), retrying.attempts, &counts);
    result
}

async fn run_call_once<B: AsyncBackend>(
    backend: &B,
    call: &ScriptCall,
    durable: Option<Durable>,
    counts: &mut Counts,
) -> Result<Reply> {
    let describe = || backend.describe(call.node);
    let failed = |error| command_error(describe, call, error);
    let mut session = backend.session(call.node).await.map_err(failed)?;
    let (mut dispatch, mut request) = Dispatch::start(call, durable);
    loop {
        let step = match dispatch.wait_with(&request) {
            Some(wait) => {
                let mut replies = session.query_pipelined(&[request, wait]).await.into_iter();
                let mut next = || replies.next().unwrap_or_else(|| Err(CommandError::not_sent_after_failure()));
                let (outcome, waited) = (next(), next());
                dispatch.advance_durable(outcome, waited, session.is_fresh())
            }
            None => dispatch.advance(session.query(&request).await, session.is_fresh()),
        };
        match step {
            Step::Send(next) => {
                counts.noscript_reloads += u32::from(matches!(next, Request::Load(_)));
                request = next
            }
            Step::Reconnect(next) => {
                counts.redirects += session.redirects();
                drop(session);
                // A new connection of its own: the next shared one may be just as
                // stale as the one that failed.
                session = backend.dedicated_session(call.node, Duration::ZERO).await.map_err(failed)?;
                request = next;
            }
            Step::Done(result) => {
                counts.redirects += session.redirects();
                return name_node(result, describe);
            }
        }
    }
}

impl<B: AsyncBackend> Pipeline<AsyncClient<B>> {
    /// Sends every queued operation — one round trip per server — and fills the
    /// slots: [`Pipeline::run`] of the blocking client, as a `Send + 'static`
    /// future. What was queued when this is called is what the future sends.
    pub fn run(&self) -> impl std::future::Future<Output = Result<()>> + Send + 'static {
        run_taken_async(
            Arc::clone(self.client.shared_backend()),
            self.take(false),
            self.client.sending,
            self.client.observer.clone(),
        )
    }

    /// Sends every queued operation as one MULTI/EXEC transaction on the master:
    /// [`Pipeline::run_atomic`] of the blocking client, as a future.
    pub fn run_atomic(&self) -> impl std::future::Future<Output = Result<()>> + Send + 'static {
        run_taken_async(
            Arc::clone(self.client.shared_backend()),
            self.take(true),
            self.client.sending,
            self.client.observer.clone(),
        )
    }
}

async fn run_taken_async<B: AsyncBackend>(
    backend: Arc<B>,
    taken: Taken,
    sending: Sending,
    observer: Observer,
) -> Result<()> {
    let backend = &*backend;
    for (node, calls, indices) in taken.groups(|node| backend.serving(node)) {
        taken.mark_sent();
        let results = run_batch_async(backend, node, calls, taken.atomic, sending, &observer).await;
        taken.record(indices, name_nodes(results, || backend.describe(node)));
    }
    taken.finish()
}

/// Drives one batch through the batch dispatcher on async sessions, sending it
/// again as the retry policy says when none of it ran. Where every pipelined
/// operation of the async client ends, and is observed.
async fn run_batch_async<B: AsyncBackend>(
    backend: &B,
    node: Node,
    calls: Vec<&ScriptCall>,
    atomic: bool,
    sending: Sending,
    observer: &Observer,
) -> Vec<Outcome> {
    let retry = if tokio::runtime::Handle::try_current().is_ok() { sending.retry } else { RetryPolicy::never() };
    let observation = observer.start_batch(calls.len(), atomic, || backend.describe(node));
    let mut retrying = Retrying::start(retry);
    let sent = observation.instrument(async {
        let mut outcomes = run_batch_once(backend, node, calls.clone(), atomic, sending.durable).await;
        while let Some((pause, part)) = to_resend(&mut retrying, &outcomes, &calls, atomic) {
            if let Some(error) = part.first().and_then(|&index| outcomes[index].error()) {
                observer.retrying(None, retrying.attempts, pause, error);
            }
            tokio::time::sleep(pause).await;
            let again = run_batch_once(
                backend,
                node,
                part.iter().map(|&index| calls[index]).collect(),
                atomic,
                sending.durable,
            )
            .await;
            for (index, outcome) in part.into_iter().zip(again) {
                outcomes[index] = outcome;
            }
        }
        outcomes
    });
    let outcomes = sent.await;
    observer.finish_batch(&observation, &calls, outcomes.iter().map(Outcome::error), retrying.attempts);
    outcomes
}

async fn run_batch_once<B: AsyncBackend>(
    backend: &B,
    node: Node,
    calls: Vec<&ScriptCall>,
    atomic: bool,
    durable: Option<Durable>,
) -> Vec<Outcome> {
    let (mut batch, mut requests) = Batch::start(calls, atomic, durable);
    let mut session = match backend.session(node).await {
        Ok(session) => session,
        Err(error) => return batch.fail(error),
    };
    loop {
        let replies = session.query_pipelined(&requests).await;
        match batch.advance(replies, session.is_fresh()) {
            BatchStep::Send(next) => requests = next,
            BatchStep::Reconnect(next) => {
                drop(session);
                // A new connection of its own: the next shared one may be as stale.
                session = match backend.dedicated_session(node, std::time::Duration::ZERO).await {
                    Ok(session) => session,
                    Err(error) => return batch.fail(error),
                };
                requests = next;
            }
            BatchStep::Done(outcomes) => return outcomes,
        }
    }
}

/// The builder of the [`AsyncClient`] (see [`Builder`]).
///
/// ```
/// use std::time::Duration;
/// use redisext::{AsyncClient, AsyncReuse, Timeouts};
/// let client = AsyncClient::builder()
///     .master("redis://10.0.0.1:6379/0")
///     .replica("redis://10.0.0.2:6379/0")
///     .reuse(AsyncReuse::Multiplexed { connections: 2 })
///     // The redis crate's own default response timeout is 500 ms; ours is 30 s.
///     .timeouts(Timeouts { connect: Duration::from_secs(2), response: Some(Duration::from_secs(5)) })
///     .build()?; // parses and checks; connects on first use
/// # Ok::<(), redisext::Error>(())
/// ```
pub type AsyncClientBuilder = Builder<AsyncReuse>;

impl Builder<AsyncReuse> {
    /// Parses the DSNs and checks the settings. Connects to nothing.
    pub fn build(self) -> Result<AsyncClient> {
        let Parts { endpoints, reuse, timeouts, retry, replica_reads, durable, observer } = self.parts()?;
        let backend = match endpoints {
            Endpoints::Standalone { master, replica } => {
                RedisAsyncBackend::new(&master, replica.as_ref(), reuse, timeouts)?
            }
            Endpoints::Cluster { seeds } => RedisAsyncBackend::cluster(&seeds, reuse, timeouts, replica_reads)?,
            Endpoints::Sentinel { master_name, sentinels, data } => {
                RedisAsyncBackend::sentinel(&master_name, &sentinels, &data, reuse, timeouts, replica_reads)?
            }
        };
        let client = AsyncClient::with_backend(backend).with_retry(retry).with_durable(durable);
        Ok(AsyncClient { observer, ..client })
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::key::Key;
    use crate::model::{Core, ModelOptions};
    use crate::op::decode;
    use crate::testing::RedisServer;
    use crate::{Counter, call};

    /// The counter at `gate`, once it is at least 1; `None` before.
    fn opened(reply: Reply, call: &ScriptCall) -> Result<Option<i64>> {
        decode::optional_int(reply, call).map(|value| value.filter(|n| *n >= 1))
    }

    fn gate_op(client: &AsyncClient) -> Op<Option<i64>> {
        let core = Core::new(client, "gate", ModelOptions::default(), "string").unwrap();
        Op::new(call::counter::Get { counter: core.key() }.call(core.target()), opened)
    }

    fn blocked_clients(server: &RedisServer) -> u64 {
        let info = server.info("clients").unwrap();
        info.lines().find_map(|l| l.strip_prefix("blocked_clients:")).unwrap().trim().parse().unwrap()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_signal_wait_blocks_a_connection_of_its_own_never_the_shared_one() {
        let server = RedisServer::start().unwrap();
        let client = AsyncClient::open(&server.url()).unwrap();
        let wait = Wait::on_signal(Duration::from_secs(60), Key::new("gate:signal").unwrap());
        let waiter = tokio::spawn(client.execute_waiting(gate_op(&client), wait));
        let watched = tokio::task::spawn_blocking(move || {
            server.wait_until(Duration::from_secs(10), |s| Ok(blocked_clients(s) == 1)).unwrap();
            server
        });
        let server = watched.await.unwrap();

        // While the BLPOP blocks, the shared multiplexed connection keeps serving:
        // on it, these would queue behind the BLPOP for up to a minute.
        let other = Counter::new(&client, "other").unwrap();
        for expected in 1..=200 {
            assert_eq!(other.incr(1).await.unwrap(), expected);
        }
        assert!(!waiter.is_finished(), "the waiter is still waiting for its signal");
        assert_eq!(blocked_clients(&server), 1);

        Counter::new(&client, "gate").unwrap().incr(1).await.unwrap();
        server.command(&["RPUSH", "gate:signal", "1"]).unwrap();
        assert_eq!(waiter.await.unwrap().unwrap(), Some(1));
    }

    #[tokio::test]
    async fn a_polling_wait_retries_until_it_can_proceed_or_times_out() {
        let server = RedisServer::start().unwrap();
        let client = AsyncClient::open(&server.url()).unwrap();
        let wait = Wait::polling(Duration::from_millis(30));
        assert_eq!(client.execute_waiting(gate_op(&client), wait).await.unwrap(), None);
        let polls_before = server.command_calls("evalsha_ro").unwrap();
        assert!(polls_before >= 2, "it polled more than once: {polls_before}");

        let wait = Wait::polling(Duration::from_secs(30));
        let waiter = tokio::spawn(client.execute_waiting(gate_op(&client), wait));
        tokio::time::sleep(Duration::from_millis(20)).await;
        Counter::new(&client, "gate").unwrap().incr(1).await.unwrap();
        assert_eq!(waiter.await.unwrap().unwrap(), Some(1));
    }
}
