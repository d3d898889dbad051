//! The key-encryption key (KEK): it wraps every data key and keys the lookup
//! hash. It lives outside the database (a file mounted from a k8s secret), so
//! a copy of the database alone opens nothing.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use ring::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use ring::rand::{SecureRandom, SystemRandom};
use std::path::Path;
use uuid::Uuid;

#[derive(Debug, thiserror::Error)]
pub enum KekError {
    #[error("the key-encryption key file {path}: {reason}")]
    File { path: String, reason: String },
    #[error("the key-encryption key (ONEDOOR_KEK) {0}")]
    Value(String),
    #[error("a wrapped data key did not unwrap under key-encryption key {kek_id}")]
    Unwrap { kek_id: String },
}

/// Wraps and unwraps data keys. A file today ([`FileKek`]); a KMS (an HSM,
/// a cloud KMS) implements the same three operations.
pub trait Kek: Send + Sync + std::fmt::Debug {
    /// Names the key, stored beside each wrapped data key (for rotation).
    fn id(&self) -> &str;
    /// Wraps a household's data key (the household id is bound in).
    fn wrap(&self, household_id: Uuid, data_key: &[u8; 32]) -> Vec<u8>;
    fn unwrap(&self, household_id: Uuid, wrapped: &[u8]) -> Result<[u8; 32], KekError>;
    /// The secret of the lookup hash (HMAC) that stands for ID numbers in
    /// lookup columns: the same for every service that shares the KEK.
    fn lookup_secret(&self) -> [u8; 32];
    /// The key that seals personal fields on the broker (see
    /// [`crate::Transit`]): the same for every service that shares the KEK.
    fn transit_secret(&self) -> [u8; 32];
}

/// A KEK of 32 random bytes in base64 (`cargo xtask kek` makes one): from a
/// k8s secret (`ONEDOOR_KEK`) or a file (`ONEDOOR_KEK_FILE`).
pub struct FileKek {
    id: String,
    key: LessSafeKey,
    lookup: [u8; 32],
    transit: [u8; 32],
}

impl std::fmt::Debug for FileKek {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FileKek").field("id", &self.id).finish_non_exhaustive()
    }
}

impl FileKek {
    pub fn from_file(path: &Path) -> Result<Self, KekError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| KekError::File { path: path.display().to_string(), reason: e.to_string() })?;
        Self::from_base64(&text).map_err(|reason| KekError::File { path: path.display().to_string(), reason })
    }

    /// The KEK from its base64 text; the error says what is wrong with it.
    pub fn from_base64(text: &str) -> Result<Self, String> {
        let bytes = STANDARD.decode(text.trim()).map_err(|_| "is not base64".to_string())?;
        let bytes: [u8; 32] = bytes.try_into().map_err(|_| "does not hold 32 bytes".to_string())?;
        Ok(Self::from_bytes(&bytes))
    }

    pub fn from_bytes(bytes: &[u8; 32]) -> Self {
        let digest = ring::digest::digest(&ring::digest::SHA256, bytes);
        let id = digest.as_ref()[..6].iter().map(|b| format!("{b:02x}")).collect();
        // Secrets for other uses, derived so that none reveals the KEK or another.
        let derive_key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, bytes);
        let derive = |label: &[u8]| {
            let mut out = [0u8; 32];
            out.copy_from_slice(ring::hmac::sign(&derive_key, label).as_ref());
            out
        };
        let key = LessSafeKey::new(UnboundKey::new(&AES_256_GCM, bytes).expect("a 32-byte AES-256 key"));
        Self { id, key, lookup: derive(b"onedoor id-number lookup v1"), transit: derive(b"onedoor transit v1") }
    }

    /// A new random KEK, base64, for a file.
    pub fn generate() -> String {
        let mut bytes = [0u8; 32];
        SystemRandom::new().fill(&mut bytes).expect("the system's random source");
        STANDARD.encode(bytes)
    }

    /// The development KEK: the same on every developer's machine and in the
    /// tests, so anything sealed with it is sealed only in name. The
    /// services refuse it when `ONEDOOR_ENV=production`.
    pub fn development() -> Self {
        let digest = ring::digest::digest(&ring::digest::SHA256, b"onedoor development KEK: never in production");
        let mut bytes = [0u8; 32];
        bytes.copy_from_slice(digest.as_ref());
        Self::from_bytes(&bytes)
    }
}

impl Kek for FileKek {
    fn id(&self) -> &str {
        &self.id
    }

    fn wrap(&self, household_id: Uuid, data_key: &[u8; 32]) -> Vec<u8> {
        let mut nonce = [0u8; NONCE_LEN];
        SystemRandom::new().fill(&mut nonce).expect("the system's random source");
        let mut in_out = data_key.to_vec();
        self.key
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(household_id.as_bytes()),
                &mut in_out,
            )
            .expect("AES-GCM wraps 32 bytes");
        let mut wrapped = nonce.to_vec();
        wrapped.extend_from_slice(&in_out);
        wrapped
    }

    fn unwrap(&self, household_id: Uuid, wrapped: &[u8]) -> Result<[u8; 32], KekError> {
        let error = || KekError::Unwrap { kek_id: self.id.clone() };
        if wrapped.len() < NONCE_LEN {
            return Err(error());
        }
        let (nonce, rest) = wrapped.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| error())?;
        let mut in_out = rest.to_vec();
        let plain =
            self.key.open_in_place(nonce, Aad::from(household_id.as_bytes()), &mut in_out).map_err(|_| error())?;
        plain.try_into().map_err(|_| error())
    }

    fn lookup_secret(&self) -> [u8; 32] {
        self.lookup
    }

    fn transit_secret(&self) -> [u8; 32] {
        self.transit
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_wrapped_data_key_unwraps_only_under_its_kek_and_household() {
        let kek = FileKek::from_bytes(&[1; 32]);
        let household = Uuid::now_v7();
        let wrapped = kek.wrap(household, &[9; 32]);
        assert!(!wrapped.windows(32).any(|w| w == [9; 32]));
        assert_eq!(kek.unwrap(household, &wrapped).unwrap(), [9; 32]);
        assert!(kek.unwrap(Uuid::now_v7(), &wrapped).is_err());
        assert!(FileKek::from_bytes(&[2; 32]).unwrap(household, &wrapped).is_err());
    }

    #[test]
    fn a_kek_file_holds_32_bytes_in_base64() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("kek");
        std::fs::write(&path, format!("{}\n", FileKek::generate())).unwrap();
        let kek = FileKek::from_file(&path).unwrap();
        assert_eq!(kek.id().len(), 12);
        std::fs::write(&path, "c2hvcnQ=").unwrap();
        assert!(matches!(FileKek::from_file(&path), Err(KekError::File { .. })));
        assert_ne!(kek.id(), FileKek::development().id());
    }
}
