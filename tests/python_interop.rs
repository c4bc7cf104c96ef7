//! Python redisext 2.0.2 and this crate sharing one Redis: for every model and
//! each of the JSON, String, Numeric and Pickle serializers, what Python writes
//! Rust reads, and what Rust writes Python reads — including set and sorted-set
//! membership across the languages.
//!
//! The Python side is tests/interop/redisext_side.py, run with the interpreter at
//! `REDISEXT_PYTHON` or `.venv/bin/python` (made by `ensure_python_venv` in
//! scripts/setup.sh, which scripts/test calls). Without it these tests fail,
//! saying how to make it: they never skip silently.
//!
//! Each test: Python writes its fixture under `py:<model>:<serializer>`; Rust
//! writes the same fixture under `rs:…`; the raw bytes of the two are compared
//! (identical for JSON, String and Numeric; not for Pickle); Rust reads and uses
//! Python's keys; Python reads and uses Rust's keys. Every test runs twice, the
//! second time with the Rust models in exactly-once mode, whose operation state
//! lives in sibling keys: the keys Python reads hold the same bytes.

mod common;

use std::borrow::Borrow;
use std::fmt::Debug;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::{client, server};
use redisext::serializer::{Json, Numeric, Pickle, Serializer, Str};
use redisext::testing::RedisServer;
use redisext::{
    Client, Counter, HashMap, Lock, Map, Model, ModelOptions, Pool, PriorityQueue, Queue, Reply, Scored, SortedSet,
    Stack, Ttl,
};

// --- the fixture: the same values as SAMPLES & co. in redisext_side.py ---------

/// Field order as Python builds its dicts, so JSON bytes match.
#[derive(serde::Serialize, serde::Deserialize, Debug, Clone, PartialEq)]
struct Item {
    name: String,
    tags: Vec<String>,
    score: f64,
}

fn items() -> Vec<Item> {
    let item = |name: &str, tags: &[&str], score| Item {
        name: name.to_owned(),
        tags: tags.iter().map(|t| (*t).to_owned()).collect(),
        score,
    };
    vec![item("Zoë", &["a", "b"], 0.1), item("日本", &[], 1e16), item("plain", &["x"], -2.5)]
}

const SCORES: [f64; 3] = [1.5, -2.0, 10.0];
const PRIORITIES: [i64; 3] = [3, 1, 2];
const FIELDS: [&str; 3] = ["f0", "f1", "clé"];
const LOCK_EXPIRY: Duration = Duration::from_secs(100);

/// A serializer the fixture covers, with its samples.
trait Fixture: Serializer<Owned: Borrow<Self::Value> + PartialEq + Debug + Clone> {
    /// The serializer's name in key names and in redisext_side.py.
    const LABEL: &'static str;
    /// Whether both languages encode a value to the same bytes (then membership
    /// works across them).
    const BYTE_IDENTICAL: bool;
    fn samples() -> Vec<Self::Owned>;
}

impl Fixture for Json<Item> {
    const LABEL: &'static str = "json";
    const BYTE_IDENTICAL: bool = true;
    fn samples() -> Vec<Item> {
        items()
    }
}

impl Fixture for Str {
    const LABEL: &'static str = "string";
    const BYTE_IDENTICAL: bool = true;
    fn samples() -> Vec<String> {
        ["héllo wörld", "日本語 ✓ \u{1F600}", "plain ascii"].map(str::to_owned).to_vec()
    }
}

impl Fixture for Numeric {
    const LABEL: &'static str = "numeric";
    const BYTE_IDENTICAL: bool = true;
    fn samples() -> Vec<i64> {
        vec![42, -7, 9007199254740993]
    }
}

impl Fixture for Pickle<Item> {
    const LABEL: &'static str = "pickle";
    // Python pickles with protocol 4 or 5 and framing; this crate writes protocol 3.
    const BYTE_IDENTICAL: bool = false;
    fn samples() -> Vec<Item> {
        items()
    }
}

/// Calls `f::<S>(args…)` for each serializer of the fixture.
macro_rules! for_each_serializer {
    ($f:ident($($arg:expr),*)) => {{
        $f::<Json<Item>>($($arg),*);
        $f::<Str>($($arg),*);
        $f::<Numeric>($($arg),*);
        $f::<Pickle<Item>>($($arg),*);
    }};
}

fn key<S: Fixture>(prefix: &str, model: &str) -> String {
    format!("{prefix}:{model}:{}", S::LABEL)
}

fn in_order<T: Clone>(samples: &[T], order: impl IntoIterator<Item = usize>) -> Vec<T> {
    order.into_iter().map(|i| samples[i].clone()).collect()
}

/// Indices of the samples by ascending `keys`.
fn ascending_by<K: PartialOrd + Copy>(keys: &[K]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..keys.len()).collect();
    order.sort_by(|a, b| keys[*a].partial_cmp(&keys[*b]).unwrap());
    order
}

fn assert_same_members<T: PartialEq + Debug>(label: &str, got: &[T], want: &[T]) {
    assert_eq!(got.len(), want.len(), "{label}: {got:?} vs {want:?}");
    for value in want {
        assert!(got.contains(value), "{label}: {value:?} missing from {got:?}");
    }
}

// --- the Python side -----------------------------------------------------------

/// Runs redisext_side.py `action` for `model` against `server`; fails the test
/// with its output when Python reports a failed check.
fn run_python(server: &RedisServer, action: &str, model: &str) {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/interop/redisext_side.py");
    let output = Command::new(common::python())
        .arg(&script)
        .args([action, &server.url(), model])
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", common::python().display()));
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    print!("{stdout}");
    assert!(output.status.success(), "Python `{action} {model}` failed:\n{stdout}\n{stderr}");
}

/// Everything stored at a key, as raw bytes in a canonical order.
fn raw_contents(server: &RedisServer, key: &str) -> Vec<Vec<u8>> {
    let Reply::Status(kind) = server.command(&["TYPE", key]).unwrap() else { panic!("TYPE {key}") };
    let reply = match kind.as_str() {
        "string" => server.command(&["GET", key]),
        "hash" => server.command(&["HGETALL", key]),
        "set" => server.command(&["SMEMBERS", key]),
        "zset" => server.command(&["ZRANGE", key, "0", "-1", "WITHSCORES"]),
        "list" => server.command(&["LRANGE", key, "0", "-1"]),
        other => panic!("{key} holds a {other}"),
    }
    .unwrap();
    let mut contents = match reply {
        Reply::Bulk(bytes) => vec![bytes],
        Reply::Array(items) => items
            .into_iter()
            .map(|item| match item {
                Reply::Bulk(bytes) => bytes,
                other => panic!("{other:?}"),
            })
            .collect(),
        other => panic!("{key}: {other:?}"),
    };
    if kind == "hash" {
        let mut pairs: Vec<Vec<u8>> = contents.chunks(2).map(|pair| pair.concat()).collect();
        pairs.sort();
        contents = pairs;
    } else if kind == "set" {
        contents.sort();
    }
    contents
}

/// Python's and Rust's encodings of the same fixture: byte-identical exactly
/// when the serializer says so.
fn compare_bytes<S: Fixture>(server: &RedisServer, model: &str) {
    let (python, rust) = (raw_contents(server, &key::<S>("py", model)), raw_contents(server, &key::<S>("rs", model)));
    if S::BYTE_IDENTICAL {
        assert_eq!(python, rust, "{model}/{}: Python and Rust stored different bytes", S::LABEL);
    } else {
        assert_ne!(python, rust, "{model}/{}: expected different bytes (pickle protocols differ)", S::LABEL);
    }
    println!("bytes {model}/{}: identical = {}", S::LABEL, python == rust);
}

thread_local! {
    /// Whether this test's Rust models run in exactly-once mode now.
    static EXACTLY_ONCE: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// The options of the Rust models in the current pass of this test.
fn options() -> ModelOptions {
    ModelOptions::new().exactly_once(EXACTLY_ONCE.get())
}

/// Runs `test` twice: with the Rust models as they are by default, then in
/// exactly-once mode; returns what the second pass returned.
fn in_both_modes<T>(test: impl Fn() -> T) -> T {
    EXACTLY_ONCE.set(false);
    test();
    EXACTLY_ONCE.set(true);
    let result = test();
    println!("passed in exactly-once mode too");
    result
}

/// The common shape of a test: Python writes, Rust writes, bytes compared, Rust
/// checks Python's keys, Python checks Rust's; in both modes.
fn interop(model: &str, write: impl Fn(&Client), check: impl Fn(&Client)) -> RedisServer {
    in_both_modes(|| {
        let server = server();
        let client = client(&server);
        run_python(&server, "write", model);
        write(&client);
        for_each_serializer!(compare_bytes(&server, model));
        check(&client);
        run_python(&server, "check", model);
        server
    })
}

// --- Map -----------------------------------------------------------------------

fn write_map<S: Fixture>(client: &Client) {
    Map::<S>::with_options(client, key::<S>("rs", "map"), options()).unwrap().set(S::samples()[0].borrow()).unwrap();
}

fn check_map<S: Fixture>(client: &Client) {
    assert_eq!(
        Map::<S>::with_options(client, key::<S>("py", "map"), options()).unwrap().get().unwrap(),
        Some(S::samples()[0].clone())
    );
}

#[test]
fn map_interop() {
    interop("map", |c| for_each_serializer!(write_map(c)), |c| for_each_serializer!(check_map(c)));
}

// --- HashMap ---------------------------------------------------------------------

fn write_hash_map<S: Fixture>(client: &Client) {
    let hash = HashMap::<S>::with_options(client, key::<S>("rs", "hash_map"), options()).unwrap();
    for (field, sample) in FIELDS.iter().zip(S::samples()) {
        assert!(hash.set(field, sample.borrow()).unwrap());
    }
}

fn check_hash_map<S: Fixture>(client: &Client) {
    let hash = HashMap::<S>::with_options(client, key::<S>("py", "hash_map"), options()).unwrap();
    for (field, sample) in FIELDS.iter().zip(S::samples()) {
        assert_eq!(hash.get(field).unwrap(), Some(sample), "hash_map/{} field {field}", S::LABEL);
    }
}

#[test]
fn hash_map_interop() {
    interop("hash_map", |c| for_each_serializer!(write_hash_map(c)), |c| for_each_serializer!(check_hash_map(c)));
}

// --- Pool ------------------------------------------------------------------------

fn write_pool<S: Fixture>(client: &Client) {
    let pool = Pool::<S>::with_options(client, key::<S>("rs", "pool"), options()).unwrap();
    for sample in S::samples() {
        assert!(pool.push(sample.borrow()).unwrap());
    }
}

fn check_pool<S: Fixture>(client: &Client) {
    let label = format!("pool/{}", S::LABEL);
    let pool = Pool::<S>::with_options(client, key::<S>("py", "pool"), options()).unwrap();
    let samples = S::samples();
    assert_same_members(&label, &pool.members().unwrap(), &samples);
    for sample in &samples {
        // Membership compares bytes: it holds across languages unless pickled.
        assert_eq!(pool.contains(sample.borrow()).unwrap(), S::BYTE_IDENTICAL, "{label}: contains {sample:?}");
    }
    let popped: Vec<_> = std::iter::from_fn(|| pool.pop().unwrap()).collect();
    assert_same_members(&label, &popped, &samples);
}

fn assert_rust_keys_gone<S: Fixture>(server: &RedisServer, model: &str) {
    let key = key::<S>("rs", model);
    assert_eq!(server.command(&["EXISTS", &key]).unwrap(), Reply::Int(0), "{key}: Python popped everything");
}

#[test]
fn pool_interop() {
    let server = interop("pool", |c| for_each_serializer!(write_pool(c)), |c| for_each_serializer!(check_pool(c)));
    for_each_serializer!(assert_rust_keys_gone(&server, "pool"));
}

// --- SortedSet -------------------------------------------------------------------

fn write_sorted_set<S: Fixture>(client: &Client) {
    let set = SortedSet::<S>::with_options(client, key::<S>("rs", "sorted_set"), options()).unwrap();
    for (sample, score) in S::samples().iter().zip(SCORES) {
        assert!(set.add(sample.borrow(), score).unwrap());
    }
}

fn check_sorted_set<S: Fixture>(client: &Client) {
    let label = format!("sorted_set/{}", S::LABEL);
    let set = SortedSet::<S>::with_options(client, key::<S>("py", "sorted_set"), options()).unwrap();
    let samples = S::samples();
    let lowest_first = ascending_by(&SCORES);
    let highest_first: Vec<usize> = lowest_first.iter().rev().copied().collect();
    assert_eq!(set.members().unwrap(), in_order(&samples, highest_first.clone()), "{label}");
    let scored: Vec<_> =
        highest_first.iter().map(|&i| Scored { member: samples[i].clone(), score: SCORES[i] }).collect();
    assert_eq!(set.members_with_scores().unwrap(), scored, "{label}");
    assert_eq!(set.members_by_score(..).unwrap(), in_order(&samples, lowest_first), "{label}");
    assert_eq!(set.members_by_score(0.0..=10.0).unwrap(), in_order(&samples, [0, 2]), "{label}");
    assert_eq!(set.length(..).unwrap(), 3, "{label}");
    for sample in &samples {
        assert_eq!(set.contains(sample.borrow()).unwrap(), S::BYTE_IDENTICAL, "{label}: contains {sample:?}");
    }
    // Removing a member Python added, by value: Rust must encode the same bytes.
    assert_eq!(set.rem(samples[1].borrow()).unwrap(), S::BYTE_IDENTICAL, "{label}: rem");
    assert_eq!(set.length(..).unwrap(), if S::BYTE_IDENTICAL { 2 } else { 3 }, "{label}");
}

fn check_python_removed_from_rust_set<S: Fixture>(client: &Client) {
    let set = SortedSet::<S>::with_options(client, key::<S>("rs", "sorted_set"), options()).unwrap();
    let left = set.members_by_score(..).unwrap();
    if S::BYTE_IDENTICAL {
        assert!(!left.contains(&S::samples()[1]), "sorted_set/{}: Python's rem removed Rust's member", S::LABEL);
    }
    assert_eq!(left.len(), if S::BYTE_IDENTICAL { 2 } else { 3 }, "sorted_set/{}", S::LABEL);
}

#[test]
fn sorted_set_interop() {
    let server = interop(
        "sorted_set",
        |c| for_each_serializer!(write_sorted_set(c)),
        |c| for_each_serializer!(check_sorted_set(c)),
    );
    let client = client(&server);
    for_each_serializer!(check_python_removed_from_rust_set(&client));
}

// --- Queue -----------------------------------------------------------------------

fn write_queue<S: Fixture>(client: &Client) {
    let queue = Queue::<S>::with_options(client, key::<S>("rs", "queue"), options()).unwrap();
    for (n, sample) in S::samples().iter().enumerate() {
        assert_eq!(queue.push(sample.borrow()).unwrap(), n as u64 + 1);
    }
}

fn check_queue<S: Fixture>(client: &Client) {
    let queue = Queue::<S>::with_options(client, key::<S>("py", "queue"), options()).unwrap();
    let samples = S::samples();
    assert_eq!(queue.size().unwrap(), 3);
    assert_eq!(queue.items().unwrap(), in_order(&samples, [2, 1, 0]), "queue/{}: newest first", S::LABEL);
    let popped: Vec<_> = std::iter::from_fn(|| queue.pop().unwrap()).collect();
    assert_eq!(popped, samples, "queue/{}: first in, first out", S::LABEL);
}

#[test]
fn queue_interop() {
    let server = interop("queue", |c| for_each_serializer!(write_queue(c)), |c| for_each_serializer!(check_queue(c)));
    for_each_serializer!(assert_rust_keys_gone(&server, "queue"));
}

// --- PriorityQueue ---------------------------------------------------------------

fn write_priority_queue<S: Fixture>(client: &Client) {
    let pq = PriorityQueue::<S>::with_options(client, key::<S>("rs", "priority_queue"), options()).unwrap();
    for (sample, priority) in S::samples().iter().zip(PRIORITIES) {
        assert!(pq.push(sample.borrow(), priority).unwrap());
    }
}

fn check_priority_queue<S: Fixture>(client: &Client) {
    let pq = PriorityQueue::<S>::with_options(client, key::<S>("py", "priority_queue"), options()).unwrap();
    let popped: Vec<_> = std::iter::from_fn(|| pq.pop().unwrap()).collect();
    assert_eq!(popped, in_order(&S::samples(), ascending_by(&PRIORITIES)), "priority_queue/{}", S::LABEL);
}

#[test]
fn priority_queue_interop() {
    let server = interop(
        "priority_queue",
        |c| for_each_serializer!(write_priority_queue(c)),
        |c| for_each_serializer!(check_priority_queue(c)),
    );
    for_each_serializer!(assert_rust_keys_gone(&server, "priority_queue"));
}

// --- Stack -----------------------------------------------------------------------

fn write_stack<S: Fixture>(client: &Client) {
    let stack = Stack::<S>::with_options(client, key::<S>("rs", "stack"), options()).unwrap();
    for sample in S::samples() {
        stack.push(sample.borrow()).unwrap();
    }
}

fn check_stack<S: Fixture>(client: &Client) {
    let stack = Stack::<S>::with_options(client, key::<S>("py", "stack"), options()).unwrap();
    let popped: Vec<_> = std::iter::from_fn(|| stack.pop().unwrap()).collect();
    assert_eq!(popped, in_order(&S::samples(), [2, 1, 0]), "stack/{}: last in, first out", S::LABEL);
}

#[test]
fn stack_interop() {
    let server = interop("stack", |c| for_each_serializer!(write_stack(c)), |c| for_each_serializer!(check_stack(c)));
    for_each_serializer!(assert_rust_keys_gone(&server, "stack"));
}

// --- Counter (Numeric) -------------------------------------------------------------

#[test]
fn counter_interop() {
    in_both_modes(|| {
        let server = server();
        let client = client(&server);
        let counter_at = |key| Counter::with_options(&client, key, options()).unwrap();
        run_python(&server, "write", "counter");
        assert_eq!(counter_at("rs:counter").incr(5).unwrap(), 5);
        assert_eq!(raw_contents(&server, "py:counter"), raw_contents(&server, "rs:counter"));
        let counter = counter_at("py:counter");
        assert_eq!(counter.get().unwrap(), 5);
        assert_eq!(counter.incr(3).unwrap(), 8);
        run_python(&server, "check", "counter");
        assert_eq!(counter_at("rs:counter").get().unwrap(), 8, "Python's incr counted");
    });
}

// --- Lock --------------------------------------------------------------------------

#[test]
fn lock_interop() {
    let server = server();
    let client = client(&server);
    run_python(&server, "write", "lock");

    // Held by Python (value ""): held for Rust too, and Rust cannot release it.
    let python_held = Lock::new(&client, "py:lock").unwrap();
    assert!(python_held.locked().unwrap());
    assert_eq!(python_held.acquire(None).unwrap(), None);
    assert!(matches!(python_held.ttl().unwrap(), Ttl::Expires(left) if left <= LOCK_EXPIRY));
    let rust_held = Lock::new(&client, "rs:lock").unwrap();
    let token = rust_held.acquire(LOCK_EXPIRY).unwrap().expect("free");
    assert!(!python_held.release(&token).unwrap(), "Rust must not release a lock Python holds");
    assert!(!python_held.extend(&token, Duration::from_secs(1)).unwrap());
    assert!(python_held.locked().unwrap());

    // Python sees the Rust-held lock held, then releases it with a bare DEL (its
    // semantics), and releases its own lock.
    run_python(&server, "check", "lock");
    assert!(!rust_held.locked().unwrap());
    assert!(!rust_held.release(&token).unwrap(), "no longer held: Python deleted it");
    assert!(!python_held.locked().unwrap());
}
