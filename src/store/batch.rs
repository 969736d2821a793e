//! Writes that many jobs of one group commit make alike: a router's usage,
//! its authorization, its answer. SQLite runs each as it comes (a statement
//! there is a function call); PostgreSQL keeps them and sends each kind as
//! one statement over arrays, when something else is sent or at the commit.
//! There, every statement costs a message each way, a portal and, for a
//! usage row, a trigger, which made the server's CPU the ceiling of the
//! device API.
//!
//! A row is kept only while nothing reads what it writes: any other
//! statement on the session sends the rows kept before it, and two rows
//! that name the same thing (`key`) never share a batch, so no write is
//! reordered past another of the same thing.

use super::sql::{SqlError, SqlResult, Value};
use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use tokio_postgres::types::ToSql;

/// The type of one parameter, as the array statement casts it.
pub(in crate::store) enum Column {
    Int,
    Text,
}

/// A write that may wait for others of its kind.
pub(in crate::store) struct Batched {
    /// The statement for one row, in store SQL (`?N`): SQLite's, and
    /// PostgreSQL's outside a transaction.
    pub one: &'static str,
    /// PostgreSQL's statement for many rows: `$N` is the array of every
    /// row's N-th parameter, cast in the SQL (`$1::bigint[]`). A kind
    /// that is claimed (`Db::claim`) returns the key of every row written.
    pub many: &'static str,
    pub columns: &'static [Column],
    /// What a row writes: rows of one `domain` whose first `key`
    /// parameters are equal write the same thing.
    pub domain: &'static str,
    pub key: usize,
}

/// Whether a row written only if its key was new turned out to be there
/// already: known once its transaction is sent, which is before the
/// commit's answer.
#[derive(Clone, Default, Debug)]
pub struct Claim(Arc<AtomicBool>);

impl Claim {
    /// True if the row was there already (and so nothing of the job that
    /// claimed it was written).
    pub fn was_taken(&self) -> bool {
        self.0.load(Ordering::Acquire)
    }

    fn taken(&self) {
        self.0.store(true, Ordering::Release);
    }
}

/// A parameter kept until its row is sent.
#[derive(Clone, PartialEq, Eq, Hash, Debug)]
pub(in crate::store) enum Owned {
    Null,
    Integer(i64),
    Text(String),
    Blob(Vec<u8>),
    /// A real, by its bits (kept rows are compared by key).
    Real(u64),
}

impl Owned {
    pub(in crate::store) fn from(value: &Value<'_>) -> Self {
        match *value {
            Value::Null => Self::Null,
            Value::Integer(i) => Self::Integer(i),
            Value::Real(f) => Self::Real(f.to_bits()),
            Value::Text(s) => Self::Text(s.to_string()),
            Value::Blob(b) => Self::Blob(b.to_vec()),
        }
    }
}

/// One kept row.
pub(in crate::store) struct Row {
    pub kind: &'static Batched,
    /// The writer's job it belongs to (0 outside the writer's jobs).
    pub job: u64,
    pub values: Vec<Owned>,
    pub claim: Option<Claim>,
}

impl Row {
    fn key(&self) -> (&'static str, Vec<Owned>) {
        let n = self.kind.key.min(self.values.len());
        (self.kind.domain, self.values[..n].to_vec())
    }
}

/// The rows kept on one session, in the order they came.
#[derive(Default)]
pub(in crate::store) struct Kept {
    rows: Vec<Row>,
    keys: HashSet<(&'static str, Vec<Owned>)>,
}

impl Kept {
    pub(in crate::store) fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// Whether a row like `row` is kept already (it would write the same
    /// thing: the kept one must be sent first).
    pub(in crate::store) fn holds(&self, row: &Row) -> bool {
        self.keys.contains(&row.key())
    }

    pub(in crate::store) fn keep(&mut self, row: Row) {
        self.keys.insert(row.key());
        self.rows.push(row);
    }

    /// Takes the rows `which` picks out, in order.
    pub(in crate::store) fn take(&mut self, which: impl Fn(&Row) -> bool) -> Vec<Row> {
        let (taken, kept): (Vec<Row>, Vec<Row>) =
            std::mem::take(&mut self.rows).into_iter().partition(which);
        self.rows = kept;
        for row in &taken {
            self.keys.remove(&row.key());
        }
        taken
    }

    pub(in crate::store) fn forget(&mut self) {
        self.rows.clear();
        self.keys.clear();
    }
}

/// Rows grouped by kind, each kind in the order it first came.
pub(in crate::store) fn by_kind(rows: Vec<Row>) -> Vec<Vec<Row>> {
    let mut kinds: Vec<Vec<Row>> = Vec::new();
    for row in rows {
        match kinds.iter_mut().find(|k| std::ptr::eq(k[0].kind, row.kind)) {
            Some(kind) => kind.push(row),
            None => kinds.push(vec![row]),
        }
    }
    kinds
}

/// Marks the claims among `rows` whose key is not in `written`, and
/// answers the jobs they belong to: the rest of those jobs' rows must not
/// be written.
pub(in crate::store) fn settle_claims(rows: &[Row], written: &HashSet<Vec<Owned>>) -> HashSet<u64> {
    let mut lost = HashSet::new();
    for row in rows {
        if let Some(claim) = &row.claim {
            if !written.contains(&row.key().1) {
                claim.taken();
                lost.insert(row.job);
            }
        }
    }
    lost
}

// ------------------------------------------------ PostgreSQL parameters

/// Each column of a kind's rows as one array parameter.
pub(in crate::store) fn arrays(rows: &[Row]) -> SqlResult<Vec<Box<dyn ToSql + Sync + Send>>> {
    let kind = rows[0].kind;
    kind.columns
        .iter()
        .enumerate()
        .map(|(i, column)| {
            let mismatch = |what: &str| SqlError::Column {
                column: i,
                reason: format!("{what} in a kept row of `{}`", kind.many),
            };
            Ok(match column {
                Column::Int => Box::new(
                    rows.iter()
                        .map(|row| match row.values.get(i) {
                            Some(Owned::Integer(n)) => Ok(Some(*n)),
                            Some(Owned::Null) | None => Ok(None),
                            Some(_) => Err(mismatch("not an integer")),
                        })
                        .collect::<SqlResult<Vec<Option<i64>>>>()?,
                ) as Box<dyn ToSql + Sync + Send>,
                Column::Text => Box::new(
                    rows.iter()
                        .map(|row| match row.values.get(i) {
                            Some(Owned::Text(t)) => Ok(Some(t.clone())),
                            Some(Owned::Null) | None => Ok(None),
                            Some(_) => Err(mismatch("not text")),
                        })
                        .collect::<SqlResult<Vec<Option<String>>>>()?,
                ),
            })
        })
        .collect()
}

pub(in crate::store) fn array_params(
    arrays: &[Box<dyn ToSql + Sync + Send>],
) -> Vec<&(dyn ToSql + Sync)> {
    arrays
        .iter()
        .map(|a| a.as_ref() as &(dyn ToSql + Sync))
        .collect()
}

/// The key of a row a claimed kind's statement returns as written.
pub(in crate::store) fn written_key(
    kind: &Batched,
    row: &tokio_postgres::Row,
) -> SqlResult<Vec<Owned>> {
    kind.columns[..kind.key]
        .iter()
        .enumerate()
        .map(|(i, column)| {
            Ok(match column {
                Column::Int => Owned::Integer(row.try_get(i).map_err(SqlError::from)?),
                Column::Text => Owned::Text(row.try_get(i).map_err(SqlError::from)?),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    static USAGE: Batched = Batched {
        one: "",
        many: "",
        columns: &[Column::Int, Column::Text, Column::Int],
        domain: "usage",
        key: 2,
    };
    static REMOVAL: Batched = Batched {
        one: "",
        many: "",
        columns: &[Column::Int, Column::Text],
        domain: "usage",
        key: 2,
    };

    fn row(kind: &'static Batched, job: u64, values: &[Value<'_>]) -> Row {
        Row {
            kind,
            job,
            values: values.iter().map(Owned::from).collect(),
            claim: None,
        }
    }

    #[test]
    fn rows_naming_the_same_thing_in_one_domain_do_not_share_a_batch() {
        let mut kept = Kept::default();
        kept.keep(row(
            &USAGE,
            1,
            &[Value::Integer(7), Value::Text("A"), Value::Integer(3)],
        ));
        // Another tag of the same instance, another instance: both fine.
        assert!(!kept.holds(&row(
            &USAGE,
            2,
            &[Value::Integer(7), Value::Text("B"), Value::Integer(1)]
        )));
        assert!(!kept.holds(&row(&REMOVAL, 2, &[Value::Integer(8), Value::Text("A")])));
        // The same usage row, by another kind of the domain: not while kept.
        assert!(kept.holds(&row(&REMOVAL, 2, &[Value::Integer(7), Value::Text("A")])));
        let taken = kept.take(|_| true);
        assert_eq!(taken.len(), 1);
        assert!(kept.is_empty());
        assert!(!kept.holds(&row(&REMOVAL, 2, &[Value::Integer(7), Value::Text("A")])));
    }

    #[test]
    fn a_claim_not_written_marks_its_job_and_only_its_job() {
        let claimed = |job, id: &str| {
            let mut r = row(&USAGE, job, &[Value::Integer(1), Value::Text(id)]);
            r.claim = Some(Claim::default());
            r
        };
        let rows = vec![claimed(1, "m1"), claimed(2, "m2"), row(&USAGE, 3, &[])];
        let written: HashSet<Vec<Owned>> =
            [vec![Owned::Integer(1), Owned::Text("m1".into())]].into();
        let lost = settle_claims(&rows, &written);
        assert_eq!(lost, [2].into());
        assert!(!rows[0].claim.as_ref().is_some_and(Claim::was_taken));
        assert!(rows[1].claim.as_ref().is_some_and(Claim::was_taken));
    }

    #[test]
    fn kinds_keep_the_order_they_first_came_in() {
        let rows = vec![
            row(&USAGE, 1, &[]),
            row(&REMOVAL, 1, &[]),
            row(&USAGE, 2, &[]),
        ];
        let kinds = by_kind(rows);
        assert_eq!(kinds.len(), 2);
        assert_eq!(kinds[0].len(), 2);
        assert!(std::ptr::eq(kinds[1][0].kind, &REMOVAL));
    }
}
