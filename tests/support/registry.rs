//! A real registry (CNCF distribution 2.8, Debian's `docker-registry`) run as
//! a child process for the duration of a test, plus helpers to seed it.
//!
//! Known behaviour of this registry that tests must expect:
//! * `tags/list` ignores `?n=`/`?last=`, returns every tag in one page in no
//!   stable order and never sends a `Link` header (use [`super::proxy`] for
//!   pagination);
//! * a `GET` of an OCI manifest without an `Accept` header naming the OCI
//!   media type is answered 404 (`MANIFEST_UNKNOWN`), not with the manifest.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::header::{CONTENT_TYPE, LOCATION};
use reqwest::{RequestBuilder, StatusCode};
use serde_json::json;
use tokio::process::{Child, Command};

use super::token::TokenIssuer;

pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
pub const OCI_LAYER: &str = "application/vnd.oci.image.layer.v1.tar+gzip";

/// How the registry authenticates clients.
#[derive(Clone)]
pub enum AuthMode {
    /// No auth at all.
    Anonymous,
    /// HTTP Basic against a bcrypt htpasswd file holding this one user.
    Htpasswd { user: String, password: String },
    /// Docker token auth; the registry trusts this issuer's certificate.
    Token(TokenIssuer),
}

/// A running `docker-registry serve` on `127.0.0.1:PORT` with its own
/// temporary storage. Killed on drop.
pub struct TestRegistry {
    /// `127.0.0.1:PORT`
    pub host: String,
    port: u16,
    auth: AuthMode,
    /// Config, log, htpasswd, root cert bundle and `data/` (the storage).
    dir: tempfile::TempDir,
    child: Option<Child>,
    client: reqwest::Client,
    /// Set for a registry serving HTTPS: its self-signed certificate (PEM).
    tls_cert: Option<PathBuf>,
}

/// Credentials the harness itself uses to push.
enum PushAuth {
    None,
    Basic(String, String),
    Bearer(String),
}

impl PushAuth {
    fn apply(&self, request: RequestBuilder) -> RequestBuilder {
        match self {
            PushAuth::None => request,
            PushAuth::Basic(user, password) => request.basic_auth(user, Some(password)),
            PushAuth::Bearer(token) => request.bearer_auth(token),
        }
    }
}

/// One pushed single-platform image.
struct PushedImage {
    digest: String,
    manifest: Vec<u8>,
}

impl TestRegistry {
    /// Starts a registry with fresh storage on a free loopback port and waits
    /// until `/v2/` answers 200 or 401. Panics with the registry's log if it
    /// does not come up.
    pub async fn start(auth: AuthMode) -> TestRegistry {
        Self::start_with(auth, false).await
    }

    /// Starts a registry serving HTTPS with a fresh self-signed certificate
    /// for 127.0.0.1; [`TestRegistry::ca_file`] is that certificate.
    pub async fn start_tls(auth: AuthMode) -> TestRegistry {
        Self::start_with(auth, true).await
    }

    /// The PEM certificate a client must trust to talk to a TLS registry.
    pub fn ca_file(&self) -> Option<PathBuf> {
        self.tls_cert.clone()
    }

    async fn start_with(auth: AuthMode, tls: bool) -> TestRegistry {
        let dir = tempfile::tempdir().expect("registry tempdir");
        std::fs::create_dir(dir.path().join("data")).expect("registry data dir");
        let auth_yaml = auth_config(&auth, dir.path()).await;

        let (client, tls_cert) = if tls {
            let cert = dir.path().join("tls-cert.pem");
            let key = dir.path().join("tls-key.pem");
            let status = std::process::Command::new("openssl")
                .args([
                    "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                ])
                .args([
                    "-subj",
                    "/CN=127.0.0.1",
                    "-addext",
                    "subjectAltName=IP:127.0.0.1",
                ])
                // rustls refuses a CA certificate as the server's own, which
                // is what `req -x509` makes by default: mark it a leaf.
                .args(["-addext", "basicConstraints=critical,CA:FALSE"])
                .args(["-addext", "extendedKeyUsage=serverAuth"])
                .arg("-keyout")
                .arg(&key)
                .arg("-out")
                .arg(&cert)
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .status()
                .expect("run openssl for the TLS certificate");
            assert!(status.success(), "openssl could not make a TLS certificate");
            let pem = std::fs::read(&cert).expect("read TLS certificate");
            let client = reqwest::Client::builder()
                .no_proxy()
                .redirect(reqwest::redirect::Policy::none())
                .add_root_certificate(
                    reqwest::Certificate::from_pem(&pem).expect("PEM certificate"),
                )
                .build()
                .expect("build TLS client");
            (client, Some(cert))
        } else {
            (super::http_client(), None)
        };
        let mut registry = TestRegistry {
            host: String::new(),
            port: 0,
            auth,
            dir,
            child: None,
            client,
            tls_cert,
        };
        // free_port() releases the port before the registry binds it, so a
        // parallel test can steal it; retry with another port in that case.
        let mut last_log = String::new();
        for _attempt in 0..5 {
            registry.port = super::free_port();
            registry.host = format!("127.0.0.1:{}", registry.port);
            registry.write_config(&auth_yaml);
            // Only this attempt's output should decide whether to retry.
            let _ = std::fs::remove_file(registry.log_path());
            match registry.launch().await {
                Ok(()) => return registry,
                Err(log) if log.contains("address already in use") => last_log = log,
                Err(log) => panic!("docker-registry failed to start:\n{log}"),
            }
        }
        panic!("docker-registry could not find a free port:\n{last_log}");
    }

    /// `http://127.0.0.1:PORT`
    pub fn base_url(&self) -> String {
        let scheme = if self.tls_cert.is_some() {
            "https"
        } else {
            "http"
        };
        format!("{scheme}://{}", self.host)
    }

    /// The loopback port the registry listens on (stable across restarts).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The auth mode the registry was started with.
    pub fn auth(&self) -> &AuthMode {
        &self.auth
    }

    /// Everything the registry has logged so far (level `info`, no access
    /// log). Useful in assertion messages.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    /// Kills the registry process (for "registry down" tests). Storage and
    /// port are kept for [`Self::restart`]. A no-op if already stopped.
    pub async fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            // kill() sends SIGKILL and reaps the process, so the port is
            // closed once this returns.
            child.kill().await.expect("kill docker-registry");
        }
    }

    /// Starts the registry again on the same port with the same storage
    /// (stopping it first if it is still running).
    pub async fn restart(&mut self) {
        self.stop().await;
        if let Err(log) = self.launch().await {
            panic!("docker-registry failed to restart on {}:\n{log}", self.host);
        }
    }

    /// Pushes one linux/amd64 image and tags it with every tag in `tags`
    /// (none: pushed by digest only). The config blob carries
    /// `"created": created`; the single layer's bytes depend on `seed`, so
    /// different seeds give different digests. Returns the manifest digest.
    pub async fn push_image(&self, repo: &str, tags: &[&str], created: &str, seed: u64) -> String {
        let auth = self.push_auth(repo).await;
        let image = self
            .push_platform_image(repo, &auth, "linux", "amd64", created, seed)
            .await;
        for tag in tags {
            self.put_manifest(repo, &auth, tag, OCI_MANIFEST, image.manifest.clone())
                .await;
        }
        image.digest
    }

    /// Pushes one image per `(os, arch, created)` platform (an `arch` such as
    /// `"arm/v7"` becomes architecture `arm`, variant `v7`), then an OCI image
    /// index over them tagged `tag`. Returns the index digest.
    pub async fn push_index(
        &self,
        repo: &str,
        tag: &str,
        platforms: &[(&str, &str, &str)],
        seed: u64,
    ) -> String {
        let auth = self.push_auth(repo).await;
        let mut entries = Vec::new();
        for &(os, arch, created) in platforms {
            let image = self
                .push_platform_image(repo, &auth, os, arch, created, seed)
                .await;
            let (architecture, variant) = split_arch(arch);
            let mut platform = json!({"architecture": architecture, "os": os});
            if let Some(variant) = variant {
                platform["variant"] = json!(variant);
            }
            entries.push(json!({
                "mediaType": OCI_MANIFEST,
                "digest": image.digest,
                "size": image.manifest.len(),
                "platform": platform,
            }));
        }
        let index = serde_json::to_vec(&json!({
            "schemaVersion": 2,
            "mediaType": OCI_INDEX,
            "manifests": entries,
        }))
        .expect("serialize index");
        self.put_manifest(repo, &auth, tag, OCI_INDEX, index).await
    }

    /// Tags one image with `n` tags `{prefix}0 .. {prefix}{n-1}`: the blobs
    /// and manifest are built once and the same manifest is PUT under every
    /// tag by a few concurrent workers. Returns the manifest digest.
    pub async fn push_many_tags(&self, repo: &str, prefix: &str, n: usize) -> String {
        const WORKERS: usize = 8;

        let auth = Arc::new(self.push_auth(repo).await);
        let image = self
            .push_platform_image(repo, &auth, "linux", "amd64", "2021-01-01T00:00:00Z", 0)
            .await;
        let manifest = Arc::new(image.manifest);
        let next = Arc::new(AtomicUsize::new(0));

        let mut workers = tokio::task::JoinSet::new();
        for _ in 0..WORKERS.min(n) {
            let (client, auth, manifest, next) = (
                self.client.clone(),
                Arc::clone(&auth),
                Arc::clone(&manifest),
                Arc::clone(&next),
            );
            let (base, repo, prefix) = (self.base_url(), repo.to_owned(), prefix.to_owned());
            workers.spawn(async move {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= n {
                        break;
                    }
                    let url = format!("{base}/v2/{repo}/manifests/{prefix}{i}");
                    let request = client
                        .put(&url)
                        .header(CONTENT_TYPE, OCI_MANIFEST)
                        .body(manifest.as_ref().clone());
                    let response = auth.apply(request).send().await.expect("PUT manifest");
                    expect_status(response, StatusCode::CREATED, &format!("PUT {url}")).await;
                }
            });
        }
        while let Some(result) = workers.join_next().await {
            if let Err(error) = result {
                // Re-raise a worker's panic (with its message) in the test.
                std::panic::resume_unwind(error.into_panic());
            }
        }
        image.digest
    }

    /// Uploads `bytes` as a blob of `repo`; returns its digest.
    pub async fn push_blob(&self, repo: &str, bytes: Vec<u8>) -> String {
        let auth = self.push_auth(repo).await;
        self.upload_blob(repo, &auth, bytes).await
    }

    /// PUTs `body` as a manifest (or index) of `media_type` under
    /// `reference` (a tag or its digest); returns its digest.
    pub async fn push_manifest(
        &self,
        repo: &str,
        reference: &str,
        media_type: &str,
        body: Vec<u8>,
    ) -> String {
        let auth = self.push_auth(repo).await;
        self.put_manifest(repo, &auth, reference, media_type, body)
            .await
    }

    /// The bytes of a manifest or index (any OCI or Docker type), or
    /// `None` on 404.
    pub async fn manifest(&self, repo: &str, reference: &str) -> Option<Vec<u8>> {
        let auth = self.push_auth(repo).await;
        let url = format!("{}/v2/{repo}/manifests/{reference}", self.base_url());
        let response = auth
            .apply(self.client.get(&url))
            .header(
                reqwest::header::ACCEPT,
                format!("{OCI_MANIFEST}, {OCI_INDEX}, application/vnd.docker.distribution.manifest.v2+json"),
            )
            .send()
            .await
            .expect("GET manifest");
        if response.status() == StatusCode::NOT_FOUND {
            return None;
        }
        assert!(
            response.status().is_success(),
            "GET {url}: {}",
            response.status()
        );
        Some(response.bytes().await.expect("manifest body").to_vec())
    }

    // ----- internals -------------------------------------------------------

    fn config_path(&self) -> PathBuf {
        self.dir.path().join("config.yml")
    }

    fn log_path(&self) -> PathBuf {
        self.dir.path().join("registry.log")
    }

    fn write_config(&self, auth_yaml: &str) {
        let data = yaml_str(&self.dir.path().join("data"));
        let port = self.port;
        let tls = match &self.tls_cert {
            Some(cert) => format!(
                "  tls:\n    certificate: {}\n    key: {}\n",
                yaml_str(cert),
                yaml_str(&self.dir.path().join("tls-key.pem"))
            ),
            None => String::new(),
        };
        // `relativeurls` makes upload `Location`s relative, so pushes work
        // through a proxy too; the fixed `secret` keeps upload state valid
        // across restart(); upload purging is off to avoid background work.
        let config = format!(
            "version: 0.1
log:
  level: info
  formatter: text
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: {data}
  delete:
    enabled: true
  maintenance:
    uploadpurging:
      enabled: false
http:
  addr: 127.0.0.1:{port}
  secret: tidewatch-test-secret
  relativeurls: true
{tls}{auth_yaml}"
        );
        std::fs::write(self.config_path(), config).expect("write registry config");
    }

    /// Spawns the process and waits for `/v2/` to answer. On failure the
    /// process is gone and the error is the registry's log.
    async fn launch(&mut self) -> Result<(), String> {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path())
            .expect("open registry log");
        let stderr = log.try_clone().expect("clone log handle");
        // Output goes to a file, never a pipe nobody drains (the registry
        // would block once the pipe is full).
        let child = Command::new("docker-registry")
            .arg("serve")
            .arg(self.config_path())
            .stdin(std::process::Stdio::null())
            .stdout(log)
            .stderr(stderr)
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| format!("cannot spawn docker-registry (is it installed?): {e}"))?;
        self.child = Some(child);

        let url = format!("{}/v2/", self.base_url());
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let child = self.child.as_mut().expect("child just spawned");
            if let Some(status) = child.try_wait().expect("poll docker-registry") {
                self.child = None;
                return Err(format!("exited with {status}\n{}", self.log()));
            }
            let probe = self
                .client
                .get(&url)
                .timeout(Duration::from_secs(1))
                .send()
                .await;
            if let Ok(response) = probe {
                let status = response.status();
                if status == StatusCode::OK || status == StatusCode::UNAUTHORIZED {
                    return Ok(());
                }
            }
            if Instant::now() > deadline {
                self.stop().await;
                return Err(format!("/v2/ did not answer within 20s\n{}", self.log()));
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    async fn push_auth(&self, repo: &str) -> PushAuth {
        match &self.auth {
            AuthMode::Anonymous => PushAuth::None,
            AuthMode::Htpasswd { user, password } => {
                PushAuth::Basic(user.clone(), password.clone())
            }
            AuthMode::Token(issuer) => {
                let scope = format!("repository:{repo}:pull,push");
                PushAuth::Bearer(issuer.mint_token(&[&scope]).await)
            }
        }
    }

    /// Uploads config + layer blobs and PUTs the manifest by digest.
    async fn push_platform_image(
        &self,
        repo: &str,
        auth: &PushAuth,
        os: &str,
        arch: &str,
        created: &str,
        seed: u64,
    ) -> PushedImage {
        // Not a real tarball: registries never look inside layers.
        let layer =
            format!("tidewatch test layer\nseed={seed}\nplatform={os}/{arch}\n").into_bytes();
        let layer_digest = self.upload_blob(repo, auth, layer.clone()).await;

        let (architecture, variant) = split_arch(arch);
        let mut config = json!({
            "created": created,
            "architecture": architecture,
            "os": os,
            "config": {},
            "rootfs": {"type": "layers", "diff_ids": [layer_digest]},
        });
        if let Some(variant) = variant {
            config["variant"] = json!(variant);
        }
        let config = serde_json::to_vec(&config).expect("serialize config");
        let config_digest = self.upload_blob(repo, auth, config.clone()).await;

        let manifest = serde_json::to_vec(&json!({
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {"mediaType": OCI_CONFIG, "digest": config_digest, "size": config.len()},
            "layers": [{"mediaType": OCI_LAYER, "digest": layer_digest, "size": layer.len()}],
        }))
        .expect("serialize manifest");
        let digest = super::sha256_digest(&manifest);
        self.put_manifest(repo, auth, &digest, OCI_MANIFEST, manifest.clone())
            .await;
        PushedImage { digest, manifest }
    }

    /// Monolithic upload: `POST .../blobs/uploads/` then `PUT <Location>&digest=`.
    async fn upload_blob(&self, repo: &str, auth: &PushAuth, bytes: Vec<u8>) -> String {
        let digest = super::sha256_digest(&bytes);
        let url = format!("{}/v2/{repo}/blobs/uploads/", self.base_url());
        let response = auth
            .apply(self.client.post(&url))
            .send()
            .await
            .expect("POST blob upload");
        let location = response
            .headers()
            .get(LOCATION)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        expect_status(response, StatusCode::ACCEPTED, &format!("POST {url}")).await;
        let location = location.expect("upload Location header");
        let location = if location.starts_with("http") {
            location
        } else {
            format!("{}{location}", self.base_url())
        };
        let separator = if location.contains('?') { '&' } else { '?' };
        let url = format!("{location}{separator}digest={digest}");
        let response = auth
            .apply(self.client.put(&url))
            .header(CONTENT_TYPE, "application/octet-stream")
            .body(bytes)
            .send()
            .await
            .expect("PUT blob");
        expect_status(response, StatusCode::CREATED, &format!("PUT {url}")).await;
        digest
    }

    /// PUTs a manifest under `reference` (tag or digest); returns the digest
    /// the registry reports.
    async fn put_manifest(
        &self,
        repo: &str,
        auth: &PushAuth,
        reference: &str,
        media_type: &str,
        body: Vec<u8>,
    ) -> String {
        let expected = super::sha256_digest(&body);
        let url = format!("{}/v2/{repo}/manifests/{reference}", self.base_url());
        let response = auth
            .apply(self.client.put(&url))
            .header(CONTENT_TYPE, media_type)
            .body(body)
            .send()
            .await
            .expect("PUT manifest");
        let reported = response
            .headers()
            .get("docker-content-digest")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        expect_status(response, StatusCode::CREATED, &format!("PUT {url}")).await;
        assert_eq!(reported.as_deref(), Some(expected.as_str()), "PUT {url}");
        expected
    }
}

impl Drop for TestRegistry {
    fn drop(&mut self) {
        if let Some(child) = self.child.as_mut() {
            // Best effort; `kill_on_drop` would also do it.
            let _ = child.start_kill();
        }
    }
}

/// The `auth:` section of the config (empty for anonymous), writing whatever
/// files it references into `dir`.
async fn auth_config(auth: &AuthMode, dir: &Path) -> String {
    match auth {
        AuthMode::Anonymous => String::new(),
        AuthMode::Htpasswd { user, password } => {
            let path = dir.join("htpasswd");
            // -B: bcrypt, the only hash distribution accepts.
            let output = Command::new("htpasswd")
                .arg("-Bbc")
                .arg(&path)
                .arg(user)
                .arg(password)
                .output()
                .await
                .expect("run htpasswd (apache2-utils installed?)");
            assert!(
                output.status.success(),
                "htpasswd failed: {}",
                String::from_utf8_lossy(&output.stderr)
            );
            format!(
                "auth:\n  htpasswd:\n    realm: tidewatch-test\n    path: {}\n",
                yaml_str(&path)
            )
        }
        AuthMode::Token(issuer) => {
            let bundle = issuer.write_cert_bundle(dir);
            format!(
                "auth:\n  token:\n    realm: {}\n    service: {}\n    issuer: {}\n    rootcertbundle: {}\n",
                yaml_quote(&issuer.url),
                yaml_quote(&issuer.service),
                yaml_quote(&issuer.issuer),
                yaml_str(&bundle)
            )
        }
    }
}

/// A double-quoted YAML scalar (JSON string syntax is valid YAML).
fn yaml_quote(text: &str) -> String {
    serde_json::to_string(text).expect("serialize string")
}

fn yaml_str(path: &Path) -> String {
    yaml_quote(path.to_str().expect("tempdir paths are UTF-8"))
}

/// `"arm/v7"` -> `("arm", Some("v7"))`, `"amd64"` -> `("amd64", None)`.
fn split_arch(arch: &str) -> (&str, Option<&str>) {
    match arch.split_once('/') {
        Some((architecture, variant)) => (architecture, Some(variant)),
        None => (arch, None),
    }
}

/// Panics with the response body unless the status is `expected`.
async fn expect_status(response: reqwest::Response, expected: StatusCode, what: &str) {
    let status = response.status();
    if status != expected {
        let body = response.text().await.unwrap_or_default();
        panic!("{what}: expected {expected}, got {status}: {body}");
    }
}
