//! The web portal on the admin listener: the operator's browser view of the
//! satellite (DESIGN §9), server-rendered HTML with every asset embedded
//! (an air-gapped LAN fetches nothing from outside) and no script at all.
//! Pages are thin faces over the operations layer, with the same roles,
//! virtual-account scopes and login limiter as the REST API.

mod account;
mod admin;
mod alerts;
mod chart;
mod error;
mod flash;
mod inventory;
mod layout;
mod operator;
mod overview;
mod reports;
mod session;
mod sync;

pub use error::PortalError;
pub use flash::Flash;

use actix_web::http::{header, StatusCode};
use actix_web::middleware::DefaultHeaders;
use actix_web::{web, HttpResponse};

pub const LOGIN_PATH: &str = "/portal/login";
pub const HOME_PATH: &str = "/portal/overview";
const STYLESHEET_PATH: &str = "/portal/assets/portal.css";
const STYLESHEET: &str = include_str!("assets/portal.css");
const ICON_PATH: &str = "/portal/assets/favicon.svg";
const ICON: &str = include_str!("assets/favicon.svg");

/// Nothing runs but what the satellite serves: no script at all, styles
/// from the one stylesheet, forms only to the portal, never in a frame.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; style-src 'self'; img-src 'self'; \
     form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// Forms are small; a bundle upload is read by its own bounded reader.
const FORM_LIMIT: usize = 16 * 1024;

fn headers() -> DefaultHeaders {
    DefaultHeaders::new()
        .add((header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY))
        .add((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .add((header::X_FRAME_OPTIONS, "DENY"))
        // `no-referrer` would make browsers send `Origin: null` with forms.
        .add((header::REFERRER_POLICY, "same-origin"))
        .add((header::CACHE_CONTROL, "no-store"))
        .add((header::STRICT_TRANSPORT_SECURITY, "max-age=31536000"))
}

async fn stylesheet() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/css; charset=utf-8")
        .insert_header((header::CACHE_CONTROL, "max-age=3600"))
        .body(STYLESHEET)
}

async fn icon() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("image/svg+xml")
        .insert_header((header::CACHE_CONTROL, "max-age=86400"))
        .body(ICON)
}

async fn home() -> HttpResponse {
    HttpResponse::SeeOther()
        .insert_header((header::LOCATION, HOME_PATH))
        .finish()
}

/// A request the extractors could not read, answered as a page.
fn unreadable(status: StatusCode, message: String) -> actix_web::Error {
    tracing::info!(reason = %message, "portal request refused");
    let page = layout::bare(status, "Refused", &message);
    actix_web::error::InternalError::from_response(message, page).into()
}

fn bad_form(e: actix_web::error::UrlencodedError, _: &actix_web::HttpRequest) -> actix_web::Error {
    let status = match e {
        actix_web::error::UrlencodedError::Overflow { .. } => StatusCode::PAYLOAD_TOO_LARGE,
        _ => StatusCode::BAD_REQUEST,
    };
    unreadable(status, format!("the form could not be read: {e}"))
}

/// A form's address opened as a page (from the history, say): the page
/// the form belongs to, not a "no such page".
fn back_to(page: &'static str) -> actix_web::Route {
    web::get().to(move || async move {
        HttpResponse::SeeOther()
            .insert_header((header::LOCATION, page))
            .finish()
    })
}

/// Mounts the portal on an admin `App` (which holds the API's `Api` data).
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/", web::get().to(home)).service(
        web::scope("/portal")
            .wrap(headers())
            .app_data(
                web::FormConfig::default()
                    .limit(FORM_LIMIT)
                    .error_handler(bad_form),
            )
            .app_data(web::QueryConfig::default().error_handler(|e, _| {
                unreadable(
                    StatusCode::BAD_REQUEST,
                    format!("the address could not be read: {e}"),
                )
            }))
            .app_data(web::PathConfig::default().error_handler(|e, _| {
                unreadable(StatusCode::NOT_FOUND, format!("there is no such page: {e}"))
            }))
            .route("", web::get().to(home))
            .route("/", web::get().to(home))
            .route("/assets/portal.css", web::get().to(stylesheet))
            .route("/assets/favicon.svg", web::get().to(icon))
            .route("/login", web::get().to(session::login_form))
            .route("/login", web::post().to(session::login))
            .route("/logout", web::post().to(session::logout))
            .route("/logout", back_to(HOME_PATH))
            .configure(inventory::routes)
            .route("/reports", web::get().to(reports::list))
            .route("/reports/generate", web::post().to(reports::generate))
            .route("/reports/{id}", web::get().to(reports::show))
            .route("/reports/{id}/csv", web::get().to(reports::csv))
            .route("/sync", web::get().to(sync::page))
            .route("/sync/export", web::post().to(sync::export))
            .route("/sync/export", back_to("/portal/sync"))
            .route("/sync/import", web::post().to(sync::import))
            .route("/sync/import", back_to("/portal/sync"))
            .route("/sync/now", web::post().to(sync::now))
            .route("/sync/now", back_to("/portal/sync"))
            .route("/sync/process", web::post().to(sync::process))
            .route("/sync/process", back_to("/portal/sync"))
            .route("/sync/files/{name}", web::get().to(sync::file))
            .route("/sync/satellites", web::post().to(sync::add_satellite))
            .route("/sync/satellites", back_to("/portal/sync"))
            .route(
                "/sync/satellites/revoke",
                web::post().to(sync::revoke_satellite),
            )
            .route("/sync/satellites/revoke", back_to("/portal/sync"))
            .route("/overview", web::get().to(overview::page))
            .route("/alerts", web::get().to(alerts::page))
            .route("/password", web::get().to(account::page))
            .route("/password", web::post().to(account::change))
            .configure(admin::routes)
            .default_service(web::to(|| async {
                layout::bare(
                    StatusCode::NOT_FOUND,
                    "Not found",
                    "There is no such page in the portal.",
                )
            })),
    );
}
