//! The guardian task of a run: samples host resources every `sample_interval`, stores every
//! sample, records violations, trips the stop after `consecutive_violations` in a row, and recycles
//! the session of a single browser whose process tree exceeds `max_browser_rss`. Each sample is
//! one compact line of the guardian log ([`sample_line`]); violations and trips are events, so
//! they reach the campaign log.

use super::shared::RunShared;
use crate::events::Event;
use crate::guardian::{health_score, sampler::tree_rss_from, ResourceSample, Sampler, ViolationTracker};
use crate::store::{BrowserRss, HostFigures, SampleRow};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::SystemTime;
use tokio_util::sync::CancellationToken;

/// Takes one sample off the runtime thread (the sampler reads /proc and may wait for its first
/// CPU interval).
pub(crate) async fn sample_once(mut sampler: Sampler) -> (Sampler, ResourceSample) {
    let disk_path = sampler.disk_path().to_path_buf();
    match tokio::task::spawn_blocking(move || {
        let s = sampler.sample();
        (sampler, s)
    })
    .await
    {
        Ok(r) => r,
        // the sampler panicked: start a new one on the same filesystem; this sample is empty
        Err(_) => (Sampler::new(disk_path), ResourceSample::default()),
    }
}

/// Runs until `stop` fires. A trip is handed to `RunShared::on_trip`.
pub(crate) async fn run(run: Arc<RunShared>, disk_path: PathBuf, stop: CancellationToken) {
    let interval = run.cfg.safety.sample_interval;
    let mut sampler = Sampler::new(disk_path);
    let mut tracker = ViolationTracker::new();
    let mut tick = tokio::time::interval(interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut epoch = run.guardian_epoch();
    loop {
        tokio::select! {
            _ = stop.cancelled() => break,
            _ = tick.tick() => {}
        }
        let (s, sample) = sample_once(sampler).await;
        sampler = s;
        if run.guardian_epoch() != epoch {
            epoch = run.guardian_epoch();
            tracker.reset();
        }
        let phase = run.current_phase_idx();
        let thresholds = run.cfg.phase_safety(phase.map(|p| p as usize).unwrap_or(usize::MAX)).thresholds();
        let (violations, trip) = tracker.observe(&sample, &thresholds);
        let health = health_score(&sample, &thresholds, run.recent_success_rate());
        let browsers = browser_rss(&run);
        run.observe_strain(health, crate::guardian::strain::strained_metric(&sample, &thresholds));
        run.store.sample(SampleRow {
            at: SystemTime::now(),
            phase_idx: phase,
            cpu: sample.cpu_percent,
            memory: sample.memory_percent,
            disk: sample.disk_percent,
            tree_rss_bytes: sample.tree_rss_bytes,
            tree_cpu: sample.tree_cpu_percent,
            tree_processes: sample.tree_processes,
            health,
            violations: serde_json::to_string(&violations).unwrap_or_else(|_| "[]".into()),
            host: HostFigures::of(&sample),
            browsers: browsers.iter().map(|(_, b)| *b).collect(),
        });
        for v in &violations {
            let corr = format!("{}/{}/guardian", run.id, run.current_phase_name().unwrap_or_default());
            let event =
                Event::GuardianViolation { metric: v.metric.to_string(), value: (v.value * 10.0).round() / 10.0, threshold: v.threshold };
            run.event(corr, phase, event);
        }
        // the guardian log (`guardian_<stamp>.log`, see `crate::logging::GUARDIAN_TARGET`)
        tracing::info!(target: "stressctl::guardian", "{}", sample_line(run.current_phase_name().as_deref(), &sample, health, &violations));
        run.set_latest(sample, health, violations.len() as u64);
        if let (Some(cap), Some(pool)) = (run.cfg.safety.max_browser_rss_bytes, &run.pool) {
            for (b, BrowserRss { rss_bytes: rss, .. }) in browsers {
                if rss > cap && pool.request_recycle(b) {
                    run.event(
                        format!("{}/{}/guardian", run.id, run.current_phase_name().unwrap_or_default()),
                        phase,
                        Event::BrowserRssExceeded { pid: b.pid, rss_mb: rss >> 20, cap_mb: cap >> 20 },
                    );
                }
            }
        }
        if let Some(t) = trip {
            run.on_trip(t);
        }
    }
}

/// The RSS of every live local browser's process tree, from one scan of `/proc`: stored with the
/// sample (the drift analysis follows each browser's memory between recycles) and judged against
/// `max_browser_rss`.
fn browser_rss(run: &RunShared) -> Vec<(crate::browser::process::ProcId, BrowserRss)> {
    let Some(pool) = &run.pool else { return Vec::new() };
    let live = pool.live_browsers();
    if live.is_empty() {
        return Vec::new();
    }
    let procs = crate::procfs::all_processes();
    let mut out: Vec<_> = live
        .into_iter()
        .map(|b| (b, BrowserRss { pid: b.pid, start_time: b.start_time, rss_bytes: tree_rss_from(&procs, b.pid) }))
        .collect();
    out.sort_by_key(|(_, r)| *r);
    out
}

/// One sample as a compact line: `phase=warm cpu=12.3 mem=45.6 disk=30.1 rss=512M procs=23
/// health=92 over=memory`: greppable `key=value` pairs, so a night's samples can be plotted
/// from the log without the store.
pub(crate) fn sample_line(phase: Option<&str>, s: &ResourceSample, health: f64, violations: &[crate::guardian::Violation]) -> String {
    let mut line = format!(
        "phase={} cpu={:.1} mem={:.1} disk={:.1} rss={}M procs={} health={:.0}",
        phase.unwrap_or("-"),
        crate::guardian::judged_cpu(s),
        s.memory_percent,
        s.disk_percent,
        s.tree_rss_bytes >> 20,
        s.tree_processes,
        health
    );
    if !violations.is_empty() {
        let over: Vec<&str> = violations.iter().map(|v| v.metric.as_str()).collect();
        line.push_str(&format!(" over={}", over.join(",")));
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sample_is_one_compact_line() {
        let s = ResourceSample {
            cpu_percent: 12.34,
            memory_percent: 45.6,
            disk_percent: 30.0,
            tree_rss_bytes: 512 << 20,
            tree_processes: 23,
            ..ResourceSample::default()
        };
        let v = vec![crate::guardian::Violation { metric: crate::guardian::Metric::Memory, value: 45.6, threshold: 40.0 }];
        assert_eq!(
            sample_line(Some("warm"), &s, 91.6, &v),
            "phase=warm cpu=12.3 mem=45.6 disk=30.0 rss=512M procs=23 health=92 over=memory"
        );
        assert_eq!(sample_line(None, &s, 100.0, &[]), "phase=- cpu=12.3 mem=45.6 disk=30.0 rss=512M procs=23 health=100");
    }
}
