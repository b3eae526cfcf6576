//! The report files a CI job asks for (`--junit FILE`, `--summary-md FILE`): copies of the
//! reports directory's `junit.xml` and `summary.md`, so they are the same bytes `stressctl report
//! ID` rebuilds; and the Markdown summary appended to GitHub's `$GITHUB_STEP_SUMMARY`.

use super::CliError;
use crate::cli::CiArgs;
use std::io::Write;
use std::path::Path;

/// The environment variable GitHub Actions points at the step's summary file.
pub(super) const GITHUB_STEP_SUMMARY: &str = "GITHUB_STEP_SUMMARY";

/// Copies `report_dir/name` to `to`.
fn copy(report_dir: &Path, name: &str, to: &Path) -> Result<(), CliError> {
    let from = report_dir.join(name);
    let bytes = std::fs::read(&from).map_err(|e| CliError::failed(format!("cannot read {}: {e}", from.display())))?;
    std::fs::write(to, bytes).map_err(|e| CliError::failed(format!("cannot write {}: {e}", to.display())))
}

/// Writes the files `ci` asks for from the reports in `report_dir`; with `step_summary`, appends
/// `summary.md` to `$GITHUB_STEP_SUMMARY` when it is set (GitHub shows it on the run's page).
pub(super) fn write_ci_outputs(report_dir: &Path, ci: &CiArgs, step_summary: bool) -> Result<(), CliError> {
    if let Some(to) = &ci.junit {
        copy(report_dir, crate::report::JUNIT_FILE, to)?;
    }
    if let Some(to) = &ci.summary_md {
        copy(report_dir, crate::report::SUMMARY_MD_FILE, to)?;
    }
    let Some(gh) = std::env::var_os(GITHUB_STEP_SUMMARY).filter(|v| !v.is_empty() && step_summary) else { return Ok(()) };
    let from = report_dir.join(crate::report::SUMMARY_MD_FILE);
    let md = std::fs::read(&from).map_err(|e| CliError::failed(format!("cannot read {}: {e}", from.display())))?;
    let gh = Path::new(&gh);
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(gh)
        .map_err(|e| CliError::failed(format!("cannot append to ${GITHUB_STEP_SUMMARY} ({}): {e}", gh.display())))?;
    f.write_all(&md)
        .and_then(|_| f.write_all(b"\n"))
        .map_err(|e| CliError::failed(format!("cannot append to ${GITHUB_STEP_SUMMARY} ({}): {e}", gh.display())))
}
