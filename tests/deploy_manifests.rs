//! Validation of the packaging files: the Kubernetes manifests in
//! `deploy/kubernetes/` against the Kubernetes OpenAPI schemas, and the policy
//! files shipped as examples (`policies/examples/*.yaml` and the policy file
//! embedded in the `tidewatch-policies` ConfigMap) against tidewatch's own
//! loader.
//!
//! Schema validation uses `kubernetes-validate` (PyPI), which bundles the
//! JSON schemas of every Kubernetes release it supports and validates
//! offline. With `--strict` it rejects unknown fields, so a misspelled field
//! fails like `kubectl apply --dry-run=server --validate=strict` would,
//! without needing a cluster. It is installed by
//!
//! ```sh
//! python3 -m pip install kubernetes-validate==1.37.0
//! ```
//!
//! and the test fails (it never skips) when the tool is missing. Set
//! `KUBERNETES_VALIDATE` to the command to use another installation.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde::Deserialize;
use serde_norway::Value;

const INSTALL: &str = "python3 -m pip install kubernetes-validate==1.37.0";

/// Kubernetes releases the manifests must be valid for: an older release
/// still in wide use and the newest one the pinned validator knows.
const KUBERNETES_VERSIONS: &[&str] = &["1.30.0", "1.37.0"];

const EXAMPLES: &[&str] = &[
    "semver-dev-commit.yaml",
    "prod-pull-request.yaml",
    "calver-filter-numerical.yaml",
    "latest-by-digest.yaml",
    "flux-marker-migration.yaml",
];

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn deploy_dir() -> PathBuf {
    root().join("deploy/kubernetes")
}

/// Every `*.yaml`/`*.yml` file in `deploy/kubernetes/` except the
/// kustomization, in name order.
fn manifest_files() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(deploy_dir())
        .expect("read deploy/kubernetes")
        .map(|entry| entry.expect("dir entry").path())
        .filter(|path| {
            let name = path.file_name().unwrap().to_string_lossy();
            (name.ends_with(".yaml") || name.ends_with(".yml"))
                && name != "kustomization.yaml"
                && name != "kustomization.yml"
        })
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no manifests in deploy/kubernetes");
    files
}

/// The YAML documents of a file (empty documents are skipped, as kubectl
/// does).
fn documents(path: &Path) -> Vec<Value> {
    let text =
        std::fs::read_to_string(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    serde_norway::Deserializer::from_str(&text)
        .map(|doc| {
            Value::deserialize(doc)
                .unwrap_or_else(|e| panic!("{} is not valid YAML: {e}", path.display()))
        })
        .filter(|value| !value.is_null())
        .collect()
}

fn str_at<'a>(value: &'a Value, path: &[&str]) -> Option<&'a str> {
    let mut current = value;
    for key in path {
        current = current.get(*key)?;
    }
    current.as_str()
}

/// `kind/name` as kubernetes-validate prints it.
fn resource_id(path: &Path, doc: &Value) -> String {
    let kind = str_at(doc, &["kind"])
        .unwrap_or_else(|| panic!("{}: a document without `kind`", path.display()));
    let name = str_at(doc, &["metadata", "name"])
        .unwrap_or_else(|| panic!("{}: a {kind} without `metadata.name`", path.display()));
    format!("{}/{}", kind.to_lowercase(), name)
}

/// The command that runs kubernetes-validate, or a failure naming the
/// install command.
fn validator() -> Vec<String> {
    let mut candidates: Vec<Vec<String>> = Vec::new();
    if let Ok(custom) = std::env::var("KUBERNETES_VALIDATE") {
        candidates.push(custom.split_whitespace().map(str::to_owned).collect());
    }
    candidates.push(vec!["kubernetes-validate".into()]);
    candidates.push(vec![
        "python3".into(),
        "-m".into(),
        "kubernetes_validate".into(),
    ]);
    for candidate in candidates {
        if candidate.is_empty() {
            continue;
        }
        let works = Command::new(&candidate[0])
            .args(&candidate[1..])
            .arg("--version")
            .output()
            .map(|out| out.status.success())
            .unwrap_or(false);
        if works {
            return candidate;
        }
    }
    panic!(
        "kubernetes-validate is not installed; it validates deploy/kubernetes/ against the \
         Kubernetes schemas offline. Install it with:\n    {INSTALL}\n\
         (or set KUBERNETES_VALIDATE to the command that runs it)"
    );
}

/// Validates every document of `path` strictly (unknown fields are errors)
/// for each of [`KUBERNETES_VERSIONS`]. A document passes only when the
/// validator reports it as passed for every version: a kind it has no schema
/// for (a misspelled `kind`) is a warning to the tool, and a failure here.
fn validate(tool: &[String], path: &Path) -> Result<(), String> {
    let expected: Vec<String> = documents(path)
        .iter()
        .map(|doc| resource_id(path, doc))
        .collect();
    if expected.is_empty() {
        return Err(format!("{} holds no Kubernetes object", path.display()));
    }
    let mut command = Command::new(&tool[0]);
    command.args(&tool[1..]).arg("--strict");
    for version in KUBERNETES_VERSIONS {
        command.args(["-k", version]);
    }
    let out = command
        .arg(path)
        .output()
        .map_err(|e| format!("cannot run {}: {e}", tool.join(" ")))?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let report = format!("{}:\n{stdout}{stderr}", path.display());
    if !out.status.success() {
        return Err(report);
    }
    if stdout.lines().chain(stderr.lines()).any(|line| {
        line.starts_with("WARN") || line.starts_with("ERROR") || line.starts_with("FATAL")
    }) {
        return Err(report);
    }
    for id in &expected {
        let needle = format!(" passed for resource {id} against version ");
        let passed = stdout
            .lines()
            .filter(|line| line.starts_with("INFO ") && line.contains(&needle))
            .count();
        if passed != KUBERNETES_VERSIONS.len() {
            return Err(format!(
                "{id} passed for {passed} of {} Kubernetes versions\n{report}",
                KUBERNETES_VERSIONS.len()
            ));
        }
    }
    Ok(())
}

#[test]
fn manifests_pass_strict_kubernetes_schema_validation() {
    let tool = validator();
    let mut failures = Vec::new();
    for file in manifest_files() {
        if let Err(report) = validate(&tool, &file) {
            failures.push(report);
        }
    }
    assert!(
        failures.is_empty(),
        "invalid manifests:\n{}",
        failures.join("\n")
    );
}

#[test]
fn the_validator_rejects_broken_manifests() {
    let tool = validator();
    let dir = tempfile::tempdir().unwrap();
    let deployment = |replicas: &str, extra: &str| {
        format!(
            "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: broken\nspec:\n  \
             replicas: {replicas}\n  selector:\n    matchLabels: {{app: broken}}\n  template:\n    \
             metadata:\n      labels: {{app: broken}}\n    spec:\n      containers:\n        \
             - name: app\n          image: tidewatch:0.1.0\n{extra}"
        )
    };
    let cases = [
        ("good.yaml", "", deployment("1", "")),
        ("wrong-type.yaml", "'one' is not of type", deployment("\"one\"", "")),
        (
            "misspelled-field.yaml",
            "'imagePullPolcy' was unexpected",
            deployment("1", "          imagePullPolcy: IfNotPresent\n"),
        ),
        (
            "misspelled-kind.yaml",
            "Couldn't find schema for kind Sevrice",
            "apiVersion: v1\nkind: Sevrice\nmetadata:\n  name: broken\nspec:\n  ports: [{port: 80}]\n"
                .to_owned(),
        ),
        (
            "second-document.yaml",
            "'prots' was unexpected",
            format!(
                "{}---\napiVersion: v1\nkind: Service\nmetadata:\n  name: broken\nspec:\n  \
                 prots: [{{port: 80}}]\n",
                deployment("1", "")
            ),
        ),
    ];
    for (name, reason, text) in &cases {
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        match validate(&tool, &path) {
            Ok(()) if reason.is_empty() => {}
            Ok(()) => panic!("{name} must be rejected ({reason}):\n{text}"),
            Err(report) if reason.is_empty() => panic!("the control manifest must pass:\n{report}"),
            Err(report) => assert!(
                report.contains(reason),
                "{name} was rejected, but not for `{reason}`:\n{report}"
            ),
        }
    }
}

#[test]
fn kustomization_lists_every_manifest() {
    let kustomization = documents(&deploy_dir().join("kustomization.yaml"));
    assert_eq!(kustomization.len(), 1);
    let listed: BTreeSet<String> = kustomization[0]
        .get("resources")
        .and_then(Value::as_sequence)
        .expect("kustomization.yaml has resources")
        .iter()
        .map(|item| item.as_str().expect("a resource path").to_owned())
        .collect();
    let present: BTreeSet<String> = manifest_files()
        .iter()
        .map(|path| path.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        listed, present,
        "kustomization.yaml resources vs files in deploy/kubernetes"
    );
    assert!(
        kustomization[0].get("namespace").is_none(),
        "the manifests are namespace-less; the user picks the namespace"
    );
}

/// Every object of every manifest, by `kind/name`.
fn objects() -> Vec<(String, Value)> {
    manifest_files()
        .iter()
        .flat_map(|file| {
            documents(file)
                .into_iter()
                .map(move |doc| (resource_id(file, &doc), doc))
        })
        .collect()
}

fn object(id: &str) -> Value {
    objects()
        .into_iter()
        .find(|(found, _)| found == id)
        .unwrap_or_else(|| panic!("no {id} in deploy/kubernetes"))
        .1
}

#[test]
fn manifests_fit_together() {
    for (id, doc) in objects() {
        assert!(
            doc.get("metadata")
                .and_then(|m| m.get("namespace"))
                .is_none(),
            "{id} sets a namespace; the manifests are namespace-less"
        );
    }
    let deployment = object("deployment/tidewatch");
    let pod = deployment.get("spec").unwrap().get("template").unwrap();
    let labels = pod.get("metadata").unwrap().get("labels").unwrap();
    let spec = pod.get("spec").unwrap();

    // The Service selects the pods and targets the named container port.
    let service = object("service/tidewatch");
    let selector = service.get("spec").unwrap().get("selector").unwrap();
    for (key, value) in selector.as_mapping().unwrap() {
        assert_eq!(
            labels.get(key.as_str().unwrap()),
            Some(value),
            "service selector {key:?}"
        );
    }
    let container = &spec.get("containers").unwrap().as_sequence().unwrap()[0];
    let port_names: Vec<&str> = container
        .get("ports")
        .unwrap()
        .as_sequence()
        .unwrap()
        .iter()
        .filter_map(|port| str_at(port, &["name"]))
        .collect();
    for port in service
        .get("spec")
        .unwrap()
        .get("ports")
        .unwrap()
        .as_sequence()
        .unwrap()
    {
        let target = str_at(port, &["targetPort"]).expect("named targetPort");
        assert!(
            port_names.contains(&target),
            "service targets unknown port {target}"
        );
    }

    // The ServiceAccount and the policies ConfigMap it mounts exist.
    let account = str_at(spec, &["serviceAccountName"]).unwrap();
    object(&format!("serviceaccount/{account}"));
    let policies = spec
        .get("volumes")
        .unwrap()
        .as_sequence()
        .unwrap()
        .iter()
        .find(|volume| str_at(volume, &["name"]) == Some("policies"))
        .expect("a policies volume");
    let configmap = str_at(policies, &["configMap", "name"]).unwrap();
    object(&format!("configmap/{configmap}"));

    // Two replicas under leader election; Recreate, because a new pod is a
    // standby that never becomes Ready while an old one holds the Lease.
    assert_eq!(
        deployment
            .get("spec")
            .unwrap()
            .get("replicas")
            .unwrap()
            .as_u64(),
        Some(2)
    );
    assert_eq!(
        str_at(&deployment, &["spec", "strategy", "type"]),
        Some("Recreate")
    );
    leader_election_fits(labels, spec, account);
}

/// The pieces leader election needs, and that they point at each other.
fn leader_election_fits(labels: &Value, spec: &Value, account: &str) {
    let selects_pods = |selector: &Value, what: &str| {
        let wanted = selector
            .get("matchLabels")
            .and_then(Value::as_mapping)
            .unwrap_or_else(|| panic!("{what} has matchLabels"));
        assert!(!wanted.is_empty(), "{what} selects something");
        for (key, value) in wanted {
            assert_eq!(
                labels.get(key.as_str().unwrap()),
                Some(value),
                "{what} selects the pods by {key:?}"
            );
        }
    };

    // The Role grants exactly get, create and update on Leases.
    let role = object("role/tidewatch-leases");
    let rules = role.get("rules").and_then(Value::as_sequence).unwrap();
    assert_eq!(rules.len(), 1, "one rule: {rules:?}");
    let list = |key: &str| -> BTreeSet<String> {
        rules[0]
            .get(key)
            .and_then(Value::as_sequence)
            .unwrap_or_else(|| panic!("the rule has {key}"))
            .iter()
            .map(|v| v.as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(
        list("apiGroups"),
        BTreeSet::from(["coordination.k8s.io".to_owned()])
    );
    assert_eq!(list("resources"), BTreeSet::from(["leases".to_owned()]));
    assert_eq!(
        list("verbs"),
        ["create", "get", "update"]
            .iter()
            .map(|v| v.to_string())
            .collect()
    );

    // The RoleBinding gives that Role to the pods' ServiceAccount.
    let binding = object("rolebinding/tidewatch-leases");
    assert_eq!(str_at(&binding, &["roleRef", "kind"]), Some("Role"));
    assert_eq!(
        str_at(&binding, &["roleRef", "name"]),
        Some("tidewatch-leases")
    );
    assert_eq!(
        str_at(&binding, &["roleRef", "apiGroup"]),
        Some("rbac.authorization.k8s.io")
    );
    let subjects = binding
        .get("subjects")
        .and_then(Value::as_sequence)
        .unwrap();
    assert_eq!(subjects.len(), 1);
    assert_eq!(str_at(&subjects[0], &["kind"]), Some("ServiceAccount"));
    assert_eq!(str_at(&subjects[0], &["name"]), Some(account));
    assert!(
        subjects[0].get("namespace").is_none(),
        "the binding is namespace-less like the rest"
    );
    // The pods get the token the Lease calls need.
    assert_eq!(
        spec.get("automountServiceAccountToken")
            .and_then(Value::as_bool),
        Some(true)
    );

    // At most one pod disrupted at a time, and the budget covers the pods.
    let budget = object("poddisruptionbudget/tidewatch");
    let budget_spec = budget.get("spec").unwrap();
    assert_eq!(
        budget_spec.get("maxUnavailable").and_then(Value::as_u64),
        Some(1)
    );
    assert_eq!(
        str_at(budget_spec, &["unhealthyPodEvictionPolicy"]),
        Some("AlwaysAllow"),
        "a standby is never Ready; it must stay evictable"
    );
    selects_pods(
        budget_spec.get("selector").unwrap(),
        "the PodDisruptionBudget",
    );

    // The replicas are spread over nodes.
    let terms = spec
        .get("affinity")
        .and_then(|a| a.get("podAntiAffinity"))
        .and_then(|a| a.get("preferredDuringSchedulingIgnoredDuringExecution"))
        .and_then(Value::as_sequence)
        .expect("pod anti-affinity");
    let term = terms[0].get("podAffinityTerm").unwrap();
    assert_eq!(
        str_at(term, &["topologyKey"]),
        Some("kubernetes.io/hostname")
    );
    selects_pods(term.get("labelSelector").unwrap(), "the anti-affinity");

    // POD_NAME and POD_NAMESPACE come from the downward API.
    let container = &spec.get("containers").unwrap().as_sequence().unwrap()[0];
    let env = container.get("env").and_then(Value::as_sequence).unwrap();
    for (name, field) in [
        ("POD_NAME", "metadata.name"),
        ("POD_NAMESPACE", "metadata.namespace"),
    ] {
        let var = env
            .iter()
            .find(|v| str_at(v, &["name"]) == Some(name))
            .unwrap_or_else(|| panic!("{name} is set"));
        assert_eq!(
            str_at(var, &["valueFrom", "fieldRef", "fieldPath"]),
            Some(field),
            "{name}"
        );
    }
    // A standby is alive (/healthz) but not ready (/readyz).
    assert_eq!(
        str_at(container, &["livenessProbe", "httpGet", "path"]),
        Some("/healthz")
    );
    assert_eq!(
        str_at(container, &["readinessProbe", "httpGet", "path"]),
        Some("/readyz")
    );

    // The shipped policy turns leader election on.
    let configmap = object("configmap/tidewatch-policies");
    let fleet = str_at(&configmap, &["data", "fleet.yaml"]).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("fleet.yaml");
    std::fs::write(&path, fleet).unwrap();
    let config = tidewatch::config::Config::load(&path).unwrap();
    let election = config
        .server
        .as_ref()
        .and_then(|s| s.leader_election.clone())
        .expect("server.leaderElection in fleet.yaml");
    assert!(election.namespace.is_none(), "the pod's namespace is used");
}

/// Loads `path` with tidewatch's own loader, as `tidewatch check -c` does.
fn load_policy(path: &Path) {
    if let Err(err) = tidewatch::config::Config::load(path) {
        panic!("{} is not a valid policy file:\n{err}", path.display());
    }
}

#[test]
fn example_policies_are_valid() {
    let dir = root().join("policies/examples");
    let present: BTreeSet<String> = std::fs::read_dir(&dir)
        .expect("read policies/examples")
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.ends_with(".yaml") || name.ends_with(".yml"))
        .collect();
    for name in EXAMPLES {
        assert!(
            present.contains(*name),
            "policies/examples/{name} is missing"
        );
    }
    for name in &present {
        load_policy(&dir.join(name));
    }

    // The loader is strict enough to fail: a misspelled field is an error.
    let broken = tempfile::tempdir().unwrap();
    let path = broken.path().join("broken.yaml");
    std::fs::write(
        &path,
        "images:\n  - name: app\n    image: ghcr.io/acme/app\n    semvr: \"^1\"\n",
    )
    .unwrap();
    assert!(tidewatch::config::Config::load(&path).is_err());
}

#[test]
fn configmap_policy_files_are_valid() {
    let configmap = object("configmap/tidewatch-policies");
    let data = configmap
        .get("data")
        .and_then(Value::as_mapping)
        .expect("tidewatch-policies has data");
    assert!(
        data.get("fleet.yaml").is_some(),
        "tidewatch-policies has the key fleet.yaml"
    );
    let dir = tempfile::tempdir().unwrap();
    for (key, value) in data {
        let key = key.as_str().expect("a string key");
        let text = value.as_str().expect("a string value");
        let path = dir.path().join(key);
        std::fs::write(&path, text).unwrap();
        load_policy(&path);
    }
    // The mounted directory as `tidewatch run -c /etc/tidewatch/policies`
    // reads it: every key merged.
    load_policy(dir.path());
}
