//! What time alone changes, run when a command starts. The emulator has no
//! daemon: each invocation first catches up with the clock.
//!
//! `settle` is local bookkeeping and runs before every command, `show`
//! included. `catch_up` may talk to the server and runs only before
//! configuration commands, so `show` never sends traffic.

use super::agent::{Agent, AgentError, AuthKind};
use super::show::{date, next_collection};
use super::state::State;
use time::OffsetDateTime;

/// Charges the evaluation period and lapses an expired registration.
pub fn settle(state: &mut State, now: OffsetDateTime) -> Vec<String> {
    let mut notes = Vec::new();
    if let Some(expires) = state.registration.as_ref().map(|r| r.expires) {
        if now >= expires {
            state.drop_registration(expires);
            notes.push(format!(
                "%SMART_LIC-3-ID_CERT_EXPIRED: The registration expired on {}; the device is \
                 UNREGISTERED and in a 30-day evaluation period",
                date(expires)
            ));
        }
    }
    state.eval.account(now);
    let in_use = !state.is_registered() && state.in_use();
    state.eval.set_in_use(in_use, now);
    notes
}

/// Whether the daily Flexible Consumption collection is due.
pub fn collection_due(state: &State, now: OffsetDateTime) -> bool {
    state.fcm.enabled && next_collection(state).is_some_and(|t| now >= t)
}

/// Due network work: ID renewal after 180 days (or one left pending, whose
/// certificate the server may already have replaced), the daily collection, and
/// an authorization request when the demand changed or the next
/// communication time has come. Returns the authorization's result so a
/// command that changed the demand can report its failure.
pub fn catch_up(agent: &mut Agent) -> Result<(), AgentError> {
    let now = agent.now;
    let renewal_due = agent.state.pending_identity.is_some()
        || agent
            .state
            .registration
            .as_ref()
            .is_some_and(|r| now >= r.next_renewal);
    if renewal_due {
        if let Err(e) = agent.renew_id() {
            agent.warnings.push(format!("automatic {e}"));
        }
    }
    if collection_due(agent.state, now) {
        agent.collect();
    }
    if !agent.state.is_registered() {
        return Ok(());
    }
    if agent.state.report_pending {
        return agent.authorize(AuthKind::Entitlement);
    }
    let due = agent
        .state
        .authorization
        .as_ref()
        .is_none_or(|a| now >= a.next_communication);
    if due {
        agent.authorize(AuthKind::RenewAuth)
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::router::state::tests::sample;
    use time::macros::datetime;
    use time::Duration;

    #[test]
    fn eval_runs_only_while_unregistered_and_in_use() {
        let t0 = datetime!(2030-01-01 0:00 UTC);
        let mut s = sample();
        settle(&mut s, t0);
        settle(&mut s, t0 + Duration::days(5));
        assert_eq!(s.eval.remaining(), Duration::days(90));
        s.requests.insert("T".into(), 1);
        settle(&mut s, t0 + Duration::days(5));
        settle(&mut s, t0 + Duration::days(95) + Duration::seconds(1));
        assert!(s.eval.is_expired());
        assert_eq!(s.eval.expired_at, Some(t0 + Duration::days(95)));
    }

    #[test]
    fn daily_collection_follows_enable_time() {
        let t0 = datetime!(2030-01-01 0:00 UTC);
        let mut s = sample();
        s.fcm.enabled = true;
        s.fcm.enabled_at = Some(t0);
        assert!(!collection_due(&s, t0 + Duration::hours(23)));
        assert!(collection_due(&s, t0 + Duration::hours(24)));
        s.fcm.last_check = Some(t0 + Duration::hours(30));
        assert!(!collection_due(&s, t0 + Duration::hours(50)));
    }
}
