//! `tidewatch once`: one cycle over every update group.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use tidewatch::engine::{self, OnceOptions};

#[derive(Args, Debug)]
pub struct OnceArgs {
    /// A policy file, or a directory whose *.yaml files are merged.
    #[arg(short = 'c', long = "config", default_value = "policies")]
    pub config: PathBuf,
    /// Print the diff and the commits and PRs it would make; touch nothing remote.
    #[arg(long)]
    pub dry_run: bool,
    /// Where to keep the clone of the environment repository (default: OS cache dir).
    #[arg(long)]
    pub workdir: Option<PathBuf>,
}

/// Exit 0 when every update succeeded (or had nothing to do), 1 when one
/// failed or an input was unknown (a registry or the forge could not be
/// read), 2 when the configuration is unusable.
pub fn run(args: &OnceArgs) -> ExitCode {
    let Some(config) = super::load_config(&args.config) else {
        return ExitCode::from(2);
    };
    if !super::configure_git(&config) {
        return ExitCode::from(2);
    }
    let Some(runtime) = super::runtime() else {
        return ExitCode::from(2);
    };
    let options = OnceOptions {
        workdir: args.workdir.clone(),
        dry_run: args.dry_run,
        only_policies: None,
        deadline: Some((std::time::Instant::now() + super::cycle_timeout(&config)).into()),
    };
    let report = match runtime.block_on(engine::once(&config, &options)) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(1);
        }
    };
    if let Some(error) = &report.error {
        eprintln!("error: {error}");
    }
    for (policy, error) in &report.scan_errors {
        eprintln!("error: policy {policy} is unknown this cycle: {error}");
    }
    for u in &report.updates {
        let name = match &u.head {
            Some(head) => format!("{} ({head})", u.update),
            None => u.update.clone(),
        };
        println!("update {name}: {}", u.outcome.describe());
        for c in &u.changes {
            println!(
                "  {} ({}): {} -> {} in {}",
                c.image,
                c.policy,
                c.old,
                c.new,
                c.files.join(", ")
            );
        }
        for g in &u.gates {
            println!("  gate: {g}");
        }
        for d in &u.declines {
            println!(
                "  declined: {} {} in PR #{}{}",
                d.policy,
                d.version,
                d.number,
                d.closed_at
                    .as_deref()
                    .map(|at| format!(" (closed {at})"))
                    .unwrap_or_default()
            );
        }
        for n in &u.notes {
            println!("  note: {n}");
        }
        if args.dry_run && !u.diff.is_empty() {
            print!("{}", u.diff);
        }
    }
    eprintln!(
        "{} registry request(s), {} fetch(es), {} clone(s), {} push(es), {} forge write(s)",
        report.registry_requests,
        report.git.fetches,
        report.git.clones,
        report.git.pushes,
        report.forge_writes
    );
    if report.has_failures() {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}
