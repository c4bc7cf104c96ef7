//! [`ResourcePool`]: named resources leased to one holder at a time, with deadlines
//! and fencing numbers.

use std::marker::PhantomData;
use std::time::{Duration, SystemTime};

use crate::call::{Arg, ScriptCall, resource_pool};
use crate::client::Client;
use crate::error::{Error, Result};
use crate::key::Key;
use crate::model::{Core, Model, ModelOptions, RECLAIM_LIMIT, decode_deadline, millis, server_time, signal_wait};
use crate::op::{Executor, decode, unexpected};
use crate::receipt::{Lease, Token};
use crate::serializer::{Raw, Serializer};
use crate::wire::Reply;

/// A pool of named resources (connections, licences, workers) that are leased to
/// one holder at a time, each lease with a deadline in server time and a fencing
/// number that grows with every checkout.
///
/// Every step is one script, atomic on the server: a member is always either idle
/// or leased to exactly one holder, and is never lost. A lease past its deadline is
/// reclaimed by the next [`checkout`](Self::checkout) itself (no reaper process).
///
/// **What it does not guarantee:** a holder that outlives its lease (a long GC
/// pause, a stalled network) may still be using the member when it is leased to
/// someone else. Pass the lease's [`fence`](Lease::fence) to whatever the member
/// guards and have it refuse numbers lower than one it has seen; and check the
/// result of [`checkin`](Self::checkin) / [`extend`](Self::extend), which report a
/// lost lease.
///
/// | method | script |
/// |---|---|
/// | [`add`](Self::add) | `resource_pool/add` |
/// | [`remove`](Self::remove) | `resource_pool/remove` |
/// | [`checkout`](Self::checkout) / [`checkout_wait`](Self::checkout_wait) / [`checkout_with`](Self::checkout_with) / [`checkout_with_wait`](Self::checkout_with_wait) / `guard` | `resource_pool/checkout` |
/// | [`checkin`](Self::checkin) | `resource_pool/checkin` |
/// | [`extend`](Self::extend) | `resource_pool/extend` |
/// | [`counts`](Self::counts) | `resource_pool/counts` (read-only) |
/// | [`clear`](Self::clear) | `compound/clear` |
/// | [`expire`](Self::expire) | `compound/expire` |
/// | [`ttl`](Self::ttl) | `compound/ttl` |
/// | [`persist`](Self::persist) | `compound/persist` |
///
/// **Settled by a token.** Every checkout carries a [`Token`] the client
/// generates (or that you pass to [`checkout_with`](Self::checkout_with)); the
/// server keeps it with the lease while the lease lasts, and a checkout sent
/// again with the same token returns the same lease instead of a second one. So
/// a checkout whose reply was lost is safe to send again: the client does so by
/// itself after an unknown outcome. With the async client, dropping a `checkout`
/// future after it was sent may leave a member leased under a token nobody kept:
/// the next checkout after its deadline reclaims it; [`guard`](Self::guard)
/// checks such a lease in at once instead.
///
/// Keys: the idle members are a sorted set at the key itself; the siblings
/// `{key}:leased` (zset, deadlines), `{key}:leases` (hash, fencing numbers),
/// `{key}:fence` (the counter), `{key}:retiring` (set), `{key}:tokens` (hash, each
/// lease's token, deleted with the lease) and `{key}:signal` (list, for waiters)
/// share its hash slot.
///
/// ```
/// # let server = redisext::testing::RedisServer::start()?;
/// # let url = server.url();
/// use std::time::Duration;
/// use redisext::{Client, ResourcePool, serializer::Str};
/// let client = Client::open(&url)?;
/// let printers = ResourcePool::<Str>::new(&client, "printers")?;
/// printers.add("laser-1")?;
///
/// let lease = printers.checkout(Duration::from_secs(30))?.expect("one printer is idle");
/// assert_eq!(lease.member(), "laser-1");
/// assert!(printers.checkout(Duration::from_secs(30))?.is_none(), "never leased twice");
/// assert!(printers.extend(&lease, Duration::from_secs(60))?.is_some());
/// assert!(printers.checkin(&lease)?);
///
/// let next = printers.checkout(Duration::from_secs(30))?.expect("idle again");
/// assert!(next.fence() > lease.fence(), "fencing numbers only grow");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct ResourcePool<S: Serializer = Raw, E: Executor = Client> {
    core: Core<E>,
    keys: PoolKeys,
    serializer: PhantomData<fn() -> S>,
}

/// The sibling keys of a pool (the idle set is the model's own key).
#[derive(Clone, Debug)]
struct PoolKeys {
    leased: Key,
    leases: Key,
    fence: Key,
    retiring: Key,
    signal: Key,
    tokens: Key,
}

/// What [`ResourcePool::remove`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Removal {
    /// The member was not in the pool.
    NotMember,
    /// The member was idle and has left the pool.
    Removed,
    /// The member is leased: its holder keeps it until checkin or the lease's
    /// reclaiming, and then it leaves the pool instead of becoming idle.
    Retiring,
}

/// How many members a pool has in each state (see [`ResourcePool::counts`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct PoolCounts {
    /// Members ready to be checked out.
    pub idle: u64,
    /// Members leased, with the lease's deadline still ahead.
    pub leased: u64,
    /// Members whose lease has passed its deadline but that no checkout has
    /// reclaimed yet (the next checkout will).
    pub expired: u64,
    /// Leased members removed from the pool, leaving when their lease ends
    /// (counted in `leased` or `expired` too).
    pub retiring: u64,
}

impl PoolCounts {
    /// Every member: idle, leased or expired.
    ///
    /// ```
    /// # let server = redisext::testing::RedisServer::start()?;
    /// # let client = redisext::Client::open(&server.url())?;
    /// # use std::time::Duration;
    /// # use redisext::{ResourcePool, serializer::Str};
    /// # let printers = ResourcePool::<Str>::new(&client, "printers")?;
    /// # let lease = Duration::from_secs(30);
    /// # printers.add("p1")?;
    /// printers.checkout(lease)?;
    /// printers.add("p2")?;
    /// let counts = printers.counts()?;
    /// assert_eq!((counts.idle, counts.leased, counts.total()), (1, 1, 2));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn total(&self) -> u64 {
        self.idle + self.leased + self.expired
    }
}

impl<S: Serializer, E: Executor> ResourcePool<S, E> {
    /// The pool at `key` (nothing is sent; an empty key, or a key with `}` but no
    /// hash tag, is an error).
    ///
    /// ```
    /// # let server = redisext::testing::RedisServer::start()?;
    /// # let client = redisext::Client::open(&server.url())?;
    /// use redisext::{ResourcePool, serializer::Str};
    /// let printers = ResourcePool::<Str>::new(&client, "printers")?;
    /// assert_eq!(printers.counts()?.total(), 0);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn new(exec: &E, key: impl AsRef<[u8]>) -> Result<Self> {
        Self::with_options(exec, key, ModelOptions::default())
    }

    /// This pool on another executor, same keys and options.
    ///
    /// ```
    /// # let server = redisext::testing::RedisServer::start()?;
    /// # let client = redisext::Client::open(&server.url())?;
    /// # use std::time::Duration;
    /// # use redisext::{ResourcePool, serializer::Str};
    /// # let printers = ResourcePool::<Str>::new(&client, "printers")?;
    /// # let lease = Duration::from_secs(30);
    /// # printers.add("p1")?;
    /// let pipe = client.pipeline();
    /// let slot = printers.on(&pipe).counts();
    /// pipe.run()?;
    /// assert_eq!(slot.take()?.idle, 1);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn on<E2: Executor>(&self, exec: &E2) -> ResourcePool<S, E2> {
        ResourcePool { core: self.core.rebind(exec), keys: self.keys.clone(), serializer: PhantomData }
    }

    /// What the pool's operations run on.
    pub(crate) fn executor(&self) -> &E {
        &self.core.exec
    }

    /// The pool's key (the idle set; the namespace included).
    ///
    /// ```
    /// # let server = redisext::testing::RedisServer::start()?;
    /// # let client = redisext::Client::open(&server.url())?;
    /// # use std::time::Duration;
    /// # use redisext::{ResourcePool, serializer::Str};
    /// # let printers = ResourcePool::<Str>::new(&client, "printers")?;
    /// # let lease = Duration::from_secs(30);
    /// # printers.add("p1")?;
    /// assert_eq!(printers.key().as_bytes(), b"printers");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn key(&self) -> &Key {
        self.core.key()
    }

    /// Adds `member` to the idle set and wakes one waiter. True when it was added;
    /// false when it already belonged. Adding a member that is leased and being
    /// removed cancels the removal (true).
    ///
    /// ```
    /// # let server = redisext::testing::RedisServer::start()?;
    /// # let client = redisext::Client::open(&server.url())?;
    /// # use std::time::Duration;
    /// # use redisext::{ResourcePool, serializer::Str};
    /// # let printers = ResourcePool::<Str>::new(&client, "printers")?;
    /// # let lease = Duration::from_secs(30);
    /// # printers.add("p1")?;
    /// assert!(printers.add("p2")?); // new, and idle
    /// assert!(!printers.add("p2")?);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn add(&self, member: &S::Value) -> E::Output<bool> {
        let call = self.core.encode::<S>(member).and_then(|member| {
            let PoolKeys { leased, retiring, signal, .. } = &self.keys;
            resource_pool::Add { idle: self.core.key(), leased, retiring, signal, member }.call(self.core.target())
        });
        self.core.run(call, decode::flag)
    }

    /// Takes `member` out of the pool: at once when idle; when leased, after its
    /// holder checks it in or the lease is reclaimed ([`Removal::Retiring`]), so a
    /// removed member is never leased to anyone else meanwhile.
    ///
    /// ```
    /// # let server = redisext::testing::RedisServer::start()?;
    /// # let client = redisext::Client::open(&server.url())?;
    /// # use std::time::Duration;
    /// # use redisext::{ResourcePool, serializer::Str};
    /// # let printers = ResourcePool::<Str>::new(&client, "printers")?;
    /// # let lease = Duration::from_secs(30);
    /// # printers.add("p1")?;
    /// use redisext::Removal;
    /// printers.add("p2")?;
    /// assert_eq!(printers.remove("p2")?, Removal::Removed);
    /// let held = printers.checkout(lease)?.unwrap();
    /// assert_eq!(printers.remove("p1")?, Removal::Retiring); // leaves at checkin
    /// printers.checkin(&held)?;
    /// assert_eq!(printers.counts()?.total(), 0);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn remove(&self, member: &S::Value) -> E::Output<Removal> {
        let call = self.core.encode::<S>(member).and_then(|member| {
            let PoolKeys { leased, retiring, .. } = &self.keys;
            resource_pool::Remove { idle: self.core.key(), leased, retiring, member }.call(self.core.target())
        });
        self.core.run(call, decode_removal)
    }

    /// Leases the member that has been idle longest, for `lease` (server time), or
    /// `None` when every member is leased. Expired leases are reclaimed first (up
    /// to 100 per call). The checkout carries a new [`Token`], so it is safe to
    /// send again (see the type's documentation).
    ///
    /// ```
    /// # let server = redisext::testing::RedisServer::start()?;
    /// # let client = redisext::Client::open(&server.url())?;
    /// # use std::time::Duration;
    /// # use redisext::{ResourcePool, serializer::Str};
    /// # let printers = ResourcePool::<Str>::new(&client, "printers")?;
    /// # let lease = Duration::from_secs(30);
    /// # printers.add("p1")?;
    /// let held = printers.checkout(lease)?.unwrap();
    /// assert_eq!(held.member(), "p1");
    /// assert!(printers.checkout(lease)?.is_none()); // none idle
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn checkout(&self, lease: Duration) -> E::Output<Option<Lease<S::Owned>>> {
        self.checkout_with(&Token::generate(), lease)
    }

    /// Like [`checkout`](Self::checkout), but waits up to `timeout` for a member to
    /// become idle: woken by a checkin or an add, and checking again every 100 ms
    /// for leases that expire. `None` when the timeout passes first.
    ///
    /// ```
    /// # let server = redisext::testing::RedisServer::start()?;
    /// # let client = redisext::Client::open(&server.url())?;
    /// # use std::time::Duration;
    /// # use redisext::{ResourcePool, serializer::Str};
    /// # let printers = ResourcePool::<Str>::new(&client, "printers")?;
    /// # let lease = Duration::from_secs(30);
    /// # printers.add("p1")?;
    /// let held = printers.checkout_wait(lease, Duration::from_secs(1))?;
    /// assert!(held.is_some());
    /// assert!(printers.checkout_wait(lease, Duration::from_millis(50))?.is_none());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn checkout_wait(&self, lease: Duration, timeout: Duration) -> E::Output<Option<Lease<S::Owned>>> {
        self.checkout_with_wait(&Token::generate(), lease, timeout)
    }

    /// Like [`checkout`](Self::checkout), with a token of your own (from
    /// [`Token::generate`]): sending it again, after an error that
    /// [`may have applied`](crate::Error::may_have_applied) or from another
    /// process, returns the lease the token holds, or takes one under it when it
    /// holds none. Use a token for one checkout only.
    ///
    /// ```
    /// # let server = redisext::testing::RedisServer::start()?;
    /// # let client = redisext::Client::open(&server.url())?;
    /// # use std::time::Duration;
    /// # use redisext::{ResourcePool, serializer::Str};
    /// # let printers = ResourcePool::<Str>::new(&client, "printers")?;
    /// # let lease = Duration::from_secs(30);
    /// # printers.add("p1")?;
    /// use redisext::Token;
    /// let token = Token::generate();
    /// let first = printers.checkout_with(&token, lease)?.unwrap();
    /// let again = printers.checkout_with(&token, lease)?.unwrap(); // a resend: the same lease
    /// assert_eq!(first.fence(), again.fence());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn checkout_with(&self, token: &Token, lease: Duration) -> E::Output<Option<Lease<S::Owned>>> {
        self.core.run(self.checkout_call(token, lease), decode_lease::<S>)
    }

    /// [`checkout_with`](Self::checkout_with), waiting up to `timeout` as
    /// [`checkout_wait`](Self::checkout_wait) does.
    ///
    /// ```
    /// # let server = redisext::testing::RedisServer::start()?;
    /// # let client = redisext::Client::open(&server.url())?;
    /// # use std::time::Duration;
    /// # use redisext::{ResourcePool, serializer::Str};
    /// # let printers = ResourcePool::<Str>::new(&client, "printers")?;
    /// # let lease = Duration::from_secs(30);
    /// # printers.add("p1")?;
    /// use redisext::Token;
    /// let token = Token::generate();
    /// let held = printers.checkout_with_wait(&token, lease, Duration::from_secs(1))?;
    /// assert_eq!(held.map(|lease| lease.token()), Some(token));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn checkout_with_wait(
        &self,
        token: &Token,
        lease: Duration,
        timeout: Duration,
    ) -> E::Output<Option<Lease<S::Owned>>> {
        let wait = signal_wait(timeout, &self.keys.signal);
        self.core.run_waiting(self.checkout_call(token, lease), decode_lease::<S>, wait)
    }

    fn checkout_call(&self, token: &Token, lease: Duration) -> Result<ScriptCall> {
        let lease = millis(lease, resource_pool::Checkout::SCRIPT.name())?;
        let PoolKeys { leased, leases, fence, retiring, tokens, .. } = &self.keys;
        let call = resource_pool::Checkout {
            idle: self.core.key(),
            leased,
            leases,
            fence,
            retiring,
            tokens,
            lease_ms: lease.into(),
            limit: RECLAIM_LIMIT.into(),
            token: token.as_bytes().to_vec().into(),
        }
        .call(self.core.target())?;
        Ok(call.resendable())
    }

    /// Ends a lease: the member becomes idle again (or leaves the pool, when it was
    /// removed meanwhile) and one waiter is woken. False when the lease was no
    /// longer this holder's — it passed its deadline and was reclaimed, or it was
    /// checked in already (also by an earlier attempt of this same call, which the
    /// client sends again after an unknown outcome) — and then nothing changes.
    /// Works on a server out of memory.
    ///
    /// Any lease of this pool is accepted, whatever its member's type: the
    /// [`LeasedUndecodable`](crate::Error::LeasedUndecodable) error carries one with
    /// the member's raw bytes.
    ///
    /// ```
    /// # let server = redisext::testing::RedisServer::start()?;
    /// # let client = redisext::Client::open(&server.url())?;
    /// # use std::time::Duration;
    /// # use redisext::{ResourcePool, serializer::Str};
    /// # let printers = ResourcePool::<Str>::new(&client, "printers")?;
    /// # let lease = Duration::from_secs(30);
    /// # printers.add("p1")?;
    /// let held = printers.checkout(lease)?.unwrap();
    /// assert!(printers.checkin(&held)?);
    /// assert!(!printers.checkin(&held)?); // not the current lease any more
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn checkin<T>(&self, lease: &Lease<T>) -> E::Output<bool> {
        self.core.run(self.checkin_call(&lease.token, Some(lease.fence)), decode::flag)
    }

    /// Checks in whatever lease `token` holds: for a checkout whose reply never
    /// came back (a dropped future).
    pub(crate) fn checkin_token(&self, token: &Token) -> E::Output<bool> {
        self.core.run(self.checkin_call(token, None), decode::flag)
    }

    fn checkin_call(&self, token: &Token, fence: Option<u64>) -> Result<ScriptCall> {
        let PoolKeys { leased, leases, retiring, signal, tokens, .. } = &self.keys;
        let call = resource_pool::Checkin {
            idle: self.core.key(),
            leased,
            leases,
            retiring,
            signal,
            tokens,
            token: token.as_bytes().to_vec().into(),
            fence: fence.map_or(Arg::Word(""), Arg::from),
        }
        .call(self.core.target())?;
        Ok(call.resendable())
    }

    /// Moves the lease's deadline to `duration` from now (server time) and returns
    /// it; `None` when the lease was no longer this holder's (nothing changes).
    /// Any lease of this pool is accepted, as by [`checkin`](Self::checkin).
    ///
    /// ```
    /// # let server = redisext::testing::RedisServer::start()?;
    /// # let client = redisext::Client::open(&server.url())?;
    /// # use std::time::Duration;
    /// # use redisext::{ResourcePool, serializer::Str};
    /// # let printers = ResourcePool::<Str>::new(&client, "printers")?;
    /// # let lease = Duration::from_secs(30);
    /// # printers.add("p1")?;
    /// let held = printers.checkout(Duration::from_secs(1))?.unwrap();
    /// let until = printers.extend(&held, Duration::from_secs(60))?;
    /// assert!(until.is_some_and(|until| until > held.deadline()));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn extend<T>(&self, lease: &Lease<T>, duration: Duration) -> E::Output<Option<SystemTime>> {
        let call = millis(duration, resource_pool::Extend::SCRIPT.name()).and_then(|ms| {
            let PoolKeys { leased, leases, .. } = &self.keys;
            resource_pool::Extend {
                idle: self.core.key(),
                leased,
                leases,
                member: lease.stored.clone().into(),
                fence: lease.fence.into(),
                lease_ms: ms.into(),
            }
            .call(self.core.target())
            .map(ScriptCall::resendable)
        });
        self.core.run(call, decode_deadline)
    }

    /// How many members are idle, leased, expired (not yet reclaimed) and retiring.
    ///
    /// ```
    /// # let server = redisext::testing::RedisServer::start()?;
    /// # let client = redisext::Client::open(&server.url())?;
    /// # use std::time::Duration;
    /// # use redisext::{ResourcePool, serializer::Str};
    /// # let printers = ResourcePool::<Str>::new(&client, "printers")?;
    /// # let lease = Duration::from_secs(30);
    /// # printers.add("p1")?;
    /// let counts = printers.counts()?;
    /// assert_eq!((counts.idle, counts.leased, counts.expired, counts.retiring), (1, 0, 0, 0));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn counts(&self) -> E::Output<PoolCounts> {
        let PoolKeys { leased, retiring, .. } = &self.keys;
        let call = resource_pool::Counts { idle: self.core.key(), leased, retiring }.call(self.core.target());
        self.core.run(call, decode_counts)
    }

    /// Deletes the pool (members, leases and their tokens, waiters' signals) and
    /// returns how many keys existed. The fencing counter is kept, so fencing
    /// numbers keep growing if the pool is filled again. Current holders' checkins
    /// then report false.
    ///
    /// ```
    /// # let server = redisext::testing::RedisServer::start()?;
    /// # let client = redisext::Client::open(&server.url())?;
    /// # use std::time::Duration;
    /// # use redisext::{ResourcePool, serializer::Str};
    /// # let printers = ResourcePool::<Str>::new(&client, "printers")?;
    /// # let lease = Duration::from_secs(30);
    /// # printers.add("p1")?;
    /// printers.clear()?;
    /// assert_eq!(printers.counts()?.total(), 0);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn clear(&self) -> E::Output<u64> {
        self.core.clear(self.expiring())
    }

    /// The sibling keys that `clear` deletes and `expire` sets to expire: all but
    /// the fencing counter.
    fn expiring(&self) -> [&Key; 5] {
        let PoolKeys { leased, leases, fence: _, retiring, signal, tokens } = &self.keys;
        [leased, leases, retiring, signal, tokens]
    }
}

super::compound_expiry!(impl[S: Serializer, E: Executor] ResourcePool<S, E>, "pool");

fn decode_removal(reply: Reply, call: &ScriptCall) -> Result<Removal> {
    match reply {
        Reply::Int(0) => Ok(Removal::NotMember),
        Reply::Int(1) => Ok(Removal::Removed),
        Reply::Int(2) => Ok(Removal::Retiring),
        other => Err(unexpected(&other, call)),
    }
}

fn decode_lease<S: Serializer>(reply: Reply, call: &ScriptCall) -> Result<Option<Lease<S::Owned>>> {
    let items = match reply {
        Reply::Nil => return Ok(None),
        Reply::Array(items) => items,
        other => return Err(unexpected(&other, call)),
    };
    let checked = match items.as_slice() {
        [Reply::Bulk(_), Reply::Int(fence @ 1..), Reply::Int(deadline @ 0..), Reply::Bulk(token)] => {
            Token::from_bytes(token).map(|token| (fence.unsigned_abs(), server_time(deadline.unsigned_abs()), token))
        }
        _ => None,
    };
    let Some((fence, deadline, token)) = checked else { return Err(unexpected(&Reply::Array(items), call)) };
    let Some(Reply::Bulk(stored)) = items.into_iter().next() else { return Err(unexpected(&Reply::Nil, call)) };
    match S::decode(&stored) {
        Ok(member) => Ok(Some(Lease { member, stored, fence, deadline, token })),
        // The member is leased now: the caller needs the lease to check it in.
        Err(reason) => Err(Error::LeasedUndecodable {
            script: call.script,
            key: call.key().display(),
            serializer: S::name(),
            reason,
            lease: Box::new(Lease { member: stored.clone(), stored, fence, deadline, token }),
        }),
    }
}

fn decode_counts(reply: Reply, call: &ScriptCall) -> Result<PoolCounts> {
    let [idle, leased, expired, retiring] = decode::counts::<4>(reply, call)?;
    Ok(PoolCounts { idle, leased, expired, retiring })
}

impl<S: Serializer, E: Executor> Model for ResourcePool<S, E> {
    type Executor = E;

    fn with_options(exec: &E, key: impl AsRef<[u8]>, options: ModelOptions) -> Result<Self> {
        let core = Core::new(exec, key, options, "zset")?;
        let keys = PoolKeys {
            leased: core.sibling("leased")?,
            leases: core.sibling("leases")?,
            fence: core.sibling("fence")?,
            retiring: core.sibling("retiring")?,
            signal: core.sibling("signal")?,
            tokens: core.sibling("tokens")?,
        };
        Ok(ResourcePool { core, keys, serializer: PhantomData })
    }
}

impl<S: Serializer, E: Executor> Clone for ResourcePool<S, E> {
    fn clone(&self) -> Self {
        self.on(&self.core.exec)
    }
}

impl<S: Serializer, E: Executor + std::fmt::Debug> std::fmt::Debug for ResourcePool<S, E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResourcePool").field("key", self.core.key()).field("serializer", &S::NAME).finish()
    }
}
