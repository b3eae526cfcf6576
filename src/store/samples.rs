//! The guardian's samples: resource statistics over a phase or the whole campaign, and the host's
//! headroom, summed the way SQLite sums floats so the figures stay what they were when SQL
//! computed them.

use super::reader::Pred;
use super::{HostFigures, StoreError, StoreReader};
use crate::fmt::round3;
use rusqlite::{Row, ToSql};

/// Resource statistics over a phase (from the guardian's samples), rounded to 3 decimals.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ResourceAgg {
    /// Samples.
    pub samples: u64,
    /// CPU % avg.
    pub cpu_avg: f64,
    /// CPU % max.
    pub cpu_max: f64,
    /// Memory % avg.
    pub memory_avg: f64,
    /// Memory % max.
    pub memory_max: f64,
    /// Disk % avg.
    pub disk_avg: f64,
    /// Disk % max.
    pub disk_max: f64,
    /// Campaign process tree RSS MiB avg.
    pub tree_rss_mb_avg: f64,
    /// Campaign process tree RSS MiB max.
    pub tree_rss_mb_max: f64,
    /// Tree CPU % avg (100 = one core).
    pub tree_cpu_avg: f64,
    /// Tree CPU % max.
    pub tree_cpu_max: f64,
    /// Health avg.
    pub health_avg: f64,
    /// Health min.
    pub health_min: f64,
    /// Samples with at least one violation.
    pub violating_samples: u64,
    /// The host's side of the samples: what was left for it (None: a store from before the host
    /// figures were recorded, or no sample).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<HostAgg>,
}

/// The host's headroom over a phase, from the host figures of its samples (percent of all cores
/// for CPU, percent of time for pressure), rounded to 3 decimals.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct HostAgg {
    /// Samples taken while the campaign was confined to its reservation.
    pub confined_samples: u64,
    /// The campaign's CPU cap while confined (None: never confined).
    pub cpu_cap_percent: Option<f64>,
    /// CPU of the campaign, avg.
    pub campaign_cpu_avg: f64,
    /// CPU of the campaign, max.
    pub campaign_cpu_max: f64,
    /// CPU used outside the campaign, avg.
    pub host_cpu_avg: f64,
    /// CPU used outside the campaign, max.
    pub host_cpu_max: f64,
    /// Run-queue wait of the host's threads, avg over the confined samples (None: not measured).
    pub host_wait_avg: Option<f64>,
    /// Run-queue wait, max.
    pub host_wait_max: Option<f64>,
    /// Host CPU demand (used + waited for), avg: what the host CPU rule judges while confined.
    pub host_demand_avg: f64,
    /// Host CPU demand, max: the least headroom the host had is 100 minus this.
    pub host_demand_max: f64,
    /// CPU pressure (some, avg10), max (None: no PSI on this kernel).
    pub cpu_pressure_max: Option<f64>,
    /// Host stall (the larger of memory and io full pressure, avg10), avg.
    pub stall_avg: Option<f64>,
    /// Host stall, max: what the pressure rule judges.
    pub stall_max: Option<f64>,
    /// The phase's CPU threshold, which judges the host's demand while confined (set by the
    /// report from the stored config; None when it does not parse).
    #[serde(default)]
    pub cpu_limit: Option<f64>,
    /// The pressure threshold, where there is PSI (set by the report).
    #[serde(default)]
    pub stall_limit: Option<f64>,
}

/// A sum of floats as SQLite's `sum()`/`avg()` compute it (Kahan-Babuska-Neumaier), so resource
/// averages are the ones SQL gave before they were computed here from verified rows.
#[derive(Default)]
struct KbnSum {
    sum: f64,
    err: f64,
}

impl KbnSum {
    fn add(&mut self, r: f64) {
        let s = self.sum;
        let t = s + r;
        if s.abs() > r.abs() {
            self.err += (s - t) + r;
        } else {
            self.err += (r - t) + s;
        }
        self.sum = t;
    }
    fn avg(&self, n: u64) -> f64 {
        if n == 0 {
            0.0
        } else {
            (self.sum + self.err) / n as f64
        }
    }
}

impl StoreReader {
    /// Resource statistics over `rows` of the samples table (`WHERE` tail and its rows' description).
    fn resources(&self, tail: &str, p: &[&dyn ToSql], pred: Pred<'_>, what: &str) -> Result<ResourceAgg, StoreError> {
        #[derive(Default)]
        struct Acc {
            n: u64,
            cpu: KbnSum,
            memory: KbnSum,
            disk: KbnSum,
            tree_cpu: KbnSum,
            health: KbnSum,
            rss_sum: i128,
            cpu_max: Option<f64>,
            memory_max: Option<f64>,
            disk_max: Option<f64>,
            tree_cpu_max: Option<f64>,
            rss_max: Option<i64>,
            health_min: Option<f64>,
            violating: u64,
        }
        fn max(m: &mut Option<f64>, v: f64) {
            *m = Some(m.map_or(v, |x| x.max(v)));
        }
        let mut a = Acc::default();
        let mut host = HostAcc::default();
        let samples = self.samples_table();
        let with_host = samples.has("cpu_cap");
        self.scan_complete(samples, tail, p, pred, what, |r| {
            if with_host {
                host.add(&host_figures(r)?);
            }
            let (cpu, memory, disk): (f64, f64, f64) = (r.get(5)?, r.get(6)?, r.get(7)?);
            let (rss, tree_cpu, health): (i64, f64, f64) = (r.get(8)?, r.get(9)?, r.get(11)?);
            let violations: String = r.get(12)?;
            a.n += 1;
            a.cpu.add(cpu);
            a.memory.add(memory);
            a.disk.add(disk);
            a.tree_cpu.add(tree_cpu);
            a.health.add(health);
            a.rss_sum += i128::from(rss);
            max(&mut a.cpu_max, cpu);
            max(&mut a.memory_max, memory);
            max(&mut a.disk_max, disk);
            max(&mut a.tree_cpu_max, tree_cpu);
            a.rss_max = Some(a.rss_max.map_or(rss, |x| x.max(rss)));
            a.health_min = Some(a.health_min.map_or(health, |x| x.min(health)));
            if violations != "[]" {
                a.violating += 1;
            }
            Ok(())
        })?;
        let mb = |v: f64| round3(v / (1024.0 * 1024.0));
        let rss_avg = if a.n == 0 { 0.0 } else { a.rss_sum as f64 / a.n as f64 };
        Ok(ResourceAgg {
            samples: a.n,
            cpu_avg: round3(a.cpu.avg(a.n)),
            cpu_max: round3(a.cpu_max.unwrap_or(0.0)),
            memory_avg: round3(a.memory.avg(a.n)),
            memory_max: round3(a.memory_max.unwrap_or(0.0)),
            disk_avg: round3(a.disk.avg(a.n)),
            disk_max: round3(a.disk_max.unwrap_or(0.0)),
            tree_rss_mb_avg: mb(rss_avg),
            tree_rss_mb_max: mb(a.rss_max.unwrap_or(0) as f64),
            tree_cpu_avg: round3(a.tree_cpu.avg(a.n)),
            tree_cpu_max: round3(a.tree_cpu_max.unwrap_or(0.0)),
            health_avg: round3(a.health.avg(a.n)),
            health_min: round3(a.health_min.unwrap_or(0.0)),
            violating_samples: a.violating,
            host: host.finish(),
        })
    }

    /// Resource statistics of a phase.
    pub fn phase_resources(&self, idx: u32) -> Result<ResourceAgg, StoreError> {
        let phase = i64::from(idx);
        self.resources("WHERE phase_idx = ?1 ORDER BY id", &[&phase], &|p, _| p == phase, &format!("samples of phase {idx}"))
    }

    /// Samples in total and with violations (whole campaign).
    pub fn sample_counts(&self) -> Result<(u64, u64), StoreError> {
        let all = self.resources("ORDER BY id", &[], &|_, _| true, "samples")?;
        Ok((all.samples, all.violating_samples))
    }
}

/// The host figures of a `samples` row selected as `rowid, <SAMPLES.cols>, crc` (columns 13–19).
pub(super) fn host_figures(r: &Row<'_>) -> rusqlite::Result<HostFigures> {
    Ok(HostFigures {
        cpu_cap: r.get(13)?,
        campaign_cpu: r.get::<_, Option<f64>>(14)?.unwrap_or(0.0),
        host_cpu: r.get::<_, Option<f64>>(15)?.unwrap_or(0.0),
        host_wait: r.get(16)?,
        psi_cpu: r.get(17)?,
        psi_memory: r.get(18)?,
        psi_io: r.get(19)?,
    })
}

/// Sums of host figures towards a [`HostAgg`].
#[derive(Default)]
struct HostAcc {
    n: u64,
    confined: u64,
    cap: Option<f64>,
    campaign: (KbnSum, f64),
    host: (KbnSum, f64),
    demand: (KbnSum, f64),
    wait: (KbnSum, Option<f64>),
    waits: u64,
    cpu_pressure: Option<f64>,
    stall: (KbnSum, Option<f64>),
    stalls: u64,
}

impl HostAcc {
    fn add(&mut self, h: &HostFigures) {
        let opt_max = |m: Option<f64>, v: f64| Some(m.map_or(v, |x: f64| x.max(v)));
        self.n += 1;
        if let Some(cap) = h.cpu_cap {
            self.confined += 1;
            self.cap = opt_max(self.cap, cap);
        }
        for ((sum, max), v) in [(&mut self.campaign, h.campaign_cpu), (&mut self.host, h.host_cpu), (&mut self.demand, h.demand())] {
            sum.add(v);
            *max = max.max(v);
        }
        if let Some(w) = h.host_wait {
            self.wait.0.add(w);
            self.wait.1 = opt_max(self.wait.1, w);
            self.waits += 1;
        }
        if let Some(c) = h.psi_cpu {
            self.cpu_pressure = opt_max(self.cpu_pressure, c);
        }
        if let Some(st) = h.stall() {
            self.stall.0.add(st);
            self.stall.1 = opt_max(self.stall.1, st);
            self.stalls += 1;
        }
    }

    fn finish(self) -> Option<HostAgg> {
        if self.n == 0 {
            return None;
        }
        let avg_of = |sum: &KbnSum, n: u64| (n > 0).then(|| round3(sum.avg(n)));
        Some(HostAgg {
            confined_samples: self.confined,
            cpu_cap_percent: self.cap.map(round3),
            campaign_cpu_avg: round3(self.campaign.0.avg(self.n)),
            campaign_cpu_max: round3(self.campaign.1),
            host_cpu_avg: round3(self.host.0.avg(self.n)),
            host_cpu_max: round3(self.host.1),
            host_wait_avg: avg_of(&self.wait.0, self.waits),
            host_wait_max: self.wait.1.map(round3),
            host_demand_avg: round3(self.demand.0.avg(self.n)),
            host_demand_max: round3(self.demand.1),
            cpu_pressure_max: self.cpu_pressure.map(round3),
            stall_avg: avg_of(&self.stall.0, self.stalls),
            stall_max: self.stall.1.map(round3),
            cpu_limit: None,
            stall_limit: None,
        })
    }
}
