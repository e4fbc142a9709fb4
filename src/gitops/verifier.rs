//! The [`Verifier`] of `gitops check` and `gitops promote`: the trust policy through the engine
//! against the registry, with an optional on-disk verdict cache so a re-run of the gate on the
//! same digests makes no registry requests.
//!
//! The cache key is everything a verdict depends on besides the clock: the policy's and trust
//! root's content hashes, the environment and the digest-pinned reference. Allow and deny
//! verdicts are kept for the TTL; error verdicts (registry down, deadline) never are. The
//! directory is created private (0700): whoever can write it can forge verdicts.

use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::check::Verifier;
use super::report::VerificationSummary;
use crate::engine::policies::LoadedPolicy;
use crate::engine::{files::read_bounded, policy_verdict};
use crate::reference::ImageRef;
use crate::registry::RegistryClient;
use crate::registry::discovery::DiscoveryOptions;

/// Largest cache entry read back.
const MAX_ENTRY_BYTES: u64 = 256 << 10;

/// Verifies through the registry.
pub struct RegistryVerifier {
    /// The registry client.
    pub client: RegistryClient,
    /// The trust policy.
    pub policy: LoadedPolicy,
    /// Discovery options.
    pub discovery: DiscoveryOptions,
    /// Deadline of one verification.
    pub deadline: Duration,
    /// The time verdicts are made at.
    pub now: jiff::Timestamp,
    /// The on-disk cache, if any.
    pub cache: Option<DiskCache>,
}

/// A directory of cached verification summaries.
pub struct DiskCache {
    /// The directory.
    pub dir: PathBuf,
    /// How long an entry is good for.
    pub ttl: Duration,
}

#[derive(Serialize, Deserialize)]
struct Entry {
    key: String,
    expires: String,
    summary: VerificationSummary,
}

impl DiskCache {
    fn key(policy: &LoadedPolicy, environment: &str, image: &ImageRef) -> String {
        let text = format!(
            "custody-gitops-verdict-v1|{}|{}|{environment}|{image}",
            policy.policy.content_hash,
            policy.trust.content_hash()
        );
        hex::encode(aws_lc_rs::digest::digest(
            &aws_lc_rs::digest::SHA256,
            text.as_bytes(),
        ))
    }

    fn get(&self, key: &str, now: jiff::Timestamp) -> Option<VerificationSummary> {
        let path = self.dir.join(format!("{key}.json"));
        let bytes = read_bounded(&path, MAX_ENTRY_BYTES, "cache entry", "256 KiB").ok()?;
        let entry: Entry = serde_json::from_slice(&bytes).ok()?;
        let expires: jiff::Timestamp = entry.expires.parse().ok()?;
        (entry.key == key && now < expires && entry.summary.decision != "error").then(|| {
            let mut s = entry.summary;
            s.cached = true;
            s
        })
    }

    fn put(&self, key: &str, summary: &VerificationSummary, now: jiff::Timestamp) {
        if summary.decision == "error" {
            return;
        }
        let Ok(span) = jiff::SignedDuration::try_from(self.ttl) else {
            return;
        };
        let Ok(expires) = now.checked_add(span) else {
            return;
        };
        let entry = Entry {
            key: key.to_owned(),
            expires: expires.to_string(),
            summary: summary.clone(),
        };
        if let Err(e) = self.write(key, &entry) {
            tracing::warn!(dir = %self.dir.display(), error = %e, "cannot write the verdict cache");
        }
    }

    fn write(&self, key: &str, entry: &Entry) -> std::io::Result<()> {
        create_private_dir(&self.dir)?;
        let tmp = self.dir.join(format!(".{key}.{}.tmp", std::process::id()));
        std::fs::write(
            &tmp,
            serde_json::to_vec(entry).map_err(std::io::Error::other)?,
        )?;
        std::fs::rename(&tmp, self.dir.join(format!("{key}.json")))
    }
}

fn create_private_dir(dir: &std::path::Path) -> std::io::Result<()> {
    let mut b = std::fs::DirBuilder::new();
    b.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        b.mode(0o700);
    }
    b.create(dir)
}

impl Verifier for RegistryVerifier {
    async fn verify(&self, image: &ImageRef, environment: &str) -> VerificationSummary {
        let key = self
            .cache
            .as_ref()
            .map(|_| DiskCache::key(&self.policy, environment, image));
        if let (Some(cache), Some(key)) = (&self.cache, &key)
            && let Some(hit) = cache.get(key, self.now)
        {
            return hit;
        }
        let verdict = policy_verdict(
            &self.client,
            &self.policy,
            image,
            Some(environment),
            &self.discovery,
            self.deadline,
            self.now,
        )
        .await;
        let summary = VerificationSummary::of(&verdict, environment, &self.policy.policy);
        if let (Some(cache), Some(key)) = (&self.cache, &key) {
            cache.put(key, &summary, self.now);
        }
        summary
    }

    fn requests(&self) -> u64 {
        self.client.request_count()
    }
}
