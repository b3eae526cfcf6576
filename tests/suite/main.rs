//! stressctl's integration tests, one test binary: the real `stressctl` binary against real
//! browsers, drivers, a Selenium Grid and its own store, plus the source-shape check.
//!
//! One binary rather than one per file, so that the tests that need no browser run beside the
//! browser tests (which take turns on [`common::BrowserLock`]) instead of after them, and the
//! suite links once. Run one file's tests with `cargo test --test suite grid::`, one test with its
//! full name.

mod breaker_vectors;
mod browser;
mod capacity;
mod check;
mod ci_outputs;
mod cli;
mod common;
mod control;
mod dashboard;
mod dashboard_browser;
mod degraded;
mod drift;
mod firefox;
mod grid;
mod hardware;
mod layers;
mod lifecycle;
mod logs;
mod model;
mod netlab;
mod night;
mod nodes;
mod notify;
mod operator;
mod orphans;
mod overnight;
mod page_js;
mod reservation;
mod resilience;
mod server;
mod store_integrity;
mod synthetic;
mod transport;
mod tune;
mod unsupported;
