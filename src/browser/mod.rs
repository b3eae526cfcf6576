//! Browsers: managed chromedriver processes, WebDriver sessions and the worker pool.
pub mod driver;
pub mod grid;
pub mod grid_status;
pub mod pool;
pub mod process;
pub mod session;
