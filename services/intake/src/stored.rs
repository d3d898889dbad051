//! The case's events in their stored format (`onedoor_stored_events::case`),
//! and back. The domain's types may change freely; what is in the log only
//! changes as a new stored version with an upcaster.

use crate::domain::application::{Application, Member};
use crate::domain::case::{CaseEvent, InformedBy, LaneReport};
use crate::domain::materials::MissingMaterial;
use onedoor_event_store::{NewEvent, RecordedEvent, StoreError, Upcasters};
use onedoor_stored_events::StoredFormat;
use onedoor_stored_events::case::{
    ApplicationV1, CaseEventV1, InformedByV1, LaneReportV1, MemberV1, MissingMaterialV1,
};
use onedoor_stored_events::shared::each;

/// How older stored versions of the case's events are read (none yet: v1 is the first).
pub fn upcasters() -> Upcasters {
    Upcasters::new()
}

pub fn encode(event: &CaseEvent) -> Result<NewEvent, StoreError> {
    let stored = to_stored(event.clone());
    Ok(NewEvent::new(stored.event_type(), CaseEventV1::VERSION, serde_json::to_value(&stored)?))
}

pub fn decode(recorded: &RecordedEvent) -> Result<CaseEvent, StoreError> {
    Ok(from_stored(recorded.decode::<CaseEventV1>()?))
}

fn to_stored(event: CaseEvent) -> CaseEventV1 {
    match event {
        CaseEvent::ApplicationSubmitted { case_number, accepted_by, submitted_at, application, missing_materials } => {
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
            }
        }
        CaseEvent::ApplicationAccepted { accepted_at } => CaseEventV1::ApplicationAccepted { accepted_at },
        CaseEvent::ReferralIssued { referral_id, department, issued_at, deadline } => {
            CaseEventV1::ReferralIssued { referral_id, department: department.into(), issued_at, deadline }
        }
        CaseEvent::MaterialsSupplemented { materials, supplemented_at, supplemented_by } => {
            CaseEventV1::MaterialsSupplemented { materials, supplemented_at, supplemented_by }
        }
        CaseEvent::LaneReported { event_id, department, referral_id, lane_version, occurred_at, report } => {
            CaseEventV1::LaneReported {
                event_id,
                department: department.into(),
                referral_id,
                lane_version,
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
                },
            }
        }
        CaseEvent::ApplicationWithdrawn { reason, withdrawn_at, withdrawn_by } => {
            CaseEventV1::ApplicationWithdrawn { reason, withdrawn_at, withdrawn_by }
        }
        CaseEvent::LineAdded { request, added_at, added_by } => {
            CaseEventV1::LineAdded { request: request.into(), added_at, added_by }
        }
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
        } => {
            let a = *application;
            CaseEvent::ApplicationSubmitted {
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
        CaseEventV1::LaneReported { event_id, department, referral_id, lane_version, occurred_at, report } => {
            CaseEvent::LaneReported {
                event_id,
                department: department.into(),
                referral_id,
                lane_version,
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
                },
            }
        }
        CaseEventV1::ApplicationWithdrawn { reason, withdrawn_at, withdrawn_by } => {
            CaseEvent::ApplicationWithdrawn { reason, withdrawn_at, withdrawn_by }
        }
        CaseEventV1::LineAdded { request, added_at, added_by } => {
            CaseEvent::LineAdded { request: request.into(), added_at, added_by }
        }
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
    }
}
