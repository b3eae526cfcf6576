//! The breaker hot path: one breaker, a three-breaker gate, and gate resolution.
//!
//! Each op is measured twice: with one `Instant` taken outside the loop (the state machine alone)
//! and with `Instant::now()` per iteration (what an op pays in practice).

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion};
use stressctl::breaker::{Breaker, BreakerConfig, BreakerRegistry, Outcome};

fn breaker(c: &mut Criterion) {
    let mut group = c.benchmark_group("breaker");
    let mut b = Breaker::new(BreakerConfig::default());
    let now = Instant::now();
    group.bench_function("acquire_record_closed", |bench| {
        bench.iter(|| {
            let permit = b.acquire(black_box(now)).expect("a closed breaker permits");
            b.record(permit, Outcome::Success, now);
        })
    });
    group.bench_function("acquire_record_closed_clock", |bench| {
        bench.iter(|| {
            let now = Instant::now();
            let permit = b.acquire(now).expect("a closed breaker permits");
            b.record(permit, Outcome::Success, now);
        })
    });
    group.finish();
}

fn registry(c: &mut Criterion) {
    let mut group = c.benchmark_group("registry");
    let config = BreakerConfig::default;
    let registry = BreakerRegistry::new(config(), config(), config());
    let gate = registry.gate("w1", "chromium", "webgpu");
    let now = Instant::now();
    group.bench_function("gate_acquire_record", |bench| {
        bench.iter(|| {
            let permit = gate.try_acquire(black_box(now)).expect("closed breakers permit");
            black_box(gate.record(permit, Outcome::Success, now));
        })
    });
    group.bench_function("gate_acquire_record_clock", |bench| {
        bench.iter(|| {
            let now = Instant::now();
            let permit = gate.try_acquire(now).expect("closed breakers permit");
            black_box(gate.record(permit, Outcome::Success, now));
        })
    });
    group.bench_function("gate_lookup", |bench| bench.iter(|| registry.gate(black_box("w1"), black_box("chromium"), black_box("webgpu"))));
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().measurement_time(Duration::from_secs(3)).warm_up_time(Duration::from_secs(1));
    targets = breaker, registry
}
criterion_main!(benches);
