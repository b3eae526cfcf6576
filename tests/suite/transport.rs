//! The batched op transport against real Chromium: a hang inside a batch is one failed op,
//! detected within `op_timeout` + 1 s, with the ops before it counted; a breaker that opens on an
//! op of a batch stops the worker's ops at once; both latencies are reported, in-page below round
//! trip, and `max_p95` judges the in-page one; a page script's own `elapsed_ms` is its in-page
//! time; the browser's console errors, uncaught exceptions and WebGPU validation errors reach the
//! failing op's event and the report with the browser's text.

use crate::common::*;
use serde_json::Value;
use std::time::Duration;

/// A `page` task on a local file whose script counts its calls in `window.__n` and runs `body`
/// (JS, with `n` the call number and `done` the callback) on each.
fn page_task(sb: &Sandbox, body: &str, extra_browser: &str) -> String {
    let page = sb.write("page.html", "<!doctype html><title>transport test</title><p>transport test</p>");
    let script = format!("const done = arguments[arguments.length - 1]; const n = window.__n = (window.__n || 0) + 1; {body}");
    format!(
        "\n[task]\nkind = \"page\"\nurl = \"file://{}\"\nscript = '''{script}'''\n\n[browser]\nsession_timeout = \"30s\"\n{extra_browser}\n",
        page.display()
    )
}

fn only_phase(r: &Value) -> &Value {
    let phases = r["phases"].as_array().expect("phases");
    assert_eq!(phases.len(), 1, "{r}");
    &phases[0]
}

#[test]
fn a_hang_inside_a_batch_is_one_failed_op_detected_within_op_timeout_plus_1s() {
    let _serial = BrowserLock::acquire();
    let sb = Sandbox::new("tr-hang");
    // the 5th call never answers: the 4 before it ran in the same batch
    // one session all along (no recycling), so there is one 5th call
    let task =
        page_task(&sb, "if (n === 5) return; done({ok: true, verified: true});", "op_timeout = \"2s\"\nmax_ops_per_session = 1000000");
    let cfg = sb.write("c.toml", &format!("{}{}{}", header("hang", ""), task, phase("p", "6s", 1, "stress_level = \"low\"")));
    let out = launch_leaving_nothing(&sb, &cfg, Duration::from_secs(120));
    let r = read_json(&sb.campaign_dir().join("campaign_report.json"));
    let p = only_phase(&r);
    assert_eq!(p["errors_by_class"], serde_json::json!({"timeout": 1}), "{}\n{p}", out.describe());
    assert_eq!(p["ops_failed"], 1, "{p}");
    assert!(count(&p["ops_succeeded"], "ops_succeeded") >= 4, "{p}");
    // the hung op: timed out in the page at op_timeout, answered well within op_timeout + 1 s
    let (ip, rt) = (&p["in_page_latency_ms"], &p["latency_ms"]);
    assert!(num(&ip["max"], "in_page max") >= 1990.0, "{ip}");
    assert!(num(&rt["max"], "round_trip max") < 3000.0, "hang detected after {} ms\n{rt}", rt["max"]);
    let failed = events_of_kind(&sb.campaign_dir(), "op_failed");
    assert_eq!(failed.len(), 1, "{failed:?}");
    assert!(failed[0].to_string().contains("no answer from the page within 2000 ms"), "{}", failed[0]);
}

#[test]
fn a_breaker_that_opens_on_an_op_of_a_batch_stops_the_ops_at_once() {
    let _serial = BrowserLock::acquire();
    let sb = Sandbox::new("tr-breaker");
    // the 3rd op fails; the task breaker opens on it and stays open past the phase
    let task = page_task(
        &sb,
        "done(n === 3 ? {ok: false, class: 'script_error', message: 'third op fails'} : {ok: true});",
        "op_timeout = \"5s\"",
    );
    let breaker = "\n[breaker]\nrecovery_timeout = \"60s\"\nmax_recovery_timeout = \"60s\"\n[breaker.task]\nfailure_threshold = 1\n";
    let cfg = sb.write("c.toml", &format!("{}{}{}{}", header("brk", ""), task, breaker, phase("p", "4s", 1, "stress_level = \"low\"")));
    let out = launch_leaving_nothing(&sb, &cfg, Duration::from_secs(120));
    let r = read_json(&sb.campaign_dir().join("campaign_report.json"));
    let p = only_phase(&r);
    // a batch of up to 32 would have run on; the page stopped at the failure and nothing ran after
    assert_eq!((count(&p["ops_attempted"], "attempted"), count(&p["ops_failed"], "failed")), (3, 1), "{}\n{p}", out.describe());
    assert_eq!(p["errors_by_class"], serde_json::json!({"script_error": 1}));
    let events = read_events(&sb.campaign_dir().join("events.jsonl"));
    assert!(events.iter().any(|e| e["kind"] == "breaker_transition" && e.to_string().contains("task:page")), "no task breaker transition");
}

#[test]
fn batch_budget_and_batch_max_ops_bound_the_ops_of_one_call() {
    let _serial = BrowserLock::acquire();
    // `specs` is the batch runner's list of the call's ops, in scope of the user's script: an op in
    // a call longer than `max` fails; the 30th op fails on purpose, naming the longest call seen
    for (name, extra, max) in [("one", "batch_budget = \"0s\"", 1), ("three", "batch_max_ops = 3", 3)] {
        let sb = Sandbox::new(&format!("tr-batch-{name}"));
        let body = format!(
            "const b = window.__maxb = Math.max(window.__maxb || 0, specs.length); \
             done(specs.length > {max} ? {{ok: false, class: 'script_error', message: 'a call of ' + specs.length + ' ops'}} \
             : n === 30 ? {{ok: false, class: 'script_error', message: 'longest call ' + b}} : {{ok: true, verified: true}});"
        );
        let task = page_task(&sb, &body, &format!("op_timeout = \"5s\"\nmax_ops_per_session = 1000000\n{extra}"));
        let cfg = sb.write("c.toml", &format!("{}{}{}", header(name, ""), task, phase("p", "4s", 1, "stress_level = \"low\"")));
        let before = snapshot();
        let out = run_marked(sb.launch(&cfg), &sb.root, Duration::from_secs(120));
        assert_no_orphans(&before, &sb.root);
        let dir = sb.campaign_dir();
        let r = read_json(&dir.join("campaign_report.json"));
        let p = only_phase(&r);
        assert!(count(&p["ops_attempted"], "attempted") > 30, "{name}: {}\n{p}", out.describe());
        assert_eq!(count(&p["ops_failed"], "failed"), 1, "{name}: {p}");
        let failed = events_of_kind(&dir, "op_failed");
        assert_eq!(failed.len(), 1, "{failed:?}");
        assert!(failed[0].to_string().contains(&format!("longest call {max}")), "{name}: {}", failed[0]);
    }
}

#[test]
fn both_latencies_are_reported_ordered_and_max_p95_judges_in_page() {
    let _serial = BrowserLock::acquire();
    let sb = Sandbox::new("tr-latency");
    let lenient = "stress_level = \"low\"\n[phases.criteria]\nmax_p95 = \"30s\"";
    let cfg = sb.write("c.toml", &format!("{}{}{}", header("lat", ""), webgpu_task(32), phase("p", "4s", 2, lenient)));
    let out = launch_leaving_nothing(&sb, &cfg, Duration::from_secs(120));
    out.expect_code(0);
    let dir = sb.campaign_dir();
    let r = read_json(&dir.join("campaign_report.json"));
    let p = only_phase(&r);
    assert!(count(&p["ops_succeeded"], "ops") > 0 && p["ops_failed"] == 0, "{p}");
    for (what, l) in [("phase", p), ("task", &p["tasks"]["webgpu"])] {
        let (ip, rt) = (&l["in_page_latency_ms"], &l["latency_ms"]);
        assert_percentiles_ordered(ip, &format!("{what} in_page"));
        assert_percentiles_ordered(rt, &format!("{what} round_trip"));
        for k in ["p50", "p90", "p95", "p99", "max"] {
            assert!(num(&ip[k], k) > 0.0 && num(&ip[k], k) <= num(&rt[k], k), "{what} {k}: in_page {ip} round_trip {rt}");
        }
    }
    assert_eq!(p["criteria"]["p95_basis"], "in_page");
    let summary = std::fs::read_to_string(dir.join("summary.txt")).unwrap();
    assert!(summary.contains("latency per phase and task") && summary.contains("in_page") && summary.contains("round_trip"), "{summary}");
}

#[test]
fn a_page_scripts_own_elapsed_ms_is_its_in_page_latency() {
    let _serial = BrowserLock::acquire();
    let sb = Sandbox::new("tr-elapsed");
    // 25 ms of work around a 1.5 ms measured section: the page says 1.5, the driver sees >= 25;
    // every 3rd op claims more than the wrapper measured: implausible, the wrapper's time is used
    let task = page_task(
        &sb,
        "const t = performance.now(); while (performance.now() - t < 25) {} done({ok: true, elapsed_ms: n % 3 === 0 ? 60000 : 1.5});",
        "op_timeout = \"5s\"",
    );
    let cfg = sb.write("c.toml", &format!("{}{}{}", header("elapsed", ""), task, phase("p", "3s", 1, "stress_level = \"low\"")));
    let out = launch_leaving_nothing(&sb, &cfg, Duration::from_secs(120));
    out.expect_code(0);
    let r = read_json(&sb.campaign_dir().join("campaign_report.json"));
    let p = only_phase(&r);
    assert!(count(&p["ops_succeeded"], "ops") >= 6 && p["ops_failed"] == 0, "{p}");
    let (ip, rt) = (&p["in_page_latency_ms"], &p["latency_ms"]);
    // two thirds of the ops answered 1.5 ms (the histogram's resolution is 1 %)
    assert!((num(&ip["p50"], "in_page p50") - 1.5).abs() < 0.05, "{ip}");
    // the implausible third: the wrapper's own time (>= 25 ms), never the 60 s claimed
    assert!((25.0..1000.0).contains(&num(&ip["max"], "in_page max")), "{ip}");
    // the round trips share each call's time out: on average at least the 25 ms of work per op
    assert!(num(&rt["mean"], "round_trip mean") >= 25.0, "{rt}");
}

#[test]
fn console_errors_and_webgpu_errors_reach_the_failing_ops_event_and_the_report() {
    let _serial = BrowserLock::acquire();
    let sb = Sandbox::new("tr-console");
    // op 2 succeeds but logs a console error; op 4 makes a WebGPU validation error (a buffer
    // both MAP_READ and MAP_WRITE), throws an uncaught error from a timer and then fails
    let body = r#"
if (n === 2) { console.error('boom from op', n); done({ok: true}); return; }
if (n !== 4) { done({ok: true}); return; }
(async () => {
  const adapter = await navigator.gpu.requestAdapter();
  const device = await adapter.requestDevice();
  device.createBuffer({size: 16, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.MAP_WRITE});
  window.lateThrow('late uncaught from op 4');
  await device.queue.onSubmittedWorkDone();
  await new Promise((r) => setTimeout(r, 200));
  done({ok: false, class: 'gpu_error', message: 'op 4 made an invalid buffer'});
})();"#;
    let task = page_task(&sb, body, "op_timeout = \"10s\"\nmax_ops_per_session = 1000000");
    // the timer that throws is the page's own: an error thrown by a script WebDriver injected
    // reaches the page as "Script error." (no origin), one from the page's script in full
    sb.write(
        "page.html",
        "<!doctype html><title>transport test</title><p>transport test</p>\n<script>window.lateThrow = (m) => setTimeout(() => { throw new Error(m); }, 0);</script>",
    );
    let lenient = "stress_level = \"low\"\n[phases.criteria]\nmin_success_rate = 0.5";
    let cfg = sb.write("c.toml", &format!("{}{}{}", header("console", ""), task, phase("p", "4s", 1, lenient)));
    let out = launch_leaving_nothing(&sb, &cfg, Duration::from_secs(120));
    let dir = sb.campaign_dir();
    let failed = events_of_kind(&dir, "op_failed");
    assert_eq!(failed.len(), 1, "{}\n{failed:?}", out.describe());
    let console = console_of(&failed[0]);
    // the browser's own validation message, and the uncaught error's stack
    assert!(console.iter().any(|c| c.starts_with("webgpu error: ") && c.to_lowercase().contains("usage")), "{console:?}");
    assert!(console.iter().any(|c| c.starts_with("uncaught: ") && c.contains("late uncaught from op 4")), "{console:?}");
    let logged = events_of_kind(&dir, "page_console");
    assert_eq!(logged.len(), 1, "{logged:?}");
    assert_eq!(logged[0]["data"]["entries"], serde_json::json!(["console.error: boom from op 2"]), "{}", logged[0]);
    let r = read_json(&dir.join("campaign_report.json"));
    let b = &only_phase(&r)["browser_console"];
    assert_eq!(count(&b["entries"], "console entries"), 3, "{b}");
    let texts = b["top"].to_string();
    assert!(texts.contains("boom from op 2") && texts.contains("webgpu error: ") && texts.contains("late uncaught"), "{b}");
    let summary = std::fs::read_to_string(dir.join("summary.txt")).unwrap();
    assert!(summary.contains("Browser console") && summary.contains("webgpu error: "), "{summary}");
}
