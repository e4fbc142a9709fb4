//! `custody lineage`: what ran where, built from what, verified by whom — from the lineage store.

use crate::cli::{EXIT_ERROR, EXIT_OK, EXIT_REJECTED, Output, err, out};
use crate::store::{Page, Store};

/// Arguments.
#[derive(Debug, clap::Args)]
#[command(group = clap::ArgGroup::new("query").required(true).args(["digest", "commit", "env", "signer", "prune_before"]))]
pub struct Args {
    /// The lineage of one digest: source → build → digest → evidence → environments, with times.
    digest: Option<String>,
    /// Every digest built from this commit (full or ≥ 7-character prefix) and where each went.
    #[arg(long, value_name = "SHA")]
    commit: Option<String>,
    /// What ran in this environment at `--at`.
    #[arg(long, value_name = "ENVIRONMENT", requires = "at")]
    env: Option<String>,
    /// The time for `--env` (RFC 3339).
    #[arg(long, value_name = "TIME", requires = "env")]
    at: Option<String>,
    /// Everything this identity signed that was admitted.
    #[arg(long, value_name = "IDENTITY")]
    signer: Option<String>,
    /// Retention: delete the admissions whose time (the event's, not when it was stored) is
    /// before this time (RFC 3339); promotions are kept. Prints how many were deleted; exit 0.
    #[arg(long, value_name = "TIME")]
    prune_before: Option<String>,
    /// With `--prune-before`: delete the verdicts before that time too.
    #[arg(long, requires = "prune_before")]
    prune_verdicts: bool,
    /// The store: `sqlite:PATH` or `postgres://…`.
    #[arg(long, env = "CUSTODY_STORE", value_name = "URL")]
    store: String,
    /// Page size (1–1000).
    #[arg(long, default_value_t = 100)]
    limit: u32,
    /// Continue after this cursor (from the previous page's `next`).
    #[arg(long)]
    cursor: Option<String>,
    /// Output format (text or json).
    #[arg(long, value_enum, default_value_t)]
    output: Output,
}

/// Runs it: 0 found (or pruned), 1 nothing recorded, 2 error.
pub fn run(args: Args) -> u8 {
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            err(&format!("error: cannot start the async runtime: {e}"));
            return EXIT_ERROR;
        }
    };
    match rt.block_on(query(&args)) {
        Ok((text, json, found)) => {
            out(if args.output == Output::Text {
                &text
            } else {
                &json
            });
            if found { EXIT_OK } else { EXIT_REJECTED }
        }
        Err(e) => {
            err(&format!("error: {e}"));
            EXIT_ERROR
        }
    }
}

/// Queries read an existing store: a mistyped SQLite path would otherwise create an empty one
/// and answer "nothing recorded" (exit 1), which reads like a finding. The service and
/// `gitops check --store` still create the file.
fn existing_sqlite_file(url: &str) -> Result<(), String> {
    use std::str::FromStr as _;
    if !url.starts_with("sqlite:") || url.contains(":memory:") {
        return Ok(());
    }
    let Ok(options) = sqlx::sqlite::SqliteConnectOptions::from_str(url) else {
        return Ok(()); // Store::open reports the bad URL
    };
    let path = options.get_filename();
    if path.exists() {
        Ok(())
    } else {
        Err(format!(
            "no lineage store at {}: check --store / CUSTODY_STORE (queries never create one)",
            path.display()
        ))
    }
}

fn pretty<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_string_pretty(v).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"))
}

async fn query(args: &Args) -> Result<(String, String, bool), String> {
    existing_sqlite_file(&args.store)?;
    let store = Store::open(&args.store).await.map_err(|e| e.to_string())?;
    let page = Page {
        limit: args.limit,
        cursor: args.cursor.clone(),
    };
    if let Some(d) = &args.digest {
        let l = store.lineage(d).await.map_err(|e| e.to_string())?;
        return Ok(match l {
            None => (format!("nothing recorded for {d}"), "null".into(), false),
            Some(l) => (text::lineage(&l), pretty(&l), true),
        });
    }
    if let Some(c) = &args.commit {
        let p = store.by_commit(c, &page).await.map_err(|e| e.to_string())?;
        let found = !p.items.is_empty();
        return Ok((text::built(c, &p), pretty(&p), found));
    }
    if let (Some(env), Some(at)) = (&args.env, &args.at) {
        let p = store.at(env, at, &page).await.map_err(|e| e.to_string())?;
        let found = !p.items.is_empty();
        return Ok((text::deployed(env, at, &p), pretty(&p), found));
    }
    if let Some(s) = &args.signer {
        let p = store.by_signer(s, &page).await.map_err(|e| e.to_string())?;
        let found = !p.items.is_empty();
        return Ok((text::signed(s, &p), pretty(&p), found));
    }
    if let Some(before) = &args.prune_before {
        let p = store
            .prune(before, args.prune_verdicts)
            .await
            .map_err(|e| e.to_string())?;
        let text = format!(
            "deleted {} admission{} and {} verdict{} that occurred before {before}",
            p.admissions,
            if p.admissions == 1 { "" } else { "s" },
            p.verdicts,
            if p.verdicts == 1 { "" } else { "s" },
        );
        return Ok((text, pretty(&p), true));
    }
    Err("give a DIGEST, --commit, --env with --at, --signer, or --prune-before".into())
}

/// Text renderings.
mod text {
    use crate::store::{Built, Deployed, Lineage, Paged, Signed};

    fn o(v: &Option<String>) -> &str {
        v.as_deref().unwrap_or("-")
    }

    fn more<T>(p: &Paged<T>) -> String {
        p.next
            .as_ref()
            .map(|n| format!("\nmore: --cursor {n}"))
            .unwrap_or_default()
    }

    pub(super) fn lineage(l: &Lineage) -> String {
        let mut s = format!("{}  ({})\n", l.digest, l.images.join(", "));
        s.push_str("source → build\n");
        for b in &l.builds {
            s.push_str(&format!(
                "  {}@{} ({})  workflow {}  run {}  builder {}\n",
                o(&b.source_repository),
                o(&b.source_commit),
                o(&b.source_ref),
                o(&b.workflow),
                o(&b.run),
                o(&b.builder)
            ));
        }
        s.push_str("signed by\n");
        for g in &l.signers {
            s.push_str(&format!(
                "  {} ({})  first {}  last {}\n",
                g.signer,
                o(&g.issuer),
                g.first_seen,
                g.last_seen
            ));
        }
        if !l.sbom_digests.is_empty() || !l.log_indexes.is_empty() {
            s.push_str(&format!(
                "evidence: SBOM {}; transparency-log entries {:?}\n",
                if l.sbom_digests.is_empty() {
                    "-".into()
                } else {
                    l.sbom_digests.join(", ")
                },
                l.log_indexes
            ));
        }
        s.push_str("verdicts\n");
        for v in &l.verdicts {
            s.push_str(&format!(
                "  #{} {} {} {} (policy {} {})\n",
                v.id,
                v.time,
                v.decision,
                o(&v.environment),
                v.policy,
                v.policy_hash
            ));
        }
        s.push_str("environments reached\n");
        for e in &l.environments {
            let how = match e.via.as_str() {
                "promotion" => format!(
                    "promotion, commit {}{}",
                    o(&e.commit),
                    e.pull_request
                        .as_ref()
                        .map(|p| format!(", PR {p}"))
                        .unwrap_or_default()
                ),
                _ => match e.namespace.as_deref().filter(|ns| !ns.is_empty()) {
                    Some(ns) => format!("admission, {}/{ns}", o(&e.cluster)),
                    // A cluster-scoped object.
                    None => format!("admission, {}", o(&e.cluster)),
                },
            };
            s.push_str(&format!(
                "  {:<12} first {}  last {}  via {how}\n",
                e.environment, e.first_seen, e.last_seen
            ));
        }
        s
    }

    pub(super) fn built(commit: &str, p: &Paged<Built>) -> String {
        let mut s = format!("built from {commit}\n");
        for b in &p.items {
            s.push_str(&format!(
                "  {} {}  workflow {}  first verified {}  reached: {}\n",
                b.image,
                b.digest,
                o(&b.workflow),
                b.first_verified,
                if b.environments.is_empty() {
                    "-".into()
                } else {
                    b.environments.join(", ")
                }
            ));
        }
        s + &more(p)
    }

    pub(super) fn deployed(env: &str, at: &str, p: &Paged<Deployed>) -> String {
        let mut s = format!("{env} at {at}\n");
        for d in &p.items {
            s.push_str(&format!(
                "  {}@{}  since {} via {} {}\n",
                d.image,
                d.digest,
                d.since,
                d.via,
                o(&d.commit)
            ));
        }
        s + &more(p)
    }

    pub(super) fn signed(signer: &str, p: &Paged<Signed>) -> String {
        let mut s = format!("signed by {signer} and admitted\n");
        for d in &p.items {
            s.push_str(&format!(
                "  {}@{}  first admitted {}  environments: {}\n",
                d.image,
                d.digest,
                d.first_admitted,
                d.environments.join(", ")
            ));
        }
        s + &more(p)
    }
}

#[cfg(test)]
mod tests {
    use crate::store::{EnvironmentReached, Lineage};

    fn reached(env: &str, via: &str, namespace: Option<&str>) -> EnvironmentReached {
        EnvironmentReached {
            environment: env.into(),
            first_seen: "2026-11-20T10:00:00.000000Z".into(),
            last_seen: "2026-11-21T10:00:00.000000Z".into(),
            via: via.into(),
            commit: (via == "promotion").then(|| "a22f1f2".to_owned()),
            pull_request: (via == "promotion").then(|| "#7".to_owned()),
            cluster: (via == "admission").then(|| env.to_owned()),
            namespace: namespace.map(Into::into),
        }
    }

    #[test]
    fn environments_name_promotions_and_admissions_without_an_empty_namespace() {
        let l = Lineage {
            digest: format!("sha256:{}", "ab".repeat(32)),
            images: vec!["ghcr.io/acme/app".into()],
            builds: vec![],
            signers: vec![],
            verdicts: vec![],
            environments: vec![
                reached("staging", "promotion", None),
                reached("production", "admission", Some("shop")),
                reached("prod-eu", "admission", Some("")),
            ],
            promotions: vec![],
            admissions: vec![],
            sbom_digests: vec![],
            log_indexes: vec![],
        };
        let text = super::text::lineage(&l);
        assert!(
            text.contains("via promotion, commit a22f1f2, PR #7"),
            "{text}"
        );
        assert!(text.contains("via admission, production/shop\n"), "{text}");
        assert!(
            text.contains("via admission, prod-eu\n"),
            "a cluster-scoped object has no namespace to show: {text}"
        );
    }
}
