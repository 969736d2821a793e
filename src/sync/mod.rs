//! Sync between a satellite and its cloud: one signed zip format for the USB
//! stick and for live sync.
//!
//! `bundle` is pure: bytes in, verified contents out (or a refusal naming
//! the rule broken). Peer trust, sequence numbers and applying contents live
//! with the callers that own the database.

pub mod bundle;
