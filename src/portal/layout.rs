//! The page skeleton every portal page shares: head, navigation, the
//! signed-in user, notices. HTML is built with `maud`, which escapes every
//! value it is given, so text from devices and operators cannot become markup.

pub use super::flash::Notice;
use super::operator::{Node, Operator};
use actix_web::http::StatusCode;
use actix_web::HttpResponse;
use maud::{html, Markup, DOCTYPE};

/// The portal's sections, for the navigation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Section {
    Overview,
    Inventory,
    Reports,
    Synchronization,
    Alerts,
    /// Users, API clients and backups (admins).
    Administration,
    /// The signed-in user's own settings (their password).
    Account,
}

pub fn html(status: StatusCode, body: Markup) -> HttpResponse {
    HttpResponse::build(status)
        .content_type("text/html; charset=utf-8")
        .body(body.into_string())
}

fn head(title: &str, node: Option<&Node>) -> Markup {
    html! {
        head {
            meta charset="utf-8";
            meta name="viewport" content="width=device-width, initial-scale=1";
            @match node {
                Some(node) => title { (title) " · " (node.name) " (" (node.role) ")" },
                None => title { (title) " · Satellite" },
            }
            link rel="stylesheet" href=(super::STYLESHEET_PATH);
            link rel="icon" type="image/svg+xml" href=(super::ICON_PATH);
        }
    }
}

/// A page for a signed-in operator.
pub fn page(
    operator: &Operator,
    section: Section,
    title: &str,
    notice: Option<&Notice>,
    content: Markup,
) -> Markup {
    let item = |s: Section, href: &str, label: &str| {
        html! {
            li { a href=(href) aria-current=[(s == section).then_some("page")] { (label) } }
        }
    };
    html! {
        (DOCTYPE)
        html lang="en" {
            (head(title, Some(&operator.node)))
            body {
                a.skip href="#main" { "Skip to content" }
                header.top {
                    span.brand title=(format!("smart account {}", operator.node.account)) {
                        (operator.node.name)
                        span.role { " · " (operator.node.role) " · " (operator.node.account) }
                    }
                    nav aria-label="Sections" {
                        ul {
                            (item(Section::Overview, "/portal/overview", "Overview"))
                            (item(Section::Inventory, "/portal/inventory", "Inventory"))
                            (item(Section::Reports, "/portal/reports", "Reports"))
                            @if operator.is_admin() {
                                (item(Section::Synchronization, "/portal/sync", "Synchronization"))
                            }
                            (item(Section::Alerts, "/portal/alerts", "Alerts"))
                            @if operator.is_admin() {
                                (item(Section::Administration, "/portal/admin", "Administration"))
                            }
                        }
                    }
                    form.logout method="post" action="/portal/logout" {
                        span.who { (operator.caller.name.trim_start_matches("user:")) " (" (operator.caller.role.as_str()) ")" }
                        a href="/portal/password" aria-current=[(section == Section::Account).then_some("page")] { "Password" }
                        input type="hidden" name="csrf" value=(operator.csrf);
                        button type="submit" { "Log out" }
                    }
                }
                main #main {
                    h1 { (title) }
                    @if let Some(notice) = notice { (notice_box(notice)) }
                    (content)
                }
            }
        }
    }
}

fn notice_box(notice: &Notice) -> Markup {
    html! {
        div class=(if notice.ok { "notice ok" } else { "notice error" }) role=(if notice.ok { "status" } else { "alert" }) {
            p { (notice.text) }
            @if let Some(secret) = &notice.secret {
                p { code.secret #new-secret { (secret) } }
            }
            @if let Some((href, label)) = &notice.link {
                p { a #notice-link href=(href) download { (label) } }
            }
        }
    }
}

/// The login form.
pub fn login(nonce: &str, message: Option<&str>, next: Option<&str>) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            (head("Log in", None))
            body.login {
                main #main {
                    h1 { "Satellite" }
                    @if let Some(message) = message {
                        div.notice.error role="alert" { p { (message) } }
                    }
                    form method="post" action=(super::LOGIN_PATH) {
                        input type="hidden" name="nonce" value=(nonce);
                        @if let Some(next) = next {
                            input type="hidden" name="next" value=(next);
                        }
                        label for="username" { "User name" }
                        input #username type="text" name="username" autocomplete="username" required autofocus;
                        label for="password" { "Password" }
                        input #password type="password" name="password" autocomplete="current-password" required;
                        button type="submit" { "Log in" }
                    }
                }
            }
        }
    }
}

/// A page that says something went through and where to go next, for
/// when there is no session left to show a page in (a changed password).
pub fn done(title: &str, message: &str, next: (&str, &str)) -> HttpResponse {
    html(
        StatusCode::OK,
        html! {
            (DOCTYPE)
            html lang="en" {
                (head(title, None))
                body.login {
                    main #main {
                        h1 { (title) }
                        div.notice.ok role="status" { p { (message) } }
                        p { a href=(next.0) { (next.1) } }
                    }
                }
            }
        },
    )
}

/// A page with nothing but a message (refusals that have no form to go back to).
pub fn bare(status: StatusCode, title: &str, message: &str) -> HttpResponse {
    html(
        status,
        html! {
            (DOCTYPE)
            html lang="en" {
                (head(title, None))
                body {
                    main #main {
                        h1 { (title) }
                        div.notice.error role="alert" { p { (message) } }
                        p { a href=(super::HOME_PATH) { "Back to the overview" } }
                    }
                }
            }
        },
    )
}

/// A `<select>` whose current value is selected.
pub fn select(name: &str, id: &str, options: &[(String, String)], current: &str) -> Markup {
    html! {
        select name=(name) id=(id) {
            @for (value, label) in options {
                option value=(value) selected[value == current] { (label) }
            }
        }
    }
}

/// A destructive action's form: it acts only once its box, which states
/// the consequence, is ticked (the handler checks `confirm` again).
pub fn confirmed_action(
    operator: &Operator,
    action: &str,
    hidden: &[(&str, &str)],
    consequence: &str,
    button: &str,
    label: Option<String>,
) -> Markup {
    html! {
        form.inline method="post" action=(action) {
            (csrf(operator))
            @for (name, value) in hidden {
                input type="hidden" name=(name) value=(value);
            }
            label.check {
                input type="checkbox" name="confirm" value="yes" required;
                (consequence)
            }
            button.danger type="submit" aria-label=[label] { (button) }
        }
    }
}

/// The hidden CSRF field of a form.
pub fn csrf(operator: &Operator) -> Markup {
    html! { input type="hidden" name="csrf" value=(operator.csrf); }
}

/// A time as the portal prints it, with its zone: `2026-12-06 19:40:48 UTC`.
pub fn when(rfc3339: &str) -> String {
    match rfc3339.strip_suffix('Z') {
        Some(utc) => format!("{} UTC", utc.replacen('T', " ", 1)),
        None => rfc3339.replacen('T', " ", 1),
    }
}

/// A status in words, as the pools' are.
pub fn status_words(status: &str) -> String {
    let lower = status.replace('_', " ").to_lowercase();
    let mut chars = lower.chars();
    chars
        .next()
        .map(|first| first.to_uppercase().chain(chars).collect())
        .unwrap_or_default()
}

/// A product-instance status filter's choices: `any` first, then every
/// status, its code as the value and its words as the label.
pub fn status_choices(any: &str) -> Vec<(String, String)> {
    std::iter::once((String::new(), any.to_string()))
        .chain(
            crate::domain::InstanceStatus::ALL
                .iter()
                .map(|s| (s.as_str().to_string(), status_words(s.as_str()))),
        )
        .collect()
}

/// Refuses a status filter that names no status, listing the ones there are.
pub fn check_status(status: &str) -> Result<(), crate::error::Error> {
    let all = crate::domain::InstanceStatus::ALL;
    if all.iter().any(|s| s.as_str() == status) {
        return Ok(());
    }
    Err(crate::error::Error::invalid(
        "status",
        format!(
            "{status:?} is not a status; use one of {}",
            all.map(|s| s.as_str()).join(", ")
        ),
    ))
}

/// A form's whole number; empty is none.
pub fn number(field: &str, text: &str) -> Result<Option<u32>, crate::error::Error> {
    let text = text.trim();
    if text.is_empty() {
        return Ok(None);
    }
    text.parse()
        .map(Some)
        .map_err(|_| crate::error::Error::invalid(field, format!("{text:?} is not a whole number")))
}

/// A file to save, as a download.
pub fn download(
    content_type: &str,
    name: &str,
    body: impl actix_web::body::MessageBody + 'static,
) -> HttpResponse {
    HttpResponse::Ok()
        .content_type(content_type)
        .insert_header((
            "Content-Disposition",
            format!("attachment; filename=\"{name}\""),
        ))
        .body(body)
}

/// "Lab, Branch" → ["Lab", "Branch"]: a form's comma-separated names.
pub fn names(text: &str) -> Vec<String> {
    text.split(',')
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .map(str::to_string)
        .collect()
}
