//! Parsing each source's payloads.

use super::*;

#[test]
fn docker_hub_push() {
    assert_eq!(
        events(Source::DockerHub, DOCKER_HUB_PUSH),
        one("docker.io/acme/app", Some("1.2.3"))
    );
    let official = r#"{"push_data": {"tag": "1.27"}, "repository": {"repo_name": "nginx"}}"#;
    assert_eq!(
        events(Source::DockerHub, official),
        one("docker.io/library/nginx", Some("1.27"))
    );
}

#[test]
fn github_container_packages() {
    assert_eq!(
        events(Source::GitHub, GITHUB_PACKAGE_PUBLISHED),
        one("ghcr.io/acme/app", Some("1.2.3"))
    );
    // `registry_package`, owner login instead of namespace, mixed case.
    assert_eq!(
        events(Source::GitHub, GITHUB_REGISTRY_PACKAGE),
        one("ghcr.io/some-user/tools", Some("v2.0.0"))
    );
    // An untagged version (e.g. a platform manifest) still names the image.
    let untagged = GITHUB_PACKAGE_PUBLISHED.replace(r#""name": "1.2.3""#, r#""name": """#);
    assert_eq!(
        events(Source::GitHub, &untagged),
        one("ghcr.io/acme/app", None)
    );
}

#[test]
fn github_non_push_events_yield_nothing() {
    assert!(events(Source::GitHub, GITHUB_NPM_PACKAGE).is_empty());
    assert!(events(Source::GitHub, GITHUB_PING).is_empty());
    let deleted =
        GITHUB_PACKAGE_PUBLISHED.replace(r#""action": "published""#, r#""action": "deleted""#);
    assert!(events(Source::GitHub, &deleted).is_empty());
    // A GitHub event about something else entirely.
    let push = r#"{"ref": "refs/heads/main", "repository": {"full_name": "acme/app"}, "sender": {"login": "x"}}"#;
    assert!(events(Source::GitHub, push).is_empty());
}

#[test]
fn harbor_push_yields_one_event_per_resource() {
    assert_eq!(
        events(Source::Harbor, HARBOR_PUSH),
        vec![
            (
                "harbor.example.com/library/app".to_string(),
                Some("1.2.3".to_string())
            ),
            (
                "harbor.example.com/library/app".to_string(),
                Some("latest".to_string())
            ),
        ]
    );
    assert!(events(Source::Harbor, HARBOR_SCAN).is_empty());
    // CloudEvents format: `data` instead of `event_data`.
    let cloud = r#"{"specversion": "1.0", "type": "harbor.artifact.pushed", "source": "/projects/1/webhook/policies/2",
        "data": {"resources": [{"tag": "2.0", "resource_url": "harbor.example.com/team/api:2.0"}],
                 "repository": {"repo_full_name": "team/api"}}}"#;
    assert_eq!(
        events(Source::Harbor, cloud),
        one("harbor.example.com/team/api", Some("2.0"))
    );
}

#[test]
fn quay_push_yields_one_event_per_tag() {
    assert_eq!(
        events(Source::Quay, QUAY_PUSH),
        vec![
            ("quay.io/acme/app".to_string(), Some("1.2.3".to_string())),
            ("quay.io/acme/app".to_string(), Some("latest".to_string())),
        ]
    );
    assert!(events(Source::Quay, QUAY_BUILD_QUEUED).is_empty());
}

#[test]
fn distribution_keeps_tagged_pushes_once() {
    // The blob push and the pull are skipped; the repeated push is dropped.
    assert_eq!(
        events(Source::Distribution, DISTRIBUTION_ENVELOPE),
        one("registry.example.com:5000/acme/app", Some("1.2.3"))
    );
    let pulls_only = r#"{"events": [{"action": "pull", "target": {"repository": "a/b", "tag": "1"},
        "request": {"host": "r.example.com"}}]}"#;
    assert!(events(Source::Distribution, pulls_only).is_empty());
    // A host that would be read as a Docker Hub namespace is refused.
    let bare = r#"{"events": [{"action": "push", "target": {"repository": "a/b", "tag": "1"},
        "request": {"host": "registry"}}]}"#;
    assert_eq!(
        parse(Source::Distribution, bare.as_bytes())
            .unwrap_err()
            .status(),
        400
    );
}

#[test]
fn generic_payloads() {
    assert_eq!(
        events(
            Source::Generic,
            r#"{"image": "ghcr.io/acme/app", "tag": "1.2.3"}"#
        ),
        one("ghcr.io/acme/app", Some("1.2.3"))
    );
    assert_eq!(
        events(Source::Generic, r#"{"image": "ghcr.io/acme/app:1.2.3"}"#),
        one("ghcr.io/acme/app", Some("1.2.3"))
    );
    assert_eq!(
        events(Source::Generic, r#"{"image": "nginx"}"#),
        one("docker.io/library/nginx", None)
    );
    for bad in [
        r#"{"image": "ghcr.io/acme/app:1.2.3", "tag": "1.2.4"}"#,
        r#"{"image": "ghcr.io/acme/app", "tag": "-bad"}"#,
        r#"{"image": "UPPER/app"}"#,
        r#"{"tag": "1"}"#,
        r#"{"image": "ghcr.io/acme/app", "tags": ["1"]}"#,
    ] {
        let err = parse(Source::Generic, bad.as_bytes()).unwrap_err();
        assert_eq!(err.status(), 400, "{bad}: {err}");
    }
}

#[test]
fn malformed_json_is_400_naming_the_source() {
    for source in Source::ALL {
        for body in [
            "",
            "{not json",
            "[1, 2]",
            "{} trailing",
            r#"{"push_data": 5}"#,
        ] {
            let err = parse(source, body.as_bytes()).unwrap_err();
            assert_eq!(err.status(), 400, "{source} {body:?}: {err}");
            let message = err.to_string();
            assert!(message.starts_with(source.as_str()), "{message}");
        }
    }
    // Recognisably the wrong format rather than a non-push event.
    for (source, body) in [
        (Source::DockerHub, QUAY_PUSH),
        (Source::GitHub, r#"{"hello": 1}"#),
        (Source::Harbor, DOCKER_HUB_PUSH),
        (Source::Quay, HARBOR_PUSH),
        (Source::Distribution, QUAY_PUSH),
        (Source::Generic, QUAY_PUSH),
    ] {
        assert_eq!(
            parse(source, body.as_bytes()).unwrap_err().status(),
            400,
            "{source}"
        );
    }
    let form = parse(Source::GitHub, b"payload=%7B%7D").unwrap_err();
    assert!(form.to_string().contains("application/json"), "{form}");
}

#[test]
fn source_from_url_segment() {
    for source in Source::ALL {
        assert_eq!(source.as_str().parse::<Source>().unwrap(), source);
    }
    assert_eq!("GitHub".parse::<Source>().unwrap(), Source::GitHub);
    let err = "gitlab".parse::<Source>().unwrap_err();
    assert_eq!(err.status(), 404);
    assert!(err.to_string().contains("dockerhub, github"));
}
