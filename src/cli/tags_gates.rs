//! `tidewatch tags` with gates: `--minimum-age` and `--cosign-key` judge
//! the policy's candidates best first, as a cycle does, and say for each
//! why it is or is not proposed. Candidates below the first one that
//! passes are not looked at (they would cost registry requests).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use tidewatch::gate::{age, show_time, AgeVerdict, Key, Keys, SignatureCache};
use tidewatch::policy::TagMetadata;
use tidewatch::reference::ImageName;
use tidewatch::registry::Client;

/// The gates asked for on the command line.
pub struct Gates {
    pub minimum_age: Option<(Duration, String)>,
    pub keys: Option<Keys>,
}

impl Gates {
    pub fn any(&self) -> bool {
        self.minimum_age.is_some() || self.keys.is_some()
    }

    /// From `--minimum-age` and `--cosign-key`; errors name the flag.
    pub fn from_flags(minimum_age: Option<&str>, keys: &[String]) -> Result<Gates, String> {
        let minimum_age = match minimum_age {
            None => None,
            Some(text) => Some((
                tidewatch::duration::parse(text).map_err(|e| format!("--minimum-age: {e}"))?,
                text.trim().to_string(),
            )),
        };
        let mut parsed = Vec::new();
        for file in keys {
            let pem = std::fs::read_to_string(file)
                .map_err(|e| format!("--cosign-key: cannot read {file}: {e}"))?;
            parsed.push(Key::from_pem(&pem, file).map_err(|e| format!("--cosign-key: {e}"))?);
        }
        Ok(Gates {
            minimum_age,
            keys: (!parsed.is_empty()).then(|| Keys::new(parsed)),
        })
    }
}

/// Where the facts come from: the registry, or the tag list's metadata.
pub enum Facts<'a> {
    Online {
        runtime: &'a tokio::runtime::Runtime,
        client: &'a Arc<Client>,
        image: &'a ImageName,
        platforms: &'a [String],
    },
    Offline,
}

/// One candidate's verdict: the words, and whether it passed.
pub type Verdict = (String, bool);

/// Judges `ranked` (best first) until one passes; returns the verdicts by
/// tag and the tag that passed, if any.
pub fn judge(
    gates: &Gates,
    ranked: &[&str],
    metadata: &HashMap<String, TagMetadata>,
    facts: &Facts<'_>,
) -> Result<(HashMap<String, Verdict>, Option<String>), String> {
    let now = jiff::Timestamp::now();
    let cache = SignatureCache::default();
    let mut verdicts = HashMap::new();
    for tag in ranked {
        let meta = metadata.get(*tag);
        let digest = match (meta.and_then(|m| m.digest.clone()), facts) {
            (Some(d), _) => Some(d),
            (
                None,
                Facts::Online {
                    runtime,
                    client,
                    image,
                    ..
                },
            ) => Some(
                runtime
                    .block_on(client.digest(image, tag))
                    .map_err(|e| format!("the digest of {tag}: {e}"))?,
            ),
            (None, Facts::Offline) => None,
        };
        let mut seen = Vec::new();
        let mut failed = None;
        if let Some((minimum, written)) = &gates.minimum_age {
            let created = match (meta.and_then(|m| m.created), facts, &digest) {
                (Some(c), _, _) => Some(c),
                (
                    None,
                    Facts::Online {
                        runtime,
                        client,
                        image,
                        platforms,
                    },
                    Some(d),
                ) => runtime
                    .block_on(client.created(image, d, platforms))
                    .map_err(|e| format!("the created time of {tag}: {e}"))?,
                _ => None,
            };
            match age(created, *minimum, now) {
                AgeVerdict::Old { created } => seen.push(format!("created {}", show_time(created))),
                AgeVerdict::WaitsUntil { until, created } => {
                    failed = Some(format!(
                        "waits until {} (created {}, minimumAge {written})",
                        show_time(until),
                        show_time(created)
                    ))
                }
                AgeVerdict::NoCreatedTime => {
                    failed = Some(format!(
                        "skipped: its image config has no created time, and minimumAge {written} is set"
                    ))
                }
            }
        }
        if let (None, Some(keys)) = (&failed, &gates.keys) {
            let (
                Facts::Online {
                    runtime,
                    client,
                    image,
                    ..
                },
                Some(d),
            ) = (facts, &digest)
            else {
                return Err("--cosign-key needs the registry; drop --tags-from".into());
            };
            let verdict = runtime
                .block_on(cache.verdict(client, image, d, keys))
                .map_err(|e| format!("the signature of {tag}: {e}"))?;
            if verdict.is_verified() {
                seen.push(verdict.to_string());
            } else {
                failed = Some(format!("skipped: {verdict}"));
            }
        }
        match failed {
            Some(words) => {
                verdicts.insert(tag.to_string(), (words, false));
            }
            None => {
                verdicts.insert(
                    tag.to_string(),
                    (format!("passes: {}", seen.join("; ")), true),
                );
                return Ok((verdicts, Some(tag.to_string())));
            }
        }
    }
    Ok((verdicts, None))
}
