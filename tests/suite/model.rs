//! The `model` task: ONNX models run by onnxruntime-web in real Chromium (WebGPU on SwiftShader),
//! every inference checked against the wasm provider. Needs `scripts/setup-ort.sh` to have
//! installed onnxruntime-web into `vendor/onnxruntime-web`. Config errors need no browser.

use crate::common::*;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::time::Duration;

fn ort_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("vendor/onnxruntime-web")
}

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("models/test/dynamic.onnx")
}

/// A phase running `task` (the `[phases.task]` body); criteria lenient on latency (a busy 2-core
/// machine, SwiftShader): these tests are about verified results.
fn model_phase(name: &str, duration: &str, task: &str) -> String {
    let ort = ort_dir();
    format!(
        "{}\n[phases.criteria]\nmax_p95 = \"30s\"\n[phases.task]\nkind = \"model\"\nort_dir = {:?}\n{task}\n",
        phase(name, duration, 1, "stress_level = \"low\""),
        ort.display().to_string()
    )
}

fn config(name: &str, phases: &str) -> String {
    format!("{}\n[browser]\nop_timeout = \"30s\"\nsession_timeout = \"30s\"\n{phases}", header(name, ""))
}

fn launch(sb: &Sandbox, cfg: &Path) -> (Output, Value) {
    let before = snapshot();
    let out = run_marked(sb.launch(cfg), &sb.root, Duration::from_secs(240));
    assert_no_orphans(&before, &sb.root);
    let report = read_json(&sb.campaign_dir().join("campaign_report.json"));
    (out, report)
}

fn model_info(p: &Value) -> &Value {
    &p["tasks"]["model"]
}

/// The page loaded only its own server's resources, and loaded some (onnxruntime-web, the model).
fn assert_loopback_only(t: &Value, what: &str) {
    let sessions = t["sessions"].as_array().unwrap_or_else(|| panic!("{what}: no sessions\n{t}"));
    assert!(!sessions.is_empty(), "{what}: no session figures\n{t}");
    for s in sessions {
        assert!(count(&s["resources_loaded"], "resources_loaded") >= 3, "{what}: {s}");
        assert_eq!(s["other_origin_resources"], serde_json::json!([]), "{what}: {s}");
    }
}

#[test]
fn each_builtin_model_passes_with_every_inference_verified() {
    let _serial = BrowserLock::acquire();
    let sb = Sandbox::new("model-builtin");
    let phases = [("text", "14s"), ("vision", "8s"), ("audio", "8s")]
        .iter()
        .map(|(m, d)| model_phase(m, d, &format!("model = \"builtin:{m}\"")))
        .collect::<String>();
    let cfg = sb.write("builtin.toml", &config("builtin", &phases));
    let (out, r) = launch(&sb, &cfg);
    let errors: Vec<&Value> = r["phases"].as_array().into_iter().flatten().map(|p| &p["top_errors"]).collect();
    assert_eq!(r["outcome"], "passed", "{}\n{errors:?}", out.describe());
    out.expect_code(0);
    for (p, kind) in r["phases"].as_array().expect("phases").iter().zip(["text", "vision", "audio"]) {
        let t = model_info(p);
        let ok = count(&t["ops_succeeded"], "ops_succeeded");
        assert!(ok > 0, "{kind}: no inference\n{p}");
        assert_eq!(t["ops_failed"], 0, "{kind}: {}", p["errors_by_class"]);
        assert_eq!(count(&t["verified"], "verified"), ok, "{kind}: every inference is checked");
        assert_eq!(t["model"]["type"], kind);
        assert_eq!(t["model"]["opset"], 17);
        assert!(count(&t["model"]["parameters"], "parameters") > 1000, "{kind}: {}", t["model"]);
        assert!(t["model"]["operators"].as_object().is_some_and(|o| !o.is_empty()));
        assert_eq!(t["wrong_result"], 0);
        assert!(num(&t["load_ms"]["median"], "load_ms") > 0.0, "{kind}: {t}");
        assert!(num(&t["first_inference_ms"]["median"], "first_inference_ms") > 0.0, "{kind}: {t}");
        // set-up (seconds) is not in the op latencies: the slowest op is far below load + first run
        let setup = num(&t["load_ms"]["min"], "load") + num(&t["first_inference_ms"]["min"], "first");
        assert!(num(&t["latency_ms"]["max"], "max") < setup, "{kind}: {t}");
        assert_loopback_only(t, kind);
    }
    let summary = std::fs::read_to_string(sb.campaign_dir().join("summary.txt")).expect("summary");
    assert!(summary.contains("builtin:vision (vision type, opset 17"), "{summary}");
}

#[test]
fn a_user_model_runs_and_a_tight_tolerance_or_webnn_fails_the_phase() {
    let _serial = BrowserLock::acquire();
    let sb = Sandbox::new("model-user");
    let model = sb.write("my model.onnx", "");
    std::fs::copy(fixture(), &model).expect("copy the fixture");
    let task = |extra: &str| format!("model = {:?}\ninputs.input_embeds = {{ shape = [1, 32, 64] }}\n{extra}", model.display().to_string());
    let phases = [
        model_phase("user", "8s", &task("")),
        // before the tight phase: its wrong results open the task:model breaker for a while
        model_phase("webnn", "3s", &task("execution_provider = \"webnn\"")),
        model_phase("tight", "5s", &task("tolerance = { abs = 0.0, rel = 0.0 }")),
    ]
    .concat();
    let cfg = sb.write("user.toml", &config("user", &phases));
    let (out, r) = launch(&sb, &cfg);
    out.expect_code(1);
    let phases = r["phases"].as_array().expect("phases");

    let user = &phases[0];
    assert_eq!(user["criteria"]["passed"], true, "{user}");
    let t = model_info(user);
    assert!(count(&t["verified"], "verified") > 0, "{t}");
    assert_eq!(t["model"]["type"], "user");
    assert_eq!(t["model"]["inputs"]["input_embeds"]["shape"], serde_json::json!([1, 32, 64]));
    assert_loopback_only(t, "user");

    let tight = &phases[2];
    assert_eq!(tight["criteria"]["passed"], false, "{tight}");
    assert!(count(&tight["errors_by_class"]["wrong_result"], "wrong_result") > 0, "{tight}");
    assert!(count(&model_info(tight)["wrong_result"], "wrong_result") > 0);
    let top = tight["top_errors"].as_array().expect("top errors");
    assert!(
        top.iter().any(|e| e["class"] == "wrong_result"
            && e["message"].as_str().is_some_and(|m| m.contains("max abs error") && m.contains("max rel error"))),
        "{top:?}"
    );
    assert!(num(&model_info(tight)["worst_error"]["abs"], "worst abs") > 0.0);

    let webnn = &phases[1];
    assert!(count(&webnn["errors_by_class"]["api_unsupported"], "api_unsupported") > 0, "{webnn}");
    let top = webnn["top_errors"].as_array().expect("top errors");
    assert!(top.iter().any(|e| e["message"].as_str().is_some_and(|m| m.contains("WebNN"))), "{top:?}");
}

/// Exit 2 before anything starts, naming the key (and the file).
fn expect_config_error(sb: &Sandbox, name: &str, task: &str, needles: &[&str]) {
    let cfg = sb.write(&format!("{name}.toml"), &config(name, &model_phase("p", "3s", task)));
    let out = run(sb.launch(&cfg), Duration::from_secs(30));
    out.expect_code(2);
    for n in needles {
        assert!(out.stderr.contains(n), "{name}: {n:?} not in {}", out.describe());
    }
    assert_eq!(out.stderr.trim().lines().count(), 1, "{name}: one line\n{}", out.stderr);
}

#[test]
fn bad_model_configs_exit_2_naming_the_key() {
    let sb = Sandbox::new("model-config");
    let corrupt = sb.write("corrupt.onnx", "");
    let bytes = std::fs::read(fixture()).expect("fixture");
    std::fs::write(&corrupt, &bytes[..bytes.len() / 2]).expect("write the corrupted copy");
    let c = corrupt.display().to_string();
    let f = fixture().display().to_string();
    expect_config_error(
        &sb,
        "corrupt",
        &format!("model = {c:?}\ninputs.input_embeds = {{ shape = [1, 8, 64] }}"),
        &["phases[0].task.model", "corrupt.onnx", "not an ONNX model"],
    );
    expect_config_error(&sb, "missing", "model = \"/nonexistent/m.onnx\"", &["phases[0].task.model", "/nonexistent/m.onnx", "cannot read"]);
    expect_config_error(&sb, "dynamic", &format!("model = {f:?}"), &["phases[0].task.inputs.input_embeds.shape", "batch, sequence, 64"]);
    expect_config_error(
        &sb,
        "no-input",
        "model = \"builtin:vision\"\ninputs.image = { shape = [1, 3, 64, 64] }",
        &["phases[0].task.inputs.image", "pixel_values"],
    );
    expect_config_error(
        &sb,
        "shape",
        "model = \"builtin:vision\"\ninputs.pixel_values = { shape = [1, 3, 32, 32] }",
        &["phases[0].task.inputs.pixel_values.shape", "fixed at 64"],
    );
    expect_config_error(
        &sb,
        "provider",
        "model = \"builtin:text\"\nexecution_provider = \"cuda\"",
        &["phases[0].task.execution_provider", "\"webgpu\", \"wasm\", \"webnn\""],
    );
    expect_config_error(&sb, "builtin", "model = \"builtin:speech\"", &["phases[0].task.model", "builtin:text"]);
}

/// Firefox ESR through geckodriver, WebGPU on Mesa lavapipe: the vision model on the `webgpu`
/// provider, every inference checked against the wasm provider in the same Firefox page; the
/// per-session records and the per-browser breakdown name Firefox.
#[test]
fn the_vision_model_runs_on_firefox_webgpu_verified_against_wasm() {
    let _serial = BrowserLock::acquire();
    let sb = Sandbox::new("model-firefox");
    let workers = "\n[[workers]]\nid = \"ff\"\nmanaged = true\nbrowser = \"firefox\"\n";
    let phases = model_phase("vision", "12s", "model = \"builtin:vision\"\nexecution_provider = \"webgpu\"");
    let cfg = sb.write("ff.toml", &config("ffmodel", &format!("{workers}{phases}")));
    let (out, r) = launch(&sb, &cfg);
    let p = &r["phases"][0];
    assert_eq!(r["outcome"], "passed", "{}\n{}\n{}", out.describe(), p["top_errors"], p["errors_by_class"]);
    out.expect_code(0);
    let t = model_info(p);
    let ok = count(&t["ops_succeeded"], "ops_succeeded");
    assert!(ok > 0, "no inference on Firefox\n{p}");
    assert_eq!(count(&t["verified"], "verified"), ok, "every Firefox inference is checked against wasm: {t}");
    assert_eq!(t["wrong_result"], 0, "{t}");
    assert_eq!(t["model"]["type"], "vision");
    assert!(num(&t["first_inference_ms"]["median"], "first_inference_ms") > 0.0, "{t}");
    assert_loopback_only(t, "firefox");
    for s in t["sessions"].as_array().expect("sessions") {
        assert_eq!(s["browser"], "firefox", "{s}");
        assert_eq!(s["worker"], "ff", "{s}");
        assert_eq!(s["adapter"]["provider"], "webgpu", "{s}");
        assert!(s["user_agent"].as_str().is_some_and(|u| u.contains("Firefox/")), "{s}");
        assert!(num(&s["rss_mb"]["start"], "RSS after set-up") > 100.0, "{s}");
    }
    let ff = &p["browsers"]["firefox"];
    assert_eq!(count(&ff["ops_succeeded"], "firefox ops"), ok, "{}", p["browsers"]);
    assert_eq!(count(&ff["verified"], "firefox verified"), ok, "{ff}");
    assert!(p["browsers"].get("chromium").is_none(), "{}", p["browsers"]);
    // the model's own per-browser figures, and the browser's memory per session
    let m = &t["browsers"]["firefox"];
    assert_eq!(count(&m["sessions"], "firefox model sessions"), t["sessions"].as_array().map_or(0, |a| a.len() as u64), "{t}");
    assert!(num(&m["first_inference_ms"]["median"], "firefox first inference") > 0.0, "{m}");
    assert!(num(&m["rss_mb"]["start_median"], "firefox RSS after set-up") > 100.0, "{m}");
    eprintln!("firefox: {ok} inferences verified; model figures {m}");
    let summary = std::fs::read_to_string(sb.campaign_dir().join("summary.txt")).expect("summary");
    assert!(summary.contains("    firefox: ") && summary.contains("browser memory (tree RSS) per session: after set-up"), "{summary}");
}

/// The recovery ladder's adjusted-settings step on a model that keeps failing on WebGPU (an
/// impossible tolerance: every WebGPU output differs from the wasm reference): with
/// `max_level = 4` the ladder applies the step again on each failure, first the fixture's dynamic
/// dimensions halved (still WebGPU, still wrong), then the wasm provider, whose outputs equal the
/// reference. Those wasm inferences succeed, but the report counts them apart as degraded, and the
/// phase's criteria do not count them as successes: the phase fails.
#[test]
fn the_adjusted_settings_step_degrades_a_failing_model_to_wasm_and_reports_it() {
    let _serial = BrowserLock::acquire();
    let sb = Sandbox::new("model-degraded");
    let model = sb.write("dyn.onnx", "");
    std::fs::copy(fixture(), &model).expect("copy the fixture");
    let task = format!(
        "model = {:?}\ninputs.input_embeds = {{ shape = [1, 32, 64] }}\ntolerance = {{ abs = 0.0, rel = 0.0 }}",
        model.display().to_string()
    );
    // the breakers never open (the ladder, not the breaker, is under test); short backoff
    let extra = "\n[recovery]\nmax_level = 4\nbackoff_cap = \"200ms\"\n\
                 [breaker]\nfailure_threshold = 1000\nfailure_rate_threshold = 100\nwindow_size = 1000\nminimum_calls = 1000\n";
    let cfg = sb.write("degraded.toml", &config("degraded", &format!("{extra}{}", model_phase("tight", "45s", &task))));
    let (out, r) = launch(&sb, &cfg);
    out.expect_code(1);
    let p = &r["phases"][0];
    let t = model_info(p);
    let d = &t["degraded"];
    let settings = d["settings"].as_array().unwrap_or_else(|| panic!("no degraded settings\n{}\n{t}", out.describe()));
    let smaller = settings.iter().find(|s| s["setting"] == "smaller_inputs").unwrap_or_else(|| panic!("no smaller inputs: {d}"));
    assert_eq!(smaller["provider"], "webgpu", "{d}");
    assert_eq!(smaller["inputs"]["input_embeds"], serde_json::json!([1, 16, 64]), "sequence halved, fixed 64 kept: {d}");
    let wasm = settings.iter().find(|s| s["setting"] == "wasm_provider").unwrap_or_else(|| panic!("no wasm last resort: {d}"));
    assert_eq!((&wasm["provider"], &wasm["configured_provider"]), (&"wasm".into(), &"webgpu".into()), "{d}");
    assert_eq!(wasm["inputs"]["input_embeds"], serde_json::json!([1, 32, 64]), "{d}");
    let wasm_ok = count(&wasm["succeeded"], "wasm successes");
    assert!(wasm_ok > 0, "the wasm provider matches its own reference: {d}");
    // the window counts them as ops that ran and succeeded, the criteria and the model do not
    let ok = count(&p["ops_succeeded"], "ops_succeeded");
    assert!(ok >= wasm_ok, "{p}");
    let attempted = count(&p["ops_attempted"], "ops_attempted");
    let rate = num(&t["success_rate"], "model success rate");
    assert!((rate - (ok - count(&d["succeeded"], "degraded ok")) as f64 / attempted as f64).abs() < 1e-3, "{t}");
    assert_eq!(p["criteria"]["passed"], false, "{}", p["criteria"]);
    let failures = p["criteria"]["failures"].as_array().expect("failures");
    assert!(failures.iter().any(|f| f.as_str().is_some_and(|f| f.contains("adjusted settings (degraded)"))), "{failures:?}");
    let summary = std::fs::read_to_string(sb.campaign_dir().join("summary.txt")).expect("summary");
    assert!(summary.contains("DEGRADED (recovery ladder, adjusted settings)") && summary.contains("wasm_provider on wasm"), "{summary}");
    eprintln!("degraded: {d}");
}
