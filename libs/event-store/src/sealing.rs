//! Sealing what an earlier release stored in the clear.
//!
//! Personal fields are sealed when an event is stored (ADR 0015). Events an
//! earlier release stored hold them in the clear, where neither encryption
//! at rest (MLPS level 3) nor crypto-shredding (PIPL art. 47) reaches them:
//! destroying a household's key would leave its old events readable. So
//! each service seals them in its upgrade step (`--migrate-only`, and every
//! start before it serves): every personal field of its events still in the
//! clear is sealed under the key its stream is sealed with today or, where
//! that key was destroyed, replaced by `[已删除]`. Only how a field is
//! stored changes, never what the event says: the one rewrite of a stored
//! event there is (ADR 0018).
//!
//! A pass goes on from where the last one stopped (`sealing_passes`), so a
//! start after it reads only the events since. It records as checked only
//! events older than [`SETTLED`]: a transaction still open may yet commit
//! an event below a newer position, and an earlier release's replica may
//! still be writing during a rolling upgrade. Those are read again by the
//! next start.

use crate::StoreError;
use onedoor_personal_data::{Keyring, PersonalFields, SealedPlain};
use serde_json::Value;
use sqlx::PgPool;
use std::collections::HashMap;
use uuid::Uuid;

/// Events recorded longer ago than this are past any transaction still open.
pub const SETTLED: &str = "10 minutes";

/// Events read (and sealed) per transaction.
const BATCH: i64 = 1000;

/// The events of one stream type, as the pass needs to know them.
#[derive(Debug, Clone, Copy)]
pub struct PlainEvents {
    pub stream_type: &'static str,
    /// The personal fields of an event type, as stored.
    pub personal_fields: fn(&str) -> PersonalFields,
    /// Whose key seals a stream: from its id and its first event, as stored
    /// (`None`: a stream that names no owner, left as it is).
    pub key_owner: fn(&str, &Value) -> Option<Uuid>,
}

/// What a pass did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Sealed {
    /// Events whose plain fields were sealed.
    pub sealed: u64,
    /// Events whose plain fields were erased (their key was destroyed).
    pub erased: u64,
    /// Events with plain fields whose stream names no owner: left plain.
    pub ownerless: u64,
}

impl std::ops::AddAssign for Sealed {
    fn add_assign(&mut self, other: Self) {
        self.sealed += other.sealed;
        self.erased += other.erased;
        self.ownerless += other.ownerless;
    }
}

/// Seals the personal fields still in the clear in the events of
/// `plain.stream_type` recorded since the last pass (see the module's doc).
pub async fn seal_plain_events(pool: &PgPool, keyring: &Keyring, plain: &PlainEvents) -> Result<Sealed, StoreError> {
    let mut done = Sealed::default();
    let mut after: i64 = 0;
    // Whether every event read so far is settled: the marker moves only then.
    let mut settled_so_far = true;
    loop {
        let mut tx = pool.begin().await?;
        // Replicas starting together take turns.
        sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended('onedoor sealing pass ' || $1, 0))")
            .bind(plain.stream_type)
            .execute(&mut *tx)
            .await?;
        let checked: Option<i64> =
            sqlx::query_scalar("SELECT checked_through FROM sealing_passes WHERE stream_type = $1")
                .bind(plain.stream_type)
                .fetch_optional(&mut *tx)
                .await?;
        after = after.max(checked.unwrap_or(0));
        let rows: Vec<(i64, String, String, Value, bool)> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT global_position, stream_id, event_type, payload, recorded_at < now() - interval '{SETTLED}'
               FROM events WHERE stream_type = $1 AND global_position > $2 ORDER BY global_position LIMIT $3"
        )))
        .bind(plain.stream_type)
        .bind(after)
        .bind(BATCH)
        .fetch_all(&mut *tx)
        .await?;
        let Some(last) = rows.last().map(|r| r.0) else {
            tx.commit().await?;
            return Ok(done);
        };
        let mut checked_through = None;
        let mut to_seal = Vec::new();
        for (position, stream_id, event_type, mut payload, settled) in rows {
            settled_so_far &= settled;
            if settled_so_far {
                checked_through = Some(position);
            }
            let fields = (plain.personal_fields)(&event_type);
            if !fields.is_empty() && fields.any_plain(&mut payload) {
                to_seal.push((position, stream_id, fields, payload));
            }
        }
        if !to_seal.is_empty() {
            let streams: Vec<&str> = to_seal.iter().map(|(_, s, _, _)| s.as_str()).collect();
            let firsts: HashMap<String, Value> = sqlx::query_as::<_, (String, Value)>(
                "SELECT stream_id, payload FROM events WHERE stream_id = ANY($1) AND version = 1",
            )
            .bind(&streams)
            .fetch_all(&mut *tx)
            .await?
            .into_iter()
            .collect();
            let (mut positions, mut payloads) = (Vec::new(), Vec::new());
            for (position, stream_id, fields, mut payload) in to_seal {
                let Some(owner) = firsts.get(&stream_id).and_then(|first| (plain.key_owner)(&stream_id, first)) else {
                    done.ownerless += 1;
                    continue;
                };
                match keyring.seal_plain(&mut tx, owner, fields, &mut payload).await? {
                    SealedPlain::Sealed => done.sealed += 1,
                    SealedPlain::Erased => done.erased += 1,
                }
                positions.push(position);
                payloads.push(payload);
            }
            sqlx::query(
                "UPDATE events SET payload = m.payload FROM unnest($1::bigint[], $2::jsonb[]) AS m(position, payload)
                  WHERE events.global_position = m.position",
            )
            .bind(&positions)
            .bind(&payloads)
            .execute(&mut *tx)
            .await?;
        }
        if let Some(through) = checked_through {
            sqlx::query(
                "INSERT INTO sealing_passes (stream_type, checked_through) VALUES ($1, $2)
                 ON CONFLICT (stream_type) DO UPDATE SET checked_through = GREATEST(sealing_passes.checked_through, $2)",
            )
            .bind(plain.stream_type)
            .bind(through)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        after = last;
    }
}
