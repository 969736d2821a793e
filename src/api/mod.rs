//! The operators' REST API on the admin listener, in the paths and shapes
//! of Cisco's on-prem manager (DESIGN §9). Handlers are thin: they parse,
//! authenticate (`auth`), call the operations layer (`crate::ops`) off the
//! async workers, and shape the answer.

mod accounts;
mod admin;
mod auth;
mod body;
mod error;
mod inventory;
mod oauth;
mod openapi;
mod paging;
mod sync;
mod wire;

pub use body::MAX_BODY;
pub use error::ApiError;
pub use openapi::document as openapi_document;

use actix_web::web;

/// What the API handlers reach: the operations, shared with the portal.
pub type Api = crate::ops::Service;

/// Declares the routes once: `configure` mounts them and `ROUTES` lists
/// them for the OpenAPI document and its completeness test.
macro_rules! routes {
    ($(($method:ident, $path:literal, $handler:path)),* $(,)?) => {
        /// Every API route as (method, path).
        pub const ROUTES: &[(&str, &str)] = &[$((stringify!($method), $path)),*];

        /// Mounts the API on an admin `App`. A known path asked with a
        /// method it does not serve answers 405 with `Allow`, not 404.
        pub fn configure(cfg: &mut web::ServiceConfig) {
            $(cfg.route($path, routes!(@method $method).to($handler));)*
            let mut seen = std::collections::BTreeSet::new();
            for (_, path) in ROUTES {
                if seen.insert(*path) {
                    let allowed = ROUTES
                        .iter()
                        .filter(|(_, p)| p == path)
                        .map(|(m, _)| *m)
                        .collect::<Vec<_>>()
                        .join(", ");
                    cfg.route(path, web::route().to(move |req: actix_web::HttpRequest| {
                        let allowed = allowed.clone();
                        async move { error::method_not_allowed(&req, &allowed) }
                    }));
                }
            }
        }
    };
    (@method GET) => { web::get() };
    (@method POST) => { web::post() };
    (@method PUT) => { web::put() };
    (@method DELETE) => { web::delete() };
}

routes! {
    (GET, "/api/v1/openapi.json", openapi::document),
    (POST, "/backend/oauth/token", oauth::token),
    (POST, "/api/v1/accounts/{account}/licenses", accounts::licenses),
    (POST, "/api/v1/accounts/{account}/alerts", accounts::alerts),
    (GET, "/api/v1/accounts/{account}/virtual-accounts/{va}/tokens", accounts::token_list),
    (POST, "/api/v1/accounts/{account}/virtual-accounts/{va}/tokens", accounts::token_create),
    (DELETE, "/api/v1/accounts/{account}/virtual-accounts/{va}/tokens/{token}", accounts::token_revoke),
    (GET, "/backend/api/v1/accounts/{account}/virtual-accounts/{va}/tokens", accounts::backend_token_list),
    (POST, "/backend/api/v1/accounts/{account}/virtual-accounts/{va}/tokens", accounts::backend_token_create),
    (DELETE, "/backend/api/v1/accounts/{account}/virtual-accounts/{va}/tokens/{token}", accounts::backend_token_revoke),
    (POST, "/api/v1/accounts/{account}/virtual-accounts/{va}/licenses/transfer", accounts::transfer),
    (POST, "/api/v1/accounts/{account}/virtual-accounts/{va}/serve", accounts::serve),
    (GET, "/api/v1/accounts/{account}/product-instances", inventory::instance_list),
    (GET, "/api/v1/accounts/{account}/product-instances/{instance}", inventory::instance_show),
    (DELETE, "/api/v1/accounts/{account}/product-instances/{instance}", inventory::instance_remove),
    (POST, "/api/v1/accounts/{account}/product-instances/{instance}/move", inventory::instance_move),
    (GET, "/api/v1/accounts/{account}/reports", inventory::report_list),
    (GET, "/api/v1/accounts/{account}/reports/{id}", inventory::report_show),
    (GET, "/api/v1/accounts/{account}/events", inventory::event_list),
    (POST, "/api/v1/sync/export", sync::export),
    (POST, "/api/v1/sync/import", sync::import),
    (GET, "/api/v1/sync/status", sync::status),
    (POST, "/api/v1/sync/now", sync::now),
    (POST, "/api/v1/backup", sync::backup),
    (GET, "/api/v1/users", admin::user_list),
    (POST, "/api/v1/users", admin::user_add),
    (DELETE, "/api/v1/users/{username}", admin::user_remove),
    (PUT, "/api/v1/users/{username}/password", admin::user_password),
    (GET, "/api/v1/clients", admin::client_list),
    (POST, "/api/v1/clients", admin::client_add),
    (DELETE, "/api/v1/clients/{client}", admin::client_revoke),
}
