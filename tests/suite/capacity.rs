//! Capacity phases (`kind = "capacity"`): a search of steps, each run like a phase and judged by
//! the phase's criteria after its warm-up, answered in every report — on real Chromium — and a
//! search killed mid-step that resumes where it stood.

use crate::common::*;
use serde_json::Value;
use std::ffi::OsString;
use std::time::Duration;

fn args(a: &[&str]) -> Vec<OsString> {
    a.iter().map(OsString::from).collect()
}

/// A capacity phase from `min` to `max` sessions, steps of `step` with `warmup` unmeasured.
fn capacity_phase(name: &str, budget: &str, (min, max): (u32, u32), (step, warmup): (&str, &str), extra: &str) -> String {
    phase(
        name,
        budget,
        min,
        &format!("kind = \"capacity\"\n{extra}\n[phases.capacity]\nmax_sessions = {max}\nstep = 1\nstep_duration = \"{step}\"\nwarmup = \"{warmup}\"\n"),
    )
}

/// The sessions of each step in the order measured, and whether each held.
fn steps_of(search: &Value) -> Vec<(u64, bool)> {
    let mut steps: Vec<&Value> = search["steps"].as_array().expect("steps").iter().collect();
    steps.sort_by_key(|s| s["order"].as_u64());
    steps.iter().map(|s| (count(&s["sessions"], "sessions"), s["passed"] == true)).collect()
}

#[test]
fn a_capacity_search_on_chromium_states_its_answer_in_every_report() {
    let _serial = BrowserLock::acquire();
    let sb = Sandbox::new("capacity");
    // one search whose criteria every count meets (up to its bound), one whose p95 limit no
    // count can meet: both answers are certain on any machine
    let lenient = "[phases.criteria]\nmin_success_rate = 0.9\nmax_p95 = \"30s\"";
    let strict = "[phases.criteria]\nmax_p95 = \"1ms\"";
    let phases =
        [capacity_phase("holds", "40s", (1, 3), ("4s", "1s"), lenient), capacity_phase("fails", "40s", (1, 3), ("4s", "1s"), strict)]
            .concat();
    let cfg = sb.write("cap.toml", &format!("{}{}{}", header("capacity", ""), webgpu_task(128), phases));
    let out = launch_leaving_nothing(&sb, &cfg, Duration::from_secs(180));
    // one of two phases passed: under the verdict's 70 %
    out.expect_code(1);
    assert!(out.stdout.contains("capacity step: 2 sessions hold"), "{}", out.describe());

    let dir = sb.campaign_dir();
    let r = read_json(&dir.join("campaign_report.json"));
    let holds = &r["phases"][0];
    let search = &holds["capacity"][0];
    assert_eq!(steps_of(search), [(1, true), (2, true), (3, true)], "{search}");
    assert_eq!(search["max_sustainable"], 3, "{search}");
    assert_eq!(search["complete"], true, "{search}");
    let answer = search["answer"].as_str().unwrap_or_default();
    assert!(answer.starts_with("max sustainable sessions: 3 (in-page p95 ") && answer.contains("upper bound"), "{answer}");
    assert_eq!(holds["criteria"]["passed"], true, "{}", holds["criteria"]);
    for s in search["steps"].as_array().into_iter().flatten() {
        // measured after the warm-up: about 3 s of a 4 s step, ops verified in the page
        let measured = num(&s["measured_s"], "measured_s");
        assert!((2.0..5.0).contains(&measured), "{s}");
        assert!(count(&s["attempted"], "ops") > 0 && num(&s["ops_per_s"], "ops/s") > 0.0, "{s}");
        assert_eq!(s["p95_basis"], "in_page", "{s}");
    }

    let fails = &r["phases"][1];
    let search = &fails["capacity"][0];
    assert_eq!(steps_of(search), [(1, false)], "{search}");
    assert_eq!(search["max_sustainable"], Value::Null, "{search}");
    let answer = search["answer"].as_str().unwrap_or_default();
    assert!(answer.starts_with("no sustainable count: 1 session already fails: in-page p95 ") && answer.contains("1 ms limit"), "{answer}");
    assert_eq!(fails["criteria"]["passed"], false);
    assert_eq!(fails["criteria"]["failures"][0].as_str(), Some(answer));

    let summary = std::fs::read_to_string(dir.join("summary.txt")).expect("summary");
    assert!(summary.contains("Capacity, phase 1: max sustainable sessions: 3 ("), "{summary}");
    assert!(summary.contains("Capacity (the most sessions") && summary.contains("1..3"), "{summary}");
    let md = std::fs::read_to_string(dir.join("summary.md")).expect("summary.md");
    assert!(md.contains("### Capacity") && md.contains("max sustainable sessions: 3"), "{md}");
    let junit = std::fs::read_to_string(dir.join("junit.xml")).expect("junit");
    assert!(junit.contains("phase 1 holds: capacity, the lowest count (1) holds") && junit.contains("type=\"capacity\""), "{junit}");
    let html = std::fs::read_to_string(dir.join("report.html")).expect("html");
    assert!(html.contains("<h2>Capacity</h2>") && html.contains("class=\"capacity-curve\""), "capacity section missing");
    assert_eq!(events_of_kind(&dir, "capacity_step").len(), 4);

    // every report is rebuilt byte for byte from the store
    let files = ["campaign_report.json", "summary.txt", "summary.md", "junit.xml", "report.html", "phase_01_holds.json"];
    let written: Vec<Vec<u8>> = files.iter().map(|f| std::fs::read(dir.join(f)).expect("report file")).collect();
    let id = out.campaign_id();
    run(sb.cmd(args(&["report", &id])), Duration::from_secs(60)).expect_code(0);
    for (f, bytes) in files.iter().zip(&written) {
        assert!(std::fs::read(dir.join(f)).expect("rebuilt") == *bytes, "{f} differs after `report {id}`");
    }
}

#[test]
fn a_capacity_search_killed_mid_step_resumes_where_it_stood() {
    let sb = Sandbox::new("capacity-resume");
    // synthetic ops (no browser) hold at every count: 1, 2, 4, 8
    let search = phase(
        "cap",
        "60s",
        1,
        "kind = \"capacity\"\n[phases.criteria]\nmax_p95 = \"1s\"\n[phases.capacity]\nmax_sessions = 8\nstep_duration = \"2s\"\nwarmup = \"500ms\"\n",
    );
    let cfg = sb.write("cap.toml", &format!("{}{}{}", header("capacity-resume", ""), synthetic_task("2ms", 0.0), search));
    let running = Running::spawn(sb.launch(&cfg), None);
    let two_steps =
        || sb.campaign_dirs().first().is_some_and(|d| d.join("events.jsonl").exists() && events_of_kind(d, "capacity_step").len() >= 2);
    assert!(wait_until(Duration::from_secs(60), two_steps), "two steps never measured\n{}", running.stdout_so_far());
    // mid-step: the third step is under way
    std::thread::sleep(Duration::from_millis(700));
    running.signal(libc::SIGKILL);
    let killed = running.finish(Duration::from_secs(10));
    assert_eq!(killed.code(), None, "killed by a signal");
    let dir = sb.campaign_dir();
    let before = events_of_kind(&dir, "capacity_step").len();

    let out = run(sb.cmd(args(&["launch", "--resume"])), Duration::from_secs(90));
    out.expect_code(0);
    let r = read_json(&dir.join("campaign_report.json"));
    let search = &r["phases"][0]["capacity"][0];
    // each count measured once: the steps before the kill are kept, the search goes on from them
    assert_eq!(steps_of(search), [(1, true), (2, true), (4, true), (8, true)], "{search}");
    assert_eq!(search["max_sustainable"], 8);
    assert_eq!(events_of_kind(&dir, "capacity_step").len(), 4);
    // the steps the store had when the process died (events.jsonl may lag it by a write)
    let notes = r["phases"][0]["notes"].to_string();
    let kept = (before.saturating_sub(1)..=before + 1).any(|n| notes.contains(&format!("continues from the {n} step(s) measured before")));
    assert!(kept && before >= 2, "{before} steps before the kill; notes {notes}");
    assert_eq!(r["resumes"], 1);
}

#[test]
fn a_capacity_phase_over_two_browsers_searches_each_on_its_own() {
    let _serial = BrowserLock::acquire();
    let sb = Sandbox::new("capacity-browsers");
    let workers = "\n[[workers]]\nid = \"c1\"\nmanaged = true\n\n[[workers]]\nid = \"ff\"\nmanaged = true\nbrowser = \"firefox\"\n";
    let lenient = "browsers = [\"chromium\", \"firefox\"]\n[phases.criteria]\nmin_success_rate = 0.9\nmax_p95 = \"30s\"";
    let search = capacity_phase("both", "60s", (1, 2), ("4s", "1s"), lenient);
    let cfg = sb.write("cap.toml", &format!("{}{}{workers}{search}", header("capacity-browsers", ""), webgpu_task(64)));
    let out = launch_leaving_nothing(&sb, &cfg, Duration::from_secs(180));
    out.expect_code(0);
    let dir = sb.campaign_dir();
    let r = read_json(&dir.join("campaign_report.json"));
    let searches = r["phases"][0]["capacity"].as_array().expect("capacity");
    let browsers: Vec<&str> = searches.iter().filter_map(|c| c["browser"].as_str()).collect();
    assert_eq!(browsers, ["chromium", "firefox"], "{searches:?}");
    for c in searches {
        assert_eq!(steps_of(c), [(1, true), (2, true)], "{c}");
        let answer = c["answer"].as_str().unwrap_or_default();
        assert!(answer.starts_with(&format!("{}: max sustainable sessions: 2 (", c["browser"].as_str().unwrap_or_default())), "{answer}");
    }
    // each search's ops ran on its own browser only
    let per_browser = &r["phases"][0]["browsers"];
    for b in ["chromium", "firefox"] {
        assert!(count(&per_browser[b]["ops_succeeded"], "ops") > 0, "{per_browser}");
    }
    let summary = std::fs::read_to_string(dir.join("summary.txt")).expect("summary");
    assert!(summary.contains("Capacity, phase 1: chromium: max sustainable sessions: 2"), "{summary}");
    assert!(summary.contains("Capacity, phase 1: firefox: max sustainable sessions: 2"), "{summary}");
}
