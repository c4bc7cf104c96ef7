//! Observability: a metrics hook, always available, and (feature `tracing`)
//! spans and events through the [`tracing`](https://docs.rs/tracing) crate.
//!
//! **The metrics hook** ([`Metrics`], set with [`Builder::metrics`](crate::Builder::metrics)
//! or [`Client::with_metrics`](crate::Client::with_metrics)) is called once for every
//! script call that ends — on its own, or as a pipeline's operation; each poll of
//! a waiting operation (`pop_wait`, `acquire_wait`) is one — with the script, the
//! [`OutcomeKind`], the attempts and the latency: connect it to the metrics crate
//! of your choice. Unset, it costs a branch or two per operation.
//!
//! ```
//! # let server = redisext::testing::RedisServer::start()?;
//! # let url = server.url();
//! use std::sync::atomic::{AtomicU64, Ordering};
//! use std::sync::Arc;
//! use redisext::observe::{OperationEvent, OutcomeKind};
//! use redisext::{Client, Counter};
//!
//! let failures = Arc::new(AtomicU64::new(0));
//! let counted = Arc::clone(&failures);
//! let client = Client::builder()
//!     .url(&url) // "redis://127.0.0.1:6379/0"
//!     .metrics(move |event: &OperationEvent<'_>| {
//!         // e.g. metrics::histogram!("redis_op", "script" => event.script.name())
//!         //          .record(event.latency);
//!         if event.outcome != OutcomeKind::Ok {
//!             counted.fetch_add(1, Ordering::Relaxed);
//!         }
//!     })
//!     .build()?;
//! Counter::new(&client, "visitors")?.incr(1)?;
//! assert_eq!(failures.load(Ordering::Relaxed), 0);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! **With feature `tracing`**, under the target `redisext`:
//! - a span `redisext.call` (level DEBUG) for every script call, with the fields
//!   `script` (`model/op`), `sha1` (its first 8 hex digits), `node` (the address,
//!   without password), `attempts`, `noscript_reloads` (a `SCRIPT LOAD` after
//!   `NOSCRIPT`), `redirects` (cluster `MOVED`/`ASK` followed), `outcome` (an
//!   [`OutcomeKind`] name), `error` (when it failed), `duration_us`, and `keys`
//!   only when [`Builder::trace_keys`](crate::Builder::trace_keys) opts in (key names
//!   may be personal data: without it, `error` is a summary that names no key, and
//!   the `retrying` event's error too);
//! - a span `redisext.batch` (DEBUG) for each batch a pipeline sends to one node:
//!   `node`, `operations`, `atomic`, `attempts`, `failed` (operations that did
//!   not succeed), `duration_us`;
//! - events: `retrying` (INFO: script, attempt, pause, error) before an attempt is
//!   made again; `redirected` (DEBUG: to, asking) for each cluster redirection;
//!   `topology read` (DEBUG: masters, error) after every read of a cluster map or
//!   of the sentinels' answer, and `topology changed` (INFO: before, after) when
//!   the masters differ from the last read — a failover or a resharding.
//!
//! The spans are entered while the operation runs, so the events above land in
//! their operation's span. Without a subscriber interested in them, they cost a
//! check per operation.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::call::ScriptCall;
use crate::error::Error;
use crate::script::Script;

/// What a metrics hook learns of one operation when it ends.
#[derive(Clone, Copy, Debug)]
#[non_exhaustive]
pub struct OperationEvent<'a> {
    /// The script called (its [`name`](Script::name) is `model/op`).
    pub script: Script,
    /// How it ended.
    pub outcome: OutcomeKind,
    /// How many times it was sent (1 unless the retry policy tried again; for a
    /// pipelined operation, the attempts of its batch).
    pub attempts: u32,
    /// From the first attempt to the end (for a pipelined operation, its batch's).
    pub latency: Duration,
    /// True for an operation run in a [`Pipeline`](crate::Pipeline).
    pub pipelined: bool,
    /// The error it ended with, if any.
    pub error: Option<&'a Error>,
}

/// How an operation ended, for counting.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum OutcomeKind {
    /// The server ran it and answered a result.
    Ok,
    /// The server answered an error: a refusal by the script (a wrong type, an
    /// invalid argument) or by the server (`OOM`, `READONLY`, …).
    ServerError,
    /// The connection failed: the operation did not run, or may have.
    Connection,
    /// A durable write applied without the replicas asked for.
    NotReplicated,
    /// Any other error (a reply that does not decode, a script mismatch, …).
    Other,
}

impl OutcomeKind {
    /// The kind of `error`.
    pub fn of(error: &Error) -> OutcomeKind {
        match error {
            Error::Connection { .. } => OutcomeKind::Connection,
            Error::Server { .. } | Error::WrongType { .. } | Error::WrongSiblingType { .. } => OutcomeKind::ServerError,
            Error::NotReplicated { .. } => OutcomeKind::NotReplicated,
            _ => OutcomeKind::Other,
        }
    }

    /// A short lowercase name: `ok`, `server_error`, `connection`, `not_replicated`, `other`.
    pub fn as_str(self) -> &'static str {
        match self {
            OutcomeKind::Ok => "ok",
            OutcomeKind::ServerError => "server_error",
            OutcomeKind::Connection => "connection",
            OutcomeKind::NotReplicated => "not_replicated",
            OutcomeKind::Other => "other",
        }
    }
}

/// A receiver of one [`OperationEvent`] per operation (see the [module](self)
/// documentation). Any `Fn(&OperationEvent<'_>) + Send + Sync` is one. Called on
/// the thread (or task) that ran the operation, before its result is returned:
/// keep it quick.
pub trait Metrics: Send + Sync + 'static {
    /// One operation ended.
    fn operation(&self, event: &OperationEvent<'_>);
}

impl<F: Fn(&OperationEvent<'_>) + Send + Sync + 'static> Metrics for F {
    fn operation(&self, event: &OperationEvent<'_>) {
        self(event)
    }
}

/// What a client reports to, and how: its metrics hook and whether spans name keys.
#[derive(Clone, Default)]
pub(crate) struct Observer {
    pub(crate) metrics: Option<Arc<dyn Metrics>>,
    pub(crate) trace_keys: bool,
}

impl std::fmt::Debug for Observer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Observer")
            .field("metrics", &self.metrics.is_some())
            .field("trace_keys", &self.trace_keys)
            .finish()
    }
}

/// What a driver counts while one call runs, for its span.
#[derive(Debug, Default)]
pub(crate) struct Counts {
    pub(crate) noscript_reloads: u32,
    pub(crate) redirects: u32,
}

/// One call (or batch) being observed: when it started, and its span.
pub(crate) struct Observation {
    started: Option<Instant>,
    #[cfg(feature = "tracing")]
    pub(crate) span: tracing::Span,
}

/// Nothing entered: `Observation::enter` without feature `tracing`.
#[cfg(not(feature = "tracing"))]
pub(crate) struct NotEntered;

impl Observation {
    /// Enters the span while a blocking call runs, so that events land in it.
    #[cfg(feature = "tracing")]
    pub(crate) fn enter(&self) -> tracing::span::Entered<'_> {
        self.span.enter()
    }

    /// Enters the span while a blocking call runs (a no-op without `tracing`).
    #[cfg(not(feature = "tracing"))]
    pub(crate) fn enter(&self) -> NotEntered {
        NotEntered
    }

    /// `future` in the span, for an async call.
    #[cfg(all(feature = "tracing", feature = "tokio"))]
    pub(crate) fn instrument<F: std::future::Future>(&self, future: F) -> tracing::instrument::Instrumented<F> {
        tracing::Instrument::instrument(future, self.span.clone())
    }

    /// `future` in the span, for an async call (itself without `tracing`).
    #[cfg(all(not(feature = "tracing"), feature = "tokio"))]
    pub(crate) fn instrument<F: std::future::Future>(&self, future: F) -> F {
        future
    }
}

impl Observer {
    /// Starts observing `call`, whose node is described by `node` (only asked
    /// for when a subscriber records the span).
    pub(crate) fn start_call(&self, call: &ScriptCall, node: impl FnOnce() -> String) -> Observation {
        #[cfg(feature = "tracing")]
        {
            let script = call.script;
            let span = tracing::debug_span!(
                target: "redisext",
                "redisext.call",
                script = script.name(),
                sha1 = script.sha1().get(..8).unwrap_or(""),
                node = tracing::field::Empty,
                keys = tracing::field::Empty,
                attempts = tracing::field::Empty,
                noscript_reloads = tracing::field::Empty,
                redirects = tracing::field::Empty,
                outcome = tracing::field::Empty,
                error = tracing::field::Empty,
                duration_us = tracing::field::Empty,
            );
            if !span.is_disabled() {
                span.record("node", node().as_str());
                if self.trace_keys {
                    let keys: Vec<String> = call.keys().iter().map(|key| key.display().to_string()).collect();
                    span.record("keys", keys.join(" ").as_str());
                }
            }
            let timed = self.metrics.is_some() || !span.is_disabled();
            Observation { started: timed.then(Instant::now), span }
        }
        #[cfg(not(feature = "tracing"))]
        {
            let _ = (call, node);
            Observation { started: self.metrics.as_ref().map(|_| Instant::now()) }
        }
    }

    /// Ends the observation of `call`: records the span's last fields, and
    /// tells the metrics hook.
    pub(crate) fn finish_call(
        &self,
        observation: &Observation,
        call: &ScriptCall,
        error: Option<&Error>,
        attempts: u32,
        counts: &Counts,
    ) {
        let Some(started) = observation.started else { return };
        let latency = started.elapsed();
        let outcome = error.map_or(OutcomeKind::Ok, OutcomeKind::of);
        #[cfg(feature = "tracing")]
        {
            let span = &observation.span;
            span.record("attempts", attempts);
            span.record("noscript_reloads", counts.noscript_reloads);
            span.record("redirects", counts.redirects);
            span.record("outcome", outcome.as_str());
            if let Some(error) = error {
                if self.trace_keys {
                    span.record("error", tracing::field::display(error));
                } else {
                    span.record("error", keyless(error).as_str());
                }
            }
            span.record("duration_us", u64::try_from(latency.as_micros()).unwrap_or(u64::MAX));
        }
        #[cfg(not(feature = "tracing"))]
        let _ = counts;
        if let Some(metrics) = &self.metrics {
            metrics.operation(&OperationEvent {
                script: call.script,
                outcome,
                attempts,
                latency,
                pipelined: false,
                error,
            });
        }
    }

    /// Starts observing a batch of `operations` calls to `node` (described only
    /// when a subscriber records the span).
    pub(crate) fn start_batch(&self, operations: usize, atomic: bool, node: impl FnOnce() -> String) -> Observation {
        #[cfg(feature = "tracing")]
        {
            let span = tracing::debug_span!(
                target: "redisext",
                "redisext.batch",
                node = tracing::field::Empty,
                operations,
                atomic,
                attempts = tracing::field::Empty,
                failed = tracing::field::Empty,
                duration_us = tracing::field::Empty,
            );
            if !span.is_disabled() {
                span.record("node", node().as_str());
            }
            let timed = self.metrics.is_some() || !span.is_disabled();
            Observation { started: timed.then(Instant::now), span }
        }
        #[cfg(not(feature = "tracing"))]
        {
            let _ = (operations, atomic, node);
            Observation { started: self.metrics.as_ref().map(|_| Instant::now()) }
        }
    }

    /// Ends a batch's observation: each call's outcome (`None` for success) goes
    /// to the metrics hook.
    pub(crate) fn finish_batch<'e>(
        &self,
        observation: &Observation,
        calls: &[&ScriptCall],
        errors: impl Iterator<Item = Option<&'e Error>>,
        attempts: u32,
    ) {
        let Some(started) = observation.started else { return };
        let latency = started.elapsed();
        let mut failed = 0_u32;
        for (call, error) in calls.iter().zip(errors) {
            failed += u32::from(error.is_some());
            if let Some(metrics) = &self.metrics {
                metrics.operation(&OperationEvent {
                    script: call.script,
                    outcome: error.map_or(OutcomeKind::Ok, OutcomeKind::of),
                    attempts,
                    latency,
                    pipelined: true,
                    error,
                });
            }
        }
        #[cfg(feature = "tracing")]
        {
            let span = &observation.span;
            span.record("attempts", attempts);
            span.record("failed", failed);
            span.record("duration_us", u64::try_from(latency.as_micros()).unwrap_or(u64::MAX));
        }
        #[cfg(not(feature = "tracing"))]
        let _ = failed;
    }
}

/// What went wrong, without the key names an error's message carries: for a
/// span whose client does not name keys.
#[cfg(feature = "tracing")]
fn keyless(error: &Error) -> String {
    match error {
        Error::Server { code, .. } => format!("server error {code}"),
        Error::WrongType { expected, found, .. } => format!("the key holds a {found}, not a {expected}"),
        Error::WrongSiblingType { .. } => "a sibling key holds a wrong type".to_owned(),
        Error::Connection { node, delivery, source, .. } => format!("connection to {node} ({delivery:?}): {source}"),
        _ => OutcomeKind::of(error).as_str().to_owned(),
    }
}

impl Observer {
    /// An attempt of `script` (`None`: of a batch) failed with `error`; attempt
    /// number `attempt` follows after `pause`.
    pub(crate) fn retrying(&self, script: Option<Script>, attempt: u32, pause: Duration, error: &Error) {
        #[cfg(feature = "tracing")]
        if tracing::enabled!(target: "redisext", tracing::Level::INFO) {
            let error = if self.trace_keys { error.to_string() } else { keyless(error) };
            tracing::info!(
                target: "redisext",
                script = script.map_or("(batch)", |script| script.name()),
                attempt,
                pause_ms = u64::try_from(pause.as_millis()).unwrap_or(u64::MAX),
                error = error.as_str(),
                "retrying"
            );
        }
        #[cfg(not(feature = "tracing"))]
        let _ = (script, attempt, pause, error);
    }
}

/// A cluster node redirected a command to `to` (with `ASK` when `asking`).
pub(crate) fn redirected(to: impl FnOnce() -> String, asking: bool) {
    #[cfg(feature = "tracing")]
    if tracing::enabled!(target: "redisext", tracing::Level::DEBUG) {
        tracing::debug!(target: "redisext", to = to().as_str(), asking, "redirected");
    }
    #[cfg(not(feature = "tracing"))]
    let _ = (to, asking);
}

/// The topology was read again: the masters known `before` and `after` it, and
/// why the read failed if it did.
pub(crate) fn topology_read(before: &[String], after: &[String], error: Option<&str>) {
    #[cfg(feature = "tracing")]
    {
        tracing::debug!(target: "redisext", masters = ?after, error, "topology read");
        if before != after && !before.is_empty() {
            tracing::info!(target: "redisext", ?before, ?after, "topology changed");
        }
    }
    #[cfg(not(feature = "tracing"))]
    let _ = (before, after, error);
}

/// True when a topology read is worth describing (an event would be recorded).
pub(crate) fn topology_watched() -> bool {
    #[cfg(feature = "tracing")]
    return tracing::enabled!(target: "redisext", tracing::Level::DEBUG)
        || tracing::enabled!(target: "redisext", tracing::Level::INFO);
    #[cfg(not(feature = "tracing"))]
    false
}
