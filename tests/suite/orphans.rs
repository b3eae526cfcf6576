//! No orphans even when stressctl itself is SIGKILLed (issue 10, item 1): the browser tree dies
//! with stressctl, with no later command. Real chromedriver and Chromium.

use crate::common::*;
use std::path::Path;
use std::time::{Duration, Instant};

/// How long the campaign's processes may take to die after stressctl is SIGKILLed.
const DIE_WITHIN: Duration = Duration::from_secs(3);

/// Every live (non-zombie) process of this test's campaign other than the test itself: anything
/// whose command line names the sandbox (stressctl and its supervisors carry `--state-dir`,
/// chromedriver `--log-path`, Chromium `--user-data-dir`), and every member of their process
/// groups (Chromium's children, which name none of it).
fn campaign_processes(marker: &Path) -> Vec<Proc> {
    let m = marker.to_string_lossy().into_owned();
    let me = std::process::id() as i32;
    let all: Vec<Proc> = std::fs::read_dir("/proc")
        .map(|rd| rd.flatten().filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok()).filter_map(read_proc).collect())
        .unwrap_or_default();
    let groups: std::collections::HashSet<i32> = all.iter().filter(|p| p.pid != me && p.cmdline.contains(&m)).map(|p| p.pgid).collect();
    all.into_iter().filter(|p| p.pid != me && p.state != 'Z' && (p.cmdline.contains(&m) || groups.contains(&p.pgid))).collect()
}

/// SIGKILLs what is left (pid + start time re-checked), so a failing run cleans up after itself.
fn kill_left(left: &[Proc]) {
    for p in left {
        if read_proc(p.pid).is_some_and(|q| q.start == p.start) {
            // SAFETY: kill(2) on a pid verified just above to be the same process (pid + start time).
            unsafe { libc::kill(p.pid, libc::SIGKILL) };
        }
    }
}

/// The status JSON of the running campaign of sandbox `sb` (None while it does not answer).
fn status(sb: &Sandbox) -> Option<serde_json::Value> {
    let out = sb.cmd(["status", "--json"]).output().ok()?;
    serde_json::from_slice(&out.stdout).ok()
}

#[test]
fn sigkill_in_phase_2_leaves_no_process_of_the_campaign() {
    if !stressctl::confine::pidns::available() {
        eprintln!("skipped: no PID namespaces here (needs CAP_SYS_ADMIN); stressctl falls back to reaping on the next launch");
        return;
    }
    let _serial = BrowserLock::acquire();
    let sb = Sandbox::new("sigkill");
    let phases = format!("{}{}", phase("one", "3s", 2, "stress_level = \"low\""), phase("two", "60s", 2, "stress_level = \"low\""));
    let cfg = sb.write("k.toml", &format!("{}{}{}", header("sigkill", ""), webgpu_task(32), phases));
    let mut child = Running::spawn(sb.launch(&cfg), Some(&sb.root));

    let in_phase_2 =
        wait_until(Duration::from_secs(90), || browsers_of(&sb.root) >= 2 && status(&sb).is_some_and(|s| s["phase"]["index"] == 2));
    assert!(in_phase_2, "phase 2 with 2 browsers did not start within 90 s\n{}\n{}", child.stdout_so_far(), child.stderr_so_far());
    let before_kill = campaign_processes(&sb.root).len();

    child.signal(libc::SIGKILL);
    let killed_at = Instant::now();
    assert!(child.wait_timeout(Duration::from_secs(2)).is_some(), "stressctl survived SIGKILL");
    let mut left = campaign_processes(&sb.root);
    while !left.is_empty() && killed_at.elapsed() < DIE_WITHIN {
        std::thread::sleep(Duration::from_millis(50));
        left = campaign_processes(&sb.root);
    }
    kill_left(&left);
    // the dead run's cgroups: the next run would remove them; so does this test, once the
    // exiting inits have left them
    let plan = stressctl::confine::cgroup::Plan::detect();
    wait_until(Duration::from_secs(3), || plan.remove_stale() == 0);
    let list: Vec<String> = left.iter().map(|p| format!("  pid {} (pgid {}): {:.200}", p.pid, p.pgid, p.cmdline)).collect();
    assert!(
        left.is_empty(),
        "{} of the campaign's {before_kill} processes still alive {DIE_WITHIN:?} after SIGKILL of stressctl (killed now):\n{}",
        left.len(),
        list.join("\n")
    );
}
