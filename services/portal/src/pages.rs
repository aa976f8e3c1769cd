//! The HTML pages (askama templates in `templates/`), the layout every page shares, and the
//! error page type handlers return.

use actix_web::http::StatusCode;
use actix_web::http::header::ContentType;
use actix_web::{HttpResponse, ResponseError};
use askama::Template;

use crate::session::SessionUser;

/// What the layout shows.
pub(crate) struct Layout {
    pub title: String,
    pub institution: String,
    pub user_name: Option<String>,
    pub is_admin: bool,
    pub csrf: String,
}

impl Layout {
    pub(crate) fn new(
        title: &str,
        institution: &str,
        user: Option<&SessionUser>,
        csrf: String,
    ) -> Self {
        Self {
            title: title.to_owned(),
            institution: institution.to_owned(),
            user_name: user.map(SessionUser::display_name),
            is_admin: user.is_some_and(|u| u.admin),
            csrf,
        }
    }
}

#[derive(Template)]
#[template(path = "error.html")]
pub(crate) struct ErrorPage {
    pub layout: Layout,
    pub heading: String,
    pub message: String,
    pub code: &'static str,
    pub retry_href: Option<&'static str>,
    pub retry_label: &'static str,
}

#[derive(Template)]
#[template(path = "signin.html")]
pub(crate) struct SigninPage {
    pub layout: Layout,
    pub method: &'static str,
}

#[derive(Template)]
#[template(path = "connect.html")]
pub(crate) struct ConnectPage {
    pub layout: Layout,
    pub what: String,
    pub why: String,
    pub how: String,
    /// (scope, words).
    pub scopes: Vec<(String, String)>,
    pub already_connected: bool,
}

#[derive(Template)]
#[template(path = "deny.html")]
pub(crate) struct DenyPage {
    pub layout: Layout,
}

pub(crate) struct ConnectionView {
    pub uri: String,
    pub state: String,
    pub status_label: String,
    pub status_class: &'static str,
    pub active: bool,
    pub name: Option<String>,
    pub scopes: Vec<(String, String)>,
    pub granted_at: Option<String>,
}

pub(crate) struct ItemRow {
    pub id: String,
    pub section: String,
    pub state: String,
    pub label: String,
    pub status_class: &'static str,
    pub updated: String,
}

#[derive(Template)]
#[template(path = "me.html")]
pub(crate) struct MePage {
    pub layout: Layout,
    pub connection: Option<ConnectionView>,
    pub just_connected: bool,
    pub just_disconnected: bool,
    pub status_note: Option<String>,
    pub items: Vec<ItemRow>,
    pub items_note: Option<String>,
}

#[derive(Template)]
#[template(path = "disconnect.html")]
pub(crate) struct DisconnectPage {
    pub layout: Layout,
    pub uri: String,
}

pub(crate) struct AdminRow {
    pub person_id: String,
    pub name: String,
    pub uri: String,
    pub state: String,
    pub status_class: &'static str,
    pub scopes: String,
    pub granted_at: String,
}

#[derive(Template)]
#[template(path = "admin.html")]
pub(crate) struct AdminPage {
    pub layout: Layout,
    pub query: String,
    pub rows: Vec<AdminRow>,
    pub total: usize,
    pub chart: String,
    pub writes_chart: Option<String>,
    pub items_note: Option<String>,
}

/// Renders `page` as a `status` answer.
pub(crate) fn render<T: Template>(status: StatusCode, page: &T) -> HttpResponse {
    match page.render() {
        Ok(body) => HttpResponse::build(status)
            .content_type(ContentType::html())
            .body(body),
        Err(e) => {
            tracing::error!(error = %e, "a page template failed to render");
            HttpResponse::InternalServerError()
                .content_type(ContentType::plaintext())
                .body("The page could not be shown. Please try again later.")
        }
    }
}

/// An error answered as a page.
#[derive(Debug)]
pub(crate) struct PageError {
    status: StatusCode,
    body: String,
}

impl std::fmt::Display for PageError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "page error {}", self.status)
    }
}

impl ResponseError for PageError {
    fn status_code(&self) -> StatusCode {
        self.status
    }
    fn error_response(&self) -> HttpResponse {
        HttpResponse::build(self.status)
            .content_type(ContentType::html())
            .body(self.body.clone())
    }
}

impl PageError {
    pub(crate) fn from_page(status: StatusCode, page: &ErrorPage) -> Self {
        let body = page.render().unwrap_or_else(|e| {
            tracing::error!(error = %e, "the error page failed to render");
            "<!DOCTYPE html><title>Error</title><p>Something went wrong.</p>".to_owned()
        });
        Self { status, body }
    }
}

/// ORCID's words for a scope (as its consent page puts them).
pub(crate) fn scope_words(scope: &str) -> String {
    match scope {
        "/read-limited" => "Read your information with visibility set to Trusted Parties",
        "/activities/update" => {
            "Add or update your research activities (works, affiliations, funding)"
        }
        "/person/update" => "Add or update your biographical information",
        "/authenticate" | "openid" => "Get your ORCID iD",
        other => other,
    }
    .to_owned()
}

pub(crate) struct ParkedRow {
    pub id: String,
    pub message_type: String,
    pub reason: String,
    pub parked_at: String,
    pub attempts: u32,
}

pub(crate) struct ParkedService {
    pub name: String,
    pub error: Option<String>,
    pub messages: Vec<ParkedRow>,
}

pub(crate) struct FailedItemRow {
    pub id: String,
    pub person_id: String,
    pub section: String,
    pub attempts: i64,
    pub updated: String,
}

#[derive(Template)]
#[template(path = "failures.html")]
pub(crate) struct FailuresPage {
    pub layout: Layout,
    pub replayed: Option<usize>,
    pub services: Vec<ParkedService>,
    pub failed_items: Vec<FailedItemRow>,
    pub items_note: Option<String>,
}

#[derive(Template)]
#[template(path = "item.html")]
pub(crate) struct ItemPageView {
    pub layout: Layout,
    pub item: crate::items::Item,
    pub put_code: String,
    /// (when, action, outcome, status, message).
    pub attempts: Vec<(String, String, String, String, String)>,
}

pub(crate) struct AdminItemRow {
    pub id: String,
    pub person_id: String,
    pub section: String,
    pub state: String,
    pub put_code: String,
    pub updated: String,
}

#[derive(Template)]
#[template(path = "admin_items.html")]
pub(crate) struct AdminItemsPage {
    pub layout: Layout,
    pub person_id: String,
    pub state: String,
    pub items: Vec<AdminItemRow>,
    pub next_after: Option<String>,
    pub note: Option<String>,
}

pub(crate) struct InvitationRow {
    pub person_id: String,
    pub name: String,
    pub email: String,
    pub state: String,
    pub sent: u32,
    pub reminders: u32,
    pub last_sent: String,
    pub next_reminder: String,
    pub last_error: String,
    /// Not for a person who already connected.
    pub resendable: bool,
    /// `/admin/invitations/{person_id}/resend`, the id percent-encoded.
    pub resend_href: String,
}

#[derive(Template)]
#[template(path = "admin_invitations.html")]
pub(crate) struct InvitationsPage {
    pub layout: Layout,
    pub state: String,
    pub person_id: String,
    pub states: Vec<String>,
    /// (state, count) over every invitation.
    pub counts: Vec<(String, u64)>,
    pub rows: Vec<InvitationRow>,
    /// The writer has invitations turned off.
    pub disabled: bool,
    pub note: Option<String>,
    pub notice: Option<crate::routes::invitations::Notice>,
    pub next_href: Option<String>,
    pub previous_href: Option<String>,
}
