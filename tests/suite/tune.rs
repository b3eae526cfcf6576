//! `stressctl tune ID…` on the stores of two real (short) WebGPU campaigns, and a third campaign
//! launched `--tuned-from` them that passes and lists what was tuned, old -> new.

use crate::common::*;
use std::time::Duration;

fn config(sb: &Sandbox, name: &str, faults: &str) -> std::path::PathBuf {
    let lenient = "stress_level = \"low\"\n[phases.criteria]\nmin_success_rate = 0.5\nmax_p95 = \"30s\"";
    let workers = "\n[[workers]]\nid = \"w1\"\nmanaged = true\n";
    sb.write(
        &format!("{name}.toml"),
        &format!("{}{}{workers}{faults}{}", header(name, ""), webgpu_task(32), phase("one", "4s", 1, lenient)),
    )
}

fn ids(sb: &Sandbox) -> Vec<String> {
    let out = run(sb.cmd(["report", "--list"]), Duration::from_secs(30));
    out.expect_code(0);
    out.stdout.lines().map(str::to_string).collect()
}

#[test]
fn tune_prints_an_overlay_from_two_campaigns_and_a_campaign_tuned_from_them_lists_it() {
    let _lock = BrowserLock::acquire();
    let sb = Sandbox::new("tune");
    // the first night had page errors the ladder recovered from (times to recover); the second none
    let faulty = config(&sb, "faulty", "\n[[faults]]\nkind = \"throw\"\nevery = \"1s\"\n");
    launch_leaving_nothing(&sb, &faulty, Duration::from_secs(90)).expect_code(0);
    let clean = config(&sb, "clean", "");
    launch_leaving_nothing(&sb, &clean, Duration::from_secs(90)).expect_code(0);
    let ids = ids(&sb);
    assert_eq!(ids.len(), 2, "{ids:?}");

    let mut args = vec!["tune".to_string()];
    args.extend(ids.iter().cloned());
    let out = run(sb.cmd(&args), Duration::from_secs(30));
    out.expect_code(0);
    let overlay: toml::Table = out.stdout.parse().unwrap_or_else(|e| panic!("the overlay does not parse back: {e}\n{}", out.stdout));
    let op_timeout = overlay["browser"]["op_timeout"].as_str().expect("browser.op_timeout tuned").to_string();
    assert!(overlay["breaker"]["failure_rate_threshold"].as_float().is_some(), "{}", out.stdout);
    assert!(overlay["breaker"]["recovery_timeout"].as_str().is_some(), "the throws were recovered from: {}", out.stdout);
    // the throws (script errors) were recovered by a retry, the ladder's first rung for them
    assert_eq!(overlay["recovery"]["first_rung"]["script_error"].as_str(), Some("retry"), "{}", out.stdout);
    for measurement in [
        "# in-page p99.9",
        "# highest failure rate in a passing phase",
        "measured times to recover",
        "# retry recovered script_error most often",
    ] {
        assert!(out.stdout.contains(measurement), "{measurement:?} not named in\n{}", out.stdout);
    }

    // an unknown id: exit 2 naming it
    let bad = run(sb.cmd(["tune", ids[0].as_str(), "20200101T000000Z-dead"]), Duration::from_secs(30));
    bad.expect_code(2);
    assert!(bad.stderr.contains("20200101T000000Z-dead"), "{}", bad.describe());

    let mut launch: Vec<std::ffi::OsString> = vec!["launch".into(), "--config".into(), clean.clone().into(), "--tuned-from".into()];
    launch.extend(ids.iter().map(Into::into));
    let before = snapshot();
    let tuned = run_marked(sb.cmd(launch), &sb.root, Duration::from_secs(90));
    assert_no_orphans(&before, &sb.root);
    tuned.expect_code(0);
    assert!(tuned.stdout.contains(&format!("stressctl: tuned browser.op_timeout: \"10s\" -> \"{op_timeout}\"")), "{}", tuned.describe());
    let dir = sb.out.join(tuned.campaign_id());
    let r = read_json(&dir.join("campaign_report.json"));
    assert_eq!(r["tuned"]["from"], serde_json::json!(ids), "{}", r["tuned"]);
    let settings = r["tuned"]["settings"].as_array().expect("tuned settings");
    let op = settings.iter().find(|s| s["key"] == "browser.op_timeout").expect("op_timeout listed");
    assert_eq!((op["old"].as_str(), op["new"].as_str()), (Some("\"10s\""), Some(format!("\"{op_timeout}\"").as_str())), "{op}");
    assert!(op["source"].as_str().is_some_and(|s| s.contains("in-page p99.9")), "{op}");
    // a [breaker] key is listed per scope
    for scope in ["worker", "browser", "task", "hardware"] {
        let key = format!("breaker.{scope}.failure_rate_threshold");
        assert!(settings.iter().any(|s| s["key"] == key.as_str() && s["old"] != s["new"]), "{key} in {settings:?}");
    }
    let rung = settings.iter().find(|s| s["key"] == "recovery.first_rung.script_error").expect("first rung listed");
    assert_eq!((rung["old"].as_str(), rung["new"].as_str()), (Some("\"retry\""), Some("\"retry\"")), "listed even unchanged: {rung}");
    let summary = std::fs::read_to_string(dir.join("summary.txt")).expect("summary.txt");
    assert!(summary.contains(&format!("Tuned from {}", ids.join(", "))), "{summary}");
    assert!(summary.contains(&format!("browser.op_timeout: \"10s\" -> \"{op_timeout}\"")), "{summary}");
}
