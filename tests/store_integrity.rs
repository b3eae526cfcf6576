//! The store's integrity guarantees, against real SQLite files written through the `Store` API:
//! a damaged byte never yields a report with different numbers (it is an error naming the table
//! and rows, or the report is the original one).

use serde_json::json;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};
use stressctl::metrics::{encode_histogram, new_histogram, record_latency};
use stressctl::report::{campaign_report, CampaignReport};
use stressctl::store::{CampaignRecord, EventRow, PhaseStart, SampleRow, Store, StoreReader, WindowRow};

const T0: u64 = 1_750_000_000;
/// Byte-flip trials (each a copy of the store with one damaged byte, then a report build).
const TRIALS: usize = 300;

fn at_ms(ms: u64) -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_millis(T0 * 1000 + ms)
}

/// A finished campaign of three phases with many windows of several task kinds, samples, task info
/// and events of every kind the report reads. Returns the store file.
fn finished_store(dir: &Path) -> PathBuf {
    let path = dir.join("runs/c1/store.sqlite");
    let rec = CampaignRecord {
        id: "c1".into(),
        profile: "quick".into(),
        config_source: "<profile quick>".into(),
        config_text: stressctl::config::QUICK_PROFILE.into(),
        started_at: at_ms(0),
        output_dir: dir.join("out"),
    };
    let store = Store::create(&path, &rec, &dir.join("out/events.jsonl")).expect("create store");
    let kinds: [&'static str; 3] = ["webgpu", "synthetic", "page"];
    let mut rng = fastrand::Rng::with_seed(7);
    for phase in 0..3u32 {
        let start = u64::from(phase) * 100_000;
        store.phase_started(PhaseStart {
            idx: phase,
            name: ["warmup", "steady", "stress"][phase as usize].into(),
            stress_level: ["low", "moderate", "high"][phase as usize],
            task_kind: kinds[phase as usize],
            sessions_planned: 4,
            sessions: 4,
            duration_planned: Duration::from_secs(60),
            min_success_rate: 0.9,
            max_p95_ms: 3000,
            notes: vec![format!("note of phase {phase}")],
            started_at: at_ms(start),
        });
        store.task_info(phase, kinds[phase as usize], "adapter", json!({"vendor": "google", "architecture": "swiftshader"}));
        for w in 0..16u64 {
            let mut h = new_histogram();
            let n = 20 + rng.u64(0..40);
            for _ in 0..n {
                record_latency(&mut h, Duration::from_micros(500 + rng.u64(0..3_000_000)));
            }
            let failed = rng.u64(0..4).min(n);
            let errors = if failed > 0 { json!({"timeout": failed}) } else { json!({}) };
            store.window(WindowRow {
                phase_idx: phase,
                worker: format!("w{}", w % 4),
                slot: (w % 4) as u32,
                task_kind: kinds[(w % 3) as usize],
                start_ms: (T0 * 1000 + start + w * 1000) as i64,
                end_ms: (T0 * 1000 + start + w * 1000 + 1000) as i64,
                attempted: n,
                succeeded: n - failed,
                failed,
                verified: n - failed,
                errors: errors.to_string(),
                hist: encode_histogram(&h),
            });
        }
        for s in 0..30u64 {
            store.sample(SampleRow {
                at: at_ms(start + s * 2000),
                phase_idx: Some(phase),
                cpu: 30.0 + rng.f64() * 60.0,
                memory: 40.0 + rng.f64() * 10.0,
                disk: 12.5,
                tree_rss_bytes: 300 * 1024 * 1024 + rng.u64(0..100 * 1024 * 1024),
                tree_cpu: 100.0 + rng.f64() * 80.0,
                tree_processes: 6,
                health: 60.0 + rng.f64() * 40.0,
                violations: if s % 7 == 0 { "[\"cpu\"]".into() } else { "[]".into() },
            });
        }
        let ev = |ms: u64, kind: &'static str, message: String, data: serde_json::Value| EventRow {
            at: at_ms(start + ms),
            kind,
            corr: format!("c1/{phase}/w1/{ms}"),
            phase_idx: Some(phase),
            message,
            data,
        };
        for i in 0..25u64 {
            let class = ["timeout", "crash", "gpu_error", "script_error"][(i % 4) as usize];
            store.event(ev(i * 10, "op_failed", format!("op {i} failed"), json!({"class": class, "message": format!("failure kind {}", i % 6)})));
        }
        for i in 0..6u64 {
            store.event(ev(300 + i, "guardian_violation", "cpu high".into(), json!({"metric": "cpu", "value": 91.5 + i as f64, "threshold": 90.0})));
        }
        for i in 0..8u64 {
            let strategy = ["retry", "new_session"][(i % 2) as usize];
            let outcome = if i % 3 == 0 { "failed" } else { "succeeded" };
            let data = json!({"class": "timeout", "strategy": strategy, "level": 1 + i % 2, "outcome": outcome, "time_to_recover_ms": 100 * i});
            store.event(ev(400 + i, "recovery_attempted", "recovery".into(), data));
        }
        for (i, (from, to)) in [("closed", "open"), ("open", "half_open"), ("half_open", "closed")].iter().enumerate() {
            store.event(ev(
                500 + i as u64,
                "breaker_transition",
                "breaker".into(),
                json!({"key": format!("worker:w{phase}"), "from": from, "to": to, "reason": "threshold"}),
            ));
        }
        store.phase_progress(phase, Duration::from_secs(60));
        store.phase_ended(phase, "completed", Duration::from_secs(60));
    }
    let campaign_ev = |ms: u64, kind: &'static str, message: &str, data: serde_json::Value| EventRow {
        at: at_ms(ms),
        kind,
        corr: "c1".into(),
        phase_idx: None,
        message: message.into(),
        data,
    };
    store.event(campaign_ev(250_000, "campaign_interrupted", "SIGKILL", json!({})));
    store.event(campaign_ev(250_001, "campaign_resumed", "resumed", json!({})));
    store.event(campaign_ev(300_000, "breaker_snapshot", "final", json!({"worker:w1": {"state": "closed", "calls": 120}})));
    store.event(campaign_ev(300_001, "emergency_stop", "cpu 97 % over 95 %", json!({"cause": "guardian", "reason": "cpu"})));
    store.campaign_ended("failed", Some("guardian".into()));
    store.close().expect("close store");
    path
}

/// Offsets worth damaging: a random byte of the record area (cell content) of a random b-tree page,
/// or (one trial in four) any byte of the file.
fn pick_offset(bytes: &[u8], rng: &mut fastrand::Rng) -> usize {
    let page_size = match u16::from_be_bytes([bytes[16], bytes[17]]) {
        1 => 65536,
        n => n as usize,
    };
    let pages = bytes.len() / page_size;
    if rng.u8(0..4) != 0 {
        for _ in 0..100 {
            let page = rng.usize(1..pages);
            let base = page * page_size;
            let kind = bytes[base];
            if matches!(kind, 0x02 | 0x05 | 0x0a | 0x0d) {
                let content = match u16::from_be_bytes([bytes[base + 5], bytes[base + 6]]) {
                    0 => 65536,
                    n => n as usize,
                };
                if content < page_size {
                    return base + rng.usize(content..page_size);
                }
            }
        }
    }
    rng.usize(100..bytes.len())
}

fn build(path: &Path) -> Result<CampaignReport, String> {
    let r = StoreReader::open(path).map_err(|e| e.to_string())?;
    campaign_report(&r).map_err(|e| e.to_string())
}

#[test]
fn byte_flips_in_a_finished_store_never_give_a_different_report() {
    let dir = tempfile::tempdir().unwrap();
    let path = finished_store(dir.path());
    assert!(!PathBuf::from(format!("{}-wal", path.display())).exists(), "a closed store is one file");
    let original = build(&path).expect("the intact store reports");
    assert!(original.totals.ops_attempted > 1000);
    assert!(original.phases.iter().all(|p| p.top_errors.len() == 5 && !p.violations.is_empty()));
    let clean = std::fs::read(&path).unwrap();
    let trial_path = dir.path().join("trial.sqlite");
    let mut rng = fastrand::Rng::with_seed(0x5eed);
    let (mut errors, mut same, mut wrong, mut multi_line) = (0, 0, Vec::new(), Vec::new());
    for trial in 0..TRIALS {
        let mut bytes = clean.clone();
        let off = pick_offset(&bytes, &mut rng);
        bytes[off] ^= rng.u8(1..=255);
        std::fs::write(&trial_path, &bytes).unwrap();
        match build(&trial_path) {
            Err(e) => {
                if e.contains('\n') {
                    multi_line.push(e);
                }
                errors += 1;
            }
            Ok(r) if r == original => same += 1,
            Ok(_) => wrong.push((trial, off)),
        }
    }
    eprintln!("{TRIALS} trials: {errors} errors, {same} identical reports, {} wrong reports", wrong.len());
    assert!(wrong.is_empty(), "reports with different numbers built without an error (trial, offset): {wrong:?}");
    assert!(multi_line.is_empty(), "every error is one line: {multi_line:?}");
    assert!(errors > TRIALS / 3, "most flips in record data must be detected ({errors} were)");
}

