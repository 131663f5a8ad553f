//! `records:batch` against the emulator over loopback: one outcome per record,
//! in the order given, whatever happens to the record or to its request.

mod common;

use ccloud_kafka_rest::{
    Client, ClientBuilder, Credentials, DEFAULT_MAX_BATCH_ENTRIES, DataType, Error, ErrorScope,
    InvalidInput, PayloadSummary, Record, RetryClass, ServerKind,
};
use ccloud_kafka_rest_emulator::{Emulator, HttpFault};

fn rest_proxy(emulator: &Emulator) -> ClientBuilder {
    common::client_for(emulator).with_server_kind(ServerKind::RestProxy)
}

async fn open() -> (Emulator, Client) {
    let emulator = common::emulator().start().await.expect("emulator starts");
    let client = rest_proxy(&emulator).build().expect("client builds");
    (emulator, client)
}

fn api(e: &Error) -> (Option<u16>, Option<i32>) {
    (e.status(), e.error_code())
}

#[tokio::test]
async fn twenty_five_records_in_batches_of_ten_arrive_in_order_byte_exact() {
    let (emulator, client) = open().await;
    assert_eq!(DEFAULT_MAX_BATCH_ENTRIES, 10);
    let records: Vec<Record> = (0..25)
        .map(|i| {
            Record::new()
                .with_key(format!("k-{i}"))
                .with_value(format!("value ✓ {i}"))
                .with_header("seq", i.to_string())
        })
        .collect();
    let before = emulator.requests();
    let outcomes = client.produce_batch("orders", &records).await.unwrap();
    assert_eq!(emulator.requests() - before, 3, "batches of 10, 10 and 5");

    assert_eq!(outcomes.len(), 25);
    for (i, outcome) in outcomes.iter().enumerate() {
        let report = outcome.as_ref().unwrap();
        assert_eq!(report.topic, "orders");
        assert_eq!(report.cluster_id, emulator.cluster_id());
        assert_eq!((report.partition, report.offset), (0, i as i64));
        assert_eq!(
            report.value,
            Some(PayloadSummary {
                data_type: DataType::String,
                size: format!("value ✓ {i}").len() as u64
            })
        );
        assert!(report.timestamp.is_some());
    }

    let log = emulator.records("orders");
    assert_eq!(log.len(), 25);
    for (i, stored) in log.iter().enumerate() {
        assert_eq!(stored.key.as_deref(), Some(format!("k-{i}").as_bytes()));
        assert_eq!(
            stored.value.as_deref(),
            Some(format!("value ✓ {i}").as_bytes())
        );
        assert_eq!(
            stored.headers,
            vec![("seq".to_owned(), Some(i.to_string().into_bytes()))]
        );
    }
    let headers = emulator.last_request_headers().unwrap();
    assert!(
        headers
            .iter()
            .any(|(n, v)| n == "content-type" && v.starts_with("application/json")),
        "{headers:?}"
    );
}

#[tokio::test]
async fn a_refused_entry_fails_alone() {
    let (emulator, client) = open().await;
    let records = vec![
        Record::from_value("a").with_partition(0),
        Record::from_value("b").with_partition(7),
        Record::from_value("c").with_partition(2),
    ];
    let outcomes = client.produce_batch("demo", &records).await.unwrap();
    assert_eq!(outcomes.len(), 3);
    assert_eq!(outcomes[0].as_ref().unwrap().partition, 0);
    let e = outcomes[1].as_ref().unwrap_err();
    assert_eq!(api(e), (Some(207), Some(40403)), "{e}");
    assert!(matches!(e, Error::Api(a) if a.scope == ErrorScope::Record));
    assert_eq!(e.retry_class(), RetryClass::Terminal);
    assert_eq!(outcomes[2].as_ref().unwrap().partition, 2);

    assert_eq!(
        emulator.partition_records("demo", 0)[0].value,
        Some(b"a".to_vec())
    );
    assert_eq!(
        emulator.partition_records("demo", 2)[0].value,
        Some(b"c".to_vec())
    );
    assert_eq!(emulator.records("demo").len(), 2);
}

#[tokio::test]
async fn an_invalid_record_fails_its_slot_and_is_not_sent() {
    let (emulator, client) = open().await;
    let records = vec![
        Record::from_value("first"),
        Record::from_value("negative").with_partition(-1),
        Record::from_value("third"),
    ];
    let outcomes = client.produce_batch("orders", &records).await.unwrap();
    assert_eq!(outcomes[0].as_ref().unwrap().offset, 0);
    assert!(matches!(
        outcomes[1],
        Err(Error::InvalidInput(InvalidInput::Partition(-1)))
    ));
    assert_eq!(outcomes[2].as_ref().unwrap().offset, 1);
    let values: Vec<_> = emulator
        .records("orders")
        .into_iter()
        .map(|r| r.value.unwrap())
        .collect();
    assert_eq!(values, vec![b"first".to_vec(), b"third".to_vec()]);

    // Nothing valid: nothing is sent at all.
    let before = emulator.requests();
    let outcomes = client
        .produce_batch("orders", &[Record::new().with_partition(-2)])
        .await
        .unwrap();
    assert!(matches!(outcomes[0], Err(Error::InvalidInput(_))));
    assert!(
        client
            .produce_batch("orders", &[])
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(emulator.requests(), before);
}

#[tokio::test]
async fn an_invalid_topic_fails_the_whole_call_before_sending() {
    let (emulator, client) = open().await;
    let e = client
        .produce_batch("no spaces", &[Record::from_value("x")])
        .await
        .unwrap_err();
    assert!(matches!(
        e,
        Error::InvalidInput(InvalidInput::TopicName { .. })
    ));
    assert_eq!(emulator.requests(), 0);
}

#[tokio::test]
async fn max_batch_entries_is_checked_at_build() {
    let emulator = common::emulator().start().await.unwrap();
    for bad in [0, 51] {
        let e = rest_proxy(&emulator)
            .with_max_batch_entries(bad)
            .build()
            .unwrap_err();
        assert!(matches!(e, Error::Config(_)), "{e}");
        assert!(e.to_string().contains("with_max_batch_entries"), "{e}");
    }
    for good in [1, 50] {
        rest_proxy(&emulator)
            .with_max_batch_entries(good)
            .build()
            .unwrap();
    }
}

#[tokio::test]
async fn batch_size_follows_the_setting_and_the_servers_limit() {
    let emulator = common::emulator()
        .with_max_batch_entries(50)
        .start()
        .await
        .unwrap();
    let records: Vec<Record> = (0..7).map(|i| Record::from_value(i.to_string())).collect();
    let client = rest_proxy(&emulator)
        .with_max_batch_entries(3)
        .build()
        .unwrap();
    let outcomes = client.produce_batch("orders", &records).await.unwrap();
    assert!(outcomes.iter().all(Result::is_ok));
    assert_eq!(emulator.requests(), 3);

    // More than the server accepts: each record gets the 422.
    let (emulator, _) = open().await;
    let client = rest_proxy(&emulator)
        .with_max_batch_entries(12)
        .build()
        .unwrap();
    let records: Vec<Record> = (0..12).map(|i| Record::from_value(i.to_string())).collect();
    let outcomes = client.produce_batch("orders", &records).await.unwrap();
    assert_eq!(outcomes.len(), 12);
    for outcome in &outcomes {
        let e = outcome.as_ref().unwrap_err();
        assert_eq!(api(e), (Some(422), Some(42208)), "{e}");
        assert!(matches!(e, Error::Api(a) if a.scope == ErrorScope::Request));
        assert_eq!(e.retry_class(), RetryClass::Terminal);
    }
    assert!(emulator.records("orders").is_empty());
}

#[tokio::test]
async fn http_401_fills_every_slot() {
    let emulator = common::emulator()
        .with_api_key(common::API_KEY, common::API_SECRET)
        .start()
        .await
        .unwrap();
    let client = rest_proxy(&emulator)
        .with_credentials(Credentials::api_key(common::API_KEY, "wrong"))
        .build()
        .unwrap();
    let records: Vec<Record> = (0..12).map(|i| Record::from_value(i.to_string())).collect();
    let outcomes = client.produce_batch("orders", &records).await.unwrap();
    assert_eq!(outcomes.len(), 12);
    for outcome in &outcomes {
        let e = outcome.as_ref().unwrap_err();
        assert_eq!(api(e), (Some(401), Some(40101)), "{e}");
        assert_eq!(e.retry_class(), RetryClass::Terminal);
        assert!(e.to_string().contains("API key"), "{e}");
    }
    assert!(emulator.records("orders").is_empty());

    let client = rest_proxy(&emulator)
        .with_credentials(Credentials::api_key(common::API_KEY, common::API_SECRET))
        .build()
        .unwrap();
    let outcomes = client.produce_batch("orders", &records).await.unwrap();
    assert!(outcomes.iter().all(Result::is_ok));
}

#[tokio::test]
async fn a_5xx_fails_its_batch_and_later_batches_go_on() {
    let (emulator, client) = open().await;
    emulator.fail_next_requests(HttpFault::json(503, 50302, "Broker unavailable"), 1);
    let records: Vec<Record> = (0..25).map(|i| Record::from_value(i.to_string())).collect();
    let outcomes = client.produce_batch("orders", &records).await.unwrap();
    assert_eq!(outcomes.len(), 25);
    for outcome in &outcomes[..10] {
        let e = outcome.as_ref().unwrap_err();
        assert_eq!(api(e), (Some(503), Some(50302)), "{e}");
        assert_eq!(e.retry_class(), RetryClass::Retriable);
    }
    for (i, outcome) in outcomes[10..].iter().enumerate() {
        assert_eq!(outcome.as_ref().unwrap().offset, i as i64);
    }
    let values: Vec<_> = emulator
        .records("orders")
        .into_iter()
        .map(|r| r.value.unwrap())
        .collect();
    let expected: Vec<_> = (10..25).map(|i: i32| i.to_string().into_bytes()).collect();
    assert_eq!(values, expected);
}

#[tokio::test]
async fn an_unreachable_server_fails_every_slot() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let client = Client::builder()
        .with_endpoint(format!("http://{addr}"))
        .with_cluster_id("lkc-gone")
        .with_server_kind(ServerKind::RestProxy)
        .build()
        .unwrap();
    let records: Vec<Record> = (0..3).map(|i| Record::from_value(i.to_string())).collect();
    let outcomes = client.produce_batch("orders", &records).await.unwrap();
    assert_eq!(outcomes.len(), 3);
    for outcome in &outcomes {
        let e = outcome.as_ref().unwrap_err();
        // Every slot holds the transport error itself, not a copy of its text.
        assert!(matches!(e, Error::Transport(_)), "{e:?}");
        assert_eq!(e.retry_class(), RetryClass::Retriable, "{e}");
        assert_eq!(e.status(), None);
    }
}

#[tokio::test]
async fn a_refused_connection_between_calls_gives_every_record_a_retriable_error() {
    let (emulator, client) = open().await;
    let records: Vec<Record> = (0..15).map(|i| Record::from_value(i.to_string())).collect();
    let first = client.produce_batch("orders", &records).await.unwrap();
    assert!(first.iter().all(Result::is_ok), "{first:?}");
    // The connection the client keeps is dropped and new ones are refused.
    emulator.outage(std::time::Duration::from_secs(30)).await;
    let outcomes = client.produce_batch("orders", &records).await.unwrap();
    assert_eq!(outcomes.len(), records.len());
    for outcome in &outcomes {
        let e = outcome.as_ref().unwrap_err();
        assert!(matches!(e, Error::Transport(_)), "{e:?}");
        assert!(e.is_retriable(), "{e}");
        assert_eq!(e.retry_class(), RetryClass::Retriable, "{e}");
    }
    // Only the first call's records were written.
    assert_eq!(emulator.records("orders").len(), records.len());
    emulator.clear_faults();
}
