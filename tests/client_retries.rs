//! `Client::produce` with retries turned on: the streaming producer's policy
//! for one request at a time.

mod common;

use ccloud_kafka_rest::{Error, ProduceRetries, Record, RetryClass, UnknownOutcome};
use ccloud_kafka_rest_emulator::HttpFault;
use std::time::Duration;

fn retries(attempts: u32) -> ProduceRetries {
    ProduceRetries::new(attempts, Duration::from_secs(10))
        .with_backoff(Duration::from_millis(5), Duration::from_millis(20))
}

#[tokio::test]
async fn off_by_default_and_retried_when_asked() {
    let emulator = common::emulator().start().await.unwrap();
    let once = common::client_for(&emulator).build().unwrap();
    emulator.fail_next_requests(HttpFault::json(503, 50301, "busy"), 1);
    let error = once
        .produce("orders", &Record::from_value("a"))
        .await
        .unwrap_err();
    assert_eq!(error.status(), Some(503), "{error}");

    let retrying = common::client_for(&emulator)
        .with_produce_retries(retries(5))
        .build()
        .unwrap();
    emulator.fail_next_requests(HttpFault::json(503, 50301, "busy"), 2);
    let report = retrying
        .produce("orders", &Record::from_value("b"))
        .await
        .unwrap();
    assert_eq!(report.attempts, 3);
    assert!(!report.possibly_duplicated);
    assert_eq!(emulator.records("orders").len(), 1);
}

#[tokio::test]
async fn unknown_outcomes_are_resent_and_flagged_or_failed() {
    let emulator = common::emulator().start().await.unwrap();
    let resend = common::client_for(&emulator)
        .with_produce_retries(retries(5))
        .build()
        .unwrap();
    emulator.fail_next_records(50003, "timed out", 1);
    let report = resend
        .produce("orders", &Record::from_value("a"))
        .await
        .unwrap();
    assert_eq!(report.attempts, 2);
    assert!(report.possibly_duplicated);

    let fail = common::client_for(&emulator)
        .with_produce_retries(retries(5).with_unknown_outcome(UnknownOutcome::Fail))
        .build()
        .unwrap();
    emulator.fail_next_records(50003, "timed out", 1);
    let error = fail
        .produce("orders", &Record::from_value("b"))
        .await
        .unwrap_err();
    assert_eq!(error.retry_class(), RetryClass::OutcomeUnknown, "{error}");
}

#[tokio::test]
async fn attempts_run_out_truthfully() {
    let emulator = common::emulator().start().await.unwrap();
    let client = common::client_for(&emulator)
        .with_produce_retries(retries(3))
        .build()
        .unwrap();
    emulator.fail_next_requests(HttpFault::json(503, 50302, "broker unavailable"), 3);
    let error = client
        .produce("orders", &Record::from_value("a"))
        .await
        .unwrap_err();
    assert!(
        matches!(
            error,
            Error::GaveUp {
                attempts: 3,
                may_have_been_written: false,
                ..
            }
        ),
        "{error}"
    );
    assert_eq!(error.error_code(), Some(50302));
    // Throttling uses up no attempt: three of them, then a delivery, within
    // three attempts' limit.
    emulator.fail_next_records(42901, "throttled", 3);
    let report = client
        .produce("orders", &Record::from_value("t"))
        .await
        .unwrap();
    assert_eq!(report.attempts, 4);
    // A record an earlier attempt may have written is not said to be unwritten.
    emulator.fail_next_records(50003, "timed out", 1);
    emulator.fail_next_records(40403, "no such topic", 1);
    let error = client
        .produce("orders", &Record::from_value("b"))
        .await
        .unwrap_err();
    assert_eq!(error.retry_class(), RetryClass::OutcomeUnknown, "{error}");
    assert_eq!(error.error_code(), Some(40403));
}

#[tokio::test]
async fn settings_that_cannot_work_are_refused() {
    let emulator = common::emulator().start().await.unwrap();
    for bad in [
        ProduceRetries::new(0, Duration::from_secs(1)),
        ProduceRetries::new(3, Duration::ZERO),
        ProduceRetries::new(3, Duration::MAX),
        ProduceRetries::new(3, Duration::from_secs(1))
            .with_backoff(Duration::from_secs(2), Duration::from_secs(1)),
    ] {
        let error = common::client_for(&emulator)
            .with_produce_retries(bad)
            .build()
            .unwrap_err();
        assert!(
            error.to_string().contains("with_produce_retries"),
            "{error}"
        );
    }
}
