//! `/api/v1/openapi.json`: the OpenAPI 3.1 document, generated from the
//! handlers' own annotations and request and response types (utoipa). A
//! test checks that it lists exactly the routes the server serves.

use super::{accounts, admin, inventory, oauth, sync};
use actix_web::HttpResponse;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

struct BearerScheme;

impl Modify for BearerScheme {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Satellite REST API",
        description = "The operators' API of the Smart Licensing satellite, in the paths and shapes \
            of Cisco's on-prem manager. Get a bearer token at /backend/oauth/token (client \
            credentials, or a user's password), then call the rest with `Authorization: Bearer`."
    ),
    paths(
        document,
        oauth::token,
        accounts::licenses,
        accounts::alerts,
        accounts::token_list,
        accounts::token_create,
        accounts::token_revoke,
        accounts::backend_token_list,
        accounts::backend_token_create,
        accounts::backend_token_revoke,
        accounts::transfer,
        accounts::serve,
        inventory::instance_list,
        inventory::instance_show,
        inventory::instance_remove,
        inventory::instance_move,
        inventory::report_list,
        inventory::report_show,
        inventory::event_list,
        sync::export,
        sync::import,
        sync::status,
        sync::now,
        sync::backup,
        admin::user_list,
        admin::user_add,
        admin::user_remove,
        admin::user_password,
        admin::client_list,
        admin::client_add,
        admin::client_revoke,
    ),
    modifiers(&BearerScheme)
)]
pub struct Document;

/// The document itself (no credentials needed: it holds no data).
#[utoipa::path(
    get,
    path = "/api/v1/openapi.json",
    tag = "meta",
    responses((status = 200, description = "This OpenAPI 3.1 document", body = serde_json::Value))
)]
pub async fn document() -> HttpResponse {
    HttpResponse::Ok().json(Document::openapi())
}
