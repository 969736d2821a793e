//! Inventory: a virtual-account selector and the tabs of Cisco's manager —
//! General (registration tokens), Licenses (pools, terms and usage trends),
//! Product Instances, Event Log. Reads and changes go through the
//! operations layer with the operator's identity, as the API's do.

mod forms;
mod pages;
mod query;
mod view;

pub use query::{Tab, View};

use crate::ops::Service;
use crate::portal::session::Operator;
use actix_web::http::StatusCode;
use actix_web::web;
use forms::{
    add_licenses, create_token, create_virtual_account, move_instance, remove_instance,
    revoke_token, transfer_licenses,
};
use view::render;

/// Mounts the inventory's pages and forms (inside the portal's scope).
pub fn routes(cfg: &mut web::ServiceConfig) {
    for tab in [Tab::General, Tab::Licenses, Tab::Instances, Tab::Events] {
        let path = tab.path().trim_start_matches("/portal");
        cfg.route(
            path,
            web::get().to(
                move |service: web::Data<Service>, operator: Operator, view: web::Query<View>| async move {
                    render(
                        &service,
                        &operator,
                        tab,
                        view.into_inner(),
                        None,
                        StatusCode::OK,
                    )
                    .await
                },
            ),
        );
    }
    let forms: [(&str, actix_web::Route); 7] = [
        ("/inventory/licenses/add", web::post().to(add_licenses)),
        ("/inventory/tokens", web::post().to(create_token)),
        ("/inventory/tokens/revoke", web::post().to(revoke_token)),
        (
            "/inventory/instances/remove",
            web::post().to(remove_instance),
        ),
        ("/inventory/instances/move", web::post().to(move_instance)),
        (
            "/inventory/licenses/transfer",
            web::post().to(transfer_licenses),
        ),
        (
            "/inventory/virtual-accounts",
            web::post().to(create_virtual_account),
        ),
    ];
    for (path, post) in forms {
        cfg.route(path, post)
            .route(path, super::back_to(Tab::General.path()));
    }
}

#[cfg(test)]
mod tests {
    use super::pages::tab_link;
    use super::query::{day_start, Tab};

    #[test]
    fn dates_are_days_in_utc() {
        assert_eq!(day_start("from", "1970-01-02").ok(), Some(86_400));
        assert!(day_start("from", "02/01/1970").is_err());
    }

    #[test]
    fn virtual_account_names_are_escaped_in_links() {
        assert_eq!(
            tab_link(Tab::Licenses, "Lab & Co"),
            "/portal/inventory/licenses?va=Lab+%26+Co"
        );
    }
}
