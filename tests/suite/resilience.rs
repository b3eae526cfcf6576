//! Keeping the host safe and nothing lost: the guardian's trip, the control channel, breakers
//! and recovery under real faults, resume after SIGKILL, report rebuild/compare, damaged stores
//! and a full disk. Browser tests take the shared lock and end with an orphan check.

use crate::common::*;
use serde_json::Value;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

const LONG: Duration = Duration::from_secs(150);

/// Like `header`, but with a `[safety]` table of the test's own.
fn header_with_safety(name: &str, campaign_extra: &str, safety: &str) -> String {
    format!(
        "[campaign]\nname = \"{name}\"\nprogressive_escalation = false\nauto_recovery = false\n{campaign_extra}\n\n[safety]\n{safety}\n"
    )
}

fn args(a: &[&str]) -> Vec<OsString> {
    a.iter().map(OsString::from).collect()
}

fn status_json(sb: &Sandbox) -> Option<Value> {
    let out = run(sb.cmd(args(&["status", "--json"])), Duration::from_secs(10));
    if out.code() != Some(0) {
        return None;
    }
    serde_json::from_str(out.stdout.trim()).ok()
}

fn ops_so_far(sb: &Sandbox) -> u64 {
    status_json(sb).and_then(|s| s["ops"]["attempted"].as_u64()).unwrap_or(0)
}

fn store_of(sb: &Sandbox, id: &str) -> PathBuf {
    sb.state.join("runs").join(id).join("store.sqlite")
}

#[test]
fn guardian_trips_on_memory_and_stops_the_campaign() {
    let sb = Sandbox::new("guardian-mem");
    // memory in use is always above 1 %: every sample violates
    let safety = "sample_interval = \"250ms\"\nmemory_percent = 1\ncpu_percent = 100\ndisk_percent = 100\nconsecutive_violations = 3";
    let cfg = sb.write(
        "g.toml",
        &format!("{}{}{}", header_with_safety("guard", "", safety), synthetic_task("1ms", 0.0), phase("long", "60s", 1, "")),
    );
    let t0 = Instant::now();
    let out = run(sb.launch(&cfg), LONG);
    out.expect_code(1);
    assert!(t0.elapsed() < Duration::from_secs(20), "the trip took {:?}\n{}", t0.elapsed(), out.describe());
    let r = read_json(&sb.campaign_dir().join("campaign_report.json"));
    assert_eq!(r["outcome"], "emergency_stopped");
    let reason = r["stop_reason"].as_str().unwrap_or_default();
    assert!(reason.contains("memory") && reason.contains("1%") && reason.contains("3 consecutive"), "{reason}");
    assert!(r["guardian"]["violations"].as_u64().unwrap_or(0) >= 3, "{}", r["guardian"]);
    assert!(r["phases"][0]["resources"]["samples"].as_u64().unwrap_or(0) >= 3, "{}", r["phases"][0]["resources"]);
    assert!(!r["phases"][0]["violations"].as_array().expect("violations").is_empty());
    assert_eq!(r["phases"][0]["status"], "stopped");
}

#[test]
fn status_moves_second_launch_is_refused_and_emergency_stop_stops() {
    let sb = Sandbox::new("control");
    let cfg = sb.write("c.toml", &format!("{}{}{}", header("ctl", ""), synthetic_task("2ms", 0.0), phase("long", "90s", 2, "")));
    let running = Running::spawn(sb.launch(&cfg), None);
    assert!(wait_until(Duration::from_secs(20), || ops_so_far(&sb) > 0), "status never answered with ops\n{}", running.stdout_so_far());
    let st = status_json(&sb).expect("status --json parses");
    let id = st["campaign_id"].as_str().expect("campaign_id").to_string();
    assert_eq!(st["phase"]["name"], "long");
    assert_eq!(st["state"], "running");
    let first = ops_so_far(&sb);
    assert!(wait_until(Duration::from_secs(10), || ops_so_far(&sb) > first), "ops did not move past {first}");

    let second = run(sb.launch(&cfg), Duration::from_secs(20));
    second.expect_code(1);
    assert!(second.stderr.contains("already running") && second.stderr.contains(&id), "{}", second.describe());

    let text = run(sb.cmd(args(&["status"])), Duration::from_secs(10));
    text.expect_code(0);
    assert!(text.stdout.contains(&id) && text.stdout.contains("phase 1/1 long"), "{}", text.describe());

    let t0 = Instant::now();
    let stop = run(sb.cmd(args(&["emergency-stop", "--reason", "test says stop"])), Duration::from_secs(40));
    stop.expect_code(0);
    assert!(t0.elapsed() < Duration::from_secs(10), "graceful stop took {:?}", t0.elapsed());
    let out = running.finish(Duration::from_secs(20));
    out.expect_code(1);
    let r = read_json(&sb.campaign_dir().join("campaign_report.json"));
    assert_eq!(r["outcome"], "emergency_stopped");
    assert!(r["stop_reason"].as_str().unwrap_or_default().contains("test says stop"), "{}", r["stop_reason"]);

    // nothing runs any more: both commands say so and exit 1
    let st = run(sb.cmd(args(&["status"])), Duration::from_secs(10));
    st.expect_code(1);
    assert!(st.stderr.contains("no campaign is running"), "{}", st.describe());
    run(sb.cmd(args(&["emergency-stop"])), Duration::from_secs(10)).expect_code(1);
    assert!(!sb.state.join("control.sock").exists() && !sb.state.join("stressctl.lock").exists());
}

#[test]
fn a_stale_lock_is_reported_and_cleared() {
    let sb = Sandbox::new("stale-lock");
    std::fs::create_dir_all(&sb.state).unwrap();
    // pid 1 exists but never with this start time: the lock's holder is gone
    let lock = r#"{"pid":1,"start_time":42,"campaign_id":"20200101T000000Z-dead","started_at":"2020-01-01T00:00:00Z","socket":"/nonexistent.sock"}"#;
    std::fs::write(sb.state.join("stressctl.lock"), lock).unwrap();
    let st = run(sb.cmd(args(&["status"])), Duration::from_secs(10));
    st.expect_code(1);
    assert!(st.stderr.contains("stale lock") && st.stderr.contains("dead"), "{}", st.describe());
    let cfg = sb.write("s.toml", &format!("{}{}{}", header("stale", ""), synthetic_task("1ms", 0.0), phase("p", "1s", 1, "")));
    let out = run(sb.launch(&cfg), LONG);
    out.expect_code(0);
    assert!(out.stdout.contains("removed a stale lock") && out.stdout.contains("20200101T000000Z-dead"), "{}", out.describe());
}

#[test]
fn forced_emergency_stop_during_a_browser_phase_leaves_nothing() {
    let _serial = BrowserLock::acquire();
    let sb = Sandbox::new("force-stop");
    let cfg = sb.write("f.toml", &format!("{}{}{}", header("force", ""), webgpu_task(32), phase("long", "90s", 2, "")));
    let before = snapshot();
    let running = Running::spawn(sb.launch(&cfg), Some(&sb.root));
    assert!(wait_until(Duration::from_secs(60), || ops_so_far(&sb) >= 4), "no browser ops\n{}", running.stdout_so_far());
    let t0 = Instant::now();
    let stop = run(sb.cmd(args(&["emergency-stop", "--force"])), Duration::from_secs(30));
    stop.expect_code(0);
    let took = t0.elapsed();
    let out = running.finish(Duration::from_secs(30));
    assert_no_orphans(&before, &sb.root);
    out.expect_code(1);
    assert!(took < Duration::from_secs(10), "forced stop took {took:?}");
    let r = read_json(&sb.campaign_dir().join("campaign_report.json"));
    assert_eq!(r["outcome"], "emergency_stopped");
    assert!(r["phases"][0]["ops_succeeded"].as_u64().unwrap_or(0) > 0);
}

#[test]
fn a_worker_whose_driver_is_killed_for_good_is_routed_around() {
    let _serial = BrowserLock::acquire();
    let sb = Sandbox::new("two-workers");
    let cfg = killed_worker_campaign(&sb);
    let out = launch_leaving_nothing(&sb, &cfg, LONG);
    assert!(matches!(out.code(), Some(0) | Some(1)), "{}", out.describe());
    let r = read_json(&sb.campaign_dir().join("campaign_report.json"));
    let broken = &r["phases"][1];
    assert_eq!(broken["name"], "broken");
    assert!(broken["ops_succeeded"].as_u64().unwrap_or(0) > 20, "the phase must go on on w2: {broken}");
    let opened = r["breakers"]["transitions"].as_array().expect("transitions").iter().any(|t| t["key"] == "worker:w1" && t["to"] == "open");
    assert!(opened, "worker:w1 never opened: {}", r["breakers"]["transitions"]);
    assert!(
        r["breakers"]["final"]["workers"]["w1"].is_object() && r["breakers"]["final"]["workers"]["w2"].is_object(),
        "{}",
        r["breakers"]["final"]
    );
    let events = read_events(&sb.campaign_dir().join("events.jsonl"));
    assert!(events.iter().any(|e| e["kind"] == "fault_injected" && e["data"]["kind"] == "kill_driver"));
}

#[test]
fn real_faults_are_recovered_and_reported_per_class_and_strategy() {
    let _serial = BrowserLock::acquire();
    let sb = Sandbox::new("faults");
    let faults = "\n[breaker]\nrecovery_timeout = \"1s\"\n\n[[faults]]\nkind = \"kill_browser\"\nevery = \"3s\"\n\n\
                  [[faults]]\nkind = \"hang\"\nevery = \"4s\"\n\n[[faults]]\nkind = \"kill_driver\"\nevery = \"7s\"\n\n\
                  [[faults]]\nkind = \"throw\"\nevery = \"2s\"\n";
    let task = webgpu_task(32).replace("op_timeout = \"10s\"", "op_timeout = \"2s\"");
    let cfg = sb
        .write("f.toml", &format!("{}{}{}{}", header("faults", ""), task, faults, phase("chaos", "15s", 2, "stress_level = \"extreme\"")));
    let out = launch_leaving_nothing(&sb, &cfg, LONG);
    assert!(matches!(out.code(), Some(0) | Some(1)), "{}", out.describe());
    assert!(out.elapsed < Duration::from_secs(90), "took {:?}", out.elapsed);
    let r = read_json(&sb.campaign_dir().join("campaign_report.json"));
    let p = &r["phases"][0];
    assert!(p["ops_succeeded"].as_u64().unwrap_or(0) > 0, "{p}");
    let errors = p["errors_by_class"].as_object().expect("errors_by_class");
    assert!(errors.contains_key("script_error"), "throw must surface as script_error: {errors:?}");
    assert!(errors.contains_key("crash") || errors.contains_key("connection_failure"), "kills must surface: {errors:?}");
    let rec = &r["recoveries"];
    assert!(rec["attempts"].as_u64().unwrap_or(0) >= 3, "{rec}");
    assert!(rec["succeeded"].as_u64().unwrap_or(0) >= 1, "{rec}");
    for (class, s) in rec["by_class"].as_object().expect("by_class") {
        assert!(s["attempts"].as_u64().unwrap_or(0) >= s["succeeded"].as_u64().unwrap_or(0), "{class}: {s}");
    }
    assert!(rec["by_strategy"]["retry"]["attempts"].as_u64().unwrap_or(0) >= 1, "{rec}");
    let events = read_events(&sb.campaign_dir().join("events.jsonl"));
    let injected = events.iter().filter(|e| e["kind"] == "fault_injected").count();
    assert!(injected >= 4, "{injected} faults injected");
    // every recovery event carries a correlation id campaign/phase/worker/op
    let id = out.campaign_id();
    for e in events.iter().filter(|e| e["kind"] == "recovery_attempted") {
        let corr = e["corr"].as_str().unwrap_or_default();
        assert!(corr.starts_with(&format!("{id}/chaos/local/s")), "{corr}");
    }
}

fn sum_store_ops(store: &Path) -> u64 {
    let c = rusqlite::Connection::open_with_flags(store, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY).expect("open store");
    c.query_row("SELECT COALESCE(SUM(attempted), 0) FROM windows", [], |r| r.get::<_, i64>(0)).expect("sum") as u64
}

#[test]
fn sigkill_in_the_third_phase_then_resume_completes_the_campaign() {
    let _serial = BrowserLock::acquire();
    let sb = Sandbox::new("resume");
    let lenient = "[phases.criteria]\nmax_p95 = \"30s\"";
    let phases =
        [phase("a", "3s", 1, lenient), phase("b", "3s", 1, lenient), phase("c", "12s", 2, lenient), phase("d", "2s", 1, lenient)].concat();
    let cfg = sb.write("r.toml", &format!("{}{}{}", header("resume", ""), webgpu_task(32), phases));
    let before = snapshot();
    let running = Running::spawn(sb.launch(&cfg), None);
    let third_started = || sb.campaign_dirs().first().is_some_and(|d| d.join("phase_02_b.json").exists());
    assert!(wait_until(Duration::from_secs(90), third_started), "phase 3 never started\n{}", running.stdout_so_far());
    std::thread::sleep(Duration::from_secs(3));
    running.signal(libc::SIGKILL);
    let killed = running.finish(Duration::from_secs(10));
    assert_eq!(killed.code(), None, "killed by a signal");
    let dir = sb.campaign_dir();
    let p1 = std::fs::read(dir.join("phase_01_a.json")).unwrap();
    let p2 = std::fs::read(dir.join("phase_02_b.json")).unwrap();

    let out = run_marked(sb.cmd(args(&["launch", "--resume"])), &sb.root, LONG);
    assert_no_orphans(&before, &sb.root);
    out.expect_code(0);
    assert!(out.stdout.contains("resuming campaign") && out.stdout.contains("phase 3/4"), "{}", out.describe());
    assert_eq!(std::fs::read(dir.join("phase_01_a.json")).unwrap(), p1, "phase 1 report changed");
    assert_eq!(std::fs::read(dir.join("phase_02_b.json")).unwrap(), p2, "phase 2 report changed");
    let r = read_json(&dir.join("campaign_report.json"));
    assert_eq!(r["outcome"], "passed");
    assert_eq!(r["resumes"], 1);
    assert_eq!(r["phases"].as_array().map(Vec::len), Some(4));
    let notes = r["phases"][2]["notes"].to_string();
    assert!(notes.contains("checkpoint"), "{notes}");
    assert!(r["interruptions"].as_array().is_some_and(|i| i.len() >= 2), "{}", r["interruptions"]);
    let id = dir.file_name().unwrap().to_string_lossy().into_owned();
    assert_eq!(r["totals"]["ops_attempted"].as_u64().unwrap(), sum_store_ops(&store_of(&sb, &id)));
    // the rebuilt reports are the ones the run wrote
    let before_bytes = std::fs::read(dir.join("campaign_report.json")).unwrap();
    run(sb.cmd(args(&["report", &id])), Duration::from_secs(30)).expect_code(0);
    assert_eq!(std::fs::read(dir.join("campaign_report.json")).unwrap(), before_bytes);
}

fn synthetic_run(sb: &Sandbox, name: &str, latency: &str) -> String {
    let cfg =
        sb.write(&format!("{name}.toml"), &format!("{}{}{}", header(name, ""), synthetic_task(latency, 0.0), phase("steady", "2s", 2, "")));
    let out = run(sb.launch(&cfg), LONG);
    out.expect_code(0);
    out.campaign_id()
}

#[test]
fn compare_passes_against_itself_and_flags_a_slowed_task() {
    let sb = Sandbox::new("compare");
    let base = synthetic_run(&sb, "base", "4ms");
    let slow = synthetic_run(&sb, "slow", "8ms");
    let same = run(sb.cmd(args(&["report", &base, "--compare", &base])), Duration::from_secs(30));
    same.expect_code(0);
    assert!(same.stdout.contains("No regressions"), "{}", same.describe());
    let worse = run(sb.cmd(args(&["report", &base, "--compare", &slow])), Duration::from_secs(30));
    worse.expect_code(1);
    assert!(worse.stdout.to_lowercase().contains("regression") && worse.stdout.contains("steady"), "{}", worse.describe());
}

#[test]
fn damaged_stores_are_reported_clearly() {
    let sb = Sandbox::new("damaged");
    let id = synthetic_run(&sb, "dmg", "1ms");
    let store = store_of(&sb, &id);
    let copy = |tag: &str| {
        let state = sb.root.join(format!("state-{tag}"));
        let runs = state.join("runs").join(&id);
        std::fs::create_dir_all(&runs).unwrap();
        std::fs::copy(&store, runs.join("store.sqlite")).unwrap();
        (state, runs.join("store.sqlite"))
    };
    let report_in = |state: &Path| {
        let mut c = std::process::Command::new(BIN);
        c.args(["report", &id, "--state-dir"]).arg(state).arg("--output-dir").arg(sb.root.join("out-rebuilt")).current_dir(&sb.root);
        run(c, Duration::from_secs(30))
    };
    let (newer, path) = copy("newer");
    rusqlite::Connection::open(&path).unwrap().execute_batch("PRAGMA user_version = 99;").unwrap();
    let out = report_in(&newer);
    out.expect_code(1);
    assert!(out.stderr.contains("schema version 99") && out.stderr.contains("newer"), "{}", out.describe());
    let (broken, path) = copy("broken");
    let len = std::fs::metadata(&path).unwrap().len();
    std::fs::OpenOptions::new().write(true).open(&path).unwrap().set_len(len / 2).unwrap();
    let out = report_in(&broken);
    out.expect_code(1);
    let err = out.stderr.trim();
    assert!(err.contains("corrupt") && err.lines().count() == 1, "one line: {}", out.describe());
    // the reports it protects are the campaign's (in this sandbox's --output-dir), never a guess
    assert!(!err.contains("results_summary/"), "{}", out.describe());
    if err.contains("unaffected") {
        assert!(err.contains(&sb.out.join(&id).display().to_string()), "{}", out.describe());
    }
    // the original is untouched and still rebuilds
    run(sb.cmd(args(&["report", &id])), Duration::from_secs(30)).expect_code(0);
}

#[test]
fn a_full_disk_stops_the_campaign_without_losing_what_was_committed() {
    use std::os::unix::process::CommandExt;
    let sb = Sandbox::new("full-disk");
    // the store's WAL grows by whole pages with every commit: the limit is reached in seconds
    let cfg = sb.write("d.toml", &format!("{}{}{}", header("disk", ""), synthetic_task("0s", 0.0), phase("fill", "60s", 4, "")));
    let mut cmd = sb.launch(&cfg);
    // SAFETY: only async-signal-safe calls between fork and exec (setrlimit, signal).
    unsafe {
        cmd.pre_exec(|| {
            // a size-limited file system: no file may grow past 300 KiB (EFBIG instead of SIGXFSZ)
            libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
            let lim = libc::rlimit { rlim_cur: 300 * 1024, rlim_max: 300 * 1024 };
            if libc::setrlimit(libc::RLIMIT_FSIZE, &lim) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let out = run(cmd, LONG);
    out.expect_code(1);
    assert!(out.elapsed < Duration::from_secs(50), "must stop at the first failed write, took {:?}", out.elapsed);
    assert!(out.stderr.contains("could not be recorded") && out.stderr.contains("stressctl report"), "{}", out.describe());
    let run_dir = sb.run_dirs().pop().expect("run dir");
    let store = run_dir.join("store.sqlite");
    let c = rusqlite::Connection::open(&store).expect("store opens");
    let check: String = c.query_row("PRAGMA integrity_check", [], |r| r.get(0)).unwrap();
    assert_eq!(check, "ok");
    assert!(sum_store_ops(&store) > 0, "what was committed before the disk filled is kept");
}
