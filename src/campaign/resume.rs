//! Resuming a campaign whose process died, and reaping what it left behind.

use crate::browser::process::{group_members_with_marker, ProcId};
use crate::store::{self, StoreError, StoreReader};
use rusqlite::params;
use std::path::Path;

/// What was found and killed.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Reaped {
    /// Recorded processes still alive (same pid and start time) that were killed.
    pub killed: Vec<u32>,
    /// Recorded processes already gone.
    pub gone: usize,
}

/// Kills the leftover browsers and drivers of campaign `id`: only processes it recorded (pid +
/// start time verified), and browsers in a recorded driver's group whose command line carries this
/// run's profile directory. Marks them ended in the store.
pub fn reap(state_dir: &Path, id: &str) -> Result<Reaped, StoreError> {
    let path = store::store_path(state_dir, id)?;
    let reader = StoreReader::open(&path)?;
    let procs = reader.live_processes()?;
    drop(reader);
    let marker = format!("--user-data-dir={}", state_dir.join("runs").join(id).join("profiles").display());
    let mut out = Reaped::default();
    let mut ended = Vec::new();
    for p in &procs {
        let id = ProcId { pid: p.pid, start_time: p.start_time };
        if id.alive() {
            if p.kind == "chromedriver" {
                id.signal_group(libc::SIGKILL);
            }
            if id.signal(libc::SIGKILL) {
                out.killed.push(p.pid);
            }
        } else {
            out.gone += 1;
        }
        // browsers left in the group of a driver (the group outlives its leader)
        for b in group_members_with_marker(p.pgid, &marker) {
            if b.signal(libc::SIGKILL) {
                out.killed.push(b.pid);
            }
        }
        ended.push((p.pid, p.start_time));
    }
    if !ended.is_empty() {
        let conn = store::open_checked(&path, false)?;
        for (pid, st) in ended {
            conn.execute(
                "UPDATE processes SET ended_at = ?3 WHERE pid = ?1 AND start_time = ?2 AND ended_at IS NULL",
                params![pid, st as i64, store::rfc3339(std::time::SystemTime::now())],
            )
            .map_err(|source| StoreError::Sqlite { path: path.clone(), source })?;
        }
    }
    out.killed.sort_unstable();
    out.killed.dedup();
    Ok(out)
}

/// Campaigns in `state_dir` that never recorded an end (their process died), newest last.
pub fn unfinished(state_dir: &Path) -> Vec<String> {
    store::list_campaigns(state_dir)
        .into_iter()
        .rev()
        .take(50)
        .filter(|id| StoreReader::open_campaign(state_dir, id).and_then(|r| r.campaign()).map(|c| c.outcome.is_none()).unwrap_or(false))
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect()
}
