//! The producer against a server that limits the rate of records, as the
//! REST Proxy's produce limiter does (in-band 429, the stream goes on):
//! every record is delivered, throttling uses up no attempt, and what the
//! producer counts as throttled is what the server refused.
//!
//! `cargo test --test rate_limits -- --ignored --nocapture` runs the longer
//! measurements (records/s at the limit and throttled attempts, for record
//! and byte limits); `RATE_LIMITS=2000,20000` picks the limits, and
//! `PACE_LOG=1` prints the pace's changes as the lanes log them.

mod common;

use ccloud_kafka_rest::{Producer, ProducerConfig, Record};
use ccloud_kafka_rest_emulator::{Emulator, RateLimits};
use futures_util::StreamExt;
use std::time::{Duration, Instant};

/// A value of this many bytes: its record's JSON text is a little longer.
const VALUE_BYTES: usize = 100;

struct Run {
    records: u64,
    elapsed: Duration,
    throttled: u64,
    refused_by_server: u64,
    pace: Option<u64>,
}

async fn run(limits: RateLimits, records: u64, config: ProducerConfig) -> (Emulator, Run) {
    let emulator = common::emulator()
        .with_rate_limits(limits)
        .start()
        .await
        .unwrap();
    let client = common::client_for(&emulator).build().unwrap();
    let producer = Producer::with_config(client, config).unwrap();
    let value = "v".repeat(VALUE_BYTES);
    let stream = futures_util::stream::iter(0..records)
        .map(move |i| Record::from_value(format!("{i:08}{}", &value[8..])));
    let started = Instant::now();
    let all = producer.send_all("orders", stream).collect::<Vec<_>>();
    let outcomes = tokio::time::timeout(Duration::from_secs(600), async {
        if std::env::var_os("PACE_LOG").is_none() {
            return all.await;
        }
        // How many records the server refused, every 50 ms.
        tokio::pin!(all);
        let mut tick = tokio::time::interval(Duration::from_millis(50));
        loop {
            tokio::select! {
                outcomes = &mut all => return outcomes,
                _ = tick.tick() => eprintln!(
                    "{:>6} ms: {} refused",
                    started.elapsed().as_millis(),
                    emulator.rate_limited_records()
                ),
            }
        }
    })
    .await
    .expect("every record resolved within the guard");
    let elapsed = started.elapsed();
    producer.close().await;
    for (i, outcome) in outcomes.iter().enumerate() {
        let report = outcome
            .as_ref()
            .unwrap_or_else(|e| panic!("record {i}: {e}"));
        assert!(!report.possibly_duplicated, "record {i}");
    }
    let stats = producer.stats();
    assert_eq!((stats.delivered, stats.failed), (records, 0), "{stats:?}");
    // Each record once in the log, in whatever order throttling left.
    let mut seen = vec![false; records as usize];
    for stored in emulator.records("orders") {
        let text = String::from_utf8(stored.value.unwrap()).unwrap();
        let i: usize = text[..8].parse().unwrap();
        assert!(!seen[i], "record {i} stored twice");
        seen[i] = true;
    }
    assert!(seen.iter().all(|s| *s));
    let run = Run {
        records,
        elapsed,
        throttled: stats.throttled,
        refused_by_server: emulator.rate_limited_records(),
        pace: stats.pace_records_per_s,
    };
    (emulator, run)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn throttled_records_are_paced_and_delivered_without_using_attempts() {
    // One attempt each: any throttled record that counted as an attempt
    // would fail.
    let config = ProducerConfig::default()
        .with_max_attempts(1)
        .with_delivery_timeout(Duration::from_secs(120));
    let limits = RateLimits::unlimited().with_records_per_second(5_000);
    let (_emulator, run) = run(limits, 20_000, config).await;
    // The first second's burst goes through; the rest meets the limit.
    assert!(run.throttled > 0, "the limit was never reached");
    assert_eq!(run.throttled, run.refused_by_server);
    assert!(run.pace.is_some(), "no pace after throttling");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bytes_limit_is_paced_as_well() {
    let config = ProducerConfig::default().with_delivery_timeout(Duration::from_secs(120));
    // About 5,000 records/s of some 140 bytes of JSON each.
    let limits = RateLimits::unlimited().with_bytes_per_second(700_000);
    let (_emulator, run) = run(limits, 20_000, config).await;
    assert!(run.throttled > 0, "the limit was never reached");
    assert_eq!(run.throttled, run.refused_by_server);
}

/// Records/s against record limits and byte limits of R records/s, 50,000
/// records each, from the first record handed over to the last report.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement of minutes; figures in BENCHMARKS.md"]
async fn figures_at_the_limit() {
    if std::env::var_os("PACE_LOG").is_some() {
        // The pace's changes, as the lanes log them (debug for slowdowns).
        let _ = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::DEBUG)
            .with_writer(std::io::stderr)
            .try_init();
    }
    let limits: Vec<u64> = std::env::var("RATE_LIMITS")
        .unwrap_or_else(|_| "500,2000,20000".into())
        .split(',')
        .map(|r| r.trim().parse().expect("a number of records per second"))
        .collect();
    // The JSON text of one record, as the server counts its bytes.
    let record_json = format!(
        r#"{{"value":{{"type":"STRING","data":"{}"}}}}"#,
        "v".repeat(VALUE_BYTES)
    )
    .len() as u64;
    println!(
        "limit | kind | records | seconds | records/s | of the limit | throttled | of the records"
    );
    for rate in limits {
        for bytes in [false, true] {
            let limit = if bytes {
                RateLimits::unlimited().with_bytes_per_second(rate * record_json)
            } else {
                RateLimits::unlimited().with_records_per_second(rate)
            };
            let config = ProducerConfig::default().with_delivery_timeout(Duration::from_secs(900));
            let (_emulator, run) = run(limit, 50_000, config).await;
            let per_s = run.records as f64 / run.elapsed.as_secs_f64();
            println!(
                "{rate}/s | {} | {} | {:.2} | {per_s:.0} | {:.3} | {} | {:.3}",
                if bytes { "bytes" } else { "records" },
                run.records,
                run.elapsed.as_secs_f64(),
                per_s / rate as f64,
                run.throttled,
                run.throttled as f64 / run.records as f64
            );
        }
    }
}
