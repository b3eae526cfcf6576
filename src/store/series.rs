//! The time series the report's drift analysis reads: op windows gathered into fixed time buckets
//! (counts, GPU errors, the in-page p95 of the bucket's ops) and each local browser's RSS over the
//! guardian's samples. Read in one verified scan each, holding one bucket's in-page values at a
//! time (read from the windows' bytes, never decoded into histograms), so an 8-hour store costs
//! about what its rows cost to read.

use super::reader::bad_value;
use super::{BrowserRss, StoreError, StoreReader};
use crate::metrics::{quantile_of_sorted, recorded_values};
use rusqlite::types::Type;
use std::collections::BTreeMap;

/// The op windows that started in one time bucket.
#[derive(Debug, Clone, PartialEq)]
pub struct WindowBucket {
    /// Bucket start, Unix ms (a multiple of the bucket's length).
    pub start_ms: u64,
    /// Ops attempted.
    pub attempted: u64,
    /// Ops that failed.
    pub failed: u64,
    /// Ops that failed as `gpu_error` (adapter or device lost, validation).
    pub gpu_errors: u64,
    /// The in-page p95 of the bucket's ops, µs (None: no op was timed in the page).
    pub in_page_p95_us: Option<u64>,
}

/// One browser process: pid and start time (a reused pid is another browser).
pub type BrowserKey = (u32, u64);

impl StoreReader {
    /// Phase `phase`'s op windows (every phase's with None) gathered by start time into buckets of
    /// `bucket_ms`, in time order; empty buckets are left out.
    pub fn window_buckets(&self, phase: Option<u32>, bucket_ms: u64) -> Result<Vec<WindowBucket>, StoreError> {
        let bucket_ms = bucket_ms.max(1);
        let windows = self.windows_table();
        let with_in_page = windows.has("hist_in_page");
        let mut out: Vec<WindowBucket> = Vec::new();
        // the bucket's in-page values, read from each window's bytes (no 180 KB histogram each)
        let mut values: Vec<(u64, u64)> = Vec::new();
        let finish = |out: &mut Vec<WindowBucket>, values: &mut Vec<(u64, u64)>| {
            if let Some(last) = out.last_mut() {
                values.sort_unstable();
                last.in_page_p95_us = quantile_of_sorted(values, 0.95);
            }
            values.clear();
        };
        let mut row = |r: &rusqlite::Row<'_>| -> rusqlite::Result<()> {
            let start = (r.get::<_, i64>(6)?.max(0) as u64 / bucket_ms) * bucket_ms;
            if out.last().is_none_or(|b| b.start_ms != start) {
                finish(&mut out, &mut values);
                out.push(WindowBucket { start_ms: start, attempted: 0, failed: 0, gpu_errors: 0, in_page_p95_us: None });
            }
            let errors: String = r.get(12)?;
            let b = out.last_mut().ok_or_else(|| bad_value(6, Type::Integer, "no bucket".into()))?;
            b.attempted += r.get::<_, i64>(8)?.max(0) as u64;
            b.failed += r.get::<_, i64>(10)?.max(0) as u64;
            if errors.contains("gpu_error") {
                let errs: BTreeMap<String, u64> =
                    serde_json::from_str(&errors).map_err(|e| bad_value(12, Type::Text, format!("window errors: {e}")))?;
                b.gpu_errors += errs.get("gpu_error").copied().unwrap_or(0);
            }
            if with_in_page {
                let blob = r.get_ref(14)?.as_blob().map_err(|e| bad_value(14, Type::Blob, e.to_string()))?;
                recorded_values(blob, &mut values).map_err(|e| bad_value(14, Type::Blob, e))?;
            }
            Ok(())
        };
        match phase {
            Some(idx) => {
                let p = i64::from(idx);
                let what = format!("windows of phase {idx}");
                self.scan_complete(windows, "WHERE phase_idx = ?1 ORDER BY start_ms, id", &[&p], &|x, _| x == p, &what, &mut row)?
            }
            None => self.scan_complete(windows, "ORDER BY start_ms, id", &[], &|_, _| true, "windows", &mut row)?,
        }
        finish(&mut out, &mut values);
        Ok(out)
    }

    /// Each local browser's RSS (bytes) over the guardian's samples of phase `phase` (every
    /// sample with None), as `(at_ms, rss)` in time order; empty for a store from before
    /// per-browser RSS was recorded (schema 6).
    pub fn browser_rss(&self, phase: Option<u32>) -> Result<BTreeMap<BrowserKey, Vec<(u64, u64)>>, StoreError> {
        let mut out: BTreeMap<BrowserKey, Vec<(u64, u64)>> = BTreeMap::new();
        let samples = self.samples_table();
        if !samples.has("browsers") {
            return Ok(out);
        }
        let mut row = |r: &rusqlite::Row<'_>| -> rusqlite::Result<()> {
            let text: String = r.get(20)?;
            if text == "[]" {
                return Ok(());
            }
            let at = r.get::<_, i64>(3)?.max(0) as u64;
            for b in BrowserRss::decode(&text).map_err(|e| bad_value(20, Type::Text, format!("browsers: {e}")))? {
                out.entry((b.pid, b.start_time)).or_default().push((at, b.rss_bytes));
            }
            Ok(())
        };
        match phase {
            Some(idx) => {
                let p = i64::from(idx);
                let what = format!("samples of phase {idx}");
                self.scan_complete(samples, "WHERE phase_idx = ?1 ORDER BY at_ms, id", &[&p], &|x, _| x == p, &what, &mut row)?
            }
            None => self.scan_complete(samples, "ORDER BY at_ms, id", &[], &|_, _| true, "samples", &mut row)?,
        }
        Ok(out)
    }
}
