//! Runs the produce-endpoint emulator as a standalone server until Ctrl-C.
//!
//! ```text
//! cargo run --example emulator -- --listen 127.0.0.1:8082 --topic orders:6 --api-key k --api-secret s -v
//! ```

use std::net::SocketAddr;
use std::process::ExitCode;

use ccloud_kafka_rest::emulator::{DEFAULT_CLUSTER_ID, Emulator};
use clap::Parser;

/// Serve an emulated Kafka REST v3 produce endpoint (Confluent Cloud and REST Proxy paths).
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8082")]
    listen: SocketAddr,

    /// Cluster id accepted in request paths.
    #[arg(long, default_value = DEFAULT_CLUSTER_ID)]
    cluster_id: String,

    /// A topic as NAME:PARTITIONS (repeatable). Defaults to demo:3.
    #[arg(long = "topic", value_name = "NAME:PARTITIONS", value_parser = parse_topic)]
    topics: Vec<(String, i32)>,

    /// Create unknown topics on first use instead of answering 404.
    #[arg(long)]
    auto_create: bool,

    /// Require this API key (HTTP Basic user name).
    #[arg(long, requires = "api_secret")]
    api_key: Option<String>,

    /// The secret of --api-key.
    #[arg(long, requires = "api_key")]
    api_secret: Option<String>,

    /// Log every request at debug level.
    #[arg(short, long)]
    verbose: bool,
}

fn parse_topic(text: &str) -> Result<(String, i32), String> {
    let (name, partitions) = text
        .rsplit_once(':')
        .ok_or_else(|| format!("expected NAME:PARTITIONS, got {text:?}"))?;
    if name.is_empty() {
        return Err("the topic name is empty".into());
    }
    let partitions: i32 = partitions
        .parse()
        .map_err(|e| format!("bad partition count {partitions:?}: {e}"))?;
    if partitions < 1 {
        return Err("a topic needs at least one partition".into());
    }
    Ok((name.to_owned(), partitions))
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    if args.verbose {
        tracing_subscriber::fmt()
            .with_max_level(tracing::Level::DEBUG)
            .init();
    }

    let topics = if args.topics.is_empty() {
        vec![("demo".to_owned(), 3)]
    } else {
        args.topics.clone()
    };
    let mut builder = Emulator::builder()
        .listen(args.listen)
        .cluster_id(args.cluster_id.clone())
        .auto_create_topics(args.auto_create);
    for (name, partitions) in &topics {
        builder = builder.topic(name.clone(), *partitions);
    }
    if let (Some(key), Some(secret)) = (&args.api_key, &args.api_secret) {
        builder = builder.api_key(key.clone(), secret.clone());
    }
    let emu = match builder.start().await {
        Ok(emu) => emu,
        Err(error) => {
            eprintln!("cannot listen on {}: {error}", args.listen);
            return ExitCode::FAILURE;
        }
    };

    let topic = &topics[0].0;
    let auth = match &args.api_key {
        Some(key) => format!(" -u '{key}:<secret>'"),
        None => String::new(),
    };
    println!("Kafka REST emulator listening on {}", emu.url());
    println!("cluster id: {}", emu.cluster_id());
    for (name, partitions) in &topics {
        println!("topic: {name} ({partitions} partitions)");
    }
    println!();
    println!("try:");
    println!(
        "  curl -sS{auth} -H 'Content-Type: application/json' \\\n    --data-binary '{{\"value\":{{\"type\":\"STRING\",\"data\":\"hello\"}}}}' \\\n    {}/kafka/v3/clusters/{}/topics/{topic}/records",
        emu.url(),
        emu.cluster_id()
    );
    println!();
    println!("press Ctrl-C to stop");

    if let Err(error) = tokio::signal::ctrl_c().await {
        eprintln!("cannot wait for Ctrl-C: {error}");
    }
    let delivered: usize = topics.iter().map(|(name, _)| emu.records(name).len()).sum();
    emu.shutdown().await;
    println!("stopped after {delivered} delivered record(s) in the declared topics");
    ExitCode::SUCCESS
}
