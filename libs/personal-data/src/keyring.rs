//! The data keys of one service's database.
//!
//! The keyring has a connection pool of its own (two connections): a key is
//! created and committed on its own, never inside the caller's transaction,
//! so a key that was handed out and cached is always the one in the table
//! (a rolled-back caller cannot take the key row with it), and a caller
//! holding one of the service's connections never waits for another of them.
//! Live keys are cached for [`Keyring::CACHE_FOR`]: an erasure reaches the
//! other replicas of a service within that time.

use crate::kek::{Kek, KekError};
use crate::sealing::DataKey;
use ring::rand::{SecureRandom, SystemRandom};
use sqlx::PgPool;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use uuid::Uuid;

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

#[derive(Clone)]
enum Cached {
    Live(Arc<DataKey>, Instant),
    Erased,
}

pub struct Keyring {
    kek: Arc<dyn Kek>,
    lookup: ring::hmac::Key,
    transit: crate::Transit,
    pool: PgPool,
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

    /// A keyring over `pool` (a pool of its own: see the module docs).
    pub fn new(kek: Arc<dyn Kek>, pool: PgPool) -> Self {
        let lookup = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &kek.lookup_secret());
        let transit = crate::Transit::new(kek.transit_secret());
        Self { kek, lookup, transit, pool, cache: Mutex::new(HashMap::new()) }
    }

    /// The sealing of personal fields on the broker.
    pub fn in_transit(&self) -> &crate::Transit {
        &self.transit
    }

    /// The household's key for sealing, created (and committed) on first use.
    pub async fn for_sealing(&self, household_id: Uuid) -> Result<Arc<DataKey>, KeyringError> {
        if let Some(cached) = self.cached(household_id) {
            return cached.ok_or(KeyringError::Erased);
        }
        let mut fresh = [0u8; DataKey::LEN];
        SystemRandom::new().fill(&mut fresh).expect("the system's random source");
        sqlx::query(
            "INSERT INTO household_keys (household_id, kek_id, wrapped) VALUES ($1, $2, $3)
             ON CONFLICT (household_id) DO NOTHING",
        )
        .bind(household_id)
        .bind(self.kek.id())
        .bind(self.kek.wrap(household_id, &fresh))
        .execute(&self.pool)
        .await?;
        self.read(household_id).await?.ok_or(KeyringError::Erased)
    }

    /// The household's key for opening; `None` if it was erased or never made
    /// (then every sealed field reads as erased).
    pub async fn for_opening(&self, household_id: Uuid) -> Result<Option<Arc<DataKey>>, KeyringError> {
        match self.cached(household_id) {
            Some(cached) => Ok(cached),
            None => self.read(household_id).await,
        }
    }

    /// Destroys the household's key (crypto-shredding). Returns whether this
    /// call destroyed it (false: it was already erased). The household can
    /// never be sealed for again.
    pub async fn erase(&self, household_id: Uuid) -> Result<bool, KeyringError> {
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
        .fetch_one(&self.pool)
        .await?;
        self.remember(household_id, Cached::Erased);
        Ok(destroyed)
    }

    /// The keyed hash that stands for an ID number in a lookup column
    /// (lowercase hex of HMAC-SHA256 under the KEK's lookup secret). Equal
    /// for every service that shares the KEK; without the KEK it is not
    /// possible to test a guessed number against it.
    pub fn lookup(&self, id_number: &str) -> String {
        let tag = ring::hmac::sign(&self.lookup, id_number.trim().to_ascii_uppercase().as_bytes());
        tag.as_ref().iter().map(|b| format!("{b:02x}")).collect()
    }

    async fn read(&self, household_id: Uuid) -> Result<Option<Arc<DataKey>>, KeyringError> {
        let row: Option<(Option<Vec<u8>>,)> =
            sqlx::query_as("SELECT wrapped FROM household_keys WHERE household_id = $1")
                .bind(household_id)
                .fetch_optional(&self.pool)
                .await?;
        match row {
            None => Ok(None),
            Some((None,)) => {
                self.remember(household_id, Cached::Erased);
                Ok(None)
            }
            Some((Some(wrapped),)) => {
                let key = Arc::new(DataKey::from_bytes(household_id, &self.kek.unwrap(household_id, &wrapped)?));
                self.remember(household_id, Cached::Live(key.clone(), Instant::now()));
                Ok(Some(key))
            }
        }
    }

    /// `Some(Some(key))` live, `Some(None)` erased, `None` unknown or stale.
    fn cached(&self, household_id: Uuid) -> Option<Option<Arc<DataKey>>> {
        match self.cache.lock().expect("keyring cache").get(&household_id)? {
            Cached::Live(key, at) if at.elapsed() < Self::CACHE_FOR => Some(Some(key.clone())),
            Cached::Live(..) => None,
            Cached::Erased => Some(None),
        }
    }

    fn remember(&self, household_id: Uuid, entry: Cached) {
        let mut cache = self.cache.lock().expect("keyring cache");
        if cache.len() >= Self::CACHE_ENTRIES {
            cache.clear();
        }
        cache.insert(household_id, entry);
    }
}
