//! The command line: help, usage errors and config errors. Nothing here starts a browser; every
//! config error must be caught before anything is started (exit 2, no campaign directory).

use crate::common::*;
use std::time::Duration;

const T: Duration = Duration::from_secs(30);

fn stressctl(args: &[&str]) -> Output {
    let mut c = std::process::Command::new(BIN);
    c.args(args).env("NO_COLOR", "1");
    // run from a scratch dir: a command that wrongly writes its default dirs writes them there
    let scratch = tempfile::tempdir().unwrap();
    c.current_dir(scratch.path());
    run(c, T)
}

#[test]
fn top_level_help_lists_every_command_and_exits_0() {
    let out = stressctl(&["--help"]);
    out.expect_code(0);
    for cmd in ["launch", "check", "emergency-stop", "status", "breaker", "report", "tune", "--check-only"] {
        assert!(out.stdout.contains(cmd), "--help does not mention `{cmd}`\n{}", out.describe());
    }
    // the operator reads the exit codes here
    for code in ["130", "bad usage"] {
        assert!(out.stdout.contains(code), "--help does not mention `{code}`\n{}", out.describe());
    }
    let short = stressctl(&["-h"]);
    short.expect_code(0);
    assert!(short.stdout.contains("launch"));
}

#[test]
fn each_command_help_says_what_it_does() {
    let expect: &[(&str, &[&str])] = &[
        ("launch", &["campaign", "Ctrl-C"]),
        ("check", &["chromium", "chromedriver", "writable"]),
        ("emergency-stop", &["stop", "--force"]),
        ("status", &["running campaign", "--json"]),
        ("breaker", &["list", "open", "close", "reset", "disable", "worker:grid/*"]),
        ("report", &["reports", "--compare", "--list"]),
        ("tune", &["overlay", "op_timeout", "--tuned-from"]),
    ];
    for (cmd, words) in expect {
        let out = stressctl(&[cmd, "--help"]);
        out.expect_code(0);
        assert!(out.stdout.contains(&format!("stressctl {cmd}")), "`{cmd} --help` has no usage line\n{}", out.describe());
        for w in *words {
            assert!(out.stdout.to_lowercase().contains(&w.to_lowercase()), "`{cmd} --help` does not mention {w:?}\n{}", out.describe());
        }
    }
}

#[test]
fn version_exits_0() {
    let out = stressctl(&["--version"]);
    out.expect_code(0);
    assert!(out.stdout.starts_with("stressctl "), "{}", out.describe());
}

#[test]
fn no_command_is_a_usage_error() {
    let out = stressctl(&[]);
    out.expect_code(2);
    assert!(out.stderr.contains("launch") && out.stderr.contains("--help"), "the error should say what to run\n{}", out.describe());
}

#[test]
fn unknown_flags_and_commands_are_usage_errors() {
    for args in [&["--bogus"][..], &["launch", "--bogus"], &["check", "--bogus"], &["frobnicate"], &["report", "--tolerance-success", "x"]]
    {
        let out = stressctl(args);
        out.expect_code(2);
        assert!(!out.stderr.is_empty(), "{args:?}: no message on stderr");
    }
}

/// A config error: exit 2, the message names what is expected, and nothing was started.
fn assert_rejected(sb: &Sandbox, cfg_name: &str, body: &str, must_mention: &[&str]) -> Output {
    let cfg = sb.write(cfg_name, body);
    let out = run(sb.launch(&cfg), T);
    out.expect_code(2);
    for m in must_mention {
        assert!(out.stderr.contains(m), "stderr does not mention {m:?}\n{}", out.describe());
    }
    assert!(!out.stdout.contains("stressctl: campaign "), "a campaign was announced\n{}", out.describe());
    assert!(sb.campaign_dirs().is_empty(), "a campaign dir was created: {:?}", sb.campaign_dirs());
    assert!(sb.run_dirs().is_empty(), "a run dir was created: {:?}", sb.run_dirs());
    assert!(!sb.logs.exists() || std::fs::read_dir(&sb.logs).unwrap().next().is_none(), "log files were created in {}", sb.logs.display());
    out
}

fn synthetic_ok(phases: &str) -> String {
    format!("{}{}{}", header("cli", ""), synthetic_task("1ms", 0.0), phases)
}

#[test]
fn typo_in_a_phase_key_names_file_and_key_and_starts_nothing() {
    let sb = Sandbox::new("typo");
    let body = synthetic_ok(&format!("{}{}", phase("one", "1s", 1, ""), "\n[[phases]]\nname = \"two\"\nduration = \"1s\"\nsesions = 2\n"));
    let out = assert_rejected(&sb, "typo-campaign.toml", &body, &["typo-campaign.toml", "sesions"]);
    // the message should help fixing it: the valid key is listed
    assert!(out.stderr.contains("sessions"), "{}", out.describe());
}

#[test]
fn typo_in_a_top_level_table_is_rejected() {
    let sb = Sandbox::new("typo2");
    let body = synthetic_ok(&phase("one", "1s", 1, "")).replace("[safety]\n", "[safety]\nmemory_percnt = 50\n");
    assert_rejected(&sb, "c.toml", &body, &["c.toml", "memory_percnt"]);
}

#[test]
fn out_of_range_sessions_names_key_and_range() {
    let sb = Sandbox::new("range-sessions");
    let body = synthetic_ok(&phase("zero", "1s", 0, ""));
    assert_rejected(&sb, "zero.toml", &body, &["zero.toml", "sessions", "1 to 64"]);
}

#[test]
fn out_of_range_memory_percent_names_key_and_range() {
    let sb = Sandbox::new("range-mem");
    let body = synthetic_ok(&phase("one", "1s", 1, "")).replace("memory_percent = 100", "memory_percent = 150");
    assert_rejected(&sb, "mem.toml", &body, &["mem.toml", "memory_percent", "150", "1 to 100"]);
}

#[test]
fn out_of_range_failure_probability_and_duration_are_rejected() {
    let sb = Sandbox::new("range-misc");
    let body = format!("{}{}{}", header("cli", ""), synthetic_task("1ms", 1.5), phase("one", "1s", 1, ""));
    assert_rejected(&sb, "p.toml", &body, &["failure_probability", "0.0 to 1.0"]);
    // a duration without a unit is an error that says how to write it
    let body = synthetic_ok("\n[[phases]]\nname = \"one\"\nduration = 30\nsessions = 1\n");
    assert_rejected(&sb, "d.toml", &body, &["d.toml", "30s"]);
}

#[test]
fn a_config_without_phases_is_rejected() {
    let sb = Sandbox::new("nophases");
    assert_rejected(&sb, "empty.toml", &synthetic_ok(""), &["empty.toml", "phases"]);
}

#[test]
fn missing_config_file_is_exit_2() {
    let sb = Sandbox::new("missing");
    let missing = sb.root.join("does-not-exist.toml");
    let out = run(sb.launch(&missing), T);
    out.expect_code(2);
    assert!(out.stderr.contains("does-not-exist.toml"), "{}", out.describe());
    assert!(sb.campaign_dirs().is_empty());
}

#[test]
fn unknown_profile_is_exit_2() {
    let sb = Sandbox::new("profile");
    let out = run(sb.cmd(["launch", "--profile", "nope"]), T);
    out.expect_code(2);
    assert!(out.stderr.contains("nope"), "{}", out.describe());
    assert!(out.stderr.contains("quick") && out.stderr.contains("overnight"), "should list the profiles\n{}", out.describe());
    assert!(sb.campaign_dirs().is_empty());
}

#[test]
fn bad_safety_file_is_exit_2() {
    let sb = Sandbox::new("safety");
    let cfg = sb.write("c.toml", &synthetic_ok(&phase("one", "1s", 1, "")));
    let safety = sb.write("safety.toml", "[safety]\ncpu_percent = 0\n");
    let mut args: Vec<std::ffi::OsString> = vec!["launch".into(), "--config".into(), cfg.into()];
    args.extend(["--safety".into(), safety.into()]);
    let out = run(sb.cmd(args), T);
    out.expect_code(2);
    assert!(out.stderr.contains("safety.toml") && out.stderr.contains("cpu_percent"), "{}", out.describe());
    assert!(sb.campaign_dirs().is_empty());
}

/// `stressctl <args…> <sandbox dirs>` with the config options given as paths.
fn in_sandbox(sb: &Sandbox, args: &[&str], config: Option<&std::path::Path>) -> Output {
    let mut a: Vec<std::ffi::OsString> = args.iter().map(Into::into).collect();
    if let Some(c) = config {
        a.extend(["--config".into(), c.into()]);
    }
    run(sb.cmd(a), T)
}

#[test]
fn a_file_over_a_profile_keeps_the_profiles_phases_and_runs() {
    // the shape of issue 9: the file holds no [[phases]]; the quick profile's eight phases run,
    // made synthetic and fitted into 8 s by the file
    let sb = Sandbox::new("layers");
    let extra = sb.write(
        "extra.toml",
        "[campaign]\ntotal_duration = \"8s\"\nprogressive_escalation = false\nauto_recovery = false\n\
         [safety]\nmemory_percent = 100\ncpu_percent = 100\ndisk_percent = 100\n\
         [task]\nkind = \"synthetic\"\nlatency = \"1ms\"\n\
         [[workers]]\nid = \"w1\"\nmanaged = true\n[[workers]]\nid = \"w2\"\nmanaged = true\n\
         [[faults]]\nkind = \"throw\"\nworker = \"w1\"\nprobability = 0.001\n",
    );
    let out = in_sandbox(&sb, &["launch", "--profile", "quick"], Some(&extra));
    out.expect_code(0);
    assert!(out.stdout.contains("8 phases"), "the profile's phases should run\n{}", out.describe());
    assert_eq!(sb.campaign_dirs().len(), 1);
}

#[test]
fn print_config_prints_the_effective_config_which_reads_back_the_same() {
    let sb = Sandbox::new("print-config");
    let extra =
        sb.write("extra.toml", "[[workers]]\nid = \"w1\"\nmanaged = true\n[[workers]]\nid = \"grid\"\nurl = \"http://127.0.0.1:4444\"\n");
    let out = in_sandbox(&sb, &["check", "--print-config", "--profile", "quick"], Some(&extra));
    out.expect_code(0);
    // nothing else of the check ran
    assert!(!out.stdout.lines().any(|l| l.starts_with('✓') || l.starts_with('✗')), "{}", out.describe());
    assert!(sb.campaign_dirs().is_empty(), "no baseline is written");
    // the profile's phases and settings, the file's workers, every key explicit
    for want in [
        "name = \"warmup\"",
        "name = \"endurance\"",
        "id = \"grid\"",
        "url = \"http://127.0.0.1:4444\"",
        "[breaker.worker]",
        "grace_period",
    ] {
        assert!(out.stdout.contains(want), "{want:?} missing\n{}", out.describe());
    }
    assert!(!out.stdout.contains("id = \"local\""), "the file's [[workers]] replace the profile's\n{}", out.describe());
    // a complete config: alone, it prints the same
    let printed = sb.write("printed.toml", &out.stdout);
    let again = in_sandbox(&sb, &["check", "--print-config"], Some(&printed));
    again.expect_code(0);
    let body = |s: &str| s.lines().skip_while(|l| l.starts_with('#')).collect::<Vec<_>>().join("\n");
    assert_eq!(body(&again.stdout), body(&out.stdout));
    // errors of the layered config name the file and the key
    let bad = sb.write("bad.toml", "[safety]\nmemory_percent = 150\n");
    let out = in_sandbox(&sb, &["check", "--print-config", "--profile", "quick"], Some(&bad));
    out.expect_code(2);
    assert!(out.stderr.contains("bad.toml") && out.stderr.contains("safety.memory_percent"), "{}", out.describe());
    assert!(out.stdout.is_empty(), "{}", out.describe());
}

#[test]
fn a_bad_worker_url_is_exit_2_naming_the_key() {
    let sb = Sandbox::new("bad-url");
    for url in ["http://", "http://exa mple:99999", "http://example:99999"] {
        let body = format!("{}\n[[workers]]\nid = \"r\"\nurl = {url:?}\n", synthetic_ok(&phase("one", "1s", 1, "")));
        assert_rejected(&sb, "url.toml", &body, &["url.toml", "workers[0].url", url]);
    }
}

/// `node_metrics` (issue 23): not an http(s) URL, or a `{host}` template on a worker that is not
/// a Selenium Grid (a managed worker: refused when the config is read; a remote WebDriver whose
/// `/status` lists no nodes: refused by `launch` after asking it) — exit 2 naming the key.
#[test]
fn a_bad_node_metrics_is_exit_2_naming_the_key() {
    let sb = Sandbox::new("bad-node-metrics");
    for m in ["127.0.0.1:9100/metrics", "ftp://h:9100/metrics", "http://{host:9100/metrics", "http://"] {
        let body = format!(
            "{}\n[[workers]]\nid = \"r\"\nurl = \"http://127.0.0.1:9\"\nnode_metrics = {m:?}\n",
            synthetic_ok(&phase("one", "1s", 1, ""))
        );
        assert_rejected(&sb, "m.toml", &body, &["m.toml", "workers[0].node_metrics", m]);
    }
    let body = format!(
        "{}\n[[workers]]\nid = \"l\"\nmanaged = true\nnode_metrics = \"http://{{host}}:9100/metrics\"\n",
        synthetic_ok(&phase("one", "1s", 1, ""))
    );
    assert_rejected(&sb, "m.toml", &body, &["m.toml", "workers[0].node_metrics", "not a Grid"]);
    // a plain WebDriver endpoint (its /status has no value.nodes), served here on loopback
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        use std::io::{Read, Write};
        for mut s in listener.incoming().flatten() {
            let mut buf = [0u8; 4096];
            let _ = s.read(&mut buf);
            let body = r#"{"value":{"ready":true,"message":"ChromeDriver ready for new sessions."}}"#;
            let _ = write!(
                s,
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    let body = format!(
        "{}\n[[workers]]\nid = \"r\"\nurl = \"http://{addr}\"\nnode_metrics = \"http://{{host}}:9100/metrics\"\n",
        synthetic_ok(&phase("one", "1s", 1, ""))
    );
    assert_rejected(&sb, "m.toml", &body, &["m.toml", "workers[0].node_metrics", "is not a Selenium Grid"]);
    // a per-worker threshold out of range names its key too
    let body = format!(
        "{}\n[[workers]]\nid = \"r\"\nurl = \"http://127.0.0.1:9\"\n[workers.safety]\nmemory_percent = 150\n",
        synthetic_ok(&phase("one", "1s", 1, ""))
    );
    assert_rejected(&sb, "m.toml", &body, &["m.toml", "workers[0].safety.memory_percent"]);
}

#[test]
fn a_browser_fault_on_synthetic_phases_is_exit_2_naming_the_key() {
    let sb = Sandbox::new("synthetic-fault");
    let body = format!("{}\n[[faults]]\nkind = \"kill_browser\"\nevery = \"1s\"\n", synthetic_ok(&phase("one", "1s", 1, "")));
    assert_rejected(&sb, "f.toml", &body, &["f.toml", "faults[0].kind", "synthetic"]);
}

#[test]
fn a_fault_that_can_never_fire_is_a_one_line_warning() {
    let sb = Sandbox::new("fault-warning");
    let body = format!("{}\n[[faults]]\nkind = \"throw\"\nevery = \"20s\"\n", synthetic_ok(&phase("one", "2s", 1, "")));
    let cfg = sb.write("w.toml", &body);
    let out = in_sandbox(&sb, &["check", "--print-config"], Some(&cfg));
    out.expect_code(0);
    let warnings: Vec<&str> = out.stderr.lines().filter(|l| l.contains("warning")).collect();
    assert_eq!(warnings.len(), 1, "{}", out.describe());
    assert!(warnings[0].contains("faults[0].every") && warnings[0].contains("never fire"), "{}", out.describe());
}
