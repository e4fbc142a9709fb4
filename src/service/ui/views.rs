//! What the templates show, made from the store's records: times formatted for people, long values
//! shortened where a full copy is elsewhere on the page, badge classes from a closed set. Values
//! stay plain strings: the templates escape them.

use super::diagram::{self, Diagram};
use crate::reference::Digest;
use crate::store::{
    Built, Deployed, EnvironmentReached, Lineage, SearchHit, Signed, VerdictRecord,
};

/// The lineage page.
#[derive(Debug)]
pub(super) struct LineageView {
    pub(super) digest: String,
    /// `sha256:0123456789ab…` for the title.
    pub(super) short: String,
    pub(super) images: Vec<String>,
    pub(super) diagram: Diagram,
    pub(super) timeline: Vec<EnvironmentRow>,
    pub(super) verdicts: Vec<VerdictRow>,
    pub(super) builds: Vec<BuildRow>,
    pub(super) signers: Vec<SignerRow>,
    pub(super) log_indexes: Vec<u64>,
    pub(super) sbom_digests: Vec<String>,
    pub(super) promotions: Vec<PromotionRow>,
    pub(super) admissions: Vec<AdmissionRow>,
}

#[derive(Debug)]
pub(super) struct EnvironmentRow {
    pub(super) name: String,
    pub(super) first_seen: String,
    /// The first-seen time as recorded (RFC 3339): the environment view at that time.
    pub(super) first_seen_at: String,
    pub(super) last_seen: String,
    pub(super) via: String,
}

#[derive(Debug)]
pub(super) struct VerdictRow {
    pub(super) id: i64,
    pub(super) time: String,
    pub(super) decision: String,
    pub(super) decision_class: &'static str,
    pub(super) policy: String,
    pub(super) policy_hash: String,
    pub(super) policy_hash_short: String,
    pub(super) environment: String,
}

#[derive(Debug)]
pub(super) struct BuildRow {
    pub(super) repository: String,
    pub(super) reference: String,
    pub(super) commit: String,
    pub(super) workflow: String,
    pub(super) run: String,
    pub(super) builder: String,
}

#[derive(Debug)]
pub(super) struct SignerRow {
    pub(super) signer: String,
    pub(super) issuer: String,
}

#[derive(Debug)]
pub(super) struct PromotionRow {
    pub(super) time: String,
    pub(super) environment: String,
    pub(super) kind: String,
    pub(super) repository: String,
    pub(super) commit: String,
    pub(super) pull_request: String,
    /// The digest promoted away from, when it parses as one (it becomes a link).
    pub(super) from: String,
    pub(super) from_short: String,
}

#[derive(Debug)]
pub(super) struct AdmissionRow {
    pub(super) time: String,
    pub(super) cluster: String,
    pub(super) namespace: String,
    pub(super) workload: String,
    pub(super) image: String,
    pub(super) outcome: String,
    pub(super) outcome_class: &'static str,
}

/// The verdict page.
#[derive(Debug)]
pub(super) struct VerdictView {
    pub(super) id: i64,
    pub(super) time: String,
    pub(super) decision: String,
    pub(super) decision_class: &'static str,
    pub(super) image: String,
    pub(super) digest: String,
    /// The digest parses (it becomes a link to its lineage).
    pub(super) digest_valid: bool,
    pub(super) reasons: Vec<String>,
    pub(super) policy: String,
    pub(super) policy_hash: String,
    pub(super) trust_root_hash: String,
    pub(super) environment: String,
    /// (label, value, monospace).
    pub(super) facts: Vec<(&'static str, String, bool)>,
}

/// One row of a commit search.
#[derive(Debug)]
pub(super) struct BuiltRow {
    pub(super) digest: String,
    pub(super) image: String,
    pub(super) workflow: String,
    pub(super) time: String,
    /// `dev → staging`, or `not deployed`.
    pub(super) reached: String,
}

/// One row of the environment view: what ran there at the time asked.
#[derive(Debug)]
pub(super) struct DeployedRow {
    pub(super) image: String,
    pub(super) digest: String,
    /// The digest parses (it becomes a link to its lineage).
    pub(super) digest_valid: bool,
    pub(super) since: String,
    /// `promotion` or `admission`.
    pub(super) via: String,
    /// The delivery commit of the promotion, or empty.
    pub(super) commit: String,
}

/// One row of the signer view: a digest the identity signed that was admitted.
#[derive(Debug)]
pub(super) struct SignedRow {
    pub(super) digest: String,
    pub(super) digest_valid: bool,
    pub(super) image: String,
    pub(super) first_admitted: String,
    /// In order of arrival.
    pub(super) environments: Vec<String>,
}

/// One search hit.
#[derive(Debug)]
pub(super) struct HitRow {
    pub(super) kind: String,
    pub(super) value: String,
    /// The digest to open, when it parses as one; empty otherwise.
    pub(super) digest: String,
}

pub(super) fn lineage(l: &Lineage) -> LineageView {
    let timeline = timeline(&l.environments);
    let build = l.builds.first();
    let signer = l.signers.first();
    let chain = diagram::Chain {
        repository: build.and_then(|b| b.source_repository.clone()),
        commit: build.and_then(|b| b.source_commit.clone()),
        reference: build.and_then(|b| b.source_ref.clone()),
        workflow: build.and_then(|b| b.workflow.clone()),
        run: build.and_then(|b| b.run.clone()),
        digest: l.digest.clone(),
        image: l.images.first().cloned(),
        signer: signer.map(|s| s.signer.clone()),
        issuer: signer.and_then(|s| s.issuer.clone()),
        log_entries: l.log_indexes.len(),
        sboms: l.sbom_digests.len(),
        environments: timeline
            .iter()
            .map(|e| (e.name.clone(), e.first_seen.clone()))
            .collect(),
    };
    LineageView {
        digest: l.digest.clone(),
        short: short_digest(&l.digest),
        images: l.images.clone(),
        diagram: diagram::layout(&chain),
        timeline,
        verdicts: l
            .verdicts
            .iter()
            .map(|v| VerdictRow {
                id: v.id,
                time: when(&v.time),
                decision: v.decision.clone(),
                decision_class: badge(&v.decision),
                policy: v.policy.clone(),
                policy_hash: v.policy_hash.clone(),
                policy_hash_short: short_digest(&v.policy_hash),
                environment: v.environment.clone().unwrap_or_else(|| "—".into()),
            })
            .collect(),
        builds: l
            .builds
            .iter()
            .map(|b| BuildRow {
                repository: or_dash(b.source_repository.as_deref()),
                reference: b.source_ref.clone().unwrap_or_default(),
                commit: b.source_commit.clone().unwrap_or_default(),
                workflow: or_dash(b.workflow.as_deref()),
                run: or_dash(b.run.as_deref()),
                builder: or_dash(b.builder.as_deref()),
            })
            .collect(),
        signers: l
            .signers
            .iter()
            .map(|s| SignerRow {
                signer: s.signer.clone(),
                issuer: or_dash(s.issuer.as_deref()),
            })
            .collect(),
        log_indexes: l.log_indexes.clone(),
        sbom_digests: l.sbom_digests.clone(),
        promotions: l
            .promotions
            .iter()
            .map(|p| {
                let from = p
                    .from_digest
                    .as_deref()
                    .filter(|d| d.parse::<Digest>().is_ok())
                    .unwrap_or_default()
                    .to_owned();
                PromotionRow {
                    time: when(&p.time),
                    environment: p.environment.clone(),
                    kind: p.kind.clone(),
                    repository: p.repository.clone(),
                    commit: p.commit.clone(),
                    pull_request: or_dash(p.pull_request.as_deref()),
                    from_short: short_digest(&from),
                    from,
                }
            })
            .collect(),
        admissions: l
            .admissions
            .iter()
            .map(|a| AdmissionRow {
                time: when(&a.time),
                cluster: a.cluster.clone(),
                namespace: a.namespace.clone(),
                workload: a.workload.clone(),
                image: a.image.clone(),
                outcome: a.outcome.clone(),
                outcome_class: badge(&a.outcome),
            })
            .collect(),
    }
}

pub(super) fn verdict(r: &VerdictRecord) -> VerdictView {
    let e = &r.event;
    let log_indexes = e
        .log_indexes
        .iter()
        .map(u64::to_string)
        .collect::<Vec<_>>()
        .join(", ");
    let facts = [
        ("signer", e.signer.as_deref(), false),
        ("issuer", e.issuer.as_deref(), false),
        ("source repository", e.source_repository.as_deref(), false),
        ("source ref", e.source_ref.as_deref(), false),
        ("source commit", e.source_commit.as_deref(), true),
        ("workflow", e.workflow.as_deref(), false),
        ("run", e.run.as_deref(), false),
        ("builder", e.builder.as_deref(), false),
        ("SBOM", e.sbom_digest.as_deref(), true),
        (
            "transparency log entries",
            Some(log_indexes.as_str()).filter(|s| !s.is_empty()),
            true,
        ),
    ]
    .into_iter()
    .map(|(label, value, mono)| (label, value.unwrap_or("not recorded").to_owned(), mono))
    .collect();
    VerdictView {
        id: r.id,
        time: when(&e.time),
        decision: e.decision.clone(),
        decision_class: badge(&e.decision),
        image: e.image.clone(),
        digest_valid: e.digest.parse::<Digest>().is_ok(),
        digest: e.digest.clone(),
        reasons: e.reasons.clone(),
        policy: e.policy.clone(),
        policy_hash: e.policy_hash.clone(),
        trust_root_hash: e.trust_root_hash.clone(),
        environment: or_dash(e.environment.as_deref()),
        facts,
    }
}

pub(super) fn built(b: &Built) -> BuiltRow {
    BuiltRow {
        digest: b.digest.clone(),
        image: b.image.clone(),
        reached: if b.environments.is_empty() {
            "not deployed".into()
        } else {
            b.environments.join(" → ")
        },
        workflow: or_dash(b.workflow.as_deref()),
        time: when(&b.first_verified),
    }
}

pub(super) fn deployed(d: &Deployed) -> DeployedRow {
    DeployedRow {
        image: d.image.clone(),
        digest_valid: d.digest.parse::<Digest>().is_ok(),
        digest: d.digest.clone(),
        since: when(&d.since),
        via: d.via.clone(),
        commit: d.commit.clone().unwrap_or_default(),
    }
}

pub(super) fn signed(s: &Signed) -> SignedRow {
    SignedRow {
        digest_valid: s.digest.parse::<Digest>().is_ok(),
        digest: s.digest.clone(),
        image: s.image.clone(),
        first_admitted: when(&s.first_admitted),
        environments: s.environments.clone(),
    }
}

pub(super) fn hit(h: &SearchHit) -> HitRow {
    HitRow {
        kind: h.kind.clone(),
        value: h.value.clone(),
        digest: h
            .digest
            .as_deref()
            .filter(|d| d.parse::<Digest>().is_ok())
            .unwrap_or_default()
            .to_owned(),
    }
}

/// One row per environment, in the order first reached: the store lists an environment once per
/// way it was reached (a promotion, an admission in the cluster of that name), so rows of one
/// name are merged — earliest first seen, latest last seen, every way listed.
fn timeline(reached: &[EnvironmentReached]) -> Vec<EnvironmentRow> {
    let mut sorted: Vec<&EnvironmentReached> = reached.iter().collect();
    // The store keeps times in one fixed UTC format, so text order is time order.
    sorted.sort_by(|a, b| a.first_seen.cmp(&b.first_seen));
    let mut rows: Vec<(String, String, String, Vec<String>)> = Vec::new();
    for e in sorted {
        let how = via(
            &e.via,
            &[
                e.commit.as_deref().map(|c| format!("delivery commit {c}")),
                e.pull_request
                    .as_deref()
                    .map(|p| format!("pull request {p}")),
                e.cluster.as_deref().map(|c| match e.namespace.as_deref() {
                    // Empty for a cluster-scoped object.
                    Some(ns) if !ns.is_empty() => format!("{c}/{ns}"),
                    _ => c.to_owned(),
                }),
            ],
        );
        match rows.iter_mut().find(|r| r.0 == e.environment) {
            Some(row) => {
                if e.last_seen > row.2 {
                    row.2.clone_from(&e.last_seen);
                }
                row.3.push(how);
            }
            None => rows.push((
                e.environment.clone(),
                e.first_seen.clone(),
                e.last_seen.clone(),
                vec![how],
            )),
        }
    }
    rows.into_iter()
        .map(|(name, first, last, ways)| EnvironmentRow {
            name,
            first_seen: when(&first),
            first_seen_at: first,
            last_seen: when(&last),
            via: ways.join("; "),
        })
        .collect()
}

/// `2026-11-01T10:00:00.000000Z` → `2026-11-01 10:00:00 UTC`; anything else as it is.
pub(super) fn when(time: &str) -> String {
    match time.parse::<jiff::Timestamp>() {
        Ok(t) => t.strftime("%Y-%m-%d %H:%M:%S UTC").to_string(),
        Err(_) => time.to_owned(),
    }
}

/// The CSS class of a decision or outcome badge (a closed set: recorded values are not trusted
/// as class names).
fn badge(word: &str) -> &'static str {
    match word {
        "allow" | "allowed" | "admitted" => "allow",
        "deny" | "denied" | "rejected" => "deny",
        "error" => "error",
        _ => "other",
    }
}

fn via(how: &str, details: &[Option<String>]) -> String {
    std::iter::once(how.to_owned())
        .chain(details.iter().flatten().cloned())
        .filter(|s| !s.is_empty())
        .collect::<Vec<_>>()
        .join(" · ")
}

fn or_dash(value: Option<&str>) -> String {
    value.unwrap_or("—").to_owned()
}

fn short_digest(digest: &str) -> String {
    match digest.split_once(':') {
        Some((alg, hex)) if hex.chars().count() > 12 => {
            format!("{alg}:{}…", hex.chars().take(12).collect::<String>())
        }
        _ => digest.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_shown_in_utc_to_the_second() {
        assert_eq!(
            when("2026-11-01T10:00:00.000000Z"),
            "2026-11-01 10:00:00 UTC"
        );
        assert_eq!(when("yesterday"), "yesterday");
    }

    #[test]
    fn an_environment_reached_twice_is_one_row() {
        let reached = |env: &str, first: &str, via: &str| EnvironmentReached {
            environment: env.into(),
            first_seen: first.into(),
            last_seen: first.into(),
            via: via.into(),
            commit: None,
            pull_request: None,
            cluster: (via == "admission").then(|| env.to_owned()),
            namespace: (via == "admission").then(|| "shop".to_owned()),
        };
        let rows = timeline(&[
            reached("production", "2026-11-04T10:05:00.000000Z", "admission"),
            reached("dev", "2026-11-02T10:00:00.000000Z", "promotion"),
            reached("production", "2026-11-04T10:00:00.000000Z", "promotion"),
        ]);
        let names: Vec<_> = rows.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(names, ["dev", "production"]);
        let production = &rows[1];
        assert_eq!(production.first_seen, "2026-11-04 10:00:00 UTC");
        assert_eq!(production.last_seen, "2026-11-04 10:05:00 UTC");
        assert_eq!(production.via, "promotion; admission · production/shop");

        // A cluster-scoped object (no namespace) shows the cluster alone.
        let mut scoped = reached("prod-eu", "2026-11-05T10:00:00.000000Z", "admission");
        scoped.namespace = Some(String::new());
        assert_eq!(timeline(&[scoped])[0].via, "admission · prod-eu");
    }

    #[test]
    fn badge_classes_come_from_a_closed_set() {
        assert_eq!(badge("deny"), "deny");
        assert_eq!(badge("\" onmouseover=\"x"), "other");
    }
}
