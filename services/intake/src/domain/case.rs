//! The case: one application at the window, and everything that happened to
//! it, as events. Pure: `decide` functions turn a command into events,
//! [`Case::apply`] folds events into state, and [`Case::view`] renders the
//! one case view, so a view rebuilt from the log is the view served.

use super::application::Application;
use super::calendar::WorkingCalendar;
use super::materials::{MaterialsCatalogue, MissingMaterial};
use chrono::{DateTime, FixedOffset, NaiveDate, Utc};
use onedoor_contracts::Department;
use onedoor_contracts::department::{DisbursementChannel, ProposalOutcome};
use onedoor_event_store::DomainEvent;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use utoipa::ToSchema;
use uuid::Uuid;

/// Stream type of case streams in intake's event store.
pub const STREAM_TYPE: &str = "case";

/// What a department reported about its lane (from its integration events).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum LaneReport {
    SignedFor,
    SupplementRequested { materials: Vec<String>, note: Option<String> },
    ProposalMade { outcome: ProposalOutcome, amount_fen: Option<i64>, reason: Option<String> },
    Approved { amount_fen: i64 },
    Rejected { reason: String },
    Disbursed { amount_fen: i64, channel: DisbursementChannel },
    Returned { reason: String },
}

impl LaneReport {
    fn event_name(&self) -> &'static str {
        match self {
            Self::SignedFor => "ReferralSignedFor",
            Self::SupplementRequested { .. } => "SupplementRequested",
            Self::ProposalMade { .. } => "ProposalMade",
            Self::Approved { .. } => "ReferralApproved",
            Self::Rejected { .. } => "ReferralRejected",
            Self::Disbursed { .. } => "AidDisbursed",
            Self::Returned { .. } => "ReferralReturned",
        }
    }

    /// Position in the workflow, to order reports with the same timestamp.
    fn rank(&self) -> u8 {
        match self {
            Self::SignedFor => 1,
            Self::SupplementRequested { .. } => 2,
            Self::ProposalMade { .. } => 3,
            Self::Approved { .. } | Self::Rejected { .. } | Self::Returned { .. } => 4,
            Self::Disbursed { .. } => 5,
        }
    }
}

/// Intake's own events, stored in the case stream.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type")]
pub enum CaseEvent {
    ApplicationSubmitted {
        case_number: String,
        accepted_by: String,
        submitted_at: DateTime<Utc>,
        application: Box<Application>,
        missing_materials: Vec<MissingMaterial>,
    },
    ApplicationAccepted {
        accepted_at: DateTime<Utc>,
    },
    ReferralIssued {
        referral_id: Uuid,
        department: Department,
        issued_at: DateTime<Utc>,
        deadline: NaiveDate,
    },
    MaterialsSupplemented {
        materials: Vec<String>,
        supplemented_at: DateTime<Utc>,
        supplemented_by: String,
    },
    /// A department's integration event about its lane, as received.
    LaneReported {
        event_id: Uuid,
        department: Department,
        referral_id: Uuid,
        occurred_at: DateTime<Utc>,
        report: LaneReport,
    },
    ApplicationWithdrawn {
        reason: String,
        withdrawn_at: DateTime<Utc>,
        withdrawn_by: String,
    },
}

impl DomainEvent for CaseEvent {
    const SCHEMA_VERSION: i32 = 1;
    fn event_type(&self) -> &'static str {
        match self {
            Self::ApplicationSubmitted { .. } => "ApplicationSubmitted",
            Self::ApplicationAccepted { .. } => "ApplicationAccepted",
            Self::ReferralIssued { .. } => "ReferralIssued",
            Self::MaterialsSupplemented { .. } => "MaterialsSupplemented",
            Self::LaneReported { .. } => "LaneReported",
            Self::ApplicationWithdrawn { .. } => "ApplicationWithdrawn",
        }
    }
}

/// Commands refused by the case's state (HTTP 409).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CaseError {
    #[error("the case has been withdrawn")]
    Withdrawn,
    #[error("every lane of the case is decided")]
    Decided,
}

/// Per-department time limits in working days (限时办结制).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Deadlines(pub BTreeMap<Department, u32>);

impl Default for Deadlines {
    fn default() -> Self {
        Self(BTreeMap::from([
            (Department::Medical, 20),
            (Department::Education, 15),
            (Department::Housing, 30),
            (Department::Temporary, 5),
        ]))
    }
}

/// What a decision needs besides the case: the clock, the ids it may use, policy.
pub struct Context<'a> {
    pub now: DateTime<Utc>,
    pub staff_id: &'a str,
    pub catalogue: &'a MaterialsCatalogue,
    pub deadlines: &'a Deadlines,
    pub calendar: &'a WorkingCalendar,
}

/// Service halls work on China Standard Time: dates and deadlines are local.
pub fn local_date(at: DateTime<Utc>) -> NaiveDate {
    at.with_timezone(&FixedOffset::east_opt(8 * 3600).expect("valid offset")).date_naive()
}

impl Context<'_> {
    fn referral(&self, department: Department) -> CaseEvent {
        let days = self.deadlines.0.get(&department).copied().unwrap_or(20);
        CaseEvent::ReferralIssued {
            referral_id: Uuid::now_v7(),
            department,
            issued_at: self.now,
            deadline: self.calendar.add_working_days(local_date(self.now), days),
        }
    }
}

/// Accepts an application at the window (一门受理).
pub fn submit(application: Application, case_number: String, ctx: &Context) -> Vec<CaseEvent> {
    let missing = ctx.catalogue.missing(&application.requests, &application.materials);
    let complete = missing.is_empty();
    let emergency = application
        .requests
        .iter()
        .any(|r| matches!(r, onedoor_contracts::intake::AidRequest::Temporary { emergency: true, .. }));
    let departments = application.departments();
    let mut events = vec![CaseEvent::ApplicationSubmitted {
        case_number,
        accepted_by: ctx.staff_id.to_string(),
        submitted_at: ctx.now,
        application: Box::new(application),
        missing_materials: missing,
    }];
    if complete {
        events.push(CaseEvent::ApplicationAccepted { accepted_at: ctx.now });
        events.extend(departments.into_iter().map(|d| ctx.referral(d)));
    } else if emergency {
        // Help first, paperwork after (先行救助).
        events.push(ctx.referral(Department::Temporary));
    }
    events
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lane {
    pub department: Department,
    pub referral_id: Option<Uuid>,
    pub issued_at: Option<DateTime<Utc>>,
    pub deadline: Option<NaiveDate>,
    pub reports: Vec<(DateTime<Utc>, LaneReport)>,
}

/// A case folded from its events.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Case {
    pub case_id: Uuid,
    pub version: i64,
    pub case_number: String,
    pub accepted_by: String,
    pub submitted_at: Option<DateTime<Utc>>,
    pub accepted_at: Option<DateTime<Utc>>,
    pub application: Option<Application>,
    pub handed_in: BTreeSet<String>,
    /// The one-time notice given at submission.
    pub noticed_missing: Vec<MissingMaterial>,
    pub supplemented_at: Vec<DateTime<Utc>>,
    pub lanes: BTreeMap<Department, Lane>,
    pub withdrawn: Option<(String, DateTime<Utc>)>,
    pub timeline: Vec<TimelineEntry>,
}

/// One line of the case's history as the window sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct TimelineEntry {
    pub at: DateTime<Utc>,
    pub event: String,
    #[schema(value_type = Option<String>)]
    pub department: Option<Department>,
}

impl Case {
    pub fn new(case_id: Uuid) -> Self {
        Self { case_id, ..Default::default() }
    }

    pub fn apply(&mut self, event: &CaseEvent) {
        self.version += 1;
        let (at, name, department) = match event {
            CaseEvent::ApplicationSubmitted {
                case_number,
                accepted_by,
                submitted_at,
                application,
                missing_materials,
            } => {
                self.noticed_missing = missing_materials.clone();
                self.case_number = case_number.clone();
                self.accepted_by = accepted_by.clone();
                self.submitted_at = Some(*submitted_at);
                self.handed_in = application.materials.clone();
                for d in application.departments() {
                    self.lanes.insert(d, Lane::new(d));
                }
                self.application = Some(application.as_ref().clone());
                (*submitted_at, "ApplicationSubmitted", None)
            }
            CaseEvent::ApplicationAccepted { accepted_at } => {
                self.accepted_at = Some(*accepted_at);
                (*accepted_at, "ApplicationAccepted", None)
            }
            CaseEvent::ReferralIssued { referral_id, department, issued_at, deadline } => {
                let lane = self.lanes.entry(*department).or_insert_with(|| Lane::new(*department));
                lane.referral_id = Some(*referral_id);
                lane.issued_at = Some(*issued_at);
                lane.deadline = Some(*deadline);
                (*issued_at, "ReferralIssued", Some(*department))
            }
            CaseEvent::MaterialsSupplemented { materials, supplemented_at, .. } => {
                self.handed_in.extend(materials.iter().cloned());
                self.supplemented_at.push(*supplemented_at);
                (*supplemented_at, "MaterialsSupplemented", None)
            }
            CaseEvent::LaneReported { department, occurred_at, report, .. } => {
                if let Some(lane) = self.lanes.get_mut(department) {
                    lane.reports.push((*occurred_at, report.clone()));
                    // Reports may arrive in any order; the lane reads them in the order they happened.
                    lane.reports.sort_by_key(|(at, r)| (*at, r.rank()));
                }
                (*occurred_at, report.event_name(), Some(*department))
            }
            CaseEvent::ApplicationWithdrawn { reason, withdrawn_at, .. } => {
                self.withdrawn = Some((reason.clone(), *withdrawn_at));
                (*withdrawn_at, "ApplicationWithdrawn", None)
            }
        };
        self.timeline.push(TimelineEntry { at, event: name.to_string(), department });
        self.timeline.sort_by_key(|t| t.at);
    }

    pub fn from_events<'a>(case_id: Uuid, events: impl IntoIterator<Item = &'a CaseEvent>) -> Self {
        let mut case = Self::new(case_id);
        for e in events {
            case.apply(e);
        }
        case
    }

    pub fn is_referred(&self, department: Department) -> bool {
        self.lanes.get(&department).is_some_and(|l| l.referral_id.is_some())
    }

    /// The referral ids issued so far.
    pub fn referral_ids(&self) -> Vec<Uuid> {
        self.lanes.values().filter_map(|l| l.referral_id).collect()
    }

    /// The materials one department's request still lacks, as noticed at
    /// submission (an emergency referred ahead of its paperwork).
    pub fn missing_materials_for(&self, department: Department) -> Vec<&str> {
        self.noticed_missing
            .iter()
            .filter(|m| m.needed_for.contains(&department) && !self.handed_in.contains(&m.code))
            .map(|m| m.code.as_str())
            .collect()
    }

    /// What is still missing of what the requests need.
    pub fn missing_materials(&self, catalogue: &MaterialsCatalogue) -> Vec<MissingMaterial> {
        match &self.application {
            Some(app) if self.accepted_at.is_none() => catalogue.missing(&app.requests, &self.handed_in),
            _ => Vec::new(),
        }
    }

    fn ensure_open(&self, calendar: &WorkingCalendar, today: NaiveDate) -> Result<(), CaseError> {
        if self.withdrawn.is_some() {
            return Err(CaseError::Withdrawn);
        }
        if !self.lanes.is_empty() && self.lanes.values().all(|l| l.view(self, calendar, today).status.is_final()) {
            return Err(CaseError::Decided);
        }
        Ok(())
    }

    /// Materials handed in at the window: completing the application (the
    /// remaining referrals go out) or answering a department's supplement request.
    pub fn supplement(&self, materials: Vec<String>, ctx: &Context) -> Result<Vec<CaseEvent>, CaseError> {
        self.ensure_open(ctx.calendar, local_date(ctx.now))?;
        let mut events = vec![CaseEvent::MaterialsSupplemented {
            materials: materials.clone(),
            supplemented_at: ctx.now,
            supplemented_by: ctx.staff_id.to_string(),
        }];
        if self.accepted_at.is_none()
            && let Some(app) = &self.application
        {
            let mut handed_in = self.handed_in.clone();
            handed_in.extend(materials);
            if ctx.catalogue.missing(&app.requests, &handed_in).is_empty() {
                events.push(CaseEvent::ApplicationAccepted { accepted_at: ctx.now });
                for d in app.departments() {
                    if !self.is_referred(d) {
                        events.push(ctx.referral(d));
                    }
                }
            }
        }
        Ok(events)
    }

    pub fn withdraw(&self, reason: String, ctx: &Context) -> Result<Vec<CaseEvent>, CaseError> {
        self.ensure_open(ctx.calendar, local_date(ctx.now))?;
        Ok(vec![CaseEvent::ApplicationWithdrawn {
            reason,
            withdrawn_at: ctx.now,
            withdrawn_by: ctx.staff_id.to_string(),
        }])
    }

    pub fn status(&self, calendar: &WorkingCalendar, today: NaiveDate) -> CaseStatus {
        if self.withdrawn.is_some() {
            CaseStatus::Withdrawn
        } else if self.accepted_at.is_none() {
            CaseStatus::AwaitingMaterials
        } else if self.lanes.values().all(|l| l.view(self, calendar, today).status.is_final()) {
            CaseStatus::Decided
        } else {
            CaseStatus::InProgress
        }
    }

    /// The one case view (the masked applicant; amounts, reasons, deadlines per lane).
    pub fn view(&self, catalogue: &MaterialsCatalogue, calendar: &WorkingCalendar, today: NaiveDate) -> CaseView {
        let applicant = self.application.as_ref().map(|a| ApplicantView {
            name: a.applicant.name.clone(),
            id_number_masked: onedoor_contracts::mask_id_number(&a.applicant.id_number),
        });
        CaseView {
            case_id: self.case_id,
            case_number: self.case_number.clone(),
            status: self.status(calendar, today),
            division_code: self.application.as_ref().map(|a| a.division_code.clone()).unwrap_or_default(),
            submitted_at: self.submitted_at,
            accepted_at: self.accepted_at,
            accepted_by: self.accepted_by.clone(),
            applicant,
            missing_materials: self.missing_materials(catalogue),
            lanes: self.lanes.values().map(|l| l.view(self, calendar, today)).collect(),
            timeline: self.timeline.clone(),
            withdrawal_reason: self.withdrawn.as_ref().map(|(r, _)| r.clone()),
            version: self.version,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum CaseStatus {
    AwaitingMaterials,
    InProgress,
    Decided,
    Closed,
    Withdrawn,
}

impl CaseStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::AwaitingMaterials => "awaiting_materials",
            Self::InProgress => "in_progress",
            Self::Decided => "decided",
            Self::Closed => "closed",
            Self::Withdrawn => "withdrawn",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum LaneStatus {
    Pending,
    Referred,
    SignedFor,
    SupplementRequested,
    UnderReview,
    Proposed,
    Approved,
    Rejected,
    Disbursed,
    Returned,
}

impl LaneStatus {
    pub fn is_final(self) -> bool {
        matches!(self, Self::Approved | Self::Rejected | Self::Disbursed | Self::Returned)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ApplicantView {
    pub name: String,
    pub id_number_masked: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct LaneView {
    #[schema(value_type = String)]
    pub department: Department,
    pub referral_id: Option<Uuid>,
    pub status: LaneStatus,
    pub amount_fen: Option<i64>,
    pub reason: Option<String>,
    pub supplement_items: Vec<String>,
    pub referred_at: Option<DateTime<Utc>>,
    pub deadline: Option<NaiveDate>,
    pub overdue: bool,
    pub updated_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct CaseView {
    pub case_id: Uuid,
    pub case_number: String,
    pub status: CaseStatus,
    pub division_code: String,
    pub submitted_at: Option<DateTime<Utc>>,
    pub accepted_at: Option<DateTime<Utc>>,
    /// The clerk who owns the case (first-contact responsibility).
    pub accepted_by: String,
    pub applicant: Option<ApplicantView>,
    pub missing_materials: Vec<MissingMaterial>,
    pub lanes: Vec<LaneView>,
    pub timeline: Vec<TimelineEntry>,
    pub withdrawal_reason: Option<String>,
    /// The case stream's version; also the ETag.
    pub version: i64,
}

impl LaneView {
    /// Whether the lane's time limit is counting: not decided, not waiting
    /// for a supplement, and the case not withdrawn.
    pub fn clock_runs(&self, case_withdrawn: bool) -> bool {
        !case_withdrawn && !self.status.is_final() && self.status != LaneStatus::SupplementRequested
    }

    pub fn is_overdue(&self, case_withdrawn: bool, today: NaiveDate) -> bool {
        self.clock_runs(case_withdrawn) && self.deadline.is_some_and(|d| today > d)
    }
}

impl Lane {
    fn new(department: Department) -> Self {
        Self { department, referral_id: None, issued_at: None, deadline: None, reports: Vec::new() }
    }

    /// The lane as the window sees it on `today`. The clock pauses from a
    /// supplement request until materials are next added at the window (or
    /// the department moves on), and the deadline moves by the paused working days.
    pub fn view(&self, case: &Case, calendar: &WorkingCalendar, today: NaiveDate) -> LaneView {
        let mut v = LaneView {
            department: self.department,
            referral_id: self.referral_id,
            status: if self.referral_id.is_some() { LaneStatus::Referred } else { LaneStatus::Pending },
            amount_fen: None,
            reason: None,
            supplement_items: Vec::new(),
            referred_at: self.issued_at,
            deadline: self.deadline,
            overdue: false,
            updated_at: self.issued_at,
        };
        let mut paused_since: Option<DateTime<Utc>> = None;
        let resume = |v: &mut LaneView, since: DateTime<Utc>, at: DateTime<Utc>| {
            if let Some(deadline) = v.deadline {
                let paused = calendar.working_days_between(local_date(since), local_date(at));
                v.deadline = Some(calendar.add_working_days(deadline, paused));
            }
        };
        // Window supplements answer a pending supplement request.
        let mut supplements = case.supplemented_at.iter().copied().peekable();
        for (at, report) in &self.reports {
            if let Some(since) = paused_since {
                while let Some(s) = supplements.next_if(|s| *s <= *at) {
                    if s >= since {
                        resume(&mut v, since, s);
                        paused_since = None;
                        v.status = LaneStatus::UnderReview;
                        break;
                    }
                }
                if let Some(since) = paused_since.take() {
                    resume(&mut v, since, *at);
                }
            }
            v.updated_at = Some(*at);
            match report {
                LaneReport::SignedFor => v.status = LaneStatus::SignedFor,
                LaneReport::SupplementRequested { materials, .. } => {
                    v.status = LaneStatus::SupplementRequested;
                    v.supplement_items = materials.clone();
                    paused_since = Some(*at);
                }
                LaneReport::ProposalMade { amount_fen, reason, .. } => {
                    v.status = LaneStatus::Proposed;
                    v.amount_fen = *amount_fen;
                    v.reason = reason.clone();
                }
                LaneReport::Approved { amount_fen } => {
                    v.status = LaneStatus::Approved;
                    v.amount_fen = Some(*amount_fen);
                }
                LaneReport::Rejected { reason } => {
                    v.status = LaneStatus::Rejected;
                    v.amount_fen = None;
                    v.reason = Some(reason.clone());
                }
                LaneReport::Disbursed { amount_fen, .. } => {
                    v.status = LaneStatus::Disbursed;
                    v.amount_fen = Some(*amount_fen);
                }
                LaneReport::Returned { reason } => {
                    v.status = LaneStatus::Returned;
                    v.reason = Some(reason.clone());
                }
            }
            if v.status != LaneStatus::SupplementRequested {
                v.supplement_items.clear();
            }
        }
        if let Some(since) = paused_since {
            match supplements.find(|s| *s >= since) {
                Some(s) => {
                    resume(&mut v, since, s);
                    v.status = LaneStatus::UnderReview;
                    v.supplement_items.clear();
                    v.updated_at = Some(s);
                }
                None => {
                    // Still paused: the deadline moves with every working day waited.
                    resume(&mut v, since, today_as_utc(today));
                }
            }
        }
        v.overdue = v.is_overdue(case.withdrawn.is_some(), today);
        v
    }
}

/// Noon of a local date, as an instant (for pause arithmetic).
fn today_as_utc(today: NaiveDate) -> DateTime<Utc> {
    today.and_hms_opt(4, 0, 0).expect("valid time").and_utc()
}

#[cfg(test)]
mod tests;
