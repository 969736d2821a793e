//! An alert's body in a profile's format: short text, long text, or the
//! AML XML envelope of Cisco's Call Home.

use super::{category_name, Alert};
use crate::config::CallHomeFormat;
use serde::Serialize;

/// The message body in the profile's format, and its content type.
pub(super) fn render(
    format: CallHomeFormat,
    node: &str,
    alert: &Alert,
    to: &str,
) -> (&'static str, String) {
    let time = alert
        .at
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default();
    match format {
        CallHomeFormat::ShortText => (
            "text/plain; charset=utf-8",
            format!(
                "{time} {} {} {}: {}",
                node, alert.severity, alert.message_type, alert.summary
            ),
        ),
        CallHomeFormat::FullText => (
            "text/plain; charset=utf-8",
            format!(
                "Call Home message from satellite {}\nTime: {time}\nCategory: {:?}\nMessage Type: {}\nSeverity: {}\nSummary: {}\n\n{}\n",
                node, alert.category, alert.message_type, alert.severity, alert.summary, alert.detail
            ),
        ),
        CallHomeFormat::Xml => {
            #[derive(Serialize)]
            struct Payload<'a> {
                r#type: &'static str,
                satellite: &'a str,
                time: &'a str,
                category: String,
                message_type: &'a str,
                severity: &'a str,
                summary: &'a str,
                detail: &'a str,
            }
            let payload = serde_json::to_string(&Payload {
                r#type: "ALERT",
                satellite: node,
                time: &time,
                category: category_name(alert.category).to_string(),
                message_type: &alert.message_type,
                severity: alert.severity,
                summary: &alert.summary,
                detail: &alert.detail,
            })
            .unwrap_or_default();
            let id = uuid::Uuid::new_v4().to_string();
            (
                super::callhome::CONTENT_TYPE,
                super::callhome::wrap(&payload, to, &id, node, alert.at),
            )
        }
    }
}
