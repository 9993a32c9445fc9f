//! `tidewatch tags`: candidates and the pick for one image under a policy
//! given by flags.
//!
//! Online it queries the registry with the `registries:` settings of `-c`
//! and reports how many requests that took. Offline (`--tags-from FILE|-`)
//! it ranks a given tag list, one tag per line.
//! A line may add registry metadata as `digest=sha256:…` and
//! `created=<RFC 3339>` after the tag, so digest and newest-build policies
//! can be tried offline too.

use std::collections::HashMap;
use std::io::Read;
use std::path::PathBuf;
use std::process::ExitCode;

use std::sync::Arc;

use clap::{Args, ValueEnum};
use tidewatch::config::{Config, RegistrySettings};
use tidewatch::engine::host_settings;
use tidewatch::engine::scan::{scan, ScanTarget};
use tidewatch::policy::{Outcome, Policy, PolicySpec, TagMetadata};
use tidewatch::reference::Reference;
use tidewatch::registry::{Client, HostSettings};

/// Exit code for bad input, as DESIGN.md fixes it.
const BAD_INPUT: u8 = 2;
/// Exit code when no tag qualifies.
const NOTHING: u8 = 1;

#[derive(Args, Debug)]
pub struct TagsArgs {
    /// The image repository, e.g. `ghcr.io/acme/app` or `nginx`.
    pub image: String,
    /// Policy file or directory; only its `registries:` section is used.
    #[arg(short = 'c', long = "config")]
    pub config: Option<PathBuf>,
    /// Evaluate this tag list (one per line; `-` for stdin) instead of the registry.
    #[arg(long = "tags-from", value_name = "FILE|-")]
    pub tags_from: Option<String>,
    /// Semver range, Masterminds v3 syntax (as Flux and Argo CD Image Updater).
    #[arg(long, value_name = "RANGE")]
    pub semver: Option<String>,
    /// Regex a tag must match (unanchored, as in Flux).
    #[arg(long, value_name = "RE")]
    pub pattern: Option<String>,
    /// Template over the pattern's groups to order by: `$1`, `$name`, `${name}`.
    #[arg(long, value_name = "TPL")]
    pub extract: Option<String>,
    /// semver|numerical|alphabetical|newest-build, optionally `:asc` or `:desc`.
    #[arg(long, value_name = "KIND[:DIR]")]
    pub order: Option<String>,
    /// Regex of tags to drop first (repeatable); adds to the default excludes.
    #[arg(long, value_name = "RE")]
    pub exclude: Vec<String>,
    /// Do not drop cosign signature/attestation tags and `*.sig` by default.
    #[arg(long)]
    pub no_default_excludes: bool,
    /// Follow the digest of this mutable tag.
    #[arg(long, value_name = "TAG")]
    pub digest: Option<String>,
    /// `keep`: only tags with the same suffix as `--current` qualify.
    #[arg(long, value_enum)]
    pub variant: Option<VariantFlag>,
    /// The value in Git now: turns on no-downgrade and variant matching.
    #[arg(long, value_name = "TAG")]
    pub current: Option<String>,
    /// Allow a pick that orders below `--current`.
    #[arg(long)]
    pub allow_downgrade: bool,
    /// Talk plain HTTP to the registry without a policy file.
    #[arg(long)]
    pub insecure: bool,
    /// For newest-build on multi-platform images: os/arch[/variant] (repeatable).
    #[arg(long, value_name = "OS/ARCH")]
    pub platform: Vec<String>,
    /// Gate: skip candidates whose image was created less than this long ago (`3d`).
    #[arg(long, value_name = "DURATION")]
    pub minimum_age: Option<String>,
    /// Gate: only candidates signed by this cosign public key (repeatable; any one suffices).
    #[arg(long, value_name = "FILE")]
    pub cosign_key: Vec<String>,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum VariantFlag {
    Keep,
}

/// The flag each policy field comes from, so errors name what the user typed.
fn flag_for(field: &str) -> &'static str {
    match field.split(['.', '[']).next().unwrap_or(field) {
        "semver" => "--semver",
        "filter" if field.ends_with("extract") => "--extract",
        "filter" => "--pattern",
        "exclude" => "--exclude",
        "digest" => "--digest",
        "variant" => "--variant",
        "order" => "--order",
        _ => "a policy flag",
    }
}

fn bad_input(message: impl std::fmt::Display) -> ExitCode {
    eprintln!("error: {message}");
    ExitCode::from(BAD_INPUT)
}

pub fn run(args: &TagsArgs) -> ExitCode {
    if let Err(e) = Reference::parse(&args.image) {
        return bad_input(e);
    }
    let order = match args.order.as_deref().map(str::parse).transpose() {
        Ok(order) => order,
        Err(e) => return bad_input(format!("--order: {e}")),
    };
    let spec = PolicySpec {
        semver: args.semver.clone(),
        pattern: args.pattern.clone(),
        extract: args.extract.clone(),
        order,
        digest: args.digest.clone(),
        exclude: args.exclude.clone(),
        exclude_defaults: !args.no_default_excludes,
        variant_keep: args.variant.is_some(),
        allow_downgrade: args.allow_downgrade,
    };
    let policy = match Policy::compile(&spec) {
        Ok(p) => p,
        Err(errors) => {
            for e in &errors {
                eprintln!("error: {}: {}", flag_for(&e.field), e.message);
            }
            return ExitCode::from(BAD_INPUT);
        }
    };
    if spec.variant_keep && args.current.is_none() {
        eprintln!("note: --variant keep has no effect without --current");
    }
    let gates =
        match super::tags_gates::Gates::from_flags(args.minimum_age.as_deref(), &args.cosign_key) {
            Ok(gates) => gates,
            Err(e) => return bad_input(e),
        };
    if gates.keys.is_some() && args.tags_from.is_some() {
        return bad_input("--cosign-key needs the registry; drop --tags-from");
    }
    let online = match &args.tags_from {
        Some(_) => None,
        None => match connect(args) {
            Ok(online) => Some(online),
            Err(message) => return bad_input(message),
        },
    };
    let (tags, metadata, requests) = match &args.tags_from {
        Some(source) => {
            let text = match read_source(source) {
                Ok(t) => t,
                Err(e) => return bad_input(format!("{e:#}")),
            };
            match parse_tag_list(&text) {
                Ok((tags, metadata)) => (tags, metadata, false),
                Err(e) => return bad_input(e),
            }
        }
        None => match online.as_ref().map(|o| query_registry(args, &policy, o)) {
            Some(Ok((tags, metadata))) => (tags, metadata, true),
            Some(Err(message)) => return bad_input(message),
            None => return bad_input("no registry client"),
        },
    };

    let selection = policy.explain(&tags, &metadata, args.current.as_deref());
    let mut outcome = selection.outcome.clone();
    let mut verdicts = HashMap::new();
    if gates.any() {
        let ranked: Vec<&str> = selection
            .candidates
            .iter()
            .filter(|c| c.verdict.is_ok())
            .map(|c| c.tag.as_str())
            .collect();
        let reference = Reference::parse(&args.image).map(|r| r.name);
        let facts = match (&online, &reference) {
            (Some((runtime, client)), Ok(image)) => super::tags_gates::Facts::Online {
                runtime,
                client,
                image,
                platforms: &args.platform,
            },
            _ => super::tags_gates::Facts::Offline,
        };
        match super::tags_gates::judge(&gates, &ranked, &metadata, &facts) {
            Ok((judged, passed)) => {
                verdicts = judged;
                outcome = match passed {
                    Some(tag) => Outcome::Picked(tidewatch::policy::Pick {
                        digest: policy
                            .needs_digests()
                            .then(|| metadata.get(&tag).and_then(|m| m.digest.clone()))
                            .flatten(),
                        tag,
                    }),
                    None if ranked.is_empty() => outcome,
                    None => Outcome::NothingQualifies {
                        reason: "no candidate passes the gates".into(),
                    },
                };
            }
            Err(e) => return bad_input(e),
        }
    }
    let picked = outcome.pick().map(|p| p.tag.clone());
    eprintln!("{} candidates for {}:", tags.len(), args.image);
    for candidate in &selection.candidates {
        let gate = verdicts
            .get(&candidate.tag)
            .map(|(words, _)| format!("  {words}"))
            .unwrap_or_default();
        match &candidate.verdict {
            Ok(_) if picked.as_deref() == Some(candidate.tag.as_str()) => {
                eprintln!("  pick     {}{gate}", candidate.tag)
            }
            Ok(rank) => eprintln!("  #{:<7} {}{gate}", rank + 1, candidate.tag),
            Err(why) => eprintln!("  dropped  {}  ({why})", candidate.tag),
        }
    }
    if let (true, Some((_, client))) = (requests, &online) {
        eprintln!("{} registry request(s)", client.metrics().total(None));
    }
    match outcome {
        Outcome::Picked(pick) => {
            if args.current.as_deref() == Some(pick.tag.as_str()) && pick.digest.is_none() {
                eprintln!("the current value {} is already the pick", pick.tag);
            }
            println!("{pick}");
            ExitCode::SUCCESS
        }
        Outcome::NothingQualifies { reason } => {
            eprintln!("nothing qualifies: {reason}");
            ExitCode::from(NOTHING)
        }
    }
}

/// The runtime and registry client for online use, with the registry
/// settings of `-c` (or of `policies/` when it exists and `-c` is not given).
fn connect(args: &TagsArgs) -> Result<(tokio::runtime::Runtime, Arc<Client>), String> {
    let reference = Reference::parse(&args.image).map_err(|e| e.to_string())?;
    let config_path = match &args.config {
        Some(path) => Some(path.clone()),
        None => Some(PathBuf::from("policies")).filter(|p| p.exists()),
    };
    let registries = match config_path {
        Some(path) => Config::load(&path).map_err(|e| e.to_string())?.registries,
        None => Vec::new(),
    };
    let mut settings: Vec<_> = registries.into_iter().map(|r| r.item).collect();
    if args.insecure {
        match settings
            .iter_mut()
            .find(|r| r.host == reference.name.registry)
        {
            Some(r) => r.insecure = true,
            None => settings.push(RegistrySettings {
                host: reference.name.registry.clone(),
                insecure: true,
                credentials: None,
                requests_per_second: None,
                concurrency: None,
                ca_file: None,
                page_size: None,
                page_budget: None,
                timeout_seconds: None,
                max_attempts: None,
            }),
        }
    }
    let client = Arc::new(Client::new(
        settings
            .iter()
            .map(|r| (r.host.clone(), host_settings(r)))
            .collect(),
        HostSettings::default(),
    ));
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the async runtime: {e}"))?;
    Ok((runtime, client))
}

/// Lists the image's tags (and the metadata the policy needs).
fn query_registry(
    args: &TagsArgs,
    policy: &Policy,
    (runtime, client): &(tokio::runtime::Runtime, Arc<Client>),
) -> Result<TagList, String> {
    let reference = Reference::parse(&args.image).map_err(|e| e.to_string())?;
    let target = ScanTarget {
        policy: "tags".into(),
        image: reference.name,
        selector: policy.clone(),
        platforms: args.platform.clone(),
    };
    let mut results = runtime.block_on(scan(client, std::slice::from_ref(&target)));
    match results.remove("tags") {
        Some(Ok(result)) => Ok((result.tags.to_vec(), result.metadata)),
        Some(Err(e)) => Err(e.to_string()),
        None => Err("the scan returned nothing".into()),
    }
}

fn read_source(source: &str) -> anyhow::Result<String> {
    use anyhow::Context;
    if source == "-" {
        let mut text = String::new();
        std::io::stdin()
            .read_to_string(&mut text)
            .context("cannot read tags from stdin")?;
        Ok(text)
    } else {
        std::fs::read_to_string(source).with_context(|| format!("cannot read tags from {source}"))
    }
}

type TagList = (Vec<String>, HashMap<String, TagMetadata>);

/// One tag per line; blank lines and `#` comments are skipped. Optional
/// `digest=` and `created=` fields follow the tag.
fn parse_tag_list(text: &str) -> Result<TagList, String> {
    let mut tags = Vec::new();
    let mut metadata = HashMap::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let mut fields = line.split_whitespace();
        let Some(tag) = fields.next() else { continue };
        let mut meta = TagMetadata::default();
        for field in fields {
            match field.split_once('=') {
                Some(("digest", d)) => meta.digest = Some(d.to_string()),
                Some(("created", c)) => {
                    meta.created = Some(c.parse().map_err(|e| {
                        format!("line {}: created={c} is not an RFC 3339 time: {e}", n + 1)
                    })?)
                }
                _ => {
                    return Err(format!(
                        "line {}: unexpected `{field}` after the tag; only digest=… and created=… may follow",
                        n + 1
                    ))
                }
            }
        }
        if meta != TagMetadata::default() {
            metadata.insert(tag.to_string(), meta);
        }
        tags.push(tag.to_string());
    }
    Ok((tags, metadata))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tag_list_with_metadata_comments_and_blanks() {
        let (tags, meta) = parse_tag_list(
            "# tags\n1.0\n\n  stable digest=sha256:ab created=2024-01-02T03:04:05Z\n",
        )
        .unwrap();
        assert_eq!(tags, ["1.0", "stable"]);
        assert_eq!(meta["stable"].digest.as_deref(), Some("sha256:ab"));
        assert!(meta["stable"].created.is_some());
        assert!(parse_tag_list("1.0 colour=blue").is_err());
        assert!(parse_tag_list("1.0 created=yesterday").is_err());
    }

    #[test]
    fn errors_name_the_flag() {
        assert_eq!(flag_for("filter.extract"), "--extract");
        assert_eq!(flag_for("filter.pattern"), "--pattern");
        assert_eq!(flag_for("exclude[2]"), "--exclude");
    }
}
