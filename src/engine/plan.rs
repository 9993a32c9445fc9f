//! The pure plan: a [`Snapshot`] and the config in, one [`GroupPlan`] per
//! update group (or pull-request head) out. No I/O happens here, so every
//! rule is table-tested (see `plan_tests.rs`).
//!
//! The rules it keeps:
//! * **An unknown is never a "no".** Direct commits write the known picks
//!   and name the unknown policies. A pull request whose policies are not
//!   all known is held exactly as it is; it is closed only when every
//!   policy it covers is known and nothing is left to change.
//! * **A pull-request branch carries every change of every policy it
//!   covers**, or is not pushed at all.
//! * **A declined version is a floor**: nothing at or below it is proposed
//!   again for that update and policy.
//! * **Humans' commits on a head branch are not overwritten** (unless
//!   `pullRequest.overwriteHumanCommits`): the pull request is held, and
//!   a comment says so once.

use std::collections::{BTreeMap, HashMap};

use super::gating::{self, GateLine, Gated, Need, Subject};
use super::intent::{
    CloseIntent, CommitIntent, ExistingPr, HeldComment, HoldIntent, Intent, PrIntent,
};
use super::message::{render_message, DEFAULT_TEMPLATE};
use super::report::Change;
use super::scope::UpdateScope;
use super::snapshot::{FilesView, HeadView, PolicyState, Snapshot, UpdateView};
use crate::config::{Config, Update};
use crate::forge::{self, Decline, PrChange};
use crate::git::Identity;
use crate::manifest::{self, version_of};
use crate::policy::{Context, Outcome, Pick};

/// The plan for one update group, or one head of a pull-request update.
#[derive(Clone, Debug)]
pub struct GroupPlan {
    pub update: String,
    pub head: Option<String>,
    pub intent: Intent,
    pub changes: Vec<Change>,
    /// Unknown policies, policies without a pick, files skipped or refused.
    pub notes: Vec<String>,
    /// Unified diff of the planned edits.
    pub diff: String,
    /// Per policy, the value in Git when the cycle looked.
    pub current: BTreeMap<String, String>,
    /// Per policy, this cycle's pick.
    pub picks: BTreeMap<String, String>,
    /// Versions declined for this head, in force.
    pub declines: Vec<Decline>,
    /// The gates' verdicts on the candidates of gated policies.
    pub gates: Vec<GateLine>,
    /// Gated policies whose facts could not be observed, with why.
    pub gate_errors: Vec<(String, String)>,
}

/// Plans every update of `config` from what `snapshot` observed.
pub fn plan(config: &Config, snapshot: &Snapshot, author: &Identity) -> Vec<GroupPlan> {
    let mut out = Vec::new();
    for view in &snapshot.updates {
        let Some(update) = config.updates.iter().find(|u| u.name == view.update) else {
            continue;
        };
        let scope = UpdateScope::of(config, update);
        let ctx = Planner {
            config,
            snapshot,
            update,
            scope: &scope,
            author,
        };
        match &update.pull_request {
            None => out.push(ctx.direct(view)),
            Some(_) => out.extend(view.heads.iter().map(|head| ctx.pull_request(view, head))),
        }
    }
    out
}

/// The `(policy, tag)` pairs whose digest the plan will need because a
/// reference pins one and the pick has none: observation looks them up.
pub fn digests_needed(config: &Config, snapshot: &Snapshot) -> Vec<(String, String)> {
    let mut needed = Vec::new();
    for selected in selections(config, snapshot) {
        for wanted in selected.needs_digest {
            if !needed.contains(&wanted) {
                needed.push(wanted);
            }
        }
    }
    needed
}

/// The facts the gates still need (digests, created times, signatures):
/// observation looks them up and plans again.
pub fn gate_needs(config: &Config, snapshot: &Snapshot) -> Vec<Need> {
    let mut needs: Vec<Need> = selections(config, snapshot)
        .into_iter()
        .flat_map(|s| s.gate_needs)
        .collect();
    needs.sort();
    needs.dedup();
    needs
}

/// The selection of every group the plan will make, as `plan` makes them.
fn selections(config: &Config, snapshot: &Snapshot) -> Vec<Selected> {
    let mut out = Vec::new();
    for view in &snapshot.updates {
        let (Some(update), Ok(files)) = (
            config.updates.iter().find(|u| u.name == view.update),
            &view.files,
        ) else {
            continue;
        };
        let names = config.policies_of(update);
        let heads: Vec<(Vec<&str>, Vec<Decline>)> = if update.pull_request.is_some() {
            view.heads
                .iter()
                .map(|h| (head_policies(h, &names), head_declines(h)))
                .collect()
        } else {
            vec![(names.clone(), Vec::new())]
        };
        for (policies, declines) in heads {
            out.push(select(
                config, snapshot, update, files, &policies, &declines,
            ));
        }
    }
    out
}

struct Planner<'a> {
    config: &'a Config,
    snapshot: &'a Snapshot,
    update: &'a Update,
    scope: &'a UpdateScope,
    author: &'a Identity,
}

impl Planner<'_> {
    fn group(&self, head: Option<&str>, intent: Intent) -> GroupPlan {
        GroupPlan {
            update: self.update.name.clone(),
            head: head.map(str::to_string),
            intent,
            changes: Vec::new(),
            notes: Vec::new(),
            diff: String::new(),
            current: BTreeMap::new(),
            picks: BTreeMap::new(),
            declines: Vec::new(),
            gates: Vec::new(),
            gate_errors: Vec::new(),
        }
    }

    fn message(&self, changes: &[Change]) -> String {
        let sign_off = self.config.repository.as_ref().is_some_and(|r| r.sign_off);
        commit_message(self.update, self.author, sign_off, changes)
    }

    fn direct(&self, view: &UpdateView) -> GroupPlan {
        let files = match &view.files {
            Ok(files) => files,
            Err(error) => {
                return self.group(
                    None,
                    Intent::Fail {
                        error: error.clone(),
                    },
                )
            }
        };
        let names = self.config.policies_of(self.update);
        let selected = select(self.config, self.snapshot, self.update, files, &names, &[]);
        let plan = files.scan.plan(&selected.picks);
        let mut group = self.group(None, Intent::Nothing);
        self.fill(&mut group, &selected, &plan);
        if !plan.is_empty() {
            let branch = self
                .update
                .branch
                .clone()
                .unwrap_or_else(|| self.base_branch());
            group.intent = Intent::Commit(CommitIntent {
                branch,
                base: self.base_branch(),
                picks: selected.picks.clone(),
                message: self.message(&group.changes),
            });
        }
        group
    }

    fn base_branch(&self) -> String {
        self.config
            .repository
            .as_ref()
            .map_or_else(|| "main".to_string(), |r| r.branch.clone())
    }

    fn pull_request(&self, view: &UpdateView, head: &HeadView) -> GroupPlan {
        let mut group = self.group(Some(&head.head), Intent::Nothing);
        let files = match &view.files {
            Ok(files) => files,
            Err(error) => {
                group.intent = Intent::Fail {
                    error: error.clone(),
                };
                return group;
            }
        };
        let forge_view = match &head.forge {
            Ok(forge_view) => forge_view,
            Err(error) => {
                group.intent = Intent::Fail {
                    error: error.clone(),
                };
                return group;
            }
        };
        let names = head_policies(head, &self.config.policies_of(self.update));
        let declines = head_declines(head);
        let selected = select(
            self.config,
            self.snapshot,
            self.update,
            files,
            &names,
            &declines,
        );
        let plan = files.scan.plan(&selected.picks);
        self.fill(&mut group, &selected, &plan);
        group.declines = declines;
        let open = forge_view.open.as_ref();

        if !selected.unknown.is_empty() {
            let reasons: Vec<String> = selected
                .unknown
                .iter()
                .map(|(policy, reason)| format!("policy {policy} is unknown ({reason})"))
                .collect();
            group.intent = Intent::Hold(HoldIntent {
                reason: reasons.join("; "),
                number: open.map(|pr| pr.number),
                comment: None,
            });
            return group;
        }
        let humans = head.branch.as_ref().map_or(&[][..], |b| &b.foreign[..]);
        if plan.is_empty() {
            if let Some(pr) = open {
                let every_policy_picked = names.iter().all(|p| selected.picks.contains_key(*p));
                let base = self.pr_base();
                group.intent = Intent::ClosePr(CloseIntent {
                    number: pr.number,
                    head: head.head.clone(),
                    title: pr.title.clone(),
                    body: pr.body.clone(),
                    reason: if every_policy_picked {
                        format!("`{base}` already has these versions, so this pull request has nothing left to change")
                    } else {
                        "nothing is left to change: no policy it covers has a version to propose"
                            .to_string()
                    },
                    delete_branch: humans.is_empty(),
                });
            }
            return group;
        }
        let settings = self.update.pull_request.clone().unwrap_or_default();
        if !humans.is_empty() && !settings.overwrite_human_commits {
            let first = &humans[0];
            let reason = format!(
                "the head branch {} holds {} commit(s) tidewatch did not make (newest {} by {}); tidewatch will not overwrite them: merge or close the pull request, or set pullRequest.overwriteHumanCommits",
                head.head,
                humans.len(),
                short(&first.id),
                first.committer
            );
            let comment = open.and_then(|pr| {
                let marker = held_marker(&first.id);
                (!pr.body.contains(&marker)).then(|| HeldComment {
                    text: format!("tidewatch is holding this pull request: {reason}."),
                    title: pr.title.clone(),
                    body: format!("{}\n{marker}\n", pr.body.trim_end()),
                })
            });
            group.intent = Intent::Hold(HoldIntent {
                reason,
                number: open.map(|pr| pr.number),
                comment,
            });
            return group;
        }
        let message = self.message(&group.changes);
        let title = message.lines().next().unwrap_or_default().to_string();
        let pr_changes: Vec<PrChange> = group
            .changes
            .iter()
            .map(|c| PrChange {
                policy: c.policy.clone(),
                image: c.image.clone(),
                old: c.old.clone(),
                new: c.new.clone(),
                files: c.files.clone(),
            })
            .collect();
        let origins: Vec<(String, String)> = selected
            .origins
            .iter()
            .filter(|(policy, _)| pr_changes.iter().any(|c| &c.policy == *policy))
            .map(|(policy, origin)| (policy.clone(), origin.clone()))
            .collect();
        let body = forge::render_body_with_origins(&self.update.name, &pr_changes, &origins);
        group.intent = Intent::OpenOrUpdatePr(PrIntent {
            head: head.head.clone(),
            base: self.pr_base(),
            picks: selected.picks.clone(),
            message,
            existing: open.map(|pr| ExistingPr {
                number: pr.number,
                text_matches: pr.title == title && pr.body == body,
            }),
            title,
            body,
            head_tip: head.branch.as_ref().map(|b| b.tip.clone()),
            labels: settings.labels.clone(),
            reviewers: settings.reviewers.clone(),
            team_reviewers: settings.team_reviewers.clone(),
            assignees: settings.assignees.clone(),
            draft: settings.draft,
        });
        group
    }

    fn pr_base(&self) -> String {
        self.update
            .pull_request
            .as_ref()
            .and_then(|p| p.base.clone())
            .unwrap_or_else(|| self.base_branch())
    }

    /// The parts of a group every intent reports: changes, notes, diff,
    /// the values in Git and the picks.
    fn fill(&self, group: &mut GroupPlan, selected: &Selected, plan: &manifest::Plan) {
        group.changes = changes_of(plan, self.scope);
        group.notes = selected
            .unknown
            .iter()
            .map(|(policy, reason)| format!("{policy}: not updated this cycle: {reason}"))
            .chain(selected.notes.iter().cloned())
            .chain(plan.notes.iter().map(|n| n.to_string()))
            .collect();
        group.diff = plan.diff();
        group.current = selected.current.clone();
        group.gates = selected.gates.clone();
        group.gate_errors = selected.gate_errors.clone();
        group.picks = selected
            .picks
            .iter()
            .map(|(p, pick)| (p.clone(), pick.to_string()))
            .collect();
    }
}

/// The changes and the commit message of a plan re-made at execution time
/// (on a new tip after a race, or on the base for a pull request).
pub(super) fn changes_and_message(
    update: &Update,
    author: &Identity,
    sign_off: bool,
    scope: &UpdateScope,
    plan: &manifest::Plan,
) -> (Vec<Change>, String) {
    let changes = changes_of(plan, scope);
    let message = commit_message(update, author, sign_off, &changes);
    (changes, message)
}

/// The commit message (and pull-request title, its first line) of `changes`.
fn commit_message(
    update: &Update,
    author: &Identity,
    sign_off: bool,
    changes: &[Change],
) -> String {
    let template = update.commit_message.as_deref().unwrap_or(DEFAULT_TEMPLATE);
    render_message(template, &update.name, changes, sign_off.then_some(author))
}

/// The policies one head covers.
fn head_policies<'c>(head: &HeadView, names: &[&'c str]) -> Vec<&'c str> {
    match &head.policy {
        Some(only) => names.iter().copied().filter(|n| n == only).collect(),
        None => names.to_vec(),
    }
}

fn head_declines(head: &HeadView) -> Vec<Decline> {
    head.forge
        .as_ref()
        .map(|f| f.declines.clone())
        .unwrap_or_default()
}

/// The marker a held pull request's body carries once the "held" comment
/// about foreign commit `id` has been posted.
fn held_marker(id: &str) -> String {
    format!("<!-- tidewatch:held {id} -->")
}

fn short(id: &str) -> &str {
    &id[..id.len().min(12)]
}

/// The selection of one group's policies against its files.
#[derive(Debug, Default)]
struct Selected {
    picks: HashMap<String, Pick>,
    /// Policies whose input is unknown, with why.
    unknown: Vec<(String, String)>,
    /// Policies that are known but have nothing to propose, with why.
    notes: Vec<String>,
    /// Per policy, the value in Git.
    current: BTreeMap<String, String>,
    /// `(policy, tag)` digests that the snapshot lacks.
    needs_digest: Vec<(String, String)>,
    /// Facts the gates lack.
    gate_needs: Vec<Need>,
    /// The gates' verdicts.
    gates: Vec<GateLine>,
    /// Gated policies with an unobservable fact.
    gate_errors: Vec<(String, String)>,
    /// Per promoted policy, where its pick comes from.
    origins: BTreeMap<String, String>,
}

fn select(
    config: &Config,
    snapshot: &Snapshot,
    update: &Update,
    files: &FilesView,
    policies: &[&str],
    declines: &[Decline],
) -> Selected {
    let mut out = Selected::default();
    let current = files.scan.current();
    for c in &current {
        if let Some(value) = c.tag.clone().or_else(|| c.digest.clone()) {
            if policies.contains(&c.policy.as_str()) {
                out.current.entry(c.policy.clone()).or_insert(value);
            }
        }
    }
    for &policy in policies {
        let Some(selector) = config.policies.get(policy) else {
            continue;
        };
        let observation = match snapshot.policies.get(policy) {
            Some(PolicyState::Known(observation)) => observation,
            Some(PolicyState::Unknown { reason }) => {
                out.unknown.push((policy.to_string(), reason.clone()));
                continue;
            }
            None => {
                out.unknown
                    .push((policy.to_string(), "it has not been scanned yet".into()));
                continue;
            }
        };
        if observation.invalid_tags > 0 {
            out.notes.push(format!(
                "{policy}: {} tag(s) listed by the registry are not valid OCI tags and were skipped",
                observation.invalid_tags
            ));
        }
        let now = current
            .iter()
            .filter(|c| c.policy == policy)
            .find_map(|c| c.tag.clone());
        let declined: Vec<String> = declines
            .iter()
            .filter(|d| d.policy == policy)
            .map(|d| d.version.clone())
            .collect();
        let context = Context {
            current: now.as_deref(),
            declined: &declined,
        };
        let outcome = if gating::applies(config, update, policy) {
            let result = gating::select(&Subject {
                config,
                snapshot,
                update,
                policy,
                selector,
                observation,
                context: &context,
                current_digest: current
                    .iter()
                    .filter(|c| c.policy == policy)
                    .find_map(|c| c.digest.as_deref()),
            });
            out.gates.extend(result.lines);
            out.gate_needs.extend(result.needs);
            match result.gated {
                Gated::Picked(pick, origin) => {
                    if let Some(origin) = origin {
                        out.origins.insert(policy.to_string(), origin);
                    }
                    Outcome::Picked(pick)
                }
                Gated::Nothing(reason) => Outcome::NothingQualifies { reason },
                Gated::Unknown(reason) => {
                    out.gate_errors.push((policy.to_string(), reason.clone()));
                    out.unknown.push((policy.to_string(), reason));
                    continue;
                }
            }
        } else {
            selector.select_with(&observation.tags, &observation.metadata, &context)
        };
        match outcome {
            Outcome::Picked(mut pick) => {
                let pinned = current
                    .iter()
                    .any(|c| c.policy == policy && c.digest.is_some());
                if pinned && pick.digest.is_none() {
                    pick.digest = observation
                        .metadata
                        .get(&pick.tag)
                        .and_then(|m| m.digest.clone());
                }
                if pinned && pick.digest.is_none() {
                    let key = (policy.to_string(), pick.tag.clone());
                    match snapshot.digests.get(&key) {
                        Some(Ok(digest)) => pick.digest = Some(digest.clone()),
                        Some(Err(reason)) => {
                            out.unknown.push((
                                policy.to_string(),
                                format!("the digest of {} is unknown: {reason}", pick.tag),
                            ));
                            continue;
                        }
                        None => {
                            out.needs_digest.push(key);
                            out.unknown.push((
                                policy.to_string(),
                                format!("the digest of {} has not been looked up", pick.tag),
                            ));
                            continue;
                        }
                    }
                }
                out.picks.insert(policy.to_string(), pick);
            }
            Outcome::NothingQualifies { reason } => out.notes.push(format!("{policy}: {reason}")),
        }
    }
    out
}

/// The edits of a plan grouped into one change per (policy, old, new).
fn changes_of(plan: &manifest::Plan, scope: &UpdateScope) -> Vec<Change> {
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
            image: scope.image_text(&policy),
            policy,
            old,
            new,
            files,
        })
        .collect()
}
