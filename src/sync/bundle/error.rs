//! Why a bundle is refused: the rule it broke, then the details.

/// The rule a bundle broke. Each is named in the refusal so an operator can
/// tell a wrong stick from a forged one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Rule {
    NotABundle,
    UnsafeName,
    TooLarge,
    MissingEntry,
    ExtraEntry,
    HashMismatch,
    BadManifest,
    BadSignature,
    UntrustedSigner,
    WrongRecipient,
    Expired,
    /// Sequence not greater than the last applied from that sender (a
    /// replayed or rolled-back bundle). Checked by the caller, which holds
    /// the sequence numbers; see `BundleError::replay`.
    Replay,
    /// A payload file the manifest lists is not what its reader expects
    /// (`Opened::json`).
    BadPayload,
}

impl Rule {
    pub fn as_str(self) -> &'static str {
        match self {
            Rule::NotABundle => "not a bundle",
            Rule::UnsafeName => "unsafe name",
            Rule::TooLarge => "too large",
            Rule::MissingEntry => "missing entry",
            Rule::ExtraEntry => "extra entry",
            Rule::HashMismatch => "hash mismatch",
            Rule::BadManifest => "bad manifest",
            Rule::BadSignature => "bad signature",
            Rule::UntrustedSigner => "untrusted signer",
            Rule::WrongRecipient => "wrong recipient",
            Rule::Expired => "expired",
            Rule::Replay => "replay",
            Rule::BadPayload => "bad payload",
        }
    }
}

impl std::fmt::Display for Rule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, thiserror::Error)]
#[error("{rule}: {detail}")]
pub struct BundleError {
    pub rule: Rule,
    pub detail: String,
}

impl BundleError {
    pub fn new(rule: Rule, detail: impl Into<String>) -> Self {
        Self {
            rule,
            detail: detail.into(),
        }
    }

    /// The refusal for a sequence number at or below the last one applied.
    pub fn replay(from: &str, sequence: u64, last_applied: u64) -> Self {
        Self::new(
            Rule::Replay,
            format!(
                "sequence {sequence} from {from} is not greater than {last_applied}, the last \
                 applied (an old bundle imported again, or a rollback); nothing was changed"
            ),
        )
    }
}
