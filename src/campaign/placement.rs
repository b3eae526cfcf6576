//! Where a phase's sessions go: a pure function of the workers' browsers and health, the
//! phase's `browsers` list and `[browser_preference]`.
//!
//! - A phase with `browsers = [...]` spreads its sessions over those browsers, alternating
//!   between them, on their healthy workers.
//! - Otherwise, a task (or model type) with a preference goes to the first browser of its list
//!   whose breaker is closed and which has a healthy worker; later browsers take over when it
//!   opens.
//! - Otherwise, sessions spread over every healthy worker, alternating browsers.
//!
//! Unhealthy workers are used only when no allowed worker is healthy (the ops then fail fast
//! and the breakers say why, rather than a phase with nowhere to run).

use crate::config::BrowserKind;

/// A worker as placement sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Candidate {
    /// Index in the pool.
    pub ix: usize,
    /// Its browser.
    pub browser: BrowserKind,
    /// Its worker breaker is closed.
    pub healthy: bool,
}

/// The worker index for each of `sessions` sessions. `ranked` is best first; `browser_ok` says
/// whether a browser's breaker is closed.
pub fn place(
    sessions: u32,
    ranked: &[Candidate],
    phase_browsers: &[BrowserKind],
    preference: Option<&[BrowserKind]>,
    browser_ok: impl Fn(BrowserKind) -> bool,
) -> Vec<usize> {
    let allowed: Vec<Candidate> =
        ranked.iter().copied().filter(|c| phase_browsers.is_empty() || phase_browsers.contains(&c.browser)).collect();
    if allowed.is_empty() {
        return Vec::new();
    }
    let healthy: Vec<Candidate> = allowed.iter().copied().filter(|c| c.healthy).collect();
    let pool = if healthy.is_empty() { allowed } else { healthy };
    let pool = match (phase_browsers.is_empty(), preference) {
        (true, Some(prefs)) => {
            let chosen = prefs.iter().find(|b| browser_ok(**b) && pool.iter().any(|c| c.browser == **b));
            match chosen {
                Some(b) => pool.into_iter().filter(|c| c.browser == *b).collect(),
                None => pool,
            }
        }
        _ => pool,
    };
    // alternate browsers: one worker of each browser in turn, each browser's workers in rank order
    let mut order: Vec<BrowserKind> = Vec::new();
    for c in &pool {
        if !order.contains(&c.browser) {
            order.push(c.browser);
        }
    }
    let per_browser: Vec<Vec<usize>> = order.iter().map(|b| pool.iter().filter(|c| c.browser == *b).map(|c| c.ix).collect()).collect();
    let mut interleaved = Vec::with_capacity(pool.len());
    for round in 0.. {
        let before = interleaved.len();
        for list in &per_browser {
            if let Some(ix) = list.get(round) {
                interleaved.push(*ix);
            }
        }
        if interleaved.len() == before {
            break;
        }
    }
    (0..sessions as usize).map(|s| interleaved[s % interleaved.len()]).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use BrowserKind::{Chromium as C, Firefox as F};

    fn cand(ix: usize, browser: BrowserKind, healthy: bool) -> Candidate {
        Candidate { ix, browser, healthy }
    }

    #[test]
    fn spreads_over_healthy_workers_alternating_browsers() {
        let ranked = [cand(0, C, true), cand(1, C, true), cand(2, F, true), cand(3, F, false)];
        assert_eq!(place(4, &ranked, &[], None, |_| true), [0, 2, 1, 0]);
    }

    #[test]
    fn a_phase_browser_list_restricts_and_alternates() {
        let ranked = [cand(0, C, true), cand(1, F, true)];
        assert_eq!(place(3, &ranked, &[F], None, |_| true), [1, 1, 1]);
        assert_eq!(place(4, &ranked, &[C, F], None, |_| true), [0, 1, 0, 1]);
    }

    #[test]
    fn preference_follows_the_first_closed_browser() {
        let ranked = [cand(0, C, true), cand(1, F, true)];
        let pref = [F, C];
        assert_eq!(place(2, &ranked, &[], Some(&pref), |_| true), [1, 1]);
        // firefox's breaker open: chromium takes over
        assert_eq!(place(2, &ranked, &[], Some(&pref), |b| b != F), [0, 0]);
        // the preferred browser has no healthy worker: the next one
        let ranked = [cand(0, C, true), cand(1, F, false)];
        assert_eq!(place(2, &ranked, &[], Some(&pref), |_| true), [0, 0]);
        // a phase's own list wins over the preference
        let ranked = [cand(0, C, true), cand(1, F, true)];
        assert_eq!(place(2, &ranked, &[C], Some(&pref), |_| true), [0, 0]);
    }

    #[test]
    fn nothing_healthy_uses_every_allowed_worker() {
        let ranked = [cand(0, C, false), cand(1, F, false)];
        assert_eq!(place(2, &ranked, &[], None, |_| true), [0, 1]);
        assert!(place(2, &[], &[], None, |_| true).is_empty());
    }
}
