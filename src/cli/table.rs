//! Plain aligned tables for people; `--json` is for scripts. Each listed
//! type says once what its columns are.

use crate::licensing::compliance::ComplianceRow;
use crate::licensing::reports::{ReportSummary, UsageDay};
use crate::ops::views::CallHomeStatistics as Statistics;
use crate::ops::views::Event;
use crate::ops::views::InstanceView;
use crate::ops::views::License;
use crate::ops::views::TokenInfo;
use crate::ops::views::VirtualAccount;

/// A type a listing prints as one table row.
pub trait Row {
    const HEADERS: &'static [&'static str];
    fn cells(&self) -> Vec<String>;
}

pub fn print<T: Row>(items: &[T]) {
    let rows: Vec<Vec<String>> = items.iter().map(Row::cells).collect();
    let mut widths: Vec<usize> = T::HEADERS.iter().map(|h| h.chars().count()).collect();
    for row in &rows {
        for (i, cell) in row.iter().enumerate() {
            if let Some(w) = widths.get_mut(i) {
                *w = (*w).max(cell.chars().count());
            }
        }
    }
    let line = |cells: Vec<&str>| {
        let mut out = String::new();
        for (i, cell) in cells.iter().enumerate() {
            if i + 1 == cells.len() {
                out.push_str(cell);
            } else {
                let width = widths.get(i).copied().unwrap_or(0);
                out.push_str(&format!("{cell:<width$}  "));
            }
        }
        println!("{}", out.trim_end());
    };
    line(T::HEADERS.to_vec());
    for row in &rows {
        line(row.iter().map(String::as_str).collect());
    }
}

impl Row for VirtualAccount {
    const HEADERS: &'static [&'static str] = &[
        "Virtual Account",
        "Product Instances",
        "Active Tokens",
        "Served By",
        "Description",
    ];
    fn cells(&self) -> Vec<String> {
        vec![
            self.name.clone(),
            match self.satellite_instances {
                0 => self.product_instances.to_string(),
                remote => format!("{} ({remote} via satellites)", self.product_instances),
            },
            self.active_tokens.to_string(),
            self.served_by.clone().unwrap_or_else(|| "this node".into()),
            self.description.clone(),
        ]
    }
}

impl Row for TokenInfo {
    const HEADERS: &'static [&'static str] = &[
        "Token",
        "Virtual Account",
        "Expires",
        "Uses",
        "Status",
        "Description",
    ];
    fn cells(&self) -> Vec<String> {
        vec![
            format!("{}…", self.token_prefix),
            self.virtual_account.clone(),
            self.expires_at.clone(),
            match self.max_uses {
                Some(max) => format!("{}/{max}", self.uses),
                None => self.uses.to_string(),
            },
            self.status.to_string(),
            self.description.clone(),
        ]
    }
}

impl Row for InstanceView {
    const HEADERS: &'static [&'static str] = &[
        "UDI",
        "Hostname",
        "Virtual Account",
        "Status",
        "Last Contact",
        "Satellite",
    ];
    fn cells(&self) -> Vec<String> {
        vec![
            self.udi.clone(),
            self.hostname.clone().unwrap_or_default(),
            self.virtual_account.clone(),
            self.status.clone(),
            self.last_contact_at.clone(),
            self.satellite.clone().unwrap_or_else(|| "-".into()),
        ]
    }
}

impl Row for License {
    const HEADERS: &'static [&'static str] = &[
        "Virtual Account",
        "SKU",
        "Entitlement Tag",
        "Quantity",
        "Type",
        "Start",
        "End",
        "State",
    ];
    fn cells(&self) -> Vec<String> {
        vec![
            self.virtual_account.clone(),
            self.sku.clone(),
            self.tag.clone(),
            self.quantity.to_string(),
            self.license_type.clone(),
            self.start.clone(),
            self.end.clone().unwrap_or_else(|| "-".into()),
            if self.active { "ACTIVE" } else { "INACTIVE" }.into(),
        ]
    }
}

impl Row for UsageDay {
    const HEADERS: &'static [&'static str] = &[
        "Day",
        "Virtual Account",
        "Entitlement Tag",
        "Available",
        "In Use",
    ];
    fn cells(&self) -> Vec<String> {
        vec![
            self.day.clone(),
            self.virtual_account.clone(),
            self.tag.clone(),
            self.available.to_string(),
            self.in_use.to_string(),
        ]
    }
}

impl Row for ComplianceRow {
    const HEADERS: &'static [&'static str] = &[
        "Virtual Account",
        "Entitlement Tag",
        "Available",
        "In Use",
        "Shortfall",
        "Status",
        "Through Satellites",
    ];
    fn cells(&self) -> Vec<String> {
        vec![
            self.virtual_account.clone(),
            self.tag.clone(),
            self.available.to_string(),
            self.in_use.to_string(),
            self.shortfall.to_string(),
            self.status.to_string(),
            self.in_use_by_satellite
                .iter()
                .map(|(s, n)| format!("{s}:{n}"))
                .collect::<Vec<_>>()
                .join(" "),
        ]
    }
}

impl Row for ReportSummary {
    const HEADERS: &'static [&'static str] =
        &["ID", "Report", "Created", "Virtual Account", "Summary"];
    fn cells(&self) -> Vec<String> {
        vec![
            self.id.to_string(),
            self.kind.clone(),
            self.created_at.clone(),
            self.virtual_account
                .clone()
                .unwrap_or_else(|| "(all)".into()),
            self.summary.clone(),
        ]
    }
}

impl Row for Event {
    const HEADERS: &'static [&'static str] =
        &["Time", "Kind", "Severity", "Virtual Account", "Message"];
    fn cells(&self) -> Vec<String> {
        vec![
            self.at.clone(),
            self.kind.clone(),
            self.severity.clone(),
            self.virtual_account.clone().unwrap_or_default(),
            self.message.clone(),
        ]
    }
}

impl Row for Statistics {
    const HEADERS: &'static [&'static str] = &[
        "Profile",
        "Msg Subtype",
        "Success",
        "Failed",
        "Inqueue",
        "Dropped",
        "Last-sent (UTC)",
    ];
    fn cells(&self) -> Vec<String> {
        vec![
            self.profile.clone(),
            self.message_type.clone(),
            self.success.to_string(),
            self.failed.to_string(),
            self.inqueue.to_string(),
            self.dropped.to_string(),
            self.last_sent.clone().unwrap_or_else(|| "-".into()),
        ]
    }
}
