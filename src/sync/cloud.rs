//! The cloud's end: register satellites, process the bundles they send
//! (registration requests and usage), and answer each with the licenses of
//! the satellite's virtual accounts.

use super::bundle::{Kind, Opened, Rule};
use super::exchange::{self, Outgoing};
use super::payload::{self, Entitlements};
use super::token::SatelliteToken;
use super::{parse_time, record, refuse, stamp, Applied, Node, SyncError, Written};
use crate::config::Role;
use crate::domain::TokenSecret;
use crate::error::Error;
use crate::licensing::pool::{self, Transition};
use crate::store::events::Severity;
use crate::store::satellites::{self, RemoteInstance, Satellite};
use crate::store::sync::{self as ledger, Direction};
use crate::store::Db;
use crate::store::{accounts, instances, licenses};
use serde::Serialize;
use serde_json::json;
use std::collections::{BTreeMap, BTreeSet};

/// Days a satellite token is valid unless `--days` says otherwise.
pub const TOKEN_DAYS: u32 = 30;

fn require_cloud(node: &Node<'_>) -> Result<(), SyncError> {
    if node.config.role != Role::Cloud {
        return Err(Error::WrongRole(
            "satellites are added and their bundles processed on the cloud (`role: cloud`); \
             this is a satellite: it exports usage and imports the cloud's answers"
                .into(),
        )
        .into());
    }
    Ok(())
}

/// `satellite add NAME --va V --json`: the fields scripts rely on first.
#[derive(Debug, Clone, Serialize)]
pub struct AddedSatellite {
    pub satellite_id: String,
    pub token: String,
    pub name: String,
    pub virtual_accounts: Vec<String>,
    pub token_expires_at: String,
}

pub fn add_satellite(
    c: &Db,
    node: &Node<'_>,
    name: &str,
    virtual_accounts: &[String],
    days: u32,
) -> Result<AddedSatellite, SyncError> {
    require_cloud(node)?;
    crate::domain::check_name("satellite name", name).map_err(|r| Error::invalid("name", r))?;
    if !(1..=365).contains(&days) {
        return Err(Error::invalid(
            "days",
            format!("a satellite token is valid 1 to 365 days, not {days}"),
        )
        .into());
    }
    if virtual_accounts.is_empty() {
        return Err(Error::invalid(
            "va",
            "name at least one virtual account the satellite serves",
        )
        .into());
    }
    if satellites::find_by_name(c, name)?.is_some() {
        return Err(Error::Conflict(format!(
            "a satellite named {name:?} already exists; see `satellite satellite list`"
        ))
        .into());
    }
    let mut va_ids = Vec::new();
    let mut va_names = BTreeSet::new();
    for va in virtual_accounts {
        let found = accounts::require(c, &node.config.account, va, node.now)?;
        check_can_take_over(c, node, &found, name)?;
        va_ids.push(found.id);
        va_names.insert(found.name);
    }
    let satellite_id = uuid::Uuid::new_v4().to_string();
    let secret = TokenSecret::generate().map_err(Error::from)?;
    let token = SatelliteToken {
        satellite_id: satellite_id.clone(),
        secret: secret.as_str().to_string(),
        cloud_id: ledger::node_id(c)?,
        cloud_ca_sha256: node.ca_sha256.to_string(),
    };
    let expires = node.now + i64::from(days) * 86_400;
    satellites::create(
        c,
        &satellites::NewSatellite {
            satellite_id: &satellite_id,
            name,
            token_hash: &secret.hash(),
            token_expires_at: expires,
            virtual_account_ids: &va_ids,
        },
        node.now,
    )?;
    let va_names: Vec<String> = va_names.into_iter().collect();
    record(
        c,
        node.now,
        "satellite",
        Severity::Info,
        name,
        format!(
            "satellite {name:?} added for {}; its token is valid {days} days",
            va_names.join(", ")
        ),
    )?;
    Ok(AddedSatellite {
        satellite_id,
        token: token.encode(),
        name: name.to_string(),
        virtual_accounts: va_names,
        token_expires_at: stamp(expires),
    })
}

/// A virtual account may go to a satellite only when no other satellite
/// serves it and no router registered here is in it (this cloud issued
/// their certificates; they would keep asking here).
fn check_can_take_over(
    c: &Db,
    node: &Node<'_>,
    va: &accounts::VirtualAccount,
    satellite: &str,
) -> Result<(), SyncError> {
    if let Some(other) = satellites::serving(c, va.id)?
        .into_iter()
        .find(|s| s != satellite)
    {
        return Err(Error::Conflict(format!(
            "virtual account {:?} is served by satellite {other:?}; a virtual account has one \
             serving node: move it with `satellite va serve {} --by {satellite}`",
            va.name, va.name
        ))
        .into());
    }
    check_no_direct_instances(c, node, va, satellite)
}

/// Routers registered here keep asking here (this cloud issued their
/// certificates): their virtual account stays with the cloud until they
/// are moved out or removed.
fn check_no_direct_instances(
    c: &Db,
    node: &Node<'_>,
    va: &accounts::VirtualAccount,
    satellite: &str,
) -> Result<(), SyncError> {
    let direct = instances::count(c, &node.config.account, Some(&va.name))?;
    if direct > 0 {
        return Err(Error::Conflict(format!(
            "{direct} product instances registered at this cloud are in virtual account {:?}; \
             move them to another virtual account (`satellite instance move`) or remove them \
             before satellite {satellite:?} serves it",
            va.name
        ))
        .into());
    }
    Ok(())
}

/// Which node serves a virtual account after `va serve`, and which before.
#[derive(Debug, Clone, Serialize)]
pub struct Served {
    pub virtual_account: String,
    /// A satellite's name, or `cloud`.
    pub served_by: String,
    /// The nodes that served it before (`cloud`, or satellites' names).
    pub previously: Vec<String>,
}

/// `va serve VA --by NODE`: makes one satellite, or the cloud itself
/// (`cloud`), the one node serving a virtual account. The satellite that
/// gave it up gets no licenses for it from its next sync, and what it
/// reports there stops counting; the one that took it gets its licenses at
/// its next sync.
pub fn serve_virtual_account(
    c: &Db,
    node: &Node<'_>,
    virtual_account: &str,
    by: &str,
) -> Result<Served, SyncError> {
    require_cloud(node)?;
    let va = accounts::require(c, &node.config.account, virtual_account, node.now)?;
    let before = satellites::serving(c, va.id)?;
    let target = match by {
        CLOUD => None,
        name => {
            let found = satellites::find_by_name(c, name)?.ok_or_else(|| {
                Error::NotFound(format!(
                    "no satellite named {name:?}; see `satellite satellite list`, or `--by cloud`"
                ))
            })?;
            if found.revoked_at.is_some() {
                return Err(Error::Conflict(format!(
                    "satellite {name:?} is revoked and serves nothing"
                ))
                .into());
            }
            Some(found)
        }
    };
    let already = match &target {
        None => before.is_empty(),
        Some(t) => before == [t.name.clone()],
    };
    if already {
        return Err(Error::Conflict(format!(
            "virtual account {:?} is already served by {by}",
            va.name
        ))
        .into());
    }
    if let Some(t) = &target {
        check_no_direct_instances(c, node, &va, &t.name)?;
    }
    satellites::reassign(c, va.id, target.as_ref().map(|t| t.id))?;
    let previously = if before.is_empty() {
        vec![CLOUD.to_string()]
    } else {
        before
    };
    record(
        c,
        node.now,
        "satellite",
        Severity::Info,
        by,
        format!(
            "virtual account {:?} is now served by {} (before: {}); licenses reach the new \
             node at its next sync",
            va.name,
            describe(by),
            previously
                .iter()
                .map(|n| describe(n))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    )?;
    Ok(Served {
        virtual_account: va.name,
        served_by: by.to_string(),
        previously,
    })
}

/// What `--by` names the cloud itself.
pub const CLOUD: &str = "cloud";

fn describe(node: &str) -> String {
    if node == CLOUD {
        "the cloud".to_string()
    } else {
        format!("satellite {node:?}")
    }
}

/// Virtual accounts that more than one satellite serves (a database from
/// before the one-serving-node rule), as lines an operator can act on.
pub fn shared_warnings(c: &Db) -> crate::error::Result<Vec<String>> {
    Ok(satellites::shared_virtual_accounts(c)?
        .into_iter()
        .map(|(va, names)| shared_message(&va, &names))
        .collect())
}

fn shared_message(va: &str, satellites: &[String]) -> String {
    format!(
        "virtual account {va:?} is served by {} satellites ({}): each hands out its whole pool; \
         keep one with `satellite va serve {va} --by NAME`",
        satellites.len(),
        satellites.join(", ")
    )
}

/// A satellite as `satellite list` shows it.
#[derive(Debug, Clone, Serialize)]
pub struct SatelliteView {
    pub name: String,
    pub satellite_id: String,
    pub status: String,
    pub virtual_accounts: Vec<String>,
    pub registered_at: Option<String>,
    /// The satellite's bundle signer pinned here (SHA-256 of its certificate).
    pub signer_sha256: Option<String>,
    pub last_contact_at: Option<String>,
    pub sequence_received: Option<u64>,
    pub sequence_sent: Option<u64>,
    pub product_instances: i64,
    pub events: i64,
    pub reports: i64,
}

fn view(c: &Db, s: &Satellite) -> Result<SatelliteView, SyncError> {
    let (events, reports) = satellites::remote_counts(c, s.id)?;
    Ok(SatelliteView {
        name: s.name.clone(),
        satellite_id: s.satellite_id.clone(),
        status: match (s.revoked_at, s.registered_at) {
            (Some(_), _) => "REVOKED",
            (None, Some(_)) => "REGISTERED",
            (None, None) => "PENDING",
        }
        .into(),
        virtual_accounts: s.virtual_accounts.clone(),
        registered_at: s.registered_at.map(stamp),
        signer_sha256: s.signer_sha256.clone(),
        last_contact_at: s.last_contact_at.map(stamp),
        sequence_received: ledger::last_sequence(c, Direction::Received, &s.satellite_id)?,
        sequence_sent: ledger::last_sequence(c, Direction::Sent, &s.satellite_id)?,
        product_instances: satellites::instance_count(c, s.id)?,
        events,
        reports,
    })
}

pub fn list(c: &Db) -> Result<Vec<SatelliteView>, SyncError> {
    satellites::list(c)?.iter().map(|s| view(c, s)).collect()
}

fn find(c: &Db, name: &str) -> Result<Satellite, SyncError> {
    satellites::find_by_name(c, name)?
        .or(satellites::find_by_satellite_id(c, name)?)
        .ok_or_else(|| {
            Error::NotFound(format!(
                "no satellite {name:?} here; see `satellite satellite list`"
            ))
            .into()
        })
}

/// Revokes a satellite: its bundles are refused from now on, with a reason.
pub fn revoke(c: &Db, node: &Node<'_>, name: &str) -> Result<SatelliteView, SyncError> {
    require_cloud(node)?;
    let s = find(c, name)?;
    if let Some(at) = s.revoked_at {
        return Err(Error::Conflict(format!(
            "satellite {:?} was already revoked on {}",
            s.name,
            stamp(at)
        ))
        .into());
    }
    satellites::revoke(c, s.id, node.now)?;
    record(
        c,
        node.now,
        "satellite",
        Severity::Minor,
        &s.name,
        format!(
            "satellite {:?} revoked; its bundles are refused from now on",
            s.name
        ),
    )?;
    let s = find(c, name)?;
    view(c, &s)
}

/// What `process FILE` did: the answer written, and what was applied.
#[derive(Debug, Clone, Serialize)]
pub struct Processed {
    pub path: String,
    pub satellite: String,
    pub request: Applied,
    pub answer: Written,
}

/// Verifies a satellite's bundle, applies it and seals the answer, all in
/// the caller's transaction. A bundle processed before gets the very same
/// answer bytes again.
pub fn process(
    c: &Db,
    node: &Node<'_>,
    opened: &Opened,
) -> Result<(Processed, Vec<Transition>), SyncError> {
    require_cloud(node)?;
    let m = &opened.manifest;
    let me = ledger::node_id(c)?;
    let Some(sat) = satellites::find_by_satellite_id(c, &m.from)? else {
        return Err(refuse(
            Rule::UntrustedSigner,
            format!(
                "no satellite {} is registered here; add it with `satellite satellite add`",
                m.from
            ),
        ));
    };
    if let Some(revoked) = sat.revoked_at {
        return Err(refuse(
            Rule::UntrustedSigner,
            format!(
                "satellite {:?} was revoked on {}; its bundles are refused for good (to resume, add it \
                 under a new name on the cloud and register it again with the new token)",
                sat.name,
                stamp(revoked)
            ),
        ));
    }
    // The first contact is proved by the token; from then on only the
    // signer CA and the bundle signer pinned then are trusted.
    let pinned = match &sat.signer_ca_sha256 {
        Some(pinned) => pinned.clone(),
        None => opened.signer_ca_sha256()?,
    };
    let peer = format!("satellite {:?}", sat.name);
    let signer = opened.check_signer(&satellite_pins(&sat, &peer, &pinned), node.now)?;
    if let Some(seen) = ledger::received(c, &opened.sha256)? {
        if let Some(response) = seen.response {
            return repeat(c, node, &sat, opened, seen.sequence, seen.kind, response);
        }
    }
    opened.check_addressed(&me, node.now)?;
    let (counts, transitions) = match m.kind {
        Kind::RegistrationRequest => register(c, node, &sat, opened, &pinned)?,
        Kind::Usage => {
            if sat.registered_at.is_none() {
                return Err(refuse(
                    Rule::UntrustedSigner,
                    format!("satellite {:?} has not registered yet: process its registration request first", sat.name),
                ));
            }
            exchange::check_sequence(c, opened)?;
            apply_usage(c, node, &sat, opened)?
        }
        Kind::Entitlements => {
            return Err(refuse(
                Rule::BadManifest,
                "the cloud processes registration requests and usage bundles; an entitlement bundle goes to a satellite (`satellite import FILE`)",
            ))
        }
    };
    if m.kind == Kind::RegistrationRequest {
        exchange::check_sequence(c, opened)?;
    }
    if let Some((pin, retired)) = signer.new_pins() {
        satellites::pin_signer(c, sat.id, pin, retired)?;
        if let Some(retired) = retired {
            record(
                c,
                node.now,
                "satellite",
                Severity::Info,
                &sat.name,
                format!("satellite {:?}'s bundle signer rolled over from {retired} to {pin}; bundles signed by the old one are refused from now on", sat.name),
            )?;
        }
    }
    satellites::touch(c, sat.id, node.now)?;
    let answer = answer(c, node, &sat, &me, &opened.sha256)?;
    exchange::record_received(c, opened, node.now, &counts, Some(answer.1))?;
    let written = answer.0;
    record(
        c,
        node.now,
        "sync",
        Severity::Info,
        &sat.name,
        if node.carried {
            format!(
                "{} bundle {} from satellite {:?} processed; answer {} written to {}",
                m.kind.as_str(),
                m.sequence,
                sat.name,
                written.sequence,
                written.path
            )
        } else {
            format!(
                "{} bundle {} from satellite {:?} processed; answer {} sent live",
                m.kind.as_str(),
                m.sequence,
                sat.name,
                written.sequence
            )
        },
    )?;
    Ok((
        Processed {
            path: written.path.clone(),
            satellite: sat.name.clone(),
            request: Applied {
                kind: m.kind.as_str().into(),
                from: m.from.clone(),
                sequence: m.sequence,
                sha256: opened.sha256.clone(),
                already_applied: false,
                counts,
            },
            answer: written,
        },
        transitions,
    ))
}

/// What the cloud pinned for a satellite (`ca_sha256`: its pinned CA, or
/// at its first request the CA its token-proved request chains to).
pub(crate) fn satellite_pins<'a>(
    sat: &'a Satellite,
    peer: &'a str,
    ca_sha256: &'a str,
) -> super::bundle::PeerPins<'a> {
    super::bundle::PeerPins {
        peer,
        ca_sha256,
        signer_sha256: sat.signer_sha256.as_deref(),
        retired_signer_sha256: sat.retired_signer_sha256.as_deref(),
    }
}

/// The same answer again, written again, for a bundle processed before.
fn repeat(
    c: &Db,
    node: &Node<'_>,
    sat: &Satellite,
    opened: &Opened,
    sequence: u64,
    kind: String,
    response: Vec<u8>,
) -> Result<(Processed, Vec<Transition>), SyncError> {
    let answered = super::bundle::open(response.clone(), &super::bundle::Limits::default())?;
    // The file written the first time, if it is still there as it was;
    // else the same bytes again, under the same name where it is known.
    let first_name = ledger::sent_file_name(c, &sat.satellite_id, &answered.sha256)?;
    let still_there = first_name.as_ref().and_then(|name| {
        let path = node.config.sync.export_dir.join(name);
        (std::fs::read(&path).ok()? == response).then_some(path)
    });
    let name = first_name.unwrap_or_else(|| {
        super::folder::bundle_file_name(
            node.now,
            answered.manifest.kind.as_str(),
            &node.config.name,
            &sat.name,
            answered.manifest.sequence,
        )
    });
    let path = match still_there {
        _ if !node.carried => String::new(),
        Some(path) => path.display().to_string(),
        None => super::folder::write_atomically(&node.config.sync.export_dir, &name, &response)?
            .display()
            .to_string(),
    };
    satellites::touch(c, sat.id, node.now)?;
    Ok((
        Processed {
            path: path.clone(),
            satellite: sat.name.clone(),
            request: Applied {
                kind,
                from: opened.manifest.from.clone(),
                sequence,
                sha256: opened.sha256.clone(),
                already_applied: true,
                counts: json!({}),
            },
            answer: Written {
                path,
                kind: answered.manifest.kind.as_str().into(),
                from: answered.manifest.from.clone(),
                to: answered.manifest.to.clone(),
                sequence: answered.manifest.sequence,
                sha256: answered.sha256.clone(),
                bytes: response.len(),
                counts: json!({}),
            },
        },
        Vec::new(),
    ))
}

fn register(
    c: &Db,
    node: &Node<'_>,
    sat: &Satellite,
    opened: &Opened,
    signer_ca: &str,
) -> Result<(serde_json::Value, Vec<Transition>), SyncError> {
    let request: payload::RegistrationRequest = opened.json(payload::REGISTRATION)?;
    let token = SatelliteToken::parse(&request.token).map_err(|r| {
        refuse(
            Rule::UntrustedSigner,
            format!("{}: token: {r}", payload::REGISTRATION),
        )
    })?;
    let proved = token.satellite_id == sat.satellite_id && token.secret().matches(&sat.token_hash);
    if !proved {
        return Err(refuse(
            Rule::UntrustedSigner,
            "the satellite token in the request does not match the one issued for this satellite",
        ));
    }
    match &sat.signer_ca_sha256 {
        Some(pinned) if pinned != signer_ca => {
            return Err(refuse(
                Rule::UntrustedSigner,
                format!("satellite {:?} is already registered with another signer; its token cannot register a second one", sat.name),
            ))
        }
        Some(_) => {}
        None if sat.token_expires_at <= node.now => {
            return Err(refuse(
                Rule::Expired,
                format!(
                    "the satellite token expired on {}; add the satellite again for a new token",
                    stamp(sat.token_expires_at)
                ),
            ))
        }
        None => satellites::register(c, sat.id, signer_ca, node.now)?,
    }
    record(
        c,
        node.now,
        "satellite",
        Severity::Info,
        &sat.name,
        format!("satellite {:?} ({}) registered", sat.name, request.name),
    )?;
    Ok((json!({"registered": true}), Vec::new()))
}

/// Replaces the satellite's reported instances and demand, stores its new
/// history, reports and events, and re-evaluates every pool touched.
fn apply_usage(
    c: &Db,
    node: &Node<'_>,
    sat: &Satellite,
    opened: &Opened,
) -> Result<(serde_json::Value, Vec<Transition>), SyncError> {
    let served: BTreeMap<String, i64> = satellites::virtual_account_ids(c, sat.id)?
        .into_iter()
        .map(|(id, name)| (name, id))
        .collect();
    // The snapshot streams from the bundle into the store one product
    // instance at a time (a million would cost over a gigabyte whole).
    let mut load = satellites::SnapshotLoad::begin(c)?;
    let mut outside = 0usize;
    opened.each(payload::INSTANCES, |i: payload::Instance| {
        let Some(&va_id) = served.get(&i.virtual_account) else {
            // Instances in a virtual account the cloud did not give this
            // satellite hold no licenses of ours.
            outside += 1;
            return Ok(());
        };
        let mut entitlements = Vec::with_capacity(i.entitlements.len());
        for e in &i.entitlements {
            if e.count <= 0 || e.count > crate::inventory::MAX_LICENSE_QUANTITY {
                return Err(refuse(
                    Rule::BadPayload,
                    format!(
                        "{}: {}: count {} for {} is outside 1 to 1,000,000",
                        payload::INSTANCES,
                        i.instance_id,
                        e.count,
                        e.tag
                    ),
                ));
            }
            entitlements.push((e.tag.clone(), e.count));
        }
        let remote = RemoteInstance {
            registered_at: parse_time(payload::INSTANCES, "registered_at", &i.registered_at)?,
            last_contact_at: parse_time(payload::INSTANCES, "last_contact_at", &i.last_contact_at)?,
            instance_id: i.instance_id,
            virtual_account_id: va_id,
            pid: i.pid,
            sn: i.sn,
            hostname: i.hostname,
            status: i.status,
            entitlements,
        };
        load.add(&remote).map_err(|e| match e {
            Error::Conflict(twice) => {
                refuse(Rule::BadPayload, format!("{}: {twice}", payload::INSTANCES))
            }
            other => other.into(),
        })
    })?;
    if outside > 0 {
        record(
            c,
            node.now,
            "satellite",
            Severity::Minor,
            &sat.name,
            format!(
                "satellite {:?} reported {outside} product instances in virtual accounts it does not serve \
                 (it serves {}); their usage is not counted here: move them back, or have it serve \
                 them with `satellite va serve VA --by NAME`",
                sat.name,
                served.keys().cloned().collect::<Vec<_>>().join(", ")
            ),
        )?;
    }
    // A database from before one serving node per virtual account: said at
    // every sync of a satellite that shares one, never silently.
    for (va, &va_id) in &served {
        let serving = satellites::serving(c, va_id)?;
        if serving.len() > 1 {
            record(
                c,
                node.now,
                "satellite",
                Severity::Major,
                &sat.name,
                shared_message(va, &serving),
            )?;
        }
    }
    let reported = load.len();
    let touched = load.finish(sat.id)?;
    let mut transitions = Vec::new();
    let names: BTreeMap<i64, &String> = served.iter().map(|(n, id)| (*id, n)).collect();
    for (va_id, tag) in &touched {
        let name = names.get(va_id).map(|n| n.as_str()).unwrap_or("");
        transitions.extend(pool::evaluate(
            c,
            node.catalog,
            *va_id,
            name,
            std::slice::from_ref(tag),
            node.now,
        )?);
    }
    // Events, reports and history stream in as well: a first usage bundle
    // carries a registration event per product instance.
    let mut new_events = 0;
    opened.each(payload::EVENTS, |e: payload::Event| {
        let row = crate::store::sync::EventRow {
            id: e.id,
            at: parse_time(payload::EVENTS, "at", &e.at)?,
            kind: e.kind,
            severity: e.severity,
            virtual_account: e.virtual_account,
            subject: e.subject,
            message: e.message,
        };
        new_events += usize::from(satellites::add_event(c, sat.id, &row)?);
        Ok::<_, SyncError>(())
    })?;
    let mut new_reports = 0;
    opened.each(payload::REPORTS, |r: payload::Report| {
        let row = crate::store::sync::ReportRow {
            id: r.id,
            kind: r.kind,
            created_at: parse_time(payload::REPORTS, "created_at", &r.created_at)?,
            virtual_account: r.virtual_account,
            summary: r.summary,
            body: r.body.to_string(),
        };
        new_reports += usize::from(satellites::add_report(c, sat.id, &row)?);
        Ok::<_, SyncError>(())
    })?;
    let usage_days = opened.each(payload::USAGE_HISTORY, |h: payload::UsageDay| {
        satellites::put_history(
            c,
            sat.id,
            &crate::store::sync::HistoryRow {
                day: h.day,
                virtual_account: h.virtual_account,
                tag: h.tag,
                in_use: h.in_use,
                available: h.available,
            },
        )?;
        Ok::<_, SyncError>(())
    })?;
    Ok((
        json!({
            "product_instances": reported,
            "outside_served_virtual_accounts": outside,
            "usage_days": usage_days,
            "reports": new_reports,
            "events": new_events,
            "compliance_changes": transitions.len(),
        }),
        transitions,
    ))
}

/// The entitlement bundle for a satellite: its virtual accounts' licenses,
/// the catalog additions, and the acknowledgement of `request_sha256`.
fn answer(
    c: &Db,
    node: &Node<'_>,
    sat: &Satellite,
    me: &str,
    request_sha256: &str,
) -> Result<(Written, Vec<u8>), SyncError> {
    let mut vas = Vec::new();
    let mut count = 0;
    for (_, va) in satellites::virtual_account_ids(c, sat.id)? {
        let held = licenses::list(c, &node.config.account, Some(&va), node.now)?;
        count += held.len();
        vas.push(payload::VirtualAccountLicenses {
            name: va,
            licenses: held
                .into_iter()
                .map(|l| payload::License {
                    sku: l.sku,
                    tag: l.tag,
                    quantity: l.quantity,
                    license_type: l.license_type,
                    start: l.start,
                    end: l.end,
                })
                .collect(),
        });
    }
    let (tags, skus) = node.catalog.additions();
    let entitlements = Entitlements {
        account: node.config.account.clone(),
        acknowledges: Some(request_sha256.to_string()),
        virtual_accounts: vas,
    };
    let counts = json!({
        "virtual_accounts": entitlements.virtual_accounts.len(),
        "licenses": count,
        "catalog_tags": tags.len(),
        "catalog_skus": skus.len(),
    });
    let (written, sealed) = exchange::send(
        c,
        node,
        Outgoing {
            kind: Kind::Entitlements,
            from: me.to_string(),
            to: sat.satellite_id.clone(),
            to_label: sat.name.clone(),
            in_reply_to: Some(request_sha256.to_string()),
            files: vec![
                (
                    payload::ENTITLEMENTS.into(),
                    payload::to_file(&entitlements),
                ),
                (
                    payload::CATALOG.into(),
                    payload::to_file(&payload::CatalogAdditions { tags, skus }),
                ),
            ],
            counts,
            watermarks: None,
        },
    )?;
    Ok((written, sealed.bytes))
}
