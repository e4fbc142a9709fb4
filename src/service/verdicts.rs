//! Verdicts for the service: policies (hot-reloadable), a verdict cache with singleflight, and a
//! deadline on every verification.

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use tokio::time::Instant;

use moka::Expiry;
use moka::future::Cache;

use super::config::CacheConfig;
use super::metrics::Metrics;
use crate::engine::policies::LoadedPolicy;
use crate::engine::policy_verdict;
use crate::reference::ImageRef;
use crate::registry::RegistryClient;
use crate::registry::discovery::DiscoveryOptions;
use crate::verdict::{PolicyRef, Verdict, VerdictDecision};
use crate::verify::TrustRootRef;

/// The policies in force.
#[derive(Debug)]
pub struct PolicySet {
    /// By name.
    pub policies: BTreeMap<String, Arc<LoadedPolicy>>,
    /// Used when a request names none.
    pub default: String,
}

impl PolicySet {
    /// A policy by name, or the default.
    pub fn get(&self, name: Option<&str>) -> Option<&Arc<LoadedPolicy>> {
        self.policies.get(name.unwrap_or(&self.default))
    }
}

struct VerdictExpiry {
    allow: Duration,
    deny: Duration,
    error: Duration,
}

/// What the cache expiry needs to know of a cached value.
trait HasDecision {
    fn decision(&self) -> VerdictDecision;
}

impl HasDecision for Verdict {
    fn decision(&self) -> VerdictDecision {
        self.decision
    }
}

impl HasDecision for Decision {
    fn decision(&self) -> VerdictDecision {
        self.decision
    }
}

/// The compact form kept for admission callers: what they need to admit or explain, ~100 bytes
/// plus the reasons (none for an allow). Full verdicts are cached separately and fewer.
#[derive(Debug, Clone)]
pub struct Decision {
    /// allow | deny | error.
    pub decision: VerdictDecision,
    /// Whether to admit.
    pub admit: bool,
    /// One line per failed requirement, or the error.
    pub reasons: Box<[Box<str>]>,
    /// The digest judged.
    pub digest: Option<[u8; 32]>,
}

impl Decision {
    /// The compact form of a verdict.
    pub fn of(v: &Verdict) -> Self {
        let mut reasons: Vec<Box<str>> = v
            .reasons
            .iter()
            .map(|r| r.to_string().into_boxed_str())
            .collect();
        if let Some(e) = &v.error {
            reasons.push(format!("error: {e}").into_boxed_str());
        }
        Self {
            decision: v.decision,
            admit: v.admit,
            reasons: reasons.into_boxed_slice(),
            digest: v.digest.as_ref().and_then(|d| d.to_bytes().try_into().ok()),
        }
    }

    /// The digest as `sha256:<hex>`.
    pub fn digest_string(&self) -> Option<String> {
        self.digest.map(|d| format!("sha256:{}", hex::encode(d)))
    }
}

type Key = [u8; 32];

/// The key both caches use: everything a verdict depends on besides the clock (policy and
/// trust-root content hashes, environment, the reference with its digest). One function so the
/// decision cache and the verdict cache cannot drift apart.
fn cache_key(loaded: &LoadedPolicy, environment: Option<&str>, reference: &ImageRef) -> Key {
    let text = format!(
        "{}|{}|{}|{}",
        loaded.policy.content_hash,
        loaded.trust.content_hash(),
        environment.unwrap_or(""),
        reference
    );
    hash_key(&text)
}

fn hash_key(text: &str) -> Key {
    let mut k = [0u8; 32];
    k.copy_from_slice(
        aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, text.as_bytes()).as_ref(),
    );
    k
}

impl<V: HasDecision> Expiry<Key, Arc<V>> for VerdictExpiry {
    fn expire_after_create(
        &self,
        _key: &Key,
        value: &Arc<V>,
        _now: std::time::Instant,
    ) -> Option<Duration> {
        Some(match value.decision() {
            VerdictDecision::Allow => self.allow,
            VerdictDecision::Deny => self.deny,
            VerdictDecision::Error => self.error,
        })
    }
}

/// The verdict source of the service.
pub struct Verdicts {
    policies: RwLock<Arc<PolicySet>>,
    /// Full verdicts (for `/v1/verify`), fewer.
    cache: Cache<Key, Arc<Verdict>>,
    /// Compact decisions (admission, Gatekeeper, Kyverno), up to `maxEntries`.
    decisions: Cache<Key, Arc<Decision>>,
    client: RegistryClient,
    discovery: DiscoveryOptions,
    metrics: Arc<Metrics>,
    cache_errors: bool,
    writer: std::sync::OnceLock<crate::store::Writer>,
}

impl std::fmt::Debug for Verdicts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Verdicts").finish_non_exhaustive()
    }
}

impl Verdicts {
    /// A verdict source over `policies`.
    pub fn new(
        policies: PolicySet,
        client: RegistryClient,
        cache: &CacheConfig,
        metrics: Arc<Metrics>,
    ) -> Self {
        let cache_errors = cache.error_ttl_secs > 0;
        Self {
            policies: RwLock::new(Arc::new(policies)),
            cache: Cache::builder()
                .max_capacity(cache.max_full_verdicts.min(cache.max_entries))
                .expire_after(VerdictExpiry {
                    allow: Duration::from_secs(cache.allow_ttl_secs),
                    deny: Duration::from_secs(cache.deny_ttl_secs),
                    error: Duration::from_secs(cache.error_ttl_secs),
                })
                .build(),
            decisions: Cache::builder()
                .max_capacity(cache.max_entries)
                .expire_after(VerdictExpiry {
                    allow: Duration::from_secs(cache.allow_ttl_secs),
                    deny: Duration::from_secs(cache.deny_ttl_secs),
                    error: Duration::from_secs(cache.error_ttl_secs),
                })
                .build(),
            client,
            discovery: DiscoveryOptions::default(),
            metrics,
            cache_errors,
            writer: std::sync::OnceLock::new(),
        }
    }

    /// Records every verdict made from now on into the lineage store (once; later calls are
    /// ignored).
    pub fn set_writer(&self, writer: crate::store::Writer) {
        let _ = self.writer.set(writer);
    }

    /// The policies in force.
    pub fn policies(&self) -> Arc<PolicySet> {
        self.policies
            .read()
            .map(|p| Arc::clone(&p))
            .unwrap_or_else(|e| Arc::clone(&e.into_inner()))
    }

    /// Swaps in new policies and drops every cached verdict (their keys carry the old hashes;
    /// dropping them frees the memory at once).
    pub fn replace_policies(&self, set: PolicySet) {
        match self.policies.write() {
            Ok(mut p) => *p = Arc::new(set),
            Err(e) => *e.into_inner() = Arc::new(set),
        }
        self.cache.invalidate_all();
        self.decisions.invalidate_all();
    }

    /// The registry client verifications use (`/v1/attest` verifies and pushes with it too).
    pub fn client(&self) -> &RegistryClient {
        &self.client
    }

    /// Number of cached verdicts.
    pub fn cached(&self) -> u64 {
        self.decisions.entry_count()
    }

    /// Puts a verdict in the cache under `key` (pre-warming, and the capacity benchmark).
    pub async fn insert(&self, key: &str, verdict: &Verdict) {
        self.decisions
            .insert(hash_key(key), Arc::new(Decision::of(verdict)))
            .await;
    }

    /// Runs pending cache maintenance (tests and memory measurements).
    pub async fn sync_cache(&self) {
        self.cache.run_pending_tasks().await;
        self.decisions.run_pending_tasks().await;
    }

    /// The compact decision for `image` (admission, Gatekeeper, Kyverno): from the decision cache,
    /// else from a full verification (which fills both caches).
    pub async fn decision(
        &self,
        image: &str,
        policy: Option<&str>,
        environment: Option<&str>,
        deadline: Duration,
    ) -> Result<Arc<Decision>, RequestError> {
        let set = self.policies();
        if let (Some(loaded), Ok(reference)) = (set.get(policy), image.parse::<ImageRef>()) {
            let key = cache_key(loaded, environment, &reference);
            if let Some(d) = self.decisions.get(&key).await {
                self.metrics.cache_hit();
                return Ok(d);
            }
        }
        let v = self.verdict(image, policy, environment, deadline).await?;
        Ok(Arc::new(Decision::of(&v)))
    }

    /// The verdict for `image` under `policy` in `environment`, within `deadline`.
    ///
    /// Cached by policy hash + trust-root hash + environment + reference (digest included);
    /// concurrent requests for the same key share one verification. An error verdict is not
    /// cached (unless configured) and never admits.
    pub async fn verdict(
        &self,
        image: &str,
        policy: Option<&str>,
        environment: Option<&str>,
        deadline: Duration,
    ) -> Result<Arc<Verdict>, RequestError> {
        let set = self.policies();
        let loaded = set
            .get(policy)
            .ok_or_else(|| {
                RequestError::UnknownPolicy(
                    policy.unwrap_or(&set.default).to_owned(),
                    set.policies.keys().cloned().collect(),
                )
            })?
            .clone();
        let reference: ImageRef = image.parse().map_err(|e| {
            RequestError::BadImage(image.chars().take(200).collect(), format!("{e}"))
        })?;
        let key = cache_key(&loaded, environment, &reference);
        if let Some(v) = self.cache.get(&key).await {
            self.metrics.cache_hit();
            return Ok(v);
        }
        self.metrics.cache_miss();
        let env = environment.map(str::to_owned);
        let started = Instant::now();
        let compute = async {
            let v = Arc::new(
                self.compute(&reference, &loaded, env.as_deref(), deadline)
                    .await,
            );
            self.metrics.verdict(&v, started.elapsed());
            if v.decision != VerdictDecision::Error || self.cache_errors {
                self.decisions.insert(key, Arc::new(Decision::of(&v))).await;
            }
            if v.decision == VerdictDecision::Error && !self.cache_errors {
                Err(v)
            } else {
                Ok(v)
            }
        };
        // Bounded by the deadline even if the registry stalls; a timed-out verification is an error verdict.
        let limited = tokio::time::timeout(deadline, self.cache.try_get_with(key, compute)).await;
        Ok(match limited {
            Ok(Ok(v)) => v,
            Ok(Err(shared_error)) => Arc::clone(&shared_error),
            Err(_) => Arc::new(error_verdict(
                &reference,
                environment,
                &loaded,
                format!("deadline of {} ms exceeded", deadline.as_millis()),
            )),
        })
    }

    async fn compute(
        &self,
        reference: &ImageRef,
        loaded: &LoadedPolicy,
        environment: Option<&str>,
        deadline: Duration,
    ) -> Verdict {
        #[allow(clippy::disallowed_methods)] // the service reads the clock once per verification
        let now = jiff::Timestamp::now();
        let before = self.client.request_count();
        // Leave headroom under the caller's deadline for judging and answering.
        let network = deadline.mul_f64(0.9);
        let mut v = policy_verdict(
            &self.client,
            loaded,
            reference,
            environment,
            &self.discovery,
            network,
            now,
        )
        .await;
        v.trace.clear();
        if let Some(w) = self.writer.get()
            && let Some(event) = super::lineage::verdict_event(&v)
            && let Err(e) = w.submit(crate::store::Event::Verdict(event))
        {
            tracing::error!(error = %e, "lineage: verdict event dropped (store queue full or store down)");
            self.metrics.lineage_dropped();
        }
        let requests = self.client.request_count().saturating_sub(before);
        v.http_requests = requests;
        self.metrics.registry_requests(requests);
        tracing::info!(image = %reference, digest = ?v.digest.as_ref().map(ToString::to_string), policy = %loaded.policy.name, environment = ?environment, decision = ?v.decision, reasons = v.reasons.len(), "verdict");
        v
    }
}

/// An error verdict (never an allow) for `reference`: a deadline that ran out before the
/// verification could answer.
pub(super) fn error_verdict(
    reference: &ImageRef,
    environment: Option<&str>,
    loaded: &LoadedPolicy,
    reason: String,
) -> Verdict {
    #[allow(clippy::disallowed_methods)]
    let now = jiff::Timestamp::now().to_string();
    Verdict::error(
        reference,
        reference.digest().cloned(),
        environment,
        PolicyRef {
            name: loaded.policy.name.clone(),
            content_hash: loaded.policy.content_hash.clone(),
        },
        loaded.policy.mode,
        TrustRootRef {
            name: loaded.trust.name().to_owned(),
            content_hash: loaded.trust.content_hash().clone(),
        },
        now,
        reason,
    )
}

/// Why a request could not be served (a 4xx, not a verdict).
#[derive(Debug, Clone, thiserror::Error)]
pub enum RequestError {
    /// The policy named does not exist.
    #[error("unknown policy {0:?}; known policies: {1:?}")]
    UnknownPolicy(String, Vec<String>),
    /// The image reference does not parse.
    #[error("invalid image reference {0:?}: {1}")]
    BadImage(String, String),
}
