//! Shared harness for registry integration tests.
//!
//! * [`registry::TestRegistry`] runs a real CNCF distribution registry
//!   (`docker-registry serve`, Debian's 2.8.x) on a loopback port with
//!   throw-away storage, and can seed it with images, indexes and tags.
//! * [`token::TokenIssuer`] is an in-process Docker token-auth server that the
//!   registry trusts in [`registry::AuthMode::Token`].
//! * [`proxy::TestProxy`] sits in front of a registry to add GHCR/Quay-style
//!   pagination and to inject faults.
//! * [`kube_api::KubeApi`] is a stateful stand-in of the Kubernetes API for
//!   the Lease resource (leader election).
//!
//! Every test file that wants the harness declares `mod support;`. Not every
//! file uses every helper, hence the blanket `dead_code` allowance.
#![allow(dead_code)]

pub mod cosign;
pub mod git_http;
pub mod github;
pub mod kube_api;
pub mod proxy;
pub mod registry;
pub mod tcp;
pub mod tls;
pub mod token;

use std::net::{Ipv4Addr, TcpListener};

/// A loopback TCP port that was free a moment ago.
///
/// The port is released before returning, so another process could grab it in
/// between; [`registry::TestRegistry::start`] retries on a bind failure. The
/// in-process servers (issuer, proxy) bind port 0 directly and do not need this.
pub fn free_port() -> u16 {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .expect("bind an ephemeral loopback port")
        .local_addr()
        .expect("local address of the ephemeral listener")
        .port()
}

/// An HTTP client for talking to the harness servers: no proxy from the
/// environment (loopback traffic must never leave the machine) and no
/// redirect following (tests want to see registries' answers verbatim).
pub fn http_client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("build reqwest client")
}

/// `sha256:<lowercase hex>` of `bytes`, the form registries use for digests.
pub fn sha256_digest(bytes: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    use std::fmt::Write;

    let hash = Sha256::digest(bytes);
    let mut out = String::with_capacity(7 + 64);
    out.push_str("sha256:");
    for byte in hash.iter() {
        write!(out, "{byte:02x}").expect("writing to a String cannot fail");
    }
    out
}

/// Abort a spawned server task when the owning handle is dropped.
pub(crate) struct AbortOnDrop(pub(crate) tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Split a raw query string into decoded `(key, value)` pairs, keeping
/// repeated keys (token requests repeat `scope`) in their original order.
pub(crate) fn parse_query(query: &str) -> Vec<(String, String)> {
    query
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            (percent_decode(key), percent_decode(value))
        })
        .collect()
}

/// `application/x-www-form-urlencoded` decoding: `+` is a space, `%XX` a byte.
/// Malformed escapes are kept literally rather than rejected.
fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let escaped = bytes
                    .get(i + 1..i + 3)
                    .filter(|hex| hex.iter().all(u8::is_ascii_hexdigit))
                    .and_then(|hex| std::str::from_utf8(hex).ok())
                    .and_then(|hex| u8::from_str_radix(hex, 16).ok());
                match escaped {
                    Some(byte) => {
                        out.push(byte);
                        i += 2;
                    }
                    None => out.push(b'%'),
                }
            }
            other => out.push(other),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Runs the `git` CLI as a human would (fixed identity, `main` as the
/// default branch) and returns its stdout; fails the test on error.
pub fn git(dir: &std::path::Path, args: &[&str]) -> String {
    let out = std::process::Command::new("git")
        .args([
            "-c",
            "user.name=Human",
            "-c",
            "user.email=human@example.com",
            "-c",
            "init.defaultBranch=main",
        ])
        .args(args)
        .current_dir(dir)
        .output()
        .expect("run git");
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A bare repository `fleet.git` under `root` and a human's clone of it
/// (`human`), with `files` (path, text) committed and pushed to `main`.
/// Returns (bare, clone).
pub fn environment_repo(
    root: &std::path::Path,
    files: &[(&str, &str)],
) -> (std::path::PathBuf, std::path::PathBuf) {
    let bare = root.join("fleet.git");
    std::fs::create_dir_all(&bare).expect("create the bare repository's directory");
    git(&bare, &["init", "--bare", "-q"]);
    let human = root.join("human");
    git(
        root,
        &[
            "clone",
            "-q",
            bare.to_str().expect("UTF-8 temp path"),
            human.to_str().expect("UTF-8 temp path"),
        ],
    );
    for (path, text) in files {
        let file = human.join(path);
        std::fs::create_dir_all(file.parent().expect("a file path has a parent"))
            .expect("create the file's directory");
        std::fs::write(file, text).expect("write a seed file");
    }
    git(&human, &["add", "."]);
    git(&human, &["commit", "-q", "-m", "initial"]);
    git(&human, &["push", "-q", "origin", "HEAD:main"]);
    (bare, human)
}
