//! The `stressctl` binary: parse the command line, run the command, exit with its code.
use clap::Parser;

fn main() -> std::process::ExitCode {
    stressctl::app::run(stressctl::cli::Cli::parse())
}
