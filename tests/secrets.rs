//! No secret (API secret, bearer token) in Debug output, errors or logs.

#![cfg(feature = "emulator")]

mod common;

use ccloud_kafka_rest::emulator::HttpFault;
use ccloud_kafka_rest::{Client, ClientBuilder, Credentials, Record};
use common::{API_KEY, API_SECRET, POOL, TOKEN};
use std::io::Write;
use std::sync::{Arc, Mutex};

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn assert_no_secret(text: &str) {
    for secret in [API_SECRET, TOKEN] {
        assert!(!text.contains(secret), "secret leaked in: {text}");
    }
    // Nor their Basic encoding.
    use base64::Engine;
    let basic = base64::engine::general_purpose::STANDARD.encode(format!("{API_KEY}:{API_SECRET}"));
    assert!(!text.contains(&basic), "encoded secret leaked in: {text}");
}

#[test]
fn debug_of_credentials_builder_and_client_is_redacted() {
    let api_key = Credentials::api_key(API_KEY, API_SECRET);
    let bearer = Credentials::bearer_token(TOKEN).with_identity_pool_id(POOL);
    assert_no_secret(&format!("{api_key:?} {api_key:#?} {bearer:?} {bearer:#?}"));
    assert!(
        format!("{api_key:?}").contains(API_KEY),
        "the key id is not secret"
    );

    for credentials in [api_key, bearer] {
        let builder = ClientBuilder::new()
            .with_endpoint("https://pkc-1.example:443")
            .with_cluster_id("lkc-1")
            .with_credentials(credentials);
        assert_no_secret(&format!("{builder:?}"));
        let client = builder.build().unwrap();
        assert_no_secret(&format!("{client:?} {client:#?}"));
    }
}

#[test]
fn configuration_errors_do_not_echo_secrets() {
    let e = Client::builder()
        .with_endpoint("http://kafka.internal:8082")
        .with_cluster_id("lkc-1")
        .with_credentials(Credentials::api_key(API_KEY, API_SECRET))
        .build()
        .unwrap_err();
    assert_no_secret(&format!("{e} {e:?}"));
    let e = Client::builder()
        .with_endpoint("https://pkc-1.example")
        .with_cluster_id("lkc-1")
        .with_credentials(Credentials::bearer_token(format!("{TOKEN}\n")))
        .build()
        .unwrap_err();
    assert_no_secret(&format!("{e} {e:?}"));
}

#[tokio::test]
async fn errors_and_trace_logs_of_failed_calls_hold_no_secret() {
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(move || writer.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let emulator = common::emulator()
        .api_key(API_KEY, "another-secret")
        .bearer_token_with_pool(TOKEN, "svc", POOL)
        .start()
        .await
        .unwrap();
    let mut errors = String::new();
    for credentials in [
        Credentials::api_key(API_KEY, API_SECRET),
        Credentials::bearer_token(TOKEN),
    ] {
        let client = common::client_for(&emulator)
            .with_credentials(credentials)
            .build()
            .unwrap();
        let e = client
            .produce("orders", &Record::from_value("x"))
            .await
            .unwrap_err();
        assert_eq!(e.status(), Some(401));
        errors.push_str(&format!("{e} {e:?}\n"));
    }
    let client = common::client_for(&emulator)
        .with_credentials(Credentials::bearer_token(TOKEN).with_identity_pool_id(POOL))
        .build()
        .unwrap();
    emulator.fail_next_requests(HttpFault::json(500, 50003, "boom"), 1);
    let e = client
        .produce("orders", &Record::from_value("x"))
        .await
        .unwrap_err();
    errors.push_str(&format!("{e} {e:?}\n"));
    client
        .produce("orders", &Record::from_value("x"))
        .await
        .unwrap();

    assert_no_secret(&errors);
    let logs = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    assert!(
        !logs.is_empty(),
        "the emulator logs each request at debug level"
    );
    assert_no_secret(&logs);
}
