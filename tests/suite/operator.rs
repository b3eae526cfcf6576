//! An operator's hands on a running campaign: `stressctl breaker list|open|close|reset|disable`
//! over the control socket, against real Chromium sessions on two managed workers.

use crate::common::*;
use serde_json::Value;
use std::ffi::OsString;
use std::path::Path;
use std::time::Duration;

fn args(a: &[&str]) -> Vec<OsString> {
    a.iter().map(OsString::from).collect()
}

/// `breaker list --json`, as (scope -> row); empty while the campaign does not answer.
fn breakers(sb: &Sandbox) -> Vec<Value> {
    let out = run(sb.cmd(args(&["breaker", "list", "--json"])), Duration::from_secs(10));
    if out.code() != Some(0) {
        return Vec::new();
    }
    serde_json::from_str::<Vec<Value>>(out.stdout.trim()).unwrap_or_default()
}

fn row(rows: &[Value], scope: &str) -> Option<Value> {
    rows.iter().find(|r| r["scope"] == scope).cloned()
}

fn field(sb: &Sandbox, scope: &str, key: &str) -> Option<Value> {
    row(&breakers(sb), scope).map(|r| r[key].clone())
}

fn calls(sb: &Sandbox, scope: &str) -> u64 {
    field(sb, scope, "calls").and_then(|v| v.as_u64()).unwrap_or(0)
}

/// Runs `stressctl breaker <a...>` and returns its output.
fn breaker(sb: &Sandbox, a: &[&str]) -> Output {
    let mut all = vec!["breaker"];
    all.extend_from_slice(a);
    run(sb.cmd(args(&all)), Duration::from_secs(15))
}

#[test]
fn breaker_commands_move_work_and_reset_a_breaker_a_fault_opened() {
    let _lock = BrowserLock::acquire();
    let sb = Sandbox::new("operator");
    // Phase `a`: the operator moves work off w1 and back. Phase `b`: a kill of w1's driver (a
    // connection failure) opens worker:w1 on its own, and it stays open for a minute: only
    // `reset` brings it back while the phase runs.
    let workers = "\n[breaker]\nrecovery_timeout = \"60s\"\nmax_recovery_timeout = \"60s\"\n\n[breaker.worker]\nfailure_threshold = 1\n\n\
                   [[workers]]\nid = \"w1\"\nmanaged = true\n\n[[workers]]\nid = \"w2\"\nmanaged = true\n\n\
                   [[faults]]\nkind = \"kill_driver\"\nworker = \"w1\"\nevery = \"5s\"\nphases = [\"b\"]\n";
    let lenient = "[phases.criteria]\nmin_success_rate = 0.3\nmax_p95 = \"60s\"";
    let cfg = sb.write(
        "op.toml",
        &format!(
            "{}{}{}{}{}",
            header("operator", ""),
            webgpu_task(32),
            workers,
            phase("a", "25s", 2, lenient),
            phase("b", "25s", 2, lenient)
        ),
    );
    let before = snapshot();
    let running = Running::spawn(sb.launch(&cfg), Some(&sb.root));
    let up = wait_until(Duration::from_secs(40), || calls(&sb, "worker:w1") > 0 && calls(&sb, "worker:w2") > 0);
    assert!(up, "both workers never ran ops\n{}\n{}", running.stdout_so_far(), running.stderr_so_far());
    let rows = breakers(&sb);
    for scope in ["worker:w1", "worker:w2", "browser:chromium", "task:webgpu"] {
        assert_eq!(row(&rows, scope).map(|r| r["state"].clone()), Some("closed".into()), "{scope} in {rows:?}");
    }
    let table = run(sb.cmd(args(&["breaker", "list"])), Duration::from_secs(10));
    assert!(table.code() == Some(0) && table.stdout.starts_with("SCOPE") && table.stdout.contains("worker:w2"), "{}", table.describe());

    // An unknown scope: exit 2, nothing changed, the breakers there are listed.
    let bad = breaker(&sb, &["open", "worker:w1", "worker:nope"]);
    bad.expect_code(2);
    assert!(bad.stderr.contains("worker:nope") && bad.stderr.contains("worker:w2"), "{}", bad.describe());
    assert_eq!(field(&sb, "worker:w1", "state"), Some("closed".into()), "a refused command changed nothing");

    // open: w1 stops taking calls, w2 takes the work.
    let open = breaker(&sb, &["open", "worker:w*1", "--reason", "kernel update"]);
    open.expect_code(0);
    assert!(open.stdout.contains("worker:w1: closed -> forced_open"), "{}", open.describe());
    std::thread::sleep(Duration::from_millis(1500)); // in-flight ops land
    let (w1, w2) = (calls(&sb, "worker:w1"), calls(&sb, "worker:w2"));
    assert!(wait_until(Duration::from_secs(10), || calls(&sb, "worker:w2") > w2 + 10), "w2 did not take the work");
    assert_eq!(calls(&sb, "worker:w1"), w1, "a forced-open worker ran ops");
    assert_eq!(field(&sb, "worker:w1", "state"), Some("forced_open".into()));

    // close: w1 is closed again, and the next phase places sessions on it.
    let close = breaker(&sb, &["close", "worker:w1"]);
    close.expect_code(0);
    assert!(close.stdout.contains("worker:w1: forced_open -> closed"), "{}", close.describe());
    assert_eq!(field(&sb, "worker:w1", "state"), Some("closed".into()));
    let back = wait_until(Duration::from_secs(40), || calls(&sb, "worker:w1") > w1);
    assert!(back, "w1 took no work after close\n{}", running.stderr_so_far());

    // The fault (every 5 s of phase b) opens worker:w1 on its own; reset clears it.
    let opened = wait_until(Duration::from_secs(30), || field(&sb, "worker:w1", "state") == Some("open".into()));
    assert!(opened, "the killed driver never opened worker:w1: {:?}", breakers(&sb));
    let reset = breaker(&sb, &["reset", "worker:w1", "--reason", "driver restarted"]);
    reset.expect_code(0);
    assert!(reset.stdout.contains("worker:w1: open -> closed"), "{}", reset.describe());

    let out = running.finish(Duration::from_secs(90));
    assert_no_orphans(&before, &sb.root);
    out.expect_code(0);
    check_the_record(&sb.campaign_dir());
}

/// The commands are typed events with reason and uid, in the reports' breaker timeline.
fn check_the_record(dir: &Path) {
    // SAFETY: getuid has no preconditions.
    let uid = unsafe { libc::getuid() };
    let cmds = events_of_kind(dir, "breaker_command");
    let actions: Vec<&str> = cmds.iter().filter_map(|e| e["data"]["action"].as_str()).collect();
    assert_eq!(actions, ["open", "close", "reset"], "{cmds:?}");
    assert_eq!(cmds[0]["data"]["reason"], "kernel update");
    assert_eq!(cmds[0]["data"]["scopes"][0], "worker:w*1");
    assert_eq!(cmds[0]["data"]["keys"][0], "worker:w1");
    assert_eq!(cmds[0]["data"]["uid"], uid);
    let transitions = events_of_kind(dir, "breaker_transition");
    let forced = transitions.iter().find(|t| t["data"]["to"] == "forced_open").expect("forced_open transition");
    assert_eq!(forced["data"]["reason"], format!("open by uid {uid}: kernel update"));
    let report = read_json(&dir.join("campaign_report.json"));
    assert_eq!(report["breakers"]["commands"].as_array().map(Vec::len), Some(3), "{}", report["breakers"]);
    let summary = std::fs::read_to_string(dir.join("summary.txt")).expect("summary.txt");
    assert!(summary.contains(&format!("operator command: open by uid {uid} on worker:w1: kernel update")), "{summary}");
    let html = std::fs::read_to_string(dir.join("report.html")).expect("report.html");
    assert!(html.contains("breaker open by uid"), "report.html lists the command");
}
