//! OAuth client credentials against the emulator over HTTPS: one token for
//! many requests, refresh ahead of expiry, a refused token refreshed once,
//! and clear errors when the token endpoint says no.

mod common;

use ccloud_kafka_rest::{
    AccessToken, Client, ClientAuth, ClientCredentials, Credentials, Error, Record, TokenError,
    TokenFuture, TokenProvider,
};
use ccloud_kafka_rest_emulator::Emulator;
use common::POOL;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

const CLIENT_ID: &str = "sa-client-1";
const CLIENT_SECRET: &str = "client-secret-value-93b1f0";
const PRINCIPAL: &str = "sa-abc123";

async fn oauth_emulator(lifetime: Duration) -> Emulator {
    common::emulator()
        .with_oauth_client(CLIENT_ID, CLIENT_SECRET, PRINCIPAL, POOL)
        .with_token_lifetime(lifetime)
        .with_tls(true)
        .start()
        .await
        .expect("emulator starts")
}

fn oauth_client_with(emulator: &Emulator, oauth: ClientCredentials) -> Client {
    common::client_for(emulator)
        .with_root_certificate_pem(emulator.ca_certificate_pem().expect("TLS is on"))
        .with_credentials(Credentials::oauth(oauth).with_identity_pool_id(POOL))
        .build()
        .expect("client builds")
}

fn oauth_client(emulator: &Emulator, secret: &str) -> Client {
    oauth_client_with(
        emulator,
        ClientCredentials::new(emulator.token_url(), CLIENT_ID, secret),
    )
}

#[tokio::test]
async fn one_token_serves_fifty_concurrent_produces_over_https() {
    let emulator = oauth_emulator(Duration::from_secs(3600)).await;
    assert!(emulator.url().starts_with("https://127.0.0.1:"));
    let client = oauth_client(&emulator, CLIENT_SECRET);
    assert!(client.base_url().starts_with("https://"));

    let tasks: Vec<_> = (0..50)
        .map(|i| {
            let client = client.clone();
            tokio::spawn(async move {
                client
                    .produce("demo", &Record::from_value(format!("record-{i}")))
                    .await
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap().expect("delivered");
    }
    assert_eq!(emulator.tokens_issued(), 1);
    assert_eq!(emulator.records("demo").len(), 50);
    assert_eq!(emulator.auth_failures(), 0);

    let request = emulator.last_token_request().unwrap();
    assert_eq!(request.client_id.as_deref(), Some(CLIENT_ID));
    assert_eq!(request.client_auth, "basic");
    assert_eq!(request.grant_type.as_deref(), Some("client_credentials"));
    let headers = emulator.last_request_headers().unwrap();
    let header = |name: &str| {
        headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
    };
    assert!(header("authorization").unwrap().starts_with("Bearer ey"));
    assert_eq!(header("confluent-identity-pool-id").as_deref(), Some(POOL));
}

#[tokio::test]
async fn the_token_is_refreshed_before_it_expires_without_a_401() {
    let emulator = oauth_emulator(Duration::from_secs(3)).await;
    let client = oauth_client(&emulator, CLIENT_SECRET);
    let started = Instant::now();
    let mut produced = 0;
    // 3 s tokens are refreshed in their last 300 ms.
    while started.elapsed() < Duration::from_millis(3500) {
        client
            .produce("demo", &Record::from_value("tick"))
            .await
            .expect("delivered");
        produced += 1;
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(emulator.tokens_issued(), 2);
    assert_eq!(
        emulator.auth_failures(),
        0,
        "no request went out with an expired token"
    );
    assert_eq!(emulator.records("demo").len(), produced);
}

#[tokio::test]
async fn a_token_that_expires_mid_run_costs_no_record() {
    let emulator = oauth_emulator(Duration::from_secs(3600)).await;
    let client = oauth_client(&emulator, CLIENT_SECRET);
    let run = |from: usize| {
        let client = client.clone();
        async move {
            let tasks: Vec<_> = (from..from + 20)
                .map(|i| {
                    let client = client.clone();
                    tokio::spawn(async move {
                        client
                            .produce("demo", &Record::from_value(i.to_string()))
                            .await
                    })
                })
                .collect();
            for task in tasks {
                task.await
                    .unwrap()
                    .expect("delivered despite the expired token");
            }
        }
    };
    run(0).await;
    // The server now considers the client's token expired although the
    // client expects it to last another hour (clock skew, say).
    emulator.expire_tokens();
    run(20).await;
    run(40).await;
    assert!(emulator.auth_failures() >= 1);
    assert_eq!(
        emulator.tokens_issued(),
        2,
        "one refresh for every refused request"
    );
    let mut values: Vec<usize> = emulator
        .records("demo")
        .iter()
        .map(|r| {
            String::from_utf8(r.value.clone().unwrap())
                .unwrap()
                .parse()
                .unwrap()
        })
        .collect();
    values.sort_unstable();
    assert_eq!(values, (0..60).collect::<Vec<_>>(), "each record once");
}

#[tokio::test]
async fn a_revoked_token_is_refreshed_once_and_the_request_sent_again() {
    let emulator = oauth_emulator(Duration::from_secs(3600)).await;
    let client = oauth_client(&emulator, CLIENT_SECRET);
    client
        .produce("demo", &Record::from_value("a"))
        .await
        .unwrap();
    emulator.revoke_tokens();
    client
        .produce("demo", &Record::from_value("b"))
        .await
        .expect("the refreshed token works");
    assert_eq!(emulator.tokens_issued(), 2);
    assert_eq!(emulator.auth_failures(), 1);
    assert_eq!(emulator.records("demo").len(), 2);
}

#[tokio::test]
async fn a_revoked_token_is_refreshed_once_for_a_batch_too() {
    let emulator = oauth_emulator(Duration::from_secs(3600)).await;
    let client = common::client_for(&emulator)
        .with_server_kind(ccloud_kafka_rest::ServerKind::RestProxy)
        .with_root_certificate_pem(emulator.ca_certificate_pem().expect("TLS is on"))
        .with_credentials(
            Credentials::oauth(ClientCredentials::new(
                emulator.token_url(),
                CLIENT_ID,
                CLIENT_SECRET,
            ))
            .with_identity_pool_id(POOL),
        )
        .build()
        .expect("client builds");
    let records: Vec<Record> = (0..3).map(|i| Record::from_value(i.to_string())).collect();
    let first = client.produce_batch("demo", &records).await.unwrap();
    assert!(first.iter().all(Result::is_ok), "{first:?}");
    emulator.revoke_tokens();
    let second = client.produce_batch("demo", &records).await.unwrap();
    assert!(second.iter().all(Result::is_ok), "{second:?}");
    assert_eq!(emulator.tokens_issued(), 2);
    assert_eq!(emulator.auth_failures(), 1);
    assert_eq!(emulator.records("demo").len(), 6);
}

#[tokio::test]
async fn a_revoked_token_of_a_disabled_client_is_a_clear_auth_error() {
    let emulator = oauth_emulator(Duration::from_secs(3600)).await;
    let client = oauth_client(&emulator, CLIENT_SECRET);
    client
        .produce("demo", &Record::from_value("a"))
        .await
        .unwrap();
    emulator.revoke_tokens();
    assert!(emulator.set_oauth_client_enabled(CLIENT_ID, false));

    let e = client
        .produce("demo", &Record::from_value("b"))
        .await
        .unwrap_err();
    assert_eq!(e.status(), Some(401));
    assert_eq!(e.error_code(), Some(40101));
    assert!(!e.is_retriable());
    let text = e.to_string();
    assert!(text.contains("Authentication failed"), "{text}");
    assert!(
        text.contains("the access token was refused and a new one could not be fetched"),
        "{text}"
    );
    assert!(text.contains(&emulator.token_url()), "{text}");
    assert!(text.contains("invalid_client"), "{text}");
    assert!(!text.contains(CLIENT_SECRET), "{text}");
    // One refresh attempt, refused: no token issued, one produce refused.
    assert_eq!(emulator.tokens_issued(), 1);
    assert_eq!(emulator.auth_failures(), 1);
    assert_eq!(emulator.records("demo").len(), 1);

    // Once the client is enabled again, the next call gets a token.
    emulator.set_oauth_client_enabled(CLIENT_ID, true);
    client
        .produce("demo", &Record::from_value("c"))
        .await
        .unwrap();
    assert_eq!(emulator.tokens_issued(), 2);
}

#[tokio::test]
async fn a_new_token_refused_too_is_returned_after_one_retry() {
    // Tokens that expire as soon as they are issued: the server refuses
    // every one of them.
    let emulator = oauth_emulator(Duration::ZERO).await;
    let client = oauth_client(&emulator, CLIENT_SECRET);
    let e = client
        .produce("demo", &Record::from_value("a"))
        .await
        .unwrap_err();
    assert_eq!((e.status(), e.error_code()), (Some(401), Some(40101)));
    let text = e.to_string();
    assert!(
        text.contains("a newly fetched access token was refused too"),
        "{text}"
    );
    assert_eq!(emulator.tokens_issued(), 2, "one token, then one refresh");
    assert_eq!(emulator.auth_failures(), 2);
}

#[tokio::test]
async fn a_wrong_client_secret_is_an_error_naming_the_token_endpoint_and_its_answer() {
    let emulator = oauth_emulator(Duration::from_secs(3600)).await;
    let client = oauth_client(&emulator, "not-the-secret");
    let e = client
        .produce("demo", &Record::from_value("a"))
        .await
        .unwrap_err();
    let Error::Token(token) = &e else {
        panic!("expected a token error, got {e:?}");
    };
    assert_eq!(token.endpoint(), Some(emulator.token_url().as_str()));
    assert_eq!(token.status(), Some(401));
    assert_eq!(token.oauth_error(), Some("invalid_client"));
    assert_eq!(
        token.oauth_error_description(),
        Some("Client authentication failed")
    );
    assert!(!e.is_retriable());
    assert_eq!(e.status(), None, "the Kafka endpoint was not asked");
    let text = e.to_string();
    assert!(text.contains(&emulator.token_url()), "{text}");
    assert!(text.contains("HTTP 401"), "{text}");
    assert!(text.contains("invalid_client"), "{text}");
    assert!(text.contains("check the client id and secret"), "{text}");
    assert!(!text.contains("not-the-secret"), "{text}");
    assert_eq!(emulator.auth_failures(), 0);
    assert!(emulator.records("demo").is_empty());
}

#[tokio::test]
async fn an_unreachable_token_endpoint_is_a_retriable_token_error() {
    let emulator = oauth_emulator(Duration::from_secs(3600)).await;
    // A port nothing listens on.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/oauth2/token", closed.local_addr().unwrap());
    drop(closed);
    let client = oauth_client_with(
        &emulator,
        ClientCredentials::new(url.clone(), CLIENT_ID, CLIENT_SECRET),
    );
    let e = client
        .produce("demo", &Record::from_value("a"))
        .await
        .unwrap_err();
    assert!(matches!(e, Error::Token(_)), "{e:?}");
    assert!(e.is_retriable(), "{e}");
    assert!(e.to_string().contains(&url), "{e}");
}

#[tokio::test]
async fn client_secret_in_the_body_with_scope_and_extra_fields() {
    let emulator = oauth_emulator(Duration::from_secs(3600)).await;
    let client = oauth_client_with(
        &emulator,
        ClientCredentials::new(emulator.token_url(), CLIENT_ID, CLIENT_SECRET)
            .with_client_auth(ClientAuth::RequestBody)
            .with_scope("kafka:produce")
            .with_param("audience", "lkc-emulator"),
    );
    client
        .produce("demo", &Record::from_value("a"))
        .await
        .unwrap();
    let request = emulator.last_token_request().unwrap();
    assert_eq!(request.client_auth, "body");
    assert_eq!(request.client_id.as_deref(), Some(CLIENT_ID));
    assert_eq!(request.scope.as_deref(), Some("kafka:produce"));
    assert_eq!(
        request.params,
        vec![("audience".to_owned(), "lkc-emulator".to_owned())]
    );
}

#[tokio::test]
async fn a_missing_identity_pool_is_refused() {
    let emulator = oauth_emulator(Duration::from_secs(3600)).await;
    let client = common::client_for(&emulator)
        .with_root_certificate_pem(emulator.ca_certificate_pem().unwrap())
        .with_credentials(Credentials::oauth(ClientCredentials::new(
            emulator.token_url(),
            CLIENT_ID,
            CLIENT_SECRET,
        )))
        .build()
        .unwrap();
    let e = client
        .produce("demo", &Record::from_value("a"))
        .await
        .unwrap_err();
    assert_eq!((e.status(), e.error_code()), (Some(401), Some(40101)));
}

/// Hands out a token the server refuses first, then a good one.
struct Rotating {
    calls: AtomicU32,
}

impl TokenProvider for Rotating {
    fn fetch_token(&self) -> TokenFuture<'_> {
        Box::pin(async move {
            match self.calls.fetch_add(1, Ordering::SeqCst) {
                0 => Ok(AccessToken::new("stale-token")),
                1 => Ok(AccessToken::new(common::TOKEN).with_lifetime(Duration::from_secs(600))),
                _ => Err(TokenError::new("no more tokens")),
            }
        })
    }
}

#[tokio::test]
async fn a_custom_token_provider_is_cached_and_asked_again_after_a_401() {
    let emulator = common::emulator()
        .with_bearer_token_in_pool(common::TOKEN, "svc", POOL)
        .start()
        .await
        .unwrap();
    let provider = Arc::new(Rotating {
        calls: AtomicU32::new(0),
    });
    let client = common::client_for(&emulator)
        .with_credentials(Credentials::token_provider(provider.clone()).with_identity_pool_id(POOL))
        .build()
        .unwrap();
    for i in 0..5 {
        client
            .produce("demo", &Record::from_value(i.to_string()))
            .await
            .expect("delivered");
    }
    assert_eq!(provider.calls.load(Ordering::SeqCst), 2);
    assert_eq!(emulator.auth_failures(), 1);
    assert_eq!(emulator.records("demo").len(), 5);
}

#[tokio::test]
async fn a_stream_opened_with_a_token_outlives_the_token() {
    use futures_util::StreamExt;
    use std::io::BufRead;

    let emulator = oauth_emulator(Duration::from_secs(3600)).await;
    // Get a token the way the client does, then open a streaming request
    // with it by hand.
    let client = oauth_client(&emulator, CLIENT_SECRET);
    client
        .produce("demo", &Record::from_value("first"))
        .await
        .unwrap();
    let headers = emulator.last_request_headers().unwrap();
    let authorization = headers
        .iter()
        .find(|(n, _)| n == "authorization")
        .unwrap()
        .1
        .clone();

    let mut roots = rustls::RootCertStore::empty();
    for certificate in rustls::pki_types::pem::PemObject::pem_slice_iter(
        emulator.ca_certificate_pem().unwrap().as_bytes(),
    ) {
        roots.add(certificate.unwrap()).unwrap();
    }
    let tls = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    let http = reqwest::Client::builder()
        .tls_backend_preconfigured(tls)
        .http1_only()
        .build()
        .unwrap();
    let (tx, rx) = tokio::sync::mpsc::channel::<bytes::Bytes>(4);
    let body = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv()
            .await
            .map(|chunk| (Ok::<_, std::io::Error>(chunk), rx))
    });
    let record = |value: &str| {
        bytes::Bytes::from(format!(
            r#"{{"value":{{"type":"STRING","data":"{value}"}}}}"#
        ))
    };
    tx.send(record("streamed-1")).await.unwrap();
    let response = http
        .post(format!(
            "{}/kafka/v3/clusters/{}/topics/demo/records",
            emulator.url(),
            emulator.cluster_id()
        ))
        .header("authorization", authorization)
        .header("confluent-identity-pool-id", POOL)
        .header("content-type", "application/json")
        .body(reqwest::Body::wrap_stream(body))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let mut reports = response.bytes_stream();
    let first = reports.next().await.unwrap().unwrap();

    // The token expires while the stream is open: the stream goes on.
    emulator.expire_tokens();
    tx.send(record("streamed-2")).await.unwrap();
    drop(tx);
    let mut all = first.to_vec();
    while let Some(chunk) = reports.next().await {
        all.extend_from_slice(&chunk.unwrap());
    }
    let lines: Vec<String> = all.lines().map(Result::unwrap).collect();
    assert_eq!(lines.len(), 2, "{lines:?}");
    assert!(
        lines.iter().all(|l| l.contains("\"error_code\":200")),
        "{lines:?}"
    );
    assert_eq!(emulator.records("demo").len(), 3);

    // A new request uses a new token.
    client
        .produce("demo", &Record::from_value("last"))
        .await
        .unwrap();
    assert_eq!(emulator.tokens_issued(), 2);
}

#[tokio::test]
async fn the_streaming_producer_keeps_its_stream_after_the_token_expires() {
    use ccloud_kafka_rest::Producer;

    let emulator = oauth_emulator(Duration::from_secs(3600)).await;
    let client = oauth_client(&emulator, CLIENT_SECRET);
    let producer = Producer::new(client.clone());
    for i in 0..5 {
        producer
            .send("demo", &Record::from_value(i.to_string()))
            .await
            .unwrap();
    }
    // The open stream was authenticated when it opened: it goes on.
    emulator.expire_tokens();
    for i in 5..10 {
        producer
            .send("demo", &Record::from_value(i.to_string()))
            .await
            .unwrap();
    }
    assert_eq!(emulator.tokens_issued(), 1);
    assert_eq!(emulator.auth_failures(), 0);
    producer.close().await;

    // A new stream is refused the expired token, fetches a new one and goes on.
    let producer = Producer::new(client);
    producer
        .send("demo", &Record::from_value("10"))
        .await
        .unwrap();
    producer.close().await;
    assert_eq!(emulator.tokens_issued(), 2);
    assert_eq!(emulator.records("demo").len(), 11);
}
