//! custody — a supply-chain provenance verifier.
//!
//! The crate is laid out along the path a verdict takes:
//!
//! ```text
//! reference → trust → evidence → verify → policy → verdict        (pure core: no I/O, no clock)
//!                                                     ↑
//!                                        cli (reads files, reads the clock, prints)
//! ```
//!
//! * [`reference`] — digests and (later) image references and the GitOps reference rules.
//! * [`trust`] — trust roots (`trusted_root.json`, static keys) and their content hashes.
//! * [`evidence`] — size-bounded parsers for Sigstore bundles and in-toto statements.
//! * [`verify`] — cryptographic verification; returns [`verify::VerifiedFacts`] or a typed error.
//! * [`policy`] — judgement over verified facts (identity policy today).
//! * [`verdict`] — renderings of outcomes (text, JSON).
//! * [`attest`] — signed verification summaries (SLSA VSA in DSSE) and the admission fast path.
//! * [`cli`] — the command line; the only module that touches files, the clock or stdout.
//!
//! The core modules never read the clock or the environment: time comes in as an argument
//! (see `docs/decisions.md` for the one exception inside the Sigstore crate we build on).

#![forbid(unsafe_code)]
#![deny(unused_must_use)]
#![warn(missing_docs)]

pub mod attest;
pub mod cli;
pub mod engine;
pub mod evidence;
pub mod gitops;
pub mod limits;
pub mod policy;
pub mod reference;
pub mod registry;
pub mod service;
pub mod store;
pub mod trust;
pub mod verdict;
pub mod verify;

pub use limits::Limits;

/// custody's version, as carried in JSON outputs.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
