//! `custody gitops check` scenarios, one real Git repository each, against a real registry
//! holding images signed by sigstore-js (the trust-policy step is real).

use crate::common::registry::tools_available;
use crate::support::{
    CONFIG, Delivery, OLD, OLDER, changes, digest, finding_rules, registry, rules,
};

/// dev runs demo/app@A, staging and prod older digests; committed on main.
fn delivery(host: &str) -> Delivery {
    let d = Delivery::new(host, CONFIG);
    let a = digest("demo/app");
    d.write("env/dev/values.yaml", &d.values(&a));
    d.write("env/staging/values.yaml", &d.values(OLD));
    d.write("env/prod/values.yaml", &d.values(OLDER));
    d.commit("dev runs A");
    d
}

#[test]
fn a_clean_promotion_passes_with_the_evidence_for_reviewers() {
    if !tools_available() {
        return;
    }
    let reg = registry();
    let d = delivery(&reg.host());
    let a = digest("demo/app");
    d.branch("promote");
    d.write("env/staging/values.yaml", &d.values(&a));
    d.commit("promote app to staging");
    let (code, report, all) = d.check(&[]);
    assert_eq!(code, 0, "{all}");
    assert_eq!(report["passed"], true);
    let c = changes(&report, "staging");
    assert_eq!(c.len(), 1, "{report:#}");
    assert_eq!(c[0]["kind"], "promotion");
    assert_eq!(c[0]["sourceEnvironment"], "dev");
    assert_eq!(c[0]["digest"], a.as_str());
    assert_eq!(c[0]["line"], 5);
    let v = &c[0]["verification"];
    assert_eq!(v["decision"], "allow", "{v:#}");
    assert_eq!(v["environment"], "staging");
    assert_eq!(
        v["signer"],
        "https://github.com/custody-fixtures/demo/.github/workflows/release.yml@refs/heads/main"
    );
    assert!(report["registryRequests"].as_u64().unwrap() > 0);
    // The Markdown summary names the signer and the digest for reviewers.
    let (_, md, _) = d.custody(&["gitops", "check", "--base", "main", "--output", "markdown"]);
    assert!(md.contains("release.yml"), "{md}");
    assert!(md.contains(&a[..19]), "{md}");
}

#[test]
fn a_digest_staging_never_had_cannot_go_to_production() {
    if !tools_available() {
        return;
    }
    let reg = registry();
    let d = delivery(&reg.host());
    let a = digest("demo/app");
    d.branch("skip-staging");
    d.write("env/prod/values.yaml", &d.values(&a));
    d.commit("dev straight to prod");
    let (code, report, all) = d.check(&[]);
    assert_eq!(code, 1, "{all}");
    let c = changes(&report, "prod");
    assert_eq!(c[0]["kind"], "violation");
    assert!(
        rules(c[0]).contains(&"not-from-source".to_owned()),
        "{report:#}"
    );
    let msg = c[0]["problems"][0]["message"].as_str().unwrap();
    assert!(msg.contains(OLD), "names what staging has: {msg}");
    // The production rule's promotedFrom is enforced here too (a dev digest is not from staging).
    assert_eq!(c[0]["verification"]["promotedFrom"], "staging");
}

#[test]
fn a_rebuilt_digest_into_production_is_refused_even_when_signed() {
    if !tools_available() {
        return;
    }
    let reg = registry();
    let d = delivery(&reg.host());
    let a = digest("demo/app");
    d.write("env/staging/values.yaml", &d.values(&a));
    d.commit("staging runs A");
    d.branch("rebuild");
    // demo/wrong's image, pushed into demo/app: a rebuild from the release tag.
    let rebuilt = digest("demo/wrong");
    d.write("env/prod/values.yaml", &d.values(&rebuilt));
    d.commit("prod runs a rebuild");
    let (code, report, all) = d.check(&[]);
    assert_eq!(code, 1, "{all}");
    let c = changes(&report, "prod");
    let r = rules(c[0]);
    assert!(r.contains(&"not-from-source".to_owned()), "{r:?}");
    assert!(r.contains(&"trust-policy".to_owned()), "{r:?}");
    assert_eq!(c[0]["verification"]["decision"], "deny");
    let msg = c[0]["problems"][0]["message"].as_str().unwrap();
    assert!(msg.contains(&a), "names the digest staging runs: {msg}");
}

#[test]
fn a_floating_tag_fails_with_file_line_and_fix() {
    if !tools_available() {
        return;
    }
    let reg = registry();
    let d = delivery(&reg.host());
    d.branch("latest");
    let floating = format!("{}/demo/app:latest", d.host);
    d.write(
        "env/dev/values.yaml",
        &format!("app:\n  image:\n    ref: {floating}\n"),
    );
    d.commit("use latest");
    let (code, report, all) = d.check(&[]);
    assert_eq!(code, 1, "{all}");
    let f = &report["findings"][0];
    assert_eq!(f["file"], "env/dev/values.yaml");
    assert_eq!(f["line"], 3);
    assert_eq!(f["column"], 10);
    let fr = finding_rules(&report);
    assert!(fr.contains(&"reference-digest".to_owned()), "{fr:?}");
    assert!(fr.contains(&"reference-floating-tag".to_owned()), "{fr:?}");
    assert!(f["fix"].as_str().unwrap().len() > 10);
    let c = changes(&report, "dev");
    assert!(rules(c[0]).contains(&"reference-digest".to_owned()));
    // Next to a digest, the floating tag still fails.
    let a = digest("demo/app");
    d.write(
        "env/dev/values.yaml",
        &format!("app:\n  image:\n    ref: {}/demo/app:main@{a}\n", d.host),
    );
    d.commit("main tag with digest");
    let (code, report, _) = d.check(&[]);
    assert_eq!(code, 1);
    assert_eq!(finding_rules(&report), ["reference-floating-tag"]);
}

#[test]
fn split_repository_tag_digest_fields_fail() {
    if !tools_available() {
        return;
    }
    let reg = registry();
    let d = delivery(&reg.host());
    let a = digest("demo/app");
    d.branch("split");
    d.write(
        "env/dev/values.yaml",
        &format!(
            "app:\n  image:\n    repository: {}/demo/app\n    tag: v1\n    digest: {a}\n",
            d.host
        ),
    );
    d.commit("split fields");
    let (code, report, all) = d.check(&[]);
    assert_eq!(code, 1, "{all}");
    assert_eq!(finding_rules(&report), ["split-reference"]);
    assert_eq!(report["findings"][0]["line"], 3);
    // The assembled reference is still classified and verified (dev ran A at the base, under
    // another key, so it reads as A coming back).
    let c = changes(&report, "dev");
    assert_eq!(c[0]["reference"], format!("{}/demo/app:v1@{a}", d.host));
    assert_eq!(c[0]["kind"], "rollback");
    assert_eq!(c[0]["verification"]["decision"], "allow");
}

#[test]
fn image_pull_policy_always_fails() {
    if !tools_available() {
        return;
    }
    let reg = registry();
    let d = delivery(&reg.host());
    let a = digest("demo/app");
    d.branch("always");
    d.write(
        "env/dev/deployment.yaml",
        &format!(
            "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: app\nspec:\n  template:\n    spec:\n      containers:\n        - name: app\n          image: {}\n          imagePullPolicy: Always\n",
            d.image("app", &a)
        ),
    );
    d.commit("always pull");
    let (code, report, all) = d.check(&[]);
    assert_eq!(code, 1, "{all}");
    assert_eq!(finding_rules(&report), ["pull-policy"]);
    assert_eq!(report["findings"][0]["line"], 11);
    // IfNotPresent passes.
    d.write(
        "env/dev/deployment.yaml",
        &d.read("env/dev/deployment.yaml")
            .replace("Always", "IfNotPresent"),
    );
    d.commit("if not present");
    let (code, report, all) = d.check(&[]);
    assert_eq!(code, 0, "{all}");
    assert!(finding_rules(&report).is_empty());
}

fn frozen(d: &Delivery) {
    d.write(
        "env/prod/freeze.yaml",
        "frozen: true\nreason: end-of-year change freeze\n",
    );
}

#[test]
fn a_freeze_blocks_a_promotion() {
    if !tools_available() {
        return;
    }
    let reg = registry();
    let d = delivery(&reg.host());
    let a = digest("demo/app");
    d.write("env/staging/values.yaml", &d.values(&a));
    frozen(&d);
    d.commit("staging runs A; prod frozen");
    d.branch("promote-during-freeze");
    d.write("env/prod/values.yaml", &d.values(&a));
    d.commit("promote to prod");
    let (code, report, all) = d.check(&[]);
    assert_eq!(code, 1, "{all}");
    let c = changes(&report, "prod");
    assert_eq!(rules(c[0]), ["frozen"]);
    assert!(
        c[0]["problems"][0]["message"]
            .as_str()
            .unwrap()
            .contains("end-of-year change freeze")
    );
}

#[test]
fn a_freeze_set_only_in_the_pull_request_still_blocks_it() {
    if !tools_available() {
        return;
    }
    let reg = registry();
    let d = delivery(&reg.host());
    let a = digest("demo/app");
    d.write("env/staging/values.yaml", &d.values(&a));
    d.write("env/prod/freeze.yaml", "frozen: true\nreason: audit\n");
    d.commit("frozen");
    d.branch("unfreeze-and-promote");
    d.write("env/prod/freeze.yaml", "frozen: false\n");
    d.write("env/prod/values.yaml", &d.values(&a));
    d.commit("lift the freeze and promote at once");
    let (code, report, _) = d.check(&[]);
    assert_eq!(code, 1);
    assert_eq!(rules(changes(&report, "prod")[0]), ["frozen"]);
}

#[test]
fn a_rollback_during_a_freeze_passes_and_is_labelled() {
    if !tools_available() {
        return;
    }
    let reg = registry();
    let d = delivery(&reg.host());
    let a = digest("demo/app");
    // prod ran A, then moved on to OLD; now frozen.
    d.write("env/staging/values.yaml", &d.values(&a));
    d.commit("staging runs A");
    d.write("env/prod/values.yaml", &d.values(&a));
    let ran_a = d.commit("prod runs A");
    d.write("env/staging/values.yaml", &d.values(OLD));
    d.write("env/prod/values.yaml", &d.values(OLD));
    frozen(&d);
    d.commit("prod moves on; freeze");
    d.branch("revert");
    d.write("env/prod/values.yaml", &d.values(&a));
    d.commit("roll prod back to A");
    let (code, report, all) = d.check(&[]);
    assert_eq!(code, 0, "{all}");
    let c = changes(&report, "prod");
    assert_eq!(c[0]["kind"], "rollback");
    assert_eq!(c[0]["rollbackTo"], ran_a.as_str());
    assert!(c[0]["label"].as_str().unwrap().contains("during freeze"));
    assert_eq!(c[0]["verification"]["decision"], "allow");
    // The GitHub annotations label it too.
    let (_, gh, _) = d.custody(&["gitops", "check", "--base", "main", "--output", "github"]);
    assert!(gh.contains("::notice"), "{gh}");
    assert!(gh.contains("during freeze"), "{gh}");
    assert!(!gh.contains("::error"), "{gh}");
}

#[test]
fn a_flux_image_policy_targeting_production_fails() {
    if !tools_available() {
        return;
    }
    let reg = registry();
    let d = delivery(&reg.host());
    d.branch("automation");
    d.write(
        "env/prod/image-automation.yaml",
        "apiVersion: image.toolkit.fluxcd.io/v1beta2\nkind: ImagePolicy\nmetadata:\n  name: app\nspec:\n  imageRepositoryRef:\n    name: app\n  filterTags:\n    pattern: '^develop-v.*-(?P<ts>[0-9]+)$'\n    extract: '$ts'\n  policy:\n    numerical:\n      order: asc\n",
    );
    d.commit("auto-update prod");
    let (code, report, all) = d.check(&[]);
    assert_eq!(code, 1, "{all}");
    assert_eq!(finding_rules(&report), ["auto-update-environment"]);
    assert_eq!(report["findings"][0]["line"], 2);
    let msg = report["findings"][0]["message"].as_str().unwrap();
    assert!(msg.contains("prod") && msg.contains("dev"), "{msg}");
    // The same object in dev (autoUpdate: true) is fine.
    let (code, _, out) = d.custody_raw(&["gitops", "lint", "."]);
    assert_eq!(code, 1, "{out}");
    d.git(&[
        "mv",
        "env/prod/image-automation.yaml",
        "env/dev/image-automation.yaml",
    ]);
    d.commit("automation in dev only");
    let (code, report, all) = d.check(&[]);
    assert_eq!(code, 0, "{all}");
    assert!(finding_rules(&report).is_empty());
}

#[test]
fn a_new_build_into_an_auto_update_environment_passes_and_into_staging_fails() {
    if !tools_available() {
        return;
    }
    let reg = registry();
    let d = Delivery::new(&reg.host(), CONFIG);
    d.write("env/dev/values.yaml", &d.values(OLD));
    d.write("env/staging/values.yaml", &d.values(OLD));
    d.commit("old everywhere");
    d.branch("new-build");
    let a = digest("demo/app");
    d.write("env/dev/values.yaml", &d.values(&a));
    d.commit("image automation: new build");
    let (code, report, all) = d.check(&[]);
    assert_eq!(code, 0, "{all}");
    assert_eq!(changes(&report, "dev")[0]["kind"], "auto-update");
    d.write("env/staging/values.yaml", &d.values(&a));
    d.commit("and straight to staging");
    let (code, report, _) = d.check(&[]);
    assert_eq!(code, 1);
    // dev has A at the head revision, but only because this same pull request puts it there:
    // it never ran in dev, so it cannot be promoted yet.
    let c = changes(&report, "staging");
    assert_eq!(rules(c[0]), ["promotion-skips-environment"]);
    assert!(
        c[0]["problems"][0]["message"]
            .as_str()
            .unwrap()
            .contains("dev")
    );
}

#[test]
fn an_unsigned_image_promoted_correctly_is_still_refused_by_the_trust_policy() {
    if !tools_available() {
        return;
    }
    let reg = registry();
    let d = Delivery::new(&reg.host(), CONFIG);
    let u = format!("{}/demo/unsigned@{}", d.host, digest("demo/unsigned"));
    d.write(
        "env/dev/values.yaml",
        &format!("app:\n  image:\n    ref: {u}\n"),
    );
    d.write(
        "env/staging/values.yaml",
        &format!("app:\n  image:\n    ref: {}/demo/unsigned@{OLD}\n", d.host),
    );
    d.commit("dev runs unsigned");
    d.branch("promote-unsigned");
    d.write(
        "env/staging/values.yaml",
        &format!("app:\n  image:\n    ref: {u}\n"),
    );
    d.commit("promote");
    let (code, report, all) = d.check(&[]);
    assert_eq!(code, 1, "{all}");
    let c = changes(&report, "staging");
    assert_eq!(rules(c[0]), ["trust-policy"]);
    assert_eq!(c[0]["label"], "promotion from dev");
}

#[test]
fn the_field_layout_with_shared_values_works() {
    if !tools_available() {
        return;
    }
    let reg = registry();
    let config = r#"apiVersion: custody.dev/v1alpha1
kind: GitOpsConfig
environments:
  - {name: local, paths: ["values/env/local/**"], autoUpdate: true, policyEnvironment: dev}
  - {name: dev, paths: ["values/env/dev/**"], autoUpdate: true}
  - {name: staging, paths: ["values/env/staging/**"]}
  - {name: production, paths: ["values/env/production/**"], freeze: values/env/production/freeze.yaml}
shared: ["values/env/_shared/**"]
policy: policy/trust.yaml
"#;
    let d = Delivery::new(&reg.host(), config);
    let a = digest("demo/app");
    d.write("values/env/_shared/common.yaml", "app:\n  replicas: 2\n");
    d.write("values/env/dev/app/values.yaml", &d.values(&a));
    d.write("values/env/staging/app/values.yaml", &d.values(&a));
    d.write("values/env/production/app/values.yaml", &d.values(OLD));
    d.commit("layout two");
    d.branch("promote-prod");
    d.write("values/env/production/app/values.yaml", &d.values(&a));
    d.commit("promote to production");
    let (code, report, all) = d.check(&[]);
    assert_eq!(code, 0, "{all}");
    let c = changes(&report, "production");
    assert_eq!(c[0]["kind"], "promotion");
    assert_eq!(c[0]["sourceEnvironment"], "staging");
    assert_eq!(c[0]["verification"]["environment"], "production");
    // An image put in the shared values reaches every environment at once: refused.
    d.write(
        "values/env/_shared/common.yaml",
        &format!(
            "app:\n  replicas: 2\n  sidecar:\n    image: {}\n",
            d.image("app", &a)
        ),
    );
    d.commit("shared sidecar");
    let (code, report, _) = d.check(&[]);
    assert_eq!(code, 1);
    assert_eq!(
        rules(changes(&report, "shared")[0]),
        ["shared-image-change"]
    );
}
