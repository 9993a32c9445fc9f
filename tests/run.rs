//! End to end: the `tidewatch run` service on the real registry and a real
//! bare repository, driven by signed webhooks.

mod support;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use hmac::{KeyInit, Mac};
use support::proxy::{Fault, ProxyBehavior, TestProxy};
use support::registry::{AuthMode, TestRegistry};

const SECRET: &str = "webhook-secret-7d1c";

struct Service(Child);
impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn sign(body: &[u8]) -> String {
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(SECRET.as_bytes()).unwrap();
    mac.update(body);
    let bytes = mac.finalize().into_bytes();
    format!(
        "sha256={}",
        bytes.iter().map(|b| format!("{b:02x}")).collect::<String>()
    )
}

async fn wait_for(what: &str, limit: Duration, mut check: impl AsyncFnMut() -> bool) {
    let started = Instant::now();
    while started.elapsed() < limit {
        if check().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{what} did not happen within {limit:?}");
}

fn metric(text: &str, name: &str) -> f64 {
    text.lines()
        .find(|l| l.starts_with(name) && l[name.len()..].starts_with(' '))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0)
}

/// A running service over a fresh registry (team/app 1.0.0) and a bare
/// repository whose envs/dev holds the app at 1.0.0.
struct Running {
    dir: tempfile::TempDir,
    registry: TestRegistry,
    bare: PathBuf,
    image: String,
    base: String,
    service: Service,
    _proxy: Option<TestProxy>,
}

async fn start_service() -> Running {
    start_service_behind(None).await
}

/// With `hang`, the registry sits behind a proxy whose first `/v2/`
/// request hangs that long, so the first cycle is slow.
async fn start_service_behind(hang: Option<Duration>) -> Running {
    let dir = tempfile::tempdir().unwrap();
    let registry = TestRegistry::start(AuthMode::Anonymous).await;
    registry
        .push_image("team/app", &["1.0.0"], "2024-01-01T00:00:00Z", 1)
        .await;
    let proxy = match hang {
        Some(delay) => {
            let proxy = TestProxy::start(&registry.base_url(), ProxyBehavior::default()).await;
            proxy.inject("/v2/", vec![Fault::Hang(delay)]);
            Some(proxy)
        }
        None => None,
    };
    let host = proxy
        .as_ref()
        .map_or_else(|| registry.host.clone(), |p| p.host.clone());
    let image = format!("{host}/team/app");

    let pod =
        format!("kind: Pod\nspec:\n  containers:\n    - name: app\n      image: {image}:1.0.0\n");
    let (bare, _seed) = support::environment_repo(dir.path(), &[("envs/dev/app.yaml", &pod)]);

    let config: PathBuf = dir.path().join("policies.yaml");
    std::fs::write(
        &config,
        format!(
            "repository: {{ url: 'file://{}', branch: main }}\nregistries:\n  - {{ host: '{}', insecure: true, maxAttempts: 1 }}\nimages:\n  - {{ name: app, image: '{image}', semver: ^1, interval: 1h }}\nupdates:\n  - {{ name: dev, paths: [envs/dev], branch: dev }}\nserver:\n  webhookSecret: {{ env: TW_RUN_WEBHOOK_SECRET }}\n",
            bare.display(),
            host
        ),
    )
    .unwrap();
    let port = support::free_port();
    let base = format!("http://127.0.0.1:{port}");
    let service = Service(
        Command::new(env!("CARGO_BIN_EXE_tidewatch"))
            .args([
                "run",
                "-c",
                config.to_str().unwrap(),
                "--listen",
                &format!("127.0.0.1:{port}"),
            ])
            .args(["--workdir", dir.path().join("work").to_str().unwrap()])
            .env("TW_RUN_WEBHOOK_SECRET", SECRET)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    Running {
        dir,
        registry,
        bare,
        image,
        base,
        service,
        _proxy: proxy,
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_service_updates_on_a_signed_webhook_and_survives_a_registry_outage() {
    let Running {
        dir: _dir,
        mut registry,
        bare,
        image,
        base,
        mut service,
        ..
    } = start_service().await;
    let http = reqwest::Client::new();
    let get = |path: &str| {
        let (http, url) = (http.clone(), format!("{base}{path}"));
        async move {
            match http.get(&url).send().await {
                Ok(r) => (r.status().as_u16(), r.text().await.unwrap_or_default()),
                Err(_) => (0, String::new()),
            }
        }
    };
    wait_for(
        "readiness after the first fetch",
        Duration::from_secs(30),
        async || get("/readyz").await.0 == 200,
    )
    .await;
    assert_eq!(get("/healthz").await.0, 200);

    // A new tag and a signed webhook: the commit lands on dev within 5 s.
    registry
        .push_image("team/app", &["1.1.0"], "2024-02-01T00:00:00Z", 2)
        .await;
    let body = format!(r#"{{"image": "{image}", "tag": "1.1.0"}}"#);
    let post = |body: String, signature: Option<String>| {
        let (http, url) = (http.clone(), format!("{base}/webhook/generic"));
        async move {
            let mut request = http
                .post(url)
                .header("content-type", "application/json")
                .body(body);
            if let Some(s) = signature {
                request = request.header("x-tidewatch-signature-256", s);
            }
            request
                .send()
                .await
                .map(|r| r.status().as_u16())
                .unwrap_or(0)
        }
    };
    let pushed_at = Instant::now();
    assert_eq!(post(body.clone(), Some(sign(body.as_bytes()))).await, 202);
    wait_for("the commit on dev", Duration::from_secs(5), async || {
        let out = Command::new("git")
            .args(["show", "dev:envs/dev/app.yaml"])
            .current_dir(&bare)
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).contains(&format!("{image}:1.1.0"))
    })
    .await;
    assert!(pushed_at.elapsed() < Duration::from_secs(5));
    let metrics = get("/metrics").await.1;
    assert_eq!(
        metric(&metrics, "tidewatch_commits_total"),
        1.0,
        "{metrics}"
    );
    assert!(
        metrics.contains(&format!(
            "tidewatch_registry_requests_total{{registry=\"{}\"",
            registry.host
        )),
        "{metrics}"
    );
    assert!(
        metrics.contains("tidewatch_last_successful_scan_timestamp_seconds{policy=\"app\"}"),
        "{metrics}"
    );
    let page = get("/").await.1;
    assert!(
        page.contains("dev: 1.1.0 → 1.1.0") && page.contains("Recent commits"),
        "{page}"
    );

    // Bad signature, oversized body, malformed JSON: 4xx and no cycle.
    let cycles = metric(&get("/metrics").await.1, "tidewatch_cycles_total");
    assert_eq!(post(body.clone(), Some(sign(b"something else"))).await, 401);
    assert_eq!(
        post("x".repeat(2 << 20), Some(sign(&vec![b'x'; 2 << 20]))).await,
        413
    );
    assert_eq!(
        post("{not json".into(), Some(sign(b"{not json"))).await,
        400
    );
    assert_eq!(post(body.clone(), None).await, 401);
    tokio::time::sleep(Duration::from_millis(1200)).await;
    assert_eq!(
        metric(&get("/metrics").await.1, "tidewatch_cycles_total"),
        cycles,
        "a rejected webhook triggered a cycle"
    );

    // A burst of 100 webhooks for one image gives one scan (within the
    // webhook window of 5 s since the last webhook scan), and no more.
    let burst: Vec<_> = (0..100)
        .map(|_| post(body.clone(), Some(sign(body.as_bytes()))))
        .collect();
    let statuses = futures_join(burst).await;
    assert!(statuses.iter().all(|s| *s == 202), "{statuses:?}");
    wait_for("the burst's scan", Duration::from_secs(8), async || {
        metric(&get("/metrics").await.1, "tidewatch_cycles_total") > cycles
    })
    .await;
    tokio::time::sleep(Duration::from_millis(2000)).await;
    assert_eq!(
        metric(&get("/metrics").await.1, "tidewatch_cycles_total"),
        cycles + 1.0,
        "the burst was not coalesced"
    );

    // The registry goes down: the service keeps serving and reports it.
    registry.stop().await;
    assert_eq!(post(body.clone(), Some(sign(body.as_bytes()))).await, 202);
    wait_for(
        "the registry error on the status page",
        Duration::from_secs(10),
        async || get("/").await.1.contains("cannot reach registry"),
    )
    .await;
    assert_eq!(get("/healthz").await.0, 200);
    assert!(get("/metrics")
        .await
        .1
        .contains("tidewatch_errors_total{kind=\"registry\"}"));
    // And recovers when it is back.
    registry.restart().await;
    assert_eq!(post(body.clone(), Some(sign(body.as_bytes()))).await, 202);
    wait_for(
        "recovery on the status page",
        Duration::from_secs(10),
        async || !get("/").await.1.contains("cannot reach registry"),
    )
    .await;

    // SIGTERM: the service finishes what it is doing and exits cleanly.
    let pid = service.0.id().to_string();
    assert!(Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap()
        .success());
    let started = Instant::now();
    let status = loop {
        if let Some(status) = service.0.try_wait().unwrap() {
            break status;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "the service did not stop on SIGTERM"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(status.success(), "exit status after SIGTERM: {status}");
}

/// Runs futures concurrently (no extra crate needed for a test).
async fn futures_join<F: std::future::Future<Output = u16> + Send + 'static>(
    futures: Vec<F>,
) -> Vec<u16> {
    let handles: Vec<_> = futures.into_iter().map(tokio::spawn).collect();
    let mut out = Vec::new();
    for h in handles {
        out.push(h.await.unwrap_or(0));
    }
    out
}

#[test]
fn an_invalid_config_stops_startup_with_check_output() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("bad.yaml");
    std::fs::write(
        &config,
        "images:\n  - name: app\n    image: ghcr.io/acme/app\n    semvr: ^1\n",
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_tidewatch"))
        .args([
            "run",
            "-c",
            config.to_str().unwrap(),
            "--listen",
            "127.0.0.1:0",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("bad.yaml:4:5: images[0].semvr: unknown field"),
        "{stderr}"
    );
}

/// Headless Chromium (Debian's `chromium`, installed by scripts/test)
/// renders the status page: the rendered DOM holds the policy with its value
/// in Git and pick, and a phone-sized screenshot is taken for a person to
/// look at (saved under target/).
#[tokio::test(flavor = "multi_thread")]
async fn the_status_page_renders_in_headless_chromium() {
    let browser = ["chromium", "chromium-browser"]
        .into_iter()
        .find(|b| {
            Command::new(b)
                .arg("--version")
                .output()
                .is_ok_and(|o| o.status.success())
        })
        .expect("chromium is not installed; scripts/test installs Debian's `chromium` package");
    let running = start_service().await;
    let http = reqwest::Client::new();
    let ready = format!("{}/readyz", running.base);
    wait_for("readiness", Duration::from_secs(30), async || {
        http.get(&ready)
            .send()
            .await
            .is_ok_and(|r| r.status().as_u16() == 200)
    })
    .await;
    let profile = tempfile::tempdir().unwrap();
    let flags = [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
    ];
    let page = format!("{}/", running.base);
    let dom = Command::new(browser)
        .args(flags)
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .args(["--dump-dom", &page])
        .output()
        .unwrap();
    let dom = String::from_utf8_lossy(&dom.stdout);
    assert!(dom.contains("<h1>tidewatch</h1>"), "{dom}");
    assert!(dom.contains(&running.image), "{dom}");
    assert!(dom.contains("dev: 1.0.0 → 1.0.0"), "{dom}");
    assert!(
        dom.contains("Open pull requests") && dom.contains("Recent commits"),
        "{dom}"
    );

    let shot = Path::new(env!("CARGO_TARGET_TMPDIR")).join("status-page-phone.png");
    let _ = std::fs::remove_file(&shot);
    let status = Command::new(browser)
        .args(flags)
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .args([
            "--window-size=390,844",
            &format!("--screenshot={}", shot.display()),
            &page,
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success());
    assert!(
        std::fs::metadata(&shot)
            .map(|m| m.len() > 1000)
            .unwrap_or(false),
        "no screenshot at {}",
        shot.display()
    );
}

/// SIGTERM while a cycle is running: the cycle finishes, then the process
/// exits cleanly (it must not hang waiting for a wake-up it missed).
#[tokio::test(flavor = "multi_thread")]
async fn sigterm_during_a_cycle_finishes_it_and_exits() {
    let mut running = start_service_behind(Some(Duration::from_secs(3))).await;
    // The first cycle starts at once and waits on the hanging registry.
    tokio::time::sleep(Duration::from_millis(800)).await;
    let pid = running.service.0.id().to_string();
    assert!(Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap()
        .success());
    let started = Instant::now();
    let status = loop {
        if let Some(status) = running.service.0.try_wait().unwrap() {
            break status;
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "the service hung after SIGTERM during a cycle"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(status.success(), "exit status: {status}");
    assert!(
        started.elapsed() >= Duration::from_millis(1500),
        "exited before the cycle in progress finished"
    );
}
