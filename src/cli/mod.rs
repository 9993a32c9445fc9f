//! Subcommand implementations for the binary.

pub mod check;
pub mod once;
pub mod run;
pub mod schema;
pub mod tags;
pub mod tags_gates;

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

/// Sets libgit2's process-wide timeouts from the config; must run before
/// the async runtime starts any thread (see `git::configure_process`).
pub fn configure_git(config: &Config) -> bool {
    let io = tidewatch::timeouts::from_seconds(
        config.repository.as_ref().and_then(|r| r.timeout_seconds),
        tidewatch::timeouts::GIT_IO,
    );
    match tidewatch::git::configure_process(tidewatch::timeouts::GIT_CONNECT, io) {
        Ok(()) => true,
        Err(e) => {
            eprintln!("error: {e}");
            false
        }
    }
}

/// The deadline of one cycle (`server.cycleTimeout`, default 10 minutes).
pub fn cycle_timeout(config: &Config) -> std::time::Duration {
    config
        .server
        .as_ref()
        .and_then(|s| s.cycle_timeout.as_deref())
        .and_then(|t| tidewatch::duration::parse(t).ok())
        .unwrap_or(tidewatch::timeouts::CYCLE)
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
