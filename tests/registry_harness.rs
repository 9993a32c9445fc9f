//! Self-tests of the registry test harness in `tests/support/`: a real
//! `docker-registry` in every auth mode, the token issuer, and the
//! paginating / fault-injecting proxy. These talk HTTP with plain reqwest so
//! that they check the harness, not tidewatch's own registry client.

mod support;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use reqwest::header::{ACCEPT, LINK, RETRY_AFTER, WWW_AUTHENTICATE};
use reqwest::StatusCode;
use serde_json::Value;

use support::proxy::{Fault, ProxyBehavior, TestProxy};
use support::registry::{AuthMode, TestRegistry, OCI_INDEX, OCI_MANIFEST};
use support::token::TokenIssuer;

/// `tags` of a `tags/list` answer, sorted (the registry's order is random).
fn sorted_tags(listing: &Value) -> Vec<String> {
    let mut tags: Vec<String> = listing["tags"]
        .as_array()
        .expect("tags array")
        .iter()
        .map(|t| t.as_str().expect("tag string").to_owned())
        .collect();
    tags.sort();
    tags
}

async fn get_json(request: reqwest::RequestBuilder) -> Value {
    let response = request.send().await.expect("send");
    let status = response.status();
    let body = response.text().await.expect("body");
    assert_eq!(status, StatusCode::OK, "{body}");
    serde_json::from_str(&body).expect("JSON body")
}

/// The quoted parameters of a `Bearer realm="..",service="..",scope=".."`
/// challenge. Good enough for the registry's own (comma-free) values.
fn challenge_params(challenge: &str) -> Vec<(String, String)> {
    let params = challenge.strip_prefix("Bearer ").expect("Bearer challenge");
    params
        .split("\",")
        .map(|param| {
            let (key, value) = param.split_once('=').expect("key=value");
            (key.to_owned(), value.trim_matches('"').to_owned())
        })
        .collect()
}

/// The target of a `Link: <...>; rel="next"` header.
fn next_link(response: &reqwest::Response) -> Option<String> {
    let link = response.headers().get(LINK)?.to_str().expect("ASCII Link");
    assert!(link.ends_with("rel=\"next\""), "{link}");
    let start = link.find('<')? + 1;
    let end = link.find('>')?;
    Some(link[start..end].to_owned())
}

#[tokio::test(flavor = "multi_thread")]
async fn anonymous_registry_lists_pushed_tags_and_reports_the_digest() {
    let registry = TestRegistry::start(AuthMode::Anonymous).await;
    let digest = registry
        .push_image(
            "harness/anon",
            &["1.0.0", "1.1.0"],
            "2024-01-02T03:04:05Z",
            1,
        )
        .await;
    assert!(
        digest.starts_with("sha256:") && digest.len() == 71,
        "{digest}"
    );

    let client = support::http_client();
    let base = registry.base_url();
    let listing = get_json(client.get(format!("{base}/v2/harness/anon/tags/list"))).await;
    assert_eq!(listing["name"], "harness/anon");
    assert_eq!(sorted_tags(&listing), ["1.0.0", "1.1.0"]);

    let head = client
        .head(format!("{base}/v2/harness/anon/manifests/1.0.0"))
        .header(ACCEPT, OCI_MANIFEST)
        .send()
        .await
        .expect("HEAD manifest");
    assert_eq!(head.status(), StatusCode::OK);
    assert_eq!(head.headers()["docker-content-digest"], digest.as_str());

    // The manifest really carries the config we asked for.
    let manifest = get_json(
        client
            .get(format!("{base}/v2/harness/anon/manifests/1.1.0"))
            .header(ACCEPT, OCI_MANIFEST),
    )
    .await;
    let config_digest = manifest["config"]["digest"]
        .as_str()
        .expect("config digest");
    let config =
        get_json(client.get(format!("{base}/v2/harness/anon/blobs/{config_digest}"))).await;
    assert_eq!(config["created"], "2024-01-02T03:04:05Z");
    assert_eq!(config["architecture"], "amd64");
    assert_eq!(config["os"], "linux");

    // A different seed gives a different image.
    let other = registry
        .push_image("harness/anon", &["2.0.0"], "2024-01-02T03:04:05Z", 2)
        .await;
    assert_ne!(other, digest);
}

#[tokio::test(flavor = "multi_thread")]
async fn htpasswd_registry_requires_basic_auth() {
    let registry = TestRegistry::start(AuthMode::Htpasswd {
        user: "alice".into(),
        password: "s3cret".into(),
    })
    .await;
    registry
        .push_image("harness/basic", &["v1"], "2024-01-01T00:00:00Z", 1)
        .await;

    let client = support::http_client();
    let url = format!("{}/v2/harness/basic/tags/list", registry.base_url());
    let anonymous = client.get(&url).send().await.expect("GET");
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);
    let challenge = anonymous.headers()[WWW_AUTHENTICATE].to_str().unwrap();
    assert!(challenge.starts_with("Basic "), "{challenge}");

    let wrong = client
        .get(&url)
        .basic_auth("alice", Some("nope"))
        .send()
        .await
        .expect("GET");
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);

    let listing = get_json(client.get(&url).basic_auth("alice", Some("s3cret"))).await;
    assert_eq!(sorted_tags(&listing), ["v1"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn token_registry_challenges_and_accepts_issued_tokens() {
    let issuer = TokenIssuer::start(None).await;
    let registry = TestRegistry::start(AuthMode::Token(issuer.clone())).await;
    registry
        .push_image("team/app", &["v1", "v2"], "2024-01-01T00:00:00Z", 1)
        .await;
    // Harness pushes mint tokens directly; they are not client traffic.
    assert!(issuer.requests().is_empty());
    assert_eq!(issuer.token_count(), 0);

    let client = support::http_client();
    let url = format!("{}/v2/team/app/tags/list", registry.base_url());
    let anonymous = client.get(&url).send().await.expect("GET");
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);
    let challenge = anonymous.headers()[WWW_AUTHENTICATE]
        .to_str()
        .unwrap()
        .to_owned();
    let params = challenge_params(&challenge);
    let param = |key: &str| {
        params
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.clone())
            .unwrap_or_else(|| panic!("no {key} in {challenge}"))
    };
    assert_eq!(param("realm"), issuer.url);
    assert_eq!(param("service"), issuer.service);
    assert_eq!(param("scope"), "repository:team/app:pull");

    let grant = get_json(
        client
            .get(param("realm"))
            .query(&[("service", param("service")), ("scope", param("scope"))]),
    )
    .await;
    let token = grant["token"].as_str().expect("token");
    assert_eq!(grant["access_token"], token);
    assert_eq!(grant["expires_in"], 300);
    assert!(grant["issued_at"]
        .as_str()
        .expect("issued_at")
        .ends_with('Z'));

    let listing = get_json(client.get(&url).bearer_auth(token)).await;
    assert_eq!(sorted_tags(&listing), ["v1", "v2"]);

    let requests = issuer.requests();
    assert_eq!(requests.len(), 1, "{requests:?}");
    assert_eq!(requests[0].scopes, ["repository:team/app:pull"]);
    assert_eq!(
        requests[0].service.as_deref(),
        Some(issuer.service.as_str())
    );
    assert_eq!(issuer.token_count(), 1);

    // The token grants exactly what was asked: not another repository...
    registry
        .push_image("team/other", &["v1"], "2024-01-01T00:00:00Z", 1)
        .await;
    let other = client
        .get(format!("{}/v2/team/other/tags/list", registry.base_url()))
        .bearer_auth(token)
        .send()
        .await
        .expect("GET");
    assert_eq!(other.status(), StatusCode::UNAUTHORIZED);
    // ...and not push.
    let push = client
        .post(format!(
            "{}/v2/team/app/blobs/uploads/",
            registry.base_url()
        ))
        .bearer_auth(token)
        .send()
        .await
        .expect("POST");
    assert_eq!(push.status(), StatusCode::UNAUTHORIZED);
    // A token that is not signed by the issuer's key is refused.
    let (signed, _signature) = token.rsplit_once('.').unwrap();
    let forged = format!("{signed}.AAAA");
    let forged = client
        .get(&url)
        .bearer_auth(forged)
        .send()
        .await
        .expect("GET");
    assert_eq!(forged.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test(flavor = "multi_thread")]
async fn token_issuer_with_credentials_requires_basic_auth() {
    let issuer = TokenIssuer::start(Some(("bob".into(), "hunter2".into()))).await;
    let client = support::http_client();
    let query = [
        ("service", issuer.service.as_str()),
        ("scope", "repository:a/b:pull"),
    ];

    let refused = client
        .get(&issuer.url)
        .query(&query)
        .send()
        .await
        .expect("GET");
    assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);
    let wrong = client
        .get(&issuer.url)
        .query(&query)
        .basic_auth("bob", Some("wrong"))
        .send()
        .await
        .expect("GET");
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(issuer.token_count(), 0);

    let grant = get_json(
        client
            .get(&issuer.url)
            .query(&query)
            .query(&[("scope", "repository:c/d:pull,push")])
            .basic_auth("bob", Some("hunter2")),
    )
    .await;
    assert!(grant["token"]
        .as_str()
        .is_some_and(|t| t.split('.').count() == 3));
    assert_eq!(issuer.token_count(), 1);
    let requests = issuer.requests();
    assert_eq!(requests.len(), 3);
    assert_eq!(
        requests[2].scopes,
        ["repository:a/b:pull", "repository:c/d:pull,push"]
    );
    assert_eq!(requests[2].basic_user.as_deref(), Some("bob"));
    assert_eq!(requests[0].basic_user, None);
}

#[tokio::test(flavor = "multi_thread")]
async fn push_many_tags_creates_thousands_of_tags() {
    let registry = TestRegistry::start(AuthMode::Anonymous).await;
    let started = Instant::now();
    let digest = registry.push_many_tags("harness/many", "t", 2500).await;
    eprintln!("push_many_tags(2500) took {:?}", started.elapsed());

    let client = support::http_client();
    let listing =
        get_json(client.get(format!("{}/v2/harness/many/tags/list", registry.base_url()))).await;
    let tags: BTreeSet<String> = sorted_tags(&listing).into_iter().collect();
    let expected: BTreeSet<String> = (0..2500).map(|i| format!("t{i}")).collect();
    assert_eq!(tags, expected);

    let head = client
        .head(format!(
            "{}/v2/harness/many/manifests/t2499",
            registry.base_url()
        ))
        .header(ACCEPT, OCI_MANIFEST)
        .send()
        .await
        .expect("HEAD");
    assert_eq!(head.headers()["docker-content-digest"], digest.as_str());
}

#[tokio::test(flavor = "multi_thread")]
async fn proxy_paginates_with_link_headers() {
    const TAGS: usize = 2500;
    let registry = TestRegistry::start(AuthMode::Anonymous).await;
    registry.push_many_tags("harness/paged", "tag-", TAGS).await;
    let proxy = TestProxy::start(
        &registry.base_url(),
        ProxyBehavior {
            page_size: Some(100),
            send_link: true,
            ..ProxyBehavior::default()
        },
    )
    .await;

    let client = support::http_client();
    let mut url = format!("{}/v2/harness/paged/tags/list", proxy.base_url());
    let mut collected = Vec::new();
    let mut pages = 0;
    loop {
        let response = client.get(&url).send().await.expect("GET page");
        assert_eq!(response.status(), StatusCode::OK);
        let next = next_link(&response);
        let page: Value = response.json().await.expect("JSON page");
        let tags = sorted_tags(&page);
        pages += 1;
        if pages == 1 {
            assert_eq!(tags.len(), 100);
            assert!(next.is_some(), "first page must carry a Link");
        }
        collected.extend(tags);
        match next {
            Some(next) => url = format!("{}{next}", proxy.base_url()),
            None => break,
        }
        assert!(pages <= TAGS / 100 + 1, "pagination does not end");
    }
    assert_eq!(pages, TAGS / 100);
    let mut expected: Vec<String> = (0..TAGS).map(|i| format!("tag-{i}")).collect();
    expected.sort();
    assert_eq!(collected, expected, "pages are sorted and complete");

    // A client's smaller n is honoured and echoed in the Link; a bigger one
    // is capped.
    let small = client
        .get(format!(
            "{}/v2/harness/paged/tags/list?n=7",
            proxy.base_url()
        ))
        .send()
        .await
        .expect("GET");
    let link = next_link(&small).expect("Link");
    assert_eq!(
        link,
        format!("/v2/harness/paged/tags/list?last={}&n=7", expected[6])
    );
    assert_eq!(sorted_tags(&small.json().await.unwrap()), expected[..7]);
    let big = get_json(client.get(format!(
        "{}/v2/harness/paged/tags/list?n=1000",
        proxy.base_url()
    )))
    .await;
    assert_eq!(sorted_tags(&big).len(), 100);

    let seen = proxy.requests();
    assert_eq!(seen.len(), pages + 2);
    assert!(seen.iter().all(|r| r.method == "GET" && r.status == 200));
    assert_eq!(
        seen[1].path_and_query,
        format!("/v2/harness/paged/tags/list?last={}&n=100", expected[99])
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn proxy_paginates_without_link_and_can_repeat_the_first_page() {
    let registry = TestRegistry::start(AuthMode::Anonymous).await;
    registry.push_many_tags("harness/nolink", "v", 250).await;
    let mut expected: Vec<String> = (0..250).map(|i| format!("v{i}")).collect();
    expected.sort();
    let proxy = TestProxy::start(
        &registry.base_url(),
        ProxyBehavior {
            page_size: Some(100),
            send_link: false,
            repeat_first_page: false,
        },
    )
    .await;
    let client = support::http_client();
    let url = format!("{}/v2/harness/nolink/tags/list", proxy.base_url());

    let first = client.get(&url).send().await.expect("GET");
    assert!(first.headers().get(LINK).is_none());
    assert_eq!(sorted_tags(&first.json().await.unwrap()), expected[..100]);
    let third = get_json(client.get(&url).query(&[("last", &expected[199])])).await;
    assert_eq!(sorted_tags(&third), expected[200..]);

    proxy.set_behavior(ProxyBehavior {
        page_size: Some(100),
        send_link: true,
        repeat_first_page: true,
    });
    let again = client
        .get(&url)
        .query(&[("last", &expected[99])])
        .send()
        .await
        .expect("GET");
    assert_eq!(
        next_link(&again).expect("Link"),
        format!("/v2/harness/nolink/tags/list?last={}&n=100", expected[99])
    );
    assert_eq!(sorted_tags(&again.json().await.unwrap()), expected[..100]);
}

#[tokio::test(flavor = "multi_thread")]
async fn proxy_injects_faults_then_resumes_forwarding() {
    let registry = TestRegistry::start(AuthMode::Anonymous).await;
    registry
        .push_image("harness/faulty", &["1.0"], "2024-01-01T00:00:00Z", 1)
        .await;
    let proxy = TestProxy::start(&registry.base_url(), ProxyBehavior::default()).await;
    let client = support::http_client();
    let url = format!("{}/v2/harness/faulty/tags/list", proxy.base_url());

    proxy.inject(
        "/v2/",
        vec![Fault::Status {
            status: 429,
            retry_after: Some("1".into()),
        }],
    );
    let limited = client.get(&url).send().await.expect("GET");
    assert_eq!(limited.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(limited.headers()[RETRY_AFTER], "1");
    let ok = get_json(client.get(&url)).await;
    assert_eq!(sorted_tags(&ok), ["1.0"]);
    let statuses: Vec<u16> = proxy.requests().iter().map(|r| r.status).collect();
    assert_eq!(statuses, [429, 200]);

    // Faults only hit matching paths, and the other kinds work too.
    proxy.clear_requests();
    proxy.inject(
        "/v2/harness/faulty/tags/",
        vec![Fault::Garbage, Fault::Hang(Duration::from_millis(400))],
    );
    let base = client
        .get(format!("{}/v2/", proxy.base_url()))
        .send()
        .await
        .expect("GET");
    assert_eq!(base.status(), StatusCode::OK);
    let garbage = client.get(&url).send().await.expect("GET");
    assert_eq!(garbage.status(), StatusCode::OK);
    let body = garbage.text().await.unwrap();
    assert!(serde_json::from_str::<Value>(&body).is_err(), "{body}");
    let started = Instant::now();
    let slow = get_json(client.get(&url)).await;
    assert!(started.elapsed() >= Duration::from_millis(400));
    assert_eq!(sorted_tags(&slow), ["1.0"]);
    assert_eq!(proxy.requests().len(), 3);

    // HEAD through the proxy keeps the upstream's headers.
    let head = client
        .head(format!(
            "{}/v2/harness/faulty/manifests/1.0",
            proxy.base_url()
        ))
        .header(ACCEPT, OCI_MANIFEST)
        .send()
        .await
        .expect("HEAD");
    assert_eq!(head.status(), StatusCode::OK);
    assert!(head.headers().contains_key("docker-content-digest"));
    assert_ne!(head.headers()["content-length"], "0");
}

#[tokio::test(flavor = "multi_thread")]
async fn token_auth_flows_through_the_paginating_proxy() {
    let issuer = TokenIssuer::start(None).await;
    let registry = TestRegistry::start(AuthMode::Token(issuer.clone())).await;
    registry.push_many_tags("team/big", "r", 30).await;
    let proxy = TestProxy::start(
        &registry.base_url(),
        ProxyBehavior {
            page_size: Some(10),
            send_link: true,
            ..ProxyBehavior::default()
        },
    )
    .await;
    let client = support::http_client();
    let url = format!("{}/v2/team/big/tags/list", proxy.base_url());

    let anonymous = client.get(&url).send().await.expect("GET");
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);
    let challenge = anonymous.headers()[WWW_AUTHENTICATE].to_str().unwrap();
    assert!(
        challenge.contains(&format!("realm=\"{}\"", issuer.url)),
        "{challenge}"
    );

    let token = issuer.mint_token(&["repository:team/big:pull"]).await;
    let page = client
        .get(&url)
        .bearer_auth(&token)
        .send()
        .await
        .expect("GET");
    assert_eq!(page.status(), StatusCode::OK);
    assert!(next_link(&page).is_some());
    assert_eq!(sorted_tags(&page.json().await.unwrap()).len(), 10);
}

#[tokio::test(flavor = "multi_thread")]
async fn push_index_stores_an_oci_index_over_each_platform() {
    let registry = TestRegistry::start(AuthMode::Anonymous).await;
    let digest = registry
        .push_index(
            "harness/multi",
            "1.0",
            &[
                ("linux", "amd64", "2024-03-01T00:00:00Z"),
                ("linux", "arm64", "2024-03-02T00:00:00Z"),
            ],
            7,
        )
        .await;

    let client = support::http_client();
    let response = client
        .get(format!(
            "{}/v2/harness/multi/manifests/1.0",
            registry.base_url()
        ))
        .header(ACCEPT, format!("{OCI_INDEX}, {OCI_MANIFEST}"))
        .send()
        .await
        .expect("GET index");
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["docker-content-digest"], digest.as_str());
    assert_eq!(response.headers()["content-type"], OCI_INDEX);
    let body = response.bytes().await.unwrap();
    assert_eq!(support::sha256_digest(&body), digest);
    let index: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(index["mediaType"], OCI_INDEX);
    let manifests = index["manifests"].as_array().expect("manifests");
    assert_eq!(manifests.len(), 2);
    let platforms: Vec<(&str, &str)> = manifests
        .iter()
        .map(|m| {
            (
                m["platform"]["os"].as_str().unwrap(),
                m["platform"]["architecture"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(platforms, [("linux", "amd64"), ("linux", "arm64")]);

    // Each child is a real manifest whose config has that platform's date.
    let arm = manifests[1]["digest"].as_str().unwrap();
    let manifest = get_json(
        client
            .get(format!(
                "{}/v2/harness/multi/manifests/{arm}",
                registry.base_url()
            ))
            .header(ACCEPT, OCI_MANIFEST),
    )
    .await;
    let config_digest = manifest["config"]["digest"].as_str().unwrap();
    let config = get_json(client.get(format!(
        "{}/v2/harness/multi/blobs/{config_digest}",
        registry.base_url()
    )))
    .await;
    assert_eq!(config["architecture"], "arm64");
    assert_eq!(config["created"], "2024-03-02T00:00:00Z");
}

#[tokio::test(flavor = "multi_thread")]
async fn stopped_registry_refuses_connections_and_restart_keeps_storage() {
    let mut registry = TestRegistry::start(AuthMode::Anonymous).await;
    registry
        .push_image("harness/durable", &["1", "2"], "2024-01-01T00:00:00Z", 1)
        .await;
    let client = support::http_client();
    let url = format!("{}/v2/harness/durable/tags/list", registry.base_url());
    let host = registry.host.clone();

    registry.stop().await;
    let error = client.get(&url).send().await.expect_err("registry is down");
    assert!(error.is_connect(), "{error:?}");

    registry.restart().await;
    assert_eq!(registry.host, host);
    let listing = get_json(client.get(&url)).await;
    assert_eq!(sorted_tags(&listing), ["1", "2"]);
}
