//! Live sync (connected mode, DESIGN §2 options 2 and 3): the same signed
//! bundles as the USB stick, carried over HTTPS to the cloud's device
//! listener, through `sync.proxy` when the site has one.
//!
//! The satellite end: connected registration (pin the cloud CA from the
//! token, get an upstream identity certificate), one live exchange (send
//! the usage bundle, apply the entitlement bundle in the answer), and the
//! record of attempts that drives retries and `satellite status`.
//!
//! Network calls never run inside a transaction: the usage bundle is sealed
//! and recorded first (exactly as an export is), then carried, then the
//! answer is applied in its own transaction. A bundle that never arrives is
//! superseded by the next one, which carries everything since the last
//! acknowledged bundle, so nothing is lost and nothing is counted twice.

pub mod cloud_end;
pub mod link;
pub use link::without_credentials;
mod state;

pub use state::{LiveState, STATE_KEY};

use super::bundle::{self, Limits};
use super::token::SatelliteToken;
use super::{current_catalog, satellite, Applied, Keys, SyncError, Written};
use crate::config::{Config, SyncMode};
use crate::error::Error;
use crate::licensing::pool::Transition;
use crate::store::sync as ledger;
use crate::store::Db;
use crate::time_guard;
use base64::Engine;
use link::{CloudLink, Identity, LinkError};
use serde::Serialize;
use std::path::{Path, PathBuf};

/// The pinned cloud CA, the upstream identity certificate and its key, in
/// the data dir.
pub const CLOUD_CA_FILE: &str = "upstream-ca.pem";
pub const IDENTITY_CERT_FILE: &str = "upstream.pem";
pub const IDENTITY_KEY_FILE: &str = "upstream.key";

/// What connected registration did.
#[derive(Debug, Clone, Serialize)]
pub struct Registered {
    pub satellite_id: String,
    pub cloud_id: String,
    pub cloud_url: String,
    pub request: Written,
    pub answer: Applied,
    pub identity_certificate: String,
}

/// What one live exchange sent and received.
#[derive(Debug, Clone, Serialize)]
pub struct Synced {
    pub cloud_url: String,
    pub sent: Written,
    pub received: Applied,
    pub millis: u128,
}

fn cloud_url(config: &Config) -> Result<&str, SyncError> {
    if config.sync.mode != SyncMode::Connected {
        return Err(Error::Conflict(
            "this satellite is in disconnected mode: it syncs by carried files (`satellite export`, \
             `satellite import`); set `sync.mode: connected` and `sync.cloud_url` in the config and \
             restart to sync live"
                .into(),
        )
        .into());
    }
    config.sync.cloud_url.as_deref().ok_or_else(|| {
        Error::invalid(
            "sync.cloud_url",
            "connected mode needs the cloud's device listener URL, e.g. https://cloud.example:4443",
        )
        .into()
    })
}

/// [`time_guard::write`] for this module's error type.
fn write<T>(
    conn: &mut Db,
    now: i64,
    f: impl FnOnce(&Db) -> Result<T, SyncError>,
) -> Result<T, SyncError> {
    time_guard::write(conn, now, f)
}

fn file_error(path: &Path, e: impl std::fmt::Display) -> SyncError {
    SyncError::File {
        path: path.display().to_string(),
        reason: e.to_string(),
    }
}

/// Writes a file whole or not at all (temporary file, then rename).
fn replace_file(path: &Path, contents: &[u8], mode: u32) -> Result<(), SyncError> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let tmp = path.with_extension("tmp");
    let _ = std::fs::remove_file(&tmp);
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(&tmp)
        .map_err(|e| file_error(&tmp, e))?;
    f.write_all(contents)
        .and_then(|_| f.sync_all())
        .map_err(|e| file_error(&tmp, e))?;
    std::fs::rename(&tmp, path).map_err(|e| file_error(path, e))
}

fn read_bundle(path: &str) -> Result<Vec<u8>, SyncError> {
    Ok(bundle::read_file(Path::new(path), &Limits::default())?)
}

fn data_file(config: &Config, name: &str) -> PathBuf {
    config.data_dir.join(name)
}

fn new_csr(
    key: &openssl::pkey::PKey<openssl::pkey::Private>,
    cn: &str,
) -> Result<String, SyncError> {
    crate::pki::build_csr(key, cn).map_err(|e| Error::from(crate::pki::PkiError::from(e)).into())
}

/// The cloud's answer to a connected registration.
#[derive(serde::Deserialize)]
struct RegisterAnswer {
    certificate: String,
    bundle: String,
}

/// `upstream register --token T` in connected mode: pins the cloud CA from
/// the token, proves the token over HTTPS with the same registration
/// request bundle a carried registration uses, applies the entitlement
/// answer, and keeps the upstream identity certificate for mutual TLS.
pub fn register(
    conn: &mut Db,
    config: &Config,
    keys: &Keys,
    now: i64,
    token_text: &str,
) -> Result<(Registered, Vec<Transition>), SyncError> {
    let token = SatelliteToken::parse(token_text).map_err(|r| Error::invalid("token", r))?;
    let pins = Pins {
        satellite_id: token.satellite_id.clone(),
        cloud_id: token.cloud_id.clone(),
        cloud_ca_sha256: token.cloud_ca_sha256.clone(),
    };
    enroll(conn, config, keys, now, &pins, Some(&token))
}

/// Who this satellite is and which cloud CA it trusts: from a satellite
/// token, or from its registration by carried files.
struct Pins {
    satellite_id: String,
    cloud_id: String,
    cloud_ca_sha256: String,
}

/// A satellite registered by carried files going connected: no token (it
/// may long have expired); a usage bundle signed by the bundle signer the
/// cloud pinned then proves it, and the cloud CA it pinned then is checked.
pub fn go_connected(
    conn: &mut Db,
    config: &Config,
    keys: &Keys,
    now: i64,
) -> Result<(Registered, Vec<Transition>), SyncError> {
    let up = ledger::upstream(conn)?
        .filter(|u| u.registered_at.is_some())
        .ok_or_else(|| {
            Error::Conflict(
                "this satellite is not registered with a cloud yet: `satellite upstream register \
                 --token T`"
                    .into(),
            )
        })?;
    let pins = Pins {
        satellite_id: up.satellite_id,
        cloud_id: up.cloud_id,
        cloud_ca_sha256: up.cloud_ca_sha256,
    };
    enroll(conn, config, keys, now, &pins, None)
}

/// Gets the upstream identity for live sync and applies the cloud's first
/// live answer: a registration request (with the token) for a new
/// satellite, a usage bundle for one registered by carried files.
fn enroll(
    conn: &mut Db,
    config: &Config,
    keys: &Keys,
    now: i64,
    pins: &Pins,
    token: Option<&SatelliteToken>,
) -> Result<(Registered, Vec<Transition>), SyncError> {
    let url = cloud_url(config)?.to_string();
    let proxy = config.sync.proxy.as_deref();
    // Nothing secret leaves before the cloud proved it holds the pinned CA.
    let ca_pem = CloudLink::fetch_pinned_ca(&url, proxy, &pins.cloud_ca_sha256)?;
    let key = crate::pki::new_p256_key()?;
    let csr = new_csr(&key, &pins.satellite_id)?;
    let request =
        write(conn, now, |c| {
            let catalog = current_catalog(c, config)?;
            let node = keys.node(config, &catalog, now);
            match (ledger::upstream(c)?.filter(|u| u.registered_at.is_some()), token) {
            // Registered before by carried files and going connected now:
            // a usage bundle signed by the signer the cloud pinned then
            // proves this satellite (and continues the sequence).
            (Some(up), _) if up.satellite_id == pins.satellite_id => {
                satellite::export_usage(c, &node)
            }
            (Some(up), _) => Err(Error::Conflict(format!(
                "this satellite is registered with cloud {} as {}; the token is for satellite {}",
                up.cloud_id, up.satellite_id, pins.satellite_id
            ))
            .into()),
            (None, Some(token)) => satellite::request_registration(c, &node, &token.encode()),
            (None, None) => Err(Error::Conflict(
                "this satellite is not registered with a cloud yet: `satellite upstream register \
                 --token T`"
                    .into(),
            )
            .into()),
        }
        })?;
    let link = CloudLink::pinned(&url, proxy, &ca_pem, None)?;
    let body = serde_json::json!({
        "csr": csr,
        "bundle": base64::engine::general_purpose::STANDARD.encode(read_bundle(&request.path)?),
    });
    let answer = link.post_json(link::REGISTER_PATH, &body)?;
    let answer: RegisterAnswer =
        serde_json::from_slice(&answer).map_err(|e| LinkError::Refused {
            status: 200,
            code: "bad_response".into(),
            message: format!("the registration answer is not what a cloud sends: {e}"),
        })?;
    check_identity(&answer.certificate, &ca_pem, &key)?;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(answer.bundle.trim())
        .map_err(|e| LinkError::Refused {
            status: 200,
            code: "bad_response".into(),
            message: format!("the registration answer's bundle is not base64: {e}"),
        })?;
    let opened = bundle::open(bytes, &Limits::default())?;
    let key_pem = key
        .private_key_to_pem_pkcs8()
        .map_err(|e| Error::from(crate::pki::PkiError::from(e)))?;
    replace_file(&data_file(config, CLOUD_CA_FILE), ca_pem.as_bytes(), 0o644)?;
    replace_file(&data_file(config, IDENTITY_KEY_FILE), &key_pem, 0o600)?;
    replace_file(
        &data_file(config, IDENTITY_CERT_FILE),
        answer.certificate.as_bytes(),
        0o644,
    )?;
    let (applied, transitions) = write(conn, now, |c| {
        let catalog = current_catalog(c, config)?;
        let done = satellite::import(c, &keys.node(config, &catalog, now), &opened)?;
        LiveState::succeeded(c, now, None)?;
        Ok(done)
    })?;
    Ok((
        Registered {
            satellite_id: pins.satellite_id.clone(),
            cloud_id: pins.cloud_id.clone(),
            cloud_url: url,
            request,
            answer: applied,
            identity_certificate: data_file(config, IDENTITY_CERT_FILE).display().to_string(),
        },
        transitions,
    ))
}

/// The certificate must be the cloud CA's, for our key, and for clientAuth.
fn check_identity(
    cert_pem: &str,
    ca_pem: &str,
    key: &openssl::pkey::PKey<openssl::pkey::Private>,
) -> Result<(), SyncError> {
    let bad = |why: String| LinkError::Refused {
        status: 200,
        code: "bad_response".into(),
        message: format!("the upstream identity certificate the cloud sent {why}"),
    };
    let cert = openssl::x509::X509::from_pem(cert_pem.as_bytes())
        .map_err(|e| bad(format!("is not a PEM certificate: {e}")))?;
    let ca = openssl::x509::X509::from_pem(ca_pem.as_bytes())
        .and_then(|ca| ca.public_key())
        .map_err(|e| bad(format!("cannot be checked: {e}")))?;
    if !cert.verify(&ca).unwrap_or(false) {
        return Err(bad("is not signed by the pinned cloud CA".into()).into());
    }
    let ours = cert.public_key().map(|k| k.public_eq(key)).unwrap_or(false);
    if !ours {
        return Err(bad("is not for the key this satellite sent".into()).into());
    }
    Ok(())
}

/// Whether any of the upstream identity's files exists: one missing alone
/// is damage to report, not a satellite to enrol.
fn any_identity_file(config: &Config) -> bool {
    [CLOUD_CA_FILE, IDENTITY_CERT_FILE, IDENTITY_KEY_FILE]
        .iter()
        .any(|name| data_file(config, name).exists())
}

fn identity(config: &Config) -> Result<(String, Identity), SyncError> {
    let read = |name: &str| {
        let path = data_file(config, name);
        std::fs::read_to_string(&path).map_err(|e| SyncError::File {
            path: path.display().to_string(),
            reason: format!(
                "{e}; this satellite has no upstream identity for live sync: register it in \
                 connected mode (`satellite upstream register --token T`)"
            ),
        })
    };
    Ok((
        read(CLOUD_CA_FILE)?,
        Identity {
            certificate_pem: read(IDENTITY_CERT_FILE)?,
            key_pem: read(IDENTITY_KEY_FILE)?,
        },
    ))
}

/// One live exchange: seal and record the usage bundle, carry it to the
/// cloud over mutual TLS, apply the entitlement bundle it answers with.
/// The caller records the outcome (`LiveState`).
pub fn exchange(
    conn: &mut Db,
    config: &Config,
    keys: &Keys,
    now: i64,
) -> Result<(Synced, Vec<Transition>), SyncError> {
    let started = std::time::Instant::now();
    let url = cloud_url(config)?.to_string();
    let (ca_pem, id) = match identity(config) {
        Ok(found) => found,
        // Registered by carried files, connected now: the first exchange
        // gets the upstream identity on the way (no token needed).
        Err(_)
            if !any_identity_file(config)
                && ledger::upstream(conn)?.is_some_and(|u| u.registered_at.is_some()) =>
        {
            let (registered, transitions) = go_connected(conn, config, keys, now)?;
            tracing::info!(
                satellite = %registered.satellite_id,
                "registered by carried files, connected now: upstream identity certificate received"
            );
            return Ok((
                Synced {
                    cloud_url: registered.cloud_url,
                    sent: registered.request,
                    received: registered.answer,
                    millis: started.elapsed().as_millis(),
                },
                transitions,
            ));
        }
        Err(missing) => return Err(missing),
    };
    let pinned = ledger::upstream(conn)?.map(|u| u.cloud_ca_sha256);
    let ca_sha = openssl::x509::X509::from_pem(ca_pem.as_bytes())
        .and_then(|c| c.to_der())
        .map(|der| crate::pki::sha256_hex(&der))
        .map_err(|e| file_error(&data_file(config, CLOUD_CA_FILE), e))?;
    if pinned.as_deref() != Some(ca_sha.as_str()) {
        return Err(file_error(
            &data_file(config, CLOUD_CA_FILE),
            "is not the cloud CA this satellite registered with; register again",
        ));
    }
    let id = renew_if_due(config, &url, &ca_pem, id, now)?;
    let link = CloudLink::pinned(&url, config.sync.proxy.as_deref(), &ca_pem, Some(&id))?;
    // A bundle the cloud has not acknowledged goes again, the same bytes
    // under the same sequence, until it is: a cloud that is down costs no
    // sequence numbers and leaves no pile of files. Once it is through,
    // what changed since it was sealed follows in a fresh one.
    let (sent, received, transitions) = match pending(conn, config, now)? {
        Some((pending, bytes)) => {
            let (_, mut transitions) = send(conn, config, keys, now, &link, &bytes)?;
            tracing::info!(
                sequence = pending.sequence,
                "pending usage bundle delivered; sending what changed since"
            );
            let (fresh, bytes) = seal_usage(conn, config, keys, now)?;
            let (received, more) = send(conn, config, keys, now, &link, &bytes)?;
            transitions.extend(more);
            (fresh, received, transitions)
        }
        None => {
            let (sent, bytes) = seal_usage(conn, config, keys, now)?;
            let (received, transitions) = send(conn, config, keys, now, &link, &bytes)?;
            (sent, received, transitions)
        }
    };
    prune_acknowledged(conn, config, &sent.to);
    Ok((
        Synced {
            cloud_url: url,
            sent,
            received,
            millis: started.elapsed().as_millis(),
        },
        transitions,
    ))
}

/// Seals a usage bundle from a read snapshot and records it.
fn seal_usage(
    conn: &mut Db,
    config: &Config,
    keys: &Keys,
    now: i64,
) -> Result<(Written, Vec<u8>), SyncError> {
    let sent = satellite::export_usage_from_snapshot(conn, config, keys, now, |c| {
        crate::time_guard::advance(c, now)
            .map(|_| ())
            .map_err(SyncError::from)
    })?;
    let bytes = read_bundle(&sent.path)?;
    Ok((sent, bytes))
}

/// Carries a usage bundle to the cloud and applies its answer.
fn send(
    conn: &mut Db,
    config: &Config,
    keys: &Keys,
    now: i64,
    link: &CloudLink,
    bytes: &[u8],
) -> Result<(Applied, Vec<Transition>), SyncError> {
    let answer = link.post_bundle(link::USAGE_PATH, bytes)?;
    let opened = bundle::open(answer, &Limits::default())?;
    write(conn, now, |c| {
        let catalog = current_catalog(c, config)?;
        satellite::import(c, &keys.node(config, &catalog, now), &opened)
    })
}

/// Acknowledged bundles a connected satellite keeps in its export folder
/// (the newest ones; the cloud holds them all).
pub const KEEP_ACKNOWLEDGED: u32 = 5;

/// The usage bundle sent before and not acknowledged yet, read back from
/// the export folder: `None` when there is none, when its file was moved
/// away or changed, or when it is within a day of expiring (a fresh one is
/// sealed instead).
fn pending(conn: &Db, config: &Config, now: i64) -> Result<Option<(Written, Vec<u8>)>, SyncError> {
    let Some(up) = ledger::upstream(conn)? else {
        return Ok(None);
    };
    let Some(sent) = ledger::pending_usage(conn, &up.cloud_id)? else {
        return Ok(None);
    };
    if sent.created_at + super::BUNDLE_LIFETIME - 86_400 <= now {
        return Ok(None);
    }
    let Some(name) = sent.file_name else {
        return Ok(None);
    };
    let path = config.sync.export_dir.join(name);
    let Ok(bytes) = bundle::read_file(&path, &Limits::default()) else {
        return Ok(None);
    };
    if crate::pki::sha256_hex(&bytes) != sent.sha256 {
        return Ok(None);
    }
    let written = Written {
        path: path.display().to_string(),
        kind: sent.kind,
        from: up.satellite_id,
        to: up.cloud_id,
        sequence: sent.sequence,
        sha256: sent.sha256,
        bytes: bytes.len(),
        counts: serde_json::from_str(&sent.summary).unwrap_or_default(),
    };
    Ok(Some((written, bytes)))
}

/// Removes from the export folder the files of bundles the cloud has
/// acknowledged, past the newest [`KEEP_ACKNOWLEDGED`]. Best effort: a file
/// already gone, or one that cannot be removed, is left to the next time.
fn prune_acknowledged(conn: &Db, config: &Config, cloud_id: &str) {
    let files = match ledger::acknowledged_files(conn, cloud_id, KEEP_ACKNOWLEDGED) {
        Ok(files) => files,
        Err(e) => {
            tracing::warn!(error = %e, "cannot list acknowledged bundles to prune");
            return;
        }
    };
    for name in files {
        let path = config.sync.export_dir.join(&name);
        match std::fs::remove_file(&path) {
            Ok(()) => tracing::debug!(file = %path.display(), "acknowledged bundle pruned"),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                tracing::warn!(file = %path.display(), error = %e, "cannot prune an acknowledged bundle")
            }
        }
    }
}

/// The identity certificate is renewed when less than this is left of it
/// (it is valid a year: renewed after about half, as routers do).
pub const RENEW_BEFORE_DAYS: i64 = 185;

/// Renews the upstream identity certificate over mutual TLS when it nears
/// its end. A renewal that fails leaves the current certificate in use
/// while it lasts (the next sync tries again).
fn renew_if_due(
    config: &Config,
    url: &str,
    ca_pem: &str,
    id: Identity,
    now: i64,
) -> Result<Identity, SyncError> {
    let cert_path = data_file(config, IDENTITY_CERT_FILE);
    let due = openssl::x509::X509::from_pem(id.certificate_pem.as_bytes())
        .and_then(|cert| {
            let limit = openssl::asn1::Asn1Time::from_unix(now + RENEW_BEFORE_DAYS * 86_400)?;
            let expired = openssl::asn1::Asn1Time::from_unix(now)?;
            Ok((
                cert.not_after().compare(&limit)? == std::cmp::Ordering::Less,
                cert.not_after().compare(&expired)? != std::cmp::Ordering::Greater,
            ))
        })
        .map_err(|e| file_error(&cert_path, e))?;
    let (due, expired) = due;
    if !due {
        return Ok(id);
    }
    let renewed = (|| -> Result<Identity, SyncError> {
        let key = crate::pki::new_p256_key()?;
        let satellite_id = openssl::x509::X509::from_pem(id.certificate_pem.as_bytes())
            .ok()
            .and_then(|c| crate::pki::common_name(&c))
            .unwrap_or_default();
        let csr = new_csr(&key, &satellite_id)?;
        let link = CloudLink::pinned(url, config.sync.proxy.as_deref(), ca_pem, Some(&id))?;
        let answer = link.post_json(link::IDENTITY_PATH, &serde_json::json!({ "csr": csr }))?;
        let answer: serde_json::Value =
            serde_json::from_slice(&answer).map_err(|e| LinkError::Refused {
                status: 200,
                code: "bad_response".into(),
                message: format!("the renewal answer is not JSON: {e}"),
            })?;
        let certificate = answer["certificate"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        check_identity(&certificate, ca_pem, &key)?;
        let key_pem = key
            .private_key_to_pem_pkcs8()
            .map_err(|e| Error::from(crate::pki::PkiError::from(e)))?;
        // The key first: a certificate without its key would be useless.
        replace_file(&data_file(config, IDENTITY_KEY_FILE), &key_pem, 0o600)?;
        replace_file(&cert_path, certificate.as_bytes(), 0o644)?;
        tracing::info!("upstream identity certificate renewed");
        Ok(Identity {
            certificate_pem: certificate,
            key_pem: String::from_utf8_lossy(&key_pem).into_owned(),
        })
    })();
    match renewed {
        Ok(new) => Ok(new),
        Err(e) if !expired => {
            tracing::warn!(error = %e, "the upstream identity certificate could not be renewed; the current one is used while it lasts");
            Ok(id)
        }
        Err(e) => Err(e),
    }
}

/// `exchange` with its outcome recorded: the state `satellite status`
/// shows, an event and a Call Home `sync` alert when it failed, and the
/// next attempt (the schedule after a success, a jittered backoff after a
/// failure).
pub fn exchange_and_record(
    conn: &mut Db,
    config: &Config,
    keys: &Keys,
    now: i64,
    next_scheduled: Option<i64>,
) -> Result<(Synced, Vec<Transition>), SyncError> {
    // Not in connected mode is a usage mistake, not a failed sync.
    cloud_url(config)?;
    let result = exchange(conn, config, keys, now);
    let recorded = write(conn, now, |c| match &result {
        Ok(_) => Ok(LiveState::succeeded(c, now, next_scheduled)?),
        Err(e) => LiveState::failed(c, now, &e.to_string())
            .map(|_| ())
            .map_err(SyncError::from),
    });
    if let Err(e) = recorded {
        tracing::error!(error = %e, "cannot record the outcome of the live sync");
    }
    result
}

/// When `sync.schedule` next fires after `after`: what a manual exchange
/// records as the next attempt, so the status it leaves is the scheduler's.
pub fn next_scheduled(config: &Config, after: i64) -> Option<i64> {
    let schedule: cron::Schedule = config.sync.schedule.parse().ok()?;
    crate::config::next_fire(&schedule, after)
}

/// `/metrics` lines for sync: the age of the last successful sync (the
/// last entitlement bundle applied, live or carried) and the live failures
/// since. Nothing on a cloud or an unregistered satellite.
pub fn metrics_text(c: &Db, now: i64) -> Result<String, SyncError> {
    let Some(up) = ledger::upstream(c)?.filter(|u| u.registered_at.is_some()) else {
        return Ok(String::new());
    };
    let last = ledger::summary(c, &up.cloud_id)?.last_received_at;
    let state = LiveState::load(c)?;
    let mut out = String::from(
        "# HELP satellite_sync_last_success_age_seconds Seconds since the last successful sync with the cloud.\n\
         # TYPE satellite_sync_last_success_age_seconds gauge\n",
    );
    if let Some(last) = last {
        out.push_str(&format!(
            "satellite_sync_last_success_age_seconds {}\n",
            (now - last).max(0)
        ));
    }
    out.push_str(&format!(
        "# HELP satellite_sync_failures Live sync failures since the last success.\n\
         # TYPE satellite_sync_failures gauge\nsatellite_sync_failures {}\n",
        state.failures
    ));
    Ok(out)
}
