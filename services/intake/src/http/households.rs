//! The household register: a household looked up by a member, and its verified support.

use super::*;

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(super) struct HouseholdQuery {
    /// The ID number of any member, now or before (exact; an `x` is read as `X`).
    id_number: String,
}

/// A household as the register knows it: members masked, with the dates they
/// joined and left, its declared support, and its cases.
#[derive(Debug, Serialize, ToSchema)]
pub struct HouseholdView {
    pub household_id: Uuid,
    pub township: String,
    pub division_code: String,
    /// `dibao` | `tekun` | `low_income`, as last declared.
    #[schema(value_type = Vec<String>)]
    pub support: Vec<onedoor_contracts::intake::SupportKind>,
    pub members: Vec<HouseholdMemberView>,
    /// Each change of the support, oldest first.
    pub support_changes: Vec<SupportChangeView>,
    pub cases: Vec<store::HouseholdCase>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SupportChangeView {
    #[schema(value_type = Vec<String>)]
    pub support: Vec<onedoor_contracts::intake::SupportKind>,
    pub effective: chrono::NaiveDate,
    /// `declared` (at the window, on an application) | `verified` (the economic-status check).
    pub source: crate::domain::household::Source,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct HouseholdMemberView {
    pub name: String,
    pub id_number_masked: String,
    pub relation: String,
    pub joined_on: chrono::NaiveDate,
    /// Set once the person left the household.
    pub left_on: Option<chrono::NaiveDate>,
}

/// The household register: the household of a person (window clerks of the
/// household's township; exact match; every lookup is audited).
#[utoipa::path(
    get, path = "/api/v1/households", tag = "households", params(HouseholdQuery),
    responses((status = 200, body = HouseholdView), (status = 400, body = Problem), (status = 403, body = Problem),
               (status = 404, description = "no household of this person in your township", body = Problem))
)]
#[tracing::instrument(name = "look up household", skip_all)]
pub(super) async fn find_household(
    staff: Staff,
    State(state): State<AppState>,
    ApiQuery(q): ApiQuery<HouseholdQuery>,
) -> ApiResult<axum::Json<HouseholdView>> {
    let township = clerk_township(&staff)?;
    let id_number = q.id_number.trim().to_ascii_uppercase();
    if id_number.is_empty() || id_number.len() > 18 {
        return Err(Problem::validation(vec![FieldError::new("id_number", "invalid_length", "18 characters")]));
    }
    if !id_number.bytes().all(|b| b.is_ascii_digit() || b == b'X') {
        return Err(Problem::validation(vec![FieldError::new("id_number", "invalid_format", "digits, and X last")]));
    }
    let mut tx = state.pool.begin().await?;
    let found = store::household_of_person(&mut tx, &state.keyring.lookup(&id_number)).await?;
    let household = match found {
        Some(id) => Some(store::load_household(&mut tx, &state.keyring, id).await?),
        None => None,
    };
    let visible = household.filter(|h| h.township == township);
    let Some(household) = visible else {
        return Err(Problem::not_found("no household of this person in your township"));
    };
    onedoor_http_kit::access::note_household(household.household_id);
    let cases = store::cases_of_household(&mut tx, household.household_id).await?;
    tx.commit().await?;
    Ok(axum::Json(household_view(household, cases)))
}

fn household_view(household: crate::domain::household::Household, cases: Vec<store::HouseholdCase>) -> HouseholdView {
    HouseholdView {
        household_id: household.household_id,
        township: household.township,
        division_code: household.division_code,
        support: household.support,
        members: household
            .members
            .into_iter()
            .map(|m| HouseholdMemberView {
                name: m.name,
                id_number_masked: onedoor_contracts::mask_id_number(&m.id_number),
                relation: m.relation,
                joined_on: m.joined_on,
                left_on: m.left_on,
            })
            .collect(),
        support_changes: household
            .support_history
            .into_iter()
            .map(|(support, effective, source)| SupportChangeView { support, effective, source })
            .collect(),
        cases,
    }
}

#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"support": ["dibao"], "effective": "2026-01-01"}))]
pub struct VerifiedSupportForm {
    /// Any of `dibao`, `tekun`, `low_income` (empty: none).
    pub support: Vec<String>,
    /// From when the verified support holds (not after today).
    pub effective: chrono::NaiveDate,
}

/// Record the household's support as the economic-status check verified it
/// (source `verified`), from its effective date (window clerks of the
/// household's township; audited).
#[utoipa::path(
    post, path = "/api/v1/households/{household_id}/support", tag = "households",
    params(("household_id" = Uuid, Path)), request_body = VerifiedSupportForm,
    responses((status = 200, body = HouseholdView), (status = 400, body = Problem), (status = 404, body = Problem))
)]
#[tracing::instrument(name = "verify household support", skip_all)]
pub(super) async fn verify_support(
    staff: Staff,
    State(state): State<AppState>,
    Path(household_id): Path<String>,
    ApiJson(form): ApiJson<VerifiedSupportForm>,
) -> ApiResult<axum::Json<HouseholdView>> {
    let township = clerk_township(&staff)?.to_string();
    let not_found = || Problem::not_found("no such household in your township");
    let household_id = Uuid::parse_str(&household_id).map_err(|_| not_found())?;
    let mut errors = Vec::new();
    let mut support = Vec::new();
    for (i, s) in form.support.iter().enumerate() {
        match serde_json::from_value::<onedoor_contracts::intake::SupportKind>(serde_json::Value::String(s.clone())) {
            Ok(kind) if !support.contains(&kind) => support.push(kind),
            Ok(_) => {}
            Err(_) => {
                errors.push(FieldError::new(format!("support[{i}]"), "invalid_value", "dibao, tekun, low_income"))
            }
        }
    }
    if form.effective > local_date(Utc::now()) {
        errors.push(FieldError::new("effective", "future_date", "a verified change holds from a day not after today"));
    }
    if !errors.is_empty() {
        return Err(Problem::validation(errors));
    }
    onedoor_http_kit::with_retries(|| async {
        let mut tx = state.pool.begin().await?;
        let before = store::load_household(&mut tx, &state.keyring, household_id).await?;
        if before.version == 0 || before.township != township {
            return Err(not_found());
        }
        let changes = before.verify_support(support.clone(), form.effective);
        store::save_household(&mut tx, &state.keyring, &before, &changes, staff.id()).await?;
        let household = store::load_household(&mut tx, &state.keyring, household_id).await?;
        let cases = store::cases_of_household(&mut tx, household_id).await?;
        tx.commit().await?;
        Ok(axum::Json(household_view(household, cases)))
    })
    .await
}
