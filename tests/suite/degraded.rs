//! The `exhaust_memory` fault, the recovery ladder's adjusted-settings rung and what it shrinks
//! (issue 26, parts 4 and 6), against a real Chromium on SwiftShader: the page allocates until
//! its renderer's memory (capped by stressctl) runs out, the failure is `resource_exhaustion`,
//! the adjusted-settings rung recovers it, the `webgpu` ops at the reduced matrix are reported as
//! degraded and kept out of the criteria, a `page` task's rung is a new session only and says so,
//! and a phase's own `op_timeout` is the one its ops run under.

use crate::common::*;
use serde_json::Value;
use std::time::Duration;

fn log_text(sb: &Sandbox, prefix: &str) -> String {
    let mut out = String::new();
    for e in std::fs::read_dir(&sb.logs).expect("log dir").flatten() {
        if e.file_name().to_string_lossy().starts_with(prefix) {
            out.push_str(&std::fs::read_to_string(e.path()).unwrap_or_default());
        }
    }
    out
}

#[test]
fn exhausted_memory_is_recovered_by_adjusted_settings_and_reduced_work_is_degraded() {
    let _serial = BrowserLock::acquire();
    let sb = Sandbox::new("exhaust");
    let page = sb.write("page.html", "<!doctype html><title>exhaust test</title><p>exhaust test</p>");
    // the page phases' every 50th op never answers: in phase 3 it must time out at the phase's own
    // op_timeout (1 s), not at [browser] op_timeout (10 s). Phase 2 takes its exhaust fault
    // alone: a fault during the recovery of a timeout climbs that recovery's ladder instead.
    let page_task = |hang: &str| {
        format!(
            "[phases.task]\nkind = \"page\"\nurl = \"file://{}\"\nscript = '''const done = arguments[arguments.length - 1]; \
             const n = window.__n = (window.__n || 0) + 1; if ({hang}) return; done({{ok: true, verified: true}});'''\n",
            page.display()
        )
    };
    let cfg = format!(
        "{}{}\n[recovery]\nreduced_matrix_size = 32\n\n\
         [[faults]]\nkind = \"exhaust_memory\"\nevery = \"3s\"\nlimit_mb = 128\nphases = [\"webgpu\", \"page\"]\n{}{}{}",
        header("exhaust", ""),
        webgpu_task(64),
        phase("webgpu", "9s", 1, "stress_level = \"extreme\""),
        phase("page", "5s", 1, &format!("stress_level = \"extreme\"\n{}", page_task("false"))),
        phase("timeout", "5s", 1, &format!("stress_level = \"extreme\"\nop_timeout = \"1s\"\n{}", page_task("n % 50 === 0"))),
    );
    let cfg = sb.write("e.toml", &cfg);
    let out = launch_leaving_nothing(&sb, &cfg, Duration::from_secs(150));
    assert!(matches!(out.code(), Some(0) | Some(1)), "{}", out.describe());
    let dir = sb.campaign_dir();
    let r = read_json(&dir.join("campaign_report.json"));

    // the fault limited the real renderer, and the page's allocation failed against that limit
    let injected = events_of_kind(&dir, "fault_injected");
    let exhaust: Vec<&Value> = injected.iter().filter(|e| e["data"]["kind"] == "exhaust_memory").collect();
    assert!(!exhaust.is_empty(), "no exhaust_memory fault injected: {injected:?}");
    let limited = exhaust.iter().filter(|e| e["data"]["detail"].as_str().unwrap_or_default().contains("renderers lowered")).count();
    assert!(limited >= 1, "no renderer was limited: {exhaust:?}");
    let failed = events_of_kind(&dir, "op_failed");
    let oom: Vec<&Value> = failed.iter().filter(|e| e["data"]["class"] == "resource_exhaustion").collect();
    assert!(
        oom.iter().any(|e| e["data"]["message"].as_str().unwrap_or_default().contains("out of memory: an allocation failed after")),
        "no allocation failed against the renderer's limit: {oom:?}"
    );

    // classified resource_exhaustion, recovered by the adjusted-settings rung
    let p1 = &r["phases"][0];
    assert!(count(&p1["errors_by_class"]["resource_exhaustion"], "resource_exhaustion") >= 1, "{}", p1["errors_by_class"]);
    let recovered = events_of_kind(&dir, "recovery_attempted").into_iter().any(|e| {
        e["data"]["class"] == "resource_exhaustion" && e["data"]["strategy"] == "adjusted_settings" && e["data"]["outcome"] == "succeeded"
    });
    assert!(recovered, "no successful adjusted_settings recovery of resource_exhaustion: {}", r["recoveries"]);

    // the webgpu ops at the reduced matrix are degraded, and not successes of the phase
    let d = &p1["tasks"]["webgpu"]["degraded"];
    let ops = count(&d["ops"], "degraded.ops");
    let ok = count(&d["succeeded"], "degraded.succeeded");
    assert!(ops > 0 && ok > 0 && ok <= ops, "{d}");
    assert_eq!(d["sizes"], serde_json::json!([32]), "{d}");
    assert_eq!(d["configured_size"], 64, "{d}");
    assert_eq!(d["counts_as_pass"], false, "{d}");
    assert_eq!(count(&p1["ops_succeeded_degraded"], "ops_succeeded_degraded"), ok, "{p1}");
    assert!(count(&p1["ops_succeeded"], "ops_succeeded") >= ok);
    let configured_ok = p1["ops_succeeded"].as_u64().unwrap_or(0) - ok;
    let attempted = count(&p1["ops_attempted"], "ops_attempted");
    if (configured_ok as f64) < 0.8 * attempted as f64 {
        assert_eq!(p1["criteria"]["passed"], false, "{}", p1["criteria"]);
        let why = p1["criteria"]["failures"].as_array().expect("failures");
        assert!(why.iter().any(|f| f.as_str().unwrap_or_default().contains("webgpu op(s) at a reduced matrix size")), "{why:?}");
    }
    let summary = std::fs::read_to_string(dir.join("summary.txt")).expect("summary");
    assert!(
        summary.contains("DEGRADED (recovery ladder, adjusted settings)") && summary.contains("at 32x32 instead of the configured 64x64"),
        "{summary}"
    );

    // the log says what the rung did, per task kind
    let log = log_text(&sb, "campaign_");
    assert!(log.contains("adjusted settings: a new session with a 32x32 webgpu matrix instead of the configured 64x64"), "{log}");
    assert!(log.contains("adjusted settings: a new session only; a page task has no smaller setting"), "{log}");
    assert!(log.contains(&format!("({ok} of them degraded, not counted)")), "the phase's result line must say so: {log}");

    // the timeout phase's ops ran under its own op_timeout of 1 s
    let p2 = &r["phases"][1];
    assert!(p2["tasks"]["page"]["degraded"].is_null(), "a page task has nothing to degrade: {}", p2["tasks"]["page"]);
    let timed_out = failed.iter().any(|e| {
        e["data"]["class"] == "timeout" && e["data"]["message"].as_str().unwrap_or_default().contains("within 1000 ms (op_timeout)")
    });
    assert!(
        timed_out,
        "no op timed out at the phase's 1 s op_timeout: {:?}",
        failed.iter().map(|e| &e["data"]["message"]).collect::<Vec<_>>()
    );
}

/// With `[recovery] degraded_counts_as_pass = true` the reduced work is still reported as
/// degraded, but counts towards the phase's criteria and the verdict.
#[test]
fn degraded_work_counts_towards_a_pass_only_when_configured_to() {
    let _serial = BrowserLock::acquire();
    let sb = Sandbox::new("degraded-pass");
    let cfg = format!(
        "{}{}\n[recovery]\nreduced_matrix_size = 32\ndegraded_counts_as_pass = true\n\n\
         [[faults]]\nkind = \"exhaust_memory\"\nevery = \"2s\"\nlimit_mb = 64\n{}",
        header("degraded-pass", ""),
        webgpu_task(64),
        phase("webgpu", "6s", 1, "stress_level = \"extreme\"\n[phases.criteria]\nmax_p95 = \"30s\""),
    );
    let cfg = sb.write("d.toml", &cfg);
    let out = launch_leaving_nothing(&sb, &cfg, Duration::from_secs(120));
    let r = read_json(&sb.campaign_dir().join("campaign_report.json"));
    let p = &r["phases"][0];
    let d = &p["tasks"]["webgpu"]["degraded"];
    assert!(count(&d["succeeded"], "degraded.succeeded") > 0, "{d}");
    assert_eq!(d["counts_as_pass"], true, "{d}");
    assert!(p["ops_succeeded_degraded"].is_null(), "nothing is left out: {p}");
    // the few exhausted ops fail; everything else, degraded or not, counts
    assert_eq!(p["criteria"]["passed"], true, "{}", p["criteria"]);
    out.expect_code(0);
    assert_eq!(r["verdict"]["passed"], true, "{}", r["verdict"]);
    let summary = std::fs::read_to_string(sb.campaign_dir().join("summary.txt")).expect("summary");
    assert!(summary.contains("counted as successes ([recovery] degraded_counts_as_pass)"), "{summary}");
}
