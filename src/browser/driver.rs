//! A managed WebDriver driver (chromedriver or geckodriver): spawned on a free loopback port,
//! supervised, and killed (with everything it started) by its recorded identity. Both drivers
//! are held the same way; they differ only in their command line and where they log.
//!
//! Where this process may create PID namespaces, the driver runs under its own init
//! ([`crate::confine::pidns`]): the init leads the process group that the driver and its
//! browsers inherit, it is the identity recorded in the store, and when it exits — because
//! the driver did, because stressctl closed or lost its lifeline, or on SIGKILL — the kernel
//! kills every process of the namespace. Elsewhere the driver is a plain child in its own
//! process group, as before. Either way, while a run's cgroup is installed
//! ([`crate::confine::installed`]) the driver is born inside it.

use super::process::ProcId;
use crate::config::BrowserKind;
use crate::confine::{self, pidns};
use crate::recovery::{FailureClass, OpError};
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// What to start: which driver, from where, logging where, with which extra environment.
pub struct DriverSpec<'a> {
    /// chromedriver or geckodriver.
    pub kind: BrowserKind,
    /// The driver binary (already resolved, see [`resolve_binary`]).
    pub binary: &'a Path,
    /// Its log file: chromedriver writes it itself (`--log-path`), geckodriver's stderr is
    /// appended to it.
    pub log_path: &'a Path,
    /// The driver's (and so the browser's) `XDG_CONFIG_HOME`: Chromium's crash handler, which
    /// leaves the process group, then writes under the run's state dir and carries it in its
    /// command line instead of writing to the user's home.
    pub config_home: &'a Path,
    /// More environment for the driver and its browsers (e.g. the Vulkan ICD that decides
    /// Firefox's WebGPU adapter).
    pub env: Vec<(OsString, OsString)>,
}

/// How long a driver gets to answer `/status` after spawning.
const READY_TIMEOUT: Duration = Duration::from_secs(15);

/// How the driver process is held.
enum Child {
    /// A plain child process (no PID namespaces here).
    Plain(tokio::process::Child),
    /// The driver under its own init; the handle is the init.
    Supervised(pidns::Supervised),
}

/// A running driver process (chromedriver or geckodriver) we started.
pub struct DriverProcess {
    child: Child,
    /// Its identity: the init of its PID namespace when supervised, else the driver itself.
    /// Either way it leads the process group that the driver and its browsers are in.
    pub id: ProcId,
    /// Loopback port.
    pub port: u16,
    /// `http://127.0.0.1:<port>`.
    pub url: String,
}

/// A free TCP port on 127.0.0.1 (bound then released; the driver binds it right after).
pub fn free_port() -> std::io::Result<u16> {
    let l = std::net::TcpListener::bind(("127.0.0.1", 0))?;
    Ok(l.local_addr()?.port())
}

impl DriverProcess {
    /// Spawns the driver and waits until it answers `/status` with `ready: true`.
    pub async fn spawn(spec: &DriverSpec<'_>) -> Result<DriverProcess, OpError> {
        let name = spec.kind.driver_name();
        let launch = |m: String| OpError::new(FailureClass::LaunchFailure, m);
        let log_path = spec.log_path;
        let mut last_err = String::new();
        for _attempt in 0..3 {
            let port = free_port().map_err(|e| launch(format!("no free loopback port: {e}")))?;
            let (args, log) = match spec.kind {
                BrowserKind::Chromium => {
                    (vec![format!("--port={port}"), format!("--log-path={}", log_path.display()), "--log-level=WARNING".to_string()], None)
                }
                BrowserKind::Firefox => (
                    // geckodriver logs to stderr only; bound to loopback, it also answers only
                    // requests whose Host header is 127.0.0.1:<port>
                    vec![format!("--port={port}"), "--host=127.0.0.1".to_string(), "--log=warn".to_string()],
                    Some(log_path),
                ),
            };
            let (child, pid) = start(spec, &args, log).map_err(launch)?;
            let id = ProcId::of(pid).ok_or_else(|| launch(format!("{name} exited at once")))?;
            // From here on the process is owned by `d`: if this future is dropped (a stop during
            // start-up), Drop kills its group, so nothing leaks.
            let mut d = DriverProcess { child, id, port, url: format!("http://127.0.0.1:{port}") };
            let started = Instant::now();
            loop {
                if let Some(status) = d.exit_status() {
                    last_err = format!("{name} exited with {status} before answering (port {port}; see {})", log_path.display());
                    break;
                }
                if driver_ready(port).await {
                    return Ok(d);
                }
                if started.elapsed() > READY_TIMEOUT {
                    d.kill().await;
                    return Err(launch(format!("{name} did not answer on port {port} within {READY_TIMEOUT:?}")));
                }
                tokio::time::sleep(Duration::from_millis(25)).await;
            }
        }
        Err(launch(last_err))
    }

    /// Whether the process is still running (for a supervised driver: its init, which leaves
    /// with the driver).
    pub fn is_running(&mut self) -> bool {
        match &mut self.child {
            Child::Plain(c) => matches!(c.try_wait(), Ok(None)),
            Child::Supervised(s) => s.is_running(),
        }
    }

    /// Whether this driver runs in its own PID namespace (dies with stressctl).
    pub fn is_supervised(&self) -> bool {
        matches!(self.child, Child::Supervised(_))
    }

    /// How the driver ended, once it has (reaping it); None while it runs.
    fn exit_status(&mut self) -> Option<String> {
        match &mut self.child {
            Child::Plain(c) => c.try_wait().ok().flatten().map(|st| st.to_string()),
            Child::Supervised(s) => s.try_wait().map(|st| {
                if libc::WIFEXITED(st) {
                    format!("exit status: {}", libc::WEXITSTATUS(st))
                } else {
                    format!("wait status {st}")
                }
            }),
        }
    }

    /// Kills the driver's process group (the driver and the browsers it started) and reaps it.
    pub async fn kill(&mut self) {
        // group first: browsers live in the driver's group (a supervised driver's init ignores
        // SIGTERM and leaves once the driver has, taking its namespace with it)
        self.id.signal_group(libc::SIGTERM);
        let deadline = Instant::now() + Duration::from_millis(1500);
        while Instant::now() < deadline {
            if !self.is_running() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        self.id.signal_group(libc::SIGKILL);
        self.id.signal(libc::SIGKILL);
        match &mut self.child {
            Child::Plain(c) => {
                let _ = tokio::time::timeout(Duration::from_secs(2), c.wait()).await;
            }
            Child::Supervised(s) => {
                let deadline = Instant::now() + Duration::from_secs(2);
                while s.is_running() && Instant::now() < deadline {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            }
        }
    }

    /// Kills the group at once (force stop).
    pub fn kill_now(&mut self) {
        self.id.signal_group(libc::SIGKILL);
        self.id.signal(libc::SIGKILL);
        let _ = self.is_running();
    }
}

impl Drop for DriverProcess {
    /// A driver is never left behind: dropping it kills its group (a no-op when already reaped,
    /// since only the recorded pid + start time is ever signalled).
    fn drop(&mut self) {
        self.kill_now();
    }
}

/// Starts the driver with `args`: under its own init where PID namespaces are available, else
/// as a plain child in its own process group; inside the installed run cgroup, if any. Returns
/// the handle and the pid to identify (the init's, or the driver's).
fn start(spec: &DriverSpec<'_>, args: &[String], log: Option<&Path>) -> Result<(Child, u32), String> {
    let binary = spec.binary;
    let name = spec.kind.driver_name();
    let cgroup = confine::installed();
    let mut env: Vec<(OsString, OsString)> = vec![("XDG_CONFIG_HOME".into(), spec.config_home.into())];
    env.extend(spec.env.iter().cloned());
    if pidns::available() {
        let mut req = pidns::SpawnRequest {
            program: binary.to_path_buf(),
            args: args.iter().map(Into::into).collect(),
            env: env.clone(),
            cgroup_procs: cgroup.as_ref().map(|c| c.procs_files()).unwrap_or_default(),
            log: log.map(Path::to_path_buf),
        };
        let mut spawned = pidns::spawn(&req);
        if let Err(e @ pidns::SpawnError::Cgroup { .. }) = &spawned {
            // the run's cgroup went away (removed by hand?): a driver unconfined beats no driver
            tracing::warn!(target: "stressctl::browser", "{e}: {name} runs unconfined");
            req.cgroup_procs.clear();
            spawned = pidns::spawn(&req);
        }
        match spawned {
            Ok(s) => {
                let pid = s.pid;
                return Ok((Child::Supervised(s), pid));
            }
            Err(pidns::SpawnError::Unsupported(e)) => {
                tracing::warn!(target: "stressctl::browser", "{e}: {name} runs as a plain child");
            }
            Err(e) => return Err(e.to_string()),
        }
    }
    let (stdout, stderr) = match log {
        Some(p) => {
            let f =
                std::fs::OpenOptions::new().create(true).append(true).open(p).map_err(|e| format!("cannot open {}: {e}", p.display()))?;
            let g = f.try_clone().map_err(|e| format!("cannot open {}: {e}", p.display()))?;
            (Stdio::from(f), Stdio::from(g))
        }
        None => (Stdio::null(), Stdio::null()),
    };
    let mut cmd = tokio::process::Command::new(binary);
    cmd.args(args).envs(env).stdin(Stdio::null()).stdout(stdout).stderr(stderr).process_group(0).kill_on_drop(false);
    let child = cmd.spawn().map_err(|e| format!("cannot start {}: {e}", binary.display()))?;
    let pid = child.id().ok_or_else(|| format!("{name} exited at once"))?;
    if let Some(cg) = &cgroup {
        // before the driver is asked for a browser, so every browser is born inside
        if let Err(e) = cg.join(pid) {
            tracing::warn!(target: "stressctl::browser", pid, "{name} not confined: {e}");
        }
    }
    Ok((Child::Plain(child), pid))
}

/// A minimal GET /status over loopback: true when the driver says it is ready.
pub async fn driver_ready(port: u16) -> bool {
    let fut = async {
        let mut s = tokio::net::TcpStream::connect(("127.0.0.1", port)).await.ok()?;
        // the port in Host: geckodriver rejects a Host header that is not exactly its address
        let req = format!("GET /status HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n");
        s.write_all(req.as_bytes()).await.ok()?;
        // a driver may keep the connection open: read until the answer is in, not to EOF
        let mut buf = Vec::with_capacity(1024);
        let mut chunk = [0u8; 1024];
        loop {
            let n = s.read(&mut chunk).await.ok()?;
            if n == 0 {
                return Some(false);
            }
            buf.extend_from_slice(&chunk[..n]);
            let text = String::from_utf8_lossy(&buf);
            if text.contains("\"ready\":true") {
                return Some(text.starts_with("HTTP/1."));
            }
            if text.contains("\"ready\":false") || buf.len() > 64 * 1024 {
                return Some(false);
            }
        }
    };
    matches!(tokio::time::timeout(Duration::from_secs(2), fut).await, Ok(Some(true)))
}

/// The path a permanently broken driver is "restarted" from (for `kill_driver permanent`).
pub fn broken_binary_path(worker: &str, kind: BrowserKind) -> PathBuf {
    PathBuf::from(format!("/nonexistent/stressctl-fault-injected/{worker}/{}", kind.driver_name()))
}

/// Where a driver binary given as a bare name lives: `PATH` first, then cargo's bin directory
/// (`$CARGO_HOME/bin`, `~/.cargo/bin`), where `cargo install geckodriver` puts it and which a
/// root shell's `PATH` often lacks. A path with a `/` is taken as it is.
pub fn resolve_binary(p: &Path) -> Option<PathBuf> {
    let is_exec = |c: &Path| {
        use std::os::unix::fs::PermissionsExt;
        std::fs::metadata(c).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    };
    if p.as_os_str().is_empty() {
        return None;
    }
    if p.components().count() > 1 || p.is_absolute() {
        return is_exec(p).then(|| p.to_path_buf());
    }
    let mut dirs: Vec<PathBuf> = std::env::var_os("PATH").map(|v| std::env::split_paths(&v).collect()).unwrap_or_default();
    if let Some(c) = std::env::var_os("CARGO_HOME") {
        dirs.push(PathBuf::from(c).join("bin"));
    }
    if let Some(h) = std::env::var_os("HOME") {
        dirs.push(PathBuf::from(h).join(".cargo/bin"));
    }
    dirs.into_iter().map(|d| d.join(p)).find(|c| is_exec(c))
}
