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
pub fn pod_images(kind: &str, object: &serde_json::Value) -> Result<Vec<String>, PodImagesError> {
    let spec = match kind {
        "Pod" => &object["spec"],
        "Deployment"
        | "StatefulSet"
        | "DaemonSet"
        | "ReplicaSet"
        | "Job"
        | "ReplicationController" => &object["spec"]["template"]["spec"],
        "CronJob" => &object["spec"]["jobTemplate"]["spec"]["template"]["spec"],
        other => return Err(PodImagesError::NotAWorkload(other.to_owned())),
    };
    let mut out: Vec<String> = Vec::new();
    for list in ["containers", "initContainers", "ephemeralContainers"] {
        let items = match &spec[list] {
            serde_json::Value::Null => continue,
            serde_json::Value::Array(items) => items,
            other => {
                return Err(PodImagesError::Malformed(format!(
                    "{kind} {list} is not a list (found {})",
                    json_type(other)
                )));
            }
        };
        for (n, c) in items.iter().enumerate() {
            // A container whose image cannot be read is refused, never skipped: skipping it
            // would admit an image nobody verified.
            let Some(image) = c["image"].as_str() else {
                return Err(PodImagesError::Malformed(format!(
                    "{kind} {list}[{n}] has no image string (found {})",
                    json_type(&c["image"])
                )));
            };
            if !out.iter().any(|i| i == image) {
                out.push(image.to_owned());
            }
        }
    }
    Ok(out)
}

/// Why no image list could be read from an admission object.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PodImagesError {
    /// The kind has no pod template (ConfigMap, Service, …): nothing for custody to judge.
    #[error("kind {0} has no pod template")]
    NotAWorkload(String),
    /// A workload whose containers cannot be read: refused (fail closed).
    #[error("malformed workload: {0}")]
    Malformed(String),
}

fn json_type(v: &serde_json::Value) -> &'static str {
    match v {
        serde_json::Value::Null => "nothing",
        serde_json::Value::Bool(_) => "boolean",
        serde_json::Value::Number(_) => "number",
        serde_json::Value::String(_) => "string",
        serde_json::Value::Array(_) => "list",
        serde_json::Value::Object(_) => "object",
    }
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

    #[test]
    fn a_workload_whose_images_cannot_be_read_is_malformed_not_skipped() {
        for (kind, obj, found) in [
            (
                "Pod",
                json!({"spec": {"containers": [{"image": "a"}, {"name": "x"}]}}),
                "containers[1] has no image string (found nothing)",
            ),
            (
                "Pod",
                json!({"spec": {"initContainers": [{"image": 7}]}}),
                "initContainers[0] has no image string (found number)",
            ),
            (
                "Deployment",
                json!({"spec": {"template": {"spec": {"containers": {"image": "a"}}}}}),
                "containers is not a list (found object)",
            ),
        ] {
            match pod_images(kind, &obj) {
                Err(PodImagesError::Malformed(m)) => assert!(m.contains(found), "{m}"),
                other => panic!("{kind} {obj}: expected Malformed, got {other:?}"),
            }
        }
    }
}
