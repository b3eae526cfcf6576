//! Scheduling priority of stressctl's own latency-sensitive threads (the live dashboard's).
//!
//! stressctl loads the machine on purpose: its browsers keep every core busy. On a saturated
//! host a thread that sleeps until a request comes waits behind every runnable browser thread
//! before it runs, so an answer that takes well under a millisecond of CPU arrives tens of
//! milliseconds late (the host's run queue, not the work). The orchestrator's own threads must win
//! the CPU over the load they create — that is what keeps the dashboard (and whoever reads
//! `/metrics`) answering while the campaign saturates the host. They use little CPU, so a higher
//! priority costs the browsers next to nothing, which the benchmarks check
//! (`COMPARE=1 scripts/bench-dashboard.sh`).
//!
//! The priority is a per-thread nice value (on Linux `setpriority(PRIO_PROCESS, tid)` changes one
//! thread). Lowering nice needs `CAP_SYS_NICE` (or `RLIMIT_NICE`); without it the thread keeps its
//! priority and the caller logs why, once: nothing else depends on it.
//!
//! A nice value only orders threads inside one scheduling group. On cgroup v2 the browsers' cgroup
//! weighs a tenth of stressctl's own (`confine::cgroup`). On cgroup v1 with stressctl in the root
//! cgroup and the kernel's autogroup on, stressctl's threads are one group (its session's) that
//! weighs the same as the browsers' whole cgroup, whatever their nice value. Measured on this
//! project's machine (a 2-session WebGPU campaign, 10 SSE clients): `/metrics` p99 9.8 ms with
//! the dashboard and its client at nice −10, 2.0 ms with both taken out of that group. There the
//! threads also join the run's orchestrator cgroup (`crate::confine::raise_orchestrator_thread`).

/// The nice value of the dashboard's threads: weight ≈ 9.3× a nice-0 thread's (the kernel's
/// weight table), enough to run ahead of the browsers' threads at wake-up, while its few
/// milliseconds of CPU per second stay negligible next to theirs.
pub const ORCHESTRATOR_NICE: i32 = -10;

/// Gives the calling thread nice value `nice`, unless it already runs at that priority or higher.
/// Err (one line) when the system refuses (no `CAP_SYS_NICE`): the thread is then unchanged.
pub fn raise_current_thread(nice: i32) -> Result<(), String> {
    let tid = current_tid();
    let now = thread_nice(tid)?;
    if now <= nice {
        return Ok(());
    }
    // SAFETY: setpriority has no memory preconditions; `tid` is this thread's id.
    let rc = unsafe { libc::setpriority(libc::PRIO_PROCESS, tid, nice) };
    if rc != 0 {
        let e = std::io::Error::last_os_error();
        return Err(format!("cannot raise this thread's priority to nice {nice} ({e}; needs CAP_SYS_NICE): it stays at nice {now}"));
    }
    Ok(())
}

/// The calling thread's kernel thread id (what `setpriority(PRIO_PROCESS, …)` takes on Linux).
pub(crate) fn current_tid() -> libc::id_t {
    // SAFETY: gettid has no preconditions and cannot fail.
    let tid = unsafe { libc::syscall(libc::SYS_gettid) };
    libc::id_t::try_from(tid).unwrap_or(0)
}

/// The nice value of thread `tid`.
fn thread_nice(tid: libc::id_t) -> Result<i32, String> {
    // getpriority may legitimately return -1: errno tells an error apart.
    // SAFETY: __errno_location returns this thread's errno; getpriority has no preconditions.
    unsafe {
        *libc::__errno_location() = 0;
        let v = libc::getpriority(libc::PRIO_PROCESS, tid);
        if v == -1 && *libc::__errno_location() != 0 {
            return Err(format!("cannot read this thread's priority: {}", std::io::Error::last_os_error()));
        }
        Ok(v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raises_only_the_calling_thread() {
        let main_before = thread_nice(current_tid()).unwrap();
        let (r, nice) = std::thread::spawn(move || {
            let r = raise_current_thread(main_before - 1);
            (r, thread_nice(current_tid()).unwrap())
        })
        .join()
        .unwrap();
        match r {
            Ok(()) => assert_eq!(nice, main_before - 1, "the thread runs at the raised priority"),
            Err(e) => {
                assert!(e.contains("CAP_SYS_NICE"), "{e}");
                assert_eq!(nice, main_before, "a refused raise leaves the thread as it was");
            }
        }
        assert_eq!(thread_nice(current_tid()).unwrap(), main_before, "other threads keep their priority");
    }

    #[test]
    fn never_lowers_a_higher_priority() {
        let r = std::thread::spawn(|| {
            let before = thread_nice(current_tid()).unwrap();
            (raise_current_thread(before + 5), thread_nice(current_tid()).unwrap() == before)
        })
        .join()
        .unwrap();
        assert_eq!(r, (Ok(()), true));
    }
}
