//! The keyring against a real PostgreSQL: keys made once, shared by every
//! replica, and erased for good.

use onedoor_personal_data::{ERASED, FileKek, Keyring, KeyringError, PersonalFields};
use serde_json::json;
use std::sync::Arc;
use uuid::Uuid;

async fn keyring(pool: &sqlx::PgPool) -> Keyring {
    onedoor_personal_data::migrator().run(pool).await.unwrap();
    Keyring::new(Arc::new(FileKek::from_bytes(&[5; 32])), pool.clone())
}

const FIELDS: PersonalFields = PersonalFields(&["/name"]);

#[tokio::test]
async fn a_household_has_one_key_that_every_replica_uses_and_none_stores_in_the_clear() {
    let db = onedoor_test_support::fresh_database().await;
    let (one, other) = (keyring(&db.pool).await, keyring(&db.pool).await);
    let household = Uuid::now_v7();
    let (a, b) = tokio::join!(one.for_sealing(household), other.for_sealing(household));
    let mut doc = json!({"name": "王五"});
    FIELDS.seal(&mut doc, &a.unwrap());
    let mut opened = doc.clone();
    FIELDS.open(&mut opened, Some(&b.unwrap()));
    assert_eq!(opened, json!({"name": "王五"}));
    let rows: Vec<(String, Option<Vec<u8>>)> =
        sqlx::query_as("SELECT kek_id, wrapped FROM household_keys").fetch_all(&db.pool).await.unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].1.as_ref().unwrap().len(), 12 + 32 + 16, "stored wrapped: nonce, key, tag");
}

#[tokio::test]
async fn an_erased_household_reads_as_erased_and_can_never_be_sealed_for_again() {
    let db = onedoor_test_support::fresh_database().await;
    let (one, other) = (keyring(&db.pool).await, keyring(&db.pool).await);
    let household = Uuid::now_v7();
    let mut doc = json!({"name": "赵六"});
    FIELDS.seal(&mut doc, &one.for_sealing(household).await.unwrap());
    assert!(other.for_opening(household).await.unwrap().is_some());

    assert!(one.erase(household).await.unwrap());
    assert!(!one.erase(household).await.unwrap(), "erasing twice destroys nothing more");
    let key = one.for_opening(household).await.unwrap();
    assert!(key.is_none());
    FIELDS.open(&mut doc, key.as_deref());
    assert_eq!(doc, json!({"name": ERASED}));
    assert!(matches!(one.for_sealing(household).await, Err(KeyringError::Erased)));
    // A replica that had never seen the household reads the table.
    let fresh = keyring(&db.pool).await;
    assert!(fresh.for_opening(household).await.unwrap().is_none());
    assert!(matches!(fresh.for_sealing(household).await, Err(KeyringError::Erased)));
    let wrapped: Option<Vec<u8>> =
        sqlx::query_scalar("SELECT wrapped FROM household_keys").fetch_one(&db.pool).await.unwrap();
    assert!(wrapped.is_none());

    // A household erased before it ever had a key cannot be given one.
    let never_sealed = Uuid::now_v7();
    assert!(one.erase(never_sealed).await.unwrap());
    assert!(matches!(fresh.for_sealing(never_sealed).await, Err(KeyringError::Erased)));
}

#[tokio::test]
async fn the_lookup_hash_is_equal_for_equal_numbers_and_keyed_by_the_kek() {
    let db = onedoor_test_support::fresh_database().await;
    let ring = keyring(&db.pool).await;
    let id = "11010519491231002X";
    assert_eq!(ring.lookup(id), ring.lookup(" 11010519491231002x "));
    assert_eq!(ring.lookup(id).len(), 64);
    assert!(!ring.lookup(id).contains("110105"));
    let other_kek = Keyring::new(Arc::new(FileKek::from_bytes(&[6; 32])), db.pool.clone());
    assert_ne!(ring.lookup(id), other_kek.lookup(id));
}
