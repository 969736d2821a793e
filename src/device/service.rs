use super::callers::{check_live, CallerCache, Known};
use super::replay;
use super::wire::{
    AuthorizationAnswer, AuthorizationTimes, EntitlementAnswer, IdentityAnswer, Message,
    MessageType, RegistrationTimes, RenewKind,
};
use crate::clock::{rfc3339, Clock};
use crate::domain::{TokenProblem, TokenSecret, Udi};
use crate::error::{Error, Result};
use crate::licensing::pool::{PoolCache, Transition};
use crate::licensing::{self, catalog::SharedCatalog};
use crate::notify::Notifier;
use crate::pki::{parse_csr, CertificateAuthority, IssuedCertificate};
use crate::store::certificates::CertificateRecord;
use crate::store::events::{NewEvent, Severity};
use crate::store::instances::{Instance, NewRegistration};
use crate::store::messages::{Recorded, Sender};
use crate::store::Db;
use crate::store::{certificates, events, instances, messages, tokens, Store};
use serde_json::json;
use std::sync::Arc;

/// Devices renew their identity after 180 days (certificates last 365).
const RENEW_AFTER_DAYS: i64 = 180;

/// The client certificate presented on the TLS connection, by SHA-256 of its DER.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PeerCertificate {
    pub fingerprint: [u8; 32],
}

#[derive(Clone)]
pub struct DeviceService {
    store: Store,
    ca: Arc<CertificateAuthority>,
    clock: Clock,
    catalog: Arc<SharedCatalog>,
    notifier: Arc<Notifier>,
    /// The writer's copies of the pools, for ENTITLEMENT and RENEW auth.
    pools: Arc<PoolCache>,
    /// The writer's copies of recent callers, for certificate-authenticated messages.
    callers: Arc<CallerCache>,
}

/// A certificate-authenticated caller: the certificate it presented and the
/// record this satellite kept when it issued it.
struct Caller {
    fingerprint: [u8; 32],
    record: CertificateRecord,
}

impl DeviceService {
    pub fn new(
        store: Store,
        ca: Arc<CertificateAuthority>,
        clock: Clock,
        catalog: Arc<SharedCatalog>,
        notifier: Arc<Notifier>,
    ) -> Self {
        Self {
            store,
            ca,
            clock,
            catalog,
            notifier,
            pools: Arc::new(PoolCache::default()),
            callers: Arc::new(CallerCache::default()),
        }
    }

    pub fn clock(&self) -> &Clock {
        &self.clock
    }

    /// Handles one message; the answer is the JSON text to send back.
    pub async fn handle(&self, message: Message, peer: Option<PeerCertificate>) -> Result<String> {
        match message.message_type {
            MessageType::Registration => {
                let udi = message.udi.as_ref().map(|u| u.key());
                let result = self.register(message).await;
                if let (Err(e @ Error::Token(_)), Some(udi)) = (&result, udi) {
                    self.notifier.registration_refused(&udi, &e.to_string());
                }
                result
            }
            MessageType::Renew if message.kind == Some(RenewKind::Id) => {
                self.renew_id(message, peer).await
            }
            MessageType::Renew if message.kind.is_none() => Err(Error::invalid(
                "kind",
                "missing field `kind` (\"id\" or \"auth\")",
            )),
            MessageType::Deregistration => self.deregister(message, peer).await,
            MessageType::Acknowledgement => self.acknowledge(message, peer).await,
            MessageType::Entitlement | MessageType::Renew => self.authorize(message, peer).await,
        }
    }

    async fn register(&self, message: Message) -> Result<String> {
        let udi = message.require_udi()?.clone();
        let token = TokenSecret::from_presented(Message::require(&message.idtoken, "idtoken")?);
        let csr_pem = Message::require(&message.csr, "csr")?.to_string();
        let udi_key = udi.key();
        let now = self.clock.unix();

        // Refuse bad tokens before spending a signature on them; one read
        // finds the token, the device and the first answer to a retry.
        let (stored, existing, first) = self.store.read(|c| {
            let Some(stored) = tokens::find(c, &token)? else {
                return Err(Error::Token(TokenProblem::Unknown));
            };
            // At the cloud, a token made before its virtual account went
            // to a satellite registers nothing there any more.
            crate::licensing::serving::check_served_here(
                c,
                stored.virtual_account_id,
                &stored.virtual_account,
                "registering a router",
            )?;
            let sender = Sender {
                udi_key: &udi_key,
                message_type: message.message_type.as_str(),
                token_id: Some(stored.id),
            };
            let first = first_answer(c, &sender, &message.message_id, &self.ca)?;
            let existing = match first {
                Some(_) => None,
                None => instances::find_by_udi(c, &udi.pid, &udi.sn)?,
            };
            Ok::<_, Error>((stored, existing, first))
        })?;
        // A retry gets its answer even if its own first try used the token up.
        if let Some(answer) = first {
            return Ok(answer);
        }
        stored.state.check(now).map_err(Error::Token)?;

        // A UDI registered before keeps its instance id (the certificate's
        // CN). New ids grow with time (UUIDv7 on the satellite's clock), so
        // their index takes them at its end, not each on a random page.
        let instance_id = existing
            .as_ref()
            .map(|i| i.instance_id.clone())
            .unwrap_or_else(|| {
                let second = u64::try_from(now).unwrap_or(0);
                uuid::Uuid::new_v7(uuid::Timestamp::from_unix(uuid::NoContext, second, 0))
                    .to_string()
            });
        let issued = self.sign(csr_pem, instance_id.clone(), now).await?;
        let answer = identity_answer(
            MessageType::Registration,
            &message.message_id,
            &issued,
            self.ca.certificate_pem(),
            (&instance_id, &stored.account, &stored.virtual_account),
            Some(stored.export_controlled),
            &udi,
            now,
            now,
        )?;

        let hostname = message.hostname.clone();
        let catalog = self.catalog.get();
        let kept = replay::compact(
            &answer,
            &issued.pem,
            &issued.serial_hex,
            self.ca.certificate_pem(),
        );
        self.answer_once(udi_key.clone(), message, Some(stored.id), kept, move |c| {
            // Checked again inside the write: the read above raced with
            // every other registration on the same token.
            let token_now = tokens::find(c, &token)?.ok_or(Error::Token(TokenProblem::Unknown))?;
            token_now.state.check(now).map_err(Error::Token)?;
            tokens::record_use(c, token_now.id)?;
            let previous = instances::find_by_udi(c, &udi.pid, &udi.sn)?;
            if let Some(previous) = &previous {
                if previous.instance_id != instance_id {
                    return Err(Error::Conflict(
                        "this device registered twice at the same moment; retry".into(),
                    ));
                }
                certificates::revoke_for_instance(
                    c,
                    previous.id,
                    now,
                    "superseded by a new registration",
                )?;
            }
            let row_id = instances::upsert(
                c,
                &NewRegistration {
                    instance_id: &instance_id,
                    virtual_account_id: token_now.virtual_account_id,
                    pid: &udi.pid,
                    sn: &udi.sn,
                    hostname: hostname.as_deref(),
                    token_id: token_now.id,
                    now,
                },
            )?;
            certificates::insert(c, &issued, row_id, &udi_key)?;
            // Registered again into another virtual account: its demand goes along.
            let transitions = match &previous {
                Some(p) if p.virtual_account_id != token_now.virtual_account_id => {
                    crate::inventory::move_usage(
                        c,
                        &catalog,
                        p,
                        token_now.virtual_account_id,
                        &token_now.virtual_account,
                        now,
                    )?
                }
                _ => Vec::new(),
            };
            let moved = previous
                .as_ref()
                .filter(|p| p.virtual_account_id != token_now.virtual_account_id)
                .map(|p| format!(" (moved from virtual account {:?})", p.virtual_account))
                .unwrap_or_default();
            events::record(
                c,
                now,
                NewEvent {
                    kind: "registration",
                    severity: Severity::Info,
                    virtual_account: Some(&token_now.virtual_account),
                    subject: Some(&udi.to_string()),
                    message: format!(
                        "product instance {udi} ({}) {}registered with token {}…{moved}",
                        hostname.as_deref().unwrap_or("no hostname"),
                        if previous.is_some() { "re-" } else { "" },
                        token.prefix().unwrap_or(""),
                    ),
                },
            )?;
            Ok((answer, transitions))
        })
        .await
    }

    async fn renew_id(&self, message: Message, peer: Option<PeerCertificate>) -> Result<String> {
        let csr_pem = Message::require(&message.csr, "csr")?.to_string();
        let caller = self.caller(peer)?;
        if let Some(answer) = self.replay(&caller.record.udi, &message, None)? {
            return Ok(answer);
        }
        let instance = self.live_instance(&caller)?;
        let now = self.clock.unix();
        let udi = Udi {
            pid: instance.pid.clone(),
            sn: instance.sn.clone(),
        };
        let issued = self
            .sign(csr_pem, instance.instance_id.clone(), now)
            .await?;
        let answer = identity_answer(
            MessageType::Renew,
            &message.message_id,
            &issued,
            self.ca.certificate_pem(),
            (
                &instance.instance_id,
                &instance.account,
                &instance.virtual_account,
            ),
            None,
            &udi,
            instance.registered_at,
            now,
        )?;
        let kept = replay::compact(
            &answer,
            &issued.pem,
            &issued.serial_hex,
            self.ca.certificate_pem(),
        );
        self.answer_once(caller.record.udi.clone(), message, None, kept, move |c| {
            let instance = still_live(c, &caller.fingerprint, now)?;
            certificates::revoke_for_instance(
                c,
                instance.id,
                now,
                "superseded by identity renewal",
            )?;
            certificates::insert(c, &issued, instance.id, &caller.record.udi)?;
            instances::mark_renewed(c, instance.id, now)?;
            events::record(
                c,
                now,
                NewEvent {
                    kind: "renewal",
                    severity: Severity::Info,
                    virtual_account: Some(&instance.virtual_account),
                    subject: Some(&udi.to_string()),
                    message: format!("product instance {udi} renewed its identity certificate"),
                },
            )?;
            Ok((answer, Vec::new()))
        })
        .await
    }

    async fn authorize(&self, message: Message, peer: Option<PeerCertificate>) -> Result<String> {
        let requested = message.entitlements.clone().ok_or_else(|| {
            Error::invalid(
                "entitlements",
                "missing field `entitlements` ([{\"tag\": ..., \"count\": ...}])",
            )
        })?;
        let now = self.clock.unix();
        let catalog = self.catalog.get();
        let message_type = message.message_type.as_str();
        let message_id = message.message_id.clone();
        let (pools, writer) = (self.pools.clone(), self.store.writer().clone());
        self.answer_caller(peer, message, KeepsCopies::Yes, move |c, known| {
            let mut pools = pools.open(writer.generation());
            let instance = &mut known.instance;
            let auth = licensing::authorize(
                c,
                &catalog,
                instance,
                &mut known.demand,
                &requested,
                now,
                Some(&mut pools),
            )?;
            let answer = AuthorizationAnswer {
                authorization: AuthorizationTimes {
                    authorized_at: rfc3339(auth.authorized_at),
                    deadline: rfc3339(auth.deadline),
                    next_communication: rfc3339(auth.next_communication),
                },
                entitlements: auth
                    .entitlements
                    .iter()
                    .map(|(tag, count, status)| EntitlementAnswer {
                        count: *count,
                        status: status.as_str(),
                        tag,
                    })
                    .collect(),
                instance_id: &instance.instance_id,
                message_id: &message_id,
                status: auth.overall.as_str(),
                message_type,
                virtual_account: &instance.virtual_account,
            };
            let answer = serde_json::to_string(&answer)
                .map_err(|e| Error::invalid("answer", e.to_string()))?;
            Ok((answer, auth.transitions))
        })
        .await
    }

    async fn deregister(&self, message: Message, peer: Option<PeerCertificate>) -> Result<String> {
        let now = self.clock.unix();
        let message_id = message.message_id.clone();
        let catalog = self.catalog.get();
        self.answer_caller(peer, message, KeepsCopies::No, move |c, known| {
            let instance = &known.instance;
            let answer = json!({
                "type": "DEREGISTRATION",
                "message_id": message_id,
                "status": "SUCCESS",
                "instance_id": instance.instance_id,
                "udi": {"pid": instance.pid, "sn": instance.sn},
            })
            .to_string();
            let transitions =
                crate::inventory::release(c, &catalog, instance, "deregistered", now)?;
            Ok((answer, transitions))
        })
        .await
    }

    async fn acknowledge(&self, message: Message, peer: Option<PeerCertificate>) -> Result<String> {
        let ack = Message::require(&message.ack_message_id, "ack_message_id")?.to_string();
        let now = self.clock.unix();
        let answer = json!({
            "type": "ACKNOWLEDGEMENT",
            "message_id": message.message_id,
            "status": "SUCCESS",
            "ack_message_id": ack,
        })
        .to_string();
        self.answer_caller(peer, message, KeepsCopies::Yes, move |c, known| {
            if !messages::acknowledge(c, &known.certificate.udi, &ack, now)? {
                return Err(Error::invalid(
                    "ack_message_id",
                    format!("no answer to a message {ack:?} was sent to this device"),
                ));
            }
            if known.instance.last_contact_at != now {
                instances::touch(c, known.instance.id, now)?;
                known.instance.last_contact_at = now;
            }
            Ok((answer, Vec::new()))
        })
        .await
    }

    /// Handles a certificate-authenticated message in one write, reading
    /// each thing once: the caller's certificate, the first answer if this
    /// is a retry, revocation, the instance (from the writer's copies when
    /// the caller spoke recently). Nothing is read before the write and
    /// again inside it, and nothing read can change before the answer is
    /// committed. Revocation is checked after the retry look-up, so a
    /// device whose answer was lost can fetch it with a certificate that
    /// the answered message itself revoked.
    async fn answer_caller<F>(
        &self,
        peer: Option<PeerCertificate>,
        message: Message,
        keeps: KeepsCopies,
        work: F,
    ) -> Result<String>
    where
        F: FnOnce(&Db, &mut Known) -> Result<(String, Vec<Transition>)> + Send + 'static,
    {
        let peer = peer.ok_or(Error::CertificateRequired)?;
        let now = self.clock.unix();
        let message_id = message.message_id;
        let message_type = message.message_type.as_str();
        let ca = self.ca.clone();
        let (callers, writer) = (self.callers.clone(), self.store.writer().clone());
        let job = move |c: &Db| {
            let mut callers = callers.open(writer.generation());
            let known = match callers.live(c, &peer.fingerprint, now)? {
                Ok(known) => known,
                // A retry of the message that revoked or replaced this
                // certificate (its answer may have been lost) gets that
                // answer; any other message from it is refused (DESIGN §7).
                Err(refused) => {
                    let revoking = matches!(message_type, "DEREGISTRATION" | "RENEW");
                    let sender = Sender {
                        udi_key: &refused.udi,
                        message_type,
                        token_id: None,
                    };
                    let first = if revoking {
                        first_answer(c, &sender, &message_id, &ca)?
                    } else {
                        None
                    };
                    return match first {
                        Some(answer) => Ok((answer, Vec::new(), None)),
                        None => Err(Undo::Refused(refused.why)),
                    };
                }
            };
            let (answer, transitions) = work(c, known)?;
            let sender = Sender {
                udi_key: &known.certificate.udi,
                message_type,
                token_id: None,
            };
            match messages::record_first(c, &sender, &message_id, &answer, now)? {
                Recorded::First => return Ok((answer, transitions, None)),
                Recorded::AtCommit(claim) => {
                    let udi_key = known.certificate.udi.to_string();
                    return Ok((answer, transitions, Some((claim, udi_key, message_id))));
                }
                Recorded::Answered => {}
            }
            // Answered already: the first answer stands and this
            // work is undone with the savepoint.
            match first_answer(c, &sender, &message_id, &ca)? {
                Some(first) => Err(Undo::Replayed(first)),
                None => Err(Undo::Refused(Error::Conflict(
                    "this message was answered at the same moment; retry".into(),
                ))),
            }
        };
        let writer = self.store.writer();
        let outcome = match keeps {
            KeepsCopies::Yes => writer.write_keeping_copies(job).await,
            KeepsCopies::No => writer.write(job).await,
        };
        match outcome {
            // The message was answered while this one waited in the same
            // commit: nothing of this job was written, the first answer
            // stands.
            Ok((_, _, Some((claim, udi_key, message_id)))) if claim.was_taken() => {
                let sender = Sender {
                    udi_key: &udi_key,
                    message_type,
                    token_id: None,
                };
                self.store
                    .read(|c| first_answer(c, &sender, &message_id, &self.ca))?
                    .ok_or_else(|| {
                        Error::Conflict(
                            "this message was answered at the same moment; retry".into(),
                        )
                    })
            }
            Ok((answer, transitions, _)) => {
                self.notifier.compliance(&transitions);
                Ok(answer)
            }
            Err(Undo::Replayed(first)) => Ok(first),
            Err(Undo::Refused(e)) => Err(e),
        }
    }

    /// Runs `work` in the next group commit, unless this message was already
    /// answered (a retry that raced with the first try): then the first
    /// answer stands and nothing changes twice. The answer is recorded (as
    /// `kept`, its stored form) in the same transaction, and compliance changes are announced only
    /// after the commit.
    async fn answer_once<F>(
        &self,
        udi_key: String,
        message: Message,
        token_id: Option<i64>,
        kept: String,
        work: F,
    ) -> Result<String>
    where
        F: FnOnce(&Db) -> Result<(String, Vec<Transition>)> + Send + 'static,
    {
        let now = self.clock.unix();
        let message_id = message.message_id;
        let message_type = message.message_type.as_str();
        let ca = self.ca.clone();
        let (answer, transitions) = self
            .store
            .write(move |c| {
                let sender = Sender {
                    udi_key: &udi_key,
                    message_type,
                    token_id,
                };
                if let Some(answer) = first_answer(c, &sender, &message_id, &ca)? {
                    return Ok::<_, Error>((answer, Vec::new()));
                }
                let (answer, transitions) = work(c)?;
                messages::record(c, &sender, &message_id, &kept, now)?;
                Ok((answer, transitions))
            })
            .await?;
        self.notifier.compliance(&transitions);
        Ok(answer)
    }

    /// The first answer to a message already handled, if any.
    fn replay(
        &self,
        udi_key: &str,
        message: &Message,
        token_id: Option<i64>,
    ) -> Result<Option<String>> {
        let sender = Sender {
            udi_key,
            message_type: message.message_type.as_str(),
            token_id,
        };
        self.store
            .read(|c| first_answer(c, &sender, &message.message_id, &self.ca))
    }

    /// Finds the certificate on record. Revocation is checked after the
    /// retry look-up, so a device whose renewal answer was lost can still
    /// fetch it with the certificate that renewal replaced.
    fn caller(&self, peer: Option<PeerCertificate>) -> Result<Caller> {
        let peer = peer.ok_or(Error::CertificateRequired)?;
        let record = self
            .store
            .read(|c| certificates::find_by_fingerprint(c, &peer.fingerprint))?
            .ok_or(Error::CertificateUnknown)?;
        Ok(Caller {
            fingerprint: peer.fingerprint,
            record,
        })
    }

    fn live_instance(&self, caller: &Caller) -> Result<Instance> {
        check_live(&caller.record, self.clock.unix())?;
        let row_id = caller
            .record
            .instance_row_id
            .ok_or(Error::CertificateRevoked)?;
        self.store
            .read(|c| instances::find_by_row_id(c, row_id))?
            .ok_or(Error::CertificateRevoked)
    }

    /// Parses the CSR and signs it on the blocking pool: OpenSSL work must
    /// not stall the threads that serve connections.
    async fn sign(
        &self,
        csr_pem: String,
        instance_id: String,
        now: i64,
    ) -> Result<IssuedCertificate> {
        let ca = self.ca.clone();
        tokio::task::spawn_blocking(move || {
            let csr = parse_csr(&csr_pem).map_err(|e| Error::invalid("csr", e.to_string()))?;
            Ok(ca.issue_device_certificate(&csr, &instance_id, now)?)
        })
        .await
        .map_err(|_| Error::Store(crate::store::StoreError::WorkPanicked))?
    }
}

/// Inside a write: the caller's certificate may have been revoked since it
/// was read (a concurrent deregistration or renewal).
fn still_live(c: &Db, fingerprint: &[u8; 32], now: i64) -> Result<Instance> {
    let cert =
        certificates::find_by_fingerprint(c, fingerprint)?.ok_or(Error::CertificateUnknown)?;
    check_live(&cert, now)?;
    let row_id = cert.instance_row_id.ok_or(Error::CertificateRevoked)?;
    instances::find_by_row_id(c, row_id)?.ok_or(Error::CertificateRevoked)
}

/// The first answer to a message, as it was sent.
fn first_answer(
    c: &Db,
    sender: &Sender<'_>,
    message_id: &str,
    ca: &CertificateAuthority,
) -> Result<Option<String>> {
    messages::find(c, sender, message_id)?
        .map(|stored| {
            replay::expand(stored, ca.certificate_pem(), |serial| {
                certificates::pem_by_serial(c, serial)
            })
        })
        .transpose()
}

/// Whether a device write keeps the writer's copies of the pools up to date
/// itself (it changes no pool, or changes them through the copies).
enum KeepsCopies {
    Yes,
    No,
}

/// Why a device write undid its work: refused, or found to retry a message
/// already answered, whose first answer stands.
enum Undo {
    Refused(Error),
    Replayed(String),
}

impl From<Error> for Undo {
    fn from(e: Error) -> Self {
        Undo::Refused(e)
    }
}

impl From<crate::store::StoreError> for Undo {
    fn from(e: crate::store::StoreError) -> Self {
        Undo::Refused(Error::Store(e))
    }
}

/// The answer to REGISTRATION and RENEW id. `owner` is (instance id,
/// account, virtual account).
#[allow(clippy::too_many_arguments)]
fn identity_answer(
    message_type: MessageType,
    message_id: &str,
    issued: &IssuedCertificate,
    ca_pem: &str,
    owner: (&str, &str, &str),
    export_controlled: Option<bool>,
    udi: &Udi,
    initial: i64,
    now: i64,
) -> Result<String> {
    let (instance_id, account, virtual_account) = owner;
    let answer = IdentityAnswer {
        message_type: message_type.as_str(),
        message_id,
        status: "SUCCESS",
        certificate: &issued.pem,
        ca_certificate: ca_pem,
        instance_id,
        account,
        virtual_account,
        export_controlled,
        udi,
        registration: RegistrationTimes {
            initial: rfc3339(initial),
            next_renewal: rfc3339(now + RENEW_AFTER_DAYS * 86_400),
            expires: rfc3339(issued.not_after),
        },
    };
    serde_json::to_string(&answer).map_err(|e| Error::invalid("answer", e.to_string()))
}
