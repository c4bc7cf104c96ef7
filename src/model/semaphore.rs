//! [`Semaphore`]: N permits whose holders expire.

use std::time::{Duration, SystemTime};

use crate::call::{ScriptCall, semaphore};
use crate::client::Client;
use crate::error::{Error, Result};
use crate::key::Key;
use crate::model::{Core, ModelOptions, decode_deadline, millis, server_time, signal_wait};
use crate::op::{Executor, decode, unexpected};
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
/// Not a [`Model`](crate::Model): the number of permits is required, and
/// [`ModelOptions`] cannot carry it, so there is no [`ModelClass`](crate::ModelClass)
/// of semaphores. As for every model with required settings,
/// [`with_options`](Self::with_options) takes them after the key and before the
/// options.
///
/// | method | script |
/// |---|---|
/// | [`acquire`](Self::acquire) / [`acquire_wait`](Self::acquire_wait) | `semaphore/acquire` |
/// | [`release`](Self::release) | `semaphore/release` |
/// | [`extend`](Self::extend) | `semaphore/extend` |
/// | [`held`](Self::held) | `semaphore/held` (read-only) |
/// | [`clear`](Self::clear) | `compound/clear` |
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
    permits: u32,
}

/// A permit held from a [`Semaphore`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Permit {
    id: u64,
    deadline: SystemTime,
}

impl Permit {
    /// The permit's id: larger than every earlier permit's of this semaphore (a
    /// fencing number).
    pub fn id(&self) -> u64 {
        self.id
    }

    /// When the permit lapses unless released or extended, in the server's time.
    pub fn deadline(&self) -> SystemTime {
        self.deadline
    }
}

impl<E: Executor> Semaphore<E> {
    /// The semaphore at `key` with `permits` permits (nothing is sent; 0 permits is
    /// [`Error::Config`]).
    pub fn new(exec: &E, key: impl AsRef<[u8]>, permits: u32) -> Result<Self> {
        Self::with_options(exec, key, permits, ModelOptions::default())
    }

    /// [`new`](Self::new) with model options (a namespace, read routing), the
    /// settings after the key as in `new`.
    pub fn with_options(exec: &E, key: impl AsRef<[u8]>, permits: u32, options: ModelOptions) -> Result<Self> {
        if permits == 0 {
            return Err(Error::Config("a semaphore needs at least 1 permit".into()));
        }
        let core = Core::new(exec, key, options, "zset")?;
        Ok(Semaphore {
            settings: core.sibling("settings")?,
            ids: core.sibling("ids")?,
            signal: core.sibling("signal")?,
            core,
            permits,
        })
    }

    /// This semaphore on another executor, same keys and settings.
    pub fn on<E2: Executor>(&self, exec: &E2) -> Semaphore<E2> {
        Semaphore {
            core: self.core.rebind(exec),
            settings: self.settings.clone(),
            ids: self.ids.clone(),
            signal: self.signal.clone(),
            permits: self.permits,
        }
    }

    /// The semaphore's key (the holders; the namespace included).
    pub fn key(&self) -> &Key {
        self.core.key()
    }

    /// The number of permits this client enforces.
    pub fn permits(&self) -> u32 {
        self.permits
    }

    /// Takes a permit for `hold` (server time), or `None` when all are held.
    /// Permits past their deadline are dropped first.
    pub fn acquire(&self, hold: Duration) -> E::Output<Option<Permit>> {
        self.core.run(self.acquire_call(hold), decode_permit)
    }

    /// Like [`acquire`](Self::acquire), but waits up to `timeout` for a permit:
    /// woken by releases, and checking again every 100 ms for permits that lapse.
    /// `None` when the timeout passes first.
    pub fn acquire_wait(&self, hold: Duration, timeout: Duration) -> E::Output<Option<Permit>> {
        let wait = signal_wait(timeout, &self.signal);
        self.core.run_waiting(self.acquire_call(hold), decode_permit, wait)
    }

    fn acquire_call(&self, hold: Duration) -> Result<ScriptCall> {
        let hold = millis(hold, semaphore::Acquire::SCRIPT.name())?;
        semaphore::Acquire {
            holders: self.core.key(),
            settings: &self.settings,
            ids: &self.ids,
            permits: self.permits.into(),
            hold_ms: hold.into(),
        }
        .call(self.core.target())
    }

    /// Gives the permit back and wakes one waiter. False when it was no longer
    /// held (it lapsed and was dropped, or was released already).
    pub fn release(&self, permit: &Permit) -> E::Output<bool> {
        let call = semaphore::Release {
            holders: self.core.key(),
            signal: &self.signal,
            id: permit.id.into(),
            permits: self.permits.into(),
        }
        .call(self.core.target());
        self.core.run(call, decode::flag)
    }

    /// Moves the permit's deadline to `hold` from now (server time) and returns it;
    /// `None` when the permit is no longer held (nothing changes).
    pub fn extend(&self, permit: &Permit, hold: Duration) -> E::Output<Option<SystemTime>> {
        let call = millis(hold, semaphore::Extend::SCRIPT.name()).and_then(|ms| {
            semaphore::Extend { holders: self.core.key(), id: permit.id.into(), hold_ms: ms.into() }
                .call(self.core.target())
        });
        self.core.run(call, decode_deadline)
    }

    /// The number of permits held now (deadline ahead).
    pub fn held(&self) -> E::Output<u64> {
        self.core.run(semaphore::Held { holders: self.core.key() }.call(self.core.target()), decode::count)
    }

    /// Deletes the semaphore (holders, stored settings, signal) and returns how
    /// many keys existed. The id counter is kept, so ids keep growing.
    pub fn clear(&self) -> E::Output<u64> {
        self.core.clear([&self.settings, &self.signal])
    }
}

fn decode_permit(reply: Reply, call: &ScriptCall) -> Result<Option<Permit>> {
    match reply {
        Reply::Nil => Ok(None),
        Reply::Array(items) => match items.as_slice() {
            [Reply::Int(id), Reply::Int(deadline)] if *id > 0 && *deadline >= 0 => {
                Ok(Some(Permit { id: id.unsigned_abs(), deadline: server_time(deadline.unsigned_abs()) }))
            }
            _ => Err(unexpected(&Reply::Array(items), call)),
        },
        other => Err(unexpected(&other, call)),
    }
}
