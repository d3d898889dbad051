//! The case's events in their stored format (`onedoor_stored_events::case`),
//! and back. The domain's types may change freely; what is in the log only
//! changes as a new stored version with an upcaster.

use crate::domain::application::{Application, Member};
use crate::domain::case::{CaseDocument, CaseEvent, InformedBy, LaneReport, SentNotification};
use crate::domain::materials::MissingMaterial;
use onedoor_event_store::{NewEvent, RecordedEvent, StoreError, Upcasters};
use onedoor_personal_data::DataKey;
use onedoor_stored_events::StoredFormat;
use onedoor_stored_events::case::{
    ApplicationV1, CaseEventV1, InformedByV1, LaneReportV1, MemberV1, MissingMaterialV1,
};
use onedoor_stored_events::shared::each;
use uuid::Uuid;

/// How older stored versions of the case's events are read (none yet: v1 is the first).
pub fn upcasters() -> Upcasters {
    Upcasters::new()
}

/// The stored event, not sealed yet: see [`seal`].
pub fn encode(event: &CaseEvent) -> Result<NewEvent, StoreError> {
    let stored = to_stored(event.clone());
    Ok(NewEvent::new(stored.event_type(), CaseEventV1::VERSION, serde_json::to_value(&stored)?))
}

/// Whether an event of this type may hold personal fields (and so needs
/// the household's key: one erased takes no more of them).
pub fn is_personal(event: &NewEvent) -> bool {
    !CaseEventV1::personal_fields(&event.event_type).is_empty()
}

/// Seals the event's personal fields with the household's key.
pub fn seal(event: &mut NewEvent, key: &DataKey) {
    CaseEventV1::personal_fields(&event.event_type).seal(&mut event.payload, key);
}

/// The event, its personal fields opened with the household's key (without
/// one, they read as erased).
pub fn decode(recorded: &RecordedEvent, key: Option<&DataKey>) -> Result<CaseEvent, StoreError> {
    Ok(from_stored(recorded.decode(CaseEventV1::personal_fields(&recorded.event_type), key)?))
}

/// The household a case stream belongs to, as its first event names it
/// (plain in the log); `None` for a case stored before the register.
pub fn household_of(recorded: &[RecordedEvent]) -> Option<Uuid> {
    recorded.first().and_then(|e| household_named_by(&e.payload))
}

/// [`household_of`], from the stream's first event as stored.
pub fn household_named_by(first: &serde_json::Value) -> Option<Uuid> {
    first.get("household_id").and_then(|id| id.as_str()).and_then(|id| Uuid::parse_str(id).ok())
}

fn to_stored(event: CaseEvent) -> CaseEventV1 {
    match event {
        CaseEvent::ApplicationSubmitted {
            case_number,
            accepted_by,
            submitted_at,
            application,
            missing_materials,
            household_id,
        } => {
            let a = *application;
            CaseEventV1::ApplicationSubmitted {
                case_number,
                accepted_by,
                submitted_at,
                application: Box::new(ApplicationV1 {
                    applicant: a.applicant.into(),
                    division_code: a.division_code,
                    address: a.address,
                    hukou: a.hukou.into(),
                    members: a
                        .members
                        .into_iter()
                        .map(|m| MemberV1 {
                            name: m.name,
                            id_number: m.id_number,
                            relation: m.relation,
                            disability: m.disability,
                            in_school: m.in_school,
                        })
                        .collect(),
                    monthly_income_fen: a.monthly_income_fen,
                    assets_fen: a.assets_fen,
                    existing_support: each(a.existing_support),
                    requests: each(a.requests),
                    materials: a.materials,
                }),
                missing_materials: missing_materials
                    .into_iter()
                    .map(|m| MissingMaterialV1 { code: m.code, needed_for: each(m.needed_for) })
                    .collect(),
                household_id,
            }
        }
        CaseEvent::ApplicationAccepted { accepted_at } => CaseEventV1::ApplicationAccepted { accepted_at },
        CaseEvent::ReferralIssued { referral_id, department, issued_at, deadline } => {
            CaseEventV1::ReferralIssued { referral_id, department: department.into(), issued_at, deadline }
        }
        CaseEvent::MaterialsSupplemented { materials, supplemented_at, supplemented_by } => {
            CaseEventV1::MaterialsSupplemented { materials, supplemented_at, supplemented_by }
        }
        CaseEvent::LaneReported { event_id, department, referral_id, lane_version, by, occurred_at, report } => {
            CaseEventV1::LaneReported {
                event_id,
                department: department.into(),
                referral_id,
                lane_version,
                by,
                occurred_at,
                report: match report {
                    LaneReport::SignedFor => LaneReportV1::SignedFor,
                    LaneReport::SupplementRequested { materials, note } => {
                        LaneReportV1::SupplementRequested { materials, note }
                    }
                    LaneReport::ProposalMade { outcome, amount_fen, reason } => {
                        LaneReportV1::ProposalMade { outcome: outcome.into(), amount_fen, reason }
                    }
                    LaneReport::Approved { amount_fen, override_reason } => {
                        LaneReportV1::Approved { amount_fen, override_reason }
                    }
                    LaneReport::Rejected { reason } => LaneReportV1::Rejected { reason },
                    LaneReport::Disbursed { amount_fen, channel } => {
                        LaneReportV1::Disbursed { amount_fen, channel: channel.into() }
                    }
                    LaneReport::Returned { reason } => LaneReportV1::Returned { reason },
                    LaneReport::Withdrawn => LaneReportV1::Withdrawn,
                    LaneReport::DeadlineExtended { deadline, reason } => {
                        LaneReportV1::DeadlineExtended { deadline, reason }
                    }
                },
            }
        }
        CaseEvent::ApplicationWithdrawn { reason, withdrawn_at, withdrawn_by } => {
            CaseEventV1::ApplicationWithdrawn { reason, withdrawn_at, withdrawn_by }
        }
        CaseEvent::LineAdded { request, added_at, added_by } => {
            CaseEventV1::LineAdded { request: request.into(), added_at, added_by }
        }
        CaseEvent::HandedOver { to, handed_over_at, handed_over_by } => {
            CaseEventV1::HandedOver { to, handed_over_at, handed_over_by }
        }
        CaseEvent::NotificationSent(n) => CaseEventV1::NotificationSent {
            notification_id: n.notification_id,
            kind: n.kind,
            provider: n.provider,
            sent_at: n.sent_at,
        },
        CaseEvent::DocumentAttached(d) => CaseEventV1::DocumentAttached {
            document_id: d.document_id,
            material: d.material,
            sha256: d.sha256,
            content_type: d.content_type,
            size: d.size,
            attached_at: d.attached_at,
            attached_by: d.attached_by,
        },
        CaseEvent::CaseClosed { informed_by, note, closed_at, closed_by } => CaseEventV1::CaseClosed {
            informed_by: match informed_by {
                InformedBy::Sms => InformedByV1::Sms,
                InformedBy::Letter => InformedByV1::Letter,
                InformedBy::InPerson => InformedByV1::InPerson,
            },
            note,
            closed_at,
            closed_by,
        },
        CaseEvent::PersonalDataErased { erased_at, erased_by } => {
            CaseEventV1::PersonalDataErased { erased_at, erased_by }
        }
    }
}

fn from_stored(event: CaseEventV1) -> CaseEvent {
    match event {
        CaseEventV1::ApplicationSubmitted {
            case_number,
            accepted_by,
            submitted_at,
            application,
            missing_materials,
            household_id,
        } => {
            let a = *application;
            CaseEvent::ApplicationSubmitted {
                household_id,
                case_number,
                accepted_by,
                submitted_at,
                application: Box::new(Application {
                    applicant: a.applicant.into(),
                    division_code: a.division_code,
                    address: a.address,
                    hukou: a.hukou.into(),
                    members: a
                        .members
                        .into_iter()
                        .map(|m| Member {
                            name: m.name,
                            id_number: m.id_number,
                            relation: m.relation,
                            disability: m.disability,
                            in_school: m.in_school,
                        })
                        .collect(),
                    monthly_income_fen: a.monthly_income_fen,
                    assets_fen: a.assets_fen,
                    existing_support: each(a.existing_support),
                    requests: each(a.requests),
                    materials: a.materials,
                }),
                missing_materials: missing_materials
                    .into_iter()
                    .map(|m| MissingMaterial { code: m.code, needed_for: each(m.needed_for) })
                    .collect(),
            }
        }
        CaseEventV1::ApplicationAccepted { accepted_at } => CaseEvent::ApplicationAccepted { accepted_at },
        CaseEventV1::ReferralIssued { referral_id, department, issued_at, deadline } => {
            CaseEvent::ReferralIssued { referral_id, department: department.into(), issued_at, deadline }
        }
        CaseEventV1::MaterialsSupplemented { materials, supplemented_at, supplemented_by } => {
            CaseEvent::MaterialsSupplemented { materials, supplemented_at, supplemented_by }
        }
        CaseEventV1::LaneReported { event_id, department, referral_id, lane_version, by, occurred_at, report } => {
            CaseEvent::LaneReported {
                event_id,
                department: department.into(),
                referral_id,
                lane_version,
                by,
                occurred_at,
                report: match report {
                    LaneReportV1::SignedFor => LaneReport::SignedFor,
                    LaneReportV1::SupplementRequested { materials, note } => {
                        LaneReport::SupplementRequested { materials, note }
                    }
                    LaneReportV1::ProposalMade { outcome, amount_fen, reason } => {
                        LaneReport::ProposalMade { outcome: outcome.into(), amount_fen, reason }
                    }
                    LaneReportV1::Approved { amount_fen, override_reason } => {
                        LaneReport::Approved { amount_fen, override_reason }
                    }
                    LaneReportV1::Rejected { reason } => LaneReport::Rejected { reason },
                    LaneReportV1::Disbursed { amount_fen, channel } => {
                        LaneReport::Disbursed { amount_fen, channel: channel.into() }
                    }
                    LaneReportV1::Returned { reason } => LaneReport::Returned { reason },
                    LaneReportV1::Withdrawn => LaneReport::Withdrawn,
                    LaneReportV1::DeadlineExtended { deadline, reason } => {
                        LaneReport::DeadlineExtended { deadline, reason }
                    }
                },
            }
        }
        CaseEventV1::ApplicationWithdrawn { reason, withdrawn_at, withdrawn_by } => {
            CaseEvent::ApplicationWithdrawn { reason, withdrawn_at, withdrawn_by }
        }
        CaseEventV1::LineAdded { request, added_at, added_by } => {
            CaseEvent::LineAdded { request: request.into(), added_at, added_by }
        }
        CaseEventV1::HandedOver { to, handed_over_at, handed_over_by } => {
            CaseEvent::HandedOver { to, handed_over_at, handed_over_by }
        }
        CaseEventV1::NotificationSent { notification_id, kind, provider, sent_at } => {
            CaseEvent::NotificationSent(SentNotification { notification_id, kind, provider, sent_at })
        }
        CaseEventV1::DocumentAttached {
            document_id,
            material,
            sha256,
            content_type,
            size,
            attached_at,
            attached_by,
        } => CaseEvent::DocumentAttached(CaseDocument {
            document_id,
            material,
            sha256,
            content_type,
            size,
            attached_at,
            attached_by,
        }),
        CaseEventV1::CaseClosed { informed_by, note, closed_at, closed_by } => CaseEvent::CaseClosed {
            informed_by: match informed_by {
                InformedByV1::Sms => InformedBy::Sms,
                InformedByV1::Letter => InformedBy::Letter,
                InformedByV1::InPerson => InformedBy::InPerson,
            },
            note,
            closed_at,
            closed_by,
        },
        CaseEventV1::PersonalDataErased { erased_at, erased_by } => {
            CaseEvent::PersonalDataErased { erased_at, erased_by }
        }
    }
}

/// The household register's events in their stored format (`household.v1`).
pub mod household {
    use crate::domain::household::{HouseholdEvent, Source};
    use onedoor_event_store::{NewEvent, RecordedEvent, StoreError};
    use onedoor_personal_data::DataKey;
    use onedoor_stored_events::StoredFormat;
    use onedoor_stored_events::household::{HouseholdEventV1 as V1, SourceV1};
    use onedoor_stored_events::shared::each;

    /// The stored event, its personal fields sealed with the household's key.
    pub fn encode(event: &HouseholdEvent, key: &DataKey) -> Result<NewEvent, StoreError> {
        let stored = to_stored(event.clone());
        let mut payload = serde_json::to_value(&stored)?;
        V1::personal_fields(stored.event_type()).seal(&mut payload, key);
        Ok(NewEvent::new(stored.event_type(), V1::VERSION, payload))
    }

    /// The event, its personal fields opened (or read as erased).
    pub fn decode(recorded: &RecordedEvent, key: Option<&DataKey>) -> Result<HouseholdEvent, StoreError> {
        Ok(from_stored(recorded.decode(V1::personal_fields(&recorded.event_type), key)?))
    }

    fn source(s: Source) -> SourceV1 {
        match s {
            Source::Declared => SourceV1::Declared,
            Source::Verified => SourceV1::Verified,
        }
    }

    fn source_back(s: SourceV1) -> Source {
        match s {
            SourceV1::Declared => Source::Declared,
            SourceV1::Verified => Source::Verified,
        }
    }

    fn to_stored(event: HouseholdEvent) -> V1 {
        match event {
            HouseholdEvent::Registered { township, division_code, registered_at, registered_by } => {
                V1::HouseholdRegistered { township, division_code, registered_at, registered_by }
            }
            HouseholdEvent::MemberJoined { id_number, name, relation, effective, source: s, case_id } => {
                V1::MemberJoined { id_number, name, relation, effective, source: source(s), case_id }
            }
            HouseholdEvent::MemberLeft { id_number, effective, source: s, case_id } => {
                V1::MemberLeft { id_number, effective, source: source(s), case_id }
            }
            HouseholdEvent::SupportChanged { support, effective, source: s, case_id } => {
                V1::SupportChanged { support: each(support), effective, source: source(s), case_id }
            }
        }
    }

    fn from_stored(event: V1) -> HouseholdEvent {
        match event {
            V1::HouseholdRegistered { township, division_code, registered_at, registered_by } => {
                HouseholdEvent::Registered { township, division_code, registered_at, registered_by }
            }
            V1::MemberJoined { id_number, name, relation, effective, source, case_id } => {
                HouseholdEvent::MemberJoined {
                    id_number,
                    name,
                    relation,
                    effective,
                    source: source_back(source),
                    case_id,
                }
            }
            V1::MemberLeft { id_number, effective, source, case_id } => {
                HouseholdEvent::MemberLeft { id_number, effective, source: source_back(source), case_id }
            }
            V1::SupportChanged { support, effective, source, case_id } => HouseholdEvent::SupportChanged {
                support: each(support),
                effective,
                source: source_back(source),
                case_id,
            },
        }
    }
}
