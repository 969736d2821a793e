//! The REST API's own response types for what the store keeps as rows:
//! the public contract (and its OpenAPI schema) is declared here, so a
//! column renamed in the store changes nothing a script reads. Field
//! names are camelCase, as in Cisco's shapes the API follows; only the
//! OAuth names of RFC 6749 (`access_token`, `client_id`, ...) keep theirs.
//! (The CLI's `--json` is snake_case: that is its own contract.)

use crate::ops::views::{self as reports, sync, AuditedEvent, InstanceView};
use crate::ops::{alerts, clients, licenses, login, users};
use serde::Serialize;

/// A product instance (a router) as listings return it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
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
    /// On the cloud, for a satellite's instance: the status its satellite
    /// last reported (`status` is the cloud's evaluation of its pools).
    pub satellite_status: Option<String>,
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
            satellite_status: v.satellite_status,
        }
    }
}

/// One entry of the event log, with who caused it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
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

/// One license pool (virtual account and entitlement tag), in Cisco's shape.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct LicenseSummary {
    pub license: String,
    /// Units held whose term covers now.
    pub quantity: i64,
    pub in_use: i64,
    /// Held minus in use (negative when short).
    pub available: i64,
    /// `In Compliance` or `Out of Compliance`.
    pub status: String,
    pub virtual_account: String,
    pub license_details: Vec<LicenseDetail>,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct LicenseDetail {
    /// `PERPETUAL` or `TERM`.
    pub license_type: String,
    pub license: String,
    pub quantity: i64,
    /// RFC 3339.
    pub start_date: String,
    /// RFC 3339; none for a perpetual license.
    pub end_date: Option<String>,
}

impl From<licenses::LicenseSummary> for LicenseSummary {
    fn from(s: licenses::LicenseSummary) -> Self {
        Self {
            license: s.license,
            quantity: s.quantity,
            in_use: s.in_use,
            available: s.available,
            status: s.status,
            virtual_account: s.virtual_account,
            license_details: s
                .license_details
                .into_iter()
                .map(|d| LicenseDetail {
                    license_type: d.license_type,
                    license: d.license,
                    quantity: d.quantity,
                    start_date: d.start_date,
                    end_date: d.end_date,
                })
                .collect(),
        }
    }
}

/// A compliance alert, in Cisco's shape.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Alert {
    pub message_type: String,
    /// `Minor` or `Major`.
    pub severity: String,
    /// What raised it: the license (entitlement tag) or the event subject.
    pub source: String,
    pub virtual_account: Option<String>,
    pub message: String,
    /// RFC 3339.
    pub timestamp: String,
}

impl From<alerts::Alert> for Alert {
    fn from(a: alerts::Alert) -> Self {
        Self {
            message_type: a.message_type,
            severity: a.severity.to_string(),
            source: a.source,
            virtual_account: a.virtual_account,
            message: a.message,
            timestamp: a.timestamp,
        }
    }
}

/// What a product instance consumes of one entitlement tag.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct EntitlementUsage {
    pub tag: String,
    pub count: i64,
    /// `AUTHORIZED`, `OUT_OF_COMPLIANCE`, ...
    pub status: String,
}

impl From<reports::EntitlementUsage> for EntitlementUsage {
    fn from(u: reports::EntitlementUsage) -> Self {
        Self {
            tag: u.tag,
            count: u.count,
            status: u.status,
        }
    }
}

/// A stored report, as listings show it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ReportSummary {
    pub id: i64,
    /// `periodic`, `manual` or `warning`.
    pub kind: String,
    /// RFC 3339.
    pub created_at: String,
    pub virtual_account: Option<String>,
    pub summary: String,
}

impl From<reports::ReportSummary> for ReportSummary {
    fn from(r: reports::ReportSummary) -> Self {
        Self {
            id: r.id,
            kind: r.kind,
            created_at: r.created_at,
            virtual_account: r.virtual_account,
            summary: r.summary,
        }
    }
}

/// A user as listings show it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct User {
    pub username: String,
    /// `admin`, `va-admin` or `viewer`.
    pub role: String,
    /// The virtual accounts it reaches; empty: all.
    pub virtual_accounts: Vec<String>,
    /// RFC 3339.
    pub created_at: String,
}

impl From<users::UserView> for User {
    fn from(u: users::UserView) -> Self {
        Self {
            username: u.username,
            role: u.role,
            virtual_accounts: u.virtual_accounts,
            created_at: u.created_at,
        }
    }
}

/// An API client as listings show it (never its secret).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Client {
    pub name: String,
    /// RFC 6749's name, as the token request spells it.
    #[serde(rename = "client_id")]
    pub client_id: String,
    /// `admin`, `va-admin` or `viewer`.
    pub role: String,
    /// The virtual accounts it reaches; empty: all.
    pub virtual_accounts: Vec<String>,
    /// RFC 3339.
    pub created_at: String,
    /// `ACTIVE` or `REVOKED`.
    pub status: String,
}

impl From<clients::ClientView> for Client {
    fn from(k: clients::ClientView) -> Self {
        Self {
            name: k.name,
            client_id: k.client_id,
            role: k.role,
            virtual_accounts: k.virtual_accounts,
            created_at: k.created_at,
            status: k.status.to_string(),
        }
    }
}

/// A client just added: the secret is shown this once.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CreatedClient {
    /// RFC 6749's names, as the token request spells them.
    #[serde(rename = "client_id")]
    pub client_id: String,
    #[serde(rename = "client_secret")]
    pub client_secret: String,
    pub name: String,
    pub role: String,
    pub virtual_accounts: Vec<String>,
}

impl From<clients::CreatedClient> for CreatedClient {
    fn from(k: clients::CreatedClient) -> Self {
        Self {
            client_id: k.client_id,
            client_secret: k.client_secret,
            name: k.name,
            role: k.role,
            virtual_accounts: k.virtual_accounts,
        }
    }
}

/// `/backend/oauth/token`'s answer (RFC 6749 §5.1).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct AccessToken {
    pub access_token: String,
    /// `Bearer`.
    pub token_type: String,
    /// Seconds.
    pub expires_in: i64,
}

impl From<login::Issued> for AccessToken {
    fn from(i: login::Issued) -> Self {
        Self {
            access_token: i.access_token,
            token_type: i.token_type.to_string(),
            expires_in: i.expires_in,
        }
    }
}

/// A bundle written (or sent).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct WrittenBundle {
    pub path: String,
    /// `registration`, `entitlement`, `usage`, `acknowledgement`, ...
    pub kind: String,
    pub from: String,
    pub to: String,
    pub sequence: u64,
    pub sha256: String,
    pub bytes: usize,
    /// Records per file, by name.
    pub counts: serde_json::Value,
}

impl From<sync::Written> for WrittenBundle {
    fn from(w: sync::Written) -> Self {
        Self {
            path: w.path,
            kind: w.kind,
            from: w.from,
            to: w.to,
            sequence: w.sequence,
            sha256: w.sha256,
            bytes: w.bytes,
            counts: w.counts,
        }
    }
}

/// What applying a bundle did.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AppliedBundle {
    pub kind: String,
    pub from: String,
    pub sequence: u64,
    pub sha256: String,
    /// True when this exact bundle had been applied before: nothing changed.
    pub already_applied: bool,
    /// Records per file, by name.
    pub counts: serde_json::Value,
}

impl From<sync::Applied> for AppliedBundle {
    fn from(a: sync::Applied) -> Self {
        Self {
            kind: a.kind,
            from: a.from,
            sequence: a.sequence,
            sha256: a.sha256,
            already_applied: a.already_applied,
            counts: a.counts,
        }
    }
}

/// What one live exchange sent and received.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Synced {
    pub cloud_url: String,
    pub sent: WrittenBundle,
    pub received: AppliedBundle,
    pub millis: u128,
}

impl From<sync::Synced> for Synced {
    fn from(s: sync::Synced) -> Self {
        Self {
            cloud_url: s.cloud_url,
            sent: s.sent.into(),
            received: s.received.into(),
            millis: s.millis,
        }
    }
}

/// What this node knows of its sync with its peer.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SyncStatus {
    /// `connected` or `disconnected`: what the running server does.
    pub mode: String,
    pub cloud_url: Option<String>,
    /// Without credentials.
    pub proxy: Option<String>,
    pub server_running: bool,
    /// Settings the config file changed since the server started (they
    /// apply at its restart).
    pub config_differs: Vec<String>,
    /// Disconnected mode: when the next usage bundle is written (RFC 3339).
    pub next_export: Option<String>,
    pub registered: bool,
    pub satellite_id: Option<String>,
    pub cloud_id: Option<String>,
    /// The cloud's bundle signer this satellite pinned (SHA-256 of its
    /// certificate): what an officer compares `signer.pem` with.
    pub cloud_signer_sha256: Option<String>,
    pub last_export: Option<String>,
    pub last_export_file: Option<String>,
    pub last_import: Option<String>,
    pub sequence_sent: Option<u64>,
    pub sequence_received: Option<u64>,
    pub last_acknowledged: Option<String>,
    /// Days since the cloud last acknowledged usage (since registration if never).
    pub days_since_acknowledged: Option<i64>,
    /// Live sync (connected mode): the last success, the next attempt (the
    /// schedule, or the retry after a failure), the last error.
    pub last_success: Option<String>,
    pub next_attempt: Option<String>,
    pub last_error: Option<String>,
    pub failures: u32,
}

impl From<sync::SyncStatus> for SyncStatus {
    fn from(s: sync::SyncStatus) -> Self {
        Self {
            mode: s.mode,
            cloud_url: s.cloud_url,
            proxy: s.proxy,
            server_running: s.server_running,
            config_differs: s.config_differs,
            next_export: s.next_export,
            registered: s.registered,
            satellite_id: s.satellite_id,
            cloud_id: s.cloud_id,
            cloud_signer_sha256: s.cloud_signer_sha256,
            last_export: s.last_export,
            last_export_file: s.last_export_file,
            last_import: s.last_import,
            sequence_sent: s.sequence_sent,
            sequence_received: s.sequence_received,
            last_acknowledged: s.last_acknowledged,
            days_since_acknowledged: s.days_since_acknowledged,
            last_success: s.last_success,
            next_attempt: s.next_attempt,
            last_error: s.last_error,
            failures: s.failures,
        }
    }
}

/// Which node serves a virtual account, after a change of serving node.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Served {
    pub virtual_account: String,
    /// A satellite's name, or `cloud`.
    pub served_by: String,
    /// The nodes that served it before.
    pub previously: Vec<String>,
}

impl From<sync::Served> for Served {
    fn from(s: sync::Served) -> Self {
        Self {
            virtual_account: s.virtual_account,
            served_by: s.served_by,
            previously: s.previously,
        }
    }
}
