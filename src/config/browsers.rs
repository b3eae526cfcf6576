//! The browser matrix: which browser a worker drives, which WebGPU adapter it asks for, and
//! which browser a task or model type prefers (`[browser_preference]`).
//!
//! These are small closed sets written as strings in TOML; serde rejects an unknown value with
//! the allowed ones named (`unknown variant "safari", expected "chromium" or "firefox"`), and
//! the parse error carries the key's line, so a typo exits 2 before anything starts.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// A browser stressctl can drive. Each has its own driver (chromedriver, geckodriver), its own
/// breaker (`browser:<name>`), and its own rows in the report.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum BrowserKind {
    /// Chromium through chromedriver: one driver serves every session of a worker.
    #[default]
    Chromium,
    /// Firefox (ESR) through geckodriver: geckodriver serves one session at a time, so a
    /// managed Firefox worker runs one geckodriver per session.
    Firefox,
}

impl BrowserKind {
    /// Every kind, in report order.
    pub const ALL: [BrowserKind; 2] = [BrowserKind::Chromium, BrowserKind::Firefox];

    /// The name used in config, breaker keys (`browser:<name>`) and reports.
    pub fn as_str(self) -> &'static str {
        match self {
            BrowserKind::Chromium => "chromium",
            BrowserKind::Firefox => "firefox",
        }
    }

    /// The driver's name, for logs and the process table.
    pub fn driver_name(self) -> &'static str {
        match self {
            BrowserKind::Chromium => "chromedriver",
            BrowserKind::Firefox => "geckodriver",
        }
    }

    /// Parses a name as written in config (`chromium`, `firefox`).
    pub fn parse(s: &str) -> Option<BrowserKind> {
        BrowserKind::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

impl std::fmt::Display for BrowserKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Which WebGPU adapter a browser is launched to use.
///
/// A stress result means little without knowing whether the GPU or a CPU emulation did the
/// work, so the choice is explicit and the report always names the kind it got.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum AdapterChoice {
    /// A CPU implementation: SwiftShader in Chromium, Mesa's lavapipe in Firefox. Works on any
    /// machine, so it is the default and what the quick profile runs.
    #[default]
    Software,
    /// The machine's GPU; an op that gets no adapter, or a software one, fails as `gpu_error`
    /// ("no hardware WebGPU adapter") instead of silently measuring the CPU.
    Hardware,
    /// Hardware when the first session of a worker finds one, software otherwise; the report
    /// says which was used.
    Auto,
}

impl AdapterChoice {
    /// The name as written in config.
    pub fn as_str(self) -> &'static str {
        match self {
            AdapterChoice::Software => "software",
            AdapterChoice::Hardware => "hardware",
            AdapterChoice::Auto => "auto",
        }
    }
}

/// The keys `[browser_preference]` accepts: task kinds and model types.
pub const PREFERENCE_KEYS: &[&str] = &["webgpu", "webnn", "page", "model", "text", "vision", "audio"];

/// `[browser_preference]`: for a task kind or model type, the browsers to place its sessions on,
/// best first. Placement follows the list while the preferred browser's breaker is closed and
/// a worker of that browser is configured; a key that is absent spreads sessions over all
/// workers.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct BrowserPreference(pub BTreeMap<String, Vec<BrowserKind>>);

impl Default for BrowserPreference {
    /// The seeds' defaults: vision models on Chromium, audio on Firefox, text on Chromium
    /// (where WebNN is likeliest). Each list ends with the other browser, so a preference never
    /// strands sessions when its browser's breaker opens.
    fn default() -> Self {
        use BrowserKind::{Chromium, Firefox};
        let m = [("vision", vec![Chromium, Firefox]), ("audio", vec![Firefox, Chromium]), ("text", vec![Chromium, Firefox])]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect();
        BrowserPreference(m)
    }
}

impl BrowserPreference {
    /// The ordered browsers for `key` (a model type first, then the task kind), if any.
    pub fn for_keys(&self, keys: &[&str]) -> Option<&[BrowserKind]> {
        keys.iter().find_map(|k| self.0.get(*k)).map(Vec::as_slice)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for k in BrowserKind::ALL {
            assert_eq!(BrowserKind::parse(k.as_str()), Some(k));
        }
        assert_eq!(BrowserKind::parse("safari"), None);
    }

    #[test]
    fn preference_prefers_the_first_key_present() {
        let p = BrowserPreference::default();
        assert_eq!(p.for_keys(&["audio", "model"]), Some(&[BrowserKind::Firefox, BrowserKind::Chromium][..]));
        assert_eq!(p.for_keys(&["webgpu"]), None);
    }
}
