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
    let events = submit(application(vec![housing()], &["id_card"]), "N-1".into(), &w.ctx(at(23, 2)));
    assert_eq!(events.len(), 1);
    let view = Case::from_events(Uuid::nil(), &events).view(&w.catalogue, &w.calendar, local_date(at(23, 2)));
    assert_eq!(view.status, CaseStatus::AwaitingMaterials);
    assert_eq!(view.lanes[0].status, CaseLineStatus::Pending);
    assert_eq!(view.missing_materials.len(), 4);
}

#[test]
fn an_emergency_temporary_request_is_referred_ahead_of_its_paperwork() {
    let w = World::new();
    let events = submit(application(vec![temporary(true), housing()], &["id_card"]), "N-1".into(), &w.ctx(at(23, 2)));
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

    // Three working days later (Wed 25 -> Mon 30) the window adds them.
    events.extend(case.supplement(vec!["id_card".into()], &w.ctx(at(30, 2))).unwrap());
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
        &w.ctx(at(23, 2)),
    );
    let case = Case::from_events(Uuid::nil(), &events);
    assert!(!case.view(&w.catalogue, &w.calendar, local_date(at(30, 2))).lanes[0].overdue, "due on 30 November");
    assert!(case.view(&w.catalogue, &w.calendar, local_date(at(30, 2)) + chrono::Duration::days(1)).lanes[0].overdue);
}

#[test]
fn a_withdrawn_case_takes_no_more_materials() {
    let w = World::new();
    let mut events = submit(application(vec![housing()], &["id_card"]), "N-1".into(), &w.ctx(at(23, 2)));
    events.extend(Case::from_events(Uuid::nil(), &events).withdraw("moved away".into(), &w.ctx(at(23, 3))).unwrap());
    let case = Case::from_events(Uuid::nil(), &events);
    assert_eq!(case.view(&w.catalogue, &w.calendar, local_date(at(23, 4))).status, CaseStatus::Withdrawn);
    assert_eq!(case.supplement(vec!["hukou_book".into()], &w.ctx(at(23, 5))), Err(CaseError::Withdrawn));
}

#[test]
fn the_applicant_id_is_masked_in_the_view() {
    let w = World::new();
    let events = submit(application(vec![housing()], &["id_card"]), "N-1".into(), &w.ctx(at(23, 2)));
    let view = Case::from_events(Uuid::nil(), &events).view(&w.catalogue, &w.calendar, local_date(at(23, 2)));
    assert_eq!(view.applicant.unwrap().id_number_masked, "110105********002X");
}

#[test]
fn a_lanes_reports_are_read_in_the_lanes_own_order_whatever_the_clocks_say() {
    let w = World::new();
    let mut events = submit(
        application(vec![temporary(false)], &ALL_FOR_TEMPORARY_AND_HOUSING[..5]),
        "N-1".into(),
        &w.ctx(at(23, 2)),
    );
    let referral_id = w.referral_ids[&Department::Temporary];
    let report = |version, at, report| CaseEvent::LaneReported {
        event_id: Uuid::now_v7(),
        department: Department::Temporary,
        referral_id,
        lane_version: Some(version),
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
