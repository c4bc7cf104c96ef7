//! A backend of the tests' own that sends script calls twice: the same bytes
//! (same token, same operation id) right after the first reply, handing the
//! caller the second reply, as a client whose first reply was lost and that
//! settled it by resending would see.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use redisext::backend::Request;
use redisext::testing::RedisServer;
use redisext::{Backend, Client, CommandError, Dsn, Node, RedisBackend, Reply, Reuse, ScriptCall, Session, Timeouts};

/// Wraps the default backend: every script call `twice` picks is sent a second
/// time right after its first reply, and the caller gets the second reply.
pub struct Resending {
    inner: RedisBackend,
    twice: fn(&ScriptCall) -> bool,
    /// Calls sent twice.
    pub resent: AtomicU64,
    /// Resendable calls whose first reply got something and whose second reply
    /// differed, but for the releases (a release sent again finds nothing left
    /// to release).
    pub differing: Mutex<Vec<String>>,
    /// The scripts of the calls sent twice.
    pub scripts: Mutex<std::collections::BTreeSet<&'static str>>,
}

pub struct ResendingSession<'a> {
    inner: <RedisBackend as Backend>::Session<'a>,
    backend: &'a Resending,
}

impl Backend for Resending {
    type Session<'a> = ResendingSession<'a>;

    fn session(&self, node: Node) -> Result<ResendingSession<'_>, CommandError> {
        Ok(ResendingSession { inner: self.inner.session(node)?, backend: self })
    }

    fn describe(&self, node: Node) -> String {
        self.inner.describe(node)
    }

    fn dedicated_session(&self, node: Node, block: Duration) -> Result<ResendingSession<'_>, CommandError> {
        Ok(ResendingSession { inner: self.inner.dedicated_session(node, block)?, backend: self })
    }
}

/// The scripts whose resend legitimately answers differently: releases find the
/// permit, lease, delivery or lock gone (given back by the first attempt).
pub const RELEASES: &[&str] =
    &["semaphore/release", "resource_pool/checkin", "reliable_queue/ack", "reliable_queue/nack", "lock/release"];

impl Session for ResendingSession<'_> {
    fn query(&mut self, request: &Request<'_>) -> Result<Reply, CommandError> {
        let first = self.inner.query(request)?;
        let Some(call) = request.call().filter(|call| (self.backend.twice)(call)) else { return Ok(first) };
        self.backend.resent.fetch_add(1, Ordering::Relaxed);
        let second = self.inner.query(request)?;
        let name = call.script().name();
        self.backend.scripts.lock().unwrap().insert(name);
        // A first attempt that got nothing (nil: no permit free, nothing to pop)
        // took nothing, so its resend may get something.
        if call.is_resendable() && first != Reply::Nil && first != second && !RELEASES.contains(&name) {
            self.backend.differing.lock().unwrap().push(format!("{name}: {first:?}, then {second:?}"));
        }
        Ok(second)
    }

    fn is_fresh(&self) -> bool {
        self.inner.is_fresh()
    }
}

/// A client on `server` whose calls `twice` picks are each sent twice; a new
/// connection for every operation, so that threads sharing it really race.
pub fn client(server: &RedisServer, twice: fn(&ScriptCall) -> bool) -> Client<Resending> {
    let dsn = Dsn::parse(&server.url()).unwrap();
    let inner = RedisBackend::new(&dsn, None, Reuse::PerCommand, Timeouts::default()).unwrap();
    Client::with_backend(Resending {
        inner,
        twice,
        resent: AtomicU64::new(0),
        differing: Mutex::new(Vec::new()),
        scripts: Mutex::default(),
    })
}

/// Every resendable write, the way a client settling unknown outcomes resends.
pub fn resendable_writes(call: &ScriptCall) -> bool {
    call.is_resendable() && !call.script().is_read_only()
}

/// Every write, resendable or not: what a client that resent blindly would do.
pub fn every_write(call: &ScriptCall) -> bool {
    !call.script().is_read_only()
}

/// Asserts that something was sent twice, and that every resendable call sent
/// twice (releases aside) answered its resend as its first send.
pub fn assert_resends_answered_alike(client: &Client<Resending>) {
    let backend = client.backend();
    assert!(backend.resent.load(Ordering::Relaxed) > 0, "nothing was sent twice: the test proved nothing");
    let differing = backend.differing.lock().unwrap();
    assert!(
        differing.is_empty(),
        "resent calls that answered differently: {:#?}",
        &differing[..differing.len().min(5)]
    );
}
