//! One cycle's registry scan for a set of image policies: the bridge
//! between the registry client (which knows nothing of policies) and the
//! selection engine (which knows nothing of the network).
//!
//! Requests are minimised here: one tag listing per *distinct* repository
//! however many policies watch it, digests only for the tags a policy could
//! pick (those left after its excludes and filter), each (repository, tag)
//! `HEAD`ed once per scan, and build times from the digest cache. Hosts run
//! concurrently and independently: a failing registry fails only the
//! policies that watch it, with the error kept for the status page.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use tokio::task::JoinSet;

use crate::policy::{Policy, TagMetadata};
use crate::reference::ImageName;
use crate::registry::{Client, RegistryError};

/// One image policy to scan for.
#[derive(Clone, Debug)]
pub struct ScanTarget {
    pub policy: String,
    pub image: ImageName,
    pub selector: Policy,
    /// `os/arch[/variant]` filters for build times of multi-platform images.
    pub platforms: Vec<String>,
}

/// What a policy's selection needs, or why it cannot have it.
#[derive(Clone, Debug)]
pub struct ScanResult {
    pub tags: Arc<Vec<String>>,
    pub metadata: HashMap<String, TagMetadata>,
    /// Tags the registry listed that are not valid OCI tags (skipped).
    pub invalid_tags: usize,
}

/// A repository's valid tags and the count of invalid ones skipped.
type Listed = (Arc<Vec<String>>, usize);

pub async fn scan(
    client: &Arc<Client>,
    targets: &[ScanTarget],
) -> HashMap<String, Result<ScanResult, RegistryError>> {
    // One listing per distinct repository.
    let repositories: BTreeSet<&ImageName> = targets.iter().map(|t| &t.image).collect();
    let mut listings = JoinSet::new();
    for image in repositories {
        let (client, image) = (client.clone(), image.clone());
        listings.spawn(async move {
            let tags = client.tags(&image).await;
            (image, tags.map(|list| (Arc::new(list.tags), list.invalid)))
        });
    }
    let mut tags_by_image: HashMap<ImageName, Result<Listed, RegistryError>> = HashMap::new();
    while let Some(joined) = listings.join_next().await {
        if let Ok((image, tags)) = joined {
            tags_by_image.insert(image, tags);
        }
    }

    // Digests for every tag some policy could pick, each asked once.
    let mut wanted: BTreeSet<(ImageName, String)> = BTreeSet::new();
    for target in targets {
        let Some(Ok((tags, _))) = tags_by_image.get(&target.image) else {
            continue;
        };
        if target.selector.needs_digests() || target.selector.needs_build_times() {
            for tag in target.selector.metadata_candidates(tags) {
                wanted.insert((target.image.clone(), tag.to_string()));
            }
        }
    }
    let mut heads = JoinSet::new();
    for (image, tag) in wanted {
        let client = client.clone();
        heads.spawn(async move {
            let digest = client.digest(&image, &tag).await;
            (image, tag, digest)
        });
    }
    let mut digests: HashMap<(ImageName, String), Result<String, RegistryError>> = HashMap::new();
    while let Some(joined) = heads.join_next().await {
        if let Ok((image, tag, digest)) = joined {
            digests.insert((image, tag), digest);
        }
    }

    let mut results = HashMap::new();
    for target in targets {
        let result =
            match tags_by_image.get(&target.image) {
                None => Err(RegistryError::Unreachable {
                    host: target.image.registry.clone(),
                    detail: "the tag listing task did not finish".into(),
                }),
                Some(Err(e)) => Err(e.clone()),
                Some(Ok((tags, invalid))) => metadata_for(client, target, tags, &digests)
                    .await
                    .map(|metadata| ScanResult {
                        tags: tags.clone(),
                        metadata,
                        invalid_tags: *invalid,
                    }),
            };
        results.insert(target.policy.clone(), result);
    }
    results
}

/// Builds a policy's metadata from the digests, fetching build times (from
/// the cache where known). A tag that vanished between listing and `HEAD`
/// (404) just has no metadata; any other failure fails the policy.
async fn metadata_for(
    client: &Arc<Client>,
    target: &ScanTarget,
    tags: &[String],
    digests: &HashMap<(ImageName, String), Result<String, RegistryError>>,
) -> Result<HashMap<String, TagMetadata>, RegistryError> {
    let mut metadata = HashMap::new();
    if !(target.selector.needs_digests() || target.selector.needs_build_times()) {
        return Ok(metadata);
    }
    for tag in target.selector.metadata_candidates(tags) {
        let digest = match digests.get(&(target.image.clone(), tag.to_string())) {
            Some(Ok(d)) => d.clone(),
            Some(Err(RegistryError::NotFound { .. })) | None => continue,
            Some(Err(e)) => return Err(e.clone()),
        };
        let created = if target.selector.needs_build_times() {
            match client
                .created(&target.image, &digest, &target.platforms)
                .await
            {
                Ok(c) => c,
                Err(RegistryError::NotFound { .. }) => None,
                Err(e) => return Err(e),
            }
        } else {
            None
        };
        metadata.insert(
            tag.to_string(),
            TagMetadata {
                digest: Some(digest),
                created,
            },
        );
    }
    Ok(metadata)
}
