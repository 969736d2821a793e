//! Portal sessions. A user's password becomes a session cookie
//! (`Secure; HttpOnly; SameSite=Strict`, expiring with the session), every
//! page takes an `Operator`, and every form carries a CSRF token derived
//! from the session secret. Logins share the API's rate limiter, so the
//! portal is no side door for password guessing.

use super::error::PortalError;
use super::flash::Flash;
use super::layout::{self, Notice};
pub use super::operator::Operator;
use crate::ops::Service;
use crate::ops::{login, OpsError};
use actix_web::cookie::{time::Duration, Cookie, SameSite};
use actix_web::dev::Payload;
use actix_web::http::{Method, StatusCode};
use actix_web::{web, FromRequest, HttpRequest, HttpResponse};
use serde::Deserialize;
use std::future::Future;
use std::pin::Pin;

/// The session cookie.
pub const COOKIE: &str = "satellite_session";
/// A nonce for the login form alone (there is no session to bind it to yet).
const LOGIN_COOKIE: &str = "satellite_login";

fn csrf_of(secret: &str) -> String {
    let mut hasher = crate::pki::Sha256::new();
    hasher.update(b"portal-csrf:");
    hasher.update(secret.as_bytes());
    hex::encode(hasher.finish())
}

fn same(a: &str, b: &str) -> bool {
    crate::pki::same_secret(a.as_bytes(), b.as_bytes())
}

impl Operator {
    /// Refuses a form that does not carry this session's CSRF token.
    pub fn check_csrf(&self, presented: &str) -> Result<(), PortalError> {
        if same(presented, &self.csrf) {
            Ok(())
        } else {
            Err(PortalError::Refused(
                "the form was not sent from this session (missing or stale CSRF token); reload the page and try again".into(),
            ))
        }
    }

    /// After a form that succeeded: to the page it changed, which shows
    /// `notice` once (post/redirect/get: a reload repeats nothing).
    pub fn redirect(&self, location: &str, notice: Notice) -> HttpResponse {
        self.flash.put(&self.csrf, notice, self.now);
        HttpResponse::SeeOther()
            .insert_header((actix_web::http::header::LOCATION, location))
            .finish()
    }

    /// The notice a redirected form left for this page, if any.
    pub fn take_notice(&self) -> Option<Notice> {
        self.flash.take(&self.csrf, self.now)
    }
}

/// A request that changes something must come from this site: browsers
/// say where a request comes from, and one from elsewhere is refused even
/// before its CSRF token is looked at.
fn from_this_site(req: &HttpRequest) -> Result<(), PortalError> {
    if matches!(*req.method(), Method::GET | Method::HEAD) {
        return Ok(());
    }
    let header = |name: &str| req.headers().get(name).and_then(|v| v.to_str().ok());
    if header("Sec-Fetch-Site").is_some_and(|site| site == "cross-site" || site == "same-site") {
        return Err(PortalError::Refused(
            "a request from another site was refused".into(),
        ));
    }
    if let Some(origin) = header("Origin") {
        // The admin listener speaks only TLS, whatever a proxy header says.
        let expected = format!("https://{}", req.connection_info().host());
        if origin != expected {
            return Err(PortalError::Refused(format!(
                "a request from {origin:?} was refused: the portal only takes forms from its own pages"
            )));
        }
    }
    Ok(())
}

impl FromRequest for Operator {
    type Error = PortalError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, PortalError>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let service = req.app_data::<web::Data<Service>>().cloned();
        let flash = req.app_data::<web::Data<Flash>>().cloned();
        let secret = req
            .cookie(COOKIE)
            .map(|c| c.value().to_string())
            .filter(|s| !s.is_empty() && s.len() <= 128);
        let site = from_this_site(req);
        // A page asked for by address comes back after the login.
        let next = (req.method() == Method::GET)
            .then(|| req.uri().path_and_query().map(|p| p.as_str().to_string()))
            .flatten()
            .filter(|p| safe_next(p));
        Box::pin(async move {
            site?;
            let (Some(service), Some(secret)) = (service, secret) else {
                return Err(match next {
                    Some(next) => PortalError::LoginFirst(next),
                    None => PortalError::LoggedOut,
                });
            };
            let flash =
                flash.ok_or_else(|| PortalError::Refused("the portal is not configured".into()))?;
            let now = service.now();
            let lookup = secret.clone();
            let caller = service
                .read(move |c| login::session_caller(c, &lookup, now))
                .await
                .map_err(|e| match e {
                    OpsError::Unauthenticated(_) => PortalError::LoggedOut,
                    other => PortalError::Ops(other),
                })?;
            Ok(Operator {
                caller,
                csrf: csrf_of(&secret),
                secret,
                flash,
                now,
                node: super::operator::Node::of(service.config()),
            })
        })
    }
}

fn session_cookie(value: &str, lifetime: Duration) -> Cookie<'static> {
    Cookie::build(COOKIE, value.to_string())
        .path("/")
        .secure(true)
        .http_only(true)
        .same_site(SameSite::Strict)
        .max_age(lifetime)
        .finish()
}

fn login_cookie(value: &str, lifetime: Duration) -> Cookie<'static> {
    Cookie::build(LOGIN_COOKIE, value.to_string())
        .path(super::LOGIN_PATH)
        .secure(true)
        .http_only(true)
        .same_site(SameSite::Strict)
        .max_age(lifetime)
        .finish()
}

fn nonce() -> Result<String, PortalError> {
    let mut bytes = [0u8; 16];
    crate::pki::fill_random(&mut bytes).map_err(crate::error::Error::from)?;
    Ok(hex::encode(bytes))
}

/// Where a login may lead: a portal page of this server, nothing else (no
/// other host, no scheme, not the login itself).
fn safe_next(path: &str) -> bool {
    path.starts_with("/portal/")
        && !path.starts_with(super::LOGIN_PATH)
        && !path.contains("//")
        && !path.contains('\\')
        && path.len() <= 512
}

fn login_page(
    status: StatusCode,
    message: Option<&str>,
    next: Option<&str>,
) -> Result<HttpResponse, PortalError> {
    let nonce = nonce()?;
    let next = next.filter(|n| safe_next(n));
    let mut response = layout::html(status, layout::login(&nonce, message, next));
    response
        .add_cookie(&login_cookie(&nonce, Duration::minutes(30)))
        .map_err(|e| PortalError::Refused(e.to_string()))?;
    Ok(response)
}

#[derive(Debug, Default, Deserialize)]
pub struct Next {
    #[serde(default)]
    next: Option<String>,
}

pub async fn login_form(next: web::Query<Next>) -> Result<HttpResponse, PortalError> {
    login_page(StatusCode::OK, None, next.next.as_deref())
}

#[derive(Debug, Deserialize)]
pub struct LoginForm {
    #[serde(default)]
    username: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    nonce: String,
    /// The page to go back to after the login.
    #[serde(default)]
    next: Option<String>,
}

pub async fn login(
    service: web::Data<Service>,
    req: HttpRequest,
    form: web::Form<LoginForm>,
) -> Result<HttpResponse, PortalError> {
    from_this_site(&req)?;
    let form = form.into_inner();
    let expected = req.cookie(LOGIN_COOKIE).map(|c| c.value().to_string());
    if !expected.is_some_and(|n| same(&n, &form.nonce)) {
        return login_page(
            StatusCode::FORBIDDEN,
            Some("The login form expired or did not come from this page. Try again."),
            form.next.as_deref(),
        );
    }
    if form.username.is_empty() || form.password.is_empty() {
        return login_page(
            StatusCode::BAD_REQUEST,
            Some("Give a user name and a password."),
            form.next.as_deref(),
        );
    }
    if form.username.len() > 256 || form.password.len() > 1024 {
        return login_page(
            StatusCode::BAD_REQUEST,
            Some("The user name or password is too long."),
            form.next.as_deref(),
        );
    }
    let source = req
        .peer_addr()
        .map(|a| a.ip().to_string())
        .unwrap_or_else(|| "unknown".into());
    let now = service.now();
    if let Err(e) = service.limiter.attempt(&source, &form.username, now) {
        super::error::log(&e);
        let mut response = login_page(
            StatusCode::TOO_MANY_REQUESTS,
            Some(&e.to_string()),
            form.next.as_deref(),
        )?;
        if let OpsError::TooManyAttempts { retry_after, .. } = e {
            if let Ok(value) = retry_after.to_string().parse() {
                response
                    .headers_mut()
                    .insert(actix_web::http::header::RETRY_AFTER, value);
            }
        }
        return Ok(response);
    }
    let username = form.username.clone();
    let next = form
        .next
        .clone()
        .filter(|n| safe_next(n))
        .unwrap_or_else(|| super::HOME_PATH.to_string());
    let checked = service
        .read(move |c| login::check_password(c, &form.username, &form.password))
        .await;
    let verified = match checked {
        Ok(v) => v,
        Err(OpsError::Unauthenticated(_)) => {
            tracing::warn!(source = %source, user = %username, "failed portal login");
            return login_page(
                StatusCode::UNAUTHORIZED,
                Some("The user name or password is not right."),
                Some(&next),
            );
        }
        Err(e) => return Err(e.into()),
    };
    service.limiter.succeeded(&source, &username);
    tracing::info!(source = %source, who = %verified.name, "portal login");
    let secret = service
        .record(move |c| login::open_session(c, &verified, now))
        .await?;
    let mut response = HttpResponse::SeeOther()
        .insert_header(("Location", next))
        .finish();
    let cookies = [
        session_cookie(&secret, Duration::seconds(login::SESSION_SECONDS)),
        login_cookie("", Duration::ZERO),
    ];
    for cookie in &cookies {
        response
            .add_cookie(cookie)
            .map_err(|e| PortalError::Refused(e.to_string()))?;
    }
    Ok(response)
}

#[derive(Debug, Deserialize)]
pub struct CsrfForm {
    #[serde(default)]
    pub csrf: String,
}

pub async fn logout(
    service: web::Data<Service>,
    operator: Operator,
    form: web::Form<CsrfForm>,
) -> Result<HttpResponse, PortalError> {
    operator.check_csrf(&form.csrf)?;
    let secret = operator.secret.clone();
    service
        .record(move |c| login::close_session(c, &secret))
        .await?;
    tracing::info!(who = %operator.caller.name, "portal logout");
    let mut response = HttpResponse::SeeOther()
        .insert_header(("Location", super::LOGIN_PATH))
        .finish();
    response
        .add_cookie(&session_cookie("", Duration::ZERO))
        .map_err(|e| PortalError::Refused(e.to_string()))?;
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csrf_tokens_belong_to_their_session() {
        assert_eq!(csrf_of("a"), csrf_of("a"));
        assert_ne!(csrf_of("a"), csrf_of("b"));
        assert_eq!(csrf_of("a").len(), 64);
        assert!(same("x", "x") && !same("x", "y") && !same("x", "xx"));
    }

    #[test]
    fn cookies_are_secure_http_only_and_strict() {
        let text = session_cookie("s", Duration::seconds(60)).to_string();
        for flag in [
            "Secure",
            "HttpOnly",
            "SameSite=Strict",
            "Max-Age=60",
            "Path=/",
        ] {
            assert!(text.contains(flag), "{text} lacks {flag}");
        }
    }
}
