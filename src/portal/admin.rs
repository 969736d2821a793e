//! Administration: users, API clients and backups, the admin's jobs that
//! are not about one virtual account. The same operations and roles as
//! `/api/v1/users`, `/api/v1/clients` and `/api/v1/backup`: admins only.

use super::error::{confirmed, refused, PortalError};
use super::layout::{self, csrf, select, when, Notice, Section};
use super::session::{CsrfForm, Operator};
use crate::ops::users::NewUser;
use crate::ops::{self, Action, OpsError, Role, Service};
use actix_web::http::StatusCode;
use actix_web::{web, HttpResponse};
use maud::html;
use serde::Deserialize;

const PAGE: &str = "/portal/admin";

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/admin", web::get().to(page));
    let forms: [(&str, actix_web::Route); 6] = [
        ("/admin/users", web::post().to(add_user)),
        ("/admin/users/remove", web::post().to(remove_user)),
        ("/admin/users/password", web::post().to(set_password)),
        ("/admin/clients", web::post().to(add_client)),
        ("/admin/clients/revoke", web::post().to(revoke_client)),
        ("/admin/backup", web::post().to(backup)),
    ];
    for (path, post) in forms {
        cfg.route(path, post).route(path, super::back_to(PAGE));
    }
}

fn role_choices() -> Vec<(String, String)> {
    [
        ("viewer", "viewer: reads its virtual accounts"),
        (
            "va-admin",
            "va-admin: tokens, instances, reports of its virtual accounts",
        ),
        ("admin", "admin: everything"),
    ]
    .map(|(v, l)| (v.to_string(), l.to_string()))
    .to_vec()
}

async fn render(
    service: &Service,
    operator: &Operator,
    notice: Option<Notice>,
    status: StatusCode,
) -> Result<HttpResponse, PortalError> {
    operator.caller.authorize(Action::Administer, None)?;
    let notice = notice.or_else(|| operator.take_notice());
    let caller = operator.caller.clone();
    let (users, clients) = service
        .read(move |c| {
            let all = ops::Page {
                limit: ops::MAX_PAGE,
                offset: 0,
            };
            Ok((
                ops::users::list(c, &caller, all)?,
                ops::clients::list(c, &caller, all)?,
            ))
        })
        .await?;
    // One's own password is changed on the Password page, with the
    // current one (as the API asks for it).
    let user_names: Vec<(String, String)> = users
        .iter()
        .filter(|u| !ops::users::is_self(&operator.caller, &u.username))
        .map(|u| (u.username.clone(), u.username.clone()))
        .collect();
    let content = html! {
        h2 { "Users" }
        p { "People who log in to this portal; scripts use API clients (below)." }
        table #users {
            thead { tr {
                th scope="col" { "User" } th scope="col" { "Role" } th scope="col" { "Virtual Accounts" }
                th scope="col" { "Added" } th scope="col" { "Actions" }
            } }
            tbody {
                @for u in &users {
                    tr {
                        th scope="row" { (u.username) }
                        td { (u.role) }
                        td { @if u.virtual_accounts.is_empty() { "all" } @else { (u.virtual_accounts.join(", ")) } }
                        td { (when(&u.created_at)) }
                        td {
                            (layout::confirmed_action(
                                operator,
                                "/portal/admin/users/remove",
                                &[("username", &u.username)],
                                "its sessions end and it can no longer log in",
                                "Remove",
                                Some(format!("Remove user {}", u.username)),
                            ))
                        }
                    }
                }
            }
        }
        details.transfer {
            summary { "Add a User" }
            form.stacked #add-user method="post" action="/portal/admin/users" {
                (csrf(operator))
                label for="user-name" { "User name" }
                input #user-name name="username" required maxlength="64" autocomplete="off";
                label for="user-role" { "Role" }
                (select("role", "user-role", &role_choices(), "viewer"))
                label for="user-vas" { "Virtual accounts (a va-admin's or viewer's, comma-separated; none for an admin)" }
                input #user-vas name="virtual_accounts" placeholder="Lab, Branch";
                label for="user-password" { "Password (at least " (ops::users::MIN_PASSWORD) " characters)" }
                input #user-password type="password" name="password" autocomplete="new-password" minlength=(ops::users::MIN_PASSWORD) required;
                button type="submit" { "Add User" }
            }
        }
        @if !user_names.is_empty() {
            details.transfer {
                summary { "Set a User's Password" }
                form.stacked #set-password method="post" action="/portal/admin/users/password" {
                    (csrf(operator))
                    label for="password-user" { "User" }
                    (select("username", "password-user", &user_names, ""))
                    label for="password-new" { "New password (every session of the user ends)" }
                    input #password-new type="password" name="password" autocomplete="new-password" minlength=(ops::users::MIN_PASSWORD) required;
                    button type="submit" { "Set Password" }
                }
            }
        }

        h2 { "API clients" }
        p { "Scripts and monitoring get bearer tokens from " code { "POST /backend/oauth/token" } " with a client's id and secret." }
        @if clients.is_empty() {
            p.empty { "No API clients yet." }
        } @else {
            table #clients {
                thead { tr {
                    th scope="col" { "Name" } th scope="col" { "Client ID" } th scope="col" { "Role" }
                    th scope="col" { "Virtual Accounts" } th scope="col" { "Added" } th scope="col" { "Status" }
                    th scope="col" { "Actions" }
                } }
                tbody {
                    @for k in &clients {
                        tr {
                            th scope="row" { (k.name) }
                            td { code { (k.client_id) } }
                            td { (k.role) }
                            td { @if k.virtual_accounts.is_empty() { "all" } @else { (k.virtual_accounts.join(", ")) } }
                            td { (when(&k.created_at)) }
                            td { (layout::status_words(k.status)) }
                            td {
                                @if k.status == "ACTIVE" {
                                    (layout::confirmed_action(
                                        operator,
                                        "/portal/admin/clients/revoke",
                                        &[("client", &k.client_id)],
                                        "its tokens stop working at once",
                                        "Revoke",
                                        Some(format!("Revoke API client {}", k.name)),
                                    ))
                                }
                            }
                        }
                    }
                }
            }
        }
        details.transfer {
            summary { "Add an API Client" }
            form.stacked #add-client method="post" action="/portal/admin/clients" {
                (csrf(operator))
                label for="client-name" { "Name" }
                input #client-name name="name" required maxlength="64" autocomplete="off";
                label for="client-role" { "Role" }
                (select("role", "client-role", &role_choices(), "viewer"))
                label for="client-vas" { "Virtual accounts (a va-admin's or viewer's, comma-separated; none for an admin)" }
                input #client-vas name="virtual_accounts" placeholder="Lab";
                button type="submit" { "Add API Client" }
            }
        }

        h2 { "Backup" }
        p {
            "A consistent copy of the database, the CA and the signing keys, as "
            code { "satellite backup FILE" } " writes it. It holds private keys: keep it "
            "where only administrators can read it. Restoring is done on the stopped node with "
            code { "satellite restore FILE" } "."
        }
        form method="post" action="/portal/admin/backup" {
            (csrf(operator))
            button type="submit" { "Download Backup" }
        }
    };
    Ok(layout::html(
        status,
        layout::page(
            operator,
            Section::Administration,
            "Administration",
            notice.as_ref(),
            content,
        ),
    ))
}

pub async fn page(
    service: web::Data<Service>,
    operator: Operator,
) -> Result<HttpResponse, PortalError> {
    render(&service, &operator, None, StatusCode::OK).await
}

/// A form's end: done, the page again by a redirect (a reload repeats
/// nothing); refused, the page with the reason and its status.
async fn settle(
    service: &Service,
    operator: &Operator,
    outcome: Result<Notice, PortalError>,
) -> Result<HttpResponse, PortalError> {
    match outcome {
        Ok(notice) => Ok(operator.redirect(PAGE, notice)),
        Err(PortalError::Ops(e)) => {
            let (notice, status) = refused(e)?;
            render(service, operator, Some(notice), status).await
        }
        Err(e) => Err(e),
    }
}

#[derive(Debug, Deserialize)]
pub struct UserForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    username: String,
    #[serde(default)]
    role: String,
    #[serde(default)]
    virtual_accounts: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    confirm: String,
}

async fn add_user(
    service: web::Data<Service>,
    operator: Operator,
    form: web::Form<UserForm>,
) -> Result<HttpResponse, PortalError> {
    operator.check_csrf(&form.csrf)?;
    let form = form.into_inner();
    let outcome = async {
        // Refuse before spending a password hash on a caller who may not.
        operator.caller.authorize(Action::Administer, None)?;
        let role = Role::parse(form.role.trim())?;
        let password = form.password.clone();
        let hash = service
            .blocking(move || ops::users::hash_new_password(&password))
            .await?;
        let (account, now) = (service.config().account.clone(), service.now());
        let (username, vas) = (
            form.username.trim().to_string(),
            layout::names(&form.virtual_accounts),
        );
        let user = service
            .change(operator.caller.clone(), move |c, caller| {
                ops::users::add(
                    c,
                    caller,
                    &account,
                    &NewUser {
                        username: &username,
                        password_hash: &hash,
                        role,
                        virtual_accounts: &vas,
                    },
                    now,
                )
            })
            .await?;
        Ok(Notice::ok(format!(
            "User {} added with role {}.",
            user.username, user.role
        )))
    }
    .await;
    settle(&service, &operator, outcome).await
}

async fn remove_user(
    service: web::Data<Service>,
    operator: Operator,
    form: web::Form<UserForm>,
) -> Result<HttpResponse, PortalError> {
    operator.check_csrf(&form.csrf)?;
    let form = form.into_inner();
    let outcome = async {
        confirmed(
            &form.confirm,
            "the user's sessions end and it can no longer log in",
        )?;
        let (username, now) = (form.username.clone(), service.now());
        let user = service
            .change(operator.caller.clone(), move |c, caller| {
                ops::users::remove(c, caller, &username, now)
            })
            .await?;
        Ok(Notice::ok(format!(
            "User {} removed; its sessions ended.",
            user.username
        )))
    }
    .await;
    settle(&service, &operator, outcome).await
}

async fn set_password(
    service: web::Data<Service>,
    operator: Operator,
    form: web::Form<UserForm>,
) -> Result<HttpResponse, PortalError> {
    operator.check_csrf(&form.csrf)?;
    let form = form.into_inner();
    let outcome = async {
        operator.caller.authorize(Action::Administer, None)?;
        if ops::users::is_self(&operator.caller, &form.username) {
            return Err(OpsError::from(crate::error::Error::invalid(
                "username",
                "change your own password on the Password page, with your current one",
            ))
            .into());
        }
        let password = form.password.clone();
        let hash = service
            .blocking(move || ops::users::hash_new_password(&password))
            .await?;
        let (username, now) = (form.username.clone(), service.now());
        service
            .change(operator.caller.clone(), move |c, caller| {
                ops::users::set_password(c, caller, &username, &hash, now)
            })
            .await?;
        Ok(Notice::ok(format!(
            "The password of {} was changed; every session of it ended.",
            form.username
        )))
    }
    .await;
    settle(&service, &operator, outcome).await
}

#[derive(Debug, Deserialize)]
pub struct ClientForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    role: String,
    #[serde(default)]
    virtual_accounts: String,
    #[serde(default)]
    client: String,
    #[serde(default)]
    confirm: String,
}

async fn add_client(
    service: web::Data<Service>,
    operator: Operator,
    form: web::Form<ClientForm>,
) -> Result<HttpResponse, PortalError> {
    operator.check_csrf(&form.csrf)?;
    let form = form.into_inner();
    let outcome = async {
        let role = Role::parse(form.role.trim())?;
        let (account, now) = (service.config().account.clone(), service.now());
        let (name, vas) = (
            form.name.trim().to_string(),
            layout::names(&form.virtual_accounts),
        );
        let created = service
            .change(operator.caller.clone(), move |c, caller| {
                ops::clients::add(c, caller, &account, &name, role, &vas, now)
            })
            .await?;
        Ok(Notice {
            ok: true,
            text: format!(
                "API client {} added with role {}: client id {}. Copy its secret now: it is not shown again.",
                created.name, created.role, created.client_id
            ),
            secret: Some(created.client_secret),
            link: None,
        })
    }
    .await;
    settle(&service, &operator, outcome).await
}

async fn revoke_client(
    service: web::Data<Service>,
    operator: Operator,
    form: web::Form<ClientForm>,
) -> Result<HttpResponse, PortalError> {
    operator.check_csrf(&form.csrf)?;
    let form = form.into_inner();
    let outcome = async {
        confirmed(&form.confirm, "the client's tokens stop working at once")?;
        let (key, now) = (form.client.clone(), service.now());
        let client = service
            .change(operator.caller.clone(), move |c, caller| {
                ops::clients::revoke(c, caller, &key, now)
            })
            .await?;
        Ok(Notice::ok(format!(
            "API client {} revoked; its tokens no longer work.",
            client.name
        )))
    }
    .await;
    settle(&service, &operator, outcome).await
}

async fn backup(
    service: web::Data<Service>,
    operator: Operator,
    form: web::Form<CsrfForm>,
) -> Result<HttpResponse, PortalError> {
    operator.check_csrf(&form.csrf)?;
    let (caller, config, clock) = (
        operator.caller.clone(),
        service.config().clone(),
        service.clock().clone(),
    );
    let made = service
        .blocking(move || ops::backup::download(&caller, &config, &clock))
        .await;
    match made {
        Ok((bytes, name)) => {
            tracing::info!(who = %operator.caller.name, file = %name, "backup downloaded from the portal");
            Ok(layout::download("application/zip", &name, bytes))
        }
        Err(e) => settle(&service, &operator, Err(e.into())).await,
    }
}
