//! End-to-end tests of the `tidewatch` binary: check, schema and offline tags.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

fn tidewatch(args: &[&str], stdin: Option<&str>) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_tidewatch"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn tidewatch");
    let mut input = child.stdin.take().unwrap();
    input.write_all(stdin.unwrap_or("").as_bytes()).unwrap();
    drop(input);
    child.wait_with_output().unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

#[test]
fn check_passes_on_the_shipped_examples_with_a_line_per_file() {
    let out = tidewatch(&["check", "-c", "policies"], None);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{}{}", stdout, text(&out.stderr));
    // `check` reads the *.yaml files directly in the directory, not subdirectories.
    let files = std::fs::read_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join("policies"))
        .unwrap()
        .filter(|e| {
            let path = e.as_ref().unwrap().path();
            path.is_file() && path.extension().is_some_and(|x| x == "yaml" || x == "yml")
        })
        .count();
    assert_eq!(stdout.lines().count(), files, "{stdout}");
    assert!(stdout.lines().all(|l| l.contains(": ok (")), "{stdout}");
}

/// Each broken fixture's first line says where the error must point and
/// what it must say: `# expect: LINE:COL PATH | text | text`.
#[test]
fn every_bad_policy_fixture_names_line_column_and_field() {
    let dir = fixture("bad-policies");
    let mut seen = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let body = std::fs::read_to_string(&path).unwrap();
        let expect = body
            .lines()
            .next()
            .and_then(|l| l.strip_prefix("# expect: "))
            .unwrap_or_else(|| panic!("{} lacks an expect line", path.display()));
        let mut parts = expect.split(" | ");
        let location = parts.next().unwrap();
        let (position, field) = location.split_once(' ').unwrap_or((location, ""));
        let rel = format!(
            "tests/fixtures/bad-policies/{}",
            path.file_name().unwrap().to_str().unwrap()
        );
        let out = tidewatch(&["check", "-c", &rel], None);
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{rel}: {stderr}");
        let head = if field.is_empty() {
            format!("{rel}:{position}: ")
        } else {
            format!("{rel}:{position}: {field}: ")
        };
        assert!(
            stderr.contains(&head),
            "{rel}: expected `{head}` in:\n{stderr}"
        );
        for needle in parts {
            assert!(
                stderr.contains(needle),
                "{rel}: expected `{needle}` in:\n{stderr}"
            );
        }
        seen += 1;
    }
    assert!(seen >= 8, "only {seen} bad fixtures");
}

#[test]
fn check_lists_every_error_not_just_the_first() {
    let out = tidewatch(&["check", "-c", "tests/fixtures/many-errors.yaml"], None);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1));
    for needle in [
        ":6:5: images[0].semvr: unknown field",
        ":9:24: images[1].filter.pattern: invalid regex",
        ":13:13: images[2].semver:",
        ":16:13: updates[0].paths[0]:",
        ":17:19: updates[0].images[1]: no image policy is named `wroker`",
        "did you mean `worker`?",
        "5 problems found",
    ] {
        assert!(stderr.contains(needle), "expected `{needle}` in:\n{stderr}");
    }
}

#[test]
fn a_directory_merges_and_a_duplicate_name_across_files_is_an_error() {
    let out = tidewatch(&["check", "-c", "tests/fixtures/split-duplicate"], None);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("split-duplicate/b.yaml:4:11: images[1].name: image policy `app` is defined twice; the first is at"), "{stderr}");
    assert!(stderr.contains("split-duplicate/a.yaml:2:5"), "{stderr}");
}

#[test]
fn a_file_with_only_registries_is_valid() {
    let out = tidewatch(
        &["check", "-c", "tests/fixtures/registries-only.yaml"],
        None,
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("1 registry"));
}

#[test]
fn check_on_a_missing_path_fails_clearly() {
    let out = tidewatch(&["check", "-c", "no/such/dir"], None);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("cannot read no/such/dir"));
}

#[test]
fn schema_is_generated_from_the_model_and_denies_unknown_fields() {
    let out = tidewatch(&["schema"], None);
    assert!(out.status.success());
    let schema: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let image = &schema["$defs"]["ImagePolicy"];
    assert_eq!(
        image["additionalProperties"],
        serde_json::Value::Bool(false)
    );
    for field in [
        "name",
        "image",
        "semver",
        "filter",
        "order",
        "digest",
        "exclude",
        "variant",
        "allowDowngrade",
    ] {
        assert!(
            image["properties"].get(field).is_some(),
            "schema lacks images[].{field}"
        );
    }
    let orders = schema["$defs"]["Order"]["enum"].as_array().unwrap();
    assert!(orders.contains(&serde_json::json!("numerical:desc")));
    for section in ["repository", "registries", "images", "updates"] {
        assert!(schema["properties"].get(section).is_some());
    }
}

#[test]
fn tags_prints_the_pick_alone_on_the_last_stdout_line() {
    let out = tidewatch(
        &[
            "tags",
            "ghcr.io/acme/app",
            "--tags-from",
            "-",
            "--semver",
            "1.0.x",
        ],
        Some("1.0.0\n1.0.0.1\n1.0.0p\n1.0.1\n1.2.0\n0.1.0\n"),
    );
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(text(&out.stdout).lines().last(), Some("1.0.1"));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("dropped  1.0.0.1  (not semver)"),
        "{stderr}"
    );
    assert!(
        stderr.contains("dropped  1.2.0  (out of range)"),
        "{stderr}"
    );
}

#[test]
fn tags_with_filter_extract_and_numerical_order_from_a_file() {
    let file = fixture("tags/calver.txt");
    let out = tidewatch(
        &[
            "tags",
            "nginx",
            "--tags-from",
            file.to_str().unwrap(),
            "--pattern",
            r"^(\d{4})\.(\d{2})\.(\d{2})$",
            "--extract",
            "$1$2$3",
            "--order",
            "numerical",
        ],
        None,
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout).trim(), "2024.11.02");
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("latest  (does not match the filter pattern)"),
        "{stderr}"
    );
    assert!(
        stderr.contains("sha256-0123abcd.sig  (excluded by"),
        "{stderr}"
    );
}

#[test]
fn tags_order_desc_and_current_turn_on_no_downgrade() {
    let out = tidewatch(
        &[
            "tags",
            "app",
            "--tags-from",
            "-",
            "--order",
            "alphabetical:desc",
        ],
        Some("xenial\nyakkety\nzesty\nartful\nbionic\n"),
    );
    assert_eq!(text(&out.stdout).trim(), "artful");
    let out = tidewatch(
        &[
            "tags",
            "app",
            "--tags-from",
            "-",
            "--semver",
            "^1",
            "--current",
            "1.5.0",
        ],
        Some("1.0.0\n1.4.0\n"),
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stdout).is_empty());
    assert!(text(&out.stderr).contains("allowDowngrade"));
}

#[test]
fn tags_variant_keep_and_digest_with_offline_metadata() {
    let out = tidewatch(
        &[
            "tags",
            "nginx",
            "--tags-from",
            "-",
            "--variant",
            "keep",
            "--current",
            "1.25-alpine",
        ],
        Some("1.25-alpine\n1.27-alpine\n1.27-alpine-perl\n1.27\n"),
    );
    assert_eq!(text(&out.stdout).trim(), "1.27-alpine");
    let digest = format!("sha256:{}", "b".repeat(64));
    let out = tidewatch(
        &["tags", "nginx", "--tags-from", "-", "--digest", "stable"],
        Some(&format!("1.27\nstable digest={digest}\n")),
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout).trim(), format!("stable@{digest}"));
}

#[test]
fn tags_exit_codes_for_nothing_and_bad_input() {
    let out = tidewatch(
        &["tags", "app", "--tags-from", "-", "--semver", "^3"],
        Some("1.0.0\n"),
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("nothing qualifies: no tag qualifies out of 1: 1 out of range")
    );

    for (flags, needle) in [
        (vec!["--pattern", "("], "--pattern: invalid regex"),
        (
            vec!["--semver", "not-a-range"],
            "--semver: `not-a-range` is not a valid semver range",
        ),
        (
            vec!["--order", "sideways"],
            "--order: unknown order `sideways`",
        ),
        (vec!["--pattern", "(x)", "--extract", "$2"], "--extract:"),
    ] {
        let mut args = vec!["tags", "app", "--tags-from", "-"];
        args.extend(flags);
        let out = tidewatch(&args, Some("1.0.0\n"));
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(
            text(&out.stderr).contains(needle),
            "{args:?}: {}",
            text(&out.stderr)
        );
        assert!(text(&out.stdout).is_empty());
    }
    let out = tidewatch(&["tags", "Not/A/Ref", "--tags-from", "-"], Some("1.0.0\n"));
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn a_file_that_is_not_utf8_hides_no_other_error() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("a-binary.yaml"),
        b"images:\n  - name: \xff\xfe\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("b-typo.yaml"),
        "images:\n  - name: app\n    image: ghcr.io/acme/app\n    semvr: ^1\n",
    )
    .unwrap();
    let out = tidewatch(&["check", "-c", dir.path().to_str().unwrap()], None);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("a-binary.yaml:2:11: the file is not UTF-8 text"),
        "{stderr}"
    );
    assert!(
        stderr.contains("b-typo.yaml:4:5: images[0].semvr: unknown field `semvr`"),
        "{stderr}"
    );
    assert!(stderr.contains("2 problems found"), "{stderr}");
}
