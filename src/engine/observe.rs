//! Observe: every input of a cycle, as a [`Snapshot`] of plain data.
//!
//! Each observation either succeeds or says why it did not; nothing here
//! decides what to do. Registry scans become [`PolicyState`]s (policies not
//! due this cycle carry their last known value), the files of each update
//! are read at the remote tip, and the forge is asked for each head's open
//! and closed pull requests. git2 and file work run on blocking threads.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use super::plan::digests_needed;
use super::scan::{scan, ScanTarget};
use super::scope::UpdateScope;
use super::snapshot::{
    FilesView, ForgeView, HeadBranch, HeadView, Observation, PolicyState, Snapshot, UpdateView,
};
use super::workspace::WorkspaceHandle;
use super::{Engine, EngineError};
use crate::config::{Config, Update};
use crate::forge::{self, Forge};
use crate::git::Identity;

/// Scans the due policies (all when `due` is `None`) and merges the result
/// with the last known value of the others. Returns the states and the
/// policies actually scanned.
pub(super) async fn policies(
    engine: &Engine,
    config: &Config,
    due: Option<&HashSet<String>>,
) -> (BTreeMap<String, PolicyState>, Vec<String>) {
    let used: HashSet<&str> = config
        .updates
        .iter()
        .flat_map(|u| config.policies_of(u))
        .collect();
    let targets: Vec<ScanTarget> = config
        .images
        .iter()
        .filter(|i| used.contains(i.name.as_str()))
        .filter(|i| due.is_none_or(|d| d.contains(&i.name)))
        .filter_map(|i| {
            Some(ScanTarget {
                policy: i.name.clone(),
                image: config.image_names.get(&i.name)?.clone(),
                selector: config.policies.get(&i.name)?.clone(),
                platforms: i.platforms.clone(),
            })
        })
        .collect();
    let scanned: Vec<String> = targets.iter().map(|t| t.policy.clone()).collect();
    let results = scan(&engine.client, &targets).await;
    let now = jiff::Timestamp::now();
    let mut memory = engine.memory();
    let mut states = BTreeMap::new();
    for image in &config.images {
        let name = &image.name;
        let state = match results.get(name) {
            Some(Ok(result)) => {
                let observation = Arc::new(Observation {
                    tags: result.tags.clone(),
                    metadata: result.metadata.clone(),
                    observed_at: now,
                    invalid_tags: result.invalid_tags,
                });
                memory.insert(name.clone(), observation.clone());
                PolicyState::Known(observation)
            }
            // A due policy whose scan failed is unknown, whatever it was
            // before: acting on an old value would act on what we did not see.
            Some(Err(error)) => {
                memory.remove(name);
                PolicyState::Unknown {
                    reason: error.to_string(),
                }
            }
            None => match memory.get(name) {
                Some(observation) => PolicyState::Known(observation.clone()),
                None if used.contains(name.as_str()) => PolicyState::Unknown {
                    reason: "it has not been scanned successfully yet".into(),
                },
                None => continue,
            },
        };
        states.insert(name.clone(), state);
    }
    (states, scanned)
}

/// Reads every update's files at the remote tip of the branch it reads
/// (each distinct branch checked out once), and the head branches of pull
/// requests.
pub(super) async fn files(
    config: &Config,
    workspace: &mut WorkspaceHandle,
    author: &Identity,
) -> Result<Vec<UpdateView>, EngineError> {
    let repository = config
        .repository
        .as_ref()
        .ok_or(EngineError::NoRepository)?;
    let base = repository.branch.clone();
    let updates: Vec<Update> = config.updates.iter().map(|u| u.item.clone()).collect();
    let scopes: Vec<UpdateScope> = updates.iter().map(|u| UpdateScope::of(config, u)).collect();
    let author = author.clone();
    workspace
        .run(move |ws| {
            // Which branch each update reads: its own (or the base when it
            // does not exist yet), or the base of its pull requests.
            let mut by_branch: BTreeMap<String, Vec<usize>> = BTreeMap::new();
            let mut read: Vec<Result<String, String>> = Vec::new();
            for (index, update) in updates.iter().enumerate() {
                let wanted = match &update.pull_request {
                    Some(pr) => pr.base.clone().unwrap_or_else(|| base.clone()),
                    None => update.branch.clone().unwrap_or_else(|| base.clone()),
                };
                let branch = match ws.remote_tip(&wanted) {
                    Ok(Some(_)) => Ok(wanted),
                    Ok(None) if update.pull_request.is_none() => Ok(base.clone()),
                    Ok(None) => Err(format!(
                        "the base branch {wanted} does not exist on {}",
                        ws.url()
                    )),
                    Err(e) => Err(e.to_string()),
                };
                if let Ok(branch) = &branch {
                    by_branch.entry(branch.clone()).or_default().push(index);
                }
                read.push(branch);
            }
            let mut files: Vec<Option<Result<FilesView, String>>> =
                (0..updates.len()).map(|_| None).collect();
            for (branch, indexes) in &by_branch {
                let reset = ws.reset_to(branch, branch).or_else(|error| {
                    if !error.is_local_breakage() {
                        return Err(error);
                    }
                    // The clone itself is broken (say, a lost object):
                    // clone afresh once and read the branch again.
                    ws.reclone(&error)?;
                    ws.reset_to(branch, branch)
                });
                match reset {
                    Ok(tip) => {
                        for &index in indexes {
                            let scan = scopes[index].scan(ws.path(), &updates[index]);
                            files[index] = Some(Ok(FilesView {
                                branch: branch.clone(),
                                tip: tip.to_string(),
                                scan,
                            }));
                        }
                    }
                    Err(e) => {
                        for &index in indexes {
                            files[index] = Some(Err(e.to_string()));
                        }
                    }
                }
            }
            let mut views = Vec::new();
            for (index, update) in updates.iter().enumerate() {
                let files = match (&read[index], files[index].take()) {
                    (Err(e), _) => Err(e.clone()),
                    (Ok(_), Some(result)) => result,
                    (Ok(_), None) => Err("the branch was not read".to_string()),
                };
                let heads = match &update.pull_request {
                    None => Vec::new(),
                    Some(_) => head_names(config_names(&scopes[index]), update)
                        .into_iter()
                        .map(|(head, policy)| {
                            let branch = match (&files, ws.remote_tip(&head)) {
                                (Ok(view), Ok(Some(tip))) => {
                                    let foreign = git2::Oid::from_str(&view.tip)
                                        .ok()
                                        .and_then(|base| {
                                            ws.foreign_commits(base, tip, &author).ok()
                                        })
                                        .unwrap_or_default();
                                    Some(HeadBranch {
                                        tip: tip.to_string(),
                                        foreign,
                                    })
                                }
                                _ => None,
                            };
                            HeadView {
                                head,
                                policy,
                                forge: Err("not looked up".into()),
                                branch,
                            }
                        })
                        .collect(),
                };
                views.push(UpdateView {
                    update: update.name.clone(),
                    files,
                    heads,
                });
            }
            views
        })
        .await
}

fn config_names(scope: &UpdateScope) -> Vec<String> {
    scope.watched.iter().map(|w| w.policy.clone()).collect()
}

/// The head branches of a pull-request update: one, or one per policy when
/// the template names `{policy}`.
pub(super) fn head_names(policies: Vec<String>, update: &Update) -> Vec<(String, Option<String>)> {
    let template = update
        .pull_request
        .as_ref()
        .and_then(|p| p.head.clone())
        .unwrap_or_else(|| "tidewatch/{update}".to_string());
    let render = |policy: Option<&str>| {
        template
            .replace("{update}", &update.name)
            .replace("{policy}", policy.unwrap_or(""))
    };
    if template.contains("{policy}") {
        policies
            .into_iter()
            .map(|p| (render(Some(&p)), Some(p)))
            .collect()
    } else {
        vec![(render(None), None)]
    }
}

/// Asks the forge about every head: its open pull request and the declines
/// recorded in its closed ones. A forge that cannot be reached makes every
/// head's forge view unknown, and nothing else.
pub(super) async fn pull_requests(engine: &Engine, config: &Config, views: &mut [UpdateView]) {
    if views.iter().all(|v| v.heads.is_empty()) {
        return;
    }
    let forge = match engine.forge(config).await {
        Ok(forge) => forge,
        Err(error) => {
            let error = error.to_string();
            for head in views.iter_mut().flat_map(|v| v.heads.iter_mut()) {
                head.forge = Err(error.clone());
            }
            return;
        }
    };
    for head in views.iter_mut().flat_map(|v| v.heads.iter_mut()) {
        head.forge = observe_head(forge.as_ref(), &head.head).await;
    }
}

async fn observe_head(forge: &dyn Forge, head: &str) -> Result<ForgeView, String> {
    let open = forge
        .open_pr_for_head(head)
        .await
        .map_err(|e| e.to_string())?;
    let closed = forge
        .closed_prs_for_head(head)
        .await
        .map_err(|e| e.to_string())?;
    Ok(ForgeView {
        open,
        declines: forge::declines(&closed),
    })
}

/// Looks up the digests the plan needs for pinned references (one `HEAD`
/// per picked tag), and keeps them with the policy's observation so a
/// later cycle that carries the observation does not ask again.
pub(super) async fn digests(engine: &Engine, config: &Config, snapshot: &mut Snapshot) {
    let needed = digests_needed(config, snapshot);
    let mut memory_updates: HashMap<String, Vec<(String, String)>> = HashMap::new();
    for (policy, tag) in needed {
        let Some(image) = config.image_names.get(&policy) else {
            continue;
        };
        let result = engine
            .client
            .digest(image, &tag)
            .await
            .map_err(|e| e.to_string());
        if let Ok(digest) = &result {
            memory_updates
                .entry(policy.clone())
                .or_default()
                .push((tag.clone(), digest.clone()));
        }
        snapshot.digests.insert((policy, tag), result);
    }
    let mut memory = engine.memory();
    for (policy, found) in memory_updates {
        if let Some(observation) = memory.get_mut(&policy) {
            let observation = Arc::make_mut(observation);
            for (tag, digest) in found {
                observation.metadata.entry(tag).or_default().digest = Some(digest);
            }
        }
    }
}
