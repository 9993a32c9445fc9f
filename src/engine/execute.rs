//! Execute: carry out the intents, each on its own. An intent that fails
//! becomes that group's `Failed` outcome; the next one still runs.
//!
//! Writes re-plan from the picks on what the remote holds at that moment
//! (the new tip after a push race, the base of a pull request), so a commit
//! is always built from files as they are, never from a stale copy.

use std::sync::Arc;

use super::intent::{CloseIntent, CommitIntent, HoldIntent, Intent, PrIntent};
use super::plan::{changes_and_message, GroupPlan};
use super::report::{Outcome, UpdateReport};
use super::scope::UpdateScope;
use super::workspace::WorkspaceHandle;
use super::{Engine, EngineError};
use crate::config::{Config, Update};
use crate::forge::{self, Forge, PullRequestSpec};
use crate::git::{GitError, Identity, PushOutcome, RetryOutcome};

pub(super) struct Executor<'a> {
    pub engine: &'a Engine,
    pub config: &'a Config,
    pub author: &'a Identity,
    pub workspace: &'a mut WorkspaceHandle,
    pub deadline: Option<crate::deadline::Deadline>,
}

impl Executor<'_> {
    pub async fn run(&mut self, plans: Vec<GroupPlan>) -> Vec<UpdateReport> {
        let mut reports = Vec::new();
        for plan in plans {
            self.engine.set_step(format!(
                "delivering update {}{}",
                plan.update,
                plan.head
                    .as_deref()
                    .map(|h| format!(" ({h})"))
                    .unwrap_or_default()
            ));
            let outcome = match self.config.updates.iter().find(|u| u.name == plan.update) {
                Some(update) => {
                    let update = update.item.clone();
                    self.outcome(&update, &plan.intent)
                        .await
                        .unwrap_or_else(|e| Outcome::Failed {
                            error: e.to_string(),
                        })
                }
                None => Outcome::Failed {
                    error: format!("update {} is not in the config", plan.update),
                },
            };
            if let Outcome::Failed { error } = &outcome {
                tracing::warn!(update = %plan.update, head = ?plan.head, %error, "update failed");
            }
            reports.push(report(plan, outcome));
        }
        reports
    }

    async fn outcome(&mut self, update: &Update, intent: &Intent) -> Result<Outcome, EngineError> {
        let writes = !matches!(intent, Intent::Nothing | Intent::Fail { .. });
        if writes && self.deadline.as_ref().is_some_and(|d| d.passed()) {
            return Ok(Outcome::Failed {
                error: "the cycle's deadline passed before this update was delivered; nothing was written for it, the next cycle tries again".into(),
            });
        }
        match intent {
            Intent::Nothing => Ok(Outcome::UpToDate),
            Intent::Fail { error } => Ok(Outcome::Failed {
                error: error.clone(),
            }),
            Intent::Commit(commit) => self.commit(update, commit).await,
            Intent::OpenOrUpdatePr(pr) => self.pull_request(update, pr).await,
            Intent::ClosePr(close) => self.close(close).await,
            Intent::Hold(hold) => self.hold(hold).await,
        }
    }

    fn sign_off(&self) -> bool {
        self.config.repository.as_ref().is_some_and(|r| r.sign_off)
    }

    async fn forge(&self) -> Result<Arc<dyn Forge>, EngineError> {
        self.engine.forge(self.config).await
    }

    async fn commit(
        &mut self,
        update: &Update,
        commit: &CommitIntent,
    ) -> Result<Outcome, EngineError> {
        let scope = UpdateScope::of(self.config, update);
        let sign_off = self.sign_off();
        let (update, author) = (update.clone(), self.author.clone());
        let CommitIntent {
            branch,
            base,
            picks,
            ..
        } = commit.clone();
        let outcome_branch = branch.clone();
        let result = self
            .workspace
            .run(move |ws| {
                ws.commit_and_push_after_fetch(&branch, &base, &author, |root| {
                    let plan = scope.scan(root, &update).plan(&picks);
                    if plan.is_empty() {
                        return Ok(None);
                    }
                    plan.apply(root)?;
                    let (_, message) =
                        changes_and_message(&update, &author, sign_off, &scope, &plan);
                    Ok(Some(message))
                })
            })
            .await?;
        Ok(match result {
            Ok(RetryOutcome::Committed { oid, attempts }) => Outcome::Committed {
                branch: outcome_branch,
                commit: oid.to_string(),
                attempts,
            },
            Ok(RetryOutcome::NothingToDo { .. }) => Outcome::AlreadyDone {
                branch: outcome_branch,
            },
            Err(e) => Outcome::Failed {
                error: e.to_string(),
            },
        })
    }

    async fn pull_request(
        &mut self,
        update: &Update,
        pr: &PrIntent,
    ) -> Result<Outcome, EngineError> {
        // The forge first: if it cannot be reached, nothing is pushed.
        let forge = self.forge().await?;
        let scope = UpdateScope::of(self.config, update);
        let sign_off = self.sign_off();
        let (update, author) = (update.clone(), self.author.clone());
        let (base, head, picks) = (pr.base.clone(), pr.head.clone(), pr.picks.clone());
        let expected = pr
            .head_tip
            .as_deref()
            .and_then(|tip| git2::Oid::from_str(tip).ok());
        let pushed = self
            .workspace
            .run(move |ws| -> Result<bool, GitError> {
                ws.reset_to(&base, &base)?;
                let plan = scope.scan(ws.path(), &update).plan(&picks);
                if plan.is_empty() {
                    return Ok(false);
                }
                plan.apply(ws.path()).map_err(|e| GitError::Edit {
                    url: ws.url().to_string(),
                    branch: head.clone(),
                    source: e.into(),
                })?;
                let (_, message) = changes_and_message(&update, &author, sign_off, &scope, &plan);
                let Some(oid) = ws.commit_all(&message, &author)? else {
                    return Ok(false);
                };
                if !ws.remote_has_same_change(oid, &head)? {
                    match ws.push_with_lease(oid, &head, expected)? {
                        PushOutcome::Pushed => {}
                        PushOutcome::Rejected { reason } => {
                            return Err(GitError::PushRejected {
                                url: ws.url().to_string(),
                                branch: head.clone(),
                                reason,
                            })
                        }
                    }
                }
                Ok(true)
            })
            .await??;
        if !pushed {
            // The base changed under us and already holds the picks: the
            // next cycle closes the pull request with the full picture.
            return Ok(Outcome::UpToDate);
        }
        Ok(match &pr.existing {
            Some(existing) if existing.text_matches => Outcome::PullRequestUnchanged {
                number: existing.number,
                head: pr.head.clone(),
            },
            Some(existing) => {
                forge
                    .update_pr(existing.number, &pr.title, &pr.body)
                    .await?;
                Outcome::PullRequestUpdated {
                    number: existing.number,
                    head: pr.head.clone(),
                }
            }
            None => {
                let created = forge
                    .create_pr(&PullRequestSpec {
                        head: pr.head.clone(),
                        base: pr.base.clone(),
                        title: pr.title.clone(),
                        body: pr.body.clone(),
                        labels: pr.labels.clone(),
                        reviewers: pr.reviewers.clone(),
                        team_reviewers: pr.team_reviewers.clone(),
                        assignees: pr.assignees.clone(),
                        draft: pr.draft,
                    })
                    .await?;
                Outcome::PullRequestOpened {
                    number: created.number,
                    head: pr.head.clone(),
                }
            }
        })
    }

    /// Marks the body as closed by tidewatch (so the close is never read as
    /// a decline), says why in a comment, closes, and deletes the branch.
    async fn close(&mut self, close: &CloseIntent) -> Result<Outcome, EngineError> {
        let forge = self.forge().await?;
        let update_name = forge::parse_body(&close.body)
            .map(|r| r.update)
            .unwrap_or_default();
        let marked = forge::mark_closed_by_tidewatch(&close.body, &update_name);
        forge.update_pr(close.number, &close.title, &marked).await?;
        forge
            .comment(
                close.number,
                &format!(
                    "Closing: {}. tidewatch closed this itself; it is not a declined version.",
                    close.reason
                ),
            )
            .await?;
        forge.close_pr(close.number).await?;
        if close.delete_branch {
            let head = close.head.clone();
            self.workspace
                .run(move |ws| ws.delete_remote_branch(&head))
                .await??;
        }
        Ok(Outcome::PullRequestClosed {
            number: close.number,
            head: close.head.clone(),
        })
    }

    async fn hold(&mut self, hold: &HoldIntent) -> Result<Outcome, EngineError> {
        if let (Some(number), Some(comment)) = (hold.number, &hold.comment) {
            let forge = self.forge().await?;
            forge.comment(number, &comment.text).await?;
            forge
                .update_pr(number, &comment.title, &comment.body)
                .await?;
        }
        Ok(Outcome::Held {
            number: hold.number,
            reason: hold.reason.clone(),
        })
    }
}

/// The report of one group: the plan's findings and what execution did.
pub(super) fn report(plan: GroupPlan, outcome: Outcome) -> UpdateReport {
    UpdateReport {
        update: plan.update,
        head: plan.head,
        changes: plan.changes,
        outcome,
        notes: plan.notes,
        diff: plan.diff,
        current: plan.current,
        picks: plan.picks,
        declines: plan.declines,
        intent: plan.intent.describe(),
        gates: plan.gates,
    }
}
