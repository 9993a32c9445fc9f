//! Parity with Flux's and Argo CD Image Updater's own test tables.

use super::*;

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
