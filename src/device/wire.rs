//! The device API's JSON messages (DESIGN §7), parsed strictly enough that a
//! malformed request is refused with the field to fix.

use crate::domain::Udi;
use crate::error::Error;
use serde::{Deserialize, Serialize};

/// Largest request body accepted on the device API.
pub const MAX_BODY: usize = 64 * 1024;
const MAX_MESSAGE_ID: usize = 128;
const MAX_HOSTNAME: usize = 255;
const MAX_ENTITLEMENTS: usize = 256;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum MessageType {
    Registration,
    Entitlement,
    Renew,
    Deregistration,
    Acknowledgement,
}

impl MessageType {
    pub const ALL: [MessageType; 5] = [
        MessageType::Registration,
        MessageType::Entitlement,
        MessageType::Renew,
        MessageType::Deregistration,
        MessageType::Acknowledgement,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            MessageType::Registration => "REGISTRATION",
            MessageType::Entitlement => "ENTITLEMENT",
            MessageType::Renew => "RENEW",
            MessageType::Deregistration => "DEREGISTRATION",
            MessageType::Acknowledgement => "ACKNOWLEDGEMENT",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RenewKind {
    Id,
    Auth,
}

/// The largest count one message may ask for.
pub const MAX_COUNT: u32 = 1_000_000;

pub use crate::domain::EntitlementRequest;

/// One device message. Which optional fields are required depends on `type`.
#[derive(Debug, Deserialize)]
pub struct Message {
    #[serde(rename = "type")]
    pub message_type: MessageType,
    pub message_id: String,
    #[serde(default)]
    pub udi: Option<Udi>,
    #[serde(default)]
    pub idtoken: Option<String>,
    #[serde(default)]
    pub hostname: Option<String>,
    #[serde(default)]
    pub csr: Option<String>,
    #[serde(default)]
    pub kind: Option<RenewKind>,
    #[serde(default)]
    pub entitlements: Option<Vec<EntitlementRequest>>,
    #[serde(default)]
    pub ack_message_id: Option<String>,
}

impl Message {
    /// Parses a body; errors name the offending field.
    pub fn parse(body: &[u8]) -> Result<Self, Error> {
        let mut de = serde_json::Deserializer::from_slice(body);
        let message: Message = serde_path_to_error::deserialize(&mut de).map_err(|e| {
            let path = e.path().to_string();
            let inner = e.into_inner();
            let field = if path == "." || path == "?" {
                missing_field(&inner.to_string()).unwrap_or_else(|| "body".to_string())
            } else {
                path
            };
            Error::invalid(field, inner.to_string())
        })?;
        de.end().map_err(|e| {
            Error::invalid("body", format!("trailing data after the JSON object: {e}"))
        })?;
        message.check()?;
        Ok(message)
    }

    fn check(&self) -> Result<(), Error> {
        if self.message_id.is_empty() || self.message_id.len() > MAX_MESSAGE_ID {
            return Err(Error::invalid(
                "message_id",
                format!("must be 1 to {MAX_MESSAGE_ID} characters"),
            ));
        }
        if self.message_id.chars().any(char::is_control) {
            return Err(Error::invalid(
                "message_id",
                "must not contain control characters",
            ));
        }
        if let Some(udi) = &self.udi {
            udi.check()
                .map_err(|(field, reason)| Error::invalid(field, reason))?;
        }
        if let Some(hostname) = &self.hostname {
            if hostname.len() > MAX_HOSTNAME || hostname.chars().any(char::is_control) {
                return Err(Error::invalid(
                    "hostname",
                    format!("must be at most {MAX_HOSTNAME} printable characters"),
                ));
            }
        }
        if let Some(entitlements) = &self.entitlements {
            if entitlements.len() > MAX_ENTITLEMENTS {
                return Err(Error::invalid(
                    "entitlements",
                    format!("at most {MAX_ENTITLEMENTS} entitlements per message"),
                ));
            }
            for (i, e) in entitlements.iter().enumerate() {
                if e.tag.is_empty() || e.tag.len() > 128 || e.tag.chars().any(char::is_control) {
                    return Err(Error::invalid(
                        format!("entitlements[{i}].tag"),
                        "must be 1 to 128 printable characters",
                    ));
                }
                // The emulator and `license add` stop at a million too; a
                // larger count is a broken or hostile device, not demand.
                if e.count > MAX_COUNT {
                    return Err(Error::invalid(
                        format!("entitlements[{i}].count"),
                        format!("must be 0 to {MAX_COUNT}"),
                    ));
                }
            }
        }
        Ok(())
    }

    pub fn require_udi(&self) -> Result<&Udi, Error> {
        self.udi.as_ref().ok_or_else(|| {
            Error::invalid("udi", "missing field `udi` ({\"pid\": ..., \"sn\": ...})")
        })
    }

    pub fn require<'a>(value: &'a Option<String>, field: &str) -> Result<&'a str, Error> {
        match value.as_deref() {
            Some(v) if !v.trim().is_empty() => Ok(v),
            _ => Err(Error::invalid(field, format!("missing field `{field}`"))),
        }
    }
}

fn missing_field(message: &str) -> Option<String> {
    let rest = message.strip_prefix("missing field `")?;
    Some(rest.split('`').next()?.to_string())
}

/// `registration` in answers to REGISTRATION and RENEW id.
#[derive(Debug, Clone, Serialize)]
pub struct RegistrationTimes {
    pub initial: String,
    pub next_renewal: String,
    pub expires: String,
}

/// The answer to REGISTRATION and to RENEW with `kind: id`.
#[derive(Debug, Clone, Serialize)]
pub struct IdentityAnswer<'a> {
    #[serde(rename = "type")]
    pub message_type: &'static str,
    pub message_id: &'a str,
    pub status: &'static str,
    pub certificate: &'a str,
    pub ca_certificate: &'a str,
    pub instance_id: &'a str,
    pub account: &'a str,
    pub virtual_account: &'a str,
    /// On REGISTRATION: whether the token allows export-controlled
    /// functionality, which the device keeps.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub export_controlled: Option<bool>,
    pub udi: &'a Udi,
    pub registration: RegistrationTimes,
}

/// The answer to ENTITLEMENT and to RENEW with `kind: auth`. Fields in
/// alphabetical order: the order its answers had when built as a
/// `serde_json::Value`, so a stored first answer and a new one read alike.
#[derive(Debug, Clone, Serialize)]
pub struct AuthorizationAnswer<'a> {
    pub authorization: AuthorizationTimes,
    pub entitlements: Vec<EntitlementAnswer<'a>>,
    pub instance_id: &'a str,
    pub message_id: &'a str,
    pub status: &'static str,
    #[serde(rename = "type")]
    pub message_type: &'static str,
    pub virtual_account: &'a str,
}

#[derive(Debug, Clone, Serialize)]
pub struct AuthorizationTimes {
    pub authorized_at: String,
    pub deadline: String,
    pub next_communication: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct EntitlementAnswer<'a> {
    pub count: u32,
    pub status: &'static str,
    pub tag: &'a str,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field_of(body: &str) -> String {
        match Message::parse(body.as_bytes()) {
            Err(Error::Invalid { field, .. }) => field,
            other => panic!("expected a field error, got {other:?}"),
        }
    }

    #[test]
    fn a_count_over_a_million_is_refused_naming_its_entry() {
        assert_eq!(
            field_of(
                r#"{"type":"ENTITLEMENT","message_id":"m","entitlements":[{"tag":"T","count":1},{"tag":"T","count":1000001}]}"#
            ),
            "entitlements[1].count"
        );
    }

    #[test]
    fn names_the_field_at_fault() {
        assert_eq!(field_of("{"), "body");
        assert_eq!(field_of(r#"{"type":"REGISTRATION"}"#), "message_id");
        assert_eq!(field_of(r#"{"type":"NOPE","message_id":"m"}"#), "type");
        assert_eq!(
            field_of(r#"{"type":"REGISTRATION","message_id":"m","udi":{"pid":"P","sn":7}}"#),
            "udi.sn"
        );
        assert_eq!(
            field_of(
                r#"{"type":"ENTITLEMENT","message_id":"m","entitlements":[{"tag":"T","count":-1}]}"#
            ),
            "entitlements[0].count"
        );
        assert_eq!(
            field_of(r#"{"type":"RENEW","message_id":""}"#),
            "message_id"
        );
    }

    #[test]
    fn accepts_a_registration() {
        let m = Message::parse(
            br#"{"type":"REGISTRATION","message_id":"m1","udi":{"pid":"N540","sn":"X"},"idtoken":"t","csr":"c","extra":1}"#,
        )
        .expect("valid");
        assert_eq!(m.message_type, MessageType::Registration);
        assert_eq!(m.require_udi().expect("udi").sn, "X");
    }
}
