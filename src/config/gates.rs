//! Checks of the gate settings: `minimumAge`, `verify.cosign` keys (read
//! and parsed here, so a bad key is a `check` error with its position, not
//! a surprise at run time), and `promoteFrom` / `soak` / `requireStatus`
//! (unknown names and cycles refused).

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use super::diagnostic::nearest;
use super::model::{SecretSource, Update};
use super::positions::join;
use super::validate::{check_secret, Reporter};
use super::{Config, Located};
use crate::gate::{Key, Keys};

/// `minimumAge`: a second to a year.
const MINIMUM_AGE: (Duration, Duration) =
    (Duration::from_secs(1), Duration::from_secs(366 * 86_400));
/// `soak`: zero (promote at once) to a year.
const SOAK: (Duration, Duration) = (Duration::ZERO, Duration::from_secs(366 * 86_400));

pub(super) fn check(config: &mut Config, report: &mut Reporter<'_>) {
    let mut minimum_age = std::collections::HashMap::new();
    let mut keys = std::collections::HashMap::new();
    for image in &config.images {
        let (source, path) = (image.source, image.path.as_str());
        if let Some(text) = &image.minimum_age {
            let (min, max) = MINIMUM_AGE;
            match crate::duration::parse_within(text, min, max, "minimumAge") {
                Ok(age) => {
                    minimum_age.insert(image.name.clone(), age);
                }
                Err(e) => report.at_value(source, &join(path, "minimumAge"), e, None),
            }
        }
        let Some(verify) = &image.verify else {
            continue;
        };
        let at = join(path, "verify.cosign");
        let mut sources: Vec<(String, &SecretSource)> = Vec::new();
        if let Some(key) = &verify.cosign.public_key {
            sources.push((join(&at, "publicKey"), key));
        }
        for (i, key) in verify.cosign.public_keys.iter().enumerate() {
            sources.push((format!("{at}.publicKeys[{i}]"), key));
        }
        if sources.is_empty() {
            report.at(
                source,
                &at,
                "`verify.cosign` lists no key; set `publicKey` (or `publicKeys`)".into(),
                Some("e.g. `publicKey: { file: cosign.pub }`".into()),
            );
            continue;
        }
        let directory = report.files[source]
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_default();
        let mut parsed = Vec::new();
        for (key_path, key) in sources {
            let before = report.count();
            check_secret(source, &key_path, key, report);
            if report.count() != before {
                continue;
            }
            match read_key(key, &directory) {
                Ok(key) => parsed.push(key),
                Err(e) => report.at_value(source, &key_path, e, None),
            }
        }
        if !parsed.is_empty() {
            keys.insert(image.name.clone(), Arc::new(Keys::new(parsed)));
        }
    }
    config.gates.minimum_age = minimum_age;
    config.gates.keys = keys;
    check_promotions(config, report);
}

/// Reads and parses one key. A relative file is read from the directory
/// of the policy file that names it (keys live beside the policies).
fn read_key(source: &SecretSource, directory: &Path) -> Result<Key, String> {
    if let Some(var) = &source.env {
        let pem = std::env::var(var).map_err(|_| {
            format!("the environment variable {var} holding the public key is not set")
        })?;
        return Key::from_pem(&pem, &format!("${var}"));
    }
    let file = source.file.clone().unwrap_or_default();
    let path = resolve(&file, directory);
    let pem = std::fs::read_to_string(&path)
        .map_err(|e| format!("cannot read the public key {}: {e}", path.display()))?;
    Key::from_pem(&pem, &file)
}

fn resolve(file: &str, directory: &Path) -> PathBuf {
    if let Some(rest) = file.strip_prefix("~/") {
        if let Some(home) = std::env::var_os("HOME") {
            return PathBuf::from(home).join(rest);
        }
    }
    let path = PathBuf::from(file);
    if path.is_absolute() {
        path
    } else {
        directory.join(path)
    }
}

fn check_promotions(config: &mut Config, report: &mut Reporter<'_>) {
    let names: Vec<&str> = config.updates.iter().map(|u| u.name.as_str()).collect();
    let mut soaks = std::collections::HashMap::new();
    for update in &config.updates {
        let (source, path) = (update.source, update.path.as_str());
        if let Some(text) = &update.soak {
            let (min, max) = SOAK;
            match crate::duration::parse_within(text, min, max, "soak") {
                Ok(soak) => {
                    soaks.insert(update.name.clone(), soak);
                }
                Err(e) => report.at_value(source, &join(path, "soak"), e, None),
            }
        }
        let Some(from) = &update.promote_from else {
            for field in ["soak", "requireStatus"] {
                let set = match field {
                    "soak" => update.soak.is_some(),
                    _ => update.require_status.is_some(),
                };
                if set {
                    report.at(
                        source,
                        &join(path, field),
                        format!(
                            "`{field}` applies to promotions; this update has no `promoteFrom`"
                        ),
                        Some("add `promoteFrom: <update>` or remove it".into()),
                    );
                }
            }
            continue;
        };
        let at = join(path, "promoteFrom");
        if from == &update.name {
            report.at_value(
                source,
                &at,
                format!("update `{from}` cannot promote from itself"),
                None,
            );
            continue;
        }
        let Some(origin) = config.updates.iter().find(|u| &u.name == from) else {
            report.at_value(
                source,
                &at,
                format!("no update is named `{from}`"),
                nearest(from, names.iter().copied()).map(|s| format!("did you mean `{s}`?")),
            );
            continue;
        };
        if let Some(cycle) = cycle_from(config, update) {
            report.at_value(
                source,
                &at,
                format!("promoteFrom forms a cycle: {}", cycle.join(" → ")),
                Some("a promotion chain must start at an update that promotes from none".into()),
            );
            continue;
        }
        let ours = config.policies_of(update);
        if !config.policies_of(origin).iter().any(|p| ours.contains(p)) {
            report.at_value(
                source,
                &at,
                format!(
                    "updates `{}` and `{from}` share no image policy, so there is nothing to promote",
                    update.name
                ),
                None,
            );
        }
    }
    config.gates.soak = soaks;
}

/// The names around a `promoteFrom` cycle through `start`, if there is one.
fn cycle_from(config: &Config, start: &Located<Update>) -> Option<Vec<String>> {
    let mut chain = vec![start.name.clone()];
    let mut seen = HashSet::new();
    let mut current: &Update = start;
    while let Some(next) = &current.promote_from {
        chain.push(next.clone());
        if next == &start.name {
            return Some(chain);
        }
        if !seen.insert(next.clone()) {
            // A cycle further up the chain, reported at its own members.
            return None;
        }
        current = config.updates.iter().find(|u| &u.name == next)?;
    }
    None
}

impl Config {
    /// The update `update` promotes from, if any (validated to exist).
    pub fn promotion_source(&self, update: &Update) -> Option<&Located<Update>> {
        let from = update.promote_from.as_ref()?;
        self.updates.iter().find(|u| &u.name == from)
    }
}
