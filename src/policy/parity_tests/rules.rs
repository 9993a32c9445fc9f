//! Our own cases, one table per rule of the engine.

use super::*;

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
