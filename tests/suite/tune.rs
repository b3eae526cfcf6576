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

#[test]
fn a_capacity_result_tunes_the_session_counts_of_the_load_phases() {
    let sb = Sandbox::new("tune-capacity");
    // synthetic ops hold at every count: the search's answer is its bound, 4
    let search = phase(
        "cap",
        "30s",
        1,
        "kind = \"capacity\"\n[phases.criteria]\nmax_p95 = \"1s\"\n[phases.capacity]\nmax_sessions = 4\nstep_duration = \"2s\"\nwarmup = \"500ms\"\n",
    );
    let cap = sb.write("cap.toml", &format!("{}{}{search}", header("cap", ""), synthetic_task("2ms", 0.0)));
    run(sb.launch(&cap), Duration::from_secs(60)).expect_code(0);
    let id = ids(&sb).pop().expect("the capacity campaign");

    let phases = [phase("light", "2s", 1, "stress_level = \"low\""), phase("stress", "2s", 1, "stress_level = \"extreme\"")].concat();
    let load = sb.write("load.toml", &format!("{}{}{phases}", header("load", ""), synthetic_task("2ms", 0.0)));
    let out = run(sb.cmd(["tune", id.as_str(), "--config", &load.display().to_string()]), Duration::from_secs(30));
    out.expect_code(0);
    let overlay: toml::Table = out.stdout.parse().unwrap_or_else(|e| panic!("{e}\n{}", out.stdout));
    // a quarter of 4 for the low phase, all of it for the extreme one
    assert_eq!(overlay["phase_sessions"]["light"].as_integer(), Some(1), "{}", out.stdout);
    assert_eq!(overlay["phase_sessions"]["stress"].as_integer(), Some(4), "{}", out.stdout);
    assert!(
        out.stdout.contains(&format!("# capacity of {id} phase cap: 4 sessions held; stress level extreme runs 100% of it")),
        "{}",
        out.stdout
    );

    let tuned = run(sb.cmd(["launch", "--config", &load.display().to_string(), "--tuned-from", id.as_str()]), Duration::from_secs(60));
    tuned.expect_code(0);
    assert!(tuned.stdout.contains("stressctl: tuned phase_sessions.stress: 1 -> 4"), "{}", tuned.describe());
    let dir = sb.campaign_dirs().into_iter().find(|d| !d.ends_with(&id)).expect("the tuned campaign");
    let r = read_json(&dir.join("campaign_report.json"));
    assert_eq!(r["phases"][1]["sessions"], 4, "{}", r["phases"][1]);
    let listed = r["tuned"].to_string();
    assert!(listed.contains("phase_sessions.stress"), "{listed}");
    // bad input: a phase that does not exist, named
    let bad = sb.write("bad.toml", &format!("{}{}{phases}\n[phase_sessions]\nnope = 2\n", header("bad", ""), synthetic_task("2ms", 0.0)));
    let out = run(sb.cmd(["check", "--config", &bad.display().to_string()]), Duration::from_secs(30));
    out.expect_code(2);
    assert!(out.stderr.contains("phase_sessions.nope"), "{}", out.describe());
}
