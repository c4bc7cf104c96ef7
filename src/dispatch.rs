//! The dispatcher, as a state machine with no I/O of its own: it says which command
//! to send next and decides what a reply means. The blocking, async and pipeline
//! drivers all run this one machine, so the rules below exist once:
//!
//! 1. `EVALSHA` (`EVALSHA_RO` for read-only scripts);
//! 2. on `NOSCRIPT`: `SCRIPT LOAD` on the same session, check the SHA1, retry once;
//!    on a second `NOSCRIPT` (the scripts are being flushed again and again),
//!    `EVAL` of the bundled source, which no flush can refuse;
//! 3. on `WRONGTYPE`: ask `TYPE` so the error names the type found;
//! 4. never resend after a connection error, except a read-only script on a reused
//!    connection, which is retried once on a fresh one (a read cannot apply twice).

use crate::backend::Request;
use crate::call::{self, Durable, ScriptCall};
use crate::error::{Error, Result};
use crate::wire::{CommandError, Delivery, Reply, ServerError};

/// What to do after a reply.
#[derive(Debug)]
pub(crate) enum Step<'c> {
    /// Send this on the same session.
    Send(Request<'c>),
    /// Open a fresh session, then send this.
    Reconnect(Request<'c>),
    /// The operation is over: its reply, or the error to return.
    Done(Result<Reply>),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Stage {
    Eval,
    Load,
    Retry,
    Source,
    Type,
}

/// One script call going through the dispatcher.
#[derive(Debug)]
pub(crate) struct Dispatch<'c> {
    call: &'c ScriptCall,
    stage: Stage,
    reconnected: bool,
    /// For a durable write: the `WAIT` sent with each attempt.
    durable: Option<Durable>,
}

impl<'c> Dispatch<'c> {
    /// Starts a call: the first request is always its `EVALSHA`. A write is
    /// durable as the call says, else as `default` (the client's setting) says.
    pub(crate) fn start(call: &'c ScriptCall, default: Option<Durable>) -> (Dispatch<'c>, Request<'c>) {
        let durable = call.durable_or(default);
        (Dispatch { call, stage: Stage::Eval, reconnected: false, durable }, Request::Eval(call))
    }

    /// The `WAIT` to send in the same round trip as `request`, for a durable
    /// write's `EVALSHA` (or `EVAL`).
    pub(crate) fn wait_with(&self, request: &Request<'_>) -> Option<Request<'static>> {
        let durable = self.durable?;
        matches!(request, Request::Eval(_) | Request::EvalSource(_))
            .then_some(Request::Wait { replicas: durable.replicas, timeout: durable.timeout })
    }

    /// [`advance`](Self::advance) for a request sent with its `WAIT`: a write
    /// that applied is [`Error::NotReplicated`] when fewer replicas acknowledged
    /// it than asked.
    pub(crate) fn advance_durable(
        &mut self,
        outcome: Result<Reply, CommandError>,
        waited: Result<Reply, CommandError>,
        fresh: bool,
    ) -> Step<'c> {
        match (self.advance(outcome, fresh), self.durable) {
            (Step::Done(Ok(reply)), Some(durable)) => Step::Done(check_replicated(self.call, durable, reply, waited)),
            (step, _) => step,
        }
    }

    /// Decides what follows `outcome`, the result of the last request, sent on a
    /// session that was `fresh` (opened for this operation) or reused.
    pub(crate) fn advance(&mut self, outcome: Result<Reply, CommandError>, fresh: bool) -> Step<'c> {
        let call = self.call;
        match (self.stage, outcome) {
            (Stage::Eval | Stage::Retry | Stage::Source, Ok(reply)) => Step::Done(Ok(reply)),
            (Stage::Eval, Err(CommandError::Server(e))) if e.code == "NOSCRIPT" => {
                self.stage = Stage::Load;
                Step::Send(Request::Load(call.script))
            }
            (Stage::Retry, Err(CommandError::Server(e))) if e.code == "NOSCRIPT" => {
                // Flushed again between the load and the retry: send the source itself.
                self.stage = Stage::Source;
                Step::Send(Request::EvalSource(call))
            }
            (Stage::Eval | Stage::Retry | Stage::Source, Err(CommandError::Server(e))) if e.code == "WRONGTYPE" => {
                self.stage = Stage::Type;
                Step::Send(Request::Type(call.key()))
            }
            (Stage::Eval | Stage::Retry | Stage::Source, Err(CommandError::Server(e))) => {
                Step::Done(Err(server_error(call, e)))
            }
            (Stage::Eval | Stage::Retry | Stage::Source, Err(CommandError::Connection { delivery, source })) => {
                if call.script.is_read_only() && !fresh && !self.reconnected {
                    // A reused connection may have gone stale (server restart, idle
                    // timeout); a read is safe to send again on a new one.
                    self.reconnected = true;
                    self.stage = Stage::Eval;
                    Step::Reconnect(Request::Eval(call))
                } else {
                    Step::Done(Err(connection_error(call, delivery, source)))
                }
            }
            (Stage::Load, Ok(Reply::Bulk(sha1))) if sha1 == call.script.sha1().as_bytes() => {
                self.stage = Stage::Retry;
                Step::Send(Request::Eval(call))
            }
            (Stage::Load, Ok(other)) => Step::Done(Err(Error::ScriptMismatch {
                script: call.script,
                bundled: call.script.sha1(),
                server: match other {
                    Reply::Bulk(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
                    other => other.describe(),
                },
            })),
            (Stage::Load, Err(CommandError::Server(e))) => Step::Done(Err(server_error(call, e))),
            // The operation itself was refused with NOSCRIPT and has not run, whatever
            // happened to the SCRIPT LOAD.
            (Stage::Load, Err(CommandError::Connection { source, .. })) => {
                Step::Done(Err(connection_error(call, Delivery::NotSent, source)))
            }
            (Stage::Type, outcome) => Step::Done(Err(wrong_type(call, outcome))),
        }
    }
}

/// A durable write's reply, or [`Error::NotReplicated`] when the `WAIT` sent
/// after it counted fewer acknowledgements than asked (or did not answer).
pub(crate) fn check_replicated(
    call: &ScriptCall,
    durable: Durable,
    reply: Reply,
    waited: Result<Reply, CommandError>,
) -> Result<Reply> {
    let acked = match waited {
        Ok(Reply::Int(acked)) => acked.max(0).unsigned_abs(),
        _ => 0,
    };
    if acked >= u64::from(durable.replicas) {
        return Ok(reply);
    }
    Err(Error::NotReplicated {
        script: call.script,
        key: call.key().display(),
        acked,
        wanted: durable.replicas,
        reply: Box::new(reply),
    })
}

/// The error for a call refused with `WRONGTYPE`, from the reply to `TYPE key`.
pub(crate) fn wrong_type(call: &ScriptCall, type_reply: Result<Reply, CommandError>) -> Error {
    let found = match type_reply {
        Ok(Reply::Status(found)) => found,
        Ok(Reply::Bulk(found)) => String::from_utf8_lossy(&found).into_owned(),
        _ => "unknown type".to_owned(),
    };
    // The model's key is as it should be (or absent): the culprit is a sibling.
    // Asking each sibling's type would cost a round trip per key, in an error path
    // shared with pipelines; naming them is enough to act on.
    if call.keys.len() > 1 && (found == call.redis_type || found == "none") {
        let siblings = call.keys[1..].iter().map(|key| key.display()).collect();
        return Error::WrongSiblingType { script: call.script, key: call.key().display(), siblings };
    }
    Error::WrongType { script: call.script, key: call.key().display(), expected: call.redis_type, found }
}

/// A connection error for this call; the driver fills in the node's address.
pub(crate) fn connection_error(
    call: &ScriptCall,
    delivery: Delivery,
    source: Box<dyn std::error::Error + Send + Sync>,
) -> Error {
    Error::Connection {
        script: Some(call.script),
        key: Some(call.key().display()),
        node: String::new(),
        delivery,
        source,
    }
}

/// Maps an error reply to the most specific error.
pub(crate) fn server_error(call: &ScriptCall, error: ServerError) -> Error {
    let (script, key) = (call.script, call.key().display());
    if let Some(code) = error.code.strip_prefix("REDISEXT_") {
        let detail = error.message;
        return match code {
            "FULL" => Error::Full { script, key, detail },
            "SETTINGS" => Error::SettingsMismatch { script, key, detail },
            _ => Error::Refused { script, key, code: code.to_owned(), detail },
        };
    }
    // Only the scripts that do arithmetic on the stored value: elsewhere the same
    // server message would be about an argument, not the value.
    let arithmetic = [call::counter::Incr::SCRIPT, call::map::Incr::SCRIPT, call::map::Decr::SCRIPT].contains(&script);
    if arithmetic && error.code == "ERR" {
        if error.message.contains("would overflow") {
            return Error::Overflow { script, key, detail: error.message };
        }
        if error.message.contains("not an integer or out of range") {
            return Error::NotAnInteger { script, key, detail: error.message };
        }
    }
    Error::Server { script, key, code: error.code, message: error.message }
}

/// Adds the node's address to a connection error coming out of the dispatcher.
pub(crate) fn name_node(mut result: Result<Reply>, describe: impl FnOnce() -> String) -> Result<Reply> {
    if let Err(error) = &mut result {
        name_node_in(error, describe);
    }
    result
}

/// Adds the node's address to a connection error that has none yet.
pub(crate) fn name_node_in(error: &mut Error, describe: impl FnOnce() -> String) {
    if let Error::Connection { node, .. } = error
        && node.is_empty()
    {
        *node = describe();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::call::{Arg, Node, Target};
    use crate::key::Key;
    use crate::script::Script;

    const COUNTER_INCR: Script = call::counter::Incr::SCRIPT;

    fn call() -> ScriptCall {
        let target = Target { reads: Node::Replica, redis_type: "string", durable: None };
        call::counter::Incr {
            counter: &Key::new("k").unwrap(),
            ops: Vec::new(),
            amount: Arg::Int(1),
            op: Arg::Word(""),
        }
        .call(target)
        .unwrap()
    }

    fn server(code: &str) -> Result<Reply, CommandError> {
        Err(CommandError::Server(ServerError { code: code.into(), message: "x".into() }))
    }

    #[test]
    fn only_arithmetic_scripts_blame_the_stored_value() {
        let message = ServerError::parse("ERR value is not an integer or out of range");
        assert!(matches!(server_error(&call(), message.clone()), Error::NotAnInteger { .. }));
        let overflow = ServerError::parse("ERR increment or decrement would overflow");
        assert!(matches!(server_error(&call(), overflow), Error::Overflow { .. }));
        let mut expire = call();
        expire.script = call::key::Expire::SCRIPT;
        // Here the server complains about an argument, not the stored value.
        assert!(matches!(server_error(&expire, message), Error::Server { .. }));
    }

    #[test]
    fn a_wrong_type_behind_a_fine_model_key_blames_the_siblings() {
        let mut call = call();
        call.keys = vec![call.keys[0].clone(), Key::new("{k}:fence").unwrap()].into();
        for found in ["string", "none"] {
            let error = wrong_type(&call, Ok(Reply::Status(found.into())));
            let Error::WrongSiblingType { siblings, .. } = &error else { panic!("{error:?}") };
            assert_eq!(siblings[0].as_bytes(), b"{k}:fence");
            assert!(error.to_string().contains("{k}:fence"), "{error}");
        }
        assert!(matches!(wrong_type(&call, Ok(Reply::Status("hash".into()))), Error::WrongType { .. }));
    }

    #[test]
    fn reads_never_may_have_applied() {
        let error = |name| Error::Connection {
            script: crate::script::find(name),
            key: None,
            node: String::new(),
            delivery: Delivery::Unknown,
            source: "reset".into(),
        };
        assert!(error("counter/incr").may_have_applied());
        assert!(!error("counter/get").may_have_applied());
        assert!(error("counter/get").to_string().contains("a read, which changes nothing"));
    }

    fn io(delivery: Delivery) -> Result<Reply, CommandError> {
        Err(CommandError::Connection { delivery, source: "boom".into() })
    }

    #[test]
    fn noscript_loads_then_retries_once_then_sends_the_source() {
        let call = call();
        let (mut dispatch, first) = Dispatch::start(&call, None);
        assert!(matches!(first, Request::Eval(_)));
        assert!(matches!(dispatch.advance(server("NOSCRIPT"), true), Step::Send(Request::Load(_))));
        let sha1 = Reply::Bulk(COUNTER_INCR.sha1().as_bytes().to_vec());
        assert!(matches!(dispatch.advance(Ok(sha1), true), Step::Send(Request::Eval(_))));
        assert!(matches!(dispatch.advance(server("NOSCRIPT"), true), Step::Send(Request::EvalSource(_))));
        assert!(matches!(dispatch.advance(Ok(Reply::Int(1)), true), Step::Done(Ok(Reply::Int(1)))));
    }

    #[test]
    fn a_durable_write_counts_its_acknowledgements() {
        let call = call();
        let durable = Durable { replicas: 2, timeout: std::time::Duration::from_millis(100) };
        let (mut dispatch, first) = Dispatch::start(&call, Some(durable));
        assert!(matches!(dispatch.wait_with(&first), Some(Request::Wait { replicas: 2, .. })));
        let step = dispatch.advance_durable(Ok(Reply::Int(7)), Ok(Reply::Int(2)), true);
        assert!(matches!(step, Step::Done(Ok(Reply::Int(7)))), "{step:?}");
        let (mut dispatch, _) = Dispatch::start(&call, Some(durable));
        let step = dispatch.advance_durable(Ok(Reply::Int(7)), Ok(Reply::Int(1)), true);
        let Step::Done(Err(Error::NotReplicated { acked: 1, wanted: 2, reply, .. })) = step else { panic!("{step:?}") };
        assert_eq!(*reply, Reply::Int(7), "the write's reply is kept");
        let mut read = call.clone();
        read.script = call::counter::Get::SCRIPT;
        let (dispatch, first) = Dispatch::start(&read, Some(durable));
        assert!(dispatch.wait_with(&first).is_none(), "reads do not wait");
    }

    #[test]
    fn a_wrong_sha1_is_refused() {
        let call = call();
        let (mut dispatch, _) = Dispatch::start(&call, None);
        dispatch.advance(server("NOSCRIPT"), true);
        let step = dispatch.advance(Ok(Reply::Bulk(b"0000".to_vec())), true);
        assert!(matches!(step, Step::Done(Err(Error::ScriptMismatch { .. }))), "{step:?}");
    }

    #[test]
    fn writes_are_never_resent_after_an_io_error() {
        let call = call();
        let (mut dispatch, _) = Dispatch::start(&call, None);
        let step = dispatch.advance(io(Delivery::Unknown), false);
        let Step::Done(Err(error)) = step else { panic!("{step:?}") };
        assert!(error.may_have_applied());
    }

    #[test]
    fn a_failed_load_means_the_operation_did_not_run() {
        let call = call();
        let (mut dispatch, _) = Dispatch::start(&call, None);
        dispatch.advance(server("NOSCRIPT"), true);
        let step = dispatch.advance(io(Delivery::Unknown), true);
        let Step::Done(Err(error)) = step else { panic!("{step:?}") };
        assert!(!error.may_have_applied());
    }

    #[test]
    fn reads_retry_once_on_a_fresh_connection() {
        let mut call = call();
        call.script = call::counter::Get::SCRIPT;
        let (mut dispatch, _) = Dispatch::start(&call, None);
        assert!(matches!(dispatch.advance(io(Delivery::Unknown), false), Step::Reconnect(Request::Eval(_))));
        assert!(matches!(dispatch.advance(io(Delivery::Unknown), true), Step::Done(Err(Error::Connection { .. }))));
    }

    #[test]
    fn wrongtype_asks_for_the_type() {
        let call = call();
        let (mut dispatch, _) = Dispatch::start(&call, None);
        assert!(
            matches!(dispatch.advance(server("WRONGTYPE"), true), Step::Send(Request::Type(key)) if key.as_bytes() == b"k")
        );
        let step = dispatch.advance(Ok(Reply::Status("hash".into())), true);
        let Step::Done(Err(Error::WrongType { found, expected, .. })) = step else { panic!("{step:?}") };
        assert_eq!((found.as_str(), expected), ("hash", "string"));
    }
}
