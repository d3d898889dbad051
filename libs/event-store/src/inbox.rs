//! The inbox: which messages a consumer has already acted on. It is written in
//! the same transaction as the consumer's state change, so a redelivered or
//! duplicated message is a no-op however long after the broker's own
//! deduplication window it arrives.

use crate::StoreError;
use sqlx::PgConnection;
use uuid::Uuid;

/// Records that `consumer` handles `event_id` in the caller's transaction.
/// Returns `false` when it was handled before: the caller must then do nothing.
/// A concurrent duplicate blocks on the primary key until the first commits.
pub async fn record(conn: &mut PgConnection, consumer: &str, event_id: Uuid) -> Result<bool, StoreError> {
    Ok(record_all(conn, &[(consumer, event_id)]).await?[0])
}

/// [`record`] of several events at once, in one statement (each under its
/// consumer's name): for each entry, in order, whether this is its first
/// handling (an entry repeated is first only once). Rows are inserted in
/// one order, so two transactions recording the same events never wait on
/// each other in a circle.
pub async fn record_all(conn: &mut PgConnection, entries: &[(&str, Uuid)]) -> Result<Vec<bool>, StoreError> {
    let mut sorted = entries.to_vec();
    sorted.sort_unstable();
    sorted.dedup();
    let (consumers, ids): (Vec<&str>, Vec<Uuid>) = sorted.into_iter().unzip();
    let recorded: Vec<(String, Uuid)> = sqlx::query_as(
        "INSERT INTO inbox (consumer, event_id)
         SELECT consumer, event_id FROM unnest($1::text[], $2::uuid[]) AS e(consumer, event_id)
         ORDER BY consumer, event_id
         ON CONFLICT DO NOTHING
         RETURNING consumer, event_id",
    )
    .bind(&consumers)
    .bind(&ids)
    .fetch_all(conn)
    .await?;
    let mut first: std::collections::HashSet<(String, Uuid)> = recorded.into_iter().collect();
    Ok(entries.iter().map(|&(consumer, id)| first.remove(&(consumer.to_string(), id))).collect())
}
