//! Judgement over verified facts.
//!
//! [`crate::verify`] establishes what is cryptographically true; this module alone decides
//! whether that is acceptable: the command-line identity policy ([`IdentityPolicy`]) and the
//! declarative trust policy ([`Policy`], loaded from YAML by [`load_policy`], evaluated by
//! [`evaluate()`]). Pure: no I/O (files a policy refers to come through a resolver), no clock.

mod condition;
pub mod document;
mod evaluate;
mod identity;
mod load;

pub use condition::{Condition, ConditionContext, ConditionError};
pub use evaluate::{Candidate, Decision, Judgement, Reason, accepts, evaluate};
pub use identity::{IdentityPolicy, IdentityPolicyError, Matcher, Mismatch};
pub use load::{
    AttestationRule, Authority, CLAIM_NAMES, Diagnostic, KeylessAuthority, MAX_POLICY_BYTES,
    MAX_SUMMARY_AGE, Policy, Resolver, Rule, Severity, SummaryKey, SummaryTrust, TrustRootChoice,
    compile_references, load_policy, parse_document,
};
