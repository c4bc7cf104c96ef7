//! Bad input for the seed models: refused before any round trip when it can be,
//! a typed error naming the key otherwise, and nothing stored is lost — not even
//! an item a pop removed but could not decode.

mod common;

use std::time::Duration;

use common::{client, server};
use redisext::serializer::{Json, Numeric, Raw, Str};
use redisext::{Client, Error, HashMap, Lock, Pool, PriorityQueue, Queue, Reply, SortedSet, Stack};

/// A client for a port where no server listens: anything sent would be a
/// connection error, so a different error proves nothing was sent.
fn nowhere() -> Client {
    Client::open("redis://127.0.0.1:1/0").unwrap()
}

#[test]
fn empty_keys_are_refused_before_any_round_trip() {
    let client = nowhere();
    assert!(matches!(HashMap::<Str>::new(&client, ""), Err(Error::EmptyKey)));
    assert!(matches!(Pool::<Str>::new(&client, ""), Err(Error::EmptyKey)));
    assert!(matches!(SortedSet::<Str>::new(&client, b""), Err(Error::EmptyKey)));
    assert!(matches!(Queue::<Str>::new(&client, ""), Err(Error::EmptyKey)));
    assert!(matches!(PriorityQueue::<Str>::new(&client, ""), Err(Error::EmptyKey)));
    assert!(matches!(Stack::<Str>::new(&client, ""), Err(Error::EmptyKey)));
    assert!(matches!(Lock::new(&client, ""), Err(Error::EmptyKey)));
    // A rename to an empty key is refused too.
    let pool = Pool::<Str>::new(&client, "p").unwrap();
    assert!(matches!(pool.rename(""), Err(Error::EmptyKey)));
}

#[test]
fn out_of_range_arguments_are_refused_before_any_round_trip() {
    let client = nowhere();
    let set = SortedSet::<Str>::new(&client, "z").unwrap();
    for error in [
        set.add("m", f64::NAN).unwrap_err(),
        set.length(f64::NAN..).unwrap_err(),
        set.members_by_score(..=f64::NAN).unwrap_err(),
        set.members_by_score_with_scores(f64::NAN..1.0).unwrap_err(),
        set.clean_by_score(0.0..f64::NAN).unwrap_err(),
    ] {
        assert!(matches!(error, Error::InvalidArgument { .. }), "{error:?}");
        assert!(error.to_string().contains("NaN"), "{error}");
    }

    let pq = PriorityQueue::<Str>::new(&client, "pq").unwrap();
    for priority in [(1 << 53) + 1, -(1 << 53) - 1, i64::MAX, i64::MIN] {
        let error = pq.push("x", priority).unwrap_err();
        assert!(matches!(error, Error::InvalidArgument { op: "priority_queue/push", .. }), "{priority}: {error:?}");
    }

    let lock = Lock::new(&client, "l").unwrap();
    assert!(matches!(lock.acquire(Duration::from_micros(999)), Err(Error::InvalidArgument { .. })));
    assert!(matches!(lock.acquire_wait(Duration::ZERO, Duration::from_secs(1)), Err(Error::InvalidArgument { .. })));
    assert!(matches!(lock.guard(Duration::ZERO, Duration::ZERO), Err(Error::InvalidArgument { .. })));
}

#[test]
fn extreme_priorities_within_range_keep_their_order() {
    let server = server();
    let client = client(&server);
    let pq = PriorityQueue::<Str>::new(&client, "pq").unwrap();
    let max = redisext::model::priority_queue::MAX_PRIORITY;
    pq.push("max", max).unwrap();
    pq.push("max-1", max - 1).unwrap();
    pq.push("min", -max).unwrap();
    pq.push("min+1", -max + 1).unwrap();
    let popped: Vec<_> = std::iter::from_fn(|| pq.pop().unwrap()).collect();
    assert_eq!(popped, ["min", "min+1", "max-1", "max"], "±2^53 and their neighbours stay distinct");
}

/// Asserts a wrong-type error naming the key, the operation, and both types.
fn assert_wrong_type(result: Result<impl std::fmt::Debug, Error>, key: &str, expected: &str, found: &str) {
    let error = result.unwrap_err();
    let Error::WrongType { key: ref got_key, expected: got_expected, found: ref got_found, script } = error else {
        panic!("expected WrongType on {key}, got {error:?}")
    };
    assert_eq!((got_key.as_bytes(), got_expected, got_found.as_str()), (key.as_bytes(), expected, found), "{script}");
    let message = error.to_string();
    assert!(
        message.contains(&format!("\"{key}\"")) && message.contains(found) && message.contains(script.name()),
        "{message}"
    );
}

#[test]
fn every_operation_on_a_key_of_the_wrong_type_is_a_typed_error_and_changes_nothing() {
    let server = server();
    let client = client(&server);
    server.command(&["SET", "a-string", "v"]).unwrap();
    server.command(&["RPUSH", "a-list", "x"]).unwrap();
    server.command(&["HSET", "a-hash", "f", "v"]).unwrap();

    let hash = HashMap::<Str>::new(&client, "a-list").unwrap();
    assert_wrong_type(hash.get("f"), "a-list", "hash", "list");
    assert_wrong_type(hash.set("f", "v"), "a-list", "hash", "list");
    assert_wrong_type(hash.remove("f"), "a-list", "hash", "list");

    let pool = Pool::<Str>::new(&client, "a-string").unwrap();
    assert_wrong_type(pool.push("m"), "a-string", "set", "string");
    assert_wrong_type(pool.pop(), "a-string", "set", "string");
    assert_wrong_type(pool.members(), "a-string", "set", "string");
    assert_wrong_type(pool.contains("m"), "a-string", "set", "string");

    let set = SortedSet::<Str>::new(&client, "a-list").unwrap();
    assert_wrong_type(set.add("m", 1.0), "a-list", "zset", "list");
    assert_wrong_type(set.rem("m"), "a-list", "zset", "list");
    assert_wrong_type(set.length(..), "a-list", "zset", "list");
    assert_wrong_type(set.members(), "a-list", "zset", "list");
    assert_wrong_type(set.members_with_scores(), "a-list", "zset", "list");
    assert_wrong_type(set.members_by_score(..), "a-list", "zset", "list");
    assert_wrong_type(set.members_by_score_with_scores(..), "a-list", "zset", "list");
    assert_wrong_type(set.contains("m"), "a-list", "zset", "list");
    assert_wrong_type(set.truncate(0), "a-list", "zset", "list");
    assert_wrong_type(set.clean(), "a-list", "zset", "list");
    assert_wrong_type(set.clean_by_score(..), "a-list", "zset", "list");

    let queue = Queue::<Str>::new(&client, "a-hash").unwrap();
    assert_wrong_type(queue.push("i"), "a-hash", "list", "hash");
    assert_wrong_type(queue.pop(), "a-hash", "list", "hash");
    assert_wrong_type(queue.size(), "a-hash", "list", "hash");
    assert_wrong_type(queue.items(), "a-hash", "list", "hash");

    let pq = PriorityQueue::<Str>::new(&client, "a-hash").unwrap();
    assert_wrong_type(pq.push("i", 1), "a-hash", "zset", "hash");
    assert_wrong_type(pq.pop(), "a-hash", "zset", "hash");

    let stack = Stack::<Str>::new(&client, "a-string").unwrap();
    assert_wrong_type(stack.push("i"), "a-string", "list", "string");
    assert_wrong_type(stack.pop(), "a-string", "list", "string");

    // Locked means the key exists, whatever it holds (Python's test), so a lock
    // on a hash is held and cannot be acquired; releasing or extending it with a
    // token is a typed error rather than a silent false.
    let lock = Lock::new(&client, "a-hash").unwrap();
    assert!(lock.locked().unwrap());
    assert_eq!(lock.acquire(None).unwrap(), None);
    let token = Lock::new(&client, "free").unwrap().acquire(None).unwrap().unwrap();
    assert_wrong_type(lock.release(&token), "a-hash", "string", "hash");
    assert_wrong_type(lock.extend(&token, Duration::from_secs(1)), "a-hash", "string", "hash");

    // Nothing was changed or deleted by any of the refused operations.
    assert_eq!(server.command(&["GET", "a-string"]).unwrap(), Reply::Bulk(b"v".to_vec()));
    assert_eq!(
        server.command(&["LRANGE", "a-list", "0", "-1"]).unwrap(),
        Reply::Array(vec![Reply::Bulk(b"x".to_vec())])
    );
    assert_eq!(
        server.command(&["HGETALL", "a-hash"]).unwrap(),
        Reply::Array(vec![Reply::Bulk(b"f".to_vec()), Reply::Bulk(b"v".to_vec())])
    );
    assert_eq!(server.command(&["TTL", "a-hash"]).unwrap(), Reply::Int(-1));
}

#[derive(serde::Serialize, serde::Deserialize, Debug, PartialEq)]
struct Job {
    id: u32,
}

const GARBAGE: &[u8] = b"\xff\xfe not json, and longer than the preview shown in messages: 0123456789abcdef";

/// Checks the error of a pop that removed `GARBAGE`: typed, naming the key and
/// serializer, with every byte of the item.
fn assert_popped_garbage(result: redisext::Result<Option<Job>>, key: &str, op: &str) -> Vec<u8> {
    let error = result.unwrap_err();
    let message = error.to_string();
    let Error::PoppedUndecodable { key: got_key, serializer, bytes, script, .. } = error else {
        panic!("expected PoppedUndecodable from {op}, got {error:?}")
    };
    assert_eq!((got_key.as_bytes(), serializer, script.name()), (key.as_bytes(), "Json", op));
    assert_eq!(bytes, GARBAGE, "the error carries the whole item");
    assert!(
        message.contains(&format!("\"{key}\"")) && message.contains("Json") && message.contains("\\xff\\xfe"),
        "{message}"
    );
    assert!(message.contains("no longer in Redis"), "{message}");
    bytes
}

#[test]
fn a_pop_of_an_undecodable_item_returns_its_bytes_and_loses_nothing() {
    let server = server();
    let client = client(&server);

    // Queue: the garbage is the oldest item; the pop takes it out and hands its
    // bytes back; the caller can put it back with a Raw model (here, at the tail).
    Queue::<Raw>::new(&client, "q").unwrap().push(GARBAGE).unwrap();
    let queue = Queue::<Json<Job>>::new(&client, "q").unwrap();
    queue.push(&Job { id: 1 }).unwrap();
    let bytes = assert_popped_garbage(queue.pop(), "q", "queue/pop");
    assert_eq!(queue.size().unwrap(), 1, "the pop removed the item (one atomic step)");
    assert_eq!(queue.pop().unwrap(), Some(Job { id: 1 }), "later items are unaffected");
    Queue::<Raw>::new(&client, "q").unwrap().push(&bytes).unwrap();
    assert_eq!(Queue::<Raw>::new(&client, "q").unwrap().pop().unwrap().as_deref(), Some(GARBAGE), "recovered intact");

    let stack_raw = Stack::<Raw>::new(&client, "s").unwrap();
    let stack = Stack::<Json<Job>>::new(&client, "s").unwrap();
    stack.push(&Job { id: 2 }).unwrap();
    stack_raw.push(GARBAGE).unwrap();
    let bytes = assert_popped_garbage(stack.pop(), "s", "stack/pop");
    assert_eq!(stack.pop().unwrap(), Some(Job { id: 2 }));
    stack_raw.push(&bytes).unwrap();
    assert_eq!(stack_raw.pop().unwrap().as_deref(), Some(GARBAGE));

    let pool_raw = Pool::<Raw>::new(&client, "p").unwrap();
    let pool = Pool::<Json<Job>>::new(&client, "p").unwrap();
    pool_raw.push(GARBAGE).unwrap();
    let bytes = assert_popped_garbage(pool.pop(), "p", "pool/pop");
    assert_eq!(pool.pop().unwrap(), None, "the member was removed");
    assert!(pool_raw.push(&bytes).unwrap());
    assert!(pool_raw.contains(GARBAGE).unwrap(), "pushed back, byte for byte");

    let pq_raw = PriorityQueue::<Raw>::new(&client, "pq").unwrap();
    let pq = PriorityQueue::<Json<Job>>::new(&client, "pq").unwrap();
    pq.push(&Job { id: 3 }, 2).unwrap();
    pq_raw.push(GARBAGE, 1).unwrap();
    let bytes = assert_popped_garbage(pq.pop(), "pq", "priority_queue/pop");
    assert_eq!(pq.pop().unwrap(), Some(Job { id: 3 }));
    pq_raw.push(&bytes, 1).unwrap();
    assert_eq!(pq_raw.pop().unwrap().as_deref(), Some(GARBAGE));
}

#[test]
fn reads_of_undecodable_values_are_decode_errors_and_remove_nothing() {
    let server = server();
    let client = client(&server);
    Pool::<Raw>::new(&client, "p").unwrap().push(GARBAGE).unwrap();
    Queue::<Raw>::new(&client, "q").unwrap().push(GARBAGE).unwrap();
    SortedSet::<Raw>::new(&client, "z").unwrap().add(GARBAGE, 1.0).unwrap();
    HashMap::<Raw>::new(&client, "h").unwrap().set("f", GARBAGE).unwrap();

    let errors = [
        Pool::<Json<Job>>::new(&client, "p").unwrap().members().map(|_| ()).unwrap_err(),
        Queue::<Json<Job>>::new(&client, "q").unwrap().items().map(|_| ()).unwrap_err(),
        SortedSet::<Json<Job>>::new(&client, "z").unwrap().members().map(|_| ()).unwrap_err(),
        SortedSet::<Json<Job>>::new(&client, "z").unwrap().members_with_scores().map(|_| ()).unwrap_err(),
        SortedSet::<Json<Job>>::new(&client, "z").unwrap().members_by_score(..).map(|_| ()).unwrap_err(),
        HashMap::<Json<Job>>::new(&client, "h").unwrap().get("f").map(|_| ()).unwrap_err(),
        HashMap::<Numeric>::new(&client, "h").unwrap().get("f").map(|_| ()).unwrap_err(),
        Queue::<Str>::new(&client, "q").unwrap().items().map(|_| ()).unwrap_err(),
    ];
    for error in errors {
        let Error::Decode { ref key, .. } = error else { panic!("{error:?}") };
        assert!([&b"p"[..], b"q", b"z", b"h"].contains(&key.as_bytes()), "{error}");
    }
    for key in ["p", "q", "z", "h"] {
        assert_eq!(server.command(&["EXISTS", key]).unwrap(), Reply::Int(1), "{key} is still there");
    }
}
