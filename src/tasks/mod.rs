//! Task kinds and how one op of each runs.
//!
//! Browser tasks run inside the embedded test page (served by [`server::PageServer`]) through
//! WebDriver "Execute Async Script"; the page does the real work (a WebGPU matmul checked against a
//! CPU reference, WebNN detection) and answers `{ok, verified, class, message, adapter, metrics}`.
//! The page tasks (`webgpu`, `webnn`, `page`) run a short batch of ops per call ([`batch`]).
//! The `synthetic` task involves no browser at all and is labelled synthetic wherever it appears.

pub mod adjust;
pub mod batch;
pub mod console;
pub mod exhaust;
pub mod model;
pub mod server;

use crate::browser::adapter::AdapterMode;
use crate::browser::session::CALL_SCRIPT;
use crate::config::TaskSpec;
use crate::recovery::{classify_cmd_error, FailureClass, OpError, PageConsole};
use serde_json::{json, Value};
use std::time::Duration;

/// What a successful op returns.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct OpOk {
    /// The result was checked (webgpu: against the CPU reference).
    pub verified: bool,
    /// Adapter / backend description reported by the page, when it gave one.
    pub adapter: Option<Value>,
    /// How many times the page asked for a WebGPU adapter again after a null answer before
    /// this op (a fresh browser often answers null at first).
    pub adapter_retries: u64,
    /// Time the op spent on one-off set-up before the op itself (the `model` task's session
    /// creation and first inference): not the op's latency, so the slot leaves it out.
    pub setup: Duration,
    /// What the browser's console said during the op (an op may succeed beside an error).
    pub console: PageConsole,
}

/// A fault the page itself carries out on request (fault injection).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PageFault {
    /// Never answer: the op runs into its timeout.
    Hang,
    /// Throw from the page.
    Throw,
    /// Destroy the GPU device mid-task.
    GpuDeviceLost,
    /// Allocate until the renderer's memory runs out ([`exhaust`]): the op that takes it runs
    /// the allocation instead of its work.
    ExhaustMemory {
        /// The fault's `limit_mb`.
        limit_mb: u32,
    },
}

impl PageFault {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            PageFault::Hang => "hang",
            PageFault::Throw => "throw",
            PageFault::GpuDeviceLost => "gpu_device_lost",
            PageFault::ExhaustMemory { .. } => "exhaust_memory",
        }
    }
}

/// Runs one browser op of `task` in the session's current page (or, for `page` tasks, the user's
/// page) and classifies any failure. The caller applies the overall timeout. `page_url` is the
/// page server's and `info` records what a `model` task learns per session.
// one call per op on the hot path: plain arguments rather than a struct built per op
#[allow(clippy::too_many_arguments)]
pub async fn run_browser_op(
    client: &fantoccini::Client,
    task: &TaskSpec,
    matrix_size: u32,
    seed: u32,
    fault: Option<PageFault>,
    adapter: AdapterMode,
    page_url: &str,
    info: model::InfoSink<'_>,
) -> Result<OpOk, OpError> {
    let (script, args) = match task {
        TaskSpec::Model(m) => return model::run_model_op(client, m, page_url, seed, fault, info).await,
        TaskSpec::Webgpu { .. } => {
            let mut spec = json!({"size": matrix_size, "seed": seed, "adapter": adapter.as_str()});
            if let Some(f) = fault {
                spec["fault"] = json!(f.as_str());
            }
            (CALL_SCRIPT, vec![json!("webgpu"), spec])
        }
        TaskSpec::Webnn => (CALL_SCRIPT, vec![json!("webnn"), json!({"seed": seed})]),
        TaskSpec::Page { script, .. } => (script.as_str(), vec![]),
        TaskSpec::Synthetic { .. } => {
            return Err(OpError::new(FailureClass::ScriptError, "synthetic task has no browser op"));
        }
    };
    let v = client.execute_async(script, args).await.map_err(classify_cmd_error)?;
    parse_result(v)
}

/// Interprets the page's answer.
pub fn parse_result(v: Value) -> Result<OpOk, OpError> {
    let console = console::console_of(&v);
    match v.get("ok").and_then(Value::as_bool) {
        Some(true) => Ok(OpOk {
            verified: v.get("verified").and_then(Value::as_bool).unwrap_or(false),
            adapter: v.get("adapter").or_else(|| v.get("backend")).filter(|a| !a.is_null()).cloned(),
            adapter_retries: v.get("adapter_retries").and_then(Value::as_u64).unwrap_or(0),
            setup: Duration::ZERO,
            console,
        }),
        Some(false) => {
            let class = v.get("class").and_then(Value::as_str).and_then(FailureClass::parse).unwrap_or(FailureClass::ScriptError);
            let message = v.get("message").and_then(Value::as_str).unwrap_or("the page reported a failure without a message");
            Err(OpError { console, ..OpError::new(class, crate::fmt::ellipsize(message, 500)) })
        }
        None => Err(OpError::new(
            FailureClass::ScriptError,
            format!("the page answered without `ok`: {}", crate::fmt::ellipsize(&v.to_string(), 200)),
        )),
    }
}

/// The synthetic task: no browser; latency `mean ± jitter` and a failure probability.
pub struct Synthetic {
    latency: Duration,
    jitter: Duration,
    failure_probability: f64,
    rng: fastrand::Rng,
}

impl Synthetic {
    /// From a `synthetic` task spec (None for other kinds).
    pub fn from_spec(spec: &TaskSpec, seed: u64) -> Option<Synthetic> {
        match *spec {
            TaskSpec::Synthetic { latency, jitter, failure_probability } => {
                Some(Synthetic { latency, jitter, failure_probability, rng: fastrand::Rng::with_seed(seed) })
            }
            _ => None,
        }
    }

    /// The latency the next op will take (drawn uniformly from `[mean - jitter, mean + jitter]`).
    pub fn draw_latency(&mut self) -> Duration {
        if self.jitter.is_zero() {
            return self.latency;
        }
        let j = self.jitter.as_nanos() as u64;
        let offset = self.rng.u64(0..=2 * j);
        (self.latency + Duration::from_nanos(offset)).saturating_sub(self.jitter)
    }

    /// Runs one op: waits the drawn latency (no wait at all when it is zero) and fails with the
    /// configured probability.
    pub async fn run(&mut self) -> Result<OpOk, OpError> {
        let d = self.draw_latency();
        if !d.is_zero() {
            tokio::time::sleep(d).await;
        }
        self.outcome()
    }

    /// Draws the outcome of one op without waiting.
    pub fn outcome(&mut self) -> Result<OpOk, OpError> {
        if self.failure_probability > 0.0 && self.rng.f64() < self.failure_probability {
            Err(OpError::new(FailureClass::ScriptError, "synthetic failure (drawn with the configured failure_probability)"))
        } else {
            Ok(OpOk::default())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_page_answers() {
        let ok = parse_result(json!({"ok": true, "verified": true, "adapter": {"architecture": "swiftshader"}})).unwrap();
        assert!(ok.verified);
        assert_eq!(ok.adapter.unwrap()["architecture"], "swiftshader");
        let e = parse_result(json!({"ok": false, "class": "gpu_error", "message": "mismatch at 3"})).unwrap_err();
        assert_eq!(e.class, FailureClass::GpuError);
        assert!(e.message.contains("mismatch at 3"));
        let e = parse_result(json!({"ok": false, "class": "bogus"})).unwrap_err();
        assert_eq!(e.class, FailureClass::ScriptError);
        let e = parse_result(json!(42)).unwrap_err();
        assert_eq!(e.class, FailureClass::ScriptError);
    }

    #[test]
    fn synthetic_latency_stays_in_range_and_failure_rate_is_close() {
        let spec = TaskSpec::Synthetic { latency: Duration::from_millis(10), jitter: Duration::from_millis(4), failure_probability: 0.2 };
        let mut s = Synthetic::from_spec(&spec, 7).unwrap();
        let mut failures = 0;
        for _ in 0..10_000 {
            let d = s.draw_latency();
            assert!(d >= Duration::from_millis(6) && d <= Duration::from_millis(14), "{d:?}");
            if s.outcome().is_err() {
                failures += 1;
            }
        }
        assert!((1_700..2_300).contains(&failures), "{failures}");
    }
}
