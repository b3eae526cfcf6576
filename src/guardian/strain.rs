//! How strained the host was while a phase ran: the guardian's samples of the phase folded into
//! a [`Strain`], which escalation judges before the next phase (down after a strained phase, back
//! up to plan after a healthy one). Pure: the campaign feeds it samples.

/// How strained the host was during a phase, from the guardian's samples taken while it ran.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Strain {
    /// Samples taken while the phase ran.
    pub samples: u32,
    /// Of which a metric was within its margin of (or over) its threshold ([`strained_metric`]).
    pub strained_samples: u32,
    /// Sum of the samples' health scores (escalation judges the mean).
    pub health_sum: f64,
    /// The last metric found within its margin, for the reason.
    pub worst: Option<super::Reading>,
}

impl Strain {
    /// One more sample.
    pub fn observe(&mut self, health: f64, strained: Option<super::Reading>) {
        self.samples += 1;
        self.health_sum += health;
        if let Some(r) = strained {
            self.strained_samples += 1;
            self.worst = Some(r);
        }
    }
    /// Mean health over the phase (None without samples).
    pub fn mean_health(&self) -> Option<f64> {
        (self.samples > 0).then(|| self.health_sum / self.samples as f64)
    }
}

/// The headroom a metric needs below its threshold for a phase to count as healthy: 10
/// percentage points, or what is left up to 100 % (a threshold of 100 % cannot be exceeded, so it
/// asks for no margin).
pub fn margin(threshold: f64) -> f64 {
    10.0_f64.min((100.0 - threshold).max(0.0))
}

/// The first judged metric of `s` within its [`margin`] of its threshold, if any.
pub fn strained_metric(s: &super::ResourceSample, t: &super::Thresholds) -> Option<super::Reading> {
    super::Metric::PERCENT
        .iter()
        .map(|&m| super::Reading { metric: m, value: m.value(s), threshold: t.for_metric(m) })
        .find(|r| r.value.is_finite() && r.value > r.threshold - margin(r.threshold))
}
