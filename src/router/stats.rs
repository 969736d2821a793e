//! Per-message-type counters, as `show call-home smart-licensing statistics`
//! prints them. Messages are sent synchronously here, so nothing is ever
//! queued or dropped; the columns stay for fidelity.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum MsgType {
    Entitlement,
    Registration,
    Acknowledgement,
    Renew,
    Deregistration,
}

impl MsgType {
    /// The seed's row order.
    pub const ALL: [MsgType; 5] = [
        MsgType::Entitlement,
        MsgType::Registration,
        MsgType::Acknowledgement,
        MsgType::Renew,
        MsgType::Deregistration,
    ];

    pub fn wire(self) -> &'static str {
        match self {
            MsgType::Entitlement => "ENTITLEMENT",
            MsgType::Registration => "REGISTRATION",
            MsgType::Acknowledgement => "ACKNOWLEDGEMENT",
            MsgType::Renew => "RENEW",
            MsgType::Deregistration => "DEREGISTRATION",
        }
    }
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counter {
    pub success: u64,
    pub failed: u64,
    pub inqueue: u64,
    pub dropped: u64,
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub last_sent: Option<OffsetDateTime>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stats {
    #[serde(default)]
    pub entitlement: Counter,
    #[serde(default)]
    pub registration: Counter,
    #[serde(default)]
    pub acknowledgement: Counter,
    #[serde(default)]
    pub renew: Counter,
    #[serde(default)]
    pub deregistration: Counter,
}

impl Stats {
    pub fn get(&self, kind: MsgType) -> &Counter {
        match kind {
            MsgType::Entitlement => &self.entitlement,
            MsgType::Registration => &self.registration,
            MsgType::Acknowledgement => &self.acknowledgement,
            MsgType::Renew => &self.renew,
            MsgType::Deregistration => &self.deregistration,
        }
    }

    fn get_mut(&mut self, kind: MsgType) -> &mut Counter {
        match kind {
            MsgType::Entitlement => &mut self.entitlement,
            MsgType::Registration => &mut self.registration,
            MsgType::Acknowledgement => &mut self.acknowledgement,
            MsgType::Renew => &mut self.renew,
            MsgType::Deregistration => &mut self.deregistration,
        }
    }

    /// Counts one attempt: a success needs a response that reported no error.
    /// Counters saturate: the state file may hold any number.
    pub fn record(&mut self, kind: MsgType, at: OffsetDateTime, success: bool) {
        let c = self.get_mut(kind);
        if success {
            c.success = c.success.saturating_add(1);
        } else {
            c.failed = c.failed.saturating_add(1);
        }
        c.last_sent = Some(at);
    }

    pub fn add(&mut self, other: &Stats) {
        for kind in MsgType::ALL {
            let o = other.get(kind).clone();
            let c = self.get_mut(kind);
            c.success = c.success.saturating_add(o.success);
            c.failed = c.failed.saturating_add(o.failed);
            c.inqueue = c.inqueue.saturating_add(o.inqueue);
            c.dropped = c.dropped.saturating_add(o.dropped);
            c.last_sent = c.last_sent.max(o.last_sent);
        }
    }
}

const LEGEND: &str = "\
Success: Successfully sent and response received.
Failed : Failed to send or response indicated error occurred.
Inqueue: In queue waiting to be sent.
Dropped: Dropped due to incorrect call-home configuration.
";

/// The table of `show call-home smart-licensing statistics`, times in UTC.
pub fn render(stats: &Stats) -> String {
    let mut out = String::from(LEGEND);
    out.push('\n');
    out.push_str(&format!(
        "{:<16} {:>8} {:>8} {:>8} {:>8}  Last-sent (GMT+00:00)\n",
        "Msg Subtype", "Success", "Failed", "Inqueue", "Dropped"
    ));
    for kind in MsgType::ALL {
        let c = stats.get(kind);
        let last = c
            .last_sent
            .map(super::times::stat_time)
            .unwrap_or_else(|| "-".into());
        out.push_str(&format!(
            "{:<16} {:>8} {:>8} {:>8} {:>8}  {last}\n",
            kind.wire(),
            c.success,
            c.failed,
            c.inqueue,
            c.dropped
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn table_has_the_legend_and_every_row() {
        let mut s = Stats::default();
        let t = datetime!(2014-04-24 18:24:34 UTC);
        s.record(MsgType::Entitlement, t, true);
        s.record(MsgType::Entitlement, t, true);
        s.record(MsgType::Registration, t, false);
        let out = render(&s);
        assert!(out.starts_with("Success: Successfully sent and response received.\n"));
        assert!(out.contains("Dropped: Dropped due to incorrect call-home configuration.\n"));
        let header = out.lines().find(|l| l.starts_with("Msg Subtype")).unwrap();
        let words: Vec<&str> = header.split_whitespace().collect();
        assert_eq!(
            words,
            [
                "Msg",
                "Subtype",
                "Success",
                "Failed",
                "Inqueue",
                "Dropped",
                "Last-sent",
                "(GMT+00:00)"
            ]
        );
        let row = |name: &str| -> Vec<String> {
            out.lines()
                .find(|l| l.starts_with(name))
                .unwrap()
                .split_whitespace()
                .map(String::from)
                .collect()
        };
        assert_eq!(
            row("ENTITLEMENT"),
            ["ENTITLEMENT", "2", "0", "0", "0", "2014-04-24", "18:24:34"]
        );
        assert_eq!(row("REGISTRATION")[1..3], ["0", "1"]);
        assert_eq!(
            row("DEREGISTRATION"),
            ["DEREGISTRATION", "0", "0", "0", "0", "-"]
        );
        let order: Vec<&str> = out
            .lines()
            .skip_while(|l| !l.starts_with("Msg Subtype"))
            .skip(1)
            .filter_map(|l| l.split_whitespace().next())
            .collect();
        assert_eq!(
            order,
            [
                "ENTITLEMENT",
                "REGISTRATION",
                "ACKNOWLEDGEMENT",
                "RENEW",
                "DEREGISTRATION"
            ]
        );
    }

    #[test]
    fn counters_saturate_instead_of_overflowing() {
        let t = datetime!(2030-01-01 0:00 UTC);
        let mut s = Stats::default();
        s.renew.success = u64::MAX;
        s.renew.failed = u64::MAX;
        s.record(MsgType::Renew, t, true);
        s.record(MsgType::Renew, t, false);
        let copy = s.clone();
        s.add(&copy);
        assert_eq!((s.renew.success, s.renew.failed), (u64::MAX, u64::MAX));
    }
}
