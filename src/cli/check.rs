//! `tidewatch check`: validate policy files.

use std::path::Path;
use std::process::ExitCode;

use tidewatch::config::{Config, ConfigError};

/// Prints one summary line per file and exits 0, or lists every problem on
/// stderr and exits 1.
pub fn run(path: &Path) -> ExitCode {
    match Config::load(path) {
        Ok(config) => {
            for source in &config.sources {
                println!("{}", source.summary());
            }
            ExitCode::SUCCESS
        }
        Err(ConfigError::Invalid(diagnostics)) => {
            for d in &diagnostics {
                eprintln!("error: {d}");
            }
            eprintln!(
                "{} problem{} found; nothing was changed",
                diagnostics.len(),
                if diagnostics.len() == 1 { "" } else { "s" }
            );
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
