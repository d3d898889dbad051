//! The data keys of one service's database.
//!
//! A key is created, read and destroyed in the caller's transaction, so it
//! commits (or not) with what it seals: no extra commit per household, no
//! second connection, and an erasure is all or nothing. The cache holds only
//! what is known to be committed: a key the caller's transaction created (or
//! sees uncommitted, `xmin` its own) is used, not cached, and read again
//! from the table next time. Live keys are cached for [`Keyring::CACHE_FOR`]:
//! an erasure reaches the other replicas of a service within that time.

use crate::kek::{Kek, KekError};
use crate::sealing::DataKey;
use ring::rand::{SecureRandom, SystemRandom};
use sqlx::PgConnection;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use uuid::Uuid;

/// Whether a row was written by the current transaction (its `xmin` is this
/// transaction's id): such a key is not known to be committed.
const OWN: &str = "COALESCE(xmin::text::bigint = txid_current_if_assigned() % 4294967296, false)";

#[derive(Debug, thiserror::Error)]
pub enum KeyringError {
    /// The household's key was destroyed: nothing personal may be written for it.
    #[error("the household's personal data was erased")]
    Erased,
    #[error(transparent)]
    Kek(#[from] KekError),
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
}

/// What [`Keyring::seal_plain`] did with the fields in the clear.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SealedPlain {
    Sealed,
    /// The household was erased: they now read as erased.
    Erased,
}

#[derive(Clone)]
enum Cached {
    Live(Arc<DataKey>, Instant),
    Erased,
    /// Erased by a transaction of this process that may not have committed
    /// yet: the table is asked every time, and a live key another request
    /// reads meanwhile is not kept.
    Erasing(Instant),
}

pub struct Keyring {
    kek: Arc<dyn Kek>,
    lookup: ring::hmac::Key,
    transit: crate::Transit,
    cache: Mutex<HashMap<Uuid, Cached>>,
}

impl std::fmt::Debug for Keyring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Keyring").field("kek", &self.kek.id()).finish_non_exhaustive()
    }
}

impl Keyring {
    /// How long a live key is trusted without asking the table again.
    pub const CACHE_FOR: Duration = Duration::from_secs(60);
    const CACHE_ENTRIES: usize = 50_000;

    pub fn new(kek: Arc<dyn Kek>) -> Self {
        let lookup = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &kek.lookup_secret());
        let transit = crate::Transit::new(kek.transit_secret());
        Self { kek, lookup, transit, cache: Mutex::new(HashMap::new()) }
    }

    /// The keyring of the development KEK ([`crate::FileKek::development`]):
    /// what a service without a configured KEK uses, and so the tests.
    pub fn development() -> Self {
        Self::new(Arc::new(crate::FileKek::development()))
    }

    /// The sealing of personal fields on the broker.
    pub fn in_transit(&self) -> &crate::Transit {
        &self.transit
    }

    /// The household's key for sealing, created in the caller's transaction
    /// on first use.
    pub async fn for_sealing(&self, conn: &mut PgConnection, household_id: Uuid) -> Result<Arc<DataKey>, KeyringError> {
        if let Some(cached) = self.cached(household_id) {
            return cached.ok_or(KeyringError::Erased);
        }
        let mut fresh = [0u8; DataKey::LEN];
        SystemRandom::new().fill(&mut fresh).expect("the system's random source");
        // One round trip: the new key, or (after a concurrent creator
        // commits) the one in the table.
        let inserted: Option<(Option<Vec<u8>>, bool)> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "WITH created AS (
                 INSERT INTO household_keys (household_id, kek_id, wrapped) VALUES ($1, $2, $3)
                 ON CONFLICT (household_id) DO NOTHING
                 RETURNING wrapped
             )
             SELECT wrapped, true FROM created
             UNION ALL
             SELECT wrapped, {OWN} FROM household_keys WHERE household_id = $1 AND NOT EXISTS (SELECT 1 FROM created)",
        )))
        .bind(household_id)
        .bind(self.kek.id())
        .bind(self.kek.wrap(household_id, &fresh))
        .fetch_optional(&mut *conn)
        .await?;
        // Nothing: a concurrent creator committed while this waited on it,
        // after this statement's snapshot; a new statement sees its key.
        let row = match inserted {
            Some(row) => row,
            None => self.read(conn, household_id).await?.unwrap_or((None, false)),
        };
        match row {
            // Made by this transaction (now, or earlier and not committed
            // yet): used, and cached only once read again after the commit.
            (Some(wrapped), own) => self.unwrapped(household_id, &wrapped, !own),
            (None, own) => {
                // An erasure of this very transaction may still roll back.
                if !own {
                    self.remember(household_id, Cached::Erased);
                }
                Err(KeyringError::Erased)
            }
        }
    }

    /// Seals the personal `fields` of `document` still in the clear (what an
    /// earlier release stored before sealing) with the household's key,
    /// created in the caller's transaction if it has none; for an erased
    /// household they are replaced by [`crate::ERASED`] instead.
    pub async fn seal_plain(
        &self,
        conn: &mut PgConnection,
        household_id: Uuid,
        fields: crate::PersonalFields,
        document: &mut serde_json::Value,
    ) -> Result<SealedPlain, KeyringError> {
        match self.for_sealing(conn, household_id).await {
            Ok(key) => {
                fields.seal(document, &key);
                Ok(SealedPlain::Sealed)
            }
            Err(KeyringError::Erased) => {
                fields.erase_plain(document);
                Ok(SealedPlain::Erased)
            }
            Err(e) => Err(e),
        }
    }

    /// The household's key for opening; `None` if it was erased or never made
    /// (then every sealed field reads as erased).
    pub async fn for_opening(
        &self,
        conn: &mut PgConnection,
        household_id: Uuid,
    ) -> Result<Option<Arc<DataKey>>, KeyringError> {
        if let Some(cached) = self.cached(household_id) {
            return Ok(cached);
        }
        match self.read(conn, household_id).await? {
            None => Ok(None),
            Some((None, _)) => Ok(None),
            Some((Some(wrapped), mine)) => Ok(Some(self.unwrapped(household_id, &wrapped, !mine)?)),
        }
    }

    /// [`Keyring::for_opening`] of several households at once (a page of a
    /// list): the cached ones, and the rest in one query.
    pub async fn for_opening_many(
        &self,
        conn: &mut PgConnection,
        household_ids: &[Uuid],
    ) -> Result<HashMap<Uuid, Arc<DataKey>>, KeyringError> {
        let mut keys = HashMap::new();
        let mut unknown = Vec::new();
        for &id in household_ids {
            match self.cached(id) {
                Some(Some(key)) => {
                    keys.insert(id, key);
                }
                Some(None) => {}
                None => unknown.push(id),
            }
        }
        if unknown.is_empty() {
            return Ok(keys);
        }
        let rows: Vec<(Uuid, Option<Vec<u8>>, bool)> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT household_id, wrapped, {OWN} FROM household_keys WHERE household_id = ANY($1)"
        )))
        .bind(&unknown)
        .fetch_all(&mut *conn)
        .await?;
        for (id, wrapped, own) in rows {
            if let Some(wrapped) = wrapped {
                keys.insert(id, self.unwrapped(id, &wrapped, !own)?);
            }
        }
        Ok(keys)
    }

    /// Destroys the household's key (crypto-shredding), in the caller's
    /// transaction: it takes effect when that commits. Returns whether this
    /// call destroyed it (false: it was already erased). The household can
    /// never be sealed for again.
    pub async fn erase(&self, conn: &mut PgConnection, household_id: Uuid) -> Result<bool, KeyringError> {
        let destroyed: bool = sqlx::query_scalar(
            "WITH before AS (SELECT wrapped IS NOT NULL AS live FROM household_keys WHERE household_id = $1),
                  erased AS (
                      INSERT INTO household_keys (household_id, kek_id, wrapped, erased_at) VALUES ($1, $2, NULL, now())
                      ON CONFLICT (household_id) DO UPDATE
                          SET wrapped = NULL, erased_at = COALESCE(household_keys.erased_at, now())
                  )
             SELECT COALESCE((SELECT live FROM before), true)",
        )
        .bind(household_id)
        .bind(self.kek.id())
        .fetch_one(&mut *conn)
        .await?;
        // Not remembered as erased before the caller commits: read again.
        self.remember(household_id, Cached::Erasing(Instant::now()));
        Ok(destroyed)
    }

    /// The keyed hash that stands for an ID number in a lookup column
    /// (lowercase hex of HMAC-SHA256 under the KEK's lookup secret). Equal
    /// for every service that shares the KEK; without the KEK it is not
    /// possible to test a guessed number against it.
    pub fn lookup(&self, id_number: &str) -> String {
        self.digest(id_number.trim().to_ascii_uppercase().as_bytes())
    }

    /// The keyed hash of any bytes (lowercase hex), under the same secret:
    /// what stands for a stored text that only needs comparing (the body an
    /// idempotency key answered), so the text itself is not kept.
    pub fn digest(&self, bytes: &[u8]) -> String {
        let tag = ring::hmac::sign(&self.lookup, bytes);
        tag.as_ref().iter().map(|b| format!("{b:02x}")).collect()
    }

    /// The household's wrapped key (`None` once erased), and whether this
    /// transaction wrote it (not committed yet).
    async fn read(
        &self,
        conn: &mut PgConnection,
        household_id: Uuid,
    ) -> Result<Option<(Option<Vec<u8>>, bool)>, KeyringError> {
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT wrapped, {OWN} FROM household_keys WHERE household_id = $1"
        )))
        .bind(household_id)
        .fetch_optional(&mut *conn)
        .await?)
    }

    fn unwrapped(&self, household_id: Uuid, wrapped: &[u8], committed: bool) -> Result<Arc<DataKey>, KeyringError> {
        let key = Arc::new(DataKey::from_bytes(household_id, &self.kek.unwrap(household_id, wrapped)?));
        if committed {
            self.remember(household_id, Cached::Live(key.clone(), Instant::now()));
        }
        Ok(key)
    }

    /// `Some(Some(key))` live, `Some(None)` erased, `None` unknown or stale.
    fn cached(&self, household_id: Uuid) -> Option<Option<Arc<DataKey>>> {
        match self.cache.lock().expect("keyring cache").get(&household_id)? {
            Cached::Live(key, at) if at.elapsed() < Self::CACHE_FOR => Some(Some(key.clone())),
            Cached::Live(..) | Cached::Erasing(_) => None,
            Cached::Erased => Some(None),
        }
    }

    fn remember(&self, household_id: Uuid, entry: Cached) {
        let mut cache = self.cache.lock().expect("keyring cache");
        if cache.len() >= Self::CACHE_ENTRIES {
            cache.clear();
        }
        // A key read while an erasure of this process may still commit is not kept.
        let erasing = matches!(cache.get(&household_id), Some(Cached::Erasing(at)) if at.elapsed() < Self::CACHE_FOR);
        if erasing && matches!(entry, Cached::Live(..)) {
            return;
        }
        cache.insert(household_id, entry);
    }
}
