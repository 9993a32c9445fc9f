//! Replicas on Kubernetes Leases, against the stateful stand-in of the
//! Lease API (`support::kube_api`): its rules through the real `kube`
//! client, the elector over several Leases in process, and real
//! `tidewatch run` replicas over the real registry and a real bare remote.

mod support;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use kube::api::PostParams;
use support::git;
use support::kube_api::{Fail, KubeApi};
use support::proxy::{Fault, ProxyBehavior, TestProxy};
use support::registry::{AuthMode, TestRegistry};
use tidewatch::lease::api::LeaseApi;
use tidewatch::lease::{Elector, Settings};

const NS: &str = "fleet";

// ---------------------------------------------------------------------
// The stand-in's rules, through the real kube client.

fn lease(name: &str, holder: &str, seconds: i32) -> Lease {
    Lease {
        metadata: ObjectMeta {
            name: Some(name.into()),
            ..ObjectMeta::default()
        },
        spec: Some(LeaseSpec {
            holder_identity: Some(holder.into()),
            lease_duration_seconds: Some(seconds),
            renew_time: Some(MicroTime("2026-07-24T14:05:30.1234567Z".parse().unwrap())),
            ..LeaseSpec::default()
        }),
    }
}

fn api_error(result: kube::Result<Lease>) -> Box<kube::core::Status> {
    match result {
        Err(kube::Error::Api(status)) => status,
        other => panic!("expected an API error, got {other:?}"),
    }
}

#[tokio::test]
async fn the_stand_in_answers_as_the_api_server_does() {
    let server = KubeApi::start().await;
    let client = kube::Client::try_from(server.client_config()).unwrap();
    let leases: kube::Api<Lease> = kube::Api::namespaced(client, NS);
    let pp = PostParams::default();

    let created = leases.create(&pp, &lease("repo", "a", 15)).await.unwrap();
    let version = created.metadata.resource_version.clone().unwrap();
    assert!(created.metadata.uid.is_some());
    assert_eq!(created.metadata.namespace.as_deref(), Some(NS));
    // MicroTime comes back with six fractional digits.
    assert_eq!(
        server.lease(NS, "repo").unwrap()["spec"]["renewTime"],
        "2026-07-24T14:05:30.123456Z"
    );

    let exists = api_error(leases.create(&pp, &lease("repo", "b", 15)).await);
    assert_eq!(
        (exists.code, exists.reason.as_str()),
        (409, "AlreadyExists")
    );
    assert_eq!(
        exists.message,
        "leases.coordination.k8s.io \"repo\" already exists"
    );

    let missing = leases.get("nope").await.unwrap_err();
    let kube::Error::Api(missing) = missing else {
        panic!("{missing:?}")
    };
    assert_eq!((missing.code, missing.reason.as_str()), (404, "NotFound"));
    assert_eq!(
        missing.message,
        "leases.coordination.k8s.io \"nope\" not found"
    );
    assert_eq!(leases.get_opt("nope").await.unwrap(), None);

    // Optimistic concurrency: the first writer wins, the stale one gets 409.
    let mut first = created.clone();
    first.spec.as_mut().unwrap().holder_identity = Some("b".into());
    let written = leases.replace("repo", &pp, &first).await.unwrap();
    assert_ne!(
        written.metadata.resource_version.as_deref(),
        Some(&*version)
    );
    let mut stale = created.clone();
    stale.spec.as_mut().unwrap().holder_identity = Some("c".into());
    let conflict = api_error(leases.replace("repo", &pp, &stale).await);
    assert_eq!((conflict.code, conflict.reason.as_str()), (409, "Conflict"));
    assert_eq!(
        conflict.message,
        "Operation cannot be fulfilled on leases.coordination.k8s.io \"repo\": the object has been modified; please apply your changes to the latest version and try again"
    );
    assert_eq!(server.holder(NS, "repo").as_deref(), Some("b"));

    // No resourceVersion: Lease allows no unconditional update.
    let mut blind = written.clone();
    blind.metadata.resource_version = None;
    let invalid = api_error(leases.replace("repo", &pp, &blind).await);
    assert_eq!((invalid.code, invalid.reason.as_str()), (422, "Invalid"));
    assert_eq!(
        invalid.message,
        "leases.coordination.k8s.io \"repo\" is invalid: metadata.resourceVersion: Invalid value: 0x0: must be specified for an update"
    );

    // Validation of the spec.
    let mut zero = written.clone();
    zero.spec.as_mut().unwrap().lease_duration_seconds = Some(0);
    let invalid = api_error(leases.replace("repo", &pp, &zero).await);
    assert_eq!(invalid.code, 422);
    assert_eq!(
        invalid.message,
        "Lease.coordination.k8s.io \"repo\" is invalid: spec.leaseDurationSeconds: Invalid value: 0: must be greater than 0"
    );
    let bad_name = api_error(leases.create(&pp, &lease("Repo_1", "a", 15)).await);
    assert_eq!(bad_name.code, 422);
    assert!(
        bad_name
            .message
            .contains("metadata.name: Invalid value: \"Repo_1\": a lowercase RFC 1123 subdomain"),
        "{}",
        bad_name.message
    );

    // A PUT is no create, and names must agree.
    let absent = api_error(leases.replace("other", &pp, &lease("other", "a", 15)).await);
    assert_eq!(absent.code, 404);
    let mismatch = api_error(leases.replace("repo", &pp, &lease("other", "a", 15)).await);
    assert_eq!(
        (mismatch.code, mismatch.reason.as_str()),
        (400, "BadRequest")
    );
    assert_eq!(
        mismatch.message,
        "the name of the object (other) does not match the name on the URL (repo)"
    );

    // An update that changes nothing keeps the resourceVersion.
    let same = leases.replace("repo", &pp, &written).await.unwrap();
    assert_eq!(
        same.metadata.resource_version,
        written.metadata.resource_version
    );

    // The test's switch: 500 with an InternalError Status.
    server.fail(Fail::Everything);
    let failed = api_error(leases.get("repo").await);
    assert_eq!(
        (failed.code, failed.reason.as_str()),
        (500, "InternalError")
    );
    server.fail(Fail::Nothing);

    // No token: 401.
    let mut anonymous = server.client_config();
    anonymous.auth_info.token = None;
    let anonymous: kube::Api<Lease> =
        kube::Api::namespaced(kube::Client::try_from(anonymous).unwrap(), NS);
    let unauthorized = api_error(anonymous.get("repo").await);
    assert_eq!(
        (unauthorized.code, unauthorized.reason.as_str()),
        (401, "Unauthorized")
    );
}

// ---------------------------------------------------------------------
// The elector over several Leases, in process.

fn quick() -> Settings {
    Settings {
        namespace: Some(NS.into()),
        name: "repo".into(),
        lease_duration: Duration::from_secs(3),
        renew_deadline: Duration::from_secs(2),
        retry_period: Duration::from_millis(250),
    }
}

fn elector(server: &KubeApi, identity: &str, keys: &[String]) -> Elector {
    let api = LeaseApi::with_config(server.client_config(), Some(NS)).unwrap();
    Elector::with_api(quick(), identity.into(), keys.to_vec(), api)
}

/// How many Leases each elector holds, asserting that no Lease has two
/// holders by the electors' own view.
fn counts(electors: &[(&str, &Elector)], keys: &[String]) -> Vec<usize> {
    for key in keys {
        let holders: Vec<&str> = electors
            .iter()
            .filter(|(_, e)| e.holds(key))
            .map(|(name, _)| *name)
            .collect();
        assert!(holders.len() <= 1, "{key} is held by {holders:?} at once");
    }
    electors
        .iter()
        .map(|(_, e)| keys.iter().filter(|k| e.holds(k)).count())
        .collect()
}

async fn settle(
    what: &str,
    electors: &[(&str, &Elector)],
    keys: &[String],
    limit: Duration,
    want: impl Fn(&[usize]) -> bool,
) {
    let started = Instant::now();
    loop {
        let now = counts(electors, keys);
        if want(&now) {
            return;
        }
        assert!(
            started.elapsed() < limit,
            "{what}: shares are {now:?} after {limit:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn replicas_share_several_leases_fairly_and_take_over_the_free_ones() {
    let server = KubeApi::start().await;
    let keys: Vec<String> = (1..=6).map(|i| format!("repo-{i}")).collect();
    let a = elector(&server, "a", &keys);
    let b = elector(&server, "b", &keys);
    let c = elector(&server, "c", &keys);
    let all = [("a", &a), ("b", &b), ("c", &c)];
    settle(
        "three replicas",
        &all,
        &keys,
        Duration::from_secs(20),
        |n| n == [2, 2, 2],
    )
    .await;
    // Held steadily: nobody takes more than its share.
    let until = Instant::now() + Duration::from_secs(3);
    while Instant::now() < until {
        assert_eq!(counts(&all, &keys), [2, 2, 2]);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // c dies: its Leases are left free, and a and b take them beyond their
    // share (no one else is there to).
    drop(c);
    let two = [("a", &a), ("b", &b)];
    settle("c gone", &two, &keys, Duration::from_secs(20), |n| {
        n.iter().sum::<usize>() == 6 && n.iter().all(|&x| x == 3)
    })
    .await;
    // d joins: a and b give back one each, after which d holds its share.
    let d = elector(&server, "d", &keys);
    let three = [("a", &a), ("b", &b), ("d", &d)];
    settle("d joined", &three, &keys, Duration::from_secs(30), |n| {
        n == [2, 2, 2]
    })
    .await;
    // A graceful stop gives the Leases back at once.
    let gone = Instant::now();
    d.shutdown().await;
    settle("d stopped", &two, &keys, Duration::from_secs(20), |n| {
        n.iter().sum::<usize>() == 6
    })
    .await;
    assert!(
        gone.elapsed() < Duration::from_secs(3),
        "released Leases are taken without waiting for leaseDuration ({:?})",
        gone.elapsed()
    );
    // The server agrees with the electors.
    for key in &keys {
        let holder = server.holder(NS, key).unwrap();
        let elector = if holder == "a" { &a } else { &b };
        assert!(elector.holds(key), "{key}: server says {holder}");
    }
    let roster = server.lease(NS, "repo-members").unwrap();
    let members: BTreeMap<String, String> = serde_json::from_str(
        roster["metadata"]["annotations"]["tidewatch.io/members"]
            .as_str()
            .unwrap(),
    )
    .unwrap();
    assert!(!members.contains_key("d"), "d left the roster: {members:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn one_lease_needs_no_roster_and_a_holder_that_cannot_renew_stops_in_time() {
    let server = KubeApi::start().await;
    let keys = vec!["repo".to_string()];
    let a = elector(&server, "a", &keys);
    let b = elector(&server, "b", &keys);
    let started = Instant::now();
    while !(a.holds("repo") || b.holds("repo")) {
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "nobody took the Lease"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let (holder, standby, who) = if a.holds("repo") {
        (&a, &b, "a")
    } else {
        (&b, &a, "b")
    };
    let work = holder.work("repo").expect("the holder may work");
    let horizon = work.horizon();
    server.fail(Fail::WritesBy(who.into()));
    let flipped = Instant::now();
    // The horizon does not move any more; work must stop by renewDeadline.
    while horizon.holds_at(Instant::now()) {
        assert!(
            flipped.elapsed() < Duration::from_secs(3),
            "the holder went on working"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let stopped = flipped.elapsed();
    assert!(
        stopped <= Duration::from_secs(2),
        "stopped after {stopped:?}"
    );
    // The standby takes over only after leaseDuration since it last saw a
    // change: after the holder stopped.
    while !standby.holds("repo") {
        assert!(flipped.elapsed() < Duration::from_secs(8), "no takeover");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let taken = flipped.elapsed();
    assert!(
        taken > stopped,
        "taken over at {taken:?}, the holder stopped at {stopped:?}"
    );
    assert!(!holder.holds("repo"));
    drop(work);
    assert!(server.lease(NS, "repo-members").is_none());
    let last_a = server
        .writes()
        .iter()
        .filter(|w| w.holder.as_deref() == Some(who))
        .map(|w| w.instant)
        .max()
        .unwrap();
    let first_b = server
        .writes()
        .iter()
        .filter(|w| w.holder.is_some() && w.holder.as_deref() != Some(who))
        .map(|w| w.instant)
        .min()
        .unwrap();
    assert!(
        first_b - last_a >= Duration::from_secs(3),
        "the standby waited leaseDuration after the last renewal ({:?})",
        first_b - last_a
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_holder_that_gave_up_takes_its_own_lease_back_before_it_expires() {
    let server = KubeApi::start().await;
    let keys = vec!["repo".to_string()];
    let a = elector(&server, "a", &keys);
    let started = Instant::now();
    while !a.holds("repo") {
        assert!(started.elapsed() < Duration::from_secs(5));
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let b = elector(&server, "b", &keys);
    tokio::time::sleep(Duration::from_millis(600)).await;
    server.fail(Fail::WritesBy("a".into()));
    while a.holds("repo") {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // The API answers again before the Lease expired for b: a's record is
    // still a's, so a renews it (client-go's "I am the holder") and b
    // never holds it.
    server.fail(Fail::Nothing);
    let gave_up = Instant::now();
    while !a.holds("repo") {
        // At its next round (a retry period), not when the Lease expires
        // (leaseDuration - renewDeadline = 1 s after giving up).
        assert!(
            gave_up.elapsed() < Duration::from_millis(600),
            "a did not take its own Lease back at its next round"
        );
        assert!(!b.holds("repo"));
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    eprintln!(
        "a took its own Lease back {:?} after giving up",
        gave_up.elapsed()
    );
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert!(a.holds("repo") && !b.holds("repo"));
    assert!(server
        .writes()
        .iter()
        .all(|w| w.holder.as_deref() == Some("a")));
}

// ---------------------------------------------------------------------
// Real replicas: `tidewatch run` processes.

struct Replica {
    name: String,
    base: String,
    child: Child,
    log: PathBuf,
}

impl Drop for Replica {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Replica {
    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

/// A registry with team/app, a bare remote (reflog on) whose envs/dev
/// holds the app at 1.0.0, and the stand-in.
struct Fleet {
    dir: tempfile::TempDir,
    registry: TestRegistry,
    kube: KubeApi,
    bare: PathBuf,
    image: String,
    kubeconfig: PathBuf,
    http: reqwest::Client,
    /// In front of the registry: the host the replicas use.
    proxy: TestProxy,
}

#[derive(Clone, Copy)]
struct Durations {
    lease: u64,
    renew_ms: u64,
    retry_ms: u64,
}

impl Fleet {
    async fn start() -> Fleet {
        let dir = tempfile::tempdir().unwrap();
        let registry = TestRegistry::start(AuthMode::Anonymous).await;
        registry
            .push_image("team/app", &["1.0.0"], "2024-01-01T00:00:00Z", 1)
            .await;
        let proxy = TestProxy::start(&registry.base_url(), ProxyBehavior::default()).await;
        let image = format!("{}/team/app", proxy.host);
        let bare = dir.path().join("fleet.git");
        std::fs::create_dir_all(&bare).unwrap();
        git(&bare, &["init", "--bare", "-q"]);
        git(&bare, &["config", "core.logAllRefUpdates", "true"]);
        let seed = dir.path().join("seed");
        git(
            dir.path(),
            &[
                "clone",
                "-q",
                bare.to_str().unwrap(),
                seed.to_str().unwrap(),
            ],
        );
        std::fs::create_dir_all(seed.join("envs/dev")).unwrap();
        std::fs::write(
            seed.join("envs/dev/app.yaml"),
            format!(
                "kind: Pod\nspec:\n  containers:\n    - name: app\n      image: {image}:1.0.0\n"
            ),
        )
        .unwrap();
        git(&seed, &["add", "."]);
        git(&seed, &["commit", "-q", "-m", "initial"]);
        git(&seed, &["push", "-q", "origin", "HEAD:main"]);
        let kube = KubeApi::start().await;
        let kubeconfig = kube.kubeconfig(dir.path(), NS);
        Fleet {
            dir,
            registry,
            kube,
            bare,
            image,
            kubeconfig,
            proxy,
            http: reqwest::Client::builder()
                .no_proxy()
                .timeout(Duration::from_secs(2))
                .build()
                .unwrap(),
        }
    }

    /// Starts replica `name` (its commits are authored by `name`); with
    /// `durations`, under leader election.
    fn replica(&self, name: &str, durations: Option<Durations>) -> Replica {
        let election = durations.map_or_else(String::new, |d| {
            format!(
                "  leaderElection: {{ name: fleet-repo, leaseDuration: {}s, renewDeadline: {}ms, retryPeriod: {}ms }}\n",
                d.lease, d.renew_ms, d.retry_ms
            )
        });
        let config = self.dir.path().join(format!("{name}.yaml"));
        std::fs::write(
            &config,
            format!(
                "repository:\n  url: 'file://{}'\n  branch: main\n  author: {{ name: {name}, email: {name}@example.com }}\nregistries:\n  - {{ host: '{}', insecure: true, maxAttempts: 1 }}\nimages:\n  - {{ name: app, image: '{}', semver: ^1, interval: 1s }}\nupdates:\n  - {{ name: dev, paths: [envs/dev], branch: dev }}\nserver:\n  allowUnauthenticatedWebhooks: true\n{election}",
                self.bare.display(),
                self.proxy.host,
                self.image,
            ),
        )
        .unwrap();
        let port = support::free_port();
        let log = self.dir.path().join(format!("{name}.log"));
        let child = Command::new(env!("CARGO_BIN_EXE_tidewatch"))
            .args(["run", "-c", config.to_str().unwrap()])
            .args(["--listen", &format!("127.0.0.1:{port}")])
            .args([
                "--workdir",
                self.dir
                    .path()
                    .join(format!("work-{name}"))
                    .to_str()
                    .unwrap(),
            ])
            .env("KUBECONFIG", &self.kubeconfig)
            .env("POD_NAME", name)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        Replica {
            name: name.into(),
            base: format!("http://127.0.0.1:{port}"),
            child,
            log,
        }
    }

    async fn get(&self, replica: &Replica, path: &str) -> (u16, String) {
        match self
            .http
            .get(format!("{}{path}", replica.base))
            .send()
            .await
        {
            Ok(r) => (r.status().as_u16(), r.text().await.unwrap_or_default()),
            Err(_) => (0, String::new()),
        }
    }

    /// Which replicas answer /readyz 200 (each asked at about the same time).
    async fn ready(&self, replicas: &[&Replica]) -> Vec<String> {
        let answers = futures_join(replicas.iter().map(|r| self.get(r, "/readyz"))).await;
        replicas
            .iter()
            .zip(answers)
            .filter(|(_, (code, _))| *code == 200)
            .map(|(r, _)| r.name.clone())
            .collect()
    }

    /// The stand-in's holder, as a replica name (identities are
    /// `<POD_NAME>_<suffix>`).
    fn holder(&self) -> Option<String> {
        self.kube
            .holder(NS, "fleet-repo")
            .and_then(|h| h.rsplit_once('_').map(|(name, _)| name.to_string()))
    }

    /// The bare remote's reflog of `dev`: (unix seconds, author) per update.
    fn pushes(&self) -> Vec<(u64, String)> {
        let out = Command::new("git")
            .args([
                "log",
                "-g",
                "--date=unix",
                "--format=%gd%x09%an",
                "refs/heads/dev",
            ])
            .current_dir(&self.bare)
            .output()
            .unwrap();
        if !out.status.success() {
            return Vec::new();
        }
        let mut pushes: Vec<(u64, String)> = String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|line| {
                let (selector, author) = line.split_once('\t')?;
                let seconds = selector.split_once("@{")?.1.strip_suffix('}')?;
                Some((seconds.parse().ok()?, author.to_string()))
            })
            .collect();
        pushes.sort();
        pushes
    }
}

/// Awaits all of `futures` concurrently (no extra crate: spawn-free join).
async fn futures_join<F: std::future::Future>(futures: impl Iterator<Item = F>) -> Vec<F::Output> {
    let mut pinned: Vec<std::pin::Pin<Box<F>>> = futures.map(Box::pin).collect();
    let mut out: Vec<Option<F::Output>> = pinned.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (slot, fut) in out.iter_mut().zip(pinned.iter_mut()) {
            if slot.is_none() {
                match fut.as_mut().poll(cx) {
                    std::task::Poll::Ready(v) => *slot = Some(v),
                    std::task::Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            std::task::Poll::Pending
        } else {
            std::task::Poll::Ready(())
        }
    })
    .await;
    out.into_iter().map(|v| v.unwrap()).collect()
}

/// A process's resident memory (Linux `/proc`).
fn rss_kb(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next().and_then(|n| n.parse().ok()))
        .unwrap_or(0)
}

fn strip_ansi(line: &str) -> String {
    let mut out = String::new();
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

fn unix(t: SystemTime) -> f64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

async fn wait_for<T>(what: &str, limit: Duration, mut check: impl AsyncFnMut() -> Option<T>) -> T {
    let started = Instant::now();
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(
            started.elapsed() < limit,
            "{what} did not happen within {limit:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Samples every 100 ms for 60 s: each replica's own view (/readyz) and
/// the stand-in's; exactly one holder at every sample.
async fn one_holder_at_every_sample(n: usize) {
    let fleet = Fleet::start().await;
    let durations = Durations {
        lease: 6,
        renew_ms: 4000,
        retry_ms: 1000,
    };
    let replicas: Vec<Replica> = (0..n)
        .map(|i| fleet.replica(&format!("replica-{i}"), Some(durations)))
        .collect();
    let all: Vec<&Replica> = replicas.iter().collect();
    let first = wait_for("a ready holder", Duration::from_secs(30), async || {
        let ready = fleet.ready(&all).await;
        (ready.len() == 1).then(|| ready[0].clone())
    })
    .await;
    let mut samples = 0;
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(60) {
        let ready = fleet.ready(&all).await;
        let holder = fleet.holder();
        assert_eq!(
            ready.len(),
            1,
            "sample {samples}: replicas {ready:?} say they hold the Lease (stand-in: {holder:?})"
        );
        assert_eq!(
            holder.as_deref(),
            Some(ready[0].as_str()),
            "sample {samples}: the stand-in and the replicas disagree"
        );
        samples += 1;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(samples >= 300, "only {samples} samples in 60 s");
    eprintln!("{n} replicas: {samples} samples over 60 s, exactly one holder at each");
    let holder = fleet.holder().unwrap();
    assert_eq!(holder, first, "no handover without a failure");
    // Each standby says who holds the Lease, and the status pages name it.
    for replica in &replicas {
        let (code, body) = fleet.get(replica, "/readyz").await;
        let (health, _) = fleet.get(replica, "/healthz").await;
        assert_eq!(health, 200, "{}: /healthz", replica.name);
        let (_, page) = fleet.get(replica, "/").await;
        assert!(
            page.contains(&format!("<code>{holder}_")),
            "{}: {page}",
            replica.name
        );
        if replica.name != holder {
            assert_eq!(code, 503);
            assert!(
                body.contains(&format!(
                    "standby: the Lease {NS}/fleet-repo is held by {holder}_"
                )),
                "{body}"
            );
        }
    }
    for replica in &replicas {
        let role = if replica.name == holder {
            "holder"
        } else {
            "standby"
        };
        eprintln!(
            "{} ({role}): resident memory {} kB",
            replica.name,
            rss_kb(replica.child.id())
        );
    }
    let holding = replicas.iter().find(|r| r.name == holder).unwrap();
    let (_, metrics) = fleet.get(holding, "/metrics").await;
    assert!(
        metrics.contains(&format!(
            "tidewatch_lease_held{{lease=\"{NS}/fleet-repo\"}} 1"
        )),
        "{metrics}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn two_replicas_have_exactly_one_holder_at_every_sample() {
    one_holder_at_every_sample(2).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn three_replicas_have_exactly_one_holder_at_every_sample() {
    one_holder_at_every_sample(3).await;
}

const FAST: Durations = Durations {
    lease: 3,
    renew_ms: 2000,
    retry_ms: 500,
};

#[tokio::test(flavor = "multi_thread")]
async fn a_killed_holder_is_replaced_within_lease_duration_and_retry_period() {
    let fleet = Fleet::start().await;
    let mut replicas: Vec<Replica> = ["replica-a", "replica-b", "replica-c"]
        .iter()
        .map(|name| fleet.replica(name, Some(FAST)))
        .collect();
    let holder = wait_for("a holder", Duration::from_secs(30), async || fleet.holder()).await;
    // Let it renew a few times, then SIGKILL it.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let victim = replicas.iter_mut().find(|r| r.name == holder).unwrap();
    let killed = Instant::now();
    victim.child.kill().unwrap();
    victim.child.wait().unwrap();
    let next = wait_for("another holder", Duration::from_secs(15), async || {
        fleet.holder().filter(|h| *h != holder)
    })
    .await;
    let taken = fleet
        .kube
        .writes()
        .iter()
        .filter(|w| {
            w.holder
                .as_deref()
                .is_some_and(|h| h.starts_with(&format!("{next}_")))
        })
        .map(|w| w.instant)
        .min()
        .unwrap();
    let took = taken - killed;
    let bound = Duration::from_secs(FAST.lease) + Duration::from_millis(FAST.retry_ms);
    // The bound plus the two loopback calls of the takeover (GET, PUT).
    assert!(
        took <= bound + Duration::from_millis(250),
        "{next} took the Lease {took:?} after the kill; bound {bound:?}"
    );
    // Not before the killed holder's term could have ended.
    assert!(
        took >= Duration::from_secs(FAST.lease) - Duration::from_millis(FAST.retry_ms),
        "{took:?}"
    );
    eprintln!("takeover after SIGKILL: {took:?} (bound {bound:?})");
    // The new holder runs the cycles: it becomes ready.
    let survivors: Vec<&Replica> = replicas.iter().filter(|r| r.name != holder).collect();
    let ready = wait_for(
        "the new holder ready",
        Duration::from_secs(20),
        async || {
            let ready = fleet.ready(&survivors).await;
            (!ready.is_empty()).then_some(ready)
        },
    )
    .await;
    assert_eq!(ready, [next]);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_stopped_holder_gives_the_lease_back_at_once() {
    let fleet = Fleet::start().await;
    let mut replicas: Vec<Replica> = ["replica-a", "replica-b"]
        .iter()
        .map(|name| fleet.replica(name, Some(FAST)))
        .collect();
    let holder = wait_for("a holder", Duration::from_secs(30), async || fleet.holder()).await;
    let all: Vec<&Replica> = replicas.iter().collect();
    wait_for("the holder ready", Duration::from_secs(30), async || {
        (fleet.ready(&all).await == [holder.clone()]).then_some(())
    })
    .await;
    let victim = replicas.iter_mut().find(|r| r.name == holder).unwrap();
    let stopped = Instant::now();
    let status = Command::new("kill")
        .args(["-TERM", &victim.child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let next = wait_for("another holder", Duration::from_secs(10), async || {
        fleet.holder().filter(|h| *h != holder)
    })
    .await;
    let took = stopped.elapsed();
    let exit = victim.child.wait().unwrap();
    assert!(
        exit.success(),
        "SIGTERM exits 0: {exit:?}\n{}",
        victim.log()
    );
    assert!(
        victim.log().contains("gave the Lease back"),
        "{}",
        victim.log()
    );
    // Released, not expired: well before leaseDuration.
    assert!(
        took < Duration::from_secs(FAST.lease) - Duration::from_millis(FAST.retry_ms),
        "{next} took over {took:?} after SIGTERM"
    );
    eprintln!("takeover after SIGTERM: {took:?}");
}

#[test]
fn a_replica_without_a_kubernetes_client_exits_with_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("p.yaml");
    std::fs::write(
        &config,
        format!(
            "repository: {{ url: 'file://{}/none.git' }}\nserver:\n  leaderElection: {{}}\n",
            dir.path().display()
        ),
    )
    .unwrap();
    let port = support::free_port();
    let out = Command::new(env!("CARGO_BIN_EXE_tidewatch"))
        .args(["run", "-c", config.to_str().unwrap()])
        .args(["--listen", &format!("127.0.0.1:{port}")])
        .args(["--workdir", dir.path().join("work").to_str().unwrap()])
        .env("KUBECONFIG", dir.path().join("missing-kubeconfig"))
        .env_remove("KUBERNETES_SERVICE_HOST")
        .env_remove("KUBERNETES_SERVICE_PORT")
        .env("HOME", dir.path())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("leader election is on (`server.leaderElection`), but no Kubernetes API client could be configured"),
        "{stderr}"
    );
    assert!(stderr.contains("set KUBECONFIG"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_holder_that_cannot_renew_pushes_nothing_after_its_deadline() {
    let fleet = Fleet::start().await;
    let durations = Durations {
        lease: 4,
        renew_ms: 2000,
        retry_ms: 500,
    };
    let a = fleet.replica("replica-a", Some(durations));
    wait_for("replica-a holding", Duration::from_secs(30), async || {
        (fleet.holder().as_deref() == Some("replica-a")).then_some(())
    })
    .await;
    let b = fleet.replica("replica-b", Some(durations));
    // New tags keep arriving; the holder commits each one (interval 1s).
    let registry = &fleet.registry;
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let tagger = {
        let stop = stop.clone();
        async move {
            let mut minor = 1;
            while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                let tag = format!("1.{minor}.0");
                registry
                    .push_image("team/app", &[&tag], "2024-02-01T00:00:00Z", 10 + minor)
                    .await;
                minor += 1;
                tokio::time::sleep(Duration::from_millis(400)).await;
            }
        }
    };
    let scenario = async {
        wait_for(
            "three pushes by replica-a",
            Duration::from_secs(30),
            async || {
                let by_a = fleet
                    .pushes()
                    .iter()
                    .filter(|(_, w)| w == "replica-a")
                    .count();
                (by_a >= 3).then_some(())
            },
        )
        .await;
        // From now on every write by replica-a fails with 500, and its next
        // cycle is slow (its tags list hangs past the deadline), so that
        // the deadline falls in the middle of a cycle.
        fleet.kube.fail(Fail::WritesBy("replica-a_".into()));
        let flipped = SystemTime::now();
        fleet.proxy.inject(
            "/v2/team/app/tags",
            vec![Fault::Hang(Duration::from_secs(3))],
        );
        let (code, _) = wait_for("replica-a not ready", Duration::from_secs(10), async || {
            let answer = fleet.get(&a, "/readyz").await;
            (answer.0 == 503).then_some(answer)
        })
        .await;
        assert_eq!(code, 503);
        wait_for(
            "two pushes by replica-b",
            Duration::from_secs(30),
            async || {
                let by_b = fleet
                    .pushes()
                    .iter()
                    .filter(|(_, w)| w == "replica-b")
                    .count();
                (by_b >= 2).then_some(())
            },
        )
        .await;
        stop.store(true, std::sync::atomic::Ordering::SeqCst);
        flipped
    };
    let (flipped, ()) = tokio::join!(scenario, tagger);
    let writes = fleet.kube.writes();
    let last_renewal = writes
        .iter()
        .filter(|w| {
            w.holder
                .as_deref()
                .is_some_and(|h| h.starts_with("replica-a_"))
        })
        .map(|w| w.at)
        .max()
        .unwrap();
    let takeover = writes
        .iter()
        .filter(|w| {
            w.holder
                .as_deref()
                .is_some_and(|h| h.starts_with("replica-b_"))
        })
        .map(|w| w.at)
        .min()
        .unwrap();
    assert!(last_renewal <= flipped);
    // replica-a's deadline: its last successful renewal + renewDeadline.
    let deadline = unix(last_renewal) + durations.renew_ms as f64 / 1000.0;
    let pushes = fleet.pushes();
    let last_a = pushes
        .iter()
        .filter(|(_, w)| w == "replica-a")
        .map(|(t, _)| *t)
        .max()
        .unwrap();
    let first_b = pushes
        .iter()
        .filter(|(_, w)| w == "replica-b")
        .map(|(t, _)| *t)
        .min()
        .unwrap();
    eprintln!(
        "renewals failing from {:.3}; replica-a's last renewal {:.3}, deadline {deadline:.3}; replica-b took over at {:.3}; pushes (unix s, by): {pushes:?}",
        unix(flipped),
        unix(last_renewal),
        unix(takeover)
    );
    // Reflog times are whole seconds (rounded down).
    assert!(
        (last_a as f64) <= deadline,
        "replica-a pushed at {last_a} after its deadline {deadline:.3}: {pushes:?}\n{}",
        a.log()
    );
    assert!(
        last_a < first_b,
        "pushes overlap: replica-a's last {last_a}, replica-b's first {first_b}"
    );
    assert!(
        unix(takeover) > deadline,
        "the takeover came before replica-a's deadline"
    );
    assert!(
        a.log().contains("lost the Lease"),
        "replica-a says it stopped:\n{}",
        a.log()
    );
    assert!(
        a.log().contains("the cycle was abandoned while scanning the registries: this replica could not renew its Lease"),
        "replica-a abandoned the cycle in progress at its deadline:\n{}",
        a.log()
    );
    // Every push replica-a logged (microseconds) came before its deadline.
    for line in a
        .log()
        .lines()
        .filter(|l| l.contains("tidewatch::git::push: pushed"))
    {
        let stamp: jiff::Timestamp = strip_ansi(line)
            .split_whitespace()
            .next()
            .unwrap()
            .parse()
            .unwrap();
        let at = stamp.as_microsecond() as f64 / 1e6;
        assert!(
            at < deadline,
            "replica-a logged a push at {at:.6}, its deadline {deadline:.6}"
        );
    }
    drop(b);
}

#[tokio::test(flavor = "multi_thread")]
async fn without_leader_election_the_service_never_calls_kubernetes() {
    let fleet = Fleet::start().await;
    let single = fleet.replica("single", None);
    wait_for("ready", Duration::from_secs(30), async || {
        (fleet.get(&single, "/readyz").await.0 == 200).then_some(())
    })
    .await;
    let (_, page) = fleet.get(&single, "/").await;
    assert!(!page.contains("Leader election"));
    assert_eq!(fleet.kube.requests(), 0, "KUBECONFIG is set but unused");
}

#[test]
fn check_names_leader_election_problems_with_positions() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("p.yaml");
    std::fs::write(
        &file,
        "repository: { url: 'file:///x' }\nserver:\n  leaderElection:\n    name: Fleet_Repo\n    leaseDuration: 10s\n    renewDeadline: 10s\n    retryPeriod: 1500ms\n",
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_tidewatch"))
        .args(["check", "-c", file.to_str().unwrap()])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    let shown = file.display().to_string();
    for expected in [
        format!("{shown}:4:11: server.leaderElection.name: `Fleet_Repo` is not a valid Lease name"),
        format!("{shown}:6:20: server.leaderElection.renewDeadline: `renewDeadline` (10s) must be less than `leaseDuration` (10s)"),
    ] {
        assert!(stderr.contains(&expected), "missing {expected}\n{stderr}");
    }
    // A good one passes, and the keys are spelled as documented.
    std::fs::write(
        &file,
        "repository: { url: 'file:///x' }\nserver:\n  leaderElection: { namespace: fleet, name: tidewatch, leaseDuration: 15s, renewDeadline: 10s, retryPeriod: 2s }\n",
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_tidewatch"))
        .args(["check", "-c", file.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
