//! `satellite-router -s r1.json run`: the agent as a long-lived process,
//! firing its timers by itself as a router's Smart Agent does (DESIGN §11).
//!
//! Each round reads the state file afresh, so commands typed meanwhile are
//! seen, catches up with what is due and writes the file back only when
//! something changed. Between rounds it sleeps until the next timer, at
//! most `--interval`; time is read from the injected clock only.

use super::agent::Agent;
use super::client::HttpLink;
use super::state::State;
use super::{timers, times};
use crate::clock::Clock;
use std::path::Path;
use std::time::Duration;

/// One round at the clock's `now`: what the agent logged, and the
/// problems (stderr). An error is a state that cannot be read or saved.
pub fn round(path: &Path, clock: &Clock) -> Result<(Vec<String>, Vec<String>), String> {
    let now = clock.now();
    times::check(now).map_err(|e| format!("the current time: {e}"))?;
    let mut state = State::load(path).map_err(|e| e.to_string())?;
    let before = state.clone();
    timers::settle(&mut state, now);
    let mut link = HttpLink::new(state.endpoint.clone(), state.udi.clone(), clock.clone());
    let mut save = |s: &State| s.save(path).map_err(|e| e.to_string());
    let mut agent = Agent::new(&mut state, &mut link, now).with_checkpoint(&mut save);
    let caught_up = timers::catch_up(&mut agent);
    let lines = std::mem::take(&mut agent.lines);
    let mut problems = std::mem::take(&mut agent.warnings);
    if let Err(e) = caught_up {
        problems.push(format!("automatic {e}"));
    }
    timers::settle(&mut state, now);
    if state != before {
        state.save(path).map_err(|e| e.to_string())?;
    }
    Ok((lines, problems))
}

/// How long to sleep before the next round: until the next timer, within
/// one second and `interval`.
pub fn pause(path: &Path, clock: &Clock, interval: Duration) -> Duration {
    let now = clock.now();
    let next = State::load(path)
        .ok()
        .and_then(|s| timers::next_due(&s, now));
    let until = next
        .map(|t| (t - now).whole_milliseconds().max(0))
        .and_then(|ms| u64::try_from(ms).ok())
        .map(Duration::from_millis)
        .unwrap_or(interval);
    until.clamp(Duration::from_secs(1), interval.max(Duration::from_secs(1)))
}

/// Runs rounds until the process is stopped (SIGTERM, Ctrl-C: the state
/// file is written atomically, so stopping mid-round loses nothing).
/// Returns only when the state cannot be read or written.
pub fn run(path: &Path, clock: &Clock, interval: Duration) -> String {
    let prefix = || super::show::date(clock.now());
    println!(
        "{}: satellite-router agent running for {} (Ctrl-C stops it)",
        prefix(),
        path.display()
    );
    loop {
        match round(path, clock) {
            Ok((lines, problems)) => {
                for line in lines {
                    println!("{}: {line}", prefix());
                }
                for problem in problems {
                    eprintln!("{}: {problem}", prefix());
                }
            }
            Err(e) => return format!("run: {e}"),
        }
        std::thread::sleep(pause(path, clock, interval));
    }
}
