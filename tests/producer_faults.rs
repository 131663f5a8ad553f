//! The producer under injected faults, 100k records per run: every record
//! gets exactly one outcome, every delivered record is in the log, a record
//! is in the log twice only if its report says possibly duplicated, and only
//! records with a terminal error fail.

mod common;

use ccloud_kafka_rest::{Producer, ProducerConfig, Record, RetryClass};
use ccloud_kafka_rest_emulator::{FaultPlan, HttpFault};
use futures_util::StreamExt;
use std::time::Duration;

const RECORDS: u64 = 100_000;

struct Run {
    delivered: u64,
    failed: Vec<(u64, ccloud_kafka_rest::Error)>,
    flagged: u64,
}

async fn run(plan: FaultPlan, config: ProducerConfig) -> Run {
    let emulator = common::emulator().with_faults(plan).start().await.unwrap();
    let client = common::client_for(&emulator).build().unwrap();
    let producer = Producer::with_config(client, config).unwrap();
    let records = futures_util::stream::iter(0..RECORDS).map(|i| Record::from_value(i.to_string()));
    let outcomes: Vec<_> = producer.send_all("demo", records).collect().await;
    producer.close().await;

    // Exactly one outcome per record.
    assert_eq!(outcomes.len() as u64, RECORDS);
    let stats = producer.stats();
    assert_eq!(stats.sent, RECORDS, "{stats:?}");
    assert_eq!(stats.delivered + stats.failed, RECORDS, "{stats:?}");
    assert_eq!(stats.in_flight, 0);

    let mut copies = vec![0u32; RECORDS as usize];
    for record in emulator.records("demo") {
        let value: usize = std::str::from_utf8(record.value.as_deref().unwrap())
            .unwrap()
            .parse()
            .unwrap();
        copies[value] += 1;
    }
    let mut result = Run {
        delivered: 0,
        failed: Vec::new(),
        flagged: 0,
    };
    for (i, outcome) in outcomes.into_iter().enumerate() {
        match outcome {
            Ok(report) => {
                result.delivered += 1;
                assert!(
                    copies[i] >= 1,
                    "record {i} reported delivered but not in the log"
                );
                if report.possibly_duplicated {
                    result.flagged += 1;
                } else {
                    assert_eq!(copies[i], 1, "record {i} duplicated without the flag");
                }
            }
            Err(e) => {
                assert_eq!(e.index, i, "{e}");
                assert_eq!(e.error.retry_class(), RetryClass::Terminal, "{e}");
                result.failed.push((i as u64, e.error));
            }
        }
    }
    assert_eq!(stats.possibly_duplicated, result.flagged);
    result
}

fn config() -> ProducerConfig {
    ProducerConfig::default()
        .with_backoff(Duration::from_millis(1), Duration::from_millis(20))
        .with_max_attempts(50)
        .with_delivery_timeout(Duration::from_secs(120))
}

#[tokio::test]
async fn no_faults() {
    let run = run(FaultPlan::default(), config()).await;
    assert_eq!(run.delivered, RECORDS);
    assert_eq!(run.flagged, 0);
}

#[tokio::test]
async fn random_connection_cuts() {
    let plan = FaultPlan {
        seed: 7,
        cut_probability: 0.0005,
        ..FaultPlan::default()
    };
    let run = run(plan, config().with_connections(2)).await;
    assert_eq!(run.delivered, RECORDS);
    assert!(
        run.flagged > 0,
        "cuts happened, so some reports are flagged"
    );
}

#[tokio::test]
async fn cut_after_every_n_records() {
    let plan = FaultPlan {
        seed: 1,
        cut_after_records: Some(20_000),
        ..FaultPlan::default()
    };
    let run = run(plan, config()).await;
    assert_eq!(run.delivered, RECORDS);
}

#[tokio::test]
async fn per_record_retriable_and_unknown_outcome_errors() {
    let plan = FaultPlan {
        seed: 11,
        record_error_rate: 0.01,
        record_error_codes: vec![429, 42901, 500, 50003, 50302],
        ..FaultPlan::default()
    };
    let run = run(plan, config()).await;
    assert_eq!(run.delivered, RECORDS);
    assert!(run.flagged > 0);
}

#[tokio::test]
async fn terminal_errors_fail_only_their_records() {
    let plan = FaultPlan {
        seed: 5,
        record_error_rate: 0.001,
        record_error_codes: vec![40002, 50002, 413],
        ..FaultPlan::default()
    };
    let run = run(plan, config()).await;
    assert!(!run.failed.is_empty());
    assert_eq!(run.delivered + run.failed.len() as u64, RECORDS);
    for (_, error) in &run.failed {
        assert!(
            matches!(error.error_code(), Some(40002 | 50002 | 413)),
            "{error}"
        );
    }
}

#[tokio::test]
async fn streams_expire_with_408() {
    let plan = FaultPlan {
        seed: 3,
        stream_max_records: Some(15_000),
        stream_close_delay: Some(Duration::from_millis(20)),
        ..FaultPlan::default()
    };
    let run = run(plan, config().with_connections(2)).await;
    assert_eq!(run.delivered, RECORDS);
}

#[tokio::test]
async fn refused_opens() {
    let plan = FaultPlan {
        seed: 9,
        open_failure_rate: 0.5,
        open_failure: HttpFault::json(503, 50302, "broker unavailable"),
        cut_probability: 0.0002,
        ..FaultPlan::default()
    };
    let run = run(plan, config()).await;
    assert_eq!(run.delivered, RECORDS);
}

#[tokio::test]
async fn dribbled_reports() {
    let plan = FaultPlan {
        seed: 13,
        report_dribble: true,
        ..FaultPlan::default()
    };
    let run = run(plan, config()).await;
    assert_eq!(run.delivered, RECORDS);
    assert_eq!(run.flagged, 0);
}

#[tokio::test]
async fn mixed_faults_over_several_seeds() {
    for seed in [21, 22, 23] {
        let plan = FaultPlan {
            seed,
            cut_probability: 0.0003,
            record_error_rate: 0.005,
            record_error_codes: vec![429, 42901, 50003, 408],
            stream_max_records: Some(30_000),
            stream_close_delay: Some(Duration::from_millis(10)),
            open_failure_rate: 0.2,
            open_failure: HttpFault::json(500, 50003, "retriable"),
            ..FaultPlan::default()
        };
        let run = run(plan, config().with_connections(3)).await;
        assert_eq!(run.delivered, RECORDS, "seed {seed}");
    }
}
