//! The payload files of each bundle kind: plain, pretty-printed JSON that a
//! security officer can read before the stick leaves the site. Times are
//! RFC 3339 UTC.

use crate::licensing::catalog::{Sku, Tag};
use serde::{Deserialize, Serialize};

pub const REGISTRATION: &str = "registration.json";
pub const INSTANCES: &str = "instances.json";
pub const USAGE_HISTORY: &str = "usage_history.json";
pub const REPORTS: &str = "reports.json";
pub const EVENTS: &str = "events.json";
pub const ENTITLEMENTS: &str = "entitlements.json";
pub const CATALOG: &str = "catalog.json";

/// `registration.json`: a satellite asks its cloud to be registered.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegistrationRequest {
    /// The satellite's configured name (for the cloud operator's eyes).
    pub name: String,
    /// The whole satellite token: proves the request once.
    pub token: String,
    pub software_version: String,
}

/// One product instance in `instances.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Instance {
    pub instance_id: String,
    pub pid: String,
    pub sn: String,
    /// Absent when `sync.send_hostnames` is false.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hostname: Option<String>,
    pub virtual_account: String,
    pub status: String,
    pub registered_at: String,
    pub last_contact_at: String,
    pub entitlements: Vec<Entitlement>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Entitlement {
    pub tag: String,
    pub count: i64,
}

/// One day of one pool in `usage_history.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UsageDay {
    pub day: String,
    pub virtual_account: String,
    pub tag: String,
    pub in_use: i64,
    pub available: i64,
}

/// One report in `reports.json`; `body` is the stored JSON report.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Report {
    pub id: i64,
    pub kind: String,
    pub created_at: String,
    #[serde(default)]
    pub virtual_account: Option<String>,
    pub summary: String,
    pub body: serde_json::Value,
}

/// One event in `events.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Event {
    pub id: i64,
    pub at: String,
    pub kind: String,
    pub severity: String,
    #[serde(default)]
    pub virtual_account: Option<String>,
    #[serde(default)]
    pub subject: Option<String>,
    pub message: String,
}

/// `entitlements.json`: what the cloud holds for the satellite's virtual
/// accounts, and which usage bundle this answers.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Entitlements {
    /// The smart account at the cloud.
    pub account: String,
    /// SHA-256 of the usage (or registration) bundle this acknowledges.
    #[serde(default)]
    pub acknowledges: Option<String>,
    pub virtual_accounts: Vec<VirtualAccountLicenses>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VirtualAccountLicenses {
    pub name: String,
    pub licenses: Vec<License>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct License {
    pub sku: String,
    pub tag: String,
    pub quantity: i64,
    /// `PERPETUAL` or `TERM`.
    pub license_type: String,
    pub start: String,
    #[serde(default)]
    pub end: Option<String>,
}

/// `catalog.json`: SKUs and tags beyond the built-in table.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CatalogAdditions {
    pub tags: Vec<Tag>,
    pub skus: Vec<Sku>,
}

/// Pretty JSON with a trailing newline, as every payload file is written.
pub fn to_file<T: Serialize>(value: &T) -> Vec<u8> {
    // Serializing these plain structs cannot fail (no maps with non-string keys).
    let mut bytes = serde_json::to_vec_pretty(value).unwrap_or_default();
    bytes.push(b'\n');
    bytes
}
