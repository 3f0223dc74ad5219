//! Everything that can go wrong for a request, and the one mapping from an error to the answer
//! a person (HTML page) or a program (JSON) gets. Public text never carries secrets or tokens;
//! the log line carries the detail.

use crate::config::ConfigError;
use crate::http::Response;
use crate::http::pages::{page, Action};
use crate::http::path::PathError;
use crate::oidc::transaction::CallbackError;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GateError {
    Config(ConfigError),
    /// The provider's metadata or keys are unusable as configured (issuer mismatch, no S256).
    ProviderConfig(String),
    /// The provider cannot be reached and nothing is cached.
    ProviderUnavailable(String),
    AmbiguousPath(PathError),
    NotFound,
    MethodNotAllowed,
    /// The callback has no live login transaction: expired, already used, or another browser.
    LoginNotFound,
    MissingParameter(&'static str),
    Callback(CallbackError),
    /// The provider answered the authorization request with an error.
    ProviderSaidNo {
        error: String,
        description: Option<String>,
    },
    /// The token endpoint refused the code.
    CodeRefused {
        error: String,
        description: Option<String>,
    },
    /// The token endpoint failed (network, 5xx, malformed answer).
    TokenEndpoint(String),
    /// The ID token failed validation.
    IdTokenRejected(String),
    /// A cross-site logout attempt.
    CrossSiteLogout,
    /// Plain http on a public host.
    InsecureTransport,
    /// The upstream (assets or origin) did not answer.
    UpstreamUnavailable,
    /// The return from the provider's logout carries a state this browser did not send.
    LogoutStateMismatch,
    /// Server-side sessions cannot be reached.
    SessionStoreUnavailable(String),
    Internal(String),
}

impl GateError {
    pub fn status(&self) -> u16 {
        match self {
            Self::Config(_) | Self::ProviderConfig(_) | Self::Internal(_) => 500,
            Self::ProviderUnavailable(_) | Self::SessionStoreUnavailable(_) => 503,
            Self::TokenEndpoint(_) | Self::UpstreamUnavailable => 502,
            Self::NotFound => 404,
            Self::MethodNotAllowed => 405,
            Self::ProviderSaidNo { error, .. } if error == "access_denied" => 403,
            Self::ProviderSaidNo { error, .. }
                if error == "temporarily_unavailable" || error == "server_error" =>
            {
                502
            }
            Self::CrossSiteLogout => 403,
            Self::IdTokenRejected(_) => 401,
            _ => 400,
        }
    }

    /// A stable machine-readable code (JSON `error`, log `reason`).
    pub fn code(&self) -> &'static str {
        match self {
            Self::Config(_) => "configuration_error",
            Self::ProviderConfig(_) => "provider_configuration_error",
            Self::ProviderUnavailable(_) => "provider_unavailable",
            Self::AmbiguousPath(_) => "ambiguous_path",
            Self::NotFound => "not_found",
            Self::MethodNotAllowed => "method_not_allowed",
            Self::LoginNotFound => "login_expired",
            Self::MissingParameter(_) => "invalid_request",
            Self::Callback(_) => "invalid_callback",
            Self::ProviderSaidNo { error, .. } if error == "access_denied" => "access_denied",
            Self::ProviderSaidNo { .. } => "provider_error",
            Self::CodeRefused { .. } => "invalid_grant",
            Self::TokenEndpoint(_) => "token_endpoint_error",
            Self::IdTokenRejected(_) => "invalid_id_token",
            Self::CrossSiteLogout => "cross_site_request",
            Self::InsecureTransport => "https_required",
            Self::UpstreamUnavailable => "upstream_unavailable",
            Self::LogoutStateMismatch => "logout_state_mismatch",
            Self::SessionStoreUnavailable(_) => "session_store_unavailable",
            Self::Internal(_) => "internal_error",
        }
    }

    fn title(&self) -> &'static str {
        match self {
            Self::Config(_) | Self::ProviderConfig(_) => "Sign-in is not configured correctly",
            Self::ProviderUnavailable(_)
            | Self::TokenEndpoint(_)
            | Self::SessionStoreUnavailable(_) => "The sign-in service is not reachable",
            Self::LogoutStateMismatch => "Sign-out not recognised",
            Self::ProviderSaidNo { error, .. } if error == "access_denied" => {
                "Sign-in was cancelled"
            }
            Self::NotFound => "Not found",
            Self::UpstreamUnavailable => "The site is not reachable",
            Self::MethodNotAllowed => "Method not allowed",
            Self::Internal(_) => "Something went wrong",
            Self::AmbiguousPath(_) | Self::MissingParameter(_) | Self::InsecureTransport => {
                "Bad request"
            }
            Self::CrossSiteLogout => "Sign-out refused",
            _ => "Sign-in failed",
        }
    }

    /// What the person is told: specific, safe to show.
    pub fn message(&self) -> String {
        match self {
            Self::Config(e) => format!("The setting {} {}. An administrator needs to fix it.", e.variable, e.problem),
            Self::ProviderConfig(why) => format!("The identity provider does not match this gateway's configuration: {why}."),
            Self::ProviderUnavailable(_) => "The identity provider could not be reached and no cached copy of its settings is available. Try again in a minute.".into(),
            Self::AmbiguousPath(_) => "The request path contains encoded slashes, backslashes or malformed escapes.".into(),
            Self::NotFound => "There is nothing at this address.".into(),
            Self::MethodNotAllowed => "This address does not accept that method.".into(),
            Self::LoginNotFound => "This sign-in link has expired or was already used. Start again.".into(),
            Self::MissingParameter(p) => format!("The request is missing the {p} parameter."),
            Self::Callback(e) => format!("The answer from the identity provider does not belong to this sign-in ({e})."),
            Self::ProviderSaidNo { error, .. } if error == "access_denied" => "You did not allow access, so you are not signed in.".into(),
            Self::ProviderSaidNo { error, description } => match description {
                Some(d) => format!("The identity provider reported {error}: {d}"),
                None => format!("The identity provider reported {error}."),
            },
            Self::CodeRefused { error, .. } => format!("The identity provider refused to complete the sign-in ({error}). The sign-in may have been used already; start again."),
            Self::TokenEndpoint(_) => "The identity provider did not complete the sign-in. Try again in a minute.".into(),
            Self::IdTokenRejected(why) => format!("The identity token from the provider is not valid: {why}."),
            Self::CrossSiteLogout => "Sign-out must come from this site.".into(),
            Self::InsecureTransport => "This site is only served over https.".into(),
            Self::UpstreamUnavailable => "You are signed in, but the site behind this gateway did not answer. Try again in a minute.".into(),
            Self::LogoutStateMismatch => "This sign-out confirmation does not belong to a sign-out started in this browser. Your session on this site has ended either way.".into(),
            Self::SessionStoreUnavailable(_) => "Sessions cannot be checked right now. Try again in a minute.".into(),
            Self::Internal(_) => "An unexpected error occurred. Try again.".into(),
        }
    }

    /// The detail for the log line (may be more than the person sees; never secrets).
    pub fn log_detail(&self) -> String {
        match self {
            Self::Config(e) => e.to_string(),
            Self::ProviderConfig(s)
            | Self::ProviderUnavailable(s)
            | Self::TokenEndpoint(s)
            | Self::IdTokenRejected(s)
            | Self::SessionStoreUnavailable(s)
            | Self::Internal(s) => s.clone(),
            Self::AmbiguousPath(e) => format!("{e:?}"),
            Self::Callback(e) => e.to_string(),
            Self::ProviderSaidNo { error, description }
            | Self::CodeRefused { error, description } => {
                format!("{error}: {}", description.as_deref().unwrap_or(""))
            }
            Self::MissingParameter(p) => format!("missing {p}"),
            _ => self.code().to_owned(),
        }
    }

    fn offers_retry(&self) -> bool {
        matches!(
            self,
            Self::LoginNotFound
                | Self::Callback(_)
                | Self::ProviderSaidNo { .. }
                | Self::CodeRefused { .. }
                | Self::TokenEndpoint(_)
                | Self::IdTokenRejected(_)
                | Self::MissingParameter(_)
        )
    }

    /// The answer: a page for browsers, JSON for everything else.
    pub fn to_response(&self, wants_html: bool, login_href: &str) -> Response {
        if wants_html {
            let message = self.message();
            let retry = [Action::Link {
                href: login_href,
                label: "Sign in again",
            }];
            page(
                self.status(),
                self.title(),
                &[&message],
                if self.offers_retry() { &retry } else { &[] },
            )
        } else {
            Response::json(
                self.status(),
                &serde_json::json!({ "error": self.code(), "error_description": self.message() }),
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn access_denied_is_a_normal_403_not_a_500() {
        let e = GateError::ProviderSaidNo {
            error: "access_denied".into(),
            description: None,
        };
        assert_eq!(e.status(), 403);
        let r = e.to_response(true, "/auth/login");
        assert!(r.body_text().contains("Sign-in was cancelled"));
        assert!(r.body_text().contains("/auth/login"));
    }

    #[test]
    fn config_errors_name_the_variable() {
        let e = GateError::Config(ConfigError {
            variable: "COOKIE_SECRET",
            problem: "is not set".into(),
        });
        let r = e.to_response(false, "/auth/login");
        assert_eq!(r.status, 500);
        let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
        assert_eq!(v["error"], "configuration_error");
        assert!(v["error_description"]
            .as_str()
            .unwrap()
            .contains("COOKIE_SECRET"));
    }

    #[test]
    fn provider_text_is_escaped_in_pages() {
        let e = GateError::ProviderSaidNo {
            error: "invalid_scope".into(),
            description: Some("<script>alert(1)</script>".into()),
        };
        assert!(!e
            .to_response(true, "/auth/login")
            .body_text()
            .contains("<script>"));
    }

    #[test]
    fn client_mistakes_are_4xx() {
        for e in [
            GateError::LoginNotFound,
            GateError::MissingParameter("state"),
            GateError::Callback(CallbackError::StateMismatch),
            GateError::CodeRefused {
                error: "invalid_grant".into(),
                description: None,
            },
            GateError::IdTokenRejected("x".into()),
            GateError::AmbiguousPath(PathError::EncodedSeparator),
        ] {
            assert!((400..500).contains(&e.status()), "{e:?}");
        }
    }
}
