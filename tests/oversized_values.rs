//! A value over the server's bulk limit is refused before it is copied: the
//! client's memory does not double for a value it will never send. A counting
//! allocator watches the heap while the push is refused.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

use redisext::serializer::{Raw, Str};
use redisext::{Client, Error, MAX_BULK_LEN, Map, Queue};

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

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        let live = LIVE.fetch_add(layout.size(), Ordering::Relaxed) + layout.size();
        PEAK.fetch_max(live, Ordering::Relaxed);
        // SAFETY: forwarded as is to the system allocator.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
        // SAFETY: forwarded as is to the system allocator.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

#[test]
fn a_value_over_the_bulk_limit_is_refused_before_it_is_copied() {
    // No server is needed: nothing is sent (the port is never connected to).
    let client = Client::open("redis://127.0.0.1:1/0").unwrap();
    let too_big = vec![b'x'; MAX_BULK_LEN + 1];
    let text = String::from_utf8(vec![b'y'; MAX_BULK_LEN + 1]).unwrap();
    let queue = Queue::<Raw>::new(&client, "q").unwrap();
    let map = Map::<Str>::new(&client, "m").unwrap();

    let before = LIVE.load(Ordering::Relaxed);
    PEAK.store(before, Ordering::Relaxed);
    let raw = queue.push(&too_big).unwrap_err();
    let str = map.set(&text).unwrap_err();
    let grown = PEAK.load(Ordering::Relaxed) - before;

    assert!(matches!(raw, Error::TooLarge { what: "value", .. }), "{raw:?}");
    assert!(matches!(str, Error::TooLarge { what: "value", .. }), "{str:?}");
    assert!(grown < 1 << 20, "refusing a {} byte value allocated {grown} bytes", too_big.len());
}
