//! The log files as users tail them (issue 26, part 1): after a short synthetic campaign the last
//! 50 lines of the campaign log show progress lines, each phase's result with its criteria and the
//! verdict, every line of an event with its correlation id; the guardian log has one compact line
//! per sample; a guardian trip and the stop it causes are in the campaign log.

use crate::common::*;
use std::time::Duration;

const T: Duration = Duration::from_secs(90);

/// The run's log file of `component`.
fn log_of(sb: &Sandbox, component: &str, id: &str) -> String {
    let p = sb.logs.join(format!("{component}_{id}.log"));
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// The last `n` lines, as `tail -n` shows them.
fn tail(text: &str, n: usize) -> Vec<&str> {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].to_vec()
}

fn config(safety: &str) -> String {
    format!(
        r#"[campaign]
name = "logs"
progressive_escalation = false
auto_recovery = false

[logging]
progress_interval = "1s"

[safety]
sample_interval = "250ms"
reserve_percent = 0
{safety}
{}{}{}"#,
        synthetic_task("2ms", 0.0),
        phase("first", "2500ms", 1, "stress_level = \"low\""),
        phase("second", "2500ms", 2, "stress_level = \"moderate\""),
    )
}

#[test]
fn the_campaign_log_tail_shows_progress_results_and_the_verdict() {
    let sb = Sandbox::new("logs-tail");
    let cfg = sb.write("logs.toml", &config("memory_percent = 100\ncpu_percent = 100\ndisk_percent = 100"));
    let out = run(sb.launch(&cfg), T);
    out.expect_code(0);
    let id = out.campaign_id();
    let log = log_of(&sb, "campaign", &id);
    let last = tail(&log, 50);
    let has = |needle: &str| last.iter().any(|l| l.contains(needle));
    for (i, name) in [(1, "first"), (2, "second")] {
        assert!(has(&format!("progress {i}/2 {name} ")), "no progress line of phase {name} in the tail:\n{}", last.join("\n"));
        let result = last
            .iter()
            .find(|l| l.contains(&format!("phase {i}/2 {name} completed: PASSED")))
            .unwrap_or_else(|| panic!("no result line of phase {name}:\n{}", last.join("\n")));
        assert!(result.contains("% ok") || result.contains("success "), "{result}");
        assert!(result.contains("(min ") && result.contains("(max "), "the result line must give the criteria: {result}");
        assert!(result.contains(&format!("corr={id}/{name}")), "no correlation id: {result}");
    }
    let progress = last.iter().find(|l| l.contains("progress 2/2")).unwrap();
    for part in [" ops, ", "% ok, ", " ops/s, ", "p95 ", " sessions, health ", ", worst "] {
        assert!(progress.contains(part), "progress line lacks {part:?}: {progress}");
    }
    let verdict = last.iter().find(|l| l.contains("verdict: campaign passed")).unwrap_or_else(|| panic!("no verdict:\n{log}"));
    assert!(verdict.contains(&format!("corr={id}")), "{verdict}");
    // one line per phase start, one per result: no duplicates
    assert_eq!(log.lines().filter(|l| l.contains("phase first (2 planned) started")).count(), 1, "{log}");

    let guardian = log_of(&sb, "guardian", &id);
    let samples: Vec<&str> = guardian.lines().filter(|l| l.contains(" cpu=") && l.contains(" mem=") && l.contains(" health=")).collect();
    // 5 s of phases sampled every 250 ms
    assert!(samples.len() >= 10, "too few guardian lines ({}):\n{guardian}", samples.len());
    assert!(samples.iter().any(|l| l.contains("phase=second")), "{guardian}");
    assert!(!guardian.contains("progress "), "the guardian log holds samples only");
}

#[test]
fn a_guardian_trip_is_in_the_campaign_log() {
    let sb = Sandbox::new("logs-trip");
    // any host uses more than 1 % of its memory: the guardian trips on its first samples
    let cfg = sb.write("trip.toml", &config("memory_percent = 1\nconsecutive_violations = 2"));
    let out = run(sb.launch(&cfg), T);
    out.expect_code(1);
    let id = out.campaign_id();
    let log = log_of(&sb, "campaign", &id);
    assert!(log.lines().any(|l| l.contains("guardian violation: memory") && l.contains("corr=")), "{log}");
    assert!(log.contains("stopping the campaign (auto_recovery is off)"), "{log}");
    let verdict = tail(&log, 50).into_iter().find(|l| l.contains("verdict: campaign emergency_stopped")).map(str::to_string);
    assert!(verdict.is_some_and(|v| v.contains("guardian: memory")), "{log}");
    assert!(log_of(&sb, "guardian", &id).contains("over=memory"));
}
