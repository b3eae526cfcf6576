//! The host's reservation is real (issue 10, item 13): a campaign confined in its cgroup does not
//! trip the guardian with its own load — real Chromium rendering WebGPU on the CPU — while a
//! deliberate CPU hog outside the campaign (busy loops on every core) still does.

use crate::common::*;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Busy CPU time and total CPU time since boot, from the `cpu` line of `/proc/stat`.
fn cpu_times() -> (u64, u64) {
    let text = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let f: Vec<u64> = text.lines().next().unwrap_or("").split_whitespace().skip(1).filter_map(|x| x.parse().ok()).collect();
    let total: u64 = f.iter().take(8).sum();
    let idle = f.get(3).copied().unwrap_or(0) + f.get(4).copied().unwrap_or(0);
    (total.saturating_sub(idle), total)
}

/// System-wide CPU use over `d`, percent of all cores.
fn busy_percent_over(d: Duration) -> f64 {
    let (b0, t0) = cpu_times();
    std::thread::sleep(d);
    let (b1, t1) = cpu_times();
    if t1 <= t0 {
        return 0.0;
    }
    (b1 - b0) as f64 / (t1 - t0) as f64 * 100.0
}

/// A CPU hog outside the campaign: one busy loop per core, each bounded by `timeout` and in its own
/// process group, killed (group and all) on drop.
struct Hog(Vec<Child>);

impl Hog {
    fn start(secs: u32) -> Hog {
        use std::os::unix::process::CommandExt;
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        Hog((0..cores)
            .map(|_| {
                Command::new("timeout")
                    .args([&secs.to_string(), "sh", "-c", "while :; do :; done"])
                    .stdin(Stdio::null())
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .process_group(0)
                    .spawn()
                    .expect("spawn a busy loop")
            })
            .collect())
    }
}

impl Drop for Hog {
    fn drop(&mut self) {
        for mut c in self.0.drain(..) {
            // SAFETY: killpg on the group led by our own child, which is not reaped yet.
            unsafe { libc::killpg(c.id() as i32, libc::SIGKILL) };
            let _ = c.wait();
        }
    }
}

#[test]
fn own_webgpu_load_does_not_trip_the_guardian_but_a_host_hog_does() {
    if let Err(e) = stressctl::confine::check(20).cgroup {
        eprintln!("skipped: the campaign cannot be confined here ({e}); the guardian judges total CPU");
        return;
    }
    let _serial = BrowserLock::acquire();
    let sb = Sandbox::new("reserve");
    // reserve_percent is left at its default (20)
    let safety = "[safety]\nsample_interval = \"500ms\"\nmemory_percent = 100\ncpu_percent = 85\ndisk_percent = 100\n\
                  consecutive_violations = 3\n";
    let campaign = "[campaign]\nname = \"reserve\"\nprogressive_escalation = false\nauto_recovery = false\n\n";
    let phases = phase("load", "120s", 2, "stress_level = \"low\"\n[phases.criteria]\nmax_p95 = \"60s\"");
    let cfg = sb.write("r.toml", &format!("{campaign}{safety}{}{phases}", webgpu_task(512)));

    // The host's own load before the campaign: this machine may be shared.
    let host_base = busy_percent_over(Duration::from_secs(2));
    let before = snapshot();
    let mut child = Running::spawn(sb.launch(&cfg), Some(&sb.root));
    let up = wait_until(Duration::from_secs(90), || browsers_of(&sb.root) >= 2);
    assert!(up, "2 browsers did not come up within 90 s\n{}\n{}", child.stdout_so_far(), child.stderr_so_far());

    // 12 s of the campaign's own load (24 guardian samples; 3 in a row over the line trip it)
    let load_started = Instant::now();
    let total = busy_percent_over(Duration::from_secs(12));
    let tripped_on_own_load = child.wait_timeout(Duration::ZERO).is_some();
    eprintln!("host before: {host_base:.0}% CPU; with the campaign: {total:.0}% CPU; still running: {}", !tripped_on_own_load);
    if host_base < 40.0 {
        assert!(
            !tripped_on_own_load,
            "the campaign's own load ({total:.0}% CPU in total) stopped it {:?} in\n{}\n{}",
            load_started.elapsed(),
            child.stdout_so_far(),
            child.stderr_so_far()
        );
    } else {
        eprintln!("note: the host itself was busy ({host_base:.0}% CPU): the own-load half is not judged");
    }

    let hog = Hog::start(40);
    let hog_started = Instant::now();
    let out = child.finish(Duration::from_secs(40));
    let stop_after = hog_started.elapsed();
    drop(hog);
    assert_no_orphans(&before, &sb.root);
    out.expect_code(1);
    let r = read_json(&sb.campaign_dir().join("campaign_report.json"));
    assert_eq!(r["outcome"], "emergency_stopped", "{}", out.describe());
    let reason = r["stop_reason"].as_str().unwrap_or_default();
    assert!(reason.contains("host cpu") && reason.contains("outside the campaign") && reason.contains("85%"), "{reason}");
    if !tripped_on_own_load {
        assert!(stop_after < Duration::from_secs(20), "the hog took {stop_after:?} to trip the guardian");
    }
    let events = read_events(&sb.campaign_dir().join("events.jsonl"));
    let conf = events.iter().find(|e| e["kind"] == "confinement").expect("a confinement event");
    assert_eq!(conf["data"]["confined"], true, "{conf}");
    assert_eq!(conf["data"]["reserve_percent"], 20, "{conf}");
    let cap = conf["data"]["cpu_cap_percent"].as_f64().unwrap_or(0.0);
    assert!((cap - 80.0).abs() < 0.1, "{conf}");
}
