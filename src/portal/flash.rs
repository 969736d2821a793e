//! Post/redirect/get: a form that succeeded redirects to the page it
//! changed, and its notice waits here, per session, for that page to show
//! it once. A reload then repeats nothing, and a new token's secret is
//! shown once without ever travelling in a cookie or an address.

use std::collections::HashMap;
use std::sync::Mutex;

/// The outcome of a form, shown at the top of the page it led to.
#[derive(Debug, Clone)]
pub struct Notice {
    pub ok: bool,
    pub text: String,
    /// Shown in a `<code>` after the text (e.g. a new token).
    pub secret: Option<String>,
    /// A download the outcome offers: (href, label).
    pub link: Option<(String, String)>,
}

impl Notice {
    pub fn ok(text: impl Into<String>) -> Self {
        Self {
            ok: true,
            text: text.into(),
            secret: None,
            link: None,
        }
    }

    /// A refusal as a sentence: the service's messages start in lower
    /// case (they are built to follow a field name or a command).
    pub fn error(text: impl Into<String>) -> Self {
        let text = for_the_web(&text.into());
        let mut chars = text.chars();
        let text = match chars.next() {
            Some(first) => first.to_uppercase().chain(chars).collect(),
            None => text,
        };
        Self {
            ok: false,
            text,
            secret: None,
            link: None,
        }
    }
}

/// A refusal without the pointers to CLI listings the service adds for the
/// command line ("no report 7; see `satellite report list`"): in the portal
/// the listing is a click away.
pub fn for_the_web(text: &str) -> String {
    for marker in ["; see `satellite ", ", see `satellite "] {
        if let Some(start) = text.rfind(marker) {
            let hint = &text[start + marker.len()..];
            // Only a pointer that ends the message, and holds no other quote.
            if hint.ends_with('`') && hint.matches('`').count() == 1 {
                return text[..start].to_string();
            }
        }
    }
    text.to_string()
}

/// How long a notice waits for its page.
const KEEP_SECONDS: i64 = 300;
/// At most this many waiting notices (one per session at a time).
const MAX_WAITING: usize = 10_000;

#[derive(Default)]
pub struct Flash {
    waiting: Mutex<HashMap<String, (Notice, i64)>>,
}

impl Flash {
    pub fn put(&self, session: &str, notice: Notice, now: i64) {
        let Ok(mut waiting) = self.waiting.lock() else {
            return;
        };
        if waiting.len() >= MAX_WAITING {
            waiting.retain(|_, (_, at)| now - *at < KEEP_SECONDS);
        }
        if waiting.len() < MAX_WAITING {
            waiting.insert(session.to_string(), (notice, now));
        }
    }

    pub fn take(&self, session: &str, now: i64) -> Option<Notice> {
        let (notice, at) = self.waiting.lock().ok()?.remove(session)?;
        (now - at < KEEP_SECONDS).then_some(notice)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_notice_is_shown_once_to_its_own_session_and_not_when_stale() {
        let flash = Flash::default();
        flash.put("a", Notice::ok("done"), 100);
        assert!(flash.take("b", 101).is_none());
        assert_eq!(
            flash.take("a", 101).map(|n| n.text).as_deref(),
            Some("done")
        );
        assert!(flash.take("a", 102).is_none(), "once");
        flash.put("a", Notice::ok("late"), 100);
        assert!(flash.take("a", 100 + KEEP_SECONDS).is_none());
    }
}
