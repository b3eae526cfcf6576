//! The resource sampler: system CPU and memory (via one long-lived `sysinfo::System`), disk usage of the
//! output directory's filesystem (via `statvfs`, exactly as `df` computes it), the CPU / RSS of the
//! campaign's process tree (via `/proc` directly — never a `sysinfo` process refresh), and, while a run's
//! cgroup is in force, the campaign's CPU and memory from it, so that the host's own CPU use (everything
//! outside the campaign) can be judged; plus pressure stall information where the kernel has it.
//!
//! Cost: one `/proc/stat` + `/proc/meminfo` read, one `statvfs`, three `/proc/pressure` reads, two cgroup
//! file reads when confined, and one scan of `/proc/<pid>/stat` for every process on the host per
//! [`Sampler::sample`]. See the ignored `bench_sample_cost` test.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use sysinfo::{System, MINIMUM_CPU_UPDATE_INTERVAL};

use super::pressure::{self, Pressure};
use crate::confine::cgroup::{Reservation, RunCgroup};
use crate::procfs::{self, ProcStat};

/// One reading of host and campaign resources.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct ResourceSample {
    /// System-wide CPU use, in percent of all cores (0..=100), since the previous sample.
    pub cpu_percent: f64,
    /// Memory in use: (total - available) / total × 100.
    pub memory_percent: f64,
    /// Memory available for new allocations without swapping (`MemAvailable`), in bytes.
    pub memory_available_bytes: u64,
    /// Used percent of the filesystem holding the sampler's path, as `df` computes it: used / (used + avail) × 100.
    pub disk_percent: f64,
    /// Bytes available to unprivileged users on that filesystem (`f_bavail × f_frsize`).
    pub disk_available_bytes: u64,
    /// RSS of all (non-zombie) descendants of the root pid, not the root itself: drivers + browsers.
    pub tree_rss_bytes: u64,
    /// CPU of those descendants since the previous sample; 100 = one full core.
    pub tree_cpu_percent: f64,
    /// Number of live (non-zombie) descendants of the root pid.
    pub tree_processes: u32,
    /// RSS of the process running the sampler (the daemon itself).
    pub self_rss_bytes: u64,
    /// CPU of the process running the sampler since the previous sample; 100 = one full core.
    pub self_cpu_percent: f64,
    /// CPU of the campaign in percent of all cores (0..=100): its cgroup's usage where there is one,
    /// else its process tree's, plus the daemon's own.
    pub campaign_cpu_percent: f64,
    /// CPU of the run's cgroup alone, percent of all cores (None without a cgroup to read): what the
    /// reservation's cap governs. The daemon runs outside the cgroup, so its own CPU is the
    /// campaign's (`campaign_cpu_percent`) but not held to the cap.
    pub cgroup_cpu_percent: Option<f64>,
    /// CPU used outside the campaign, in percent of all cores: `cpu_percent − campaign_cpu_percent`,
    /// at least 0.
    pub host_cpu_percent: f64,
    /// CPU the processes outside the campaign waited for (runnable, no CPU free: the run-queue wait
    /// of their threads), in percent of all cores. Measured only while a reservation is in force.
    pub host_wait_percent: f64,
    /// The reservation in force for this sample (None: the campaign is not confined, and the guardian
    /// judges total CPU).
    pub reservation: Option<Reservation>,
    /// Memory charged to the campaign's cgroup, bytes (None without a memory cgroup).
    pub campaign_memory_bytes: Option<u64>,
    /// System-wide pressure stall information (None where the kernel has none).
    pub pressure: Option<Pressure>,
}

impl ResourceSample {
    /// Whether a reservation was in force (the campaign confined in its cgroup).
    pub fn confined(&self) -> bool {
        self.reservation.is_some()
    }

    /// The host's CPU demand, percent of all cores (0..=100): what the processes outside the campaign
    /// used plus what they waited for. It reaches 100 when the host wants more CPU than it gets —
    /// whether it crowds itself out or the campaign takes its share — and stays at the host's own use
    /// while the campaign only fills what the host leaves idle. What the guardian judges while the
    /// campaign is confined.
    pub fn host_cpu_demand(&self) -> f64 {
        clamp_percent(self.host_cpu_percent + self.host_wait_percent)
    }

    /// The host's situation in this sample, for the store and the report: the reservation in force and
    /// what is left for the host. Percentages are of all cores / of total memory, rounded to 0.1.
    pub fn host_record(&self) -> serde_json::Value {
        let r1 = |v: f64| (v * 10.0).round() / 10.0;
        serde_json::json!({
            "confined": self.confined(),
            "reserve_percent": self.reservation.as_ref().map(|r| r.reserve_percent),
            "cpu_cap_percent": self.reservation.as_ref().and_then(|r| r.cpu_cap_percent).map(r1),
            "memory_cap_mb": self.reservation.as_ref().and_then(|r| r.memory_cap_bytes).map(|b| b >> 20),
            "campaign_cpu_percent": r1(self.campaign_cpu_percent),
            "host_cpu_percent": r1(self.host_cpu_percent),
            "host_wait_percent": r1(self.host_wait_percent),
            "cpu_idle_percent": r1((100.0 - self.cpu_percent).max(0.0)),
            "memory_available_mb": self.memory_available_bytes >> 20,
            "campaign_memory_mb": self.campaign_memory_bytes.map(|b| b >> 20),
            "pressure": self.pressure.map(|p| serde_json::json!({
                "cpu_some": p.cpu.some, "memory_some": p.memory.some, "memory_full": p.memory.full,
                "io_some": p.io.some, "io_full": p.io.full,
            })),
        })
    }
}

/// Usage of one filesystem, computed like `df`.
#[derive(Clone, Copy, Debug, Default, PartialEq, serde::Serialize)]
pub struct DiskUsage {
    /// Size of the filesystem in bytes (`f_blocks × f_frsize`).
    pub total_bytes: u64,
    /// Bytes in use (`(f_blocks - f_bfree) × f_frsize`).
    pub used_bytes: u64,
    /// Bytes available to unprivileged users (`f_bavail × f_frsize`).
    pub available_bytes: u64,
    /// used / (used + available) × 100, as `df`'s `Use%` (not rounded up); 0 for an empty filesystem.
    pub used_percent: f64,
}

/// Widens a libc integer (u64 on 64-bit Linux, u32 on some 32-bit targets) to u64.
fn to_u64<T: TryInto<u64>>(v: T) -> u64 {
    v.try_into().unwrap_or(u64::MAX)
}

/// `statvfs(2)` of exactly `path`.
fn statvfs(path: &Path) -> Option<libc::statvfs> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(path.as_os_str().as_bytes()).ok()?;
    let mut st = std::mem::MaybeUninit::<libc::statvfs>::uninit();
    // SAFETY: `c` is a valid NUL-terminated string and `st` points to writable memory of the right type.
    let rc = unsafe { libc::statvfs(c.as_ptr(), st.as_mut_ptr()) };
    if rc != 0 {
        return None;
    }
    // SAFETY: statvfs returned 0, so it filled in the whole struct.
    Some(unsafe { st.assume_init() })
}

/// Disk usage of the filesystem holding `path`.
///
/// If `path` does not exist yet (an output directory not created so far), its nearest existing ancestor
/// is used; a relative path is resolved against the current directory. `None` only if no ancestor can
/// be queried.
pub fn disk_usage(path: &Path) -> Option<DiskUsage> {
    let st = path.ancestors().find_map(|p| statvfs(if p.as_os_str().is_empty() { Path::new(".") } else { p }))?;
    let frsize = if st.f_frsize > 0 { st.f_frsize } else { st.f_bsize };
    let (frsize, blocks, bfree, bavail) = (to_u64(frsize), to_u64(st.f_blocks), to_u64(st.f_bfree), to_u64(st.f_bavail));
    let used_blocks = blocks.saturating_sub(bfree);
    let denom = used_blocks.saturating_add(bavail);
    let used_percent = if denom == 0 { 0.0 } else { used_blocks as f64 / denom as f64 * 100.0 };
    Some(DiskUsage {
        total_bytes: blocks.saturating_mul(frsize),
        used_bytes: used_blocks.saturating_mul(frsize),
        available_bytes: bavail.saturating_mul(frsize),
        used_percent,
    })
}

/// Sum of the RSS of `root` itself and all its (non-zombie) descendants in the snapshot `procs`.
pub fn tree_rss_from(procs: &[ProcStat], root: u32) -> u64 {
    let own = procs.iter().find(|p| p.pid == root).map_or(0, ProcStat::rss_bytes);
    procfs::descendant_indices(procs, root).into_iter().map(|i| procs[i].rss_bytes()).fold(own, u64::saturating_add)
}

/// RSS in bytes of one browser's whole process tree: `root` itself plus all its descendants (zombies
/// count 0), from one scan of `/proc`. 0 if `root` is gone and left no descendants.
///
/// For several browsers, take one [`procfs::all_processes`] snapshot and call [`tree_rss_from`] per root.
pub fn tree_rss(root: u32) -> u64 {
    tree_rss_from(&procfs::all_processes(), root)
}

/// Clamps a percentage into 0..=100, mapping NaN to 0.
fn clamp_percent(v: f64) -> f64 {
    if v.is_nan() {
        0.0
    } else {
        v.clamp(0.0, 100.0)
    }
}

/// Samples host resources and the campaign's process tree. Keep one and call [`Sampler::sample`]
/// periodically (about once a second).
///
/// CPU figures are rates over the interval since the previous *CPU window*: the first sample's CPU values
/// cover the time since [`Sampler::new`] (which takes the initial readings). CPU windows shorter than
/// [`MINIMUM_CPU_UPDATE_INTERVAL`] (200 ms on Linux) are not measured: a sample taken sooner than that
/// after the previous one repeats the previous CPU values (memory, disk and RSS are always fresh). To
/// keep the first CPU value meaningful, the first `sample()` waits out the rest of that interval if it
/// is called sooner than 200 ms after `new` (once; later calls never sleep).
pub struct Sampler {
    sys: System,
    disk_path: PathBuf,
    root: u32,
    self_pid: u32,
    first_sample_pending: bool,
    /// When `sys` last refreshed CPU times (taken *after* the refresh so sysinfo's own gate has passed too).
    cpu_refreshed_at: Instant,
    /// Start of the current tree/self CPU window.
    ticks_at: Instant,
    /// pid -> (start time, cpu ticks) of the tree at the start of the window; only current processes.
    tree_prev: HashMap<u32, (u64, u64)>,
    /// (start time, cpu ticks) of the sampler's own process at the start of the window.
    self_prev: Option<(u64, u64)>,
    last_cpu: f64,
    last_tree_cpu: f64,
    last_self_cpu: f64,
    /// The run cgroup to judge by; None = whichever is installed (`confine::installed`) at each sample.
    confinement: Option<Arc<RunCgroup>>,
    /// (identity of the cgroup, its CPU usage in µs, when that usage was read) at the start of the
    /// current cgroup window. The rate is taken over the time between the two reads, not over the
    /// sampler's window: a read delayed by a slow `/proc` scan (the sampler is not in the cgroup and
    /// competes for the CPU the cgroup leaves) would otherwise count up to one more CFS period's
    /// quota against a window that did not include it.
    cgroup_prev: Option<(usize, u64, Instant)>,
    /// The cgroup's CPU over the last window; 100 = one full core. None without a cgroup to read.
    last_cgroup_cpu: Option<f64>,
    /// (pid, process start time, tid) -> run-queue wait in ns at the start of the window, for the
    /// threads of every process outside the campaign; empty while not confined.
    host_wait_prev: HashMap<(u32, u64, u32), u64>,
    /// Host run-queue wait over the last window, percent of all cores.
    last_host_wait: f64,
}

impl Sampler {
    /// A sampler measuring the filesystem holding `disk_path` (the output directory) and the process
    /// tree below this process (`std::process::id()`). Takes the initial CPU readings.
    pub fn new(disk_path: impl Into<PathBuf>) -> Self {
        Self::with_root(disk_path, std::process::id())
    }

    /// Like [`Sampler::new`], but the campaign's process tree is the descendants of `root`.
    ///
    /// `self_*` fields still describe the process running the sampler; if that process is itself a
    /// descendant of `root` it is counted in both.
    pub fn with_root(disk_path: impl Into<PathBuf>, root: u32) -> Self {
        let mut sys = System::new();
        sys.refresh_cpu_usage();
        let cpu_refreshed_at = Instant::now();
        let ticks_at = Instant::now();
        let procs = procfs::all_processes();
        let mut sampler = Sampler {
            sys,
            disk_path: disk_path.into(),
            root,
            self_pid: std::process::id(),
            first_sample_pending: true,
            cpu_refreshed_at,
            ticks_at,
            tree_prev: HashMap::new(),
            self_prev: None,
            last_cpu: 0.0,
            last_tree_cpu: 0.0,
            last_self_cpu: 0.0,
            confinement: None,
            cgroup_prev: None,
            last_cgroup_cpu: None,
            host_wait_prev: HashMap::new(),
            last_host_wait: 0.0,
        };
        // A zero-length window only records the baselines; the rates stay 0 until the first sample.
        let tree = procfs::descendant_indices(&procs, root);
        let conf = crate::confine::installed();
        sampler.update_cpu_window(&procs, &tree, Duration::ZERO, conf.as_ref());
        sampler
    }

    /// Judges the campaign by `cgroup` rather than by whichever run cgroup is installed process-wide.
    pub fn with_confinement(mut self, cgroup: Arc<RunCgroup>) -> Self {
        self.cgroup_prev = cgroup.cpu_usage_usec().map(|u| (Arc::as_ptr(&cgroup) as usize, u, Instant::now()));
        self.confinement = Some(cgroup);
        self
    }

    /// The root pid whose descendants form the campaign's process tree.
    pub fn root(&self) -> u32 {
        self.root
    }

    /// The path whose filesystem's usage is reported.
    pub fn disk_path(&self) -> &Path {
        &self.disk_path
    }

    /// Takes one sample. Cost is dominated by the `/proc` scan, roughly 10 µs per process on the host
    /// (about 1–2 ms with ~100 processes); see the type docs for CPU windows.
    pub fn sample(&mut self) -> ResourceSample {
        if self.first_sample_pending {
            self.first_sample_pending = false;
            let since = self.cpu_refreshed_at.elapsed();
            if since < MINIMUM_CPU_UPDATE_INTERVAL {
                std::thread::sleep(MINIMUM_CPU_UPDATE_INTERVAL - since);
            }
        }

        // One gate for all CPU windows. sysinfo itself ignores refreshes closer than
        // MINIMUM_CPU_UPDATE_INTERVAL; `cpu_refreshed_at` is taken after its refresh, so when this gate
        // passes, sysinfo's has too.
        let close_cpu_window = self.cpu_refreshed_at.elapsed() >= MINIMUM_CPU_UPDATE_INTERVAL;
        if close_cpu_window {
            self.sys.refresh_cpu_usage();
            self.cpu_refreshed_at = Instant::now();
            self.last_cpu = clamp_percent(f64::from(self.sys.global_cpu_usage()));
        }

        self.sys.refresh_memory();
        let total = self.sys.total_memory();
        let available = self.sys.available_memory().min(total);
        let memory_percent = if total == 0 { 0.0 } else { clamp_percent(total.saturating_sub(available) as f64 / total as f64 * 100.0) };

        let disk = disk_usage(&self.disk_path).unwrap_or_default();

        let conf = self.confinement.clone().or_else(crate::confine::installed);
        let now = Instant::now();
        let procs = procfs::all_processes();
        let tree = procfs::descendant_indices(&procs, self.root);
        if close_cpu_window {
            let window = now.saturating_duration_since(self.ticks_at);
            self.ticks_at = now;
            self.update_cpu_window(&procs, &tree, window, conf.as_ref());
        }

        // The PID-namespace inits are forks of the daemon: their RSS is its copy-on-write image.
        let inits = crate::confine::pidns::live_inits();
        let mut tree_rss_bytes = 0u64;
        let mut tree_processes = 0u32;
        for &i in &tree {
            let p = &procs[i];
            if !p.is_zombie() {
                if !inits.contains(&(p.pid, p.start_time)) {
                    tree_rss_bytes = tree_rss_bytes.saturating_add(p.rss_bytes());
                }
                tree_processes = tree_processes.saturating_add(1);
            }
        }
        let self_rss_bytes = procs.iter().find(|p| p.pid == self.self_pid).map_or(0, ProcStat::rss_bytes);
        let cores = self.sys.cpus().len().max(1) as f64;
        let campaign_cpu_percent = clamp_percent((self.last_cgroup_cpu.unwrap_or(self.last_tree_cpu) + self.last_self_cpu) / cores);

        ResourceSample {
            cpu_percent: self.last_cpu,
            memory_percent,
            memory_available_bytes: available,
            disk_percent: clamp_percent(disk.used_percent),
            disk_available_bytes: disk.available_bytes,
            tree_rss_bytes,
            tree_cpu_percent: self.last_tree_cpu,
            tree_processes,
            self_rss_bytes,
            self_cpu_percent: self.last_self_cpu,
            campaign_cpu_percent,
            cgroup_cpu_percent: self.last_cgroup_cpu.map(|c| clamp_percent(c / cores)),
            host_cpu_percent: clamp_percent(self.last_cpu - campaign_cpu_percent),
            host_wait_percent: if conf.is_some() { self.last_host_wait } else { 0.0 },
            reservation: conf.as_ref().map(|c| c.reservation().clone()),
            campaign_memory_bytes: conf.as_ref().and_then(|c| c.memory_usage()),
            pressure: pressure::read(),
        }
    }

    /// Closes the current tree/self CPU window of length `window` with the snapshot `procs` (`tree` = indices
    /// of the root's descendants in it): computes the
    /// CPU rates and replaces the baselines (the tree map then holds exactly the current descendants, so
    /// its size tracks the live tree). Processes new to the tree count from 0 ticks; processes that
    /// exited during the window are lost (their last ticks cannot be read) — which is why the cgroup's
    /// usage, which keeps them, is preferred where there is one (`cgroup`).
    fn update_cpu_window(&mut self, procs: &[ProcStat], tree: &[usize], window: Duration, cgroup: Option<&Arc<RunCgroup>>) {
        let usage = cgroup.and_then(|c| c.cpu_usage_usec().map(|u| (Arc::as_ptr(c) as usize, u, Instant::now())));
        let secs = window.as_secs_f64();
        self.last_cgroup_cpu = match (usage, self.cgroup_prev) {
            (Some((id, now, at)), Some((prev_id, prev, prev_at))) if id == prev_id && secs > 0.0 => {
                let between = at.saturating_duration_since(prev_at).as_secs_f64();
                (between > 0.0).then(|| now.saturating_sub(prev) as f64 / 1e6 / between * 100.0)
            }
            _ => None,
        };
        self.cgroup_prev = usage;

        self.update_host_wait(procs, tree, secs, cgroup.map(|c| c.as_ref()));

        let mut next = HashMap::with_capacity(tree.len());
        let mut tree_ticks = 0u64;
        for &i in tree {
            let p = &procs[i];
            let base = match self.tree_prev.get(&p.pid) {
                Some(&(start, ticks)) if start == p.start_time => ticks,
                _ => 0,
            };
            tree_ticks = tree_ticks.saturating_add(p.cpu_ticks.saturating_sub(base));
            next.insert(p.pid, (p.start_time, p.cpu_ticks));
        }
        self.tree_prev = next;

        let me = procs.iter().find(|p| p.pid == self.self_pid).map(|p| (p.start_time, p.cpu_ticks));
        let self_ticks = match (me, self.self_prev) {
            (Some((start, ticks)), Some((prev_start, prev_ticks))) if start == prev_start => ticks.saturating_sub(prev_ticks),
            _ => 0,
        };
        self.self_prev = me;

        if secs > 0.0 {
            let per_tick = 100.0 / procfs::clock_ticks_per_sec() as f64 / secs;
            self.last_tree_cpu = tree_ticks as f64 * per_tick;
            self.last_self_cpu = self_ticks as f64 * per_tick;
        }
    }

    /// Closes the host run-queue wait window (`secs` long): the wait of every thread of every process
    /// outside the campaign (the root's tree, the members of its `cgroup` and the daemon) and outside
    /// the kernel's own threads. Only while confined (it costs one `schedstat` read per host thread);
    /// the first window after that only records the baselines. Threads new in the window count from 0.
    fn update_host_wait(&mut self, procs: &[ProcStat], tree: &[usize], secs: f64, cgroup: Option<&RunCgroup>) {
        let Some(cgroup) = cgroup else {
            self.host_wait_prev.clear();
            self.last_host_wait = 0.0;
            return;
        };
        let campaign: std::collections::HashSet<u32> =
            tree.iter().map(|&i| procs[i].pid).chain(cgroup.pids()).chain(std::iter::once(self.self_pid)).collect();
        let mut next = HashMap::with_capacity(self.host_wait_prev.len().max(256));
        let mut waited_ns = 0u64;
        for p in procs {
            if p.is_zombie() || campaign.contains(&p.pid) || p.pid == 2 || p.ppid == 2 {
                continue;
            }
            for (tid, ns) in procfs::thread_run_delays(p.pid) {
                let key = (p.pid, p.start_time, tid);
                let base = self.host_wait_prev.get(&key).copied().unwrap_or(0);
                waited_ns = waited_ns.saturating_add(ns.saturating_sub(base));
                next.insert(key, ns);
            }
        }
        let first = self.host_wait_prev.is_empty();
        self.host_wait_prev = next;
        let cores = self.sys.cpus().len().max(1) as f64;
        if secs > 0.0 && !first {
            self.last_host_wait = waited_ns as f64 / 1e9 / secs / cores * 100.0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::{Child, Command, Stdio};

    /// Spawns `cmd args` and waits until the child has exec'd (its comm is `comm`) and, if `state` is
    /// given, reached that state (a `sleep` in `S` has finished loading, so its RSS is stable).
    fn spawn_exec(cmd: &str, args: &[&str], comm: &str, state: Option<char>) -> Child {
        let child = Command::new(cmd).args(args).stdin(Stdio::null()).spawn().expect("spawn");
        let deadline = Instant::now() + Duration::from_secs(3);
        while Instant::now() < deadline {
            if procfs::read_stat(child.id()).is_some_and(|s| s.comm == comm && (state.is_none() || state == Some(s.state))) {
                break;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        child
    }

    fn stop(mut child: Child) {
        let _ = child.kill();
        let _ = child.wait();
    }

    fn assert_percent(name: &str, v: f64) {
        assert!((0.0..=100.0).contains(&v), "{name} = {v} out of 0..=100");
    }

    #[test]
    fn sample_sanity() {
        let child = spawn_exec("sleep", &["5"], "sleep", Some('S'));
        let child_rss = procfs::read_stat(child.id()).map_or(0, |s| s.rss_bytes());
        let mut s = Sampler::new(std::env::temp_dir());
        let a = s.sample();
        let b = s.sample();
        stop(child);
        for x in [&a, &b] {
            assert_percent("cpu", x.cpu_percent);
            assert_percent("memory", x.memory_percent);
            assert_percent("disk", x.disk_percent);
            assert!(x.memory_percent > 0.0);
            assert!(x.memory_available_bytes > 0);
            assert!(x.disk_available_bytes > 0);
            assert!(x.self_rss_bytes > 0);
            assert!(x.tree_cpu_percent >= 0.0 && x.tree_cpu_percent.is_finite());
            assert!(x.self_cpu_percent >= 0.0 && x.self_cpu_percent.is_finite());
            assert!(x.tree_processes >= 1);
            assert!(child_rss > 0);
            assert!(x.tree_rss_bytes >= child_rss, "tree {} < child {child_rss}", x.tree_rss_bytes);
        }
        let json = serde_json::to_string(&a).expect("serialize");
        assert!(json.contains("\"tree_rss_bytes\""));
    }

    #[test]
    fn tree_cpu_sees_busy_child_and_map_stays_bounded() {
        let t0 = Instant::now();
        let mut s = Sampler::new(std::env::temp_dir());
        let busy = spawn_exec("sh", &["-c", "while :; do :; done"], "sh", None);
        let pid = busy.id();
        // Let it burn some CPU (however loaded the machine is).
        let deadline = Instant::now() + Duration::from_secs(5);
        let mut ticks = 0;
        while ticks < 5 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
            ticks = procfs::read_stat(pid).map_or(0, |st| st.cpu_ticks);
        }
        let a = s.sample();
        let window_upper = t0.elapsed().as_secs_f64();
        let in_map = s.tree_prev.contains_key(&pid);
        stop(busy);
        std::thread::sleep(MINIMUM_CPU_UPDATE_INTERVAL + Duration::from_millis(20));
        let _ = s.sample();
        assert!(in_map, "live descendant must be in the map");
        assert!(!s.tree_prev.contains_key(&pid), "exited process must leave the map");
        assert!(ticks > 0, "busy child never ran");
        // The child is new since `new`, so all its ticks count; the window is at most `window_upper`.
        let floor = ticks as f64 / procfs::clock_ticks_per_sec() as f64 / window_upper * 100.0;
        assert!(a.tree_cpu_percent >= floor * 0.999, "tree cpu {} below the busy child's own {floor}", a.tree_cpu_percent);
    }

    #[test]
    fn tree_rss_includes_root() {
        let child = spawn_exec("sleep", &["5"], "sleep", Some('S'));
        let pid = child.id();
        let own = procfs::read_stat(pid).map_or(0, |s| s.rss_bytes());
        let total = tree_rss(pid);
        stop(child);
        assert!(own > 0);
        assert_eq!(total, own, "a lone sleep's tree is just itself");
        assert!(tree_rss(std::process::id()) >= procfs::read_stat(std::process::id()).map_or(0, |s| s.rss_bytes()));
        assert_eq!(tree_rss(u32::MAX), 0);
    }

    #[test]
    fn disk_usage_of_missing_path_uses_ancestor() {
        let tmp = std::env::temp_dir();
        let base = disk_usage(&tmp).expect("statvfs tmp");
        assert!(base.total_bytes > 0);
        assert!(base.used_bytes <= base.total_bytes);
        assert_percent("disk", base.used_percent);
        let missing = disk_usage(&tmp.join("no-such-dir-h-guardian/a/b")).expect("ancestor");
        assert_eq!(missing.total_bytes, base.total_bytes);
        assert!(disk_usage(Path::new("relative/not/here")).is_some());
    }

    /// Busy loops (at most `secs` seconds each, however the test ends), each in its own process group,
    /// killed with it on drop.
    struct Busy(Vec<Child>);

    impl Busy {
        /// `n` loops; born inside `cgroup` (joined before exec) when given.
        fn start(n: u32, secs: u32, cgroup: Option<&RunCgroup>) -> Busy {
            use std::os::unix::process::CommandExt;
            let files: Vec<std::ffi::CString> = cgroup
                .map(|c| c.procs_files().iter().map(|f| std::ffi::CString::new(f.as_os_str().as_encoded_bytes()).expect("path")).collect())
                .unwrap_or_default();
            Busy(
                (0..n)
                    .map(|_| {
                        let mut cmd = Command::new("timeout");
                        cmd.args([&secs.to_string(), "sh", "-c", "while :; do :; done"])
                            .stdin(Stdio::null())
                            .stdout(Stdio::null())
                            .stderr(Stdio::null())
                            .process_group(0);
                        let files = files.clone();
                        // SAFETY: only open/write/close (async-signal-safe) on strings built before the fork.
                        unsafe {
                            cmd.pre_exec(move || {
                                for f in &files {
                                    let fd = libc::open(f.as_ptr(), libc::O_WRONLY);
                                    if fd < 0 || libc::write(fd, b"0\n".as_ptr().cast(), 2) < 0 {
                                        return Err(std::io::Error::last_os_error());
                                    }
                                    libc::close(fd);
                                }
                                Ok(())
                            });
                        }
                        cmd.spawn().expect("spawn a busy loop")
                    })
                    .collect(),
            )
        }
    }

    impl Drop for Busy {
        fn drop(&mut self) {
            for mut c in self.0.drain(..) {
                // SAFETY: killpg on the group led by our own child, which is not reaped yet.
                unsafe { libc::killpg(c.id() as i32, libc::SIGKILL) };
                let _ = c.wait();
            }
        }
    }

    /// Samples every 500 ms for `secs` seconds.
    fn samples(s: &mut Sampler, secs: u64) -> Vec<ResourceSample> {
        let deadline = Instant::now() + Duration::from_secs(secs);
        let mut out = Vec::new();
        while Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(500));
            out.push(s.sample());
        }
        out
    }

    /// The reservation for real: busy loops on every core inside the run's cgroup are held to its cap
    /// and are not judged as the host's load; the same loops outside it (a host hog) trip the guardian.
    ///
    /// The daemon (here: this test process, which also runs the other unit tests in parallel) is
    /// the campaign's but outside its cgroup, so it is not held to the cap: a thread of ours burns
    /// about half a core meanwhile, and the cap is judged on the cgroup's own CPU. Before, the cap was
    /// judged on the campaign's CPU including the daemon's, and the cgroup's usage was divided by the
    /// sampler's window rather than the time between its two reads, so a read delayed by a slow scan
    /// counted up to one more CFS period's quota: 96-99 % against an 80 % cap on a quiet host.
    #[test]
    fn confined_load_is_not_the_hosts_but_a_host_hog_trips() {
        use crate::confine::cgroup::Plan;
        use crate::guardian::{Metric, Thresholds, ViolationTracker};
        let cg = match RunCgroup::create(&Plan::detect(), &format!("sampler-test-{}", std::process::id()), 20) {
            Ok(cg) => Arc::new(cg),
            Err(e) => {
                eprintln!("skipped: no cgroup here ({e})");
                return;
            }
        };
        let cores = crate::confine::cgroup::online_cpus();
        let cap = cg.reservation().cpu_cap_percent;
        // no process tree: the campaign is exactly what is in the cgroup (and this test process)
        let mut s = Sampler::with_root(std::env::temp_dir(), u32::MAX).with_confinement(cg.clone());
        let th = Thresholds {
            memory_percent: 100.0,
            cpu_percent: 85.0,
            disk_percent: 100.0,
            min_free_memory_mb: 0.0,
            min_free_disk_mb: 0.0,
            consecutive_violations: 3,
        };

        // the host's own load before we add any (this machine may be shared)
        let base = samples(&mut s, 2);
        let host_base = base.iter().map(|x| x.host_cpu_percent).sum::<f64>() / base.len().max(1) as f64;
        let campaign = Busy::start(cores * 2, 30, Some(&cg));
        let burning = Arc::new(std::sync::atomic::AtomicBool::new(true));
        let burner = {
            let burning = burning.clone();
            std::thread::spawn(move || {
                while burning.load(std::sync::atomic::Ordering::Relaxed) {
                    let t = Instant::now();
                    while t.elapsed() < Duration::from_millis(50) {
                        std::hint::black_box(0u64);
                    }
                    std::thread::sleep(Duration::from_millis(50));
                }
            })
        };
        let own = samples(&mut s, 4);
        burning.store(false, std::sync::atomic::Ordering::Relaxed);
        let _ = burner.join();
        // the hog starts while the campaign keeps running
        let hog = Busy::start(cores, 30, None);
        let _ = samples(&mut s, 1);
        let hogged = samples(&mut s, 4);
        drop(hog);
        drop(campaign);
        let left = Arc::try_unwrap(cg).map(RunCgroup::remove).unwrap_or_default();
        assert!(left.is_empty(), "{left:?}");

        let show = |v: &[ResourceSample]| {
            v.iter()
                .map(|x| {
                    format!(
                        "total {:.0} campaign {:.0} (cgroup {:.1}) host {:.0} + waited {:.0}",
                        x.cpu_percent,
                        x.campaign_cpu_percent,
                        x.cgroup_cpu_percent.unwrap_or(f64::NAN),
                        x.host_cpu_percent,
                        x.host_wait_percent
                    )
                })
                .collect::<Vec<_>>()
        };
        eprintln!("campaign only: {:?}\nwith a host hog: {:?}", show(&own), show(&hogged));
        let own_tail = &own[1..];
        for x in own_tail {
            assert!(x.confined());
            assert!(Metric::Cpu.value(x).is_nan(), "total CPU is not judged while confined");
            assert!((x.host_cpu_percent - (x.cpu_percent - x.campaign_cpu_percent).max(0.0)).abs() < 0.01);
            let cgroup = x.cgroup_cpu_percent.expect("a confined sample reads its cgroup's CPU");
            assert!(x.campaign_cpu_percent + 0.01 >= cgroup, "the campaign is at least its cgroup: {:?}", show(own_tail));
            if let Some(cap) = cap {
                // a window of n CFS periods plus a part of one sees at most one extra period's quota in
                // that part: for 500 ms windows of 100 ms periods, under 3 points over an 80 % cap
                assert!(cgroup <= cap + 4.0, "the cgroup over its {cap}% cap: {:?}", show(own_tail));
            }
        }
        // the no-trip half means something only if the campaign's loops got their CPU: the host
        // was quiet before the test and stayed so (other tests of this binary run beside it)
        let loops_ran = own_tail.iter().all(|x| x.cgroup_cpu_percent.unwrap_or(0.0) >= 25.0);
        if host_base < 40.0 && loops_ran {
            let mut tr = ViolationTracker::new();
            let trip = own_tail.iter().find_map(|x| tr.observe(x, &th).1);
            assert_eq!(trip, None, "the campaign's own load tripped the guardian: {:?}", show(own_tail));
        } else {
            eprintln!(
                "note: the host was busy ({host_base:.0}% CPU before the test, loops ran: {loops_ran}): only the cap and the hog half are judged"
            );
        }
        let mut tr = ViolationTracker::new();
        let trip = hogged.iter().find_map(|x| tr.observe(x, &th).1);
        let trip = trip.unwrap_or_else(|| panic!("a host hog on every core did not trip the guardian: {:?}", show(&hogged)));
        assert_eq!(trip.metric, Metric::HostCpu, "{:?}", show(&hogged));
    }

    /// Cost of `sample()`; run with `cargo test --release -- --ignored --nocapture bench_sample_cost`.
    /// CPU time of the calling thread.
    fn thread_cpu() -> Duration {
        let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
        // SAFETY: valid clock id and out-pointer.
        unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
        Duration::new(u64::try_from(ts.tv_sec).unwrap_or(0), u32::try_from(ts.tv_nsec).unwrap_or(0))
    }

    /// Mean wall and CPU time of `m` samples spaced past [`MINIMUM_CPU_UPDATE_INTERVAL`], so every
    /// sample also refreshes its CPU windows (the cost at a 1 s interval).
    fn spaced_cost(s: &mut Sampler, m: u32) -> (Duration, Duration) {
        let (mut wall, mut cpu) = (Duration::ZERO, Duration::ZERO);
        for _ in 0..m {
            std::thread::sleep(MINIMUM_CPU_UPDATE_INTERVAL + Duration::from_millis(5));
            let (w0, c0) = (Instant::now(), thread_cpu());
            std::hint::black_box(s.sample());
            wall += w0.elapsed();
            cpu += thread_cpu() - c0;
        }
        (wall / m, cpu / m)
    }

    #[test]
    #[ignore]
    fn bench_sample_cost() {
        let mut s = Sampler::new(std::env::temp_dir());
        let _ = s.sample(); // includes the one-time wait for the first CPU window
        let procs = procfs::all_processes().len();

        let n = 200u32;
        let (w0, c0) = (Instant::now(), thread_cpu());
        for _ in 0..n {
            std::hint::black_box(s.sample());
        }
        let (wall, cpu) = (w0.elapsed() / n, (thread_cpu() - c0) / n);
        println!(
            "back-to-back: {n} samples, mean {:.1} µs wall, {:.1} µs cpu per sample ({procs} processes)",
            wall.as_secs_f64() * 1e6,
            cpu.as_secs_f64() * 1e6
        );

        // Spaced past MINIMUM_CPU_UPDATE_INTERVAL so every sample also refreshes CPU windows (the 1 s path).
        let m = 25u32;
        let (wall, cpu) = spaced_cost(&mut s, m);
        println!(
            "spaced (full CPU refresh): {m} samples, mean {:.1} µs wall, {:.1} µs cpu per sample => {:.3}% of one core at 1 s",
            wall.as_secs_f64() * 1e6,
            cpu.as_secs_f64() * 1e6,
            wall.as_secs_f64() * 100.0
        );
        assert!(wall < Duration::from_millis(10), "sample() must cost < 1% of a core at 1 s");

        // Confined (a run cgroup in force): also the cgroup files and every host thread's schedstat.
        let Ok(cg) = RunCgroup::create(&crate::confine::cgroup::Plan::detect(), &format!("bench-{}", std::process::id()), 20) else {
            println!("confined: no cgroup here, not measured");
            return;
        };
        let mut s = Sampler::new(std::env::temp_dir()).with_confinement(Arc::new(cg));
        let _ = s.sample();
        let threads: usize = procfs::all_processes().iter().map(|p| procfs::thread_run_delays(p.pid).len()).sum();
        let (wall, cpu) = spaced_cost(&mut s, m);
        println!(
            "confined (+ host run-queue wait): {m} samples, mean {:.1} µs wall, {:.1} µs cpu per sample ({threads} threads) => {:.3}% of one core at 1 s",
            wall.as_secs_f64() * 1e6,
            cpu.as_secs_f64() * 1e6,
            wall.as_secs_f64() * 100.0
        );
        assert!(wall < Duration::from_millis(10), "a confined sample() must cost < 1% of a core at 1 s");
    }
}
