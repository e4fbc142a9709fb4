//! `custody verify-bundle`: the sigstore-conformance protocol, plus `--output json`.
//!
//! ```text
//! custody verify-bundle [--staging] --bundle FILE \
//!     (--certificate-identity ID --certificate-oidc-issuer URL | --key KEY.pem) \
//!     [--trusted-root trusted_root.json] (ARTIFACT_FILE | sha256:HEX)
//! ```

use std::io::Read;
use std::path::PathBuf;

use super::identity::IdentityArgs;
use super::{EXIT_ERROR, EXIT_OK, EXIT_REJECTED, Output, err, now, out, read_bounded};
use crate::evidence::parse_bundle;
use crate::limits::Limits;
use crate::reference::Digest;
use crate::verdict::BundleOutcome;
use crate::verify::{ArtifactInput, verify_bundle};

#[derive(Debug, clap::Args)]
pub(super) struct Args {
    /// The Sigstore bundle (JSON).
    #[arg(long, value_name = "FILE")]
    bundle: PathBuf,
    /// The artifact file, or its digest as sha256:<64 hex>.
    #[arg(value_name = "ARTIFACT")]
    artifact: String,
    /// Verify with the Sigstore staging trust root.
    #[arg(long, conflicts_with = "trusted_root")]
    staging: bool,
    /// A trusted_root.json to verify against instead of the embedded production root.
    #[arg(long, value_name = "FILE")]
    trusted_root: Option<PathBuf>,
    #[command(flatten)]
    identity: IdentityArgs,
    /// Output format.
    #[arg(long, value_enum, default_value_t)]
    output: Output,
}

/// The artifact as the core takes it: bytes when small enough, else a streamed digest.
enum Artifact {
    Bytes(Vec<u8>),
    Digest(Digest),
}

fn load_artifact(arg: &str, limits: &Limits) -> Result<Artifact, String> {
    if let Some((algorithm, _)) = arg.split_once(':')
        && matches!(algorithm, "sha256" | "sha384" | "sha512")
        && !std::path::Path::new(arg).exists()
    {
        return arg
            .parse::<Digest>()
            .map(Artifact::Digest)
            .map_err(|e| e.to_string());
    }
    let path = std::path::Path::new(arg);
    let meta = std::fs::metadata(path).map_err(|e| format!("cannot read artifact {arg}: {e}"))?;
    if meta.len() <= limits.max_artifact_in_memory_bytes {
        return read_bounded(
            path,
            limits.max_artifact_in_memory_bytes,
            "artifact",
            "max_artifact_in_memory_bytes",
        )
        .map(Artifact::Bytes);
    }
    // Large artifact: hash while streaming, verify by digest.
    let mut file =
        std::fs::File::open(path).map_err(|e| format!("cannot read artifact {arg}: {e}"))?;
    let mut hasher = aws_lc_rs::digest::Context::new(&aws_lc_rs::digest::SHA256);
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = file
            .read(&mut buf)
            .map_err(|e| format!("cannot read artifact {arg}: {e}"))?;
        if n == 0 {
            break;
        }
        hasher.update(buf.get(..n).unwrap_or_default());
    }
    Digest::from_bytes(
        crate::reference::DigestAlgorithm::Sha256,
        hasher.finish().as_ref(),
    )
    .map(Artifact::Digest)
    .map_err(|e| e.to_string())
}

pub(super) fn run(args: Args) -> u8 {
    let limits = Limits::default();
    let input_error = |msg: String| {
        err(&format!("error: {msg}"));
        EXIT_ERROR
    };

    // Inputs the user controls: any problem here means "could not decide" (exit 2).
    let (policy, key) = match args.identity.load(&limits) {
        Ok(v) => v,
        Err(e) => return input_error(e),
    };
    let trust = match super::trust_root::load(args.staging, args.trusted_root.as_ref(), &limits) {
        Ok(t) => t,
        Err(e) => return input_error(e),
    };
    let bundle_bytes = match read_bounded(
        &args.bundle,
        limits.max_bundle_bytes,
        "bundle",
        "max_bundle_bytes",
    ) {
        Ok(b) => b,
        Err(e) => return input_error(e),
    };
    let artifact = match load_artifact(&args.artifact, &limits) {
        Ok(a) => a,
        Err(e) => return input_error(e),
    };

    // Evidence: anything wrong from here on is a rejection (exit 1).
    let now = now();
    let verified_at = now.to_string();
    let outcome = match parse_bundle(&bundle_bytes, &limits) {
        Err(e) => BundleOutcome::failed(&e.into(), verified_at),
        Ok(parsed) => {
            let input = match &artifact {
                Artifact::Bytes(b) => ArtifactInput::Bytes(b),
                Artifact::Digest(d) => ArtifactInput::Digest(d),
            };
            match verify_bundle(&parsed, input, &trust, key.as_ref(), now, &limits) {
                Err(e) => BundleOutcome::failed(&e, verified_at),
                Ok(facts) => match policy.evaluate(&facts) {
                    Ok(()) => BundleOutcome::verified(facts, verified_at),
                    Err(mismatches) => {
                        BundleOutcome::rejected_by_policy(facts, mismatches, verified_at)
                    }
                },
            }
        }
    };

    match args.output {
        Output::Json | Output::Sarif => out(&outcome.to_json()),
        Output::Text if outcome.is_verified() => out(&outcome.to_text()),
        Output::Text => {}
    }
    if outcome.is_verified() {
        EXIT_OK
    } else {
        // The reason always goes to stderr, as the conformance protocol asks.
        err(&outcome.to_text());
        EXIT_REJECTED
    }
}
