//! Scanned materials: uploaded at the window, listed and read back.

use super::*;

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(super) struct UploadQuery {
    /// The catalogue code of the material the scan is of.
    material: String,
}

/// A document as the case lists it.
#[derive(Debug, Serialize, ToSchema)]
pub struct DocumentList {
    pub items: Vec<case::CaseDocument>,
}

/// Upload a scan of a material (from a document camera or a scanner): the
/// file is the body, `image/jpeg`, `image/png` or `application/pdf` (checked
/// by its bytes, not its header), at most 20 MB. Nothing is stored unless
/// the whole file arrived and is what it says.
#[utoipa::path(
    post, path = "/api/v1/cases/{case_id}/documents", tag = "documents",
    params(("case_id" = Uuid, Path), UploadQuery),
    request_body(content = Vec<u8>, content_type = "application/pdf"),
    responses((status = 201, body = case::CaseDocument), (status = 400, body = Problem), (status = 404, body = Problem),
              (status = 409, body = Problem), (status = 413, body = Problem), (status = 415, body = Problem))
)]
#[tracing::instrument(name = "upload document", skip_all, fields(case.id = %case_id))]
pub(super) async fn upload_document(
    staff: Staff,
    State(state): State<AppState>,
    Path(case_id): Path<String>,
    ApiQuery(q): ApiQuery<UploadQuery>,
    headers: HeaderMap,
    body: axum::body::Body,
) -> ApiResult<Response> {
    use onedoor_documents::{DocumentType, MAX_DOCUMENT_BYTES};
    let township = clerk_township(&staff)?.to_string();
    let case_id = path_case_id(&case_id)?;
    if !state.policy.catalogue.is_known(&q.material) {
        return Err(Problem::validation(vec![FieldError::new(
            "material",
            "unknown_material",
            "not an item of the materials catalogue",
        )]));
    }
    let declared = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).and_then(DocumentType::from_mime);
    let Some(declared) = declared else {
        return Err(unsupported("declare the file as image/jpeg, image/png or application/pdf"));
    };
    let bytes = axum::body::to_bytes(body, MAX_DOCUMENT_BYTES)
        .await
        .map_err(|_| Problem::new(StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large", "a document is at most 20 MB"))?;
    if DocumentType::sniff(&bytes) != Some(declared) {
        return Err(unsupported("the file's bytes are not the declared type"));
    }
    {
        // The case must exist here and take documents before anything is stored.
        let mut conn = state.pool.acquire().await?;
        let case = case_of_township(&mut conn, &state.keyring, case_id, &township, false).await?;
        case.takes_documents().map_err(case_conflict)?;
    }
    let stored = state.documents.put(bytes).await.map_err(onedoor_http_kit::internal_error)?;
    let document = case::CaseDocument {
        document_id: Uuid::now_v7(),
        material: q.material.clone(),
        sha256: stored.sha256.clone(),
        content_type: declared.mime().to_string(),
        size: stored.size,
        attached_at: Utc::now(),
        attached_by: staff.id().to_string(),
    };
    let recorded = change_case(&state, &staff, &township, case_id, &HeaderMap::new(), None, |case, _| {
        case.attach_document(document.clone()).map_err(case_conflict)
    })
    .await;
    if let Err(problem) = recorded {
        // The record was not kept: neither are the bytes (unless another record names them).
        if let Err(error) = state.documents.forget(&stored).await {
            tracing::error!(%error, "an unrecorded document could not be removed");
        }
        return Err(problem);
    }
    tracing::info!(document.id = %document.document_id, size = document.size, "document attached");
    Ok((StatusCode::CREATED, axum::Json(document)).into_response())
}

fn unsupported(detail: &str) -> Problem {
    Problem::new(StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_document_type", detail)
}

/// The scans uploaded for a case.
#[utoipa::path(
    get, path = "/api/v1/cases/{case_id}/documents", tag = "documents",
    params(("case_id" = Uuid, Path)),
    responses((status = 200, body = DocumentList), (status = 404, body = Problem))
)]
#[tracing::instrument(name = "list documents", skip_all, fields(case.id = %case_id))]
pub(super) async fn list_documents(
    staff: Staff,
    State(state): State<AppState>,
    Path(case_id): Path<String>,
) -> ApiResult<axum::Json<DocumentList>> {
    let township = clerk_township(&staff)?;
    let case_id = path_case_id(&case_id)?;
    let mut conn = state.pool.acquire().await?;
    let case = case_of_township(&mut conn, &state.keyring, case_id, township, false).await?;
    Ok(axum::Json(DocumentList { items: case.documents }))
}

/// One scan's file (every download is audited).
#[utoipa::path(
    get, path = "/api/v1/cases/{case_id}/documents/{document_id}", tag = "documents",
    params(("case_id" = Uuid, Path), ("document_id" = Uuid, Path)),
    responses((status = 200, description = "the file, of the type its bytes were found to be",
               content((String = "image/jpeg"), (String = "image/png"), (String = "application/pdf"))),
              (status = 404, body = Problem),
              (status = 410, description = "erased with the household's personal data", body = Problem))
)]
#[tracing::instrument(name = "download document", skip_all, fields(case.id = %case_id))]
pub(super) async fn download_document(
    staff: Staff,
    State(state): State<AppState>,
    Path((case_id, document_id)): Path<(String, String)>,
) -> ApiResult<Response> {
    let township = clerk_township(&staff)?;
    let case_id = path_case_id(&case_id)?;
    let mut tx = state.pool.begin().await?;
    let case = case_of_township(&mut tx, &state.keyring, case_id, township, false).await?;
    let document = case
        .documents
        .iter()
        .find(|d| d.document_id.to_string() == document_id)
        .ok_or_else(|| Problem::not_found("no such document in this case"))?;
    if let Some(household_id) = case.household_id {
        onedoor_http_kit::access::note_household(household_id);
    }
    tx.commit().await?;
    let bytes =
        state.documents.get(&document.sha256).await.map_err(onedoor_http_kit::internal_error)?.ok_or_else(|| {
            Problem::erased("document_erased", "the scan was erased with the household's personal data")
        })?;
    let id = document.document_id.to_string();
    Ok(onedoor_http_kit::file_response(&document.content_type, onedoor_http_kit::Disposition::Attachment(&id), bytes))
}
