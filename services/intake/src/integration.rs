//! Intake and the published language (`onedoor-contracts`), both ways:
//! each change to a case becomes the integration events that tell the
//! departments, carrying what each needs and no more (data minimisation);
//! and each department event received becomes the report it makes about its
//! lane. The applicant's messages leave the same way (`NotificationRequested`,
//! sent by `crate::notifications`).

use crate::domain::case::{Case, CaseDocument, CaseEvent, LaneReport};
use crate::domain::materials::MaterialsCatalogue;
use chrono::{DateTime, Utc};
use onedoor_contracts::department::{DepartmentEvent, LaneRef};
use onedoor_contracts::intake::{
    ApplicationAccepted, ApplicationWithdrawn, CaseErased, DocumentAttached, HouseholdFacts, HouseholdMember,
    MaterialsSupplemented, NotificationKind, NotificationRequested, ReferralIssued, ReferredApplicant,
    ReferredHousehold,
};
use onedoor_contracts::{CloudEvent, Department, IntegrationEvent};
use onedoor_event_store::outbox::OutboxMessage;
use uuid::Uuid;

fn message<T: IntegrationEvent>(data: T, now: DateTime<Utc>) -> Result<OutboxMessage, serde_json::Error> {
    OutboxMessage::announcing(&CloudEvent::new(data, now))
}

/// A message to the applicant: what it says and to which phone (never an ID number).
fn notification(
    case: &Case,
    kind: NotificationKind,
    params: &[(&str, String)],
    now: DateTime<Utc>,
) -> Option<NotificationRequested> {
    let app = case.application.as_ref()?;
    let mut all: std::collections::BTreeMap<String, String> =
        params.iter().map(|(k, v)| (k.to_string(), v.clone())).collect();
    all.insert("case_number".into(), case.case_number.clone());
    Some(NotificationRequested {
        notification_id: Uuid::now_v7(),
        case_id: case.case_id,
        kind,
        phone: app.applicant.phone.clone(),
        params: all,
        requested_at: now,
    })
}

/// The missing items for a message: SMS template variables are short (35
/// characters at Alibaba Cloud), so a long list names the first item and
/// how many there are; the printed notice lists them all.
fn sms_list(items: &[&str]) -> String {
    let all = items.join("、");
    if all.chars().count() <= 35 { all } else { format!("{}等{}项材料", items[0], items.len()) }
}

/// `8400.00`: an amount in yuan for a message.
fn yuan(fen: i64) -> String {
    format!("{}.{:02}", fen / 100, (fen % 100).abs())
}

/// A scan, announced to each department whose referrals need its material.
fn documents(
    case: &Case,
    d: &CaseDocument,
    referral_ids: &[Uuid],
    now: DateTime<Utc>,
) -> Result<Vec<OutboxMessage>, serde_json::Error> {
    let mut by_department: std::collections::BTreeMap<Department, Vec<Uuid>> = Default::default();
    for id in referral_ids {
        if let Some(line) = case.line_of_referral(*id) {
            by_department.entry(line.department).or_default().push(*id);
        }
    }
    by_department.into_iter().map(|(department, ids)| message(document(case, d, department, ids), now)).collect()
}

fn document(case: &Case, d: &CaseDocument, department: Department, referral_ids: Vec<Uuid>) -> DocumentAttached {
    DocumentAttached {
        case_id: case.case_id,
        department,
        referral_ids,
        document_id: d.document_id,
        material: d.material.clone(),
        sha256: d.sha256.clone(),
        content_type: d.content_type.clone(),
        size: d.size,
        attached_at: d.attached_at,
    }
}

/// The outbox messages announcing `new` (which turned `before` into `after`).
/// Each department learns of the scans its referral needs: those uploaded
/// since, with the referral, and when it asks for the material later.
pub fn announce(
    before: &Case,
    after: &Case,
    new: &[CaseEvent],
    catalogue: &MaterialsCatalogue,
    now: DateTime<Utc>,
) -> Result<Vec<OutboxMessage>, serde_json::Error> {
    let mut out = Vec::new();
    let Some(app) = &after.application else { return Ok(out) };
    for event in new {
        // The applicant is told: the case number on acceptance, the missing
        // items on a one-time notice, each line's decision.
        let told = match event {
            CaseEvent::ApplicationAccepted { .. } => notification(after, NotificationKind::Accepted, &[], now),
            CaseEvent::ApplicationSubmitted { missing_materials, .. } if !missing_materials.is_empty() => {
                let items: Vec<&str> = missing_materials
                    .iter()
                    .map(|m| onedoor_contracts::aid_line::material_name(&m.code).unwrap_or(&m.code))
                    .collect();
                notification(after, NotificationKind::Notice, &[("items", sms_list(&items))], now)
            }
            CaseEvent::LaneReported { department, report, .. } => {
                let line = ("line", department.line().chinese_name.to_string());
                match report {
                    LaneReport::Approved { amount_fen, .. } => notification(
                        after,
                        NotificationKind::Decision,
                        &[line, ("outcome", "批准".into()), ("amount", yuan(*amount_fen))],
                        now,
                    ),
                    LaneReport::Rejected { .. } => {
                        notification(after, NotificationKind::Decision, &[line, ("outcome", "不予救助".into())], now)
                    }
                    _ => None,
                }
            }
            _ => None,
        };
        if let Some(told) = told {
            out.push(message(told, now)?);
        }
        match event {
            CaseEvent::ApplicationAccepted { accepted_at } => out.push(message(
                ApplicationAccepted {
                    case_id: after.case_id,
                    case_number: after.case_number.clone(),
                    township: app.township().to_string(),
                    departments: app.departments(),
                    accepted_at: *accepted_at,
                    accepted_by: after.accepted_by.clone(),
                },
                now,
            )?),
            CaseEvent::ReferralIssued { referral_id, department, issued_at, deadline } => {
                let Some(request) = after.line_of_referral(*referral_id).map(|l| l.request.clone()) else { continue };
                let needed = catalogue.required_for(&request);
                let scans: Vec<&CaseDocument> =
                    after.documents.iter().filter(|d| needed.contains(&d.material.as_str())).collect();
                out.push(message(
                    ReferralIssued {
                        referral_id: *referral_id,
                        case_id: after.case_id,
                        case_number: after.case_number.clone(),
                        department: *department,
                        township: app.township().to_string(),
                        issued_at: *issued_at,
                        deadline: *deadline,
                        // Only what the line's policy uses (data minimisation).
                        applicant: ReferredApplicant::of(&app.applicant, department.line().discloses),
                        household: ReferredHousehold::of(
                            HouseholdFacts {
                                division_code: app.division_code.clone(),
                                hukou: app.hukou,
                                members: app.members.len() as u32,
                                monthly_income_fen: app.monthly_income_fen,
                                assets_fen: app.assets_fen,
                                existing_support: app.existing_support.clone(),
                            },
                            department.line().discloses,
                        ),
                        // Only to lines whose rules are per household (data minimisation).
                        members: if department.line().household_rules {
                            app.members
                                .iter()
                                .map(|m| HouseholdMember {
                                    id_number: m.id_number.clone(),
                                    relation: m.relation.clone(),
                                })
                                .collect()
                        } else {
                            Vec::new()
                        },
                        household_id: if department.line().household_rules { after.household_id } else { None },
                        request,
                        materials: after.handed_in.iter().cloned().collect(),
                        missing_materials: after
                            .missing_materials_for(*department)
                            .into_iter()
                            .map(|m| m.to_string())
                            .collect(),
                    },
                    now,
                )?);
                for scan in scans {
                    out.extend(documents(after, scan, &[*referral_id], now)?);
                }
            }
            // Lanes referred before this change learn of the new materials
            // (a supplement answered, or an emergency's paperwork completed).
            CaseEvent::MaterialsSupplemented { materials, supplemented_at, .. } => {
                let referral_ids = before.referral_ids();
                if !referral_ids.is_empty() {
                    out.push(message(
                        MaterialsSupplemented {
                            case_id: after.case_id,
                            referral_ids,
                            materials: materials.clone(),
                            supplemented_at: *supplemented_at,
                        },
                        now,
                    )?);
                }
            }
            CaseEvent::ApplicationWithdrawn { withdrawn_at, .. } => {
                let referral_ids = after.referral_ids();
                out.push(message(
                    ApplicationWithdrawn {
                        case_id: after.case_id,
                        referral_ids,
                        reason: onedoor_contracts::intake::WITHDRAWAL_AS_ANNOUNCED.into(),
                        withdrawn_at: *withdrawn_at,
                    },
                    now,
                )?);
            }
            CaseEvent::PersonalDataErased { erased_at, .. } => {
                out.push(message(
                    CaseErased { case_id: after.case_id, referral_ids: after.referral_ids(), erased_at: *erased_at },
                    now,
                )?);
            }
            CaseEvent::DocumentAttached(d) => {
                out.extend(documents(after, d, &after.referrals_needing(&d.material, catalogue), now)?);
            }
            // A department asking for a material already scanned gets the scan.
            CaseEvent::LaneReported {
                referral_id, report: LaneReport::SupplementRequested { materials, .. }, ..
            } => {
                for scan in after.documents.iter().filter(|d| materials.contains(&d.material)) {
                    out.extend(documents(after, scan, &[*referral_id], now)?);
                }
            }
            CaseEvent::ApplicationSubmitted { .. }
            | CaseEvent::LaneReported { .. }
            | CaseEvent::LineAdded { .. }
            | CaseEvent::HandedOver { .. }
            | CaseEvent::NotificationSent(_)
            | CaseEvent::CaseClosed { .. } => {}
        }
    }
    Ok(out)
}

/// What a department event says about its lane: which lane, when, who
/// acted (a staff id of the department), and what.
pub fn lane_report(event: DepartmentEvent) -> (LaneRef, DateTime<Utc>, Option<String>, LaneReport) {
    match event {
        DepartmentEvent::SignedFor(e) => {
            (e.data.lane, e.data.occurred_at, Some(e.data.signed_by), LaneReport::SignedFor)
        }
        DepartmentEvent::SupplementRequested(e) => {
            let e = e.data;
            let report = LaneReport::SupplementRequested { materials: e.materials, note: e.note };
            (e.lane, e.occurred_at, Some(e.requested_by), report)
        }
        DepartmentEvent::ProposalMade(e) => {
            let e = e.data;
            let report = LaneReport::ProposalMade { outcome: e.outcome, amount_fen: e.amount_fen, reason: e.reason };
            (e.lane, e.occurred_at, Some(e.proposed_by), report)
        }
        DepartmentEvent::Approved(e) => {
            let e = e.data;
            let report = LaneReport::Approved { amount_fen: e.amount_fen, override_reason: e.override_reason };
            (e.lane, e.occurred_at, Some(e.decided_by), report)
        }
        DepartmentEvent::Rejected(e) => {
            let e = e.data;
            (e.lane, e.occurred_at, Some(e.decided_by), LaneReport::Rejected { reason: e.reason })
        }
        DepartmentEvent::Disbursed(e) => {
            let e = e.data;
            let report = LaneReport::Disbursed { amount_fen: e.amount_fen, channel: e.channel };
            (e.lane, e.occurred_at, Some(e.disbursed_by), report)
        }
        DepartmentEvent::Returned(e) => {
            let e = e.data;
            (e.lane, e.occurred_at, Some(e.returned_by), LaneReport::Returned { reason: e.reason })
        }
        DepartmentEvent::Withdrawn(e) => (e.data.lane, e.data.occurred_at, None, LaneReport::Withdrawn),
        DepartmentEvent::DeadlineExtended(e) => {
            let e = e.data;
            let report = LaneReport::DeadlineExtended { deadline: e.deadline, reason: e.reason };
            (e.lane, e.occurred_at, Some(e.extended_by), report)
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_long_list_of_missing_items_fits_an_sms_variable() {
        assert_eq!(super::sms_list(&["居民身份证", "户口簿"]), "居民身份证、户口簿");
        let many = ["家庭经济状况核对授权书", "医疗费用票据", "出院小结（诊断证明）", "医保结算单", "困难情况说明"];
        assert_eq!(super::sms_list(&many), "家庭经济状况核对授权书等5项材料");
    }
}
