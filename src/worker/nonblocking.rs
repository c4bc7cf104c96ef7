//! [`Worker`]: a reliable queue's consumer on tokio.

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::task::JoinSet;

use super::{
    Backoff, Counters, Ended, Settings, Settle, Settled, Shutdown, WorkerStats, WorkerStatsHandle, done, nacked,
    undecodable,
};
use crate::async_client::AsyncClient;
use crate::backend::AsyncBackend;
use crate::model::reliable_queue::ReliableQueue;
use crate::receipt::{Delivered, Receipt};
use crate::serializer::Serializer;

/// Runs an async handler on each delivery of a [`ReliableQueue`], at most
/// [`concurrency`](Self::concurrency) at once, each as a tokio task.
///
/// - `Ok` from the handler: the delivery is acknowledged.
/// - `Err`, or a panic: the item is delivered again after the [`Backoff`] (the
///   queue dead-letters it after its
///   [`max_deliveries`](ReliableQueue::max_deliveries); the last allowed delivery
///   is nacked at once so that it is).
/// - While a handler runs, its delivery's deadline is extended to
///   [`visibility`](Self::visibility) from now every third of it, so a long job is
///   not delivered to another consumer; an extension that finds the receipt stale
///   counts in [`WorkerStats::leases_lost`].
/// - [`shutdown_handle`](Self::shutdown_handle) stops it: it pops nothing more
///   (noticed within [`idle_wait`](Self::idle_wait) when the queue is empty, at
///   once otherwise), waits for the handlers running, settles their deliveries and
///   [`run`](Self::run) returns the final [`WorkerStats`]. Dropping the `run`
///   future instead aborts the handlers: their items are delivered again once
///   their deadlines pass (nothing is lost).
///
/// The worker is `concurrency` consumer tasks, each popping (`pop_wait`) and
/// running the handler on what it popped, so it never holds a delivery it has
/// no handler for, and pops go out concurrently. (Idle consumers wait on the
/// client's shared waiter connection, as any `pop_wait` does.) Deliveries the serializer cannot decode count as failures (and
/// are retried, then dead-lettered, like any other).
///
/// ```
/// # let server = redisext::testing::RedisServer::start()?;
/// # let url = server.url();
/// # tokio::runtime::Runtime::new()?.block_on(async {
/// use std::time::Duration;
/// use redisext::{AsyncClient, ReliableQueue, serializer::Str, worker::Worker};
///
/// let client = AsyncClient::open(&url)?;
/// let emails = ReliableQueue::<Str, _>::new(&client, "emails")?;
/// emails.push_many(["ann@example.com", "bob@example.com"]).await?;
///
/// let worker = Worker::new(&emails, |job| async move {
///     println!("sending to {}", job.value());
///     Ok::<(), std::io::Error>(())
/// })
/// .concurrency(8)
/// .visibility(Duration::from_secs(30));
/// let shutdown = worker.shutdown_handle();
/// let running = tokio::spawn(worker.run());
///
/// while emails.counts().await?.total() > 0 {
///     tokio::time::sleep(Duration::from_millis(10)).await;
/// }
/// shutdown.trigger();
/// let stats = running.await.expect("the worker does not panic");
/// assert_eq!((stats.delivered, stats.acked), (2, 2));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// # })?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Worker<S: Serializer, B: AsyncBackend, H> {
    queue: ReliableQueue<S, AsyncClient<B>>,
    handler: H,
    settings: Settings,
    shutdown: Shutdown,
    counters: Arc<Counters>,
}

impl<S, B, H, Fut, E> Worker<S, B, H>
where
    S: Serializer + 'static,
    S::Owned: Send + 'static,
    B: AsyncBackend,
    H: Fn(Delivered<S::Owned>) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<(), E>> + Send + 'static,
    E: std::fmt::Display + Send + 'static,
{
    /// A worker running `handler` on the deliveries of `queue` (8 at once, 30 s
    /// visibility, 1 s idle wait, the default [`Backoff`]). Nothing runs until
    /// [`run`](Self::run).
    pub fn new(queue: &ReliableQueue<S, AsyncClient<B>>, handler: H) -> Self {
        Worker {
            queue: queue.clone(),
            handler,
            settings: Settings::new(8),
            shutdown: Shutdown::new(),
            counters: Arc::default(),
        }
    }

    /// How many handlers run at once (at least 1; default 8).
    pub fn concurrency(mut self, concurrency: usize) -> Self {
        self.settings.concurrency = concurrency.max(1);
        self
    }

    /// How long each delivery stays in flight before the queue may deliver it
    /// again (default 30 s); extended by this much every third of it while its
    /// handler runs.
    pub fn visibility(mut self, visibility: Duration) -> Self {
        self.settings.visibility = visibility;
        self
    }

    /// How long one pop waits for an item when the queue is empty (default 1 s):
    /// a shutdown is noticed within this long.
    pub fn idle_wait(mut self, idle_wait: Duration) -> Self {
        self.settings.idle_wait = idle_wait;
        self
    }

    /// How long a failed delivery waits before it is delivered again (default:
    /// 1 s doubling to 1 minute).
    pub fn backoff(mut self, backoff: Backoff) -> Self {
        self.settings.backoff = backoff;
        self
    }

    /// Stops the worker when triggered, or stops it with `shutdown` (to stop
    /// several workers, or streams, at once).
    pub fn shutdown_with(mut self, shutdown: &Shutdown) -> Self {
        self.shutdown = shutdown.clone();
        self
    }

    /// The handle that stops this worker (see [`Worker`]).
    pub fn shutdown_handle(&self) -> Shutdown {
        self.shutdown.clone()
    }

    /// A live view of the worker's counts and last error, usable while it runs.
    pub fn stats_handle(&self) -> WorkerStatsHandle {
        WorkerStatsHandle::new(&self.counters)
    }

    /// Pops and handles deliveries until the shutdown is triggered, then waits
    /// for the handlers running and returns what the worker did. Must run on a
    /// tokio runtime (spawn it, or await it).
    pub async fn run(self) -> WorkerStats {
        let counters = Arc::clone(&self.counters);
        let worker = Arc::new(self);
        let mut consumers = JoinSet::new();
        for _ in 0..worker.settings.concurrency {
            consumers.spawn(Arc::clone(&worker).consume());
        }
        while consumers.join_next().await.is_some() {}
        counters.snapshot()
    }

    /// One consumer task: pop, handle, settle, until the shutdown.
    async fn consume(self: Arc<Self>) {
        let Worker { queue, handler, settings, shutdown, counters } = &*self;
        while !shutdown.is_triggered() {
            match queue.pop_wait(settings.visibility, settings.idle_wait).await {
                Ok(Some(delivered)) => {
                    counters.popped();
                    handle(queue, handler, delivered, settings, counters).await;
                }
                Ok(None) => {}
                Err(error) => match undecodable(&error) {
                    // In flight like any delivery: settled as a failure.
                    Some(receipt) => {
                        counters.popped();
                        counters.note(&error);
                        counters.ended(Ended::Undecodable);
                        settle(queue, receipt, Ended::Undecodable, settings, counters).await;
                    }
                    None => {
                        counters.error(&error);
                        tokio::time::sleep(Settings::ERROR_PAUSE).await;
                    }
                },
            }
        }
    }
}

/// Runs the handler on one delivery (a panic is a failure, not the consumer's
/// end), extending the delivery while it runs, then settles the delivery.
async fn handle<S, B, H, Fut, E>(
    queue: &ReliableQueue<S, AsyncClient<B>>,
    handler: &H,
    delivered: Delivered<S::Owned>,
    settings: &Settings,
    counters: &Counters,
) where
    S: Serializer + 'static,
    S::Owned: Send + 'static,
    B: AsyncBackend,
    H: Fn(Delivered<S::Owned>) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<(), E>> + Send + 'static,
    E: std::fmt::Display + Send + 'static,
{
    let receipt = *delivered.receipt();
    // Run in this task (a task of its own would cost a cross-thread wake-up per
    // job), a panic caught as a failure.
    let mut job = CatchUnwind(Box::pin(handler(delivered)));
    let mut extending = true;
    let outcome = loop {
        if !extending {
            break (&mut job).await;
        }
        match tokio::time::timeout(settings.extend_every(), &mut job).await {
            Ok(outcome) => break outcome,
            Err(_still_running) => {
                let extended = queue.extend(&receipt, settings.visibility).await.map(|deadline| deadline.is_some());
                counters.extension(extended.as_ref().copied());
                // A stale receipt stays stale: stop extending it.
                extending = !matches!(extended, Ok(false));
            }
        }
    };
    let ended = match outcome {
        Ok(Ok(())) => Ended::Succeeded,
        Ok(Err(error)) => {
            counters.note(&error);
            Ended::Failed
        }
        Err(_panicked) => Ended::Panicked,
    };
    counters.ended(ended);
    settle(queue, receipt, ended, settings, counters).await;
}

/// A future whose panic is caught and returned as `Err` (boxed, so no unsafe
/// pin projection is needed).
struct CatchUnwind<F>(Pin<Box<F>>);

impl<F: Future> Future for CatchUnwind<F> {
    type Output = std::thread::Result<F::Output>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let inner = self.0.as_mut();
        match std::panic::catch_unwind(AssertUnwindSafe(|| inner.poll(cx))) {
            Ok(Poll::Pending) => Poll::Pending,
            Ok(Poll::Ready(output)) => Poll::Ready(Ok(output)),
            Err(panic) => Poll::Ready(Err(panic)),
        }
    }
}

/// Acks, nacks or backs off one delivery as [`Settle`] says, and counts it.
async fn settle<S: Serializer, B: AsyncBackend>(
    queue: &ReliableQueue<S, AsyncClient<B>>,
    receipt: Receipt,
    ended: Ended,
    settings: &Settings,
    counters: &Counters,
) {
    let plan = Settle::of(ended == Ended::Succeeded, receipt.delivery(), queue.max_deliveries(), &settings.backoff);
    let settled = match plan {
        Settle::Ack => queue.ack(&receipt).await.map(|acked| done(acked, Settled::Acked)),
        Settle::Nack => queue.nack(&receipt).await.map(nacked),
        Settle::RetryAfter(delay) => {
            queue.extend(&receipt, delay).await.map(|deadline| done(deadline.is_some(), Settled::Retried))
        }
    };
    counters.settled(settled.as_ref().copied());
}
