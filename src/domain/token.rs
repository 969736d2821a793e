//! Registration tokens: terms, secrets and the rules that decide if one may
//! still register a device.

use base64::Engine;

pub const DEFAULT_DAYS: u32 = 30;
pub const MIN_DAYS: u32 = 1;
pub const MAX_DAYS: u32 = 365;
/// The longest token description, in characters.
pub const MAX_DESCRIPTION: usize = 512;
/// Characters of the secret kept in clear to find the token and to show it.
pub const PREFIX_LEN: usize = 10;
/// Length of a generated secret: 48 random bytes in unpadded base64url.
pub const SECRET_LEN: usize = 64;

/// What an operator asks for when creating a token.
#[derive(Debug, Clone)]
pub struct TokenTerms {
    pub days: u32,
    pub max_uses: Option<u32>,
    pub description: String,
    pub export_controlled: bool,
}

impl TokenTerms {
    pub fn check(&self) -> Result<(), String> {
        if !(MIN_DAYS..=MAX_DAYS).contains(&self.days) {
            return Err(format!(
                "a token is valid for {MIN_DAYS} to {MAX_DAYS} days, not {}",
                self.days
            ));
        }
        if self.max_uses == Some(0) {
            return Err("max uses must be at least 1 (leave it out for no limit)".into());
        }
        if self.description.chars().count() > MAX_DESCRIPTION {
            return Err(format!(
                "the description is longer than {MAX_DESCRIPTION} characters"
            ));
        }
        // Bidirectional overrides would make a description read as
        // something else ("gnp.exe" shown as "exe.png").
        let bidi = |c: char| matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}');
        if self.description.chars().any(|c| c.is_control() || bidi(c)) {
            return Err(
                "the description may not hold control characters (line breaks, NUL, text-direction overrides, ...)".into(),
            );
        }
        Ok(())
    }
}

/// A token secret as handed to the operator. Only its hash is stored.
pub struct TokenSecret(String);

impl TokenSecret {
    pub fn generate() -> Result<Self, openssl::error::ErrorStack> {
        let mut bytes = [0u8; 48];
        crate::pki::fill_random(&mut bytes)?;
        Ok(Self(
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes),
        ))
    }

    pub fn from_presented(text: &str) -> Self {
        Self(text.trim().to_string())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The clear part used to find the token; also what listings show.
    pub fn prefix(&self) -> Option<&str> {
        self.0
            .get(..PREFIX_LEN)
            .filter(|_| self.0.len() > PREFIX_LEN)
    }

    pub fn hash(&self) -> [u8; 32] {
        crate::pki::sha256(self.0.as_bytes())
    }

    /// Compares against a stored hash in constant time.
    pub fn matches(&self, stored_hash: &[u8]) -> bool {
        let hash = self.hash();
        crate::pki::same_secret(&hash, stored_hash)
    }
}

impl std::fmt::Debug for TokenSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Secrets never reach a log line.
        write!(f, "TokenSecret({}…)", self.prefix().unwrap_or(""))
    }
}

/// Why a token cannot register a device: the device API's 401 codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenProblem {
    Unknown,
    Expired,
    Revoked,
    Exhausted,
}

/// The state of a stored token that decides whether it may register one more device.
#[derive(Debug, Clone)]
pub struct TokenUse {
    pub expires_at: i64,
    pub revoked_at: Option<i64>,
    pub max_uses: Option<u32>,
    pub uses: u32,
}

impl TokenUse {
    /// Revocation wins over expiry, expiry over exhaustion: the most
    /// permanent reason is the one worth telling.
    pub fn check(&self, now: i64) -> Result<(), TokenProblem> {
        if self.revoked_at.is_some() {
            return Err(TokenProblem::Revoked);
        }
        if now >= self.expires_at {
            return Err(TokenProblem::Expired);
        }
        if self.max_uses.is_some_and(|max| self.uses >= max) {
            return Err(TokenProblem::Exhausted);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn terms_are_bounded() {
        let terms = |days, max_uses| TokenTerms {
            days,
            max_uses,
            description: String::new(),
            export_controlled: true,
        };
        assert!(terms(1, None).check().is_ok());
        assert!(terms(365, Some(1)).check().is_ok());
        assert!(terms(0, None).check().is_err());
        assert!(terms(366, None).check().is_err());
        assert!(terms(30, Some(0)).check().is_err());
        let described = |description: &str| TokenTerms {
            description: description.into(),
            ..terms(30, None)
        };
        assert!(described("lab routers, floor 2").check().is_ok());
        assert!(
            described("\u{202e}gnp.exe").check().is_err(),
            "a text-direction override"
        );
        assert!(described("two\nlines").check().is_err());
    }

    #[test]
    fn secrets_match_only_themselves() {
        let secret = TokenSecret::generate().expect("rand");
        let stored = secret.hash();
        assert!(secret.matches(&stored));
        assert!(!TokenSecret::from_presented("x").matches(&stored));
        assert_eq!(secret.prefix().map(str::len), Some(PREFIX_LEN));
        assert_eq!(secret.as_str().len(), SECRET_LEN);
        assert!(!format!("{secret:?}").contains(secret.as_str()));
    }

    #[test]
    fn problems_in_order_of_permanence() {
        let state = TokenUse {
            expires_at: 100,
            revoked_at: None,
            max_uses: Some(2),
            uses: 2,
        };
        assert_eq!(state.check(50), Err(TokenProblem::Exhausted));
        assert_eq!(state.check(100), Err(TokenProblem::Expired));
        let revoked = TokenUse {
            revoked_at: Some(1),
            ..state
        };
        assert_eq!(revoked.check(50), Err(TokenProblem::Revoked));
    }

    #[test]
    fn a_description_with_control_characters_is_refused() {
        let terms = TokenTerms {
            days: 30,
            max_uses: None,
            description: "lab\nrack 4".into(),
            export_controlled: true,
        };
        assert!(terms.check().is_err_and(|e| e.contains("control")));
    }
}
