//! The states the licensing rules decide and the store records, in the
//! words of the device API and Cisco's listings (DESIGN §5).

use serde::Serialize;

/// Status of one entitlement of one product instance, in the device API's words.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum EntitlementStatus {
    Authorized,
    OutOfCompliance,
    Invalid,
    AuthorizationExpired,
}

impl EntitlementStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Authorized => "AUTHORIZED",
            Self::OutOfCompliance => "OUT_OF_COMPLIANCE",
            Self::Invalid => "INVALID",
            Self::AuthorizationExpired => "AUTHORIZATION_EXPIRED",
        }
    }

    /// Reads a stored word back; `None` for a word this version never writes.
    pub fn parse(text: &str) -> Option<Self> {
        [
            Self::Authorized,
            Self::OutOfCompliance,
            Self::Invalid,
            Self::AuthorizationExpired,
        ]
        .into_iter()
        .find(|s| s.as_str() == text)
    }
}

/// Status of one product instance (DESIGN §5), in the device API's words.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum InstanceStatus {
    /// Registered, never authorized yet.
    Registered,
    Authorized,
    OutOfCompliance,
    Invalid,
    /// Silent past its communication deadline: in the grace period.
    AuthorizationExpired,
    /// Silent past the grace period too; still counted until removed.
    GracePeriodExpired,
}

impl InstanceStatus {
    /// Every status, in the order listings offer them as filters.
    pub const ALL: [InstanceStatus; 6] = [
        Self::Authorized,
        Self::OutOfCompliance,
        Self::Invalid,
        Self::AuthorizationExpired,
        Self::GracePeriodExpired,
        Self::Registered,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Registered => "REGISTERED",
            Self::Authorized => "AUTHORIZED",
            Self::OutOfCompliance => "OUT_OF_COMPLIANCE",
            Self::Invalid => "INVALID",
            Self::AuthorizationExpired => "AUTHORIZATION_EXPIRED",
            Self::GracePeriodExpired => "GRACE_PERIOD_EXPIRED",
        }
    }
}

impl std::fmt::Display for InstanceStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

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

/// A pool whose compliance changed, or whose shortfall got deeper.
#[derive(Debug, Clone)]
pub struct Transition {
    pub virtual_account: String,
    pub tag: String,
    pub in_use: i64,
    pub available: i64,
    pub to: PoolStatus,
    /// The shortfall announced before (0 when the pool was in compliance):
    /// above 0 with `to` out of compliance, the shortfall got deeper.
    pub previous_shortfall: i64,
}

impl Transition {
    pub fn shortfall(&self) -> i64 {
        (self.in_use - self.available).max(0)
    }

    /// Already short before, and now shorter still.
    pub fn deeper(&self) -> bool {
        self.to == PoolStatus::OutOfCompliance && self.previous_shortfall > 0
    }
}
