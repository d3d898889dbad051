//! Writing the trail: one entry per request of a member of staff.

use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use onedoor_http_kit::Problem;
use onedoor_http_kit::access::{self, Access};
use sqlx::{PgPool, Postgres, Transaction};
use std::sync::{Arc, Mutex};
use tokio::sync::{mpsc, oneshot};
use uuid::Uuid;

/// One entry of the trail, as written.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Entry {
    pub actor: String,
    pub role: String,
    /// `METHOD /route/{template}`, with `?name&name` of the query's parameters.
    pub action: String,
    /// The HTTP status the request was answered with.
    pub outcome: u16,
    pub case_id: Option<Uuid>,
    pub referral_id: Option<Uuid>,
    pub household_id: Option<Uuid>,
    pub document_id: Option<Uuid>,
    pub purpose: Option<String>,
    pub trace_id: Option<String>,
}

impl Entry {
    /// The entry of a request: `action` and the ids its path names (`asked`,
    /// which come first), with what its handler noted; `None` if no member of
    /// staff asked.
    fn of(action: String, asked: &Access, noted: Access, outcome: u16) -> Option<Entry> {
        let (actor, role) = noted.actor?;
        Some(Entry {
            actor,
            role: role.as_str().to_string(),
            action,
            outcome,
            case_id: asked.case_id.or(noted.case_id),
            referral_id: asked.referral_id.or(noted.referral_id),
            household_id: asked.household_id.or(noted.household_id),
            document_id: asked.document_id.or(noted.document_id),
            purpose: noted.purpose,
            trace_id: onedoor_telemetry::propagation::TraceHeaders::current().trace_id(),
        })
    }
}

/// Appends entries (unsealed; the sealer chains them), in one statement.
async fn insert(conn: impl sqlx::PgExecutor<'_>, entries: &[Entry]) -> Result<(), sqlx::Error> {
    let text = |f: fn(&Entry) -> Option<String>| entries.iter().map(f).collect::<Vec<_>>();
    let ids = |f: fn(&Entry) -> Option<Uuid>| entries.iter().map(f).collect::<Vec<_>>();
    sqlx::query(
        "INSERT INTO audit_trail (actor, role, action, outcome, case_id, referral_id, household_id, document_id, \
         purpose, trace_id) \
         SELECT actor, role, action, outcome, case_id, referral_id, household_id, document_id, purpose, trace_id \
           FROM unnest($1::text[], $2::text[], $3::text[], $4::smallint[], $5::uuid[], $6::uuid[], $7::uuid[], \
                       $8::uuid[], $9::text[], $10::text[]) WITH ORDINALITY \
                AS e(actor, role, action, outcome, case_id, referral_id, household_id, document_id, purpose, \
                     trace_id, n) \
          ORDER BY n",
    )
    .bind(text(|e| Some(e.actor.clone())))
    .bind(text(|e| Some(e.role.clone())))
    .bind(text(|e| Some(e.action.clone())))
    .bind(entries.iter().map(|e| e.outcome as i16).collect::<Vec<_>>())
    .bind(ids(|e| e.case_id))
    .bind(ids(|e| e.referral_id))
    .bind(ids(|e| e.household_id))
    .bind(ids(|e| e.document_id))
    .bind(text(|e| e.purpose.clone()))
    .bind(text(|e| e.trace_id.clone()))
    .execute(conn)
    .await?;
    Ok(())
}

/// The request being handled, as [`record_access`] names it for the trail,
/// and the outcome its handler already wrote ([`commit_with_entry`]).
#[derive(Default)]
struct Asked {
    action: String,
    ids: Access,
    written: Option<u16>,
}

tokio::task_local! {
    static ASKED: Arc<Mutex<Asked>>;
}

/// Commits a command's transaction with the request's trail entry in it,
/// answered with `outcome`: the entry is written if and only if the change
/// is, and the command waits for one commit instead of two (its own, then
/// the trail's). [`record_access`] then writes no second entry, unless the
/// request is answered otherwise after all. Outside a request of a member of
/// staff it only commits.
pub async fn commit_with_entry(
    mut tx: Transaction<'_, Postgres>,
    outcome: axum::http::StatusCode,
) -> Result<(), sqlx::Error> {
    let outcome = outcome.as_u16();
    let asked = ASKED.try_with(|a| a.lock().ok().map(|a| (a.action.clone(), a.ids.clone()))).ok().flatten();
    let entry = asked.zip(access::current()).and_then(|((action, ids), noted)| Entry::of(action, &ids, noted, outcome));
    if let Some(entry) = &entry {
        insert(&mut *tx, std::slice::from_ref(entry)).await?;
    }
    tx.commit().await?;
    if entry.is_some() {
        let _ = ASKED.try_with(|a| {
            if let Ok(mut a) = a.lock() {
                a.written = Some(outcome);
            }
        });
    }
    Ok(())
}

/// Writes the entries of every request of the service, several per commit:
/// while one batch commits the next gathers (group commit), so a busy
/// service adds far fewer commits than requests and a quiet one waits for
/// none. Each caller learns whether its own entry was written.
#[derive(Clone)]
pub struct Recorder {
    queue: mpsc::Sender<(Entry, oneshot::Sender<bool>)>,
}

/// The most entries written in one statement.
const BATCH: usize = 500;

impl Recorder {
    /// Starts the writer on `pool`; it ends once every recorder is dropped.
    pub fn start(pool: PgPool) -> Self {
        let (queue, mut waiting) = mpsc::channel::<(Entry, oneshot::Sender<bool>)>(4 * BATCH);
        tokio::spawn(async move {
            let mut batch = Vec::with_capacity(BATCH);
            while waiting.recv_many(&mut batch, BATCH).await > 0 {
                let (entries, callers): (Vec<Entry>, Vec<_>) = batch.drain(..).unzip();
                let written = match insert(&pool, &entries).await {
                    Ok(()) => true,
                    Err(error) => {
                        tracing::error!(%error, entries = entries.len(), "audit entries not written");
                        false
                    }
                };
                for caller in callers {
                    let _ = caller.send(written);
                }
            }
        });
        Self { queue }
    }

    /// Writes `entry`; `false` if it could not be.
    pub async fn record(&self, entry: Entry) -> bool {
        let (done, written) = oneshot::channel();
        self.queue.send((entry, done)).await.is_ok() && written.await.unwrap_or(false)
    }
}

/// Middleware (with the service's [`Recorder`] as state) recording every request
/// under `/api/v1/` that names a member of staff. A read whose entry cannot
/// be written is refused (503): nothing is shown that the trail does not
/// show; so is a disclosure asked with a stated purpose (unmasking ID
/// numbers is a POST). A command's entry that cannot be written is logged;
/// the command itself stands, and its events name who gave it.
pub async fn record_access(State(recorder): State<Recorder>, request: Request, next: Next) -> Response {
    let Some(template) = request.extensions().get::<MatchedPath>().map(|p| p.as_str().to_owned()) else {
        return next.run(request).await;
    };
    if !template.starts_with("/api/v1/") {
        return next.run(request).await;
    }
    let method = request.method().clone();
    let asked = Asked {
        action: action(method.as_str(), &template, request.uri().query()),
        ids: ids_in_path(&template, request.uri().path()),
        written: None,
    };
    let asked = Arc::new(Mutex::new(asked));
    let (response, noted) = ASKED.scope(asked.clone(), access::noted(next.run(request))).await;
    let Asked { action, ids, written } =
        asked.lock().map(|mut a| std::mem::take(&mut *a)).unwrap_or_else(|p| std::mem::take(&mut *p.into_inner()));
    if written == Some(response.status().as_u16()) {
        return response;
    }
    let Some(entry) = Entry::of(action, &ids, noted, response.status().as_u16()) else {
        return response;
    };
    // A request the service could not serve (its database away, say) is
    // answered without waiting a second time for a connection.
    let (action, disclosure) = (entry.action.clone(), entry.purpose.is_some());
    let written = if response.status().is_server_error() {
        tokio::time::timeout(FAILED_REQUEST_BUDGET, recorder.record(entry)).await.unwrap_or(false)
    } else {
        recorder.record(entry).await
    };
    if written {
        response
    } else if (method.is_safe() || disclosure) && response.status().is_success() {
        tracing::error!(%action, "audit entry not written; the read is refused");
        Problem::new(
            axum::http::StatusCode::SERVICE_UNAVAILABLE,
            "audit_unavailable",
            "the access could not be recorded; retry shortly",
        )
        .into_response()
    } else {
        tracing::error!(%action, "audit entry not written");
        response
    }
}

/// How long the entry of a request that failed on the server may take.
const FAILED_REQUEST_BUDGET: std::time::Duration = std::time::Duration::from_secs(1);

/// The action as recorded: the route template and the names of the query's
/// parameters (a search by ID number shows as `?id_number`, never the number).
fn action(method: &str, template: &str, query: Option<&str>) -> String {
    let mut names: Vec<&str> = query
        .unwrap_or("")
        .split('&')
        .filter_map(|pair| pair.split('=').next())
        .filter(|name| !name.is_empty())
        .collect();
    names.sort_unstable();
    names.dedup();
    if names.is_empty() { format!("{method} {template}") } else { format!("{method} {template}?{}", names.join("&")) }
}

/// The records a path names, by the template's parameter names.
fn ids_in_path(template: &str, path: &str) -> Access {
    let mut ids = Access::default();
    for (name, value) in template.split('/').zip(path.split('/')) {
        let Some(name) = name.strip_prefix('{').and_then(|n| n.strip_suffix('}')) else { continue };
        let Ok(id) = Uuid::parse_str(value) else { continue };
        match name {
            "case_id" => ids.case_id = Some(id),
            "referral_id" => ids.referral_id = Some(id),
            "household_id" => ids.household_id = Some(id),
            "document_id" => ids.document_id = Some(id),
            _ => {}
        }
    }
    ids
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_action_names_the_route_and_the_query_parameters_but_not_their_values() {
        assert_eq!(action("GET", "/api/v1/cases", None), "GET /api/v1/cases");
        assert_eq!(
            action("GET", "/api/v1/cases", Some("status=decided&id_number=110105194912310021&limit=5")),
            "GET /api/v1/cases?id_number&limit&status"
        );
    }

    #[test]
    fn ids_come_from_the_path_by_their_parameter_names() {
        let case = Uuid::now_v7();
        let document = Uuid::now_v7();
        let ids = ids_in_path(
            "/api/v1/cases/{case_id}/documents/{document_id}",
            &format!("/api/v1/cases/{case}/documents/{document}"),
        );
        assert_eq!((ids.case_id, ids.document_id, ids.referral_id), (Some(case), Some(document), None));
        assert_eq!(ids_in_path("/api/v1/referrals/{referral_id}", "/api/v1/referrals/not-a-uuid").referral_id, None);
    }
}
