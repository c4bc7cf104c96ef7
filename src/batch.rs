//! The batch dispatcher: the pipeline counterpart of [`dispatch`](crate::dispatch),
//! a state machine with no I/O of its own. It plans the commands that run a batch
//! of script calls on one node in one round trip, reads their replies, and says what
//! became of each call. The blocking and async pipeline drivers both run it.
//!
//! Its rules, on top of the single-call ones:
//!
//! 1. Every script of the batch is loaded (`SCRIPT LOAD`) in the same round trip,
//!    before the first `EVALSHA`: a batch never relies on scripts being cached
//!    (another client's commands may run between its calls, see 3). A plain
//!    batch of one call is sent as a single call is, without a load: nothing can
//!    run inside it, so its `NOSCRIPT` is handled by 3 as the whole tail.
//! 2. Atomic batches are `MULTI`, the loads, the `EVALSHA`s, `EXEC`. The loads run
//!    inside the transaction, so nothing can flush the scripts between a load and
//!    its `EVALSHA`. (Redis 7.0 queues an `EVALSHA` of a missing script without
//!    complaint and fails it with `NOSCRIPT` at `EXEC`, while the rest of the
//!    transaction applies — so loading before `MULTI` would not be enough.)
//! 3. In a plain pipeline another client may still flush the scripts between our
//!    load and an `EVALSHA`. A call refused with `NOSCRIPT` did not run. When the
//!    refused calls are the whole tail of the batch (a flush empties the whole
//!    cache, so they are), the tail is loaded and sent again, so every call runs
//!    once and in order; refused again, the tail is sent as `EVAL` of the bundled
//!    sources, which no flush can refuse. Otherwise (a call after them did run)
//!    resending would change the order: those calls end with
//!    [`Error::ScriptVanished`] and the batch says which ran.
//! 4. `WRONGTYPE` is followed by `TYPE`, as for single calls (one more round trip
//!    for all of them).
//! 5. After a connection error nothing is resent, except a batch made only of
//!    reads on a reused connection, sent once more on a fresh one.

use crate::backend::Request;
use crate::call::{Durable, ScriptCall};
use crate::dispatch::{check_replicated, connection_error, name_node_in, server_error, wrong_type};
use crate::error::{Error, Result};
use crate::retry::{Retrying, is_retryable};
use crate::script::Script;
use crate::wire::{CommandError, Delivery, Reply, ServerError, is_connection_error};

/// What became of one call of a batch.
#[derive(Debug)]
pub(crate) enum Outcome {
    /// The server answered: the reply, or the call's own error.
    Answered(std::result::Result<Reply, Box<Error>>),
    /// The call surely did not run.
    NotRun(Box<Error>),
    /// The call may or may not have run.
    Unknown(Box<Error>),
}

impl Outcome {
    /// True when the call may be sent again (see [`retry`](crate::retry)): it
    /// surely did not run, or its outcome is unknown and it settles a resend.
    pub(crate) fn is_retryable(&self, call: &ScriptCall) -> bool {
        match self {
            Outcome::Answered(Ok(_)) => false,
            Outcome::Answered(Err(error)) | Outcome::NotRun(error) | Outcome::Unknown(error) => {
                is_retryable(error, call.resendable)
            }
        }
    }

    /// The error of an outcome that is one.
    pub(crate) fn error(&self) -> Option<&Error> {
        match self {
            Outcome::Answered(Ok(_)) => None,
            Outcome::Answered(Err(error)) | Outcome::NotRun(error) | Outcome::Unknown(error) => Some(error),
        }
    }

    /// The outcome of a call that met a connection error.
    fn connection(call: &ScriptCall, delivery: Delivery, source: Box<dyn std::error::Error + Send + Sync>) -> Outcome {
        let error = connection_error(call, delivery, source);
        match delivery {
            Delivery::NotSent => Outcome::NotRun(Box::new(error)),
            Delivery::Unknown => Outcome::Unknown(Box::new(error)),
        }
    }
}

/// Which calls of a batch to send again, and after what pause, as the retry
/// policy allows: those that surely did not run (or settle a resend), unless a
/// later call on the same key was answered — sending it again would reorder them.
/// An atomic batch is sent again whole or not at all. `None` when the outcomes
/// stand.
pub(crate) fn to_resend(
    retrying: &mut Retrying,
    outcomes: &[Outcome],
    calls: &[&ScriptCall],
    atomic: bool,
) -> Option<(std::time::Duration, Vec<usize>)> {
    let retryable: Vec<bool> = outcomes.iter().zip(calls).map(|(outcome, call)| outcome.is_retryable(call)).collect();
    let part: Vec<usize> = if atomic {
        if !retryable.iter().all(|r| *r) {
            return None;
        }
        (0..calls.len()).collect()
    } else {
        (0..calls.len())
            .filter(|&index| {
                retryable[index]
                    && !(index + 1..calls.len())
                        .any(|later| !retryable[later] && calls[later].key() == calls[index].key())
            })
            .collect()
    };
    let first = outcomes.get(*part.first()?)?.error()?;
    let resendable = part.iter().all(|&index| calls[index].resendable);
    retrying.after(first, resendable).map(|pause| (pause, part))
}

/// Adds the node's address to the connection errors among `outcomes`.
pub(crate) fn name_nodes(mut outcomes: Vec<Outcome>, describe: impl Fn() -> String) -> Vec<Outcome> {
    for outcome in &mut outcomes {
        match outcome {
            Outcome::Answered(Err(error)) | Outcome::NotRun(error) | Outcome::Unknown(error) => {
                name_node_in(error, &describe)
            }
            Outcome::Answered(Ok(_)) => {}
        }
    }
    outcomes
}

/// What to do after the replies to a round trip.
#[derive(Debug)]
pub(crate) enum BatchStep<'c> {
    /// Send these commands, pipelined, on the same session.
    Send(Vec<Request<'c>>),
    /// Open a fresh session, then send these.
    Reconnect(Vec<Request<'c>>),
    /// Every call has its outcome, in the order of the calls.
    Done(Vec<Outcome>),
}

#[derive(Debug)]
enum Stage {
    /// The loads and `EVALSHA`s of the calls from this position on are in flight.
    Run { from: usize },
    /// The `TYPE`s of the calls refused with `WRONGTYPE` are in flight.
    Type,
}

/// Why a script of the batch could not be loaded.
#[derive(Debug)]
enum LoadFailure {
    /// The server computed another SHA1 than the bundled one.
    Mismatch(String),
    /// The server refused `SCRIPT LOAD`.
    Refused(ServerError),
}

/// A batch of script calls for one node going through the batch dispatcher.
#[derive(Debug)]
pub(crate) struct Batch<'c> {
    calls: Vec<&'c ScriptCall>,
    atomic: bool,
    outcomes: Vec<Option<Outcome>>,
    wrong_type: Vec<usize>,
    stage: Stage,
    /// How often a flushed tail was sent again: once loaded, then as sources.
    resent: u8,
    reconnected: bool,
    /// The `WAIT` sent after the batch's commands, when some are durable writes:
    /// the most replicas and the longest timeout any of them asks for.
    wait: Option<Durable>,
    /// The client's durable-write setting, for the calls without their own.
    default_durable: Option<Durable>,
    /// The acknowledgements the last `WAIT` counted.
    acked: Option<u64>,
}

impl<'c> Batch<'c> {
    /// Starts a batch (`atomic`: as one MULTI/EXEC transaction) and gives the
    /// commands of its first round trip.
    /// Writes are durable as each call says, else as `default` (the client's
    /// setting) says: one `WAIT` then follows the batch.
    pub(crate) fn start(
        calls: Vec<&'c ScriptCall>,
        atomic: bool,
        default: Option<Durable>,
    ) -> (Batch<'c>, Vec<Request<'c>>) {
        let wait = calls
            .iter()
            .filter_map(|call| call.durable_or(default))
            .reduce(|a, b| Durable { replicas: a.replicas.max(b.replicas), timeout: a.timeout.max(b.timeout) });
        let batch = Batch {
            outcomes: calls.iter().map(|_| None).collect(),
            calls,
            atomic,
            wrong_type: Vec::new(),
            stage: Stage::Run { from: 0 },
            resent: 0,
            reconnected: false,
            wait,
            default_durable: default,
            acked: None,
        };
        let requests = batch.run_requests(0);
        (batch, requests)
    }

    /// The distinct scripts of the calls from `from` on, in order of first use.
    fn scripts(&self, from: usize) -> Vec<Script> {
        let mut scripts: Vec<Script> = Vec::new();
        for call in &self.calls[from..] {
            if !scripts.contains(&call.script) {
                scripts.push(call.script);
            }
        }
        scripts
    }

    /// True once a flushed tail is sent as sources (`EVAL`): no loads then.
    fn by_source(&self) -> bool {
        self.resent >= 2
    }

    /// The scripts loaded ahead of the calls from `from` on. A plain batch of one
    /// call sends none, at first, as a single call does: its `NOSCRIPT` is always
    /// the whole tail (nothing of the batch ran), so loading and sending it again
    /// costs a round trip only when the script is missing, while a load ahead of
    /// every one-call batch would double its commands.
    fn loads(&self, from: usize) -> Vec<Script> {
        let lone_call = !self.atomic && self.resent == 0 && self.calls.len() - from == 1;
        if self.by_source() || lone_call { Vec::new() } else { self.scripts(from) }
    }

    fn run_requests(&self, from: usize) -> Vec<Request<'c>> {
        let mut requests = Vec::with_capacity(self.calls.len() - from + 4);
        if self.atomic {
            requests.push(Request::Multi);
        }
        requests.extend(self.loads(from).into_iter().map(Request::Load));
        let by_source = self.by_source();
        requests.extend(
            self.calls[from..]
                .iter()
                .map(|call| if by_source { Request::EvalSource(call) } else { Request::Eval(call) }),
        );
        if self.atomic {
            requests.push(Request::Exec);
        }
        if let Some(wait) = self.wait {
            requests.push(Request::Wait { replicas: wait.replicas, timeout: wait.timeout });
        }
        requests
    }

    /// Every call that has no outcome yet gets one from `error`, met while opening
    /// a session: nothing of it was sent.
    pub(crate) fn fail(self, error: CommandError) -> Vec<Outcome> {
        let (delivery, message) = match &error {
            CommandError::Connection { delivery, source } => (*delivery, source.to_string()),
            CommandError::Server(e) => (Delivery::NotSent, e.to_string()),
        };
        let calls = self.calls;
        self.outcomes
            .into_iter()
            .zip(calls)
            .map(|(outcome, call)| {
                outcome.unwrap_or_else(|| Outcome::connection(call, delivery, message.clone().into()))
            })
            .collect()
    }

    /// Decides what follows the replies to the last round trip, sent on a session
    /// that was `fresh` (opened for this batch) or reused.
    pub(crate) fn advance(&mut self, mut replies: Vec<Result<Reply, CommandError>>, fresh: bool) -> BatchStep<'c> {
        let expected = match self.stage {
            Stage::Run { from } => {
                self.loads(from).len()
                    + (self.calls.len() - from)
                    + if self.atomic { 2 } else { 0 }
                    + usize::from(self.wait.is_some())
            }
            Stage::Type => self.wrong_type.len(),
        };
        // A backend that answered fewer replies than commands: the missing ones are
        // unknown (the commands may have run).
        while replies.len() < expected {
            replies.push(Err(CommandError::Connection {
                delivery: Delivery::Unknown,
                source: "the session returned fewer replies than commands sent".into(),
            }));
        }
        replies.truncate(expected);
        match self.stage {
            Stage::Run { from } => self.after_run(from, replies, fresh),
            Stage::Type => {
                for (index, reply) in std::mem::take(&mut self.wrong_type).into_iter().zip(replies) {
                    self.outcomes[index] = Some(Outcome::Answered(Err(Box::new(wrong_type(self.calls[index], reply)))));
                }
                self.done()
            }
        }
    }

    fn after_run(&mut self, from: usize, mut replies: Vec<Result<Reply, CommandError>>, fresh: bool) -> BatchStep<'c> {
        let all_reads = self.calls[from..].iter().all(|call| call.script.is_read_only());
        if all_reads && !fresh && !self.reconnected && replies.iter().any(is_connection_error) {
            // A reused connection may have gone stale; reads cannot apply twice.
            self.reconnected = true;
            return BatchStep::Reconnect(self.run_requests(from));
        }
        if self.wait.is_some() {
            self.acked = match replies.pop() {
                Some(Ok(Reply::Int(acked))) => Some(acked.max(0).unsigned_abs()),
                _ => Some(0),
            };
        }
        let scripts = self.loads(from);
        if self.atomic {
            let exec = replies.pop().unwrap_or_else(|| Ok(Reply::Nil));
            let queued = replies.split_off(1 + scripts.len());
            match exec {
                Ok(Reply::Array(items)) if items.len() == scripts.len() + queued.len() => {
                    // Inside EXEC's reply, each command's error is an element.
                    replies = items
                        .into_iter()
                        .map(|item| match item {
                            Reply::Error(error) => Err(CommandError::Server(error)),
                            other => Ok(other),
                        })
                        .collect();
                }
                other => return self.transaction_failed(from, other, queued),
            }
        }
        let evals = replies.split_off(scripts.len());
        let failures = load_failures(&scripts, replies);
        let mut noscript = Vec::new();
        for (index, reply) in (from..).zip(evals) {
            let call = self.calls[index];
            let outcome = match reply {
                Ok(reply) => Outcome::Answered(Ok(reply)),
                Err(CommandError::Server(e)) if e.code == "NOSCRIPT" => {
                    match failures.iter().find(|(s, _)| *s == call.script) {
                        Some((_, failure)) => Outcome::NotRun(Box::new(failure.error(call))),
                        None => {
                            noscript.push(index);
                            continue;
                        }
                    }
                }
                Err(CommandError::Server(e)) if e.code == "WRONGTYPE" => {
                    self.wrong_type.push(index);
                    continue;
                }
                Err(CommandError::Server(e)) => Outcome::Answered(Err(Box::new(server_error(call, e)))),
                Err(CommandError::Connection { delivery, source }) => Outcome::connection(call, delivery, source),
            };
            self.outcomes[index] = Some(outcome);
        }
        if let Some(&first) = noscript.first() {
            let whole_tail = noscript.len() == self.calls.len() - first;
            if whole_tail && !self.atomic && !self.by_source() {
                // Nothing from `first` on ran: send it all again, in order.
                self.resent += 1;
                self.stage = Stage::Run { from: first };
                return BatchStep::Send(self.run_requests(first));
            }
            for index in noscript {
                let script = self.calls[index].script;
                self.outcomes[index] = Some(Outcome::NotRun(Box::new(Error::ScriptVanished { script })));
            }
        }
        self.done()
    }

    /// EXEC did not answer one reply per queued command: the transaction did not
    /// run, or its fate is unknown. `queued` holds the replies to the queued
    /// `EVALSHA`s.
    fn transaction_failed(
        &mut self,
        from: usize,
        exec: Result<Reply, CommandError>,
        queued: Vec<Result<Reply, CommandError>>,
    ) -> BatchStep<'c> {
        for (index, queued) in (from..).zip(queued) {
            let call = self.calls[index];
            let not_applied = |reason: String| {
                Outcome::NotRun(Box::new(Error::NotApplied { script: call.script, key: call.key().display(), reason }))
            };
            self.outcomes[index] = Some(match (&exec, queued) {
                // This command is why the transaction was aborted.
                (Err(CommandError::Server(_)), Err(CommandError::Server(e))) => {
                    Outcome::NotRun(Box::new(server_error(call, e)))
                }
                (Err(CommandError::Server(e)), _) => not_applied(format!("the transaction was aborted: {e}")),
                (Ok(Reply::Nil), _) => not_applied("EXEC answered nil: the transaction was discarded".to_owned()),
                (Err(CommandError::Connection { delivery, source }), _) => {
                    Outcome::connection(call, *delivery, source.to_string().into())
                }
                (Ok(other), _) => Outcome::Unknown(Box::new(Error::UnexpectedReply {
                    script: call.script,
                    key: call.key().display(),
                    reply: format!("EXEC answered {}", other.describe()),
                })),
            });
        }
        self.done()
    }

    /// Asks for the types behind `WRONGTYPE` refusals, or ends the batch.
    fn done(&mut self) -> BatchStep<'c> {
        if !self.wrong_type.is_empty() && !matches!(self.stage, Stage::Type) {
            self.stage = Stage::Type;
            let calls = &self.calls;
            return BatchStep::Send(self.wrong_type.iter().map(|&index| Request::Type(calls[index].key())).collect());
        }
        // Durable writes that applied, but that too few replicas acknowledged.
        if let Some(acked) = self.acked {
            for (index, outcome) in self.outcomes.iter_mut().enumerate() {
                if let (Some(durable), Some(Outcome::Answered(result @ Ok(_)))) =
                    (self.calls[index].durable_or(self.default_durable), outcome.as_mut())
                    && let Ok(reply) = std::mem::replace(result, Ok(Reply::Nil))
                {
                    *result = check_replicated(
                        self.calls[index],
                        durable,
                        reply,
                        Ok(Reply::Int(i64::try_from(acked).unwrap_or(i64::MAX))),
                    )
                    .map_err(Box::new);
                }
            }
        }
        let outcomes = std::mem::take(&mut self.outcomes);
        BatchStep::Done(
            outcomes
                .into_iter()
                .zip(&self.calls)
                .map(|(outcome, call)| {
                    outcome.unwrap_or_else(|| {
                        // Every path above gives each call an outcome; should one be
                        // missed, say so rather than claim anything about it.
                        Outcome::Unknown(Box::new(Error::UnexpectedReply {
                            script: call.script,
                            key: call.key().display(),
                            reply: "no outcome recorded for this call".to_owned(),
                        }))
                    })
                })
                .collect(),
        )
    }
}

/// The scripts whose `SCRIPT LOAD` failed. A load that met a connection error is
/// left out: the `EVALSHA`s after it met one too.
fn load_failures(scripts: &[Script], replies: Vec<Result<Reply, CommandError>>) -> Vec<(Script, LoadFailure)> {
    let mut failures = Vec::new();
    for (script, reply) in scripts.iter().zip(replies) {
        let failure = match reply {
            Ok(Reply::Bulk(sha1)) if sha1 == script.sha1().as_bytes() => continue,
            Ok(Reply::Bulk(sha1)) => LoadFailure::Mismatch(String::from_utf8_lossy(&sha1).into_owned()),
            Ok(other) => LoadFailure::Mismatch(other.describe()),
            Err(CommandError::Server(e)) => LoadFailure::Refused(e),
            Err(CommandError::Connection { .. }) => continue,
        };
        failures.push((*script, failure));
    }
    failures
}

impl LoadFailure {
    fn error(&self, call: &ScriptCall) -> Error {
        match self {
            LoadFailure::Mismatch(server) => {
                Error::ScriptMismatch { script: call.script, bundled: call.script.sha1(), server: server.clone() }
            }
            LoadFailure::Refused(e) => server_error(call, e.clone()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::call::{self, Arg, Node, Target};
    use crate::key::Key;

    const COUNTER_GET: Script = call::counter::Get::SCRIPT;
    const COUNTER_INCR: Script = call::counter::Incr::SCRIPT;
    const MAP_INCR: Script = call::map::Incr::SCRIPT;

    fn call(script: Script, key: &str) -> ScriptCall {
        let target = Target { reads: Node::Master, redis_type: "string", durable: None };
        ScriptCall::new(script, target, vec![Key::new(key).unwrap()], vec![Arg::Int(1)]).unwrap()
    }

    fn loaded(script: Script) -> Result<Reply, CommandError> {
        Ok(Reply::Bulk(script.sha1().as_bytes().to_vec()))
    }

    fn server(code: &str) -> Result<Reply, CommandError> {
        Err(CommandError::Server(ServerError { code: code.into(), message: "x".into() }))
    }

    fn io(delivery: Delivery) -> Result<Reply, CommandError> {
        Err(CommandError::Connection { delivery, source: "boom".into() })
    }

    fn names(requests: &[Request<'_>]) -> Vec<String> {
        requests
            .iter()
            .map(|r| match r {
                Request::Eval(call) => format!("eval {}", call.script.name()),
                Request::EvalSource(call) => format!("source {}", call.script.name()),
                Request::Load(script) => format!("load {}", script.name()),
                other => other.name().to_ascii_lowercase(),
            })
            .collect()
    }

    fn done(step: BatchStep<'_>) -> Vec<Outcome> {
        match step {
            BatchStep::Done(outcomes) => outcomes,
            other => panic!("not done: {other:?}"),
        }
    }

    #[test]
    fn scripts_are_loaded_before_the_calls_in_one_round_trip() {
        let calls = [call(COUNTER_INCR, "a"), call(MAP_INCR, "b"), call(COUNTER_INCR, "c")];
        let (_, requests) = Batch::start(calls.iter().collect(), false, None);
        assert_eq!(
            names(&requests),
            ["load counter/incr", "load map/incr", "eval counter/incr", "eval map/incr", "eval counter/incr"]
        );
        let (_, requests) = Batch::start(calls.iter().collect(), true, None);
        assert_eq!(names(&requests).first().map(String::as_str), Some("multi"));
        assert_eq!(names(&requests)[1..3], ["load counter/incr", "load map/incr"]);
        assert_eq!(names(&requests).last().map(String::as_str), Some("exec"));
    }

    #[test]
    fn a_plain_batch_of_one_call_is_sent_as_a_single_call_and_loaded_on_noscript() {
        let calls = [call(COUNTER_INCR, "a")];
        let (mut batch, requests) = Batch::start(calls.iter().collect(), false, None);
        assert_eq!(names(&requests), ["eval counter/incr"]);
        let BatchStep::Send(again) = batch.advance(vec![server("NOSCRIPT")], true) else { panic!("no retry") };
        assert_eq!(names(&again), ["load counter/incr", "eval counter/incr"]);
        let outcomes = done(batch.advance(vec![loaded(COUNTER_INCR), Ok(Reply::Int(1))], true));
        assert!(matches!(outcomes[..], [Outcome::Answered(Ok(Reply::Int(1)))]), "{outcomes:?}");
        // In a transaction the load stays inside it (a NOSCRIPT at EXEC is not resent).
        let (_, requests) = Batch::start(calls.iter().collect(), true, None);
        assert_eq!(names(&requests), ["multi", "load counter/incr", "eval counter/incr", "exec"]);
    }

    #[test]
    fn a_flushed_tail_is_sent_again_once() {
        let calls = [call(COUNTER_INCR, "a"), call(MAP_INCR, "b"), call(COUNTER_INCR, "c")];
        let (mut batch, _) = Batch::start(calls.iter().collect(), false, None);
        let replies =
            vec![loaded(COUNTER_INCR), loaded(MAP_INCR), Ok(Reply::Int(1)), server("NOSCRIPT"), server("NOSCRIPT")];
        let BatchStep::Send(again) = batch.advance(replies, true) else { panic!("no retry") };
        assert_eq!(names(&again), ["load map/incr", "load counter/incr", "eval map/incr", "eval counter/incr"]);
        let replies = vec![loaded(MAP_INCR), loaded(COUNTER_INCR), Ok(Reply::Int(2)), Ok(Reply::Int(3))];
        let outcomes = done(batch.advance(replies, true));
        assert!(outcomes.iter().all(|o| matches!(o, Outcome::Answered(Ok(_)))), "{outcomes:?}");
    }

    #[test]
    fn a_gap_is_never_resent_and_says_which_ran() {
        // The middle call lost its script, the last one ran (another client had
        // loaded its script again): resending the middle one would reorder them.
        let calls = [call(COUNTER_INCR, "a"), call(MAP_INCR, "b"), call(COUNTER_INCR, "c")];
        let (mut batch, _) = Batch::start(calls.iter().collect(), false, None);
        let replies =
            vec![loaded(COUNTER_INCR), loaded(MAP_INCR), Ok(Reply::Int(1)), server("NOSCRIPT"), Ok(Reply::Int(1))];
        let outcomes = done(batch.advance(replies, true));
        assert!(matches!(outcomes[0], Outcome::Answered(Ok(Reply::Int(1)))));
        assert!(
            matches!(&outcomes[1], Outcome::NotRun(e) if matches!(**e, Error::ScriptVanished { script } if script == MAP_INCR))
        );
        assert!(matches!(outcomes[2], Outcome::Answered(Ok(Reply::Int(1)))));
    }

    #[test]
    fn a_second_flush_of_the_tail_sends_the_sources() {
        let calls = [call(COUNTER_INCR, "a"), call(MAP_INCR, "b")];
        let (mut batch, _) = Batch::start(calls.iter().collect(), false, None);
        let flushed = vec![loaded(COUNTER_INCR), loaded(MAP_INCR), server("NOSCRIPT"), server("NOSCRIPT")];
        assert!(matches!(batch.advance(flushed, true), BatchStep::Send(_)));
        let flushed = vec![loaded(COUNTER_INCR), loaded(MAP_INCR), server("NOSCRIPT"), server("NOSCRIPT")];
        let BatchStep::Send(sources) = batch.advance(flushed, true) else { panic!("no second retry") };
        assert_eq!(names(&sources), ["source counter/incr", "source map/incr"]);
        let outcomes = done(batch.advance(vec![Ok(Reply::Int(1)), Ok(Reply::Int(1))], true));
        assert!(outcomes.iter().all(|o| matches!(o, Outcome::Answered(Ok(Reply::Int(1))))), "{outcomes:?}");
    }

    #[test]
    fn an_aborted_transaction_ran_nothing() {
        let calls = [call(COUNTER_INCR, "a"), call(COUNTER_INCR, "b")];
        let (mut batch, _) = Batch::start(calls.iter().collect(), true, None);
        let replies = vec![
            Ok(Reply::Status("OK".into())),
            Ok(Reply::Status("QUEUED".into())),
            Ok(Reply::Status("QUEUED".into())),
            server("OOM"),
            server("EXECABORT"),
        ];
        let outcomes = done(batch.advance(replies, true));
        assert!(matches!(&outcomes[0], Outcome::NotRun(e) if matches!(**e, Error::NotApplied { .. })), "{outcomes:?}");
        assert!(
            matches!(&outcomes[1], Outcome::NotRun(e) if matches!(&**e, Error::Server { code, .. } if code == "OOM")),
            "{outcomes:?}"
        );
    }

    #[test]
    fn a_transaction_whose_exec_reply_was_lost_is_unknown() {
        let calls = [call(COUNTER_INCR, "a")];
        let (mut batch, _) = Batch::start(calls.iter().collect(), true, None);
        let ok = || Ok(Reply::Status("OK".into()));
        let outcomes = done(batch.advance(vec![ok(), ok(), ok(), io(Delivery::Unknown)], false));
        assert!(matches!(&outcomes[0], Outcome::Unknown(e) if matches!(**e, Error::Connection { .. })), "{outcomes:?}");
    }

    #[test]
    fn errors_inside_exec_belong_to_their_call() {
        let calls = [call(COUNTER_INCR, "a"), call(COUNTER_INCR, "b")];
        let (mut batch, _) = Batch::start(calls.iter().collect(), true, None);
        let ok = || Ok(Reply::Status("OK".into()));
        let exec = Ok(Reply::Array(vec![
            Reply::Bulk(COUNTER_INCR.sha1().as_bytes().to_vec()),
            Reply::Int(1),
            Reply::Error(ServerError::parse("WRONGTYPE Operation against a key holding the wrong kind of value")),
        ]));
        let BatchStep::Send(types) = batch.advance(vec![ok(), ok(), ok(), ok(), exec], true) else { panic!() };
        assert_eq!(names(&types), ["type"]);
        let outcomes = done(batch.advance(vec![Ok(Reply::Status("list".into()))], true));
        assert!(matches!(outcomes[0], Outcome::Answered(Ok(Reply::Int(1)))));
        assert!(
            matches!(&outcomes[1], Outcome::Answered(Err(e)) if matches!(&**e, Error::WrongType { found, .. } if found == "list"))
        );
    }

    #[test]
    fn only_batches_of_reads_are_resent_after_a_connection_error() {
        let reads = [call(COUNTER_GET, "a")];
        let (mut batch, _) = Batch::start(reads.iter().collect(), false, None);
        let step = batch.advance(vec![io(Delivery::Unknown), io(Delivery::Unknown)], false);
        assert!(matches!(step, BatchStep::Reconnect(_)), "{step:?}");
        let outcomes = done(batch.advance(vec![io(Delivery::Unknown), io(Delivery::Unknown)], true));
        assert!(matches!(outcomes[0], Outcome::Unknown(_)));

        let writes = [call(COUNTER_INCR, "a"), call(COUNTER_INCR, "b")];
        let (mut batch, _) = Batch::start(writes.iter().collect(), false, None);
        let replies = vec![loaded(COUNTER_INCR), Ok(Reply::Int(1)), io(Delivery::Unknown)];
        let outcomes = done(batch.advance(replies, false));
        assert!(matches!(outcomes[0], Outcome::Answered(Ok(_))));
        assert!(matches!(outcomes[1], Outcome::Unknown(_)), "a write is never resent");
    }

    #[test]
    fn a_wrong_sha1_fails_only_the_calls_of_that_script() {
        let calls = [call(COUNTER_INCR, "a"), call(MAP_INCR, "b")];
        let (mut batch, _) = Batch::start(calls.iter().collect(), false, None);
        let replies = vec![Ok(Reply::Bulk(b"0000".to_vec())), loaded(MAP_INCR), server("NOSCRIPT"), Ok(Reply::Int(1))];
        let outcomes = done(batch.advance(replies, true));
        assert!(
            matches!(&outcomes[0], Outcome::NotRun(e) if matches!(**e, Error::ScriptMismatch { .. })),
            "{outcomes:?}"
        );
        assert!(matches!(outcomes[1], Outcome::Answered(Ok(_))));
    }
}
