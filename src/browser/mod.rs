//! Browsers: managed drivers (chromedriver, geckodriver), WebDriver sessions, the WebGPU adapter
//! each browser is launched for, and the worker pool.
pub mod adapter;
pub mod driver;
pub mod grid;
pub mod grid_pool;
pub mod grid_status;
pub mod pool;
pub mod process;
pub mod session;
