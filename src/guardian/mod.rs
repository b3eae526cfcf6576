//! The guardian: samples host resources, tracks threshold violations, trips the emergency stop.
pub mod procfs;
