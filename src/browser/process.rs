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
