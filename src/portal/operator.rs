//! Who is signed in to the portal: what every page is given (the session
//! extracts it, in `session`).

use super::flash::Flash;
use crate::ops::{Action, Caller};
use actix_web::web;

/// A logged-in user of the portal.
pub struct Operator {
    pub caller: Caller,
    pub(super) secret: String,
    /// The CSRF token every form of this session carries.
    pub csrf: String,
    pub(super) flash: web::Data<Flash>,
    pub(super) now: i64,
    /// Which node this is, for the header and title: an operator with a
    /// cloud and a satellite open side by side tells them apart.
    pub node: Node,
}

/// The node's name, role and smart account.
#[derive(Debug, Clone)]
pub struct Node {
    pub name: String,
    pub role: &'static str,
    pub account: String,
}

impl Node {
    pub fn of(config: &crate::config::Config) -> Self {
        Self {
            name: config.name.clone(),
            role: match config.role {
                crate::config::Role::Cloud => "cloud",
                crate::config::Role::Satellite => "satellite",
            },
            account: config.account.clone(),
        }
    }
}

impl Operator {
    /// Whether buttons that change this virtual account are shown.
    pub fn can_operate(&self, virtual_account: &str) -> bool {
        self.caller
            .authorize(Action::Operate, Some(virtual_account))
            .is_ok()
    }

    pub fn is_admin(&self) -> bool {
        self.caller.authorize(Action::Administer, None).is_ok()
    }
}
