//! The control socket under hostile load: a real synthetic campaign, run with a small
//! descriptor limit, while another process floods `control.sock` with idle connections.

use crate::common::*;
use std::ffi::OsString;
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

/// The daemon's descriptor limit (soft and hard, so that raising the soft limit cannot help):
/// small enough that a flood exhausts it in well under a second without a cap.
const DAEMON_NOFILE: u64 = 256;
/// Idle connections the flood opens and holds.
const FLOOD: usize = 2000;

fn args(a: &[&str]) -> Vec<OsString> {
    a.iter().map(OsString::from).collect()
}

/// Raises this test process's soft descriptor limit so it can hold the flood's client ends.
fn raise_own_nofile(want: u64) -> u64 {
    let mut lim = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit/setrlimit on a valid, owned struct.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) != 0 {
            return 0;
        }
        if lim.rlim_cur < want {
            lim.rlim_cur = want.min(lim.rlim_max);
            libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
        }
        libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim);
    }
    lim.rlim_cur
}

/// utime + stime of `pid`, in clock ticks.
fn cpu_ticks(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let f: Vec<&str> = stat.get(stat.rfind(')')? + 2..)?.split_whitespace().collect();
    Some(f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?)
}

/// The fraction of one core `pid` used over `window`.
fn cpu_share(pid: u32, window: Duration) -> f64 {
    // SAFETY: sysconf has no memory-safety preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
    let before = cpu_ticks(pid).unwrap_or(0);
    thread::sleep(window);
    let after = cpu_ticks(pid).unwrap_or(before);
    (after.saturating_sub(before)) as f64 / hz / window.as_secs_f64()
}

/// Opens up to `n` connections to `sock` and holds them (never writes) until `stop`. A connect
/// that fails (the daemon gone, or its backlog full) is retried after a pause.
fn flood(sock: &Path, n: usize, opened: Arc<AtomicUsize>, stop: Arc<AtomicBool>) -> thread::JoinHandle<()> {
    let sock = sock.to_path_buf();
    thread::spawn(move || {
        let mut held = Vec::with_capacity(n);
        while !stop.load(Ordering::Relaxed) {
            if held.len() < n {
                match UnixStream::connect(&sock) {
                    Ok(s) => {
                        held.push(s);
                        opened.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(_) => thread::sleep(Duration::from_millis(20)),
                }
            } else {
                thread::sleep(Duration::from_millis(20));
            }
        }
    })
}

#[test]
fn idle_connection_flood_does_not_starve_the_campaign() {
    let sb = Sandbox::new("ctl-flood");
    let cfg = sb.write(
        "flood.toml",
        &format!(
            "{}{}{}{}",
            header("flood", ""),
            synthetic_task("20ms", 0.0),
            phase("one", "6s", 1, "stress_level = \"low\""),
            phase("two", "3s", 1, "stress_level = \"low\""),
        ),
    );
    let want = FLOOD as u64 + 256;
    let ours = raise_own_nofile(want);
    let flood_size = if ours >= want { FLOOD } else { (ours as usize).saturating_sub(256).max(512) };

    let mut cmd = sb.launch(&cfg);
    // SAFETY: only setrlimit, which is async-signal-safe, runs between fork and exec.
    unsafe {
        cmd.pre_exec(|| {
            let lim = libc::rlimit { rlim_cur: DAEMON_NOFILE, rlim_max: DAEMON_NOFILE };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &lim) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let running = Running::spawn(cmd, Some(&sb.root));
    let pid = running.pid();
    let sock = sb.state.join("control.sock");
    assert!(
        wait_until(Duration::from_secs(20), || sock.exists() && running.stdout_so_far().contains("stressctl: campaign ")),
        "the campaign did not start\n{}\n{}",
        running.stdout_so_far(),
        running.stderr_so_far()
    );

    let opened = Arc::new(AtomicUsize::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let flooder = flood(&sock, flood_size, opened.clone(), stop.clone());
    // Let the flood reach the daemon's limit (a few hundred connections are enough without a cap).
    wait_until(Duration::from_secs(3), || opened.load(Ordering::Relaxed) >= flood_size);
    let t_flood = Instant::now();

    // While the connections are held: the daemon stays cool (no accept spin) ...
    let share = cpu_share(pid, Duration::from_secs(2));
    // ... and still answers `status`.
    let st = run(sb.cmd(args(&["status", "--json"])), Duration::from_secs(15));
    let held_during_status = opened.load(Ordering::Relaxed);
    let status_ok = st.code() == Some(0) && st.stdout.contains("\"campaign_id\"");

    let out = running.finish(Duration::from_secs(90));
    stop.store(true, Ordering::Relaxed);
    let _ = flooder.join();
    eprintln!(
        "flood: {held_during_status} connections opened; daemon cpu {:.1}% of a core while held; finished {:.1}s after the flood",
        share * 100.0,
        t_flood.elapsed().as_secs_f64()
    );

    assert!(held_during_status >= 512, "the flood opened only {held_during_status} connections");
    assert!(status_ok, "`status` did not answer while {held_during_status} connections were held\n{}", st.describe());
    assert!(share < 0.25, "the daemon used {:.0}% of a core while idle connections were held (accept spin?)", share * 100.0);
    out.expect_code(0);
    let dir = sb.campaign_dir();
    for f in ["campaign_report.json", "summary.txt", "events.jsonl"] {
        assert!(dir.join(f).is_file(), "{f} missing from {}\n{}", dir.display(), out.describe());
    }
    let r = read_json(&dir.join("campaign_report.json"));
    assert_eq!(r["outcome"], "passed", "{}", out.describe());
    assert_eq!(r["phases"].as_array().map(Vec::len), Some(2));
    assert!(!sock.exists(), "control.sock left behind");
    assert!(!sb.state.join("stressctl.lock").exists(), "lock left behind");
}
