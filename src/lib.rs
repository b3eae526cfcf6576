//! stressctl: phased, unattended stress campaigns against real browsers (WebGPU/WebNN) that keep
//! the host safe while they run.
//!
//! The binary (`src/main.rs`) is a thin shell over this library: [`cli`] parses the command line,
//! [`app`] runs the commands. See `DESIGN.md` in the project's shared folder for the architecture.
#![warn(missing_docs)]

pub mod app;
pub mod breaker;
pub mod browser;
pub mod campaign;
pub mod cli;
pub mod config;
pub mod confine;
pub mod control;
pub mod dashboard;
pub mod events;
pub mod fmt;
pub mod guardian;
pub mod logging;
pub mod metrics;
pub mod preflight;
pub mod progress;
pub mod recovery;
pub mod report;
pub mod store;
pub mod tasks;
