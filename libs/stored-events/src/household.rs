//! Intake's household register, version 1: who lives in a household (by ID
//! number, with the dates they joined and left) and the support it declared
//! (dibao, tekun, low income), each change with its effective date and its
//! source, kept across applications.

use crate::StoredFormat;
use crate::shared::SupportKindV1;
use chrono::{DateTime, NaiveDate, Utc};
use onedoor_personal_data::PersonalFields;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// An event of a household stream, as stored (`event_type` = the `type` tag).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "type")]
pub enum HouseholdEventV1 {
    HouseholdRegistered {
        township: String,
        division_code: String,
        registered_at: DateTime<Utc>,
        registered_by: String,
    },
    MemberJoined {
        id_number: String,
        name: String,
        relation: String,
        effective: NaiveDate,
        source: SourceV1,
        case_id: Option<Uuid>,
    },
    MemberLeft {
        id_number: String,
        effective: NaiveDate,
        source: SourceV1,
        case_id: Option<Uuid>,
    },
    SupportChanged {
        support: Vec<SupportKindV1>,
        effective: NaiveDate,
        source: SourceV1,
        case_id: Option<Uuid>,
    },
}

/// Where a change came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum SourceV1 {
    /// Declared by the household at the window (on an application).
    Declared,
    /// Verified later (the economic-status check, 家庭经济状况核对).
    Verified,
}

impl StoredFormat for HouseholdEventV1 {
    const STREAM_TYPE: &'static str = "household";
    const VERSION: i32 = 1;
}

impl HouseholdEventV1 {
    /// The stored `event_type` (the same as the `type` tag).
    pub fn event_type(&self) -> &'static str {
        match self {
            Self::HouseholdRegistered { .. } => "HouseholdRegistered",
            Self::MemberJoined { .. } => "MemberJoined",
            Self::MemberLeft { .. } => "MemberLeft",
            Self::SupportChanged { .. } => "SupportChanged",
        }
    }

    /// The personal fields of each event type, sealed in the log with the
    /// household's data key.
    pub fn personal_fields(event_type: &str) -> PersonalFields {
        match event_type {
            "MemberJoined" => PersonalFields(&["/id_number", "/name"]),
            "MemberLeft" => PersonalFields(&["/id_number"]),
            _ => PersonalFields::NONE,
        }
    }
}
