//! The operators' erasure of a household's personal data at the end of its
//! retention period (PIPL art. 47): the household's data key is destroyed
//! (crypto-shredding), so every personal field sealed with it, in the event
//! log and in any dump or backup of it, reads as `[已删除]` from then on;
//! the read models are rewritten from the log, the register forgets its
//! members, the scans of its cases are deleted, and each case records the
//! erasure in its history and announces it to the departments (which
//! destroy their own keys of the case). The events stay whole:
//! the case's history (dates, amounts, staff ids) is still explained.
//! `cargo xtask erase --household <id>` calls this.

use super::*;
use chrono::{Duration as Days, NaiveDate};

#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ErasureForm {
    /// Why the household's data is erased (4 to 200 characters, recorded in
    /// the audit trail), e.g. `保存期限届满`.
    pub purpose: String,
}

/// What an erasure did.
#[derive(Debug, Serialize, ToSchema)]
pub struct HouseholdErasure {
    pub household_id: Uuid,
    /// The day the retention period ended (the last case's end plus the retention).
    pub retention_ended_on: NaiveDate,
    /// The household's cases, whose personal fields now read as `[已删除]`.
    pub cases: Vec<Uuid>,
    /// Scans of its cases deleted from the document store.
    pub documents_deleted: usize,
}

/// When a case ended (closed or withdrawn); `None` while it is open.
fn ended_at(case: &Case) -> Option<DateTime<Utc>> {
    case.closed.as_ref().map(|c| c.closed_at).or(case.withdrawn.as_ref().map(|(_, at)| *at))
}

/// Erase a household's personal data once its retention period is over
/// (operators; audited with the stated purpose). Answers the same again
/// when repeated.
#[utoipa::path(
    post, path = "/api/v1/admin/households/{household_id}/erasure", tag = "operations",
    params(("household_id" = Uuid, Path)), request_body = ErasureForm,
    responses((status = 200, body = HouseholdErasure), (status = 400, body = Problem), (status = 403, body = Problem),
               (status = 404, body = Problem),
               (status = 409, description = "a case is still open (`case_open`), or the retention period is not over \
                 (`retention_not_over`)", body = Problem))
)]
#[tracing::instrument(name = "erase household", skip_all)]
pub(super) async fn erase_household(
    staff: Staff,
    State(state): State<AppState>,
    Path(household_id): Path<String>,
    ApiJson(form): ApiJson<ErasureForm>,
) -> ApiResult<axum::Json<HouseholdErasure>> {
    staff.require(&[Role::Operator])?;
    let not_found = || Problem::not_found("no such household");
    let household_id = Uuid::parse_str(&household_id).map_err(|_| not_found())?;
    onedoor_http_kit::access::note_purpose(&form.purpose)?;
    onedoor_http_kit::access::note_household(household_id);
    let mut tx = state.pool.begin().await?;
    let cases = store::cases_of_household_locked(&mut tx, &state.keyring, household_id).await?;
    if cases.is_empty() {
        return Err(not_found());
    }
    let mut last_end = None;
    for case in &cases {
        match ended_at(case) {
            None => {
                return Err(Problem::conflict(
                    "case_open",
                    format!(
                        "case {} is still open: a household is erased only after all its cases ended",
                        case.case_number
                    ),
                ));
            }
            Some(at) => last_end = last_end.max(Some(at)),
        }
    }
    let last_end = last_end.expect("at least one case");
    let retention_ended_on = local_date(last_end) + Days::days(i64::from(state.policy.retention_days));
    if local_date(Utc::now()) < retention_ended_on {
        return Err(Problem::conflict(
            "retention_not_over",
            format!(
                "the household's data is kept until {retention_ended_on} (ONEDOOR_RETENTION_DAYS after its last case ended)"
            ),
        ));
    }
    // The key first: from the commit on, nothing can open what it sealed;
    // all of it commits together, or none (then asked again).
    state.keyring.erase(&mut tx, household_id).await.map_err(onedoor_event_store::StoreError::from)?;
    let case_ids: Vec<Uuid> = cases.iter().map(|c| c.case_id).collect();
    let scans =
        store::forget_household(&mut tx, &state.keyring, &state.policy, household_id, &case_ids, staff.id()).await?;
    tx.commit().await?;
    for sha256 in &scans {
        state.documents.delete(sha256).await.map_err(onedoor_http_kit::internal_error)?;
    }
    tracing::info!(household.id = %household_id, cases = case_ids.len(), scans = scans.len(), "household erased");
    Ok(axum::Json(HouseholdErasure {
        household_id,
        retention_ended_on,
        cases: case_ids,
        documents_deleted: scans.len(),
    }))
}
