//! Personal data sealed at rest, and erased by destroying its key.
//!
//! The Personal Information Protection Law asks that a household's personal
//! information can be deleted when its retention period ends (art. 19, 47),
//! and MLPS level 3 that it is stored encrypted. An event log is append-only
//! and replayed for years, so its personal fields cannot simply be deleted;
//! instead each household's personal fields are sealed with a data key of its
//! own (AES-256-GCM), and erasing the household destroys that key
//! (crypto-shredding). The events stay whole and replayable; the sealed fields
//! then read as [`ERASED`] everywhere they are opened.
//!
//! - [`Kek`]: the key-encryption key that wraps every data key (a file or a
//!   k8s secret today; a KMS implements the same trait). Data keys are stored
//!   wrapped, never in the clear.
//! - [`Keyring`]: the data keys of one service's database (`household_keys`),
//!   created on first use, cached briefly, destroyed by [`Keyring::erase`].
//! - [`PersonalFields`]: which fields of a JSON document are personal (JSON
//!   pointers, `*` for every element), sealed with [`PersonalFields::seal`]
//!   before a document is stored and opened with [`PersonalFields::open`]
//!   after it is read.
//! - [`Transit`]: personal fields of the messages on the broker, sealed with
//!   a key derived from the KEK ([`Keyring::in_transit`]).
//! - [`Keyring::lookup`]: the keyed hash (HMAC-SHA256) that stands for an ID
//!   number in a lookup column, so no index holds the plain number.
//!
//! A sealed field is a JSON string `enc:v1:<base64url(nonce ‖ ciphertext ‖
//! tag)>`, its plaintext the field's JSON; the household's id is the
//! associated data, so a sealed value cannot be moved to another household.
//! See docs/adr/0015-personal-data-sealed-per-household.md.

mod fields;
mod kek;
mod keyring;
mod sealing;
mod transit;

pub use fields::PersonalFields;
pub use kek::{FileKek, Kek, KekError};
pub use keyring::{Keyring, KeyringError, SealedPlain};
pub use sealing::{DataKey, ERASED, SEALED_PREFIX, is_sealed};
pub use transit::{Transit, Unopened};

/// The personal-data migrations (the `household_keys` table), run by every
/// service that seals.
pub fn migrator() -> sqlx::migrate::Migrator {
    sqlx::migrate!("./migrations")
}
