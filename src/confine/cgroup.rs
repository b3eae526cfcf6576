//! The per-run cgroup: where the campaign's browsers and drivers live, capped so that the host
//! keeps its reservation of CPU and memory.
//!
//! Both cgroup versions are handled, and detected at run time from `/proc/self/mountinfo` and
//! `/proc/self/cgroup`, per controller:
//!
//! * **cgroup v2** (current distributions): one directory. `cpu.max` caps the CPU, `memory.high` /
//!   `memory.max` cap memory,
//!   and `cgroup.kill` ends everything in it. Controllers can only be enabled for a cgroup whose
//!   parent has no processes of its own, so the run's cgroup is made a *sibling* of stressctl's
//!   own cgroup (inside the same parent, so any limit set on that parent still applies), or a
//!   child of the root when stressctl sits in the root.
//! * **cgroup v1** (older systems, and hybrid ones such as this project's machine, where `cpu` and
//!   `memory` are v1 hierarchies and the v2 mount has no controllers): a directory per hierarchy,
//!   nested under stressctl's own cgroup there. `cpu.cfs_quota_us` / `cpu.cfs_period_us` cap the
//!   CPU, `memory.limit_in_bytes` caps memory.
//!
//! CPU weight: in v2 the run's cgroup gets [`BROWSER_CPU_WEIGHT`] (a tenth of its sibling's, stressctl's
//! own), so stressctl's own threads (the dashboard's) run ahead of the browsers at wake-up. In v1 the run's
//! directory keeps the default `cpu.shares`: nested under stressctl's own cgroup — often the root —
//! a lower value would also yield to every other process of the host. There the latency-sensitive
//! threads move instead into a sibling *orchestrator* directory with [`ORCHESTRATOR_CPU_SHARES`]
//! (ten times the browsers'; see [`RunCgroup::join_orchestrator`]): a nice value alone does not
//! reach the browsers when stressctl sits in the root cgroup with the kernel's autogroup on (the
//! default of Debian's kernels), because a nice value only orders threads inside their session's
//! autogroup, and that whole group weighs the same as the browsers' cgroup.
//! Weights only divide contended CPU: the browsers still get all the CPU nobody else wants, and a
//! host short of CPU shows up as host run-queue wait (see the guardian).
//!
//! On a hybrid system the empty v2 hierarchy is still used for `cgroup.kill`.
//!
//! Directories are named `stressctl-<run>`; empty ones left by runs that died are removed when the
//! next run creates its own.

use serde::Serialize;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// CFS period used for the CPU cap, µs (the kernel's default).
pub const CPU_PERIOD_US: u64 = 100_000;

/// `cpu.weight` of the run's cgroup v2 (the default is 100, stressctl's own cgroup keeps it): under
/// contention between the two siblings stressctl's threads get 10× the browsers' share, which
/// they barely use — what it buys is wake-up latency, not CPU.
pub const BROWSER_CPU_WEIGHT: u32 = 10;

/// `cpu.shares` of the run's v1 orchestrator directory, where stressctl's latency-sensitive threads
/// (the dashboard's) run: ten times the default 1024 of the browsers' directory, the v1 counterpart
/// of [`BROWSER_CPU_WEIGHT`]. Those threads use a few ms of CPU a second; the weight buys them the
/// CPU at once when they wake, not a larger share of it.
pub const ORCHESTRATOR_CPU_SHARES: u64 = 10 * 1024;

/// Prefix of every cgroup directory stressctl creates.
pub const DIR_PREFIX: &str = "stressctl-";

/// How long [`RunCgroup::remove`] waits for killed processes to leave before giving up on rmdir.
const REMOVE_WAIT: Duration = Duration::from_secs(3);

/// One mounted cgroup hierarchy and where this process sits in it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Hierarchy {
    /// Mount point, e.g. `/sys/fs/cgroup/memory`.
    pub mount: PathBuf,
    /// The cgroup path the mount shows at its mount point (`/` unless a container mounted a subtree).
    pub root: String,
    /// Controllers bound to it (v1: from the mount options; v2: empty, see `cgroup.controllers`).
    pub controllers: Vec<String>,
    /// This process's cgroup path in the hierarchy, from `/proc/self/cgroup`.
    pub own: String,
}

impl Hierarchy {
    /// The directory of this process's own cgroup, if it is visible under the mount point.
    pub fn own_dir(&self) -> Option<PathBuf> {
        let root = self.root.trim_end_matches('/');
        let rel = self.own.strip_prefix(root)?;
        if !(rel.is_empty() || rel.starts_with('/')) {
            return None;
        }
        Some(self.mount.join(rel.trim_start_matches('/')))
    }

    /// Whether stressctl sits at the top of the hierarchy (as far as the mount shows).
    pub fn own_is_root(&self) -> bool {
        self.own_dir().is_some_and(|d| d == self.mount)
    }
}

/// The cgroup hierarchies of this process.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Mounts {
    /// The cgroup v2 (unified) hierarchy, if mounted and this process has a path in it.
    pub v2: Option<Hierarchy>,
    /// The cgroup v1 hierarchies this process is in.
    pub v1: Vec<Hierarchy>,
}

/// Undoes the octal escapes (`\040` for a space) of `/proc/self/mountinfo` fields.
fn unescape(field: &str) -> String {
    let b = field.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let octal = (b[i] == b'\\' && i + 3 < b.len() && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c)))
            .then(|| u8::try_from(u32::from(b[i + 1] - b'0') * 64 + u32::from(b[i + 2] - b'0') * 8 + u32::from(b[i + 3] - b'0')).ok())
            .flatten();
        if let Some(c) = octal {
            out.push(c);
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Parses `/proc/self/mountinfo` and `/proc/self/cgroup` into the hierarchies this process is in.
///
/// Pure (the texts are arguments) so that layouts of other machines can be tested. A v1 mount is
/// matched to its `/proc/self/cgroup` line by its controller set (`name=systemd` included); the v2
/// mount by the `0::` line.
pub fn parse(mountinfo: &str, proc_cgroup: &str) -> Mounts {
    // /proc/self/cgroup: "hierarchy-id:controllers:path"
    let mut v2_own = None;
    let mut v1_own: Vec<(Vec<String>, String)> = Vec::new();
    for line in proc_cgroup.lines() {
        let mut it = line.splitn(3, ':');
        let (Some(id), Some(ctrls), Some(path)) = (it.next(), it.next(), it.next()) else { continue };
        if id == "0" && ctrls.is_empty() {
            v2_own = Some(path.to_string());
        } else {
            let mut c: Vec<String> = ctrls.split(',').filter(|s| !s.is_empty()).map(str::to_string).collect();
            c.sort();
            v1_own.push((c, path.to_string()));
        }
    }
    let mut m = Mounts::default();
    for line in mountinfo.lines() {
        let Some((pre, post)) = line.split_once(" - ") else { continue };
        let pre: Vec<&str> = pre.split(' ').collect();
        let post: Vec<&str> = post.split(' ').collect();
        let (Some(root), Some(mount), Some(fstype)) = (pre.get(3), pre.get(4), post.first()) else { continue };
        let superopts = post.get(2).copied().unwrap_or("");
        match *fstype {
            "cgroup2" if m.v2.is_none() => {
                if let Some(own) = &v2_own {
                    m.v2 = Some(Hierarchy {
                        mount: PathBuf::from(unescape(mount)),
                        root: unescape(root),
                        controllers: Vec::new(),
                        own: own.clone(),
                    });
                }
            }
            "cgroup" => {
                let known = ["ro", "rw", "noprefix", "clone_children", "xattr", "nosuid", "nodev", "noexec", "relatime"];
                let mut ctrls: Vec<String> = superopts
                    .split(',')
                    .filter(|o| !o.is_empty() && !known.contains(o) && !o.starts_with("release_agent="))
                    .map(str::to_string)
                    .collect();
                ctrls.sort();
                if let Some((_, own)) = v1_own.iter().find(|(c, _)| *c == ctrls) {
                    if !m.v1.iter().any(|h| h.controllers == ctrls) {
                        m.v1.push(Hierarchy {
                            mount: PathBuf::from(unescape(mount)),
                            root: unescape(root),
                            controllers: ctrls,
                            own: own.clone(),
                        });
                    }
                }
            }
            _ => {}
        }
    }
    m
}

/// This process's cgroup hierarchies, read from `/proc/self`.
pub fn mounts() -> Mounts {
    let mi = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let pc = std::fs::read_to_string("/proc/self/cgroup").unwrap_or_default();
    parse(&mi, &pc)
}

/// Where a run's cgroup goes and which limits it can carry on this machine.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Plan {
    /// Parent directory of the run's v2 cgroup (used for `cgroup.kill`, and limits below).
    pub v2_parent: Option<PathBuf>,
    /// Whether `cpu` is available to a v2 cgroup there.
    pub v2_cpu: bool,
    /// Whether `memory` is available to a v2 cgroup there.
    pub v2_memory: bool,
    /// Whether the v2 parent is the root, whose `cgroup.subtree_control` may need `+cpu +memory`.
    pub v2_parent_is_root: bool,
    /// Parent directory in the v1 `cpu` hierarchy (when v2 does not serve `cpu`).
    pub v1_cpu_parent: Option<PathBuf>,
    /// Parent directory in the v1 `memory` hierarchy (when v2 does not serve `memory`).
    pub v1_memory_parent: Option<PathBuf>,
}

impl Plan {
    /// Which cgroups a run gets here; `read` reads a cgroup file (injected for tests).
    pub fn of(m: &Mounts, read: impl Fn(&Path) -> Option<String>) -> Plan {
        let mut p = Plan::default();
        if let Some(v2) = &m.v2 {
            if let Some(own) = v2.own_dir() {
                let is_root = v2.own_is_root();
                // Controllers a new cgroup next to ours can have: ours (enabled by our parent), or
                // the root's own list when we are the root.
                let avail = read(&own.join("cgroup.controllers")).unwrap_or_default();
                let has = |c: &str| avail.split_whitespace().any(|x| x == c);
                p.v2_cpu = has("cpu");
                p.v2_memory = has("memory");
                p.v2_parent_is_root = is_root;
                p.v2_parent = if is_root { Some(own) } else { own.parent().map(Path::to_path_buf) };
            }
        }
        let v1_for = |c: &str| m.v1.iter().find(|h| h.controllers.iter().any(|x| x == c)).and_then(Hierarchy::own_dir);
        if !p.v2_cpu {
            p.v1_cpu_parent = v1_for("cpu");
        }
        if !p.v2_memory {
            p.v1_memory_parent = v1_for("memory");
        }
        p
    }

    /// This machine's plan.
    pub fn detect() -> Plan {
        Plan::of(&mounts(), |p| std::fs::read_to_string(p).ok())
    }

    /// Removes the cgroups that runs which died (a SIGKILLed stressctl cannot remove its own) left
    /// where this plan would put a run's cgroup; a new run does this itself. Returns how many are
    /// left (still holding processes, e.g. exiting ones).
    pub fn remove_stale(&self) -> usize {
        [&self.v2_parent, &self.v1_cpu_parent, &self.v1_memory_parent].into_iter().flatten().map(|p| remove_stale(p)).sum()
    }

    /// Whether any CPU or memory limit could be placed.
    pub fn can_limit(&self) -> bool {
        self.v2_cpu || self.v2_memory || self.v1_cpu_parent.is_some() || self.v1_memory_parent.is_some()
    }
}

/// The reservation a run's cgroup enforces.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Reservation {
    /// Percent of CPU and memory kept for the host (`safety.reserve_percent`).
    pub reserve_percent: u32,
    /// Online CPUs the caps are computed from.
    pub cpus: u32,
    /// The campaign's CPU cap, percent of all cores (None: no CPU controller; 100 when the reserve is 0).
    pub cpu_cap_percent: Option<f64>,
    /// The campaign's memory cap, bytes (None: no memory controller; all of memory when the reserve is 0).
    pub memory_cap_bytes: Option<u64>,
    /// How it is enforced, e.g. `cgroup v1 cpu.cfs_quota_us=160000/100000, cgroup v1
    /// memory.limit_in_bytes=…, cgroup v2 cgroup.kill`.
    pub mechanism: String,
}

/// One directory of the run's cgroup (one per hierarchy used).
#[derive(Clone, Debug)]
struct Dir {
    path: PathBuf,
    v2: bool,
}

/// A run's cgroup, created with its limits. Removed (after killing anything still in it) by
/// [`RunCgroup::remove`] or on drop.
#[derive(Debug)]
pub struct RunCgroup {
    dirs: Vec<Dir>,
    memory_dir: Option<Dir>,
    /// v1 `cpu` directory for stressctl's own latency-sensitive threads. Never in `dirs`: what is
    /// in it is stressctl itself, which [`RunCgroup::kill_all`] must not touch.
    orchestrator: Option<PathBuf>,
    reservation: Reservation,
}

/// Online CPUs (at least 1).
pub fn online_cpus() -> u32 {
    // SAFETY: sysconf has no preconditions.
    let n = unsafe { libc::sysconf(libc::_SC_NPROCESSORS_ONLN) };
    u32::try_from(n).ok().filter(|&n| n > 0).unwrap_or(1)
}

/// `MemTotal` in bytes (0 if unreadable).
pub fn mem_total_bytes() -> u64 {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|t| t.lines().find_map(|l| l.strip_prefix("MemTotal:").and_then(|r| r.split_whitespace().next()?.parse::<u64>().ok())))
        .map_or(0, |kb| kb.saturating_mul(1024))
}

/// `(100 − reserve)` % of `cpus` cores as a CFS quota per [`CPU_PERIOD_US`]; None = no cap.
pub fn cpu_quota_us(cpus: u32, reserve_percent: u32) -> Option<u64> {
    if reserve_percent == 0 {
        return None;
    }
    let share = 100u64.saturating_sub(u64::from(reserve_percent.min(99)));
    Some((CPU_PERIOD_US * u64::from(cpus) * share / 100).max(1000))
}

/// `(100 − reserve)` % of `total` bytes; None = no cap.
pub fn memory_cap(total: u64, reserve_percent: u32) -> Option<u64> {
    if reserve_percent == 0 || total == 0 {
        return None;
    }
    let share = 100u64.saturating_sub(u64::from(reserve_percent.min(99)));
    Some(total / 100 * share)
}

/// Creates run `run`'s v1 orchestrator directory in `parent` (the `cpu` hierarchy) with
/// [`ORCHESTRATOR_CPU_SHARES`]; removed again if the weight cannot be set.
fn orchestrator_dir(parent: &Path, run: &str) -> Result<PathBuf, String> {
    // `stressctl-orchestrator-<run>-<pid>`: ends with the owner's pid, like the run's directory, so
    // the stale-directory sweep knows a dead run's
    let dir = parent.join(dir_name(&format!("orchestrator-{run}")));
    std::fs::create_dir(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    if let Err(e) = write(&dir.join("cpu.shares"), &ORCHESTRATOR_CPU_SHARES.to_string()) {
        let _ = std::fs::remove_dir(&dir);
        return Err(e);
    }
    Ok(dir)
}

/// Keeps `[A-Za-z0-9_.-]` of a run id for a directory name.
fn dir_name(run: &str) -> String {
    let clean: String = run.chars().filter(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')).take(100).collect();
    format!("{DIR_PREFIX}{}", clean.trim_start_matches('.'))
}

fn write(path: &Path, value: &str) -> Result<(), String> {
    std::fs::write(path, value).map_err(|e| format!("{}: {e}", path.display()))
}

/// Whether the stressctl that created cgroup `name` (`stressctl-<run>-<pid>`) may still run: its
/// pid is alive, or the name carries no pid. Only a dead owner's cgroup is stale.
fn owner_may_run(name: &str) -> bool {
    match name.rsplit('-').next().and_then(|p| p.parse::<u32>().ok()) {
        Some(pid) => Path::new(&format!("/proc/{pid}")).exists(),
        None => true,
    }
}

/// Removes the `stressctl-*` cgroups in `parent` left by runs that died (their owner's pid is
/// gone). One with processes cannot be removed (EBUSY) and is left alone; a live run's — which may
/// be empty, e.g. before its first driver — is never touched. Returns how many stale ones are left.
fn remove_stale(parent: &Path) -> usize {
    let Ok(rd) = std::fs::read_dir(parent) else { return 0 };
    let mut left = 0;
    for e in rd.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if name.starts_with(DIR_PREFIX) && !owner_may_run(&name) && e.path().is_dir() && std::fs::remove_dir(e.path()).is_err() {
            left += 1;
        }
    }
    left
}

impl RunCgroup {
    /// Creates the cgroup of run `run` per `plan` and sets the caps for `reserve_percent`.
    ///
    /// Errors (one line) when neither a CPU nor a memory cap could be put in force: then nothing
    /// is left behind and the caller runs unconfined.
    pub fn create(plan: &Plan, run: &str, reserve_percent: u32) -> Result<RunCgroup, String> {
        if !plan.can_limit() {
            return Err("no cpu or memory cgroup controller is available to this process".into());
        }
        let name = dir_name(run);
        let cpus = online_cpus();
        let quota = cpu_quota_us(cpus, reserve_percent);
        let total = mem_total_bytes();
        let mem = memory_cap(total, reserve_percent);
        let mut cg = RunCgroup {
            dirs: Vec::new(),
            memory_dir: None,
            orchestrator: None,
            reservation: Reservation { reserve_percent, cpus, cpu_cap_percent: None, memory_cap_bytes: None, mechanism: String::new() },
        };
        let mut notes: Vec<String> = Vec::new();
        let mut errors: Vec<String> = Vec::new();
        let cap_text = |q: Option<u64>| q.map_or("max".to_string(), |q| q.to_string());

        if let Some(parent) = &plan.v2_parent {
            remove_stale(parent);
            if plan.v2_parent_is_root && (plan.v2_cpu || plan.v2_memory) {
                let want: Vec<&str> =
                    [(plan.v2_cpu, "+cpu"), (plan.v2_memory, "+memory")].iter().filter(|(w, _)| *w).map(|(_, c)| *c).collect();
                let _ = write(&parent.join("cgroup.subtree_control"), &want.join(" "));
            }
            let dir = parent.join(&name);
            match std::fs::create_dir(&dir) {
                Ok(()) => {
                    let avail = std::fs::read_to_string(dir.join("cgroup.controllers")).unwrap_or_default();
                    let has = |c: &str| avail.split_whitespace().any(|x| x == c);
                    let mut v2_notes = Vec::new();
                    if plan.v2_cpu && has("cpu") {
                        let r = write(&dir.join("cpu.max"), &format!("{} {CPU_PERIOD_US}", cap_text(quota)));
                        match r {
                            Ok(()) => {
                                cg.reservation.cpu_cap_percent =
                                    Some(quota.map_or(100.0, |q| q as f64 / (CPU_PERIOD_US as f64 * f64::from(cpus)) * 100.0));
                                v2_notes.push(format!("cpu.max={} {CPU_PERIOD_US}", cap_text(quota)));
                            }
                            Err(e) => errors.push(e),
                        }
                    }
                    if plan.v2_cpu && has("cpu") {
                        // a sibling of stressctl's own cgroup: a lower weight lets stressctl's
                        // threads (the dashboard's) win the CPU at wake-up on a host the
                        // browsers saturate; idle CPU still goes to the browsers (weights only
                        // divide contended CPU). Thread nice values (confine::priority) cannot
                        // reach across cgroups, so this is their v2 counterpart.
                        match write(&dir.join("cpu.weight"), &BROWSER_CPU_WEIGHT.to_string()) {
                            Ok(()) => v2_notes.push(format!("cpu.weight={BROWSER_CPU_WEIGHT}")),
                            Err(e) => v2_notes.push(format!("cpu.weight left at its default ({e})")),
                        }
                    }
                    if plan.v2_memory && has("memory") {
                        let high = mem.map(|m| (m / 10 * 9).to_string()).unwrap_or_else(|| "max".into());
                        let max = mem.map(|m| m.to_string()).unwrap_or_else(|| "max".into());
                        match write(&dir.join("memory.high"), &high).and_then(|()| write(&dir.join("memory.max"), &max)) {
                            Ok(()) => {
                                cg.reservation.memory_cap_bytes = mem.or(Some(total));
                                cg.memory_dir = Some(Dir { path: dir.clone(), v2: true });
                                v2_notes.push(format!("memory.high={high} memory.max={max}"));
                            }
                            Err(e) => errors.push(e),
                        }
                    }
                    if dir.join("cgroup.kill").exists() {
                        v2_notes.push("cgroup.kill".into());
                    }
                    if !v2_notes.is_empty() {
                        notes.push(format!("cgroup v2 {}", v2_notes.join(" ")));
                    }
                    cg.dirs.push(Dir { path: dir, v2: true });
                }
                Err(e) => errors.push(format!("{}: {e}", dir.display())),
            }
        }
        if let Some(dir) = plan.v1_cpu_parent.as_deref().and_then(|p| cg.v1_dir(p, &name, &mut errors)) {
            let quota_text = quota.map_or("-1".to_string(), |q| q.to_string());
            let r = write(&dir.join("cpu.cfs_period_us"), &CPU_PERIOD_US.to_string())
                .and_then(|()| write(&dir.join("cpu.cfs_quota_us"), &quota_text));
            match r {
                Ok(()) => {
                    cg.reservation.cpu_cap_percent =
                        Some(quota.map_or(100.0, |q| q as f64 / (CPU_PERIOD_US as f64 * f64::from(cpus)) * 100.0));
                    notes.push(format!("cgroup v1 cpu.cfs_quota_us={quota_text}/{CPU_PERIOD_US}"));
                }
                Err(e) => errors.push(e),
            }
            if let Some(parent) = dir.parent() {
                match orchestrator_dir(parent, run) {
                    Ok(o) => {
                        notes.push(format!("cgroup v1 cpu.shares={ORCHESTRATOR_CPU_SHARES} for stressctl's dashboard threads"));
                        cg.orchestrator = Some(o);
                    }
                    // not a cap: the run goes on, its dashboard at the priority its nice value gives
                    Err(e) => notes.push(format!("no orchestrator cgroup ({e})")),
                }
            }
        }
        if let Some(dir) = plan.v1_memory_parent.as_deref().and_then(|p| cg.v1_dir(p, &name, &mut errors)) {
            let limit = mem.map_or("-1".to_string(), |m| m.to_string());
            match write(&dir.join("memory.limit_in_bytes"), &limit) {
                Ok(()) => {
                    cg.reservation.memory_cap_bytes = mem.or(Some(total));
                    cg.memory_dir = Some(Dir { path: dir.clone(), v2: false });
                    notes.push(format!("cgroup v1 memory.limit_in_bytes={limit}"));
                }
                Err(e) => errors.push(e),
            }
        }
        if cg.reservation.cpu_cap_percent.is_none() && cg.reservation.memory_cap_bytes.is_none() {
            let why = if errors.is_empty() { "no limit could be set".to_string() } else { errors.join("; ") };
            cg.remove();
            return Err(why);
        }
        if !errors.is_empty() {
            notes.push(format!("not in force: {}", errors.join("; ")));
        }
        cg.reservation.mechanism = notes.join(", ");
        Ok(cg)
    }

    /// The run's directory `name` in the v1 hierarchy under `parent`, created once (co-mounted
    /// controllers share it); None (and the reason in `errors`) if it cannot be created.
    fn v1_dir(&mut self, parent: &Path, name: &str, errors: &mut Vec<String>) -> Option<PathBuf> {
        let dir = parent.join(name);
        if self.dirs.iter().any(|d| d.path == dir) {
            return Some(dir);
        }
        remove_stale(parent);
        match std::fs::create_dir(&dir) {
            Ok(()) => {
                self.dirs.push(Dir { path: dir.clone(), v2: false });
                Some(dir)
            }
            Err(e) => {
                errors.push(format!("{}: {e}", dir.display()));
                None
            }
        }
    }

    /// Moves the calling thread (only it, not its process) into the run's v1 orchestrator
    /// directory, where it wins the CPU over the browsers at wake-up. `Ok(false)` where the run
    /// has none (v2, where stressctl's own cgroup already outweighs the browsers', or no v1 `cpu`
    /// hierarchy). A thread still there when the cgroup is removed is moved back first.
    pub fn join_orchestrator(&self) -> Result<bool, String> {
        let Some(dir) = &self.orchestrator else { return Ok(false) };
        // v1 `tasks` takes one thread id (`cgroup.procs` would move the whole process)
        write(&dir.join("tasks"), &super::priority::current_tid().to_string())?;
        Ok(true)
    }

    /// The v1 orchestrator directory, if the run has one.
    pub fn orchestrator_dir(&self) -> Option<&Path> {
        self.orchestrator.as_deref()
    }

    /// The reservation in force.
    pub fn reservation(&self) -> &Reservation {
        &self.reservation
    }

    /// The `cgroup.procs` files a process writes to join the run (one per hierarchy).
    pub fn procs_files(&self) -> Vec<PathBuf> {
        self.dirs.iter().map(|d| d.path.join("cgroup.procs")).collect()
    }

    /// The cgroup directories (one per hierarchy).
    pub fn dirs(&self) -> Vec<PathBuf> {
        self.dirs.iter().map(|d| d.path.clone()).collect()
    }

    /// Moves process `pid` (and so the children it starts afterwards) into the run's cgroups.
    pub fn join(&self, pid: u32) -> Result<(), String> {
        for f in self.procs_files() {
            write(&f, &pid.to_string())?;
        }
        Ok(())
    }

    /// Memory charged to the run's cgroup now, bytes (None without a memory cgroup).
    pub fn memory_usage(&self) -> Option<u64> {
        let d = self.memory_dir.as_ref()?;
        let file = if d.v2 { "memory.current" } else { "memory.usage_in_bytes" };
        std::fs::read_to_string(d.path.join(file)).ok()?.trim().parse().ok()
    }

    /// CPU time used by everything that ever ran in the run's cgroup, µs: v2 `cpu.stat`
    /// `usage_usec` (present with or without the cpu controller), else v1 `cpuacct.usage` where
    /// `cpuacct` shares a hierarchy with a directory of the run. None if neither is there.
    pub fn cpu_usage_usec(&self) -> Option<u64> {
        for d in &self.dirs {
            if d.v2 {
                let text = std::fs::read_to_string(d.path.join("cpu.stat")).ok()?;
                return text.lines().find_map(|l| l.strip_prefix("usage_usec ")?.trim().parse().ok());
            }
        }
        self.dirs
            .iter()
            .find_map(|d| std::fs::read_to_string(d.path.join("cpuacct.usage")).ok()?.trim().parse::<u64>().ok().map(|ns| ns / 1000))
    }

    /// Pids in the run's cgroups now (any hierarchy).
    pub fn pids(&self) -> Vec<u32> {
        let mut v: Vec<u32> = self
            .procs_files()
            .iter()
            .filter_map(|f| std::fs::read_to_string(f).ok())
            .flat_map(|t| t.lines().filter_map(|l| l.trim().parse().ok()).collect::<Vec<u32>>())
            .collect();
        v.sort_unstable();
        v.dedup();
        v
    }

    /// SIGKILLs everything in the run's cgroups: `cgroup.kill` where there is one (atomic, no
    /// fork race), else each member pid, a few rounds to catch what was forked meanwhile. Only
    /// processes that joined this run's cgroup — which only stressctl's own children do — are
    /// signalled.
    pub fn kill_all(&self) {
        for d in self.dirs.iter().filter(|d| d.v2) {
            let _ = write(&d.path.join("cgroup.kill"), "1");
        }
        for _ in 0..5 {
            let pids = self.pids();
            if pids.is_empty() {
                return;
            }
            for p in pids {
                // SAFETY: kill(2) on a member of the run's own cgroup.
                unsafe { libc::kill(p as libc::pid_t, libc::SIGKILL) };
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Kills whatever is still in the run's cgroups and removes them. Returns the directories
    /// that could not be removed (with why), for the log.
    pub fn remove(mut self) -> Vec<String> {
        self.remove_dirs()
    }

    fn remove_dirs(&mut self) -> Vec<String> {
        let mut left = Vec::new();
        if let Some(o) = self.orchestrator.take() {
            if let Err(e) = remove_orchestrator(&o) {
                left.push(e);
            }
        }
        if self.dirs.is_empty() {
            return left;
        }
        if !self.pids().is_empty() {
            self.kill_all();
        }
        let deadline = Instant::now() + REMOVE_WAIT;
        for d in std::mem::take(&mut self.dirs) {
            loop {
                match std::fs::remove_dir(&d.path) {
                    Ok(()) => break,
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => break,
                    Err(e) if Instant::now() < deadline => {
                        let _ = e;
                        std::thread::sleep(Duration::from_millis(20));
                    }
                    Err(e) => {
                        left.push(format!("{}: {e}", d.path.display()));
                        break;
                    }
                }
            }
        }
        left
    }
}

/// Moves the threads still in orchestrator directory `dir` (stressctl's own: the dashboard serves
/// on after its run) back to the parent directory, then removes `dir`.
fn remove_orchestrator(dir: &Path) -> Result<(), String> {
    let Some(parent) = dir.parent() else { return Err(format!("{}: no parent", dir.display())) };
    // a few rounds: a thread that joined while the list was read is moved by the next
    for _ in 0..5 {
        let tids = std::fs::read_to_string(dir.join("tasks")).unwrap_or_default();
        if tids.trim().is_empty() {
            break;
        }
        for tid in tids.split_whitespace() {
            // a thread that ended meanwhile is gone already (ESRCH): nothing to move
            let _ = write(&parent.join("tasks"), tid);
        }
    }
    match std::fs::remove_dir(dir) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(format!("{}: {e}", dir.display())),
    }
}

impl Drop for RunCgroup {
    fn drop(&mut self) {
        let left = self.remove_dirs();
        if !left.is_empty() {
            tracing::warn!(target: "stressctl::confine", "cannot remove the run's cgroup: {}", left.join("; "));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HYBRID_MOUNTINFO: &str = "31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
33 31 0:30 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
";
    const HYBRID_CGROUP: &str = "9:name=systemd:/
4:memory:/process_api/1a6b
2:cpuacct:/
1:cpu:/
0::/
";

    #[test]
    fn hybrid_layout_uses_v1_controllers_and_v2_for_kill() {
        let m = parse(HYBRID_MOUNTINFO, HYBRID_CGROUP);
        let v2 = m.v2.clone().expect("v2");
        assert_eq!(v2.mount, PathBuf::from("/sys/fs/cgroup/unified"));
        assert!(v2.own_is_root());
        assert_eq!(m.v1.len(), 4);
        let mem = m.v1.iter().find(|h| h.controllers == ["memory"]).expect("memory");
        assert_eq!(mem.own_dir(), Some(PathBuf::from("/sys/fs/cgroup/memory/process_api/1a6b")));
        let plan = Plan::of(&m, |p| (p == Path::new("/sys/fs/cgroup/unified/cgroup.controllers")).then(|| "hugetlb\n".to_string()));
        assert_eq!(
            plan,
            Plan {
                v2_parent: Some(PathBuf::from("/sys/fs/cgroup/unified")),
                v2_cpu: false,
                v2_memory: false,
                v2_parent_is_root: true,
                v1_cpu_parent: Some(PathBuf::from("/sys/fs/cgroup/cpu")),
                v1_memory_parent: Some(PathBuf::from("/sys/fs/cgroup/memory/process_api/1a6b")),
            }
        );
        assert!(plan.can_limit());
    }

    #[test]
    fn pure_v2_in_a_session_scope_goes_next_to_it() {
        let mi =
            "30 25 0:26 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:4 - cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot\n";
        let pc = "0::/user.slice/user-1000.slice/session-3.scope\n";
        let m = parse(mi, pc);
        assert!(m.v1.is_empty());
        let plan = Plan::of(&m, |_| Some("cpuset cpu io memory pids\n".into()));
        assert_eq!(plan.v2_parent, Some(PathBuf::from("/sys/fs/cgroup/user.slice/user-1000.slice")));
        assert!(plan.v2_cpu && plan.v2_memory && !plan.v2_parent_is_root);
        assert_eq!((plan.v1_cpu_parent, plan.v1_memory_parent), (None, None));
    }

    #[test]
    fn combined_v1_mounts_and_container_roots() {
        let mi = "25 21 0:22 /docker/abc /sys/fs/cgroup/cpu,cpuacct ro,nosuid - cgroup cgroup rw,cpu,cpuacct\n\
                  26 21 0:23 /docker/abc /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n";
        let pc = "5:cpu,cpuacct:/docker/abc\n4:memory:/docker/abc/inner\n";
        let m = parse(mi, pc);
        assert!(m.v2.is_none());
        let cpu = m.v1.iter().find(|h| h.controllers == ["cpu", "cpuacct"]).expect("cpu,cpuacct");
        assert_eq!(cpu.own_dir(), Some(PathBuf::from("/sys/fs/cgroup/cpu,cpuacct")));
        let mem = m.v1.iter().find(|h| h.controllers == ["memory"]).expect("memory");
        assert_eq!(mem.own_dir(), Some(PathBuf::from("/sys/fs/cgroup/memory/inner")));
        // a path outside the mounted subtree is not reachable
        let h = Hierarchy { mount: "/m".into(), root: "/a".into(), controllers: vec![], own: "/ab".into() };
        assert_eq!(h.own_dir(), None);
    }

    #[test]
    fn no_cgroups_means_no_plan() {
        let plan = Plan::of(&parse("", ""), |_| None);
        assert!(!plan.can_limit());
        assert!(RunCgroup::create(&plan, "x", 20).is_err());
    }

    #[test]
    fn escapes_and_names() {
        assert_eq!(unescape("/a\\040b"), "/a b");
        assert_eq!(unescape("/plain\\"), "/plain\\");
        assert_eq!(dir_name("20250101-1200-ab/../x"), "stressctl-20250101-1200-ab..x");
    }

    #[test]
    fn only_a_dead_owners_cgroup_is_stale() {
        assert!(owner_may_run(&format!("stressctl-20250101-ab-{}", std::process::id())));
        assert!(owner_may_run("stressctl-no-pid-here"));
        assert!(!owner_may_run(&format!("stressctl-x-{}", u32::MAX - 1)));
    }

    #[test]
    fn caps() {
        assert_eq!(cpu_quota_us(2, 20), Some(160_000));
        assert_eq!(cpu_quota_us(8, 25), Some(600_000));
        assert_eq!(cpu_quota_us(2, 0), None);
        assert_eq!(cpu_quota_us(1, 100), Some(1000));
        assert_eq!(memory_cap(1000, 20), Some(800));
        assert_eq!(memory_cap(1000, 0), None);
        assert_eq!(memory_cap(0, 20), None);
    }

    /// The real thing on this machine, where the process may create cgroups (root).
    #[test]
    fn real_run_cgroup_caps_joins_and_cleans_up() {
        let plan = Plan::detect();
        let run = format!("unit-{}", std::process::id());
        let cg = match RunCgroup::create(&plan, &run, 20) {
            Ok(cg) => cg,
            Err(e) => {
                eprintln!("skipped: no cgroup here ({e})");
                return;
            }
        };
        let r = cg.reservation().clone();
        assert_eq!(r.reserve_percent, 20);
        if let Some(c) = r.cpu_cap_percent {
            assert!((c - 80.0).abs() < 0.01, "{r:?}");
        }
        assert!(!r.mechanism.is_empty());
        let dirs = cg.dirs();
        assert!(dirs.iter().all(|d| d.is_dir()));
        let orchestrator = cg.orchestrator_dir().map(Path::to_path_buf);
        if let Some(o) = &orchestrator {
            // v1: a thread joins the orchestrator directory, alone (the process stays where it was)
            assert_eq!(std::fs::read_to_string(o.join("cpu.shares")).expect("shares").trim(), ORCHESTRATOR_CPU_SHARES.to_string());
            assert!(!dirs.contains(o), "the orchestrator's directory is not one the run kills");
            // a thread that joined and ended leaves the directory with its life
            let joined = std::thread::scope(|s| s.spawn(|| cg.join_orchestrator()).join().expect("thread"));
            assert_eq!(joined, Ok(true));
            assert_eq!(cg.join_orchestrator(), Ok(true), "the calling thread joins");
            let tasks = std::fs::read_to_string(o.join("tasks")).expect("tasks");
            let me = super::super::priority::current_tid();
            assert_eq!(tasks.split_whitespace().collect::<Vec<_>>(), vec![me.to_string()], "only the thread that joined");
        }
        let mut child = std::process::Command::new("sleep").arg("30").spawn().expect("sleep");
        cg.join(child.id()).expect("join");
        assert_eq!(cg.pids(), vec![child.id()]);
        if r.memory_cap_bytes.is_some() {
            assert!(cg.memory_usage().is_some());
        }
        let left = cg.remove();
        assert!(left.is_empty(), "{left:?}");
        let st = child.wait().expect("wait");
        assert!(!st.success(), "the member was killed on removal");
        assert!(dirs.iter().all(|d| !d.exists()), "{dirs:?}");
        if let Some(o) = &orchestrator {
            assert!(!o.exists(), "removed, with the thread that was still in it moved back out");
            let own = std::fs::read_to_string("/proc/thread-self/cgroup").expect("cgroup");
            assert!(!own.contains("orchestrator"), "{own}");
        }
    }
}
