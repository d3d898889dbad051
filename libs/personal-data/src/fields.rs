//! Which fields of a stored document are personal, by JSON pointer.

use crate::sealing::{DataKey, ERASED, SEALED_PREFIX};
use serde_json::Value;

/// The personal fields of one kind of document: JSON pointers whose `*`
/// segment stands for every element of an array (or value of an object).
/// Only strings are sealed (names, ID numbers, phones, addresses, diagnoses,
/// free text): a sealed or erased field is still a string, so the stored
/// format's schema and its decoding are unchanged. An absent or null field
/// is left as it is.
#[derive(Debug, Clone, Copy)]
pub struct PersonalFields(pub &'static [&'static str]);

impl PersonalFields {
    pub const NONE: Self = Self(&[]);

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Seals every personal field of `document` that is still plain.
    pub fn seal(&self, document: &mut Value, key: &DataKey) {
        self.each(document, &mut |field| {
            if field.as_str().is_some_and(|s| !s.starts_with(SEALED_PREFIX)) {
                *field = key.seal(field);
            }
        });
    }

    /// Opens every sealed field of `document` with `key`; with no key (the
    /// household was erased), or one it does not open under, the field
    /// reads as [`ERASED`]. Plain fields (stored before sealing) are left.
    pub fn open(&self, document: &mut Value, key: Option<&DataKey>) {
        self.each(document, &mut |field| {
            if let Some(sealed) = field.as_str().filter(|s| s.starts_with(SEALED_PREFIX)) {
                *field = key.and_then(|k| k.open(sealed)).unwrap_or_else(|| Value::String(ERASED.into()));
            }
        });
    }

    /// Opens every sealed field of `document` with `key`, failing on one
    /// that does not open (for what must never be read as erased).
    pub fn open_strictly(&self, document: &mut Value, key: &DataKey) -> Result<(), crate::transit::Unopened> {
        let mut failed = false;
        self.each(document, &mut |field| {
            if let Some(sealed) = field.as_str().filter(|s| s.starts_with(SEALED_PREFIX)) {
                match key.open(sealed) {
                    Some(plain) => *field = plain,
                    None => failed = true,
                }
            }
        });
        if failed { Err(crate::transit::Unopened) } else { Ok(()) }
    }

    /// Whether `document` holds a personal field in the clear (stored before
    /// sealing; an erased field's [`ERASED`] is not one).
    pub fn any_plain(&self, document: &mut Value) -> bool {
        let mut found = false;
        self.each(document, &mut |field| {
            found |= field.as_str().is_some_and(|s| !s.starts_with(SEALED_PREFIX) && s != ERASED)
        });
        found
    }

    /// Replaces every personal field of `document` still in the clear by
    /// [`ERASED`]: what was stored before sealing, for a household whose key
    /// is destroyed.
    pub fn erase_plain(&self, document: &mut Value) {
        self.each(document, &mut |field| {
            if field.as_str().is_some_and(|s| !s.starts_with(SEALED_PREFIX)) {
                *field = Value::String(ERASED.into());
            }
        });
    }

    /// Whether `document` holds a sealed field.
    pub fn any_sealed(&self, document: &mut Value) -> bool {
        let mut found = false;
        self.each(document, &mut |field| found |= crate::is_sealed(field));
        found
    }

    fn each(&self, document: &mut Value, f: &mut impl FnMut(&mut Value)) {
        for pointer in self.0 {
            let segments: Vec<&str> = pointer.split('/').skip(1).collect();
            visit(document, &segments, f);
        }
    }
}

fn visit(value: &mut Value, segments: &[&str], f: &mut impl FnMut(&mut Value)) {
    let Some((first, rest)) = segments.split_first() else {
        f(value);
        return;
    };
    match (value, *first) {
        (Value::Array(items), "*") => items.iter_mut().for_each(|v| visit(v, rest, f)),
        (Value::Object(map), "*") => map.values_mut().for_each(|v| visit(v, rest, f)),
        (Value::Object(map), key) => {
            if let Some(v) = map.get_mut(key) {
                visit(v, rest, f);
            }
        }
        (Value::Array(items), index) => {
            if let Some(v) = index.parse::<usize>().ok().and_then(|i| items.get_mut(i)) {
                visit(v, rest, f);
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use uuid::Uuid;

    const APPLICATION: PersonalFields =
        PersonalFields(&["/applicant/name", "/members/*/id_number", "/requests/*/diagnosis", "/note"]);

    fn document() -> Value {
        json!({
            "applicant": {"name": "李四", "phone": "13800138000"},
            "members": [{"id_number": "110105194912310029", "relation": "self"}, {"id_number": "11010519491231002X"}],
            "requests": [{"aid": "medical", "diagnosis": "尿毒症"}, {"aid": "temporary", "amount": 100}],
            "note": null,
            "income": 120000
        })
    }

    #[test]
    fn the_personal_fields_are_sealed_and_open_to_the_same_document() {
        let key = DataKey::from_bytes(Uuid::now_v7(), &[3; 32]);
        let mut doc = document();
        APPLICATION.seal(&mut doc, &key);
        let text = doc.to_string();
        for secret in ["李四", "110105194912310029", "11010519491231002X", "尿毒症"] {
            assert!(!text.contains(secret), "{secret} left plain in {text}");
        }
        // What is not personal, and absent or null fields, are left as they are.
        assert_eq!(doc["applicant"]["phone"], "13800138000");
        assert_eq!(doc["members"][0]["relation"], "self");
        assert_eq!(doc["note"], Value::Null);
        assert!(doc["requests"][1].get("diagnosis").is_none());
        assert!(APPLICATION.any_sealed(&mut doc));
        // Sealing twice does not seal a sealed field again.
        let sealed_once = doc.clone();
        APPLICATION.seal(&mut doc, &key);
        assert_eq!(doc, sealed_once);
        APPLICATION.open(&mut doc, Some(&key));
        assert_eq!(doc, document());
    }

    #[test]
    fn without_the_key_every_sealed_field_reads_as_erased() {
        let key = DataKey::from_bytes(Uuid::now_v7(), &[3; 32]);
        let mut doc = document();
        APPLICATION.seal(&mut doc, &key);
        APPLICATION.open(&mut doc, None);
        assert_eq!(doc["applicant"]["name"], ERASED);
        assert_eq!(doc["members"][1]["id_number"], ERASED);
        assert_eq!(doc["requests"][0]["diagnosis"], ERASED);
        assert_eq!(doc["income"], 120000);
    }

    #[test]
    fn plain_fields_stored_before_sealing_are_read_as_they_are() {
        let mut doc = document();
        APPLICATION.open(&mut doc, None);
        assert_eq!(doc, document());
        assert!(!APPLICATION.any_sealed(&mut doc));
    }

    #[test]
    fn fields_left_plain_are_found_and_erased_and_sealed_or_erased_ones_are_not_plain() {
        let key = DataKey::from_bytes(Uuid::now_v7(), &[3; 32]);
        let mut plain = document();
        assert!(APPLICATION.any_plain(&mut plain));
        let mut sealed = document();
        APPLICATION.seal(&mut sealed, &key);
        assert!(!APPLICATION.any_plain(&mut sealed));
        // A sealed field among plain ones: erasing the plain ones leaves it sealed.
        plain["applicant"]["name"] = sealed["applicant"]["name"].clone();
        APPLICATION.erase_plain(&mut plain);
        assert_eq!(plain["members"][0]["id_number"], ERASED);
        assert_eq!(plain["requests"][0]["diagnosis"], ERASED);
        assert_eq!(plain["applicant"]["name"], sealed["applicant"]["name"]);
        assert_eq!(plain["applicant"]["phone"], "13800138000", "not a personal field here");
        assert!(!APPLICATION.any_plain(&mut plain), "an erased field is not plain");
    }
}
