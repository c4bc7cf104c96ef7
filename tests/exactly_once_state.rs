//! What exactly-once mode keeps on the server, measured: one hash per key and
//! client process, with one field per lane — a lane carries one unsettled
//! operation at a time, so the fields number this process's peak of exactly-once
//! operations in flight at once, whatever the number of operations.
//!
//! One test in a binary of its own: lanes belong to the process, and another
//! test running alongside would share them.

mod common;

use std::sync::Mutex;
use std::thread;

use common::{client, server};
use redisext::backend::Request;
use redisext::testing::RedisServer;
use redisext::{Counter, Model, ModelOptions, Reply, ScriptCall};

const THREADS: usize = 16;

/// The name of the one operations hash beside `key`.
fn ops_key(server: &RedisServer, key: &str) -> String {
    let Reply::Array(keys) = server.command(&["KEYS", &format!("{{{key}}}:ops:*")]).unwrap() else { panic!("KEYS") };
    assert_eq!(keys.len(), 1, "one operations hash per key and client: {keys:?}");
    match &keys[0] {
        Reply::Bulk(name) => String::from_utf8(name.clone()).unwrap(),
        other => panic!("{other:?}"),
    }
}

fn number(reply: Reply) -> i64 {
    match reply {
        Reply::Int(n) => n,
        other => panic!("not a number: {other:?}"),
    }
}

#[test]
fn exactly_once_state_is_bounded_by_concurrency_not_by_operations() {
    let server = server();
    let options = ModelOptions::new().exactly_once(true);

    // A stale copy: the same bytes sent again get the first result; once the
    // lane has carried a later operation on the key, they are refused.
    static LAST: Mutex<Vec<Vec<u8>>> = Mutex::new(Vec::new());
    fn record(call: &ScriptCall) -> bool {
        if call.script().name() == "counter/incr" {
            *LAST.lock().unwrap() = Request::Eval(call).to_args();
        }
        false
    }
    let recording = common::resend::client(&server, record);
    let counter = Counter::with_options(&recording, "stale", options.clone()).unwrap();
    assert_eq!(counter.incr(1).unwrap(), 1);
    let stale = LAST.lock().unwrap().clone();
    let args: Vec<&[u8]> = stale.iter().map(Vec::as_slice).collect();
    assert_eq!(server.command_bytes(&args).unwrap(), Reply::Int(1), "a resend gets the first result");
    assert_eq!(counter.get().unwrap(), 1, "and applies nothing");
    assert_eq!(counter.incr(1).unwrap(), 2, "one thread: the same lane, a later operation");
    let error = server.command_bytes(&args).unwrap_err();
    assert!(error.to_string().contains("REDISEXT_SUPERSEDED"), "{error}");
    assert_eq!(counter.get().unwrap(), 2, "the stale copy applied nothing");

    // 16 threads hammer one counter; the state stays one field per lane.
    let client = client(&server);
    let mut measured = Vec::new();
    for round in 1..=2 {
        let workers: Vec<_> = (0..THREADS)
            .map(|_| {
                let counter = Counter::with_options(&client, "hits", options.clone()).unwrap();
                thread::spawn(move || {
                    for _ in 0..2_000 {
                        counter.incr(1).unwrap();
                    }
                })
            })
            .collect();
        workers.into_iter().for_each(|w| w.join().unwrap());
        let ops = ops_key(&server, "hits");
        let fields = number(server.command(&["HLEN", &ops]).unwrap());
        let bytes = number(server.command(&["MEMORY", "USAGE", &ops]).unwrap());
        let value = Counter::new(&client, "hits").unwrap().get().unwrap();
        println!("exactly-once state after {value} increments by {THREADS} threads: {fields} fields, {bytes} bytes");
        assert_eq!(value, round * (THREADS as i64) * 2_000, "counters exact");
        assert!(fields <= THREADS as i64, "{fields} fields: more lanes than operations ever in flight at once");
        assert!(bytes <= 4096, "{bytes} bytes for {fields} small results");
        measured.push((fields, bytes));
    }
    assert!(measured[1].0 <= THREADS as i64, "twice the operations, no more fields: {measured:?}");

    // A pipeline holds a lane per queued operation: its size is concurrency too.
    let pipe = client.pipeline();
    let batch = Counter::with_options(&client, "batched", options.clone()).unwrap();
    let slots: Vec<_> = (0..100).map(|_| batch.on(&pipe).incr(1)).collect();
    pipe.run().unwrap();
    assert_eq!(slots.into_iter().map(|slot| slot.take().unwrap()).max(), Some(100));
    let batched = ops_key(&server, "batched");
    assert_eq!(number(server.command(&["HLEN", &batched]).unwrap()), 100, "100 operations unsettled at once");
    for _ in 0..1_000 {
        batch.incr(1).unwrap();
    }
    assert_eq!(number(server.command(&["HLEN", &batched]).unwrap()), 100, "later operations reuse the lanes");
    let ttl = number(server.command(&["PTTL", &batched]).unwrap());
    assert!(ttl > 0 && ttl <= ModelOptions::EXACTLY_ONCE_WINDOW.as_millis() as i64, "expires: {ttl} ms");
    let Reply::Array(keys) = server.command(&["KEYS", "*"]).unwrap() else { panic!("KEYS") };
    assert_eq!(keys.len(), 6, "three counters and their three operations hashes: {keys:?}");
}
