//! Synchronisation between satellites and their cloud (DESIGN §2, §8).
//!
//! One bundle format serves the USB stick and (later) the live link:
//! `bundle` seals and verifies, `payload` is what bundles carry, `satellite`
//! and `cloud` are the two ends' rules, `folder` is the import folder and the
//! files written to the export folder, `token` the satellite token.
//!
//! Every exchange is one transaction on each side: a bundle is verified
//! before anything is written, then applied together with its sequence
//! number, so a refused or interrupted import changes nothing.

pub mod bundle;
pub mod cloud;
mod exchange;
pub mod folder;
pub mod live;
pub mod payload;
pub mod satellite;
pub mod service;
pub mod status;
pub mod token;

use crate::clock::rfc3339;
use crate::config::Config;
use crate::error::Error;
use crate::licensing::catalog::Catalog;
use crate::pki::signer::BundleSigner;
use crate::store::StoreError;
use bundle::{BundleError, Rule};
use serde::Serialize;

/// How long a bundle may travel before it is refused as expired.
pub const BUNDLE_LIFETIME: i64 = 90 * 86_400;

#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    /// The bundle was refused; nothing was written.
    #[error("refused: {0}")]
    Refused(#[from] BundleError),
    #[error(transparent)]
    Service(#[from] Error),
    #[error("{path}: {reason}")]
    File { path: String, reason: String },
    /// Live sync could not carry the bundle, or the cloud refused it.
    #[error(transparent)]
    Link(#[from] live::link::LinkError),
}

impl From<StoreError> for SyncError {
    fn from(e: StoreError) -> Self {
        SyncError::Service(e.into())
    }
}

impl From<crate::pki::PkiError> for SyncError {
    fn from(e: crate::pki::PkiError) -> Self {
        SyncError::Service(e.into())
    }
}

pub(crate) fn refuse(rule: Rule, detail: impl Into<String>) -> SyncError {
    SyncError::Refused(BundleError {
        rule,
        detail: detail.into(),
    })
}

/// What one side needs to seal and apply bundles.
pub struct Node<'a> {
    pub config: &'a Config,
    pub catalog: &'a Catalog,
    pub signer: &'a BundleSigner,
    /// SHA-256 of this node's CA certificate: what a satellite token pins.
    pub ca_sha256: &'a str,
    pub now: i64,
    /// Bundles this node writes go to the export folder, to be carried;
    /// false on the live link, where an answer travels in the HTTP response
    /// and is kept in the ledger (a file there would only pile up).
    pub carried: bool,
}

/// A bundle written to the export folder.
#[derive(Debug, Clone, Serialize)]
pub struct Written {
    pub path: String,
    pub kind: String,
    pub from: String,
    pub to: String,
    pub sequence: u64,
    pub sha256: String,
    pub bytes: usize,
    pub counts: serde_json::Value,
}

/// A bundle's counts as a person reads them: "3 licenses, 0 catalog changes".
pub fn counts_line(counts: &serde_json::Value) -> String {
    counts
        .as_object()
        .map(|o| {
            o.iter()
                .map(|(k, v)| format!("{v} {}", k.replace('_', " ")))
                .collect::<Vec<_>>()
                .join(", ")
        })
        .unwrap_or_default()
}

/// What applying a bundle did.
#[derive(Debug, Clone, Serialize)]
pub struct Applied {
    pub kind: String,
    pub from: String,
    pub sequence: u64,
    pub sha256: String,
    /// True when this exact bundle had been applied before: nothing changed.
    pub already_applied: bool,
    pub counts: serde_json::Value,
}

/// A time as bundles write it.
pub(crate) fn stamp(unix: i64) -> String {
    rfc3339(unix)
}

/// Reads an RFC 3339 time from a payload; the error names the file and field.
pub(crate) fn parse_time(file: &str, field: &str, text: &str) -> Result<i64, SyncError> {
    time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
        .map(|t| t.unix_timestamp())
        .map_err(|_| {
            refuse(
                Rule::BadPayload,
                format!("{file}: {field}: {text:?} is not an RFC 3339 time"),
            )
        })
}

/// This node's bundle signer and CA fingerprint, made on first use.
pub struct Keys {
    pub signer: BundleSigner,
    pub ca_sha256: String,
}

impl Keys {
    pub fn load(config: &Config, now: i64) -> Result<Self, SyncError> {
        let ca = crate::pki::CertificateAuthority::load(&config.data_dir)?;
        let signer = BundleSigner::ensure(&config.data_dir, &ca, &config.name, now)?;
        Ok(Self {
            signer,
            ca_sha256: ca.fingerprint_hex()?,
        })
    }

    pub fn node<'a>(&'a self, config: &'a Config, catalog: &'a Catalog, now: i64) -> Node<'a> {
        Node {
            config,
            catalog,
            signer: &self.signer,
            ca_sha256: &self.ca_sha256,
            now,
            carried: true,
        }
    }

    /// [`Keys::node`] answering on the live link: no files.
    pub fn live_node<'a>(&'a self, config: &'a Config, catalog: &'a Catalog, now: i64) -> Node<'a> {
        Node {
            carried: false,
            ..self.node(config, catalog, now)
        }
    }
}

/// The catalog as the database has it now: built in, the config's file, and
/// the additions that came by sync.
pub fn current_catalog(c: &crate::store::Db, config: &Config) -> Result<Catalog, SyncError> {
    let stored = crate::store::sync::catalog_entries(c)?;
    Catalog::load_with_stored(config.catalog.as_deref(), &stored)
        .map_err(|reason| Error::invalid("catalog", reason).into())
}

/// One line in the event log about sync (no virtual account: it is the node's).
pub(crate) fn record(
    c: &crate::store::Db,
    now: i64,
    kind: &str,
    severity: crate::store::events::Severity,
    subject: &str,
    message: String,
) -> Result<(), SyncError> {
    crate::store::events::record(
        c,
        now,
        crate::store::events::NewEvent {
            kind,
            severity,
            virtual_account: None,
            subject: Some(subject),
            message,
        },
    )?;
    Ok(())
}

/// How a trusted signer was recognised, as `bundle show` says it.
/// What this node would do with a bundle, as `bundle show` tells it.
#[derive(Debug, Clone, Serialize)]
pub struct Verdict {
    /// `Some(true)`: `import`/`process` would take it; `Some(false)`: they
    /// would refuse it; `None`: not for this node to take (its own
    /// outgoing bundle).
    pub accepted: Option<bool>,
    /// Taken before: taking it again changes nothing.
    pub already_applied: bool,
    /// The decision in words (the refusal's rule and reason).
    pub words: String,
    /// Sender and recipient by name, where this node knows them.
    pub from_name: Option<String>,
    pub to_name: Option<String>,
}

/// `import` (satellite) or `process` (cloud) itself, run in a transaction
/// that is rolled back and writing no file: the verdict is theirs, replays,
/// revoked satellites and sequence gaps included.
pub fn rehearse(
    db: &mut crate::store::Db,
    config: &Config,
    keys: &Keys,
    opened: &bundle::Opened,
    now: i64,
) -> Result<Verdict, SyncError> {
    crate::store::rehearse(db, |c| {
        let m = &opened.manifest;
        // A satellite sends under the id its cloud gave it.
        let me = match crate::store::sync::upstream(c)? {
            Some(up) if config.role == crate::config::Role::Satellite => up.satellite_id,
            _ => crate::store::sync::node_id(c)?,
        };
        let from_name = name_of(c, config, &me, &m.from)?;
        let to_name = name_of(c, config, &me, &m.to)?;
        if m.from == me {
            let peer = to_name.clone().unwrap_or_else(|| m.to.clone());
            return Ok(Verdict {
                accepted: None,
                already_applied: false,
                words: format!("outgoing: for {peer}"),
                from_name,
                to_name,
            });
        }
        let catalog = current_catalog(c, config)?;
        let node = keys.live_node(config, &catalog, now);
        let outcome = match config.role {
            crate::config::Role::Satellite => {
                satellite::import(c, &node, opened).map(|(a, _)| a.already_applied)
            }
            crate::config::Role::Cloud => {
                cloud::process(c, &node, opened).map(|(p, _)| p.request.already_applied)
            }
        };
        let (accepted, already_applied, words) = match outcome {
            Ok(true) => (
                true,
                true,
                "already applied here: taking it again changes nothing".to_string(),
            ),
            Ok(false) => (
                true,
                false,
                match config.role {
                    crate::config::Role::Satellite => "accepted: `import` would apply it".into(),
                    crate::config::Role::Cloud => {
                        "accepted: `process` would apply it and answer".into()
                    }
                },
            ),
            Err(e) => (false, false, format!("NOT accepted: {e}")),
        };
        Ok(Verdict {
            accepted: Some(accepted),
            already_applied,
            words,
            from_name,
            to_name,
        })
    })
}

/// A node id as a person reads it: `site-a (0f3c…)`; `None` when unknown here.
fn name_of(
    c: &crate::store::Db,
    config: &Config,
    me: &str,
    id: &str,
) -> Result<Option<String>, SyncError> {
    let name = if id == me {
        Some(config.name.clone())
    } else {
        match config.role {
            crate::config::Role::Cloud => {
                crate::store::satellites::find_by_satellite_id(c, id)?.map(|s| s.name)
            }
            crate::config::Role::Satellite => crate::store::sync::upstream(c)?
                .filter(|u| u.cloud_id == id)
                .map(|u| match u.cloud_account {
                    Some(account) => format!("the cloud of {account}"),
                    None => "the cloud".to_string(),
                }),
        }
    };
    Ok(name.map(|n| format!("{n} ({id})")))
}
