//! Server-side rendering: the templates (embedded in the binary, checked
//! when the workbench starts) and the filters that put codes, amounts, dates
//! and ID numbers into the words of `wording`.

use crate::wording;
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use minijinja::{Environment, Value, context};

/// Every template, by name. `base.html` is the frame of every page;
/// `print.html` the frame of the printed documents (A4).
const TEMPLATES: &[(&str, &str)] = &[
    ("base.html", include_str!("../templates/base.html")),
    ("print.html", include_str!("../templates/print.html")),
    ("macros.html", include_str!("../templates/macros.html")),
    ("message.html", include_str!("../templates/message.html")),
    ("sign_in.html", include_str!("../templates/sign_in.html")),
    ("signed_in.html", include_str!("../templates/signed_in.html")),
    ("application_form.html", include_str!("../templates/application_form.html")),
    ("member_row.html", include_str!("../templates/member_row.html")),
    ("line_fields.html", include_str!("../templates/line_fields.html")),
    ("materials_checklist.html", include_str!("../templates/materials_checklist.html")),
    ("cases.html", include_str!("../templates/cases.html")),
    ("case.html", include_str!("../templates/case.html")),
    ("case_live.html", include_str!("../templates/case_live.html")),
    ("receipt.html", include_str!("../templates/receipt.html")),
    ("notice.html", include_str!("../templates/notice.html")),
    ("letter.html", include_str!("../templates/letter.html")),
    ("referrals.html", include_str!("../templates/referrals.html")),
    ("referral.html", include_str!("../templates/referral.html")),
    ("operations.html", include_str!("../templates/operations.html")),
    ("audit.html", include_str!("../templates/audit.html")),
];

fn environment() -> Environment<'static> {
    let mut env = Environment::new();
    for (name, source) in TEMPLATES {
        env.add_template(name, source).unwrap_or_else(|e| panic!("template {name}: {e:#}"));
    }
    // Any value: codes are strings, but a page may pass a number or nothing.
    env.add_filter("term", |code: Value, kind: String| -> String {
        if code.is_none() || code.is_undefined() {
            return String::new();
        }
        let code = code.as_str().map(str::to_string).unwrap_or_else(|| code.to_string());
        wording::term(&kind, &code).map(str::to_string).unwrap_or(code)
    });
    env.add_filter("yuan", |fen: Option<i64>| fen.map(wording::yuan).unwrap_or_default());
    env.add_filter("yuan_input", |fen: Option<i64>| {
        fen.map(|f| format!("{}.{:02}", f / 100, f % 100)).unwrap_or_default()
    });
    env.add_filter("date_cn", |raw: Option<String>| raw.map(|r| wording::date_cn(&r)).unwrap_or_default());
    env.add_filter("datetime_cn", |raw: Option<String>| raw.map(|r| wording::datetime_cn(&r)).unwrap_or_default());
    env.add_filter("material", |code: String| {
        onedoor_contracts::aid_line::material_name(&code).map(str::to_string).unwrap_or(code)
    });
    env.add_filter("problem", |code: String| wording::message_or_code(&code));
    env.add_function("codes", |kind: String| wording::codes(&kind));
    env.add_function("today_cn", wording::today_cn);
    env
}

/// The templates, compiled once.
pub fn templates() -> &'static Environment<'static> {
    static ENV: std::sync::OnceLock<Environment<'static>> = std::sync::OnceLock::new();
    ENV.get_or_init(environment)
}

/// Renders `name` with `ctx` as a full HTML answer.
pub fn page(name: &str, ctx: Value) -> Response {
    page_with_status(StatusCode::OK, name, ctx)
}

pub fn page_with_status(status: StatusCode, name: &str, ctx: Value) -> Response {
    match templates().get_template(name).and_then(|t| t.render(ctx)) {
        Ok(html) => (status, Html(html)).into_response(),
        Err(error) => {
            tracing::error!(template = name, error = %error, "rendering failed");
            message_page(
                StatusCode::INTERNAL_SERVER_ERROR,
                "页面出错",
                "页面生成失败，请稍后重试；如反复出现，请联系运维人员。",
            )
        }
    }
}

/// A page with one message (errors, refusals), needing no other state.
pub fn message_page(status: StatusCode, title: &str, message: &str) -> Response {
    let html = templates()
        .get_template("message.html")
        .and_then(|t| t.render(context! { title, message }))
        .unwrap_or_else(|_| format!("<!doctype html><title>{title}</title><p>{message}</p>"));
    (status, [(header::CONTENT_TYPE, "text/html; charset=utf-8")], html).into_response()
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_template_compiles() {
        let env = super::environment();
        for (name, _) in super::TEMPLATES {
            env.get_template(name).unwrap();
        }
    }
}
