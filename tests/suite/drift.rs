//! Drift and leak verdicts against a real Chromium (issue 24, part 2): a `page` task whose every op
//! keeps 2 MiB in a global array is flagged by `max_rss_growth_mb_per_h`; the same page without
//! the leak, three phases in a row, is not. One campaign (the browser is started once): three
//! steady phases, then the leaking one, with the drift minimum lowered so short phases are
//! analysed and the guardian sampling each browser's RSS every 500 ms.

use crate::common::*;
use serde_json::Value;
use std::time::Duration;

/// The memory growth limit the test judges with, MiB/h. The leak grows about 2 MiB per op at
/// about 4 ops/s (roughly 28 GiB/h); a steady browser's noise over 20 s stays far below this.
const LIMIT: f64 = 5000.0;

fn trend(p: &Value) -> &Value {
    &p["drift"]["browser_rss"]
}

#[test]
fn a_page_that_keeps_memory_is_flagged_and_steady_phases_are_not() {
    let _serial = BrowserLock::acquire();
    let sb = Sandbox::new("drift");
    let page = sb.write("leak.html", "<!doctype html><title>drift test</title><p>drift test</p>");
    let task = |leak: bool| {
        let keep = if leak {
            "const a = new Uint8Array(2 << 20); a.fill(window.__n & 255); (window.__keep = window.__keep || []).push(a); "
        } else {
            ""
        };
        format!(
            "think_time = \"250ms\"\n[phases.criteria]\nmax_rss_growth_mb_per_h = {LIMIT}\n[phases.task]\nkind = \"page\"\nurl = \"file://{}\"\n\
             script = '''const done = arguments[arguments.length - 1]; window.__n = (window.__n || 0) + 1; {keep}done({{ok: true, verified: true}});'''\n",
            page.display()
        )
    };
    let cfg = format!(
        "{}{}\n{}{}{}{}",
        header("drift", "drift_min_phase = \"10s\""),
        webgpu_task(32).replace("[browser]", "[browser]\nmax_ops_per_session = 100000"),
        phase("steady-1", "20s", 1, &task(false)),
        phase("steady-2", "20s", 1, &task(false)),
        phase("steady-3", "20s", 1, &task(false)),
        phase("leak", "25s", 1, &task(true)),
    )
    .replace("[safety]\n", "[safety]\nsample_interval = \"500ms\"\n");
    let cfg = sb.write("drift.toml", &cfg);
    let out = launch_leaving_nothing(&sb, &cfg, Duration::from_secs(240));
    let dir = sb.campaign_dir();
    let r = read_json(&dir.join("campaign_report.json"));
    let phases = r["phases"].as_array().expect("phases");
    assert_eq!(phases.len(), 4, "{}", out.describe());
    for p in phases {
        eprintln!("{} browser memory: {} (in-page p95: {})", p["name"], trend(p), p["drift"]["in_page_p95"]);
    }

    for p in &phases[..3] {
        let t = trend(p);
        assert!(t.is_object(), "a steady phase's memory trend: {}", p["drift"]);
        assert!(num(&t["ci_low"], "ci_low") <= LIMIT, "{}: {t}", p["name"]);
        assert!(p["criteria"]["passed"] == true, "{}: {}", p["name"], p["criteria"]);
    }
    let leak = &phases[3];
    let t = trend(leak);
    assert_eq!(t["direction"], "rising", "{t}");
    assert!(num(&t["ci_low"], "ci_low") > LIMIT, "{t}");
    assert_eq!(leak["criteria"]["passed"], false, "{}", leak["criteria"]);
    let failures: Vec<&str> = leak["criteria"]["failures"].as_array().expect("failures").iter().filter_map(Value::as_str).collect();
    assert!(
        failures.iter().any(|f| f.starts_with("browser memory grew +") && f.ends_with(&format!("above the limit of {LIMIT} MiB/h"))),
        "{failures:?}"
    );
    // 3 of 4 phases passed: the campaign's verdict (70 % of the phases) is a pass
    assert_eq!(out.code(), Some(0), "{}", out.describe());

    // in words, in every report, and rebuilt byte for byte
    let summary = std::fs::read_to_string(dir.join("summary.txt")).expect("summary");
    assert!(summary.contains("Drift and leaks") && summary.contains("browser memory +"), "{summary}");
    let junit = std::fs::read_to_string(dir.join("junit.xml")).expect("junit");
    let cases = crate::ci_outputs::validate(&junit).expect("junit.xml passes the schema checks").cases;
    let growth: Vec<&(String, Option<String>, bool)> = cases.iter().filter(|c| c.0.contains(": browser memory growth <= ")).collect();
    assert_eq!(growth.len(), 4, "a testcase per phase that sets the criterion: {cases:?}");
    assert_eq!(growth[3].0, format!("phase 4 leak: browser memory growth <= {LIMIT} MiB/h"));
    assert!(growth[3].1.as_deref().is_some_and(|m| m.starts_with("browser memory grew +")), "{:?}", growth[3]);
    assert!(growth[..3].iter().all(|c| c.1.is_none() && !c.2), "steady phases held: {growth:?}");
    let files = ["campaign_report.json", "summary.txt", "report.html", "junit.xml", "summary.md"];
    let before: Vec<Vec<u8>> = files.iter().map(|f| std::fs::read(dir.join(f)).expect(f)).collect();
    run(sb.cmd(["report", out.campaign_id().as_str()]), Duration::from_secs(60)).expect_code(0);
    let after: Vec<Vec<u8>> = files.iter().map(|f| std::fs::read(dir.join(f)).expect(f)).collect();
    for ((f, b), a) in files.iter().zip(&before).zip(&after) {
        assert!(b == a, "{f} rebuilt byte for byte");
    }
}
