//! The unit of work. Every change an operator makes, through any front
//! end, runs here: on one transaction, with the events it wrote stamped
//! with the caller's name, committed, and only then announced (compliance
//! changes to the log, syslog and Call Home).
//!
//! [`Service`] is the server's (the REST API and the portal share it): reads
//! on blocking threads, changes on the group-commit writer. [`Local`] is a
//! one-shot command's (the CLI beside or without a running server): its own
//! connection, one immediate transaction per change.

use super::{Caller, OpsError, Result};
use crate::clock::Clock;
use crate::config::Config;
use crate::licensing::catalog::{Catalog, SharedCatalog};
use crate::licensing::pool::Transition;
use crate::notify::Notifier;
use crate::store::{Db, Store, StoreError};
use std::sync::Arc;

/// Runs a change and stamps the events it wrote with who made it.
fn audited<T>(c: &Db, caller: &Caller, change: impl FnOnce(&Db) -> Result<T>) -> Result<T> {
    let before = crate::store::audit::last_event_id(c)?;
    let value = change(c)?;
    crate::store::audit::stamp_since(c, before, &caller.name)?;
    Ok(value)
}

/// The server's operations: what the API handlers and the portal's views reach.
pub struct Service {
    store: Store,
    catalog: Arc<SharedCatalog>,
    clock: Clock,
    config: Arc<Config>,
    notifier: Arc<Notifier>,
    pub limiter: super::login::Limiter,
}

impl Service {
    pub fn new(
        store: Store,
        catalog: Arc<SharedCatalog>,
        clock: Clock,
        config: Arc<Config>,
        notifier: Arc<Notifier>,
    ) -> Self {
        Self {
            store,
            catalog,
            clock,
            config,
            notifier,
            limiter: super::login::Limiter::default(),
        }
    }

    pub fn now(&self) -> i64 {
        self.clock.unix()
    }

    pub fn catalog(&self) -> Arc<Catalog> {
        self.catalog.get()
    }

    pub fn config(&self) -> &Arc<Config> {
        &self.config
    }

    pub fn clock(&self) -> &Clock {
        &self.clock
    }

    /// A read on a blocking thread: a large listing never stalls the
    /// async workers that serve other calls.
    pub async fn read<T, F>(&self, f: F) -> Result<T>
    where
        F: FnOnce(&Db) -> Result<T> + Send + 'static,
        T: Send + 'static,
    {
        let store = self.store.clone();
        actix_web::web::block(move || store.read(f))
            .await
            .map_err(|_| OpsError::from(StoreError::WorkPanicked))?
    }

    /// Blocking work off the async workers (bundle parsing, key loading).
    pub async fn blocking<T, F>(&self, f: F) -> Result<T>
    where
        F: FnOnce() -> Result<T> + Send + 'static,
        T: Send + 'static,
    {
        actix_web::web::block(f)
            .await
            .map_err(|_| OpsError::from(StoreError::WorkPanicked))?
    }

    /// A change in one transaction on the writer (group commit), recorded
    /// as the caller's.
    pub async fn change<T, F>(&self, caller: Caller, f: F) -> Result<T>
    where
        F: FnOnce(&Db, &Caller) -> Result<T> + Send + 'static,
        T: Send + 'static,
    {
        self.store
            .write(move |c| audited(c, &caller, |c| f(c, &caller)))
            .await
    }

    /// A write that is nobody's change to the estate: a login's session.
    pub async fn record<T, F>(&self, f: F) -> Result<T>
    where
        F: FnOnce(&Db) -> Result<T> + Send + 'static,
        T: Send + 'static,
    {
        self.store.write(f).await
    }

    /// [`Service::change`] for a change that can move license pools in or
    /// out of compliance: the moves are announced once it is committed.
    pub async fn change_pools<T, F>(&self, caller: Caller, f: F) -> Result<(T, Vec<Transition>)>
    where
        F: FnOnce(&Db, &Caller) -> Result<(T, Vec<Transition>)> + Send + 'static,
        T: Send + 'static,
    {
        let (value, transitions) = self.change(caller, f).await?;
        self.notifier.compliance(&transitions);
        Ok((value, transitions))
    }

    /// Work on a connection of its own, off the writer (a live exchange
    /// with the cloud holds it for a network round trip); its compliance
    /// changes are announced when it returns.
    pub async fn on_own_connection<T, F>(&self, f: F) -> Result<(T, Vec<Transition>)>
    where
        F: FnOnce(&mut Local) -> Result<(T, Vec<Transition>)> + Send + 'static,
        T: Send + 'static,
    {
        let (config, clock) = (self.config.clone(), self.clock.clone());
        let (value, transitions) = self
            .blocking(move || {
                let mut local = Local::open(&config, &clock)?;
                local.quiet = true;
                f(&mut local)
            })
            .await?;
        self.notifier.compliance(&transitions);
        Ok((value, transitions))
    }

    /// Writes a usage export as `satellite export` does. Sealed from a read
    /// snapshot on a blocking thread; the writer (and the routers waiting
    /// on it) is held only to record the bundle.
    pub async fn export(&self, caller: Caller) -> Result<crate::sync::Written> {
        let (config, now) = (self.config.clone(), self.now());
        let keys = {
            let (caller, config) = (caller.clone(), config.clone());
            Arc::new(
                self.blocking(move || super::sync::keys(&caller, &config, now))
                    .await?,
            )
        };
        let prepared = {
            let (caller, config, keys) = (caller.clone(), config.clone(), keys.clone());
            self.read(move |c| super::sync::prepare_export(c, &caller, &config, &keys, now))
                .await?
        };
        self.change(caller, move |c, caller| {
            super::sync::finish_export(c, caller, &config, &keys, prepared, now)
        })
        .await
    }

    /// The smart account in a path must be this satellite's.
    pub fn check_account(&self, account: &str) -> Result<String> {
        if account == self.config.account {
            Ok(account.to_string())
        } else {
            Err(crate::error::Error::NotFound(format!(
                "no smart account {account:?} here (this satellite serves {:?})",
                self.config.account
            ))
            .into())
        }
    }
}

/// A one-shot command's operations: its own connection to an existing
/// satellite's database, one immediate transaction per change. Each change
/// also raises the database's clock mark (a server refuses to start on a
/// clock far behind it).
pub struct Local {
    db: Db,
    config: Config,
    clock: Clock,
    /// Set when the server runs this on its behalf: the server announces.
    quiet: bool,
}

impl Local {
    /// Opens the database of a satellite that exists; creates nothing.
    pub fn open(config: &Config, clock: &Clock) -> Result<Self> {
        Ok(Self {
            db: crate::setup::open_existing(config)?,
            config: config.clone(),
            clock: clock.clone(),
            quiet: false,
        })
    }

    pub fn now(&self) -> i64 {
        self.clock.unix()
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    pub fn read<T, E>(
        &self,
        f: impl FnOnce(&Db) -> std::result::Result<T, E>,
    ) -> std::result::Result<T, E> {
        f(&self.db)
    }

    /// A change in one transaction, recorded as the caller's.
    pub fn change<T>(&mut self, caller: &Caller, f: impl FnOnce(&Db) -> Result<T>) -> Result<T> {
        let now = self.now();
        crate::time_guard::write(self.db_for(caller), now, f)
    }

    /// [`Local::change`] for a change that can move license pools; the
    /// moves reach the log and syslog, and the Call Home alerts they queued
    /// are delivered now (what cannot go now stays queued for the server).
    pub fn change_pools<T>(
        &mut self,
        caller: &Caller,
        f: impl FnOnce(&Db) -> Result<(T, Vec<Transition>)>,
    ) -> Result<(T, Vec<Transition>)> {
        let (value, transitions) = self.change(caller, f)?;
        self.announce(&transitions);
        Ok((value, transitions))
    }

    /// The connection itself, for the operations that hold more than one
    /// transaction (a live exchange: snapshot, network, record); what they
    /// write is recorded as the caller's.
    pub(in crate::ops) fn db_for(&mut self, caller: &Caller) -> &mut Db {
        self.db.act_for(&caller.name);
        &mut self.db
    }

    pub(in crate::ops) fn announce(&self, transitions: &[Transition]) {
        if self.quiet || transitions.is_empty() {
            return;
        }
        let syslog =
            self.config.log.syslog.as_deref().and_then(|url| {
                crate::notify::syslog::Syslog::connect(url, &self.config.name).ok()
            });
        Notifier::new(syslog, None, self.clock.clone()).compliance(transitions);
        crate::notify::deliver_waiting(&self.config, self.clock.clone());
    }
}

/// Blocking work whose thread panicked: the change (if any) was rolled back.
impl From<actix_web::error::BlockingError> for OpsError {
    fn from(_: actix_web::error::BlockingError) -> Self {
        StoreError::WorkPanicked.into()
    }
}
