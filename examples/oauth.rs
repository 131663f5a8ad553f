//! Produces with OAuth credentials over HTTPS: a token from the identity
//! provider's token endpoint (client-credentials grant), then the record with
//! that token as its bearer credentials.
//!
//! With `KAFKA_REST_ENDPOINT` unset it runs the whole flow on the embedded
//! emulator: HTTPS with a certificate generated at start (its CA trusted by
//! the client), the emulator's token endpoint, a token bound to an identity
//! pool. With the variables below set it produces to that cluster instead,
//! to the topic named by the first argument or `KAFKA_TOPIC`.
//!
//! ```text
//! cargo run --example oauth
//! KAFKA_REST_ENDPOINT=https://pkc-….confluent.cloud:443 KAFKA_CLUSTER_ID=lkc-… \
//!   KAFKA_OAUTH_TOKEN_URL=https://login.example.com/oauth2/token \
//!   KAFKA_OAUTH_CLIENT_ID=… KAFKA_OAUTH_CLIENT_SECRET=… [KAFKA_OAUTH_SCOPE=…] \
//!   KAFKA_IDENTITY_POOL_ID=pool-… cargo run --example oauth -- orders
//! ```

use ccloud_kafka_rest::env::{ENDPOINT, OAUTH_TOKEN_URL};
use ccloud_kafka_rest::{Client, ClientCredentials, Credentials, Record};
use ccloud_kafka_rest_emulator::Emulator;
use std::process::ExitCode;

const CLIENT_ID: &str = "demo-client";
const CLIENT_SECRET: &str = "demo-client-secret";
const POOL: &str = "pool-demo";

#[tokio::main]
async fn main() -> ExitCode {
    match run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run() -> Result<(), Box<dyn std::error::Error>> {
    // Kept alive until the end of `run` when used.
    let mut emulator = None;
    let (client, topic) = if std::env::var_os(ENDPOINT).is_some() {
        if std::env::var_os(OAUTH_TOKEN_URL).is_none() {
            return Err(format!(
                "{OAUTH_TOKEN_URL} is not set: this example produces with OAuth credentials \
                 (see the variables in its documentation)"
            )
            .into());
        }
        let topic = std::env::args()
            .nth(1)
            .or_else(|| std::env::var("KAFKA_TOPIC").ok())
            .ok_or("name the topic: pass it as the first argument or set KAFKA_TOPIC")?;
        (Client::from_env()?, topic)
    } else {
        let started = Emulator::builder()
            .with_topic("demo", 3)
            .with_oauth_client(CLIENT_ID, CLIENT_SECRET, "sa-demo", POOL)
            .with_tls(true)
            .start()
            .await?;
        eprintln!(
            "{ENDPOINT} is not set: producing to the embedded emulator at {} \
             (token endpoint {})",
            started.url(),
            started.token_url()
        );
        let oauth = ClientCredentials::new(started.token_url(), CLIENT_ID, CLIENT_SECRET);
        let client = Client::builder()
            .with_endpoint(started.url())
            .with_cluster_id(started.cluster_id())
            .with_root_certificate_pem(started.ca_certificate_pem().unwrap_or_default())
            .with_credentials(Credentials::oauth(oauth).with_identity_pool_id(POOL))
            .build()?;
        emulator = Some(started);
        (client, "demo".to_owned())
    };

    let record = Record::new()
        .with_key("user-1")
        .with_json_value(&serde_json::json!({"event": "signed up", "plan": "pro"}))?
        .with_header("source", "oauth-example");
    let report = client.produce(&topic, &record).await?;
    println!(
        "delivered {report}  (partition {}, offset {}, value {} bytes)",
        report.partition,
        report.offset,
        report.value.map_or(0, |v| v.size)
    );
    let scheme = client.base_url().split("://").next().unwrap_or_default();
    println!(
        "ran over {scheme}: {} with an OAuth bearer token",
        client.base_url()
    );
    if let Some(emulator) = &emulator {
        println!(
            "the token endpoint issued {} token(s)",
            emulator.tokens_issued()
        );
    }
    if scheme != "https" {
        return Err("expected to run over https".into());
    }
    Ok(())
}
