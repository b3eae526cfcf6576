//! Starting a program so that it, and everything it ever starts, dies with stressctl — even when
//! stressctl is SIGKILLed and runs no code at all.
//!
//! The program runs as pid 2 of a new PID namespace under a tiny *init* (pid 1), which is a fork of
//! stressctl running only raw system calls ([`init_main`]). The guarantee is the kernel's: when the
//! init of a PID namespace exits, every process left in the namespace is SIGKILLed, grandchildren
//! and double-forked daemons included, and the init's own exit status is only reported once they
//! are all gone. The init exits when:
//!
//! * stressctl is gone: it watches the read end of a pipe (the *lifeline*) whose only write end is
//!   held by stressctl; the kernel closes it when stressctl exits, however it exits. Unlike
//!   `PR_SET_PDEATHSIG`, this does not depend on which of stressctl's threads forked it;
//! * the program exits (a driver without its browsers' parent is of no use: they go with it);
//! * stressctl drops its [`Supervised`] handle (closing the lifeline) or SIGKILLs the init.
//!
//! Creating a PID namespace needs `CAP_SYS_ADMIN`. Without it [`spawn`] returns
//! [`SpawnError::Unsupported`] and callers fall back to a plain child process, which a SIGKILL of
//! stressctl leaves behind for the next `launch` to reap.
//!
//! Signals: an init only receives signals it has a handler for, except SIGKILL from an ancestor
//! namespace. Ours installs none, so a SIGTERM to its process group reaches the program (and the
//! browsers in the group) but not the init, which exits once the program has; a SIGKILL to the
//! init ends the whole namespace at once.

use std::ffi::{CString, OsStr, OsString};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Mutex;

/// What to start inside the namespace.
#[derive(Clone, Debug, Default)]
pub struct SpawnRequest {
    /// The program: a path, or a bare name looked up in `PATH`.
    pub program: PathBuf,
    /// Arguments after the program name.
    pub args: Vec<OsString>,
    /// Environment variables set on top of stressctl's own environment.
    pub env: Vec<(OsString, OsString)>,
    /// `cgroup.procs` files the init joins (by writing `0`) before it starts the program, so the
    /// program and all its descendants are born inside the run's cgroups.
    pub cgroup_procs: Vec<PathBuf>,
    /// A file the program's stdout and stderr are appended to (created if missing), for drivers
    /// that log only there (geckodriver); `/dev/null` when None.
    pub log: Option<PathBuf>,
}

/// Why [`spawn`] did not start the program.
#[derive(Debug, thiserror::Error)]
pub enum SpawnError {
    /// This process may not create PID namespaces (no `CAP_SYS_ADMIN`, or the kernel lacks them).
    #[error("PID namespaces are not available here ({0})")]
    Unsupported(std::io::Error),
    /// A `cgroup.procs` file of [`SpawnRequest::cgroup_procs`] could not be opened or joined: the
    /// run's cgroup is gone or not writable (the caller may start the program unconfined).
    #[error("cannot join the run's cgroup ({path}): {source}")]
    Cgroup {
        /// The file, or the first of them when the init could not join.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// The init or the program could not be started.
    #[error("{what}: {source}")]
    Failed {
        /// The step that failed, e.g. "cannot start /usr/bin/chromedriver".
        what: String,
        /// The OS error.
        source: std::io::Error,
    },
}

/// A running program under its own init. Dropping it ends the namespace (and reaps the init on a
/// background thread, so no zombie is left).
#[derive(Debug)]
pub struct Supervised {
    /// Host pid of the init. It leads its own process group (which the program and the browsers
    /// it starts inherit), so it is the identity to record and the group to signal.
    pub pid: u32,
    /// Write end of the lifeline; closing it makes the init exit.
    lifeline: Option<OwnedFd>,
    /// The init's wait status once reaped.
    status: Option<i32>,
}

/// Stages reported by the init over the error pipe (first byte of a 5-byte record).
const STAGE_CGROUP: u8 = 1;
const STAGE_FORK: u8 = 2;
const STAGE_EXEC: u8 = 3;

/// How often the init looks for exited children while it waits on the lifeline, in ms.
const INIT_POLL_MS: libc::c_int = 250;

/// Name the init shows in `ps` and `/proc/<pid>/comm` (15 bytes at most).
const INIT_NAME: &[u8] = b"stressctl-init\0";

/// Inits alive now (pid, start time): their RSS is stressctl's copy-on-write image, shared with the
/// daemon, so the guardian leaves it out of the campaign tree's RSS.
static LIVE_INITS: Mutex<Vec<(u32, u64)>> = Mutex::new(Vec::new());

/// 0 = not known yet, 1 = PID namespaces work here, 2 = they do not.
static SUPPORT: AtomicU8 = AtomicU8::new(0);

/// Whether this process can create PID namespaces (tried for real once, then remembered).
pub fn available() -> bool {
    match SUPPORT.load(Ordering::Relaxed) {
        1 => true,
        2 => false,
        _ => {
            let ok = probe().is_ok();
            SUPPORT.store(if ok { 1 } else { 2 }, Ordering::Relaxed);
            ok
        }
    }
}

/// Creates an empty PID namespace (an init that exits at once) and reaps it: `Ok` when PID
/// namespaces work here, else the OS error (EPERM without `CAP_SYS_ADMIN`).
pub fn probe() -> std::io::Result<()> {
    // SAFETY: a raw clone(2) without CLONE_VM behaves like fork(2); the child only calls _exit(2).
    let pid = unsafe { libc::syscall(libc::SYS_clone, libc::CLONE_NEWPID as libc::c_long | libc::SIGCHLD as libc::c_long, 0, 0, 0, 0) };
    if pid < 0 {
        return Err(std::io::Error::last_os_error());
    }
    if pid == 0 {
        // SAFETY: async-signal-safe exit of the forked child.
        unsafe { libc::_exit(0) };
    }
    reap_blocking(pid as libc::pid_t);
    Ok(())
}

/// Whether `(pid, start_time)` is one of our live inits.
pub fn is_init(pid: u32, start_time: u64) -> bool {
    lock_inits().contains(&(pid, start_time))
}

/// The inits alive now, as (pid, start time).
pub fn live_inits() -> Vec<(u32, u64)> {
    lock_inits().clone()
}

fn lock_inits() -> std::sync::MutexGuard<'static, Vec<(u32, u64)>> {
    LIVE_INITS.lock().unwrap_or_else(|e| e.into_inner())
}

fn forget_init(pid: u32) {
    lock_inits().retain(|&(p, _)| p != pid);
}

/// Blocking waitpid for `pid`, retried on EINTR.
fn reap_blocking(pid: libc::pid_t) -> Option<i32> {
    let mut st = 0;
    loop {
        // SAFETY: waitpid(2) on our own child with a valid out-pointer.
        let r = unsafe { libc::waitpid(pid, &mut st, 0) };
        if r == pid {
            return Some(st);
        }
        if r < 0 && std::io::Error::last_os_error().raw_os_error() == Some(libc::EINTR) {
            continue;
        }
        return None;
    }
}

fn cstring(s: &OsStr) -> Result<CString, SpawnError> {
    CString::new(s.as_bytes()).map_err(|_| SpawnError::Failed {
        what: format!("cannot pass {:?} to a program", s),
        source: std::io::Error::from(std::io::ErrorKind::InvalidInput),
    })
}

/// `program` as execve(2) needs it: a path as given when it has a `/`, else the first executable
/// match in `PATH` (or the bare name, which then fails with ENOENT).
fn resolve(program: &Path) -> PathBuf {
    if program.as_os_str().as_bytes().contains(&b'/') {
        return program.to_path_buf();
    }
    std::env::var_os("PATH")
        .and_then(|path| {
            std::env::split_paths(&path).map(|d| d.join(program)).find(|p| {
                use std::os::unix::fs::PermissionsExt;
                std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
            })
        })
        .unwrap_or_else(|| program.to_path_buf())
}

/// Moves `fd` to a number ≥ 3 (close-on-exec), so that installing stdio in the program never
/// overwrites it even when stressctl runs with closed standard streams.
fn above_stdio(fd: OwnedFd) -> std::io::Result<OwnedFd> {
    if fd.as_raw_fd() > 2 {
        return Ok(fd);
    }
    // SAFETY: F_DUPFD_CLOEXEC on an fd we own returns a new fd we then own.
    let n = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_DUPFD_CLOEXEC, 3) };
    if n < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: `n` is a fresh descriptor owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(n) })
}

fn pipe() -> std::io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0; 2];
    // SAFETY: pipe2(2) with a valid 2-element array.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: both descriptors were just created and are owned by nobody else.
    let (r, w) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    Ok((above_stdio(r)?, above_stdio(w)?))
}

fn open_fd(path: &Path, flags: libc::c_int) -> std::io::Result<OwnedFd> {
    let c = CString::new(path.as_os_str().as_bytes()).map_err(|_| std::io::Error::from(std::io::ErrorKind::InvalidInput))?;
    // SAFETY: open(2) with a NUL-terminated path (the mode is used only with O_CREAT).
    let fd = unsafe { libc::open(c.as_ptr(), flags | libc::O_CLOEXEC, 0o644 as libc::c_uint) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: a fresh descriptor owned by nobody else.
    above_stdio(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Everything the init needs, prepared before the fork: after it, the child may not allocate.
struct InitPlan<'a> {
    path: &'a CString,
    argv: &'a [*const libc::c_char],
    envp: &'a [*const libc::c_char],
    devnull: RawFd,
    /// Where the program's stdout and stderr go (`devnull` when no log was asked for).
    out: RawFd,
    life_r: RawFd,
    err_w: RawFd,
    cgroup_fds: &'a [RawFd],
}

/// Starts `req.program` as pid 2 of a new PID namespace under our init (see the module docs).
///
/// Its stdin, stdout and stderr are `/dev/null`. Returns once the program has been exec'd (or
/// failed to be).
pub fn spawn(req: &SpawnRequest) -> Result<Supervised, SpawnError> {
    let failed = |what: &str| {
        let what = what.to_string();
        move |source: std::io::Error| SpawnError::Failed { what: what.clone(), source }
    };
    let program = resolve(&req.program);
    let start_what = format!("cannot start {}", req.program.display());
    let path = cstring(program.as_os_str())?;
    let mut args = vec![cstring(req.program.as_os_str())?];
    for a in &req.args {
        args.push(cstring(a)?);
    }
    let mut env: Vec<CString> = Vec::new();
    for (k, v) in std::env::vars_os() {
        if !req.env.iter().any(|(ok, _)| *ok == k) {
            env.push(cstring(&kv(&k, &v))?);
        }
    }
    for (k, v) in &req.env {
        env.push(cstring(&kv(k, v))?);
    }
    let argv: Vec<*const libc::c_char> = args.iter().map(|a| a.as_ptr()).chain(std::iter::once(std::ptr::null())).collect();
    let envp: Vec<*const libc::c_char> = env.iter().map(|a| a.as_ptr()).chain(std::iter::once(std::ptr::null())).collect();

    let devnull = open_fd(Path::new("/dev/null"), libc::O_RDWR).map_err(failed("cannot open /dev/null"))?;
    let log = match &req.log {
        Some(p) => {
            Some(open_fd(p, libc::O_WRONLY | libc::O_CREAT | libc::O_APPEND).map_err(failed(&format!("cannot open {}", p.display())))?)
        }
        None => None,
    };
    let mut cgroup_fds = Vec::with_capacity(req.cgroup_procs.len());
    for p in &req.cgroup_procs {
        cgroup_fds.push(open_fd(p, libc::O_WRONLY).map_err(|source| SpawnError::Cgroup { path: p.clone(), source })?);
    }
    let (life_r, life_w) = pipe().map_err(failed("cannot create a pipe"))?;
    let (err_r, err_w) = pipe().map_err(failed("cannot create a pipe"))?;
    let raw_cgroup_fds: Vec<RawFd> = cgroup_fds.iter().map(AsRawFd::as_raw_fd).collect();
    let plan = InitPlan {
        path: &path,
        argv: &argv,
        envp: &envp,
        devnull: devnull.as_raw_fd(),
        out: log.as_ref().map_or(devnull.as_raw_fd(), AsRawFd::as_raw_fd),
        life_r: life_r.as_raw_fd(),
        err_w: err_w.as_raw_fd(),
        cgroup_fds: &raw_cgroup_fds,
    };

    // SAFETY: a raw clone(2) without CLONE_VM is a fork(2) into a new PID namespace. The child
    // runs only `init_main`, which makes async-signal-safe system calls on data prepared above
    // and never returns.
    let pid = unsafe { libc::syscall(libc::SYS_clone, libc::CLONE_NEWPID as libc::c_long | libc::SIGCHLD as libc::c_long, 0, 0, 0, 0) };
    if pid == 0 {
        // SAFETY: see above; this is the forked child.
        unsafe { init_main(&plan) }
    }
    if pid < 0 {
        let e = std::io::Error::last_os_error();
        return Err(match e.raw_os_error() {
            Some(libc::EPERM) | Some(libc::EINVAL) | Some(libc::ENOSYS) | Some(libc::EACCES) => {
                SUPPORT.store(2, Ordering::Relaxed);
                SpawnError::Unsupported(e)
            }
            _ => SpawnError::Failed { what: "cannot fork a supervisor".into(), source: e },
        });
    }
    SUPPORT.store(1, Ordering::Relaxed);
    let pid = pid as libc::pid_t;
    drop((life_r, err_w, devnull, log, cgroup_fds));
    // Also from this side, so the group exists before we return whatever the child's timing.
    // SAFETY: setpgid(2) on our own child; failure (it already did it, or died) is harmless.
    unsafe { libc::setpgid(pid, pid) };

    // EOF once the program has been exec'd (the pipe is close-on-exec) and the init closed its end.
    let mut rec = [0u8; 5];
    let mut got = 0;
    while got < rec.len() {
        // SAFETY: read(2) into the unfilled tail of a local buffer.
        let n = unsafe { libc::read(err_r.as_raw_fd(), rec[got..].as_mut_ptr().cast(), rec.len() - got) };
        if n > 0 {
            got += n as usize;
        } else if n == 0 || std::io::Error::last_os_error().raw_os_error() != Some(libc::EINTR) {
            break;
        }
    }
    if got == rec.len() {
        let errno = i32::from_le_bytes([rec[1], rec[2], rec[3], rec[4]]);
        // SAFETY: SIGKILL to our own (not yet reaped) child, then reap it.
        unsafe { libc::kill(pid, libc::SIGKILL) };
        reap_blocking(pid);
        let source = std::io::Error::from_raw_os_error(errno);
        return Err(match rec[0] {
            STAGE_CGROUP => SpawnError::Cgroup { path: req.cgroup_procs.first().cloned().unwrap_or_default(), source },
            STAGE_FORK => SpawnError::Failed { what: "the supervisor cannot fork".into(), source },
            _ => SpawnError::Failed { what: start_what, source },
        });
    }
    let pid_u = pid as u32;
    if let Some(st) = crate::procfs::process_start_time(pid_u) {
        lock_inits().push((pid_u, st));
    }
    Ok(Supervised { pid: pid_u, lifeline: Some(life_w), status: None })
}

fn kv(k: &OsStr, v: &OsStr) -> OsString {
    let mut s = k.to_os_string();
    s.push("=");
    s.push(v);
    s
}

impl Supervised {
    /// The init's wait status if it has exited (reaping it), `None` while it runs.
    pub fn try_wait(&mut self) -> Option<i32> {
        if self.status.is_none() {
            let mut st = 0;
            // SAFETY: waitpid(2) on our own child with WNOHANG.
            let r = unsafe { libc::waitpid(self.pid as libc::pid_t, &mut st, libc::WNOHANG) };
            if r == self.pid as libc::pid_t {
                self.status = Some(st);
                forget_init(self.pid);
            } else if r < 0 && std::io::Error::last_os_error().raw_os_error() == Some(libc::ECHILD) {
                // reaped elsewhere: gone all the same
                self.status = Some(0);
                forget_init(self.pid);
            }
        }
        self.status
    }

    /// Whether the init (and so the program) still runs.
    pub fn is_running(&mut self) -> bool {
        self.try_wait().is_none()
    }

    /// Ends the namespace now: SIGKILL to the init (the kernel then kills every process in it).
    pub fn kill(&mut self) {
        if self.status.is_none() {
            // SAFETY: kill(2) on our own child, which is not reaped yet (status is None), so the
            // pid cannot have been reused.
            unsafe { libc::kill(self.pid as libc::pid_t, libc::SIGKILL) };
        }
    }
}

impl Drop for Supervised {
    fn drop(&mut self) {
        self.lifeline.take();
        self.kill();
        if self.status.is_none() {
            let pid = self.pid;
            // The init exits within milliseconds (after the kernel killed its namespace); reap it
            // without blocking the caller, which may be an async task.
            let spawned = std::thread::Builder::new().name("reap-init".into()).spawn(move || {
                reap_blocking(pid as libc::pid_t);
                forget_init(pid);
            });
            if spawned.is_err() {
                forget_init(pid);
            }
        }
    }
}

/// The init: pid 1 of the new namespace. Runs in a forked copy of a multi-threaded process, so
/// only async-signal-safe system calls on pre-built data are made; it never returns.
///
/// # Safety
/// Must only be called in the child of the clone in [`spawn`], with `p` built there.
unsafe fn init_main(p: &InitPlan<'_>) -> ! {
    // Default dispositions (the inherited handlers belong to the runtime of the parent), nothing blocked.
    for sig in 1..libc::SIGRTMAX() {
        if sig != libc::SIGKILL && sig != libc::SIGSTOP {
            libc::signal(sig, libc::SIG_DFL);
        }
    }
    let mut set: libc::sigset_t = std::mem::zeroed();
    libc::sigemptyset(&mut set);
    libc::sigprocmask(libc::SIG_SETMASK, &set, std::ptr::null_mut());
    libc::setpgid(0, 0);
    libc::prctl(libc::PR_SET_NAME, INIT_NAME.as_ptr() as libc::c_ulong, 0, 0, 0);
    for &fd in p.cgroup_fds {
        if libc::write(fd, b"0\n".as_ptr().cast(), 2) < 0 {
            report(p.err_w, STAGE_CGROUP);
            libc::_exit(126);
        }
    }
    close_all_except(&mut [p.devnull, p.out, p.life_r, p.err_w]);

    let child = libc::syscall(libc::SYS_clone, libc::SIGCHLD as libc::c_long, 0, 0, 0, 0);
    if child < 0 {
        report(p.err_w, STAGE_FORK);
        libc::_exit(126);
    }
    if child == 0 {
        libc::close(p.life_r);
        libc::dup2(p.devnull, 0);
        libc::dup2(p.out, 1);
        libc::dup2(p.out, 2);
        libc::close(p.devnull);
        if p.out > 2 {
            libc::close(p.out);
        }
        libc::execve(p.path.as_ptr(), p.argv.as_ptr(), p.envp.as_ptr());
        report(p.err_w, STAGE_EXEC);
        libc::_exit(127);
    }
    libc::close(p.err_w);
    libc::close(p.devnull);
    if p.out != p.devnull {
        libc::close(p.out);
    }
    let child = child as libc::pid_t;
    let mut pfd = libc::pollfd { fd: p.life_r, events: libc::POLLIN, revents: 0 };
    loop {
        pfd.revents = 0;
        // EOF, an error or a byte on the lifeline: stressctl is gone or wants us gone.
        if libc::poll(&mut pfd, 1, INIT_POLL_MS) > 0 && pfd.revents != 0 {
            libc::_exit(0);
        }
        // Reap whatever died (orphans of the namespace are ours to reap); leave with the program.
        loop {
            let mut st = 0;
            let r = libc::waitpid(-1, &mut st, libc::WNOHANG);
            if r == child {
                libc::_exit(exit_code(st));
            }
            if r <= 0 {
                break;
            }
        }
    }
}

/// The exit code of a wait status: the program's code, or 128 + the signal that killed it.
fn exit_code(st: libc::c_int) -> libc::c_int {
    if libc::WIFEXITED(st) {
        libc::WEXITSTATUS(st)
    } else if libc::WIFSIGNALED(st) {
        128 + libc::WTERMSIG(st)
    } else {
        1
    }
}

/// Writes `(stage, errno)` to the error pipe. Async-signal-safe.
unsafe fn report(err_w: RawFd, stage: u8) {
    let errno = *libc::__errno_location();
    let e = errno.to_le_bytes();
    let rec = [stage, e[0], e[1], e[2], e[3]];
    libc::write(err_w, rec.as_ptr().cast(), rec.len());
}

/// Closes every descriptor ≥ 3 except those in `keep` (sorted in place). Async-signal-safe.
unsafe fn close_all_except(keep: &mut [RawFd]) {
    // insertion sort: no allocation, a handful of elements
    for i in 1..keep.len() {
        let mut j = i;
        while j > 0 && keep[j - 1] > keep[j] {
            keep.swap(j - 1, j);
            j -= 1;
        }
    }
    let mut lo: libc::c_uint = 3;
    for &k in keep.iter() {
        if k >= 3 {
            let k = k as libc::c_uint;
            if k > lo {
                close_range(lo, k - 1);
            }
            lo = lo.max(k + 1);
        }
    }
    close_range(lo, libc::c_uint::MAX);
}

unsafe fn close_range(lo: libc::c_uint, hi: libc::c_uint) {
    if libc::syscall(libc::SYS_close_range, lo, hi, 0 as libc::c_uint) == 0 {
        return;
    }
    // kernels before 5.9: close one by one, up to a bound that covers any sane descriptor table
    let mut fd = lo;
    while fd <= hi.min(65_535) {
        libc::close(fd as libc::c_int);
        fd += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::procfs;
    use std::time::{Duration, Instant};

    fn wait_for(timeout: Duration, mut cond: impl FnMut() -> bool) -> bool {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if cond() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        cond()
    }

    /// The program's host pid: the only child of the init.
    fn program_of(init: u32) -> Option<u32> {
        let procs = procfs::all_processes();
        procs.iter().find(|p| p.ppid == init).map(|p| p.pid)
    }

    fn sh(script: &str) -> SpawnRequest {
        SpawnRequest { program: "sh".into(), args: vec!["-c".into(), script.into()], ..SpawnRequest::default() }
    }

    #[test]
    fn program_and_grandchildren_die_when_the_handle_is_dropped() {
        if !available() {
            eprintln!("skipped: no PID namespaces here");
            return;
        }
        // a grandchild that detaches (double fork), as Chromium's helpers do
        let mut s = spawn(&sh("(sleep 30 &) ; sleep 30")).expect("spawn");
        assert!(s.is_running());
        assert!(is_init(s.pid, procfs::process_start_time(s.pid).unwrap_or(0)));
        let group: Vec<u32> = (0..50)
            .find_map(|_| {
                std::thread::sleep(Duration::from_millis(20));
                let g: Vec<u32> = procfs::all_processes()
                    .iter()
                    .filter(|p| p.pgid == s.pid && p.pid != s.pid && p.comm == "sleep")
                    .map(|p| p.pid)
                    .collect();
                (g.len() >= 2).then_some(g)
            })
            .unwrap_or_default();
        assert_eq!(group.len(), 2, "both sleeps run in the init's group");
        let ids: Vec<(u32, u64)> = group.iter().filter_map(|&p| procfs::process_start_time(p).map(|st| (p, st))).collect();
        let pid = s.pid;
        drop(s);
        assert!(
            wait_for(Duration::from_secs(3), || ids
                .iter()
                .all(|&(p, st)| !procfs::is_same_process(p, st) || procfs::read_stat(p).is_some_and(|x| x.is_zombie()))),
            "sleeps survived"
        );
        assert!(wait_for(Duration::from_secs(3), || lock_inits().iter().all(|&(p, _)| p != pid)), "the init was reaped");
    }

    #[test]
    fn the_init_leaves_with_its_program_and_reports_its_code() {
        if !available() {
            return;
        }
        let mut s = spawn(&sh("exit 7")).expect("spawn");
        assert!(wait_for(Duration::from_secs(3), || !s.is_running()));
        assert_eq!(s.try_wait().map(|st| libc::WEXITSTATUS(st)), Some(7));
        // environment and arguments reach the program
        let dir = std::env::temp_dir().join(format!("stressctl-pidns-env-{}", std::process::id()));
        let mut req = sh("echo \"$STRESSCTL_T:$0\" > \"$OUT\"");
        req.env = vec![("STRESSCTL_T".into(), "hello".into()), ("OUT".into(), dir.clone().into())];
        let mut s = spawn(&req).expect("spawn");
        assert!(wait_for(Duration::from_secs(3), || !s.is_running()));
        let text = std::fs::read_to_string(&dir).unwrap_or_default();
        let _ = std::fs::remove_file(&dir);
        assert_eq!(text.trim(), "hello:sh");
    }

    #[test]
    fn a_missing_program_is_a_clear_error() {
        if !available() {
            return;
        }
        let req = SpawnRequest { program: "/nonexistent/stressctl-test/chromedriver".into(), ..SpawnRequest::default() };
        match spawn(&req) {
            Err(SpawnError::Failed { what, source }) => {
                assert!(what.contains("/nonexistent/stressctl-test/chromedriver"), "{what}");
                assert_eq!(source.raw_os_error(), Some(libc::ENOENT));
            }
            other => panic!("expected a start failure, got {other:?}"),
        }
    }

    #[test]
    fn a_missing_cgroup_is_its_own_error() {
        if !available() {
            return;
        }
        let mut req = sh("exit 0");
        req.cgroup_procs = vec![PathBuf::from("/nonexistent-cgroup/cgroup.procs")];
        assert!(matches!(spawn(&req), Err(SpawnError::Cgroup { .. })));
    }

    #[test]
    fn sigterm_to_the_group_ends_program_and_init() {
        if !available() {
            return;
        }
        let mut s = spawn(&sh("exec sleep 30")).expect("spawn");
        let prog = (0..100).find_map(|_| {
            std::thread::sleep(Duration::from_millis(10));
            program_of(s.pid).filter(|&p| procfs::read_stat(p).is_some_and(|x| x.comm == "sleep"))
        });
        assert!(prog.is_some(), "program did not start");
        // SAFETY: killpg on the group our own unreaped child leads.
        unsafe { libc::killpg(s.pid as i32, libc::SIGTERM) };
        assert!(wait_for(Duration::from_secs(3), || !s.is_running()), "init must leave once its program died of SIGTERM");
        assert_eq!(s.try_wait().map(exit_code), Some(128 + libc::SIGTERM));
    }

    #[test]
    fn close_all_except_keeps_only_the_kept() {
        // in a forked child, so closing descriptors cannot disturb the test harness
        let (r, w) = pipe().expect("pipe");
        let (keep_r, keep_w) = pipe().expect("pipe");
        // SAFETY: fork; the child only makes system calls and exits.
        let pid = unsafe { libc::fork() };
        if pid == 0 {
            unsafe {
                close_all_except(&mut [keep_w.as_raw_fd(), 0, keep_r.as_raw_fd()]);
                let ok_kept = libc::fcntl(keep_w.as_raw_fd(), libc::F_GETFD) >= 0 && libc::fcntl(keep_r.as_raw_fd(), libc::F_GETFD) >= 0;
                let closed = libc::fcntl(r.as_raw_fd(), libc::F_GETFD) < 0 && libc::fcntl(w.as_raw_fd(), libc::F_GETFD) < 0;
                let stdio = libc::fcntl(1, libc::F_GETFD) >= 0 || libc::fcntl(2, libc::F_GETFD) >= 0;
                libc::_exit(if ok_kept && closed && stdio { 0 } else { 1 });
            }
        }
        let st = reap_blocking(pid).expect("reap");
        assert!(libc::WIFEXITED(st) && libc::WEXITSTATUS(st) == 0, "status {st}");
    }

    #[test]
    fn exit_codes() {
        assert_eq!(exit_code(7 << 8), 7);
        assert_eq!(exit_code(libc::SIGKILL), 128 + libc::SIGKILL);
    }
}
