//! [`Lock`]: a mutual-exclusion lock that only its holder can release.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc;
use std::thread::{self, JoinHandle};
use std::time::Duration;

use crate::backend::{Backend, RedisBackend};
use crate::client::Client;
use crate::error::Result;
use crate::key::Key;
use crate::model::{Core, MAX_DURATION, Model, ModelOptions, key_commands, millis};
use crate::op::{Executor, ScriptCall, Wait, decode, unexpected};
use crate::reply::Reply;
use crate::script;

/// A lock at a string key: held while the key exists, whatever its value — the
/// test Python's `redisext.lock.Lock` uses, so a lock held by either language is
/// held for both.
///
/// [`acquire`](Self::acquire) stores a fresh random token only if the key does not
/// exist (`SET NX`, with an optional expiry, in one script) and returns it as a
/// [`LockToken`]; [`release`](Self::release) and [`extend`](Self::extend) act only
/// when the key still holds that token. So a holder whose lock expired and was
/// taken by someone else cannot release the new holder's lock. (Python redisext
/// stores `""` and releases with a bare `DEL`: a Python process can release any
/// lock, and a Rust release never releases a Python-held one.)
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
/// | [`acquire`](Self::acquire), [`acquire_timeout`](Self::acquire_timeout), [`guard`](Self::guard), [`renewing_guard`](Self::renewing_guard) | `lock/acquire` |
/// | [`release`](Self::release) | `lock/release` |
/// | [`extend`](Self::extend) | `lock/extend` |
/// | [`locked`](Self::locked) | `lock/locked` (on the master) |
///
/// ```
/// # let server = redisext::testing::RedisServer::start()?;
/// # let url = server.url();
/// use std::time::Duration;
/// use redisext::{Client, Lock};
/// let client = Client::open(&url)?; // url: "redis://127.0.0.1:6379/0"
/// let lock = Lock::new(&client, "invoice:42")?;
///
/// let token = lock.acquire(Duration::from_secs(30))?.expect("nobody holds it yet");
/// assert!(lock.locked()?);
/// assert_eq!(lock.acquire(None)?, None, "held: a second acquire fails");
/// assert!(lock.extend(&token, Duration::from_secs(60))?);
/// assert!(lock.release(&token)?);
/// assert!(!lock.release(&token)?, "already released");
/// let next = lock.acquire(Duration::from_secs(30))?.expect("free again");
/// assert!(next.fence() > token.fence(), "fencing numbers grow with every acquisition");
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
}

/// Proof of holding a [`Lock`]: the random value its holder stored at the lock's
/// key. [`Lock::release`] and [`Lock::extend`] succeed only with the token the
/// key holds.
///
/// Tokens are 32 hexadecimal digits (128 bits from the standard library's
/// randomly keyed SipHash, over the process id, the time and a counter), unique
/// across processes and machines for every practical purpose; they are never
/// empty, so they never match the `""` a Python holder stores.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct LockToken {
    value: Arc<str>,
    fence: u64,
}

impl LockToken {
    /// A token value no other acquisition uses.
    fn generate() -> String {
        use std::hash::{BuildHasher, Hasher, RandomState};
        static ACQUISITIONS: AtomicU64 = AtomicU64::new(0);
        let count = ACQUISITIONS.fetch_add(1, Ordering::Relaxed);
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos());
        let mut halves = [0u64; 2];
        for half in &mut halves {
            // Each RandomState has its own key, seeded from the operating system.
            let mut hasher = RandomState::new().build_hasher();
            hasher.write_u64(count);
            hasher.write_u128(nanos);
            hasher.write_u32(std::process::id());
            *half = hasher.finish();
        }
        format!("{:016x}{:016x}", halves[0], halves[1])
    }

    /// The token as stored at the lock's key.
    pub fn as_str(&self) -> &str {
        &self.value
    }

    /// The fencing number of this acquisition: larger than that of every earlier
    /// acquisition of this lock by redisext. Pass it along with each write to the
    /// resource the lock guards, and have the resource refuse a number lower than
    /// one it has already seen: a holder whose lock expired (a long pause, a
    /// partition) is then fenced out even if it does not know it lost the lock.
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
    pub fn new(exec: &E, key: impl AsRef<[u8]>) -> Result<Self> {
        Self::with_options(exec, key, ModelOptions::default())
    }

    /// This lock on another executor (an async client, a pipeline), same key and
    /// options.
    pub fn on<E2: Executor>(&self, exec: &E2) -> Lock<E2> {
        Lock { core: self.core.rebind(exec), fence: self.fence.clone() }
    }

    /// Takes the lock if no one holds it, with an expiry `ttl` (or none: `None`),
    /// in one atomic step; returns the token that releases it, or `None` when the
    /// lock is held. Does not wait: see [`acquire_timeout`](Self::acquire_timeout).
    ///
    /// A lock without an expiry stays held until released, even if its holder dies.
    pub fn acquire(&self, ttl: impl Into<Option<Duration>>) -> E::Output<Option<LockToken>> {
        self.core.run(self.acquire_call(ttl.into()), decode_acquired)
    }

    /// Like [`acquire`](Self::acquire), but while the lock is held, tries again
    /// (polling with backoff from 2 ms to 100 ms) until it is free or `timeout`
    /// has passed; `None` then.
    pub fn acquire_timeout(&self, ttl: impl Into<Option<Duration>>, timeout: Duration) -> E::Output<Option<LockToken>> {
        self.core.run_waiting(self.acquire_call(ttl.into()), decode_acquired, Wait::polling(timeout.min(MAX_DURATION)))
    }

    /// Releases the lock if it is held with `token`; false when it is not held, or
    /// held by someone else (another token, a Python holder, or a new holder after
    /// this one's expiry).
    pub fn release(&self, token: &LockToken) -> E::Output<bool> {
        let call = self.core.call(script::LOCK_RELEASE, vec![token.as_str().as_bytes().to_vec()]);
        self.core.run(call, decode::flag)
    }

    /// Sets the expiry of a lock held with `token` to `ttl` from now (also on a
    /// lock that had none); false, and nothing changed, when it is not held with
    /// `token`.
    pub fn extend(&self, token: &LockToken, ttl: Duration) -> E::Output<bool> {
        let script = script::LOCK_EXTEND;
        let call = millis(ttl, script.name()).and_then(|ms| {
            self.core.call(script, vec![token.as_str().as_bytes().to_vec(), ms.to_string().into_bytes()])
        });
        self.core.run(call, decode::flag)
    }

    /// True when anyone holds the lock: the key exists (whatever its value or type,
    /// as in Python redisext). Always asked of the master, even when the client
    /// has a replica, since a replica may lag behind an acquire or a release.
    pub fn locked(&self) -> E::Output<bool> {
        self.core.run(self.core.call_on_master(script::LOCK_LOCKED, vec![]), decode::flag)
    }

    fn acquire_call(&self, ttl: Option<Duration>) -> Result<ScriptCall> {
        let script = script::LOCK_ACQUIRE;
        let ms = match ttl {
            Some(ttl) => millis(ttl, script.name())?,
            None => 0, // the script's "no expiry"; `millis` never returns 0
        };
        let keys = self.core.with_siblings([&self.fence]);
        self.core.call_with_keys(script, keys, vec![LockToken::generate().into_bytes(), ms.to_string().into_bytes()])
    }
}

/// The token and fencing number from `lock/acquire`, or nil when the lock is held.
fn decode_acquired(reply: Reply, call: &ScriptCall) -> Result<Option<LockToken>> {
    let items = match reply {
        Reply::Nil => return Ok(None),
        Reply::Array(items) => items,
        other => return Err(unexpected(&other, call)),
    };
    if let [Reply::Bulk(token), Reply::Int(fence)] = items.as_slice()
        && let (Ok(token), Ok(fence @ 1..)) = (std::str::from_utf8(token), u64::try_from(*fence))
    {
        return Ok(Some(LockToken { value: Arc::from(token), fence }));
    }
    Err(unexpected(&Reply::Array(items), call))
}

impl<B: Backend> Lock<Client<B>> {
    /// Acquires the lock, waiting up to `timeout` (as
    /// [`acquire_timeout`](Self::acquire_timeout)), and returns a guard that
    /// releases it when dropped; `None` when the lock stayed held.
    ///
    /// Blocking clients only. A release that fails on drop (a lost connection) is
    /// ignored, and the lock stays held until its expiry: call
    /// [`LockGuard::release`] to see such errors.
    pub fn guard(&self, ttl: impl Into<Option<Duration>>, timeout: Duration) -> Result<Option<LockGuard<B>>> {
        let token = self.acquire_timeout(ttl, timeout)?;
        Ok(token.map(|token| LockGuard { lock: self.clone(), token, released: false, renewer: None }))
    }

    /// Like [`guard`](Self::guard), for long holders: the lock is taken with expiry
    /// `ttl`, and a background thread extends it to `ttl` from now every `ttl / 3`
    /// until the guard is released or dropped. A holder that dies stops renewing,
    /// so the lock is free at most `ttl` later; a live holder keeps it however long
    /// it works.
    ///
    /// When a renewal finds the lock no longer held with this guard's token (it
    /// expired during a pause longer than `ttl`, and maybe someone else took it),
    /// renewing stops and [`LockGuard::lost`] turns true: check it before each
    /// step that needs the lock, and fence writes with the token's
    /// [`fence`](LockToken::fence). A renewal that fails with an error (a lost
    /// connection) is tried again at the next interval.
    pub fn renewing_guard(&self, ttl: Duration, timeout: Duration) -> Result<Option<LockGuard<B>>> {
        let Some(mut guard) = self.guard(ttl, timeout)? else { return Ok(None) };
        guard.renewer = Some(Renewer::start(self.clone(), guard.token.clone(), ttl));
        Ok(Some(guard))
    }
}

/// A held [`Lock`] that is released when the guard is dropped (see
/// [`Lock::guard`] and [`Lock::renewing_guard`]).
pub struct LockGuard<B: Backend = RedisBackend> {
    lock: Lock<Client<B>>,
    token: LockToken,
    released: bool,
    renewer: Option<Renewer>,
}

impl<B: Backend> LockGuard<B> {
    /// The token the lock is held with.
    pub fn token(&self) -> &LockToken {
        &self.token
    }

    /// Sets the lock's expiry to `ttl` from now; false when the lock is no longer
    /// held with this guard's token (it expired, and perhaps someone else took it).
    pub fn extend(&self, ttl: Duration) -> Result<bool> {
        self.lock.extend(&self.token, ttl)
    }

    /// True when a renewal of a [renewing guard](Lock::renewing_guard) found the
    /// lock no longer held with this guard's token. Always false for other guards
    /// (check [`extend`](Self::extend)'s result instead).
    pub fn lost(&self) -> bool {
        self.renewer.as_ref().is_some_and(|renewer| renewer.lost.load(Ordering::Acquire))
    }

    /// Releases the lock now (after stopping any renewal), reporting errors that
    /// dropping the guard would ignore; false when it was no longer held with this
    /// guard's token.
    pub fn release(mut self) -> Result<bool> {
        self.released = true;
        self.renewer.take();
        self.lock.release(&self.token)
    }
}

impl<B: Backend> Drop for LockGuard<B> {
    fn drop(&mut self) {
        // Stop renewing first, so no renewal follows the release.
        self.renewer.take();
        if !self.released {
            // Errors cannot be returned from drop; the lock's expiry (when it has
            // one) frees it in the end. `release` reports them.
            let _ = self.lock.release(&self.token);
        }
    }
}

impl<B: Backend> std::fmt::Debug for LockGuard<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LockGuard")
            .field("key", self.lock.key())
            .field("token", &self.token)
            .field("renewing", &self.renewer.is_some())
            .finish()
    }
}

/// The thread that keeps a renewing guard's lock from expiring. Dropping it stops
/// the thread and waits for it.
struct Renewer {
    stop: Option<mpsc::Sender<()>>,
    thread: Option<JoinHandle<()>>,
    lost: Arc<AtomicBool>,
}

impl Renewer {
    fn start<B: Backend>(lock: Lock<Client<B>>, token: LockToken, ttl: Duration) -> Renewer {
        let (stop, stopped) = mpsc::channel::<()>();
        let lost = Arc::new(AtomicBool::new(false));
        let every = (ttl / 3).max(Duration::from_millis(1));
        let thread = {
            let lost = Arc::clone(&lost);
            thread::spawn(move || {
                // Wakes every `every`, or at once when the guard drops the sender.
                while let Err(mpsc::RecvTimeoutError::Timeout) = stopped.recv_timeout(every) {
                    if let Ok(false) = lock.extend(&token, ttl) {
                        lost.store(true, Ordering::Release);
                        return;
                    }
                }
            })
        };
        Renewer { stop: Some(stop), thread: Some(thread), lost }
    }
}

impl Drop for Renewer {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(thread) = self.thread.take() {
            // The thread never panics (it only runs a model operation); nothing to report.
            let _ = thread.join();
        }
    }
}

impl<E: Executor> Model for Lock<E> {
    type Executor = E;

    fn with_options(exec: &E, key: impl AsRef<[u8]>, options: ModelOptions) -> Result<Self> {
        let core = Core::new(exec, key, options, "string")?;
        Ok(Lock { fence: core.sibling("fence")?, core })
    }
}

key_commands!(impl[E: Executor] Lock<E>);
