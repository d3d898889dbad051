//! One household's data key and the sealed-string format.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use ring::rand::{SecureRandom, SystemRandom};
use serde_json::Value;
use uuid::Uuid;

/// What an erased personal field reads as (已删除: deleted), in views,
/// rebuilds and exports alike; the contracts' own, which masking an ID number
/// leaves as it is.
pub use onedoor_contracts::identity::ERASED;

/// The start of every sealed field.
pub const SEALED_PREFIX: &str = "enc:v1:";

/// Whether a JSON value is a sealed field.
pub fn is_sealed(value: &Value) -> bool {
    value.as_str().is_some_and(|s| s.starts_with(SEALED_PREFIX))
}

/// A household's data key (AES-256-GCM), bound to the household: what it
/// seals opens only under the same household id.
pub struct DataKey {
    household_id: Uuid,
    key: LessSafeKey,
}

impl std::fmt::Debug for DataKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DataKey").field("household_id", &self.household_id).finish_non_exhaustive()
    }
}

impl DataKey {
    pub(crate) const LEN: usize = 32;

    pub(crate) fn from_bytes(household_id: Uuid, bytes: &[u8; Self::LEN]) -> Self {
        let key = UnboundKey::new(&AES_256_GCM, bytes).expect("a 32-byte AES-256 key");
        Self { household_id, key: LessSafeKey::new(key) }
    }

    pub fn household_id(&self) -> Uuid {
        self.household_id
    }

    /// Seals a JSON value into a sealed string.
    pub fn seal(&self, plain: &Value) -> Value {
        let mut nonce = [0u8; NONCE_LEN];
        SystemRandom::new().fill(&mut nonce).expect("the system's random source");
        let mut in_out = serde_json::to_vec(plain).expect("a JSON value serialises");
        self.key
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(self.household_id.as_bytes()),
                &mut in_out,
            )
            .expect("AES-GCM seals any length a field has");
        let mut sealed = nonce.to_vec();
        sealed.extend_from_slice(&in_out);
        Value::String(format!("{SEALED_PREFIX}{}", URL_SAFE_NO_PAD.encode(sealed)))
    }

    /// Opens a sealed string; `None` if it is not one this key sealed.
    pub fn open(&self, sealed: &str) -> Option<Value> {
        let bytes = URL_SAFE_NO_PAD.decode(sealed.strip_prefix(SEALED_PREFIX)?).ok()?;
        if bytes.len() < NONCE_LEN {
            return None;
        }
        let (nonce, rest) = bytes.split_at(NONCE_LEN);
        let mut in_out = rest.to_vec();
        let nonce = Nonce::try_assume_unique_for_key(nonce).ok()?;
        let plain = self.key.open_in_place(nonce, Aad::from(self.household_id.as_bytes()), &mut in_out).ok()?;
        serde_json::from_slice(plain).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn key(household_id: Uuid, byte: u8) -> DataKey {
        DataKey::from_bytes(household_id, &[byte; 32])
    }

    #[test]
    fn a_sealed_field_opens_to_what_was_sealed_and_shows_none_of_it() {
        let household = Uuid::now_v7();
        let key = key(household, 7);
        let sealed = key.seal(&json!("张三 110105194912310029"));
        let text = sealed.as_str().unwrap();
        assert!(text.starts_with(SEALED_PREFIX));
        assert!(!text.contains("110105"));
        assert_eq!(key.open(text), Some(json!("张三 110105194912310029")));
        // A fresh nonce each time: equal names do not give equal ciphertexts.
        assert_ne!(key.seal(&json!("张三")), key.seal(&json!("张三")));
    }

    #[test]
    fn a_sealed_field_does_not_open_under_another_key_or_household() {
        let household = Uuid::now_v7();
        let sealed = key(household, 7).seal(&json!("13800138000"));
        let text = sealed.as_str().unwrap();
        assert_eq!(key(household, 8).open(text), None);
        assert_eq!(key(Uuid::now_v7(), 7).open(text), None);
        assert_eq!(key(household, 7).open("enc:v1:AAAA"), None);
        assert_eq!(key(household, 7).open("张三"), None);
    }
}
