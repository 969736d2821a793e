//! The `show` commands, rendered from the state and the time alone: no
//! traffic, no changes. Layouts follow REFERENCE.md.

use super::eval::format_remaining;
use super::fcm::{self, Counts};
use super::state::{Attempt, State};
use super::times;
use serde_json::{json, Value};
use std::fmt::Write as _;
use time::OffsetDateTime;

pub const AGENT_VERSION: &str = "5.0.6_rel/47";

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// `May 10 16:39:56 2023 UTC`. A time that cannot be shown in UTC (out of
/// range, refused on input anyway) keeps its own offset rather than panic.
pub fn date(t: OffsetDateTime) -> String {
    let t = times::utc(t);
    let zone = if t.offset().is_utc() {
        "UTC".to_string()
    } else {
        t.offset().to_string()
    };
    format!(
        "{} {:02} {:02}:{:02}:{:02} {} {zone}",
        MONTHS[usize::from(u8::from(t.month())) - 1],
        t.day(),
        t.hour(),
        t.minute(),
        t.second(),
        t.year()
    )
}

pub use super::times::stat_time;

fn rfc3339(t: OffsetDateTime) -> String {
    crate::clock::rfc3339(t.unix_timestamp())
}

/// The server's `OUT_OF_COMPLIANCE` as the device prints it.
pub fn words(status: &str) -> String {
    status.replace('_', " ").to_ascii_uppercase()
}

/// The License Authorization state, derived at `now`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthView {
    Eval {
        remaining: time::Duration,
    },
    EvalExpired {
        at: Option<OffsetDateTime>,
    },
    /// `no license smart enable`: the agent is off.
    Disabled,
    /// Registered, no authorization answer yet.
    Waiting,
    /// Past the communication deadline: the grace period runs until `grace_end`.
    Expired {
        deadline: OffsetDateTime,
        grace_end: OffsetDateTime,
    },
    GraceExpired {
        at: OffsetDateTime,
    },
    Current {
        status: String,
        at: OffsetDateTime,
    },
}

/// After the communication deadline, 90 more days of grace (DESIGN §5).
pub const GRACE_PERIOD: time::Duration = time::Duration::days(90);

pub fn auth_view(state: &State, now: OffsetDateTime) -> AuthView {
    if !state.enabled {
        return AuthView::Disabled;
    }
    if !state.is_registered() {
        return if state.eval.is_expired() {
            AuthView::EvalExpired {
                at: state.eval.expired_at,
            }
        } else {
            AuthView::Eval {
                remaining: state.eval.remaining(),
            }
        };
    }
    match &state.authorization {
        None => AuthView::Waiting,
        Some(a) if now >= a.deadline => {
            // Stored deadlines are range-checked, so this only saturates
            // at the end of the calendar.
            let grace_end = a.deadline.checked_add(GRACE_PERIOD).unwrap_or(a.deadline);
            if now >= grace_end {
                AuthView::GraceExpired { at: grace_end }
            } else {
                AuthView::Expired {
                    deadline: a.deadline,
                    grace_end,
                }
            }
        }
        Some(a) => AuthView::Current {
            status: words(&a.status),
            at: a.authorized_at,
        },
    }
}

impl AuthView {
    pub fn line(&self) -> String {
        match self {
            AuthView::Eval { .. } => "EVAL MODE".into(),
            AuthView::EvalExpired { at: Some(at) } => {
                format!("EVALUATION PERIOD EXPIRED on {}", date(*at))
            }
            AuthView::EvalExpired { at: None } => "EVALUATION PERIOD EXPIRED".into(),
            AuthView::Disabled => "DISABLED".into(),
            AuthView::Waiting => "WAITING".into(),
            AuthView::Expired { deadline, .. } => {
                format!("AUTHORIZATION EXPIRED on {}", date(*deadline))
            }
            AuthView::GraceExpired { at } => format!("GRACE PERIOD EXPIRED on {}", date(*at)),
            AuthView::Current { status, at } => format!("{status} on {}", date(*at)),
        }
    }

    /// The bare word, for tables and JSON.
    pub fn word(&self) -> String {
        match self {
            AuthView::Eval { .. } => "EVAL MODE".into(),
            AuthView::EvalExpired { .. } => "EVALUATION PERIOD EXPIRED".into(),
            AuthView::Disabled => "DISABLED".into(),
            AuthView::Waiting => "WAITING".into(),
            AuthView::Expired { .. } => "AUTHORIZATION EXPIRED".into(),
            AuthView::GraceExpired { .. } => "GRACE PERIOD EXPIRED".into(),
            AuthView::Current { status, .. } => status.clone(),
        }
    }
}

fn attempt(a: &Option<Attempt>) -> String {
    match a {
        None => "None".into(),
        Some(a) if a.succeeded => format!("SUCCEEDED on {}", date(a.at)),
        Some(a) => format!("FAILED on {}", date(a.at)),
    }
}

fn failure_reason(out: &mut String, a: &Option<Attempt>) {
    if let Some(Attempt {
        succeeded: false,
        reason: Some(reason),
        ..
    }) = a
    {
        let _ = writeln!(out, "    Failure reason: {reason}");
    }
}

fn registration_section(state: &State) -> String {
    let mut out = String::from("Registration:\n");
    match &state.registration {
        None => {
            out.push_str("  Status: UNREGISTERED\n");
            if let Some(f) = &state.last_registration_failure {
                let _ = writeln!(out, "  Last Registration Attempt: FAILED on {}", date(f.at));
                failure_reason(&mut out, &state.last_registration_failure);
            }
        }
        Some(r) => {
            let _ = write!(
                out,
                "  Status: REGISTERED\n  Smart Account: {}\n  Virtual Account: {}\n  \
                 Export-Controlled Functionality: {}\n  Initial Registration: SUCCEEDED on {}\n  \
                 Last Renewal Attempt: {}\n",
                r.account,
                r.virtual_account,
                export_controlled(r.export_controlled),
                date(r.initial),
                attempt(&r.last_renewal)
            );
            failure_reason(&mut out, &r.last_renewal);
            let _ = write!(
                out,
                "  Next Renewal Attempt: {}\n  Registration Expires: {}\n",
                date(r.next_renewal),
                date(r.expires)
            );
        }
    }
    out
}

/// `Export-Controlled Functionality:` as the token decided it.
pub fn export_controlled(allowed: Option<bool>) -> &'static str {
    if allowed.unwrap_or(true) {
        "ALLOWED"
    } else {
        "NOT ALLOWED"
    }
}

fn smart_licensing(state: &State) -> &'static str {
    if state.enabled {
        "Smart Licensing is ENABLED"
    } else {
        "Smart Licensing is DISABLED"
    }
}

fn authorization_section(state: &State, now: OffsetDateTime) -> String {
    let view = auth_view(state, now);
    let mut out = format!("License Authorization:\n  Status: {}\n", view.line());
    if let AuthView::Expired { grace_end, .. } = &view {
        let _ = writeln!(
            out,
            "  Grace Period Remaining: {}",
            format_remaining(*grace_end - now)
        );
    }
    match &view {
        AuthView::Eval { remaining } => {
            let _ = writeln!(
                out,
                "  Evaluation Period Remaining: {}",
                format_remaining(*remaining)
            );
        }
        AuthView::EvalExpired { .. } | AuthView::Disabled => {}
        _ => {
            let _ = writeln!(
                out,
                "  Last Communication Attempt: {}",
                attempt(&state.last_communication)
            );
            failure_reason(&mut out, &state.last_communication);
            let (next, deadline) = match &state.authorization {
                Some(a) => (date(a.next_communication), date(a.deadline)),
                None => ("None".into(), "None".into()),
            };
            let _ = write!(
                out,
                "  Next Communication Attempt: {next}\n  Communication Deadline: {deadline}\n"
            );
        }
    }
    out
}

/// `show license status`.
pub fn status(state: &State, now: OffsetDateTime) -> String {
    format!(
        "{}\n\n{}\n{}",
        smart_licensing(state),
        registration_section(state),
        authorization_section(state, now)
    )
}

/// One entitlement in use, as the device sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Usage {
    pub tag: String,
    pub name: String,
    pub description: String,
    pub count: u32,
    pub status: String,
}

/// Everything in use with its per-entitlement status.
pub fn usage(state: &State, now: OffsetDateTime) -> Vec<Usage> {
    let view = auth_view(state, now);
    state
        .demand()
        .into_iter()
        .map(|(tag, count)| {
            let status = match (&view, &state.authorization) {
                (AuthView::Current { .. }, Some(a)) => a
                    .entitlements
                    .iter()
                    .find(|e| e.tag == tag && e.count == count)
                    .map(|e| words(&e.status))
                    // Not reported yet at this count: the device waits for it.
                    .unwrap_or_else(|| "WAITING".into()),
                _ => view.word(),
            };
            let name = fcm::platform_name(&tag, &state.udi.pid);
            let description = fcm::description(&tag)
                .map(String::from)
                .unwrap_or_else(|| name.clone());
            Usage {
                tag,
                name,
                description,
                count,
                status,
            }
        })
        .collect()
}

/// `show license all`.
pub fn all(state: &State, now: OffsetDateTime) -> String {
    let mut out = status(state, now);
    out.push_str("\nLicense Usage:\n");
    let rows = usage(state, now);
    if rows.is_empty() {
        out.push_str("  No licenses in use\n");
    }
    for u in rows {
        let _ = write!(
            out,
            "\n{} ({}):\n  Description: {}\n  Count: {}\n  Version: 1.0\n  Status: {}\n  Export status: NOT RESTRICTED\n",
            u.name, u.tag, u.description, u.count, u.status
        );
    }
    let _ = write!(
        out,
        "\nProduct Information:\n  UDI: {}\n\nAgent Version:\n  Smart Agent for Licensing: {AGENT_VERSION}\n",
        state.udi
    );
    out
}

/// `show license udi`.
pub fn udi(state: &State) -> String {
    let u = &state.udi;
    let key = u.key();
    format!(
        "{:<8}{:<20}{:<16}{}\n{}\n{:<8}{:<20}{:<16}{}\n\nUDI: {}\n",
        "SlotID",
        "PID",
        "SN",
        "UDI",
        "-".repeat(72),
        "0",
        u.pid,
        u.sn,
        key,
        u
    )
}

/// `show license summary`.
pub fn summary(state: &State, now: OffsetDateTime) -> String {
    let reg = if state.is_registered() {
        "REGISTERED"
    } else {
        "UNREGISTERED"
    };
    let mut out = format!(
        "{}\n\nRegistration:\n  Status: {reg}\n\nLicense Authorization:\n  Status: {}\n\nLicense Usage:\n",
        smart_licensing(state),
        auth_view(state, now).line()
    );
    let rows = usage(state, now);
    let width = rows.iter().map(|u| u.name.len()).max().unwrap_or(0).max(7);
    let tag_width = rows.iter().map(|u| u.tag.len()).max().unwrap_or(0).max(15);
    let _ = writeln!(
        out,
        "  {:<width$}  {:<tag_width$}  {:>5}  Status",
        "License", "Entitlement Tag", "Count"
    );
    let _ = writeln!(out, "  {}", "-".repeat(width + tag_width + 21));
    for u in &rows {
        let _ = writeln!(
            out,
            "  {:<width$}  {:<tag_width$}  {:>5}  {}",
            u.name, u.tag, u.count, u.status
        );
    }
    if rows.is_empty() {
        out.push_str("  No licenses in use\n");
    }
    out
}

/// What the configuration implies now, and what was last collected.
pub fn platform_counts(state: &State) -> (Counts, Counts) {
    if !state.fcm.enabled {
        return (Counts::default(), Counts::default());
    }
    let next = fcm::count(state.fcm.ports.values());
    (state.fcm.current.unwrap_or_default(), next)
}

fn collection(state: &State) -> (String, String) {
    let last = state
        .fcm
        .last_check
        .map(date)
        .unwrap_or_else(|| "None".into());
    let next = if state.fcm.enabled {
        next_collection(state)
            .map(date)
            .unwrap_or_else(|| "None".into())
    } else {
        "None".into()
    };
    (last, next)
}

/// When the daily Flexible Consumption check is due (`None` also when the
/// day after would leave the calendar: such a check never comes).
pub fn next_collection(state: &State) -> Option<OffsetDateTime> {
    state
        .fcm
        .last_check
        .or(state.fcm.enabled_at)
        .and_then(|t| t.checked_add(time::Duration::days(1)))
}

fn sia_status(state: &State, now: OffsetDateTime) -> &'static str {
    let out = usage(state, now)
        .iter()
        .any(|u| fcm::is_sia(&u.tag) && u.status == "OUT OF COMPLIANCE")
        || matches!(
            auth_view(state, now),
            AuthView::EvalExpired { .. } | AuthView::GraceExpired { .. }
        );
    if out {
        "Out of Compliance"
    } else {
        "In Compliance"
    }
}

/// `show license platform summary`.
pub fn platform_summary(state: &State, now: OffsetDateTime) -> String {
    let reg = if state.is_registered() {
        "REGISTERED"
    } else {
        "UNREGISTERED"
    };
    let (last, next) = collection(state);
    let model = if state.fcm.enabled {
        "Flexible Consumption"
    } else {
        "Generic"
    };
    let mut out = format!(
        "Registration Status: {reg}\nLicensing Model: {model}\nCollection: LAST: {last} NEXT: {next}\n\n"
    );
    // (Feature/Area, entitlement, last, next); the tracking row has no
    // area: its name starts in that column, as on the device (REFERENCE.md).
    let mut rows: Vec<(Option<&str>, String, u32, u32)> = Vec::new();
    if state.fcm.enabled {
        let (current, upcoming) = platform_counts(state);
        for ((tag, last), (_, next)) in current.rows().into_iter().zip(upcoming.rows()) {
            let area = (tag != fcm::TRACKING).then_some("FCM");
            rows.push((area, fcm::platform_name(tag, &state.udi.pid), last, next));
        }
    }
    for (tag, n) in &state.requests {
        rows.push((
            Some("Generic"),
            fcm::platform_name(tag, &state.udi.pid),
            *n,
            *n,
        ));
    }
    const AREA: usize = 12;
    let width = rows.iter().map(|r| r.1.len()).max().unwrap_or(0).max(11);
    let _ = writeln!(
        out,
        "{:<AREA$}  {:<width$}  {:>5}  {:>5}",
        "Feature/Area", "Entitlement", "Last", "Next"
    );
    let _ = writeln!(
        out,
        "{}  {}  =====  =====",
        "=".repeat(AREA),
        "=".repeat(width)
    );
    for (area, name, last, next) in &rows {
        let _ = match area {
            Some(area) => writeln!(out, "{area:<AREA$}  {name:<width$}  {last:>5}  {next:>5}"),
            None => {
                let both = AREA + 2 + width;
                writeln!(out, "{name:<both$}  {last:>5}  {next:>5}")
            }
        };
    }
    if rows.is_empty() {
        out.push_str("No licenses in use\n");
    }
    let _ = writeln!(out, "\nSIA Status: {}", sia_status(state, now));
    out
}

/// `show license platform detail`.
pub fn platform_detail(state: &State, now: OffsetDateTime) -> String {
    let (last, next) = collection(state);
    let mut out = if state.fcm.enabled {
        format!("Licensing Model: Flexible Consumption\nCollection: LAST: {last} NEXT: {next}\n")
    } else {
        "Licensing Model: Generic (Flexible Consumption is disabled; enable it with `license smart flexible-consumption enable`)\n".to_string()
    };
    let entry = |out: &mut String, tag: &str, current: u32, next: u32| {
        let _ = write!(
            out,
            "\nEntitlement: {}\n  SKU/Tag: {tag}\n  Description: {}\n  Current Count: {current}\n  Next Count: {next}\n",
            fcm::platform_name(tag, &state.udi.pid),
            fcm::description(tag).unwrap_or(tag),
        );
    };
    if state.fcm.enabled {
        let (current, upcoming) = platform_counts(state);
        for ((tag, c), (_, n)) in current.rows().into_iter().zip(upcoming.rows()) {
            entry(&mut out, tag, c, n);
        }
        let active = state.fcm.ports.values().filter(|p| !p.shutdown).count();
        let advanced = state
            .fcm
            .ports
            .values()
            .filter(|p| !p.shutdown && p.is_advanced())
            .count();
        let _ = writeln!(
            out,
            "\nPorts: {} configured, {active} active, {advanced} with advanced features",
            state.fcm.ports.len()
        );
    }
    for (tag, n) in &state.requests {
        entry(&mut out, tag, *n, *n);
    }
    let _ = writeln!(out, "\nSIA Status: {}", sia_status(state, now));
    out
}

/// `show interfaces`: the port configuration Flexible Consumption reads.
pub fn interfaces(state: &State) -> String {
    let mut out = format!(
        "{:<28}{:<7}{:<6}{:<7}{}\n",
        "Interface", "Speed", "State", "Units", "Features"
    );
    for (name, p) in &state.fcm.ports {
        let features: Vec<&str> = p.features.iter().map(String::as_str).collect();
        let _ = writeln!(
            out,
            "{:<28}{:<7}{:<6}{:<7}{}",
            name,
            p.speed.label(),
            if p.shutdown { "down" } else { "up" },
            p.speed.units(),
            features.join(",")
        );
    }
    if state.fcm.ports.is_empty() {
        out.push_str("No interfaces configured\n");
    }
    out
}

fn attempt_json(a: &Option<Attempt>) -> Value {
    match a {
        None => Value::Null,
        Some(a) => json!({"at": rfc3339(a.at), "succeeded": a.succeeded, "reason": a.reason}),
    }
}

fn counts_json(c: &Counts) -> Value {
    Value::Object(
        c.rows()
            .into_iter()
            .map(|(tag, n)| (tag.to_string(), json!(n)))
            .collect(),
    )
}

/// The machine-readable view behind every `show license` command.
pub fn status_json(state: &State, now: OffsetDateTime) -> Value {
    let view = auth_view(state, now);
    let registration = match &state.registration {
        None => json!({"status": "UNREGISTERED",
            "last_failure": attempt_json(&state.last_registration_failure)}),
        Some(r) => json!({
            "status": "REGISTERED", "account": r.account, "virtual_account": r.virtual_account,
            "instance_id": r.instance_id, "initial": rfc3339(r.initial),
            "next_renewal": rfc3339(r.next_renewal), "expires": rfc3339(r.expires),
            "last_renewal": attempt_json(&r.last_renewal),
            "export_controlled": export_controlled(r.export_controlled),
        }),
    };
    let mut authorization = json!({
        "status": view.word(),
        "line": view.line(),
        "last_communication": attempt_json(&state.last_communication),
    });
    if let Some(a) = &state.authorization {
        authorization["authorized_at"] = json!(rfc3339(a.authorized_at));
        authorization["next_communication"] = json!(rfc3339(a.next_communication));
        authorization["deadline"] = json!(rfc3339(a.deadline));
    }
    if let AuthView::Expired { grace_end, .. } | AuthView::GraceExpired { at: grace_end } = &view {
        authorization["grace_period_ends"] = json!(rfc3339(*grace_end));
    }
    if !state.is_registered() {
        authorization["evaluation_remaining_seconds"] =
            json!(state.eval.remaining().whole_seconds());
    }
    let (current, next) = platform_counts(state);
    json!({
        "smart_licensing": if state.enabled { "ENABLED" } else { "DISABLED" },
        "udi": {"pid": state.udi.pid, "sn": state.udi.sn, "text": state.udi.to_string()},
        "hostname": state.hostname,
        "registration": registration,
        "authorization": authorization,
        "entitlements": usage(state, now).into_iter().map(|u| json!({
            "tag": u.tag, "name": u.name, "description": u.description,
            "count": u.count, "status": u.status})).collect::<Vec<_>>(),
        "flexible_consumption": {
            "enabled": state.fcm.enabled,
            "last_check": state.fcm.last_check.map(rfc3339),
            "next_check": if state.fcm.enabled { next_collection(state).map(rfc3339) } else { None },
            "current": counts_json(&current),
            "next": counts_json(&next),
            "ports": state.fcm.ports.len(),
            "sia_status": sia_status(state, now),
        },
        "statistics": state.stats,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::router::fcm::{Port, Speed};
    use crate::router::state::tests::sample;
    use crate::router::state::{Authorization, Registration, TagStatus};
    use time::macros::datetime;
    use time::Duration;

    fn registered() -> State {
        let mut s = sample();
        s.registration = Some(Registration {
            certificate_pem: String::new(),
            ca_certificate_pem: String::new(),
            instance_id: "i-1".into(),
            account: "Example Corp".into(),
            virtual_account: "Default".into(),
            initial: datetime!(2023-05-10 16:39:56 UTC),
            next_renewal: datetime!(2023-11-06 16:39:56 UTC),
            expires: datetime!(2024-05-09 15:40:46 UTC),
            last_renewal: None,
            export_controlled: None,
        });
        s.authorization = Some(Authorization {
            status: "AUTHORIZED".into(),
            authorized_at: datetime!(2023-05-10 16:40:00 UTC),
            next_communication: datetime!(2023-06-09 16:40:00 UTC),
            deadline: datetime!(2023-08-08 15:40:51 UTC),
            entitlements: vec![TagStatus {
                tag: "ESS-AC-10G-RTU-1".into(),
                count: 2,
                status: "AUTHORIZED".into(),
            }],
        });
        s.last_communication = Some(Attempt::ok(datetime!(2023-05-10 16:40:00 UTC)));
        s.requests.insert("ESS-AC-10G-RTU-1".into(), 2);
        s
    }

    #[test]
    fn out_of_range_times_render_without_panicking() {
        let edge = datetime!(9999-12-31 23:59:59 -23:59);
        assert_eq!(date(edge), "Dec 31 23:59:59 9999 -23:59:00");
        assert_eq!(stat_time(edge), "9999-12-31 23:59:59");
        let mut s = sample();
        s.fcm.enabled = true;
        s.fcm.last_check = Some(datetime!(9999-12-31 12:00 UTC));
        assert_eq!(next_collection(&s), None);
        assert!(platform_summary(&s, datetime!(2030-01-01 0:00 UTC)).contains("NEXT: None"));
    }

    #[test]
    fn dates_look_like_ios() {
        assert_eq!(
            date(datetime!(2023-05-10 16:39:56 UTC)),
            "May 10 16:39:56 2023 UTC"
        );
        assert_eq!(
            date(datetime!(2023-11-06 06:09:05 +02:00)),
            "Nov 06 04:09:05 2023 UTC"
        );
        assert_eq!(
            stat_time(datetime!(2014-04-24 18:24:34 UTC)),
            "2014-04-24 18:24:34"
        );
    }

    #[test]
    fn registered_and_authorized_status_matches_the_reference() {
        let now = datetime!(2023-05-11 00:00 UTC);
        let expected = "\
Smart Licensing is ENABLED

Registration:
  Status: REGISTERED
  Smart Account: Example Corp
  Virtual Account: Default
  Export-Controlled Functionality: ALLOWED
  Initial Registration: SUCCEEDED on May 10 16:39:56 2023 UTC
  Last Renewal Attempt: None
  Next Renewal Attempt: Nov 06 16:39:56 2023 UTC
  Registration Expires: May 09 15:40:46 2024 UTC

License Authorization:
  Status: AUTHORIZED on May 10 16:40:00 2023 UTC
  Last Communication Attempt: SUCCEEDED on May 10 16:40:00 2023 UTC
  Next Communication Attempt: Jun 09 16:40:00 2023 UTC
  Communication Deadline: Aug 08 15:40:51 2023 UTC
";
        assert_eq!(status(&registered(), now), expected);
    }

    #[test]
    fn past_the_deadline_the_authorization_expires() {
        let s = registered();
        let out = status(&s, datetime!(2023-08-09 00:00 UTC));
        assert!(
            out.contains("  Status: AUTHORIZATION EXPIRED on Aug 08 15:40:51 2023 UTC\n"),
            "{out}"
        );
        assert_eq!(
            usage(&s, datetime!(2023-08-09 00:00 UTC))[0].status,
            "AUTHORIZATION EXPIRED"
        );
        // The grace period: 90 days after the deadline.
        assert!(
            out.contains("  Grace Period Remaining: 89 days, 15 hours, 40 minutes, 51 seconds\n"),
            "{out}"
        );
        let out = status(&s, datetime!(2023-11-06 15:40:50 UTC));
        assert!(out.contains("AUTHORIZATION EXPIRED on"), "{out}");
        let after = datetime!(2023-11-06 15:40:51 UTC);
        let out = status(&s, after);
        assert!(
            out.contains("  Status: GRACE PERIOD EXPIRED on Nov 06 15:40:51 2023 UTC\n"),
            "{out}"
        );
        assert!(!out.contains("Grace Period Remaining"), "{out}");
        assert_eq!(usage(&s, after)[0].status, "GRACE PERIOD EXPIRED");
        let json = status_json(&s, after);
        assert_eq!(json["authorization"]["status"], "GRACE PERIOD EXPIRED");
        assert_eq!(
            json["authorization"]["grace_period_ends"],
            "2023-11-06T15:40:51Z"
        );
        assert!(summary(&s, after).contains("GRACE PERIOD EXPIRED"));
    }

    #[test]
    fn disabled_and_export_control_are_shown() {
        let mut s = registered();
        let now = datetime!(2023-05-11 00:00 UTC);
        s.registration.as_mut().unwrap().export_controlled = Some(false);
        assert!(status(&s, now).contains("  Export-Controlled Functionality: NOT ALLOWED\n"));
        s.enabled = false;
        let out = status(&s, now);
        assert!(out.starts_with("Smart Licensing is DISABLED\n"), "{out}");
        assert!(
            out.contains("License Authorization:\n  Status: DISABLED\n"),
            "{out}"
        );
        assert!(summary(&s, now).starts_with("Smart Licensing is DISABLED\n"));
        assert_eq!(status_json(&s, now)["smart_licensing"], "DISABLED");
    }

    #[test]
    fn unregistered_shows_eval_mode_then_expiry() {
        let mut s = sample();
        s.eval.remaining_secs = 46 * 86_400 + 7 * 3_600 + 12 * 60 + 3;
        let now = datetime!(2030-01-01 0:00 UTC);
        let out = status(&s, now);
        assert!(
            out.contains("Registration:\n  Status: UNREGISTERED\n"),
            "{out}"
        );
        assert!(out.contains(
            "License Authorization:\n  Status: EVAL MODE\n  Evaluation Period Remaining: 46 days, 7 hours, 12 minutes, 3 seconds\n"
        ), "{out}");
        s.eval.remaining_secs = 0;
        s.eval.expired_at = Some(datetime!(2029-12-01 10:00 UTC));
        let out = status(&s, now);
        assert!(
            out.contains("  Status: EVALUATION PERIOD EXPIRED on Dec 01 10:00:00 2029 UTC\n"),
            "{out}"
        );
        s.requests.insert("X".into(), 1);
        assert_eq!(usage(&s, now)[0].status, "EVALUATION PERIOD EXPIRED");
    }

    #[test]
    fn all_lists_usage_product_and_agent() {
        let s = registered();
        let out = all(&s, datetime!(2023-05-11 00:00 UTC));
        assert!(out.contains(
            "Access Essentials SW Right-to-Use v1.0 per 10G (ESS-AC-10G-RTU-1):\n  Description: Access Network Essentials Software RTU per 10Gb\n  Count: 2\n  Version: 1.0\n  Status: AUTHORIZED\n  Export status: NOT RESTRICTED\n"
        ), "{out}");
        assert!(out.contains("Product Information:\n  UDI: PID:N540-24Z8Q2C-M,SN:FOC2104R0XX\n"));
        assert!(out.contains("Agent Version:\n  Smart Agent for Licensing: 5.0.6_rel/47\n"));
    }

    #[test]
    fn a_changed_count_waits_for_its_report() {
        let mut s = registered();
        s.requests.insert("ESS-AC-10G-RTU-1".into(), 3);
        assert_eq!(
            usage(&s, datetime!(2023-05-11 00:00 UTC))[0].status,
            "WAITING"
        );
    }

    #[test]
    fn udi_has_table_and_line() {
        let out = udi(&sample());
        assert!(out.starts_with("SlotID  PID"), "{out}");
        assert!(out.contains("N540-24Z8Q2C-M:FOC2104R0XX"));
        assert!(out.contains("UDI: PID:N540-24Z8Q2C-M,SN:FOC2104R0XX"));
    }

    #[test]
    fn summary_table() {
        let out = summary(&registered(), datetime!(2023-05-11 00:00 UTC));
        let header = out.lines().find(|l| l.contains("Entitlement Tag")).unwrap();
        assert_eq!(
            header.split_whitespace().collect::<Vec<_>>(),
            ["License", "Entitlement", "Tag", "Count", "Status"]
        );
        let row = out
            .lines()
            .find(|l| l.contains("(") || l.contains("ESS-AC"))
            .unwrap();
        assert!(
            row.trim_end()
                .ends_with("ESS-AC-10G-RTU-1      2  AUTHORIZED"),
            "{row}"
        );
    }

    #[test]
    fn platform_views_show_last_and_next() {
        let mut s = sample();
        s.fcm.enabled = true;
        s.fcm.enabled_at = Some(datetime!(2030-01-01 0:00 UTC));
        for i in 0..25 {
            s.fcm
                .ports
                .insert(format!("TenGigE0/0/0/{i}"), Port::new(Speed::G10));
        }
        s.fcm.current = Some(fcm::count(s.fcm.ports.values().take(24)));
        s.fcm.last_check = Some(datetime!(2030-01-01 02:00 UTC));
        let now = datetime!(2030-01-01 03:00 UTC);
        let out = platform_summary(&s, now);
        assert!(out.contains("Registration Status: UNREGISTERED\n"), "{out}");
        assert!(
            out.contains(
                "Collection: LAST: Jan 01 02:00:00 2030 UTC NEXT: Jan 02 02:00:00 2030 UTC\n"
            ),
            "{out}"
        );
        let row = |name: &str| -> Vec<String> {
            out.lines()
                .find(|l| l.contains(name))
                .unwrap()
                .split_whitespace()
                .map(String::from)
                .collect()
        };
        let ess = row("Access Essentials SW Right-to-Use v1.0 per 10G");
        assert_eq!(
            (ess[0].as_str(), &ess[ess.len() - 2..]),
            ("FCM", &["24".to_string(), "25".to_string()][..])
        );
        let tracking = out
            .lines()
            .find(|l| l.contains("Base Hardware Tracking PID"))
            .unwrap();
        assert!(
            tracking.starts_with("N540-24Z8Q2C-M Base Hardware Tracking PID  "),
            "the name takes the Feature/Area position: {tracking:?}"
        );
        assert_eq!(row("Base Hardware Tracking PID")[5..], ["1", "1"]);
        let header = out.lines().find(|l| l.starts_with("Feature/Area")).unwrap();
        assert_eq!(
            tracking.len(),
            header.len(),
            "the counts line up with the header"
        );
        assert!(out.ends_with("SIA Status: In Compliance\n"), "{out}");
        let detail = platform_detail(&s, now);
        assert!(detail.starts_with("Licensing Model: Flexible Consumption\n"));
        assert!(detail.contains(
            "Entitlement: Access Essentials SIA per 10G\n  SKU/Tag: ESS-AC-10G-SIA\n  Description: Access Network Essentials Software Innovation Access per 10Gb\n  Current Count: 24\n  Next Count: 25\n"
        ), "{detail}");
    }

    #[test]
    fn sia_out_of_compliance_is_shown() {
        let mut s = registered();
        s.fcm.enabled = true;
        s.fcm.current = Some(Counts {
            ess_sia: 2,
            tracking: 1,
            ..Counts::default()
        });
        if let Some(a) = s.authorization.as_mut() {
            a.entitlements.push(TagStatus {
                tag: fcm::ESS_SIA.into(),
                count: 2,
                status: "OUT_OF_COMPLIANCE".into(),
            });
        }
        let out = platform_summary(&s, datetime!(2023-05-11 00:00 UTC));
        assert!(out.contains("SIA Status: Out of Compliance"), "{out}");
        let json = status_json(&s, datetime!(2023-05-11 00:00 UTC) + Duration::days(1));
        assert_eq!(json["registration"]["status"], "REGISTERED");
        assert_eq!(
            json["flexible_consumption"]["sia_status"],
            "Out of Compliance"
        );
    }
}
