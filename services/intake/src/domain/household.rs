//! The household register (户籍与家庭成员登记): persons by ID number and the
//! households they live in, kept across applications. An application
//! declares the household as it is today; what differs from the register
//! (a member joined or left, the support changed) is recorded as an event
//! with its effective date and its source. Pure: [`Household::declare`]
//! turns a declaration into events, [`Household::apply`] folds them.
//!
//! A person is in one household at a time: declaring them in another
//! records that they left the first ([`Household::leave`]).

use super::application::Application;
use chrono::{DateTime, NaiveDate, Utc};
use onedoor_contracts::intake::SupportKind;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

/// Stream type of household streams in intake's event store.
pub const STREAM_TYPE: &str = "household";

/// Where a change to the register came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    /// Declared by the household at the window (on an application).
    Declared,
    /// Verified later (the household economic-status check).
    Verified,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HouseholdEvent {
    Registered {
        township: String,
        division_code: String,
        registered_at: DateTime<Utc>,
        registered_by: String,
    },
    MemberJoined {
        id_number: String,
        name: String,
        relation: String,
        effective: NaiveDate,
        source: Source,
        case_id: Option<Uuid>,
    },
    MemberLeft {
        id_number: String,
        effective: NaiveDate,
        source: Source,
        case_id: Option<Uuid>,
    },
    SupportChanged {
        support: Vec<SupportKind>,
        effective: NaiveDate,
        source: Source,
        case_id: Option<Uuid>,
    },
}

/// One person's time in the household.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Membership {
    pub id_number: String,
    pub name: String,
    pub relation: String,
    pub joined_on: NaiveDate,
    pub left_on: Option<NaiveDate>,
}

/// A household folded from its stream.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Household {
    pub household_id: Uuid,
    pub version: i64,
    pub township: String,
    pub division_code: String,
    /// Everyone who has been a member, in the order they joined.
    pub members: Vec<Membership>,
    pub support: Vec<SupportKind>,
    /// Every change of the support, oldest first: what, from when, and whether declared or verified.
    pub support_history: Vec<(Vec<SupportKind>, NaiveDate, Source)>,
}

/// A declaration at the window and the case it came with.
pub struct Declaration<'a> {
    pub application: &'a Application,
    pub case_id: Uuid,
    pub today: NaiveDate,
    pub now: DateTime<Utc>,
    pub staff_id: &'a str,
}

impl Household {
    pub fn new(household_id: Uuid) -> Self {
        Self { household_id, ..Default::default() }
    }

    pub fn from_events<'a>(household_id: Uuid, events: impl IntoIterator<Item = &'a HouseholdEvent>) -> Self {
        let mut household = Self::new(household_id);
        for e in events {
            household.apply(e);
        }
        household
    }

    pub fn apply(&mut self, event: &HouseholdEvent) {
        self.version += 1;
        match event {
            HouseholdEvent::Registered { township, division_code, .. } => {
                self.township = township.clone();
                self.division_code = division_code.clone();
            }
            HouseholdEvent::MemberJoined { id_number, name, relation, effective, .. } => {
                self.members.push(Membership {
                    id_number: id_number.clone(),
                    name: name.clone(),
                    relation: relation.clone(),
                    joined_on: *effective,
                    left_on: None,
                });
            }
            HouseholdEvent::MemberLeft { id_number, effective, .. } => {
                if let Some(m) = self.members.iter_mut().find(|m| &m.id_number == id_number && m.left_on.is_none()) {
                    m.left_on = Some(*effective);
                }
            }
            HouseholdEvent::SupportChanged { support, effective, source, .. } => {
                self.support = support.clone();
                self.support_history.push((support.clone(), *effective, *source));
            }
        }
    }

    /// Whether `id_number` lives in the household now.
    pub fn is_member(&self, id_number: &str) -> bool {
        self.members.iter().any(|m| m.id_number == id_number && m.left_on.is_none())
    }

    pub fn current_members(&self) -> impl Iterator<Item = &Membership> {
        self.members.iter().filter(|m| m.left_on.is_none())
    }

    /// What a declaration at the window changes: registered if new, members
    /// who joined or left, support that changed. Nothing if it matches.
    pub fn declare(&self, d: &Declaration) -> Vec<HouseholdEvent> {
        let app = d.application;
        let source = Source::Declared;
        let case_id = Some(d.case_id);
        let mut events = Vec::new();
        if self.version == 0 {
            events.push(HouseholdEvent::Registered {
                township: app.township().to_string(),
                division_code: app.division_code.clone(),
                registered_at: d.now,
                registered_by: d.staff_id.to_string(),
            });
        }
        for m in &app.members {
            if !self.is_member(&m.id_number) {
                events.push(HouseholdEvent::MemberJoined {
                    id_number: m.id_number.clone(),
                    name: m.name.clone(),
                    relation: m.relation.clone(),
                    effective: d.today,
                    source,
                    case_id,
                });
            }
        }
        for m in self.current_members() {
            if !app.members.iter().any(|declared| declared.id_number == m.id_number) {
                events.push(HouseholdEvent::MemberLeft {
                    id_number: m.id_number.clone(),
                    effective: d.today,
                    source,
                    case_id,
                });
            }
        }
        let mut declared = app.existing_support.clone();
        declared.sort_by_key(|s| *s as u8);
        let mut registered = self.support.clone();
        registered.sort_by_key(|s| *s as u8);
        if declared != registered {
            events.push(HouseholdEvent::SupportChanged {
                support: app.existing_support.clone(),
                effective: d.today,
                source,
                case_id,
            });
        }
        events
    }

    /// The support as the household economic-status check verified it
    /// (核对), from `effective`: recorded even when it confirms what was
    /// declared, since a verification is itself a fact.
    pub fn verify_support(&self, support: Vec<SupportKind>, effective: NaiveDate) -> Vec<HouseholdEvent> {
        vec![HouseholdEvent::SupportChanged { support, effective, source: Source::Verified, case_id: None }]
    }

    /// `id_number` was declared in another household: they left this one.
    pub fn leave(&self, id_number: &str, d: &Declaration) -> Vec<HouseholdEvent> {
        if !self.is_member(id_number) {
            return Vec::new();
        }
        vec![HouseholdEvent::MemberLeft {
            id_number: id_number.to_string(),
            effective: d.today,
            source: Source::Declared,
            case_id: Some(d.case_id),
        }]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::application::Member;
    use onedoor_contracts::intake::{Applicant, Hukou};

    fn member(id: &str, relation: &str) -> Member {
        Member {
            name: "某".into(),
            id_number: id.into(),
            relation: relation.into(),
            disability: false,
            in_school: false,
        }
    }

    fn application(members: Vec<Member>, support: Vec<SupportKind>) -> Application {
        Application {
            applicant: Applicant {
                name: "某".into(),
                id_number: members[0].id_number.clone(),
                phone: "13800138000".into(),
            },
            division_code: "330102001001".into(),
            address: "1".into(),
            hukou: Hukou::Urban,
            members,
            monthly_income_fen: 0,
            assets_fen: 0,
            existing_support: support,
            requests: vec![],
            materials: Default::default(),
        }
    }

    fn declaration(app: &Application, day: u32) -> Declaration<'_> {
        Declaration {
            application: app,
            case_id: Uuid::nil(),
            today: NaiveDate::from_ymd_opt(2026, 11, day).unwrap(),
            now: Utc::now(),
            staff_id: "clerk-7",
        }
    }

    #[test]
    fn a_first_declaration_registers_the_household_and_a_later_one_records_only_the_changes() {
        let first = application(vec![member("A", "applicant"), member("B", "spouse")], vec![SupportKind::Dibao]);
        let events = Household::new(Uuid::nil()).declare(&declaration(&first, 2));
        assert_eq!(events.len(), 4, "registered, two members, the support: {events:?}");
        let household = Household::from_events(Uuid::nil(), &events);
        assert!(Household::declare(&household, &declaration(&first, 3)).is_empty(), "nothing changed");

        // B moved out, C (a newborn) joined, and the household left dibao for low income.
        let later = application(vec![member("A", "applicant"), member("C", "child")], vec![SupportKind::LowIncome]);
        let changes = household.declare(&declaration(&later, 20));
        let mut household = household;
        for e in &changes {
            household.apply(e);
        }
        let now: Vec<&str> = household.current_members().map(|m| m.id_number.as_str()).collect();
        assert_eq!(now, ["A", "C"]);
        let b = household.members.iter().find(|m| m.id_number == "B").unwrap();
        assert_eq!(b.left_on, NaiveDate::from_ymd_opt(2026, 11, 20), "B's time in the household is kept");
        assert_eq!(household.support, [SupportKind::LowIncome]);
        assert!(changes.iter().all(|e| matches!(
            e,
            HouseholdEvent::MemberJoined { source: Source::Declared, .. }
                | HouseholdEvent::MemberLeft { source: Source::Declared, .. }
                | HouseholdEvent::SupportChanged { source: Source::Declared, .. }
        )));
    }
}
