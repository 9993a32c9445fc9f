//! Subcommand implementations for the binary.

pub mod check;
pub mod once;
pub mod run;
pub mod schema;
pub mod tags;

use std::path::Path;

use tidewatch::config::{Config, ConfigError};

/// Loads the policy files, or prints every problem as `check` does and
/// returns `None`; the caller picks the exit code.
pub fn load_config(path: &Path) -> Option<Config> {
    match Config::load(path) {
        Ok(config) => Some(config),
        Err(ConfigError::Invalid(diagnostics)) => {
            for d in &diagnostics {
                eprintln!("error: {d}");
            }
            eprintln!("{} problem(s) found", diagnostics.len());
            None
        }
        Err(e) => {
            eprintln!("error: {e}");
            None
        }
    }
}

/// A multi-threaded runtime (git2 work runs in `block_in_place`, which
/// needs one), or the error printed and `None`.
pub fn runtime() -> Option<tokio::runtime::Runtime> {
    match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => Some(runtime),
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            None
        }
    }
}
