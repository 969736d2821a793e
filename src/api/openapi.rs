//! `/api/v1/openapi.json`: the OpenAPI 3.1 document, generated from the
//! handlers' own annotations and request and response types (utoipa). A
//! test checks that it lists exactly the routes the server serves.

use super::{accounts, admin, inventory, oauth, sync};
use actix_web::HttpResponse;
use serde_json::{json, Value};
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

/// Request fields whose values the handlers check beyond their Rust type:
/// (schema, property, what is accepted), built from the constants the
/// checks use. Merged into the generated schema, so the document states
/// what the server enforces; a test checks every entry still names a
/// property of the document.
fn field_rules() -> Vec<(&'static str, &'static str, Value)> {
    use crate::domain::token::{MAX_DAYS, MAX_DESCRIPTION, MIN_DAYS};
    let role = json!({"enum": ["admin", "va-admin", "viewer"]});
    let password = json!({"minLength": crate::ops::users::MIN_PASSWORD});
    let days = json!({"oneOf": [
        {"type": "integer", "minimum": MIN_DAYS, "maximum": MAX_DAYS},
        // The same days as text ("365"), as Cisco's clients send them.
        {"type": "string", "pattern": "^(36[0-5]|3[0-5][0-9]|[12][0-9]{2}|[1-9][0-9]?)$"},
        {"type": "null"}]});
    vec![
        ("AccountQuery", "limit", limit()),
        ("AccountQuery", "offset", offset()),
        ("NewUserRequest", "username", name()),
        ("NewUserRequest", "role", role.clone()),
        ("NewUserRequest", "password", password.clone()),
        ("NewClientRequest", "name", name()),
        ("NewClientRequest", "role", role),
        ("PasswordRequest", "password", password),
        (
            "NewToken",
            "maxUses",
            json!({"minimum": 1, "maximum": u32::MAX, "format": "int64"}),
        ),
        ("NewToken", "expiresAfterDays", days),
        (
            "NewToken",
            "description",
            json!({"maxLength": MAX_DESCRIPTION,
                   "pattern": "^[^\\x00-\\x1f\\x7f-\\x9f\\u202a-\\u202e\\u2066-\\u2069]*$"}),
        ),
        (
            "NewToken",
            "exportControlled",
            json!({"enum": ["Allowed", "Not Allowed", null]}),
        ),
        (
            "TransferRequest",
            "licenses",
            json!({"minItems": 1, "maxItems": accounts::MAX_TRANSFER_ITEMS}),
        ),
        (
            "TransferItem",
            "quantity",
            json!({"minimum": 1, "maximum": crate::inventory::MAX_LICENSE_QUANTITY}),
        ),
        (
            "TransferItem",
            "licenseType",
            json!({"enum": ["PERPETUAL", "TERM", null]}),
        ),
        (
            "TokenRequest",
            "grant_type",
            json!({"enum": ["client_credentials", "password", null]}),
        ),
    ]
}

/// Rules across a schema's fields, merged into the schema itself.
fn schema_rules() -> Vec<(&'static str, Value)> {
    // An admin reaches every virtual account and is given none; the other
    // roles are given at least one.
    let scope = json!({"oneOf": [
        {"properties": {"role": {"const": "admin"}, "virtualAccounts": {"maxItems": 0}}},
        {"properties": {"role": {"enum": ["va-admin", "viewer"]}, "virtualAccounts": {"minItems": 1}},
         "required": ["virtualAccounts"]}]});
    let credential = json!({"type": "string", "minLength": 1, "maxLength": oauth::MAX_CREDENTIAL});
    let grants = json!({
        "oneOf": [
            {"properties": {"grant_type": {"enum": ["client_credentials", null]},
                            "client_id": credential,
                            "client_secret": credential},
             "required": ["client_id", "client_secret"]},
            {"properties": {"grant_type": {"const": "password"},
                            "username": credential,
                            "password": credential},
             "required": ["grant_type", "username", "password"]}],
        "description": "Client credentials (or `Authorization: Basic` with them instead of the \
            two fields), or a user's name and password with grant_type password."});
    vec![
        ("NewUserRequest", scope.clone()),
        ("NewClientRequest", scope),
        ("TokenRequest", grants),
    ]
}

/// Query parameters checked beyond their type, wherever they appear.
fn parameter_rules() -> Vec<(&'static str, Value)> {
    let mut kinds: Vec<Value> = crate::inventory::EVENT_KINDS
        .iter()
        .map(|k| json!(k))
        .collect();
    kinds.push(Value::Null);
    vec![
        ("limit", limit()),
        ("offset", offset()),
        ("since", json!({"format": "date-time"})),
        ("until", json!({"format": "date-time"})),
        (
            "severity",
            json!({"enum": ["info", "minor", "major", null]}),
        ),
        ("kind", json!({"enum": kinds})),
        ("format", json!({"enum": ["json", "csv", "text", null]})),
    ]
}

/// `-1` is "all" (at most `MAX_PAGE`, with the next offset to go on).
fn limit() -> Value {
    let max = crate::ops::MAX_PAGE;
    json!({"anyOf": [{"const": -1}, {"minimum": 1, "maximum": max}, {"type": "null"}]})
}

fn offset() -> Value {
    json!({"minimum": 0, "maximum": u32::MAX})
}

/// `domain::check_name`: 1 to `MAX_NAME` characters, no `/` or control
/// character, no leading or trailing space.
fn name() -> Value {
    let inner = crate::domain::MAX_NAME - 2;
    let edge = "[^\\s/\\x00-\\x1f\\x7f-\\x9f]";
    let middle = "[^/\\x00-\\x1f\\x7f-\\x9f]";
    json!({"minLength": 1, "maxLength": crate::domain::MAX_NAME,
           "pattern": format!("^{edge}(?:{middle}{{0,{inner}}}{edge})?$")})
}

/// Operations whose body may be left out: every field has a default
/// (Cisco's clients post these with or without one).
const OPTIONAL_BODIES: &[&str] = &["licenses", "alerts", "token_create", "backend_token_create"];

/// Answers every operation of a kind can give, stated once here rather
/// than on each handler: how authentication, unknown accounts and bodies
/// are refused.
fn add_common_answers(path: &str, operation: &mut Value) {
    let error = |description: &str| json!({"description": description, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}}});
    let has_body = operation.get("requestBody").is_some();
    let secured = operation.get("security").is_some();
    let Some(responses) = operation
        .get_mut("responses")
        .and_then(Value::as_object_mut)
    else {
        return;
    };
    if secured {
        if path.starts_with("/backend/api/") {
            // Cisco's manager answers 403 to a missing or bad token there.
            responses.remove("401");
            responses.insert(
                "403".into(),
                error("No valid bearer token (403, as Cisco's manager answers), or the role or virtual accounts do not reach this"),
            );
        } else {
            responses
                .entry("401")
                .or_insert_with(|| error("No valid bearer token"));
        }
    }
    if path.contains("{account}") {
        responses.entry("404").or_insert_with(|| {
            error(
                "No such smart account or virtual account here, or an object it names is not found",
            )
        });
    }
    if has_body {
        responses.entry("413").or_insert_with(|| {
            error("The body is over its limit (64 KiB; a bundle upload, the bundle limit)")
        });
        responses
            .entry("415")
            .or_insert_with(|| error("The Content-Type is not one this operation reads"));
    }
}

/// Merges `rule` (a JSON object) into `schema`.
fn merge(schema: &mut Value, rule: &Value) {
    if let (Some(schema), Some(rule)) = (schema.as_object_mut(), rule.as_object()) {
        schema.extend(rule.clone());
    }
}

/// The generated document made exact: the rules above applied, and
/// binary bodies described as bytes rather than arrays of numbers.
fn exact(mut doc: Value) -> Value {
    for (schema, rule) in schema_rules() {
        if let Some(target) = doc.pointer_mut(&format!("/components/schemas/{schema}")) {
            merge(target, &rule);
        }
    }
    for (schema, property, rule) in field_rules() {
        if let Some(target) = doc.pointer_mut(&format!(
            "/components/schemas/{schema}/properties/{property}"
        )) {
            merge(target, &rule);
        }
    }
    let parameters = parameter_rules();
    let Some(paths) = doc.get_mut("paths").and_then(Value::as_object_mut) else {
        return doc;
    };
    for (path, item) in paths.iter_mut() {
        let Some(item) = item.as_object_mut() else {
            continue;
        };
        for operation in item.values_mut() {
            add_common_answers(path, operation);
            let id = operation
                .get("operationId")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string();
            if OPTIONAL_BODIES.contains(&id.as_str()) {
                if let Some(body) = operation.get_mut("requestBody") {
                    body["required"] = json!(false);
                }
            }
            for parameter in operation
                .get_mut("parameters")
                .and_then(Value::as_array_mut)
                .into_iter()
                .flatten()
            {
                let name = parameter
                    .get("name")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string();
                for (_, rule) in parameters.iter().filter(|(n, _)| *n == name) {
                    if let Some(schema) = parameter.get_mut("schema") {
                        merge(schema, rule);
                    }
                }
            }
            for body in ["requestBody", "responses"] {
                binary_as_bytes(operation.get_mut(body));
            }
        }
    }
    doc
}

/// `application/zip` content: a string of bytes, not an array of numbers.
fn binary_as_bytes(node: Option<&mut Value>) {
    match node {
        Some(Value::Object(map)) => {
            for (key, value) in map.iter_mut() {
                if key == "application/zip" {
                    value["schema"] =
                        json!({"type": "string", "contentMediaType": "application/zip"});
                } else {
                    binary_as_bytes(Some(value));
                }
            }
        }
        Some(Value::Array(items)) => items.iter_mut().for_each(|v| binary_as_bytes(Some(v))),
        _ => {}
    }
}

/// The document as served (built once).
pub fn served() -> &'static Value {
    static DOCUMENT: std::sync::OnceLock<Value> = std::sync::OnceLock::new();
    DOCUMENT.get_or_init(|| exact(serde_json::to_value(Document::openapi()).unwrap_or_default()))
}

/// The document itself (no credentials needed: it holds no data).
#[utoipa::path(
    get,
    path = "/api/v1/openapi.json",
    tag = "meta",
    responses((status = 200, description = "This OpenAPI 3.1 document", body = serde_json::Value))
)]
pub async fn document() -> HttpResponse {
    HttpResponse::Ok().json(served())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_rule_names_something_in_the_document() {
        let generated = serde_json::to_value(Document::openapi()).expect("document");
        for (schema, property, _) in field_rules() {
            assert!(
                generated
                    .pointer(&format!(
                        "/components/schemas/{schema}/properties/{property}"
                    ))
                    .is_some(),
                "{schema}.{property} is not in the document"
            );
        }
        for (schema, _) in schema_rules() {
            assert!(
                generated
                    .pointer(&format!("/components/schemas/{schema}"))
                    .is_some(),
                "no schema {schema}"
            );
        }
        for (_, _, rule) in field_rules() {
            assert!(rule.is_object(), "{rule}");
        }
        let text = generated.to_string();
        for (name, _) in parameter_rules() {
            assert!(
                text.contains(&format!("\"name\":\"{name}\"")),
                "no parameter {name}"
            );
        }
        for id in OPTIONAL_BODIES {
            assert!(
                text.contains(&format!("\"operationId\":\"{id}\"")),
                "no operation {id}"
            );
        }
    }

    /// One naming: camelCase, except the OAuth names of RFC 6749.
    #[test]
    fn every_field_is_camel_case_but_the_oauth_names() {
        const OAUTH: &[&str] = &[
            "access_token",
            "token_type",
            "expires_in",
            "grant_type",
            "client_id",
            "client_secret",
        ];
        let doc = served();
        let schemas = doc["components"]["schemas"].as_object().expect("schemas");
        for (schema, body) in schemas {
            for property in body["properties"]
                .as_object()
                .into_iter()
                .flat_map(|p| p.keys())
            {
                assert!(
                    !property.contains('_') || OAUTH.contains(&property.as_str()),
                    "{schema}.{property} is not camelCase"
                );
            }
        }
    }

    #[test]
    fn the_served_document_states_the_rules_and_common_answers() {
        let doc = served();
        let limit = doc
            .pointer("/components/schemas/AccountQuery/properties/limit/anyOf")
            .expect("limit rule");
        assert!(limit.to_string().contains("1000"));
        let backend = &doc["paths"]
            ["/backend/api/v1/accounts/{account}/virtual-accounts/{va}/tokens"]["get"]["responses"];
        assert!(backend.get("401").is_none() && backend.get("403").is_some());
        let users = &doc["paths"]["/api/v1/users"]["post"]["responses"];
        assert!(users.get("415").is_some() && users.get("413").is_some());
        assert_eq!(
            doc["paths"]["/api/v1/sync/import"]["post"]["requestBody"]["content"]
                ["application/zip"]["schema"]["type"],
            "string"
        );
    }
}
