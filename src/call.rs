//! Script calls: which script, its `KEYS` and `ARGV`, and the node it is sent to.
//!
//! Every call is built by the struct that `build.rs` generates for its script
//! from the script's header comment: the Rust call of `lua/<model>/<op>.lua` is
//! `call::<model>::<Op>`, whose fields are the header's `KEYS` and `ARGV` names.
//! Nothing else in the crate writes a script's key or argument order.

use std::borrow::Cow;
use std::sync::Arc;
use std::time::Duration;

use crate::error::{Error, Result};
use crate::key::{Key, MAX_BULK_LEN};
use crate::once::OpId;
use crate::script::Script;

/// Which server an operation is sent to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Node {
    /// The master: every write, and reads of models set to read from the master.
    Master,
    /// The replica when one is configured (else the master): reads.
    Replica,
}

/// One argument of a script call. Numbers stay numbers until they are written
/// to the connection, so building a call allocates nothing for them.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Arg {
    /// A signed integer, sent in decimal.
    Int(i64),
    /// An unsigned integer, sent in decimal.
    Uint(u64),
    /// Bytes, sent as they are (an encoded value, a token).
    Bytes(Vec<u8>),
    /// A constant word (`"1"`, `"evict"`).
    Word(&'static str),
}

impl Arg {
    /// Calls `f` with the argument's bytes (a number formatted on the stack).
    pub fn with_bytes<R>(&self, f: impl FnOnce(&[u8]) -> R) -> R {
        match self {
            Arg::Int(n) => f(Decimal::signed(*n).as_bytes()),
            Arg::Uint(n) => f(Decimal::unsigned(*n).as_bytes()),
            Arg::Bytes(bytes) => f(bytes),
            Arg::Word(word) => f(word.as_bytes()),
        }
    }

    /// The argument's bytes.
    pub fn to_bytes(&self) -> Cow<'_, [u8]> {
        match self {
            Arg::Bytes(bytes) => Cow::Borrowed(bytes),
            Arg::Word(word) => Cow::Borrowed(word.as_bytes()),
            number => Cow::Owned(number.with_bytes(<[u8]>::to_vec)),
        }
    }

    /// The number of bytes sent.
    pub fn len(&self) -> usize {
        match self {
            Arg::Bytes(bytes) => bytes.len(),
            Arg::Word(word) => word.len(),
            // Counted, not formatted: a pipeline sizes every call's command.
            Arg::Int(n) => usize::from(*n < 0) + digits(n.unsigned_abs()),
            Arg::Uint(n) => digits(*n),
        }
    }

    /// True for an empty argument.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// How many decimal digits `n` has.
fn digits(n: u64) -> usize {
    n.checked_ilog10().map_or(1, |log| log as usize + 1)
}

macro_rules! arg_from {
    ($($source:ty => $variant:ident as $target:ty),* $(,)?) => {
        $(impl From<$source> for Arg {
            fn from(value: $source) -> Arg {
                Arg::$variant(<$target>::from(value))
            }
        })*
    };
}

arg_from!(i64 => Int as i64, i32 => Int as i64, u64 => Uint as u64, u32 => Uint as u64, u16 => Uint as u64);

impl From<Vec<u8>> for Arg {
    fn from(bytes: Vec<u8>) -> Arg {
        Arg::Bytes(bytes)
    }
}

impl From<&'static str> for Arg {
    fn from(word: &'static str) -> Arg {
        Arg::Word(word)
    }
}

impl From<bool> for Arg {
    /// `"1"` or `"0"`, as the scripts take flags.
    fn from(flag: bool) -> Arg {
        Arg::Word(if flag { "1" } else { "0" })
    }
}

/// A number in decimal ASCII, on the stack.
pub(crate) struct Decimal {
    digits: [u8; 20],
    start: usize,
}

impl Decimal {
    pub(crate) fn unsigned(mut number: u64) -> Decimal {
        let mut decimal = Decimal { digits: [0; 20], start: 20 };
        loop {
            decimal.start -= 1;
            decimal.digits[decimal.start] = b'0' + (number % 10) as u8;
            number /= 10;
            if number == 0 {
                return decimal;
            }
        }
    }

    fn signed(number: i64) -> Decimal {
        let mut decimal = Decimal::unsigned(number.unsigned_abs());
        if number < 0 {
            // 20 digits hold u64::MAX; i64's magnitude has at most 19.
            decimal.start -= 1;
            decimal.digits[decimal.start] = b'-';
        }
        decimal
    }

    pub(crate) fn as_bytes(&self) -> &[u8] {
        &self.digits[self.start..]
    }
}

/// Durable writes: each write waits, in the same round trip, until this many
/// replicas have acknowledged it (`WAIT replicas timeout`). Fewer acknowledgements
/// in time are [`Error::NotReplicated`]: the write applied on the master, and may
/// be lost if the master fails before its replicas catch up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Durable {
    /// How many replicas must acknowledge each write.
    pub replicas: u32,
    /// How long to wait for them.
    pub timeout: Duration,
}

/// Where a model's calls go and what its key holds: the part of a call the
/// generated structs take from the model.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Target {
    /// Where read-only scripts go ([`Node::Replica`] unless the model reads from
    /// the master); writes always go to the master.
    pub(crate) reads: Node,
    /// The Redis type at the model's key, for the error on `WRONGTYPE`.
    pub(crate) redis_type: &'static str,
    /// Durable writes for this model (else the client's setting).
    pub(crate) durable: Option<Durable>,
}

impl Target {
    /// The same target with reads on the master: for reads that must never see a
    /// lagging replica (a lock's state).
    pub(crate) fn reads_from_master(self) -> Target {
        Target { reads: Node::Master, ..self }
    }
}

/// A call's keys. Most calls have one, kept inline: a pipeline holds one call
/// per operation until it runs, and the common case then needs no allocation of
/// its own.
#[derive(Clone, Debug)]
pub(crate) enum Keys {
    One(Key),
    Many(Box<[Key]>),
}

impl Keys {
    /// The `fixed` keys, then the `rest` (a variadic `KEYS` line).
    pub(crate) fn of<const N: usize>(fixed: [&Key; N], rest: Vec<&Key>) -> Keys {
        if let ([key], true) = (fixed.as_slice(), rest.is_empty()) {
            return Keys::One((*key).clone());
        }
        Keys::Many(fixed.into_iter().chain(rest).cloned().collect())
    }
}

impl std::ops::Deref for Keys {
    type Target = [Key];

    fn deref(&self) -> &[Key] {
        match self {
            Keys::One(key) => std::slice::from_ref(key),
            Keys::Many(keys) => keys,
        }
    }
}

impl From<Vec<Key>> for Keys {
    fn from(mut keys: Vec<Key>) -> Keys {
        match (keys.pop(), keys.is_empty()) {
            (Some(key), true) => Keys::One(key),
            (Some(last), false) => {
                keys.push(last);
                Keys::Many(keys.into_boxed_slice())
            }
            (None, _) => Keys::Many(Box::new([])),
        }
    }
}

/// A call's arguments: one or two (most calls) kept inline, for the same reason
/// as [`Keys`].
#[derive(Clone, Debug)]
pub(crate) enum Args {
    One([Arg; 1]),
    Two([Arg; 2]),
    Many(Box<[Arg]>),
}

impl std::ops::Deref for Args {
    type Target = [Arg];

    fn deref(&self) -> &[Arg] {
        match self {
            Args::One(args) => args,
            Args::Two(args) => args,
            Args::Many(args) => args,
        }
    }
}

impl From<[Arg; 1]> for Args {
    fn from(args: [Arg; 1]) -> Args {
        Args::One(args)
    }
}

impl From<[Arg; 2]> for Args {
    fn from(args: [Arg; 2]) -> Args {
        Args::Two(args)
    }
}

impl From<Vec<Arg>> for Args {
    fn from(args: Vec<Arg>) -> Args {
        Args::Many(args.into_boxed_slice())
    }
}

/// One script invocation, fully described.
#[derive(Clone, Debug)]
pub struct ScriptCall {
    pub(crate) script: Script,
    // Boxed slices, and the durable setting boxed: a big pipeline holds one call
    // per operation until it runs.
    pub(crate) keys: Keys,
    pub(crate) args: Args,
    pub(crate) node: Node,
    pub(crate) redis_type: &'static str,
    /// True when sending the call again cannot apply it twice: it carries a token
    /// or an operation id that the script recognises (an acquisition resent with
    /// its token returns what the first attempt got). After an outcome that is
    /// unknown (a connection lost after sending), the client then settles it by
    /// resending instead of reporting that it may have applied.
    pub(crate) resendable: bool,
    /// For a write: the model's durable-write setting.
    pub(crate) durable: Option<Box<Durable>>,
    /// In exactly-once mode, the operation id the call carries: it holds the id's
    /// lane for as long as the call (and so any resend of it) lives.
    pub(crate) op: Option<Arc<OpId>>,
}

impl ScriptCall {
    /// This call's durable-write setting: its own, else `default` (the
    /// client's); none for a read.
    pub(crate) fn durable_or(&self, default: Option<Durable>) -> Option<Durable> {
        if self.script.is_read_only() { None } else { self.durable.as_deref().copied().or(default) }
    }

    /// A call of `script` (which the generated structs name), refusing arguments
    /// over the server's bulk limit before anything is sent.
    pub(crate) fn new(
        script: Script,
        target: Target,
        keys: impl Into<Keys>,
        args: impl Into<Args>,
    ) -> Result<ScriptCall> {
        let args = args.into();
        // Only bytes can be that long (a number has at most 20 digits).
        if let Some(arg) = args.iter().find(|arg| matches!(arg, Arg::Bytes(bytes) if bytes.len() > MAX_BULK_LEN)) {
            return Err(Error::TooLarge { what: "value", len: arg.len(), max: MAX_BULK_LEN });
        }
        let node = if script.is_read_only() { target.reads } else { Node::Master };
        let durable = if script.is_read_only() { None } else { target.durable.map(Box::new) };
        let keys = keys.into();
        Ok(ScriptCall {
            script,
            keys,
            args,
            node,
            redis_type: target.redis_type,
            resendable: script.is_read_only(),
            op: None,
            durable,
        })
    }

    /// Marks the call as safe to send again after an unknown outcome: its script
    /// returns the first attempt's result to a resend (a token or operation id in
    /// its arguments). Read-only calls are resendable already.
    pub(crate) fn resendable(mut self) -> ScriptCall {
        self.resendable = true;
        self
    }

    /// The call carrying the exactly-once operation id `op` (which its arguments
    /// name), resendable: the script returns the first attempt's result to a resend.
    pub(crate) fn carrying(mut self, op: OpId) -> ScriptCall {
        self.op = Some(Arc::new(op));
        self.resendable()
    }

    /// True when sending the call again cannot apply it twice: it is read-only, or
    /// it carries a token or an operation id that its script recognises.
    pub fn is_resendable(&self) -> bool {
        self.resendable
    }

    /// The script this call runs.
    pub fn script(&self) -> Script {
        self.script
    }

    /// The keys passed as `KEYS`, in order.
    pub fn keys(&self) -> &[Key] {
        &self.keys
    }

    /// The arguments passed as `ARGV`, in order.
    pub fn args(&self) -> &[Arg] {
        &self.args
    }

    /// The node the call is routed to.
    pub fn node(&self) -> Node {
        self.node
    }

    /// The model's key (`KEYS[1]`): every script names one (the build script
    /// refuses a header without `KEYS[1]`).
    pub fn key(&self) -> &Key {
        &self.keys[0]
    }
}

include!(concat!(env!("OUT_DIR"), "/calls.rs"));

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_and_arguments_kept_inline_read_as_the_same_slices() {
        let (a, b) = (Key::new("a").unwrap(), Key::new("b").unwrap());
        assert!(matches!(Keys::of([&a], Vec::new()), Keys::One(_)));
        assert_eq!(&*Keys::of([&a], vec![&b]), [a.clone(), b.clone()]);
        assert_eq!(&*Keys::of([&a, &b], Vec::new()), [a.clone(), b.clone()]);
        assert_eq!(&*Keys::from(vec![b.clone()]), std::slice::from_ref(&b));
        assert_eq!(&*Keys::from(vec![a.clone(), b.clone()]), [a, b]);
        let bytes = |args: &Args| args.iter().map(|arg| arg.to_bytes().into_owned()).collect::<Vec<_>>();
        assert_eq!(bytes(&Args::from([Arg::Int(-1)])), [b"-1".to_vec()]);
        assert_eq!(bytes(&Args::from([Arg::Uint(2), Arg::Word("x")])), [b"2".to_vec(), b"x".to_vec()]);
        assert_eq!(bytes(&Args::from(vec![Arg::Int(1), Arg::Int(2), Arg::Int(3)])).len(), 3);
        assert!(Args::from(Vec::new()).is_empty());
    }

    #[test]
    fn numbers_are_sent_in_decimal() {
        for n in [0, 1, -1, 9, 10, -10, 99, -99, 100, -100, 123, 999_999, -1_000_000, i64::MAX, i64::MIN] {
            assert_eq!(Arg::Int(n).to_bytes().as_ref(), n.to_string().as_bytes());
            assert_eq!(Arg::Int(n).len(), n.to_string().len());
        }
        for n in [0, 7, 9, 10, 99, 100, 10_000_000_000, u64::MAX] {
            assert_eq!(Arg::Uint(n).to_bytes().as_ref(), n.to_string().as_bytes());
            assert_eq!(Arg::Uint(n).len(), n.to_string().len());
        }
        assert_eq!(Arg::from(true).to_bytes().as_ref(), b"1");
    }

    #[test]
    fn generated_calls_keep_the_header_order() {
        let target = Target { reads: Node::Replica, redis_type: "list", durable: None };
        let [ready, items, deliveries, inflight, dead, foreign, delayed, tokens] = [
            "q",
            "{q}:items",
            "{q}:deliveries",
            "{q}:inflight",
            "{q}:dead",
            "{q}:foreign",
            "{q}:delayed",
            "{q}:tokens",
        ]
        .map(|k| Key::new(k).unwrap());
        let call = reliable_queue::Pop {
            tokens: &tokens,
            foreign: &foreign,
            delayed: &delayed,
            token: b"t".to_vec().into(),
            ready: &ready,
            items: &items,
            deliveries: &deliveries,
            inflight: &inflight,
            dead: &dead,
            limit: 100u64.into(),
            visibility_ms: 30_000u64.into(),
            max_deliveries: 5u32.into(),
        }
        .call(target)
        .unwrap();
        let header = call.script().header();
        let key_names: Vec<&str> = header.keys.iter().map(|param| param.name.as_str()).collect();
        assert_eq!(key_names, ["ready", "items", "deliveries", "inflight", "dead", "foreign", "delayed", "tokens"]);
        assert_eq!(call.keys(), &[ready, items, deliveries, inflight, dead, foreign, delayed, tokens]);
        let args: Vec<_> = call.args().iter().map(|arg| arg.to_bytes().into_owned()).collect();
        assert_eq!(args, [b"30000".to_vec(), b"5".to_vec(), b"100".to_vec(), b"t".to_vec()]);
        assert_eq!(call.node(), Node::Master, "a write goes to the master");
    }
}
