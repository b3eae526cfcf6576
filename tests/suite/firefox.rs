//! The browser matrix for real (issue 11): Firefox ESR through geckodriver beside Chromium,
//! per-browser results and breakers, a Firefox driver killed for good, the hardware adapter
//! asked for on a machine without a GPU, and WebNN where no browser here has it. Every test ends
//! by asserting that no browser or driver process it could have started is left (Firefox and
//! geckodriver included).

use crate::common::*;
use serde_json::Value;
use std::time::Duration;

/// A 4–6 s phase on a busy 2-core machine, with two browsers starting: correctness, not speed.
const LENIENT: &str = "stress_level = \"low\"\n[phases.criteria]\nmax_p95 = \"30s\"";

fn two_browsers(extra_ff: &str) -> String {
    format!(
        r#"
[[workers]]
id = "c1"
managed = true

[[workers]]
id = "ff"
managed = true
browser = "firefox"
{extra_ff}
"#
    )
}

/// The campaign's report of sandbox `sb` (a `check` beside it leaves a `check-…` dir too).
fn campaign_report(sb: &Sandbox) -> Value {
    let dirs: Vec<_> =
        sb.campaign_dirs().into_iter().filter(|d| !d.file_name().is_some_and(|n| n.to_string_lossy().starts_with("check-"))).collect();
    assert_eq!(dirs.len(), 1, "expected one campaign dir: {dirs:?}");
    read_json(&dirs[0].join("campaign_report.json"))
}

fn transitions(r: &Value) -> Vec<&Value> {
    r["breakers"]["transitions"].as_array().map(|a| a.iter().collect()).unwrap_or_default()
}

#[test]
fn chromium_and_firefox_workers_pass_with_per_browser_results_and_breakers() {
    let _serial = BrowserLock::acquire();
    let sb = Sandbox::new("ff-pass");
    let phases = format!(
        "{}{}",
        phase("both", "6s", 2, &format!("browsers = [\"chromium\", \"firefox\"]\n{LENIENT}")),
        phase("spread", "5s", 2, LENIENT)
    );
    let cfg = sb.write("ff.toml", &format!("{}{}{}{}", header("ff", ""), webgpu_task(32), two_browsers(""), phases));
    let out = launch_leaving_nothing(&sb, &cfg, Duration::from_secs(150));
    out.expect_code(0);
    let r = read_json(&sb.campaign_dir().join("campaign_report.json"));
    assert_eq!(r["outcome"], "passed", "{}", out.describe());
    for p in r["phases"].as_array().expect("phases") {
        let name = p["name"].as_str().unwrap_or("?");
        for b in ["chromium", "firefox"] {
            let br = &p["browsers"][b];
            let ok = count(&br["ops_succeeded"], "ops_succeeded");
            assert!(ok > 0, "phase {name}: no successful {b} op: {}", p["browsers"]);
            // every successful WebGPU op is checked against the CPU reference, in Firefox too
            assert_eq!(count(&br["verified"], "verified"), ok, "phase {name}, {b}");
            assert_eq!(br["adapter"]["kind"], "software", "phase {name}, {b}: {}", br["adapter"]);
            assert!(br["latency_ms"]["p95"].as_f64().is_some_and(|v| v > 0.0), "phase {name}, {b}: {br}");
        }
        // Firefox exposes no adapter strings: they are null (the report says so), never blanks
        let ff = &p["browsers"]["firefox"]["adapter"];
        assert!(ff["vendor"].is_null() && ff["limits"]["maxBufferSize"].as_u64().is_some(), "{ff}");
        assert_eq!(p["browsers"]["chromium"]["adapter"]["architecture"], "swiftshader");
    }
    let fin = &r["breakers"]["final"];
    for key in [("browsers", "chromium"), ("browsers", "firefox"), ("workers", "c1"), ("workers", "ff")] {
        assert!(fin[key.0][key.1].is_object(), "breaker {key:?} missing: {fin}");
    }
    let summary = std::fs::read_to_string(sb.campaign_dir().join("summary.txt")).expect("summary.txt");
    assert!(summary.contains("per browser:") && summary.contains("    firefox "), "{summary}");
    assert!(
        summary.contains("firefox: software adapter: vendor, architecture, device and description not exposed by the browser"),
        "{summary}"
    );
}

#[test]
fn firefox_driver_killed_for_good_opens_its_breaker_and_work_moves_to_chromium() {
    let _serial = BrowserLock::acquire();
    let sb = Sandbox::new("ff-kill");
    let faults = r#"
[[faults]]
kind = "kill_driver"
worker = "ff"
every = "5s"
permanent = true
phases = ["one"]
"#;
    let phases = format!(
        "{}{}",
        phase("one", "8s", 2, LENIENT),
        phase("two", "6s", 2, "stress_level = \"low\"\n[phases.criteria]\nmax_p95 = \"30s\"\nmin_success_rate = 0.5")
    );
    let cfg = sb.write("k.toml", &format!("{}{}{}{}{}", header("ffkill", ""), webgpu_task(32), two_browsers(""), phases, faults));
    let out = launch_leaving_nothing(&sb, &cfg, Duration::from_secs(180));
    let r = read_json(&sb.campaign_dir().join("campaign_report.json"));
    let ts = transitions(&r);
    assert!(ts.iter().any(|t| t["key"] == "worker:ff" && t["to"] == "open"), "worker:ff never opened: {:?}\n{}", ts, out.describe());
    let two = &r["phases"][1];
    let on_chromium = count(&two["browsers"]["chromium"]["ops_succeeded"], "chromium ops");
    let on_firefox = two["browsers"]["firefox"]["ops_succeeded"].as_u64().unwrap_or(0);
    assert!(on_chromium > 0 && on_firefox == 0, "phase two should run on chromium only: {}", two["browsers"]);
    let injected = r["phases"][0]["faults_injected"]["kill_driver"].as_u64().unwrap_or(0);
    assert!(injected >= 1, "no kill_driver injected: {}", r["phases"][0]);
    out.expect_code(0);
}

#[test]
fn hardware_adapter_without_a_gpu_fails_check_and_every_op_as_gpu_error() {
    let _serial = BrowserLock::acquire();
    let sb = Sandbox::new("ff-hw");
    let workers =
        format!("\n[browser]\nwebgpu_adapter = \"hardware\"\nop_timeout = \"10s\"\nsession_timeout = \"30s\"\n{}", two_browsers(""));
    let task = "\n[task]\nkind = \"webgpu\"\nmatrix_size = 32\n";
    let phases = phase("hw", "5s", 3, "browsers = [\"chromium\", \"firefox\"]\nstress_level = \"low\"");
    let cfg = sb.write("hw.toml", &format!("{}{}{}{}", header("hw", ""), task, workers, phases));
    let before = snapshot();

    let check =
        run_marked(sb.cmd([std::ffi::OsStr::new("check"), "--config".as_ref(), cfg.as_os_str()]), &sb.root, Duration::from_secs(120));
    assert_no_orphans(&before, &sb.root);
    check.expect_code(1);
    for b in ["chromium", "firefox"] {
        let line = check.stdout.lines().find(|l| l.contains(&format!("webgpu adapter ({b})"))).unwrap_or_default();
        assert!(line.starts_with('✗') && line.contains("no hardware WebGPU adapter"), "{b}: {line:?}\n{}", check.describe());
    }

    let out = run_marked(sb.launch(&cfg), &sb.root, Duration::from_secs(150));
    assert_no_orphans(&before, &sb.root);
    out.expect_code(1);
    let r = campaign_report(&sb);
    let p = &r["phases"][0];
    for b in ["chromium", "firefox"] {
        let br = &p["browsers"][b];
        assert_eq!(br["ops_succeeded"], 0, "{b}: an op passed without a hardware adapter: {br}");
        assert!(count(&br["errors_by_class"]["gpu_error"], "gpu_error") > 0, "{b}: {br}");
    }
    let msgs: Vec<&str> = p["top_errors"].as_array().expect("top_errors").iter().filter_map(|e| e["message"].as_str()).collect();
    assert!(msgs.iter().any(|m| m.contains("no hardware WebGPU adapter")), "{msgs:?}");
}

#[test]
fn auto_adapter_falls_back_to_software_and_says_so() {
    let _serial = BrowserLock::acquire();
    let sb = Sandbox::new("ff-auto");
    let workers = "\n[[workers]]\nid = \"auto\"\nmanaged = true\nwebgpu_adapter = \"auto\"\n";
    let cfg = sb.write("auto.toml", &format!("{}{}{}{}", header("auto", ""), webgpu_task(32), workers, phase("one", "4s", 1, LENIENT)));
    let out = launch_leaving_nothing(&sb, &cfg, Duration::from_secs(120));
    out.expect_code(0);
    let r = read_json(&sb.campaign_dir().join("campaign_report.json"));
    let a = &r["phases"][0]["browsers"]["chromium"]["adapter"];
    assert_eq!(a["kind"], "software", "{a}");
    assert_eq!(a["webgpu_adapter"], "auto", "{a}");
    // Chromium names its GPU on chrome://gpu: SwiftShader here
    assert!(a["gpu_name"].as_str().is_some_and(|n| n.contains("SwiftShader")), "{a}");
}

#[test]
fn a_webnn_phase_is_unsupported_on_each_browser_with_its_message() {
    let _serial = BrowserLock::acquire();
    let sb = Sandbox::new("ff-webnn");
    let phases = format!(
        "{}{}",
        phase("gpu", "4s", 2, &format!("browsers = [\"chromium\", \"firefox\"]\n{LENIENT}")),
        phase("nn", "4s", 2, "browsers = [\"chromium\", \"firefox\"]\ntask = { kind = \"webnn\" }")
    );
    let cfg = sb.write("nn.toml", &format!("{}{}{}{}", header("nn", ""), webgpu_task(32), two_browsers(""), phases));
    let out = launch_leaving_nothing(&sb, &cfg, Duration::from_secs(150));
    // the unsupported phase is left out of the verdict: the campaign passes on its WebGPU phase
    out.expect_code(0);
    let r = read_json(&sb.campaign_dir().join("campaign_report.json"));
    let nn = &r["phases"][1];
    assert_eq!(nn["criteria"]["unsupported"], true, "{}", nn["criteria"]);
    assert_eq!(nn["ops_succeeded"], 0);
    let unsupported = r["unsupported"].as_array().expect("unsupported");
    let said =
        |b: &str, what: &str| unsupported.iter().any(|u| u["browser"] == b && u["message"].as_str().is_some_and(|m| m.contains(what)));
    assert!(said("chromium", "not supported on this platform"), "{unsupported:?}");
    assert!(said("firefox", "navigator.ml is not available"), "{unsupported:?}");
    assert!(out.stdout.contains("UNSUPPORTED"), "{}", out.describe());
}

#[test]
fn a_missing_geckodriver_fails_check_and_opens_the_workers_breaker() {
    let _serial = BrowserLock::acquire();
    let sb = Sandbox::new("ff-nogecko");
    let browser =
        "\n[browser]\ngeckodriver = \"/nonexistent/stressctl-test/geckodriver\"\nop_timeout = \"10s\"\nsession_timeout = \"30s\"\n";
    let task = "\n[task]\nkind = \"webgpu\"\nmatrix_size = 32\n";
    let cfg = sb.write(
        "g.toml",
        &format!(
            "{}{}{}{}{}",
            header("nogecko", ""),
            task,
            browser,
            two_browsers(""),
            phase("one", "5s", 2, "browsers = [\"firefox\"]\nstress_level = \"low\"")
        ),
    );
    let before = snapshot();
    let check =
        run_marked(sb.cmd([std::ffi::OsStr::new("check"), "--config".as_ref(), cfg.as_os_str()]), &sb.root, Duration::from_secs(120));
    check.expect_code(1);
    let line = check.stdout.lines().find(|l| l.contains("geckodriver")).unwrap_or_default();
    assert!(line.starts_with('✗') && line.contains("/nonexistent/stressctl-test/geckodriver"), "{line:?}\n{}", check.describe());

    let out = run_marked(sb.launch(&cfg), &sb.root, Duration::from_secs(60));
    assert_no_orphans(&before, &sb.root);
    out.expect_code(1);
    let r = campaign_report(&sb);
    assert!(transitions(&r).iter().any(|t| t["key"] == "worker:ff" && t["to"] == "open"), "{}", r["breakers"]);
    assert!(count(&r["phases"][0]["errors_by_class"]["launch_failure"], "launch failures") > 0, "{}", r["phases"][0]);
}

#[test]
fn unknown_browser_and_adapter_values_exit_2_naming_the_key_and_the_choices() {
    let sb = Sandbox::new("ff-badcfg");
    for (bad, key, allowed) in [
        ("[[workers]]\nid = \"x\"\nmanaged = true\nbrowser = \"safari\"\n", "browser", "expected `chromium` or `firefox`"),
        ("[browser]\nwebgpu_adapter = \"gpu\"\n", "webgpu_adapter", "expected one of `software`, `hardware`, `auto`"),
    ] {
        let cfg = sb.write("bad.toml", &format!("{}{}\n{}", header("bad", ""), bad, phase("one", "1s", 1, "")));
        let out = run(sb.cmd([std::ffi::OsStr::new("check"), "--config".as_ref(), cfg.as_os_str()]), Duration::from_secs(30));
        out.expect_code(2);
        assert!(out.stderr.contains(key) && out.stderr.contains(allowed), "{}", out.describe());
    }
    let cfg =
        sb.write("pref.toml", &format!("{}[browser_preference]\nspeech = [\"firefox\"]\n{}", header("bad", ""), phase("one", "1s", 1, "")));
    let out = run(sb.cmd([std::ffi::OsStr::new("check"), "--config".as_ref(), cfg.as_os_str()]), Duration::from_secs(30));
    out.expect_code(2);
    assert!(out.stderr.contains("browser_preference.speech") && out.stderr.contains("\"vision\""), "{}", out.describe());
    let cfg = sb.write("ph.toml", &format!("{}{}", header("bad", ""), phase("one", "1s", 1, "browsers = [\"firefox\"]")));
    let out = run(sb.cmd([std::ffi::OsStr::new("check"), "--config".as_ref(), cfg.as_os_str()]), Duration::from_secs(30));
    out.expect_code(2);
    assert!(
        out.stderr.contains("phases[0].browsers") && out.stderr.contains("no [[workers]] entry has browser = \"firefox\""),
        "{}",
        out.describe()
    );
}

#[test]
fn a_page_task_runs_on_both_browsers() {
    let _serial = BrowserLock::acquire();
    let sb = Sandbox::new("ff-page");
    let page = sb.write("page.html", "<!doctype html><title>t</title><script>window.work = (n) => { let s = 0; for (let i = 0; i < n; i++) s += i; return s; };</script>");
    let task = format!(
        "\n[task]\nkind = \"page\"\nurl = \"file://{}\"\nscript = \"const done = arguments[arguments.length - 1]; const s = window.work(100000); done(s === 4999950000 ? {{ok: true, metrics: {{sum: s}}}} : {{ok: false, class: 'script_error', message: 'bad sum ' + s}});\"\n\n[browser]\nop_timeout = \"10s\"\nsession_timeout = \"30s\"\n",
        page.display()
    );
    let phases = phase("both", "4s", 2, &format!("browsers = [\"chromium\", \"firefox\"]\n{LENIENT}"));
    let cfg = sb.write("p.toml", &format!("{}{}{}{}", header("page", ""), task, two_browsers(""), phases));
    let out = launch_leaving_nothing(&sb, &cfg, Duration::from_secs(120));
    out.expect_code(0);
    let r = read_json(&sb.campaign_dir().join("campaign_report.json"));
    let p = &r["phases"][0];
    for b in ["chromium", "firefox"] {
        assert!(count(&p["browsers"][b]["ops_succeeded"], "ops") > 0, "{b}: {}", p["browsers"]);
        assert_eq!(p["browsers"][b]["ops_failed"], 0, "{b}: {}", p["browsers"]);
    }
}

#[test]
fn firefox_pages_console_errors_and_webgpu_errors_reach_the_report() {
    let _serial = BrowserLock::acquire();
    let sb = Sandbox::new("ff-console");
    let page = sb.write("page.html", "<!doctype html><title>t</title><p>console test</p>");
    // every 3rd op makes a WebGPU validation error (a buffer both MAP_READ and MAP_WRITE), logs a
    // console error and fails; the others pass
    let script = r#"const done = arguments[arguments.length - 1]; const n = window.__n = (window.__n || 0) + 1;
if (n % 3 !== 0) { done({ok: true}); return; }
(async () => {
  const device = await (await navigator.gpu.requestAdapter()).requestDevice();
  device.createBuffer({size: 16, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.MAP_WRITE});
  console.error('op', n, 'made an invalid buffer');
  await device.queue.onSubmittedWorkDone();
  await new Promise((r) => setTimeout(r, 200));
  done({ok: false, class: 'gpu_error', message: 'invalid buffer'});
})();"#;
    let task = format!(
        "\n[task]\nkind = \"page\"\nurl = \"file://{}\"\nscript = '''{script}'''\n\n[browser]\nop_timeout = \"10s\"\nsession_timeout = \"30s\"\n",
        page.display()
    );
    let worker = "\n[[workers]]\nid = \"ff\"\nmanaged = true\nbrowser = \"firefox\"\n";
    let lenient = "stress_level = \"low\"\n[phases.criteria]\nmin_success_rate = 0.3\nmax_p95 = \"30s\"";
    let cfg = sb.write("c.toml", &format!("{}{}{}{}", header("ffconsole", ""), task, worker, phase("p", "5s", 1, lenient)));
    let out = launch_leaving_nothing(&sb, &cfg, Duration::from_secs(150));
    let dir = sb.campaign_dir();
    let failed = events_of_kind(&dir, "op_failed");
    assert!(!failed.is_empty(), "{}", out.describe());
    let console = console_of(&failed[0]);
    assert!(console.iter().any(|c| c.starts_with("webgpu error: ") && c.len() > "webgpu error: ".len() + 5), "{console:?}");
    assert!(console.iter().any(|c| c.starts_with("console.error: op ") && c.ends_with("made an invalid buffer")), "{console:?}");
    let r = read_json(&dir.join("campaign_report.json"));
    let b = &r["phases"][0]["browser_console"];
    // two entries per failed op, every one counted
    assert_eq!(count(&b["entries"], "console entries"), 2 * count(&r["phases"][0]["ops_failed"], "failed"), "{b}");
}
