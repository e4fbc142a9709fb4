//! `custody gitops retag-check` against a real registry (Debian's docker-registry, filled with
//! skopeo), run through the built binary. Pagination and hostile `Link` headers go through the
//! test proxy: Distribution 2.8 ignores `n` and never paginates, so pages are synthesised there
//! while every tag is still resolved in the real registry.

use std::process::Command;

use serde_json::Value;

use crate::common::proxy::{Action, Proxy};
use crate::common::registry::{Registry, fixtures, tools_available};

macro_rules! need_tools {
    () => {
        if !tools_available() {
            eprintln!(
                "skipping: docker-registry or skopeo not installed (scripts/test installs them)"
            );
            return;
        }
    };
}

const VERSION: &str = "v1.2.3";

fn tag(prefix: &str) -> String {
    format!("{prefix}-{VERSION}-abc1234-1700000000")
}

fn json_file(name: &str) -> Value {
    serde_json::from_slice(&std::fs::read(fixtures().join(name)).unwrap()).unwrap()
}

/// The digest of a scenario image (`demo/app`, `demo/wrong`, …).
fn digest(repo: &str) -> String {
    json_file("scenario.json")["images"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["repository"] == repo)
        .unwrap()["digest"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// The push-plan entry of a scenario image.
fn entry(repo: &str) -> Value {
    json_file("push-plan.json")
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["repository"] == repo && e["method"] == "skopeo-copy")
        .unwrap()
        .clone()
}

/// A registry holding demo/app as `demo/app:v1`.
fn registry() -> Registry {
    let reg = Registry::start();
    reg.push_entry(&entry("demo/app"), "demo/app");
    reg
}

/// Re-tags demo/app's image as each of `tags`.
fn retag(reg: &Registry, tags: &[String]) {
    for t in tags {
        reg.copy_tag("demo/app", &digest("demo/app"), t);
    }
}

/// Pushes another image (demo/wrong's) into demo/app under `tag`: a rebuild.
fn push_rebuild(reg: &Registry, tag: &str) {
    let mut e = entry("demo/wrong");
    e["tag"] = Value::from(tag);
    reg.push_entry(&e, "demo/app");
}

fn custody(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_custody"))
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// `custody gitops retag-check HOST/demo/app --version V --insecure-registry HOST EXTRA…`.
fn retag_check(host: &str, version: &str, extra: &[&str]) -> (i32, String, String) {
    let repo = format!("{host}/demo/app");
    let mut args = vec![
        "gitops",
        "retag-check",
        &repo,
        "--version",
        version,
        "--insecure-registry",
        host,
        "--timeout",
        "20",
    ];
    args.extend(extra);
    custody(&args)
}

fn json(stdout: &str) -> Value {
    serde_json::from_str(stdout).unwrap_or_else(|e| panic!("{e}: {stdout}"))
}

fn codes(report: &Value) -> Vec<&str> {
    report["problems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["code"].as_str().unwrap())
        .collect()
}

fn env_tags() -> Vec<String> {
    ["develop", "staging", "production"]
        .iter()
        .map(|p| tag(p))
        .collect()
}

// ------------------------------------------------------------------ judgements ----

#[test]
fn re_tags_of_one_build_are_consistent() {
    need_tools!();
    let reg = registry();
    retag(&reg, &env_tags());
    let app = digest("demo/app");

    let (code, stdout, stderr) = retag_check(&reg.host(), VERSION, &[]);
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(
        stdout.contains(&format!(
            "retag-check {}/demo/app v1.2.3: consistent, 3 tag(s) name {app}",
            reg.host()
        )),
        "{stdout}"
    );
    for t in env_tags() {
        assert!(stdout.contains(&t), "{t} missing: {stdout}");
    }

    let (code, stdout, stderr) = retag_check(&reg.host(), VERSION, &["--output", "json"]);
    assert_eq!(code, 0, "{stderr}");
    let r = json(&stdout);
    assert_eq!(
        r["mediaType"],
        "application/vnd.custody.retag-check.v1+json"
    );
    assert_eq!(r["consistent"], true);
    assert_eq!(r["repository"], format!("{}/demo/app", reg.host()));
    assert_eq!(r["digests"], serde_json::json!([app]));
    let tags: Vec<(&str, &str)> = r["tags"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| (t["prefix"].as_str().unwrap(), t["tag"].as_str().unwrap()))
        .collect();
    assert_eq!(
        tags,
        [
            ("develop", tag("develop").as_str()),
            ("staging", tag("staging").as_str()),
            ("production", tag("production").as_str()),
        ]
    );
}

#[test]
fn a_rebuilt_production_is_a_digest_mismatch_naming_both_digests() {
    need_tools!();
    let reg = registry();
    retag(&reg, &[tag("develop"), tag("staging")]);
    push_rebuild(&reg, &tag("production"));
    let (app, wrong) = (digest("demo/app"), digest("demo/wrong"));

    let (code, stdout, stderr) = retag_check(&reg.host(), VERSION, &[]);
    assert_eq!(code, 1, "{stdout}{stderr}");
    assert!(stdout.is_empty(), "a rejection goes to stderr: {stdout}");
    assert!(stderr.contains("inconsistent (1 problem(s))"), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "retag-digest-mismatch: the tags of v1.2.3 name 2 digests, a release must re-tag one build: {app} ← {}, {}; {wrong} ← {}",
            tag("develop"),
            tag("staging"),
            tag("production")
        )),
        "{stderr}"
    );

    let (code, stdout, _) = retag_check(&reg.host(), VERSION, &["--output", "json"]);
    assert_eq!(code, 1);
    let r = json(&stdout);
    assert_eq!(r["consistent"], false);
    assert_eq!(codes(&r), ["retag-digest-mismatch"]);
    assert_eq!(r["digests"], serde_json::json!([app, wrong]));
    assert_eq!(r["tags"][2]["digest"], wrong.as_str());
}

#[test]
fn a_missing_production_tag_fails_unless_production_is_not_required() {
    need_tools!();
    let reg = registry();
    retag(&reg, &[tag("develop"), tag("staging")]);

    let (code, _, stderr) = retag_check(&reg.host(), VERSION, &[]);
    assert_eq!(code, 1, "{stderr}");
    assert!(
        stderr.contains(&format!(
            "retag-missing-environment: no production tag of v1.2.3 (production-v1.2.3 or production-v1.2.3-…); the tags of v1.2.3 are: {}, {}",
            tag("develop"),
            tag("staging")
        )),
        "{stderr}"
    );

    let (code, stdout, stderr) = retag_check(
        &reg.host(),
        VERSION,
        &["--require", "develop", "--require", "staging"],
    );
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(stdout.contains("consistent, 2 tag(s)"), "{stdout}");
}

#[test]
fn a_version_without_tags_fails() {
    need_tools!();
    let reg = registry();
    retag(&reg, &env_tags());
    let (code, stdout, stderr) = retag_check(&reg.host(), "v9.9.9", &["--output", "json"]);
    assert_eq!(code, 1, "{stderr}");
    let r = json(&stdout);
    assert_eq!(codes(&r), ["retag-no-tags"]);
    assert_eq!(r["tags"], serde_json::json!([]));
    assert!(stderr.contains(&format!(
        "retag-no-tags: {}/demo/app has no tag of v9.9.9 under develop, staging, production",
        reg.host()
    )));
}

#[test]
fn tags_of_v1_2_30_are_not_taken_for_v1_2_3() {
    need_tools!();
    let reg = registry();
    retag(&reg, &env_tags());
    retag(&reg, &["develop-v1.2.30-def5678-1700000100".to_owned()]);
    push_rebuild(&reg, "production-v1.2.30-def5678-1700000100");

    let (code, stdout, stderr) = retag_check(&reg.host(), VERSION, &["--output", "json"]);
    assert_eq!(code, 0, "{stderr}");
    let r = json(&stdout);
    assert_eq!(r["tags"].as_array().unwrap().len(), 3);
    assert!(!stdout.contains("v1.2.30"), "{stdout}");

    // The other version is judged on its own tags.
    let (code, stdout, _) = retag_check(&reg.host(), "v1.2.30", &["--output", "json"]);
    assert_eq!(code, 1);
    let r = json(&stdout);
    assert_eq!(
        codes(&r),
        ["retag-missing-environment", "retag-digest-mismatch"]
    );
    assert_eq!(r["tags"].as_array().unwrap().len(), 2);
}

// ------------------------------------------------------------------ tag list pages ----

fn page(tags: &[String], link: Option<&str>) -> Action {
    let mut headers = vec![("Content-Type".to_owned(), "application/json".to_owned())];
    if let Some(l) = link {
        headers.push(("Link".to_owned(), format!("<{l}>; rel=\"next\"")));
    }
    Action::Status {
        code: 200,
        headers,
        body: serde_json::json!({"name": "demo/app", "tags": tags}).to_string(),
    }
}

const FIRST_PAGE: &str = "/tags/list?n=1000";

fn fillers(from: usize, to: usize) -> Vec<String> {
    (from..to).map(|i| format!("build-{i:05}")).collect()
}

/// Serves `pages` through the proxy: page k+1 is `?n=1000&last=p<k>`, linked from page k
/// (relative links, except an absolute one from the second page). The last page links on
/// when `link_after_last`.
fn serve_pages(proxy: &Proxy, pages: &[Vec<String>], link_after_last: bool) {
    let link = |k: usize| {
        let path = format!("/v2/demo/app/tags/list?n=1000&last=p{k:03}");
        if k == 2 {
            format!("http://{}{path}", proxy.host())
        } else {
            path
        }
    };
    // More specific rules first: the proxy takes the first rule whose text the path contains.
    for (i, tags) in pages.iter().enumerate().skip(1) {
        let next = (i + 1 < pages.len() || link_after_last).then(|| link(i + 1));
        proxy.rule(&format!("last=p{i:03}"), page(tags, next.as_deref()), None);
    }
    let next = (pages.len() > 1 || link_after_last).then(|| link(1));
    proxy.rule(FIRST_PAGE, page(&pages[0], next.as_deref()), None);
}

fn list_requests(proxy: &Proxy) -> usize {
    proxy
        .paths()
        .iter()
        .filter(|p| p.contains("/tags/list"))
        .count()
}

#[test]
fn every_page_is_read_so_a_rebuild_on_the_last_page_is_found() {
    need_tools!();
    let reg = registry();
    retag(&reg, &[tag("develop"), tag("staging")]);
    push_rebuild(&reg, &tag("production"));
    let proxy = Proxy::start(&reg.host(), false);
    let mut p1 = fillers(0, 40);
    p1.push(tag("develop"));
    let mut p2 = fillers(40, 80);
    p2.push(tag("staging"));
    serve_pages(&proxy, &[p1, p2, vec![tag("production")]], false);

    let (code, stdout, stderr) = retag_check(&proxy.host(), VERSION, &["--output", "json"]);
    assert_eq!(code, 1, "{stdout}{stderr}");
    assert_eq!(codes(&json(&stdout)), ["retag-digest-mismatch"]);
    assert!(stderr.contains(&digest("demo/wrong")), "{stderr}");
    assert_eq!(list_requests(&proxy), 3, "{:?}", proxy.paths());
}

#[test]
fn the_client_returns_every_page_in_order_each_tag_once() {
    need_tools!();
    let reg = registry();
    let proxy = Proxy::start(&reg.host(), false);
    let pages = [fillers(0, 3), fillers(2, 5), fillers(5, 6)];
    serve_pages(&proxy, &pages, false);
    let client = custody::registry::RegistryClient::new(custody::registry::RegistryConfig {
        insecure_registries: vec![proxy.host()],
        ..Default::default()
    })
    .unwrap();
    let image: custody::reference::ImageRef = format!("{}/demo/app", proxy.host()).parse().unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let deadline = custody::registry::Deadline::after(std::time::Duration::from_secs(10));
    let tags = rt.block_on(client.tags(&image, &deadline, 6)).unwrap();
    assert_eq!(tags, fillers(0, 6));
    // Six distinct tags is one too many for a limit of five.
    let e = rt.block_on(client.tags(&image, &deadline, 5)).unwrap_err();
    assert!(
        e.to_string()
            .contains("6 entries, more than the limit of 5"),
        "{e}"
    );

    // A tag that is not a tag is refused, not passed on.
    proxy.clear();
    serve_pages(&proxy, &[vec!["../../etc".to_owned()]], false);
    let e = rt.block_on(client.tags(&image, &deadline, 6)).unwrap_err();
    assert!(
        e.to_string().contains("\"../../etc\" is not a valid tag"),
        "{e}"
    );
}

#[test]
fn a_full_page_without_a_link_is_continued_with_last() {
    need_tools!();
    let reg = registry();
    retag(&reg, &env_tags());
    let proxy = Proxy::start(&reg.host(), false);
    let full = fillers(0, 1000);
    proxy.rule(
        "last=build-00999",
        page(&[tag("develop"), tag("production"), tag("staging")], None),
        None,
    );
    proxy.rule(FIRST_PAGE, page(&full, None), None);

    let (code, stdout, stderr) = retag_check(&proxy.host(), VERSION, &[]);
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(
        proxy
            .paths()
            .iter()
            .any(|p| p.ends_with("/tags/list?n=1000&last=build-00999")),
        "{:?}",
        proxy.paths()
    );
}

#[test]
fn a_tag_list_is_bounded_at_100_pages_and_max_tags() {
    need_tools!();
    let reg = registry();
    retag(&reg, &env_tags());
    let proxy = Proxy::start(&reg.host(), false);
    let mut pages: Vec<Vec<String>> = (0..99).map(|i| fillers(i, i + 1)).collect();
    pages.push(env_tags());

    // 100 pages: read to the end.
    serve_pages(&proxy, &pages, false);
    let (code, stdout, stderr) = retag_check(&proxy.host(), VERSION, &[]);
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert_eq!(list_requests(&proxy), 100);

    // The 100th page links a 101st: an error naming the limit, not a truncated list.
    proxy.clear();
    serve_pages(&proxy, &pages, true);
    let (code, _, stderr) = retag_check(&proxy.host(), VERSION, &[]);
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains(&format!(
            "pages of the tag list of {}/demo/app: 101 entries, more than the limit of 100",
            proxy.host()
        )),
        "{stderr}"
    );
    assert_eq!(list_requests(&proxy), 200, "no 101st page is requested");

    // The real registry's list: v1 + three environment tags = 4 tags.
    let (code, _, stderr) = retag_check(&reg.host(), VERSION, &["--max-tags", "4"]);
    assert_eq!(code, 0, "{stderr}");
    let (code, _, stderr) = retag_check(&reg.host(), VERSION, &["--max-tags", "3"]);
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains(&format!(
            "cannot list the tags of {}/demo/app: tags of {}/demo/app: 4 entries, more than the limit of 3",
            reg.host(),
            reg.host()
        )),
        "{stderr}"
    );
}

#[test]
fn a_next_page_outside_the_repository_or_back_to_a_read_page_is_refused() {
    need_tools!();
    let reg = registry();
    retag(&reg, &env_tags());
    let proxy = Proxy::start(&reg.host(), false);
    let targets = [
        // Another registry: the real one, reachable, so following it would "work".
        format!("http://{}/v2/demo/app/tags/list?n=1000&last=x", reg.host()),
        // Another repository on the same registry.
        "/v2/demo/other/tags/list?n=1000&last=x".to_owned(),
        "/v2/demo/app/../other/tags/list".to_owned(),
        // Another endpoint of the same repository.
        "/v2/demo/app/manifests/latest".to_owned(),
    ];
    for target in &targets {
        proxy.clear();
        proxy.rule(FIRST_PAGE, page(&env_tags(), Some(target)), None);
        let before = proxy.requests();
        let (code, _, stderr) = retag_check(&proxy.host(), VERSION, &[]);
        assert_eq!(code, 2, "{target}: {stderr}");
        assert!(stderr.contains("links its next page to"), "{stderr}");
        assert!(stderr.contains("not following it"), "{stderr}");
        assert!(
            stderr.contains(&format!(
                "outside http://{}/v2/demo/app/tags/list",
                proxy.host()
            )),
            "{stderr}"
        );
        assert_eq!(
            proxy.requests() - before,
            1,
            "{target}: {:?}",
            proxy.paths()
        );
    }

    // A link back to the first page is a loop, refused at once.
    proxy.clear();
    proxy.rule(
        FIRST_PAGE,
        page(&env_tags(), Some("/v2/demo/app/tags/list?n=1000")),
        None,
    );
    let (code, _, stderr) = retag_check(&proxy.host(), VERSION, &[]);
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains("its next page (?n=1000) is a page already read"),
        "{stderr}"
    );
}

// ------------------------------------------------------------------ errors ----

#[test]
fn registry_errors_exit_2_naming_the_registry_and_the_tag() {
    need_tools!();
    // Down: nothing listens on the port.
    let down = format!("127.0.0.1:{}", crate::common::registry::free_port());
    let (code, stdout, stderr) = retag_check(&down, VERSION, &[]);
    assert_eq!(code, 2, "{stderr}");
    assert!(stdout.is_empty());
    assert!(
        stderr.contains(&format!(
            "error: cannot list the tags of {down}/demo/app: cannot reach http://{down}/"
        )),
        "{stderr}"
    );

    let reg = registry();
    retag(&reg, &env_tags());
    // A repository the registry does not know.
    let (code, _, stderr) = custody(&[
        "gitops",
        "retag-check",
        &format!("{}/demo/nothing", reg.host()),
        "--version",
        VERSION,
        "--insecure-registry",
        &reg.host(),
    ]);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("not found"), "{stderr}");

    // One tag fails to resolve (a 500 on every attempt): the error names it, no verdict.
    let proxy = Proxy::start(&reg.host(), false);
    proxy.rule(
        &format!("/manifests/{}", tag("production")),
        Action::Status {
            code: 500,
            headers: vec![],
            body: "boom".into(),
        },
        None,
    );
    let (code, stdout, stderr) = retag_check(&proxy.host(), VERSION, &["--output", "json"]);
    assert_eq!(code, 2, "{stderr}");
    assert!(stdout.is_empty(), "{stdout}");
    assert!(
        stderr.contains(&format!(
            "error: cannot resolve {}/demo/app:{}: registry answered 500",
            proxy.host(),
            tag("production")
        )),
        "{stderr}"
    );
}

#[test]
fn input_errors_exit_2_before_any_request() {
    // No registry needed: these fail before the network.
    let host = "127.0.0.1:9";
    let cases: [(&[&str], &str); 6] = [
        (
            &["127.0.0.1:9/demo/app:v1.2.3", "--version", VERSION],
            "names a tag or digest; pass the repository alone (127.0.0.1:9/demo/app)",
        ),
        (
            &[
                &format!("127.0.0.1:9/demo/app@sha256:{}", "a".repeat(64)),
                "--version",
                VERSION,
            ],
            "names a tag or digest",
        ),
        (
            &["127.0.0.1:9/Demo/App", "--version", VERSION],
            "invalid repository",
        ),
        (
            &["127.0.0.1:9/demo/app", "--version", "1.2.3"],
            "version \"1.2.3\" is not vMAJOR.MINOR.PATCH",
        ),
        (
            &["127.0.0.1:9/demo/app", "--version", "v1.2"],
            "needs exactly three numbers",
        ),
        (
            &[
                "127.0.0.1:9/demo/app",
                "--version",
                VERSION,
                "--prefix",
                "dev",
                "--require",
                "production",
            ],
            "required prefix \"production\" is not one of the prefixes checked (dev)",
        ),
    ];
    for (args, needle) in cases {
        let mut all = vec!["gitops", "retag-check", "--insecure-registry", host];
        all.extend(args);
        let (code, stdout, stderr) = custody(&all);
        assert_eq!(code, 2, "{args:?}: {stderr}");
        assert!(stdout.is_empty());
        assert!(stderr.contains(needle), "{args:?}: {stderr}");
        assert!(!stderr.contains("cannot reach"), "{args:?}: {stderr}");
    }
}
