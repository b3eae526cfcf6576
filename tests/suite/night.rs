//! The overnight path end to end with real browsers and short phases (issue 26): a guardian trip
//! that cools down, re-runs the phase and passes, and a second one past `max_auto_recoveries`
//! that stops the campaign; sessions recycled at `max_browser_rss_mb` with
//! no op lost; `launch --detach` followed by `status` and `emergency-stop`, with its reports; the
//! `gpu_device_lost` fault recovered and reported; the night's baseline and the free-space floors.
//! Browser tests take the shared lock and end with an orphan check.

use crate::common::*;
use serde_json::Value;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::time::Duration;

const T: Duration = Duration::from_secs(150);

fn args(a: &[&str]) -> Vec<OsString> {
    a.iter().map(OsString::from).collect()
}

/// A small tmpfs mounted on a directory for one test, unmounted when dropped: a filesystem whose
/// free space only the test changes, so a disk limit can be crossed and left again on cue,
/// whatever the machine's other users write. Needs root (the suite runs as root: Chromium,
/// cgroups and PID namespaces need it too).
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(dir: &Path, size_mb: u32) -> Tmpfs {
        std::fs::create_dir_all(dir).expect("create the mount point");
        let st = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size_mb}m"), "tmpfs"])
            .arg(dir)
            .status()
            .expect("run mount");
        assert!(st.success(), "mount -t tmpfs on {} failed ({st}): this test needs root", dir.display());
        Tmpfs(dir.to_path_buf())
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

/// `header` with `[campaign]` and `[safety]` keys set (a key the header has is replaced), then
/// `rest`.
fn config(name: &str, campaign: &str, safety: &str, rest: &str) -> String {
    let key = |l: &str| l.split(" =").next().unwrap_or_default().to_string();
    let keys: Vec<String> = campaign.lines().chain(safety.lines()).map(key).collect();
    let mut out = String::new();
    for l in header(name, "").lines().filter(|l| !keys.contains(&key(l))) {
        out.push_str(l);
        out.push('\n');
        if l.starts_with("name =") {
            out.push_str(campaign);
            out.push('\n');
        }
    }
    format!("{out}{safety}\n{rest}")
}

fn campaign_log(sb: &Sandbox, id: &str) -> String {
    std::fs::read_to_string(sb.logs.join(format!("campaign_{id}.log"))).expect("campaign log")
}

#[test]
fn a_trip_cools_down_reruns_the_phase_and_passes() {
    let _serial = BrowserLock::acquire();
    let sb = Sandbox::new("auto-recovery");
    // the output dir is a 64 MiB tmpfs with 48 MiB taken: 16 MiB free, under the 32 MiB floor.
    // The guardian trips; while the campaign cools down (8 s: time for this test to react) the
    // filler goes, so health has recovered when the cooldown ends and the phase runs again.
    let _fs = Tmpfs::mount(&sb.out, 64);
    let filler = sb.out.join("filler");
    std::fs::write(&filler, vec![1u8; 48 << 20]).expect("write the filler");
    let cfg = sb.write(
        "ar.toml",
        &config(
            "auto-recovery",
            "auto_recovery = true\nmax_auto_recoveries = 2\ncooldown = \"8s\"\nbaseline_health_requirement = 0",
            "sample_interval = \"250ms\"\nconsecutive_violations = 2\nmin_free_disk_mb = 32",
            &format!("{}{}", webgpu_task(32), phase("one", "4s", 1, "[phases.criteria]\nmax_p95 = \"30s\"")),
        ),
    );
    let before = snapshot();
    let running = Running::spawn(sb.launch(&cfg), Some(&sb.root));
    let tripped = wait_until(Duration::from_secs(60), || {
        sb.campaign_dirs().first().is_some_and(|d| !events_of_kind(d, "auto_recovery_started").is_empty())
    });
    // the disk has room again (whether or not the trip came: the assertions below say which)
    std::fs::remove_file(&filler).expect("remove the filler");
    let out = running.finish(T);
    assert_no_orphans(&before, &sb.root);
    assert!(tripped, "no auto_recovery_started event\n{}", out.describe());
    out.expect_code(0);
    let dir = sb.campaign_dir();
    let violations = events_of_kind(&dir, "guardian_violation");
    assert!(violations.iter().any(|v| v["data"]["metric"] == "disk_free"), "{violations:?}");
    let started = events_of_kind(&dir, "auto_recovery_started");
    assert_eq!(started.len(), 1, "one trip, one cooldown\n{}", out.describe());
    let reason = started[0]["data"]["reason"].as_str().unwrap_or_default();
    assert!(reason.contains("free disk") && reason.contains("under the 32 MiB minimum"), "{reason}");
    let resumed = events_of_kind(&dir, "auto_recovery_resumed");
    assert_eq!(resumed.len(), 1, "{}", out.describe());
    assert_eq!(resumed[0]["data"]["phase_name"], "one");

    let r = read_json(&dir.join("campaign_report.json"));
    assert_eq!(r["outcome"], "passed", "{}", out.describe());
    let phases = r["phases"].as_array().expect("phases");
    let rerun = phases.iter().rev().find(|p| p["name"] == "one").expect("phase one");
    assert_eq!(rerun["status"], "completed");
    assert!(count(&rerun["ops_succeeded"], "ops") > 0, "{rerun}");
    let notes: Vec<&str> = rerun["notes"].as_array().expect("notes").iter().filter_map(Value::as_str).collect();
    assert!(notes.iter().any(|n| n.starts_with("re-run after auto-recovery 1/2")), "{notes:?}");
    let log = campaign_log(&sb, &out.campaign_id());
    assert!(log.contains("pausing the campaign for auto-recovery"), "{log}");
    assert!(log.lines().any(|l| l.contains("cooling down 8s (auto-recovery 1)")), "{log}");
    assert!(log.lines().any(|l| l.contains("resuming phase one")), "{log}");
    assert!(log.lines().any(|l| l.contains("verdict: campaign passed")), "{log}");
}

#[test]
fn a_second_trip_past_max_auto_recoveries_stops_the_campaign() {
    // synthetic (no browser): the same tmpfs floor, crossed, left during the cooldown, crossed
    // again while the phase re-runs: with max_auto_recoveries = 1 the second trip stops the run
    let sb = Sandbox::new("recovery-limit");
    let _fs = Tmpfs::mount(&sb.out, 64);
    let filler = sb.out.join("filler");
    let fill = || std::fs::write(&filler, vec![1u8; 48 << 20]).expect("write the filler");
    fill();
    let cfg = sb.write(
        "limit.toml",
        &config(
            "recovery-limit",
            "auto_recovery = true\nmax_auto_recoveries = 1\ncooldown = \"6s\"\nbaseline_health_requirement = 0",
            "sample_interval = \"250ms\"\nconsecutive_violations = 2\nmin_free_disk_mb = 32",
            &format!("{}{}", synthetic_task("2ms", 0.0), phase("one", "30s", 1, "")),
        ),
    );
    let running = Running::spawn(sb.launch(&cfg), None);
    let seen = |kind: &str| sb.campaign_dirs().first().is_some_and(|d| !events_of_kind(d, kind).is_empty());
    let tripped = wait_until(Duration::from_secs(60), || seen("auto_recovery_started"));
    std::fs::remove_file(&filler).expect("remove the filler");
    let resumed = tripped && wait_until(Duration::from_secs(60), || seen("auto_recovery_resumed"));
    if resumed {
        fill();
    }
    let out = running.finish(T);
    assert!(tripped && resumed, "no trip, or no re-run after it\n{}", out.describe());
    out.expect_code(1);
    let dir = sb.campaign_dir();
    assert_eq!(events_of_kind(&dir, "auto_recovery_started").len(), 1, "one cooldown only\n{}", out.describe());
    let r = read_json(&dir.join("campaign_report.json"));
    assert_eq!(r["outcome"], "emergency_stopped");
    let reason = r["stop_reason"].as_str().unwrap_or_default();
    assert!(reason.contains("guardian: free disk") && reason.contains("(auto-recovery already used 1 times)"), "{reason}");
    assert!(r["phases"].as_array().expect("phases").iter().all(|p| p["status"] != "completed"), "{}", r["phases"]);
    let log = campaign_log(&sb, &out.campaign_id());
    assert!(log.lines().any(|l| l.contains("verdict: campaign emergency_stopped") && l.contains("already used 1 times")), "{log}");
}

#[test]
fn a_browser_over_max_browser_rss_is_recycled_and_no_op_is_lost() {
    let _serial = BrowserLock::acquire();
    let sb = Sandbox::new("rss-recycle");
    // any Chromium's process tree is over 64 MiB: every sample asks for a recycle, which the slot
    // carries out between ops
    let cfg = sb.write(
        "rss.toml",
        &config(
            "rss",
            "",
            "sample_interval = \"500ms\"\nmax_browser_rss_mb = 64",
            &format!("{}{}", webgpu_task(32), phase("rss", "6s", 1, "[phases.criteria]\nmax_p95 = \"30s\"")),
        ),
    );
    let out = launch_leaving_nothing(&sb, &cfg, T);
    out.expect_code(0);
    let dir = sb.campaign_dir();
    let over = events_of_kind(&dir, "browser_rss_exceeded");
    assert!(!over.is_empty(), "no browser_rss_exceeded event\n{}", out.describe());
    assert!(over.iter().all(|e| count(&e["data"]["rss_mb"], "rss") > 64 && e["data"]["cap_mb"] == 64), "{over:?}");
    let recycled = events_of_kind(&dir, "browser_recycled");
    assert!(!recycled.is_empty(), "no browser_recycled event\n{}", out.describe());

    // no op lost: every op attempted is recorded, each one succeeded, and the recycles were no
    // failures to recover from
    let r = read_json(&dir.join("campaign_report.json"));
    let p = &r["phases"][0];
    let attempted = count(&p["ops_attempted"], "attempted");
    assert!(attempted > 0);
    assert_eq!(count(&p["ops_succeeded"], "succeeded"), attempted, "{p}");
    assert_eq!(count(&p["ops_failed"], "failed"), 0, "{p}");
    assert_eq!(count(&p["tasks"]["webgpu"]["ops_attempted"], "task ops"), attempted, "{p}");
    assert_eq!(count(&r["totals"]["ops_attempted"], "total"), attempted);
    assert!(events_of_kind(&dir, "op_failed").is_empty());
    assert!(events_of_kind(&dir, "recovery_attempted").is_empty());
    let log = std::fs::read_to_string(sb.logs.join(format!("campaign_{}.log", out.campaign_id()))).unwrap();
    assert!(log.lines().any(|l| l.contains("over the 64 MiB cap: recycling its session")), "{log}");
}

#[test]
fn a_detached_campaign_answers_status_and_stops_with_its_reports() {
    let _serial = BrowserLock::acquire();
    let sb = Sandbox::new("detach");
    let cfg = sb.write("d.toml", &format!("{}{}{}", header("detach", ""), webgpu_task(32), phase("long", "90s", 1, "")));
    let before = snapshot();
    let mut cmd = sb.launch(&cfg);
    cmd.arg("--detach");
    let out = run(cmd, Duration::from_secs(60));
    out.expect_code(0);
    let id = out.stdout.trim().to_string();
    assert!(!id.is_empty() && !id.contains(char::is_whitespace), "stdout is the id alone\n{}", out.describe());
    assert!(out.stderr.contains("running in the background") && out.stderr.contains("tail -f "), "{}", out.describe());
    assert!(out.stderr.contains(&format!("campaign_{id}.log")), "{}", out.describe());

    // status: the campaign runs ops in the background
    let status = |sb: &Sandbox| -> Option<Value> {
        let o = run(sb.cmd(args(&["status", "--json"])), Duration::from_secs(10));
        (o.code() == Some(0)).then(|| serde_json::from_str(o.stdout.trim()).ok()).flatten()
    };
    let moving = wait_until(Duration::from_secs(60), || status(&sb).and_then(|s| s["ops"]["attempted"].as_u64()).unwrap_or(0) > 0);
    assert!(moving, "status never showed ops");
    let st = status(&sb).expect("status --json");
    assert_eq!(st["campaign_id"], id.as_str());
    assert_eq!(st["phase"]["name"], "long");
    let text = run(sb.cmd(args(&["status"])), Duration::from_secs(10));
    text.expect_code(0);
    assert!(text.stdout.contains(&id), "{}", text.describe());

    // emergency-stop returns once the background campaign has exited
    let stop = run(sb.cmd(args(&["emergency-stop", "--reason", "detached test stops it"])), Duration::from_secs(60));
    stop.expect_code(0);
    assert_no_orphans(&before, &sb.root);
    let dir = sb.out.join(&id);
    for f in ["summary.txt", "campaign_report.json", "report.html", "events.jsonl", "phase_01_long.json"] {
        assert!(dir.join(f).is_file(), "{f} missing in {}", dir.display());
    }
    let r = read_json(&dir.join("campaign_report.json"));
    assert_eq!(r["outcome"], "emergency_stopped");
    assert!(r["stop_reason"].as_str().unwrap_or_default().contains("detached test stops it"), "{}", r["stop_reason"]);
    assert!(count(&r["totals"]["ops_attempted"], "ops") > 0);
    let daemon = std::fs::read_to_string(sb.logs.join(format!("daemon_{id}.log"))).expect("daemon log");
    assert!(daemon.contains("EMERGENCY_STOPPED") && daemon.contains("reports in"), "{daemon}");
    assert!(campaign_log(&sb, &id).lines().any(|l| l.contains("verdict: campaign emergency_stopped")));
    assert!(!sb.state.join("control.sock").exists() && !sb.state.join("stressctl.lock").exists());
    run(sb.cmd(args(&["status"])), Duration::from_secs(10)).expect_code(1);
}

#[test]
fn a_lost_gpu_device_is_recovered_and_reported() {
    let _serial = BrowserLock::acquire();
    let sb = Sandbox::new("device-lost");
    let faults = "\n[breaker]\nrecovery_timeout = \"1s\"\n\n[[faults]]\nkind = \"gpu_device_lost\"\nevery = \"2s\"\n";
    let cfg = sb.write(
        "dl.toml",
        &format!(
            "{}{}{faults}{}",
            header("device-lost", ""),
            webgpu_task(32),
            phase("lost", "7s", 1, "stress_level = \"extreme\"\n[phases.criteria]\nmax_p95 = \"30s\"")
        ),
    );
    let out = launch_leaving_nothing(&sb, &cfg, T);
    let dir = sb.campaign_dir();
    let injected: Vec<Value> =
        events_of_kind(&dir, "fault_injected").into_iter().filter(|e| e["data"]["kind"] == "gpu_device_lost").collect();
    assert!(!injected.is_empty(), "no gpu_device_lost injected\n{}", out.describe());
    let failed = events_of_kind(&dir, "op_failed");
    assert!(
        failed.iter().any(|e| e["data"]["class"] == "gpu_error" && e["message"].as_str().unwrap_or_default().contains("lost")),
        "no gpu_error op naming the lost device: {failed:?}"
    );
    let recovered: Vec<Value> = events_of_kind(&dir, "recovery_attempted")
        .into_iter()
        .filter(|e| e["data"]["class"] == "gpu_error" && e["data"]["outcome"] == "succeeded")
        .collect();
    assert!(!recovered.is_empty(), "no successful recovery from gpu_error\n{}", out.describe());

    let r = read_json(&dir.join("campaign_report.json"));
    let p = &r["phases"][0];
    assert!(count(&p["errors_by_class"]["gpu_error"], "gpu errors") >= 1, "{p}");
    assert!(count(&p["faults_injected"]["gpu_device_lost"], "faults") >= 1, "{p}");
    // ops went on after each loss: more succeeded than the faults took
    assert!(count(&p["ops_succeeded"], "ok") > count(&p["ops_failed"], "failed"), "{p}");
    let rec = r["recoveries"].to_string();
    assert!(rec.contains("gpu_error"), "the report's recoveries name the class: {rec}");
    let summary = std::fs::read_to_string(dir.join("summary.txt")).unwrap();
    assert!(summary.contains("gpu_error") && summary.contains("gpu_device_lost"), "{summary}");
    out.expect_code(0);
}

#[test]
fn launch_records_a_baseline_and_the_report_compares_the_last_phase() {
    let _serial = BrowserLock::acquire();
    let sb = Sandbox::new("baseline");
    let cfg = sb.write(
        "b.toml",
        &format!(
            "{}{}{}{}",
            header("baseline", ""),
            webgpu_task(32),
            phase("one", "2s", 1, "[phases.criteria]\nmax_p95 = \"30s\""),
            phase("two", "3s", 2, "[phases.criteria]\nmax_p95 = \"30s\"")
        ),
    );
    let before = snapshot();
    let out = run_marked(sb.launch_with_baseline(&cfg), &sb.root, T);
    assert_no_orphans(&before, &sb.root);
    out.expect_code(0);
    let dir = sb.campaign_dir();
    let ev = events_of_kind(&dir, "baseline");
    assert_eq!(ev.len(), 1, "{}", out.describe());
    let r = read_json(&dir.join("campaign_report.json"));
    let b = &r["baseline"];
    let m = &b["measured"];
    assert_eq!(m["task"], "webgpu");
    assert!(count(&m["idle_samples"], "idle") >= 2, "{b}");
    assert!(count(&m["memory_total_mb"], "total") >= count(&m["memory_available_mb"], "available"), "{b}");
    assert!(count(&m["disk_available_mb"], "disk") > 0, "{b}");
    let ops = count(&m["ops"], "ops");
    assert!(ops >= 1 && count(&m["succeeded"], "ok") == ops, "{b}");
    assert!(num(&m["ops_per_s"], "ops/s") > 0.0 && num(&m["p95_ms"], "p95") > 0.0, "{b}");
    let c = &b["last_phase"];
    assert_eq!(c["phase"], "two");
    assert_eq!(c["sessions"], 2);
    let per_session = num(&c["per_session_ops_per_s"], "per session");
    assert!((per_session - num(&c["throughput_ops_per_s"], "throughput") / 2.0).abs() < 0.01, "{c}");
    let ratio = num(&c["throughput_ratio"], "ratio");
    assert!((ratio - per_session / num(&m["ops_per_s"], "ops/s")).abs() < 0.01, "{c}");
    assert!(num(&c["p95_ratio"], "p95 ratio") > 0.0, "{c}");
    assert!(c["memory_left_mb"].as_u64().is_some() && c["memory_left_change_mb"].as_i64().is_some(), "{c}");
    let summary = std::fs::read_to_string(dir.join("summary.txt")).unwrap();
    assert!(summary.contains("Baseline (before the first phase") && summary.contains("last phase two (2 sessions)"), "{summary}");
    let html = std::fs::read_to_string(dir.join("report.html")).unwrap();
    assert!(html.contains("id=\"baseline\""));
    let log = campaign_log(&sb, &out.campaign_id());
    assert!(log.lines().any(|l| l.contains("baseline: idle cpu") && l.contains("1 session of webgpu")), "{log}");

    // the store keeps it: a rebuilt report carries the same baseline
    let rebuilt = run(sb.cmd(args(&["report", &out.campaign_id()])), Duration::from_secs(30));
    rebuilt.expect_code(0);
    assert_eq!(read_json(&dir.join("campaign_report.json"))["baseline"], *b);
}

#[test]
fn no_baseline_skips_it_and_a_synthetic_baseline_times_the_synthetic_op() {
    let sb = Sandbox::new("baseline-synthetic");
    let cfg = sb.write("s.toml", &format!("{}{}{}", header("bs", ""), synthetic_task("5ms", 0.0), phase("p", "1s", 1, "")));
    let out = run(sb.launch_with_baseline(&cfg), T);
    out.expect_code(0);
    let b = read_json(&sb.campaign_dir().join("campaign_report.json"))["baseline"].clone();
    assert_eq!(b["measured"]["task"], "synthetic");
    let ops = count(&b["measured"]["ops"], "ops");
    assert!((20..=200).contains(&ops) && b["measured"]["succeeded"] == ops, "at most 200 ops, or 3 s of them: {b}");
    assert!(num(&b["measured"]["p50_ms"], "p50") >= 5.0, "a 5 ms synthetic op: {b}");

    let sb = Sandbox::new("no-baseline");
    let cfg = sb.write("s.toml", &format!("{}{}{}", header("nb", ""), synthetic_task("1ms", 0.0), phase("p", "1s", 1, "")));
    run(sb.launch(&cfg), T).expect_code(0);
    let dir = sb.campaign_dir();
    assert!(events_of_kind(&dir, "baseline").is_empty());
    assert!(read_json(&dir.join("campaign_report.json"))["baseline"].is_null());
    assert!(!std::fs::read_to_string(dir.join("summary.txt")).unwrap().contains("Baseline"));
}

#[test]
fn free_space_floors_are_checked_and_judged() {
    // 1 PiB of free memory and disk: no host has it
    let sb = Sandbox::new("floors");
    let body = config(
        "floors",
        "",
        "sample_interval = \"250ms\"\nconsecutive_violations = 2\nmin_free_memory_mb = 1073741824",
        &format!("{}{}", synthetic_task("1ms", 0.0), phase("p", "30s", 1, "")),
    );
    let cfg = sb.write("f.toml", &body);
    let out = run(sb.launch(&cfg), T);
    out.expect_code(1);
    let r = read_json(&sb.campaign_dir().join("campaign_report.json"));
    let reason = r["stop_reason"].as_str().unwrap_or_default();
    assert!(reason.contains("guardian: free memory") && reason.contains("under the 1073741824 MiB minimum"), "{reason}");

    let disk = sb.write(
        "d.toml",
        &config("floors", "", "min_free_disk_mb = 1073741824", &format!("{}{}", synthetic_task("1ms", 0.0), phase("p", "30s", 1, ""))),
    );
    let check = run(sb.cmd(args(&["check", "--config", disk.to_str().unwrap()])), T);
    check.expect_code(1);
    let line = check.stdout.lines().find(|l| l.contains("disk free")).unwrap_or_default().to_string();
    assert!(line.starts_with('✗') && line.contains("minimum 1073741824 MiB"), "{}", check.describe());
    assert!(check.stdout.lines().any(|l| l.starts_with('✓') && l.contains("memory available")), "{}", check.describe());

    let bad = sb.write("b.toml", &body.replace("min_free_memory_mb = 1073741824", "min_free_memory_mb = -1"));
    run(sb.launch(&bad), T).expect_code(2);
}
