//! The stored form of identity answers. A REGISTRATION or RENEW id answer
//! carries two PEMs (the device's certificate and the CA's), about 1.3 KB
//! that the database already holds: the certificate row and the CA file.
//! The answer kept for retries points at them instead, and a retry gets the
//! first answer back byte for byte.

use crate::error::{Error, Result};

const CA_FIELD: &str = "\"ca_certificate\":\"@ca\"";
const CERTIFICATE_FIELD: &str = "\"certificate\":\"@certificate:";

fn json_string(text: &str) -> String {
    // A string always serializes; the fallback is never taken.
    serde_json::to_string(text).unwrap_or_default()
}

/// The answer as stored: the PEMs replaced by references.
pub fn compact(answer: &str, certificate_pem: &str, serial: &str, ca_pem: &str) -> String {
    let certificate = format!("\"certificate\":{}", json_string(certificate_pem));
    let ca = format!("\"ca_certificate\":{}", json_string(ca_pem));
    answer
        .replacen(&certificate, &format!("{CERTIFICATE_FIELD}{serial}\""), 1)
        .replacen(&ca, CA_FIELD, 1)
}

/// The answer as first sent. `certificate_pem` finds a certificate by serial.
pub fn expand(
    stored: String,
    ca_pem: &str,
    certificate_pem: impl FnOnce(&str) -> Result<Option<String>>,
) -> Result<String> {
    let mut answer = stored;
    if let Some(at) = answer.find(CERTIFICATE_FIELD) {
        let serial_at = at + CERTIFICATE_FIELD.len();
        let serial_len = answer[serial_at..].find('"').ok_or_else(unreadable)?;
        let serial = answer[serial_at..serial_at + serial_len].to_string();
        let pem = certificate_pem(&serial)?.ok_or_else(|| {
            Error::Conflict(format!(
                "the certificate {serial} of the first answer to this message is no longer on record; send a new message id"
            ))
        })?;
        answer.replace_range(
            at..serial_at + serial_len + 1,
            &format!("\"certificate\":{}", json_string(&pem)),
        );
    }
    if answer.contains(CA_FIELD) {
        answer = answer.replacen(
            CA_FIELD,
            &format!("\"ca_certificate\":{}", json_string(ca_pem)),
            1,
        );
    }
    Ok(answer)
}

fn unreadable() -> Error {
    Error::Conflict("the first answer to this message is unreadable; send a new message id".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_identity_answer_comes_back_byte_for_byte_and_is_stored_small() {
        let cert = "-----BEGIN CERTIFICATE-----\nMIIB\"x\\y\n-----END CERTIFICATE-----\n";
        let ca = "-----BEGIN CERTIFICATE-----\nCA\n-----END CERTIFICATE-----\n";
        let answer = serde_json::json!({"type": "REGISTRATION", "certificate": cert,
            "ca_certificate": ca, "instance_id": "i"})
        .to_string();
        let stored = compact(&answer, cert, "0A1B", ca);
        assert!(!stored.contains("BEGIN"), "{stored}");
        assert!(stored.len() < answer.len());
        let back = expand(stored, ca, |serial| {
            assert_eq!(serial, "0A1B");
            Ok(Some(cert.to_string()))
        })
        .expect("expands");
        assert_eq!(back, answer);
    }

    #[test]
    fn other_answers_are_stored_as_they_are() {
        let answer = r#"{"type":"ENTITLEMENT","status":"AUTHORIZED"}"#;
        assert_eq!(compact(answer, "c", "1", "ca"), answer);
        let back = expand(answer.to_string(), "ca", |_| panic!("no look-up")).expect("as is");
        assert_eq!(back, answer);
    }
}
