//! Sync commands: `export`, `import`, `bundle show`, `upstream register`, `sync`,
//! and on the cloud `satellite add|list|revoke` and `process`.

use super::error::CliError;
use super::output::print_json;
use super::{BundleCommand, Command, SatelliteCommand, UpstreamCommand};
use crate::clock::Clock;
use crate::config::{Config, SyncMode};
use crate::ops;
use crate::sync::bundle::{self, Limits, Opened};
use crate::sync::{self, counts_line, Keys, SyncError};
use std::path::Path;

pub fn run(command: Command, config: &Config, clock: &Clock) -> Result<(), CliError> {
    let now = clock.unix();
    // Every change below is recorded as this operator's, as through the API.
    let caller = ops::Caller::local_admin();
    match command {
        Command::Export { json } => {
            let mut conn = ops::Local::open(config, clock)?;
            let written = ops::sync::export_local(&mut conn, &caller)?;
            if json {
                return print_json(&written);
            }
            println!("{}", written.path);
            eprintln!(
                "usage bundle {} for the cloud: {}; carry it to the cloud and run `satellite process FILE` there",
                written.sequence,
                counts_line(&written.counts)
            );
            Ok(())
        }
        Command::Import { file, json } => {
            let opened = read(&file)?;
            let mut conn = ops::Local::open(config, clock)?;
            let keys = Keys::load(config, now)?;
            let (applied, _) = conn.change_pools(&caller, |c| {
                ops::sync::import(c, &caller, config, &keys, &opened, now)
            })?;
            if json {
                return print_json(&applied);
            }
            if applied.already_applied {
                println!(
                    "{}: already applied ({} bundle {} from {}); nothing changed",
                    file.display(),
                    applied.kind,
                    applied.sequence,
                    applied.from
                );
            } else {
                println!(
                    "{}: {} bundle {} from {} applied: {}",
                    file.display(),
                    applied.kind,
                    applied.sequence,
                    applied.from,
                    counts_line(&applied.counts)
                );
            }
            Ok(())
        }
        Command::Process { file, json } => {
            let opened = read(&file)?;
            let mut conn = ops::Local::open(config, clock)?;
            let keys = Keys::load(config, now)?;
            let (processed, _) = conn.change_pools(&caller, |c| {
                ops::sync::process(c, &caller, config, &keys, &opened, now)
            })?;
            if json {
                return print_json(&processed);
            }
            println!("{}", processed.path);
            eprintln!(
                "{} bundle {} from satellite {:?} {}; answer {} ({}) written: carry it back and run `satellite import FILE` on the satellite",
                processed.request.kind,
                processed.request.sequence,
                processed.satellite,
                if processed.request.already_applied {
                    "was processed before (the same answer again)"
                } else {
                    "processed"
                },
                processed.answer.sequence,
                counts_line(&processed.answer.counts)
            );
            Ok(())
        }
        Command::Bundle(BundleCommand::RotateSigner { json }) => rotate_signer(config, clock, json),
        Command::Bundle(BundleCommand::Show { file, json }) => {
            let opened = read(&file)?;
            let mut summary = summarize(&opened)?;
            let verdict = match ops::Local::open(config, clock) {
                Ok(mut local) => Some(ops::sync::rehearse(&mut local, &caller, &opened)?),
                Err(_) => None,
            };
            let accepted = verdict.as_ref().and_then(|v| v.accepted);
            let trust = verdict.as_ref().map_or_else(
                || "not checked: there is no satellite here to check it against".to_string(),
                |v| v.words.clone(),
            );
            let name = |id: &str, known: Option<&Option<String>>| {
                known.cloned().flatten().unwrap_or_else(|| id.to_string())
            };
            let from = name(
                &opened.manifest.from,
                verdict.as_ref().map(|v| &v.from_name),
            );
            let to = name(&opened.manifest.to, verdict.as_ref().map(|v| &v.to_name));
            summary["accepted_here"] = serde_json::json!(accepted);
            summary["already_applied"] =
                serde_json::json!(verdict.as_ref().is_some_and(|v| v.already_applied));
            summary["trust"] = serde_json::json!(trust);
            summary["from_name"] = serde_json::json!(from);
            summary["to_name"] = serde_json::json!(to);
            // The same decision as import/process, so scripts can test it.
            let verdict = match accepted {
                Some(false) => Err(CliError::Other(trust.clone())),
                _ => Ok(()),
            };
            if json {
                print_json(&summary)?;
                return verdict;
            }
            let m = &opened.manifest;
            println!("Bundle: {}", file.display());
            println!(
                "  Signature: the manifest and every file match it; signed by {:?}, {}",
                summary["signer"].as_str().unwrap_or(""),
                opened.signer_purpose().describe()
            );
            println!(
                "  Signer SHA-256: {}",
                summary["signer_sha256"].as_str().unwrap_or("")
            );
            println!("  Here: {trust}");
            println!("  Kind: {}", m.kind.as_str());
            println!("  From: {from}");
            println!("  To: {to}");
            println!("  Sequence: {}", m.sequence);
            println!("  Created: {}", m.created_at);
            println!("  Expires: {}", m.expires_at);
            if let Some(r) = &m.in_reply_to {
                println!("  In reply to: {r}");
            }
            println!("  SHA-256: {}", opened.sha256);
            println!("  Files:");
            for (name, count) in summary["counts"].as_object().into_iter().flatten() {
                println!("    {name}: {count}");
            }
            for row in summary["quantities"].as_array().into_iter().flatten() {
                println!(
                    "  Licenses: {} {} {}",
                    row["virtual_account"].as_str().unwrap_or(""),
                    row["sku"].as_str().unwrap_or(""),
                    row["quantity"]
                );
            }
            for row in summary["usage"].as_array().into_iter().flatten() {
                println!(
                    "  Usage: {} {} {}",
                    row["virtual_account"].as_str().unwrap_or(""),
                    row["tag"].as_str().unwrap_or(""),
                    row["in_use"]
                );
            }
            verdict
        }
        Command::Upstream(UpstreamCommand::Register { token, json })
            if config.sync.mode == SyncMode::Connected =>
        {
            let mut conn = ops::Local::open(config, clock)?;
            let (registered, _) = ops::sync::register_live(&mut conn, &caller, &token)?;
            if json {
                return print_json(&registered);
            }
            println!(
                "registered with cloud {} at {} as satellite {}; the cloud CA is pinned and the \
                 upstream identity certificate is in {}",
                registered.cloud_id,
                registered.cloud_url,
                registered.satellite_id,
                registered.identity_certificate
            );
            println!(
                "entitlement bundle {} applied: {}; `satellite sync` syncs now, `sync.schedule` from now on",
                registered.answer.sequence,
                counts_line(&registered.answer.counts)
            );
            Ok(())
        }
        Command::Sync { json } => {
            let mut conn = ops::Local::open(config, clock)?;
            let (synced, _) = ops::sync::sync_now(&mut conn, &caller)?;
            if json {
                return print_json(&synced);
            }
            println!(
                "sent usage bundle {} to {} ({} bytes): {}",
                synced.sent.sequence,
                synced.cloud_url,
                synced.sent.bytes,
                counts_line(&synced.sent.counts)
            );
            println!(
                "received entitlement bundle {}{}: {}",
                synced.received.sequence,
                if synced.received.already_applied {
                    " (applied before; nothing changed)"
                } else {
                    ""
                },
                counts_line(&synced.received.counts)
            );
            println!("live sync took {} ms", synced.millis);
            Ok(())
        }
        Command::Upstream(UpstreamCommand::Register { token, json }) => {
            let mut conn = ops::Local::open(config, clock)?;
            let keys = Keys::load(config, now)?;
            let written = conn.change(&caller, |c| {
                ops::sync::request_registration(c, &caller, config, &keys, &token, now)
            })?;
            if json {
                return print_json(&written);
            }
            println!("{}", written.path);
            eprintln!(
                "registration request for the cloud; carry it there, run `satellite process FILE`, \
                 and bring the answer back to `satellite import FILE`"
            );
            Ok(())
        }
        Command::Satellite(SatelliteCommand::Add {
            name,
            va,
            days,
            json,
        }) => {
            let mut conn = ops::Local::open(config, clock)?;
            let keys = Keys::load(config, now)?;
            let request = ops::sync::NewSatellite {
                name: &name,
                virtual_accounts: &va,
                days,
            };
            let added = conn.change(&caller, |c| {
                ops::sync::add_satellite(c, &caller, config, &keys, &request, now)
            })?;
            if json {
                return print_json(&added);
            }
            println!("{}", added.token);
            eprintln!(
                "\nsatellite token for {:?} (serves {}), valid until {}; shown only now.\n\
                 On the satellite: satellite upstream register --token <token>",
                added.name,
                added.virtual_accounts.join(", "),
                added.token_expires_at
            );
            Ok(())
        }
        Command::Satellite(SatelliteCommand::List { json }) => {
            let conn = ops::Local::open(config, clock)?;
            let list = conn.read(|c| ops::sync::satellites(c, &caller))?;
            super::output::show(&list, json)
        }
        Command::Satellite(SatelliteCommand::Revoke { name, json }) => {
            let mut conn = ops::Local::open(config, clock)?;
            let keys = Keys::load(config, now)?;
            let revoked = conn.change(&caller, |c| {
                ops::sync::revoke_satellite(c, &caller, config, &keys, &name, now)
            })?;
            if json {
                return print_json(&revoked);
            }
            println!(
                "satellite {:?} revoked; its next bundle is refused",
                revoked.name
            );
            Ok(())
        }
        _ => Err(CliError::Other("not a sync command".into())),
    }
}

fn read(path: &Path) -> Result<Opened, CliError> {
    let limits = Limits::default();
    Ok(bundle::open_file(path, &limits).map_err(SyncError::from)?)
}

/// The node's verdict on a bundle, or why none could be given.
/// `bundle rotate-signer`: with the server stopped (it holds the signer in
/// memory and would go on signing with the retired key).
fn rotate_signer(config: &Config, clock: &Clock, json: bool) -> Result<(), CliError> {
    let now = clock.unix();
    let caller = ops::Caller::local_admin();
    let _lock = crate::serve_lock::acquire(&config.data_dir).map_err(|e| {
        CliError::Other(format!(
            "{e}; the signer is rotated with the server stopped"
        ))
    })?;
    let mut conn = ops::Local::open(config, clock)?;
    let ca = crate::pki::CertificateAuthority::load(&config.data_dir).map_err(SyncError::from)?;
    let old = crate::pki::signer::BundleSigner::load(&config.data_dir).map_err(SyncError::from)?;
    let new = crate::pki::signer::BundleSigner::rotate(&config.data_dir, &ca, &config.name, now)
        .map_err(SyncError::from)?;
    let fingerprint = |signer: &crate::pki::signer::BundleSigner| {
        openssl::x509::X509::from_pem(signer.chain_pem().as_bytes())
            .and_then(|c| c.to_der())
            .map(|der| bundle::sha256_hex(&der))
            .unwrap_or_default()
    };
    let (retired, current) = (fingerprint(&old), fingerprint(&new));
    conn.change(&caller, |c| {
        sync::record(
            c,
            now,
            "sync",
            ops::views::Severity::Info,
            &config.name,
            format!(
                "bundle signer rotated from {retired} to {current}; peers move their pin at \
                 the next bundle they receive"
            ),
        )
        .map_err(ops::sync::service)
    })?;
    if json {
        return print_json(&serde_json::json!({
            "signer_sha256": current,
            "retired_signer_sha256": retired,
        }));
    }
    println!("Bundle signer rotated: {current} (was {retired}).");
    println!(
        "Every bundle now carries the old signer's proof for the new one ({} and {}); a peer \
         moves its pin when it receives the next one and refuses the old signer from then on.",
        crate::pki::signer::ROLLOVER_CERT_FILE,
        crate::pki::signer::ROLLOVER_SIGNATURE_FILE
    );
    Ok(())
}

/// Most pools `bundle show` adds up: a hostile bundle of endless distinct
/// tags must not grow the summary without end.
const MAX_SHOWN_POOLS: usize = 10_000;

/// Per virtual account and SKU the quantities an entitlement bundle gives,
/// or per virtual account and tag the usage a usage bundle reports (added
/// up as the instances stream past).
fn totals(opened: &Opened) -> (serde_json::Value, serde_json::Value) {
    use crate::sync::payload;
    use std::collections::BTreeMap;
    let rows = |sums: BTreeMap<(String, String), i64>, key: &str, value: &str| {
        sums.into_iter()
            .map(|((va, name), n)| serde_json::json!({"virtual_account": va, key: name, value: n}))
            .collect::<Vec<_>>()
    };
    match opened.manifest.kind {
        bundle::Kind::Entitlements => {
            let Ok(entitlements) = opened.json::<payload::Entitlements>(payload::ENTITLEMENTS)
            else {
                return (serde_json::Value::Null, serde_json::Value::Null);
            };
            let mut sums = BTreeMap::new();
            for va in entitlements.virtual_accounts {
                for license in va.licenses {
                    *sums.entry((va.name.clone(), license.sku)).or_insert(0) += license.quantity;
                }
            }
            (
                rows(sums, "sku", "quantity").into(),
                serde_json::Value::Null,
            )
        }
        bundle::Kind::Usage => {
            let mut sums: BTreeMap<(String, String), i64> = BTreeMap::new();
            let counted = opened.each(payload::INSTANCES, |i: payload::Instance| {
                for e in i.entitlements {
                    let key = (i.virtual_account.clone(), e.tag);
                    if sums.len() >= MAX_SHOWN_POOLS && !sums.contains_key(&key) {
                        continue;
                    }
                    *sums.entry(key).or_insert(0) += e.count;
                }
                Ok::<_, SyncError>(())
            });
            match counted {
                Ok(_) => (serde_json::Value::Null, rows(sums, "tag", "in_use").into()),
                Err(_) => (serde_json::Value::Null, serde_json::Value::Null),
            }
        }
        bundle::Kind::RegistrationRequest => (serde_json::Value::Null, serde_json::Value::Null),
    }
}

/// What `bundle show` prints: the manifest and how many records each
/// payload file holds.
fn summarize(opened: &Opened) -> Result<serde_json::Value, CliError> {
    let mut counts = serde_json::Map::new();
    for name in opened.file_names() {
        // Counted as it is parsed: a million instances are not built.
        let count = opened
            .json::<bundle::Shape>(name)
            .map(|shape| shape.to_json())
            .unwrap_or_else(|_| serde_json::json!(1));
        counts.insert(name.to_string(), count);
    }
    let signer = opened
        .signer_chain
        .first()
        .and_then(|c| crate::pki::common_name(c))
        .unwrap_or_default();
    let m = &opened.manifest;
    let (quantities, usage) = totals(opened);
    Ok(serde_json::json!({
        "quantities": quantities,
        "usage": usage,
        "kind": m.kind.as_str(),
        "from": m.from,
        "to": m.to,
        "sequence": m.sequence,
        "created_at": m.created_at,
        "expires_at": m.expires_at,
        "manifest": opened.manifest,
        "sha256": opened.sha256,
        "signer": signer,
        "signer_sha256": opened.signer_sha256().map_err(SyncError::from)?,
        "signer_ca_sha256": opened.signer_ca_sha256().map_err(SyncError::from)?,
        "counts": counts,
    }))
}

impl super::table::Row for sync::cloud::SatelliteView {
    const HEADERS: &'static [&'static str] = &[
        "Satellite",
        "Status",
        "Virtual Accounts",
        "Last Contact",
        "Seq In",
        "Seq Out",
        "Instances",
    ];
    fn cells(&self) -> Vec<String> {
        let seq = |s: Option<u64>| s.map(|n| n.to_string()).unwrap_or_else(|| "-".into());
        vec![
            self.name.clone(),
            self.status.clone(),
            self.virtual_accounts.join(","),
            self.last_contact_at
                .clone()
                .unwrap_or_else(|| "never".into()),
            seq(self.sequence_received),
            seq(self.sequence_sent),
            self.product_instances.to_string(),
        ]
    }
}
