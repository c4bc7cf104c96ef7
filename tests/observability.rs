//! The metrics hook sees every operation (alone or pipelined, blocking and
//! async, ok or failed); with feature `tracing`, each call has a span carrying
//! its script, SHA1 prefix, node, attempts, NOSCRIPT reloads, redirects and
//! outcome (keys only when asked for), each pipeline batch a span, and retries,
//! redirections and topology reads are events in them. A minimal capturing
//! subscriber, below, records what the crate emits.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use redisext::observe::{OperationEvent, OutcomeKind};
use redisext::{Client, Counter, Error, RetryPolicy};

/// What the metrics hook was told: script, outcome, attempts, pipelined.
type Seen = Arc<Mutex<Vec<(String, OutcomeKind, u32, bool)>>>;

fn recording() -> (Seen, impl Fn(&OperationEvent<'_>) + Send + Sync + 'static) {
    let seen: Seen = Arc::default();
    let into = Arc::clone(&seen);
    let hook = move |event: &OperationEvent<'_>| {
        into.lock().unwrap().push((event.script.name().to_owned(), event.outcome, event.attempts, event.pipelined));
    };
    (seen, hook)
}

#[test]
fn the_metrics_hook_sees_each_operation_with_its_outcome() {
    let server = common::server();
    let (seen, hook) = recording();
    let client = Client::builder().url(&server.url()).metrics(hook).build().unwrap();
    let counter = Counter::new(&client, "visits").unwrap();
    counter.incr(1).unwrap();
    counter.get().unwrap();
    server.command(&["RPUSH", "not-a-counter", "x"]).unwrap();
    let error = Counter::new(&client, "not-a-counter").unwrap().incr(1).unwrap_err();
    assert!(matches!(error, Error::WrongType { .. }), "{error:?}");

    let seen = seen.lock().unwrap();
    assert_eq!(
        *seen,
        [
            ("counter/incr".to_owned(), OutcomeKind::Ok, 1, false),
            ("counter/get".to_owned(), OutcomeKind::Ok, 1, false),
            ("counter/incr".to_owned(), OutcomeKind::ServerError, 1, false),
        ]
    );
}

#[test]
fn the_metrics_hook_sees_every_operation_of_a_pipeline() {
    let server = common::server();
    let (seen, hook) = recording();
    let client = Client::open(&server.url()).unwrap().with_metrics(hook);
    server.command(&["RPUSH", "not-a-counter", "x"]).unwrap();
    let counter = Counter::new(&client, "visits").unwrap();
    let wrong = Counter::new(&client, "not-a-counter").unwrap();
    let pipe = client.pipeline();
    let slots: Vec<_> = (0..10).map(|_| counter.on(&pipe).incr(1)).collect();
    let refused = wrong.on(&pipe).incr(1);
    pipe.run().unwrap();
    for slot in slots {
        slot.take().unwrap();
    }
    assert!(refused.take().is_err());

    let seen = seen.lock().unwrap();
    assert_eq!(seen.len(), 11, "{seen:?}");
    assert!(seen[..10].iter().all(|event| *event == ("counter/incr".to_owned(), OutcomeKind::Ok, 1, true)));
    assert_eq!(seen[10], ("counter/incr".to_owned(), OutcomeKind::ServerError, 1, true));
}

#[test]
fn a_retried_operation_reports_its_attempts_and_a_connection_outcome() {
    let url = common::server().url(); // stopped when dropped: nothing listens there
    let (seen, hook) = recording();
    let retry = RetryPolicy::default()
        .deadline(Duration::from_millis(200))
        .backoff(Duration::from_millis(5), Duration::from_millis(10));
    let client = Client::builder().url(&url).retry(retry).metrics(hook).build().unwrap();
    let error = Counter::new(&client, "visits").unwrap().incr(1).unwrap_err();
    assert!(matches!(error, Error::Connection { .. }), "{error:?}");

    let seen = seen.lock().unwrap();
    let [(script, outcome, attempts, false)] = seen.as_slice() else { panic!("{seen:?}") };
    assert_eq!((script.as_str(), *outcome), ("counter/incr", OutcomeKind::Connection));
    assert!(*attempts > 1, "retried: {attempts} attempts");
}

#[cfg(feature = "tokio")]
#[tokio::test]
async fn the_async_client_reports_operations_and_pipelines_too() {
    let server = common::server();
    let (seen, hook) = recording();
    let client = redisext::AsyncClient::builder().url(&server.url()).metrics(hook).build().unwrap();
    let counter = Counter::new(&client, "visits").unwrap();
    counter.incr(1).await.unwrap();
    let pipe = client.pipeline();
    let slots: Vec<_> = (0..3).map(|_| counter.on(&pipe).incr(1)).collect();
    pipe.run().await.unwrap();
    assert_eq!(slots.into_iter().map(|slot| slot.take().unwrap()).collect::<Vec<_>>(), [2, 3, 4]);

    let seen = seen.lock().unwrap();
    assert_eq!(seen.len(), 4, "{seen:?}");
    assert_eq!(seen[0], ("counter/incr".to_owned(), OutcomeKind::Ok, 1, false));
    assert!(seen[1..].iter().all(|event| *event == ("counter/incr".to_owned(), OutcomeKind::Ok, 1, true)));
}

#[cfg(feature = "tracing")]
mod spans {
    use std::collections::BTreeMap;
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::{Arc, Mutex};
    use std::time::Duration;

    use redisext::testing::{RedisCluster, RedisSentinels};
    use redisext::{Client, Counter, RetryPolicy, Script};
    use tracing::field::{Field, Visit};
    use tracing::span::{Attributes, Id, Record};
    use tracing::subscriber::Interest;
    use tracing::{Event, Metadata, Subscriber};

    use super::common;

    type Fields = BTreeMap<String, String>;

    #[derive(Debug, Clone)]
    struct SpanRecord {
        name: &'static str,
        fields: Fields,
    }

    #[derive(Debug, Clone)]
    struct EventRecord {
        fields: Fields,
        /// The span the event was emitted in.
        span: Option<u64>,
    }

    #[derive(Default)]
    struct Captured {
        spans: Vec<SpanRecord>,
        events: Vec<EventRecord>,
        /// The spans entered on this (the test's) thread, innermost last.
        entered: Vec<u64>,
    }

    /// Records every span and event of target `redisext`.
    #[derive(Clone, Default)]
    struct Capture {
        captured: Arc<Mutex<Captured>>,
        next_id: Arc<AtomicU64>,
    }

    struct Collect<'a>(&'a mut Fields);

    impl Visit for Collect<'_> {
        fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
            self.0.insert(field.name().to_owned(), format!("{value:?}"));
        }
        fn record_str(&mut self, field: &Field, value: &str) {
            self.0.insert(field.name().to_owned(), value.to_owned());
        }
    }

    impl Subscriber for Capture {
        fn register_callsite(&self, metadata: &'static Metadata<'static>) -> Interest {
            if self.enabled(metadata) { Interest::sometimes() } else { Interest::never() }
        }
        fn enabled(&self, metadata: &Metadata<'_>) -> bool {
            metadata.target().starts_with("redisext")
        }
        fn new_span(&self, span: &Attributes<'_>) -> Id {
            let id = self.next_id.fetch_add(1, Ordering::Relaxed) + 1;
            let mut fields = Fields::new();
            span.record(&mut Collect(&mut fields));
            let mut captured = self.captured.lock().unwrap();
            assert_eq!(captured.spans.len() as u64 + 1, id);
            captured.spans.push(SpanRecord { name: span.metadata().name(), fields });
            Id::from_u64(id)
        }
        fn record(&self, span: &Id, values: &Record<'_>) {
            let mut captured = self.captured.lock().unwrap();
            let record = &mut captured.spans[span.into_u64() as usize - 1];
            values.record(&mut Collect(&mut record.fields));
        }
        fn record_follows_from(&self, _: &Id, _: &Id) {}
        fn event(&self, event: &Event<'_>) {
            let mut fields = Fields::new();
            event.record(&mut Collect(&mut fields));
            let mut captured = self.captured.lock().unwrap();
            let span = captured.entered.last().copied();
            captured.events.push(EventRecord { fields, span });
        }
        fn enter(&self, span: &Id) {
            self.captured.lock().unwrap().entered.push(span.into_u64());
        }
        fn exit(&self, span: &Id) {
            let mut captured = self.captured.lock().unwrap();
            if let Some(at) = captured.entered.iter().rposition(|id| *id == span.into_u64()) {
                captured.entered.remove(at);
            }
        }
    }

    impl Capture {
        fn calls(&self) -> Vec<Fields> {
            let captured = self.captured.lock().unwrap();
            captured.spans.iter().filter(|span| span.name == "redisext.call").map(|span| span.fields.clone()).collect()
        }

        fn span(&self, id: u64) -> SpanRecord {
            self.captured.lock().unwrap().spans[id as usize - 1].clone()
        }

        fn events(&self, message: &str) -> Vec<EventRecord> {
            let captured = self.captured.lock().unwrap();
            captured
                .events
                .iter()
                .filter(|event| event.fields.get("message").map(String::as_str) == Some(message))
                .cloned()
                .collect()
        }
    }

    fn field<'f>(fields: &'f Fields, name: &str) -> &'f str {
        fields.get(name).map(String::as_str).unwrap_or_else(|| panic!("no field {name} in {fields:?}"))
    }

    #[test]
    fn each_call_has_a_span_with_its_script_node_attempts_reloads_and_outcome() {
        let server = common::server();
        let capture = Capture::default();
        let client = common::client(&server);
        let counter = Counter::new(&client, "visits").unwrap();
        tracing::subscriber::with_default(capture.clone(), || {
            counter.incr(1).unwrap(); // a fresh server: NOSCRIPT, loaded, retried
            counter.incr(1).unwrap();
            server.command(&["SCRIPT", "FLUSH"]).unwrap();
            counter.incr(1).unwrap();
        });

        let calls = capture.calls();
        assert_eq!(calls.len(), 3, "{calls:?}");
        let incr = Script::bundled("counter/incr");
        for (call, reloads) in calls.iter().zip(["1", "0", "1"]) {
            assert_eq!(field(call, "script"), "counter/incr");
            assert_eq!(field(call, "sha1"), &incr.sha1()[..8]);
            assert!(field(call, "node").contains(&server.address()), "{call:?}");
            assert_eq!(field(call, "attempts"), "1");
            assert_eq!(field(call, "noscript_reloads"), reloads, "{call:?}");
            assert_eq!(field(call, "redirects"), "0");
            assert_eq!(field(call, "outcome"), "ok");
            field(call, "duration_us").parse::<u64>().unwrap();
            assert!(!call.contains_key("keys"), "keys only when asked for: {call:?}");
            assert!(!call.contains_key("error"));
        }
    }

    #[test]
    fn keys_are_named_only_when_the_client_opts_in() {
        let server = common::server();
        let capture = Capture::default();
        let client = Client::builder().url(&server.url()).trace_keys(true).build().unwrap();
        let plain = common::client(&server);
        tracing::subscriber::with_default(capture.clone(), || {
            Counter::new(&client, "visits").unwrap().incr(1).unwrap();
            Counter::new(&plain, "visits").unwrap().incr(1).unwrap();
        });
        let calls = capture.calls();
        assert!(field(&calls[0], "keys").contains("visits"), "{:?}", calls[0]);
        assert!(!calls[1].contains_key("keys"), "{:?}", calls[1]);
    }

    #[test]
    fn an_error_outcome_and_its_retries_are_in_the_span() {
        let server = common::server();
        let capture = Capture::default();
        let client = common::client(&server);
        server.command(&["RPUSH", "not-a-counter", "x"]).unwrap();
        let url = common::server().url(); // stopped when dropped
        let retry = RetryPolicy::default()
            .deadline(Duration::from_millis(100))
            .backoff(Duration::from_millis(5), Duration::from_millis(10));
        let unreachable = Client::builder().url(&url).retry(retry).build().unwrap();
        let naming = client.with_trace_keys(true);
        tracing::subscriber::with_default(capture.clone(), || {
            Counter::new(&client, "not-a-counter").unwrap().incr(1).unwrap_err();
            Counter::new(&unreachable, "visits").unwrap().incr(1).unwrap_err();
            Counter::new(&naming, "not-a-counter").unwrap().incr(1).unwrap_err();
        });

        let calls = capture.calls();
        assert_eq!(field(&calls[0], "outcome"), "server_error");
        let error = field(&calls[0], "error");
        assert!(error.contains("list"), "names the type found: {error}");
        assert!(!error.contains("not-a-counter"), "but not the key, unless asked: {error}");
        assert!(field(&calls[2], "error").contains("not-a-counter"), "{:?}", calls[2]);
        assert_eq!(field(&calls[1], "outcome"), "connection");
        let attempts: usize = field(&calls[1], "attempts").parse().unwrap();
        assert!(attempts > 1, "{:?}", calls[1]);
        let retries = capture.events("retrying");
        assert_eq!(retries.len(), attempts - 1, "one event before each attempt after the first: {retries:?}");
        for retry in &retries {
            assert_eq!(field(&retry.fields, "script"), "counter/incr");
            assert!(!field(&retry.fields, "error").contains("visits"), "no key named: {retry:?}");
            let span = capture.span(retry.span.expect("in the operation's span"));
            assert_eq!(span.name, "redisext.call");
            assert_eq!(field(&span.fields, "outcome"), "connection");
        }
    }

    #[test]
    fn a_pipeline_batch_has_a_span_of_its_own() {
        let server = common::server();
        let capture = Capture::default();
        let client = common::client(&server);
        server.command(&["RPUSH", "not-a-counter", "x"]).unwrap();
        let counter = Counter::new(&client, "visits").unwrap();
        let wrong = Counter::new(&client, "not-a-counter").unwrap();
        tracing::subscriber::with_default(capture.clone(), || {
            let pipe = client.pipeline();
            let _slots: Vec<_> = (0..5).map(|_| counter.on(&pipe).incr(1)).collect();
            let _refused = wrong.on(&pipe).incr(1);
            pipe.run().unwrap();
        });
        let captured = capture.captured.lock().unwrap();
        let batches: Vec<_> = captured.spans.iter().filter(|span| span.name == "redisext.batch").collect();
        let [batch] = batches.as_slice() else { panic!("{batches:?}") };
        assert_eq!(field(&batch.fields, "operations"), "6");
        assert_eq!(field(&batch.fields, "failed"), "1");
        assert_eq!(field(&batch.fields, "attempts"), "1");
        assert_eq!(field(&batch.fields, "atomic"), "false");
        assert!(field(&batch.fields, "node").contains(&server.address()));
    }

    #[test]
    fn cluster_topology_reads_and_redirections_are_events_and_counted() {
        let cluster = RedisCluster::start(2).expect("start a 2-node cluster");
        let capture = Capture::default();
        let client = Client::builder().cluster(&cluster.url()).build().unwrap();
        let counter = Counter::new(&client, "k").unwrap();
        let slot = redisext::hash_slot(b"k");
        tracing::subscriber::with_default(capture.clone(), || {
            counter.incr(1).unwrap();
            let owner = cluster.master_of(slot).unwrap().port();
            let other = cluster.nodes().iter().map(|node| node.port()).find(|port| *port != owner).unwrap();
            cluster.migrate_slot(slot, other).unwrap();
            counter.incr(1).unwrap(); // MOVED: followed to the new owner
        });

        let reads = capture.events("topology read");
        assert!(!reads.is_empty());
        assert!(reads[0].fields["masters"].matches(':').count() == 2, "two masters: {:?}", reads[0]);
        let calls = capture.calls();
        assert_eq!(calls.len(), 2, "{calls:?}");
        assert_eq!(field(&calls[0], "redirects"), "0");
        assert_eq!(field(&calls[1], "redirects"), "1", "{:?}", calls[1]);
        let redirected = capture.events("redirected");
        assert_eq!(redirected.len(), 1, "{redirected:?}");
        assert_eq!(field(&redirected[0].fields, "asking"), "false");
        assert_eq!(capture.span(redirected[0].span.unwrap()).name, "redisext.call");
    }

    #[test]
    fn a_sentinel_failover_is_a_topology_change_event() {
        let mut sentinels = RedisSentinels::start("mymaster", 1).expect("start a master, a replica and 3 sentinels");
        let client = Client::builder().sentinel("mymaster", sentinels.sentinel_urls()).build().unwrap();
        let counter = Counter::new(&client, "visits").unwrap();
        let capture = Capture::default();
        tracing::subscriber::with_default(capture.clone(), || {
            counter.incr(1).unwrap();
            let old = sentinels.kill_master().unwrap();
            let new = sentinels.wait_for_failover().unwrap().port();
            // A read (a write whose reply is lost is never resent): the old
            // master is unreachable, so the read is sent again on a new
            // connection, after the sentinels are asked again.
            counter.get().unwrap();
            let changes = capture.events("topology changed");
            let [change] = changes.as_slice() else { panic!("{changes:?}") };
            assert!(change.fields["before"].contains(&format!(":{old}")), "{change:?}");
            assert!(change.fields["after"].contains(&format!(":{new}")), "{change:?}");
            let span = capture.span(change.span.expect("in the operation that noticed"));
            assert_eq!(field(&span.fields, "script"), "counter/get");
            assert_eq!(field(&span.fields, "outcome"), "ok");
        });
    }

    #[cfg(feature = "tokio")]
    #[test]
    fn an_async_call_has_its_span_too() {
        let server = common::server();
        let capture = Capture::default();
        tracing::subscriber::with_default(capture.clone(), || {
            // A runtime on this thread, where the capturing subscriber is the default.
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            runtime.block_on(async {
                let client = redisext::AsyncClient::open(&server.url()).unwrap();
                let counter = Counter::new(&client, "visits").unwrap();
                counter.incr(1).await.unwrap();
                let pipe = client.pipeline();
                let _slot = counter.on(&pipe).incr(1);
                pipe.run().await.unwrap();
            });
        });
        let calls = capture.calls();
        let [call] = calls.as_slice() else { panic!("{calls:?}") };
        assert_eq!(field(call, "script"), "counter/incr");
        assert_eq!(field(call, "noscript_reloads"), "1", "a fresh server");
        assert_eq!(field(call, "outcome"), "ok");
        assert!(field(call, "node").contains(&server.address()));
        let captured = capture.captured.lock().unwrap();
        let batch = captured.spans.iter().find(|span| span.name == "redisext.batch").expect("a batch span");
        assert_eq!(field(&batch.fields, "operations"), "1");
        assert_eq!(field(&batch.fields, "failed"), "0");
    }
}
