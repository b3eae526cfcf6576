//! The pre-flight check (`--check-only` / `check`): a ✓/✗ checklist, exit 0 / 1 / 2.

use crate::common::*;
use std::ffi::OsString;
use std::time::Duration;

const T: Duration = Duration::from_secs(60);

/// The first line of `<bin> --version`, as the check should report it.
fn version_of(bin: &str) -> String {
    let out = std::process::Command::new(bin).arg("--version").output().unwrap_or_else(|e| panic!("{bin} --version: {e}"));
    assert!(out.status.success(), "{bin} --version failed: {out:?}");
    String::from_utf8_lossy(&out.stdout).lines().next().unwrap_or("").trim().to_string()
}

/// The checklist line about `what`, if any.
fn line_about<'a>(stdout: &'a str, what: &str) -> Option<&'a str> {
    stdout.lines().find(|l| (l.starts_with('✓') || l.starts_with('✗')) && l.contains(what))
}

/// A version number such as 156.0.8078.79 in `s`.
fn has_version_number(s: &str) -> bool {
    s.split(|c: char| !(c.is_ascii_digit() || c == '.')).any(|t| t.split('.').filter(|p| !p.is_empty()).count() >= 3)
}

/// A pre-flight check runs no campaign: no campaign report and no campaign store appear.
fn assert_no_campaign(sb: &Sandbox) {
    for d in sb.campaign_dirs() {
        assert!(!d.join("campaign_report.json").exists(), "check wrote a campaign report in {}", d.display());
    }
    for d in sb.run_dirs() {
        assert!(!d.join("store.sqlite").exists(), "check created a campaign store in {}", d.display());
    }
}

#[test]
fn check_only_with_the_default_profile_passes_and_lists_browser_versions() {
    // the check may probe a real browser: one browser user at a time, and nothing left after
    let _serial = BrowserLock::acquire();
    let sb = Sandbox::new("check-ok");
    let before = snapshot();
    let out = run_marked(sb.cmd(["--check-only"]), &sb.root, T);
    assert_no_orphans(&before, &sb.root);
    out.expect_code(0);
    for (name, bin) in [("chromium", "/usr/bin/chromium"), ("chromedriver", "/usr/bin/chromedriver")] {
        let line = line_about(&out.stdout, name).unwrap_or_else(|| panic!("no checklist line for {name}\n{}", out.describe()));
        assert!(line.starts_with('✓'), "{name} not ✓: {line}");
        assert!(has_version_number(line), "{name} line has no version: {line}");
        let v = version_of(bin);
        assert!(line.contains(&v), "{name} line does not show `{bin} --version` ({v}): {line}");
    }
    assert!(!out.stdout.lines().any(|l| l.starts_with('✗')), "a ✗ line with exit 0\n{}", out.describe());
    assert_no_campaign(&sb);

    // `stressctl check` is the same thing
    let out2 = run_marked(sb.cmd(["check"]), &sb.root, T);
    assert_no_orphans(&before, &sb.root);
    out2.expect_code(0);
    assert!(line_about(&out2.stdout, "chromedriver").is_some_and(|l| l.starts_with('✓')), "{}", out2.describe());
}

#[test]
fn missing_chromedriver_fails_the_check_with_a_cross_line() {
    let sb = Sandbox::new("check-nodriver");
    let body = format!(
        "{}{}\n[browser]\nchromedriver = \"/nonexistent/chromedriver\"\n{}",
        header("check", ""),
        "\n[task]\nkind = \"webgpu\"\nmatrix_size = 32\n",
        phase("one", "3s", 1, "")
    );
    let cfg = sb.write("nodriver.toml", &body);
    let args: Vec<OsString> = vec!["--check-only".into(), "--config".into(), cfg.into()];
    let _serial = BrowserLock::acquire();
    let before = snapshot();
    let out = run_marked(sb.cmd(args), &sb.root, T);
    assert_no_orphans(&before, &sb.root);
    out.expect_code(1);
    let line = out
        .stdout
        .lines()
        .find(|l| l.starts_with('✗') && l.contains("chromedriver"))
        .unwrap_or_else(|| panic!("no ✗ line naming chromedriver\n{}", out.describe()));
    assert!(line.contains("/nonexistent/chromedriver"), "the ✗ line should name the path: {line}");
    // chromium itself is fine and still reported
    assert!(line_about(&out.stdout, "chromium").is_some_and(|l| l.starts_with('✓')), "{}", out.describe());
}

#[test]
fn unwritable_output_dir_fails_the_check() {
    let sb = Sandbox::new("check-unwritable");
    let file = sb.write("a-regular-file", "not a directory\n");
    let bad = file.join("sub");
    let mut c = std::process::Command::new(BIN);
    c.arg("--check-only")
        .arg("--output-dir")
        .arg(&bad)
        .arg("--state-dir")
        .arg(&sb.state)
        .arg("--log-dir")
        .arg(&sb.logs)
        .current_dir(&sb.root)
        .env("XDG_CONFIG_HOME", sb.root.join("xdg"));
    let _serial = BrowserLock::acquire();
    let before = snapshot();
    let out = run_marked(c, &sb.root, T);
    assert_no_orphans(&before, &sb.root);
    assert_ne!(out.code(), Some(0), "check passed with an unwritable output dir\n{}", out.describe());
    assert!(
        out.stdout.lines().any(|l| l.starts_with('✗') && l.contains(&*bad.to_string_lossy())),
        "no ✗ line naming {}\n{}",
        bad.display(),
        out.describe()
    );
}

#[test]
fn check_with_a_bad_config_is_exit_2() {
    let sb = Sandbox::new("check-badcfg");
    let cfg = sb.write("bad.toml", &format!("{}{}", header("check", ""), "\n[[phases]]\nname = \"x\"\nduration = \"1s\"\nsesions = 1\n"));
    let args: Vec<OsString> = vec!["check".into(), "--config".into(), cfg.into()];
    let out = run(sb.cmd(args), T);
    out.expect_code(2);
    let all = format!("{}{}", out.stdout, out.stderr);
    assert!(all.contains("bad.toml") && all.contains("sesions"), "{}", out.describe());
}

#[test]
fn synthetic_only_config_does_not_need_browsers() {
    let sb = Sandbox::new("check-synthetic");
    let body = format!(
        "{}{}\n[browser]\nchromium = \"/nonexistent/chromium\"\nchromedriver = \"/nonexistent/chromedriver\"\n{}",
        header("check", ""),
        synthetic_task("1ms", 0.0),
        phase("one", "1s", 1, "")
    );
    let cfg = sb.write("syn.toml", &body);
    let args: Vec<OsString> = vec!["--check-only".into(), "--config".into(), cfg.into()];
    let out = run(sb.cmd(args), T);
    out.expect_code(0);
}
