//! The registry client against the real CNCF registry (Debian's
//! `docker-registry`), with an in-test token issuer and fault-injecting /
//! paginating proxies in front of it. No mocks of the registry itself.

mod support;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use support::proxy::{Fault, ProxyBehavior, TestProxy};
use support::registry::{AuthMode, TestRegistry};
use support::token::TokenIssuer;
use tidewatch::engine::scan::{scan, ScanTarget};
use tidewatch::policy::{Outcome, Policy, PolicySpec};
use tidewatch::reference::ImageName;
use tidewatch::registry::{Client, CredentialSource, HostSettings, RegistryError};

/// Settings for a loopback test registry: plain HTTP, quick retries.
fn fast() -> HostSettings {
    HostSettings {
        insecure: true,
        backoff: Duration::from_millis(5),
        max_retry_after: Duration::from_secs(5),
        timeout: Duration::from_secs(10),
        ..HostSettings::default()
    }
}

fn client(hosts: Vec<(&str, HostSettings)>) -> Arc<Client> {
    let settings = hosts.into_iter().map(|(h, s)| (h.to_string(), s)).collect();
    Arc::new(Client::new(settings, fast()))
}

fn image(host: &str, repo: &str) -> ImageName {
    ImageName::parse(&format!("{host}/{repo}")).unwrap()
}

fn policy(spec: PolicySpec) -> Policy {
    Policy::compile(&PolicySpec {
        exclude_defaults: true,
        ..spec
    })
    .unwrap()
}

fn semver(range: &str) -> Policy {
    policy(PolicySpec {
        semver: Some(range.into()),
        ..Default::default()
    })
}

fn target(name: &str, image: ImageName, selector: Policy) -> ScanTarget {
    ScanTarget {
        policy: name.into(),
        image,
        selector,
        platforms: Vec::new(),
    }
}

fn pick(
    results: &HashMap<String, Result<tidewatch::engine::scan::ScanResult, RegistryError>>,
    t: &ScanTarget,
) -> Option<String> {
    let result = results[&t.policy]
        .as_ref()
        .unwrap_or_else(|e| panic!("{}: {e}", t.policy));
    match t.selector.select(&result.tags, &result.metadata, None) {
        Outcome::Picked(p) => Some(p.to_string()),
        Outcome::NothingQualifies { .. } => None,
    }
}

fn sorted(mut tags: Vec<String>) -> Vec<String> {
    tags.sort();
    tags
}

#[tokio::test(flavor = "multi_thread")]
async fn anonymous_scan_sends_one_request_per_distinct_repository() {
    let reg = TestRegistry::start(AuthMode::Anonymous).await;
    reg.push_image(
        "team/app",
        &["1.0.0", "1.2.0", "2.0.0-rc.1", "latest"],
        "2024-01-01T00:00:00Z",
        1,
    )
    .await;
    reg.push_image(
        "team/worker",
        &["main-1", "main-7", "pr-9"],
        "2024-01-01T00:00:00Z",
        2,
    )
    .await;
    reg.push_image("team/web", &["1.25.0", "1.26.1"], "2024-01-01T00:00:00Z", 3)
        .await;
    let c = client(vec![(&reg.host, fast())]);
    let targets = vec![
        target("app", image(&reg.host, "team/app"), semver("^1")),
        target(
            "app-next",
            image(&reg.host, "team/app"),
            semver(">=2.0.0-0"),
        ),
        target(
            "worker",
            image(&reg.host, "team/worker"),
            policy(PolicySpec {
                pattern: Some(r"^main-(\d+)$".into()),
                extract: Some("$1".into()),
                order: Some("numerical".parse().unwrap()),
                ..Default::default()
            }),
        ),
        target("web", image(&reg.host, "team/web"), semver("~1.26")),
    ];
    let results = scan(&c, &targets).await;
    assert_eq!(pick(&results, &targets[0]).as_deref(), Some("1.2.0"));
    assert_eq!(pick(&results, &targets[1]).as_deref(), Some("2.0.0-rc.1"));
    assert_eq!(pick(&results, &targets[2]).as_deref(), Some("main-7"));
    assert_eq!(pick(&results, &targets[3]).as_deref(), Some("1.26.1"));
    // Three repositories, four policies: three requests, nothing else.
    assert_eq!(c.metrics().total(None), 3, "{:?}", c.metrics().requests());
}

#[tokio::test(flavor = "multi_thread")]
async fn htpasswd_basic_auth_from_an_environment_variable() {
    let reg = TestRegistry::start(AuthMode::Htpasswd {
        user: "robot".into(),
        password: "s3cret-basic".into(),
    })
    .await;
    reg.push_image("a/one", &["1.0.0"], "2024-01-01T00:00:00Z", 1)
        .await;
    reg.push_image("a/two", &["2.0.0"], "2024-01-01T00:00:00Z", 2)
        .await;
    std::env::set_var("TW_TEST_BASIC_OK", "robot:s3cret-basic");
    let c = client(vec![(
        &reg.host,
        HostSettings {
            credentials: Some(CredentialSource::Env("TW_TEST_BASIC_OK".into())),
            ..fast()
        },
    )]);
    assert_eq!(
        c.list_tags(&image(&reg.host, "a/one")).await.unwrap(),
        ["1.0.0"]
    );
    assert_eq!(
        c.list_tags(&image(&reg.host, "a/two")).await.unwrap(),
        ["2.0.0"]
    );
    // The challenge is learned once: one 401, then credentials up front.
    let statuses: Vec<String> = c
        .metrics()
        .requests()
        .into_iter()
        .flat_map(|r| std::iter::repeat_n(r.status, r.count as usize))
        .collect();
    assert_eq!(
        statuses.iter().filter(|s| *s == "401").count(),
        1,
        "{statuses:?}"
    );
    assert_eq!(statuses.len(), 3, "{statuses:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_wrong_password_is_a_clear_error_without_the_secret() {
    let reg = TestRegistry::start(AuthMode::Htpasswd {
        user: "robot".into(),
        password: "right".into(),
    })
    .await;
    reg.push_image("a/one", &["1.0.0"], "2024-01-01T00:00:00Z", 1)
        .await;
    std::env::set_var("TW_TEST_BASIC_WRONG", "robot:WRONG-PASSWORD-xyzzy");
    let settings = HostSettings {
        credentials: Some(CredentialSource::Env("TW_TEST_BASIC_WRONG".into())),
        ..fast()
    };
    let c = client(vec![(&reg.host, settings.clone())]);
    let err = c.list_tags(&image(&reg.host, "a/one")).await.unwrap_err();
    let shown = err.to_string();
    assert!(
        matches!(
            err,
            RegistryError::Unauthorized {
                had_credentials: true,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(
        shown.contains(&reg.host) && shown.contains("401"),
        "{shown}"
    );
    assert!(shown.contains("check the user and password"), "{shown}");
    for text in [shown, format!("{err:?}"), format!("{settings:?}")] {
        assert!(
            !text.contains("WRONG-PASSWORD-xyzzy"),
            "secret leaked: {text}"
        );
        assert!(!text.contains('\n'), "not one line: {text}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn token_auth_asks_the_issuer_for_the_right_scope_and_caches_the_token() {
    // The realm is on another host (port) than the registry, over https with
    // a test CA: it may receive the credentials.
    let issuer = TokenIssuer::start_tls(Some(("robot".into(), "tok-pass".into()))).await;
    assert!(issuer.url.starts_with("https://"));
    let reg = TestRegistry::start(AuthMode::Token(issuer.clone())).await;
    reg.push_image("team/app", &["1.0.0", "1.1.0"], "2024-01-01T00:00:00Z", 1)
        .await;
    reg.push_image("team/web", &["3.0.0"], "2024-01-01T00:00:00Z", 2)
        .await;
    issuer.clear_requests();
    std::env::set_var("TW_TEST_TOKEN_CREDS", "robot:tok-pass");
    let c = client(vec![(
        &reg.host,
        HostSettings {
            credentials: Some(CredentialSource::Env("TW_TEST_TOKEN_CREDS".into())),
            ca_file: issuer.tls_cert(),
            ..fast()
        },
    )]);
    let app = image(&reg.host, "team/app");
    assert_eq!(sorted(c.list_tags(&app).await.unwrap()), ["1.0.0", "1.1.0"]);
    assert_eq!(c.list_tags(&app).await.unwrap().len(), 2);
    assert_eq!(
        c.list_tags(&image(&reg.host, "team/web")).await.unwrap(),
        ["3.0.0"]
    );
    let scopes: Vec<Vec<String>> = issuer.requests().into_iter().map(|r| r.scopes).collect();
    assert_eq!(
        scopes,
        [
            vec!["repository:team/app:pull".to_string()],
            vec!["repository:team/web:pull".to_string()]
        ],
        "one token per repository scope, reused while valid"
    );
    assert!(issuer
        .requests()
        .iter()
        .all(|r| r.account.as_deref() == Some("robot")));
    // 1 challenge (401) + 2 tokens + 3 listings.
    assert_eq!(c.metrics().total(None), 6, "{:?}", c.metrics().requests());
}

#[tokio::test(flavor = "multi_thread")]
async fn token_auth_with_wrong_credentials_names_the_registry() {
    let issuer = TokenIssuer::start_tls(Some(("robot".into(), "tok-pass".into()))).await;
    let reg = TestRegistry::start(AuthMode::Token(issuer.clone())).await;
    reg.push_image("team/app", &["1.0.0"], "2024-01-01T00:00:00Z", 1)
        .await;
    std::env::set_var("TW_TEST_TOKEN_WRONG", "robot:nope-SECRET-77");
    let c = client(vec![(
        &reg.host,
        HostSettings {
            credentials: Some(CredentialSource::Env("TW_TEST_TOKEN_WRONG".into())),
            ca_file: issuer.tls_cert(),
            ..fast()
        },
    )]);
    let err = c
        .list_tags(&image(&reg.host, "team/app"))
        .await
        .unwrap_err();
    assert!(matches!(err, RegistryError::Unauthorized { .. }), "{err:?}");
    assert!(!format!("{err} {err:?}").contains("SECRET-77"));
}

#[tokio::test(flavor = "multi_thread")]
async fn docker_config_auths_entry_is_used() {
    let reg = TestRegistry::start(AuthMode::Htpasswd {
        user: "cfg".into(),
        password: "from-config".into(),
    })
    .await;
    reg.push_image("x/y", &["0.1.0"], "2024-01-01T00:00:00Z", 1)
        .await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config.json");
    use base64::Engine;
    let auth = base64::engine::general_purpose::STANDARD.encode("cfg:from-config");
    std::fs::write(
        &path,
        format!(
            r#"{{"auths": {{"http://{}": {{"auth": "{auth}"}}}}}}"#,
            reg.host
        ),
    )
    .unwrap();
    let c = client(vec![(
        &reg.host,
        HostSettings {
            credentials: Some(CredentialSource::DockerConfig(path)),
            ..fast()
        },
    )]);
    assert_eq!(
        c.list_tags(&image(&reg.host, "x/y")).await.unwrap(),
        ["0.1.0"]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn cred_helpers_entry_runs_the_docker_credential_helper() {
    let reg = TestRegistry::start(AuthMode::Htpasswd {
        user: "helped".into(),
        password: "by-helper".into(),
    })
    .await;
    reg.push_image("x/y", &["0.2.0"], "2024-01-01T00:00:00Z", 1)
        .await;
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("asked");
    let helper = dir.path().join("docker-credential-twtest");
    std::fs::write(
        &helper,
        format!(
            "#!/bin/sh\n[ \"$1\" = get ] || exit 1\nread server\necho \"$server\" > {}\nprintf '{{\"ServerURL\":\"%s\",\"Username\":\"helped\",\"Secret\":\"by-helper\"}}' \"$server\"\n",
            log.display()
        ),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&helper, std::fs::Permissions::from_mode(0o755)).unwrap();
    let config = dir.path().join("config.json");
    std::fs::write(
        &config,
        format!(r#"{{"credHelpers": {{"{}": "twtest"}}}}"#, reg.host),
    )
    .unwrap();
    // Helpers are found on PATH, as docker finds them. Prepending a
    // directory only adds this helper for the other tests of this binary.
    let path = std::env::var("PATH").unwrap_or_default();
    std::env::set_var("PATH", format!("{}:{path}", dir.path().display()));
    let c = client(vec![(
        &reg.host,
        HostSettings {
            credentials: Some(CredentialSource::DockerConfig(config)),
            ..fast()
        },
    )]);
    assert_eq!(
        c.list_tags(&image(&reg.host, "x/y")).await.unwrap(),
        ["0.2.0"]
    );
    assert_eq!(std::fs::read_to_string(&log).unwrap().trim(), reg.host);

    // A `credsStore` serves every registry without its own entry.
    std::fs::remove_file(&log).unwrap();
    let store = dir.path().join("store.json");
    std::fs::write(&store, r#"{"credsStore": "twtest"}"#).unwrap();
    let c = client(vec![(
        &reg.host,
        HostSettings {
            credentials: Some(CredentialSource::DockerConfig(store)),
            ..fast()
        },
    )]);
    assert_eq!(
        c.list_tags(&image(&reg.host, "x/y")).await.unwrap(),
        ["0.2.0"]
    );
    assert_eq!(std::fs::read_to_string(&log).unwrap().trim(), reg.host);
}

#[tokio::test(flavor = "multi_thread")]
async fn reads_2500_tags_across_pages_by_following_link() {
    let reg = TestRegistry::start(AuthMode::Anonymous).await;
    reg.push_many_tags("big/repo", "t", 2500).await;
    let proxy = TestProxy::start(
        &reg.base_url(),
        ProxyBehavior {
            page_size: Some(100),
            send_link: true,
            ..Default::default()
        },
    )
    .await;
    let c = client(vec![(
        &proxy.host,
        HostSettings {
            page_size: 100,
            ..fast()
        },
    )]);
    let tags = c.list_tags(&image(&proxy.host, "big/repo")).await.unwrap();
    assert_eq!(tags.len(), 2500);
    let distinct: std::collections::HashSet<_> = tags.iter().collect();
    assert_eq!(distinct.len(), 2500);
    assert_eq!(c.metrics().total(Some("tags")), 25);
}

#[tokio::test(flavor = "multi_thread")]
async fn falls_back_to_last_when_the_registry_sends_no_link() {
    let reg = TestRegistry::start(AuthMode::Anonymous).await;
    reg.push_many_tags("big/repo", "t", 2500).await;
    let proxy = TestProxy::start(
        &reg.base_url(),
        ProxyBehavior {
            page_size: Some(100),
            send_link: false,
            ..Default::default()
        },
    )
    .await;
    let c = client(vec![(
        &proxy.host,
        HostSettings {
            page_size: 100,
            ..fast()
        },
    )]);
    let tags = c.list_tags(&image(&proxy.host, "big/repo")).await.unwrap();
    assert_eq!(tags.len(), 2500);
    // 25 full pages, then one empty page that proves the end.
    assert!(
        c.metrics().total(Some("tags")) <= 26,
        "{:?}",
        c.metrics().requests()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_registry_that_repeats_a_page_cannot_make_us_loop() {
    let reg = TestRegistry::start(AuthMode::Anonymous).await;
    reg.push_many_tags("big/repo", "t", 300).await;
    let proxy = TestProxy::start(
        &reg.base_url(),
        ProxyBehavior {
            page_size: Some(100),
            send_link: true,
            repeat_first_page: true,
        },
    )
    .await;
    let c = client(vec![(
        &proxy.host,
        HostSettings {
            page_size: 100,
            ..fast()
        },
    )]);
    let tags = tokio::time::timeout(
        Duration::from_secs(20),
        c.list_tags(&image(&proxy.host, "big/repo")),
    )
    .await
    .expect("listing must terminate")
    .unwrap();
    assert_eq!(tags.len(), 100);
    assert!(c.metrics().total(Some("tags")) <= 3);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_429_with_retry_after_pauses_then_succeeds() {
    let reg = TestRegistry::start(AuthMode::Anonymous).await;
    reg.push_image("a/b", &["1.0.0"], "2024-01-01T00:00:00Z", 1)
        .await;
    let proxy = TestProxy::start(&reg.base_url(), ProxyBehavior::default()).await;
    proxy.inject(
        "/v2/",
        vec![Fault::Status {
            status: 429,
            retry_after: Some("1".into()),
        }],
    );
    let c = client(vec![(&proxy.host, fast())]);
    let started = Instant::now();
    assert_eq!(
        c.list_tags(&image(&proxy.host, "a/b")).await.unwrap(),
        ["1.0.0"]
    );
    assert!(
        started.elapsed() >= Duration::from_millis(950),
        "Retry-After not honoured: {:?}",
        started.elapsed()
    );
    let statuses: Vec<u16> = proxy.requests().iter().map(|r| r.status).collect();
    assert_eq!(statuses, [429, 200]);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_500_then_success_is_retried() {
    let reg = TestRegistry::start(AuthMode::Anonymous).await;
    reg.push_image("a/b", &["1.0.0"], "2024-01-01T00:00:00Z", 1)
        .await;
    let proxy = TestProxy::start(&reg.base_url(), ProxyBehavior::default()).await;
    let fault = |status| Fault::Status {
        status,
        retry_after: None,
    };
    proxy.inject("/v2/", vec![fault(500), fault(503)]);
    let c = client(vec![(&proxy.host, fast())]);
    assert_eq!(
        c.list_tags(&image(&proxy.host, "a/b")).await.unwrap(),
        ["1.0.0"]
    );
    let statuses: Vec<u16> = proxy.requests().iter().map(|r| r.status).collect();
    assert_eq!(statuses, [500, 503, 200]);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_registry_that_is_down_fails_only_its_own_images() {
    let mut down = TestRegistry::start(AuthMode::Anonymous).await;
    let up = TestRegistry::start(AuthMode::Anonymous).await;
    down.push_image("a/app", &["1.0.0"], "2024-01-01T00:00:00Z", 1)
        .await;
    up.push_image("b/app", &["1.0.0", "1.1.0"], "2024-01-01T00:00:00Z", 2)
        .await;
    down.stop().await;
    let c = client(vec![(&down.host, fast()), (&up.host, fast())]);
    let targets = vec![
        target("down", image(&down.host, "a/app"), semver("*")),
        target("up", image(&up.host, "b/app"), semver("*")),
    ];
    let results = scan(&c, &targets).await;
    assert_eq!(pick(&results, &targets[1]).as_deref(), Some("1.1.0"));
    let err = results["down"].as_ref().unwrap_err();
    assert!(matches!(err, RegistryError::Unreachable { .. }), "{err:?}");
    assert!(err.to_string().contains(&down.host), "{err}");
    // And it recovers when the registry is back.
    down.restart().await;
    let results = scan(&c, &targets).await;
    assert_eq!(pick(&results, &targets[0]).as_deref(), Some("1.0.0"));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_registry_stuck_on_429_does_not_hold_up_another() {
    let reg_a = TestRegistry::start(AuthMode::Anonymous).await;
    let reg_b = TestRegistry::start(AuthMode::Anonymous).await;
    reg_a
        .push_image("a/app", &["1.0.0"], "2024-01-01T00:00:00Z", 1)
        .await;
    reg_b
        .push_image("b/app", &["2.0.0"], "2024-01-01T00:00:00Z", 2)
        .await;
    let proxy = TestProxy::start(&reg_a.base_url(), ProxyBehavior::default()).await;
    let limited = |_| Fault::Status {
        status: 429,
        retry_after: Some("2".into()),
    };
    proxy.inject("/v2/", (0..3).map(limited).collect());
    let c = client(vec![
        (
            &proxy.host,
            HostSettings {
                max_attempts: 2,
                ..fast()
            },
        ),
        (&reg_b.host, fast()),
    ]);
    let started = Instant::now();
    let (image_a, image_b) = (image(&proxy.host, "a/app"), image(&reg_b.host, "b/app"));
    let b = c.list_tags(&image_b);
    let a = c.list_tags(&image_a);
    let (a, b) = tokio::join!(a, async {
        let r = b.await;
        (r, started.elapsed())
    });
    let (b, b_took) = b;
    assert_eq!(b.unwrap(), ["2.0.0"]);
    assert!(
        b_took < Duration::from_secs(1),
        "the healthy registry waited {b_took:?}"
    );
    let err = a.unwrap_err();
    assert!(matches!(err, RegistryError::RateLimited { .. }), "{err:?}");
    assert!(
        err.to_string().contains("lower `requestsPerSecond`"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn one_line_errors_for_common_failures() {
    let reg = TestRegistry::start(AuthMode::Anonymous).await;
    reg.push_image("a/b", &["1.0.0"], "2024-01-01T00:00:00Z", 1)
        .await;
    let basic = TestRegistry::start(AuthMode::Htpasswd {
        user: "u".into(),
        password: "p".into(),
    })
    .await;
    let proxy = TestProxy::start(&reg.base_url(), ProxyBehavior::default()).await;
    let c = client(vec![
        (&reg.host, fast()),
        (&basic.host, fast()),
        (&proxy.host, fast()),
        (
            "no-such-host.invalid",
            HostSettings {
                max_attempts: 1,
                ..fast()
            },
        ),
    ]);
    let tls = Arc::new(Client::new(
        HashMap::new(),
        HostSettings {
            insecure: false,
            max_attempts: 1,
            ..fast()
        },
    ));
    let mut cases: Vec<(String, RegistryError)> = Vec::new();
    cases.push((
        "cannot reach registry no-such-host.invalid".into(),
        c.list_tags(&image("no-such-host.invalid", "a/b"))
            .await
            .unwrap_err(),
    ));
    cases.push((
        format!("TLS with registry {}", reg.host),
        tls.list_tags(&image(&reg.host, "a/b")).await.unwrap_err(),
    ));
    cases.push((
        "401 Unauthorized for a/b and no credentials are configured".into(),
        c.list_tags(&image(&basic.host, "a/b")).await.unwrap_err(),
    ));
    proxy.inject(
        "/v2/",
        vec![Fault::Status {
            status: 403,
            retry_after: None,
        }],
    );
    cases.push((
        "403 Forbidden for a/b".into(),
        c.list_tags(&image(&proxy.host, "a/b")).await.unwrap_err(),
    ));
    cases.push((
        "has no repository a/missing (404)".into(),
        c.list_tags(&image(&reg.host, "a/missing"))
            .await
            .unwrap_err(),
    ));
    proxy.inject("/v2/", vec![Fault::Garbage]);
    cases.push((
        "sent malformed data for the tag list of a/b".into(),
        c.list_tags(&image(&proxy.host, "a/b")).await.unwrap_err(),
    ));
    for (needle, err) in cases {
        let shown = err.to_string();
        assert!(shown.contains(&needle), "expected `{needle}` in `{shown}`");
        assert!(!shown.contains('\n'), "not one line: {shown}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn build_times_and_digests_are_fetched_once_then_cached_by_digest() {
    let reg = TestRegistry::start(AuthMode::Anonymous).await;
    let older = reg
        .push_image("team/app", &["build-1"], "2024-01-01T00:00:00Z", 1)
        .await;
    let newer = reg
        .push_image(
            "team/app",
            &["build-2", "stable"],
            "2024-03-01T00:00:00Z",
            2,
        )
        .await;
    reg.push_image("team/app", &["build-3-debug"], "2024-09-01T00:00:00Z", 3)
        .await;
    assert_ne!(older, newer);
    let c = client(vec![(&reg.host, fast())]);
    let newest = target(
        "newest",
        image(&reg.host, "team/app"),
        policy(PolicySpec {
            pattern: Some("^build-".into()),
            exclude: vec!["-debug$".into()],
            order: Some("newest-build".parse().unwrap()),
            ..Default::default()
        }),
    );
    let tracked = target(
        "tracked",
        image(&reg.host, "team/app"),
        policy(PolicySpec {
            digest: Some("stable".into()),
            ..Default::default()
        }),
    );
    let targets = vec![newest, tracked];
    let results = scan(&c, &targets).await;
    assert_eq!(pick(&results, &targets[0]).as_deref(), Some("build-2"));
    assert_eq!(pick(&results, &targets[1]), Some(format!("stable@{newer}")));
    let m = c.metrics();
    // One listing; a HEAD for each candidate only (build-1, build-2, stable);
    // one manifest and one config blob per distinct digest.
    assert_eq!(m.total(Some("tags")), 1);
    assert_eq!(m.total(Some("manifest-head")), 3);
    assert_eq!(m.total(Some("manifest")), 2);
    assert_eq!(m.total(Some("blob")), 2);

    // Steady state: same digests, so no manifest or blob requests at all.
    let results = scan(&c, &targets).await;
    assert_eq!(pick(&results, &targets[0]).as_deref(), Some("build-2"));
    assert_eq!(
        m.total(Some("manifest")),
        2,
        "metadata requests in the second cycle"
    );
    assert_eq!(
        m.total(Some("blob")),
        2,
        "metadata requests in the second cycle"
    );
    assert_eq!(m.total(Some("manifest-head")), 6);
    assert!(m.cache().0 >= 2, "cache hits {:?}", m.cache());
}

#[tokio::test(flavor = "multi_thread")]
async fn build_time_of_an_index_follows_the_platform_filter() {
    let reg = TestRegistry::start(AuthMode::Anonymous).await;
    reg.push_index(
        "multi/app",
        "a",
        &[
            ("linux", "amd64", "2024-01-01T00:00:00Z"),
            ("linux", "arm64", "2024-03-01T00:00:00Z"),
        ],
        1,
    )
    .await;
    reg.push_image("multi/app", &["b"], "2024-02-01T00:00:00Z", 2)
        .await;
    let c = client(vec![(&reg.host, fast())]);
    let newest = |platforms: Vec<String>| ScanTarget {
        platforms,
        ..target(
            "n",
            image(&reg.host, "multi/app"),
            policy(PolicySpec {
                order: Some("newest-build".parse().unwrap()),
                ..Default::default()
            }),
        )
    };
    let default = newest(vec![]);
    let results = scan(&c, std::slice::from_ref(&default)).await;
    assert_eq!(
        pick(&results, &default).as_deref(),
        Some("b"),
        "linux/amd64 is the default platform"
    );
    let arm = newest(vec!["linux/arm64".into()]);
    let results = scan(&c, std::slice::from_ref(&arm)).await;
    assert_eq!(pick(&results, &arm).as_deref(), Some("a"));
}

fn tidewatch(args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_tidewatch"))
        .args(args)
        .output()
        .expect("run tidewatch")
}

#[tokio::test(flavor = "multi_thread")]
async fn tags_command_queries_the_registry_and_counts_requests() {
    let reg = TestRegistry::start(AuthMode::Htpasswd {
        user: "cli".into(),
        password: "cli-pass".into(),
    })
    .await;
    let digest = reg
        .push_image(
            "team/app",
            &["1.0.0", "1.4.0", "2.0.0", "stable"],
            "2024-01-01T00:00:00Z",
            1,
        )
        .await;
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("registries.yaml");
    let creds = dir.path().join("creds");
    std::fs::write(&creds, "cli:cli-pass\n").unwrap();
    std::fs::write(
        &config,
        format!(
            "registries:\n  - host: {}\n    insecure: true\n    credentials: {{ file: {} }}\n",
            reg.host,
            creds.display()
        ),
    )
    .unwrap();
    let image = format!("{}/team/app", reg.host);
    let cfg = config.to_str().unwrap();

    let out = tidewatch(&["tags", &image, "-c", cfg, "--semver", "^1"]);
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert_eq!(stdout.lines().last(), Some("1.4.0"));
    assert!(
        stderr.contains("dropped  2.0.0  (out of range)"),
        "{stderr}"
    );
    // One 401 to learn the challenge, then the listing with credentials.
    assert!(stderr.contains("2 registry request(s)"), "{stderr}");

    let out = tidewatch(&["tags", &image, "-c", cfg, "--digest", "stable"]);
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        format!("stable@{digest}")
    );

    // Without the credentials file the error names the registry, exit 2.
    let out = tidewatch(&["tags", &image, "--insecure", "--semver", "^1"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains(&format!("registry {} answered 401", reg.host)),
        "{stderr}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn tags_command_platform_flag_picks_the_build_time_of_that_platform() {
    let reg = TestRegistry::start(AuthMode::Anonymous).await;
    reg.push_index(
        "multi/app",
        "a",
        &[
            ("linux", "amd64", "2024-01-01T00:00:00Z"),
            ("linux", "arm64", "2024-03-01T00:00:00Z"),
        ],
        1,
    )
    .await;
    reg.push_image("multi/app", &["b"], "2024-02-01T00:00:00Z", 2)
        .await;
    let image = format!("{}/multi/app", reg.host);
    let out = tidewatch(&["tags", &image, "--insecure", "--order", "newest-build"]);
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "b");
    let out = tidewatch(&[
        "tags",
        &image,
        "--insecure",
        "--order",
        "newest-build",
        "--platform",
        "linux/arm64",
    ]);
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "a",
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn tls_is_verified_by_default_and_ca_file_trusts_a_private_ca() {
    let reg = TestRegistry::start_tls(AuthMode::Anonymous).await;
    reg.push_image("secure/app", &["1.0.0"], "2024-01-01T00:00:00Z", 1)
        .await;
    let name = image(&reg.host, "secure/app");
    let https = HostSettings {
        insecure: false,
        max_attempts: 1,
        ..fast()
    };
    let untrusted = client(vec![(&reg.host, https.clone())]);
    let err = untrusted.list_tags(&name).await.unwrap_err();
    assert!(matches!(err, RegistryError::Tls { .. }), "{err:?}");
    assert!(err.to_string().contains("set `caFile`"), "{err}");

    let trusted = client(vec![(
        &reg.host,
        HostSettings {
            ca_file: reg.ca_file(),
            ..https
        },
    )]);
    assert_eq!(trusted.list_tags(&name).await.unwrap(), ["1.0.0"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_plain_http_realm_on_another_port_never_receives_the_credentials() {
    // The token service answers on http://127.0.0.1:<other port>/token.
    let issuer = TokenIssuer::start(Some(("robot".into(), "tok-pass".into()))).await;
    assert!(issuer.url.starts_with("http://"));
    let reg = TestRegistry::start(AuthMode::Token(issuer.clone())).await;
    reg.push_image("team/app", &["1.0.0"], "2024-01-01T00:00:00Z", 1)
        .await;
    issuer.clear_requests();
    std::env::set_var("TW_TEST_TOKEN_PLAIN", "robot:tok-pass-PLAIN-55");
    let c = client(vec![(
        &reg.host,
        HostSettings {
            credentials: Some(CredentialSource::Env("TW_TEST_TOKEN_PLAIN".into())),
            ..fast()
        },
    )]);
    let err = c
        .list_tags(&image(&reg.host, "team/app"))
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains(&issuer.url)
            && err.contains("plain HTTP on another host than the registry")
            && err.contains("does not send the registry's credentials there"),
        "{err}"
    );
    assert!(!err.contains("PLAIN-55"), "{err}");
    assert!(
        issuer.requests().iter().all(|r| r.basic_user.is_none()),
        "the realm received credentials: {:?}",
        issuer.requests()
    );
    assert!(issuer.requests().is_empty(), "{:?}", issuer.requests());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_redirect_to_another_host_carries_no_authorization() {
    use axum::extract::State;
    use axum::http::HeaderMap;
    use std::sync::{Arc, Mutex};

    let reg = TestRegistry::start(AuthMode::Htpasswd {
        user: "bob".into(),
        password: "redirect-SECRET-9".into(),
    })
    .await;
    reg.push_image("team/app", &["1.0.0"], "2024-01-01T00:00:00Z", 1)
        .await;
    // The other host records every request's headers and serves a tag list.
    let seen: Arc<Mutex<Vec<Option<String>>>> = Arc::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let other = listener.local_addr().unwrap();
    let app = axum::Router::new()
        .fallback(
            |State(seen): State<Arc<Mutex<Vec<Option<String>>>>>, headers: HeaderMap| async move {
                seen.lock().unwrap().push(
                    headers
                        .get("authorization")
                        .map(|v| v.to_str().unwrap_or("?").to_string()),
                );
                axum::Json(serde_json::json!({"name": "team/app", "tags": ["9.9.9"]}))
            },
        )
        .with_state(seen.clone());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let proxy = TestProxy::start(&reg.base_url(), ProxyBehavior::default()).await;
    std::env::set_var("TW_TEST_REDIRECT_CREDS", "bob:redirect-SECRET-9");
    let c = client(vec![(
        &proxy.host,
        HostSettings {
            credentials: Some(CredentialSource::Env("TW_TEST_REDIRECT_CREDS".into())),
            ..fast()
        },
    )]);
    let app_image = image(&proxy.host, "team/app");
    // Learn the challenge first (credentials now go up front), then the
    // tag list is redirected to the other host.
    assert_eq!(c.list_tags(&app_image).await.unwrap(), ["1.0.0"]);
    proxy.inject(
        "/v2/team/app/tags/list",
        vec![Fault::Redirect(format!(
            "http://{other}/v2/team/app/tags/list"
        ))],
    );
    assert_eq!(c.list_tags(&app_image).await.unwrap(), ["9.9.9"]);
    let proxied = proxy.requests();
    assert!(
        proxied.iter().any(|r| r.status == 307),
        "the redirect was served: {proxied:?}"
    );
    assert_eq!(
        *seen.lock().unwrap(),
        vec![None],
        "no Authorization reached the other host"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_manifest_whose_bytes_do_not_match_its_digest_is_refused_and_not_cached() {
    let reg = TestRegistry::start(AuthMode::Anonymous).await;
    reg.push_image("team/app", &["1.0.0"], "2024-01-01T00:00:00Z", 1)
        .await;
    let proxy = TestProxy::start(&reg.base_url(), ProxyBehavior::default()).await;
    let c = client(vec![(&proxy.host, fast())]);
    let app = image(&proxy.host, "team/app");
    let digest = c.digest(&app, "1.0.0").await.unwrap();
    proxy.inject(
        &format!("/v2/team/app/manifests/{digest}"),
        vec![Fault::WrongBytes],
    );
    let err = c.created(&app, &digest, &[]).await.unwrap_err();
    assert!(
        matches!(err, RegistryError::DigestMismatch { .. }),
        "{err:?}"
    );
    let text = err.to_string();
    assert!(
        text.starts_with(&format!("registry {} sent bytes for", proxy.host))
            && text.contains(&digest),
        "{text}"
    );
    // Nothing was cached: the next call fetches (good bytes) again.
    let created = c.created(&app, &digest, &[]).await.unwrap();
    assert_eq!(
        created.map(|t| t.to_string()).as_deref(),
        Some("2024-01-01T00:00:00Z")
    );
    let manifest_gets = proxy
        .requests()
        .iter()
        .filter(|r| r.method == "GET" && r.path_and_query.contains("/manifests/"))
        .count();
    assert_eq!(manifest_gets, 2, "{:?}", proxy.requests());
    // A config blob with wrong bytes is refused the same way.
    let fresh = client(vec![(&proxy.host, fast())]);
    proxy.inject("/v2/team/app/blobs/", vec![Fault::WrongBytes]);
    let err = fresh.created(&app, &digest, &[]).await.unwrap_err();
    assert!(
        matches!(err, RegistryError::DigestMismatch { .. }),
        "{err:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_429_error_reports_the_retry_after_the_registry_sent() {
    let reg = TestRegistry::start(AuthMode::Anonymous).await;
    reg.push_image("team/app", &["1.0.0"], "2024-01-01T00:00:00Z", 1)
        .await;
    let proxy = TestProxy::start(&reg.base_url(), ProxyBehavior::default()).await;
    let too_many = || Fault::Status {
        status: 429,
        retry_after: Some("3600".into()),
    };
    proxy.inject("/v2/team/app/tags/list", vec![too_many(), too_many()]);
    let c = client(vec![(
        &proxy.host,
        HostSettings {
            max_attempts: 2,
            max_retry_after: Duration::from_millis(50),
            ..fast()
        },
    )]);
    let err = c
        .list_tags(&image(&proxy.host, "team/app"))
        .await
        .unwrap_err()
        .to_string();
    // The wait was capped (the call took well under an hour), but the
    // message says what the registry asked for.
    assert!(err.contains("(last Retry-After 3600 s)"), "{err}");
}
