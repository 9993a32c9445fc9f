//! Selection throughput: 1,000,000 generated tags under a semver range and
//! under a filter + extract + numerical policy. Target: under 0.5 s per
//! million tags on one core (DESIGN.md).
//!
//! Run: `cargo bench --bench select` (add `taskset -c 0` to pin one core).
//! Prints the best and median of several runs and the tags/s.

use std::collections::HashMap;
use std::hint::black_box;
use std::time::{Duration, Instant};

use tidewatch::policy::{Policy, PolicySpec};

const TAGS: usize = 1_000_000;
const RUNS: usize = 7;

/// A deterministic generator, so every run ranks the same tags.
struct Lcg(u64);
impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        self.0 >> 33
    }
}

fn semver_tags() -> Vec<String> {
    let mut rng = Lcg(7);
    (0..TAGS)
        .map(|i| {
            let (a, b, c) = (rng.next() % 60, rng.next() % 100, rng.next() % 1000);
            match i % 20 {
                0 => format!("{a}.{b}.{c}-rc.{}", rng.next() % 9),
                1 => format!("v{a}.{b}.{c}"),
                2 => format!("build-{}", rng.next()),
                3 => format!("sha256-{:016x}.sig", rng.next()),
                _ => format!("{a}.{b}.{c}"),
            }
        })
        .collect()
}

fn timestamp_tags() -> Vec<String> {
    let mut rng = Lcg(11);
    (0..TAGS)
        .map(|i| {
            let ts = 1_600_000_000 + rng.next() % 100_000_000;
            match i % 10 {
                0 => format!("pr-{}-{ts}", rng.next() % 5000),
                _ => format!("main-{:07x}-{ts}", rng.next() & 0xfff_ffff),
            }
        })
        .collect()
}

fn measure(name: &str, policy: &Policy, tags: &[String]) {
    let metadata = HashMap::new();
    let mut times: Vec<Duration> = Vec::new();
    let mut pick = String::new();
    for _ in 0..RUNS {
        let start = Instant::now();
        let outcome = black_box(policy.select(black_box(tags), &metadata, None));
        times.push(start.elapsed());
        pick = outcome.pick().map(|p| p.tag.clone()).unwrap_or_default();
    }
    times.sort();
    let best = times[0];
    let median = times[RUNS / 2];
    println!(
        "{name:<34} {TAGS} tags  best {:>7.1} ms  median {:>7.1} ms  {:>5.1} M tags/s  pick {pick}",
        best.as_secs_f64() * 1e3,
        median.as_secs_f64() * 1e3,
        TAGS as f64 / median.as_secs_f64() / 1e6,
    );
}

fn main() {
    // `cargo bench` passes `--bench`; nothing else is accepted or needed.
    let semver = Policy::compile(&PolicySpec {
        semver: Some(">=1.2.0 <50.0.0".into()),
        exclude_defaults: true,
        ..Default::default()
    })
    .expect("semver policy compiles");
    let numerical = Policy::compile(&PolicySpec {
        pattern: Some(r"^main-[0-9a-f]+-(?P<ts>\d+)$".into()),
        extract: Some("$ts".into()),
        order: Some("numerical".parse().expect("valid order")),
        exclude_defaults: true,
        ..Default::default()
    })
    .expect("numerical policy compiles");

    let tags = semver_tags();
    measure("semver >=1.2.0 <50.0.0", &semver, &tags);
    drop(tags);
    let tags = timestamp_tags();
    measure("filter+extract $ts, numerical", &numerical, &tags);
}
