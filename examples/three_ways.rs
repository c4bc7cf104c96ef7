//! One operation, three ways — blocking, async, pipelined — as the README shows
//! them side by side. The model and its operation are the same in all three; only
//! the executor differs. Runs against `REDIS_URL` when set, else a throwaway server.
//!
//! ```sh
//! cargo run --features tokio --example three_ways
//! ```

use redisext::{AsyncClient, Client, Counter, Slots};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let (_server, url) = redisext::testing::RedisServer::start_unless_env()?;
    let client = Client::open(&url)?;
    let visitors = Counter::new(&client, "visitors")?;
    let before = visitors.get()?;

    // Blocking: the result, now.
    let after_blocking: i64 = visitors.incr(1)?;

    // Async: a `Send + 'static` future of the same result.
    let runtime = tokio::runtime::Runtime::new()?;
    let async_client = AsyncClient::open(&url)?;
    let after_async: i64 = runtime.block_on(async { visitors.on(&async_client).incr(1).await })?;

    // Pipeline: a typed slot now, its result once the batch has run in one round trip.
    let pipe = client.pipeline();
    let slots = (visitors.on(&pipe).incr(1), visitors.on(&pipe).get());
    pipe.run()?; // or pipe.run_atomic() for one MULTI/EXEC transaction
    let (after_pipeline, total): (i64, i64) = slots.take()?;

    println!("blocking incr -> {after_blocking}");
    println!("async incr    -> {after_async}");
    println!("pipeline incr -> {after_pipeline}, then get -> {total}");
    assert_eq!((after_blocking, after_async, after_pipeline, total), (before + 1, before + 2, before + 3, before + 3));
    Ok(())
}
