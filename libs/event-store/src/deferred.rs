//! Read-model rows whose writing waits for the end of a transaction that
//! changes the same stream several times, so each row is written once.
//!
//! A consumer's worker handles the messages that queued up for it in one
//! transaction (`onedoor_messaging::consumer`), and the four departments'
//! reports on one case arrive together: rewriting the case's list row (a
//! large JSON view, the costliest statement of the loop) after each report
//! wrote it up to four times, of which only the last counted. Inside
//! [`scope`], a writer hands its row to [`defer`] instead (a later row for
//! the same id replaces an earlier one), reads back what it deferred with
//! [`pending`], and the transaction's owner calls [`flush`] before it
//! commits: each kind's rows in one call of its writer, in id order. Outside
//! a scope (a request, a message handled alone) [`defer`] hands the row back
//! to be written at once, as before.
//!
//! A deferred row must only be read back by the transaction that deferred
//! it: the scope is the transaction's task, and a failed transaction drops
//! its rows with the scope.

use crate::StoreError;
use sqlx::PgConnection;
use std::any::Any;
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use uuid::Uuid;

/// A row waiting to be written, as its kind keeps it.
pub type Row = Box<dyn Any + Send>;

/// Writes one kind's deferred rows (in id order) in the caller's transaction.
pub type Writer =
    for<'c> fn(&'c mut PgConnection, Vec<Row>) -> Pin<Box<dyn Future<Output = Result<(), StoreError>> + Send + 'c>>;

/// One kind of deferred row: its name and its writer.
#[derive(Clone, Copy)]
pub struct Kind {
    pub name: &'static str,
    pub write: Writer,
}

#[derive(Default)]
struct Pending {
    kinds: Vec<(Kind, BTreeMap<Uuid, Row>)>,
}

tokio::task_local! {
    static PENDING: RefCell<Pending>;
}

/// Runs `transaction` with rows deferred until its [`flush`].
pub async fn scope<F: Future>(transaction: F) -> F::Output {
    PENDING.scope(RefCell::new(Pending::default()), transaction).await
}

/// Keeps `row` of `kind` for `id` until the scope's [`flush`], replacing one
/// kept before; outside a scope, hands it back to be written now.
pub fn defer<T: Any + Send>(kind: Kind, id: Uuid, row: T) -> Option<T> {
    let mut row = Some(row);
    let _ = PENDING.try_with(|pending| {
        let mut pending = pending.borrow_mut();
        let at = match pending.kinds.iter().position(|(k, _)| k.name == kind.name) {
            Some(at) => at,
            None => {
                pending.kinds.push((kind, BTreeMap::new()));
                pending.kinds.len() - 1
            }
        };
        let row = row.take().expect("taken once");
        pending.kinds[at].1.insert(id, Box::new(row));
    });
    row
}

/// The row of `kind` deferred for `id` in this scope and not written yet.
pub fn pending<T: Any + Clone>(kind: Kind, id: Uuid) -> Option<T> {
    PENDING
        .try_with(|pending| {
            let pending = pending.borrow();
            let (_, rows) = pending.kinds.iter().find(|(k, _)| k.name == kind.name)?;
            rows.get(&id)?.downcast_ref::<T>().cloned()
        })
        .ok()
        .flatten()
}

/// Writes every row deferred in this scope (none outside one), each kind's
/// in one call of its writer.
pub async fn flush(conn: &mut PgConnection) -> Result<(), StoreError> {
    let kinds = PENDING.try_with(|pending| std::mem::take(&mut pending.borrow_mut().kinds)).unwrap_or_default();
    for (kind, rows) in kinds {
        (kind.write)(conn, rows.into_values().collect()).await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write_nothing<'c>(
        _: &'c mut PgConnection,
        _: Vec<Row>,
    ) -> Pin<Box<dyn Future<Output = Result<(), StoreError>> + Send + 'c>> {
        Box::pin(async { Ok(()) })
    }

    const NOTES: Kind = Kind { name: "notes", write: write_nothing };
    const OTHER: Kind = Kind { name: "other", write: write_nothing };

    #[tokio::test]
    async fn outside_a_scope_a_row_is_handed_back_to_be_written_now() {
        let id = Uuid::now_v7();
        assert_eq!(defer(NOTES, id, "first"), Some("first"));
        assert_eq!(pending::<&str>(NOTES, id), None);
    }

    #[tokio::test]
    async fn inside_a_scope_the_last_row_for_an_id_is_kept_for_its_own_kind() {
        let id = Uuid::now_v7();
        scope(async {
            assert_eq!(defer(NOTES, id, "first"), None);
            assert_eq!(defer(NOTES, id, "second"), None);
            assert_eq!(pending::<&str>(NOTES, id), Some("second"));
            assert_eq!(pending::<&str>(OTHER, id), None, "another kind's rows are its own");
            let taken = PENDING.with(|p| std::mem::take(&mut p.borrow_mut().kinds));
            assert_eq!(taken.len(), 1);
            assert_eq!(taken[0].1.len(), 1, "one row per id");
        })
        .await;
        assert_eq!(pending::<&str>(NOTES, id), None, "the scope's rows end with it");
    }
}
