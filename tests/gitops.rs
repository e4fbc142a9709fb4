//! The promotion gate (`custody gitops …`) on real Git repositories made by the `git` CLI and a
//! real OCI registry (Debian's docker-registry) holding images signed by sigstore-js.

// Tests may print and read the clock; the bans are for the library.
#![allow(clippy::disallowed_macros, clippy::disallowed_methods)]

#[path = "gitops/action.rs"]
mod action;
#[path = "gitops/bad_input.rs"]
mod bad_input;
mod common;
#[path = "gitops/lint.rs"]
mod lint;
#[path = "gitops/promote.rs"]
mod promote;
#[path = "gitops/retag.rs"]
mod retag;
#[path = "gitops/scenarios.rs"]
mod scenarios;
#[path = "gitops/support.rs"]
mod support;
