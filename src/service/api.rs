//! Request and response bodies of the HTTP API (docs/openapi.json describes them).

use serde::{Deserialize, Serialize};

use crate::verdict::Verdict;

/// `POST /v1/verify` and `POST /v1/kyverno`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct VerifyRequest {
    /// One image.
    #[serde(default)]
    pub image: Option<String>,
    /// Several images.
    #[serde(default)]
    pub images: Vec<String>,
    /// Policy name (default: the configured default).
    #[serde(default)]
    pub policy: Option<String>,
    /// Environment.
    #[serde(default)]
    pub environment: Option<String>,
}

impl VerifyRequest {
    /// All images asked about, in order, without duplicates.
    pub fn all_images(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for i in self.image.iter().chain(self.images.iter()) {
            if !out.contains(i) {
                out.push(i.clone());
            }
        }
        out
    }
}

/// `POST /v1/verify` response.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct VerifyResponse {
    /// Whether every image is admitted.
    pub admit: bool,
    /// One verdict per image.
    pub verdicts: Vec<std::sync::Arc<Verdict>>,
}

/// `POST /v1/kyverno` response, for a Kyverno `context.apiCall.service`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct KyvernoResponse {
    /// Whether every image is admitted (`{{ custody.allowed }}` in a ClusterPolicy).
    pub allowed: bool,
    /// One line per image that is not admitted, with its reasons.
    pub message: String,
    /// Summary per image.
    pub verdicts: Vec<ImageSummary>,
}

/// A short per-image summary.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ImageSummary {
    /// The image.
    pub image: String,
    /// allow | deny | error.
    pub decision: crate::verdict::VerdictDecision,
    /// Whether it is admitted.
    pub admit: bool,
    /// Reasons, one line each.
    pub reasons: Vec<String>,
}

impl ImageSummary {
    /// From a (compact) decision.
    pub fn of(image: &str, d: &crate::service::verdicts::Decision) -> Self {
        Self {
            image: image.to_owned(),
            decision: d.decision,
            admit: d.admit,
            reasons: d.reasons.iter().map(|r| r.to_string()).collect(),
        }
    }
}

/// Gatekeeper external data `ProviderRequest` (`externaldata.gatekeeper.sh/v1beta1`).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ProviderRequest {
    /// `externaldata.gatekeeper.sh/v1beta1`.
    pub api_version: String,
    /// `ProviderRequest`.
    pub kind: String,
    /// The keys (image references).
    pub request: ProviderRequestBody,
}

/// The keys of a `ProviderRequest`.
#[derive(Debug, Deserialize)]
pub struct ProviderRequestBody {
    /// Image references.
    pub keys: Vec<String>,
}

/// Gatekeeper external data `ProviderResponse`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ProviderResponse {
    /// `externaldata.gatekeeper.sh/v1beta1`.
    pub api_version: &'static str,
    /// `ProviderResponse`.
    pub kind: &'static str,
    /// The answers.
    pub response: ProviderResponseBody,
}

/// The answers of a `ProviderResponse`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ProviderResponseBody {
    /// Same keys give the same answers (within the cache TTL).
    pub idempotent: bool,
    /// One item per key.
    pub items: Vec<ProviderItem>,
    /// Set when the whole request failed.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub system_error: String,
}

/// One key's answer: `value` holds the verdict summary; `error` is set when custody could not
/// decide (an error verdict), so the constraint can deny.
#[derive(Debug, Serialize)]
pub struct ProviderItem {
    /// The key.
    pub key: String,
    /// `{decision, admit, reasons}`.
    pub value: serde_json::Value,
    /// Why no decision could be made.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub error: String,
}

/// Error body of every 4xx/5xx.
#[derive(Debug, Serialize)]
pub struct ErrorBody {
    /// The error.
    pub error: ErrorDetail,
}

/// An error.
#[derive(Debug, Serialize)]
pub struct ErrorDetail {
    /// Stable code.
    pub code: &'static str,
    /// What went wrong.
    pub message: String,
}

/// Every container image of a Kubernetes object (Pod or a pod template owner), deduplicated,
/// in order: containers, init containers, ephemeral containers.
pub fn pod_images(kind: &str, object: &serde_json::Value) -> Result<Vec<String>, String> {
    let spec = match kind {
        "Pod" => &object["spec"],
        "Deployment"
        | "StatefulSet"
        | "DaemonSet"
        | "ReplicaSet"
        | "Job"
        | "ReplicationController" => &object["spec"]["template"]["spec"],
        "CronJob" => &object["spec"]["jobTemplate"]["spec"]["template"]["spec"],
        other => return Err(format!("kind {other} has no pod template")),
    };
    let mut out: Vec<String> = Vec::new();
    for list in ["containers", "initContainers", "ephemeralContainers"] {
        if let Some(items) = spec[list].as_array() {
            for c in items {
                if let Some(image) = c["image"].as_str()
                    && !out.iter().any(|i| i == image)
                {
                    out.push(image.to_owned());
                }
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn images_of_pods_and_templates() {
        let pod = json!({"spec": {"containers": [{"image": "a"}, {"image": "b"}], "initContainers": [{"image": "a"}], "ephemeralContainers": [{"image": "c"}]}});
        assert_eq!(pod_images("Pod", &pod).unwrap(), vec!["a", "b", "c"]);
        let cron = json!({"spec": {"jobTemplate": {"spec": {"template": {"spec": {"containers": [{"image": "x"}]}}}}}});
        assert_eq!(pod_images("CronJob", &cron).unwrap(), vec!["x"]);
        let deploy = json!({"spec": {"template": {"spec": {"containers": [{"image": "d"}]}}}});
        assert_eq!(pod_images("Deployment", &deploy).unwrap(), vec!["d"]);
        assert!(pod_images("ConfigMap", &json!({})).is_err());
        assert!(pod_images("Pod", &json!({"spec": {}})).unwrap().is_empty());
    }
}
