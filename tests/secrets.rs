//! No secret (API secret, bearer token, OAuth client secret, access tokens
//! issued by the token endpoint, private keys) in Debug output, errors or
//! logs.

mod common;

use ccloud_kafka_rest::{
    AccessToken, Client, ClientAuth, ClientBuilder, ClientCredentials, Credentials, Producer,
    ProducerConfig, Record, TokenError,
};
use ccloud_kafka_rest_emulator::{Emulator, HttpFault};
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

/// Every log line of this thread, TRACE included, from here until the guard
/// is dropped.
fn capture_trace_logs() -> (Captured, tracing::subscriber::DefaultGuard) {
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(move || writer.clone())
        .finish();
    (captured, tracing::subscriber::set_default(subscriber))
}

const CLIENT_ID: &str = "oauth-client-1";
const CLIENT_SECRET: &str = "oauth-client-secret-4e7d21";
const KEY_MARKER: &str = "private-key-body-8c2f";

fn assert_no_secret(text: &str) {
    for secret in [API_SECRET, TOKEN, CLIENT_SECRET, KEY_MARKER] {
        assert!(!text.contains(secret), "secret leaked in: {text}");
    }
    // Nor their Basic encoding.
    use base64::Engine;
    for pair in [
        format!("{API_KEY}:{API_SECRET}"),
        format!("{CLIENT_ID}:{CLIENT_SECRET}"),
    ] {
        let basic = base64::engine::general_purpose::STANDARD.encode(pair);
        assert!(!text.contains(&basic), "encoded secret leaked in: {text}");
    }
}

fn assert_no_token(text: &str, tokens: &[String]) {
    assert_no_secret(text);
    for token in tokens {
        assert!(
            !text.contains(token.as_str()),
            "access token leaked in: {text}"
        );
        // Nor its payload, in case only part of it were printed.
        if let Some(payload) = token.split('.').nth(1) {
            assert!(!text.contains(payload), "access token leaked in: {text}");
        }
    }
}

fn oauth(token_url: &str, secret: &str) -> Credentials {
    Credentials::oauth(
        ClientCredentials::new(token_url, CLIENT_ID, secret)
            .with_scope("kafka")
            .with_param("audience", "lkc-1")
            .with_client_auth(ClientAuth::Basic),
    )
    .with_identity_pool_id(POOL)
}

fn private_key_pem() -> String {
    format!("-----BEGIN PRIVATE KEY-----\n{KEY_MARKER}\n-----END PRIVATE KEY-----\n")
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

    let client_credentials = ClientCredentials::new(
        "https://login.example/oauth2/token",
        CLIENT_ID,
        CLIENT_SECRET,
    );
    let oauth = oauth("https://login.example/oauth2/token", CLIENT_SECRET);
    let token = AccessToken::new(TOKEN).with_lifetime(std::time::Duration::from_secs(60));
    assert_no_secret(&format!(
        "{client_credentials:?} {client_credentials:#?} {oauth:?} {oauth:#?} {token:?} {token:#?}"
    ));
    assert!(
        format!("{oauth:?}").contains(CLIENT_ID),
        "the client id is not secret"
    );

    for credentials in [api_key, bearer, oauth] {
        let builder = ClientBuilder::new()
            .with_endpoint("https://pkc-1.example:443")
            .with_cluster_id("lkc-1")
            .with_credentials(credentials);
        assert_no_secret(&format!("{builder:?}"));
        let client = builder.build().unwrap();
        assert_no_secret(&format!("{client:?} {client:#?}"));
    }

    // A client key and a proxy password in the builder.
    let builder = ClientBuilder::new()
        .with_client_certificate_pem("-----BEGIN CERTIFICATE-----", private_key_pem())
        .with_proxy(format!("http://user:{API_SECRET}@proxy.example:3128"));
    assert_no_secret(&format!("{builder:?} {builder:#?}"));
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
    // The token endpoint over plain http, a bad key, a proxy with a password.
    let builders = [
        Client::builder().with_credentials(oauth("http://login.example/token", CLIENT_SECRET)),
        Client::builder().with_credentials(oauth("login.example/token", CLIENT_SECRET)),
        Client::builder().with_client_certificate_pem("nothing", private_key_pem()),
        Client::builder().with_proxy(format!("socks5://user:{API_SECRET}@proxy.example")),
        Client::builder().with_proxy(format!("http//user:{API_SECRET}@proxy.example")),
    ];
    for builder in builders {
        let e = builder
            .with_endpoint("https://pkc-1.example")
            .with_cluster_id("lkc-1")
            .build()
            .unwrap_err();
        assert_no_secret(&format!("{e} {e:?}"));
    }
    let e = TokenError::new("the metadata server refused");
    assert_no_secret(&format!("{e} {e:?}"));
}

#[tokio::test]
async fn errors_and_trace_logs_of_failed_calls_hold_no_secret() {
    let (captured, _guard) = capture_trace_logs();

    let emulator = common::emulator()
        .with_api_key(API_KEY, "another-secret")
        .with_bearer_token_in_pool(TOKEN, "svc", POOL)
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

#[tokio::test]
async fn http2_streams_and_their_trace_logs_hold_no_secret() {
    let (captured, _guard) = capture_trace_logs();
    let emulator = common::emulator()
        .with_api_key(API_KEY, API_SECRET)
        .with_tls(true)
        .start()
        .await
        .unwrap();
    let client = |credentials| {
        common::client_for(&emulator)
            .with_root_certificate_pem(emulator.ca_certificate_pem().unwrap())
            .with_credentials(credentials)
            .build()
            .unwrap()
    };
    let config = || {
        ProducerConfig::default()
            .with_max_attempts(1)
            .with_delivery_timeout(std::time::Duration::from_secs(20))
    };
    // Refused (a wrong secret), then delivered, both over HTTP/2 streams.
    let refused = Producer::with_config(
        client(Credentials::api_key(API_KEY, "wrong-secret")),
        config(),
    )
    .unwrap();
    let e = refused
        .send("orders", &Record::from_value("x"))
        .await
        .unwrap_err();
    let errors = format!("{e} {e:?}");
    let producer =
        Producer::with_config(client(Credentials::api_key(API_KEY, API_SECRET)), config()).unwrap();
    producer
        .send("orders", &Record::from_value("y"))
        .await
        .unwrap();
    let versions = emulator.requests_by_version();
    assert!(versions.http1 == 0 && versions.http2 >= 2, "{versions:?}");
    assert_no_secret(&errors);
    let logs = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    assert!(logs.contains("h2"), "h2 logs at trace level");
    assert_no_secret(&logs);
}

/// The bearer tokens the emulator saw in the most recent request.
fn bearer_of_last_request(emulator: &Emulator) -> Vec<String> {
    emulator
        .last_request_headers()
        .unwrap_or_default()
        .into_iter()
        .filter(|(name, _)| name == "authorization")
        .filter_map(|(_, value)| value.strip_prefix("Bearer ").map(str::to_owned))
        .collect()
}

#[tokio::test]
async fn the_oauth_flow_leaks_no_client_secret_or_token_into_errors_or_trace_logs() {
    let (captured, _guard) = capture_trace_logs();

    let emulator = common::emulator()
        .with_oauth_client(CLIENT_ID, CLIENT_SECRET, "sa-1", POOL)
        .with_tls(true)
        .start()
        .await
        .unwrap();
    let client_with = |secret: &str| {
        common::client_for(&emulator)
            .with_root_certificate_pem(emulator.ca_certificate_pem().unwrap())
            .with_credentials(oauth(&emulator.token_url(), secret))
            .build()
            .unwrap()
    };
    let mut tokens = Vec::new();
    let mut errors = String::new();

    // A good client: token, produce, revoked token, refresh, produce.
    let client = client_with(CLIENT_SECRET);
    client
        .produce("orders", &Record::from_value("x"))
        .await
        .unwrap();
    tokens.extend(bearer_of_last_request(&emulator));
    emulator.revoke_tokens();
    client
        .produce("orders", &Record::from_value("x"))
        .await
        .unwrap();
    tokens.extend(bearer_of_last_request(&emulator));
    assert_eq!(tokens.len(), 2);
    assert_ne!(tokens[0], tokens[1]);
    errors.push_str(&format!("{client:?} {client:#?}\n"));

    // A revoked token and a client refused at the token endpoint.
    emulator.revoke_tokens();
    emulator.set_oauth_client_enabled(CLIENT_ID, false);
    let e = client
        .produce("orders", &Record::from_value("x"))
        .await
        .unwrap_err();
    assert_eq!(e.status(), Some(401));
    errors.push_str(&format!("{e} {e:?}\n"));
    emulator.set_oauth_client_enabled(CLIENT_ID, true);

    // A wrong secret (close to the right one).
    let wrong = format!("{CLIENT_SECRET}-wrong");
    let e = client_with(&wrong)
        .produce("orders", &Record::from_value("x"))
        .await
        .unwrap_err();
    let text = format!("{e} {e:?}");
    assert!(!text.contains(&wrong), "{text}");
    errors.push_str(&text);
    errors.push('\n');

    assert_no_token(&errors, &tokens);
    let logs = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    assert!(
        logs.contains("access token issued"),
        "the emulator logs the token endpoint"
    );
    assert!(
        logs.contains("requesting an OAuth access token"),
        "the client logs its token requests"
    );
    assert!(
        !logs.contains(&wrong),
        "the wrong secret leaked into the logs"
    );
    assert_no_token(&logs, &tokens);
}

#[tokio::test]
async fn a_proxy_password_and_an_endpoint_password_never_show_in_errors_or_trace_logs() {
    let (captured, _guard) = capture_trace_logs();

    // A proxy on loopback that refuses everything it is asked to carry.
    let proxy = common::hostile::serve(common::hostile::Reply::sized(
        "502 Bad Gateway",
        "",
        b' ',
        0,
    ))
    .await;
    let proxy_url = proxy
        .url
        .replace("http://", &format!("http://proxy-user:{API_SECRET}@"));
    let mut errors = String::new();
    for endpoint in ["http://127.0.0.1:9", "https://127.0.0.1:9"] {
        let builder = Client::builder()
            .with_endpoint(endpoint)
            .with_cluster_id("lkc-1")
            .with_proxy(proxy_url.as_str());
        errors.push_str(&format!("{builder:?}\n"));
        let client = builder.build().unwrap();
        errors.push_str(&format!("{client:?}\n"));
        let e = client
            .produce("orders", &Record::from_value("x"))
            .await
            .unwrap_err();
        errors.push_str(&format!("{e} {e:?}\n"));
    }
    assert!(
        proxy.requests.load(std::sync::atomic::Ordering::Relaxed) >= 2,
        "both requests reached the proxy"
    );
    // An endpoint with the API secret in it: refused, and never shown.
    let builder = Client::builder()
        .with_endpoint(format!("https://{API_KEY}:{API_SECRET}@127.0.0.1:9"))
        .with_cluster_id("lkc-1");
    errors.push_str(&format!("{builder:?}\n"));
    let e = builder.build().unwrap_err();
    errors.push_str(&format!("{e} {e:?}\n"));

    assert_no_secret(&errors);
    use base64::Engine;
    let basic =
        base64::engine::general_purpose::STANDARD.encode(format!("proxy-user:{API_SECRET}"));
    let logs = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    assert!(!logs.is_empty(), "reqwest and hyper log at trace level");
    assert_no_secret(&logs);
    assert!(!logs.contains(&basic) && !errors.contains(&basic));
}
