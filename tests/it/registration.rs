use crate::client::{csr, error_code, p256, register, registration, Device};
use crate::fixture::{openssl_verify, Server};
use serde_json::json;

#[test]
fn a_router_registers_and_its_certificate_verifies_with_openssl() {
    let server = Server::start();
    let token = server.token("Default", &[]);
    let router = register(&server, "FOC2104R0XX", &token);

    assert!(openssl_verify(&server.ca_path(), &router.certificate));
    let cert = openssl::x509::X509::from_pem(router.certificate.as_bytes()).expect("pem");
    let cn = cert
        .subject_name()
        .entries_by_nid(openssl::nid::Nid::COMMONNAME)
        .next()
        .and_then(|e| e.data().to_string().ok());
    assert_eq!(cn.as_deref(), Some(router.instance_id.as_str()));
    let text = String::from_utf8(cert.to_text().expect("text")).expect("utf8");
    assert!(
        text.contains("TLS Web Client Authentication"),
        "clientAuth EKU missing:\n{text}"
    );

    let answer = &router.answer;
    assert_eq!(answer["account"], "Test Corp");
    assert_eq!(answer["virtual_account"], "Default");
    assert_eq!(
        answer["ca_certificate"].as_str(),
        Some(
            std::fs::read_to_string(server.ca_path())
                .expect("ca")
                .as_str()
        )
    );
    for field in ["initial", "next_renewal", "expires"] {
        assert!(
            answer["registration"][field].is_string(),
            "registration.{field} missing: {answer}"
        );
    }

    let listed: serde_json::Value =
        serde_json::from_str(&server.cli_ok(&["instance", "list", "--json"])).expect("json");
    assert_eq!(listed[0]["udi"], "PID:N540-24Z8Q2C-M,SN:FOC2104R0XX");
    assert_eq!(listed[0]["status"], "REGISTERED");
    assert_eq!(listed[0]["virtual_account"], "Default");
}

#[test]
fn a_retried_message_gets_the_first_answer_and_changes_nothing_twice() {
    let server = Server::start();
    let token = server.token("Default", &["--max-uses", "1"]);
    let key = p256();
    let message = registration("retry-1", "SN1", &token, &csr(&key));
    let (status, first) = server.device().post(&message);
    assert_eq!(status, 200);
    let before = server.snapshot();
    // The same message again, even on a token now used up, is the same answer.
    let (status, second) = server.device().post(&message);
    assert_eq!(status, 200, "{second}");
    assert_eq!(first, second);
    assert_eq!(before, server.snapshot(), "a retry must change nothing");

    // A retried deregistration likewise.
    let client = Device::new(
        &server.device_url,
        &server.ca_path(),
        Some((first["certificate"].as_str().expect("cert"), &key)),
    );
    let dereg = json!({"type": "DEREGISTRATION", "message_id": "bye-1"});
    let (status, gone) = client.post(&dereg);
    assert_eq!(status, 200, "{gone}");
    let after_dereg = server.snapshot();
    let (status, again) = client.post(&dereg);
    assert_eq!((status, &again), (200, &gone));
    assert_eq!(after_dereg, server.snapshot());
}

#[test]
fn registering_a_udi_again_revokes_its_old_certificate() {
    let server = Server::start();
    let token = server.token("Default", &[]);
    let first = register(&server, "SN-AGAIN", &token);
    let key = p256();
    let (status, second) =
        server
            .device()
            .post(&registration("reg-again-2", "SN-AGAIN", &token, &csr(&key)));
    assert_eq!(status, 200, "{second}");
    assert_eq!(
        second["instance_id"], first.answer["instance_id"],
        "the instance keeps its id"
    );

    let (status, answer) = first
        .client
        .post(&json!({"type": "DEREGISTRATION", "message_id": "old-cert"}));
    assert_eq!((status, error_code(&answer)), (403, "certificate_revoked"));
    let instances: i64 = server.db().one("SELECT COUNT(*) FROM product_instances");
    assert_eq!(instances, 1);
}

#[test]
fn identity_renewal_replaces_the_certificate() {
    let server = Server::start();
    let token = server.token("Default", &[]);
    let router = register(&server, "SN-RENEW", &token);
    let new_key = p256();
    let renew =
        json!({"type": "RENEW", "kind": "id", "message_id": "renew-1", "csr": csr(&new_key)});
    let (status, renewed) = router.client.post(&renew);
    assert_eq!(status, 200, "{renewed}");
    let new_cert = renewed["certificate"].as_str().expect("cert");
    assert_ne!(new_cert, router.certificate);
    assert_eq!(renewed["instance_id"], router.instance_id.as_str());
    assert!(openssl_verify(&server.ca_path(), new_cert));

    // The answer may have been lost: the retry with the old certificate gets it again.
    let (status, again) = router.client.post(&renew);
    assert_eq!((status, &again), (200, &renewed));
    // But the old certificate does nothing new.
    let (status, refused) = router
        .client
        .post(&json!({"type": "DEREGISTRATION", "message_id": "with-old"}));
    assert_eq!((status, error_code(&refused)), (403, "certificate_revoked"));

    let client = Device::new(
        &server.device_url,
        &server.ca_path(),
        Some((new_cert, &new_key)),
    );
    let (status, ack) = client.post(
        &json!({"type": "ACKNOWLEDGEMENT", "message_id": "ack-1", "ack_message_id": "renew-1"}),
    );
    assert_eq!(status, 200, "{ack}");
    let acked: Option<i64> = server
        .db()
        .maybe("SELECT acknowledged_at FROM device_messages WHERE message_id = 'renew-1'");
    assert!(acked.is_some());
}

#[test]
fn health_and_readiness_answer_over_https() {
    let server = Server::start();
    let agent = crate::client::agent(&server.ca_path(), None);
    for path in ["/healthz", "/readyz", "/metrics"] {
        let r = agent
            .get(&format!("{}{path}", server.admin_url))
            .call()
            .expect(path);
        assert_eq!(r.status(), 200, "{path}");
        let head = agent
            .head(&format!("{}{path}", server.admin_url))
            .call()
            .expect(path);
        assert_eq!(head.status(), 200, "HEAD {path}");
        assert!(
            head.into_string().unwrap_or_default().is_empty(),
            "HEAD {path} has no body"
        );
    }
    let token = server.token("Default", &[]);
    register(&server, "SN-METRICS", &token);
    let metrics = server.metrics();
    assert!(
        metrics.contains(r#"satellite_device_messages_total{type="REGISTRATION",outcome="ok"} 1"#),
        "{metrics}"
    );
    // The writer's longest stalls, as gauges in seconds: the registration
    // above held the write lock for some time, never for a second.
    let gauge = |name: &str| -> f64 {
        assert!(
            metrics.contains(&format!("# TYPE {name} gauge\n")),
            "{metrics}"
        );
        metrics
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{name} ")))
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("{name} has no value: {metrics}"))
    };
    let group = gauge("satellite_db_longest_group_seconds");
    assert!(group > 0.0 && group < 1.0, "{group}");
    for name in [
        "satellite_db_longest_commit_seconds",
        "satellite_db_longest_checkpoint_seconds",
    ] {
        assert!((0.0..1.0).contains(&gauge(name)), "{name}");
    }
}
