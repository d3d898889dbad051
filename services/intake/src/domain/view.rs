//! The one case view (the window's picture of a case) and its clocks. Pure:
//! rendered from a folded [`Case`] and today's date, so a view rebuilt from
//! the log is the view served. A line's time limit counts working days on
//! the official calendar and pauses while a supplement is awaited.

use super::case::{Case, CaseLine, InformedBy, LaneReport, TimelineEntry};
use super::materials::{MaterialsCatalogue, MissingMaterial};
use chrono::{DateTime, NaiveDate, Utc};
use onedoor_contracts::Department;
use onedoor_working_calendar::{WorkingCalendar, local_date};
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use utoipa::ToSchema;
use uuid::Uuid;

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
    pub const ALL: [CaseStatus; 5] =
        [Self::AwaitingMaterials, Self::InProgress, Self::Decided, Self::Closed, Self::Withdrawn];

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

/// Where a line stands, as the window sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum CaseLineStatus {
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
    /// The application was withdrawn and the department closed the line.
    Withdrawn,
    /// The application was withdrawn; the department has not yet said
    /// whether it closed the line (or had already paid).
    WithdrawalPending,
}

impl CaseLineStatus {
    pub fn is_final(self) -> bool {
        matches!(self, Self::Approved | Self::Rejected | Self::Disbursed | Self::Returned | Self::Withdrawn)
    }
}

/// The applicant as the window's lists and views show them: the ID number masked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct MaskedApplicant {
    pub name: String,
    pub id_number_masked: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct CaseLineView {
    #[schema(value_type = String)]
    pub department: Department,
    pub referral_id: Option<Uuid>,
    pub status: CaseLineStatus,
    pub amount_fen: Option<i64>,
    /// Paid so far (instalments add up; the line is `disbursed` when fully paid).
    pub disbursed_fen: Option<i64>,
    /// Set when the approval overrode the policy's entitlement: the approver's reason.
    pub override_reason: Option<String>,
    pub reason: Option<String>,
    pub supplement_items: Vec<String>,
    pub referred_at: Option<DateTime<Utc>>,
    pub deadline: Option<NaiveDate>,
    pub overdue: bool,
    pub updated_at: Option<DateTime<Utc>>,
    /// The department's caseworker who signed the lane for.
    pub signed_by: Option<String>,
    /// Who in the department decided the lane (approved, rejected or returned it).
    pub decided_by: Option<String>,
    /// Set once an approver of the department extended the time limit.
    pub extension: Option<LaneExtension>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct LaneExtension {
    /// The new time limit.
    pub deadline: NaiveDate,
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct CaseView {
    pub case_id: Uuid,
    pub case_number: String,
    pub status: CaseStatus,
    /// The household in the register (`GET /api/v1/households`).
    pub household_id: Option<Uuid>,
    pub division_code: String,
    pub submitted_at: Option<DateTime<Utc>>,
    pub accepted_at: Option<DateTime<Utc>>,
    /// The clerk who accepted the case.
    pub accepted_by: String,
    /// The clerk responsible for the case now (first-contact
    /// responsibility): the accepting clerk until a hand-over.
    pub owner: String,
    pub applicant: Option<MaskedApplicant>,
    pub missing_materials: Vec<MissingMaterial>,
    pub lanes: Vec<CaseLineView>,
    pub timeline: Vec<TimelineEntry>,
    pub withdrawal_reason: Option<String>,
    /// How the applicant was told, once the case is closed (结案).
    pub closure: Option<ClosureView>,
    /// The messages sent to the applicant (SMS): which, when, through what.
    pub notifications: Vec<super::case::SentNotification>,
    /// The case stream's version; also the ETag.
    pub version: i64,
    /// The trace the application was submitted in (32 hex digits): where an
    /// operator finds the submission and the referrals in Jaeger; later
    /// steps have traces of their own that link to it.
    #[serde(default)]
    pub trace_id: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ClosureView {
    pub informed_by: InformedBy,
    pub note: Option<String>,
    pub closed_at: DateTime<Utc>,
    /// Staff id of the clerk who closed the case.
    pub closed_by: String,
}

impl CaseLineView {
    /// Whether the line's time limit is counting: not decided, not waiting
    /// for a supplement, and the case not withdrawn.
    pub fn clock_runs(&self, case_withdrawn: bool) -> bool {
        !case_withdrawn && !self.status.is_final() && self.status != CaseLineStatus::SupplementRequested
    }

    pub fn is_overdue(&self, case_withdrawn: bool, today: NaiveDate) -> bool {
        self.clock_runs(case_withdrawn) && self.deadline.is_some_and(|d| today > d)
    }
}

impl CaseView {
    /// Overdue flags depend on today, not on when the view was written.
    pub fn refresh_overdue(&mut self, today: NaiveDate) {
        let withdrawn = self.status == CaseStatus::Withdrawn;
        for line in &mut self.lanes {
            line.overdue = line.is_overdue(withdrawn, today);
        }
    }

    /// Whether the view changes with the date beyond its overdue flags: a
    /// lane still paused for a supplement (its deadline moves with every
    /// working day waited) or awaiting a withdrawal. Any other view written
    /// on an earlier day is today's once [`CaseView::refresh_overdue`] ran.
    pub fn depends_on_today(&self) -> bool {
        self.lanes
            .iter()
            .any(|l| matches!(l.status, CaseLineStatus::SupplementRequested | CaseLineStatus::WithdrawalPending))
    }

    /// The earliest deadline still counting (for the list's overdue filter).
    pub fn next_deadline(&self) -> Option<NaiveDate> {
        let withdrawn = self.status == CaseStatus::Withdrawn;
        self.lanes.iter().filter(|l| l.clock_runs(withdrawn)).filter_map(|l| l.deadline).min()
    }

    /// The 9-digit township the case belongs to.
    pub fn township(&self) -> &str {
        self.division_code.get(..9).unwrap_or_default()
    }
}

impl Case {
    pub fn status(&self) -> CaseStatus {
        if self.closed.is_some() {
            CaseStatus::Closed
        } else if self.withdrawn.is_some() {
            CaseStatus::Withdrawn
        } else if self.accepted_at.is_none() {
            CaseStatus::AwaitingMaterials
        } else if self.lines.iter().all(CaseLine::is_decided) {
            CaseStatus::Decided
        } else {
            CaseStatus::InProgress
        }
    }

    /// The one case view (the masked applicant; amounts, reasons, deadlines per line).
    pub fn view(&self, catalogue: &MaterialsCatalogue, calendar: &WorkingCalendar, today: NaiveDate) -> CaseView {
        let applicant = self.application.as_ref().map(|a| MaskedApplicant {
            name: a.applicant.name.clone(),
            id_number_masked: onedoor_contracts::mask_id_number(&a.applicant.id_number),
        });
        CaseView {
            case_id: self.case_id,
            case_number: self.case_number.clone(),
            status: self.status(),
            household_id: self.household_id,
            division_code: self.application.as_ref().map(|a| a.division_code.clone()).unwrap_or_default(),
            submitted_at: self.submitted_at,
            accepted_at: self.accepted_at,
            accepted_by: self.accepted_by.clone(),
            owner: self.owner.clone(),
            applicant,
            missing_materials: self.missing_materials(catalogue),
            lanes: self.lanes_in_order().map(|l| l.view(self, calendar, today)).collect(),
            timeline: self.timeline.clone(),
            withdrawal_reason: self.withdrawn.as_ref().map(|(r, _)| r.clone()),
            notifications: self.notifications.clone(),
            closure: self.closed.as_ref().map(|c| ClosureView {
                informed_by: c.informed_by,
                note: c.note.clone(),
                closed_at: c.closed_at,
                closed_by: c.closed_by.clone(),
            }),
            version: self.version,
            trace_id: self.traceparent.as_deref().and_then(|t| t.split('-').nth(1)).map(str::to_string),
        }
    }
}

impl Case {
    /// Lines by department (the table's order), each department's in the
    /// order they were opened: a returned line before the one re-opened.
    fn lanes_in_order(&self) -> impl Iterator<Item = &CaseLine> {
        let mut lines: Vec<&CaseLine> = self.lines.iter().collect();
        lines.sort_by_key(|l| l.department);
        lines.into_iter()
    }
}

impl CaseLine {
    /// The line as the window sees it on `today`. The clock pauses from a
    /// supplement request until materials are next added at the window (or
    /// the department moves on), and the deadline moves by the paused working days.
    pub fn view(&self, case: &Case, calendar: &WorkingCalendar, today: NaiveDate) -> CaseLineView {
        let mut v = CaseLineView {
            department: self.department,
            referral_id: self.referral_id,
            status: if self.referral_id.is_some() { CaseLineStatus::Referred } else { CaseLineStatus::Pending },
            amount_fen: None,
            disbursed_fen: None,
            override_reason: None,
            reason: None,
            supplement_items: Vec::new(),
            referred_at: self.issued_at,
            deadline: self.deadline,
            overdue: false,
            updated_at: self.issued_at,
            signed_by: self.signed_by.clone(),
            decided_by: self.decided_by.clone(),
            extension: None,
        };
        let mut paused_since: Option<DateTime<Utc>> = None;
        let resume = |v: &mut CaseLineView, since: DateTime<Utc>, at: DateTime<Utc>| {
            if let Some(deadline) = v.deadline {
                let paused = calendar.working_days_between(local_date(since), local_date(at));
                v.deadline = Some(calendar.add_working_days(deadline, paused));
            }
        };
        // Window supplements answer a pending supplement request once every
        // item it asked for has been handed in since (the department's lane
        // applies the same rule: `Lane::supplemented`).
        let mut supplements = case.supplements.iter().peekable();
        let mut supplied: BTreeSet<&str> = BTreeSet::new();
        for (_, at, report) in &self.reports {
            if let Some(since) = paused_since {
                while let Some((s, materials)) = supplements.next_if(|(s, _)| *s <= *at) {
                    if *s >= since {
                        supplied.extend(materials.iter().map(String::as_str));
                        if v.supplement_items.iter().all(|i| supplied.contains(i.as_str())) {
                            resume(&mut v, since, *s);
                            paused_since = None;
                            v.status = CaseLineStatus::UnderReview;
                            break;
                        }
                    }
                }
                if let Some(since) = paused_since.take() {
                    if matches!(report, LaneReport::DeadlineExtended { .. }) {
                        // An extension does not end the pause (see below).
                        paused_since = Some(since);
                    } else {
                        resume(&mut v, since, *at);
                    }
                }
            }
            v.updated_at = Some(*at);
            match report {
                LaneReport::SignedFor => v.status = CaseLineStatus::SignedFor,
                LaneReport::SupplementRequested { materials, .. } => {
                    v.status = CaseLineStatus::SupplementRequested;
                    v.supplement_items = materials.clone();
                    paused_since = Some(*at);
                    supplied.clear();
                }
                LaneReport::ProposalMade { amount_fen, reason, .. } => {
                    v.status = CaseLineStatus::Proposed;
                    v.amount_fen = *amount_fen;
                    v.reason = reason.clone();
                }
                LaneReport::Approved { amount_fen, override_reason } => {
                    v.status = CaseLineStatus::Approved;
                    v.amount_fen = Some(*amount_fen);
                    v.override_reason = override_reason.clone();
                }
                LaneReport::Rejected { reason } => {
                    v.status = CaseLineStatus::Rejected;
                    v.amount_fen = None;
                    v.reason = Some(reason.clone());
                }
                LaneReport::Disbursed { amount_fen, .. } => {
                    let paid = v.disbursed_fen.unwrap_or(0).saturating_add(*amount_fen);
                    v.disbursed_fen = Some(paid);
                    let approved = *v.amount_fen.get_or_insert(paid);
                    if paid >= approved {
                        v.status = CaseLineStatus::Disbursed;
                    }
                }
                LaneReport::Returned { reason } => {
                    v.status = CaseLineStatus::Returned;
                    v.reason = Some(reason.clone());
                }
                LaneReport::Withdrawn => v.status = CaseLineStatus::Withdrawn,
                LaneReport::DeadlineExtended { deadline, reason } => {
                    // The new date counts from now; a pause still running
                    // goes on from here (the department's lane counts the same).
                    v.deadline = Some(*deadline);
                    v.extension = Some(LaneExtension { deadline: *deadline, reason: reason.clone() });
                    if paused_since.is_some() {
                        paused_since = Some(*at);
                    }
                }
            }
            if v.status != CaseLineStatus::SupplementRequested {
                v.supplement_items.clear();
            }
        }
        if let Some(since) = paused_since {
            let answered = supplements.filter(|(s, _)| *s >= since).find(|(_, materials)| {
                supplied.extend(materials.iter().map(String::as_str));
                v.supplement_items.iter().all(|i| supplied.contains(i.as_str()))
            });
            match answered.map(|(s, _)| *s) {
                Some(s) => {
                    resume(&mut v, since, s);
                    v.status = CaseLineStatus::UnderReview;
                    v.supplement_items.clear();
                    v.updated_at = Some(s);
                }
                None => {
                    // Still paused: the deadline moves with every working day waited.
                    resume(&mut v, since, today_as_utc(today));
                }
            }
        }
        // After a withdrawal a line never looks live: it shows what the
        // department did (closed it, or had already paid, rejected or
        // returned it), or that its answer is awaited.
        if case.withdrawn.is_some()
            && !matches!(
                v.status,
                CaseLineStatus::Disbursed
                    | CaseLineStatus::Rejected
                    | CaseLineStatus::Returned
                    | CaseLineStatus::Withdrawn
            )
        {
            v.status =
                if v.referral_id.is_some() { CaseLineStatus::WithdrawalPending } else { CaseLineStatus::Withdrawn };
            v.supplement_items.clear();
        }
        v.overdue = v.is_overdue(case.withdrawn.is_some(), today);
        v
    }
}

/// Noon of a local date, as an instant (for pause arithmetic).
fn today_as_utc(today: NaiveDate) -> DateTime<Utc> {
    today.and_hms_opt(4, 0, 0).expect("valid time").and_utc()
}
