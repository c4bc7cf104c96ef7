//! What travels between this crate and a server, independent of the client
//! library that carried it: replies, error replies, and how a failed command
//! ended. The bottom of the crate: this file imports nothing else of it.

use std::fmt;

/// One reply, as a script returns it over RESP2: Lua tables become arrays, Lua
/// numbers integers, strings bulk strings, `false` nil.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum Reply {
    /// Nil (a missing key, or Lua `false`).
    Nil,
    /// An integer.
    Int(i64),
    /// A binary-safe string.
    Bulk(Vec<u8>),
    /// A status reply such as `OK`.
    Status(String),
    /// An array of replies.
    Array(Vec<Reply>),
    /// An error reply nested in an array (a top-level error reply is an `Err`).
    Error(ServerError),
}

impl Reply {
    /// A short description for error messages (values cut to a preview).
    pub fn describe(&self) -> String {
        match self {
            Reply::Nil => "nil".to_owned(),
            Reply::Int(n) => format!("integer {n}"),
            Reply::Bulk(bytes) => format!("bulk string {}", preview(bytes, 32)),
            Reply::Status(status) => format!("status {status}"),
            Reply::Array(items) => format!("array of {} items", items.len()),
            Reply::Error(error) => format!("error {error}"),
        }
    }
}

/// Whether a request that failed on the connection may have reached the server.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Delivery {
    /// Nothing was sent (for example, the connection could not be opened): the
    /// operation was not applied and may be retried.
    NotSent,
    /// The request may have been sent: a write may or may not have been applied.
    /// Never retry it blindly; check the state first.
    Unknown,
}

/// An error reply from the server, split into its code and message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServerError {
    /// The first word of the reply (`ERR`, `NOSCRIPT`, `WRONGTYPE`, `REDISEXT_FULL`, …).
    pub code: String,
    /// The rest of the reply.
    pub message: String,
}

impl ServerError {
    /// Splits a raw error reply such as `WRONGTYPE Operation against a key…`.
    pub fn parse(reply: &str) -> ServerError {
        let reply = reply.trim_start_matches('-');
        match reply.split_once(' ') {
            Some((code, message)) => ServerError { code: code.to_owned(), message: message.to_owned() },
            None => ServerError { code: reply.to_owned(), message: String::new() },
        }
    }
}

impl fmt::Display for ServerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.message.is_empty() { write!(f, "{}", self.code) } else { write!(f, "{} {}", self.code, self.message) }
    }
}

impl std::error::Error for ServerError {}

/// How a backend reports a failed command: an error reply, or a connection failure.
#[derive(Debug)]
#[non_exhaustive]
pub enum CommandError {
    /// The server answered with an error reply.
    Server(ServerError),
    /// The connection failed or timed out.
    Connection {
        /// Whether the command may have reached the server.
        delivery: Delivery,
        /// The underlying error.
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

impl fmt::Display for CommandError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CommandError::Server(e) => write!(f, "server error: {e}"),
            CommandError::Connection { delivery, source } => write!(f, "connection error ({delivery:?}): {source}"),
        }
    }
}

impl std::error::Error for CommandError {}

impl CommandError {
    /// True for a connection failure (after which a session sends nothing more).
    pub fn is_connection(&self) -> bool {
        matches!(self, CommandError::Connection { .. })
    }

    /// The error for a command of a pipelined send that followed a connection
    /// failure: it was never written.
    pub(crate) fn not_sent_after_failure() -> CommandError {
        CommandError::Connection {
            delivery: Delivery::NotSent,
            source: "not sent: the connection failed on an earlier command of the same batch".into(),
        }
    }
}

impl From<ServerError> for CommandError {
    fn from(error: ServerError) -> Self {
        CommandError::Server(error)
    }
}

/// True for a result that is a connection failure.
pub(crate) fn is_connection_error(result: &Result<Reply, CommandError>) -> bool {
    result.as_ref().err().is_some_and(CommandError::is_connection)
}

/// Escapes bytes for an error message and cuts them to `max` bytes of input.
pub(crate) fn preview(bytes: &[u8], max: usize) -> String {
    let shown = &bytes[..bytes.len().min(max)];
    let mut out = String::from("\"");
    out.push_str(&escape_bytes(shown));
    out.push('"');
    if bytes.len() > max {
        out.push_str(&format!("… ({} bytes)", bytes.len()));
    }
    out
}

/// Text as is (non-ASCII letters included), control characters and bytes that
/// are not UTF-8 as `\xNN`, quotes and backslashes escaped: a key or value shown
/// as `redis-cli` would, but readable in any language.
pub(crate) fn escape_bytes(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len());
    for chunk in bytes.utf8_chunks() {
        for c in chunk.valid().chars() {
            match c {
                '"' => out.push_str("\\\""),
                '\\' => out.push_str("\\\\"),
                c if c.is_control() => {
                    let mut utf8 = [0; 4];
                    for byte in c.encode_utf8(&mut utf8).bytes() {
                        out.push_str(&format!("\\x{byte:02x}"));
                    }
                }
                c => out.push(c),
            }
        }
        for byte in chunk.invalid() {
            out.push_str(&format!("\\x{byte:02x}"));
        }
    }
    out
}
