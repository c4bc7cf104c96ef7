//! HashMap, Pool, SortedSet, Queue, PriorityQueue, Stack and Lock against a real
//! redis-server: each operation, its result, and the Redis type and bytes Python
//! redisext uses.

mod common;

use std::ops::Bound;
use std::time::Duration;

use common::{assert_every_script_ran, client, server};
use redisext::serializer::{Json, Numeric, Raw, Str};
use redisext::{HashMap, Lock, Pool, PriorityQueue, Queue, Reply, Scored, SortedSet, Stack, Ttl};

fn bulk(bytes: &[u8]) -> Reply {
    Reply::Bulk(bytes.to_vec())
}

fn sorted<T: Ord>(mut items: Vec<T>) -> Vec<T> {
    items.sort();
    items
}

#[test]
fn hash_map_operations() {
    let server = server();
    let client = client(&server);
    let stock = HashMap::<Numeric>::new(&client, "stock").unwrap();
    assert_eq!(stock.get("apples").unwrap(), None);
    assert!(stock.set("apples", &12).unwrap(), "a new field");
    assert!(!stock.set("apples", &10).unwrap(), "an existing field is replaced");
    assert!(stock.set("pears", &-3).unwrap());
    assert_eq!(stock.get("apples").unwrap(), Some(10));
    assert_eq!(server.command(&["TYPE", "stock"]).unwrap(), Reply::Status("hash".into()));
    assert_eq!(server.command(&["HGET", "stock", "pears"]).unwrap(), bulk(b"-3"));
    assert!(stock.remove("apples").unwrap());
    assert!(!stock.remove("apples").unwrap(), "removing twice reports false");
    assert_eq!(stock.get("apples").unwrap(), None);
    assert!(stock.remove("pears").unwrap());
    assert_eq!(server.command(&["EXISTS", "stock"]).unwrap(), Reply::Int(0), "the last field takes the key");
    assert_every_script_ran(&server, "hash_map");
}

#[test]
fn pool_operations() {
    let server = server();
    let client = client(&server);
    let pool = Pool::<Str>::new(&client, "workers").unwrap();
    assert_eq!(pool.pop().unwrap(), None);
    assert_eq!(pool.members().unwrap(), Vec::<String>::new());
    assert!(pool.push("w1").unwrap());
    assert!(!pool.push("w1").unwrap(), "already a member");
    assert!(pool.push("w2").unwrap());
    assert!(pool.contains("w1").unwrap());
    assert!(!pool.contains("w3").unwrap());
    assert_eq!(sorted(pool.members().unwrap()), ["w1", "w2"]);
    assert_eq!(server.command(&["TYPE", "workers"]).unwrap(), Reply::Status("set".into()));
    let first = pool.pop().unwrap().unwrap();
    let second = pool.pop().unwrap().unwrap();
    assert_eq!(sorted(vec![first, second]), ["w1", "w2"]);
    assert_eq!(pool.pop().unwrap(), None);
    assert_every_script_ran(&server, "pool");
}

#[test]
fn sorted_set_operations() {
    let server = server();
    let client = client(&server);
    let board = SortedSet::<Str>::new(&client, "board").unwrap();
    assert!(board.add("ada", 31.5).unwrap());
    assert!(board.add("bob", 12.0).unwrap());
    assert!(board.add("cy", 20.0).unwrap());
    assert!(!board.add("cy", 21.0).unwrap(), "an existing member's score is updated");
    assert!(board.add("dee", -0.25).unwrap());
    assert_eq!(server.command(&["TYPE", "board"]).unwrap(), Reply::Status("zset".into()));
    assert_eq!(server.command(&["ZSCORE", "board", "cy"]).unwrap(), bulk(b"21"));

    assert_eq!(board.members().unwrap(), ["ada", "cy", "bob", "dee"], "highest first");
    assert_eq!(
        board.members_with_scores().unwrap(),
        [("ada", 31.5), ("cy", 21.0), ("bob", 12.0), ("dee", -0.25)]
            .map(|(member, score)| Scored { member: member.to_owned(), score })
    );
    assert_eq!(board.members_by_score(..).unwrap(), ["dee", "bob", "cy", "ada"], "lowest first");
    assert_eq!(board.members_by_score(12.0..=21.0).unwrap(), ["bob", "cy"], "both ends included");
    assert_eq!(board.members_by_score(12.0..21.0).unwrap(), ["bob"], "an open upper end");
    assert_eq!(board.members_by_score((Bound::Excluded(12.0), Bound::Unbounded)).unwrap(), ["cy", "ada"]);
    assert_eq!(board.members_by_score(f64::NEG_INFINITY..=0.0).unwrap(), ["dee"]);
    assert_eq!(
        board.members_by_score_with_scores(20.0..).unwrap(),
        [Scored { member: "cy".to_owned(), score: 21.0 }, Scored { member: "ada".to_owned(), score: 31.5 }]
    );
    assert_eq!(board.members_by_score(50.0..=10.0).unwrap(), Vec::<String>::new(), "an empty range");

    assert_eq!(board.length(..).unwrap(), 4);
    assert_eq!(board.length(0.0..=21.0).unwrap(), 2);
    assert_eq!(board.length(f64::NEG_INFINITY..=f64::INFINITY).unwrap(), 4);
    assert!(board.contains("bob").unwrap());
    assert!(!board.contains("zed").unwrap());
    assert!(board.rem("bob").unwrap());
    assert!(!board.rem("bob").unwrap());

    assert_eq!(board.truncate(10).unwrap(), 0, "fewer members than kept");
    assert_eq!(board.truncate(2).unwrap(), 1, "keeps the 2 highest");
    assert_eq!(board.members().unwrap(), ["ada", "cy"]);
    assert_eq!(board.clean_by_score(..25.0).unwrap(), 1);
    assert_eq!(board.members().unwrap(), ["ada"]);
    assert_eq!(board.clean_by_score(100.0..).unwrap(), 0);
    assert!(board.clean().unwrap());
    assert!(!board.clean().unwrap(), "nothing left to clean");
    board.add("x", 1.0).unwrap();
    assert_eq!(board.truncate(0).unwrap(), 1, "truncate(0) empties the set, as in Python");
    assert_every_script_ran(&server, "sorted_set");
}

#[test]
fn sorted_set_scores_are_exact_f64s_and_infinities() {
    let server = server();
    let client = client(&server);
    let set = SortedSet::<Numeric>::new(&client, "scores").unwrap();
    let scores = [0.1, -1e-300, 5e-324, 1e16 + 2.0, 1.7976931348623157e308, f64::INFINITY, f64::NEG_INFINITY, -0.0];
    for (member, score) in scores.iter().enumerate() {
        set.add(&(member as i64), *score).unwrap();
    }
    for scored in set.members_with_scores().unwrap() {
        let sent = scores[scored.member as usize];
        assert_eq!(scored.score.to_bits(), if sent == 0.0 { 0.0f64.to_bits() } else { sent.to_bits() }, "{scored:?}");
    }
    assert_eq!(set.members_by_score(f64::INFINITY..).unwrap(), [5]);
    assert_eq!(set.members_by_score(..=f64::NEG_INFINITY).unwrap(), [6]);
    assert_eq!(set.length((Bound::Excluded(f64::NEG_INFINITY), Bound::Excluded(f64::INFINITY))).unwrap(), 6);
}

#[test]
fn queue_is_fifo_and_lists_newest_first() {
    let server = server();
    let client = client(&server);
    let jobs = Queue::<Str>::new(&client, "jobs").unwrap();
    assert_eq!(jobs.pop().unwrap(), None);
    assert_eq!(jobs.size().unwrap(), 0);
    assert_eq!(jobs.items().unwrap(), Vec::<String>::new());
    for (n, job) in ["a", "b", "c"].iter().enumerate() {
        assert_eq!(jobs.push(job).unwrap(), n as u64 + 1, "push returns the new length");
    }
    assert_eq!(jobs.items().unwrap(), ["c", "b", "a"]);
    assert_eq!(server.command(&["LINDEX", "jobs", "0"]).unwrap(), bulk(b"c"), "LPUSH: the head is the newest");
    assert_eq!(jobs.pop().unwrap().as_deref(), Some("a"));
    assert_eq!(jobs.pop().unwrap().as_deref(), Some("b"));
    assert_eq!(jobs.size().unwrap(), 1);
    assert_eq!(jobs.pop().unwrap().as_deref(), Some("c"));
    assert_eq!(jobs.pop().unwrap(), None);
    assert_every_script_ran(&server, "queue");
}

#[test]
fn stack_is_lifo() {
    let server = server();
    let client = client(&server);
    let stack = Stack::<Numeric>::new(&client, "undo").unwrap();
    assert_eq!(stack.pop().unwrap(), None);
    for n in 1..=3 {
        assert_eq!(stack.push(&n).unwrap(), n as u64);
    }
    assert_eq!(
        server.command(&["LRANGE", "undo", "0", "-1"]).unwrap(),
        Reply::Array(vec![bulk(b"3"), bulk(b"2"), bulk(b"1")])
    );
    assert_eq!(stack.pop().unwrap(), Some(3));
    assert_eq!(stack.push(&4).unwrap(), 3);
    assert_eq!(stack.pop().unwrap(), Some(4));
    assert_eq!(stack.pop().unwrap(), Some(2));
    assert_eq!(stack.pop().unwrap(), Some(1));
    assert_eq!(stack.pop().unwrap(), None);
    assert_every_script_ran(&server, "stack");
}

#[test]
fn priority_queue_pops_lowest_priority_first() {
    let server = server();
    let client = client(&server);
    let tasks = PriorityQueue::<Str>::new(&client, "tasks").unwrap();
    assert_eq!(tasks.pop().unwrap(), None);
    assert!(tasks.push("later", 10).unwrap());
    assert!(tasks.push("urgent", -5).unwrap());
    assert!(tasks.push("b-tie", 3).unwrap());
    assert!(tasks.push("a-tie", 3).unwrap());
    assert!(!tasks.push("later", 7).unwrap(), "re-pushing changes the priority");
    assert_eq!(server.command(&["ZSCORE", "tasks", "later"]).unwrap(), bulk(b"7"), "the priority is the score");
    let popped: Vec<_> = std::iter::from_fn(|| tasks.pop().unwrap()).collect();
    assert_eq!(popped, ["urgent", "a-tie", "b-tie", "later"], "equal priorities in byte order");
    assert_eq!(server.command(&["EXISTS", "tasks"]).unwrap(), Reply::Int(0));
    assert_every_script_ran(&server, "priority_queue");
}

#[test]
fn lock_acquire_release_extend() {
    let server = server();
    let client = client(&server);
    let lock = Lock::new(&client, "lock:invoice").unwrap();
    assert!(!lock.locked().unwrap());
    let token = lock.acquire(None).unwrap().expect("free lock");
    assert_eq!(token.as_str().len(), 32);
    assert!(lock.locked().unwrap());
    assert_eq!(
        server.command(&["GET", "lock:invoice"]).unwrap(),
        bulk(token.as_str().as_bytes()),
        "the token is the value"
    );
    assert_eq!(lock.ttl().unwrap(), Ttl::Persistent, "no expiry asked, none set");
    assert_eq!(lock.acquire(Duration::from_secs(5)).unwrap(), None, "held: a second acquire fails");

    // Another acquisition's token cannot release or extend this one.
    let other_lock = Lock::new(&client, "lock:other").unwrap();
    let other = other_lock.acquire(None).unwrap().unwrap();
    assert_ne!(other, token);
    assert!(!lock.release(&other).unwrap());
    assert!(!lock.extend(&other, Duration::from_secs(10)).unwrap());
    assert_eq!(lock.ttl().unwrap(), Ttl::Persistent, "a failed extend changes nothing");
    assert!(lock.locked().unwrap());

    assert_eq!(lock.holds(&token).unwrap(), Some(token.clone()), "held with this token");
    assert_eq!(lock.holds(&other).unwrap(), None, "not with another");
    assert!(lock.extend(&token, Duration::from_secs(10)).unwrap());
    assert!(matches!(lock.ttl().unwrap(), Ttl::Expires(left) if left <= Duration::from_secs(10)));
    assert!(lock.release(&token).unwrap());
    assert!(!lock.locked().unwrap());
    assert!(!lock.release(&token).unwrap(), "released twice");
    assert!(!lock.extend(&token, Duration::from_secs(10)).unwrap(), "not held any more");
    assert!(other_lock.release(&other).unwrap());
    assert_every_script_ran(&server, "lock");
}

#[test]
fn lock_expiry_frees_it_and_the_old_token_cannot_release_the_new_holder() {
    let server = server();
    let client = client(&server);
    let lock = Lock::new(&client, "lease").unwrap();
    let stale = lock.acquire(Duration::from_millis(30)).unwrap().unwrap();
    assert!(matches!(lock.ttl().unwrap(), Ttl::Expires(left) if left <= Duration::from_millis(30)));
    server.wait_until(Duration::from_secs(5), |_| Ok(!lock.locked().unwrap())).unwrap();
    let fresh = lock.acquire(None).unwrap().expect("expired, so free");
    assert!(!lock.release(&stale).unwrap(), "the expired holder must not release the new holder's lock");
    assert!(lock.locked().unwrap());
    assert!(lock.release(&fresh).unwrap());
}

#[test]
fn lock_acquire_wait_waits_for_a_release() {
    let server = server();
    let client = client(&server);
    let lock = Lock::new(&client, "wait").unwrap();
    let held = lock.acquire(None).unwrap().unwrap();
    assert_eq!(lock.acquire_wait(None, Duration::from_millis(50)).unwrap(), None, "held throughout");
    assert_eq!(lock.acquire_wait(None, Duration::ZERO).unwrap(), None, "zero timeout: one attempt");

    let releaser = {
        let lock = Lock::new(&common::client(&server), "wait").unwrap();
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(50));
            assert!(lock.release(&held).unwrap());
        })
    };
    // Generous bound: it only matters that the waiter gets the lock after the release.
    let token = lock.acquire_wait(Duration::from_secs(30), Duration::from_secs(20)).unwrap();
    releaser.join().unwrap();
    let token = token.expect("acquired once the holder released");
    assert!(lock.release(&token).unwrap());
}

#[test]
fn lock_guard_releases_on_drop() {
    let server = server();
    let client = client(&server);
    let lock = Lock::new(&client, "guarded").unwrap();
    {
        let guard = lock.guard(Duration::from_secs(30), Duration::ZERO).unwrap().expect("free");
        assert!(lock.locked().unwrap());
        assert!(lock.guard(None, Duration::ZERO).unwrap().is_none(), "held by the first guard");
        assert!(guard.extend(Duration::from_secs(60)).unwrap());
        assert_eq!(server.command(&["GET", "guarded"]).unwrap(), bulk(guard.token().as_str().as_bytes()));
    }
    assert!(!lock.locked().unwrap(), "dropping the guard released the lock");

    let guard = lock.guard(None, Duration::ZERO).unwrap().unwrap();
    assert!(guard.release().unwrap());
    assert!(!lock.locked().unwrap());

    // A guard whose lock was taken over does not release the new holder's lock.
    let guard = lock.guard(Duration::from_millis(20), Duration::ZERO).unwrap().unwrap();
    server.wait_until(Duration::from_secs(5), |_| Ok(!lock.locked().unwrap())).unwrap();
    let new_holder = lock.acquire(None).unwrap().unwrap();
    assert!(!guard.extend(Duration::from_secs(1)).unwrap());
    drop(guard);
    assert!(lock.locked().unwrap(), "the new holder keeps the lock");
    assert!(lock.release(&new_holder).unwrap());
}

#[test]
fn key_commands_work_on_every_new_model() {
    let server = server();
    let client = client(&server);
    let hash = HashMap::<Str>::new(&client, "h").unwrap();
    hash.set("f", "v").unwrap();
    let pool = Pool::<Str>::new(&client, "p").unwrap();
    pool.push("m").unwrap();
    let set = SortedSet::<Str>::new(&client, "z").unwrap();
    set.add("m", 1.0).unwrap();
    let queue = Queue::<Str>::new(&client, "q").unwrap();
    queue.push("i").unwrap();
    let pq = PriorityQueue::<Str>::new(&client, "pq").unwrap();
    pq.push("i", 1).unwrap();
    let stack = Stack::<Str>::new(&client, "s").unwrap();
    stack.push("i").unwrap();
    let lock = Lock::new(&client, "l").unwrap();
    let token = lock.acquire(None).unwrap().unwrap();

    macro_rules! check {
        ($model:expr, $key:literal) => {{
            let model = &$model;
            assert_eq!(model.ttl().unwrap(), Ttl::Persistent, "{}", $key);
            assert!(model.expire(Duration::from_secs(100)).unwrap(), "{}", $key);
            assert!(matches!(model.ttl().unwrap(), Ttl::Expires(_)), "{}", $key);
            assert!(model.persist().unwrap(), "{}", $key);
            assert!(model.rename(concat!($key, "-renamed")).unwrap(), "{}", $key);
            assert_eq!(model.ttl().unwrap(), Ttl::Missing, "{}: the model keeps its old key", $key);
            assert_eq!(server.command(&["EXISTS", concat!($key, "-renamed")]).unwrap(), Reply::Int(1));
        }};
    }
    check!(hash, "h");
    check!(pool, "p");
    check!(set, "z");
    check!(queue, "q");
    check!(pq, "pq");
    check!(stack, "s");
    // The lock has only `ttl`: its expiry is its holder's to change (`extend`),
    // and a rename would leave its fencing counter behind.
    assert_eq!(lock.ttl().unwrap(), Ttl::Persistent);
    assert!(lock.extend(&token, Duration::from_secs(100)).unwrap());
    assert!(matches!(lock.ttl().unwrap(), Ttl::Expires(_)));
}

#[test]
fn binary_and_non_ascii_values_round_trip_in_every_model() {
    let server = server();
    let client = client(&server);
    let bytes: Vec<u8> = (0..=255).collect();
    let text = "日本語 ✓ Zoë \u{1F600}";

    let hash = HashMap::<Raw>::new(&client, b"h\x00\xff").unwrap();
    hash.set(b"\xff\x00field", &bytes).unwrap();
    assert_eq!(hash.get(b"\xff\x00field").unwrap(), Some(bytes.clone()));
    assert_eq!(server.command_bytes(&[b"HGET", b"h\x00\xff", b"\xff\x00field"]).unwrap(), Reply::Bulk(bytes.clone()));
    let hash = HashMap::<Str>::new(&client, "ключ").unwrap();
    hash.set("поле", text).unwrap();
    assert_eq!(hash.get("поле").unwrap().as_deref(), Some(text));

    let pool = Pool::<Raw>::new(&client, b"p\x00").unwrap();
    pool.push(&bytes).unwrap();
    assert!(pool.contains(&bytes).unwrap());
    assert_eq!(pool.members().unwrap(), vec![bytes.clone()]);
    assert_eq!(pool.pop().unwrap(), Some(bytes.clone()));
    let pool = Pool::<Str>::new(&client, "пул").unwrap();
    pool.push(text).unwrap();
    assert_eq!(pool.pop().unwrap().as_deref(), Some(text));

    let set = SortedSet::<Raw>::new(&client, b"z\xff").unwrap();
    set.add(&bytes, 2.5).unwrap();
    assert!(set.contains(&bytes).unwrap());
    assert_eq!(set.members_with_scores().unwrap(), [Scored { member: bytes.clone(), score: 2.5 }]);
    assert!(set.rem(&bytes).unwrap());
    let set = SortedSet::<Str>::new(&client, "множество").unwrap();
    set.add(text, 1.0).unwrap();
    assert_eq!(set.members_by_score(..).unwrap(), [text]);

    let queue = Queue::<Raw>::new(&client, b"q\x01").unwrap();
    queue.push(&bytes).unwrap();
    assert_eq!(queue.items().unwrap(), vec![bytes.clone()]);
    assert_eq!(queue.pop().unwrap(), Some(bytes.clone()));
    let queue = Queue::<Str>::new(&client, "очередь").unwrap();
    queue.push(text).unwrap();
    assert_eq!(queue.pop().unwrap().as_deref(), Some(text));

    let pq = PriorityQueue::<Raw>::new(&client, b"pq\x02").unwrap();
    pq.push(&bytes, 1).unwrap();
    assert_eq!(pq.pop().unwrap(), Some(bytes.clone()));
    let pq = PriorityQueue::<Str>::new(&client, "приоритет").unwrap();
    pq.push(text, 1).unwrap();
    assert_eq!(pq.pop().unwrap().as_deref(), Some(text));

    let stack = Stack::<Raw>::new(&client, b"s\x03").unwrap();
    stack.push(&bytes).unwrap();
    assert_eq!(stack.pop().unwrap(), Some(bytes.clone()));
    let stack = Stack::<Str>::new(&client, "стек").unwrap();
    stack.push(text).unwrap();
    assert_eq!(stack.pop().unwrap().as_deref(), Some(text));

    let lock = Lock::new(&client, "замок\x00").unwrap();
    let token = lock.acquire(None).unwrap().unwrap();
    assert!(lock.release(&token).unwrap());

    #[derive(serde::Serialize, serde::Deserialize, Debug, PartialEq)]
    struct Item {
        name: String,
        weight: f64,
    }
    let items = Queue::<Json<Item>>::new(&client, "json-items").unwrap();
    items.push(&Item { name: "Zoë".into(), weight: 0.1 }).unwrap();
    assert_eq!(
        server.command(&["LINDEX", "json-items", "0"]).unwrap(),
        bulk(br#"{"name": "Zo\u00eb", "weight": 0.1}"#),
        "Python json.dumps bytes"
    );
    assert_eq!(items.pop().unwrap(), Some(Item { name: "Zoë".into(), weight: 0.1 }));
}

#[test]
fn lock_state_is_read_from_the_master_even_with_a_replica() {
    let master = server();
    let replica = redisext::testing::RedisServer::start_replica_of(&master).unwrap();
    let client = redisext::Client::builder().master(&master.url()).replica(&replica.url()).build().unwrap();
    let lock = Lock::new(&client, "routed-lock").unwrap();
    for _ in 0..20 {
        let token = lock.acquire(None).unwrap().unwrap();
        assert!(lock.locked().unwrap(), "no replication lag: asked the master");
        assert!(lock.release(&token).unwrap());
        assert!(!lock.locked().unwrap());
    }
    assert_eq!(replica.command_calls("evalsha_ro").unwrap() + replica.command_calls("evalsha").unwrap(), 0);
    // lock/locked is read-only (EVALSHA_RO) and went to the master all 40 times
    // (plus its retry after the first NOSCRIPT).
    assert_eq!(master.command_calls("evalsha_ro").unwrap(), 41);
}

#[test]
fn pops_and_removals_still_work_when_the_server_is_out_of_memory() {
    // Scripts that only take data away are flagged allow-oom (read-only scripts
    // need no flag), so consumers can drain a server that has hit
    // maxmemory; scripts that add data are refused with OOM.
    let server =
        redisext::testing::RedisServer::start_with(&["--maxmemory", "3mb", "--maxmemory-policy", "noeviction"])
            .unwrap();
    let client = client(&server);
    let filler = Queue::<Raw>::new(&client, "filler").unwrap();
    let saturate = || common::fill_memory(&filler);
    let stack = Stack::<Raw>::new(&client, "s").unwrap();
    let pool = Pool::<Raw>::new(&client, "p").unwrap();
    let pq = PriorityQueue::<Raw>::new(&client, "pq").unwrap();
    let set = SortedSet::<Raw>::new(&client, "z").unwrap();
    let hash = HashMap::<Raw>::new(&client, "h").unwrap();
    let lock = Lock::new(&client, "l").unwrap();
    let token = lock.acquire(None).unwrap().unwrap();
    stack.push(b"s").unwrap();
    pool.push(b"p").unwrap();
    pq.push(b"pq", 1).unwrap();
    set.add(b"z", 1.0).unwrap();
    hash.set("f", b"h").unwrap();

    let other_lock = Lock::new(&client, "l2").unwrap();
    let mut checked = 0;
    let mut under_oom = |what: &str, removal: &dyn Fn() -> bool| {
        saturate();
        assert!(common::is_oom(&other_lock.acquire(None)), "{what}: the server is out of memory for writes");
        assert!(removal(), "{what} under OOM");
        checked += 1;
    };
    under_oom("queue/pop", &|| filler.pop().unwrap().is_some());
    under_oom("stack/pop", &|| stack.pop().unwrap() == Some(b"s".to_vec()));
    under_oom("pool/pop", &|| pool.pop().unwrap() == Some(b"p".to_vec()));
    under_oom("priority_queue/pop", &|| pq.pop().unwrap() == Some(b"pq".to_vec()));
    under_oom("sorted_set/rem", &|| set.rem(b"z").unwrap());
    under_oom("hash_map/remove", &|| hash.remove("f").unwrap());
    under_oom("lock/locked", &|| lock.locked().unwrap());
    under_oom("lock/release", &|| lock.release(&token).unwrap());
    println!("{checked} removals ran while writes were refused for lack of memory");
}
