//! Users and API clients (admin only; the policy says so in `ops::access`).

use super::accounts::PageQuery;
use super::auth::Authenticated;
use super::body;
use super::error::{ApiError, ErrorBody};
use super::wire::{Client, CreatedClient, User};
use super::Api;
use crate::ops::users::NewUser;
use crate::ops::{self, Action, Page, Role};
use actix_web::{web, HttpRequest, HttpResponse};
use serde::{Deserialize, Serialize};

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Users {
    pub users: Vec<User>,
}

#[utoipa::path(get, path = "/api/v1/users", tag = "access", params(PageQuery), responses((status = 200, description = "Users", body = Users), (status = 400, description = "Malformed request; the error names the field", body = ErrorBody), (status = 401, description = "No valid bearer token", body = ErrorBody), (status = 403, description = "The role or virtual accounts do not reach this", body = ErrorBody)), security(("bearer" = [])))]
pub async fn user_list(
    api: web::Data<Api>,
    Authenticated(caller): Authenticated,
    query: web::Query<PageQuery>,
) -> Result<HttpResponse, ApiError> {
    let page = Page::new(query.limit, query.offset)?;
    let users = api
        .into_inner()
        .read(move |c| ops::users::list(c, &caller, page))
        .await?;
    Ok(HttpResponse::Ok().json(Users {
        users: users.into_iter().map(Into::into).collect(),
    }))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct NewUserRequest {
    pub username: String,
    pub password: String,
    pub role: String,
    #[serde(default)]
    pub virtual_accounts: Vec<String>,
}

#[utoipa::path(post, path = "/api/v1/users", tag = "access", request_body = NewUserRequest, responses((status = 201, description = "Added", body = User), (status = 400, description = "Malformed request; the error names the field", body = ErrorBody), (status = 401, description = "No valid bearer token", body = ErrorBody), (status = 403, description = "The role or virtual accounts do not reach this", body = ErrorBody), (status = 409, description = "The name is taken", body = ErrorBody), (status = 404, description = "A virtual account it names does not exist", body = ErrorBody)), security(("bearer" = [])))]
pub async fn user_add(
    api: web::Data<Api>,
    Authenticated(caller): Authenticated,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let bytes = body::read_json(&req, payload).await?;
    // Refuse before spending a password hash on a caller who may not.
    caller.authorize(Action::Administer, None)?;
    let request: NewUserRequest = body::json(&bytes)?;
    let role = Role::parse(&request.role)?;
    let password = request.password;
    let hash = api
        .blocking(move || ops::users::hash_new_password(&password))
        .await?;
    let account = api.config().account.clone();
    let now = api.now();
    let user = api
        .change(caller, move |c, caller| {
            ops::users::add(
                c,
                caller,
                &account,
                &NewUser {
                    username: &request.username,
                    password_hash: &hash,
                    role,
                    virtual_accounts: &request.virtual_accounts,
                },
                now,
            )
        })
        .await?;
    Ok(HttpResponse::Created().json(User::from(user)))
}

#[utoipa::path(delete, path = "/api/v1/users/{username}", tag = "access", params(("username" = String, Path, description = "User name")), responses((status = 200, description = "Removed", body = User), (status = 400, description = "Malformed request; the error names the field", body = ErrorBody), (status = 401, description = "No valid bearer token", body = ErrorBody), (status = 403, description = "The role or virtual accounts do not reach this", body = ErrorBody), (status = 404, description = "Not found or not reachable", body = ErrorBody), (status = 409, description = "The last admin cannot be removed", body = ErrorBody)), security(("bearer" = [])))]
pub async fn user_remove(
    api: web::Data<Api>,
    Authenticated(caller): Authenticated,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let username = path.into_inner();
    let now = api.now();
    let user = api
        .change(caller, move |c, caller| {
            ops::users::remove(c, caller, &username, now)
        })
        .await?;
    Ok(HttpResponse::Ok().json(User::from(user)))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PasswordRequest {
    /// At least 12 characters.
    pub password: String,
    /// Required when users change their own password (admins need not give
    /// it for others'). `current_password` is read too (its first spelling).
    #[serde(default, alias = "current_password")]
    pub current_password: Option<String>,
}

#[utoipa::path(put, path = "/api/v1/users/{username}/password", tag = "access", params(("username" = String, Path, description = "User name")), request_body = PasswordRequest, responses((status = 200, description = "Changed; the user's sessions ended (users may change their own, giving `currentPassword`)", body = User), (status = 400, description = "Malformed request; the error names the field", body = ErrorBody), (status = 401, description = "No valid bearer token", body = ErrorBody), (status = 403, description = "The role or virtual accounts do not reach this", body = ErrorBody), (status = 404, description = "Not found or not reachable", body = ErrorBody)), security(("bearer" = [])))]
pub async fn user_password(
    api: web::Data<Api>,
    Authenticated(caller): Authenticated,
    path: web::Path<String>,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let bytes = body::read_json(&req, payload).await?;
    let username = path.into_inner();
    // Anyone may change their own password (giving the current one); only
    // admins change others'.
    if !ops::users::is_self(&caller, &username) {
        caller.authorize(Action::Administer, None)?;
    }
    let request: PasswordRequest = body::json(&bytes)?;
    {
        let (caller, username, current) = (
            caller.clone(),
            username.clone(),
            request.current_password.clone(),
        );
        api.read(move |c| {
            ops::login::check_current_password(c, &caller, &username, current.as_deref())
        })
        .await?;
    }
    let hash = api
        .blocking(move || ops::users::hash_new_password(&request.password))
        .await?;
    let now = api.now();
    let user = api
        .change(caller, move |c, caller| {
            ops::users::set_password(c, caller, &username, &hash, now)
        })
        .await?;
    Ok(HttpResponse::Ok().json(User::from(user)))
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Clients {
    pub clients: Vec<Client>,
}

#[utoipa::path(get, path = "/api/v1/clients", tag = "access", params(PageQuery), responses((status = 200, description = "API clients", body = Clients), (status = 400, description = "Malformed request; the error names the field", body = ErrorBody), (status = 401, description = "No valid bearer token", body = ErrorBody), (status = 403, description = "The role or virtual accounts do not reach this", body = ErrorBody)), security(("bearer" = [])))]
pub async fn client_list(
    api: web::Data<Api>,
    Authenticated(caller): Authenticated,
    query: web::Query<PageQuery>,
) -> Result<HttpResponse, ApiError> {
    let page = Page::new(query.limit, query.offset)?;
    let clients = api
        .into_inner()
        .read(move |c| ops::clients::list(c, &caller, page))
        .await?;
    Ok(HttpResponse::Ok().json(Clients {
        clients: clients.into_iter().map(Into::into).collect(),
    }))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct NewClientRequest {
    pub name: String,
    pub role: String,
    #[serde(default)]
    pub virtual_accounts: Vec<String>,
}

#[utoipa::path(post, path = "/api/v1/clients", tag = "access", request_body = NewClientRequest, responses((status = 201, description = "Added; the secret is shown once", body = CreatedClient), (status = 400, description = "Malformed request; the error names the field", body = ErrorBody), (status = 401, description = "No valid bearer token", body = ErrorBody), (status = 403, description = "The role or virtual accounts do not reach this", body = ErrorBody), (status = 409, description = "The name is taken", body = ErrorBody), (status = 404, description = "A virtual account it names does not exist", body = ErrorBody)), security(("bearer" = [])))]
pub async fn client_add(
    api: web::Data<Api>,
    Authenticated(caller): Authenticated,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let bytes = body::read_json(&req, payload).await?;
    let request: NewClientRequest = body::json(&bytes)?;
    let role = Role::parse(&request.role)?;
    let account = api.config().account.clone();
    let now = api.now();
    let created = api
        .change(caller, move |c, caller| {
            ops::clients::add(
                c,
                caller,
                &account,
                &request.name,
                role,
                &request.virtual_accounts,
                now,
            )
        })
        .await?;
    Ok(HttpResponse::Created().json(CreatedClient::from(created)))
}

#[utoipa::path(delete, path = "/api/v1/clients/{client}", tag = "access", params(("client" = String, Path, description = "Client name or client id")), responses((status = 200, description = "Revoked; its tokens ended", body = Client), (status = 400, description = "Malformed request; the error names the field", body = ErrorBody), (status = 401, description = "No valid bearer token", body = ErrorBody), (status = 403, description = "The role or virtual accounts do not reach this", body = ErrorBody), (status = 404, description = "Not found or not reachable", body = ErrorBody)), security(("bearer" = [])))]
pub async fn client_revoke(
    api: web::Data<Api>,
    Authenticated(caller): Authenticated,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let key = path.into_inner();
    let now = api.now();
    let client = api
        .change(caller, move |c, caller| {
            ops::clients::revoke(c, caller, &key, now)
        })
        .await?;
    Ok(HttpResponse::Ok().json(Client::from(client)))
}
