//! The checks that need outside knowledge: the pinned peer CA, our own
//! name and the time.

use super::manifest::sha256_hex;
use super::{BundleError, Opened, Rule, MAX_CLOCK_AHEAD_SECS, SIGNER_FILE};
use openssl::x509::store::X509StoreBuilder;
use openssl::x509::verify::{X509VerifyFlags, X509VerifyParam};
use openssl::x509::{X509KeyUsage, X509StoreContext};
use serde::de::DeserializeOwned;

impl Opened {
    /// The signer chain's last certificate is the CA whose SHA-256 (of DER,
    /// lowercase hex) is `pinned_ca_sha256`; the leaf is signed by it and
    /// valid at `now`.
    pub fn check_signer(&self, pinned_ca_sha256: &str, now: i64) -> Result<(), BundleError> {
        let untrusted = |detail: String| BundleError::new(Rule::UntrustedSigner, detail);
        let actual = self.signer_ca_sha256()?;
        // Accept the pin as `openssl x509 -fingerprint` prints it, too.
        let pinned: String = pinned_ca_sha256
            .trim()
            .chars()
            .filter(|c| *c != ':')
            .map(|c| c.to_ascii_lowercase())
            .collect();
        if actual != pinned {
            return Err(untrusted(format!(
                "{SIGNER_FILE} chains to the CA with SHA-256 {actual}, not the pinned peer CA {pinned}"
            )));
        }
        let [leaf, ca] = self.signer_chain.as_slice() else {
            return Err(untrusted(format!(
                "{SIGNER_FILE} holds {} certificates; it must hold the signer certificate then \
                 its CA",
                self.signer_chain.len()
            )));
        };
        let usage = leaf.key_usage().unwrap_or(X509KeyUsage::empty());
        if !usage.contains(X509KeyUsage::DIGITAL_SIGNATURE)
            || usage.contains(X509KeyUsage::KEY_CERT_SIGN)
        {
            return Err(untrusted(
                "the signer certificate is not a signing-only certificate (keyUsage \
                 digitalSignature, not keyCertSign)"
                    .into(),
            ));
        }
        let verified = (|| -> Result<Result<(), String>, openssl::error::ErrorStack> {
            let mut store = X509StoreBuilder::new()?;
            store.add_cert(ca.clone())?;
            let mut param = X509VerifyParam::new()?;
            // The pin, not self-signature, is what makes this CA trusted.
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
        .map_err(|e| untrusted(format!("cannot check the signer certificate: {e}")))?;
        verified.map_err(|why| {
            untrusted(format!(
                "the signer certificate does not verify against the pinned CA at {}: {why}",
                crate::clock::rfc3339(now)
            ))
        })
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

    /// A payload file as JSON; the error names the file.
    pub fn json<T: DeserializeOwned>(&self, name: &str) -> Result<T, BundleError> {
        let content = self.files.get(name).ok_or_else(|| {
            BundleError::new(
                Rule::MissingEntry,
                format!("a {} bundle must hold {name:?}", self.manifest.kind),
            )
        })?;
        serde_json::from_slice(content)
            .map_err(|e| BundleError::new(Rule::BadPayload, format!("{name}: {e}")))
    }
}
