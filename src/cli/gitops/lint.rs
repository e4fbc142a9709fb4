//! `custody gitops lint [PATH]`: the delivery rules over a work tree.

use std::path::PathBuf;

use super::{ReportOutput, print_report, worktree};
use crate::cli::{EXIT_ERROR, err};
use crate::gitops::report::{CheckReport, REPORT_MEDIA_TYPE};
use crate::gitops::scan;

/// Arguments.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The delivery repository (its root holds custody-gitops.yaml).
    #[arg(default_value = ".")]
    path: PathBuf,
    /// Output format.
    #[arg(long, value_enum, default_value_t)]
    output: ReportOutput,
    /// Also append the Markdown summary to this file (e.g. $GITHUB_STEP_SUMMARY).
    #[arg(long, value_name = "FILE")]
    summary: Option<PathBuf>,
}

/// Runs it: 0 clean (warnings allowed), 1 findings, 2 could not lint.
pub fn run(args: Args) -> u8 {
    let result = (|| {
        let config = worktree::load_config(&args.path)?;
        let files = worktree::read(&args.path, &config)?;
        let scan = scan::scan(&config, &files);
        let mut report = CheckReport {
            media_type: REPORT_MEDIA_TYPE,
            custody_version: crate::VERSION,
            passed: false,
            base: None,
            head: None,
            changes: Vec::new(),
            removed: Vec::new(),
            findings: scan.findings,
            notes: vec![format!(
                "{} files scanned, {} image references",
                scan.files_scanned,
                scan.sites.len()
            )],
            registry_requests: 0,
        };
        report.finish();
        Ok::<_, String>(report)
    })();
    match result {
        Ok(report) => print_report(&report, args.output, args.summary.as_deref()),
        Err(e) => {
            err(&format!("error: {e}"));
            EXIT_ERROR
        }
    }
}
