//! The dashboard's pages, script and styles, and the vendored chart library, embedded in the
//! binary: the dashboard and `report.html` work offline and never load anything from elsewhere.
//!
//! uPlot 1.6.32 (MIT, © Leon Sorokin) is vendored from the npm registry by
//! `scripts/setup.sh --vendor-check`, which verifies the package's sha512 and the files' sha256
//! listed in `assets/dashboard/vendor/uplot/SHA256SUMS`.

/// `/`: campaign and phase progress, ops, success, latency, resources, events.
pub const OVERVIEW_HTML: &str = include_str!("../../assets/dashboard/overview.html");
/// `/circuit-breakers`: breaker states, timeline, rejections, time open, recovery results.
pub const BREAKERS_HTML: &str = include_str!("../../assets/dashboard/breakers.html");
/// The pages' script (also inlined in `report.html`).
pub const DASHBOARD_JS: &str = include_str!("../../assets/dashboard/dashboard.js");
/// The pages' styles (also inlined in `report.html`).
pub const DASHBOARD_CSS: &str = include_str!("../../assets/dashboard/dashboard.css");
/// uPlot, minified (IIFE build: defines `window.uPlot`).
pub const UPLOT_JS: &str = include_str!("../../assets/dashboard/vendor/uplot/uPlot.iife.min.js");
/// uPlot's styles.
pub const UPLOT_CSS: &str = include_str!("../../assets/dashboard/vendor/uplot/uPlot.min.css");
/// uPlot's licence (MIT), served beside it and quoted in `report.html`.
pub const UPLOT_LICENSE: &str = include_str!("../../assets/dashboard/vendor/uplot/LICENSE");
