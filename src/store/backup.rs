//! What backup, restore and the start-up check need from the database.

use super::sql::params;
use super::Db;
use super::StoreError;
use std::path::Path;

/// Writes a consistent copy of the whole database to `dest` (which must not
/// exist). It reads in one transaction, so the server keeps serving.
pub fn copy_to(c: &Db, dest: &Path) -> Result<(), StoreError> {
    let dest = dest
        .to_str()
        .ok_or_else(|| StoreError::Sqlite(rusqlite::Error::InvalidPath(dest.to_path_buf())))?;
    // Every page is read once: through the memory map they would all stay
    // resident in this process (a 213 MB database peaked at 526 MB), and a
    // big page cache would hold them again. Read through a small cache.
    c.sqlite()?.pragma_update(None, "mmap_size", 0)?;
    c.sqlite()?.pragma_update(None, "cache_size", -2048)?;
    c.execute("VACUUM INTO ?1", params![dest])?;
    Ok(())
}

/// `PRAGMA quick_check`: the problems found, empty when the database is sound.
pub fn quick_check(c: &Db) -> Result<Vec<String>, StoreError> {
    let mut stmt = c.prepare_cached("PRAGMA quick_check(20)")?;
    let rows = stmt.query_map((), |r| r.get::<String>(0))?;
    let mut problems = Vec::new();
    for row in rows {
        let row = row?;
        if row != "ok" {
            problems.push(row);
        }
    }
    Ok(problems)
}

/// How far this database got with one sync peer.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PeerSequences {
    pub peer: String,
    /// Highest sequence of a bundle sent to the peer.
    pub sent: Option<i64>,
    /// Highest sequence the peer acknowledged having received.
    pub acknowledged: Option<i64>,
    /// Highest sequence of a bundle received from the peer.
    pub received: Option<i64>,
}

/// The sync sequence numbers per peer (the ledger's high-water marks).
pub fn sequences(c: &Db) -> Result<Vec<PeerSequences>, StoreError> {
    let mut stmt = c.prepare_cached(
        "SELECT peer,
                MAX(CASE WHEN direction = 'sent' THEN sequence END),
                MAX(CASE WHEN direction = 'sent' AND acknowledged_at IS NOT NULL THEN sequence END),
                MAX(CASE WHEN direction = 'received' THEN sequence END)
         FROM sync_bundles GROUP BY peer ORDER BY peer",
    )?;
    let rows = stmt.query_map((), |r| {
        Ok(PeerSequences {
            peer: r.get(0)?,
            sent: r.get(1)?,
            acknowledged: r.get(2)?,
            received: r.get(3)?,
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}
