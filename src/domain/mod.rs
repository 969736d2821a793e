//! Domain types and rules that need no database and no network.

pub mod status;
pub mod token;
pub mod udi;

pub use status::{EntitlementStatus, InstanceStatus, PoolStatus, Transition};
pub use token::{TokenProblem, TokenSecret, TokenTerms};
pub use udi::Udi;

/// What a product instance asks for of one entitlement tag.
#[derive(Debug, Clone, serde::Deserialize, serde::Serialize)]
pub struct EntitlementRequest {
    pub tag: String,
    pub count: u32,
}

/// The virtual account every smart account has.
pub const DEFAULT_VIRTUAL_ACCOUNT: &str = "Default";

/// Validates a name an operator gives an account or virtual account.
/// The longest name (of a user, client, virtual account, satellite).
pub const MAX_NAME: usize = 64;

pub fn check_name(what: &str, name: &str) -> Result<(), String> {
    let trimmed = name.trim();
    if trimmed.is_empty() {
        return Err(format!("{what} must not be empty"));
    }
    if trimmed != name {
        return Err(format!("{what} {name:?} has leading or trailing spaces"));
    }
    if name.chars().count() > MAX_NAME {
        return Err(format!(
            "{what} {name:?} is longer than {MAX_NAME} characters"
        ));
    }
    if name.chars().any(|c| c.is_control() || c == '/') {
        return Err(format!(
            "{what} {name:?} contains '/' or a control character"
        ));
    }
    Ok(())
}
