//! The Smart Agent: registration, renewals, deregistration, authorization
//! requests and acknowledgements, applied to the state as a real agent
//! would. Every exchange is counted in the statistics.

use super::client::{Identity, Link, SendError};
use super::fcm;
use super::identity;
use super::show::date;
use super::state::{Attempt, PendingIdentity, Registration, State};
use super::stats::MsgType;
use super::times;
use super::wire::{self, Message};
use serde_json::Value;
use time::OffsetDateTime;

#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    #[error(
        "the device is not registered; register it with `license smart register idtoken TOKEN`"
    )]
    NotRegistered,
    #[error("the device is already registered to {account} / {virtual_account}; to register again use `license smart register idtoken TOKEN force`")]
    AlreadyRegistered {
        account: String,
        virtual_account: String,
    },
    #[error("{what} failed: {error}")]
    Failed {
        what: &'static str,
        error: SendError,
    },
    #[error("{0}")]
    Local(String),
}

impl AgentError {
    pub fn send_error(&self) -> Option<&SendError> {
        match self {
            AgentError::Failed { error, .. } => Some(error),
            _ => None,
        }
    }
}

/// Writes the state to its file at once; the error is why it could not.
/// Used where a crash between two steps must not lose what the first did.
pub type Checkpoint<'a> = &'a mut dyn FnMut(&State) -> Result<(), String>;

/// Which message carries an authorization request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AuthKind {
    Entitlement,
    RenewAuth,
}

pub struct Agent<'a> {
    pub state: &'a mut State,
    link: &'a mut dyn Link,
    /// `None`: the state lives only in memory (fleet), nothing to save.
    checkpoint: Option<Checkpoint<'a>>,
    pub now: OffsetDateTime,
    /// What the device reports to the operator, in order.
    pub lines: Vec<String>,
    /// Problems that did not fail the command (stderr).
    pub warnings: Vec<String>,
    /// Send ACKNOWLEDGEMENT after installing answers (a real agent does).
    pub send_acknowledgements: bool,
}

impl<'a> Agent<'a> {
    pub fn new(state: &'a mut State, link: &'a mut dyn Link, now: OffsetDateTime) -> Self {
        Self {
            state,
            link,
            now,
            checkpoint: None,
            lines: Vec::new(),
            warnings: Vec::new(),
            send_acknowledgements: true,
        }
    }

    pub fn with_checkpoint(mut self, save: Checkpoint<'a>) -> Self {
        self.checkpoint = Some(save);
        self
    }

    fn save_now(&mut self) -> Result<(), String> {
        match &mut self.checkpoint {
            Some(save) => save(self.state),
            None => Ok(()),
        }
    }

    fn identity(&self) -> Result<Identity, AgentError> {
        let reg = self
            .state
            .registration
            .as_ref()
            .ok_or(AgentError::NotRegistered)?;
        Ok(Identity {
            certificate_pem: reg.certificate_pem.clone(),
            key_pem: self.state.key_pem.clone(),
        })
    }

    /// Sends one message and reads its answer with `parse`; counts it as a
    /// success only when both worked.
    fn exchange<T>(
        &mut self,
        kind: MsgType,
        identity: Option<&Identity>,
        message: &Message,
        parse: impl FnOnce(&Value) -> Result<T, String>,
    ) -> Result<(T, String), SendError> {
        let result = self.link.send(identity, &message.body).and_then(|answer| {
            let id = wire::answer_id(&answer, &message.id);
            parse(&answer)
                .map(|t| (t, id))
                .map_err(|e| SendError::BadResponse(format!("{} answer: {e}", kind.wire())))
        });
        self.state.stats.record(kind, self.now, result.is_ok());
        result
    }

    fn acknowledge(&mut self, answer_id: &str) {
        if !self.send_acknowledgements {
            return;
        }
        let identity = match self.identity() {
            Ok(id) => id,
            Err(_) => return,
        };
        let message = wire::acknowledgement(&self.state.udi, answer_id);
        if let Err(e) = self.exchange(
            MsgType::Acknowledgement,
            Some(&identity),
            &message,
            wire::status_is_success,
        ) {
            self.warnings.push(format!("acknowledgement failed: {e}"));
        }
    }

    /// The server no longer knows our certificate: the device is
    /// unidentified and falls back to a 30-day evaluation period (seed).
    fn lose_identity(&mut self, error: &SendError) {
        self.state.drop_registration(self.now);
        self.lines.push(format!(
            "%SMART_LIC-3-CERT_REFUSED: The Smart Licensing server refused the device certificate ({}); \
             the device is UNREGISTERED and in a 30-day evaluation period. Register it again with \
             `license smart register idtoken TOKEN`.",
            error.code()
        ));
    }

    /// `license smart register idtoken TOKEN [force]`. With `authorize`,
    /// the current demand is reported right after, as the agent does.
    pub fn register(
        &mut self,
        token: &str,
        force: bool,
        authorize: bool,
    ) -> Result<(), AgentError> {
        if let Some(reg) = &self.state.registration {
            if !force {
                return Err(AgentError::AlreadyRegistered {
                    account: reg.account.clone(),
                    virtual_account: reg.virtual_account.clone(),
                });
            }
        }
        // Every registration gets a fresh key: the server knows devices by
        // their certificate, and a key that outlived a revoked certificate
        // (deregistration, replacement) is not reused.
        let key = identity::new_key().map_err(|e| AgentError::Local(e.to_string()))?;
        let cn = self.state.udi.key();
        let csr = identity::csr(&key, &cn).map_err(|e| AgentError::Local(e.to_string()))?;
        let message = wire::registration(&self.state.udi, token, &self.state.hostname, &csr);
        let key_for_check = key.clone();
        let result = self.exchange(MsgType::Registration, None, &message, |answer| {
            let parsed = wire::parse_id_answer(answer)?;
            identity::certificate_matches_key(&parsed.certificate, &key_for_check)
                .map_err(|e| e.to_string())?;
            Ok(parsed)
        });
        let (answer, answer_id) = match result {
            Ok(ok) => ok,
            Err(error) => {
                self.state.last_registration_failure =
                    Some(Attempt::failed(self.now, error.to_string()));
                self.lines.push(format!(
                    "%SMART_LIC-3-AGENT_REG_FAILED: Smart Agent for Licensing Registration with the Smart Licensing server failed: {error}"
                ));
                return Err(AgentError::Failed {
                    what: "registration",
                    error,
                });
            }
        };
        let server_now = id_answer_time(&answer);
        // Time in evaluation stops here.
        self.state.eval.account(self.now);
        self.state.eval.set_in_use(false, self.now);
        self.state.key_pem = key;
        // A new identity supersedes a renewal that never completed.
        self.state.pending_identity = None;
        self.state.registration = Some(Registration {
            certificate_pem: answer.certificate.clone(),
            ca_certificate_pem: answer.ca_certificate.clone(),
            instance_id: answer.instance_id.clone(),
            account: answer.account.clone(),
            virtual_account: answer.virtual_account.clone(),
            initial: times::on_device_clock(answer.initial(), server_now, self.now),
            next_renewal: times::on_device_clock(answer.next_renewal(), server_now, self.now),
            expires: times::on_device_clock(answer.expires(), server_now, self.now),
            last_renewal: None,
            export_controlled: answer.export_controlled,
        });
        self.state.last_registration_failure = None;
        self.state.authorization = None;
        self.state.last_communication = None;
        self.lines.push(format!(
            "%SMART_LIC-5-AGENT_REG_SUCCESS: Smart Agent for Licensing Registration with the Smart Licensing server succeeded for udi {} \
             (Smart Account: {}, Virtual Account: {}, next renewal {})",
            self.state.udi,
            answer.account,
            answer.virtual_account,
            date(self.state.registration.as_ref().map_or(answer.next_renewal(), |r| r.next_renewal))
        ));
        self.acknowledge(&answer_id);
        if authorize {
            if self.state.fcm.enabled && self.state.fcm.current.is_none() {
                self.collect();
            }
            if let Err(e) = self.authorize(AuthKind::Entitlement) {
                self.warnings.push(format!(
                    "registered, but the first authorization request failed: {e}"
                ));
            }
        }
        Ok(())
    }

    /// ENTITLEMENT (or RENEW auth) with the full current demand.
    pub fn authorize(&mut self, kind: AuthKind) -> Result<(), AgentError> {
        let identity = self.identity()?;
        let demand = self.state.demand();
        let (message, msg_type, what) = match kind {
            AuthKind::Entitlement => (
                wire::entitlement(&self.state.udi, &demand),
                MsgType::Entitlement,
                "authorization request",
            ),
            AuthKind::RenewAuth => (
                wire::renew_auth(&self.state.udi, &demand),
                MsgType::Renew,
                "authorization renewal",
            ),
        };
        match self.exchange(
            msg_type,
            Some(&identity),
            &message,
            wire::parse_authorization,
        ) {
            Ok((mut auth, answer_id)) => {
                let a = &mut auth.authorization;
                let server_now = a.authorized_at;
                a.authorized_at = times::on_device_clock(a.authorized_at, server_now, self.now);
                a.next_communication =
                    times::on_device_clock(a.next_communication, server_now, self.now);
                a.deadline = times::on_device_clock(a.deadline, server_now, self.now);
                self.lines.push(format!(
                    "%SMART_LIC-6-AUTH_RENEW_SUCCESS: Authorization with the Smart Licensing server: State={} on {}",
                    super::show::words(&auth.authorization.status),
                    date(auth.authorization.authorized_at)
                ));
                for e in &auth.authorization.entitlements {
                    self.lines.push(format!(
                        "Entitlement {} Mode {} Count {}",
                        e.tag,
                        super::show::words(&e.status),
                        e.count
                    ));
                }
                // The satellite may have moved this instance to another
                // virtual account; its answers say where it is now.
                if let (Some(va), Some(reg)) =
                    (&auth.virtual_account, self.state.registration.as_mut())
                {
                    if *va != reg.virtual_account {
                        self.lines.push(format!(
                            "%SMART_LIC-6-VA_CHANGED: The product instance is now in virtual account {va} (was {})",
                            reg.virtual_account
                        ));
                        reg.virtual_account = va.clone();
                    }
                }
                self.state.authorization = Some(auth.authorization);
                self.state.last_communication = Some(Attempt::ok(self.now));
                self.state.report_pending = false;
                self.acknowledge(&answer_id);
                Ok(())
            }
            Err(error) => {
                self.state.last_communication = Some(Attempt::failed(self.now, error.to_string()));
                self.lines.push(format!(
                    "%SMART_LIC-3-AUTH_RENEW_FAILED: Authorization with the Smart Licensing server failed: {error}"
                ));
                if error.identity_refused() {
                    self.lose_identity(&error);
                }
                Err(AgentError::Failed { what, error })
            }
        }
    }

    /// `license smart renew id`: a new key and certificate. The new key is
    /// saved as pending before the request goes out (`PendingIdentity`):
    /// it becomes the key once its certificate is installed and is dropped
    /// when the server refuses. A renewal left pending by an earlier run
    /// (lost answer, crash) is repeated with its key and message id, which
    /// fetches the server's first answer again.
    pub fn renew_id(&mut self) -> Result<(), AgentError> {
        let old = self.identity()?;
        let pending = self.pending_identity()?;
        let cn = self.state.udi.key();
        let csr = identity::csr(&pending.key_pem, &cn).map_err(|e| {
            // An unusable pending key would block every later renewal.
            self.state.pending_identity = None;
            AgentError::Local(e.to_string())
        })?;
        let message = wire::renew_id(&self.state.udi, &csr, &pending.message_id);
        let key = pending.key_pem;
        let key_for_check = key.clone();
        let result = self.exchange(MsgType::Renew, Some(&old), &message, |answer| {
            let parsed = wire::parse_id_answer(answer)?;
            identity::certificate_matches_key(&parsed.certificate, &key_for_check)
                .map_err(|e| e.to_string())?;
            Ok(parsed)
        });
        match result {
            Ok((answer, answer_id)) => {
                let server_now = id_answer_time(&answer);
                let next_renewal =
                    times::on_device_clock(answer.next_renewal(), server_now, self.now);
                let expires = times::on_device_clock(answer.expires(), server_now, self.now);
                self.state.key_pem = key;
                self.state.pending_identity = None;
                if let Some(reg) = self.state.registration.as_mut() {
                    reg.certificate_pem = answer.certificate.clone();
                    reg.ca_certificate_pem = answer.ca_certificate.clone();
                    reg.instance_id = answer.instance_id.clone();
                    reg.account = answer.account.clone();
                    reg.virtual_account = answer.virtual_account.clone();
                    // `initial` stays: the registration it dates is the same one.
                    reg.next_renewal = next_renewal;
                    reg.expires = expires;
                    reg.last_renewal = Some(Attempt::ok(self.now));
                    if answer.export_controlled.is_some() {
                        reg.export_controlled = answer.export_controlled;
                    }
                }
                self.lines.push(format!(
                    "%SMART_LIC-6-ID_CERT_RENEW_SUCCESS: Identity certificate renewed; next renewal attempt {}, registration expires {}",
                    date(next_renewal),
                    date(expires)
                ));
                self.acknowledge(&answer_id);
                Ok(())
            }
            Err(error) => {
                if !answer_unknown(&error) {
                    self.state.pending_identity = None;
                }
                if let Some(reg) = self.state.registration.as_mut() {
                    reg.last_renewal = Some(Attempt::failed(self.now, error.to_string()));
                }
                self.lines.push(format!(
                    "%SMART_LIC-3-ID_CERT_RENEW_FAILED: Identity certificate renewal failed: {error}"
                ));
                if error.identity_refused() {
                    self.lose_identity(&error);
                }
                Err(AgentError::Failed {
                    what: "ID certificate renewal",
                    error,
                })
            }
        }
    }

    /// The renewal in flight, or a new one saved before anything is sent.
    fn pending_identity(&mut self) -> Result<PendingIdentity, AgentError> {
        if let Some(pending) = &self.state.pending_identity {
            return Ok(pending.clone());
        }
        let pending = PendingIdentity {
            key_pem: identity::new_key().map_err(|e| AgentError::Local(e.to_string()))?,
            message_id: wire::new_id(),
        };
        self.state.pending_identity = Some(pending.clone());
        if let Err(e) = self.save_now() {
            self.state.pending_identity = None;
            return Err(AgentError::Local(format!(
                "the new key could not be saved, so no renewal was sent: {e}"
            )));
        }
        Ok(pending)
    }

    /// `license smart deregister`. A server that already forgot the device
    /// (refused certificate) changes nothing: the device deregisters.
    pub fn deregister(&mut self) -> Result<(), AgentError> {
        let identity = self.identity()?;
        let message = wire::deregistration(&self.state.udi);
        match self.exchange(
            MsgType::Deregistration,
            Some(&identity),
            &message,
            wire::status_is_success,
        ) {
            Ok(_) => {}
            Err(error) if error.identity_refused() => {
                self.warnings.push(format!(
                    "the server no longer knew this device ({}); deregistered locally",
                    error.code()
                ));
            }
            Err(error) => {
                return Err(AgentError::Failed {
                    what: "deregistration",
                    error,
                })
            }
        }
        self.state.drop_registration(self.now);
        Ok(())
    }

    /// The daily Flexible Consumption collection: the configuration's counts
    /// become the current (reported) counts.
    pub fn collect(&mut self) -> fcm::Counts {
        let counts = fcm::count(self.state.fcm.ports.values());
        if self.state.fcm.current != Some(counts) {
            self.state.report_pending = true;
        }
        self.state.fcm.current = Some(counts);
        self.state.fcm.last_check = Some(self.now);
        for (tag, n) in counts.rows() {
            self.lines.push(format!(
                "%LICENSE-6-FCM_COLLECT: {} ({tag}) count {n}",
                fcm::platform_name(tag, &self.state.udi.pid)
            ));
        }
        counts
    }
}

/// The server's "now" when it answered REGISTRATION or RENEW id: it sets
/// the next renewal 180 days ahead.
fn id_answer_time(answer: &wire::IdAnswer) -> OffsetDateTime {
    answer
        .next_renewal()
        .checked_sub(times::RENEW_ID_AFTER)
        .unwrap_or(answer.next_renewal())
}

/// Whether the server may have issued a certificate we never saw: nothing
/// came back, or it failed in a way worth retrying. Any other answer
/// settles the renewal, so the pending key goes.
fn answer_unknown(error: &SendError) -> bool {
    match error {
        SendError::Transport(_) => true,
        SendError::Status { status, .. } => *status == 429 || *status >= 500,
        SendError::BadResponse(_) | SendError::Local(_) => false,
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::router::state::tests::sample;
    use serde_json::json;
    use std::collections::VecDeque;

    /// Answers from a script and keeps what was sent.
    #[derive(Default)]
    pub struct Scripted {
        pub answers: VecDeque<Result<Value, SendError>>,
        pub sent: Vec<(bool, Value)>,
    }

    impl Link for Scripted {
        fn send(
            &mut self,
            identity: Option<&Identity>,
            message: &Value,
        ) -> Result<Value, SendError> {
            self.sent.push((identity.is_some(), message.clone()));
            self.answers
                .pop_front()
                .unwrap_or_else(|| Err(SendError::Transport("no scripted answer".into())))
        }
    }

    fn now() -> OffsetDateTime {
        time::macros::datetime!(2030-01-01 0:00 UTC)
    }

    fn auth_answer(status: &str) -> Value {
        json!({"status": status, "entitlements": [{"tag": "T", "count": 1, "status": status}],
            "authorization": {"authorized_at": "2030-01-01T00:00:00Z",
            "next_communication": "2030-01-31T00:00:00Z", "deadline": "2030-04-01T00:00:00Z"}})
    }

    pub fn registered_state() -> State {
        let mut s = sample();
        s.key_pem = identity::new_key().unwrap();
        s.registration = Some(Registration {
            certificate_pem: "cert".into(),
            ca_certificate_pem: "ca".into(),
            instance_id: "i".into(),
            account: "A".into(),
            virtual_account: "Default".into(),
            initial: now(),
            next_renewal: now(),
            expires: now(),
            last_renewal: None,
            export_controlled: None,
        });
        s.requests.insert("T".into(), 1);
        s
    }

    #[test]
    fn authorization_installs_counts_and_acknowledges() {
        let mut state = registered_state();
        let mut link = Scripted::default();
        link.answers.push_back(Ok(auth_answer("OUT_OF_COMPLIANCE")));
        link.answers.push_back(Ok(json!({"status": "SUCCESS"})));
        let mut agent = Agent::new(&mut state, &mut link, now());
        agent.authorize(AuthKind::Entitlement).unwrap();
        assert!(agent
            .lines
            .iter()
            .any(|l| l == "Entitlement T Mode OUT OF COMPLIANCE Count 1"));
        assert_eq!(state.stats.entitlement.success, 1);
        assert_eq!(state.stats.acknowledgement.success, 1);
        assert_eq!(
            state.authorization.as_ref().unwrap().status,
            "OUT_OF_COMPLIANCE"
        );
        let (with_cert, ack) = &link.sent[1];
        assert!(*with_cert);
        assert_eq!(ack["ack_message_id"], link.sent[0].1["message_id"]);
        assert_eq!(
            link.sent[0].1["entitlements"],
            json!([{"tag": "T", "count": 1}])
        );
    }

    #[test]
    fn unavailable_server_is_a_failure_not_unlicensed() {
        let mut state = registered_state();
        let mut link = Scripted::default();
        link.answers.push_back(Err(SendError::Status {
            status: 503,
            code: "storage_unavailable".into(),
            message: "try later".into(),
        }));
        let mut agent = Agent::new(&mut state, &mut link, now());
        let err = agent.authorize(AuthKind::RenewAuth).unwrap_err();
        assert_eq!(
            err.to_string(),
            "authorization renewal failed: storage_unavailable: try later"
        );
        assert!(state.is_registered());
        assert_eq!(state.stats.renew.failed, 1);
        assert!(!state.last_communication.as_ref().unwrap().succeeded);
    }

    #[test]
    fn refused_certificate_on_id_renewal_starts_30_day_eval() {
        let mut state = registered_state();
        let mut link = Scripted::default();
        link.answers.push_back(Err(SendError::Status {
            status: 403,
            code: "certificate_revoked".into(),
            message: "revoked".into(),
        }));
        let mut agent = Agent::new(&mut state, &mut link, now());
        assert!(agent.renew_id().is_err());
        assert!(!state.is_registered());
        assert_eq!(state.eval.remaining_secs, 30 * 86_400);
        assert_eq!(
            state.eval.counting_since,
            Some(now()),
            "demand in use: counting"
        );
    }

    #[test]
    fn register_refusal_names_the_code() {
        let mut state = sample();
        state.key_pem = identity::new_key().unwrap();
        let mut link = Scripted::default();
        link.answers.push_back(Err(SendError::Status {
            status: 401,
            code: "token_expired".into(),
            message: "the token expired".into(),
        }));
        let mut agent = Agent::new(&mut state, &mut link, now());
        let err = agent.register("tok", false, true).unwrap_err();
        assert_eq!(
            err.to_string(),
            "registration failed: token_expired: the token expired"
        );
        assert_eq!(state.stats.registration.failed, 1);
        assert!(state.last_registration_failure.is_some());
        assert!(
            !link.sent[0].0,
            "registration goes without a client certificate"
        );
        let csr = link.sent[0].1["csr"].as_str().unwrap();
        let req = openssl::x509::X509Req::from_pem(csr.as_bytes()).unwrap();
        let key = openssl::pkey::PKey::private_key_from_pem(state.key_pem.as_bytes()).unwrap();
        assert!(
            !req.public_key().unwrap().public_eq(&key),
            "every registration asks for a certificate on a fresh key"
        );
    }

    /// A certificate on `key_pem`, self-signed: enough for the key check.
    fn certificate_for(key_pem: &str) -> String {
        use openssl::{asn1::Asn1Time, hash::MessageDigest, pkey::PKey, x509};
        let key = PKey::private_key_from_pem(key_pem.as_bytes()).unwrap();
        let mut name = x509::X509NameBuilder::new().unwrap();
        name.append_entry_by_nid(openssl::nid::Nid::COMMONNAME, "t")
            .unwrap();
        let name = name.build();
        let mut b = x509::X509::builder().unwrap();
        b.set_subject_name(&name).unwrap();
        b.set_issuer_name(&name).unwrap();
        b.set_pubkey(&key).unwrap();
        b.set_not_before(&Asn1Time::days_from_now(0).unwrap())
            .unwrap();
        b.set_not_after(&Asn1Time::days_from_now(1).unwrap())
            .unwrap();
        b.sign(&key, MessageDigest::sha256()).unwrap();
        String::from_utf8(b.build().to_pem().unwrap()).unwrap()
    }

    fn id_answer(certificate: &str) -> Value {
        json!({"status": "SUCCESS", "certificate": certificate, "ca_certificate": "ca",
            "instance_id": "i", "account": "A", "virtual_account": "Default",
            "registration": {"initial": "2030-01-01T00:00:00Z",
            "next_renewal": "2030-06-30T00:00:00Z", "expires": "2031-01-01T00:00:00Z"}})
    }

    #[test]
    fn the_renewal_key_is_saved_first_and_survives_a_lost_answer() {
        let mut state = registered_state();
        let old_key = state.key_pem.clone();
        let mut saved: Vec<State> = Vec::new();
        let mut link = Scripted::default();
        link.answers
            .push_back(Err(SendError::Transport("connection reset".into())));
        {
            let mut save = |s: &State| {
                saved.push(s.clone());
                Ok(())
            };
            let mut agent = Agent::new(&mut state, &mut link, now()).with_checkpoint(&mut save);
            assert!(agent.renew_id().is_err());
        }
        let pending = state
            .pending_identity
            .clone()
            .expect("kept: the server may have issued the certificate");
        assert_eq!(saved.len(), 1);
        assert_eq!(saved[0].pending_identity.as_ref(), Some(&pending));
        assert_eq!((&saved[0].key_pem, &state.key_pem), (&old_key, &old_key));
        assert_eq!(link.sent[0].1["message_id"], pending.message_id.as_str());
        assert!(state.is_registered());

        // The retry repeats the message id, so the server replays its answer.
        let cert = certificate_for(&pending.key_pem);
        link.answers.push_back(Ok(id_answer(&cert)));
        let mut agent = Agent::new(&mut state, &mut link, now());
        agent.send_acknowledgements = false;
        agent.renew_id().unwrap();
        assert_eq!(link.sent[1].1["message_id"], pending.message_id.as_str());
        assert!(link.sent[1].0, "sent with the old certificate");
        assert_eq!(state.key_pem, pending.key_pem);
        assert_eq!(state.pending_identity, None);
        assert_eq!(state.registration.unwrap().certificate_pem, cert);
    }

    #[test]
    fn a_refused_renewal_drops_the_new_key() {
        let mut state = registered_state();
        let old_key = state.key_pem.clone();
        let mut link = Scripted::default();
        link.answers.push_back(Err(SendError::Status {
            status: 400,
            code: "invalid_csr".into(),
            message: "bad".into(),
        }));
        let mut agent = Agent::new(&mut state, &mut link, now());
        assert!(agent.renew_id().is_err());
        assert_eq!(state.pending_identity, None);
        assert_eq!(state.key_pem, old_key);
        assert!(state.is_registered());
    }

    #[test]
    fn no_renewal_is_sent_when_the_new_key_cannot_be_saved() {
        let mut state = registered_state();
        let mut link = Scripted::default();
        let mut save = |_: &State| Err("disk full".to_string());
        let mut agent = Agent::new(&mut state, &mut link, now()).with_checkpoint(&mut save);
        let err = agent.renew_id().unwrap_err().to_string();
        assert!(err.contains("disk full"), "{err}");
        assert!(link.sent.is_empty());
        assert_eq!(state.pending_identity, None);
    }

    #[test]
    fn deregistration_drops_everything() {
        let mut state = registered_state();
        let mut link = Scripted::default();
        link.answers.push_back(Ok(json!({"status": "SUCCESS"})));
        let mut agent = Agent::new(&mut state, &mut link, now());
        agent.deregister().unwrap();
        assert!(!state.is_registered() && state.authorization.is_none());
        assert_eq!(state.stats.deregistration.success, 1);
        assert_eq!(state.eval.remaining_secs, 30 * 86_400);
    }
}
