//! [`Semaphore`]: N permits whose holders expire.

use std::time::{Duration, SystemTime};

use crate::call::{self, ScriptCall, semaphore};
use crate::client::Client;
use crate::error::{Error, Result};
use crate::key::Key;
use crate::model::{Core, ModelOptions, decode_deadline, millis, server_time, signal_wait};
use crate::op::{Executor, decode, unexpected};
use crate::receipt::Token;
use crate::wire::Reply;

/// A counting semaphore shared through Redis: at most `permits` holders at once,
/// each permit held until released or until its deadline (server time) passes, so
/// a crashed holder's permit comes back by itself.
///
/// The number of permits is stored in `{key}:settings` by the first acquire; a
/// client with another number gets [`Error::SettingsMismatch`], so permits are never
/// over-granted by clients that disagree. Permit ids come from a counter that only
/// grows: they are fencing numbers.
///
/// **Not guaranteed:** a holder that outlives its deadline has lost its permit
/// (someone else may hold it now); [`extend`](Self::extend) and
/// [`release`](Self::release) then report it, and the permit's
/// [`id`](Permit::id) can fence the resource it guards.
///
/// **Settled by a token.** Every acquire carries a [`Token`] the client generates
/// (or that you pass to [`acquire_with`](Self::acquire_with)); the server keeps
/// it with the permit while the permit is held (in `{key}:tokens`, deleted with
/// the permit), and an acquire sent again with the same token returns the same
/// permit instead of a second one. So an acquire whose reply was lost is safe
/// to send again: the client does so by itself after an unknown outcome. With
/// the async client, dropping an `acquire` future after it was sent may leave a
/// permit taken under a token nobody kept: it lapses at its deadline (`hold`);
/// [`guard`](Self::guard) releases such a permit at once instead.
///
/// Not a [`Model`](crate::Model): the number of permits is required, and
/// [`ModelOptions`] cannot carry it, so there is no [`ModelClass`](crate::ModelClass)
/// of semaphores. As for every model with required settings,
/// [`with_options`](Self::with_options) takes them after the key and before the
/// options.
///
/// | method | script |
/// |---|---|
/// | [`acquire`](Self::acquire) / [`acquire_wait`](Self::acquire_wait) / [`acquire_with`](Self::acquire_with) / [`acquire_with_wait`](Self::acquire_with_wait) / `guard` | `semaphore/acquire` |
/// | [`release`](Self::release) | `semaphore/release` |
/// | [`extend`](Self::extend) | `semaphore/extend` |
/// | [`held`](Self::held) | `semaphore/held` (read-only) |
/// | [`clear`](Self::clear) | `compound/clear` |
/// | [`expire`](Self::expire) | `compound/expire` |
/// | [`ttl`](Self::ttl) | `compound/ttl` |
/// | [`persist`](Self::persist) | `compound/persist` |
///
/// ```
/// # let server = redisext::testing::RedisServer::start()?;
/// # let url = server.url();
/// use std::time::Duration;
/// use redisext::{Client, Semaphore};
/// let client = Client::open(&url)?;
/// let downloads = Semaphore::new(&client, "downloads", 2)?;
/// let first = downloads.acquire(Duration::from_secs(30))?.expect("2 permits free");
/// let second = downloads.acquire(Duration::from_secs(30))?.expect("1 permit free");
/// assert!(downloads.acquire(Duration::from_secs(30))?.is_none(), "never over-granted");
/// assert_eq!(downloads.held()?, 2);
/// assert!(second.id() > first.id());
/// assert!(downloads.release(&first)?);
/// assert!(downloads.acquire_wait(Duration::from_secs(30), Duration::from_millis(100))?.is_some());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug)]
pub struct Semaphore<E: Executor = Client> {
    core: Core<E>,
    settings: Key,
    ids: Key,
    signal: Key,
    tokens: Key,
    permits: u32,
}

/// A permit held from a [`Semaphore`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Permit {
    id: u64,
    deadline: SystemTime,
    token: Token,
}

impl Permit {
    /// The permit's id: larger than every earlier permit's of this semaphore (a
    /// fencing number).
    ///
    /// ```
    /// # let server = redisext::testing::RedisServer::start()?;
    /// # let client = redisext::Client::open(&server.url())?;
    /// # use std::time::Duration;
    /// # use redisext::Semaphore;
    /// # let slots = Semaphore::new(&client, "render-slots", 2)?;
    /// # let hold = Duration::from_secs(30);
    /// let first = slots.acquire(hold)?.unwrap();
    /// let second = slots.acquire(hold)?.unwrap();
    /// assert!(second.id() > first.id()); // ids only grow: fencing numbers
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn id(&self) -> u64 {
        self.id
    }

    /// When the permit lapses unless released or extended, in the server's time.
    ///
    /// ```
    /// # let server = redisext::testing::RedisServer::start()?;
    /// # let client = redisext::Client::open(&server.url())?;
    /// # use std::time::Duration;
    /// # use redisext::Semaphore;
    /// # let slots = Semaphore::new(&client, "render-slots", 2)?;
    /// # let hold = Duration::from_secs(30);
    /// let permit = slots.acquire(hold)?.unwrap();
    /// assert!(permit.deadline() > std::time::SystemTime::now());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn deadline(&self) -> SystemTime {
        self.deadline
    }

    /// The token the permit was acquired with: an acquire sent again with it
    /// returns this permit while it is held.
    ///
    /// ```
    /// # let server = redisext::testing::RedisServer::start()?;
    /// # let client = redisext::Client::open(&server.url())?;
    /// # use std::time::Duration;
    /// # use redisext::Semaphore;
    /// # let slots = Semaphore::new(&client, "render-slots", 2)?;
    /// # let hold = Duration::from_secs(30);
    /// use redisext::Token;
    /// let token = Token::generate();
    /// let permit = slots.acquire_with(&token, hold)?.unwrap();
    /// assert_eq!(permit.token(), token);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn token(&self) -> Token {
        self.token
    }
}

impl<E: Executor> Semaphore<E> {
    /// The semaphore at `key` with `permits` permits (nothing is sent; 0 permits is
    /// [`Error::Config`]).
    ///
    /// ```
    /// # let server = redisext::testing::RedisServer::start()?;
    /// # let client = redisext::Client::open(&server.url())?;
    /// use redisext::Semaphore;
    /// let slots = Semaphore::new(&client, "render-slots", 4)?;
    /// assert_eq!(slots.permits(), 4);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn new(exec: &E, key: impl AsRef<[u8]>, permits: u32) -> Result<Self> {
        Self::with_options(exec, key, permits, ModelOptions::default())
    }

    /// [`new`](Self::new) with model options (a namespace, read routing), the
    /// settings after the key as in `new`.
    ///
    /// ```
    /// # let server = redisext::testing::RedisServer::start()?;
    /// # let client = redisext::Client::open(&server.url())?;
    /// use redisext::{ModelOptions, Semaphore};
    /// let slots = Semaphore::with_options(&client, "render", 4, ModelOptions::new().namespace("app:"))?;
    /// assert_eq!(slots.key().as_bytes(), b"app:render");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn with_options(exec: &E, key: impl AsRef<[u8]>, permits: u32, options: ModelOptions) -> Result<Self> {
        if permits == 0 {
            return Err(Error::Config("a semaphore needs at least 1 permit".into()));
        }
        let core = Core::new(exec, key, options, "zset")?;
        Ok(Semaphore {
            settings: core.sibling("settings")?,
            ids: core.sibling("ids")?,
            signal: core.sibling("signal")?,
            tokens: core.sibling("tokens")?,
            core,
            permits,
        })
    }

    /// This semaphore on another executor, same keys and settings.
    ///
    /// ```
    /// # let server = redisext::testing::RedisServer::start()?;
    /// # let client = redisext::Client::open(&server.url())?;
    /// # use std::time::Duration;
    /// # use redisext::Semaphore;
    /// # let slots = Semaphore::new(&client, "render-slots", 2)?;
    /// # let hold = Duration::from_secs(30);
    /// let pipe = client.pipeline();
    /// let slot = slots.on(&pipe).held();
    /// pipe.run()?;
    /// assert_eq!(slot.take()?, 0);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn on<E2: Executor>(&self, exec: &E2) -> Semaphore<E2> {
        Semaphore {
            core: self.core.rebind(exec),
            settings: self.settings.clone(),
            ids: self.ids.clone(),
            signal: self.signal.clone(),
            tokens: self.tokens.clone(),
            permits: self.permits,
        }
    }

    /// What the semaphore's operations run on.
    pub(crate) fn executor(&self) -> &E {
        &self.core.exec
    }

    /// The semaphore's key (the holders; the namespace included).
    ///
    /// ```
    /// # let server = redisext::testing::RedisServer::start()?;
    /// # let client = redisext::Client::open(&server.url())?;
    /// # use std::time::Duration;
    /// # use redisext::Semaphore;
    /// # let slots = Semaphore::new(&client, "render-slots", 2)?;
    /// # let hold = Duration::from_secs(30);
    /// assert_eq!(slots.key().as_bytes(), b"render-slots");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn key(&self) -> &Key {
        self.core.key()
    }

    /// The number of permits this client enforces.
    ///
    /// ```
    /// # let server = redisext::testing::RedisServer::start()?;
    /// # let client = redisext::Client::open(&server.url())?;
    /// # use std::time::Duration;
    /// # use redisext::Semaphore;
    /// # let slots = Semaphore::new(&client, "render-slots", 2)?;
    /// # let hold = Duration::from_secs(30);
    /// assert_eq!(slots.permits(), 2);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn permits(&self) -> u32 {
        self.permits
    }

    /// Takes a permit for `hold` (server time), or `None` when all are held.
    /// Permits past their deadline are dropped first. The acquire carries a new
    /// [`Token`], so it is safe to send again (see the type's documentation).
    ///
    /// ```
    /// # let server = redisext::testing::RedisServer::start()?;
    /// # let client = redisext::Client::open(&server.url())?;
    /// # use std::time::Duration;
    /// # use redisext::Semaphore;
    /// # let slots = Semaphore::new(&client, "render-slots", 2)?;
    /// # let hold = Duration::from_secs(30);
    /// let a = slots.acquire(hold)?;
    /// let b = slots.acquire(hold)?;
    /// assert!(a.is_some() && b.is_some());
    /// assert!(slots.acquire(hold)?.is_none()); // both permits held
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn acquire(&self, hold: Duration) -> E::Output<Option<Permit>> {
        self.acquire_with(&Token::generate(), hold)
    }

    /// Like [`acquire`](Self::acquire), but waits up to `timeout` for a permit:
    /// woken by releases, and checking again every 100 ms for permits that lapse.
    /// `None` when the timeout passes first.
    ///
    /// ```
    /// # let server = redisext::testing::RedisServer::start()?;
    /// # let client = redisext::Client::open(&server.url())?;
    /// # use std::time::Duration;
    /// # use redisext::Semaphore;
    /// # let slots = Semaphore::new(&client, "render-slots", 2)?;
    /// # let hold = Duration::from_secs(30);
    /// let permit = slots.acquire_wait(hold, Duration::from_secs(1))?;
    /// assert!(permit.is_some());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn acquire_wait(&self, hold: Duration, timeout: Duration) -> E::Output<Option<Permit>> {
        self.acquire_with_wait(&Token::generate(), hold, timeout)
    }

    /// Like [`acquire`](Self::acquire), with a token of your own (from
    /// [`Token::generate`]): sending it again, after an error that
    /// [`may have applied`](crate::Error::may_have_applied) or from another
    /// process, returns the permit the token holds, or takes one under it when it
    /// holds none. Use a token for one acquisition only.
    ///
    /// ```
    /// # let server = redisext::testing::RedisServer::start()?;
    /// # let client = redisext::Client::open(&server.url())?;
    /// # use std::time::Duration;
    /// # use redisext::Semaphore;
    /// # let slots = Semaphore::new(&client, "render-slots", 2)?;
    /// # let hold = Duration::from_secs(30);
    /// use redisext::Token;
    /// let token = Token::generate();
    /// let first = slots.acquire_with(&token, hold)?.unwrap();
    /// // Sent again with the same token: the same permit, not a second one.
    /// let again = slots.acquire_with(&token, hold)?.unwrap();
    /// assert_eq!(first.id(), again.id());
    /// assert_eq!(slots.held()?, 1);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn acquire_with(&self, token: &Token, hold: Duration) -> E::Output<Option<Permit>> {
        self.core.run(self.acquire_call(token, hold), decode_permit)
    }

    /// [`acquire_with`](Self::acquire_with), waiting up to `timeout` as
    /// [`acquire_wait`](Self::acquire_wait) does.
    ///
    /// ```
    /// # let server = redisext::testing::RedisServer::start()?;
    /// # let client = redisext::Client::open(&server.url())?;
    /// # use std::time::Duration;
    /// # use redisext::Semaphore;
    /// # let slots = Semaphore::new(&client, "render-slots", 2)?;
    /// # let hold = Duration::from_secs(30);
    /// use redisext::Token;
    /// let token = Token::generate();
    /// let permit = slots.acquire_with_wait(&token, hold, Duration::from_secs(1))?;
    /// assert_eq!(permit.map(|p| p.token()), Some(token));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn acquire_with_wait(&self, token: &Token, hold: Duration, timeout: Duration) -> E::Output<Option<Permit>> {
        let wait = signal_wait(timeout, &self.signal);
        self.core.run_waiting(self.acquire_call(token, hold), decode_permit, wait)
    }

    fn acquire_call(&self, token: &Token, hold: Duration) -> Result<ScriptCall> {
        let hold = millis(hold, semaphore::Acquire::SCRIPT.name())?;
        let call = semaphore::Acquire {
            holders: self.core.key(),
            settings: &self.settings,
            ids: &self.ids,
            tokens: &self.tokens,
            permits: self.permits.into(),
            hold_ms: hold.into(),
            token: token.as_bytes().to_vec().into(),
        }
        .call(self.core.target())?;
        Ok(call.resendable())
    }

    /// Gives the permit back and wakes one waiter. False when it was no longer
    /// held (it lapsed and was dropped, or was released already — also by an
    /// earlier attempt of this same call, which the client sends again after an
    /// unknown outcome: either way the permit is free). Works on a server out of
    /// memory.
    ///
    /// ```
    /// # let server = redisext::testing::RedisServer::start()?;
    /// # let client = redisext::Client::open(&server.url())?;
    /// # use std::time::Duration;
    /// # use redisext::Semaphore;
    /// # let slots = Semaphore::new(&client, "render-slots", 2)?;
    /// # let hold = Duration::from_secs(30);
    /// let permit = slots.acquire(hold)?.unwrap();
    /// assert!(slots.release(&permit)?);
    /// assert!(!slots.release(&permit)?); // already released
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn release(&self, permit: &Permit) -> E::Output<bool> {
        self.core.run(self.release_call(&permit.token, Some(permit.id)), decode::flag)
    }

    /// Releases whatever permit `token` holds: for an acquisition whose reply
    /// never came back (a dropped future).
    pub(crate) fn release_token(&self, token: &Token) -> E::Output<bool> {
        self.core.run(self.release_call(token, None), decode::flag)
    }

    fn release_call(&self, token: &Token, id: Option<u64>) -> Result<ScriptCall> {
        let call = semaphore::Release {
            holders: self.core.key(),
            signal: &self.signal,
            tokens: &self.tokens,
            token: token.as_bytes().to_vec().into(),
            id: id.map_or(call::Arg::Word(""), call::Arg::from),
            permits: self.permits.into(),
        }
        .call(self.core.target())?;
        Ok(call.resendable())
    }

    /// Moves the permit's deadline to `hold` from now (server time) and returns it;
    /// `None` when the permit is no longer held (nothing changes).
    ///
    /// ```
    /// # let server = redisext::testing::RedisServer::start()?;
    /// # let client = redisext::Client::open(&server.url())?;
    /// # use std::time::Duration;
    /// # use redisext::Semaphore;
    /// # let slots = Semaphore::new(&client, "render-slots", 2)?;
    /// # let hold = Duration::from_secs(30);
    /// let permit = slots.acquire(Duration::from_secs(1))?.unwrap();
    /// let until = slots.extend(&permit, Duration::from_secs(60))?;
    /// assert!(until.is_some_and(|until| until > permit.deadline()));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn extend(&self, permit: &Permit, hold: Duration) -> E::Output<Option<SystemTime>> {
        let call = millis(hold, semaphore::Extend::SCRIPT.name()).and_then(|ms| {
            semaphore::Extend { holders: self.core.key(), id: permit.id.into(), hold_ms: ms.into() }
                .call(self.core.target())
                .map(ScriptCall::resendable)
        });
        self.core.run(call, decode_deadline)
    }

    /// The number of permits held now (deadline ahead).
    ///
    /// ```
    /// # let server = redisext::testing::RedisServer::start()?;
    /// # let client = redisext::Client::open(&server.url())?;
    /// # use std::time::Duration;
    /// # use redisext::Semaphore;
    /// # let slots = Semaphore::new(&client, "render-slots", 2)?;
    /// # let hold = Duration::from_secs(30);
    /// slots.acquire(hold)?;
    /// assert_eq!(slots.held()?, 1);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn held(&self) -> E::Output<u64> {
        self.core.run(semaphore::Held { holders: self.core.key() }.call(self.core.target()), decode::count)
    }

    /// Deletes the semaphore (holders, their tokens, stored settings, signal) and
    /// returns how many keys existed. The id counter is kept, so ids keep growing.
    ///
    /// ```
    /// # let server = redisext::testing::RedisServer::start()?;
    /// # let client = redisext::Client::open(&server.url())?;
    /// # use std::time::Duration;
    /// # use redisext::Semaphore;
    /// # let slots = Semaphore::new(&client, "render-slots", 2)?;
    /// # let hold = Duration::from_secs(30);
    /// slots.acquire(hold)?;
    /// slots.clear()?;
    /// assert_eq!(slots.held()?, 0);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn clear(&self) -> E::Output<u64> {
        self.core.clear(self.expiring())
    }

    /// The sibling keys that `clear` deletes and `expire` sets to expire: all but
    /// the id counter.
    fn expiring(&self) -> [&Key; 3] {
        [&self.settings, &self.signal, &self.tokens]
    }
}

super::compound_expiry!(impl[E: Executor] Semaphore<E>, "semaphore");

fn decode_permit(reply: Reply, call: &ScriptCall) -> Result<Option<Permit>> {
    match reply {
        Reply::Nil => Ok(None),
        Reply::Array(items) => match items.as_slice() {
            [Reply::Int(id), Reply::Int(deadline), Reply::Bulk(token)] if *id > 0 && *deadline >= 0 => {
                let Some(token) = Token::from_bytes(token) else { return Err(unexpected(&Reply::Array(items), call)) };
                Ok(Some(Permit { id: id.unsigned_abs(), deadline: server_time(deadline.unsigned_abs()), token }))
            }
            _ => Err(unexpected(&Reply::Array(items), call)),
        },
        other => Err(unexpected(&other, call)),
    }
}
