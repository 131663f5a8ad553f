//! Delivery reports as JSON lines on stdout, progress and summary on stderr.

use ccloud_kafka_rest::{DeliveryReport, Error};
use chrono::{DateTime, Utc};
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
    line: ReportLine,
    progress: ProgressBar,
    /// Whether the bar is drawn (counting for a hidden one costs a clock
    /// read per record).
    shown: bool,
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
            line: ReportLine::default(),
            shown: !progress.is_hidden(),
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
                self.out.write_all(self.line.of(report))?;
            }
            Err(failure) => {
                self.failed += 1;
                if failure.is_interrupted() {
                    self.interrupted += 1;
                }
                self.progress.set_message(format!("failed {}", self.failed));
                serde_json::to_writer(&mut self.out, failure)?;
                self.out.write_all(b"\n")?;
            }
        }
        if self.shown {
            self.progress.inc(1);
        }
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

/// A delivery report as a line of JSON, the text the report's `Serialize`
/// writes (a test checks it), written without serde: the cluster, topic and
/// timestamp, the same for many reports in a row, are escaped or formatted
/// once for each run of them.
#[derive(Default)]
pub struct ReportLine {
    line: Vec<u8>,
    /// `"cluster_id":…,"topic_name":…,` for `names`.
    names_json: Vec<u8>,
    names: (String, String),
    /// `"timestamp":"…",` for `time`.
    time_json: Vec<u8>,
    time: Option<DateTime<Utc>>,
}

impl ReportLine {
    /// The report's line, `\n` included.
    pub fn of(&mut self, report: &DeliveryReport) -> &[u8] {
        if self.names_json.is_empty()
            || self.names.0 != report.cluster_id
            || self.names.1 != report.topic
        {
            self.names = (report.cluster_id.clone(), report.topic.clone());
            self.names_json.clear();
            self.names_json.extend_from_slice(b"\"cluster_id\":");
            json_string(&mut self.names_json, &report.cluster_id);
            self.names_json.extend_from_slice(b",\"topic_name\":");
            json_string(&mut self.names_json, &report.topic);
            self.names_json.push(b',');
        }
        if report.timestamp != self.time || self.time_json.is_empty() {
            self.time = report.timestamp;
            self.time_json.clear();
            if let Some(time) = report.timestamp {
                self.time_json.extend_from_slice(b"\"timestamp\":");
                let text = time.to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
                json_string(&mut self.time_json, &text);
                self.time_json.push(b',');
            }
        }
        let line = &mut self.line;
        line.clear();
        line.extend_from_slice(b"{\"error_code\":200,");
        line.extend_from_slice(&self.names_json);
        line.extend_from_slice(b"\"partition_id\":");
        line.extend_from_slice(itoa::Buffer::new().format(report.partition).as_bytes());
        line.extend_from_slice(b",\"offset\":");
        line.extend_from_slice(itoa::Buffer::new().format(report.offset).as_bytes());
        line.push(b',');
        line.extend_from_slice(&self.time_json);
        for (name, data) in [
            (&b"\"key\":"[..], &report.key),
            (b"\"value\":", &report.value),
        ] {
            if let Some(data) = data {
                line.extend_from_slice(name);
                line.extend_from_slice(b"{\"type\":\"");
                line.extend_from_slice(data.data_type.as_str().as_bytes());
                line.extend_from_slice(b"\",\"size\":");
                line.extend_from_slice(itoa::Buffer::new().format(data.size).as_bytes());
                line.extend_from_slice(b"},");
            }
        }
        if report.attempts > 1 {
            line.extend_from_slice(b"\"attempts\":");
            line.extend_from_slice(itoa::Buffer::new().format(report.attempts).as_bytes());
            line.push(b',');
        }
        if report.possibly_duplicated {
            line.extend_from_slice(b"\"possibly_duplicated\":true,");
        }
        // The last field's comma becomes the object's end.
        line.pop();
        line.extend_from_slice(b"}\n");
        line
    }
}

fn json_string(out: &mut Vec<u8>, text: &str) {
    serde_json::to_writer(out, text).expect("writing to memory");
}

#[cfg(test)]
mod tests {
    use super::*;
    use ccloud_kafka_rest::{ClientBuilder, Payload, Producer, Record};
    use ccloud_kafka_rest_emulator::Emulator;

    /// Reports of records of every shape, from a producer and the unary
    /// call, written both ways.
    #[tokio::test]
    async fn lines_are_what_serde_writes() {
        let emulator = Emulator::builder()
            .with_topic("orders", 3)
            .with_topic("a.b_c-9", 1)
            .start()
            .await
            .unwrap();
        let client = ClientBuilder::new()
            .with_endpoint(emulator.url())
            .with_cluster_id(emulator.cluster_id())
            .build()
            .unwrap();
        let records = [
            Record::new().with_key("k").with_value("v"),
            Record::new().with_key("k"),
            Record::new(),
            Record::from_value(Payload::from(serde_json::json!({"a": [1, 2]}))),
            Record::from_value(Payload::from(vec![0u8, 1, 2, 255])).with_partition(0),
            Record::from_value("v")
                .with_timestamp(DateTime::from_timestamp_millis(1_760_000_000_123).unwrap()),
            Record::from_value("v").with_header("h", b"x"),
        ];
        let mut reports = Vec::new();
        let producer = Producer::new(client.clone());
        for topic in ["orders", "a.b_c-9"] {
            // The first one is refused once (an unknown outcome): attempts 2,
            // possibly duplicated.
            emulator.fail_next_records(50003, "try again", 1);
            for record in &records {
                reports.push(producer.send(topic, record).await.unwrap());
            }
            for record in &records {
                reports.push(client.produce(topic, record).await.unwrap());
            }
        }
        producer.close().await;
        assert!(
            reports
                .iter()
                .any(|r| r.attempts > 1 && r.possibly_duplicated)
        );
        assert!(reports.iter().any(|r| r.key.is_none() && r.value.is_none()));
        let mut line = ReportLine::default();
        for report in &reports {
            let expected = serde_json::to_string(report).unwrap() + "\n";
            assert_eq!(
                std::str::from_utf8(line.of(report)).unwrap(),
                expected,
                "{report:?}"
            );
        }
    }
}
