//! Loading a trust policy: YAML → checked document → compiled policy, with every problem
//! reported at once, each with its line and column (cargo-deny's two passes).
//!
//! Pure: files a policy refers to (key files, a trust-root file) are read by a resolver the
//! caller passes in.

use std::collections::BTreeSet;

use serde::Serialize;
use serde_saphyr::Spanned;

use super::condition::Condition;
use super::document::{self, API_VERSION, KIND, Mode, PolicyDocument, SbomRequirement};
use super::identity::Matcher;
use crate::evidence::PredicateRequirement;
use crate::reference::{DEFAULT_DENIED_TAGS, Digest, Glob, ReferenceRules};
use crate::trust::StaticKey;

/// Largest policy file accepted.
pub const MAX_POLICY_BYTES: usize = 1 << 20;

/// A finding about a policy file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Diagnostic {
    /// `error` or `warning`.
    pub severity: Severity,
    /// Stable kebab-case code (docs/policy.md lists them).
    pub code: &'static str,
    /// What is wrong and what to do.
    pub message: String,
    /// 1-based line, when known.
    pub line: Option<u64>,
    /// 1-based column, when known.
    pub column: Option<u64>,
}

/// Severity of a diagnostic.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// The policy cannot be used.
    Error,
    /// The policy works but probably not as meant.
    Warning,
}

impl Diagnostic {
    pub(crate) fn error<T>(code: &'static str, message: String, at: Option<&Spanned<T>>) -> Self {
        Self {
            severity: Severity::Error,
            code,
            message,
            line: at.map(|s| s.referenced.line()),
            column: at.map(|s| s.referenced.column()),
        }
    }

    fn warning<T>(code: &'static str, message: String, at: Option<&Spanned<T>>) -> Self {
        Self {
            severity: Severity::Warning,
            ..Self::error(code, message, at)
        }
    }

    /// `path:line:col: severity[code]: message`.
    pub fn render(&self, path: &str) -> String {
        let at = match (self.line, self.column) {
            (Some(l), Some(c)) => format!("{path}:{l}:{c}"),
            (Some(l), None) => format!("{path}:{l}"),
            _ => path.to_owned(),
        };
        let sev = match self.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        format!("{at}: {sev}[{}]: {}", self.code, self.message)
    }
}

/// Where the policy's trust root comes from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum TrustRootChoice {
    /// The embedded Sigstore production root.
    Production,
    /// The embedded Sigstore staging root.
    Staging,
    /// A `trusted_root.json`, as resolved by the loader's resolver.
    File(String),
}

/// A keyless authority.
#[derive(Debug, Clone)]
pub struct KeylessAuthority {
    /// Name.
    pub name: String,
    /// Issuer matcher.
    pub issuer: Matcher,
    /// Subject (SAN) matcher.
    pub subject: Matcher,
    /// Claims (fact names) and their matchers.
    pub claims: Vec<(String, Matcher)>,
}

/// An authority: who may sign.
#[derive(Debug, Clone)]
pub enum Authority {
    /// A keyless identity.
    Keyless(KeylessAuthority),
    /// A static key.
    Key {
        /// Name.
        name: String,
        /// The key.
        key: StaticKey,
    },
}

impl Authority {
    /// The authority's name.
    pub fn name(&self) -> &str {
        match self {
            Authority::Keyless(k) => &k.name,
            Authority::Key { name, .. } => name,
        }
    }
}

/// A required attestation, compiled.
#[derive(Debug)]
pub struct AttestationRule {
    /// Name.
    pub name: String,
    /// Accepted predicate types.
    pub predicate: PredicateRequirement,
    /// Conditions (all must hold).
    pub conditions: Vec<Condition>,
    /// Provenance ↔ certificate consistency.
    pub match_certificate: bool,
}

/// A compiled rule.
#[derive(Debug)]
pub struct Rule {
    /// Name.
    pub name: String,
    /// Image globs.
    pub images: Vec<Glob>,
    /// Environments (empty: any).
    pub environments: Vec<String>,
    /// How many authorities must sign.
    pub threshold: usize,
    /// Authorities.
    pub authorities: Vec<Authority>,
    /// Required attestations.
    pub attestations: Vec<AttestationRule>,
    /// SBOM requirement.
    pub sbom: SbomRequirement,
    /// Source environment of promotions (checked by the promotion gate).
    pub promoted_from: Option<String>,
}

impl Rule {
    /// Whether the rule applies to `name` (`registry/repository`) in `environment`.
    pub fn matches(&self, name: &str, environment: Option<&str>) -> bool {
        let env_ok = self.environments.is_empty()
            || environment.is_some_and(|e| self.environments.iter().any(|x| x == e));
        env_ok && self.images.iter().any(|g| g.matches(name))
    }
}

/// A loaded, validated, compiled trust policy.
#[derive(Debug)]
pub struct Policy {
    /// `metadata.name`.
    pub name: String,
    /// SHA-256 of the policy file's bytes: verdicts cite it.
    pub content_hash: Digest,
    /// Enforcement mode.
    pub mode: Mode,
    /// Trust root.
    pub trust_root: TrustRootChoice,
    /// Reference rules, if any.
    pub references: Option<ReferenceRules>,
    /// Rules in order.
    pub rules: Vec<Rule>,
    /// Warnings found while loading (`policy lint` prints them).
    pub warnings: Vec<Diagnostic>,
    /// Signed verification summaries accepted in place of re-verifying (`None`: never).
    pub verification_summaries: Option<SummaryTrust>,
}

/// Longest `verificationSummaries.maxAge` accepted: 30 days. A summary is a cached decision;
/// a bound keeps a typo (`maxAge: 8760h`) from making revocations and policy fixes moot.
pub const MAX_SUMMARY_AGE: jiff::SignedDuration = jiff::SignedDuration::from_hours(720);

/// The compiled `spec.verificationSummaries` block.
#[derive(Debug, Clone)]
pub struct SummaryTrust {
    /// Keys whose summaries are accepted (ECDSA P-256), by name.
    pub keys: Vec<SummaryKey>,
    /// How old a summary may be.
    pub max_age: jiff::SignedDuration,
    /// `maxAge` as written, for messages.
    pub max_age_text: String,
    /// The `verifier.id` a summary must carry, if any.
    pub verifier_id: Option<String>,
}

/// A key trusted to sign verification summaries.
#[derive(Debug, Clone)]
pub struct SummaryKey {
    /// Its name in the policy.
    pub name: String,
    /// The key.
    pub key: StaticKey,
}

/// Reads a file a policy refers to (key files): `Ok(bytes)` or a message.
pub type Resolver<'a> = &'a dyn Fn(&str) -> Result<Vec<u8>, String>;

/// Claim names a keyless authority may constrain (the facts' names).
pub const CLAIM_NAMES: &[&str] = &[
    "githubWorkflowTrigger",
    "githubWorkflowSha",
    "githubWorkflowName",
    "githubWorkflowRepository",
    "githubWorkflowRef",
    "buildSignerUri",
    "buildSignerDigest",
    "runnerEnvironment",
    "sourceRepositoryUri",
    "sourceRepositoryDigest",
    "sourceRepositoryRef",
    "sourceRepositoryIdentifier",
    "sourceRepositoryOwnerUri",
    "sourceRepositoryOwnerIdentifier",
    "buildConfigUri",
    "buildConfigDigest",
    "buildTrigger",
    "runInvocationUri",
    "sourceRepositoryVisibilityAtSigning",
    "deploymentEnvironment",
    "tokenSubject",
];

/// Parses, validates and compiles a policy.
///
/// # Errors
/// Every error found (YAML syntax, unknown keys, schema, bad regexps, bad globs, CEL that does
/// not compile or is too costly, rules without authorities, contradictions), each with its
/// position when known.
pub fn load_policy(yaml: &str, resolve: Resolver<'_>) -> Result<Policy, Vec<Diagnostic>> {
    if yaml.len() > MAX_POLICY_BYTES {
        return Err(vec![Diagnostic::error::<()>(
            "too-large",
            format!(
                "policy is {} bytes, more than {MAX_POLICY_BYTES}",
                yaml.len()
            ),
            None,
        )]);
    }
    let doc: PolicyDocument = parse_document(yaml)?;
    Compiler::default().compile(doc, yaml, resolve)
}

/// Deserialises a custody YAML document (policy, GitOps config) with bounded depth, aliases and
/// nodes; a failure is one `schema` diagnostic with its position.
///
/// # Errors
/// YAML syntax, unknown keys, wrong types, duplicate keys, limits.
pub fn parse_document<T: serde::de::DeserializeOwned>(yaml: &str) -> Result<T, Vec<Diagnostic>> {
    let options = serde_saphyr::options! {
        budget: serde_saphyr::budget! { max_depth: 32, max_aliases: 100, max_anchors: 100, max_nodes: 100_000 },
    };
    serde_saphyr::from_str_with_options(yaml, options).map_err(|e| {
        vec![Diagnostic {
            severity: Severity::Error,
            code: "schema",
            message: {
                // The location is reported separately; drop the parser's " at line …" suffix.
                let m = e.without_snippet().to_string();
                match m.rfind(" at line ") {
                    Some(i) => m[..i].to_owned(),
                    None => m,
                }
            },
            line: e.location().map(|l| l.line()),
            column: e.location().map(|l| l.column()),
        }]
    })
}

/// Compiles the reference rules of another document (the GitOps config reuses the policy's
/// `references` block).
///
/// # Errors
/// Bad globs, with their positions.
pub fn compile_references(r: &document::References) -> Result<ReferenceRules, Vec<Diagnostic>> {
    let mut c = Compiler::default();
    let rules = c.references(r);
    if c.errors.is_empty() {
        Ok(rules)
    } else {
        Err(c.errors)
    }
}

#[derive(Default)]
struct Compiler {
    errors: Vec<Diagnostic>,
    warnings: Vec<Diagnostic>,
}

impl Compiler {
    fn compile(
        mut self,
        doc: PolicyDocument,
        yaml: &str,
        resolve: Resolver<'_>,
    ) -> Result<Policy, Vec<Diagnostic>> {
        if doc.api_version.value != API_VERSION {
            self.errors.push(Diagnostic::error(
                "api-version",
                format!(
                    "apiVersion is {:?}, expected {API_VERSION:?}",
                    doc.api_version.value
                ),
                Some(&doc.api_version),
            ));
        }
        if doc.kind.value != KIND {
            self.errors.push(Diagnostic::error(
                "kind",
                format!("kind is {:?}, expected {KIND:?}", doc.kind.value),
                Some(&doc.kind),
            ));
        }
        let spec = doc.spec;
        let trust_root = match &spec.trust_root {
            None => TrustRootChoice::Production,
            Some(t) if t.value == "production" => TrustRootChoice::Production,
            Some(t) if t.value == "staging" => TrustRootChoice::Staging,
            Some(t) => TrustRootChoice::File(t.value.clone()),
        };
        if spec.mode == Mode::Warn {
            self.warnings.push(Diagnostic::warning::<()>(
                "mode-warn",
                "mode is warn: denials are reported but callers admit".into(),
                None,
            ));
        }
        let references = spec.references.as_ref().map(|r| self.references(r));
        if spec.rules.is_empty() {
            self.errors.push(Diagnostic::error::<()>(
                "no-rules",
                "spec.rules is empty: every image would be denied".into(),
                None,
            ));
        }
        let mut names = BTreeSet::new();
        let mut rules = Vec::new();
        for rule in &spec.rules {
            if !names.insert(rule.name.value.clone()) {
                self.errors.push(Diagnostic::error(
                    "duplicate-rule",
                    format!("rule name {:?} is used twice", rule.name.value),
                    Some(&rule.name),
                ));
            }
            if let Some(r) = self.rule(rule, resolve) {
                rules.push(r);
            }
        }
        self.lint_rules(&spec.rules, &rules);
        let verification_summaries = spec
            .verification_summaries
            .as_ref()
            .and_then(|v| self.summaries(v, resolve));
        if !self.errors.is_empty() {
            return Err(self.errors);
        }
        Ok(Policy {
            name: doc.metadata.name,
            content_hash: Digest::sha256_of(yaml.as_bytes()),
            mode: spec.mode,
            trust_root,
            references,
            rules,
            warnings: self.warnings,
            verification_summaries,
        })
    }

    /// `spec.verificationSummaries`: at least one ECDSA P-256 key, a positive `maxAge` of at
    /// most [`MAX_SUMMARY_AGE`], distinct key names.
    fn summaries(
        &mut self,
        v: &document::VerificationSummaries,
        resolve: Resolver<'_>,
    ) -> Option<SummaryTrust> {
        let errors_before = self.errors.len();
        if v.keys.is_empty() {
            self.errors.push(Diagnostic::error(
                "summary-keys",
                "verificationSummaries.keys is empty: name the keys whose summaries are trusted"
                    .into(),
                Some(&v.max_age),
            ));
        }
        let mut names = BTreeSet::new();
        let mut keys = Vec::new();
        for k in &v.keys {
            if !names.insert(k.name.value.clone()) {
                self.errors.push(Diagnostic::error(
                    "summary-keys",
                    format!("summary key name {:?} is used twice", k.name.value),
                    Some(&k.name),
                ));
            }
            let pem = match (&k.public_key, &k.file) {
                (Some(p), None) => Ok(p.as_bytes().to_vec()),
                (None, Some(f)) => resolve(f),
                _ => Err(format!(
                    "summary key {:?} needs exactly one of publicKey or file",
                    k.name.value
                )),
            };
            let key = pem.and_then(|p| {
                StaticKey::from_pem(&p, &crate::Limits::default()).map_err(|e| e.to_string())
            });
            match key {
                Ok(key) if key.algorithm_name() == "ecdsa-p256" => keys.push(SummaryKey {
                    name: k.name.value.clone(),
                    key,
                }),
                Ok(key) => self.errors.push(Diagnostic::error(
                    "bad-key",
                    format!(
                        "summary key {:?} is {}; verification summaries are signed with ECDSA P-256",
                        k.name.value,
                        key.algorithm_name()
                    ),
                    Some(&k.name),
                )),
                Err(e) => self.errors.push(Diagnostic::error(
                    "bad-key",
                    format!("summary key {:?}: {e}", k.name.value),
                    Some(&k.name),
                )),
            }
        }
        let max_age = match v.max_age.value.trim().parse::<jiff::SignedDuration>() {
            Ok(d) if d.is_positive() && d <= MAX_SUMMARY_AGE => Some(d),
            Ok(d) => {
                self.errors.push(Diagnostic::error(
                    "summary-max-age",
                    format!(
                        "verificationSummaries.maxAge {:?} is {d:#}: it must be more than 0 and at most 720h",
                        v.max_age.value
                    ),
                    Some(&v.max_age),
                ));
                None
            }
            Err(e) => {
                self.errors.push(Diagnostic::error(
                    "summary-max-age",
                    format!(
                        "verificationSummaries.maxAge {:?} is not a duration such as 30m, 1h or 24h: {e}",
                        v.max_age.value
                    ),
                    Some(&v.max_age),
                ));
                None
            }
        };
        if let Some(id) = &v.verifier_id
            && id.trim().is_empty()
        {
            self.errors.push(Diagnostic::error(
                "summary-verifier-id",
                "verificationSummaries.verifierId is empty: remove it to accept any verifier"
                    .into(),
                Some(&v.max_age),
            ));
        }
        if self.errors.len() > errors_before {
            return None;
        }
        Some(SummaryTrust {
            keys,
            max_age: max_age?,
            max_age_text: v.max_age.value.trim().to_owned(),
            verifier_id: v.verifier_id.clone(),
        })
    }

    fn glob_image(&mut self, g: &Spanned<String>) -> Option<Glob> {
        Glob::image(&g.value)
            .map_err(|e| self.errors.push(Diagnostic::error("bad-glob", e, Some(g))))
            .ok()
    }

    fn references(&mut self, r: &document::References) -> ReferenceRules {
        let first_party: Vec<Glob> = r
            .first_party
            .iter()
            .filter_map(|g| self.glob_image(g))
            .collect();
        let denied_tags = match &r.denied_tags {
            None => DEFAULT_DENIED_TAGS
                .iter()
                .filter_map(|t| Glob::tag(t).ok())
                .collect(),
            Some(tags) => tags
                .iter()
                .filter_map(|t| {
                    Glob::tag(&t.value)
                        .map_err(|e| self.errors.push(Diagnostic::error("bad-glob", e, Some(t))))
                        .ok()
                })
                .collect(),
        };
        let mut third_party = Vec::new();
        for tp in &r.third_party {
            let globs: Vec<Glob> = tp
                .images
                .iter()
                .filter_map(|g| self.glob_image(g))
                .collect();
            for (g, spanned) in globs.iter().zip(&tp.images) {
                if first_party.iter().any(|f| f.source() == g.source()) {
                    self.errors.push(Diagnostic::error(
                        "contradiction",
                        format!(
                            "{} is listed as both first-party and third-party",
                            g.source()
                        ),
                        Some(spanned),
                    ));
                }
            }
            third_party.push((globs, tp.allow_semver_tag));
        }
        ReferenceRules {
            require_digest: r.require_digest,
            first_party,
            denied_tags,
            third_party,
        }
    }

    fn regex(&mut self, field: &'static str, re: &Spanned<String>) -> Option<Matcher> {
        let m = Matcher::regex(field, &re.value)
            .map_err(|e| {
                self.errors
                    .push(Diagnostic::error("bad-regex", e.to_string(), Some(re)))
            })
            .ok()?;
        if let Matcher::Regex { regex, .. } = &m
            && regex.is_match("")
            && regex.is_match("https://evil.example/anything")
        {
            self.warnings.push(Diagnostic::warning(
                "regex-matches-anything",
                format!("{field} {:?} matches any value", re.value),
                Some(re),
            ));
        }
        Some(m)
    }

    fn rule(&mut self, r: &document::Rule, resolve: Resolver<'_>) -> Option<Rule> {
        let name = r.name.value.clone();
        let errors_before = self.errors.len();
        if r.images.is_empty() {
            self.errors.push(Diagnostic::error(
                "no-images",
                format!("rule {name:?} matches no image: add images globs"),
                Some(&r.name),
            ));
        }
        let images: Vec<Glob> = r.images.iter().filter_map(|g| self.glob_image(g)).collect();
        let mut authorities = Vec::new();
        for k in &r.authorities.keyless {
            let issuer = match (&k.issuer, &k.issuer_reg_exp) {
                (Some(i), None) => Some(Matcher::Exact(i.clone())),
                (None, Some(re)) => self.regex("issuerRegExp", re),
                _ => {
                    self.errors.push(Diagnostic::error(
                        "authority-issuer",
                        format!(
                            "keyless authority {:?} needs exactly one of issuer or issuerRegExp",
                            k.name.value
                        ),
                        Some(&k.name),
                    ));
                    None
                }
            };
            let subject = match (&k.subject, &k.subject_reg_exp) {
                (Some(s), None) => Some(Matcher::Exact(s.clone())),
                (None, Some(re)) => self.regex("subjectRegExp", re),
                _ => {
                    self.errors.push(Diagnostic::error(
                        "authority-subject",
                        format!(
                            "keyless authority {:?} needs exactly one of subject or subjectRegExp",
                            k.name.value
                        ),
                        Some(&k.name),
                    ));
                    None
                }
            };
            let mut claims = Vec::new();
            for claim in k.claims.keys().chain(k.claims_reg_exp.keys()) {
                if !CLAIM_NAMES.contains(&claim.as_str()) {
                    self.errors.push(Diagnostic::error(
                        "unknown-claim",
                        format!(
                            "keyless authority {:?}: unknown claim {claim:?}; known claims: {}",
                            k.name.value,
                            CLAIM_NAMES.join(", ")
                        ),
                        Some(&k.name),
                    ));
                }
            }
            for (claim, value) in &k.claims {
                claims.push((claim.clone(), Matcher::Exact(value.clone())));
            }
            for (claim, re) in &k.claims_reg_exp {
                match Matcher::regex("claimsRegExp", re) {
                    Ok(m) => claims.push((claim.clone(), m)),
                    Err(e) => self.errors.push(Diagnostic::error(
                        "bad-regex",
                        format!("claim {claim}: {e}"),
                        Some(&k.name),
                    )),
                }
            }
            if let (Some(issuer), Some(subject)) = (issuer, subject) {
                authorities.push(Authority::Keyless(KeylessAuthority {
                    name: k.name.value.clone(),
                    issuer,
                    subject,
                    claims,
                }));
            }
        }
        for k in &r.authorities.keys {
            let pem = match (&k.public_key, &k.file) {
                (Some(p), None) => Ok(p.as_bytes().to_vec()),
                (None, Some(f)) => resolve(f),
                _ => Err(format!(
                    "key authority {:?} needs exactly one of publicKey or file",
                    k.name.value
                )),
            };
            match pem.and_then(|p| {
                StaticKey::from_pem(&p, &crate::Limits::default()).map_err(|e| e.to_string())
            }) {
                Ok(key) => authorities.push(Authority::Key {
                    name: k.name.value.clone(),
                    key,
                }),
                Err(e) => self.errors.push(Diagnostic::error(
                    "bad-key",
                    format!("key authority {:?}: {e}", k.name.value),
                    Some(&k.name),
                )),
            }
        }
        let declared = r.authorities.keyless.len() + r.authorities.keys.len();
        if declared == 0 {
            self.errors.push(Diagnostic::error(
                "no-authorities",
                format!("rule {name:?} has no authorities: say who may sign (keyless or keys)"),
                Some(&r.name),
            ));
        }
        let threshold = usize::try_from(r.authorities.threshold.unwrap_or(1)).unwrap_or(usize::MAX);
        if threshold == 0 {
            self.errors.push(Diagnostic::error(
                "threshold",
                format!("rule {name:?}: threshold 0 would accept unsigned images"),
                Some(&r.name),
            ));
        } else if declared > 0 && threshold > declared {
            self.errors.push(Diagnostic::error(
                "threshold",
                format!(
                    "rule {name:?}: threshold {threshold} is more than its {declared} authorities"
                ),
                Some(&r.name),
            ));
        }
        let mut attestations = Vec::new();
        for a in &r.attestations {
            let predicate = match PredicateRequirement::parse(&a.predicate_type.value) {
                Ok(p) => Some(p),
                Err(e) => {
                    self.errors.push(Diagnostic::error(
                        "predicate-type",
                        e,
                        Some(&a.predicate_type),
                    ));
                    None
                }
            };
            let mut conditions = Vec::new();
            for c in &a.conditions {
                match Condition::compile(&c.value) {
                    Ok(cond) => conditions.push(cond),
                    Err(e) => {
                        // Map the position inside the expression onto the file (block scalars
                        // start at the span; quoted ones one column later).
                        let mut d = Diagnostic::error(
                            e.code,
                            format!("attestation {:?} condition: {}", a.name.value, e.message),
                            Some(c),
                        );
                        if let (Some((l, col)), Some(line)) = (e.position, d.line) {
                            d.line = Some(line + u64::try_from(l).unwrap_or(1).saturating_sub(1));
                            if l > 1 {
                                d.column = Some(u64::try_from(col).unwrap_or(1));
                            } else {
                                d.column = d.column.map(|c0| c0 + u64::try_from(col).unwrap_or(1));
                            }
                        }
                        self.errors.push(d);
                    }
                }
            }
            if let Some(predicate) = predicate {
                let slsa = predicate
                    .uris
                    .iter()
                    .any(|u| u.starts_with("https://slsa.dev/provenance/"));
                attestations.push(AttestationRule {
                    name: a.name.value.clone(),
                    predicate,
                    conditions,
                    match_certificate: a.match_certificate.unwrap_or(slsa),
                });
            }
        }
        let mut envs = BTreeSet::new();
        for e in &r.environments {
            if !envs.insert(e) {
                self.errors.push(Diagnostic::error(
                    "contradiction",
                    format!("rule {name:?} lists environment {e:?} twice"),
                    Some(&r.name),
                ));
            }
        }
        if self.errors.len() > errors_before {
            return None;
        }
        Some(Rule {
            name,
            images,
            environments: r.environments.clone(),
            threshold,
            authorities,
            attestations,
            sbom: r.sbom,
            promoted_from: r.promoted_from.clone(),
        })
    }

    /// Rules that can never match (an earlier rule covers all their images and environments).
    fn lint_rules(&mut self, docs: &[document::Rule], rules: &[Rule]) {
        for (i, later) in rules.iter().enumerate() {
            let earlier = rules.iter().take(i).find(|e| {
                let envs_covered = e.environments.is_empty()
                    || (!later.environments.is_empty()
                        && later
                            .environments
                            .iter()
                            .all(|x| e.environments.contains(x)));
                envs_covered
                    && later
                        .images
                        .iter()
                        .all(|g| e.images.iter().any(|eg| g.covered_by(eg)))
            });
            if let Some(e) = earlier {
                let at = docs
                    .iter()
                    .find(|d| d.name.value == later.name)
                    .map(|d| &d.name);
                self.warnings.push(Diagnostic::warning(
                    "unreachable-rule",
                    format!("rule {:?} can never match: rule {:?} comes first and matches all its images and environments", later.name, e.name),
                    at,
                ));
            }
        }
    }
}

#[cfg(test)]
mod summary_tests {
    use super::*;

    const P256: &str = "-----BEGIN PUBLIC KEY-----\nMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEOdFrpJcYxxw+y0WfWSYuml4hAe1Q\nxch81kiXE/m+exiRmoNjb2L4N5dsLf4OIL487d6Yi0spSIx8X6Rb7Wgcqg==\n-----END PUBLIC KEY-----\n";

    fn policy(block: &str) -> Result<Policy, Vec<Diagnostic>> {
        let yaml = format!(
            "apiVersion: custody.dev/v1\nkind: TrustPolicy\nmetadata: {{name: p}}\nspec:\n  rules:\n    - name: r\n      images: [\"*/**\"]\n      authorities:\n        keys: [{{name: k, file: k.pub}}]\n{block}"
        );
        load_policy(&yaml, &|_| Ok(P256.as_bytes().to_vec()))
    }

    fn codes(block: &str) -> Vec<&'static str> {
        policy(block).unwrap_err().iter().map(|d| d.code).collect()
    }

    #[test]
    fn the_block_compiles_keys_max_age_and_verifier() {
        let p = policy("  verificationSummaries:\n    keys: [{name: attestor, file: a.pub}]\n    maxAge: 1h30m\n    verifierId: https://ci.example/custody\n").unwrap();
        let s = p.verification_summaries.unwrap();
        assert_eq!(s.keys[0].name, "attestor");
        assert_eq!(s.max_age, jiff::SignedDuration::from_mins(90));
        assert_eq!(s.max_age_text, "1h30m");
        assert_eq!(s.verifier_id.as_deref(), Some("https://ci.example/custody"));
        assert!(policy("").unwrap().verification_summaries.is_none());
    }

    #[test]
    fn bad_blocks_are_load_errors() {
        assert_eq!(
            codes("  verificationSummaries:\n    keys: []\n    maxAge: 1h\n"),
            vec!["summary-keys"]
        );
        assert_eq!(
            codes(
                "  verificationSummaries:\n    keys: [{name: a, file: a.pub}]\n    maxAge: soon\n"
            ),
            vec!["summary-max-age"]
        );
        assert_eq!(
            codes("  verificationSummaries:\n    keys: [{name: a, file: a.pub}]\n    maxAge: 0s\n"),
            vec!["summary-max-age"]
        );
        // 720h is the ceiling.
        assert!(
            policy(
                "  verificationSummaries:\n    keys: [{name: a, file: a.pub}]\n    maxAge: 720h\n"
            )
            .is_ok()
        );
        assert_eq!(
            codes(
                "  verificationSummaries:\n    keys: [{name: a, file: a.pub}]\n    maxAge: 721h\n"
            ),
            vec!["summary-max-age"]
        );
        assert_eq!(
            codes(
                "  verificationSummaries:\n    keys: [{name: a, file: a.pub}, {name: a, file: b.pub}]\n    maxAge: 1h\n"
            ),
            vec!["summary-keys"]
        );
        assert_eq!(
            codes("  verificationSummaries:\n    keys: [{name: a}]\n    maxAge: 1h\n"),
            vec!["bad-key"]
        );
        assert_eq!(
            codes(
                "  verificationSummaries:\n    keys: [{name: a, file: a.pub}]\n    maxAge: 1h\n    verifierId: ' '\n"
            ),
            vec!["summary-verifier-id"]
        );
        assert_eq!(
            codes("  verificationSummaries:\n    keys: [{name: a, file: a.pub}]\n"),
            vec!["schema"]
        );
    }
}
