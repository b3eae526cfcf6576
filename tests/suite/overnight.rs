//! The overnight defaults, end to end with short synthetic phases (issue 26): progressive
//! escalation scales a phase down after a strained one and back up to plan after a healthy one,
//! each decision an event and a campaign-log line with its reason; `max_campaign_duration` stops
//! a campaign that overruns it, naming the reason; a guardian trip with auto-recovery cools down
//! and stops when health has not recovered.

use crate::common::*;
use std::time::Duration;

const T: Duration = Duration::from_secs(90);

#[test]
fn escalation_scales_down_after_a_strained_phase_and_back_up_after_a_healthy_one() {
    let sb = Sandbox::new("escalation");
    // phase `strained` judges memory against 1 %: every sample is over it (strain without a trip:
    // 1000 violations in a row would be needed); the others judge it against 100 %, which leaves
    // no margin to miss. A health requirement of 0 keeps the health wait out of the picture.
    let body = format!(
        r#"[campaign]
name = "escalation"
progressive_escalation = true
baseline_health_requirement = 0
auto_recovery = false

[safety]
sample_interval = "250ms"
consecutive_violations = 1000
memory_percent = 100
cpu_percent = 100
disk_percent = 100
reserve_percent = 0
{}{}{}{}"#,
        synthetic_task("2ms", 0.0),
        phase("strained", "1500ms", 2, "[phases.safety]\nmemory_percent = 1"),
        phase("after", "1500ms", 2, ""),
        phase("recovered", "1500ms", 2, ""),
    );
    let cfg = sb.write("esc.toml", &body);
    let out = run(sb.launch(&cfg), T);
    out.expect_code(0);
    let r = read_json(&sb.campaign_dir().join("campaign_report.json"));
    let sessions: Vec<u64> = r["phases"].as_array().unwrap().iter().map(|p| count(&p["sessions"], "sessions")).collect();
    assert_eq!(sessions, [2, 1, 2], "strained phase at plan, the next halved, the last back up to plan\n{}", out.describe());

    let notes: Vec<String> =
        events_of_kind(&sb.campaign_dir(), "phase_adjusted").iter().map(|e| e["data"]["note"].as_str().unwrap_or("").to_string()).collect();
    assert!(notes.iter().any(|n| n.contains("scaled down from 2 to 1 sessions: phase strained was strained: memory")), "{notes:?}");
    assert!(notes.iter().any(|n| n.contains("back up to plan (2 sessions): phase after had headroom")), "{notes:?}");
    let log = std::fs::read_to_string(sb.logs.join(format!("campaign_{}.log", out.campaign_id()))).unwrap();
    assert!(log.lines().any(|l| l.contains("escalation: scaled down from 2 to 1") && l.contains("/after")), "{log}");
    assert!(log.lines().any(|l| l.contains("escalation: back up to plan") && l.contains("/recovered")), "{log}");
}

/// A synthetic campaign of `phases` 2 s phases with `campaign` and `safety` lines added.
fn synthetic(name: &str, campaign: &str, safety: &str, phases: &[&str]) -> String {
    let mut body = format!(
        r#"[campaign]
name = "{name}"
{campaign}

[safety]
sample_interval = "250ms"
reserve_percent = 0
cpu_percent = 100
disk_percent = 100
{safety}
{}"#,
        synthetic_task("2ms", 0.0)
    );
    for p in phases {
        body.push_str(&phase(p, "2s", 1, ""));
    }
    body
}

#[test]
fn max_campaign_duration_stops_the_campaign_and_names_the_reason() {
    let sb = Sandbox::new("max-duration");
    // the phases fit in the cap, but the first waits for health (judged against 1 % of memory, so
    // it never comes) up to 20 s: the cap of 6 s stops the campaign while it waits
    let cfg = sb.write(
        "cap.toml",
        &synthetic(
            "cap",
            "auto_recovery = false\nprogressive_escalation = true\nbaseline_health_requirement = 90\nescalation_delay = \"20s\"",
            "memory_percent = 1\nconsecutive_violations = 1000\nmax_campaign_duration = \"6s\"",
            &["one", "two", "three"],
        ),
    );
    let out = run(sb.launch(&cfg), T);
    out.expect_code(1);
    let r = read_json(&sb.campaign_dir().join("campaign_report.json"));
    assert_ne!(r["outcome"], "passed", "{}", out.describe());
    let reason = r["stop_reason"].as_str().unwrap_or_default();
    assert!(reason.contains("max_campaign_duration (6s) reached"), "{reason}\n{}", out.describe());
    let ran = r["phases"].as_array().unwrap().iter().filter(|p| count(&p["ops_attempted"], "ops") > 0).count();
    assert!(ran < 3, "the cap must stop the campaign before its last phase");
    let log = std::fs::read_to_string(sb.logs.join(format!("campaign_{}.log", out.campaign_id()))).unwrap();
    assert!(log.lines().any(|l| l.contains("verdict: campaign emergency_stopped (max_campaign_duration")), "{log}");
}

#[test]
fn a_trip_cools_down_and_stops_when_health_has_not_recovered() {
    let sb = Sandbox::new("cooldown-stop");
    // any host uses more than 1 % of its memory: the guardian trips, cools down for 1 s, finds
    // memory still over and stops the campaign, naming both
    let cfg = sb.write(
        "cool.toml",
        &synthetic(
            "cool",
            "progressive_escalation = false\nauto_recovery = true\nmax_auto_recoveries = 2\ncooldown = \"1s\"",
            "memory_percent = 1\nconsecutive_violations = 2",
            &["one", "two"],
        ),
    );
    let out = run(sb.launch(&cfg), T);
    out.expect_code(1);
    let dir = sb.campaign_dir();
    let started = events_of_kind(&dir, "auto_recovery_started");
    assert_eq!(started.len(), 1, "one cooldown, then the stop\n{}", out.describe());
    assert!(events_of_kind(&dir, "auto_recovery_resumed").is_empty());
    let r = read_json(&dir.join("campaign_report.json"));
    let reason = r["stop_reason"].as_str().unwrap_or_default();
    assert!(reason.contains("guardian: memory") && reason.contains("had not recovered after the 1s cooldown"), "{reason}");
    let log = std::fs::read_to_string(sb.logs.join(format!("campaign_{}.log", out.campaign_id()))).unwrap();
    assert!(log.contains("pausing the campaign for auto-recovery"), "{log}");
    assert!(log.lines().any(|l| l.contains("cooling down 1s (auto-recovery 1)")), "{log}");
    assert!(log.lines().any(|l| l.contains("verdict: campaign emergency_stopped") && l.contains("had not recovered")), "{log}");
}
