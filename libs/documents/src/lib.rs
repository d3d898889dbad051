//! Scanned materials (a document camera's JPEG, a scanner's PDF) in object
//! storage, shared by the window, which uploads them, and the departments,
//! which read those of their referrals.
//!
//! Files are content-addressed (`sha256/<hex>`): the same scan uploaded twice
//! is stored once, and what a case's log records (the digest) always names
//! the same bytes. A file is written whole or not at all (the object store
//! writes to a temporary name and renames, or uploads in one request), so an
//! upload that fails half-way leaves nothing behind. The type of a file is
//! read from its first bytes, never taken from a header.
//!
//! Where the files live is configuration (`ONEDOOR_DOCUMENT_STORE`): a
//! folder (the default, `.onedoor/documents`), or `s3://<bucket>` with the
//! endpoint and credentials of an S3-compatible store in the standard
//! `AWS_*` variables (`AWS_ENDPOINT`, `AWS_ACCESS_KEY_ID`, ...).

use bytes::Bytes;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::sync::Arc;

/// The largest document accepted: a multi-page scan at a document camera's resolution.
pub const MAX_DOCUMENT_BYTES: usize = 20 * 1024 * 1024;

/// The variable naming where documents are stored.
pub const STORE_ENV: &str = "ONEDOOR_DOCUMENT_STORE";

/// The default location on one machine.
pub const DEFAULT_LOCATION: &str = ".onedoor/documents";

/// The kinds of file a scan may be.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub enum DocumentType {
    #[serde(rename = "image/jpeg")]
    Jpeg,
    #[serde(rename = "image/png")]
    Png,
    #[serde(rename = "application/pdf")]
    Pdf,
}

impl DocumentType {
    pub const ALL: [DocumentType; 3] = [Self::Jpeg, Self::Png, Self::Pdf];

    pub fn mime(self) -> &'static str {
        match self {
            Self::Jpeg => "image/jpeg",
            Self::Png => "image/png",
            Self::Pdf => "application/pdf",
        }
    }

    /// The type a `Content-Type` header declares (parameters ignored).
    pub fn from_mime(header: &str) -> Option<Self> {
        let essence = header.split(';').next().unwrap_or_default().trim().to_ascii_lowercase();
        Self::ALL.into_iter().find(|t| t.mime() == essence)
    }

    /// The type the bytes are, by their signature; `None` for anything else.
    pub fn sniff(bytes: &[u8]) -> Option<Self> {
        if bytes.starts_with(&[0xFF, 0xD8, 0xFF]) {
            Some(Self::Jpeg)
        } else if bytes.starts_with(&[0x89, b'P', b'N', b'G', 0x0D, 0x0A, 0x1A, 0x0A]) {
            Some(Self::Png)
        } else if bytes.starts_with(b"%PDF-") {
            Some(Self::Pdf)
        } else {
            None
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum DocumentError {
    #[error("document store: {0}")]
    Store(#[from] object_store::Error),
    #[error("document store location {location:?}: {reason}")]
    Location { location: String, reason: String },
}

/// A file as stored: its digest (the key) and size.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stored {
    pub sha256: String,
    pub size: u64,
    /// Whether the store held these bytes before (then they are not ours to remove).
    pub existed: bool,
}

/// Where documents are kept.
#[derive(Clone, Debug)]
pub struct DocumentStore {
    store: Arc<dyn ObjectStore>,
}

impl DocumentStore {
    /// A store at `location`: `s3://<bucket>[/...]` (configured by the
    /// `AWS_*` variables), or a folder, created if missing.
    pub fn open(location: &str) -> Result<Self, DocumentError> {
        let fail = |reason: String| DocumentError::Location { location: location.to_string(), reason };
        let store: Arc<dyn ObjectStore> = if location.starts_with("s3://") {
            // The S3 client's TLS: ring, as everywhere in the process (see onedoor_telemetry).
            let _ = rustls::crypto::ring::default_provider().install_default();
            let s3 = object_store::aws::AmazonS3Builder::from_env().with_url(location).build();
            Arc::new(s3.map_err(|e| fail(e.to_string()))?)
        } else {
            let folder = location.strip_prefix("file://").unwrap_or(location);
            std::fs::create_dir_all(folder).map_err(|e| fail(e.to_string()))?;
            let local = object_store::local::LocalFileSystem::new_with_prefix(folder);
            Arc::new(local.map_err(|e| fail(e.to_string()))?)
        };
        Ok(Self { store })
    }

    /// The store `ONEDOOR_DOCUMENT_STORE` names, or the default folder.
    pub fn from_env() -> Result<Self, DocumentError> {
        let location = std::env::var(STORE_ENV).ok().filter(|l| !l.trim().is_empty());
        Self::open(location.as_deref().unwrap_or(DEFAULT_LOCATION))
    }

    fn key(sha256: &str) -> Path {
        Path::from(format!("sha256/{sha256}"))
    }

    pub fn digest(bytes: &[u8]) -> String {
        hex::encode(Sha256::digest(bytes))
    }

    /// Stores `bytes` whole under their digest (once, however often they come).
    pub async fn put(&self, bytes: Bytes) -> Result<Stored, DocumentError> {
        let sha256 = Self::digest(&bytes);
        let size = bytes.len() as u64;
        let existed = self.contains(&sha256).await?;
        if !existed {
            self.store.put(&Self::key(&sha256), PutPayload::from(bytes)).await?;
        }
        Ok(Stored { sha256, size, existed })
    }

    /// Undoes a [`put`](Self::put) whose record could not be kept: removes
    /// the bytes unless they were there before.
    pub async fn forget(&self, stored: &Stored) -> Result<(), DocumentError> {
        if !stored.existed {
            self.store.delete(&Self::key(&stored.sha256)).await?;
        }
        Ok(())
    }

    /// Deletes a stored document's bytes (erasure: see intake's household
    /// erasure); deleting what is not there is no error.
    pub async fn delete(&self, sha256: &str) -> Result<(), DocumentError> {
        match self.store.delete(&Self::key(sha256)).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// The bytes of a stored document; `None` once they were deleted (erased).
    pub async fn get(&self, sha256: &str) -> Result<Option<Bytes>, DocumentError> {
        match self.store.get(&Self::key(sha256)).await {
            Ok(found) => Ok(Some(found.bytes().await?)),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// Whether the store holds these bytes.
    pub async fn contains(&self, sha256: &str) -> Result<bool, DocumentError> {
        match self.store.head(&Self::key(sha256)).await {
            Ok(_) => Ok(true),
            Err(object_store::Error::NotFound { .. }) => Ok(false),
            Err(e) => Err(e.into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_type_is_read_from_the_bytes() {
        assert_eq!(DocumentType::sniff(&[0xFF, 0xD8, 0xFF, 0xE0, 0, 0x10]), Some(DocumentType::Jpeg));
        assert_eq!(DocumentType::sniff(b"\x89PNG\r\n\x1a\n...."), Some(DocumentType::Png));
        assert_eq!(DocumentType::sniff(b"%PDF-1.7\n"), Some(DocumentType::Pdf));
        assert_eq!(DocumentType::sniff(b"MZ\x90\0"), None, "an executable is no scan");
        assert_eq!(DocumentType::sniff(b"<html>"), None);
        assert_eq!(DocumentType::from_mime("application/pdf; charset=binary"), Some(DocumentType::Pdf));
        assert_eq!(DocumentType::from_mime("text/html"), None);
    }

    /// The S3 client is built with TLS (and no process-wide provider chosen
    /// beforehand); reaching the store is a matter for the data centre.
    #[test]
    fn an_s3_location_builds_its_client() {
        assert!(DocumentStore::open("s3://onedoor-documents").is_ok());
        assert!(DocumentStore::open("s3://").is_err(), "a bucket is required");
    }

    #[tokio::test]
    async fn a_folder_store_keeps_each_file_once_under_its_digest_and_forgets_only_what_it_added() {
        let dir = tempfile::tempdir().unwrap();
        let store = DocumentStore::open(dir.path().to_str().unwrap()).unwrap();
        let scan = Bytes::from_static(b"%PDF-1.7 a scan");
        let first = store.put(scan.clone()).await.unwrap();
        assert_eq!(first.sha256, DocumentStore::digest(&scan));
        assert!(!first.existed);
        let again = store.put(scan.clone()).await.unwrap();
        assert!(again.existed, "content-addressed: the same bytes once");
        store.forget(&again).await.unwrap();
        assert_eq!(store.get(&first.sha256).await.unwrap(), Some(scan), "another record still names them");
        store.forget(&first).await.unwrap();
        assert!(!store.contains(&first.sha256).await.unwrap());
    }

    #[tokio::test]
    async fn a_deleted_file_is_gone_and_deleting_it_again_is_no_error() {
        let dir = tempfile::tempdir().unwrap();
        let store = DocumentStore::open(dir.path().to_str().unwrap()).unwrap();
        let stored = store.put(Bytes::from_static(b"%PDF-1.7 an erased scan")).await.unwrap();
        store.delete(&stored.sha256).await.unwrap();
        assert_eq!(store.get(&stored.sha256).await.unwrap(), None);
        store.delete(&stored.sha256).await.unwrap();
    }
}
