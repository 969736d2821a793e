//! The operations layer: one module of operations per resource, each taking
//! the caller's identity. The CLI (as the local administrator), the REST API
//! and the portal are thin faces over it, so a role reaches the same things
//! whichever way it comes in. Every operation runs inside the caller's
//! transaction: a refusal changes nothing.

pub mod access;
pub mod accounts;
pub mod alerts;
pub mod backup;
pub mod clients;
pub mod events;
pub mod instances;
pub mod licenses;
pub mod login;

pub mod reports;
mod service;
pub mod sync;
pub mod tokens;
pub mod users;

pub use access::{Action, Caller, Role};
pub use service::{Local, Service};

/// What the operations hand back to read: the store's rows as people see
/// them, named here so that the front ends reach them through this layer.
pub mod views {
    pub use crate::licensing::reports::{EntitlementUsage, ReportSummary};
    pub use crate::notify::Statistics as CallHomeStatistics;
    pub use crate::store::accounts::VirtualAccount;
    pub use crate::store::audit::AuditedEvent;
    pub use crate::store::events::{Event, Severity};
    pub use crate::store::instances::InstanceView;
    pub use crate::store::licenses::License;
    pub use crate::store::tokens::{TokenInfo, ACTIVE as TOKEN_ACTIVE};
    pub use crate::store::users::BOOTSTRAP_ADMIN;

    /// What the sync operations answer.
    pub mod sync {
        pub use crate::sync::cloud::Served;
        pub use crate::sync::live::Synced;
        pub use crate::sync::status::SyncStatus;
        pub use crate::sync::{Applied, Written};
    }
}

use crate::error::Error;
use crate::store::StoreError;

/// What an operation can refuse with, on top of the service's own refusals.
#[derive(Debug, thiserror::Error)]
pub enum OpsError {
    /// No credential, or one that is unknown, expired or revoked.
    #[error("{0}")]
    Unauthenticated(String),
    /// Authenticated, but the role or the virtual accounts do not reach this.
    #[error("{0}")]
    Forbidden(String),
    /// Too many failed logins for one name from one source (or from one
    /// source in all).
    #[error("too many failed logins from {source_addr}; try again in {retry_after} seconds")]
    TooManyAttempts {
        source_addr: String,
        retry_after: i64,
    },
    /// A request body over its limit.
    #[error("{0}")]
    TooLarge(String),
    /// A request body of a type the operation does not read.
    #[error("{0}")]
    UnsupportedMediaType(String),
    #[error(transparent)]
    Service(#[from] Error),
}

impl From<StoreError> for OpsError {
    fn from(e: StoreError) -> Self {
        Self::Service(e.into())
    }
}

pub type Result<T, E = OpsError> = std::result::Result<T, E>;

/// A page request: `limit` -1 (Cisco's "all") becomes the bound.
#[derive(Debug, Clone, Copy)]
pub struct Page {
    pub limit: u32,
    pub offset: u32,
}

/// No listing returns more than this many items at once.
pub const MAX_PAGE: u32 = 1000;

impl Page {
    pub fn new(limit: Option<i64>, offset: Option<i64>) -> Result<Self> {
        let limit = match limit {
            None | Some(-1) => MAX_PAGE,
            Some(n) if (1..=i64::from(MAX_PAGE)).contains(&n) => n as u32,
            Some(n) => {
                return Err(Error::invalid(
                    "limit",
                    format!(
                    "{n} is out of range: give 1 to {MAX_PAGE}, or -1 for all (at most {MAX_PAGE})"
                ),
                )
                .into())
            }
        };
        let offset = match offset {
            None => 0,
            Some(n) if (0..=i64::from(u32::MAX)).contains(&n) => n as u32,
            Some(n) => {
                return Err(Error::invalid(
                    "offset",
                    format!("{n} is out of range: give 0 to {}", u32::MAX),
                )
                .into())
            }
        };
        Ok(Self { limit, offset })
    }

    /// The command line prints whole listings (a person asked for them).
    pub const UNBOUNDED: Page = Page {
        limit: u32::MAX,
        offset: 0,
    };

    pub const ALL: Page = Page {
        limit: MAX_PAGE,
        offset: 0,
    };

    /// This page of an in-memory list.
    pub fn of<T>(self, items: Vec<T>) -> Vec<T> {
        items
            .into_iter()
            .skip(self.offset as usize)
            .take(self.limit as usize)
            .collect()
    }
}
