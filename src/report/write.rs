//! Writing the reports directory: the phase files, `campaign_report.json`, `summary.txt`,
//! `report.html`, `junit.xml`, `summary.md`, and `events.jsonl` rebuilt from the store.

use super::atomic::write_atomic;
use super::campaign::CampaignReport;
use super::html;
use super::junit::{render_junit, JUNIT_FILE};
use super::markdown::{render_summary_md, SUMMARY_MD_FILE};
use super::phase::PhaseReport;
use super::summary::render_summary;
use crate::store::{StoreError, StoreReader};
use serde::Serialize;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

/// File name of the campaign report.
pub const CAMPAIGN_REPORT_FILE: &str = "campaign_report.json";

/// File name of the human-readable summary.
pub const SUMMARY_FILE: &str = "summary.txt";

/// File name of the event log (one JSON object per line, appended by the run, rebuilt by `report`).
pub const EVENTS_FILE: &str = "events.jsonl";

/// `phase_NN_name.json`: NN is `idx + 1` on two digits, the name reduced to `[A-Za-z0-9_-]`.
pub fn phase_file_name(idx: u32, name: &str) -> String {
    let mut clean: String = name.chars().map(|c| if c.is_ascii_alphanumeric() || c == '_' || c == '-' { c } else { '_' }).collect();
    if clean.is_empty() {
        clean.push_str("phase");
    }
    format!("phase_{:02}_{clean}.json", u64::from(idx) + 1)
}

/// Pretty JSON with a trailing newline, as every JSON report file is written.
fn pretty<T: Serialize>(v: &T) -> std::io::Result<Vec<u8>> {
    let mut bytes = serde_json::to_vec_pretty(v).map_err(std::io::Error::other)?;
    bytes.push(b'\n');
    Ok(bytes)
}

/// Writes `phase_NN_name.json` (pretty JSON and a trailing newline) atomically; returns its path.
pub fn write_phase_report(dir: &Path, p: &PhaseReport) -> std::io::Result<PathBuf> {
    write_atomic(dir, &phase_file_name(p.index, &p.name), &pretty(p)?)
}

/// Writes `campaign_report.json`, `summary.txt`, `report.html`, `junit.xml`, `summary.md` and every
/// phase file from `c.phases` (so a rebuild reproduces them), each atomically.
pub fn write_campaign_reports(dir: &Path, c: &CampaignReport) -> std::io::Result<()> {
    for p in &c.phases {
        write_phase_report(dir, p)?;
    }
    write_atomic(dir, CAMPAIGN_REPORT_FILE, &pretty(c)?)?;
    write_atomic(dir, SUMMARY_FILE, render_summary(c).as_bytes())?;
    write_atomic(dir, JUNIT_FILE, render_junit(c)?.as_bytes())?;
    write_atomic(dir, SUMMARY_MD_FILE, render_summary_md(c).as_bytes())?;
    html::write(dir, c)?;
    Ok(())
}

/// Why reports could not be rebuilt: the store (see [`StoreError::is_bad_input`] for the exit
/// code), or the reports directory.
#[derive(Debug, thiserror::Error)]
pub enum RebuildError {
    /// The store could not be read, or is damaged.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A file could not be written.
    #[error("cannot write the reports to {}: {source}", dir.display())]
    Write {
        /// The reports directory.
        dir: PathBuf,
        /// The error.
        source: std::io::Error,
    },
}

/// Writes `events.jsonl` from the store, byte-identical to the file the run appended (same line
/// for each stored event, see [`crate::store::event_jsonl_line`]), atomically: it is streamed to a
/// temporary file that replaces the old one only when every event was read and verified.
///
/// Never call it for a campaign that is running: its writer appends to the file it has open, which
/// the rename would replace.
pub fn write_events_jsonl(dir: &Path, r: &StoreReader) -> Result<PathBuf, RebuildError> {
    let werr = |source| RebuildError::Write { dir: dir.to_path_buf(), source };
    std::fs::create_dir_all(dir).map_err(werr)?;
    let path = dir.join(EVENTS_FILE);
    let tmp = dir.join(format!(".{EVENTS_FILE}.tmp-{}", std::process::id()));
    let res = (|| {
        let mut w = BufWriter::new(std::fs::File::create(&tmp).map_err(werr)?);
        let mut failed = None;
        r.for_each_event_line(|line| {
            if failed.is_none() {
                if let Err(e) = writeln!(w, "{line}") {
                    failed = Some(e);
                }
            }
        })?;
        if let Some(e) = failed {
            return Err(werr(e));
        }
        let f = w.into_inner().map_err(|e| werr(e.into_error()))?;
        f.sync_all().map_err(werr)?;
        std::fs::rename(&tmp, &path).map_err(werr)
    })();
    if res.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    res.map(|_| path)
}
