//! Log files: `monitoring_logs/<component>_<timestamp>.log` for the components `campaign`,
//! `browser`, `tasks` and `guardian`, one line per event, each carrying the campaign id (from the
//! `campaign` span every task runs in). The campaign log is the one to tail: progress, phase
//! results, guardian violations and trips, cooldowns, escalation, recoveries and the verdict; the
//! guardian log has one compact line per sample. Files rotate by size so an overnight run cannot
//! fill the disk.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use tracing_subscriber::filter::{filter_fn, LevelFilter, Targets};
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::Layer;

/// A log file rotates when it reaches this size; `<name>.1` keeps the previous one.
pub const ROTATE_BYTES: u64 = 64 * 1024 * 1024;

/// A size-rotated log file.
#[derive(Clone)]
pub struct RotatingFile {
    inner: Arc<Mutex<Rotating>>,
}

struct Rotating {
    path: PathBuf,
    file: File,
    written: u64,
    limit: u64,
}

impl RotatingFile {
    /// Opens (appends to) `path`, rotating at `limit` bytes.
    pub fn open(path: &Path, limit: u64) -> io::Result<RotatingFile> {
        let file = OpenOptions::new().create(true).append(true).open(path)?;
        let written = file.metadata().map(|m| m.len()).unwrap_or(0);
        Ok(RotatingFile { inner: Arc::new(Mutex::new(Rotating { path: path.to_path_buf(), file, written, limit })) })
    }
}

impl Rotating {
    fn rotate(&mut self) -> io::Result<()> {
        let mut old = self.path.clone().into_os_string();
        old.push(".1");
        std::fs::rename(&self.path, &old)?;
        self.file = OpenOptions::new().create(true).append(true).open(&self.path)?;
        self.written = 0;
        Ok(())
    }
}

/// The writer handed to tracing for one event.
pub struct RotatingWriter(Arc<Mutex<Rotating>>);

impl Write for RotatingWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let mut r = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if r.written + buf.len() as u64 > r.limit && r.written > 0 {
            // a failed rotation keeps writing to the current file rather than losing lines
            let _ = r.rotate();
        }
        let n = r.file.write(buf)?;
        r.written += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).file.flush()
    }
}

impl<'a> MakeWriter<'a> for RotatingFile {
    type Writer = RotatingWriter;
    fn make_writer(&'a self) -> Self::Writer {
        RotatingWriter(self.inner.clone())
    }
}

/// The log files of a run, one per component. `stressctl::guardian` is the target of the
/// guardian's per-sample lines only (the guardian's module logs nothing itself).
pub const COMPONENTS: [&str; 4] = ["campaign", "browser", "tasks", "guardian"];

/// The tracing target of the guardian's per-sample lines (exactly this target: the modules under
/// `stressctl::guardian` log to the campaign file like every other).
pub const GUARDIAN_TARGET: &str = "stressctl::guardian";

/// Which component a tracing target belongs to.
fn component(target: &str) -> &'static str {
    if target.starts_with("stressctl::browser") || target.starts_with("fantoccini") {
        "browser"
    } else if target.starts_with("stressctl::tasks") {
        "tasks"
    } else if target == GUARDIAN_TARGET {
        "guardian"
    } else {
        "campaign"
    }
}

/// Installs the file logging for a run; returns the files. `STRESSCTL_LOG` (e.g. `debug`) sets
/// the level of stressctl's own lines (default `info`). With `stderr`, warnings and errors are
/// also shown on stderr.
pub fn init(log_dir: &Path, stamp: &str, stderr: bool) -> io::Result<Vec<PathBuf>> {
    std::fs::create_dir_all(log_dir)?;
    let level = std::env::var("STRESSCTL_LOG").ok().and_then(|v| v.parse::<LevelFilter>().ok()).unwrap_or(LevelFilter::INFO);
    let targets = Targets::new().with_target("stressctl", level).with_default(LevelFilter::WARN);
    let mut paths = Vec::new();
    let mut layers = Vec::new();
    for name in COMPONENTS {
        let path = log_dir.join(format!("{name}_{stamp}.log"));
        let file = RotatingFile::open(&path, ROTATE_BYTES)?;
        let layer = tracing_subscriber::fmt::layer()
            .with_ansi(false)
            .with_target(false)
            .with_writer(file)
            .with_filter(filter_fn(move |m| m.is_span() || component(m.target()) == name))
            .boxed();
        layers.push(layer);
        paths.push(path);
    }
    let stderr_layer = stderr.then(|| {
        tracing_subscriber::fmt::layer().with_ansi(false).with_target(false).with_writer(io::stderr).with_filter(LevelFilter::WARN).boxed()
    });
    let _ = tracing_subscriber::registry().with(layers).with(stderr_layer).with(targets).try_init();
    Ok(paths)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rotates_at_the_limit_without_losing_lines() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x.log");
        let f = RotatingFile::open(&p, 100).unwrap();
        for i in 0..30 {
            writeln!(f.make_writer(), "line {i:03}").unwrap();
        }
        let cur = std::fs::read_to_string(&p).unwrap();
        let old = std::fs::read_to_string(dir.path().join("x.log.1")).unwrap();
        assert!(cur.len() <= 100 && old.len() <= 100);
        assert!(cur.ends_with("line 029\n"));
        assert!(old.lines().count() + cur.lines().count() >= 9);
    }

    #[test]
    fn routes_targets_to_components() {
        assert_eq!(component("stressctl::browser::pool"), "browser");
        assert_eq!(component("stressctl::tasks"), "tasks");
        assert_eq!(component("stressctl::campaign"), "campaign");
        assert_eq!(component("stressctl::guardian"), "guardian");
    }
}
