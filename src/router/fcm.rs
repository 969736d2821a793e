//! Flexible Consumption arithmetic (DESIGN §6): what a port configuration
//! consumes. Pure functions over plain data, so the rules are tested without
//! a server or a state file.

use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

pub const ESS_RTU: &str = "ESS-AC-10G-RTU-1";
pub const ESS_SIA: &str = "ESS-AC-10G-SIA";
pub const ADV_RTU: &str = "ADV-AC-10G-RTU-1";
pub const ADV_SIA: &str = "ADV-AC-10G-SIA";
pub const TRACKING: &str = "N540-24Z8Q2C-FC-SW";

/// Features that make a port consume Advanced units as well as Essentials.
pub const ADVANCED_FEATURES: &[&str] = &["l3vpn"];

/// Port speeds an NCS 540 offers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Speed {
    #[serde(rename = "1G")]
    G1,
    #[serde(rename = "10G")]
    G10,
    #[serde(rename = "25G")]
    G25,
    #[serde(rename = "100G")]
    G100,
    #[serde(rename = "400G")]
    G400,
}

impl Speed {
    pub const ALL: [Speed; 5] = [Speed::G1, Speed::G10, Speed::G25, Speed::G100, Speed::G400];

    pub fn gbps(self) -> u32 {
        match self {
            Speed::G1 => 1,
            Speed::G10 => 10,
            Speed::G25 => 25,
            Speed::G100 => 100,
            Speed::G400 => 400,
        }
    }

    /// One unit per started 10 Gb: 1G and 10G cost 1, 25G costs 3.
    pub fn units(self) -> u32 {
        self.gbps().div_ceil(10)
    }

    pub fn label(self) -> &'static str {
        match self {
            Speed::G1 => "1G",
            Speed::G10 => "10G",
            Speed::G25 => "25G",
            Speed::G100 => "100G",
            Speed::G400 => "400G",
        }
    }

    /// IOS XR interface name prefix and the slot part used for new ports.
    pub fn interface_prefix(self) -> &'static str {
        match self {
            Speed::G1 => "GigabitEthernet0/0/0/",
            Speed::G10 => "TenGigE0/0/0/",
            Speed::G25 => "TwentyFiveGigE0/0/0/",
            Speed::G100 => "HundredGigE0/0/1/",
            Speed::G400 => "FourHundredGigE0/0/2/",
        }
    }

    /// Accepts `10G`, `10g`, `10`.
    pub fn parse(text: &str) -> Result<Speed, String> {
        let t = text.trim().to_ascii_uppercase();
        let t = t.strip_suffix('G').unwrap_or(&t);
        Speed::ALL
            .into_iter()
            .find(|s| s.gbps().to_string() == t)
            .ok_or_else(|| format!("unknown speed {text:?}; use one of 1G, 10G, 25G, 100G, 400G"))
    }

    /// The speed an interface name implies (`TenGigE0/0/0/3` → 10G).
    pub fn from_interface_name(name: &str) -> Option<Speed> {
        // Longest prefixes first: "HundredGigE" must not match "GigabitEthernet" rules.
        const NAMES: [(&str, Speed); 5] = [
            ("FourHundredGigE", Speed::G400),
            ("HundredGigE", Speed::G100),
            ("TwentyFiveGigE", Speed::G25),
            ("TenGigE", Speed::G10),
            ("GigabitEthernet", Speed::G1),
        ];
        NAMES
            .iter()
            .find(|(prefix, _)| name.starts_with(prefix))
            .map(|(_, speed)| *speed)
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Port {
    pub speed: Speed,
    #[serde(default)]
    pub shutdown: bool,
    #[serde(default)]
    pub features: BTreeSet<String>,
}

impl Port {
    pub fn new(speed: Speed) -> Self {
        Self {
            speed,
            shutdown: false,
            features: BTreeSet::new(),
        }
    }

    pub fn is_advanced(&self) -> bool {
        self.features
            .iter()
            .any(|f| ADVANCED_FEATURES.contains(&f.as_str()))
    }
}

/// Units consumed by one chassis.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counts {
    pub ess_rtu: u32,
    pub ess_sia: u32,
    pub adv_rtu: u32,
    pub adv_sia: u32,
    pub tracking: u32,
}

/// What the configured ports consume with Flexible Consumption enabled.
pub fn count<'a>(ports: impl IntoIterator<Item = &'a Port>) -> Counts {
    let mut counts = Counts {
        tracking: 1,
        ..Counts::default()
    };
    for port in ports.into_iter().filter(|p| !p.shutdown) {
        let units = port.speed.units();
        counts.ess_rtu = counts.ess_rtu.saturating_add(units);
        counts.ess_sia = counts.ess_sia.saturating_add(units);
        if port.is_advanced() {
            counts.adv_rtu = counts.adv_rtu.saturating_add(units);
            counts.adv_sia = counts.adv_sia.saturating_add(units);
        }
    }
    counts
}

impl Counts {
    /// Every FCM entitlement with its count, zeros included, in display order.
    pub fn rows(&self) -> [(&'static str, u32); 5] {
        [
            (ESS_RTU, self.ess_rtu),
            (ESS_SIA, self.ess_sia),
            (ADV_RTU, self.adv_rtu),
            (ADV_SIA, self.adv_sia),
            (TRACKING, self.tracking),
        ]
    }

    /// The demand to report: tags with a non-zero count.
    pub fn demand(&self) -> BTreeMap<String, u32> {
        self.rows()
            .into_iter()
            .filter(|(_, n)| *n > 0)
            .map(|(tag, n)| (tag.to_string(), n))
            .collect()
    }
}

/// The name `show license platform` gives an entitlement.
pub fn platform_name(tag: &str, pid: &str) -> String {
    match tag {
        ESS_RTU => "Access Essentials SW Right-to-Use v1.0 per 10G".into(),
        ESS_SIA => "Access Essentials SIA per 10G".into(),
        ADV_RTU => "Access Advantage SW Right-to-Use v1.0 per 10G".into(),
        ADV_SIA => "Access Advantage SIA per 10G".into(),
        TRACKING => format!("{pid} Base Hardware Tracking PID"),
        other => other.into(),
    }
}

/// The catalog description of an entitlement (the seed's NCS 540 table).
pub fn description(tag: &str) -> Option<&'static str> {
    Some(match tag {
        ESS_RTU => "Access Network Essentials Software RTU per 10Gb",
        ESS_SIA => "Access Network Essentials Software Innovation Access per 10Gb",
        ADV_RTU => "Access Network Advanced Software RTU per 10Gb",
        ADV_SIA => "Access Network Advanced Software Innovation Access per 10Gb",
        TRACKING => "NCS 540 Series additional Software Licenses (RTU, SIA)",
        _ => return None,
    })
}

pub fn is_sia(tag: &str) -> bool {
    tag == ESS_SIA || tag == ADV_SIA
}

#[cfg(test)]
mod tests {
    use super::*;

    fn port(speed: Speed, l3vpn: bool) -> Port {
        let mut p = Port::new(speed);
        if l3vpn {
            p.features.insert("l3vpn".into());
        }
        p
    }

    #[test]
    fn units_per_started_10g() {
        let units: Vec<u32> = Speed::ALL.iter().map(|s| s.units()).collect();
        assert_eq!(units, [1, 1, 3, 10, 40]);
    }

    #[test]
    fn the_design_example() {
        // 24 x 10G + 2 x 100G, 4 of the 10G ports with L3VPN.
        let mut ports: Vec<Port> = (0..24).map(|i| port(Speed::G10, i < 4)).collect();
        ports.extend((0..2).map(|_| port(Speed::G100, false)));
        let c = count(&ports);
        assert_eq!(
            c,
            Counts {
                ess_rtu: 44,
                ess_sia: 44,
                adv_rtu: 4,
                adv_sia: 4,
                tracking: 1
            }
        );
    }

    #[test]
    fn shutdown_ports_and_unknown_features_cost_nothing_extra() {
        let mut down = port(Speed::G400, true);
        down.shutdown = true;
        let mut other = port(Speed::G25, false);
        other.features.insert("netflow".into());
        let c = count(&[down, other]);
        assert_eq!((c.ess_rtu, c.ess_sia, c.adv_rtu, c.tracking), (3, 3, 0, 1));
        assert_eq!(c.demand().len(), 3, "zero counts are not demanded");
    }

    #[test]
    fn speeds_parse_and_follow_names() {
        assert_eq!(Speed::parse("25g"), Ok(Speed::G25));
        assert_eq!(Speed::parse("100"), Ok(Speed::G100));
        assert!(Speed::parse("40G").is_err());
        assert_eq!(
            Speed::from_interface_name("HundredGigE0/0/1/0"),
            Some(Speed::G100)
        );
        assert_eq!(
            Speed::from_interface_name("FourHundredGigE0/0/2/1"),
            Some(Speed::G400)
        );
        assert_eq!(Speed::from_interface_name("Loopback0"), None);
    }
}
