//! The Unique Device Identifier: product id and serial number.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Udi {
    pub pid: String,
    pub sn: String,
}

const MAX_LEN: usize = 64;

/// `PID:N540-24Z8Q2C-M,SN:FOC2104R0XX`: how IOS writes a UDI, and how
/// events, reports, listings and the emulator show it.
pub fn text(pid: &str, sn: &str) -> String {
    format!("PID:{pid},SN:{sn}")
}

/// `N540-24Z8Q2C-M:FOC2104R0XX`: the short form operators type to name an
/// instance, the key answers are stored under, and `show license udi`'s column.
pub fn key(pid: &str, sn: &str) -> String {
    format!("{pid}:{sn}")
}

impl Udi {
    /// Checks both parts; on failure names the field (`udi.pid` or `udi.sn`).
    pub fn check(&self) -> Result<(), (&'static str, String)> {
        for (field, value) in [("udi.pid", &self.pid), ("udi.sn", &self.sn)] {
            if value.is_empty() {
                return Err((field, "must not be empty".into()));
            }
            if value.len() > MAX_LEN {
                return Err((field, format!("longer than {MAX_LEN} characters")));
            }
            if !value
                .bytes()
                .all(|b| b.is_ascii_graphic() && b != b':' && b != b',')
            {
                return Err((
                    field,
                    "only printable ASCII without spaces, ':' or ',' is allowed".into(),
                ));
            }
        }
        Ok(())
    }

    /// `PID:SN`, the key under which the instance is stored and shown.
    pub fn key(&self) -> String {
        key(&self.pid, &self.sn)
    }
}

impl std::fmt::Display for Udi {
    /// Written as IOS does: `PID:N540-24Z8Q2C-M,SN:FOC2104R0XX`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&text(&self.pid, &self.sn))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_the_bad_part() {
        let udi = Udi {
            pid: "N540-24Z8Q2C-M".into(),
            sn: "".into(),
        };
        assert_eq!(udi.check().unwrap_err().0, "udi.sn");
        let udi = Udi {
            pid: "A:B".into(),
            sn: "X".into(),
        };
        assert_eq!(udi.check().unwrap_err().0, "udi.pid");
    }

    #[test]
    fn writes_like_ios() {
        let udi = Udi {
            pid: "N540-24Z8Q2C-M".into(),
            sn: "FOC2104R0XX".into(),
        };
        assert_eq!(udi.to_string(), "PID:N540-24Z8Q2C-M,SN:FOC2104R0XX");
        assert_eq!(udi.key(), "N540-24Z8Q2C-M:FOC2104R0XX");
    }
}
