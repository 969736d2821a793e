//! Satellite: an on-premises Smart Licensing satellite and its cloud.
//!
//! The licensing rules live in plain modules (`domain`, `licensing`) over plain
//! types; `store` owns SQLite; `pki` owns certificates; `http` is a thin layer
//! that maps requests to those and errors to responses once.

pub mod api;
pub mod app;
pub mod backup;
pub mod cli;
pub mod clock;
pub mod config;
pub mod device;
pub mod domain;
pub mod error;
pub mod http;
pub mod inventory;
pub mod licensing;
pub mod logging;
pub mod memory;
pub mod metrics;
pub mod notify;
pub mod ops;
pub mod pki;
pub mod portal;
pub mod router;
pub mod serve_lock;
pub mod setup;
pub mod store;
pub mod sync;
pub mod time_guard;
