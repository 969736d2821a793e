//! Domain types and rules that need no database and no network.

pub mod token;
pub mod udi;

pub use token::{TokenProblem, TokenSecret, TokenTerms};
pub use udi::Udi;

/// A pool's compliance, as the store records it and the rules decide it
/// (and as Cisco's license listing spells it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum PoolStatus {
    #[serde(rename = "In Compliance")]
    InCompliance,
    #[serde(rename = "Out of Compliance")]
    OutOfCompliance,
}

impl PoolStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::InCompliance => "In Compliance",
            Self::OutOfCompliance => "Out of Compliance",
        }
    }

    pub fn parse(text: &str) -> Self {
        if text == Self::OutOfCompliance.as_str() {
            Self::OutOfCompliance
        } else {
            Self::InCompliance
        }
    }
}

/// The virtual account every smart account has.
pub const DEFAULT_VIRTUAL_ACCOUNT: &str = "Default";

/// Validates a name an operator gives an account or virtual account.
pub fn check_name(what: &str, name: &str) -> Result<(), String> {
    let trimmed = name.trim();
    if trimmed.is_empty() {
        return Err(format!("{what} must not be empty"));
    }
    if trimmed != name {
        return Err(format!("{what} {name:?} has leading or trailing spaces"));
    }
    if name.chars().count() > 64 {
        return Err(format!("{what} {name:?} is longer than 64 characters"));
    }
    if name.chars().any(|c| c.is_control() || c == '/') {
        return Err(format!(
            "{what} {name:?} contains '/' or a control character"
        ));
    }
    Ok(())
}
