//! One definition of each model operation: which script, which keys, which
//! arguments, where it may run, and how its reply is decoded. Blocking clients,
//! async clients and pipelines all execute these same descriptions.

use crate::call::ScriptCall;
use crate::error::{Error, Result};
use crate::key::Key;
use crate::serializer::Serializer;
use crate::wire::{Reply, preview};

/// A model operation ready to run: a [`ScriptCall`] and how to decode its reply
/// into `T`. Building it may already have failed (a value the serializer cannot
/// encode); executing such an operation returns that error without a round trip.
pub struct Op<T> {
    pub(crate) call: Result<ScriptCall>,
    pub(crate) decode: Decoder<T>,
}

/// Turns a script's reply into the operation's result.
pub(crate) type Decoder<T> = fn(Reply, &ScriptCall) -> Result<T>;

impl<T> Op<T> {
    pub(crate) fn new(call: Result<ScriptCall>, decode: Decoder<T>) -> Op<T> {
        Op { call, decode }
    }

    /// The call this operation makes, or the error that stopped it being built.
    pub fn call(&self) -> Result<&ScriptCall, &Error> {
        self.call.as_ref()
    }
}

/// Runs model operations. [`Client`](crate::Client) returns `Result<T>` directly;
/// other executors (async clients, pipelines) return a future or a slot.
///
/// Every model method is written once, generic over its executor, and returns
/// `E::Output<T>`: for the blocking client that is simply [`Result<T>`](crate::Result).
///
/// The trait is sealed: the crate's executors are [`Client`](crate::Client),
/// `AsyncClient` (feature `tokio`) and [`Pipeline`](crate::Pipeline). To bring
/// another client library, implement [`Backend`](crate::Backend) instead.
pub trait Executor: Clone + sealed::Sealed {
    /// What executing an operation yielding `T` gives back.
    type Output<T: Send + 'static>;

    /// Executes one operation.
    fn execute<T: Send + 'static>(&self, op: Op<T>) -> Self::Output<T>;

    /// Executes an operation that yields `None` when it cannot proceed yet (no free
    /// member, lock held), again and again until it yields `Some` or `wait.timeout`
    /// passes (then `None`). Between attempts it blocks on the wait's signal key
    /// (`BLPOP`, on the client's shared waiter connection, for at most the wait's recheck interval
    /// when it has one) or, without one, sleeps with backoff.
    /// A [`Pipeline`](crate::Pipeline) makes exactly one attempt: a batch cannot
    /// wait without holding up all its other operations.
    fn execute_waiting<T: Send + 'static>(&self, op: Op<Option<T>>, wait: Wait) -> Self::Output<Option<T>>;
}

pub(crate) mod sealed {
    /// Keeps [`Executor`](super::Executor) implemented by this crate only.
    pub trait Sealed {}
}

/// How an operation waits between attempts (see [`Executor::execute_waiting`]).
#[derive(Clone, Debug)]
pub struct Wait {
    pub(crate) timeout: std::time::Duration,
    pub(crate) signal: Option<Key>,
    pub(crate) recheck: Option<std::time::Duration>,
}

impl Wait {
    /// Polls with exponential backoff (2 ms doubling to 100 ms) for up to `timeout`.
    pub(crate) fn polling(timeout: std::time::Duration) -> Wait {
        Wait { timeout, signal: None, recheck: None }
    }

    /// Blocks on `BLPOP signal` between attempts, for up to `timeout`. The model's
    /// scripts push to `signal` whenever an attempt could now succeed.
    pub(crate) fn on_signal(timeout: std::time::Duration, signal: Key) -> Wait {
        Wait { timeout, signal: Some(signal), recheck: None }
    }

    /// Blocks on the signal for at most `interval` at a time, so that a change no
    /// script signals (a lease or deadline that simply passes) is noticed within
    /// `interval`.
    pub(crate) fn recheck_every(mut self, interval: std::time::Duration) -> Wait {
        self.recheck = Some(interval);
        self
    }

    /// The longest pause between polls.
    pub(crate) const MAX_PAUSE: std::time::Duration = std::time::Duration::from_millis(100);
    /// The longest one `BLPOP` on the signal blocks before the next attempt.
    pub(crate) const MAX_BLOCK: std::time::Duration = std::time::Duration::from_secs(60);
    /// The first pause between polls.
    pub(crate) const FIRST_PAUSE: std::time::Duration = std::time::Duration::from_millis(2);
}

/// What to do between two attempts of a waiting operation.
#[derive(Debug)]
pub(crate) enum Pause<'w> {
    /// `BLPOP` the signal key, on the client's shared waiter connection, for at most this long.
    Signal(&'w Key, std::time::Duration),
    /// Sleep this long, then poll again.
    Sleep(std::time::Duration),
}

/// The schedule of a waiting operation's pauses: every driver (blocking, async)
/// follows this one, so they wait the same way.
#[derive(Debug)]
pub(crate) struct Waiting<'w> {
    wait: &'w Wait,
    /// `None` when the timeout is too long to represent: wait without end.
    deadline: Option<std::time::Instant>,
    next_sleep: std::time::Duration,
    /// Set after the signal connection failed: sleep instead of blocking on it
    /// for the next pause (the next attempt tells whether the server is back).
    signal_failed: bool,
}

impl<'w> Waiting<'w> {
    /// Starts the clock: the deadline is `wait.timeout` from now.
    pub(crate) fn start(wait: &'w Wait) -> Waiting<'w> {
        Waiting {
            wait,
            deadline: std::time::Instant::now().checked_add(wait.timeout),
            next_sleep: Wait::FIRST_PAUSE,
            signal_failed: false,
        }
    }

    /// The pause after an attempt that could not proceed, or `None` when the
    /// deadline has passed (the operation then yields `None`).
    pub(crate) fn next_pause(&mut self) -> Option<Pause<'w>> {
        let remaining = match self.deadline {
            Some(deadline) => deadline.checked_duration_since(std::time::Instant::now()).filter(|d| !d.is_zero())?,
            None => std::time::Duration::MAX,
        };
        Some(match &self.wait.signal {
            Some(signal) if !std::mem::take(&mut self.signal_failed) => {
                // With a recheck interval, block at most that long: a deadline that
                // passes is signalled by no script.
                let block = self.wait.recheck.unwrap_or(Wait::MAX_BLOCK).min(Wait::MAX_BLOCK);
                Pause::Signal(signal, block.min(remaining))
            }
            Some(_) => Pause::Sleep(self.wait.recheck.unwrap_or(Wait::MAX_PAUSE).min(Wait::MAX_PAUSE).min(remaining)),
            None => {
                let sleep = self.next_sleep.min(remaining);
                self.next_sleep = (self.next_sleep * 2).min(Wait::MAX_PAUSE);
                Pause::Sleep(sleep)
            }
        })
    }

    /// The signal connection failed (a restart, a failover, a killed connection).
    /// That says nothing about the operation, whose last attempt did run: the
    /// driver drops that connection and the next pause is a plain sleep.
    pub(crate) fn signal_failed(&mut self) {
        self.signal_failed = true;
    }
}

/// Encodes a value with a model's serializer, naming the key on failure.
pub(crate) fn encode<S: Serializer>(key: &Key, value: &S::Value) -> Result<Vec<u8>> {
    // Refused before the copy: a value over the limit would briefly double the
    // client's memory for nothing.
    if let Some(len) = S::encoded_len(value).filter(|len| *len > crate::key::MAX_BULK_LEN) {
        return Err(Error::TooLarge { what: "value", len, max: crate::key::MAX_BULK_LEN });
    }
    S::encode(value).map_err(|reason| Error::Encode { key: key.display(), serializer: S::name(), reason })
}

/// Decodes stored bytes with a model's serializer, naming the key on failure.
pub(crate) fn decode_bytes<S: Serializer>(bytes: &[u8], call: &ScriptCall) -> Result<S::Owned> {
    S::decode(bytes).map_err(|reason| Error::Decode {
        key: call.key().display(),
        serializer: S::name(),
        reason,
        preview: preview(bytes, 48),
    })
}

/// The error for a reply of the wrong shape.
pub(crate) fn unexpected(reply: &Reply, call: &ScriptCall) -> Error {
    Error::UnexpectedReply { script: call.script, key: call.key().display(), reply: reply.describe() }
}

/// Decoders shared by many operations.
pub(crate) mod decode {
    use super::*;

    /// An integer reply.
    pub(crate) fn int(reply: Reply, call: &ScriptCall) -> Result<i64> {
        match reply {
            Reply::Int(n) => Ok(n),
            other => Err(unexpected(&other, call)),
        }
    }

    /// An integer reply read as a flag (non-zero = true).
    pub(crate) fn flag(reply: Reply, call: &ScriptCall) -> Result<bool> {
        int(reply, call).map(|n| n != 0)
    }

    /// A status reply (`OK`), returned as unit.
    pub(crate) fn ok(reply: Reply, call: &ScriptCall) -> Result<()> {
        match reply {
            Reply::Status(_) => Ok(()),
            other => Err(unexpected(&other, call)),
        }
    }

    /// Nil or a stored value, decoded by the serializer.
    pub(crate) fn optional<S: Serializer>(reply: Reply, call: &ScriptCall) -> Result<Option<S::Owned>> {
        match reply {
            Reply::Nil => Ok(None),
            Reply::Bulk(bytes) => decode_bytes::<S>(&bytes, call).map(Some),
            other => Err(unexpected(&other, call)),
        }
    }

    /// A non-negative integer reply: a length or a number of members.
    pub(crate) fn count(reply: Reply, call: &ScriptCall) -> Result<u64> {
        match reply {
            Reply::Int(n) if n >= 0 => Ok(n.unsigned_abs()),
            other => Err(unexpected(&other, call)),
        }
    }

    /// Nil or an item a script has just removed (a pop). Bytes the serializer
    /// cannot decode are returned whole in [`Error::PoppedUndecodable`], since the
    /// item is no longer in Redis.
    pub(crate) fn popped<S: Serializer>(reply: Reply, call: &ScriptCall) -> Result<Option<S::Owned>> {
        match reply {
            Reply::Nil => Ok(None),
            Reply::Bulk(bytes) => match S::decode(&bytes) {
                Ok(value) => Ok(Some(value)),
                Err(reason) => Err(Error::PoppedUndecodable {
                    script: call.script,
                    key: call.key().display(),
                    serializer: S::name(),
                    reason,
                    bytes,
                }),
            },
            other => Err(unexpected(&other, call)),
        }
    }

    /// An array of items a script has just removed (evicted), each decoded as
    /// [`popped`] decodes one.
    pub(crate) fn popped_list<S: Serializer>(reply: Reply, call: &ScriptCall) -> Result<Vec<S::Owned>> {
        match reply {
            Reply::Array(items) => items
                .into_iter()
                .map(|item| popped::<S>(item, call)?.ok_or_else(|| unexpected(&Reply::Nil, call)))
                .collect(),
            other => Err(unexpected(&other, call)),
        }
    }

    /// An array of non-negative integers, exactly `N` of them.
    pub(crate) fn counts<const N: usize>(reply: Reply, call: &ScriptCall) -> Result<[u64; N]> {
        let mut out = [0; N];
        match reply {
            Reply::Array(items) if items.len() == N => {
                for (slot, item) in out.iter_mut().zip(items) {
                    *slot = count(item, call)?;
                }
                Ok(out)
            }
            other => Err(unexpected(&other, call)),
        }
    }

    /// Nil or a non-negative integer.
    pub(crate) fn optional_count(reply: Reply, call: &ScriptCall) -> Result<Option<u64>> {
        match reply {
            Reply::Nil => Ok(None),
            other => count(other, call).map(Some),
        }
    }

    /// An array of stored values, each decoded by the serializer, in order.
    pub(crate) fn list<S: Serializer>(reply: Reply, call: &ScriptCall) -> Result<Vec<S::Owned>> {
        match reply {
            Reply::Array(items) => items
                .into_iter()
                .map(|item| match item {
                    Reply::Bulk(bytes) => decode_bytes::<S>(&bytes, call),
                    other => Err(unexpected(&other, call)),
                })
                .collect(),
            other => Err(unexpected(&other, call)),
        }
    }

    /// Nil or a stored decimal integer (Counter).
    pub(crate) fn optional_int(reply: Reply, call: &ScriptCall) -> Result<Option<i64>> {
        optional::<crate::serializer::Numeric>(reply, call)
    }
}
