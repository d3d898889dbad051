//! The published language of OneDoor: the integration events that the window
//! (intake) and the four departments exchange over NATS JetStream.
//!
//! These types are a contract between separately deployed services, so they
//! change only by adding a new version (with an upcaster on the reading
//! side), never by a silent edit. Each event and version has a JSON Schema in
//! `schemas/`, generated from these types by `cargo xtask schemas`; a test
//! fails when the checked-in files differ from the code.
//!
//! On the wire an event is a CloudEvents 1.0 structured-mode JSON document
//! ([`CloudEvent`]); NATS headers add `Nats-Msg-Id` (= event id, for broker
//! deduplication), `Ce-Type` and the W3C `traceparent`.

pub mod aid_line;
pub mod china_time;
pub mod department;
pub mod identity;
pub mod intake;

pub use identity::mask_id_number;

use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// Subject prefix of every OneDoor event.
pub const SUBJECT_PREFIX: &str = "onedoor";
/// Where a service keeps the messages its consumers could not process, for
/// its operators: a stream of its own (`DEAD_LETTERS_MEDICAL_AID`), which no
/// other service may read, change or publish to (ADR 0017).
pub fn dead_letter_stream(service: &str) -> String {
    format!("DEAD_LETTERS_{}", service.to_uppercase().replace('-', "_"))
}
/// Subjects of every service's dead-letter stream: `<prefix>.<service>.<consumer>`.
pub const DEAD_LETTER_SUBJECT_PREFIX: &str = "onedoor.dead-letters";
/// The subjects of `service`'s dead-letter stream.
pub fn dead_letter_subjects(service: &str) -> String {
    format!("{DEAD_LETTER_SUBJECT_PREFIX}.{service}.>")
}
/// The subject `service`'s consumer `consumer` dead-letters on.
pub fn dead_letter_subject(service: &str, consumer: &str) -> String {
    format!("{DEAD_LETTER_SUBJECT_PREFIX}.{service}.{consumer}")
}
/// The dead-letter stream every service once shared (subjects
/// `onedoor.dlq.<consumer>`): no service may reach it any more; operators
/// move what it holds to each service's own with `cargo xtask move-dead-letters`.
pub const SHARED_DEAD_LETTER_STREAM: &str = "DEAD_LETTERS";
/// NATS header carrying the CloudEvents `type` of the body, so a consumer can
/// route a message without parsing it.
pub const CE_TYPE_HEADER: &str = "Ce-Type";
/// NATS header carrying the CloudEvents `subject` of the body: the case the
/// event belongs to. A consuming process hands all of a case's messages to
/// one of its workers by it, so they keep their order and no two of its
/// transactions wait on each other's cases.
pub const CE_SUBJECT_HEADER: &str = "Ce-Subject";

// What differs per line is in `aid_line::AID_LINES` (the doc comment below is
// part of the published JSON Schemas).
/// The four departments of the platform (of the eight aid lines of the
/// national framework, these are the ones OneDoor refers to today).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Department {
    Medical,
    Education,
    Housing,
    Temporary,
}

impl Department {
    /// Every department, in the order of [`aid_line::AID_LINES`].
    pub const ALL: [Department; aid_line::AID_LINES.len()] = {
        let mut all = [Self::Medical; aid_line::AID_LINES.len()];
        let mut i = 0;
        while i < all.len() {
            all[i] = aid_line::AID_LINES[i].department;
            i += 1;
        }
        all
    };

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Medical => "medical",
            Self::Education => "education",
            Self::Housing => "housing",
            Self::Temporary => "temporary",
        }
    }

    /// The JetStream stream the department's service publishes to.
    pub fn stream(self) -> &'static str {
        self.line().stream
    }

    /// Every subject the department publishes under.
    pub fn subjects(self) -> String {
        format!("{SUBJECT_PREFIX}.{}.>", self.as_str())
    }
}

impl std::str::FromStr for Department {
    type Err = UnknownDepartment;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL.into_iter().find(|d| d.as_str() == s).ok_or_else(|| UnknownDepartment(s.to_string()))
    }
}

impl std::fmt::Display for Department {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, thiserror::Error)]
#[error("unknown department {0:?}")]
pub struct UnknownDepartment(pub String);

/// An integration event type: its stable name, its version, who publishes it
/// and on which subject.
pub trait IntegrationEvent: Serialize + DeserializeOwned + JsonSchema {
    /// Stable name, e.g. `onedoor.intake.referral_issued`.
    const TYPE: &'static str;
    const VERSION: u32;
    /// CloudEvents `source`: the publishing service.
    const SOURCE: &'static str;

    /// The NATS subject this event is published on.
    fn subject(&self) -> String;
    /// The case (one application) the event belongs to: CloudEvents `subject`.
    fn case_id(&self) -> Uuid;

    /// CloudEvents `type`: name and version, e.g. `onedoor.intake.referral_issued.v1`.
    fn cloud_event_type() -> String {
        format!("{}.v{}", Self::TYPE, Self::VERSION)
    }

    /// The schema file in `schemas/` describing this event's `data`.
    fn schema_file() -> String {
        format!("{}.v{}.schema.json", Self::TYPE, Self::VERSION)
    }
}

/// A CloudEvents 1.0 envelope in structured mode.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CloudEvent<T> {
    pub specversion: String,
    pub id: Uuid,
    pub source: String,
    #[serde(rename = "type")]
    pub event_type: String,
    /// The case id.
    pub subject: String,
    pub time: DateTime<Utc>,
    pub datacontenttype: String,
    pub dataschema: String,
    pub data: T,
}

impl<T: IntegrationEvent> CloudEvent<T> {
    /// Wraps `data` with a fresh UUIDv7 id.
    pub fn new(data: T, time: DateTime<Utc>) -> Self {
        Self::with_id(Uuid::now_v7(), data, time)
    }

    pub fn with_id(id: Uuid, data: T, time: DateTime<Utc>) -> Self {
        Self {
            specversion: "1.0".into(),
            id,
            source: T::SOURCE.into(),
            event_type: T::cloud_event_type(),
            subject: data.case_id().to_string(),
            time,
            datacontenttype: "application/json".into(),
            dataschema: format!("urn:onedoor:schemas:{}", T::schema_file()),
            data,
        }
    }
}

/// The attributes of an envelope, read before deciding how to decode `data`.
#[derive(Debug, Clone, Deserialize)]
pub struct EnvelopeHead {
    pub id: Uuid,
    #[serde(rename = "type")]
    pub event_type: String,
    pub subject: String,
    pub time: DateTime<Utc>,
}

/// Why a message could not be decoded into the events a consumer handles.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// A type or version this build does not know (a newer publisher during a
    /// rolling upgrade): keep the message for operators, never drop it.
    #[error("unknown_event_version: {0}")]
    UnknownType(String),
    /// A known type whose body does not match its schema.
    #[error("undecodable {event_type}: {reason}")]
    Malformed { event_type: String, reason: String },
}

/// The events published on one stream, as one enum: a consumer decodes a
/// message once (routing on its `Ce-Type` header) and matches the enum
/// exhaustively, so a new event does not compile until every consumer has
/// decided what to do with it.
pub trait StreamEvents: Sized {
    /// Decodes the CloudEvents body of a message whose type is `event_type`.
    fn decode(event_type: &str, payload: &[u8]) -> Result<Self, DecodeError>;
}

/// Declares a stream's event enum and its decoder: `Variant(EventType)`.
macro_rules! stream_events {
    ($(#[$doc:meta])* $name:ident { $($variant:ident($ty:ty)),+ $(,)? }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq)]
        #[allow(clippy::large_enum_variant)] // decoded once per message and matched at once
        pub enum $name {
            $($variant(crate::CloudEvent<$ty>)),+
        }

        impl crate::StreamEvents for $name {
            fn decode(event_type: &str, payload: &[u8]) -> Result<Self, crate::DecodeError> {
                use crate::IntegrationEvent;
                $(
                    if event_type == <$ty>::cloud_event_type() {
                        let event: crate::CloudEvent<$ty> = serde_json::from_slice(payload).map_err(|e| {
                            crate::DecodeError::Malformed { event_type: event_type.to_string(), reason: e.to_string() }
                        })?;
                        if event.event_type != event_type {
                            return Err(crate::DecodeError::Malformed {
                                event_type: event_type.to_string(),
                                reason: format!("the body says it is {}", event.event_type),
                            });
                        }
                        return Ok(Self::$variant(event));
                    }
                )+
                Err(crate::DecodeError::UnknownType(event_type.to_string()))
            }
        }
    };
}
pub(crate) use stream_events;

/// Every integration event's JSON Schema, keyed by file name in `schemas/`.
pub fn schemas() -> Vec<(String, serde_json::Value)> {
    fn one<T: IntegrationEvent>() -> (String, serde_json::Value) {
        let mut schema = serde_json::to_value(schemars::schema_for!(T)).expect("schema serialises");
        if let Some(obj) = schema.as_object_mut() {
            obj.insert("$id".into(), format!("urn:onedoor:schemas:{}", T::schema_file()).into());
            obj.insert("x-cloudevents-type".into(), T::cloud_event_type().into());
        }
        (T::schema_file(), schema)
    }
    vec![
        one::<intake::ApplicationAccepted>(),
        one::<intake::ReferralIssuedV1>(),
        one::<intake::ReferralIssuedV2>(),
        one::<intake::ReferralIssuedV3>(),
        one::<intake::ReferralIssued>(),
        one::<intake::MaterialsSupplemented>(),
        one::<intake::ApplicationWithdrawn>(),
        one::<intake::CaseErased>(),
        one::<intake::DocumentAttached>(),
        one::<intake::NotificationRequested>(),
        one::<department::ReferralSignedFor>(),
        one::<department::SupplementRequested>(),
        one::<department::ProposalMade>(),
        one::<department::ReferralApproved>(),
        one::<department::ReferralRejected>(),
        one::<department::AidDisbursed>(),
        one::<department::ReferralReturned>(),
        one::<department::ReferralWithdrawn>(),
        one::<department::ReferralDeadlineExtended>(),
    ]
}

/// Renders a schema as it is checked in: pretty JSON with a final newline.
pub fn render_schema(schema: &serde_json::Value) -> String {
    let mut text = serde_json::to_string_pretty(schema).expect("schema serialises");
    text.push('\n');
    text
}

/// The personal fields of each integration event: JSON pointers into its
/// CloudEvents envelope, sealed on the broker with the transit key
/// (`onedoor_personal_data::Transit`) and opened by the consumer. Empty for
/// an event that carries ids, codes, dates and amounts only.
pub fn personal_fields(event_type: &str) -> &'static [&'static str] {
    static FIELDS: std::sync::LazyLock<std::collections::HashMap<String, &'static [&'static str]>> =
        std::sync::LazyLock::new(|| {
            use department::*;
            const REASON: &[&str] = &["/data/reason"];
            std::collections::HashMap::from([
                (
                    intake::ReferralIssued::cloud_event_type(),
                    &[
                        "/data/applicant/name",
                        "/data/applicant/id_number",
                        "/data/applicant/phone",
                        "/data/members/*/id_number",
                        "/data/request/hospital",
                        "/data/request/diagnosis",
                        "/data/request/patient_id_number",
                        "/data/request/student_id_number",
                    ][..],
                ),
                (intake::NotificationRequested::cloud_event_type(), &["/data/phone"][..]),
                (SupplementRequested::cloud_event_type(), &["/data/note"][..]),
                (ProposalMade::cloud_event_type(), REASON),
                (ReferralApproved::cloud_event_type(), &["/data/override_reason"][..]),
                (ReferralRejected::cloud_event_type(), REASON),
                (ReferralReturned::cloud_event_type(), REASON),
                (ReferralDeadlineExtended::cloud_event_type(), REASON),
            ])
        });
    FIELDS.get(event_type).copied().unwrap_or(&[])
}
