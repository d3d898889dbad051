//! The hash chain over the trail: sealing entries in the order they were
//! written, and verifying that no sealed entry was altered, removed or
//! reordered since.
//!
//! Each sealed entry carries `seq` (1, 2, …), the previous entry's hash and
//! its own: HMAC-SHA256, with a key held outside the database
//! ([`SealingKey`]), over a version tag, `seq`, the previous hash and every
//! recorded field, each length-prefixed so that no two entries encode alike.
//! The head (`audit_chain`) holds the last `seq` and hash, so removing the
//! newest entries is found too. Entries older than the retention period may
//! be deleted from the oldest end; verification then starts at the oldest
//! entry left.
//!
//! The key can be rotated: each entry names the key that sealed it by a
//! fingerprint (`key_id`, the first 8 bytes of its SHA-256, which reveals
//! nothing of the key), new entries are sealed with the current key, and
//! the keys retired from sealing stay in the ring to verify the entries they
//! sealed (`ONEDOOR_AUDIT_RETIRED_KEYS`).

use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use serde::Serialize;
use sha2::Sha256;
use sqlx::PgPool;
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

/// The keys the chain's hashes are keyed with (HMAC-SHA256): someone who can
/// rewrite the table but does not hold a key cannot seal a changed entry so
/// that it verifies. The current key seals; retired keys only verify the
/// entries they sealed. Production keeps them outside the database
/// (`ONEDOOR_AUDIT_KEY`, `ONEDOOR_AUDIT_RETIRED_KEYS`, a k8s secret);
/// development uses a fixed key.
#[derive(Clone)]
pub struct SealingKey {
    current: RingKey,
    retired: Vec<RingKey>,
}

/// A key and its fingerprint, computed once.
#[derive(Clone)]
struct RingKey {
    id: String,
    bytes: Vec<u8>,
}

impl RingKey {
    fn new(bytes: &[u8]) -> Self {
        Self { id: key_id(bytes), bytes: bytes.to_vec() }
    }
}

impl std::fmt::Debug for SealingKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SealingKey").field("current", &self.current.id).finish_non_exhaustive()
    }
}

/// The key of development and tests, where no key is configured.
const DEVELOPMENT_KEY: &[u8] = b"onedoor-development-audit-key-not-for-production";
/// The shortest key accepted.
pub const MIN_KEY_BYTES: usize = 32;

#[derive(Debug, thiserror::Error)]
pub enum SealingKeyError {
    #[error("ONEDOOR_AUDIT_KEY and each of ONEDOOR_AUDIT_RETIRED_KEYS must be at least {MIN_KEY_BYTES} bytes")]
    Short,
    #[error("ONEDOOR_ENV=production needs ONEDOOR_AUDIT_KEY (the audit chain's key, kept outside the database)")]
    MissingInProduction,
}

/// A key's fingerprint as entries record it.
fn key_id(key: &[u8]) -> String {
    use sha2::Digest;
    Sha256::digest(key)[..8].iter().map(|b| format!("{b:02x}")).collect()
}

impl SealingKey {
    pub fn new(key: &[u8]) -> Result<Self, SealingKeyError> {
        if key.len() < MIN_KEY_BYTES {
            return Err(SealingKeyError::Short);
        }
        Ok(Self { current: RingKey::new(key), retired: Vec::new() })
    }

    /// The configured key, or the development key outside production; and
    /// the retired keys (comma-separated), which verify but never seal.
    pub fn configure(key: Option<&str>, retired: Option<&str>, production: bool) -> Result<Self, SealingKeyError> {
        let mut ring = match key.filter(|k| !k.is_empty()) {
            Some(key) => Self::new(key.as_bytes())?,
            None if production => return Err(SealingKeyError::MissingInProduction),
            None => Self { current: RingKey::new(DEVELOPMENT_KEY), retired: Vec::new() },
        };
        for old in retired.unwrap_or_default().split(',').map(str::trim).filter(|k| !k.is_empty()) {
            ring = ring.retiring(Self::new(old.as_bytes())?);
        }
        Ok(ring)
    }

    /// This ring, also verifying what `old`'s current key sealed.
    pub fn retiring(mut self, old: SealingKey) -> Self {
        self.retired.push(old.current);
        self
    }

    /// The fingerprint new entries are sealed under.
    pub fn current_id(&self) -> String {
        self.current.id.clone()
    }

    /// The key an entry names; entries sealed before keys were named
    /// (`None`) may have been sealed by any key of the ring.
    fn candidates(&self, id: Option<&str>) -> Vec<&[u8]> {
        std::iter::once(&self.current)
            .chain(&self.retired)
            .filter(|k| id.is_none_or(|id| k.id == id))
            .map(|k| k.bytes.as_slice())
            .collect()
    }
}

/// The previous hash of the first entry ever sealed.
const GENESIS: [u8; 32] = [0; 32];
/// Entries sealed per transaction.
const BATCH: usize = 1000;
/// How often the sealer looks for new entries when it found none.
const IDLE: Duration = Duration::from_secs(1);

#[derive(Debug, sqlx::FromRow)]
struct Recorded {
    entry_id: i64,
    at: DateTime<Utc>,
    actor: String,
    role: String,
    action: String,
    outcome: i16,
    case_id: Option<Uuid>,
    referral_id: Option<Uuid>,
    household_id: Option<Uuid>,
    document_id: Option<Uuid>,
    purpose: Option<String>,
    trace_id: Option<String>,
}

/// The recorded columns, in [`Recorded`]'s order.
macro_rules! recorded {
    () => {
        "entry_id, at, actor, role, action, outcome, case_id, referral_id, household_id, document_id, purpose, trace_id"
    };
}

fn digest(key: &[u8], seq: i64, prev_hash: &[u8], e: &Recorded) -> [u8; 32] {
    let mut h = <Hmac<Sha256> as Mac>::new_from_slice(key).expect("HMAC takes a key of any length");
    let mut field = |bytes: Option<&[u8]>| match bytes {
        None => h.update(&[0u8]),
        Some(b) => {
            h.update(&[1u8]);
            h.update(&(b.len() as u64).to_be_bytes());
            h.update(b);
        }
    };
    field(Some(b"onedoor-audit-v1"));
    field(Some(&seq.to_be_bytes()));
    field(Some(prev_hash));
    field(Some(&e.entry_id.to_be_bytes()));
    field(Some(&e.at.timestamp_micros().to_be_bytes()));
    field(Some(e.actor.as_bytes()));
    field(Some(e.role.as_bytes()));
    field(Some(e.action.as_bytes()));
    field(Some(&e.outcome.to_be_bytes()));
    for id in [e.case_id, e.referral_id, e.household_id, e.document_id] {
        field(id.as_ref().map(|id| id.as_bytes().as_slice()));
    }
    field(e.purpose.as_deref().map(str::as_bytes));
    field(e.trace_id.as_deref().map(str::as_bytes));
    h.finalize().into_bytes().into()
}

/// Seals the oldest unsealed entries (up to a batch) onto the chain and
/// returns how many. One sealer at a time: the chain head is locked.
pub async fn seal(pool: &PgPool, key: &SealingKey) -> Result<usize, sqlx::Error> {
    let mut tx = pool.begin().await?;
    let (mut seq, mut hash): (i64, Vec<u8>) =
        sqlx::query_as("SELECT seq, hash FROM audit_chain FOR UPDATE").fetch_one(&mut *tx).await?;
    let entries: Vec<Recorded> = sqlx::query_as(concat!(
        "SELECT ",
        recorded!(),
        " FROM audit_trail WHERE seq IS NULL ORDER BY entry_id LIMIT $1"
    ))
    .bind(BATCH as i64)
    .fetch_all(&mut *tx)
    .await?;
    if entries.is_empty() {
        return Ok(0);
    }
    let (mut ids, mut seqs, mut prevs, mut hashes) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for entry in &entries {
        seq += 1;
        let sealed = digest(&key.current.bytes, seq, &hash, entry).to_vec();
        ids.push(entry.entry_id);
        seqs.push(seq);
        prevs.push(std::mem::replace(&mut hash, sealed.clone()));
        hashes.push(sealed);
    }
    sqlx::query(
        "UPDATE audit_trail t SET seq = u.seq, prev_hash = u.prev_hash, hash = u.hash, key_id = $5 \
         FROM unnest($1::bigint[], $2::bigint[], $3::bytea[], $4::bytea[]) AS u(entry_id, seq, prev_hash, hash) \
         WHERE t.entry_id = u.entry_id",
    )
    .bind(&ids)
    .bind(&seqs)
    .bind(&prevs)
    .bind(&hashes)
    .bind(&key.current.id)
    .execute(&mut *tx)
    .await?;
    sqlx::query("UPDATE audit_chain SET seq = $1, hash = $2").bind(seq).bind(&hash).execute(&mut *tx).await?;
    tx.commit().await?;
    Ok(entries.len())
}

/// Seals new entries until `shutdown`: at once while there is a backlog,
/// every second otherwise.
pub async fn seal_continuously(pool: PgPool, key: SealingKey, shutdown: CancellationToken) {
    loop {
        let pause = match seal(&pool, &key).await {
            Ok(n) if n == BATCH => Duration::ZERO,
            Ok(_) => IDLE,
            Err(error) => {
                tracing::warn!(%error, "sealing the audit trail failed; retrying");
                IDLE
            }
        };
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(pause) => {}
        }
    }
}

/// Where the chain is broken, and how.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct BrokenLink {
    /// The chain position where verification failed.
    pub seq: i64,
    /// The entry found there (none when the entry is missing).
    pub entry_id: Option<i64>,
    /// `altered` (the entry's hash does not match its content), `missing`
    /// (entries before it were removed), `relinked` (its previous hash is not
    /// the previous entry's), `truncated` (the newest entries were removed)
    /// or `unknown_key` (sealed by a key the ring does not hold: a retired
    /// key missing from `ONEDOOR_AUDIT_RETIRED_KEYS`, or a forged key id).
    pub reason: String,
}

/// The result of walking the whole chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Verification {
    /// Sealed entries checked.
    pub checked: i64,
    /// The chain head's position.
    pub head_seq: i64,
    /// Entries written and not yet sealed (sealed within seconds while the service runs).
    pub unsealed: i64,
    /// The first broken link, if any; `null` when the chain is whole.
    pub first_broken: Option<BrokenLink>,
}

#[derive(sqlx::FromRow)]
struct Sealed {
    #[sqlx(flatten)]
    recorded: Recorded,
    seq: i64,
    prev_hash: Vec<u8>,
    hash: Vec<u8>,
    key_id: Option<String>,
}

/// Walks the chain from its oldest entry to its head (as it was when the
/// walk began: entries sealed meanwhile are left to the next walk).
pub async fn verify(pool: &PgPool, key: &SealingKey) -> Result<Verification, sqlx::Error> {
    let (head_seq, head_hash): (i64, Vec<u8>) =
        sqlx::query_as("SELECT seq, hash FROM audit_chain").fetch_one(pool).await?;
    let unsealed: i64 =
        sqlx::query_scalar("SELECT count(*) FROM audit_trail WHERE seq IS NULL").fetch_one(pool).await?;
    let mut checked = 0;
    let mut last: Option<(i64, Vec<u8>)> = None;
    let broken = |seq, entry_id, reason: &str| BrokenLink { seq, entry_id, reason: reason.to_string() };
    let first_broken = 'walk: loop {
        let after = last.as_ref().map_or(0, |(seq, _)| *seq);
        let page: Vec<Sealed> = sqlx::query_as(concat!(
            "SELECT ",
            recorded!(),
            ", seq, prev_hash, hash, key_id FROM audit_trail WHERE seq > $1 AND seq <= $2 ORDER BY seq LIMIT 5000"
        ))
        .bind(after)
        .bind(head_seq)
        .fetch_all(pool)
        .await?;
        if page.is_empty() {
            break match &last {
                Some((seq, hash)) if (*seq, hash) != (head_seq, &head_hash) => Some(broken(seq + 1, None, "truncated")),
                None if head_seq > 0 => Some(broken(1, None, "truncated")),
                _ => None,
            };
        }
        for entry in page {
            let id = Some(entry.recorded.entry_id);
            let keys = key.candidates(entry.key_id.as_deref());
            if keys.is_empty() {
                break 'walk Some(broken(entry.seq, id, "unknown_key"));
            }
            if !keys.iter().any(|k| digest(k, entry.seq, &entry.prev_hash, &entry.recorded).as_slice() == entry.hash) {
                break 'walk Some(broken(entry.seq, id, "altered"));
            }
            match &last {
                Some((seq, _)) if entry.seq != seq + 1 => break 'walk Some(broken(seq + 1, None, "missing")),
                Some((_, hash)) if *hash != entry.prev_hash => break 'walk Some(broken(entry.seq, id, "relinked")),
                None if entry.seq == 1 && entry.prev_hash != GENESIS => {
                    break 'walk Some(broken(1, id, "relinked"));
                }
                _ => {}
            }
            checked += 1;
            last = Some((entry.seq, entry.hash));
        }
    };
    Ok(Verification { checked, head_seq, unsealed, first_broken })
}
