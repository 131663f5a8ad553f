//! Loopback tests of the emulator's seeded fault plan, using a hand-driven HTTP/1.1
//! client (for exact control over chunks and connection ends) and reqwest.

mod common;

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use ccloud_kafka_rest_emulator::{Emulator, FaultPlan, HttpFault, StoredRecord};
use common::raw_http::{RawConn, client};
use serde_json::{Value, json};
use tokio::time::timeout;

const WAIT: Duration = Duration::from_secs(10);

async fn start(plan: FaultPlan) -> Emulator {
    Emulator::builder()
        .with_topic("demo", 1)
        .with_faults(plan)
        .start()
        .await
        .unwrap()
}

fn path(emu: &Emulator) -> String {
    format!(
        "/kafka/v3/clusters/{}/topics/demo/records",
        emu.cluster_id()
    )
}

fn url(emu: &Emulator) -> String {
    format!("{}{}", emu.url(), path(emu))
}

fn record(i: usize) -> String {
    json!({"value": {"type": "STRING", "data": i.to_string()}}).to_string()
}

fn records(ids: impl IntoIterator<Item = usize>) -> Vec<u8> {
    ids.into_iter().map(record).collect::<String>().into_bytes()
}

/// The stored values, parsed back to record numbers.
fn ids(stored: &[StoredRecord]) -> Vec<usize> {
    stored
        .iter()
        .map(|r| {
            std::str::from_utf8(r.value.as_deref().unwrap())
                .unwrap()
                .parse()
                .unwrap()
        })
        .collect()
}

fn codes(reports: &[Value]) -> Vec<i64> {
    reports
        .iter()
        .map(|r| r["error_code"].as_i64().unwrap())
        .collect()
}

fn offsets(reports: &[Value]) -> Vec<i64> {
    reports
        .iter()
        .map(|r| r["offset"].as_i64().unwrap())
        .collect()
}

/// POSTs a Content-Length body with reqwest: the status, headers and body.
async fn post(
    http: &reqwest::Client,
    emu: &Emulator,
    body: Vec<u8>,
) -> (u16, reqwest::header::HeaderMap, String) {
    let resp = timeout(
        WAIT,
        http.post(url(emu))
            .header("content-type", "application/json")
            .body(body)
            .send(),
    )
    .await
    .expect("response in time")
    .expect("request sent");
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let text = timeout(WAIT, resp.text()).await.unwrap().unwrap();
    (status, headers, text)
}

fn parse_reports(body: &str) -> Vec<Value> {
    assert!(body.is_empty() || body.ends_with("\r\n"), "{body:?}");
    body.split_terminator("\r\n")
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("{line:?}: {e}")))
        .collect()
}

/// Sends records on one stream and reads every report.
async fn stream(emu: &Emulator, ids: impl IntoIterator<Item = usize>) -> (Vec<Value>, bool) {
    let mut conn = RawConn::open(emu, &path(emu), &[]).await;
    let writer = conn.send_all(records(ids));
    assert_eq!(conn.status().await, 200);
    let rest = conn.rest().await;
    writer.abort();
    rest
}

#[tokio::test]
async fn a_cut_appends_the_record_but_loses_its_report() {
    let emu = start(FaultPlan {
        cut_after_records: Some(3),
        ..FaultPlan::new(1)
    })
    .await;

    // Three records are appended, only the first two reported, and the rest of the
    // stream is never read.
    let mut conn = RawConn::open(&emu, &path(&emu), &[]).await;
    assert!(conn.chunk(&records(0..6)).await);
    assert_eq!(conn.status().await, 200);
    let (reports, ended) = conn.rest().await;
    assert_eq!(offsets(&reports), [0, 1]);
    assert!(!ended, "the connection is dropped, not ended");
    assert!(conn.eof);
    assert_eq!(ids(&emu.records("demo")), [0, 1, 2]);
    assert_eq!(emu.fault_stats().cuts, 1);

    // The count is per stream, and only appended records count: records answered
    // with an error that were not written do not.
    emu.fail_next_records(429, "Too Many Requests", 2);
    let (reports, ended) = stream(&emu, 10..20).await;
    assert_eq!(codes(&reports), [429, 429, 200, 200]);
    assert!(!ended);
    assert_eq!(ids(&emu.records("demo")), [0, 1, 2, 12, 13, 14]);

    // A stream that appends fewer records is not cut.
    let (reports, ended) = stream(&emu, 20..22).await;
    assert_eq!((offsets(&reports), ended), (vec![6, 7], true));
    let stats = emu.fault_stats();
    assert_eq!((stats.cuts, stats.injected_record_errors), (2, 2));
}

#[tokio::test]
async fn cut_after_zero_drops_every_stream_before_reading() {
    let emu = start(FaultPlan {
        cut_after_records: Some(0),
        ..FaultPlan::default()
    })
    .await;
    let (reports, ended) = stream(&emu, 0..3).await;
    assert!(reports.is_empty() && !ended);
    assert!(emu.records("demo").is_empty());
}

#[tokio::test]
async fn random_cuts_write_exactly_the_unreported_record() {
    let emu = start(FaultPlan {
        cut_probability: 0.02,
        ..FaultPlan::new(7)
    })
    .await;
    let mut pending: Vec<usize> = (0..400).collect();
    let mut cuts = 0;
    while !pending.is_empty() {
        let (reports, ended) = stream(&emu, pending.clone()).await;
        let log = emu.records("demo");
        for (report, id) in reports.iter().zip(&pending) {
            assert_eq!(report["error_code"], 200);
            let offset = report["offset"].as_u64().unwrap() as usize;
            assert_eq!(ids(&log[offset..=offset]), [*id]);
        }
        if ended {
            assert_eq!(reports.len(), pending.len());
            pending.clear();
        } else {
            // The first record without a report was written; later ones were not
            // read. Here they are not resent, so every record is stored exactly once.
            cuts += 1;
            pending.drain(..=reports.len());
        }
        assert!(cuts < 40, "too many cuts");
    }
    assert!(cuts >= 2, "only {cuts} cuts");
    assert_eq!(ids(&emu.records("demo")), (0..400).collect::<Vec<_>>());
    assert_eq!(emu.fault_stats().cuts, cuts);
}

#[tokio::test]
async fn the_same_seed_gives_the_same_reports_and_log() {
    let http = client();
    let plan = FaultPlan {
        record_error_rate: 0.3,
        record_error_codes: vec![429, 42901, 500, 50003],
        ..FaultPlan::new(99)
    };
    async fn run(http: &reqwest::Client, emu: &Emulator) -> Vec<i64> {
        let (status, _, text) = post(http, emu, records(0..300)).await;
        assert_eq!(status, 200);
        codes(&parse_reports(&text))
    }
    let a = start(plan.clone()).await;
    let first = run(&http, &a).await;
    let log_after_first = ids(&a.records("demo"));
    a.set_faults(plan.clone());
    assert_eq!(
        run(&http, &a).await,
        first,
        "set_faults restarts the sequence"
    );

    let b = start(plan.clone()).await;
    assert_eq!(run(&http, &b).await, first, "another emulator, same plan");
    assert_eq!(ids(&b.records("demo")), log_after_first);
    for code in [200, 429, 42901, 500, 50003] {
        assert!(first.contains(&code), "{code} never chosen");
    }

    let c = start(FaultPlan { seed: 100, ..plan }).await;
    assert_ne!(run(&http, &c).await, first, "another seed, other faults");
}

#[tokio::test]
async fn record_error_rate_is_honoured_and_only_unknown_outcomes_append() {
    let http = client();
    let emu = start(FaultPlan {
        record_error_rate: 0.2,
        record_error_codes: vec![429, 50003],
        ..FaultPlan::new(5)
    })
    .await;
    let (status, _, text) = post(&http, &emu, records(0..2000)).await;
    assert_eq!(status, 200);
    let reports = parse_reports(&text);
    assert_eq!(reports.len(), 2000);

    let log = ids(&emu.records("demo"));
    let stored: HashSet<usize> = log.iter().copied().collect();
    assert_eq!(stored.len(), log.len(), "nothing is stored twice");
    assert!(log.windows(2).all(|w| w[0] < w[1]), "stored in order");
    let (mut ok, mut limited, mut unknown, mut unknown_stored) = (0, 0, 0, 0);
    for (id, report) in reports.iter().enumerate() {
        match report["error_code"].as_i64().unwrap() {
            200 => {
                ok += 1;
                let offset = report["offset"].as_u64().unwrap() as usize;
                assert_eq!(log[offset], id);
            }
            429 => {
                limited += 1;
                assert!(!stored.contains(&id), "a 429 record was stored");
                assert!(report["message"].is_string() && report.get("offset").is_none());
            }
            50003 => {
                unknown += 1;
                unknown_stored += usize::from(stored.contains(&id));
            }
            other => panic!("unexpected code {other}"),
        }
    }
    let errors = limited + unknown;
    assert!((330..=470).contains(&errors), "{errors} errors in 2000");
    assert!(limited > 100 && unknown > 100, "{limited} / {unknown}");
    let half = unknown / 2;
    assert!(
        (half - half / 3..=half + half / 3).contains(&unknown_stored),
        "{unknown_stored} of {unknown} unknown outcomes stored"
    );
    assert_eq!(log.len(), ok + unknown_stored);
    let stats = emu.fault_stats();
    assert_eq!(stats.injected_record_errors, errors as u64);
    assert_eq!(stats.unknown_outcome_appended, unknown_stored as u64);
    assert_eq!(stats.cuts, 0);
}

#[tokio::test]
async fn max_records_then_408_and_the_connection_closes() {
    let emu = start(FaultPlan {
        stream_max_records: Some(3),
        stream_close_delay: Some(Duration::from_millis(200)),
        ..FaultPlan::default()
    })
    .await;
    let mut conn = RawConn::open(&emu, &path(&emu), &[]).await;
    assert!(conn.chunk(&records(0..5)).await);
    assert_eq!(conn.status().await, 200);
    let mut reports = Vec::new();
    for _ in 0..5 {
        reports.push(conn.report().await.unwrap());
    }
    let first_408 = Instant::now();
    assert_eq!(codes(&reports), [200, 200, 200, 408, 408]);
    assert!(conn.chunk(&records(5..6)).await);
    assert_eq!(conn.report().await.unwrap()["error_code"], 408);
    let (rest, ended) = conn.rest().await;
    assert!(rest.is_empty() && !ended, "dropped, not ended");
    let closed_after = first_408.elapsed();
    assert!(closed_after < Duration::from_secs(1), "{closed_after:?}");
    assert_eq!(ids(&emu.records("demo")), [0, 1, 2]);
    assert_eq!(emu.fault_stats().expired_408, 3);

    // Each stream has its own allowance.
    let (reports, ended) = stream(&emu, 10..13).await;
    assert_eq!((codes(&reports), ended), (vec![200, 200, 200], true));
}

#[tokio::test]
async fn planned_stream_lifetime_answers_408() {
    let emu = start(FaultPlan {
        stream_lifetime: Some(Duration::from_millis(150)),
        stream_close_delay: Some(Duration::from_millis(100)),
        ..FaultPlan::default()
    })
    .await;
    let mut conn = RawConn::open(&emu, &path(&emu), &[]).await;
    assert!(conn.chunk(&records(0..1)).await);
    assert_eq!(conn.status().await, 200);
    assert_eq!(conn.report().await.unwrap()["error_code"], 200);
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(conn.chunk(&records(1..2)).await);
    assert_eq!(conn.report().await.unwrap()["error_code"], 408);
    let (rest, ended) = conn.rest().await;
    assert!(rest.is_empty() && !ended);
    assert_eq!(ids(&emu.records("demo")), [0]);
}

#[tokio::test]
async fn dribbled_reports_split_anywhere_but_parse_the_same() {
    let plan = FaultPlan {
        record_error_rate: 0.1,
        record_error_codes: vec![42901, 50302],
        ..FaultPlan::new(3)
    };
    let plain = start(plan.clone()).await;
    let dribbled = start(FaultPlan {
        report_dribble: true,
        ..plan
    })
    .await;

    let mut results = Vec::new();
    for emu in [&plain, &dribbled] {
        let mut conn = RawConn::open(emu, &path(emu), &[]).await;
        let writer = conn.send_all(records(0..300));
        assert_eq!(conn.status().await, 200);
        let (mut reports, ended) = conn.rest().await;
        writer.abort();
        assert!(ended);
        assert_eq!(reports.len(), 300);
        for r in &mut reports {
            r.as_object_mut().unwrap().remove("timestamp");
        }
        results.push((reports, conn.chunks));
    }
    let (plain_reports, _) = &results[0];
    let (dribbled_reports, chunks) = &results[1];
    assert_eq!(dribbled_reports, plain_reports);
    assert!(codes(plain_reports).contains(&42901));
    assert_eq!(ids(&dribbled.records("demo")), ids(&plain.records("demo")));

    assert!(chunks.iter().all(|c| (1..=7).contains(&c.len())));
    assert!(chunks.len() > 300 * 10, "{} chunks", chunks.len());
    // Chunks hold the end of one report and the start of the next.
    assert!(
        chunks
            .iter()
            .any(|c| c.ends_with(b"\r\n{") || c.windows(3).any(|w| w == b"\n{\""))
    );
    // And CRLF terminators are split between chunks.
    assert!(chunks.iter().any(|c| c.ends_with(b"\r")));
}

#[tokio::test]
async fn report_delay_slows_every_report() {
    let http = client();
    let emu = start(FaultPlan {
        report_delay: Some(Duration::from_millis(40)),
        ..FaultPlan::default()
    })
    .await;
    let began = Instant::now();
    let (status, _, text) = post(&http, &emu, records(0..5)).await;
    let took = began.elapsed();
    assert_eq!(status, 200);
    assert_eq!(offsets(&parse_reports(&text)), [0, 1, 2, 3, 4]);
    assert!(took >= Duration::from_millis(200), "{took:?}");
    assert!(took < Duration::from_secs(1), "{took:?}");
}

#[tokio::test]
async fn idle_streams_end_cleanly_after_their_reports() {
    let emu = start(FaultPlan {
        idle_timeout: Some(Duration::from_millis(200)),
        ..FaultPlan::default()
    })
    .await;
    let mut conn = RawConn::open(&emu, &path(&emu), &[]).await;
    assert!(conn.chunk(&records(0..2)).await);
    assert_eq!(conn.status().await, 200);
    assert_eq!(conn.report().await.unwrap()["offset"], 0);
    assert_eq!(conn.report().await.unwrap()["offset"], 1);
    // Half a record, then silence.
    assert!(conn.chunk(br#"{"value":{"type":"STRI"#).await);
    let silent = Instant::now();
    let (rest, ended) = conn.rest().await;
    let waited = silent.elapsed();
    assert!(rest.is_empty());
    assert!(ended, "the response ends with its final chunk");
    assert!(
        waited >= Duration::from_millis(180) && waited < Duration::from_secs(1),
        "{waited:?}"
    );
    assert!(!conn.read_more().await, "then the connection closes");
    assert_eq!(ids(&emu.records("demo")), [0, 1]);
    assert_eq!(emu.fault_stats().idle_closes, 1);

    // Records that keep coming keep the stream open.
    let mut conn = RawConn::open(&emu, &path(&emu), &[]).await;
    for i in 0..4 {
        assert!(conn.chunk(&records(10 + i..11 + i)).await);
        assert_eq!(conn.report().await.unwrap()["error_code"], 200);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let writer = conn.send_all(Vec::new());
    let (rest, ended) = conn.rest().await;
    writer.abort();
    assert!(rest.is_empty() && ended);
    assert_eq!(emu.fault_stats().idle_closes, 1);
}

#[tokio::test]
async fn open_failures_answer_before_reading_the_body() {
    let http = client();
    let plan = FaultPlan {
        open_failure_rate: 0.4,
        open_failure: HttpFault::json(503, 50302, "Broker not available"),
        ..FaultPlan::new(11)
    };
    let emu = start(plan.clone()).await;
    let mut statuses = Vec::new();
    for i in 0..100 {
        let (status, _, text) = post(&http, &emu, records(i..i + 1)).await;
        if status == 503 {
            let body: Value = serde_json::from_str(&text).unwrap();
            assert_eq!(body["error_code"], 50302);
        } else {
            assert_eq!(status, 200);
            assert_eq!(parse_reports(&text).len(), 1);
        }
        statuses.push(status);
    }
    let failed = statuses.iter().filter(|&&s| s == 503).count();
    assert!((25..=55).contains(&failed), "{failed} of 100 failed");
    assert_eq!(emu.records("demo").len(), 100 - failed);
    assert_eq!(emu.fault_stats().open_failures, failed as u64);

    emu.set_faults(plan);
    let mut again = Vec::new();
    for i in 0..20 {
        again.push(post(&http, &emu, records(i..i + 1)).await.0);
    }
    assert_eq!(again, statuses[..20]);

    emu.set_faults(FaultPlan {
        open_failure_rate: 1.0,
        open_failure: HttpFault::rate_limited(Some(1)),
        ..FaultPlan::default()
    });
    let (status, headers, text) = post(&http, &emu, records(0..1)).await;
    assert_eq!(
        (status, &headers["retry-after"]),
        (429, &"1".parse().unwrap())
    );
    assert!(text.contains("<html"));
}

#[tokio::test]
async fn one_shot_faults_still_work_and_are_counted() {
    let http = client();
    let emu = start(FaultPlan::new(1)).await;
    emu.fail_next_requests(HttpFault::json(500, 50003, "Retriable Kafka error"), 1);
    assert_eq!(post(&http, &emu, records(0..1)).await.0, 500);
    emu.cut_connection_after_records(1);
    let (reports, ended) = stream(&emu, 0..3).await;
    assert_eq!((reports.len(), ended), (1, false));
    emu.fail_next_records(42901, "Throttled", 1);
    let (_, _, text) = post(&http, &emu, records(5..7)).await;
    assert_eq!(codes(&parse_reports(&text)), [42901, 200]);
    let stats = emu.fault_stats();
    assert_eq!(
        (
            stats.open_failures,
            stats.cuts,
            stats.injected_record_errors
        ),
        (1, 1, 1)
    );
    emu.reset_fault_stats();
    assert_eq!(emu.fault_stats(), Default::default());

    emu.set_faults(FaultPlan {
        record_error_rate: 1.0,
        ..FaultPlan::default()
    });
    let (_, _, text) = post(&http, &emu, records(0..1)).await;
    assert_eq!(codes(&parse_reports(&text)), [50003]);
    emu.clear_faults();
    let (_, _, text) = post(&http, &emu, records(0..1)).await;
    assert_eq!(codes(&parse_reports(&text)), [200]);
}

/// A minimal resending client against every record-level fault at once: each
/// record ends up stored, and duplicates only ever come from records whose outcome
/// the client could not know.
#[tokio::test]
async fn a_resending_client_loses_nothing_under_every_fault() {
    let emu = start(FaultPlan {
        cut_probability: 0.004,
        record_error_rate: 0.05,
        record_error_codes: vec![429, 42901, 500, 50003, 50302],
        stream_max_records: Some(400),
        stream_close_delay: Some(Duration::from_millis(50)),
        report_dribble: true,
        ..FaultPlan::new(2024)
    })
    .await;
    const N: usize = 2000;
    let mut pending: Vec<usize> = (0..N).collect();
    let mut delivered: HashMap<usize, usize> = HashMap::new();
    let mut maybe_duplicated: HashSet<usize> = HashSet::new();
    let mut rounds = 0;
    while !pending.is_empty() {
        rounds += 1;
        assert!(rounds < 100, "no progress");
        let batch = std::mem::take(&mut pending);
        let (reports, _) = stream(&emu, batch.clone()).await;
        for (report, &id) in reports.iter().zip(&batch) {
            match report["error_code"].as_i64().unwrap() {
                200 => {
                    let offset = report["offset"].as_u64().unwrap() as usize;
                    assert!(delivered.insert(id, offset).is_none(), "{id} twice");
                }
                429 | 42901 | 408 => pending.push(id),
                500 | 50003 | 50302 => {
                    maybe_duplicated.insert(id);
                    pending.push(id);
                }
                other => panic!("unexpected code {other}"),
            }
        }
        // Records without a report have an unknown outcome.
        for &id in &batch[reports.len()..] {
            maybe_duplicated.insert(id);
            pending.push(id);
        }
        pending.sort_unstable();
    }
    let log = ids(&emu.records("demo"));
    for (&id, &offset) in &delivered {
        assert_eq!(log[offset], id, "report of {id} points elsewhere");
    }
    let mut seen: HashMap<usize, usize> = HashMap::new();
    for &id in &log {
        *seen.entry(id).or_default() += 1;
    }
    assert_eq!(seen.len(), N, "every record stored");
    let duplicated: Vec<usize> = seen
        .iter()
        .filter(|(_, n)| **n > 1)
        .map(|(id, _)| *id)
        .collect();
    assert!(!duplicated.is_empty(), "the faults produced duplicates");
    for id in &duplicated {
        assert!(maybe_duplicated.contains(id), "{id} duplicated silently");
    }
    let stats = emu.fault_stats();
    assert!(stats.cuts > 0 && stats.expired_408 > 0 && stats.unknown_outcome_appended > 0);
}
