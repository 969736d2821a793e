//! What time alone changes. Every command, `show` included, first catches
//! up with the clock, as the agent of a router that kept running would
//! have; `satellite-router run` does the same on its own, all the time.
//!
//! `settle` is local bookkeeping. `catch_up` talks to the server: ID
//! renewal after 180 days, authorization renewal every 30 days (retried
//! through the grace period and after it, as the seed says), the daily
//! Flexible Consumption collection. Local time alone never drops the
//! registration: only the server refusing the certificate does (a failed ID
//! renewal, seed), so a router whose clock jumped keeps what it has.

use super::agent::{Agent, AgentError, AuthKind};
use super::show::next_collection;
use super::state::{Attempt, State};
use time::{Duration, OffsetDateTime};

/// After a failed automatic attempt, the agent waits this long before the
/// next one (a command the operator types is never held back).
pub const RETRY_INTERVAL: Duration = Duration::hours(1);

/// Charges the evaluation period while unregistered and in use.
pub fn settle(state: &mut State, now: OffsetDateTime) {
    state.eval.account(now);
    let in_use = !state.is_registered() && state.in_use();
    state.eval.set_in_use(in_use, now);
}

/// Whether the daily Flexible Consumption collection is due.
pub fn collection_due(state: &State, now: OffsetDateTime) -> bool {
    state.fcm.enabled && next_collection(state).is_some_and(|t| now >= t)
}

/// When an automatic attempt whose timer is `due` may go: at `due`, or an
/// interval after the last failure.
fn attempt_at(due: OffsetDateTime, last: &Option<Attempt>) -> OffsetDateTime {
    match last {
        Some(a) if !a.succeeded => {
            a.at.checked_add(RETRY_INTERVAL)
                .map_or(due, |retry| retry.max(due))
        }
        _ => due,
    }
}

/// When the ID certificate renewal is due (a pending one: now).
fn renewal_at(state: &State, now: OffsetDateTime) -> Option<OffsetDateTime> {
    if state.pending_identity.is_some() {
        return Some(now);
    }
    let r = state.registration.as_ref()?;
    Some(attempt_at(r.next_renewal, &r.last_renewal))
}

/// When the authorization renewal is due: the next communication time, or
/// now when registered without an answer yet.
fn authorization_at(state: &State, now: OffsetDateTime) -> Option<OffsetDateTime> {
    if !state.is_registered() {
        return None;
    }
    let due = state
        .authorization
        .as_ref()
        .map_or(now, |a| a.next_communication);
    Some(attempt_at(due, &state.last_communication))
}

/// The next time `catch_up` has work, for an agent that sleeps between
/// rounds (`None`: nothing will ever be due, e.g. disabled).
pub fn next_due(state: &State, now: OffsetDateTime) -> Option<OffsetDateTime> {
    if !state.enabled {
        return None;
    }
    let collection = if state.fcm.enabled {
        next_collection(state)
    } else {
        None
    };
    [
        renewal_at(state, now),
        authorization_at(state, now),
        collection,
    ]
    .into_iter()
    .flatten()
    .min()
}

/// Due network work: ID renewal after 180 days (or one left pending, whose
/// certificate the server may already have replaced), the daily collection, and
/// an authorization request when the demand changed or the next
/// communication time has come. Returns the authorization's result so a
/// command that changed the demand can report its failure. A disabled
/// agent sends nothing.
pub fn catch_up(agent: &mut Agent) -> Result<(), AgentError> {
    let now = agent.now;
    if !agent.state.enabled {
        return Ok(());
    }
    if renewal_at(agent.state, now).is_some_and(|t| now >= t) {
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
    if authorization_at(agent.state, now).is_some_and(|t| now >= t) {
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

    #[test]
    fn a_failed_automatic_attempt_waits_before_the_next() {
        let t0 = datetime!(2030-01-01 0:00 UTC);
        let mut s = crate::router::agent::tests::registered_state();
        s.registration.as_mut().unwrap().next_renewal = t0 + Duration::days(180);
        s.authorization = Some(crate::router::state::Authorization {
            status: "AUTHORIZED".into(),
            authorized_at: t0,
            next_communication: t0 + Duration::days(30),
            deadline: t0 + Duration::days(90),
            entitlements: Vec::new(),
        });
        assert_eq!(next_due(&s, t0), Some(t0 + Duration::days(30)));
        let failed = t0 + Duration::days(100);
        s.last_communication = Some(Attempt::failed(failed, "down"));
        assert_eq!(next_due(&s, failed), Some(failed + RETRY_INTERVAL));
        s.enabled = false;
        assert_eq!(next_due(&s, failed), None, "disabled: nothing is ever due");
    }
}
