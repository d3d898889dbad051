//! The pages, one module per place of work. Paths are part of the contract
//! (README): `/applications/new`, `/cases`, `/cases/{id}` with its printed
//! documents, `/referrals`, `/operations`, `/audit`.

mod application;
mod assets;
mod audit;
mod cases;
pub use cases::LIVE_WAIT;
mod documents;
mod operations;
mod referrals;

use crate::session::Session;
use crate::{AppState, PageError};
use axum::Router;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use minijinja::{Value, context};
use onedoor_http_kit::Role;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/", get(home))
        .merge(assets::routes())
        .merge(application::routes())
        .merge(cases::routes())
        .merge(documents::routes())
        .merge(referrals::routes())
        .merge(operations::routes())
        .merge(audit::routes())
}

async fn home(session: Session) -> Response {
    Redirect::to(session.person.home()).into_response()
}

/// What every page's frame shows: who is signed in, their navigation, and
/// the CSRF token every form and htmx request carries.
pub fn frame(session: &Session, active: &str) -> Value {
    let p = &session.person;
    context! {
        me => context! {
            sub => p.sub,
            role => p.role.as_str(),
            township => p.township,
            department => p.department.map(|d| d.as_str()),
        },
        csrf => session.csrf,
        active,
    }
}

/// Refuses a page to roles it is not for (the APIs refuse their calls too).
pub fn require(session: &Session, roles: &[Role]) -> Result<(), PageError> {
    if roles.contains(&session.person.role) { Ok(()) } else { Err(PageError::WrongRole) }
}

/// A path segment as an id: a UUID, or the page does not exist.
pub fn uuid_segment(raw: &str) -> Result<uuid::Uuid, PageError> {
    uuid::Uuid::parse_str(raw).map_err(|_| {
        PageError::Api(crate::api::ApiError::Problem { status: 404, code: "not_found".into(), errors: vec![] })
    })
}

/// A submitted form's pairs, once its CSRF token is this session's: every
/// form that changes something goes through here.
pub fn submitted_form(session: &Session, body: &[u8]) -> Result<Vec<(String, String)>, PageError> {
    let pairs = form_pairs(body);
    session.check_csrf(field(&pairs, "csrf"))?;
    Ok(pairs)
}

/// A form as its name/value pairs, repeated names kept (checkbox lists).
pub fn form_pairs(body: &[u8]) -> Vec<(String, String)> {
    form_urlencoded::parse(body).map(|(k, v)| (k.into_owned(), v.into_owned())).collect()
}

/// The first value of `name`, trimmed.
pub fn field<'a>(pairs: &'a [(String, String)], name: &str) -> Option<&'a str> {
    pairs.iter().find(|(k, _)| k == name).map(|(_, v)| v.trim())
}

/// Every value of `name` (checkbox lists).
pub fn all<'a>(pairs: &'a [(String, String)], name: &str) -> Vec<&'a str> {
    pairs.iter().filter(|(k, _)| k == name).map(|(_, v)| v.as_str()).collect()
}
