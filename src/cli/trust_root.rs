//! `custody trust-root`: what a trust root trusts.

use std::path::PathBuf;

use super::{EXIT_ERROR, EXIT_OK, Output, err, out, read_bounded};
use crate::limits::Limits;
use crate::trust::TrustRoot;

#[derive(Debug, clap::Args)]
pub(super) struct Args {
    /// Use the Sigstore staging root instead of production.
    #[arg(long, conflicts_with = "trusted_root")]
    staging: bool,
    /// A trusted_root.json to inspect (private Sigstore deployments).
    #[arg(long, value_name = "FILE")]
    trusted_root: Option<PathBuf>,
    /// Output format.
    #[arg(long, value_enum, default_value_t)]
    output: Output,
}

/// Loads the trust root the flags select.
pub(super) fn load(
    staging: bool,
    file: Option<&PathBuf>,
    limits: &Limits,
) -> Result<TrustRoot, String> {
    match file {
        Some(path) => {
            let bytes = read_bounded(
                path,
                limits.max_trust_root_bytes,
                "trusted root",
                "max_trust_root_bytes",
            )?;
            TrustRoot::from_json(&path.display().to_string(), &bytes, limits)
                .map_err(|e| e.to_string())
        }
        None if staging => TrustRoot::staging().map_err(|e| e.to_string()),
        None => TrustRoot::production().map_err(|e| e.to_string()),
    }
}

pub(super) fn run(args: Args) -> u8 {
    let limits = Limits::default();
    let root = match load(args.staging, args.trusted_root.as_ref(), &limits) {
        Ok(r) => r,
        Err(e) => {
            err(&format!("error: {e}"));
            return EXIT_ERROR;
        }
    };
    let summary = root.summary();
    match args.output {
        Output::Json | Output::Sarif => {
            out(&serde_json::to_string_pretty(&summary).unwrap_or_default())
        }
        Output::Text => {
            let mut s = format!(
                "trust root {}\ncontent hash {}\n",
                summary.name, summary.content_hash
            );
            let window = |w: &Option<crate::trust::Window>| match w {
                Some(w) => format!("{} .. {}", w.start, w.end.as_deref().unwrap_or("(open)")),
                None => "(always)".to_owned(),
            };
            for ca in &summary.certificate_authorities {
                s.push_str(&format!(
                    "  fulcio CA   {} <{}> valid {}\n",
                    ca.subject,
                    ca.uri,
                    window(&ca.valid_for)
                ));
            }
            for log in &summary.transparency_logs {
                s.push_str(&format!(
                    "  rekor log   {} id {} {} valid {}\n",
                    log.base_url,
                    log.log_id,
                    log.key_details,
                    window(&log.valid_for)
                ));
            }
            for log in &summary.ct_logs {
                s.push_str(&format!(
                    "  CT log      {} id {} valid {}\n",
                    log.base_url,
                    log.log_id,
                    window(&log.valid_for)
                ));
            }
            for tsa in &summary.timestamp_authorities {
                s.push_str(&format!(
                    "  TSA         {} <{}> valid {}\n",
                    tsa.subject,
                    tsa.uri,
                    window(&tsa.valid_for)
                ));
            }
            out(&s);
        }
    }
    EXIT_OK
}
