//! Finding the references to watched images in one parsed file.
//!
//! Kinds, in order of precedence (a scalar is claimed once):
//! 1. marker comments on the scalar's line: `# {"tidewatch": "app[:tag|:name|:digest]"}`
//!    and Flux's `# {"$imagepolicy": "ns:app[:tag|:name|:digest]"}`;
//! 2. explicit `targets` paths (`app.containers[1].image.tag`);
//! 3. kustomization `images:` entries, by effective name (`newName`, else `name`);
//! 4. workload containers (`containers`, `initContainers`, `ephemeralContainers`)
//!    with `image: repo:tag[@digest]`;
//! 5. Helm values: maps with `repository` + `tag` (+ `registry`), and
//!    `image: repo:tag` strings.

use std::collections::HashSet;
use std::sync::OnceLock;

use regex::Regex;

use super::tree::{NodeId, NodeKind, Tree};
use crate::reference::{ImageName, Reference};

/// What a reference is, for the plan and the PR body.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RefKind {
    Marker,
    Target,
    Kustomization,
    Workload,
    HelmValues,
}

impl RefKind {
    pub fn as_str(self) -> &'static str {
        match self {
            RefKind::Marker => "marker",
            RefKind::Target => "target",
            RefKind::Kustomization => "kustomization",
            RefKind::Workload => "workload",
            RefKind::HelmValues => "helm-values",
        }
    }
}

/// Which part of an image reference a scalar holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Part {
    /// `repo:tag[@digest]`
    Full,
    Tag,
    /// A tag that may carry a digest, `tag[@digest]` (kustomize `newTag`).
    TagOrTagDigest,
    Name,
    Digest,
}

impl Part {
    pub fn parse(text: &str) -> Option<Part> {
        match text {
            "" | "full" => Some(Part::Full),
            "tag" => Some(Part::Tag),
            "name" => Some(Part::Name),
            "digest" => Some(Part::Digest),
            _ => None,
        }
    }
}

/// A watched image as the plan sees it.
#[derive(Clone, Debug)]
pub struct Watched {
    pub policy: String,
    pub image: ImageName,
    /// The image as the policy file writes it, used when writing a name.
    pub image_text: String,
}

/// An explicit target in an update: this file (scanned as Helm values), and
/// optionally one scalar in it.
#[derive(Clone, Debug)]
pub struct Target {
    pub file: String,
    pub path: Option<String>,
    pub policy: Option<String>,
    pub part: Part,
}

/// One reference found.
#[derive(Clone, Debug)]
pub struct Found {
    pub policy: String,
    pub kind: RefKind,
    pub part: Part,
    /// The scalar node (aliases resolved: an anchor's value is the one edited).
    pub node: NodeId,
    /// For `Part::Full`: the name as the file spells it, kept on rewrite.
    pub name_as_written: Option<String>,
}

/// A file-level problem that means "leave this file alone".
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refusal {
    pub line: usize,
    pub message: String,
}

pub struct FileContext<'a> {
    pub file_name: &'a str,
    pub rel_path: &'a str,
    pub watched: &'a [Watched],
    /// Every policy name in the config: a marker naming none of them is an error.
    pub all_policies: &'a HashSet<String>,
    pub targets: &'a [Target],
    pub as_values: bool,
}

fn marker_regex() -> &'static Regex {
    static RE: OnceLock<Regex> = OnceLock::new();
    RE.get_or_init(|| {
        // Both spellings; the JSON is small and fixed, so a regex is enough.
        Regex::new(r#"#\s*\{\s*"(tidewatch|\$imagepolicy)"\s*:\s*"([^"]*)"\s*\}"#)
            .unwrap_or_else(|_| unreachable!("the marker pattern is a valid constant regex"))
    })
}

/// Finds every reference in `tree`; a refusal means the file must not be
/// touched (for example a marker naming an unknown policy).
pub fn find(text: &str, tree: &Tree, ctx: &FileContext<'_>) -> Result<Vec<Found>, Refusal> {
    let mut found = Vec::new();
    let mut claimed: HashSet<NodeId> = HashSet::new();
    markers(text, tree, ctx, &mut found, &mut claimed)?;
    targets(tree, ctx, &mut found, &mut claimed)?;
    let is_kustomization = matches!(
        ctx.file_name,
        "kustomization.yaml" | "kustomization.yml" | "Kustomization"
    );
    for root in tree.documents.iter().flatten() {
        if is_kustomization {
            kustomization(tree, *root, ctx, &mut found, &mut claimed);
        }
        workloads(tree, *root, ctx, &mut found, &mut claimed);
        if ctx.as_values {
            helm_values(
                tree,
                *root,
                ctx,
                &mut found,
                &mut claimed,
                &mut HashSet::new(),
            );
        }
    }
    Ok(found)
}

fn watched_by_name<'w>(ctx: &FileContext<'w>, name: &ImageName) -> Option<&'w Watched> {
    ctx.watched.iter().find(|w| &w.image == name)
}

fn claim(
    found: &mut Vec<Found>,
    claimed: &mut HashSet<NodeId>,
    tree: &Tree,
    node: NodeId,
    f: Found,
) {
    let node = tree.resolve(node);
    if tree.scalar(node).is_some() && claimed.insert(node) {
        found.push(Found { node, ..f });
    }
}

fn markers(
    text: &str,
    tree: &Tree,
    ctx: &FileContext<'_>,
    found: &mut Vec<Found>,
    claimed: &mut HashSet<NodeId>,
) -> Result<(), Refusal> {
    let mut line_start = 0;
    for (index, line) in text.split_inclusive('\n').enumerate() {
        let line_no = index + 1;
        if let Some(caps) = marker_regex().captures(line) {
            let marker_at = line_start + caps.get(0).map_or(0, |m| m.start());
            let spec = &caps[2];
            let (name, part) = match &caps[1] {
                // Flux: "namespace:name[:part]".
                "$imagepolicy" => {
                    let mut parts = spec.splitn(3, ':');
                    let _namespace = parts.next();
                    (parts.next().unwrap_or(""), parts.next().unwrap_or(""))
                }
                _ => spec.split_once(':').unwrap_or((spec, "")),
            };
            let part = Part::parse(part).ok_or_else(|| Refusal {
                line: line_no,
                message: format!("marker `{spec}` has an unknown part; use :tag, :name or :digest"),
            })?;
            if !ctx.all_policies.contains(name) {
                return Err(Refusal {
                    line: line_no,
                    message: format!("marker names the unknown image policy `{name}`"),
                });
            }
            // The marked scalar: the last value scalar on this line before the comment.
            let scalar = tree
                .nodes
                .iter()
                .enumerate()
                .filter_map(|(id, n)| match &n.kind {
                    NodeKind::Scalar(s) if n.line == line_no && s.end <= marker_at => {
                        Some((id, s.start))
                    }
                    _ => None,
                })
                .max_by_key(|(_, start)| *start)
                .map(|(id, _)| id);
            let Some(node) = scalar else {
                return Err(Refusal {
                    line: line_no,
                    message: format!("marker `{spec}` is not on a line with a scalar value"),
                });
            };
            claimed.insert(node);
            if let Some(w) = ctx.watched.iter().find(|w| w.policy == name) {
                let name_as_written = tree
                    .scalar(node)
                    .and_then(|s| written_name(&s.value, &w.image));
                found.push(Found {
                    policy: w.policy.clone(),
                    kind: RefKind::Marker,
                    part,
                    node,
                    name_as_written,
                });
            }
        }
        line_start += line.len();
    }
    Ok(())
}

/// The name part of a reference as written, if it names `image`.
fn written_name(value: &str, image: &ImageName) -> Option<String> {
    let parsed = Reference::parse(value).ok()?;
    if &parsed.name != image {
        return None;
    }
    let cut = value.find('@').unwrap_or(value.len());
    let name = match value[..cut].rfind(':') {
        Some(i) if !value[..cut][i..].contains('/') => &value[..i],
        _ => &value[..cut],
    };
    Some(name.to_string())
}

fn targets(
    tree: &Tree,
    ctx: &FileContext<'_>,
    found: &mut Vec<Found>,
    claimed: &mut HashSet<NodeId>,
) -> Result<(), Refusal> {
    for target in ctx.targets.iter().filter(|t| t.file == ctx.rel_path) {
        let Some(path) = &target.path else { continue };
        let Some(policy) = &target.policy else {
            continue;
        };
        let Some(w) = ctx.watched.iter().find(|w| &w.policy == policy) else {
            continue;
        };
        let node = tree
            .documents
            .iter()
            .flatten()
            .find_map(|root| navigate(tree, *root, path))
            .ok_or_else(|| Refusal {
                line: 1,
                message: format!("target path `{path}` does not exist in this file"),
            })?;
        let name_as_written = tree
            .scalar(node)
            .and_then(|s| written_name(&s.value, &w.image));
        claim(
            found,
            claimed,
            tree,
            node,
            Found {
                policy: w.policy.clone(),
                kind: RefKind::Target,
                part: target.part,
                node,
                name_as_written,
            },
        );
    }
    Ok(())
}

/// Follows `a.b[1].c` from `root`.
pub fn navigate(tree: &Tree, root: NodeId, path: &str) -> Option<NodeId> {
    let mut node = root;
    for segment in path.split('.') {
        let (key, indexes) = match segment.find('[') {
            Some(i) => (&segment[..i], &segment[i..]),
            None => (segment, ""),
        };
        if !key.is_empty() {
            node = tree.get(node, key)?;
        }
        for index in indexes.split('[').skip(1) {
            let i: usize = index.strip_suffix(']')?.parse().ok()?;
            node = *tree.items(node).get(i)?;
        }
    }
    tree.scalar(node).map(|_| tree.resolve(node))
}

fn kustomization(
    tree: &Tree,
    root: NodeId,
    ctx: &FileContext<'_>,
    found: &mut Vec<Found>,
    claimed: &mut HashSet<NodeId>,
) {
    let Some(images) = tree.get(root, "images") else {
        return;
    };
    for entry in tree.items(images) {
        let name = tree
            .get_str(*entry, "newName")
            .or_else(|| tree.get_str(*entry, "name"));
        let Some(image) = name.and_then(|n| ImageName::parse(n).ok()) else {
            continue;
        };
        let Some(w) = watched_by_name(ctx, &image) else {
            continue;
        };
        for (key, part) in [("newTag", Part::TagOrTagDigest), ("digest", Part::Digest)] {
            if let Some(node) = tree.get(*entry, key) {
                claim(
                    found,
                    claimed,
                    tree,
                    node,
                    Found {
                        policy: w.policy.clone(),
                        kind: RefKind::Kustomization,
                        part,
                        node,
                        name_as_written: None,
                    },
                );
            }
        }
    }
}

const WORKLOAD_KINDS: [&str; 7] = [
    "Deployment",
    "StatefulSet",
    "DaemonSet",
    "ReplicaSet",
    "Job",
    "CronJob",
    "Pod",
];
const CONTAINER_LISTS: [&str; 3] = ["containers", "initContainers", "ephemeralContainers"];

fn workloads(
    tree: &Tree,
    root: NodeId,
    ctx: &FileContext<'_>,
    found: &mut Vec<Found>,
    claimed: &mut HashSet<NodeId>,
) {
    if !tree
        .get_str(root, "kind")
        .is_some_and(|k| WORKLOAD_KINDS.contains(&k))
    {
        return;
    }
    // Pod specs sit at different depths per kind (CronJob is deepest), so
    // search the whole document for container lists.
    let mut stack = vec![root];
    let mut seen = HashSet::new();
    while let Some(node) = stack.pop() {
        let node = tree.resolve(node);
        if !seen.insert(node) {
            continue;
        }
        if tree.is_mapping(node) {
            for &(key, value) in tree.entries(node) {
                let is_list = tree
                    .scalar(key)
                    .is_some_and(|k| CONTAINER_LISTS.contains(&k.value.as_str()));
                if is_list {
                    for container in tree.items(value) {
                        if let Some(image_node) = tree.get(*container, "image") {
                            image_string(tree, image_node, ctx, RefKind::Workload, found, claimed);
                        }
                    }
                } else {
                    stack.push(value);
                }
            }
        } else {
            stack.extend(tree.items(node).iter().copied());
        }
    }
}

/// An `image: repo:tag[@digest]` scalar.
fn image_string(
    tree: &Tree,
    node: NodeId,
    ctx: &FileContext<'_>,
    kind: RefKind,
    found: &mut Vec<Found>,
    claimed: &mut HashSet<NodeId>,
) {
    let Some(value) = tree.scalar(node).map(|s| s.value.clone()) else {
        return;
    };
    let Ok(reference) = Reference::parse(&value) else {
        return;
    };
    let Some(w) = watched_by_name(ctx, &reference.name) else {
        return;
    };
    claim(
        found,
        claimed,
        tree,
        node,
        Found {
            policy: w.policy.clone(),
            kind,
            part: Part::Full,
            node,
            name_as_written: written_name(&value, &w.image),
        },
    );
}

fn helm_values(
    tree: &Tree,
    root: NodeId,
    ctx: &FileContext<'_>,
    found: &mut Vec<Found>,
    claimed: &mut HashSet<NodeId>,
    visited: &mut HashSet<NodeId>,
) {
    /// Work left, in walk order: an explicit stack instead of recursion, so
    /// no file (however its aliases nest) can exhaust the thread's stack.
    enum Task {
        Walk(NodeId),
        ImageString(NodeId),
    }
    let mut tasks = vec![Task::Walk(root)];
    while let Some(task) = tasks.pop() {
        let node = match task {
            Task::ImageString(value) => {
                image_string(tree, value, ctx, RefKind::HelmValues, found, claimed);
                continue;
            }
            Task::Walk(node) => node,
        };
        // Aliases make the tree a graph: without visiting each node once, a
        // chain of aliases to aliases is explored exponentially often.
        let node = tree.resolve(node);
        if !visited.insert(node) {
            continue;
        }
        if !tree.is_mapping(node) {
            tasks.extend(tree.items(node).iter().rev().map(|item| Task::Walk(*item)));
            continue;
        }
        let repository = tree.get_str(node, "repository");
        if let (Some(repository), Some(tag)) = (repository, tree.get(node, "tag")) {
            let name = match tree.get_str(node, "registry").filter(|r| !r.is_empty()) {
                Some(registry) => format!("{registry}/{repository}"),
                None => repository.to_string(),
            };
            // A `:name` marker on `repository` rewrites it to a watched image,
            // so the map is that image's already; treating it so keeps a
            // second run from finding a newly matching `tag`.
            let repository_node = tree.get(node, "repository").map(|r| tree.resolve(r));
            let renamed = found
                .iter()
                .find(|f| f.part == Part::Name && Some(f.node) == repository_node)
                .and_then(|f| ctx.watched.iter().find(|w| w.policy == f.policy));
            let by_name = ImageName::parse(&name)
                .ok()
                .and_then(|n| watched_by_name(ctx, &n));
            if let Some(w) = renamed.or(by_name) {
                let policy = w.policy.clone();
                claim(
                    found,
                    claimed,
                    tree,
                    tag,
                    Found {
                        policy: policy.clone(),
                        kind: RefKind::HelmValues,
                        part: Part::Tag,
                        node: tag,
                        name_as_written: None,
                    },
                );
                if let Some(digest) = tree.get(node, "digest") {
                    claim(
                        found,
                        claimed,
                        tree,
                        digest,
                        Found {
                            policy,
                            kind: RefKind::HelmValues,
                            part: Part::Digest,
                            node: digest,
                            name_as_written: None,
                        },
                    );
                }
            }
        }
        let children: Vec<Task> = tree
            .entries(node)
            .iter()
            .map(|&(key, value)| {
                if tree.scalar(key).is_some_and(|k| k.value == "image")
                    && tree.scalar(value).is_some()
                {
                    Task::ImageString(value)
                } else {
                    Task::Walk(value)
                }
            })
            .collect();
        tasks.extend(children.into_iter().rev());
    }
}
