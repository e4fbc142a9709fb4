//! The chain diagram of a lineage page, laid out on the server: source → build → artifact →
//! evidence → environments, as boxes and arrows for an inline SVG (the template draws them; every
//! string in it goes through askama's escaping).
//!
//! Pure layout: no I/O, no store types. Long values (digests, commits, URLs) are shortened to fit
//! a box; the full value is the box's tooltip and is printed in the tables under the diagram.

/// What the diagram shows, already chosen from the lineage.
#[derive(Debug, Default)]
pub(super) struct Chain {
    /// Source repository, if a build was recorded.
    pub(super) repository: Option<String>,
    /// Source commit.
    pub(super) commit: Option<String>,
    /// Source ref (branch or tag).
    pub(super) reference: Option<String>,
    /// Build workflow.
    pub(super) workflow: Option<String>,
    /// Build run.
    pub(super) run: Option<String>,
    /// The artifact's digest.
    pub(super) digest: String,
    /// One image name it was seen under.
    pub(super) image: Option<String>,
    /// Signer identity.
    pub(super) signer: Option<String>,
    /// Signer's OIDC issuer.
    pub(super) issuer: Option<String>,
    /// Transparency-log entries recorded.
    pub(super) log_entries: usize,
    /// SBOMs recorded.
    pub(super) sboms: usize,
    /// Environments reached, in the order reached, with when.
    pub(super) environments: Vec<(String, String)>,
}

/// A laid-out diagram (SVG user units).
#[derive(Debug)]
pub(super) struct Diagram {
    /// Width of the view box.
    pub(super) width: u32,
    /// Height of the view box.
    pub(super) height: u32,
    /// Boxes, left to right, then the environments top to bottom.
    pub(super) nodes: Vec<Node>,
    /// Arrows between boxes.
    pub(super) arrows: Vec<Arrow>,
}

/// One box.
#[derive(Debug)]
pub(super) struct Node {
    /// Which step (`source`, `build`, `artifact`, `evidence`, `environment`): CSS class and test hook.
    pub(super) step: &'static str,
    /// Drawn dashed: the step was not recorded.
    pub(super) missing: bool,
    /// Left edge.
    pub(super) x: u32,
    /// Top edge.
    pub(super) y: u32,
    /// Width.
    pub(super) w: u32,
    /// Height.
    pub(super) h: u32,
    /// The bold first line.
    pub(super) heading: String,
    /// Further lines, with their baselines.
    pub(super) lines: Vec<Line>,
    /// Full values (the tooltip).
    pub(super) tooltip: String,
}

/// A line of text in a box.
#[derive(Debug)]
pub(super) struct Line {
    /// Baseline.
    pub(super) y: u32,
    /// Text (already shortened to fit).
    pub(super) text: String,
}

/// An arrow from (x1, y1) to (x2, y2).
#[derive(Debug)]
pub(super) struct Arrow {
    /// Start x.
    pub(super) x1: u32,
    /// Start y.
    pub(super) y1: u32,
    /// End x (the arrow head).
    pub(super) x2: u32,
    /// End y.
    pub(super) y2: u32,
}

const MARGIN: u32 = 8;
const BOX_W: u32 = 196;
const BOX_H: u32 = 112;
const GAP: u32 = 40;
const ENV_H: u32 = 44;
const ENV_GAP: u32 = 22;
/// Characters of 12 px monospace that fit in a box with its padding.
const FIT: usize = 25;
/// Environments drawn; more are summed up in a last box.
const MAX_ENVIRONMENTS: usize = 8;

/// Lays out `chain`.
pub(super) fn layout(chain: &Chain) -> Diagram {
    let mut nodes = Vec::new();
    let mut arrows = Vec::new();
    let column = |i: u32| MARGIN + i * (BOX_W + GAP);

    let source_lines = [
        chain.repository.as_deref().map(short_repository),
        chain
            .commit
            .as_deref()
            .map(|c| format!("@ {}", short_hex(c))),
        chain.reference.clone(),
    ];
    nodes.push(node(
        "source",
        column(0),
        "Source",
        "no build provenance recorded",
        &source_lines,
        [&chain.repository, &chain.commit, &chain.reference],
    ));
    let build_lines = [
        chain.workflow.as_deref().map(short_workflow),
        chain
            .run
            .as_deref()
            .map(|r| format!("run {}", short_run(r))),
    ];
    nodes.push(node(
        "build",
        column(1),
        "Build",
        "no build recorded",
        &build_lines,
        [&chain.workflow, &chain.run, &None],
    ));
    let artifact_lines = [
        Some(short_digest(&chain.digest)),
        chain.image.as_deref().map(|i| last_segment(i).to_owned()),
    ];
    let digest = Some(chain.digest.clone());
    nodes.push(node(
        "artifact",
        column(2),
        "Artifact",
        "",
        &artifact_lines,
        [&digest, &chain.image, &None],
    ));
    let evidence_lines = [
        chain
            .signer
            .as_deref()
            .map(|s| format!("signer {}", short_identity(s))),
        chain
            .issuer
            .as_deref()
            .map(|i| format!("issuer {}", host(i))),
        (chain.log_entries > 0).then(|| plural(chain.log_entries, "log entry", "log entries")),
        (chain.sboms > 0).then(|| plural(chain.sboms, "SBOM", "SBOMs")),
    ];
    nodes.push(node(
        "evidence",
        column(3),
        "Signatures & evidence",
        "no signature recorded",
        &evidence_lines,
        [&chain.signer, &chain.issuer, &None],
    ));
    for i in 0..3 {
        let y = MARGIN + BOX_H / 2;
        arrows.push(Arrow {
            x1: column(i) + BOX_W,
            y1: y,
            x2: column(i + 1),
            y2: y,
        });
    }

    // The environments, stacked in the last column in the order reached.
    let x = column(4);
    let shown = chain.environments.len().min(MAX_ENVIRONMENTS);
    let mut y = MARGIN;
    if chain.environments.is_empty() {
        nodes.push(Node {
            step: "environment",
            missing: true,
            x,
            y,
            w: BOX_W,
            h: ENV_H,
            heading: "not deployed".into(),
            lines: vec![Line {
                y: y + 36,
                text: "no promotion or admission".into(),
            }],
            tooltip: "no promotion or admission recorded".into(),
        });
    }
    for (i, (name, when)) in chain.environments.iter().take(shown).enumerate() {
        if i > 0 {
            arrows.push(Arrow {
                x1: x + BOX_W / 2,
                y1: y - ENV_GAP,
                x2: x + BOX_W / 2,
                y2: y,
            });
        }
        nodes.push(Node {
            step: "environment",
            missing: false,
            x,
            y,
            w: BOX_W,
            h: ENV_H,
            heading: fit(name),
            lines: vec![Line {
                y: y + 36,
                text: fit(when),
            }],
            tooltip: format!("{name} — first seen {when}"),
        });
        y += ENV_H + ENV_GAP;
    }
    let hidden = chain.environments.len() - shown;
    if hidden > 0 {
        nodes.push(Node {
            step: "environment",
            missing: true,
            x,
            y,
            w: BOX_W,
            h: ENV_H,
            heading: format!("+ {}", plural(hidden, "more", "more")),
            lines: vec![Line {
                y: y + 36,
                text: "see the timeline".into(),
            }],
            tooltip: "more environments: see the timeline".into(),
        });
        y += ENV_H + ENV_GAP;
    }
    arrows.push(Arrow {
        x1: column(3) + BOX_W,
        y1: MARGIN + BOX_H / 2,
        x2: x,
        y2: MARGIN + ENV_H / 2,
    });
    let env_bottom = y.saturating_sub(ENV_GAP).max(MARGIN + ENV_H);
    Diagram {
        width: column(4) + BOX_W + MARGIN,
        height: env_bottom.max(MARGIN + BOX_H) + MARGIN,
        nodes,
        arrows,
    }
}

fn node(
    step: &'static str,
    x: u32,
    heading: &str,
    when_missing: &str,
    lines: &[Option<String>],
    full: [&Option<String>; 3],
) -> Node {
    let present: Vec<&String> = lines.iter().flatten().collect();
    let missing = present.is_empty();
    let texts: Vec<String> = if missing {
        vec![when_missing.to_owned()]
    } else {
        present.iter().map(|t| fit(t)).collect()
    };
    let tooltip = full
        .iter()
        .filter_map(|v| v.as_deref())
        .collect::<Vec<_>>()
        .join("\n");
    Node {
        step,
        missing,
        x,
        y: MARGIN,
        w: BOX_W,
        h: BOX_H,
        heading: heading.to_owned(),
        lines: (0u32..)
            .zip(texts)
            .map(|(i, text)| Line {
                y: MARGIN + 44 + i * 18,
                text,
            })
            .collect(),
        tooltip: if tooltip.is_empty() {
            when_missing.to_owned()
        } else {
            tooltip
        },
    }
}

/// `text` cut to [`FIT`] characters, with an ellipsis when cut.
fn fit(text: &str) -> String {
    if text.chars().count() <= FIT {
        text.to_owned()
    } else {
        let mut s: String = text.chars().take(FIT - 1).collect();
        s.push('…');
        s
    }
}

fn plural(n: usize, one: &str, many: &str) -> String {
    if n == 1 {
        format!("1 {one}")
    } else {
        format!("{n} {many}")
    }
}

/// `sha256:0123456789ab…`.
fn short_digest(digest: &str) -> String {
    match digest.split_once(':') {
        Some((alg, hex)) => format!("{alg}:{}…", hex.chars().take(12).collect::<String>()),
        None => fit(digest),
    }
}

/// The first 12 characters of a commit.
fn short_hex(commit: &str) -> String {
    commit.chars().take(12).collect()
}

/// `https://github.com/acme/app` → `acme/app` (the last two path segments).
fn short_repository(repo: &str) -> String {
    let trimmed = repo.trim_end_matches('/').trim_end_matches(".git");
    let parts: Vec<&str> = trimmed.rsplitn(3, '/').collect();
    match parts.as_slice() {
        [name, owner, _] => format!("{owner}/{name}"),
        _ => trimmed.to_owned(),
    }
}

/// `…/.github/workflows/release.yml@refs/heads/main` → `release.yml`.
fn short_workflow(workflow: &str) -> String {
    let without_ref = workflow.split('@').next().unwrap_or(workflow);
    last_segment(without_ref).to_owned()
}

/// `…/actions/runs/4242/attempts/1` → `4242`; otherwise the last path segment.
fn short_run(run: &str) -> String {
    match run.split_once("/runs/") {
        Some((_, rest)) => fit(rest.split('/').next().unwrap_or(rest)),
        None => fit(last_segment(run)),
    }
}

/// Text after the last `/`.
fn last_segment(s: &str) -> &str {
    s.trim_end_matches('/').rsplit('/').next().unwrap_or(s)
}

/// The host of a URL, or the value itself.
fn host(url: &str) -> &str {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    rest.split('/').next().unwrap_or(rest)
}

/// A signer identity made to fit: a workflow URI becomes its repository and file.
fn short_identity(signer: &str) -> String {
    let without_ref = signer.split('@').next().unwrap_or(signer);
    if let Some((repo, file)) = without_ref.split_once("/.github/workflows/") {
        format!("{}/{file}", short_repository(repo))
    } else {
        without_ref.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chain() -> Chain {
        Chain {
            repository: Some("https://github.com/acme/app".into()),
            commit: Some("5f2c1a7e9b3d4c6a8e0f1b2c3d4e5f6a7b8c9d0e".into()),
            reference: Some("refs/heads/main".into()),
            workflow: Some(
                "https://github.com/acme/app/.github/workflows/release.yml@refs/heads/main".into(),
            ),
            run: Some("https://github.com/acme/app/actions/runs/4242/attempts/1".into()),
            digest: format!("sha256:{}", "ab".repeat(32)),
            image: Some("ghcr.io/acme/app".into()),
            signer: Some(
                "https://github.com/acme/app/.github/workflows/release.yml@refs/heads/main".into(),
            ),
            issuer: Some("https://token.actions.githubusercontent.com".into()),
            log_entries: 2,
            sboms: 1,
            environments: vec![
                ("dev".into(), "2026-11-01 10:00".into()),
                ("staging".into(), "2026-11-02 10:00".into()),
                ("production".into(), "2026-11-03 10:00".into()),
            ],
        }
    }

    #[test]
    fn a_full_chain_has_four_steps_and_one_box_per_environment() {
        let d = layout(&chain());
        let steps: Vec<_> = d.nodes.iter().map(|n| n.step).collect();
        assert_eq!(
            steps,
            [
                "source",
                "build",
                "artifact",
                "evidence",
                "environment",
                "environment",
                "environment"
            ]
        );
        assert!(d.nodes.iter().all(|n| !n.missing));
        // 3 between the steps, 1 into the environments, 2 between environments.
        assert_eq!(d.arrows.len(), 6);
        let text: Vec<&str> = d.nodes[0].lines.iter().map(|l| l.text.as_str()).collect();
        assert_eq!(text, ["acme/app", "@ 5f2c1a7e9b3d", "refs/heads/main"]);
        assert_eq!(d.nodes[1].lines[0].text, "release.yml");
        assert_eq!(d.nodes[1].lines[1].text, "run 4242");
        assert_eq!(d.nodes[2].lines[0].text, "sha256:abababababab…");
        assert_eq!(d.nodes[3].lines[0].text, "signer acme/app/release.…");
        assert_eq!(d.nodes[3].lines[1].text, "issuer token.actions.git…");
        assert_eq!(d.nodes[3].lines[2].text, "2 log entries");
        assert_eq!(d.nodes[3].lines[3].text, "1 SBOM");
    }

    #[test]
    fn everything_fits_inside_the_view_box() {
        let mut c = chain();
        c.environments = (0..20).map(|i| (format!("env-{i}"), "t".into())).collect();
        let d = layout(&c);
        assert_eq!(d.nodes.len(), 4 + MAX_ENVIRONMENTS + 1);
        for n in &d.nodes {
            assert!(n.x + n.w <= d.width && n.y + n.h <= d.height, "{n:?}");
            for l in &n.lines {
                assert!(l.y < n.y + n.h && l.text.chars().count() <= FIT, "{l:?}");
            }
        }
    }

    #[test]
    fn missing_steps_are_drawn_as_missing() {
        let d = layout(&Chain {
            digest: format!("sha256:{}", "cd".repeat(32)),
            ..Chain::default()
        });
        let missing: Vec<_> = d.nodes.iter().map(|n| (n.step, n.missing)).collect();
        assert_eq!(
            missing,
            [
                ("source", true),
                ("build", true),
                ("artifact", false),
                ("evidence", true),
                ("environment", true)
            ]
        );
        assert_eq!(d.nodes[3].lines[0].text, "no signature recorded");
    }

    #[test]
    fn long_and_multibyte_values_are_cut_on_character_boundaries() {
        assert_eq!(fit(&"é".repeat(40)).chars().count(), FIT);
        assert_eq!(short_repository("acme"), "acme");
        assert_eq!(short_repository("https://gitlab.example/a/b/c.git"), "b/c");
        assert_eq!(host("no-scheme/x"), "no-scheme");
    }
}
