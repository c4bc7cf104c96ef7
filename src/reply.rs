//! Replies from the server, independent of the client library that read them.

use crate::error::{ServerError, preview};

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
