//! `tidewatch run`: the service.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use tidewatch::config::{Config, ConfigError};
use tidewatch::server::{self, ServerOptions};

#[derive(Args, Debug)]
pub struct RunArgs {
    /// A policy file, or a directory whose *.yaml files are merged.
    #[arg(short = 'c', long = "config", default_value = "policies")]
    pub config: PathBuf,
    /// Address for webhooks, /healthz, /readyz, /metrics and the status page.
    #[arg(long, default_value = "0.0.0.0:8080")]
    pub listen: SocketAddr,
    /// Where to keep the clone of the environment repository (default: OS cache dir).
    #[arg(long)]
    pub workdir: Option<PathBuf>,
}

/// A bad config stops startup with the same output as `check` (exit 1).
pub fn run(args: &RunArgs) -> ExitCode {
    let config = match Config::load(&args.config) {
        Ok(c) => c,
        Err(ConfigError::Invalid(diagnostics)) => {
            for d in &diagnostics {
                eprintln!("error: {d}");
            }
            eprintln!("{} problem(s) found; not starting", diagnostics.len());
            return ExitCode::FAILURE;
        }
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let options = ServerOptions {
        listen: args.listen,
        workdir: args.workdir.clone(),
    };
    match runtime.block_on(server::run(config, options)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
