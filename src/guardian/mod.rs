//! The guardian: samples host resources, tracks threshold violations, trips the emergency stop.
//!
//! [`sampler`] measures; this module holds the pure decision logic: which metrics are over their
//! thresholds ([`ViolationTracker`]), when a streak of violations trips the stop ([`Trip`]), and a
//! single health number for dashboards ([`health_score`]).
//!
//! The guardian protects the host, not the campaign from itself. While the campaign is confined
//! in its cgroup (a reservation is in force, see `confine`), the campaign *cannot* take the host's
//! share of CPU, so its own load is no danger and the CPU rule judges [`Metric::HostCpu`] — the
//! host's CPU demand outside the campaign, what its processes used plus what they waited for —
//! instead of total CPU ([`Metric::Cpu`], the rule when unconfined). The wait matters: under
//! contention the campaign keeps its fair share, so a host hog gets less than it wants and shows
//! as waiting, not as use. Pressure stall information adds [`Metric::Pressure`] where the kernel has it.
//! Memory and disk are judged as always: they are the host's totals.

pub mod node;
pub mod pressure;
pub mod sampler;
pub mod strain;

pub use sampler::{ResourceSample, Sampler};

use std::fmt;

/// A host resource the guardian watches.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Metric {
    /// Memory in use, percent of total.
    Memory,
    /// System-wide CPU use, percent of all cores. Judged only while the campaign is not confined.
    Cpu,
    /// The host's CPU demand outside the campaign — used plus waited for, percent of all cores
    /// ([`ResourceSample::host_cpu_demand`]; threshold: `cpu_percent`). Judged only while the
    /// campaign is confined, when its own load cannot take the host's reservation.
    HostCpu,
    /// Used percent of the output directory's filesystem.
    Disk,
    /// Host stall: the larger of memory and io `full` pressure (avg10), percent of time in which
    /// nothing could run for lack of memory or disk. Judged where the kernel has PSI.
    Pressure,
    /// Memory available, MiB: an absolute floor (`min_free_memory_mb`) beside the percentage, as
    /// 80 % of a small host leaves too little to live on. A minimum: under it is a violation.
    MemoryFree,
    /// Space available on the output dir's filesystem, MiB (`min_free_disk_mb`): the store and
    /// the reports need room whatever the percentage says. A minimum.
    DiskFree,
}

/// Threshold of [`Metric::Pressure`], percent: systemd-oomd's default memory pressure limit
/// (`ManagedOOMMemoryPressureLimit=60%`), at which it starts killing.
pub const PRESSURE_STALL_PERCENT: f64 = 60.0;

impl Metric {
    /// All metrics, in the order they are checked (and the priority when several trip at once).
    pub const ALL: [Metric; 7] =
        [Metric::Memory, Metric::Cpu, Metric::HostCpu, Metric::Disk, Metric::Pressure, Metric::MemoryFree, Metric::DiskFree];

    /// The metrics judged as percentages against a ceiling (all but the free-space minimums):
    /// what escalation's margins and the progress line's "nearest its limit" reason about.
    pub const PERCENT: [Metric; 5] = [Metric::Memory, Metric::Cpu, Metric::HostCpu, Metric::Disk, Metric::Pressure];

    /// Lower-case name: `memory`, `cpu`, `host_cpu`, `disk`, `pressure`, `memory_free` or
    /// `disk_free` (same as the serde form).
    pub fn as_str(self) -> &'static str {
        match self {
            Metric::Memory => "memory",
            Metric::Cpu => "cpu",
            Metric::HostCpu => "host_cpu",
            Metric::Disk => "disk",
            Metric::Pressure => "pressure",
            Metric::MemoryFree => "memory_free",
            Metric::DiskFree => "disk_free",
        }
    }

    /// What the metric is, in a trip reason: the name, explained where it is not obvious.
    pub fn label(self) -> &'static str {
        match self {
            Metric::HostCpu => "host cpu (used + waited for, outside the campaign)",
            Metric::Pressure => "pressure (memory/io full stall)",
            Metric::MemoryFree => "free memory",
            Metric::DiskFree => "free disk",
            m => m.as_str(),
        }
    }

    /// Whether the threshold is a floor (MiB free) rather than a ceiling (percent used).
    pub fn is_minimum(self) -> bool {
        matches!(self, Metric::MemoryFree | Metric::DiskFree)
    }

    /// Whether `value` violates `threshold`: strictly over a ceiling, strictly under a floor (a
    /// floor of 0 is off). NaN never violates.
    pub fn violates(self, value: f64, threshold: f64) -> bool {
        if self.is_minimum() {
            threshold > 0.0 && value < threshold
        } else {
            value > threshold
        }
    }

    /// This metric's value (a percentage) in `s`; NaN when the metric is not judged for `s`
    /// (`cpu` while confined, `host_cpu` while not, `pressure` without PSI) — NaN is never over a
    /// threshold.
    pub fn value(self, s: &ResourceSample) -> f64 {
        match self {
            Metric::Memory => s.memory_percent,
            Metric::Cpu if s.confined() => f64::NAN,
            Metric::Cpu => s.cpu_percent,
            Metric::HostCpu if s.confined() => s.host_cpu_demand(),
            Metric::HostCpu => f64::NAN,
            Metric::Disk => s.disk_percent,
            Metric::Pressure => s.pressure.map_or(f64::NAN, |p| p.host_stall()),
            // an empty sample (memory_percent 0: the sampler failed) has nothing to judge
            Metric::MemoryFree if s.memory_percent == 0.0 && s.memory_available_bytes == 0 => f64::NAN,
            Metric::MemoryFree => (s.memory_available_bytes >> 20) as f64,
            Metric::DiskFree if s.disk_percent == 0.0 && s.disk_available_bytes == 0 => f64::NAN,
            Metric::DiskFree => (s.disk_available_bytes >> 20) as f64,
        }
    }

    fn index(self) -> usize {
        match self {
            Metric::Memory => 0,
            Metric::Cpu => 1,
            Metric::HostCpu => 2,
            Metric::Disk => 3,
            Metric::Pressure => 4,
            Metric::MemoryFree => 5,
            Metric::DiskFree => 6,
        }
    }
}

/// The CPU figure the CPU rule judges in `s`: the host's CPU demand outside the campaign while it
/// is confined, total CPU otherwise.
pub fn judged_cpu(s: &ResourceSample) -> f64 {
    if s.confined() {
        s.host_cpu_demand()
    } else {
        s.cpu_percent
    }
}

impl fmt::Display for Metric {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Limits for the guardian: a metric is in violation when its value is strictly greater than its
/// threshold, and trips the stop after `consecutive_violations` violating samples in a row.
#[derive(Clone, Debug, PartialEq)]
pub struct Thresholds {
    /// Memory-in-use threshold, percent.
    pub memory_percent: f64,
    /// CPU threshold, percent: of total CPU when the campaign is unconfined, of the CPU used outside
    /// the campaign when it is confined.
    pub cpu_percent: f64,
    /// Disk-used threshold, percent.
    pub disk_percent: f64,
    /// Memory that must stay available, MiB (0 = no floor).
    pub min_free_memory_mb: f64,
    /// Space that must stay available on the output dir's filesystem, MiB (0 = no floor).
    pub min_free_disk_mb: f64,
    /// Violating samples in a row needed to trip (0 is treated as 1).
    pub consecutive_violations: u32,
}

impl Thresholds {
    /// The threshold for `metric`: percent, or MiB for the minimums.
    pub fn for_metric(&self, metric: Metric) -> f64 {
        match metric {
            Metric::Memory => self.memory_percent,
            Metric::Cpu | Metric::HostCpu => self.cpu_percent,
            Metric::Disk => self.disk_percent,
            Metric::Pressure => PRESSURE_STALL_PERCENT,
            Metric::MemoryFree => self.min_free_memory_mb,
            Metric::DiskFree => self.min_free_disk_mb,
        }
    }

    /// How many metrics of `s` violate their thresholds now.
    pub fn metrics_over(&self, s: &ResourceSample) -> usize {
        Metric::ALL.iter().filter(|m| m.violates(m.value(s), self.for_metric(**m))).count()
    }
}

/// One metric over its threshold in one sample.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Violation {
    /// Which metric.
    pub metric: Metric,
    /// Its value, percent.
    pub value: f64,
    /// The threshold it exceeded, percent.
    pub threshold: f64,
}

/// A metric over its threshold for the required number of consecutive samples: stop the campaign.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Trip {
    /// Which metric tripped.
    pub metric: Metric,
    /// Its value in the tripping sample, percent.
    pub value: f64,
    /// Its threshold, percent.
    pub threshold: f64,
    /// Length of the violation streak, in samples (≥ the configured number).
    pub consecutive: u32,
}

/// Formats a threshold without noise: `80` for 80.0, `80.5` for 80.5 (one decimal at most).
fn fmt_percent_compact(v: f64) -> String {
    let r = (v * 10.0).round() / 10.0;
    if r.fract() == 0.0 {
        format!("{r:.0}")
    } else {
        format!("{r:.1}")
    }
}

impl Trip {
    /// Human-readable reason, e.g. `memory 91.3% over the 80% threshold for 3 consecutive samples`,
    /// or `free disk 812 MiB under the 1024 MiB minimum for 3 consecutive samples`.
    pub fn reason(&self) -> String {
        let plural = if self.consecutive == 1 { "" } else { "s" };
        if self.metric.is_minimum() {
            return format!(
                "{} {:.0} MiB under the {:.0} MiB minimum for {} consecutive sample{plural}",
                self.metric.label(),
                self.value,
                self.threshold,
                self.consecutive
            );
        }
        format!(
            "{} {:.1}% over the {}% threshold for {} consecutive sample{plural}",
            self.metric.label(),
            self.value,
            fmt_percent_compact(self.threshold),
            self.consecutive
        )
    }

    /// The reason a trip gives the stop (and every event and log line about it):
    /// `guardian: ` and [`Trip::reason`].
    pub fn stop_reason(&self) -> String {
        format!("guardian: {}", self.reason())
    }
}

/// Per-metric violation streaks across samples.
///
/// Streaks are independent per metric: a CPU violation does not extend a memory streak, and a sample in
/// which a metric is not over its threshold resets only that metric's streak.
#[derive(Clone, Debug, Default)]
pub struct ViolationTracker {
    streaks: [u32; Metric::ALL.len()],
}

impl ViolationTracker {
    /// A tracker with all streaks at 0.
    pub fn new() -> Self {
        Self::default()
    }

    /// Checks one sample; returns this sample's violations and, when a metric has been over its threshold
    /// for `consecutive_violations` samples in a row, the trip.
    ///
    /// The trip is level-triggered: it is returned for every sample while the streak stays at or above
    /// the limit (so a caller cannot miss it), with `consecutive` the current streak length. If several
    /// metrics are tripping at once, the first in [`Metric::ALL`] order (memory, cpu, host_cpu, disk,
    /// pressure) is returned.
    /// A NaN value never counts as a violation.
    pub fn observe(&mut self, s: &ResourceSample, t: &Thresholds) -> (Vec<Violation>, Option<Trip>) {
        let needed = t.consecutive_violations.max(1);
        let mut violations = Vec::new();
        let mut trip = None;
        for metric in Metric::ALL {
            let value = metric.value(s);
            let threshold = t.for_metric(metric);
            let streak = &mut self.streaks[metric.index()];
            if metric.violates(value, threshold) {
                *streak = streak.saturating_add(1);
                violations.push(Violation { metric, value, threshold });
                if *streak >= needed && trip.is_none() {
                    trip = Some(Trip { metric, value, threshold, consecutive: *streak });
                }
            } else {
                *streak = 0;
            }
        }
        (violations, trip)
    }

    /// The current violation streak of `metric`, in samples.
    pub fn streak(&self, metric: Metric) -> u32 {
        self.streaks[metric.index()]
    }

    /// Clears all streaks (e.g. after a trip has been handled).
    pub fn reset(&mut self) {
        self.streaks = [0; Metric::ALL.len()];
    }
}

/// Weight of memory headroom in [`health_score`].
pub const HEALTH_WEIGHT_MEMORY: f64 = 0.35;
/// Weight of CPU headroom in [`health_score`].
pub const HEALTH_WEIGHT_CPU: f64 = 0.25;
/// Weight of disk headroom in [`health_score`].
pub const HEALTH_WEIGHT_DISK: f64 = 0.15;
/// Weight of the recent op success rate in [`health_score`].
pub const HEALTH_WEIGHT_SUCCESS: f64 = 0.25;

/// Headroom of one metric, 0.0..=1.0: 1.0 at or below half the threshold, falling linearly to 0.0 at the
/// threshold, 0.0 above it. Non-increasing in `value`. A NaN value has no headroom; a threshold ≤ 0 (or
/// NaN) gives 1.0 for values ≤ 0 and 0.0 otherwise.
pub fn headroom(value: f64, threshold: f64) -> f64 {
    if value.is_nan() {
        return 0.0;
    }
    if threshold.is_nan() || threshold <= 0.0 {
        return if value <= 0.0 { 1.0 } else { 0.0 };
    }
    let knee = threshold / 2.0;
    ((threshold - value) / (threshold - knee)).clamp(0.0, 1.0)
}

/// Health score 0..=100 from resource headroom and the recent op success rate (None = no ops yet).
///
/// `score = 100 × (0.35 × H(memory) + 0.25 × H(cpu) + 0.15 × H(disk) + 0.25 × S)` where cpu is the
/// judged CPU ([`judged_cpu`]: outside the campaign while it is confined), `H` is
/// [`headroom`] of the metric against its threshold (1.0 up to half the threshold, linearly down to 0.0 at
/// the threshold) and `S` is the success rate clamped to 0.0..=1.0 (1.0 when `None`, NaN counts as 0.0).
/// The weights are [`HEALTH_WEIGHT_MEMORY`], [`HEALTH_WEIGHT_CPU`], [`HEALTH_WEIGHT_DISK`] and
/// [`HEALTH_WEIGHT_SUCCESS`] and sum to 1. The score is non-increasing in every metric's value and
/// non-decreasing in the success rate; an idle machine (all metrics at or below half their thresholds)
/// with no ops scores exactly 100, and every metric at/over its threshold with no successes scores 0.
pub fn health_score(s: &ResourceSample, t: &Thresholds, recent_success_rate: Option<f64>) -> f64 {
    let success = match recent_success_rate {
        None => 1.0,
        Some(r) if r.is_nan() => 0.0,
        Some(r) => r.clamp(0.0, 1.0),
    };
    let mix = HEALTH_WEIGHT_MEMORY * headroom(s.memory_percent, t.memory_percent)
        + HEALTH_WEIGHT_CPU * headroom(judged_cpu(s), t.cpu_percent)
        + HEALTH_WEIGHT_DISK * headroom(s.disk_percent, t.disk_percent)
        + HEALTH_WEIGHT_SUCCESS * success;
    (100.0 * mix).clamp(0.0, 100.0)
}

/// One metric's value beside its threshold: the resource closest to its limit in a sample.
#[derive(Clone, Debug, PartialEq)]
pub struct Reading {
    /// Which metric.
    pub metric: Metric,
    /// Its value, percent.
    pub value: f64,
    /// Its threshold, percent.
    pub threshold: f64,
}

/// The judged metric of `s` closest to (or furthest over) its threshold, by value/threshold:
/// what a progress line shows so that a reader sees at once which limit a night is nearest.
/// `None` when no metric is judged (an empty sample).
pub fn worst_reading(s: &ResourceSample, t: &Thresholds) -> Option<Reading> {
    Metric::PERCENT
        .iter()
        .map(|&m| Reading { metric: m, value: m.value(s), threshold: t.for_metric(m) })
        .filter(|r| r.value.is_finite() && r.threshold > 0.0)
        .max_by(|a, b| (a.value / a.threshold).total_cmp(&(b.value / b.threshold)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(n: u32) -> Thresholds {
        Thresholds {
            memory_percent: 80.0,
            cpu_percent: 90.0,
            disk_percent: 95.0,
            min_free_memory_mb: 0.0,
            min_free_disk_mb: 0.0,
            consecutive_violations: n,
        }
    }

    fn s(memory: f64, cpu: f64, disk: f64) -> ResourceSample {
        ResourceSample { memory_percent: memory, cpu_percent: cpu, disk_percent: disk, ..ResourceSample::default() }
    }

    #[test]
    fn worst_reading_is_the_metric_nearest_its_threshold() {
        // memory 60/80 = 0.75 beats cpu 63/90 = 0.7 and disk 50/95
        let w = worst_reading(&s(60.0, 63.0, 50.0), &t(3)).unwrap();
        assert_eq!((w.metric, w.value, w.threshold), (Metric::Memory, 60.0, 80.0));
        // confined: total cpu is not judged, host cpu is
        let c = confined(99.0, 85.0);
        let w = worst_reading(&c, &t(3)).unwrap();
        assert_eq!(w.metric, Metric::HostCpu);
    }

    fn reservation() -> crate::confine::cgroup::Reservation {
        crate::confine::cgroup::Reservation {
            reserve_percent: 20,
            cpus: 2,
            cpu_cap_percent: Some(80.0),
            memory_cap_bytes: Some(8 << 30),
            mechanism: "test".into(),
        }
    }

    /// A sample taken while the campaign is confined: `total` CPU, of which `host` outside it.
    fn confined(total: f64, host: f64) -> ResourceSample {
        ResourceSample {
            memory_percent: 30.0,
            cpu_percent: total,
            campaign_cpu_percent: total - host,
            host_cpu_percent: host,
            disk_percent: 40.0,
            reservation: Some(reservation()),
            ..ResourceSample::default()
        }
    }

    fn pressured(memory_full: f64, io_full: f64) -> ResourceSample {
        let stall = |full| pressure::Stall { some: full, full };
        ResourceSample {
            pressure: Some(pressure::Pressure { cpu: stall(99.0), memory: stall(memory_full), io: stall(io_full) }),
            ..s(10.0, 10.0, 10.0)
        }
    }

    #[test]
    fn confined_campaign_load_is_not_a_violation() {
        // the campaign at its 80 % cap plus a little host work: 97 % total CPU
        let mut tr = ViolationTracker::new();
        for _ in 0..10 {
            let (v, trip) = tr.observe(&confined(97.0, 17.0), &t(3));
            assert!(v.is_empty(), "{v:?}");
            assert_eq!(trip, None);
        }
        // the same load unconfined is judged as total CPU, as before
        let mut tr = ViolationTracker::new();
        let unconfined = ResourceSample { reservation: None, ..confined(97.0, 17.0) };
        let (v, _) = tr.observe(&unconfined, &t(3));
        assert_eq!(v, vec![Violation { metric: Metric::Cpu, value: 97.0, threshold: 90.0 }]);
    }

    #[test]
    fn host_cpu_outside_the_campaign_trips() {
        let mut tr = ViolationTracker::new();
        let th = t(3);
        tr.observe(&confined(99.0, 93.0), &th);
        tr.observe(&confined(99.0, 94.0), &th);
        // one sample where the host calms down resets the streak
        let (v, _) = tr.observe(&confined(90.0, 40.0), &th);
        assert!(v.is_empty());
        for _ in 0..2 {
            assert_eq!(tr.observe(&confined(99.0, 95.0), &th).1, None);
        }
        let (v, trip) = tr.observe(&confined(99.5, 96.0), &th);
        assert_eq!(v, vec![Violation { metric: Metric::HostCpu, value: 96.0, threshold: 90.0 }]);
        let trip = trip.expect("trip");
        assert_eq!((trip.metric, trip.consecutive), (Metric::HostCpu, 3));
        assert_eq!(
            trip.reason(),
            "host cpu (used + waited for, outside the campaign) 96.0% over the 90% threshold for 3 consecutive samples"
        );
        assert_eq!(serde_json::to_string(&Metric::HostCpu).expect("json"), "\"host_cpu\"");
    }

    #[test]
    fn host_demand_counts_what_the_host_waited_for() {
        // a hog on every core sharing the CPU with the campaign: it gets 65 %, and waits for the rest
        let hogged = ResourceSample { host_wait_percent: 33.0, ..confined(99.0, 65.0) };
        assert_eq!(hogged.host_cpu_demand(), 98.0);
        let mut tr = ViolationTracker::new();
        let trip = (0..3).find_map(|_| tr.observe(&hogged, &t(3)).1).expect("trip");
        assert_eq!((trip.metric, trip.value), (Metric::HostCpu, 98.0));
        // a little waiting behind the campaign's threads is no distress
        let busy = ResourceSample { host_wait_percent: 3.0, ..confined(97.0, 17.0) };
        assert_eq!(tr.observe(&busy, &t(3)).0, vec![]);
        // many runnable host threads: demand saturates at 100
        assert_eq!(ResourceSample { host_wait_percent: 400.0, ..confined(99.0, 90.0) }.host_cpu_demand(), 100.0);
    }

    #[test]
    fn judged_cpu_and_health_follow_the_reservation() {
        assert_eq!(judged_cpu(&confined(97.0, 17.0)), 17.0);
        assert_eq!(judged_cpu(&s(10.0, 97.0, 10.0)), 97.0);
        assert!(Metric::Cpu.value(&confined(97.0, 17.0)).is_nan());
        assert!(Metric::HostCpu.value(&s(10.0, 97.0, 10.0)).is_nan());
        let th = t(3);
        // a busy but confined campaign leaves the host healthy; the same total unconfined does not
        assert_eq!(health_score(&confined(97.0, 17.0), &th, None), 100.0);
        assert!(health_score(&ResourceSample { reservation: None, ..confined(97.0, 17.0) }, &th, None) <= 75.0);
    }

    #[test]
    fn pressure_stall_trips_where_the_kernel_has_it() {
        let mut tr = ViolationTracker::new();
        let th = t(2);
        // cpu `some` is the campaign's own contention: never judged
        let (v, _) = tr.observe(&pressured(10.0, 0.0), &th);
        assert!(v.is_empty(), "{v:?}");
        let (v, trip) = tr.observe(&pressured(61.0, 0.0), &th);
        assert_eq!(v, vec![Violation { metric: Metric::Pressure, value: 61.0, threshold: PRESSURE_STALL_PERCENT }]);
        assert_eq!(trip, None);
        let (_, trip) = tr.observe(&pressured(0.0, 75.0), &th);
        let trip = trip.expect("io stall keeps the streak");
        assert_eq!((trip.metric, trip.value), (Metric::Pressure, 75.0));
        assert!(trip.reason().starts_with("pressure (memory/io full stall) 75.0% over the 60% threshold"), "{}", trip.reason());
        // no PSI: nothing judged
        assert!(Metric::Pressure.value(&s(1.0, 1.0, 1.0)).is_nan());
    }

    #[test]
    fn free_space_floors_are_violated_under_them_and_off_at_zero() {
        let mut th = t(2);
        th.min_free_memory_mb = 1024.0;
        th.min_free_disk_mb = 2048.0;
        let mut x = s(10.0, 10.0, 10.0);
        x.memory_available_bytes = 1000 << 20;
        x.disk_available_bytes = 4096 << 20;
        let mut tr = ViolationTracker::new();
        let (v, trip) = tr.observe(&x, &th);
        assert_eq!(v, vec![Violation { metric: Metric::MemoryFree, value: 1000.0, threshold: 1024.0 }]);
        assert!(trip.is_none());
        let trip = tr.observe(&x, &th).1.expect("second in a row trips");
        assert_eq!(trip.reason(), "free memory 1000 MiB under the 1024 MiB minimum for 2 consecutive samples");
        assert_eq!(th.metrics_over(&x), 1);
        // exactly at the floor is no violation; a floor of 0 is off; an empty sample is not judged
        x.memory_available_bytes = 1024 << 20;
        assert_eq!(th.metrics_over(&x), 0);
        th.min_free_disk_mb = 0.0;
        x.disk_available_bytes = 0;
        assert_eq!(th.metrics_over(&x), 0);
        th.min_free_disk_mb = 1.0;
        assert_eq!(th.metrics_over(&ResourceSample::default()), 0);
    }

    #[test]
    fn metric_names() {
        assert_eq!(Metric::ALL.map(Metric::as_str), ["memory", "cpu", "host_cpu", "disk", "pressure", "memory_free", "disk_free"]);
        assert_eq!(Metric::Cpu.to_string(), "cpu");
        assert_eq!(serde_json::to_string(&Metric::Memory).expect("json"), "\"memory\"");
    }

    #[test]
    fn trips_exactly_at_n() {
        let mut tr = ViolationTracker::new();
        let th = t(3);
        for i in 1..=2 {
            let (v, trip) = tr.observe(&s(85.0, 10.0, 10.0), &th);
            assert_eq!(v, vec![Violation { metric: Metric::Memory, value: 85.0, threshold: 80.0 }]);
            assert_eq!(trip, None, "no trip after {i} samples");
            assert_eq!(tr.streak(Metric::Memory), i);
        }
        let (_, trip) = tr.observe(&s(91.3, 10.0, 10.0), &th);
        assert_eq!(trip, Some(Trip { metric: Metric::Memory, value: 91.3, threshold: 80.0, consecutive: 3 }));
        // Level-triggered: still tripping while over.
        let (_, trip) = tr.observe(&s(90.0, 10.0, 10.0), &th);
        assert_eq!(trip.map(|x| x.consecutive), Some(4));
    }

    #[test]
    fn good_sample_resets_streak() {
        let mut tr = ViolationTracker::new();
        let th = t(3);
        tr.observe(&s(85.0, 0.0, 0.0), &th);
        tr.observe(&s(85.0, 0.0, 0.0), &th);
        let (v, trip) = tr.observe(&s(80.0, 0.0, 0.0), &th); // equal is not over
        assert!(v.is_empty());
        assert_eq!(trip, None);
        assert_eq!(tr.streak(Metric::Memory), 0);
        tr.observe(&s(85.0, 0.0, 0.0), &th);
        let (_, trip) = tr.observe(&s(85.0, 0.0, 0.0), &th);
        assert_eq!(trip, None);
        let (_, trip) = tr.observe(&s(85.0, 0.0, 0.0), &th);
        assert!(trip.is_some());
        tr.reset();
        assert_eq!(tr.streak(Metric::Memory), 0);
        let (_, trip) = tr.observe(&s(85.0, 0.0, 0.0), &th);
        assert_eq!(trip, None);
    }

    #[test]
    fn streaks_are_per_metric() {
        let mut tr = ViolationTracker::new();
        let th = t(2);
        // Alternating memory / cpu violations never make a streak of 2.
        for i in 0..10 {
            let sample = if i % 2 == 0 { s(85.0, 10.0, 10.0) } else { s(10.0, 95.0, 10.0) };
            let (v, trip) = tr.observe(&sample, &th);
            assert_eq!(v.len(), 1);
            assert_eq!(trip, None);
        }
        // Both over: each streak counts on its own; memory wins the tie by priority.
        let (v, trip) = tr.observe(&s(85.0, 95.0, 99.0), &th);
        assert_eq!(v.iter().map(|x| x.metric).collect::<Vec<_>>(), vec![Metric::Memory, Metric::Cpu, Metric::Disk]);
        assert_eq!(trip.map(|x| x.metric), Some(Metric::Cpu), "cpu had 1 from the last loop sample, memory reset");
        let (_, trip) = tr.observe(&s(10.0, 10.0, 99.0), &th);
        assert_eq!(trip.map(|x| (x.metric, x.consecutive)), Some((Metric::Disk, 2)));
        assert_eq!(tr.streak(Metric::Cpu), 0);
    }

    #[test]
    fn zero_consecutive_means_one_and_nan_is_not_a_violation() {
        let mut tr = ViolationTracker::new();
        let (_, trip) = tr.observe(&s(0.0, 95.0, 0.0), &t(0));
        assert_eq!(trip.map(|x| x.consecutive), Some(1));
        let (v, _) = tr.observe(&s(f64::NAN, f64::NAN, f64::NAN), &t(1));
        assert!(v.is_empty());
    }

    #[test]
    fn reason_text() {
        let trip = Trip { metric: Metric::Memory, value: 91.34, threshold: 80.0, consecutive: 3 };
        assert_eq!(trip.reason(), "memory 91.3% over the 80% threshold for 3 consecutive samples");
        let trip = Trip { metric: Metric::Disk, value: 97.0, threshold: 95.5, consecutive: 1 };
        let r = trip.reason();
        assert!(r.contains("disk") && r.contains("97.0%") && r.contains("95.5%") && r.ends_with("1 consecutive sample"), "{r}");
        let trip = Trip { metric: Metric::Cpu, value: 99.99, threshold: 90.0, consecutive: 5 };
        assert!(trip.reason().starts_with("cpu 100.0% over the 90% threshold"));
    }

    #[test]
    fn headroom_shape() {
        assert_eq!(headroom(0.0, 80.0), 1.0);
        assert_eq!(headroom(40.0, 80.0), 1.0);
        assert!((headroom(60.0, 80.0) - 0.5).abs() < 1e-12);
        assert_eq!(headroom(80.0, 80.0), 0.0);
        assert_eq!(headroom(100.0, 80.0), 0.0);
        assert_eq!(headroom(f64::NAN, 80.0), 0.0);
        assert_eq!(headroom(0.0, 0.0), 1.0);
        assert_eq!(headroom(1.0, 0.0), 0.0);
    }

    #[test]
    fn health_bounds() {
        let th = t(3);
        assert_eq!(health_score(&ResourceSample::default(), &th, None), 100.0);
        assert_eq!(health_score(&s(30.0, 5.0, 40.0), &th, None), 100.0);
        assert_eq!(health_score(&s(30.0, 5.0, 40.0), &th, Some(1.0)), 100.0);
        assert_eq!(health_score(&s(80.0, 90.0, 95.0), &th, Some(0.0)), 0.0);
        assert_eq!(health_score(&s(100.0, 100.0, 100.0), &th, Some(-3.0)), 0.0);
        assert!((health_score(&ResourceSample::default(), &th, Some(0.0)) - 75.0).abs() < 1e-9);
        assert!((HEALTH_WEIGHT_MEMORY + HEALTH_WEIGHT_CPU + HEALTH_WEIGHT_DISK + HEALTH_WEIGHT_SUCCESS - 1.0).abs() < 1e-12);
        for m in [0.0, 20.0, 55.0, 79.0, 100.0] {
            for c in [0.0, 47.0, 89.9, 150.0] {
                for d in [0.0, 60.0, 94.0, 99.0] {
                    for r in [None, Some(0.0), Some(0.5), Some(1.0), Some(f64::NAN)] {
                        let h = health_score(&s(m, c, d), &th, r);
                        assert!((0.0..=100.0).contains(&h), "{h}");
                    }
                }
            }
        }
        assert!((health_score(&s(f64::NAN, 0.0, 0.0), &th, None) - 65.0).abs() < 1e-9);
    }

    #[test]
    fn health_is_monotone() {
        let th = t(3);
        let steps: Vec<f64> = (0..=110).map(f64::from).collect();
        for metric in [Metric::Memory, Metric::Cpu, Metric::HostCpu, Metric::Disk] {
            let base = if metric == Metric::HostCpu { confined(10.0, 10.0) } else { s(10.0, 10.0, 10.0) };
            let mut prev = f64::INFINITY;
            for &v in &steps {
                let mut sample = base.clone();
                match metric {
                    Metric::Memory => sample.memory_percent = v,
                    Metric::Cpu => sample.cpu_percent = v,
                    Metric::HostCpu => sample.host_cpu_percent = v,
                    Metric::Disk => sample.disk_percent = v,
                    Metric::Pressure | Metric::MemoryFree | Metric::DiskFree => {
                        unreachable!("{metric} is not part of the health score")
                    }
                }
                let h = health_score(&sample, &th, Some(0.9));
                assert!(h <= prev, "{metric} {v}: {h} > {prev}");
                prev = h;
            }
            assert!(prev < health_score(&base, &th, Some(0.9)), "{metric} must lower the score");
        }
        let mut prev = -1.0;
        for r in (0..=20).map(|i| f64::from(i) / 20.0) {
            let h = health_score(&s(50.0, 50.0, 50.0), &th, Some(r));
            assert!(h >= prev);
            prev = h;
        }
    }
}
