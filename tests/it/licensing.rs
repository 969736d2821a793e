//! The license authority end to end: pools, authorization, compliance,
//! reports and the timers, through the device API and the CLI.

use crate::client::{error_code, register, Registered};
use crate::fixture::{cloud_config, Server};
use serde_json::{json, Value};

fn entitlement(router: &Registered, id: &str, tags: &[(&str, u32)]) -> Value {
    let entitlements: Vec<Value> = tags
        .iter()
        .map(|(t, c)| json!({"tag": t, "count": c}))
        .collect();
    let (status, answer) = router
        .client
        .post(&json!({"type": "ENTITLEMENT", "message_id": id, "entitlements": entitlements}));
    assert_eq!(status, 200, "{answer}");
    answer
}

fn reports_of_kind(server: &Server, kind: &str) -> usize {
    let list: Value =
        serde_json::from_str(&server.cli_ok(&["report", "list", "--json"])).expect("json");
    list.as_array()
        .expect("array")
        .iter()
        .filter(|r| r["kind"] == kind)
        .count()
}

#[test]
fn ten_units_authorize_ten_and_the_eleventh_is_out_of_compliance() {
    let (server, token) = Server::cloud_with_lab("10");
    let first = register(&server, "R1", &token);
    let second = register(&server, "R2", &token);
    let a = entitlement(&first, "e1", &[("ESS-AC-10G-RTU-1", 6)]);
    assert_eq!(a["status"], "AUTHORIZED", "{a}");
    assert!(a["authorization"]["next_communication"].is_string());
    let b = entitlement(
        &second,
        "e2",
        &[("ESS-AC-10G-RTU-1", 4), ("NO-SUCH-TAG", 1)],
    );
    let status_of = |answer: &Value, tag: &str| {
        answer["entitlements"]
            .as_array()
            .and_then(|l| l.iter().find(|e| e["tag"] == tag))
            .map(|e| e["status"].clone())
            .unwrap_or(Value::Null)
    };
    assert_eq!(status_of(&b, "NO-SUCH-TAG"), "INVALID", "{b}");
    assert_eq!(status_of(&b, "ESS-AC-10G-RTU-1"), "AUTHORIZED", "{b}");
    let row = server.compliance("Lab", "ESS-AC-10G-RTU-1");
    assert_eq!(
        (
            row["available"].as_i64(),
            row["in_use"].as_i64(),
            row["status"].as_str()
        ),
        (Some(10), Some(10), Some("In Compliance"))
    );

    // The eleventh unit.
    let c = entitlement(&second, "e3", &[("ESS-AC-10G-RTU-1", 5)]);
    assert_eq!(c["status"], "OUT_OF_COMPLIANCE", "{c}");
    let row = server.compliance("Lab", "ESS-AC-10G-RTU-1");
    assert_eq!(
        (
            row["in_use"].as_i64(),
            row["shortfall"].as_i64(),
            row["status"].as_str()
        ),
        (Some(11), Some(1), Some("Out of Compliance"))
    );
    assert_eq!(reports_of_kind(&server, "Compliance Warning Report"), 1);
    // Every instance using the short pool is out of compliance, not only the last requester.
    let listed: Value =
        serde_json::from_str(&server.cli_ok(&["instance", "list", "--json"])).expect("json");
    let statuses: Vec<&str> = listed
        .as_array()
        .expect("array")
        .iter()
        .filter_map(|i| i["status"].as_str())
        .collect();
    assert_eq!(
        statuses,
        ["OUT_OF_COMPLIANCE", "OUT_OF_COMPLIANCE"],
        "{listed}"
    );
    let metrics = server.metrics();
    assert!(
        metrics.contains(
            r#"satellite_pool_shortfall{virtual_account="Lab",tag="ESS-AC-10G-RTU-1"} 1"#
        ),
        "{metrics}"
    );
    let events = server.cli_ok(&["events", "--kind", "compliance"]);
    assert!(events.contains("out of compliance"), "{events}");

    // Deregistering releases the units and the pool is compliant again.
    let (status, _) = second
        .client
        .post(&json!({"type": "DEREGISTRATION", "message_id": "bye"}));
    assert_eq!(status, 200);
    let row = server.compliance("Lab", "ESS-AC-10G-RTU-1");
    assert_eq!(
        (row["in_use"].as_i64(), row["status"].as_str()),
        (Some(6), Some("In Compliance"))
    );
    let listed: Value =
        serde_json::from_str(&server.cli_ok(&["instance", "list", "--json"])).expect("json");
    assert_eq!(listed[0]["status"], "AUTHORIZED", "{listed}");
}

#[test]
fn fifty_routers_on_a_pool_of_forty_are_counted_exactly() {
    let (server, token) = Server::cloud_with_lab("40");
    let routers: Vec<Registered> = (0..50)
        .map(|i| register(&server, &format!("P{i:02}"), &token))
        .collect();
    let start = std::sync::Arc::new(std::sync::Barrier::new(routers.len()));
    let first: Vec<String> = std::thread::scope(|s| {
        let handles: Vec<_> = routers
            .iter()
            .map(|r| {
                let start = start.clone();
                s.spawn(move || {
                    start.wait();
                    entitlement(r, "first", &[("ESS-AC-10G-RTU-1", 1)])["status"]
                        .as_str()
                        .unwrap_or("")
                        .to_string()
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("thread"))
            .collect()
    });
    let authorized = first.iter().filter(|s| *s == "AUTHORIZED").count();
    let short = first.iter().filter(|s| *s == "OUT_OF_COMPLIANCE").count();
    assert_eq!((authorized, short), (40, 10), "{first:?}");
    let row = server.compliance("Lab", "ESS-AC-10G-RTU-1");
    assert_eq!(
        (row["in_use"].as_i64(), row["available"].as_i64()),
        (Some(50), Some(40))
    );
    for r in &routers {
        assert_eq!(
            entitlement(r, "next", &[("ESS-AC-10G-RTU-1", 1)])["status"],
            "OUT_OF_COMPLIANCE"
        );
    }
}

#[test]
fn a_term_license_ending_flips_the_pool_out_of_compliance() {
    let server = Server::start_with(&cloud_config());
    let end = (server.clock.now() + time::Duration::days(2))
        .date()
        .to_string();
    server.cli_ok(&[
        "license",
        "add",
        "--va",
        "Default",
        "--sku",
        "ESS-AC-10G-SIA-3",
        "--quantity",
        "5",
        "--end",
        &end,
    ]);
    let token = server.token("Default", &[]);
    let router = register(&server, "TERM", &token);
    assert_eq!(
        entitlement(&router, "e", &[("ESS-AC-10G-SIA", 5)])["status"],
        "AUTHORIZED"
    );
    server.jobs.run_due().expect("jobs");
    server.clock.advance(time::Duration::days(3));
    server.jobs.run_due().expect("jobs");
    let row = server.compliance("Default", "ESS-AC-10G-SIA");
    assert_eq!(
        (row["available"].as_i64(), row["status"].as_str()),
        (Some(0), Some("Out of Compliance")),
        "{row}"
    );
    assert_eq!(reports_of_kind(&server, "Compliance Warning Report"), 1);
    assert_eq!(
        entitlement(&router, "e2", &[("ESS-AC-10G-SIA", 5)])["status"],
        "OUT_OF_COMPLIANCE"
    );
}

#[test]
fn an_instance_silent_past_its_deadline_is_authorization_expired_and_still_counts() {
    let (server, token) = Server::cloud_with_lab("10");
    let router = register(&server, "SILENT", &token);
    entitlement(&router, "e", &[("ESS-AC-10G-RTU-1", 3)]);
    server.jobs.run_due().expect("jobs");
    server.clock.advance(time::Duration::days(1));
    server.jobs.run_due().expect("jobs");
    server.clock.advance(time::Duration::days(90));
    server.jobs.run_due().expect("jobs");
    // One usage snapshot per day the jobs ran (the first of each day): the usage trend.
    let trend: Value =
        serde_json::from_str(&server.cli_ok(&["compliance", "--history", "400", "--json"]))
            .expect("json");
    let days: Vec<&Value> = trend
        .as_array()
        .expect("array")
        .iter()
        .filter(|r| r["tag"] == "ESS-AC-10G-RTU-1")
        .collect();
    assert!(
        days.len() >= 2,
        "a snapshot on day 1 and on day 91: {trend}"
    );
    assert!(
        days.iter()
            .all(|d| d["in_use"] == 3 && d["available"] == 10),
        "{trend}"
    );
    let events = server.cli_ok(&["events", "--kind", "authorization_expired"]);
    assert!(events.contains("PID:N540-24Z8Q2C-M,SN:SILENT"), "{events}");
    let shown: Value = serde_json::from_str(&server.cli_ok(&[
        "instance",
        "show",
        "N540-24Z8Q2C-M:SILENT",
        "--json",
    ]))
    .expect("json");
    assert_eq!(shown["entitlements"][0]["count"], 3, "{shown}");
    let list: Value =
        serde_json::from_str(&server.cli_ok(&["instance", "list", "--json"])).expect("json");
    assert_eq!(list[0]["status"], "AUTHORIZATION_EXPIRED", "{list}");
    assert_eq!(
        server.compliance("Lab", "ESS-AC-10G-RTU-1")["in_use"].as_i64(),
        Some(3)
    );
    server.cli_ok(&["instance", "remove", "N540-24Z8Q2C-M:SILENT"]);
    assert_eq!(
        server.compliance("Lab", "ESS-AC-10G-RTU-1")["in_use"].as_i64(),
        Some(0)
    );
}

#[test]
fn the_periodic_record_appears_on_its_schedule() {
    let server = Server::start_with(&cloud_config());
    server.jobs.run_due().expect("first run records the start");
    server.cli_ok(&["report", "generate"]);
    assert_eq!(reports_of_kind(&server, "Manual Record"), 1);
    assert_eq!(reports_of_kind(&server, "Periodic Record"), 0);
    // The default schedule is 06:00 on the 1st of each month: 32 days always cross one.
    server.clock.advance(time::Duration::days(32));
    server.jobs.run_due().expect("jobs");
    assert_eq!(reports_of_kind(&server, "Periodic Record"), 1);
    server.jobs.run_due().expect("jobs");
    assert_eq!(
        reports_of_kind(&server, "Periodic Record"),
        1,
        "once per schedule point"
    );
    let list: Value =
        serde_json::from_str(&server.cli_ok(&["report", "list", "--json"])).expect("json");
    let id = list
        .as_array()
        .and_then(|l| l.last())
        .and_then(|r| r["id"].as_i64())
        .expect("id");
    let csv = server.cli_ok(&["report", "show", &id.to_string(), "--format", "csv"]);
    assert!(
        csv.starts_with("virtual_account,tag,available,in_use,shortfall,status"),
        "{csv}"
    );
    let text = server.cli_ok(&["report", "show", &id.to_string()]);
    assert!(text.starts_with("Periodic Record"), "{text}");
}

#[test]
fn a_transfer_that_leaves_a_va_short_is_reported() {
    let (server, token) = Server::cloud_with_lab("10");
    let router = register(&server, "T1", &token);
    entitlement(&router, "e", &[("ESS-AC-10G-RTU-1", 8)]);
    let out = server.cli_ok(&[
        "license",
        "transfer",
        "--from",
        "Lab",
        "--to",
        "Default",
        "--sku",
        "ESS-AC-10G-RTU-1",
        "--quantity",
        "5",
    ]);
    assert!(out.contains("short"), "{out}");
    assert_eq!(reports_of_kind(&server, "Compliance Warning Report"), 1);
    let row = server.compliance("Default", "ESS-AC-10G-RTU-1");
    assert_eq!(row["available"].as_i64(), Some(5));
    // Moving the instance takes its usage along.
    server.cli_ok(&["instance", "move", "N540-24Z8Q2C-M:T1", "--to", "Default"]);
    assert_eq!(
        server.compliance("Default", "ESS-AC-10G-RTU-1")["in_use"].as_i64(),
        Some(8)
    );
    assert_eq!(
        server.compliance("Lab", "ESS-AC-10G-RTU-1")["in_use"].as_i64(),
        Some(0)
    );
}

#[test]
fn a_satellite_refuses_license_add_and_says_where_licenses_come_from() {
    let server = Server::start();
    let out = server.cli(&[
        "license",
        "add",
        "--va",
        "Default",
        "--sku",
        "ESS-AC-10G-RTU-1",
        "--quantity",
        "1",
    ]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("cloud"));
    let token = server.token("Default", &[]);
    let router = register(&server, "SAT", &token);
    let a = entitlement(&router, "e", &[("ESS-AC-10G-RTU-1", 1)]);
    assert_eq!(a["status"], "OUT_OF_COMPLIANCE");
    let (status, answer) = router
        .client
        .post(&json!({"type": "ENTITLEMENT", "message_id": "bad"}));
    assert_eq!((status, error_code(&answer)), (400, "invalid_request"));
}

#[test]
fn compliance_warnings_go_to_syslog() {
    let collector = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind");
    collector
        .set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .expect("timeout");
    let port = collector.local_addr().expect("addr").port();
    let server = Server::start_with(&format!(
        "{}log: {{ level: warn, syslog: 'udp://127.0.0.1:{port}' }}\n",
        cloud_config().replace("log: { level: warn }\n", "")
    ));
    server.cli_ok(&[
        "license",
        "add",
        "--va",
        "Default",
        "--sku",
        "ADV-AC-10G-RTU-1",
        "--quantity",
        "1",
    ]);
    let token = server.token("Default", &[]);
    let router = register(&server, "SYSLOG", &token);
    assert_eq!(
        entitlement(&router, "e", &[("ADV-AC-10G-RTU-1", 2)])["status"],
        "OUT_OF_COMPLIANCE"
    );
    let mut buf = [0u8; 2048];
    let n = collector.recv(&mut buf).expect("a syslog message");
    let line = String::from_utf8_lossy(&buf[..n]);
    assert!(line.starts_with("<132>1 "), "RFC 5424 warning: {line}");
    assert!(
        line.contains("OUT_OF_COMPLIANCE") && line.contains("ADV-AC-10G-RTU-1"),
        "{line}"
    );
}

#[test]
fn registering_again_into_another_va_takes_the_demand_along() {
    let (server, lab_token) = Server::cloud_with_lab("10");
    let router = register(&server, "MOVER", &lab_token);
    entitlement(&router, "e", &[("ESS-AC-10G-RTU-1", 5)]);
    let default_token = server.token("Default", &[]);
    let key = crate::client::p256();
    let (status, answer) = server.device().post(&crate::client::registration(
        "reg-default",
        "MOVER",
        &default_token,
        &crate::client::csr(&key),
    ));
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["virtual_account"], "Default");
    assert_eq!(
        server.compliance("Lab", "ESS-AC-10G-RTU-1")["in_use"].as_i64(),
        Some(0)
    );
    let row = server.compliance("Default", "ESS-AC-10G-RTU-1");
    assert_eq!(
        (row["in_use"].as_i64(), row["status"].as_str()),
        (Some(5), Some("Out of Compliance")),
        "{row}"
    );
}

#[test]
fn a_silent_instance_expires_then_leaves_its_grace_period_with_an_event_at_each_deadline() {
    let (server, token) = Server::cloud_with_lab("10");
    let router = register(&server, "GRACE", &token);
    entitlement(&router, "e1", &[("ESS-AC-10G-RTU-1", 2)]);
    server.jobs.run_due().expect("jobs");
    let status = || -> Value {
        let list: Value =
            serde_json::from_str(&server.cli_ok(&["instance", "list", "--json"])).expect("json");
        list[0]["status"].clone()
    };
    let events = |kind: &str| -> usize {
        let list: Value =
            serde_json::from_str(&server.cli_ok(&["events", "--kind", kind, "--json"]))
                .expect("json");
        list.as_array()
            .expect("array")
            .iter()
            .filter(|e| e.to_string().contains("PID:N540-24Z8Q2C-M,SN:GRACE"))
            .count()
    };
    let start = server.clock.now();
    let step = |days: i64| {
        server.clock.set(start + time::Duration::days(days));
        let run = server.jobs.run_due().expect("jobs");
        (run.authorizations_expired, run.grace_periods_expired)
    };
    assert_eq!(step(89), (0, 0));
    assert_eq!(status(), "AUTHORIZED");
    assert_eq!(events("authorization_expired"), 0);
    assert_eq!(step(90), (1, 0));
    assert_eq!(status(), "AUTHORIZATION_EXPIRED");
    assert_eq!(events("authorization_expired"), 1);
    assert_eq!(step(179), (0, 0));
    assert_eq!(status(), "AUTHORIZATION_EXPIRED", "in the grace period");
    assert_eq!(events("grace_period_expired"), 0);
    assert_eq!(step(180), (0, 1));
    assert_eq!(status(), "GRACE_PERIOD_EXPIRED");
    assert_eq!(events("grace_period_expired"), 1);
    assert_eq!(step(200), (0, 0));
    assert_eq!(
        (
            events("authorization_expired"),
            events("grace_period_expired")
        ),
        (1, 1),
        "one event per deadline"
    );
    assert_eq!(
        server.compliance("Lab", "ESS-AC-10G-RTU-1")["in_use"].as_i64(),
        Some(2),
        "still counted until removed"
    );
    // A message from the instance authorizes it again.
    entitlement(&router, "e2", &[("ESS-AC-10G-RTU-1", 2)]);
    assert_eq!(status(), "AUTHORIZED");
}
