//! `GET /metrics`: the campaign in the Prometheus text format (0.0.4), encoded by
//! `prometheus-client` from the model and the breaker registry at scrape time.
//!
//! Breaker metrics are named after resilience4j's Micrometer binding, so dashboards built for
//! it read these: `stressctl_circuitbreaker_state{name,state}` (1 for the current state, 0 for
//! the others), `stressctl_circuitbreaker_calls_total{name,kind=successful|failed}`,
//! `stressctl_circuitbreaker_not_permitted_calls_total{name}` and
//! `stressctl_circuitbreaker_failure_rate{name}` (percent over the breaker's window, -1 while the
//! window is empty, as resilience4j reports "not enough calls").
//!
//! Every `_total` is a sum over data that is only ever added to (op windows, events, breaker
//! counters), so counters never go down while the process lives.

use super::model::{Model, LATENCY_BOUNDS_S, NO_BROWSER};
use crate::breaker::{BreakerState, RegistrySnapshot};
use crate::progress::BreakerFeed;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, MetricEncoder, NoLabelSet};
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Registry;
use std::sync::{Arc, Mutex};

/// `Content-Type` of the answer.
pub const CONTENT_TYPE: &str = prometheus_client::encoding::prometheus_text::CONTENT_TYPE;

const STATES: [BreakerState; 5] =
    [BreakerState::Closed, BreakerState::Open, BreakerState::HalfOpen, BreakerState::ForcedOpen, BreakerState::Disabled];

/// Encodes the model (and, live, the breaker registry) at each scrape.
pub struct CampaignCollector {
    model: Arc<Mutex<Model>>,
    breakers: Option<BreakerFeed>,
}

impl std::fmt::Debug for CampaignCollector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CampaignCollector")
    }
}

/// A registry holding the campaign's collector.
pub fn registry(model: Arc<Mutex<Model>>, breakers: Option<BreakerFeed>) -> Registry {
    let mut r = Registry::default();
    r.register_collector(Box::new(CampaignCollector { model, breakers }));
    r
}

/// The text a scrape gets.
pub fn encode(r: &Registry) -> Result<String, std::fmt::Error> {
    let mut out = String::with_capacity(16 * 1024);
    prometheus_client::encoding::prometheus_text::encode(&mut out, r)?;
    Ok(out)
}

type Labels<'a> = Vec<(&'static str, &'a str)>;

/// One metric family being written.
struct Family<'e>(MetricEncoder<'e>);

fn family<'e>(enc: &'e mut DescriptorEncoder<'_>, name: &'e str, help: &str, t: MetricType) -> Result<Family<'e>, std::fmt::Error> {
    Ok(Family(enc.encode_descriptor(name, help, None, t)?))
}

impl Family<'_> {
    fn counter(&mut self, labels: &Labels<'_>, v: u64) -> Result<(), std::fmt::Error> {
        self.0.encode_family(labels)?.encode_counter::<NoLabelSet, u64, u64>(&v, None)
    }
    fn counter_f(&mut self, labels: &Labels<'_>, v: f64) -> Result<(), std::fmt::Error> {
        self.0.encode_family(labels)?.encode_counter::<NoLabelSet, f64, f64>(&v, None)
    }
    fn gauge(&mut self, labels: &Labels<'_>, v: f64) -> Result<(), std::fmt::Error> {
        self.0.encode_family(labels)?.encode_gauge(&v)
    }
}

impl Collector for CampaignCollector {
    fn encode(&self, mut enc: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        // the live registry first, outside the model's lock
        let live = self.breakers.as_ref().and_then(|f| f());
        let m = self.model.lock().unwrap_or_else(|e| e.into_inner());
        let snapshot: Option<&RegistrySnapshot> = live.as_ref().or(m.final_snapshot());
        let meta = m.meta();

        family(&mut enc, "stressctl_campaign_info", "The campaign this stressctl serves (always 1).", MetricType::Gauge)?
            .gauge(&vec![("id", meta.id.as_str()), ("profile", meta.profile.as_str())], 1.0)?;
        family(&mut enc, "stressctl_campaign_ended", "1 once the campaign has ended.", MetricType::Gauge)?
            .gauge(&vec![], if meta.ended { 1.0 } else { 0.0 })?;
        family(&mut enc, "stressctl_campaign_phase", "1-based index of the running phase (0 between phases).", MetricType::Gauge)?
            .gauge(&vec![], m.running_phase().map(|p| f64::from(p.index) + 1.0).unwrap_or(0.0))?;

        let mut f = family(
            &mut enc,
            "stressctl_ops",
            "Ops that ended, per phase, task kind, worker, its browser (none: synthetic) and outcome.",
            MetricType::Counter,
        )?;
        for ((phase, task, worker), c) in m.op_counts() {
            let name = m.phase_name(*phase);
            let browser = m.browser_of(worker).unwrap_or(NO_BROWSER);
            for (outcome, v) in [("succeeded", c.succeeded), ("failed", c.failed)] {
                let labels = vec![
                    ("phase", name.as_str()),
                    ("task", task.as_str()),
                    ("worker", worker.as_str()),
                    ("browser", browser),
                    ("outcome", outcome),
                ];
                f.counter(&labels, v)?;
            }
        }

        let mut hist = enc.encode_descriptor(
            "stressctl_op_latency_seconds",
            "Op latency per phase, task kind and browser (none: synthetic).",
            None,
            MetricType::Histogram,
        )?;
        for ((phase, task, browser), b) in m.latency() {
            let name = m.phase_name(*phase);
            let labels: Labels<'_> = vec![("phase", name.as_str()), ("task", task.as_str()), ("browser", browser.as_str())];
            let mut buckets: Vec<(f64, u64)> = LATENCY_BOUNDS_S.iter().copied().zip(b.counts.iter().copied()).collect();
            buckets.push((f64::INFINITY, b.counts[LATENCY_BOUNDS_S.len()]));
            hist.encode_family(&labels)?.encode_histogram::<NoLabelSet>(b.sum_s, b.count, &buckets, None)?;
        }

        if let Some(s) = snapshot {
            encode_breakers(&mut enc, s)?;
        }

        let g = m.guardian();
        if let Some(s) = &g.last {
            for (name, help, v) in [
                ("stressctl_guardian_cpu_percent", "System CPU in the latest guardian sample, percent.", s.cpu),
                ("stressctl_guardian_memory_percent", "Memory in use in the latest guardian sample, percent.", s.memory),
                ("stressctl_guardian_disk_percent", "Disk of the output dir in the latest guardian sample, percent.", s.disk),
                ("stressctl_guardian_browser_tree_rss_bytes", "RSS of the campaign's browsers and drivers, bytes.", s.tree_rss as f64),
                ("stressctl_guardian_health_score", "Health score of the latest sample (0-100).", s.health),
            ] {
                family(&mut enc, name, help, MetricType::Gauge)?.gauge(&vec![], v)?;
            }
        }
        if let Some(t) = &g.last_limits {
            let mut f =
                family(&mut enc, "stressctl_guardian_threshold_percent", "Guardian thresholds in force, percent.", MetricType::Gauge)?;
            for (metric, v) in [("cpu", t.cpu_percent), ("memory", t.memory_percent), ("disk", t.disk_percent)] {
                f.gauge(&vec![("metric", metric)], v)?;
            }
        }
        family(&mut enc, "stressctl_guardian_samples", "Guardian samples taken.", MetricType::Counter)?.counter(&vec![], g.samples)?;
        family(&mut enc, "stressctl_guardian_violating_samples", "Guardian samples over a threshold.", MetricType::Counter)?
            .counter(&vec![], g.violating)?;

        encode_nodes(&mut enc, m.nodes())?;

        let mut f = family(
            &mut enc,
            "stressctl_recoveries",
            "Recovery ladder walks, per failure class, strategy and outcome.",
            MetricType::Counter,
        )?;
        for ((class, strategy, outcome), n) in m.recovery_outcomes() {
            f.counter(&vec![("class", class.as_str()), ("strategy", strategy.as_str()), ("outcome", outcome.as_str())], *n)?;
        }

        let mut f = family(&mut enc, "stressctl_events", "Events recorded, per kind.", MetricType::Counter)?;
        for (kind, n) in m.event_counts() {
            f.counter(&vec![("kind", *kind)], *n)?;
        }
        Ok(())
    }
}

/// The watched nodes: their latest node_exporter figures, whether each is drained, and its drains
/// so far (none of these families when no node is watched).
fn encode_nodes(enc: &mut DescriptorEncoder<'_>, nodes: &super::nodes::Nodes) -> Result<(), std::fmt::Error> {
    if nodes.iter().next().is_none() {
        return Ok(());
    }
    type Get = fn(&super::nodes::NodeView) -> Option<f64>;
    let gauges: [(&str, &str, Get); 4] = [
        ("stressctl_node_cpu_percent", "A watched node's CPU busy in its latest scrape, percent.", |n| n.cpu),
        ("stressctl_node_memory_percent", "A watched node's memory in use in its latest scrape, percent.", |n| n.memory),
        ("stressctl_node_disk_percent", "A watched node's root filesystem used in its latest scrape, percent.", |n| n.disk),
        ("stressctl_node_pressure_percent", "A watched node's memory/io full stall in its latest scrape, percent.", |n| n.pressure),
    ];
    for (name, help, get) in gauges {
        let mut f = family(enc, name, help, MetricType::Gauge)?;
        for n in nodes.iter() {
            if let Some(v) = get(n) {
                f.gauge(&vec![("worker", n.worker.as_str()), ("node", n.node.as_str())], v)?;
            }
        }
    }
    let mut f = family(enc, "stressctl_node_drained", "1 while a watched node is drained (gets no work), else 0.", MetricType::Gauge)?;
    for n in nodes.iter() {
        f.gauge(&vec![("worker", n.worker.as_str()), ("node", n.node.as_str())], if n.state == "drained" { 1.0 } else { 0.0 })?;
    }
    let mut f = family(enc, "stressctl_node_drains", "Times a watched node was drained.", MetricType::Counter)?;
    for n in nodes.iter() {
        f.counter(&vec![("worker", n.worker.as_str()), ("node", n.node.as_str())], n.drains_total)?;
    }
    Ok(())
}

fn encode_breakers(enc: &mut DescriptorEncoder<'_>, s: &RegistrySnapshot) -> Result<(), std::fmt::Error> {
    let keys: Vec<(String, &crate::breaker::BreakerMetrics)> = s.iter().map(|(scope, name, b)| (format!("{scope}:{name}"), b)).collect();
    let mut f = family(enc, "stressctl_circuitbreaker_state", "1 for the breaker's current state, 0 for the others.", MetricType::Gauge)?;
    for (k, b) in &keys {
        for st in STATES {
            f.gauge(&vec![("name", k.as_str()), ("state", st.as_str())], if b.state == st { 1.0 } else { 0.0 })?;
        }
    }
    let mut f = family(enc, "stressctl_circuitbreaker_calls", "Calls the breaker permitted, by result.", MetricType::Counter)?;
    for (k, b) in &keys {
        f.counter(&vec![("name", k.as_str()), ("kind", "successful")], b.successes)?;
        f.counter(&vec![("name", k.as_str()), ("kind", "failed")], b.failures)?;
    }
    let mut f = family(enc, "stressctl_circuitbreaker_not_permitted_calls", "Calls the breaker rejected.", MetricType::Counter)?;
    for (k, b) in &keys {
        f.counter(&vec![("name", k.as_str())], b.rejected)?;
    }
    let mut f = family(
        enc,
        "stressctl_circuitbreaker_failure_rate",
        "Failure rate over the breaker's window, percent (-1: no calls yet).",
        MetricType::Gauge,
    )?;
    for (k, b) in &keys {
        f.gauge(&vec![("name", k.as_str())], if b.window_calls == 0 { -1.0 } else { 100.0 - b.health_percent })?;
    }
    let mut f = family(enc, "stressctl_circuitbreaker_opens", "Times the breaker opened on its own.", MetricType::Counter)?;
    for (k, b) in &keys {
        f.counter(&vec![("name", k.as_str())], b.opens)?;
    }
    let mut f = family(enc, "stressctl_circuitbreaker_open_seconds", "Time the breaker spent open, seconds.", MetricType::Counter)?;
    for (k, b) in &keys {
        f.counter_f(&vec![("name", k.as_str())], b.total_open_time.as_secs_f64())?;
    }
    Ok(())
}

/// The strict text-format parser the integration tests use too.
#[cfg(test)]
#[path = "../../tests/suite/common/promtext.rs"]
mod promtext;

#[cfg(test)]
mod tests {
    use super::promtext;
    use super::*;
    use crate::dashboard::model::{Limits, WindowIn};
    use crate::dashboard::series::{OpsRow, SampleRow};
    use crate::events::{Event, EventRecord};
    use std::time::{Duration, UNIX_EPOCH};

    fn model() -> Arc<Mutex<Model>> {
        let mut m = Model::new("c1", "quick", 0, 1000, Limits::default(), "store");
        let rec = |event| EventRecord { at: UNIX_EPOCH + Duration::from_secs(1), corr: String::new(), phase: Some(0), event };
        m.on_event(&rec(Event::PhaseStarted {
            name: "warm \"up\"".into(),
            total: 1,
            sessions: 1,
            sessions_planned: 1,
            duration_ms: 1000,
            task: "synthetic".into(),
        }));
        m.on_event(&rec(Event::RecoveryAttempted {
            class: crate::recovery::FailureClass::Timeout,
            strategy: "retry".into(),
            level: 1,
            outcome: "succeeded".into(),
            worker: "w".into(),
            time_to_recover_ms: None,
        }));
        let mut h = crate::metrics::new_histogram();
        crate::metrics::record_latency(&mut h, Duration::from_millis(20));
        m.on_window(&WindowIn {
            phase: 0,
            worker: "synthetic",
            task: "synthetic",
            ops: OpsRow { start_ms: 0, end_ms: 1000, attempted: 1, succeeded: 1, hist: Some(&h) },
            failed: 0,
        });
        m.on_sample(SampleRow { at_ms: 1000, cpu: 12.5, memory: 40.0, disk: 3.0, tree_rss: 1 << 20, health: 99.0, ..Default::default() });
        Arc::new(Mutex::new(m))
    }

    #[test]
    fn metrics_text_parses_and_names_follow_resilience4j() {
        let snap: RegistrySnapshot = serde_json::from_value(serde_json::json!({
            "aggregate": {"total": 1, "open": 1, "half_open": 0, "closed": 0, "forced_open": 0, "disabled": 0, "average_health": 40.0},
            "workers": {"w1": {"state": "open", "calls": 10, "successes": 4, "failures": 6, "rejected": 3, "opens": 1, "recoveries": 0,
                "total_open_time_ms": 1500, "mean_open_time_ms": 1500, "health_percent": 40.0, "window_calls": 10,
                "open_timeout_ms": 10000, "consecutive_opens": 1, "history": [], "history_dropped": 0}},
            "browsers": {}, "tasks": {},
            "hardware_classes": {"swiftshader": {"state": "closed", "calls": 5, "successes": 5, "failures": 0, "rejected": 0, "opens": 0,
                "recoveries": 0, "total_open_time_ms": 0, "mean_open_time_ms": 0, "health_percent": 100.0, "window_calls": 5,
                "open_timeout_ms": 10000, "consecutive_opens": 0, "history": [], "history_dropped": 0}}
        }))
        .unwrap();
        let feed: BreakerFeed = Arc::new(move || Some(snap.clone()));
        let text = encode(&registry(model(), Some(feed))).unwrap();
        let parsed = promtext::parse(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
        let get =
            |name: &str, labels: &[(&str, &str)]| parsed.value(name, labels).unwrap_or_else(|| panic!("no {name}{labels:?} in\n{text}"));
        assert_eq!(get("stressctl_circuitbreaker_state", &[("name", "worker:w1"), ("state", "open")]), 1.0);
        assert_eq!(get("stressctl_circuitbreaker_state", &[("name", "worker:w1"), ("state", "closed")]), 0.0);
        assert_eq!(get("stressctl_circuitbreaker_state", &[("name", "hardware:swiftshader"), ("state", "closed")]), 1.0);
        assert_eq!(get("stressctl_circuitbreaker_calls_total", &[("name", "worker:w1"), ("kind", "successful")]), 4.0);
        assert_eq!(get("stressctl_circuitbreaker_calls_total", &[("name", "worker:w1"), ("kind", "failed")]), 6.0);
        assert_eq!(get("stressctl_circuitbreaker_not_permitted_calls_total", &[("name", "worker:w1")]), 3.0);
        assert_eq!(get("stressctl_circuitbreaker_failure_rate", &[("name", "worker:w1")]), 60.0);
        assert_eq!(parsed.type_of("stressctl_circuitbreaker_calls_total"), Some("counter"));
        // the phase name's quotes are escaped and read back
        let ops = [("phase", "warm \"up\""), ("task", "synthetic"), ("worker", "synthetic"), ("browser", "none"), ("outcome", "succeeded")];
        assert_eq!(get("stressctl_ops_total", &ops), 1.0);
        let lat = |le: Option<&'static str>| {
            let mut l = vec![("phase", "warm \"up\""), ("task", "synthetic"), ("browser", "none")];
            l.extend(le.map(|v| ("le", v)));
            l
        };
        assert_eq!(get("stressctl_op_latency_seconds_count", &lat(None)), 1.0);
        assert_eq!(get("stressctl_op_latency_seconds_bucket", &lat(Some("0.025"))), 1.0);
        assert_eq!(get("stressctl_op_latency_seconds_bucket", &lat(Some("0.01"))), 0.0);
        assert_eq!(get("stressctl_guardian_cpu_percent", &[]), 12.5);
        assert_eq!(get("stressctl_recoveries_total", &[("class", "timeout"), ("strategy", "retry"), ("outcome", "succeeded")]), 1.0);
        assert_eq!(get("stressctl_events_total", &[("kind", "phase_started")]), 1.0);
    }

    #[test]
    fn ops_and_latency_carry_the_browser_of_their_worker() {
        use crate::events::WorkerInfo;
        let mut m = Model::new("c2", "custom", 0, 1000, Limits::default(), "store");
        let at = |ms| UNIX_EPOCH + Duration::from_millis(ms);
        let worker = |id: &str, browser: &str| WorkerInfo {
            id: id.into(),
            browser: browser.into(),
            webgpu_adapter: "software".into(),
            endpoint: "managed".into(),
        };
        m.on_event(&EventRecord {
            at: at(0),
            corr: String::new(),
            phase: None,
            event: Event::CampaignStarted {
                profile: "custom".into(),
                config_source: "c.toml".into(),
                phases: 1,
                planned_ms: 1000,
                pid: 1,
                pass_phase_ratio: None,
                pass_success_rate: None,
                faults: Vec::new(),
                workers: vec![worker("cr", "chromium"), worker("ff", "firefox"), worker("grid", "firefox")],
            },
        });
        let mut h = crate::metrics::new_histogram();
        crate::metrics::record_latency(&mut h, Duration::from_millis(20));
        // a Grid node's windows are its worker's; a worker the event did not name ran Chromium
        for (worker, n) in [("cr", 1), ("ff", 2), ("grid/node-1", 3), ("old", 4)] {
            m.on_window(&WindowIn {
                phase: 0,
                worker,
                task: "webgpu",
                ops: OpsRow { start_ms: 0, end_ms: 1000, attempted: n, succeeded: n, hist: Some(&h) },
                failed: 0,
            });
        }
        let text = encode(&registry(Arc::new(Mutex::new(m)), None)).unwrap();
        let parsed = promtext::parse(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
        let ops = |worker, browser| {
            parsed.value(
                "stressctl_ops_total",
                &[("phase", "0"), ("task", "webgpu"), ("worker", worker), ("browser", browser), ("outcome", "succeeded")],
            )
        };
        assert_eq!(ops("cr", "chromium"), Some(1.0), "{text}");
        assert_eq!(ops("ff", "firefox"), Some(2.0), "{text}");
        assert_eq!(ops("grid/node-1", "firefox"), Some(3.0), "{text}");
        assert_eq!(ops("old", "chromium"), Some(4.0), "{text}");
        let count =
            |browser| parsed.value("stressctl_op_latency_seconds_count", &[("phase", "0"), ("task", "webgpu"), ("browser", browser)]);
        assert_eq!(count("chromium"), Some(2.0), "cr and old, one window each: {text}");
        assert_eq!(count("firefox"), Some(2.0), "{text}");
    }

    #[test]
    fn watched_nodes_are_gauges_and_their_samples_stay_out_of_the_event_stream() {
        let mut m = Model::new("c3", "grid", 0, 1000, Limits::default(), "store");
        let rec = |s: u64, event| EventRecord { at: UNIX_EPOCH + Duration::from_secs(s), corr: String::new(), phase: Some(0), event };
        for s in 1..=5 {
            let ev = Event::NodeSample {
                worker: "grid".into(),
                node: "n1".into(),
                cpu: Some(20.0),
                memory: 50.0 + s as f64,
                disk: None,
                pressure: None,
            };
            m.on_event(&rec(s, ev));
        }
        m.on_event(&rec(
            6,
            Event::NodeSample { worker: "grid".into(), node: "n2".into(), cpu: None, memory: 95.0, disk: Some(3.0), pressure: Some(1.5) },
        ));
        m.on_event(&rec(
            7,
            Event::NodeDrained { worker: "grid".into(), node: "n2".into(), reason: "node_distress: memory 95 % > 90 %".into() },
        ));
        let (kept, _rx) = m.subscribe(0);
        assert_eq!(kept.len(), 1, "only the drain is news: {:?}", kept.iter().map(|i| &i.json).collect::<Vec<_>>());
        assert!(kept[0].json.contains("node_drained"));
        let o = m.overview(None);
        assert_eq!(o.nodes.len(), 2);
        assert_eq!((o.nodes[0].samples, o.nodes[0].memory, o.nodes[0].series.t.len()), (5, Some(55.0), 5));
        assert_eq!(o.nodes[1].state, "drained");
        let json = serde_json::to_value(&o).unwrap();
        assert_eq!(json["nodes"][1]["why"], "node_distress: memory 95 % > 90 %");
        let text = encode(&registry(Arc::new(Mutex::new(m)), None)).unwrap();
        let parsed = promtext::parse(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
        let n = |node| [("worker", "grid"), ("node", node)];
        assert_eq!(parsed.value("stressctl_node_memory_percent", &n("n1")), Some(55.0), "{text}");
        assert_eq!(parsed.value("stressctl_node_cpu_percent", &n("n2")), None, "no CPU figure on a first scrape: {text}");
        assert_eq!(parsed.value("stressctl_node_pressure_percent", &n("n2")), Some(1.5), "{text}");
        assert_eq!(parsed.value("stressctl_node_drained", &n("n2")), Some(1.0), "{text}");
        assert_eq!(parsed.value("stressctl_node_drained", &n("n1")), Some(0.0), "{text}");
        assert_eq!(parsed.value("stressctl_node_drains_total", &n("n2")), Some(1.0), "{text}");
        assert_eq!(parsed.value("stressctl_events_total", &[("kind", "node_sample")]), Some(6.0), "still counted: {text}");
    }

    #[test]
    fn no_watched_node_no_node_families() {
        let text = encode(&registry(model(), None)).unwrap();
        assert!(!text.contains("stressctl_node_"), "{text}");
    }
}
