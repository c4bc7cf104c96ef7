//! The Lock's fencing numbers and renewing guards against a real redis-server:
//! numbers grow with every acquisition and fence out a holder whose lock expired;
//! a renewing guard keeps a lock held longer than its expiry, stops on drop, and
//! reports a lost lock; under 8 threads the numbers grow in holding order.

mod common;

use std::thread;
use std::time::Duration;

use common::{client, server, server_time};
use redisext::serializer::Numeric;
use redisext::{Client, Counter, Error, Lock, Map, ModelClass, ModelOptions, Reply};

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
    let ttl = Duration::from_millis(150);
    let started = server_time(&server);
    let guard = lock.renewing_guard(ttl, Duration::ZERO).unwrap().expect("free");
    // Five expiries' worth of server time.
    common::wait_past(&server, started + ttl * 5);
    assert!(!guard.lost());
    assert_eq!(server.command(&["GET", "long-job"]).unwrap(), Reply::Bulk(guard.token().as_str().into()), "held");
    assert!(lock.acquire(LONG).unwrap().is_none(), "still held by the renewing guard");
    assert!(matches!(server.command(&["PTTL", "long-job"]).unwrap(), Reply::Int(ms) if ms > 0 && ms <= 150));
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
                    let token = lock.acquire_timeout(LONG, Duration::from_secs(30)).unwrap().expect("within 30 s");
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
    let ttl = Duration::from_millis(200);
    let threads: Vec<_> = (0..THREADS)
        .map(|_| {
            let url = server.url();
            thread::spawn(move || {
                let client = Client::open(&url).unwrap();
                let lock = Lock::new(&client, "long").unwrap();
                let guard = lock.renewing_guard(ttl, Duration::from_secs(60)).unwrap().expect("within 60 s");
                let mut violations = check_exclusive(&client, guard.token().fence());
                // Hold well past the expiry: only the renewals keep others out.
                thread::sleep(ttl * 2 + ttl / 4);
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
        "renewing lock: {THREADS} threads each holding {:?} with a {ttl:?} expiry: {violations} overlaps, \
         non-increasing fencing numbers or failed releases, {lost} guards lost their lock",
        ttl * 2 + ttl / 4
    );
    assert_eq!((violations, lost), (0, 0));
}
