//! Linux `/proc` helpers: robust parsing of `/proc/<pid>/stat`, process identity (pid + start time),
//! process-tree discovery and resident-set sizes.
//!
//! Everything here reads `/proc` directly (no `sysinfo` process refresh), so it is cheap enough to
//! run once a second: one `read_dir("/proc")` plus one small read of `/proc/<pid>/stat` per process.

use std::collections::{HashMap, HashSet, VecDeque};
use std::io::Read;
use std::sync::OnceLock;

/// The fields of `/proc/<pid>/stat` the guardian uses.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ProcStat {
    /// Process id (field 1).
    pub pid: u32,
    /// Command name (field 2) without the surrounding parentheses; may contain spaces and `)`.
    pub comm: String,
    /// Process state (field 3): `R`, `S`, `D`, `Z`, `T`, ...
    pub state: char,
    /// Parent process id (field 4).
    pub ppid: u32,
    /// Process group id (field 5).
    pub pgid: u32,
    /// User + system CPU time in clock ticks (fields 14 + 15), all threads of the process.
    pub cpu_ticks: u64,
    /// Start time in clock ticks since boot (field 22); with `pid` it identifies a process across pid reuse.
    pub start_time: u64,
    /// Resident set size in pages (field 24); negative values read as 0.
    pub rss_pages: u64,
}

impl ProcStat {
    /// Whether the process is a zombie (exited, not yet reaped).
    pub fn is_zombie(&self) -> bool {
        self.state == 'Z'
    }

    /// Resident set size in bytes (`rss_pages` × [`page_size`]); 0 for zombies.
    pub fn rss_bytes(&self) -> u64 {
        if self.is_zombie() {
            0
        } else {
            self.rss_pages.saturating_mul(page_size())
        }
    }
}

/// Parses the contents of a `/proc/<pid>/stat` file.
///
/// The command name is everything between the first `(` and the LAST `)`, so names containing
/// spaces, `(`, `)` or `") ("` are handled. Returns `None` for malformed input (never panics).
pub fn parse_stat(line: &str) -> Option<ProcStat> {
    parse_stat_bytes(line.as_bytes())
}

/// Like [`parse_stat`], on raw bytes: a command name that is not UTF-8 (it can be any bytes) is decoded
/// lossily instead of making the whole line unreadable.
pub fn parse_stat_bytes(raw: &[u8]) -> Option<ProcStat> {
    let open = raw.iter().position(|&b| b == b'(')?;
    let close = raw.iter().rposition(|&b| b == b')')?;
    if close < open {
        return None;
    }
    let pid = std::str::from_utf8(raw.get(..open)?).ok()?.trim().parse().ok()?;
    let comm = String::from_utf8_lossy(raw.get(open + 1..close)?).into_owned();
    // Fields after the command name: index 0 is field 3 (state), so field n is at index n - 3.
    let mut rest = std::str::from_utf8(raw.get(close + 1..)?).ok()?.split_ascii_whitespace();
    let state = rest.next()?.chars().next()?;
    let ppid = rest.next()?.parse().ok()?; // field 4
    let pgid = rest.next()?.parse().ok()?; // field 5
    let mut rest = rest.skip(8); // fields 6..=13
    let utime: u64 = rest.next()?.parse().ok()?; // field 14
    let stime: u64 = rest.next()?.parse().ok()?; // field 15
    let mut rest = rest.skip(6); // fields 16..=21
    let start_time = rest.next()?.parse().ok()?; // field 22
    let _vsize = rest.next()?; // field 23
    let rss: i64 = rest.next()?.parse().ok()?; // field 24
    Some(ProcStat {
        pid,
        comm,
        state,
        ppid,
        pgid,
        cpu_ticks: utime.saturating_add(stime),
        start_time,
        rss_pages: u64::try_from(rss).unwrap_or(0),
    })
}

/// Largest `/proc/<pid>/stat` we accept (real ones are ~300 bytes; comm is at most 64).
const STAT_MAX: usize = 4096;

/// Reads `/proc/<pid>/stat` into `buf` and parses it. Plain `read` calls into a reused buffer: no
/// size probe (`statx`) and no UTF-8 requirement, so a scan costs one open/read/close per process.
fn read_stat_into(pid: u32, buf: &mut Vec<u8>) -> Option<ProcStat> {
    let mut f = std::fs::File::open(format!("/proc/{pid}/stat")).ok()?;
    buf.resize(STAT_MAX, 0);
    let mut len = 0;
    while len < buf.len() {
        match f.read(&mut buf[len..]) {
            Ok(0) => break,
            Ok(n) => len += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(_) => return None,
        }
    }
    parse_stat_bytes(buf.get(..len)?)
}

/// Reads and parses `/proc/<pid>/stat`; `None` if the process does not exist (or the file is malformed).
pub fn read_stat(pid: u32) -> Option<ProcStat> {
    read_stat_into(pid, &mut Vec::with_capacity(STAT_MAX))
}

/// One pass over `/proc`: the stat of every process visible right now (thread-group leaders only).
///
/// Processes that exit during the scan are silently skipped.
pub fn all_processes() -> Vec<ProcStat> {
    let Ok(rd) = std::fs::read_dir("/proc") else { return Vec::new() };
    let mut buf = Vec::with_capacity(STAT_MAX);
    let mut out = Vec::with_capacity(256);
    for entry in rd.flatten() {
        let name = entry.file_name();
        let Some(pid) = name.to_str().and_then(|s| s.parse::<u32>().ok()) else { continue };
        if let Some(st) = read_stat_into(pid, &mut buf) {
            out.push(st);
        }
    }
    out
}

/// Start time (clock ticks since boot) of a process: field 22 of `/proc/<pid>/stat`.
pub fn process_start_time(pid: u32) -> Option<u64> {
    read_stat(pid).map(|s| s.start_time)
}

/// Whether `pid` is still the process that had `start_time`.
pub fn is_same_process(pid: u32, start_time: u64) -> bool {
    process_start_time(pid) == Some(start_time)
}

/// Size of a memory page in bytes (`sysconf(_SC_PAGESIZE)`, 4096 if that fails). Cached after the first call.
pub fn page_size() -> u64 {
    static PAGE: OnceLock<u64> = OnceLock::new();
    *PAGE.get_or_init(|| {
        // SAFETY: sysconf has no preconditions; it only reads a configuration value.
        let v = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
        u64::try_from(v).ok().filter(|&v| v > 0).unwrap_or(4096)
    })
}

/// Clock ticks per second used by `/proc/<pid>/stat` times (`sysconf(_SC_CLK_TCK)`, 100 if that fails). Cached.
pub fn clock_ticks_per_sec() -> u64 {
    static TCK: OnceLock<u64> = OnceLock::new();
    *TCK.get_or_init(|| {
        // SAFETY: sysconf has no preconditions; it only reads a configuration value.
        let v = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
        u64::try_from(v).ok().filter(|&v| v > 0).unwrap_or(100)
    })
}

/// Indices into `procs` of every process whose ppid chain leads to `root` (not `root` itself).
///
/// Pure function over a snapshot (see [`all_processes`]). Zombies are included and their children
/// are followed too; a visited set makes it safe against inconsistent snapshots (pid reuse mid-scan).
pub fn descendant_indices(procs: &[ProcStat], root: u32) -> Vec<usize> {
    let mut children: HashMap<u32, Vec<usize>> = HashMap::with_capacity(procs.len());
    for (i, p) in procs.iter().enumerate() {
        if p.pid != p.ppid {
            children.entry(p.ppid).or_default().push(i);
        }
    }
    let mut out = Vec::new();
    let mut seen: HashSet<u32> = HashSet::new();
    seen.insert(root);
    let mut queue = VecDeque::from([root]);
    while let Some(pid) = queue.pop_front() {
        let Some(kids) = children.get(&pid) else { continue };
        for &i in kids {
            let child = procs[i].pid;
            if seen.insert(child) {
                out.push(i);
                queue.push_back(child);
            }
        }
    }
    out
}

/// All processes whose ppid chain leads to `root` (not `root` itself), from one scan of `/proc`.
///
/// Zombies are included (and their children followed); callers that sum memory should skip them.
pub fn descendants(root: u32) -> Vec<u32> {
    let procs = all_processes();
    descendant_indices(&procs, root).into_iter().map(|i| procs[i].pid).collect()
}

/// Run-queue wait of every thread of process `pid`: `(tid, ns)` from the second field of
/// `/proc/<pid>/task/<tid>/schedstat` — the time the thread was runnable but waited for a CPU
/// (`CONFIG_SCHED_INFO`, on in distribution kernels). Empty if the process is gone or the kernel
/// has no schedstat files.
pub fn thread_run_delays(pid: u32) -> Vec<(u32, u64)> {
    let Ok(rd) = std::fs::read_dir(format!("/proc/{pid}/task")) else { return Vec::new() };
    let mut out = Vec::new();
    for e in rd.flatten() {
        let Some(tid) = e.file_name().to_str().and_then(|t| t.parse::<u32>().ok()) else { continue };
        if let Some(ns) = std::fs::read_to_string(e.path().join("schedstat")).ok().and_then(|t| parse_run_delay(&t)) {
            out.push((tid, ns));
        }
    }
    out
}

/// The run-queue wait (second field, ns) of a `schedstat` line: `<on-cpu ns> <waiting ns> <slices>`.
pub fn parse_run_delay(line: &str) -> Option<u64> {
    line.split_ascii_whitespace().nth(1)?.parse().ok()
}

/// Resident set size in bytes of one process from `/proc/<pid>/statm` (second field × page size).
///
/// `None` if the process is gone; zombies read as 0.
pub fn process_rss(pid: u32) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/statm")).ok()?;
    let pages: u64 = s.split_ascii_whitespace().nth(1)?.parse().ok()?;
    Some(pages.saturating_mul(page_size()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::{Command, Stdio};
    use std::time::{Duration, Instant};

    fn stat_line(pid: u32, comm: &str) -> String {
        // 52 fields as in a modern kernel; utime=7 stime=5 starttime=123456 rss=789.
        format!(
            "{pid} ({comm}) S 42 4242 4242 0 -1 4194560 100 0 0 0 7 5 0 0 20 0 3 0 123456 9999999 789 \
             18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0 0 0 0 0 0 0 0 0\n"
        )
    }

    #[test]
    fn parses_comm_with_parens_and_spaces() {
        let comm = "evil ) ( name) (x";
        let st = parse_stat(&stat_line(1234, comm)).expect("parse");
        assert_eq!(st.pid, 1234);
        assert_eq!(st.comm, comm);
        assert_eq!(st.state, 'S');
        assert_eq!(st.ppid, 42);
        assert_eq!(st.pgid, 4242);
        assert_eq!(st.cpu_ticks, 12);
        assert_eq!(st.start_time, 123456);
        assert_eq!(st.rss_pages, 789);
        assert!(!st.is_zombie());
    }

    #[test]
    fn parses_plain_and_zombie_lines() {
        let st = parse_stat(&stat_line(7, "sleep")).expect("parse");
        assert_eq!(st.comm, "sleep");
        let z = parse_stat(&stat_line(8, "a) (b").replacen(") S ", ") Z ", 1)).expect("parse zombie");
        assert_eq!(z.comm, "a) (b");
        assert!(z.is_zombie());
        assert_eq!(z.rss_bytes(), 0);
    }

    #[test]
    fn non_utf8_comm_is_lossy_not_fatal() {
        let mut raw = b"99 (bad\xff\xfe) x) ".to_vec();
        raw.extend_from_slice(stat_line(99, "").split_once(") ").map_or("", |(_, r)| r).as_bytes());
        let st = parse_stat_bytes(&raw).expect("parse");
        assert_eq!(st.pid, 99);
        assert!(st.comm.starts_with("bad") && st.comm.ends_with(") x"), "{}", st.comm);
        assert_eq!(st.start_time, 123456);
    }

    #[test]
    fn malformed_lines_are_none_not_panics() {
        for bad in ["", ")", "(", "12 (x)", "12 (x) ", "12 (x) S", "x (y) S 1 2 3", ") 12 (", "12 (x) S a b c"] {
            assert_eq!(parse_stat(bad), None, "{bad:?}");
        }
        let truncated = stat_line(1, "x");
        let cut = truncated.find("123456").expect("start time in line");
        assert_eq!(parse_stat(&truncated[..cut]), None);
        // Negative rss reads as 0.
        let neg = stat_line(5, "n").replace(" 9999999 789 ", " 9999999 -3 ");
        assert_eq!(parse_stat(&neg).map(|s| s.rss_pages), Some(0));
    }

    #[test]
    fn own_stat_is_readable() {
        let me = std::process::id();
        let st = read_stat(me).expect("own stat");
        assert_eq!(st.pid, me);
        assert!(st.rss_bytes() > 0);
        assert!(process_rss(me).is_some_and(|r| r > 0));
        assert!(page_size() >= 4096);
        assert!(clock_ticks_per_sec() > 0);
    }

    #[test]
    fn descendant_indices_on_synthetic_tree() {
        let p = |pid, ppid, state| ProcStat { pid, ppid, state, ..ProcStat::default() };
        // 10 -> 11 (zombie) -> 12 -> 13; 10 -> 14; 20 -> 21 (unrelated); self-parented 1.
        let procs = vec![
            p(1, 1, 'S'),
            p(10, 1, 'S'),
            p(11, 10, 'Z'),
            p(12, 11, 'S'),
            p(13, 12, 'S'),
            p(14, 10, 'R'),
            p(20, 1, 'S'),
            p(21, 20, 'S'),
        ];
        let mut got: Vec<u32> = descendant_indices(&procs, 10).into_iter().map(|i| procs[i].pid).collect();
        got.sort_unstable();
        assert_eq!(got, vec![11, 12, 13, 14]);
        assert!(descendant_indices(&procs, 13).is_empty());
        assert!(descendant_indices(&procs, 999).is_empty());
    }

    fn comm_of(pid: u32) -> Option<String> {
        read_stat(pid).map(|s| s.comm)
    }

    #[test]
    fn descendants_sees_real_child_tree() {
        let me = std::process::id();
        let mut child = Command::new("sh").args(["-c", "sleep 5 & sleep 5"]).stdin(Stdio::null()).spawn().expect("spawn sh");
        let child_pid = child.id();
        // Wait until both sleeps exist (sh may exec the last one itself, or fork it).
        let deadline = Instant::now() + Duration::from_secs(3);
        let mut sleeps: Vec<u32> = Vec::new();
        while Instant::now() < deadline {
            let mine = descendants(me);
            let under_child: Vec<u32> = descendants(child_pid);
            sleeps = std::iter::once(child_pid)
                .chain(under_child)
                .filter(|p| mine.contains(p) && comm_of(*p).as_deref() == Some("sleep"))
                .collect();
            if sleeps.len() >= 2 {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        // Record identities before asserting so we always clean up.
        let ids: Vec<(u32, Option<u64>)> = sleeps.iter().map(|&p| (p, process_start_time(p))).collect();
        let found = sleeps.len();
        for (pid, start) in &ids {
            if let Some(start) = start {
                if is_same_process(*pid, *start) {
                    // SAFETY: kill(2) on a pid we spawned and whose start time we just verified.
                    unsafe { libc::kill(*pid as i32, libc::SIGKILL) };
                }
            }
        }
        let _ = child.kill();
        let _ = child.wait();
        assert!(found >= 2, "expected two sleeps under our pid, found {sleeps:?}");
    }

    #[test]
    fn run_delays_of_own_threads() {
        assert_eq!(parse_run_delay("123 456 7\n"), Some(456));
        assert_eq!(parse_run_delay("123"), None);
        let mine = thread_run_delays(std::process::id());
        if std::path::Path::new("/proc/self/schedstat").exists() {
            assert!(mine.iter().any(|&(tid, _)| tid == std::process::id()), "{mine:?}");
        }
        assert!(thread_run_delays(u32::MAX).is_empty());
    }

    #[test]
    fn start_time_identifies_process() {
        let me = std::process::id();
        let st = process_start_time(me).expect("own start time");
        assert!(is_same_process(me, st));
        assert!(!is_same_process(me, st + 1));
        let mut child = Command::new("sleep").arg("5").spawn().expect("spawn sleep");
        let pid = child.id();
        let cst = process_start_time(pid).expect("child start time");
        assert!(cst >= st);
        assert!(is_same_process(pid, cst));
        let _ = child.kill();
        let _ = child.wait();
        assert!(!is_same_process(pid, cst), "reaped child must not match");
        assert_eq!(process_start_time(0), None);
        assert_eq!(process_start_time(u32::MAX), None);
    }
}
