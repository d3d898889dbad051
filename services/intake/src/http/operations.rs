//! The operators' rebuild of the case views.

use super::*;

fn job_response(status: StatusCode, job: &RebuildJob) -> Response {
    let mut response = (status, axum::Json(job)).into_response();
    if let Ok(v) = HeaderValue::from_str(&format!("/api/v1/admin/case-views/rebuild/{}", job.job_id)) {
        response.headers_mut().insert(header::LOCATION, v);
    }
    response
}

/// Operators: rebuild every case view (and the open lines) from the event
/// log, as a background job; the answer is the job (a running one if there
/// is one), to follow at its `Location`.
#[utoipa::path(
    post, path = "/api/v1/admin/case-views/rebuild", tag = "operations",
    responses((status = 202, description = "the job, running", body = RebuildJob))
)]
#[tracing::instrument(name = "rebuild case views", skip_all)]
pub(super) async fn rebuild_case_views(staff: Staff, State(state): State<AppState>) -> ApiResult<Response> {
    staff.require(&[Role::Operator])?;
    let (job, started) = store::start_rebuild(&state.pool, staff.id()).await?;
    if started {
        let (pool, keyring, policy, job_id) =
            (state.pool.clone(), state.keyring.clone(), state.policy.clone(), job.job_id);
        // Not tied to the request: a client hanging up does not stop it.
        tokio::spawn(async move {
            match store::run_rebuild(&pool, &keyring, &policy, job_id).await {
                Ok(()) => tracing::info!(job.id = %job_id, "case views rebuilt from the event log"),
                Err(error) => tracing::error!(job.id = %job_id, %error, "rebuilding the case views failed"),
            }
        });
    }
    Ok(job_response(StatusCode::ACCEPTED, &job))
}

/// Operators: a rebuild job's progress.
#[utoipa::path(
    get, path = "/api/v1/admin/case-views/rebuild/{job_id}", tag = "operations",
    params(("job_id" = Uuid, Path)),
    responses((status = 200, body = RebuildJob))
)]
#[tracing::instrument(name = "rebuild progress", skip_all)]
pub(super) async fn rebuild_progress(
    staff: Staff,
    State(state): State<AppState>,
    Path(job_id): Path<String>,
) -> ApiResult<Response> {
    staff.require(&[Role::Operator])?;
    let not_found = || Problem::not_found("no such rebuild job");
    let job_id = Uuid::parse_str(&job_id).map_err(|_| not_found())?;
    let job = store::rebuild_job(&state.pool, job_id).await?.ok_or_else(not_found)?;
    Ok(job_response(StatusCode::OK, &job))
}
