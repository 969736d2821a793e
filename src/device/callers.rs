//! The writer's copies of the devices that spoke recently: by certificate
//! fingerprint, the certificate on record, its product instance and that
//! instance's stored demand. A router's messages come in bursts
//! (ENTITLEMENT, then ACKNOWLEDGEMENT, then its next demand): each after
//! the first is decided without reading those rows again.
//!
//! Exact by the same rule as the pool copies ([`crate::licensing::pool::PoolCache`]):
//! used only inside writer jobs, updated by the jobs that keep copies for
//! what they change, and dropped whenever the writer's generation moved
//! (any other write, any write undone, a failed commit, another
//! connection's commit). Liveness is checked at every use, against the
//! clock of that message.

use crate::error::{Error, Result};
use crate::store::certificates::{self, CertificateRecord};
use crate::store::instances::{self, Instance};
use crate::store::usage::{self, Demand};
use crate::store::Db;
use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};

/// Bounds the copies (a few hundred bytes each): when full they start over.
const MAX_CALLERS: usize = 16_384;

#[derive(Default)]
pub struct CallerCache {
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    seen: Option<u64>,
    callers: HashMap<[u8; 32], Known>,
}

/// A caller whose certificate is live and whose instance exists.
pub struct Known {
    pub certificate: CertificateRecord,
    pub instance: Instance,
    /// The instance's demand as stored, by tag.
    pub demand: Vec<Demand>,
}

/// A certificate on record that may not speak now (revoked, expired, its
/// instance removed): only a retry of the message that did it is answered.
pub struct Refused {
    pub udi: String,
    pub why: Error,
}

/// The copies, checked for one write; held for the length of the write.
pub struct Callers<'a> {
    state: MutexGuard<'a, State>,
}

impl CallerCache {
    /// Opens the copies inside a write; `generation` is the writer's now.
    pub fn open(&self, generation: u64) -> Callers<'_> {
        // Only the writer thread takes it; a poisoned lock means a write
        // panicked (and bumped the generation): start afresh.
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        if state.seen != Some(generation) {
            state.callers.clear();
            state.seen = Some(generation);
        }
        Callers { state }
    }
}

impl Callers<'_> {
    /// The caller presenting `fingerprint`, live at `now`; an unknown
    /// certificate is an error, a known one that may not speak is `Refused`.
    pub fn live(
        &mut self,
        c: &Db,
        fingerprint: &[u8; 32],
        now: i64,
    ) -> Result<std::result::Result<&mut Known, Refused>> {
        if !self.state.callers.contains_key(fingerprint) {
            let certificate = certificates::find_by_fingerprint(c, fingerprint)?
                .ok_or(Error::CertificateUnknown)?;
            if let Err(why) = check_live(&certificate, now) {
                return Ok(Err(Refused {
                    udi: certificate.udi,
                    why,
                }));
            }
            let instance = match certificate.instance_row_id {
                Some(row_id) => instances::find_for_message(c, row_id)?,
                None => None,
            };
            let Some(instance) = instance else {
                return Ok(Err(Refused {
                    udi: certificate.udi,
                    why: Error::CertificateRevoked,
                }));
            };
            let demand = usage::counts_of(c, instance.id)?;
            if self.state.callers.len() >= MAX_CALLERS {
                self.state.callers.clear();
            }
            self.state.callers.insert(
                *fingerprint,
                Known {
                    certificate,
                    instance,
                    demand,
                },
            );
        }
        let Some(known) = self.state.callers.get_mut(fingerprint) else {
            return Err(Error::CertificateUnknown);
        };
        match check_live(&known.certificate, now) {
            Ok(()) => Ok(Ok(known)),
            Err(why) => Ok(Err(Refused {
                udi: known.certificate.udi.clone(),
                why,
            })),
        }
    }
}

/// Whether a certificate on record may speak at `now`.
pub fn check_live(cert: &CertificateRecord, now: i64) -> Result<()> {
    if cert.revoked_at.is_some() {
        return Err(Error::CertificateRevoked);
    }
    if now >= cert.not_after {
        return Err(Error::CertificateUnknown);
    }
    Ok(())
}
