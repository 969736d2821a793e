//! The REST API's own response types for what the store keeps as rows:
//! the public contract (and its OpenAPI schema) is declared here, so a
//! column renamed in the store changes nothing a script reads.

use crate::ops::views::{AuditedEvent, InstanceView};
use serde::Serialize;

/// A product instance (a router) as listings return it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ProductInstance {
    /// The instance id given at registration (32 hex digits).
    pub instance_id: String,
    /// `PID:SN`.
    pub udi: String,
    pub pid: String,
    pub sn: String,
    pub hostname: Option<String>,
    pub virtual_account: String,
    /// `AUTHORIZED`, `OUT_OF_COMPLIANCE`, `AUTHORIZATION_EXPIRED`, ...
    pub status: String,
    /// RFC 3339.
    pub registered_at: String,
    /// RFC 3339.
    pub last_contact_at: String,
    /// RFC 3339: when the router renews its authorization.
    pub next_communication: Option<String>,
    /// RFC 3339: when its authorization lapses without contact.
    pub deadline: Option<String>,
    /// On the cloud: the satellite the instance came through (none: direct).
    pub satellite: Option<String>,
}

impl From<InstanceView> for ProductInstance {
    fn from(v: InstanceView) -> Self {
        Self {
            instance_id: v.instance_id,
            udi: v.udi,
            pid: v.pid,
            sn: v.sn,
            hostname: v.hostname,
            virtual_account: v.virtual_account,
            status: v.status,
            registered_at: v.registered_at,
            last_contact_at: v.last_contact_at,
            next_communication: v.next_communication,
            deadline: v.deadline,
            satellite: v.satellite,
        }
    }
}

/// One entry of the event log, with who caused it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Event {
    pub id: i64,
    /// RFC 3339.
    pub at: String,
    /// `registration`, `entitlement`, `compliance`, `sync`, `access`, ...
    pub kind: String,
    /// `Info`, `Minor`, `Major` or `Critical`.
    pub severity: String,
    pub virtual_account: Option<String>,
    /// What the event is about (a UDI, a token prefix, a user).
    pub subject: Option<String>,
    pub message: String,
    /// `user:NAME`, `client:NAME` or `cli:USER`; none for what the
    /// satellite did by itself (devices, jobs, live sync).
    pub actor: Option<String>,
}

impl From<AuditedEvent> for Event {
    fn from(e: AuditedEvent) -> Self {
        Self {
            id: e.id,
            at: e.at,
            kind: e.kind,
            severity: e.severity,
            virtual_account: e.virtual_account,
            subject: e.subject,
            message: e.message,
            actor: e.actor,
        }
    }
}
