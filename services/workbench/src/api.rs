//! The five REST APIs, called server-side with the signed-in person's token,
//! exactly as any other client calls them: the workbench has no database
//! and no side door. Each call carries the request's trace context, so an
//! operator follows a click at the window into the services it reached.

use onedoor_contracts::Department;
use onedoor_contracts::aid_line;
use reqwest::Method;
use serde::Deserialize;
use serde_json::Value;
use std::collections::BTreeMap;
use std::time::Duration;

/// What a conditional read ([`Api::watch`]) found.
#[derive(Debug, Clone)]
pub enum Watched {
    /// The resource as it is now, and its ETag (if the API gave one).
    Changed { body: Value, etag: Option<String> },
    /// Still what the caller's ETag names (the API answered 304).
    Unchanged,
}

/// Where each API is.
#[derive(Debug, Clone)]
pub struct Api {
    http: reqwest::Client,
    intake: String,
    departments: BTreeMap<Department, String>,
}

/// Which API a call goes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    Intake,
    Department(Department),
}

impl Target {
    /// Intake and every department, in the table's order.
    pub fn all() -> Vec<Target> {
        std::iter::once(Target::Intake).chain(Department::ALL.into_iter().map(Target::Department)).collect()
    }

    pub fn service(self) -> &'static str {
        match self {
            Target::Intake => aid_line::INTAKE_SERVICE.service,
            Target::Department(d) => d.line().service,
        }
    }
}

/// One invalid field of a validation answer.
#[derive(Debug, Clone, Deserialize, serde::Serialize)]
pub struct FieldProblem {
    pub field: String,
    pub code: String,
    #[serde(default)]
    pub message: String,
}

/// An answer that was not a success.
#[derive(Debug, Clone)]
pub enum ApiError {
    /// A problem+json answer.
    Problem { status: u16, code: String, errors: Vec<FieldProblem> },
    /// The API could not be reached or answered something unreadable.
    Unreachable,
}

impl ApiError {
    pub fn status(&self) -> u16 {
        match self {
            Self::Problem { status, .. } => *status,
            Self::Unreachable => 502,
        }
    }

    pub fn code(&self) -> &str {
        match self {
            Self::Problem { code, .. } => code,
            Self::Unreachable => "service_unavailable",
        }
    }

    pub fn errors(&self) -> &[FieldProblem] {
        match self {
            Self::Problem { errors, .. } => errors,
            Self::Unreachable => &[],
        }
    }
}

#[derive(Deserialize)]
struct ProblemBody {
    code: String,
    #[serde(default)]
    errors: Vec<FieldProblem>,
}

impl Api {
    /// `urls` maps each service name of the table of aid lines to its base URL.
    pub fn new(urls: &BTreeMap<String, String>) -> anyhow::Result<Self> {
        let url = |service: &str| {
            urls.get(service).cloned().ok_or_else(|| anyhow::anyhow!("no URL configured for {service}"))
        };
        let mut departments = BTreeMap::new();
        for d in Department::ALL {
            departments.insert(d, url(d.line().service)?);
        }
        let http = reqwest::Client::builder().build()?;
        Ok(Self { http, intake: url(aid_line::INTAKE_SERVICE.service)?, departments })
    }

    pub fn base(&self, target: Target) -> &str {
        match target {
            Target::Intake => &self.intake,
            Target::Department(d) => &self.departments[&d],
        }
    }

    pub async fn get(&self, target: Target, path: &str, token: &str) -> Result<Value, ApiError> {
        self.call(Method::GET, target, path, token, None, &[]).await
    }

    pub async fn post(&self, target: Target, path: &str, token: &str, body: &Value) -> Result<Value, ApiError> {
        self.call(Method::POST, target, path, token, Some(body), &[]).await
    }

    /// A read that, given the ETag the caller holds, waits up to `wait` for
    /// the resource to change (`If-None-Match` with RFC 7240's `Prefer:
    /// wait`, which intake's case view honours): the answer comes as soon as
    /// it changes. Without an ETag it reads at once.
    pub async fn watch(
        &self,
        target: Target,
        path: &str,
        token: &str,
        etag: Option<&str>,
        wait: Duration,
    ) -> Result<Watched, ApiError> {
        let prefer = format!("wait={}", wait.as_secs());
        let headers: Vec<(&str, &str)> = match etag {
            Some(etag) => vec![("if-none-match", etag), ("prefer", &prefer)],
            None => vec![],
        };
        let answer = self.send(Method::GET, target, path, token, Payload::Empty, &headers, wait).await?;
        if answer.not_modified {
            return Ok(Watched::Unchanged);
        }
        let body = serde_json::from_slice(&answer.body).map_err(|_| ApiError::Unreachable)?;
        Ok(Watched::Changed { body, etag: answer.etag })
    }

    /// One call; `headers` adds e.g. `Idempotency-Key`.
    pub async fn call(
        &self,
        method: Method,
        target: Target,
        path: &str,
        token: &str,
        body: Option<&Value>,
        headers: &[(&str, &str)],
    ) -> Result<Value, ApiError> {
        let payload = body.map_or(Payload::Empty, Payload::Json);
        let answer = self.send(method, target, path, token, payload, headers, Duration::ZERO).await?;
        if answer.body.is_empty() {
            return Ok(Value::Null);
        }
        serde_json::from_slice(&answer.body).map_err(|_| ApiError::Unreachable)
    }

    /// Uploads a file as the request body (a scan); the answer is JSON.
    pub async fn upload(
        &self,
        target: Target,
        path: &str,
        token: &str,
        content_type: &str,
        file: bytes::Bytes,
    ) -> Result<Value, ApiError> {
        let payload = Payload::File(content_type, file);
        let answer = self.send(Method::POST, target, path, token, payload, &[], Duration::ZERO).await?;
        serde_json::from_slice(&answer.body).map_err(|_| ApiError::Unreachable)
    }

    /// A file (a scan) and its content type.
    pub async fn file(&self, target: Target, path: &str, token: &str) -> Result<(String, bytes::Bytes), ApiError> {
        let answer = self.send(Method::GET, target, path, token, Payload::Empty, &[], Duration::ZERO).await?;
        Ok((answer.content_type.unwrap_or_else(|| "application/octet-stream".into()), answer.body))
    }

    /// One request; `waits` is how long the API may hold it on purpose
    /// (added to the client's timeout).
    #[allow(clippy::too_many_arguments)]
    async fn send(
        &self,
        method: Method,
        target: Target,
        path: &str,
        token: &str,
        payload: Payload<'_>,
        headers: &[(&str, &str)],
        waits: Duration,
    ) -> Result<Answer, ApiError> {
        let mut request = self
            .http
            .request(method, format!("{}{path}", self.base(target)))
            .bearer_auth(token)
            .timeout(TIMEOUT + waits);
        let mut trace = reqwest::header::HeaderMap::new();
        onedoor_telemetry::propagation::inject_http(&mut trace);
        request = request.headers(trace);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        request = match payload {
            Payload::Empty => request,
            Payload::Json(body) => request.json(body),
            Payload::File(content_type, file) => request.header("content-type", content_type).body(file),
        };
        let response = request.send().await.map_err(|error| {
            tracing::warn!(service = target.service(), error = %error, "API unreachable");
            ApiError::Unreachable
        })?;
        let status = response.status();
        let header = |name: &str| response.headers().get(name).and_then(|v| v.to_str().ok()).map(str::to_string);
        let (content_type, etag) = (header("content-type"), header("etag"));
        let bytes = response.bytes().await.map_err(|_| ApiError::Unreachable)?;
        let not_modified = status == reqwest::StatusCode::NOT_MODIFIED;
        if status.is_success() || not_modified {
            return Ok(Answer { content_type, etag, body: bytes, not_modified });
        }
        match serde_json::from_slice::<ProblemBody>(&bytes) {
            Ok(p) => Err(ApiError::Problem { status: status.as_u16(), code: p.code, errors: p.errors }),
            Err(_) => {
                Err(ApiError::Problem { status: status.as_u16(), code: generic_code(status.as_u16()), errors: vec![] })
            }
        }
    }
}

/// How long a call may take, besides a wait it asked for.
const TIMEOUT: Duration = Duration::from_secs(15);

/// A successful answer (or a 304 to a conditional read).
struct Answer {
    content_type: Option<String>,
    etag: Option<String>,
    body: bytes::Bytes,
    not_modified: bool,
}

/// What a call sends.
enum Payload<'a> {
    Empty,
    Json(&'a Value),
    File(&'a str, bytes::Bytes),
}

/// The code of an answer without a body (a proxy's 502, say).
fn generic_code(status: u16) -> String {
    match status {
        401 => "unauthorized",
        403 => "forbidden",
        404 => "not_found",
        502..=504 => "service_unavailable",
        _ => "internal_error",
    }
    .to_string()
}
