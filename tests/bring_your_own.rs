//! Clients on redis crate objects the user already has — a `redis::Client`, an
//! r2d2 pool, a `ConnectionManager`, a `MultiplexedConnection`, a deadpool-redis
//! pool — against a real server: scripts reloaded after `SCRIPT FLUSH` (NOSCRIPT
//! recognised through each), error replies typed, pipelines, counters exact under
//! concurrency, and blocking waits that do not stall the shared connection.

mod common;

use std::time::Duration;

use common::server;
use redisext::serializer::Str;
use redisext::testing::RedisServer;
use redisext::{Backend, Client, Counter, Error, Lock, ReliableQueue};

/// What every blocking client must do, whatever it is built on.
fn exercise<B: Backend>(server: &RedisServer, client: &Client<B>) {
    let counter = Counter::new(client, "visits").unwrap();
    assert_eq!(counter.incr(2).unwrap(), 2);
    server.command(&["SCRIPT", "FLUSH"]).unwrap();
    assert_eq!(counter.incr(1).unwrap(), 3, "NOSCRIPT recognised: loaded and retried");
    server.command(&["LPUSH", "a-list", "x"]).unwrap();
    let wrong = Counter::new(client, "a-list").unwrap();
    assert!(matches!(wrong.incr(1), Err(Error::WrongType { found, .. }) if found == "list"));
    let pipe = client.pipeline();
    let (first, second) = (counter.on(&pipe).incr(1), counter.on(&pipe).incr(1));
    pipe.run().unwrap();
    assert_eq!((first.take().unwrap(), second.take().unwrap()), (4, 5));
    // A waiting acquire blocks on the lock's signal and is woken by the release.
    let lock = Lock::new(client, "gate").unwrap();
    let token = lock.acquire(None).unwrap().unwrap();
    std::thread::scope(|scope| {
        let waiter = scope.spawn(|| lock.acquire_wait(None, Duration::from_secs(30)).unwrap());
        server
            .wait_until(Duration::from_secs(10), |s| Ok(common::info_number(s, "clients", "blocked_clients") == 1))
            .unwrap();
        assert_eq!(counter.get().unwrap(), 5, "the shared connection is not stalled by the wait");
        assert!(lock.release(&token).unwrap());
        assert!(waiter.join().unwrap().is_some(), "woken by the release");
    });
}

#[test]
fn a_client_on_a_redis_client() {
    let server = server();
    let client = Client::from_redis_client(redis::Client::open(server.url().as_str()).unwrap()).unwrap();
    exercise(&server, &client);
    assert_eq!(format!("{client:?}"), format!("Client {{ master: \"redis://127.0.0.1:{}/0\" }}", server.port()));
}

#[cfg(feature = "pool")]
#[test]
fn a_client_on_an_r2d2_pool_keeps_a_counter_exact_under_eight_threads() {
    let server = server();
    let pool = r2d2::Pool::builder().max_size(4).build(redis::Client::open(server.url().as_str()).unwrap()).unwrap();
    let client = Client::from_r2d2_pool(pool).unwrap();
    exercise(&server, &client);
    let counter = Counter::new(&client, "hits").unwrap();
    std::thread::scope(|scope| {
        for thread in 0..8 {
            let (counter, server) = (&counter, &server);
            scope.spawn(move || {
                for i in 0..100 {
                    if thread == 0 && i == 50 {
                        server.command(&["SCRIPT", "FLUSH"]).unwrap();
                    }
                    counter.incr(1).unwrap();
                }
            });
        }
    });
    assert_eq!(counter.get().unwrap(), 800);
}

#[cfg(feature = "tokio")]
mod nonblocking {
    use super::*;
    use redisext::{AsyncBackend, AsyncClient};

    /// What every async client must do, whatever it is built on.
    pub(super) async fn exercise_async<B: AsyncBackend>(server: &RedisServer, client: &AsyncClient<B>) {
        let counter = Counter::new(client, "visits").unwrap();
        assert_eq!(counter.incr(2).await.unwrap(), 2);
        server.command(&["SCRIPT", "FLUSH"]).unwrap();
        assert_eq!(counter.incr(1).await.unwrap(), 3, "NOSCRIPT recognised: loaded and retried");
        server.command(&["LPUSH", "a-list", "x"]).unwrap();
        let wrong = Counter::new(client, "a-list").unwrap();
        assert!(matches!(wrong.incr(1).await, Err(Error::WrongType { found, .. }) if found == "list"));
        let pipe = client.pipeline();
        let (first, second) = (counter.on(&pipe).incr(1), counter.on(&pipe).incr(1));
        server.command(&["SCRIPT", "FLUSH"]).unwrap();
        pipe.run().await.unwrap();
        assert_eq!((first.take().unwrap(), second.take().unwrap()), (4, 5));
        let tasks: Vec<_> = (0..64)
            .map(|_| {
                let counter = counter.clone();
                tokio::spawn(async move {
                    for _ in 0..20 {
                        counter.incr(1).await.unwrap();
                    }
                })
            })
            .collect();
        for task in tasks {
            task.await.unwrap();
        }
        assert_eq!(counter.get().await.unwrap(), 5 + 64 * 20);
    }

    /// A `pop_wait` that blocks on the queue's signal while the shared
    /// connection keeps serving, and is woken by a push.
    pub(super) async fn wait_is_woken<B: AsyncBackend>(server: &RedisServer, client: &AsyncClient<B>, blocks: bool) {
        let queue = ReliableQueue::<Str, _>::new(client, "jobs").unwrap();
        let waiter = tokio::spawn({
            let queue = queue.clone();
            async move { queue.pop_wait(Duration::from_secs(30), Duration::from_secs(30)).await.unwrap() }
        });
        let blocked = |s: &RedisServer| -> Result<bool, redisext::testing::ServerError> {
            Ok(common::info_number(s, "clients", "blocked_clients") == 1)
        };
        if blocks {
            let deadline = std::time::Instant::now() + Duration::from_secs(10);
            while !blocked(server).unwrap() {
                assert!(std::time::Instant::now() < deadline, "the wait never blocked on the signal");
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        } else {
            tokio::time::sleep(Duration::from_millis(50)).await;
            assert!(!blocked(server).unwrap(), "without a connection for waits, the wait polls");
        }
        assert_eq!(Counter::new(client, "other").unwrap().incr(1).await.unwrap(), 1, "not stalled by the wait");
        queue.push("wake up").await.unwrap();
        assert_eq!(waiter.await.unwrap().unwrap().into_value(), "wake up");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_async_client_on_a_connection_manager() {
        let server = server();
        let redis_client = redis::Client::open(server.url().as_str()).unwrap();
        let manager = redis::aio::ConnectionManager::new(redis_client).await.unwrap();
        let client = AsyncClient::from_connection_manager(manager);
        exercise_async(&server, &client).await;
        wait_is_woken(&server, &client, false).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_async_client_on_a_multiplexed_connection_with_a_client_for_waits() {
        let server = server();
        let redis_client = redis::Client::open(server.url().as_str()).unwrap();
        let connection = redis_client.get_multiplexed_async_connection().await.unwrap();
        let backend = redisext::backend::ConnectionBackend::new(connection).with_waits_on(redis_client);
        let client = AsyncClient::with_backend(backend);
        exercise_async(&server, &client).await;
        wait_is_woken(&server, &client, true).await;
        assert_eq!(client.backend().describe(redisext::Node::Master), format!("127.0.0.1:{}", server.port()));
    }

    #[cfg(feature = "deadpool")]
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_async_client_on_a_deadpool_pool() {
        let server = server();
        let pool =
            deadpool_redis::Config::from_url(server.url()).create_pool(Some(deadpool_redis::Runtime::Tokio1)).unwrap();
        let client = AsyncClient::from_deadpool(pool);
        exercise_async(&server, &client).await;
        wait_is_woken(&server, &client, true).await;
    }
}
