//! The keyring against a real PostgreSQL: keys made once, in the caller's
//! transaction, shared by every replica, and erased for good.

use onedoor_personal_data::{ERASED, FileKek, Keyring, KeyringError, PersonalFields};
use serde_json::json;
use std::sync::Arc;
use uuid::Uuid;

async fn migrated() -> onedoor_test_support::TestDatabase {
    let db = onedoor_test_support::fresh_database().await;
    onedoor_personal_data::migrator().run(&db.pool).await.unwrap();
    db
}

fn keyring() -> Keyring {
    Keyring::new(Arc::new(FileKek::from_bytes(&[5; 32])))
}

const FIELDS: PersonalFields = PersonalFields(&["/name"]);

#[tokio::test]
async fn a_household_has_one_key_that_every_replica_uses_and_none_stores_in_the_clear() {
    let db = migrated().await;
    let (one, other) = (keyring(), keyring());
    let household = Uuid::now_v7();
    let (mut a, mut b) = (db.pool.begin().await.unwrap(), db.pool.begin().await.unwrap());
    let first = one.for_sealing(&mut a, household).await.unwrap();
    // The other replica's creator waits for the first to commit, then takes its key.
    let second = tokio::spawn(async move {
        let key = other.for_sealing(&mut b, household).await.unwrap();
        b.commit().await.unwrap();
        key
    });
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    a.commit().await.unwrap();
    let second = second.await.unwrap();
    let mut doc = json!({"name": "王五"});
    FIELDS.seal(&mut doc, &first);
    let mut opened = doc.clone();
    FIELDS.open(&mut opened, Some(&second));
    assert_eq!(opened, json!({"name": "王五"}));
    let rows: Vec<(String, Option<Vec<u8>>)> =
        sqlx::query_as("SELECT kek_id, wrapped FROM household_keys").fetch_all(&db.pool).await.unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].1.as_ref().unwrap().len(), 12 + 32 + 16, "stored wrapped: nonce, key, tag");
}

#[tokio::test]
async fn a_key_whose_transaction_rolled_back_is_never_used_again() {
    let db = migrated().await;
    let ring = keyring();
    let household = Uuid::now_v7();
    let mut tx = db.pool.begin().await.unwrap();
    let lost = ring.for_sealing(&mut tx, household).await.unwrap();
    // Asked again in the same transaction, the same key (not committed yet).
    let again = ring.for_sealing(&mut tx, household).await.unwrap();
    let mut doc = json!({"name": "钱七"});
    FIELDS.seal(&mut doc, &lost);
    FIELDS.open(&mut doc.clone(), Some(&again));
    tx.rollback().await.unwrap();
    let mut conn = db.pool.acquire().await.unwrap();
    assert!(ring.for_opening(&mut conn, household).await.unwrap().is_none(), "no key was cached");
    let kept = ring.for_sealing(&mut conn, household).await.unwrap();
    FIELDS.open(&mut doc, Some(&kept));
    assert_eq!(doc, json!({"name": ERASED}), "what the lost key sealed does not open under the new one");
}

#[tokio::test]
async fn an_erased_household_reads_as_erased_and_can_never_be_sealed_for_again() {
    let db = migrated().await;
    let (one, other) = (keyring(), keyring());
    let household = Uuid::now_v7();
    let mut conn = db.pool.acquire().await.unwrap();
    let mut doc = json!({"name": "赵六"});
    FIELDS.seal(&mut doc, &one.for_sealing(&mut conn, household).await.unwrap());
    assert!(other.for_opening(&mut conn, household).await.unwrap().is_some());

    // An erasure rolled back erased nothing, even where the erasing
    // transaction was refused a key for it.
    let mut tx = db.pool.begin().await.unwrap();
    assert!(one.erase(&mut tx, household).await.unwrap());
    assert!(matches!(one.for_sealing(&mut tx, household).await, Err(KeyringError::Erased)));
    tx.rollback().await.unwrap();
    assert!(one.for_opening(&mut conn, household).await.unwrap().is_some());
    assert!(one.for_sealing(&mut conn, household).await.is_ok());

    assert!(one.erase(&mut conn, household).await.unwrap());
    assert!(!one.erase(&mut conn, household).await.unwrap(), "erasing twice destroys nothing more");
    let key = one.for_opening(&mut conn, household).await.unwrap();
    assert!(key.is_none());
    FIELDS.open(&mut doc, key.as_deref());
    assert_eq!(doc, json!({"name": ERASED}));
    assert!(matches!(one.for_sealing(&mut conn, household).await, Err(KeyringError::Erased)));
    // A replica that had never seen the household reads the table.
    let fresh = keyring();
    assert!(fresh.for_opening(&mut conn, household).await.unwrap().is_none());
    assert!(matches!(fresh.for_sealing(&mut conn, household).await, Err(KeyringError::Erased)));
    let wrapped: Option<Vec<u8>> =
        sqlx::query_scalar("SELECT wrapped FROM household_keys").fetch_one(&db.pool).await.unwrap();
    assert!(wrapped.is_none());

    // A household erased before it ever had a key cannot be given one.
    let never_sealed = Uuid::now_v7();
    assert!(one.erase(&mut conn, never_sealed).await.unwrap());
    assert!(matches!(fresh.for_sealing(&mut conn, never_sealed).await, Err(KeyringError::Erased)));
}

#[tokio::test]
async fn a_key_read_while_its_erasure_commits_is_not_served_after_it() {
    let db = migrated().await;
    let ring = keyring();
    let household = Uuid::now_v7();
    let mut conn = db.pool.acquire().await.unwrap();
    ring.for_sealing(&mut conn, household).await.unwrap();
    let mut tx = db.pool.begin().await.unwrap();
    assert!(ring.erase(&mut tx, household).await.unwrap());
    // Another request reads meanwhile: the erasure has not committed, the key still opens.
    assert!(ring.for_opening(&mut conn, household).await.unwrap().is_some());
    tx.commit().await.unwrap();
    assert!(ring.for_opening(&mut conn, household).await.unwrap().is_none(), "not served from the cache");
    assert!(matches!(ring.for_sealing(&mut conn, household).await, Err(KeyringError::Erased)));
}

#[tokio::test]
async fn the_lookup_hash_is_equal_for_equal_numbers_and_keyed_by_the_kek() {
    let ring = keyring();
    let id = "11010519491231002X";
    assert_eq!(ring.lookup(id), ring.lookup(" 11010519491231002x "));
    assert_eq!(ring.lookup(id).len(), 64);
    assert!(!ring.lookup(id).contains("110105"));
    let other_kek = Keyring::new(Arc::new(FileKek::from_bytes(&[6; 32])));
    assert_ne!(ring.lookup(id), other_kek.lookup(id));
}
