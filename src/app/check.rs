//! `stressctl check` / `--check-only`: the pre-flight checklist.

use super::{CliError, EXIT_FAILED, EXIT_OK, EXIT_USAGE};
use crate::campaign::new_campaign_id;
use crate::cli::CommonArgs;
use crate::config::BrowserKind;
use crate::control::lock;
use crate::fmt::say;
use std::path::Path;

fn tool_version(bin: &Path) -> Result<String, String> {
    let Some(bin) = &crate::browser::driver::resolve_binary(bin) else {
        return Err(format!("{} not found (install it with scripts/setup.sh, or set its path in [browser])", bin.display()));
    };
    match std::process::Command::new(bin).arg("--version").output() {
        Ok(o) if o.status.success() => Ok(String::from_utf8_lossy(&o.stdout).lines().next().unwrap_or("").trim().to_string()),
        Ok(o) => Err(format!("`{} --version` exited with {}", bin.display(), o.status)),
        Err(e) => Err(format!("{}: {e} (install it with scripts/setup.sh)", bin.display())),
    }
}

/// `stressctl check` / `--check-only`.
/// With `print_config`, prints the effective config as TOML instead of checking.
pub(super) fn check(common: &CommonArgs, print_config: bool) -> Result<u8, CliError> {
    // a bad config is a checklist line like the others, and exit 2: nothing else is checked
    let cfg = match super::load_config(common) {
        Ok(c) => c,
        Err(e) => {
            crate::fmt::warn(&format!("✗ config: {e}"));
            return Ok(EXIT_USAGE);
        }
    };
    if print_config {
        print!("{}", cfg.text);
        return Ok(EXIT_OK);
    }
    if let Err(e) = super::server_reaches_workers(&cfg) {
        crate::fmt::warn(&format!("✗ server.listen: {}{}", e.message, e.hint.as_deref().map(|h| format!("; {h}")).unwrap_or_default()));
        return Ok(EXIT_USAGE);
    }
    if let Err(e) = super::node_templates_on_grids(&cfg) {
        crate::fmt::warn(&format!("✗ node_metrics: {}{}", e.message, e.hint.as_deref().map(|h| format!("; {h}")).unwrap_or_default()));
        return Ok(EXIT_USAGE);
    }
    let mut ok = true;
    let mut line = |passed: bool, what: &str, detail: String| {
        ok &= passed;
        say(&format!("{} {what:<22} {detail}", if passed { "✓" } else { "✗" }));
    };
    line(
        true,
        "config",
        format!("{} ({} phases, planned {})", cfg.source, cfg.phases.len(), crate::fmt::fmt_duration(cfg.planned_duration())),
    );
    let mut browsers_ok = true;
    if cfg.needs_browser() {
        let b = &cfg.browser;
        let mut tools = Vec::new();
        for kind in cfg.browsers() {
            match kind {
                BrowserKind::Chromium => tools.extend([("chromium", &b.chromium), ("chromedriver", &b.chromedriver)]),
                BrowserKind::Firefox => tools.extend([("firefox", &b.firefox), ("geckodriver", &b.geckodriver)]),
            }
        }
        for (name, bin) in tools {
            match tool_version(bin) {
                Ok(v) => line(true, name, v),
                Err(e) => {
                    browsers_ok = false;
                    line(false, name, e)
                }
            }
        }
    } else {
        line(true, "browsers", "not needed (synthetic tasks only)".into());
    }
    let mut dirs_ok = true;
    for (name, dir) in [("output dir", &common.output_dir), ("log dir", &common.log_dir), ("state dir", &common.state_dir)] {
        match super::ensure_writable(dir) {
            Ok(()) => line(true, name, format!("{} writable", dir.display())),
            Err(e) => {
                dirs_ok = false;
                line(false, name, format!("{}: {e}", dir.display()))
            }
        }
    }
    match lock::read(&common.state_dir) {
        Some(l) if l.holder_alive() => line(false, "no other campaign", format!("campaign {} is running (pid {})", l.campaign_id, l.pid)),
        Some(l) => line(true, "no other campaign", format!("none running (a stale lock of {} will be cleared)", l.campaign_id)),
        None => line(true, "no other campaign", "none running".into()),
    }
    if dirs_ok {
        let id = format!("check-{}", new_campaign_id());
        let profiles = common.state_dir.join("runs").join(&id).join("profiles");
        let probe = match super::runtime() {
            Ok(rt) => rt.block_on(crate::preflight::probe(&cfg, &common.output_dir, &profiles, &common.log_dir, &id)),
            Err(e) => {
                line(false, "runtime", e.to_string());
                crate::preflight::Probe::default()
            }
        };
        let _ = std::fs::remove_dir_all(common.state_dir.join("runs").join(&id));
        for i in &probe.items {
            if i.what == "browser launch" && !browsers_ok {
                continue; // already reported above
            }
            line(i.passed, &i.what, i.detail.clone());
        }
        let dir = common.output_dir.join(&id);
        let path = dir.join("baseline.json");
        let written = std::fs::create_dir_all(&dir)
            .and_then(|_| std::fs::write(&path, serde_json::to_string_pretty(&probe.baseline).unwrap_or_default() + "\n"));
        match written {
            Ok(()) => line(true, "baseline", path.display().to_string()),
            Err(e) => line(false, "baseline", format!("{}: {e}", path.display())),
        }
    }
    if !cfg.notify.is_empty() {
        let sent = super::runtime()
            .map_err(|e| e.to_string())
            .and_then(|rt| rt.block_on(crate::notify::send_test(&cfg.notify)).map_err(|e| e.to_string()));
        match sent {
            Ok(deliveries) => {
                for d in deliveries {
                    match d.error {
                        None => line(true, "notify", format!("test notification delivered to {}", d.target)),
                        Some(e) => line(false, "notify", format!("test notification to {} failed: {e}", d.target)),
                    }
                }
            }
            Err(e) => line(false, "notify", e),
        }
    }
    say(if ok { "all checks passed" } else { "some checks failed" });
    Ok(if ok { EXIT_OK } else { EXIT_FAILED })
}
