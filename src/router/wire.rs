//! The device API messages (DESIGN §7): what the router sends and how it
//! reads the answers. Answers are checked field by field; a missing or
//! malformed field is a bad response, never a panic.

use super::state::{Authorization, TagStatus, Udi};
use super::times;
use serde::Deserialize;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use time::OffsetDateTime;

/// A message ready to send, with the id it was given.
pub struct Message {
    pub id: String,
    pub body: Value,
}

/// A fresh message id.
pub fn new_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

fn base(kind: &str, udi: &Udi) -> (String, serde_json::Map<String, Value>) {
    with_id(kind, udi, new_id())
}

fn with_id(kind: &str, udi: &Udi, id: String) -> (String, serde_json::Map<String, Value>) {
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

/// RENEW id under a given message id: a retry after a lost answer must
/// repeat the id to get the first answer (see `state::PendingIdentity`).
pub fn renew_id(udi: &Udi, csr: &str, message_id: &str) -> Message {
    let (id, mut m) = with_id("RENEW", udi, message_id.to_string());
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

#[derive(Debug, Deserialize)]
struct RegistrationTimes {
    #[serde(with = "time::serde::rfc3339")]
    initial: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    next_renewal: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    expires: OffsetDateTime,
}

/// The answer to REGISTRATION and RENEW id.
#[derive(Debug, Deserialize)]
pub struct IdAnswer {
    pub certificate: String,
    pub ca_certificate: String,
    pub instance_id: String,
    pub account: String,
    pub virtual_account: String,
    /// Set on REGISTRATION from the token; absent from older servers.
    #[serde(default)]
    pub export_controlled: Option<bool>,
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
    #[serde(default)]
    virtual_account: Option<String>,
    status: String,
    #[serde(default)]
    entitlements: Vec<TagStatus>,
    authorization: AuthorizationTimes,
}

/// Times are range-checked here, so the state never holds one that `show`
/// or the timers cannot handle (`times`).
pub fn parse_id_answer(answer: &Value) -> Result<IdAnswer, String> {
    status_is_success(answer)?;
    let parsed: IdAnswer = IdAnswer::deserialize(answer).map_err(|e| e.to_string())?;
    let r = &parsed.registration;
    for (field, t) in [
        ("registration.initial", r.initial),
        ("registration.next_renewal", r.next_renewal),
        ("registration.expires", r.expires),
    ] {
        times::check_field(field, t)?;
    }
    Ok(parsed)
}

/// An answer to ENTITLEMENT or RENEW auth.
#[derive(Debug)]
pub struct AuthorizationAnswer {
    pub authorization: Authorization,
    /// Where the satellite has the instance now (it may have moved it).
    pub virtual_account: Option<String>,
}

/// The answer to ENTITLEMENT and RENEW auth, times range-checked.
pub fn parse_authorization(answer: &Value) -> Result<AuthorizationAnswer, String> {
    let parsed: AuthAnswer = AuthAnswer::deserialize(answer).map_err(|e| e.to_string())?;
    let a = &parsed.authorization;
    for (field, t) in [
        ("authorization.authorized_at", a.authorized_at),
        ("authorization.next_communication", a.next_communication),
        ("authorization.deadline", a.deadline),
    ] {
        times::check_field(field, t)?;
    }
    let virtual_account = parsed
        .virtual_account
        .filter(|va| !va.is_empty() && va.len() <= 256 && !va.chars().any(char::is_control));
    Ok(AuthorizationAnswer {
        authorization: Authorization {
            status: parsed.status,
            authorized_at: parsed.authorization.authorized_at,
            next_communication: parsed.authorization.next_communication,
            deadline: parsed.authorization.deadline,
            entitlements: parsed.entitlements,
        },
        virtual_account,
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

    #[test]
    fn times_out_of_range_are_bad_answers() {
        let mut auth = json!({"status": "AUTHORIZED", "authorization": {
            "authorized_at": "2023-05-10T16:40:00Z", "next_communication": "2023-06-09T16:40:00Z",
            "deadline": "9999-12-31T23:59:59-23:59"}});
        let err = parse_authorization(&auth).unwrap_err();
        assert!(err.starts_with("authorization.deadline: "), "{err}");
        auth["authorization"]["deadline"] = json!("2023-08-08T15:40:51Z");
        auth["authorization"]["authorized_at"] = json!("1999-01-01T00:00:00Z");
        let err = parse_authorization(&auth).unwrap_err();
        assert!(err.starts_with("authorization.authorized_at: "), "{err}");
        let id = json!({"certificate": "c", "ca_certificate": "ca", "instance_id": "i",
            "account": "A", "virtual_account": "V", "registration": {
            "initial": "2023-05-10T16:39:56Z", "next_renewal": "2023-11-06T16:39:56Z",
            "expires": "9000-01-01T00:00:00Z"}});
        let err = parse_id_answer(&id).unwrap_err();
        assert!(err.starts_with("registration.expires: "), "{err}");
    }

    #[test]
    fn renew_id_keeps_the_given_message_id() {
        let m = renew_id(&udi(), "csr", "m-1");
        assert_eq!(
            (m.id.as_str(), &m.body["message_id"]),
            ("m-1", &json!("m-1"))
        );
        assert_eq!(m.body["kind"], "id");
    }

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
        assert_eq!(auth.authorization.status, "OUT_OF_COMPLIANCE");
        assert_eq!(auth.authorization.entitlements.len(), 1);
        assert_eq!(auth.virtual_account, None, "an older server names no VA");
        let mut moved = ok.clone();
        moved["virtual_account"] = json!("Lab");
        let auth = parse_authorization(&moved).unwrap();
        assert_eq!(auth.virtual_account.as_deref(), Some("Lab"));
        let err = parse_authorization(&json!({"status": "AUTHORIZED"})).unwrap_err();
        assert!(err.contains("authorization"), "{err}");
        assert!(parse_id_answer(&json!({"status": "FAILED"})).is_err());
        let err = parse_id_answer(&json!({"status": "FAILED"})).unwrap_err();
        assert_eq!(err, "status FAILED (expected SUCCESS)");
        assert_eq!(answer_id(&json!({"message_id": "srv"}), "req"), "srv");
        assert_eq!(answer_id(&json!({}), "req"), "req");
    }
}
