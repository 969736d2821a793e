//! Bundles on disk: names that sort by time and say what they are, atomic
//! writes into the export folder, and the import folder's sorting into
//! `applied/` and `rejected/` (with the reason beside the file).

use super::SyncError;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

pub const APPLIED: &str = "applied";
pub const REJECTED: &str = "rejected";

/// `20261129T124500Z-usage-site-a-to-cloud-000007.zip`: sorts by time, and a
/// person reading the stick sees what each file is.
pub fn bundle_file_name(now: i64, kind: &str, from: &str, to: &str, sequence: u64) -> String {
    let when = time::OffsetDateTime::from_unix_timestamp(now)
        .ok()
        .and_then(|t| {
            t.format(time::macros::format_description!(
                "[year][month][day]T[hour][minute][second]Z"
            ))
            .ok()
        })
        .unwrap_or_else(|| "00000000T000000Z".into());
    format!(
        "{when}-{kind}-{}-to-{}-{sequence:06}.zip",
        file_word(from),
        file_word(to)
    )
}

/// A name made safe for a file name on any stick.
fn file_word(text: &str) -> String {
    let word: String = text
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c
            } else {
                '_'
            }
        })
        .take(40)
        .collect();
    if word.is_empty() {
        "unnamed".into()
    } else {
        word
    }
}

/// Writes a bundle so that no reader ever sees half of it: a hidden `.part`
/// file, fsync, rename, fsync of the folder.
pub fn write_atomically(dir: &Path, name: &str, bytes: &[u8]) -> Result<PathBuf, SyncError> {
    write_part(dir, name, bytes)?;
    publish(dir, name)
}

fn part_path(dir: &Path, name: &str) -> PathBuf {
    dir.join(format!(".{name}.part"))
}

/// The first half of [`write_atomically`]: the bytes on disk (synced) under
/// a hidden name nothing picks up.
pub fn write_part(dir: &Path, name: &str, bytes: &[u8]) -> Result<(), SyncError> {
    let fail = |path: &Path, e: std::io::Error| SyncError::File {
        path: path.display().to_string(),
        reason: e.to_string(),
    };
    std::fs::create_dir_all(dir).map_err(|e| fail(dir, e))?;
    let part = part_path(dir, name);
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(&part)
        .map_err(|e| fail(&part, e))?;
    file.write_all(bytes).map_err(|e| fail(&part, e))?;
    file.sync_all().map_err(|e| fail(&part, e))?;
    Ok(())
}

/// Removes a part written by [`write_part`] that will not be published.
pub fn discard_part(dir: &Path, name: &str) {
    let _ = std::fs::remove_file(part_path(dir, name));
}

/// The second half: the part renamed to its name, the folder synced.
pub fn publish(dir: &Path, name: &str) -> Result<PathBuf, SyncError> {
    let target = dir.join(name);
    std::fs::rename(part_path(dir, name), &target).map_err(|e| SyncError::File {
        path: target.display().to_string(),
        reason: e.to_string(),
    })?;
    if let Ok(folder) = std::fs::File::open(dir) {
        let _ = folder.sync_all();
    }
    Ok(target)
}

/// A file in the import folder that has stopped changing, so a copy still
/// in progress is never picked up.
#[derive(Debug, Default)]
pub struct Settled {
    seen: std::collections::HashMap<PathBuf, (u64, Option<SystemTime>, std::time::Instant)>,
}

/// How long a file's size and time must stay the same before it is read.
pub const SETTLE: Duration = Duration::from_secs(2);

impl Settled {
    /// The files ready to import now, oldest name first.
    pub fn ready(&mut self, dir: &Path) -> Vec<PathBuf> {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return Vec::new();
        };
        let mut ready = Vec::new();
        let mut present = std::collections::HashSet::new();
        for entry in entries.flatten() {
            let path = entry.path();
            let name = entry.file_name();
            let name = name.to_string_lossy();
            // Hidden files are copies in progress (ours and most tools').
            if name.starts_with('.') || name.ends_with(".part") || name.ends_with(".tmp") {
                continue;
            }
            let Ok(meta) = std::fs::symlink_metadata(&path) else {
                continue;
            };
            if meta.is_dir() {
                continue;
            }
            present.insert(path.clone());
            let signature = (meta.len(), meta.modified().ok());
            let now = std::time::Instant::now();
            match self.seen.get(&path) {
                Some((len, modified, since)) if (*len, *modified) == signature => {
                    if now.duration_since(*since) >= SETTLE {
                        ready.push(path);
                    }
                }
                _ => {
                    self.seen.insert(path, (signature.0, signature.1, now));
                }
            }
        }
        self.seen.retain(|p, _| present.contains(p));
        ready.sort();
        ready
    }

    pub fn forget(&mut self, path: &Path) {
        self.seen.remove(path);
    }
}

/// Moves a handled file to `applied/` or `rejected/` (never overwriting an
/// earlier one), with the reason of a refusal in `<file>.reason.txt`.
pub fn file_away(path: &Path, applied: bool, reason: Option<&str>) -> std::io::Result<PathBuf> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let target_dir = dir.join(if applied { APPLIED } else { REJECTED });
    std::fs::create_dir_all(&target_dir)?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "bundle".into());
    let mut target = target_dir.join(&name);
    let mut n = 1;
    while target.exists() {
        target = target_dir.join(format!("{name}.{n}"));
        n += 1;
    }
    std::fs::rename(path, &target)?;
    if let Some(reason) = reason {
        let note = PathBuf::from(format!("{}.reason.txt", target.display()));
        std::fs::write(note, format!("{reason}\n"))?;
    }
    Ok(target)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_sort_by_time_and_are_safe() {
        let a = bundle_file_name(1_700_000_000, "usage", "site a/../x", "cloud", 7);
        let b = bundle_file_name(1_700_000_060, "usage", "site a/../x", "cloud", 8);
        assert!(a < b);
        assert_eq!(a, "20231114T221320Z-usage-site_a____x-to-cloud-000007.zip");
    }

    #[test]
    fn a_growing_file_is_not_ready_until_it_settles() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut settled = Settled::default();
        let file = dir.path().join("b.zip");
        std::fs::write(&file, b"part").expect("write");
        std::fs::write(dir.path().join(".hidden.zip.part"), b"x").expect("write");
        assert!(settled.ready(dir.path()).is_empty());
        std::fs::write(&file, b"part and more").expect("grow");
        assert!(settled.ready(dir.path()).is_empty());
        std::thread::sleep(SETTLE + Duration::from_millis(100));
        assert_eq!(settled.ready(dir.path()), vec![file.clone()]);
        let moved = file_away(&file, false, Some("bad signature: x")).expect("move");
        assert!(moved.starts_with(dir.path().join(REJECTED)));
        let reason =
            std::fs::read_to_string(format!("{}.reason.txt", moved.display())).expect("reason");
        assert!(reason.contains("bad signature"));
    }
}
