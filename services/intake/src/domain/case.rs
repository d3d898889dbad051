//! The case: one application at the window, and everything that happened to
//! it, as events. Pure: commands ([`submit`], [`Case::supplement`],
//! [`Case::add_line`], [`Case::withdraw`], [`Case::close`]) turn into events, [`Case::apply`] folds events into
//! state. What the window sees of a case, with its clocks, is in
//! [`super::view`]. Time and ids come in through [`Context`].

use super::application::Application;
use super::materials::{MaterialsCatalogue, MissingMaterial};
use chrono::{DateTime, NaiveDate, Utc};
use onedoor_contracts::Department;
use onedoor_contracts::department::{DisbursementChannel, ProposalOutcome};
use onedoor_contracts::intake::AidRequest;
use onedoor_working_calendar::{WorkingCalendar, local_date};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use utoipa::ToSchema;
use uuid::Uuid;

/// Stream type of case streams in intake's event store.
pub const STREAM_TYPE: &str = "case";

/// What a department reported about its lane (from its integration events).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LaneReport {
    SignedFor,
    SupplementRequested {
        materials: Vec<String>,
        note: Option<String>,
    },
    ProposalMade {
        outcome: ProposalOutcome,
        amount_fen: Option<i64>,
        reason: Option<String>,
    },
    Approved {
        amount_fen: i64,
        /// The approver's reason when the approval overrode the entitlement.
        override_reason: Option<String>,
    },
    Rejected {
        reason: String,
    },
    Disbursed {
        amount_fen: i64,
        channel: DisbursementChannel,
    },
    Returned {
        reason: String,
    },
    /// The department closed the lane after the window's withdrawal.
    Withdrawn,
    /// An approver extended the lane's time limit to `deadline`.
    DeadlineExtended {
        deadline: NaiveDate,
        reason: String,
    },
}

impl LaneReport {
    pub fn event_name(&self) -> &'static str {
        match self {
            Self::SignedFor => "ReferralSignedFor",
            Self::SupplementRequested { .. } => "SupplementRequested",
            Self::ProposalMade { .. } => "ProposalMade",
            Self::Approved { .. } => "ReferralApproved",
            Self::Rejected { .. } => "ReferralRejected",
            Self::Disbursed { .. } => "AidDisbursed",
            Self::Returned { .. } => "ReferralReturned",
            Self::Withdrawn => "ReferralWithdrawn",
            Self::DeadlineExtended { .. } => "ReferralDeadlineExtended",
        }
    }

    /// Position in the workflow, to order reports with the same timestamp.
    fn rank(&self) -> u8 {
        match self {
            Self::SignedFor => 1,
            Self::SupplementRequested { .. } | Self::DeadlineExtended { .. } => 2,
            Self::ProposalMade { .. } => 3,
            Self::Approved { .. } | Self::Rejected { .. } | Self::Returned { .. } => 4,
            Self::Disbursed { .. } => 5,
            Self::Withdrawn => 6,
        }
    }

    /// Whether the department has decided the line with this report.
    pub fn decides(&self) -> bool {
        matches!(
            self,
            Self::Approved { .. }
                | Self::Rejected { .. }
                | Self::Disbursed { .. }
                | Self::Returned { .. }
                | Self::Withdrawn
        )
    }
}

/// Intake's own events, kept in the case stream (in the stored format of
/// `crate::stored`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CaseEvent {
    ApplicationSubmitted {
        case_number: String,
        accepted_by: String,
        submitted_at: DateTime<Utc>,
        application: Box<Application>,
        missing_materials: Vec<MissingMaterial>,
        /// The household in the register (`None` in cases submitted before it).
        household_id: Option<Uuid>,
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
        /// The lane's version after the event (`None` from earlier publishers).
        lane_version: Option<i64>,
        /// The department's staff id who acted (`None` in reports recorded before it was kept).
        by: Option<String>,
        occurred_at: DateTime<Utc>,
        report: LaneReport,
    },
    ApplicationWithdrawn {
        reason: String,
        withdrawn_at: DateTime<Utc>,
        withdrawn_by: String,
    },
    /// An aid line added to the open case at the window (also how a lane a
    /// department returned is re-routed to another line).
    LineAdded {
        request: AidRequest,
        added_at: DateTime<Utc>,
        added_by: String,
    },
    /// The case was handed over to another clerk of the township, who owns
    /// it from now on (first-contact responsibility, 首问负责).
    HandedOver {
        to: String,
        handed_over_at: DateTime<Utc>,
        handed_over_by: String,
    },
    /// A scan of a material was uploaded (the bytes are in the document store).
    DocumentAttached(CaseDocument),
    /// A message to the applicant left through the SMS provider.
    NotificationSent(SentNotification),
    /// Every lane was final and the window told the applicant: 结案.
    CaseClosed {
        informed_by: InformedBy,
        note: Option<String>,
        closed_at: DateTime<Utc>,
        closed_by: String,
    },
    /// The household's personal data was erased at the end of its retention
    /// (its key destroyed): recorded in the case's history, announced to the
    /// departments.
    PersonalDataErased {
        erased_at: DateTime<Utc>,
        erased_by: String,
    },
}

/// A scan of a material, as the case's log records it: the bytes are in the
/// document store under their digest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct CaseDocument {
    pub document_id: Uuid,
    /// The catalogue code of the material.
    pub material: String,
    pub sha256: String,
    /// `image/jpeg` | `image/png` | `application/pdf`
    pub content_type: String,
    pub size: u64,
    pub attached_at: DateTime<Utc>,
    pub attached_by: String,
}

/// A message sent to the applicant, as the case's log records it (what
/// kind, when, through which provider; never the phone number or the words).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct SentNotification {
    pub notification_id: Uuid,
    /// `accepted` | `notice` | `decision`
    pub kind: String,
    /// `log` | `aliyun`
    pub provider: String,
    pub sent_at: DateTime<Utc>,
}

/// How the applicant was told of the outcome before the case was closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum InformedBy {
    Sms,
    Letter,
    InPerson,
}

/// Commands refused by the case's state (HTTP 409).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CaseError {
    #[error("the case has been withdrawn")]
    Withdrawn,
    #[error("every lane of the case is decided")]
    Decided,
    #[error("the case is closed")]
    Closed,
    #[error("the case already has this aid line open")]
    LineOpen,
    #[error("not every lane of the case is final")]
    LanesNotFinal,
    #[error("the case is already owned by this clerk")]
    SameOwner,
}

/// Per-department time limits in working days (限时办结制). Every department
/// has one: [`Deadlines::new`] refuses a table that misses any.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Deadlines(BTreeMap<Department, u32>);

impl Deadlines {
    pub fn new(days: BTreeMap<Department, u32>) -> Result<Self, String> {
        for department in Department::ALL {
            match days.get(&department) {
                Some(n) if *n > 0 => {}
                _ => return Err(format!("no working-day time limit for the {department} line")),
            }
        }
        Ok(Self(days))
    }

    /// The national defaults of the table of aid lines.
    pub fn defaults() -> Self {
        Self(Department::ALL.into_iter().map(|d| (d, d.line().default_working_days)).collect())
    }

    pub fn working_days(&self, department: Department) -> u32 {
        self.0[&department]
    }

    pub fn all(&self) -> BTreeMap<Department, u32> {
        self.0.clone()
    }
}

/// What a decision needs besides the case: the clock, the acting clerk, the
/// ids it may use (minted by the caller), and the window's policy.
pub struct Context<'a> {
    pub now: DateTime<Utc>,
    pub staff_id: &'a str,
    /// An id for each referral this command may issue.
    pub referral_ids: &'a BTreeMap<Department, Uuid>,
    pub catalogue: &'a MaterialsCatalogue,
    pub deadlines: &'a Deadlines,
    pub calendar: &'a WorkingCalendar,
}

impl Context<'_> {
    fn referral(&self, department: Department) -> CaseEvent {
        CaseEvent::ReferralIssued {
            referral_id: *self.referral_ids.get(&department).expect("the caller passes an id for every department"),
            department,
            issued_at: self.now,
            deadline: self.calendar.add_working_days(local_date(self.now), self.deadlines.working_days(department)),
        }
    }
}

/// Accepts an application at the window (一门受理).
#[tracing::instrument(name = "decide submission", skip_all)]
pub fn submit(
    application: Application,
    case_number: String,
    household_id: Option<Uuid>,
    ctx: &Context,
) -> Vec<CaseEvent> {
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
        household_id,
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

/// One aid line of the case, as the window knows it: the request, the
/// referral issued and what the department reported since.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaseLine {
    pub department: Department,
    pub request: AidRequest,
    pub referral_id: Option<Uuid>,
    pub issued_at: Option<DateTime<Utc>>,
    pub deadline: Option<NaiveDate>,
    /// The lane's version (0 from earlier publishers), the time and the
    /// report, in the lane's own order (see [`Case::apply`]).
    pub reports: Vec<(i64, DateTime<Utc>, LaneReport)>,
    /// The department's staff who signed the lane for and who decided it.
    pub signed_by: Option<String>,
    pub decided_by: Option<String>,
}

impl CaseLine {
    fn new(request: AidRequest) -> Self {
        Self {
            department: request.department(),
            request,
            referral_id: None,
            issued_at: None,
            deadline: None,
            reports: Vec::new(),
            signed_by: None,
            decided_by: None,
        }
    }

    /// Whether the department returned the line to the window (not its matter).
    pub fn is_returned(&self) -> bool {
        self.reports.last().is_some_and(|(_, _, r)| matches!(r, LaneReport::Returned { .. }))
    }

    /// Referred to no department yet, and not closed by a withdrawal.
    fn is_pending(&self) -> bool {
        self.referral_id.is_none() && !self.is_decided()
    }

    /// Whether the department has decided this line (approved, rejected,
    /// paid or returned it).
    pub fn is_decided(&self) -> bool {
        self.reports.last().is_some_and(|(_, _, r)| r.decides())
    }
}

/// A case folded from its events.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Case {
    pub case_id: Uuid,
    pub version: i64,
    pub case_number: String,
    /// The household in the register.
    pub household_id: Option<Uuid>,
    pub accepted_by: String,
    /// The clerk responsible for the case now: the accepting clerk until a hand-over.
    pub owner: String,
    pub submitted_at: Option<DateTime<Utc>>,
    pub accepted_at: Option<DateTime<Utc>>,
    pub application: Option<Application>,
    pub handed_in: BTreeSet<String>,
    /// The one-time notice given at submission.
    pub noticed_missing: Vec<MissingMaterial>,
    /// Materials handed in after submission: when, and which.
    pub supplements: Vec<(DateTime<Utc>, Vec<String>)>,
    /// Every line in the order it was opened; a department's line returned
    /// and opened again appears twice (the returned one stays in the history).
    pub lines: Vec<CaseLine>,
    pub withdrawn: Option<(String, DateTime<Utc>)>,
    pub closed: Option<Closure>,
    /// When the household's personal data was erased (ADR 0015).
    pub erased_at: Option<DateTime<Utc>>,
    /// Scans uploaded at the window, in the order they came.
    pub documents: Vec<CaseDocument>,
    /// Messages sent to the applicant.
    pub notifications: Vec<SentNotification>,
    pub timeline: Vec<TimelineEntry>,
    /// The W3C trace context the application was submitted in (from its
    /// first event's metadata): later steps link to that trace.
    pub traceparent: Option<String>,
}

/// How and when the case was closed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Closure {
    pub informed_by: InformedBy,
    pub note: Option<String>,
    pub closed_at: DateTime<Utc>,
    pub closed_by: String,
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
                household_id,
            } => {
                self.household_id = *household_id;
                self.noticed_missing = missing_materials.clone();
                self.case_number = case_number.clone();
                self.accepted_by = accepted_by.clone();
                self.owner = accepted_by.clone();
                self.submitted_at = Some(*submitted_at);
                self.handed_in = application.materials.clone();
                self.lines = application.requests.iter().cloned().map(CaseLine::new).collect();
                self.application = Some(application.as_ref().clone());
                (*submitted_at, "ApplicationSubmitted", None)
            }
            CaseEvent::ApplicationAccepted { accepted_at } => {
                self.accepted_at = Some(*accepted_at);
                (*accepted_at, "ApplicationAccepted", None)
            }
            CaseEvent::ReferralIssued { referral_id, department, issued_at, deadline } => {
                if let Some(line) = self.lines.iter_mut().rev().find(|l| l.department == *department && l.is_pending())
                {
                    line.referral_id = Some(*referral_id);
                    line.issued_at = Some(*issued_at);
                    line.deadline = Some(*deadline);
                }
                (*issued_at, "ReferralIssued", Some(*department))
            }
            CaseEvent::MaterialsSupplemented { materials, supplemented_at, .. } => {
                self.handed_in.extend(materials.iter().cloned());
                self.supplements.push((*supplemented_at, materials.clone()));
                (*supplemented_at, "MaterialsSupplemented", None)
            }
            CaseEvent::LaneReported { department, referral_id, lane_version, occurred_at, report, by, .. } => {
                if let Some(line) = self.lines.iter_mut().find(|l| l.referral_id == Some(*referral_id)) {
                    match report {
                        LaneReport::SignedFor => line.signed_by = by.clone(),
                        LaneReport::Approved { .. } | LaneReport::Rejected { .. } | LaneReport::Returned { .. } => {
                            line.decided_by = by.clone()
                        }
                        _ => {}
                    }
                    // Reports may arrive in any order; the line reads them in
                    // the lane's own order (its version), never by the clocks
                    // of different machines. Reports of earlier publishers,
                    // without a version, fall back to time and workflow rank.
                    let key = (lane_version.unwrap_or(0), *occurred_at, report.rank());
                    let at = line.reports.partition_point(|(v, t, r)| (*v, *t, r.rank()) <= key);
                    line.reports.insert(at, (key.0, *occurred_at, report.clone()));
                }
                (*occurred_at, report.event_name(), Some(*department))
            }
            CaseEvent::ApplicationWithdrawn { reason, withdrawn_at, .. } => {
                self.withdrawn = Some((reason.clone(), *withdrawn_at));
                (*withdrawn_at, "ApplicationWithdrawn", None)
            }
            CaseEvent::LineAdded { request, added_at, .. } => {
                let line = CaseLine::new(request.clone());
                let department = line.department;
                self.lines.push(line);
                (*added_at, "LineAdded", Some(department))
            }
            CaseEvent::DocumentAttached(document) => {
                self.documents.push(document.clone());
                (document.attached_at, "DocumentAttached", None)
            }
            CaseEvent::NotificationSent(sent) => {
                self.notifications.push(sent.clone());
                (sent.sent_at, "NotificationSent", None)
            }
            CaseEvent::HandedOver { to, handed_over_at, .. } => {
                self.owner = to.clone();
                (*handed_over_at, "HandedOver", None)
            }
            CaseEvent::CaseClosed { informed_by, note, closed_at, closed_by } => {
                self.closed = Some(Closure {
                    informed_by: *informed_by,
                    note: note.clone(),
                    closed_at: *closed_at,
                    closed_by: closed_by.clone(),
                });
                (*closed_at, "CaseClosed", None)
            }
            CaseEvent::PersonalDataErased { erased_at, .. } => {
                self.erased_at = Some(*erased_at);
                (*erased_at, "PersonalDataErased", None)
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

    /// The department's current line (the latest opened).
    pub fn line(&self, department: Department) -> Option<&CaseLine> {
        self.lines.iter().rev().find(|l| l.department == department)
    }

    /// The line a referral was issued for.
    pub fn line_of_referral(&self, referral_id: Uuid) -> Option<&CaseLine> {
        self.lines.iter().find(|l| l.referral_id == Some(referral_id))
    }

    /// Whether every line of the case is decided.
    pub fn is_decided(&self) -> bool {
        !self.lines.is_empty() && self.lines.iter().all(CaseLine::is_decided)
    }

    /// The referral ids issued so far.
    pub fn referral_ids(&self) -> Vec<Uuid> {
        self.lines.iter().filter_map(|l| l.referral_id).collect()
    }

    /// The departments whose current line still holds the household's place
    /// for that line (the duplicate guard): every line until the case is
    /// closed or withdrawn, except a line returned to the window.
    pub fn held_lines(&self) -> Vec<Department> {
        if self.closed.is_some() || self.withdrawn.is_some() {
            return Vec::new();
        }
        Department::ALL.into_iter().filter(|d| self.line(*d).is_some_and(|l| !l.is_returned())).collect()
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

    /// What is still missing of what the requests need: before acceptance,
    /// every line's; after it, the lines added since and not yet referred.
    pub fn missing_materials(&self, catalogue: &MaterialsCatalogue) -> Vec<MissingMaterial> {
        if self.closed.is_some() || self.withdrawn.is_some() {
            return Vec::new();
        }
        let requests: Vec<AidRequest> = self
            .lines
            .iter()
            .filter(|l| if self.accepted_at.is_none() { !l.is_decided() } else { l.is_pending() })
            .map(|l| l.request.clone())
            .collect();
        catalogue.missing(&requests, &self.handed_in)
    }

    /// Neither withdrawn nor closed.
    fn ensure_not_over(&self) -> Result<(), CaseError> {
        if self.withdrawn.is_some() {
            return Err(CaseError::Withdrawn);
        }
        if self.closed.is_some() {
            return Err(CaseError::Closed);
        }
        Ok(())
    }

    fn ensure_open(&self) -> Result<(), CaseError> {
        self.ensure_not_over()?;
        if self.is_decided() {
            return Err(CaseError::Decided);
        }
        Ok(())
    }

    /// Materials handed in at the window: completing the application (the
    /// remaining referrals go out) or answering a department's supplement request.
    #[tracing::instrument(name = "decide supplement", skip_all, fields(case.id = %self.case_id))]
    pub fn supplement(&self, materials: Vec<String>, ctx: &Context) -> Result<Vec<CaseEvent>, CaseError> {
        self.ensure_open()?;
        let mut events = vec![CaseEvent::MaterialsSupplemented {
            materials: materials.clone(),
            supplemented_at: ctx.now,
            supplemented_by: ctx.staff_id.to_string(),
        }];
        let mut handed_in = self.handed_in.clone();
        handed_in.extend(materials);
        let pending: Vec<&CaseLine> = self.lines.iter().filter(|l| l.is_pending()).collect();
        if self.accepted_at.is_none() {
            let requests: Vec<AidRequest> =
                self.lines.iter().filter(|l| !l.is_decided()).map(|l| l.request.clone()).collect();
            if ctx.catalogue.missing(&requests, &handed_in).is_empty() {
                events.push(CaseEvent::ApplicationAccepted { accepted_at: ctx.now });
                events.extend(pending.iter().map(|l| ctx.referral(l.department)));
            }
        } else {
            // A line added to the accepted case goes out once its own materials are in.
            for line in pending {
                if ctx.catalogue.required_for(&line.request).iter().all(|m| handed_in.contains(*m)) {
                    events.push(ctx.referral(line.department));
                }
            }
        }
        Ok(events)
    }

    /// Adds an aid line to the open case, or re-routes a line a department
    /// returned: the returned line stays in the history and the new one goes
    /// out (at once if the case is accepted and the line's materials are in,
    /// or ahead of its paperwork for an emergency).
    #[tracing::instrument(name = "decide added line", skip_all, fields(case.id = %self.case_id))]
    pub fn add_line(&self, request: AidRequest, ctx: &Context) -> Result<Vec<CaseEvent>, CaseError> {
        self.ensure_not_over()?;
        let department = request.department();
        if self.line(department).is_some_and(|l| !l.is_returned()) {
            return Err(CaseError::LineOpen);
        }
        let complete = ctx.catalogue.required_for(&request).iter().all(|m| self.handed_in.contains(*m));
        let emergency = matches!(request, AidRequest::Temporary { emergency: true, .. });
        let mut events = vec![CaseEvent::LineAdded { request, added_at: ctx.now, added_by: ctx.staff_id.to_string() }];
        if (self.accepted_at.is_some() && complete) || emergency {
            events.push(ctx.referral(department));
        }
        Ok(events)
    }

    /// Whether scans may be uploaded: not once the case is withdrawn or closed.
    pub fn takes_documents(&self) -> Result<(), CaseError> {
        self.ensure_not_over()
    }

    /// Records a scan uploaded at the window (the bytes already stored).
    pub fn attach_document(&self, document: CaseDocument) -> Result<Vec<CaseEvent>, CaseError> {
        self.takes_documents()?;
        Ok(vec![CaseEvent::DocumentAttached(document)])
    }

    /// The referrals whose line needs `material`: asked for up front by its
    /// request, or in one of its department's supplement requests.
    pub fn referrals_needing(&self, material: &str, catalogue: &MaterialsCatalogue) -> Vec<Uuid> {
        self.lines
            .iter()
            .filter(|l| {
                catalogue.required_for(&l.request).contains(&material)
                    || l.reports.iter().any(|(_, _, r)| {
                        matches!(r, LaneReport::SupplementRequested { materials, .. } if materials.iter().any(|m| m == material))
                    })
            })
            .filter_map(|l| l.referral_id)
            .collect()
    }

    /// Hands the case over to another clerk of the township.
    #[tracing::instrument(name = "decide hand-over", skip_all, fields(case.id = %self.case_id))]
    pub fn hand_over(&self, to: String, ctx: &Context) -> Result<Vec<CaseEvent>, CaseError> {
        self.ensure_not_over()?;
        if to == self.owner {
            return Err(CaseError::SameOwner);
        }
        Ok(vec![CaseEvent::HandedOver { to, handed_over_at: ctx.now, handed_over_by: ctx.staff_id.to_string() }])
    }

    /// Closes the case (结案) once every lane is final and the applicant was told.
    #[tracing::instrument(name = "decide closure", skip_all, fields(case.id = %self.case_id))]
    pub fn close(
        &self,
        informed_by: InformedBy,
        note: Option<String>,
        ctx: &Context,
    ) -> Result<Vec<CaseEvent>, CaseError> {
        self.ensure_not_over()?;
        if self.accepted_at.is_none() || !self.is_decided() {
            return Err(CaseError::LanesNotFinal);
        }
        Ok(vec![CaseEvent::CaseClosed { informed_by, note, closed_at: ctx.now, closed_by: ctx.staff_id.to_string() }])
    }

    #[tracing::instrument(name = "decide withdrawal", skip_all, fields(case.id = %self.case_id))]
    pub fn withdraw(&self, reason: String, ctx: &Context) -> Result<Vec<CaseEvent>, CaseError> {
        self.ensure_open()?;
        Ok(vec![CaseEvent::ApplicationWithdrawn {
            reason,
            withdrawn_at: ctx.now,
            withdrawn_by: ctx.staff_id.to_string(),
        }])
    }
}

#[cfg(test)]
mod tests;
