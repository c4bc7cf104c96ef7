//! Memory a big pipeline holds per operation: 1,000,000 `counter.incr` queued and
//! run through this crate's pipeline, against the same EVALSHA commands queued
//! and run with the redis crate's `redis::pipe()` by hand. A counting allocator
//! records the peak heap of each (from the moment queueing starts to the moment
//! the results are read), in one run.
//!
//! `cargo run --release --features testing --example pipeline_memory`
//! (`PIPELINE_OPS=100000` for a smaller run).

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

use redisext::testing::RedisServer;
use redisext::{Client, Counter, Script, Slots};

struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let live = LIVE.fetch_add(layout.size(), Ordering::Relaxed) + layout.size();
        PEAK.fetch_max(live, Ordering::Relaxed);
        // SAFETY: forwarded as is to the system allocator.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
        // SAFETY: forwarded as is to the system allocator.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if new_size > layout.size() {
            let live = LIVE.fetch_add(new_size - layout.size(), Ordering::Relaxed) + new_size - layout.size();
            PEAK.fetch_max(live, Ordering::Relaxed);
        } else {
            LIVE.fetch_sub(layout.size() - new_size, Ordering::Relaxed);
        }
        // SAFETY: forwarded as is to the system allocator.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// The peak heap above what was live when `f` started, per operation.
fn peak_per_op(ops: usize, f: impl FnOnce()) -> f64 {
    let base = LIVE.load(Ordering::Relaxed);
    PEAK.store(base, Ordering::Relaxed);
    f();
    (PEAK.load(Ordering::Relaxed) - base) as f64 / ops as f64
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let ops: usize = std::env::var("PIPELINE_OPS").ok().and_then(|n| n.parse().ok()).unwrap_or(1_000_000);
    let server = RedisServer::start()?;
    let client = Client::open(&server.url())?;
    let counter = Counter::new(&client, "visitors")?;
    counter.incr(0)?; // the script is loaded, the connection open
    let mut by_hand_connection = redis::Client::open(server.url())?.get_connection()?;
    let sha1 = Script::bundled("counter/incr").sha1();

    let ours = peak_per_op(ops, || {
        let pipe = client.pipeline();
        let slots: Vec<_> = (0..ops).map(|_| counter.on(&pipe).incr(1)).collect();
        pipe.run().expect("pipeline");
        let values = slots.take().expect("results");
        assert_eq!(values.len(), ops);
    });
    let by_hand = peak_per_op(ops, || {
        let mut pipe = redis::pipe();
        for _ in 0..ops {
            // KEYS[1] the counter; ARGV: the amount, and no operation id.
            pipe.cmd("EVALSHA").arg(sha1).arg(1).arg("visitors").arg(1).arg("");
        }
        let values: Vec<i64> = match pipe.query(&mut by_hand_connection) {
            Ok(values) => values,
            Err(error) => {
                panic!("the pipeline by hand failed: {}", error.to_string().chars().take(300).collect::<String>())
            }
        };
        assert_eq!(values.len(), ops);
    });
    println!("{ops} pipelined counter.incr, peak heap per operation:");
    println!("  redisext pipeline     {ours:>7.0} bytes");
    println!("  redis::pipe() by hand {by_hand:>7.0} bytes");
    println!("  ratio                 {:>7.2}", ours / by_hand);
    Ok(())
}
