//! The checks that need outside knowledge: the pinned peer CA and signer,
//! our own name and the time.

use super::manifest::sha256_hex;
use super::{BundleError, Opened, Rule, MAX_CLOCK_AHEAD_SECS, SIGNER_FILE};
use crate::pki::purpose::Purpose;
use crate::pki::signer::{ROLLOVER_CERT_FILE, ROLLOVER_SIGNATURE_FILE};
use openssl::hash::MessageDigest;
use openssl::sign::Verifier;
use openssl::x509::store::X509StoreBuilder;
use openssl::x509::verify::{X509VerifyFlags, X509VerifyParam};
use openssl::x509::{X509Ref, X509StoreContext, X509};

/// What a receiver pinned for one peer.
#[derive(Debug, Clone, Copy)]
pub struct PeerPins<'a> {
    /// How refusals name the peer: `satellite "site-a"`, `this satellite's cloud`.
    pub peer: &'a str,
    /// SHA-256 of the peer's CA certificate (DER, hex; colons and case ignored).
    pub ca_sha256: &'a str,
    /// SHA-256 of the peer's bundle-signer certificate, once one was seen.
    pub signer_sha256: Option<&'a str>,
    /// The signer that one replaced, after a rollover.
    pub retired_signer_sha256: Option<&'a str>,
}

/// Why a signer is trusted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SignerTrust {
    /// It is the pinned signer.
    Pinned,
    /// No signer is pinned for this peer yet (its first bundle, or the first
    /// since an upgrade from CA-only pins): the receiver pins this one.
    FirstContact,
    /// The pinned signer vouched for this one: the receiver pins it and
    /// retires the one it replaced.
    RolledOver { retired_sha256: String },
}

/// A signer that passed `check_signer`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrustedSigner {
    /// SHA-256 of the signer certificate (DER, lowercase hex).
    pub sha256: String,
    pub trust: SignerTrust,
}

impl TrustedSigner {
    /// The pin the receiver keeps after applying the bundle, and the
    /// retired one, when they change.
    pub fn new_pins(&self) -> Option<(&str, Option<&str>)> {
        match &self.trust {
            SignerTrust::Pinned => None,
            SignerTrust::FirstContact => Some((&self.sha256, None)),
            SignerTrust::RolledOver { retired_sha256 } => {
                Some((&self.sha256, Some(retired_sha256.as_str())))
            }
        }
    }
}

fn normalise(pin: &str) -> String {
    // Accept the pin as `openssl x509 -fingerprint` prints it, too.
    pin.trim()
        .chars()
        .filter(|c| *c != ':')
        .map(|c| c.to_ascii_lowercase())
        .collect()
}

impl Opened {
    /// The bundle is signed by the peer's bundle signer: `signer.pem` is the
    /// signer certificate then the pinned CA, the certificate verifies
    /// against that CA at `now`, it was issued for signing bundles (router
    /// and upstream identities, server certificates and CAs of the same CA
    /// are refused, naming their kind), and it is the pinned signer, or the
    /// first the peer ever used, or one the pinned signer vouched for.
    pub fn check_signer(
        &self,
        pins: &PeerPins<'_>,
        now: i64,
    ) -> Result<TrustedSigner, BundleError> {
        let untrusted = |detail: String| BundleError::new(Rule::UntrustedSigner, detail);
        let peer = pins.peer;
        let actual = self.signer_ca_sha256()?;
        let pinned = normalise(pins.ca_sha256);
        if actual != pinned {
            return Err(untrusted(format!(
                "{SIGNER_FILE} chains to the CA with SHA-256 {actual}, not the pinned CA of \
                 {peer} ({pinned})"
            )));
        }
        let [leaf, ca] = self.signer_chain.as_slice() else {
            return Err(untrusted(format!(
                "{SIGNER_FILE} holds {} certificates; it must hold the signer certificate then \
                 its CA",
                self.signer_chain.len()
            )));
        };
        let sha256 = self.signer_sha256()?;
        let purpose = leaf
            .to_der()
            .map(|der| Purpose::of(&der))
            .unwrap_or(Purpose::Other);
        if !purpose.signs_bundles() {
            return Err(untrusted(format!(
                "signed with {} of {peer}'s CA ({}, SHA-256 {sha256}), not with {peer}'s bundle \
                 signer",
                purpose.describe(),
                subject(leaf)
            )));
        }
        verify_chain(leaf, ca, now).map_err(|why| {
            untrusted(format!(
                "the signer certificate does not verify against {peer}'s CA at {}: {why}",
                crate::clock::rfc3339(now)
            ))
        })?;
        let trust = match (
            pins.signer_sha256.map(normalise),
            pins.retired_signer_sha256,
        ) {
            (None, _) => SignerTrust::FirstContact,
            (Some(pinned), _) if pinned == sha256 => SignerTrust::Pinned,
            (Some(pinned), Some(retired)) if normalise(retired) == sha256 => {
                return Err(untrusted(format!(
                    "signed by a retired bundle signer of {peer} (SHA-256 {sha256}), replaced \
                     by {pinned}; bundles it signs are refused"
                )))
            }
            (Some(pinned), _) => {
                if self.vouched_for_by(&pinned, leaf) {
                    SignerTrust::RolledOver {
                        retired_sha256: pinned,
                    }
                } else {
                    return Err(untrusted(format!(
                        "signed by a bundle signer of {peer}'s CA (SHA-256 {sha256}) that is not \
                         its pinned signer {pinned} and carries no rollover proof from it (an \
                         older, superseded signer, or one issued without `satellite bundle \
                         rotate-signer`)"
                    )));
                }
            }
        };
        Ok(TrustedSigner { sha256, trust })
    }

    /// Whether the bundle carries a rollover proof by the signer pinned as
    /// `pinned` for `leaf`.
    fn vouched_for_by(&self, pinned: &str, leaf: &X509Ref) -> bool {
        let read = |name| self.file(name).ok().flatten();
        let (Some(previous_pem), Some(signature)) =
            (read(ROLLOVER_CERT_FILE), read(ROLLOVER_SIGNATURE_FILE))
        else {
            return false;
        };
        (|| {
            let previous = X509::stack_from_pem(&previous_pem)
                .ok()?
                .into_iter()
                .next()?;
            if sha256_hex(&previous.to_der().ok()?) != pinned {
                return None;
            }
            let key = previous.public_key().ok()?;
            let mut verifier = Verifier::new(MessageDigest::sha256(), &key).ok()?;
            verifier
                .verify_oneshot(&signature, &leaf.to_der().ok()?)
                .ok()
        })()
        .unwrap_or(false)
    }

    /// SHA-256 hex of the signer certificate (what a receiver pins).
    pub fn signer_sha256(&self) -> Result<String, BundleError> {
        let leaf = self.signer_chain.first().ok_or_else(|| {
            BundleError::new(Rule::UntrustedSigner, format!("{SIGNER_FILE} is empty"))
        })?;
        let der = leaf.to_der().map_err(|e| {
            BundleError::new(
                Rule::UntrustedSigner,
                format!("unreadable signer certificate: {e}"),
            )
        })?;
        Ok(sha256_hex(&der))
    }

    /// What the signer certificate was issued for.
    pub fn signer_purpose(&self) -> Purpose {
        self.signer_chain
            .first()
            .and_then(|leaf| leaf.to_der().ok())
            .map_or(Purpose::Other, |der| Purpose::of(&der))
    }

    /// `to` is `me` and `expires_at` is after `now` (and `created_at` not
    /// more than a day ahead of `now`).
    pub fn check_addressed(&self, me: &str, now: i64) -> Result<(), BundleError> {
        if self.manifest.to != me {
            return Err(BundleError::new(
                Rule::WrongRecipient,
                format!(
                    "the bundle is addressed to {:?}, this is {me:?}",
                    self.manifest.to
                ),
            ));
        }
        let expires = self.manifest.expires_unix()?;
        if expires <= now {
            return Err(BundleError::new(
                Rule::Expired,
                format!(
                    "the bundle expired at {} (now {}); ask {:?} for a fresh one",
                    self.manifest.expires_at,
                    crate::clock::rfc3339(now),
                    self.manifest.from
                ),
            ));
        }
        let created = self.manifest.created_unix()?;
        if created > now.saturating_add(MAX_CLOCK_AHEAD_SECS) {
            return Err(BundleError::new(
                Rule::Expired,
                format!(
                    "the bundle says it was created at {}, more than a day after now ({}); \
                     check the clock here and at {:?}",
                    self.manifest.created_at,
                    crate::clock::rfc3339(now),
                    self.manifest.from
                ),
            ));
        }
        Ok(())
    }

    /// SHA-256 hex of the signer chain's CA certificate (what the cloud pins
    /// for a new satellite).
    pub fn signer_ca_sha256(&self) -> Result<String, BundleError> {
        let ca = self.signer_chain.last().ok_or_else(|| {
            BundleError::new(Rule::UntrustedSigner, format!("{SIGNER_FILE} is empty"))
        })?;
        let der = ca.to_der().map_err(|e| {
            BundleError::new(
                Rule::UntrustedSigner,
                format!("unreadable CA certificate: {e}"),
            )
        })?;
        Ok(sha256_hex(&der))
    }
}

/// `CN=...` of a certificate, for refusals.
fn subject(cert: &X509Ref) -> String {
    crate::pki::common_name(cert)
        .map(|cn| format!("CN={cn}"))
        .unwrap_or_else(|| "no CN".into())
}

/// The leaf is signed by `ca` and both are valid at `now`. The pin, not
/// self-signature, is what makes the CA trusted.
fn verify_chain(leaf: &X509Ref, ca: &X509Ref, now: i64) -> Result<(), String> {
    (|| -> Result<Result<(), String>, openssl::error::ErrorStack> {
        let mut store = X509StoreBuilder::new()?;
        store.add_cert(ca.to_owned())?;
        let mut param = X509VerifyParam::new()?;
        param.set_flags(X509VerifyFlags::PARTIAL_CHAIN)?;
        param.set_time(now as _);
        store.set_param(&param)?;
        let store = store.build();
        let untrusted_chain = openssl::stack::Stack::new()?;
        let mut ctx = X509StoreContext::new()?;
        ctx.init(&store, leaf, &untrusted_chain, |c| {
            Ok(if c.verify_cert()? {
                Ok(())
            } else {
                Err(c.error().error_string().to_string())
            })
        })
    })()
    .map_err(|e| format!("cannot check it: {e}"))?
}
