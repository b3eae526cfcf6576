//! Results per browser: each phase's ops, success rate, latency and adapter, broken down by the
//! browser of the worker that ran them, so a Chromium and a Firefox run side by side can be
//! told apart in the morning.
//!
//! Which browser a worker ran comes from the `campaign_started` event (stores written before
//! browsers were configurable have none there: every worker ran Chromium).

use super::numbers::{pct_counts, ratio, round3};
use super::typed_events::for_each_typed;
use crate::events::Event;
use crate::metrics::{LatencySummary, Window};
use crate::store::{StoreError, StoreReader};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;

/// One browser's share of a phase.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, Default)]
pub struct BrowserReport {
    /// The workers of this browser that ran ops in the phase.
    pub workers: Vec<String>,
    /// Ops attempted.
    pub ops_attempted: u64,
    /// Ops succeeded.
    pub ops_succeeded: u64,
    /// Ops failed.
    pub ops_failed: u64,
    /// Successful ops whose result was checked (webgpu: against the CPU reference).
    pub verified: u64,
    /// `ops_succeeded / ops_attempted`.
    pub success_rate: f64,
    /// Latency of its ops, ms.
    pub latency_ms: LatencySummary,
    /// Failures by class.
    pub errors_by_class: BTreeMap<String, u64>,
    /// The adapter (webgpu) or backend (webnn) the page reported, with its `kind`
    /// (software/hardware), the `webgpu_adapter` choice and, for Chromium, the GPU's name from
    /// `chrome://gpu`; null when no op succeeded.
    pub adapter: Option<Value>,
    /// Times a fresh browser answered `requestAdapter()` with null and the page asked again.
    pub adapter_retries: u64,
}

/// Worker id -> browser, from the campaign's first `campaign_started` event.
pub fn worker_browsers(r: &StoreReader) -> Result<BTreeMap<String, String>, StoreError> {
    let mut out = BTreeMap::new();
    let mut seen = false;
    for_each_typed(r, None, &["campaign_started"], |_, ev| {
        if let (false, Event::CampaignStarted { workers, .. }) = (seen, ev) {
            seen = true;
            out.extend(workers.into_iter().map(|w| (w.id, w.browser)));
        }
    })?;
    Ok(out)
}

/// The per-browser breakdown of a phase from its per-worker windows and its task info
/// (`adapter:<browser>`, `adapter_retries:<browser>` keys of any task kind).
pub fn breakdown(
    worker_windows: &BTreeMap<String, Window>,
    browsers: &BTreeMap<String, String>,
    task_info: &BTreeMap<String, BTreeMap<String, Value>>,
) -> BTreeMap<String, BrowserReport> {
    let mut merged: BTreeMap<String, (Vec<String>, Window)> = BTreeMap::new();
    for (worker, w) in worker_windows {
        if worker == "synthetic" {
            continue; // no browser ran these
        }
        let b = browsers.get(worker).cloned().unwrap_or_else(|| "chromium".to_string());
        let e = merged.entry(b).or_default();
        e.0.push(worker.clone());
        e.1.merge(w);
    }
    let mut out: BTreeMap<String, BrowserReport> = merged
        .into_iter()
        .map(|(b, (workers, w))| {
            let r = BrowserReport {
                workers,
                ops_attempted: w.attempted,
                ops_succeeded: w.succeeded,
                ops_failed: w.failed,
                verified: w.verified,
                success_rate: round3(ratio(w.succeeded, w.attempted)),
                latency_ms: LatencySummary::of(&w.hist),
                errors_by_class: w.errors.iter().map(|(c, n)| (c.as_str().to_string(), *n)).collect(),
                adapter: None,
                adapter_retries: 0,
            };
            (b, r)
        })
        .collect();
    for info in task_info.values() {
        for (k, v) in info {
            if let Some(b) = k.strip_prefix("adapter:") {
                out.entry(b.to_string()).or_default().adapter = Some(v.clone());
            } else if let Some(b) = k.strip_prefix("adapter_retries:") {
                out.entry(b.to_string()).or_default().adapter_retries += v.as_u64().unwrap_or(0);
            }
        }
    }
    out
}

/// The adapter in one line for people: kind, the fields the browser exposes (saying so when it
/// exposes none), the GPU's name and the compute limits.
pub fn adapter_line(a: &Value) -> String {
    if a.get("api").is_some() {
        // a WebNN backend
        return format!("webnn {}", a);
    }
    let mut line = crate::preflight::describe_adapter(a);
    if let Some(n) = a.get("gpu_name").and_then(Value::as_str) {
        line.push_str(&format!("; GPU (chrome://gpu): {n}"));
    }
    if let Some(c) = a.get("webgpu_adapter").and_then(Value::as_str) {
        line.push_str(&format!(" (webgpu_adapter = \"{c}\")"));
    }
    line
}

/// Text lines for a phase's browsers (only when the phase ran on more than one browser, or its
/// one browser is not Chromium: otherwise the phase line says it all).
pub fn text_lines(browsers: &BTreeMap<String, BrowserReport>) -> Vec<String> {
    if browsers.len() < 2 && browsers.keys().all(|b| b == "chromium") {
        return Vec::new();
    }
    browsers
        .iter()
        .map(|(b, r)| {
            format!(
                "    {b:<9} {} ops, {}% ok, p50 {:.1} / p95 {:.1} / p99 {:.1} ms{}",
                r.ops_attempted,
                pct_counts(r.ops_succeeded, r.ops_attempted),
                r.latency_ms.p50,
                r.latency_ms.p95,
                r.latency_ms.p99,
                if r.verified > 0 { format!(", {} verified", r.verified) } else { String::new() }
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::record_latency;
    use std::time::Duration;

    #[test]
    fn groups_workers_by_browser_and_takes_each_browsers_adapter() {
        let mut w1 = Window { attempted: 10, succeeded: 9, failed: 1, ..Default::default() };
        record_latency(&mut w1.hist, Duration::from_millis(5));
        let w2 = Window { attempted: 4, succeeded: 4, failed: 0, ..w1.clone() };
        let windows: BTreeMap<String, Window> = [("c1".to_string(), w1.clone()), ("c2".to_string(), w1), ("ff".to_string(), w2)].into();
        let browsers: BTreeMap<String, String> =
            [("c1", "chromium"), ("c2", "chromium"), ("ff", "firefox")].map(|(a, b)| (a.into(), b.into())).into();
        let mut info: BTreeMap<String, BTreeMap<String, Value>> = BTreeMap::new();
        info.entry("webgpu".into()).or_default().insert("adapter:firefox".into(), serde_json::json!({"kind": "software"}));
        info.entry("webgpu".into()).or_default().insert("adapter_retries:chromium".into(), serde_json::json!(3));
        let b = breakdown(&windows, &browsers, &info);
        assert_eq!(b["chromium"].workers, ["c1", "c2"]);
        assert_eq!((b["chromium"].ops_attempted, b["chromium"].ops_succeeded), (20, 18));
        assert_eq!(b["chromium"].adapter_retries, 3);
        assert_eq!(b["firefox"].ops_attempted, 4);
        assert_eq!(b["firefox"].adapter.as_ref().unwrap()["kind"], "software");
        assert_eq!(text_lines(&b).len(), 2);
    }

    #[test]
    fn an_adapter_that_exposes_nothing_says_so() {
        let a = serde_json::json!({"kind": "software", "vendor": null, "architecture": "", "limits": {"maxBufferSize": 1073741824u64}});
        let line = adapter_line(&a);
        assert!(line.starts_with("software adapter: vendor, architecture, device and description not exposed by the browser"), "{line}");
        assert!(line.ends_with("; maxBufferSize 1024 MiB") && !line.contains('?'), "{line}");
    }
}
