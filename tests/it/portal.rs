//! The web portal against a real server: plain HTTPS for the security
//! rules (cookie flags, CSRF, virtual-account isolation, logout, the shared
//! login limiter, nothing fetched from outside), and headless Chromium for
//! what an operator does in it.

use crate::client::register;
use crate::fixture::Server;
use crate::sync::{cloud, register_satellite, rezip, unzip, ESS};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

/// A browser-like HTTPS client of the portal: keeps cookies, follows no
/// redirect (tests look at each answer).
pub(crate) struct Portal {
    agent: ureq::Agent,
    base: String,
    cookies: BTreeMap<String, String>,
}

pub(crate) struct Answer {
    pub(crate) status: u16,
    /// The page a form's 303 led to (the form succeeded).
    after_redirect: bool,
    location: Option<String>,
    set_cookies: Vec<String>,
    csp: Option<String>,
    pub(crate) body: String,
}

impl Portal {
    fn new(server: &Server) -> Self {
        Self::at(&server.admin_url, &server.ca_path())
    }

    /// A client of the portal at `base` that trusts the CA in `ca`.
    pub(crate) fn at(base: &str, ca: &Path) -> Self {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut roots = rustls::RootCertStore::empty();
        let pem = std::fs::read(ca).expect("ca");
        for cert in rustls_pemfile_certs(&pem) {
            roots.add(cert).expect("add ca");
        }
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("versions")
            .with_root_certificates(roots)
            .with_no_client_auth();
        Self {
            agent: ureq::AgentBuilder::new()
                .tls_config(Arc::new(config))
                .redirects(0)
                .timeout(Duration::from_secs(30))
                .build(),
            base: base.to_string(),
            cookies: BTreeMap::new(),
        }
    }

    fn send(
        &mut self,
        method: &str,
        path: &str,
        form: Option<&[(&str, &str)]>,
        extra: &[(&str, &str)],
    ) -> Answer {
        let mut request = self.agent.request(method, &format!("{}{path}", self.base));
        if !self.cookies.is_empty() {
            let jar: Vec<String> = self
                .cookies
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect();
            request = request.set("Cookie", &jar.join("; "));
        }
        for (name, value) in extra {
            request = request.set(name, value);
        }
        let result = match form {
            Some(fields) => request.send_form(fields),
            None => request.call(),
        };
        let response = match result {
            Ok(r) => r,
            Err(ureq::Error::Status(_, r)) => r,
            Err(e) => panic!("transport error: {e}"),
        };
        let set_cookies: Vec<String> = response
            .all("set-cookie")
            .into_iter()
            .map(str::to_string)
            .collect();
        for cookie in &set_cookies {
            let pair = cookie.split(';').next().unwrap_or_default();
            if let Some((name, value)) = pair.split_once('=') {
                if value.is_empty() || cookie.contains("Max-Age=0") {
                    self.cookies.remove(name);
                } else {
                    self.cookies.insert(name.to_string(), value.to_string());
                }
            }
        }
        Answer {
            after_redirect: false,
            status: response.status(),
            location: response.header("location").map(str::to_string),
            csp: response
                .header("content-security-policy")
                .map(str::to_string),
            set_cookies,
            body: response.into_string().unwrap_or_default(),
        }
    }

    /// A form with a file, as a browser sends `enctype="multipart/form-data"`.
    fn upload(&mut self, path: &str, csrf: &str, file: &Path) -> Answer {
        let boundary = "----satellite-test-boundary-7d3f";
        let bytes = std::fs::read(file).expect("bundle");
        let mut body = format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"csrf\"\r\n\r\n{csrf}\r\n--{boundary}\r\n\
             Content-Disposition: form-data; name=\"bundle\"; filename=\"b.zip\"\r\nContent-Type: application/zip\r\n\r\n"
        )
        .into_bytes();
        body.extend_from_slice(&bytes);
        body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
        let jar: Vec<String> = self
            .cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        let result = self
            .agent
            .post(&format!("{}{path}", self.base))
            .set("Cookie", &jar.join("; "))
            .set(
                "Content-Type",
                &format!("multipart/form-data; boundary={boundary}"),
            )
            .send_bytes(&body);
        let response = match result {
            Ok(r) => r,
            Err(ureq::Error::Status(_, r)) => r,
            Err(e) => panic!("transport error: {e}"),
        };
        let answer = Answer {
            after_redirect: false,
            status: response.status(),
            location: response.header("location").map(str::to_string),
            set_cookies: Vec::new(),
            csp: None,
            body: response.into_string().unwrap_or_default(),
        };
        self.follow(answer)
    }

    /// The bytes of a download.
    fn download(&mut self, path: &str) -> (u16, Vec<u8>) {
        let jar: Vec<String> = self
            .cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        let response = match self
            .agent
            .get(&format!("{}{path}", self.base))
            .set("Cookie", &jar.join("; "))
            .call()
        {
            Ok(r) => r,
            Err(ureq::Error::Status(_, r)) => r,
            Err(e) => panic!("transport error: {e}"),
        };
        let status = response.status();
        let mut bytes = Vec::new();
        std::io::Read::read_to_end(&mut response.into_reader(), &mut bytes).expect("read");
        (status, bytes)
    }

    pub(crate) fn get(&mut self, path: &str) -> Answer {
        self.send("GET", path, None, &[])
    }

    /// A form, as a browser sends it: a form that succeeded answers 303 to
    /// its page (post/redirect/get), which is followed; the answer tells it
    /// was (`after_redirect`).
    fn post(&mut self, path: &str, fields: &[(&str, &str)]) -> Answer {
        let answer = self.send("POST", path, Some(fields), &[]);
        self.follow(answer)
    }

    fn follow(&mut self, answer: Answer) -> Answer {
        match (answer.status, answer.location.as_deref()) {
            (303, Some(page)) if page.starts_with("/portal/") && page != "/portal/login" => {
                let page = page.to_string();
                Answer {
                    after_redirect: true,
                    ..self.get(&page)
                }
            }
            _ => answer,
        }
    }

    pub(crate) fn login(&mut self, user: &str, password: &str) -> Answer {
        let form = self.get("/portal/login");
        let nonce = hidden(&form.body, "nonce");
        self.send(
            "POST",
            "/portal/login",
            Some(&[
                ("username", user),
                ("password", password),
                ("nonce", &nonce),
            ]),
            &[],
        )
    }

    /// Logs in and returns the CSRF token of the session's forms.
    fn logged_in(server: &Server, user: &str, password: &str) -> (Self, String) {
        let mut portal = Self::new(server);
        let answer = portal.login(user, password);
        assert_eq!(answer.status, 303, "login: {}", answer.body);
        let page = portal.get("/portal/inventory");
        assert_eq!(page.status, 200, "{}", page.body);
        let csrf = hidden(&page.body, "csrf");
        (portal, csrf)
    }
}

fn rustls_pemfile_certs(pem: &[u8]) -> Vec<rustls::pki_types::CertificateDer<'static>> {
    use rustls::pki_types::pem::PemObject;
    rustls::pki_types::CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .expect("ca pem")
}

/// Where the notice's link leads.
fn notice_link(html: &str) -> String {
    html.split("id=\"notice-link\" href=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap_or_else(|| panic!("no link in the notice: {html}"))
        .to_string()
}

/// The value of the first hidden input called `name`.
fn hidden(html: &str, name: &str) -> String {
    let marker = format!("name=\"{name}\" value=\"");
    let start = html
        .find(&marker)
        .unwrap_or_else(|| panic!("no {name} field in: {html}"))
        + marker.len();
    html[start..]
        .split('"')
        .next()
        .unwrap_or_default()
        .to_string()
}

fn admin(server: &Server) -> (Portal, String) {
    let password = server
        .admin_password
        .clone()
        .expect("bootstrap admin password");
    Portal::logged_in(server, "admin", &password)
}

fn token_count(server: &Server) -> usize {
    let list: Value =
        serde_json::from_str(&server.cli_ok(&["token", "list", "--json"])).expect("json");
    list.as_array().map_or(0, Vec::len)
}

#[test]
fn sessions_use_strict_cookies_and_every_page_a_strict_policy_with_nothing_from_outside() {
    let server = Server::start();
    let mut portal = Portal::new(&server);
    assert_eq!(
        portal.get("/").location.as_deref(),
        Some("/portal/overview")
    );
    // A page asked for by address comes back after the login.
    let first = portal.get("/portal/inventory");
    assert_eq!(first.status, 303);
    assert_eq!(
        first.location.as_deref(),
        Some("/portal/login?next=%2Fportal%2Finventory")
    );

    let password = server.admin_password.clone().expect("password");
    let answer = portal.login("admin", &password);
    assert_eq!(answer.status, 303, "{}", answer.body);
    let session = answer
        .set_cookies
        .iter()
        .find(|c| c.starts_with("satellite_session="))
        .expect("session cookie");
    for flag in [
        "Secure",
        "HttpOnly",
        "SameSite=Strict",
        "Path=/",
        "Max-Age=28800",
    ] {
        assert!(session.contains(flag), "{session} lacks {flag}");
    }
    // The cookie is a session, not a bearer token for the API.
    let secret = portal.cookies["satellite_session"].clone();
    let api = crate::api::Api::new(&server);
    let (status, _) = api.call("GET", "/api/v1/users", Some(&secret), None);
    assert_eq!(
        status, 401,
        "a session cookie must not work as a bearer token"
    );

    for path in [
        "/portal/login",
        "/portal/inventory",
        "/portal/inventory/licenses",
        "/portal/inventory/instances",
        "/portal/inventory/events",
        "/portal/reports",
        "/portal/sync",
        "/portal/alerts",
    ] {
        let page = portal.get(path);
        assert_eq!(page.status, 200, "{path}: {}", page.body);
        let csp = page.csp.unwrap_or_default();
        for directive in [
            "default-src 'none'",
            "style-src 'self'",
            "form-action 'self'",
            "frame-ancestors 'none'",
        ] {
            assert!(
                csp.contains(directive),
                "{path}: CSP {csp:?} lacks {directive}"
            );
        }
        assert!(!page.body.contains("<script"), "{path} carries a script");
        assert!(
            !page.body.contains(" style="),
            "{path} has an inline style the CSP would block"
        );
        for external in ["src=\"http", "href=\"http", "url(http", "@import"] {
            assert!(
                !page.body.contains(external),
                "{path} fetches from outside: {external}"
            );
        }
    }
    let css = portal.get("/portal/assets/portal.css");
    assert_eq!(css.status, 200);
    assert!(
        !css.body.contains("http://")
            && !css.body.contains("https://")
            && !css.body.contains("@import")
    );
}

#[test]
fn a_form_without_its_csrf_token_or_from_another_site_is_refused_and_changes_nothing() {
    let server = Server::start();
    let (mut portal, csrf) = admin(&server);
    let before = token_count(&server);

    let missing = portal.post(
        "/portal/inventory/tokens",
        &[("va", "Default"), ("days", "30")],
    );
    assert_eq!(missing.status, 403, "{}", missing.body);
    assert!(missing.body.contains("CSRF"), "{}", missing.body);
    let wrong = portal.post(
        "/portal/inventory/tokens",
        &[("csrf", "0000"), ("va", "Default"), ("days", "30")],
    );
    assert_eq!(wrong.status, 403);
    // A right token from another origin is still refused.
    let cross = portal.send(
        "POST",
        "/portal/inventory/tokens",
        Some(&[("csrf", &csrf), ("va", "Default"), ("days", "30")]),
        &[("Origin", "https://evil.example")],
    );
    assert_eq!(cross.status, 403, "{}", cross.body);
    let logout = portal.post("/portal/logout", &[("csrf", "nope")]);
    assert_eq!(logout.status, 403, "logout needs the token too");
    assert_eq!(
        token_count(&server),
        before,
        "a refused form created a token"
    );

    // A login form posted without the nonce of its page is refused.
    let mut other = Portal::new(&server);
    let password = server.admin_password.clone().expect("password");
    let forged = other.post(
        "/portal/login",
        &[
            ("username", "admin"),
            ("password", &password),
            ("nonce", "x"),
        ],
    );
    assert_eq!(forged.status, 403, "{}", forged.body);
    assert!(!other.cookies.contains_key("satellite_session"));

    // The same form with its token works, and shows the token once.
    let created = portal.post(
        "/portal/inventory/tokens",
        &[
            ("csrf", &csrf),
            ("va", "Default"),
            ("days", "30"),
            ("description", "lab <b>"),
        ],
    );
    assert_eq!(created.status, 200, "{}", created.body);
    assert!(created.after_redirect, "a form that succeeded redirects");
    assert_eq!(token_count(&server), before + 1);
    assert!(
        created.body.contains("id=\"new-secret\""),
        "{}",
        created.body
    );
    assert!(
        created.body.contains("lab &lt;b&gt;"),
        "descriptions are escaped: {}",
        created.body
    );
    // A bad value is refused with the field named, and nothing is created.
    let bad = portal.post(
        "/portal/inventory/tokens",
        &[("csrf", &csrf), ("va", "Default"), ("days", "400")],
    );
    assert_eq!(bad.status, 400, "{}", bad.body);
    assert!(!bad.after_redirect, "a refused form shows its page again");
    assert!(bad.body.contains("365"), "{}", bad.body);
    assert_eq!(token_count(&server), before + 1);
    // An operator revokes it from its row.
    let general = portal.get("/portal/inventory?va=Default");
    let prefix = hidden(&general.body, "token");
    assert!(
        general.body.contains(">Revoke</button>"),
        "{}",
        general.body
    );
    // It asks first, saying what revoking does (no JavaScript: a box to tick).
    assert!(
        general.body.contains("it registers no more routers"),
        "{}",
        general.body
    );
    let unconfirmed = portal.post(
        "/portal/inventory/tokens/revoke",
        &[("csrf", &csrf), ("va", "Default"), ("token", &prefix)],
    );
    assert_eq!(unconfirmed.status, 400, "{}", unconfirmed.body);
    assert!(
        unconfirmed.body.contains("Nothing was changed"),
        "{}",
        unconfirmed.body
    );
    assert!(portal
        .get("/portal/inventory?va=Default")
        .body
        .contains(">Revoke</button>"));
    let revoked = portal.post(
        "/portal/inventory/tokens/revoke",
        &[
            ("csrf", &csrf),
            ("va", "Default"),
            ("token", &prefix),
            ("confirm", "yes"),
        ],
    );
    assert!(revoked.status < 400, "{}", revoked.body);
    let after = portal.get("/portal/inventory?va=Default");
    assert!(after.body.contains(">Revoked<"), "{}", after.body);
    assert!(!after.body.contains(">Revoke</button>"), "{}", after.body);
}

/// Post/redirect/get: a form that succeeded answers 303 to its page, which
/// shows the outcome once; reloading that page repeats nothing, and a new
/// token's secret is not shown twice.
#[test]
fn a_reload_after_a_form_repeats_nothing() {
    let server = Server::start();
    let (mut portal, csrf) = admin(&server);
    let before = token_count(&server);
    let created = portal.send(
        "POST",
        "/portal/inventory/tokens",
        Some(&[("csrf", &csrf), ("va", "Default"), ("days", "30")]),
        &[],
    );
    assert_eq!(created.status, 303, "{}", created.body);
    let page = created.location.clone().expect("location");
    assert_eq!(page, "/portal/inventory?va=Default");
    let shown = portal.get(&page);
    assert!(shown.body.contains("id=\"new-secret\""), "{}", shown.body);
    let reloaded = portal.get(&page);
    assert!(
        !reloaded.body.contains("id=\"new-secret\""),
        "the secret is shown once"
    );
    assert_eq!(token_count(&server), before + 1, "a reload creates nothing");
    // A form's address opened as a page leads to its page.
    for (form, page) in [
        ("/portal/inventory/tokens", "/portal/inventory"),
        ("/portal/inventory/licenses/transfer", "/portal/inventory"),
        ("/portal/sync/import", "/portal/sync"),
        ("/portal/logout", "/portal/overview"),
    ] {
        let answer = portal.get(form);
        assert_eq!(answer.status, 303, "{form}");
        assert_eq!(answer.location.as_deref(), Some(page), "{form}");
    }
    // Another session does not see this one's notice.
    let (mut other, other_csrf) = admin(&server);
    let made = portal.send(
        "POST",
        "/portal/inventory/virtual-accounts",
        Some(&[("csrf", &csrf), ("name", "Mine")]),
        &[],
    );
    assert_eq!(made.status, 303);
    assert!(!other.get("/portal/inventory").body.contains("Mine created"));
    assert!(!other_csrf.is_empty());
    let mine = portal.get(made.location.as_deref().expect("location"));
    assert!(
        mine.body.contains("Virtual account Mine created"),
        "{}",
        mine.body
    );
}

#[test]
fn logging_out_ends_the_session_everywhere() {
    let server = Server::start();
    let (mut portal, csrf) = admin(&server);
    let stolen = portal.cookies.clone();
    let out = portal.post("/portal/logout", &[("csrf", &csrf)]);
    assert_eq!(out.status, 303);
    assert_eq!(out.location.as_deref(), Some("/portal/login"));
    assert!(out
        .set_cookies
        .iter()
        .any(|c| c.starts_with("satellite_session=;") && c.contains("Max-Age=0")));
    // The old cookie, replayed, is worth nothing.
    portal.cookies = stolen;
    let again = portal.get("/portal/inventory");
    assert_eq!(again.status, 303);
    assert_eq!(again.location.as_deref(), Some("/portal/login"));
}

#[test]
fn a_viewer_of_one_virtual_account_sees_nothing_of_another_and_no_buttons() {
    let (server, _) = Server::cloud_with_lab("5");
    server.cli_ok(&["va", "create", "Secret"]);
    server.token("Secret", &["--description", "secret-token-desc"]);
    let token = server.token("Secret", &[]);
    register(&server, "FOCSECRET01", &token);
    server.cli_ok(&["report", "generate", "--va", "Secret"]);
    server.token("Lab", &["--description", "lab-token-desc"]);
    server.user("vera", "viewer", &["Lab"], "viewer password 1");

    let (mut portal, csrf) = Portal::logged_in(&server, "vera", "viewer password 1");
    let home = portal.get("/portal/inventory");
    assert!(home.body.contains("lab-token-desc"), "{}", home.body);
    assert!(
        !home.body.contains("value=\"Secret\""),
        "Secret offered in the selector"
    );
    assert!(
        !home.body.contains("/portal/inventory/tokens"),
        "a viewer sees a token form"
    );
    assert!(
        !home.body.contains("Revoke"),
        "a viewer sees a revoke button"
    );
    assert!(
        !home.body.contains("/portal/sync"),
        "a viewer sees Synchronization"
    );

    for path in [
        "/portal/inventory?va=Secret",
        "/portal/inventory/licenses?va=Secret",
        "/portal/inventory/instances?va=Secret",
        "/portal/inventory/events?va=Secret",
        "/portal/reports",
        "/portal/alerts",
    ] {
        let page = portal.get(path);
        for leak in ["secret-token-desc", "FOCSECRET01", ">Secret<"] {
            assert!(
                !page.body.contains(leak),
                "{path} shows {leak}: {}",
                page.body
            );
        }
    }
    assert_eq!(portal.get("/portal/inventory?va=Secret").status, 403);
    assert_eq!(portal.get("/portal/sync").status, 403);
    let before = token_count(&server);
    let create = portal.post(
        "/portal/inventory/tokens",
        &[("csrf", &csrf), ("va", "Lab"), ("days", "30")],
    );
    assert_eq!(create.status, 403, "{}", create.body);
    let create = portal.post(
        "/portal/inventory/tokens",
        &[("csrf", &csrf), ("va", "Secret"), ("days", "30")],
    );
    assert_eq!(create.status, 403, "{}", create.body);
    let upload = portal.post("/portal/sync/export", &[("csrf", &csrf)]);
    assert_eq!(upload.status, 403);
    assert_eq!(token_count(&server), before);
    let report = portal.post(
        "/portal/reports/generate",
        &[("csrf", &csrf), ("va", "Secret"), ("kind", "manual")],
    );
    assert_eq!(report.status, 403, "{}", report.body);
}

#[test]
fn portal_logins_share_the_api_limiter() {
    let server = Server::start();
    server.user("olga", "admin", &[], "the right password");
    let api = crate::api::Api::new(&server);
    for _ in 0..5 {
        let (status, _) = api.call(
            "POST",
            "/backend/oauth/token",
            None,
            Some(&json!({"grant_type": "password", "username": "olga", "password": "wrong"})),
        );
        assert_eq!(status, 401);
    }
    let mut portal = Portal::new(&server);
    let answer = portal.login("olga", "the right password");
    assert_eq!(answer.status, 429, "{}", answer.body);
    assert!(!portal.cookies.contains_key("satellite_session"));
}

/// The USB exchange done entirely in two browsers' worth of portal: the
/// satellite's export downloaded, processed at the cloud's portal, the
/// answer downloaded there and imported at the satellite's.
#[test]
fn the_usb_exchange_runs_through_both_portals() {
    let cloud = cloud();
    let sat = Server::start();
    register_satellite(&cloud, &sat, "portal-site", "Lab");
    cloud.cli_ok(&[
        "license",
        "add",
        "--va",
        "Lab",
        "--sku",
        ESS,
        "--quantity",
        "3",
    ]);
    let (mut at_sat, sat_csrf) = admin(&sat);
    let (mut at_cloud, cloud_csrf) = admin(&cloud);

    let status = at_sat.get("/portal/sync");
    assert!(
        !status.body.contains("/portal/sync/now"),
        "no live sync when disconnected"
    );
    // The export is written, then the page shows it (not the state before).
    let export = at_sat.post("/portal/sync/export", &[("csrf", &sat_csrf)]);
    assert_eq!(export.status, 200, "{}", export.body);
    assert!(export.after_redirect, "post/redirect/get");
    let written = std::fs::read_dir(sat.dir.path().join("export"))
        .expect("export dir")
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.to_string_lossy().contains("-usage-"))
        .max()
        .expect("a usage bundle in export/");
    let name = written
        .file_name()
        .and_then(|n| n.to_str())
        .expect("name")
        .to_string();
    assert!(
        export
            .body
            .contains(&format!("/portal/sync/files/{name}\" download")),
        "the page lists the new export as the last one: {}",
        export.body
    );
    let link = notice_link(&export.body);
    assert_eq!(link, format!("/portal/sync/files/{name}"));
    let (status, bytes) = at_sat.download(&link);
    assert_eq!(status, 200);
    // The download is the file the export folder got.
    assert_eq!(bytes, std::fs::read(&written).expect("read"));
    let usage = sat.dir.path().join("usage-from-portal.zip");
    std::fs::write(&usage, bytes).expect("write usage");

    let sats = at_cloud.get("/portal/sync");
    assert!(sats.body.contains("portal-site"), "{}", sats.body);
    let processed = at_cloud.upload("/portal/sync/process", &cloud_csrf, &usage);
    assert_eq!(processed.status, 200, "{}", processed.body);
    let link = notice_link(&processed.body);
    let (status, bytes) = at_cloud.download(&link);
    assert_eq!(status, 200);
    let answer = sat.dir.path().join("answer-from-portal.zip");
    std::fs::write(&answer, bytes).expect("write answer");
    // Nothing outside the export folder is served.
    assert_eq!(
        at_cloud
            .download("/portal/sync/files/..%2Fsatellite.yaml")
            .0,
        400
    );
    assert_eq!(at_cloud.download("/portal/sync/files/satellite.db").0, 400);

    let imported = at_sat.upload("/portal/sync/import", &sat_csrf, &answer);
    assert_eq!(imported.status, 200, "{}", imported.body);
    assert!(
        imported.body.contains("Imported the entitlements bundle"),
        "{}",
        imported.body
    );
    let licenses = at_sat.get("/portal/inventory/licenses?va=Lab");
    assert!(
        licenses.body.contains(">8<"),
        "5 + 3 units: {}",
        licenses.body
    );
    // Again: applied before, nothing changes.
    let again = at_sat.upload("/portal/sync/import", &sat_csrf, &answer);
    assert!(again.body.contains("applied before"), "{}", again.body);
    // An upload without the session's CSRF token is refused before it is read.
    let forged = at_sat.upload("/portal/sync/import", "nope", &answer);
    assert_eq!(forged.status, 403);
}

#[test]
fn instances_are_found_moved_and_removed_and_events_filtered_by_kind_and_day() {
    let (server, token) = Server::cloud_with_lab("5");
    server.cli_ok(&["va", "create", "Lab2"]);
    let router = register(&server, "FOCMOVE0001", &token);
    let stay = register(&server, "FOCSTAY0001", &token);
    let (status, _) = stay.client.post(&json!({
        "type": "ENTITLEMENT", "message_id": "stay-e1",
        "entitlements": [{"tag": ESS, "count": 2}, {"tag": "N540-24Z8Q2C-FC-SW", "count": 1}]
    }));
    assert_eq!(status, 200);
    let (mut portal, csrf) = admin(&server);

    // The chassis tracking tag is counted, never short, though nobody buys it.
    let licenses = portal.get("/portal/inventory/licenses?va=Lab").body;
    let tracking = licenses
        .split("<tr")
        .find(|row| row.contains("<th scope=\"row\">N540-24Z8Q2C-FC-SW</th>"))
        .unwrap_or_else(|| panic!("no tracking row: {licenses}"));
    assert!(
        tracking.contains("In Compliance") && !tracking.contains("short"),
        "{tracking}"
    );
    let found = portal.get("/portal/inventory/instances?va=Lab&q=move0001");
    assert!(
        found.body.contains("FOCMOVE0001") && !found.body.contains("FOCSTAY0001"),
        "{}",
        found.body
    );
    let none = portal.get("/portal/inventory/instances?va=Lab&status=GRACE_PERIOD_EXPIRED");
    assert!(!none.body.contains("FOCMOVE0001"), "{}", none.body);

    let moved = portal.post(
        "/portal/inventory/instances/move",
        &[
            ("csrf", &csrf),
            ("va", "Lab"),
            ("instance", &router.instance_id),
            ("to", "Lab2"),
        ],
    );
    assert_eq!(moved.status, 200, "{}", moved.body);
    assert!(moved.body.contains("moved to Lab2"), "{}", moved.body);
    assert!(portal
        .get("/portal/inventory/instances?va=Lab2")
        .body
        .contains("FOCMOVE0001"));
    let unconfirmed = portal.post(
        "/portal/inventory/instances/remove",
        &[
            ("csrf", &csrf),
            ("va", "Lab2"),
            ("instance", &router.instance_id),
        ],
    );
    assert_eq!(unconfirmed.status, 400, "{}", unconfirmed.body);
    let removed = portal.post(
        "/portal/inventory/instances/remove",
        &[
            ("csrf", &csrf),
            ("va", "Lab2"),
            ("instance", &router.instance_id),
            ("confirm", "yes"),
        ],
    );
    assert_eq!(removed.status, 200, "{}", removed.body);
    assert!(!portal
        .get("/portal/inventory/instances?va=Lab2")
        .body
        .contains("FOCMOVE0001"));
    let unknown = portal.post(
        "/portal/inventory/instances/remove",
        &[
            ("csrf", &csrf),
            ("va", "Lab2"),
            ("instance", &router.instance_id),
            ("confirm", "yes"),
        ],
    );
    assert_eq!(unknown.status, 404, "{}", unknown.body);

    let today = crate::fixture::rfc3339_now(&server.clock)[..10].to_string();
    let events = portal.get(&format!(
        "/portal/inventory/events?va=Lab&kind=registration&from={today}&to={today}"
    ));
    assert!(events.body.contains("FOCSTAY0001"), "{}", events.body);
    assert!(
        !events.body.contains("<td>token</td>"),
        "only registrations: {}",
        events.body
    );
    let earlier = portal.get("/portal/inventory/events?va=Lab&kind=registration&to=2020-01-01");
    assert!(!earlier.body.contains("FOCSTAY0001"), "{}", earlier.body);
    let bad = portal.get("/portal/inventory/events?va=Lab&from=yesterday");
    assert_eq!(bad.status, 400);
    assert!(bad.body.contains("YYYY-MM-DD"), "{}", bad.body);
    // What cannot be read is a page saying so, never the API's JSON.
    for (path, status) in [
        ("/portal/inventory/instances?va=Lab&offset=many", 400),
        ("/portal/inventory/events?va=Lab&offset=-1", 400),
        ("/portal/inventory/licenses?va=Lab&days=abc", 400),
        ("/portal/reports/abc", 404),
        ("/portal/inventory/instances?va=Lab&status=BOGUS", 400),
    ] {
        let page = portal.get(path);
        assert_eq!(page.status, status, "{path}: {}", page.body);
        assert!(
            page.body.starts_with("<!DOCTYPE html>"),
            "{path}: {}",
            page.body
        );
    }

    // Reports: generated, listed, shown, and downloaded as CSV.
    let generated = portal.post(
        "/portal/reports/generate",
        &[("csrf", &csrf), ("va", "Lab"), ("kind", "manual")],
    );
    assert_eq!(generated.status, 200, "{}", generated.body);
    let id: String = generated
        .body
        .split("Report #")
        .nth(1)
        .expect("report number")
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    assert!(portal
        .get("/portal/reports")
        .body
        .contains(&format!("/portal/reports/{id}\"")));
    let shown = portal.get(&format!("/portal/reports/{id}"));
    assert!(shown.body.contains("Manual Record"), "{}", shown.body);
    let (status, csv) = portal.download(&format!("/portal/reports/{id}/csv"));
    assert_eq!(status, 200);
    let csv = String::from_utf8_lossy(&csv);
    assert!(csv.contains("FOCSTAY0001"), "{csv}");
}

#[test]
fn sync_now_runs_a_live_exchange_from_the_portal_in_connected_mode() {
    let cloud = crate::sync_live::Cloud::start();
    let proxy = crate::sync_live::Proxy::start();
    let sat = crate::sync_live::connected_satellite(&cloud, &proxy, "");
    let token = cloud.token_for("site-portal");
    sat.cli_ok(&["upstream", "register", "--token", &token, "--json"]);
    cloud.add_license(4);
    let (mut portal, csrf) = admin(&sat);
    let page = portal.get("/portal/sync");
    assert!(
        page.body.contains("connected") && page.body.contains("/portal/sync/now"),
        "{}",
        page.body
    );
    let synced = portal.post("/portal/sync/now", &[("csrf", &csrf)]);
    assert_eq!(synced.status, 200, "{}", synced.body);
    assert!(synced.body.contains("Synced with"), "{}", synced.body);
    assert_eq!(
        sat.compliance("Lab", ESS)["available"],
        4,
        "the cloud's license arrived"
    );
    assert!(synced.body.contains("Last live sync"), "{}", synced.body);
    // The next attempt stays the schedule's, not "never" after a manual sync.
    assert!(
        synced.body.contains("Next attempt</th><td>")
            && !synced.body.contains("Next attempt</th><td>never"),
        "{}",
        synced.body
    );
}

/// The seed's other portal chores: a new virtual account (a license pool)
/// and licenses transferred into it, at the cloud that holds them.
#[test]
fn an_admin_creates_a_virtual_account_and_transfers_licenses_into_it_at_the_cloud() {
    let (server, _) = Server::cloud_with_lab("5");
    let (mut portal, csrf) = admin(&server);
    let created = portal.post(
        "/portal/inventory/virtual-accounts",
        &[
            ("csrf", &csrf),
            ("name", "Europe"),
            ("description", "EMEA sites"),
        ],
    );
    assert_eq!(created.status, 200, "{}", created.body);
    assert!(
        created.body.contains("Virtual account Europe created"),
        "{}",
        created.body
    );
    let again = portal.post(
        "/portal/inventory/virtual-accounts",
        &[("csrf", &csrf), ("name", "Europe")],
    );
    assert_eq!(again.status, 409, "{}", again.body);

    let form = portal.get("/portal/inventory/licenses?va=Lab");
    assert!(
        form.body.contains("/portal/inventory/licenses/transfer"),
        "{}",
        form.body
    );
    let moved = portal.post(
        "/portal/inventory/licenses/transfer",
        &[
            ("csrf", &csrf),
            ("va", "Lab"),
            ("sku", ESS),
            ("quantity", "2"),
            ("to", "Europe"),
        ],
    );
    assert_eq!(moved.status, 200, "{}", moved.body);
    assert_eq!(server.compliance("Lab", ESS)["available"], 3);
    assert_eq!(server.compliance("Europe", ESS)["available"], 2);
    let too_many = portal.post(
        "/portal/inventory/licenses/transfer",
        &[
            ("csrf", &csrf),
            ("va", "Lab"),
            ("sku", ESS),
            ("quantity", "9"),
            ("to", "Europe"),
        ],
    );
    assert!(too_many.status >= 400, "{}", too_many.body);
    assert_eq!(
        server.compliance("Lab", ESS)["available"],
        3,
        "a refused transfer moved nothing"
    );
    let zero = portal.post(
        "/portal/inventory/licenses/transfer",
        &[
            ("csrf", &csrf),
            ("va", "Lab"),
            ("sku", ESS),
            ("quantity", "x"),
            ("to", "Europe"),
        ],
    );
    assert_eq!(zero.status, 400, "{}", zero.body);
    // More than one transfer moves (the API document's maximum).
    let huge = portal.post(
        "/portal/inventory/licenses/transfer",
        &[
            ("csrf", &csrf),
            ("va", "Lab"),
            ("sku", ESS),
            ("quantity", "1000001"),
            ("to", "Europe"),
        ],
    );
    assert_eq!(huge.status, 400, "{}", huge.body);
    assert!(
        huge.body.contains("more than one transfer moves"),
        "{}",
        huge.body
    );
    assert_eq!(server.compliance("Lab", ESS)["available"], 3);

    // A transfer that would leave the source short asks first.
    let router = crate::client::register(&server, "FOCSHORT01", &server.token("Lab", &[]));
    let (status, _) = router.client.post(&json!({
        "type": "ENTITLEMENT", "message_id": "e1",
        "entitlements": [{"tag": ESS, "count": 3}]
    }));
    assert_eq!(status, 200);
    let transfer = |short_ok: Option<&'static str>| {
        let mut fields = vec![
            ("csrf", csrf.as_str()),
            ("va", "Lab"),
            ("sku", ESS),
            ("quantity", "1"),
            ("to", "Europe"),
        ];
        if let Some(ok) = short_ok {
            fields.push(("short_ok", ok));
        }
        fields
    };
    let asked = portal.post("/portal/inventory/licenses/transfer", &transfer(None));
    assert!(asked.status >= 400, "{}", asked.body);
    assert!(
        asked.body.contains("would leave Lab short"),
        "{}",
        asked.body
    );
    assert_eq!(
        server.compliance("Lab", ESS)["available"],
        3,
        "nothing moved"
    );
    let done = portal.post(
        "/portal/inventory/licenses/transfer",
        &transfer(Some("yes")),
    );
    assert_eq!(done.status, 200, "{}", done.body);
    assert_eq!(server.compliance("Lab", ESS)["available"], 2);

    // A satellite's licenses are its cloud's: no transfer form there.
    let sat = Server::start();
    let (mut at_sat, _) = admin(&sat);
    let licenses = at_sat.get("/portal/inventory/licenses?va=Default");
    assert!(!licenses
        .body
        .contains("/portal/inventory/licenses/transfer"));
}

// ---------------------------------------------------------------------------
// Headless Chromium through chromedriver.

/// chromedriver on a free port, stopped on drop.
struct Driver {
    child: std::process::Child,
    url: String,
    _profile: tempfile::TempDir,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn find_program(env: &str, candidates: &[&str]) -> Option<String> {
    if let Ok(path) = std::env::var(env) {
        return Some(path);
    }
    candidates
        .iter()
        .find(|c| Path::new(c).exists())
        .map(|c| c.to_string())
}

/// The browser, or `None` where it is not installed (`.ci/run` installs it
/// and sets SATELLITE_REQUIRE_BROWSER, so CI never skips).
fn driver() -> Option<(Driver, String)> {
    let chromedriver = find_program("SATELLITE_CHROMEDRIVER", &["/usr/bin/chromedriver"]);
    let chromium = find_program(
        "SATELLITE_CHROMIUM",
        &["/usr/bin/chromium", "/usr/bin/chromium-browser"],
    );
    let (Some(chromedriver), Some(chromium)) = (chromedriver, chromium) else {
        assert!(
            std::env::var_os("SATELLITE_REQUIRE_BROWSER").is_none(),
            "chromium and chromedriver are required (apt-get install chromium chromium-driver)"
        );
        eprintln!("SKIPPED: the portal browser test needs chromium and chromium-driver");
        return None;
    };
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port();
    let child = std::process::Command::new(chromedriver)
        .arg(format!("--port={port}"))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("start chromedriver");
    let url = format!("http://127.0.0.1:{port}");
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            std::time::Instant::now() < deadline,
            "chromedriver did not start"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let profile = tempfile::tempdir().expect("profile dir");
    Some((
        Driver {
            child,
            url,
            _profile: profile,
        },
        chromium,
    ))
}

fn capabilities(chromium: &str, profile: &Path) -> serde_json::Map<String, Value> {
    let caps = json!({
        "browserName": "chrome",
        // The satellite's own CA is not in the browser's store; the test
        // trusts the server it started.
        "acceptInsecureCerts": true,
        "goog:chromeOptions": {
            "binary": chromium,
            "args": [
                "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--disable-quic", "--no-first-run", "--disable-background-networking",
                "--disable-component-update", "--disable-sync", "--window-size=1280,900",
                format!("--user-data-dir={}", profile.display()),
            ]
        }
    });
    caps.as_object().cloned().unwrap_or_default()
}

/// Waits until an element of the page that was shown is gone (the next page
/// has replaced it).
async fn wait_gone(old: &fantoccini::elements::Element) {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while old.tag_name().await.is_ok() {
        assert!(
            std::time::Instant::now() < deadline,
            "the page did not change"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[test]
fn an_operator_does_the_round_in_a_real_browser() {
    let Some((driver, chromium)) = driver() else {
        return;
    };
    let cloud = cloud();
    let sat = Server::start();
    let answer = register_satellite(&cloud, &sat, "browser-site", "Lab");
    // A tampered copy of the cloud's answer, to upload.
    let tampered = sat.dir.path().join("tampered.zip");
    let mut entries = unzip(&answer);
    // One byte more in the signed manifest.
    let manifest = entries
        .iter_mut()
        .find(|(name, _)| name == "manifest.json")
        .expect("manifest");
    manifest.1.push(b' ');
    rezip(&entries, &tampered);
    let password = sat.admin_password.clone().expect("password");
    let base = sat.admin_url.clone();
    let profile = driver._profile.path().to_path_buf();

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        use fantoccini::{key::Key, ClientBuilder, Locator};
        let browser = ClientBuilder::native()
            .capabilities(capabilities(&chromium, &profile))
            .connect(&driver.url)
            .await
            .expect("a chromium session");
        let find = |css: &'static str| {
            let browser = browser.clone();
            async move {
                browser
                    .wait()
                    .at_most(Duration::from_secs(10))
                    .for_element(Locator::Css(css))
                    .await
                    .unwrap_or_else(|e| panic!("{css}: {e}"))
            }
        };
        let text = |css: &'static str| async move { find(css).await.text().await.expect("text") };
        // Clicks what `locator` finds and waits for the next page: until the
        // old page's root is gone, so nothing of it is read as the new one.
        let navigate = |locator: Locator<'static>| {
            let browser = browser.clone();
            async move {
                let old = browser.find(Locator::Css("html")).await.expect("page");
                let target = browser
                    .wait()
                    .at_most(Duration::from_secs(10))
                    .for_element(locator)
                    .await
                    .unwrap_or_else(|e| panic!("{locator:?}: {e}"));
                target.click().await.expect("click");
                wait_gone(&old).await;
            }
        };
        let press = |css: &'static str| navigate(Locator::Css(css));
        let follow = |link: &'static str| navigate(Locator::LinkText(link));
        // SATELLITE_PORTAL_SCREENSHOTS=DIR keeps a picture of each step.
        let shots = std::env::var_os("SATELLITE_PORTAL_SCREENSHOTS").map(std::path::PathBuf::from);
        let shot = |name: &'static str| {
            let (browser, shots) = (browser.clone(), shots.clone());
            async move {
                if let Some(dir) = shots {
                    let png = browser.screenshot().await.expect("screenshot");
                    std::fs::write(dir.join(format!("{name}.png")), png).expect("write screenshot");
                }
            }
        };
        let path = || {
            let browser = browser.clone();
            async move { browser.current_url().await.expect("url").path().to_string() }
        };

        // Log in, by keyboard alone: the user name field has the focus, Tab
        // moves to the password, Enter logs in.
        browser
            .goto(&format!("{base}/portal/"))
            .await
            .expect("goto");
        assert!(path().await.ends_with("/portal/login"));
        find("#username").await;
        let focused = browser.active_element().await.expect("focus");
        assert_eq!(
            focused.attr("id").await.expect("id").as_deref(),
            Some("username")
        );
        focused
            .send_keys(&("admin".to_string() + &Key::Tab.to_string()))
            .await
            .expect("type");
        let focused = browser.active_element().await.expect("focus");
        assert_eq!(
            focused.attr("id").await.expect("id").as_deref(),
            Some("password")
        );
        let login_page = browser.find(Locator::Css("html")).await.expect("page");
        focused
            .send_keys(&(password.clone() + &Key::Enter.to_string()))
            .await
            .expect("type");
        wait_gone(&login_page).await;
        // The landing page is the overview across virtual accounts.
        find("#overview").await;
        assert!(path().await.ends_with("/portal/overview"));
        follow("Inventory").await;
        find("nav.tabs").await;
        assert!(path().await.ends_with("/portal/inventory"));

        // Choose Lab, create a token, read it from the page.
        find("#va")
            .await
            .select_by_value("Lab")
            .await
            .expect("select Lab");
        press("#va-selector button").await;
        let new_token = find("details.new-token").await;
        if new_token.attr("open").await.expect("attr").is_none() {
            find("details.new-token summary")
                .await
                .click()
                .await
                .expect("open");
        }
        find("#description")
            .await
            .send_keys("from the browser")
            .await
            .expect("type");
        press("details.new-token button[type=submit]").await;
        let token = text("#new-secret").await;
        assert!(token.len() > 20, "token {token:?}");
        shot("general").await;
        let tokens = text("#tokens").await;
        assert!(tokens.contains("from the browser"), "{tokens}");

        // A router registers with it and asks for more than Lab holds (5).
        let router = register(&sat, "FOCBROWSER01", &token);
        let (status, answer) = router.client.post(&json!({
            "type": "ENTITLEMENT", "message_id": "browser-e1",
            "entitlements": [{"tag": ESS, "count": 7}]
        }));
        assert_eq!(status, 200, "{answer}");
        assert_eq!(answer["status"], "OUT_OF_COMPLIANCE", "{answer}");

        // Product Instances shows it, out of compliance; search finds it.
        follow("Product Instances").await;
        let instances = text("#instances").await;
        assert!(instances.contains("FOCBROWSER01"), "{instances}");
        assert!(instances.contains("Out of compliance"), "{instances}");
        shot("instances").await;
        find("#q").await.send_keys("BROWSER01").await.expect("type");
        press("#instance-search button").await;
        assert!(text("#instances").await.contains("FOCBROWSER01"));

        // Licenses: the pool is short by 2, with its trend chart.
        follow("Licenses").await;
        assert!(text("#licenses").await.contains("Out of Compliance"));
        let row = text("#licenses tbody tr").await;
        assert!(
            row.contains(ESS) && row.contains('7') && row.contains('2'),
            "{row}"
        );
        find("figure.chart svg").await;
        shot("licenses").await;

        // Event Log: the registration is there.
        follow("Event Log").await;
        find("#kind")
            .await
            .select_by_value("registration")
            .await
            .expect("kind");
        press("#event-filter button").await;
        shot("events").await;
        assert!(text("#events").await.contains("FOCBROWSER01"));

        // Synchronization: the tampered bundle is refused, with its reason.
        follow("Synchronization").await;
        find("#bundle")
            .await
            .send_keys(&tampered.display().to_string())
            .await
            .expect("choose file");
        press("form[enctype] button").await;
        let refusal = text(".notice.error").await;
        assert!(refusal.contains("bad signature"), "{refusal}");
        shot("sync").await;

        // Reports: generate a Manual Record and open it.
        follow("Reports").await;
        find("#report-va")
            .await
            .select_by_value("Lab")
            .await
            .expect("va");
        press("#report-generate button").await;
        assert!(text(".notice.ok").await.contains("generated"));
        press("#reports tbody tr th a").await;
        shot("report").await;
        assert!(text("pre.report").await.contains("FOCBROWSER01"));

        // The header names the node, its role and smart account.
        let brand = text(".brand").await;
        assert!(
            brand.contains("test-satellite") && brand.contains("satellite") && brand.contains("Test Corp"),
            "{brand}"
        );
        let report_page = browser.current_url().await.expect("url").path().to_string();

        // Every page is usable on a phone (360 px) and a laptop (1366 px):
        // the page never scrolls sideways (a wide table scrolls in its box).
        for (width, height) in [(360u32, 780u32), (1366, 900)] {
            browser.set_window_size(width, height).await.expect("window size");
            for page in [
                "/portal/overview",
                "/portal/overview?q=FOCBROWSER",
                "/portal/inventory?va=Lab",
                "/portal/inventory/licenses?va=Lab",
                "/portal/inventory/instances?va=Lab",
                "/portal/inventory/events?va=Lab",
                "/portal/reports",
                report_page.as_str(),
                "/portal/sync",
                "/portal/alerts",
                "/portal/admin",
                "/portal/password",
            ] {
                browser.goto(&format!("{base}{page}")).await.expect("goto");
                find("main").await;
                let sizes = browser
                    .execute(
                        "return [document.documentElement.scrollWidth, document.documentElement.clientWidth];",
                        vec![],
                    )
                    .await
                    .expect("measure");
                let (scroll, client) = (sizes[0].as_i64(), sizes[1].as_i64());
                assert!(
                    scroll <= client,
                    "{page} at {width} px scrolls sideways: {scroll:?} > {client:?}"
                );
            }
        }

        // Log out: the inventory asks for a login again.
        press("form.logout button").await;
        find("#username").await;
        browser
            .goto(&format!("{base}/portal/inventory"))
            .await
            .expect("goto");
        find("#username").await;
        assert!(path().await.ends_with("/portal/login"));
        browser.close().await.expect("close");
    });
    drop(driver);
}

#[test]
fn the_same_change_through_the_cli_the_api_and_the_portal_is_recorded_as_its_operators() {
    let (server, token) = Server::cloud_with_lab("5");
    server.cli_ok(&["va", "create", "Lab2"]);
    let by_cli = register(&server, "FOCACTOR001", &token);
    let by_api = register(&server, "FOCACTOR002", &token);
    let by_portal = register(&server, "FOCACTOR003", &token);

    server.cli_ok(&["instance", "move", &by_cli.instance_id, "--to", "Lab2"]);
    let api = crate::api::Api::new(&server);
    let bearer = crate::api::bearer(&server, &api, "ops-script", "admin", &[]);
    let (status, body) = api.call(
        "POST",
        &format!(
            "/api/v1/accounts/Test%20Corp/product-instances/{}/move",
            by_api.instance_id
        ),
        Some(&bearer),
        Some(&json!({"targetVirtualAccount": "Lab2"})),
    );
    assert_eq!(status, 200, "{body}");
    let (mut portal, csrf) = admin(&server);
    let moved = portal.post(
        "/portal/inventory/instances/move",
        &[
            ("csrf", &csrf),
            ("va", "Lab"),
            ("instance", &by_portal.instance_id),
            ("to", "Lab2"),
        ],
    );
    assert!(moved.body.contains("moved to Lab2"), "{}", moved.body);

    let events: Value =
        serde_json::from_str(&server.cli_ok(&["events", "--json", "--limit", "1000"]))
            .expect("json");
    let moved_event = |sn: &str| {
        events
            .as_array()
            .expect("list")
            .iter()
            .find(|e| {
                e["message"]
                    .as_str()
                    .is_some_and(|m| m.contains(&format!("SN:{sn}")) && m.contains("moved from"))
            })
            .unwrap_or_else(|| panic!("no move event for {sn} in {events}"))
            .clone()
    };
    let shell_user = std::env::var("SUDO_USER")
        .or_else(|_| std::env::var("USER"))
        .unwrap_or_else(|_| "local".into());
    let expected = [
        ("FOCACTOR001", format!("cli:{shell_user}")),
        ("FOCACTOR002", "client:ops-script".to_string()),
        ("FOCACTOR003", "user:admin".to_string()),
    ];
    let mut shapes = Vec::new();
    for (sn, actor) in &expected {
        let event = moved_event(sn);
        assert_eq!(event["actor"], json!(actor), "{event}");
        shapes.push((
            event["kind"].clone(),
            event["severity"].clone(),
            event["virtual_account"].clone(),
            event["message"].as_str().unwrap_or("").replace(sn, "SN"),
        ));
    }
    assert!(
        shapes.windows(2).all(|w| w[0] == w[1]),
        "the three front ends recorded different events: {shapes:?}"
    );
}

/// A user changes their own password in the portal: the current one first,
/// the new one twice; every session of theirs ends.
#[test]
fn a_user_changes_their_own_password_in_the_portal() {
    let server = Server::start();
    server.user("carol", "viewer", &["Default"], "correct horse battery");
    let (mut portal, csrf) = Portal::logged_in(&server, "carol", "correct horse battery");
    let page = portal.get("/portal/password");
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(page.body.contains("Current password"), "{}", page.body);
    let wrong = portal.post(
        "/portal/password",
        &[
            ("csrf", &csrf),
            ("current", "not my password"),
            ("new", "a new and longer secret"),
            ("repeat", "a new and longer secret"),
        ],
    );
    assert_eq!(wrong.status, 400, "{}", wrong.body);
    assert!(
        wrong.body.contains("not your current password"),
        "{}",
        wrong.body
    );
    let differ = portal.post(
        "/portal/password",
        &[
            ("csrf", &csrf),
            ("current", "correct horse battery"),
            ("new", "a new and longer secret"),
            ("repeat", "a new and longer secreT"),
        ],
    );
    assert_eq!(differ.status, 400, "{}", differ.body);
    let changed = portal.post(
        "/portal/password",
        &[
            ("csrf", &csrf),
            ("current", "correct horse battery"),
            ("new", "a new and longer secret"),
            ("repeat", "a new and longer secret"),
        ],
    );
    assert_eq!(changed.status, 200, "{}", changed.body);
    assert!(
        changed.body.contains("Password changed"),
        "{}",
        changed.body
    );
    let after = portal.get("/portal/inventory");
    assert_eq!(after.status, 303, "the session ended: {}", after.body);
    let mut again = Portal::new(&server);
    assert_ne!(again.login("carol", "correct horse battery").status, 303);
    Portal::logged_in(&server, "carol", "a new and longer secret");
}

/// The landing page shows every virtual account the operator may see, with
/// compliance, instances by status and alerts, and finds instances across
/// them; a viewer of one sees only that one.
#[test]
fn the_overview_shows_every_reachable_virtual_account_and_searches_across_them() {
    let (server, token) = Server::cloud_with_lab("2");
    server.cli_ok(&["va", "create", "Edge"]);
    let router = register(&server, "FOCOVER001", &token);
    let (status, _) = router.client.post(&json!({
        "type": "ENTITLEMENT", "message_id": "e1",
        "entitlements": [{"tag": ESS, "count": 3}]
    }));
    assert_eq!(status, 200);
    let (mut portal, _) = admin(&server);
    let home = portal.get("/portal/");
    assert_eq!(home.status, 303, "{}", home.body);
    let overview = portal.get("/portal/overview");
    assert_eq!(overview.status, 200, "{}", overview.body);
    for expected in [
        "id=\"overview\"",
        ">Lab</a>",
        ">Edge</a>",
        "Out of Compliance",
        "ESS-AC-10G-RTU-1 short 1",
        "Out of compliance</span> 1",
    ] {
        assert!(
            overview.body.contains(expected),
            "{expected}: {}",
            overview.body
        );
    }
    let found = portal.get("/portal/overview?q=OVER001");
    assert!(found.body.contains("id=\"found\""), "{}", found.body);
    assert!(found.body.contains("FOCOVER001"), "{}", found.body);
    let none = portal.get("/portal/overview?status=INVALID");
    assert!(
        none.body.contains("No product instance matches"),
        "{}",
        none.body
    );
    let bad = portal.get("/portal/overview?status=NOPE");
    assert_eq!(bad.status, 400, "{}", bad.body);

    server.user("edgy", "viewer", &["Edge"], "correct horse battery");
    let (mut viewer, _) = Portal::logged_in(&server, "edgy", "correct horse battery");
    let theirs = viewer.get("/portal/overview");
    assert!(theirs.body.contains(">Edge</a>"), "{}", theirs.body);
    assert!(!theirs.body.contains(">Lab</a>"), "{}", theirs.body);
    let search = viewer.get("/portal/overview?q=OVER001");
    assert!(!search.body.contains("FOCOVER001"), "{}", search.body);
}

/// A deep link survives the login; a `next` that leads anywhere but a
/// portal page of this server is ignored.
#[test]
fn a_deep_link_leads_back_to_its_page_after_the_login() {
    let server = Server::start();
    let password = server.admin_password.clone().expect("password");
    let mut portal = Portal::new(&server);
    let asked = portal.get("/portal/reports?limit=5");
    assert_eq!(
        asked.location.as_deref(),
        Some("/portal/login?next=%2Fportal%2Freports%3Flimit%3D5")
    );
    let form = portal.get(asked.location.as_deref().expect("location"));
    assert!(
        form.body
            .contains("name=\"next\" value=\"/portal/reports?limit=5\""),
        "{}",
        form.body
    );
    let nonce = hidden(&form.body, "nonce");
    let answer = portal.send(
        "POST",
        "/portal/login",
        Some(&[
            ("username", "admin"),
            ("password", &password),
            ("nonce", &nonce),
            ("next", "/portal/reports?limit=5"),
        ]),
        &[],
    );
    assert_eq!(answer.status, 303, "{}", answer.body);
    assert_eq!(answer.location.as_deref(), Some("/portal/reports?limit=5"));
    for evil in [
        "//evil.example/",
        "https://evil.example/portal/",
        "/portal/..//evil",
    ] {
        let mut other = Portal::new(&server);
        let form = other.get(&format!(
            "/portal/login?{}",
            serde_urlencoded::to_string([("next", evil)]).expect("query")
        ));
        let nonce = hidden(&form.body, "nonce");
        let answer = other.send(
            "POST",
            "/portal/login",
            Some(&[
                ("username", "admin"),
                ("password", &password),
                ("nonce", &nonce),
                ("next", evil),
            ]),
            &[],
        );
        assert_eq!(
            answer.location.as_deref(),
            Some("/portal/overview"),
            "{evil}"
        );
    }
}

/// The text between `<code class="secret" id="new-secret">` and `</code>`.
fn new_secret(html: &str) -> String {
    html.split("id=\"new-secret\">")
        .nth(1)
        .and_then(|rest| rest.split('<').next())
        .unwrap_or_else(|| panic!("no secret in the notice: {html}"))
        .to_string()
}

/// Users, API clients and backups without the CLI, with the API's roles.
#[test]
fn an_admin_manages_users_clients_and_backups_in_the_portal() {
    let server = Server::start();
    let (mut portal, csrf) = admin(&server);
    let page = portal.get("/portal/admin");
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(
        page.body.contains("href=\"/portal/admin\""),
        "in the navigation"
    );

    // A user: a refusal names the field and adds nobody; then added.
    let refused = portal.post(
        "/portal/admin/users",
        &[
            ("csrf", &csrf),
            ("username", "bob"),
            ("role", "viewer"),
            ("virtual_accounts", ""),
            ("password", "a long enough password"),
        ],
    );
    assert_eq!(refused.status, 400, "{}", refused.body);
    assert!(refused.body.contains("virtual account"), "{}", refused.body);
    let added = portal.post(
        "/portal/admin/users",
        &[
            ("csrf", &csrf),
            ("username", "bob"),
            ("role", "viewer"),
            ("virtual_accounts", "Default"),
            ("password", "a long enough password"),
        ],
    );
    assert!(added.after_redirect, "{}", added.body);
    assert!(added.body.contains("User bob added"), "{}", added.body);
    let users: Value =
        serde_json::from_str(&server.cli_ok(&["user", "list", "--json"])).expect("json");
    assert!(users.to_string().contains("\"bob\""), "{users}");
    let events = server.cli_ok(&["events", "--json"]);
    assert!(
        events.contains("user:admin"),
        "the change is the admin's: {events}"
    );

    // Its password, set by the admin: bob logs in with the new one.
    let set = portal.post(
        "/portal/admin/users/password",
        &[
            ("csrf", &csrf),
            ("username", "bob"),
            ("password", "another long password"),
        ],
    );
    assert!(set.after_redirect, "{}", set.body);
    let mut as_bob = Portal::new(&server);
    assert_eq!(as_bob.login("bob", "another long password").status, 303);
    // A viewer sees no Administration and may not use it.
    let overview = as_bob.get("/portal/overview");
    assert!(
        !overview.body.contains("href=\"/portal/admin\""),
        "{}",
        overview.body
    );
    assert_eq!(as_bob.get("/portal/admin").status, 403);
    let bob_csrf = hidden(&overview.body, "csrf");
    let sneaky = as_bob.post(
        "/portal/admin/clients",
        &[("csrf", &bob_csrf), ("name", "sneaky"), ("role", "admin")],
    );
    assert_eq!(sneaky.status, 403, "{}", sneaky.body);
    assert_eq!(
        as_bob
            .send(
                "POST",
                "/portal/admin/backup",
                Some(&[("csrf", &bob_csrf)]),
                &[]
            )
            .status,
        403
    );

    // Removing asks for the box first.
    let unconfirmed = portal.post(
        "/portal/admin/users/remove",
        &[("csrf", &csrf), ("username", "bob")],
    );
    assert_eq!(unconfirmed.status, 400, "{}", unconfirmed.body);
    assert!(server
        .cli_ok(&["user", "list", "--json"])
        .contains("\"bob\""));
    let removed = portal.post(
        "/portal/admin/users/remove",
        &[("csrf", &csrf), ("username", "bob"), ("confirm", "yes")],
    );
    assert!(
        removed.body.contains("User bob removed"),
        "{}",
        removed.body
    );
    assert!(!server
        .cli_ok(&["user", "list", "--json"])
        .contains("\"bob\""));

    // A role that does not exist adds nobody.
    let bad_role = portal.post(
        "/portal/admin/clients",
        &[("csrf", &csrf), ("name", "root"), ("role", "root")],
    );
    assert_eq!(bad_role.status, 400, "{}", bad_role.body);
    assert!(!server
        .cli_ok(&["client", "list", "--json"])
        .contains("\"root\""));

    // An API client: its secret is shown once and works; revoked, it does not.
    let added = portal.post(
        "/portal/admin/clients",
        &[
            ("csrf", &csrf),
            ("name", "nagios"),
            ("role", "viewer"),
            ("virtual_accounts", "Default"),
        ],
    );
    assert!(added.after_redirect, "{}", added.body);
    let secret = new_secret(&added.body);
    let clients: Value =
        serde_json::from_str(&server.cli_ok(&["client", "list", "--json"])).expect("json");
    let client_id = clients
        .as_array()
        .and_then(|a| a.iter().find(|c| c["name"] == "nagios"))
        .and_then(|c| c["client_id"].as_str())
        .expect("nagios listed")
        .to_string();
    let api = crate::api::Api::new(&server);
    let bearer = api.login(&client_id, &secret);
    assert_eq!(
        api.call(
            "GET",
            "/api/v1/accounts/Test%20Corp/events",
            Some(&bearer),
            None
        )
        .0,
        200
    );
    let page = portal.get("/portal/admin");
    assert!(!page.body.contains(&secret), "shown once");
    assert!(
        page.body.contains("Revoke API client nagios"),
        "{}",
        page.body
    );
    // One's own password is not set here, without the current one.
    let own = portal.post(
        "/portal/admin/users/password",
        &[
            ("csrf", &csrf),
            ("username", "admin"),
            ("password", "a new long password"),
        ],
    );
    assert_eq!(own.status, 400, "{}", own.body);
    assert!(own.body.contains("Password page"), "{}", own.body);
    let revoked = portal.post(
        "/portal/admin/clients/revoke",
        &[("csrf", &csrf), ("client", &client_id), ("confirm", "yes")],
    );
    assert!(
        revoked.body.contains("API client nagios revoked"),
        "{}",
        revoked.body
    );
    assert_eq!(
        api.call(
            "GET",
            "/api/v1/accounts/Test%20Corp/events",
            Some(&bearer),
            None
        )
        .0,
        401
    );

    // A backup, as `satellite backup` writes it.
    let (status, bytes) = {
        let answer = portal.send(
            "POST",
            "/portal/admin/backup",
            Some(&[("csrf", &csrf)]),
            &[],
        );
        (answer.status, answer.body)
    };
    assert_eq!(status, 200);
    assert!(bytes.starts_with("PK"), "a zip");
}

/// The cloud's jobs without the CLI: licenses bought, satellites added and revoked.
#[test]
fn an_admin_adds_licenses_and_satellites_at_the_cloud_in_the_portal() {
    let cloud = cloud();
    let (mut portal, csrf) = admin(&cloud);
    let tab = portal.get("/portal/inventory/licenses?va=Lab2");
    assert!(tab.body.contains("id=\"add-license\""), "{}", tab.body);
    let bad = portal.post(
        "/portal/inventory/licenses/add",
        &[
            ("csrf", &csrf),
            ("va", "Lab2"),
            ("sku", ESS),
            ("quantity", "3"),
            ("start", "tomorrow"),
        ],
    );
    assert_eq!(bad.status, 400, "{}", bad.body);
    assert!(bad.body.contains("YYYY-MM-DD"), "{}", bad.body);
    let added = portal.post(
        "/portal/inventory/licenses/add",
        &[
            ("csrf", &csrf),
            ("va", "Lab2"),
            ("sku", ESS),
            ("quantity", "3"),
            ("start", ""),
            ("end", ""),
        ],
    );
    assert!(added.after_redirect, "{}", added.body);
    assert_eq!(cloud.compliance("Lab2", ESS)["available"], 3);

    let page = portal.get("/portal/sync");
    assert!(page.body.contains("id=\"add-satellite\""), "{}", page.body);
    let bad_days = portal.post(
        "/portal/sync/satellites",
        &[
            ("csrf", &csrf),
            ("name", "site-web"),
            ("virtual_accounts", "Lab2"),
            ("days", "many"),
        ],
    );
    assert_eq!(bad_days.status, 400, "{}", bad_days.body);
    assert!(
        bad_days.body.contains("not a whole number"),
        "{}",
        bad_days.body
    );
    assert!(!cloud
        .cli_ok(&["satellite", "list", "--json"])
        .contains("site-web"));
    let added = portal.post(
        "/portal/sync/satellites",
        &[
            ("csrf", &csrf),
            ("name", "site-web"),
            ("virtual_accounts", "Lab2"),
            ("days", "30"),
        ],
    );
    assert!(added.after_redirect, "{}", added.body);
    let token = new_secret(&added.body);
    // The token registers a real satellite.
    let sat = Server::start();
    let request = sat.cli_ok(&["upstream", "register", "--token", &token]);
    assert!(request.trim().ends_with(".zip"), "{request}");
    let listed = cloud.cli_ok(&["satellite", "list", "--json"]);
    assert!(listed.contains("site-web"), "{listed}");

    let unconfirmed = portal.post(
        "/portal/sync/satellites/revoke",
        &[("csrf", &csrf), ("name", "site-web")],
    );
    assert_eq!(unconfirmed.status, 400, "{}", unconfirmed.body);
    let revoked = portal.post(
        "/portal/sync/satellites/revoke",
        &[("csrf", &csrf), ("name", "site-web"), ("confirm", "yes")],
    );
    assert!(
        revoked.body.contains("Satellite site-web revoked"),
        "{}",
        revoked.body
    );
    assert!(cloud
        .cli_ok(&["satellite", "list", "--json"])
        .contains("REVOKED"));
    // A refusal shows no pointer to a CLI listing.
    let unknown = portal.post(
        "/portal/sync/satellites/revoke",
        &[("csrf", &csrf), ("name", "nowhere"), ("confirm", "yes")],
    );
    assert_eq!(unknown.status, 404, "{}", unknown.body);
    assert!(
        !unknown.body.contains("satellite satellite list"),
        "{}",
        unknown.body
    );
}
