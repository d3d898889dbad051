//! Personal fields sealed on the broker.
//!
//! A message stays in its stream (and in the broker's disks and backups)
//! until the stream's maximum age drops it. Its personal fields are sealed
//! with the transit key, derived from the KEK that every service shares, and
//! bound to the case the message is about (the CloudEvents `subject`), so the
//! broker, and whoever reads its streams without the KEK, sees none of them.
//! Crypto-shredding does not reach a message: the erasure waits until the
//! streams have dropped the household's (see the retention).

use crate::fields::PersonalFields;
use crate::sealing::DataKey;
use serde_json::Value;
use uuid::Uuid;

/// A sealed field of a message did not open: the services do not share
/// one KEK, or the message was tampered with.
#[derive(Debug, thiserror::Error)]
#[error("a sealed field of the message did not open (is the KEK the publisher's?)")]
pub struct Unopened;

pub struct Transit {
    secret: [u8; 32],
}

impl std::fmt::Debug for Transit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Transit").finish_non_exhaustive()
    }
}

impl Transit {
    pub(crate) fn new(secret: [u8; 32]) -> Self {
        Self { secret }
    }

    /// The transit sealing of this KEK (a service has it from its keyring:
    /// [`crate::Keyring::in_transit`]).
    pub fn of(kek: &dyn crate::Kek) -> Self {
        Self::new(kek.transit_secret())
    }

    /// The key of one case's messages; `None` for an envelope whose subject
    /// is not a case id.
    fn key(&self, envelope: &Value) -> Option<DataKey> {
        let case_id = envelope.get("subject").and_then(Value::as_str).and_then(|s| Uuid::parse_str(s).ok())?;
        Some(DataKey::from_bytes(case_id, &self.secret))
    }

    /// Seals `fields` of a CloudEvents envelope about a case.
    pub fn seal(&self, envelope: &mut Value, fields: PersonalFields) {
        if let Some(key) = self.key(envelope) {
            fields.seal(envelope, &key);
        }
    }

    /// Opens `fields` of an envelope; a sealed field that does not open is
    /// an error (never read as erased: the message would be stored so).
    pub fn open(&self, envelope: &mut Value, fields: PersonalFields) -> Result<(), Unopened> {
        if !fields.any_sealed(envelope) {
            return Ok(());
        }
        let key = self.key(envelope).ok_or(Unopened)?;
        fields.open_strictly(envelope, &key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const FIELDS: PersonalFields = PersonalFields(&["/data/applicant/name"]);

    #[test]
    fn a_message_is_sealed_for_its_case_and_opens_only_with_the_same_kek() {
        let case = Uuid::now_v7();
        let plain = json!({"subject": case.to_string(), "data": {"applicant": {"name": "李四"}}});
        let mut sealed = plain.clone();
        Transit::new([1; 32]).seal(&mut sealed, FIELDS);
        assert!(!sealed.to_string().contains("李四"));
        let mut opened = sealed.clone();
        Transit::new([1; 32]).open(&mut opened, FIELDS).unwrap();
        assert_eq!(opened, plain);
        assert!(Transit::new([2; 32]).open(&mut sealed.clone(), FIELDS).is_err());
        // Moved to another case, it does not open either.
        let mut moved = sealed.clone();
        moved["subject"] = json!(Uuid::now_v7().to_string());
        assert!(Transit::new([1; 32]).open(&mut moved, FIELDS).is_err());
        // A message of an earlier publisher, plain, reads as it is.
        let mut earlier = plain.clone();
        Transit::new([1; 32]).open(&mut earlier, FIELDS).unwrap();
        assert_eq!(earlier, plain);
    }
}
