//! [`Lock`]: a mutual-exclusion lock that only its holder can release.

use std::sync::{Arc, Mutex, mpsc};
use std::thread;
use std::time::{Duration, Instant};

use crate::backend::{Backend, RedisBackend};
use crate::call::{self, ScriptCall, lock};
use crate::client::Client;
use crate::error::Result;
use crate::key::Key;
use crate::model::{Core, Model, ModelOptions, Ttl, decode_ttl, millis, signal_wait};
use crate::op::{Executor, Pause, Wait, Waiting, decode, unexpected};
use crate::receipt::Token;
use crate::retry::RetryPolicy;
use crate::wire::Reply;

#[cfg(feature = "tokio")]
mod async_guard;
#[cfg(feature = "tokio")]
pub use async_guard::AsyncLockGuard;

/// A lock at a string key: held while the key exists, whatever its value — the
/// test Python's `redisext.lock.Lock` uses, so a lock held by either language is
/// held for both.
///
/// [`acquire`](Self::acquire) stores a fresh random token only if the key does not
/// exist (with an optional expiry, in one script) and returns it as a
/// [`LockToken`]; [`release`](Self::release) and [`extend`](Self::extend) act only
/// when the key still holds that token. So a holder whose lock expired and was
/// taken by someone else cannot release the new holder's lock. (Python redisext
/// stores `""` and releases with a bare `DEL`: a Python process can release any
/// lock, and a Rust release never releases a Python-held one.) The lock has no
/// `expire`, `persist` or `rename`, which would bypass the token (or leave the
/// fencing counter behind): only its holder changes its expiry, with `extend`.
///
/// Every acquisition also draws a **fencing number** from the sibling counter
/// `{key}:fence` (same hash slot; it outlives each holder), in the same script:
/// [`LockToken::fence`] grows with every acquisition. A lock with an expiry can be
/// lost by a holder that pauses longer than the expiry; the fencing number lets the
/// guarded resource refuse such a holder's late writes. For long work,
/// [`renewing_guard`](Self::renewing_guard) keeps extending the lock in the
/// background and reports a loss ([`LockGuard::lost`]). Fencing numbers order
/// redisext's acquisitions only: a Python holder draws none. Because of the
/// sibling key, a key with `}` but no hash tag is refused (see [`Key::sibling`]).
///
/// | method | script |
/// |---|---|
/// | [`acquire`](Self::acquire), [`acquire_wait`](Self::acquire_wait), [`acquire_with`](Self::acquire_with), [`acquire_with_wait`](Self::acquire_with_wait), [`guard`](Self::guard), [`renewing_guard`](Self::renewing_guard) | `lock/acquire` |
/// | [`release`](Self::release) | `lock/release` |
/// | [`extend`](Self::extend) | `lock/extend` |
/// | [`holds`](Self::holds) | `lock/holds` (on the master) |
/// | [`locked`](Self::locked) | `lock/locked` (on the master) |
/// | [`ttl`](Self::ttl) | `key/ttl` (on the master) |
///
/// ```
/// # let server = redisext::testing::RedisServer::start()?;
/// # let url = server.url();
/// use std::time::Duration;
/// use redisext::{Client, Lock, LockToken};
/// let client = Client::open(&url)?; // url: "redis://127.0.0.1:6379/0"
/// let lock = Lock::new(&client, "invoice:42")?;
///
/// let token = lock.acquire(Duration::from_secs(30))?.expect("nobody holds it yet");
/// assert!(lock.locked()?);
/// assert_eq!(lock.acquire(None)?, None, "held: a second acquire fails");
/// assert!(lock.extend(&token, Duration::from_secs(60))?);
/// assert!(lock.release(&token)?);
/// assert!(!lock.release(&token)?, "already released");
///
/// // A token of your own, kept before sending: an acquire whose reply is lost
/// // can then be settled with `holds`.
/// let mine = LockToken::generate();
/// let next = lock.acquire_with(&mine, Duration::from_secs(30))?.expect("free again");
/// assert!(next.fence() > token.fence(), "fencing numbers grow with every acquisition");
/// assert_eq!(lock.holds(&mine)?.map(|held| held.fence()), Some(next.fence()));
/// assert!(lock.release(&next)?);
///
/// // Blocking clients also get a guard that releases when dropped.
/// if let Some(guard) = lock.guard(Duration::from_secs(30), Duration::from_millis(500))? {
///     assert!(lock.locked()?);
///     drop(guard);
/// }
/// assert!(!lock.locked()?);
///
/// // Long work: the lock is renewed every ttl / 3 until the guard goes.
/// let guard = lock.renewing_guard(Duration::from_secs(10), Duration::ZERO)?.expect("free");
/// assert!(!guard.lost());
/// drop(guard);
/// assert!(!lock.locked()?);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug)]
pub struct Lock<E: Executor = Client> {
    core: Core<E>,
    fence: Key,
    /// `{key}:signal`: a release pushes to it; waiting acquires block on it.
    signal: Key,
}

/// Proof of holding a [`Lock`]: the random value its holder stored at the lock's
/// key, and the fencing number of that acquisition. [`Lock::release`] and
/// [`Lock::extend`] succeed only with the token the key holds.
///
/// Tokens are 32 hexadecimal digits, generated as a [`Token`] is, unique across
/// processes and machines for every practical purpose; they are never empty, so
/// they never match the `""` a Python holder stores.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct LockToken {
    value: Arc<str>,
    fence: u64,
}

impl LockToken {
    /// A new token, which no other acquisition uses, for
    /// [`Lock::acquire_with`]: keep it before acquiring, so that an acquire whose
    /// outcome is unknown can be settled with [`Lock::holds`]. Its
    /// [`fence`](Self::fence) is 0: the token an acquire returns carries the
    /// acquisition's number.
    ///
    /// ```
    /// # let server = redisext::testing::RedisServer::start()?;
    /// # let client = redisext::Client::open(&server.url())?;
    /// # use std::time::Duration;
    /// # use redisext::{Lock, LockToken};
    /// # let lock = Lock::new(&client, "report")?;
    /// # let ttl = Duration::from_secs(30);
    /// let token = LockToken::generate(); // known before sending
    /// assert_eq!(token.fence(), 0);
    /// let held = lock.acquire_with(&token, ttl)?.unwrap();
    /// assert_eq!(held.as_str(), token.as_str());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn generate() -> LockToken {
        LockToken { value: Arc::from(Token::generate().as_str()), fence: 0 }
    }

    /// The token as stored at the lock's key.
    ///
    /// ```
    /// # let server = redisext::testing::RedisServer::start()?;
    /// # let client = redisext::Client::open(&server.url())?;
    /// # use std::time::Duration;
    /// # use redisext::{Lock, LockToken};
    /// # let lock = Lock::new(&client, "report")?;
    /// # let ttl = Duration::from_secs(30);
    /// let token = lock.acquire(ttl)?.unwrap();
    /// assert_eq!(token.as_str().len(), 32); // random hex, stored at the key
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn as_str(&self) -> &str {
        &self.value
    }

    /// The token as a script argument.
    fn as_arg(&self) -> call::Arg {
        call::Arg::Bytes(self.value.as_bytes().to_vec())
    }

    /// The fencing number of this acquisition: larger than that of every earlier
    /// acquisition of this lock by redisext. Pass it along with each write to the
    /// resource the lock guards, and have the resource refuse a number lower than
    /// one it has already seen: a holder whose lock expired (a long pause, a
    /// partition) is then fenced out even if it does not know it lost the lock.
    /// 0 for a token from [`generate`](Self::generate) that has not acquired yet.
    ///
    /// ```
    /// # let server = redisext::testing::RedisServer::start()?;
    /// # let client = redisext::Client::open(&server.url())?;
    /// # use std::time::Duration;
    /// # use redisext::{Lock, LockToken};
    /// # let lock = Lock::new(&client, "report")?;
    /// # let ttl = Duration::from_secs(30);
    /// let first = lock.acquire(ttl)?.unwrap();
    /// lock.release(&first)?;
    /// let second = lock.acquire(ttl)?.unwrap();
    /// assert!(second.fence() > first.fence());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn fence(&self) -> u64 {
        self.fence
    }
}

impl std::fmt::Debug for LockToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "LockToken({}, fence {})", self.value, self.fence)
    }
}

impl<E: Executor> Lock<E> {
    /// The lock at `key` (nothing is sent; an empty key is an error).
    ///
    /// ```
    /// # let server = redisext::testing::RedisServer::start()?;
    /// # let client = redisext::Client::open(&server.url())?;
    /// use redisext::Lock;
    /// let lock = Lock::new(&client, "report")?;
    /// assert!(!lock.locked()?);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn new(exec: &E, key: impl AsRef<[u8]>) -> Result<Self> {
        Self::with_options(exec, key, ModelOptions::default())
    }

    /// This lock on another executor (an async client, a pipeline), same key and
    /// options.
    ///
    /// ```
    /// # let server = redisext::testing::RedisServer::start()?;
    /// # let client = redisext::Client::open(&server.url())?;
    /// # use std::time::Duration;
    /// # use redisext::{Lock, LockToken};
    /// # let lock = Lock::new(&client, "report")?;
    /// # let ttl = Duration::from_secs(30);
    /// let pipe = client.pipeline();
    /// let slot = lock.on(&pipe).acquire(ttl);
    /// pipe.run()?;
    /// assert!(slot.take()?.is_some());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn on<E2: Executor>(&self, exec: &E2) -> Lock<E2> {
        Lock { core: self.core.rebind(exec), fence: self.fence.clone(), signal: self.signal.clone() }
    }

    /// The lock's full key (namespace included).
    ///
    /// ```
    /// # let server = redisext::testing::RedisServer::start()?;
    /// # let client = redisext::Client::open(&server.url())?;
    /// # use std::time::Duration;
    /// # use redisext::{Lock, LockToken};
    /// # let lock = Lock::new(&client, "report")?;
    /// # let ttl = Duration::from_secs(30);
    /// assert_eq!(lock.key().as_bytes(), b"report");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn key(&self) -> &Key {
        self.core.key()
    }

    /// Takes the lock if no one holds it, with an expiry `ttl` (or none: `None`),
    /// in one atomic step; returns the token that releases it, or `None` when the
    /// lock is held. Does not wait: see [`acquire_wait`](Self::acquire_wait).
    ///
    /// A lock without an expiry stays held until released, even if its holder dies.
    ///
    /// **When the outcome is unknown** (the connection failed after sending), the
    /// client sends the acquire again with the same token, within its
    /// [`RetryPolicy`]: the script returns the acquisition the first attempt made,
    /// if it made one, so the caller sees a plain result. Only when that fails too
    /// (the retry deadline passed, or retries are off) is the error returned,
    /// [`Error::may_have_applied`](crate::Error::may_have_applied) true: the lock
    /// may then be held with a token this call generated and could not return,
    /// until its expiry (forever without one). When that matters, generate the
    /// token first and settle the doubt with it:
    ///
    /// ```
    /// # let server = redisext::testing::RedisServer::start()?;
    /// # let client = redisext::Client::open(&server.url())?;
    /// # let lock = redisext::Lock::new(&client, "report")?;
    /// use redisext::LockToken;
    /// let token = LockToken::generate();
    /// let held = match lock.acquire_with(&token, None) {
    ///     Ok(held) => held,
    ///     // Did it apply? Ask (on a working connection), then release or keep it.
    ///     Err(error) if error.may_have_applied() => lock.holds(&token)?,
    ///     Err(error) => return Err(error.into()),
    /// };
    /// # assert!(held.is_some());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn acquire(&self, ttl: impl Into<Option<Duration>>) -> E::Output<Option<LockToken>> {
        self.acquire_with(&LockToken::generate(), ttl)
    }

    /// Like [`acquire`](Self::acquire), but while the lock is held, tries again
    /// until it is free or `wait` has passed; `None` then. Between attempts it
    /// blocks on `{key}:signal` (on a connection of its own), which a
    /// [`release`](Self::release) pushes to, so a released lock is taken at once;
    /// a lock that expires, or that Python redisext releases, is noticed within
    /// 100 ms.
    ///
    /// ```
    /// # let server = redisext::testing::RedisServer::start()?;
    /// # let client = redisext::Client::open(&server.url())?;
    /// # use std::time::Duration;
    /// # use redisext::{Lock, LockToken};
    /// # let lock = Lock::new(&client, "report")?;
    /// # let ttl = Duration::from_secs(30);
    /// let held = lock.acquire_wait(ttl, Duration::from_secs(1))?.unwrap();
    /// assert!(lock.acquire_wait(ttl, Duration::from_millis(50))?.is_none()); // still held
    /// lock.release(&held)?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn acquire_wait(&self, ttl: impl Into<Option<Duration>>, wait: Duration) -> E::Output<Option<LockToken>> {
        self.acquire_with_wait(&LockToken::generate(), ttl, wait)
    }

    /// Like [`acquire`](Self::acquire), storing `token` (from
    /// [`LockToken::generate`]); the token returned is `token` with the
    /// acquisition's fencing number. Sent again with a token the lock is held
    /// with, it returns that same acquisition (token and fencing number) and
    /// changes nothing, so the client sends an acquire again by itself after an
    /// unknown outcome; knowing the token before sending also lets a caller
    /// settle the outcome with [`holds`](Self::holds).
    ///
    /// ```
    /// # let server = redisext::testing::RedisServer::start()?;
    /// # let client = redisext::Client::open(&server.url())?;
    /// # use std::time::Duration;
    /// # use redisext::{Lock, LockToken};
    /// # let lock = Lock::new(&client, "report")?;
    /// # let ttl = Duration::from_secs(30);
    /// let token = LockToken::generate();
    /// let held = lock.acquire_with(&token, ttl)?.unwrap();
    /// // Sent again with its token (a lost reply): the same acquisition.
    /// assert_eq!(lock.acquire_with(&token, ttl)?.map(|t| t.fence()), Some(held.fence()));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn acquire_with(&self, token: &LockToken, ttl: impl Into<Option<Duration>>) -> E::Output<Option<LockToken>> {
        self.core.run(self.acquire_call(token, ttl.into()), decode_acquired)
    }

    /// [`acquire_with`](Self::acquire_with), waiting up to `wait` as
    /// [`acquire_wait`](Self::acquire_wait) does.
    ///
    /// ```
    /// # let server = redisext::testing::RedisServer::start()?;
    /// # let client = redisext::Client::open(&server.url())?;
    /// # use std::time::Duration;
    /// # use redisext::{Lock, LockToken};
    /// # let lock = Lock::new(&client, "report")?;
    /// # let ttl = Duration::from_secs(30);
    /// let token = LockToken::generate();
    /// let held = lock.acquire_with_wait(&token, ttl, Duration::from_secs(1))?;
    /// assert!(held.is_some());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn acquire_with_wait(
        &self,
        token: &LockToken,
        ttl: impl Into<Option<Duration>>,
        wait: Duration,
    ) -> E::Output<Option<LockToken>> {
        // A release by this crate wakes a waiter at once; one by expiry or by
        // Python redisext (a bare DEL) signals nothing and is seen at the recheck.
        let wait = signal_wait(wait, &self.signal);
        self.core.run_waiting(self.acquire_call(token, ttl.into()), decode_acquired, wait)
    }

    /// The lock as held with `token` now: `token` with the fencing number of the
    /// acquisition that took the lock, or `None` when the lock is free or held
    /// with another token (it was never taken with this one, or it expired, or it
    /// was released). Asked of the master, as [`locked`](Self::locked).
    ///
    /// ```
    /// # let server = redisext::testing::RedisServer::start()?;
    /// # let client = redisext::Client::open(&server.url())?;
    /// # use std::time::Duration;
    /// # use redisext::{Lock, LockToken};
    /// # let lock = Lock::new(&client, "report")?;
    /// # let ttl = Duration::from_secs(30);
    /// let token = LockToken::generate();
    /// lock.acquire_with(&token, ttl)?;
    /// // Did the acquire apply? Ask with the token.
    /// assert!(lock.holds(&token)?.is_some_and(|held| held.fence() > 0));
    /// assert!(lock.holds(&LockToken::generate())?.is_none());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn holds(&self, token: &LockToken) -> E::Output<Option<LockToken>> {
        let call = lock::Holds { lock: self.core.key(), fence: &self.fence, token: token.as_arg() }
            .call(self.core.target().reads_from_master());
        self.core.run(call, decode_held)
    }

    /// Releases the lock if it is held with `token`; false when it is not held, or
    /// held by someone else (another token, a Python holder, or a new holder after
    /// this one's expiry) — also when an earlier attempt of this same call
    /// released it (the client sends a release again after an unknown outcome).
    ///
    /// ```
    /// # let server = redisext::testing::RedisServer::start()?;
    /// # let client = redisext::Client::open(&server.url())?;
    /// # use std::time::Duration;
    /// # use redisext::{Lock, LockToken};
    /// # let lock = Lock::new(&client, "report")?;
    /// # let ttl = Duration::from_secs(30);
    /// let token = lock.acquire(ttl)?.unwrap();
    /// assert!(!lock.release(&LockToken::generate())?); // not the holder's token
    /// assert!(lock.release(&token)?);
    /// assert!(!lock.locked()?);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn release(&self, token: &LockToken) -> E::Output<bool> {
        let call = lock::Release { lock: self.core.key(), signal: &self.signal, token: token.as_arg() }
            .call(self.core.target())
            .map(ScriptCall::resendable);
        self.core.run(call, decode::flag)
    }

    /// Sets the expiry of a lock held with `token` to `ttl` from now (also on a
    /// lock that had none); false, and nothing changed, when it is not held with
    /// `token`.
    ///
    /// ```
    /// # let server = redisext::testing::RedisServer::start()?;
    /// # let client = redisext::Client::open(&server.url())?;
    /// # use std::time::Duration;
    /// # use redisext::{Lock, LockToken};
    /// # let lock = Lock::new(&client, "report")?;
    /// # let ttl = Duration::from_secs(30);
    /// let token = lock.acquire(Duration::from_secs(1))?.unwrap();
    /// assert!(lock.extend(&token, Duration::from_secs(60))?);
    /// lock.release(&token)?;
    /// assert!(!lock.extend(&token, ttl)?); // no longer held
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn extend(&self, token: &LockToken, ttl: Duration) -> E::Output<bool> {
        let call = millis(ttl, lock::Extend::SCRIPT.name()).and_then(|ms| {
            lock::Extend { lock: self.core.key(), token: token.as_arg(), expiry_ms: ms.into() }
                .call(self.core.target())
                .map(ScriptCall::resendable)
        });
        self.core.run(call, decode::flag)
    }

    /// True when anyone holds the lock: the key exists (whatever its value or type,
    /// as in Python redisext). Always asked of the master, even when the client
    /// has a replica, since a replica may lag behind an acquire or a release.
    ///
    /// ```
    /// # let server = redisext::testing::RedisServer::start()?;
    /// # let client = redisext::Client::open(&server.url())?;
    /// # use std::time::Duration;
    /// # use redisext::{Lock, LockToken};
    /// # let lock = Lock::new(&client, "report")?;
    /// # let ttl = Duration::from_secs(30);
    /// assert!(!lock.locked()?);
    /// lock.acquire(ttl)?;
    /// assert!(lock.locked()?);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn locked(&self) -> E::Output<bool> {
        let call = lock::Locked { lock: self.core.key() }.call(self.core.target().reads_from_master());
        self.core.run(call, decode::flag)
    }

    /// How long the lock stays held unless extended or released:
    /// [`Ttl::Missing`] when it is free, [`Ttl::Persistent`] when it has no
    /// expiry. Asked of the master, as [`locked`](Self::locked).
    ///
    /// ```
    /// # let server = redisext::testing::RedisServer::start()?;
    /// # let client = redisext::Client::open(&server.url())?;
    /// # use std::time::Duration;
    /// # use redisext::{Lock, LockToken};
    /// # let lock = Lock::new(&client, "report")?;
    /// # let ttl = Duration::from_secs(30);
    /// use redisext::Ttl;
    /// assert_eq!(lock.ttl()?, Ttl::Missing);
    /// lock.acquire(ttl)?;
    /// assert!(matches!(lock.ttl()?, Ttl::Expires(left) if left <= ttl));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn ttl(&self) -> E::Output<Ttl> {
        let call = call::key::Ttl { key: self.core.key() }.call(self.core.target().reads_from_master());
        self.core.run(call, decode_ttl)
    }

    fn acquire_call(&self, token: &LockToken, ttl: Option<Duration>) -> Result<ScriptCall> {
        let ms = match ttl {
            Some(ttl) => millis(ttl, lock::Acquire::SCRIPT.name())?,
            None => 0, // the script's "no expiry"; `millis` never returns 0
        };
        lock::Acquire { lock: self.core.key(), fence: &self.fence, token: token.as_arg(), expiry_ms: ms.into() }
            .call(self.core.target())
            .map(ScriptCall::resendable)
    }
}

/// The token and fencing number from `lock/acquire`, or nil when the lock is held.
fn decode_acquired(reply: Reply, call: &ScriptCall) -> Result<Option<LockToken>> {
    decode_token(reply, call, 1)
}

/// The token and fencing number from `lock/holds` (0 when the counter is gone),
/// or nil when the lock is not held with the token.
fn decode_held(reply: Reply, call: &ScriptCall) -> Result<Option<LockToken>> {
    decode_token(reply, call, 0)
}

fn decode_token(reply: Reply, call: &ScriptCall, least_fence: u64) -> Result<Option<LockToken>> {
    let items = match reply {
        Reply::Nil => return Ok(None),
        Reply::Array(items) => items,
        other => return Err(unexpected(&other, call)),
    };
    if let [Reply::Bulk(token), Reply::Int(fence)] = items.as_slice()
        && let (Ok(token), Ok(fence)) = (std::str::from_utf8(token), u64::try_from(*fence))
        && fence >= least_fence
    {
        return Ok(Some(LockToken { value: Arc::from(token), fence }));
    }
    Err(unexpected(&Reply::Array(items), call))
}

impl<B: Backend> Lock<Client<B>> {
    /// Acquires the lock, waiting up to `wait` (as
    /// [`acquire_wait`](Self::acquire_wait)), and returns a guard that releases it
    /// when dropped; `None` when the lock stayed held.
    ///
    /// Blocking clients only. When an attempt fails with an unknown outcome
    /// ([`Error::may_have_applied`](crate::Error::may_have_applied)), the guard
    /// releases with its token before returning the error, so a lock taken
    /// unseen does not stay held; if that release fails too, the lock stays held
    /// until its expiry. A release that fails on drop (a lost connection) is
    /// ignored, and the lock stays held until its expiry: call
    /// [`LockGuard::release`] to see such errors.
    ///
    /// ```
    /// # let server = redisext::testing::RedisServer::start()?;
    /// # let client = redisext::Client::open(&server.url())?;
    /// # use std::time::Duration;
    /// # use redisext::{Lock, LockToken};
    /// # let lock = Lock::new(&client, "report")?;
    /// # let ttl = Duration::from_secs(30);
    /// {
    ///     let _guard = lock.guard(ttl, Duration::from_secs(1))?.expect("free");
    ///     assert!(lock.locked()?);
    /// } // dropped: released
    /// assert!(!lock.locked()?);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn guard(&self, ttl: impl Into<Option<Duration>>, wait: Duration) -> Result<Option<LockGuard<B>>> {
        let ttl = ttl.into();
        let Some((token, sent)) = self.take(ttl, wait)? else { return Ok(None) };
        Ok(Some(LockGuard::new(self.clone(), token, Hold::new(sent, ttl), None)))
    }

    /// Like [`guard`](Self::guard), for long holders: the lock is taken with expiry
    /// `ttl`, and a background thread extends it to `ttl` from now every `ttl / 3`
    /// until the guard is released or dropped. A holder that dies stops renewing,
    /// so the lock is free at most `ttl` later; a live holder keeps it however long
    /// it works.
    ///
    /// Check [`LockGuard::lost`] before each step that needs the lock, and fence
    /// writes with the token's [`fence`](LockToken::fence): it turns true when a
    /// renewal finds the lock no longer held with this guard's token (it expired
    /// during a pause longer than `ttl`, and maybe someone else took it), and also
    /// when renewals keep failing with errors (a partition, timeouts) until the
    /// lock may have expired. Renewing then stops. A failed renewal is tried again
    /// every `ttl / 9` meanwhile. Renewals follow one another, each counting
    /// from when it was sent, so one must complete within about `ttl / 2`: keep
    /// `ttl` well above the network's round trips, and give the client a
    /// response timeout below `ttl / 3`, or one slow renewal uses up the expiry.
    ///
    /// Renewals run on a connection of their own (with the default backend, one
    /// private connection kept open, see [`Backend::fork`]; with a backend that
    /// cannot fork, a new connection for each renewal), so they never wait behind
    /// this client's other operations on a shared connection — a lazy client's
    /// single connection, or a pool at its limit. The renewing thread holds a clone of the client; it ends at its next
    /// wake-up once the guard is gone.
    ///
    /// ```
    /// # let server = redisext::testing::RedisServer::start()?;
    /// # let client = redisext::Client::open(&server.url())?;
    /// # use std::time::Duration;
    /// # use redisext::{Lock, LockToken};
    /// # let lock = Lock::new(&client, "report")?;
    /// # let ttl = Duration::from_secs(30);
    /// let guard = lock.renewing_guard(Duration::from_secs(3), Duration::ZERO)?.expect("free");
    /// // ... long work: extended every second in the background ...
    /// assert!(!guard.lost());
    /// assert!(guard.release()?);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn renewing_guard(&self, ttl: Duration, wait: Duration) -> Result<Option<LockGuard<B>>> {
        let Some((token, sent)) = self.take(Some(ttl), wait)? else { return Ok(None) };
        let hold = Hold::new(sent, Some(ttl));
        let renewer = Renewer::start(self, token.clone(), ttl, Arc::clone(&hold), sent);
        Ok(Some(LockGuard::new(self.clone(), token, hold, Some(renewer))))
    }

    /// Acquires as [`acquire_wait`](Self::acquire_wait) does, also returning when
    /// the successful attempt was sent: the lock's expiry runs from a moment after
    /// it. (So the attempts are made here, on the shared waiting schedule.)
    fn take(&self, ttl: Option<Duration>, wait: Duration) -> Result<Option<(LockToken, Instant)>> {
        let token = LockToken::generate();
        let wait = Wait::polling(wait);
        let mut waiting = Waiting::start(&wait);
        loop {
            let sent = Instant::now();
            match self.acquire_with(&token, ttl) {
                Ok(Some(held)) => return Ok(Some((held, sent))),
                Ok(None) => {}
                Err(error) => {
                    if error.may_have_applied() {
                        // The lock may be held with this token, which nobody else
                        // knows: release it (a no-op if the acquire did not apply).
                        let _ = self.release(&token);
                    }
                    return Err(error);
                }
            }
            match waiting.next_pause() {
                None => return Ok(None),
                Some(Pause::Sleep(pause) | Pause::Signal(_, pause)) => thread::sleep(pause),
            }
        }
    }
}

/// A held [`Lock`] that is released when the guard is dropped (see
/// [`Lock::guard`] and [`Lock::renewing_guard`]).
pub struct LockGuard<B: Backend = RedisBackend> {
    lock: Lock<Client<B>>,
    token: LockToken,
    hold: Arc<Hold>,
    released: bool,
    renewer: Option<Renewer>,
}

impl<B: Backend> LockGuard<B> {
    fn new(lock: Lock<Client<B>>, token: LockToken, hold: Arc<Hold>, renewer: Option<Renewer>) -> LockGuard<B> {
        LockGuard { lock, token, hold, released: false, renewer }
    }

    /// The token the lock is held with.
    ///
    /// ```
    /// # let server = redisext::testing::RedisServer::start()?;
    /// # let client = redisext::Client::open(&server.url())?;
    /// # use std::time::Duration;
    /// # use redisext::{Lock, LockToken};
    /// # let lock = Lock::new(&client, "report")?;
    /// # let ttl = Duration::from_secs(30);
    /// let guard = lock.guard(ttl, Duration::ZERO)?.unwrap();
    /// assert!(lock.holds(guard.token())?.is_some());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn token(&self) -> &LockToken {
        &self.token
    }

    /// Sets the lock's expiry to `ttl` from now; false when the lock is no longer
    /// held with this guard's token (it expired, and perhaps someone else took it),
    /// and [`lost`](Self::lost) is then true.
    ///
    /// ```
    /// # let server = redisext::testing::RedisServer::start()?;
    /// # let client = redisext::Client::open(&server.url())?;
    /// # use std::time::Duration;
    /// # use redisext::{Lock, LockToken};
    /// # let lock = Lock::new(&client, "report")?;
    /// # let ttl = Duration::from_secs(30);
    /// let guard = lock.guard(Duration::from_secs(1), Duration::ZERO)?.unwrap();
    /// assert!(guard.extend(Duration::from_secs(60))?);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn extend(&self, ttl: Duration) -> Result<bool> {
        let sent = Instant::now();
        let extended = self.lock.extend(&self.token, ttl)?;
        if extended {
            self.hold.renewed(sent, ttl);
        } else {
            self.hold.mark_lost();
        }
        Ok(extended)
    }

    /// True once this guard can no longer be sure it holds the lock:
    ///
    /// - an [`extend`](Self::extend) or a renewal found the lock no longer held
    ///   with this guard's token, or
    /// - the lock's expiry has passed with no successful extend or renewal since.
    ///   The expiry is counted from the moment the last successful acquire or
    ///   extend was *sent*, less a margin for clock drift (ttl / 100 + 2 ms), so
    ///   `lost` turns true no later than the server lets the lock go — even when
    ///   renewals fail with errors (a partition, timeouts) and nothing answers.
    ///
    /// Once true it stays true, and a renewing guard stops renewing. A lock taken
    /// without an expiry is lost only when an extend finds it gone.
    ///
    /// ```
    /// # let server = redisext::testing::RedisServer::start()?;
    /// # let client = redisext::Client::open(&server.url())?;
    /// # use std::time::Duration;
    /// # use redisext::{Lock, LockToken};
    /// # let lock = Lock::new(&client, "report")?;
    /// # let ttl = Duration::from_secs(30);
    /// let guard = lock.guard(ttl, Duration::ZERO)?.unwrap();
    /// assert!(!guard.lost()); // check before writing to what the lock guards
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn lost(&self) -> bool {
        self.hold.lost()
    }

    /// Until when the lock is surely held (the moment [`lost`](Self::lost) turns
    /// true unless renewed), in this process's monotonic clock; `None` for a lock
    /// without an expiry.
    ///
    /// ```
    /// # let server = redisext::testing::RedisServer::start()?;
    /// # let client = redisext::Client::open(&server.url())?;
    /// # use std::time::Duration;
    /// # use redisext::{Lock, LockToken};
    /// # let lock = Lock::new(&client, "report")?;
    /// # let ttl = Duration::from_secs(30);
    /// let guard = lock.guard(ttl, Duration::ZERO)?.unwrap();
    /// assert!(guard.valid_until().is_some_and(|until| until > std::time::Instant::now()));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn valid_until(&self) -> Option<Instant> {
        self.hold.state().valid_until
    }

    /// Releases the lock now (after stopping any renewal), reporting errors that
    /// dropping the guard would ignore; false when it was no longer held with this
    /// guard's token.
    ///
    /// ```
    /// # let server = redisext::testing::RedisServer::start()?;
    /// # let client = redisext::Client::open(&server.url())?;
    /// # use std::time::Duration;
    /// # use redisext::{Lock, LockToken};
    /// # let lock = Lock::new(&client, "report")?;
    /// # let ttl = Duration::from_secs(30);
    /// let guard = lock.guard(ttl, Duration::ZERO)?.unwrap();
    /// assert!(guard.release()?); // errors reported, unlike a drop
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn release(mut self) -> Result<bool> {
        self.released = true;
        self.renewer.take();
        self.lock.release(&self.token)
    }
}

impl<B: Backend> Drop for LockGuard<B> {
    fn drop(&mut self) {
        // Stop renewing first. A renewal already under way may still land, after
        // the release: it is token-checked, so it then changes nothing.
        self.renewer.take();
        if !self.released {
            // Errors cannot be returned from drop; the lock's expiry (when it has
            // one) frees it in the end. `release` reports them.
            // One attempt: a drop must not stall for the retry deadline.
            let _ = self.lock.on(&self.lock.core.exec.with_retry(RetryPolicy::never())).release(&self.token);
        }
    }
}

impl<B: Backend> std::fmt::Debug for LockGuard<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LockGuard")
            .field("key", self.lock.key())
            .field("token", &self.token)
            .field("renewing", &self.renewer.is_some())
            .field("lost", &self.lost())
            .finish()
    }
}

/// What a guard knows of its hold on the lock; shared with its renewer.
struct Hold {
    state: Mutex<HoldState>,
}

#[derive(Clone, Copy)]
struct HoldState {
    /// Until when the lock is surely held (`None`: no expiry).
    valid_until: Option<Instant>,
    /// Latched: once lost, always lost.
    lost: bool,
}

impl Hold {
    /// The hold of a lock taken by a request sent at `sent`, with expiry `ttl`.
    fn new(sent: Instant, ttl: Option<Duration>) -> Arc<Hold> {
        let valid_until = ttl.map(|ttl| surely_held_until(sent, ttl));
        Arc::new(Hold { state: Mutex::new(HoldState { valid_until, lost: false }) })
    }

    fn state(&self) -> std::sync::MutexGuard<'_, HoldState> {
        // Nothing panics while holding it; a poisoned state is still consistent.
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn lost(&self) -> bool {
        let mut state = self.state();
        if state.valid_until.is_some_and(|until| Instant::now() >= until) {
            state.lost = true;
        }
        state.lost
    }

    /// An extend sent at `sent` succeeded; false when the hold was lost already
    /// (it stays lost: someone may have relied on that).
    fn renewed(&self, sent: Instant, ttl: Duration) -> bool {
        if self.lost() {
            return false;
        }
        self.state().valid_until = Some(surely_held_until(sent, ttl));
        true
    }

    fn mark_lost(&self) {
        self.state().lost = true;
    }

    /// After a renewal sent at `sent` came back with `extended`: when to renew
    /// next, or `None` to stop (the hold is lost). Shared by the blocking and the
    /// async renewers.
    fn after_renewal(&self, extended: Result<bool>, sent: Instant, ttl: Duration) -> Option<Instant> {
        let every = renewal_period(ttl);
        match extended {
            Ok(true) if self.renewed(sent, ttl) => Some(sent + every),
            Ok(true) => None,
            Ok(false) => {
                self.mark_lost();
                None
            }
            // Tried again soon; once the expiry has passed, `lost` is true and the
            // renewer's check ends it.
            Err(_) => Some(Instant::now() + every / 3),
        }
    }
}

/// How often a renewing guard extends its lock: every third of its expiry.
fn renewal_period(ttl: Duration) -> Duration {
    (ttl / 3).max(Duration::from_millis(1))
}

/// The moment until which a lock given expiry `ttl` by a request sent at `sent`
/// is surely still held: the server counts `ttl` from when it ran the request
/// (later than `sent`); the margin covers the two clocks running at slightly
/// different rates (Redlock's: 1% + 2 ms).
fn surely_held_until(sent: Instant, ttl: Duration) -> Instant {
    sent + ttl.saturating_sub(ttl / 100 + Duration::from_millis(2))
}

/// The thread that keeps a renewing guard's lock from expiring. Dropping it tells
/// the thread to stop, without waiting for it: a renewal under way may take up to
/// the client's response timeout, and the guard's drop must not.
struct Renewer {
    _stop: mpsc::Sender<()>,
}

impl Renewer {
    fn start<B: Backend>(
        lock: &Lock<Client<B>>,
        token: LockToken,
        ttl: Duration,
        hold: Arc<Hold>,
        sent: Instant,
    ) -> Renewer {
        let (stop, stopped) = mpsc::channel::<()>();
        let every = renewal_period(ttl);
        // Renewals keep their own schedule (every ttl / 9 after a failure): the
        // client's retries would hold a renewal past the point where `lost` is due.
        let lock = lock.on(&lock.core.exec.with_own_connections().with_retry(RetryPolicy::never()));
        thread::spawn(move || {
            let mut next = sent + every;
            loop {
                // Wakes at `next`, or at once when the guard drops the sender.
                let pause = next.saturating_duration_since(Instant::now());
                if !matches!(stopped.recv_timeout(pause), Err(mpsc::RecvTimeoutError::Timeout)) || hold.lost() {
                    return;
                }
                let sent = Instant::now();
                match hold.after_renewal(lock.extend(&token, ttl), sent, ttl) {
                    Some(renew_at) => next = renew_at,
                    None => return,
                }
            }
        });
        Renewer { _stop: stop }
    }
}

impl<E: Executor> Model for Lock<E> {
    type Executor = E;

    fn with_options(exec: &E, key: impl AsRef<[u8]>, options: ModelOptions) -> Result<Self> {
        let core = Core::new(exec, key, options, "string")?;
        Ok(Lock { fence: core.sibling("fence")?, signal: core.sibling("signal")?, core })
    }
}
