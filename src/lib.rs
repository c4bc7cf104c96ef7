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
//! ## Models
//!
//! | model | Redis type | Python redisext |
//! |---|---|---|
//! | [`Counter`] | string | `counter.Counter` |
//! | [`Map`] | string | `hashmap.Map` |
//! | [`HashMap`] | hash | `hashmap.HashMap` |
//! | [`Pool`] | set | `pool.Pool` |
//! | [`SortedSet`] | zset | `pool.SortedSet` |
//! | [`Queue`] | list | `queue.Queue` |
//! | [`PriorityQueue`] | zset | `queue.PriorityQueue` (here with an atomic pop) |
//! | [`Stack`] | list | `stack.Stack` |
//! | [`Lock`] | string | `lock.Lock` (here atomic, released only by its holder's [`LockToken`], with fencing numbers and renewal) |
//! | [`ResourcePool`] | zset + siblings | — (leased checkout with deadlines and fencing numbers) |
//! | [`BoundedQueue`] | list + siblings | — (a capacity that is never exceeded) |
//! | [`ReliableQueue`] | list + siblings | — (at-least-once delivery with receipts and dead letters) |
//! | [`Semaphore`] | zset + siblings | — (N permits whose holders expire) |
//! | [`RateLimiter`] | string | — (GCRA on server time) |
//!
//! A compound model's keys all share one Redis Cluster hash slot (`{key}:suffix`),
//! so each of its operations runs on one node.
//!
//! Each page lists the script behind every operation. A pop whose item the
//! serializer cannot decode returns the item's bytes in
//! [`Error::PoppedUndecodable`]: the pop is atomic, so the item has left Redis,
//! but it is not lost.
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
//! ## Pipelines and async
//!
//! The same operations run elsewhere by rebinding a model with `on(&executor)`:
//! a [`Pipeline`] queues them and sends them in one round trip (or one MULTI/EXEC
//! transaction), filling a typed [`Slot`] per operation; the `AsyncClient`
//! (feature `tokio`) returns `Send` futures. No model has code of its own for
//! either: the dispatcher's rules (`dispatch`, and `batch` for pipelines) are
//! written once, without I/O, and each driver runs them.
//!
//! ```
//! # let server = redisext::testing::RedisServer::start()?;
//! # let url = server.url();
//! use redisext::{Client, Counter, Slots};
//! let client = Client::open(&url)?;
//! let visitors = Counter::new(&client, "visitors")?;
//! let pipe = client.pipeline();
//! let slots = (visitors.on(&pipe).incr(1), visitors.on(&pipe).incr(1));
//! pipe.run_atomic()?;
//! assert_eq!(slots.take()?, (1, 2));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! ## Scripts
//!
//! [`script::all`] lists every bundled script with its SHA1 and flags;
//! [`Script::source`] is the exact text sent to the server. [`manifest::manifest`]
//! describes them all as JSON (keys, arguments, returns, cost, commands called),
//! for an auditor to diff between releases or an application to log at start-up.
//! The `redisext` command-line tool (the `redisext-cli` crate) shows, lints,
//! verifies and loads them, and benchmarks them against plain commands.

#![warn(missing_docs)]
#![cfg_attr(docsrs, feature(doc_cfg))]

// The modules form a graph without cycles, bottom up: wire, script, receipt,
// connection and serializer; error; key; call; backend (request, traits, node,
// cluster); dispatch and batch; op and retry; pipeline; the clients with their
// drivers; the models. `cargo test --test module_graph -- --nocapture` prints the
// layers and fails on a cycle.
#[cfg(feature = "tokio")]
mod async_client;
pub mod backend;
mod batch;
mod call;
mod client;
pub mod connection;
mod dispatch;
mod error;
mod key;
pub mod manifest;
pub mod model;
pub mod observe;
mod once;
mod op;
mod pipeline;
mod receipt;
mod retry;
mod route;
pub mod script;
pub mod serializer;
#[cfg(any(test, feature = "testing"))]
#[cfg_attr(docsrs, doc(cfg(feature = "testing")))]
pub mod testing;
mod wire;
pub mod worker;

#[cfg(feature = "tokio")]
#[cfg_attr(docsrs, doc(cfg(feature = "tokio")))]
pub use async_client::{AsyncClient, AsyncClientBuilder, Pending};
#[cfg(feature = "tokio")]
#[cfg_attr(docsrs, doc(cfg(feature = "tokio")))]
pub use backend::{AsyncBackend, AsyncSession, RedisAsyncBackend};
pub use backend::{Backend, RedisBackend, Session};
pub use call::{Arg, Durable, Node, ScriptCall};
pub use client::{Builder, Client, ClientBuilder};
#[cfg(feature = "tokio")]
#[cfg_attr(docsrs, doc(cfg(feature = "tokio")))]
pub use connection::AsyncReuse;
pub use connection::{Dsn, DsnError, Reuse, Timeouts};
pub use error::{Error, KeyDisplay, Result};
pub use key::{Key, MAX_BULK_LEN, hash_slot};
pub use model::bounded_queue::{BoundedQueue, Overflow};
pub use model::counter::Counter;
pub use model::guard::{LeaseGuard, PermitGuard, ReleaseOnDrop};
pub use model::hash_map::HashMap;
#[cfg(feature = "tokio")]
pub use model::lock::AsyncLockGuard;
pub use model::lock::{Lock, LockGuard, LockToken};
pub use model::map::Map;
pub use model::pool::Pool;
pub use model::priority_queue::PriorityQueue;
pub use model::queue::Queue;
pub use model::rate_limiter::{Quota, RateLimit, RateLimiter};
pub use model::reliable_queue::{Nacked, QueueCounts, ReliableQueue};
pub use model::resource_pool::{PoolCounts, Removal, ResourcePool};
pub use model::semaphore::{Permit, Semaphore};
pub use model::sorted_set::{Scored, SortedSet};
pub use model::stack::Stack;
pub use model::{Model, ModelClass, ModelOptions, Ttl};
pub use op::{Executor, Op, Wait};
pub use pipeline::{Pipeline, Slot, Slots};
pub use receipt::{Delivered, Lease, Receipt, Token};
pub use retry::RetryPolicy;
pub use script::Script;
pub use wire::{CommandError, Delivery, Reply, ServerError};

/// Compile-time proof that clients, pipelines, slots and models built on them can
/// be shared across threads (and async tasks): this block fails to compile if a
/// change makes one of them lose `Send` or `Sync`.
const _: () = {
    const fn shareable<T: Send + Sync>() {}
    shareable::<Client>();
    shareable::<Pipeline<Client>>();
    shareable::<Slot<i64>>();
    shareable::<Counter>();
    shareable::<Map<serializer::Json<serde_json::Value>>>();
    shareable::<Counter<Pipeline<Client>>>();
    shareable::<ModelClass<Counter>>();
    shareable::<Error>();
    #[cfg(feature = "tokio")]
    {
        const fn sendable<T: Send>() {}
        shareable::<AsyncClient>();
        shareable::<Counter<AsyncClient>>();
        shareable::<Map<serializer::Str, AsyncClient>>();
        shareable::<Pipeline<AsyncClient>>();
        sendable::<Pending<i64>>();
    }
};
