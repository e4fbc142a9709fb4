//! The renderings of a [`CheckReport`]: text for a terminal, SARIF 2.1.0 for code scanning,
//! GitHub Actions workflow commands (inline annotations), and Markdown for a job summary or a
//! pull-request comment.
//!
//! Every function is pure. Image references, file names, messages and certificate facts come
//! from pull-request content and signing certificates, so they are treated as hostile: each
//! rendering escapes them for its medium (terminal control characters, workflow-command
//! delimiters, Markdown table and HTML syntax) so that a crafted value can neither forge output
//! nor break its structure.

use super::classify::ChangeKind;
use super::report::{ChangeReport, CheckReport, VerificationSummary};
use super::scan::{Finding, Severity};

/// Where the rules are documented (the SARIF `helpUri`).
const RULES_DOC: &str = concat!(env!("CARGO_PKG_REPOSITORY"), "/docs/gitops.md");

// ---------------------------------------------------------------------------------------------
// Shared helpers
// ---------------------------------------------------------------------------------------------

/// The change kind as written in the JSON report.
fn kind_name(k: ChangeKind) -> &'static str {
    match k {
        ChangeKind::Promotion => "promotion",
        ChangeKind::Rollback => "rollback",
        ChangeKind::AutoUpdate => "auto-update",
        ChangeKind::Retag => "retag",
        ChangeKind::Violation => "violation",
    }
}

/// What a rule asks for, for the SARIF rule list.
fn rule_description(rule: &str) -> String {
    match rule {
        "not-from-source" => "Only the digest the previous environment runs may be promoted (same digest forward, never a rebuild)",
        "history-unavailable" => "The environment's history must be readable to tell a rollback from a new build",
        "frozen" => "A frozen environment accepts only rollbacks to a digest it ran before",
        "unknown-environment" => "A change must be in an environment named in the GitOps config",
        "reference-digest" => "Image references must be pinned by digest",
        "reference-floating-tag" => "Image references must not carry a floating tag",
        "trust-policy" => "The trust policy must allow the digest for the environment",
        "split-reference" => "An image must be one reference field, not split over repository, tag and digest",
        "auto-update-environment" => "Automatic image updates only in environments that accept them",
        "malformed-reference" => "Image references must parse",
        "unexpected-reference" => "Image references belong in image fields",
        "pull-policy" => "imagePullPolicy must be the configured value",
        "unreadable-file" => "Delivery files must be UTF-8 YAML within the size limit",
        "yaml-syntax" => "Delivery files must parse as YAML",
        "symlink" => "Delivery files must not be symbolic links",
        other => return format!("custody rule {other}"),
    }
    .to_owned()
}

/// Whether the report passes: what it says, and nothing in it contradicts that (a report whose
/// `passed` was not recomputed must not render as a pass).
fn passed(r: &CheckReport) -> bool {
    r.passed
        && r.changes.iter().all(ChangeReport::passed)
        && !r.findings.iter().any(|f| f.severity == Severity::Error)
}

fn plural(n: usize, word: &str) -> String {
    if n == 1 {
        format!("{n} {word}")
    } else {
        format!("{n} {word}s")
    }
}

fn refused(r: &CheckReport) -> usize {
    r.changes.iter().filter(|c| !c.passed()).count()
}

fn severity_name(s: Severity) -> &'static str {
    match s {
        Severity::Error => "error",
        Severity::Warning => "warning",
    }
}

/// `file:line:col`, `file:line` (column 0) or `file` (line 0: the whole file).
fn place(file: &str, line: usize, column: usize) -> String {
    match (line, column) {
        (0, _) => file.to_owned(),
        (l, 0) => format!("{file}:{l}"),
        (l, c) => format!("{file}:{l}:{c}"),
    }
}

/// The verified facts about the build: who signed, from which commit, with which workflow.
fn facts(v: &VerificationSummary) -> Vec<String> {
    let mut out = Vec::new();
    if let Some(s) = &v.signer {
        out.push(match &v.issuer {
            Some(i) => format!("signed by {s} ({i})"),
            None => format!("signed by {s}"),
        });
    }
    if let Some(c) = &v.source_commit {
        out.push(format!("source commit {c}"));
    }
    if let Some(w) = &v.workflow {
        out.push(format!("workflow {w}"));
    }
    out
}

/// `trust policy P for E: allow — facts` or `…: deny — reasons`.
fn verification_line(v: &VerificationSummary) -> String {
    let detail = if v.allowed() {
        facts(v).join(", ")
    } else {
        v.reasons.join("; ")
    };
    format!(
        "trust policy {} for {}: {}{}{}",
        v.policy,
        v.environment,
        v.decision,
        if detail.is_empty() {
            String::new()
        } else {
            format!(" — {detail}")
        },
        if v.cached { " (cached verdict)" } else { "" }
    )
}

/// The reference without its digest (the digest has its own column).
fn image_name(reference: &str) -> &str {
    reference.split_once('@').map_or(reference, |(n, _)| n)
}

/// `sha256:` and the first 12 hex digits; anything else as it is.
fn short_digest(d: &str) -> &str {
    match d.strip_prefix("sha256:") {
        Some(hex) if hex.len() > 12 && hex.is_char_boundary(12) => d.get(..7 + 12).unwrap_or(d),
        _ => d,
    }
}

/// The first 12 characters of a commit id.
fn short_commit(c: &str) -> &str {
    if c.len() > 12 && c.is_char_boundary(12) {
        c.get(..12).unwrap_or(c)
    } else {
        c
    }
}

// ---------------------------------------------------------------------------------------------
// Text
// ---------------------------------------------------------------------------------------------

/// Terminal-safe: control characters (escape sequences, carriage returns, newlines) are shown
/// escaped, so a crafted value cannot rewrite the terminal or forge a line of the report.
fn term(s: &str) -> String {
    if !s.chars().any(char::is_control) {
        return s.to_owned();
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

/// The report for a terminal: the headline, one block per change, the findings, the notes.
pub fn text(r: &CheckReport) -> String {
    let n_refused = refused(r);
    let mut out = if passed(r) {
        format!(
            "PASS: {} allowed, {}\n",
            plural(r.changes.len(), "change"),
            plural(r.findings.len(), "finding")
        )
    } else {
        format!(
            "FAIL: {n_refused} of {} refused, {}\n",
            plural(r.changes.len(), "change"),
            plural(r.findings.len(), "finding")
        )
    };
    for c in &r.changes {
        out.push('\n');
        out.push_str(&format!(
            "{}  {}  {} ({})\n",
            term(&c.environment),
            term(&place(&c.file, c.line, c.column)),
            kind_name(c.kind),
            term(&c.label)
        ));
        out.push_str(&format!(
            "  {} → {}\n",
            c.previous.as_deref().map_or_else(|| "(new)".into(), term),
            term(&c.reference)
        ));
        match &c.verification {
            Some(v) => out.push_str(&format!("  {}\n", term(&verification_line(v)))),
            None => out.push_str("  trust policy: not asked (no digest to verify)\n"),
        }
        for p in &c.problems {
            out.push_str(&format!("  ✗ [{}] {}\n", term(&p.rule), term(&p.message)));
        }
    }
    if !r.findings.is_empty() {
        out.push('\n');
    }
    for f in &r.findings {
        out.push_str(&format!(
            "{}: {}[{}]: {} (fix: {})\n",
            term(&place(&f.file, f.line, f.column)),
            severity_name(f.severity),
            term(f.rule),
            term(&f.message),
            term(&f.fix)
        ));
    }
    if !r.removed.is_empty() || !r.notes.is_empty() {
        out.push('\n');
    }
    for x in &r.removed {
        out.push_str(&format!("removed (not checked): {}\n", term(x)));
    }
    for n in &r.notes {
        out.push_str(&format!("note: {}\n", term(n)));
    }
    out.push('\n');
    if let (Some(b), Some(h)) = (&r.base, &r.head) {
        out.push_str(&format!("base {} → head {}\n", term(b), term(h)));
    }
    out.push_str(&format!("registry requests: {}\n", r.registry_requests));
    out
}

// ---------------------------------------------------------------------------------------------
// SARIF
// ---------------------------------------------------------------------------------------------

/// A repository-relative path as a URI reference: unreserved characters, `/` and the harmless
/// sub-delimiters stay; everything else (space, `%`, `#`, `?`, `:`, non-ASCII) is
/// percent-encoded. `:` is encoded so a first segment never reads as a URI scheme.
fn uri(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    for b in path.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~/!$&'()*+,;=@".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn sarif_location(file: &str, line: usize, column: usize, key: Option<&str>) -> serde_json::Value {
    let mut physical = serde_json::json!({
        "artifactLocation": {"uri": uri(file), "uriBaseId": "%SRCROOT%"},
    });
    if line > 0 {
        let mut region = serde_json::json!({"startLine": line});
        if column > 0 {
            region["startColumn"] = column.into();
        }
        physical["region"] = region;
    }
    let mut location = serde_json::json!({"physicalLocation": physical});
    if let Some(k) = key.filter(|k| !k.is_empty()) {
        location["logicalLocations"] =
            serde_json::json!([{"fullyQualifiedName": k, "kind": "member"}]);
    }
    location
}

/// SARIF 2.1.0 for code scanning: one result per refused change's problem (level `error`, at
/// the changed line) and one per finding (its severity), rules listed once each.
pub fn sarif(r: &CheckReport) -> String {
    let mut rules: Vec<serde_json::Value> = Vec::new();
    let mut rule_index = |id: &str| -> usize {
        if let Some(i) = rules.iter().position(|x| x["id"] == id) {
            return i;
        }
        rules.push(serde_json::json!({
            "id": id,
            "name": id,
            "shortDescription": {"text": rule_description(id)},
            "helpUri": RULES_DOC,
        }));
        rules.len() - 1
    };
    let mut results = Vec::new();
    for c in &r.changes {
        for p in &c.problems {
            results.push(serde_json::json!({
                "ruleId": p.rule,
                "ruleIndex": rule_index(&p.rule),
                "level": "error",
                "message": {"text": p.message},
                "locations": [sarif_location(&c.file, c.line, c.column, Some(c.key.as_str()))],
                "properties": {
                    "environment": c.environment,
                    "kind": kind_name(c.kind),
                    "label": c.label,
                    "previous": c.previous,
                    "reference": c.reference,
                    "digest": c.digest,
                    "policy": c.verification.as_ref().map(|v| &v.policy),
                    "policyRule": c.verification.as_ref().and_then(|v| v.rule.as_ref()),
                    "decision": c.verification.as_ref().map(|v| &v.decision),
                },
            }));
        }
    }
    for f in &r.findings {
        results.push(sarif_finding(f, rule_index(f.rule)));
    }
    let doc = serde_json::json!({
        "version": "2.1.0",
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "runs": [{
            "tool": {"driver": {
                "name": "custody",
                "version": crate::VERSION,
                "informationUri": env!("CARGO_PKG_REPOSITORY"),
                "rules": rules,
            }},
            "originalUriBaseIds": {"%SRCROOT%": {"description": {"text": "the root of the delivery repository"}}},
            "results": results,
            "properties": {
                "passed": passed(r),
                "base": r.base,
                "head": r.head,
                "changes": r.changes.len(),
                "removed": r.removed,
                "notes": r.notes,
                "registryRequests": r.registry_requests,
            },
        }],
    });
    serde_json::to_string_pretty(&doc).unwrap_or_default()
}

fn sarif_finding(f: &Finding, index: usize) -> serde_json::Value {
    serde_json::json!({
        "ruleId": f.rule,
        "ruleIndex": index,
        "level": severity_name(f.severity),
        "message": {"text": format!("{} (fix: {})", f.message, f.fix)},
        "locations": [sarif_location(&f.file, f.line, f.column, None)],
        "properties": {"fix": f.fix},
    })
}

// ---------------------------------------------------------------------------------------------
// GitHub Actions workflow commands
// ---------------------------------------------------------------------------------------------

/// A workflow command's message (the toolkit's `escapeData`).
fn gh_data(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '%' => out.push_str("%25"),
            '\r' => out.push_str("%0D"),
            '\n' => out.push_str("%0A"),
            c => out.push(c),
        }
    }
    out
}

/// A workflow command's property value (the toolkit's `escapeProperty`).
fn gh_property(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '%' => out.push_str("%25"),
            '\r' => out.push_str("%0D"),
            '\n' => out.push_str("%0A"),
            ':' => out.push_str("%3A"),
            ',' => out.push_str("%2C"),
            c => out.push(c),
        }
    }
    out
}

/// `::command file=F,line=L,col=C,title=T::message`; line 0 (the whole file) omits line and
/// column, column 0 omits the column, no file omits all three.
fn gh_command(
    command: &str,
    at: Option<(&str, usize, usize)>,
    title: &str,
    message: &str,
) -> String {
    let mut props = Vec::new();
    if let Some((file, line, column)) = at {
        props.push(format!("file={}", gh_property(file)));
        if line > 0 {
            props.push(format!("line={line}"));
            if column > 0 {
                props.push(format!("col={column}"));
            }
        }
    }
    props.push(format!("title={}", gh_property(title)));
    format!("::{command} {}::{}\n", props.join(","), gh_data(message))
}

/// GitHub Actions workflow commands, one per line: an `::error` per refused change's problem
/// and per error finding, a `::warning` per warning, a `::notice` per passing change (so
/// promotions and labelled rollbacks show inline) and per note.
pub fn github(r: &CheckReport) -> String {
    let mut out = String::new();
    for c in &r.changes {
        let at = Some((c.file.as_str(), c.line, c.column));
        if c.passed() {
            let mut message = format!(
                "{}: {} {} → {}",
                c.label,
                c.environment,
                c.previous.as_deref().unwrap_or("(new)"),
                c.reference
            );
            if let Some(v) = &c.verification {
                message.push_str("; ");
                message.push_str(&verification_line(v));
            }
            out.push_str(&gh_command(
                "notice",
                at,
                &format!("custody {}", kind_name(c.kind)),
                &message,
            ));
        }
        for p in &c.problems {
            out.push_str(&gh_command(
                "error",
                at,
                &format!("custody {}", p.rule),
                &p.message,
            ));
        }
    }
    for f in &r.findings {
        out.push_str(&gh_command(
            severity_name(f.severity),
            Some((f.file.as_str(), f.line, f.column)),
            &format!("custody {}", f.rule),
            &format!("{} (fix: {})", f.message, f.fix),
        ));
    }
    for n in &r.notes {
        out.push_str(&gh_command("notice", None, "custody note", n));
    }
    out
}

// ---------------------------------------------------------------------------------------------
// Markdown
// ---------------------------------------------------------------------------------------------

/// Text for a Markdown table cell or list item: `|` and the inline Markdown punctuation are
/// backslash-escaped (the backslash itself first, so `\|` in a value cannot unescape our
/// escape), HTML `<`, `>`, `&` become entities, and line breaks and other control characters
/// become spaces (a newline would end the row or the list item).
fn md(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\\' | '|' | '`' | '*' | '_' | '[' | ']' => {
                out.push('\\');
                out.push(c);
            }
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            c if c.is_control() => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

/// Text for a double-quoted HTML attribute inside a table cell: entities only (no `|` or
/// backslash left for the table parser to act on).
fn md_attr(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '|' => out.push_str("&#124;"),
            '\\' => out.push_str("&#92;"),
            '`' => out.push_str("&#96;"),
            c if c.is_control() => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

/// `<code>value</code>`, escaped.
fn code(s: &str) -> String {
    format!("<code>{}</code>", md(s))
}

/// `<code title="full">short</code>`, or plain [`code`] when nothing was shortened.
fn code_short(full: &str, short: &str) -> String {
    if short == full {
        code(full)
    } else {
        format!("<code title=\"{}\">{}</code>", md_attr(full), md(short))
    }
}

fn md_row(c: &ChangeReport) -> String {
    const NONE: &str = "—";
    let v = c.verification.as_ref();
    let digest = c
        .digest
        .as_deref()
        .map_or_else(|| NONE.into(), |d| code_short(d, short_digest(d)));
    let signer = v.and_then(|v| v.signer.as_deref()).map_or_else(
        || NONE.into(),
        |s| match v.and_then(|v| v.issuer.as_deref()) {
            Some(i) => format!("<code title=\"issuer {}\">{}</code>", md_attr(i), md(s)),
            None => code(s),
        },
    );
    let commit = v
        .and_then(|v| v.source_commit.as_deref())
        .map_or_else(|| NONE.into(), |s| code_short(s, short_commit(s)));
    let workflow = v
        .and_then(|v| v.workflow.as_deref())
        .map_or_else(|| NONE.into(), code);
    let result = if c.passed() {
        "✅ allowed".to_owned()
    } else {
        let mut rules: Vec<&str> = Vec::new();
        for p in &c.problems {
            if !rules.contains(&p.rule.as_str()) {
                rules.push(&p.rule);
            }
        }
        format!(
            "❌ refused: {}",
            rules.iter().map(|r| code(r)).collect::<Vec<_>>().join(", ")
        )
    };
    format!(
        "| {} | {} | {} | {digest} | {signer} | {commit} | {workflow} | {result} |\n",
        md(&c.environment),
        code(image_name(&c.reference)),
        md(&c.label),
    )
}

/// A job summary (`$GITHUB_STEP_SUMMARY`) or pull-request comment: the verdict, a table of the
/// changes with who built what from which commit, what was refused and why, the findings,
/// the notes, and the revisions in a details block.
pub fn markdown(r: &CheckReport) -> String {
    let ok = passed(r);
    let n_refused = refused(r);
    let errors = r
        .findings
        .iter()
        .filter(|f| f.severity == Severity::Error)
        .count();
    let mut out = if ok {
        "## ✅ custody: promotion check passed\n\n".to_owned()
    } else {
        "## ❌ custody: promotion check failed\n\n".to_owned()
    };
    let findings = if r.findings.is_empty() {
        "no findings".to_owned()
    } else {
        format!(
            "{} ({} error{}, {} warning{})",
            plural(r.findings.len(), "finding"),
            errors,
            if errors == 1 { "" } else { "s" },
            r.findings.len() - errors,
            if r.findings.len() - errors == 1 {
                ""
            } else {
                "s"
            }
        )
    };
    out.push_str(&if ok {
        format!(
            "{} allowed, {findings}.\n\n",
            plural(r.changes.len(), "change")
        )
    } else {
        format!(
            "{n_refused} of {} refused, {findings}.\n\n",
            plural(r.changes.len(), "change")
        )
    });
    if r.changes.is_empty() {
        out.push_str("No image reference changed.\n\n");
    } else {
        out.push_str(
            "| Environment | Image | Change | Digest | Signer | Source commit | Workflow | Result |\n",
        );
        out.push_str("|---|---|---|---|---|---|---|---|\n");
        for c in &r.changes {
            out.push_str(&md_row(c));
        }
        out.push('\n');
    }
    if n_refused > 0 {
        out.push_str("### Refused\n\n");
        for c in r.changes.iter().filter(|c| !c.passed()) {
            for p in &c.problems {
                out.push_str(&format!(
                    "- **{}** {} {}: {}\n",
                    md(&c.environment),
                    code(&place(&c.file, c.line, c.column)),
                    code(&p.rule),
                    md(&p.message)
                ));
            }
            if let Some(v) = c.verification.as_ref().filter(|v| !v.allowed()) {
                for reason in &v.reasons {
                    out.push_str(&format!(
                        "  - trust policy {}: {}\n",
                        code(&v.policy),
                        md(reason)
                    ));
                }
            }
        }
        out.push('\n');
    }
    if !r.findings.is_empty() {
        out.push_str("### Findings\n\n");
        for f in &r.findings {
            out.push_str(&format!(
                "- {} {} {} at {}: {} — fix: {}\n",
                match f.severity {
                    Severity::Error => "❌",
                    Severity::Warning => "⚠️",
                },
                severity_name(f.severity),
                code(f.rule),
                code(&place(&f.file, f.line, 0)),
                md(&f.message),
                md(&f.fix)
            ));
        }
        out.push('\n');
    }
    if !r.notes.is_empty() {
        out.push_str("### Notes\n\n");
        for n in &r.notes {
            out.push_str(&format!("- {}\n", md(n)));
        }
        out.push('\n');
    }
    out.push_str("<details><summary>Details</summary>\n\n");
    out.push_str(&format!(
        "- base: {}\n- head: {}\n",
        r.base.as_deref().map_or_else(|| "—".into(), code),
        r.head.as_deref().map_or_else(|| "—".into(), code)
    ));
    for c in &r.changes {
        out.push_str(&format!(
            "- {} {}: {} → {}{}\n",
            md(&c.environment),
            code(&place(&c.file, c.line, c.column)),
            c.previous.as_deref().map_or_else(|| "(new)".into(), code),
            code(&c.reference),
            c.verification
                .as_ref()
                .map_or_else(String::new, |v| format!(
                    " (policy {}{} {})",
                    code(&v.policy),
                    v.rule
                        .as_deref()
                        .map_or_else(String::new, |x| format!(" rule {}", code(x))),
                    code(&v.policy_hash)
                ))
        ));
    }
    for x in &r.removed {
        out.push_str(&format!("- removed (not checked): {}\n", code(x)));
    }
    out.push_str(&format!(
        "- registry requests: {}\n- custody {}\n\n</details>\n",
        r.registry_requests,
        md(crate::VERSION)
    ));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gitops::classify::Problem;
    use crate::gitops::report::REPORT_MEDIA_TYPE;

    const A: &str = "sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    const B: &str = "sha256:bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";
    const C: &str = "sha256:cccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc";
    const SIGNER: &str =
        "https://github.com/acme/app/.github/workflows/release.yml@refs/heads/main";
    const ISSUER: &str = "https://token.actions.githubusercontent.com";
    const COMMIT: &str = "0123456789abcdef0123456789abcdef01234567";

    fn allow(env: &str) -> VerificationSummary {
        VerificationSummary {
            decision: "allow".into(),
            policy: "acme-prod".into(),
            policy_hash: C.into(),
            environment: env.into(),
            reasons: Vec::new(),
            rule: Some("prod-images".into()),
            promoted_from: Some("staging".into()),
            signer: Some(SIGNER.into()),
            issuer: Some(ISSUER.into()),
            source_commit: Some(COMMIT.into()),
            workflow: Some(".github/workflows/release.yml".into()),
            checked_at: "2026-01-01T00:00:00Z".into(),
            cached: false,
        }
    }

    fn deny(env: &str) -> VerificationSummary {
        VerificationSummary {
            decision: "deny".into(),
            reasons: vec!["no signature from an accepted identity".into()],
            signer: None,
            issuer: None,
            source_commit: None,
            workflow: None,
            ..allow(env)
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn change(
        env: &str,
        file: &str,
        line: usize,
        reference: &str,
        kind: ChangeKind,
        label: &str,
        verification: Option<VerificationSummary>,
        problems: Vec<Problem>,
    ) -> ChangeReport {
        ChangeReport {
            environment: env.into(),
            file: file.into(),
            line,
            column: if line == 0 { 0 } else { 10 },
            key: "[0].image.ref".into(),
            previous: Some(format!("registry.example/acme/app@{A}")),
            digest: reference.split_once('@').map(|(_, d)| d.to_owned()),
            reference: reference.into(),
            kind,
            label: label.into(),
            source_environment: None,
            rollback_to: None,
            verification,
            problems,
        }
    }

    fn report(changes: Vec<ChangeReport>, findings: Vec<Finding>) -> CheckReport {
        let mut r = CheckReport {
            media_type: REPORT_MEDIA_TYPE,
            custody_version: crate::VERSION,
            passed: false,
            base: Some("1111111111111111111111111111111111111111".into()),
            head: Some("2222222222222222222222222222222222222222".into()),
            changes,
            removed: Vec::new(),
            findings,
            notes: Vec::new(),
            registry_requests: 4,
        };
        r.finish();
        r
    }

    fn passing() -> CheckReport {
        let mut r = report(
            vec![
                change(
                    "prod",
                    "env/prod/values.yaml",
                    3,
                    &format!("registry.example/acme/app@{B}"),
                    ChangeKind::Promotion,
                    "promotion from staging",
                    Some(allow("prod")),
                    Vec::new(),
                ),
                change(
                    "staging",
                    "env/staging/values.yaml",
                    7,
                    &format!("registry.example/acme/api@{A}"),
                    ChangeKind::Rollback,
                    "rollback to a digest staging ran before (commit 333333333333), during freeze",
                    Some(allow("staging")),
                    Vec::new(),
                ),
            ],
            Vec::new(),
        );
        r.notes.push("history read from 200 commits".into());
        r
    }

    fn finding(file: &str, line: usize, rule: &'static str, severity: Severity) -> Finding {
        Finding {
            file: file.into(),
            line,
            column: if line == 0 { 0 } else { 5 },
            rule,
            severity,
            message: format!("{rule} message"),
            fix: format!("{rule} fix"),
        }
    }

    const NOT_FROM_SOURCE: &str = "sha256:bbbb is not what staging runs at the head revision";
    const DENIED: &str = "trust policy acme-prod denies it for prod";

    fn failing() -> CheckReport {
        let mut r = report(
            vec![
                change(
                    "prod",
                    "env/prod/values.yaml",
                    3,
                    &format!("registry.example/acme/app@{B}"),
                    ChangeKind::Violation,
                    "refused",
                    Some(allow("prod")),
                    vec![Problem {
                        rule: "not-from-source".into(),
                        message: NOT_FROM_SOURCE.into(),
                    }],
                ),
                change(
                    "prod",
                    "env/prod/api.yaml",
                    12,
                    &format!("registry.example/acme/api@{C}"),
                    ChangeKind::Promotion,
                    "promotion from staging",
                    Some(deny("prod")),
                    vec![Problem {
                        rule: "trust-policy".into(),
                        message: DENIED.into(),
                    }],
                ),
                change(
                    "staging",
                    "env/staging/values.yaml",
                    4,
                    &format!("registry.example/acme/app@{B}"),
                    ChangeKind::Promotion,
                    "promotion from dev",
                    Some(allow("staging")),
                    Vec::new(),
                ),
            ],
            vec![
                finding(
                    "env/prod/worker.yaml",
                    9,
                    "split-reference",
                    Severity::Error,
                ),
                finding(
                    "env/dev/values.yaml",
                    0,
                    "unexpected-reference",
                    Severity::Warning,
                ),
            ],
        );
        r.removed.push(format!("registry.example/acme/old@{A}"));
        r
    }

    // ---- text ----

    #[test]
    fn text_of_a_passing_report() {
        let r = passing();
        assert!(r.passed);
        let t = text(&r);
        assert!(
            t.starts_with("PASS: 2 changes allowed, 0 findings\n"),
            "{t}"
        );
        assert!(
            t.contains("prod  env/prod/values.yaml:3:10  promotion (promotion from staging)\n")
        );
        assert!(t.contains(&format!(
            "  registry.example/acme/app@{A} → registry.example/acme/app@{B}\n"
        )));
        assert!(t.contains(&format!(
            "  trust policy acme-prod for prod: allow — signed by {SIGNER} ({ISSUER}), source commit {COMMIT}, workflow .github/workflows/release.yml\n"
        )));
        assert!(t.contains("rollback (rollback to a digest staging ran before (commit 333333333333), during freeze)"));
        assert!(t.contains("note: history read from 200 commits\n"));
        assert!(t.contains("registry requests: 4\n"));
        assert!(!t.contains("FAIL"));
        assert!(!t.contains('✗'));
        assert!(!t.contains("error["));
        assert!(!t.contains("deny"));
    }

    #[test]
    fn text_of_a_failing_report_names_every_problem_and_finding() {
        let r = failing();
        assert!(!r.passed);
        let t = text(&r);
        assert!(
            t.starts_with("FAIL: 2 of 3 changes refused, 2 findings\n"),
            "{t}"
        );
        assert!(t.contains(&format!("  ✗ [not-from-source] {NOT_FROM_SOURCE}\n")));
        assert!(t.contains(&format!("  ✗ [trust-policy] {DENIED}\n")));
        assert!(t.contains(
            "  trust policy acme-prod for prod: deny — no signature from an accepted identity\n"
        ));
        assert!(t.contains(
            "env/prod/worker.yaml:9:5: error[split-reference]: split-reference message (fix: split-reference fix)\n"
        ));
        // Line 0: the whole file, no ":0".
        assert!(t.contains(
            "env/dev/values.yaml: warning[unexpected-reference]: unexpected-reference message (fix: unexpected-reference fix)\n"
        ));
        assert!(t.contains(&format!(
            "removed (not checked): registry.example/acme/old@{A}\n"
        )));
        assert_eq!(t.matches('✗').count(), 2);
        assert!(!t.contains("PASS"));
        assert!(!t.contains(":0"));
        assert!(!t.contains("error[unexpected-reference]"));
    }

    #[test]
    fn text_does_not_trust_a_stale_passed_flag() {
        let mut r = failing();
        r.passed = true; // not recomputed by the caller
        assert!(text(&r).starts_with("FAIL: 2 of 3 changes refused"));
        assert!(markdown(&r).starts_with("## ❌"));
    }

    #[test]
    fn text_escapes_terminal_control_characters() {
        let mut r = failing();
        r.changes[0].problems[0].message = "evil\u{1b}[2J\nPASS: forged".into();
        let t = text(&r);
        assert!(!t.contains('\u{1b}'));
        assert!(!t.contains("\nPASS: forged"));
        assert!(t.contains(r"evil\u{1b}[2J\nPASS: forged"));
    }

    // ---- SARIF ----

    fn sarif_json(r: &CheckReport) -> serde_json::Value {
        serde_json::from_str(&sarif(r)).expect("SARIF is JSON")
    }

    #[test]
    fn sarif_has_one_result_per_problem_and_finding() {
        let s = sarif_json(&failing());
        assert_eq!(s["version"], "2.1.0");
        let run = &s["runs"][0];
        let driver = &run["tool"]["driver"];
        assert_eq!(driver["name"], "custody");
        assert_eq!(driver["version"], crate::VERSION);
        assert!(
            driver["informationUri"]
                .as_str()
                .unwrap()
                .starts_with("https://")
        );
        let results = run["results"].as_array().unwrap();
        assert_eq!(results.len(), 4);
        let ids: Vec<&str> = results
            .iter()
            .map(|x| x["ruleId"].as_str().unwrap())
            .collect();
        assert_eq!(
            ids,
            [
                "not-from-source",
                "trust-policy",
                "split-reference",
                "unexpected-reference"
            ]
        );
        let levels: Vec<&str> = results
            .iter()
            .map(|x| x["level"].as_str().unwrap())
            .collect();
        assert_eq!(levels, ["error", "error", "error", "warning"]);
        // The change problem is at the change's line and column, repository-relative.
        let loc = &results[0]["locations"][0]["physicalLocation"];
        assert_eq!(loc["artifactLocation"]["uri"], "env/prod/values.yaml");
        assert_eq!(loc["artifactLocation"]["uriBaseId"], "%SRCROOT%");
        assert_eq!(loc["region"]["startLine"], 3);
        assert_eq!(loc["region"]["startColumn"], 10);
        assert_eq!(results[0]["message"]["text"], NOT_FROM_SOURCE);
        assert_eq!(results[0]["properties"]["environment"], "prod");
        assert_eq!(
            results[1]["locations"][0]["physicalLocation"]["region"]["startLine"],
            12
        );
        assert_eq!(results[1]["message"]["text"], DENIED);
        // The finding's message carries the fix.
        assert_eq!(
            results[2]["message"]["text"],
            "split-reference message (fix: split-reference fix)"
        );
        // Line 0: the whole file, no region.
        let whole = &results[3]["locations"][0]["physicalLocation"];
        assert_eq!(whole["artifactLocation"]["uri"], "env/dev/values.yaml");
        assert!(whole.get("region").is_none());
        // The passing change has no result.
        assert!(!results.iter().any(|x| {
            x["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]
                == "env/staging/values.yaml"
        }));
        // Every ruleIndex points at its rule.
        let rules = driver["rules"].as_array().unwrap();
        for x in results {
            let i = usize::try_from(x["ruleIndex"].as_u64().unwrap()).unwrap();
            assert_eq!(rules[i]["id"], x["ruleId"]);
        }
    }

    #[test]
    fn sarif_lists_each_rule_once() {
        let mut r = failing();
        r.findings.push(finding(
            "env/prod/other.yaml",
            2,
            "split-reference",
            Severity::Error,
        ));
        r.changes[1].problems.push(Problem {
            rule: "not-from-source".into(),
            message: "again".into(),
        });
        let s = sarif_json(&r);
        let rules = s["runs"][0]["tool"]["driver"]["rules"].as_array().unwrap();
        let ids: Vec<&str> = rules.iter().map(|x| x["id"].as_str().unwrap()).collect();
        assert_eq!(
            ids,
            [
                "not-from-source",
                "trust-policy",
                "split-reference",
                "unexpected-reference"
            ]
        );
        for rule in rules {
            assert!(
                !rule["shortDescription"]["text"]
                    .as_str()
                    .unwrap()
                    .is_empty()
            );
        }
        assert_eq!(s["runs"][0]["results"].as_array().unwrap().len(), 6);
    }

    #[test]
    fn sarif_of_a_passing_report_has_no_results() {
        let s = sarif_json(&passing());
        assert_eq!(s["version"], "2.1.0");
        assert!(s["runs"][0]["results"].as_array().unwrap().is_empty());
        assert!(
            s["runs"][0]["tool"]["driver"]["rules"]
                .as_array()
                .unwrap()
                .is_empty()
        );
        assert_eq!(s["runs"][0]["properties"]["passed"], true);
    }

    #[test]
    fn sarif_uris_are_percent_encoded() {
        let mut r = failing();
        r.changes[0].file = "env/prod/my values#1.yaml".into();
        r.findings[0].file = "c:odd/é.yaml".into();
        let s = sarif_json(&r);
        let results = s["runs"][0]["results"].as_array().unwrap();
        let uri_of = |i: usize| {
            results[i]["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]
                .as_str()
                .unwrap()
                .to_owned()
        };
        assert_eq!(uri_of(0), "env/prod/my%20values%231.yaml");
        assert_eq!(uri_of(2), "c%3Aodd/%C3%A9.yaml");
    }

    // ---- GitHub ----

    #[test]
    fn github_commands_for_a_failing_report() {
        let g = github(&failing());
        let lines: Vec<&str> = g.lines().collect();
        assert_eq!(
            lines,
            [
                format!(
                    "::error file=env/prod/values.yaml,line=3,col=10,title=custody not-from-source::{NOT_FROM_SOURCE}"
                )
                .as_str(),
                format!(
                    "::error file=env/prod/api.yaml,line=12,col=10,title=custody trust-policy::{DENIED}"
                )
                .as_str(),
                format!(
                    "::notice file=env/staging/values.yaml,line=4,col=10,title=custody promotion::promotion from dev: staging registry.example/acme/app@{A} → registry.example/acme/app@{B}; trust policy acme-prod for staging: allow — signed by {SIGNER} ({ISSUER}), source commit {COMMIT}, workflow .github/workflows/release.yml"
                )
                .as_str(),
                "::error file=env/prod/worker.yaml,line=9,col=5,title=custody split-reference::split-reference message (fix: split-reference fix)",
                "::warning file=env/dev/values.yaml,title=custody unexpected-reference::unexpected-reference message (fix: unexpected-reference fix)",
            ]
        );
        assert!(g.ends_with('\n'));
        assert!(!g.contains("line=0"));
        assert!(!g.contains("col=0"));
        assert!(!g.contains("::notice file=env/prod/"));
    }

    #[test]
    fn github_escapes_messages_and_properties() {
        let mut r = failing();
        r.changes.truncate(1);
        r.findings.clear();
        r.changes[0].file = "env/prod/a,b:c.yaml".into();
        r.changes[0].problems[0].rule = "odd:rule,1".into();
        r.changes[0].problems[0].message = "a:b,c%\nd\r".into();
        r.changes[0].line = 0;
        r.changes[0].column = 0;
        assert_eq!(
            github(&r),
            "::error file=env/prod/a%2Cb%3Ac.yaml,title=custody odd%3Arule%2C1::a:b,c%25%0Ad%0D\n"
        );
    }

    #[test]
    fn github_omits_the_column_when_it_is_0() {
        let mut r = failing();
        r.changes.clear();
        r.findings.truncate(1);
        r.findings[0].column = 0;
        assert_eq!(
            github(&r),
            "::error file=env/prod/worker.yaml,line=9,title=custody split-reference::split-reference message (fix: split-reference fix)\n"
        );
    }

    #[test]
    fn github_notices_for_a_passing_report() {
        let g = github(&passing());
        let lines: Vec<&str> = g.lines().collect();
        assert_eq!(lines.len(), 3);
        assert!(lines[0].starts_with(
            "::notice file=env/prod/values.yaml,line=3,col=10,title=custody promotion::promotion from staging: prod "
        ));
        assert!(lines[1].starts_with(
            "::notice file=env/staging/values.yaml,line=7,col=10,title=custody rollback::rollback to a digest staging ran before (commit 333333333333), during freeze: staging "
        ));
        assert_eq!(
            lines[2],
            "::notice title=custody note::history read from 200 commits"
        );
        assert!(!g.contains("::error"));
        assert!(!g.contains("::warning"));
        // Every command is one line: nothing in a value can start another.
        assert!(lines.iter().all(|l| l.starts_with("::notice ")));
    }

    // ---- Markdown ----

    /// The cells of a table row, split as GitHub's table parser does (`\x` is an escape).
    fn delimiters(row: &str) -> usize {
        let mut n = 0;
        let mut chars = row.chars();
        while let Some(c) = chars.next() {
            match c {
                '\\' => {
                    chars.next();
                }
                '|' => n += 1,
                _ => {}
            }
        }
        n
    }

    fn table_rows(m: &str) -> Vec<&str> {
        m.lines()
            .filter(|l| l.starts_with("| ") && !l.starts_with("| Environment "))
            .collect()
    }

    #[test]
    fn markdown_of_a_passing_report() {
        let m = markdown(&passing());
        assert!(
            m.starts_with("## ✅ custody: promotion check passed\n"),
            "{m}"
        );
        assert!(m.contains("2 changes allowed, no findings."));
        assert!(m.contains(
            "| Environment | Image | Change | Digest | Signer | Source commit | Workflow | Result |\n|---|---|---|---|---|---|---|---|\n"
        ));
        let rows = table_rows(&m);
        assert_eq!(rows.len(), 2);
        assert!(
            rows.iter()
                .all(|r| delimiters(r) == 9 && r.ends_with("✅ allowed |"))
        );
        // The digest is shortened, the full one is in the title.
        assert!(rows[0].contains(&format!("<code title=\"{B}\">sha256:bbbbbbbbbbbb</code>")));
        assert!(rows[0].contains(
            "<code title=\"0123456789abcdef0123456789abcdef01234567\">0123456789ab</code>"
        ));
        assert!(rows[0].contains("<code>registry.example/acme/app</code>"));
        assert!(m.contains("<details><summary>Details</summary>"));
        assert!(m.contains("- base: <code>1111111111111111111111111111111111111111</code>"));
        assert!(m.contains("- registry requests: 4"));
        assert!(m.contains("### Notes\n\n- history read from 200 commits\n"));
        assert!(!m.contains('❌'));
        assert!(!m.contains("### Refused"));
        assert!(!m.contains("### Findings"));
    }

    #[test]
    fn markdown_of_a_failing_report() {
        let m = markdown(&failing());
        assert!(
            m.starts_with("## ❌ custody: promotion check failed\n"),
            "{m}"
        );
        assert!(m.contains("2 of 3 changes refused, 2 findings (1 error, 1 warning)."));
        let rows = table_rows(&m);
        assert_eq!(rows.len(), 3);
        assert!(rows.iter().all(|r| delimiters(r) == 9));
        assert!(rows[0].ends_with("❌ refused: <code>not-from-source</code> |"));
        assert!(rows[1].ends_with("❌ refused: <code>trust-policy</code> |"));
        assert!(rows[2].ends_with("✅ allowed |"));
        // No signer on the denied digest.
        assert!(rows[1].contains("| — | — | — |"));
        assert!(m.contains(&format!(
            "- **prod** <code>env/prod/values.yaml:3:10</code> <code>not-from-source</code>: {NOT_FROM_SOURCE}\n"
        )));
        assert!(m.contains(&format!("<code>trust-policy</code>: {DENIED}")));
        assert!(m.contains(
            "  - trust policy <code>acme-prod</code>: no signature from an accepted identity"
        ));
        assert!(m.contains("- ❌ error <code>split-reference</code> at <code>env/prod/worker.yaml:9</code>: split-reference message — fix: split-reference fix"));
        assert!(m.contains(
            "- ⚠️ warning <code>unexpected-reference</code> at <code>env/dev/values.yaml</code>"
        ));
        assert!(m.contains(&format!(
            "- removed (not checked): <code>registry.example/acme/old@{A}</code>"
        )));
        assert_eq!(m.matches('✅').count(), 1); // the one allowed change, not the heading
        assert!(!m.contains("passed"));
        assert!(!m.contains("### Notes"));
    }

    #[test]
    fn markdown_escapes_hostile_values() {
        let mut r = failing();
        r.changes[0].reference =
            format!("evil|x<script>alert(1)</script>&\\|\n| injected | row |@{B}");
        r.changes[0].problems[0].message =
            "msg <img src=x onerror=alert(1)> | [link](http://x)".into();
        r.changes[0].verification = Some(VerificationSummary {
            signer: Some("a\"b|<i>".into()),
            issuer: Some("\" onmouseover=\"alert(1)".into()),
            ..allow("prod")
        });
        let m = markdown(&r);
        assert!(!m.contains("<script>"));
        assert!(!m.contains("<img"));
        assert!(!m.contains("<i>"));
        assert!(!m.contains("\" onmouseover"));
        assert!(!m.contains("\n| injected"));
        assert!(m.contains(
            "evil\\|x&lt;script&gt;alert(1)&lt;/script&gt;&amp;\\\\\\| \\| injected \\| row \\|"
        ));
        assert!(m.contains("msg &lt;img src=x onerror=alert(1)&gt; \\| \\[link\\](http://x)"));
        assert!(m.contains("title=\"issuer &quot; onmouseover=&quot;alert(1)\""));
        let rows = table_rows(&m);
        assert_eq!(rows.len(), 3);
        assert!(rows.iter().all(|r| delimiters(r) == 9), "{rows:#?}");
    }

    #[test]
    fn markdown_without_changes() {
        let r = report(Vec::new(), Vec::new());
        let m = markdown(&r);
        assert!(m.starts_with("## ✅"));
        assert!(m.contains("No image reference changed."));
        assert!(!m.contains("| Environment"));
        assert!(text(&r).starts_with("PASS: 0 changes allowed, 0 findings\n"));
        assert_eq!(github(&r), "");
    }

    #[test]
    fn shortening() {
        assert_eq!(short_digest(A), "sha256:aaaaaaaaaaaa");
        assert_eq!(short_digest("sha256:abc"), "sha256:abc");
        assert_eq!(short_digest("md5:abc"), "md5:abc");
        assert_eq!(short_commit(COMMIT), "0123456789ab");
        assert_eq!(short_commit("abc"), "abc");
        assert_eq!(image_name(&format!("r/a:v1@{A}")), "r/a:v1");
        assert_eq!(image_name("r/a:v1"), "r/a:v1");
    }
}
