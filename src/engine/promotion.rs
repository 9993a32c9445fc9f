//! Observe for promotions: what the source update of each promotion holds,
//! since when (from the git history of the branch its files are read
//! from), and the forge's combined status of the commit that put it there.
//!
//! Nothing is remembered between cycles but an in-memory shortcut: the
//! answer for a (source tip, policy, value) already walked.

use std::collections::BTreeSet;

use super::scope::UpdateScope;
use super::snapshot::{Held, SourceValue};
use super::workspace::WorkspaceHandle;
use super::{Engine, Snapshot};
use crate::config::{Config, Update};
use crate::manifest::Current;

/// Most walks remembered.
const MEMORY: usize = 1024;

/// The single value (tag and digest) the references of `policy` hold,
/// when they agree. A tag and a digest written in separate fields of one
/// reference (a kustomization's `newTag` and `digest`) make one value.
pub(super) fn value_in(current: &[Current], policy: &str) -> SourceValueOf {
    let mut tags = BTreeSet::new();
    let mut digests = BTreeSet::new();
    for c in current.iter().filter(|c| c.policy == policy) {
        if let Some(tag) = &c.tag {
            tags.insert(tag.clone());
        }
        if let Some(digest) = &c.digest {
            digests.insert(digest.clone());
        }
    }
    if tags.is_empty() && digests.is_empty() {
        return SourceValueOf::Absent;
    }
    if tags.len() > 1 || digests.len() > 1 {
        return SourceValueOf::Several(tags.into_iter().chain(digests).collect());
    }
    SourceValueOf::One(tags.into_iter().next(), digests.into_iter().next())
}

/// What one update's files hold for a policy.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum SourceValueOf {
    Absent,
    Several(Vec<String>),
    One(Option<String>, Option<String>),
}

/// One history walk to make.
struct Walk {
    key: (String, String),
    memo: String,
    tip: git2::Oid,
    source: Update,
    scope: UpdateScope,
    policy: String,
    value: (Option<String>, Option<String>),
}

/// Fills `snapshot.gates.held` and `.statuses` for every promotion.
pub(super) async fn observe(
    engine: &Engine,
    config: &Config,
    workspace: &mut WorkspaceHandle,
    snapshot: &mut Snapshot,
) {
    let mut pairs = BTreeSet::new();
    for update in &config.updates {
        let Some(source) = config.promotion_source(update) else {
            continue;
        };
        let theirs = config.policies_of(source);
        for policy in config.policies_of(update) {
            if theirs.contains(&policy) {
                pairs.insert((source.name.clone(), policy.to_string()));
            }
        }
    }
    let mut walks = Vec::new();
    for (source, policy) in pairs {
        let key = (source.clone(), policy.clone());
        let view = snapshot.updates.iter().find(|v| v.update == source);
        let (files, update) = match (
            view.map(|v| &v.files),
            config.updates.iter().find(|u| u.name == source),
        ) {
            (Some(Ok(files)), Some(update)) => (files, update),
            (Some(Err(e)), _) => {
                let reason = format!("the files of update {source} could not be read: {e}");
                snapshot.gates.held.insert(key, Err(reason));
                continue;
            }
            _ => {
                let reason = format!("the files of update {source} were not read");
                snapshot.gates.held.insert(key, Err(reason));
                continue;
            }
        };
        let value = match value_in(&files.scan.current(), &policy) {
            SourceValueOf::Absent => {
                snapshot.gates.held.insert(key, Ok(SourceValue::Absent));
                continue;
            }
            SourceValueOf::Several(values) => {
                snapshot
                    .gates
                    .held
                    .insert(key, Ok(SourceValue::Several(values)));
                continue;
            }
            SourceValueOf::One(tag, digest) => (tag, digest),
        };
        let Ok(tip) = git2::Oid::from_str(&files.tip) else {
            snapshot.gates.held.insert(
                key,
                Err(format!("{source}'s tip {} is not a commit id", files.tip)),
            );
            continue;
        };
        let memo = format!("{tip}|{source}|{policy}|{value:?}");
        if let Some(held) = engine.held_memory().get(&memo) {
            snapshot
                .gates
                .held
                .insert(key, Ok(SourceValue::Held(held.clone())));
            continue;
        }
        walks.push(Walk {
            key,
            memo,
            tip,
            scope: UpdateScope::of(config, update),
            source: update.item.clone(),
            policy,
            value,
        });
    }
    if !walks.is_empty() {
        let walked = workspace
            .run(move |ws| {
                walks
                    .into_iter()
                    .map(|w| {
                        let found = ws
                            .held_since(w.tip, &w.source.paths, |root| {
                                let current = w.scope.scan(root, &w.source).current();
                                value_in(&current, &w.policy)
                                    == SourceValueOf::One(w.value.0.clone(), w.value.1.clone())
                            })
                            .map_err(|e| e.to_string());
                        (w.key, w.memo, w.value, found)
                    })
                    .collect::<Vec<_>>()
            })
            .await;
        match walked {
            Ok(walked) => {
                for (key, memo, (tag, digest), found) in walked {
                    let result = match found {
                        Ok(Some(commit)) => {
                            let held = Held {
                                tag,
                                digest,
                                commit: commit.id,
                                since: jiff::Timestamp::from_second(commit.time)
                                    .unwrap_or(jiff::Timestamp::UNIX_EPOCH),
                            };
                            let mut memory = engine.held_memory();
                            if memory.len() >= MEMORY {
                                memory.clear();
                            }
                            memory.insert(memo, held.clone());
                            Ok(SourceValue::Held(held))
                        }
                        Ok(None) => Err(format!(
                            "the history of {} does not show the value its files hold",
                            key.0
                        )),
                        Err(e) => Err(e),
                    };
                    snapshot.gates.held.insert(key, result);
                }
            }
            Err(e) => {
                // Every walk is unknown; the keys are gone with the closure.
                let reason = e.to_string();
                for update in &config.updates {
                    if let Some(source) = config.promotion_source(update) {
                        for policy in config.policies_of(update) {
                            snapshot
                                .gates
                                .held
                                .entry((source.name.clone(), policy.to_string()))
                                .or_insert_with(|| Err(reason.clone()));
                        }
                    }
                }
            }
        }
    }
    statuses(engine, config, snapshot).await;
}

/// The combined status of every commit a `requireStatus` promotion needs.
async fn statuses(engine: &Engine, config: &Config, snapshot: &mut Snapshot) {
    let mut commits = BTreeSet::new();
    for update in config.updates.iter().filter(|u| u.require_status.is_some()) {
        let Some(source) = config.promotion_source(update) else {
            continue;
        };
        for policy in config.policies_of(update) {
            if let Some(Ok(SourceValue::Held(held))) = snapshot
                .gates
                .held
                .get(&(source.name.clone(), policy.to_string()))
            {
                commits.insert(held.commit.clone());
            }
        }
    }
    if commits.is_empty() {
        return;
    }
    let forge = match engine.forge(config).await {
        Ok(forge) => forge,
        Err(e) => {
            for commit in commits {
                snapshot.gates.statuses.insert(commit, Err(e.to_string()));
            }
            return;
        }
    };
    for commit in commits {
        let status = forge
            .commit_status(&commit)
            .await
            .map_err(|e| e.to_string());
        snapshot.gates.statuses.insert(commit, status);
    }
}
