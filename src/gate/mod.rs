//! The gate: what to do with one request. Plain Rust over plain data; the platform does I/O.

pub mod error;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde_json::json;
use url::Url;

use crate::access::access_token::{self, AccessExpectations, ListClaims, VerifiedAccessToken};
use crate::access::api::ApiRoute;
use crate::access::assertion::Subject;
use crate::config::SessionStore;
use crate::config::{is_loopback_host, Config};
use crate::config::{AccessLog, PassAccessToken};
use crate::http::cookies::{parse_cookie_header, CookieJar};
use crate::gate::error::GateError;
use crate::http::{Headers, Method, Response};
use crate::oidc::id_token;
use crate::jose::jws::{self, UnverifiedJws};
use crate::oidc::logout_token;
use crate::http::pages::{page, Action};
use crate::http::path::RequestPath;
use crate::platform::Platform;
use crate::access::policy::{Decision, Identity, Rule};
use crate::oidc::provider::{KeyLookupError, ProviderCache, ProviderError};
use crate::base::random::random_bytes;
use crate::session::refresh::{refresh_session, verify_id_token, IdTokenCheck, RefreshCoalescer};
use crate::http::return_to::ReturnTo;
use crate::session::seal::Purpose;
use crate::session::{binding, open_session, NoSession, Session, SessionSealError};
use crate::session::{ClaimNames, SessionCookie, SessionTokens, StoredSecret};
use crate::session::durable_object::{sid_object, user_object, StoreAnswer, StoreCall, StoreRef};
use crate::access::token_cache::TokenCache;
use crate::oidc::token_endpoint::{printable, TokenError, TokenResponse};
use crate::oidc::transaction::{
    CallbackError, CallbackParams, CodeExchange, LoginTransaction, MAX_LIVE_TRANSACTIONS,
    TRANSACTION_TTL_SECS,
};
use crate::base::types::Issuer;
use crate::base::types::State;
use crate::http::upstream::{header_value, request_headers_for_origin};

pub struct GateRequest {
    pub method: Method,
    pub url: Url,
    pub headers: Headers,
    /// The body, read by the shell only for the routes that take one
    /// (back-channel logout).
    pub body: Option<String>,
}

/// What the shell does next.
#[derive(Debug)]
pub enum Outcome {
    Respond(Response),
    /// Pass to the upstream at `path` (the normalized path the policy judged) with these
    /// request headers; `protected` responses are made private and get `set_cookies`
    /// (a rewritten session: refreshed tokens, a moved idle timer).
    Forward {
        path: String,
        headers: Headers,
        protected: bool,
        set_cookies: Vec<String>,
    },
}

/// A live session, and the `Set-Cookie` values that go with the answer.
struct Loaded {
    session: Session,
    set_cookies: Vec<String>,
}

/// No session, and the `Set-Cookie` values that clear what is left of one.
struct Unloaded {
    why: NoSession,
    set_cookies: Vec<String>,
}

impl Unloaded {
    /// An unreadable cookie is deleted; no cookie, nothing to delete.
    fn clearing(why: NoSession, jar: &CookieJar, cookie: &SessionCookie) -> Self {
        let set_cookies = if why == NoSession::NoCookie {
            Vec::new()
        } else {
            cookie.delete(jar)
        };
        Self { why, set_cookies }
    }

    fn quiet(why: NoSession) -> Self {
        Self {
            why,
            set_cookies: Vec::new(),
        }
    }
}

/// The state of an RP-initiated logout, sealed in a cookie until the provider sends the
/// browser back.
#[derive(serde::Serialize, serde::Deserialize)]
struct LogoutState {
    state: State,
    exp: u64,
}

const LOGOUT_STATE_TTL_SECS: u64 = 600;

pub struct Gate<'a, P: Platform> {
    pub cfg: &'a Config,
    pub cache: &'a ProviderCache,
    pub tokens: &'a TokenCache,
    pub refreshes: &'a RefreshCoalescer,
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
                "/logged-out" => return Outcome::Respond(self.logged_out(req, &jar)),
                "/userinfo" => self.userinfo(req, &jar).await,
                "/backchannel-logout" => {
                    return Outcome::Respond(self.backchannel_logout(req).await)
                }
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
                set_cookies: Vec::new(),
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
        match self.load_session(req, &jar, true).await {
            Ok(loaded) => self.authorize(req, &jar, &path, rule, loaded),
            Err(Unloaded {
                why: NoSession::StoreUnavailable,
                ..
            }) => Outcome::Respond(self.fail(
                req,
                GateError::SessionStoreUnavailable("see the session_store_failed line".into()),
            )),
            Err(gone) => Outcome::Respond(self.unauthenticated(req, gone)),
        }
    }

    /// Applies the path's rule to a signed-in person: 403, or forward with identity.
    fn authorize(
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
        let who = Identity {
            email: session.email.as_deref(),
            email_verified: session.email_verified,
            groups: &session.groups,
            roles: &session.roles,
        };
        if let Decision::Deny { .. } = self.decide(path, rule, &session.sub, &who) {
            let mut resp = self.forbidden(req, &session);
            for c in set_cookies {
                resp.headers.append("Set-Cookie", c);
            }
            return Outcome::Respond(resp);
        }
        let mut headers = self.origin_headers(req, jar, &session.subject());
        let live_token = session.live_access_token(self.platform.now());
        if let (Some(how), Some(token)) = (self.cfg.pass_access_token, live_token) {
            match how {
                PassAccessToken::Authorization => {
                    headers.set("Authorization", format!("Bearer {token}"))
                }
                PassAccessToken::XForwardedAccessToken => {
                    headers.set("X-Forwarded-Access-Token", token)
                }
            }
        }
        Outcome::Forward {
            path: path.as_str().to_owned(),
            headers,
            protected: true,
            set_cookies,
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
            set_cookies: Vec::new(),
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

    /// The request's session: opened from its cookie (or, for server-side sessions, fetched
    /// from its object), checked against both lifetimes, and refreshed when `refresh` allows
    /// and it is due. Concurrent refreshes of one cookie session share one provider call.
    async fn load_session(
        &self,
        req: &GateRequest,
        jar: &CookieJar,
        refresh: bool,
    ) -> Result<Loaded, Unloaded> {
        let cookie = SessionCookie::from_header(jar, req.headers.get("Cookie"));
        let now = self.platform.now();
        if self.cfg.session_store == SessionStore::DurableObject {
            let store_ref = self
                .open_store_ref(jar, &cookie)
                .map_err(|why| Unloaded::clearing(why, jar, &cookie))?;
            // A plain read first; only a due refresh goes through the object's one-at-a-time
            // path (which reads again, so a refresh another request just did is not redone).
            let mut answer = self
                .platform
                .session_store(
                    &store_ref.object,
                    StoreCall::Load {
                        id: store_ref.id.clone(),
                    },
                )
                .await;
            if let Ok(StoreAnswer::Session(Some(s))) = &answer {
                if refresh && s.needs_refresh(now, self.cfg.refresh_margin_secs) {
                    answer = self
                        .platform
                        .session_store(&store_ref.object, StoreCall::Refresh { id: store_ref.id })
                        .await;
                }
            }
            return match answer {
                Ok(StoreAnswer::Session(Some(session))) => {
                    match session.check(now, &self.cfg.issuer, None) {
                        Ok(()) => Ok(Loaded {
                            session: *session,
                            set_cookies: Vec::new(),
                        }),
                        Err(why) => Err(Unloaded {
                            why,
                            set_cookies: cookie.delete(jar),
                        }),
                    }
                }
                Ok(StoreAnswer::Session(None)) => Err(Unloaded {
                    why: NoSession::Ended,
                    set_cookies: cookie.delete(jar),
                }),
                Ok(other) => {
                    self.platform.log(&json!({"level":"error","event":"session_store_failed","detail":format!("unexpected answer {other:?}")}));
                    Err(Unloaded::quiet(NoSession::StoreUnavailable))
                }
                Err(e) => {
                    self.platform
                        .log(&json!({"level":"error","event":"session_store_failed","detail":e}));
                    Err(Unloaded::quiet(NoSession::StoreUnavailable))
                }
            };
        }
        let mut session = open_session(&self.cfg.sealer, jar, &cookie, &self.cfg.client_id)
            .map_err(|why| Unloaded::clearing(why, jar, &cookie))?;
        if let Err(why) = session.check(now, &self.cfg.issuer, self.cfg.session_idle_secs) {
            return Err(Unloaded {
                why,
                set_cookies: cookie.delete(jar),
            });
        }
        let mut changed = false;
        if refresh && session.needs_refresh(now, self.cfg.refresh_margin_secs) {
            let spent = session
                .tokens
                .refresh_token
                .as_ref()
                .map(|t| t.secret().to_owned())
                .unwrap_or_default();
            let current = session.clone();
            let result = self
                .refreshes
                .run(self.platform, &spent, now, || {
                    refresh_session(self.cfg, self.cache, self.platform, &current)
                })
                .await;
            match result {
                Ok(next) => {
                    self.platform
                        .log(&json!({"level":"info","event":"session_refreshed","sub":next.sub}));
                    session = next;
                    changed = true;
                }
                Err(e) if e.ends_session() => {
                    // Another isolate may have spent this refresh token for a request that
                    // raced this one; while the access token lasts, this request goes on.
                    if session.tokens.access_expires_at.is_some_and(|e| e > now) {
                        self.platform.log(&json!({"level":"warn","event":"refresh_refused_session_kept","sub":session.sub,"detail":e.detail()}));
                    } else {
                        self.platform.log(&json!({"level":"info","event":"session_ended","sub":session.sub,"reason":"refresh refused","detail":e.detail()}));
                        return Err(Unloaded {
                            why: NoSession::Ended,
                            set_cookies: cookie.delete(jar),
                        });
                    }
                }
                Err(e) => {
                    self.platform.log(&json!({"level":"warn","event":"refresh_unavailable","sub":session.sub,"detail":e.detail()}));
                }
            }
        }
        changed |= session.touch(now, self.cfg.session_idle_secs);
        if !changed {
            return Ok(Loaded {
                session,
                set_cookies: Vec::new(),
            });
        }
        match self.cookie_session(jar, session.clone(), &cookie.chunks, now) {
            Ok((session, set_cookies)) => Ok(Loaded {
                session,
                set_cookies,
            }),
            Err(e) => {
                // The session still holds for this request; a later one tries again.
                self.platform.log(&json!({"level":"error","event":"session_rewrite_failed","detail":e.log_detail()}));
                Ok(Loaded {
                    session,
                    set_cookies: Vec::new(),
                })
            }
        }
    }

    fn open_store_ref(
        &self,
        jar: &CookieJar,
        cookie: &SessionCookie,
    ) -> Result<StoreRef, NoSession> {
        let value = cookie.sealed.as_deref().ok_or(NoSession::NoCookie)?;
        self.cfg
            .sealer
            .open_json(
                Purpose::Session,
                &binding(&jar.session_name(), &self.cfg.client_id),
                value,
            )
            .map_err(|_| NoSession::Unreadable)
    }

    /// Seals a session into its cookies (chunked when large), deleting stale chunks.
    fn cookie_session(
        &self,
        jar: &CookieJar,
        session: Session,
        present_chunks: &[usize],
        now: u64,
    ) -> Result<(Session, Vec<String>), GateError> {
        let name = jar.session_name();
        let (session, sealed) = session
            .seal(&self.cfg.sealer, &name, &self.cfg.client_id)
            .map_err(|e| match e {
                SessionSealError::TooLarge => {
                    GateError::Internal("the session does not fit in its cookies".into())
                }
                SessionSealError::Seal(e) => {
                    GateError::Internal(format!("sealing the session: {e:?}"))
                }
            })?;
        let max_age = session.exp.saturating_sub(now);
        let cookies = jar
            .set_chunked(&name, &sealed, max_age, present_chunks)
            .ok_or_else(|| GateError::Internal("the session does not fit in its cookies".into()))?;
        Ok((session, cookies))
    }

    /// Starts a new session after sign-in: the cookies that hold it (or, for server-side
    /// sessions, refer to it).
    async fn start_session(
        &self,
        req: &GateRequest,
        jar: &CookieJar,
        session: Session,
        now: u64,
    ) -> Result<(Session, Vec<String>), GateError> {
        let present = SessionCookie::from_header(jar, req.headers.get("Cookie")).chunks;
        if self.cfg.session_store == SessionStore::Cookie {
            return self.cookie_session(jar, session, &present, now);
        }
        let id = URL_SAFE_NO_PAD.encode(
            random_bytes::<32>().map_err(|e| GateError::Internal(format!("random: {e:?}")))?,
        );
        let object = user_object(&session.iss, &session.sub);
        let store_err = |e: String| GateError::SessionStoreUnavailable(e);
        self.platform
            .session_store(
                &object,
                StoreCall::Create {
                    id: id.clone(),
                    session: Box::new(session.clone()),
                },
            )
            .await
            .map_err(store_err)?;
        if let Some(sid) = &session.provider_sid {
            self.platform
                .session_store(
                    &sid_object(&session.iss, sid),
                    StoreCall::Link {
                        user: object.clone(),
                    },
                )
                .await
                .map_err(store_err)?;
        }
        let name = jar.session_name();
        let sealed = self
            .cfg
            .sealer
            .seal_json(
                Purpose::Session,
                &binding(&name, &self.cfg.client_id),
                &StoreRef { object, id },
            )
            .map_err(|e| GateError::Internal(format!("sealing the session reference: {e:?}")))?;
        let cookies = jar
            .set_chunked(&name, &sealed, session.exp.saturating_sub(now), &present)
            .ok_or_else(|| GateError::Internal("the session reference does not fit".into()))?;
        Ok((session, cookies))
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

    fn unauthenticated(&self, req: &GateRequest, gone: Unloaded) -> Response {
        let Unloaded { why, set_cookies } = gone;
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
        for c in set_cookies {
            resp.headers.append("Set-Cookie", c);
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

    async fn metadata(&self) -> Result<std::rc::Rc<crate::oidc::discovery::ProviderMetadata>, GateError> {
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
        let session_tokens = SessionTokens {
            access_token: self
                .cfg
                .pass_access_token
                .and(tokens.access_token.as_ref())
                .map(|t| StoredSecret::new(t.secret().clone())),
            access_expires_at: tokens.expires_in.map(|e| now.saturating_add(e)),
            refresh_token: tokens
                .refresh_token
                .as_ref()
                .map(|t| StoredSecret::new(t.secret().clone())),
            // Only for `id_token_hint` at the provider's logout.
            id_token: meta
                .end_session_endpoint
                .as_ref()
                .map(|_| StoredSecret::new(tokens.id_token.secret().clone())),
        };
        let session = Session::from_id_token(
            verified,
            &names,
            session_tokens,
            now,
            self.cfg.session_ttl_secs,
        );
        let (session, cookies) = self.start_session(req, jar, session, now).await?;
        self.platform.log(&json!({
            "level":"info","event":"sign_in","iss":session.iss.as_str(),"sub":session.sub,
            "groups_omitted":session.groups_omitted,
            "refresh_token":session.tokens.refresh_token.is_some(),
        }));
        let return_to = ReturnTo::from_trusted(&exchange.return_to, &self.cfg.auth_prefix);
        let mut resp = Response::redirect(return_to.as_str());
        for c in cookies {
            resp.headers.append("Set-Cookie", c);
        }
        Ok(resp)
    }

    async fn verify_id_token(
        &self,
        tokens: &TokenResponse,
        exchange: &CodeExchange,
        jwks_uri: &str,
        now: u64,
    ) -> Result<id_token::VerifiedIdToken, GateError> {
        let check = IdTokenCheck {
            raw: tokens.id_token.secret(),
            jwks_uri,
            nonce: Some(&exchange.nonce),
            access_token: tokens.access_token.as_ref().map(|t| t.secret().as_str()),
            now,
        };
        verify_id_token(self.cfg, self.cache, self.platform, check).await
    }

    async fn logout(&self, req: &GateRequest, jar: &CookieJar) -> Result<Response, GateError> {
        match req.method {
            Method::Get | Method::Head => {
                let signed_in = self.load_session(req, jar, false).await.ok();
                let who = signed_in
                    .as_ref()
                    .and_then(|l| l.session.email.clone().or(l.session.name.clone()))
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
                Ok(self.sign_out(req, jar).await)
            }
            _ => Err(GateError::MethodNotAllowed),
        }
    }

    /// Ends the session here whatever the provider does, revokes its refresh token, and sends
    /// the browser to the provider's logout (RP-Initiated Logout 1.0) when it has one.
    async fn sign_out(&self, req: &GateRequest, jar: &CookieJar) -> Response {
        let cookie = SessionCookie::from_header(jar, req.headers.get("Cookie"));
        let ended = match self.cfg.session_store {
            SessionStore::Cookie => {
                open_session(&self.cfg.sealer, jar, &cookie, &self.cfg.client_id).ok()
            }
            SessionStore::DurableObject => match self.open_store_ref(jar, &cookie) {
                Ok(r) => match self
                    .platform
                    .session_store(&r.object, StoreCall::End { id: r.id })
                    .await
                {
                    Ok(StoreAnswer::Session(s)) => s.map(|s| *s),
                    Ok(_) => None,
                    Err(e) => {
                        self.platform.log(
                            &json!({"level":"error","event":"session_store_failed","detail":e}),
                        );
                        None
                    }
                },
                Err(_) => None,
            },
        };
        self.platform.log(
            &json!({"level":"info","event":"sign_out","sub":ended.as_ref().map(|s| s.sub.clone())}),
        );
        let mut set_cookies = cookie.delete(jar);
        let logged_out_path = self.cfg.auth_path("logged-out");
        let location = match self.metadata().await {
            Err(e) => {
                self.platform.log(
                    &json!({"level":"warn","event":"logout_local_only","detail":e.log_detail()}),
                );
                logged_out_path
            }
            Ok(meta) => {
                if let (Some(endpoint), Some(rt)) = (
                    meta.revocation_endpoint.as_deref(),
                    ended.as_ref().and_then(|s| s.tokens.refresh_token.as_ref()),
                ) {
                    self.revoke(endpoint, rt.secret()).await;
                }
                match meta
                    .end_session_endpoint
                    .as_deref()
                    .and_then(|e| Url::parse(e).ok())
                {
                    None => logged_out_path,
                    Some(mut end) => {
                        let ours = format!("{}{logged_out_path}", req.origin());
                        let post_logout = self
                            .cfg
                            .post_logout_redirect_uri
                            .as_ref()
                            .map_or_else(|| ours.clone(), Url::to_string);
                        {
                            let mut q = end.query_pairs_mut();
                            q.append_pair("client_id", self.cfg.client_id.as_str())
                                .append_pair("post_logout_redirect_uri", &post_logout);
                            if let Some(hint) =
                                ended.as_ref().and_then(|s| s.tokens.id_token.as_ref())
                            {
                                q.append_pair("id_token_hint", hint.secret());
                            }
                        }
                        // The state comes back to our logged-out page, which checks it.
                        if post_logout == ours {
                            if let Some(cookie) = self.logout_state_cookie(jar, &mut end) {
                                set_cookies.push(cookie);
                            }
                        }
                        end.to_string()
                    }
                }
            }
        };
        let mut resp = Response::redirect(&location);
        for c in set_cookies {
            resp.headers.append("Set-Cookie", c);
        }
        resp.headers.append("Clear-Site-Data", "\"cache\"");
        resp
    }

    /// Adds `state` to the provider's logout URL and returns the cookie that remembers it.
    fn logout_state_cookie(&self, jar: &CookieJar, end: &mut Url) -> Option<String> {
        let state = State::generate().ok()?;
        let name = jar.logout_name();
        let sealed = self
            .cfg
            .sealer
            .seal_json(
                Purpose::LoginTransaction,
                &name,
                &LogoutState {
                    state: state.clone(),
                    exp: self.platform.now().saturating_add(LOGOUT_STATE_TTL_SECS),
                },
            )
            .ok()?;
        end.query_pairs_mut().append_pair("state", state.as_str());
        Some(jar.set(&name, &sealed, LOGOUT_STATE_TTL_SECS))
    }

    /// RFC 7009: best effort; the session has ended here whatever the answer.
    async fn revoke(&self, endpoint: &str, refresh_token: &str) {
        let req = crate::oidc::transaction::client_request(
            self.cfg,
            endpoint,
            &[
                ("token", refresh_token),
                ("token_type_hint", "refresh_token"),
            ],
        );
        match self.platform.fetch(req).await {
            Ok(r) if r.status == 200 => self
                .platform
                .log(&json!({"level":"info","event":"refresh_token_revoked"})),
            Ok(r) => self
                .platform
                .log(&json!({"level":"warn","event":"revocation_failed","status":r.status})),
            Err(e) => self
                .platform
                .log(&json!({"level":"warn","event":"revocation_failed","detail":e})),
        }
    }

    /// Where the provider's logout sends the browser back: checks the `state` it carries
    /// against the one this browser's sign-out sent.
    fn logged_out(&self, req: &GateRequest, jar: &CookieJar) -> Response {
        if !matches!(req.method, Method::Get | Method::Head) {
            return self.fail(req, GateError::MethodNotAllowed);
        }
        let name = jar.logout_name();
        let sent = req.headers.get("Cookie").and_then(|h| {
            crate::http::cookies::parse_cookie_header(h)
                .into_iter()
                .find(|(n, _)| *n == name)
                .map(|(_, v)| v.to_owned())
        });
        let mut resp = match req.query("state") {
            None => self.logged_out_page(),
            Some(returned) => {
                let matches = sent
                    .as_deref()
                    .and_then(|v| {
                        self.cfg
                            .sealer
                            .open_json::<LogoutState>(Purpose::LoginTransaction, &name, v)
                            .ok()
                    })
                    .is_some_and(|s| s.exp > self.platform.now() && s.state.matches(&returned));
                if matches {
                    self.logged_out_page()
                } else {
                    self.fail(req, GateError::LogoutStateMismatch)
                }
            }
        };
        if sent.is_some() {
            resp.headers.append("Set-Cookie", jar.delete(&name));
        }
        resp
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

    async fn userinfo(&self, req: &GateRequest, jar: &CookieJar) -> Result<Response, GateError> {
        if !matches!(req.method, Method::Get | Method::Head) {
            return Err(GateError::MethodNotAllowed);
        }
        match self.load_session(req, jar, true).await {
            Ok(l) => {
                let mut resp = Response::json(200, &l.session.userinfo());
                resp.headers.set("Cache-Control", "no-store");
                for c in l.set_cookies {
                    resp.headers.append("Set-Cookie", c);
                }
                Ok(resp)
            }
            Err(Unloaded {
                why: NoSession::StoreUnavailable,
                ..
            }) => Err(GateError::SessionStoreUnavailable(
                "see the session_store_failed line".into(),
            )),
            Err(gone) => {
                let mut resp = Response::json(401, &json!({"error":"unauthenticated","error_description":"No session.","login_url":self.login_href(None)}))
                    .with_header("WWW-Authenticate", "Bearer realm=\"portcullis\"");
                for c in gone.set_cookies {
                    resp.headers.append("Set-Cookie", c);
                }
                Ok(resp)
            }
        }
    }

    /// OpenID Connect Back-Channel Logout 1.0: the provider POSTs a logout token; the sessions
    /// it names end. Needs server-side sessions: a cookie cannot be reached from here.
    async fn backchannel_logout(&self, req: &GateRequest) -> Response {
        let answer = |status: u16, error: &str, why: &str| {
            let mut r = if error.is_empty() {
                Response::new(status)
            } else {
                Response::json(status, &json!({"error": error, "error_description": why}))
            };
            r.headers.set("Cache-Control", "no-store");
            r
        };
        if req.method != Method::Post {
            return answer(405, "invalid_request", "Back-channel logout takes a POST.");
        }
        if self.cfg.session_store != SessionStore::DurableObject {
            self.platform.log(&json!({"level":"warn","event":"backchannel_logout_refused","reason":"SESSION_STORE is not durable_object"}));
            return answer(
                501,
                "not_supported",
                "Back-channel logout needs SESSION_STORE=durable_object.",
            );
        }
        let token = req.body.as_deref().and_then(|b| {
            url::form_urlencoded::parse(b.as_bytes())
                .find(|(k, _)| k == "logout_token")
                .map(|(_, v)| v.into_owned())
        });
        let refuse = |why: String| {
            self.platform
                .log(&json!({"level":"warn","event":"backchannel_logout_refused","reason":why}));
            answer(400, "invalid_request", &why)
        };
        let Some(token) = token else {
            return refuse("no logout_token in the form body".into());
        };
        let jws = match UnverifiedJws::parse(&token) {
            Ok(j) => j,
            Err(e) => return refuse(format!("logout_token: {e}")),
        };
        let meta = match self.metadata().await {
            Ok(m) => m,
            Err(e) => {
                self.platform.log(&json!({"level":"error","event":"backchannel_logout_failed","detail":e.log_detail()}));
                return answer(
                    503,
                    "temporarily_unavailable",
                    "The provider's keys cannot be fetched.",
                );
            }
        };
        let key = match self
            .cache
            .key_for(self.platform, &meta.jwks_uri, &jws.header)
            .await
        {
            Ok(k) => k,
            Err(KeyLookupError::Key(k)) => {
                return refuse(format!("no provider key fits the logout token ({k:?})"))
            }
            Err(KeyLookupError::Provider(p)) => {
                self.platform.log(&json!({"level":"error","event":"backchannel_logout_failed","detail":format!("{p:?}")}));
                return answer(
                    503,
                    "temporarily_unavailable",
                    "The provider's keys cannot be fetched.",
                );
            }
        };
        let verified = match jws::verify(self.platform.verifier(), jws, &key).await {
            Ok(v) => v,
            Err(e) => return refuse(format!("logout_token signature: {e}")),
        };
        let now = i64::try_from(self.platform.now()).unwrap_or(i64::MAX);
        let logout =
            match logout_token::validate(&verified, &self.cfg.issuer, &self.cfg.client_id, now) {
                Ok(l) => l,
                Err(why) => return refuse(format!("logout_token: {why}")),
            };
        let object = match &logout.sub {
            Some(sub) => Ok(Some(user_object(&self.cfg.issuer, sub))),
            None => {
                let sid = logout.sid.as_deref().unwrap_or_default();
                match self
                    .platform
                    .session_store(&sid_object(&self.cfg.issuer, sid), StoreCall::Resolve)
                    .await
                {
                    Ok(StoreAnswer::User(u)) => Ok(u),
                    Ok(other) => Err(format!("unexpected answer {other:?}")),
                    Err(e) => Err(e),
                }
            }
        };
        let ended = match object {
            Ok(Some(object)) => match self
                .platform
                .session_store(
                    &object,
                    StoreCall::EndMatching {
                        sid: logout.sid.clone(),
                    },
                )
                .await
            {
                Ok(StoreAnswer::Ended(n)) => Ok(n),
                Ok(other) => Err(format!("unexpected answer {other:?}")),
                Err(e) => Err(e),
            },
            Ok(None) => Ok(0),
            Err(e) => Err(e),
        };
        match ended {
            Ok(n) => {
                self.platform.log(&json!({"level":"info","event":"backchannel_logout","sub":logout.sub,"sid":logout.sid,"sessions_ended":n}));
                answer(200, "", "")
            }
            Err(e) => {
                self.platform
                    .log(&json!({"level":"error","event":"backchannel_logout_failed","detail":e}));
                answer(
                    503,
                    "temporarily_unavailable",
                    "Sessions could not be ended; try again.",
                )
            }
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
