//! What every handler shares, and the helpers that turn a request into a page: the
//! signed-in user, the layout, the error pages.

use std::sync::Arc;

use actix_session::Session;
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse};
use bus::outbox::Outbox;
use idbridge_crypto::VaultPublicKey;
use orcid::OrcidId;
use orcid::client::{OrcidClient, Scopes};
use sea_orm::DatabaseConnection;
use token_vault::client::VaultClient;
use tokio::sync::Notify;

use crate::config::{PortalConfig, SigninMethod};
use crate::csrf;
use crate::items::{InvitationsSource, ItemsSource};
use crate::pages::{ErrorPage, Layout, PageError};
use crate::session::{self, SessionUser};
use crate::signin;

/// How long a hand-off key fetched from the vault is used before asking again.
pub(crate) const HANDOFF_KEY_TTL: std::time::Duration = std::time::Duration::from_secs(300);

/// A hand-off key: id, key, and when it was fetched (`None`: configured).
pub(crate) type CachedKey = (String, VaultPublicKey, Option<std::time::Instant>);

/// Shared by every handler.
pub(crate) struct AppState {
    pub config: PortalConfig,
    pub orcid: OrcidClient,
    pub vault: VaultClient,
    /// The configured hand-off key (kept for good), else the vault's answer and when it was
    /// fetched (asked again after [`HANDOFF_KEY_TTL`], so a vault hand-off key rotation
    /// reaches the portal without a restart).
    pub handoff: tokio::sync::Mutex<Option<CachedKey>>,
    pub db: DatabaseConnection,
    pub outbox: Outbox,
    pub bus: bus::Bus,
    pub waker: Arc<Notify>,
    pub items: Option<Arc<dyn ItemsSource>>,
    pub invitations: Option<Arc<dyn InvitationsSource>>,
    pub oidc: Option<signin::oidc::OidcClient>,
    pub scopes: Scopes,
    pub redirect_uri: String,
    pub registry_origin: String,
}

impl AppState {
    pub(crate) fn institution(&self) -> &str {
        &self.config.portal.institution.name
    }

    pub(crate) fn layout(
        &self,
        title: &str,
        session: &Session,
        user: Option<&SessionUser>,
    ) -> Layout {
        Layout::new(title, self.institution(), user, csrf::token(session))
    }

    /// The iD's display URI on the configured registry.
    pub(crate) fn orcid_uri(&self, orcid: &OrcidId) -> String {
        orcid.uri_on(&self.registry_origin)
    }

    /// An error page.
    pub(crate) fn error(
        &self,
        session: &Session,
        user: Option<&SessionUser>,
        status: StatusCode,
        code: &'static str,
        heading: &str,
        message: &str,
    ) -> PageError {
        self.error_with_retry(session, user, status, code, heading, message, None)
    }

    /// An error page with a link to try again.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn error_with_retry(
        &self,
        session: &Session,
        user: Option<&SessionUser>,
        status: StatusCode,
        code: &'static str,
        heading: &str,
        message: &str,
        retry: Option<(&'static str, &'static str)>,
    ) -> PageError {
        let page = ErrorPage {
            layout: self.layout(heading, session, user),
            heading: heading.to_owned(),
            message: message.to_owned(),
            code,
            retry_href: retry.map(|r| r.0),
            retry_label: retry.map_or("", |r| r.1),
        };
        PageError::from_page(status, &page)
    }

    /// The signed-in user; with header sign-in, a request from a trusted proxy signs in on
    /// the way. `None`: the caller redirects to the sign-in page.
    pub(crate) fn current_user(
        &self,
        req: &HttpRequest,
        session: &Session,
    ) -> Result<Option<SessionUser>, PageError> {
        let user = session::user(session, self.config.portal.session_ttl_secs);
        if self.config.portal.signin.method == SigninMethod::Header {
            // The proxy speaks for every request: a different person behind the same
            // browser (or a new sign-in at the proxy) replaces the session.
            let asserted = signin::header::asserted_person_id(self, req);
            return match (user, asserted) {
                (Some(user), Some(person)) if person == user.person_id => Ok(Some(user)),
                (Some(user), None) => Ok(Some(user)),
                _ => signin::header::sign_in_from_headers(self, req, session),
            };
        }
        Ok(user)
    }

    /// Whether a person id is in the configured administrators.
    pub(crate) fn configured_admin(&self, person_id: &str) -> bool {
        self.config.portal.admins.iter().any(|a| a == person_id)
    }
}

/// 303 to `location`.
pub(crate) fn see_other(location: &str) -> HttpResponse {
    HttpResponse::SeeOther()
        .insert_header((actix_web::http::header::LOCATION, location))
        .finish()
}
