//! How a run ends and what it says about it, with the synthetic task (no browser): SIGHUP, an op
//! abandoned at the end of its phase, a plan cut short, a suspended process, and a summary that
//! people can read.

use crate::common::*;
use serde_json::Value;
use std::time::Duration;

/// Launches `body`, waits until the campaign runs plus `after`, sends `sig`; returns the child.
fn started(sb: &Sandbox, body: &str, after: Duration) -> Running {
    let cfg = sb.write("c.toml", body);
    let child = Running::spawn(sb.launch(&cfg), Some(&sb.root));
    assert!(
        wait_until(Duration::from_secs(20), || child.stdout_so_far().contains("stressctl: campaign ")),
        "the campaign did not start\n{}",
        child.stdout_so_far()
    );
    std::thread::sleep(after);
    child
}

#[test]
fn sighup_stops_gracefully_writes_reports_and_removes_lock_and_socket() {
    let sb = Sandbox::new("life-sighup");
    let body = format!("{}{}{}", header("hangup", ""), synthetic_task("2ms", 0.0), phase("long", "60s", 2, ""));
    let child = started(&sb, &body, Duration::from_millis(1500));
    assert!(sb.state.join("control.sock").exists(), "no control socket while running");
    child.signal(libc::SIGHUP);
    let out = child.finish(Duration::from_secs(15));
    out.expect_code(1);
    let r = read_json(&sb.campaign_dir().join("campaign_report.json"));
    assert_eq!(r["outcome"], "emergency_stopped");
    assert!(r["stop_reason"].as_str().unwrap_or("").contains("SIGHUP"), "stop_reason: {}", r["stop_reason"]);
    assert!(sb.campaign_dir().join("summary.txt").is_file());
    assert!(!sb.state.join("stressctl.lock").exists(), "the lock was left behind");
    assert!(!sb.state.join("control.sock").exists(), "the socket was left behind");
}

#[test]
fn an_op_hung_past_the_phase_end_is_a_failed_timeout_op() {
    let sb = Sandbox::new("life-hang");
    // one token at 1 s: the op that takes it hangs for op_timeout (60 s), far past the 2 s phase
    // and its 1 s grace; it must be counted as a failed op, not lost
    let body = format!(
        "{}{}\n[browser]\nop_timeout = \"60s\"\n{}\n[[faults]]\nkind = \"hang\"\nevery = \"1s\"\n",
        header("hang", "grace_period = \"1s\""),
        synthetic_task("2ms", 0.0),
        phase("short", "2s", 1, "")
    );
    let child = started(&sb, &body, Duration::ZERO);
    let out = child.finish(Duration::from_secs(30));
    let r = read_json(&sb.campaign_dir().join("campaign_report.json"));
    let p = &r["phases"][0];
    assert_eq!(count(&p["ops_failed"], "ops_failed"), 1, "the abandoned op is not counted\n{}", out.describe());
    assert_eq!(count(&p["errors_by_class"]["timeout"], "timeout"), 1, "{}", p["errors_by_class"]);
    assert_eq!(
        count(&p["ops_attempted"], "attempted"),
        count(&p["ops_succeeded"], "succeeded") + 1,
        "attempted = succeeded + the abandoned op"
    );
    assert!(p["top_errors"].to_string().contains("abandoned"), "{}", p["top_errors"]);
    assert_eq!(p["faults_injected"]["hang"], 1, "{}", p["faults_injected"]);
    // one op hung until its grace ran out: the phase took about 2 s + the 1 s grace, not 60 s
    assert!(num(&r["wall_time_s"], "wall") < 20.0);
}

#[test]
fn a_run_stopped_before_its_plan_completed_is_never_a_pass() {
    let sb = Sandbox::new("life-cut");
    let body = format!(
        "{}{}{}{}{}",
        header("cut", ""),
        synthetic_task("2ms", 0.0),
        phase("one", "60s", 1, ""),
        phase("two", "5s", 1, ""),
        phase("three", "5s", 1, "")
    );
    let child = started(&sb, &body, Duration::from_millis(1500));
    child.signal(libc::SIGTERM);
    let out = child.finish(Duration::from_secs(15));
    out.expect_code(1);
    let r = read_json(&sb.campaign_dir().join("campaign_report.json"));
    let v = &r["verdict"];
    assert_eq!(v["passed"], false, "{v}");
    assert_eq!(v["plan_completed"], false, "{v}");
    assert_eq!(v["phases_planned"], 3, "{v}");
    let reasons = v["reasons"].to_string();
    assert!(reasons.contains("0 of 3 planned phases") && reasons.contains("SIGTERM"), "{reasons}");
    let summary = std::fs::read_to_string(sb.campaign_dir().join("summary.txt")).unwrap();
    assert!(summary.contains("Verdict: FAIL (1 of 1 phases passed, 3 planned)"), "{summary}");
}

#[test]
fn a_suspended_process_is_noted_in_the_phase_report_and_summary() {
    let sb = Sandbox::new("life-stop");
    let body = format!("{}{}{}", header("suspended", ""), synthetic_task("2ms", 0.0), phase("long", "8s", 1, ""));
    let child = started(&sb, &body, Duration::from_millis(1500));
    child.signal(libc::SIGSTOP);
    std::thread::sleep(Duration::from_secs(3));
    child.signal(libc::SIGCONT);
    let out = child.finish(Duration::from_secs(30));
    let r = read_json(&sb.campaign_dir().join("campaign_report.json"));
    let p = &r["phases"][0];
    assert!(count(&p["suspended_ms"], "suspended_ms") >= 2_000, "{}\n{}", p, out.describe());
    assert!(p["notes"].to_string().contains("suspended"), "{}", p["notes"]);
    let summary = std::fs::read_to_string(sb.campaign_dir().join("summary.txt")).unwrap();
    assert!(summary.contains("suspended or starved"), "{summary}");
    let events = read_events(&sb.campaign_dir().join("events.jsonl"));
    assert!(events.iter().any(|e| e["kind"] == "clock_gap"), "no clock_gap event");
}

#[test]
fn summary_txt_holds_no_raw_json() {
    let sb = Sandbox::new("life-summary");
    let body = format!("{}{}{}", header("tidy", ""), synthetic_task("1ms", 0.2), phase("one", "2s", 2, ""));
    let cfg = sb.write("c.toml", &body);
    let out = run(sb.launch(&cfg), Duration::from_secs(60));
    let summary = std::fs::read_to_string(sb.campaign_dir().join("summary.txt")).unwrap();
    assert!(!summary.contains("{\"") && !summary.contains("\":"), "raw JSON in summary.txt\n{summary}\n{}", out.describe());
    // the breaker table: one row per breaker with its state and counters
    let header_line = summary.lines().find(|l| l.contains("scope") && l.contains("rejected")).unwrap_or_else(|| panic!("{summary}"));
    assert!(header_line.contains("time open") && header_line.contains("health"), "{header_line}");
    assert!(summary.lines().any(|l| l.trim_start().starts_with("task:synthetic")), "{summary}");
    let r: Value = read_json(&sb.campaign_dir().join("campaign_report.json"));
    assert!(r["breakers"]["final"]["tasks"]["synthetic"]["calls"].as_u64().unwrap_or(0) > 0, "{}", r["breakers"]);
}
