//! stressctl: phased, unattended stress campaigns against real browsers (WebGPU/WebNN) that keep
//! the host safe while they run.
//!
//! The binary (`src/main.rs`) is a thin shell over this library: [`cli`] parses the command line,
//! [`app`] runs the commands. See `DESIGN.md` in the project's shared folder for the architecture.
#![warn(missing_docs)]

pub mod breaker;
pub mod browser;
pub mod config;
pub mod guardian;
pub mod metrics;
pub mod recovery;
pub mod store;
pub mod tasks;
pub mod report;
pub mod app;
pub mod campaign;
pub mod cli;
pub mod control;
pub mod logging;
