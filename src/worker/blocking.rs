//! [`BlockingWorker`]: a reliable queue's consumer on threads.

use std::collections::HashMap;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread;
use std::time::{Duration, Instant};

use super::{
    Backoff, Counters, Ended, Settings, Settle, Settled, Shutdown, WorkerStats, WorkerStatsHandle, done, nacked,
    undecodable,
};
use crate::backend::Backend;
use crate::client::Client;
use crate::model::reliable_queue::ReliableQueue;
use crate::receipt::{Delivered, Receipt};
use crate::serializer::Serializer;

/// The blocking counterpart of `Worker` (feature `tokio`): runs a handler on each
/// delivery of a [`ReliableQueue`] on [`threads`](Self::threads) threads, with the
/// same rules — ack on `Ok`, retry after the [`Backoff`] on `Err` or a panic
/// (dead-lettered by the queue after its maximum deliveries), deadlines extended
/// while handlers run, and a [`Shutdown`] that stops popping and returns once the
/// deliveries in flight are settled.
///
/// Each thread pops (`pop_wait`) and runs the handler itself; one more thread
/// extends the deadlines of the deliveries being handled, every third of the
/// [`visibility`](Self::visibility). Give the client enough connections: with
/// [`Reuse::Pooled`](crate::Reuse) (feature `pool`), at least `threads + 1`;
/// the default lazy connection serves one operation at a time (waits block on
/// the client's shared waiter connection either way).
///
/// ```
/// # let server = redisext::testing::RedisServer::start()?;
/// # let url = server.url();
/// use std::time::Duration;
/// use redisext::{Client, ReliableQueue, serializer::Str, worker::BlockingWorker};
///
/// let client = Client::open(&url)?;
/// let thumbnails = ReliableQueue::<Str>::new(&client, "thumbnails")?;
/// thumbnails.push_many(["a.png", "b.png", "c.png"])?;
///
/// let worker = BlockingWorker::new(&thumbnails, |job| {
///     println!("resizing {}", job.value());
///     Ok::<(), String>(())
/// })
/// .threads(2);
/// let shutdown = worker.shutdown_handle();
/// let running = std::thread::spawn(move || worker.run());
/// while thumbnails.counts()?.total() > 0 {
///     std::thread::sleep(Duration::from_millis(10));
/// }
/// shutdown.trigger();
/// let stats = running.join().expect("the worker does not panic");
/// assert_eq!((stats.delivered, stats.acked), (3, 3));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct BlockingWorker<S: Serializer, B: Backend, H> {
    queue: ReliableQueue<S, Client<B>>,
    handler: H,
    settings: Settings,
    shutdown: Shutdown,
    counters: Arc<Counters>,
}

impl<S, B, H, E> BlockingWorker<S, B, H>
where
    S: Serializer,
    S::Owned: Send + 'static,
    B: Backend,
    H: Fn(Delivered<S::Owned>) -> Result<(), E> + Sync,
    E: std::fmt::Display,
{
    /// A worker running `handler` on the deliveries of `queue` (4 threads, 30 s
    /// visibility, 1 s idle wait, the default [`Backoff`]). Nothing runs until
    /// [`run`](Self::run).
    pub fn new(queue: &ReliableQueue<S, Client<B>>, handler: H) -> Self {
        BlockingWorker {
            queue: queue.clone(),
            handler,
            settings: Settings::new(4),
            shutdown: Shutdown::new(),
            counters: Arc::default(),
        }
    }

    /// How many threads pop and run the handler (at least 1; default 4).
    pub fn threads(mut self, threads: usize) -> Self {
        self.settings.concurrency = threads.max(1);
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

    /// Stops the worker with `shutdown` (to stop several at once).
    pub fn shutdown_with(mut self, shutdown: &Shutdown) -> Self {
        self.shutdown = shutdown.clone();
        self
    }

    /// The handle that stops this worker.
    pub fn shutdown_handle(&self) -> Shutdown {
        self.shutdown.clone()
    }

    /// A live view of the worker's counts and last error, usable while it runs.
    pub fn stats_handle(&self) -> WorkerStatsHandle {
        WorkerStatsHandle::new(&self.counters)
    }

    /// Pops and handles deliveries on the worker's threads until the shutdown is
    /// triggered, then waits for the handlers running and returns what the worker
    /// did. Blocks the calling thread throughout.
    pub fn run(self) -> WorkerStats {
        let leases = Leases::default();
        thread::scope(|scope| {
            let extender = scope.spawn(|| self.extend_leases(&leases));
            let consumers: Vec<_> =
                (0..self.settings.concurrency).map(|_| scope.spawn(|| self.consume(&leases))).collect();
            for consumer in consumers {
                // A panic outside the handler (which is caught) would be a bug of
                // this crate; the other threads go on regardless.
                let _ = consumer.join();
            }
            leases.close();
            let _ = extender.join();
        });
        self.counters.snapshot()
    }

    /// One consumer thread: pop, handle, settle, until the shutdown.
    fn consume(&self, leases: &Leases) {
        while !self.shutdown.is_triggered() {
            match self.queue.pop_wait(self.settings.visibility, self.settings.idle_wait) {
                Ok(Some(delivered)) => {
                    self.counters.popped();
                    let receipt = *delivered.receipt();
                    leases.hold(receipt, Instant::now() + self.settings.extend_every());
                    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| (self.handler)(delivered)));
                    leases.release(&receipt);
                    let ended = match outcome {
                        Ok(Ok(())) => Ended::Succeeded,
                        Ok(Err(error)) => {
                            self.counters.note(&error);
                            Ended::Failed
                        }
                        Err(_panic) => Ended::Panicked,
                    };
                    self.counters.ended(ended);
                    self.settle(receipt, ended);
                }
                Ok(None) => {}
                Err(error) => match undecodable(&error) {
                    Some(receipt) => {
                        self.counters.popped();
                        self.counters.note(&error);
                        self.counters.ended(Ended::Undecodable);
                        self.settle(receipt, Ended::Undecodable);
                    }
                    None => {
                        self.counters.error(&error);
                        self.shutdown.wait_timeout(Settings::ERROR_PAUSE);
                    }
                },
            }
        }
    }

    /// Acks, nacks or backs off one delivery as [`Settle`] says, and counts it.
    fn settle(&self, receipt: Receipt, ended: Ended) {
        let queue = &self.queue;
        let plan =
            Settle::of(ended == Ended::Succeeded, receipt.delivery(), queue.max_deliveries(), &self.settings.backoff);
        let settled = match plan {
            Settle::Ack => queue.ack(&receipt).map(|acked| done(acked, Settled::Acked)),
            Settle::Nack => queue.nack(&receipt).map(nacked),
            Settle::RetryAfter(delay) => {
                queue.extend(&receipt, delay).map(|deadline| done(deadline.is_some(), Settled::Retried))
            }
        };
        self.counters.settled(settled.as_ref().copied());
    }

    /// The extending thread: extends each held delivery when it is due, until
    /// the leases are closed.
    fn extend_leases(&self, leases: &Leases) {
        let every = self.settings.extend_every();
        while let Some(due) = leases.next_due(every) {
            for receipt in due {
                let extended = self.queue.extend(&receipt, self.settings.visibility).map(|deadline| deadline.is_some());
                self.counters.extension(extended.as_ref().copied());
                if matches!(extended, Ok(false)) {
                    // Stale for good: stop extending it.
                    leases.release(&receipt);
                }
            }
        }
    }
}

/// The deliveries being handled, with when each is next extended; shared by the
/// consumer threads and the extending thread.
#[derive(Default)]
struct Leases {
    state: Mutex<LeaseState>,
    changed: Condvar,
}

#[derive(Default)]
struct LeaseState {
    due: HashMap<Receipt, Instant>,
    closed: bool,
}

impl Leases {
    fn lock(&self) -> MutexGuard<'_, LeaseState> {
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn hold(&self, receipt: Receipt, due: Instant) {
        self.lock().due.insert(receipt, due);
        self.changed.notify_all();
    }

    fn release(&self, receipt: &Receipt) {
        self.lock().due.remove(receipt);
    }

    fn close(&self) {
        self.lock().closed = true;
        self.changed.notify_all();
    }

    /// Waits until some deliveries are due, and returns them (each next due
    /// `every` later); `None` once closed.
    fn next_due(&self, every: Duration) -> Option<Vec<Receipt>> {
        let mut state = self.lock();
        loop {
            if state.closed {
                return None;
            }
            let now = Instant::now();
            let due: Vec<Receipt> =
                state.due.iter().filter(|(_, at)| **at <= now).map(|(receipt, _)| *receipt).collect();
            if !due.is_empty() {
                for receipt in &due {
                    state.due.insert(*receipt, now + every);
                }
                return Some(due);
            }
            let wait = state.due.values().min().map_or(every, |at| at.saturating_duration_since(now));
            state = self.changed.wait_timeout(state, wait).unwrap_or_else(|poisoned| poisoned.into_inner()).0;
        }
    }
}
