//! Which entry names a bundle may carry.
//!
//! Bundles are unpacked by operators with ordinary tools as well as by us,
//! so a name must be harmless everywhere: relative, no way up, no Windows
//! separators or drive letters, nothing a terminal would interpret.

/// Longest accepted entry name, in bytes.
pub const MAX_NAME_BYTES: usize = 200;

/// Why `name` is not an acceptable entry name, if it is not.
pub fn unsafe_name(name: &str) -> Option<&'static str> {
    if name.is_empty() {
        return Some("empty name");
    }
    if name.len() > MAX_NAME_BYTES {
        return Some("name longer than 200 bytes");
    }
    if name.starts_with('/') {
        return Some("absolute path");
    }
    if name.contains('\\') {
        return Some("backslash in name");
    }
    if name.contains(':') {
        return Some("colon in name (drive letter or stream)");
    }
    if name.chars().any(char::is_control) {
        return Some("control character in name");
    }
    if name.ends_with('/') {
        return Some("directory entry");
    }
    for segment in name.split('/') {
        match segment {
            "" => return Some("empty path segment"),
            "." | ".." => return Some("'.' or '..' path segment"),
            _ => {}
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_relative_names_pass_and_tricks_do_not() {
        for ok in ["usage.json", "reports/2026-11.json", "a.b-c_d.json"] {
            assert_eq!(unsafe_name(ok), None, "{ok}");
        }
        for bad in [
            "",
            "/abs",
            "../x",
            "a/../b",
            "a/./b",
            "a\\b",
            "C:x",
            "dir/",
            "a//b",
            "a\nb",
            &"x".repeat(201),
        ] {
            assert!(unsafe_name(bad).is_some(), "{bad:?}");
        }
    }
}
