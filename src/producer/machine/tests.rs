//! The lane's machine under simulation: random schedules of faults with the
//! invariants checked after every step, and the schedules of known holes.

use super::simulation::{self, Mode, Scheduled, Told};
use super::Settings;
use crate::retry_policy::{Guarantee, RetryPolicy};
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
    let (mut steps, mut records, mut delivered) = (0, 0, 0);
    for seed in first..first + count {
        let plan = simulation::plan(seed, 200);
        match simulation::run(plan) {
            Ok(summary) => {
                steps += summary.steps;
                records += summary.records;
                delivered += summary.delivered;
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
}
