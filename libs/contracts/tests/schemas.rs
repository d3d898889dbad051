//! The checked-in JSON Schemas are the contract other teams read; they must
//! be exactly what the code produces.

use std::path::Path;

#[test]
fn checked_in_schemas_match_the_contract_types() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../schemas");
    let mut stale = Vec::new();
    let expected = onedoor_contracts::schemas();
    for (file, schema) in &expected {
        let on_disk = std::fs::read_to_string(dir.join(file)).unwrap_or_default();
        if on_disk != onedoor_contracts::render_schema(schema) {
            stale.push(file.clone());
        }
    }
    let mut extra: Vec<String> = std::fs::read_dir(&dir)
        .map(|entries| {
            entries
                .filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|name| name.ends_with(".schema.json") && !expected.iter().any(|(f, _)| f == name))
                .collect()
        })
        .unwrap_or_default();
    extra.sort();
    assert!(
        stale.is_empty() && extra.is_empty(),
        "schemas/ is out of date (stale or missing: {stale:?}; no longer produced: {extra:?}); run `cargo xtask schemas`"
    );
}

#[test]
fn every_event_type_and_version_has_its_own_schema_file() {
    let files: Vec<String> = onedoor_contracts::schemas().into_iter().map(|(f, _)| f).collect();
    let mut unique = files.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), files.len());
    assert!(files.contains(&"onedoor.intake.referral_issued.v1.schema.json".to_string()));
}

#[test]
fn a_referral_round_trips_through_its_cloud_event_envelope() {
    use onedoor_contracts::intake::*;
    use onedoor_contracts::{CloudEvent, Department, IntegrationEvent};
    let referral = ReferralIssuedV1 {
        referral_id: uuid::Uuid::now_v7(),
        case_id: uuid::Uuid::now_v7(),
        case_number: "330102001-2026-000001".into(),
        department: Department::Housing,
        township: "330102001".into(),
        issued_at: chrono::Utc::now(),
        deadline: chrono::NaiveDate::from_ymd_opt(2026, 12, 30).unwrap(),
        applicant: Applicant { name: "n".into(), id_number: "i".into(), phone: "p".into() },
        household: HouseholdFacts {
            division_code: "330102001001".into(),
            hukou: Hukou::Urban,
            members: 3,
            monthly_income_fen: 120_000,
            assets_fen: 0,
            existing_support: vec![SupportKind::Dibao],
        },
        request: AidRequest::Housing { kind: HousingKind::RentSubsidy { monthly_rent_fen: 80_000 } },
        materials: vec!["id_card".into()],
        missing_materials: vec![],
    };
    let envelope = CloudEvent::new(referral.clone(), chrono::Utc::now());
    let json = serde_json::to_value(&envelope).unwrap();
    assert_eq!(json["type"], "onedoor.intake.referral_issued.v1");
    assert_eq!(json["subject"], referral.case_id.to_string());
    assert_eq!(json["data"]["request"]["aid"], "housing");
    assert_eq!(json["data"]["request"]["kind"], "rent_subsidy");
    assert_eq!(referral.subject(), "onedoor.intake.referral.housing");
    let back: CloudEvent<ReferralIssuedV1> = serde_json::from_value(json.clone()).unwrap();
    assert_eq!(back.data, referral);

    // A version-1 referral still reaches a department, upcast to the current version.
    use onedoor_contracts::StreamEvents;
    let bytes = serde_json::to_vec(&json).unwrap();
    let IntakeEvent::ReferralIssuedV1(v1) = IntakeEvent::decode("onedoor.intake.referral_issued.v1", &bytes).unwrap()
    else {
        panic!("decoded as version 1")
    };
    let current = ReferralIssued::from(ReferralIssuedV3::from(v1.data));
    assert_eq!(current.members, [HouseholdMember { id_number: "i".into(), relation: "applicant".into() }]);
    assert_eq!(current.household_id, None, "no household id before the register");
    // To housing, which weighs neither income nor assets, and sends no message itself.
    assert_eq!(current.applicant.phone, None);
    assert_eq!((current.household.monthly_income_fen, current.household.assets_fen), (None, None));
    assert_eq!(current.household.members, 3);
    assert_eq!(ReferralIssued::cloud_event_type(), "onedoor.intake.referral_issued.v4");
}
