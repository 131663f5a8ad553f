//! Micro-benchmarks of the per-record work on each side of a stream.
//!
//! ```text
//! cargo bench --bench hot_paths                          # everything, about a minute
//! cargo bench --bench hot_paths -- encode                # one group
//! cargo bench --bench hot_paths -- --save-baseline before   # then --baseline before to compare
//! ```
//!
//! - `encode/*`: a record to the JSON the server reads, through the public
//!   API (`serde_json::to_vec(&record)`): STRING, BINARY (base64) and JSON
//!   from a `Serialize` value (building the payload included);
//!   `encode/producer_*`: the same records as the streaming producer
//!   encodes them (its own writer, into per-thread blocks).
//! - `decode_reports/*`: 1000 delivery reports, as the emulator writes them,
//!   fed to the producer's decoder in pieces of various sizes (whole, 1460
//!   bytes, 64, 7, and irregular 1 to 4096), each turned into a report.
//! - `emulator/*`: the emulator handling a body of 1000 records held in memory
//!   (framing, parsing, checks, append, report), read 64 KiB at a time
//!   (`string`) or 1460 bytes at a time (`string_1460`, so that most pieces
//!   end inside a record).

use std::hint::black_box;
use std::time::Duration;

use ccloud_kafka_rest::__bench::{Reports, encode_record};
use ccloud_kafka_rest::Record;
use ccloud_kafka_rest_emulator::__bench::emulator_stream;
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};

const REPORTS: usize = 1000;

fn text(len: usize) -> String {
    (0..len)
        .map(|i| char::from(b'a' + (i % 26) as u8))
        .collect()
}

fn bytes(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 7 + 3) as u8).collect()
}

#[derive(serde::Serialize)]
struct Order<'a> {
    id: u64,
    customer: &'a str,
    items: Vec<Item<'a>>,
    total: f64,
    paid: bool,
}

#[derive(serde::Serialize)]
struct Item<'a> {
    sku: &'a str,
    quantity: u32,
    price: f64,
}

fn order() -> Order<'static> {
    Order {
        id: 7_000_123,
        customer: "customer-4711",
        items: vec![
            Item {
                sku: "book-978-3-16",
                quantity: 2,
                price: 12.5,
            },
            Item {
                sku: "pen-blue",
                quantity: 10,
                price: 0.99,
            },
        ],
        total: 34.9,
        paid: true,
    }
}

fn encode(c: &mut Criterion) {
    let mut group = c.benchmark_group("encode");
    for size in [100, 1024] {
        let record = Record::new().with_key("key-42").with_value(text(size));
        let len = serde_json::to_vec(&record).expect("encodes").len();
        group.throughput(Throughput::Bytes(len as u64));
        group.bench_with_input(BenchmarkId::new("string", size), &record, |b, r| {
            b.iter(|| serde_json::to_vec(black_box(r)).expect("encodes"))
        });
        group.bench_with_input(
            BenchmarkId::new("producer_string", size),
            &record,
            |b, r| b.iter(|| encode_record(black_box(r))),
        );
        let record = Record::new()
            .with_key(&b"key-42"[..])
            .with_value(bytes(size));
        let len = serde_json::to_vec(&record).expect("encodes").len();
        group.throughput(Throughput::Bytes(len as u64));
        group.bench_with_input(BenchmarkId::new("binary", size), &record, |b, r| {
            b.iter(|| serde_json::to_vec(black_box(r)).expect("encodes"))
        });
        group.bench_with_input(
            BenchmarkId::new("producer_binary", size),
            &record,
            |b, r| b.iter(|| encode_record(black_box(r))),
        );
    }
    let order = order();
    let record = Record::new()
        .with_key("key-42")
        .with_json_value(&order)
        .expect("serializes");
    let len = serde_json::to_vec(&record).expect("encodes").len();
    group.throughput(Throughput::Bytes(len as u64));
    group.bench_function("json_serialize_value", |b| {
        b.iter(|| {
            let record = Record::new()
                .with_key("key-42")
                .with_json_value(black_box(&order))
                .expect("serializes");
            serde_json::to_vec(&record).expect("encodes")
        })
    });
    group.finish();
}

/// A response of `REPORTS` reports in the emulator's format.
fn report_body() -> Vec<u8> {
    let mut body = Vec::new();
    for i in 0..REPORTS {
        body.extend_from_slice(
            format!(
                "{{\"error_code\":200,\"cluster_id\":\"lkc-emulator\",\"topic_name\":\"bench\",\
                 \"partition_id\":{},\"offset\":{},\"timestamp\":\"2025-06-02T09:14:42.{:03}Z\",\
                 \"key\":{{\"type\":\"STRING\",\"size\":7}},\"value\":{{\"type\":\"STRING\",\"size\":100}}}}\r\n",
                i % 3,
                1_000_000 + i,
                i % 1000
            )
            .as_bytes(),
        );
    }
    body
}

/// Piece sizes 1 to 4096 from a fixed pseudo-random sequence.
fn irregular(total: usize) -> Vec<usize> {
    let mut state = 0x2545_f491_u64;
    let mut sizes = Vec::new();
    let mut covered = 0;
    while covered < total {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        let size = (state % 4096) as usize + 1;
        sizes.push(size);
        covered += size;
    }
    sizes
}

fn decode_reports(c: &mut Criterion) {
    let body = report_body();
    let mut group = c.benchmark_group("decode_reports");
    group.throughput(Throughput::Elements(REPORTS as u64));
    let fixed = [("whole", body.len()), ("1460", 1460), ("64", 64), ("7", 7)];
    for (name, size) in fixed {
        group.bench_function(name, |b| {
            b.iter(|| {
                let mut reports = Reports::new();
                let mut delivered = 0;
                for piece in body.chunks(size) {
                    delivered += reports.push(black_box(piece)).expect("decodes");
                }
                assert_eq!(delivered, REPORTS);
            })
        });
    }
    let sizes = irregular(body.len());
    group.bench_function("irregular", |b| {
        b.iter(|| {
            let mut reports = Reports::new();
            let mut delivered = 0;
            let mut rest = &body[..];
            for &size in &sizes {
                let (piece, tail) = rest.split_at(size.min(rest.len()));
                delivered += reports.push(black_box(piece)).expect("decodes");
                rest = tail;
            }
            assert_eq!(delivered, REPORTS);
        })
    });
    group.finish();
}

fn emulator(c: &mut Criterion) {
    let mut group = c.benchmark_group("emulator");
    group.throughput(Throughput::Elements(REPORTS as u64));
    for size in [100, 1024] {
        let mut body = Vec::new();
        for i in 0..REPORTS {
            let record = Record::new()
                .with_key(format!("key-{i}"))
                .with_value(text(size));
            serde_json::to_writer(&mut body, &record).expect("encodes");
        }
        for (name, read) in [("string", 64 * 1024), ("string_1460", 1460)] {
            group.bench_function(BenchmarkId::new(name, size), |b| {
                b.iter(|| {
                    let (reports, _) = emulator_stream(black_box(&body), read);
                    assert_eq!(reports, REPORTS);
                })
            });
        }
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .sample_size(20)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    targets = encode, decode_reports, emulator
}
criterion_main!(benches);
