//! Events the window (intake service) publishes on stream `INTAKE`.

use crate::aid_line::Disclosure;
use crate::{Department, IntegrationEvent, SUBJECT_PREFIX};
use chrono::{DateTime, NaiveDate, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

pub const STREAM: &str = "INTAKE";
pub const SOURCE: &str = "onedoor/intake";

/// Every subject intake publishes under.
pub fn subjects() -> String {
    format!("{SUBJECT_PREFIX}.intake.>")
}

/// The subject of referrals to one department: `onedoor.intake.referral.<dept>`.
pub fn referral_subject(department: Department) -> String {
    format!("{SUBJECT_PREFIX}.intake.referral.{department}")
}

/// The subject of scans for one department: `onedoor.intake.document.attached.<dept>`.
pub fn document_subject(department: Department) -> String {
    format!("{SUBJECT_PREFIX}.intake.document.attached.{department}")
}

/// An application was accepted at the window (all materials present, or an
/// emergency referred ahead of its paperwork).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ApplicationAccepted {
    pub case_id: Uuid,
    pub case_number: String,
    /// 9-digit township code of the service hall.
    pub township: String,
    pub departments: Vec<Department>,
    pub accepted_at: DateTime<Utc>,
    /// Staff id of the clerk who owns the case (first-contact responsibility).
    pub accepted_by: String,
}

/// Household facts a department needs to apply its policy; nothing more.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct HouseholdFacts {
    /// 12-digit statistical division code of the household.
    pub division_code: String,
    pub hukou: Hukou,
    pub members: u32,
    pub monthly_income_fen: i64,
    pub assets_fen: i64,
    pub existing_support: Vec<SupportKind>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Hukou {
    Urban,
    Rural,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum SupportKind {
    Dibao,
    Tekun,
    LowIncome,
}

/// The person the department deals with. Departments need the ID number to
/// keep their per-person ledgers (e.g. the medical annual cap).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Applicant {
    pub name: String,
    pub id_number: String,
    pub phone: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum SchoolStage {
    Preschool,
    Primary,
    Junior,
    Senior,
    Vocational,
    College,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum HouseRating {
    C,
    D,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum HardshipCause {
    Illness,
    Accident,
    Fire,
    Disaster,
    Other,
}

/// What the household asks of one department.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "aid", rename_all = "snake_case")]
pub enum AidRequest {
    Medical {
        hospital: String,
        diagnosis: String,
        total_cost_fen: i64,
        insurance_paid_fen: i64,
        /// The household member treated (the medical cap is per patient);
        /// absent means the applicant. Additive: absent in earlier events.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        patient_id_number: Option<String>,
    },
    Education {
        student_id_number: String,
        stage: SchoolStage,
        school: String,
    },
    Housing {
        #[serde(flatten)]
        kind: HousingKind,
    },
    Temporary {
        cause: HardshipCause,
        amount_requested_fen: i64,
        emergency: bool,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum HousingKind {
    RentSubsidy { monthly_rent_fen: i64 },
    Renovation { house_rating: HouseRating },
}

impl AidRequest {
    /// The materials catalogue's key for this kind of request (see
    /// [`crate::aid_line::Requirement`]).
    pub fn requirement_key(&self) -> &'static str {
        match self {
            Self::Medical { .. } => "medical",
            Self::Education { .. } => "education",
            Self::Housing { kind: HousingKind::RentSubsidy { .. } } => "housing_rent_subsidy",
            Self::Housing { kind: HousingKind::Renovation { .. } } => "housing_renovation",
            Self::Temporary { .. } => "temporary",
        }
    }

    pub fn department(&self) -> Department {
        match self {
            Self::Medical { .. } => Department::Medical,
            Self::Education { .. } => Department::Education,
            Self::Housing { .. } => Department::Housing,
            Self::Temporary { .. } => Department::Temporary,
        }
    }
}

/// A member of the household as a department keys its rules on (a cap per
/// patient, once a year per household): the ID number and the relation to
/// the applicant, nothing more.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct HouseholdMember {
    pub id_number: String,
    /// `applicant` | `spouse` | `child` | `parent` | `grandparent` | `grandchild` | `sibling` | `other`
    pub relation: String,
}

/// The window referred (转办) one department's part of a case to it
/// (version 4: only the facts the department's policy uses, see
/// [`crate::aid_line::Disclosure`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ReferralIssued {
    /// The department keeps this id for its lane.
    pub referral_id: Uuid,
    pub case_id: Uuid,
    pub case_number: String,
    pub department: Department,
    pub township: String,
    pub issued_at: DateTime<Utc>,
    /// The department's statutory deadline, in working days from `issued_at`.
    pub deadline: NaiveDate,
    pub applicant: ReferredApplicant,
    pub household: ReferredHousehold,
    /// Every member of the household (the applicant among them); only to
    /// lines whose rules are per household, empty for the others.
    pub members: Vec<HouseholdMember>,
    /// The household in intake's register, on which per-household rules
    /// (once a year, caps) are keyed; only to lines whose rules are per
    /// household. `None` for a case accepted before the register.
    pub household_id: Option<Uuid>,
    pub request: AidRequest,
    /// Materials handed in at the window.
    pub materials: Vec<String>,
    /// Materials still owed (only for emergencies referred ahead of paperwork).
    pub missing_materials: Vec<String>,
}

/// The applicant as a department receives them: the name and the ID number
/// (its ledgers are kept per person); the phone only where the line's work
/// needs it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ReferredApplicant {
    pub name: String,
    pub id_number: String,
    /// Only to lines that are disclosed the phone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phone: Option<String>,
}

impl ReferredApplicant {
    /// What of `applicant` a line with `disclosure` receives.
    pub fn of(applicant: &Applicant, disclosure: Disclosure) -> Self {
        Self {
            name: applicant.name.clone(),
            id_number: applicant.id_number.clone(),
            phone: disclosure.phone.then(|| applicant.phone.clone()),
        }
    }
}

/// The household as a department receives it: who and where it is, and its
/// standing; its income and assets only where the line's policy weighs them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ReferredHousehold {
    /// 12-digit statistical division code of the household.
    pub division_code: String,
    pub hukou: Hukou,
    pub members: u32,
    /// Only to lines that are disclosed the income.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub monthly_income_fen: Option<i64>,
    /// Only to lines that are disclosed the assets.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub assets_fen: Option<i64>,
    pub existing_support: Vec<SupportKind>,
}

impl ReferredHousehold {
    /// What of `facts` a line with `disclosure` receives.
    pub fn of(facts: HouseholdFacts, disclosure: Disclosure) -> Self {
        Self {
            division_code: facts.division_code,
            hukou: facts.hukou,
            members: facts.members,
            monthly_income_fen: disclosure.income.then_some(facts.monthly_income_fen),
            assets_fen: disclosure.assets.then_some(facts.assets_fen),
            existing_support: facts.existing_support,
        }
    }

    /// Monthly income per member, where the income was disclosed.
    pub fn per_capita_income_fen(&self) -> Option<i64> {
        self.monthly_income_fen.map(|income| income / i64::from(self.members.max(1)))
    }
}

impl From<ReferralIssuedV3> for ReferralIssued {
    /// The upcaster: an earlier intake sent every department the phone, the
    /// income and the assets; the department keeps only what its line is
    /// disclosed, as if the referral had been issued today.
    fn from(v3: ReferralIssuedV3) -> Self {
        let disclosure = v3.department.line().discloses;
        Self {
            referral_id: v3.referral_id,
            case_id: v3.case_id,
            case_number: v3.case_number,
            department: v3.department,
            township: v3.township,
            issued_at: v3.issued_at,
            deadline: v3.deadline,
            applicant: ReferredApplicant::of(&v3.applicant, disclosure),
            household: ReferredHousehold::of(v3.household, disclosure),
            members: v3.members,
            household_id: v3.household_id,
            request: v3.request,
            materials: v3.materials,
            missing_materials: v3.missing_materials,
        }
    }
}

// Version 3, as earlier intakes published it: the applicant's phone and the
// household's income and assets to every department. Read by
// [`IntakeEvent`] and upcast to version 4, which drops what the department's
// line is not disclosed. (Its doc comment is its published schema's
// description, kept as it was.)
/// The window referred (转办) one department's part of a case to it
/// (version 3: with the household's id in the register).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "ReferralIssued")]
pub struct ReferralIssuedV3 {
    /// The department keeps this id for its lane.
    pub referral_id: Uuid,
    pub case_id: Uuid,
    pub case_number: String,
    pub department: Department,
    pub township: String,
    pub issued_at: DateTime<Utc>,
    /// The department's statutory deadline, in working days from `issued_at`.
    pub deadline: NaiveDate,
    pub applicant: Applicant,
    pub household: HouseholdFacts,
    /// Every member of the household (the applicant among them); only to
    /// lines whose rules are per household, empty for the others.
    pub members: Vec<HouseholdMember>,
    /// The household in intake's register, on which per-household rules
    /// (once a year, caps) are keyed; only to lines whose rules are per
    /// household. `None` for a case accepted before the register.
    pub household_id: Option<Uuid>,
    pub request: AidRequest,
    /// Materials handed in at the window.
    pub materials: Vec<String>,
    /// Materials still owed (only for emergencies referred ahead of paperwork).
    pub missing_materials: Vec<String>,
}

/// Version 2 of the referral, as earlier intakes published it (with the
/// members, without the household's id). Read by [`IntakeEvent`] and upcast
/// to version 3.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "ReferralIssued")]
pub struct ReferralIssuedV2 {
    /// The department keeps this id for its lane.
    pub referral_id: Uuid,
    pub case_id: Uuid,
    pub case_number: String,
    pub department: Department,
    pub township: String,
    pub issued_at: DateTime<Utc>,
    /// The department's statutory deadline, in working days from `issued_at`.
    pub deadline: NaiveDate,
    pub applicant: Applicant,
    pub household: HouseholdFacts,
    /// Every member of the household (the applicant among them).
    pub members: Vec<HouseholdMember>,
    pub request: AidRequest,
    /// Materials handed in at the window.
    pub materials: Vec<String>,
    /// Materials still owed (only for emergencies referred ahead of paperwork).
    pub missing_materials: Vec<String>,
}

impl From<ReferralIssuedV2> for ReferralIssuedV3 {
    /// The upcaster: a version-2 referral has no household id, so the rules
    /// that look at the household key on its members alone.
    fn from(v2: ReferralIssuedV2) -> Self {
        Self {
            referral_id: v2.referral_id,
            case_id: v2.case_id,
            case_number: v2.case_number,
            department: v2.department,
            township: v2.township,
            issued_at: v2.issued_at,
            deadline: v2.deadline,
            applicant: v2.applicant,
            household: v2.household,
            members: v2.members,
            household_id: None,
            request: v2.request,
            materials: v2.materials,
            missing_materials: v2.missing_materials,
        }
    }
}

/// Version 1 of the referral, as earlier intakes published it (without the
/// members). Read by [`IntakeEvent`] and upcast to the current version.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "ReferralIssued")]
pub struct ReferralIssuedV1 {
    /// The department keeps this id for its lane.
    pub referral_id: Uuid,
    pub case_id: Uuid,
    pub case_number: String,
    pub department: Department,
    pub township: String,
    pub issued_at: DateTime<Utc>,
    /// The department's statutory deadline, in working days from `issued_at`.
    pub deadline: NaiveDate,
    pub applicant: Applicant,
    pub household: HouseholdFacts,
    pub request: AidRequest,
    /// Materials handed in at the window.
    pub materials: Vec<String>,
    /// Materials still owed (only for emergencies referred ahead of paperwork).
    pub missing_materials: Vec<String>,
}

impl From<ReferralIssuedV1> for ReferralIssuedV3 {
    /// The upcaster: a version-1 referral knows only the applicant, so the
    /// rules that look at the household see the applicant alone.
    fn from(v1: ReferralIssuedV1) -> Self {
        let members = vec![HouseholdMember { id_number: v1.applicant.id_number.clone(), relation: "applicant".into() }];
        Self {
            referral_id: v1.referral_id,
            case_id: v1.case_id,
            case_number: v1.case_number,
            department: v1.department,
            township: v1.township,
            issued_at: v1.issued_at,
            deadline: v1.deadline,
            applicant: v1.applicant,
            household: v1.household,
            members,
            household_id: None,
            request: v1.request,
            materials: v1.materials,
            missing_materials: v1.missing_materials,
        }
    }
}

/// Materials were handed in at the window: completing an application, or
/// answering a department's supplement request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MaterialsSupplemented {
    pub case_id: Uuid,
    /// Referrals already issued for the case, whose lanes may resume.
    pub referral_ids: Vec<Uuid>,
    pub materials: Vec<String>,
    pub supplemented_at: DateTime<Utc>,
}

/// The reason every withdrawal is announced with. The applicant's own words
/// (often personal: illness, a death, a move) stay at the window; a
/// department needs to know only that the applicant withdrew.
pub const WITHDRAWAL_AS_ANNOUNCED: &str = "申请人撤回申请";

/// The applicant withdrew; departments close their lanes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ApplicationWithdrawn {
    pub case_id: Uuid,
    pub referral_ids: Vec<Uuid>,
    /// [`WITHDRAWAL_AS_ANNOUNCED`] (earlier intakes sent the applicant's words).
    pub reason: String,
    pub withdrawn_at: DateTime<Utc>,
}

/// The household's personal data was erased at the end of its retention
/// period (its data key destroyed, ADR 0015): each department destroys its
/// key of the case, so the personal fields of its lanes read as erased too.
/// Ids only.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CaseErased {
    pub case_id: Uuid,
    /// Every referral the case issued, to any department.
    pub referral_ids: Vec<Uuid>,
    pub erased_at: DateTime<Utc>,
}

/// A scan of a material was uploaded at the window: a department whose
/// referral needs that material may read it from the document store, under
/// its digest. One event per department, on its own subject, as referrals
/// are; the file itself never travels on the broker.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DocumentAttached {
    pub case_id: Uuid,
    pub department: Department,
    /// The department's referrals whose line needs the material (asked for
    /// up front or in a supplement request).
    pub referral_ids: Vec<Uuid>,
    pub document_id: Uuid,
    /// The catalogue code of the material the scan is of.
    pub material: String,
    /// The key in the document store.
    pub sha256: String,
    /// `image/jpeg` | `image/png` | `application/pdf`
    pub content_type: String,
    pub size: u64,
    pub attached_at: DateTime<Utc>,
}

/// What the applicant is told, and when.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum NotificationKind {
    /// The application was accepted: its case number.
    Accepted,
    /// The one-time notice: the materials still missing.
    Notice,
    /// A department decided a line: approved (with the amount) or not.
    Decision,
}

/// A message to the applicant (an SMS), to be sent by intake's
/// notifications consumer through the configured provider. It carries the
/// phone number and the words of the message, never an ID number.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NotificationRequested {
    /// Also the idempotency key of the send.
    pub notification_id: Uuid,
    pub case_id: Uuid,
    pub kind: NotificationKind,
    pub phone: String,
    /// The template's parameters: `case_number`, and for a notice `items`
    /// (the missing materials' names), for a decision `line`, `outcome`
    /// and `amount` (yuan).
    pub params: std::collections::BTreeMap<String, String>,
    pub requested_at: DateTime<Utc>,
}

macro_rules! intake_event {
    ($ty:ty, $name:literal, |$e:ident| $subject:expr) => {
        intake_event!($ty, $name, 1, |$e| $subject);
    };
    ($ty:ty, $name:literal, $version:literal, |$e:ident| $subject:expr) => {
        impl IntegrationEvent for $ty {
            const TYPE: &'static str = concat!("onedoor.intake.", $name);
            const VERSION: u32 = $version;
            const SOURCE: &'static str = SOURCE;
            fn subject(&self) -> String {
                let $e = self;
                $subject
            }
            fn case_id(&self) -> Uuid {
                self.case_id
            }
        }
    };
}

intake_event!(ApplicationAccepted, "application_accepted", |_e| format!(
    "{SUBJECT_PREFIX}.intake.application.accepted"
));
intake_event!(ReferralIssuedV1, "referral_issued", |e| referral_subject(e.department));
intake_event!(ReferralIssuedV2, "referral_issued", 2, |e| referral_subject(e.department));
intake_event!(ReferralIssuedV3, "referral_issued", 3, |e| referral_subject(e.department));
intake_event!(ReferralIssued, "referral_issued", 4, |e| referral_subject(e.department));
intake_event!(MaterialsSupplemented, "materials_supplemented", |_e| format!(
    "{SUBJECT_PREFIX}.intake.materials.supplemented"
));
intake_event!(ApplicationWithdrawn, "application_withdrawn", |_e| format!(
    "{SUBJECT_PREFIX}.intake.application.withdrawn"
));
intake_event!(CaseErased, "case_erased", |_e| format!("{SUBJECT_PREFIX}.intake.case.erased"));
intake_event!(DocumentAttached, "document_attached", |e| document_subject(e.department));
intake_event!(NotificationRequested, "notification_requested", |_e| format!(
    "{SUBJECT_PREFIX}.intake.notification.requested"
));

crate::stream_events! {
    /// Every event on stream `INTAKE`, as a consumer decodes it.
    IntakeEvent {
        ApplicationAccepted(ApplicationAccepted),
        ReferralIssuedV1(ReferralIssuedV1),
        ReferralIssuedV2(ReferralIssuedV2),
        ReferralIssuedV3(ReferralIssuedV3),
        ReferralIssued(ReferralIssued),
        MaterialsSupplemented(MaterialsSupplemented),
        ApplicationWithdrawn(ApplicationWithdrawn),
        CaseErased(CaseErased),
        DocumentAttached(DocumentAttached),
        NotificationRequested(NotificationRequested),
    }
}
