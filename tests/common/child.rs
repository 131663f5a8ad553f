//! Cases that measure peak memory run alone in a child process (this test
//! binary, that test only), so that nothing else in the binary counts: the
//! child reports its peak memory growth on stdout and the parent asserts.

use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const CHILD_ENV: &str = "KAFKA_REST_TEST_CHILD";
const REPORT: &str = "child-report: ";

/// Whether this process is the child running test `name`.
pub fn is_child(name: &str) -> bool {
    std::env::var(CHILD_ENV).is_ok_and(|v| v == name)
}

/// Runs test `name` of this binary in a child process with `env` added, at
/// most `limit`, and returns what it reported with [`report`].
pub fn run(name: &str, env: &[(&str, &str)], limit: Duration) -> Vec<String> {
    let mut command = Command::new(std::env::current_exe().unwrap());
    command
        .args([name, "--exact", "--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, name)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    for (key, value) in env {
        command.env(key, value);
    }
    let mut child = command.spawn().unwrap();
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if started.elapsed() > limit {
            let _ = child.kill();
            panic!("{name}: the child did not finish within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut out = String::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut out)
        .unwrap();
    assert!(status.success(), "{name}: the child failed:\n{out}");
    let lines: Vec<String> = out
        .lines()
        // libtest may have started the line ("test name ... ").
        .filter_map(|l| l.find(REPORT).map(|at| l[at + REPORT.len()..].to_owned()))
        .collect();
    assert!(
        !lines.is_empty(),
        "{name}: the child reported nothing:\n{out}"
    );
    lines
}

/// A line for the parent.
pub fn report(line: impl std::fmt::Display) {
    println!("{REPORT}{line}");
}

/// A field of `/proc/self/status`, in KiB.
fn status_kib(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or_else(|| panic!("no {field} in /proc/self/status"))
}

/// Peak memory from here on: resets the peak (where the kernel allows it)
/// and returns the resident memory now, in KiB.
pub fn peak_from_here() -> u64 {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
    status_kib("VmRSS:")
}

/// How far the peak rose above `base` (from [`peak_from_here`]), in KiB.
pub fn peak_growth_kib(base: u64) -> u64 {
    status_kib("VmHWM:").saturating_sub(base)
}

/// A value the child reported as `key=value`.
pub fn field<'a>(lines: &'a [String], key: &str) -> &'a str {
    lines
        .iter()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix('='))
        .unwrap_or_else(|| panic!("no {key} in {lines:?}"))
}
