//! Given a lane's events, when a command, then events or a refusal.

use super::*;
use chrono::NaiveDate;
use onedoor_contracts::Department;
use onedoor_contracts::intake::*;
use uuid::Uuid;

fn now() -> DateTime<Utc> {
    Utc::now()
}

fn referral() -> ReferralIssued {
    ReferralIssued {
        referral_id: Uuid::now_v7(),
        case_id: Uuid::now_v7(),
        case_number: "330102001-2026-000001".into(),
        department: Department::Temporary,
        township: "330102001".into(),
        issued_at: now(),
        deadline: NaiveDate::from_ymd_opt(2026, 12, 1).unwrap(),
        applicant: ReferredApplicant { name: "n".into(), id_number: "11010519491231002X".into(), phone: None },
        household: ReferredHousehold {
            division_code: "330102001001".into(),
            hukou: Hukou::Urban,
            members: 2,
            monthly_income_fen: None,
            assets_fen: None,
            existing_support: vec![],
        },
        members: vec![HouseholdMember { id_number: "11010519491231002X".into(), relation: "applicant".into() }],
        household_id: None,
        request: AidRequest::Temporary { cause: HardshipCause::Fire, amount_requested_fen: 200_000, emergency: false },
        materials: vec![],
        missing_materials: vec![],
    }
}

fn recommendation(suggested: i64) -> Recommendation {
    Recommendation { eligible: true, suggested_amount_fen: suggested, notes: vec![], needs_approver_override: false }
}

const LIMITS: Limits =
    Limits { threshold_fen: 99_000, max_amount_fen: 330_000, deadline: NaiveDate::from_ymd_opt(2026, 12, 21).unwrap() };

fn given(events: &[LaneEvent]) -> Lane {
    let mut all = vec![Lane::open(referral(), recommendation(99_000), now())];
    all.extend_from_slice(events);
    Lane::from_events(&all).unwrap()
}

fn signed() -> LaneEvent {
    LaneEvent::SignedFor { by: "cw-1".into(), at: now() }
}

fn proposed(amount: i64) -> LaneEvent {
    LaneEvent::ProposalMade {
        outcome: ProposalOutcome::Approve,
        amount_fen: amount,
        reason: None,
        by: "cw-1".into(),
        at: now(),
    }
}

fn when(lane: &Lane, command: Command, actor: Actor) -> Result<Vec<LaneEvent>, LaneError> {
    lane.decide(command, actor, LIMITS, now())
}

fn propose(amount: Option<i64>) -> Command {
    Command::Propose { outcome: ProposalOutcome::Approve, amount_fen: amount, reason: None }
}

#[test]
fn a_referred_lane_is_signed_for_once() {
    let lane = given(&[]);
    assert!(matches!(
        when(&lane, Command::SignFor, Actor::Caseworker("cw-1")).unwrap()[..],
        [LaneEvent::SignedFor { .. }]
    ));
    let signed = given(&[signed()]);
    assert!(matches!(
        when(&signed, Command::SignFor, Actor::Caseworker("cw-1")),
        Err(LaneError::InvalidTransition { status: "signed_for", .. })
    ));
}

#[test]
fn a_proposal_at_or_below_the_threshold_stands() {
    let events = when(&given(&[signed()]), propose(None), Actor::Caseworker("cw-1")).unwrap();
    assert!(
        matches!(events[..], [LaneEvent::Approved { amount_fen: 99_000, .. }]),
        "the suggestion, approved: {events:?}"
    );
}

#[test]
fn a_proposal_above_the_threshold_waits_for_an_approver() {
    let events = when(&given(&[signed()]), propose(Some(150_000)), Actor::Caseworker("cw-1")).unwrap();
    assert!(matches!(events[..], [LaneEvent::ProposalMade { amount_fen: 150_000, .. }]));
}

/// A lane whose policy suggests `suggested` (with `LIMITS`: approver above 99,000 fen).
fn given_entitled_to(suggested: i64, eligible: bool, events: &[LaneEvent]) -> Lane {
    let mut recommendation = recommendation(suggested);
    recommendation.eligible = eligible;
    let mut all = vec![Lane::open(referral(), recommendation, now())];
    all.extend_from_slice(events);
    Lane::from_events(&all).unwrap()
}

#[test]
fn the_proposer_may_not_approve_their_own_proposal() {
    let lane = given_entitled_to(200_000, true, &[signed(), proposed(150_000)]);
    let approve = Command::Approve { approve: true, reason: None, override_annual_limit: false };
    assert!(matches!(when(&lane, approve.clone(), Actor::Approver("cw-1")), Err(LaneError::NotAllowed(_))));
    assert!(matches!(when(&lane, approve.clone(), Actor::Caseworker("cw-2")), Err(LaneError::NotAllowed(_))));
    let events = when(&lane, approve, Actor::Approver("ap-9")).unwrap();
    assert!(matches!(events[..], [LaneEvent::Approved { amount_fen: 150_000, override_reason: None, .. }]));
}

#[test]
fn more_than_the_entitlement_needs_an_approver_and_their_written_reason() {
    // Entitled to 100 yuan: a caseworker's 900 yuan (below the 990 threshold) does not stand.
    let lane = given_entitled_to(10_000, true, &[signed()]);
    let events = when(&lane, propose(Some(90_000)), Actor::Caseworker("cw-1")).unwrap();
    assert!(matches!(events[..], [LaneEvent::ProposalMade { amount_fen: 90_000, .. }]), "{events:?}");
    let lane = given_entitled_to(10_000, true, &[signed(), proposed(90_000)]);
    let without = Command::Approve { approve: true, reason: None, override_annual_limit: false };
    assert!(matches!(
        when(&lane, without, Actor::Approver("ap-9")),
        Err(LaneError::Invalid { code: "override_reason_required", .. })
    ));
    let with = Command::Approve {
        approve: true,
        reason: Some("fire destroyed the house".into()),
        override_annual_limit: false,
    };
    let events = when(&lane, with, Actor::Approver("ap-9")).unwrap();
    assert!(
        matches!(&events[..], [LaneEvent::Approved { override_reason: Some(r), .. }] if r == "fire destroyed the house")
    );
    let approved = given_entitled_to(10_000, true, &[signed(), proposed(90_000), events[0].clone()]);
    assert_eq!(approved.history.last().unwrap().1, "ApprovedByOverride");
}

#[test]
fn any_approval_for_a_household_the_policy_finds_ineligible_is_an_override() {
    let lane = given_entitled_to(0, false, &[signed()]);
    let events = when(&lane, propose(Some(1_000)), Actor::Caseworker("cw-1")).unwrap();
    assert!(matches!(events[..], [LaneEvent::ProposalMade { .. }]), "not the caseworker's alone: {events:?}");
}

#[test]
fn a_rejection_typed_as_zero_is_held_to_what_it_forgoes() {
    // Entitled to 2,000 yuan, above the caseworker's 990: rejecting it needs an approver too.
    let lane = given_entitled_to(200_000, true, &[signed()]);
    let reject = Command::Propose { outcome: ProposalOutcome::Reject, amount_fen: Some(0), reason: Some("no".into()) };
    let events = when(&lane, reject, Actor::Caseworker("cw-1")).unwrap();
    assert!(matches!(events[..], [LaneEvent::ProposalMade { outcome: ProposalOutcome::Reject, .. }]), "{events:?}");
}

#[test]
fn instalments_each_with_its_own_reference_add_up_to_the_approved_amount() {
    let approved = LaneEvent::Approved { amount_fen: 90_000, override_reason: None, by: "cw-1".into(), at: now() };
    let lane = given(&[signed(), approved]);
    let pay = |amount: i64, reference: &str| Command::Disburse {
        amount_fen: amount,
        channel: onedoor_contracts::department::DisbursementChannel::BankCard,
        reference: Some(reference.into()),
    };
    let first = when(&lane, pay(30_000, "T-1"), Actor::Caseworker("cw-1")).unwrap();
    let lane = given(&[
        signed(),
        LaneEvent::Approved { amount_fen: 90_000, override_reason: None, by: "cw-1".into(), at: now() },
        first[0].clone(),
    ]);
    assert_eq!((lane.status, lane.disbursed_amount_fen), (LaneStatus::Approved, Some(30_000)), "partly paid");
    assert!(matches!(
        when(&lane, pay(10_000, "T-1"), Actor::Caseworker("cw-1")),
        Err(LaneError::Invalid { code: "duplicate_reference", .. })
    ));
    assert!(matches!(
        when(&lane, pay(60_001, "T-2"), Actor::Caseworker("cw-1")),
        Err(LaneError::Invalid { code: "above_approved", .. })
    ));
    let second = when(&lane, pay(60_000, "T-2"), Actor::Caseworker("cw-1")).unwrap();
    let mut lane = lane;
    lane.apply(&second[0]);
    assert_eq!((lane.status, lane.disbursed_amount_fen), (LaneStatus::Disbursed, Some(90_000)), "fully paid");
}

#[test]
fn an_approver_rejecting_must_say_why() {
    let lane = given(&[signed(), proposed(150_000)]);
    let reject = |reason: Option<&str>| Command::Approve {
        approve: false,
        reason: reason.map(String::from),
        override_annual_limit: false,
    };
    assert!(matches!(
        when(&lane, reject(None), Actor::Approver("ap-9")),
        Err(LaneError::Invalid { field: "reason", .. })
    ));
    assert!(matches!(
        when(&lane, reject(Some("assets")), Actor::Approver("ap-9")).unwrap()[..],
        [LaneEvent::Rejected { .. }]
    ));
}

#[test]
fn a_rejection_needs_a_reason_and_an_approval_stays_within_the_limit() {
    let lane = given(&[signed()]);
    let reject = Command::Propose { outcome: ProposalOutcome::Reject, amount_fen: None, reason: None };
    assert!(matches!(when(&lane, reject, Actor::Caseworker("cw-1")), Err(LaneError::Invalid { field: "reason", .. })));
    assert!(matches!(
        when(&lane, propose(Some(400_000)), Actor::Caseworker("cw-1")),
        Err(LaneError::Invalid { code: "above_limit", .. })
    ));
}

#[test]
fn disbursement_only_after_approval_and_never_above_it() {
    let disburse =
        |amount| Command::Disburse { amount_fen: amount, channel: DisbursementChannel::BankCard, reference: None };
    let signed_lane = given(&[signed()]);
    assert!(matches!(
        when(&signed_lane, disburse(1), Actor::Caseworker("cw-1")),
        Err(LaneError::InvalidTransition { .. })
    ));
    let approved = given(&[
        signed(),
        LaneEvent::Approved { amount_fen: 50_000, override_reason: None, by: "cw-1".into(), at: now() },
    ]);
    assert!(matches!(
        when(&approved, disburse(50_001), Actor::Caseworker("cw-1")),
        Err(LaneError::Invalid { code: "above_approved", .. })
    ));
    assert!(matches!(
        when(&approved, disburse(50_000), Actor::Caseworker("cw-1")).unwrap()[..],
        [LaneEvent::Disbursed { .. }]
    ));
}

#[test]
fn a_supplement_pauses_the_lane_and_window_materials_resume_it() {
    let lane = given(&[signed()]);
    let events = when(
        &lane,
        Command::RequestSupplement { materials: vec!["bank_statement".into()], note: None },
        Actor::Caseworker("cw-1"),
    )
    .unwrap();
    let mut lane = lane;
    lane.apply(&events[0]);
    assert_eq!(lane.status, LaneStatus::SupplementRequested);
    assert!(matches!(when(&lane, propose(None), Actor::Caseworker("cw-1")), Err(LaneError::InvalidTransition { .. })));
    let resumed = lane.supplemented(vec!["bank_statement".into()], now());
    lane.apply(&resumed[0]);
    assert_eq!(lane.status, LaneStatus::UnderReview);
    assert!(lane.supplemented(vec![], now()).is_empty(), "nothing to resume twice");
}

#[test]
fn a_lane_is_returned_with_a_reason_but_not_after_a_decision() {
    let lane = given(&[signed()]);
    let ret = |r: &str| Command::Return { reason: r.into() };
    assert!(matches!(when(&lane, ret(" "), Actor::Caseworker("cw-1")), Err(LaneError::Invalid { .. })));
    assert!(matches!(
        when(&lane, ret("housing's matter"), Actor::Caseworker("cw-1")).unwrap()[..],
        [LaneEvent::Returned { .. }]
    ));
    let decided =
        given(&[signed(), LaneEvent::Approved { amount_fen: 1, override_reason: None, by: "cw-1".into(), at: now() }]);
    assert!(matches!(when(&decided, ret("x"), Actor::Caseworker("cw-1")), Err(LaneError::InvalidTransition { .. })));
}

#[test]
fn a_withdrawal_closes_an_open_lane_only() {
    let lane = given(&[signed()]);
    assert_eq!(lane.withdrawn("moved".into(), now()).len(), 1);
    let closed = given(&[LaneEvent::Returned { reason: "x".into(), by: "cw".into(), at: now() }]);
    assert!(closed.withdrawn("moved".into(), now()).is_empty());
}

#[test]
fn a_once_a_year_rule_needs_an_approvers_explicit_override() {
    let mut all =
        vec![Lane::open(referral(), Recommendation { needs_approver_override: true, ..recommendation(50_000) }, now())];
    all.push(signed());
    let lane = Lane::from_events(&all).unwrap();
    let events = when(&lane, propose(Some(10_000)), Actor::Caseworker("cw-1")).unwrap();
    assert!(matches!(events[..], [LaneEvent::ProposalMade { .. }]), "even below the threshold");
    let mut lane = lane;
    lane.apply(&events[0]);
    let approve = |o| Command::Approve { approve: true, reason: None, override_annual_limit: o };
    assert!(matches!(
        when(&lane, approve(false), Actor::Approver("ap-9")),
        Err(LaneError::Invalid { code: "override_required", .. })
    ));
    assert!(matches!(when(&lane, approve(true), Actor::Approver("ap-9")).unwrap()[..], [LaneEvent::Approved { .. }]));
}

fn day(d: u32, hour: u32) -> DateTime<Utc> {
    // 2026-11-(d) at hour:00 UTC (Beijing 8 hours ahead).
    NaiveDate::from_ymd_opt(2026, 11, d).unwrap().and_hms_opt(hour, 0, 0).unwrap().and_utc()
}

#[test]
fn the_time_limit_pauses_while_a_supplement_is_awaited_as_the_window_counts_it() {
    let calendar = WorkingCalendar::shipped();
    let asked = LaneEvent::SupplementRequested {
        materials: vec!["bank_statement".into()],
        note: None,
        by: "cw-1".into(),
        at: day(25, 2),
    };
    let waiting = given(&[signed(), asked.clone()]);
    let today = NaiveDate::from_ymd_opt(2026, 11, 30).unwrap();
    // Wed 25 to Mon 30 November: three working days paused so far, and counting.
    assert_eq!(waiting.deadline(&calendar, today), NaiveDate::from_ymd_opt(2026, 12, 4).unwrap());
    assert!(!waiting.clock_runs(), "no clock runs while the window is asked");
    let partly = waiting.supplemented(vec!["medical_records".into()], day(26, 2));
    assert!(matches!(partly[..], [LaneEvent::PartlySupplemented { .. }]), "another item answers nothing");
    let answered = given(&[
        signed(),
        asked,
        partly[0].clone(),
        LaneEvent::Supplemented { materials: vec!["bank_statement".into()], at: day(27, 2) },
    ]);
    // Paused Wed 25 to Fri 27: two working days, and the clock runs again.
    assert_eq!(answered.deadline(&calendar, today), NaiveDate::from_ymd_opt(2026, 12, 3).unwrap());
    assert!(answered.clock_runs());
}

#[test]
fn an_approver_extends_the_time_limit_once_to_a_later_date_with_a_reason() {
    let lane = given(&[signed()]);
    let later = NaiveDate::from_ymd_opt(2026, 12, 31).unwrap();
    let extend = |deadline, reason: &str| Command::ExtendDeadline { deadline, reason: reason.into() };
    let approver = Actor::Approver("boss");
    assert!(matches!(
        lane.decide(extend(later, "site visit"), Actor::Caseworker("cw-1"), LIMITS, now()),
        Err(LaneError::NotAllowed(_))
    ));
    let earlier = NaiveDate::from_ymd_opt(2026, 12, 20).unwrap();
    assert!(matches!(
        lane.decide(extend(earlier, "site visit"), approver, LIMITS, now()),
        Err(LaneError::Invalid { code: "not_later", .. })
    ));
    assert!(matches!(
        lane.decide(extend(later, " "), approver, LIMITS, now()),
        Err(LaneError::Invalid { code: "required", .. })
    ));
    let events = lane.decide(extend(later, "site visit"), approver, LIMITS, now()).unwrap();
    let extended = given(&[signed(), events[0].clone()]);
    assert_eq!(extended.deadline(&WorkingCalendar::shipped(), NaiveDate::from_ymd_opt(2026, 12, 1).unwrap()), later);
    assert!(matches!(
        extended.decide(extend(later.succ_opt().unwrap(), "again"), approver, LIMITS, now()),
        Err(LaneError::InvalidTransition { .. })
    ));
}
