//! Submissions at the window (一门受理) and the materials catalogue their forms read.

use super::*;

/// A lane as listed in the answer to a submission.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct LaneSummary {
    #[schema(value_type = String)]
    pub department: Department,
    pub referral_id: Option<Uuid>,
    pub status: CaseLineStatus,
}

/// The receipt of a submission: case number, the one-time notice, the referrals.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct CreatedCase {
    pub case_id: Uuid,
    pub case_number: String,
    /// `accepted` or `awaiting_materials`.
    pub status: String,
    pub missing_materials: Vec<MissingMaterial>,
    pub lanes: Vec<LaneSummary>,
}

fn created(case: &Case, policy: &Policy, now: DateTime<Utc>) -> CreatedCase {
    let view = case.view(&policy.catalogue, &policy.calendar, local_date(now));
    CreatedCase {
        case_id: case.case_id,
        case_number: case.case_number.clone(),
        status: if case.accepted_at.is_some() { "accepted" } else { "awaiting_materials" }.into(),
        missing_materials: view.missing_materials,
        lanes: view
            .lanes
            .iter()
            .map(|l| LaneSummary { department: l.department, referral_id: l.referral_id, status: l.status })
            .collect(),
    }
}

fn created_response(body: &CreatedCase, replayed: bool) -> Response {
    let mut response = (StatusCode::CREATED, axum::Json(body)).into_response();
    let location = format!("/api/v1/cases/{}", body.case_id);
    if let Ok(v) = HeaderValue::from_str(&location) {
        response.headers_mut().insert(header::LOCATION, v);
    }
    if replayed {
        response.headers_mut().insert("idempotent-replayed", HeaderValue::from_static("true"));
    }
    response
}

fn idempotency_key(headers: &HeaderMap) -> ApiResult<Option<String>> {
    let Some(value) = headers.get("idempotency-key") else { return Ok(None) };
    match value.to_str() {
        Ok(k) if !k.trim().is_empty() && k.len() <= 200 => Ok(Some(k.trim().to_string())),
        _ => Err(Problem::validation(vec![FieldError::new(
            "Idempotency-Key",
            "invalid_idempotency_key",
            "1 to 200 visible ASCII characters",
        )])),
    }
}

/// Accept an application at the window (一门受理).
#[utoipa::path(
    post, path = "/api/v1/applications", tag = "applications",
    request_body = ApplicationForm,
    params(("Idempotency-Key" = Option<String>, Header, description = "a retry with the same key and body returns the same case")),
    responses(
        (status = 201, description = "accepted, or awaiting materials with the one-time notice", body = CreatedCase),
        (status = 400, description = "every invalid field at once", body = Problem),
        (status = 401, body = Problem), (status = 403, body = Problem),
        (status = 409, description = "an open case of this applicant covers one of the aid lines", body = Problem),
        (status = 422, description = "the idempotency key was used with another body", body = Problem),
    )
)]
#[tracing::instrument(name = "submit application", skip_all, fields(case.id = tracing::field::Empty))]
pub(super) async fn submit_application(
    staff: Staff,
    State(state): State<AppState>,
    headers: HeaderMap,
    ApiJson(form): ApiJson<ApplicationForm>,
) -> ApiResult<Response> {
    let township = clerk_township(&staff)?.to_string();
    let key = idempotency_key(&headers)?;
    let now = Utc::now();
    let policy = &state.policy;
    let application = form
        .validate(&policy.catalogue, local_date(now))
        .map_err(|errors| Problem::validation(errors.into_iter().map(FieldError::from).collect()))?;
    if application.township() != township {
        return Err(Problem::forbidden("the household's division code is outside your township"));
    }
    let request = serde_json::to_value(&form).map_err(onedoor_http_kit::internal_error)?;
    let staff_id = staff.id();
    onedoor_http_kit::with_retries(|| {
        submit_once(&state, staff_id, &township, key.as_deref(), &application, &request, now)
    })
    .await
}

/// A JSON value's text with every object's keys in order: equal for equal
/// values, whatever order a client sent the keys in.
fn canonical_json(value: &serde_json::Value) -> String {
    fn write(value: &serde_json::Value, out: &mut String) {
        match value {
            serde_json::Value::Object(map) => {
                let mut entries: Vec<_> = map.iter().collect();
                entries.sort_by(|a, b| a.0.cmp(b.0));
                out.push('{');
                for (i, (k, v)) in entries.into_iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    out.push_str(&serde_json::Value::String(k.clone()).to_string());
                    out.push(':');
                    write(v, out);
                }
                out.push('}');
            }
            serde_json::Value::Array(items) => {
                out.push('[');
                for (i, v) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    write(v, out);
                }
                out.push(']');
            }
            other => out.push_str(&other.to_string()),
        }
    }
    let mut out = String::new();
    write(value, &mut out);
    out
}

/// One attempt at recording a submission, in one transaction.
pub(super) async fn submit_once(
    state: &AppState,
    staff_id: &str,
    township: &str,
    key: Option<&str>,
    application: &Application,
    request: &serde_json::Value,
    now: DateTime<Utc>,
) -> ApiResult<Response> {
    let policy = &state.policy;
    let mut tx = state.pool.begin().await?;

    // The key keeps a keyed hash of the body, never the application itself.
    let fingerprint = serde_json::Value::String(state.keyring.digest(canonical_json(request).as_bytes()));
    if let Some(key) = key
        && let KeyClaim::Used { request: earlier, answer } =
            store::claim_idempotency_key(&mut tx, township, key, &fingerprint).await?
    {
        // A key claimed by an earlier release kept the body itself.
        let same = if earlier.is_object() { &earlier == request } else { earlier == fingerprint };
        if !same {
            return Err(Problem::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "idempotency_key_reused",
                "this Idempotency-Key was used for a different application",
            ));
        }
        let body: CreatedCase = answer
            .and_then(|r| serde_json::from_value(r).ok())
            .ok_or_else(|| onedoor_http_kit::internal_error("idempotency row without a response"))?;
        onedoor_http_kit::access::note_case(body.case_id);
        return Ok(created_response(&body, true));
    }

    let people = store::person_keys(&state.keyring, &application.person_ids());
    store::lock_people(&mut tx, &people).await?;
    let departments = application.departments();
    let line_of = |department| departments.iter().position(|d| *d == department).unwrap_or_default();
    if let Some((department, open)) = store::open_cases_of(&mut tx, &people, &departments, None).await? {
        return Err(duplicate(format!("requests[{}].aid", line_of(department)), department, &open, township));
    }
    let case_number = store::next_case_number(&mut tx, township, now).await?;
    let referral_ids = fresh_referral_ids();
    let ctx = Context {
        now,
        staff_id,
        referral_ids: &referral_ids,
        catalogue: &policy.catalogue,
        deadlines: &policy.deadlines,
        calendar: &policy.calendar,
    };
    // The household in the register: the applicant's, a declared member's, or a new one.
    let household_id = store::household_of(&mut tx, &people).await?.unwrap_or_else(Uuid::now_v7);
    let events = case::submit(application.clone(), case_number, Some(household_id), &ctx);
    let case = store::save(
        &mut tx,
        &state.keyring,
        &Case::new(Uuid::now_v7()),
        &events,
        store::Cause::staff(staff_id),
        policy,
        now,
    )
    .await?;
    let declaration = Declaration { application, case_id: case.case_id, today: local_date(now), now, staff_id };
    store::register_declaration(&mut tx, &state.keyring, household_id, &declaration).await?;
    tracing::Span::current().record("case.id", tracing::field::display(case.case_id));
    if let Some((department, open)) = store::claim_open_lines(&mut tx, &state.keyring, &case, &departments).await? {
        // A concurrent submission for the same household and line won the race.
        tx.rollback().await?;
        return Err(duplicate(format!("requests[{}].aid", line_of(department)), department, &open, township));
    }
    let body = created(&case, policy, now);
    if let Some(key) = key {
        let answer = serde_json::to_value(&body).map_err(onedoor_http_kit::internal_error)?;
        store::save_answer(&mut tx, township, key, &answer).await?;
    }
    // Noted before the commit, which writes the trail's entry with them.
    onedoor_http_kit::access::note(|a| {
        a.case_id = Some(case.case_id);
        a.household_id = Some(household_id);
    });
    onedoor_audit::commit_with_entry(tx, StatusCode::CREATED).await?;
    tracing::info!(case.id = %case.case_id, status = %body.status, lanes = body.lanes.len(), "application accepted at the window");
    Ok(created_response(&body, false))
}

/// The materials catalogue and the lines' time limits, for the window's forms
/// and printed notices. Any member of staff may read it.
#[utoipa::path(
    get, path = "/api/v1/materials", tag = "applications",
    responses((status = 200, body = crate::domain::materials::PublishedCatalogue))
)]
pub(super) async fn materials_catalogue(
    _staff: Staff,
    State(state): State<AppState>,
) -> axum::Json<crate::domain::materials::PublishedCatalogue> {
    axum::Json(state.policy.catalogue.published(state.policy.deadlines.all()))
}
