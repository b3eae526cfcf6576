//! Shared helpers of the integration tests: run the real `stressctl` binary in a per-test sandbox
//! (temp dirs for output, state and logs), read its reports, and make sure that no Chromium or
//! ChromeDriver process it started is left behind.
//!
//! Tests run in parallel, so processes are attributed to a test by its unique temp dir: browser
//! profiles live under `<state-dir>/runs/<id>/profiles` and chromedriver's `--log-path` is under
//! `<log-dir>`, both inside the sandbox. Nothing here ever signals a process by name.
#![allow(dead_code)]

pub mod exporter;
pub mod http;
pub mod promtext;

use serde_json::Value;
use std::collections::HashSet;
use std::ffi::OsString;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// The binary under test.
pub const BIN: &str = env!("CARGO_BIN_EXE_stressctl");

/// How long a process-orphan check waits for processes to go away.
pub const ORPHAN_GRACE: Duration = Duration::from_secs(5);

/// Campaign settings every test config starts with: no health-gated delays, no auto-recovery,
/// guardian thresholds at 100 %, no free-space floors and no CPU/memory reservation for the host, so a busy CI machine
/// cannot turn a test into a guardian test and a test's timing does not depend on the cgroup cap
/// (tests/reservation.rs tests the reservation with its own config). `extra` is appended inside
/// `[campaign]`.
pub fn header(name: &str, extra: &str) -> String {
    format!(
        r#"[campaign]
name = "{name}"
progressive_escalation = false
auto_recovery = false
{extra}

[safety]
memory_percent = 100
cpu_percent = 100
disk_percent = 100
reserve_percent = 0
min_free_memory_mb = 0
min_free_disk_mb = 0
"#
    )
}

/// A `[task]` table of the synthetic kind (no browser).
pub fn synthetic_task(latency: &str, failure_probability: f64) -> String {
    format!(
        r#"
[task]
kind = "synthetic"
latency = "{latency}"
jitter = "0s"
failure_probability = {failure_probability:?}
"#
    )
}

/// A `[task]` table of the webgpu kind with bounded browser timeouts.
pub fn webgpu_task(matrix_size: u32) -> String {
    format!(
        r#"
[task]
kind = "webgpu"
matrix_size = {matrix_size}

[browser]
op_timeout = "10s"
session_timeout = "30s"
"#
    )
}

/// One `[[phases]]` entry; `extra` lines are appended inside it.
pub fn phase(name: &str, duration: &str, sessions: u32, extra: &str) -> String {
    format!(
        r#"
[[phases]]
name = "{name}"
duration = "{duration}"
sessions = {sessions}
{extra}
"#
    )
}

/// A per-test sandbox: `<tmp>/out`, `<tmp>/state`, `<tmp>/logs`, and config files in `<tmp>`.
pub struct Sandbox {
    tmp: tempfile::TempDir,
    /// The sandbox root (the marker that identifies this test's processes).
    pub root: PathBuf,
    /// `--output-dir`.
    pub out: PathBuf,
    /// `--state-dir`.
    pub state: PathBuf,
    /// `--log-dir`.
    pub logs: PathBuf,
}

impl Drop for Sandbox {
    /// A failing test keeps its sandbox (store, logs, reports) to be read; a passing one leaves
    /// nothing.
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.tmp.disable_cleanup(true);
            eprintln!("the failed test's sandbox is kept: {}", self.root.display());
        }
    }
}

impl Sandbox {
    /// A fresh sandbox whose directory name contains `tag`.
    pub fn new(tag: &str) -> Sandbox {
        let tmp = tempfile::Builder::new().prefix(&format!("stressctl-test-{tag}-")).tempdir().expect("create temp dir");
        let root = tmp.path().to_path_buf();
        Sandbox { out: root.join("out"), state: root.join("state"), logs: root.join("logs"), root, tmp }
    }

    /// Writes `text` to `<root>/<name>` and returns the path.
    pub fn write(&self, name: &str, text: &str) -> PathBuf {
        let p = self.root.join(name);
        std::fs::write(&p, text).expect("write config");
        p
    }

    /// `--output-dir … --state-dir … --log-dir …` of this sandbox.
    pub fn dir_args(&self) -> Vec<OsString> {
        vec![
            "--output-dir".into(),
            self.out.clone().into(),
            "--state-dir".into(),
            self.state.clone().into(),
            "--log-dir".into(),
            self.logs.clone().into(),
        ]
    }

    /// `stressctl <args> <dir args>`, run from the sandbox (so a default path that slipped through
    /// lands in the sandbox, never in the repository).
    ///
    /// `XDG_CONFIG_HOME` points into the sandbox too: Chromium's crash handler
    /// (`chrome_crashpad_handler`) leaves the driver's process group and session and names only
    /// `--database=$XDG_CONFIG_HOME/chromium/Crash Reports`, so this is what marks it as ours.
    pub fn cmd<I, S>(&self, args: I) -> Command
    where
        I: IntoIterator<Item = S>,
        S: Into<OsString>,
    {
        let mut c = Command::new(BIN);
        c.args(args.into_iter().map(Into::into))
            .args(self.dir_args())
            .current_dir(&self.root)
            .env("NO_COLOR", "1")
            .env("XDG_CONFIG_HOME", self.root.join("xdg"))
            // a test's campaign is not the CI job's: never appended to the job's step summary
            .env_remove("GITHUB_STEP_SUMMARY");
        c
    }

    /// `stressctl launch --config <file> --no-baseline` in this sandbox: the night's baseline
    /// (a few seconds before the first phase, a browser started for it) is left to the tests of
    /// it, which use [`Sandbox::launch_with_baseline`]; every other test stays that much shorter.
    pub fn launch(&self, config: &Path) -> Command {
        let args: Vec<OsString> = vec!["launch".into(), "--config".into(), config.into(), "--no-baseline".into()];
        self.cmd(args)
    }

    /// `stressctl launch --config <file>`, baseline included, in this sandbox.
    pub fn launch_with_baseline(&self, config: &Path) -> Command {
        let args: Vec<OsString> = vec!["launch".into(), "--config".into(), config.into()];
        self.cmd(args)
    }

    /// The campaign directories in the output dir (empty if it does not exist).
    pub fn campaign_dirs(&self) -> Vec<PathBuf> {
        list_dirs(&self.out)
    }

    /// The single campaign directory of this sandbox.
    pub fn campaign_dir(&self) -> PathBuf {
        let dirs = self.campaign_dirs();
        assert_eq!(dirs.len(), 1, "expected exactly one campaign dir in {}, found {dirs:?}", self.out.display());
        dirs.into_iter().next().unwrap()
    }

    /// The run directories in `<state>/runs` (empty if none).
    pub fn run_dirs(&self) -> Vec<PathBuf> {
        list_dirs(&self.state.join("runs"))
    }

    /// Keeps the sandbox on disk (for debugging a failure).
    pub fn keep(mut self) -> PathBuf {
        self.tmp.disable_cleanup(true);
        self.root.clone()
    }
}

fn list_dirs(dir: &Path) -> Vec<PathBuf> {
    let Ok(rd) = std::fs::read_dir(dir) else { return Vec::new() };
    let mut v: Vec<PathBuf> = rd.flatten().map(|e| e.path()).filter(|p| p.is_dir()).collect();
    v.sort();
    v
}

/// What a finished run printed and how it exited.
#[derive(Debug)]
pub struct Output {
    /// Exit status.
    pub status: ExitStatus,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
    /// Wall time from spawn to exit.
    pub elapsed: Duration,
}

impl Output {
    /// The exit code (None when killed by a signal).
    pub fn code(&self) -> Option<i32> {
        self.status.code()
    }

    /// Panics with both streams unless the exit code is `code`.
    pub fn expect_code(&self, code: i32) -> &Output {
        assert_eq!(self.code(), Some(code), "expected exit code {code}, got {:?}\n{}", self.status, self.describe());
        self
    }

    /// Both streams, for assertion messages.
    pub fn describe(&self) -> String {
        format!("--- stdout ---\n{}--- stderr ---\n{}", self.stdout, self.stderr)
    }

    /// The campaign id from the first stdout line (`stressctl: campaign <ID> (…)`).
    pub fn campaign_id(&self) -> String {
        campaign_id_of(&self.stdout).unwrap_or_else(|| panic!("no `stressctl: campaign <ID>` line\n{}", self.describe()))
    }
}

/// The id in a `stressctl: campaign <ID> (…)` line of `stdout`.
pub fn campaign_id_of(stdout: &str) -> Option<String> {
    stdout.lines().find_map(|l| l.strip_prefix("stressctl: campaign ")).and_then(|rest| rest.split_whitespace().next()).map(str::to_string)
}

/// A spawned `stressctl` whose output is collected in the background. Dropping it kills the
/// process if it still runs (and, through the sandbox marker, anything it left).
pub struct Running {
    child: Option<Child>,
    started: Instant,
    stdout: Arc<Mutex<String>>,
    stderr: Arc<Mutex<String>>,
    readers: Vec<JoinHandle<()>>,
    marker: Option<PathBuf>,
}

fn collect<R: Read + Send + 'static>(mut r: R, into: Arc<Mutex<String>>) -> JoinHandle<()> {
    std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        loop {
            match r.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => into.lock().unwrap().push_str(&String::from_utf8_lossy(&buf[..n])),
            }
        }
    })
}

impl Running {
    /// Spawns `cmd` with piped output. `marker` (the sandbox root) is used to clean up after a
    /// failed test.
    pub fn spawn(mut cmd: Command, marker: Option<&Path>) -> Running {
        cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
        let started = Instant::now();
        let mut child = cmd.spawn().expect("spawn stressctl");
        let stdout = Arc::new(Mutex::new(String::new()));
        let stderr = Arc::new(Mutex::new(String::new()));
        let readers = vec![collect(child.stdout.take().unwrap(), stdout.clone()), collect(child.stderr.take().unwrap(), stderr.clone())];
        Running { child: Some(child), started, stdout, stderr, readers, marker: marker.map(Path::to_path_buf) }
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("still owned").id()
    }

    /// Standard output so far.
    pub fn stdout_so_far(&self) -> String {
        self.stdout.lock().unwrap().clone()
    }

    /// Standard error so far.
    pub fn stderr_so_far(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// Sends `sig` to the process (it is our child and has not been reaped, so the pid is ours).
    pub fn signal(&self, sig: i32) {
        let child = self.child.as_ref().expect("still owned");
        // SAFETY: kill(2) on the pid of a child we have not waited for yet.
        let rc = unsafe { libc::kill(child.id() as i32, sig) };
        assert_eq!(rc, 0, "kill({}, {sig}) failed", child.id());
    }

    /// Waits up to `timeout` for the process to exit; None if it is still running.
    pub fn wait_timeout(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        let child = self.child.as_mut().expect("still owned");
        loop {
            if let Some(st) = child.try_wait().expect("try_wait") {
                return Some(st);
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits up to `timeout` for the exit and returns the collected output; on timeout the process
    /// is killed and the test fails.
    pub fn finish(mut self, timeout: Duration) -> Output {
        let status = match self.wait_timeout(timeout) {
            Some(st) => st,
            None => {
                let out = self.stdout_so_far();
                let err = self.stderr_so_far();
                self.kill_everything();
                panic!("stressctl did not exit within {timeout:?}\n--- stdout ---\n{out}--- stderr ---\n{err}");
            }
        };
        let elapsed = self.started.elapsed();
        self.child = None;
        for r in self.readers.drain(..) {
            let _ = r.join();
        }
        let stdout = std::mem::take(&mut *self.stdout.lock().unwrap());
        let stderr = std::mem::take(&mut *self.stderr.lock().unwrap());
        Output { status, stdout, stderr, elapsed }
    }

    fn kill_everything(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        if let Some(m) = &self.marker {
            kill_marked(m);
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if self.child.is_some() {
            self.kill_everything();
        }
    }
}

/// Runs `cmd` to completion within `timeout`.
pub fn run(cmd: Command, timeout: Duration) -> Output {
    Running::spawn(cmd, None).finish(timeout)
}

/// Runs `cmd` to completion within `timeout`; `marker` identifies its processes for cleanup.
pub fn run_marked(cmd: Command, marker: &Path, timeout: Duration) -> Output {
    Running::spawn(cmd, Some(marker)).finish(timeout)
}

/// Parses a JSON file (panics with the path on error).
pub fn read_json(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("parse {}: {e}\n{text}", path.display()))
}

/// A JSON number as f64 (panics with the key path otherwise).
pub fn num(v: &Value, what: &str) -> f64 {
    v.as_f64().unwrap_or_else(|| panic!("{what} is not a number: {v}"))
}

/// A JSON number as u64 (panics with the key path otherwise).
pub fn count(v: &Value, what: &str) -> u64 {
    v.as_u64().unwrap_or_else(|| panic!("{what} is not a non-negative integer: {v}"))
}

/// Asserts p50 <= p90 <= p95 <= p99 <= max (and mean <= max) of a `latency_ms` object.
pub fn assert_percentiles_ordered(lat: &Value, what: &str) {
    let keys = ["p50", "p90", "p95", "p99", "max"];
    let vals: Vec<f64> = keys.iter().map(|k| num(&lat[*k], &format!("{what}.{k}"))).collect();
    for (i, w) in vals.windows(2).enumerate() {
        assert!(w[0] <= w[1], "{what}: {} ({}) > {} ({}) in {lat}", keys[i], w[0], keys[i + 1], w[1]);
    }
    let mean = num(&lat["mean"], &format!("{what}.mean"));
    assert!(mean <= vals[4] && mean >= 0.0, "{what}: mean {mean} outside [0, max] in {lat}");
}

/// The events of an `events.jsonl` file (every line must be a JSON object with a `kind`).
pub fn read_events(path: &Path) -> Vec<Value> {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let v: Value = serde_json::from_str(l).unwrap_or_else(|e| panic!("bad line in {}: {e}\n{l}", path.display()));
            assert!(v["kind"].is_string(), "event without kind: {l}");
            v
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Processes
// ---------------------------------------------------------------------------------------------

/// A process seen in /proc.
#[derive(Clone, Debug)]
pub struct Proc {
    /// Pid.
    pub pid: i32,
    /// Start time (clock ticks since boot): pid + start time survive pid reuse.
    pub start: u64,
    /// Process group.
    pub pgid: i32,
    /// State letter (R, S, Z, …).
    pub state: char,
    /// Command line, arguments joined by spaces.
    pub cmdline: String,
    /// argv[0].
    pub argv0: String,
}

/// Reads one /proc entry.
pub fn read_proc(pid: i32) -> Option<Proc> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = stat.get(stat.rfind(')')? + 2..)?;
    let f: Vec<&str> = rest.split_whitespace().collect();
    let state = f.first()?.chars().next()?;
    let pgid = f.get(2)?.parse().ok()?;
    let start = f.get(19)?.parse().ok()?;
    let raw = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    let args: Vec<String> = raw.split(|b| *b == 0).filter(|a| !a.is_empty()).map(|a| String::from_utf8_lossy(a).into_owned()).collect();
    Some(Proc { pid, start, pgid, state, argv0: args.first().cloned().unwrap_or_default(), cmdline: args.join(" ") })
}

/// Whether argv[0] is Chromium, ChromeDriver, or anything from /usr/lib/chromium/.
pub fn is_browser_argv0(a: &str) -> bool {
    a == "chromium"
        || a == "chromedriver"
        || a.ends_with("/chromium")
        || a.ends_with("/chromedriver")
        || a.starts_with("/usr/lib/chromium/")
        || a == "geckodriver"
        || a.ends_with("/geckodriver")
        || a.ends_with("/firefox-esr")
        || a.ends_with("/firefox")
        || a.starts_with("/usr/lib/firefox-esr/")
}

/// Every live (non-zombie) Chromium, ChromeDriver, Firefox or geckodriver process on the machine.
pub fn browser_processes() -> Vec<Proc> {
    let Ok(rd) = std::fs::read_dir("/proc") else { return Vec::new() };
    rd.flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter_map(read_proc)
        .filter(|p| p.state != 'Z' && is_browser_argv0(&p.argv0))
        .collect()
}

/// Main browser processes (not Chromium `--type=` or Firefox `-contentproc` children) of the
/// sandbox `marker`.
pub fn browsers_of(marker: &Path) -> usize {
    let m = marker.to_string_lossy().into_owned();
    browser_processes()
        .iter()
        .filter(|p| {
            let chromium = p.argv0.ends_with("/chromium") && !p.cmdline.contains("--type=");
            let firefox = (p.argv0.ends_with("/firefox-esr") || p.argv0.ends_with("/firefox")) && !p.cmdline.contains("-contentproc");
            (chromium || firefox) && p.cmdline.contains(&m)
        })
        .count()
}

/// The browser processes alive before a test.
pub struct Snapshot(HashSet<(i32, u64)>);

/// Snapshot of the browser processes alive now.
pub fn snapshot() -> Snapshot {
    Snapshot(browser_processes().into_iter().map(|p| (p.pid, p.start)).collect())
}

/// Browser processes that are new since `before` and belong to the test of `marker`: their
/// command line mentions the marker, or they share a process group with one that does.
pub fn leftovers(before: &Snapshot, marker: &Path) -> Vec<Proc> {
    let m = marker.to_string_lossy().into_owned();
    let new: Vec<Proc> = browser_processes().into_iter().filter(|p| !before.0.contains(&(p.pid, p.start))).collect();
    let groups: HashSet<i32> = new.iter().filter(|p| p.cmdline.contains(&m)).map(|p| p.pgid).collect();
    new.into_iter().filter(|p| p.cmdline.contains(&m) || groups.contains(&p.pgid)).collect()
}

/// SIGKILLs the browser processes whose command line mentions `marker` (cleanup after a failure;
/// only this test's processes, never by name). Returns how many were signalled.
pub fn kill_marked(marker: &Path) -> usize {
    let m = marker.to_string_lossy().into_owned();
    let mut n = 0;
    for p in browser_processes().into_iter().filter(|p| p.cmdline.contains(&m)) {
        // re-check identity right before signalling
        if read_proc(p.pid).is_some_and(|q| q.start == p.start) {
            // SAFETY: kill(2) on a pid verified above to be the same process (pid + start time).
            unsafe { libc::kill(p.pid, libc::SIGKILL) };
            n += 1;
        }
    }
    n
}

/// Fails the test if, within [`ORPHAN_GRACE`], this test's browser processes (see [`leftovers`])
/// do not all go away. The ones found are killed after the failure is recorded.
pub fn assert_no_orphans(before: &Snapshot, marker: &Path) {
    let deadline = Instant::now() + ORPHAN_GRACE;
    loop {
        let left = leftovers(before, marker);
        if left.is_empty() {
            return;
        }
        if Instant::now() >= deadline {
            let list: Vec<String> = left.iter().map(|p| format!("  pid {} (pgid {}): {:.240}", p.pid, p.pgid, p.cmdline)).collect();
            let killed = kill_marked(marker);
            panic!(
                "{} orphaned browser/driver process(es) of this test still alive {:?} after stressctl exited (killed {killed}):\n{}",
                left.len(),
                ORPHAN_GRACE,
                list.join("\n")
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Waits until `cond` holds or `timeout` passes; returns whether it held.
pub fn wait_until(timeout: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// An exclusive lock shared by every test binary (flock on a file in the temp dir): browser tests
/// hold it so that at most one campaign drives Chromium at a time on a small CI machine.
///
/// With `STRESSCTL_TEST_TIMES=FILE` set, each release appends `<held s> <waited s> <test>` to
/// FILE: the browser tests are the suite's critical path, and this is how to see which cost what.
pub struct BrowserLock {
    /// Holds the flock: closing it releases the lock.
    _file: std::fs::File,
    /// When the lock was asked for and when it was had, for `STRESSCTL_TEST_TIMES`.
    asked: Instant,
    got: Instant,
}

impl BrowserLock {
    /// Blocks until the lock is ours.
    pub fn acquire() -> BrowserLock {
        use std::os::fd::AsRawFd;
        let asked = Instant::now();
        let path = std::env::temp_dir().join("stressctl-browser-tests.lock");
        let f = std::fs::OpenOptions::new().create(true).truncate(false).write(true).open(&path).expect("open lock file");
        // SAFETY: flock(2) on a file descriptor we own; released when the file is closed.
        let rc = unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX) };
        assert_eq!(rc, 0, "flock {}", path.display());
        BrowserLock { _file: f, asked, got: Instant::now() }
    }
}

impl Drop for BrowserLock {
    fn drop(&mut self) {
        let Some(path) = std::env::var_os("STRESSCTL_TEST_TIMES") else { return };
        let test = std::thread::current().name().unwrap_or("?").to_string();
        let line = format!("{:8.1} {:8.1} {test}\n", self.got.elapsed().as_secs_f64(), (self.got - self.asked).as_secs_f64());
        if let Ok(mut f) = std::fs::OpenOptions::new().create(true).append(true).open(path) {
            let _ = f.write_all(line.as_bytes());
        }
    }
}

/// Waits for `stressctl: dashboard http://ADDR/` on the stdout of a launch with `--dashboard`.
pub fn dashboard_addr(child: &Running) -> std::net::SocketAddr {
    let mut addr = None;
    let found = wait_until(Duration::from_secs(20), || {
        addr = child
            .stdout_so_far()
            .lines()
            .find_map(|l| l.strip_prefix("stressctl: dashboard http://"))
            .and_then(|rest| rest.trim_end_matches('/').parse().ok());
        addr.is_some()
    });
    assert!(found, "no dashboard address on stdout\n{}\n{}", child.stdout_so_far(), child.stderr_so_far());
    addr.unwrap()
}

/// Runs a campaign of `cfg` to its end within `timeout`, and asserts that it left no browser or
/// driver process behind: the start and end every browser test shares.
pub fn launch_leaving_nothing(sb: &Sandbox, cfg: &Path, timeout: Duration) -> Output {
    let before = snapshot();
    let out = run_marked(sb.launch(cfg), &sb.root, timeout);
    assert_no_orphans(&before, &sb.root);
    out
}

/// The events of kind `kind` in the campaign directory `dir`'s `events.jsonl`.
pub fn events_of_kind(dir: &Path, kind: &str) -> Vec<Value> {
    read_events(&dir.join("events.jsonl")).into_iter().filter(|e| e["kind"] == kind).collect()
}

/// The page console lines an `op_failed` event carries.
pub fn console_of(op_failed: &Value) -> Vec<String> {
    op_failed["data"]["console"].as_array().expect("console on op_failed").iter().filter_map(Value::as_str).map(str::to_string).collect()
}

/// A two-phase WebGPU campaign on two managed workers whose second phase kills `w1`'s driver for
/// good every 2 s (breakers recover after 3 s): the set-up of the tests that watch work route
/// around a dead worker.
pub fn killed_worker_campaign(sb: &Sandbox) -> PathBuf {
    let workers = "\n[breaker]\nrecovery_timeout = \"3s\"\n\n[[workers]]\nid = \"w1\"\nmanaged = true\n\n[[workers]]\nid = \"w2\"\nmanaged = true\n\n\
                   [[faults]]\nkind = \"kill_driver\"\nworker = \"w1\"\npermanent = true\nevery = \"2s\"\nphases = [\"broken\"]\n";
    let phases = format!(
        "{}{}",
        phase("warm", "4s", 2, "[phases.criteria]\nmax_p95 = \"30s\""),
        phase("broken", "14s", 2, "stress_level = \"high\"")
    );
    sb.write("w.toml", &format!("{}{}{}{}", header("workers", ""), webgpu_task(32), workers, phases))
}
