//! The crate's error type: every failure a caller can act on has its own variant.

use std::fmt;
use std::sync::Arc;

use crate::connection::DsnError;
use crate::receipt::{Delivered, Lease};
use crate::script::Script;
use crate::wire::{Delivery, escape_bytes, preview};

/// A `Result` whose error is [`enum@Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in redisext.
///
/// Messages never contain a password. Keys are shown with non-printable bytes
/// escaped, and values only as a short preview.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A DSN could not be parsed; nothing was contacted.
    #[error(transparent)]
    Dsn(#[from] DsnError),

    /// A configuration value is out of range (a pool of size 0, a zero timeout…).
    #[error("invalid configuration: {0}")]
    Config(String),

    /// A model was given an empty key; nothing was sent.
    #[error("empty key: Redis keys used by redisext models must not be empty")]
    EmptyKey,

    /// An argument is out of range; nothing was sent.
    #[error("invalid argument for {op}: {reason}")]
    InvalidArgument {
        /// The operation, as `model/op`.
        op: &'static str,
        /// What is wrong with it.
        reason: String,
    },

    /// A value or key is larger than Redis accepts (512 MiB); nothing was sent.
    #[error("{what} is {len} bytes, more than the {max} bytes Redis accepts; nothing was sent")]
    TooLarge {
        /// What was too large (`key` or `value`).
        what: &'static str,
        /// Its length in bytes.
        len: usize,
        /// The largest length accepted.
        max: usize,
    },

    /// `expire` was called without a duration on a model that has no default expiry.
    #[error("no expiry given for key {key} and the model has no default expiry")]
    NoDefaultExpiry {
        /// The model's key.
        key: KeyDisplay,
    },

    /// The key holds a Redis type the operation cannot work on.
    #[error("{script} on key {key}: the key holds a {found}, but the operation needs a {expected}")]
    WrongType {
        /// The script that ran the operation (named `model/op`).
        script: Script,
        /// The key.
        key: KeyDisplay,
        /// The Redis type the model uses (`string`, `hash`, …).
        expected: &'static str,
        /// The Redis type found at the key (`TYPE`), or `unknown` if it changed meanwhile.
        found: String,
    },

    /// The model's own key holds the right Redis type, but one of its sibling keys
    /// (a compound model's `{key}:…` keys) holds another.
    #[error("{script} on key {key}: the key itself is fine, but one of the model's other keys ({}) holds a wrong Redis type", list_keys(.siblings))]
    WrongSiblingType {
        /// The script that ran the operation (named `model/op`).
        script: Script,
        /// The model's key.
        key: KeyDisplay,
        /// The model's other keys, one of which is of the wrong type.
        siblings: Vec<KeyDisplay>,
    },

    /// The stored value is not a 64-bit integer.
    #[error("{script} on key {key}: the stored value is not a 64-bit integer ({detail})")]
    NotAnInteger {
        /// The script that ran the operation (named `model/op`).
        script: Script,
        /// The key.
        key: KeyDisplay,
        /// The server's message.
        detail: String,
    },

    /// An increment or decrement would take the stored integer past the 64-bit
    /// range; the value is unchanged.
    #[error("{script} on key {key}: the result would overflow a 64-bit integer; the value is unchanged ({detail})")]
    Overflow {
        /// The script that ran the operation (named `model/op`).
        script: Script,
        /// The key.
        key: KeyDisplay,
        /// The server's message.
        detail: String,
    },

    /// Bytes a read (`get`, `members`, `items`…) found in Redis could not be
    /// decoded by the model's serializer. A read changes nothing, so the value is
    /// still stored as it was. (Operations that change Redis and then meet bytes
    /// they cannot decode report it with what the caller needs to carry on:
    /// [`PoppedUndecodable`](Error::PoppedUndecodable),
    /// [`DeliveredUndecodable`](Error::DeliveredUndecodable),
    /// [`LeasedUndecodable`](Error::LeasedUndecodable).)
    #[error("cannot decode the value at key {key} with the {serializer} serializer: {reason} (bytes: {preview})")]
    Decode {
        /// The key the value was read from.
        key: KeyDisplay,
        /// The serializer's name (`Json`, `Pickle`, …).
        serializer: &'static str,
        /// Why decoding failed.
        reason: String,
        /// The first bytes of the value, escaped.
        preview: String,
    },

    /// A pop (`Pool`, `Queue`, `Stack`, `PriorityQueue`) removed an item that the
    /// model's serializer cannot decode. The pop is one atomic script, so the item
    /// is no longer in Redis; it is not lost: its bytes are here, whole, in
    /// `bytes`. Push them back with a [`Raw`](crate::serializer::Raw) model on the
    /// same key, or keep them for inspection (a dead-letter store). Later pops are
    /// unaffected.
    #[error(
        "{script} on key {key} removed an item that the {serializer} serializer cannot decode: {reason} \
         (bytes: {preview}); the item is no longer in Redis, and all {len} of its bytes are in this error",
        preview = preview(.bytes, 48),
        len = .bytes.len()
    )]
    PoppedUndecodable {
        /// The script that ran the operation (named `model/op`).
        script: Script,
        /// The key the item was popped from.
        key: KeyDisplay,
        /// The serializer's name (`Json`, `Pickle`, …).
        serializer: &'static str,
        /// Why decoding failed.
        reason: String,
        /// The removed item, byte for byte.
        bytes: Vec<u8>,
    },

    /// [`ReliableQueue::pop`](crate::ReliableQueue::pop) delivered an item that the
    /// model's serializer cannot decode. The pop is one atomic script, so the item
    /// is in flight like any delivered one, and `delivered` (its value as raw
    /// bytes) is that delivery: [`ack`](crate::ReliableQueue::ack) its receipt to
    /// drop the item (keep the bytes first, for inspection), or
    /// [`nack`](crate::ReliableQueue::nack) it. Left alone, it is delivered again
    /// after its deadline, and dead-lettered after
    /// [`max_deliveries`](crate::ReliableQueue::max_deliveries) deliveries. Later
    /// pops are unaffected.
    #[error(
        "{script} on key {key} delivered an item that the {serializer} serializer cannot decode: {reason} \
         (bytes: {preview}); it is in flight as item {id}, delivery {delivery}: ack or nack it with the \
         receipt in this error",
        preview = preview(.delivered.value(), 48),
        id = .delivered.receipt().id(),
        delivery = .delivered.delivery()
    )]
    DeliveredUndecodable {
        /// The script that ran the operation (named `model/op`).
        script: Script,
        /// The queue's key.
        key: KeyDisplay,
        /// The serializer's name (`Json`, `Pickle`, …).
        serializer: &'static str,
        /// Why decoding failed.
        reason: String,
        /// The delivery: its receipt, its deadline, and the item's bytes as its value.
        delivered: Box<Delivered<Vec<u8>>>,
    },

    /// [`ResourcePool::checkout`](crate::ResourcePool::checkout) leased a member
    /// that the model's serializer cannot decode. The checkout is one atomic
    /// script, so the member is leased like any other, and `lease` (its member as
    /// raw bytes) is that lease: [`checkin`](crate::ResourcePool::checkin) it,
    /// [`remove`](crate::ResourcePool::remove) the member, or
    /// [`extend`](crate::ResourcePool::extend) it — the pool's methods take a lease
    /// whatever its member's type. Left alone, it is reclaimed after its deadline.
    #[error(
        "{script} on key {key} leased a member that the {serializer} serializer cannot decode: {reason} \
         (bytes: {preview}); it is leased with fencing number {fence}: check it in with the lease in this error",
        preview = preview(.lease.member(), 48),
        fence = .lease.fence()
    )]
    LeasedUndecodable {
        /// The script that ran the operation (named `model/op`).
        script: Script,
        /// The pool's key.
        key: KeyDisplay,
        /// The serializer's name (`Json`, `Pickle`, …).
        serializer: &'static str,
        /// Why decoding failed.
        reason: String,
        /// The lease, with the member's bytes as its member.
        lease: Box<Lease<Vec<u8>>>,
    },

    /// A value could not be encoded by the model's serializer; nothing was sent.
    #[error("cannot encode a value for key {key} with the {serializer} serializer: {reason}")]
    Encode {
        /// The key the value was meant for.
        key: KeyDisplay,
        /// The serializer's name.
        serializer: &'static str,
        /// Why encoding failed.
        reason: String,
    },

    /// Opening a connection, or talking on one, failed.
    #[error("{}", connection_message(*.script, .key, .node, *.delivery, .source.as_ref()))]
    Connection {
        /// The script of the operation under way, if any.
        script: Option<Script>,
        /// The key, when an operation was under way.
        key: Option<KeyDisplay>,
        /// The node, with any password removed.
        node: String,
        /// Whether the request may have reached the server.
        delivery: Delivery,
        /// The underlying error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },

    /// The server refused the operation with an error reply.
    #[error("{script} on key {key}: server error {code}: {message}")]
    Server {
        /// The script that ran the operation (named `model/op`).
        script: Script,
        /// The key.
        key: KeyDisplay,
        /// The error code (`ERR`, `READONLY`, `OOM`, …).
        code: String,
        /// The rest of the error message.
        message: String,
    },

    /// A bounded model is full: nothing was added (a [`BoundedQueue`](crate::BoundedQueue)
    /// with [`Overflow::Reject`](crate::Overflow::Reject)).
    #[error("{script} on key {key}: full ({detail}); nothing was added")]
    Full {
        /// The script that ran the operation (named `model/op`).
        script: Script,
        /// The key.
        key: KeyDisplay,
        /// The script's explanation (capacity, length, items offered).
        detail: String,
    },

    /// The model at this key was created with other settings (a capacity, a
    /// number of permits) than this client's; nothing was changed. Every client of
    /// one key must agree, or the bound would not hold.
    #[error("{script} on key {key}: settings differ from the stored ones ({detail}); nothing was changed")]
    SettingsMismatch {
        /// The script that ran the operation (named `model/op`).
        script: Script,
        /// The key.
        key: KeyDisplay,
        /// The stored settings and the requested ones.
        detail: String,
    },

    /// A script refused the operation with a `REDISEXT_<CODE>` error that has no
    /// more specific variant.
    #[error("{script} on key {key}: refused ({code}): {detail}")]
    Refused {
        /// The script that ran the operation (named `model/op`).
        script: Script,
        /// The key.
        key: KeyDisplay,
        /// The code after `REDISEXT_`.
        code: String,
        /// The script's explanation.
        detail: String,
    },

    /// `SCRIPT LOAD` answered a different SHA1 than the bundled one: the bytes sent
    /// are not the bytes that were audited.
    #[error("script {script}: the server computed SHA1 {server}, but the bundled script's SHA1 is {bundled}")]
    ScriptMismatch {
        /// The script.
        script: Script,
        /// The SHA1 computed at build time.
        bundled: &'static str,
        /// The SHA1 the server answered.
        server: String,
    },

    /// The server lost the script again right after loading it (it was flushed
    /// twice in a row); the operation did not run.
    #[error("script {script} vanished from the server right after SCRIPT LOAD; the operation did not run")]
    ScriptVanished {
        /// The script.
        script: Script,
    },

    /// The operation was not applied because the transaction it belonged to was
    /// not: it was aborted (`EXECABORT`), or another of its operations could not
    /// be built. Nothing of that transaction was applied.
    #[error("{script} on key {key} was not applied: {reason}")]
    NotApplied {
        /// The script that ran the operation (named `model/op`).
        script: Script,
        /// The key.
        key: KeyDisplay,
        /// Why the transaction did not run.
        reason: String,
    },

    /// A pipeline or transaction did not run every operation it was given. Each
    /// operation's slot holds its own result or typed error; these lists say which
    /// is which, by position in the batch (from 0).
    #[error(
        "{} of {} operations of the batch did not run ({} surely not, {} maybe); first: {first}",
        .not_run.len() + .unknown.len(),
        .answered.len() + .not_run.len() + .unknown.len(),
        .not_run.len(),
        .unknown.len()
    )]
    BatchIncomplete {
        /// Operations the server answered: their slots hold a result, or the
        /// operation's own error reply.
        answered: Vec<usize>,
        /// Operations that surely did not run (not sent, refused with `NOSCRIPT`,
        /// an aborted transaction).
        not_run: Vec<usize>,
        /// Operations that may or may not have run (a connection failed after they
        /// were sent): check the state before retrying them.
        unknown: Vec<usize>,
        /// What happened to the first operation that did not run.
        first: String,
    },

    /// A pipeline slot was read before its pipeline ran.
    #[error("the pipeline holding operation #{index} has not run yet: call run() or run_atomic() first")]
    PipelineNotRun {
        /// The operation's position in its pipeline.
        index: usize,
    },

    /// The server replied with a shape the operation does not expect.
    #[error("{script} on key {key}: unexpected reply {reply}")]
    UnexpectedReply {
        /// The script that ran the operation (named `model/op`).
        script: Script,
        /// The key.
        key: KeyDisplay,
        /// A short description of the reply.
        reply: String,
    },
}

impl Error {
    /// True when a write may or may not have been applied: an I/O error or a
    /// timeout after the request was sent. Check the state before retrying.
    /// For a [`BatchIncomplete`](Error::BatchIncomplete) batch: true when some of
    /// its operations may have been applied unseen.
    /// A read-only operation never applies anything: false for it.
    pub fn may_have_applied(&self) -> bool {
        match self {
            Error::Connection { delivery, script, .. } => {
                *delivery == Delivery::Unknown && !script.is_some_and(|script| script.is_read_only())
            }
            Error::BatchIncomplete { unknown, .. } => !unknown.is_empty(),
            _ => false,
        }
    }
}

fn list_keys(keys: &[KeyDisplay]) -> String {
    keys.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ")
}

fn connection_message(
    script: Option<Script>,
    key: &Option<KeyDisplay>,
    node: &str,
    delivery: Delivery,
    source: &(dyn std::error::Error + Send + Sync),
) -> String {
    let mut message = match script {
        None => format!("connection to {node} failed"),
        Some(script) => match key {
            Some(key) => format!("{script} on key {key}: connection to {node} failed"),
            None => format!("{script}: connection to {node} failed"),
        },
    };
    let read_only = script.is_some_and(|script| script.is_read_only());
    message.push_str(match delivery {
        Delivery::NotSent => " before anything was sent (not applied; safe to retry)",
        Delivery::Unknown if read_only => " after the request was sent (a read, which changes nothing: safe to retry)",
        Delivery::Unknown => " after the request was sent: the operation may or may not have been applied",
    });
    message.push_str(&format!(": {source}"));
    message
}

/// A key as shown in messages: printable ASCII as is, other bytes as `\xNN`, quoted.
#[derive(Clone, PartialEq, Eq)]
pub struct KeyDisplay(Arc<[u8]>);

impl KeyDisplay {
    /// The key's raw bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Display for KeyDisplay {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "\"{}\"", escape_bytes(&self.0))
    }
}

impl fmt::Debug for KeyDisplay {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl From<&[u8]> for KeyDisplay {
    fn from(bytes: &[u8]) -> Self {
        KeyDisplay(Arc::from(bytes))
    }
}

impl From<Arc<[u8]>> for KeyDisplay {
    fn from(bytes: Arc<[u8]>) -> Self {
        KeyDisplay(bytes)
    }
}
