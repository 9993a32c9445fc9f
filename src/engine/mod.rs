//! One cycle: scan registries → select → plan edits → deliver.
//!
//! Git is the state: the value in Git now is read from the files at the
//! remote tip, the candidate comes from the registry, and tidewatch acts
//! only when they differ. Declined versions are read from tidewatch's own
//! closed pull requests. Nothing else is remembered between cycles, so
//! running a cycle twice changes nothing the second time.
//!
//! `--dry-run` goes through exactly the same path and stops before the
//! first write (no commit, no push, no GitHub write).

mod message;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::PathBuf;
use std::sync::Arc;

use crate::config::{Config, Repository, SecretSource, Update};
use crate::forge::{self, Forge, ForgeError, ForgeOptions, GitHubAuth, PrChange, PullRequestSpec};
use crate::git::{
    self, GitCredentials, GitError, GitStats, Identity, RetryOutcome, Workspace, WorkspaceOptions,
};
use crate::manifest::{self, Part, Scope, Target, Watched};
use crate::policy::{Outcome as Selection, Pick};
use crate::reference::ImageName;
use crate::registry::{self, Client, ScanTarget};
use crate::secret::Secret;

pub use message::{render_message, DEFAULT_TEMPLATE};

/// How to run a cycle.
#[derive(Clone, Debug, Default)]
pub struct OnceOptions {
    /// Where the environment repository is cloned (default: the OS cache dir).
    pub workdir: Option<PathBuf>,
    /// Plan and report, but write nothing anywhere.
    pub dry_run: bool,
    /// Scan and update only these policies (the service's due policies);
    /// `None` means all.
    pub only_policies: Option<HashSet<String>>,
}

/// One image moving to a new value in one update.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Change {
    pub policy: String,
    pub image: String,
    pub old: String,
    pub new: String,
    pub files: Vec<String>,
}

/// What a cycle did for one update group.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Git already holds every pick.
    UpToDate,
    /// `--dry-run`: what would have been done.
    DryRun {
        intent: String,
    },
    Committed {
        branch: String,
        commit: String,
        attempts: u32,
    },
    /// Between planning and pushing, someone else made the same change.
    AlreadyDone {
        branch: String,
    },
    PullRequestOpened {
        number: u64,
        head: String,
    },
    PullRequestUpdated {
        number: u64,
        head: String,
    },
    PullRequestUnchanged {
        number: u64,
        head: String,
    },
    PullRequestClosed {
        number: u64,
        head: String,
    },
    Failed {
        error: String,
    },
}

#[derive(Clone, Debug)]
pub struct UpdateReport {
    pub update: String,
    /// For pull requests with a per-policy head, one report per head.
    pub head: Option<String>,
    pub changes: Vec<Change>,
    pub outcome: Outcome,
    /// Policies without a pick, files skipped or refused, with reasons.
    pub notes: Vec<String>,
    /// Unified diff of the planned edits.
    pub diff: String,
    /// Per policy, the value in Git when the cycle looked (tag or digest).
    pub current: BTreeMap<String, String>,
    /// Per policy, the pick of this cycle.
    pub picks: BTreeMap<String, String>,
}

#[derive(Clone, Debug)]
pub struct CycleReport {
    pub updates: Vec<UpdateReport>,
    /// Per policy: the registry error that kept it from being scanned.
    pub scan_errors: BTreeMap<String, String>,
    pub git: GitStats,
    pub github_writes: u64,
    pub registry_requests: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("the policy files set no `repository`; add one to run a cycle")]
    NoRepository,
    #[error("{0}")]
    Config(String),
    #[error(transparent)]
    Git(#[from] GitError),
    #[error(transparent)]
    Forge(#[from] ForgeError),
    #[error("the git workspace task failed: {0}")]
    Task(String),
}

/// Runs one cycle over every update group. An update that fails is reported
/// in its `Outcome::Failed` and does not stop the others.
pub async fn once(config: &Config, options: &OnceOptions) -> Result<CycleReport, EngineError> {
    let client = Arc::new(client_for(config));
    cycle(config, options, &client).await
}

/// The registry client a config describes. The service keeps one for its
/// lifetime, so the digest cache and the request counters persist.
pub fn client_for(config: &Config) -> Client {
    Client::from_config(
        &config
            .registries
            .iter()
            .map(|r| r.item.clone())
            .collect::<Vec<_>>(),
    )
}

/// One cycle with a given registry client.
pub async fn cycle(
    config: &Config,
    options: &OnceOptions,
    client: &Arc<Client>,
) -> Result<CycleReport, EngineError> {
    let repository = config
        .repository
        .as_ref()
        .ok_or(EngineError::NoRepository)?;
    let before = client.metrics().total(None);

    // Scan every policy some update writes, each repository listed once.
    let used: HashSet<&str> = config
        .updates
        .iter()
        .flat_map(|u| policies_of(config, u))
        .filter(|p| {
            options
                .only_policies
                .as_ref()
                .is_none_or(|only| only.contains(*p))
        })
        .collect();
    let targets: Vec<ScanTarget> = config
        .images
        .iter()
        .filter(|i| used.contains(i.name.as_str()))
        .filter_map(|i| {
            Some(ScanTarget {
                policy: i.name.clone(),
                image: ImageName::parse(&i.image).ok()?,
                selector: config.policies.get(&i.name)?.clone(),
                platforms: i.platforms.clone(),
            })
        })
        .collect();
    let scans = registry::scan(client, &targets).await;
    let scan_errors: BTreeMap<String, String> = scans
        .iter()
        .filter_map(|(policy, r)| r.as_ref().err().map(|e| (policy.clone(), e.to_string())))
        .collect();

    let mut workspace = blocking(|| {
        let mut ws = Workspace::open(workspace_options(repository, options.workdir.clone())?)?;
        ws.fetch()?;
        Ok::<_, EngineError>(ws)
    })?;
    let forge = if config.updates.iter().any(|u| u.pull_request.is_some()) {
        Some(Forge::connect(forge_options(repository)?).await?)
    } else {
        None
    };

    let author = identity(repository);
    let mut reports = Vec::new();
    for update in &config.updates {
        let context = UpdateContext {
            config,
            repository,
            update,
            scans: &scans,
            client,
            author: &author,
            dry_run: options.dry_run,
        };
        let mut group = match &update.pull_request {
            None => vec![direct(&context, &mut workspace).await],
            Some(_) => match &forge {
                Some(forge) => pull_requests(&context, &mut workspace, forge).await,
                None => vec![failed(update, "no GitHub connection".into())],
            },
        };
        reports.append(&mut group);
    }
    Ok(CycleReport {
        updates: reports,
        scan_errors,
        git: workspace.stats(),
        github_writes: forge.as_ref().map_or(0, |f| f.write_calls()),
        registry_requests: client.metrics().total(None) - before,
    })
}

struct UpdateContext<'a> {
    config: &'a Config,
    repository: &'a Repository,
    update: &'a Update,
    scans: &'a HashMap<String, Result<registry::ScanResult, registry::RegistryError>>,
    client: &'a Arc<Client>,
    author: &'a Identity,
    dry_run: bool,
}

/// The policy names an update writes.
fn policies_of<'c>(config: &'c Config, update: &'c Update) -> Vec<&'c str> {
    match &update.images {
        Some(names) => names.iter().map(String::as_str).collect(),
        None => config.images.iter().map(|i| i.name.as_str()).collect(),
    }
}

/// git2 is blocking; run it without stalling the async workers.
fn blocking<T>(f: impl FnOnce() -> Result<T, EngineError>) -> Result<T, EngineError> {
    tokio::task::block_in_place(f)
}

fn failed(update: &Update, error: String) -> UpdateReport {
    UpdateReport {
        update: update.name.clone(),
        head: None,
        changes: Vec::new(),
        outcome: Outcome::Failed { error },
        notes: Vec::new(),
        diff: String::new(),
        current: BTreeMap::new(),
        picks: BTreeMap::new(),
    }
}

fn read_secret(source: &SecretSource, what: &str) -> Result<Secret, EngineError> {
    if let Some(var) = &source.env {
        return std::env::var(var)
            .map(|v| Secret::new(v.trim().to_string()))
            .map_err(|_| {
                EngineError::Config(format!(
                    "the environment variable {var} for the {what} is not set"
                ))
            });
    }
    if let Some(path) = &source.file {
        return std::fs::read_to_string(path)
            .map(|v| Secret::new(v.trim().to_string()))
            .map_err(|e| EngineError::Config(format!("cannot read the {what} from {path}: {e}")));
    }
    Err(EngineError::Config(format!(
        "the {what} names neither `env` nor `file`"
    )))
}

fn workspace_options(
    repository: &Repository,
    workdir: Option<PathBuf>,
) -> Result<WorkspaceOptions, EngineError> {
    let mut credentials = GitCredentials::default();
    if let Some(auth) = &repository.auth {
        if let Some(token) = &auth.token {
            credentials.token = Some(read_secret(token, "git token")?);
        }
        if let Some(key) = &auth.ssh_key {
            credentials.ssh_key = Some(git::SshKey {
                path: PathBuf::from(&key.path),
                passphrase: key
                    .passphrase
                    .as_ref()
                    .map(|p| read_secret(p, "SSH key passphrase"))
                    .transpose()?,
            });
        }
    }
    let mut options = WorkspaceOptions::new(repository.url.clone());
    options.workdir = workdir;
    options.credentials = credentials;
    options.depth = repository
        .depth
        .and_then(|d| i32::try_from(d).ok())
        .filter(|d| *d > 0);
    Ok(options)
}

fn forge_options(repository: &Repository) -> Result<ForgeOptions, EngineError> {
    let github = repository.github.clone().unwrap_or_default();
    let slug = match &github.repository {
        Some(slug) => slug.clone(),
        None => github_slug(&repository.url).ok_or_else(|| {
            EngineError::Config(format!(
                "cannot tell the GitHub repository from {}; set `repository.github.repository: owner/name`",
                git::redact_url(&repository.url)
            ))
        })?,
    };
    let (owner, repo) = slug
        .split_once('/')
        .ok_or_else(|| EngineError::Config(format!("`{slug}` is not owner/name")))?;
    let auth = match &github.app {
        Some(app) => GitHubAuth::App {
            app_id: app.app_id,
            installation_id: app.installation_id,
            private_key_pem: read_secret(&app.private_key, "GitHub App private key")?,
        },
        None => {
            let source = github
                .token
                .clone()
                .or_else(|| repository.auth.as_ref().and_then(|a| a.token.clone()))
                .ok_or_else(|| {
                    EngineError::Config(
                        "pull requests need `repository.github.token` or `repository.auth.token`"
                            .into(),
                    )
                })?;
            GitHubAuth::Token(read_secret(&source, "GitHub token")?)
        }
    };
    Ok(ForgeOptions {
        api_base: github.api_url.clone(),
        owner: owner.to_string(),
        repo: repo.to_string(),
        auth,
    })
}

/// `owner/name` from `https://github.com/owner/name(.git)` or `git@github.com:owner/name.git`.
fn github_slug(url: &str) -> Option<String> {
    let rest = url
        .strip_prefix("https://github.com/")
        .or_else(|| url.strip_prefix("git@github.com:"))
        .or_else(|| url.strip_prefix("ssh://git@github.com/"))?;
    let slug = rest.trim_end_matches('/').trim_end_matches(".git");
    (slug.split('/').count() == 2).then(|| slug.to_string())
}

fn identity(repository: &Repository) -> Identity {
    match &repository.author {
        Some(a) => Identity {
            name: a.name.clone(),
            email: a.email.clone(),
        },
        None => Identity {
            name: "tidewatch".into(),
            email: "tidewatch@localhost".into(),
        },
    }
}

/// The watched images of an update (optionally only `only`), and its targets.
fn scope_parts(ctx: &UpdateContext<'_>, only: Option<&str>) -> (Vec<Watched>, Vec<Target>) {
    let names = policies_of(ctx.config, ctx.update);
    let watched = ctx
        .config
        .images
        .iter()
        .filter(|i| names.contains(&i.name.as_str()) && only.is_none_or(|o| o == i.name))
        .filter_map(|i| {
            Some(Watched {
                policy: i.name.clone(),
                image: ImageName::parse(&i.image).ok()?,
                image_text: i.image.clone(),
            })
        })
        .collect();
    let targets = ctx
        .update
        .targets
        .iter()
        .map(|t| Target {
            file: t.file.clone(),
            path: t.path.clone(),
            policy: t.policy.clone(),
            part: match t.part {
                Some(crate::config::TargetPart::Full) => Part::Full,
                Some(crate::config::TargetPart::Name) => Part::Name,
                Some(crate::config::TargetPart::Digest) => Part::Digest,
                _ => Part::Tag,
            },
        })
        .collect();
    (watched, targets)
}

/// Selects a pick per watched policy against the values now in the
/// worktree, skipping declined versions, and plans the edits.
async fn plan_update(
    ctx: &UpdateContext<'_>,
    root: &std::path::Path,
    watched: &[Watched],
    targets: &[Target],
    declined: &HashMap<String, HashSet<String>>,
) -> Planned {
    let all: HashSet<String> = ctx.config.images.iter().map(|i| i.name.clone()).collect();
    let scope = Scope {
        paths: &ctx.update.paths,
        watched,
        all_policies: &all,
        targets,
        size_cap: manifest::DEFAULT_SIZE_CAP,
    };
    let scan = manifest::scan(root, &scope);
    let current = scan.current();
    let mut notes = Vec::new();
    let mut picks = HashMap::new();
    for w in watched {
        let Some(selector) = ctx.config.policies.get(&w.policy) else {
            continue;
        };
        let result = match ctx.scans.get(&w.policy) {
            Some(Ok(result)) => result,
            Some(Err(e)) => {
                notes.push(format!("{}: {e}", w.policy));
                continue;
            }
            None => continue,
        };
        let refused = declined.get(&w.policy);
        let tags: Vec<&String> = result
            .tags
            .iter()
            .filter(|t| refused.is_none_or(|r| !r.contains(t.as_str())))
            .collect();
        let now = current
            .iter()
            .filter(|c| c.policy == w.policy)
            .find_map(|c| c.tag.clone());
        match selector.select(&tags, &result.metadata, now.as_deref()) {
            Selection::Picked(mut pick) => {
                // A reference pinned by digest needs the pick's digest too.
                let pinned = current
                    .iter()
                    .any(|c| c.policy == w.policy && c.digest.is_some());
                if pinned && pick.digest.is_none() {
                    match ctx.client.digest(&w.image, &pick.tag).await {
                        Ok(d) => pick.digest = Some(d),
                        Err(e) => notes.push(format!("{}: {e}", w.policy)),
                    }
                }
                picks.insert(w.policy.clone(), pick);
            }
            Selection::NothingQualifies { reason } => notes.push(format!("{}: {reason}", w.policy)),
        }
    }
    let plan = scan.plan(&picks);
    notes.extend(plan.notes.iter().map(|n| n.to_string()));
    let mut now_in_git = BTreeMap::new();
    for c in &current {
        if let Some(value) = c.tag.clone().or_else(|| c.digest.clone()) {
            now_in_git.entry(c.policy.clone()).or_insert(value);
        }
    }
    Planned {
        plan,
        picks,
        notes,
        current: now_in_git,
    }
}

/// What planning an update produced.
struct Planned {
    plan: manifest::Plan,
    picks: HashMap<String, Pick>,
    notes: Vec<String>,
    current: BTreeMap<String, String>,
}

impl Planned {
    /// The report of an update before delivery: the changes, the diff, the
    /// values in Git and the picks; the outcome is set by delivery.
    fn report(&self, update: &Update, head: Option<&str>, changes: &[Change]) -> UpdateReport {
        UpdateReport {
            update: update.name.clone(),
            head: head.map(str::to_string),
            changes: changes.to_vec(),
            outcome: Outcome::UpToDate,
            notes: self.notes.clone(),
            diff: self.plan.diff(),
            current: self.current.clone(),
            picks: pick_texts(&self.picks),
        }
    }
}

fn pick_texts(picks: &HashMap<String, Pick>) -> BTreeMap<String, String> {
    picks
        .iter()
        .map(|(p, pick)| (p.clone(), pick.to_string()))
        .collect()
}

/// The version a written value carries: `tag[@digest]` of a full
/// reference, or the value itself (a tag, a digest).
fn version_of(value: &str) -> String {
    match crate::reference::Reference::parse(value) {
        Ok(r) if value.contains('/') || value.contains(':') && r.tag.is_some() => {
            match (r.tag, r.digest) {
                (Some(t), Some(d)) => format!("{t}@{d}"),
                (Some(t), None) => t,
                (None, Some(d)) => d,
                (None, None) => value.to_string(),
            }
        }
        _ => value.to_string(),
    }
}

fn changes_of(plan: &manifest::Plan, watched: &[Watched]) -> Vec<Change> {
    let mut grouped: BTreeMap<(String, String, String), Vec<String>> = BTreeMap::new();
    for edit in plan.edits() {
        let files = grouped
            .entry((
                edit.policy.clone(),
                version_of(&edit.old),
                version_of(&edit.new),
            ))
            .or_default();
        if !files.contains(&edit.file) {
            files.push(edit.file.clone());
        }
    }
    grouped
        .into_iter()
        .map(|((policy, old, new), files)| Change {
            image: watched
                .iter()
                .find(|w| w.policy == policy)
                .map_or_else(String::new, |w| w.image_text.clone()),
            policy,
            old,
            new,
            files,
        })
        .collect()
}

async fn direct(ctx: &UpdateContext<'_>, ws: &mut Workspace) -> UpdateReport {
    let update = ctx.update;
    let branch = update
        .branch
        .clone()
        .unwrap_or_else(|| ctx.repository.branch.clone());
    let base = ctx.repository.branch.clone();
    if let Err(e) = blocking(|| Ok(ws.reset_to(&branch, &base)?)) {
        return failed(update, e.to_string());
    }
    let (watched, targets) = scope_parts(ctx, None);
    let planned = plan_update(ctx, ws.path(), &watched, &targets, &HashMap::new()).await;
    let changes = changes_of(&planned.plan, &watched);
    let mut report = planned.report(update, None, &changes);
    let Planned { plan, picks, .. } = planned;
    if plan.is_empty() {
        return report;
    }
    let template = update.commit_message.as_deref().unwrap_or(DEFAULT_TEMPLATE);
    let message = render_message(
        template,
        &update.name,
        &changes,
        ctx.repository.sign_off.then_some(ctx.author),
    );
    if ctx.dry_run {
        report.outcome = Outcome::DryRun {
            intent: format!("commit to {branch}:\n{message}"),
        };
        return report;
    }
    // The race-safe loop: on a rejected push it fetches, re-plans on the new
    // tip (with the same picks) and tries again, never forcing.
    let all: HashSet<String> = ctx.config.images.iter().map(|i| i.name.clone()).collect();
    let result = blocking(|| {
        Ok(
            ws.commit_and_push_with_retry(&branch, &base, ctx.author, |root| {
                let scope = Scope {
                    paths: &update.paths,
                    watched: &watched,
                    all_policies: &all,
                    targets: &targets,
                    size_cap: manifest::DEFAULT_SIZE_CAP,
                };
                let plan = manifest::scan(root, &scope).plan(&picks);
                if plan.is_empty() {
                    return Ok(None);
                }
                plan.apply(root)?;
                let changes = changes_of(&plan, &watched);
                Ok(Some(render_message(
                    template,
                    &update.name,
                    &changes,
                    ctx.repository.sign_off.then_some(ctx.author),
                )))
            })?,
        )
    });
    report.outcome = match result {
        Ok(RetryOutcome::Committed { oid, attempts }) => Outcome::Committed {
            branch,
            commit: oid.to_string(),
            attempts,
        },
        Ok(RetryOutcome::NothingToDo { .. }) => Outcome::AlreadyDone { branch },
        Err(e) => Outcome::Failed {
            error: e.to_string(),
        },
    };
    report
}

/// The head branch for an update (and a policy, if the template names one).
fn head_branch(template: &str, update: &str, policy: Option<&str>) -> String {
    template
        .replace("{update}", update)
        .replace("{policy}", policy.unwrap_or(""))
}

async fn pull_requests(
    ctx: &UpdateContext<'_>,
    ws: &mut Workspace,
    forge: &Forge,
) -> Vec<UpdateReport> {
    let settings = ctx.update.pull_request.clone().unwrap_or_default();
    let template = settings
        .head
        .clone()
        .unwrap_or_else(|| "tidewatch/{update}".to_string());
    // A head per policy when the template names `{policy}`, else one head.
    let groups: Vec<Option<String>> = if template.contains("{policy}") {
        policies_of(ctx.config, ctx.update)
            .into_iter()
            .map(|p| Some(p.to_string()))
            .collect()
    } else {
        vec![None]
    };
    let mut reports = Vec::new();
    for policy in groups {
        let head = head_branch(&template, &ctx.update.name, policy.as_deref());
        let report = match pull_request(ctx, ws, forge, &settings, &head, policy.as_deref()).await {
            Ok(report) => report,
            Err(e) => UpdateReport {
                head: Some(head),
                ..failed(ctx.update, e.to_string())
            },
        };
        reports.push(report);
    }
    reports
}

async fn pull_request(
    ctx: &UpdateContext<'_>,
    ws: &mut Workspace,
    forge: &Forge,
    settings: &crate::config::PullRequest,
    head: &str,
    only: Option<&str>,
) -> Result<UpdateReport, EngineError> {
    let update = ctx.update;
    let base = settings
        .base
        .clone()
        .unwrap_or_else(|| ctx.repository.branch.clone());
    blocking(|| Ok(ws.reset_to(&base, &base)?))?;
    // Versions a human declined by closing our PR unmerged are not proposed
    // again; the record lives in the PRs themselves.
    let closed = forge.closed_prs_for_head(head).await?;
    let mut declined: HashMap<String, HashSet<String>> = HashMap::new();
    for change in forge::declined_versions(&closed) {
        let tag = change
            .new
            .split('@')
            .next()
            .unwrap_or(&change.new)
            .to_string();
        declined.entry(change.policy).or_default().insert(tag);
    }
    let (watched, targets) = scope_parts(ctx, only);
    let planned = plan_update(ctx, ws.path(), &watched, &targets, &declined).await;
    let changes = changes_of(&planned.plan, &watched);
    let open = forge.open_pr_for_head(head).await?;
    let mut report = planned.report(update, Some(head), &changes);
    let plan = planned.plan;
    if plan.is_empty() {
        // Already on the base (merged, or done by a human): close our PR.
        if let Some(pr) = open {
            if ctx.dry_run {
                report.outcome = Outcome::DryRun {
                    intent: format!(
                        "close PR #{} and delete {head}: its change is already on {base}",
                        pr.number
                    ),
                };
                return Ok(report);
            }
            forge
                .close_pr(
                    pr.number,
                    &format!("Closing: `{base}` already has these versions, so this pull request has nothing left to change."),
                )
                .await?;
            forge.delete_branch(head).await?;
            report.outcome = Outcome::PullRequestClosed {
                number: pr.number,
                head: head.to_string(),
            };
        }
        return Ok(report);
    }
    let template = update.commit_message.as_deref().unwrap_or(DEFAULT_TEMPLATE);
    let message = render_message(
        template,
        &update.name,
        &changes,
        ctx.repository.sign_off.then_some(ctx.author),
    );
    let title = message.lines().next().unwrap_or("").to_string();
    let pr_changes: Vec<PrChange> = changes
        .iter()
        .map(|c| PrChange {
            policy: c.policy.clone(),
            image: c.image.clone(),
            old: c.old.clone(),
            new: c.new.clone(),
            files: c.files.clone(),
        })
        .collect();
    let body = forge::render_body(&update.name, &pr_changes);
    if ctx.dry_run {
        report.outcome = Outcome::DryRun {
            intent: match &open {
                Some(pr) => format!("update PR #{} from {head} into {base}: {title}", pr.number),
                None => format!("open a PR from {head} into {base}: {title}"),
            },
        };
        return Ok(report);
    }
    // Build the commit on the current base tip; push only if the head
    // branch does not already hold exactly this change.
    plan.apply(ws.path())
        .map_err(|e| EngineError::Config(format!("cannot write the edited files: {e}")))?;
    let oid = blocking(|| Ok(ws.commit_all(&message, ctx.author)?))?;
    let Some(oid) = oid else {
        return Ok(report);
    };
    let unchanged = blocking(|| Ok(ws.remote_has_same_change(oid, head)?))?;
    if !unchanged {
        match blocking(|| Ok(ws.push(oid, head, true)?))? {
            git::PushOutcome::Pushed => {}
            git::PushOutcome::Rejected { reason } => {
                return Err(EngineError::Config(format!(
                    "pushing {head} was rejected: {reason}"
                )))
            }
        }
    }
    report.outcome = match open {
        Some(pr) if pr.title == title && pr.body == body => Outcome::PullRequestUnchanged {
            number: pr.number,
            head: head.to_string(),
        },
        Some(pr) => {
            forge.update_pr(pr.number, &title, &body).await?;
            Outcome::PullRequestUpdated {
                number: pr.number,
                head: head.to_string(),
            }
        }
        None => {
            let spec = PullRequestSpec {
                head: head.to_string(),
                base: base.clone(),
                title,
                body,
                labels: settings.labels.clone(),
                reviewers: settings.reviewers.clone(),
                team_reviewers: settings.team_reviewers.clone(),
                assignees: settings.assignees.clone(),
                draft: settings.draft,
            };
            let pr = forge.create_pr(&spec).await?;
            Outcome::PullRequestOpened {
                number: pr.number,
                head: head.to_string(),
            }
        }
    };
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn github_slugs_from_urls() {
        assert_eq!(
            github_slug("https://github.com/acme/fleet.git").as_deref(),
            Some("acme/fleet")
        );
        assert_eq!(
            github_slug("git@github.com:acme/fleet.git").as_deref(),
            Some("acme/fleet")
        );
        assert_eq!(github_slug("file:///tmp/fleet"), None);
    }

    #[test]
    fn versions_of_written_values() {
        assert_eq!(version_of("ghcr.io/acme/app:1.2.0"), "1.2.0");
        let digest = format!("sha256:{}", "a".repeat(64));
        assert_eq!(
            version_of(&format!("localhost:5000/app:1.2.0@{digest}")),
            format!("1.2.0@{digest}")
        );
        assert_eq!(version_of("1.2.0"), "1.2.0");
        assert_eq!(version_of("v2"), "v2");
    }

    #[test]
    fn head_branch_templates() {
        assert_eq!(
            head_branch("tidewatch/{update}", "prod", None),
            "tidewatch/prod"
        );
        assert_eq!(
            head_branch("tidewatch/{update}/{policy}", "prod", Some("app")),
            "tidewatch/prod/app"
        );
    }
}
