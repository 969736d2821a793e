//! Sync through the operators' surfaces: write a usage export (to carry to
//! the cloud), apply an entitlement bundle brought back, the sync status.
//! Administrators only: a bundle speaks for the whole satellite.

use super::{Action, Caller, Local, Result};
use crate::config::Config;
use crate::error::Error;
use crate::licensing::pool::Transition;
use crate::store::Db;
use crate::sync::bundle::{self, Limits};
use crate::sync::satellite;
use crate::sync::status::{self as sync_status, SyncStatus};
use crate::sync::{self as sync_mod, Applied, Keys, SyncError, Written};

/// A refused bundle is a bad request naming the rule; anything else is
/// the service's own error.
pub(crate) fn service(e: SyncError) -> super::OpsError {
    match e {
        SyncError::Service(e) => e.into(),
        SyncError::Refused(refused) => Error::invalid("bundle", refused.to_string()).into(),
        SyncError::File { path, reason } => {
            Error::invalid("bundle", format!("{path}: {reason}")).into()
        }
        SyncError::Link(e) => {
            Error::Conflict(format!("the cloud could not be reached: {e}")).into()
        }
    }
}

/// The bundle keys; loaded (and made on first use) off the database writer.
pub fn keys(caller: &Caller, config: &Config, now: i64) -> Result<Keys> {
    caller.authorize(Action::Administer, None)?;
    Keys::load(config, now).map_err(service)
}

/// Runs a sync step as this node sees itself now (the catalog as this
/// transaction reads it), for an administrator.
fn on_node<T>(
    c: &Db,
    caller: &Caller,
    config: &Config,
    keys: &Keys,
    now: i64,
    step: impl FnOnce(&Db, &sync_mod::Node<'_>) -> std::result::Result<T, SyncError>,
) -> Result<T> {
    caller.authorize(Action::Administer, None)?;
    let catalog = sync_mod::current_catalog(c, config).map_err(service)?;
    step(c, &keys.node(config, &catalog, now)).map_err(service)
}

/// The heavy half of an export: reads and seals the usage bundle from
/// `c`, best a read snapshot (see [`finish_export`]); holds no write lock.
pub fn prepare_export(
    c: &Db,
    caller: &Caller,
    config: &Config,
    keys: &Keys,
    now: i64,
) -> Result<satellite::PreparedUsage> {
    caller.authorize(Action::Administer, None)?;
    crate::store::snapshot(c, |snapshot| {
        let catalog = sync_mod::current_catalog(snapshot, config)?;
        satellite::prepare_usage(snapshot, &keys.node(config, &catalog, now))
    })
    .map_err(service)
}

/// Writes and records what [`prepare_export`] sealed: a short write.
/// Refused (nothing written) if another export was recorded meanwhile.
pub fn finish_export(
    c: &Db,
    caller: &Caller,
    config: &Config,
    keys: &Keys,
    prepared: satellite::PreparedUsage,
    now: i64,
) -> Result<Written> {
    caller.authorize(Action::Administer, None)?;
    let catalog = sync_mod::current_catalog(c, config).map_err(service)?;
    satellite::finish_usage(c, &keys.node(config, &catalog, now), prepared).map_err(service)
}

/// Checks an uploaded bundle's form (signature and limits come with the
/// apply); cheap enough to run before queueing the write.
pub fn open(bytes: &[u8]) -> Result<bundle::Opened> {
    bundle::open(bytes.to_vec(), &Limits::default()).map_err(|e| service(e.into()))
}

/// Applies an entitlement (or registration answer) bundle from the cloud.
pub fn import(
    c: &Db,
    caller: &Caller,
    config: &Config,
    keys: &Keys,
    opened: &bundle::Opened,
    now: i64,
) -> Result<(Applied, Vec<Transition>)> {
    on_node(c, caller, config, keys, now, |c, node| {
        satellite::import(c, node, opened)
    })
}

/// Sync as it stands; `server_running`: a server serves this data dir now
/// (its recorded settings are shown, and where the file differs).
pub fn status(
    c: &Db,
    caller: &Caller,
    config: &Config,
    server_running: bool,
    now: i64,
) -> Result<SyncStatus> {
    caller.authorize(Action::Administer, None)?;
    sync_status::status(c, config, server_running, now).map_err(service)
}

/// One live exchange with the cloud now (connected mode), as `satellite
/// sync` does: on its own connection, since the network call must not hold
/// the writer. Blocking.
pub fn sync_now(
    local: &mut Local,
    caller: &Caller,
) -> Result<(crate::sync::live::Synced, Vec<Transition>)> {
    caller.authorize(Action::Administer, None)?;
    let (config, now) = (local.config().clone(), local.now());
    let keys = Keys::load(&config, now).map_err(service)?;
    let next = crate::sync::live::next_scheduled(&config, now);
    let (synced, transitions) =
        crate::sync::live::exchange_and_record(local.db_for(caller), &config, &keys, now, next)
            .map_err(service)?;
    local.announce(&transitions);
    Ok((synced, transitions))
}

/// `upstream register` in connected mode: registers with the cloud over
/// the network and applies its first entitlement bundle.
pub fn register_live(
    local: &mut Local,
    caller: &Caller,
    token: &str,
) -> Result<(crate::sync::live::Registered, Vec<Transition>)> {
    caller.authorize(Action::Administer, None)?;
    let (config, now) = (local.config().clone(), local.now());
    let keys = Keys::load(&config, now).map_err(service)?;
    let (registered, transitions) =
        crate::sync::live::register(local.db_for(caller), &config, &keys, now, token)
            .map_err(service)?;
    local.announce(&transitions);
    Ok((registered, transitions))
}

/// `satellite export`: the usage bundle sealed from a read snapshot; the
/// write lock is held only to record it, so routers are not kept waiting.
pub fn export_local(local: &mut Local, caller: &Caller) -> Result<Written> {
    caller.authorize(Action::Administer, None)?;
    let (config, now) = (local.config().clone(), local.now());
    let keys = Keys::load(&config, now).map_err(service)?;
    satellite::export_usage_from_snapshot(local.db_for(caller), &config, &keys, now, |c| {
        crate::time_guard::advance(c, now)
            .map(|_| ())
            .map_err(SyncError::from)
    })
    .map_err(service)
}

/// `bundle show`'s verdict: what `import` (satellite) or `process` (cloud)
/// would do with the bundle, by running them and rolling back.
pub fn rehearse(
    local: &mut Local,
    caller: &Caller,
    opened: &bundle::Opened,
) -> Result<crate::sync::Verdict> {
    caller.authorize(Action::Administer, None)?;
    let (config, now) = (local.config().clone(), local.now());
    let keys = Keys::load(&config, now).map_err(service)?;
    crate::sync::rehearse(local.db_for(caller), &config, &keys, opened, now).map_err(service)
}

/// The largest bundle an upload may carry.
pub fn max_upload() -> u64 {
    Limits::default().max_bundle_bytes
}

/// The cloud's satellites, as `satellite satellite list` shows them.
pub fn satellites(c: &Db, caller: &Caller) -> Result<Vec<crate::sync::cloud::SatelliteView>> {
    caller.authorize(Action::Administer, None)?;
    crate::sync::cloud::list(c).map_err(service)
}

/// At the cloud: verifies and applies a satellite's bundle and writes the
/// answer to carry back, as `satellite process FILE` does.
pub fn process(
    c: &Db,
    caller: &Caller,
    config: &Config,
    keys: &Keys,
    opened: &bundle::Opened,
    now: i64,
) -> Result<(crate::sync::cloud::Processed, Vec<Transition>)> {
    on_node(c, caller, config, keys, now, |c, node| {
        crate::sync::cloud::process(c, node, opened)
    })
}

/// At the cloud: a new satellite for `virtual_accounts`, and its token.
pub fn add_satellite(
    c: &Db,
    caller: &Caller,
    config: &Config,
    keys: &Keys,
    request: &NewSatellite<'_>,
    now: i64,
) -> Result<crate::sync::cloud::AddedSatellite> {
    on_node(c, caller, config, keys, now, |c, node| {
        crate::sync::cloud::add_satellite(
            c,
            node,
            request.name,
            request.virtual_accounts,
            request.days,
        )
    })
}

/// At the cloud: makes one satellite, or the cloud (`cloud`), the one node
/// serving a virtual account.
pub fn serve_virtual_account(
    c: &Db,
    caller: &Caller,
    config: &Config,
    keys: &Keys,
    virtual_account: &str,
    by: &str,
    now: i64,
) -> Result<crate::sync::cloud::Served> {
    on_node(c, caller, config, keys, now, |c, node| {
        crate::sync::cloud::serve_virtual_account(c, node, virtual_account, by)
    })
}

/// At a disconnected satellite: the registration request to carry to the
/// cloud, for a satellite token.
pub fn request_registration(
    c: &Db,
    caller: &Caller,
    config: &Config,
    keys: &Keys,
    token: &str,
    now: i64,
) -> Result<crate::sync::Written> {
    on_node(c, caller, config, keys, now, |c, node| {
        satellite::request_registration(c, node, token)
    })
}

/// What `add_satellite` is asked for.
pub struct NewSatellite<'a> {
    pub name: &'a str,
    pub virtual_accounts: &'a [String],
    pub days: u32,
}

/// At the cloud: refuses a satellite's bundles for good.
pub fn revoke_satellite(
    c: &Db,
    caller: &Caller,
    config: &Config,
    keys: &Keys,
    name: &str,
    now: i64,
) -> Result<crate::sync::cloud::SatelliteView> {
    on_node(c, caller, config, keys, now, |c, node| {
        crate::sync::cloud::revoke(c, node, name)
    })
}

/// A bundle this node wrote to its export folder, by file name (no path:
/// nothing outside that folder is served).
pub fn exported_file(caller: &Caller, config: &Config, name: &str) -> Result<Vec<u8>> {
    caller.authorize(Action::Administer, None)?;
    let plain = !name.is_empty()
        && name.len() <= 200
        && name.ends_with(".zip")
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        && !name.starts_with('.');
    if !plain {
        return Err(Error::invalid("file", format!("{name:?} is not a bundle file name")).into());
    }
    std::fs::read(config.sync.export_dir.join(name)).map_err(|e| {
        Error::NotFound(format!(
            "no bundle {name:?} in {}: {e}",
            config.sync.export_dir.display()
        ))
        .into()
    })
}
