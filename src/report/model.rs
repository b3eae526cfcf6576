//! The `model` task's part of a phase report: what the model is (type, opset, operator counts,
//! parameters), how its inferences went (count, success rate, `wrong_result`s and the worst error
//! against the wasm provider) and what each browser session cost to set up (`load_ms`,
//! `first_inference_ms`), kept out of the op latencies.
//!
//! Built from the store's task info, which the model task writes per session
//! (`session/<worker>/<session>`, each record carrying its worker and session so a per-browser
//! breakdown can group them) and once per phase (`model`).

use crate::metrics::Window;
use crate::recovery::FailureClass;
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;

/// The task info keys of a `model` task, folded: `model`, `inferences`, `success_rate`,
/// `wrong_result`, `worst_error`, `load_ms`, `first_inference_ms` and `sessions` (the
/// per-session records, in key order).
pub(super) fn fold(raw: &BTreeMap<String, Value>, w: Option<&Window>) -> BTreeMap<String, Value> {
    let mut out = BTreeMap::new();
    let mut sessions = Vec::new();
    for (k, v) in raw {
        if k.starts_with("session/") {
            sessions.push(v.clone());
        } else {
            out.insert(k.clone(), v.clone());
        }
    }
    let (attempted, succeeded, wrong) = match w {
        Some(w) => (w.attempted, w.succeeded, w.errors.get(&FailureClass::WrongResult).copied().unwrap_or(0)),
        None => (0, 0, 0),
    };
    out.insert("inferences".into(), json!(attempted));
    let rate = if attempted == 0 { 0.0 } else { succeeded as f64 / attempted as f64 };
    out.insert("success_rate".into(), json!((rate * 1000.0).round() / 1000.0));
    out.insert("wrong_result".into(), json!(wrong));
    let max_of = |k: &str| {
        sessions.iter().filter_map(|s| s.get(k).and_then(Value::as_f64)).fold(None, |m: Option<f64>, x| Some(m.map_or(x, |m| m.max(x))))
    };
    out.insert("worst_error".into(), json!({"abs": max_of("worst_abs"), "rel": max_of("worst_rel")}));
    out.insert("load_ms".into(), spread(&sessions, "load_ms"));
    out.insert("first_inference_ms".into(), spread(&sessions, "first_inference_ms"));
    out.insert("sessions".into(), Value::Array(sessions));
    out
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
    vec![
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
    ]
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
            json!({"load_ms": 800.0, "first_inference_ms": 1700.0, "worst_abs": 1e-6, "worst_rel": 1e-4}),
        );
        raw.insert(
            "session/local/s2".to_string(),
            json!({"load_ms": 900.0, "first_inference_ms": 1500.0, "worst_abs": 3e-6, "worst_rel": 1e-5}),
        );
        let mut w = Window::default();
        w.record(std::time::Duration::from_millis(5), None, Ok(true));
        w.record(std::time::Duration::from_millis(5), None, Err(FailureClass::WrongResult));
        let f = fold(&raw, Some(&w));
        assert_eq!(f["inferences"], 2);
        assert_eq!(f["success_rate"], 0.5);
        assert_eq!(f["wrong_result"], 1);
        assert_eq!(f["worst_error"], json!({"abs": 3e-6, "rel": 1e-4}));
        assert_eq!(f["load_ms"]["max"], 900.0);
        assert_eq!(f["first_inference_ms"]["min"], 1500.0);
        assert_eq!(f["sessions"].as_array().unwrap().len(), 2);
        let lines = summary_lines("one", &f, 5.0, 6.0);
        assert!(lines[0].contains("builtin:text (text type, opset 17, 10 parameters)"), "{lines:?}");
        assert!(lines[3].contains("wrong_result 1"), "{lines:?}");
    }
}
