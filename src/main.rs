//! The `tidewatch` command line. Each subcommand is a thin shell over the
//! library: parse flags, call the module, print, choose the exit code.

mod cli;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Watches container registries, picks image tags by policy and rewrites
/// GitOps manifests without reformatting them.
#[derive(Parser)]
#[command(name = "tidewatch", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    /// Log format on stderr: `text` (default) or `json`. Level via TIDEWATCH_LOG.
    #[arg(long, global = true, value_enum, default_value = "text")]
    log_format: LogFormat,
}

#[derive(Clone, Copy, Debug, clap::ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Subcommand)]
enum Command {
    /// Validate policy files; exit 1 listing every error with file:line:column.
    Check {
        /// A policy file, or a directory whose *.yaml files are merged.
        #[arg(short = 'c', long = "config", default_value = "policies")]
        config: PathBuf,
    },
    /// Show the candidates for IMAGE under a policy given by flags, and the pick.
    ///
    /// The pick is printed alone on the last line of stdout; the reasoning goes
    /// to stderr. Exit 0 with a pick, 1 when nothing qualifies, 2 on bad input.
    Tags(Box<cli::tags::TagsArgs>),
    /// Run one cycle: scan, select, edit and deliver for every update.
    ///
    /// `--dry-run` prints the diff and the commits and PRs it would make.
    Once(cli::once::OnceArgs),
    /// Run the service: scheduled scans, webhooks, /metrics and a status page.
    Run(cli::run::RunArgs),
    /// Print the JSON schema of the policy file.
    Schema,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let filter =
        tracing_subscriber::EnvFilter::try_from_env("TIDEWATCH_LOG").unwrap_or_else(|_| {
            // The service logs what it does; one-shot commands only warnings.
            tracing_subscriber::EnvFilter::new(if matches!(cli.command, Command::Run(_)) {
                "info"
            } else {
                "warn"
            })
        });
    let builder = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(filter);
    match cli.log_format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
    match cli.command {
        Command::Check { config } => cli::check::run(&config),
        Command::Tags(args) => cli::tags::run(&args),
        Command::Once(args) => cli::once::run(&args),
        Command::Run(args) => cli::run::run(&args),
        Command::Schema => cli::schema::run(),
    }
}
