//! Queue consumers: workers that run a handler on each delivery of a
//! [`ReliableQueue`](crate::ReliableQueue), and streams of pops.
//!
//! - `Worker` (feature `tokio`): handlers as tokio tasks, at most
//!   `concurrency` at once; [`BlockingWorker`]: the same on
//!   threads, for the blocking [`Client`](crate::Client). Both ack a delivery whose
//!   handler returned `Ok`, retry one that returned `Err` (or panicked) after a
//!   [`Backoff`], extend each delivery's deadline while its handler runs, leave
//!   dead-lettering to the queue (after its
//!   [`max_deliveries`](crate::ReliableQueue::max_deliveries)), stop popping when
//!   their [`Shutdown`] is triggered and return once the deliveries in flight are
//!   settled, and count what they did ([`WorkerStats`]).
//! - `PopStream` (feature `tokio`): a `futures::Stream` of pops —
//!   `deliveries` of a reliable queue (blocking on the queue's signal with
//!   `pop_wait`), or the items of a [`Queue`](crate::Queue),
//!   [`Stack`](crate::Stack) or [`PriorityQueue`](crate::PriorityQueue)
//!   (`PopStream::polling`: those pops send no signal, so an empty model is
//!   polled with backoff, 2 ms doubling to 100 ms by default).
//!
//! What the worker's two loops share — what to do with a handler's result, the
//! counters — is here, without I/O.

mod blocking;
#[cfg(feature = "tokio")]
mod nonblocking;
#[cfg(feature = "tokio")]
mod stream;

pub use blocking::BlockingWorker;
#[cfg(feature = "tokio")]
pub use nonblocking::Worker;
#[cfg(feature = "tokio")]
pub use stream::{PopStream, deliveries};

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use crate::error::Error;
use crate::receipt::Receipt;

/// How long a failed delivery waits before it is delivered again: the
/// `n`-th failed delivery of an item waits `first * 2^(n-1)`, at most `max`.
///
/// A delayed retry is made by extending the failed delivery's deadline to the
/// delay (`ReliableQueue::extend`): the queue's next pop after the deadline
/// reclaims the item and delivers it again, counting the delivery, so
/// dead-lettering after `max_deliveries` still applies. Meanwhile the item counts
/// as in flight ([`QueueCounts`](crate::QueueCounts)). With no delay
/// ([`Backoff::none`]) the delivery is nacked and is delivered next.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Backoff {
    first: Duration,
    max: Duration,
}

impl Backoff {
    /// No delay: a failed delivery is nacked, and the item is delivered next.
    pub const fn none() -> Backoff {
        Backoff { first: Duration::ZERO, max: Duration::ZERO }
    }

    /// The same delay after every failure.
    pub const fn fixed(delay: Duration) -> Backoff {
        Backoff { first: delay, max: delay }
    }

    /// `first` after the first failure, doubling after each further one, up to `max`.
    pub const fn exponential(first: Duration, max: Duration) -> Backoff {
        Backoff { first, max }
    }

    /// The delay after the `delivery`-th delivery of an item failed (1 for the first).
    ///
    /// ```
    /// use std::time::Duration;
    /// use redisext::worker::Backoff;
    /// let backoff = Backoff::exponential(Duration::from_millis(100), Duration::from_secs(1));
    /// assert_eq!(backoff.delay(1), Duration::from_millis(100));
    /// assert_eq!(backoff.delay(3), Duration::from_millis(400));
    /// assert_eq!(backoff.delay(9), Duration::from_secs(1));
    /// ```
    pub fn delay(&self, delivery: u32) -> Duration {
        let doublings = delivery.saturating_sub(1).min(31);
        self.first.saturating_mul(1 << doublings).min(self.max.max(self.first))
    }
}

impl Default for Backoff {
    /// 1 s after the first failure, doubling up to 1 minute.
    fn default() -> Backoff {
        Backoff::exponential(Duration::from_secs(1), Duration::from_secs(60))
    }
}

/// What a worker does with a delivery once its handler has finished.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Settle {
    /// The handler succeeded: acknowledge (the item is deleted).
    Ack,
    /// It failed: nack, so the item is delivered next — or, after the queue's
    /// maximum deliveries, dead-lettered.
    Nack,
    /// It failed: deliver it again after this long (by extending its deadline).
    RetryAfter(Duration),
}

impl Settle {
    /// The settlement of the `delivery`-th delivery of an item, `max_deliveries`
    /// being the queue's: the last allowed delivery is nacked whatever the
    /// backoff, so the queue dead-letters it at once.
    pub(crate) fn of(succeeded: bool, delivery: u32, max_deliveries: u32, backoff: &Backoff) -> Settle {
        if succeeded {
            return Settle::Ack;
        }
        let delay = backoff.delay(delivery);
        if delivery >= max_deliveries || delay.is_zero() { Settle::Nack } else { Settle::RetryAfter(delay) }
    }
}

/// A worker's settings, shared by [`Worker`] and [`BlockingWorker`].
#[derive(Clone, Copy, Debug)]
pub(crate) struct Settings {
    /// Handlers running at once (tasks or threads).
    pub(crate) concurrency: usize,
    /// How long each delivery stays in flight, renewed every third of it.
    pub(crate) visibility: Duration,
    /// How long one `pop_wait` waits for an item: the worker notices a shutdown
    /// within this long when the queue is empty.
    pub(crate) idle_wait: Duration,
    pub(crate) backoff: Backoff,
}

impl Settings {
    pub(crate) fn new(concurrency: usize) -> Settings {
        Settings {
            concurrency,
            visibility: Duration::from_secs(30),
            idle_wait: Duration::from_secs(1),
            backoff: Backoff::default(),
        }
    }

    /// How often a running handler's delivery is extended.
    pub(crate) fn extend_every(&self) -> Duration {
        (self.visibility / 3).max(Duration::from_millis(1))
    }

    /// The pause after a failed pop, before the next: the client's retry policy
    /// has already tried again for a while.
    pub(crate) const ERROR_PAUSE: Duration = Duration::from_millis(500);
}

/// Tells a worker (or a stream) to stop: it stops popping, settles the
/// deliveries in flight, and returns. Cheap to clone; every clone triggers the
/// same shutdown.
///
/// ```
/// use redisext::worker::Shutdown;
/// let shutdown = Shutdown::new();
/// let signal = shutdown.clone();
/// assert!(!signal.is_triggered());
/// shutdown.trigger();
/// assert!(signal.is_triggered());
/// ```
#[derive(Clone, Debug, Default)]
pub struct Shutdown {
    inner: Arc<ShutdownInner>,
}

#[derive(Debug, Default)]
struct ShutdownInner {
    triggered: AtomicBool,
    /// For blocking waiters.
    lock: Mutex<()>,
    changed: Condvar,
    /// For async waiters.
    #[cfg(feature = "tokio")]
    notify: tokio::sync::Notify,
}

impl Shutdown {
    /// A shutdown not yet triggered.
    pub fn new() -> Shutdown {
        Shutdown::default()
    }

    /// Triggers the shutdown (again is a no-op).
    pub fn trigger(&self) {
        self.inner.triggered.store(true, Ordering::SeqCst);
        {
            let _held = self.inner.lock.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            self.inner.changed.notify_all();
        }
        #[cfg(feature = "tokio")]
        self.inner.notify.notify_waiters();
    }

    /// True once [`trigger`](Self::trigger) was called.
    pub fn is_triggered(&self) -> bool {
        self.inner.triggered.load(Ordering::SeqCst)
    }

    /// Blocks until the shutdown is triggered or `timeout` passes; true when triggered.
    pub fn wait_timeout(&self, timeout: Duration) -> bool {
        let held = self.inner.lock.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let (_held, _) = self
            .inner
            .changed
            .wait_timeout_while(held, timeout, |_| !self.is_triggered())
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        self.is_triggered()
    }

    /// Resolves once the shutdown is triggered (feature `tokio`).
    #[cfg(feature = "tokio")]
    pub async fn triggered(&self) {
        loop {
            let notified = self.inner.notify.notified();
            let mut notified = std::pin::pin!(notified);
            // Registered before the check, so a trigger in between is not missed.
            notified.as_mut().enable();
            if self.is_triggered() {
                return;
            }
            notified.await;
        }
    }
}

/// What a worker has done so far (see [`WorkerStatsHandle`]; `run` returns the
/// final figures): counts since it was made, and the deliveries in
/// flight now.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct WorkerStats {
    /// Deliveries popped (an item delivered again counts again).
    pub delivered: u64,
    /// Handlers that returned `Ok`.
    pub succeeded: u64,
    /// Handlers that returned `Err` or panicked (and deliveries the serializer
    /// could not decode, which no handler saw).
    pub failed: u64,
    /// Of those, handlers that panicked.
    pub panicked: u64,
    /// Of those, deliveries whose value the serializer could not decode.
    pub undecodable: u64,
    /// Deliveries acknowledged (the item is gone).
    pub acked: u64,
    /// Failed deliveries given back to be delivered again: nacked, or set to be
    /// reclaimed after their backoff.
    pub retried: u64,
    /// Failed deliveries the queue moved to its dead letters (the item's last
    /// allowed delivery).
    pub dead_lettered: u64,
    /// Acks, nacks and backoffs refused because the receipt had gone stale: the
    /// delivery's deadline passed (an extension came too late) and the item was,
    /// or will be, delivered again.
    pub stale: u64,
    /// Deadline extensions made while handlers ran.
    pub extended: u64,
    /// Extensions that found the receipt stale: from then on the handler works
    /// on an item that another consumer may receive.
    pub leases_lost: u64,
    /// Operations on the queue that failed with an error (pops, acks, nacks,
    /// extensions); see [`WorkerStatsHandle::last_error`].
    pub errors: u64,
    /// Handlers running (or deliveries being settled) now.
    pub in_flight: u64,
}

/// The counters behind [`WorkerStats`], shared by a worker's tasks or threads.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    delivered: AtomicU64,
    succeeded: AtomicU64,
    failed: AtomicU64,
    panicked: AtomicU64,
    undecodable: AtomicU64,
    acked: AtomicU64,
    retried: AtomicU64,
    dead_lettered: AtomicU64,
    stale: AtomicU64,
    extended: AtomicU64,
    leases_lost: AtomicU64,
    errors: AtomicU64,
    in_flight: AtomicU64,
    last_error: Mutex<Option<String>>,
}

/// How a handler ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Ended {
    Succeeded,
    Failed,
    Panicked,
    Undecodable,
}

/// What settling a delivery came to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Settled {
    Acked,
    Retried,
    DeadLettered,
    Stale,
}

fn bump(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

impl Counters {
    pub(crate) fn popped(&self) {
        bump(&self.delivered);
        bump(&self.in_flight);
    }

    pub(crate) fn ended(&self, ended: Ended) {
        match ended {
            Ended::Succeeded => bump(&self.succeeded),
            Ended::Failed => bump(&self.failed),
            Ended::Panicked => {
                bump(&self.failed);
                bump(&self.panicked);
            }
            Ended::Undecodable => {
                bump(&self.failed);
                bump(&self.undecodable);
            }
        }
    }

    /// The delivery is settled (or could not be: `Err`); it is no longer in flight.
    pub(crate) fn settled(&self, settled: Result<Settled, &Error>) {
        match settled {
            Ok(Settled::Acked) => bump(&self.acked),
            Ok(Settled::Retried) => bump(&self.retried),
            Ok(Settled::DeadLettered) => bump(&self.dead_lettered),
            Ok(Settled::Stale) => bump(&self.stale),
            Err(error) => self.error(error),
        }
        self.in_flight.fetch_sub(1, Ordering::Relaxed);
    }

    /// An extension while a handler ran: `Ok(false)` when the receipt was stale.
    pub(crate) fn extension(&self, extended: Result<bool, &Error>) {
        match extended {
            Ok(true) => bump(&self.extended),
            Ok(false) => bump(&self.leases_lost),
            Err(error) => self.error(error),
        }
    }

    /// An operation on the queue failed.
    pub(crate) fn error(&self, error: &dyn std::fmt::Display) {
        bump(&self.errors);
        self.note(error);
    }

    /// Keeps `error` as the last error (a handler's, or an undecodable delivery's).
    pub(crate) fn note(&self, error: &dyn std::fmt::Display) {
        *self.last_error.lock().unwrap_or_else(|poisoned| poisoned.into_inner()) = Some(error.to_string());
    }

    pub(crate) fn last_error(&self) -> Option<String> {
        self.last_error.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).clone()
    }

    pub(crate) fn snapshot(&self) -> WorkerStats {
        let read = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        WorkerStats {
            delivered: read(&self.delivered),
            succeeded: read(&self.succeeded),
            failed: read(&self.failed),
            panicked: read(&self.panicked),
            undecodable: read(&self.undecodable),
            acked: read(&self.acked),
            retried: read(&self.retried),
            dead_lettered: read(&self.dead_lettered),
            stale: read(&self.stale),
            extended: read(&self.extended),
            leases_lost: read(&self.leases_lost),
            errors: read(&self.errors),
            in_flight: read(&self.in_flight),
        }
    }
}

/// A live view of a worker's counts, usable while it runs (see
/// `Worker::stats_handle` and [`BlockingWorker::stats_handle`]).
#[derive(Clone, Debug)]
pub struct WorkerStatsHandle {
    counters: Arc<Counters>,
}

impl WorkerStatsHandle {
    pub(crate) fn new(counters: &Arc<Counters>) -> WorkerStatsHandle {
        WorkerStatsHandle { counters: Arc::clone(counters) }
    }

    /// What the worker has done so far.
    pub fn get(&self) -> WorkerStats {
        self.counters.snapshot()
    }

    /// The message of the last error the worker met (a failed pop, ack, nack or
    /// extension, or a handler's `Err`), if any.
    pub fn last_error(&self) -> Option<String> {
        self.counters.last_error()
    }
}

/// The receipt of a delivery the serializer could not decode: it is in flight,
/// and the worker settles it as a failure.
pub(crate) fn undecodable(error: &Error) -> Option<Receipt> {
    match error {
        Error::DeliveredUndecodable { delivered, .. } => Some(*delivered.receipt()),
        _ => None,
    }
}

/// What a nack's reply means for the worker.
pub(crate) fn nacked(nacked: crate::Nacked) -> Settled {
    match nacked {
        crate::Nacked::Requeued => Settled::Retried,
        crate::Nacked::DeadLettered => Settled::DeadLettered,
        _ => Settled::Stale,
    }
}

/// What an ack's or a backoff extension's reply means for the worker.
pub(crate) fn done(applied: bool, then: Settled) -> Settled {
    if applied { then } else { Settled::Stale }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_back_off_until_the_last_allowed_delivery_which_is_nacked() {
        let backoff = Backoff::exponential(Duration::from_secs(1), Duration::from_secs(5));
        assert_eq!(Settle::of(true, 5, 5, &backoff), Settle::Ack);
        assert_eq!(Settle::of(false, 1, 5, &backoff), Settle::RetryAfter(Duration::from_secs(1)));
        assert_eq!(Settle::of(false, 3, 5, &backoff), Settle::RetryAfter(Duration::from_secs(4)));
        assert_eq!(Settle::of(false, 4, 5, &backoff), Settle::RetryAfter(Duration::from_secs(5)));
        assert_eq!(Settle::of(false, 5, 5, &backoff), Settle::Nack, "dead-lettered at once");
        assert_eq!(Settle::of(false, 1, 5, &Backoff::none()), Settle::Nack);
        assert_eq!(Backoff::fixed(Duration::from_millis(7)).delay(30), Duration::from_millis(7));
        assert_eq!(Backoff::exponential(Duration::from_secs(1), Duration::ZERO).delay(4), Duration::from_secs(1));
        assert_eq!(Backoff::default().delay(u32::MAX), Duration::from_secs(60), "no overflow");
    }
}
