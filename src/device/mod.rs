//! The device API's operations: registration, identity renewal,
//! deregistration and acknowledgement. Plain async functions over the store
//! and the CA; the HTTP layer only hands them bytes and a peer certificate.

mod callers;
mod replay;
mod service;
pub mod wire;

pub use service::{DeviceService, PeerCertificate};
