//! `custody gitops promote` → `custody gitops check`: what promote writes, check passes, and the
//! diff touches only the digests.

use crate::common::registry::tools_available;
use crate::support::{CONFIG, Delivery, OLD, OLDER, changes, digest, registry};

/// Every `sha256:<64 hex>` replaced by a placeholder.
fn without_digests(text: &str) -> String {
    let re = regex::Regex::new("sha256:[0-9a-f]{64}").unwrap();
    re.replace_all(text, "sha256:<digest>").into_owned()
}

fn deployment(d: &Delivery, app: &str) -> String {
    format!(
        "# Deployment of the app; the sidecar is third-party.\napiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: app\nspec:\n  template:\n    spec:\n      containers:\n        - name: app\n          image: \"{}\"   # keep quoted\n          imagePullPolicy: IfNotPresent\n        - name: proxy\n          image: docker.io/library/nginx:1.27.0@{OLDER}\n          imagePullPolicy: IfNotPresent\n",
        d.image("app", app)
    )
}

fn kustomization(d: &Delivery, app: &str) -> String {
    format!(
        "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources: [deployment.yaml]\nimages:\n  - name: app\n    newName: {}/demo/app\n    digest: {app}\n",
        d.host
    )
}

fn delivery(host: &str) -> Delivery {
    let d = Delivery::new(host, CONFIG);
    let a = digest("demo/app");
    for (env, digest) in [("dev", a.as_str()), ("staging", OLD), ("prod", OLDER)] {
        d.write(&format!("env/{env}/values.yaml"), &d.values(digest));
        d.write(
            &format!("env/{env}/deployment.yaml"),
            &deployment(&d, digest),
        );
        d.write(
            &format!("env/{env}/kustomize/kustomization.yaml"),
            &kustomization(&d, digest),
        );
    }
    d.commit("dev runs A");
    d
}

#[test]
fn promote_then_check_round_trip_touches_only_digests() {
    if !tools_available() {
        return;
    }
    let reg = registry();
    let d = delivery(&reg.host());
    let a = digest("demo/app");
    d.branch("promote-staging");
    let before: Vec<String> = [
        "values.yaml",
        "deployment.yaml",
        "kustomize/kustomization.yaml",
    ]
    .iter()
    .map(|f| d.read(&format!("env/staging/{f}")))
    .collect();
    let (code, out, err) = d.custody(&["gitops", "promote", "dev", "staging"]);
    assert_eq!(code, 0, "{out}{err}");
    // Title and body for the pull request: image, digest, source commit, verification.
    let title = out.lines().next().unwrap();
    assert_eq!(title, "Promote app from dev to staging");
    assert!(out.contains(&a), "{out}");
    assert!(
        out.contains("5e1f0c3a9b7d"),
        "source commit from the certificate: {out}"
    );
    assert!(out.contains("allow"), "{out}");
    // Only the digests changed, in all three forms; comments, quotes, order untouched.
    for (f, old) in [
        "values.yaml",
        "deployment.yaml",
        "kustomize/kustomization.yaml",
    ]
    .iter()
    .zip(&before)
    {
        let new = d.read(&format!("env/staging/{f}"));
        assert_ne!(&new, old, "{f} was not edited");
        assert_eq!(
            without_digests(&new),
            without_digests(old),
            "{f}: more than digests changed"
        );
        assert!(new.contains(&a), "{f}");
        assert_eq!(new.len(), old.len(), "{f}");
    }
    // The third-party sidecar kept its digest; dev and prod are untouched.
    assert!(
        d.read("env/staging/deployment.yaml")
            .contains(&format!("nginx:1.27.0@{OLDER}"))
    );
    let stat = d.git(&["diff", "--stat"]);
    assert!(
        !stat.contains("env/dev") && !stat.contains("env/prod"),
        "{stat}"
    );
    d.commit("promote dev → staging");
    let (code, report, all) = d.check(&[]);
    assert_eq!(code, 0, "{all}");
    let c = changes(&report, "staging");
    assert_eq!(c.len(), 3, "{report:#}");
    assert!(c.iter().all(|c| c["kind"] == "promotion"), "{report:#}");
    // Promoting again is a no-op.
    let (code, out, _) = d.custody(&["gitops", "promote", "dev", "staging", "--output", "json"]);
    assert_eq!(code, 0);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["files"].as_array().unwrap().len(), 0, "{v:#}");
}

#[test]
fn promote_refuses_skipping_or_reversing_environments() {
    let d = delivery("127.0.0.1:9");
    let before = d.read("env/prod/values.yaml");
    for (src, tgt) in [("dev", "prod"), ("prod", "staging"), ("staging", "staging")] {
        let (code, _, err) = d.custody_raw(&["gitops", "promote", src, tgt, ".", "--no-verify"]);
        assert_eq!(code, 2, "{src}→{tgt}: {err}");
        assert!(
            err.contains("dev, staging, prod") || err.contains("staging"),
            "{err}"
        );
    }
    assert_eq!(d.read("env/prod/values.yaml"), before);
}

#[test]
fn promote_dry_run_and_image_filter_write_nothing_they_should_not() {
    let d = delivery("127.0.0.1:9");
    let before = d.read("env/staging/values.yaml");
    let (code, out, err) = d.custody_raw(&[
        "gitops",
        "promote",
        "dev",
        "staging",
        ".",
        "--no-verify",
        "--dry-run",
        "--output",
        "json",
    ]);
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["files"].as_array().unwrap().len(), 3);
    assert_eq!(v["written"], false);
    assert_eq!(d.read("env/staging/values.yaml"), before);
    assert!(v["body"].as_str().unwrap().contains("not verified"));
    // A filter that matches nothing promotes nothing.
    let (code, out, _) = d.custody_raw(&[
        "gitops",
        "promote",
        "dev",
        "staging",
        ".",
        "--no-verify",
        "--images",
        "*/other/**",
        "--output",
        "json",
    ]);
    assert_eq!(code, 0);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["files"].as_array().unwrap().len(), 0);
    assert_eq!(d.read("env/staging/values.yaml"), before);
}

#[test]
fn promote_of_a_digest_the_target_policy_refuses_writes_nothing() {
    if !tools_available() {
        return;
    }
    let reg = registry();
    let d = Delivery::new(&reg.host(), CONFIG);
    let u = digest("demo/unsigned");
    d.write(
        "env/dev/values.yaml",
        &format!("app:\n  image:\n    ref: {}/demo/unsigned@{u}\n", d.host),
    );
    d.write(
        "env/staging/values.yaml",
        &format!("app:\n  image:\n    ref: {}/demo/unsigned@{OLD}\n", d.host),
    );
    d.commit("unsigned in dev");
    let before = d.read("env/staging/values.yaml");
    let (code, out, err) = d.custody(&["gitops", "promote", "dev", "staging"]);
    assert_eq!(code, 1, "{out}{err}");
    assert!(err.contains("nothing written"), "{err}");
    assert!(out.contains("deny"), "{out}");
    assert_eq!(d.read("env/staging/values.yaml"), before);
}

#[cfg(unix)]
#[test]
fn promote_never_writes_through_a_symlink() {
    let d = delivery("127.0.0.1:9");
    let elsewhere = crate::common::registry::TempDir::new("custody-elsewhere");
    let target = elsewhere.0.join("values.yaml");
    std::fs::write(&target, d.read("env/staging/values.yaml")).unwrap();
    std::fs::remove_file(d.path().join("env/staging/values.yaml")).unwrap();
    std::os::unix::fs::symlink(&target, d.path().join("env/staging/values.yaml")).unwrap();
    let before = std::fs::read_to_string(&target).unwrap();
    let (_, out, err) = d.custody_raw(&[
        "gitops",
        "promote",
        "dev",
        "staging",
        ".",
        "--no-verify",
        "--output",
        "json",
    ]);
    assert_eq!(
        std::fs::read_to_string(&target).unwrap(),
        before,
        "{out}{err}"
    );
}
