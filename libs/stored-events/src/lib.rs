//! The stored formats of OneDoor's event logs.
//!
//! An event log is kept for years and replayed by every later version of a
//! service, so what is stored must not change when a domain struct or a
//! contract type is edited. The types here are the stored formats, separate
//! from both: a field renamed in the domain changes only the conversion in
//! the wing's `store.rs`, never the bytes in the log. Each stream type's
//! format has a JSON Schema in `schemas/stored/` (written by `cargo xtask
//! schemas`; a test fails when the code and the file differ). A change to a
//! stored format is a new version (`V2` types beside `V1`) with an upcaster
//! from the old one, registered in the wing's `Upcasters`.
//!
//! - [`case`]: intake's case stream (`case.v1`).
//! - [`household`]: intake's household register (`household.v1`).
//! - [`lane`]: a department's lane stream (`lane.v1`, `lane.v2`).
//! - [`shared`]: shapes both wings store (a request, an applicant, a household).

pub mod case;
pub mod household;
pub mod lane;
pub mod shared;

use schemars::JsonSchema;

/// A stored format: its stream type and version name its schema file.
pub trait StoredFormat: JsonSchema {
    const STREAM_TYPE: &'static str;
    const VERSION: i32;

    fn schema_file() -> String {
        format!("{}.v{}.schema.json", Self::STREAM_TYPE, Self::VERSION)
    }
}

/// Every stored format's JSON Schema, keyed by file name in `schemas/stored/`.
pub fn schemas() -> Vec<(String, serde_json::Value)> {
    fn one<T: StoredFormat>() -> (String, serde_json::Value) {
        let mut schema = serde_json::to_value(schemars::schema_for!(T)).expect("schema serialises");
        if let Some(obj) = schema.as_object_mut() {
            obj.insert("$id".into(), format!("urn:onedoor:stored:{}", T::schema_file()).into());
        }
        (T::schema_file(), schema)
    }
    vec![
        one::<case::CaseEventV1>(),
        one::<household::HouseholdEventV1>(),
        one::<lane::LaneEventV1>(),
        one::<lane::LaneEventV2>(),
    ]
}

/// Declares a stored copy of a unit-variant enum, with conversions both
/// ways (exhaustive: a new variant in the domain does not compile until it
/// has its stored form).
macro_rules! stored_enum {
    ($(#[$attr:meta])* $stored:ident <=> $domain:path { $($variant:ident),+ $(,)? }) => {
        #[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize, schemars::JsonSchema)]
        $(#[$attr])*
        pub enum $stored {
            $($variant),+
        }

        impl From<$domain> for $stored {
            fn from(value: $domain) -> Self {
                use $domain as D;
                match value {
                    $(D::$variant => Self::$variant),+
                }
            }
        }

        impl From<$stored> for $domain {
            fn from(value: $stored) -> Self {
                use $domain as D;
                match value {
                    $($stored::$variant => D::$variant),+
                }
            }
        }
    };
}
pub(crate) use stored_enum;
