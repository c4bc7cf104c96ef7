//! When an operation is tried again, and after how long: the retry policy, with
//! no I/O of its own, followed by every driver (blocking and async, single calls
//! and batches).
//!
//! Retried, until the policy's deadline: what surely did not run — a command not
//! sent (the connection could not be opened, or failed before the write),
//! a server still `LOADING` its data, `BUSY` with a long script, a replica that
//! refuses writes (`READONLY`: a failover demoted the node) or has lost its master
//! (`MASTERDOWN`), a cluster slot in migration (`TRYAGAIN`) or a cluster without
//! quorum (`CLUSTERDOWN`) — and calls whose outcome is unknown but that settle a
//! resend (they carry a token or an operation id). Nothing else is ever resent:
//! a plain write whose outcome is unknown comes back as an error saying it may
//! have applied.

use std::time::{Duration, Instant};

use crate::error::Error;
use crate::wire::Delivery;

/// How a client retries what is safe to retry: for up to `deadline` after the
/// first attempt, pausing `first_pause`, doubled after each attempt up to
/// `max_pause` (with a little jitter, so that many clients do not retry in step).
/// After a connection error the first retry goes at once, on a new connection: a
/// connection the server closed (`CLIENT KILL`, an idle timeout) costs no pause;
/// the pauses start when that one fails too.
///
/// # What settles and what surfaces
///
/// Retried for every operation: what surely did not run — a request not sent
/// (the connection could not be opened, or failed before the write), `LOADING`,
/// `BUSY`, `READONLY`, `MASTERDOWN`, `TRYAGAIN`, `CLUSTERDOWN`. (`NOSCRIPT` is no
/// retry: the script is loaded and the call sent again, then sent as `EVAL`.)
///
/// Also retried, although the outcome is unknown (the request went out, no reply
/// came): calls that settle a resend. They carry a client token — Semaphore
/// acquire, release and extend, ResourcePool checkout, checkin and extend,
/// ReliableQueue pop, ack and nack, Lock acquire, release and extend — or, in
/// [exactly-once mode](crate::ModelOptions::exactly_once), an operation id; and
/// every read. The same bytes go out again and the script answers what the first
/// attempt got (the same permit, lease or delivery; the first result), so the
/// caller sees a plain result. One consequence: a release, checkin or ack whose
/// first attempt applied unseen answers `false` (no longer held) to the resend,
/// as it would after a lapse; either way the capacity is free.
///
/// Surfaces: a plain write (no token, exactly-once off) with an unknown outcome,
/// as [`Error::Connection`](crate::Error::Connection) whose
/// [`may_have_applied`](crate::Error::may_have_applied) is true; any error once
/// the deadline has passed (the last one); every refusal by the server (`OOM`,
/// `WRONGTYPE`, the models' own). In a pipeline the same holds call by call,
/// except that a call is not sent again once a later call on its key was
/// answered (the resend would reorder them); a transaction
/// ([`run_atomic`](crate::Pipeline::run_atomic)) is sent again whole or not at all.
///
/// ```
/// use std::time::Duration;
/// use redisext::{Client, RetryPolicy};
/// let client = Client::builder()
///     .master("redis://127.0.0.1:6379/0")
///     .retry(RetryPolicy::default().deadline(Duration::from_secs(30)))
///     .build()?;
/// let impatient = client.with_retry(RetryPolicy::never());
/// # Ok::<(), redisext::Error>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RetryPolicy {
    deadline: Duration,
    first_pause: Duration,
    max_pause: Duration,
}

impl RetryPolicy {
    /// No retries: every error is returned at once.
    pub const fn never() -> RetryPolicy {
        RetryPolicy { deadline: Duration::ZERO, first_pause: Duration::ZERO, max_pause: Duration::ZERO }
    }

    /// Retries for up to `deadline` after the first attempt (default 10 s: long
    /// enough for a failover or a restart with a small data set).
    pub const fn deadline(mut self, deadline: Duration) -> RetryPolicy {
        self.deadline = deadline;
        self
    }

    /// The first pause, and the longest (defaults 10 ms and 500 ms).
    pub const fn backoff(mut self, first_pause: Duration, max_pause: Duration) -> RetryPolicy {
        self.first_pause = first_pause;
        self.max_pause = max_pause;
        self
    }

    /// How long retrying may take.
    pub fn deadline_after_first_attempt(&self) -> Duration {
        self.deadline
    }

    /// True when the policy never retries.
    pub fn is_never(&self) -> bool {
        self.deadline.is_zero()
    }
}

impl Default for RetryPolicy {
    fn default() -> RetryPolicy {
        RetryPolicy {
            deadline: Duration::from_secs(10),
            first_pause: Duration::from_millis(10),
            max_pause: Duration::from_millis(500),
        }
    }
}

/// How a client sends: its retry policy, and the durable-write setting applied
/// to the writes of models without one of their own.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Sending {
    pub(crate) retry: RetryPolicy,
    pub(crate) durable: Option<crate::call::Durable>,
}

/// True when `error` says the operation surely did not run and may be sent again
/// (or, with `resendable`, that sending it again cannot apply it twice).
pub(crate) fn is_retryable(error: &Error, resendable: bool) -> bool {
    match error {
        Error::Connection { delivery: Delivery::NotSent, .. } => true,
        Error::Connection { delivery: Delivery::Unknown, .. } => resendable,
        Error::Server { code, .. } => {
            matches!(code.as_str(), "LOADING" | "BUSY" | "READONLY" | "MASTERDOWN" | "TRYAGAIN" | "CLUSTERDOWN")
        }
        _ => false,
    }
}

/// One operation's retries under a policy.
#[derive(Debug)]
pub(crate) struct Retrying {
    policy: RetryPolicy,
    started: Instant,
    next_pause: Duration,
    /// How many attempts have been made.
    pub(crate) attempts: u32,
}

impl Retrying {
    /// Starts the clock, as the first attempt is made.
    pub(crate) fn start(policy: RetryPolicy) -> Retrying {
        Retrying { policy, started: Instant::now(), next_pause: policy.first_pause, attempts: 1 }
    }

    /// The pause before the next attempt after an attempt failed with `error`, or
    /// `None` when the operation ends with that error: it is not safe to retry,
    /// or the deadline would pass first.
    pub(crate) fn after(&mut self, error: &Error, resendable: bool) -> Option<Duration> {
        if !is_retryable(error, resendable) {
            return None;
        }
        let elapsed = self.started.elapsed();
        let left = self.policy.deadline.checked_sub(elapsed).filter(|left| !left.is_zero())?;
        self.attempts += 1;
        if self.attempts == 2 && matches!(error, Error::Connection { .. }) {
            // The failed connection is replaced by a new one: a connection the
            // server closed (a kill, an idle timeout) costs no pause. Pauses
            // start if the new one fails too (the server is down or restarting).
            return Some(Duration::ZERO);
        }
        let pause = jitter(self.next_pause).min(left);
        self.next_pause = self.next_pause.saturating_mul(2).min(self.policy.max_pause);
        Some(pause)
    }
}

/// `pause` less up to a quarter of it, chosen from the clock: enough to keep many
/// clients retrying after one failover from doing so in lockstep.
fn jitter(pause: Duration) -> Duration {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.subsec_nanos());
    let quarter = pause / 4;
    pause - quarter.mul_f64(f64::from(nanos % 1000) / 1000.0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::key::Key;

    fn server(code: &str) -> Error {
        Error::Server {
            script: crate::call::counter::Incr::SCRIPT,
            key: Key::new("k").unwrap().display(),
            code: code.into(),
            message: String::new(),
        }
    }

    fn connection(delivery: Delivery) -> Error {
        Error::Connection { script: None, key: None, node: String::new(), delivery, source: "reset".into() }
    }

    #[test]
    fn only_what_surely_did_not_run_is_retried_unless_the_call_settles_a_resend() {
        for code in ["LOADING", "BUSY", "READONLY", "MASTERDOWN", "TRYAGAIN", "CLUSTERDOWN"] {
            assert!(is_retryable(&server(code), false), "{code}");
        }
        for code in ["ERR", "OOM", "WRONGTYPE", "NOSCRIPT"] {
            assert!(!is_retryable(&server(code), false), "{code}");
        }
        assert!(is_retryable(&connection(Delivery::NotSent), false));
        assert!(!is_retryable(&connection(Delivery::Unknown), false), "a plain write is never resent");
        assert!(is_retryable(&connection(Delivery::Unknown), true), "a call carrying a token is");
    }

    #[test]
    fn pauses_double_up_to_the_longest_and_stop_at_the_deadline() {
        let policy = RetryPolicy::default()
            .deadline(Duration::from_secs(60))
            .backoff(Duration::from_millis(8), Duration::from_millis(20));
        let mut retrying = Retrying::start(policy);
        let error = server("LOADING");
        let pauses: Vec<Duration> = (0..4).map(|_| retrying.after(&error, false).unwrap()).collect();
        for (pause, nominal) in pauses.iter().zip([8, 16, 20, 20]) {
            let nominal = Duration::from_millis(nominal);
            assert!(*pause <= nominal && *pause >= nominal - nominal / 4, "{pause:?} for {nominal:?}");
        }
        assert_eq!(retrying.attempts, 5);
        // After a failed connection the first retry, on a new one, is at once.
        let mut retrying = Retrying::start(policy);
        let error = connection(Delivery::NotSent);
        assert_eq!(retrying.after(&error, false), Some(Duration::ZERO));
        let pause = retrying.after(&error, false).unwrap();
        assert!(pause <= Duration::from_millis(8) && pause >= Duration::from_millis(6), "then {pause:?}");
        assert_eq!(Retrying::start(RetryPolicy::never()).after(&error, false), None);
        let mut expired = Retrying::start(RetryPolicy::default().deadline(Duration::from_nanos(1)));
        std::thread::sleep(Duration::from_millis(1));
        assert_eq!(expired.after(&error, false), None, "past the deadline");
    }
}
