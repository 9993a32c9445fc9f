//! `tidewatch run`: the service.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
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
    let Some(config) = super::load_config(&args.config) else {
        return ExitCode::FAILURE;
    };
    if !super::configure_git(&config) {
        return ExitCode::FAILURE;
    }
    let Some(runtime) = super::runtime() else {
        return ExitCode::FAILURE;
    };
    let options = ServerOptions {
        listen: args.listen,
        workdir: args.workdir.clone(),
        cycle_timeout: super::cycle_timeout(&config),
    };
    match runtime.block_on(server::run(config, options)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
