//! `satellite backup FILE` and `satellite restore FILE`.
//!
//! A backup is a zip: `backup.json` (what it holds, with hashes), the
//! database copied consistently while the server serves (`VACUUM INTO`),
//! and every file of the data dir beside it: the CA and server keys and
//! certificates and the bundle signer, i.e. the satellite's identity.
//!
//! Restore goes onto a stopped satellite. It refuses a backup that is older
//! than the last usage bundle the cloud acknowledged: the restored satellite
//! would number its next bundles with sequences the cloud already has, and
//! the cloud would refuse them as replays.

use crate::clock::Clock;
use crate::config::Config;
use crate::store::{self, backup::PeerSequences, Location};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

pub const FORMAT: &str = "satellite-backup/1";
const MANIFEST: &str = "backup.json";
const DATABASE: &str = "satellite.db";
/// Refused beyond this (a zip bomb, or not a backup).
const MAX_ENTRY_BYTES: u64 = 8 * 1024 * 1024 * 1024;
const MAX_ENTRIES: usize = 64;

#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    #[error("{0}")]
    Refused(String),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    Store(#[from] store::StoreError),
    #[error(transparent)]
    Service(#[from] crate::error::Error),
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    #[error(transparent)]
    Move(#[from] store::to_postgres::MoveError),
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> BackupError + '_ {
    move |source| BackupError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// What `backup.json` records.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
pub struct Manifest {
    pub format: String,
    pub name: String,
    pub role: crate::config::Role,
    pub account: String,
    pub created_at: String,
    /// File name -> SHA-256 (hex).
    pub files: std::collections::BTreeMap<String, String>,
    /// The sync ledger's high-water marks at backup time.
    pub sequences: Vec<PeerSequences>,
}

/// Writes a backup of the satellite `config` names to `file`.
pub fn backup(config: &Config, clock: &Clock, file: &Path) -> Result<Manifest, BackupError> {
    if file.exists() {
        return Err(BackupError::Refused(format!(
            "{} already exists; name a new file (a backup never overwrites one)",
            file.display()
        )));
    }
    let conn = crate::setup::open_existing(config)?;
    let staging = tempfile::Builder::new()
        .prefix(".satellite-backup")
        .tempdir_in(parent(file))
        .map_err(io(file))?;
    let db_copy = staging.path().join(DATABASE);
    match Location::of(config) {
        Location::Embedded(_) => store::backup::copy_to(&conn, &db_copy)?,
        // The same file as from an embedded satellite: a backup restores
        // onto either backend.
        Location::Postgres(_) => {
            let embedded = store::open_and_migrate(&db_copy)?;
            store::to_postgres::copy_out(&conn, &embedded)?;
        }
    }
    // The copy's own ledger, not the live one: it must describe what is restored.
    let sequences = store::backup::sequences(&store::connect(&db_copy)?)?;

    let mut entries: Vec<(String, PathBuf)> = vec![(DATABASE.into(), db_copy.clone())];
    let dir = std::fs::read_dir(&config.data_dir).map_err(io(&config.data_dir))?;
    for entry in dir {
        let entry = entry.map_err(io(&config.data_dir))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let is_file = entry.file_type().map(|t| t.is_file()).unwrap_or(false);
        // The live database and its journal are in the copy already; the
        // server's lock belongs to the running server, not to its identity.
        if !is_file
            || name.starts_with(DATABASE)
            || name == crate::serve_lock::FILE
            || !safe_name(&name)
        {
            continue;
        }
        entries.push((name, entry.path()));
    }
    // Hashed and then copied through fixed buffers: a backup of a large
    // database costs its size on disk, not in memory.
    let mut files = std::collections::BTreeMap::new();
    for (name, path) in &entries {
        files.insert(name.clone(), sha256_of_file(path)?);
    }
    let manifest = Manifest {
        format: FORMAT.into(),
        name: config.name.clone(),
        role: config.role,
        account: config.account.clone(),
        created_at: crate::clock::rfc3339(clock.unix()),
        files,
        sequences,
    };
    let manifest_json = serde_json::to_vec_pretty(&manifest)
        .map_err(|e| BackupError::Refused(format!("cannot write the manifest: {e}")))?;

    // Written beside the target, then renamed: a failed backup leaves no
    // half file that looks like a backup. 0600: it holds private keys.
    let partial = staging.path().join("backup.zip");
    {
        use std::os::unix::fs::OpenOptionsExt;
        let out = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&partial)
            .map_err(io(&partial))?;
        let mut zip = zip::ZipWriter::new(out);
        let options = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Deflated)
            .unix_permissions(0o600)
            .large_file(true);
        let zip_err =
            |e: zip::result::ZipError| BackupError::Refused(format!("{}: {e}", file.display()));
        zip.start_file(MANIFEST, options).map_err(zip_err)?;
        zip.write_all(&manifest_json).map_err(io(&partial))?;
        for (name, path) in &entries {
            zip.start_file(name.as_str(), options).map_err(zip_err)?;
            let mut source = std::fs::File::open(path).map_err(io(path))?;
            std::io::copy(&mut source, &mut zip).map_err(io(&partial))?;
        }
        let out = zip.finish().map_err(zip_err)?;
        out.sync_all().map_err(io(&partial))?;
    }
    std::fs::rename(&partial, file).map_err(io(file))?;
    Ok(manifest)
}

/// SHA-256 of a file's content, lowercase hex, read in fixed-size pieces.
fn sha256_of_file(path: &Path) -> Result<String, BackupError> {
    let mut file = std::fs::File::open(path).map_err(io(path))?;
    let mut hasher = crate::pki::Sha256Writer::default();
    std::io::copy(&mut file, &mut hasher).map_err(io(path))?;
    Ok(hasher.finish_hex())
}

/// What a restore did.
#[derive(Debug, serde::Serialize)]
pub struct Restored {
    pub name: String,
    pub created_at: String,
    pub files: Vec<String>,
    /// Where the database that was replaced now is (kept, never deleted).
    pub previous_database: Option<PathBuf>,
}

/// Restores `file` into the data dir of the stopped satellite `config` names.
pub fn restore(config: &Config, clock: &Clock, file: &Path) -> Result<Restored, BackupError> {
    ensure_stopped(config)?;
    let archive_file = std::fs::File::open(file).map_err(io(file))?;
    let mut archive = zip::ZipArchive::new(archive_file).map_err(|e| {
        BackupError::Refused(format!(
            "{} is not a satellite backup ({e}); name a file written by `satellite backup`",
            file.display()
        ))
    })?;
    if archive.len() > MAX_ENTRIES {
        return Err(BackupError::Refused(format!(
            "{} has {} entries; a backup has at most {MAX_ENTRIES}",
            file.display(),
            archive.len()
        )));
    }
    let manifest: Manifest = {
        let bytes = read_entry(&mut archive, MANIFEST, file)?;
        serde_json::from_slice(&bytes).map_err(|e| {
            BackupError::Refused(format!("{}: {MANIFEST} is unreadable: {e}", file.display()))
        })?
    };
    if manifest.format != FORMAT {
        return Err(BackupError::Refused(format!(
            "{}: format {:?}, this version restores {FORMAT}",
            file.display(),
            manifest.format
        )));
    }
    if manifest.role != config.role {
        return Err(BackupError::Refused(format!(
            "{} is a backup of a {:?}, but the configuration {} is a {:?}; restore it with that role",
            file.display(),
            manifest.role,
            config.source,
            config.role
        )));
    }
    if !manifest.files.contains_key(DATABASE) {
        return Err(BackupError::Refused(format!(
            "{}: holds no {DATABASE}",
            file.display()
        )));
    }
    // Folders this restore makes go again if it is refused.
    let made: Vec<PathBuf> = [
        &config.sync.export_dir,
        &config.sync.import_dir,
        &config.data_dir,
    ]
    .into_iter()
    .filter(|d| !d.exists())
    .cloned()
    .collect();
    config.create_dirs()?;
    let restored = unpack(config, clock, file, archive, manifest);
    if restored.is_err() {
        // Only empty ones: remove_dir refuses anything else.
        for dir in made.iter().rev() {
            let _ = std::fs::remove_dir(dir);
        }
    }
    restored
}

/// The second half of `restore`: unpack, check, swap in.
fn unpack(
    config: &Config,
    clock: &Clock,
    file: &Path,
    mut archive: zip::ZipArchive<std::fs::File>,
    manifest: Manifest,
) -> Result<Restored, BackupError> {
    let dir = &config.data_dir;
    let staging = tempfile::Builder::new()
        .prefix(".satellite-restore")
        .tempdir_in(dir)
        .map_err(io(dir))?;
    // Everything is unpacked and checked before the data dir is touched.
    for (name, sha) in &manifest.files {
        if !safe_name(name) {
            return Err(BackupError::Refused(format!(
                "{}: unsafe entry name {name:?}",
                file.display()
            )));
        }
        let bytes = read_entry(&mut archive, name, file)?;
        if crate::pki::sha256_hex(&bytes) != *sha {
            return Err(BackupError::Refused(format!(
                "{}: {name} does not match its hash in {MANIFEST}; the backup is damaged",
                file.display()
            )));
        }
        let path = staging.path().join(name);
        crate::pki::files::create_private(&path, &bytes).map_err(io(&path))?;
    }
    let staged_db = staging.path().join(DATABASE);
    let problems = store::backup::quick_check(&store::connect(&staged_db)?)?;
    if !problems.is_empty() {
        return Err(BackupError::Refused(format!(
            "{}: its database fails the integrity check ({}); use another backup",
            file.display(),
            problems.join("; ")
        )));
    }
    let stamp = crate::clock::rfc3339(clock.unix()).replace(':', "");
    let aside = dir.join(format!("{DATABASE}.before-restore-{stamp}"));
    let location = Location::of(config);
    let live = location.connect_if_exists()?;
    if let Some(live) = &live {
        let sequences = store::backup::sequences(live)?;
        check_not_behind(&sequences, &manifest.sequences, &manifest.created_at)?;
    }
    let mut previous = None;
    match &location {
        Location::Embedded(live_db) => {
            drop(live);
            // Swap in: the replaced database (with its journal, which
            // belongs to it and must not be applied to the restored one)
            // is kept aside.
            if live_db.exists() {
                std::fs::rename(live_db, &aside).map_err(io(live_db))?;
                for suffix in ["-wal", "-shm"] {
                    let journal = dir.join(format!("{DATABASE}{suffix}"));
                    if journal.exists() {
                        let target = dir.join(format!("{DATABASE}.before-restore-{stamp}{suffix}"));
                        std::fs::rename(&journal, &target).map_err(io(&journal))?;
                    }
                }
                previous = Some(aside);
            }
        }
        Location::Postgres(target) => {
            let pg = match live {
                Some(pg) => {
                    // The other node of a pair serves from the same database.
                    if let Some(active) = store::leader::active_node(&pg)?.filter(|a| a.held) {
                        return Err(BackupError::Refused(format!(
                            "the node {} is serving from {}; stop the satellite on every node \
                             of the pair, then restore",
                            active.host,
                            target.shown()
                        )));
                    }
                    // What the database held is kept aside as an embedded
                    // copy (restorable like any backup's).
                    let kept = store::open_and_migrate(&aside)?;
                    store::to_postgres::copy_out(&pg, &kept)?;
                    previous = Some(aside);
                    pg
                }
                // An empty database: nothing to keep, no node serving.
                None => location.connect()?,
            };
            // Replaced in one transaction.
            let staged = store::connect(&staged_db)?;
            store::to_postgres::replace(&staged, &pg, &target.shown())?;
        }
    }
    let mut restored = Vec::new();
    for name in manifest.files.keys() {
        if name == DATABASE && location.embedded_file().is_none() {
            restored.push(name.clone());
            continue;
        }
        let target = dir.join(name);
        std::fs::rename(staging.path().join(name), &target).map_err(io(&target))?;
        if name.ends_with(".pem") {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&target, std::fs::Permissions::from_mode(0o644))
                .map_err(io(&target))?;
        }
        restored.push(name.clone());
    }
    Ok(Restored {
        name: manifest.name,
        created_at: manifest.created_at,
        files: restored,
        previous_database: previous,
    })
}

/// Refuses a backup whose sent sequence is below what the peer acknowledged.
fn check_not_behind(
    live: &[PeerSequences],
    backup: &[PeerSequences],
    created_at: &str,
) -> Result<(), BackupError> {
    for now in live {
        let Some(acknowledged) = now.acknowledged else {
            continue;
        };
        let then = backup
            .iter()
            .find(|b| b.peer == now.peer)
            .and_then(|b| b.sent)
            .unwrap_or(0);
        if then < acknowledged {
            return Err(BackupError::Refused(format!(
                "this backup (taken {created_at}) is older than the sync with {}: it knows bundles up to \
                 sequence {then}, but {} already acknowledged sequence {acknowledged}. Restored, this \
                 satellite would send sequence numbers the peer refuses as replays. Restore a backup \
                 taken after the last sync, or keep the current database",
                now.peer, now.peer
            )));
        }
    }
    Ok(())
}

/// A restore under a running server would be overwritten by it: refuse
/// when the configured device address is in use.
fn ensure_stopped(config: &Config) -> Result<(), BackupError> {
    crate::serve_lock::ensure_free(&config.data_dir)
        .map_err(|e| BackupError::Refused(format!("{e}, then restore")))?;
    let addr = config.device.listen;
    if addr.port() == 0 {
        return Ok(());
    }
    match std::net::TcpListener::bind(addr) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => Err(BackupError::Refused(format!(
            "device.listen {addr} is in use: the satellite seems to be running; stop it first \
             (systemctl stop satellite), then restore"
        ))),
        Err(_) => Ok(()),
    }
}

fn read_entry(
    archive: &mut zip::ZipArchive<std::fs::File>,
    name: &str,
    file: &Path,
) -> Result<Vec<u8>, BackupError> {
    let mut entry = archive
        .by_name(name)
        .map_err(|e| BackupError::Refused(format!("{}: no entry {name} ({e})", file.display())))?;
    if entry.size() > MAX_ENTRY_BYTES {
        return Err(BackupError::Refused(format!(
            "{}: {name} is larger than {MAX_ENTRY_BYTES} bytes",
            file.display()
        )));
    }
    let mut bytes = Vec::new();
    entry
        .by_ref()
        .take(MAX_ENTRY_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(io(file))?;
    Ok(bytes)
}

/// A plain file name: no folders, no hidden files, nothing to climb out with.
fn safe_name(name: &str) -> bool {
    !name.is_empty()
        && !name.starts_with('.')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'))
}

fn parent(file: &Path) -> &Path {
    file.parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or_else(|| Path::new("."))
}

/// `satellite migrate --to-postgres URL`: the stopped satellite's database
/// copied into an empty PostgreSQL database. The data dir keeps its keys
/// and certificates and its own database (nothing here is removed).
pub fn move_to_postgres(
    config: &Config,
    url: &str,
    password_file: Option<&Path>,
) -> Result<store::to_postgres::Copied, BackupError> {
    ensure_stopped(config).map_err(|e| match e {
        BackupError::Refused(m) => BackupError::Refused(m.replace("then restore", "then move it")),
        e => e,
    })?;
    let password = match password_file {
        Some(file) => {
            let text = std::fs::read_to_string(file).map_err(io(file))?;
            Some(text.trim_end_matches(['\r', '\n']).to_string())
        }
        None => None,
    };
    let db_path = config.data_dir.join(DATABASE);
    if !db_path.exists() {
        return Err(BackupError::Refused(format!(
            "no database at {}: there is nothing to move (check -c and data_dir)",
            db_path.display()
        )));
    }
    let embedded = store::connect(&db_path)?;
    let target = store::to_postgres::target(url);
    let pg = store::to_postgres::connect(url, password.as_deref())?;
    Ok(store::to_postgres::copy(&embedded, &pg, &target)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peer(sent: Option<i64>, acknowledged: Option<i64>) -> PeerSequences {
        PeerSequences {
            peer: "cloud-1".into(),
            sent,
            acknowledged,
            received: None,
        }
    }

    #[test]
    fn a_backup_behind_the_acknowledged_sequence_is_refused() {
        let live = [peer(Some(5), Some(4))];
        let err = check_not_behind(&live, &[peer(Some(3), Some(3))], "t").unwrap_err();
        assert!(err.to_string().contains("acknowledged sequence 4"), "{err}");
        assert!(check_not_behind(&live, &[], "t").is_err());
        assert!(check_not_behind(&live, &[peer(Some(4), Some(3))], "t").is_ok());
        assert!(check_not_behind(&[peer(Some(5), None)], &[], "t").is_ok());
    }

    #[test]
    fn entry_names_are_plain() {
        assert!(safe_name("ca.key"));
        assert!(safe_name("satellite.db"));
        assert!(!safe_name("../x"));
        assert!(!safe_name("a/b"));
        assert!(!safe_name(".hidden"));
    }
}
