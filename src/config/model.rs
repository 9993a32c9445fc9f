//! The policy-file model (v1), as typed structs.
//!
//! These types are both what the loader deserialises into and what
//! `tidewatch schema` prints, so the documented schema cannot drift from what
//! is accepted. Every struct denies unknown fields: a typo must be an error,
//! not a silently ignored setting.

use std::borrow::Cow;

use schemars::{json_schema, JsonSchema, Schema, SchemaGenerator};
use serde::{Deserialize, Serialize};

use crate::policy::Order;

/// One policy file. A directory of files merges into one of these.
#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct PolicyFile {
    /// The environment repository that holds the manifests to update.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repository: Option<Repository>,
    /// Per-registry settings. Registries not listed use defaults and the
    /// docker config.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub registries: Vec<RegistrySettings>,
    /// Image policies: which repository to watch and how to pick a tag.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub images: Vec<ImagePolicy>,
    /// Where and how picked tags are written.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub updates: Vec<Update>,
    /// Settings of the `tidewatch run` service.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server: Option<Server>,
}

/// The service's settings.
#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Server {
    /// The shared secret webhooks must prove (HMAC or token, per source).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub webhook_secret: Option<SecretSource>,
    /// Accept webhooks with no secret. Off by default; webhooks are
    /// refused when no secret is set and this is not turned on.
    #[serde(default)]
    pub allow_unauthenticated_webhooks: bool,
    /// The deadline of one cycle, e.g. `10m` (the default). A cycle still
    /// running at its deadline is abandoned: nothing is pushed after it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cycle_timeout: Option<String>,
    /// Run several replicas: a replica runs cycles for the repository only
    /// while it holds the repository's Kubernetes Lease. Omit for one replica.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub leader_election: Option<LeaderElection>,
}

/// Kubernetes Lease leader election (coordination.k8s.io/v1), with
/// client-go's semantics and defaults.
#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct LeaderElection {
    /// The Lease's namespace; default: `POD_NAMESPACE`, else the namespace
    /// of the Kubernetes client config (in a pod: its service account's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// The Lease's name; default `tidewatch`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// How long a standby waits, after it last saw the Lease change, before
    /// it takes the Lease over; whole seconds (default `15s`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lease_duration: Option<String>,
    /// A holder whose renewal has not succeeded for this long stops its
    /// work (default `10s`); less than `leaseDuration`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub renew_deadline: Option<String>,
    /// Time between attempts to acquire or renew (default `2s`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_period: Option<String>,
}

/// The environment repository.
#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Repository {
    /// `https://`, `ssh://`, `file://` or a local path.
    pub url: String,
    /// The branch read by default, and the base for new branches.
    #[serde(default = "default_branch")]
    pub branch: String,
    /// Author and committer of tidewatch's commits.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub author: Option<Author>,
    /// How to authenticate to the repository. Omit for public or local repos.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth: Option<GitAuth>,
    /// The GitHub API, for updates delivered as pull requests.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub github: Option<GitHub>,
    /// Add a `Signed-off-by:` trailer for the author to every commit.
    #[serde(default)]
    pub sign_off: bool,
    /// Fetch with this history depth (shallow); default: full history.
    /// Ignored for `file://` and local paths, which libgit2 cannot fetch shallowly.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub depth: Option<u32>,
    /// A git remote silent for this many seconds fails the operation
    /// (default 60; libgit2's per-read/write timeout, for HTTP(S), SSH and git://).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_seconds: Option<f64>,
}

/// GitHub API settings for pull requests.
#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct GitHub {
    /// API base URL for GitHub Enterprise (`https://ghe.example.com/api/v3/`);
    /// default `https://api.github.com/`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_url: Option<String>,
    /// `owner/name`; default: read from `repository.url`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repository: Option<String>,
    /// An API token; default: `repository.auth.token`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<SecretSource>,
    /// Authenticate as a GitHub App installation instead of a token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app: Option<GitHubApp>,
    /// One API request's timeout, in seconds (default 30).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_seconds: Option<f64>,
}

/// A GitHub App installation.
#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct GitHubApp {
    pub app_id: u64,
    pub installation_id: u64,
    /// The app's PEM private key.
    pub private_key: SecretSource,
}

fn default_branch() -> String {
    "main".to_string()
}

/// A commit identity.
#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Author {
    pub name: String,
    pub email: String,
}

/// Git credentials: set exactly one of `token` or `sshKey`.
#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct GitAuth {
    /// An HTTPS token, read from an environment variable or a file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<SecretSource>,
    /// An SSH private key file, with an optional passphrase.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ssh_key: Option<SshKey>,
}

/// Where a secret is read from at run time. The policy file only ever names
/// the source, never holds the secret. Set exactly one of `env` or `file`.
#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct SecretSource {
    /// Name of an environment variable holding the secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub env: Option<String>,
    /// Path of a file holding the secret (trailing newline ignored).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
}

impl SecretSource {
    /// Where to read the secret (validation makes sure exactly one of `env`
    /// and `file` is set; `env` wins if both somehow are).
    pub fn source(&self) -> Option<crate::secret::Source> {
        match (&self.env, &self.file) {
            (Some(var), _) => Some(crate::secret::Source::Env(var.clone())),
            (None, Some(path)) => Some(crate::secret::Source::File(path.into())),
            (None, None) => None,
        }
    }

    /// Reads the secret; `what` names it in errors.
    pub fn read(&self, what: &str) -> Result<crate::secret::Secret, crate::secret::SecretError> {
        match self.source() {
            Some(source) => source.read(what),
            None => Err(crate::secret::SecretError::Empty {
                what: what.to_string(),
                origin: "a secret source that names neither `env` nor `file`".into(),
            }),
        }
    }
}

/// An SSH key for git.
#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct SshKey {
    pub path: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub passphrase: Option<SecretSource>,
}

/// Settings for one registry host.
#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RegistrySettings {
    /// Host and optional port, as in image references: `ghcr.io`, `localhost:5000`.
    pub host: String,
    /// Talk plain HTTP instead of HTTPS.
    #[serde(default)]
    pub insecure: bool,
    /// Credentials; without them, the docker config is consulted, then anonymous.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credentials: Option<Credentials>,
    /// Upper bound on requests per second to this host.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requests_per_second: Option<f64>,
    /// Most requests in flight to this host at once (default 8).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub concurrency: Option<usize>,
    /// A PEM bundle of CA certificates to trust for this host (TLS stays verified).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_file: Option<String>,
    /// Tags asked for per page of `tags/list` (default 1000).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub page_size: Option<usize>,
    /// Most pages read per repository before failing (default 100).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub page_budget: Option<usize>,
    /// Timeout of one request, in seconds (default 30).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_seconds: Option<f64>,
    /// Attempts per request on 429, 5xx, timeouts and connection errors (default 4).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_attempts: Option<u32>,
}

/// Registry credentials: set exactly one field.
#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Credentials {
    /// Environment variable holding `user:password`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub env: Option<String>,
    /// A docker `config.json` (`auths`, `credHelpers`, `credsStore`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub docker_config: Option<String>,
    /// A `docker-credential-<name>` helper, e.g. `ecr-login`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub helper: Option<String>,
    /// A file holding `user:password`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
}

/// One image policy.
#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ImagePolicy {
    /// Unique name, used by updates and marker comments.
    pub name: String,
    /// The image repository to watch, e.g. `ghcr.io/acme/app` or `nginx`.
    pub image: String,
    /// A semver range in Masterminds v3 syntax (as Flux and Argo CD Image
    /// Updater use). Pre-releases qualify only if the range names one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub semver: Option<String>,
    /// Keep only tags matching `pattern`; order on `extract` if given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filter: Option<TagFilter>,
    /// How to order candidates: `semver` (default), `numerical`,
    /// `alphabetical` or `newest-build`, optionally suffixed `:asc` (pick the
    /// greatest, the default) or `:desc` (pick the least).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub order: Option<OrderSetting>,
    /// Follow the digest of this mutable tag (writes `tag@sha256:…`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub digest: Option<String>,
    /// Regexes of tags to drop before anything else.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub exclude: Vec<String>,
    /// Also drop cosign signature/attestation/SBOM tags and `*.sig` (default true).
    #[serde(default = "yes")]
    pub exclude_defaults: bool,
    /// `keep`: only tags with the same suffix as the current one qualify
    /// (`1.25-alpine` never moves to `1.27-alpine-perl`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<VariantMode>,
    /// Allow picking a tag that orders below the value in Git.
    #[serde(default)]
    pub allow_downgrade: bool,
    /// When the service scans this policy: a cron expression (5 fields, or
    /// 6 with seconds), e.g. `*/10 * * * *`. Exclusive with `interval`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schedule: Option<String>,
    /// How often the service scans this policy, e.g. `30s`, `5m`, `1h`
    /// (default `5m`, with up to 10 % jitter).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interval: Option<String>,
    /// For `newest-build` on multi-platform images: the platforms
    /// (`os/arch[/variant]`) whose build time counts, first match wins.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub platforms: Vec<String>,
    /// Skip candidates whose image was created (config `created`) less
    /// than this long ago, e.g. `3d`. A candidate with no created time is
    /// skipped too while this is set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub minimum_age: Option<String>,
    /// Propose only images whose digest a configured key signed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verify: Option<Verify>,
}

/// Signature verification of an image policy's candidates.
#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Verify {
    /// Cosign signatures (the `.sig` tag or a sigstore bundle referrer).
    pub cosign: CosignVerify,
}

/// Cosign keys: set `publicKey`, `publicKeys`, or both; a signature by any
/// one of them suffices. Keys are ECDSA P-256 PEM public keys (`cosign.pub`).
#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct CosignVerify {
    /// One key; a relative `file` is read from the policy file's directory.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub public_key: Option<SecretSource>,
    /// Several keys.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub public_keys: Vec<SecretSource>,
}

fn yes() -> bool {
    true
}

/// A regex filter over tags.
#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct TagFilter {
    /// Unanchored regex (as in Flux); add `^…$` to anchor.
    pub pattern: String,
    /// Template over the pattern's groups: `$1`, `$name` or `${name}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extract: Option<String>,
}

/// `variant:` modes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum VariantMode {
    Keep,
}

/// An `order:` value, kept as written and parsed into [`Order`].
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(try_from = "String", into = "String")]
pub struct OrderSetting(pub Order);

impl TryFrom<String> for OrderSetting {
    type Error = String;
    fn try_from(text: String) -> Result<Self, String> {
        text.parse().map(OrderSetting)
    }
}

impl From<OrderSetting> for String {
    fn from(o: OrderSetting) -> String {
        o.0.to_string()
    }
}

impl JsonSchema for OrderSetting {
    fn schema_name() -> Cow<'static, str> {
        "Order".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "type": "string",
            "enum": Order::spellings(),
            "description": "Ordering of candidates and its direction (asc picks the greatest)."
        })
    }
}

/// Where and how to write picks.
#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Update {
    /// Unique name; used in commit messages and PR branch names.
    pub name: String,
    /// Directories or files, relative to the repository root, to scan.
    pub paths: Vec<String>,
    /// Commit directly to this branch. Without it and without
    /// `pullRequest`, commits go to `repository.branch`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub branch: Option<String>,
    /// The image policies this update writes (default: all).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub images: Option<Vec<String>>,
    /// Deliver as a GitHub pull request instead of a direct commit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pull_request: Option<PullRequest>,
    /// Commit message (and PR title) template; see the README for fields.
    /// Default `chore({update}): update {image} to {new}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub commit_message: Option<String>,
    /// Files to scan as Helm values whatever their name, and explicit
    /// scalars to write (`app.containers[1].image.tag`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub targets: Vec<UpdateTarget>,
    /// Promote what this other update holds (tag and digest) instead of
    /// the registry's newest, for the image policies both cover.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub promote_from: Option<String>,
    /// With `promoteFrom`: only once the source has held the value this
    /// long (from the commit that put it into the source's files), e.g. `24h`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub soak: Option<String>,
    /// With `promoteFrom`: only when the forge's combined commit status of
    /// that commit is this state (usually `success`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub require_status: Option<RequiredStatus>,
}

/// A combined commit status, as `requireStatus:` spells it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum RequiredStatus {
    Success,
    Pending,
    Failure,
    Error,
}

impl RequiredStatus {
    /// The state as written (and as the forge module names it).
    pub fn as_str(self) -> &'static str {
        match self {
            RequiredStatus::Success => "success",
            RequiredStatus::Pending => "pending",
            RequiredStatus::Failure => "failure",
            RequiredStatus::Error => "error",
        }
    }
}

/// An explicit target of an update.
#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct UpdateTarget {
    /// A file, relative to the repository root.
    pub file: String,
    /// A dotted path with list indexes to one scalar in the file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// The image policy whose pick is written at `path` (required with `path`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy: Option<String>,
    /// What `path` holds: `tag` (default), `full` (`repo:tag[@digest]`), `name` or `digest`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub part: Option<TargetPart>,
}

/// The part of an image reference a target scalar holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum TargetPart {
    Tag,
    Full,
    Name,
    Digest,
}

/// Pull-request delivery settings.
#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct PullRequest {
    /// Branch the PR targets (default: `repository.branch`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base: Option<String>,
    /// Head branch template (default `tidewatch/<update>`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub head: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub labels: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub reviewers: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub team_reviewers: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub assignees: Vec<String>,
    #[serde(default)]
    pub draft: bool,
    /// Force-push the head branch even when it holds commits tidewatch did
    /// not make (default false: such a pull request is held, with a comment).
    #[serde(default)]
    pub overwrite_human_commits: bool,
}

impl ImagePolicy {
    /// The engine's view of this policy.
    pub fn spec(&self) -> crate::policy::PolicySpec {
        crate::policy::PolicySpec {
            semver: self.semver.clone(),
            pattern: self.filter.as_ref().map(|f| f.pattern.clone()),
            extract: self.filter.as_ref().and_then(|f| f.extract.clone()),
            order: self.order.as_ref().map(|o| o.0),
            digest: self.digest.clone(),
            exclude: self.exclude.clone(),
            exclude_defaults: self.exclude_defaults,
            variant_keep: self.variant == Some(VariantMode::Keep),
            allow_downgrade: self.allow_downgrade,
        }
    }
}

/// The JSON schema of a policy file, generated from these types.
pub fn json_schema() -> Schema {
    schemars::schema_for!(PolicyFile)
}
