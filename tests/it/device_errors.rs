//! Every refusal answers with its JSON code and leaves the database as it was.

use crate::client::{csr, error_code, p256, register, registration, Device};
use crate::fixture::Server;
use openssl::pkey::PKey;
use openssl::rsa::Rsa;
use serde_json::{json, Value};

/// Sends a message and checks the status, the code and that nothing changed.
fn refused(server: &Server, client: &Device, body: &[u8], status: u16, code: &str) -> Value {
    let before = server.snapshot();
    let (got, answer) = client.post_raw(body);
    assert_eq!((got, error_code(&answer)), (status, code), "{answer}");
    assert!(answer["error"]["message"]
        .as_str()
        .is_some_and(|m| !m.is_empty()));
    assert_eq!(
        before,
        server.snapshot(),
        "a refused {code} changed the database"
    );
    answer
}

/// An ENTITLEMENT answered as usual.
fn speak(client: &Device) {
    let (status, answer) = client.post_raw(
        json!({"type": "ENTITLEMENT", "message_id": "warm", "entitlements": []})
            .to_string()
            .as_bytes(),
    );
    assert_eq!(status, 200, "{answer}");
}

fn reg(token: &str, sn: &str) -> Vec<u8> {
    registration(&format!("m-{sn}"), sn, token, &csr(&p256()))
        .to_string()
        .into_bytes()
}

#[test]
fn token_problems_are_401_with_their_code() {
    let server = Server::start();
    let device = server.device();
    refused(
        &server,
        &device,
        &reg("no-such-token-at-all", "A1"),
        401,
        "token_unknown",
    );

    let revoked = server.token("Default", &[]);
    server.cli_ok(&["token", "revoke", &revoked]);
    refused(&server, &device, &reg(&revoked, "A2"), 401, "token_revoked");

    let once = server.token("Default", &["--max-uses", "1"]);
    register(&server, "A3", &once);
    refused(&server, &device, &reg(&once, "A4"), 401, "token_exhausted");

    let short = server.token("Default", &["--days", "1"]);
    server.clock.advance(time::Duration::hours(25));
    refused(&server, &device, &reg(&short, "A5"), 401, "token_expired");
}

#[test]
fn revoking_a_token_leaves_its_devices_registered() {
    let server = Server::start();
    let token = server.token("Default", &[]);
    let router = register(&server, "KEEP", &token);
    server.cli_ok(&["token", "revoke", &token[..12]]);
    let (status, answer) = router
        .client
        .post(&json!({"type": "ACKNOWLEDGEMENT", "message_id": "a", "ack_message_id": "reg-KEEP"}));
    assert_eq!(status, 200, "{answer}");
}

#[test]
fn malformed_requests_name_the_field() {
    let server = Server::start();
    let device = server.device();
    let token = server.token("Default", &[]);
    let weak = PKey::from_rsa(Rsa::generate(1024).expect("rsa")).expect("pkey");
    let garbage_csr =
        "-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----";
    // (body, the field the answer must name, words its message must hold)
    let cases: Vec<(String, &str, &str)> = vec![
        ("{not json".into(), "body", "key must be a string"),
        (
            json!({"type": "REGISTRATION", "message_id": "m", "udi": {"pid": "P", "sn": 5}, "idtoken": token, "csr": "x"}).to_string(),
            "udi.sn",
            "invalid type",
        ),
        (
            json!({"type": "REGISTRATION", "message_id": "m", "udi": {"pid": "P", "sn": "S"}, "csr": "x"}).to_string(),
            "idtoken",
            "missing field",
        ),
        (json!({"type": "SHOUT", "message_id": "m"}).to_string(), "type", "unknown variant"),
        (registration("m-g", "G1", &token, garbage_csr).to_string(), "csr", "PKCS#10"),
        (registration("m-w", "G2", &token, &csr(&weak)).to_string(), "csr", "2048"),
    ];
    for (body, field, words) in cases {
        let answer = refused(&server, &device, body.as_bytes(), 400, "invalid_request");
        assert_eq!(answer["error"]["field"], field, "{answer}");
        let message = answer["error"]["message"].as_str().unwrap_or("");
        assert!(
            message.starts_with(field) && message.contains(words),
            "{answer}"
        );
    }
}

#[test]
fn a_body_over_64_kib_is_413() {
    let server = Server::start();
    let token = server.token("Default", &[]);
    let mut big = registration("m-big", "BIG", &token, &csr(&p256()));
    big["hostname"] = Value::String("x".repeat(70 * 1024));
    refused(
        &server,
        &server.device(),
        big.to_string().as_bytes(),
        413,
        "payload_too_large",
    );
}

#[test]
fn certificate_problems_are_403() {
    let server = Server::start();
    let token = server.token("Default", &[]);
    let dereg = json!({"type": "DEREGISTRATION", "message_id": "d1"}).to_string();

    refused(
        &server,
        &server.device(),
        dereg.as_bytes(),
        403,
        "certificate_required",
    );

    // A certificate from another CA, for the same kind of key and name.
    let other = tempfile::tempdir().expect("tempdir");
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let foreign_ca =
        satellite::pki::CertificateAuthority::create(other.path(), "Rogue CA", now).expect("ca");
    let key = p256();
    let csr_req = satellite::pki::parse_csr(&csr(&key)).expect("csr");
    let foreign = foreign_ca
        .issue_device_certificate(&csr_req, "rogue", now)
        .expect("issue");
    let rogue = Device::new(
        &server.device_url,
        &server.ca_path(),
        Some((&foreign.pem, &key)),
    );
    refused(
        &server,
        &rogue,
        dereg.as_bytes(),
        403,
        "certificate_unknown",
    );

    // A deregistered certificate.
    let router = register(&server, "GONE", &token);
    let (status, _) = router
        .client
        .post(&json!({"type": "DEREGISTRATION", "message_id": "bye"}));
    assert_eq!(status, 200);
    refused(
        &server,
        &router.client,
        json!({"type": "DEREGISTRATION", "message_id": "bye-again"})
            .to_string()
            .as_bytes(),
        403,
        "certificate_revoked",
    );
}

#[test]
fn an_instance_removed_by_the_operator_is_refused_at_once() {
    let server = Server::start();
    let token = server.token("Default", &[]);
    let router = register(&server, "REMOVED", &token);
    // Spoken just before: the writer holds a copy of this caller, which
    // the CLI's commit must make it drop.
    speak(&router.client);
    server.cli_ok(&["instance", "remove", "N540-24Z8Q2C-M:REMOVED"]);
    refused(
        &server,
        &router.client,
        json!({"type": "ACKNOWLEDGEMENT", "message_id": "x", "ack_message_id": "reg-REMOVED"})
            .to_string()
            .as_bytes(),
        403,
        "certificate_revoked",
    );
}

#[test]
fn an_expired_certificate_is_refused() {
    let server = Server::start();
    let token = server.token("Default", &[]);
    let router = register(&server, "OLD", &token);
    speak(&router.client);
    server.clock.advance(time::Duration::days(366));
    refused(
        &server,
        &router.client,
        json!({"type": "DEREGISTRATION", "message_id": "late"})
            .to_string()
            .as_bytes(),
        403,
        "certificate_unknown",
    );
}

#[test]
fn refused_entitlements_change_nothing_and_retries_count_once() {
    let server = Server::start();
    let token = server.token("Default", &[]);
    let router = register(&server, "ENT", &token);
    refused(
        &server,
        &router.client,
        br#"{"type":"ENTITLEMENT","message_id":"x1"}"#,
        400,
        "invalid_request",
    );
    refused(&server, &router.client, br#"{"type":"ENTITLEMENT","message_id":"x2","entitlements":[{"tag":"ESS-AC-10G-RTU-1","count":"many"}]}"#, 400, "invalid_request");
    refused(
        &server,
        &router.client,
        br#"{"type":"RENEW","message_id":"x3","entitlements":[]}"#,
        400,
        "invalid_request",
    );

    let message = json!({"type": "ENTITLEMENT", "message_id": "once", "entitlements": [{"tag": "ESS-AC-10G-RTU-1", "count": 2}]});
    let (status, first) = router.client.post(&message);
    assert_eq!(status, 200, "{first}");
    let after_first = server.snapshot();
    let (status, again) = router.client.post(&message);
    assert_eq!((status, &again), (200, &first));
    assert_eq!(
        after_first,
        server.snapshot(),
        "a retried ENTITLEMENT must change nothing"
    );
}

#[test]
fn call_home_errors_come_back_in_the_envelope() {
    let server = Server::start();
    let agent = crate::client::agent(&server.ca_path(), None);
    let url = format!("{}{}", server.device_url, satellite::notify::callhome::PATH);
    let before = server.snapshot();
    for body in ["<not-xml", "<?xml version=\"1.0\"?><a/>", ""] {
        let response = match agent
            .post(&url)
            .set("Content-Type", "application/soap+xml")
            .send_string(body)
        {
            Err(ureq::Error::Status(_, r)) => r,
            other => panic!(
                "expected a 400 for {body:?}, got {:?}",
                other.map(|r| r.status())
            ),
        };
        assert_eq!(response.status(), 400);
        let xml = response.into_string().expect("body");
        let inner = satellite::notify::callhome::unwrap(&xml).expect("an answer in the envelope");
        let answer: Value = serde_json::from_str(&inner).expect("json inside");
        assert_eq!(error_code(&answer), "invalid_request", "{inner}");
    }
    // A real message inside an envelope gets a real answer in one.
    let inner = json!({"type": "REGISTRATION", "message_id": "ch", "udi": {"pid": "P", "sn": "S"}, "idtoken": "nope-nope-nope-nope", "csr": csr(&p256())});
    let envelope = satellite::notify::callhome::wrap(
        &inner.to_string(),
        &url,
        "M1",
        "P@C@S",
        time::OffsetDateTime::now_utc(),
    );
    let response = match agent.post(&url).send_string(&envelope) {
        Err(ureq::Error::Status(_, r)) => r,
        other => panic!("expected 401, got {:?}", other.map(|r| r.status())),
    };
    assert_eq!(response.status(), 401);
    let answer: Value = serde_json::from_str(
        &satellite::notify::callhome::unwrap(&response.into_string().expect("body"))
            .expect("envelope"),
    )
    .expect("json");
    assert_eq!(error_code(&answer), "token_unknown");
    assert_eq!(before, server.snapshot());
}

#[test]
fn a_message_id_answers_only_the_same_message_from_the_same_sender() {
    let server = Server::start();
    let token = server.token("Default", &[]);
    let other_token = server.token("Default", &[]);
    let router = register(&server, "REUSE", &token);
    // The registration's id, reused by another token: no answer for it.
    let stolen = registration("reg-REUSE", "REUSE", &other_token, &csr(&p256()));
    let answer = refused(
        &server,
        &server.device(),
        stolen.to_string().as_bytes(),
        400,
        "invalid_request",
    );
    assert_eq!(answer["error"]["field"], "message_id", "{answer}");
    // The same id as another type of message.
    let reused = json!({"type": "DEREGISTRATION", "message_id": "reg-REUSE"});
    refused(
        &server,
        &router.client,
        reused.to_string().as_bytes(),
        400,
        "invalid_request",
    );
}

#[test]
fn unknown_paths_answer_in_json() {
    let server = Server::start();
    let agent = crate::client::agent(&server.ca_path(), None);
    for url in [
        format!("{}/nope", server.device_url),
        format!("{}/nope", server.admin_url),
    ] {
        let response = match agent.get(&url).call() {
            Err(ureq::Error::Status(_, r)) => r,
            other => panic!("expected 404, got {:?}", other.map(|r| r.status())),
        };
        assert_eq!(response.status(), 404);
        let body: Value =
            serde_json::from_str(&response.into_string().expect("body")).expect("json");
        assert_eq!(error_code(&body), "not_found");
    }
}

#[test]
fn a_udi_with_any_printable_characters_registers() {
    let server = Server::start();
    let token = server.token("Default", &[]);
    let sn = format!("SN_{}@#*;{}", "x".repeat(20), "y".repeat(30));
    let body = json!({"type": "REGISTRATION", "message_id": "odd", "udi": {"pid": format!("PID-{}", "P".repeat(59)), "sn": sn},
        "idtoken": token, "csr": csr(&p256())});
    let (status, answer) = server.device().post(&body);
    assert_eq!(status, 200, "{answer}");
}

#[test]
fn a_superseded_certificate_is_refused_even_for_a_message_it_sent_before() {
    let server = Server::start();
    let token = server.token("Default", &[]);
    let first = crate::client::register(&server, "SUPERSEDED", &token);
    let ask = serde_json::json!({"type": "ENTITLEMENT", "message_id": "e-old",
        "entitlements": [{"tag": "ESS-AC-10G-RTU-1", "count": 1}]});
    let (status, _) = first.client.post(&ask);
    assert_eq!(status, 200);
    // Registering the UDI again replaces (and revokes) the first certificate.
    let key = crate::client::p256();
    let (status, again) = server.device().post(&crate::client::registration(
        "reg-again",
        "SUPERSEDED",
        &token,
        &crate::client::csr(&key),
    ));
    assert_eq!(status, 200, "{again}");
    let (status, answer) = first.client.post(&ask);
    assert_eq!(status, 403, "{answer}");
    assert_eq!(crate::client::error_code(&answer), "certificate_revoked");
}
