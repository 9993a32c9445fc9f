//! Table tests for tag selection: peer parity cases (Flux image-reflector,
//! Argo CD Image Updater) and our own cases for every rule in the engine.

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

#[test]
fn flux_parity() {
    check(&[
        Case {
            name: "flux semver regular",
            tags: &["1.0.0", "1.0.0.1", "1.0.0p", "1.0.1", "1.2.0", "0.1.0"],
            spec: semver("1.0.x"),
            want: Some("1.0.1"),
            ..Default::default()
        },
        Case {
            name: "flux semver with v prefix",
            tags: &["v1.2.3", "v1.0.0", "v0.1.0"],
            spec: semver("1.0.x"),
            want: Some("v1.0.0"),
            ..Default::default()
        },
        Case {
            name: "flux semver invalid prefix",
            tags: &["b1.2.3", "b1.0.0", "b0.1.0"],
            spec: semver("1.0.x"),
            want: None,
            ..Default::default()
        },
        Case {
            name: "flux semver empty list",
            tags: &[],
            spec: semver("1.0.x"),
            want: None,
            ..Default::default()
        },
        Case {
            name: "flux semver non-matching list",
            tags: &["1.2.0"],
            spec: semver("1.0.x"),
            want: None,
            ..Default::default()
        },
        Case {
            name: "flux alphabetical code names asc",
            tags: &["xenial", "yakkety", "zesty", "artful", "bionic"],
            spec: order("alphabetical"),
            want: Some("zesty"),
            ..Default::default()
        },
        Case {
            name: "flux alphabetical code names desc",
            tags: &["xenial", "yakkety", "zesty", "artful", "bionic"],
            spec: order("alphabetical:desc"),
            want: Some("artful"),
            ..Default::default()
        },
        Case {
            name: "flux alphabetical ubuntu calver",
            tags: &["16.04", "16.04.1", "16.10", "20.04", "20.10"],
            spec: order("alphabetical"),
            want: Some("20.10"),
            ..Default::default()
        },
        Case {
            name: "flux alphabetical ubuntu calver desc",
            tags: &["16.04", "16.04.1", "16.10", "20.04", "20.10"],
            spec: order("alphabetical:desc"),
            want: Some("16.04"),
            ..Default::default()
        },
        Case {
            name: "flux alphabetical timestamps with prefix",
            tags: &[
                "rel-1606234201",
                "rel-1606364286",
                "rel-1606334092",
                "rel-1606334284",
                "rel-1606334201",
            ],
            spec: order("alphabetical"),
            want: Some("rel-1606364286"),
            ..Default::default()
        },
        Case {
            name: "flux numerical filter extract rc",
            tags: &[
                "1.0.0",
                "1.0.0-rc.1",
                "1.0.0-rc.2",
                "1.0.0-rc.3",
                "1.0.1-rc.2",
            ],
            spec: filtered(r"1.0.0-rc\.(?P<num>[0-9]+)", Some("$num"), "numerical"),
            want: Some("1.0.0-rc.3"),
            ..Default::default()
        },
        Case {
            name: "flux numerical integers asc",
            tags: &[
                "-62", "-88", "73", "72", "15", "16", "15", "29", "-33", "-91",
            ],
            spec: order("numerical"),
            want: Some("73"),
            ..Default::default()
        },
        Case {
            name: "flux numerical integers desc",
            tags: &["5", "-8", "-78", "25", "70", "-4", "80", "92", "-20", "-24"],
            spec: order("numerical:desc"),
            want: Some("-78"),
            ..Default::default()
        },
        Case {
            name: "flux numerical floats asc",
            tags: &[
                "47.40896403322944",
                "-27.8520927455902",
                "-27.930666514224427",
                "-31.352485948094568",
                "-50.41072694704882",
                "-21.962849842263736",
                "24.71884721436865",
                "-39.99177354004344",
                "53.47333823144817",
                "3.2008658570411086",
            ],
            spec: order("numerical"),
            want: Some("53.47333823144817"),
            ..Default::default()
        },
        Case {
            name: "flux numerical floats desc",
            tags: &[
                "-65.27202780220686",
                "57.82948329142309",
                "22.40184684363291",
                "-86.36934305697784",
                "-90.29082099756083",
                "-12.041712603564264",
                "77.70488240399305",
                "-38.98425003883552",
                "16.06867070412028",
                "53.735674335181216",
            ],
            spec: order("numerical:desc"),
            want: Some("-90.29082099756083"),
            ..Default::default()
        },
        Case {
            name: "flux numerical unix timestamps asc",
            tags: &[
                "1606234201",
                "1606364286",
                "1606334092",
                "1606334284",
                "1606334201",
            ],
            spec: order("numerical"),
            want: Some("1606364286"),
            ..Default::default()
        },
        Case {
            name: "flux numerical unix timestamps desc",
            tags: &[
                "1606234201",
                "1606364286",
                "1606334092",
                "1606334284",
                "1606334201",
            ],
            spec: order("numerical:desc"),
            want: Some("1606234201"),
            ..Default::default()
        },
        Case {
            name: "flux numerical single value",
            tags: &["1"],
            spec: order("numerical:desc"),
            want: Some("1"),
            ..Default::default()
        },
        Case {
            // Flux fails the whole policy on a non-number; we skip those tags
            // (documented in the README) and pick among the numbers.
            name: "numerical skips values that are not numbers",
            tags: &["0", "1a", "b"],
            spec: order("numerical"),
            want: Some("0"),
            ..Default::default()
        },
        Case {
            name: "flux filter prefix then alphabetical",
            tags: &["ver1", "ver2", "ver3", "rel1"],
            spec: filtered("^ver", None, "alphabetical"),
            want: Some("ver3"),
            ..Default::default()
        },
        Case {
            name: "flux filter capture group numerical",
            tags: &["ver1", "ver2", "ver10", "rel11"],
            spec: filtered(r"ver(\d+)", Some("$1"), "numerical"),
            want: Some("ver10"),
            ..Default::default()
        },
    ]);
}

#[test]
fn argo_parity() {
    let tags: &'static [&'static str] = &["0.1", "0.5.1", "0.9", "1.0", "1.0.1", "1.1.2", "2.0.3"];
    check(&[
        Case {
            name: "argo caret major",
            tags,
            spec: semver("^1.0"),
            want: Some("1.1.2"),
            ..Default::default()
        },
        Case {
            name: "argo tilde patch",
            tags,
            spec: semver("~1.0"),
            want: Some("1.0.1"),
            ..Default::default()
        },
        Case {
            name: "argo no constraint",
            tags,
            spec: default_spec(),
            want: Some("2.0.3"),
            ..Default::default()
        },
        Case {
            name: "argo no constraint skips pre-release",
            tags: &["v2.2.0", "v2.3.0-rc.0.18.g1abb7b5dd-ppc64le"],
            spec: default_spec(),
            want: Some("v2.2.0"),
            ..Default::default()
        },
        Case {
            name: "argo constraint with no match",
            tags: &["0.1", "0.5.1", "0.9", "2.0.3"],
            spec: semver("~1.0"),
            current: Some("1.0"),
            want: None,
            ..Default::default()
        },
        Case {
            name: "argo no tags",
            tags: &[],
            spec: semver("~1.0"),
            current: Some("1.0"),
            want: None,
            ..Default::default()
        },
    ]);
}

#[test]
fn semver_rules() {
    check(&[
        Case {
            name: "range with AND by space",
            tags: &["1.1.0", "1.2.0", "1.9.9", "2.0.0"],
            spec: semver(">=1.2.0 <2.0.0"),
            want: Some("1.9.9"),
            ..Default::default()
        },
        Case {
            name: "range with AND by comma",
            tags: &["1.1.0", "1.2.0", "1.9.9", "2.0.0"],
            spec: semver(">=1.2.0, <2.0.0"),
            want: Some("1.9.9"),
            ..Default::default()
        },
        Case {
            name: "OR alternatives pick the greatest across both",
            tags: &["1.2.5", "1.3.0", "3.0.1", "2.5.0"],
            spec: semver("~1.2 || >=3"),
            want: Some("3.0.1"),
            ..Default::default()
        },
        Case {
            name: "wildcard X",
            tags: &["2.0.0", "2.7.1", "3.0.0"],
            spec: semver("2.X"),
            want: Some("2.7.1"),
            ..Default::default()
        },
        Case {
            name: "star accepts every release",
            tags: &["0.0.1", "9.9.9", "10.0.0-rc.1"],
            spec: semver("*"),
            want: Some("9.9.9"),
            ..Default::default()
        },
        Case {
            name: "not equal",
            tags: &["1.0.0", "1.0.1", "1.0.2"],
            spec: semver(">=1.0.0 !=1.0.2"),
            want: Some("1.0.1"),
            ..Default::default()
        },
        Case {
            name: "hyphen range inclusive with partial upper bound",
            tags: &["1.1.9", "1.2.0", "1.4.7", "1.5.0"],
            spec: semver("1.2 - 1.4"),
            want: Some("1.4.7"),
            ..Default::default()
        },
        Case {
            name: "bare version is exact",
            tags: &["1.2.2", "1.2.3", "1.2.4"],
            spec: semver("1.2.3"),
            want: Some("1.2.3"),
            ..Default::default()
        },
        Case {
            name: "equals operator",
            tags: &["1.2.3", "1.2.4"],
            spec: semver("=1.2.3"),
            want: Some("1.2.3"),
            ..Default::default()
        },
        Case {
            name: "caret on zero major stays in minor",
            tags: &["0.2.3", "0.2.9", "0.3.0"],
            spec: semver("^0.2.3"),
            want: Some("0.2.9"),
            ..Default::default()
        },
        Case {
            name: "tilde arrow",
            tags: &["1.2.3", "1.2.8", "1.3.0"],
            spec: semver("~>1.2.3"),
            want: Some("1.2.8"),
            ..Default::default()
        },
        Case {
            name: "pre-releases excluded when the range names none",
            tags: &["1.0.0", "1.1.0-rc.1"],
            spec: semver(">=1.0.0"),
            want: Some("1.0.0"),
            ..Default::default()
        },
        Case {
            name: "pre-releases admitted by a pre-release range",
            tags: &["1.0.0", "1.1.0-rc.1", "1.1.0-rc.2"],
            spec: semver(">=1.0.0-0"),
            want: Some("1.1.0-rc.2"),
            ..Default::default()
        },
        Case {
            name: "caret wildcard pre-release range",
            tags: &["2.0.0", "2.1.0-beta.1", "3.0.0-alpha.1"],
            spec: semver("^2.x-0"),
            want: Some("2.1.0-beta.1"),
            ..Default::default()
        },
        Case {
            name: "release beats its own pre-release",
            tags: &["2.1.0-rc.1", "2.1.0"],
            spec: semver("^2.x-0"),
            want: Some("2.1.0"),
            ..Default::default()
        },
        Case {
            name: "four-part tags are not semver",
            tags: &["1.0.0.1", "1.0.0"],
            spec: default_spec(),
            want: Some("1.0.0"),
            ..Default::default()
        },
        Case {
            name: "two-part tags are not strict semver",
            tags: &["1.5", "1.2.0"],
            spec: default_spec(),
            want: Some("1.2.0"),
            ..Default::default()
        },
        Case {
            name: "only one leading v is stripped",
            tags: &["vv2.0.0", "v1.0.0"],
            spec: default_spec(),
            want: Some("v1.0.0"),
            ..Default::default()
        },
        Case {
            name: "capital V is not a prefix",
            tags: &["V2.0.0", "1.0.0"],
            spec: default_spec(),
            want: Some("1.0.0"),
            ..Default::default()
        },
        Case {
            name: "tie: canonical spelling wins over v prefix",
            tags: &["v1.0.0", "1.0.0"],
            spec: default_spec(),
            want: Some("1.0.0"),
            ..Default::default()
        },
        Case {
            name: "tie: greater build metadata wins",
            tags: &["1.0.0+build.1", "1.0.0+build.2"],
            spec: default_spec(),
            want: Some("1.0.0+build.2"),
            ..Default::default()
        },
        Case {
            name: "leading zeros are not semver",
            tags: &["01.2.3", "1.2.0"],
            spec: default_spec(),
            want: Some("1.2.0"),
            ..Default::default()
        },
        Case {
            name: "semver desc picks the lowest in range",
            tags: &["1.0.0", "1.5.0", "2.0.0"],
            spec: PolicySpec {
                order: Some("semver:desc".parse().unwrap()),
                ..semver("^1")
            },
            want: Some("1.0.0"),
            ..Default::default()
        },
        Case {
            name: "semver ordering of an extracted value",
            tags: &["app-1.2.0", "app-1.10.0", "app-1.9.0", "other-9.9.9"],
            spec: filtered(r"^app-(?P<v>.*)$", Some("$v"), "semver"),
            want: Some("app-1.10.0"),
            ..Default::default()
        },
    ]);
}

#[test]
fn filter_order_and_exclude_rules() {
    check(&[
        Case {
            name: "filter is unanchored as in Flux",
            tags: &["build-main-7", "main-9", "dev-10"],
            spec: filtered(r"main-(\d+)", Some("$1"), "numerical"),
            want: Some("main-9"),
            ..Default::default()
        },
        Case {
            name: "braced named extract",
            tags: &["main-abc-100", "main-def-200", "main-xyz-150"],
            spec: filtered(r"^main-[a-z]+-(?P<ts>\d+)$", Some("${ts}"), "numerical"),
            want: Some("main-def-200"),
            ..Default::default()
        },
        Case {
            name: "equal extracted values break ties by the greater tag",
            tags: &["main-aaa-100", "main-bbb-100"],
            spec: filtered(r"-(\d+)$", Some("$1"), "numerical"),
            want: Some("main-bbb-100"),
            ..Default::default()
        },
        Case {
            name: "numerical parses floats and exponents",
            tags: &["1.5", "1e3", "999"],
            spec: order("numerical"),
            want: Some("1e3"),
            ..Default::default()
        },
        Case {
            name: "numerical drops NaN",
            tags: &["NaN", "3"],
            spec: order("numerical"),
            want: Some("3"),
            ..Default::default()
        },
        Case {
            name: "alphabetical is byte order",
            tags: &["Zeta", "alpha", "beta"],
            spec: order("alphabetical"),
            want: Some("beta"),
            ..Default::default()
        },
        Case {
            name: "calendar tags by filter and numerical",
            tags: &["2024.06.27", "2024.11.02", "2023.12.31", "latest"],
            spec: filtered(r"^(\d{4})\.(\d{2})\.(\d{2})$", Some("$1$2$3"), "numerical"),
            want: Some("2024.11.02"),
            ..Default::default()
        },
        Case {
            name: "cosign signature tags are excluded by default",
            tags: &[
                "sha256-abcdef0123.sig",
                "sha256-abcdef0123.att",
                "sha256-ab.sbom",
                "1.0",
            ],
            spec: order("alphabetical"),
            want: Some("1.0"),
            ..Default::default()
        },
        Case {
            name: "any .sig tag is excluded by default",
            tags: &["zz.sig", "aa"],
            spec: order("alphabetical"),
            want: Some("aa"),
            ..Default::default()
        },
        Case {
            name: "defaults can be turned off",
            tags: &["zz.sig", "aa"],
            spec: PolicySpec {
                exclude_defaults: false,
                ..order("alphabetical")
            },
            want: Some("zz.sig"),
            ..Default::default()
        },
        Case {
            name: "user exclude applies before the filter and adds to defaults",
            tags: &["1.3.0-debug", "1.2.0", "1.3.0", "sha256-00.sig"],
            spec: PolicySpec {
                exclude: vec![r"^1\.3".into()],
                ..default_spec()
            },
            want: Some("1.2.0"),
            ..Default::default()
        },
        Case {
            name: "exclude beats a matching filter",
            tags: &["main-1", "main-2-debug"],
            spec: PolicySpec {
                exclude: vec!["-debug$".into()],
                ..filtered(r"^main-(\d+)", Some("$1"), "numerical")
            },
            want: Some("main-1"),
            ..Default::default()
        },
    ]);
}

#[test]
fn variant_and_downgrade_rules() {
    let keep = |range: &str| PolicySpec {
        variant_keep: true,
        ..semver(range)
    };
    check(&[
        Case {
            name: "variant keep stays on alpine",
            tags: &[
                "1.25-alpine",
                "1.27-alpine",
                "1.27-alpine-perl",
                "1.27",
                "1.28-perl",
            ],
            spec: keep(">=1.0"),
            current: Some("1.25-alpine"),
            want: Some("1.27-alpine"),
            ..Default::default()
        },
        Case {
            name: "variant keep with a plain current ignores suffixed tags",
            tags: &["1.25.0", "1.27.1", "1.28.0-alpine"],
            spec: keep("*"),
            current: Some("1.25.0"),
            want: Some("1.27.1"),
            ..Default::default()
        },
        Case {
            name: "variant keep with three components",
            tags: &["1.2.3-bookworm", "1.2.9-bookworm", "1.3.0-bullseye"],
            spec: keep("~1.2"),
            current: Some("1.2.3-bookworm"),
            want: Some("1.2.9-bookworm"),
            ..Default::default()
        },
        Case {
            name: "without variant keep the suffix is a pre-release",
            tags: &["1.2.3-alpine", "1.2.0"],
            spec: semver("^1"),
            want: Some("1.2.0"),
            ..Default::default()
        },
        Case {
            name: "no downgrade below the current value",
            tags: &["1.0.0", "1.1.0"],
            spec: semver("^1"),
            current: Some("1.2.0"),
            want: None,
            ..Default::default()
        },
        Case {
            name: "current stays the pick when nothing is newer",
            tags: &["1.0.0", "1.2.0"],
            spec: semver("^1"),
            current: Some("1.2.0"),
            want: Some("1.2.0"),
            ..Default::default()
        },
        Case {
            name: "allowDowngrade rolls back into the range",
            tags: &["1.0.0", "1.1.0"],
            spec: PolicySpec {
                allow_downgrade: true,
                ..semver("^1")
            },
            current: Some("2.0.0"),
            want: Some("1.1.0"),
            ..Default::default()
        },
        Case {
            name: "a current value the policy cannot read sets no floor",
            tags: &["1.0.0", "1.1.0"],
            spec: semver("^1"),
            current: Some("latest"),
            want: Some("1.1.0"),
            ..Default::default()
        },
        Case {
            name: "no downgrade under numerical desc means no larger value",
            tags: &["5", "7", "9"],
            spec: order("numerical:desc"),
            current: Some("6"),
            want: Some("5"),
            ..Default::default()
        },
        Case {
            name: "no downgrade uses the extracted value of the current tag",
            tags: &["main-aa-100", "main-bb-90"],
            spec: filtered(r"-(\d+)$", Some("$1"), "numerical"),
            current: Some("main-cc-120"),
            want: None,
            ..Default::default()
        },
    ]);
}

#[test]
fn metadata_rules() {
    check(&[
        Case {
            name: "digest follows the tracked tag",
            tags: &["stable", "1.0"],
            spec: PolicySpec {
                digest: Some("stable".into()),
                ..default_spec()
            },
            metadata: &[("stable", Some("sha256:aaaa"), None)],
            want: Some("stable@sha256:aaaa"),
            ..Default::default()
        },
        Case {
            name: "digest without metadata picks nothing",
            tags: &["stable"],
            spec: PolicySpec {
                digest: Some("stable".into()),
                ..default_spec()
            },
            want: None,
            ..Default::default()
        },
        Case {
            name: "digest of a missing tag picks nothing",
            tags: &["latest"],
            spec: PolicySpec {
                digest: Some("stable".into()),
                ..default_spec()
            },
            metadata: &[("stable", Some("sha256:aaaa"), None)],
            want: None,
            ..Default::default()
        },
        Case {
            name: "newest build by created time",
            tags: &["a", "b", "c"],
            spec: order("newest-build"),
            metadata: &[
                ("a", None, Some("2024-01-01T00:00:00Z")),
                ("b", None, Some("2024-03-01T00:00:00Z")),
                ("c", None, Some("2024-02-01T00:00:00Z")),
            ],
            want: Some("b"),
            ..Default::default()
        },
        Case {
            name: "newest build skips tags with no build time",
            tags: &["a", "b"],
            spec: order("newest-build"),
            metadata: &[("a", None, Some("2024-01-01T00:00:00Z"))],
            want: Some("a"),
            ..Default::default()
        },
        Case {
            name: "oldest build with desc, after a filter",
            tags: &["main-1", "main-2", "dev-3"],
            spec: filtered("^main-", None, "newest-build:desc"),
            metadata: &[
                ("main-1", None, Some("2024-05-01T00:00:00Z")),
                ("main-2", None, Some("2024-04-01T00:00:00Z")),
                ("dev-3", None, Some("2020-01-01T00:00:00Z")),
            ],
            want: Some("main-2"),
            ..Default::default()
        },
    ]);
}

#[test]
fn explain_reports_each_reason_and_ranks_survivors() {
    let policy = Policy::compile(&PolicySpec {
        pattern: Some("^[v0-9]".into()),
        ..semver("^1")
    })
    .unwrap();
    let tags = [
        "1.0.0",
        "1.2.0",
        "1.1.0-rc.1",
        "2.0.0",
        "latest",
        "sha256-ab.sig",
        "1.0.0",
        "v1.1.0",
    ];
    let s = policy.explain(&tags, &HashMap::new(), Some("1.0.5"));
    let verdict = |t: &str| {
        s.candidates
            .iter()
            .find(|c| c.tag == t)
            .map(|c| c.verdict.clone())
            .unwrap()
    };
    assert_eq!(verdict("1.2.0"), Ok(0));
    assert_eq!(verdict("v1.1.0"), Ok(1));
    assert_eq!(verdict("1.1.0-rc.1"), Err(Drop::PreRelease));
    assert_eq!(verdict("2.0.0"), Err(Drop::OutOfRange));
    assert_eq!(verdict("latest"), Err(Drop::NoFilterMatch));
    assert!(matches!(
        verdict("sha256-ab.sig"),
        Err(Drop::Excluded { .. })
    ));
    assert_eq!(
        verdict("1.0.0"),
        Err(Drop::BelowCurrent {
            current: "1.0.5".into()
        })
    );
    assert!(s
        .candidates
        .iter()
        .any(|c| c.tag == "1.0.0" && c.verdict == Err(Drop::Duplicate)));
    assert_eq!(s.candidates[0].tag, "1.2.0");
}

#[test]
fn nothing_qualifies_says_why() {
    let policy = Policy::compile(&semver("^1")).unwrap();
    let outcome = policy.select(&["2.0.0", "1.0.0"], &HashMap::new(), Some("1.5.0"));
    let Outcome::NothingQualifies { reason } = outcome else {
        panic!("expected no pick")
    };
    assert!(reason.contains("1 out of range"), "{reason}");
    assert!(reason.contains("1 below the current value"), "{reason}");
    assert!(reason.contains("allowDowngrade"), "{reason}");
}
