//! Given events, when a command or time passes, then events / a view.

use super::*;
use crate::domain::application::Member;
use crate::domain::view::{CaseLineStatus, CaseStatus};
use onedoor_contracts::intake::{AidRequest, Applicant, HardshipCause, HousingKind, Hukou};

fn at(day: u32, hour: u32) -> DateTime<Utc> {
    // 2026-11-(day) hour:00 UTC, a Monday-to-Friday week from 23 November.
    chrono::NaiveDate::from_ymd_opt(2026, 11, day).unwrap().and_hms_opt(hour, 0, 0).unwrap().and_utc()
}

fn calendar() -> WorkingCalendar {
    WorkingCalendar::shipped()
}

fn application(requests: Vec<AidRequest>, materials: &[&str]) -> Application {
    Application {
        applicant: Applicant {
            name: "张三".into(),
            id_number: "11010519491231002X".into(),
            phone: "13800138000".into(),
        },
        division_code: "330102001001".into(),
        address: "1 Road".into(),
        hukou: Hukou::Urban,
        members: vec![Member {
            name: "张三".into(),
            id_number: "11010519491231002X".into(),
            relation: "applicant".into(),
            disability: false,
            in_school: false,
        }],
        monthly_income_fen: 100_000,
        assets_fen: 0,
        existing_support: vec![],
        requests,
        materials: materials.iter().map(|s| s.to_string()).collect(),
    }
}

fn temporary(emergency: bool) -> AidRequest {
    AidRequest::Temporary { cause: HardshipCause::Fire, amount_requested_fen: 100_000, emergency }
}

fn housing() -> AidRequest {
    AidRequest::Housing { kind: HousingKind::RentSubsidy { monthly_rent_fen: 80_000 } }
}

const ALL_FOR_TEMPORARY_AND_HOUSING: [&str; 6] =
    ["id_card", "hukou_book", "income_statement", "verification_authorization", "hardship_statement", "tenancy_proof"];

struct World {
    referral_ids: BTreeMap<Department, Uuid>,
    catalogue: MaterialsCatalogue,
    deadlines: Deadlines,
    calendar: WorkingCalendar,
}

impl World {
    fn new() -> Self {
        Self {
            referral_ids: Department::ALL.into_iter().map(|d| (d, Uuid::now_v7())).collect(),
            catalogue: MaterialsCatalogue::default(),
            deadlines: Deadlines::defaults(),
            calendar: calendar(),
        }
    }

    fn ctx(&self, now: DateTime<Utc>) -> Context<'_> {
        Context {
            now,
            staff_id: "clerk-7",
            referral_ids: &self.referral_ids,
            catalogue: &self.catalogue,
            deadlines: &self.deadlines,
            calendar: &self.calendar,
        }
    }
}

fn referred(events: &[CaseEvent]) -> Vec<Department> {
    events
        .iter()
        .filter_map(|e| match e {
            CaseEvent::ReferralIssued { department, .. } => Some(*department),
            _ => None,
        })
        .collect()
}

#[test]
fn a_complete_application_is_accepted_and_referred_to_every_department() {
    let w = World::new();
    let events = submit(
        application(vec![temporary(false), housing()], &ALL_FOR_TEMPORARY_AND_HOUSING),
        "N-1".into(),
        None,
        &w.ctx(at(23, 2)),
    );
    assert!(matches!(events[1], CaseEvent::ApplicationAccepted { .. }));
    assert_eq!(referred(&events), [Department::Temporary, Department::Housing]);
    let case = Case::from_events(Uuid::nil(), &events);
    let view = case.view(&w.catalogue, &w.calendar, local_date(at(23, 2)));
    assert_eq!(view.status, CaseStatus::InProgress);
    let temp = view.lanes.iter().find(|l| l.department == Department::Temporary).unwrap();
    assert_eq!(temp.status, CaseLineStatus::Referred);
    assert_eq!(temp.deadline, chrono::NaiveDate::from_ymd_opt(2026, 11, 30), "5 working days from Monday 23 November");
}

#[test]
fn an_incomplete_application_waits_for_materials_and_refers_nothing() {
    let w = World::new();
    let events = submit(application(vec![housing()], &["id_card"]), "N-1".into(), None, &w.ctx(at(23, 2)));
    assert_eq!(events.len(), 1);
    let view = Case::from_events(Uuid::nil(), &events).view(&w.catalogue, &w.calendar, local_date(at(23, 2)));
    assert_eq!(view.status, CaseStatus::AwaitingMaterials);
    assert_eq!(view.lanes[0].status, CaseLineStatus::Pending);
    assert_eq!(view.missing_materials.len(), 4);
}

#[test]
fn an_emergency_temporary_request_is_referred_ahead_of_its_paperwork() {
    let w = World::new();
    let events =
        submit(application(vec![temporary(true), housing()], &["id_card"]), "N-1".into(), None, &w.ctx(at(23, 2)));
    assert_eq!(referred(&events), [Department::Temporary]);
    let case = Case::from_events(Uuid::nil(), &events);
    assert_eq!(case.view(&w.catalogue, &w.calendar, local_date(at(23, 2))).status, CaseStatus::AwaitingMaterials);

    // When the rest is handed in, the remaining line is referred, and only it.
    let more = case
        .supplement(ALL_FOR_TEMPORARY_AND_HOUSING.iter().map(|s| s.to_string()).collect(), &w.ctx(at(24, 2)))
        .unwrap();
    assert_eq!(referred(&more), [Department::Housing]);
    assert!(more.iter().any(|e| matches!(e, CaseEvent::ApplicationAccepted { .. })));
}

#[test]
fn a_supplement_request_pauses_the_clock_until_the_window_adds_the_materials() {
    let w = World::new();
    let mut events = submit(
        application(vec![temporary(false)], &ALL_FOR_TEMPORARY_AND_HOUSING[..5]),
        "N-1".into(),
        None,
        &w.ctx(at(23, 2)),
    );
    let referral_id = match &events[2] {
        CaseEvent::ReferralIssued { referral_id, .. } => *referral_id,
        other => panic!("{other:?}"),
    };
    let report = |at, report| CaseEvent::LaneReported {
        event_id: Uuid::now_v7(),
        department: Department::Temporary,
        referral_id,
        lane_version: None,
        by: None,
        occurred_at: at,
        report,
    };
    events.push(report(at(24, 2), LaneReport::SignedFor));
    events.push(report(
        at(25, 2),
        LaneReport::SupplementRequested { materials: vec!["bank_statement".into()], note: None },
    ));
    let case = Case::from_events(Uuid::nil(), &events);
    let waiting = case.view(&w.catalogue, &w.calendar, local_date(at(25, 3)));
    assert_eq!(waiting.lanes[0].status, CaseLineStatus::SupplementRequested);
    assert_eq!(waiting.lanes[0].supplement_items, ["bank_statement"]);

    // Something else handed in answers nothing: the lane keeps waiting.
    events.extend(case.supplement(vec!["medical_records".into()], &w.ctx(at(26, 2))).unwrap());
    let case = Case::from_events(Uuid::nil(), &events);
    let still = case.view(&w.catalogue, &w.calendar, local_date(at(26, 3)));
    assert_eq!(still.lanes[0].status, CaseLineStatus::SupplementRequested);

    // Three working days after the request (Wed 25 -> Mon 30) the window adds it.
    events.extend(case.supplement(vec!["bank_statement".into()], &w.ctx(at(30, 2))).unwrap());
    let resumed = Case::from_events(Uuid::nil(), &events).view(&w.catalogue, &w.calendar, local_date(at(30, 3)));
    assert_eq!(resumed.lanes[0].status, CaseLineStatus::UnderReview);
    assert_eq!(
        resumed.lanes[0].deadline,
        chrono::NaiveDate::from_ymd_opt(2026, 12, 3),
        "the 30 November deadline moves by the 3 working days paused"
    );
}

#[test]
fn department_reports_give_the_same_view_in_any_order_of_arrival() {
    let w = World::new();
    let mut events = submit(
        application(vec![temporary(false), housing()], &ALL_FOR_TEMPORARY_AND_HOUSING),
        "N-1".into(),
        None,
        &w.ctx(at(23, 2)),
    );
    let ids: BTreeMap<Department, Uuid> = events
        .iter()
        .filter_map(|e| match e {
            CaseEvent::ReferralIssued { referral_id, department, .. } => Some((*department, *referral_id)),
            _ => None,
        })
        .collect();
    let report = |d: Department, at, report| CaseEvent::LaneReported {
        event_id: Uuid::now_v7(),
        department: d,
        referral_id: ids[&d],
        lane_version: None,
        by: None,
        occurred_at: at,
        report,
    };
    let reports = vec![
        report(Department::Temporary, at(24, 1), LaneReport::SignedFor),
        report(Department::Housing, at(24, 2), LaneReport::SignedFor),
        report(Department::Temporary, at(24, 3), LaneReport::Approved { amount_fen: 99_000, override_reason: None }),
        report(Department::Housing, at(25, 3), LaneReport::Returned { reason: "public rental instead".into() }),
    ];
    let mut in_order = events.clone();
    in_order.extend(reports.iter().cloned());
    events.extend(reports.into_iter().rev());
    let today = local_date(at(26, 1));
    let a = Case::from_events(Uuid::nil(), &in_order).view(&w.catalogue, &w.calendar, today);
    let b = Case::from_events(Uuid::nil(), &events).view(&w.catalogue, &w.calendar, today);
    assert_eq!(a, b);
    assert_eq!(a.status, CaseStatus::Decided);
    let temp = a.lanes.iter().find(|l| l.department == Department::Temporary).unwrap();
    assert_eq!((temp.status, temp.amount_fen), (CaseLineStatus::Approved, Some(99_000)));
}

#[test]
fn a_lane_past_its_deadline_is_overdue_unless_decided() {
    let w = World::new();
    let events = submit(
        application(vec![temporary(false)], &ALL_FOR_TEMPORARY_AND_HOUSING[..5]),
        "N-1".into(),
        None,
        &w.ctx(at(23, 2)),
    );
    let case = Case::from_events(Uuid::nil(), &events);
    assert!(!case.view(&w.catalogue, &w.calendar, local_date(at(30, 2))).lanes[0].overdue, "due on 30 November");
    assert!(case.view(&w.catalogue, &w.calendar, local_date(at(30, 2)) + chrono::Duration::days(1)).lanes[0].overdue);
}

#[test]
fn a_withdrawn_case_takes_no_more_materials() {
    let w = World::new();
    let mut events = submit(application(vec![housing()], &["id_card"]), "N-1".into(), None, &w.ctx(at(23, 2)));
    events.extend(Case::from_events(Uuid::nil(), &events).withdraw("moved away".into(), &w.ctx(at(23, 3))).unwrap());
    let case = Case::from_events(Uuid::nil(), &events);
    assert_eq!(case.view(&w.catalogue, &w.calendar, local_date(at(23, 4))).status, CaseStatus::Withdrawn);
    assert_eq!(case.supplement(vec!["hukou_book".into()], &w.ctx(at(23, 5))), Err(CaseError::Withdrawn));
}

#[test]
fn the_applicant_id_is_masked_in_the_view() {
    let w = World::new();
    let events = submit(application(vec![housing()], &["id_card"]), "N-1".into(), None, &w.ctx(at(23, 2)));
    let view = Case::from_events(Uuid::nil(), &events).view(&w.catalogue, &w.calendar, local_date(at(23, 2)));
    assert_eq!(view.applicant.unwrap().id_number_masked, "110105********002X");
}

#[test]
fn a_lanes_reports_are_read_in_the_lanes_own_order_whatever_the_clocks_say() {
    let w = World::new();
    let mut events = submit(
        application(vec![temporary(false)], &ALL_FOR_TEMPORARY_AND_HOUSING[..5]),
        "N-1".into(),
        None,
        &w.ctx(at(23, 2)),
    );
    let referral_id = w.referral_ids[&Department::Temporary];
    let report = |version, at, report| CaseEvent::LaneReported {
        event_id: Uuid::now_v7(),
        department: Department::Temporary,
        referral_id,
        lane_version: Some(version),
        by: None,
        occurred_at: at,
        report,
    };
    // The approver's machine runs an hour behind the caseworker's.
    let proposal = LaneReport::ProposalMade {
        outcome: onedoor_contracts::department::ProposalOutcome::Reject,
        amount_fen: Some(0),
        reason: Some("income above the line".into()),
    };
    events.push(report(2, at(24, 3), LaneReport::SignedFor));
    events.push(report(4, at(24, 3), LaneReport::Rejected { reason: "income above the line".into() }));
    events.push(report(3, at(24, 4), proposal));
    let view = Case::from_events(Uuid::nil(), &events).view(&w.catalogue, &w.calendar, local_date(at(25, 1)));
    assert_eq!(view.lanes[0].status, CaseLineStatus::Rejected, "not proposed for ever");
    assert_eq!(view.status, CaseStatus::Decided);
}

/// The case after a submission of `requests` with everything handed in, each
/// line signed for and then answered with `answer(department)`.
fn answered(w: &World, requests: Vec<AidRequest>, answer: impl Fn(Department) -> LaneReport) -> Vec<CaseEvent> {
    let mut events =
        submit(application(requests, &ALL_FOR_TEMPORARY_AND_HOUSING), "N-1".into(), None, &w.ctx(at(23, 2)));
    let issued: Vec<(Department, Uuid)> = events
        .iter()
        .filter_map(|e| match e {
            CaseEvent::ReferralIssued { referral_id, department, .. } => Some((*department, *referral_id)),
            _ => None,
        })
        .collect();
    for (d, referral_id) in issued {
        events.push(CaseEvent::LaneReported {
            event_id: Uuid::now_v7(),
            department: d,
            referral_id,
            lane_version: Some(2),
            by: Some("cw-1".into()),
            occurred_at: at(24, 2),
            report: answer(d),
        });
    }
    events
}

#[test]
fn a_returned_line_is_re_routed_and_stays_in_the_history() {
    let w = World::new();
    let returned = |_| LaneReport::Returned { reason: "not ours".into() };
    let mut events = answered(&w, vec![housing()], returned);
    let case = Case::from_events(Uuid::nil(), &events);
    assert_eq!(case.held_lines(), [], "a returned line no longer holds the household's place");
    assert_eq!(case.add_line(housing(), &w.ctx(at(24, 3))).map(|e| e.len()), Ok(2), "re-opened and referred");
    events.extend(case.add_line(temporary(false), &w.ctx(at(24, 3))).unwrap());
    let case = Case::from_events(Uuid::nil(), &events);
    assert_eq!(case.held_lines(), [Department::Temporary]);
    assert_eq!(case.add_line(temporary(false), &w.ctx(at(24, 4))), Err(CaseError::LineOpen));
    let view = case.view(&w.catalogue, &w.calendar, local_date(at(24, 4)));
    let lanes: Vec<(Department, CaseLineStatus)> = view.lanes.iter().map(|l| (l.department, l.status)).collect();
    assert_eq!(
        lanes,
        [(Department::Housing, CaseLineStatus::Returned), (Department::Temporary, CaseLineStatus::Referred)]
    );
    assert_eq!(view.status, CaseStatus::InProgress);
}

#[test]
fn a_line_added_without_its_materials_waits_for_them_with_a_notice() {
    let w = World::new();
    let mut events = answered(&w, vec![temporary(false)], |_| LaneReport::SignedFor);
    let medical = AidRequest::Medical {
        hospital: "h".into(),
        diagnosis: "d".into(),
        total_cost_fen: 100,
        insurance_paid_fen: 0,
        patient_id_number: None,
    };
    let case = Case::from_events(Uuid::nil(), &events);
    let added = case.add_line(medical, &w.ctx(at(24, 3))).unwrap();
    assert_eq!(referred(&added), [], "the medical materials are not in yet");
    events.extend(added);
    let case = Case::from_events(Uuid::nil(), &events);
    let notice: Vec<String> = case
        .view(&w.catalogue, &w.calendar, local_date(at(24, 3)))
        .missing_materials
        .into_iter()
        .map(|m| m.code)
        .collect();
    assert_eq!(notice, ["medical_invoice", "discharge_summary", "insurance_settlement"]);
    let partly = case.supplement(vec!["medical_invoice".into()], &w.ctx(at(24, 4))).unwrap();
    assert_eq!(referred(&partly), []);
    let all = ["medical_invoice", "discharge_summary", "insurance_settlement"].map(String::from).to_vec();
    assert_eq!(referred(&case.supplement(all, &w.ctx(at(24, 4))).unwrap()), [Department::Medical]);
}

#[test]
fn a_case_closes_only_when_every_lane_is_final_and_then_releases_its_lines() {
    let w = World::new();
    let events = answered(&w, vec![temporary(false), housing()], |d| match d {
        Department::Temporary => LaneReport::Approved { amount_fen: 100, override_reason: None },
        _ => LaneReport::SignedFor,
    });
    let case = Case::from_events(Uuid::nil(), &events);
    assert_eq!(case.close(InformedBy::Sms, None, &w.ctx(at(25, 2))), Err(CaseError::LanesNotFinal));
    assert_eq!(case.held_lines(), [Department::Housing, Department::Temporary]);

    let events = answered(&w, vec![temporary(false), housing()], |d| match d {
        Department::Temporary => LaneReport::Approved { amount_fen: 100, override_reason: None },
        _ => LaneReport::Rejected { reason: "housed".into() },
    });
    let mut case = Case::from_events(Uuid::nil(), &events);
    for e in case.close(InformedBy::Letter, Some("mailed".into()), &w.ctx(at(25, 2))).unwrap() {
        case.apply(&e);
    }
    assert_eq!(case.status(), CaseStatus::Closed);
    assert_eq!(case.held_lines(), []);
    assert_eq!(case.close(InformedBy::Sms, None, &w.ctx(at(25, 3))), Err(CaseError::Closed));
    assert_eq!(case.add_line(housing(), &w.ctx(at(25, 3))), Err(CaseError::Closed));
}
