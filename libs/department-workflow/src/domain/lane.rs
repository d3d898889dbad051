//! The referral lane: one department's part of one case, the same shape in all
//! four departments. Pure: [`Lane::decide`] turns a command into events (or
//! refuses it), [`Lane::apply`] folds events into state; time, ids and the
//! policy's recommendation are passed in.
//!
//! `referred -> signed_for -> [supplement_requested <-> under_review] ->
//! proposed -> approved | rejected -> disbursed`, or `returned`; `withdrawn`
//! when the applicant withdraws. A decision at or below the approval threshold
//! stands; above it an approver who is not the proposer must approve.

use super::policy::Recommendation;
use chrono::{DateTime, NaiveDate, Utc};
use onedoor_contracts::department::{DisbursementChannel, ProposalOutcome};
use onedoor_contracts::intake::ReferralIssued;
use onedoor_working_calendar::{WorkingCalendar, local_date};
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use utoipa::ToSchema;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum LaneStatus {
    Referred,
    SignedFor,
    SupplementRequested,
    UnderReview,
    Proposed,
    Approved,
    Rejected,
    Disbursed,
    Returned,
    Withdrawn,
}

impl LaneStatus {
    pub const ALL: [LaneStatus; 10] = [
        Self::Referred,
        Self::SignedFor,
        Self::SupplementRequested,
        Self::UnderReview,
        Self::Proposed,
        Self::Approved,
        Self::Rejected,
        Self::Disbursed,
        Self::Returned,
        Self::Withdrawn,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Referred => "referred",
            Self::SignedFor => "signed_for",
            Self::SupplementRequested => "supplement_requested",
            Self::UnderReview => "under_review",
            Self::Proposed => "proposed",
            Self::Approved => "approved",
            Self::Rejected => "rejected",
            Self::Disbursed => "disbursed",
            Self::Returned => "returned",
            Self::Withdrawn => "withdrawn",
        }
    }

    pub fn is_closed(self) -> bool {
        matches!(self, Self::Rejected | Self::Disbursed | Self::Returned | Self::Withdrawn)
    }
}

/// The lane's events, kept in the department's event store (in the stored
/// format of `crate::stored`).
#[derive(Debug, Clone, PartialEq)]
pub enum LaneEvent {
    ReferralReceived {
        referral: Box<ReferralIssued>,
        recommendation: Recommendation,
        at: DateTime<Utc>,
    },
    SignedFor {
        by: String,
        at: DateTime<Utc>,
    },
    SupplementRequested {
        materials: Vec<String>,
        note: Option<String>,
        by: String,
        at: DateTime<Utc>,
    },
    /// Materials handed in that complete the supplement request: the lane resumes.
    Supplemented {
        materials: Vec<String>,
        at: DateTime<Utc>,
    },
    /// Materials handed in that answer only part of the request: the lane
    /// keeps waiting for the rest.
    PartlySupplemented {
        materials: Vec<String>,
        at: DateTime<Utc>,
    },
    ProposalMade {
        outcome: ProposalOutcome,
        amount_fen: i64,
        reason: Option<String>,
        by: String,
        at: DateTime<Utc>,
    },
    Approved {
        amount_fen: i64,
        /// Set when the approver approved more than the policy's entitlement,
        /// or a household it finds ineligible: the approver's written reason.
        override_reason: Option<String>,
        by: String,
        at: DateTime<Utc>,
    },
    Rejected {
        reason: String,
        by: String,
        at: DateTime<Utc>,
    },
    Disbursed {
        amount_fen: i64,
        channel: DisbursementChannel,
        reference: Option<String>,
        by: String,
        at: DateTime<Utc>,
    },
    Returned {
        reason: String,
        by: String,
        at: DateTime<Utc>,
    },
    Withdrawn {
        reason: String,
        at: DateTime<Utc>,
    },
    /// An approver extended the lane's time limit (once), with a reason.
    DeadlineExtended {
        deadline: NaiveDate,
        reason: String,
        by: String,
        at: DateTime<Utc>,
    },
}

impl LaneEvent {
    /// The event's name in the lane's history and the event log.
    pub fn name(&self) -> &'static str {
        match self {
            Self::ReferralReceived { .. } => "ReferralReceived",
            Self::SignedFor { .. } => "SignedFor",
            Self::SupplementRequested { .. } => "SupplementRequested",
            Self::Supplemented { .. } => "Supplemented",
            Self::PartlySupplemented { .. } => "PartlySupplemented",
            Self::ProposalMade { .. } => "ProposalMade",
            Self::Approved { .. } => "Approved",
            Self::Rejected { .. } => "Rejected",
            Self::Disbursed { .. } => "Disbursed",
            Self::Returned { .. } => "Returned",
            Self::Withdrawn { .. } => "Withdrawn",
            Self::DeadlineExtended { .. } => "DeadlineExtended",
        }
    }
}

/// Who acts, and in which role.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Actor<'a> {
    Caseworker(&'a str),
    Approver(&'a str),
}

impl Actor<'_> {
    fn id(&self) -> &str {
        match self {
            Actor::Caseworker(id) | Actor::Approver(id) => id,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    SignFor,
    RequestSupplement {
        materials: Vec<String>,
        note: Option<String>,
    },
    Propose {
        outcome: ProposalOutcome,
        amount_fen: Option<i64>,
        reason: Option<String>,
    },
    Approve {
        approve: bool,
        reason: Option<String>,
        override_annual_limit: bool,
    },
    Disburse {
        amount_fen: i64,
        channel: DisbursementChannel,
        reference: Option<String>,
    },
    Return {
        reason: String,
    },
    /// An approver extends the time limit to a later date, once.
    ExtendDeadline {
        deadline: NaiveDate,
        reason: String,
    },
}

impl Command {
    /// For spans and logs: the command, never its personal content.
    pub fn name(&self) -> &'static str {
        match self {
            Self::SignFor => "sign_for",
            Self::RequestSupplement { .. } => "request_supplement",
            Self::Propose { .. } => "propose",
            Self::Approve { .. } => "approve",
            Self::Disburse { .. } => "disburse",
            Self::Return { .. } => "return",
            Self::ExtendDeadline { .. } => "extend_deadline",
        }
    }

    /// Whether the command may approve an amount (a proposal within the
    /// caseworker's authority stands as a decision): only these are
    /// checked against the ledger's caps under its lock. The others read
    /// the ledger for the recommendation shown with the answer, and may
    /// read it while a decision elsewhere is being booked.
    pub fn may_approve(&self) -> bool {
        matches!(self, Self::Propose { .. } | Self::Approve { .. })
    }
}

/// Why a command was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LaneError {
    /// The command does not fit the lane's state (HTTP 409).
    #[error("a {status} lane cannot {action}")]
    InvalidTransition { status: &'static str, action: &'static str },
    /// Segregation of duties, or the wrong role (HTTP 403).
    #[error("{0}")]
    NotAllowed(String),
    /// Input the rules refuse (HTTP 422 with the field).
    #[error("{message}")]
    Invalid { field: &'static str, code: &'static str, message: String },
}

fn invalid(field: &'static str, code: &'static str, message: impl Into<String>) -> LaneError {
    LaneError::Invalid { field, code, message: message.into() }
}

/// The policy's view of this lane at decision time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub threshold_fen: i64,
    pub max_amount_fen: i64,
    /// The lane's time limit today ([`Lane::deadline`]).
    pub deadline: NaiveDate,
}

/// An approver's extension of the time limit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Extension {
    pub deadline: NaiveDate,
    pub reason: String,
    pub by: String,
    pub at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Proposal {
    pub outcome: ProposalOutcome,
    pub amount_fen: i64,
    pub reason: Option<String>,
    pub by: String,
}

/// A lane folded from its events.
#[derive(Debug, Clone, PartialEq)]
pub struct Lane {
    pub version: i64,
    pub referral: ReferralIssued,
    pub recommendation: Recommendation,
    pub status: LaneStatus,
    pub received_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub signed_by: Option<String>,
    pub supplement_items: Vec<String>,
    pub proposal: Option<Proposal>,
    pub approved_amount_fen: Option<i64>,
    /// The approver's reason when the approval overrode the entitlement.
    pub override_reason: Option<String>,
    /// When the supplement now awaited was requested.
    pub supplement_requested_at: Option<DateTime<Utc>>,
    /// What of the awaited supplement has been handed in since it was requested.
    pub supplied_since_request: BTreeSet<String>,
    /// The time limit before the pauses since it was set: the window's, or
    /// an approver's extension ([`Lane::deadline`] adds the pauses).
    pub deadline_base: NaiveDate,
    /// Supplement pauses since `deadline_base` was set, from and until
    /// (`None`: still paused).
    pub pauses: Vec<(DateTime<Utc>, Option<DateTime<Utc>>)>,
    pub extension: Option<Extension>,
    /// The sum of the instalments paid so far.
    pub disbursed_amount_fen: Option<i64>,
    /// The payment references of the instalments.
    pub references: Vec<String>,
    pub reason: Option<String>,
    pub history: Vec<(DateTime<Utc>, String)>,
    /// The trace the referral arrived in (its first event's), which later
    /// work on the lane links to; set where the lane is loaded or opened.
    pub traceparent: Option<String>,
}

impl Lane {
    /// The lane opened by a referral from the window.
    pub fn open(referral: ReferralIssued, recommendation: Recommendation, at: DateTime<Utc>) -> LaneEvent {
        LaneEvent::ReferralReceived { referral: Box::new(referral), recommendation, at }
    }

    pub fn from_events<'a>(events: impl IntoIterator<Item = &'a LaneEvent>) -> Option<Self> {
        let mut iter = events.into_iter();
        let Some(LaneEvent::ReferralReceived { referral, recommendation, at }) = iter.next() else {
            return None;
        };
        let mut lane = Lane {
            version: 1,
            referral: referral.as_ref().clone(),
            recommendation: recommendation.clone(),
            status: LaneStatus::Referred,
            received_at: *at,
            updated_at: *at,
            signed_by: None,
            supplement_items: Vec::new(),
            proposal: None,
            approved_amount_fen: None,
            override_reason: None,
            supplement_requested_at: None,
            supplied_since_request: BTreeSet::new(),
            deadline_base: referral.deadline,
            pauses: Vec::new(),
            extension: None,
            references: Vec::new(),
            disbursed_amount_fen: None,
            reason: None,
            history: vec![(*at, "ReferralReceived".into())],
            traceparent: None,
        };
        for e in iter {
            lane.apply(e);
        }
        Some(lane)
    }

    pub fn apply(&mut self, event: &LaneEvent) {
        self.version += 1;
        // The window's case view ends a pause the same way: at the
        // department's next step, or when the supplement is complete.
        if !matches!(event, LaneEvent::PartlySupplemented { .. } | LaneEvent::DeadlineExtended { .. })
            && let Some((_, until @ None)) = self.pauses.last_mut()
        {
            *until = Some(event_time(event));
        }
        let at = match event {
            LaneEvent::ReferralReceived { at, .. } => *at,
            LaneEvent::SignedFor { by, at } => {
                self.status = LaneStatus::SignedFor;
                self.signed_by = Some(by.clone());
                *at
            }
            LaneEvent::SupplementRequested { materials, at, .. } => {
                self.status = LaneStatus::SupplementRequested;
                self.supplement_items = materials.clone();
                self.supplement_requested_at = Some(*at);
                self.supplied_since_request.clear();
                self.pauses.push((*at, None));
                *at
            }
            LaneEvent::Supplemented { materials, at } => {
                self.status = LaneStatus::UnderReview;
                self.supplement_items.clear();
                self.supplied_since_request.clear();
                self.add_materials(materials);
                *at
            }
            LaneEvent::PartlySupplemented { materials, at } => {
                self.supplied_since_request.extend(materials.iter().cloned());
                self.add_materials(materials);
                *at
            }
            LaneEvent::ProposalMade { outcome, amount_fen, reason, by, at } => {
                self.status = LaneStatus::Proposed;
                self.proposal = Some(Proposal {
                    outcome: *outcome,
                    amount_fen: *amount_fen,
                    reason: reason.clone(),
                    by: by.clone(),
                });
                *at
            }
            LaneEvent::Approved { amount_fen, override_reason, at, .. } => {
                self.status = LaneStatus::Approved;
                self.approved_amount_fen = Some(*amount_fen);
                self.override_reason = override_reason.clone();
                *at
            }
            LaneEvent::Rejected { reason, at, .. } => {
                self.status = LaneStatus::Rejected;
                self.reason = Some(reason.clone());
                *at
            }
            LaneEvent::Disbursed { amount_fen, reference, at, .. } => {
                // Instalments add up; the lane is disbursed once fully paid.
                let paid = self.disbursed_amount_fen.unwrap_or(0).saturating_add(*amount_fen);
                self.disbursed_amount_fen = Some(paid);
                self.references.extend(reference.clone());
                if paid >= self.approved_amount_fen.unwrap_or(0) {
                    self.status = LaneStatus::Disbursed;
                }
                *at
            }
            LaneEvent::Returned { reason, at, .. } => {
                self.status = LaneStatus::Returned;
                self.reason = Some(reason.clone());
                *at
            }
            LaneEvent::Withdrawn { reason, at } => {
                self.status = LaneStatus::Withdrawn;
                self.reason = Some(reason.clone());
                *at
            }
            LaneEvent::DeadlineExtended { deadline, reason, by, at } => {
                // The new date counts from now; a pause still running goes on from here.
                self.deadline_base = *deadline;
                let still_paused = self.pauses.last().is_some_and(|(_, until)| until.is_none());
                self.pauses = if still_paused { vec![(*at, None)] } else { Vec::new() };
                self.extension =
                    Some(Extension { deadline: *deadline, reason: reason.clone(), by: by.clone(), at: *at });
                *at
            }
        };
        self.updated_at = at;
        let name = match event {
            LaneEvent::Approved { override_reason: Some(_), .. } => "ApprovedByOverride",
            other => other.name(),
        };
        self.history.push((at, name.to_string()));
    }

    /// Whether approving `amount` overrides the policy: more than its
    /// entitlement, or any amount for a household it finds ineligible.
    fn overrides_entitlement(&self, amount: i64) -> bool {
        !self.recommendation.eligible || amount > self.recommendation.suggested_amount_fen
    }

    fn refuse(&self, action: &'static str) -> LaneError {
        LaneError::InvalidTransition { status: self.status.as_str(), action }
    }

    /// The time limit on `today`: the window's (or an approver's extension)
    /// moved by every working day a supplement was awaited, a pause still
    /// running counted to today. The window's case view computes the same.
    pub fn deadline(&self, calendar: &WorkingCalendar, today: NaiveDate) -> NaiveDate {
        self.pauses.iter().fold(self.deadline_base, |deadline, (from, until)| {
            let until = until.map(local_date).unwrap_or(today);
            calendar.add_working_days(deadline, calendar.working_days_between(local_date(*from), until))
        })
    }

    /// Whether the time limit is counting: not decided, not waiting for a supplement.
    pub fn clock_runs(&self) -> bool {
        !self.status.is_closed() && !matches!(self.status, LaneStatus::Approved | LaneStatus::SupplementRequested)
    }

    /// The referral's materials grow with what the window hands in later.
    fn add_materials(&mut self, materials: &[String]) {
        for m in materials {
            if !self.referral.materials.contains(m) {
                self.referral.materials.push(m.clone());
            }
        }
        self.referral.missing_materials.retain(|m| !materials.contains(m));
    }

    /// Materials handed in at the window answer a lane waiting for them if
    /// they were handed in after the request (materials handed in earlier
    /// but delivered late answer nothing). The lane resumes once every item
    /// it asked for has been handed in since the request; until then it
    /// keeps waiting, and materials asked for by another department resume
    /// nothing here. The window's case view applies the same rule to the
    /// same times and items, so both always agree.
    pub fn supplemented(&self, materials: Vec<String>, at: DateTime<Utc>) -> Vec<LaneEvent> {
        if self.status != LaneStatus::SupplementRequested || self.supplement_requested_at.is_none_or(|asked| at < asked)
        {
            return Vec::new();
        }
        let complete = self
            .supplement_items
            .iter()
            .all(|item| self.supplied_since_request.contains(item) || materials.contains(item));
        if complete {
            vec![LaneEvent::Supplemented { materials, at }]
        } else {
            vec![LaneEvent::PartlySupplemented { materials, at }]
        }
    }

    /// The applicant withdrew at the window: an open lane closes.
    pub fn withdrawn(&self, reason: String, at: DateTime<Utc>) -> Vec<LaneEvent> {
        if self.status.is_closed() { Vec::new() } else { vec![LaneEvent::Withdrawn { reason, at }] }
    }

    #[tracing::instrument(name = "decide lane command", skip_all, fields(referral.id = %self.referral.referral_id, command = command.name()))]
    pub fn decide(
        &self,
        command: Command,
        actor: Actor,
        limits: Limits,
        now: DateTime<Utc>,
    ) -> Result<Vec<LaneEvent>, LaneError> {
        use LaneStatus::*;
        let by = actor.id().to_string();
        let caseworker_only = |action| match actor {
            Actor::Caseworker(_) => Ok(()),
            Actor::Approver(_) => Err(LaneError::NotAllowed(format!("{action} is a caseworker's step"))),
        };
        match command {
            Command::SignFor => {
                caseworker_only("signing for")?;
                if self.status != Referred {
                    return Err(self.refuse("be signed for"));
                }
                Ok(vec![LaneEvent::SignedFor { by, at: now }])
            }
            Command::RequestSupplement { materials, note } => {
                caseworker_only("requesting a supplement")?;
                if !matches!(self.status, SignedFor | UnderReview) {
                    return Err(self.refuse("request a supplement"));
                }
                if materials.is_empty() || materials.iter().any(|m| m.trim().is_empty()) {
                    return Err(invalid("materials", "required", "name the materials needed"));
                }
                Ok(vec![LaneEvent::SupplementRequested { materials, note, by, at: now }])
            }
            Command::Propose { outcome, amount_fen, reason } => {
                caseworker_only("proposing a decision")?;
                if !matches!(self.status, SignedFor | UnderReview) {
                    return Err(self.refuse("take a proposal"));
                }
                let suggested = self.recommendation.suggested_amount_fen;
                let amount = match outcome {
                    ProposalOutcome::Approve => amount_fen.unwrap_or(suggested),
                    ProposalOutcome::Reject => amount_fen.unwrap_or(suggested).max(0),
                };
                let reason = reason.filter(|r| !r.trim().is_empty());
                match outcome {
                    ProposalOutcome::Reject if reason.is_none() => {
                        return Err(invalid("reason", "required", "a rejection needs a reason"));
                    }
                    ProposalOutcome::Approve if amount <= 0 => {
                        return Err(invalid("amount_fen", "not_positive", "an approval needs an amount above zero"));
                    }
                    ProposalOutcome::Approve if amount > limits.max_amount_fen => {
                        return Err(invalid(
                            "amount_fen",
                            "above_limit",
                            format!("at most {} may be approved", super::policy::yuan(limits.max_amount_fen)),
                        ));
                    }
                    _ => {}
                }
                // What the decision is worth to the household: a rejection
                // forgoes at least the entitlement, whatever amount is typed.
                let at_stake = match outcome {
                    ProposalOutcome::Approve => amount,
                    ProposalOutcome::Reject => amount.max(suggested),
                };
                let needs_approver = at_stake > limits.threshold_fen
                    || (outcome == ProposalOutcome::Approve
                        && (self.recommendation.needs_approver_override || self.overrides_entitlement(amount)));
                if needs_approver {
                    return Ok(vec![LaneEvent::ProposalMade { outcome, amount_fen: amount, reason, by, at: now }]);
                }
                // Within the caseworker's authority: the decision stands.
                Ok(vec![match outcome {
                    ProposalOutcome::Approve => {
                        LaneEvent::Approved { amount_fen: amount, override_reason: None, by, at: now }
                    }
                    ProposalOutcome::Reject => LaneEvent::Rejected { reason: reason.unwrap_or_default(), by, at: now },
                }])
            }
            Command::Approve { approve, reason, override_annual_limit } => {
                let Actor::Approver(_) = actor else {
                    return Err(LaneError::NotAllowed("only an approver approves a proposal".into()));
                };
                if self.status != Proposed {
                    return Err(self.refuse("be approved"));
                }
                let proposal = self.proposal.as_ref().expect("a proposed lane has a proposal");
                if proposal.by == by {
                    return Err(LaneError::NotAllowed(
                        "segregation of duties: the proposer may not approve their own proposal".into(),
                    ));
                }
                let reason = reason.filter(|r| !r.trim().is_empty());
                if !approve || proposal.outcome == ProposalOutcome::Reject {
                    let reason = if approve { proposal.reason.clone() } else { reason.or(proposal.reason.clone()) };
                    let Some(reason) = reason else {
                        return Err(invalid("reason", "required", "a rejection needs a reason"));
                    };
                    return Ok(vec![LaneEvent::Rejected { reason, by, at: now }]);
                }
                if self.recommendation.needs_approver_override && !override_annual_limit {
                    return Err(invalid(
                        "override_annual_limit",
                        "override_required",
                        "the household already had this aid this year; approve with override_annual_limit: true",
                    ));
                }
                if proposal.amount_fen > limits.max_amount_fen {
                    return Err(invalid(
                        "amount_fen",
                        "above_limit",
                        format!("at most {} may be approved", super::policy::yuan(limits.max_amount_fen)),
                    ));
                }
                let override_reason = if self.overrides_entitlement(proposal.amount_fen) {
                    let Some(reason) = reason else {
                        return Err(invalid(
                            "reason",
                            "override_reason_required",
                            "the amount is above the policy's entitlement, or the policy finds the household \
                             ineligible: approving it is an override and needs the approver's written reason",
                        ));
                    };
                    Some(reason)
                } else {
                    None
                };
                Ok(vec![LaneEvent::Approved { amount_fen: proposal.amount_fen, override_reason, by, at: now }])
            }
            Command::Disburse { amount_fen, channel, reference } => {
                caseworker_only("disbursing")?;
                if self.status != Approved {
                    return Err(self.refuse("disburse"));
                }
                // Instalments, each with its own reference, up to the approved amount.
                let remaining =
                    self.approved_amount_fen.unwrap_or(0).saturating_sub(self.disbursed_amount_fen.unwrap_or(0));
                if amount_fen <= 0 {
                    return Err(invalid("amount_fen", "not_positive", "disburse an amount above zero"));
                }
                if amount_fen > remaining {
                    return Err(invalid(
                        "amount_fen",
                        "above_approved",
                        format!("at most the {} still due of the approved amount", super::policy::yuan(remaining)),
                    ));
                }
                if reference.as_ref().is_some_and(|r| self.references.contains(r)) {
                    return Err(invalid(
                        "reference",
                        "duplicate_reference",
                        "an instalment with this payment reference was already recorded",
                    ));
                }
                Ok(vec![LaneEvent::Disbursed { amount_fen, channel, reference, by, at: now }])
            }
            Command::ExtendDeadline { deadline, reason } => {
                let Actor::Approver(_) = actor else {
                    return Err(LaneError::NotAllowed("only an approver extends a time limit".into()));
                };
                if !self.clock_runs() && self.status != SupplementRequested {
                    return Err(self.refuse("have its time limit extended"));
                }
                if self.extension.is_some() {
                    return Err(LaneError::InvalidTransition { status: "extended", action: "be extended again" });
                }
                if reason.trim().is_empty() {
                    return Err(invalid("reason", "required", "say why the time limit is extended"));
                }
                if deadline <= limits.deadline {
                    return Err(invalid(
                        "deadline",
                        "not_later",
                        format!("the new time limit must be after the current one ({})", limits.deadline),
                    ));
                }
                Ok(vec![LaneEvent::DeadlineExtended { deadline, reason, by, at: now }])
            }
            Command::Return { reason } => {
                caseworker_only("returning a referral")?;
                if !matches!(self.status, Referred | SignedFor | SupplementRequested | UnderReview) {
                    return Err(self.refuse("be returned"));
                }
                if reason.trim().is_empty() {
                    return Err(invalid("reason", "required", "say whose matter it is instead"));
                }
                Ok(vec![LaneEvent::Returned { reason, by, at: now }])
            }
        }
    }
}

/// When an event happened.
fn event_time(event: &LaneEvent) -> DateTime<Utc> {
    match event {
        LaneEvent::ReferralReceived { at, .. }
        | LaneEvent::SignedFor { at, .. }
        | LaneEvent::SupplementRequested { at, .. }
        | LaneEvent::Supplemented { at, .. }
        | LaneEvent::PartlySupplemented { at, .. }
        | LaneEvent::ProposalMade { at, .. }
        | LaneEvent::Approved { at, .. }
        | LaneEvent::Rejected { at, .. }
        | LaneEvent::Disbursed { at, .. }
        | LaneEvent::Returned { at, .. }
        | LaneEvent::Withdrawn { at, .. }
        | LaneEvent::DeadlineExtended { at, .. } => *at,
    }
}

#[cfg(test)]
mod tests;
