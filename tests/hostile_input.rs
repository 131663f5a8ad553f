//! Hostile servers and careless input: every buffer that outside input
//! fills is bounded, secrets never show, and input whose meaning would
//! silently change is refused. Peak memory is measured in a child process
//! running only that case (see `common::child`).

mod common;

use ccloud_kafka_rest::{
    AccessToken, Client, ClientCredentials, Credentials, Error, Producer, ProducerConfig, Record,
    RetryClass, TokenFuture, TokenProvider,
};
use common::child;
use common::hostile::{self, Reply};
use common::{API_KEY, API_SECRET};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

const MIB: u64 = 1024 * 1024;
/// The growth of peak memory each bounded case stays under.
const BOUND_KIB: u64 = 8 * 1024;
const CHILD_LIMIT: Duration = Duration::from_secs(120);

/// Runs `case` on a current-thread runtime, in the child.
fn in_child<F: std::future::Future<Output = ()>>(case: impl FnOnce() -> F) {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(async {
            tokio::time::timeout(Duration::from_secs(100), case())
                .await
                .expect("the case finished in time")
        });
}

fn describe(error: &Error) -> String {
    format!("class={:?} error={error}", error.retry_class())
}

fn assert_bounded(name: &str, lines: &[String]) {
    let growth: u64 = child::field(lines, "growth_kib").parse().unwrap();
    assert!(
        growth < BOUND_KIB,
        "{name}: peak memory grew by {growth} KiB (bound {BOUND_KIB} KiB): {lines:?}"
    );
}

fn producer(url: &str, config: ProducerConfig) -> Producer {
    let client = common::client_at(url);
    Producer::with_config(client, config).unwrap()
}

#[test]
fn a_64_mib_report_line_ends_the_stream_as_outcome_unknown_with_flat_memory() {
    const NAME: &str = "a_64_mib_report_line_ends_the_stream_as_outcome_unknown_with_flat_memory";
    if child::is_child(NAME) {
        return in_child(|| async {
            let server = hostile::serve(Reply::chunked(
                "200 OK",
                r#"{"error_code":200,"message":""#,
                b'x',
                64 * MIB,
            ))
            .await;
            let producer = producer(
                &server.url,
                ProducerConfig::default()
                    .with_max_attempts(1)
                    .with_delivery_timeout(Duration::from_secs(60)),
            );
            let base = child::peak_from_here();
            let error = producer
                .send("orders", &Record::from_value("r"))
                .await
                .unwrap_err();
            child::report(format!("growth_kib={}", child::peak_growth_kib(base)));
            child::report(format!("outcome={}", describe(&error)));
            child::report(format!(
                "written_mib={}",
                server.written.load(Ordering::Relaxed) / MIB
            ));
            producer.close().await;
        });
    }
    let lines = child::run(NAME, &[], CHILD_LIMIT);
    assert_bounded(NAME, &lines);
    let outcome = child::field(&lines, "outcome");
    assert!(outcome.contains("class=OutcomeUnknown"), "{outcome}");
    assert!(outcome.contains("MAX_REPORT_BYTES"), "{outcome}");
    let written: u64 = child::field(&lines, "written_mib").parse().unwrap();
    assert!(
        written < 64,
        "the client read the whole line ({written} MiB)"
    );
}

#[test]
fn a_200_mib_success_body_is_cut_as_outcome_unknown_with_flat_memory() {
    const NAME: &str = "a_200_mib_success_body_is_cut_as_outcome_unknown_with_flat_memory";
    if child::is_child(NAME) {
        return in_child(|| async {
            let prefix = r#"{"error_code":200,"partition_id":0,"offset":1,"message":""#;
            let chunked = hostile::serve(Reply::chunked("200 OK", prefix, b'x', 200 * MIB)).await;
            let sized = hostile::serve(Reply::sized("200 OK", prefix, b'x', 200 * MIB)).await;
            let clients = [
                ("chunked", common::client_at(&chunked.url)),
                ("sized", common::client_at(&sized.url)),
            ];
            let base = child::peak_from_here();
            for (kind, client) in clients {
                let error = client
                    .produce("orders", &Record::from_value("r"))
                    .await
                    .unwrap_err();
                child::report(format!("{kind}={}", describe(&error)));
            }
            child::report(format!("growth_kib={}", child::peak_growth_kib(base)));
        });
    }
    let lines = child::run(NAME, &[], CHILD_LIMIT);
    assert_bounded(NAME, &lines);
    for kind in ["chunked", "sized"] {
        let outcome = child::field(&lines, kind);
        assert!(
            outcome.contains("class=OutcomeUnknown"),
            "{kind}: {outcome}"
        );
        assert!(outcome.contains("MAX_RESPONSE_BYTES"), "{kind}: {outcome}");
    }
}

#[test]
fn an_endless_error_body_is_cut_and_every_record_gets_its_outcome() {
    const NAME: &str = "an_endless_error_body_is_cut_and_every_record_gets_its_outcome";
    if child::is_child(NAME) {
        return in_child(|| async {
            let server = hostile::serve(Reply::chunked(
                "503 Service Unavailable",
                r#"{"error_code":50301,"message":""#,
                b'x',
                256 * MIB,
            ))
            .await;
            let client = common::client_at(&server.url);
            let base = child::peak_from_here();
            let error = client
                .produce("orders", &Record::from_value("r"))
                .await
                .unwrap_err();
            child::report(format!(
                "produce={} status={:?}",
                describe(&error),
                error.status()
            ));
            let producer = producer(
                &server.url,
                ProducerConfig::default()
                    .with_delivery_timeout(Duration::from_secs(2))
                    .with_backoff(Duration::from_millis(50), Duration::from_millis(200)),
            );
            let started = Instant::now();
            let error = producer
                .send("orders", &Record::from_value("r"))
                .await
                .unwrap_err();
            child::report(format!(
                "stream={} after_ms={}",
                describe(&error),
                started.elapsed().as_millis()
            ));
            producer.close().await;
            child::report(format!("growth_kib={}", child::peak_growth_kib(base)));
            child::report(format!(
                "written_mib={}",
                server.written.load(Ordering::Relaxed) / MIB
            ));
        });
    }
    let lines = child::run(NAME, &[], CHILD_LIMIT);
    assert_bounded(NAME, &lines);
    let produce = child::field(&lines, "produce");
    assert!(produce.contains("status=Some(503)"), "{produce}");
    let stream = child::field(&lines, "stream");
    // A 503 whose body holds no readable error code may be a gateway's that
    // passed the record on: retried until its time is up, and never said
    // to be not written.
    assert!(stream.contains("class=OutcomeUnknown"), "{stream}");
    assert!(stream.contains("it may have been written"), "{stream}");
    let written: u64 = child::field(&lines, "written_mib").parse().unwrap();
    assert!(
        written < 64,
        "the client read {written} MiB of error bodies"
    );
}

#[test]
fn an_endless_token_answer_is_refused_with_flat_memory() {
    const NAME: &str = "an_endless_token_answer_is_refused_with_flat_memory";
    if child::is_child(NAME) {
        return in_child(|| async {
            let server = hostile::serve(Reply::chunked(
                "200 OK",
                r#"{"access_token":""#,
                b'x',
                128 * MIB,
            ))
            .await;
            let client = Client::builder()
                .with_endpoint(server.url.as_str())
                .with_cluster_id("lkc-test")
                .with_credentials(Credentials::oauth(ClientCredentials::new(
                    format!("{}/oauth2/token", server.url),
                    "client-1",
                    "client-secret-1",
                )))
                .build()
                .unwrap();
            let base = child::peak_from_here();
            let error = client
                .produce("orders", &Record::from_value("r"))
                .await
                .unwrap_err();
            child::report(format!("growth_kib={}", child::peak_growth_kib(base)));
            child::report(format!("outcome={}", describe(&error)));
            child::report(format!(
                "requests={}",
                server.requests.load(Ordering::Relaxed)
            ));
        });
    }
    let lines = child::run(NAME, &[], CHILD_LIMIT);
    assert_bounded(NAME, &lines);
    let outcome = child::field(&lines, "outcome");
    assert!(outcome.contains("MAX_TOKEN_ANSWER_BYTES"), "{outcome}");
    // Only the token endpoint was asked: no record was sent without a token.
    assert_eq!(child::field(&lines, "requests"), "1");
}

/// Tokens that expire at once, counted.
struct Instant0(AtomicU64);

impl TokenProvider for Instant0 {
    fn fetch_token(&self) -> TokenFuture<'_> {
        self.0.fetch_add(1, Ordering::Relaxed);
        Box::pin(async { Ok(AccessToken::new(common::TOKEN).with_lifetime(Duration::ZERO)) })
    }
}

#[tokio::test]
async fn a_token_with_no_lifetime_is_not_fetched_for_every_request() {
    let emulator = common::emulator()
        .with_bearer_token(common::TOKEN, "svc")
        .start()
        .await
        .unwrap();
    let provider = Arc::new(Instant0(AtomicU64::new(0)));
    let client = common::client_for(&emulator)
        .with_credentials(Credentials::token_provider(provider.clone()))
        .build()
        .unwrap();
    let started = Instant::now();
    let requests = 20;
    for _ in 0..requests {
        client
            .produce("orders", &Record::from_value("r"))
            .await
            .unwrap();
    }
    // One fetch per 0.9 s at most (MIN_TOKEN_LIFETIME, renewed at nine tenths).
    let allowed = started.elapsed().as_millis() as u64 / 900 + 1;
    let fetches = provider.0.load(Ordering::Relaxed);
    assert!(
        fetches <= allowed && fetches < requests,
        "{fetches} token fetches for {requests} requests in {:?}",
        started.elapsed()
    );
}

#[test]
fn an_endpoint_with_a_password_is_refused_without_showing_it() {
    let endpoint = format!("http://{API_KEY}:{API_SECRET}@kafka.internal:8082");
    for credentials in [Credentials::None, Credentials::api_key(API_KEY, API_SECRET)] {
        let builder = Client::builder()
            .with_endpoint(endpoint.as_str())
            .with_cluster_id("lkc-1")
            .with_credentials(credentials);
        let debug = format!("{builder:?} {builder:#?}");
        assert!(!debug.contains(API_SECRET), "{debug}");
        let error = builder.build().unwrap_err();
        let text = format!("{error} {error:?}");
        assert!(!text.contains(API_SECRET), "{text}");
        assert!(text.contains("with_credentials"), "{text}");
        assert!(text.contains("user name or password"), "{text}");
    }
    // Loopback or not, https or not: refused the same.
    for endpoint in [
        format!("https://{API_KEY}:{API_SECRET}@pkc-1.example"),
        format!("http://{API_KEY}:{API_SECRET}@127.0.0.1:8082"),
        format!("http://{API_SECRET}@127.0.0.1:8082"),
    ] {
        let error = Client::builder()
            .with_endpoint(endpoint.as_str())
            .with_cluster_id("lkc-1")
            .build()
            .unwrap_err();
        assert!(!error.to_string().contains(API_SECRET), "{error}");
        assert_eq!(error.retry_class(), RetryClass::Terminal);
    }
}

#[test]
fn credentials_through_a_remote_proxy_over_plain_http_are_refused_before_connecting() {
    const NAME: &str =
        "credentials_through_a_remote_proxy_over_plain_http_are_refused_before_connecting";
    let proxy_secret = "proxy-password-93b1";
    if child::is_child(NAME) {
        // In the child, the environment names the proxy as reqwest reads it.
        let build = |url: &str, credentials: Credentials| {
            Client::builder()
                .with_endpoint(url)
                .with_cluster_id("lkc-1")
                .with_credentials(credentials)
                .build()
        };
        let key = || Credentials::api_key(API_KEY, API_SECRET);
        for (case, result) in [
            ("env_http", build("http://127.0.0.1:9", key())),
            ("env_https", build("https://127.0.0.1:9", key())),
            ("env_none", build("http://127.0.0.1:9", Credentials::None)),
            (
                "env_allowed",
                Client::builder()
                    .with_endpoint("http://127.0.0.1:9")
                    .with_cluster_id("lkc-1")
                    .with_credentials(key())
                    .with_credentials_over_http(true)
                    .build(),
            ),
            (
                "env_oauth",
                build(
                    "https://127.0.0.1:9",
                    Credentials::oauth(ClientCredentials::new(
                        "http://127.0.0.1:9/token",
                        "client-1",
                        "client-secret-1",
                    )),
                ),
            ),
        ] {
            match result {
                Ok(_) => child::report(format!("{case}=built")),
                Err(e) => child::report(format!("{case}=refused {e}")),
            }
        }
        return;
    }
    let proxy = format!("http://user:{proxy_secret}@proxy.example:3128");
    let lines = child::run(
        NAME,
        &[("HTTP_PROXY", proxy.as_str()), ("NO_PROXY", "")],
        CHILD_LIMIT,
    );
    for line in &lines {
        assert!(!line.contains(proxy_secret), "{line}");
        assert!(!line.contains(API_SECRET), "{line}");
    }
    let refused = child::field(&lines, "env_http");
    assert!(refused.starts_with("refused"), "{refused}");
    assert!(refused.contains("proxy.example:3128"), "{refused}");
    assert_eq!(child::field(&lines, "env_https"), "built");
    assert_eq!(child::field(&lines, "env_none"), "built");
    assert_eq!(child::field(&lines, "env_allowed"), "built");
    let oauth = child::field(&lines, "env_oauth");
    assert!(oauth.starts_with("refused"), "{oauth}");
    assert!(oauth.contains("client secret"), "{oauth}");

    // The same through a configured proxy; a proxy on loopback is a local hop.
    let configured = Client::builder()
        .with_endpoint("http://127.0.0.1:9")
        .with_cluster_id("lkc-1")
        .with_credentials(Credentials::api_key(API_KEY, API_SECRET))
        .with_proxy(proxy.as_str())
        .build()
        .unwrap_err();
    let text = format!("{configured} {configured:?}");
    assert!(text.contains("proxy.example:3128"), "{text}");
    assert!(!text.contains(proxy_secret), "{text}");
    Client::builder()
        .with_endpoint("http://127.0.0.1:9")
        .with_cluster_id("lkc-1")
        .with_credentials(Credentials::api_key(API_KEY, API_SECRET))
        .with_proxy("http://127.0.0.1:3128")
        .build()
        .unwrap();
}

#[tokio::test]
async fn a_json_null_is_refused_before_sending_unless_asked_for() {
    let (emulator, client) = common::open().await;
    let null = Record::from_value(serde_json::Value::Null).with_key("k");
    let error = client.produce("orders", &null).await.unwrap_err();
    assert!(matches!(error, Error::InvalidInput(_)), "{error}");
    assert!(error.to_string().contains("with_null_value"), "{error}");
    let key_null = Record::from_value("v").with_key(serde_json::Value::Null);
    assert!(client.produce("orders", &key_null).await.is_err());
    // The producer refuses it the same, before anything is queued.
    let producer = Producer::new(client.clone());
    let error = producer.send("orders", &null).await.unwrap_err();
    assert!(matches!(error, Error::InvalidInput(_)), "{error}");
    producer.close().await;
    assert_eq!(emulator.records("orders").len(), 0, "nothing was sent");

    // Asked for: stored as a Kafka null, and counted as the 0 bytes stored.
    let asked = null.clone().with_json_null_as_kafka_null();
    assert_eq!(asked.value().unwrap().len(), 0);
    let report = client.produce("orders", &asked).await.unwrap();
    assert_eq!(report.value.map(|v| v.size).unwrap_or(0), 0);
    let stored = emulator.records("orders");
    assert_eq!(stored.len(), 1);
    // Nested nulls are ordinary JSON.
    client
        .produce(
            "orders",
            &Record::from_value(serde_json::json!({"a": null})),
        )
        .await
        .unwrap();
}
