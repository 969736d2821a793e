//! The satellite's end: ask the cloud to register it, export usage, and
//! apply the entitlement bundles the cloud answers with.

use super::bundle::{Kind, Opened, Rule};
use super::exchange::{self, Outgoing};
use super::payload::{self, CatalogAdditions, Entitlements};
use super::token::SatelliteToken;
use super::{parse_time, record, refuse, stamp, Applied, Node, SyncError, Written};
use crate::config::Role;
use crate::error::Error;
use crate::licensing::catalog::Catalog;
use crate::licensing::pool::{self, Transition};
use crate::licensing::rules::{self, EntitlementStatus};
use crate::store::events::Severity;
use crate::store::sync::{self as ledger, LicenseLine, Upstream};
use crate::store::Db;
use crate::store::{accounts, settings};
use serde::{Deserialize, Serialize};
use serde_json::json;

/// How far into each log the cloud has acknowledged usage.
const ACKED: &str = "sync.acknowledged";
/// Daily history sent when the cloud has acknowledged none yet.
const FIRST_HISTORY_DAYS: i64 = 450;

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct Watermarks {
    events: i64,
    reports: i64,
    /// The last day of usage history carried; sent again next time, since
    /// today's snapshot is still moving.
    history_day: Option<String>,
}

fn require_satellite(node: &Node<'_>) -> Result<(), SyncError> {
    if node.config.role != Role::Satellite {
        return Err(Error::WrongRole(
            "this is the cloud: it processes bundles (`satellite process FILE`) and registers \
             satellites (`satellite satellite add`); upstream registration, export and import are \
             a satellite's commands"
                .into(),
        )
        .into());
    }
    Ok(())
}

/// `upstream register --token T` (disconnected): writes a registration
/// request for the operator to carry to the cloud, and pins the cloud CA
/// from the token. A later request replaces one never answered.
pub fn request_registration(
    c: &Db,
    node: &Node<'_>,
    token_text: &str,
) -> Result<Written, SyncError> {
    require_satellite(node)?;
    let token = SatelliteToken::parse(token_text).map_err(|r| Error::invalid("token", r))?;
    if let Some(up) = ledger::upstream(c)? {
        if up.registered_at.is_some() {
            return Err(Error::Conflict(format!(
                "this satellite is already registered with cloud {} as {}; it keeps syncing there \
                 (`satellite export`, `satellite import`)",
                up.cloud_id, up.satellite_id
            ))
            .into());
        }
    }
    ledger::set_upstream(
        c,
        &Upstream {
            satellite_id: token.satellite_id.clone(),
            cloud_id: token.cloud_id.clone(),
            cloud_ca_sha256: token.cloud_ca_sha256.clone(),
            requested_at: node.now,
            registered_at: None,
            cloud_account: None,
            cloud_signer_sha256: None,
            retired_cloud_signer_sha256: None,
        },
    )?;
    let request = payload::RegistrationRequest {
        name: node.config.name.clone(),
        token: token.encode(),
        software_version: env!("CARGO_PKG_VERSION").into(),
    };
    let (written, _) = exchange::send(
        c,
        node,
        Outgoing {
            kind: Kind::RegistrationRequest,
            from: token.satellite_id.clone(),
            to: token.cloud_id.clone(),
            to_label: "cloud".into(),
            in_reply_to: None,
            files: vec![(payload::REGISTRATION.into(), payload::to_file(&request))],
            counts: json!({}),
            watermarks: None,
        },
    )?;
    record(c, node.now, "sync", Severity::Info, &token.cloud_id, format!(
                "registration request for cloud {} written to {}; process it on the cloud and import the answer",
                token.cloud_id, written.path
            ))?;
    Ok(written)
}

fn registered(c: &Db) -> Result<Upstream, SyncError> {
    match ledger::upstream(c)? {
        Some(up) if up.registered_at.is_some() => Ok(up),
        Some(up) => Err(Error::Conflict(format!(
            "the registration with cloud {} is not complete: import the cloud's answer to the request first",
            up.cloud_id
        ))
        .into()),
        None => Err(Error::Conflict(
            "this satellite is not registered with a cloud: run `satellite upstream register --token T` \
             with a token from `satellite satellite add` on the cloud"
                .into(),
        )
        .into()),
    }
}

/// `export`: a usage bundle with every product instance and its demand, and
/// the history, reports and events the cloud has not acknowledged yet.
pub fn export_usage(c: &Db, node: &Node<'_>) -> Result<Written, SyncError> {
    let prepared = prepare_usage(c, node)?;
    finish_usage(c, node, prepared)
}

/// A usage bundle sealed from one read snapshot, not yet written.
#[derive(Debug)]
pub struct PreparedUsage {
    cloud_id: String,
    bundle: exchange::Prepared,
}

/// Everything a usage export reads and seals, from `c` (a read snapshot
/// will do: at a million product instances this takes seconds, and no
/// write lock is held meanwhile).
pub fn prepare_usage(c: &Db, node: &Node<'_>) -> Result<PreparedUsage, SyncError> {
    require_satellite(node)?;
    let up = registered(c)?;
    let acked: Watermarks = settings::get(c, ACKED)?
        .and_then(|v| serde_json::from_str(&v).ok())
        .unwrap_or_default();
    let send_hostnames = node.config.sync.send_hostnames;
    let instances: Vec<payload::Instance> = ledger::instance_usage(c)?
        .into_iter()
        .map(|i| {
            let last = i
                .authorization_status
                .as_deref()
                .map(|s| EntitlementStatus::parse(s).unwrap_or(EntitlementStatus::Authorized));
            let status = rules::instance_status(last, i.deadline, i.short, node.now)
                .as_str()
                .to_string();
            payload::Instance {
                instance_id: i.instance_id,
                pid: i.pid,
                sn: i.sn,
                hostname: if send_hostnames { i.hostname } else { None },
                virtual_account: i.virtual_account,
                status,
                registered_at: stamp(i.registered_at),
                last_contact_at: stamp(i.last_contact_at),
                entitlements: i
                    .entitlements
                    .into_iter()
                    .map(|(tag, count)| payload::Entitlement { tag, count })
                    .collect(),
            }
        })
        .collect();
    let from_day = match &acked.history_day {
        Some(day) => day.clone(),
        None => time::OffsetDateTime::from_unix_timestamp(node.now - FIRST_HISTORY_DAYS * 86_400)
            .map(|t| t.date().to_string())
            .unwrap_or_default(),
    };
    let history: Vec<payload::UsageDay> = ledger::history_from(c, &from_day)?
        .into_iter()
        .map(|h| payload::UsageDay {
            day: h.day,
            virtual_account: h.virtual_account,
            tag: h.tag,
            in_use: h.in_use,
            available: h.available,
        })
        .collect();
    let reports: Vec<payload::Report> = ledger::reports_after(c, acked.reports)?
        .into_iter()
        .map(|r| payload::Report {
            id: r.id,
            kind: r.kind,
            created_at: stamp(r.created_at),
            virtual_account: r.virtual_account,
            summary: r.summary,
            body: serde_json::from_str(&r.body).unwrap_or(serde_json::Value::String(r.body)),
        })
        .collect();
    let events: Vec<payload::Event> = ledger::events_after(c, acked.events)?
        .into_iter()
        .map(|e| payload::Event {
            id: e.id,
            at: stamp(e.at),
            kind: e.kind,
            severity: e.severity,
            virtual_account: e.virtual_account,
            // Event subjects and messages can name hosts; they stay home
            // when hostnames may not leave.
            subject: e.subject,
            message: e.message,
        })
        .collect();
    let (events, reports) = if send_hostnames {
        (events, reports)
    } else {
        let hostnames = instances_hostnames(c)?;
        (
            strip_hostnames(events, &hostnames),
            strip_report_hostnames(reports, &hostnames),
        )
    };
    let (events_head, reports_head) = ledger::log_heads(c)?;
    let today = time::OffsetDateTime::from_unix_timestamp(node.now)
        .map(|t| t.date().to_string())
        .unwrap_or_default();
    let watermarks = Watermarks {
        events: events_head,
        reports: reports_head,
        history_day: Some(history.last().map(|h| h.day.clone()).unwrap_or(today)),
    };
    let counts = json!({
        "product_instances": instances.len(),
        "usage_days": history.len(),
        "reports": reports.len(),
        "events": events.len(),
    });
    let bundle = exchange::prepare(
        c,
        node,
        Outgoing {
            kind: Kind::Usage,
            from: up.satellite_id.clone(),
            to: up.cloud_id.clone(),
            to_label: "cloud".into(),
            in_reply_to: None,
            files: vec![
                (payload::INSTANCES.into(), payload::to_file(&instances)),
                (payload::USAGE_HISTORY.into(), payload::to_file(&history)),
                (payload::REPORTS.into(), payload::to_file(&reports)),
                (payload::EVENTS.into(), payload::to_file(&events)),
            ],
            counts,
            watermarks: serde_json::to_string(&watermarks).ok(),
        },
    )?;
    Ok(PreparedUsage {
        cloud_id: up.cloud_id,
        bundle,
    })
}

impl PreparedUsage {
    pub fn still_current(&self, c: &Db) -> Result<bool, SyncError> {
        self.bundle.still_current(c)
    }
}

/// A usage export that takes the write lock only to record what it sealed:
/// everything is read and sealed from one read snapshot on `conn`, then the
/// file is written and recorded (with `also`, in the same transaction) in a
/// short write. Sealed again if another export to the cloud was recorded in
/// between.
pub fn export_usage_from_snapshot(
    conn: &mut Db,
    config: &crate::config::Config,
    keys: &super::Keys,
    now: i64,
    also: impl Fn(&Db) -> Result<(), SyncError>,
) -> Result<Written, SyncError> {
    let mut attempts = 0;
    loop {
        attempts += 1;
        let prepared = crate::store::snapshot(conn, |snapshot| {
            let catalog = super::current_catalog(snapshot, config)?;
            prepare_usage(snapshot, &keys.node(config, &catalog, now))
        })?;
        let written = crate::store::transaction(conn, |c| {
            if attempts < 3 && !prepared.still_current(c)? {
                return Ok(None);
            }
            let catalog = super::current_catalog(c, config)?;
            // The caller's connection stamps what it writes (`Db::act_for`).
            let written = finish_usage(c, &keys.node(config, &catalog, now), prepared)?;
            also(c)?;
            Ok::<_, SyncError>(Some(written))
        })?;
        if let Some(written) = written {
            return Ok(written);
        }
    }
}

/// Writes and records a prepared usage bundle, in a write transaction:
/// milliseconds. Refused, with nothing written, if another bundle to the
/// cloud was recorded since it was prepared.
pub fn finish_usage(
    c: &Db,
    node: &Node<'_>,
    prepared: PreparedUsage,
) -> Result<Written, SyncError> {
    require_satellite(node)?;
    let counts = prepared.bundle.counts().clone();
    let (written, _) = exchange::finish(c, node, prepared.bundle)?;
    record(
        c,
        node.now,
        "sync",
        Severity::Info,
        &prepared.cloud_id,
        format!(
            "usage bundle {} written to {} ({} product instances, {} events, {} reports)",
            written.sequence,
            written.path,
            counts["product_instances"],
            counts["events"],
            counts["reports"]
        ),
    )?;
    Ok(written)
}

fn instances_hostnames(c: &Db) -> Result<Vec<String>, SyncError> {
    Ok(ledger::instance_usage(c)?
        .into_iter()
        .filter_map(|i| i.hostname)
        .filter(|h| !h.is_empty())
        .collect())
}

/// Replaces every known hostname in event text by `<hostname>`.
fn strip_hostnames(events: Vec<payload::Event>, hostnames: &[String]) -> Vec<payload::Event> {
    let scrub = |text: String| {
        hostnames
            .iter()
            .fold(text, |t, h| t.replace(h.as_str(), "<hostname>"))
    };
    events
        .into_iter()
        .map(|mut e| {
            e.message = scrub(e.message);
            e.subject = e.subject.map(scrub);
            e
        })
        .collect()
}

/// Reports list product instances with their hostnames: every `hostname`
/// field is emptied and every known hostname in text replaced.
fn strip_report_hostnames(
    reports: Vec<payload::Report>,
    hostnames: &[String],
) -> Vec<payload::Report> {
    fn scrub(value: &mut serde_json::Value, hostnames: &[String]) {
        match value {
            serde_json::Value::Object(map) => {
                for (key, v) in map.iter_mut() {
                    if key == "hostname" {
                        *v = serde_json::Value::Null;
                    } else {
                        scrub(v, hostnames);
                    }
                }
            }
            serde_json::Value::Array(items) => items.iter_mut().for_each(|v| scrub(v, hostnames)),
            serde_json::Value::String(text) => {
                for h in hostnames {
                    if text.contains(h.as_str()) {
                        *text = text.replace(h.as_str(), "<hostname>");
                    }
                }
            }
            _ => {}
        }
    }
    reports
        .into_iter()
        .map(|mut r| {
            scrub(&mut r.body, hostnames);
            let mut summary = serde_json::Value::String(r.summary);
            scrub(&mut summary, hostnames);
            r.summary = summary.as_str().unwrap_or_default().to_string();
            r
        })
        .collect()
}

/// What this satellite pinned for its cloud.
pub(crate) fn cloud_pins(up: &ledger::Upstream) -> crate::sync::bundle::PeerPins<'_> {
    crate::sync::bundle::PeerPins {
        peer: "this satellite's cloud",
        ca_sha256: &up.cloud_ca_sha256,
        signer_sha256: up.cloud_signer_sha256.as_deref(),
        retired_signer_sha256: up.retired_cloud_signer_sha256.as_deref(),
    }
}

/// `import FILE` on a satellite: verifies an entitlement bundle from the
/// pinned cloud and applies it, with its sequence number, in the caller's
/// transaction.
pub fn import(
    c: &Db,
    node: &Node<'_>,
    opened: &Opened,
) -> Result<(Applied, Vec<Transition>), SyncError> {
    require_satellite(node)?;
    let m = &opened.manifest;
    let Some(up) = ledger::upstream(c)? else {
        return Err(refuse(
            Rule::UntrustedSigner,
            "this satellite has not asked any cloud to register it, so it trusts none: run \
             `satellite upstream register --token T` first",
        ));
    };
    let signer = opened.check_signer(&cloud_pins(&up), node.now)?;
    if let Some(seen) = ledger::received(c, &opened.sha256)? {
        return Ok((
            Applied {
                kind: seen.kind,
                from: m.from.clone(),
                sequence: seen.sequence,
                sha256: opened.sha256.clone(),
                already_applied: true,
                counts: json!({}),
            },
            Vec::new(),
        ));
    }
    opened.check_addressed(&up.satellite_id, node.now)?;
    if m.from != up.cloud_id {
        return Err(refuse(
            Rule::UntrustedSigner,
            format!(
                "the bundle comes from {}, not from this satellite's cloud {}",
                m.from, up.cloud_id
            ),
        ));
    }
    if m.kind != Kind::Entitlements {
        return Err(refuse(
            Rule::BadManifest,
            format!(
                "a satellite imports entitlement bundles from its cloud; this is a {} bundle (take it to the cloud: `satellite process FILE`)",
                m.kind.as_str()
            ),
        ));
    }
    exchange::check_sequence(c, opened)?;
    let entitlements: Entitlements = opened.json(payload::ENTITLEMENTS)?;
    let additions: CatalogAdditions = opened.json(payload::CATALOG)?;
    let (counts, transitions) = apply_entitlements(c, node, &entitlements, &additions)?;
    if let Some(acknowledged) = &entitlements.acknowledges {
        if let Some(marks) = ledger::sent_watermarks(c, &up.cloud_id, acknowledged)? {
            ledger::acknowledge(c, &up.cloud_id, acknowledged, node.now)?;
            if let Some(marks) = marks {
                settings::set(c, ACKED, &marks)?;
            }
        }
    }
    if let Some((pin, retired)) = signer.new_pins() {
        ledger::pin_cloud_signer(c, pin, retired)?;
        if let Some(retired) = retired {
            record(
                c,
                node.now,
                "sync",
                Severity::Info,
                &up.cloud_id,
                format!("the cloud's bundle signer rolled over from {retired} to {pin}; bundles signed by the old one are refused from now on"),
            )?;
        }
    }
    let first = up.registered_at.is_none();
    ledger::mark_registered(c, &entitlements.account, node.now)?;
    exchange::record_received(c, opened, node.now, &counts, None)?;
    record(
        c,
        node.now,
        "sync",
        Severity::Info,
        &up.cloud_id,
        format!(
            "entitlement bundle {} from cloud {} applied{}: {} licenses in {} virtual accounts",
            m.sequence,
            up.cloud_id,
            if first {
                " (registration complete)"
            } else {
                ""
            },
            counts["licenses"],
            counts["virtual_accounts"]
        ),
    )?;
    Ok((
        Applied {
            kind: m.kind.as_str().to_string(),
            from: m.from.clone(),
            sequence: m.sequence,
            sha256: opened.sha256.clone(),
            already_applied: false,
            counts,
        },
        transitions,
    ))
}

/// The cloud is the source of truth: each virtual account in the bundle
/// gets exactly the licenses listed, and every pool they touch is
/// re-evaluated (alerts follow where one went short).
fn apply_entitlements(
    c: &Db,
    node: &Node<'_>,
    entitlements: &Entitlements,
    additions: &CatalogAdditions,
) -> Result<(serde_json::Value, Vec<Transition>), SyncError> {
    let catalog: Catalog = node
        .catalog
        .with_additions(&additions.tags, &additions.skus)
        .map_err(|r| refuse(Rule::BadPayload, format!("{}: {r}", payload::CATALOG)))?;
    let account_id = accounts::ensure_account(c, &node.config.account, node.now)?;
    let mut transitions = Vec::new();
    let mut licenses = 0;
    for va in &entitlements.virtual_accounts {
        crate::domain::check_name("virtual account name", &va.name)
            .map_err(|r| refuse(Rule::BadPayload, format!("{}: {r}", payload::ENTITLEMENTS)))?;
        let mut lines = Vec::with_capacity(va.licenses.len());
        for l in &va.licenses {
            lines.push(license_line(&catalog, &va.name, l)?);
        }
        licenses += lines.len();
        let va_id = accounts::ensure_virtual_account(c, account_id, &va.name, node.now)?;
        let tags = ledger::replace_licenses(c, va_id, &lines, node.now)?;
        transitions.extend(pool::evaluate(
            c, &catalog, va_id, &va.name, &tags, node.now,
        )?);
    }
    // Licenses only ever come from the cloud: a virtual account of this
    // satellite that the bundle does not name holds none.
    let named: Vec<&str> = entitlements
        .virtual_accounts
        .iter()
        .map(|v| v.name.as_str())
        .collect();
    for (va_id, va_name) in accounts::ids(c, &node.config.account)? {
        if named.contains(&va_name.as_str()) {
            continue;
        }
        let tags = ledger::replace_licenses(c, va_id, &[], node.now)?;
        if !tags.is_empty() {
            transitions.extend(pool::evaluate(
                c, &catalog, va_id, &va_name, &tags, node.now,
            )?);
        }
    }
    let mut catalog_changes = 0;
    for tag in &additions.tags {
        let body =
            serde_json::to_string(tag).map_err(|e| Error::invalid("catalog", e.to_string()))?;
        catalog_changes += usize::from(ledger::put_catalog_entry(
            c, "tag", &tag.tag, &body, node.now,
        )?);
    }
    for sku in &additions.skus {
        let body =
            serde_json::to_string(sku).map_err(|e| Error::invalid("catalog", e.to_string()))?;
        catalog_changes += usize::from(ledger::put_catalog_entry(
            c, "sku", &sku.sku, &body, node.now,
        )?);
    }
    Ok((
        json!({
            "virtual_accounts": entitlements.virtual_accounts.len(),
            "licenses": licenses,
            "catalog_changes": catalog_changes,
            "compliance_changes": transitions.len(),
        }),
        transitions,
    ))
}

fn license_line(
    catalog: &Catalog,
    va: &str,
    l: &payload::License,
) -> Result<LicenseLine, SyncError> {
    let bad = |why: String| {
        refuse(
            Rule::BadPayload,
            format!(
                "{}: virtual account {va:?}, {}: {why}",
                payload::ENTITLEMENTS,
                l.sku
            ),
        )
    };
    if catalog.tag(&l.tag).is_none() {
        return Err(bad(format!(
            "tag {} is in neither the catalog nor catalog.json",
            l.tag
        )));
    }
    if l.quantity <= 0 || l.quantity > crate::inventory::MAX_LICENSE_QUANTITY {
        return Err(bad(format!(
            "quantity {} is outside 1 to {}",
            l.quantity,
            crate::inventory::MAX_LICENSE_QUANTITY
        )));
    }
    let start_at = parse_time(payload::ENTITLEMENTS, "start", &l.start)?;
    let end_at = l
        .end
        .as_deref()
        .map(|e| parse_time(payload::ENTITLEMENTS, "end", e))
        .transpose()?;
    match (l.license_type.as_str(), end_at) {
        ("PERPETUAL", None) | ("TERM", Some(_)) => {}
        (other, _) => {
            return Err(bad(format!(
                "license_type {other:?} does not match its end (PERPETUAL has none, TERM has one)"
            )))
        }
    }
    if end_at.is_some_and(|end| end <= start_at) {
        return Err(bad("the term ends before it starts".into()));
    }
    Ok(LicenseLine {
        sku: l.sku.clone(),
        tag: l.tag.clone(),
        quantity: l.quantity,
        start_at,
        end_at,
    })
}
