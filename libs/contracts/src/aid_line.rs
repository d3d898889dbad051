//! The one table of aid lines (救助事项). Everything that differs per line and
//! that more than one part of the platform must agree on is here: the
//! department's service, its stream, port and database, the default
//! working-day time limit, and the materials its requests need.
//!
//! Every other list of lines (intake's consumers and deadlines, the
//! materials catalogue, `cargo xtask up`, the end-to-end stack, compose and
//! the kustomize base) is built from this table or checked against it by a
//! test (`tests/tests/platform/aid_lines.rs`). `docs/adding-an-aid-line.md` is the
//! checklist for a fifth line.

use crate::Department;

/// The materials one kind of request needs beyond those every line needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Requirement {
    /// The key in the materials catalogue (`ONEDOOR_MATERIALS_FILE`).
    pub key: &'static str,
    pub materials: &'static [&'static str],
}

/// One aid line and the department that handles it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AidLine {
    pub department: Department,
    /// The name in `GLOSSARY.md`, for pages and documents.
    pub chinese_name: &'static str,
    /// The department's service: binary, image command, k8s and compose name.
    pub service: &'static str,
    /// The JetStream stream the department publishes to.
    pub stream: &'static str,
    /// The department's own database.
    pub database: &'static str,
    /// The variable naming the HTTP port, and its default.
    pub port_env: &'static str,
    pub default_port: u16,
    /// The variable naming the working-day time limit (限时办结), and its default.
    pub deadline_env: &'static str,
    pub default_working_days: u32,
    /// The materials the line's requests need (one entry per kind of request).
    pub requirements: &'static [Requirement],
    /// Whether the line's rules look at the whole household (once a year per
    /// household): only then do its referrals carry the members' ID numbers.
    pub household_rules: bool,
    /// What of the applicant and the household, beyond what every line
    /// receives, the line's policy uses, and so its referrals carry.
    pub discloses: Disclosure,
}

/// The household facts a referral carries only to lines whose policy uses
/// them (the minimum necessary, PIPL art. 6): every line receives the
/// applicant's name and ID number and the household's division, hukou, size
/// and existing support; the phone, the income and the assets go no further
/// than the window unless a line is disclosed them here. The applicant's
/// own words (a withdrawal's reason) never leave the window.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Disclosure {
    /// The applicant's phone (the window sends every message to the applicant).
    pub phone: bool,
    /// The household's monthly income (a line whose policy tests it against a line).
    pub income: bool,
    /// The household's assets.
    pub assets: bool,
}

impl Disclosure {
    /// Nothing beyond what every line receives.
    pub const NOTHING_MORE: Self = Self { phone: false, income: false, assets: false };
}

/// Materials every application needs, whatever the lines.
pub const EVERY_LINE_MATERIALS: &[&str] = &["id_card", "hukou_book", "income_statement", "verification_authorization"];

/// The Chinese name of each material of the default catalogue (the
/// glossary's wording), shown on forms and printed notices. A catalogue from
/// configuration may name codes beyond these; they are shown by their code.
pub const MATERIAL_NAMES: &[(&str, &str)] = &[
    ("id_card", "居民身份证"),
    ("hukou_book", "户口簿"),
    ("income_statement", "家庭收入情况声明"),
    ("verification_authorization", "家庭经济状况核对授权书"),
    ("medical_invoice", "医疗费用票据"),
    ("discharge_summary", "出院小结（诊断证明）"),
    ("insurance_settlement", "医保结算单"),
    ("enrolment_proof", "在读证明（入学通知书）"),
    ("tenancy_proof", "租赁合同"),
    ("house_safety_appraisal", "房屋安全鉴定报告"),
    ("hardship_statement", "困难情况说明"),
    ("bank_statement", "银行流水"),
    ("medical_records", "病历"),
    ("disability_certificate", "残疾人证"),
    ("school_fee_receipt", "学费缴费凭证"),
    ("employer_income_proof", "工作单位收入证明"),
    ("unemployment_certificate", "失业登记证明"),
    ("marriage_certificate", "结婚证"),
    ("property_certificate", "不动产权证书"),
    ("accident_certificate", "事故证明"),
    ("death_certificate", "死亡证明"),
];

/// Items no request needs up front but a department commonly asks for in a
/// supplement request (补正); the window may hand them in like any other.
pub const ON_REQUEST_MATERIALS: &[&str] = &[
    "bank_statement",
    "medical_records",
    "disability_certificate",
    "school_fee_receipt",
    "employer_income_proof",
    "unemployment_certificate",
    "marriage_certificate",
    "property_certificate",
    "accident_certificate",
    "death_certificate",
];

/// The Chinese name of a material code, if it is one of [`MATERIAL_NAMES`].
pub fn material_name(code: &str) -> Option<&'static str> {
    MATERIAL_NAMES.iter().find(|(c, _)| *c == code).map(|(_, name)| *name)
}

/// The aid lines OneDoor refers to, in the order of [`Department::ALL`].
pub const AID_LINES: [AidLine; 4] = [
    AidLine {
        department: Department::Medical,
        chinese_name: "医疗救助",
        service: "medical-aid",
        stream: "MEDICAL",
        database: "onedoor_medical",
        port_env: "MEDICAL_AID_PORT",
        default_port: 8081,
        deadline_env: "ONEDOOR_DEADLINE_MEDICAL_DAYS",
        default_working_days: 20,
        requirements: &[Requirement {
            key: "medical",
            materials: &["medical_invoice", "discharge_summary", "insurance_settlement"],
        }],
        household_rules: false,
        // Medical aid follows the household's standing (dibao, tekun), not its income.
        discloses: Disclosure::NOTHING_MORE,
    },
    AidLine {
        department: Department::Education,
        chinese_name: "教育救助",
        service: "education-aid",
        stream: "EDUCATION",
        database: "onedoor_education",
        port_env: "EDUCATION_AID_PORT",
        default_port: 8082,
        deadline_env: "ONEDOOR_DEADLINE_EDUCATION_DAYS",
        default_working_days: 15,
        requirements: &[Requirement { key: "education", materials: &["enrolment_proof"] }],
        household_rules: false,
        // A household outside dibao and tekun qualifies by its income per member.
        discloses: Disclosure { income: true, ..Disclosure::NOTHING_MORE },
    },
    AidLine {
        department: Department::Housing,
        chinese_name: "住房救助",
        service: "housing-aid",
        stream: "HOUSING",
        database: "onedoor_housing",
        port_env: "HOUSING_AID_PORT",
        default_port: 8083,
        deadline_env: "ONEDOOR_DEADLINE_HOUSING_DAYS",
        default_working_days: 30,
        requirements: &[
            Requirement { key: "housing_rent_subsidy", materials: &["tenancy_proof"] },
            Requirement { key: "housing_renovation", materials: &["house_safety_appraisal"] },
        ],
        household_rules: true,
        // Civil affairs checks income and property before housing aid; the
        // housing department checks the housing (RULES.md, 住房救助).
        discloses: Disclosure::NOTHING_MORE,
    },
    AidLine {
        department: Department::Temporary,
        chinese_name: "临时救助",
        service: "temporary-aid",
        stream: "TEMPORARY",
        database: "onedoor_temporary",
        port_env: "TEMPORARY_AID_PORT",
        default_port: 8084,
        deadline_env: "ONEDOOR_DEADLINE_TEMPORARY_DAYS",
        default_working_days: 5,
        requirements: &[Requirement { key: "temporary", materials: &["hardship_statement"] }],
        household_rules: true,
        // The amount follows the local dibao line by hukou, not the income.
        discloses: Disclosure::NOTHING_MORE,
    },
];

/// The window's own service, beside the departments' (for the lists of
/// services that deployment and tooling keep).
pub const INTAKE_SERVICE: ServiceEntry =
    ServiceEntry { service: "intake", database: "onedoor_intake", port_env: "INTAKE_PORT", default_port: 8080 };

/// A service as deployment and tooling see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServiceEntry {
    pub service: &'static str,
    pub database: &'static str,
    pub port_env: &'static str,
    pub default_port: u16,
}

/// Intake and every department's service, in port order.
pub fn services() -> Vec<ServiceEntry> {
    std::iter::once(INTAKE_SERVICE)
        .chain(AID_LINES.iter().map(|l| ServiceEntry {
            service: l.service,
            database: l.database,
            port_env: l.port_env,
            default_port: l.default_port,
        }))
        .collect()
}

impl Department {
    /// This department's row of [`AID_LINES`]. The match has no wildcard: a
    /// new department does not compile until it has its row.
    pub const fn line(self) -> &'static AidLine {
        let index = match self {
            Self::Medical => 0,
            Self::Education => 1,
            Self::Housing => 2,
            Self::Temporary => 3,
        };
        &AID_LINES[index]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_department_has_its_own_row_and_all_lists_each_once() {
        for (i, line) in AID_LINES.iter().enumerate() {
            assert_eq!(Department::ALL[i], line.department, "AID_LINES and Department::ALL agree in order");
            assert_eq!(line.department.line(), line, "{} finds its own row", line.department);
            assert!(line.default_working_days > 0, "{} has a time limit", line.department);
            assert!(!line.requirements.is_empty(), "{} has its materials", line.department);
        }
        let names: std::collections::BTreeSet<_> = services().iter().map(|s| s.service).collect();
        let ports: std::collections::BTreeSet<_> = services().iter().map(|s| s.default_port).collect();
        assert_eq!(names.len(), AID_LINES.len() + 1);
        assert_eq!(ports.len(), AID_LINES.len() + 1);
    }

    #[test]
    fn every_material_of_the_default_catalogue_has_its_chinese_name() {
        let codes = EVERY_LINE_MATERIALS
            .iter()
            .chain(AID_LINES.iter().flat_map(|l| l.requirements).flat_map(|r| r.materials))
            .chain(ON_REQUEST_MATERIALS);
        for code in codes {
            assert!(material_name(code).is_some(), "{code} has no name in MATERIAL_NAMES");
        }
    }
}
