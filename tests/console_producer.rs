//! The console producer (`examples/produce`) in a pipeline: each delivery
//! report reaches stdout while the input is still open, not at exit.

#![cfg(feature = "emulator")]

use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// The example binary `cargo test` built beside this test.
fn produce_binary() -> PathBuf {
    let deps = std::env::current_exe().unwrap();
    let profile = deps.parent().and_then(|d| d.parent()).unwrap();
    profile.join("examples").join("produce")
}

#[test]
fn each_report_is_written_before_the_next_line_arrives() {
    let binary = produce_binary();
    assert!(binary.exists(), "{} was not built", binary.display());
    let mut child = Command::new(&binary)
        .args(["--stream", "--topic", "demo"])
        .env_remove("KAFKA_REST_ENDPOINT")
        .env_remove("KAFKA_CLUSTER_ID")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let stdout = child.stdout.take().unwrap();
    let (lines, reports) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            if lines.send(line.unwrap()).is_err() {
                return;
            }
        }
    });
    for i in 0..3 {
        writeln!(stdin, "line-{i}").unwrap();
        stdin.flush().unwrap();
        // The input stays open: the report must come while it does.
        let report = reports.recv_timeout(Duration::from_secs(20));
        let report = match report {
            Ok(report) => report,
            Err(e) => {
                let _ = child.kill();
                panic!("no report for line {i} while the input was open ({e})");
            }
        };
        let json: serde_json::Value = serde_json::from_str(&report).unwrap();
        assert_eq!(json["error_code"], 200, "{report}");
    }
    drop(stdin);
    let mut waited = Duration::ZERO;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if waited > Duration::from_secs(30) {
            let _ = child.kill();
            panic!("the producer did not exit after its input ended");
        }
        std::thread::sleep(Duration::from_millis(20));
        waited += Duration::from_millis(20);
    };
    assert!(status.success());
    assert!(
        reports.recv_timeout(Duration::from_secs(5)).is_err(),
        "one report per line"
    );
}
