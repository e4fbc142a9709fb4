//! `custody policy lint|test|explain|schema` and the policy half of `custody verify --policy`.

use std::path::{Path, PathBuf};

use super::registry_args::RegistryArgs;
use super::{EXIT_ERROR, EXIT_OK, EXIT_REJECTED, Output, err, now, out, read_bounded};
use crate::engine::{Collected, check_items, collect, judge_policy, policy_keys};
use crate::limits::Limits;
use crate::policy::{Policy, Severity, TrustRootChoice, load_policy};
use crate::reference::ImageRef;
use crate::registry::RegistryClient;
use crate::registry::discovery::DiscoveryOptions;
use crate::trust::TrustRoot;
use crate::verdict::{Verdict, VerdictDecision};

#[derive(Debug, clap::Subcommand)]
pub(super) enum PolicyCommand {
    /// Check a policy file: schema errors with line and column, unreachable rules, regexps that
    /// match anything, rules without authorities, CEL that does not compile.
    Lint {
        /// The policy file.
        file: PathBuf,
        /// Output format.
        #[arg(long, value_enum, default_value_t)]
        output: Output,
    },
    /// Run table-driven expectations (like `conftest verify` / `kyverno test`) offline, over
    /// evidence saved with `custody evidence --save`.
    Test {
        /// The policy file.
        file: PathBuf,
        /// Directory of case files (`*.yaml`).
        #[arg(long)]
        cases: PathBuf,
    },
    /// Show which rule matches an image and why, then the evaluation step by step.
    Explain {
        /// The image.
        image: String,
        /// The policy file.
        #[arg(long)]
        policy: PathBuf,
        /// The environment (e.g. production).
        #[arg(long)]
        env: Option<String>,
        /// Resolve a tag to its digest first.
        #[arg(long)]
        resolve: bool,
        #[command(flatten)]
        registry: Box<RegistryArgs>,
    },
    /// Print the policy file's JSON Schema.
    Schema,
}

/// Loads a policy file and its trust root; diagnostics are rendered with the path.
pub(super) fn load(path: &Path) -> Result<(Policy, TrustRoot), String> {
    let bytes = read_bounded(
        path,
        u64::try_from(crate::policy::MAX_POLICY_BYTES).unwrap_or(u64::MAX),
        "policy",
        "1 MiB",
    )?;
    let text = String::from_utf8(bytes).map_err(|_| format!("{}: not UTF-8", path.display()))?;
    let dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
    let resolve = |rel: &str| -> Result<Vec<u8>, String> {
        read_bounded(&dir.join(rel), 1 << 20, "file", "1 MiB")
    };
    let label = path.display().to_string();
    let policy = load_policy(&text, &resolve).map_err(|diags| {
        diags
            .iter()
            .map(|d| d.render(&label))
            .collect::<Vec<_>>()
            .join("\n")
    })?;
    let limits = Limits::default();
    let trust = match &policy.trust_root {
        TrustRootChoice::Production => TrustRoot::production().map_err(|e| e.to_string())?,
        TrustRootChoice::Staging => TrustRoot::staging().map_err(|e| e.to_string())?,
        TrustRootChoice::File(f) => {
            let p = dir.join(f);
            let bytes = read_bounded(
                &p,
                limits.max_trust_root_bytes,
                "trusted root",
                "max_trust_root_bytes",
            )?;
            TrustRoot::from_json(&p.display().to_string(), &bytes, &limits)
                .map_err(|e| e.to_string())?
        }
    };
    Ok((policy, trust))
}

/// Prints a verdict and maps it to an exit status.
pub(super) fn finish(verdict: &Verdict, output: Output) -> u8 {
    match output {
        Output::Json => out(&verdict.to_json()),
        Output::Sarif => out(&verdict.to_sarif()),
        Output::Text => {
            if verdict.decision == VerdictDecision::Allow {
                out(&verdict.to_text());
            }
        }
    }
    match verdict.decision {
        VerdictDecision::Allow => EXIT_OK,
        VerdictDecision::Deny if verdict.admit => {
            err(&format!(
                "warning (policy mode warn):\n{}",
                verdict.to_text()
            ));
            EXIT_OK
        }
        VerdictDecision::Deny => {
            err(&verdict.to_text());
            EXIT_REJECTED
        }
        VerdictDecision::Error => {
            err(&verdict.to_text());
            EXIT_ERROR
        }
    }
}

/// Collects evidence from the registry and judges it with the policy — after the summary fast
/// path when the policy has `spec.verificationSummaries` (the engine's
/// [`crate::engine::summary_or_full`], as the service uses it). With `platforms` the fast path is
/// not taken: a summary speaks for the digest it names, not for the platform manifests of an
/// index.
#[allow(clippy::too_many_arguments)]
pub(super) fn verify_with_policy(
    reference: &ImageRef,
    resolve: bool,
    platforms: bool,
    policy: &Policy,
    trust: &TrustRoot,
    env: Option<&str>,
    registry: &RegistryArgs,
    trace: bool,
) -> Result<Verdict, String> {
    let client = RegistryClient::new(registry.config()?).map_err(|e| e.to_string())?;
    let discovery = DiscoveryOptions {
        signature_repository: registry.signature_repository()?,
        ..DiscoveryOptions::default()
    };
    let deadline = registry.deadline()?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    let now = now();
    let keys = policy_keys(policy);
    let full = |left: std::time::Duration| {
        full_verification(
            &client, reference, resolve, platforms, policy, trust, env, &keys, &discovery, left,
            now,
        )
    };
    let mut verdict = if platforms {
        let mut v = rt.block_on(full(deadline));
        if policy.verification_summaries.is_some() {
            v.trace.insert(
                0,
                "verification summary: not looked for with --platforms (a summary speaks for the digest it names, not for the platform manifests)".into(),
            );
        }
        v
    } else {
        rt.block_on(crate::engine::summary_or_full(
            &client, policy, trust, reference, env, deadline, now, full,
        ))
    };
    verdict.http_requests = client.request_count();
    if !trace {
        verdict.trace.clear();
    }
    Ok(verdict)
}

/// Full verification: collect (resolving a tag with `resolve`, every platform with `platforms`)
/// and judge. Registry failures are an error verdict.
#[allow(clippy::too_many_arguments)]
async fn full_verification(
    client: &RegistryClient,
    reference: &ImageRef,
    resolve: bool,
    platforms: bool,
    policy: &Policy,
    trust: &TrustRoot,
    env: Option<&str>,
    keys: &[crate::trust::StaticKey],
    discovery: &DiscoveryOptions,
    deadline: std::time::Duration,
    now: jiff::Timestamp,
) -> Verdict {
    let limits = Limits::default();
    let collected = collect(
        client, trust, reference, resolve, keys, platforms, discovery, deadline, now, &limits,
    )
    .await;
    match collected {
        Ok(c) => judge_policy(&c, policy, env, trust, now.to_string()),
        Err(e) => {
            let mut v = Verdict::error(
                reference,
                e.image.and_then(|i| i.digest().cloned()),
                env,
                crate::verdict::PolicyRef {
                    name: policy.name.clone(),
                    content_hash: policy.content_hash.clone(),
                },
                policy.mode,
                crate::verify::TrustRootRef {
                    name: trust.name().to_owned(),
                    content_hash: trust.content_hash().clone(),
                },
                now.to_string(),
                e.reason,
            );
            v.resolved_from_tag = e.resolved_from_tag;
            v
        }
    }
}

pub(super) fn run(cmd: PolicyCommand) -> u8 {
    match cmd {
        PolicyCommand::Schema => {
            out(&policy_schema());
            EXIT_OK
        }
        PolicyCommand::Lint { file, output } => lint(&file, output),
        PolicyCommand::Test { file, cases } => test(&file, &cases),
        PolicyCommand::Explain {
            image,
            policy,
            env,
            resolve,
            registry,
        } => {
            let result = (|| {
                let reference: ImageRef = image.parse().map_err(|e| format!("{image}: {e}"))?;
                let (policy, trust) = load(&policy)?;
                verify_with_policy(
                    &reference,
                    resolve,
                    false,
                    &policy,
                    &trust,
                    env.as_deref(),
                    &registry,
                    true,
                )
            })();
            match result {
                Err(e) => {
                    err(&format!("error: {e}"));
                    EXIT_ERROR
                }
                Ok(v) => {
                    let mut s = String::from("evaluation:\n");
                    for (i, step) in v.trace.iter().enumerate() {
                        s.push_str(&format!("  {}. {step}\n", i + 1));
                    }
                    s.push('\n');
                    s.push_str(&v.to_text());
                    out(&s);
                    match v.decision {
                        VerdictDecision::Allow => EXIT_OK,
                        VerdictDecision::Deny => EXIT_REJECTED,
                        VerdictDecision::Error => EXIT_ERROR,
                    }
                }
            }
        }
    }
}

/// The JSON Schema of the policy file (docs/policy.schema.json is this, committed).
pub fn policy_schema() -> String {
    let schema = schemars::schema_for!(crate::policy::document::PolicyDocument);
    serde_json::to_string_pretty(&schema).unwrap_or_default()
}

fn lint(file: &Path, output: Output) -> u8 {
    let label = file.display().to_string();
    let (diags, ok) = match load(file) {
        Ok((p, _)) => (p.warnings.clone(), true),
        Err(e) if e.contains(": error[") => {
            // Re-run the loader for structured diagnostics.
            let text = crate::engine::files::read_text_bounded(file, 1 << 20, "policy", "1 MiB")
                .unwrap_or_default();
            let dir = file.parent().map(Path::to_path_buf).unwrap_or_default();
            let resolve = |rel: &str| -> Result<Vec<u8>, String> {
                read_bounded(&dir.join(rel), 1 << 20, "file", "1 MiB")
            };
            (
                load_policy(&text, &resolve).err().unwrap_or_default(),
                false,
            )
        }
        Err(e) => {
            err(&format!("error: {e}"));
            return EXIT_ERROR;
        }
    };
    match output {
        Output::Json | Output::Sarif => out(&serde_json::to_string_pretty(
            &serde_json::json!({"file": label, "ok": ok, "diagnostics": diags}),
        )
        .unwrap_or_default()),
        Output::Text => {
            for d in &diags {
                err(&d.render(&label));
            }
            let errors = diags
                .iter()
                .filter(|d| d.severity == Severity::Error)
                .count();
            err(&format!(
                "{label}: {errors} error(s), {} warning(s)",
                diags.len() - errors
            ));
        }
    }
    if ok { EXIT_OK } else { EXIT_REJECTED }
}

#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Case {
    name: String,
    image: String,
    #[serde(default)]
    environment: Option<String>,
    /// A directory written by `custody evidence --save` (relative to the case file).
    evidence: String,
    /// Verification time (RFC 3339); default now.
    #[serde(default)]
    at: Option<String>,
    expect: String,
    /// Check codes that must appear among the reasons (deny).
    #[serde(default)]
    reasons: Vec<String>,
}

fn test(file: &Path, cases_dir: &Path) -> u8 {
    let (policy, trust) = match load(file) {
        Ok(p) => p,
        Err(e) => {
            err(&format!("error: {e}"));
            return EXIT_ERROR;
        }
    };
    let mut entries: Vec<PathBuf> = match std::fs::read_dir(cases_dir) {
        Ok(rd) => rd
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "yaml" || x == "yml"))
            .collect(),
        Err(e) => {
            err(&format!("error: cannot read {}: {e}", cases_dir.display()));
            return EXIT_ERROR;
        }
    };
    entries.sort();
    let (mut passed, mut failed) = (0, 0);
    let limits = Limits::default();
    let keys = policy_keys(&policy);
    for path in entries {
        let result = (|| -> Result<(String, Result<(), String>), String> {
            let text =
                crate::engine::files::read_text_bounded(&path, 1 << 20, "test case", "1 MiB")?;
            let case: Case = serde_saphyr::from_str(&text)
                .map_err(|e| format!("{}: {}", path.display(), e.without_snippet()))?;
            let reference: ImageRef = case
                .image
                .parse()
                .map_err(|e| format!("{}: image: {e}", path.display()))?;
            let (saved_image, items) = crate::engine::saved::load(
                &path.parent().unwrap_or(Path::new(".")).join(&case.evidence),
            )?;
            let digest = reference
                .digest()
                .cloned()
                .or_else(|| saved_image.digest().cloned())
                .ok_or("no digest")?;
            let at: jiff::Timestamp = match &case.at {
                Some(t) => t.parse().map_err(|e| format!("at: {e}"))?,
                None => now(),
            };
            let image = reference.with_digest(digest.clone());
            let collected = Collected {
                reference: reference.clone(),
                image: image.clone(),
                resolved_from_tag: None,
                is_index: false,
                items: check_items(&items, &image, &digest, &trust, &keys, at, &limits),
                platforms: Vec::new(),
                notes: Vec::new(),
                looked_at: Vec::new(),
            };
            let v = judge_policy(
                &collected,
                &policy,
                case.environment.as_deref(),
                &trust,
                at.to_string(),
            );
            let got = match v.decision {
                VerdictDecision::Allow => "allow",
                VerdictDecision::Deny => "deny",
                VerdictDecision::Error => "error",
            };
            let mut problems = Vec::new();
            if got != case.expect {
                problems.push(format!(
                    "expected {}, got {got}: {}",
                    case.expect,
                    v.reasons
                        .iter()
                        .map(ToString::to_string)
                        .collect::<Vec<_>>()
                        .join(" | ")
                ));
            }
            for code in &case.reasons {
                if !v.reasons.iter().any(|r| r.check == code.as_str()) {
                    problems.push(format!(
                        "expected a {code} reason; reasons: {}",
                        v.reasons
                            .iter()
                            .map(|r| r.check)
                            .collect::<Vec<_>>()
                            .join(", ")
                    ));
                }
            }
            Ok((
                case.name,
                if problems.is_empty() {
                    Ok(())
                } else {
                    Err(problems.join("; "))
                },
            ))
        })();
        match result {
            Ok((name, Ok(()))) => {
                passed += 1;
                out(&format!("PASS {name}"));
            }
            Ok((name, Err(why))) => {
                failed += 1;
                out(&format!("FAIL {name}: {why}"));
            }
            Err(e) => {
                failed += 1;
                out(&format!("FAIL {}: {e}", path.display()));
            }
        }
    }
    out(&format!("policy test: {passed} passed, {failed} failed"));
    if failed == 0 && passed > 0 {
        EXIT_OK
    } else {
        EXIT_REJECTED
    }
}
