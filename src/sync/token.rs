//! The satellite token: made on the cloud by `satellite add`, given once to
//! the satellite's operator. It names both ends, proves the satellite at its
//! first contact, and pins the cloud's CA, so no other file is needed.
//!
//! Text form: `<satellite_id>.<secret>.<cloud_id>.<cloud CA SHA-256 hex>`.

use crate::domain::TokenSecret;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SatelliteToken {
    pub satellite_id: String,
    pub secret: String,
    pub cloud_id: String,
    pub cloud_ca_sha256: String,
}

impl SatelliteToken {
    pub fn encode(&self) -> String {
        format!(
            "{}.{}.{}.{}",
            self.satellite_id, self.secret, self.cloud_id, self.cloud_ca_sha256
        )
    }

    /// Parses a token as pasted; the reason names what is wrong with it.
    pub fn parse(text: &str) -> Result<Self, String> {
        let text = text.trim();
        let parts: Vec<&str> = text.split('.').collect();
        let [satellite_id, secret, cloud_id, fingerprint] = parts.as_slice() else {
            return Err(format!(
                "a satellite token has four parts separated by dots (satellite id, secret, cloud id, \
                 cloud CA fingerprint); this one has {}: copy it whole from `satellite add` on the cloud",
                parts.len()
            ));
        };
        let id_ok = |s: &str| {
            !s.is_empty()
                && s.len() <= 64
                && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        };
        if !id_ok(satellite_id) || !id_ok(cloud_id) {
            return Err(
                "the satellite or cloud id in the token is malformed; copy the token whole".into(),
            );
        }
        if secret.len() < 32
            || !secret
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            return Err("the secret in the token is malformed; copy the token whole".into());
        }
        if fingerprint.len() != 64 || !fingerprint.chars().all(|c| c.is_ascii_hexdigit()) {
            return Err(
                "the cloud CA fingerprint in the token is not 64 hex digits; copy the token whole"
                    .into(),
            );
        }
        Ok(Self {
            satellite_id: satellite_id.to_string(),
            secret: secret.to_string(),
            cloud_id: cloud_id.to_string(),
            cloud_ca_sha256: fingerprint.to_ascii_lowercase(),
        })
    }

    /// The secret as the registration token machinery hashes and compares it.
    pub fn secret(&self) -> TokenSecret {
        TokenSecret::from_presented(&self.secret)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> SatelliteToken {
        SatelliteToken {
            satellite_id: "0b7c4d7e-1111-4222-8333-444455556666".into(),
            secret: "A".repeat(64),
            cloud_id: "9d2e-cloud".into(),
            cloud_ca_sha256: "ab".repeat(32),
        }
    }

    #[test]
    fn round_trips() {
        let t = sample();
        assert_eq!(SatelliteToken::parse(&format!(" {} \n", t.encode())), Ok(t));
    }

    #[test]
    fn refuses_damaged_tokens_with_a_reason() {
        let t = sample().encode();
        for (bad, word) in [
            (t.replacen('.', "", 1), "four parts"),
            (t[..t.len() - 2].to_string(), "fingerprint"),
            (t.replace(&"A".repeat(64), "short"), "secret"),
            (format!("a b{}", &t[t.find('.').unwrap_or(0)..]), "id"),
        ] {
            let err = SatelliteToken::parse(&bad).expect_err("refused");
            assert!(err.contains(word), "{bad}: {err}");
        }
    }
}
