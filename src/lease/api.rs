//! The three Lease calls leader election needs (GET, POST, PUT), through
//! the `kube` client, each bounded in time by its caller.

use std::time::Duration;

use k8s_openapi::api::coordination::v1::Lease;
use kube::api::PostParams;
use kube::Api;

use super::LeaseError;

/// Why one call failed.
#[derive(Clone, Debug, PartialEq)]
pub enum CallError {
    /// 409: the Lease changed since it was read (a PUT with a stale
    /// `resourceVersion`), or it already exists (a POST): someone else wrote.
    Conflict(String),
    /// 404 on a PUT: the Lease was deleted since it was read.
    NotFound(String),
    /// No answer within the time the caller gave.
    Timeout(Duration),
    /// Any other answer or a transport failure.
    Failed(String),
}

impl std::fmt::Display for CallError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CallError::Conflict(m) => write!(f, "conflict: {m}"),
            CallError::NotFound(m) => write!(f, "not found: {m}"),
            CallError::Timeout(d) => write!(f, "no answer within {:.1} s", d.as_secs_f64()),
            CallError::Failed(m) => f.write_str(m),
        }
    }
}

/// Leases in one namespace.
#[derive(Clone)]
pub struct LeaseApi {
    api: Api<Lease>,
    namespace: String,
}

impl LeaseApi {
    /// A client from `KUBECONFIG` (or `~/.kube/config`), else the pod's
    /// service account; the namespace is `namespace`, else `POD_NAMESPACE`,
    /// else the client config's.
    pub async fn connect(namespace: Option<&str>) -> Result<LeaseApi, LeaseError> {
        let config = kube::Config::infer()
            .await
            .map_err(|e| LeaseError::Connect(e.to_string()))?;
        LeaseApi::with_config(config, namespace)
    }

    /// A client from `config` (for a caller that built its own).
    pub fn with_config(
        mut config: kube::Config,
        namespace: Option<&str>,
    ) -> Result<LeaseApi, LeaseError> {
        // The elector retries every retryPeriod itself; a client-side retry
        // would resend a PUT past the time the caller allowed it.
        config.default_retry = false;
        let namespace = namespace
            .map(str::to_string)
            .or_else(|| {
                std::env::var("POD_NAMESPACE")
                    .ok()
                    .filter(|ns| !ns.is_empty())
            })
            .unwrap_or_else(|| config.default_namespace.clone());
        let client =
            kube::Client::try_from(config).map_err(|e| LeaseError::Connect(e.to_string()))?;
        Ok(LeaseApi {
            api: Api::namespaced(client, &namespace),
            namespace,
        })
    }

    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    /// GET; `None` when the Lease does not exist.
    pub async fn get(&self, name: &str, within: Duration) -> Result<Option<Lease>, CallError> {
        bounded(within, self.api.get_opt(name)).await
    }

    /// POST.
    pub async fn create(&self, lease: &Lease, within: Duration) -> Result<Lease, CallError> {
        bounded(within, self.api.create(&PostParams::default(), lease)).await
    }

    /// PUT, carrying the `resourceVersion` of `lease`.
    pub async fn replace(
        &self,
        name: &str,
        lease: &Lease,
        within: Duration,
    ) -> Result<Lease, CallError> {
        bounded(
            within,
            self.api.replace(name, &PostParams::default(), lease),
        )
        .await
    }
}

async fn bounded<T>(
    within: Duration,
    call: impl std::future::Future<Output = Result<T, kube::Error>>,
) -> Result<T, CallError> {
    match tokio::time::timeout(within, call).await {
        Err(_) => Err(CallError::Timeout(within)),
        Ok(Ok(value)) => Ok(value),
        Ok(Err(kube::Error::Api(status))) if status.code == 409 => {
            Err(CallError::Conflict(status.message.clone()))
        }
        Ok(Err(kube::Error::Api(status))) if status.code == 404 => {
            Err(CallError::NotFound(status.message.clone()))
        }
        Ok(Err(kube::Error::Api(status))) => Err(CallError::Failed(format!(
            "the API server answered {} {}: {}",
            status.code, status.reason, status.message
        ))),
        Ok(Err(other)) => Err(CallError::Failed(other.to_string())),
    }
}
