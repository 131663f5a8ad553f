//! Streams a JSON-lines file to the embedded emulator through
//! `Producer::send_all`: one JSON record value per line, read as it is sent,
//! with a progress bar and a summary. Without a path it writes and streams a
//! file of 50,000 generated lines.
//!
//! ```text
//! cargo run --release --example stream_file [-- events.jsonl]
//! ```
//!
//! `cargo run --example produce -- --stream --format json --file events.jsonl`
//! does the same against a real cluster.

use ccloud_kafka_rest::{Client, Producer, ProducerConfig, Record};
use ccloud_kafka_rest_emulator::Emulator;
use futures_util::StreamExt;
use futures_util::stream;
use indicatif::{ProgressBar, ProgressStyle};
use std::io::{BufRead, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;
use tokio::io::{AsyncBufReadExt, BufReader};

const GENERATED_LINES: u64 = 50_000;

#[tokio::main]
async fn main() -> Result<ExitCode, Box<dyn std::error::Error>> {
    let (path, generated) = match std::env::args_os().nth(1) {
        Some(path) => (PathBuf::from(path), false),
        None => (generate(GENERATED_LINES)?, true),
    };
    // The total for the progress bar: one quick pass over the file.
    let total = std::io::BufReader::new(std::fs::File::open(&path)?)
        .lines()
        .count() as u64;

    let emulator = Emulator::start_default().await?;
    let client = Client::builder()
        .with_endpoint(emulator.url())
        .with_cluster_id(emulator.cluster_id())
        .build()?;
    let producer = Producer::with_config(client, ProducerConfig::default().with_connections(2))?;

    let progress = ProgressBar::new(total).with_style(ProgressStyle::with_template(
        "{elapsed_precise} [{wide_bar}] {pos}/{len} records, {per_sec}",
    )?);
    let skipped = AtomicU64::new(0);
    let lines = BufReader::new(tokio::fs::File::open(&path).await?).lines();
    let records = stream::unfold(lines, |mut lines| async move {
        let line = lines.next_line().await.transpose()?;
        Some((line, lines))
    })
    .filter_map(|line| {
        let record = match line {
            Ok(line) if line.trim().is_empty() => {
                progress.inc(1);
                None
            }
            Ok(line) => match serde_json::from_str::<serde_json::Value>(&line) {
                Ok(value) => Some(Record::from_value(value)),
                Err(error) => {
                    progress.suspend(|| eprintln!("skipping a line that is not JSON: {error}"));
                    skipped.fetch_add(1, Ordering::Relaxed);
                    progress.inc(1);
                    None
                }
            },
            Err(error) => {
                progress.suspend(|| eprintln!("reading stopped: {error}"));
                None
            }
        };
        std::future::ready(record)
    });

    let started = Instant::now();
    let (mut delivered, mut failed) = (0u64, 0u64);
    let mut outcomes = std::pin::pin!(producer.send_all("demo", records));
    while let Some(outcome) = outcomes.next().await {
        match outcome {
            Ok(_) => delivered += 1,
            Err(error) => {
                failed += 1;
                progress.suspend(|| eprintln!("failed: {error}"));
            }
        }
        progress.inc(1);
    }
    progress.finish_and_clear();
    producer.close().await;
    let elapsed = started.elapsed().as_secs_f64();
    let stats = producer.stats();

    println!(
        "{delivered} records delivered from {} in {elapsed:.2} s ({:.0} records/s); \
         {failed} failed, {} lines skipped, {} resent, {} streams opened; {} records in the emulator",
        path.display(),
        delivered as f64 / elapsed.max(1e-9),
        skipped.load(Ordering::Relaxed),
        stats.retried,
        stats.streams_opened,
        emulator.records("demo").len(),
    );
    if generated {
        std::fs::remove_file(&path)?;
    }
    Ok(if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// A temporary JSON-lines file of `lines` events.
fn generate(lines: u64) -> std::io::Result<PathBuf> {
    let path = std::env::temp_dir().join(format!("stream_file-{}.jsonl", std::process::id()));
    write_events(&path, lines)?;
    Ok(path)
}

fn write_events(path: &Path, lines: u64) -> std::io::Result<()> {
    let mut out = BufWriter::new(std::fs::File::create(path)?);
    for i in 0..lines {
        let action = ["view", "click", "buy"][(i % 3) as usize];
        let event = serde_json::json!({
            "id": i,
            "user": format!("user-{}", i % 1000),
            "action": action,
            "amount": (i % 97) as f64 * 1.25,
        });
        serde_json::to_writer(&mut out, &event)?;
        out.write_all(b"\n")?;
    }
    out.flush()
}
