//! How a browser is launched to get the WebGPU adapter asked for.
//!
//! - Chromium: `--use-webgpu-adapter=swiftshader` gives SwiftShader; the hardware adapter needs
//!   `--use-webgpu-adapter=default --enable-gpu --use-angle=vulkan --disable-vulkan-surface`
//!   (headless Chromium otherwise silently stays on SwiftShader or finds no adapter; established
//!   on an NVIDIA H100, see `shared/GPU.md`).
//! - Firefox: WebGPU runs on Vulkan, and the Vulkan loader uses the drivers (ICDs) listed in
//!   `VK_ICD_FILENAMES`. Software is Mesa's lavapipe alone; hardware is every installed ICD but
//!   lavapipe, so a machine without a GPU gets no adapter at all instead of a CPU one
//!   pretending.
//!
//! Whatever the launch, the page checks what it got (`isFallbackAdapter`, SwiftShader/llvmpipe
//! names) and fails a hardware op that landed on a software adapter.

use crate::config::{AdapterChoice, BrowserKind};
use std::ffi::OsString;
use std::path::{Path, PathBuf};

/// A settled adapter: what a browser is launched for (`auto` becomes one of these per worker).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AdapterMode {
    /// SwiftShader / lavapipe.
    Software,
    /// The machine's GPU.
    Hardware,
}

impl AdapterMode {
    /// The name the page and the report use (`adapter.kind`).
    pub fn as_str(self) -> &'static str {
        match self {
            AdapterMode::Software => "software",
            AdapterMode::Hardware => "hardware",
        }
    }

    /// The mode to try first for a choice (`auto` tries hardware first).
    pub fn first_for(choice: AdapterChoice) -> AdapterMode {
        match choice {
            AdapterChoice::Software => AdapterMode::Software,
            AdapterChoice::Hardware | AdapterChoice::Auto => AdapterMode::Hardware,
        }
    }

    /// Chromium's adapter flags for this mode.
    pub fn chromium_flags(self) -> &'static [&'static str] {
        match self {
            AdapterMode::Software => &["--use-webgpu-adapter=swiftshader"],
            AdapterMode::Hardware => &["--use-webgpu-adapter=default", "--enable-gpu", "--use-angle=vulkan", "--disable-vulkan-surface"],
        }
    }

    /// The environment that makes Firefox's WebGPU use this mode's Vulkan drivers, from the
    /// ICD files installed in `icd_dir` (normally `/usr/share/vulkan/icd.d`).
    pub fn firefox_env(self, icd_dir: &Path) -> Vec<(OsString, OsString)> {
        let (lavapipe, others) = icd_files(icd_dir);
        let files = match self {
            AdapterMode::Software => lavapipe,
            AdapterMode::Hardware => others,
        };
        // An empty list must still be set: unset, the loader would find lavapipe by itself.
        let value = if files.is_empty() {
            icd_dir.join("stressctl-no-such-icd.json").into_os_string()
        } else {
            std::env::join_paths(&files).unwrap_or_default()
        };
        vec![("VK_ICD_FILENAMES".into(), value.clone()), ("VK_DRIVER_FILES".into(), value)]
    }
}

/// The standard directory of Vulkan ICD manifests.
pub const ICD_DIR: &str = "/usr/share/vulkan/icd.d";

/// The ICD manifests in `dir`, split into (lavapipe, the rest). lavapipe's manifest is
/// `lvp_icd.<arch>.json` in Mesa's packages.
pub fn icd_files(dir: &Path) -> (Vec<PathBuf>, Vec<PathBuf>) {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|rd| rd.filter_map(Result::ok).map(|e| e.path()).filter(|p| p.extension().is_some_and(|x| x == "json")).collect())
        .unwrap_or_default();
    files.sort();
    files.into_iter().partition(|p| p.file_name().is_some_and(|n| n.to_string_lossy().starts_with("lvp_icd")))
}

/// The adapter class of a page's adapter report (`hardware:<class>` breakers): `swiftshader`
/// (Chromium's software adapter), `lavapipe` (Firefox's: Mesa's lavapipe is the only software
/// ICD it is given), `nvidia`, `amd`, `intel`, `other` (a GPU it cannot name), or `none` (no
/// adapter). Firefox leaves the adapter's info strings empty, so the launch (`kind`) and
/// Chromium's `chrome://gpu` name (`gpu_name`) count as much as the strings.
pub fn hardware_class(browser: BrowserKind, adapter: &serde_json::Value) -> &'static str {
    if adapter.is_null() {
        return "none";
    }
    let text = |k: &str| adapter.get(k).and_then(serde_json::Value::as_str).unwrap_or("").to_ascii_lowercase();
    let names = ["vendor", "architecture", "device", "description", "gpu_name"].map(text).join(" ");
    let software = adapter.get("kind").and_then(serde_json::Value::as_str) == Some("software")
        || adapter.get("software_signals").and_then(serde_json::Value::as_bool) == Some(true);
    if names.contains("swiftshader") {
        return "swiftshader";
    }
    if names.contains("llvmpipe") || names.contains("lavapipe") {
        return "lavapipe";
    }
    if software {
        return match browser {
            BrowserKind::Chromium => "swiftshader",
            BrowserKind::Firefox => "lavapipe",
        };
    }
    if names.contains("nvidia") {
        "nvidia"
    } else if names.contains("amd") || names.contains("radeon") || names.contains("ati technologies") {
        "amd"
    } else if names.contains("intel") {
        "intel"
    } else {
        "other"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hardware_classes_from_adapter_reports() {
        use serde_json::json;
        let c = |b, v| hardware_class(b, &v);
        assert_eq!(c(BrowserKind::Chromium, json!({"kind": "software", "vendor": "google", "architecture": "swiftshader"})), "swiftshader");
        // Firefox exposes no strings: the software launch is lavapipe
        assert_eq!(c(BrowserKind::Firefox, json!({"kind": "software", "vendor": null})), "lavapipe");
        assert_eq!(c(BrowserKind::Chromium, json!({"kind": "hardware", "vendor": "nvidia", "architecture": "hopper"})), "nvidia");
        assert_eq!(c(BrowserKind::Chromium, json!({"kind": "hardware", "gpu_name": "ANGLE (AMD, Radeon RX 7900)"})), "amd");
        assert_eq!(c(BrowserKind::Chromium, json!({"kind": "hardware", "description": "Intel(R) Arc(tm)"})), "intel");
        assert_eq!(c(BrowserKind::Firefox, json!({"kind": "hardware"})), "other");
        assert_eq!(c(BrowserKind::Firefox, json!({"kind": "hardware", "description": "llvmpipe (LLVM 15)"})), "lavapipe");
        assert_eq!(c(BrowserKind::Chromium, serde_json::Value::Null), "none");
    }

    #[test]
    fn firefox_env_splits_lavapipe_from_the_rest() {
        let dir = tempfile::tempdir().unwrap();
        for f in ["lvp_icd.x86_64.json", "radeon_icd.x86_64.json", "nvidia_icd.json", "README"] {
            std::fs::write(dir.path().join(f), "{}").unwrap();
        }
        let sw = AdapterMode::Software.firefox_env(dir.path());
        assert_eq!(sw[0].1, dir.path().join("lvp_icd.x86_64.json").into_os_string());
        let hw = AdapterMode::Hardware.firefox_env(dir.path());
        let hw = hw[0].1.to_string_lossy().into_owned();
        assert!(hw.contains("nvidia_icd.json") && hw.contains("radeon_icd") && !hw.contains("lvp_icd"), "{hw}");
        // no driver of the kind asked for: a list naming none, never the loader's own search
        let empty = tempfile::tempdir().unwrap();
        let hw = AdapterMode::Hardware.firefox_env(empty.path());
        assert!(hw[0].1.to_string_lossy().ends_with("stressctl-no-such-icd.json"));
    }

    #[test]
    fn auto_tries_hardware_first() {
        assert_eq!(AdapterMode::first_for(AdapterChoice::Auto), AdapterMode::Hardware);
        assert_eq!(AdapterMode::first_for(AdapterChoice::Software), AdapterMode::Software);
        assert!(AdapterMode::Hardware.chromium_flags().contains(&"--disable-vulkan-surface"));
    }
}
