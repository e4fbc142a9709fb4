//! OCI registries: fetching manifests, blobs and referrers, and discovering the supply-chain
//! evidence attached to an image digest.
//!
//! This is the only module (with `engine`) that does network I/O. It finds and fetches evidence;
//! it never judges it — verification is [`crate::verify`]'s, on what this module returns.

mod auth;
mod client;
pub mod discovery;
mod error;

pub use auth::Credentials;
pub use client::{Deadline, Fetched, PushedManifest, RegistryClient, RegistryConfig};
pub use error::RegistryError;
