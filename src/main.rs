//! The `custody` binary: a thin shell around [`custody::cli::run`].

use std::process::ExitCode;

fn main() -> ExitCode {
    custody::cli::run(std::env::args_os())
}
