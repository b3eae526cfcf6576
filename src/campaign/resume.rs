//! Resuming a campaign whose process died, and reaping what it left behind.

use crate::browser::process::{group_members_with_marker, ProcId};
use crate::config::Config;
use crate::store::{self, StoreError, StoreReader};
use rusqlite::params;
use std::path::Path;
use std::time::Duration;

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
    // Chromium names its profile in `--user-data-dir=`, Firefox after `-profile`: the path alone
    let marker = state_dir.join("runs").join(id).join("profiles").display().to_string();
    let mut out = Reaped::default();
    let mut ended = Vec::new();
    for p in &procs {
        let id = ProcId { pid: p.pid, start_time: p.start_time };
        if id.alive() {
            if p.kind == "chromedriver" || p.kind == "geckodriver" {
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

/// Deletes through each Grid hub of dead campaign `id`'s config the sessions the campaign left
/// there when it died (`kill -9`, power loss): the ids its `grid_session_opened` events recorded,
/// and the sessions whose Chromium profile on the node names the run (see
/// [`Grid::reap_run`](crate::browser::grid::Grid::reap_run)) — so nothing waits for the node's
/// session timeout, and the slots are free for the next run. Returns `(worker, deleted)` for each
/// Grid worker that had something deleted. A hub that does not answer, or a store that cannot be
/// read, leaves nothing deleted (said in the log): the node's own timeout remains.
pub async fn reap_grid_sessions(state_dir: &Path, id: &str) -> Vec<(String, usize)> {
    let Ok(reader) = StoreReader::open_campaign(state_dir, id) else { return Vec::new() };
    let Ok(cfg) = reader
        .campaign()
        .map_err(|e| e.to_string())
        .and_then(|c| Config::parse(&c.config_text, &c.config_source).map_err(|e| e.to_string()))
    else {
        return Vec::new();
    };
    let remote: Vec<(&str, &str)> = cfg
        .workers
        .iter()
        .filter_map(|w| match &w.endpoint {
            crate::config::WorkerEndpoint::Remote(url) => Some((w.id.as_str(), url.as_str())),
            crate::config::WorkerEndpoint::Managed => None,
        })
        .collect();
    if remote.is_empty() {
        return Vec::new();
    }
    let mut recorded = std::collections::HashSet::new();
    let read = reader.for_each_event(None, &["grid_session_opened"], |e| {
        if let Ok((_, crate::events::Event::GridSessionOpened { session, .. })) = crate::events::EventRecord::from_stored(&e) {
            recorded.insert(session);
        }
    });
    if let Err(e) = read {
        tracing::warn!(target: "stressctl::campaign", campaign = %id, "cannot read the Grid sessions it recorded: {e}");
    }
    drop(reader);
    let run = crate::browser::grid_status::run_tag(&state_dir.join("runs").join(id).join("profiles"));
    let mut out = Vec::new();
    for (worker, url) in remote {
        match crate::browser::grid::Grid::detect(worker, url).await {
            Ok(g) => {
                let n = g.reap_run(&run, &recorded).await;
                if n > 0 {
                    out.push((worker.to_string(), n));
                }
            }
            Err(e) => tracing::debug!(target: "stressctl::campaign", campaign = %id, worker, "no Grid sessions reaped: {e}"),
        }
    }
    out
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

/// Where a resumed campaign picks up.
#[derive(Clone, Debug, PartialEq)]
pub struct ResumePoint {
    /// First phase to run.
    pub phase: usize,
    /// How far that phase had run before the interruption (it continues for the rest).
    pub elapsed: Duration,
    /// The reason recorded in the report.
    pub note: String,
}

/// Why a campaign cannot be resumed.
#[derive(Debug, thiserror::Error)]
pub enum ResumeError {
    /// Its store cannot be read (an unknown or invalid id is bad input: see
    /// [`StoreError::is_bad_input`]).
    #[error(transparent)]
    Store(#[from] StoreError),
    /// It ended normally: nothing to resume.
    #[error("campaign {id} already ended ({outcome}); nothing to resume (see its reports in {})", reports.display())]
    Ended {
        /// Campaign id.
        id: String,
        /// Its outcome.
        outcome: String,
        /// Where its reports are.
        reports: std::path::PathBuf,
    },
    /// Its stored config no longer parses (written by another version).
    #[error("the stored config of {id} no longer parses: {detail}")]
    Config {
        /// Campaign id.
        id: String,
        /// The parse error.
        detail: String,
    },
}

impl ResumeError {
    /// True when the id given was unknown or invalid (exit 2).
    pub fn is_bad_input(&self) -> bool {
        matches!(self, ResumeError::Store(e) if e.is_bad_input())
    }
}

/// Finds where campaign `id` stopped. Errors when it ended normally (nothing to resume).
pub fn resume_point(state_dir: &Path, id: &str) -> Result<(Config, ResumePoint), ResumeError> {
    let r = StoreReader::open_campaign(state_dir, id)?;
    let c = r.campaign()?;
    if let Some(o) = &c.outcome {
        return Err(ResumeError::Ended { id: id.to_string(), outcome: o.clone(), reports: c.output_dir.clone() });
    }
    let mut cfg =
        Config::parse(&c.config_text, &c.config_source).map_err(|e| ResumeError::Config { id: id.to_string(), detail: e.to_string() })?;
    cfg.profile = c.profile.clone();
    let phases = r.phases()?;
    let done = phases.iter().take_while(|p| p.status == "completed").count();
    let (phase, elapsed, note) = match phases.get(done) {
        Some(p) => {
            let elapsed = Duration::from_millis(p.elapsed_ms);
            let planned = cfg.phases.get(done).map(|x| x.duration).unwrap_or_default();
            if elapsed + Duration::from_secs(1) >= planned {
                (done + 1, Duration::ZERO, format!("phase {} had reached its planned duration when the campaign process died", p.name))
            } else {
                (
                    done,
                    elapsed,
                    format!(
                        "continued from its checkpoint at {:.1}s of {:.0}s after the campaign process died",
                        elapsed.as_secs_f64(),
                        planned.as_secs_f64()
                    ),
                )
            }
        }
        None => (done, Duration::ZERO, "resumed at the start of the phase".to_string()),
    };
    Ok((cfg, ResumePoint { phase, elapsed, note }))
}
