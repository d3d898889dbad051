//! The township's cases: the list, the one case view, and the commands on a case.

use super::*;

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(super) struct ListQuery {
    /// `awaiting_materials` | `in_progress` | `decided` | `closed` | `withdrawn`
    status: Option<String>,
    /// Only cases with (`true`) or without (`false`) an overdue lane.
    overdue: Option<bool>,
    /// 1 to 100 (default 20).
    #[param(minimum = 1, maximum = 100)]
    limit: Option<i64>,
    cursor: Option<String>,
    /// Only the case with this case number (exact).
    case_number: Option<String>,
    /// Only cases whose applicant has this ID number (exact; an `x` is read as `X`).
    id_number: Option<String>,
    /// `me`: only the cases the signed-in clerk owns (first-contact responsibility).
    owner: Option<String>,
}

/// A page of a list.
#[derive(Debug, Serialize, ToSchema)]
pub struct CasePage {
    pub items: Vec<CaseView>,
    pub next_cursor: Option<String>,
}

/// The clerk's township's cases, newest first.
#[utoipa::path(
    get, path = "/api/v1/cases", tag = "cases", params(ListQuery),
    responses((status = 200, body = CasePage), (status = 400, body = Problem), (status = 403, body = Problem))
)]
#[tracing::instrument(name = "list cases", skip_all)]
pub(super) async fn list_cases(
    staff: Staff,
    State(state): State<AppState>,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> ApiResult<axum::Json<CasePage>> {
    let township = clerk_township(&staff)?;
    let statuses = CaseStatus::ALL.map(CaseStatus::as_str);
    let params = ListParams::parse(q.status, &statuses, q.limit, q.cursor.as_deref())?;
    let today = local_date(Utc::now());
    let owner = match q.owner.as_deref() {
        None => None,
        Some("me") => Some(staff.id()),
        Some(_) => {
            return Err(Problem::validation(vec![FieldError::new("owner", "invalid_value", "only `me` is supported")]));
        }
    };
    let query = CaseListQuery {
        owner,
        township,
        status: params.status.as_deref(),
        overdue: q.overdue,
        today,
        after: params.cursor,
        limit: params.fetch(),
        case_number: q.case_number.as_deref().map(str::trim),
        applicant_id_number: q.id_number.map(|id| state.keyring.lookup(&id)),
    };
    let mut found = store::list_cases(&state.pool, &state.keyring, &query).await?;
    for (_, _, view) in &mut found {
        view.refresh_overdue(today);
    }
    let (items, next_cursor) = params.page(found);
    Ok(axum::Json(CasePage { items, next_cursor }))
}

/// The one case view (ETag = its version and the day: overdue flags and paused deadlines change with the date).
///
/// With `If-None-Match` and `Prefer: wait=N` the answer waits for the case
/// to change, at most N seconds (30 at most), then says `304` if it did not.
#[utoipa::path(
    get, path = "/api/v1/cases/{case_id}", tag = "cases",
    params(
        ("case_id" = Uuid, Path),
        ("If-None-Match" = Option<String>, Header, description = "the ETag the window has: 304 while it is current"),
        ("Prefer" = Option<String>, Header, description = "`wait=N`: with If-None-Match, answer when the case changes, at most N seconds"),
    ),
    responses((status = 200, body = CaseView), (status = 304), (status = 404, body = Problem))
)]
#[tracing::instrument(name = "get case", skip_all, fields(case.id = %case_id))]
pub(super) async fn get_case(
    staff: Staff,
    State(state): State<AppState>,
    Path(case_id): Path<String>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let township = clerk_township(&staff)?;
    let case_id = path_case_id(&case_id)?;
    let asked_to_wait = crate::case_watch::preferred_wait(&headers);
    let mut wait = asked_to_wait;
    let (mut conn, owner, mut view, today) = loop {
        let mut conn = state.pool.acquire().await?;
        // The view written with the case's last change, unless a paused
        // deadline has moved since: then it is rendered from the stream.
        let Some((owner, view)) =
            store::stored_view(&mut conn, &state.keyring, case_id).await?.filter(|(t, _)| t == township)
        else {
            return Err(Problem::not_found(format!("no case {case_id} in your township")));
        };
        let today = local_date(Utc::now());
        // The view's overdue flags and paused deadlines change with the day.
        let tag = dated_etag(view.version, today);
        if headers.get(header::IF_NONE_MATCH) != Some(&tag) {
            break (conn, owner, view, today);
        }
        // Current: wait for a change if asked to (without a connection), once.
        match wait.take() {
            Some(wait) => {
                drop(conn);
                if !state.case_watch.changed(case_id, view.version, wait).await {
                    return Ok(not_modified(tag, true));
                }
            }
            None => return Ok(not_modified(tag, asked_to_wait.is_some())),
        }
    };
    if view.depends_on_today() {
        let case = case_of_township(&mut conn, &state.keyring, case_id, &owner, false).await?;
        view = case.view(&state.policy.catalogue, &state.policy.calendar, today);
    } else {
        view.refresh_overdue(today);
    }
    Ok(view_response(&view))
}

/// `304`: the window's view is current (after the wait it asked for, if `waited`).
/// A view woken for another waiter's older version is still current: it
/// says so at once, and the window asks again.
fn not_modified(tag: HeaderValue, waited: bool) -> Response {
    let mut response = (StatusCode::NOT_MODIFIED, [(header::ETAG, tag)]).into_response();
    if waited {
        response.headers_mut().insert("preference-applied", HeaderValue::from_static("wait"));
    }
    response
}

#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SupplementForm {
    pub materials: Vec<String>,
}

/// Hand in materials: completes the application (the remaining referrals go
/// out) or answers a department's supplement request.
#[utoipa::path(
    post, path = "/api/v1/cases/{case_id}/materials", tag = "cases",
    params(("case_id" = Uuid, Path), ("If-Match" = Option<String>, Header)),
    request_body = SupplementForm,
    responses((status = 200, body = CaseView), (status = 400, body = Problem), (status = 404, body = Problem),
              (status = 409, body = Problem), (status = 412, body = Problem))
)]
#[tracing::instrument(name = "supplement materials", skip_all, fields(case.id = %case_id))]
pub(super) async fn supplement_materials(
    staff: Staff,
    State(state): State<AppState>,
    Path(case_id): Path<String>,
    headers: HeaderMap,
    ApiJson(form): ApiJson<SupplementForm>,
) -> ApiResult<Response> {
    let township = clerk_township(&staff)?.to_string();
    let case_id = path_case_id(&case_id)?;
    let policy = &state.policy;
    let mut errors = Vec::new();
    if form.materials.is_empty() {
        errors.push(FieldError::new("materials", "required", "list the materials handed in"));
    }
    for (i, code) in form.materials.iter().enumerate() {
        if !policy.catalogue.is_known(code) {
            errors.push(FieldError::new(
                format!("materials[{i}]"),
                "unknown_material",
                format!("{code:?} is not in the catalogue"),
            ));
        }
    }
    if !errors.is_empty() {
        return Err(Problem::validation(errors));
    }
    change_case(&state, &staff, &township, case_id, &headers, None, |case, ctx| {
        case.supplement(form.materials.clone(), ctx).map_err(case_conflict)
    })
    .await
}

#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WithdrawForm {
    pub reason: String,
}

/// The applicant withdraws; the departments close their lanes.
#[utoipa::path(
    post, path = "/api/v1/cases/{case_id}/withdraw", tag = "cases",
    params(("case_id" = Uuid, Path), ("If-Match" = Option<String>, Header)),
    request_body = WithdrawForm,
    responses((status = 200, body = CaseView), (status = 400, body = Problem), (status = 404, body = Problem),
              (status = 409, body = Problem), (status = 412, body = Problem))
)]
#[tracing::instrument(name = "withdraw application", skip_all, fields(case.id = %case_id))]
pub(super) async fn withdraw_application(
    staff: Staff,
    State(state): State<AppState>,
    Path(case_id): Path<String>,
    headers: HeaderMap,
    ApiJson(form): ApiJson<WithdrawForm>,
) -> ApiResult<Response> {
    let township = clerk_township(&staff)?.to_string();
    let case_id = path_case_id(&case_id)?;
    let reason = form.reason.trim().to_string();
    if reason.is_empty() || reason.chars().count() > 500 {
        return Err(Problem::validation(vec![FieldError::new("reason", "required", "1 to 500 characters")]));
    }
    change_case(&state, &staff, &township, case_id, &headers, None, |case, ctx| {
        case.withdraw(reason.clone(), ctx).map_err(case_conflict)
    })
    .await
}

/// Add an aid line to an open case (one element of an application's
/// `requests`): a new referral, after the same checks as on submission. This
/// is also how the window re-routes a lane a department returned: the
/// returned lane stays in the history and the new line goes out.
#[utoipa::path(
    post, path = "/api/v1/cases/{case_id}/lines", tag = "cases",
    params(("case_id" = Uuid, Path), ("If-Match" = Option<String>, Header)),
    request_body = crate::domain::application::RequestForm,
    responses((status = 201, description = "the case with the new line", body = CaseView),
              (status = 400, body = Problem), (status = 404, body = Problem),
              (status = 409, description = "the line is open in this case or another of the household, or the case is over", body = Problem),
              (status = 412, body = Problem))
)]
#[tracing::instrument(name = "add line", skip_all, fields(case.id = %case_id))]
pub(super) async fn add_line(
    staff: Staff,
    State(state): State<AppState>,
    Path(case_id): Path<String>,
    headers: HeaderMap,
    ApiJson(form): ApiJson<crate::domain::application::RequestForm>,
) -> ApiResult<Response> {
    let township = clerk_township(&staff)?.to_string();
    let case_id = path_case_id(&case_id)?;
    let department = form.aid.parse::<Department>().ok();
    let today = local_date(Utc::now());
    let mut response = change_case(&state, &staff, &township, case_id, &headers, department, |case, ctx| {
        let members: std::collections::BTreeSet<String> = case
            .application
            .as_ref()
            .map(|a| a.person_ids().into_iter().map(str::to_string).collect())
            .unwrap_or_default();
        let request = form
            .validate(&members, today)
            .map_err(|errors| Problem::validation(errors.into_iter().map(FieldError::from).collect()))?;
        case.add_line(request, ctx).map_err(case_conflict)
    })
    .await?;
    *response.status_mut() = StatusCode::CREATED;
    Ok(response)
}

#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct HandoverForm {
    /// The staff id of the clerk of the township who takes the case over.
    pub to: String,
}

/// Hand the case over to another clerk of the township, who owns it from now
/// on (first-contact responsibility, 首问负责). Any clerk of the township may
/// record it; the hand-over is in the case's history.
#[utoipa::path(
    post, path = "/api/v1/cases/{case_id}/handover", tag = "cases",
    params(("case_id" = Uuid, Path), ("If-Match" = Option<String>, Header)),
    request_body = HandoverForm,
    responses((status = 200, body = CaseView), (status = 400, body = Problem), (status = 404, body = Problem),
              (status = 409, description = "the clerk already owns it, or the case is over", body = Problem),
              (status = 412, body = Problem))
)]
#[tracing::instrument(name = "hand over case", skip_all, fields(case.id = %case_id))]
pub(super) async fn hand_over_case(
    staff: Staff,
    State(state): State<AppState>,
    Path(case_id): Path<String>,
    headers: HeaderMap,
    ApiJson(form): ApiJson<HandoverForm>,
) -> ApiResult<Response> {
    let township = clerk_township(&staff)?.to_string();
    let case_id = path_case_id(&case_id)?;
    let to = form.to.trim().to_string();
    if to.is_empty() || to.chars().count() > 128 {
        return Err(Problem::validation(vec![FieldError::new("to", "required", "a staff id of 1 to 128 characters")]));
    }
    change_case(&state, &staff, &township, case_id, &headers, None, |case, ctx| {
        case.hand_over(to.clone(), ctx).map_err(case_conflict)
    })
    .await
}

#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CloseForm {
    /// `sms` | `letter` | `in_person`: how the applicant was told.
    pub informed_by: String,
    pub note: Option<String>,
}

/// Close the case (结案) once every lane is final and the applicant was
/// told; the household's lines are released.
#[utoipa::path(
    post, path = "/api/v1/cases/{case_id}/close", tag = "cases",
    params(("case_id" = Uuid, Path), ("If-Match" = Option<String>, Header)),
    request_body = CloseForm,
    responses((status = 200, body = CaseView), (status = 400, body = Problem), (status = 404, body = Problem),
              (status = 409, description = "a lane is not final, or the case is withdrawn or closed", body = Problem),
              (status = 412, body = Problem))
)]
#[tracing::instrument(name = "close case", skip_all, fields(case.id = %case_id))]
pub(super) async fn close_case(
    staff: Staff,
    State(state): State<AppState>,
    Path(case_id): Path<String>,
    headers: HeaderMap,
    ApiJson(form): ApiJson<CloseForm>,
) -> ApiResult<Response> {
    let township = clerk_township(&staff)?.to_string();
    let case_id = path_case_id(&case_id)?;
    let mut errors = Vec::new();
    let informed_by = serde_json::from_value::<case::InformedBy>(serde_json::Value::String(form.informed_by.clone()))
        .map_err(|_| errors.push(FieldError::new("informed_by", "invalid_value", "one of sms, letter, in_person")))
        .ok();
    let note = form.note.as_deref().map(str::trim).filter(|n| !n.is_empty()).map(str::to_string);
    if note.as_ref().is_some_and(|n| n.chars().count() > 500) {
        errors.push(FieldError::new("note", "too_long", "at most 500 characters"));
    }
    let Some(informed_by) = informed_by.filter(|_| errors.is_empty()) else {
        return Err(Problem::validation(errors));
    };
    change_case(&state, &staff, &township, case_id, &headers, None, |case, ctx| {
        case.close(informed_by, note.clone(), ctx).map_err(case_conflict)
    })
    .await
}
