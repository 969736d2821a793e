//! The device API messages (DESIGN §7): what the router sends and how it
//! reads the answers. Answers are checked field by field; a missing or
//! malformed field is a bad response, never a panic.

use super::state::{Authorization, TagStatus, Udi};
use serde::Deserialize;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use time::OffsetDateTime;

/// A message ready to send, with the id it was given.
pub struct Message {
    pub id: String,
    pub body: Value,
}

fn base(kind: &str, udi: &Udi) -> (String, serde_json::Map<String, Value>) {
    let id = uuid::Uuid::new_v4().to_string();
    let mut m = serde_json::Map::new();
    m.insert("type".into(), json!(kind));
    m.insert("message_id".into(), json!(id));
    m.insert("udi".into(), json!({"pid": udi.pid, "sn": udi.sn}));
    (id, m)
}

fn finish(id: String, map: serde_json::Map<String, Value>) -> Message {
    Message {
        id,
        body: Value::Object(map),
    }
}

fn entitlements(demand: &BTreeMap<String, u32>) -> Value {
    Value::Array(
        demand
            .iter()
            .map(|(tag, count)| json!({"tag": tag, "count": count}))
            .collect(),
    )
}

pub fn registration(udi: &Udi, idtoken: &str, hostname: &str, csr: &str) -> Message {
    let (id, mut m) = base("REGISTRATION", udi);
    m.insert("idtoken".into(), json!(idtoken));
    m.insert("hostname".into(), json!(hostname));
    m.insert("csr".into(), json!(csr));
    finish(id, m)
}

pub fn renew_id(udi: &Udi, csr: &str) -> Message {
    let (id, mut m) = base("RENEW", udi);
    m.insert("kind".into(), json!("id"));
    m.insert("csr".into(), json!(csr));
    finish(id, m)
}

pub fn renew_auth(udi: &Udi, demand: &BTreeMap<String, u32>) -> Message {
    let (id, mut m) = base("RENEW", udi);
    m.insert("kind".into(), json!("auth"));
    m.insert("entitlements".into(), entitlements(demand));
    finish(id, m)
}

pub fn entitlement(udi: &Udi, demand: &BTreeMap<String, u32>) -> Message {
    let (id, mut m) = base("ENTITLEMENT", udi);
    m.insert("entitlements".into(), entitlements(demand));
    finish(id, m)
}

pub fn deregistration(udi: &Udi) -> Message {
    let (id, m) = base("DEREGISTRATION", udi);
    finish(id, m)
}

pub fn acknowledgement(udi: &Udi, ack_message_id: &str) -> Message {
    let (id, mut m) = base("ACKNOWLEDGEMENT", udi);
    m.insert("ack_message_id".into(), json!(ack_message_id));
    finish(id, m)
}

/// The id to acknowledge: the answer's own `message_id`, or the request's
/// when the server echoes none.
pub fn answer_id(answer: &Value, request_id: &str) -> String {
    answer
        .get("message_id")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .unwrap_or(request_id)
        .to_string()
}

#[derive(Deserialize)]
struct RegistrationTimes {
    #[serde(with = "time::serde::rfc3339")]
    initial: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    next_renewal: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    expires: OffsetDateTime,
}

/// The answer to REGISTRATION and RENEW id.
#[derive(Deserialize)]
pub struct IdAnswer {
    #[serde(default)]
    status: Option<String>,
    pub certificate: String,
    pub ca_certificate: String,
    pub instance_id: String,
    pub account: String,
    pub virtual_account: String,
    registration: RegistrationTimes,
}

impl IdAnswer {
    pub fn initial(&self) -> OffsetDateTime {
        self.registration.initial
    }
    pub fn next_renewal(&self) -> OffsetDateTime {
        self.registration.next_renewal
    }
    pub fn expires(&self) -> OffsetDateTime {
        self.registration.expires
    }
}

#[derive(Deserialize)]
struct AuthorizationTimes {
    #[serde(with = "time::serde::rfc3339")]
    authorized_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    next_communication: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    deadline: OffsetDateTime,
}

#[derive(Deserialize)]
struct AuthAnswer {
    status: String,
    #[serde(default)]
    entitlements: Vec<TagStatus>,
    authorization: AuthorizationTimes,
}

pub fn parse_id_answer(answer: &Value) -> Result<IdAnswer, String> {
    let parsed: IdAnswer = IdAnswer::deserialize(answer).map_err(|e| e.to_string())?;
    match parsed.status.as_deref() {
        None | Some("SUCCESS") => Ok(parsed),
        Some(other) => Err(format!("status {other} (expected SUCCESS)")),
    }
}

/// The answer to ENTITLEMENT and RENEW auth.
pub fn parse_authorization(answer: &Value) -> Result<Authorization, String> {
    let parsed: AuthAnswer = AuthAnswer::deserialize(answer).map_err(|e| e.to_string())?;
    Ok(Authorization {
        status: parsed.status,
        authorized_at: parsed.authorization.authorized_at,
        next_communication: parsed.authorization.next_communication,
        deadline: parsed.authorization.deadline,
        entitlements: parsed.entitlements,
    })
}

pub fn status_is_success(answer: &Value) -> Result<(), String> {
    match answer.get("status").and_then(Value::as_str) {
        None | Some("SUCCESS") => Ok(()),
        Some(other) => Err(format!("status {other} (expected SUCCESS)")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn udi() -> Udi {
        Udi {
            pid: "N540-24Z8Q2C-M".into(),
            sn: "FOC2104R0XX".into(),
        }
    }

    #[test]
    fn messages_carry_type_fresh_ids_and_udi() {
        let demand: BTreeMap<String, u32> = [("ESS-AC-10G-RTU-1".to_string(), 44)].into();
        let a = entitlement(&udi(), &demand);
        let b = entitlement(&udi(), &demand);
        assert_ne!(a.id, b.id);
        assert_eq!(a.body["type"], "ENTITLEMENT");
        assert_eq!(a.body["message_id"], a.id.as_str());
        assert_eq!(
            a.body["udi"],
            json!({"pid": "N540-24Z8Q2C-M", "sn": "FOC2104R0XX"})
        );
        assert_eq!(
            a.body["entitlements"],
            json!([{"tag": "ESS-AC-10G-RTU-1", "count": 44}])
        );
        let r = renew_auth(&udi(), &demand);
        assert_eq!(
            (r.body["type"].as_str(), r.body["kind"].as_str()),
            (Some("RENEW"), Some("auth"))
        );
        let ack = acknowledgement(&udi(), "x");
        assert_eq!(ack.body["ack_message_id"], "x");
    }

    #[test]
    fn reads_answers_and_names_missing_fields() {
        let ok = json!({
            "status": "OUT_OF_COMPLIANCE",
            "entitlements": [{"tag": "T", "count": 2, "status": "OUT_OF_COMPLIANCE"}],
            "authorization": {"authorized_at": "2023-05-10T16:40:00Z",
                "next_communication": "2023-06-09T16:40:00Z", "deadline": "2023-08-08T15:40:51Z"}
        });
        let auth = parse_authorization(&ok).unwrap();
        assert_eq!(auth.status, "OUT_OF_COMPLIANCE");
        assert_eq!(auth.entitlements.len(), 1);
        let err = parse_authorization(&json!({"status": "AUTHORIZED"})).unwrap_err();
        assert!(err.contains("authorization"), "{err}");
        assert!(parse_id_answer(&json!({"status": "FAILED"})).is_err());
        assert_eq!(answer_id(&json!({"message_id": "srv"}), "req"), "srv");
        assert_eq!(answer_id(&json!({}), "req"), "req");
    }
}
