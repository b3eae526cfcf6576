//! The overnight defaults, end to end with short phases (issue 26): progressive escalation scales
//! a phase down after a strained one and back up to plan after a healthy one, each decision an
//! event and a campaign-log line with its reason.

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
