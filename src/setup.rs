//! First start: the data dir, the database, the CA, the server certificate
//! and the bootstrap admin. Idempotent: a second run creates what is missing
//! and changes nothing that exists.

use crate::clock::Clock;
use crate::config::Config;
use crate::domain::DEFAULT_VIRTUAL_ACCOUNT;
use crate::error::{Error, Result};
use crate::pki::{self, CertificateAuthority};
use crate::store::{self, accounts, events, users, Location};
use std::path::PathBuf;

/// What this run of init created (everything else already existed).
#[derive(Debug, Default)]
pub struct Created {
    pub database: bool,
    pub ca: bool,
    pub server_certificate: bool,
    /// Shown once; only its hash is stored.
    pub admin_password: Option<String>,
    /// Things an operator should fix that do not stop the server.
    pub warnings: Vec<String>,
}

/// Where the listeners' certificate and key are.
#[derive(Debug, Clone)]
pub struct ServerIdentity {
    pub cert: PathBuf,
    pub key: PathBuf,
}

pub fn server_identity(config: &Config) -> ServerIdentity {
    match (&config.device.tls_cert, &config.device.tls_key) {
        (Some(cert), Some(key)) => ServerIdentity {
            cert: cert.clone(),
            key: key.clone(),
        },
        _ => ServerIdentity {
            cert: config.data_dir.join(pki::SERVER_CERT_FILE),
            key: config.data_dir.join(pki::SERVER_KEY_FILE),
        },
    }
}

pub fn admin_identity(config: &Config) -> ServerIdentity {
    match (&config.admin.tls_cert, &config.admin.tls_key) {
        (Some(cert), Some(key)) => ServerIdentity {
            cert: cert.clone(),
            key: key.clone(),
        },
        _ => server_identity(config),
    }
}

/// Opens the database of a satellite that exists. Every command but `init`
/// and `serve` comes here, so a command run in the wrong folder creates
/// nothing and says where it looked.
pub fn open_existing(config: &Config) -> Result<crate::store::Db> {
    let location = Location::of(config);
    let Some(mut conn) = location.connect_if_exists()? else {
        let source = if config.source.starts_with('<') {
            format!(
                "no configuration file at {}, so the embedded defaults",
                crate::config::SEARCH_ORDER
            )
        } else {
            format!("configuration {}", config.source)
        };
        return Err(Error::NotFound(format!(
            "no satellite here: {} does not exist ({source}); create one with `satellite init`, \
             or name an existing satellite's configuration with -c FILE or $SATELLITE_CONFIG",
            location.shown()
        )));
    };
    location.migrate(&mut conn)?;
    store::ready_for_commands(&conn)?;
    // OpenSSL 3 reads its configuration and seeds its generator on first
    // use, milliseconds that would otherwise pass inside the first write
    // transaction that makes a secret (a token, a client), with the
    // database locked for the running server.
    crate::pki::warm_up();
    Ok(conn)
}

/// Refuses to start on a clock more than a day behind the latest time the
/// database has seen (a new database has seen none).
pub fn check_clock(config: &Config, clock: &Clock) -> Result<()> {
    // Not migrated yet: a refused start leaves the database as it was.
    let Some(mut conn) = Location::of(config).connect_if_exists()? else {
        return Ok(());
    };
    store::transaction(&mut conn, |tx| crate::time_guard::check_start(tx, clock))
}

pub fn ensure(config: &Config, clock: &Clock) -> Result<(Created, CertificateAuthority)> {
    let now = clock.unix();
    let dir = &config.data_dir;
    let mut created = Created::default();
    let location = Location::of(config);
    let existing = location.connect_if_exists()?;
    created.database = existing.is_none();
    // A PostgreSQL database that cannot be used (unreachable, a wrong
    // password, a newer schema) refuses the start before anything is made
    // here; a new embedded database needs its folder first.
    let early = match (existing, location.embedded_file()) {
        (Some(mut conn), _) => {
            location.migrate(&mut conn)?;
            Some(conn)
        }
        (None, None) => Some(location.open_and_migrate()?),
        (None, Some(_)) => None,
    };
    config
        .create_dirs()
        .map_err(|e| Error::invalid(e.key, e.reason))?;
    let mut conn = match early {
        Some(conn) => conn,
        None => location.open_and_migrate()?,
    };

    let ca_cert = dir.join(pki::CA_CERT_FILE);
    let ca_key = dir.join(pki::CA_KEY_FILE);
    let ca = match (ca_cert.exists(), ca_key.exists()) {
        (true, true) => CertificateAuthority::load(dir)?,
        (false, false) => {
            let issued = store::names::issued_certificates(&conn)?;
            if issued > 0 {
                return Err(Error::invalid(
                    "data_dir",
                    format!(
                        "{} is missing but this database holds {issued} certificates it signed; \
                         restore ca.pem and ca.key from backup (a new CA would strand every registered router)",
                        ca_cert.display()
                    ),
                ));
            }
            created.ca = true;
            CertificateAuthority::create(dir, &format!("{} Satellite CA", config.name), now)?
        }
        _ => {
            return Err(Error::invalid(
                "data_dir",
                format!(
                "{} and {} must both exist or both be absent; restore the missing one from backup \
                     (creating a new CA would strand every registered router)",
                ca_cert.display(),
                ca_key.display()
            ),
            ))
        }
    };

    // The bundle-signing key (sync): issued by the CA, never overwritten.
    crate::pki::signer::BundleSigner::ensure(dir, &ca, &config.name, now)?;

    if config.device.tls_cert.is_none() {
        let cert = dir.join(pki::SERVER_CERT_FILE);
        let key = dir.join(pki::SERVER_KEY_FILE);
        match (cert.exists(), key.exists()) {
            (true, true) => {
                if let Some(warning) = pki::server_certificate_problem(&cert, &config.device.hostnames, now) {
                    created.warnings.push(warning);
                }
            }
            (false, false) => {
                ca.create_server_certificate(dir, &config.device.hostnames, now)?;
                created.server_certificate = true;
            }
            _ => {
                return Err(Error::invalid(
                    "data_dir",
                    format!(
                        "{} and {} must both exist or both be absent; delete the one left to have both made again",
                        cert.display(),
                        key.display()
                    ),
                ))
            }
        }
    }

    created.admin_password =
        store::transaction(&mut conn, |tx| {
            // A satellite belongs to one smart account: a changed `account:` would
            // silently start a second, empty one beside it.
            let existing = crate::store::names::account_names(tx)?;
            if !existing.is_empty() && !existing.contains(&config.account) {
                return Err(Error::invalid(
                    "account",
                    format!(
                    "this data dir belongs to smart account {}, not {:?}; put that name back in \
                     `account:` (a satellite keeps the account it was initialized with)",
                    existing.iter().map(|a| format!("{a:?}")).collect::<Vec<_>>().join(", "),
                    config.account
                ),
                ));
            }
            let account_id = accounts::ensure_account(tx, &config.account, now)?;
            accounts::ensure_virtual_account(tx, account_id, DEFAULT_VIRTUAL_ACCOUNT, now)?;
            // Hashed only on the first start: argon2 is slow on purpose.
            let password = match users::exist(tx)? {
                true => None,
                false => {
                    let (password, hash) = crate::pki::password::bootstrap()?;
                    users::create_bootstrap_admin(tx, &hash, now)?;
                    Some(password)
                }
            };
            crate::time_guard::advance(tx, now)?;
            if created.database {
                events::record(
                    tx,
                    now,
                    events::NewEvent {
                        kind: "system",
                        severity: events::Severity::Info,
                        virtual_account: None,
                        subject: Some(&config.name),
                        message: format!(
                            "initialized {} {:?} for smart account {:?}",
                            role_word(config),
                            config.name,
                            config.account
                        ),
                    },
                )?;
            }
            Ok::<_, Error>(password)
        })?;
    Ok((created, ca))
}

fn role_word(config: &Config) -> &'static str {
    match config.role {
        crate::config::Role::Satellite => "satellite",
        crate::config::Role::Cloud => "cloud",
    }
}
