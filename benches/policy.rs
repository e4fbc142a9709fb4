//! Policy evaluation over verified facts: the example GitOps policy grown to 50 rules (47
//! unrelated rules first, so matching walks most of the list), judging demo/app in production
//! (reference rules, first-match over 50 rules, a keyless authority with claims, a SLSA
//! attestation with two CEL conditions and the provenance ↔ certificate check, SBOM presence).
//! The policy is compiled once (CEL included); facts are verified once, outside the loop.
//!
//! Run: `cargo bench --bench policy`.

// Benches may print and read the clock.
#![allow(clippy::disallowed_methods)]

use std::hint::black_box;
use std::path::Path;

use criterion::{Criterion, criterion_group, criterion_main};
use custody::Limits;
use custody::engine::{check_items, policy_keys, saved};
use custody::policy::{Candidate, TrustRootChoice, evaluate, load_policy};
use custody::reference::ImageRef;
use custody::trust::TrustRoot;

fn bench_policy(c: &mut Criterion) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/policies");
    let resolve = |rel: &str| std::fs::read(dir.join(rel)).map_err(|e| e.to_string());
    let mut text = std::fs::read_to_string(dir.join("gitops.yaml")).unwrap();
    let mut extra = String::new();
    for i in 0..47 {
        extra.push_str(&format!(
            "    - name: team-{i}\n      images: [\"ghcr.io/team-{i}/**\"]\n      authorities:\n        keyless:\n          - name: ci\n            issuer: https://token.actions.githubusercontent.com\n            subjectRegExp: 'https://github\\.com/team-{i}/.+'\n"
        ));
    }
    text = text.replacen("  rules:\n", &format!("  rules:\n{extra}"), 1);
    let policy = load_policy(&text, &resolve).unwrap();
    assert_eq!(policy.rules.len(), 50);
    let TrustRootChoice::File(f) = &policy.trust_root else {
        panic!()
    };
    let trust = TrustRoot::from_json("fixtures", &resolve(f).unwrap(), &Limits::default()).unwrap();
    let (image, items) = saved::load(&dir.join("tests/evidence/app")).unwrap();
    let digest = image.digest().unwrap().clone();
    let checked = check_items(
        &items,
        &image,
        &digest,
        &trust,
        &policy_keys(&policy),
        jiff::Timestamp::now(),
        &Limits::default(),
    );
    let candidates: Vec<Candidate<'_>> = checked
        .iter()
        .map(|c| Candidate {
            role: c.role,
            facts: c.result.as_ref().and_then(|r| r.as_ref().ok()),
            label: c.evidence.digest.to_string(),
        })
        .collect();
    let reference: ImageRef = format!("registry.custody.test/demo/app:v1.0.0@{digest}")
        .parse()
        .unwrap();
    let j = evaluate(&policy, &reference, Some("production"), &candidates);
    assert!(j.reasons.is_empty(), "{:?}", j.reasons);
    c.bench_function(
        "policy: evaluate 50-rule policy (production rule, SLSA + 2 CEL conditions)",
        |b| {
            b.iter(|| {
                evaluate(
                    black_box(&policy),
                    &reference,
                    Some("production"),
                    &candidates,
                )
            })
        },
    );
    c.bench_function(
        "policy: evaluate 50-rule policy (dev rule: authorities only)",
        |b| b.iter(|| evaluate(black_box(&policy), &reference, Some("dev"), &candidates)),
    );
}

criterion_group!(benches, bench_policy);
criterion_main!(benches);
