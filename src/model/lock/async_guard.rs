//! [`AsyncLockGuard`]: the lock guards of the async client, renewed on a tokio
//! task. The same rules as the blocking [`LockGuard`](super::LockGuard): the
//! same hold bookkeeping ([`Hold`]), the same renewal schedule.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::Notify;

use super::{Hold, Lock, LockToken};
use crate::async_client::AsyncClient;
use crate::backend::AsyncBackend;
use crate::error::Result;
use crate::op::{Pause, Wait, Waiting};
use crate::retry::RetryPolicy;

impl<B: AsyncBackend> Lock<AsyncClient<B>> {
    /// Acquires the lock, trying again until it is free or `wait` has passed, and
    /// returns a guard that releases it when dropped; `None` when the lock stayed
    /// held. The async counterpart of the blocking client's
    /// [`guard`](Lock::guard), with the same rules for unknown outcomes.
    ///
    /// **Dropping this future while an attempt is in flight** (a `select!` or a
    /// timeout that gave up on it) may leave the lock taken by that attempt, with
    /// a token nobody got: the future's drop then spawns a release with that
    /// token on the runtime, sent after the attempt on the same connection (with
    /// the default single multiplexed connection), which frees it. Should that
    /// release fail or overtake the attempt, the lock's expiry frees it — never
    /// later than `ttl` (a lock taken without an expiry could stay held: give one,
    /// or use [`guard_with`](Self::guard_with) and settle with
    /// [`holds`](Lock::holds) and [`release`](Lock::release)).
    ///
    /// ```
    /// # let server = redisext::testing::RedisServer::start()?;
    /// # let url = server.url();
    /// # tokio::runtime::Runtime::new()?.block_on(async {
    /// use std::time::Duration;
    /// use redisext::{AsyncClient, Lock};
    /// let client = AsyncClient::open(&url)?;
    /// let lock = Lock::new(&client, "nightly-report")?;
    ///
    /// let guard = lock.guard(Duration::from_secs(30), Duration::from_secs(1)).await?.expect("free");
    /// assert!(lock.locked().await?);
    /// assert!(guard.release().await?, "released explicitly, errors reported");
    ///
    /// // Long work: renewed every ttl / 3 by a tokio task until the guard goes.
    /// let guard = lock.renewing_guard(Duration::from_secs(10), Duration::ZERO).await?.expect("free");
    /// assert!(!guard.lost());
    /// drop(guard); // releases (on a spawned task)
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// # })?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub async fn guard(&self, ttl: impl Into<Option<Duration>>, wait: Duration) -> Result<Option<AsyncLockGuard<B>>> {
        self.guard_with(&LockToken::generate(), ttl, wait).await
    }

    /// Like [`guard`](Self::guard), storing `token` (from
    /// [`LockToken::generate`]): knowing it before acquiring lets a caller find
    /// and release a lock whose acquire was dropped in flight or failed with an
    /// unknown outcome.
    ///
    /// ```
    /// # let server = redisext::testing::RedisServer::start()?;
    /// # let url = server.url();
    /// # tokio::runtime::Runtime::new()?.block_on(async {
    /// # use std::time::Duration;
    /// # use redisext::{AsyncClient, Lock, LockToken};
    /// # let client = AsyncClient::open(&url)?;
    /// # let lock = Lock::new(&client, "report")?;
    /// # let ttl = Duration::from_secs(30);
    /// let token = LockToken::generate();
    /// let guard = lock.guard_with(&token, ttl, Duration::ZERO).await?.expect("free");
    /// assert_eq!(guard.token().as_str(), token.as_str());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// # })?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub async fn guard_with(
        &self,
        token: &LockToken,
        ttl: impl Into<Option<Duration>>,
        wait: Duration,
    ) -> Result<Option<AsyncLockGuard<B>>> {
        let ttl = ttl.into();
        let Some((token, sent)) = self.take_async(token, ttl, wait).await? else { return Ok(None) };
        let hold = Arc::new(Lost { hold: Hold::new(sent, ttl), notify: Notify::new() });
        Ok(Some(AsyncLockGuard { lock: self.clone(), token, hold, released: false, renewer: None }))
    }

    /// Like [`guard`](Self::guard), for long holders: the lock is taken with
    /// expiry `ttl` and a tokio task extends it to `ttl` from now every `ttl / 3`
    /// until the guard is released or dropped, as the blocking client's
    /// [`renewing_guard`](Lock::renewing_guard) does on a thread (same schedule,
    /// same loss rules: see [`AsyncLockGuard::lost`]). Renewals share the client's
    /// multiplexed connection, on which they do not queue behind other
    /// operations' replies; each must complete within about `ttl / 2`.
    ///
    /// ```
    /// # let server = redisext::testing::RedisServer::start()?;
    /// # let url = server.url();
    /// # tokio::runtime::Runtime::new()?.block_on(async {
    /// # use std::time::Duration;
    /// # use redisext::{AsyncClient, Lock, LockToken};
    /// # let client = AsyncClient::open(&url)?;
    /// # let lock = Lock::new(&client, "report")?;
    /// # let ttl = Duration::from_secs(30);
    /// let guard = lock.renewing_guard(Duration::from_secs(3), Duration::ZERO).await?.expect("free");
    /// assert!(!guard.lost());
    /// assert!(guard.release().await?);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// # })?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub async fn renewing_guard(&self, ttl: Duration, wait: Duration) -> Result<Option<AsyncLockGuard<B>>> {
        self.renewing_guard_with(&LockToken::generate(), ttl, wait).await
    }

    /// [`renewing_guard`](Self::renewing_guard) storing `token` (see
    /// [`guard_with`](Self::guard_with)).
    ///
    /// ```
    /// # let server = redisext::testing::RedisServer::start()?;
    /// # let url = server.url();
    /// # tokio::runtime::Runtime::new()?.block_on(async {
    /// # use std::time::Duration;
    /// # use redisext::{AsyncClient, Lock, LockToken};
    /// # let client = AsyncClient::open(&url)?;
    /// # let lock = Lock::new(&client, "report")?;
    /// # let ttl = Duration::from_secs(30);
    /// let token = LockToken::generate();
    /// let guard = lock.renewing_guard_with(&token, Duration::from_secs(3), Duration::ZERO).await?.unwrap();
    /// assert!(lock.holds(&token).await?.is_some());
    /// drop(guard); // released on a spawned task
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// # })?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub async fn renewing_guard_with(
        &self,
        token: &LockToken,
        ttl: Duration,
        wait: Duration,
    ) -> Result<Option<AsyncLockGuard<B>>> {
        let Some((token, sent)) = self.take_async(token, Some(ttl), wait).await? else { return Ok(None) };
        let hold = Arc::new(Lost { hold: Hold::new(sent, Some(ttl)), notify: Notify::new() });
        let renewer = tokio::spawn(renew(self.clone(), token.clone(), ttl, Arc::clone(&hold), sent));
        Ok(Some(AsyncLockGuard { lock: self.clone(), token, hold, released: false, renewer: Some(renewer) }))
    }

    /// Acquires with `token` as the blocking client's guards do (attempts on the
    /// polling schedule), also returning when the successful attempt was sent.
    async fn take_async(
        &self,
        token: &LockToken,
        ttl: Option<Duration>,
        wait: Duration,
    ) -> Result<Option<(LockToken, Instant)>> {
        let wait = Wait::polling(wait);
        let mut waiting = Waiting::start(&wait);
        loop {
            let sent = Instant::now();
            // Armed while the attempt is in flight: dropped there, it releases.
            let in_flight = InFlight { lock: Some(self), token };
            let attempt = self.acquire_with(token, ttl).await;
            in_flight.disarm();
            match attempt {
                Ok(Some(held)) => return Ok(Some((held, sent))),
                Ok(None) => {}
                Err(error) => {
                    if error.may_have_applied() {
                        // The lock may be held with this token: release it (a
                        // no-op if the acquire did not apply).
                        let _ = self.on(&self.core.exec.with_retry(RetryPolicy::never())).release(token).await;
                    }
                    return Err(error);
                }
            }
            match waiting.next_pause() {
                None => return Ok(None),
                Some(Pause::Sleep(pause) | Pause::Signal(_, pause)) => tokio::time::sleep(pause).await,
            }
        }
    }

    /// Spawns a release with `token`, one attempt, on the current runtime (none:
    /// nothing is sent, and the lock's expiry frees it).
    fn spawn_release(&self, token: &LockToken) {
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(self.on(&self.core.exec.with_retry(RetryPolicy::never())).release(token));
        }
    }
}

/// An acquire in flight; dropped before [`disarm`](Self::disarm) (its future
/// was dropped mid-attempt), it spawns a release with the attempt's token.
struct InFlight<'a, B: AsyncBackend> {
    lock: Option<&'a Lock<AsyncClient<B>>>,
    token: &'a LockToken,
}

impl<B: AsyncBackend> InFlight<'_, B> {
    fn disarm(mut self) {
        self.lock = None;
    }
}

impl<B: AsyncBackend> Drop for InFlight<'_, B> {
    fn drop(&mut self) {
        if let Some(lock) = self.lock {
            lock.spawn_release(self.token);
        }
    }
}

/// A guard's [`Hold`], and the notification of its loss.
struct Lost {
    hold: Arc<Hold>,
    notify: Notify,
}

impl Lost {
    fn mark_lost(&self) {
        self.hold.mark_lost();
        self.notify.notify_waiters();
    }
}

/// The renewing task of a renewing guard: extends the lock every `ttl / 3`, on
/// the blocking renewer's schedule, until the hold is lost or the guard aborts it.
async fn renew<B: AsyncBackend>(
    lock: Lock<AsyncClient<B>>,
    token: LockToken,
    ttl: Duration,
    lost: Arc<Lost>,
    sent: Instant,
) {
    // Renewals keep their own schedule: the client's retries would hold one past
    // the point where `lost` is due.
    let lock = lock.on(&lock.core.exec.with_retry(RetryPolicy::never()));
    let mut next = sent + super::renewal_period(ttl);
    loop {
        tokio::time::sleep_until(next.into()).await;
        if lost.hold.lost() {
            break;
        }
        let sent = Instant::now();
        match lost.hold.after_renewal(lock.extend(&token, ttl).await, sent, ttl) {
            Some(renew_at) => next = renew_at,
            None => break,
        }
    }
    // Wakes those awaiting the loss (it is latched: `lost()` stays true).
    lost.notify.notify_waiters();
}

/// A held [`Lock`] of the async client, released when dropped (see `guard` and
/// `renewing_guard` on `Lock<AsyncClient>`): the async counterpart of
/// [`LockGuard`](super::LockGuard).
///
/// Dropping it stops the renewing task and spawns a release on the current
/// tokio runtime (one attempt; its errors are ignored, and the lock's expiry
/// frees it in the end); [`release`](Self::release) releases at once and
/// reports errors. Dropped outside a runtime, nothing is sent.
///
/// ```
/// # let server = redisext::testing::RedisServer::start()?;
/// # let url = server.url();
/// # tokio::runtime::Runtime::new()?.block_on(async {
/// use std::time::Duration;
/// use redisext::{AsyncClient, Lock};
/// let client = AsyncClient::open(&url)?;
/// let lock = Lock::new(&client, "migrations")?;
/// let guard = lock.renewing_guard(Duration::from_secs(5), Duration::ZERO).await?.expect("free");
/// tokio::select! {
///     _ = guard.lost_notification() => eprintln!("lost the lock: stop writing"),
///     _ = tokio::time::sleep(Duration::from_millis(50)) => {} // the work
/// }
/// assert!(!guard.lost());
/// assert!(guard.release().await?);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// # })?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct AsyncLockGuard<B: AsyncBackend = crate::backend::RedisAsyncBackend> {
    lock: Lock<AsyncClient<B>>,
    token: LockToken,
    hold: Arc<Lost>,
    released: bool,
    renewer: Option<tokio::task::JoinHandle<()>>,
}

impl<B: AsyncBackend> AsyncLockGuard<B> {
    /// The token the lock is held with (its [`fence`](LockToken::fence) fences
    /// writes to the guarded resource).
    ///
    /// ```
    /// # let server = redisext::testing::RedisServer::start()?;
    /// # let url = server.url();
    /// # tokio::runtime::Runtime::new()?.block_on(async {
    /// # use std::time::Duration;
    /// # use redisext::{AsyncClient, Lock, LockToken};
    /// # let client = AsyncClient::open(&url)?;
    /// # let lock = Lock::new(&client, "report")?;
    /// # let ttl = Duration::from_secs(30);
    /// let guard = lock.guard(ttl, Duration::ZERO).await?.unwrap();
    /// assert!(guard.token().fence() > 0);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// # })?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn token(&self) -> &LockToken {
        &self.token
    }

    /// True once this guard can no longer be sure it holds the lock: an extend
    /// or a renewal found it held with another token (or free), or its expiry
    /// has passed with no successful extend since (counted from when the last
    /// acquire or extend was sent, less a margin for clock drift) — exactly as
    /// [`LockGuard::lost`](super::LockGuard::lost). Once true it stays true, and
    /// renewing stops.
    ///
    /// ```
    /// # let server = redisext::testing::RedisServer::start()?;
    /// # let url = server.url();
    /// # tokio::runtime::Runtime::new()?.block_on(async {
    /// # use std::time::Duration;
    /// # use redisext::{AsyncClient, Lock, LockToken};
    /// # let client = AsyncClient::open(&url)?;
    /// # let lock = Lock::new(&client, "report")?;
    /// # let ttl = Duration::from_secs(30);
    /// let guard = lock.guard(ttl, Duration::ZERO).await?.unwrap();
    /// assert!(!guard.lost());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// # })?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn lost(&self) -> bool {
        self.hold.hold.lost()
    }

    /// Resolves once [`lost`](Self::lost) is true: when a renewal or an extend
    /// finds the lock gone, or when its expiry passes unrenewed. Never resolves
    /// for a lock without an expiry that nobody takes away. Await it beside the
    /// work (`select!`) to stop as soon as the lock is lost.
    ///
    /// ```
    /// # let server = redisext::testing::RedisServer::start()?;
    /// # let url = server.url();
    /// # tokio::runtime::Runtime::new()?.block_on(async {
    /// # use std::time::Duration;
    /// # use redisext::{AsyncClient, Lock, LockToken};
    /// # let client = AsyncClient::open(&url)?;
    /// # let lock = Lock::new(&client, "report")?;
    /// # let ttl = Duration::from_secs(30);
    /// let guard = lock.renewing_guard(Duration::from_secs(3), Duration::ZERO).await?.unwrap();
    /// tokio::select! {
    ///     _ = guard.lost_notification() => unreachable!("the lock is renewed"),
    ///     _ = tokio::time::sleep(Duration::from_millis(50)) => {} // the work, done first
    /// }
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// # })?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub async fn lost_notification(&self) {
        loop {
            let notified = self.hold.notify.notified();
            let mut notified = std::pin::pin!(notified);
            // Registered before the check, so a loss in between is not missed.
            notified.as_mut().enable();
            if self.lost() {
                return;
            }
            let valid_until = self.valid_until();
            match valid_until {
                Some(until) => {
                    let _ = tokio::time::timeout_at(until.into(), notified).await;
                }
                None => notified.await,
            }
        }
    }

    /// Until when the lock is surely held, in this process's monotonic clock;
    /// `None` for a lock without an expiry.
    ///
    /// ```
    /// # let server = redisext::testing::RedisServer::start()?;
    /// # let url = server.url();
    /// # tokio::runtime::Runtime::new()?.block_on(async {
    /// # use std::time::Duration;
    /// # use redisext::{AsyncClient, Lock, LockToken};
    /// # let client = AsyncClient::open(&url)?;
    /// # let lock = Lock::new(&client, "report")?;
    /// # let ttl = Duration::from_secs(30);
    /// let guard = lock.guard(ttl, Duration::ZERO).await?.unwrap();
    /// assert!(guard.valid_until().is_some());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// # })?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn valid_until(&self) -> Option<Instant> {
        self.hold.hold.state().valid_until
    }

    /// Sets the lock's expiry to `ttl` from now; false when the lock is no longer
    /// held with this guard's token, and [`lost`](Self::lost) is then true.
    ///
    /// ```
    /// # let server = redisext::testing::RedisServer::start()?;
    /// # let url = server.url();
    /// # tokio::runtime::Runtime::new()?.block_on(async {
    /// # use std::time::Duration;
    /// # use redisext::{AsyncClient, Lock, LockToken};
    /// # let client = AsyncClient::open(&url)?;
    /// # let lock = Lock::new(&client, "report")?;
    /// # let ttl = Duration::from_secs(30);
    /// let guard = lock.guard(Duration::from_secs(1), Duration::ZERO).await?.unwrap();
    /// assert!(guard.extend(Duration::from_secs(60)).await?);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// # })?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub async fn extend(&self, ttl: Duration) -> Result<bool> {
        let sent = Instant::now();
        let extended = self.lock.extend(&self.token, ttl).await?;
        if extended {
            self.hold.hold.renewed(sent, ttl);
        } else {
            self.hold.mark_lost();
        }
        Ok(extended)
    }

    /// Releases the lock now (after stopping any renewal), reporting errors that
    /// dropping the guard would ignore; false when it was no longer held with this
    /// guard's token.
    ///
    /// ```
    /// # let server = redisext::testing::RedisServer::start()?;
    /// # let url = server.url();
    /// # tokio::runtime::Runtime::new()?.block_on(async {
    /// # use std::time::Duration;
    /// # use redisext::{AsyncClient, Lock, LockToken};
    /// # let client = AsyncClient::open(&url)?;
    /// # let lock = Lock::new(&client, "report")?;
    /// # let ttl = Duration::from_secs(30);
    /// let guard = lock.guard(ttl, Duration::ZERO).await?.unwrap();
    /// assert!(guard.release().await?);
    /// assert!(!lock.locked().await?);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// # })?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub async fn release(mut self) -> Result<bool> {
        self.released = true;
        self.stop_renewing();
        self.lock.release(&self.token).await
    }

    fn stop_renewing(&mut self) {
        // A renewal under way may still land after the release: it is
        // token-checked, so it then changes nothing.
        if let Some(renewer) = self.renewer.take() {
            renewer.abort();
        }
    }
}

impl<B: AsyncBackend> Drop for AsyncLockGuard<B> {
    fn drop(&mut self) {
        self.stop_renewing();
        if !self.released {
            self.lock.spawn_release(&self.token);
        }
    }
}

impl<B: AsyncBackend> std::fmt::Debug for AsyncLockGuard<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AsyncLockGuard")
            .field("key", self.lock.key())
            .field("token", &self.token)
            .field("renewing", &self.renewer.is_some())
            .field("lost", &self.lost())
            .finish()
    }
}
