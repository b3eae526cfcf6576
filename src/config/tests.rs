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
    assert_eq!(c.workers, vec![WorkerConfig { id: "local".into(), endpoint: WorkerEndpoint::Managed }]);
    assert_eq!(c.phases[0].criteria, StressLevel::Moderate.default_criteria());
    assert_eq!(StressLevel::Extreme.default_criteria(), Criteria { min_success_rate: 0.80, max_p95: Duration::from_secs(8) });
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

#[test]
fn reserve_percent_defaults_to_20_and_is_bounded() {
    assert_eq!(Config::parse(MIN, "t.toml").unwrap().safety.reserve_percent, 20);
    let c = Config::parse(&format!("[safety]\nreserve_percent = 0\n{MIN}"), "t.toml").unwrap();
    assert_eq!(c.safety.reserve_percent, 0);
    let e = err(&format!("[safety]\nreserve_percent = 95\n{MIN}"));
    assert!(e.contains("safety.reserve_percent") && e.contains("0 to 90"), "{e}");
}
