//! `launch --detach`: the campaign re-runs itself in the background, in its own session (no
//! controlling terminal, so closing the terminal sends it no SIGHUP), with its output in the log
//! directory; the foreground process returns once the background one holds the run lock.

use super::lock;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::time::{Duration, Instant};

/// How long the foreground waits for the background campaign to take the lock.
const START_TIMEOUT: Duration = Duration::from_secs(20);

/// How a detach attempt ended.
pub enum Detached {
    /// The background campaign runs with this pid; its output goes to `log`.
    Running {
        /// Its pid.
        pid: u32,
        /// Its stdout/stderr file.
        log: std::path::PathBuf,
    },
    /// It exited at once with this code; what it printed is in `output`.
    Exited {
        /// Its exit code.
        code: u8,
        /// What it printed.
        output: String,
    },
}

/// Errors of [`detach`].
#[derive(Debug, thiserror::Error)]
pub enum DetachError {
    /// The output file could not be created.
    #[error("cannot create {path}: {source}")]
    Output {
        /// The file.
        path: std::path::PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The background process could not be started.
    #[error("cannot start the background campaign: {0}")]
    Spawn(std::io::Error),
    /// It did not take the lock in time.
    #[error("the background campaign did not start within {}s; see {}", START_TIMEOUT.as_secs(), .0.display())]
    Timeout(std::path::PathBuf),
}

/// Starts this command line again without `--detach` and with `--campaign-id id`, in a new
/// session, and waits until it holds the lock in `state_dir`.
pub fn detach(log_dir: &Path, state_dir: &Path, id: &str) -> Result<Detached, DetachError> {
    let out_path = log_dir.join(format!("daemon_{id}.log"));
    let out = std::fs::File::create(&out_path).map_err(|source| DetachError::Output { path: out_path.clone(), source })?;
    let err = out.try_clone().map_err(|source| DetachError::Output { path: out_path.clone(), source })?;
    let exe = std::env::current_exe().unwrap_or_else(|_| "stressctl".into());
    let mut args: Vec<String> = std::env::args().skip(1).filter(|a| a != "--detach").collect();
    args.push("--campaign-id".into());
    args.push(id.to_string());
    let mut cmd = std::process::Command::new(exe);
    cmd.args(&args).stdin(std::process::Stdio::null()).stdout(out).stderr(err);
    // SAFETY: setsid is async-signal-safe; the child leaves the terminal's session so a Ctrl-C in
    // this terminal does not reach it.
    unsafe {
        cmd.pre_exec(|| {
            libc::setsid();
            Ok(())
        });
    }
    let mut child = cmd.spawn().map_err(DetachError::Spawn)?;
    let deadline = Instant::now() + START_TIMEOUT;
    while Instant::now() < deadline {
        if let Ok(Some(status)) = child.try_wait() {
            let output = std::fs::read_to_string(&out_path).unwrap_or_default();
            return Ok(Detached::Exited { code: status.code().map(|c| c as u8).unwrap_or(1), output });
        }
        if lock::read(state_dir).is_some_and(|l| l.campaign_id == id) {
            return Ok(Detached::Running { pid: child.id(), log: out_path });
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Err(DetachError::Timeout(out_path))
}
