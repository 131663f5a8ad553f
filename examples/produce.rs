//! Produces a few records and prints their delivery reports.
//!
//! With `KAFKA_REST_ENDPOINT` unset it starts the embedded emulator and
//! produces to its `demo` topic. With `KAFKA_REST_ENDPOINT`,
//! `KAFKA_CLUSTER_ID`, `KAFKA_API_KEY` and `KAFKA_API_SECRET` set it produces
//! to that cluster, to the topic named by `KAFKA_TOPIC` (or the first
//! argument).
//!
//! ```text
//! cargo run --example produce
//! KAFKA_REST_ENDPOINT=https://pkc-….confluent.cloud:443 KAFKA_CLUSTER_ID=lkc-… \
//!   KAFKA_API_KEY=… KAFKA_API_SECRET=… cargo run --example produce -- orders
//! ```

use ccloud_kafka_rest::emulator::Emulator;
use ccloud_kafka_rest::{Client, ENV_ENDPOINT, Record, StoredData};
use serde_json::json;
use std::process::ExitCode;

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
    let mut _emulator = None;
    let (client, topic) = if std::env::var_os(ENV_ENDPOINT).is_some() {
        let topic = std::env::args()
            .nth(1)
            .or_else(|| std::env::var("KAFKA_TOPIC").ok())
            .ok_or("name the topic: pass it as the first argument or set KAFKA_TOPIC")?;
        (Client::from_env()?, topic)
    } else {
        let emulator = Emulator::start_default().await?;
        eprintln!(
            "{ENV_ENDPOINT} is not set: producing to the embedded emulator at {} (cluster {})",
            emulator.url(),
            emulator.cluster_id()
        );
        let client = Client::builder()
            .with_endpoint(emulator.url())
            .with_cluster_id(emulator.cluster_id())
            .build()?;
        _emulator = Some(emulator);
        (client, "demo".to_owned())
    };

    let records = [
        Record::new().with_key("user-1").with_value("signed up"),
        Record::new()
            .with_key("user-1")
            .with_json_value(&json!({"event": "order", "total": 12.5}))?,
        Record::new()
            .with_key(&b"\x00\x01binary-key"[..])
            .with_value(vec![0xde, 0xad, 0xbe, 0xef])
            .with_header("trace-id", "4bf92f3577b34da6"),
        Record::new().with_key("user-2"),
    ];
    let mut failed = 0;
    for record in &records {
        match client.produce(&topic, record).await {
            Ok(report) => println!(
                "delivered {report}  key: {}  value: {}",
                describe(report.key),
                describe(report.value)
            ),
            Err(e) => {
                failed += 1;
                println!("failed: {e}");
            }
        }
    }
    if failed > 0 {
        return Err(format!("{failed} of {} records failed", records.len()).into());
    }
    Ok(())
}

fn describe(data: Option<StoredData>) -> String {
    match data {
        Some(d) => format!("{} {} bytes", d.data_type, d.size),
        None => "null".to_owned(),
    }
}
