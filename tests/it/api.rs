//! The operators' REST API against a real server: the monitoring and
//! automation calls of Cisco's on-prem manager unchanged, roles and
//! virtual-account scope on every route, OAuth clients and users.

use crate::client::{self, register};
use crate::fixture::Server;
use serde_json::{json, Value};

/// An HTTPS client of the admin listener.
pub struct Api {
    agent: ureq::Agent,
    base: String,
}

impl Api {
    pub fn new(server: &Server) -> Self {
        Self {
            agent: client::agent(&server.ca_path(), None),
            base: server.admin_url.clone(),
        }
    }

    /// Any call; returns status, body text and parsed JSON (Null if not JSON).
    pub fn call(
        &self,
        method: &str,
        path: &str,
        bearer: Option<&str>,
        body: Option<&Value>,
    ) -> (u16, Value) {
        let (status, text) = self.call_text(method, path, bearer, body);
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    pub fn call_text(
        &self,
        method: &str,
        path: &str,
        bearer: Option<&str>,
        body: Option<&Value>,
    ) -> (u16, String) {
        let mut request = self.agent.request(method, &format!("{}{path}", self.base));
        if let Some(token) = bearer {
            request = request.set("Authorization", &format!("Bearer {token}"));
        }
        let result = match body {
            Some(body) => request
                .set("Content-Type", "application/json")
                .send_string(&body.to_string()),
            None => request.call(),
        };
        let response = match result {
            Ok(r) => r,
            Err(ureq::Error::Status(_, r)) => r,
            Err(e) => panic!("transport error: {e}"),
        };
        (
            response.status(),
            response.into_string().unwrap_or_default(),
        )
    }

    /// A GET with its `X-Next-Offset` and `Link` headers.
    pub fn get_paged(&self, path: &str, bearer: &str) -> (Value, Option<String>, Option<String>) {
        let response = self
            .agent
            .get(&format!("{}{path}", self.base))
            .set("Authorization", &format!("Bearer {bearer}"))
            .call()
            .expect("listing");
        let next = response.header("X-Next-Offset").map(str::to_string);
        let link = response.header("Link").map(str::to_string);
        let body = serde_json::from_str(&response.into_string().unwrap_or_default())
            .unwrap_or(Value::Null);
        (body, next, link)
    }

    pub fn form(&self, path: &str, fields: &[(&str, &str)]) -> (u16, Value) {
        let result = self
            .agent
            .post(&format!("{}{path}", self.base))
            .send_form(fields);
        let response = match result {
            Ok(r) => r,
            Err(ureq::Error::Status(_, r)) => r,
            Err(e) => panic!("transport error: {e}"),
        };
        let status = response.status();
        let text = response.into_string().unwrap_or_default();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    /// Client-credentials login as a monitoring script does it.
    pub fn login(&self, client_id: &str, secret: &str) -> String {
        let (status, body) = self.call(
            "POST",
            "/backend/oauth/token",
            None,
            Some(&json!({"grant_type": "client_credentials", "client_id": client_id, "client_secret": secret})),
        );
        assert_eq!(status, 200, "login failed: {body}");
        body["access_token"]
            .as_str()
            .expect("access_token")
            .to_string()
    }
}

/// `client add NAME --role R [--va V] --json` → (client_id, client_secret).
pub fn add_client(server: &Server, name: &str, role: &str, vas: &[&str]) -> (String, String) {
    let mut args = vec!["client", "add", name, "--role", role, "--json"];
    for va in vas {
        args.extend_from_slice(&["--va", va]);
    }
    let out: Value = serde_json::from_str(&server.cli_ok(&args)).expect("json");
    (
        out["client_id"].as_str().expect("client_id").to_string(),
        out["client_secret"]
            .as_str()
            .expect("client_secret")
            .to_string(),
    )
}

pub fn bearer(server: &Server, api: &Api, name: &str, role: &str, vas: &[&str]) -> String {
    let (id, secret) = add_client(server, name, role, vas);
    api.login(&id, &secret)
}

fn entitlement(router: &client::Registered, id: &str, count: u32) -> Value {
    let (status, answer) = router.client.post(&json!({
        "type": "ENTITLEMENT", "message_id": id,
        "entitlements": [{"tag": "ESS-AC-10G-RTU-1", "count": count}]
    }));
    assert_eq!(status, 200, "{answer}");
    answer
}

const ACCOUNT: &str = "/api/v1/accounts/Test%20Corp";

#[test]
fn a_monitoring_check_written_for_cisco_works_unchanged() {
    let (server, token) = Server::cloud_with_lab("5");
    let router = register(&server, "FOC0000MON1", &token);
    entitlement(&router, "e1", 7);
    let api = Api::new(&server);
    let (id, secret) = add_client(&server, "nagios", "viewer", &["Lab"]);

    let (status, issued) = api.call(
        "POST",
        "/backend/oauth/token",
        None,
        Some(
            &json!({"grant_type": "client_credentials", "client_id": id, "client_secret": secret}),
        ),
    );
    assert_eq!(status, 200, "{issued}");
    assert_eq!(issued["token_type"], "Bearer");
    assert!(issued["expires_in"].as_i64().expect("expires_in") > 0);
    let access = issued["access_token"].as_str().expect("token").to_string();

    // The same login as a form body, as OAuth libraries send it.
    let (status, form) = api.form(
        "/backend/oauth/token",
        &[
            ("grant_type", "client_credentials"),
            ("client_id", &id),
            ("client_secret", &secret),
        ],
    );
    assert_eq!(status, 200, "{form}");
    assert!(form["access_token"].is_string());

    let (status, body) = api.call(
        "POST",
        &format!("{ACCOUNT}/licenses"),
        Some(&access),
        Some(&json!({"limit": -1})),
    );
    assert_eq!(status, 200, "{body}");
    let licenses = body["licenses"].as_array().expect("licenses");
    assert_eq!(licenses.len(), 1, "{body}");
    let l = &licenses[0];
    assert_eq!(l["license"], "ESS-AC-10G-RTU-1");
    assert_eq!(l["quantity"], 5);
    assert_eq!(l["inUse"], 7);
    assert_eq!(l["available"], -2);
    assert_eq!(l["status"], "Out of Compliance");
    assert_eq!(l["virtualAccount"], "Lab");
    let detail = &l["licenseDetails"][0];
    assert_eq!(detail["licenseType"], "PERPETUAL");
    assert_eq!(detail["quantity"], 5);
    assert!(detail["startDate"].is_string(), "{detail}");
    assert!(detail.get("endDate").is_some(), "{detail}");

    let (status, body) = api.call(
        "POST",
        &format!("{ACCOUNT}/alerts"),
        Some(&access),
        Some(&json!({"limit": -1})),
    );
    assert_eq!(status, 200, "{body}");
    let alerts = body["alerts"].as_array().expect("alerts");
    assert!(!alerts.is_empty(), "a short pool raises an alert: {body}");
    for alert in alerts {
        assert!(alert["messageType"].is_string(), "{alert}");
        assert!(alert["source"].is_string(), "{alert}");
        let severity = alert["severity"].as_str().expect("severity");
        assert!(severity == "Minor" || severity == "Major", "{alert}");
    }
    let majors: Vec<&Value> = alerts
        .iter()
        .filter(|a| a["severity"] == "Major" && a["source"] == "ESS-AC-10G-RTU-1")
        .collect();
    assert_eq!(majors.len(), 1, "one Major alert per shortfall: {body}");
    // Polled again, the same alert carries the same time (monitoring dedupes on it).
    let (_, again) = api.call(
        "POST",
        &format!("{ACCOUNT}/alerts"),
        Some(&access),
        Some(&json!({"limit": -1})),
    );
    assert_eq!(again["alerts"], body["alerts"]);

    // Back in compliance: the status says so, in Cisco's words.
    entitlement(&router, "e2", 5);
    let (_, body) = api.call(
        "POST",
        &format!("{ACCOUNT}/licenses"),
        Some(&access),
        Some(&json!({"limit": -1, "offset": 0, "virtualAccounts": ["Lab"]})),
    );
    assert_eq!(body["licenses"][0]["status"], "In Compliance", "{body}");

    // No token, a wrong secret, a made-up token: refused as JSON.
    let (status, body) = api.call(
        "POST",
        &format!("{ACCOUNT}/licenses"),
        None,
        Some(&json!({})),
    );
    assert_eq!(status, 401, "{body}");
    assert_eq!(body["error"]["code"], "unauthenticated");
    let (status, _) = api.call(
        "POST",
        "/backend/oauth/token",
        None,
        Some(
            &json!({"grant_type": "client_credentials", "client_id": id, "client_secret": "wrong"}),
        ),
    );
    assert_eq!(status, 401);
    let (status, _) = api.call(
        "POST",
        &format!("{ACCOUNT}/licenses"),
        Some("made-up"),
        None,
    );
    assert_eq!(status, 401);
    // A bad body names the field.
    let (status, body) = api.call(
        "POST",
        &format!("{ACCOUNT}/licenses"),
        Some(&access),
        Some(&json!({"limit": "all"})),
    );
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"]["field"], "limit", "{body}");
}

#[test]
fn the_bootstrap_admin_logs_in_and_failed_logins_are_rate_limited() {
    let server = Server::start();
    let api = Api::new(&server);
    let password = server
        .admin_password
        .clone()
        .expect("init printed a credential");
    let (status, body) = api.form(
        "/backend/oauth/token",
        &[
            ("grant_type", "password"),
            ("username", "admin"),
            ("password", &password),
        ],
    );
    assert_eq!(status, 200, "{body}");
    let admin = body["access_token"].as_str().expect("token").to_string();
    let (status, users) = api.call("GET", "/api/v1/users", Some(&admin), None);
    assert_eq!(status, 200, "{users}");
    assert_eq!(users["users"][0]["username"], "admin");
    assert_eq!(users["users"][0]["role"], "admin");
    // Stored as argon2id in PHC format.
    let hash: String = server
        .db()
        .one("SELECT password_hash FROM users WHERE username = 'admin'");
    assert!(hash.starts_with("$argon2id$"), "{hash}");

    // A hash written by an earlier version (PBKDF2) still logs in, and is
    // replaced by argon2id on the way.
    let legacy = {
        use base64::Engine;
        let salt = [3u8; 16];
        let mut derived = [0u8; 32];
        openssl::pkcs5::pbkdf2_hmac(
            b"legacy password 1",
            &salt,
            1000,
            openssl::hash::MessageDigest::sha256(),
            &mut derived,
        )
        .expect("pbkdf2");
        let b64 = base64::engine::general_purpose::STANDARD_NO_PAD;
        format!(
            "pbkdf2-sha256$1000${}${}",
            b64.encode(salt),
            b64.encode(derived)
        )
    };
    server.db().execute(&format!(
        "INSERT INTO users (username, password_hash, role, created_at) VALUES ('old', '{legacy}', 'admin', 0)"
    ));
    let old_logs_in = || {
        let (status, body) = api.form(
            "/backend/oauth/token",
            &[
                ("grant_type", "password"),
                ("username", "old"),
                ("password", "legacy password 1"),
            ],
        );
        assert_eq!(status, 200, "{body}");
    };
    old_logs_in();
    let upgraded: String = server
        .db()
        .one("SELECT password_hash FROM users WHERE username = 'old'");
    assert!(upgraded.starts_with("$argon2id$"), "{upgraded}");

    for _ in 0..5 {
        let (status, _) = api.form(
            "/backend/oauth/token",
            &[
                ("grant_type", "password"),
                ("username", "admin"),
                ("password", "guess-guess-guess"),
            ],
        );
        assert_eq!(status, 401);
    }
    // Now even the right password waits: the name is refused for a while
    // from this source.
    let (status, body) = api.form(
        "/backend/oauth/token",
        &[
            ("grant_type", "password"),
            ("username", "admin"),
            ("password", &password),
        ],
    );
    assert_eq!(status, 429, "{body}");
    assert_eq!(body["error"]["code"], "too_many_requests");
    // Only the name being guessed: another account behind the same address
    // (a second monitoring client, say) still logs in.
    old_logs_in();
}

#[test]
fn users_from_the_cli_log_in_and_every_change_names_who_made_it() {
    let server = Server::start();
    server.cli_ok(&["va", "create", "A"]);
    server.user("alice", "va-admin", &["A"], "correct horse battery");
    let listed: Value =
        serde_json::from_str(&server.cli_ok(&["user", "list", "--json"])).expect("json");
    assert!(listed
        .as_array()
        .expect("users")
        .iter()
        .any(|u| u["username"] == "alice"
            && u["role"] == "va-admin"
            && u["virtual_accounts"] == json!(["A"])));

    let api = Api::new(&server);
    let (status, body) = api.call(
        "POST",
        "/backend/oauth/token",
        None,
        Some(&json!({"grant_type": "password", "username": "alice", "password": "correct horse battery"})),
    );
    assert_eq!(status, 200, "{body}");
    let alice = body["access_token"].as_str().expect("token").to_string();
    let (status, body) = api.call(
        "POST",
        &format!("{ACCOUNT}/virtual-accounts/A/tokens"),
        Some(&alice),
        Some(&json!({"description": "lab", "expiresAfterDays": 10})),
    );
    assert_eq!(status, 200, "{body}");

    let actors: Vec<(String, Option<String>)> = server
        .db()
        .rows("SELECT kind, actor FROM events ORDER BY id")
        .into_iter()
        .map(|r| (r[0].clone().unwrap_or_default(), r[1].clone()))
        .collect();
    assert!(
        actors.iter().any(|(kind, actor)| kind == "user"
            && actor.as_deref().is_some_and(|a| a.starts_with("cli:"))),
        "{actors:?}"
    );
    assert!(
        actors
            .iter()
            .any(|(kind, actor)| kind == "token" && actor.as_deref() == Some("user:alice")),
        "{actors:?}"
    );
    // The CLI's changes name the local administrator.
    server.token("A", &[]);
    let last: Option<String> = server
        .db()
        .maybe("SELECT actor FROM events WHERE kind = 'token' ORDER BY id DESC LIMIT 1");
    assert!(
        last.as_deref().is_some_and(|a| a.starts_with("cli:")),
        "{last:?}"
    );
    // The API's event listing shows who, too.
    let admin = bearer(&server, &api, "ops", "admin", &[]);
    let (status, body) = api.call(
        "GET",
        &format!("{ACCOUNT}/events?kind=token&limit=5"),
        Some(&admin),
        None,
    );
    assert_eq!(status, 200, "{body}");
    let events = body["events"].as_array().expect("events");
    assert!(events.iter().any(|e| e["actor"] == "user:alice"), "{body}");
    assert!(
        events
            .iter()
            .any(|e| e["actor"].as_str().is_some_and(|a| a.starts_with("cli:"))),
        "{body}"
    );

    // A new password ends alice's sessions.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_satellite"))
        .arg("-c")
        .arg(&server.config_path)
        .args(["user", "passwd", "alice"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut child| {
            use std::io::Write;
            if let Some(stdin) = child.stdin.as_mut() {
                stdin.write_all(b"another long password\n")?;
            }
            child.wait_with_output()
        })
        .expect("run satellite");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (status, _) = api.call(
        "GET",
        &format!("{ACCOUNT}/virtual-accounts/A/tokens"),
        Some(&alice),
        None,
    );
    assert_eq!(status, 401);
    server.cli_ok(&["user", "remove", "alice"]);
    let err = server.cli(&["user", "remove", "admin"]);
    assert!(!err.status.success(), "the last admin stays");
}

#[test]
fn a_token_created_through_the_backend_api_registers_a_router() {
    let (server, _) = Server::cloud_with_lab("5");
    let api = Api::new(&server);
    let path = "/backend/api/v1/accounts/Test%20Corp/virtual-accounts/Lab/tokens";
    let body = json!({"description": "automation", "expiresAfterDays": "365", "exportControlled": "Allowed"});

    // Unauthenticated: 403 there, as Cisco's manager answers.
    let (status, refused) = api.call("POST", path, None, Some(&body));
    assert_eq!(status, 403, "{refused}");

    let admin = bearer(&server, &api, "automation", "admin", &[]);
    let (status, created) = api.call("POST", path, Some(&admin), Some(&body));
    assert_eq!(status, 200, "{created}");
    let token = created["tokenInfo"]["token"]
        .as_str()
        .expect("tokenInfo.token");
    assert_eq!(created["tokenInfo"]["exportControlled"], "Allowed");
    assert_eq!(created["tokenInfo"]["virtualAccount"], "Lab");
    let router = register(&server, "FOC0000AUT1", token);
    assert_eq!(router.answer["virtual_account"], "Lab");

    // Listed under both prefixes; a bad number of days names the field.
    for prefix in ["/api/v1", "/backend/api/v1"] {
        let (status, list) = api.call(
            "GET",
            &format!("{prefix}/accounts/Test%20Corp/virtual-accounts/Lab/tokens"),
            Some(&admin),
            None,
        );
        assert_eq!(status, 200, "{list}");
        assert!(
            list["tokens"].as_array().is_some_and(|t| t.len() >= 2),
            "{list}"
        );
    }
    let (status, bad) = api.call(
        "POST",
        path,
        Some(&admin),
        Some(&json!({"expiresAfterDays": "forever"})),
    );
    assert_eq!(status, 400);
    assert_eq!(bad["error"]["field"], "expiresAfterDays", "{bad}");
    let (status, bad) = api.call(
        "POST",
        path,
        Some(&admin),
        Some(&json!({"expiresAfterDays": 400})),
    );
    assert_eq!(status, 400);
    assert_eq!(bad["error"]["field"], "expiresAfterDays", "{bad}");

    // Revoked: no more registrations; the router registered stays.
    let prefix: String = token.chars().take(10).collect();
    let (status, revoked) = api.call("DELETE", &format!("{path}/{prefix}"), Some(&admin), None);
    assert_eq!(status, 200, "{revoked}");
    let (status, _) = server.device().post(&client::registration(
        "again",
        "FOC0000AUT2",
        token,
        &client::csr(&client::p256()),
    ));
    assert_eq!(status, 401);
}

#[test]
fn a_revoked_client_loses_its_tokens() {
    let server = Server::start();
    let api = Api::new(&server);
    let (id, secret) = add_client(&server, "mon", "admin", &[]);
    let access = api.login(&id, &secret);
    let (status, _) = api.call(
        "POST",
        &format!("{ACCOUNT}/licenses"),
        Some(&access),
        Some(&json!({"limit": -1})),
    );
    assert_eq!(status, 200);
    let listed: Value =
        serde_json::from_str(&server.cli_ok(&["client", "list", "--json"])).expect("json");
    assert_eq!(listed[0]["status"], "ACTIVE");
    server.cli_ok(&["client", "revoke", "mon"]);
    let (status, _) = api.call(
        "POST",
        &format!("{ACCOUNT}/licenses"),
        Some(&access),
        Some(&json!({"limit": -1})),
    );
    assert_eq!(status, 401);
    let (status, _) = api.call(
        "POST",
        "/backend/oauth/token",
        None,
        Some(
            &json!({"grant_type": "client_credentials", "client_id": id, "client_secret": secret}),
        ),
    );
    assert_eq!(status, 401);
}

#[test]
fn a_va_admin_cannot_touch_users_or_clients() {
    let server = Server::start();
    server.cli_ok(&["va", "create", "A"]);
    let api = Api::new(&server);
    let va_admin = bearer(&server, &api, "ops-a", "va-admin", &["A"]);
    for (method, path, body) in [
        ("GET", "/api/v1/users", None),
        (
            "POST",
            "/api/v1/users",
            Some(
                json!({"username": "mallory", "password": "long enough password", "role": "admin"}),
            ),
        ),
        (
            "PUT",
            "/api/v1/users/admin/password",
            Some(json!({"password": "long enough password"})),
        ),
        ("DELETE", "/api/v1/users/admin", None),
        ("GET", "/api/v1/clients", None),
        (
            "POST",
            "/api/v1/clients",
            Some(json!({"name": "x", "role": "admin"})),
        ),
        ("DELETE", "/api/v1/clients/ops-a", None),
    ] {
        let (status, answer) = api.call(method, path, Some(&va_admin), body.as_ref());
        assert_eq!(status, 403, "{method} {path}: {answer}");
        assert_eq!(answer["error"]["code"], "forbidden");
    }
    let users: Value =
        serde_json::from_str(&server.cli_ok(&["user", "list", "--json"])).expect("json");
    assert_eq!(users.as_array().map(Vec::len), Some(1), "{users}");
    // What it may do, it can.
    let (status, body) = api.call(
        "POST",
        &format!("{ACCOUNT}/virtual-accounts/A/tokens"),
        Some(&va_admin),
        Some(&json!({})),
    );
    assert_eq!(status, 200, "{body}");
}

#[test]
fn a_viewer_of_one_virtual_account_sees_nothing_of_another() {
    let (server, lab_token) = Server::cloud_with_lab("5");
    server.cli_ok(&["va", "create", "Other"]);
    server.cli_ok(&[
        "license",
        "add",
        "--va",
        "Other",
        "--sku",
        "ESS-AC-10G-RTU-1",
        "--quantity",
        "1",
    ]);
    let other_token = server.token("Other", &[]);
    let lab_router = register(&server, "FOC0000LAB1", &lab_token);
    entitlement(&lab_router, "l1", 1);
    let other_router = register(&server, "FOC0000OTH1", &other_token);
    entitlement(&other_router, "o1", 3); // short: a Major alert and a warning report for Other
    server.cli_ok(&["report", "generate", "--va", "Other"]);
    let other_prefix: String = other_token.chars().take(10).collect();
    let other_report: i64 = server
        .db()
        .one("SELECT MAX(id) FROM reports WHERE virtual_account = 'Other'");

    let api = Api::new(&server);
    let viewer = bearer(&server, &api, "lab-viewer", "viewer", &["Lab"]);
    let other = "/api/v1/accounts/Test%20Corp/virtual-accounts/Other";
    let refused: Vec<(&str, String, Option<Value>)> = vec![
        (
            "POST",
            format!("{ACCOUNT}/licenses"),
            Some(json!({"virtualAccounts": ["Other"]})),
        ),
        (
            "POST",
            format!("{ACCOUNT}/alerts"),
            Some(json!({"virtualAccounts": ["Other"]})),
        ),
        ("GET", format!("{other}/tokens"), None),
        ("POST", format!("{other}/tokens"), Some(json!({}))),
        ("DELETE", format!("{other}/tokens/{other_prefix}"), None),
        ("GET", format!("/backend{other}/tokens"), None),
        ("POST", format!("/backend{other}/tokens"), Some(json!({}))),
        (
            "POST",
            format!("{other}/licenses/transfer"),
            Some(
                json!({"licenses": [{"license": "ESS-AC-10G-RTU-1", "quantity": 1, "targetVirtualAccount": "Lab"}]}),
            ),
        ),
        (
            "GET",
            format!("{ACCOUNT}/product-instances?virtualAccount=Other"),
            None,
        ),
        (
            "GET",
            format!("{ACCOUNT}/product-instances/N540-24Z8Q2C-M:FOC0000OTH1"),
            None,
        ),
        (
            "DELETE",
            format!("{ACCOUNT}/product-instances/N540-24Z8Q2C-M:FOC0000OTH1"),
            None,
        ),
        (
            "POST",
            format!("{ACCOUNT}/product-instances/N540-24Z8Q2C-M:FOC0000OTH1/move"),
            Some(json!({"targetVirtualAccount": "Lab"})),
        ),
        (
            "GET",
            format!("{ACCOUNT}/events?virtualAccount=Other"),
            None,
        ),
        ("GET", "/api/v1/users".to_string(), None),
        ("GET", "/api/v1/clients".to_string(), None),
        ("GET", format!("{ACCOUNT}/reports/{other_report}"), None),
        (
            "GET",
            format!("{ACCOUNT}/reports/{other_report}?format=csv"),
            None,
        ),
        ("GET", "/api/v1/sync/status".to_string(), None),
        ("POST", "/api/v1/sync/export".to_string(), None),
    ];
    let before = server.snapshot();
    for (method, path, body) in &refused {
        let (status, answer) = api.call(method, path, Some(&viewer), body.as_ref());
        assert!(
            status == 403 || status == 404,
            "{method} {path}: {status} {answer}"
        );
    }
    assert_eq!(before, server.snapshot(), "a refused call changed nothing");

    // The unfiltered views hold only Lab.
    let text_of = |method: &str, path: String, body: Option<Value>| {
        let (status, answer) = api.call(method, &path, Some(&viewer), body.as_ref());
        assert_eq!(status, 200, "{method} {path}: {answer}");
        answer.to_string()
    };
    for answer in [
        text_of(
            "POST",
            format!("{ACCOUNT}/licenses"),
            Some(json!({"limit": -1})),
        ),
        text_of(
            "POST",
            format!("{ACCOUNT}/alerts"),
            Some(json!({"limit": -1})),
        ),
        text_of("GET", format!("{ACCOUNT}/product-instances"), None),
        text_of("GET", format!("{ACCOUNT}/reports"), None),
        text_of("GET", format!("{ACCOUNT}/events?limit=-1"), None),
        text_of(
            "GET",
            format!("{ACCOUNT}/virtual-accounts/Lab/tokens"),
            None,
        ),
    ] {
        assert!(!answer.contains("Other"), "{answer}");
        assert!(!answer.contains("FOC0000OTH1"), "{answer}");
    }
    let (_, licenses) = api.call(
        "POST",
        &format!("{ACCOUNT}/licenses"),
        Some(&viewer),
        Some(&json!({"limit": -1})),
    );
    assert_eq!(
        licenses["licenses"][0]["virtualAccount"], "Lab",
        "{licenses}"
    );
    let (_, instances) = api.call(
        "GET",
        &format!("{ACCOUNT}/product-instances"),
        Some(&viewer),
        None,
    );
    assert_eq!(
        instances["productInstances"].as_array().map(Vec::len),
        Some(1),
        "{instances}"
    );
    // And Lab's own instance it may read but not remove.
    let (status, _) = api.call(
        "GET",
        &format!("{ACCOUNT}/product-instances/N540-24Z8Q2C-M:FOC0000LAB1"),
        Some(&viewer),
        None,
    );
    assert_eq!(status, 200);
    let (status, _) = api.call(
        "DELETE",
        &format!("{ACCOUNT}/product-instances/N540-24Z8Q2C-M:FOC0000LAB1"),
        Some(&viewer),
        None,
    );
    assert_eq!(status, 403);
}

#[test]
fn an_export_downloaded_through_the_api_imports_at_the_cloud() {
    use std::path::PathBuf;
    let json_of = |text: String| -> Value { serde_json::from_str(&text).expect("json") };
    let cloud = Server::start_with(&crate::fixture::cloud_config());
    cloud.cli_ok(&["va", "create", "Lab"]);
    cloud.cli_ok(&[
        "license",
        "add",
        "--va",
        "Lab",
        "--sku",
        "ESS-AC-10G-RTU-1",
        "--quantity",
        "5",
    ]);
    let sat = Server::start();
    let added = json_of(cloud.cli_ok(&["satellite", "add", "site-1", "--va", "Lab", "--json"]));
    let token = added["token"].as_str().expect("token");
    let request = json_of(sat.cli_ok(&["upstream", "register", "--token", token, "--json"]));
    let answer =
        json_of(cloud.cli_ok(&["process", request["path"].as_str().expect("path"), "--json"]));
    let answer = PathBuf::from(answer["path"].as_str().expect("path"));

    let api = Api::new(&sat);
    let admin = bearer(&sat, &api, "sync-admin", "admin", &[]);
    // The registration answer, uploaded through the API.
    let bytes = std::fs::read(&answer).expect("answer");
    let upload = |bytes: &[u8], bearer: &str| {
        let result = client::agent(&sat.ca_path(), None)
            .post(&format!("{}/api/v1/sync/import", sat.admin_url))
            .set("Authorization", &format!("Bearer {bearer}"))
            .set("Content-Type", "application/zip")
            .send_bytes(bytes);
        let response = match result {
            Ok(r) => r,
            Err(ureq::Error::Status(_, r)) => r,
            Err(e) => panic!("transport error: {e}"),
        };
        let status = response.status();
        (
            status,
            serde_json::from_str::<Value>(&response.into_string().unwrap_or_default())
                .unwrap_or(Value::Null),
        )
    };
    let (status, applied) = upload(&bytes, &admin);
    assert_eq!(status, 200, "{applied}");
    assert_eq!(applied["alreadyApplied"], false, "{applied}");
    let (status, again) = upload(&bytes, &admin);
    assert_eq!(status, 200, "{again}");
    assert_eq!(again["alreadyApplied"], true, "{again}");
    let (status, refused) = upload(b"not a zip", &admin);
    assert_eq!(status, 400, "{refused}");
    assert_eq!(refused["error"]["field"], "bundle", "{refused}");

    // A router registers at the satellite, then the usage export is
    // downloaded through the API and carried to the cloud.
    let lab = sat.token("Lab", &[]);
    let router = register(&sat, "FOC0000SYN1", &lab);
    entitlement(&router, "s1", 2);
    let response = client::agent(&sat.ca_path(), None)
        .post(&format!("{}/api/v1/sync/export", sat.admin_url))
        .set("Authorization", &format!("Bearer {admin}"))
        .call()
        .expect("export");
    assert_eq!(response.content_type(), "application/zip");
    let mut zip = Vec::new();
    std::io::Read::read_to_end(&mut response.into_reader(), &mut zip).expect("read");
    let carried = cloud.dir.path().join("usage-from-api.zip");
    std::fs::write(&carried, &zip).expect("write");
    let processed = json_of(cloud.cli_ok(&["process", carried.to_str().expect("utf8"), "--json"]));
    assert!(processed["path"].is_string(), "{processed}");
    let remote: i64 = cloud.db().one("SELECT COUNT(*) FROM remote_instances");
    assert_eq!(remote, 1, "the cloud now knows the satellite's router");

    let (status, status_body) = api.call("GET", "/api/v1/sync/status", Some(&admin), None);
    assert_eq!(status, 200, "{status_body}");
    assert_eq!(status_body["registered"], true, "{status_body}");
    // Sync is an administrator's: a va-admin may not export.
    let va_admin = bearer(&sat, &api, "lab-ops", "va-admin", &["Lab"]);
    let (status, _) = api.call("POST", "/api/v1/sync/export", Some(&va_admin), None);
    assert_eq!(status, 403);
}

/// A served path with its parameters filled in.
fn concrete(path: &str, values: &[(&str, &str)]) -> String {
    let mut out = path.to_string();
    for (name, value) in values {
        out = out.replace(&format!("{{{name}}}"), value);
    }
    out
}

#[test]
fn the_openapi_document_lists_exactly_the_served_routes() {
    let server = Server::start();
    let api = Api::new(&server);
    let (status, doc) = api.call("GET", "/api/v1/openapi.json", None, None);
    assert_eq!(status, 200, "{doc}");
    assert!(
        doc["openapi"]
            .as_str()
            .is_some_and(|v| v.starts_with("3.1")),
        "{}",
        doc["openapi"]
    );
    let mut documented = std::collections::BTreeSet::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for (method, operation) in item.as_object().expect("path item") {
            assert!(
                operation["responses"].is_object(),
                "{method} {path} has no responses"
            );
            documented.insert((method.to_uppercase(), path.clone()));
        }
    }
    let routes: std::collections::BTreeSet<(String, String)> = satellite::api::ROUTES
        .iter()
        .map(|(m, p)| (m.to_string(), p.to_string()))
        .collect();
    assert_eq!(documented, routes, "documented and served routes differ");
    // Request and response schemas come from the handlers' types.
    let schemas = doc["components"]["schemas"].as_object().expect("schemas");
    for name in [
        "LicenseSummary",
        "Alert",
        "NewToken",
        "CreatedToken",
        "TokenRequest",
        "AccessToken",
        "ErrorBody",
    ] {
        assert!(schemas.contains_key(name), "no schema {name}");
    }

    // Every documented route is really served (the fallback answers
    // "no METHOD PATH here" for anything else).
    let values = [
        ("account", "Test%20Corp"),
        ("va", "Default"),
        ("token", "abcdefghijkl"),
        ("instance", "N540:NOPE"),
        ("id", "1"),
        ("username", "nobody"),
        ("client", "nobody"),
    ];
    for (method, path) in satellite::api::ROUTES {
        let url = concrete(path, &values);
        let (_, answer) = api.call(method, &url, None, Some(&json!({})));
        let message = answer["error"]["message"].as_str().unwrap_or("");
        assert!(
            !message.ends_with(" here") || answer["error"]["code"] != "not_found",
            "{method} {path} is documented but not served: {answer}"
        );
    }
}

#[test]
fn no_documented_route_answers_500_to_odd_bodies() {
    let (server, token) = Server::cloud_with_lab("2");
    let router = register(&server, "FOC0000FUZ1", &token);
    entitlement(&router, "f1", 1);
    let api = Api::new(&server);
    let admin = bearer(&server, &api, "fuzz", "admin", &[]);
    let viewer = bearer(&server, &api, "fuzz-viewer", "viewer", &["Lab"]);
    let bodies = [
        None,
        Some(json!({})),
        Some(json!([])),
        Some(json!("text")),
        Some(json!(null)),
        Some(json!({"limit": -1, "offset": 0, "virtualAccounts": ["Lab", "Nope"]})),
        Some(json!({"limit": 1e30, "offset": -4})),
        Some(json!({"licenses": [{}], "expiresAfterDays": -3, "exportControlled": 7})),
        Some(
            json!({"licenses": [{"license": "ESS-AC-10G-RTU-1", "quantity": 99, "targetVirtualAccount": "Lab"}]}),
        ),
        Some(
            json!({"username": "x", "password": "short", "role": "root", "name": "", "targetVirtualAccount": "Nope"}),
        ),
        Some(json!({"grant_type": "password", "username": "", "password": ""})),
    ];
    let value_sets: [&[(&str, &str)]; 2] = [
        &[("account", "Test%20Corp"), ("va", "Lab"), ("token", "short"), ("instance", "N540-24Z8Q2C-M:FOC0000FUZ1"),
          ("id", "1"), ("username", "nobody"), ("client", "nobody")],
        &[("account", "Nope"), ("va", "%00%FF"), ("token", "%E2%80%A6%E2%80%A6%E2%80%A6%E2%80%A6%E2%80%A6%E2%80%A6%E2%80%A6%E2%80%A6%E2%80%A6%E2%80%A6"),
          ("instance", "PID:%20,SN:"), ("id", "99999999999999999999"), ("username", "admin"), ("client", "%20")],
    ];
    for values in value_sets {
        for (method, path) in satellite::api::ROUTES {
            let url = concrete(path, values);
            for body in &bodies {
                for who in [&viewer, &admin] {
                    let (status, answer) = api.call(method, &url, Some(who), body.as_ref());
                    assert!(status < 500, "{method} {url} {body:?}: {status} {answer}");
                }
            }
        }
    }
}

#[test]
fn an_oversized_body_is_refused_as_json() {
    let server = Server::start();
    let api = Api::new(&server);
    let admin = bearer(&server, &api, "big", "admin", &[]);
    let huge = json!({"virtualAccounts": vec!["x".repeat(100); 1000]});
    let (status, body) = api.call(
        "POST",
        &format!("{ACCOUNT}/licenses"),
        Some(&admin),
        Some(&huge),
    );
    assert_eq!(status, 413, "{body}");
    assert_eq!(body["error"]["code"], "payload_too_large", "{body}");
}

#[test]
fn an_administrator_downloads_a_backup_and_a_viewer_cannot() {
    let server = Server::start();
    let api = Api::new(&server);
    let viewer = bearer(&server, &api, "noc", "viewer", &["Default"]);
    let (status, _) = api.call("POST", "/api/v1/backup", Some(&viewer), None);
    assert_eq!(status, 403);
    let admin = bearer(&server, &api, "ops", "admin", &[]);
    let response = api
        .agent
        .post(&format!("{}/api/v1/backup", api.base))
        .set("Authorization", &format!("Bearer {admin}"))
        .call()
        .expect("backup");
    assert_eq!(response.content_type(), "application/zip");
    // It holds ca.key: never cached, never sniffed, HTTPS only.
    assert_eq!(response.header("Cache-Control"), Some("no-store"));
    assert_eq!(response.header("X-Content-Type-Options"), Some("nosniff"));
    assert!(response
        .header("Strict-Transport-Security")
        .is_some_and(|v| v.starts_with("max-age=")));
    let mut bytes = Vec::new();
    std::io::Read::read_to_end(&mut response.into_reader(), &mut bytes).expect("body");
    let zip = zip::ZipArchive::new(std::io::Cursor::new(bytes)).expect("a zip");
    let names: Vec<&str> = zip.file_names().collect();
    for needed in [
        "backup.json",
        "satellite.db",
        "ca.pem",
        "ca.key",
        "signer.key",
    ] {
        assert!(names.contains(&needed), "{needed} missing from {names:?}");
    }
    assert!(
        !names.contains(&"serve.lock"),
        "the running server's lock is not part of a backup: {names:?}"
    );
}

/// `limit: -1` ("all") is at most 1,000 at once: a cut page says so (a
/// `next_offset`, `X-Next-Offset` and a `Link` to the next page) and the
/// pages join up with nothing lost.
#[test]
fn a_listing_that_is_cut_says_where_the_next_page_starts() {
    let (server, token) = Server::cloud_with_lab("5");
    for sn in ["FOCPAGE1", "FOCPAGE2", "FOCPAGE3"] {
        register(&server, sn, &token);
    }
    let api = Api::new(&server);
    let admin = bearer(&server, &api, "pager", "admin", &[]);
    let base = "/api/v1/accounts/Test%20Corp/product-instances";
    let (first, next, link) = api.get_paged(&format!("{base}?limit=2&virtualAccount=Lab"), &admin);
    assert_eq!(
        first["productInstances"].as_array().map(Vec::len),
        Some(2),
        "{first}"
    );
    assert_eq!(first["nextOffset"], 2, "{first}");
    assert_eq!(next.as_deref(), Some("2"));
    let link = link.expect("a Link header");
    assert!(
        link.contains("offset=2") && link.contains("limit=2") && link.ends_with("rel=\"next\""),
        "{link}"
    );
    let (second, next, link) = api.get_paged(
        &format!("{base}?limit=2&virtualAccount=Lab&offset=2"),
        &admin,
    );
    assert_eq!(
        second["productInstances"].as_array().map(Vec::len),
        Some(1),
        "{second}"
    );
    assert_eq!(second["nextOffset"], Value::Null, "{second}");
    assert_eq!((next, link), (None, None));
    let (all, next, _) = api.get_paged(&format!("{base}?limit=-1"), &admin);
    assert_eq!(
        all["productInstances"].as_array().map(Vec::len),
        Some(3),
        "{all}"
    );
    assert_eq!(next, None);
}

/// Anyone changes their own password (giving the current one); only admins
/// change others'. A changed password ends the user's sessions.
#[test]
fn a_user_changes_their_own_password_and_no_one_elses() {
    let server = Server::start();
    server.cli_ok(&["va", "create", "A"]);
    server.user("alice", "viewer", &["A"], "correct horse battery");
    server.user("bob", "viewer", &["A"], "battery staple horse");
    let api = Api::new(&server);
    let login = |user: &str, password: &str| {
        api.call(
            "POST",
            "/backend/oauth/token",
            None,
            Some(&json!({"grant_type": "password", "username": user, "password": password})),
        )
    };
    let (status, body) = login("alice", "correct horse battery");
    assert_eq!(status, 200, "{body}");
    let alice = body["access_token"].as_str().expect("token").to_string();
    let own = "/api/v1/users/alice/password";
    let new = "a new and longer secret";
    let (status, body) = api.call("PUT", own, Some(&alice), Some(&json!({"password": new})));
    assert_eq!(status, 400, "the current password is asked for: {body}");
    assert_eq!(body["error"]["field"], "currentPassword", "{body}");
    let (status, body) = api.call(
        "PUT",
        own,
        Some(&alice),
        Some(&json!({"password": new, "current_password": "not it at all"})),
    );
    assert_eq!(status, 400, "{body}");
    let (status, body) = api.call(
        "PUT",
        "/api/v1/users/bob/password",
        Some(&alice),
        Some(&json!({"password": new, "current_password": "correct horse battery"})),
    );
    assert_eq!(status, 403, "not someone else's: {body}");
    let (status, body) = api.call(
        "PUT",
        own,
        Some(&alice),
        Some(&json!({"password": new, "current_password": "correct horse battery"})),
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(login("alice", "correct horse battery").0, 401);
    assert_eq!(login("alice", new).0, 200);
    let (status, _) = api.call("GET", "/api/v1/sync/status", Some(&alice), None);
    assert_eq!(status, 401, "the old session ended");
}

/// A served path asked with another method answers 405 with `Allow`; an
/// unknown path 404.
#[test]
fn a_wrong_method_is_405_with_allow_and_an_unknown_path_404() {
    let server = Server::start();
    let agent = client::agent(&server.ca_path(), None);
    let call = |method: &str, path: &str| match agent
        .request(method, &format!("{}{path}", server.admin_url))
        .call()
    {
        Ok(r) => (r.status(), r.header("Allow").map(str::to_string)),
        Err(ureq::Error::Status(code, r)) => (code, r.header("Allow").map(str::to_string)),
        Err(e) => panic!("transport error: {e}"),
    };
    assert_eq!(
        call("DELETE", "/api/v1/openapi.json"),
        (405, Some("GET".to_string()))
    );
    let (status, allow) = call(
        "PATCH",
        "/api/v1/accounts/Test%20Corp/virtual-accounts/Default/tokens",
    );
    assert_eq!(status, 405);
    assert_eq!(allow.as_deref(), Some("GET, POST"));
    assert_eq!(call("GET", "/api/v1/nothing-here").0, 404);
    // The methods that are served still are.
    assert_eq!(call("GET", "/api/v1/openapi.json").0, 200);
}

/// What the document says a body and a query are is what the server reads:
/// a JSON object under a JSON (or no) content type, and only the parameters
/// it lists.
#[test]
fn bodies_of_another_type_and_unknown_parameters_are_refused_and_change_nothing() {
    let server = Server::start();
    let api = Api::new(&server);
    let admin = bearer(&server, &api, "strict", "admin", &[]);
    let tokens = "/api/v1/accounts/Test%20Corp/virtual-accounts/Default/tokens";
    let before = server.snapshot();

    let text = api
        .agent
        .post(&format!("{}{tokens}", api.base))
        .set("Authorization", &format!("Bearer {admin}"))
        .set("Content-Type", "text/plain")
        .send_string("{}");
    let Err(ureq::Error::Status(status, response)) = text else {
        panic!("a text/plain body was accepted");
    };
    assert_eq!(status, 415);
    let body: Value =
        serde_json::from_str(&response.into_string().unwrap_or_default()).expect("a JSON refusal");
    assert_eq!(body["error"]["code"], "unsupported_media_type");

    let (status, body) = api.call("POST", tokens, Some(&admin), Some(&json!([null, null])));
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"]["field"], "body");

    let (status, body) = api.call(
        "GET",
        &format!("{tokens}?limit=5&colour=blue"),
        Some(&admin),
        None,
    );
    assert_eq!(status, 400, "{body}");
    assert!(body.to_string().contains("colour"), "names it: {body}");
    assert_eq!(server.snapshot(), before, "nothing created");

    // Days as text are digits, as Cisco's clients send them ("365").
    let (status, body) = api.call(
        "POST",
        tokens,
        Some(&admin),
        Some(&json!({"expiresAfterDays": "+30"})),
    );
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"]["field"], "expiresAfterDays");
    assert_eq!(server.snapshot(), before, "nothing created");

    // A whole number written as a float is that number, as JSON Schema has it.
    let (status, body) = api.call(
        "POST",
        tokens,
        Some(&admin),
        Some(&json!({"expiresAfterDays": 7.0})),
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["tokenInfo"]["expiresAfterDays"], 7);
}
