//! The gate: what to do with one request. Plain Rust over plain data; the platform does I/O.

use serde_json::json;
use url::Url;

use crate::access_token::{self, AccessExpectations, ListClaims, VerifiedAccessToken};
use crate::api::ApiRoute;
use crate::assertion::Subject;
use crate::config::{is_loopback_host, Config};
use crate::config::{AccessLog, PassAccessToken};
use crate::cookies::{parse_cookie_header, CookieJar};
use crate::error::GateError;
use crate::http::{Headers, Method, Response};
use crate::id_token::{self, Expectations};
use crate::jws::{self, UnverifiedJws};
use crate::pages::{page, Action};
use crate::path::RequestPath;
use crate::platform::Platform;
use crate::policy::{Decision, Identity, Rule};
use crate::provider::{KeyLookupError, ProviderCache, ProviderError};
use crate::return_to::ReturnTo;
use crate::seal::Purpose;
use crate::session::{read_session, NoSession, Session, SessionSealError};
use crate::session::{ClaimNames, StoredAccessToken};
use crate::token_cache::TokenCache;
use crate::token_response::{printable, TokenError, TokenResponse};
use crate::transaction::{
    CallbackError, CallbackParams, CodeExchange, LoginTransaction, MAX_LIVE_TRANSACTIONS,
    TRANSACTION_TTL_SECS,
};
use crate::types::Issuer;
use crate::upstream::{header_value, request_headers_for_origin};

pub struct GateRequest {
    pub method: Method,
    pub url: Url,
    pub headers: Headers,
}

/// What the shell does next.
#[derive(Debug)]
pub enum Outcome {
    Respond(Response),
    /// Pass to the upstream with these request headers; `protected` responses are made private.
    /// Pass to the upstream at `path` (the normalized path the policy judged) with these
    /// request headers; `protected` responses are made private.
    Forward {
        path: String,
        headers: Headers,
        protected: bool,
    },
}

pub struct Gate<'a, P: Platform> {
    pub cfg: &'a Config,
    pub cache: &'a ProviderCache,
    pub tokens: &'a TokenCache,
    pub platform: &'a P,
}

impl GateRequest {
    /// Browsers navigating get pages and redirects; programs get JSON and 401s.
    pub fn wants_html(&self) -> bool {
        self.headers
            .get("Accept")
            .is_some_and(|a| a.contains("text/html"))
    }

    fn is_navigation(&self) -> bool {
        matches!(self.method, Method::Get | Method::Head) && self.wants_html()
    }

    fn query(&self, name: &str) -> Option<String> {
        self.url
            .query_pairs()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.into_owned())
    }

    fn origin(&self) -> String {
        self.url.origin().ascii_serialization()
    }
}

impl<'a, P: Platform> Gate<'a, P> {
    pub async fn handle(&self, req: &GateRequest) -> Outcome {
        let secure = req.url.scheme() == "https";
        if !secure && !is_loopback_host(req.url.host_str()) {
            if req.is_navigation() {
                let mut to = req.url.clone();
                let _ = to.set_scheme("https");
                return Outcome::Respond(Response::new(308).with_header("Location", to.as_str()));
            }
            return Outcome::Respond(self.fail(req, GateError::InsecureTransport));
        }
        let jar = CookieJar::new(secure);
        let path = match RequestPath::parse(req.url.path()) {
            Ok(p) => p,
            Err(e) => return Outcome::Respond(self.fail(req, GateError::AmbiguousPath(e))),
        };
        let prefix = self.cfg.auth_prefix.as_str();
        if let Some(route) = path
            .as_str()
            .strip_prefix(prefix)
            .filter(|r| r.is_empty() || r.starts_with('/'))
        {
            let resp = match route {
                "/login" => self.login(req, &jar).await,
                "/callback" => return Outcome::Respond(self.callback(req, &jar).await),
                "/logout" => self.logout(req, &jar).await,
                "/logged-out" => Ok(self.logged_out_page()),
                "/userinfo" => self.userinfo(req, &jar),
                "/jwks.json" => Ok(self.jwks()),
                _ => Err(GateError::NotFound),
            };
            return Outcome::Respond(resp.unwrap_or_else(|e| self.fail(req, e)));
        }
        let rule = self.cfg.policy.rule_for(&path);
        if rule.is_public() {
            let headers = self.stripped_headers(req, &jar);
            return Outcome::Forward {
                path: path.as_str().to_owned(),
                headers,
                protected: false,
            };
        }
        if let Some(api) = &self.cfg.api {
            let route = api.route_for(req.method.as_str(), &path);
            match bearer_credential(&req.headers) {
                Credential::Bearer(token) => {
                    return self.bearer(req, &jar, &path, rule, route, token).await
                }
                Credential::Malformed => {
                    return Outcome::Respond(bearer_challenge(
                        400,
                        "invalid_request",
                        "The Authorization header is not a Bearer token.",
                        None,
                    ))
                }
                Credential::None if route.is_some() => {
                    return Outcome::Respond(bearer_challenge(401, "", "", None))
                }
                Credential::None => {}
            }
        }
        match self.session(req, &jar) {
            Ok(session) => self.authorize(req, &jar, &path, rule, session),
            Err(why) => Outcome::Respond(self.unauthenticated(req, &jar, why)),
        }
    }

    /// Applies the path's rule to a signed-in person: 403, or forward with identity.
    fn authorize(
        &self,
        req: &GateRequest,
        jar: &CookieJar,
        path: &RequestPath,
        rule: &Rule,
        session: Session,
    ) -> Outcome {
        let who = Identity {
            email: session.email.as_deref(),
            email_verified: session.email_verified,
            groups: &session.groups,
            roles: &session.roles,
        };
        if let Decision::Deny { .. } = self.decide(path, rule, &session.sub, &who) {
            return Outcome::Respond(self.forbidden(req, &session));
        }
        let mut headers = self.origin_headers(req, jar, &session.subject());
        if let (Some(how), Some(token)) = (self.cfg.pass_access_token, &session.access_token) {
            if token.expires_at.is_none_or(|e| e > self.platform.now()) {
                match how {
                    PassAccessToken::Authorization => {
                        headers.set("Authorization", format!("Bearer {}", token.secret()))
                    }
                    PassAccessToken::XForwardedAccessToken => {
                        headers.set("X-Forwarded-Access-Token", token.secret())
                    }
                }
            }
        }
        Outcome::Forward {
            path: path.as_str().to_owned(),
            headers,
            protected: true,
        }
    }

    /// Judges and writes the one log line every decision gets.
    fn decide(&self, path: &RequestPath, rule: &Rule, sub: &str, who: &Identity<'_>) -> Decision {
        let decision = self.cfg.policy.judge(rule, who);
        let (outcome, reason) = match &decision {
            Decision::Allow { reason } => ("allow", reason),
            Decision::Deny { reason } => ("deny", reason),
        };
        self.log_access(path, sub, &rule.name, outcome, reason);
        decision
    }

    fn log_access(&self, path: &RequestPath, sub: &str, rule: &str, outcome: &str, reason: &str) {
        let wanted = match self.cfg.access_log {
            AccessLog::All => true,
            AccessLog::Deny => outcome == "deny",
            AccessLog::None => false,
        };
        if !wanted {
            return;
        }
        self.platform.log(&json!({
            "event": "access", "time": self.platform.now(), "path": path.as_str().chars().take(200).collect::<String>(),
            "sub": sub, "rule": rule, "outcome": outcome, "reason": reason,
        }));
    }

    /// The request headers for the origin: inbound identity stripped, the real one set.
    fn origin_headers(&self, req: &GateRequest, jar: &CookieJar, who: &Subject<'_>) -> Headers {
        let mut headers = self.stripped_headers(req, jar);
        let ids = &self.cfg.identity_headers;
        if let Some(h) = &ids.user {
            headers.set(h, header_value(who.sub));
        }
        if let (Some(h), Some(email)) = (&ids.email, who.email) {
            headers.set(h, header_value(email));
        }
        if let Some(h) = ids.groups.as_ref().filter(|_| !who.groups.is_empty()) {
            let groups: Vec<String> = who
                .groups
                .iter()
                .map(|g| header_value(g).replace(',', "%2C"))
                .collect();
            headers.set(h, groups.join(","));
        }
        if let Some(signer) = &self.cfg.assertion {
            headers.set(
                &signer.header,
                signer.assertion(&req.origin(), who, self.platform.now()),
            );
        }
        headers
    }

    /// The request headers without anything the origin could take for identity from us.
    fn stripped_headers(&self, req: &GateRequest, jar: &CookieJar) -> Headers {
        let mut headers =
            request_headers_for_origin(&req.headers, jar, &self.configured_identity_headers());
        if self.cfg.pass_access_token == Some(PassAccessToken::Authorization)
            && !self.bearer_in_use()
        {
            // The origin treats Authorization as coming from us: never pass the client's own.
            headers.remove("Authorization");
        }
        headers
    }

    /// Bearer tokens are accepted (so an Authorization header is the client's API credential).
    fn bearer_in_use(&self) -> bool {
        self.cfg.api.is_some()
    }

    /// A request carrying `Authorization: Bearer`: the token decides, never a cookie.
    async fn bearer(
        &self,
        req: &GateRequest,
        jar: &CookieJar,
        path: &RequestPath,
        rule: &Rule,
        route: Option<&ApiRoute>,
        token: &str,
    ) -> Outcome {
        let now = i64::try_from(self.platform.now()).unwrap_or(i64::MAX);
        let verified = match self.tokens.get(token, now) {
            Some(t) => t,
            None => match self.verify_access_token(token, now).await {
                Ok(t) => self.tokens.insert(token, t),
                Err(e) => {
                    self.platform.log(&json!({"level":"warn","event":"bearer_rejected","path":path.as_str(),"reason":e.log}));
                    return Outcome::Respond(e.response);
                }
            },
        };
        match route {
            Some(route) => match route.judge(&verified) {
                Ok(reason) => {
                    self.log_access(path, &verified.subject, &route.name, "allow", &reason)
                }
                Err(wanted) => {
                    self.log_access(
                        path,
                        &verified.subject,
                        &route.name,
                        "deny",
                        "insufficient scope",
                    );
                    return Outcome::Respond(bearer_challenge(
                        403,
                        "insufficient_scope",
                        "The token lacks the scope or role this route requires.",
                        Some(&wanted),
                    ));
                }
            },
            None => {
                let who = Identity {
                    email: verified.email.as_deref(),
                    email_verified: None,
                    groups: &verified.groups,
                    roles: &verified.roles,
                };
                if let Decision::Deny { .. } = self.decide(path, rule, &verified.subject, &who) {
                    return Outcome::Respond(Response::json(
                        403,
                        &json!({"error":"forbidden","error_description":"Not allowed here."}),
                    ));
                }
            }
        }
        let subject = Subject {
            idp: &verified.issuer,
            sub: &verified.subject,
            email: verified.email.as_deref(),
            name: None,
            groups: &verified.groups,
            roles: &verified.roles,
            since: 0,
            until: u64::try_from(verified.expires_at).unwrap_or(0),
        };
        let headers = self.origin_headers(req, jar, &subject);
        Outcome::Forward {
            path: path.as_str().to_owned(),
            headers,
            protected: true,
        }
    }

    async fn verify_access_token(
        &self,
        token: &str,
        now: i64,
    ) -> Result<VerifiedAccessToken, BearerRejection> {
        let invalid = |why: &str| BearerRejection::invalid(why);
        let api = self
            .cfg
            .api
            .as_ref()
            .ok_or_else(|| invalid("Bearer tokens are not accepted here"))?;
        let jws = UnverifiedJws::parse(token).map_err(|e| BearerRejection {
            log: e.to_string(),
            response: bearer_challenge(
                401,
                "invalid_token",
                "The token is malformed or uses a refused algorithm.",
                None,
            ),
        })?;
        // Only trusted issuers' keys are ever fetched: the issuer is checked before any I/O.
        let iss = jws
            .unverified_issuer()
            .ok_or_else(|| invalid("the token has no issuer"))?;
        if !api.issuers.contains(&iss) {
            return Err(invalid("the token's issuer is not trusted"));
        }
        let unavailable = |why: String| BearerRejection {
            log: why,
            response: bearer_challenge(
                503,
                "temporarily_unavailable",
                "The token issuer's keys cannot be fetched right now.",
                None,
            ),
        };
        let meta = self
            .cache
            .metadata(self.platform, &Issuer::new(iss))
            .await
            .map_err(|e| unavailable(format!("{e:?}")))?;
        let key = self
            .cache
            .key_for(self.platform, &meta.jwks_uri, &jws.header)
            .await
            .map_err(|e| match e {
                KeyLookupError::Provider(p) => unavailable(format!("{p:?}")),
                KeyLookupError::Key(_) => invalid("no signing key of the issuer fits the token"),
            })?;
        let verified = jws::verify(self.platform.verifier(), jws, &key)
            .await
            .map_err(|_| invalid("the signature does not verify"))?;
        let expect = AccessExpectations {
            issuers: &api.issuers,
            audiences: &api.audiences,
            typ: api.typ,
            now,
        };
        let lists = ListClaims {
            groups: &self.cfg.groups_claim,
            roles: &self.cfg.roles_claim,
        };
        access_token::validate(&verified, &expect, &lists).map_err(|e| invalid(&e.to_string()))
    }

    /// Header names the origin trusts for identity besides the built-in list: configured
    /// identity and assertion headers are stripped from inbound requests too.
    fn configured_identity_headers(&self) -> Vec<&str> {
        let ids = &self.cfg.identity_headers;
        [
            ids.user.as_deref(),
            ids.email.as_deref(),
            ids.groups.as_deref(),
            self.cfg.assertion.as_ref().map(|a| a.header.as_str()),
        ]
        .into_iter()
        .flatten()
        .collect()
    }

    /// Signed in, but the policy says no.
    fn forbidden(&self, req: &GateRequest, session: &Session) -> Response {
        let who = session
            .email
            .clone()
            .or_else(|| session.name.clone())
            .unwrap_or_else(|| session.sub.clone());
        if req.wants_html() {
            let line =
                format!("You are signed in as {who}, but you are not allowed to see this page.");
            let logout = self.cfg.auth_path("logout");
            page(403, "Not allowed", &[&line, "If you should have access, ask the site's administrator, or sign in with another account."], &[
                Action::PostButton { action: &logout, label: "Sign out" },
                Action::Link { href: "/", label: "Home" },
            ])
        } else {
            Response::json(
                403,
                &json!({"error":"forbidden","error_description":"Signed in, but not allowed here.","sub":session.sub}),
            )
        }
    }

    fn jwks(&self) -> Response {
        let keys = self
            .cfg
            .assertion
            .as_ref()
            .map_or_else(|| json!({"keys": []}), |a| a.jwks());
        let mut r = Response::json(200, &keys);
        r.headers.set("Cache-Control", "public, max-age=300");
        r
    }

    fn session(&self, req: &GateRequest, jar: &CookieJar) -> Result<Session, NoSession> {
        read_session(
            &self.cfg.sealer,
            jar,
            req.headers.get("Cookie"),
            &self.cfg.issuer,
            &self.cfg.client_id,
            self.platform.now(),
        )
    }

    fn login_href(&self, return_to: Option<&str>) -> String {
        let login = self.cfg.auth_path("login");
        match return_to {
            Some(rt) if rt != "/" => {
                let enc: String = url::form_urlencoded::byte_serialize(rt.as_bytes()).collect();
                format!("{login}?return_to={enc}")
            }
            _ => login,
        }
    }

    fn unauthenticated(&self, req: &GateRequest, jar: &CookieJar, why: NoSession) -> Response {
        if why != NoSession::NoCookie {
            self.platform.log(&json!({"level":"info","event":"session_rejected","path":req.url.path(),"reason":format!("{why:?}")}));
        }
        let mut resp = if req.is_navigation() {
            let mut here = req.url.path().to_owned();
            if let Some(q) = req.url.query() {
                here.push('?');
                here.push_str(q);
            }
            Response::redirect(&self.login_href(Some(&here)))
        } else {
            Response::json(401, &json!({"error":"unauthenticated","error_description":"Sign in first.","login_url":self.login_href(None)}))
                .with_header("WWW-Authenticate", "Bearer realm=\"portcullis\"")
        };
        if why != NoSession::NoCookie {
            resp.headers
                .append("Set-Cookie", jar.delete(&jar.session_name()));
        }
        resp
    }

    /// The error's answer, with one log line saying why.
    fn fail(&self, req: &GateRequest, err: GateError) -> Response {
        let level = if err.status() >= 500 { "error" } else { "warn" };
        self.platform.log(&json!({
            "level": level, "event": "request_failed", "method": format!("{:?}", req.method),
            "path": req.url.path().chars().take(200).collect::<String>(),
            "status": err.status(), "reason": err.code(), "detail": err.log_detail(),
        }));
        err.to_response(req.wants_html(), &self.login_href(None))
    }

    fn redirect_uri(&self, req: &GateRequest) -> String {
        match &self.cfg.redirect_uri {
            Some(u) => u.to_string(),
            None => format!("{}{}", req.origin(), self.cfg.auth_path("callback")),
        }
    }

    async fn metadata(&self) -> Result<std::rc::Rc<crate::discovery::ProviderMetadata>, GateError> {
        self.cache
            .metadata(self.platform, &self.cfg.issuer)
            .await
            .map_err(provider_error)
    }

    async fn login(&self, req: &GateRequest, jar: &CookieJar) -> Result<Response, GateError> {
        if !matches!(req.method, Method::Get | Method::Head) {
            return Err(GateError::MethodNotAllowed);
        }
        let meta = self.metadata().await?;
        let return_to = ReturnTo::parse(req.query("return_to").as_deref(), &self.cfg.auth_prefix);
        let now = self.platform.now();
        let (tx, authorize_url) =
            LoginTransaction::begin(self.cfg, &meta, &self.redirect_uri(req), &return_to, now)
                .map_err(|e| GateError::Internal(e.to_string()))?;
        let name = jar.transaction_name(tx.state());
        let sealed = self
            .cfg
            .sealer
            .seal_json(Purpose::LoginTransaction, &name, &tx)
            .map_err(|e| GateError::Internal(format!("sealing the login transaction: {e:?}")))?;
        let mut resp = Response::redirect(&authorize_url);
        for stale in self.transactions_to_drop(req, jar, now) {
            resp.headers.append("Set-Cookie", jar.delete(&stale));
        }
        resp.headers
            .append("Set-Cookie", jar.set(&name, &sealed, TRANSACTION_TTL_SECS));
        Ok(resp)
    }

    /// Transaction cookies to delete before adding one: unreadable or expired ones, and the
    /// oldest live ones beyond the cap.
    fn transactions_to_drop(&self, req: &GateRequest, jar: &CookieJar, now: u64) -> Vec<String> {
        let Some(header) = req.headers.get("Cookie") else {
            return Vec::new();
        };
        let mut drop = Vec::new();
        let mut live: Vec<(u64, String)> = Vec::new();
        for (name, value) in parse_cookie_header(header) {
            if !jar.is_transaction_name(name) {
                continue;
            }
            match self.cfg.sealer.open_json::<LoginTransaction>(
                Purpose::LoginTransaction,
                name,
                value,
            ) {
                Ok(tx) if !tx.is_expired(now) => live.push((tx.created_at(), name.to_owned())),
                _ => drop.push(name.to_owned()),
            }
        }
        live.sort();
        let excess = (live.len() + 1).saturating_sub(MAX_LIVE_TRANSACTIONS);
        drop.extend(live.into_iter().take(excess).map(|(_, n)| n));
        drop
    }

    async fn callback(&self, req: &GateRequest, jar: &CookieJar) -> Response {
        let params = CallbackParams::from_query(&req.url);
        let tx_name = params
            .state
            .as_deref()
            .map(|s| jar.transaction_name_for_state_str(s));
        let tx_value = tx_name.as_deref().and_then(|name| {
            req.headers.get("Cookie").and_then(|h| {
                parse_cookie_header(h)
                    .into_iter()
                    .find(|(n, _)| n == &name)
                    .map(|(_, v)| v.to_owned())
            })
        });
        let mut resp = match self
            .finish_callback(req, jar, &params, tx_name.as_deref(), tx_value.as_deref())
            .await
        {
            Ok(r) => r,
            Err(e) => self.fail(req, e),
        };
        // One use only: whatever happened, this transaction is spent.
        if let (Some(name), Some(_)) = (tx_name, tx_value) {
            resp.headers.append("Set-Cookie", jar.delete(&name));
        }
        resp
    }

    async fn finish_callback(
        &self,
        req: &GateRequest,
        jar: &CookieJar,
        params: &CallbackParams,
        tx_name: Option<&str>,
        tx_value: Option<&str>,
    ) -> Result<Response, GateError> {
        if req.method != Method::Get {
            return Err(GateError::MethodNotAllowed);
        }
        if let Some(error) = &params.error {
            // Only an answer to a sign-in this browser started may show provider text on our
            // domain; anything else is a stale or forged link.
            let live = match (tx_name, tx_value, params.state.as_deref()) {
                (Some(name), Some(value), Some(state)) => self
                    .cfg
                    .sealer
                    .open_json::<LoginTransaction>(Purpose::LoginTransaction, name, value)
                    .is_ok_and(|tx| tx.state().matches(state)),
                _ => false,
            };
            if !live {
                return Err(GateError::LoginNotFound);
            }
            return Err(GateError::ProviderSaidNo {
                error: printable(error, 64),
                description: params
                    .error_description
                    .as_deref()
                    .map(|d| printable(d, 300)),
            });
        }
        let (Some(name), Some(value)) = (tx_name, tx_value) else {
            return Err(if params.state.is_none() {
                GateError::MissingParameter("state")
            } else {
                GateError::LoginNotFound
            });
        };
        if params.code.is_none() {
            return Err(GateError::MissingParameter("code"));
        }
        let tx: LoginTransaction = self
            .cfg
            .sealer
            .open_json(Purpose::LoginTransaction, name, value)
            .map_err(|_| GateError::LoginNotFound)?;
        let meta = self.metadata().await?;
        let now = self.platform.now();
        let exchange = tx
            .complete(
                params,
                meta.authorization_response_iss_parameter_supported,
                now,
            )
            .map_err(|e| {
                if e == CallbackError::Expired {
                    GateError::LoginNotFound
                } else {
                    GateError::Callback(e)
                }
            })?;
        if exchange.issuer != self.cfg.issuer {
            return Err(GateError::LoginNotFound);
        }

        let token_resp = self
            .platform
            .fetch(exchange.token_request(self.cfg, &meta.token_endpoint))
            .await
            .map_err(|e| GateError::TokenEndpoint(format!("token request failed: {e}")))?;
        let tokens = TokenResponse::parse(&token_resp).map_err(|e| match e {
            TokenError::Refused {
                status,
                error,
                description,
            } if status < 500 => GateError::CodeRefused { error, description },
            other => GateError::TokenEndpoint(other.to_string()),
        })?;

        let verified = self
            .verify_id_token(&tokens, &exchange, &meta.jwks_uri, now)
            .await?;
        let names = ClaimNames {
            groups: &self.cfg.groups_claim,
            roles: &self.cfg.roles_claim,
        };
        let access_token = match (self.cfg.pass_access_token, tokens.access_token.as_ref()) {
            (Some(_), Some(at)) => Some(StoredAccessToken::new(
                at.secret().clone(),
                tokens.expires_in.map(|e| now.saturating_add(e)),
            )),
            _ => None,
        };
        let session = Session::from_id_token(
            verified,
            &names,
            access_token,
            now,
            self.cfg.session_ttl_secs,
        );
        let (session, sealed) = session
            .seal(&self.cfg.sealer, &jar.session_name(), &self.cfg.client_id)
            .map_err(|e| match e {
                SessionSealError::TooLarge => {
                    GateError::Internal("the session does not fit in a cookie".into())
                }
                SessionSealError::Seal(e) => {
                    GateError::Internal(format!("sealing the session: {e:?}"))
                }
            })?;
        self.platform.log(&json!({
            "level":"info","event":"sign_in","iss":session.iss.as_str(),"sub":session.sub,
            "groups_omitted":session.groups_omitted,
        }));
        let return_to = ReturnTo::from_trusted(&exchange.return_to, &self.cfg.auth_prefix);
        Ok(Response::redirect(return_to.as_str()).with_header(
            "Set-Cookie",
            jar.set(&jar.session_name(), &sealed, self.cfg.session_ttl_secs),
        ))
    }

    async fn verify_id_token(
        &self,
        tokens: &TokenResponse,
        exchange: &CodeExchange,
        jwks_uri: &str,
        now: u64,
    ) -> Result<id_token::VerifiedIdToken, GateError> {
        let reject = |why: String| GateError::IdTokenRejected(why);
        let jws =
            UnverifiedJws::parse(tokens.id_token.secret()).map_err(|e| reject(e.to_string()))?;
        let key = self
            .cache
            .key_for(self.platform, jwks_uri, &jws.header)
            .await
            .map_err(|e| match e {
                KeyLookupError::Provider(p) => provider_error(p),
                KeyLookupError::Key(k) => reject(format!("no signing key for the token ({k:?})")),
            })?;
        let verified = jws::verify(self.platform.verifier(), jws, &key)
            .await
            .map_err(|e| reject(e.to_string()))?;
        let expect = Expectations {
            issuer: &self.cfg.issuer,
            client_id: &self.cfg.client_id,
            nonce: &exchange.nonce,
            trusted_audiences: &[],
            now: i64::try_from(now).unwrap_or(i64::MAX),
            access_token: tokens.access_token.as_ref().map(|t| t.secret().as_str()),
        };
        id_token::validate(verified, &expect).map_err(|e| reject(e.to_string()))
    }

    async fn logout(&self, req: &GateRequest, jar: &CookieJar) -> Result<Response, GateError> {
        match req.method {
            Method::Get | Method::Head => {
                let signed_in = self.session(req, jar).ok();
                let who = signed_in
                    .as_ref()
                    .and_then(|s| s.email.clone().or(s.name.clone()))
                    .unwrap_or_else(|| "this site".into());
                let line = if signed_in.is_some() {
                    format!("You are signed in as {who}.")
                } else {
                    "You are not signed in.".to_owned()
                };
                let action = self.cfg.auth_path("logout");
                Ok(page(
                    200,
                    "Sign out?",
                    &[&line],
                    &[
                        Action::PostButton {
                            action: &action,
                            label: "Sign out",
                        },
                        Action::Link {
                            href: "/",
                            label: "Cancel",
                        },
                    ],
                ))
            }
            Method::Post => {
                if is_cross_site(req) {
                    return Err(GateError::CrossSiteLogout);
                }
                let who = self.session(req, jar).ok().map(|s| s.sub);
                self.platform
                    .log(&json!({"level":"info","event":"sign_out","sub":who}));
                let logged_out = format!("{}{}", req.origin(), self.cfg.auth_path("logged-out"));
                // The local session ends whatever the provider does.
                let location = match self.metadata().await {
                    Ok(meta) => match meta
                        .end_session_endpoint
                        .as_deref()
                        .and_then(|e| Url::parse(e).ok())
                    {
                        Some(mut end) => {
                            let post_logout = self
                                .cfg
                                .post_logout_redirect_uri
                                .as_ref()
                                .map_or(logged_out, Url::to_string);
                            end.query_pairs_mut()
                                .append_pair("client_id", self.cfg.client_id.as_str())
                                .append_pair("post_logout_redirect_uri", &post_logout);
                            end.to_string()
                        }
                        None => self.cfg.auth_path("logged-out"),
                    },
                    Err(e) => {
                        self.platform.log(&json!({"level":"warn","event":"logout_local_only","detail":e.log_detail()}));
                        self.cfg.auth_path("logged-out")
                    }
                };
                let mut resp = Response::redirect(&location)
                    .with_header("Set-Cookie", jar.delete(&jar.session_name()));
                resp.headers.append("Clear-Site-Data", "\"cache\"");
                Ok(resp)
            }
            _ => Err(GateError::MethodNotAllowed),
        }
    }

    fn logged_out_page(&self) -> Response {
        let login = self.cfg.auth_path("login");
        page(
            200,
            "You are signed out",
            &["Your session on this site has ended."],
            &[Action::Link {
                href: &login,
                label: "Sign in again",
            }],
        )
    }

    fn userinfo(&self, req: &GateRequest, jar: &CookieJar) -> Result<Response, GateError> {
        if !matches!(req.method, Method::Get | Method::Head) {
            return Err(GateError::MethodNotAllowed);
        }
        match self.session(req, jar) {
            Ok(s) => Ok(Response::json(200, &s.userinfo())),
            Err(_) => Ok(Response::json(401, &json!({"error":"unauthenticated","error_description":"No session.","login_url":self.login_href(None)}))
                .with_header("WWW-Authenticate", "Bearer realm=\"portcullis\"")),
        }
    }
}

/// A refused Bearer token: the log reason and the RFC 6750 answer.
struct BearerRejection {
    log: String,
    response: Response,
}

impl BearerRejection {
    fn invalid(why: &str) -> Self {
        Self {
            log: why.to_owned(),
            response: bearer_challenge(401, "invalid_token", why, None),
        }
    }
}

enum Credential<'r> {
    None,
    Bearer(&'r str),
    Malformed,
}

/// `Authorization: Bearer <token>` (RFC 6750 2.1). Tokens in the query string or body are
/// never read.
fn bearer_credential(headers: &Headers) -> Credential<'_> {
    let Some(value) = headers.get("Authorization") else {
        return Credential::None;
    };
    let mut parts = value.trim().splitn(2, ' ');
    match (parts.next(), parts.next().map(str::trim)) {
        (Some(scheme), Some(token))
            if scheme.eq_ignore_ascii_case("bearer")
                && !token.is_empty()
                && !token.contains(' ') =>
        {
            Credential::Bearer(token)
        }
        (Some(scheme), _) if scheme.eq_ignore_ascii_case("bearer") => Credential::Malformed,
        // Basic and other schemes belong to the origin; they are not our business.
        _ => Credential::None,
    }
}

/// An RFC 6750 answer: `WWW-Authenticate: Bearer realm=...` plus a JSON body. `error` empty
/// means no credentials were sent (no error code, RFC 6750 3.1).
fn bearer_challenge(status: u16, error: &str, description: &str, scope: Option<&str>) -> Response {
    // Fixed texts only: nothing from the request goes into the header.
    let mut challenge = "Bearer realm=\"portcullis\"".to_owned();
    if !error.is_empty() {
        challenge.push_str(&format!(
            ", error=\"{error}\", error_description=\"{}\"",
            description.replace(['"', '\\'], "")
        ));
    }
    if let Some(s) = scope {
        challenge.push_str(&format!(", scope=\"{}\"", s.replace(['"', '\\'], "")));
    }
    let body = if error.is_empty() {
        json!({"error": "unauthenticated", "error_description": "A Bearer token is required."})
    } else {
        json!({"error": error, "error_description": description, "scope": scope})
    };
    Response::json(status, &body).with_header("WWW-Authenticate", challenge)
}

fn provider_error(e: ProviderError) -> GateError {
    match e {
        ProviderError::Unavailable(why) => GateError::ProviderUnavailable(why),
        ProviderError::Invalid(why) => GateError::ProviderConfig(why),
    }
}

/// A state-changing request a browser says came from another site.
fn is_cross_site(req: &GateRequest) -> bool {
    if let Some(origin) = req.headers.get("Origin") {
        return origin != req.origin();
    }
    req.headers
        .get("Sec-Fetch-Site")
        .is_some_and(|s| s != "same-origin" && s != "none")
}

#[cfg(test)]
mod tests;
