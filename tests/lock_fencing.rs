//! The Lock's fencing numbers, tokens and guards against a real redis-server:
//! numbers grow with every acquisition and fence out a holder whose lock expired;
//! an acquire whose reply is lost is settled with its token; a renewing guard
//! keeps a lock held longer than its expiry, stops on drop, and reports a lost
//! lock — also when renewals fail behind a partition (a proxy that stops
//! forwarding); under 8 threads the numbers grow in holding order.

mod common;

use std::thread;
use std::time::{Duration, Instant};

use common::proxy::Proxy;
use common::{client, server, server_time};
use redisext::serializer::Numeric;
use redisext::{Client, Counter, Error, Lock, LockToken, Map, ModelClass, ModelOptions, Reply, RetryPolicy, Timeouts};

const LONG: Duration = Duration::from_secs(60);

#[test]
fn fencing_numbers_grow_and_fence_out_an_expired_holder() {
    let server = server();
    let lock = Lock::new(&client(&server), "invoice").unwrap();
    let first = lock.acquire(LONG).unwrap().unwrap();
    assert!(lock.release(&first).unwrap());
    let stale = lock.acquire(Duration::from_millis(30)).unwrap().unwrap();
    assert!(stale.fence() > first.fence());
    server.wait_until(Duration::from_secs(10), |_| Ok(!lock.locked().unwrap())).unwrap();

    let other = Lock::new(&client(&server), "invoice").unwrap();
    let fresh = other.acquire(LONG).unwrap().expect("expired, so free");
    assert!(fresh.fence() > stale.fence(), "the new holder's number fences out the old one");
    assert!(!lock.extend(&stale, LONG).unwrap() && !lock.release(&stale).unwrap());
    assert_eq!(server.command(&["GET", "{invoice}:fence"]).unwrap(), Reply::Bulk(fresh.fence().to_string().into()));
    assert!(other.release(&fresh).unwrap());

    // The counter is a sibling in the lock's hash slot, behind the namespace too.
    let namespaced =
        ModelClass::<Lock>::new(&client(&server)).options(ModelOptions::new().namespace("app:")).at("job").unwrap();
    let token = namespaced.acquire(None).unwrap().unwrap();
    assert_eq!(token.fence(), 1);
    assert_eq!(server.command(&["GET", "{app:job}:fence"]).unwrap(), Reply::Bulk(b"1".to_vec()));
    let error = Lock::new(&client(&server), "a}b").unwrap_err();
    assert!(matches!(error, Error::InvalidArgument { .. }), "no sibling can share the slot: {error:?}");
}

#[test]
fn a_renewing_guard_holds_past_its_expiry_and_releases_on_drop() {
    let server = server();
    let lock = Lock::new(&client(&server), "long-job").unwrap();
    // Renewals every 200 ms, with 400 ms to spare each.
    let ttl = Duration::from_millis(600);
    let started = server_time(&server);
    let guard = lock.renewing_guard(ttl, Duration::ZERO).unwrap().expect("free");
    // Three expiries' worth of server time.
    common::wait_past(&server, started + ttl * 3);
    assert!(!guard.lost());
    assert_eq!(server.command(&["GET", "long-job"]).unwrap(), Reply::Bulk(guard.token().as_str().into()), "held");
    assert!(lock.acquire(LONG).unwrap().is_none(), "still held by the renewing guard");
    assert!(matches!(server.command(&["PTTL", "long-job"]).unwrap(), Reply::Int(ms) if ms > 0 && ms <= 600));
    drop(guard);
    assert!(!lock.locked().unwrap(), "released on drop");

    // `release` stops the renewal first and reports the outcome.
    let guard = lock.renewing_guard(ttl, Duration::ZERO).unwrap().unwrap();
    assert!(guard.release().unwrap());
    assert!(!lock.locked().unwrap());
}

#[test]
fn a_renewing_guard_reports_a_lost_lock_and_leaves_the_new_holder_alone() {
    let server = server();
    let lock = Lock::new(&client(&server), "fragile").unwrap();
    let guard = lock.renewing_guard(Duration::from_millis(90), Duration::ZERO).unwrap().unwrap();
    // The lock vanishes as if it had expired during a long pause; someone else takes it.
    server.command(&["DEL", "fragile"]).unwrap();
    let new_holder = lock.acquire(LONG).unwrap().unwrap();
    server.wait_until(Duration::from_secs(10), |_| Ok(guard.lost())).unwrap();
    assert!(new_holder.fence() > guard.token().fence());
    drop(guard);
    assert_eq!(server.command(&["GET", "fragile"]).unwrap(), Reply::Bulk(new_holder.as_str().into()));
    assert!(lock.release(&new_holder).unwrap());
    let plain = lock.guard(LONG, Duration::ZERO).unwrap().unwrap();
    assert!(!plain.lost(), "a guard that does not renew never reports a loss");
}

/// One critical section: the lock must be ours alone (a counter from 0 to 1) and
/// its fencing number larger than the last one written inside the lock.
fn check_exclusive(client: &Client, fence: u64) -> u64 {
    let holders = Counter::new(client, "holders").unwrap();
    let last_fence = Map::<Numeric>::new(client, "last-fence").unwrap();
    let mut violations = 0;
    if holders.incr(1).unwrap() != 1 {
        violations += 1;
    }
    let fence = i64::try_from(fence).unwrap();
    if last_fence.get().unwrap().unwrap_or(0) >= fence {
        violations += 1;
    }
    last_fence.set(&fence).unwrap();
    violations
}

fn leave(client: &Client) {
    Counter::new(client, "holders").unwrap().incr(-1).unwrap();
}

#[test]
fn fencing_numbers_grow_in_holding_order_across_threads() {
    let server = server();
    const THREADS: u64 = 8;
    const ROUNDS: u64 = 40;
    let threads: Vec<_> = (0..THREADS)
        .map(|_| {
            let url = server.url();
            thread::spawn(move || {
                let client = Client::open(&url).unwrap();
                let lock = Lock::new(&client, "shared").unwrap();
                let mut violations = 0;
                for _ in 0..ROUNDS {
                    let token = lock.acquire_wait(LONG, Duration::from_secs(30)).unwrap().expect("within 30 s");
                    violations += check_exclusive(&client, token.fence());
                    leave(&client);
                    if !lock.release(&token).unwrap() {
                        violations += 1;
                    }
                }
                violations
            })
        })
        .collect();
    let violations: u64 = threads.into_iter().map(|t| t.join().unwrap()).sum();
    let last = match server.command(&["GET", "{shared}:fence"]).unwrap() {
        Reply::Bulk(bytes) => String::from_utf8(bytes).unwrap(),
        other => panic!("{other:?}"),
    };
    println!(
        "lock fencing: {THREADS} threads x {ROUNDS} acquisitions: {violations} overlaps, non-increasing fencing \
         numbers or failed releases; last fencing number {last}"
    );
    assert_eq!(violations, 0);
    assert_eq!(last, (THREADS * ROUNDS).to_string(), "one number per acquisition");
}

#[test]
fn renewing_guards_stay_exclusive_while_holding_longer_than_the_expiry() {
    let server = server();
    const THREADS: usize = 8;
    // Renewals every 200 ms, each with 400 ms to spare before the expiry: room for
    // a loaded machine, while every holder still outlives its first expiry.
    let ttl = Duration::from_millis(600);
    let hold = ttl + ttl / 3;
    let threads: Vec<_> = (0..THREADS)
        .map(|_| {
            let url = server.url();
            thread::spawn(move || {
                let client = Client::open(&url).unwrap();
                let lock = Lock::new(&client, "long").unwrap();
                let guard = lock.renewing_guard(ttl, Duration::from_secs(60)).unwrap().expect("within 60 s");
                let mut violations = check_exclusive(&client, guard.token().fence());
                // Hold past the expiry: only the renewals keep others out.
                thread::sleep(hold);
                let lost = guard.lost();
                leave(&client);
                if !guard.release().unwrap() {
                    violations += 1;
                }
                (violations, lost)
            })
        })
        .collect();
    let results: Vec<(u64, bool)> = threads.into_iter().map(|t| t.join().unwrap()).collect();
    let violations: u64 = results.iter().map(|(v, _)| v).sum();
    let lost = results.iter().filter(|(_, lost)| *lost).count();
    println!(
        "renewing lock: {THREADS} threads each holding {hold:?} with a {ttl:?} expiry: {violations} overlaps, \
         non-increasing fencing numbers or failed releases, {lost} guards lost their lock"
    );
    assert_eq!((violations, lost), (0, 0));
}

/// A client that reaches the server through `proxy`, with short timeouts.
fn client_via(proxy: &Proxy, connect: Duration, response: Duration) -> Client {
    let timeouts = Timeouts { connect, response: Some(response) };
    Client::builder().master(&proxy.url()).timeouts(timeouts).build().unwrap()
}

#[test]
fn an_acquire_whose_reply_is_lost_is_settled_with_its_token() {
    let server = server();
    let proxy = Proxy::start(server.port());
    let retrying = client_via(&proxy, LONG, Duration::from_millis(300));
    // Settled by hand first: without retries the unknown outcome is the caller's.
    let lock = Lock::new(&retrying.with_retry(RetryPolicy::never()), "settle").unwrap();
    let direct = Lock::new(&client(&server), "settle").unwrap();

    // Load the scripts on the server first, so that the requests below run.
    let loading = direct.acquire(None).unwrap().unwrap();
    assert!(direct.release(&loading).unwrap());

    // Requests reach the server, replies never come back: the outcome is unknown.
    assert!(!lock.locked().unwrap(), "opens the client's connection");
    proxy.set_existing(true, false);
    let token = LockToken::generate();
    assert_eq!(token.fence(), 0, "not acquired yet");
    let error = lock.acquire_with(&token, None).unwrap_err();
    assert!(error.may_have_applied(), "{error:?}");
    // A new connection works: ask whether the acquire applied.
    let held = lock.holds(&token).unwrap().expect("it did apply");
    assert_eq!((held.as_str(), held.fence()), (token.as_str(), 2));
    assert_eq!(direct.holds(&LockToken::generate()).unwrap(), None, "held with that token only");
    assert!(lock.release(&held).unwrap());
    assert_eq!(lock.holds(&token).unwrap(), None, "released");

    // A guard settles it by itself: it releases what its lost attempt may have taken.
    assert!(!lock.locked().unwrap());
    proxy.set_existing(true, false);
    let error = lock.guard(None, Duration::ZERO).unwrap_err();
    assert!(error.may_have_applied(), "{error:?}");
    assert_eq!(server.command(&["GET", "{settle}:fence"]).unwrap(), Reply::Bulk(b"3".to_vec()), "it did apply");
    assert!(!direct.locked().unwrap(), "and the guard released it: nobody holds a lock under an unknown token");

    // The waiting form takes a known token too.
    let mine = LockToken::generate();
    let taken = lock.acquire_with_wait(&mine, LONG, Duration::from_secs(5)).unwrap().expect("free");
    assert_eq!((taken.as_str(), taken.fence()), (mine.as_str(), 4));
    assert_eq!(lock.acquire_with_wait(&LockToken::generate(), LONG, Duration::from_millis(30)).unwrap(), None);
    assert!(lock.release(&taken).unwrap());

    // With retries (the default), the client settles it by itself: it sends the
    // acquire again with the same token on a new connection, and the script hands
    // back the first attempt's acquisition — one fencing number, no error.
    let lock = Lock::new(&retrying, "settle").unwrap();
    assert!(!lock.locked().unwrap(), "opens the retrying client's connection");
    proxy.set_existing(true, false);
    let token = LockToken::generate();
    let held = lock.acquire_with(&token, None).unwrap().expect("settled by the resend");
    assert_eq!((held.as_str(), held.fence()), (token.as_str(), 5), "one acquisition, not two");
    assert_eq!(server.command(&["GET", "{settle}:fence"]).unwrap(), Reply::Bulk(b"5".to_vec()));
    assert!(lock.release(&held).unwrap());
}

#[test]
fn a_plain_guard_is_lost_once_its_expiry_has_passed() {
    let server = server();
    let lock = Lock::new(&client(&server), "brief").unwrap();
    let before = Instant::now();
    let guard = lock.guard(Duration::from_millis(200), Duration::ZERO).unwrap().unwrap();
    let until = guard.valid_until().expect("an expiry");
    assert!(until > before && until <= Instant::now() + Duration::from_millis(200), "{until:?}");
    assert!(!guard.lost());
    // Once the server has let it go, the guard knows without asking.
    server.wait_until(Duration::from_secs(10), |_| Ok(!lock.locked().unwrap())).unwrap();
    assert!(guard.lost(), "expired on the server, so the guard must say so");
    assert!(!guard.extend(LONG).unwrap(), "gone");
    assert!(guard.lost(), "stays lost");
    drop(guard);

    let forever = lock.guard(None, Duration::ZERO).unwrap().unwrap();
    assert_eq!(forever.valid_until(), None);
    assert!(!forever.lost());
    assert!(forever.extend(LONG).unwrap());
    assert!(forever.valid_until().is_some(), "an extend gives it an expiry");
    server.command(&["DEL", "brief"]).unwrap();
    assert!(!forever.extend(LONG).unwrap());
    assert!(forever.lost(), "an extend that finds the lock gone reports the loss");
}

#[test]
fn a_partitioned_renewing_guard_knows_it_lost_the_lock_before_anyone_else_takes_it() {
    let server = server();
    let proxy = Proxy::start(server.port());
    let ttl = Duration::from_millis(900);
    let short = Duration::from_millis(200);
    let lock = Lock::new(&client_via(&proxy, short, short), "partitioned").unwrap();
    let guard = lock.renewing_guard(ttl, Duration::ZERO).unwrap().unwrap();
    proxy.partition();

    // Renewals now fail with errors (timeouts). The server lets the lock go at its
    // expiry, and someone else takes it: by then the guard must know.
    let direct = Lock::new(&client(&server), "partitioned").unwrap();
    server.wait_until(Duration::from_secs(10), |_| Ok(!direct.locked().unwrap())).unwrap();
    let other = direct.acquire(LONG).unwrap().expect("expired, so free");
    assert!(guard.lost(), "someone else holds the lock while the guard still trusts it");
    assert!(guard.valid_until().unwrap() <= Instant::now());

    // And it stopped renewing: no more connection attempts.
    thread::sleep(ttl / 3);
    let attempts = proxy.accepted();
    thread::sleep(ttl);
    assert_eq!(proxy.accepted(), attempts, "a lost guard does not renew");
    drop(guard); // its release times out behind the partition, and is ignored
    assert_eq!(direct.holds(&other).unwrap().map(|held| held.fence()), Some(other.fence()), "the new holder keeps it");
}

#[test]
fn renewals_do_not_wait_behind_the_holders_own_operations() {
    let server = server();
    let proxy = Proxy::start(server.port());
    let ttl = Duration::from_millis(600);
    let client = client_via(&proxy, Duration::from_secs(5), Duration::from_secs(4));
    let lock = Lock::new(&client, "busy-holder").unwrap();
    let guard = lock.renewing_guard(ttl, Duration::ZERO).unwrap().unwrap();
    let started = server_time(&server);

    // The holder's own connection hangs (its request goes nowhere for 4 s), while
    // new connections work: an operation of the holder occupies the client's one
    // lazy connection all that time.
    proxy.set_existing(false, false);
    let busy = {
        let counter = Counter::new(&client, "work").unwrap();
        thread::spawn(move || counter.incr(1))
    };
    common::wait_past(&server, started + ttl * 3);
    assert!(!busy.is_finished(), "the holder's operation is still hanging");
    assert_eq!(
        server.command(&["GET", "busy-holder"]).unwrap(),
        Reply::Bulk(guard.token().as_str().into()),
        "renewed on connections of their own for three expiries"
    );
    assert!(!guard.lost());
    assert!(busy.join().unwrap().is_err(), "the hung operation timed out");
    assert!(guard.release().unwrap(), "released on a fresh connection");
}

#[test]
fn dropping_a_renewing_guard_does_not_wait_for_a_hung_renewal() {
    let server = server();
    let proxy = Proxy::start(server.port());
    let timeout = Duration::from_secs(5);
    let lock = Lock::new(&client_via(&proxy, timeout, timeout), "hung-renewal").unwrap();
    let guard = lock.renewing_guard(Duration::from_millis(300), Duration::ZERO).unwrap().unwrap();
    // Renewals (on new connections) hang; the guard's own connection still works.
    proxy.set_new(false, false);
    let before = proxy.accepted();
    server.wait_until(Duration::from_secs(10), |_| Ok(proxy.accepted() > before)).unwrap();

    let started = Instant::now();
    drop(guard);
    let took = started.elapsed();
    println!("dropping a renewing guard with a renewal hung for up to {timeout:?} took {took:?}");
    assert!(took < timeout / 2, "the drop waited {took:?} for the hung renewal");
    assert!(!Lock::new(&client(&server), "hung-renewal").unwrap().locked().unwrap(), "released");
}

#[test]
fn renewals_reuse_one_private_connection() {
    let server = server();
    let client = client(&server);
    let lock = Lock::new(&client, "long-job").unwrap();
    let guard = lock.renewing_guard(Duration::from_millis(300), Duration::ZERO).unwrap().expect("free");
    let before = common::info_number(&server, "stats", "total_connections_received");
    // Watch five renewals go by, from the guard itself (no connection opened).
    let mut renewals = 0;
    let mut last = guard.valid_until();
    let deadline = Instant::now() + Duration::from_secs(30);
    while renewals < 5 && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(5));
        if guard.valid_until() != last {
            last = guard.valid_until();
            renewals += 1;
        }
    }
    assert_eq!(renewals, 5, "the guard kept renewing");
    // One private connection for all of them (opened at the first renewal), plus
    // the INFO below.
    let opened = common::info_number(&server, "stats", "total_connections_received") - before;
    assert!(opened <= 2, "{opened} connections opened for 5 renewals");
    assert!(!guard.lost());
}
