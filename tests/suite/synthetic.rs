//! Campaigns of the synthetic task (no browser): the orchestration, the verdict, halting, the
//! reports and their consistency, fast.

use crate::common::*;
use serde_json::Value;
use std::path::Path;
use std::time::Duration;

const T: Duration = Duration::from_secs(90);

/// The fields of a phase that must be identical in its phase file and in campaign_report.json.
const PHASE_FIELDS: &[&str] = &[
    "index",
    "name",
    "stress_level",
    "task_kind",
    "status",
    "sessions",
    "duration_s",
    "ops_attempted",
    "ops_succeeded",
    "ops_failed",
    "success_rate",
    "throughput_ops_per_s",
    "latency_ms",
    "criteria",
    "errors_by_class",
    "tasks",
];

fn phase_file(dir: &Path, index: usize, name: &str) -> std::path::PathBuf {
    dir.join(format!("phase_{:02}_{name}.json", index + 1))
}

/// Checks what every finished campaign must satisfy and returns the campaign report.
fn check_reports(sb: &Sandbox, out: &Output) -> Value {
    let id = out.campaign_id();
    assert!(out.stdout.starts_with(&format!("stressctl: campaign {id} (")), "first line must announce the campaign\n{}", out.describe());
    let dir = sb.campaign_dir();
    assert_eq!(dir.file_name().unwrap().to_string_lossy(), id, "report dir is not named after the campaign id");
    let last = out.stdout.lines().last().unwrap_or("");
    assert!(
        last.starts_with(&format!("stressctl: reports in {}/", dir.display())),
        "last line must say where the reports are: {last:?}\n{}",
        out.describe()
    );
    assert!(sb.state.join("runs").join(&id).join("store.sqlite").is_file(), "no store for {id}");

    let r = read_json(&dir.join("campaign_report.json"));
    assert_eq!(r["campaign_id"], id.as_str());
    for k in ["started_at", "ended_at"] {
        let t = r[k].as_str().unwrap_or_else(|| panic!("{k} missing"));
        assert!(t.len() >= 20 && t.ends_with('Z') && t.as_bytes()[10] == b'T', "{k} is not RFC 3339 UTC: {t}");
    }
    assert!(r["ended_at"].as_str() >= r["started_at"].as_str(), "ended before it started");

    // totals are the sum of the phases
    let phases = r["phases"].as_array().expect("phases[]");
    for key in ["ops_attempted", "ops_succeeded", "ops_failed"] {
        let sum: u64 = phases.iter().map(|p| count(&p[key], key)).sum();
        assert_eq!(sum, count(&r["totals"][key], key), "totals.{key} is not the sum of the phases");
    }
    let t = &r["totals"];
    assert_eq!(count(&t["ops_attempted"], "a"), count(&t["ops_succeeded"], "s") + count(&t["ops_failed"], "f"));

    for (i, p) in phases.iter().enumerate() {
        let name = p["name"].as_str().expect("phase name");
        assert_eq!(count(&p["index"], "index"), i as u64);
        let (a, s, f) = (count(&p["ops_attempted"], "a"), count(&p["ops_succeeded"], "s"), count(&p["ops_failed"], "f"));
        assert_eq!(a, s + f, "phase {name}: attempted != succeeded + failed");
        let errs: u64 = p["errors_by_class"].as_object().expect("errors_by_class").values().map(|v| count(v, "errors_by_class")).sum();
        assert_eq!(errs, f, "phase {name}: errors_by_class does not add up to ops_failed");
        if a > 0 {
            let rate = num(&p["success_rate"], "success_rate");
            assert!((rate - s as f64 / a as f64).abs() < 0.001, "phase {name}: success_rate {rate} != {s}/{a}");
            assert_percentiles_ordered(&p["latency_ms"], &format!("phases[{i}].latency_ms"));
        }
        let syn = &p["tasks"]["synthetic"];
        assert_eq!(syn["synthetic"], true, "phase {name}: the synthetic task must be labelled synthetic");
        assert_eq!(count(&syn["ops_attempted"], "tasks.synthetic.ops_attempted"), a);

        // the phase file says the same
        let pf = read_json(&phase_file(&dir, i, name));
        for k in PHASE_FIELDS {
            assert_eq!(pf[*k], p[*k], "phase {name}: `{k}` differs between its phase file and campaign_report.json");
        }
    }
    // no phase file for a phase that did not run
    let files = std::fs::read_dir(&dir).unwrap().flatten().filter(|e| e.file_name().to_string_lossy().starts_with("phase_")).count();
    assert_eq!(files, phases.len(), "phase files in {} do not match the phases reported", dir.display());

    // summary and events
    let summary = std::fs::read_to_string(dir.join("summary.txt")).expect("summary.txt");
    assert!(summary.contains(&id), "summary.txt does not name the campaign");
    assert!(summary.contains(&r["outcome"].as_str().unwrap().to_uppercase()), "summary.txt does not give the outcome");
    for p in phases {
        assert!(summary.contains(p["name"].as_str().unwrap()), "summary.txt does not list phase {}", p["name"]);
    }
    let events = read_events(&dir.join("events.jsonl"));
    assert_eq!(events.first().map(|e| e["kind"].clone()), Some("campaign_started".into()), "first event");
    assert_eq!(events.last().map(|e| e["kind"].clone()), Some("campaign_ended".into()), "last event");
    let n = |kind: &str| events.iter().filter(|e| e["kind"] == kind).count();
    assert_eq!(n("phase_started"), phases.len());
    assert_eq!(n("phase_ended"), phases.len());
    r
}

#[test]
fn three_phase_campaign_passes_and_its_reports_agree() {
    let sb = Sandbox::new("syn-pass");
    let body = format!(
        "{}{}{}{}{}",
        header("three", ""),
        synthetic_task("1ms", 0.0),
        phase("warm", "1s", 1, "stress_level = \"low\""),
        phase("mid", "1s", 2, "stress_level = \"moderate\""),
        phase("hot", "1s", 3, "stress_level = \"high\""),
    );
    let cfg = sb.write("three.toml", &body);
    let out = run(sb.launch(&cfg), T);
    out.expect_code(0);
    assert!(out.stdout.contains("PASSED"), "{}", out.describe());
    let r = check_reports(&sb, &out);
    assert_eq!(r["outcome"], "passed");
    assert_eq!(r["stop_reason"], Value::Null);
    assert_eq!(r["profile"], "three");
    assert_eq!(r["verdict"]["passed"], true);
    let phases = r["phases"].as_array().unwrap();
    let expect = [("warm", "low", 1, 0.95, 2000), ("mid", "moderate", 2, 0.90, 3000), ("hot", "high", 3, 0.85, 5000)];
    assert_eq!(phases.len(), 3);
    for (p, (name, level, sessions, rate, p95)) in phases.iter().zip(expect) {
        assert_eq!(p["name"], name);
        assert_eq!(p["stress_level"], level);
        assert_eq!(p["task_kind"], "synthetic");
        assert_eq!(count(&p["sessions"], "sessions"), sessions);
        assert!(count(&p["ops_attempted"], "ops") > 0, "phase {name} ran no ops");
        assert_eq!(p["ops_failed"], 0);
        assert_eq!(num(&p["success_rate"], "success_rate"), 1.0);
        // default criteria of the level
        assert_eq!(num(&p["criteria"]["min_success_rate"], "min_success_rate"), rate, "phase {name}");
        assert_eq!(count(&p["criteria"]["max_p95_ms"], "max_p95_ms"), p95, "phase {name}");
        assert_eq!(p["criteria"]["passed"], true);
        // the configured latency is really measured (1 ms per op, plus scheduling)
        assert!(num(&p["latency_ms"]["p50"], "p50") >= 0.9, "phase {name}: p50 below the 1 ms the task takes: {}", p["latency_ms"]);
        let d = num(&p["duration_s"], "duration_s");
        assert!((0.9..10.0).contains(&d), "phase {name} lasted {d}s, planned 1s");
    }
    let total = count(&r["totals"]["ops_attempted"], "total");
    assert!(total >= 30, "only {total} ops of 1 ms in 3 s");
}

#[test]
fn half_failing_campaign_fails_with_script_errors() {
    let sb = Sandbox::new("syn-fail");
    // Breakers that cannot open in 400 ops: this is about counting and classifying failures and
    // the verdict, not about shedding load.
    let breaker = "\n[breaker]\nfailure_threshold = 1000\nfailure_rate_threshold = 100\nwindow_size = 1000\nminimum_calls = 1000\n";
    let body =
        format!("{}{}{}{}", header("flaky", ""), synthetic_task("1ms", 0.5), breaker, phase("coin", "2s", 2, "ops_per_session = 200"));
    let cfg = sb.write("flaky.toml", &body);
    let out = run(sb.launch(&cfg), T);
    out.expect_code(1);
    assert!(out.stdout.contains("FAILED"), "{}", out.describe());
    let r = check_reports(&sb, &out);
    assert_eq!(r["outcome"], "failed");
    assert_eq!(r["verdict"]["passed"], false);
    let p = &r["phases"][0];
    assert_eq!(p["criteria"]["passed"], false);
    let (a, f) = (count(&p["ops_attempted"], "a"), count(&p["ops_failed"], "f"));
    assert!(a >= 100, "too few ops to judge: {a}");
    let script_errors = count(&p["errors_by_class"]["script_error"], "errors_by_class.script_error");
    assert_eq!(script_errors, f, "every synthetic failure is a script_error: {}", p["errors_by_class"]);
    let rate = num(&p["success_rate"], "success_rate");
    assert!((0.3..=0.7).contains(&rate), "success rate {rate} is far from the configured 0.5");
    let summary = std::fs::read_to_string(sb.campaign_dir().join("summary.txt")).unwrap();
    assert!(summary.contains("script_error"), "summary.txt should say what failed\n{summary}");
}

#[test]
fn campaign_halts_after_max_consecutive_failed_phases() {
    // Every phase fails its p95 criterion (ops take 3 ms, the limit is 1 ms): deterministic, and
    // no op fails, so nothing else (breakers, recovery) is involved.
    let sb = Sandbox::new("syn-halt");
    let slow = "[phases.criteria]\nmax_p95 = \"1ms\"";
    let body = format!(
        "{}{}{}{}{}{}",
        header("halting", "max_consecutive_failed_phases = 2"),
        synthetic_task("3ms", 0.0),
        phase("slow-1", "1s", 1, slow),
        phase("slow-2", "1s", 1, slow),
        phase("slow-3", "1s", 1, slow),
        phase("slow-4", "1s", 1, slow),
    );
    let cfg = sb.write("halt.toml", &body);
    let out = run(sb.launch(&cfg), T);
    out.expect_code(1);
    assert!(out.stdout.contains("HALTED"), "{}", out.describe());
    let r = check_reports(&sb, &out);
    assert_eq!(r["outcome"], "halted");
    let phases = r["phases"].as_array().unwrap();
    assert_eq!(phases.len(), 2, "phases after the halt must not run: {:?}", phases.iter().map(|p| &p["name"]).collect::<Vec<_>>());
    for p in phases {
        assert_eq!(p["criteria"]["passed"], false, "phase {} should fail its p95 criterion", p["name"]);
        assert!(num(&p["latency_ms"]["p95"], "p95") > 1.0);
    }
    let reason = r["stop_reason"].as_str().unwrap_or_else(|| panic!("a halt must give a stop_reason: {}", r["stop_reason"]));
    assert!(reason.contains("slow-1") && reason.contains("slow-2"), "stop_reason should name the failing phases: {reason}");
    assert!(!phase_file(&sb.campaign_dir(), 2, "slow-3").exists());
}

#[test]
fn ops_per_session_caps_ops_exactly_and_ends_the_phase_early() {
    let sb = Sandbox::new("syn-cap");
    let body = format!(
        "{}{}{}{}",
        header("capped", ""),
        synthetic_task("1ms", 0.0),
        phase("three-by-seven", "30s", 3, "ops_per_session = 7"),
        phase("one-by-fifty", "30s", 1, "ops_per_session = 50"),
    );
    let cfg = sb.write("cap.toml", &body);
    let out = run(sb.launch(&cfg), T);
    out.expect_code(0);
    let r = check_reports(&sb, &out);
    let phases = r["phases"].as_array().unwrap();
    assert_eq!(count(&phases[0]["ops_attempted"], "ops"), 21, "3 sessions × 7 ops");
    assert_eq!(count(&phases[1]["ops_attempted"], "ops"), 50, "1 session × 50 ops");
    assert_eq!(count(&r["totals"]["ops_attempted"], "ops"), 71);
    for p in phases {
        let d = num(&p["duration_s"], "duration_s");
        assert!(d < 10.0, "phase {} should end when every session reached its cap, lasted {d}s of 30s", p["name"]);
    }
    assert!(out.elapsed < Duration::from_secs(30), "the campaign took {:?} for 71 ops of 1 ms", out.elapsed);
}

#[test]
fn report_rebuilds_identical_files_from_the_store() {
    let sb = Sandbox::new("syn-report");
    let body = format!("{}{}{}{}", header("rebuild", ""), synthetic_task("1ms", 0.1), phase("a", "1s", 2, ""), phase("b", "1s", 1, ""));
    let cfg = sb.write("rebuild.toml", &body);
    let out = run(sb.launch(&cfg), T);
    let id = out.campaign_id();
    let dir = sb.campaign_dir();

    let list = run(sb.cmd(["report", "--list"]), T);
    list.expect_code(0);
    assert!(list.stdout.lines().any(|l| l.trim() == id), "report --list does not list {id}\n{}", list.describe());

    // rebuild into another output dir and compare byte for byte
    let other = sb.root.join("rebuilt");
    let mut c = std::process::Command::new(BIN);
    c.args(["report", &id, "--state-dir"])
        .arg(&sb.state)
        .arg("--output-dir")
        .arg(&other)
        .arg("--log-dir")
        .arg(&sb.logs)
        .current_dir(&sb.root);
    let rebuilt = run(c, T);
    rebuilt.expect_code(0);
    for f in ["campaign_report.json", "summary.txt", "phase_01_a.json", "phase_02_b.json"] {
        let a = std::fs::read(dir.join(f)).unwrap_or_else(|e| panic!("{f}: {e}"));
        let b = std::fs::read(other.join(&id).join(f)).unwrap_or_else(|e| panic!("rebuilt {f}: {e}"));
        assert!(a == b, "rebuilt {f} differs from the one the run wrote");
    }

    // without an id: the latest campaign
    let latest = run(sb.cmd(["report"]), T);
    latest.expect_code(0);
    assert!(latest.stdout.contains(&id), "{}", latest.describe());

    // an unknown id is an error that says how to find the right one
    let bad = run(sb.cmd(["report", "19700101T000000Z-0000"]), T);
    assert_ne!(bad.code(), Some(0));
    assert!(bad.stderr.contains("--list"), "{}", bad.describe());
}

#[test]
fn sigint_stops_a_synthetic_campaign_with_130_and_reports() {
    let sb = Sandbox::new("syn-sigint");
    let body = format!(
        "{}{}{}{}",
        header("interrupted", ""),
        synthetic_task("2ms", 0.0),
        phase("long", "60s", 2, ""),
        phase("never", "5s", 1, "")
    );
    let out = signal_after_start(&sb, "int.toml", &body, libc::SIGINT);
    out.expect_code(130);
    let r = read_json(&sb.campaign_dir().join("campaign_report.json"));
    assert_eq!(r["outcome"], "emergency_stopped");
    assert!(r["stop_reason"].as_str().unwrap_or("").contains("SIGINT"), "stop_reason: {}", r["stop_reason"]);
    let phases = r["phases"].as_array().unwrap();
    assert_eq!(phases.len(), 1, "no phase may start after the stop");
    assert!(count(&phases[0]["ops_attempted"], "ops") > 0);
    assert!(num(&phases[0]["duration_s"], "duration_s") < 30.0);
}

#[test]
fn sigterm_stops_gracefully_with_exit_1_and_reports() {
    let sb = Sandbox::new("syn-sigterm");
    let body = format!("{}{}{}", header("terminated", ""), synthetic_task("2ms", 0.0), phase("long", "60s", 2, ""));
    let out = signal_after_start(&sb, "term.toml", &body, libc::SIGTERM);
    out.expect_code(1);
    let r = read_json(&sb.campaign_dir().join("campaign_report.json"));
    assert_eq!(r["outcome"], "emergency_stopped");
    assert!(r["stop_reason"].as_str().unwrap_or("").contains("SIGTERM"), "stop_reason: {}", r["stop_reason"]);
    assert_eq!(r["phases"][0]["status"], "stopped");
}

/// Launches `body` (written to `name`), sends `sig` 1.5 s after the campaign has started, and
/// returns how it ended (within 15 s).
fn signal_after_start(sb: &Sandbox, name: &str, body: &str, sig: i32) -> Output {
    let cfg = sb.write(name, body);
    let child = Running::spawn(sb.launch(&cfg), Some(&sb.root));
    assert!(
        wait_until(Duration::from_secs(20), || child.stdout_so_far().contains("stressctl: campaign ")),
        "the campaign did not start\n{}",
        child.stdout_so_far()
    );
    std::thread::sleep(Duration::from_millis(1500));
    child.signal(sig);
    child.finish(Duration::from_secs(15))
}
