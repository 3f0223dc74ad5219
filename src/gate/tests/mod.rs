//! Host tests for the gate: whole sign-ins and their failure modes, against a fake runtime that
//! also plays the identity provider (discovery, JWKS, token endpoint), with a clock, KV and logs.

use std::cell::{Cell, RefCell};
use std::collections::{HashMap, VecDeque};

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use url::Url;

use super::{Gate, GateRequest, Outcome};
use crate::base::time::UnixTime;
use crate::config::tests_support::test_config;
use crate::config::Config;
use crate::http::cookies::CookieJar;
use crate::http::http_url::HttpUrl;
use crate::http::{Headers, Method, OutboundRequest, Response};
use crate::oidc::provider::ProviderCache;
use crate::oidc::transaction::{MAX_LIVE_TRANSACTIONS, TRANSACTION_TTL_SECS};
use crate::platform::{NetworkError, Platform};
use crate::session::durable_object::{ObjectName, StoreAnswer, StoreCall, StoreError};
use crate::session::store::SessionObjects;
use crate::testing::{block_on, jwks_json, TestKey};

const NOW: u64 = 1_800_000_000;
const APP: &str = "https://app.example.com";
/// The upstream the gate's tests forward to (see `gate_config`).
const ORIGIN: &str = "https://origin.example.com";
const LOOPBACK_APP: &str = "http://127.0.0.1:8787";
const ISSUER: &str = "https://idp.example.com";
const DISCOVERY_URL: &str = "https://idp.example.com/.well-known/openid-configuration";
const AUTHORIZE_URL: &str = "https://idp.example.com/authorize";
const TOKEN_URL: &str = "https://idp.example.com/token";
const JWKS_URL: &str = "https://idp.example.com/jwks";
const END_SESSION_URL: &str = "https://idp.example.com/logout";
/// Freshness the fake provider gives its discovery document and key set.
const PROVIDER_MAX_AGE: u64 = 300;
const CODE: &str = "code-4f2a9c0b";
const ACCESS_TOKEN: &str = "access-token-7d1e55";
const CLIENT_SECRET: &str = "s3cret-value";
const SESSION_COOKIE: &str = "__Host-portcullis";
const TX_COOKIE_PREFIX: &str = "__Host-portcullis-tx-";
const HTML: &str = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8";

// ----- the fake platform -----------------------------------------------------------------------

/// The runtime (clock, KV, log) and, behind `fetch`, the identity provider.
struct FakePlatform {
    now: Cell<u64>,
    /// Canned answers by URL, given in turn; the last one repeats.
    routes: RefCell<HashMap<String, VecDeque<Response>>>,
    requests: RefCell<Vec<OutboundRequest>>,
    kv: RefCell<HashMap<String, String>>,
    network_down: Cell<bool>,
    logs: RefCell<Vec<Value>>,
    /// Session objects (`SESSION_STORE=durable_object`), by name, and the configuration and
    /// provider cache their isolate has.
    objects: RefCell<HashMap<String, std::rc::Rc<crate::session::durable_object::MemoryStorage>>>,
    object_isolate: RefCell<Option<std::rc::Rc<(Config, ProviderCache)>>>,
    store_down: Cell<bool>,
}

impl FakePlatform {
    fn new() -> Self {
        Self {
            now: Cell::new(NOW),
            routes: RefCell::new(HashMap::new()),
            requests: RefCell::new(Vec::new()),
            kv: RefCell::new(HashMap::new()),
            network_down: Cell::new(false),
            logs: RefCell::new(Vec::new()),
            objects: RefCell::new(HashMap::new()),
            object_isolate: RefCell::new(None),
            store_down: Cell::new(false),
        }
    }

    fn serve(&self, url: &str, answer: Response) {
        self.serve_in_turn(url, vec![answer]);
    }

    fn serve_in_turn(&self, url: &str, answers: Vec<Response>) {
        self.routes
            .borrow_mut()
            .insert(url.to_owned(), answers.into());
    }

    fn advance(&self, secs: u64) {
        self.now.set(self.now.get() + secs);
    }

    fn set_network_down(&self, down: bool) {
        self.network_down.set(down);
    }

    /// Requests made to `url`, failed ones included.
    fn fetches_of(&self, url: &str) -> usize {
        self.requests
            .borrow()
            .iter()
            .filter(|r| r.url == url)
            .count()
    }

    fn requests_to(&self, url: &str) -> Vec<OutboundRequest> {
        self.requests
            .borrow()
            .iter()
            .filter(|r| r.url == url)
            .cloned()
            .collect()
    }

    fn logged(&self, event: &str) -> Vec<Value> {
        self.logs
            .borrow()
            .iter()
            .filter(|l| l["event"] == event)
            .cloned()
            .collect()
    }

    /// Why the last session was rejected, as its log line says.
    fn last_rejection(&self) -> Option<Value> {
        self.logged("session_rejected")
            .last()
            .map(|l| l["reason"].clone())
    }

    /// The latest `request_failed` log line.
    fn last_failure(&self) -> Option<Value> {
        self.logged("request_failed").pop()
    }

    fn last_failure_reason(&self) -> Option<String> {
        self.last_failure()
            .and_then(|l| l["reason"].as_str().map(str::to_owned))
    }
}

impl Platform for FakePlatform {
    type Verifier = crate::jose::verify::RustVerifier;

    fn verifier(&self) -> &Self::Verifier {
        &crate::jose::verify::RustVerifier
    }

    fn now(&self) -> UnixTime {
        UnixTime::from_secs(self.now.get())
    }

    async fn fetch(&self, req: OutboundRequest) -> Result<Response, NetworkError> {
        let url = req.url.clone();
        self.requests.borrow_mut().push(req);
        if self.network_down.get() {
            return Err(NetworkError(format!(
                "connection to {url} refused (test network is down)"
            )));
        }
        let mut routes = self.routes.borrow_mut();
        let answer = match routes.get_mut(&url) {
            Some(queue) if queue.len() > 1 => queue.pop_front(),
            Some(queue) => queue.front().cloned(),
            None => None,
        };
        Ok(answer.unwrap_or_else(|| Response::new(404)))
    }

    async fn kv_get(&self, key: &str) -> Option<String> {
        self.kv.borrow().get(key).cloned()
    }

    async fn kv_put(&self, key: &str, value: &str, _ttl_secs: u64) {
        self.kv
            .borrow_mut()
            .insert(key.to_owned(), value.to_owned());
    }

    async fn sleep_ms(&self, ms: u64) {
        self.now.set(self.now.get() + ms.div_ceil(1000));
    }

    fn log_json(&self, line: String) {
        let value = serde_json::from_slice(line.as_bytes()).expect("a log line is JSON");
        self.logs.borrow_mut().push(value);
    }
}

impl SessionObjects for FakePlatform {
    async fn call(&self, object: &ObjectName, call: StoreCall) -> Result<StoreAnswer, StoreError> {
        if self.store_down.get() {
            return Err(StoreError("the session store is down (test)".into()));
        }
        let isolate = self
            .object_isolate
            .borrow()
            .clone()
            .ok_or_else(|| StoreError("no session objects in this test".into()))?;
        let storage = self
            .objects
            .borrow_mut()
            .entry(object.as_str().to_owned())
            .or_default()
            .clone();
        crate::session::durable_object::handle(&isolate.0, &isolate.1, self, &*storage, call).await
    }
}

// ----- provider documents ----------------------------------------------------------------------

fn discovery_doc(iss_parameter: bool) -> Value {
    let mut doc = json!({
        "issuer": ISSUER,
        "authorization_endpoint": AUTHORIZE_URL,
        "token_endpoint": TOKEN_URL,
        "jwks_uri": JWKS_URL,
        "end_session_endpoint": END_SESSION_URL,
        "response_types_supported": ["code"],
        "code_challenge_methods_supported": ["S256"],
    });
    if iss_parameter {
        doc["authorization_response_iss_parameter_supported"] = true.into();
    }
    doc
}

fn cacheable_json(body: impl Into<Vec<u8>>) -> Response {
    Response::new(200)
        .with_body("application/json", body)
        .with_header(
            "Cache-Control",
            format!("public, max-age={PROVIDER_MAX_AGE}"),
        )
}

fn jwks_answer(keys: &[&TestKey]) -> Response {
    cacheable_json(jwks_json(keys))
}

fn token_answer(id_token: &str) -> Response {
    let body = json!({"id_token": id_token, "access_token": ACCESS_TOKEN, "token_type": "Bearer", "expires_in": 3600});
    Response::new(200).with_body("application/json", body.to_string())
}

// ----- requests and responses ------------------------------------------------------------------

fn app(path_and_query: &str) -> String {
    format!("{APP}{path_and_query}")
}

fn request(method: Method, url: &str, headers: &[(&str, &str)]) -> GateRequest {
    let mut h = Headers::new();
    for (name, value) in headers {
        h.append(*name, *value);
    }
    GateRequest {
        method,
        // As the runtime hands it over: serialized by a WHATWG URL parser.
        url: HttpUrl::parse(Url::parse(url).expect("test URL").as_str()).expect("a request URL"),
        headers: h,
        body: None,
    }
}

/// A browser navigating to `url`.
fn navigate(url: &str, cookie: Option<&str>) -> GateRequest {
    match cookie {
        Some(c) => request(Method::Get, url, &[("Accept", HTML), ("Cookie", c)]),
        None => request(Method::Get, url, &[("Accept", HTML)]),
    }
}

/// A program (fetch, curl) asking for JSON.
fn api_get(url: &str, cookie: Option<&str>) -> GateRequest {
    match cookie {
        Some(c) => request(
            Method::Get,
            url,
            &[("Accept", "application/json"), ("Cookie", c)],
        ),
        None => request(Method::Get, url, &[("Accept", "application/json")]),
    }
}

fn location(resp: &Response) -> &str {
    resp.headers
        .get("Location")
        .unwrap_or_else(|| panic!("no Location in the {} response", resp.status))
}

fn query_param(url: &Url, name: &str) -> Option<String> {
    url.query_pairs()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

fn json_body(resp: &Response) -> Value {
    serde_json::from_slice(&resp.body)
        .unwrap_or_else(|e| panic!("body is not JSON ({e}): {}", resp.body_text()))
}

/// One `Set-Cookie` header, split into its parts.
#[derive(Debug, Clone)]
struct SetCookie {
    name: String,
    value: String,
    attributes: Vec<String>,
}

impl SetCookie {
    fn parse(header: &str) -> Self {
        let mut parts = header.split(';').map(str::trim);
        let (name, value) = parts
            .next()
            .and_then(|p| p.split_once('='))
            .expect("Set-Cookie starts with name=value");
        Self {
            name: name.to_owned(),
            value: value.to_owned(),
            attributes: parts.map(str::to_owned).collect(),
        }
    }

    fn has(&self, attribute: &str) -> bool {
        self.attributes
            .iter()
            .any(|a| a.eq_ignore_ascii_case(attribute))
    }

    fn is_deletion(&self) -> bool {
        self.has("Max-Age=0")
    }

    /// As the browser sends it back in `Cookie`.
    fn pair(&self) -> String {
        format!("{}={}", self.name, self.value)
    }
}

fn set_cookies(resp: &Response) -> Vec<SetCookie> {
    resp.headers
        .iter()
        .filter(|(n, _)| n.eq_ignore_ascii_case("Set-Cookie"))
        .map(|(_, v)| SetCookie::parse(v))
        .collect()
}

/// The cookie `name` set (not deleted) by `resp`.
fn cookie_set(resp: &Response, name: &str) -> Option<SetCookie> {
    set_cookies(resp)
        .into_iter()
        .find(|c| c.name == name && !c.is_deletion())
}

fn cookie_deleted(resp: &Response, name: &str) -> bool {
    set_cookies(resp)
        .iter()
        .any(|c| c.name == name && c.is_deletion())
}

fn deleted_names(resp: &Response) -> Vec<String> {
    set_cookies(resp)
        .into_iter()
        .filter(SetCookie::is_deletion)
        .map(|c| c.name)
        .collect()
}

fn assert_sets_no_session(resp: &Response) {
    let sessions: Vec<SetCookie> = set_cookies(resp)
        .into_iter()
        .filter(|c| (c.name == SESSION_COOKIE || c.name == "portcullis") && !c.is_deletion())
        .collect();
    assert!(
        sessions.is_empty(),
        "a session cookie was set: {sessions:?}"
    );
}

fn assert_secure_browser_cookie(c: &SetCookie) {
    for attr in ["Secure", "HttpOnly", "SameSite=Lax", "Path=/"] {
        assert!(c.has(attr), "{} lacks {attr}: {:?}", c.name, c.attributes);
    }
}

/// A login the gate started: the provider redirect it answered with, and what it carries.
struct Login {
    response: Response,
    authorize: Url,
    state: String,
    nonce: String,
    tx_cookie: SetCookie,
}

impl Login {
    fn from_response(response: Response) -> Self {
        assert_eq!(
            response.status,
            302,
            "login did not redirect: {}",
            response.body_text()
        );
        let authorize =
            Url::parse(location(&response)).expect("the login redirect is an absolute URL");
        assert_eq!(authorize.as_str().split('?').next(), Some(AUTHORIZE_URL));
        let state = query_param(&authorize, "state").expect("authorize URL has state");
        let nonce = query_param(&authorize, "nonce").expect("authorize URL has nonce");
        let tx_cookie = set_cookies(&response)
            .into_iter()
            .find(|c| c.name.contains("portcullis-tx-") && !c.is_deletion())
            .expect("login sets a transaction cookie");
        Self {
            response,
            authorize,
            state,
            nonce,
            tx_cookie,
        }
    }

    fn param(&self, name: &str) -> String {
        query_param(&self.authorize, name).unwrap_or_else(|| panic!("authorize URL lacks {name}"))
    }

    /// Where the provider sends the browser back to, with `params`.
    fn provider_return_url(&self, params: &[(&str, &str)]) -> String {
        let mut url = Url::parse(&self.param("redirect_uri")).expect("redirect_uri is a URL");
        url.query_pairs_mut().extend_pairs(params);
        url.into()
    }

    fn success_url(&self) -> String {
        self.provider_return_url(&[("code", CODE), ("state", &self.state), ("iss", ISSUER)])
    }
}

/// A private ES256 JWK for the signed identity assertion.
fn assertion_key_json(kid: &str) -> String {
    let sk = p256::ecdsa::SigningKey::random(&mut rand_core::OsRng);
    let mut v = serde_json::to_value(jwt_compact::jwk::JsonWebKey::from(&sk)).expect("jwk");
    v["kid"] = kid.into();
    v.to_string()
}

// ----- the harness -----------------------------------------------------------------------------

/// The gate's tests forward to an origin, which reads the headers the gate strips and sets
/// (static assets read none: `UPSTREAM = "assets"` is named where a test is about them).
fn gate_config(vars: &[(&str, &str)]) -> Config {
    let mut all = vars.to_vec();
    if !vars.iter().any(|(name, _)| *name == "UPSTREAM") {
        all.push(("UPSTREAM", ORIGIN));
    }
    test_config(&all)
}

struct Harness {
    cfg: Config,
    cache: ProviderCache,
    tokens: crate::access::token_cache::TokenCache,
    refreshes: crate::session::coalescer::RefreshCoalescer,
    opened: crate::session::store::OpenedSessions,
    idp: FakePlatform,
    /// The provider's signing key, published in its JWKS.
    key: TestKey,
}

impl Harness {
    /// A provider that advertises RFC 9207 `iss` in authorization responses.
    fn new() -> Self {
        Self::build(gate_config(&[]), true, TestKey::es256(Some("k1")))
    }

    fn with_config(vars: &[(&str, &str)]) -> Self {
        Self::build(gate_config(vars), true, TestKey::es256(Some("k1")))
    }

    /// A provider whose discovery omits `authorization_response_iss_parameter_supported` (Entra).
    fn without_iss_parameter() -> Self {
        Self::build(gate_config(&[]), false, TestKey::es256(Some("k1")))
    }

    fn with_key(key: TestKey) -> Self {
        Self::build(gate_config(&[]), true, key)
    }

    fn build(cfg: Config, iss_parameter: bool, key: TestKey) -> Self {
        let idp = FakePlatform::new();
        idp.serve(
            DISCOVERY_URL,
            cacheable_json(discovery_doc(iss_parameter).to_string()),
        );
        idp.serve(JWKS_URL, jwks_answer(&[&key]));
        Self {
            cfg,
            cache: ProviderCache::new(),
            tokens: crate::access::token_cache::TokenCache::default(),
            refreshes: Default::default(),
            opened: Default::default(),
            idp,
            key,
        }
    }

    fn handle(&self, req: &GateRequest) -> Outcome {
        block_on(
            Gate {
                cfg: &self.cfg,
                cache: &self.cache,
                tokens: &self.tokens,
                refreshes: &self.refreshes,
                opened: &self.opened,
                platform: &self.idp,
            }
            .handle(req),
        )
    }

    fn respond(&self, req: &GateRequest) -> Response {
        match self.handle(req) {
            Outcome::Respond(r) => r,
            other => panic!("expected the gate to answer, got {other:?}"),
        }
    }

    /// Headers, protected, and the user the origin is told about (`X-Auth-Request-User`).
    fn forward(&self, req: &GateRequest) -> (Headers, bool, Option<String>) {
        match self.handle(req) {
            Outcome::Forward {
                headers, protected, ..
            } => {
                let headers =
                    headers.map_or_else(|| req.headers.clone(), |h| h.apply(&req.headers));
                let user = headers.get("X-Auth-Request-User").map(str::to_owned);
                (headers, protected, user)
            }
            Outcome::Respond(r) => panic!(
                "expected the request to be forwarded, got {} {}",
                r.status,
                r.body_text()
            ),
        }
    }

    /// The claims of a good ID token for the login with `nonce`, issued now.
    fn claims(&self, nonce: &str) -> Value {
        let now = self.idp.now().as_secs();
        json!({
            "iss": ISSUER, "sub": "alice", "aud": "client", "exp": now + 300, "iat": now,
            "nonce": nonce, "email": "alice@example.com", "email_verified": true,
            "name": "Alice", "groups": ["staff", "admins"],
        })
    }

    fn start_login(&self) -> Login {
        self.start_login_at(APP, None, None)
    }

    fn start_login_at(&self, origin: &str, return_to: Option<&str>, cookie: Option<&str>) -> Login {
        let mut url = Url::parse(origin)
            .and_then(|o| o.join("/auth/login"))
            .expect("login URL");
        if let Some(rt) = return_to {
            url.query_pairs_mut().append_pair("return_to", rt);
        }
        Login::from_response(self.respond(&navigate(url.as_str(), cookie)))
    }

    /// The browser arriving at `url` from the provider, carrying the login's transaction cookie.
    fn return_from_provider(&self, login: &Login, url: &str) -> Response {
        self.respond(&navigate(url, Some(&login.tx_cookie.pair())))
    }

    fn finish_sign_in_with(&self, login: &Login, id_token: &str) -> Response {
        self.idp.serve(TOKEN_URL, token_answer(id_token));
        self.return_from_provider(login, &login.success_url())
    }

    fn finish_sign_in(&self, login: &Login) -> Response {
        self.finish_sign_in_with(login, &self.key.sign(&self.claims(&login.nonce)))
    }

    /// A sign-in whose ID token has `edit` applied to its claims.
    fn sign_in_with_claims(&self, edit: impl FnOnce(&mut Value)) -> Response {
        let login = self.start_login();
        let mut claims = self.claims(&login.nonce);
        edit(&mut claims);
        self.finish_sign_in_with(&login, &self.key.sign(&claims))
    }

    /// A complete sign-in on https; the session cookie as the browser sends it back.
    fn sign_in(&self) -> String {
        let resp = self.finish_sign_in(&self.start_login());
        assert_eq!(resp.status, 302, "sign-in failed: {}", resp.body_text());
        cookie_set(&resp, SESSION_COOKIE)
            .expect("sign-in sets the session cookie")
            .pair()
    }
}

fn assert_id_token_rejected(h: &Harness, resp: &Response, detail: &str) {
    assert_eq!(resp.status, 401, "{}", resp.body_text());
    assert_sets_no_session(resp);
    assert_eq!(
        h.idp.last_failure_reason().as_deref(),
        Some("invalid_id_token")
    );
    let logged = h
        .idp
        .last_failure()
        .map(|l| l["detail"].to_string())
        .unwrap_or_default();
    assert!(
        logged.contains(detail),
        "log detail {logged} does not mention {detail:?}"
    );
}

/// A signed-in session whose ID token has `edit` applied (e.g. another user, other groups).
fn sign_in_as(h: &Harness, edit: impl FnOnce(&mut Value)) -> String {
    let resp = h.sign_in_with_claims(edit);
    assert_eq!(resp.status, 302, "sign-in failed: {}", resp.body_text());
    cookie_set(&resp, SESSION_COOKIE)
        .expect("session cookie")
        .pair()
}

/// The claims of the signed identity assertion the origin received.
fn assertion_claims(headers: &Headers) -> Value {
    let jwt = headers
        .get("X-Portcullis-Assertion")
        .expect("assertion header");
    let payload = jwt.split('.').nth(1).expect("payload");
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).expect("b64")).expect("json")
}

// ----- sessions: refresh answers and session objects --------------------------------------------

// ----- refreshed sessions ----------------------------------------------------------------------

const REFRESH_TOKEN: &str = "refresh-token-1";
const REVOCATION_URL: &str = "https://idp.example.com/revoke";
const BACKCHANNEL_LOGOUT_EVENT: &str = "http://schemas.openid.net/event/backchannel-logout";

/// A successful token endpoint answer: a Bearer access token for an hour, with `fields`
/// (id_token, refresh_token, another access_token or expires_in) added or replaced.
fn token_answer_with(fields: Value) -> Response {
    let mut body =
        json!({"access_token": ACCESS_TOKEN, "token_type": "Bearer", "expires_in": 3600});
    for (name, value) in fields.as_object().expect("token fields are an object") {
        body[name] = value.clone();
    }
    Response::new(200).with_body("application/json", body.to_string())
}

/// A refresh answer: a new access token for a minute and a rotated refresh token.
fn refresh_answer(access_token: &str, refresh_token: &str) -> Response {
    token_answer_with(
        json!({"access_token": access_token, "refresh_token": refresh_token, "expires_in": 60}),
    )
}

fn refused_refresh() -> Response {
    Response::new(400).with_body(
        "application/json",
        json!({"error": "invalid_grant", "error_description": "refresh token revoked"}).to_string(),
    )
}

/// The form a token or revocation request sent.
fn form_of(req: &OutboundRequest) -> HashMap<String, String> {
    form_urlencoded::parse(req.body.as_deref().unwrap_or_default().as_bytes())
        .into_owned()
        .collect()
}

/// The `refresh_token` of every refresh grant the token endpoint received, in order.
fn refresh_grants(h: &Harness) -> Vec<String> {
    h.idp
        .requests_to(TOKEN_URL)
        .iter()
        .map(form_of)
        .filter(|f| f.get("grant_type").map(String::as_str) == Some("refresh_token"))
        .map(|f| f.get("refresh_token").cloned().unwrap_or_default())
        .collect()
}

/// The session cookie (not a deletion) among `cookies`.
fn session_cookie_in(cookies: &[SetCookie]) -> Option<SetCookie> {
    cookies
        .iter()
        .find(|c| c.name == SESSION_COOKIE && !c.is_deletion())
        .cloned()
}

impl Harness {
    /// Like `forward`, with the `Set-Cookie` values that go with the forwarded answer.
    fn forward_setting(&self, req: &GateRequest) -> (Headers, Vec<SetCookie>) {
        match self.handle(req) {
            Outcome::Forward {
                headers,
                protected,
                set_cookies,
                ..
            } => {
                assert!(protected, "a signed-in request is protected");
                let cookies = set_cookies.iter().map(|c| SetCookie::parse(c)).collect();
                (
                    headers.map_or_else(|| req.headers.clone(), |h| h.apply(&req.headers)),
                    cookies,
                )
            }
            Outcome::Respond(r) => panic!(
                "expected the request to be forwarded, got {} {}",
                r.status,
                r.body_text()
            ),
        }
    }

    /// An ID token as a refresh returns it: no nonce, issued now, for `sub`.
    fn refreshed_id_token(&self, sub: &str) -> String {
        let mut claims = self.claims("unused");
        claims
            .as_object_mut()
            .expect("claims object")
            .remove("nonce");
        claims["sub"] = sub.into();
        self.key.sign(&claims)
    }

    /// A sign-in whose code exchange also gives a refresh token and a one-minute access token;
    /// later token requests get `refreshes` in turn (the last repeats). The session cookie.
    fn sign_in_with_refresh(&self, refreshes: Vec<Response>) -> String {
        let login = self.start_login();
        let id_token = self.key.sign(&self.claims(&login.nonce));
        let mut answers = vec![token_answer_with(
            json!({"id_token": id_token, "refresh_token": REFRESH_TOKEN, "expires_in": 60}),
        )];
        answers.extend(refreshes);
        self.idp.serve_in_turn(TOKEN_URL, answers);
        let resp = self.return_from_provider(&login, &login.success_url());
        assert_eq!(resp.status, 302, "sign-in failed: {}", resp.body_text());
        assert_eq!(
            self.idp
                .logged("sign_in")
                .last()
                .map(|l| l["refresh_token"].clone()),
            Some(json!(true))
        );
        cookie_set(&resp, SESSION_COOKIE)
            .expect("sign-in sets the session cookie")
            .pair()
    }
}

// ----- server-side sessions --------------------------------------------------------------------

/// A harness with `SESSION_STORE=durable_object` (plus `extra`) and session objects whose
/// isolate has the same configuration.
fn durable_harness(extra: &[(&str, &str)]) -> Harness {
    let mut vars = vec![("SESSION_STORE", "durable_object")];
    vars.extend_from_slice(extra);
    let h = Harness::with_config(&vars);
    *h.idp.object_isolate.borrow_mut() =
        Some(std::rc::Rc::new((test_config(&vars), ProviderCache::new())));
    h
}

/// The sessions the objects hold, by object name: the number of `s:` entries in each.
fn stored_sessions(h: &Harness) -> Vec<(String, usize)> {
    let mut out: Vec<(String, usize)> = h
        .idp
        .objects
        .borrow()
        .iter()
        .map(|(name, storage)| {
            let n = storage
                .0
                .borrow()
                .keys()
                .filter(|k| k.starts_with("s:"))
                .count();
            (name.clone(), n)
        })
        .filter(|(_, n)| *n > 0)
        .collect();
    out.sort();
    out
}

mod backchannel;
mod bearer;
mod boundary;
mod callback;
mod durable;
mod forms;
mod login;
mod logout;
mod policy;
mod protect;
mod provider;
mod providers;
mod sessions;
mod step_up;
