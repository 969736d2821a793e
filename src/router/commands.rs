//! The device commands, given as words (`license smart renew auth`), parsed
//! into a `Command` and executed against the state.

use super::agent::{Agent, AgentError, AuthKind, Checkpoint};
use super::client::Link;
use super::fcm::{Port, Speed, ADVANCED_FEATURES};
use super::show;
use super::state::State;
use super::stats;
use super::timers;
use serde_json::{json, Value};
use time::OffsetDateTime;

/// Limits that keep a typo from creating a million ports.
const MAX_PORTS_ADD: u32 = 4096;
const MAX_COUNT: u32 = 1_000_000;

pub const GRAMMAR: &str = "\
Device commands (words after the global options):
  license smart register idtoken TOKEN [force]
  license smart renew auth|id
  license smart deregister
  [no] license smart enable            (disabled, the agent sends nothing)
  [no] license smart flexible-consumption enable
  license request TAG COUNT            (COUNT 0 removes the demand)
  license release TAG
  license platform check               (the daily Flexible Consumption collection, now)
  interface NAME speed 1G|10G|25G|100G|400G [shutdown|no shutdown]
  interface NAME [no] shutdown
  interface NAME [no] feature l3vpn
  no interface NAME
  ports add COUNT SPEED [--feature l3vpn] [--shutdown]
  show license status|all|udi|summary
  show license platform summary|detail
  show call-home smart-licensing statistics
  show interfaces";

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Show {
    Status,
    All,
    Udi,
    Summary,
    PlatformSummary,
    PlatformDetail,
    Statistics,
    Interfaces,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InterfaceChange {
    Speed(Speed, Option<bool>),
    Shutdown(bool),
    Feature(String, bool),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    Register {
        token: String,
        force: bool,
    },
    RenewAuth,
    RenewId,
    Deregister,
    /// `license smart enable` / `no license smart enable`.
    Enable(bool),
    FlexibleConsumption(bool),
    Request {
        tag: String,
        count: u32,
    },
    Release {
        tag: String,
    },
    PlatformCheck,
    Interface {
        name: String,
        change: InterfaceChange,
    },
    NoInterface {
        name: String,
    },
    PortsAdd {
        count: u32,
        speed: Speed,
        features: Vec<String>,
        shutdown: bool,
    },
    Show(Show),
}

/// The lines of `GRAMMAR` for the commands that begin with `prefix` (all of
/// them for none); a prefix that starts none says so and lists them all.
pub fn help_for(prefix: &[String]) -> String {
    let wanted: Vec<String> = prefix.iter().map(|w| w.to_ascii_lowercase()).collect();
    let mut lines = GRAMMAR.lines();
    let title = lines.next().unwrap_or_default();
    let all: Vec<&str> = lines.collect();
    let matching: Vec<&str> = all
        .iter()
        .copied()
        .filter(|line| {
            let words: Vec<&str> = line
                .split_whitespace()
                .filter(|w| *w != "[no]")
                .take_while(|w| !w.starts_with('('))
                .collect();
            wanted.iter().enumerate().all(|(i, w)| {
                words.get(i).is_some_and(|word| {
                    word.split('|').any(|alt| alt.eq_ignore_ascii_case(w))
                        || word.chars().all(|c| c.is_ascii_uppercase() || c == '_')
                        || (i == 0 && w == "no" && line.contains("[no]"))
                })
            })
        })
        .collect();
    let shown = if matching.is_empty() { &all } else { &matching };
    let mut out = String::from(title);
    out.push('\n');
    for line in shown {
        out.push_str(line);
        out.push('\n');
    }
    out
}

fn usage(words: &[String]) -> String {
    format!(
        "unknown command `{}`; run `satellite-router --help` for the command list",
        words.join(" ")
    )
}

fn number(text: &str, what: &str, max: u32) -> Result<u32, String> {
    match text.parse::<u32>() {
        Ok(n) if n <= max => Ok(n),
        _ => Err(format!(
            "{what} {text:?}: expected a whole number from 0 to {max}"
        )),
    }
}

fn check_tag(tag: &str) -> Result<String, String> {
    let ok = !tag.is_empty()
        && tag.len() <= 128
        && tag
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'/'));
    if ok {
        Ok(tag.to_string())
    } else {
        Err(format!(
            "entitlement tag {tag:?}: use letters, digits and - _ . / (e.g. ESS-AC-10G-RTU-1)"
        ))
    }
}

fn check_interface(name: &str) -> Result<String, String> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name.bytes().all(|b| b.is_ascii_graphic())
        && name.bytes().next().is_some_and(|b| b.is_ascii_alphabetic());
    if ok {
        Ok(name.to_string())
    } else {
        Err(format!(
            "interface name {name:?}: expected a name like TenGigE0/0/0/1"
        ))
    }
}

fn check_feature(feature: &str) -> Result<String, String> {
    let f = feature.to_ascii_lowercase();
    if ADVANCED_FEATURES.contains(&f.as_str()) {
        Ok(f)
    } else {
        Err(format!(
            "unknown feature {feature:?}; known advanced features: {}",
            ADVANCED_FEATURES.join(", ")
        ))
    }
}

/// Keywords match case-insensitively, as on IOS; arguments keep their case.
pub fn parse(words: &[String]) -> Result<Command, String> {
    let lower: Vec<String> = words.iter().map(|w| w.to_ascii_lowercase()).collect();
    let l: Vec<&str> = lower.iter().map(String::as_str).collect();
    let w = words;
    Ok(match l.as_slice() {
        ["license", "smart", "register", "idtoken", _] => Command::Register {
            token: w[4].clone(),
            force: false,
        },
        ["license", "smart", "register", "idtoken", _, "force"] => Command::Register {
            token: w[4].clone(),
            force: true,
        },
        ["license", "smart", "renew", "auth"] => Command::RenewAuth,
        ["license", "smart", "renew", "id"] => Command::RenewId,
        ["license", "smart", "deregister"] => Command::Deregister,
        ["license", "smart", "enable"] => Command::Enable(true),
        ["no", "license", "smart", "enable"] => Command::Enable(false),
        ["license", "smart", "flexible-consumption", "enable"] => {
            Command::FlexibleConsumption(true)
        }
        ["no", "license", "smart", "flexible-consumption", "enable"] => {
            Command::FlexibleConsumption(false)
        }
        ["license", "request", _, _] => Command::Request {
            tag: check_tag(&w[2])?,
            count: number(&w[3], "count", MAX_COUNT)?,
        },
        ["license", "release", _] => Command::Release {
            tag: check_tag(&w[2])?,
        },
        ["license", "platform", "check"] => Command::PlatformCheck,
        ["interface", _, rest @ ..] => Command::Interface {
            name: check_interface(&w[1])?,
            change: parse_interface(rest, &w[2..]).ok_or_else(|| usage(words))??,
        },
        ["no", "interface", _] => Command::NoInterface {
            name: check_interface(&w[2])?,
        },
        ["ports", "add", _, _, rest @ ..] => {
            let mut features = Vec::new();
            let mut shutdown = false;
            let mut i = 0;
            while i < rest.len() {
                match rest[i] {
                    "--feature" if i + 1 < rest.len() => {
                        features.push(check_feature(rest[i + 1])?);
                        i += 2;
                    }
                    "--shutdown" => {
                        shutdown = true;
                        i += 1;
                    }
                    _ => return Err(usage(words)),
                }
            }
            let count = number(&w[2], "port count", MAX_PORTS_ADD)?;
            if count == 0 {
                return Err("ports add: the count must be at least 1".into());
            }
            Command::PortsAdd {
                count,
                speed: Speed::parse(&w[3])?,
                features,
                shutdown,
            }
        }
        ["show", "license", "status"] => Command::Show(Show::Status),
        ["show", "license", "all"] => Command::Show(Show::All),
        ["show", "license", "udi"] => Command::Show(Show::Udi),
        ["show", "license", "summary"] => Command::Show(Show::Summary),
        ["show", "license", "platform", "summary"] => Command::Show(Show::PlatformSummary),
        ["show", "license", "platform", "detail"] => Command::Show(Show::PlatformDetail),
        ["show", "call-home", "smart-licensing", "statistics"] => Command::Show(Show::Statistics),
        ["show", "interfaces"] | ["show", "interfaces", "brief"] => Command::Show(Show::Interfaces),
        _ => return Err(usage(words)),
    })
}

/// `None` when the words are not an interface sub-command at all.
fn parse_interface(lower: &[&str], original: &[String]) -> Option<Result<InterfaceChange, String>> {
    let speed = |i: usize| Speed::parse(&original[i]);
    Some(match lower {
        ["speed", _] => speed(1).map(|s| InterfaceChange::Speed(s, None)),
        ["speed", _, "shutdown"] => speed(1).map(|s| InterfaceChange::Speed(s, Some(true))),
        ["speed", _, "no", "shutdown"] => speed(1).map(|s| InterfaceChange::Speed(s, Some(false))),
        ["shutdown"] => Ok(InterfaceChange::Shutdown(true)),
        ["no", "shutdown"] => Ok(InterfaceChange::Shutdown(false)),
        ["feature", _] => check_feature(&original[1]).map(|f| InterfaceChange::Feature(f, true)),
        ["no", "feature", _] => {
            check_feature(&original[2]).map(|f| InterfaceChange::Feature(f, false))
        }
        _ => return None,
    })
}

/// What a command printed, and how it ended.
#[derive(Debug, Default)]
pub struct Reply {
    pub lines: Vec<String>,
    pub warnings: Vec<String>,
    /// The one-line reason of a failure.
    pub error: Option<String>,
    /// Machine-readable output for `--json`.
    pub json: Option<Value>,
}

impl Reply {
    fn fail(mut self, error: impl std::fmt::Display) -> Self {
        self.error = Some(error.to_string());
        self
    }
}

/// Runs one command at `now`. The caller saves the state afterwards,
/// whatever happened: statistics and failures are part of it. `save` is
/// for the agent's saves in the middle of a command (`Checkpoint`).
pub fn execute(
    state: &mut State,
    command: &Command,
    now: OffsetDateTime,
    link: &mut dyn Link,
    save: Checkpoint<'_>,
) -> Reply {
    timers::settle(state, now);
    let reply = Reply::default();
    let reply = match command {
        Command::Show(what) => {
            let mut reply = background(state, now, link, save, reply);
            render(state, what, now, &mut reply);
            reply
        }
        Command::Register { .. }
        | Command::RenewAuth
        | Command::RenewId
        | Command::Deregister
        | Command::PlatformCheck => network(state, command, now, link, save, reply),
        _ => configure(state, command, now, link, save, reply),
    };
    timers::settle(state, now);
    reply
}

/// Before a `show`: the timers that came due, as a running agent would
/// have fired them. What the agent logged goes to stderr (a console
/// message), so the `show` output stays what it is.
fn background(
    state: &mut State,
    now: OffsetDateTime,
    link: &mut dyn Link,
    save: Checkpoint<'_>,
    mut reply: Reply,
) -> Reply {
    let mut agent = Agent::new(state, link, now).with_checkpoint(save);
    let caught_up = timers::catch_up(&mut agent);
    reply.warnings.append(&mut agent.lines);
    reply.warnings.append(&mut agent.warnings);
    if let Err(e) = caught_up {
        reply.warnings.push(format!("automatic {e}"));
    }
    timers::settle(state, now);
    reply
}

fn render(state: &State, what: &Show, now: OffsetDateTime, reply: &mut Reply) {
    let text = match what {
        Show::Status => show::status(state, now),
        Show::All => show::all(state, now),
        Show::Udi => show::udi(state),
        Show::Summary => show::summary(state, now),
        Show::PlatformSummary => show::platform_summary(state, now),
        Show::PlatformDetail => show::platform_detail(state, now),
        Show::Statistics => stats::render(&state.stats),
        Show::Interfaces => show::interfaces(state),
    };
    reply.json = Some(match what {
        Show::Statistics => serde_json::to_value(&state.stats).unwrap_or(Value::Null),
        Show::Udi => json!({"pid": state.udi.pid, "sn": state.udi.sn,
            "udi": state.udi.key(), "text": state.udi.to_string()}),
        Show::Interfaces => serde_json::to_value(&state.fcm.ports).unwrap_or(Value::Null),
        _ => show::status_json(state, now),
    });
    reply
        .lines
        .extend(text.trim_end_matches('\n').lines().map(String::from));
}

fn network(
    state: &mut State,
    command: &Command,
    now: OffsetDateTime,
    link: &mut dyn Link,
    save: Checkpoint<'_>,
    mut reply: Reply,
) -> Reply {
    let wants_server = !matches!(command, Command::PlatformCheck);
    if !state.enabled && wants_server {
        return reply
            .fail("Smart Licensing is DISABLED; enable it with `license smart enable` first");
    }
    let mut agent = Agent::new(state, link, now).with_checkpoint(save);
    // A renewal left pending may have replaced the certificate on the
    // server: finish it before the old one is presented again.
    let finish_renewal = agent.state.pending_identity.is_some()
        && !matches!(command, Command::RenewId | Command::Register { .. });
    if finish_renewal {
        if let Err(e) = agent.renew_id() {
            agent.warnings.push(format!("pending {e}"));
        }
    }
    let result: Result<(), AgentError> = match command {
        Command::Register { token, force } => {
            // An already registered device refuses before anything starts.
            if *force || !agent.state.is_registered() {
                agent.lines.push(
                    "license smart register idtoken: Registration process is in progress.".into(),
                );
            }
            agent.register(token, *force, true)
        }
        Command::RenewAuth => {
            agent
                .lines
                .push("license smart renew auth: Authorization process is in progress.".into());
            agent.authorize(AuthKind::RenewAuth)
        }
        Command::RenewId => {
            agent.lines.push(
                "license smart renew id: ID certificate renewal process is in progress.".into(),
            );
            agent.renew_id()
        }
        Command::Deregister => agent.deregister().map(|()| {
            agent.lines.push("license smart deregister: Success".into());
            agent.lines.push(
                "License command \"license smart deregister \" completed successfully.".into(),
            );
        }),
        Command::PlatformCheck => {
            if !agent.state.fcm.enabled {
                Err(AgentError::Local(
                    "Flexible Consumption is not enabled; enable it with `license smart flexible-consumption enable`".into(),
                ))
            } else {
                agent.collect();
                if !agent.state.enabled {
                    agent.lines.push(
                        "license platform check: collected; Smart Licensing is DISABLED, so nothing was reported".into(),
                    );
                    Ok(())
                } else if agent.state.is_registered() {
                    agent.authorize(AuthKind::Entitlement)
                } else {
                    agent.lines.push(
                        "license platform check: collected; the device is not registered, so nothing was reported".into(),
                    );
                    Ok(())
                }
            }
        }
        _ => Ok(()),
    };
    // Other timers that came due (an ID renewal beside an explicit
    // authorization renewal, say) fire too.
    if result.is_ok() && !matches!(command, Command::Deregister) {
        if let Err(e) = timers::catch_up(&mut agent) {
            agent.warnings.push(format!("automatic {e}"));
        }
    }
    reply.lines.append(&mut agent.lines);
    reply.warnings.append(&mut agent.warnings);
    match result {
        Ok(()) => reply,
        Err(e) => reply.fail(e),
    }
}

fn configure(
    state: &mut State,
    command: &Command,
    now: OffsetDateTime,
    link: &mut dyn Link,
    save: Checkpoint<'_>,
    mut reply: Reply,
) -> Reply {
    let demand_before = state.demand();
    if let Err(e) = apply(state, command, now, &mut reply.lines) {
        return reply.fail(e);
    }
    let demand_changed = state.demand() != demand_before;
    if demand_changed {
        state.report_pending = true;
    }
    timers::settle(state, now);
    let mut agent = Agent::new(state, link, now).with_checkpoint(save);
    let caught_up = timers::catch_up(&mut agent);
    reply.lines.append(&mut agent.lines);
    reply.warnings.append(&mut agent.warnings);
    match caught_up {
        Ok(()) => reply,
        // The configuration stands; the report of a changed demand failed.
        Err(e) if demand_changed => reply.fail(format!(
            "{e} (the configuration is saved and will be reported at the next attempt)"
        )),
        Err(e) => {
            reply.warnings.push(format!("automatic {e}"));
            reply
        }
    }
}

/// The local part of a configuration command.
fn apply(
    state: &mut State,
    command: &Command,
    now: OffsetDateTime,
    lines: &mut Vec<String>,
) -> Result<(), String> {
    match command {
        Command::Enable(enable) => {
            if state.enabled == *enable {
                lines.push(format!(
                    "Smart Licensing is already {}",
                    if *enable { "ENABLED" } else { "DISABLED" }
                ));
            } else {
                state.enabled = *enable;
                lines.push(if *enable {
                    "Smart Licensing is ENABLED; the agent catches up with what came due".into()
                } else {
                    "Smart Licensing is DISABLED: no communication with the licensing server until `license smart enable`".into()
                });
            }
        }
        Command::FlexibleConsumption(true) => {
            if state.fcm.enabled {
                lines.push("Flexible Consumption licensing is already enabled".into());
            } else {
                state.fcm.enabled = true;
                state.fcm.enabled_at = Some(now);
                state.fcm.last_check = None;
                let first = now
                    .checked_add(time::Duration::days(1))
                    .map(|t| format!("at {}", show::date(t)))
                    .unwrap_or_else(|| "in a day".into());
                lines.push(format!(
                    "Flexible Consumption licensing is enabled; the first daily collection runs {first} (or now with `license platform check`)"
                ));
            }
        }
        Command::FlexibleConsumption(false) => {
            state.fcm.enabled = false;
            state.fcm.enabled_at = None;
            state.fcm.current = None;
            state.fcm.last_check = None;
            lines.push("Flexible Consumption licensing is disabled".into());
        }
        Command::Request { tag, count: 0 } | Command::Release { tag } => {
            if state.requests.remove(tag).is_some() {
                lines.push(format!("{tag}: demand removed"));
            } else {
                lines.push(format!("{tag}: not requested; nothing to release"));
            }
        }
        Command::Request { tag, count } => {
            state.requests.insert(tag.clone(), *count);
            lines.push(format!("{tag}: demand set to {count}"));
        }
        Command::Interface { name, change } => {
            let port = match state.fcm.ports.get_mut(name) {
                Some(port) => port,
                None => {
                    let speed = match change {
                        InterfaceChange::Speed(speed, _) => *speed,
                        _ => Speed::from_interface_name(name).ok_or_else(|| {
                            format!("interface {name} does not exist; create it with `interface {name} speed 10G`")
                        })?,
                    };
                    state
                        .fcm
                        .ports
                        .entry(name.clone())
                        .or_insert(Port::new(speed))
                }
            };
            match change {
                InterfaceChange::Speed(speed, shutdown) => {
                    port.speed = *speed;
                    if let Some(s) = shutdown {
                        port.shutdown = *s;
                    }
                }
                InterfaceChange::Shutdown(s) => port.shutdown = *s,
                InterfaceChange::Feature(f, true) => {
                    port.features.insert(f.clone());
                }
                InterfaceChange::Feature(f, false) => {
                    port.features.remove(f);
                }
            }
            lines.push(describe_port(name, port));
        }
        Command::NoInterface { name } => {
            if state.fcm.ports.remove(name).is_none() {
                return Err(format!("interface {name} does not exist"));
            }
            lines.push(format!("interface {name} removed"));
        }
        Command::PortsAdd {
            count,
            speed,
            features,
            shutdown,
        } => {
            let prefix = speed.interface_prefix();
            let mut next = 0u32;
            let mut added = Vec::new();
            for _ in 0..*count {
                while state.fcm.ports.contains_key(&format!("{prefix}{next}")) {
                    next += 1;
                }
                let name = format!("{prefix}{next}");
                let mut port = Port::new(*speed);
                port.shutdown = *shutdown;
                port.features.extend(features.iter().cloned());
                state.fcm.ports.insert(name.clone(), port);
                added.push(name);
            }
            let first = added.first().cloned().unwrap_or_default();
            let last = added.last().cloned().unwrap_or_default();
            lines.push(format!(
                "ports add: {count} x {} ({first} .. {last}){}{}; {} ports configured",
                speed.label(),
                if features.is_empty() {
                    String::new()
                } else {
                    format!(" with {}", features.join(","))
                },
                if *shutdown { ", shut down" } else { "" },
                state.fcm.ports.len()
            ));
        }
        _ => {}
    }
    if !state.fcm.enabled
        && matches!(
            command,
            Command::Interface { .. } | Command::NoInterface { .. } | Command::PortsAdd { .. }
        )
    {
        lines.push(
            "note: Flexible Consumption is disabled, so ports consume nothing until `license smart flexible-consumption enable`".into(),
        );
    }
    Ok(())
}

fn describe_port(name: &str, port: &Port) -> String {
    let features: Vec<&str> = port.features.iter().map(String::as_str).collect();
    format!(
        "interface {name}: {} {}{}",
        port.speed.label(),
        if port.shutdown {
            "shutdown"
        } else {
            "no shutdown"
        },
        if features.is_empty() {
            String::new()
        } else {
            format!(", feature {}", features.join(","))
        }
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn help_lists_the_commands_that_begin_with_the_words_given() {
        let words = |text: &str| {
            text.split_whitespace()
                .map(String::from)
                .collect::<Vec<_>>()
        };
        let license = help_for(&words("license"));
        assert!(license.contains("license smart register idtoken TOKEN"));
        assert!(license.contains("license request TAG COUNT"));
        assert!(!license.contains("show interfaces"));
        let show = help_for(&words("show license"));
        assert!(show.contains("show license status") && !show.contains("show interfaces"));
        let everything = help_for(&words("frobnicate"));
        assert!(everything.contains("show interfaces") && everything.contains("ports add"));
    }
    use crate::router::client::{Identity, SendError};
    use crate::router::state::tests::sample;
    use time::macros::datetime;

    fn words(text: &str) -> Vec<String> {
        text.split_whitespace().map(String::from).collect()
    }

    fn no_save(_: &State) -> Result<(), String> {
        Ok(())
    }

    struct Offline;
    impl Link for Offline {
        fn send(&mut self, _: Option<&Identity>, _: &Value) -> Result<Value, SendError> {
            Err(SendError::Transport("offline".into()))
        }
    }

    #[test]
    fn parses_the_grammar() {
        assert_eq!(
            parse(&words("license smart register idtoken AbC force")),
            Ok(Command::Register {
                token: "AbC".into(),
                force: true
            })
        );
        assert_eq!(
            parse(&words("License Smart Renew AUTH")),
            Ok(Command::RenewAuth)
        );
        assert_eq!(
            parse(&words("no license smart flexible-consumption enable")),
            Ok(Command::FlexibleConsumption(false))
        );
        assert_eq!(
            parse(&words("interface TenGigE0/0/0/1 speed 25G no shutdown")),
            Ok(Command::Interface {
                name: "TenGigE0/0/0/1".into(),
                change: InterfaceChange::Speed(Speed::G25, Some(false))
            })
        );
        assert_eq!(
            parse(&words("ports add 4 10G --feature l3vpn")),
            Ok(Command::PortsAdd {
                count: 4,
                speed: Speed::G10,
                features: vec!["l3vpn".into()],
                shutdown: false
            })
        );
        assert_eq!(
            parse(&words("show call-home smart-licensing statistics")),
            Ok(Command::Show(Show::Statistics))
        );
        for bad in [
            "license request TAG many",
            "license request bad*tag 1",
            "interface X feature bgp",
            "interface X speed 40G",
            "ports add 0 10G",
            "ports add 2 10G --bogus",
            "show license",
            "license smart register idtoken",
        ] {
            assert!(parse(&words(bad)).is_err(), "{bad}");
        }
    }

    #[test]
    fn ports_and_interfaces_build_the_design_example() {
        let mut s = sample();
        let now = datetime!(2030-01-01 0:00 UTC);
        for cmd in [
            "license smart flexible-consumption enable",
            "ports add 4 10G --feature l3vpn",
            "ports add 20 10G",
            "ports add 2 100G",
            "interface TenGigE0/0/0/99 speed 10G shutdown",
        ] {
            let reply = execute(
                &mut s,
                &parse(&words(cmd)).unwrap(),
                now,
                &mut Offline,
                &mut no_save,
            );
            assert_eq!(reply.error, None, "{cmd}");
        }
        assert!(s.fcm.ports.contains_key("TenGigE0/0/0/23"));
        assert!(s.fcm.ports.contains_key("HundredGigE0/0/1/1"));
        let reply = execute(
            &mut s,
            &Command::PlatformCheck,
            now,
            &mut Offline,
            &mut no_save,
        );
        assert_eq!(reply.error, None);
        let c = s.fcm.current.unwrap();
        assert_eq!(
            (c.ess_rtu, c.ess_sia, c.adv_rtu, c.adv_sia, c.tracking),
            (44, 44, 4, 4, 1)
        );
        assert!(s.eval.counting_since.is_some(), "unregistered and in use");
        let err = execute(
            &mut s,
            &parse(&words("no interface Nope0")).unwrap(),
            now,
            &mut Offline,
            &mut no_save,
        );
        assert!(err.error.unwrap().contains("does not exist"));
    }

    #[test]
    fn shows_send_nothing_when_no_timer_is_due() {
        let mut s = sample();
        s.requests.insert("T".into(), 1);
        struct Panicky;
        impl Link for Panicky {
            fn send(&mut self, _: Option<&Identity>, _: &Value) -> Result<Value, SendError> {
                panic!("a show command sent traffic")
            }
        }
        let now = datetime!(2030-01-01 0:00 UTC);
        for what in [
            Show::Status,
            Show::All,
            Show::Udi,
            Show::Summary,
            Show::PlatformSummary,
            Show::PlatformDetail,
            Show::Statistics,
            Show::Interfaces,
        ] {
            let reply = execute(
                &mut s,
                &Command::Show(what),
                now,
                &mut Panicky,
                &mut no_save,
            );
            assert!(reply.error.is_none() && !reply.lines.is_empty());
        }
    }
}
