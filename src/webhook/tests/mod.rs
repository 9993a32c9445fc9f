//! Webhook tests: helpers and sample payloads here, parsing and
//! authentication cases in their own files.

mod auth;
mod parsing;

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
