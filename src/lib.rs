//! # redisext
//!
//! Redis data models — counters, maps, pools, queues, locks and more — in which
//! **every operation is a bundled Lua script**, reviewed in `lua/`, embedded in the
//! binary with its SHA1 known at build time, and run with `EVALSHA`. Compound
//! operations are atomic on the server; Rust is a thin, typed dispatcher.
//!
//! The data layout is that of the Python library *redisext* 2.0.2: a Python service
//! and a Rust service sharing Redis read each other's keys.
//!
//! ## Quickstart
//!
//! ```
//! # let server = redisext::testing::RedisServer::start()?;
//! # let url = server.url();
//! use std::time::Duration;
//! use redisext::{Client, Counter, Map, Ttl, serializer::Str};
//!
//! let client = Client::open(&url)?; // url: "redis://127.0.0.1:6379/0"
//!
//! let visitors = Counter::new(&client, "visitors")?;
//! visitors.incr(1)?;
//! assert_eq!(visitors.get()?, 1);
//!
//! let greeting = Map::<Str>::new(&client, "greeting")?;
//! greeting.set("hello")?;
//! greeting.expire(Duration::from_secs(60))?;
//! assert_eq!(greeting.get()?.as_deref(), Some("hello"));
//! assert!(matches!(greeting.ttl()?, Ttl::Expires(_)));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! ## How an operation runs
//!
//! A model method builds an [`Op`]: a script, its keys and arguments, the node it
//! may run on, and how to decode the reply. The client sends `EVALSHA` (or
//! `EVALSHA_RO` for read-only scripts, to the replica when there is one); on
//! `NOSCRIPT` it loads the script on that same connection, checks the SHA1 the
//! server computed against the bundled one, and retries once. A write is never
//! resent after a connection error: the error says whether it may have been
//! applied ([`Error::may_have_applied`]).
//!
//! Every model method is generic over its [`Executor`] and returns
//! `E::Output<T>`; with the blocking [`Client`] that is [`Result<T>`].
//!
//! ## Scripts
//!
//! [`script::all`] lists every bundled script with its SHA1 and flags;
//! [`Script::source`] is the exact text sent to the server. [`manifest::manifest`]
//! describes them all as JSON (keys, arguments, returns, cost, commands called),
//! for an auditor to diff between releases or an application to log at start-up,
//! and [`lint`] checks scripts against the conventions they follow. The
//! `redisext` command-line tool (feature `cli`) shows, checks and loads them.

#![warn(missing_docs)]

pub mod backend;
mod client;
pub mod connection;
mod dispatch;
mod error;
mod key;
pub mod lint;
pub mod manifest;
pub mod model;
mod op;
mod reply;
pub mod script;
pub mod serializer;
pub mod testing;

pub use backend::{Backend, RedisBackend, Session};
pub use client::{Client, ClientBuilder};
pub use connection::{Dsn, DsnError, Reuse, Timeouts};
pub use error::{CommandError, Delivery, Error, Result, ServerError};
pub use key::{Key, KeyDisplay, MAX_BULK_LEN};
pub use model::counter::Counter;
pub use model::map::Map;
pub use model::{Model, ModelClass, ModelOptions, Ttl};
pub use op::{Executor, Node, Op, ScriptCall, Wait};
pub use reply::Reply;
pub use script::Script;
