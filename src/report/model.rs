//! The `model` task's part of a phase report: what the model is (type, opset, operator counts,
//! parameters), how its inferences went (count, success rate, `wrong_result`s and the worst error
//! against the wasm provider), what each browser session cost to set up (`load_ms`,
//! `first_inference_ms`, kept out of the op latencies) and the browser's memory over each
//! session's inferences (tree RSS), overall and per browser.
//!
//! Built from the store's task info, which the model task writes per session
//! (`session/<worker>/<session>`, each record carrying its worker and session), as RSS checkpoints
//! (`rss/<worker>/<session>/<inferences>`) and once per phase (`model`).
//!
//! Sessions the recovery ladder ran under adjusted settings (smaller inputs, or the wasm provider
//! as the last resort: [`crate::tasks::adjust`]) carry a `degraded` marker; their inferences are
//! counted apart (`degraded`) and are not successes of the configured settings, neither in
//! `success_rate` here nor in the phase's criteria ([`super::degraded`]), unless `[recovery]
//! degraded_counts_as_pass`.

use crate::metrics::Window;
use crate::recovery::FailureClass;
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;

/// The task info keys of a `model` task, folded: `model`, `inferences`, `success_rate`,
/// `wrong_result`, `worst_error`, `load_ms`, `first_inference_ms`, `rss_mb`, `sessions` (the
/// per-session records in key order, each with its `browser` and its `rss_mb` over its
/// inferences) and `browsers` (the session figures of each browser). `browsers` maps worker ids
/// to their browser (a worker missing there ran Chromium).
pub(super) fn fold(raw: &BTreeMap<String, Value>, w: Option<&Window>, browsers: &BTreeMap<String, String>) -> BTreeMap<String, Value> {
    let mut out = BTreeMap::new();
    let mut sessions = Vec::new();
    // (worker, session) -> [(inferences, rss_mb)]
    let mut rss: BTreeMap<(String, String), Vec<(u64, f64)>> = BTreeMap::new();
    for (k, v) in raw {
        if k.starts_with("session/") {
            sessions.push(v.clone());
        } else if let Some(rest) = k.strip_prefix("rss/") {
            let mut parts = rest.rsplitn(3, '/');
            let (n, session, worker) = (parts.next(), parts.next(), parts.next());
            if let (Some(n), Some(s), Some(wk), Some(mb)) = (n.and_then(|n| n.parse().ok()), session, worker, v["rss_mb"].as_f64()) {
                rss.entry((wk.to_string(), s.to_string())).or_default().push((n, mb));
            }
        } else {
            out.insert(k.clone(), v.clone());
        }
    }
    for s in &mut sessions {
        let worker = s["worker"].as_str().unwrap_or_default().to_string();
        let key = (worker.clone(), s["session"].as_str().unwrap_or_default().to_string());
        let mut series = rss.remove(&key).unwrap_or_default();
        if let (Some(n), Some(mb)) = (s["inferences"].as_u64(), s["rss_mb"].as_f64()) {
            if !series.iter().any(|(m, _)| *m == n) {
                series.push((n, mb));
            }
        }
        series.sort_by_key(|(n, _)| *n);
        if let Some(o) = s.as_object_mut() {
            o.insert("browser".into(), json!(browsers.get(&worker).map_or("chromium", String::as_str)));
            o.insert("rss_mb".into(), session_rss(&series));
        }
    }
    let (attempted, succeeded, wrong) = match w {
        Some(w) => (w.attempted, w.succeeded, w.errors.get(&FailureClass::WrongResult).copied().unwrap_or(0)),
        None => (0, 0, 0),
    };
    out.insert("inferences".into(), json!(attempted));
    out.insert("wrong_result".into(), json!(wrong));
    out.extend(session_figures(&sessions));
    // a degraded inference is not a success of the configured settings (not a pass on WebGPU)
    let configured_ok = succeeded.saturating_sub(super::degraded::not_counted("model", &out));
    let rate = if attempted == 0 { 0.0 } else { configured_ok as f64 / attempted as f64 };
    out.insert("success_rate".into(), json!((rate * 1000.0).round() / 1000.0));
    let mut per_browser: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    for s in &sessions {
        per_browser.entry(s["browser"].as_str().unwrap_or("chromium").to_string()).or_default().push(s.clone());
    }
    let per_browser: Map<String, Value> = per_browser
        .into_iter()
        .map(|(b, ss)| {
            let mut f: Map<String, Value> = session_figures(&ss).into_iter().collect();
            f.insert("sessions".into(), json!(ss.len()));
            (b, Value::Object(f))
        })
        .collect();
    out.insert("browsers".into(), Value::Object(per_browser));
    out.insert("sessions".into(), Value::Array(sessions));
    out
}

/// The figures folded over some sessions: worst error, set-up times and browser memory.
fn session_figures(sessions: &[Value]) -> BTreeMap<String, Value> {
    let max_of = |k: &str| max_f64(sessions.iter().filter_map(|s| s.get(k).and_then(Value::as_f64)));
    let mut out = BTreeMap::new();
    out.insert("worst_error".into(), json!({"abs": max_of("worst_abs"), "rel": max_of("worst_rel")}));
    out.insert("load_ms".into(), spread(sessions, "load_ms"));
    out.insert("first_inference_ms".into(), spread(sessions, "first_inference_ms"));
    out.insert("rss_mb".into(), rss_figures(sessions));
    out.insert("degraded".into(), degraded_figures(sessions));
    out
}

/// The inferences of the sessions that ran under adjusted settings: how many, how many of them
/// succeeded (on the adjusted settings, which is all they say), in how many sessions, and per
/// rung what it ran on (`setting`, `provider`, `configured_provider`, `inputs`).
fn degraded_figures(sessions: &[Value]) -> Value {
    let mut by: BTreeMap<String, (Value, u64, u64, u64)> = BTreeMap::new();
    for s in sessions.iter().filter(|s| s["degraded"].is_object()) {
        let d = &s["degraded"];
        let key = format!("{}/{}/{}", d["setting"], d["provider"], d["inputs"]);
        let e = by.entry(key).or_insert_with(|| (d.clone(), 0, 0, 0));
        e.1 += 1;
        e.2 += s["inferences"].as_u64().unwrap_or(0);
        e.3 += s["succeeded"].as_u64().unwrap_or(0);
    }
    let settings: Vec<Value> = by
        .into_values()
        .map(|(d, sessions, inferences, succeeded)| {
            let mut o = d.as_object().cloned().unwrap_or_default();
            o.insert("sessions".into(), json!(sessions));
            o.insert("inferences".into(), json!(inferences));
            o.insert("succeeded".into(), json!(succeeded));
            Value::Object(o)
        })
        .collect();
    let sum = |k: &str| settings.iter().filter_map(|s| s[k].as_u64()).sum::<u64>();
    // `[recovery] degraded_counts_as_pass`, as each adjusted session was told
    let counts_as_pass = !settings.is_empty() && settings.iter().all(|s| s["counts_as_pass"].as_bool() == Some(true));
    json!({"inferences": sum("inferences"), "succeeded": sum("succeeded"), "sessions": sum("sessions"), "settings": settings,
           "counts_as_pass": counts_as_pass})
}

/// One session's browser memory: the tree RSS after set-up (`start`, 0 inferences), at 1,000
/// inferences, at the last figure the page sent (`last`, `last_at` inferences), the largest seen,
/// the growth per 1,000 inferences from set-up to the last figure (when at least 100 lie between)
/// and the checkpoints themselves (`[inferences, MiB]`). Null when the browser is not on this
/// machine.
fn session_rss(series: &[(u64, f64)]) -> Value {
    let (Some(first), Some(last)) = (series.first(), series.last()) else { return Value::Null };
    let at = |n: u64| series.iter().find(|(m, _)| *m == n).map(|(_, mb)| *mb);
    let growth = (last.0 >= first.0 + 100).then(|| round1((last.1 - first.1) * 1000.0 / (last.0 - first.0) as f64));
    json!({
        "start": at(0),
        "at_1000": at(crate::tasks::model::RSS_CHECKPOINT_EVERY),
        "last": last.1,
        "last_at": last.0,
        "max": series.iter().map(|(_, mb)| *mb).fold(f64::MIN, f64::max),
        "growth_per_1000": growth,
        "checkpoints": series.iter().map(|(n, mb)| json!([n, mb])).collect::<Vec<_>>(),
    })
}

/// The sessions' memory folded: how many reported it, the median after set-up, the largest last
/// and largest seen figure, and the steepest growth per 1,000 inferences (a leak shows there).
fn rss_figures(sessions: &[Value]) -> Value {
    let figs: Vec<&Value> = sessions.iter().map(|s| &s["rss_mb"]).filter(|r| r.is_object()).collect();
    if figs.is_empty() {
        return Value::Null;
    }
    let mut starts: Vec<f64> = figs.iter().filter_map(|r| r["start"].as_f64()).collect();
    starts.sort_by(f64::total_cmp);
    let max = |k: &str| max_f64(figs.iter().filter_map(|r| r[k].as_f64()));
    json!({
        "sessions": figs.len(),
        "start_median": starts.get(starts.len() / 2),
        "last_max": max("last"),
        "max": max("max"),
        "growth_per_1000_max": max("growth_per_1000"),
    })
}

/// The largest of some figures (None when there are none).
fn max_f64(values: impl Iterator<Item = f64>) -> Option<f64> {
    values.fold(None, |m, x| Some(m.map_or(x, |m: f64| m.max(x))))
}

fn round1(x: f64) -> f64 {
    (x * 10.0).round() / 10.0
}

/// min / median / max of a per-session figure (null when no session reported it).
fn spread(sessions: &[Value], key: &str) -> Value {
    let mut v: Vec<f64> = sessions.iter().filter_map(|s| s.get(key).and_then(Value::as_f64)).filter(|x| x.is_finite()).collect();
    if v.is_empty() {
        return Value::Null;
    }
    v.sort_by(f64::total_cmp);
    let r = |x: f64| (x * 10.0).round() / 10.0;
    let mut m = Map::new();
    m.insert("sessions".into(), json!(v.len()));
    m.insert("min".into(), json!(r(v[0])));
    m.insert("median".into(), json!(r(v[v.len() / 2])));
    m.insert("max".into(), json!(r(v[v.len() - 1])));
    Value::Object(m)
}

/// The text summary's lines for one phase's model task (empty when it ran none).
pub(super) fn summary_lines(phase: &str, info: &BTreeMap<String, Value>, latency_p50: f64, latency_p95: f64) -> Vec<String> {
    let Some(m) = info.get("model") else { return Vec::new() };
    let s = |v: Option<&Value>| v.map(|v| v.to_string().trim_matches('"').to_string()).unwrap_or_else(|| "?".into());
    let ops: Vec<String> =
        m.get("operators").and_then(Value::as_object).map(|o| o.iter().map(|(k, v)| format!("{k}×{v}")).collect()).unwrap_or_default();
    let fig = |k: &str| match info.get(k).filter(|v| !v.is_null()) {
        Some(v) => format!(
            "median {} ms (min {}, max {}, {} session(s))",
            s(v.get("median")),
            s(v.get("min")),
            s(v.get("max")),
            s(v.get("sessions"))
        ),
        None => "not reported".into(),
    };
    let worst = info.get("worst_error");
    let mut lines = vec![
        format!(
            "  {phase}: {} ({} type, opset {}, {} parameters) on {}",
            s(m.get("model")),
            s(m.get("type")),
            s(m.get("opset")),
            s(m.get("parameters")),
            s(m.get("execution_provider"))
        ),
        format!("    operators: {}", ops.join(", ")),
        format!(
            "    inferences {}, success {}%, latency p50 {latency_p50:.1} ms, p95 {latency_p95:.1} ms",
            s(info.get("inferences")),
            info.get("success_rate").and_then(Value::as_f64).map_or("?".into(), |r| format!("{:.1}", r * 100.0))
        ),
        format!(
            "    wrong_result {}, worst error against wasm: abs {}, rel {}",
            s(info.get("wrong_result")),
            s(worst.and_then(|w| w.get("abs"))),
            s(worst.and_then(|w| w.get("rel")))
        ),
        format!("    load {}", fig("load_ms")),
        format!("    first inference {}", fig("first_inference_ms")),
    ];
    lines.push(format!("    browser memory (tree RSS) per session: {}", rss_line(info.get("rss_mb"))));
    if let Some(sv) = info.get("served") {
        // what the page server sent this phase's browsers: a fresh session pulls every file once
        let n = info.get("sessions").and_then(Value::as_array).map_or(0, Vec::len);
        lines.push(format!(
            "    served {:.1} MB in {} requests over {n} session(s) (page server; {} refused)",
            sv["bytes"].as_u64().unwrap_or(0) as f64 / 1e6,
            s(sv.get("requests")),
            s(sv.get("rejected"))
        ));
    }
    let degraded = info.get("degraded").filter(|d| d["inferences"].as_u64().is_some_and(|n| n > 0));
    if let Some(d) = degraded {
        let on: Vec<String> = d["settings"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|x| format!("{} on {} ({} inferences)", s(x.get("setting")), s(x.get("provider")), s(x.get("inferences"))))
            .collect();
        lines.push(format!(
            "    DEGRADED (recovery ladder, adjusted settings): {} inferences ({} succeeded) in {} session(s): {}; {}",
            s(d.get("inferences")),
            s(d.get("succeeded")),
            s(d.get("sessions")),
            on.join(", "),
            if d["counts_as_pass"].as_bool() == Some(true) {
                "counted as successes ([recovery] degraded_counts_as_pass)"
            } else {
                "not counted as successes"
            }
        ));
    }
    let per_browser = info.get("browsers").and_then(Value::as_object);
    if per_browser.is_some_and(|b| b.len() > 1 || b.keys().any(|k| k != "chromium")) {
        for (b, f) in per_browser.into_iter().flatten() {
            let w = f.get("worst_error");
            lines.push(format!(
                "    {b}: {} session(s), first inference median {} ms, worst error abs {}, memory {}",
                s(f.get("sessions")),
                s(f.get("first_inference_ms").and_then(|v| v.get("median"))),
                s(w.and_then(|w| w.get("abs"))),
                rss_line(f.get("rss_mb"))
            ));
        }
    }
    lines
}

/// The memory figures in words ("not measured" for browsers not on this machine).
fn rss_line(r: Option<&Value>) -> String {
    let Some(r) = r.filter(|r| r.is_object()) else { return "not measured (no browser on this machine)".into() };
    let f = |k: &str| r.get(k).and_then(Value::as_f64).map_or("?".into(), |v| format!("{v:.1}"));
    format!(
        "after set-up median {} MiB, last up to {} MiB, max {} MiB, growth up to {} MiB per 1,000 inferences",
        f("start_median"),
        f("last_max"),
        f("max"),
        f("growth_per_1000_max")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folds_sessions_into_figures() {
        let mut raw = BTreeMap::new();
        raw.insert(
            "model".to_string(),
            json!({"model": "builtin:text", "type": "text", "opset": 17, "parameters": 10, "operators": {"MatMul": 2}}),
        );
        raw.insert(
            "session/local/s1".to_string(),
            json!({"worker": "local", "session": "s1", "load_ms": 800.0, "first_inference_ms": 1700.0, "worst_abs": 1e-6, "worst_rel": 1e-4,
                   "inferences": 2100, "rss_mb": 520.0}),
        );
        raw.insert(
            "session/ff/s2".to_string(),
            json!({"worker": "ff", "session": "s2", "load_ms": 900.0, "first_inference_ms": 1500.0, "worst_abs": 3e-6, "worst_rel": 1e-5}),
        );
        // s1 grew from 400 MiB after set-up to 520 MiB at 2,100 inferences
        raw.insert("rss/local/s1/0".to_string(), json!({"inferences": 0, "rss_mb": 400.0}));
        raw.insert("rss/local/s1/1000".to_string(), json!({"inferences": 1000, "rss_mb": 460.0}));
        raw.insert("rss/local/s1/2000".to_string(), json!({"inferences": 2000, "rss_mb": 530.0}));
        let mut w = Window::default();
        w.record(std::time::Duration::from_millis(5), None, Ok(true));
        w.record(std::time::Duration::from_millis(5), None, Err(FailureClass::WrongResult));
        let browsers: BTreeMap<String, String> = [("ff".to_string(), "firefox".to_string())].into();
        let f = fold(&raw, Some(&w), &browsers);
        assert_eq!(f["inferences"], 2);
        assert_eq!(f["success_rate"], 0.5);
        assert_eq!(f["wrong_result"], 1);
        assert_eq!(f["worst_error"], json!({"abs": 3e-6, "rel": 1e-4}));
        assert_eq!(f["load_ms"]["max"], 900.0);
        assert_eq!(f["first_inference_ms"]["min"], 1500.0);
        assert!(!f.keys().any(|k| k.starts_with("rss/")), "checkpoints folded into the sessions: {f:?}");
        let sessions = f["sessions"].as_array().unwrap();
        assert_eq!(sessions.len(), 2);
        let (ff, local) = (&sessions[0], &sessions[1]);
        assert_eq!((ff["browser"].as_str(), local["browser"].as_str()), (Some("firefox"), Some("chromium")));
        assert_eq!(ff["rss_mb"], Value::Null, "no figure: not measured");
        let r = &local["rss_mb"];
        assert_eq!(
            (r["start"].as_f64(), r["at_1000"].as_f64(), r["last"].as_f64(), r["max"].as_f64()),
            (Some(400.0), Some(460.0), Some(520.0), Some(530.0))
        );
        assert_eq!(r["last_at"], 2100);
        assert_eq!(r["growth_per_1000"], 57.1); // 120 MiB over 2,100 inferences
        assert_eq!(r["checkpoints"], json!([[0, 400.0], [1000, 460.0], [2000, 530.0], [2100, 520.0]]));
        assert_eq!(f["rss_mb"]["growth_per_1000_max"], 57.1);
        assert_eq!(f["browsers"]["firefox"]["sessions"], 1);
        assert_eq!(f["browsers"]["chromium"]["first_inference_ms"]["median"], 1700.0);
        assert_eq!(f["browsers"]["chromium"]["rss_mb"]["max"], 530.0);
        let lines = summary_lines("one", &f, 5.0, 6.0);
        assert!(lines[0].contains("builtin:text (text type, opset 17, 10 parameters)"), "{lines:?}");
        assert!(lines[3].contains("wrong_result 1"), "{lines:?}");
        assert!(lines[6].contains("after set-up median 400.0 MiB") && lines[6].contains("growth up to 57.1 MiB per 1,000"), "{lines:?}");
        assert!(lines.iter().any(|l| l.starts_with("    firefox: 1 session(s)") && l.contains("not measured")), "{lines:?}");
    }

    /// A phase of 100 inferences, all successful, 60 of them in a session the ladder moved to
    /// the wasm provider: the model's success rate and the phase's criteria count 40 successes,
    /// and both the report and the summary name the degradation.
    #[test]
    fn degraded_inferences_are_counted_apart_and_fail_the_criteria() {
        use crate::store::{CampaignRecord, PhaseStart, Store, WindowRow};
        use std::time::{Duration, SystemTime};
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("runs/c1/store.sqlite");
        let rec =
            CampaignRecord::quick_for_test("c1", SystemTime::UNIX_EPOCH + Duration::from_secs(1_750_000_000), &dir.path().join("results"));
        let store = Store::create(&path, &rec, &dir.path().join("runs/c1/events.jsonl")).unwrap();
        store.phase_started(PhaseStart {
            idx: 0,
            name: "p".into(),
            stress_level: "low",
            task_kind: "model",
            sessions_planned: 1,
            sessions: 1,
            duration_planned: Duration::from_secs(10),
            min_success_rate: 0.95,
            max_p95_ms: 30_000,
            notes: vec![],
            started_at: rec.started_at,
        });
        let mut h = crate::metrics::new_histogram();
        for _ in 0..100 {
            crate::metrics::record_latency(&mut h, Duration::from_millis(5));
        }
        store.window(WindowRow {
            phase_idx: 0,
            worker: "local".into(),
            slot: 0,
            task_kind: "model",
            start_ms: 0,
            end_ms: 1000,
            attempted: 100,
            succeeded: 100,
            failed: 0,
            verified: 100,
            errors: "{}".into(),
            hist: crate::metrics::encode_histogram(&h),
            hist_in_page: crate::metrics::encode_histogram(&crate::metrics::new_histogram()),
            console: 0,
        });
        store.task_info(0, "model", "model", json!({"model": "builtin:text", "type": "text", "execution_provider": "webgpu"}));
        store.task_info(0, "model", "session/local/s1", json!({"worker": "local", "session": "s1", "inferences": 40, "succeeded": 40}));
        let degraded =
            json!({"setting": "wasm_provider", "provider": "wasm", "configured_provider": "webgpu", "inputs": {"x": [1, 64, 128]}});
        store.task_info(
            0,
            "model",
            "session/local/s2",
            json!({"worker": "local", "session": "s2", "inferences": 60, "succeeded": 60, "degraded": degraded}),
        );
        store.phase_ended(0, "completed", Duration::from_secs(10));
        store.close().unwrap();

        let r = crate::store::StoreReader::open(&path).unwrap();
        let c = super::super::campaign_report(&r).unwrap();
        // the runner's verdict does not count the degraded inferences either
        assert_eq!(super::super::campaign_verdict(&r).unwrap(), c.verdict);
        let p = &c.phases[0];
        let t = &p.tasks["model"].info;
        assert_eq!(t["success_rate"], 0.4, "{t:?}");
        assert_eq!(t["degraded"]["inferences"], 60);
        assert_eq!(t["degraded"]["succeeded"], 60);
        assert_eq!(t["degraded"]["settings"][0]["provider"], "wasm");
        assert_eq!(t["degraded"]["settings"][0]["configured_provider"], "webgpu");
        assert_eq!(t["browsers"]["chromium"]["degraded"]["inferences"], 60);
        assert!(!p.criteria.passed, "{:?}", p.criteria);
        assert_eq!(p.criteria.failures[0], "success rate 40.0% below 95.0% (60 of 100 ops failed)");
        assert!(p.criteria.failures[1].starts_with("60 inference(s) succeeded only under the recovery ladder's adjusted settings"));
        let lines = summary_lines("p", t, 5.0, 6.0);
        assert!(
            lines
                .iter()
                .any(|l| l.contains("DEGRADED") && l.contains("60 inferences (60 succeeded) in 1 session(s): wasm_provider on wasm")),
            "{lines:?}"
        );
    }
}
