//! The gate: what to do with one request. Plain Rust over plain data; the platform does I/O.
//!
//! `handle` reads top to bottom: transport and path checks, then either one of the sign-in
//! routes (one file each) or the protected path (`protect.rs`: authenticate, one `Principal`,
//! authorize, forward).

mod backchannel;
mod callback;
pub mod error;
mod jwks;
mod login;
mod logout;
mod principal;
mod protect;
mod userinfo;

use crate::access::policy::step_up_text;
use crate::access::step_up::StepUp;
use crate::access::token_cache::TokenCache;
use crate::base::log_line::log_line;
use crate::config::providers::{ProviderConfig, ProviderId};
use crate::config::Config;
use crate::gate::error::GateError;
use crate::http::cookies::CookieJar;
use crate::http::form_replay;
use crate::http::http_url::HttpUrl;
use crate::http::path::RequestPath;
use crate::http::upstream::OriginHeaders;
use crate::http::{is_loopback_host, Headers, Method, Response};
use crate::oidc::discovery::ProviderMetadata;
use crate::oidc::provider::{ProviderCache, ProviderError};
use crate::platform::Platform;
use crate::session::coalescer::RefreshCoalescer;
use crate::session::store::{OpenedSessions, SessionObjects, Sessions};

pub struct GateRequest {
    pub method: Method,
    pub url: HttpUrl,
    pub headers: Headers,
    /// The body, read by the shell only where it is needed: back-channel logout, and a
    /// browser's form post small enough to keep through sign-in (`FORM_REPLAY_MAX_BYTES`).
    pub body: Option<Vec<u8>>,
}

/// What the shell does next.
#[derive(Debug)]
pub enum Outcome {
    Respond(Response),
    /// Pass to the upstream at `path` (the normalized path the policy judged) with these
    /// request headers (`None`: the request's own, unchanged, for static assets, which read
    /// none of the gate's); `protected` responses are made private and get `set_cookies`
    /// (a rewritten session: refreshed tokens, a moved idle timer).
    Forward {
        path: String,
        headers: Option<OriginHeaders>,
        protected: bool,
        set_cookies: Vec<String>,
    },
}

/// The isolate's state and the platform, for one request.
pub struct Gate<'a, P> {
    pub cfg: &'a Config,
    pub cache: &'a ProviderCache,
    pub tokens: &'a TokenCache,
    pub refreshes: &'a RefreshCoalescer,
    pub opened: &'a OpenedSessions,
    pub platform: &'a P,
}

impl GateRequest {
    /// Browsers navigating get pages and redirects; programs get JSON and 401s.
    pub fn wants_html(&self) -> bool {
        self.headers
            .get("Accept")
            .is_some_and(|a| a.contains("text/html"))
    }

    /// Routes that only show something take GET and HEAD.
    fn read_only(&self) -> Result<(), GateError> {
        match self.method {
            Method::Get | Method::Head => Ok(()),
            _ => Err(GateError::MethodNotAllowed),
        }
    }

    fn is_navigation(&self) -> bool {
        matches!(self.method, Method::Get | Method::Head) && self.wants_html()
    }

    /// A browser submitting a form as a page navigation (`Sec-Fetch-Mode: navigate`, a form
    /// encoding), from any site.
    fn is_form_navigation(&self) -> bool {
        self.method == Method::Post
            && self.headers.get("Sec-Fetch-Mode") == Some("navigate")
            && self
                .headers
                .get("Content-Type")
                .is_some_and(form_replay::is_form_type)
    }

    /// Sent from a page of this very origin: `Sec-Fetch-Site: same-origin`, and an `Origin`,
    /// when there is one, that is ours. Browsers set both; pages cannot forge them.
    fn is_same_origin(&self) -> bool {
        self.headers.get("Sec-Fetch-Site") == Some("same-origin")
            && self
                .headers
                .get("Origin")
                .is_none_or(|o| o == self.origin())
    }

    /// Whether the shell should read this request's body for [`Gate`] to keep a form through
    /// sign-in: a same-origin browser form of at most `max` bytes (its `Content-Length`).
    pub fn form_worth_reading(method: Method, headers: &Headers, max: usize) -> bool {
        method == Method::Post
            && headers.get("Sec-Fetch-Mode") == Some("navigate")
            && headers.get("Sec-Fetch-Site") == Some("same-origin")
            && headers
                .get("Content-Type")
                .is_some_and(form_replay::is_form_type)
            && headers
                .get("Content-Length")
                .and_then(|l| l.trim().parse::<usize>().ok())
                .is_some_and(|l| l <= max)
    }

    /// The path with its query, as a `return_to` names the page.
    fn path_and_query(&self) -> String {
        let mut here = self.url.path().to_owned();
        if let Some(q) = self.url.query() {
            here.push('?');
            here.push_str(q);
        }
        here
    }

    fn query(&self, name: &str) -> Option<String> {
        self.url
            .query_pairs()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.into_owned())
    }

    fn origin(&self) -> String {
        self.url.origin().to_owned()
    }

    fn cookie_header(&self) -> Option<&str> {
        self.headers.get("Cookie")
    }
}

impl<P: Platform + SessionObjects> Gate<'_, P> {
    pub async fn handle(&self, req: &GateRequest) -> Outcome {
        let secure = req.url.is_secure();
        if !secure && !is_loopback_host(req.url.host()) {
            if req.is_navigation() {
                // Its host is the request's own `Host`: never kept by a cache for anyone else.
                let to = req.url.to_https();
                return Outcome::Respond(
                    Response::new(308)
                        .with_header("Location", to)
                        .with_header("Cache-Control", "no-store"),
                );
            }
            return Outcome::Respond(self.fail(req, GateError::InsecureTransport));
        }
        let jar = CookieJar::new(secure);
        let path = match RequestPath::parse(req.url.path()) {
            Ok(p) => p,
            Err(e) => return Outcome::Respond(self.fail(req, GateError::AmbiguousPath(e))),
        };
        let prefix = self.cfg.auth_prefix.as_str();
        let Some(route) = path
            .as_str()
            .strip_prefix(prefix)
            .filter(|r| r.is_empty() || r.starts_with('/'))
        else {
            return self.protect(req, &jar, &path).await;
        };
        let answer = match route {
            "/login" => self.login(req, &jar).await,
            "/callback" => Ok(self.callback(req, &jar).await),
            r if r.starts_with("/callback/") => Ok(self.callback(req, &jar).await),
            "/logout" => self.logout(req, &jar).await,
            "/logged-out" => self.logged_out(req, &jar),
            "/userinfo" => self.userinfo(req, &jar).await,
            "/backchannel-logout" => self.backchannel_logout(req).await,
            "/jwks.json" => Ok(self.jwks()),
            _ => Err(GateError::NotFound),
        };
        Outcome::Respond(answer.unwrap_or_else(|e| self.fail(req, e)))
    }

    /// The request's sessions, whichever store holds them.
    fn sessions<'s>(&'s self, req: &'s GateRequest, jar: &'s CookieJar) -> Sessions<'s, P> {
        Sessions {
            cfg: self.cfg,
            cache: self.cache,
            refreshes: self.refreshes,
            opened: self.opened,
            platform: self.platform,
            jar,
            cookie_header: req.cookie_header(),
        }
    }

    /// The error's answer, with one log line saying why.
    fn fail(&self, req: &GateRequest, err: GateError) -> Response {
        let level = if err.status() >= 500 { "error" } else { "warn" };
        self.platform.log_json(log_line!("level": level, "event": err.log_event(), "method": format!("{:?}", req.method),
            "path": req.url.path().chars().take(200).collect::<String>(),
            "status": err.status(), "reason": err.code(), "detail": err.log_detail()));
        err.to_response(req.wants_html(), &self.cfg.auth_prefix)
    }

    fn login_href(&self, return_to: Option<&str>) -> String {
        self.login_href_at(None, return_to)
    }

    /// `/auth/login` coming back to `return_to`, asking for `step_up` when given.
    fn login_href_step_up(&self, return_to: Option<&str>, step_up: Option<&StepUp>) -> String {
        self.login_href_with(None, return_to, step_up, None)
    }

    /// `/auth/login`, at one provider when `provider` says, coming back to `return_to`.
    fn login_href_at(&self, provider: Option<&ProviderId>, return_to: Option<&str>) -> String {
        self.login_href_with(provider, return_to, None, None)
    }

    /// `resume`: after sign-in, the callback's page posts the form the browser kept under this
    /// id (`resume=ID`).
    fn login_href_with(
        &self,
        provider: Option<&ProviderId>,
        return_to: Option<&str>,
        step_up: Option<&StepUp>,
        resume: Option<&str>,
    ) -> String {
        let mut q = form_urlencoded::Serializer::new(String::new());
        if let Some(p) = provider {
            q.append_pair("provider", p.as_str());
        }
        if let Some(rt) = return_to.filter(|rt| *rt != "/") {
            q.append_pair("return_to", rt);
        }
        if let Some(s) = step_up.filter(|s| !s.is_empty()) {
            q.append_pair("step_up", &step_up_text(s));
        }
        if let Some(id) = resume {
            q.append_pair("resume", id);
        }
        let q = q.finish();
        let login = self.cfg.auth_path("login");
        if q.is_empty() {
            login
        } else {
            format!("{login}?{q}")
        }
    }

    /// The session's or the transaction's provider; one that is no longer configured ends
    /// there.
    fn provider(&self, id: &ProviderId) -> Result<&ProviderConfig, GateError> {
        self.cfg
            .providers
            .get(id.as_str())
            .ok_or(GateError::LoginNotFound)
    }

    /// An OpenID provider's discovery metadata.
    async fn metadata(
        &self,
        provider: &ProviderConfig,
    ) -> Result<std::rc::Rc<ProviderMetadata>, GateError> {
        self.cache
            .metadata(self.platform, &provider.issuer)
            .await
            .map_err(GateError::from)
    }
}

impl From<ProviderError> for GateError {
    fn from(e: ProviderError) -> Self {
        match e {
            ProviderError::Unavailable(why) => Self::ProviderUnavailable(why),
            ProviderError::Invalid(why) => Self::ProviderConfig(why),
        }
    }
}

/// Attaches the `Set-Cookie` values that go with an answer.
fn with_cookies(mut resp: Response, set_cookies: Vec<String>) -> Response {
    for c in set_cookies {
        resp.headers.append("Set-Cookie", c);
    }
    resp
}

#[cfg(test)]
mod tests;
