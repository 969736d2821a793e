//! Compliance reports (seed: Periodic Record, Manual Record, Compliance
//! Warning Report): stored as JSON, shown as text, JSON or CSV.

use super::catalog::Catalog;
use super::compliance::{self, ComplianceRow};
use super::rules;
use crate::clock::rfc3339;
use crate::error::{Error, Result};
use crate::store::Db;
use crate::store::{accounts, instances, usage};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ReportKind {
    #[serde(rename = "Periodic Record")]
    Periodic,
    #[serde(rename = "Manual Record")]
    Manual,
    #[serde(rename = "Compliance Warning Report")]
    ComplianceWarning,
}

impl ReportKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Periodic => "Periodic Record",
            Self::Manual => "Manual Record",
            Self::ComplianceWarning => "Compliance Warning Report",
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct InstanceUsage {
    pub udi: String,
    pub hostname: Option<String>,
    pub virtual_account: String,
    pub status: String,
    pub entitlements: Vec<EntitlementUsage>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EntitlementUsage {
    pub tag: String,
    pub count: i64,
    pub status: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ReportRow {
    pub virtual_account: String,
    pub tag: String,
    pub available: i64,
    pub in_use: i64,
    pub shortfall: i64,
    pub status: String,
}

impl From<ComplianceRow> for ReportRow {
    fn from(r: ComplianceRow) -> Self {
        Self {
            virtual_account: r.virtual_account,
            tag: r.tag,
            available: r.available,
            in_use: r.in_use,
            shortfall: r.shortfall,
            status: r.status.to_string(),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Report {
    pub id: i64,
    pub kind: ReportKind,
    pub created_at: String,
    pub account: String,
    pub virtual_account: Option<String>,
    pub compliance: Vec<ReportRow>,
    /// Inventory: empty in a Compliance Warning Report (shortfalls only).
    /// At most [`REPORT_INSTANCES`] are listed (see `instances_total`).
    pub product_instances: Vec<InstanceUsage>,
    /// How many product instances the report covers, when that is more
    /// than it lists (a stored report stays bounded at any site size; the
    /// whole inventory is `satellite instance list` and the usage bundle).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instances_total: Option<i64>,
}

/// The most product instances a report lists one by one. Above it a report
/// holds its pools (what compliance is) and the instance count: a Periodic
/// Record of a million instances would be hundreds of MB, built and stored
/// every month and carried upstream.
pub const REPORT_INSTANCES: usize = 1_000;

#[derive(Debug, Clone, Serialize)]
pub struct ReportSummary {
    pub id: i64,
    pub kind: String,
    pub created_at: String,
    pub virtual_account: Option<String>,
    pub summary: String,
}

/// Builds and stores a report of one account (or one of its virtual
/// accounts); returns its id.
pub fn generate(
    c: &Db,
    catalog: &Catalog,
    kind: ReportKind,
    account: &str,
    virtual_account: Option<&str>,
    now: i64,
) -> Result<i64> {
    build(c, catalog, kind, account, virtual_account, now).map(|r| r.id)
}

/// Builds and stores a report; returns it as stored.
pub fn build(
    c: &Db,
    catalog: &Catalog,
    kind: ReportKind,
    account: &str,
    virtual_account: Option<&str>,
    now: i64,
) -> Result<Report> {
    let composed = compose(c, catalog, kind, account, virtual_account, now)?;
    store(c, composed)
}

/// A report built from what `c` reads, not yet stored: a read snapshot
/// will do, so the jobs build the Periodic Record without holding the
/// writer and store it in a short write.
#[derive(Debug, Clone)]
pub struct Composed {
    report: Report,
    summary: String,
    now: i64,
}

pub fn compose(
    c: &Db,
    catalog: &Catalog,
    kind: ReportKind,
    account: &str,
    virtual_account: Option<&str>,
    now: i64,
) -> Result<Composed> {
    let mut rows: Vec<ReportRow> = compliance::rows(c, catalog, account, virtual_account, now)?
        .into_iter()
        .map(ReportRow::from)
        .collect();
    let mut inventory = Vec::new();
    let mut total = 0;
    if kind == ReportKind::ComplianceWarning {
        rows.retain(|r| r.shortfall > 0);
    } else {
        total = instances::count(c, account, virtual_account)?;
        for instance in instances::list_first(c, account, virtual_account, REPORT_INSTANCES)? {
            let entitlements = usage::of_instance(c, instance.id)?
                .into_iter()
                .map(|(tag, count, status)| EntitlementUsage { tag, count, status })
                .collect();
            inventory.push(InstanceUsage {
                udi: instance.udi().to_string(),
                hostname: instance.hostname.clone(),
                virtual_account: instance.virtual_account.clone(),
                status: instance.status(now).to_string(),
                entitlements,
            });
        }
    }
    let short: i64 = rows.iter().map(|r| r.shortfall).sum();
    let summary = match kind {
        ReportKind::ComplianceWarning => {
            format!("{} pool(s) short by {short} unit(s) in total", rows.len())
        }
        _ => format!(
            "{} pool(s), {} product instance(s), {}",
            rows.len(),
            total,
            if short > 0 {
                format!("short by {short} unit(s)")
            } else {
                "in compliance".into()
            }
        ),
    };
    let instances_total =
        (usize::try_from(total).unwrap_or(usize::MAX) > inventory.len()).then_some(total);
    Ok(Composed {
        report: Report {
            id: 0,
            kind,
            created_at: rfc3339(now),
            account: account.to_string(),
            virtual_account: virtual_account.map(str::to_string),
            compliance: rows,
            product_instances: inventory,
            instances_total,
        },
        summary,
        now,
    })
}

/// Stores a composed report; returns it as stored (with its id).
pub fn store(c: &Db, composed: Composed) -> Result<Report> {
    let Composed {
        mut report,
        summary,
        now,
    } = composed;
    let virtual_account = report.virtual_account.clone();
    report.id = crate::store::reports::insert(
        c,
        report.kind.as_str(),
        virtual_account.as_deref(),
        &summary,
        now,
        |id| {
            report.id = id;
            serde_json::to_string(&report).map_err(|e| Error::invalid("report", e.to_string()))
        },
    )?;
    Ok(report)
}

pub fn list(c: &Db, limit: u32) -> Result<Vec<ReportSummary>> {
    Ok(crate::store::reports::list(c, limit)?
        .into_iter()
        .map(
            |(id, kind, created_at, virtual_account, summary)| ReportSummary {
                id,
                kind,
                created_at: rfc3339(created_at),
                virtual_account,
                summary,
            },
        )
        .collect())
}

pub fn load(c: &Db, id: i64) -> Result<Report> {
    let body = crate::store::reports::body(c, id)?
        .ok_or_else(|| Error::NotFound(format!("no report {id}; see `satellite report list`")))?;
    serde_json::from_str(&body)
        .map_err(|e| Error::invalid("report", format!("stored report {id} is unreadable: {e}")))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Text,
    Json,
    Csv,
}

pub fn render(report: &Report, format: Format) -> String {
    match format {
        Format::Json => serde_json::to_string_pretty(report).unwrap_or_default(),
        Format::Csv => csv(report),
        Format::Text => text(report),
    }
}

/// A text cell, quoted when it must be. A cell a spreadsheet would run as
/// a formula (a router chooses its own hostname) gets a leading `'`, the
/// usual neutraliser, so it reads as text.
fn csv_field(value: &str) -> String {
    let value = if value.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{value}")
    } else {
        value.to_string()
    };
    if value.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", value.replace('"', "\"\""))
    } else {
        value
    }
}

fn csv(report: &Report) -> String {
    let mut out = String::from("virtual_account,tag,available,in_use,shortfall,status\n");
    for r in &report.compliance {
        out.push_str(&format!(
            "{},{},{},{},{},{}\n",
            csv_field(&r.virtual_account),
            csv_field(&r.tag),
            r.available,
            r.in_use,
            r.shortfall,
            csv_field(&r.status)
        ));
    }
    if !report.product_instances.is_empty() {
        out.push_str("\nudi,hostname,virtual_account,instance_status,tag,count,status\n");
        for i in &report.product_instances {
            for e in &i.entitlements {
                out.push_str(&format!(
                    "{},{},{},{},{},{},{}\n",
                    csv_field(&i.udi),
                    csv_field(i.hostname.as_deref().unwrap_or("")),
                    csv_field(&i.virtual_account),
                    i.status,
                    csv_field(&e.tag),
                    e.count,
                    e.status
                ));
            }
        }
    }
    out
}

fn text(report: &Report) -> String {
    let mut out = format!(
        "{} #{}\nSmart Account: {}\nVirtual Account: {}\nGenerated: {}\n\n",
        report.kind.as_str(),
        report.id,
        report.account,
        report.virtual_account.as_deref().unwrap_or("(all)"),
        report.created_at
    );
    // Columns as wide as their widest cell, two spaces apart: a long virtual
    // account or tag name never runs into the next column.
    let header = [
        "Virtual Account",
        "Entitlement Tag",
        "Available",
        "In Use",
        "Shortfall",
        "Status",
    ];
    let cells: Vec<[String; 6]> = report
        .compliance
        .iter()
        .map(|r| {
            [
                r.virtual_account.clone(),
                r.tag.clone(),
                r.available.to_string(),
                r.in_use.to_string(),
                r.shortfall.to_string(),
                r.status.clone(),
            ]
        })
        .collect();
    let mut widths = header.map(str::len);
    for row in &cells {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |row: [&str; 6]| {
        format!(
            "{:<w0$}  {:<w1$}  {:>w2$}  {:>w3$}  {:>w4$}  {}\n",
            row[0],
            row[1],
            row[2],
            row[3],
            row[4],
            row[5],
            w0 = widths[0],
            w1 = widths[1],
            w2 = widths[2],
            w3 = widths[3],
            w4 = widths[4],
        )
    };
    out.push_str(&line(header));
    for row in &cells {
        out.push_str(&line(row.each_ref().map(String::as_str)));
    }
    if report.compliance.is_empty() {
        out.push_str("(no pools)\n");
    }
    if let Some(total) = report.instances_total {
        out.push_str(&format!(
            "\nProduct Instances: {total} (the first {} are listed; `satellite instance list` lists all)\n",
            report.product_instances.len()
        ));
    } else if !report.product_instances.is_empty() {
        out.push_str("\nProduct Instances:\n");
    }
    if !report.product_instances.is_empty() {
        for i in &report.product_instances {
            out.push_str(&format!(
                "  {} {} [{}] {}\n",
                i.udi,
                i.hostname.as_deref().unwrap_or("-"),
                i.virtual_account,
                i.status
            ));
            for e in &i.entitlements {
                out.push_str(&format!("    {} x{} {}\n", e.tag, e.count, e.status));
            }
        }
    }
    out
}

/// Records today's usage per pool (usage trends); keeps 450 days.
pub fn snapshot_usage(c: &Db, catalog: &Catalog, account: &str, now: i64) -> Result<usize> {
    let day = time::OffsetDateTime::from_unix_timestamp(now)
        .map(|t| t.date().to_string())
        .unwrap_or_default();
    let mut n = 0;
    for (va_id, _) in accounts::ids(c, account)? {
        for tag in usage::pools_of(c, va_id)? {
            let state = compliance::state(c, catalog, va_id, &tag, now)?;
            crate::store::reports::snapshot(c, &day, va_id, &tag, state.in_use, state.available)?;
            n += 1;
        }
    }
    let oldest = time::OffsetDateTime::from_unix_timestamp(now - 450 * rules::DAY)
        .map(|t| t.date().to_string())
        .unwrap_or_default();
    crate::store::reports::forget_history_before(c, &oldest)?;
    Ok(n)
}

/// One day of one pool, from the daily snapshots (usage trends).
#[derive(Debug, Clone, Serialize)]
pub struct UsageDay {
    pub day: String,
    pub virtual_account: String,
    pub tag: String,
    pub available: i64,
    pub in_use: i64,
}

pub fn usage_history(
    c: &Db,
    account: &str,
    virtual_account: Option<&str>,
    days: u32,
    now: i64,
) -> Result<Vec<UsageDay>> {
    let since = time::OffsetDateTime::from_unix_timestamp(now - i64::from(days) * rules::DAY)
        .map(|t| t.date().to_string())
        .unwrap_or_default();
    Ok(
        crate::store::reports::history(c, account, virtual_account, &since)?
            .into_iter()
            .map(|(day, virtual_account, tag, available, in_use)| UsageDay {
                day,
                virtual_account,
                tag,
                available,
                in_use,
            })
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::csv_field;

    #[test]
    fn formulas_from_devices_are_text_in_a_spreadsheet() {
        assert_eq!(csv_field("=HYPERLINK(\"x\")"), "\"'=HYPERLINK(\"\"x\"\")\"");
        assert_eq!(csv_field("@SUM(A1)"), "'@SUM(A1)");
        assert_eq!(csv_field("-2+3"), "'-2+3");
        assert_eq!(csv_field("router-1"), "router-1");
        assert_eq!(csv_field("a,b"), "\"a,b\"");
    }
}
