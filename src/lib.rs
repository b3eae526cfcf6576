//! stressctl: phased, unattended stress campaigns against real browsers.
pub mod breaker;
