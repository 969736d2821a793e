//! The cloud's end of live sync, served on its device listener: the CA
//! certificate (checked by the satellite against its token's pin), the
//! connected registration (the same registration request bundle as on a
//! stick, plus a CSR for the upstream identity certificate), and the usage
//! exchange over mutual TLS, which applies exactly the rules of a carried
//! bundle (`cloud::process`) and answers a repeated bundle the same way.

use crate::clock::Clock;
use crate::config::{Config, Role};
use crate::error::Error;
use crate::notify::Notifier;
use crate::pki::CertificateAuthority;
use crate::store::satellites;
use crate::store::sync as ledger;
use crate::store::Store;
use crate::sync::bundle::{self, Kind, Limits, Opened, Rule};
use crate::sync::{cloud, current_catalog, refuse, stamp, Keys, SyncError};
use base64::Engine;
use std::sync::Arc;

pub struct CloudEnd {
    pub store: Store,
    pub config: Arc<Config>,
    pub clock: Clock,
    pub keys: Arc<Keys>,
    pub ca: Arc<CertificateAuthority>,
    pub notifier: Arc<Notifier>,
}

#[derive(serde::Deserialize)]
struct RegisterRequest {
    csr: String,
    bundle: String,
}

fn require_cloud(config: &Config) -> Result<(), SyncError> {
    if config.role != Role::Cloud {
        return Err(Error::NotFound(
            "this is a satellite: live sync is served by the cloud (`role: cloud`)".into(),
        )
        .into());
    }
    Ok(())
}

fn open(bytes: &[u8], kind: Kind) -> Result<Opened, SyncError> {
    let opened = bundle::open(bytes.to_vec(), &Limits::default())?;
    if opened.manifest.kind != kind {
        return Err(refuse(
            Rule::BadManifest,
            format!(
                "this endpoint takes a {} bundle, not a {} bundle",
                kind.as_str(),
                opened.manifest.kind.as_str()
            ),
        ));
    }
    Ok(opened)
}

/// The answer recorded for a processed bundle (the same bytes every time).
fn recorded_answer(c: &crate::store::Db, sha256: &str) -> Result<Vec<u8>, SyncError> {
    ledger::received(c, sha256)?
        .and_then(|r| r.response)
        .ok_or_else(|| {
            Error::Conflict(format!("bundle {sha256} was applied without an answer")).into()
        })
}

impl CloudEnd {
    pub fn ca_pem(&self) -> Result<String, SyncError> {
        require_cloud(&self.config)?;
        Ok(self.ca.certificate_pem().to_string())
    }

    /// Connected registration: `{"csr", "bundle"}` (base64 registration
    /// request, or usage bundle from an already registered satellite) → `{"certificate", "ca_certificate", "bundle"}` (base64
    /// entitlement bundle). The token inside the bundle proves the
    /// satellite; the certificate is issued and recorded in the same
    /// transaction that registers it.
    pub fn register(&self, body: &[u8]) -> Result<serde_json::Value, SyncError> {
        require_cloud(&self.config)?;
        let request: RegisterRequest = serde_json::from_slice(body).map_err(|e| {
            Error::invalid(
                "body",
                format!("a registration is {{\"csr\", \"bundle\"}}: {e}"),
            )
        })?;
        let csr = crate::pki::parse_csr(&request.csr)
            .map_err(|e| Error::invalid("csr", e.to_string()))?;
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(request.bundle.trim())
            .map_err(|e| Error::invalid("bundle", format!("not base64: {e}")))?;
        let opened = bundle::open(bytes, &Limits::default())?;
        // A satellite registered by carried files that goes connected
        // proves itself with a usage bundle from its pinned signer instead
        // (`cloud::process` refuses one from an unregistered satellite).
        if !matches!(
            opened.manifest.kind,
            Kind::RegistrationRequest | Kind::Usage
        ) {
            return Err(refuse(
                Rule::BadManifest,
                "a connected registration carries a registration request (or, for a satellite \
                 registered by carried files, a usage bundle)",
            ));
        }
        let config = self.config.clone();
        let keys = self.keys.clone();
        let ca = self.ca.clone();
        let now = self.clock.unix();
        let (answer, certificate) = self.store.writer().write_blocking(move |c| {
            let catalog = current_catalog(c, &config)?;
            let (processed, _) = cloud::process(c, &keys.live_node(&config, &catalog, now), &opened)?;
            let Some(sat) = satellites::find_by_satellite_id(c, &opened.manifest.from)? else {
                return Err(refuse(Rule::UntrustedSigner, "unknown satellite"));
            };
            let issued = ca.issue_device_certificate(&csr, &sat.satellite_id, now)?;
            satellites::add_identity(
                c,
                sat.id,
                &issued.fingerprint,
                &issued.serial_hex,
                now,
                issued.not_after,
            )?;
            tracing::info!(satellite = %processed.satellite, "satellite registered live; upstream identity certificate issued");
            Ok::<_, SyncError>((recorded_answer(c, &opened.sha256)?, issued.pem))
        })?;
        Ok(serde_json::json!({
            "certificate": certificate,
            "ca_certificate": self.ca.certificate_pem(),
            "bundle": base64::engine::general_purpose::STANDARD.encode(answer),
        }))
    }

    /// Renews the upstream identity certificate of the satellite that
    /// presents it (mutual TLS): `{"csr"}` → `{"certificate"}`.
    pub fn renew(
        &self,
        peer: Option<[u8; 32]>,
        body: &[u8],
    ) -> Result<serde_json::Value, SyncError> {
        require_cloud(&self.config)?;
        let Some(fingerprint) = peer else {
            return Err(Error::CertificateRequired.into());
        };
        #[derive(serde::Deserialize)]
        struct Renewal {
            csr: String,
        }
        let renewal: Renewal = serde_json::from_slice(body)
            .map_err(|e| Error::invalid("body", format!("a renewal is {{\"csr\"}}: {e}")))?;
        let csr = crate::pki::parse_csr(&renewal.csr)
            .map_err(|e| Error::invalid("csr", e.to_string()))?;
        let ca = self.ca.clone();
        let now = self.clock.unix();
        let certificate = self.store.writer().write_blocking(move |c| {
            let sat = current_holder(c, &fingerprint, now)?;
            let issued = ca.issue_device_certificate(&csr, &sat.satellite_id, now)?;
            satellites::add_identity(
                c,
                sat.id,
                &issued.fingerprint,
                &issued.serial_hex,
                now,
                issued.not_after,
            )?;
            tracing::info!(satellite = %sat.name, "upstream identity certificate renewed");
            Ok::<_, SyncError>(issued.pem)
        })?;
        Ok(serde_json::json!({ "certificate": certificate }))
    }

    /// A usage bundle from the satellite that holds the identity
    /// certificate `peer` (SHA-256 of the DER), answered with the
    /// entitlement bundle.
    pub fn usage(&self, peer: Option<[u8; 32]>, body: &[u8]) -> Result<Vec<u8>, SyncError> {
        require_cloud(&self.config)?;
        let Some(fingerprint) = peer else {
            return Err(Error::CertificateRequired.into());
        };
        let opened = open(body, Kind::Usage)?;
        let config = self.config.clone();
        let keys = self.keys.clone();
        let now = self.clock.unix();
        let (answer, transitions) = self.store.writer().write_blocking(move |c| {
            let sat = current_holder(c, &fingerprint, now)?;
            if opened.manifest.from != sat.satellite_id {
                return Err(refuse(
                    Rule::UntrustedSigner,
                    format!(
                        "the bundle says it comes from {}, but the client certificate is satellite {:?}'s",
                        opened.manifest.from, sat.name
                    ),
                ));
            }
            let catalog = current_catalog(c, &config)?;
            let (_, transitions) = cloud::process(c, &keys.live_node(&config, &catalog, now), &opened)?;
            Ok((recorded_answer(c, &opened.sha256)?, transitions))
        })?;
        self.notifier.compliance(&transitions);
        Ok(answer)
    }
}

/// The satellite that holds this identity certificate, if it may still
/// sync: not revoked, certificate not expired.
fn current_holder(
    c: &crate::store::Db,
    fingerprint: &[u8; 32],
    now: i64,
) -> Result<satellites::Satellite, SyncError> {
    let Some((sat, not_after)) = satellites::find_by_identity(c, fingerprint)? else {
        return Err(Error::CertificateUnknown.into());
    };
    if let Some(revoked) = sat.revoked_at {
        return Err(refuse(
            Rule::UntrustedSigner,
            format!(
                "satellite {:?} was revoked on {} by the cloud's operator; its syncs are \
                 refused (the cloud's operator can add it again with `satellite satellite add`)",
                sat.name,
                stamp(revoked)
            ),
        ));
    }
    if not_after <= now {
        return Err(refuse(
            Rule::Expired,
            format!(
                "the upstream identity certificate of satellite {:?} expired on {}; register it \
                 again (`satellite upstream register --token T`)",
                sat.name,
                stamp(not_after)
            ),
        ));
    }
    Ok(sat)
}
