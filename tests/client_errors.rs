//! Credentials, every HTTP and in-band error the server gives, and input the
//! client refuses before sending.

mod common;

use ccloud_kafka_rest::{Credentials, Error, ErrorScope, InvalidInput, Record, RetryClass};
use ccloud_kafka_rest_emulator::HttpFault;
use common::{API_KEY, API_SECRET, POOL, TOKEN};
use std::time::Duration;

fn api(e: &Error) -> (Option<u16>, Option<i32>) {
    (e.status(), e.error_code())
}

#[tokio::test]
async fn api_key_is_accepted_and_sent_as_basic() {
    let (emulator, client) = common::with_api_key().await;
    client
        .produce("orders", &Record::from_value("x"))
        .await
        .unwrap();
    let headers = emulator.last_request_headers().unwrap();
    let auth = headers.iter().find(|(n, _)| n == "authorization").unwrap();
    assert!(auth.1.starts_with("Basic "), "{}", auth.1);
}

#[tokio::test]
async fn wrong_secret_or_missing_credentials_is_40101_and_terminal() {
    let emulator = common::emulator()
        .with_api_key(API_KEY, API_SECRET)
        .start()
        .await
        .unwrap();
    for credentials in [Credentials::api_key(API_KEY, "wrong"), Credentials::None] {
        let client = common::client_for(&emulator)
            .with_credentials(credentials)
            .build()
            .unwrap();
        let e = client
            .produce("orders", &Record::from_value("x"))
            .await
            .unwrap_err();
        assert_eq!(api(&e), (Some(401), Some(40101)), "{e}");
        assert_eq!(e.retry_class(), RetryClass::Terminal);
        assert!(e.to_string().contains("API key"), "{e}");
    }
    assert!(emulator.records("orders").is_empty());
}

#[tokio::test]
async fn bearer_token_with_identity_pool() {
    let emulator = common::emulator()
        .with_bearer_token_in_pool(TOKEN, "svc-orders", POOL)
        .start()
        .await
        .unwrap();
    let ok = common::client_for(&emulator)
        .with_credentials(Credentials::bearer_token(TOKEN).with_identity_pool_id(POOL))
        .build()
        .unwrap();
    ok.produce("orders", &Record::from_value("x"))
        .await
        .unwrap();
    let headers = emulator.last_request_headers().unwrap();
    assert!(
        headers
            .iter()
            .any(|(n, v)| n == "confluent-identity-pool-id" && v == POOL)
    );

    let no_pool = common::client_for(&emulator)
        .with_credentials(Credentials::bearer_token(TOKEN))
        .build()
        .unwrap();
    let e = no_pool
        .produce("orders", &Record::from_value("x"))
        .await
        .unwrap_err();
    assert_eq!(api(&e), (Some(401), Some(40101)));

    let wrong = common::client_for(&emulator)
        .with_credentials(Credentials::bearer_token("not-a-token").with_identity_pool_id(POOL))
        .build()
        .unwrap();
    let e = wrong
        .produce("orders", &Record::from_value("x"))
        .await
        .unwrap_err();
    assert_eq!(api(&e), (Some(401), Some(40101)));
    assert_eq!(emulator.records("orders").len(), 1);
}

#[tokio::test]
async fn topic_without_permission_is_40301() {
    let emulator = common::emulator()
        .with_api_key(API_KEY, API_SECRET)
        .with_allowed_topics(API_KEY, ["orders"])
        .start()
        .await
        .unwrap();
    let client = common::client_for(&emulator)
        .with_credentials(Credentials::api_key(API_KEY, API_SECRET))
        .build()
        .unwrap();
    client
        .produce("orders", &Record::from_value("allowed"))
        .await
        .unwrap();
    let e = client
        .produce("demo", &Record::from_value("denied"))
        .await
        .unwrap_err();
    assert_eq!(api(&e), (Some(403), Some(40301)));
    assert!(!e.is_retriable());
    assert!(emulator.records("demo").is_empty());
}

#[tokio::test]
async fn unknown_cluster_topic_and_partition() {
    let emulator = common::emulator().start().await.unwrap();
    let wrong_cluster = common::client_for(&emulator)
        .with_cluster_id("lkc-nope")
        .build()
        .unwrap();
    let e = wrong_cluster
        .produce("orders", &Record::from_value("x"))
        .await
        .unwrap_err();
    assert_eq!(e.status(), Some(404));
    assert!(!e.is_retriable());

    let client = common::client_for(&emulator).build().unwrap();
    let e = client
        .produce("no-such-topic", &Record::from_value("x"))
        .await
        .unwrap_err();
    assert_eq!(e.status(), Some(404), "{e}");
    assert!(!e.is_retriable());

    let e = client
        .produce("demo", &Record::from_value("x").with_partition(3))
        .await
        .unwrap_err();
    assert_eq!(api(&e), (Some(200), Some(40403)), "{e}");
    assert!(matches!(&e, Error::Api(a) if a.scope == ErrorScope::Record));
    assert!(!e.is_retriable());
}

#[tokio::test]
async fn request_larger_than_the_server_accepts_is_413() {
    let emulator = common::emulator()
        .with_max_request_bytes(200)
        .start()
        .await
        .unwrap();
    let client = common::client_for(&emulator).build().unwrap();
    let e = client
        .produce("orders", &Record::from_value("x".repeat(500)))
        .await
        .unwrap_err();
    assert_eq!(api(&e), (Some(413), Some(413)), "{e}");
    assert!(!e.is_retriable());
}

#[tokio::test]
async fn rate_limit_429_keeps_its_html_body_and_retry_after() {
    let (emulator, client) = common::open().await;
    emulator.fail_next_requests(HttpFault::rate_limited(Some(3)), 1);
    let e = client
        .produce("orders", &Record::from_value("x"))
        .await
        .unwrap_err();
    assert_eq!(api(&e), (Some(429), None));
    assert_eq!(e.retry_after(), Some(Duration::from_secs(3)));
    assert_eq!(e.retry_class(), RetryClass::Throttled);
    assert!(e.is_retriable());
    let Error::Api(api) = &e else { panic!("{e:?}") };
    assert!(api.message.contains("<html"), "{}", api.message);
    // The fault is used up: the next request goes through.
    client
        .produce("orders", &Record::from_value("x"))
        .await
        .unwrap();
}

#[tokio::test]
async fn http_errors_map_to_status_code_and_class() {
    let (emulator, client) = common::open().await;
    let cases = [
        (
            HttpFault::json(415, 415, "HTTP 415 Unsupported Media Type"),
            415,
            Some(415),
            RetryClass::Terminal,
        ),
        (
            HttpFault::json(422, 42206, "Payload error."),
            422,
            Some(42206),
            RetryClass::Terminal,
        ),
        (
            HttpFault::json(400, 400, "Bad charset"),
            400,
            Some(400),
            RetryClass::Terminal,
        ),
        (
            HttpFault::json(500, 50003, "Retriable Kafka error"),
            500,
            Some(50003),
            RetryClass::Retriable,
        ),
        (
            HttpFault::json(503, 50302, "Broker unavailable"),
            503,
            Some(50302),
            RetryClass::Retriable,
        ),
        (
            HttpFault::new(502, "text/plain", "bad gateway").with_retry_after(5),
            502,
            None,
            RetryClass::Retriable,
        ),
    ];
    for (fault, status, code, class) in cases {
        emulator.fail_next_requests(fault, 1);
        let e = client
            .produce("orders", &Record::from_value("x"))
            .await
            .unwrap_err();
        assert_eq!(api(&e), (Some(status), code), "{e}");
        assert_eq!(e.retry_class(), class, "{e}");
    }
    let e = {
        emulator.fail_next_requests(
            HttpFault::new(502, "text/plain", "bad gateway").with_retry_after(5),
            1,
        );
        client
            .produce("orders", &Record::from_value("x"))
            .await
            .unwrap_err()
    };
    assert_eq!(e.retry_after(), Some(Duration::from_secs(5)));
    assert!(e.to_string().contains("bad gateway"), "{e}");
    assert!(emulator.records("orders").is_empty());
}

#[tokio::test]
async fn in_band_codes_map_to_their_class() {
    let (emulator, client) = common::open().await;
    let cases = [
        (42901, RetryClass::Throttled),
        (429, RetryClass::Throttled),
        (408, RetryClass::Retriable),
        (50003, RetryClass::OutcomeUnknown),
        (50302, RetryClass::OutcomeUnknown),
        (500, RetryClass::OutcomeUnknown),
        (50002, RetryClass::Terminal),
        (40002, RetryClass::Terminal),
        (40101, RetryClass::Terminal),
        (40301, RetryClass::Terminal),
        (413, RetryClass::Terminal),
        (422, RetryClass::Terminal),
    ];
    for (code, class) in cases {
        emulator.fail_next_records(code, "injected", 1);
        let e = client
            .produce("orders", &Record::from_value("x"))
            .await
            .unwrap_err();
        assert_eq!(api(&e), (Some(200), Some(code)), "{e}");
        assert_eq!(e.retry_class(), class, "{code}");
        assert!(e.to_string().contains("injected"), "{e}");
    }
    assert!(emulator.records("orders").is_empty());
}

#[tokio::test]
async fn invalid_input_is_refused_before_any_request() {
    let emulator = common::emulator().start().await.unwrap();
    let client = common::client_for(&emulator)
        .with_max_record_bytes(100)
        .build()
        .unwrap();
    let long = "t".repeat(250);
    for topic in [
        "",
        ".",
        "..",
        "has space",
        "slash/topic",
        "ümlaut",
        long.as_str(),
    ] {
        let e = client
            .produce(topic, &Record::from_value("x"))
            .await
            .unwrap_err();
        assert!(
            matches!(e, Error::InvalidInput(InvalidInput::TopicName { .. })),
            "{topic:?}: {e:?}"
        );
        assert!(e.to_string().contains("249"), "{e}");
    }
    let e = client
        .produce("orders", &Record::from_value("x").with_partition(-1))
        .await
        .unwrap_err();
    assert!(
        matches!(e, Error::InvalidInput(InvalidInput::Partition(-1))),
        "{e:?}"
    );
    let e = client
        .produce(
            "orders",
            &Record::new().with_key("k").with_value("v".repeat(100)),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(
            e,
            Error::InvalidInput(InvalidInput::RecordTooLarge {
                size: 101,
                max: 100
            })
        ),
        "{e:?}"
    );
    assert!(!e.is_retriable());
    assert_eq!(emulator.requests(), 0);
}

#[tokio::test]
async fn connection_refused_is_a_retriable_transport_error() {
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let client = ccloud_kafka_rest::Client::builder()
        .with_endpoint(format!("http://127.0.0.1:{port}"))
        .with_cluster_id("lkc-x")
        .build()
        .unwrap();
    let e = client
        .produce("orders", &Record::from_value("x"))
        .await
        .unwrap_err();
    assert!(matches!(e, Error::Transport(_)), "{e:?}");
    assert_eq!(e.retry_class(), RetryClass::Retriable);
    // What, where (once) and why, with no source chain repeating it.
    let text = e.to_string();
    assert!(text.contains("could not connect"), "{text}");
    assert!(text.to_lowercase().contains("refused"), "{text}");
    assert_eq!(
        text.matches(&format!("127.0.0.1:{port}")).count(),
        1,
        "{text}"
    );
    assert!(std::error::Error::source(&e).is_none(), "{text}");
    let Error::Transport(transport) = &e else {
        unreachable!()
    };
    assert!(transport.is_connect() && !transport.is_timeout());
    assert!(
        transport
            .url()
            .is_some_and(|url| url.ends_with("/topics/orders/records"))
    );
}

#[tokio::test]
async fn a_200_that_is_not_a_delivery_report_is_outcome_unknown() {
    let (emulator, client) = common::open().await;
    for (content_type, body) in [
        ("application/json", "not json"),
        ("application/json", r#"{"error_code":200}"#),
        ("application/json", r#"{"error_code":200,"partition_id":0}"#),
        ("text/html", "<html>ok</html>"),
        ("application/json", ""),
    ] {
        emulator.fail_next_requests(HttpFault::new(200, content_type, body), 1);
        let e = client
            .produce("orders", &Record::from_value("x"))
            .await
            .unwrap_err();
        assert!(matches!(e, Error::Decode { .. }), "{body}: {e:?}");
        assert_eq!(e.status(), Some(200), "{body}: {e}");
        // The server took the request: the record may have been written.
        assert_eq!(e.retry_class(), RetryClass::OutcomeUnknown, "{body}: {e}");
        assert!(e.is_retriable(), "{body}: {e}");
    }
    // Without error_code but saying where: a server before 7.3 reporting a
    // delivered record.
    emulator.fail_next_requests(
        HttpFault::new(200, "application/json", r#"{"partition_id":0,"offset":7}"#),
        1,
    );
    let report = client
        .produce("orders", &Record::from_value("x"))
        .await
        .unwrap();
    assert_eq!((report.partition, report.offset), (0, 7));
    // An error status whose body cannot be read stays the server's refusal.
    emulator.fail_next_requests(HttpFault::new(400, "application/json", "not json"), 1);
    let e = client
        .produce("orders", &Record::from_value("x"))
        .await
        .unwrap_err();
    assert!(matches!(e, Error::Api(_)), "{e:?}");
    assert_eq!(e.retry_class(), RetryClass::Terminal, "{e}");
}
