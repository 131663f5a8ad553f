//! Shared setup: an emulator on loopback and a client pointed at it.
#![allow(dead_code)]

pub mod child;
pub mod hostile;
/// The hand-driven HTTP/1.1 client of the emulator's own wire tests.
#[path = "../../emulator/tests/common/raw_http.rs"]
pub mod raw_http;
pub mod silent;

use ccloud_kafka_rest::{Client, ClientBuilder, Credentials, Producer, ProducerConfig};
use ccloud_kafka_rest_emulator::{Emulator, EmulatorBuilder};
use std::time::Duration;

pub const API_KEY: &str = "TESTKEY123";
pub const API_SECRET: &str = "api-secret-value-7f3a9c";
pub const TOKEN: &str = "bearer-token-value-51d2e8";
pub const POOL: &str = "pool-AbCd";

/// An emulator with topics `demo` (3 partitions) and `orders` (1).
pub fn emulator() -> EmulatorBuilder {
    Emulator::builder()
        .with_topic("demo", 3)
        .with_topic("orders", 1)
}

pub fn client_for(emulator: &Emulator) -> ClientBuilder {
    Client::builder()
        .with_endpoint(emulator.url())
        .with_cluster_id(emulator.cluster_id())
}

/// A client for a server at `url` (no credentials).
pub fn client_at(url: &str) -> Client {
    Client::builder()
        .with_endpoint(url)
        .with_cluster_id("lkc-test")
        .build()
        .expect("client builds")
}

pub async fn open() -> (Emulator, Client) {
    let emulator = emulator().start().await.expect("emulator starts");
    let client = client_for(&emulator).build().expect("client builds");
    (emulator, client)
}

pub async fn with_api_key() -> (Emulator, Client) {
    let emulator = emulator()
        .with_api_key(API_KEY, API_SECRET)
        .start()
        .await
        .expect("emulator starts");
    let client = client_for(&emulator)
        .with_credentials(Credentials::api_key(API_KEY, API_SECRET))
        .build()
        .expect("client builds");
    (emulator, client)
}

/// A producer with `config` for a client of `emulator`.
pub fn producer(emulator: &Emulator, config: ProducerConfig) -> Producer {
    let client = client_for(emulator).build().unwrap();
    Producer::with_config(client, config).unwrap()
}

/// The default configuration with backoffs of 5 to 50 ms.
pub fn fast_retries() -> ProducerConfig {
    ProducerConfig::default().with_backoff(Duration::from_millis(5), Duration::from_millis(50))
}

/// Values in the log of `topic`, parsed back to the sequence numbers sent.
pub fn logged(emulator: &Emulator, topic: &str) -> Vec<u64> {
    emulator
        .records(topic)
        .iter()
        .map(|r| {
            std::str::from_utf8(r.value.as_deref().unwrap())
                .unwrap()
                .parse()
                .unwrap()
        })
        .collect()
}

/// Every value 0..`count` is in the log of `topic`, and any written more
/// than once is one whose report said it may be (`flagged`).
pub fn assert_each_logged_duplicates_flagged(
    emulator: &Emulator,
    topic: &str,
    count: usize,
    flagged: &[u64],
) {
    let mut counts: std::collections::HashMap<u64, usize> = std::collections::HashMap::new();
    for value in logged(emulator, topic) {
        *counts.entry(value).or_default() += 1;
    }
    assert_eq!(counts.len(), count);
    for (value, written) in counts {
        assert!(
            written == 1 || flagged.contains(&value),
            "{value} written {written} times unflagged"
        );
    }
}
