//! Browsers: managed chromedriver processes, WebDriver sessions and the worker pool.
pub mod driver;
pub mod process;
