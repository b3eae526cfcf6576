//! Batched op transport: one WebDriver call runs a short run of ops back to back inside the page.
//!
//! A round trip through the driver (HTTP, the driver's script wrapper, JSON) costs a few
//! milliseconds of CPU that a saturated machine takes from the workload. The page therefore runs
//! up to `[browser] batch_max_ops` ops per call (default 32), starting no new op after
//! `[browser] batch_budget` of work (default 500 ms), and answers
//! every op's outcome, failure class, message and in-page time (`performance.now()` around the
//! op) in one answer. The rules that keep every op accounted for:
//!
//! - the run stops at the first op that fails, so a failure is always the last op of its batch:
//!   the slot records it (breakers, ladder) before any further op starts;
//! - every op races its own in-page deadline of `op_timeout`: a hung op answers as one failed op
//!   of class `timeout` at `op_timeout`, and the ops before it are in the same answer;
//! - the slot takes one breaker permit per op before the call, so the batch never runs more
//!   ops than the breakers allowed (half-open probes included).
//!
//! The runner counts the browser's console entries against each op ([`super::console`]).

use super::{parse_result, OpOk, PageFault};
use crate::browser::adapter::AdapterMode;
use crate::config::TaskSpec;
use crate::recovery::classify_cmd_error;
use crate::recovery::{FailureClass, OpError};
use serde_json::{json, Value};
use std::time::Duration;

/// Extra script timeout the driver gets beyond `op_timeout` and the batch budget: the last op of
/// a batch starts less than `batch_budget` after the call and its in-page deadline is
/// `op_timeout` after its start. A page too frozen to run its own timers is caught by the driver
/// after this.
pub const SCRIPT_TIMEOUT_SLACK: Duration = Duration::from_secs(1);

/// The in-page loop. `OP` is replaced by a function `(spec) => Promise<result>`.
const RUNNER: &str = r#"const done = arguments[arguments.length - 1];
const specs = arguments[0], budget = arguments[1], timeout = arguments[2];
const now = () => performance.now();
const out = [], t0 = now();
const bad = (cls, m) => ({ok: false, class: cls, message: String(m)});
CONSOLE
let op;
try { op = OP; } catch (e) { op = () => bad('script_error', (e && e.stack) || e); }
(async () => {
  for (let i = 0; i < specs.length; i++) {
    if (i > 0 && now() - t0 >= budget) break;
    let timer, r;
    const s = now();
    const late = new Promise((res) => { timer = setTimeout(() => res(bad('timeout',
      'op timed out: no answer from the page within ' + timeout + ' ms (op_timeout)')), timeout); });
    try { r = await Promise.race([Promise.resolve().then(() => op(specs[i])), late]); }
    catch (e) { r = bad('script_error', (e && e.stack) || e); }
    clearTimeout(timer);
    const el = now() - s;
    if (!r || typeof r !== 'object') r = bad('script_error', 'bad result: ' + String(r));
    const o = {ok: r.ok, verified: r.verified, class: r.class, message: r.message,
               in_page_ms: (typeof r.elapsed_ms === 'number' && r.elapsed_ms >= 0 && r.elapsed_ms <= el) ? r.elapsed_ms : el};
    if (i === 0) { o.adapter = r.adapter; o.backend = r.backend; o.adapter_retries = r.adapter_retries; }
    else if (r.adapter_retries) o.adapter_retries = r.adapter_retries;
    await consoleTo(o, r.ok !== true);
    out.push(o);
    if (r.ok !== true) break;
  }
  done({batch: out});
})();"#;

/// The op of the embedded test page's tasks: `window.stressctl[fn](spec)`.
const PAGE_OP: &str = r#"((s) => (typeof s === 'object' && s && typeof s[specs[0].fn] === 'function')
  ? (spec) => s[spec.fn](spec)
  : () => bad('script_error', s ? 'unknown stressctl function: ' + specs[0].fn : 'test page not loaded'))(window.stressctl)"#;

/// One op of a batch as the page answered it.
#[derive(Debug)]
pub struct BatchOp {
    /// Outcome and failure class.
    pub result: Result<OpOk, OpError>,
    /// Time the page measured around the op (`elapsed_ms` of a `page` task's own answer when it
    /// gave one and it is plausible, else the wrapper's).
    pub in_page: Option<Duration>,
}

/// The script and per-op specs of `n` ops of `task` (None for tasks that are not batched: the
/// `model` task, whose session set-up is its own call, and `synthetic`).
pub fn batch_script(task: &TaskSpec) -> Option<String> {
    let runner = RUNNER.replacen("CONSOLE\n", &super::console::prelude(), 1);
    match task {
        TaskSpec::Webgpu { .. } | TaskSpec::Webnn => Some(runner.replacen("op = OP;", &format!("op = {PAGE_OP};"), 1)),
        TaskSpec::Page { script, .. } => {
            // the user's Execute Async body, called once per op: it may answer through its last
            // argument (the callback) or return a promise
            let op = format!(
                "(spec) => new Promise((res, rej) => {{ const r = (function() {{\n{script}\n}}).call(window, res); if (r && typeof r.then === 'function') r.then(res, rej); }})"
            );
            Some(runner.replacen("op = OP;", &format!("op = {op};"), 1))
        }
        TaskSpec::Model(_) | TaskSpec::Synthetic { .. } => None,
    }
}

/// The spec of one op of the embedded page's tasks (empty for `page` tasks).
pub fn op_spec(task: &TaskSpec, matrix_size: u32, seed: u32, fault: Option<PageFault>, adapter: AdapterMode) -> Value {
    let mut spec = match task {
        TaskSpec::Webgpu { .. } => json!({"fn": "webgpu", "size": matrix_size, "seed": seed, "adapter": adapter.as_str()}),
        TaskSpec::Webnn => json!({"fn": "webnn", "seed": seed}),
        _ => json!({}),
    };
    if let Some(f) = fault {
        spec["fault"] = json!(f.as_str());
    }
    spec
}

/// Runs `specs` (one per op, at least one) through `script` in one call, starting no op after
/// `budget` of in-page time but the first. `Err` is a failure of the call itself (driver gone,
/// script timeout): it belongs to the first op that did not answer.
pub async fn run_batch(
    client: &fantoccini::Client,
    script: &str,
    specs: Vec<Value>,
    budget: Duration,
    op_timeout: Duration,
) -> Result<Vec<BatchOp>, OpError> {
    let n = specs.len();
    let args = vec![Value::Array(specs), json!(budget.as_millis() as u64), json!(op_timeout.as_millis() as u64)];
    let v = client.execute_async(script, args).await.map_err(classify_cmd_error)?;
    parse_batch(v, n)
}

/// Interprets the page's answer to a batch of `n` ops: 1 to `n` ops, every one but the last a
/// success.
pub fn parse_batch(v: Value, n: usize) -> Result<Vec<BatchOp>, OpError> {
    let Some(items) = v.get("batch").and_then(Value::as_array) else {
        return Err(OpError::new(FailureClass::ScriptError, "the page answered a batch without `batch`"));
    };
    if items.is_empty() || items.len() > n {
        return Err(OpError::new(FailureClass::ScriptError, format!("the page answered {} ops to a batch of {n}", items.len())));
    }
    Ok(items
        .iter()
        .map(|it| BatchOp {
            in_page: it
                .get("in_page_ms")
                .and_then(Value::as_f64)
                .filter(|ms| ms.is_finite() && *ms >= 0.0)
                .map(|ms| Duration::from_secs_f64(ms / 1000.0)),
            result: parse_result(it.clone()),
        })
        .collect())
}

/// Each op's round-trip latency in a call that took `call`: its own in-page time plus an equal
/// share of the call's overhead (driver, JSON, the gaps between ops). So `in_page <= round_trip`
/// for every op, and the round trips add up to the call's time.
pub fn round_trips(call: Duration, in_page: &[Option<Duration>]) -> Vec<Duration> {
    if in_page.is_empty() {
        return Vec::new();
    }
    let work: Duration = in_page.iter().flatten().sum();
    let share = call.saturating_sub(work) / in_page.len() as u32;
    in_page.iter().map(|d| d.unwrap_or(Duration::ZERO) + share).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_share_the_overhead_and_never_undercut_in_page() {
        let ms = Duration::from_millis;
        let rt = round_trips(ms(40), &[Some(ms(10)), Some(ms(20)), None]);
        assert_eq!(
            rt,
            vec![ms(13) + Duration::from_nanos(333_333), ms(23) + Duration::from_nanos(333_333), ms(3) + Duration::from_nanos(333_333)]
        );
        // a call shorter than the page's own sum (clock granularity): no overhead, never less
        assert_eq!(round_trips(ms(5), &[Some(ms(6))]), vec![ms(6)]);
        assert!(round_trips(ms(5), &[]).is_empty());
    }

    #[test]
    fn parses_a_batch_that_ends_in_a_failure() {
        let v = json!({"batch": [
            {"ok": true, "verified": true, "in_page_ms": 2.5, "adapter": {"kind": "software"}},
            {"ok": false, "class": "timeout", "message": "op timed out", "in_page_ms": 1000.0},
        ]});
        let ops = parse_batch(v, 4).unwrap();
        assert_eq!(ops.len(), 2);
        assert!(ops[0].result.as_ref().unwrap().verified);
        assert_eq!(ops[0].in_page, Some(Duration::from_micros(2500)));
        assert_eq!(ops[1].result.as_ref().unwrap_err().class, FailureClass::Timeout);
        assert!(parse_batch(json!({"batch": []}), 4).is_err());
        assert!(parse_batch(json!({"batch": [{"ok": true}, {"ok": true}]}), 1).is_err());
        assert!(parse_batch(json!({"ok": false}), 1).is_err());
    }

    #[test]
    fn only_page_tasks_are_batched() {
        assert!(batch_script(&TaskSpec::Webnn).is_some());
        let page = TaskSpec::Page { url: "http://127.0.0.1/".into(), script: "arguments[0]({ok: true})".into() };
        let s = batch_script(&page).unwrap();
        assert!(s.contains("arguments[0]({ok: true})") && !s.contains("= OP;"));
        assert!(batch_script(&TaskSpec::Synthetic { latency: Duration::ZERO, jitter: Duration::ZERO, failure_probability: 0.0 }).is_none());
    }
}
