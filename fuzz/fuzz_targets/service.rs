//! The service's request parsing: AdmissionReview, Gatekeeper ProviderRequest, verify requests,
//! and the image extraction from pod templates. Must never panic.
#![no_main]

use custody::service::api::{ProviderRequest, VerifyRequest, pod_images};
use kube_core::DynamicObject;
use kube_core::admission::AdmissionReview;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if custody::evidence::check_json_depth(data, 64).is_err() {
        return;
    }
    if let Ok(review) = serde_json::from_slice::<AdmissionReview<DynamicObject>>(data)
        && let Some(req) = review.request
        && let Some(obj) = req.object
    {
        let _ = pod_images(&req.kind.kind, &obj.data);
    }
    let _ = serde_json::from_slice::<ProviderRequest>(data);
    if let Ok(v) = serde_json::from_slice::<VerifyRequest>(data) {
        let _ = v.all_images();
    }
    if let Ok(value) = serde_json::from_slice::<serde_json::Value>(data) {
        for kind in ["Pod", "Deployment", "CronJob"] {
            let _ = pod_images(kind, &value);
        }
    }
});
