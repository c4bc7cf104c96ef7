//! The async client on tokio: the same operations, the same dispatcher rules, a
//! deliberately configured response timeout, reconnection, and a pool of
//! multiplexed connections.
#![cfg(feature = "tokio")]

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{info_number, server};
use redisext::serializer::Str;
use redisext::testing::RedisServer;
use redisext::{AsyncClient, AsyncReuse, Counter, Delivery, Error, Map, Reply, Slots, Timeouts};

fn async_client(server: &RedisServer) -> AsyncClient {
    AsyncClient::open(&server.url()).unwrap()
}

#[tokio::test]
async fn models_run_unchanged_and_scripts_load_on_noscript() {
    let server = server();
    let client = async_client(&server);
    let counter = Counter::new(&client, "c").unwrap();
    let greeting = Map::<Str, _>::new(&client, "greeting").unwrap();
    assert_eq!(counter.incr(2).await.unwrap(), 2);
    greeting.set("hello").await.unwrap();
    assert_eq!(greeting.get().await.unwrap().as_deref(), Some("hello"));
    server.command(&["SCRIPT", "FLUSH"]).unwrap();
    assert_eq!(counter.incr(1).await.unwrap(), 3, "NOSCRIPT: loaded and retried once");
    assert_eq!(counter.get().await.unwrap(), 3);
    // Wrong types are named, as on the blocking client.
    server.command(&["LPUSH", "list", "x"]).unwrap();
    let list = Counter::new(&client, "list").unwrap();
    assert!(matches!(list.incr(1).await, Err(Error::WrongType { found, .. }) if found == "list"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sixty_four_tasks_share_one_model_on_one_connection() {
    let server = server();
    let client = async_client(&server);
    let counter = Arc::new(Counter::new(&client, "shared").unwrap());
    counter.incr(0).await.unwrap(); // connects and loads the script
    let before = info_number(&server, "stats", "total_connections_received");
    let tasks: Vec<_> = (0..64)
        .map(|_| {
            let counter = Arc::clone(&counter);
            tokio::spawn(async move {
                let mut seen = Vec::new();
                for _ in 0..100 {
                    seen.push(counter.incr(1).await.unwrap());
                }
                seen
            })
        })
        .collect();
    let mut seen = Vec::new();
    for task in tasks {
        seen.extend(task.await.unwrap());
    }
    seen.sort_unstable();
    let missing_or_repeated = seen.iter().zip(1..).filter(|(value, expected)| **value != *expected).count();
    println!("64 tasks x 100 increments: {} results, {missing_or_repeated} out of place", seen.len());
    assert_eq!(seen, (1..=6400).collect::<Vec<i64>>(), "every increment applied once, each value seen once");
    assert_eq!(counter.get().await.unwrap(), 6400);
    let opened = info_number(&server, "stats", "total_connections_received") - before;
    assert_eq!(opened, 1, "only the INFO connection: all 64 tasks shared the multiplexed one");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_pool_of_multiplexed_connections_spreads_tasks_over_exactly_that_many() {
    let server = server();
    let client =
        AsyncClient::builder().master(&server.url()).reuse(AsyncReuse::Multiplexed { connections: 4 }).build().unwrap();
    let counter = Counter::new(&client, "c").unwrap();
    let before = info_number(&server, "stats", "total_connections_received");
    let tasks: Vec<_> = (0..32)
        .map(|_| {
            let counter = counter.clone();
            tokio::spawn(async move {
                for _ in 0..50 {
                    counter.incr(1).await.unwrap();
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    assert_eq!(counter.get().await.unwrap(), 1600);
    let opened = info_number(&server, "stats", "total_connections_received") - before - 1;
    assert_eq!(opened, 4, "four multiplexed connections, no more");
    assert!(
        AsyncClient::builder().master(&server.url()).reuse(AsyncReuse::Multiplexed { connections: 0 }).build().is_err()
    );
}

#[tokio::test]
async fn the_response_timeout_is_set_deliberately_not_the_redis_crates_500_ms() {
    let server = server();
    // CLIENT PAUSE holds every other client's commands for 1 s; it is in force once
    // its own reply has arrived, so there is no race with the command that follows.
    let pause_for_a_second = || server.command(&["CLIENT", "PAUSE", "1000", "ALL"]).unwrap();

    // Default timeouts (30 s): the late reply is awaited and the write succeeds —
    // with the redis crate's own 500 ms default it would have failed.
    let client = async_client(&server);
    let counter = Counter::new(&client, "c").unwrap();
    counter.incr(0).await.unwrap();
    pause_for_a_second();
    assert_eq!(counter.incr(1).await.unwrap(), 1, "a late reply within the response timeout is fine");

    // A short response timeout: the write's fate is unknown, and the error says so.
    let impatient = AsyncClient::builder()
        .master(&server.url())
        .timeouts(Timeouts { connect: Duration::from_secs(2), response: Some(Duration::from_millis(200)) })
        .build()
        .unwrap();
    let counter = Counter::new(&impatient, "c").unwrap();
    counter.incr(0).await.unwrap();
    pause_for_a_second();
    match counter.incr(1).await {
        Err(error @ Error::Connection { delivery: Delivery::Unknown, .. }) => assert!(error.may_have_applied()),
        other => panic!("expected a timeout with an unknown outcome, got {other:?}"),
    }
    // It was in fact applied once the pause ended.
    let client = async_client(&server);
    assert_eq!(Counter::new(&client, "c").unwrap().get().await.unwrap(), 2);
}

#[tokio::test]
async fn a_restart_is_a_typed_error_for_a_write_then_the_connection_comes_back() {
    let mut server = server();
    let client = async_client(&server);
    let counter = Counter::new(&client, "c").unwrap();
    assert_eq!(counter.incr(1).await.unwrap(), 1);
    server.restart().unwrap();
    match counter.incr(1).await {
        Err(Error::Connection { .. }) => {}
        // The manager may already have noticed the close and reconnected.
        Ok(value) => assert_eq!(value, 1, "the restarted server is empty"),
        other => panic!("expected a connection error, got {other:?}"),
    }
    // The multiplexed connection reconnects by itself; the scripts are loaded again.
    let mut value = None;
    for _ in 0..50 {
        if let Ok(v) = counter.get().await {
            value = Some(v);
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(value.is_some(), "the client never reconnected");
    assert!(counter.incr(1).await.unwrap() >= 1);
}

#[tokio::test]
async fn async_pipelines_run_the_same_batches() {
    let server = server();
    let client = async_client(&server);
    let a = Counter::new(&client, "a").unwrap();
    let b = Map::<Str, _>::new(&client, "b").unwrap();
    let pipe = client.pipeline();
    let slots = (a.on(&pipe).incr(1), b.on(&pipe).set("x"), a.on(&pipe).incr(1), b.on(&pipe).get());
    pipe.run().await.unwrap();
    assert_eq!(slots.take().unwrap(), (1, (), 2, Some("x".to_owned())));
    let slots = (a.on(&pipe).incr(10), a.on(&pipe).get());
    pipe.run_atomic().await.unwrap();
    assert_eq!(slots.take().unwrap(), (12, 12));
    assert_eq!(server.command_calls("exec").unwrap(), 1);
}

#[test]
fn outside_a_tokio_runtime_an_operation_is_an_error_not_a_panic() {
    use std::future::Future;
    use std::task::{Context, Poll, Waker};
    let server = server();
    let client = async_client(&server);
    let counter = Counter::new(&client, "c").unwrap();
    let mut pending = std::pin::pin!(counter.incr(1));
    match pending.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(Err(Error::Connection { delivery: Delivery::NotSent, source, .. })) => {
            assert!(source.to_string().contains("tokio runtime"), "{source}")
        }
        Poll::Ready(other) => panic!("expected a not-sent connection error, got {other:?}"),
        Poll::Pending => panic!("expected an immediate error"),
    }
}

#[tokio::test]
async fn an_abandoned_async_pipeline_never_claims_its_operations_did_not_run() {
    let server = server();
    let client = async_client(&server);
    let counter = Counter::new(&client, "c").unwrap();
    counter.incr(0).await.unwrap();
    // A pipeline dropped before it was ever polled sent nothing.
    let pipe = client.pipeline();
    let unsent = counter.on(&pipe).incr(1);
    drop(pipe.run());
    assert!(matches!(unsent.take(), Err(Error::Connection { delivery: Delivery::NotSent, .. })));

    // Dropped while waiting for the server's reply: the increment was sent and
    // runs once the pause ends, so the slot must say it may have run.
    server.command(&["CLIENT", "PAUSE", "1000", "ALL"]).unwrap();
    let pipe = client.pipeline();
    let slot = counter.on(&pipe).incr(1);
    let abandoned = tokio::time::timeout(Duration::from_millis(100), pipe.run()).await;
    assert!(abandoned.is_err(), "the run was still waiting when it was dropped");
    let error = slot.take().unwrap_err();
    assert!(error.may_have_applied(), "{error:?}");
    assert!(error.to_string().contains("abandoned"), "{error}");
    server
        .wait_until(Duration::from_secs(10), |s| Ok(s.command(&["GET", "c"])? == redisext::Reply::Bulk(b"1".to_vec())))
        .unwrap();
}

#[tokio::test]
async fn after_a_restart_reads_on_several_multiplexed_connections_all_succeed() {
    let mut server = server();
    let client =
        AsyncClient::builder().master(&server.url()).reuse(AsyncReuse::Multiplexed { connections: 4 }).build().unwrap();
    let map = Map::<Str, AsyncClient>::new(&client, "m").unwrap();
    for _ in 0..8 {
        map.set("v").await.unwrap();
    }
    server.restart().unwrap();
    for round in 0..4 {
        assert_eq!(map.get().await.unwrap(), None, "read {round} after the restart");
    }
}

/// A client kept across runtimes (a `static` shared by `#[tokio::test]`s, or
/// `block_on` on runtimes of their own): the shared connections' driver tasks
/// die with the runtime that opened them. The next operation, on another
/// runtime, must open its own connection rather than fail a write whose fate
/// it cannot know.
#[test]
fn a_client_outlives_the_runtime_that_opened_its_connections() {
    let server = server();
    let client =
        AsyncClient::builder().master(&server.url()).reuse(AsyncReuse::Multiplexed { connections: 2 }).build().unwrap();
    let counter = Counter::new(&client, "across-runtimes").unwrap();
    for round in 1..=4i64 {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        runtime.block_on(async {
            for _ in 0..3 {
                counter.incr(1).await.expect("a write on a new runtime, never a broken pipe");
            }
        });
        drop(runtime);
        assert_eq!(
            server.command(&["GET", "across-runtimes"]).unwrap(),
            Reply::Bulk((round * 3).to_string().into_bytes())
        );
    }
}
