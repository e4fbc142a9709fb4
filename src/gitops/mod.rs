//! The promotion gate for a GitOps delivery repository.
//!
//! A delivery repository holds, per environment, the exact image each environment runs.
//! Promotion dev → staging → production copies the same digest forward; rollback is a revert.
//! This module reads such a repository and says whether a change keeps that promise:
//!
//! * [`yaml`] — a YAML reader that keeps every scalar's position and byte range (for findings
//!   with file:line:column, and for promotion edits that touch only the digest).
//! * [`config`] — `custody-gitops.yaml`: environments in promotion order, their paths, which
//!   ones accept automatic updates, the freeze file.
//! * [`scan`] — finds the image references in Helm values, manifests, kustomize `images:`,
//!   Flux objects, and the lint findings of the delivery rules.
//! * [`git`] — reading revisions through the `git` CLI (bounded, never following symlinks).
//! * [`classify`] — the pure promotion / rollback / auto-update / violation decision.
//! * [`promote`] — minimal text edits that copy digests from one environment to the next.
//! * [`report`] — the check's result and its renderings (text, JSON, SARIF, GitHub, Markdown).
//! * [`retag`] — release tags of one version must name one digest.

pub mod check;
pub mod classify;
pub mod config;
pub mod git;
pub mod promote;
pub mod render;
pub mod report;
pub mod retag;
pub mod scan;
pub mod verifier;
pub mod yaml;
