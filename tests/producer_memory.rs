//! Memory the producer holds is what its records account for: a small
//! record held long does not keep alive the memory of large records that
//! were encoded next to it for another lane and are long gone.

mod common;

use ccloud_kafka_rest::{Producer, ProducerConfig, Record};
use common::client_at as client;
use common::silent::silent_server;
use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicIsize, Ordering};
use std::time::Duration;

/// Counts the bytes allocated and not yet freed by this test binary.
struct Counting;

static LIVE: AtomicIsize = AtomicIsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size() as isize, Ordering::Relaxed);
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LIVE.fetch_add(
            new_size as isize - layout.size() as isize,
            Ordering::Relaxed,
        );
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

#[tokio::test(flavor = "current_thread")]
async fn small_records_held_long_do_not_keep_large_ones_alive() {
    const PAIRS: usize = 1_000;
    let (slow_url, _server) = silent_server().await;
    // Nothing listens here: the large records fail at once.
    let refused = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let fast_url = format!("http://{}", refused.local_addr().unwrap());
    drop(refused);
    let slow = Producer::with_config(
        client(&slow_url),
        ProducerConfig::default().with_delivery_timeout(Duration::from_secs(60)),
    )
    .unwrap();
    let fast = Producer::with_config(
        client(&fast_url),
        ProducerConfig::default()
            .with_max_attempts(1)
            .with_backoff(Duration::from_millis(1), Duration::from_millis(2)),
    )
    .unwrap();
    let large = Record::from_value("x".repeat(60 * 1024));
    let before = LIVE.load(Ordering::Relaxed);
    let mut held = Vec::with_capacity(PAIRS);
    for i in 0..PAIRS {
        // Encoded one after the other on this thread, for two lanes.
        held.push(
            slow.enqueue("slow", &Record::from_value(format!("{i}")))
                .await,
        );
        let failed = fast.enqueue("fast", &large).await;
        let outcome = tokio::time::timeout(Duration::from_secs(10), failed).await;
        assert!(
            matches!(outcome, Ok(Err(_))),
            "record {i}: {outcome:?}; {:?}",
            fast.stats()
        );
    }
    // Let the slow lane write what it holds.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let grown = LIVE.load(Ordering::Relaxed) - before;
    assert_eq!(slow.stats().in_flight, PAIRS as u64);
    // The small records and their lane's buffers: far below the 60 MiB of
    // large records that went through.
    assert!(
        grown < 16 * 1024 * 1024,
        "the producer holds {grown} more bytes with {PAIRS} small records in flight"
    );
    drop(held);
    let _ = slow.close_timeout(Duration::from_millis(100)).await;
    fast.close().await;
}
