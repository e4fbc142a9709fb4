//! Evaluating a trust policy over verified facts. Pure: no I/O, no clock.

use serde::Serialize;
use serde_json::{Value, json};

use super::condition::ConditionContext;
use super::document::SbomRequirement;
use super::identity::{Matcher, Mismatch};
use super::load::{Authority, Policy, Rule};
use crate::evidence::Role;
use crate::reference::ImageRef;
use crate::verify::{Signer, VerifiedFacts};

/// One piece of evidence as the policy sees it.
#[derive(Debug, Clone)]
pub struct Candidate<'a> {
    /// Its role.
    pub role: Role,
    /// Verified facts (`None`: unsigned, or verification failed).
    pub facts: Option<&'a VerifiedFacts>,
    /// How a person finds it (digest and where it was found).
    pub label: String,
}

/// Allow or deny.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Decision {
    /// Every requirement of the matching rule is met.
    Allow,
    /// At least one is not (see the reasons).
    Deny,
}

/// Why a requirement failed: which rule, which check, what it expected, what was found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Reason {
    /// The rule that required it (`None` for reference rules and "no rule matches").
    pub rule: Option<String>,
    /// Stable check code.
    pub check: &'static str,
    /// What was required.
    pub expected: String,
    /// What was found instead.
    pub found: String,
}

impl std::fmt::Display for Reason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if let Some(r) = &self.rule {
            write!(f, "rule {r}: ")?;
        }
        write!(
            f,
            "{}: expected {}; found {}",
            self.check, self.expected, self.found
        )
    }
}

/// The policy's judgement.
#[derive(Debug, Clone, Serialize)]
pub struct Judgement {
    /// Allow or deny.
    pub decision: Decision,
    /// The rule that matched.
    pub rule: Option<String>,
    /// Every failed requirement.
    pub reasons: Vec<Reason>,
    /// Evidence accepted, by candidate index, with the authority that accepted it.
    pub accepted: Vec<(usize, String)>,
    /// Requirements left to another gate (promotion).
    pub deferred: Vec<String>,
    /// Step-by-step account (`policy explain`).
    pub trace: Vec<String>,
}

/// Evaluates `policy` for `reference` (as deployed; its digest is the verified one) in
/// `environment`, over `candidates`.
pub fn evaluate(
    policy: &Policy,
    reference: &ImageRef,
    environment: Option<&str>,
    candidates: &[Candidate<'_>],
) -> Judgement {
    let mut j = Judgement {
        decision: Decision::Deny,
        rule: None,
        reasons: Vec::new(),
        accepted: Vec::new(),
        deferred: Vec::new(),
        trace: Vec::new(),
    };
    // 1. Reference rules.
    if let Some(rules) = &policy.references {
        for v in rules.check(reference) {
            j.trace
                .push(format!("reference rule {} broken by {reference}", v.code));
            j.reasons.push(Reason {
                rule: None,
                check: v.code,
                expected: v.expected,
                found: v.found,
            });
        }
        if j.reasons.is_empty() {
            j.trace
                .push(format!("reference {reference} follows the reference rules"));
        }
    }
    // 2. The first matching rule.
    let name = reference.name();
    let env_text = environment.map_or_else(
        || "no environment".to_owned(),
        |e| format!("environment {e}"),
    );
    let mut matched = None;
    for rule in &policy.rules {
        if rule.matches(&name, environment) {
            j.trace
                .push(format!("rule {:?} matches {name} in {env_text}", rule.name));
            matched = Some(rule);
            break;
        }
        j.trace.push(format!(
            "rule {:?} does not match {name} in {env_text}",
            rule.name
        ));
    }
    let Some(rule) = matched else {
        j.reasons.push(Reason {
            rule: None,
            check: "no-matching-rule",
            expected: "a rule whose images and environments match".into(),
            found: format!("no rule matches {name} in {env_text}"),
        });
        return j;
    };
    j.rule = Some(rule.name.clone());
    evaluate_rule(rule, reference, candidates, &mut j);
    if j.reasons.is_empty() {
        j.decision = Decision::Allow;
    }
    j
}

fn evaluate_rule(
    rule: &Rule,
    reference: &ImageRef,
    candidates: &[Candidate<'_>],
    j: &mut Judgement,
) {
    let rname = Some(rule.name.clone());
    // 3. Authorities: distinct authorities with at least one verified signature or attestation.
    let signed: Vec<(usize, &VerifiedFacts)> = candidates
        .iter()
        .enumerate()
        .filter(|(_, c)| matches!(c.role, Role::Signature | Role::Attestation))
        .filter_map(|(i, c)| c.facts.map(|f| (i, f)))
        .collect();
    let mut satisfied = Vec::new();
    let mut closest: Vec<String> = Vec::new();
    // The first authority accepting each candidate, computed once and reused below.
    let mut accepted_by: Vec<Option<usize>> = vec![None; candidates.len()];
    for (a, auth) in rule.authorities.iter().enumerate() {
        let mut hit = false;
        for (i, facts) in &signed {
            match accepts(auth, facts) {
                Ok(()) => {
                    j.accepted.push((*i, auth.name().to_owned()));
                    if let Some(slot) = accepted_by.get_mut(*i) {
                        slot.get_or_insert(a);
                    }
                    hit = true;
                }
                Err(m) => {
                    if closest.len() < 3 {
                        closest.push(format!(
                            "{} ({})",
                            candidates.get(*i).map(|c| c.label.as_str()).unwrap_or("?"),
                            m.iter()
                                .map(ToString::to_string)
                                .collect::<Vec<_>>()
                                .join("; ")
                        ));
                    }
                }
            }
        }
        j.trace.push(format!(
            "authority {:?}: {}",
            auth.name(),
            if hit {
                "signed"
            } else {
                "no matching signature"
            }
        ));
        if hit {
            satisfied.push(auth.name().to_owned());
        }
    }
    if satisfied.len() < rule.threshold {
        let unsigned = candidates
            .iter()
            .filter(|c| matches!(c.role, Role::Signature | Role::Attestation) && c.facts.is_none())
            .count();
        let found = if signed.is_empty() && unsigned == 0 {
            "no signatures or attestations".to_owned()
        } else {
            let mut parts = vec![format!(
                "{} authorit{} signed ({})",
                satisfied.len(),
                if satisfied.len() == 1 { "y" } else { "ies" },
                satisfied.join(", ")
            )];
            if unsigned > 0 {
                parts.push(format!(
                    "{unsigned} piece(s) of evidence failed verification"
                ));
            }
            if !closest.is_empty() {
                parts.push(format!(
                    "verified but from other signers: {}",
                    closest.join(" | ")
                ));
            }
            parts.join("; ")
        };
        j.reasons.push(Reason {
            rule: rname.clone(),
            check: "authorities",
            expected: format!(
                "{} of: {}",
                rule.threshold,
                rule.authorities
                    .iter()
                    .map(describe_authority)
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            found,
        });
    }

    // 4. Attestations, each from one of the rule's authorities.
    for req in &rule.attestations {
        let mut failures = Vec::new();
        let mut ok = false;
        let of_type: Vec<(usize, &VerifiedFacts)> = signed
            .iter()
            .filter(|(_, f)| {
                f.statement()
                    .is_some_and(|s| req.predicate.uris.contains(&s.predicate_type))
            })
            .copied()
            .collect();
        for (i, facts) in &of_type {
            let label = candidates
                .get(*i)
                .map(|c| c.label.clone())
                .unwrap_or_default();
            let Some(auth) = accepted_by
                .get(*i)
                .copied()
                .flatten()
                .and_then(|a| rule.authorities.get(a))
            else {
                failures.push(format!(
                    "{label}: not signed by any of the rule's authorities"
                ));
                continue;
            };
            match check_attestation(req, facts, reference) {
                Ok(()) => {
                    j.trace.push(format!(
                        "attestation {:?} satisfied by {label} (signed by {:?})",
                        req.name,
                        auth.name()
                    ));
                    ok = true;
                    break;
                }
                Err(why) => failures.push(format!("{label}: {why}")),
            }
        }
        if !ok {
            let found = if of_type.is_empty() {
                let types: Vec<String> = signed
                    .iter()
                    .filter_map(|(_, f)| f.statement().map(|s| s.predicate_type.clone()))
                    .collect();
                format!(
                    "no verified attestation of that type (attestations found: {})",
                    if types.is_empty() {
                        "none".into()
                    } else {
                        types.join(", ")
                    }
                )
            } else {
                failures.join(" | ")
            };
            j.reasons.push(Reason {
                rule: rname.clone(),
                check: if of_type.is_empty() {
                    "attestation-missing"
                } else {
                    "attestation"
                },
                expected: format!(
                    "attestation {:?} of type {} from the rule's authorities",
                    req.name,
                    req.predicate.uris.join(" or ")
                ),
                found,
            });
        }
    }

    // 5. SBOM.
    let sbom_ok = match rule.sbom {
        SbomRequirement::None => true,
        SbomRequirement::Present => {
            candidates.iter().any(|c| c.role == Role::Sbom)
                || signed.iter().any(|(_, f)| {
                    f.statement()
                        .is_some_and(|s| is_sbom_type(&s.predicate_type))
                })
        }
        SbomRequirement::Attested => signed.iter().any(|(_, f)| {
            f.statement()
                .is_some_and(|s| is_sbom_type(&s.predicate_type))
                && rule.authorities.iter().any(|a| accepts(a, f).is_ok())
        }),
    };
    if !sbom_ok {
        j.reasons.push(Reason {
            rule: rname.clone(),
            check: "sbom",
            expected: match rule.sbom {
                SbomRequirement::Attested => {
                    "an SPDX or CycloneDX attestation from the rule's authorities".into()
                }
                _ => "an SBOM attached to the image".into(),
            },
            found: format!(
                "{} unsigned SBOM(s), no accepted SBOM attestation",
                candidates.iter().filter(|c| c.role == Role::Sbom).count()
            ),
        });
    }
    if let Some(from) = &rule.promoted_from {
        j.deferred.push(format!("the digest must be the one environment {from:?} runs: checked by the promotion gate (custody gitops check), not here"));
    }
}

fn is_sbom_type(t: &str) -> bool {
    t == "https://spdx.dev/Document"
        || t.starts_with("https://spdx.dev/Document/")
        || t == "https://cyclonedx.org/bom"
        || t.starts_with("https://cyclonedx.org/bom/")
}

fn describe_authority(a: &Authority) -> String {
    match a {
        Authority::Keyless(k) => format!(
            "keyless {:?} ({} from {})",
            k.name,
            describe(&k.subject),
            describe(&k.issuer)
        ),
        Authority::Key { name, key } => format!("key {name:?} ({})", key.content_hash()),
    }
}

fn describe(m: &Matcher) -> String {
    match m {
        Matcher::Exact(e) => e.clone(),
        Matcher::Regex { source, .. } => format!("/{source}/"),
    }
}

/// Whether `auth` accepts the signer of `facts`; the mismatches when not.
pub fn accepts(auth: &Authority, facts: &VerifiedFacts) -> Result<(), Vec<Mismatch>> {
    match (auth, facts.signer()) {
        (Authority::Key { key, .. }, Signer::Key { key_digest, .. })
            if key_digest == key.content_hash() =>
        {
            Ok(())
        }
        (Authority::Key { key, .. }, signer) => Err(vec![Mismatch {
            field: "key",
            expected: key.content_hash().to_string(),
            found: Some(match signer {
                Signer::Key { key_digest, .. } => format!("key {key_digest}"),
                Signer::Certificate(c) => {
                    format!("certificate for {}", c.identity.as_deref().unwrap_or("?"))
                }
            }),
        }]),
        (Authority::Keyless(_), Signer::Key { key_digest, .. }) => Err(vec![Mismatch {
            field: "certificate",
            expected: "a keyless signature".into(),
            found: Some(format!("key {key_digest}")),
        }]),
        (Authority::Keyless(k), Signer::Certificate(c)) => {
            let mut out = Vec::new();
            let mut check = |field: &'static str, m: &Matcher, found: Option<&str>| {
                let ok = found.is_some_and(|f| match m {
                    Matcher::Exact(e) => e == f,
                    Matcher::Regex { regex, .. } => regex.is_match(f),
                });
                if !ok {
                    out.push(Mismatch {
                        field,
                        expected: describe(m),
                        found: found.map(str::to_owned),
                    });
                }
            };
            check("subject", &k.subject, c.identity.as_deref());
            check("issuer", &k.issuer, c.issuer.as_deref());
            if !k.claims.is_empty() {
                for (name, m) in &k.claims {
                    let found = c.claims.get(name);
                    let field: &'static str = super::load::CLAIM_NAMES
                        .iter()
                        .find(|n| *n == name)
                        .copied()
                        .unwrap_or("claim");
                    check(field, m, found);
                }
            }
            if out.is_empty() { Ok(()) } else { Err(out) }
        }
    }
}

/// Conditions and provenance ↔ certificate consistency for one attestation.
fn check_attestation(
    req: &super::load::AttestationRule,
    facts: &VerifiedFacts,
    reference: &ImageRef,
) -> Result<(), String> {
    let Some(statement) = facts.statement() else {
        return Err("not an in-toto statement".into());
    };
    if req.match_certificate
        && let Signer::Certificate(cert) = facts.signer()
    {
        // Key-signed provenance has no certificate claims to compare.
        consistency(
            &statement.predicate_type,
            &statement.predicate,
            &cert.claims,
        )?;
    }
    if req.conditions.is_empty() {
        return Ok(());
    }
    // Bind only what the conditions use: the cel crate deep-copies every bound value.
    let used = |v: &str| req.conditions.iter().any(|c| c.variables().contains(&v));
    let signer = if used("signer") {
        match facts.signer() {
            Signer::Certificate(c) => {
                json!({"identity": c.identity, "issuer": c.issuer, "claims": c.claims})
            }
            Signer::Key { key_digest, .. } => json!({"key": key_digest.to_string()}),
        }
    } else {
        Value::Null
    };
    let image = if used("image") {
        json!({
            "registry": reference.registry(),
            "repository": reference.repository(),
            "digest": reference.digest().map(ToString::to_string),
            "tag": reference.tag(),
        })
    } else {
        Value::Null
    };
    let subjects = if used("subjects") {
        serde_json::to_value(&statement.subjects).unwrap_or(Value::Null)
    } else {
        Value::Null
    };
    let predicate_type = Value::String(statement.predicate_type.clone());
    let all: [(&str, &Value); 5] = [
        ("predicate", &statement.predicate),
        ("predicateType", &predicate_type),
        ("subjects", &subjects),
        ("image", &image),
        ("signer", &signer),
    ];
    let bound: Vec<(&str, &Value)> = all.into_iter().filter(|(name, _)| used(name)).collect();
    let ctx = ConditionContext::new(&bound)?;
    for c in &req.conditions {
        match c.evaluate(&ctx) {
            Ok(true) => {}
            Ok(false) => return Err(format!("condition `{}` is false", c.source())),
            Err(e) => return Err(format!("condition `{}` {e}", c.source())),
        }
    }
    Ok(())
}

/// The SLSA provenance's source and builder must be the signing certificate's.
pub(crate) fn consistency(
    predicate_type: &str,
    p: &Value,
    claims: &crate::verify::FulcioClaims,
) -> Result<(), String> {
    let s = |v: &Value| v.as_str().map(str::to_owned);
    // The signer workflow the provenance names: its builder id, or — for GitHub's workflow build
    // types, whose builder id is the runner ("https://github.com/actions/runner/github-hosted") —
    // the workflow in externalParameters (`repository/path@ref`).
    let (repo, git_ref, commits, builders): (
        Option<String>,
        Option<String>,
        Vec<String>,
        Vec<String>,
    ) = if predicate_type == "https://slsa.dev/provenance/v1" {
        let w = &p["buildDefinition"]["externalParameters"]["workflow"];
        let commits = p["buildDefinition"]["resolvedDependencies"]
            .as_array()
            .map(|deps| {
                deps.iter()
                    .filter_map(|d| d["digest"]["gitCommit"].as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default();
        let mut builders: Vec<String> = s(&p["runDetails"]["builder"]["id"]).into_iter().collect();
        if let (Some(r), Some(path), Some(rf)) = (
            w["repository"].as_str(),
            w["path"].as_str(),
            w["ref"].as_str(),
        ) {
            builders.push(format!(
                "{}/{}@{rf}",
                r.trim_end_matches('/'),
                path.trim_start_matches('/')
            ));
        }
        (s(&w["repository"]), s(&w["ref"]), commits, builders)
    } else if predicate_type == "https://slsa.dev/provenance/v0.2" {
        let uri = p["invocation"]["configSource"]["uri"]
            .as_str()
            .unwrap_or_default();
        let uri = uri.strip_prefix("git+").unwrap_or(uri);
        let (r, rf) = uri.split_once('@').map_or((None, None), |(a, b)| {
            (Some(a.to_owned()), Some(b.to_owned()))
        });
        let commits = s(&p["invocation"]["configSource"]["digest"]["sha1"])
            .into_iter()
            .collect();
        let mut builders: Vec<String> = s(&p["builder"]["id"]).into_iter().collect();
        if let (Some(r), Some(rf), Some(entry)) = (
            &r,
            &rf,
            p["invocation"]["configSource"]["entryPoint"].as_str(),
        ) {
            builders.push(format!(
                "{}/{}@{rf}",
                r.trim_end_matches('/'),
                entry.trim_start_matches('/')
            ));
        }
        (r, rf, commits, builders)
    } else {
        return Ok(());
    };
    let mut bad = Vec::new();
    let mut cmp = |what: &str, prov: Option<&str>, cert: Option<&str>| {
        if prov != cert || prov.is_none() {
            bad.push(format!(
                "{what}: provenance says {}, certificate says {}",
                prov.unwrap_or("nothing"),
                cert.unwrap_or("nothing")
            ));
        }
    };
    cmp(
        "source repository",
        repo.as_deref(),
        claims.source_repository_uri.as_deref(),
    );
    cmp(
        "source ref",
        git_ref.as_deref(),
        claims.source_repository_ref.as_deref(),
    );
    match claims.build_signer_uri.as_deref() {
        Some(signer) if builders.iter().any(|b| b == signer) => {}
        signer => bad.push(format!(
            "builder: provenance names {}, certificate's signer workflow is {}",
            if builders.is_empty() {
                "nothing".into()
            } else {
                builders.join(" / ")
            },
            signer.unwrap_or("nothing")
        )),
    }
    match claims.source_repository_digest.as_deref() {
        Some(c) if commits.iter().any(|x| x == c) => {}
        c => bad.push(format!(
            "source commit: provenance lists {}, certificate says {}",
            if commits.is_empty() {
                "none".into()
            } else {
                commits.join(", ")
            },
            c.unwrap_or("nothing")
        )),
    }
    if bad.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "provenance does not match its signing certificate: {}",
            bad.join("; ")
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::verify::FulcioClaims;

    fn claims() -> FulcioClaims {
        FulcioClaims {
            source_repository_uri: Some("https://github.com/acme/app".into()),
            source_repository_ref: Some("refs/heads/main".into()),
            source_repository_digest: Some("abc123".into()),
            build_signer_uri: Some(
                "https://github.com/acme/app/.github/workflows/release.yml@refs/heads/main".into(),
            ),
            ..FulcioClaims::default()
        }
    }

    fn v1() -> Value {
        json!({
            "buildDefinition": {
                "externalParameters": {"workflow": {"repository": "https://github.com/acme/app", "ref": "refs/heads/main", "path": ".github/workflows/release.yml"}},
                "resolvedDependencies": [{"uri": "git+https://github.com/acme/app@refs/heads/main", "digest": {"gitCommit": "abc123"}}]
            },
            "runDetails": {"builder": {"id": "https://github.com/acme/app/.github/workflows/release.yml@refs/heads/main"}}
        })
    }

    #[test]
    fn consistent_v1_provenance_passes_and_each_field_is_checked() {
        let t = "https://slsa.dev/provenance/v1";
        consistency(t, &v1(), &claims()).unwrap();
        for (pointer, value, named) in [
            (
                "/buildDefinition/externalParameters/workflow/repository",
                "https://github.com/evil/app",
                "source repository",
            ),
            (
                "/buildDefinition/externalParameters/workflow/ref",
                "refs/heads/dev",
                "source ref",
            ),
            (
                "/buildDefinition/resolvedDependencies/0/digest/gitCommit",
                "fff",
                "source commit",
            ),
        ] {
            let mut p = v1();
            *p.pointer_mut(pointer).unwrap() = json!(value);
            let e = consistency(t, &p, &claims()).unwrap_err();
            assert!(e.contains(named) && e.contains(value), "{named}: {e}");
        }
        // GitHub's workflow build type: the builder is the runner, the workflow is in externalParameters.
        let mut gh = v1();
        gh["runDetails"]["builder"]["id"] =
            json!("https://github.com/actions/runner/github-hosted");
        consistency(t, &gh, &claims()).unwrap();
        gh["buildDefinition"]["externalParameters"]["workflow"]["path"] =
            json!(".github/workflows/other.yml");
        assert!(
            consistency(t, &gh, &claims())
                .unwrap_err()
                .contains("builder")
        );
        let e = consistency(t, &json!({}), &claims()).unwrap_err();
        assert!(e.contains("provenance says nothing"), "{e}");
    }

    #[test]
    fn v02_provenance_is_read_from_config_source() {
        let p = json!({
            "builder": {"id": "https://github.com/acme/app/.github/workflows/release.yml@refs/heads/main"},
            "invocation": {"configSource": {"uri": "git+https://github.com/acme/app@refs/heads/main", "digest": {"sha1": "abc123"}}}
        });
        consistency("https://slsa.dev/provenance/v0.2", &p, &claims()).unwrap();
        let mut bad = p.clone();
        bad["invocation"]["configSource"]["digest"]["sha1"] = json!("000");
        assert!(consistency("https://slsa.dev/provenance/v0.2", &bad, &claims()).is_err());
        // Other predicate types are not provenance: nothing to compare.
        consistency("https://spdx.dev/Document", &json!({}), &claims()).unwrap();
    }
}
