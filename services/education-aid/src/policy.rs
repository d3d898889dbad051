//! Education aid policy: an annual grant by school stage, for households with
//! dibao, tekun or low-income support, or whose per-capita income is below
//! 1.5 times the local dibao line; above the threshold an approver decides.

use onedoor_contracts::Department;
use onedoor_contracts::intake::{AidRequest, Hukou, ReferralIssued, SchoolStage, SupportKind};
use onedoor_department_workflow::domain::policy::{LedgerFacts, LedgerKey, Policy, Recommendation, yuan};

#[derive(Debug, Clone, clap::Args)]
pub struct EducationPolicy {
    #[arg(long, env = "EDUCATION_GRANT_PRESCHOOL_FEN", default_value_t = 100_000)]
    pub preschool_fen: i64,
    #[arg(long, env = "EDUCATION_GRANT_PRIMARY_FEN", default_value_t = 100_000)]
    pub primary_fen: i64,
    #[arg(long, env = "EDUCATION_GRANT_JUNIOR_FEN", default_value_t = 125_000)]
    pub junior_fen: i64,
    #[arg(long, env = "EDUCATION_GRANT_SENIOR_FEN", default_value_t = 200_000)]
    pub senior_fen: i64,
    #[arg(long, env = "EDUCATION_GRANT_VOCATIONAL_FEN", default_value_t = 200_000)]
    pub vocational_fen: i64,
    #[arg(long, env = "EDUCATION_GRANT_COLLEGE_FEN", default_value_t = 500_000)]
    pub college_fen: i64,
    /// Local monthly dibao lines.
    #[arg(long, env = "ONEDOOR_DIBAO_LINE_URBAN_FEN", default_value_t = 33_000)]
    pub dibao_line_urban_fen: i64,
    #[arg(long, env = "ONEDOOR_DIBAO_LINE_RURAL_FEN", default_value_t = 16_500)]
    pub dibao_line_rural_fen: i64,
    #[arg(long, env = "EDUCATION_APPROVAL_THRESHOLD_FEN", default_value_t = 500_000)]
    pub threshold_fen: i64,
}

impl Default for EducationPolicy {
    fn default() -> Self {
        Self {
            preschool_fen: 100_000,
            primary_fen: 100_000,
            junior_fen: 125_000,
            senior_fen: 200_000,
            vocational_fen: 200_000,
            college_fen: 500_000,
            dibao_line_urban_fen: 33_000,
            dibao_line_rural_fen: 16_500,
            threshold_fen: 500_000,
        }
    }
}

impl EducationPolicy {
    fn grant(&self, stage: SchoolStage) -> i64 {
        match stage {
            SchoolStage::Preschool => self.preschool_fen,
            SchoolStage::Primary => self.primary_fen,
            SchoolStage::Junior => self.junior_fen,
            SchoolStage::Senior => self.senior_fen,
            SchoolStage::Vocational => self.vocational_fen,
            SchoolStage::College => self.college_fen,
        }
    }

    fn stage_of(referral: &ReferralIssued) -> Option<SchoolStage> {
        match &referral.request {
            AidRequest::Education { stage, .. } => Some(*stage),
            _ => None,
        }
    }
}

impl Policy for EducationPolicy {
    fn department(&self) -> Department {
        Department::Education
    }

    /// Grants are annual per student.
    fn ledger_key(&self, referral: &ReferralIssued) -> LedgerKey {
        let student = match &referral.request {
            AidRequest::Education { student_id_number, .. } => student_id_number.clone(),
            _ => referral.applicant.id_number.clone(),
        };
        LedgerKey::person(&student, "education")
    }

    fn recommend(&self, referral: &ReferralIssued, ledger: LedgerFacts) -> Recommendation {
        let Some(stage) = Self::stage_of(referral) else {
            return Recommendation { notes: vec!["不是教育救助申请".into()], ..Default::default() };
        };
        let household = &referral.household;
        let line = match household.hukou {
            Hukou::Urban => self.dibao_line_urban_fen,
            Hukou::Rural => self.dibao_line_rural_fen,
        };
        let supported = household
            .existing_support
            .iter()
            .any(|s| matches!(s, SupportKind::Dibao | SupportKind::Tekun | SupportKind::LowIncome));
        let per_capita = household.per_capita_income_fen();
        let low_income = per_capita.is_some_and(|p| p * 2 < line * 3);
        let mut notes = vec![format!("{}阶段年度资助标准：{}", stage_term(stage), yuan(self.grant(stage)))];
        match per_capita {
            _ if supported => notes.push("家庭为低保对象、特困人员或低保边缘家庭".into()),
            Some(per_capita) => notes.push(format!(
                "家庭月人均收入{}，{}低保标准的1.5倍（{}）",
                yuan(per_capita),
                if low_income { "低于" } else { "不低于" },
                yuan(line * 3 / 2)
            )),
            None => notes.push("转办未附家庭收入，无法核对收入条件".into()),
        }
        let eligible = supported || low_income;
        let remaining = self.max_amount_fen(referral, ledger);
        if remaining < self.grant(stage) {
            notes.push(format!("该学生本学年已获资助{}", yuan(ledger.approved_this_year_fen)));
        }
        let suggested = if eligible { self.grant(stage).min(remaining) } else { 0 };
        Recommendation {
            eligible: eligible && suggested > 0,
            suggested_amount_fen: suggested,
            notes,
            needs_approver_override: false,
        }
    }

    fn approval_threshold_fen(&self, _: &ReferralIssued) -> i64 {
        self.threshold_fen
    }

    /// Once per student per school year: the school year starts on 1 September.
    fn counted_since(&self, _: &ReferralIssued, now: chrono::DateTime<chrono::Utc>) -> chrono::DateTime<chrono::Utc> {
        school_year_start(now)
    }

    fn max_amount_fen(&self, referral: &ReferralIssued, ledger: LedgerFacts) -> i64 {
        Self::stage_of(referral).map_or(0, |s| (self.grant(s) - ledger.approved_this_year_fen).max(0))
    }
}

/// 1 September (China Standard Time) of the school year `now` falls in.
pub fn school_year_start(now: chrono::DateTime<chrono::Utc>) -> chrono::DateTime<chrono::Utc> {
    let this_year = onedoor_department_workflow::domain::policy::start_of_year(now);
    let september = this_year + chrono::Months::new(8);
    if now >= september { september } else { september - chrono::Months::new(12) }
}

/// The glossary's term for a stage, for the recommendation's notes.
fn stage_term(stage: SchoolStage) -> &'static str {
    match stage {
        SchoolStage::Preschool => "学前教育",
        SchoolStage::Primary => "小学",
        SchoolStage::Junior => "初中",
        SchoolStage::Senior => "高中",
        SchoolStage::Vocational => "中职",
        SchoolStage::College => "大学",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_school_year_runs_from_september_to_august() {
        let at = |s: &str| chrono::DateTime::parse_from_rfc3339(s).unwrap().to_utc();
        let start = at("2026-08-31T16:00:00Z"); // 1 September 2026, 00:00 in Beijing
        assert_eq!(school_year_start(at("2026-10-15T02:00:00Z")), start);
        assert_eq!(school_year_start(at("2027-03-01T02:00:00Z")), start, "March is still the 2026 school year");
        assert_eq!(school_year_start(at("2026-08-31T15:59:00Z")), at("2025-08-31T16:00:00Z"));
    }
    use onedoor_department_workflow::domain::policy::testing::referral;

    fn education(stage: SchoolStage, income: i64, support: Vec<SupportKind>) -> ReferralIssued {
        let mut r = referral(
            Department::Education,
            AidRequest::Education { student_id_number: "11010520120915004X".into(), stage, school: "s".into() },
        );
        r.household.monthly_income_fen = Some(income);
        r.household.existing_support = support;
        r
    }

    #[test]
    fn the_grant_follows_the_school_stage() {
        let p = EducationPolicy::default();
        let r = p.recommend(&education(SchoolStage::College, 0, vec![SupportKind::Tekun]), LedgerFacts::default());
        assert_eq!((r.eligible, r.suggested_amount_fen), (true, 500_000));
        let r = p.recommend(&education(SchoolStage::Junior, 0, vec![SupportKind::Dibao]), LedgerFacts::default());
        assert_eq!(r.suggested_amount_fen, 125_000);
    }

    #[test]
    fn without_support_the_per_capita_income_must_be_below_one_and_a_half_dibao_lines() {
        let p = EducationPolicy::default();
        // Two members; the urban line is 330 yuan, so the limit is 495 yuan each.
        let poor = p.recommend(&education(SchoolStage::Senior, 2 * 49_400, vec![]), LedgerFacts::default());
        assert!(poor.eligible);
        let not_poor = p.recommend(&education(SchoolStage::Senior, 2 * 49_500, vec![]), LedgerFacts::default());
        assert!(!not_poor.eligible);
        assert_eq!(not_poor.suggested_amount_fen, 0);
    }
}
