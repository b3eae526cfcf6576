//! Minimal /proc helpers (placeholder until the sampler lands).

/// Start time (clock ticks since boot) of a process.
pub fn process_start_time(pid: u32) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &s[s.rfind(')')? + 2..];
    rest.split_whitespace().nth(19)?.parse().ok()
}

/// Whether `pid` is still the process that had `start_time`.
pub fn is_same_process(pid: u32, start_time: u64) -> bool {
    process_start_time(pid) == Some(start_time)
}
