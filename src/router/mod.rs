//! `satellite-router`: an emulated IOS XR router whose Smart Licensing agent
//! is a real HTTPS client of the device API (DESIGN §11).
//!
//! One job per module: `state` (the state file), `client` (transport),
//! `wire` (messages), `agent` (what the agent does), `timers` (what time
//! changes), `fcm` (Flexible Consumption arithmetic), `show` (rendering),
//! `stats` (Call Home statistics), `commands` (the word grammar), `daemon`
//! (the long-lived agent), `fleet`
//! (load tool), `times` (range checks on outside times). Time is read only
//! from `Clock::from_env()`.

pub mod agent;
pub mod cli;
pub mod client;
pub mod commands;
pub mod daemon;
pub mod eval;
pub mod fcm;
pub mod fleet;
pub mod identity;
pub mod show;
pub mod state;
pub mod stats;
pub mod timers;
pub mod times;
pub mod wire;

use crate::clock::Clock;
use cli::{Cli, InitArgs, Top};
use client::HttpLink;
use serde_json::json;
use state::{Endpoint, State, TransportKind, Udi};
use std::path::Path;

/// Exit code for a failed operation (refused, unreachable, bad state).
pub const EXIT_FAILED: u8 = 1;
/// Exit code for words or arguments that are not a command.
pub const EXIT_USAGE: u8 = 2;

/// What to print and how to exit; `main` only prints it.
#[derive(Debug, Default)]
pub struct Outcome {
    pub stdout: String,
    pub stderr: Vec<String>,
    pub exit: u8,
}

impl Outcome {
    fn failed(code: u8, reason: impl std::fmt::Display) -> Self {
        Self {
            stdout: String::new(),
            stderr: vec![reason.to_string()],
            exit: code,
        }
    }
}

pub fn run(cli: Cli) -> Outcome {
    let clock = match Clock::from_env() {
        Ok(c) => c,
        Err(e) => return Outcome::failed(EXIT_USAGE, e),
    };
    // What the clock says is stored; a time the next load would refuse is
    // refused now.
    if let Err(e) = times::check(clock.now()) {
        return Outcome::failed(EXIT_USAGE, format!("the current time: {e}"));
    }
    match cli.command {
        Top::Init(args) => init(&args, &cli.state, cli.json, &clock),
        Top::Fleet(args) => fleet_command(&args, cli.json, &clock),
        Top::Run(args) => {
            let error = daemon::run(
                &cli.state,
                &clock,
                std::time::Duration::from_secs(args.interval),
            );
            Outcome::failed(EXIT_FAILED, error)
        }
        Top::Words(words) => {
            let (words, state, json) = global_options_after(words, cli.state, cli.json);
            device_command(&words, &state, json, &clock)
        }
    }
}

/// Clap stops parsing at the first command word, so `--json` and
/// `-s FILE` written after the words are picked out here.
fn global_options_after(
    words: Vec<String>,
    mut state: std::path::PathBuf,
    mut json: bool,
) -> (Vec<String>, std::path::PathBuf, bool) {
    let mut kept = Vec::with_capacity(words.len());
    let mut iter = words.into_iter();
    while let Some(word) = iter.next() {
        match word.as_str() {
            "--json" => json = true,
            "-s" | "--state" => match iter.next() {
                Some(path) => state = path.into(),
                None => kept.push(word),
            },
            _ => match word.strip_prefix("--state=") {
                Some(path) => state = path.into(),
                None => kept.push(word),
            },
        }
    }
    (kept, state, json)
}

/// Where the device API is, read from a URL as an IOS router is given it:
/// `https://host/SmartTransport`, `https://host/Transportgateway/services/DeviceRequestHandler`,
/// another path (posted to as it is), or just `https://host:port`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceUrl {
    /// Scheme and authority, without a trailing slash.
    pub base: String,
    /// A path that is not one of the two standard ones.
    pub path: Option<String>,
    /// The transport the standard path names.
    pub transport: Option<TransportKind>,
}

impl DeviceUrl {
    /// The endpoint for `transport` (an explicit choice), checked against
    /// the one the URL's path names.
    pub fn endpoint(
        self,
        transport: Option<TransportKind>,
        proxy: Option<String>,
        ca_pem: String,
    ) -> Result<Endpoint, String> {
        let transport = match (transport, self.transport) {
            (Some(chosen), Some(named)) if chosen != named => {
                return Err(format!(
                "--transport {} contradicts --url, whose path is the {} endpoint; drop one of them",
                chosen.name(),
                named.name()
            ))
            }
            (Some(t), _) | (None, Some(t)) => t,
            (None, None) => TransportKind::Smart,
        };
        Ok(Endpoint {
            url: self.base,
            path: self.path,
            transport,
            proxy,
            ca_pem,
        })
    }
}

/// Checks a device API URL: HTTPS, a host, and an optional path.
pub fn check_url(url: &str) -> Result<DeviceUrl, String> {
    let trimmed = url.trim();
    let bad = || {
        format!(
            "--url {trimmed:?}: expected the device API's URL, e.g. https://satellite.example/SmartTransport, \
             https://satellite.example/Transportgateway/services/DeviceRequestHandler or https://satellite.example:4443"
        )
    };
    let rest = trimmed.strip_prefix("https://").ok_or_else(bad)?;
    let (authority, path) = match rest.find('/') {
        Some(i) => rest.split_at(i),
        None => (rest, ""),
    };
    let path = path.trim_end_matches('/');
    if authority.is_empty()
        || trimmed.contains(char::is_whitespace)
        || trimmed.contains(['?', '#'])
        || authority.contains('@')
    {
        return Err(bad());
    }
    let base = format!("https://{authority}");
    let (path, transport) = match path {
        "" => (None, None),
        p if p.eq_ignore_ascii_case(state::SMART_PATH) => (None, Some(TransportKind::Smart)),
        p if p.eq_ignore_ascii_case(crate::notify::callhome::PATH) => {
            (None, Some(TransportKind::Callhome))
        }
        p => (Some(p.to_string()), None),
    };
    Ok(DeviceUrl {
        base,
        path,
        transport,
    })
}

/// Checks that a file holds CA certificates rustls accepts as roots.
pub fn check_ca(ca_pem: &str) -> Result<(), String> {
    identity::certificates_der(ca_pem, "expected a PEM CA certificate")
        .map_err(|e| e.to_string())?;
    client::tls_config(ca_pem, None)
        .map(|_| ())
        .map_err(|e| e.to_string())
}

fn init(args: &InitArgs, path: &Path, json: bool, clock: &Clock) -> Outcome {
    let result = (|| -> Result<State, String> {
        let udi = Udi {
            pid: args.pid.clone(),
            sn: args.sn.clone(),
        };
        udi.check()?;
        let hostname = args.hostname.trim();
        if hostname.is_empty() || hostname.len() > 255 || hostname.contains(char::is_whitespace) {
            return Err(format!(
                "--hostname {hostname:?}: expected a host name without spaces"
            ));
        }
        let url = check_url(&args.url)?;
        let ca_pem = std::fs::read_to_string(&args.ca).map_err(|e| {
            format!(
                "--ca {}: {e}; pass the satellite's ca.pem",
                args.ca.display()
            )
        })?;
        check_ca(&ca_pem).map_err(|e| format!("--ca {}: {e}", args.ca.display()))?;
        if let Some(p) = &args.proxy {
            client::check_proxy(p)?;
        }
        let key = identity::new_key().map_err(|e| e.to_string())?;
        let endpoint = url.endpoint(args.transport, args.proxy.clone(), ca_pem)?;
        let mut state = State::new(udi, hostname.to_string(), endpoint, key);
        timers::settle(&mut state, clock.now());
        state.create(path, args.force).map_err(|e| e.to_string())?;
        Ok(state)
    })();
    match result {
        Err(e) => Outcome::failed(EXIT_FAILED, format!("init: {e}")),
        Ok(state) => {
            let transport = state.endpoint.transport.name();
            let stdout = if json {
                json!({"state": path.display().to_string(), "udi": state.udi.to_string(),
                    "hostname": state.hostname, "url": state.endpoint.post_url(), "transport": transport})
                .to_string()
                    + "\n"
            } else {
                format!(
                    "Router {} ({}) created in {}\nDevice API: {} (transport {transport}{}), trusting only {}\n\
                     Next: satellite-router -s {} license smart register idtoken TOKEN\n",
                    state.udi,
                    state.hostname,
                    path.display(),
                    state.endpoint.post_url(),
                    state
                        .endpoint
                        .proxy
                        .as_deref()
                        .map(|p| format!(", via proxy {p}"))
                        .unwrap_or_default(),
                    args.ca.display(),
                    path.display()
                )
            };
            Outcome {
                stdout,
                stderr: Vec::new(),
                exit: 0,
            }
        }
    }
}

fn device_command(words: &[String], path: &Path, json: bool, clock: &Clock) -> Outcome {
    // `license --help`, `show ?`: the device commands that start so, as a
    // router's `?` lists them.
    if let Some((last, prefix)) = words.split_last() {
        if ["--help", "-h", "?", "help"].contains(&last.as_str()) {
            return Outcome {
                stdout: commands::help_for(prefix),
                stderr: Vec::new(),
                exit: 0,
            };
        }
    }
    let command = match commands::parse(words) {
        Ok(c) => c,
        Err(e) => return Outcome::failed(EXIT_USAGE, e),
    };
    let mut state = match State::load(path) {
        Ok(s) => s,
        Err(e) => return Outcome::failed(EXIT_FAILED, e),
    };
    let mut link = HttpLink::new(state.endpoint.clone(), state.udi.clone(), clock.clone());
    let mut save = |s: &State| s.save(path).map_err(|e| e.to_string());
    let reply = commands::execute(&mut state, &command, clock.now(), &mut link, &mut save);
    let mut stderr = reply.warnings.clone();
    let mut exit = 0;
    if let Err(e) = state.save(path) {
        stderr.push(format!("the state could not be saved: {e}"));
        exit = EXIT_FAILED;
    }
    if let Some(error) = &reply.error {
        stderr.push(error.clone());
        exit = EXIT_FAILED;
    }
    let stdout = if json {
        let mut out = match (&command, &reply.json) {
            (commands::Command::Show(_), Some(j)) => j.clone(),
            _ => json!({
                "ok": reply.error.is_none(),
                "command": words.join(" "),
                "lines": reply.lines,
                "warnings": reply.warnings,
                "error": reply.error,
                "status": show::status_json(&state, clock.now()),
            }),
        };
        if let Some(map) = out.as_object_mut() {
            map.entry("ok").or_insert(json!(reply.error.is_none()));
        }
        format!("{out:#}\n")
    } else if reply.lines.is_empty() {
        String::new()
    } else {
        reply.lines.join("\n") + "\n"
    };
    Outcome {
        stdout,
        stderr,
        exit,
    }
}

fn fleet_command(args: &cli::FleetArgs, json: bool, clock: &Clock) -> Outcome {
    let summary = match fleet::run(args, clock) {
        Ok(s) => s,
        Err(e) => return Outcome::failed(EXIT_USAGE, format!("fleet: {e}")),
    };
    let header = format!(
        "fleet: {} routers against {}, concurrency {}, {} ENTITLEMENT each ({} x {})\n",
        args.count, args.url, args.concurrency, args.requests_per_router, args.tag, args.count_each
    );
    let stdout = if json {
        format!("{:#}\n", summary.to_json())
    } else {
        header + &summary.render()
    };
    let clean = summary.failures.is_empty()
        && summary.failed() == 0
        && summary.registered == summary.routers;
    if clean {
        Outcome {
            stdout,
            stderr: Vec::new(),
            exit: 0,
        }
    } else {
        let codes: Vec<String> = summary
            .failures
            .iter()
            .map(|(k, v)| format!("{k}: {v}"))
            .collect();
        Outcome {
            stdout,
            stderr: vec![format!(
                "fleet: {} of {} routers registered, {} messages failed ({})",
                summary.registered,
                summary.routers,
                summary.failed(),
                codes.join(", ")
            )],
            exit: EXIT_FAILED,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn global_options_may_follow_the_words() {
        let words = ["show", "license", "status", "--json", "-s", "r9.json"]
            .map(String::from)
            .to_vec();
        let (words, state, json) = global_options_after(words, "router.json".into(), false);
        assert_eq!(words, ["show", "license", "status"]);
        assert_eq!(state, std::path::PathBuf::from("r9.json"));
        assert!(json);
    }

    #[test]
    fn urls_must_be_https() {
        assert_eq!(check_url("https://h:4443/").unwrap().base, "https://h:4443");
        assert!(check_url("http://h:4443").is_err());
        assert!(check_url("https://").is_err());
        assert!(check_url("https:///SmartTransport").is_err());
    }

    #[test]
    fn a_url_as_ios_is_given_it_picks_the_transport() {
        let url = check_url("https://sat.example/SmartTransport").unwrap();
        assert_eq!(
            url,
            DeviceUrl {
                base: "https://sat.example".into(),
                path: None,
                transport: Some(TransportKind::Smart)
            }
        );
        let url =
            check_url("https://sat.example:4443/Transportgateway/services/DeviceRequestHandler/")
                .unwrap();
        assert_eq!(url.transport, Some(TransportKind::Callhome));
        let endpoint = url.clone().endpoint(None, None, "ca".into()).unwrap();
        assert_eq!(
            endpoint.post_url(),
            "https://sat.example:4443/Transportgateway/services/DeviceRequestHandler"
        );
        let err = url
            .endpoint(Some(TransportKind::Smart), None, "ca".into())
            .unwrap_err();
        assert!(err.contains("contradicts"), "{err}");
        // Any other path is where the messages go, with the chosen transport.
        let endpoint = check_url("https://sat.example/lab/sl")
            .unwrap()
            .endpoint(Some(TransportKind::Callhome), None, "ca".into())
            .unwrap();
        assert_eq!(endpoint.post_url(), "https://sat.example/lab/sl");
        assert_eq!(endpoint.transport, TransportKind::Callhome);
        let endpoint = check_url("https://h:1")
            .unwrap()
            .endpoint(None, None, "ca".into())
            .unwrap();
        assert_eq!(endpoint.post_url(), "https://h:1/SmartTransport");
    }
}
