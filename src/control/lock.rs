//! The run lock: `<state-dir>/stressctl.lock` names the running campaign (pid + start time,
//! campaign id, control socket). A second `launch` is refused while its holder lives; a lock left
//! by a dead process is detected, reported and cleared.

use crate::procfs::{is_same_process, process_start_time};
use serde::{Deserialize, Serialize};
use std::io::Write;
use std::path::{Path, PathBuf};

/// What the lock file says.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LockInfo {
    /// Daemon pid.
    pub pid: u32,
    /// Its start time (clock ticks since boot): identity across pid reuse.
    pub start_time: u64,
    /// The campaign it runs.
    pub campaign_id: String,
    /// RFC 3339 UTC.
    pub started_at: String,
    /// Its control socket.
    pub socket: PathBuf,
}

impl LockInfo {
    /// Whether the process that wrote the lock still runs.
    pub fn holder_alive(&self) -> bool {
        is_same_process(self.pid, self.start_time)
    }
}

/// Lock errors.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    /// Another campaign runs.
    #[error("campaign {} is already running (pid {}, since {}); watch it with `stressctl status`, stop it with `stressctl emergency-stop`", .0.campaign_id, .0.pid, .0.started_at)]
    Busy(LockInfo),
    /// The state dir is not usable.
    #[error("cannot use the lock {path}: {source}")]
    Io {
        /// Path.
        path: PathBuf,
        /// Error.
        source: std::io::Error,
    },
}

/// The lock file path in a state dir.
pub fn lock_path(state_dir: &Path) -> PathBuf {
    state_dir.join("stressctl.lock")
}

/// Reads the lock, if there is one (a damaged lock reads as None).
pub fn read(state_dir: &Path) -> Option<LockInfo> {
    let text = std::fs::read_to_string(lock_path(state_dir)).ok()?;
    serde_json::from_str(&text).ok()
}

/// A held lock; removed on drop.
#[derive(Debug)]
pub struct RunLock {
    path: PathBuf,
    /// What it says.
    pub info: LockInfo,
}

impl RunLock {
    /// Takes the lock for `campaign_id`. A stale lock (its process is gone) is removed, and
    /// reported through the returned note.
    pub fn acquire(state_dir: &Path, campaign_id: &str, socket: &Path) -> Result<(RunLock, Option<String>), LockError> {
        let path = lock_path(state_dir);
        let io = |source| LockError::Io { path: path.clone(), source };
        std::fs::create_dir_all(state_dir).map_err(io)?;
        let pid = std::process::id();
        let info = LockInfo {
            pid,
            start_time: process_start_time(pid).unwrap_or(0),
            campaign_id: campaign_id.to_string(),
            started_at: crate::fmt::rfc3339(std::time::SystemTime::now()),
            socket: socket.to_path_buf(),
        };
        let mut note = None;
        for _ in 0..3 {
            match std::fs::OpenOptions::new().write(true).create_new(true).open(&path) {
                Ok(mut f) => {
                    let text = serde_json::to_string_pretty(&info).unwrap_or_default();
                    f.write_all(text.as_bytes()).and_then(|_| f.sync_all()).map_err(io)?;
                    return Ok((RunLock { path, info }, note));
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => match read(state_dir) {
                    Some(other) if other.holder_alive() => return Err(LockError::Busy(other)),
                    other => {
                        let what = match &other {
                            Some(o) => format!("campaign {} (pid {} is no longer running)", o.campaign_id, o.pid),
                            None => "an unreadable lock".to_string(),
                        };
                        note = Some(format!("removed a stale lock {} left by {what}", path.display()));
                        // only remove it if it is still the stale one we read
                        if read(state_dir) == other {
                            let _ = std::fs::remove_file(&path);
                            if let Some(o) = &other {
                                let _ = std::fs::remove_file(&o.socket);
                            }
                        }
                    }
                },
                Err(e) => return Err(io(e)),
            }
        }
        Err(io(std::io::Error::other("the lock kept reappearing; another launch is starting")))
    }
}

impl Drop for RunLock {
    fn drop(&mut self) {
        if read(self.path.parent().unwrap_or(Path::new("."))).as_ref() == Some(&self.info) {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn second_acquire_is_refused_and_stale_lock_is_cleared() {
        let dir = tempfile::tempdir().unwrap();
        let sock = dir.path().join("control.sock");
        let (lock, note) = RunLock::acquire(dir.path(), "c1", &sock).unwrap();
        assert!(note.is_none());
        match RunLock::acquire(dir.path(), "c2", &sock) {
            Err(LockError::Busy(info)) => {
                assert_eq!(info.campaign_id, "c1");
                let msg = LockError::Busy(info).to_string();
                assert!(msg.contains("c1") && msg.contains("emergency-stop"), "{msg}");
            }
            other => panic!("expected Busy, got {other:?}"),
        }
        drop(lock);
        assert!(read(dir.path()).is_none(), "lock removed on drop");
        // a lock from a process that is gone: start time that cannot match
        let stale =
            LockInfo { pid: std::process::id(), start_time: 1, campaign_id: "dead".into(), started_at: "x".into(), socket: sock.clone() };
        std::fs::write(lock_path(dir.path()), serde_json::to_string(&stale).unwrap()).unwrap();
        let (_lock, note) = RunLock::acquire(dir.path(), "c3", &sock).unwrap();
        assert!(note.unwrap().contains("dead"));
        assert_eq!(read(dir.path()).unwrap().campaign_id, "c3");
    }
}
