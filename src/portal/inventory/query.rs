//! What a tab is asked for: which tab, and its query string.

use crate::ops::{self, OpsError};
use serde::Deserialize;

/// Rows on one page of instances or events.
pub(super) const PAGE_ROWS: u32 = 50;
/// Days of usage history the charts show unless asked otherwise.
pub(super) const DEFAULT_HISTORY_DAYS: u32 = 90;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tab {
    General,
    Licenses,
    Instances,
    Events,
}

impl Tab {
    pub(super) fn path(self) -> &'static str {
        match self {
            Self::General => "/portal/inventory",
            Self::Licenses => "/portal/inventory/licenses",
            Self::Instances => "/portal/inventory/instances",
            Self::Events => "/portal/inventory/events",
        }
    }

    pub(super) fn label(self) -> &'static str {
        match self {
            Self::General => "General",
            Self::Licenses => "Licenses",
            Self::Instances => "Product Instances",
            Self::Events => "Event Log",
        }
    }
}

/// Everything a tab may be asked for in its query string.
#[derive(Debug, Default, Clone, Deserialize)]
pub struct View {
    pub va: Option<String>,
    /// Instances: part of a UDI, hostname or instance id.
    pub q: Option<String>,
    /// Instances: a status word.
    pub status: Option<String>,
    /// Events: a kind.
    pub kind: Option<String>,
    /// Events: `YYYY-MM-DD`, from the start of that day.
    pub from: Option<String>,
    /// Events: `YYYY-MM-DD`, to the end of that day.
    pub to: Option<String>,
    pub offset: Option<u32>,
    /// Licenses: days of history in the charts.
    pub days: Option<u32>,
}

impl View {
    pub(super) fn of_va(va: &str) -> Self {
        Self {
            va: Some(va.to_string()),
            ..Self::default()
        }
    }

    pub(super) fn nonempty(value: &Option<String>) -> Option<&str> {
        value.as_deref().map(str::trim).filter(|v| !v.is_empty())
    }
}

/// A date field as a Unix time at the start of that day (UTC).
pub(super) fn day_start(field: &str, text: &str) -> Result<i64, OpsError> {
    let format = time::macros::format_description!("[year]-[month]-[day]");
    time::Date::parse(text, &format)
        .map(|d| d.midnight().assume_utc().unix_timestamp())
        .map_err(|_| {
            crate::error::Error::invalid(field, format!("{text:?} is not a date (YYYY-MM-DD)"))
                .into()
        })
}

/// What a tab shows, read in one go on a blocking thread.
pub(super) enum Content {
    General(Vec<crate::ops::views::TokenInfo>),
    Licenses {
        pools: Vec<ops::licenses::LicenseSummary>,
        licenses: Vec<crate::ops::views::License>,
        history: Vec<crate::licensing::reports::UsageDay>,
        days: u32,
        /// The catalog's SKUs, for the cloud's license form.
        skus: Vec<(String, String)>,
    },
    Instances(Vec<crate::ops::views::InstanceView>),
    Events(Vec<crate::ops::views::AuditedEvent>),
}
