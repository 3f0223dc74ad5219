//! Everything that can go wrong for a request, and the one mapping from an error to the answer
//! a person (HTML page), a program (JSON) or an API client (RFC 6750 challenge) gets. Public
//! text never carries secrets or tokens; the log line carries the detail.

use crate::config::ConfigError;
use crate::http::pages::{page, Action};
use crate::http::path::PathError;
use crate::http::Response;
use crate::oidc::transaction::CallbackError;
use serde_json::json;

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
    /// The request URL is not in the canonical form the runtime gives (userinfo, a
    /// backslash, controls, literal dot segments...): refused rather than guessed at.
    BadRequestUrl,
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
    /// No session on a request that needs one (a program; browsers are redirected).
    SignInRequired {
        description: &'static str,
        login_url: String,
    },
    /// Signed in, but the path asks for a stronger or more recent sign-in (a program;
    /// browsers are sent to sign in again).
    StepUpRequired {
        login_url: String,
    },
    /// The sign-in the provider completed does not meet the step-up it was asked for.
    StepUpNotMet(String),
    /// A Bearer token whose sign-in does not meet the path's step-up (RFC 9470): what to ask
    /// the provider for is in the challenge.
    InsufficientUserAuthentication {
        acr_values: Option<String>,
        max_age: Option<u64>,
    },
    /// Signed in, but the policy says no. `who` is what the person is shown as.
    Forbidden {
        who: String,
        sub: String,
        /// Other ways in: sign-in links (label, href) for the providers the rule accepts.
        others: Vec<(String, String)>,
        /// The person's groups could not be read from Microsoft Graph (group overage).
        groups_unresolved: bool,
    },
    /// `/auth/login?provider=` names no configured provider.
    UnknownProvider,
    /// A multi-tenant sign-in from a tenant `OIDC_ALLOWED_TENANTS` does not name.
    TenantNotAllowed,
    /// An `Authorization: Bearer` header without a usable token in it.
    BearerMalformed,
    /// A route of `API_ROUTES` without any credential.
    BearerMissing,
    /// The Bearer token is not acceptable; `public` is a fixed text, `log` the detail.
    TokenRejected {
        public: &'static str,
        log: String,
    },
    /// The token issuer's keys cannot be had.
    TokenKeysUnavailable(String),
    /// The token is valid but lacks what the route requires (the scopes or roles wanted).
    InsufficientScope(String),
    /// A valid token whose person the policy refuses.
    TokenForbidden,
    /// An `API_ROUTES` path with a method none of its entries lists (the methods they do).
    ApiMethodNotListed(String),
    /// An `API_ROUTES` path with a method override in the query string.
    MethodOverride,
    /// Back-channel logout: not a POST.
    BackchannelMethod,
    /// Back-channel logout without server-side sessions.
    BackchannelUnsupported,
    /// Back-channel logout: the logout token is refused.
    LogoutTokenRefused(String),
    /// Back-channel logout: keys or sessions cannot be reached; `public` says which.
    BackchannelUnavailable {
        public: &'static str,
        log: String,
    },
    Internal(String),
}

/// How an error's answer is shaped.
enum Shape {
    /// A page for browsers, JSON for programs.
    PageOrJson,
    /// JSON only (protocol endpoints).
    Json,
    /// An RFC 6750 challenge with a JSON body; `error` empty when no credentials came. `params`
    /// are more challenge parameters (`scope`; RFC 9470's `acr_values` and `max_age`).
    Bearer {
        error: &'static str,
        params: Vec<(&'static str, String)>,
    },
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
            Self::CrossSiteLogout | Self::Forbidden { .. } | Self::TokenForbidden => 403,
            Self::TenantNotAllowed => 403,
            Self::InsufficientScope(_) => 403,
            Self::IdTokenRejected(_) | Self::SignInRequired { .. } => 401,
            Self::StepUpRequired { .. } | Self::InsufficientUserAuthentication { .. } => 401,
            Self::StepUpNotMet(_) => 403,
            Self::BearerMissing | Self::TokenRejected { .. } => 401,
            Self::TokenKeysUnavailable(_) | Self::BackchannelUnavailable { .. } => 503,
            Self::BackchannelMethod | Self::ApiMethodNotListed(_) => 405,
            Self::BackchannelUnsupported => 501,
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
            Self::MissingParameter(_) | Self::BadRequestUrl => "invalid_request",
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
            Self::SignInRequired { .. } | Self::BearerMissing => "unauthenticated",
            Self::StepUpRequired { .. } => "step_up_required",
            Self::StepUpNotMet(_) => "step_up_failed",
            Self::InsufficientUserAuthentication { .. } => "insufficient_user_authentication",
            Self::Forbidden { .. } | Self::TokenForbidden => "forbidden",
            Self::UnknownProvider => "unknown_provider",
            Self::TenantNotAllowed => "tenant_not_allowed",
            Self::BearerMalformed | Self::BackchannelMethod | Self::LogoutTokenRefused(_) => {
                "invalid_request"
            }
            Self::TokenRejected { .. } => "invalid_token",
            Self::TokenKeysUnavailable(_) | Self::BackchannelUnavailable { .. } => {
                "temporarily_unavailable"
            }
            Self::InsufficientScope(_) => "insufficient_scope",
            Self::ApiMethodNotListed(_) => "method_not_allowed",
            Self::MethodOverride => "invalid_request",
            Self::BackchannelUnsupported => "not_supported",
            Self::Internal(_) => "internal_error",
        }
    }

    /// The log line's event: most failures are `request_failed`; the API and back-channel
    /// paths keep their own names.
    pub fn log_event(&self) -> &'static str {
        match self {
            Self::BearerMalformed
            | Self::BearerMissing
            | Self::TokenRejected { .. }
            | Self::TokenKeysUnavailable(_)
            | Self::InsufficientUserAuthentication { .. } => "bearer_rejected",
            Self::BackchannelMethod
            | Self::BackchannelUnsupported
            | Self::LogoutTokenRefused(_) => "backchannel_logout_refused",
            Self::BackchannelUnavailable { .. } => "backchannel_logout_failed",
            _ => "request_failed",
        }
    }

    fn shape(&self) -> Shape {
        let bearer = |error| Shape::Bearer {
            error,
            params: Vec::new(),
        };
        match self {
            Self::BearerMissing => bearer(""),
            Self::BearerMalformed => bearer("invalid_request"),
            Self::TokenRejected { .. } => bearer("invalid_token"),
            Self::TokenKeysUnavailable(_) => bearer("temporarily_unavailable"),
            Self::InsufficientScope(wanted) => Shape::Bearer {
                error: "insufficient_scope",
                params: vec![("scope", wanted.clone())],
            },
            Self::InsufficientUserAuthentication {
                acr_values,
                max_age,
            } => Shape::Bearer {
                error: "insufficient_user_authentication",
                params: acr_values
                    .iter()
                    .map(|a| ("acr_values", a.clone()))
                    .chain(max_age.map(|m| ("max_age", m.to_string())))
                    .collect(),
            },
            Self::SignInRequired { .. }
            | Self::StepUpRequired { .. }
            | Self::TokenForbidden
            | Self::ApiMethodNotListed(_)
            | Self::MethodOverride
            | Self::BackchannelMethod
            | Self::BackchannelUnsupported
            | Self::LogoutTokenRefused(_)
            | Self::BackchannelUnavailable { .. } => Shape::Json,
            _ => Shape::PageOrJson,
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
            Self::AmbiguousPath(_)
            | Self::MissingParameter(_)
            | Self::BadRequestUrl
            | Self::InsecureTransport => "Bad request",
            Self::CrossSiteLogout => "Sign-out refused",
            Self::Forbidden { .. } => "Not allowed",
            Self::StepUpNotMet(_) => "Sign-in not strong enough for this page",
            Self::UnknownProvider => "Unknown sign-in provider",
            Self::TenantNotAllowed => "Your organization cannot sign in here",
            _ => "Sign-in failed",
        }
    }

    /// What the person is told: specific, safe to show.
    pub fn message(&self) -> String {
        match self {
            Self::Config(e) => format!("The setting {} {}. An administrator needs to fix it.", e.variable, e.problem),
            Self::ProviderConfig(why) => format!("The identity provider does not match this gateway's configuration: {why}."),
            Self::ProviderUnavailable(_) => "The identity provider could not be reached and no cached copy of its settings is available. Try again in a minute.".into(),
            Self::AmbiguousPath(e) => format!("The request path cannot be served safely: {e}."),
            Self::NotFound => "There is nothing at this address.".into(),
            Self::MethodNotAllowed => "This address does not accept that method.".into(),
            Self::LoginNotFound => "This sign-in link has expired or was already used. Start again.".into(),
            Self::MissingParameter(p) => format!("The request is missing the {p} parameter."),
            Self::BadRequestUrl => "The address of this request cannot be read safely: it is not in the form browsers send.".into(),
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
            Self::SignInRequired { description, .. } => (*description).into(),
            Self::StepUpRequired { .. } => "Sign in again: this page needs a stronger or more recent sign-in.".into(),
            Self::StepUpNotMet(why) => format!("The identity provider did not sign you in the way this page needs: {why}. Try again; if it happens again, ask the site's administrator."),
            Self::InsufficientUserAuthentication { .. } => "The token's sign-in is not strong or recent enough for this path.".into(),
            Self::Forbidden { who, .. } => format!("You are signed in as {who}, but you are not allowed to see this page."),
            Self::BearerMalformed => "The Authorization header is not a Bearer token.".into(),
            Self::BearerMissing => "A Bearer token is required.".into(),
            Self::TokenRejected { public, .. } | Self::BackchannelUnavailable { public, .. } => (*public).into(),
            Self::TokenKeysUnavailable(_) => "The token issuer's keys cannot be fetched right now.".into(),
            Self::InsufficientScope(_) => "The token lacks the scope or role this route requires.".into(),
            Self::TokenForbidden => "Not allowed here.".into(),
            Self::UnknownProvider => "This sign-in link names a provider this site does not offer.".into(),
            Self::TenantNotAllowed => "You signed in with an account of an organization (tenant) this site does not accept. Sign in with an account of an accepted organization.".into(),
            Self::ApiMethodNotListed(allow) => format!("This API path takes only {allow}."),
            Self::MethodOverride => "Method overrides (_method) are not accepted on API paths.".into(),
            Self::BackchannelMethod => "Back-channel logout takes a POST.".into(),
            Self::BackchannelUnsupported => "Back-channel logout needs SESSION_STORE=durable_object.".into(),
            Self::LogoutTokenRefused(why) => why.clone(),
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
            | Self::TokenKeysUnavailable(s)
            | Self::LogoutTokenRefused(s)
            | Self::StepUpNotMet(s)
            | Self::Internal(s) => s.clone(),
            Self::TokenRejected { log, .. } | Self::BackchannelUnavailable { log, .. } => {
                log.clone()
            }
            Self::BackchannelUnsupported => "SESSION_STORE is not durable_object".into(),
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
                | Self::TenantNotAllowed
                | Self::StepUpNotMet(_)
        )
    }

    /// The answer: a page for browsers, JSON for programs, a challenge for API clients.
    /// `auth_prefix` is where the sign-in routes are (`AUTH_PATH_PREFIX`).
    pub fn to_response(&self, wants_html: bool, auth_prefix: &str) -> Response {
        match self.shape() {
            Shape::PageOrJson if wants_html => self.page(auth_prefix),
            Shape::PageOrJson | Shape::Json => {
                let mut body = json!({ "error": self.code(), "error_description": self.message() });
                match self {
                    Self::SignInRequired { login_url, .. } | Self::StepUpRequired { login_url } => {
                        body["login_url"] = login_url.as_str().into()
                    }
                    Self::Forbidden { sub, .. } => {
                        body["error_description"] = "Signed in, but not allowed here.".into();
                        body["sub"] = sub.as_str().into();
                    }
                    _ => {}
                }
                let mut r = Response::json(self.status(), &body);
                match self {
                    Self::SignInRequired { .. } | Self::StepUpRequired { .. } => r
                        .headers
                        .set("WWW-Authenticate", "Bearer realm=\"portcullis\""),
                    Self::ApiMethodNotListed(allow) => r.headers.set("Allow", allow.as_str()),
                    _ => {}
                }
                r
            }
            Shape::Bearer { error, params } => {
                bearer_challenge(self.status(), error, &self.message(), &params)
            }
        }
    }

    fn page(&self, auth_prefix: &str) -> Response {
        let message = self.message();
        if let Self::Forbidden {
            others,
            groups_unresolved,
            ..
        } = self
        {
            let logout = format!("{auth_prefix}/logout");
            let mut actions: Vec<Action<'_>> = others
                .iter()
                .map(|(label, href)| Action::Link { href, label })
                .collect();
            actions.push(Action::PostButton {
                action: &logout,
                label: "Sign out",
            });
            actions.push(Action::Link {
                href: "/",
                label: "Home",
            });
            let hint = if *groups_unresolved {
                "Your groups could not be read from Microsoft Graph when you signed in, so rules that need a group cannot pass. An administrator can grant the application the GroupMember.Read.All permission; then sign out and in again."
            } else if others.is_empty() {
                "If you should have access, ask the site's administrator, or sign in with another account."
            } else {
                "If you have an account with another provider this page accepts, sign in with it."
            };
            return page(self.status(), self.title(), &[&message, hint], &actions);
        }
        let login = format!("{auth_prefix}/login");
        let retry = [Action::Link {
            href: &login,
            label: "Sign in again",
        }];
        page(
            self.status(),
            self.title(),
            &[&message],
            if self.offers_retry() { &retry } else { &[] },
        )
    }
}

/// An RFC 6750 answer: `WWW-Authenticate: Bearer realm=...` plus a JSON body. `error` empty
/// means no credentials were sent (no error code, RFC 6750 3.1). `params` (from the
/// configuration, never the request) are added to both.
fn bearer_challenge(
    status: u16,
    error: &str,
    description: &str,
    params: &[(&'static str, String)],
) -> Response {
    // Fixed texts only: nothing from the request goes into the header.
    let mut challenge = "Bearer realm=\"portcullis\"".to_owned();
    if !error.is_empty() {
        challenge.push_str(&format!(
            ", error=\"{error}\", error_description=\"{}\"",
            description.replace(['"', '\\'], "")
        ));
    }
    for (name, value) in params {
        challenge.push_str(&format!(", {name}=\"{}\"", value.replace(['"', '\\'], "")));
    }
    let mut body = if error.is_empty() {
        json!({"error": "unauthenticated", "error_description": description})
    } else {
        json!({"error": error, "error_description": description})
    };
    for (name, value) in params {
        body[*name] = value.as_str().into();
    }
    Response::json(status, &body).with_header("WWW-Authenticate", challenge)
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
        let r = e.to_response(true, "/auth");
        assert!(r.body_text().contains("Sign-in was cancelled"));
        assert!(r.body_text().contains("/auth/login"));
    }

    #[test]
    fn config_errors_name_the_variable() {
        let e = GateError::Config(ConfigError {
            variable: "COOKIE_SECRET".into(),
            problem: "is not set".into(),
        });
        let r = e.to_response(false, "/auth");
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
            .to_response(true, "/auth")
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

    #[test]
    fn a_request_url_out_of_canonical_form_is_a_400_that_says_so() {
        let e = GateError::BadRequestUrl;
        assert_eq!((e.status(), e.code()), (400, "invalid_request"));
        assert!(
            e.message().contains("address of this request"),
            "{}",
            e.message()
        );
        assert!(!e.offers_retry());
    }
}
