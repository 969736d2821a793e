//! The signed-in user's own password, as `PUT /api/v1/users/{me}/password`
//! changes it: the current password first, then the new one twice. Every
//! session of the user ends, this one included.

use super::error::PortalError;
use super::layout::{self, csrf, Notice, Section};
use super::session::Operator;
use crate::ops::{self, OpsError, Service};
use actix_web::http::StatusCode;
use actix_web::{web, HttpResponse};
use maud::html;
use serde::Deserialize;

fn form_page(operator: &Operator, notice: Option<&Notice>, status: StatusCode) -> HttpResponse {
    let user = operator.caller.name.strip_prefix("user:");
    let content = html! {
        @match user {
            Some(user) => {
                p { "Changing the password of " strong { (user) } " ends all of its sessions, this one included: log in again with the new one." }
                form.stacked #password-form method="post" action="/portal/password" {
                    (csrf(operator))
                    label for="current" { "Current password" }
                    input #current type="password" name="current" autocomplete="current-password" required;
                    label for="new" { "New password (at least " (ops::users::MIN_PASSWORD) " characters)" }
                    input #new type="password" name="new" autocomplete="new-password" minlength=(ops::users::MIN_PASSWORD) required;
                    label for="repeat" { "New password again" }
                    input #repeat type="password" name="repeat" autocomplete="new-password" minlength=(ops::users::MIN_PASSWORD) required;
                    button type="submit" { "Change password" }
                }
            }
            None => p.empty { "This session is not a user's: there is no password to change here." }
        }
    };
    layout::html(
        status,
        layout::page(operator, Section::Account, "Password", notice, content),
    )
}

pub async fn page(operator: Operator) -> Result<HttpResponse, PortalError> {
    Ok(form_page(&operator, None, StatusCode::OK))
}

#[derive(Debug, Deserialize)]
pub struct PasswordForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    current: String,
    #[serde(default)]
    new: String,
    #[serde(default)]
    repeat: String,
}

pub async fn change(
    service: web::Data<Service>,
    operator: Operator,
    form: web::Form<PasswordForm>,
) -> Result<HttpResponse, PortalError> {
    operator.check_csrf(&form.csrf)?;
    let form = form.into_inner();
    let Some(username) = operator
        .caller
        .name
        .strip_prefix("user:")
        .map(str::to_string)
    else {
        return Err(PortalError::Refused(
            "this session is not a user's: there is no password to change".into(),
        ));
    };
    let outcome: Result<(), OpsError> = async {
        if form.new != form.repeat {
            return Err(crate::error::Error::invalid(
                "repeat",
                "the new password and its repetition differ",
            )
            .into());
        }
        let (caller, name, current) = (
            operator.caller.clone(),
            username.clone(),
            form.current.clone(),
        );
        service
            .read(move |c| ops::login::check_current_password(c, &caller, &name, Some(&current)))
            .await?;
        let new = form.new.clone();
        let hash = service
            .blocking(move || ops::users::hash_new_password(&new))
            .await?;
        let (name, now) = (username.clone(), service.now());
        service
            .change(operator.caller.clone(), move |c, caller| {
                ops::users::set_password(c, caller, &name, &hash, now)
            })
            .await?;
        Ok(())
    }
    .await;
    match outcome {
        Ok(()) => Ok(layout::done(
            "Password changed",
            "Your password was changed and every session of yours ended.",
            ("/portal/login", "Log in with the new password"),
        )),
        Err(e) => {
            let (notice, status) = super::error::refused(e)?;
            Ok(form_page(&operator, Some(&notice), status))
        }
    }
}
