//! The commands the dispatcher sends, as typed values: a backend sees which
//! script and which key each command is for (a cluster routes by [`Request::key`]
//! without reading the bytes back), and the bytes are written here, once, for
//! every backend ([`Request::write_resp`], or [`Request::for_each_arg`] for a
//! client library that frames commands itself).

use std::time::Duration;

use crate::call::{Decimal, ScriptCall};
use crate::key::Key;
use crate::script::Script;

/// One command for a [`Session`](super::Session).
#[derive(Clone, Copy, Debug)]
#[non_exhaustive]
pub enum Request<'c> {
    /// `EVALSHA sha1 numkeys keys… args…` (`EVALSHA_RO` for a read-only script).
    Eval(&'c ScriptCall),
    /// `EVAL source numkeys keys… args…` (`EVAL_RO` for a read-only script) with
    /// the script's bundled source: sent after the server refused the same call's
    /// `EVALSHA` twice with `NOSCRIPT` (its scripts are being flushed), so that no
    /// flush can fail an operation. The server caches the script under the same SHA1.
    EvalSource(&'c ScriptCall),
    /// `SCRIPT LOAD source`.
    Load(Script),
    /// `TYPE key`: what a key holds, after a `WRONGTYPE` refusal.
    Type(&'c Key),
    /// `BLPOP key timeout`: waits for a model's signal (see `Wait::on_signal`).
    Pop(&'c Key, Duration),
    /// `BLPOP key… timeout`: waits for the first signal on any of several keys,
    /// all in one hash slot (the async client's shared waiter connection). The
    /// reply is the key and the element popped, or nil.
    PopAny(&'c [Key], Duration),
    /// `MULTI`.
    Multi,
    /// `EXEC`.
    Exec,
    /// `ASKING`: lets the next command through to a cluster node importing its slot.
    Asking,
    /// `READONLY`: lets a cluster replica serve reads on this connection.
    ReadOnly,
    /// `CLUSTER SHARDS` (Redis 7): the shards, their slots and nodes.
    ClusterShards,
    /// `CLUSTER SLOTS`: which node serves which slots (before Redis 7).
    ClusterSlots,
    /// `ROLE`: whether a node is a master or a replica.
    Role,
    /// `SENTINEL get-master-addr-by-name <name>`.
    SentinelMaster(&'c str),
    /// `SENTINEL replicas <name>`.
    SentinelReplicas(&'c str),
    /// `WAIT <replicas> <timeout ms>`: after a write, until that many replicas
    /// acknowledged it (durable writes).
    Wait {
        /// How many replicas must acknowledge.
        replicas: u32,
        /// The longest wait.
        timeout: Duration,
    },
}

impl<'c> Request<'c> {
    /// The key a Redis Cluster routes the command by: the call's first key, the
    /// key of `TYPE` and `BLPOP`; `None` for commands without one (`SCRIPT LOAD`,
    /// `MULTI`, `EXEC`), which go wherever the session is.
    pub fn key(&self) -> Option<&'c Key> {
        match self {
            Request::Eval(call) | Request::EvalSource(call) => call.keys.first(),
            Request::Type(key) | Request::Pop(key, _) => Some(key),
            Request::PopAny(keys, _) => keys.first(),
            _ => None,
        }
    }

    /// The script call the command runs, if it runs one.
    pub fn call(&self) -> Option<&'c ScriptCall> {
        match self {
            Request::Eval(call) | Request::EvalSource(call) => Some(call),
            _ => None,
        }
    }

    /// True for a command that may block the connection for a while (`BLPOP`).
    pub fn is_blocking(&self) -> bool {
        matches!(self, Request::Pop(..) | Request::PopAny(..))
    }

    /// The command's name, as sent.
    pub fn name(&self) -> &'static str {
        match self {
            Request::Eval(call) if call.script.is_read_only() => "EVALSHA_RO",
            Request::Eval(_) => "EVALSHA",
            Request::EvalSource(call) if call.script.is_read_only() => "EVAL_RO",
            Request::EvalSource(_) => "EVAL",
            Request::Load(_) => "SCRIPT",
            Request::Type(_) => "TYPE",
            Request::Pop(..) | Request::PopAny(..) => "BLPOP",
            Request::Multi => "MULTI",
            Request::Exec => "EXEC",
            Request::Asking => "ASKING",
            Request::ReadOnly => "READONLY",
            Request::ClusterShards | Request::ClusterSlots => "CLUSTER",
            Request::Role => "ROLE",
            Request::SentinelMaster(_) | Request::SentinelReplicas(_) => "SENTINEL",
            Request::Wait { .. } => "WAIT",
        }
    }

    /// How many arguments the command has, its name included.
    pub fn arg_count(&self) -> usize {
        match self {
            Request::Eval(call) | Request::EvalSource(call) => 3 + call.keys.len() + call.args.len(),
            Request::Load(_) | Request::Pop(..) | Request::SentinelMaster(_) | Request::SentinelReplicas(_) => 3,
            Request::Wait { .. } => 3,
            Request::PopAny(keys, _) => 2 + keys.len(),
            Request::Type(_) | Request::ClusterShards | Request::ClusterSlots => 2,
            Request::Multi | Request::Exec | Request::Asking | Request::ReadOnly | Request::Role => 1,
        }
    }

    /// Calls `f` with each argument of the command in order, its name first.
    pub fn for_each_arg(&self, mut f: impl FnMut(&[u8])) {
        f(self.name().as_bytes());
        match self {
            Request::Eval(call) | Request::EvalSource(call) => {
                match self {
                    Request::Eval(_) => f(call.script.sha1().as_bytes()),
                    _ => f(call.script.source().as_bytes()),
                }
                for_each_call_arg(call, &mut f);
            }
            Request::Load(script) => {
                f(b"LOAD");
                f(script.source().as_bytes());
            }
            Request::Type(key) => f(key.as_bytes()),
            Request::Pop(key, timeout) => {
                f(key.as_bytes());
                f(block_seconds(*timeout).as_bytes());
            }
            Request::PopAny(keys, timeout) => {
                for key in *keys {
                    f(key.as_bytes());
                }
                f(block_seconds(*timeout).as_bytes());
            }
            Request::ClusterShards => f(b"SHARDS"),
            Request::ClusterSlots => f(b"SLOTS"),
            Request::SentinelMaster(name) => {
                f(b"get-master-addr-by-name");
                f(name.as_bytes());
            }
            Request::SentinelReplicas(name) => {
                f(b"replicas");
                f(name.as_bytes());
            }
            Request::Wait { replicas, timeout } => {
                f(Decimal::unsigned(u64::from(*replicas)).as_bytes());
                // 0 would wait forever: at least 1 ms.
                let millis = u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX).max(1);
                f(Decimal::unsigned(millis).as_bytes());
            }
            Request::Multi | Request::Exec | Request::Asking | Request::ReadOnly | Request::Role => {}
        }
    }

    /// The command's arguments, name first, copied.
    pub fn to_args(&self) -> Vec<Vec<u8>> {
        let mut args = Vec::with_capacity(self.arg_count());
        self.for_each_arg(|arg| args.push(arg.to_vec()));
        args
    }

    /// The exact length of the command in RESP (see [`write_resp`](Self::write_resp)),
    /// for sizing a send buffer once.
    pub fn resp_len(&self) -> usize {
        let bulk_len = |len: usize| 1 + decimal_len(len) + 2 + len + 2;
        let header = 1 + decimal_len(self.arg_count()) + 2;
        match self {
            // As `write_resp` writes it, lengths counted without formatting numbers.
            Request::Eval(call) if !call.script.evalsha_resp().is_empty() => {
                header
                    + call.script.evalsha_resp().len()
                    + bulk_len(decimal_len(call.keys.len()))
                    + call.keys.iter().map(|key| bulk_len(key.as_bytes().len())).sum::<usize>()
                    + call.args.iter().map(|arg| bulk_len(arg.len())).sum::<usize>()
            }
            _ => {
                let mut len = header;
                self.for_each_arg(|arg| len += bulk_len(arg.len()));
                len
            }
        }
    }

    /// Appends the command in RESP (`*<n>`, then `$<len>` and the bytes of each
    /// argument), as every Redis client sends commands.
    pub fn write_resp(&self, out: &mut Vec<u8>) {
        push_header(out, b'*', self.arg_count());
        match self {
            // The name and the SHA1 copied in one piece: a pipeline writes this once
            // per operation.
            Request::Eval(call) if !call.script.evalsha_resp().is_empty() => {
                out.extend_from_slice(call.script.evalsha_resp());
                for_each_call_arg(call, |arg| push_bulk(out, arg));
            }
            _ => self.for_each_arg(|arg| push_bulk(out, arg)),
        }
    }
}

/// Calls `f` with a script call's arguments after the script: the key count,
/// the keys, then the arguments.
fn for_each_call_arg(call: &ScriptCall, mut f: impl FnMut(&[u8])) {
    let key_count = u64::try_from(call.keys.len()).unwrap_or(u64::MAX);
    f(Decimal::unsigned(key_count).as_bytes());
    for key in call.keys.iter() {
        f(key.as_bytes());
    }
    for arg in call.args.iter() {
        arg.with_bytes(&mut f);
    }
}

/// Appends one argument: `$<len>\r\n<bytes>\r\n`.
fn push_bulk(out: &mut Vec<u8>, arg: &[u8]) {
    push_header(out, b'$', arg.len());
    out.extend_from_slice(arg);
    out.extend_from_slice(b"\r\n");
}

/// A `BLPOP` timeout: seconds as a decimal with millisecond precision, never
/// 0 (which would block forever).
fn block_seconds(timeout: Duration) -> String {
    let millis = u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX).max(1);
    format!("{}.{:03}", millis / 1000, millis % 1000)
}

/// Appends a command given as its arguments (name first) in RESP: for the
/// handshake of a new connection, whose commands are no [`Request`]s.
pub(super) fn write_command(out: &mut Vec<u8>, args: &[&[u8]]) {
    push_header(out, b'*', args.len());
    for arg in args {
        push_bulk(out, arg);
    }
}

/// Writes several requests in RESP into one buffer, reserved once to the exact size.
pub fn write_resp_all(requests: &[Request<'_>]) -> Vec<u8> {
    let mut out = Vec::with_capacity(requests.iter().map(Request::resp_len).sum());
    for request in requests {
        request.write_resp(&mut out);
    }
    out
}

/// Appends `<sigil><number>\r\n`: for the one- and two-digit counts and lengths
/// of most commands, one store of a few bytes.
#[inline]
fn push_header(out: &mut Vec<u8>, sigil: u8, number: usize) {
    match number {
        0..=9 => out.extend_from_slice(&[sigil, b'0' + number as u8, b'\r', b'\n']),
        10..=99 => {
            out.extend_from_slice(&[sigil, b'0' + (number / 10) as u8, b'0' + (number % 10) as u8, b'\r', b'\n'])
        }
        _ => {
            out.push(sigil);
            out.extend_from_slice(Decimal::unsigned(u64::try_from(number).unwrap_or(u64::MAX)).as_bytes());
            out.extend_from_slice(b"\r\n");
        }
    }
}

fn decimal_len(mut number: usize) -> usize {
    if number < 10 {
        return 1;
    }
    let mut len = 1;
    while number >= 10 {
        number /= 10;
        len += 1;
    }
    len
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::call::{Arg, Node, Target, counter};

    #[test]
    fn requests_are_packed_as_the_redis_crate_packs_them() {
        let key = Key::new("visitors").unwrap();
        let long = Key::new(vec![b'x'; 12_345]).unwrap();
        let target = Target { reads: Node::Replica, redis_type: "string", durable: None };
        let incr = counter::Incr { counter: &key, ops: Vec::new(), amount: Arg::Int(-42), op: Arg::Word("") }
            .call(target)
            .unwrap();
        let get = counter::Get { counter: &long }.call(target).unwrap();
        let signals = [key.clone(), long.clone()];
        let requests = [
            Request::Eval(&incr),
            Request::Eval(&get),
            Request::EvalSource(&get),
            Request::Load(incr.script),
            Request::Type(&key),
            Request::Pop(&key, Duration::from_millis(1500)),
            Request::PopAny(&signals, Duration::from_millis(20)),
            Request::Multi,
            Request::ClusterSlots,
            Request::ClusterShards,
            Request::SentinelMaster("mymaster"),
            Request::SentinelReplicas("mymaster"),
            Request::Wait { replicas: 2, timeout: Duration::from_millis(250) },
            Request::Role,
        ];
        for request in requests {
            let args = request.to_args();
            let mut expected = redis::cmd(std::str::from_utf8(&args[0]).unwrap());
            for arg in &args[1..] {
                expected.arg(arg);
            }
            let mut packed = Vec::new();
            request.write_resp(&mut packed);
            assert_eq!(packed, expected.get_packed_command(), "{request:?}");
            assert_eq!(packed.len(), request.resp_len(), "{request:?}");
            assert_eq!(args.len(), request.arg_count());
        }
        assert_eq!(Request::Eval(&get).name(), "EVALSHA_RO");
        assert_eq!(Request::Pop(&key, Duration::from_millis(1500)).to_args()[2], b"1.500");
        assert_eq!(Request::Pop(&key, Duration::ZERO).to_args()[2], b"0.001", "never 0, which blocks forever");
        assert_eq!(Request::PopAny(&signals, Duration::from_millis(20)).to_args()[3], b"0.020");
        assert_eq!(Request::PopAny(&signals, Duration::ZERO).key(), Some(&key), "routed by its first key");
        assert_eq!(Request::Eval(&incr).key(), Some(&key));
        assert_eq!(Request::Load(incr.script).key(), None);
    }
}
