//! Report tests against real stores written with [`Store`].

use super::compare::compare_with;
use super::criteria::evaluate_criteria;
use super::numbers::{fmt_ms, pct_counts, pct_frac};
use super::*;
use crate::breaker::BreakerState;
use crate::metrics::{encode_histogram, new_histogram, record_latency};
use crate::store::{CampaignRecord, EventRow, HostFigures, PhaseStart, SampleRow, Store, WindowRow};
use serde_json::json;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, SystemTime};

const T0: u64 = 1_750_000_000;

fn at(s: u64) -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(T0 + s)
}

fn hist(latencies_ms: impl IntoIterator<Item = u64>) -> Vec<u8> {
    let mut h = new_histogram();
    for ms in latencies_ms {
        record_latency(&mut h, Duration::from_millis(ms));
    }
    encode_histogram(&h)
}

#[allow(clippy::too_many_arguments)]
fn window(phase: u32, kind: &'static str, att: u64, ok: u64, verified: u64, errors: serde_json::Value, lat: Vec<u64>) -> WindowRow {
    WindowRow {
        phase_idx: phase,
        worker: "w1".into(),
        slot: 0,
        task_kind: kind,
        start_ms: 0,
        end_ms: 1000,
        attempted: att,
        succeeded: ok,
        failed: att - ok,
        verified,
        errors: errors.to_string(),
        hist_in_page: hist(Vec::new()),
        hist: hist(lat),
        console: 0,
    }
}

fn event(s: u64, kind: &'static str, phase: Option<u32>, message: &str, data: serde_json::Value) -> EventRow {
    EventRow {
        at: at(s),
        kind,
        corr: format!("c/{}/w1/{s}", phase.map(|p| p.to_string()).unwrap_or_default()),
        phase_idx: phase,
        message: message.into(),
        data,
    }
}

/// A registry snapshot with one worker breaker `w1` in `state`.
fn snapshot(state: BreakerState) -> crate::breaker::RegistrySnapshot {
    let reg = crate::breaker::BreakerRegistry::new(Default::default(), Default::default(), Default::default());
    let t0 = std::time::Instant::now();
    let _ = reg.gate("w1", "chromium", "webgpu");
    let mut s = reg.snapshot(t0, (t0, std::time::SystemTime::UNIX_EPOCH));
    if let Some(m) = s.workers.get_mut("w1") {
        m.state = state;
    }
    s
}

fn snapshot_json(state: BreakerState) -> serde_json::Value {
    serde_json::to_value(snapshot(state)).unwrap()
}

fn sample(s: u64, phase: u32, cpu: f64, violations: &str) -> SampleRow {
    SampleRow {
        at: at(s),
        phase_idx: Some(phase),
        cpu,
        memory: 40.0,
        disk: 10.0,
        tree_rss_bytes: 512 * 1024 * 1024,
        tree_cpu: 150.0,
        tree_processes: 6,
        health: 80.0,
        violations: violations.into(),
        host: HostFigures {
            cpu_cap: Some(80.0),
            campaign_cpu: cpu - 10.0,
            host_cpu: 10.0,
            host_wait: Some(5.0),
            psi_cpu: Some(20.0),
            psi_memory: Some(1.0),
            psi_io: Some(2.0),
        },
        browsers: Vec::new(),
    }
}

struct Fixture {
    _dir: tempfile::TempDir,
    path: PathBuf,
    out: PathBuf,
}

impl Fixture {
    fn reader(&self) -> StoreReader {
        StoreReader::open(&self.path).unwrap()
    }
}

/// Two phases: `warmup` (1 session, 100 ops, 1 timeout, passes) and `stress` (4 sessions, 100 webgpu
/// ops with 20 failures + 10 synthetic ops, p95 over 5 s, fails both criteria).
fn build_store(outcome: Option<&str>) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("runs/c1/store.sqlite");
    let out = dir.path().join("results");
    let rec = CampaignRecord::quick_for_test("c1", at(0), &out);
    let store = Store::create(&path, &rec, &dir.path().join("runs/c1/events.jsonl")).unwrap();
    let phase = |idx: u32, name: &str, level: &'static str, sessions: u32, min: f64, p95: u64, start: u64| PhaseStart {
        idx,
        name: name.into(),
        stress_level: level,
        task_kind: "webgpu",
        sessions_planned: sessions,
        sessions,
        duration_planned: Duration::from_secs(10),
        min_success_rate: min,
        max_p95_ms: p95,
        notes: if idx == 1 { vec!["scaled down".into()] } else { vec![] },
        started_at: at(start),
    };

    // phase 0: latencies 10..=1000 ms, 99 of 100 succeed
    store.phase_started(phase(0, "warmup", "low", 1, 0.95, 2000, 0));
    store.window(window(0, "webgpu", 60, 60, 60, json!({}), (1..=60).map(|i| i * 10).collect()));
    store.window(window(0, "webgpu", 40, 39, 39, json!({"timeout": 1}), (61..=100).map(|i| i * 10).collect()));
    store.task_info(0, "webgpu", "adapter", json!({"vendor": "google", "architecture": "swiftshader"}));
    store.event(event(5, "op_failed", Some(0), "op failed", json!({"class": "timeout", "message": "op timed out after 20s"})));
    store.sample(sample(1, 0, 50.0, "[]"));
    store.sample(sample(2, 0, 60.0, "[]"));
    store.sample(sample(3, 0, 70.0, "[]"));
    store.phase_progress(0, Duration::from_millis(10_000));
    store.phase_ended(0, "completed", Duration::from_millis(10_000));

    // phase 1: 100 webgpu ops (80 ok) with latencies up to 6.2 s, 10 synthetic ops
    store.phase_started(phase(1, "stress", "high", 4, 0.85, 5000, 20));
    store.window(window(1, "webgpu", 100, 80, 78, json!({"timeout": 15, "crash": 5}), (1..=100).map(|i| i * 62).collect()));
    store.window(WindowRow { console: 3, ..window(1, "synthetic", 10, 10, 0, json!({}), vec![1; 10]) });
    for i in 0..15 {
        store.event(event(21 + i, "op_failed", Some(1), "op failed", json!({"class": "timeout", "message": "op timed out after 20s"})));
    }
    for i in 0..5 {
        let console = if i == 0 { json!(["webgpu device lost: unknown: GPU process crashed"]) } else { json!([]) };
        store.event(event(
            40 + i,
            "op_failed",
            Some(1),
            "op failed",
            json!({"class": "crash", "message": "session deleted because of page crash", "console": console}),
        ));
    }
    for i in 0..2 {
        let data = json!({"worker": "w1", "session": "w1-s1", "count": 1, "entries": ["console.error: boom"]});
        store.event(event(55 + i, "page_console", Some(1), "page console", data));
    }
    let long = "x".repeat(300);
    store.event(event(46, "op_failed", Some(1), "op failed", json!({"class": "script_error", "message": long})));
    for i in 0..2 {
        store.event(event(
            47 + i,
            "op_failed",
            Some(1),
            "op failed",
            json!({"class": "api_unsupported", "task_kind": "webnn", "message": "navigator.ml is missing"}),
        ));
    }
    // no data.message: the event message is used
    store.event(event(49, "op_failed", Some(1), "bare message", json!({"class": "gpu_error"})));
    store.event(event(50, "guardian_violation", Some(1), "cpu high", json!({"metric": "cpu", "value": 97.5, "threshold": 95.0})));
    store.sample(sample(21, 1, 97.5, "[\"cpu\"]"));
    store.sample(sample(22, 1, 80.0, "[]"));
    store.phase_progress(1, Duration::from_millis(20_000));
    store.phase_ended(1, "completed", Duration::from_millis(20_000));

    // campaign-level events
    let tr = |s, from: &str, to: &str, reason: &str| {
        event(s, "breaker_transition", Some(1), "breaker", json!({"key": "worker:w1", "from": from, "to": to, "reason": reason}))
    };
    store.event(tr(30, "closed", "open", "5 consecutive failures"));
    store.event(tr(31, "open", "half_open", "recovery timeout elapsed"));
    store.event(event(32, "breaker_snapshot", None, "snapshot", snapshot_json(BreakerState::Open)));
    store.event(event(33, "breaker_snapshot", None, "snapshot", snapshot_json(BreakerState::HalfOpen)));
    let rec_ev = |s, class: &str, strategy: &str, level: u8, ok: bool, ttr: Option<u64>| {
        let mut d = json!({"class": class, "strategy": strategy, "level": level, "outcome": if ok { "succeeded" } else { "failed" }});
        if let Some(t) = ttr {
            d["time_to_recover_ms"] = json!(t);
        }
        event(s, "recovery_attempted", Some(1), "recovery", d)
    };
    store.event(rec_ev(34, "timeout", "retry", 1, true, Some(100)));
    store.event(rec_ev(35, "timeout", "retry", 1, true, Some(300)));
    store.event(rec_ev(36, "timeout", "retry", 1, false, None));
    store.event(rec_ev(37, "crash", "new_session", 2, true, Some(2000)));
    store.event(event(60, "campaign_interrupted", None, "SIGKILL", json!({"phase": 1, "elapsed_ms": 0})));
    store.event(event(61, "campaign_resumed", None, "resumed from phase 1", json!({"phase": 1})));
    if let Some(o) = outcome {
        store.campaign_ended(o, Some("1 of 2 phases failed".into()));
    }
    store.close().unwrap();
    Fixture { _dir: dir, path, out }
}

#[test]
fn phase_counts_sum_to_totals_and_percentiles_are_ordered() {
    let f = build_store(Some("failed"));
    let c = campaign_report(&f.reader()).unwrap();
    assert_eq!(c.phases.len(), 2);
    assert_eq!(c.outcome, "failed");
    assert_eq!(c.stop_reason.as_deref(), Some("1 of 2 phases failed"));
    let sum = |g: fn(&PhaseReport) -> u64| c.phases.iter().map(g).sum::<u64>();
    assert_eq!(sum(|p| p.ops_attempted), c.totals.ops_attempted);
    assert_eq!(sum(|p| p.ops_succeeded), c.totals.ops_succeeded);
    assert_eq!(sum(|p| p.ops_failed), c.totals.ops_failed);
    assert_eq!((c.totals.ops_attempted, c.totals.ops_succeeded, c.totals.ops_failed), (210, 189, 21));
    assert_eq!(c.totals.success_rate, 0.9);
    assert_eq!(c.totals.duration_s, 30.0);
    assert_eq!(c.totals.throughput_ops_per_s, 7.0);
    for p in &c.phases {
        let l = &p.latency_ms;
        assert!(l.p50 > 0.0 && l.p50 <= l.p90 && l.p90 <= l.p95 && l.p95 <= l.p99 && l.p99 <= l.max, "{l:?}");
        let task_sum: u64 = p.tasks.values().map(|t| t.ops_attempted).sum();
        assert_eq!(task_sum, p.ops_attempted);
    }
    let (w, s) = (&c.phases[0], &c.phases[1]);
    assert_eq!((w.index, w.name.as_str(), w.ops_attempted, w.ops_succeeded, w.duration_s), (0, "warmup", 100, 99, 10.0));
    assert_eq!(w.throughput_ops_per_s, 10.0);
    assert!((w.latency_ms.max - 1000.0).abs() < 1.0);
    assert_eq!(s.ops_attempted, 110);
    assert!(s.tasks["synthetic"].synthetic && !s.tasks["webgpu"].synthetic);
    assert_eq!(s.tasks["webgpu"].verified, 78);
    assert_eq!(w.tasks["webgpu"].info["adapter"]["vendor"], "google");
    assert_eq!(s.notes, vec!["scaled down".to_string()]);
    assert_eq!(w.resources.samples, 3);
    assert_eq!(w.resources.cpu_avg, 60.0);
    assert_eq!(w.resources.cpu_max, 70.0);
    assert_eq!(w.resources.tree_rss_mb_max, 512.0);
    assert_eq!(s.resources.violating_samples, 1);
    // the host's headroom, per phase, with the thresholds that judge it
    let h = w.resources.host.as_ref().expect("host figures are aggregated");
    assert_eq!((h.confined_samples, h.cpu_cap_percent), (3, Some(80.0)));
    assert_eq!((h.campaign_cpu_avg, h.campaign_cpu_max, h.host_cpu_max), (50.0, 60.0, 10.0));
    assert_eq!((h.host_wait_max, h.host_demand_max, h.stall_max, h.cpu_pressure_max), (Some(5.0), 15.0, Some(2.0), Some(20.0)));
    let cpu_limit = crate::config::Config::parse(crate::config::QUICK_PROFILE, "quick").unwrap().phase_safety(0).thresholds().cpu_percent;
    assert_eq!((h.cpu_limit, h.stall_limit), (Some(cpu_limit), Some(crate::guardian::PRESSURE_STALL_PERCENT)));
    let json = serde_json::to_value(&c).unwrap();
    assert_eq!(json["phases"][0]["resources"]["host"]["host_demand_max"], 15.0);
    let text = crate::report::render_summary(&c);
    let line = text.lines().find(|l| l.trim_start().starts_with("1 ") && l.contains("15.0 (")).unwrap_or_else(|| panic!("{text}"));
    assert!(text.contains("host headroom") && line.contains("85.0") && line.contains("(80.0)") && line.contains("2.0 (60.0)"), "{text}");
    assert_eq!(
        s.violations,
        vec![ViolationRecord { at: s.violations[0].at.clone(), metric: "cpu".into(), value: Some(97.5), threshold: Some(95.0) }]
    );
    assert!(w.violations.is_empty());
    // phase_report alone gives the same phase
    assert_eq!(&phase_report(&f.reader(), 1).unwrap(), s);
    assert!(phase_report(&f.reader(), 7).is_err());
}

#[test]
fn phase_criteria_from_the_store() {
    let f = build_store(Some("failed"));
    let c = campaign_report(&f.reader()).unwrap();
    let (w, s) = (&c.phases[0], &c.phases[1]);
    assert!(w.criteria.passed, "{:?}", w.criteria);
    assert!(w.criteria.failures.is_empty());
    assert!(!s.criteria.passed);
    assert_eq!(s.criteria.failures.len(), 2, "{:?}", s.criteria.failures);
    assert_eq!(s.criteria.failures[0], "success rate 81.8% below 85.0% (20 of 110 ops failed)");
    assert!(s.latency_ms.p95 >= 5000.0, "{:?}", s.latency_ms);
    assert!(s.criteria.failures[1].starts_with(&format!("p95 {} ", fmt_ms(s.latency_ms.p95))), "{:?}", s.criteria.failures);
    assert!(s.criteria.failures[1].ends_with("not below the 5 s limit"));
    assert_eq!((s.criteria.min_success_rate, s.criteria.max_p95_ms), (0.85, 5000));
}

#[test]
fn criteria_edges() {
    // success rate exactly at the minimum passes, one op less fails
    assert!(evaluate_criteria(100, 90, 0, (10.0, "round_trip"), 0.90, 2000).passed);
    let c = evaluate_criteria(100, 89, 0, (10.0, "round_trip"), 0.90, 2000);
    assert!(!c.passed);
    assert_eq!(c.failures, vec!["success rate 89.0% below 90.0% (11 of 100 ops failed)".to_string()]);
    // 99.95 % against 99.96 %: shown floored, never as a rounded-up pass
    let c = evaluate_criteria(10_000, 9_995, 0, (10.0, "round_trip"), 0.9996, 2000);
    assert!(!c.passed);
    assert_eq!(c.failures[0], "success rate 99.9% below 99.96% (5 of 10000 ops failed)");
    // p95 must be strictly below the limit
    assert!(evaluate_criteria(10, 10, 0, (1999.999, "round_trip"), 0.9, 2000).passed);
    let c = evaluate_criteria(10, 10, 0, (2000.0, "round_trip"), 0.9, 2000);
    assert!(!c.passed);
    assert_eq!(c.failures, vec!["p95 2 s not below the 2 s limit".to_string()]);
    // no ops never passes, even with a 0 % minimum
    let c = evaluate_criteria(0, 0, 0, (0.0, "round_trip"), 0.0, 2000);
    assert!(!c.passed);
    assert_eq!(c.failures, vec!["no ops were attempted".to_string()]);
    // every op unsupported: neither passed nor failed
    let c = evaluate_criteria(7, 0, 7, (0.0, "round_trip"), 0.0, 2000);
    assert!(!c.passed && c.unsupported && c.verdict() == "unsupported", "{c:?}");
    // some unsupported, some failed another way: an ordinary failure
    let c = evaluate_criteria(7, 0, 6, (0.0, "round_trip"), 0.9, 2000);
    assert!(!c.unsupported && c.verdict() == "failed", "{c:?}");
}

#[test]
fn browser_console_entries_are_counted_per_phase_with_their_texts() {
    let f = build_store(Some("failed"));
    let c = campaign_report(&f.reader()).unwrap();
    assert_eq!(c.phases[0].browser_console, None, "nothing logged in phase 0");
    let b = c.phases[1].browser_console.as_ref().unwrap();
    assert_eq!(b.entries, 3, "the count is the windows' (exact), not the capped events'");
    assert_eq!(
        b.top,
        vec![
            ConsoleTop { text: "console.error: boom".into(), count: 2, on_failed_ops: 0 },
            ConsoleTop { text: "webgpu device lost: unknown: GPU process crashed".into(), count: 1, on_failed_ops: 1 },
        ]
    );
    let summary = render_summary(&c);
    assert!(summary.contains("Browser console") && summary.contains("phase 2 stress: 3 entries"), "{summary}");
    assert!(summary.contains("1x, 1 on failed ops: webgpu device lost: unknown: GPU process crashed"), "{summary}");
}

#[test]
fn errors_by_class_and_top_errors() {
    let f = build_store(Some("failed"));
    let c = campaign_report(&f.reader()).unwrap();
    let (w, s) = (&c.phases[0], &c.phases[1]);
    assert_eq!(w.errors_by_class, BTreeMap::from([("timeout".to_string(), 1)]));
    assert_eq!(s.errors_by_class, BTreeMap::from([("crash".to_string(), 5), ("timeout".to_string(), 15)]));
    let top: Vec<(&str, &str, u64)> = s.top_errors.iter().map(|e| (e.class.as_str(), e.message.as_str(), e.count)).collect();
    assert_eq!(top.len(), TOP_ERRORS);
    assert_eq!(top[0], ("timeout", "op timed out after 20s", 15));
    assert_eq!(top[1], ("crash", "session deleted because of page crash", 5));
    assert_eq!(top[2], ("api_unsupported", "navigator.ml is missing", 2));
    // ties (count 1) by message text: "bare message" < "xxx…"
    assert_eq!(top[3], ("gpu_error", "bare message", 1));
    assert_eq!(top[4].0, "script_error");
    assert_eq!(top[4].1.chars().count(), MAX_MESSAGE_CHARS);
    assert_eq!(w.top_errors, vec![TopError { class: "timeout".into(), message: "op timed out after 20s".into(), count: 1 }]);
    // unsupported: deduplicated, with the task kind from the event
    assert_eq!(
        c.unsupported,
        vec![Unsupported {
            phase: "stress".into(),
            phase_index: 1,
            task_kind: "webnn".into(),
            browser: None,
            message: "navigator.ml is missing".into()
        }]
    );
}

#[test]
fn recoveries_are_aggregated() {
    let f = build_store(Some("failed"));
    let r = campaign_report(&f.reader()).unwrap().recoveries;
    assert_eq!((r.attempts, r.succeeded), (4, 3));
    let t = &r.by_class["timeout"];
    assert_eq!((t.attempts, t.succeeded, t.success_rate, t.mean_time_to_recover_ms), (3, 2, 0.667, Some(200.0)));
    let cr = &r.by_class["crash"];
    assert_eq!((cr.attempts, cr.succeeded, cr.success_rate, cr.mean_time_to_recover_ms), (1, 1, 1.0, Some(2000.0)));
    assert_eq!(
        r.by_strategy["retry"],
        RecoveryStats { attempts: 3, succeeded: 2, success_rate: 0.667, mean_time_to_recover_ms: Some(200.0) }
    );
    assert_eq!(r.by_strategy["new_session"].mean_time_to_recover_ms, Some(2000.0));
    assert_eq!(r.by_level["1"].attempts, 3);
    assert_eq!(r.by_level["2"].attempts, 1);
    assert_eq!(r.by_class.len(), 2);
}

#[test]
fn breakers_guardian_and_interruptions() {
    let f = build_store(Some("failed"));
    let c = campaign_report(&f.reader()).unwrap();
    let b = &c.breakers;
    assert_eq!(b.transitions.len(), 2);
    let t0 = &b.transitions[0];
    assert_eq!(
        (t0.key.as_str(), t0.from.as_str(), t0.to.as_str(), t0.reason.as_str()),
        ("worker:w1", "closed", "open", "5 consecutive failures")
    );
    assert_eq!(t0.corr, "c/1/w1/30");
    assert_eq!(b.transitions[1].to, "half_open");
    // the last snapshot wins
    assert_eq!(b.final_snapshot, Some(snapshot(BreakerState::HalfOpen)));
    let g = &c.guardian;
    assert_eq!((g.samples, g.violating_samples, g.violations), (5, 1, 1));
    assert!(g.emergency_stops.is_empty());
    let kinds: Vec<&str> = c.interruptions.iter().map(|i| i.kind.as_str()).collect();
    assert_eq!(kinds, vec!["campaign_interrupted", "campaign_resumed"]);
    assert_eq!(c.interruptions[0].message, "SIGKILL");
    // the JSON names the snapshot "final"
    let v = serde_json::to_value(&c).unwrap();
    assert_eq!(v["breakers"]["final"]["workers"]["w1"]["state"], "half_open");
}

#[test]
fn campaign_json_has_the_contract_fields() {
    let f = build_store(Some("failed"));
    let v = serde_json::to_value(campaign_report(&f.reader()).unwrap()).unwrap();
    for k in [
        "campaign_id",
        "profile",
        "started_at",
        "ended_at",
        "outcome",
        "stop_reason",
        "resumes",
        "config_source",
        "verdict",
        "totals",
        "phases",
        "breakers",
        "recoveries",
        "guardian",
        "interruptions",
        "unsupported",
    ] {
        assert!(v.get(k).is_some(), "missing {k}");
    }
    for k in ["passed", "phases_passed", "phases_total", "overall_success_rate", "reasons"] {
        assert!(v["verdict"].get(k).is_some(), "missing verdict.{k}");
    }
    for k in ["ops_attempted", "ops_succeeded", "ops_failed", "success_rate", "duration_s", "throughput_ops_per_s"] {
        assert!(v["totals"].get(k).is_some(), "missing totals.{k}");
    }
    let p = &v["phases"][1];
    for k in [
        "index",
        "name",
        "stress_level",
        "task_kind",
        "status",
        "started_at",
        "ended_at",
        "sessions",
        "sessions_planned",
        "duration_s",
        "duration_planned_s",
        "ops_attempted",
        "ops_succeeded",
        "ops_failed",
        "success_rate",
        "throughput_ops_per_s",
        "latency_ms",
        "criteria",
        "errors_by_class",
        "tasks",
        "notes",
        "resources",
        "violations",
        "top_errors",
    ] {
        assert!(p.get(k).is_some(), "missing phases[].{k}");
    }
    for k in ["mean", "p50", "p90", "p95", "p99", "max"] {
        assert!(p["latency_ms"].get(k).is_some(), "missing latency_ms.{k}");
    }
    for k in ["min_success_rate", "max_p95_ms", "passed", "failures"] {
        assert!(p["criteria"].get(k).is_some(), "missing criteria.{k}");
    }
    let t = &p["tasks"]["webgpu"];
    for k in ["ops_attempted", "ops_succeeded", "ops_failed", "verified", "latency_ms", "synthetic"] {
        assert!(t.get(k).is_some(), "missing tasks.webgpu.{k}");
    }
    assert_eq!(v["phases"][0]["tasks"]["webgpu"]["adapter"]["architecture"], "swiftshader");
    assert_eq!(p["tasks"]["synthetic"]["synthetic"], true);
    assert_eq!(v["recoveries"]["by_strategy"]["retry"]["attempts"], 3);
    assert_eq!(v["guardian"]["emergency_stops"], json!([]));
}

fn files(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap())
        .map(|e| (e.file_name().into_string().unwrap(), std::fs::read(e.path()).unwrap()))
        .collect()
}

#[test]
fn rebuilding_gives_byte_identical_files() {
    let f = build_store(Some("failed"));
    let c = campaign_report(&f.reader()).unwrap();
    // as the run does: each phase file at phase end, then the campaign files
    for i in 0..2 {
        write_phase_report(&f.out, &phase_report(&f.reader(), i).unwrap()).unwrap();
    }
    let after_phases = files(&f.out);
    write_campaign_reports(&f.out, &c).unwrap();
    let first = files(&f.out);
    let names: Vec<&str> = first.keys().map(String::as_str).collect();
    assert_eq!(
        names,
        vec![
            "campaign_report.json",
            "junit.xml",
            "phase_01_warmup.json",
            "phase_02_stress.json",
            "report.html",
            "summary.md",
            "summary.txt"
        ]
    );
    assert_eq!(after_phases["phase_02_stress.json"], first["phase_02_stress.json"]);
    for (name, bytes) in &first {
        assert_eq!(bytes.last(), Some(&b'\n'), "{name} ends with a newline");
    }

    // rebuild from a fresh reader into the same and into another directory
    let again = campaign_report(&f.reader()).unwrap();
    assert_eq!(again, c);
    write_campaign_reports(&f.out, &again).unwrap();
    assert_eq!(files(&f.out), first);
    let other = f._dir.path().join("rebuilt");
    write_campaign_reports(&other, &again).unwrap();
    assert_eq!(files(&other), first);

    // the JSON reads back into the same report, and re-serializes to the same bytes
    let back: CampaignReport = serde_json::from_slice(&first["campaign_report.json"]).unwrap();
    assert_eq!(back, c);
    let mut bytes = serde_json::to_vec_pretty(&back).unwrap();
    bytes.push(b'\n');
    assert_eq!(bytes, first["campaign_report.json"]);
    let phase: PhaseReport = serde_json::from_slice(&first["phase_02_stress.json"]).unwrap();
    assert_eq!(phase, c.phases[1]);
    // no temporary files left behind
    assert!(!files(&f.out).keys().any(|n| n.contains(".tmp")));
}

fn fake_phase(template: &PhaseReport, i: u32, passed: bool, attempted: u64, succeeded: u64) -> PhaseReport {
    let mut p = template.clone();
    p.index = i;
    p.name = format!("p{i}");
    p.criteria.passed = passed;
    p.ops_attempted = attempted;
    p.ops_succeeded = succeeded;
    p.ops_failed = attempted - succeeded;
    p
}

#[test]
fn verdict_edges() {
    let f = build_store(Some("failed"));
    let t = phase_report(&f.reader(), 0).unwrap();
    let run = |passing: u32, total: u32, att: u64, ok: u64| {
        let phases: Vec<PhaseReport> = (0..total).map(|i| fake_phase(&t, i, i < passing, att, ok)).collect();
        verdict(&phases, 0.70, 0.90)
    };
    // 7 of 10 phases (exactly 70 %) and exactly 90 % success: pass
    let v = run(7, 10, 100, 90);
    assert!(v.passed, "{v:?}");
    assert_eq!((v.phases_passed, v.phases_total, v.overall_success_rate), (7, 10, 0.9));
    assert_eq!(v.reasons[0], "7 of 10 phases passed (70.0%), meeting the required 70.0%");
    assert!(v.reasons.iter().any(|r| r == "overall success rate 90.0% (900 of 1000 ops), meeting the required 90.0%"), "{v:?}");
    // 6 of 10: fail on the phase ratio
    let v = run(6, 10, 100, 90);
    assert!(!v.passed);
    assert_eq!(v.reasons[0], "6 of 10 phases passed (60.0%), below the required 70.0%");
    assert_eq!(v.reasons[1], "failing phases: p6, p7, p8, p9");
    // 89.9 % overall: fail on the success rate, even with every phase passing
    let v = run(10, 10, 1000, 899);
    assert!(!v.passed);
    assert!(v.reasons.iter().any(|r| r.contains("89.9%") && r.contains("below the required 90.0%")), "{v:?}");
    // nothing ran
    let v = verdict(&[], 0.70, 0.90);
    assert!(!v.passed);
    assert_eq!(v.reasons, vec!["no phase ran".to_string(), "no ops were attempted".to_string()]);
    // the campaign's own verdict (quick profile: 70 % / 90 %): 1 of 2 phases
    let c = campaign_report(&f.reader()).unwrap();
    assert!(!c.verdict.passed);
    assert_eq!((c.verdict.phases_passed, c.verdict.phases_total), (1, 2));
    assert_eq!((c.verdict.required_phase_ratio, c.verdict.required_success_rate), (0.70, 0.90));
}

fn doubled_latencies(c: &CampaignReport) -> CampaignReport {
    let mut d = c.clone();
    d.campaign_id = "c2".into();
    for p in &mut d.phases {
        let l = &mut p.latency_ms;
        for v in [&mut l.mean, &mut l.p50, &mut l.p90, &mut l.p95, &mut l.p99, &mut l.max] {
            *v *= 2.0;
        }
    }
    d
}

#[test]
fn compare_flags_regressions() {
    let f = build_store(Some("failed"));
    let c = campaign_report(&f.reader()).unwrap();
    let tol = Tolerance::default();
    assert_eq!((tol.success_rate_points, tol.throughput_pct, tol.latency_pct), (2.0, 10.0, 10.0));

    let same = compare(&c, &c, &tol);
    assert!(!same.has_regressions(), "{:?}", same.regressions);
    assert_eq!(same.phases.len(), 2);
    assert!(same.unmatched.is_empty());
    assert_eq!(same.phases[0].p95.change_pct, Some(0.0));
    assert!(render_comparison(&same).contains("No regressions"));

    let slow = doubled_latencies(&c);
    let cmp = compare(&c, &slow, &tol);
    assert!(cmp.has_regressions());
    for phase in ["warmup", "stress"] {
        for pct in ["p50", "p95", "p99"] {
            assert!(cmp.regressions.iter().any(|r| r.starts_with(&format!("{phase}: {pct} "))), "{phase} {pct}: {:?}", cmp.regressions);
        }
    }
    assert_eq!(cmp.regressions.len(), 6, "{:?}", cmp.regressions);
    assert_eq!(cmp.phases[0].p50.change_pct, Some(100.0));
    let text = render_comparison(&cmp);
    assert!(text.contains("Regressions (6):") && text.contains("REGRESSED"), "{text}");

    // success rate and throughput, at the tolerance edges
    let mut worse = c.clone();
    worse.phases[0].ops_succeeded = 97; // 99 % -> 97 %: exactly 2 points, tolerated
    worse.phases[0].throughput_ops_per_s = 9.0; // -10 %: tolerated
    worse.phases[1].ops_succeeded = 87; // 81.8 % -> 79.1 %: flagged
    worse.phases[1].throughput_ops_per_s = 4.9; // 5.5 -> 4.9: -10.9 %, flagged
    let cmp = compare(&c, &worse, &tol);
    assert_eq!(cmp.regressions.len(), 2, "{:?}", cmp.regressions);
    assert!(cmp.regressions[0].starts_with("stress: success rate 81.8% -> 79.0%"), "{:?}", cmp.regressions);
    assert!(cmp.regressions[1].starts_with("stress: throughput 5.5 -> 4.9 ops/s"), "{:?}", cmp.regressions);

    // sub-millisecond latencies are noise; unmatched phases are listed
    let mut fast = c.clone();
    fast.phases.truncate(1);
    fast.phases[0].latency_ms.p50 = 0.2;
    let mut fast2 = fast.clone();
    fast2.phases[0].latency_ms.p50 = 0.8;
    let cmp = compare(&fast, &fast2, &tol);
    assert!(!cmp.has_regressions(), "{:?}", cmp.regressions);
    let cmp = compare(&c, &fast, &tol);
    assert_eq!(cmp.unmatched, vec!["only in base: stress".to_string()]);
    let cmp = compare(&fast, &c, &tol);
    assert_eq!(cmp.unmatched, vec!["only in new: stress".to_string()]);
}

#[test]
fn summary_is_decision_ready() {
    let f = build_store(Some("failed"));
    let c = campaign_report(&f.reader()).unwrap();
    let s = render_summary(&c);
    for needle in [
        "stressctl campaign c1",
        "Outcome:    FAILED: 1 of 2 phases failed",
        "Verdict: FAIL (1 of 2 phases passed)",
        "warmup",
        "stress",
        "What failed and why",
        "success rate 81.8% below 85.0%",
        "15x [timeout] op timed out after 20s",
        "vendor google, architecture swiftshader",
        "verified against the CPU reference: 177 of 179 successful ops",
        "worker:w1: closed -> open (5 consecutive failures)",
        "Recoveries",
        "Unsupported APIs",
        "navigator.ml is missing",
        "Interruptions",
        "Recommendations",
    ] {
        assert!(s.contains(needle), "summary lacks {needle:?}:\n{s}");
    }
    let rec = s.split("Recommendations\n").nth(1).unwrap();
    assert!(rec.lines().next().unwrap().starts_with("  - "), "{s}");
    // grounded: p95 of phase stress against its 5 s limit, pointing at the 1 session of warmup
    let p95 = fmt_ms(c.phases[1].latency_ms.p95);
    assert!(
        rec.contains(&format!("p95 in phase stress was {p95} against 5 s at 4 sessions: reduce sessions to ≤ 1 or raise max_p95")),
        "{rec}"
    );
    assert!(rec.contains("success rate fell below 85.0% from phase stress on (81.8% at 4 sessions)"), "{rec}");
    assert!(rec.contains("the host saturates at 4 sessions; keep sessions ≤ 1"), "{rec}");
    assert!(rec.contains("webnn is unsupported"), "{rec}");
    // the phase table has a row per phase with its result
    let table: Vec<&str> = s.lines().filter(|l| l.starts_with("  1  warmup") || l.starts_with("  2  stress")).take(2).collect();
    assert!(table[0].trim_end().ends_with("PASS") && table[1].trim_end().ends_with("FAIL"), "{table:?}");
    // deterministic
    assert_eq!(render_summary(&campaign_report(&f.reader()).unwrap()), s);
}

#[test]
fn summary_recommends_raising_sessions_when_nothing_failed() {
    let f = build_store(Some("passed"));
    let mut c = campaign_report(&f.reader()).unwrap();
    c.phases.truncate(1);
    c.phases[0].criteria.passed = true;
    c.phases[0].errors_by_class.clear();
    c.phases[0].ops_failed = 0;
    c.phases[0].ops_succeeded = c.phases[0].ops_attempted;
    c.totals.ops_failed = 0;
    c.unsupported.clear();
    c.breakers.transitions.clear();
    c.recoveries = Recoveries::default();
    c.guardian.violating_samples = 0;
    let rec = summary::recommendations(&c);
    assert_eq!(rec, vec!["no failures: the next campaign can raise sessions (highest this run: 1)".to_string()]);
}

#[test]
fn missing_outcome_is_interrupted() {
    let f = build_store(None);
    // a phase that never ended
    let store = Store::reopen(&f.path, &f._dir.path().join("runs/c1/events.jsonl")).unwrap();
    store.phase_started(PhaseStart {
        idx: 2,
        name: "high 2/ä".into(),
        stress_level: "high",
        task_kind: "webgpu",
        sessions_planned: 4,
        sessions: 3,
        duration_planned: Duration::from_secs(10),
        min_success_rate: 0.85,
        max_p95_ms: 5000,
        notes: vec![],
        started_at: at(70),
    });
    store.close().unwrap();
    let r = f.reader();
    assert_eq!(r.campaign().unwrap().outcome, None);
    let c = campaign_report(&r).unwrap();
    assert_eq!(c.outcome, "interrupted");
    assert_eq!(c.ended_at, None);
    assert_eq!(c.wall_time_s, None);
    assert_eq!(c.stop_reason, None);
    assert_eq!(c.phases[2].status, "interrupted");
    assert_eq!(phase_report(&r, 2).unwrap().status, "running");
    assert!(!c.phases[2].criteria.passed);
    assert_eq!(c.phases[2].criteria.failures, vec!["no ops were attempted".to_string()]);
    let s = render_summary(&c);
    assert!(s.contains("Outcome:    INTERRUPTED"), "{s}");
    assert!(s.contains("launch --resume"), "{s}");
    assert!(s.contains("3/4"), "{s}");
    write_campaign_reports(&f.out, &c).unwrap();
    assert!(f.out.join("phase_03_high_2__.json").exists());
}

#[test]
fn phase_file_names() {
    assert_eq!(phase_file_name(0, "warmup"), "phase_01_warmup.json");
    assert_eq!(phase_file_name(9, "high-2"), "phase_10_high-2.json");
    assert_eq!(phase_file_name(4, "a b/c.d"), "phase_05_a_b_c_d.json");
    assert_eq!(phase_file_name(99, ""), "phase_100_phase.json");
}

#[test]
fn number_formats() {
    assert_eq!(pct_counts(821, 1000), "82.1");
    assert_eq!(pct_counts(9995, 10000), "99.9");
    assert_eq!(pct_counts(5, 5), "100.0");
    assert_eq!(pct_counts(0, 0), "-");
    assert_eq!(pct_frac(0.9), "90.0");
    assert_eq!(pct_frac(0.8995), "89.95");
    assert_eq!(fmt_ms(850.26), "850.3 ms");
    assert_eq!(fmt_ms(6100.0), "6.1 s");
    assert_eq!(fmt_ms(5000.0), "5 s");
    assert_eq!(round3(-0.0001), 0.0);
    assert_eq!(round3(f64::NAN), 0.0);
    assert_eq!(round3(2.0 / 3.0), 0.667);
}

#[test]
fn empty_campaign_still_reports() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store.sqlite");
    let rec = CampaignRecord {
        id: "empty".into(),
        profile: "custom".into(),
        config_source: "broken.toml".into(),
        config_text: "this is not toml [".into(),
        started_at: at(0),
        output_dir: dir.path().join("out"),
    };
    let store = Store::create(&path, &rec, &dir.path().join("events.jsonl")).unwrap();
    store.campaign_ended("halted", None);
    store.close().unwrap();
    let c = campaign_report(&StoreReader::open(&path).unwrap()).unwrap();
    assert!(c.phases.is_empty());
    assert_eq!((c.totals.ops_attempted, c.totals.success_rate, c.totals.throughput_ops_per_s), (0, 0.0, 0.0));
    assert!(!c.verdict.passed);
    // default thresholds, said so
    assert_eq!((c.verdict.required_phase_ratio, c.verdict.required_success_rate), (0.70, 0.90));
    assert!(c.verdict.reasons.iter().any(|r| r.contains("default thresholds were applied")), "{:?}", c.verdict.reasons);
    assert_eq!(c.breakers, Breakers { final_snapshot: None, transitions: vec![], commands: vec![] });
    assert_eq!(c.recoveries, Recoveries::default());
    assert!(c.interruptions.is_empty() && c.unsupported.is_empty());
    let v = serde_json::to_value(&c).unwrap();
    assert_eq!(v["breakers"], json!({"final": null, "transitions": [], "commands": []}));
    assert_eq!(v["recoveries"], json!({"attempts": 0, "succeeded": 0, "by_class": {}, "by_strategy": {}, "by_level": {}}));
    let s = render_summary(&c);
    assert!(s.contains("Outcome:    HALTED") && s.contains("no phase was started"), "{s}");
    assert!(s.contains("no ops were recorded: check the setup"), "{s}");
    write_campaign_reports(&dir.path().join("out"), &c).unwrap();
}

#[test]
fn rebuild_reports_rewrites_every_file_including_events_jsonl() {
    let f = build_store(Some("failed"));
    // what the run leaves: the events it appended, the phase files, then the campaign files
    std::fs::create_dir_all(&f.out).unwrap();
    std::fs::copy(f._dir.path().join("runs/c1/events.jsonl"), f.out.join(EVENTS_FILE)).unwrap();
    for i in 0..2 {
        write_phase_report(&f.out, &phase_report(&f.reader(), i).unwrap()).unwrap();
    }
    write_campaign_reports(&f.out, &campaign_report(&f.reader()).unwrap()).unwrap();
    let written = files(&f.out);
    // 2 phase files, campaign_report.json, summary.txt, report.html, junit.xml, summary.md, events.jsonl
    assert_eq!(written.len(), 8, "{:?}", written.keys());
    // rebuilt in place and from scratch elsewhere: the same bytes
    rebuild_reports(&f.reader(), &f.out).unwrap();
    assert_eq!(files(&f.out), written);
    let fresh = f._dir.path().join("fresh");
    rebuild_reports(&f.reader(), &fresh).unwrap();
    assert_eq!(files(&fresh), written);
}

#[test]
fn a_task_whose_ops_mostly_passed_is_never_recommended_for_dropping() {
    let f = build_store(Some("passed"));
    let mut c = campaign_report(&f.reader()).unwrap();
    // one webgpu op of the warmup's 100 found the API unavailable (a fresh browser's first
    // requestAdapter), 99 passed
    c.unsupported = vec![Unsupported {
        phase: c.phases[0].name.clone(),
        phase_index: 0,
        task_kind: "webgpu".into(),
        browser: Some("chromium".into()),
        message: "navigator.gpu.requestAdapter() returned null 7 times over about 2 s".into(),
    }];
    c.phases[0].errors_by_class = [("api_unsupported".to_string(), 1u64)].into();
    let rec = summary::recommendations(&c).join("\n");
    assert!(!rec.contains("drop those phases"), "{rec}");
    assert!(rec.contains("webgpu: 1 of"), "{rec}");
    // a task that was unsupported for most of its ops: dropping it is the advice
    c.phases.retain(|p| p.task_kind == "webgpu");
    for p in &mut c.phases {
        p.ops_succeeded = 0;
        p.errors_by_class = [("api_unsupported".to_string(), p.ops_attempted)].into();
    }
    let rec = summary::recommendations(&c).join("\n");
    assert!(rec.contains("webgpu is unsupported by this browser") && rec.contains("drop those phases"), "{rec}");
}

/// A phase whose ops the page timed: `max_p95` judges the in-page latency (below the limit) even
/// though the round trip's p95 is over it, the report says so, and both latencies are there,
/// in-page below round trip.
#[test]
fn max_p95_judges_in_page_latency_when_the_task_measured_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store.sqlite");
    let rec = CampaignRecord::quick_for_test("c-ip", at(0), &dir.path().join("out"));
    let store = Store::create(&path, &rec, &dir.path().join("events.jsonl")).unwrap();
    store.phase_started(PhaseStart {
        idx: 0,
        name: "gpu".into(),
        stress_level: "low",
        task_kind: "webgpu",
        sessions_planned: 1,
        sessions: 1,
        duration_planned: Duration::from_secs(10),
        min_success_rate: 0.9,
        max_p95_ms: 100,
        notes: vec![],
        started_at: at(0),
    });
    let mut w = window(0, "webgpu", 100, 100, 100, json!({}), (1..=100).map(|i| i * 2).collect());
    w.hist_in_page = hist((1..=100).map(|i| i / 2 + 1));
    store.window(w);
    store.phase_ended(0, "completed", Duration::from_secs(10));
    store.close().unwrap();
    let c = campaign_report(&StoreReader::open(&path).unwrap()).unwrap();
    let p = &c.phases[0];
    let ip = p.in_page_latency_ms.as_ref().expect("in-page latency reported");
    assert!(p.latency_ms.p95 >= 100.0 && ip.p95 < 100.0, "{:?} {ip:?}", p.latency_ms);
    for (a, b) in [(ip.p50, p.latency_ms.p50), (ip.p95, p.latency_ms.p95), (ip.p99, p.latency_ms.p99), (ip.max, p.latency_ms.max)] {
        assert!(a <= b, "in_page {a} <= round_trip {b}");
    }
    assert!(p.criteria.passed, "{:?}", p.criteria);
    assert_eq!(p.criteria.p95_basis, "in_page");
    assert_eq!(p.tasks["webgpu"].in_page_latency_ms.as_ref(), Some(ip));
    let json = serde_json::to_value(p).unwrap();
    for k in ["p50", "p90", "p95", "p99", "max"] {
        assert!(json["in_page_latency_ms"][k].is_number() && json["latency_ms"][k].is_number(), "{k}: {json}");
    }
    let text = render_summary(&c);
    assert!(text.contains("latency per phase and task") && text.lines().any(|l| l.contains("in_page") && l.ends_with("max_p95")), "{text}");
}

/// The runner's verdict ([`campaign_verdict`], read without the events, samples and per-worker
/// windows) is the report's, whatever the store holds: failing phases before and after the outcome
/// is stored, a phase left running, a campaign with no phase, and a passing one with a phase whose
/// every op was unsupported.
#[test]
fn campaign_verdict_is_the_reports_verdict() {
    let check = |path: &Path| {
        let r = StoreReader::open(path).unwrap();
        let v = campaign_verdict(&r).unwrap();
        assert_eq!(v, campaign_report(&r).unwrap().verdict);
        v
    };
    for outcome in [None, Some("failed"), Some("halted"), Some("passed")] {
        let f = build_store(outcome);
        assert!(!check(&f.path).passed, "{outcome:?}");
    }

    let f = build_store(None);
    let store = Store::reopen(&f.path, &f._dir.path().join("runs/c1/events.jsonl")).unwrap();
    store.phase_started(PhaseStart {
        idx: 2,
        name: "left running".into(),
        stress_level: "high",
        task_kind: "webgpu",
        sessions_planned: 4,
        sessions: 4,
        duration_planned: Duration::from_secs(10),
        min_success_rate: 0.85,
        max_p95_ms: 5000,
        notes: vec![],
        started_at: at(70),
    });
    store.close().unwrap();
    let v = check(&f.path);
    assert!(!v.passed && !v.plan_completed, "{v:?}");

    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("empty.sqlite");
    let store =
        Store::create(&empty, &CampaignRecord::quick_for_test("c-e", at(0), &dir.path().join("out")), &dir.path().join("e.jsonl")).unwrap();
    store.close().unwrap();
    assert!(!check(&empty).passed);

    let path = dir.path().join("store.sqlite");
    let store =
        Store::create(&path, &CampaignRecord::quick_for_test("c-v", at(0), &dir.path().join("out")), &dir.path().join("events.jsonl"))
            .unwrap();
    for (idx, kind, ok, errors) in [(0, "webgpu", 100, json!({})), (1, "webnn", 0, json!({"api_unsupported": 100}))] {
        store.phase_started(PhaseStart {
            idx,
            name: format!("p{idx}"),
            stress_level: "low",
            task_kind: kind,
            sessions_planned: 1,
            sessions: 1,
            duration_planned: Duration::from_secs(10),
            min_success_rate: 0.9,
            max_p95_ms: 2000,
            notes: vec![],
            started_at: at(u64::from(idx) * 20),
        });
        store.window(window(idx, kind, 100, ok, ok, errors, vec![10; 100]));
        store.phase_ended(idx, "completed", Duration::from_secs(10));
    }
    store.close().unwrap();
    let v = check(&path);
    assert!(v.passed, "{v:?}");
    assert!(v.reasons.iter().any(|r| r == "unsupported (left out of the verdict): p1"), "{v:?}");
}

/// A phase that sent no op because its browser had refused the task earlier in the run (a
/// remembered `task_unsupported` event) is UNSUPPORTED with the browser's words, in the report and
/// the runner's verdict alike; a phase with no op and no such event still fails.
#[test]
fn a_phase_not_run_for_a_given_up_browser_is_unsupported_not_failed() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store.sqlite");
    let store =
        Store::create(&path, &CampaignRecord::quick_for_test("c-g", at(0), &dir.path().join("out")), &dir.path().join("events.jsonl"))
            .unwrap();
    let said = "NotSupportedError: WebNN is not supported on this platform";
    let given_up = |remembered: bool| json!({"task": "webnn", "browser": "chromium", "message": said, "answers": if remembered { 0 } else { 3 }, "remembered": remembered});
    for (idx, kind, ops) in [(0u32, "webgpu", 100u64), (1, "webnn", 3), (2, "webnn", 0), (3, "webnn", 0)] {
        store.phase_started(PhaseStart {
            idx,
            name: format!("p{idx}"),
            stress_level: "low",
            task_kind: kind,
            sessions_planned: 1,
            sessions: u32::from(ops > 0),
            duration_planned: Duration::from_secs(10),
            min_success_rate: 0.9,
            max_p95_ms: 2000,
            notes: vec![],
            started_at: at(u64::from(idx) * 20),
        });
        match idx {
            0 => store.window(window(0, kind, ops, ops, ops, json!({}), vec![10; 100])),
            1 => {
                store.window(window(1, kind, ops, 0, 0, json!({"api_unsupported": ops}), vec![10; 3]));
                store.event(event(21, "task_unsupported", Some(1), "given up", given_up(false)));
            }
            2 => store.event(event(41, "task_unsupported", Some(2), "not asked", given_up(true))),
            _ => {}
        }
        store.phase_ended(idx, "completed", Duration::from_secs(if ops > 0 { 10 } else { 0 }));
    }
    store.close().unwrap();
    let r = StoreReader::open(&path).unwrap();
    let c = campaign_report(&r).unwrap();
    assert_eq!(campaign_verdict(&r).unwrap(), c.verdict);
    let verdicts: Vec<&str> = c.phases.iter().map(|p| p.criteria.verdict()).collect();
    assert_eq!(verdicts, ["passed", "unsupported", "unsupported", "failed"]);
    assert_eq!(
        c.phases[2].criteria.failures,
        [format!("not run: chromium answered unsupported to the webnn task earlier in this run ({said})")]
    );
    assert_eq!(c.phases[3].criteria.failures, ["no ops were attempted"]);
    assert!(
        c.unsupported.iter().any(|u| u.phase == "p2" && u.browser.as_deref() == Some("chromium") && u.message == said),
        "{:?}",
        c.unsupported
    );
    assert!(c.verdict.reasons.iter().any(|r| r == "unsupported (left out of the verdict): p1, p2"), "{:?}", c.verdict);
}

/// The JUnit report judges as the report does: a phase's testcases fail exactly when its criteria
/// do (each with the report's own sentence), the campaign's exactly when the verdict fails, and an
/// unsupported phase is skipped; the counts on `<testsuites>` agree.
#[test]
fn junit_testcases_agree_with_the_criteria_and_the_verdict() {
    for outcome in [None, Some("failed"), Some("halted"), Some("passed")] {
        let f = build_store(outcome);
        let c = campaign_report(&f.reader()).unwrap();
        let xml = render_junit(&c).unwrap();
        for p in &c.phases {
            let class = format!("classname=\"quick.phase_{:02}_{}\"", p.index + 1, p.name);
            let cases: Vec<&str> = xml.split("<testcase ").filter(|t| t.contains(&class)).collect();
            assert_eq!(cases.len(), 2, "{xml}");
            let failed = cases.iter().filter(|t| t.contains("<failure ")).count();
            assert_eq!(failed == 0, p.criteria.passed, "{}: {xml}", p.name);
            for f in &p.criteria.failures {
                assert!(xml.contains(&format!("message=\"{}\"", f.replace('>', "&gt;").replace('<', "&lt;"))), "{f}\n{xml}");
            }
        }
        let campaign_failures = xml.matches("type=\"campaign_criterion\"").count();
        assert_eq!(campaign_failures == 0, c.verdict.passed, "{outcome:?}: {xml}");
        if outcome == Some("halted") {
            assert!(xml.contains("message=\"the plan did not complete"), "{xml}");
        }
        let failures = xml.matches("<failure ").count();
        assert!(xml.contains(&format!("tests=\"{}\" skipped=\"0\" failures=\"{failures}\"", c.phases.len() * 2 + 3)), "{xml}");
        assert_eq!(render_junit(&c).unwrap(), xml, "the same report renders the same bytes");
    }
}

/// A change beyond the tolerance is a regression only when its bootstrap interval over the
/// windows lies beyond the tolerance too: the same drop in success rate is a regression when every
/// window dropped, and "within noise" when a few windows swung; without enough windows the fixed
/// tolerance decides alone.
#[test]
fn compare_tells_a_regression_from_noise_with_the_windows() {
    use crate::store::WindowPoint;
    let f = build_store(Some("failed"));
    let c = campaign_report(&f.reader()).unwrap();
    let tol = Tolerance::default();
    let mut worse = c.clone();
    worse.phases[0].ops_succeeded = 90; // 99 % -> 90 %: -9 points, beyond the 2 tolerated
    let w = |ok: &[u64]| -> Vec<WindowPoint> {
        ok.iter()
            .enumerate()
            .map(|(i, &s)| WindowPoint {
                start_ms: i as u64 * 1000,
                end_ms: i as u64 * 1000 + 1000,
                attempted: 10,
                succeeded: s,
                latency: None,
            })
            .collect()
    };
    let side = |v: Vec<WindowPoint>| -> BTreeMap<u32, Vec<WindowPoint>> { [(0, v.clone()), (1, v)].into() };
    let base = side(w(&[10; 10]));
    // every window one op worse: a regression, with its interval
    let steady = side(w(&[9; 10]));
    let cmp = compare_with(&c, &worse, &tol, Some((&base, &steady)));
    assert_eq!(cmp.regressions.len(), 1, "{cmp:?}");
    assert!(cmp.regressions[0].contains("95% interval -10.0..-10.0"), "{:?}", cmp.regressions);
    assert_eq!(cmp.phases[0].success_rate_interval_points, Some([-10.0, -10.0]));
    // one window in ten lost every op: the same mean, but the interval reaches the tolerance
    let swung = side(w(&[10, 10, 10, 10, 10, 10, 10, 10, 10, 0]));
    let cmp = compare_with(&c, &worse, &tol, Some((&base, &swung)));
    assert!(!cmp.has_regressions(), "{:?}", cmp.regressions);
    assert_eq!(cmp.within_noise.len(), 1, "{cmp:?}");
    assert!(cmp.within_noise[0].starts_with("warmup: success rate") && cmp.within_noise[0].ends_with("within noise"), "{cmp:?}");
    assert!(render_comparison(&cmp).contains("Beyond the tolerance but within noise (1;"), "{}", render_comparison(&cmp));
    // too few windows: no interval, the tolerance alone
    let few = side(w(&[9; 3]));
    let cmp = compare_with(&c, &worse, &tol, Some((&base, &few)));
    assert_eq!(cmp.regressions.len(), 1, "{cmp:?}");
    assert_eq!(cmp.phases[0].success_rate_interval_points, None);
}
