//! The processes the campaign recorded (drivers and browsers), for reaping what a dead run left.

use super::schema::PROCESSES;
use super::{StoreError, StoreReader};

/// A recorded process.
#[derive(Debug, Clone)]
pub struct ProcessRecord {
    /// Pid.
    pub pid: u32,
    /// Start ticks.
    pub start_time: u64,
    /// Kind.
    pub kind: String,
    /// Worker.
    pub worker: String,
    /// Process group.
    pub pgid: u32,
    /// Marker in its cmdline.
    pub marker: String,
}

impl StoreReader {
    /// Processes recorded and not marked ended.
    pub fn live_processes(&self) -> Result<Vec<ProcessRecord>, StoreError> {
        let mut out = Vec::new();
        let sql = format!("SELECT rowid, {}, crc, ended_at FROM processes", PROCESSES.cols);
        self.scan_sql(&PROCESSES, &sql, &[], |r| {
            if r.get::<_, Option<String>>(9)?.is_none() {
                out.push(ProcessRecord {
                    pid: r.get(1)?,
                    start_time: r.get::<_, i64>(2)? as u64,
                    kind: r.get(3)?,
                    worker: r.get(4)?,
                    pgid: r.get(5)?,
                    marker: r.get(6)?,
                });
            }
            Ok(())
        })?;
        Ok(out)
    }
}
