//! Shared test harness: a real registry and a misbehaving proxy.
#![allow(dead_code, clippy::disallowed_methods, clippy::disallowed_macros)]

pub mod proxy;
pub mod registry;
