//! The command line: parses flags, reads files and the clock, calls the core, prints.
//!
//! This is the only module that touches the file system, the clock, stdout and stderr.
//! Exit status: 0 verified, 1 rejected (a judgement), 2 usage or input error (could not decide).

mod attest;
mod gitops;
mod identity;
mod lineage;
mod policy;
mod registry_args;
mod serve;
mod trust_root;
mod verify_bundle;
mod verify_image;

use std::ffi::OsString;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};

/// Exit status for "verified" / "allowed".
pub const EXIT_OK: u8 = 0;
/// Exit status for "rejected" / "denied".
pub const EXIT_REJECTED: u8 = 1;
/// Exit status for usage and input errors.
pub const EXIT_ERROR: u8 = 2;

/// custody: verifies supply-chain evidence offline against pinned trust roots.
#[derive(Debug, Parser)]
#[command(name = "custody", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Verify a Sigstore bundle against an artifact (sigstore-conformance protocol).
    VerifyBundle(Box<verify_bundle::Args>),
    /// Verify an image digest against the signatures and attestations attached to it in its
    /// registry.
    Verify(Box<verify_image::VerifyArgs>),
    /// List every piece of evidence attached to an image digest, without judging it.
    Evidence(verify_image::EvidenceArgs),
    /// Verify an image with a trust policy and sign a SLSA verification summary (DSSE) of the
    /// allow verdict; --push attaches it to the image.
    Attest(Box<attest::Args>),
    /// Show what a trust root trusts, with validity windows and its content hash.
    TrustRoot(trust_root::Args),
    /// Trust policies: lint, test, explain, schema.
    #[command(subcommand)]
    Policy(policy::PolicyCommand),
    /// Serve verdicts over HTTP(S): REST, Kubernetes admission, Gatekeeper, Kyverno.
    Serve(serve::Args),
    /// The promotion gate for a GitOps delivery repository: lint, check, promote, retag-check.
    #[command(subcommand)]
    Gitops(gitops::GitopsCommand),
    /// Lineage from the store: a digest's chain, a commit's builds, an environment at a time,
    /// a signer's admitted images.
    Lineage(Box<lineage::Args>),
}

/// Output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub enum Output {
    /// Human-readable text.
    #[default]
    Text,
    /// JSON (documented in docs/).
    Json,
    /// SARIF 2.1.0 (policy verdicts; other commands print JSON).
    Sarif,
}

/// Runs the CLI with the given arguments (the first is the program name).
pub fn run(args: impl IntoIterator<Item = OsString>) -> ExitCode {
    let cli = match Cli::try_parse_from(args) {
        Ok(cli) => cli,
        Err(e) => {
            // --help and --version are not errors.
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { EXIT_ERROR } else { EXIT_OK });
        }
    };
    let code = match cli.command {
        Command::VerifyBundle(args) => verify_bundle::run(*args),
        Command::Verify(args) => verify_image::run_verify(*args),
        Command::Evidence(args) => verify_image::run_evidence(args),
        Command::Attest(args) => attest::run(*args),
        Command::TrustRoot(args) => trust_root::run(args),
        Command::Policy(cmd) => policy::run(cmd),
        Command::Serve(args) => serve::run(args),
        Command::Gitops(cmd) => gitops::run(cmd),
        Command::Lineage(args) => lineage::run(*args),
    };
    ExitCode::from(code)
}

pub(crate) use crate::engine::files::read_bounded;

/// The current time: the one clock read of a CLI invocation.
#[allow(clippy::disallowed_methods)]
pub(crate) fn now() -> jiff::Timestamp {
    jiff::Timestamp::now()
}

/// Writes a line to stdout, ignoring a closed pipe (`custody … | head` is not an error).
pub(crate) fn out(text: &str) {
    use std::io::Write;
    let mut stdout = std::io::stdout().lock();
    let _ = stdout.write_all(text.as_bytes());
    if !text.ends_with('\n') {
        let _ = stdout.write_all(b"\n");
    }
}

/// Writes a line to stderr.
pub(crate) fn err(text: &str) {
    use std::io::Write;
    let mut stderr = std::io::stderr().lock();
    let _ = stderr.write_all(text.as_bytes());
    if !text.ends_with('\n') {
        let _ = stderr.write_all(b"\n");
    }
}
