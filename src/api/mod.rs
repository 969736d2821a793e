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
mod sync;

pub use body::MAX_BODY;
pub use error::ApiError;
pub use openapi::document as openapi_document;

use crate::clock::Clock;
use crate::config::Config;
use crate::licensing::catalog::SharedCatalog;
use crate::licensing::pool::Transition;
use crate::licensing::Notifier;
use crate::ops::{login::Limiter, Caller, OpsError};
use crate::store::Db;
use crate::store::Store;
use actix_web::web;
use std::sync::Arc;

/// What the API handlers reach.
pub struct Api {
    pub store: Store,
    pub catalog: Arc<SharedCatalog>,
    pub clock: Clock,
    pub config: Arc<Config>,
    pub notifier: Arc<Notifier>,
    pub limiter: Limiter,
}

impl Api {
    pub fn now(&self) -> i64 {
        self.clock.unix()
    }

    /// A read on a blocking thread: a large listing never stalls the
    /// async workers that serve other calls.
    pub async fn read<T, F>(&self, f: F) -> Result<T, ApiError>
    where
        F: FnOnce(&Db) -> Result<T, OpsError> + Send + 'static,
        T: Send + 'static,
    {
        let store = self.store.clone();
        web::block(move || store.read(f))
            .await
            .map_err(|_| ApiError::from(crate::store::StoreError::WorkPanicked))?
            .map_err(ApiError::from)
    }

    /// A change in one transaction on the writer (group commit).
    pub async fn write<T, F>(&self, f: F) -> Result<T, ApiError>
    where
        F: FnOnce(&Db) -> Result<T, OpsError> + Send + 'static,
        T: Send + 'static,
    {
        self.store.write(f).await.map_err(ApiError::from)
    }

    /// Writes a usage export as `satellite export` does. Sealed from a read
    /// snapshot on a blocking thread; the writer (and the routers waiting
    /// on it) is held only to record the bundle.
    pub async fn export(&self, caller: Caller) -> Result<crate::sync::Written, ApiError> {
        let (config, now) = (self.config.clone(), self.now());
        let keys = {
            let (caller, config) = (caller.clone(), config.clone());
            web::block(move || crate::ops::sync::keys(&caller, &config, now))
                .await
                .map_err(|_| ApiError::from(crate::store::StoreError::WorkPanicked))??
        };
        let keys = Arc::new(keys);
        let prepared = {
            let (caller, config, keys) = (caller.clone(), config.clone(), keys.clone());
            self.read(move |c| crate::ops::sync::prepare_export(c, &caller, &config, &keys, now))
                .await?
        };
        self.write(move |c| {
            crate::ops::sync::finish_export(c, &caller, &config, &keys, prepared, now)
        })
        .await
    }

    /// Compliance changes made through the API reach the log, syslog and
    /// Call Home like those made by devices.
    pub fn notify(&self, transitions: &[Transition]) {
        self.notifier.compliance(transitions);
    }

    /// The smart account in a path must be this satellite's.
    pub fn check_account(&self, account: &str) -> Result<String, ApiError> {
        if account == self.config.account {
            Ok(account.to_string())
        } else {
            Err(crate::error::Error::NotFound(format!(
                "no smart account {account:?} here (this satellite serves {:?})",
                self.config.account
            ))
            .into())
        }
    }
}

/// Declares the routes once: `configure` mounts them and `ROUTES` lists
/// them for the OpenAPI document and its completeness test.
macro_rules! routes {
    ($(($method:ident, $path:literal, $handler:path)),* $(,)?) => {
        /// Every API route as (method, path).
        pub const ROUTES: &[(&str, &str)] = &[$((stringify!($method), $path)),*];

        /// Mounts the API on an admin `App`.
        pub fn configure(cfg: &mut web::ServiceConfig) {
            $(cfg.route($path, routes!(@method $method).to($handler));)*
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
