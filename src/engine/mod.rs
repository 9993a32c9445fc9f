//! One cycle as a reconcile: observe → plan → execute.
//!
//! * **Observe** ([`observe`]) builds a [`Snapshot`]: for every image policy
//!   `Known(observation)` or `Unknown(reason)`, the files of every update
//!   at the remote tip, and each pull-request head's open and closed pull
//!   requests. Policies not due this cycle carry their last known
//!   observation, kept in memory by the [`Engine`].
//! * **Plan** ([`plan::plan`]) is a pure function of the snapshot and the
//!   config: one [`Intent`] per update group or pull-request head.
//! * **Execute** carries the intents out one by one; each succeeds or fails
//!   on its own.
//!
//! Git is the state: the value in Git is read from the files, the
//! candidate comes from the registry, and declined versions come from the
//! forge. Nothing else is remembered between cycles except observations
//! (an optimisation the plan treats exactly like a fresh scan), so running
//! a cycle twice changes nothing the second time.

mod execute;
mod gating;
mod intent;
mod message;
mod observe;
mod observe_gates;
pub mod plan;
#[cfg(test)]
mod plan_tests;
mod promotion;
mod report;
pub mod scan;
mod scope;
mod setup;
pub mod snapshot;
mod workspace;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};

use crate::config::Config;
use crate::forge::{Forge, ForgeError};
use crate::git::{GitError, WorkdirLock};
use crate::registry::Client;
use crate::secret::SecretError;

pub use gating::{GateLine, Need};
pub use intent::{
    CloseIntent, CommitIntent, ExistingPr, HeldComment, HoldIntent, Intent, PrIntent,
};
pub use message::{render_message, DEFAULT_TEMPLATE};
pub use report::{Change, CycleReport, Outcome, UpdateReport};
pub use setup::{client_for, host_settings};
pub use snapshot::{GateFacts, Held, Observation, PolicyState, Snapshot, SourceValue};

use snapshot::Observation as Seen;
use workspace::WorkspaceHandle;

/// How to run a cycle.
#[derive(Clone, Debug, Default)]
pub struct OnceOptions {
    /// Where the environment repository is cloned (default: the OS cache dir).
    pub workdir: Option<PathBuf>,
    /// Observe and plan, print the intents, and write nothing anywhere.
    pub dry_run: bool,
    /// Scan only these policies at the registry (the service's due ones);
    /// the others carry their last known observation. `None` scans all.
    pub only_policies: Option<HashSet<String>>,
    /// The cycle's deadline: no push starts after it, and git transfers
    /// still running are abandoned. Under leader election it is also
    /// bounded by the lease (see [`crate::deadline`]).
    pub deadline: Option<crate::deadline::Deadline>,
}

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("the policy files set no `repository`; add one to run a cycle")]
    NoRepository,
    #[error("{0}")]
    Config(String),
    #[error(transparent)]
    Secret(#[from] SecretError),
    #[error(transparent)]
    Git(#[from] GitError),
    #[error(transparent)]
    Forge(Box<ForgeError>),
    #[error("{0}")]
    Task(String),
    #[error("a git operation of an earlier cycle (abandoned at its deadline) is still running on the work directory; this cycle is skipped and the next one tries again")]
    Busy,
}

impl From<ForgeError> for EngineError {
    fn from(error: ForgeError) -> EngineError {
        EngineError::Forge(Box::new(error))
    }
}

/// What lasts from one cycle to the next: the registry client (its digest
/// cache, tokens and counters), the forge client, and the last known
/// observation of each policy.
pub struct Engine {
    client: Arc<Client>,
    forge: tokio::sync::Mutex<Option<Arc<dyn Forge>>>,
    memory: Mutex<HashMap<String, Arc<Seen>>>,
    /// Taken by every cycle's git work (see `workspace.rs`).
    git_gate: Arc<tokio::sync::Mutex<()>>,
    /// The work directory's process lock, taken by the first cycle.
    workdir_lock: Mutex<Option<WorkdirLock>>,
    /// What the running cycle is doing, for a cycle abandoned at its deadline.
    step: Mutex<String>,
    /// Signature verdicts by repository, digest and key set.
    signatures: Arc<crate::gate::SignatureCache>,
    /// Since when promotion sources held their values, by source tip.
    held: Mutex<HashMap<String, snapshot::Held>>,
}

impl Engine {
    pub fn new(client: Arc<Client>) -> Engine {
        Engine {
            client,
            forge: tokio::sync::Mutex::new(None),
            memory: Mutex::new(HashMap::new()),
            git_gate: Arc::new(tokio::sync::Mutex::new(())),
            workdir_lock: Mutex::new(None),
            step: Mutex::new(String::new()),
            signatures: Arc::default(),
            held: Mutex::new(HashMap::new()),
        }
    }

    /// The signature verdict cache (shared with `tags`-style callers).
    pub fn signature_cache(&self) -> &Arc<crate::gate::SignatureCache> {
        &self.signatures
    }

    fn held_memory(&self) -> MutexGuard<'_, HashMap<String, snapshot::Held>> {
        self.held.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// What the running (or last) cycle was doing: "fetching from …".
    pub fn current_step(&self) -> String {
        self.step.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    fn set_step(&self, step: String) {
        *self.step.lock().unwrap_or_else(|p| p.into_inner()) = step;
    }

    /// Takes the work directory's exclusive lock (idempotent), so that a
    /// second process on the same directory is refused with a clear error.
    pub fn lock_workdir(
        &self,
        config: &Config,
        workdir: Option<PathBuf>,
    ) -> Result<(), EngineError> {
        let mut held = self.workdir_lock.lock().unwrap_or_else(|p| p.into_inner());
        if held.is_some() {
            return Ok(());
        }
        let repository = config
            .repository
            .as_ref()
            .ok_or(EngineError::NoRepository)?;
        let path = crate::git::WorkspaceOptions {
            workdir,
            ..crate::git::WorkspaceOptions::new(repository.url.clone())
        }
        .resolved_workdir()?;
        *held = Some(WorkdirLock::acquire(&path)?);
        Ok(())
    }

    /// True while a git task (possibly of an abandoned cycle) is running.
    pub fn git_busy(&self) -> bool {
        self.git_gate.try_lock().is_err()
    }

    /// The registry client.
    pub fn client(&self) -> &Arc<Client> {
        &self.client
    }

    fn memory(&self) -> MutexGuard<'_, HashMap<String, Arc<Seen>>> {
        // Plain data behind the lock; a panic elsewhere leaves it usable.
        self.memory.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The forge client, connected on first use and kept; a failed
    /// connection is retried on the next use.
    async fn forge(&self, config: &Config) -> Result<Arc<dyn Forge>, EngineError> {
        let mut slot = self.forge.lock().await;
        if let Some(forge) = slot.as_ref() {
            return Ok(forge.clone());
        }
        let repository = config
            .repository
            .as_ref()
            .ok_or(EngineError::NoRepository)?;
        let forge = setup::connect_forge(repository).await?;
        *slot = Some(forge.clone());
        Ok(forge)
    }

    async fn forge_writes(&self) -> u64 {
        self.forge
            .lock()
            .await
            .as_ref()
            .map_or(0, |f| f.write_calls())
    }

    /// One cycle: observe, plan, and (unless `dry_run`) execute.
    pub async fn cycle(
        &self,
        config: &Config,
        options: &OnceOptions,
    ) -> Result<CycleReport, EngineError> {
        let repository = config
            .repository
            .as_ref()
            .ok_or(EngineError::NoRepository)?;
        let requests_before = self.client.metrics().total(None);
        let writes_before = self.forge_writes().await;
        let author = setup::identity(repository);

        self.set_step("scanning the registries".into());
        let (policies, scanned) =
            observe::policies(self, config, options.only_policies.as_ref()).await;
        let mut report = CycleReport {
            scanned,
            ..CycleReport::default()
        };
        let used: HashSet<&str> = config
            .updates
            .iter()
            .flat_map(|u| config.policies_of(u))
            .collect();
        for (policy, state) in &policies {
            match state {
                PolicyState::Known(seen) => {
                    report.observed_at.insert(policy.clone(), seen.observed_at);
                }
                PolicyState::Unknown { reason } if used.contains(policy.as_str()) => {
                    report.scan_errors.insert(policy.clone(), reason.clone());
                }
                PolicyState::Unknown { .. } => {}
            }
        }

        self.lock_workdir(config, options.workdir.clone())?;
        let gate = self
            .git_gate
            .clone()
            .try_lock_owned()
            .map_err(|_| EngineError::Busy)?;
        let mut options_git = setup::workspace_options(repository, options.workdir.clone())?;
        options_git.deadline = options.deadline.clone();
        self.set_step(format!(
            "fetching from {}",
            crate::git::redact_url(&repository.url)
        ));
        let mut workspace = match WorkspaceHandle::open(options_git, gate).await {
            Ok(workspace) => workspace,
            Err(error) => {
                report.error = Some(error.to_string());
                report.registry_requests = self.client.metrics().total(None) - requests_before;
                return Ok(report);
            }
        };
        self.set_step("reading the updates' files".into());
        let mut updates = observe::files(config, &mut workspace, &author).await?;
        self.set_step("reading pull requests from the forge".into());
        observe::pull_requests(self, config, &mut updates).await;
        let mut snapshot = Snapshot {
            policies,
            updates,
            digests: HashMap::new(),
            now: jiff::Timestamp::now(),
            gates: GateFacts::default(),
        };
        self.set_step("reading what promotions' sources hold".into());
        promotion::observe(self, config, &mut workspace, &mut snapshot).await;
        self.set_step("checking the gates of candidates".into());
        observe_gates::gates(self, config, &mut snapshot).await;
        self.set_step("looking up the digests of picks".into());
        observe::digests(self, config, &mut snapshot).await;

        let plans = plan::plan(config, &snapshot, &author);
        // A gate fact that could not be observed is an unknown input, as
        // a failed scan is: `once` exits 1 and the status page shows it.
        for (policy, reason) in plans.iter().flat_map(|p| &p.gate_errors) {
            report
                .scan_errors
                .entry(policy.clone())
                .or_insert_with(|| reason.clone());
        }
        report.updates = if options.dry_run {
            plans
                .into_iter()
                .map(|plan| {
                    let outcome = match &plan.intent {
                        Intent::Nothing => Outcome::UpToDate,
                        Intent::Fail { error } => Outcome::Failed {
                            error: error.clone(),
                        },
                        intent => Outcome::DryRun {
                            intent: intent.describe(),
                        },
                    };
                    execute::report(plan, outcome)
                })
                .collect()
        } else {
            execute::Executor {
                engine: self,
                config,
                author: &author,
                workspace: &mut workspace,
                deadline: options.deadline.clone(),
            }
            .run(plans)
            .await
        };
        report.git = workspace.stats();
        report.reclones = workspace.reclones.clone();
        report.forge_writes = self.forge_writes().await - writes_before;
        report.registry_requests = self.client.metrics().total(None) - requests_before;
        Ok(report)
    }
}

/// Runs one cycle over every update group with a fresh engine (`once`).
/// An update that fails is reported in its `Outcome::Failed` and does not
/// stop the others.
pub async fn once(config: &Config, options: &OnceOptions) -> Result<CycleReport, EngineError> {
    let engine = Engine::new(Arc::new(client_for(config)));
    engine.cycle(config, options).await
}

/// Per policy, the value each update holds (for the status page).
pub fn values_in_git(report: &CycleReport) -> BTreeMap<(String, String), String> {
    let mut out = BTreeMap::new();
    for update in &report.updates {
        for (policy, value) in &update.current {
            out.insert((update.update.clone(), policy.clone()), value.clone());
        }
    }
    out
}
