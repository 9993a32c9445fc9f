//! Observe for the registry gates: the digests, created times and
//! signature verdicts the plan asks for ([`plan::gate_needs`]), looked up
//! concurrently round after round until the plan needs nothing more. Each
//! round settles one more candidate of every policy whose best one was
//! gated, so a cycle costs one round per gated candidate walked past.

use std::sync::Arc;

use tokio::task::JoinSet;

use super::gating::Need;
use super::plan::gate_needs;
use super::{Engine, Snapshot};
use crate::config::Config;
use crate::gate::SignatureVerdict;
use crate::registry::RegistryError;

/// Rounds per cycle at most (the plan walks at most 32 candidates).
const MAX_ROUNDS: usize = 40;

enum Found {
    Digest(Result<String, String>),
    Created(Result<Option<jiff::Timestamp>, String>),
    Signature(Result<SignatureVerdict, String>),
}

pub(super) async fn gates(engine: &Engine, config: &Config, snapshot: &mut Snapshot) {
    let mut digests_found: Vec<(String, String, String)> = Vec::new();
    for _ in 0..MAX_ROUNDS {
        let needs = gate_needs(config, snapshot);
        if needs.is_empty() {
            break;
        }
        let mut tasks = JoinSet::new();
        for need in needs {
            let policy = match &need {
                Need::Digest { policy, .. }
                | Need::Created { policy, .. }
                | Need::Signature { policy, .. } => policy.clone(),
            };
            let Some(image) = config.image_names.get(&policy).cloned() else {
                continue;
            };
            let client = engine.client.clone();
            let cache = engine.signatures.clone();
            let keys = config.gates.keys.get(&policy).cloned();
            let platforms = config
                .images
                .iter()
                .find(|i| i.name == policy)
                .map(|i| i.platforms.clone())
                .unwrap_or_default();
            tasks.spawn(async move {
                let found = match &need {
                    Need::Digest { tag, .. } => {
                        Found::Digest(client.digest(&image, tag).await.map_err(|e| e.to_string()))
                    }
                    Need::Created { digest, .. } => {
                        Found::Created(match client.created(&image, digest, &platforms).await {
                            Ok(created) => Ok(created),
                            // The image is gone: it has no created time.
                            Err(RegistryError::NotFound { .. }) => Ok(None),
                            Err(e) => Err(e.to_string()),
                        })
                    }
                    Need::Signature { digest, .. } => Found::Signature(match keys {
                        Some(keys) => cache
                            .verdict(&client, &image, digest, &keys)
                            .await
                            .map_err(|e| e.to_string()),
                        None => Err("the policy has no keys".to_string()),
                    }),
                };
                (need, found)
            });
        }
        while let Some(joined) = tasks.join_next().await {
            let Ok((need, found)) = joined else { continue };
            match (need, found) {
                (Need::Digest { policy, tag }, Found::Digest(result)) => {
                    if let Ok(digest) = &result {
                        digests_found.push((policy.clone(), tag.clone(), digest.clone()));
                    }
                    snapshot.digests.insert((policy, tag), result);
                }
                (Need::Created { policy, digest }, Found::Created(result)) => {
                    snapshot.gates.created.insert((policy, digest), result);
                }
                (Need::Signature { policy, digest }, Found::Signature(result)) => {
                    snapshot.gates.signatures.insert((policy, digest), result);
                }
                _ => {}
            }
        }
    }
    // Like pinned digests, a gated tag's digest rides with the policy's
    // observation, so a cycle that carries it does not ask again.
    let mut memory = engine.memory();
    for (policy, tag, digest) in digests_found {
        if let Some(observation) = memory.get_mut(&policy) {
            Arc::make_mut(observation)
                .metadata
                .entry(tag)
                .or_default()
                .digest = Some(digest);
        }
    }
}
