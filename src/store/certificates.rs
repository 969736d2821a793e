//! Identity certificates issued to product instances, kept by fingerprint so
//! a presented certificate finds its instance (and its revocation) at once.

use super::optional;
use super::sql::params;
use super::Db;
use crate::error::Result;
use crate::pki::IssuedCertificate;

#[derive(Debug, Clone)]
pub struct CertificateRecord {
    pub serial: String,
    /// `PID:SN` of the device it was issued to.
    pub udi: String,
    /// `None` once the instance was removed.
    pub instance_row_id: Option<i64>,
    pub not_after: i64,
    pub revoked_at: Option<i64>,
}

pub fn insert(conn: &Db, cert: &IssuedCertificate, instance_row_id: i64, udi: &str) -> Result<()> {
    conn.prepare_cached(
        "INSERT INTO certificates (serial, fingerprint, instance_id, udi, not_before, not_after, pem)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )?
    .execute(params![
        cert.serial_hex,
        cert.fingerprint.as_slice(),
        instance_row_id,
        udi,
        cert.not_before,
        cert.not_after,
        cert.pem
    ])?;
    Ok(())
}

pub fn find_by_fingerprint(conn: &Db, fingerprint: &[u8]) -> Result<Option<CertificateRecord>> {
    Ok(optional(
        conn.prepare_cached(
            "SELECT serial, instance_id, not_after, revoked_at, udi FROM certificates WHERE fingerprint = ?1",
        )?
        .query_row([fingerprint], |r| {
            Ok(CertificateRecord {
                serial: r.get(0)?,
                instance_row_id: r.get(1)?,
                not_after: r.get(2)?,
                revoked_at: r.get(3)?,
                udi: r.get(4)?,
            })
        }),
    )?)
}

/// Revokes every live certificate of an instance; returns how many.
pub fn revoke_for_instance(
    conn: &Db,
    instance_row_id: i64,
    now: i64,
    reason: &str,
) -> Result<usize> {
    Ok(conn
        .prepare_cached(
            "UPDATE certificates SET revoked_at = ?2, revocation_reason = ?3
             WHERE instance_id = ?1 AND revoked_at IS NULL",
        )?
        .execute(params![instance_row_id, now, reason])?)
}

/// The PEM of a certificate by serial (stored answers point at it).
pub fn pem_by_serial(conn: &Db, serial: &str) -> Result<Option<String>> {
    Ok(optional(
        conn.prepare_cached("SELECT pem FROM certificates WHERE serial = ?1")?
            .query_row([serial], |r| r.get(0)),
    )?)
}
