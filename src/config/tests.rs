use super::*;

fn err(text: &str) -> String {
    Config::parse(text, "t.toml").expect_err("must be rejected").to_string()
}

const MIN: &str = "[[phases]]\nname = \"p\"\nduration = \"5s\"\nsessions = 1\n";

#[test]
fn embedded_profiles_parse_with_the_seeded_shape() {
    let q = Config::load(None, None).unwrap();
    assert_eq!(q.profile, "quick");
    assert_eq!(q.phases.len(), 8);
    assert!(q.planned_duration() <= Duration::from_secs(4 * 60), "quick must fit in 4 minutes: {:?}", q.planned_duration());
    assert!(q.phases.iter().all(|p| p.sessions <= 4));
    let o = Config::load(None, Some("overnight")).unwrap();
    let shape: Vec<(&str, u32)> = o.phases.iter().map(|p| (p.name.as_str(), p.sessions)).collect();
    assert_eq!(
        shape,
        [
            ("warmup", 2),
            ("light", 3),
            ("moderate-1", 5),
            ("moderate-2", 7),
            ("high-1", 10),
            ("high-2", 12),
            ("stress", 15),
            ("endurance", 8)
        ]
    );
    // 14 h of seed phases fitted into total_duration = 8h, proportions kept
    let total = o.planned_duration().as_secs_f64();
    assert!((total - 8.0 * 3600.0).abs() < 10.0, "{total}");
    let ratio = o.phases[7].duration.as_secs_f64() / o.phases[0].duration.as_secs_f64();
    assert!((ratio - 6.0).abs() < 0.01, "{ratio}");
    assert!(matches!(Config::load(None, Some("nope")), Err(ConfigError::UnknownProfile(_))));
}

#[test]
fn unknown_keys_wrong_types_and_ranges_name_file_key_and_range() {
    let e = err(&MIN.replace("sessions = 1", "sesions = 1"));
    assert!(e.contains("t.toml") && e.contains("sesions"), "{e}");
    let e = err(&MIN.replace("sessions = 1", "sessions = \"two\""));
    assert!(e.contains("t.toml") && e.contains("sessions"), "{e}");
    let e = err(&MIN.replace("sessions = 1", "sessions = 0"));
    assert!(e.contains("phases[0].sessions") && e.contains("from 1 to 64"), "{e}");
    let e = err(&format!("[safety]\nmemory_percent = 150\n{MIN}"));
    assert!(e.contains("safety.memory_percent") && e.contains("1 to 100"), "{e}");
    let e = err(&format!("[safety]\nsample_interval = \"0s\"\n{MIN}"));
    assert!(e.contains("safety.sample_interval") && e.contains("250ms"), "{e}");
    let e = err(&format!("[browser]\nbatch_budget = \"6s\"\n{MIN}"));
    assert!(e.contains("browser.batch_budget") && e.contains("5s"), "{e}");
    let e = err(&format!("[browser]\nbatch_max_ops = 0\n{MIN}"));
    assert!(e.contains("browser.batch_max_ops") && e.contains("1 to 256"), "{e}");
    let e = err(&MIN.replace("\"5s\"", "5"));
    assert!(e.contains("with a unit"), "{e}");
    let e = err("[campaign]\nname = \"x\"\n");
    assert!(e.contains("phases"), "{e}");
    let e = err(&format!("{MIN}[[phases]]\nname = \"p\"\nduration = \"1s\"\nsessions = 1\n"));
    assert!(e.contains("unique"), "{e}");
}

#[test]
fn defaults_criteria_workers_and_faults() {
    let c = Config::parse(MIN, "t").unwrap();
    assert_eq!(c.workers, vec![WorkerConfig::managed("local")]);
    assert_eq!(c.phases[0].criteria, StressLevel::Moderate.default_criteria());
    assert_eq!(
        StressLevel::Extreme.default_criteria(),
        Criteria { min_success_rate: 0.80, max_p95: Duration::from_secs(8), max_rss_growth_mb_per_h: None, max_p95_drift_pct_per_h: None }
    );
    assert_eq!(c.safety, SafetyConfig::default());
    assert_eq!(c.breakers.worker, crate::breaker::BreakerConfig::default());
    let text = format!(
        "[[workers]]\nid = \"a\"\nmanaged = true\n[[workers]]\nid = \"b\"\nurl = \"http://127.0.0.1:9515\"\n\
         [[faults]]\nkind = \"kill_driver\"\nworker = \"a\"\npermanent = true\nevery = \"20s\"\nphases = [\"p\"]\n{MIN}"
    );
    let c = Config::parse(&text, "t").unwrap();
    assert_eq!(c.workers[1].endpoint, WorkerEndpoint::Remote("http://127.0.0.1:9515".into()));
    assert_eq!(c.faults[0].schedule, FaultSchedule::Every(Duration::from_secs(20)));
    assert!(c.faults[0].permanent);
    let e = err(&format!("[[faults]]\nkind = \"hang\"\npermanent = true\nevery = \"1s\"\n{MIN}"));
    assert!(e.contains("faults[0].permanent"), "{e}");
    let e = err(&format!("[[faults]]\nkind = \"hang\"\nworker = \"zz\"\nprobability = 0.1\n{MIN}"));
    assert!(e.contains("faults[0].worker"), "{e}");
    let e = err(&format!("[[faults]]\nkind = \"hang\"\n{MIN}"));
    assert!(e.contains("exactly one of"), "{e}");
    let e = err(&format!("[breaker]\nfailure_rate_threshold = 150\n{MIN}"));
    assert!(e.contains("failure_rate_threshold"), "{e}");
}

#[test]
fn safety_file_replaces_the_table_and_phase_overrides_apply() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("s.toml");
    std::fs::write(&f, "[safety]\nmemory_percent = 50\n").unwrap();
    let text = MIN.to_string() + "[phases.safety]\ncpu_percent = 60\n";
    let mut c = Config::parse(&text, "t").unwrap();
    c.apply_safety_file(&f).unwrap();
    assert_eq!(c.safety.memory_percent, 50.0);
    assert_eq!(c.phase_safety(0).cpu_percent, 60.0);
    assert_eq!(c.phase_safety(0).memory_percent, 50.0);
    std::fs::write(&f, "[safety]\nmemory_percnt = 50\n").unwrap();
    let e = c.apply_safety_file(&f).unwrap_err().to_string();
    assert!(e.contains("s.toml") && e.contains("memory_percnt"), "{e}");
}

/// `--profile quick --config FILE` with FILE's text.
fn layered(profile: &str, file_text: &str) -> Result<Config, ConfigError> {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("extra.toml");
    std::fs::write(&f, file_text).unwrap();
    Config::load(Some(&f), Some(profile))
}

/// Every typed value of two configs (source, profile and text aside).
fn assert_same_values(a: &Config, b: &Config) {
    assert_eq!(a.campaign, b.campaign);
    assert_eq!(a.browser, b.browser);
    assert_eq!(a.safety, b.safety);
    assert_eq!(a.breakers, b.breakers);
    assert_eq!(a.recovery, b.recovery);
    assert_eq!(a.workers, b.workers);
    assert_eq!(a.phases, b.phases);
    assert_eq!(a.faults, b.faults);
}

const TWO_WORKERS_AND_A_FAULT: &str = "[[workers]]\nid = \"w1\"\nmanaged = true\n[[workers]]\nid = \"w2\"\nmanaged = true\n\
     [[faults]]\nkind = \"kill_driver\"\nworker = \"w1\"\npermanent = true\nevery = \"20s\"\n";

#[test]
fn a_file_over_a_profile_overrides_its_keys_and_replaces_its_lists() {
    let quick = Config::load(None, Some("quick")).unwrap();
    // only [[workers]] and [[faults]]: the profile's phases and settings stay
    let c = layered("quick", TWO_WORKERS_AND_A_FAULT).unwrap();
    assert_eq!(c.profile, "quick");
    assert!(c.source.contains("<profile quick>") && c.source.contains("extra.toml"), "{}", c.source);
    assert_eq!(c.phases, quick.phases);
    assert_eq!(c.safety, quick.safety);
    assert_eq!(c.workers.iter().map(|w| w.id.as_str()).collect::<Vec<_>>(), ["w1", "w2"]);
    assert_eq!(c.faults.len(), 1);
    assert!(c.faults[0].permanent);

    // one key of a table: only that key changes
    let c = layered("quick", "[safety]\nmemory_percent = 70\n[campaign]\ncooldown = \"1m\"\n").unwrap();
    assert_eq!(c.safety.memory_percent, 70.0);
    assert_eq!(c.safety.cpu_percent, quick.safety.cpu_percent);
    assert_eq!(c.safety.sample_interval, quick.safety.sample_interval);
    assert_eq!(c.campaign.cooldown, Duration::from_secs(60));
    assert_eq!(c.campaign.name, "quick");
    assert_eq!(c.campaign.escalation_delay, quick.campaign.escalation_delay);

    // [[phases]] in the file replace the profile's; the profile's [task] still applies to them
    let c = layered("quick", MIN).unwrap();
    assert_eq!(c.phases.len(), 1);
    assert_eq!(c.phases[0].name, "p");
    assert_eq!(c.phases[0].task, quick.phases[0].task);

    // a [task] of another kind replaces the profile's whole [task] (its matrix_size means nothing)
    let c = layered("quick", "[task]\nkind = \"synthetic\"\nlatency = \"1ms\"\n").unwrap();
    assert!(c
        .phases
        .iter()
        .all(|p| p.task == TaskSpec::Synthetic { latency: Duration::from_millis(1), jitter: Duration::ZERO, failure_probability: 0.0 }));
    // of the same kind, its keys merge
    let c = layered("quick", "[task]\nmatrix_size = 64\n").unwrap();
    assert_eq!(c.phases[0].task, TaskSpec::Webgpu { matrix_size: 64 });

    // breakers: a scope table in the file over the overnight profile's top-level [breaker] keys
    let o = Config::load(None, Some("overnight")).unwrap();
    let c = layered("overnight", "[breaker]\nwindow_size = 30\n[breaker.worker]\nfailure_threshold = 7\n").unwrap();
    assert_eq!(c.breakers.worker.failure_threshold, 7);
    assert_eq!(c.breakers.worker.window_size, 30);
    assert_eq!(c.breakers.browser.failure_threshold, o.breakers.browser.failure_threshold);
    assert_eq!(c.breakers.browser.window_size, 30);
    assert_eq!(c.phases, o.phases);

    // without --profile, the file stands alone
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("alone.toml");
    std::fs::write(&f, TWO_WORKERS_AND_A_FAULT).unwrap();
    let e = Config::load(Some(&f), None).unwrap_err().to_string();
    assert!(e.contains("alone.toml") && e.contains("at least one [[phases]]"), "{e}");
}

#[test]
fn errors_of_a_layered_config_name_the_layer_and_the_key() {
    // a key the file wrote: the file is named, with the key and the range
    let e = layered("quick", "[safety]\nmemory_percent = 150\n").unwrap_err().to_string();
    assert!(e.contains("extra.toml") && e.contains("`safety.memory_percent` = 150") && e.contains("1 to 100"), "{e}");
    assert!(!e.contains("<profile"), "{e}");
    let e = layered("quick", "[[workers]]\nid = \"r\"\nurl = \"http://\"\n").unwrap_err().to_string();
    assert!(e.contains("extra.toml") && e.contains("workers[0].url"), "{e}");
    // unknown keys and wrong types: the file, with line and key
    let e = layered("quick", "[safety]\nmemory_percnt = 50\n").unwrap_err().to_string();
    assert!(e.contains("extra.toml") && e.contains("memory_percnt") && e.contains("line 2"), "{e}");
    let e = layered("quick", "[[phases]]\nname = \"p\"\nduration = \"5s\"\nsessions = \"two\"\n").unwrap_err().to_string();
    assert!(e.contains("extra.toml") && e.contains("sessions"), "{e}");
    // a key only the base wrote: the base is named
    let layers = [
        Layer { name: "base.toml".into(), text: &format!("[browser]\nop_timeout = \"1ms\"\n{MIN}") },
        Layer { name: "top.toml".into(), text: "[safety]\ncpu_percent = 90\n" },
    ];
    let e = Config::parse_layers(&layers).unwrap_err().to_string();
    assert!(e.contains("base.toml") && e.contains("browser.op_timeout") && !e.contains("top.toml"), "{e}");
    // a rule over keys of both layers names the file when it wrote one of them
    let e = layered("quick", "[safety]\nmax_campaign_duration = \"30s\"\n").unwrap_err().to_string();
    assert!(e.contains("extra.toml") && e.contains("safety.max_campaign_duration"), "{e}");
    let e = layered("quick", "[[phases]]\nname = \"long\"\nduration = \"1h\"\nsessions = 1\n").unwrap_err().to_string();
    assert!(e.contains("extra.toml") && e.contains("safety.max_campaign_duration"), "{e}");
    // a breaker scope from the file
    let e = layered("quick", "[breaker.task]\nwindow_size = 0\n").unwrap_err().to_string();
    assert!(e.contains("extra.toml") && e.contains("breaker.task") && e.contains("window_size"), "{e}");
}

/// A config that uses every kind of entry: remote and managed workers, faults of both
/// schedules, per-phase task, criteria and safety overrides, breaker scopes, total_duration.
const RICH: &str = r#"
[campaign]
name = "rich"
total_duration = "1h 7m 3s"
pass_phase_ratio = 0.625
[task]
kind = "synthetic"
latency = "3ms"
jitter = "1ms 500us"
failure_probability = 0.125
[browser]
extra_args = ["--use-angle=swiftshader"]
[safety]
max_browser_rss_mb = 2048
max_campaign_duration = "2h"
[breaker]
failure_threshold = 4
[breaker.worker]
window_size = 40
minimum_calls = 40
recovery_timeout = "1s 250ms"
[[workers]]
id = "local"
managed = true
[[workers]]
id = "grid"
url = "https://grid.example.com:4444/wd/hub"
[server]
listen = "0.0.0.0:8099"
advertise = "https://stress.example.com/runs"
[grid]
capacity_wait = "45s"
registration_secret_env = "GRID_SECRET"
[[phases]]
name = "a"
duration = "7s"
sessions = 2
think_time = "10ms"
stress_level = "low"
[[phases]]
name = "b"
duration = "13m"
sessions = 3
ops_per_session = 50
stress_level = "extreme"
criteria = { min_success_rate = 0.5, max_p95 = "1s 1ms" }
safety = { cpu_percent = 99.5 }
task = { kind = "webgpu", matrix_size = 256 }
[[phases]]
name = "c"
duration = "11m 3s"
sessions = 1
task = { kind = "page", url = "http://127.0.0.1:8000/x.html", script = "done({ok: true, metrics: {}})" }
[[phases]]
name = "d"
duration = "1s"
sessions = 1
task = { kind = "webnn" }
[[faults]]
kind = "throw"
probability = 0.01
[[faults]]
kind = "kill_browser"
every = "45s"
worker = "local"
phases = ["b", "c"]
[[faults]]
kind = "kill_driver"
every = "2m"
worker = "local"
permanent = true
phases = ["b"]
"#;

#[test]
fn the_effective_toml_is_complete_and_parses_back_to_the_same_config() {
    let rich = Config::parse(RICH, "rich.toml").unwrap();
    assert_eq!(rich.planned_duration(), Duration::from_secs(3600 + 7 * 60 + 3), "scaled to total_duration exactly");
    let layered = layered("overnight", TWO_WORKERS_AND_A_FAULT).unwrap();
    let capacity = Config::load(None, Some("capacity")).unwrap();
    for c in [Config::load(None, Some("quick")).unwrap(), Config::load(None, Some("overnight")).unwrap(), capacity, rich, layered] {
        let text = c.to_toml().unwrap();
        let back = Config::parse(&text, "printed.toml").unwrap_or_else(|e| panic!("{e}\n{text}"));
        assert_same_values(&c, &back);
        assert_eq!(back.to_toml().unwrap().lines().skip(1).collect::<Vec<_>>(), text.lines().skip(1).collect::<Vec<_>>());
        // the stored text is the effective config
        assert_eq!(c.text, text);
        // complete: defaults are written out
        for key in
            ["grace_period", "session_timeout", "consecutive_violations", "half_open_max_calls", "backoff_cap", "think_time", "max_p95"]
        {
            assert!(text.contains(key), "{key} missing from\n{text}");
        }
    }
}

#[test]
fn phases_scaled_to_total_duration_read_back_unchanged() {
    let mut d = [Duration::from_secs(1), Duration::from_secs(3600), Duration::from_millis(1500)];
    assert!(validate::scale_to(&mut d, Duration::from_secs(60)));
    assert_eq!(d.iter().sum::<Duration>(), Duration::from_secs(60));
    assert!(d.iter().all(|d| *d >= Duration::from_secs(1)), "{d:?}");
    let again = d;
    assert!(validate::scale_to(&mut d, Duration::from_secs(60)));
    assert_eq!(d, again);
    assert!(!validate::scale_to(&mut d, Duration::from_secs(2)), "3 phases cannot fit in 2 s");
    let e = err(&format!("[campaign]\ntotal_duration = \"1s\"\n{MIN}[[phases]]\nname = \"q\"\nduration = \"5s\"\nsessions = 1\n"));
    assert!(e.contains("campaign.total_duration") && e.contains("at least 1s"), "{e}");
}

#[test]
fn worker_urls_need_a_scheme_a_host_and_a_port_in_range() {
    for bad in
        ["http://", "http://exa mple:99999", "http://example:99999", "http://example:0", "ftp://example", "http://:9515", "http://h:1/?q=1"]
    {
        let e = err(&format!("[[workers]]\nid = \"ok\"\nmanaged = true\n[[workers]]\nid = \"r\"\nurl = {bad:?}\n{MIN}"));
        assert!(e.contains("t.toml") && e.contains("`workers[1].url`") && e.contains(&format!("{bad:?}")), "{bad}: {e}");
    }
    let e = err(&format!("[[workers]]\nid = \"r\"\nurl = \"http://example:99999\"\n{MIN}"));
    assert!(e.contains("1 to 65535"), "{e}");
    for good in ["http://127.0.0.1:9515", "https://grid.example.com/wd/hub", "http://[::1]:4444", "http://localhost"] {
        let c = Config::parse(&format!("[server]\nlisten = \"0.0.0.0:0\"\n[[workers]]\nid = \"r\"\nurl = {good:?}\n{MIN}"), "t")
            .unwrap_or_else(|e| panic!("{good}: {e}"));
        assert_eq!(c.workers[0].endpoint, WorkerEndpoint::Remote(good.into()));
    }
}

const SYNTHETIC: &str = "[task]\nkind = \"synthetic\"\n";

#[test]
fn browser_faults_on_synthetic_phases_only_are_rejected_naming_the_key() {
    for kind in ["kill_browser", "kill_driver", "gpu_device_lost", "exhaust_memory"] {
        let e = err(&format!(
            "{SYNTHETIC}{MIN}[[faults]]\nkind = \"hang\"\nprobability = 0.1\n[[faults]]\nkind = \"{kind}\"\nevery = \"1s\"\n"
        ));
        assert!(e.contains("t.toml") && e.contains(&format!("`faults[1].kind` = \"{kind}\"")) && e.contains("synthetic"), "{e}");
    }
    // throw and hang are for the synthetic task to honour
    for kind in ["throw", "hang"] {
        Config::parse(&format!("{SYNTHETIC}{MIN}[[faults]]\nkind = \"{kind}\"\nevery = \"1s\"\n"), "t").unwrap();
    }
    // a browser phase among them: accepted, unless the filter keeps only synthetic ones
    let mixed = format!("{SYNTHETIC}{MIN}[[phases]]\nname = \"gpu\"\nduration = \"5s\"\nsessions = 1\ntask = {{ kind = \"webgpu\" }}\n");
    Config::parse(&format!("{mixed}[[faults]]\nkind = \"kill_browser\"\nevery = \"1s\"\n"), "t").unwrap();
    let e = err(&format!("{mixed}[[faults]]\nkind = \"kill_browser\"\nevery = \"1s\"\nphases = [\"p\"]\n"));
    assert!(e.contains("faults[0].kind"), "{e}");
}

#[test]
fn faults_that_can_never_fire_are_warned_about_in_one_line() {
    // p runs 0–5 s and q 5–10 s on the campaign clock
    let two = format!("{MIN}[[phases]]\nname = \"q\"\nduration = \"5s\"\nsessions = 1\n");
    let c = Config::parse(&format!("{two}[[faults]]\nkind = \"throw\"\nevery = \"9s\"\n"), "t").unwrap();
    assert!(c.warnings().is_empty(), "{:?}", c.warnings());
    // the tick at 9 s lands in q
    let c = Config::parse(&format!("{two}[[faults]]\nkind = \"throw\"\nevery = \"9s\"\nphases = [\"q\"]\n"), "t").unwrap();
    assert!(c.warnings().is_empty(), "{:?}", c.warnings());
    // only p, every 6 s: the tick at 6 s lands in q, the next after the campaign
    let c = Config::parse(&format!("{two}[[faults]]\nkind = \"throw\"\nevery = \"6s\"\nphases = [\"p\"]\n"), "t").unwrap();
    let w = c.warnings();
    assert_eq!(w.len(), 1, "{w:?}");
    assert!(w[0].contains("faults[0].every") && w[0].contains("6s") && w[0].contains("p") && !w[0].contains('\n'), "{}", w[0]);
    let c = Config::parse(&format!("{two}[[faults]]\nkind = \"hang\"\nevery = \"20s\"\n"), "t").unwrap();
    assert_eq!(c.warnings().len(), 1);
    // a process fault on a remote worker: stressctl did not start its processes
    let remote = format!("[[workers]]\nid = \"r\"\nurl = \"http://127.0.0.1:9515\"\n[[workers]]\nid = \"m\"\nmanaged = true\n{MIN}");
    let c = Config::parse(&format!("{remote}[[faults]]\nkind = \"kill_driver\"\nworker = \"r\"\nprobability = 0.5\n"), "t").unwrap();
    assert!(c.warnings().len() == 1 && c.warnings()[0].contains("remote"), "{:?}", c.warnings());
    let c = Config::parse(&format!("{remote}[[faults]]\nkind = \"kill_driver\"\nprobability = 0.5\n"), "t").unwrap();
    assert!(c.warnings().is_empty(), "{:?}", c.warnings());
}

#[test]
fn reserve_percent_defaults_to_20_and_is_bounded() {
    assert_eq!(Config::parse(MIN, "t.toml").unwrap().safety.reserve_percent, 20);
    let c = Config::parse(&format!("[safety]\nreserve_percent = 0\n{MIN}"), "t.toml").unwrap();
    assert_eq!(c.safety.reserve_percent, 0);
    let e = err(&format!("[safety]\nreserve_percent = 95\n{MIN}"));
    assert!(e.contains("safety.reserve_percent") && e.contains("0 to 90"), "{e}");
}

#[test]
fn a_fault_warning_follows_the_campaign_clock_across_phases() {
    let phases: String = (0..4).map(|i| format!("[[phases]]\nname = \"p{i}\"\nduration = \"10s\"\nsessions = 1\n")).collect();
    let warns = |fault: &str| Config::parse(&format!("{phases}[[faults]]\nkind = \"throw\"\n{fault}\n"), "t.toml").unwrap().warnings();
    // 20 s on a clock of 10 s phases: the tick at 20 s lands in p2
    assert!(warns("every = \"20s\"").is_empty());
    // only p1 (10–20 s): the tick at 15 s lands in it
    assert!(warns("every = \"15s\"\nphases = [\"p1\"]").is_empty());
    // only p1, every 25 s: ticks at 25, 50, 75 s all miss it
    let w = warns("every = \"25s\"\nphases = [\"p1\"]");
    assert_eq!(w.len(), 1, "{w:?}");
    assert!(w[0].contains("faults[0].every") && w[0].contains("never"), "{w:?}");
    // longer than the whole campaign
    assert_eq!(warns("every = \"40s\"").len(), 1);
}

#[test]
fn notify_entries_round_trip_and_bad_ones_name_the_key() {
    let text = format!(
        "{MIN}\n[[notify]]\nurl = \"http://127.0.0.1:9000/hook\"\non = [\"verdict\", \"breaker_open\"]\ntoken_env = \"HOOK_TOKEN\"\ntimeout = \"2s\"\nretries = 1\n\n[[notify]]\nurl = \"https://hooks.example.com/x\"\n"
    );
    let c = Config::parse(&text, "n.toml").unwrap();
    assert_eq!(c.notify.len(), 2);
    assert_eq!(c.notify[0].on, [NotifyOn::Verdict, NotifyOn::BreakerOpen]);
    assert_eq!((c.notify[0].timeout, c.notify[0].retries), (Duration::from_secs(2), 1));
    assert_eq!(c.notify[1].on, NotifyOn::ALL, "all events by default");
    assert_eq!(c.notify[0].target(), "http://127.0.0.1:9000", "no path: it may be a secret");
    let back = Config::parse(&c.to_toml().unwrap(), "printed.toml").unwrap();
    assert_eq!(back.notify, c.notify);
    assert!(!Config::parse(MIN, "t.toml").unwrap().to_toml().unwrap().contains("notify"), "no [[notify]] written without any");
    for (bad, key) in [
        ("url = \"ftp://x:21/\"", "notify[0].url"),
        ("url = \"not a url\"", "notify[0].url"),
        ("url = \"http://127.0.0.1:9/\"\non = []", "notify[0].on"),
        ("url = \"http://127.0.0.1:9/\"\ntimeout = \"10ms\"", "notify[0].timeout"),
        ("url = \"http://127.0.0.1:9/\"\nretries = 11", "notify[0].retries"),
        ("url = \"http://127.0.0.1:9/\"\ntoken_env = \"A-B\"", "notify[0].token_env"),
    ] {
        let e = err(&format!("{MIN}\n[[notify]]\n{bad}\n"));
        assert!(e.contains(key), "{bad}: {e}");
    }
    assert!(err(&format!("{MIN}\n[[notify]]\nurl = \"http://h:1/\"\non = [\"sometimes\"]\n")).contains("sometimes"));
}

#[test]
fn breaker_hardware_overrides_the_common_keys_for_its_scope() {
    let c = Config::parse(&format!("{MIN}\n[breaker]\nfailure_threshold = 4\n\n[breaker.hardware]\nfailure_threshold = 1\n"), "h.toml")
        .unwrap();
    assert_eq!((c.breakers.task.failure_threshold, c.breakers.hardware.failure_threshold), (4, 1));
    let text = c.to_toml().unwrap();
    assert!(text.contains("[breaker.hardware]"), "{text}");
    assert_eq!(Config::parse(&text, "printed.toml").unwrap().breakers, c.breakers);
    let e = err(&format!("{MIN}\n[breaker.hardware]\nfailure_threshold = 0\n"));
    assert!(e.contains("breaker.hardware"), "{e}");
}

#[test]
fn a_tuned_overlay_over_a_profile_and_a_file_wins_and_errors_name_their_own_layer() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("extra.toml");
    std::fs::write(&f, "[browser]\nop_timeout = \"20s\"\n[safety]\ncpu_percent = 90\n").unwrap();
    let over = Some(("<tuned from a b>", "[browser]\nop_timeout = \"3s\"\n[breaker]\nfailure_rate_threshold = 12.0\n"));
    let c = Config::load_with_overlay(Some(&f), Some("quick"), over).unwrap();
    assert_eq!(c.browser.op_timeout, std::time::Duration::from_secs(3), "the overlay's key wins over the file's");
    assert_eq!(c.safety.cpu_percent, 90.0, "the file's other keys stay");
    assert_eq!((c.breakers.worker.failure_rate_threshold, c.breakers.hardware.failure_rate_threshold), (12.0, 12.0));
    // a bad key in the overlay names the overlay; one in the file (under it) still names the file
    let bad = Some(("<tuned from a b>", "[browser]\nop_timeout = \"1ms\"\n"));
    let e = Config::load_with_overlay(Some(&f), Some("quick"), bad).unwrap_err().to_string();
    assert!(e.contains("<tuned from a b>") && e.contains("browser.op_timeout"), "{e}");
    std::fs::write(&f, "[safety]\nmemory_percent = 150\n").unwrap();
    let e = Config::load_with_overlay(Some(&f), Some("quick"), over).unwrap_err().to_string();
    assert!(e.contains("extra.toml") && e.contains("safety.memory_percent") && !e.contains("<tuned"), "{e}");
}

#[test]
fn recovery_first_rungs_default_per_class_override_and_bad_ones_name_the_key() {
    use crate::recovery::{FailureClass, Strategy};
    let c = Config::parse(MIN, "m.toml").unwrap();
    assert_eq!(c.recovery.first_rung(FailureClass::Crash), Some(Strategy::NewSession));
    assert_eq!(c.recovery.first_rung(FailureClass::ApiUnsupported), None, "never recovered");
    assert!(c.to_toml().unwrap().contains("[recovery.first_rung]"), "every class written out");
    let c = Config::parse(&format!("{MIN}\n[recovery.first_rung]\ngpu_error = \"new_session\"\n"), "m.toml").unwrap();
    assert_eq!(c.recovery.first_rung(FailureClass::GpuError), Some(Strategy::NewSession));
    assert_eq!(c.recovery.first_rung(FailureClass::Timeout), Some(Strategy::Retry), "the classes left out keep their default");
    assert_eq!(Config::parse(&c.to_toml().unwrap(), "printed.toml").unwrap().recovery, c.recovery);
    let e = err(&format!("{MIN}\n[recovery.first_rung]\ngpu_error = \"pray\"\n"));
    assert!(e.contains("recovery.first_rung.gpu_error") && e.contains("new_session"), "{e}");
    let e = err(&format!("{MIN}\n[recovery.first_rung]\napi_unsupported = \"retry\"\n"));
    assert!(e.contains("recovery.first_rung.api_unsupported"), "{e}");
}

#[test]
fn op_timeout_per_phase_and_per_task_over_the_global_one() {
    let text = format!(
        "[browser]\nop_timeout = \"30s\"\n[task]\nkind = \"webgpu\"\nop_timeout = \"4s\"\n\
         {MIN}\
         [[phases]]\nname = \"own\"\nduration = \"5s\"\nsessions = 1\nop_timeout = \"2s\"\n\
         [[phases]]\nname = \"task\"\nduration = \"5s\"\nsessions = 1\n[phases.task]\nkind = \"webnn\"\nop_timeout = \"9s\"\n\
         [[phases]]\nname = \"plain\"\nduration = \"5s\"\nsessions = 1\n[phases.task]\nkind = \"webnn\"\n"
    );
    let c = Config::parse(&text, "t.toml").unwrap();
    let global = c.browser.op_timeout;
    let got: Vec<Duration> = c.phases.iter().map(|p| p.op_timeout_or(global)).collect();
    // inherits [task]'s; its own over [task]'s; its own task's; a task of its own without one: the global
    assert_eq!(got, [4, 2, 9, 30].map(Duration::from_secs));
    // the effective config writes each phase's limit and reads back the same
    let back = Config::parse(&c.to_toml().unwrap(), "back").unwrap();
    assert_same_values(&c, &back);
    assert_eq!(back.phases.iter().map(|p| p.op_timeout_or(global)).collect::<Vec<_>>(), got);

    let e = err(&MIN.replace("sessions = 1", "sessions = 1\nop_timeout = \"50ms\""));
    assert!(e.contains("phases[0].op_timeout") && e.contains("from 100ms to 1h"), "{e}");
    let e = err(&format!("[task]\nop_timeout = \"2h\"\n{MIN}"));
    assert!(e.contains("`task.op_timeout`") && e.contains("from 100ms to 1h"), "{e}");
    let e = err(&MIN.replace("sessions = 1", "sessions = 1\nop_timeout = \"5s\"\n[phases.task]\nkind = \"webnn\"\nop_timeout = \"6s\""));
    assert!(e.contains("phases[0].op_timeout") && e.contains("give it once") && e.contains("phases[0].task.op_timeout"), "{e}");
}

#[test]
fn exhaust_memory_takes_a_bounded_limit_and_no_other_fault_does() {
    let fault = |extra: &str| format!("{MIN}[[faults]]\nkind = \"exhaust_memory\"\nevery = \"1s\"\n{extra}");
    let c = Config::parse(&fault(""), "t.toml").unwrap();
    assert_eq!(c.faults[0].limit_mb, DEFAULT_EXHAUST_LIMIT_MB);
    let c = Config::parse(&fault("limit_mb = 512\n"), "t.toml").unwrap();
    assert_eq!(c.faults[0].limit_mb, 512);
    // written back with its limit, read back the same
    let back = Config::parse(&c.to_toml().unwrap(), "back").unwrap();
    assert_same_values(&c, &back);
    assert!(c.to_toml().unwrap().contains("limit_mb = 512"));
    let e = err(&fault("limit_mb = 8\n"));
    assert!(e.contains("faults[0].limit_mb") && e.contains("from 16 to 4096"), "{e}");
    let e = err(&format!("{MIN}[[faults]]\nkind = \"throw\"\nevery = \"1s\"\nlimit_mb = 64\n"));
    assert!(e.contains("faults[0].limit_mb") && e.contains("only applies to kind = \"exhaust_memory\""), "{e}");
    // other kinds write no limit
    let c = Config::parse(&format!("{MIN}[[faults]]\nkind = \"throw\"\nevery = \"1s\"\n"), "t.toml").unwrap();
    assert!(!c.to_toml().unwrap().contains("limit_mb"));
}

const CAPACITY: &str = "[[phases]]\nname = \"cap\"\nduration = \"2m\"\nsessions = 1\nkind = \"capacity\"\n";

#[test]
fn capacity_phases_parse_with_defaults_and_bad_ones_name_the_key() {
    let c = Config::parse(&format!("{CAPACITY}[phases.capacity]\nmax_sessions = 8\n"), "t").unwrap();
    let spec = c.phases[0].capacity.as_ref().expect("a capacity phase");
    assert_eq!(c.phases[0].kind, PhaseKind::Capacity);
    assert_eq!((spec.max_sessions, spec.step, spec.step_duration, spec.warmup), (8, 0, Duration::from_secs(20), Duration::from_secs(5)));
    // written back with its kind and table, parsed back the same
    let text = c.to_toml().unwrap();
    assert!(text.contains("kind = \"capacity\"") && text.contains("[phases.capacity]"), "{text}");
    assert_eq!(Config::parse(&text, "back").unwrap().phases, c.phases);
    // a load phase writes no kind
    assert!(!Config::parse(MIN, "t").unwrap().to_toml().unwrap().contains("kind = \"load\""));
    let e = err(CAPACITY);
    assert!(e.contains("`phases[0].capacity`") && e.contains("max_sessions"), "{e}");
    let e = err(&format!("{MIN}[phases.capacity]\nmax_sessions = 8\n"));
    assert!(e.contains("`phases[0].capacity`") && e.contains("kind = \"capacity\""), "{e}");
    let e = err(&format!("{CAPACITY}[phases.capacity]\nmax_sessions = 1\n"));
    assert!(e.contains("`phases[0].capacity.max_sessions` = 1"), "{e}");
    let e = err(&format!("{CAPACITY}[phases.capacity]\nmax_sessions = 4\nstep_duration = \"10s\"\nwarmup = \"10s\"\n"));
    assert!(e.contains("`phases[0].capacity.warmup`") && e.contains("shorter than step_duration"), "{e}");
    let e = err(&format!("{CAPACITY}ops_per_session = 5\n[phases.capacity]\nmax_sessions = 4\n"));
    assert!(e.contains("`phases[0].ops_per_session`"), "{e}");
    let e = err(&format!("{CAPACITY}[phases.capacity]\nmax_sessions = 4\nstep_duration = \"5m\"\n"));
    assert!(e.contains("`phases[0].duration`") && e.contains("at least one step"), "{e}");
    let e = err(&format!("{CAPACITY}[phases.capacity]\nmax_sessions = 4\nsteps = 2\n"));
    assert!(e.contains("steps"), "{e}");
    let e = err("[[phases]]\nname = \"cap\"\nduration = \"2m\"\nsessions = 1\nkind = \"sweep\"\n");
    assert!(e.contains("sweep"), "{e}");
}

#[test]
fn drift_criteria_and_the_drift_minimum_are_read_validated_and_written_back() {
    let text = format!(
        "[campaign]\ndrift_min_phase = \"20s\"\n{MIN}[phases.criteria]\nmax_rss_growth_mb_per_h = 50\nmax_p95_drift_pct_per_h = 12.5\n"
    );
    let c = Config::parse(&text, "t.toml").unwrap();
    assert_eq!(c.campaign.drift_min_phase(), Duration::from_secs(20));
    assert_eq!((c.phases[0].criteria.max_rss_growth_mb_per_h, c.phases[0].criteria.max_p95_drift_pct_per_h), (Some(50.0), Some(12.5)));
    // unset: not judged, and the default minimum
    let plain = Config::parse(MIN, "t.toml").unwrap();
    assert_eq!(plain.phases[0].criteria.max_rss_growth_mb_per_h, None);
    assert_eq!(plain.campaign.drift_min_phase(), DRIFT_MIN_PHASE);
    // the effective config keeps them
    let back = Config::parse(&c.to_toml().unwrap(), "back.toml").unwrap();
    assert_eq!((back.phases[0].criteria, back.campaign.drift_min_phase), (c.phases[0].criteria, c.campaign.drift_min_phase));
    for (key, value) in [
        ("max_rss_growth_mb_per_h", "-1"),
        ("max_rss_growth_mb_per_h", "nan"),
        ("max_p95_drift_pct_per_h", "-0.5"),
        ("max_p95_drift_pct_per_h", "inf"),
    ] {
        let e = err(&format!("{MIN}[phases.criteria]\n{key} = {value}\n"));
        assert!(e.contains(&format!("phases[0].criteria.{key}")) && e.contains("at least 0"), "{e}");
    }
    let e = err(&format!("[campaign]\ndrift_min_phase = \"0s\"\n{MIN}"));
    assert!(e.contains("campaign.drift_min_phase") && e.contains("from 1s"), "{e}");
}

#[test]
fn the_grid_table_takes_a_bounded_capacity_wait_and_a_variable_name_and_names_a_bad_key() {
    let c = Config::parse(MIN, "t").unwrap();
    assert_eq!(c.grid, GridConfig::default(), "absent: no wait, no secret");
    assert_eq!(c.grid.capacity_wait, std::time::Duration::ZERO);
    let c = Config::parse(&format!("[grid]\ncapacity_wait = \"2m\"\n{MIN}"), "t").unwrap();
    assert_eq!(c.grid.capacity_wait, std::time::Duration::from_secs(120));
    for (text, key) in [
        ("capacity_wait = \"25h\"", "grid.capacity_wait"),
        ("capacity_wait = \"soon\"", "capacity_wait"),
        ("registration_secret_env = \"A-B\"", "grid.registration_secret_env"),
        ("queue = 3", "queue"),
    ] {
        let e = err(&format!("[grid]\n{text}\n{MIN}"));
        assert!(e.contains(key), "{text}: {e}");
    }
}
