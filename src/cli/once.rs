//! `tidewatch once`: one cycle over every update group.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use tidewatch::engine::{self, OnceOptions, Outcome};

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
/// failed, 2 when the configuration is unusable.
pub fn run(args: &OnceArgs) -> ExitCode {
    let Some(config) = super::load_config(&args.config) else {
        return ExitCode::from(2);
    };
    let Some(runtime) = super::runtime() else {
        return ExitCode::from(2);
    };
    let options = OnceOptions {
        workdir: args.workdir.clone(),
        dry_run: args.dry_run,
        only_policies: None,
    };
    let report = match runtime.block_on(engine::once(&config, &options)) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(1);
        }
    };
    for (policy, error) in &report.scan_errors {
        eprintln!("warning: policy {policy}: {error}");
    }
    let mut failed = false;
    for u in &report.updates {
        let name = match &u.head {
            Some(head) => format!("{} ({head})", u.update),
            None => u.update.clone(),
        };
        let what = match &u.outcome {
            Outcome::UpToDate => "up to date".to_string(),
            Outcome::DryRun { intent } => format!("dry run: would {intent}"),
            Outcome::Committed {
                branch,
                commit,
                attempts,
            } => {
                format!(
                    "committed {} to {branch} ({attempts} attempt(s))",
                    &commit[..commit.len().min(12)]
                )
            }
            Outcome::AlreadyDone { branch } => format!("{branch} already has these changes"),
            Outcome::PullRequestOpened { number, head } => {
                format!("opened PR #{number} from {head}")
            }
            Outcome::PullRequestUpdated { number, .. } => format!("updated PR #{number}"),
            Outcome::PullRequestUnchanged { number, .. } => format!("PR #{number} is up to date"),
            Outcome::PullRequestClosed { number, .. } => {
                format!("closed PR #{number}: its change is already on the base")
            }
            Outcome::Failed { error } => {
                failed = true;
                format!("FAILED: {error}")
            }
        };
        println!("update {name}: {what}");
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
        for n in &u.notes {
            println!("  note: {n}");
        }
        if args.dry_run && !u.diff.is_empty() {
            print!("{}", u.diff);
        }
    }
    eprintln!(
        "{} registry request(s), {} fetch(es), {} clone(s), {} push(es), {} GitHub write(s)",
        report.registry_requests,
        report.git.fetches,
        report.git.clones,
        report.git.pushes,
        report.github_writes
    );
    if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}
