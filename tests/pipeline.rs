//! Pipelines: typed results in order, transactions, and what happens when the
//! server loses its scripts in the middle of a batch.

mod common;

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use common::{client, info_number, server};
use redisext::backend::Request;
use redisext::serializer::Str;
use redisext::testing::RedisServer;
use redisext::{
    Backend, Client, CommandError, Counter, Dsn, Error, Map, Node, RedisBackend, Reply, Reuse, Session, Slot, Slots,
    Timeouts,
};

#[test]
fn operations_across_models_and_keys_run_in_one_batch_with_typed_results() {
    let server = server();
    let client = client(&server);
    let visitors = Counter::new(&client, "visitors").unwrap();
    let greeting = Map::<Str>::new(&client, "greeting").unwrap();
    let pipe = client.pipeline();
    let slots = (
        visitors.on(&pipe).incr(1),
        greeting.on(&pipe).set("hello"),
        visitors.on(&pipe).incr(41),
        greeting.on(&pipe).get(),
        visitors.on(&pipe).get(),
    );
    assert_eq!(pipe.len(), 5);
    assert_eq!(server.command_calls("evalsha").unwrap(), 0, "queued, not sent");
    pipe.run().unwrap();
    assert!(pipe.is_empty());
    let (first, (), second, text, total) = slots.take().unwrap();
    assert_eq!((first, second, text.as_deref(), total), (1, 42, Some("hello"), 42));
    // Each distinct script loaded once, before its EVALSHAs; no EVALSHA was refused.
    assert_eq!(server.command_calls("script|load").unwrap(), 4);
    assert_eq!(server.command_calls("evalsha").unwrap() + server.command_calls("evalsha_ro").unwrap(), 5);
    assert_eq!(noscript_errors(&server), 0, "no EVALSHA met NOSCRIPT");
}

#[test]
fn a_list_of_slots_gives_a_typed_list_in_order() {
    let server = server();
    let client = client(&server);
    let counter = Counter::new(&client, "c").unwrap();
    let pipe = client.pipeline();
    let slots: Vec<Slot<i64>> = (1..=100).map(|_| counter.on(&pipe).incr(1)).collect();
    pipe.run().unwrap();
    assert_eq!(slots.take().unwrap(), (1..=100).collect::<Vec<i64>>());
}

#[test]
fn a_slot_read_before_its_pipeline_ran_says_so() {
    let server = server();
    let client = client(&server);
    let pipe = client.pipeline();
    let slot = Counter::new(&client, "c").unwrap().on(&pipe).incr(1);
    assert!(!slot.is_ready());
    assert!(matches!(slot.take(), Err(Error::PipelineNotRun { index: 0 })));
}

#[test]
fn each_operation_keeps_its_own_error() {
    let server = server();
    server.command(&["LPUSH", "list", "x"]).unwrap();
    let client = client(&server);
    let pipe = client.pipeline();
    let ok = Counter::new(&client, "c").unwrap().on(&pipe).incr(1);
    let wrong = Counter::new(&client, "list").unwrap().on(&pipe).incr(1);
    let after = Counter::new(&client, "c").unwrap().on(&pipe).incr(1);
    pipe.run().expect("every operation was answered");
    assert_eq!(ok.take().unwrap(), 1);
    match wrong.take() {
        Err(Error::WrongType { found, expected: "string", .. }) => assert_eq!(found, "list"),
        other => panic!("expected WrongType, got {other:?}"),
    }
    assert_eq!(after.take().unwrap(), 2);
}

#[test]
fn take_each_never_drops_a_popped_item_because_another_operation_failed() {
    let server = server();
    server.command(&["SET", "not-json", "{oops"]).unwrap();
    server.command(&["LPUSH", "queue", "precious"]).unwrap();
    let client = client(&server);
    let pipe = client.pipeline();
    let broken = Map::<redisext::serializer::Json<u32>>::new(&client, "not-json").unwrap();
    let queue = redisext::Queue::<Str>::new(&client, "queue").unwrap();
    let slots = (broken.on(&pipe).get(), queue.on(&pipe).pop());
    pipe.run().unwrap();
    let (decoded, popped) = slots.take_each();
    assert!(matches!(decoded, Err(Error::Decode { .. })), "{decoded:?}");
    assert_eq!(popped.unwrap().as_deref(), Some("precious"), "the pop's item is still in hand");
    assert_eq!(server.command(&["LLEN", "queue"]).unwrap(), Reply::Int(0), "it really left Redis");

    // A list of slots too.
    let pipe = client.pipeline();
    let slots = vec![
        Counter::new(&client, "not-json").unwrap().on(&pipe).incr(1),
        Counter::new(&client, "n").unwrap().on(&pipe).incr(1),
    ];
    pipe.run().unwrap();
    let each = slots.take_each();
    assert!(matches!(each[0], Err(Error::NotAnInteger { .. })), "{:?}", each[0]);
    assert_eq!(each[1].as_ref().unwrap(), &1);
}

#[test]
fn an_operation_that_cannot_be_built_is_not_sent_and_stops_its_transaction() {
    let server = server();
    let client = client(&server);
    let counter = Counter::new(&client, "c").unwrap();

    let pipe = client.pipeline();
    let before = counter.on(&pipe).incr(1);
    let bad = counter.on(&pipe).rename(""); // an empty key: refused before sending
    let after = counter.on(&pipe).incr(1);
    match pipe.run() {
        Err(Error::BatchIncomplete { answered, not_run, unknown, .. }) => {
            assert_eq!((answered, not_run, unknown), (vec![0, 2], vec![1], vec![]));
        }
        other => panic!("expected BatchIncomplete, got {other:?}"),
    }
    assert_eq!((before.take().unwrap(), after.take().unwrap()), (1, 2));
    assert!(matches!(bad.take(), Err(Error::EmptyKey)));

    let pipe = client.pipeline();
    let first = counter.on(&pipe).incr(1);
    let _bad = counter.on(&pipe).rename("");
    match pipe.run_atomic() {
        Err(Error::BatchIncomplete { answered, not_run, .. }) => {
            assert_eq!((answered, not_run), (vec![], vec![0, 1]));
        }
        other => panic!("expected BatchIncomplete, got {other:?}"),
    }
    assert!(matches!(first.take(), Err(Error::NotApplied { .. })));
    assert_eq!(counter.get().unwrap(), 2, "nothing of the transaction was applied");
}

#[test]
fn run_atomic_is_one_transaction_with_the_scripts_loaded_inside() {
    let server = server();
    let client = client(&server);
    let a = Counter::new(&client, "a").unwrap();
    let b = Counter::new(&client, "b").unwrap();
    let pipe = client.pipeline();
    let slots = (a.on(&pipe).incr(1), b.on(&pipe).incr(2), a.on(&pipe).get());
    pipe.run_atomic().unwrap();
    assert_eq!(slots.take().unwrap(), (1, 2, 1));
    assert_eq!(server.command_calls("multi").unwrap(), 1);
    assert_eq!(server.command_calls("exec").unwrap(), 1);
    assert_eq!(server.command_calls("script|load").unwrap(), 2, "loaded inside the transaction");
}

#[test]
fn transactions_are_atomic_under_concurrency() {
    // Writers move one unit from `a` to `b` in a transaction; readers read both in
    // a transaction. a + b must always be 0 — never a half-applied transfer.
    let server = server();
    let stop = AtomicBool::new(false);
    let (reads, violations) = (AtomicU64::new(0), AtomicU64::new(0));
    std::thread::scope(|scope| {
        let writers: Vec<_> = (0..6)
            .map(|_| {
                scope.spawn(|| {
                    let client = client(&server);
                    let (a, b) = (Counter::new(&client, "a").unwrap(), Counter::new(&client, "b").unwrap());
                    for _ in 0..150 {
                        let pipe = client.pipeline();
                        let slots = (a.on(&pipe).incr(-1), b.on(&pipe).incr(1));
                        pipe.run_atomic().unwrap();
                        slots.take().unwrap();
                    }
                })
            })
            .collect();
        for _ in 0..2 {
            scope.spawn(|| {
                let client = client(&server);
                let (a, b) = (Counter::new(&client, "a").unwrap(), Counter::new(&client, "b").unwrap());
                while !stop.load(Ordering::Relaxed) {
                    let pipe = client.pipeline();
                    let slots = (a.on(&pipe).get(), b.on(&pipe).get());
                    pipe.run_atomic().unwrap();
                    let (a, b) = slots.take().unwrap();
                    reads.fetch_add(1, Ordering::Relaxed);
                    if a + b != 0 {
                        violations.fetch_add(1, Ordering::Relaxed);
                    }
                }
            });
        }
        for writer in writers {
            writer.join().unwrap();
        }
        stop.store(true, Ordering::Relaxed);
    });
    let (reads, violations) = (reads.into_inner(), violations.into_inner());
    println!("atomic transfers: 900, consistent reads: {reads}, violations: {violations}");
    assert!(reads > 0);
    assert_eq!(violations, 0, "{violations} of {reads} reads saw half a transaction");
    let client = client(&server);
    assert_eq!(Counter::new(&client, "b").unwrap().get().unwrap(), 900);
}

/// Flushes the scripts in a loop on its own connection until `stop`; returns how
/// many times.
fn flush_until(server: &RedisServer, stop: &AtomicBool) -> u64 {
    let mut connection = redis_connection(server);
    let mut flushes = 0;
    // Bounded: at most 200 000 flushes, and the workers stop it when done.
    while !stop.load(Ordering::Relaxed) && flushes < 200_000 {
        redis::cmd("SCRIPT").arg("FLUSH").exec(&mut connection).unwrap();
        flushes += 1;
    }
    flushes
}

/// A plain connection of the test's own: another client's doings.
fn redis_connection(server: &RedisServer) -> redis::Connection {
    redis::Client::open(server.url()).unwrap().get_connection().unwrap()
}

/// From `INFO errorstats`: how many NOSCRIPT errors the server answered.
fn noscript_errors(server: &RedisServer) -> u64 {
    let info = server.info("errorstats").unwrap();
    info.lines()
        .find_map(|line| line.strip_prefix("errorstat_NOSCRIPT:count="))
        .map_or(0, |n| n.trim().parse().unwrap())
}

#[test]
fn script_flush_in_a_loop_never_drops_or_repeats_an_operation() {
    let server = server();
    let stop = AtomicBool::new(false);
    let totals = Mutex::new((0i64, 0i64)); // applied to the counter, applied to the map
    let stats = Mutex::new([0u64; 4]); // complete batches, incomplete batches, ops run, ops not run
    let mut seen_values = Vec::new();
    let flushes = std::thread::scope(|scope| {
        let flusher = scope.spawn(|| flush_until(&server, &stop));
        let workers: Vec<_> = (0..4)
            .map(|worker| {
                let (server, totals, stats) = (&server, &totals, &stats);
                scope.spawn(move || {
                    let client = client(server);
                    let counter = Counter::new(&client, "c").unwrap();
                    let map = Map::<Str>::new(&client, "m").unwrap();
                    let mut returned = Vec::new();
                    // 400 operations (≈ 40 KB) per batch: more than the server reads
                    // at once, so a flush can land between our loads and our calls.
                    for round in 0..40 {
                        let pipe = client.pipeline();
                        let mut counted = Vec::new();
                        let mut mapped = Vec::new();
                        for i in 0..400i64 {
                            let amount = 1 + (i + worker) % 5;
                            match i % 4 {
                                0 | 1 => counted.push((amount, counter.on(&pipe).incr(amount))),
                                2 => mapped.push((amount, map.on(&pipe).incr(amount))),
                                _ => drop(counter.on(&pipe).get()),
                            }
                        }
                        let atomic = round % 4 == 3;
                        let result = if atomic { pipe.run_atomic() } else { pipe.run() };
                        let not_run = match result {
                            Ok(()) => Vec::new(),
                            Err(Error::BatchIncomplete { not_run, unknown, .. }) => {
                                assert!(unknown.is_empty(), "no connection trouble here: {unknown:?}");
                                assert!(!atomic, "a transaction loads its scripts inside: it cannot lose them");
                                not_run
                            }
                            Err(other) => panic!("unexpected error: {other}"),
                        };
                        let mut applied = (0, 0);
                        let (mut ran, mut vanished) = (0, 0);
                        for (target, slots) in [(0, counted), (1, mapped)] {
                            for (amount, slot) in slots {
                                let index = slot.index();
                                match slot.take() {
                                    Ok(value) => {
                                        assert!(!not_run.contains(&index), "#{index} listed as not run but answered");
                                        if target == 0 {
                                            applied.0 += amount;
                                            returned.push(value);
                                        } else {
                                            applied.1 += amount;
                                        }
                                        ran += 1;
                                    }
                                    Err(Error::ScriptVanished { .. }) => {
                                        assert!(not_run.contains(&index), "#{index} vanished but not listed");
                                        vanished += 1;
                                    }
                                    Err(other) => panic!("unexpected error for #{index}: {other}"),
                                }
                            }
                        }
                        let mut totals = totals.lock().unwrap();
                        totals.0 += applied.0;
                        totals.1 += applied.1;
                        let mut stats = stats.lock().unwrap();
                        stats[if not_run.is_empty() { 0 } else { 1 }] += 1;
                        stats[2] += ran;
                        stats[3] += vanished;
                    }
                    returned
                })
            })
            .collect();
        for worker in workers {
            seen_values.extend(worker.join().unwrap());
        }
        stop.store(true, Ordering::Relaxed);
        flusher.join().unwrap()
    });
    let (applied_counter, applied_map) = totals.into_inner().unwrap();
    let [complete, incomplete, ran, vanished] = stats.into_inner().unwrap();
    let noscript = noscript_errors(&server);
    let client = client(&server);
    let counter_value = Counter::new(&client, "c").unwrap().get().unwrap();
    let map_value = Map::<Str>::new(&client, "m").unwrap().get().unwrap().map_or(0, |v| v.parse().unwrap());
    println!(
        "flushes: {flushes}, NOSCRIPT replies: {noscript}, batches complete: {complete}, incomplete: {incomplete}, \
         operations run: {ran}, reported not run: {vanished}; counter {counter_value} (applied as reported \
         {applied_counter}), map {map_value} (applied as reported {applied_map})"
    );
    assert_eq!(counter_value, applied_counter, "counter: an operation was lost or applied twice");
    assert_eq!(map_value, applied_map, "map: an operation was lost or applied twice");
    // Every increment of the counter answered a distinct new value.
    let distinct: std::collections::HashSet<_> = seen_values.iter().collect();
    assert_eq!(distinct.len(), seen_values.len(), "two increments returned the same value");
    assert!(flushes > 0 && noscript > 0, "the flushes never hit a batch: the test proved nothing");
}

/// A backend of the test's own, wrapping the default one: before the `nth`
/// EVALSHA of a batch (counting from 0) another connection flushes the scripts, and
/// reloads `reload` if given — another client's doing, at the worst moment. Its
/// sessions send pipelines with the trait's default, one command at a time.
struct FlushBeforeEval {
    inner: RedisBackend,
    other_client: std::sync::Mutex<redis::Connection>,
    nth: usize,
    reload: Option<&'static str>,
    flushes: AtomicU64,
}

struct FlushSession<'a> {
    inner: <RedisBackend as Backend>::Session<'a>,
    backend: &'a FlushBeforeEval,
    evals: usize,
}

impl Backend for FlushBeforeEval {
    type Session<'a> = FlushSession<'a>;

    fn session(&self, node: Node) -> Result<FlushSession<'_>, CommandError> {
        Ok(FlushSession { inner: self.inner.session(node)?, backend: self, evals: 0 })
    }

    fn describe(&self, node: Node) -> String {
        self.inner.describe(node)
    }
}

impl Session for FlushSession<'_> {
    fn query(&mut self, request: &Request<'_>) -> Result<Reply, CommandError> {
        if let Request::Eval(_) = request {
            if self.evals == self.backend.nth {
                let mut other = self.backend.other_client.lock().unwrap();
                redis::cmd("SCRIPT").arg("FLUSH").exec(&mut *other).unwrap();
                if let Some(name) = self.backend.reload {
                    let source = redisext::script::find(name).unwrap().source();
                    redis::cmd("SCRIPT").arg("LOAD").arg(source).exec(&mut *other).unwrap();
                }
                self.backend.flushes.fetch_add(1, Ordering::Relaxed);
            }
            self.evals += 1;
        }
        self.inner.query(request)
    }

    fn is_fresh(&self) -> bool {
        self.inner.is_fresh()
    }
}

fn backend(server: &RedisServer) -> RedisBackend {
    RedisBackend::new(&Dsn::parse(&server.url()).unwrap(), None, Reuse::Lazy, Timeouts::default()).unwrap()
}

fn flushing_client(server: &RedisServer, nth: usize, reload: Option<&'static str>) -> Client<FlushBeforeEval> {
    let (inner, other_client) = (backend(server), std::sync::Mutex::new(redis_connection(server)));
    Client::with_backend(FlushBeforeEval { inner, other_client, nth, reload, flushes: AtomicU64::new(0) })
}

#[test]
fn scripts_lost_for_the_whole_end_of_a_batch_are_loaded_and_sent_again_in_order() {
    let server = server();
    let client = flushing_client(&server, 1, None);
    let a = Counter::new(&client, "a").unwrap();
    let b = Map::<Str, _>::new(&client, "b").unwrap();
    let pipe = client.pipeline();
    let slots = (a.on(&pipe).incr(1), b.on(&pipe).incr(1), a.on(&pipe).incr(1));
    pipe.run().expect("the tail is sent again");
    assert_eq!(slots.take().unwrap(), (1, 1, 2));
    assert_eq!(client.backend().flushes.load(Ordering::Relaxed), 1);
    assert_eq!(noscript_errors(&server), 2, "both calls of the tail were refused, then sent again");
}

#[test]
fn scripts_lost_in_the_middle_of_a_batch_give_a_typed_error_naming_what_ran() {
    let server = server();
    // Before the second call the scripts are flushed, and another client loads
    // counter/incr again: the map call is refused, the last counter call runs.
    let client = flushing_client(&server, 1, Some("counter/incr"));
    let a = Counter::new(&client, "a").unwrap();
    let b = Map::<Str, _>::new(&client, "b").unwrap();
    let pipe = client.pipeline();
    let (first, middle, last) = (a.on(&pipe).incr(1), b.on(&pipe).incr(1), a.on(&pipe).incr(1));
    match pipe.run() {
        Err(error @ Error::BatchIncomplete { .. }) => {
            assert!(!error.may_have_applied());
            let Error::BatchIncomplete { answered, not_run, unknown, first } = error else { unreachable!() };
            assert_eq!((answered, not_run, unknown), (vec![0, 2], vec![1], vec![]));
            assert!(first.contains("map/incr"), "{first}");
        }
        other => panic!("expected BatchIncomplete, got {other:?}"),
    }
    assert_eq!((first.take().unwrap(), last.take().unwrap()), (1, 2));
    assert!(matches!(middle.take(), Err(Error::ScriptVanished { script }) if script.name() == "map/incr"));
    assert_eq!(b.get().unwrap(), None, "the refused call did not run, and was not resent");
    assert_eq!(a.get().unwrap(), 2);
}

#[test]
fn a_write_batch_after_a_restart_goes_out_on_a_new_connection() {
    let mut server = server();
    // No retry: the closed connection is seen before the batch is written.
    let client = client(&server).with_retry(redisext::RetryPolicy::never());
    let counter = Counter::new(&client, "c").unwrap();
    counter.incr(1).unwrap();
    server.restart().unwrap();
    let pipe = client.pipeline();
    let slots = (counter.on(&pipe).incr(1), counter.on(&pipe).incr(1));
    pipe.run().expect("the batch went out on a new connection");
    assert_eq!(slots.take().unwrap(), (1, 2), "on the new, empty server");
}

#[test]
fn a_write_batch_cut_by_a_restart_reports_unknown_and_a_read_batch_is_resent() {
    let mut server = server();
    // The redis crate's connections cannot be looked at before a write: the
    // batch goes into the closed socket.
    let mine = redis::Client::open(server.url().as_str()).unwrap();
    let client = Client::from_redis_client(mine).unwrap();
    let counter = Counter::new(&client, "c").unwrap();
    counter.incr(1).unwrap();
    server.restart().unwrap();
    let pipe = client.pipeline();
    let slot = counter.on(&pipe).incr(1);
    match pipe.run() {
        Err(error @ Error::BatchIncomplete { .. }) => {
            let Error::BatchIncomplete { answered, not_run, unknown, .. } = &error else { unreachable!() };
            assert!(answered.is_empty());
            assert_eq!(not_run.len() + unknown.len(), 1, "{error}");
        }
        other => panic!("expected BatchIncomplete, got {other:?}"),
    }
    assert!(matches!(slot.take(), Err(Error::Connection { .. })));

    server.restart().unwrap();
    let pipe = client.pipeline();
    let slots = (counter.on(&pipe).get(), counter.on(&pipe).get());
    pipe.run().expect("reads are sent again on a fresh connection");
    assert_eq!(slots.take().unwrap(), (0, 0));
}

#[test]
fn per_command_pipelines_open_one_connection_per_run() {
    let server = server();
    let client = Client::builder().master(&server.url()).reuse(Reuse::PerCommand).build().unwrap();
    let counter = Counter::new(&client, "c").unwrap();
    let before = info_number(&server, "stats", "total_connections_received");
    let pipe = client.pipeline();
    let slots: Vec<_> = (0..50).map(|_| counter.on(&pipe).incr(1)).collect();
    pipe.run().unwrap();
    assert_eq!(slots.take().unwrap().last(), Some(&50));
    let after = info_number(&server, "stats", "total_connections_received");
    assert_eq!(after - before, 2, "one connection for the batch, one for the INFO");
}
