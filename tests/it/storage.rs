//! What the device API keeps on disk: small rows, written only when they change.

use crate::client::{csr, p256, register, registration, Device};
use crate::fixture::Server;
use serde_json::json;

#[test]
fn a_registration_answer_is_kept_without_copying_its_certificates_and_replays_whole() {
    let server = Server::start();
    let token = server.token("Default", &[]);
    let key = p256();
    let message = registration("compact-1", "SN-COMPACT", &token, &csr(&key));
    let (status, first) = server.device().post(&message);
    assert_eq!(status, 200, "{first}");

    let kept: String = server
        .db()
        .query_row(
            "SELECT response FROM device_messages WHERE message_id = 'compact-1'",
            [],
            |r| r.get(0),
        )
        .expect("answer kept");
    assert!(
        !kept.contains("BEGIN CERTIFICATE"),
        "the kept answer points at the certificate row and the CA: {kept}"
    );
    assert!(kept.len() < 700, "{} bytes kept: {kept}", kept.len());

    // The retry gets every field of the first answer back, PEMs included.
    let (status, again) = server.device().post(&message);
    assert_eq!((status, &again), (200, &first));
    assert!(again["certificate"]
        .as_str()
        .is_some_and(|pem| pem.starts_with("-----BEGIN CERTIFICATE-----")));

    // Identity renewal too, retried with the certificate it replaced.
    let client = Device::new(
        &server.device_url,
        &server.ca_path(),
        Some((first["certificate"].as_str().expect("cert"), &key)),
    );
    let renew =
        json!({"type": "RENEW", "kind": "id", "message_id": "compact-2", "csr": csr(&p256())});
    let (status, renewed) = client.post(&renew);
    assert_eq!(status, 200, "{renewed}");
    let (status, renewed_again) = client.post(&renew);
    assert_eq!((status, &renewed_again), (200, &renewed));
    assert_ne!(renewed["certificate"], first["certificate"]);
}

#[test]
fn an_entitlement_repeating_its_demand_rewrites_no_usage_row() {
    let server = Server::start();
    let token = server.token("Default", &[]);
    let router = register(&server, "SN-SAME", &token);
    // Counts every write of a usage row the server makes from here on.
    server
        .db()
        .execute_batch(
            "CREATE TABLE usage_writes (n INTEGER);
             CREATE TRIGGER count_usage_updates AFTER UPDATE ON entitlement_usage
             BEGIN INSERT INTO usage_writes VALUES (1); END;
             CREATE TRIGGER count_usage_inserts AFTER INSERT ON entitlement_usage
             BEGIN INSERT INTO usage_writes VALUES (1); END;",
        )
        .expect("counting triggers");
    let writes = || -> i64 {
        server
            .db()
            .query_row("SELECT COUNT(*) FROM usage_writes", [], |r| r.get(0))
            .expect("count")
    };
    let ask = |id: &str, count: u32| {
        let (status, answer) = router
            .client
            .post(&json!({"type": "ENTITLEMENT", "message_id": id,
            "entitlements": [{"tag": "ESS-AC-10G-RTU-1", "count": count}]}));
        assert_eq!(status, 200, "{answer}");
        answer
    };
    ask("same-1", 2);
    assert_eq!(writes(), 1, "the first demand is written");
    let answer = ask("same-2", 2);
    ask("same-3", 2);
    assert_eq!(writes(), 1, "a repeated demand writes no usage row");
    assert_eq!(answer["entitlements"][0]["count"], 2);
    assert!(answer["entitlements"][0]["status"].is_string());
    ask("same-4", 3);
    assert_eq!(writes(), 2, "a changed demand is written");
    let in_use: i64 = server
        .db()
        .query_row(
            "SELECT in_use FROM pools WHERE tag = 'ESS-AC-10G-RTU-1'",
            [],
            |r| r.get(0),
        )
        .expect("pool");
    assert_eq!(in_use, 3);
}
