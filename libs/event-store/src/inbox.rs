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
    let done = sqlx::query("INSERT INTO inbox (consumer, event_id) VALUES ($1, $2) ON CONFLICT DO NOTHING")
        .bind(consumer)
        .bind(event_id)
        .execute(conn)
        .await?;
    Ok(done.rows_affected() == 1)
}
