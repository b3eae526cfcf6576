//! Drift analysis against real stores written with [`Store`]: a steady phase is not flagged, a
//! leaking one is, recycles do not count as drops, and every report says so the same way twice.

use super::*;
use crate::metrics::{encode_histogram, new_histogram, record_latency};
use crate::store::{BrowserRss, CampaignRecord, HostFigures, PhaseStart, SampleRow, Store, WindowRow};
use std::time::{Duration, SystemTime};

const T0: u64 = 1_750_000_000;
const MIN: u64 = 60_000;

fn at_ms(ms: u64) -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_millis(T0 * 1000 + ms)
}

const CONFIG: &str = r#"
[campaign]
drift_min_phase = "2m"
[task]
kind = "webgpu"
matrix_size = 64
[[phases]]
name = "steady"
duration = "10m"
sessions = 2
[phases.criteria]
max_rss_growth_mb_per_h = 50
max_p95_drift_pct_per_h = 100
[[phases]]
name = "leak"
duration = "10m"
sessions = 2
[phases.criteria]
max_rss_growth_mb_per_h = 50
max_p95_drift_pct_per_h = 100
[[phases]]
name = "short"
duration = "1m"
sessions = 1
[phases.criteria]
max_rss_growth_mb_per_h = 50
"#;

/// A deterministic jitter in 0..1.
fn jitter(i: u64) -> f64 {
    ((i.wrapping_mul(2_654_435_761) >> 7) % 1000) as f64 / 1000.0
}

/// Phase `idx` from `start` for `len` ms: a window per second per slot (in-page latency from
/// `latency(t)`), a sample every 2 s with each browser's RSS from `rss(browser, t)`.
fn phase(store: &Store, idx: u32, name: &str, start: u64, len: u64, latency: impl Fn(u64) -> f64, rss: impl Fn(u32, u64) -> Option<u64>) {
    store.phase_started(PhaseStart {
        idx,
        name: name.into(),
        stress_level: "moderate",
        task_kind: "webgpu",
        sessions_planned: 2,
        sessions: 2,
        duration_planned: Duration::from_millis(len),
        min_success_rate: 0.9,
        max_p95_ms: 3000,
        notes: vec![],
        started_at: at_ms(start),
    });
    for t in (0..len).step_by(1000) {
        for slot in 0..2u32 {
            let mut h = new_histogram();
            for k in 0..10 {
                let ms = latency(t) * (0.9 + 0.2 * jitter(t + u64::from(slot) * 7 + k));
                record_latency(&mut h, Duration::from_micros((ms * 1000.0) as u64));
            }
            store.window(WindowRow {
                phase_idx: idx,
                worker: "w1".into(),
                slot,
                task_kind: "webgpu",
                start_ms: (T0 * 1000 + start + t) as i64,
                end_ms: (T0 * 1000 + start + t + 1000) as i64,
                attempted: 10,
                succeeded: 10,
                failed: 0,
                verified: 10,
                errors: "{}".into(),
                hist: encode_histogram(&h),
                hist_in_page: encode_histogram(&h),
                console: 0,
            });
        }
    }
    for t in (0..len).step_by(2000) {
        let browsers = (0..3u32)
            .filter_map(|b| rss(b, t).map(|r| BrowserRss { pid: 100 + b, start_time: u64::from(b), rss_bytes: r << 20 }))
            .collect();
        store.sample(SampleRow {
            at: at_ms(start + t),
            phase_idx: Some(idx),
            cpu: 50.0,
            memory: 40.0,
            disk: 10.0,
            tree_rss_bytes: 1 << 30,
            tree_cpu: 100.0,
            tree_processes: 6,
            health: 90.0,
            violations: "[]".into(),
            host: HostFigures::default(),
            browsers,
        });
    }
    store.phase_progress(idx, Duration::from_millis(len));
    store.phase_ended(idx, "completed", Duration::from_millis(len));
}

fn drift_store(dir: &std::path::Path) -> std::path::PathBuf {
    let path = dir.join("runs/c-drift/store.sqlite");
    let rec = CampaignRecord {
        config_text: CONFIG.into(),
        config_source: "drift.toml".into(),
        ..CampaignRecord::quick_for_test("c-drift", at_ms(0), &dir.join("results"))
    };
    let store = Store::create(&path, &rec, &dir.join("runs/c-drift/events.jsonl")).unwrap();
    // steady: flat latency and memory with noise; two browsers
    phase(
        &store,
        0,
        "steady",
        0,
        10 * MIN,
        |t| 20.0 + 2.0 * jitter(t),
        |b, t| (b < 2).then(|| 300 + (jitter(t + u64::from(b)) * 8.0) as u64),
    );
    // leak: latency 20 -> 40 ms over 10 min; browsers 0 and 1 grow 3 MiB/min (180 MiB/h); browser
    // 0 is recycled at 5 min (browser 2 starts low again): a drop, not a trend
    phase(
        &store,
        1,
        "leak",
        10 * MIN,
        10 * MIN,
        |t| 20.0 + 20.0 * t as f64 / (10 * MIN) as f64,
        |b, t| {
            let grown = 300 + 3 * t / MIN + (jitter(t + u64::from(b)) * 4.0) as u64;
            match b {
                0 => (t < 5 * MIN).then_some(grown),
                1 => Some(grown),
                _ => (t >= 5 * MIN).then(|| 300 + 3 * (t - 5 * MIN) / MIN),
            }
        },
    );
    phase(&store, 2, "short", 20 * MIN, MIN, |_| 20.0, |_, _| Some(300));
    store.campaign_ended("failed", None);
    store.close().unwrap();
    path
}

#[test]
fn a_leak_is_flagged_and_a_steady_phase_is_not() {
    let dir = tempfile::tempdir().unwrap();
    let path = drift_store(dir.path());
    let r = StoreReader::open(&path).unwrap();
    let c = campaign_report(&r).unwrap();

    let steady = &c.phases[0];
    let d = steady.drift.as_ref().expect("a 10-minute phase is analysed");
    assert_eq!(d.bucket_s, 5.0);
    let rss = d.browser_rss.as_ref().unwrap();
    assert_eq!(rss.direction, "no drift", "{rss:?}");
    assert!(rss.ci_low <= 0.0 && 0.0 <= rss.ci_high, "{rss:?}");
    assert_eq!(d.in_page_p95.as_ref().unwrap().direction, "no drift", "{d:?}");
    assert_eq!(d.failure_rate.as_ref().unwrap().direction, "no drift");
    assert!(steady.criteria.passed, "{:?}", steady.criteria);

    let leak = &c.phases[1];
    let d = leak.drift.as_ref().unwrap();
    let rss = d.browser_rss.as_ref().unwrap();
    assert_eq!((rss.direction.as_str(), d.browser_sessions), ("rising", 3), "{rss:?}");
    assert!(rss.ci_low <= 180.0 && 180.0 <= rss.ci_high + 1.0 && rss.ci_low > 150.0, "recycles are not drops: {rss:?}");
    let p95 = d.in_page_p95.as_ref().unwrap();
    assert_eq!(p95.direction, "rising");
    // +20 ms over 10 min of a median near 30 ms: about 400 %/h
    assert!(p95.slope > 300.0 && p95.slope < 500.0, "{p95:?}");
    assert!(!leak.criteria.passed);
    let f = &leak.criteria.failures;
    assert!(
        f.iter().any(|f| f.starts_with("browser memory grew +")
            && f.contains("MiB/h (95 % CI +")
            && f.ends_with("above the limit of 50 MiB/h")),
        "{f:?}"
    );
    assert!(f.iter().any(|f| f.starts_with("in-page p95 drifted +") && f.ends_with("above the limit of 100 %/h")), "{f:?}");

    // too short to judge: said, not failed
    let short = &c.phases[2];
    assert!(short.drift.is_none() && short.criteria.passed);
    assert_eq!(short.criteria.not_judged, ["max_rss_growth_mb_per_h not judged: the phase ran 1m, shorter than drift_min_phase 2m"]);
    // the campaign as a whole
    assert!(c.drift.as_ref().unwrap().browser_rss.is_some());
    // the runner's verdict agrees with the report's
    assert_eq!(campaign_verdict(&r).unwrap(), c.verdict);

    let text = render_summary(&c);
    assert!(text.contains("Drift and leaks"), "{text}");
    assert!(text.contains("    - browser memory no drift ("), "{text}");
    assert!(text.contains(&format!("    - browser memory {} over 3 session(s)", rss.describe())), "{text}");
    let md = render_summary_md(&c);
    assert!(md.contains("### Drift and leaks") && md.contains("browser memory +"), "{md}");
    let junit = render_junit(&c).unwrap();
    assert!(junit.contains("phase 2 leak: browser memory growth &lt;= 50 MiB/h"), "{junit}");
    assert!(junit.contains("type=\"not_judged\""), "{junit}");
    // JSON round trip and a second build are the same
    let json = serde_json::to_string_pretty(&c).unwrap();
    assert_eq!(serde_json::from_str::<CampaignReport>(&json).unwrap(), c);
    assert_eq!(campaign_report(&StoreReader::open(&path).unwrap()).unwrap(), c);
}
