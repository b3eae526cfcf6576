//! Signalling processes safely: only processes this campaign started and recorded, identified by
//! pid *and* start time, are ever signalled. Never by name.

use crate::procfs::{all_processes, is_same_process, process_start_time, read_stat};

/// A process we started: pid + start time (clock ticks since boot) identify it across pid reuse.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ProcId {
    /// Pid.
    pub pid: u32,
    /// Start time from /proc/<pid>/stat.
    pub start_time: u64,
}

impl ProcId {
    /// Identifies a live process now (None if it is already gone).
    pub fn of(pid: u32) -> Option<ProcId> {
        process_start_time(pid).map(|start_time| ProcId { pid, start_time })
    }

    /// Whether the recorded process is still alive (and not a reused pid). Zombies count as gone.
    pub fn alive(&self) -> bool {
        is_same_process(self.pid, self.start_time) && !is_zombie(self.pid)
    }

    /// Sends `sig` if (and only if) the recorded process is still the same process.
    pub fn signal(&self, sig: i32) -> bool {
        if !is_same_process(self.pid, self.start_time) {
            return false;
        }
        // SAFETY: kill(2) with a positive pid we verified just above.
        unsafe { libc::kill(self.pid as i32, sig) == 0 }
    }

    /// Sends `sig` to the process group this process leads, if it is still the same process and
    /// still leads a group of that id.
    pub fn signal_group(&self, sig: i32) -> bool {
        if !is_same_process(self.pid, self.start_time) || process_group(self.pid) != Some(self.pid) {
            return false;
        }
        // SAFETY: killpg(2) on the group led by the process we verified just above.
        unsafe { libc::killpg(self.pid as i32, sig) == 0 }
    }
}

/// A renderer whose memory [`limit_renderers_data`] bounded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LimitedRenderer {
    /// Its pid.
    pub pid: u32,
    /// Its data segment when the limit was set (bytes).
    pub data_bytes: u64,
    /// The limit set (bytes): `data_bytes` plus what it may still take.
    pub limit_bytes: u64,
}

/// Lowers the soft data-segment limit (`RLIMIT_DATA`, which bounds the private writable memory a
/// process may map or commit) of the renderer processes of one session to what each holds now
/// plus `extra` bytes: from then on the kernel refuses them more, a real out-of-memory for their
/// pages that cannot reach the rest of the host. Used by the `exhaust_memory` fault; the session is
/// discarded after it. Only the soft limit is lowered (never raised).
///
/// The renderers are found among this process's descendants: Chromium's (`--type=renderer`)
/// by the session's profile directory on their command line (its zygote forks them, so they are
/// not the browser's children), Firefox's content processes (`-contentproc`) as descendants of
/// the session's `browser`. Returns the renderers it limited.
pub fn limit_renderers_data(user_data_dir: &std::path::Path, browser: Option<ProcId>, extra: u64) -> Vec<LimitedRenderer> {
    let marker = format!("--user-data-dir={}", user_data_dir.display());
    let procs = all_processes();
    let firefox: Vec<u32> = browser
        .filter(ProcId::alive)
        .map(|b| crate::procfs::descendant_indices(&procs, b.pid).into_iter().map(|i| procs[i].pid).collect())
        .unwrap_or_default();
    let mut out = Vec::new();
    for i in crate::procfs::descendant_indices(&procs, std::process::id()) {
        let pid = procs[i].pid;
        let Ok(cmdline) = std::fs::read(format!("/proc/{pid}/cmdline")) else { continue };
        let cmdline = String::from_utf8_lossy(&cmdline);
        // a zygote's child may have its title rewritten to one string of space-separated arguments
        let args: Vec<&str> = cmdline.split(['\0', ' ']).collect();
        let names_profile = cmdline
            .match_indices(marker.as_str())
            .any(|(at, m)| cmdline[at + m.len()..].chars().next().is_none_or(|c| c == '\0' || c == ' '));
        let chromium = args.contains(&"--type=renderer") && names_profile;
        let gecko = args.contains(&"-contentproc") && firefox.contains(&pid);
        let Some(data_bytes) = (chromium || gecko).then(|| vm_data_bytes(pid)).flatten() else { continue };
        let limit_bytes = data_bytes.saturating_add(extra);
        let mut old = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
        // SAFETY: prlimit(2) reading the limit of a pid into a local struct.
        if unsafe { libc::prlimit(pid as libc::pid_t, libc::RLIMIT_DATA, std::ptr::null(), &mut old) } != 0 {
            continue;
        }
        let new = libc::rlimit { rlim_cur: limit_bytes.min(old.rlim_cur).min(old.rlim_max), rlim_max: old.rlim_max };
        // SAFETY: prlimit(2) setting the soft limit of a renderer of a session this campaign opened.
        if unsafe { libc::prlimit(pid as libc::pid_t, libc::RLIMIT_DATA, &new, std::ptr::null_mut()) } == 0 {
            out.push(LimitedRenderer { pid, data_bytes, limit_bytes: new.rlim_cur });
        }
    }
    out
}

/// `VmData` of `pid` in bytes (its private writable memory, what `RLIMIT_DATA` bounds).
fn vm_data_bytes(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let kb: u64 = status.lines().find_map(|l| l.strip_prefix("VmData:"))?.trim().trim_end_matches("kB").trim().parse().ok()?;
    Some(kb * 1024)
}

/// The process group of `pid`.
pub fn process_group(pid: u32) -> Option<u32> {
    read_stat(pid).map(|s| s.pgid)
}

/// Whether `pid` is a zombie (exited, not yet reaped).
pub fn is_zombie(pid: u32) -> bool {
    read_stat(pid).is_some_and(|s| s.is_zombie())
}

/// Live members of process group `pgid` whose command line contains `marker`, with their ids.
pub fn group_members_with_marker(pgid: u32, marker: &str) -> Vec<ProcId> {
    all_processes()
        .into_iter()
        .filter(|p| p.pgid == pgid)
        .filter(|p| std::fs::read(format!("/proc/{}/cmdline", p.pid)).is_ok_and(|c| String::from_utf8_lossy(&c).contains(marker)))
        .map(|p| ProcId { pid: p.pid, start_time: p.start_time })
        .collect()
}

/// The main browser process in group `pgid` whose command line names `profile_dir`
/// (Chromium's `--user-data-dir=`, Firefox's `-profile`): not a Chromium `--type=` child nor a
/// Firefox `-contentproc` child.
pub fn find_browser(pgid: u32, profile_dir: &std::path::Path) -> Option<ProcId> {
    let marker = profile_dir.display().to_string();
    group_members_with_marker(pgid, &marker).into_iter().find(|p| {
        std::fs::read(format!("/proc/{}/cmdline", p.pid))
            .map(|c| {
                let c = String::from_utf8_lossy(&c);
                !c.contains("--type=") && !c.contains("-contentproc")
            })
            .unwrap_or(false)
    })
}
