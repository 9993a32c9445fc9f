//! Cross-checks that no single field can express: unique names, references
//! between sections, compiled regexes and ranges, safe paths, and policies
//! that would fight over the same image in one update.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;

use super::diagnostic::{nearest, Diagnostic};
use super::load::ParsedFile;
use super::model::SecretSource;
use super::paths::unsafe_path;
use super::positions::join;
pub(super) use super::reporter::Reporter;
use super::{Config, Located, Source};
use crate::policy::Policy;
use crate::reference::ImageName;

mod server;
use server::check_server;

pub fn merge_and_check(
    files: Vec<PathBuf>,
    parsed: Vec<ParsedFile>,
    diagnostics: &mut Vec<Diagnostic>,
) -> Config {
    let mut config = Config {
        sources: Vec::new(),
        repository: None,
        registries: Vec::new(),
        images: Vec::new(),
        updates: Vec::new(),
        server: None,
        policies: HashMap::new(),
        image_names: HashMap::new(),
        gates: Default::default(),
    };
    let mut indexes = Vec::new();
    let mut broken_names = Vec::new();
    for (source, (file, p)) in files.iter().zip(parsed).enumerate() {
        config.sources.push(Source {
            path: file.clone(),
            repository: p.repository.is_some(),
            registries: p.registries.len(),
            images: p.images.len(),
            updates: p.updates.len(),
        });
        if let Some((item, path)) = p.repository {
            let repo = Located { item, source, path };
            match &config.repository {
                None => config.repository = Some(repo),
                Some(first) => diagnostics.push(Diagnostic {
                    file: file.clone(),
                    position: p.index.nearest("repository"),
                    path: "repository".into(),
                    message: format!(
                        "`repository` is also set in {}; set it in one file only",
                        files[first.source].display()
                    ),
                    hint: None,
                }),
            }
        }
        if let Some((item, path)) = p.server {
            if let Some(first) = &config.server {
                diagnostics.push(Diagnostic {
                    file: file.clone(),
                    position: p.index.nearest("server"),
                    path: "server".into(),
                    message: format!(
                        "`server` is also set in {}; set it in one file only",
                        files[first.source].display()
                    ),
                    hint: None,
                });
            } else {
                config.server = Some(Located { item, source, path });
            }
        }
        config.registries.extend(located(p.registries, source));
        config.images.extend(located(p.images, source));
        config.updates.extend(located(p.updates, source));
        broken_names.extend(p.broken_names);
        indexes.push(p.index);
    }

    let mut report = Reporter {
        files: &files,
        indexes: &indexes,
        diagnostics,
    };
    check_repository(&config, &mut report);
    check_registries(&config, &mut report);
    check_server(&config, &mut report);
    check_images(&mut config, &mut report);
    check_updates(&config, &broken_names, &mut report);
    super::gates::check(&mut config, &mut report);
    config
}

fn located<T>(items: Vec<(T, String)>, source: usize) -> impl Iterator<Item = Located<T>> {
    items
        .into_iter()
        .map(move |(item, path)| Located { item, source, path })
}

/// Names are used in marker comments (`app:tag`) and branch names
/// (`tidewatch/<update>`), so they stay within a safe alphabet.
fn check_name(kind: &str, item: (usize, &str), name: &str, report: &mut Reporter<'_>) {
    let (source, path) = item;
    let ok = name
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphanumeric())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if !ok {
        report.at_value(
            source,
            &join(path, "name"),
            format!("{kind} name `{name}` is not valid"),
            Some("use letters, digits, `-`, `_` and `.`, starting with a letter or digit".into()),
        );
    }
}

fn duplicates<'a, T>(
    kind: &str,
    items: &'a [Located<T>],
    key: impl Fn(&'a T) -> &'a str,
    field: &str,
    report: &mut Reporter<'_>,
) {
    let mut first: HashMap<&str, &Located<T>> = HashMap::new();
    for item in items {
        let name = key(&item.item);
        match first.get(name) {
            None => {
                first.insert(name, item);
            }
            Some(original) => {
                let elsewhere = report.where_is(original.source, &original.path);
                report.at_value(
                    item.source,
                    &join(&item.path, field),
                    format!("{kind} `{name}` is defined twice; the first is at {elsewhere}"),
                    Some(format!("give each {kind} a unique {field}")),
                );
            }
        }
    }
}

pub(super) fn check_secret(
    source: usize,
    path: &str,
    secret: &SecretSource,
    report: &mut Reporter<'_>,
) {
    let set = [secret.env.is_some(), secret.file.is_some()];
    if set.iter().filter(|s| **s).count() != 1 {
        report.at_value(
            source,
            path,
            "set exactly one of `env` or `file`".into(),
            Some("e.g. `{ env: GITHUB_TOKEN }`".into()),
        );
    }
}

fn check_repository(config: &Config, report: &mut Reporter<'_>) {
    if config.repository.is_none() {
        if let Some(update) = config.updates.first() {
            report.at(
                update.source,
                &update.path,
                "updates need a `repository` to write to, and no policy file sets one".into(),
                Some("add `repository: { url: …, branch: main }` to one policy file".into()),
            );
        }
    }
    let Some(repo) = &config.repository else {
        return;
    };
    if repo.url.trim().is_empty() {
        report.at_value(
            repo.source,
            "repository.url",
            "the repository url is empty".into(),
            None,
        );
    }
    if let Some(author) = &repo.author {
        if !author.email.contains('@') {
            report.at_value(
                repo.source,
                "repository.author.email",
                format!("`{}` is not an email address", author.email),
                None,
            );
        }
    }
    check_range(
        report,
        repo.source,
        "repository.timeoutSeconds",
        "timeoutSeconds",
        repo.timeout_seconds,
        TIMEOUT_SECONDS,
    );
    check_range(
        report,
        repo.source,
        "repository.depth",
        "depth",
        repo.depth.map(f64::from),
        DEPTH,
    );
    if let Some(github) = &repo.github {
        check_range(
            report,
            repo.source,
            "repository.github.timeoutSeconds",
            "timeoutSeconds",
            github.timeout_seconds,
            TIMEOUT_SECONDS,
        );
    }
    if let Some(auth) = &repo.auth {
        match (&auth.token, &auth.ssh_key) {
            (Some(token), None) => {
                check_secret(repo.source, "repository.auth.token", token, report)
            }
            (None, Some(key)) => {
                if let Some(passphrase) = &key.passphrase {
                    check_secret(
                        repo.source,
                        "repository.auth.sshKey.passphrase",
                        passphrase,
                        report,
                    );
                }
            }
            _ => report.at_value(
                repo.source,
                "repository.auth",
                "set exactly one of `token` or `sshKey`".into(),
                None,
            ),
        }
    }
}

/// The accepted range of each number in a policy file (inclusive). A value
/// outside it is refused by `check` and at startup, never met at run time.
type Range = (f64, f64);
const REQUESTS_PER_SECOND: Range = (0.001, 10_000.0);
const CONCURRENCY: Range = (1.0, 256.0);
const PAGE_SIZE: Range = (1.0, 10_000.0);
const PAGE_BUDGET: Range = (1.0, 100_000.0);
const TIMEOUT_SECONDS: Range = (0.1, 3_600.0);
const MAX_ATTEMPTS: Range = (1.0, 20.0);
const DEPTH: Range = (1.0, 1_000_000.0);
fn check_range(
    report: &mut Reporter<'_>,
    source: usize,
    path: &str,
    field: &str,
    value: Option<f64>,
    (min, max): Range,
) {
    let Some(v) = value else { return };
    if !(v.is_finite() && v >= min && v <= max) {
        let shown = if v != 0.0 && (v.abs() >= 1e9 || v.abs() < 1e-4) {
            format!("{v:e}")
        } else {
            v.to_string()
        };
        report.at_value(
            source,
            path,
            format!("{field} must be between {min} and {max}, not {shown}"),
            None,
        );
    }
}

fn check_registries(config: &Config, report: &mut Reporter<'_>) {
    duplicates(
        "registry",
        &config.registries,
        |r| r.host.as_str(),
        "host",
        report,
    );
    for registry in &config.registries {
        let (source, path) = (registry.source, registry.path.as_str());
        let host = &registry.host;
        if host.is_empty() || host.contains("://") || host.contains('/') {
            report.at_value(
                source,
                &join(path, "host"),
                format!("`{host}` is not a registry host"),
                Some(
                    "write the host and optional port only, e.g. `ghcr.io` or `localhost:5000`"
                        .into(),
                ),
            );
        }
        let numbers = [
            (
                "requestsPerSecond",
                registry.requests_per_second,
                REQUESTS_PER_SECOND,
            ),
            (
                "concurrency",
                registry.concurrency.map(|v| v as f64),
                CONCURRENCY,
            ),
            ("pageSize", registry.page_size.map(|v| v as f64), PAGE_SIZE),
            (
                "pageBudget",
                registry.page_budget.map(|v| v as f64),
                PAGE_BUDGET,
            ),
            ("timeoutSeconds", registry.timeout_seconds, TIMEOUT_SECONDS),
            (
                "maxAttempts",
                registry.max_attempts.map(f64::from),
                MAX_ATTEMPTS,
            ),
        ];
        for (field, value, range) in numbers {
            check_range(report, source, &join(path, field), field, value, range);
        }
        if let Some(c) = &registry.credentials {
            let set = [
                c.env.is_some(),
                c.docker_config.is_some(),
                c.helper.is_some(),
                c.file.is_some(),
            ];
            if set.iter().filter(|s| **s).count() != 1 {
                report.at_value(
                    source,
                    &join(path, "credentials"),
                    "set exactly one of `env`, `dockerConfig`, `helper` or `file`".into(),
                    None,
                );
            }
        }
    }
}

fn check_images(config: &mut Config, report: &mut Reporter<'_>) {
    duplicates(
        "image policy",
        &config.images,
        |i| i.name.as_str(),
        "name",
        report,
    );
    for image in &config.images {
        let (source, path) = (image.source, image.path.as_str());
        check_name("image policy", (source, path), &image.name, report);
        match ImageName::parse(&image.image) {
            Ok(name) => {
                config.image_names.insert(image.name.clone(), name);
            }
            Err(e) => report.at_value(source, &join(path, "image"), e.to_string(), None),
        }
        for (i, platform) in image.platforms.iter().enumerate() {
            let parts: Vec<&str> = platform.split('/').collect();
            if !(2..=3).contains(&parts.len()) || parts.iter().any(|p| p.is_empty()) {
                report.at_value(
                    source,
                    &format!("{path}.platforms[{i}]"),
                    format!("`{platform}` is not a platform"),
                    Some(
                        "write os/arch or os/arch/variant, e.g. linux/amd64 or linux/arm64/v8"
                            .into(),
                    ),
                );
            }
        }
        match (&image.schedule, &image.interval) {
            (Some(_), Some(_)) => report.at(
                source,
                &join(path, "interval"),
                "set `schedule` or `interval`, not both".into(),
                None,
            ),
            (Some(cron), None) => {
                if let Err(e) = crate::schedule::Schedule::parse_cron(cron) {
                    report.at_value(source, &join(path, "schedule"), e, None);
                }
            }
            (None, Some(every)) => {
                if let Err(e) = crate::schedule::Schedule::parse_interval(every) {
                    report.at_value(source, &join(path, "interval"), e, None);
                }
            }
            (None, None) => {}
        }
        match Policy::compile(&image.spec()) {
            Ok(policy) => {
                config.policies.insert(image.name.clone(), policy);
            }
            Err(errors) => {
                for e in errors {
                    report.at_value(source, &join(path, &e.field), e.message, None);
                }
            }
        }
    }
}

fn check_updates(config: &Config, broken_names: &[String], report: &mut Reporter<'_>) {
    duplicates(
        "update",
        &config.updates,
        |u| u.name.as_str(),
        "name",
        report,
    );
    let policy_names: Vec<&str> = config.images.iter().map(|i| i.name.as_str()).collect();
    for update in &config.updates {
        let (source, path) = (update.source, update.path.as_str());
        check_name("update", (source, path), &update.name, report);
        if update.branch.is_some() && update.pull_request.is_some() {
            report.at(
                source,
                &join(path, "pullRequest"),
                "an update either commits to `branch` or opens a `pullRequest`, not both".into(),
                Some("for a PR, name its target with `pullRequest.base`".into()),
            );
        }
        if update.paths.is_empty() {
            report.at(
                source,
                &join(path, "paths"),
                "`paths` is empty; list the directories to scan, e.g. [envs/dev]".into(),
                None,
            );
        }
        for (i, p) in update.paths.iter().enumerate() {
            if let Some(problem) = unsafe_path(p) {
                report.at_value(
                    source,
                    &format!("{path}.paths[{i}]"),
                    format!("path `{p}` {problem}"),
                    Some("paths are relative to the repository root and stay inside it".into()),
                );
            }
        }
        for (i, target) in update.targets.iter().enumerate() {
            let at = format!("{path}.targets[{i}]");
            if let Some(problem) = unsafe_path(&target.file) {
                report.at_value(
                    source,
                    &join(&at, "file"),
                    format!("target file `{}` {problem}", target.file),
                    None,
                );
            }
            match (&target.path, &target.policy) {
                (Some(_), None) => report.at(
                    source,
                    &at,
                    "a target with a `path` needs the `policy` whose pick it writes".into(),
                    None,
                ),
                (_, Some(policy))
                    if !policy_names.contains(&policy.as_str())
                        && !broken_names.contains(policy) =>
                {
                    report.at_value(
                        source,
                        &join(&at, "policy"),
                        format!("no image policy is named `{policy}`"),
                        nearest(policy, policy_names.iter().copied())
                            .map(|s| format!("did you mean `{s}`?")),
                    )
                }
                _ => {}
            }
        }
        if let Some(names) = &update.images {
            for (i, name) in names.iter().enumerate() {
                if !policy_names.contains(&name.as_str()) && !broken_names.contains(name) {
                    report.at_value(
                        source,
                        &format!("{path}.images[{i}]"),
                        format!("no image policy is named `{name}`"),
                        nearest(name, policy_names.iter().copied())
                            .map(|s| format!("did you mean `{s}`?")),
                    );
                }
            }
        }
        // Two policies on one repository in one update: which tag would win
        // is undefined, so require the update to choose.
        let in_scope = config.images.iter().filter(|image| {
            update
                .images
                .as_ref()
                .is_none_or(|names| names.contains(&image.name))
        });
        let mut by_repository: BTreeMap<String, Vec<&str>> = BTreeMap::new();
        for image in in_scope {
            if let Ok(name) = ImageName::parse(&image.image) {
                by_repository
                    .entry(name.normalized())
                    .or_default()
                    .push(&image.name);
            }
        }
        for (repository, names) in by_repository {
            if names.len() > 1 {
                let field = if update.images.is_some() {
                    "images"
                } else {
                    "name"
                };
                report.at(
                    source,
                    &join(path, field),
                    format!(
                        "image policies {} all watch {repository} in update `{}`, so which tag to write is ambiguous",
                        names.iter().map(|n| format!("`{n}`")).collect::<Vec<_>>().join(", "),
                        update.name
                    ),
                    Some("list only one of them in this update's `images:`".into()),
                );
            }
        }
    }
}

#[cfg(test)]
mod tests;
