//! Guards that give back a [`Semaphore`] permit or a [`ResourcePool`] lease when
//! dropped, on the blocking and the async client alike.
//!
//! A guard is taken with `Semaphore::guard` / `ResourcePool::guard`, which
//! acquire under a [`Token`] they keep until the acquisition's outcome is known:
//! if that acquisition fails with an unknown outcome, or (async) its future is
//! dropped after it was sent, whatever the token may hold is released at once
//! instead of staying held until its deadline.

use std::time::{Duration, SystemTime};

use crate::backend::Backend;
use crate::client::Client;
use crate::error::Result;
use crate::model::resource_pool::ResourcePool;
use crate::model::semaphore::{Permit, Semaphore};
use crate::op::Executor;
use crate::receipt::{Lease, Token};
use crate::retry::RetryPolicy;
use crate::serializer::Serializer;

/// The executors a guard can release on when dropped: the blocking
/// [`Client`] releases at once, on the dropping thread; the `AsyncClient`
/// spawns the release as a task on the tokio runtime the guard is dropped in
/// (dropped outside any runtime, it cannot, and the permit or lease lapses at
/// its deadline). Implemented by this crate's clients only (pipelines cannot:
/// a release queued in a batch nobody runs would never happen).
pub trait ReleaseOnDrop: Executor {
    /// The executor a drop releases on: one that cannot stall the dropping
    /// thread for the retry deadline.
    #[doc(hidden)]
    fn for_drop(&self) -> Self;

    /// Lets an operation that yields `bool` finish without waiting for it: run
    /// (blocking) or spawned (async), its result ignored.
    #[doc(hidden)]
    fn detach(output: Self::Output<bool>);
}

impl<B: Backend> ReleaseOnDrop for Client<B> {
    fn for_drop(&self) -> Client<B> {
        // One attempt: a drop must not stall for the retry deadline.
        self.with_retry(RetryPolicy::never())
    }

    fn detach(output: Result<bool>) {
        // Already run. Errors cannot be returned from a drop; the deadline frees it.
        let _ = output;
    }
}

#[cfg(feature = "tokio")]
impl<B: crate::backend::AsyncBackend> ReleaseOnDrop for crate::async_client::AsyncClient<B> {
    fn for_drop(&self) -> Self {
        // The release is spawned: its retries stall no one.
        self.clone()
    }

    fn detach(output: crate::async_client::Pending<bool>) {
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            drop(runtime.spawn(output));
        }
    }
}

/// Runs `release` when dropped unless disarmed: held while an acquisition under
/// a token is in flight, so that one whose outcome stays unknown (an error that
/// may have applied, a dropped future) gives back what it may have taken.
pub(crate) struct Unsettled<F: FnOnce()> {
    release: Option<F>,
}

impl<F: FnOnce()> Unsettled<F> {
    pub(crate) fn new(release: F) -> Unsettled<F> {
        Unsettled { release: Some(release) }
    }

    /// Settles by the acquisition's result: an error that may have applied keeps
    /// the release armed (it runs when this is dropped); anything else disarms it.
    pub(crate) fn settle<T>(mut self, result: &Result<T>) {
        if !matches!(result, Err(error) if error.may_have_applied()) {
            self.release = None;
        }
    }
}

/// Runs an acquisition, with `release` armed until its outcome is known.
fn settled<T>(acquire: impl FnOnce() -> Result<T>, release: impl FnOnce()) -> Result<T> {
    let unsettled = Unsettled::new(release);
    let result = acquire();
    unsettled.settle(&result);
    result
}

impl<F: FnOnce()> Drop for Unsettled<F> {
    fn drop(&mut self) {
        if let Some(release) = self.release.take() {
            release();
        }
    }
}

/// A [`Semaphore`] permit, released when the guard is dropped (see
/// `Semaphore::guard`). [`release`](Self::release) releases it now and reports
/// errors that dropping ignores. A release that fails on drop (a lost
/// connection; a blocking drop makes one attempt, so as not to stall for the
/// client's retry deadline) leaves the permit held until its deadline, which is
/// what bounds an abandoned release.
pub struct PermitGuard<E: ReleaseOnDrop = Client> {
    semaphore: Semaphore<E>,
    permit: Permit,
    released: bool,
}

impl<E: ReleaseOnDrop> PermitGuard<E> {
    pub(crate) fn new(semaphore: Semaphore<E>, permit: Permit) -> PermitGuard<E> {
        PermitGuard { semaphore, permit, released: false }
    }

    /// The permit held.
    ///
    /// ```
    /// # let server = redisext::testing::RedisServer::start()?;
    /// # let client = redisext::Client::open(&server.url())?;
    /// # use std::time::Duration;
    /// # use redisext::{ResourcePool, Semaphore, serializer::Str};
    /// # let slots = Semaphore::new(&client, "slots", 1)?;
    /// # let printers = ResourcePool::<Str>::new(&client, "printers")?;
    /// # printers.add("p1")?;
    /// # let d = Duration::from_secs(30);
    /// let guard = slots.guard(d, Duration::ZERO)?.unwrap();
    /// assert!(guard.permit().id() > 0);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn permit(&self) -> &Permit {
        &self.permit
    }

    /// Moves the permit's deadline to `hold` from now (see [`Semaphore::extend`]).
    ///
    /// ```
    /// # let server = redisext::testing::RedisServer::start()?;
    /// # let client = redisext::Client::open(&server.url())?;
    /// # use std::time::Duration;
    /// # use redisext::{ResourcePool, Semaphore, serializer::Str};
    /// # let slots = Semaphore::new(&client, "slots", 1)?;
    /// # let printers = ResourcePool::<Str>::new(&client, "printers")?;
    /// # printers.add("p1")?;
    /// # let d = Duration::from_secs(30);
    /// let guard = slots.guard(d, Duration::ZERO)?.unwrap();
    /// assert!(guard.extend(Duration::from_secs(60))?.is_some());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn extend(&self, hold: Duration) -> E::Output<Option<SystemTime>> {
        self.semaphore.extend(&self.permit, hold)
    }

    /// Releases the permit now (see [`Semaphore::release`]), with its result and
    /// errors.
    ///
    /// ```
    /// # let server = redisext::testing::RedisServer::start()?;
    /// # let client = redisext::Client::open(&server.url())?;
    /// # use std::time::Duration;
    /// # use redisext::{ResourcePool, Semaphore, serializer::Str};
    /// # let slots = Semaphore::new(&client, "slots", 1)?;
    /// # let printers = ResourcePool::<Str>::new(&client, "printers")?;
    /// # printers.add("p1")?;
    /// # let d = Duration::from_secs(30);
    /// let guard = slots.guard(d, Duration::ZERO)?.unwrap();
    /// assert!(guard.release()?);
    /// assert_eq!(slots.held()?, 0);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn release(mut self) -> E::Output<bool> {
        self.released = true;
        self.semaphore.release(&self.permit)
    }
}

impl<E: ReleaseOnDrop> Drop for PermitGuard<E> {
    fn drop(&mut self) {
        if !self.released {
            let exec = self.semaphore.executor().for_drop();
            E::detach(self.semaphore.on(&exec).release(&self.permit));
        }
    }
}

impl<E: ReleaseOnDrop> std::fmt::Debug for PermitGuard<E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PermitGuard").field("key", self.semaphore.key()).field("permit", &self.permit).finish()
    }
}

/// A [`ResourcePool`] lease, checked in when the guard is dropped (see
/// `ResourcePool::guard`). [`checkin`](Self::checkin) checks it in now and
/// reports errors that dropping ignores. A checkin that fails on drop (a lost
/// connection; a blocking drop makes one attempt) leaves the member leased until its lease's deadline, when the
/// next checkout reclaims it: that bounds an abandoned checkin.
pub struct LeaseGuard<S: Serializer, E: ReleaseOnDrop = Client> {
    pool: ResourcePool<S, E>,
    lease: Lease<S::Owned>,
    released: bool,
}

impl<S: Serializer, E: ReleaseOnDrop> LeaseGuard<S, E> {
    pub(crate) fn new(pool: ResourcePool<S, E>, lease: Lease<S::Owned>) -> LeaseGuard<S, E> {
        LeaseGuard { pool, lease, released: false }
    }

    /// The lease held.
    ///
    /// ```
    /// # let server = redisext::testing::RedisServer::start()?;
    /// # let client = redisext::Client::open(&server.url())?;
    /// # use std::time::Duration;
    /// # use redisext::{ResourcePool, Semaphore, serializer::Str};
    /// # let slots = Semaphore::new(&client, "slots", 1)?;
    /// # let printers = ResourcePool::<Str>::new(&client, "printers")?;
    /// # printers.add("p1")?;
    /// # let d = Duration::from_secs(30);
    /// let guard = printers.guard(d, Duration::ZERO)?.unwrap();
    /// assert!(guard.lease().fence() > 0); // pass it to the printer
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn lease(&self) -> &Lease<S::Owned> {
        &self.lease
    }

    /// The member leased.
    ///
    /// ```
    /// # let server = redisext::testing::RedisServer::start()?;
    /// # let client = redisext::Client::open(&server.url())?;
    /// # use std::time::Duration;
    /// # use redisext::{ResourcePool, Semaphore, serializer::Str};
    /// # let slots = Semaphore::new(&client, "slots", 1)?;
    /// # let printers = ResourcePool::<Str>::new(&client, "printers")?;
    /// # printers.add("p1")?;
    /// # let d = Duration::from_secs(30);
    /// let guard = printers.guard(d, Duration::ZERO)?.unwrap();
    /// assert_eq!(guard.member(), "p1");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn member(&self) -> &S::Owned {
        self.lease.member()
    }

    /// Moves the lease's deadline to `duration` from now (see [`ResourcePool::extend`]).
    ///
    /// ```
    /// # let server = redisext::testing::RedisServer::start()?;
    /// # let client = redisext::Client::open(&server.url())?;
    /// # use std::time::Duration;
    /// # use redisext::{ResourcePool, Semaphore, serializer::Str};
    /// # let slots = Semaphore::new(&client, "slots", 1)?;
    /// # let printers = ResourcePool::<Str>::new(&client, "printers")?;
    /// # printers.add("p1")?;
    /// # let d = Duration::from_secs(30);
    /// let guard = printers.guard(d, Duration::ZERO)?.unwrap();
    /// assert!(guard.extend(Duration::from_secs(60))?.is_some());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn extend(&self, duration: Duration) -> E::Output<Option<SystemTime>> {
        self.pool.extend(&self.lease, duration)
    }

    /// Checks the lease in now (see [`ResourcePool::checkin`]), with its result
    /// and errors.
    ///
    /// ```
    /// # let server = redisext::testing::RedisServer::start()?;
    /// # let client = redisext::Client::open(&server.url())?;
    /// # use std::time::Duration;
    /// # use redisext::{ResourcePool, Semaphore, serializer::Str};
    /// # let slots = Semaphore::new(&client, "slots", 1)?;
    /// # let printers = ResourcePool::<Str>::new(&client, "printers")?;
    /// # printers.add("p1")?;
    /// # let d = Duration::from_secs(30);
    /// let guard = printers.guard(d, Duration::ZERO)?.unwrap();
    /// assert!(guard.checkin()?);
    /// assert_eq!(printers.counts()?.idle, 1);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn checkin(mut self) -> E::Output<bool> {
        self.released = true;
        self.pool.checkin(&self.lease)
    }
}

impl<S: Serializer, E: ReleaseOnDrop> Drop for LeaseGuard<S, E> {
    fn drop(&mut self) {
        if !self.released {
            let exec = self.pool.executor().for_drop();
            E::detach(self.pool.on(&exec).checkin(&self.lease));
        }
    }
}

impl<S: Serializer, E: ReleaseOnDrop> std::fmt::Debug for LeaseGuard<S, E>
where
    S::Owned: std::fmt::Debug,
{
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LeaseGuard").field("key", self.pool.key()).field("lease", &self.lease).finish()
    }
}

impl<B: Backend> Semaphore<Client<B>> {
    /// Takes a permit for `hold`, waiting up to `wait` for one (`Duration::ZERO`:
    /// one attempt), and returns a guard that releases it when dropped; `None`
    /// when none came free. When the acquisition fails with an outcome unknown
    /// ([`Error::may_have_applied`](crate::Error::may_have_applied)), the permit
    /// its token may hold is released before the error is returned.
    ///
    /// ```
    /// # let server = redisext::testing::RedisServer::start()?;
    /// # let client = redisext::Client::open(&server.url())?;
    /// # use std::time::Duration;
    /// # use redisext::{ResourcePool, Semaphore, serializer::Str};
    /// # let slots = Semaphore::new(&client, "slots", 1)?;
    /// # let printers = ResourcePool::<Str>::new(&client, "printers")?;
    /// # printers.add("p1")?;
    /// # let d = Duration::from_secs(30);
    /// {
    ///     let _permit = slots.guard(d, Duration::from_secs(1))?.expect("a permit");
    ///     assert_eq!(slots.held()?, 1);
    /// } // dropped: released
    /// assert_eq!(slots.held()?, 0);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn guard(&self, hold: Duration, wait: Duration) -> Result<Option<PermitGuard<Client<B>>>> {
        let token = Token::generate();
        let acquired = settled(|| self.acquire_with_wait(&token, hold, wait), || drop(self.release_token(&token)))?;
        Ok(acquired.map(|permit| PermitGuard::new(self.clone(), permit)))
    }
}

impl<S: Serializer, B: Backend> ResourcePool<S, Client<B>> {
    /// Leases a member for `lease`, waiting up to `wait` for one (`Duration::ZERO`:
    /// one attempt), and returns a guard that checks it in when dropped; `None`
    /// when none came free. When the checkout fails with an outcome unknown
    /// ([`Error::may_have_applied`](crate::Error::may_have_applied)), the lease
    /// its token may hold is checked in before the error is returned.
    ///
    /// ```
    /// # let server = redisext::testing::RedisServer::start()?;
    /// # let client = redisext::Client::open(&server.url())?;
    /// # use std::time::Duration;
    /// # use redisext::{ResourcePool, Semaphore, serializer::Str};
    /// # let slots = Semaphore::new(&client, "slots", 1)?;
    /// # let printers = ResourcePool::<Str>::new(&client, "printers")?;
    /// # printers.add("p1")?;
    /// # let d = Duration::from_secs(30);
    /// {
    ///     let printer = printers.guard(d, Duration::from_secs(1))?.expect("an idle printer");
    ///     assert_eq!(printer.member(), "p1");
    /// } // dropped: checked in
    /// assert_eq!(printers.counts()?.idle, 1);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn guard(&self, lease: Duration, wait: Duration) -> Result<Option<LeaseGuard<S, Client<B>>>> {
        let token = Token::generate();
        let leased = settled(|| self.checkout_with_wait(&token, lease, wait), || drop(self.checkin_token(&token)))?;
        Ok(leased.map(|lease| LeaseGuard::new(self.clone(), lease)))
    }
}

#[cfg(feature = "tokio")]
mod nonblocking {
    use std::future::Future;
    use std::time::Duration;

    use super::{LeaseGuard, PermitGuard, ReleaseOnDrop, Unsettled};

    /// Awaits an acquisition, with `release` armed until its outcome is known:
    /// also when this future is dropped while the acquisition is in flight.
    async fn settled<T>(acquiring: impl Future<Output = Result<T>>, release: impl FnOnce()) -> Result<T> {
        let unsettled = Unsettled::new(release);
        let result = acquiring.await;
        unsettled.settle(&result);
        result
    }
    use crate::async_client::AsyncClient;
    use crate::backend::AsyncBackend;
    use crate::error::Result;
    use crate::model::resource_pool::ResourcePool;
    use crate::model::semaphore::Semaphore;
    use crate::receipt::Token;
    use crate::serializer::Serializer;

    impl<B: AsyncBackend> Semaphore<AsyncClient<B>> {
        /// Takes a permit for `hold`, waiting up to `wait` for one
        /// (`Duration::ZERO`: one attempt), and returns a guard that releases it
        /// when dropped (spawning the release on the runtime); `None` when none
        /// came free.
        ///
        /// **Dropping this future** before it resolves — after its acquire may
        /// have been sent — spawns a release by its token: a permit it took is
        /// given back at once, not held until `hold` passes. The same happens when
        /// the acquisition fails with an outcome unknown. (A plain
        /// [`acquire`](Self::acquire) future dropped in flight leaves such a
        /// permit held until its deadline.)
        ///
        /// ```
        /// # let server = redisext::testing::RedisServer::start()?;
        /// # let url = server.url();
        /// # tokio::runtime::Runtime::new()?.block_on(async {
        /// # use std::time::Duration;
        /// # use redisext::{AsyncClient, ResourcePool, Semaphore, serializer::Str};
        /// # let client = AsyncClient::open(&url)?;
        /// # let slots = Semaphore::new(&client, "slots", 1)?;
        /// # let printers = ResourcePool::<Str, _>::new(&client, "printers")?;
        /// # printers.add("p1").await?;
        /// # let d = Duration::from_secs(30);
        /// let permit = slots.guard(d, Duration::from_secs(1)).await?.expect("a permit");
        /// assert_eq!(slots.held().await?, 1);
        /// assert!(permit.release().await?);
        /// # Ok::<(), Box<dyn std::error::Error>>(())
        /// # })?;
        /// # Ok::<(), Box<dyn std::error::Error>>(())
        /// ```
        pub fn guard(
            &self,
            hold: Duration,
            wait: Duration,
        ) -> impl Future<Output = Result<Option<PermitGuard<AsyncClient<B>>>>> + Send + 'static {
            let semaphore = self.clone();
            let token = Token::generate();
            let acquiring = self.acquire_with_wait(&token, hold, wait);
            async move {
                let releasing = semaphore.clone();
                let release = move || AsyncClient::<B>::detach(releasing.release_token(&token));
                Ok(settled(acquiring, release).await?.map(|permit| PermitGuard::new(semaphore, permit)))
            }
        }
    }

    impl<S: Serializer, B: AsyncBackend> ResourcePool<S, AsyncClient<B>> {
        /// Leases a member for `lease`, waiting up to `wait` for one
        /// (`Duration::ZERO`: one attempt), and returns a guard that checks it in
        /// when dropped (spawning the checkin on the runtime); `None` when none
        /// came free.
        ///
        /// **Dropping this future** before it resolves — after its checkout may
        /// have been sent — spawns a checkin by its token: a lease it took ends at
        /// once, not when its deadline passes. The same happens when the checkout
        /// fails with an outcome unknown. (A plain [`checkout`](Self::checkout)
        /// future dropped in flight leaves such a member leased until its lease's
        /// deadline, when the next checkout reclaims it.)
        ///
        /// ```
        /// # let server = redisext::testing::RedisServer::start()?;
        /// # let url = server.url();
        /// # tokio::runtime::Runtime::new()?.block_on(async {
        /// # use std::time::Duration;
        /// # use redisext::{AsyncClient, ResourcePool, Semaphore, serializer::Str};
        /// # let client = AsyncClient::open(&url)?;
        /// # let slots = Semaphore::new(&client, "slots", 1)?;
        /// # let printers = ResourcePool::<Str, _>::new(&client, "printers")?;
        /// # printers.add("p1").await?;
        /// # let d = Duration::from_secs(30);
        /// let printer = printers.guard(d, Duration::from_secs(1)).await?.expect("an idle printer");
        /// assert_eq!(printer.member(), "p1");
        /// assert!(printer.checkin().await?);
        /// # Ok::<(), Box<dyn std::error::Error>>(())
        /// # })?;
        /// # Ok::<(), Box<dyn std::error::Error>>(())
        /// ```
        pub fn guard(
            &self,
            lease: Duration,
            wait: Duration,
        ) -> impl Future<Output = Result<Option<LeaseGuard<S, AsyncClient<B>>>>> + Send + 'static
        where
            S::Owned: Send + 'static,
        {
            let pool = self.clone();
            let token = Token::generate();
            let leasing = self.checkout_with_wait(&token, lease, wait);
            async move {
                let releasing = pool.clone();
                let release = move || AsyncClient::<B>::detach(releasing.checkin_token(&token));
                Ok(settled(leasing, release).await?.map(|lease| LeaseGuard::new(pool, lease)))
            }
        }
    }
}
