//! Judgement over verified facts.
//!
//! [`crate::verify`] establishes what is cryptographically true; this module alone decides
//! whether that is acceptable. Today that is the command-line identity policy
//! ([`IdentityPolicy`]); the declarative trust-policy file builds on it.

mod identity;

pub use identity::{IdentityPolicy, IdentityPolicyError, Matcher, Mismatch};
