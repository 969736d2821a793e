//! Who may do what: the one place where roles and virtual-account scope are
//! decided. Operations call `Caller::authorize` before they read or change.

use super::{OpsError, Result};
use serde::Serialize;

/// `admin` (everything), `va-admin` (tokens, license transfers and
/// instances of its virtual accounts), `viewer` (reads its virtual accounts).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Role {
    #[serde(rename = "admin")]
    Admin,
    #[serde(rename = "va-admin")]
    VaAdmin,
    #[serde(rename = "viewer")]
    Viewer,
}

impl Role {
    pub fn parse(text: &str) -> Result<Self> {
        match text {
            "admin" => Ok(Self::Admin),
            "va-admin" => Ok(Self::VaAdmin),
            "viewer" => Ok(Self::Viewer),
            other => Err(crate::error::Error::invalid(
                "role",
                format!("{other:?} is not a role; use admin, va-admin or viewer"),
            )
            .into()),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Admin => "admin",
            Self::VaAdmin => "va-admin",
            Self::Viewer => "viewer",
        }
    }
}

/// What an operation does, for the policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Read what a virtual account holds.
    Read,
    /// Change a virtual account's tokens, licenses or instances.
    Operate,
    /// Users, API clients, sync and everything account-wide.
    Administer,
}

/// The identity an operation runs for.
#[derive(Debug, Clone)]
pub struct Caller {
    /// As the event log shows it: `user:NAME`, `client:NAME` or `cli:USER`.
    pub name: String,
    pub role: Role,
    /// The virtual accounts a va-admin or viewer reaches (ignored for admin).
    pub virtual_accounts: Vec<String>,
}

impl Caller {
    /// The command line runs as the local administrator: whoever can read
    /// the database file owns the satellite anyway.
    pub fn local_admin() -> Self {
        let who = std::env::var("SUDO_USER")
            .or_else(|_| std::env::var("USER"))
            .unwrap_or_else(|_| "local".into());
        Self {
            name: format!("cli:{who}"),
            role: Role::Admin,
            virtual_accounts: Vec::new(),
        }
    }

    /// Whether this caller reaches the virtual account at all.
    pub fn reaches(&self, virtual_account: &str) -> bool {
        self.role == Role::Admin || self.virtual_accounts.iter().any(|v| v == virtual_account)
    }

    /// The virtual accounts a listing is narrowed to; `None` for all.
    pub fn scope(&self) -> Option<&[String]> {
        (self.role != Role::Admin).then_some(self.virtual_accounts.as_slice())
    }

    /// The policy. `virtual_account` is what the operation touches; `None`
    /// for account-wide operations (which only read a scoped view, or are
    /// an administrator's).
    pub fn authorize(&self, action: Action, virtual_account: Option<&str>) -> Result<()> {
        let allowed = match (self.role, action, virtual_account) {
            (Role::Admin, _, _) => true,
            (_, Action::Administer, _) => false,
            (Role::Viewer, Action::Operate, _) => false,
            (_, Action::Read, None) => true,
            (Role::VaAdmin, Action::Operate, None) => false,
            (_, _, Some(va)) => self.reaches(va),
        };
        if allowed {
            return Ok(());
        }
        let what = match action {
            Action::Read => "read",
            Action::Operate => "change",
            Action::Administer => "administer",
        };
        Err(OpsError::Forbidden(match virtual_account {
            Some(va) if action != Action::Administer => format!(
                "{} ({}) may not {what} virtual account {va:?}",
                self.name,
                self.role.as_str()
            ),
            _ => format!(
                "{} ({}) may not do this: it needs the admin role",
                self.name,
                self.role.as_str()
            ),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn caller(role: Role) -> Caller {
        Caller {
            name: "user:t".into(),
            role,
            virtual_accounts: vec!["A".into()],
        }
    }

    #[test]
    fn roles_reach_what_the_contract_says() {
        let admin = caller(Role::Admin);
        assert!(admin.authorize(Action::Administer, None).is_ok());
        assert!(admin.authorize(Action::Operate, Some("B")).is_ok());

        let va_admin = caller(Role::VaAdmin);
        assert!(va_admin.authorize(Action::Operate, Some("A")).is_ok());
        assert!(va_admin.authorize(Action::Operate, Some("B")).is_err());
        assert!(va_admin.authorize(Action::Operate, None).is_err());
        assert!(va_admin.authorize(Action::Administer, Some("A")).is_err());
        assert!(va_admin.authorize(Action::Read, None).is_ok());

        let viewer = caller(Role::Viewer);
        assert!(viewer.authorize(Action::Read, Some("A")).is_ok());
        assert!(viewer.authorize(Action::Read, Some("B")).is_err());
        assert!(viewer.authorize(Action::Operate, Some("A")).is_err());
        assert_eq!(viewer.scope(), Some(&["A".to_string()][..]));
        assert_eq!(admin.scope(), None);
    }
}
