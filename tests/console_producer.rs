//! The console producer (`examples/produce`) in a pipeline: each delivery
//! report reaches stdout while the input is still open, not at exit.

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

/// A line longer than any record is refused on its own, without being held
/// whole; the lines around it are delivered.
#[test]
fn an_overlong_line_fails_alone() {
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
    let writer = std::thread::spawn(move || {
        stdin.write_all(b"first\n").unwrap();
        let long = vec![b'x'; 5 * 1024 * 1024];
        stdin.write_all(&long).unwrap();
        stdin.write_all(b"\nlast\n").unwrap();
    });
    let output = child.wait_with_output().unwrap();
    writer.join().unwrap();
    let text = String::from_utf8(output.stdout).unwrap();
    let lines: Vec<serde_json::Value> = text
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    assert_eq!(lines.len(), 3, "{text}");
    assert_eq!(lines[0]["error_code"], 200, "{text}");
    assert_eq!(lines[1]["error_code"], 0, "{text}");
    let message = lines[1]["message"].as_str().unwrap();
    assert!(message.starts_with("line 2: longer than"), "{message}");
    assert_eq!(lines[2]["error_code"], 200, "{text}");
    assert!(!output.status.success());
}

/// A generated value larger than a record can hold is refused before
/// anything starts, with a message naming the option.
#[test]
fn a_value_size_no_record_holds_is_refused() {
    let binary = produce_binary();
    assert!(binary.exists(), "{} was not built", binary.display());
    let output = Command::new(&binary)
        .args(["--count", "1", "--value-size", "18446744073709551615"])
        .env_remove("KAFKA_REST_ENDPOINT")
        .env_remove("KAFKA_CLUSTER_ID")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(output.stdout.is_empty());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("--value-size") && stderr.contains("more than a record can hold"),
        "{stderr}"
    );
}
