//! The producer's lanes as a whole, against a server on loopback that
//! answers and never reports.

use super::{Producer, ProducerConfig};
use crate::client::Client;
use crate::error::Error;
use crate::wire::record::Record;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// A server that answers every request with 200 and a chunked body that
/// never ends, and reads what comes until the connection closes.
async fn silent_server() -> (String, tokio::task::JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let task = tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buffer = vec![0u8; 64 * 1024];
                if socket.read(&mut buffer).await.unwrap_or(0) == 0 {
                    return;
                }
                let head = "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n\
                            transfer-encoding: chunked\r\n\r\n";
                if socket.write_all(head.as_bytes()).await.is_err() {
                    return;
                }
                while socket.read(&mut buffer).await.unwrap_or(0) > 0 {}
            });
        }
    });
    (url, task)
}

#[tokio::test]
async fn a_dropped_producer_leaves_lanes_that_sleep_and_still_resolve_their_records() {
    let (url, server) = silent_server().await;
    let client = Client::builder()
        .with_endpoint(&url)
        .with_cluster_id("lkc-test")
        .build()
        .unwrap();
    let config = ProducerConfig::default().with_delivery_timeout(Duration::from_secs(2));
    let producer = Producer::with_config(client, config).unwrap();
    let stats = Arc::clone(&producer.shared.stats);
    let delivery = producer.enqueue("demo", &Record::from_value("x")).await;
    let open = || {
        stats
            .snapshot()
            .topics
            .first()
            .is_some_and(|t| t.connections[0].stream_open)
    };
    for _ in 0..500 {
        if open() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(open(), "the stream opened");
    drop(producer);
    // The lane holds the record until its deadline; meanwhile it waits for
    // events instead of turning (a lane woken at every turn by the closed
    // channel of the dropped producer turns hundreds of thousands of times).
    let before = stats.lane_turns.load(Ordering::Relaxed);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let turns = stats.lane_turns.load(Ordering::Relaxed) - before;
    assert!(
        turns < 100,
        "the lane turned {turns} times with nothing to do"
    );
    let outcome = tokio::time::timeout(Duration::from_secs(10), delivery)
        .await
        .expect("resolved by its deadline");
    assert!(
        matches!(
            outcome,
            Err(Error::GaveUp {
                may_have_been_written: true,
                ..
            })
        ),
        "{outcome:?}"
    );
    // The lane then ends its stream and stops.
    for _ in 0..500 {
        if stats.lanes() == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(stats.lanes(), 0, "the lane stopped");
    let after = stats.snapshot();
    assert_eq!((after.sent, after.failed, after.in_flight), (1, 1, 0));
    assert!(!after.topics[0].connections[0].stream_open);
    server.abort();
}
