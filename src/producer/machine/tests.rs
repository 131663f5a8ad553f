//! The lane's machine under simulation: random schedules of faults with the
//! invariants checked after every step, and the schedules of known holes.

use super::Settings;
use super::simulation::{self, Mode, Scheduled, Told};
use crate::http::path::PathSettings;
use crate::retry::policy::{Guarantee, RetryPolicy};
use std::time::Duration;

/// Schedules per run, and events per schedule.
fn schedules() -> u64 {
    std::env::var("SIM_SCHEDULES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2_000)
}

fn first_seed() -> u64 {
    std::env::var("SIM_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0x6b61_666b_6100)
}

#[test]
fn random_schedules_keep_every_invariant() {
    let first = first_seed();
    let count = schedules();
    let started = std::time::Instant::now();
    let (mut steps, mut records, mut delivered, mut noted) = (0, 0, 0, 0);
    for seed in first..first + count {
        let plan = simulation::plan(seed, 200);
        match simulation::run(plan) {
            Ok(summary) => {
                steps += summary.steps;
                records += summary.records;
                delivered += summary.delivered;
                noted += summary.retries_noted;
            }
            Err(failure) => panic!(
                "{failure}\nreproduce with SIM_SEED={seed} SIM_SCHEDULES=1 cargo test --lib random_schedules"
            ),
        }
    }
    eprintln!(
        "{count} schedules from seed {first}: {steps} steps, {records} records, {delivered} delivered, in {:?}",
        started.elapsed()
    );
    assert!(steps >= count as usize * 200, "{steps} steps");
    // Retries happened, and each was in a note for the log.
    assert!(noted > 0, "no retry in {count} schedules");
}

/// The producer's default settings.
fn defaults(guarantee: Guarantee) -> Settings {
    Settings {
        chunk_bytes: 64 * 1024,
        chunk_capacity: 64 * 1024,
        linger: Duration::ZERO,
        idle_timeout: Duration::from_secs(25),
        max_stream_age: Duration::from_secs(23 * 3600),
        request_records: None,
        request_bytes: None,
        path: PathSettings::default(),
        strict_order: false,
        policy: RetryPolicy {
            max_attempts: 10,
            backoff_min: Duration::from_millis(100),
            backoff_max: Duration::from_secs(10),
            guarantee,
        },
    }
}

fn secs(s: f64) -> Duration {
    Duration::from_secs_f64(s)
}

/// Records every `every` seconds from `from` to `to`, each with `timeout`.
fn records(from: f64, to: f64, every: f64, timeout: f64) -> Vec<(Duration, Scheduled)> {
    let mut out = Vec::new();
    let mut t = from;
    while t < to {
        out.push((
            secs(t),
            Scheduled::Record {
                deadline: secs(timeout),
            },
        ));
        t += every;
    }
    out
}

fn run(settings: Settings, mut events: Vec<(Duration, Scheduled)>) -> simulation::Summary {
    events.sort_by_key(|(t, _)| *t);
    match simulation::run(simulation::scripted(settings, 10_000, events)) {
        Ok(summary) => summary,
        Err(failure) => panic!("{failure}"),
    }
}

/// Outcomes of the records handed over from `from` seconds on.
fn told_after(
    summary: &simulation::Summary,
    events: &[(Duration, Scheduled)],
    from: f64,
) -> Vec<Told> {
    let handed: Vec<Duration> = events
        .iter()
        .filter(|(_, e)| matches!(e, Scheduled::Record { .. }))
        .map(|(t, _)| *t)
        .collect();
    summary
        .told
        .iter()
        .zip(handed)
        .filter(|(_, at)| *at >= secs(from))
        .map(|((_, told, _), _)| *told)
        .collect()
}

#[test]
fn after_a_45_second_outage_later_records_are_delivered_and_close_ends() {
    let mut events = records(0.0, 120.0, 0.5, 120.0);
    events.push((secs(1.0), Scheduled::Mode(Mode::Down)));
    events.push((secs(46.0), Scheduled::Mode(Mode::Healthy)));
    events.push((secs(121.0), Scheduled::Close));
    let summary = run(defaults(Guarantee::AtLeastOnce), events.clone());
    let after = told_after(&summary, &events, 46.0 + 20.0);
    assert!(!after.is_empty());
    assert!(
        after.iter().all(|t| matches!(t, Told::Delivered { .. })),
        "{after:?}"
    );
    // And the records of the outage each got an outcome (the run checks
    // that every record resolved, by its deadline).
    assert_eq!(summary.told.len(), 240);
}

#[test]
fn a_token_provider_that_fails_once_does_not_stop_the_lane() {
    let mut events = records(0.01, 30.0, 0.25, 20.0);
    events.push((
        secs(0.0),
        Scheduled::Mode(Mode::TokenFailing { retriable: true }),
    ));
    events.push((secs(0.2), Scheduled::Mode(Mode::Healthy)));
    events.push((secs(31.0), Scheduled::Close));
    let summary = run(defaults(Guarantee::AtLeastOnce), events.clone());
    let first = told_after(&summary, &events, 0.0);
    assert!(matches!(first[0], Told::Delivered { .. }), "{first:?}");
    let after = told_after(&summary, &events, 21.0);
    assert!(
        after.iter().all(|t| matches!(t, Told::Delivered { .. })),
        "{after:?}"
    );
}

#[test]
fn a_cut_with_at_most_once_does_not_stop_the_lane() {
    let mut events = records(0.01, 40.0, 0.25, 20.0);
    events.push((secs(0.0), Scheduled::Mode(Mode::Cutting { percent: 100 })));
    events.push((secs(5.0), Scheduled::Mode(Mode::Healthy)));
    events.push((secs(41.0), Scheduled::Close));
    let summary = run(defaults(Guarantee::AtMostOnce), events.clone());
    let before = told_after(&summary, &events, 0.0);
    assert!(before.contains(&Told::Unknown), "{before:?}");
    let after = told_after(&summary, &events, 26.0);
    assert!(
        after.iter().all(|t| matches!(t, Told::Delivered { .. })),
        "{after:?}"
    );
}

#[test]
fn a_503_with_an_absurd_retry_after_does_not_panic_or_stop_the_lane() {
    let mut events = records(0.0, 700.0, 1.0, 900.0);
    events.push((
        secs(0.5),
        Scheduled::Mode(Mode::Refusing {
            status: 503,
            retry_after: Some(u64::MAX),
        }),
    ));
    events.push((secs(1.0), Scheduled::Mode(Mode::Healthy)));
    events.push((secs(701.0), Scheduled::Close));
    let summary = run(defaults(Guarantee::AtLeastOnce), events.clone());
    // The wait asked for is capped at ten minutes.
    let after = told_after(&summary, &events, 1.0 + 600.0 + 20.0);
    assert!(!after.is_empty());
    assert!(
        after.iter().all(|t| matches!(t, Told::Delivered { .. })),
        "{after:?}"
    );
}

#[test]
fn records_written_to_a_server_that_never_reports_expire_as_outcome_unknown() {
    let mut events = records(0.0, 10.0, 0.5, 5.0);
    events.insert(0, (Duration::ZERO, Scheduled::Mode(Mode::Silent)));
    events.push((secs(11.0), Scheduled::Close));
    let summary = run(defaults(Guarantee::AtLeastOnce), events);
    for (i, (at, told, error)) in summary.told.iter().enumerate() {
        // Written, never reported: resolved at its deadline, not as "not
        // written" (the server stored it).
        assert_eq!(*told, Told::Unknown, "record {i}: {error:?}");
        assert!(*at <= secs(i as f64 * 0.5 + 5.0) + Duration::from_millis(1));
        assert_eq!(summary.stored[i], 1);
    }
}

#[test]
fn a_record_written_by_an_earlier_attempt_is_never_told_not_written() {
    let mut events = records(0.0, 5.0, 0.1, 60.0);
    events.insert(
        0,
        (
            Duration::ZERO,
            Scheduled::Mode(Mode::InBand {
                code: 50003,
                percent: 100,
            }),
        ),
    );
    events.push((
        secs(5.0),
        Scheduled::Mode(Mode::InBand {
            code: 40403,
            percent: 100,
        }),
    ));
    events.push((secs(70.0), Scheduled::Close));
    let summary = run(defaults(Guarantee::AtLeastOnce), events);
    for (i, (_, told, error)) in summary.told.iter().enumerate() {
        if summary.stored[i] > 0 {
            assert_ne!(*told, Told::NotWritten, "record {i}: {error:?}");
        }
    }
}

fn all_delivered_once(summary: &simulation::Summary) {
    for (i, (_, told, error)) in summary.told.iter().enumerate() {
        assert_eq!(
            *told,
            Told::Delivered { duplicate: false },
            "record {i}: {error:?}"
        );
        assert_eq!(summary.stored[i], 1, "record {i}");
    }
}

#[test]
fn a_buffering_intermediary_is_detected_and_bounded_requests_deliver_everything() {
    let mut events = records(0.0, 10.0, 0.002, 60.0);
    events.insert(
        0,
        (
            Duration::ZERO,
            Scheduled::Mode(Mode::Buffering { cap: None }),
        ),
    );
    events.push((secs(11.0), Scheduled::Close));
    let summary = run(defaults(Guarantee::AtLeastOnce), events);
    all_delivered_once(&summary);
    assert_eq!(summary.buffering_detected, 1);
    assert_eq!(summary.requests_shrunk, 0);
    // After the first request, ended at the check, requests of at most
    // 100 ms of records: 50 of them at one record every 2 ms (a request
    // also waits for the one before to end).
    assert!(summary.requests > 10, "{} requests", summary.requests);
    assert!(
        summary.most_records_per_request <= 2000,
        "{}",
        summary.most_records_per_request
    );
}

#[test]
fn a_413_for_a_request_of_many_records_shrinks_it_and_fails_nothing() {
    // Records of 17 bytes; the intermediary takes at most 40 records'
    // worth of body.
    let mut events = records(0.0, 5.0, 0.001, 60.0);
    events.insert(
        0,
        (
            Duration::ZERO,
            Scheduled::Mode(Mode::Buffering { cap: Some(17 * 40) }),
        ),
    );
    events.push((secs(6.0), Scheduled::Close));
    let mut settings = defaults(Guarantee::AtLeastOnce);
    settings.chunk_bytes = 17 * 8;
    settings.chunk_capacity = 17 * 8;
    let summary = run(settings, events);
    all_delivered_once(&summary);
    assert!(summary.requests_shrunk >= 1);
    // No attempt was counted for the refused requests.
    assert!(summary.most_records_per_request <= 40);
}

#[test]
fn held_back_reports_come_out_when_the_body_ends() {
    let mut events = records(0.0, 5.0, 0.3, 30.0);
    events.insert(0, (Duration::ZERO, Scheduled::Mode(Mode::HoldingReports)));
    events.push((secs(6.0), Scheduled::Close));
    let summary = run(defaults(Guarantee::AtLeastOnce), events.clone());
    all_delivered_once(&summary);
    assert!(summary.stalled_bodies >= 1);
    assert_eq!(summary.buffering_detected, 0);
    // Each record waited about a second (the stall) for its report, not
    // its delivery timeout.
    let handed: Vec<Duration> = events
        .iter()
        .filter(|(_, e)| matches!(e, Scheduled::Record { .. }))
        .map(|(t, _)| *t)
        .collect();
    for ((at, _, _), handed) in summary.told.iter().zip(handed) {
        assert!(
            *at < handed + secs(3.0),
            "told at {at:?}, handed at {handed:?}"
        );
    }
}

#[test]
fn a_slow_healthy_server_is_neither_cut_nor_taken_for_a_buffering_one() {
    // Reports up to 20 s late, well past the buffering check and the stall.
    let mut events = records(0.0, 30.0, 0.5, 120.0);
    events.insert(
        0,
        (
            Duration::ZERO,
            Scheduled::Mode(Mode::SlowReports(secs(20.0))),
        ),
    );
    events.push((secs(100.0), Scheduled::Close));
    let summary = run(defaults(Guarantee::AtLeastOnce), events);
    all_delivered_once(&summary);
    assert_eq!(summary.buffering_detected, 0);
}

#[test]
fn a_stream_awaiting_slow_reports_writes_heartbeats_when_it_keeps_its_body() {
    let mut events = records(0.0, 1.0, 0.5, 300.0);
    events.insert(
        0,
        (
            Duration::ZERO,
            Scheduled::Mode(Mode::SlowReports(secs(100.0))),
        ),
    );
    events.push((secs(200.0), Scheduled::Close));
    let mut settings = defaults(Guarantee::AtLeastOnce);
    settings.path.report_stall = None;
    let summary = run(settings, events);
    all_delivered_once(&summary);
    assert!(summary.heartbeats >= 2, "{} heartbeats", summary.heartbeats);
    assert_eq!(summary.requests, 1);
}

#[test]
fn a_gateway_timeout_after_records_went_through_never_says_not_written() {
    let mut events = records(0.0, 3.0, 0.1, 60.0);
    events.insert(
        0,
        (
            Duration::ZERO,
            Scheduled::Mode(Mode::GatewayTimeout(secs(1.0))),
        ),
    );
    events.push((secs(3.0), Scheduled::Mode(Mode::Healthy)));
    events.push((secs(70.0), Scheduled::Close));
    let summary = run(defaults(Guarantee::AtLeastOnce), events);
    let mut duplicates = 0;
    for (i, (_, told, error)) in summary.told.iter().enumerate() {
        // Stored by the server behind the gateway, then sent again: each
        // delivered, a duplicate said so.
        assert!(
            matches!(told, Told::Delivered { .. }),
            "record {i}: {error:?}"
        );
        if summary.stored[i] > 1 {
            assert_eq!(*told, Told::Delivered { duplicate: true }, "record {i}");
            duplicates += 1;
        }
    }
    assert!(duplicates > 0);
}

#[test]
fn configured_bounds_end_requests_and_keep_order_across_them() {
    let mut events = records(0.0, 2.0, 0.001, 60.0);
    events.push((secs(3.0), Scheduled::Close));
    let mut settings = defaults(Guarantee::AtLeastOnce);
    settings.request_records = Some(100);
    let summary = run(settings, events);
    all_delivered_once(&summary);
    assert!(summary.most_records_per_request <= 100);
    assert!(summary.requests >= 20, "{} requests", summary.requests);
    // One request at a time: the server stored them in the order handed
    // over (report offsets are the record ids in this simulation).
    assert_eq!(summary.buffering_detected, 0);
}

/// Records handed over at once against a server limiting them to `limits`
/// per second (each from its time on, in seconds): every record is
/// delivered once, at no less than 0.9 of what the limit allowed from the
/// first record read to the last report, with throttled attempts at most a
/// quarter of the records.
fn paced_run(limits: &[(f64, u32)], count: usize, held: usize) -> simulation::Summary {
    paced_run_from(limits, count, held, false)
}

/// [`paced_run`], with the server's limiter holding a second of burst at
/// the start when `full` (the burst counts as allowed).
fn paced_run_from(
    limits: &[(f64, u32)],
    count: usize,
    held: usize,
    full: bool,
) -> simulation::Summary {
    let mut events: Vec<(Duration, Scheduled)> = limits
        .iter()
        .map(|&(at, per_s)| (secs(at), Scheduled::Mode(Mode::RateLimited { per_s })))
        .collect();
    events.extend((0..count).map(|_| {
        (
            Duration::ZERO,
            Scheduled::Record {
                deadline: secs(600.0),
            },
        )
    }));
    // Late enough that no record still waits for room.
    events.push((secs(300.0), Scheduled::Close));
    events.sort_by_key(|(t, _)| *t);
    let plan = simulation::scripted(defaults(Guarantee::AtLeastOnce), held, events);
    let mut plan = plan.with_small_records();
    if full {
        plan = plan.with_full_bucket();
    }
    let summary = match simulation::run(plan) {
        Ok(summary) => summary,
        Err(failure) => panic!("{failure}"),
    };
    all_delivered_once(&summary);
    let (from, to) = (
        summary.first_read.expect("records read"),
        summary.last_delivered.expect("records delivered"),
    );
    // What the limit allowed over [from, to].
    let mut allowed = if full { f64::from(limits[0].1) } else { 0.0 };
    for (i, &(at, per_s)) in limits.iter().enumerate() {
        let end = limits.get(i + 1).map_or(f64::INFINITY, |next| next.0);
        let (start, end) = (at.max(from.as_secs_f64()), end.min(to.as_secs_f64()));
        if end > start {
            allowed += (end - start) * f64::from(per_s);
        }
    }
    let ratio = count as f64 / allowed;
    eprintln!(
        "{count} records in {:?} ({ratio:.3} of the limit), {} throttled, {} steps",
        to - from,
        summary.throttled,
        summary.steps
    );
    assert!(ratio >= 0.9, "{ratio:.3} of what the limit allowed");
    assert!(
        summary.throttled <= count as u64 / 4,
        "{} throttled attempts for {count} records",
        summary.throttled
    );
    summary
}

#[test]
fn a_rate_limited_server_is_paced_at_its_limit_without_a_retry_storm() {
    paced_run(&[(0.0, 20_000)], 20_000, 4_000);
}

#[test]
fn a_second_of_burst_in_store_does_not_set_the_pace_above_the_limit() {
    // The burst goes through at once; the pace must not take it for the
    // server's rate once the limit is met.
    paced_run_from(&[(0.0, 20_000)], 50_000, 10_000, true);
}

#[test]
fn a_limit_that_halves_and_recovers_is_followed() {
    paced_run(
        &[(0.0, 20_000), (1.0, 10_000), (2.0, 20_000)],
        50_000,
        10_000,
    );
}
