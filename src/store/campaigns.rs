//! The campaign row, and which campaigns a state directory holds.

use super::schema::CAMPAIGN;
use super::{validate_campaign_id, StoreError, StoreReader};
use std::path::{Path, PathBuf};

/// The campaign row.
#[derive(Debug, Clone)]
pub struct CampaignInfo {
    /// Id.
    pub id: String,
    /// Profile.
    pub profile: String,
    /// Config source.
    pub config_source: String,
    /// Config text.
    pub config_text: String,
    /// RFC 3339.
    pub started_at: String,
    /// RFC 3339, when ended.
    pub ended_at: Option<String>,
    /// Outcome, when ended.
    pub outcome: Option<String>,
    /// Why it stopped.
    pub stop_reason: Option<String>,
    /// Reports directory.
    pub output_dir: PathBuf,
    /// Times resumed.
    pub resumes: u32,
}

impl StoreReader {
    /// The campaign row.
    pub fn campaign(&self) -> Result<CampaignInfo, StoreError> {
        let mut out = None;
        self.scan(&CAMPAIGN, "LIMIT 1", &[], |r| {
            out = Some(CampaignInfo {
                id: r.get(1)?,
                profile: r.get(2)?,
                config_source: r.get(3)?,
                config_text: r.get(4)?,
                started_at: r.get(5)?,
                ended_at: r.get(6)?,
                outcome: r.get(7)?,
                stop_reason: r.get(8)?,
                output_dir: PathBuf::from(r.get::<_, String>(9)?),
                resumes: r.get(10)?,
            });
            Ok(())
        })?;
        out.ok_or_else(|| self.corrupt("table campaign: no campaign row".into()))
    }
}

/// Lists campaign ids that have a store under `state_dir`, oldest first (ids sort by time).
/// Directory names that are not valid campaign ids are left out.
pub fn list_campaigns(state_dir: &Path) -> Vec<String> {
    let mut ids: Vec<String> = std::fs::read_dir(state_dir.join("runs"))
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .filter(|e| e.path().join("store.sqlite").exists())
                .filter_map(|e| e.file_name().into_string().ok())
                .filter(|id| validate_campaign_id(id).is_ok())
                .collect()
        })
        .unwrap_or_default();
    ids.sort();
    ids
}
