//! A look at the raw text before the YAML parser: refuses anchors and
//! aliases (expansion turns a small file into gigabytes) and finds duplicate
//! keys in block mappings with their line (serde names no line for those).
//!
//! It reads YAML only as far as a configuration needs: quoted strings,
//! comments, block scalars and flow collections are stepped over; whatever
//! it does not understand is left to serde_yaml, which parses the file next.

use std::collections::BTreeMap;

/// One open block mapping.
struct Frame {
    indent: usize,
    path: String,
    /// Key -> the line it was first set on.
    keys: BTreeMap<String, usize>,
    last_key: Option<String>,
}

/// `Err((key, reason))` for the first anchor, alias or duplicate key.
pub fn scan(text: &str) -> Result<(), (String, String)> {
    let mut frames: Vec<Frame> = Vec::new();
    let mut block_scalar_above: Option<usize> = None;
    for (index, line) in text.lines().enumerate() {
        let number = index + 1;
        let indent = line.len() - line.trim_start_matches(' ').len();
        let body = line[indent..].trim_end();
        if let Some(at) = block_scalar_above {
            if body.is_empty() || indent > at {
                continue;
            }
            block_scalar_above = None;
        }
        if body.is_empty() || body.starts_with('#') {
            continue;
        }
        check_nodes(body)
            .map_err(|reason| ("-".to_string(), format!("line {number}: {reason}")))?;
        let (indent, entry, new_item) = match body.strip_prefix('-') {
            Some(rest) if rest.is_empty() || rest.starts_with(' ') => {
                let trimmed = rest.trim_start();
                (indent + 1 + (rest.len() - trimmed.len()), trimmed, true)
            }
            _ => (indent, body, false),
        };
        if new_item {
            // Each list item is a mapping of its own.
            frames.retain(|f| f.indent < indent);
        }
        let Some((key, value)) = block_key(entry) else {
            continue;
        };
        frames.retain(|f| f.indent <= indent);
        if frames.last().is_none_or(|f| f.indent < indent) {
            let path = frames
                .last()
                .and_then(|f| f.last_key.clone())
                .unwrap_or_default();
            frames.push(Frame {
                indent,
                path,
                keys: BTreeMap::new(),
                last_key: None,
            });
        }
        if let Some(frame) = frames.last_mut() {
            let path = if frame.path.is_empty() {
                key.to_string()
            } else {
                format!("{}.{key}", frame.path)
            };
            if let Some(first) = frame.keys.insert(key.to_string(), number) {
                return Err((
                    path,
                    format!("line {number}: duplicate key (first set on line {first}); keep one"),
                ));
            }
            frame.last_key = Some(path);
        }
        if value.starts_with('|') || value.starts_with('>') {
            block_scalar_above = Some(indent);
        }
    }
    Ok(())
}

/// `key: value` or `key:` at the start of a block line; `None` for anything
/// else (a scalar, a flow collection, a quoted or complex key).
fn block_key(entry: &str) -> Option<(&str, &str)> {
    let end = entry.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '-'))?;
    let (key, rest) = entry.split_at(end);
    if key.is_empty() {
        return None;
    }
    let value = rest.strip_prefix(':')?;
    if !(value.is_empty() || value.starts_with(' ')) {
        return None;
    }
    Some((key, value.trim_start()))
}

/// Finds `&anchor` or `*alias` where a YAML node starts.
fn check_nodes(body: &str) -> Result<(), String> {
    let chars: Vec<char> = body.chars().collect();
    let mut flow_depth = 0usize;
    let mut node_start = true;
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let next = chars.get(i + 1).copied();
        if node_start {
            match c {
                ' ' => {
                    i += 1;
                    continue;
                }
                '&' | '*' if next.is_some_and(|n| !n.is_whitespace()) => {
                    let what = if c == '&' { "anchor" } else { "alias" };
                    return Err(format!(
                        "YAML {what}s ({c}name) are not accepted in a configuration; write the value out (quote it if it starts with {c})"
                    ));
                }
                '"' | '\'' => {
                    i = skip_quoted(&chars, i);
                    node_start = false;
                    continue;
                }
                '-' | '?' if next.is_none_or(|n| n == ' ') => {
                    i += 1;
                    continue;
                }
                _ => node_start = false,
            }
        }
        match c {
            '#' if i == 0 || chars[i - 1] == ' ' => return Ok(()),
            ':' if next.is_none_or(|n| n == ' ') || flow_depth > 0 => node_start = true,
            '[' | '{' => {
                flow_depth += 1;
                node_start = true;
            }
            ']' | '}' => flow_depth = flow_depth.saturating_sub(1),
            ',' if flow_depth > 0 => node_start = true,
            _ => {}
        }
        i += 1;
    }
    Ok(())
}

/// The index just past the quoted string that starts at `start`.
fn skip_quoted(chars: &[char], start: usize) -> usize {
    let quote = chars[start];
    let mut i = start + 1;
    while i < chars.len() {
        match chars[i] {
            '\\' if quote == '"' => i += 2,
            // '' is an escaped quote inside single quotes.
            '\'' if quote == '\'' && chars.get(i + 1) == Some(&'\'') => i += 2,
            c if c == quote => return i + 1,
            _ => i += 1,
        }
    }
    i
}

#[cfg(test)]
mod tests {
    use super::scan;

    #[test]
    fn aliases_and_anchors_are_refused() {
        let bomb = "a: &a [x, x]\nb: &b [*a, *a]\nc: [*b, *b]\n";
        let err = scan(bomb).unwrap_err();
        assert!(
            err.1.contains("line 1") && err.1.contains("anchor"),
            "{err:?}"
        );
        let err = scan("name: *x\n").unwrap_err();
        assert!(err.1.contains("alias"), "{err:?}");
        let err = scan("device: { hostnames: [a, *h] }\n").unwrap_err();
        assert!(err.1.contains("alias"), "{err:?}");
    }

    #[test]
    fn cron_stars_and_quoted_text_are_not_aliases() {
        let ok = "sync:\n  schedule: 0 0 2 * * *\n  export_schedule: \"0 0 3 1 * *\"\n\
                  name: 'sat *1 &x'  # a *comment\nreports: { schedule: '0 0 6 1 * *' }\n\
                  call_home:\n  profiles:\n    - name: a\n      to: [x@y.z]\n    - name: b\n";
        assert_eq!(scan(ok), Ok(()));
    }

    #[test]
    fn duplicate_keys_are_named_with_their_line() {
        let err = scan("name: a\naccount: b\nname: c\n").unwrap_err();
        assert_eq!(err.0, "name");
        assert!(
            err.1.contains("line 3") && err.1.contains("line 1"),
            "{err:?}"
        );
        let err = scan("log:\n  level: info\n  format: text\n  level: debug\n").unwrap_err();
        assert_eq!(err.0, "log.level");
        assert!(err.1.contains("line 4"), "{err:?}");
        // The same key in two list items, or under two parents, is fine.
        assert_eq!(
            scan("a:\n  x: 1\nb:\n  x: 2\nl:\n  - name: p\n    url: u\n  - name: q\n"),
            Ok(())
        );
    }
}
