//! The protected path: authenticate (a Bearer token when APIs are configured, else the
//! session), make one `Principal`, authorize it against the path's rule or API route, and
//! forward with the identity the origin may trust.

use crate::access::access_token::{self, AccessExpectations, VerifiedAccessToken};
use crate::access::api::{ApiRoute, RouteMatch};
use crate::access::policy::{Decision, Rule};
use crate::access::step_up::StepUp;
use crate::access::token_cache;
use crate::base::log_line::log_line;
use crate::base::log_line::LogLine;
use crate::base::random::random_token;
use crate::base::time::UnixTime;
use crate::base::types::Issuer;
use crate::config::providers::ProviderId;
use crate::config::{AccessLog, PassAccessToken, Upstream};
use crate::gate::error::GateError;
use crate::gate::principal::Principal;
use crate::gate::{with_cookies, Gate, GateRequest, Outcome};
use crate::http::authorization::{bearer_credential, Credential};
use crate::http::cookies::CookieJar;
use crate::http::form_replay::{self, Form};
use crate::http::pages::{page, Action};
use crate::http::path::RequestPath;
use crate::http::return_to::ReturnTo;
use crate::http::upstream::{forwarding_headers, header_value, overrides_method, OriginHeaders};
use crate::http::Response;
use crate::jose::jws::UnverifiedJws;
use crate::oidc::provider::{Lookup, Refetch, SignedTokenError};
use crate::platform::Platform;
use crate::session::store::{Loaded, SessionObjects, Unloaded};
use crate::session::NoSession;

/// A decision, as the access log line says it.
enum Verdict {
    Allow,
    Deny,
    /// Signing in again with this would meet the rule.
    StepUp(StepUp),
}

impl Verdict {
    fn as_str(&self) -> &'static str {
        match self {
            Self::Allow => "allow",
            Self::Deny => "deny",
            Self::StepUp(_) => "step_up",
        }
    }
}

impl<P: Platform + SessionObjects> Gate<'_, P> {
    pub(super) async fn protect(
        &self,
        req: &GateRequest,
        jar: &CookieJar,
        path: &RequestPath,
    ) -> Outcome {
        // The policy and the routes judge the resource the upstream will serve (static assets
        // serve one file under several paths); the upstream receives `path` itself.
        let rule = self.cfg.policy.rule_for(path);
        if rule.is_public() {
            let headers = self
                .upstream_reads_headers()
                .then(|| self.stripped_headers(req, jar));
            return self.forward(path, headers, false, Vec::new());
        }
        if let Some(api) = &self.cfg.api {
            let route = api.route_for(req.method, path);
            // A method override in the query (`_method`, read by Express, Laravel, Symfony,
            // Rails; in every spelling PHP turns into it) would make the origin see another
            // method than the one judged.
            let override_asked = || req.url.query_pairs().any(|(k, _)| overrides_method(&k));
            if route != RouteMatch::None && override_asked() {
                return Outcome::Respond(self.fail(req, GateError::MethodOverride));
            }
            let route = match route {
                RouteMatch::Route(r) => Some(r),
                RouteMatch::None => None,
                RouteMatch::MethodNotListed { allow } => {
                    return Outcome::Respond(self.fail(req, GateError::ApiMethodNotListed(allow)))
                }
            };
            match bearer_credential(&req.headers) {
                Credential::Bearer(token) => {
                    return match self.bearer(req, jar, path, rule, route, token).await {
                        Ok(outcome) => outcome,
                        Err(e) => Outcome::Respond(self.fail(req, e)),
                    }
                }
                Credential::Malformed => {
                    return Outcome::Respond(self.fail(req, GateError::BearerMalformed))
                }
                Credential::None if route.is_some() => {
                    return Outcome::Respond(self.fail(req, GateError::BearerMissing))
                }
                Credential::None => {}
            }
        }
        match self.sessions(req, jar).load(true).await {
            Ok(loaded) => self.authorize_session(req, jar, path, rule, loaded).await,
            Err(Unloaded {
                why: NoSession::StoreUnavailable,
                ..
            }) => Outcome::Respond(self.fail(
                req,
                GateError::SessionStoreUnavailable("see the session_store_failed line".into()),
            )),
            Err(gone) => Outcome::Respond(self.unauthenticated(req, rule, gone)),
        }
    }

    /// A signed-in person: the path's rule decides; forwarded with identity (and the access
    /// token, when `PASS_ACCESS_TOKEN` says), or a 403.
    async fn authorize_session(
        &self,
        req: &GateRequest,
        jar: &CookieJar,
        path: &RequestPath,
        rule: &Rule,
        loaded: Loaded,
    ) -> Outcome {
        let Loaded {
            session,
            set_cookies,
        } = loaded;
        let who = Principal::Session(&session);
        match self.decide(path, rule, &who) {
            Verdict::Allow => {}
            Verdict::StepUp(ask) => {
                return Outcome::Respond(with_cookies(self.step_up(req, &ask), set_cookies))
            }
            Verdict::Deny => {
                let forbidden = GateError::Forbidden {
                    who: session.shown_as().to_owned(),
                    sub: who.user().into_owned(),
                    others: self.other_providers(req, rule, &session.provider),
                    groups_unresolved: session.groups_unresolved,
                };
                let resp = forbidden.to_response(req.wants_html(), &self.cfg.auth_prefix);
                return Outcome::Respond(with_cookies(resp, set_cookies));
            }
        }
        if !self.upstream_reads_headers() {
            return self.forward(path, None, true, set_cookies);
        }
        let mut headers = match self.origin_headers(req, jar, &who).await {
            Ok(headers) => headers,
            Err(e) => return Outcome::Respond(with_cookies(self.fail(req, e), set_cookies)),
        };
        if self.cfg.pass_access_token == Some(PassAccessToken::Authorization) {
            // The origin takes Authorization for the gate's: a client's own (Basic, DPoP) never
            // goes on with a session, live access token or not. (stripped_headers leaves it
            // when APIs are on: on an API request it is the client's credential.)
            headers.remove(&req.headers, "Authorization");
        }
        let live_token = session.live_access_token(self.platform.now());
        if let (Some(how), Some(token)) = (self.cfg.pass_access_token, live_token) {
            match how {
                PassAccessToken::Authorization => {
                    headers.set(&req.headers, "Authorization", format!("Bearer {token}"))
                }
                PassAccessToken::XForwardedAccessToken => {
                    headers.set(&req.headers, "X-Forwarded-Access-Token", token)
                }
            }
        }
        self.forward(path, Some(headers), true, set_cookies)
    }

    /// Sign-in links for the providers other than `current` that `rule` accepts (all of
    /// them when it names none), coming back to this page.
    fn other_providers(
        &self,
        req: &GateRequest,
        rule: &Rule,
        current: &ProviderId,
    ) -> Vec<(String, String)> {
        let accepted = rule.providers();
        let here = req.url.path();
        self.cfg
            .providers
            .iter()
            .filter(|p| &p.id != current)
            .filter(|p| accepted.as_ref().is_none_or(|a| a.contains(&p.id.as_str())))
            .map(|p| {
                let href = self.login_href_at(Some(&p.id), Some(here));
                (format!("Sign in with {}", p.name), href)
            })
            .collect()
    }

    /// Whether the upstream reads the request headers the gate strips and sets (identity,
    /// forwarding, the signed assertion, the access token). Static assets read none of them:
    /// a request goes to them with its headers as they came, and none of that work is done.
    fn upstream_reads_headers(&self) -> bool {
        !matches!(self.cfg.upstream, Upstream::Assets)
    }

    fn forward(
        &self,
        path: &RequestPath,
        headers: Option<OriginHeaders>,
        protected: bool,
        set_cookies: Vec<String>,
    ) -> Outcome {
        Outcome::Forward {
            path: path.as_str().to_owned(),
            headers,
            protected,
            set_cookies,
        }
    }

    /// A signed-in person whose sign-in is not strong or recent enough: browsers navigating
    /// sign in again with `ask` and come back; programs get a 401 saying where.
    fn step_up(&self, req: &GateRequest, ask: &StepUp) -> Response {
        if let Some(page) = self.keep_form(req, Some(ask)) {
            return page;
        }
        let here = req.path_and_query();
        if req.is_navigation() {
            return Response::redirect(&self.login_href_step_up(Some(&here), Some(ask)));
        }
        let e = GateError::StepUpRequired {
            login_url: self.login_href_step_up(Some(&here), Some(ask)),
        };
        e.to_response(false, &self.cfg.auth_prefix)
    }

    /// No live session: browsers navigating go to sign-in; programs get a 401.
    pub(super) fn unauthenticated(
        &self,
        req: &GateRequest,
        rule: &Rule,
        gone: Unloaded,
    ) -> Response {
        let Unloaded { why, set_cookies } = gone;
        if why != NoSession::NoCookie {
            self.platform.log_json(log_line!("level":"info","event":"session_rejected","path":req.url.path(),"reason":format!("{why:?}")));
        }
        // A path only a step-up can pass asks for it in the first sign-in already.
        let ask = rule.sign_in_step_up();
        let resp = if let Some(page) = self.keep_form(req, ask.as_ref()) {
            page
        } else if req.is_navigation() {
            let here = req.path_and_query();
            Response::redirect(&self.login_href_step_up(Some(&here), ask.as_ref()))
        } else {
            let e = GateError::SignInRequired {
                description: "Sign in first.",
                login_url: self.login_href(None),
            };
            e.to_response(false, &self.cfg.auth_prefix)
        };
        with_cookies(resp, set_cookies)
    }

    /// A browser's form posted without a session good enough for it: what was typed goes back
    /// to the browser, which keeps it through sign-in and posts it again once
    /// ([`form_replay`]). `None` for anything else, cross-site forms included (they keep the
    /// 401): a form from another site is never sent again on this one.
    fn keep_form(&self, req: &GateRequest, ask: Option<&StepUp>) -> Option<Response> {
        if !req.is_form_navigation() || !req.is_same_origin() {
            return None;
        }
        let path = req.url.path().chars().take(200).collect::<String>();
        let here = ReturnTo::parse(Some(&req.path_and_query()), &self.cfg.auth_prefix);
        let content_type = req.headers.get("Content-Type").unwrap_or_default();
        let form = match (self.cfg.form_replay_max_bytes, &req.body) {
            (0, _) => Err("FORM_REPLAY_MAX_BYTES is 0".to_owned()),
            (_, None) => Err(format!(
                "larger than FORM_REPLAY_MAX_BYTES ({}) or without Content-Length",
                self.cfg.form_replay_max_bytes
            )),
            (_, Some(body)) => Form::parse(content_type, body).map_err(|e| e.to_string()),
        };
        let (nonce, id) = (random_token(), random_token());
        match (form, nonce, id) {
            // Only to exactly where it was posted: a path and query `return_to` would change
            // (too long, control characters) is not kept.
            (Ok(form), Ok(nonce), Ok(id)) if here.as_str() == req.path_and_query() => {
                let login = self.login_href_with(None, Some(here.as_str()), ask, Some(&id));
                self.platform.log_json(
                    LogLine::new()
                        .str("level", "info")
                        .str("event", "form_kept")
                        .str("path", &path)
                        .num("fields", form.fields.len() as u64)
                        .finish(),
                );
                Some(form_replay::keep_page(
                    &form,
                    here.as_str(),
                    &id,
                    &login,
                    &nonce,
                ))
            }
            (form, _, _) => {
                let why = form
                    .err()
                    .unwrap_or_else(|| "cannot be sent again here".into());
                self.platform.log_json(
                    LogLine::new()
                        .str("level", "info")
                        .str("event", "form_not_kept")
                        .str("path", &path)
                        .str("reason", &why)
                        .finish(),
                );
                let login = self.login_href_step_up(None, ask);
                Some(page(
                    401,
                    "Sign in to continue",
                    &[
                        "Your session has ended, and this form could not be kept while you sign in (it is too large, not UTF-8, or not a plain form).",
                        "Go back, copy what you typed, then sign in and send it again.",
                    ],
                    &[Action::Link {
                        href: &login,
                        label: "Sign in",
                    }],
                ))
            }
        }
    }

    /// Judges and writes the one log line every decision gets.
    fn decide(&self, path: &RequestPath, rule: &Rule, who: &Principal<'_>) -> Verdict {
        let now = self.platform.now();
        let (verdict, reason) =
            match self
                .cfg
                .policy
                .judge(rule, &who.identity(&self.cfg.providers), now)
            {
                Decision::Allow { reason } => (Verdict::Allow, reason),
                Decision::Deny { reason } => (Verdict::Deny, reason),
                Decision::StepUp { reason, ask } => (Verdict::StepUp(ask), reason),
            };
        self.log_access(path, &who.user(), &rule.name, &verdict, &reason);
        verdict
    }

    fn log_access(
        &self,
        path: &RequestPath,
        sub: &str,
        rule: &str,
        verdict: &Verdict,
        reason: &str,
    ) {
        let wanted = match self.cfg.access_log {
            AccessLog::All => true,
            AccessLog::Deny => !matches!(verdict, Verdict::Allow),
            AccessLog::None => false,
        };
        if !wanted {
            return;
        }
        let path = path.as_str();
        let path = path
            .char_indices()
            .nth(200)
            .map_or(path, |(cut, _)| &path[..cut]);
        self.platform.log_json(
            LogLine::new()
                .str("event", "access")
                .num("time", self.platform.now().as_secs())
                .str("path", path)
                .str("sub", sub)
                .str("rule", rule)
                .str("outcome", verdict.as_str())
                .str("reason", reason)
                .finish(),
        );
    }

    /// The request headers for the origin: inbound identity stripped, the real one set.
    async fn origin_headers(
        &self,
        req: &GateRequest,
        jar: &CookieJar,
        who: &Principal<'_>,
    ) -> Result<OriginHeaders, GateError> {
        let mut headers = self.stripped_headers(req, jar);
        let ids = &self.cfg.identity_headers;
        if let Some(h) = &ids.user {
            headers.set(&req.headers, h, header_value(&who.user()));
        }
        // The identity is iss + sub; an email travels only when the provider vouches for it.
        let email = self
            .cfg
            .policy
            .vouched_email(&who.identity(&self.cfg.providers));
        if let (Some(h), Some(email)) = (&ids.email, email) {
            headers.set(&req.headers, h, header_value(email.address));
        }
        if let Some(h) = ids.groups.as_ref().filter(|_| !who.groups().is_empty()) {
            let groups: Vec<String> = who
                .groups()
                .iter()
                .map(|g| header_value(g).replace(',', "%2C"))
                .collect();
            headers.set(&req.headers, h, groups.join(","));
        }
        if let Some(signer) = &self.cfg.assertion {
            let subject = who.subject(email);
            let now = self.platform.now();
            let assertion = signer
                .assertion(self.platform.verifier(), &req.origin(), &subject, now)
                .await
                .map_err(|e| GateError::Internal(format!("signing the identity assertion: {e}")))?;
            headers.set(&req.headers, &signer.header, assertion);
        }
        Ok(headers)
    }

    /// The request headers without anything the origin could take for identity from us.
    pub(super) fn stripped_headers(&self, req: &GateRequest, jar: &CookieJar) -> OriginHeaders {
        let ids = &self.cfg.identity_headers;
        let configured: Vec<&str> = [
            ids.user.as_deref(),
            ids.email.as_deref(),
            ids.groups.as_deref(),
            self.cfg.assertion.as_ref().map(|a| a.header.as_str()),
        ]
        .into_iter()
        .flatten()
        .collect();
        let mut headers = OriginHeaders::strip(&req.headers, jar, &configured);
        for (name, value) in forwarding_headers(&req.url, req.headers.get("CF-Connecting-IP")) {
            headers.set(&req.headers, name, value);
        }
        // With Bearer tokens accepted, Authorization is the client's API credential.
        if self.cfg.pass_access_token == Some(PassAccessToken::Authorization)
            && self.cfg.api.is_none()
        {
            // The origin treats Authorization as coming from us: never pass the client's own.
            headers.remove(&req.headers, "Authorization");
        }
        headers
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
    ) -> Result<Outcome, GateError> {
        let now = self.platform.now();
        let digest = token_cache::digest(token);
        let verified = match self.tokens.get(&digest, now) {
            Some(t) => t,
            None => {
                let t = self.verify_access_token(token, now).await?;
                self.tokens.insert(digest, t)
            }
        };
        let signer = self
            .cfg
            .providers
            .iter()
            .find(|p| p.issuer == verified.issuer);
        let who = Principal::Token(&verified, digest, signer.map(|p| &p.id));
        match route {
            Some(route) => match route.judge(&verified) {
                Ok(reason) => {
                    self.log_access(path, &who.user(), &route.name, &Verdict::Allow, &reason)
                }
                Err(wanted) => {
                    let why = "insufficient scope";
                    self.log_access(path, &who.user(), &route.name, &Verdict::Deny, why);
                    return Ok(Outcome::Respond(
                        GateError::InsufficientScope(wanted.0).to_response(false, ""),
                    ));
                }
            },
            None => match self.decide(path, rule, &who) {
                Verdict::Allow => {}
                Verdict::Deny => {
                    return Ok(Outcome::Respond(
                        GateError::TokenForbidden.to_response(false, ""),
                    ))
                }
                // RFC 9470: the client gets a new token from a sign-in that asks for this.
                Verdict::StepUp(ask) => {
                    let e = GateError::InsufficientUserAuthentication {
                        acr_values: (!ask.acr.is_empty()).then(|| ask.acr.join(" ")),
                        max_age: ask.max_age,
                    };
                    return Ok(Outcome::Respond(e.to_response(false, "")));
                }
            },
        }
        let headers = if self.upstream_reads_headers() {
            Some(self.origin_headers(req, jar, &who).await?)
        } else {
            None
        };
        Ok(self.forward(path, headers, true, Vec::new()))
    }

    async fn verify_access_token(
        &self,
        token: &str,
        now: UnixTime,
    ) -> Result<VerifiedAccessToken, GateError> {
        let invalid = |public: &'static str| GateError::TokenRejected {
            public,
            log: public.to_owned(),
        };
        let api = self
            .cfg
            .api
            .as_ref()
            .ok_or_else(|| invalid("Bearer tokens are not accepted here"))?;
        let jws = UnverifiedJws::parse(token).map_err(|e| GateError::TokenRejected {
            public: "The token is malformed or uses a refused algorithm.",
            log: e.to_string(),
        })?;
        // Only trusted issuers' keys are ever fetched: the issuer is checked before any I/O.
        let iss = jws
            .unverified_issuer()
            .ok_or_else(|| invalid("the token has no issuer"))?;
        // A listed issuer, or one of a multi-tenant API's allowed tenants.
        let exact = api.issuers.iter().find(|i| i.as_str() == iss);
        let tenant = match exact {
            Some(_) => None,
            None => Some(
                self.cfg
                    .api_tenancy
                    .as_ref()
                    .and_then(|t| t.tenant_of(&iss))
                    .ok_or_else(|| invalid("the token's issuer is not trusted"))?
                    .to_owned(),
            ),
        };
        let issuer = exact.cloned().unwrap_or_else(|| Issuer::new(iss.as_str()));
        let issuer = &issuer;
        // A tenant is named by a token nobody has verified yet: its documents are kept apart
        // and fetched under a budget, until a token of it verifies.
        let lookup = match tenant {
            None => Lookup::Configured,
            Some(_) => self.cache.tenant_lookup(issuer, now),
        };
        let meta = self
            .cache
            .issuer_metadata(self.platform, issuer, lookup)
            .await
            .map_err(|e| GateError::TokenKeysUnavailable(format!("{e:?}")))?;
        let verified = self
            .cache
            .verify_as(
                self.platform,
                &meta.jwks_uri,
                jws,
                Refetch::RateLimited,
                lookup,
            )
            .await
            .map_err(|e| match e {
                SignedTokenError::Provider(p) => GateError::TokenKeysUnavailable(format!("{p:?}")),
                SignedTokenError::Key(_) => invalid("no signing key of the issuer fits the token"),
                SignedTokenError::Signature(_) => invalid("the signature does not verify"),
            })?;
        // A tenant's token must be that tenant's: its `tid` is the one its `iss` names.
        if let Some(tid) = &tenant {
            let claims: serde_json::Value =
                serde_json::from_slice(verified.payload()).unwrap_or_default();
            if claims["tid"].as_str() != Some(tid.as_str()) {
                return Err(invalid("the token's tid is not the tenant of its issuer"));
            }
        }
        let issuers = [issuer.clone()];
        let expect = AccessExpectations {
            issuers: &issuers,
            audiences: &api.audiences,
            typ: api.typ,
            now,
        };
        let token = access_token::validate(&verified, &expect, &self.cfg.list_claims)
            .map_err(|e| invalid(e.as_str()))?;
        if tenant.is_some() {
            self.cache.tenant_verified(issuer);
        }
        Ok(token.of_tenant(tenant))
    }
}
