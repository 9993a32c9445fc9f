//! Table tests for tag selection: peer parity cases (Flux image-reflector,
//! Argo CD Image Updater) in `peers.rs`, our own cases for every rule of
//! the engine in `rules.rs`.

mod peers;
mod rules;

use std::collections::HashMap;

use super::*;

#[derive(Default, Clone)]
struct Case {
    name: &'static str,
    tags: &'static [&'static str],
    spec: PolicySpec,
    current: Option<&'static str>,
    /// (tag, digest, created RFC 3339)
    metadata: &'static [(&'static str, Option<&'static str>, Option<&'static str>)],
    want: Option<&'static str>,
}

fn semver(range: &str) -> PolicySpec {
    PolicySpec {
        semver: Some(range.to_string()),
        exclude_defaults: true,
        ..Default::default()
    }
}

fn order(order: &str) -> PolicySpec {
    PolicySpec {
        order: Some(order.parse().unwrap()),
        exclude_defaults: true,
        ..Default::default()
    }
}

fn default_spec() -> PolicySpec {
    PolicySpec {
        exclude_defaults: true,
        ..Default::default()
    }
}

fn filtered(pattern: &str, extract: Option<&str>, ord: &str) -> PolicySpec {
    PolicySpec {
        pattern: Some(pattern.to_string()),
        extract: extract.map(str::to_string),
        ..order(ord)
    }
}

fn run(case: &Case) -> Option<String> {
    let policy = Policy::compile(&case.spec)
        .unwrap_or_else(|e| panic!("{}: policy does not compile: {e:?}", case.name));
    let metadata: HashMap<String, TagMetadata> = case
        .metadata
        .iter()
        .map(|(tag, digest, created)| {
            (
                tag.to_string(),
                TagMetadata {
                    digest: digest.map(str::to_string),
                    created: created.map(|c| c.parse().unwrap()),
                },
            )
        })
        .collect();
    let fast = policy.select(case.tags, &metadata, case.current);
    let explained = policy.explain(case.tags, &metadata, case.current);
    assert_eq!(
        fast, explained.outcome,
        "{}: select and explain disagree",
        case.name
    );
    // The pick must not depend on the order the registry lists tags in.
    let mut reversed: Vec<&str> = case.tags.to_vec();
    reversed.reverse();
    assert_eq!(
        fast,
        policy.select(&reversed, &metadata, case.current),
        "{}: pick depends on tag order",
        case.name
    );
    fast.pick().map(|p| p.to_string())
}

fn check(cases: &[Case]) {
    let mut failures = Vec::new();
    for case in cases {
        let got = run(case);
        if got.as_deref() != case.want {
            failures.push(format!(
                "{}: got {:?}, want {:?}",
                case.name, got, case.want
            ));
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}
