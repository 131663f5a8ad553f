//! Delivery reports as JSON lines on stdout, progress and summary on stderr.

use ccloud_kafka_rest::{DeliveryReport, Error};
use indicatif::{ProgressBar, ProgressStyle};
use serde::Serialize;
use std::io::{BufWriter, IsTerminal, StdoutLock, Write};
use std::time::{Duration, Instant};

/// A record that was not delivered: the server's `error_code` (or the HTTP
/// status, or 0 for a local failure) and a message.
#[derive(Debug, Serialize)]
pub struct Failure {
    pub error_code: i32,
    pub message: String,
}

impl Failure {
    /// A record that could not be made from its input.
    pub fn local(message: String) -> Failure {
        Failure {
            error_code: 0,
            message,
        }
    }

    /// A record read but not sent before Ctrl-C.
    pub fn interrupted() -> Failure {
        Failure::local("interrupted".to_owned())
    }

    /// Whether this is [`Failure::interrupted`].
    pub fn is_interrupted(&self) -> bool {
        self.error_code == 0 && self.message == "interrupted"
    }
}

impl From<Error> for Failure {
    fn from(error: Error) -> Failure {
        Failure {
            error_code: error_code(&error),
            message: message(&error),
        }
    }
}

fn error_code(error: &Error) -> i32 {
    error
        .error_code()
        .or_else(|| error.status().map(i32::from))
        .unwrap_or(0)
}

/// The error's text followed by whatever its sources add.
fn message(error: &Error) -> String {
    let mut text = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        let more = cause.to_string();
        if !text.contains(&more) {
            text.push_str(": ");
            text.push_str(&more);
        }
        source = cause.source();
    }
    text
}

pub type Outcome = Result<DeliveryReport, Failure>;

/// Counts outcomes, writes them, and shows progress.
pub struct Output {
    out: BufWriter<StdoutLock<'static>>,
    progress: ProgressBar,
    started: Instant,
    pub delivered: u64,
    pub failed: u64,
    pub interrupted: u64,
}

impl Output {
    /// `expected` records when known (for the progress bar).
    pub fn new(expected: Option<u64>) -> Output {
        let progress = if std::io::stderr().is_terminal() {
            let bar = match expected {
                Some(total) => ProgressBar::new(total).with_style(
                    ProgressStyle::with_template(
                        "{spinner} {elapsed_precise} [{wide_bar}] {pos}/{len} {per_sec} {msg}",
                    )
                    .expect("valid template"),
                ),
                None => ProgressBar::new_spinner().with_style(
                    ProgressStyle::with_template(
                        "{spinner} {elapsed_precise} {pos} records {per_sec} {msg}",
                    )
                    .expect("valid template"),
                ),
            };
            bar.enable_steady_tick(Duration::from_millis(200));
            bar
        } else {
            ProgressBar::hidden()
        };
        Output {
            out: BufWriter::with_capacity(64 * 1024, std::io::stdout().lock()),
            progress,
            started: Instant::now(),
            delivered: 0,
            failed: 0,
            interrupted: 0,
        }
    }

    /// A handle to print on stderr without breaking the progress bar.
    pub fn progress(&self) -> ProgressBar {
        self.progress.clone()
    }

    /// Writes one record's outcome as a line of JSON.
    pub fn write(&mut self, outcome: &Outcome) -> std::io::Result<()> {
        match outcome {
            Ok(report) => {
                self.delivered += 1;
                // The library writes the server's report format.
                serde_json::to_writer(&mut self.out, report)?;
            }
            Err(failure) => {
                self.failed += 1;
                if failure.is_interrupted() {
                    self.interrupted += 1;
                }
                self.progress.set_message(format!("failed {}", self.failed));
                serde_json::to_writer(&mut self.out, failure)?;
            }
        }
        self.out.write_all(b"\n")?;
        self.progress.inc(1);
        Ok(())
    }

    /// Writes what is buffered to stdout.
    pub fn flush(&mut self) -> std::io::Result<()> {
        self.out.flush()
    }

    /// Flushes stdout and prints the summary on stderr.
    pub fn finish(mut self, retried: u64) -> std::io::Result<()> {
        let flushed = self.out.flush();
        self.progress.finish_and_clear();
        let elapsed = self.started.elapsed().as_secs_f64();
        if self.interrupted > 0 {
            eprintln!(
                "interrupted: {} record(s) read but not sent",
                self.interrupted
            );
        }
        eprintln!(
            "delivered={} failed={} retried={retried} elapsed={elapsed:.3}s records_per_s={:.0}",
            self.delivered,
            self.failed,
            self.delivered as f64 / elapsed.max(1e-9),
        );
        flushed
    }
}
