//! [`RateLimiter`]: GCRA on server time, telling a refused caller how long to wait.

use std::time::Duration;

use crate::call::{ScriptCall, compound, rate_limiter};
use crate::client::Client;
use crate::error::{Error, Result};
use crate::key::Key;
use crate::model::{Core, MAX_DURATION, ModelOptions};
use crate::op::{Executor, decode};
use crate::wire::Reply;

/// How much a [`RateLimiter`] admits: `count` units per `period` on average, and up
/// to `burst` units at once (by default `burst` = `count`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Quota {
    count: u64,
    period: Duration,
    burst: u64,
}

impl Quota {
    /// `count` units per `period`, with a burst of `count`.
    ///
    /// ```
    /// # let server = redisext::testing::RedisServer::start()?;
    /// # let client = redisext::Client::open(&server.url())?;
    /// use std::time::Duration;
    /// use redisext::Quota;
    /// let quota = Quota::new(100, Duration::from_secs(60)); // 100 a minute
    /// assert_eq!(quota, Quota::new(100, Duration::from_secs(60)));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn new(count: u64, period: Duration) -> Quota {
        Quota { count, period, burst: count }
    }

    /// `count` units per second.
    ///
    /// ```
    /// # let server = redisext::testing::RedisServer::start()?;
    /// # let client = redisext::Client::open(&server.url())?;
    /// use redisext::Quota;
    /// let quota = Quota::per_second(10);
    /// assert_eq!(quota, Quota::new(10, std::time::Duration::from_secs(1)));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn per_second(count: u64) -> Quota {
        Quota::new(count, Duration::from_secs(1))
    }

    /// The same rate with another burst: how many units may be taken at once
    /// after a quiet spell.
    ///
    /// ```
    /// # let server = redisext::testing::RedisServer::start()?;
    /// # let client = redisext::Client::open(&server.url())?;
    /// use redisext::Quota;
    /// let quota = Quota::per_second(10).burst(50); // up to 50 at once after a quiet spell
    /// assert_ne!(quota, Quota::per_second(10));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn burst(self, burst: u64) -> Quota {
        Quota { burst, ..self }
    }

    /// The emission interval (microseconds per unit) and burst tolerance
    /// (microseconds), as the script takes them.
    fn gcra(&self) -> Result<(u64, u64)> {
        if self.count == 0 || self.burst == 0 {
            return Err(Error::Config("a quota needs a count and a burst of at least 1".into()));
        }
        let interval = self.period.as_micros() / u128::from(self.count);
        let tolerance = interval.saturating_mul(u128::from(self.burst));
        // Server time in microseconds plus the tolerance must stay exact in a Lua
        // double: at most MAX_DURATION.
        match (u64::try_from(interval), u64::try_from(tolerance)) {
            (Ok(interval), Ok(tolerance)) if interval >= 1 && u128::from(tolerance) <= MAX_DURATION.as_micros() => {
                Ok((interval, tolerance))
            }
            _ => Err(Error::Config(format!(
                "quota {} per {:?} with burst {}: the interval per unit must be at least 1 µs \
                 and the burst at most 100 years' worth",
                self.count, self.period, self.burst
            ))),
        }
    }
}

/// A rate limiter shared through Redis, by the generic cell rate algorithm (GCRA):
/// one key holding a "theoretical arrival time", on the server's clock in
/// microseconds. Each [`acquire`](Self::acquire) is one script that admits or
/// refuses and, when refused, says how long to wait. The key expires by itself once
/// the limiter is back to a full burst.
///
/// Guarantees: over any stretch of time *t*, at most `burst + t / interval` units
/// are admitted, whatever the number of clients (the state lives on the server;
/// client clocks are never used). **Not guaranteed:** fairness between callers, or
/// that a caller who waits `retry_after` is admitted then (others may come first).
/// Clients of one key should use the same quota: each applies its own.
///
/// Not a [`Model`](crate::Model): the quota is required, and [`ModelOptions`]
/// cannot carry it, so there is no [`ModelClass`](crate::ModelClass) of rate
/// limiters. As for every model with required settings,
/// [`with_options`](Self::with_options) takes them after the key and before the
/// options.
///
/// | method | script |
/// |---|---|
/// | [`acquire`](Self::acquire) | `rate_limiter/acquire` |
/// | [`reset`](Self::reset) | `compound/clear` |
///
/// ```
/// # let server = redisext::testing::RedisServer::start()?;
/// # let url = server.url();
/// use std::time::Duration;
/// use redisext::{Client, Quota, RateLimiter};
/// let client = Client::open(&url)?;
/// let api = RateLimiter::new(&client, "api:user42", Quota::new(10, Duration::from_secs(60)).burst(2))?;
/// assert!(api.acquire(1)?.allowed);
/// assert!(api.acquire(1)?.allowed);
/// let refused = api.acquire(1)?;
/// assert!(!refused.allowed, "the burst of 2 is used up");
/// assert!(refused.retry_after > Duration::from_secs(5), "one unit per 6 s: {:?}", refused.retry_after);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug)]
pub struct RateLimiter<E: Executor = Client> {
    core: Core<E>,
    quota: Quota,
    interval_us: u64,
    tolerance_us: u64,
}

/// The answer of [`RateLimiter::acquire`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RateLimit {
    /// True when the units were taken.
    pub allowed: bool,
    /// How many more units could be taken right now.
    pub remaining: u64,
    /// When refused, how long until the same request would be admitted (zero when
    /// allowed).
    pub retry_after: Duration,
    /// How long until the limiter is back to a full burst.
    pub reset_after: Duration,
}

impl<E: Executor> RateLimiter<E> {
    /// The limiter at `key` admitting `quota` (nothing is sent; a quota of zero, or
    /// finer than 1 µs per unit, is [`Error::Config`]).
    ///
    /// ```
    /// # let server = redisext::testing::RedisServer::start()?;
    /// # let client = redisext::Client::open(&server.url())?;
    /// use redisext::{Quota, RateLimiter};
    /// let api = RateLimiter::new(&client, "api", Quota::per_second(5))?;
    /// assert!(api.acquire(1)?.allowed);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn new(exec: &E, key: impl AsRef<[u8]>, quota: Quota) -> Result<Self> {
        Self::with_options(exec, key, quota, ModelOptions::default())
    }

    /// [`new`](Self::new) with model options (a namespace; it has no reads to
    /// route), the settings after the key as in `new`.
    ///
    /// ```
    /// # let server = redisext::testing::RedisServer::start()?;
    /// # let client = redisext::Client::open(&server.url())?;
    /// use redisext::{ModelOptions, Quota, RateLimiter};
    /// let options = ModelOptions::new().namespace("tenant:7:");
    /// let api = RateLimiter::with_options(&client, "api", Quota::per_second(5), options)?;
    /// assert_eq!(api.key().as_bytes(), b"tenant:7:api");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn with_options(exec: &E, key: impl AsRef<[u8]>, quota: Quota, options: ModelOptions) -> Result<Self> {
        let (interval_us, tolerance_us) = quota.gcra()?;
        Ok(RateLimiter { core: Core::new(exec, key, options, "string")?, quota, interval_us, tolerance_us })
    }

    /// This limiter on another executor, same key and quota.
    ///
    /// ```
    /// # let server = redisext::testing::RedisServer::start()?;
    /// # let client = redisext::Client::open(&server.url())?;
    /// # use std::time::Duration;
    /// # use redisext::{Quota, RateLimiter};
    /// # let api = RateLimiter::new(&client, "api", Quota::per_second(2))?;
    /// let pipe = client.pipeline();
    /// let slot = api.on(&pipe).acquire(1);
    /// pipe.run()?;
    /// assert!(slot.take()?.allowed);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn on<E2: Executor>(&self, exec: &E2) -> RateLimiter<E2> {
        RateLimiter {
            core: self.core.rebind(exec),
            quota: self.quota,
            interval_us: self.interval_us,
            tolerance_us: self.tolerance_us,
        }
    }

    /// The limiter's key (the namespace included).
    ///
    /// ```
    /// # let server = redisext::testing::RedisServer::start()?;
    /// # let client = redisext::Client::open(&server.url())?;
    /// # use std::time::Duration;
    /// # use redisext::{Quota, RateLimiter};
    /// # let api = RateLimiter::new(&client, "api", Quota::per_second(2))?;
    /// assert_eq!(api.key().as_bytes(), b"api");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn key(&self) -> &Key {
        self.core.key()
    }

    /// The quota this client applies.
    ///
    /// ```
    /// # let server = redisext::testing::RedisServer::start()?;
    /// # let client = redisext::Client::open(&server.url())?;
    /// # use std::time::Duration;
    /// # use redisext::{Quota, RateLimiter};
    /// # let api = RateLimiter::new(&client, "api", Quota::per_second(2))?;
    /// assert_eq!(api.quota(), Quota::per_second(2));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn quota(&self) -> Quota {
        self.quota
    }

    /// Takes `cost` units if the quota allows, else takes nothing and says how long
    /// to wait. A cost of 0 or above the burst is [`Error::InvalidArgument`] (it
    /// could never be admitted), before any round trip.
    ///
    /// ```
    /// # let server = redisext::testing::RedisServer::start()?;
    /// # let client = redisext::Client::open(&server.url())?;
    /// # use std::time::Duration;
    /// # use redisext::{Quota, RateLimiter};
    /// # let api = RateLimiter::new(&client, "api", Quota::per_second(2))?;
    /// assert!(api.acquire(2)?.allowed);
    /// let refused = api.acquire(1)?;
    /// assert!(!refused.allowed);
    /// assert!(refused.retry_after > Duration::ZERO); // when to try again
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn acquire(&self, cost: u64) -> E::Output<RateLimit> {
        let call = if cost == 0 || cost > self.quota.burst {
            Err(Error::InvalidArgument {
                op: rate_limiter::Acquire::SCRIPT.name(),
                reason: format!("cost {cost} must be between 1 and the burst, {}", self.quota.burst),
            })
        } else {
            self.core.once(|ops, op| {
                rate_limiter::Acquire {
                    tat: self.core.key(),
                    ops,
                    interval_us: self.interval_us.into(),
                    tolerance_us: self.tolerance_us.into(),
                    cost: cost.into(),
                    op,
                }
                .call(self.core.target())
            })
        };
        self.core.run(call, decode_rate_limit)
    }

    /// Forgets all past requests (deletes the key): a full burst is available.
    /// True when there was state to forget.
    ///
    /// ```
    /// # let server = redisext::testing::RedisServer::start()?;
    /// # let client = redisext::Client::open(&server.url())?;
    /// # use std::time::Duration;
    /// # use redisext::{Quota, RateLimiter};
    /// # let api = RateLimiter::new(&client, "api", Quota::per_second(2))?;
    /// api.acquire(2)?;
    /// assert!(api.reset()?);
    /// assert!(api.acquire(2)?.allowed); // a full burst again
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn reset(&self) -> E::Output<bool> {
        let call = compound::Clear { key: self.core.key(), siblings: Vec::new() }.call(self.core.target());
        self.core.run(call, decode::flag)
    }
}

fn decode_rate_limit(reply: Reply, call: &ScriptCall) -> Result<RateLimit> {
    let [allowed, remaining, retry_after, reset_after] = decode::counts::<4>(reply, call)?;
    Ok(RateLimit {
        allowed: allowed == 1,
        remaining,
        retry_after: Duration::from_micros(retry_after),
        reset_after: Duration::from_micros(reset_after),
    })
}
