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
        .one("SELECT response FROM device_messages WHERE message_id = 'compact-1'");
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
    let counting = if crate::fixture::on_postgres() {
        "CREATE TABLE usage_writes (n INTEGER);
         CREATE FUNCTION count_usage_write() RETURNS trigger LANGUAGE plpgsql AS
         $$ BEGIN INSERT INTO usage_writes VALUES (1); RETURN NULL; END $$;
         CREATE TRIGGER count_usage_writes AFTER INSERT OR UPDATE ON entitlement_usage
         FOR EACH ROW EXECUTE FUNCTION count_usage_write();"
    } else {
        "CREATE TABLE usage_writes (n INTEGER);
         CREATE TRIGGER count_usage_updates AFTER UPDATE ON entitlement_usage
         BEGIN INSERT INTO usage_writes VALUES (1); END;
         CREATE TRIGGER count_usage_inserts AFTER INSERT ON entitlement_usage
         BEGIN INSERT INTO usage_writes VALUES (1); END;"
    };
    server.db().execute(counting);
    let writes = || -> i64 { server.db().one("SELECT COUNT(*) FROM usage_writes") };
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
        .one("SELECT in_use FROM pools WHERE tag = 'ESS-AC-10G-RTU-1'");
    assert_eq!(in_use, 3);
}

#[test]
fn the_writers_pool_copies_follow_licenses_and_removals_made_while_routers_talk() {
    let (server, token) = Server::cloud_with_lab("2");
    let a = register(&server, "SN-COPY-A", &token);
    let b = register(&server, "SN-COPY-B", &token);
    let ask = |router: &crate::client::Registered, id: &str, count: u32| {
        let (status, answer) = router
            .client
            .post(&json!({"type": "ENTITLEMENT", "message_id": id,
            "entitlements": [{"tag": "ESS-AC-10G-RTU-1", "count": count}]}));
        assert_eq!(status, 200, "{answer}");
        answer["status"].as_str().unwrap_or_default().to_string()
    };
    assert_eq!(ask(&a, "a-1", 1), "AUTHORIZED");
    assert_eq!(
        ask(&b, "b-1", 2),
        "OUT_OF_COMPLIANCE",
        "3 in use, 2 available"
    );
    assert_eq!(ask(&a, "a-2", 1), "OUT_OF_COMPLIANCE");
    // Another process (the CLI) adds licenses: the next decision sees them.
    server.cli_ok(&[
        "license",
        "add",
        "--va",
        "Lab",
        "--sku",
        "ESS-AC-10G-RTU-1",
        "--quantity",
        "1",
    ]);
    assert_eq!(ask(&a, "a-3", 1), "AUTHORIZED", "3 in use, 3 available");
    // Another process removes an instance: its demand leaves the pool.
    server.cli_ok(&["instance", "remove", "N540-24Z8Q2C-M:SN-COPY-B"]);
    assert_eq!(ask(&a, "a-4", 3), "AUTHORIZED", "3 in use, 3 available");
    assert_eq!(
        ask(&a, "a-5", 4),
        "OUT_OF_COMPLIANCE",
        "4 in use, 3 available"
    );
    let row = server.compliance("Lab", "ESS-AC-10G-RTU-1");
    assert_eq!(
        (row["in_use"].as_i64(), row["available"].as_i64()),
        (Some(4), Some(3))
    );
}

/// Copies of one ENTITLEMENT sent at once (a router retrying before its
/// first try was answered) meet in one group commit or the next: each
/// copy gets the first answer, one answer is kept, and the demand counts
/// once. On PostgreSQL the copies' answers are claimed when the group is
/// sent (src/store/batch.rs), and a copy whose claim is found taken writes
/// nothing.
#[test]
fn copies_of_one_entitlement_sent_at_once_get_the_first_answer_and_count_once() {
    let server = Server::start();
    let token = server.token("Default", &[]);
    let router = register(&server, "SN-COPIES", &token);
    let message = json!({"type": "ENTITLEMENT", "message_id": "copy-1",
        "entitlements": [{"tag": "ESS-AC-10G-RTU-1", "count": 3}]});
    let copies = 12;
    let clients: Vec<Device> = (0..copies)
        .map(|_| {
            Device::new(
                &server.device_url,
                &server.ca_path(),
                Some((&router.certificate, &router.key)),
            )
        })
        .collect();
    let start = std::sync::Barrier::new(copies);
    let answers: Vec<(u16, serde_json::Value)> = std::thread::scope(|s| {
        let sent: Vec<_> = clients
            .iter()
            .map(|client| {
                s.spawn(|| {
                    start.wait();
                    client.post(&message)
                })
            })
            .collect();
        sent.into_iter()
            .map(|copy| copy.join().expect("a copy's thread"))
            .collect()
    });
    let (_, first) = &answers[0];
    for (status, answer) in &answers {
        assert_eq!(*status, 200, "{answer}");
        assert_eq!(answer, first, "every copy gets the first answer");
    }
    let kept: i64 = server
        .db()
        .one("SELECT COUNT(*) FROM device_messages WHERE message_id = 'copy-1'");
    assert_eq!(kept, 1);
    let in_use: i64 = server
        .db()
        .one("SELECT in_use FROM pools WHERE tag = 'ESS-AC-10G-RTU-1'");
    assert_eq!(in_use, 3);
    // The router goes on as before: its next demand replaces this one.
    let (status, next) = router.client.post(&json!({"type": "ENTITLEMENT",
        "message_id": "copy-2", "entitlements": [{"tag": "ESS-AC-10G-RTU-1", "count": 1}]}));
    assert_eq!(status, 200, "{next}");
    let in_use: i64 = server
        .db()
        .one("SELECT in_use FROM pools WHERE tag = 'ESS-AC-10G-RTU-1'");
    assert_eq!(in_use, 1);
}
