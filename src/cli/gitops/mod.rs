//! `custody gitops …`: the promotion gate for a delivery repository.

mod check;
mod lint;
mod promote;
mod retag;
mod worktree;

use std::path::Path;

use clap::{Subcommand, ValueEnum};

use super::{EXIT_ERROR, EXIT_OK, EXIT_REJECTED, err, out};
use crate::gitops::render;
use crate::gitops::report::CheckReport;

/// `custody gitops` subcommands.
#[derive(Debug, Subcommand)]
pub enum GitopsCommand {
    /// Check a delivery repository's files against the delivery rules (digest-pinned references,
    /// one reference field, imagePullPolicy, automation only where allowed).
    Lint(lint::Args),
    /// The promotion gate of a pull request: classify every changed image reference
    /// (promotion, rollback, auto-update, violation), enforce same-digest-forward and the
    /// freeze, and verify each digest with the target environment's trust policy.
    Check(Box<check::Args>),
    /// Write a promotion: copy the digests of SRC's files into TGT's with minimal text edits
    /// (comments, order and formatting untouched) and print the pull request's title and body.
    Promote(Box<promote::Args>),
    /// Resolve the environment tags of one release version and fail unless they all name one
    /// digest (release tags are re-tags, never rebuilds).
    RetagCheck(Box<retag::Args>),
}

/// Report formats of lint and check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub enum ReportOutput {
    /// Human-readable text.
    #[default]
    Text,
    /// JSON (docs/gitops.md).
    Json,
    /// SARIF 2.1.0 (code scanning).
    Sarif,
    /// GitHub Actions workflow commands (`::error file=…,line=…::…`).
    Github,
    /// Markdown (job summary, pull-request comment).
    Markdown,
}

/// Runs a `gitops` subcommand; returns the exit status.
pub fn run(cmd: GitopsCommand) -> u8 {
    match cmd {
        GitopsCommand::Lint(args) => lint::run(args),
        GitopsCommand::Check(args) => check::run(*args),
        GitopsCommand::Promote(args) => promote::run(*args),
        GitopsCommand::RetagCheck(args) => retag::run(*args),
    }
}

fn runtime() -> Result<tokio::runtime::Runtime, String> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the async runtime: {e}"))
}

/// Prints a report, appends the Markdown summary if asked; 0 passed, 1 failed, 2 if the summary
/// cannot be written.
fn print_report(report: &CheckReport, output: ReportOutput, summary: Option<&Path>) -> u8 {
    out(&match output {
        ReportOutput::Text => render::text(report),
        ReportOutput::Json => report.to_json(),
        ReportOutput::Sarif => render::sarif(report),
        ReportOutput::Github => render::github(report),
        ReportOutput::Markdown => render::markdown(report),
    });
    if let Some(path) = summary {
        use std::io::Write;
        let written = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .and_then(|mut f| f.write_all(render::markdown(report).as_bytes()));
        if let Err(e) = written {
            err(&format!(
                "error: cannot write the summary to {}: {e}",
                path.display()
            ));
            return EXIT_ERROR;
        }
    }
    if report.passed {
        EXIT_OK
    } else {
        EXIT_REJECTED
    }
}
