//! One model shared by many threads gives exact results. (Clients, models,
//! pipelines and slots are `Send + Sync` by a compile-time assertion in the crate;
//! the async counterpart, 64 tasks on one model, is in tests/async_client.rs.)

mod common;

use common::server;
use redisext::{Client, Counter, Reuse, Slot};

/// 16 threads increment one shared counter model 200 times each; every increment
/// must return a distinct new value, and together exactly 1..=3200.
fn sixteen_threads_share_one_model(reuse: Reuse) {
    let server = server();
    let client = Client::builder().master(&server.url()).reuse(reuse.clone()).build().unwrap();
    let counter = Counter::new(&client, "shared").unwrap();
    let mut seen: Vec<i64> = std::thread::scope(|scope| {
        let threads: Vec<_> =
            (0..16).map(|_| scope.spawn(|| (0..200).map(|_| counter.incr(1).unwrap()).collect::<Vec<_>>())).collect();
        threads.into_iter().flat_map(|thread| thread.join().unwrap()).collect()
    });
    seen.sort_unstable();
    let out_of_place = seen.iter().zip(1..).filter(|(value, expected)| **value != *expected).count();
    println!(
        "{reuse:?}: 16 threads x 200 increments on one model: {} results, {out_of_place} out of place",
        seen.len()
    );
    assert_eq!(seen, (1..=3200).collect::<Vec<i64>>(), "{out_of_place} results out of place");
    assert_eq!(counter.get().unwrap(), 3200);
}

#[test]
fn sixteen_threads_share_one_model_on_the_lazy_connection() {
    sixteen_threads_share_one_model(Reuse::Lazy);
}

#[cfg(feature = "pool")]
#[test]
fn sixteen_threads_share_one_model_on_a_pool() {
    sixteen_threads_share_one_model(Reuse::Pooled { max_size: 4 });
}

#[test]
fn sixteen_threads_queue_into_one_pipeline() {
    let server = server();
    let client = Client::open(&server.url()).unwrap();
    let counter = Counter::new(&client, "shared").unwrap();
    let pipe = client.pipeline();
    let slots: Vec<Slot<i64>> = std::thread::scope(|scope| {
        let threads: Vec<_> =
            (0..16).map(|_| scope.spawn(|| (0..100).map(|_| counter.on(&pipe).incr(1)).collect::<Vec<_>>())).collect();
        threads.into_iter().flat_map(|thread| thread.join().unwrap()).collect()
    });
    assert_eq!(pipe.len(), 1600);
    pipe.run().unwrap();
    // The batch ran the increments in queue order: the slot at position n holds
    // n + 1, whichever thread queued it.
    let mut misplaced = 0;
    for slot in slots {
        let position = i64::try_from(slot.index()).unwrap();
        if slot.take().unwrap() != position + 1 {
            misplaced += 1;
        }
    }
    println!("16 threads queued 1600 increments into one pipeline: {misplaced} results in the wrong slot");
    assert_eq!(misplaced, 0, "{misplaced} slots got another operation's result");
    assert_eq!(counter.get().unwrap(), 1600);
}
