//! Accepting a signed verification summary in place of re-verifying an image (the admission
//! fast path). Pure: the envelope bytes, what is expected and `now` come in as arguments.
//!
//! A summary is accepted only if every check below holds, in this order (the first failure is
//! the refusal, with what was expected and what was found):
//!
//! 1. the envelope parses within bounds and its payload type is `application/vnd.in-toto+json`;
//! 2. a signature verifies with one of the policy's `verificationSummaries.keys` (before anything
//!    in the payload is believed);
//! 3. the payload is an in-toto Statement v1 (custody's statement parser) of predicate type
//!    `https://slsa.dev/verification_summary/v1` whose predicate has the VSA shape;
//! 4. a subject's `sha256` is the image digest;
//! 5. `resourceUri` is `oci://<registry>/<repository>@<digest>` of this image;
//! 6. `verificationResult` is `PASSED`;
//! 7. `policy.digest.sha256` is the current policy file's content hash;
//! 8. the decision context names the same environment, trust root content hash and authority
//!    keys as the current policy (a summary without it is refused);
//! 9. `verifier.id` is the policy's `verifierId`, when the policy names one;
//! 10. `timeVerified` is not after `now` and not older than `maxAge` at `now`.
//!
//! A refusal never denies: the caller falls back to full verification.

use std::str::FromStr;

use thiserror::Error;

use super::dsse::{IN_TOTO_PAYLOAD_TYPE, parse_envelope};
use super::vsa::{CONTEXT_FIELD, VSA_PREDICATE_TYPE, VsaPredicate, resource_uri};
use crate::evidence::{StatementVersion, parse_statement};
use crate::limits::Limits;
use crate::policy::SummaryTrust;
use crate::reference::Digest;

/// What the current verification expects a summary to say.
#[derive(Debug, Clone)]
pub struct Expected<'a> {
    /// `registry/repository` of the image.
    pub name: &'a str,
    /// The image digest.
    pub digest: &'a Digest,
    /// The environment asked about.
    pub environment: Option<&'a str>,
    /// The current policy file's content hash.
    pub policy_hash: &'a Digest,
    /// The current trust root's content hash.
    pub trust_root_hash: &'a Digest,
    /// Content hashes of the static keys the current policy trusts.
    pub authority_keys: &'a [Digest],
    /// The verification time.
    pub now: jiff::Timestamp,
}

/// A summary that passed every check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AcceptedSummary {
    /// The name of the policy key that verified it.
    pub key_name: String,
    /// That key's content hash.
    pub key_digest: Digest,
    /// When the summarised verification happened.
    pub time_verified: jiff::Timestamp,
    /// Its `verifier.id`.
    pub verifier_id: String,
    /// Its `verifiedLevels`.
    pub verified_levels: Vec<String>,
    /// SHA-256 of the envelope.
    pub envelope_digest: Digest,
}

/// Why a summary was not accepted. Each variant names what was expected and what was found.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum Refusal {
    /// Occurs when the envelope or statement is malformed or over a bound.
    #[error("malformed summary: {0}")]
    Malformed(String),
    /// Occurs when the envelope's payload type is not in-toto.
    #[error("payload type is {found:?}, expected {IN_TOTO_PAYLOAD_TYPE}")]
    PayloadType {
        /// The payload type found.
        found: String,
    },
    /// Occurs when no signature verifies with a trusted key.
    #[error(
        "none of its {signatures} signature(s) verifies with the {keys} trusted summary key(s) ({names})"
    )]
    Signature {
        /// Signatures in the envelope.
        signatures: usize,
        /// Trusted keys tried.
        keys: usize,
        /// Their names.
        names: String,
    },
    /// Occurs when the statement is not a VSA v1.
    #[error("predicate type is {found:?}, expected {VSA_PREDICATE_TYPE}")]
    PredicateType {
        /// The predicate type found.
        found: String,
    },
    /// Occurs when no subject is the image digest.
    #[error("subject digests are {found}, expected {expected}")]
    Subject {
        /// The image digest.
        expected: String,
        /// The subjects' sha256 digests.
        found: String,
    },
    /// Occurs when `resourceUri` names another image.
    #[error("resourceUri is {found:?}, expected {expected:?}")]
    ResourceUri {
        /// This image's URI.
        expected: String,
        /// The URI found.
        found: String,
    },
    /// Occurs when the summary reports a failed verification.
    #[error("verificationResult is {found:?}, expected PASSED")]
    Result {
        /// The result found.
        found: String,
    },
    /// Occurs when the summary was made under another policy (or another version of it).
    #[error("policy digest is {found}, expected the current policy's {expected}")]
    PolicyDigest {
        /// The current policy's hash.
        expected: String,
        /// The digest found.
        found: String,
    },
    /// Occurs when the decision context is absent or differs from the current one.
    #[error("decision context: {field} is {found}, expected {expected}")]
    Context {
        /// Which part (`environment`, `trust root`, `authority keys`, `context`).
        field: &'static str,
        /// The current value.
        expected: String,
        /// The value found.
        found: String,
    },
    /// Occurs when the verifier is not the one the policy names.
    #[error("verifier.id is {found:?}, expected {expected:?}")]
    VerifierId {
        /// The policy's `verifierId`.
        expected: String,
        /// The id found.
        found: String,
    },
    /// Occurs when `timeVerified` is not a timestamp.
    #[error("timeVerified {found:?} is not an RFC 3339 timestamp")]
    Time {
        /// The value found.
        found: String,
    },
    /// Occurs when `timeVerified` is after the verification time.
    #[error("timeVerified {time_verified} is in the future (now {now})")]
    Future {
        /// `timeVerified`.
        time_verified: String,
        /// The verification time.
        now: String,
    },
    /// Occurs when the summary is older than `maxAge`.
    #[error("timeVerified {time_verified} is {age} old, more than maxAge {max_age}")]
    Stale {
        /// `timeVerified`.
        time_verified: String,
        /// Its age at `now`.
        age: String,
        /// The policy's `maxAge`.
        max_age: String,
    },
}

impl Refusal {
    /// A stable kebab-case code for traces and tests.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Malformed(_) => "summary-malformed",
            Self::PayloadType { .. } => "summary-payload-type",
            Self::Signature { .. } => "summary-signature",
            Self::PredicateType { .. } => "summary-predicate-type",
            Self::Subject { .. } => "summary-subject",
            Self::ResourceUri { .. } => "summary-resource-uri",
            Self::Result { .. } => "summary-result",
            Self::PolicyDigest { .. } => "summary-policy-digest",
            Self::Context { .. } => "summary-context",
            Self::VerifierId { .. } => "summary-verifier-id",
            Self::Time { .. } => "summary-time",
            Self::Future { .. } => "summary-future",
            Self::Stale { .. } => "summary-stale",
        }
    }
}

/// Checks one summary envelope against the trusted keys and what the current verification
/// expects. See the module documentation for the checks and their order.
///
/// # Errors
/// The first [`Refusal`].
pub fn accept_summary(
    envelope: &[u8],
    trust: &SummaryTrust,
    expected: &Expected<'_>,
    limits: &Limits,
) -> Result<AcceptedSummary, Refusal> {
    // 1. Shape.
    let parsed = parse_envelope(envelope, limits).map_err(Refusal::Malformed)?;
    if parsed.payload_type != IN_TOTO_PAYLOAD_TYPE {
        return Err(Refusal::PayloadType {
            found: parsed.payload_type.chars().take(200).collect(),
        });
    }
    // 2. Signature, before the payload is believed.
    let keys: Vec<_> = trust.keys.iter().map(|k| &k.key).collect();
    let Some(k) = parsed.verified_by(&keys) else {
        return Err(Refusal::Signature {
            signatures: parsed.signatures.len(),
            keys: keys.len(),
            names: trust
                .keys
                .iter()
                .map(|k| k.name.as_str())
                .collect::<Vec<_>>()
                .join(", "),
        });
    };
    let Some(key) = trust.keys.get(k) else {
        return Err(Refusal::Malformed("key index out of range".into()));
    };
    // 3. Statement v1 carrying a VSA.
    let statement =
        parse_statement(&parsed.payload, limits).map_err(|e| Refusal::Malformed(e.to_string()))?;
    if statement.version != StatementVersion::V1 {
        return Err(Refusal::Malformed(
            "the statement is in-toto v0.1; a VSA v1 is carried in Statement v1".into(),
        ));
    }
    if statement.predicate_type != VSA_PREDICATE_TYPE {
        return Err(Refusal::PredicateType {
            found: statement.predicate_type.chars().take(200).collect(),
        });
    }
    let predicate: VsaPredicate = serde_json::from_value(statement.predicate)
        .map_err(|e| Refusal::Malformed(format!("VSA predicate: {e}")))?;
    // 4. Subject.
    let digest = expected.digest;
    let algorithm = digest.algorithm().name();
    if !statement
        .subjects
        .iter()
        .any(|s| s.digest.get(algorithm).map(String::as_str) == Some(digest.hex()))
    {
        let found: Vec<String> = statement
            .subjects
            .iter()
            .take(8)
            .map(|s| {
                s.digest.get(algorithm).map_or_else(
                    || format!("(no {algorithm})"),
                    |h| format!("{algorithm}:{h}"),
                )
            })
            .collect();
        return Err(Refusal::Subject {
            expected: digest.to_string(),
            found: found.join(", "),
        });
    }
    // 5. Resource.
    let uri = resource_uri(expected.name, digest);
    if predicate.resource_uri != uri {
        return Err(Refusal::ResourceUri {
            expected: uri,
            found: predicate.resource_uri.chars().take(300).collect(),
        });
    }
    // 6. Result.
    if predicate.verification_result != "PASSED" {
        return Err(Refusal::Result {
            found: predicate.verification_result.chars().take(50).collect(),
        });
    }
    // 7. Policy.
    let policy_hash = expected.policy_hash;
    let found = predicate
        .policy
        .digest
        .get(policy_hash.algorithm().name())
        .cloned();
    if found.as_deref() != Some(policy_hash.hex()) {
        return Err(Refusal::PolicyDigest {
            expected: policy_hash.to_string(),
            found: found.map_or_else(
                || "absent".to_owned(),
                |h| format!("{}:{h}", policy_hash.algorithm().name()),
            ),
        });
    }
    // 8. Context.
    let Some(context) = &predicate.context else {
        return Err(Refusal::Context {
            field: "context",
            expected: format!("the {CONTEXT_FIELD} field"),
            found: "none".into(),
        });
    };
    let show = |e: Option<&str>| e.map_or_else(|| "none".to_owned(), |e| format!("{e:?}"));
    if context.environment.as_deref() != expected.environment {
        return Err(Refusal::Context {
            field: "environment",
            expected: show(expected.environment),
            found: show(context.environment.as_deref()),
        });
    }
    if context.trust_root.content_hash != expected.trust_root_hash.to_string() {
        return Err(Refusal::Context {
            field: "trust root",
            expected: expected.trust_root_hash.to_string(),
            found: context.trust_root.content_hash.chars().take(100).collect(),
        });
    }
    let mut want: Vec<String> = expected
        .authority_keys
        .iter()
        .map(ToString::to_string)
        .collect();
    want.sort();
    want.dedup();
    let mut got = context.authority_keys.clone();
    got.sort();
    got.dedup();
    if got != want {
        return Err(Refusal::Context {
            field: "authority keys",
            expected: format!("[{}]", want.join(", ")),
            found: format!(
                "[{}]",
                got.iter().take(16).cloned().collect::<Vec<_>>().join(", ")
            ),
        });
    }
    // 9. Verifier.
    if let Some(id) = &trust.verifier_id
        && &predicate.verifier.id != id
    {
        return Err(Refusal::VerifierId {
            expected: id.clone(),
            found: predicate.verifier.id.chars().take(300).collect(),
        });
    }
    // 10. Freshness.
    let time_verified =
        jiff::Timestamp::from_str(&predicate.time_verified).map_err(|_| Refusal::Time {
            found: predicate.time_verified.chars().take(100).collect(),
        })?;
    if time_verified > expected.now {
        return Err(Refusal::Future {
            time_verified: time_verified.to_string(),
            now: expected.now.to_string(),
        });
    }
    let age = expected.now.duration_since(time_verified);
    if age > trust.max_age {
        return Err(Refusal::Stale {
            time_verified: time_verified.to_string(),
            age: format!("{age:#}"),
            max_age: trust.max_age_text.clone(),
        });
    }
    Ok(AcceptedSummary {
        key_name: key.name.clone(),
        key_digest: key.key.content_hash().clone(),
        time_verified,
        verifier_id: predicate.verifier.id,
        verified_levels: predicate.verified_levels,
        envelope_digest: parsed.digest,
    })
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::attest::dsse::Envelope;
    use crate::attest::key::SigningKey;
    use crate::attest::vsa::{
        DecisionContext, ResourceDescriptor, STATEMENT_V1, Subject, TrustRootHash, Verifier,
        VsaStatement, digest_set,
    };
    use crate::policy::SummaryKey;

    const NOW: &str = "2026-11-25T12:00:00Z";

    struct Fixture {
        key: SigningKey,
        image: Digest,
        policy: Digest,
        trust_root: Digest,
        keys: Vec<Digest>,
    }

    fn fixture() -> Fixture {
        Fixture {
            key: SigningKey::generate_for_tests(),
            image: Digest::sha256_of(b"image"),
            policy: Digest::sha256_of(b"policy"),
            trust_root: Digest::sha256_of(b"root"),
            keys: vec![Digest::sha256_of(b"k2"), Digest::sha256_of(b"k1")],
        }
    }

    fn statement(f: &Fixture) -> VsaStatement {
        VsaStatement {
            type_: STATEMENT_V1.into(),
            subject: vec![Subject {
                name: "r.example/acme/app".into(),
                digest: digest_set(&f.image),
            }],
            predicate_type: VSA_PREDICATE_TYPE.into(),
            predicate: VsaPredicate {
                verifier: Verifier {
                    id: "https://ci.example/custody".into(),
                    version: BTreeMap::new(),
                },
                time_verified: "2026-11-25T11:30:00Z".into(),
                resource_uri: resource_uri("r.example/acme/app", &f.image),
                policy: ResourceDescriptor {
                    uri: Some("custody:policy/p".into()),
                    digest: digest_set(&f.policy),
                    ..ResourceDescriptor::default()
                },
                input_attestations: Vec::new(),
                verification_result: "PASSED".into(),
                verified_levels: vec!["SLSA_BUILD_LEVEL_1".into()],
                dependency_levels: BTreeMap::new(),
                slsa_version: Some("1.0".into()),
                context: Some(DecisionContext {
                    environment: Some("production".into()),
                    rule: Some("production".into()),
                    trust_root: TrustRootHash {
                        name: "root".into(),
                        content_hash: f.trust_root.to_string(),
                    },
                    // Order does not matter.
                    authority_keys: f.keys.iter().rev().map(ToString::to_string).collect(),
                }),
            },
        }
    }

    fn trust(f: &Fixture, verifier: Option<&str>) -> SummaryTrust {
        SummaryTrust {
            keys: vec![SummaryKey {
                name: "attestor".into(),
                key: f.key.public_key().clone(),
            }],
            max_age: jiff::SignedDuration::from_hours(1),
            max_age_text: "1h".into(),
            verifier_id: verifier.map(str::to_owned),
        }
    }

    fn check(
        f: &Fixture,
        s: &VsaStatement,
        trust: &SummaryTrust,
        now: &str,
    ) -> Result<AcceptedSummary, Refusal> {
        let env = Envelope::sign(IN_TOTO_PAYLOAD_TYPE, &s.to_bytes(), &f.key).unwrap();
        check_bytes(f, &env.to_bytes(), trust, now)
    }

    fn check_bytes(
        f: &Fixture,
        bytes: &[u8],
        trust: &SummaryTrust,
        now: &str,
    ) -> Result<AcceptedSummary, Refusal> {
        let expected = Expected {
            name: "r.example/acme/app",
            digest: &f.image,
            environment: Some("production"),
            policy_hash: &f.policy,
            trust_root_hash: &f.trust_root,
            authority_keys: &f.keys,
            now: now.parse().unwrap(),
        };
        accept_summary(bytes, trust, &expected, &Limits::default())
    }

    #[test]
    fn a_good_summary_is_accepted_naming_key_and_time() {
        let f = fixture();
        let a = check(
            &f,
            &statement(&f),
            &trust(&f, Some("https://ci.example/custody")),
            NOW,
        )
        .unwrap();
        assert_eq!(a.key_name, "attestor");
        assert_eq!(&a.key_digest, f.key.key_id());
        assert_eq!(a.time_verified.to_string(), "2026-11-25T11:30:00Z");
        assert_eq!(a.verified_levels, vec!["SLSA_BUILD_LEVEL_1"]);
    }

    #[test]
    fn each_check_refuses_with_its_own_code() {
        let f = fixture();
        let t = trust(&f, None);
        let code = |mutate: &dyn Fn(&mut VsaStatement), now: &str| {
            let mut s = statement(&f);
            mutate(&mut s);
            check(&f, &s, &t, now).unwrap_err().code()
        };
        let other = Digest::sha256_of(b"other");
        assert_eq!(
            code(&|s| s.subject[0].digest = digest_set(&other), NOW),
            "summary-subject"
        );
        assert_eq!(
            code(
                &|s| s.predicate.resource_uri = resource_uri("r.example/acme/evil", &f.image),
                NOW
            ),
            "summary-resource-uri"
        );
        assert_eq!(
            code(&|s| s.predicate.verification_result = "FAILED".into(), NOW),
            "summary-result"
        );
        assert_eq!(
            code(&|s| s.predicate.policy.digest = digest_set(&other), NOW),
            "summary-policy-digest"
        );
        assert_eq!(
            code(&|s| s.predicate.policy.digest.clear(), NOW),
            "summary-policy-digest"
        );
        fn ctx<'a>(f2: &'a dyn Fn(&mut DecisionContext)) -> impl Fn(&mut VsaStatement) + 'a {
            move |s: &mut VsaStatement| f2(s.predicate.context.as_mut().unwrap())
        }
        assert_eq!(
            code(&ctx(&|c| c.environment = Some("dev".into())), NOW),
            "summary-context"
        );
        assert_eq!(
            code(&ctx(&|c| c.environment = None), NOW),
            "summary-context"
        );
        assert_eq!(
            code(
                &ctx(&|c| c.trust_root.content_hash = other.to_string()),
                NOW
            ),
            "summary-context"
        );
        assert_eq!(
            code(
                &ctx(&|c| {
                    c.authority_keys.pop();
                }),
                NOW
            ),
            "summary-context"
        );
        assert_eq!(
            code(&|s| s.predicate.context = None, NOW),
            "summary-context"
        );
        assert_eq!(
            code(
                &|s| s.predicate_type = "https://slsa.dev/provenance/v1".into(),
                NOW
            ),
            "summary-predicate-type"
        );
        assert_eq!(
            code(
                &|s| s.type_ = "https://in-toto.io/Statement/v0.1".into(),
                NOW
            ),
            "summary-malformed"
        );
        assert_eq!(
            code(&|s| s.predicate.time_verified = "yesterday".into(), NOW),
            "summary-time"
        );
        // Freshness: exactly maxAge old passes, a second more is stale; a second ahead is future.
        assert!(check(&f, &statement(&f), &t, "2026-11-25T12:30:00Z").is_ok());
        assert_eq!(code(&|_| {}, "2026-11-25T12:30:01Z"), "summary-stale");
        assert!(check(&f, &statement(&f), &t, "2026-11-25T11:30:00Z").is_ok());
        assert_eq!(code(&|_| {}, "2026-11-25T11:29:59Z"), "summary-future");
        // Verifier id, when the policy names one.
        let strict = trust(&f, Some("https://other.example/custody"));
        assert_eq!(
            check(&f, &statement(&f), &strict, NOW).unwrap_err().code(),
            "summary-verifier-id"
        );
    }

    #[test]
    fn signatures_and_envelopes_are_checked_before_the_payload_is_read() {
        let f = fixture();
        let t = trust(&f, None);
        // Another key: refused whatever the payload says.
        let stranger = SigningKey::generate_for_tests();
        let env =
            Envelope::sign(IN_TOTO_PAYLOAD_TYPE, &statement(&f).to_bytes(), &stranger).unwrap();
        let r = check_bytes(&f, &env.to_bytes(), &t, NOW).unwrap_err();
        assert_eq!(r.code(), "summary-signature");
        assert!(r.to_string().contains("attestor"), "{r}");
        // A payload changed after signing.
        let mut env =
            Envelope::sign(IN_TOTO_PAYLOAD_TYPE, &statement(&f).to_bytes(), &f.key).unwrap();
        let mut s = statement(&f);
        s.predicate.verification_result = "PASSED ".into();
        env.payload =
            base64::Engine::encode(&base64::engine::general_purpose::STANDARD, s.to_bytes());
        assert_eq!(
            check_bytes(&f, &env.to_bytes(), &t, NOW)
                .unwrap_err()
                .code(),
            "summary-signature"
        );
        // Signed, but not in-toto.
        let env = Envelope::sign("application/json", &statement(&f).to_bytes(), &f.key).unwrap();
        assert_eq!(
            check_bytes(&f, &env.to_bytes(), &t, NOW)
                .unwrap_err()
                .code(),
            "summary-payload-type"
        );
        assert_eq!(
            check_bytes(&f, b"{}", &t, NOW).unwrap_err().code(),
            "summary-malformed"
        );
        // Signed garbage is malformed, not accepted.
        let env = Envelope::sign(IN_TOTO_PAYLOAD_TYPE, b"{\"x\":1}", &f.key).unwrap();
        assert_eq!(
            check_bytes(&f, &env.to_bytes(), &t, NOW)
                .unwrap_err()
                .code(),
            "summary-malformed"
        );
    }

    #[test]
    fn refusal_codes_are_unique() {
        let all = [
            Refusal::Malformed(String::new()).code(),
            Refusal::PayloadType {
                found: String::new(),
            }
            .code(),
            Refusal::Signature {
                signatures: 0,
                keys: 0,
                names: String::new(),
            }
            .code(),
            Refusal::PredicateType {
                found: String::new(),
            }
            .code(),
            Refusal::Subject {
                expected: String::new(),
                found: String::new(),
            }
            .code(),
            Refusal::ResourceUri {
                expected: String::new(),
                found: String::new(),
            }
            .code(),
            Refusal::Result {
                found: String::new(),
            }
            .code(),
            Refusal::PolicyDigest {
                expected: String::new(),
                found: String::new(),
            }
            .code(),
            Refusal::Context {
                field: "",
                expected: String::new(),
                found: String::new(),
            }
            .code(),
            Refusal::VerifierId {
                expected: String::new(),
                found: String::new(),
            }
            .code(),
            Refusal::Time {
                found: String::new(),
            }
            .code(),
            Refusal::Future {
                time_verified: String::new(),
                now: String::new(),
            }
            .code(),
            Refusal::Stale {
                time_verified: String::new(),
                age: String::new(),
                max_age: String::new(),
            }
            .code(),
        ];
        let set: std::collections::BTreeSet<_> = all.iter().collect();
        assert_eq!(set.len(), all.len());
    }
}
