//! stressctl: phased, unattended stress campaigns against real browsers (WebGPU/WebNN) that keep
//! the host safe while they run.
//!
//! The binary (`src/main.rs`) is a thin shell over this library: [`cli`] parses the command line,
//! [`app`] runs the commands. See `DESIGN.md` in the project's shared folder for the architecture.
//!
//! ## Layers
//!
//! Every module sits in one layer and imports only from its own layer or the ones below it, and
//! no two modules import each other, directly or round a cycle (`tests/suite/layers.rs` reads
//! `src/` and fails, naming file and line, on an import against this map). Top layer first:
//!
//! ```text
//! app, cli, logging                                   the commands: parse, run, print, exit
//! campaign                                            runs phases: slots, escalation, halt logic
//! report, dashboard, progress                         read the store and the live run; show them
//! preflight, tasks, browser, control, notify          browsers, drivers, pages; the control socket; notifications
//! events, store, config                               what happened, where it is kept, what was asked
//! guardian, confine, breaker, recovery, metrics, onnx, procfs, fmt    pure parts and OS readers
//! ```
//!
//! Why this order: the campaign is the one place that puts the parts together, so it sits above
//! everything it drives and below only the commands. The readers of a run (report, dashboard,
//! progress) are above the browser layer because the report describes adapters and model tasks,
//! and the HTML report embeds the dashboard's model (report → dashboard, never back). Tasks run on
//! browser sessions (tasks → browser), and the preflight checks drive both. Events are written to
//! the store (events → store) and the store reads config only for the shape of what it keeps
//! (store → config). The bottom layer holds what needs nothing of stressctl's beyond its own
//! layer: the breaker state machine, failure classes and the ladder (with the WebDriver error
//! mapping), the guardian's sampler over `confine` and `procfs`, the ONNX signature reader that
//! config validation needs, and the formatting every layer prints with.
//!
//! Types that several layers share live in the lowest layer that needs them: the status document
//! in [`control::status`], failure classes in [`recovery`], model signatures in [`onnx`], the
//! dashboard's address parsing in [`config::addr`], error chains and terminal lines in [`fmt`].
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
pub mod notify;
pub mod onnx;
pub mod preflight;
pub mod procfs;
pub mod progress;
pub mod recovery;
pub mod report;
pub mod store;
pub mod tasks;
