//! All integration tests in one binary: each extra test binary costs a link.

mod client;
mod fixture;
// The failover test lives apart (tests/ha/), on the same fixture.
#[path = "../ha/failover.rs"]
mod ha_failover;
mod hostile;

mod api;
mod bundle_trust;
mod call_home;
mod cli;
mod concurrency;
mod device_errors;
mod licensing;
mod migrate;
mod operator;
mod pair;
mod portal;
mod postgres;
mod production;
mod registration;
mod router;
mod storage;
mod sync;
mod sync_live;
mod walkthrough;
