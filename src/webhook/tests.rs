use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

use super::*;

const SECRET: &str = "s3cr3t-webhook-value";

fn secret() -> Authentication {
    Authentication::Secret(Secret::new(SECRET))
}

fn sign(key: &str, body: &[u8]) -> String {
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(key.as_bytes()).unwrap();
    mac.update(body);
    let hex: String = mac
        .finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("sha256={hex}")
}

fn headers(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(n, v)| (n.to_string(), v.to_string()))
        .collect()
}

fn events(source: Source, body: &str) -> Vec<(String, Option<String>)> {
    parse(source, body.as_bytes())
        .unwrap()
        .into_iter()
        .map(|e| (e.image.normalized(), e.tag))
        .collect()
}

fn one(image: &str, tag: Option<&str>) -> Vec<(String, Option<String>)> {
    vec![(image.to_string(), tag.map(str::to_string))]
}

// ------------------------------------------------------------ sample payloads

const DOCKER_HUB_PUSH: &str = r#"{
  "callback_url": "https://registry.hub.docker.com/u/acme/app/hook/2141b5bi5i5b02bec211i4eeih0242eg11000a/",
  "push_data": {
    "pushed_at": 1767225600,
    "pusher": "ci-bot",
    "tag": "1.2.3"
  },
  "repository": {
    "comment_count": 0,
    "date_created": 1700000000,
    "description": "",
    "is_official": false,
    "is_private": true,
    "name": "app",
    "namespace": "acme",
    "owner": "acme",
    "repo_name": "acme/app",
    "repo_url": "https://hub.docker.com/r/acme/app",
    "star_count": 3,
    "status": "Active"
  }
}"#;

const GITHUB_PACKAGE_PUBLISHED: &str = r#"{
  "action": "published",
  "package": {
    "id": 4242,
    "name": "app",
    "namespace": "acme",
    "ecosystem": "CONTAINER",
    "package_type": "CONTAINER",
    "html_url": "https://github.com/orgs/Acme/packages/container/package/app",
    "owner": {"login": "Acme", "id": 1, "type": "Organization"},
    "package_version": {
      "id": 99,
      "version": "sha256:1111111111111111111111111111111111111111111111111111111111111111",
      "name": "sha256:1111111111111111111111111111111111111111111111111111111111111111",
      "container_metadata": {
        "tag": {"name": "1.2.3", "digest": "sha256:1111111111111111111111111111111111111111111111111111111111111111"},
        "labels": {},
        "manifest": {}
      },
      "package_url": "ghcr.io/acme/app:1.2.3"
    },
    "registry": {"name": "GitHub CONTAINER registry", "url": "https://ghcr.io/acme", "type": "CONTAINER"}
  },
  "organization": {"login": "Acme"},
  "sender": {"login": "ci-bot", "id": 7}
}"#;

const GITHUB_REGISTRY_PACKAGE: &str = r#"{
  "action": "published",
  "registry_package": {
    "id": 4243,
    "name": "Tools",
    "package_type": "container",
    "owner": {"login": "Some-User", "id": 2, "type": "User"},
    "package_version": {
      "container_metadata": {"tag": {"name": "v2.0.0", "digest": "sha256:2222222222222222222222222222222222222222222222222222222222222222"}}
    }
  },
  "sender": {"login": "Some-User"}
}"#;

const GITHUB_NPM_PACKAGE: &str = r#"{
  "action": "published",
  "package": {"name": "left-pad", "namespace": "acme", "package_type": "npm",
              "package_version": {"version": "1.0.0"}},
  "sender": {"login": "ci-bot"}
}"#;

const GITHUB_PING: &str = r#"{
  "zen": "Keep it logically awesome.",
  "hook_id": 123456,
  "hook": {"type": "Organization", "id": 123456, "events": ["package"], "config": {"content_type": "json"}},
  "sender": {"login": "ci-bot"}
}"#;

const HARBOR_PUSH: &str = r#"{
  "type": "PUSH_ARTIFACT",
  "occur_at": 1767225600,
  "operator": "robot$ci",
  "event_data": {
    "resources": [
      {
        "digest": "sha256:3333333333333333333333333333333333333333333333333333333333333333",
        "tag": "1.2.3",
        "resource_url": "harbor.example.com/library/app:1.2.3"
      },
      {
        "digest": "sha256:3333333333333333333333333333333333333333333333333333333333333333",
        "tag": "latest",
        "resource_url": "harbor.example.com/library/app:latest"
      }
    ],
    "repository": {
      "date_created": 1700000000,
      "name": "app",
      "namespace": "library",
      "repo_full_name": "library/app",
      "repo_type": "private"
    }
  }
}"#;

const HARBOR_SCAN: &str = r#"{
  "type": "SCANNING_COMPLETED",
  "occur_at": 1767225600,
  "operator": "auto",
  "event_data": {
    "resources": [{"digest": "sha256:3333333333333333333333333333333333333333333333333333333333333333",
                   "resource_url": "harbor.example.com/library/app@sha256:3333333333333333333333333333333333333333333333333333333333333333",
                   "scan_overview": {}}],
    "repository": {"repo_full_name": "library/app"}
  }
}"#;

const QUAY_PUSH: &str = r#"{
  "name": "app",
  "repository": "acme/app",
  "namespace": "acme",
  "docker_url": "quay.io/acme/app",
  "homepage": "https://quay.io/repository/acme/app",
  "updated_tags": ["1.2.3", "latest"]
}"#;

const QUAY_BUILD_QUEUED: &str = r#"{
  "build_id": "296ec063-5f86-4706-a469-f0a400bf9df2",
  "trigger_kind": "github",
  "name": "app",
  "repository": "acme/app",
  "namespace": "acme",
  "docker_url": "quay.io/acme/app",
  "docker_tags": ["main"],
  "homepage": "https://quay.io/repository/acme/app/build/296ec063"
}"#;

const DISTRIBUTION_ENVELOPE: &str = r#"{
  "events": [
    {
      "id": "320678d8-ca14-430f-8bb6-4ca139cd83f7",
      "timestamp": "2026-01-01T00:00:00Z",
      "action": "push",
      "target": {
        "mediaType": "application/octet-stream",
        "size": 2781,
        "digest": "sha256:4444444444444444444444444444444444444444444444444444444444444444",
        "length": 2781,
        "repository": "acme/app",
        "url": "http://registry.example.com:5000/v2/acme/app/blobs/sha256:4444444444444444444444444444444444444444444444444444444444444444"
      },
      "request": {"id": "a", "addr": "10.0.0.5:41234", "host": "registry.example.com:5000", "method": "PUT", "useragent": "docker/27.0"},
      "actor": {"name": "ci"},
      "source": {"addr": "registry-0:5000", "instanceID": "x"}
    },
    {
      "id": "6b7c3a2e-0000-4000-8000-000000000001",
      "timestamp": "2026-01-01T00:00:01Z",
      "action": "push",
      "target": {
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "size": 1024,
        "digest": "sha256:5555555555555555555555555555555555555555555555555555555555555555",
        "length": 1024,
        "repository": "acme/app",
        "url": "http://registry.example.com:5000/v2/acme/app/manifests/sha256:5555555555555555555555555555555555555555555555555555555555555555",
        "tag": "1.2.3"
      },
      "request": {"id": "b", "addr": "10.0.0.5:41234", "host": "registry.example.com:5000", "method": "PUT", "useragent": "docker/27.0"},
      "actor": {"name": "ci"},
      "source": {"addr": "registry-0:5000", "instanceID": "x"}
    },
    {
      "id": "6b7c3a2e-0000-4000-8000-000000000002",
      "timestamp": "2026-01-01T00:00:02Z",
      "action": "pull",
      "target": {
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "repository": "acme/other",
        "tag": "9.9.9",
        "digest": "sha256:5555555555555555555555555555555555555555555555555555555555555555"
      },
      "request": {"host": "registry.example.com:5000", "method": "GET"}
    },
    {
      "id": "6b7c3a2e-0000-4000-8000-000000000003",
      "timestamp": "2026-01-01T00:00:03Z",
      "action": "push",
      "target": {
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "repository": "acme/app",
        "tag": "1.2.3",
        "digest": "sha256:5555555555555555555555555555555555555555555555555555555555555555"
      },
      "request": {"host": "registry.example.com:5000", "method": "PUT"}
    }
  ]
}"#;

// ------------------------------------------------------------------- parsing

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

// ------------------------------------------------------------ authentication

#[test]
fn hmac_test_vector() {
    let body = br#"{"image": "ghcr.io/acme/app", "tag": "1.2.3"}"#;
    let signature = sign(SECRET, body);
    for (source, header) in [
        (Source::GitHub, "x-hub-signature-256"),
        (Source::Generic, "x-tidewatch-signature-256"),
        (Source::Distribution, "x-tidewatch-signature-256"),
    ] {
        let h = headers(&[(header, &signature)]);
        let request = Request {
            headers: &h,
            query: None,
            body,
        };
        authenticate(source, &secret(), &request).unwrap();

        let mut changed = body.to_vec();
        changed[10] ^= 1;
        let request = Request {
            headers: &h,
            query: None,
            body: &changed,
        };
        let err = authenticate(source, &secret(), &request).unwrap_err();
        assert_eq!(err.status(), 401, "{source}");
        assert!(matches!(err, WebhookError::BadSignature { .. }), "{err}");
    }
    // Upper-case hex is fine; a truncated or non-hex digest is not.
    let h = headers(&[(
        "x-hub-signature-256",
        &signature.to_uppercase().replace("SHA256=", "sha256="),
    )]);
    authenticate(
        Source::GitHub,
        &secret(),
        &Request {
            headers: &h,
            query: None,
            body,
        },
    )
    .unwrap();
    for bad in [
        &signature[..signature.len() - 2],
        "sha256=zz",
        "sha1=00",
        "00",
    ] {
        let h = headers(&[("x-hub-signature-256", bad)]);
        let err = authenticate(
            Source::GitHub,
            &secret(),
            &Request {
                headers: &h,
                query: None,
                body,
            },
        )
        .unwrap_err();
        assert_eq!(err.status(), 401, "{bad}");
    }
}

#[test]
fn github_full_request() {
    let body = GITHUB_PACKAGE_PUBLISHED.as_bytes();
    let h = headers(&[
        ("x-github-event", "package"),
        ("content-type", "application/json"),
        ("x-hub-signature-256", &sign(SECRET, body)),
    ]);
    let found = handle(
        Source::GitHub,
        &secret(),
        &Request {
            headers: &h,
            query: None,
            body,
        },
    )
    .unwrap();
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].image.normalized(), "ghcr.io/acme/app");
    // Signed with another secret.
    let h = headers(&[("x-hub-signature-256", &sign("other", body))]);
    let err = handle(
        Source::GitHub,
        &secret(),
        &Request {
            headers: &h,
            query: None,
            body,
        },
    )
    .unwrap_err();
    assert_eq!(err.status(), 401);
    // A bearer token is not a GitHub credential.
    let bearer = format!("Bearer {SECRET}");
    let h = headers(&[("authorization", &bearer)]);
    let err = handle(
        Source::GitHub,
        &secret(),
        &Request {
            headers: &h,
            query: None,
            body,
        },
    )
    .unwrap_err();
    assert!(
        matches!(err, WebhookError::MissingCredentials { .. }),
        "{err}"
    );
}

#[test]
fn tokens_for_registries_without_hmac() {
    let bearer = format!("Bearer {SECRET}");
    let query = format!("foo=bar&token={SECRET}");
    for (source, body) in [
        (Source::DockerHub, DOCKER_HUB_PUSH),
        (Source::Harbor, HARBOR_PUSH),
        (Source::Quay, QUAY_PUSH),
    ] {
        let body = body.as_bytes();
        let none = headers(&[]);
        let with_bearer = headers(&[("authorization", &bearer)]);
        // Query token, bearer, or both.
        for (h, q) in [
            (&none, Some(query.as_str())),
            (&with_bearer, None),
            (&with_bearer, Some(query.as_str())),
        ] {
            let found = handle(
                source,
                &secret(),
                &Request {
                    headers: h,
                    query: q,
                    body,
                },
            )
            .unwrap();
            assert!(!found.is_empty(), "{source}");
        }
        // Missing, wrong, and one right next to one wrong.
        let wrong_bearer = headers(&[("authorization", "Bearer nope")]);
        for (h, q) in [
            (&none, None),
            (&none, Some("foo=bar")),
            (&none, Some("token=nope")),
            (&none, Some("token=%ZZ")),
            (&none, Some(&format!("token={SECRET}x")[..])),
            (&wrong_bearer, None),
            (&wrong_bearer, Some(query.as_str())),
            (&with_bearer, Some("token=nope")),
        ] {
            let err = handle(
                source,
                &secret(),
                &Request {
                    headers: h,
                    query: q,
                    body,
                },
            )
            .unwrap_err();
            assert_eq!(err.status(), 401, "{source} {q:?}: {err}");
        }
    }
    // Percent-encoded tokens are decoded.
    let odd = Authentication::Secret(Secret::new("a/b=c d"));
    let none = headers(&[]);
    let request = Request {
        headers: &none,
        query: Some("token=a%2Fb%3Dc%20d"),
        body: b"",
    };
    authenticate(Source::Quay, &odd, &request).unwrap();
}

#[test]
fn bearer_for_generic_and_distribution() {
    let body = br#"{"image": "ghcr.io/acme/app"}"#;
    let bearer = format!("Bearer {SECRET}");
    let h = headers(&[("authorization", &bearer)]);
    handle(
        Source::Generic,
        &secret(),
        &Request {
            headers: &h,
            query: None,
            body,
        },
    )
    .unwrap();
    let h = headers(&[("Authorization", &format!("bearer  {SECRET}"))]);
    handle(
        Source::Generic,
        &secret(),
        &Request {
            headers: &h,
            query: None,
            body,
        },
    )
    .unwrap();
    // The query token is not accepted for these sources.
    let none = headers(&[]);
    let q = format!("token={SECRET}");
    let err = handle(
        Source::Generic,
        &secret(),
        &Request {
            headers: &none,
            query: Some(&q),
            body,
        },
    )
    .unwrap_err();
    assert!(
        matches!(err, WebhookError::MissingCredentials { .. }),
        "{err}"
    );
    // A right bearer does not excuse a wrong signature.
    let h = headers(&[
        ("authorization", &bearer),
        ("x-tidewatch-signature-256", &sign("x", body)),
    ]);
    let err = handle(
        Source::Distribution,
        &secret(),
        &Request {
            headers: &h,
            query: None,
            body,
        },
    )
    .unwrap_err();
    assert_eq!(err.status(), 401);
    // Other schemes are not credentials.
    let h = headers(&[("authorization", &format!("Basic {SECRET}"))]);
    let err = handle(
        Source::Distribution,
        &secret(),
        &Request {
            headers: &h,
            query: None,
            body,
        },
    )
    .unwrap_err();
    assert_eq!(err.status(), 401);
}

#[test]
fn disabled_authentication_skips_checks() {
    let none = headers(&[]);
    let request = Request {
        headers: &none,
        query: None,
        body: QUAY_PUSH.as_bytes(),
    };
    assert_eq!(
        handle(Source::Quay, &Authentication::Disabled, &request)
            .unwrap()
            .len(),
        2
    );
    for source in Source::ALL {
        authenticate(source, &Authentication::Disabled, &request).unwrap();
        assert_eq!(
            authenticate(source, &secret(), &request)
                .unwrap_err()
                .status(),
            401
        );
    }
}

#[test]
fn empty_secret_is_refused() {
    let empty = Authentication::Secret(Secret::new(""));
    let h = headers(&[("authorization", "Bearer ")]);
    let request = Request {
        headers: &h,
        query: Some("token="),
        body: b"{}",
    };
    let err = authenticate(Source::Harbor, &empty, &request).unwrap_err();
    assert_eq!(err.status(), 500);
}

#[test]
fn body_over_limit_is_413_before_auth_and_parsing() {
    let body = vec![b'x'; MAX_BODY + 1];
    let none = headers(&[]);
    // Neither authenticated nor JSON: the size check comes first.
    let err = handle(
        Source::Generic,
        &secret(),
        &Request {
            headers: &none,
            query: None,
            body: &body,
        },
    )
    .unwrap_err();
    assert_eq!(err.status(), 413);
    assert!(matches!(err, WebhookError::BodyTooLarge { .. }));
    // Exactly the limit passes the size check (then fails auth).
    let err = handle(
        Source::Generic,
        &secret(),
        &Request {
            headers: &none,
            query: None,
            body: &body[..MAX_BODY],
        },
    )
    .unwrap_err();
    assert_eq!(err.status(), 401);
}

#[test]
fn auth_comes_before_parsing() {
    let none = headers(&[]);
    let err = handle(
        Source::Generic,
        &secret(),
        &Request {
            headers: &none,
            query: None,
            body: b"not json",
        },
    )
    .unwrap_err();
    assert_eq!(err.status(), 401);
}

#[test]
fn secret_never_appears_in_debug_or_errors() {
    let auth = secret();
    assert!(!format!("{auth:?}").contains(SECRET));
    let bearer = format!("Bearer {SECRET}");
    let h = headers(&[("authorization", &bearer)]);
    let q = format!("token={SECRET}");
    let request = Request {
        headers: &h,
        query: Some(&q),
        body: b"{}",
    };
    assert!(!format!("{request:?}").contains(SECRET));

    let mut errors = Vec::new();
    let wrong = Authentication::Secret(Secret::new("different-secret"));
    for source in Source::ALL {
        // Requests that carry the secret but fail for another reason.
        let wrong_auth = authenticate(source, &wrong, &request).unwrap_err();
        errors.push(wrong_auth);
        let sig = headers(&[
            ("x-hub-signature-256", SECRET),
            ("x-tidewatch-signature-256", SECRET),
        ]);
        if let Err(e) = authenticate(
            source,
            &auth,
            &Request {
                headers: &sig,
                query: None,
                body: b"{}",
            },
        ) {
            errors.push(e);
        }
        let bad_token = format!("token={SECRET}x");
        let none = headers(&[]);
        if let Err(e) = authenticate(
            source,
            &auth,
            &Request {
                headers: &none,
                query: Some(&bad_token),
                body: b"{}",
            },
        ) {
            errors.push(e);
        }
    }
    assert!(errors.len() > 12);
    for err in errors {
        assert_eq!(err.status(), 401);
        assert!(!err.to_string().contains(SECRET), "{err}");
        assert!(!format!("{err:?}").contains(SECRET), "{err:?}");
    }
}
