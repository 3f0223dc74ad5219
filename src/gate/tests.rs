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
use crate::http::{Headers, Method, OutboundRequest, Response};
use crate::oidc::provider::{ProviderCache, FORCED_REFETCH_INTERVAL_SECS};
use crate::oidc::transaction::{MAX_LIVE_TRANSACTIONS, TRANSACTION_TTL_SECS};
use crate::platform::{NetworkError, Platform};
use crate::session::durable_object::{ObjectName, StoreAnswer, StoreCall, StoreError};
use crate::session::store::SessionObjects;
use crate::testing::{block_on, jwks_json, TestKey};

const NOW: u64 = 1_800_000_000;
const APP: &str = "https://app.example.com";
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

    fn log(&self, line: &Value) {
        self.logs.borrow_mut().push(line.clone());
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
        url: Url::parse(url).expect("test URL"),
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

// ----- the harness -----------------------------------------------------------------------------

struct Harness {
    cfg: Config,
    cache: ProviderCache,
    tokens: crate::access::token_cache::TokenCache,
    refreshes: crate::session::coalescer::RefreshCoalescer,
    idp: FakePlatform,
    /// The provider's signing key, published in its JWKS.
    key: TestKey,
}

impl Harness {
    /// A provider that advertises RFC 9207 `iss` in authorization responses.
    fn new() -> Self {
        Self::build(test_config(&[]), true, TestKey::es256(Some("k1")))
    }

    fn with_config(vars: &[(&str, &str)]) -> Self {
        Self::build(test_config(vars), true, TestKey::es256(Some("k1")))
    }

    /// A provider whose discovery omits `authorization_response_iss_parameter_supported` (Entra).
    fn without_iss_parameter() -> Self {
        Self::build(test_config(&[]), false, TestKey::es256(Some("k1")))
    }

    fn with_key(key: TestKey) -> Self {
        Self::build(test_config(&[]), true, key)
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

// ----- sign-in ---------------------------------------------------------------------------------

#[test]
fn full_sign_in_returns_to_the_page_with_a_session_and_forwards_without_our_cookies() {
    let h = Harness::new();

    // An anonymous browser is sent to the login route, remembering where it was going.
    let resp = h.respond(&navigate(&app("/private?x=1"), None));
    assert_eq!(resp.status, 302);
    let to_login = Url::parse(APP)
        .and_then(|a| a.join(location(&resp)))
        .expect("login URL");
    assert_eq!(to_login.path(), "/auth/login");
    assert_eq!(
        query_param(&to_login, "return_to").as_deref(),
        Some("/private?x=1")
    );
    assert!(
        set_cookies(&resp).is_empty(),
        "no cookie to clear for a browser without one"
    );

    // The login route sends it to the provider with a sealed transaction cookie.
    let login = Login::from_response(h.respond(&navigate(to_login.as_str(), None)));
    assert_eq!(login.param("response_type"), "code");
    assert_eq!(login.param("client_id"), "client");
    assert_eq!(
        login.param("redirect_uri"),
        "https://app.example.com/auth/callback"
    );
    assert_eq!(login.param("scope"), "openid profile email");
    assert_eq!(login.param("code_challenge_method"), "S256");
    assert!(
        login.tx_cookie.name.starts_with(TX_COOKIE_PREFIX),
        "{}",
        login.tx_cookie.name
    );
    assert_secure_browser_cookie(&login.tx_cookie);
    assert!(login
        .tx_cookie
        .has(&format!("Max-Age={TRANSACTION_TTL_SECS}")));
    assert!(
        !login.tx_cookie.value.contains(&login.state)
            && !login.tx_cookie.value.contains(&login.nonce)
    );

    // The provider sends it back with a code; the gate redeems it and sets the session.
    let resp = h.finish_sign_in(&login);
    assert_eq!(resp.status, 302, "{}", resp.body_text());
    assert_eq!(location(&resp), "/private?x=1");
    let session = cookie_set(&resp, SESSION_COOKIE).expect("session cookie");
    assert!(!session.value.is_empty());
    assert_secure_browser_cookie(&session);
    assert!(
        cookie_deleted(&resp, &login.tx_cookie.name),
        "the transaction cookie is spent"
    );
    assert_eq!(h.idp.logged("sign_in").len(), 1);

    // The token request: client_secret_basic, the code, and the PKCE verifier for the challenge.
    let token_requests = h.idp.requests_to(TOKEN_URL);
    assert_eq!(token_requests.len(), 1);
    let token_req = &token_requests[0];
    assert_eq!(token_req.method, "POST");
    let expected_basic = format!(
        "Basic {}",
        STANDARD.encode(format!("client:{CLIENT_SECRET}"))
    );
    assert_eq!(
        token_req.headers.get("Authorization"),
        Some(expected_basic.as_str())
    );
    assert_eq!(
        token_req.headers.get("Content-Type"),
        Some("application/x-www-form-urlencoded")
    );
    let form: HashMap<String, String> =
        url::form_urlencoded::parse(token_req.body.as_deref().unwrap_or_default().as_bytes())
            .into_owned()
            .collect();
    assert_eq!(
        form.get("grant_type").map(String::as_str),
        Some("authorization_code")
    );
    assert_eq!(form.get("code").map(String::as_str), Some(CODE));
    assert_eq!(
        form.get("redirect_uri").map(String::as_str),
        Some("https://app.example.com/auth/callback")
    );
    assert!(!form.contains_key("client_secret"));
    let verifier = form
        .get("code_verifier")
        .expect("token request carries code_verifier");
    assert_eq!(
        URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes())),
        login.param("code_challenge")
    );

    // Signed in: the page is forwarded, protected, without our cookies or forged identity headers.
    let cookie = format!("theme=dark; {}; {}", session.pair(), login.tx_cookie.pair());
    let req = request(
        Method::Get,
        &app("/private?x=1"),
        &[
            ("Accept", HTML),
            ("Cookie", &cookie),
            ("X-Forwarded-User", "mallory"),
        ],
    );
    let (headers, protected, forwarded_session) = h.forward(&req);
    assert!(protected);
    let user = forwarded_session.expect("the origin is told who signed in");
    assert_eq!(user, "alice");
    assert_eq!(
        headers.get("X-Auth-Request-Email"),
        Some("alice@example.com")
    );
    assert_eq!(headers.get("X-Auth-Request-Groups"), Some("staff,admins"));
    assert_eq!(headers.get("Cookie"), Some("theme=dark"));
    assert_eq!(headers.get("X-Forwarded-User"), None);
    assert!(
        headers.iter().all(|(_, v)| !v.contains("portcullis")),
        "{headers:?}"
    );

    // And userinfo describes the session.
    let resp = h.respond(&api_get(&app("/auth/userinfo"), Some(&session.pair())));
    assert_eq!(resp.status, 200);
    assert_eq!(resp.headers.get("Cache-Control"), Some("no-store"));
    let info = json_body(&resp);
    assert_eq!(info["sub"], "alice");
    assert_eq!(info["iss"], ISSUER);
    assert_eq!(info["email"], "alice@example.com");
}

#[test]
fn sign_in_with_rsa_and_client_secret_post_sends_credentials_in_the_body() {
    let h = Harness::build(
        test_config(&[("OIDC_TOKEN_AUTH_METHOD", "client_secret_post")]),
        true,
        TestKey::rsa(Some("r1")),
    );
    let resp = h.finish_sign_in(&h.start_login());
    assert_eq!(resp.status, 302, "{}", resp.body_text());
    assert!(cookie_set(&resp, SESSION_COOKIE).is_some());
    let token_requests = h.idp.requests_to(TOKEN_URL);
    assert_eq!(token_requests.len(), 1);
    assert_eq!(token_requests[0].headers.get("Authorization"), None);
    let form: HashMap<String, String> = url::form_urlencoded::parse(
        token_requests[0]
            .body
            .as_deref()
            .unwrap_or_default()
            .as_bytes(),
    )
    .into_owned()
    .collect();
    assert_eq!(form.get("client_id").map(String::as_str), Some("client"));
    assert_eq!(
        form.get("client_secret").map(String::as_str),
        Some(CLIENT_SECRET)
    );
}

#[test]
fn logs_of_a_sign_in_never_contain_the_code_tokens_or_client_secret() {
    let h = Harness::new();
    let login = h.start_login();
    let id_token = h.key.sign(&h.claims(&login.nonce));
    let resp = h.finish_sign_in_with(&login, &id_token);
    assert_eq!(resp.status, 302);
    let logs = h
        .idp
        .logs
        .borrow()
        .iter()
        .map(Value::to_string)
        .collect::<Vec<_>>()
        .join("\n");
    assert!(!logs.is_empty());
    for secret in [
        CODE,
        ACCESS_TOKEN,
        CLIENT_SECRET,
        id_token.as_str(),
        login.nonce.as_str(),
        login.state.as_str(),
    ] {
        assert!(!logs.contains(secret), "a log line contains {secret:.16}…");
    }
}

#[test]
fn return_to_pointing_off_site_ends_at_root_after_sign_in() {
    let h = Harness::new();
    for hostile in [
        "//evil.com",
        "https://evil.com/",
        "/\\evil.com",
        "/auth/logout",
    ] {
        let login = h.start_login_at(APP, Some(hostile), None);
        let resp = h.finish_sign_in(&login);
        assert_eq!(resp.status, 302, "{hostile}: {}", resp.body_text());
        assert_eq!(location(&resp), "/", "{hostile}");
    }
}

#[test]
fn callback_without_iss_succeeds_when_the_provider_does_not_advertise_it() {
    let h = Harness::without_iss_parameter();
    let login = h.start_login();
    h.idp.serve(
        TOKEN_URL,
        token_answer(&h.key.sign(&h.claims(&login.nonce))),
    );
    let resp = h.return_from_provider(
        &login,
        &login.provider_return_url(&[("code", CODE), ("state", &login.state)]),
    );
    assert_eq!(resp.status, 302, "{}", resp.body_text());
    assert!(cookie_set(&resp, SESSION_COOKIE).is_some());
}

// ----- callback failures -----------------------------------------------------------------------

#[test]
fn replayed_callback_without_the_spent_transaction_is_login_expired() {
    let h = Harness::new();
    let login = h.start_login();
    let first = h.finish_sign_in(&login);
    assert_eq!(first.status, 302);
    assert!(cookie_deleted(&first, &login.tx_cookie.name));
    let session = cookie_set(&first, SESSION_COOKIE)
        .expect("first callback signs in")
        .pair();

    // The browser applied the deletion: only the session cookie is left.
    let resp = h.respond(&navigate(&login.success_url(), Some(&session)));
    assert_eq!(resp.status, 400);
    assert_eq!(
        h.idp.last_failure_reason().as_deref(),
        Some("login_expired")
    );
    assert!(resp.body_text().contains("expired or was already used"));
    assert!(set_cookies(&resp).is_empty(), "{:?}", set_cookies(&resp));
    assert_eq!(
        h.idp.fetches_of(TOKEN_URL),
        1,
        "the code is not redeemed twice"
    );
}

#[test]
fn callback_rejects_wrong_state() {
    let h = Harness::new();
    let login = h.start_login();
    h.idp.serve(
        TOKEN_URL,
        token_answer(&h.key.sign(&h.claims(&login.nonce))),
    );

    let forged =
        login.provider_return_url(&[("code", CODE), ("state", "attacker-state"), ("iss", ISSUER)]);
    let resp = h.return_from_provider(&login, &forged);
    assert!((400..500).contains(&resp.status), "{}", resp.status);
    assert_sets_no_session(&resp);

    // Even with the real transaction renamed to the forged state's cookie name.
    let renamed = CookieJar::new(true).transaction_name_for_state_str("attacker-state");
    let resp = h.respond(&navigate(
        &forged,
        Some(&format!("{renamed}={}", login.tx_cookie.value)),
    ));
    assert!((400..500).contains(&resp.status), "{}", resp.status);
    assert_sets_no_session(&resp);
    assert_eq!(h.idp.fetches_of(TOKEN_URL), 0);
}

#[test]
fn callback_without_state_is_a_400() {
    let h = Harness::new();
    let login = h.start_login();
    let resp = h.return_from_provider(
        &login,
        &login.provider_return_url(&[("code", CODE), ("iss", ISSUER)]),
    );
    assert_eq!(resp.status, 400);
    assert_eq!(
        h.idp.last_failure_reason().as_deref(),
        Some("invalid_request")
    );
    assert_sets_no_session(&resp);
}

#[test]
fn callback_requires_iss_when_the_provider_advertises_it() {
    let h = Harness::new();
    let login = h.start_login();
    h.idp.serve(
        TOKEN_URL,
        token_answer(&h.key.sign(&h.claims(&login.nonce))),
    );
    let resp = h.return_from_provider(
        &login,
        &login.provider_return_url(&[("code", CODE), ("state", &login.state)]),
    );
    assert_eq!(resp.status, 400);
    assert_eq!(
        h.idp.last_failure_reason().as_deref(),
        Some("invalid_callback")
    );
    assert_sets_no_session(&resp);
    assert!(cookie_deleted(&resp, &login.tx_cookie.name));
    assert_eq!(h.idp.fetches_of(TOKEN_URL), 0);
}

#[test]
fn callback_rejects_wrong_iss() {
    let h = Harness::without_iss_parameter();
    let login = h.start_login();
    h.idp.serve(
        TOKEN_URL,
        token_answer(&h.key.sign(&h.claims(&login.nonce))),
    );
    let mixed_up = login.provider_return_url(&[
        ("code", CODE),
        ("state", &login.state),
        ("iss", "https://evil.example"),
    ]);
    let resp = h.return_from_provider(&login, &mixed_up);
    assert_eq!(resp.status, 400);
    assert_eq!(
        h.idp.last_failure_reason().as_deref(),
        Some("invalid_callback")
    );
    assert_sets_no_session(&resp);
    assert_eq!(h.idp.fetches_of(TOKEN_URL), 0);
}

#[test]
fn callback_after_the_transaction_expired_is_login_expired() {
    let h = Harness::new();
    let login = h.start_login();
    h.idp.advance(TRANSACTION_TTL_SECS);
    h.idp.serve(
        TOKEN_URL,
        token_answer(&h.key.sign(&h.claims(&login.nonce))),
    );
    let resp = h.return_from_provider(&login, &login.success_url());
    assert_eq!(resp.status, 400);
    assert_eq!(
        h.idp.last_failure_reason().as_deref(),
        Some("login_expired")
    );
    assert_sets_no_session(&resp);
    assert!(cookie_deleted(&resp, &login.tx_cookie.name));
    assert_eq!(h.idp.fetches_of(TOKEN_URL), 0);
}

#[test]
fn login_started_under_another_issuer_is_not_completed_after_the_issuer_changes() {
    let mut h = Harness::without_iss_parameter();
    let login = h.start_login();

    // The operator points the gateway at another provider (same COOKIE_SECRET) mid-sign-in.
    let other = "https://idp2.example.com";
    h.cfg = test_config(&[("OIDC_ISSUER", other)]);
    let doc = json!({
        "issuer": other,
        "authorization_endpoint": format!("{other}/authorize"),
        "token_endpoint": format!("{other}/token"),
        "jwks_uri": format!("{other}/jwks"),
    });
    h.idp.serve(
        &format!("{other}/.well-known/openid-configuration"),
        cacheable_json(doc.to_string()),
    );
    h.idp
        .serve(&format!("{other}/jwks"), jwks_answer(&[&h.key]));
    let mut claims = h.claims(&login.nonce);
    claims["iss"] = other.into();
    h.idp.serve(
        &format!("{other}/token"),
        token_answer(&h.key.sign(&claims)),
    );

    let resp = h.return_from_provider(
        &login,
        &login.provider_return_url(&[("code", CODE), ("state", &login.state)]),
    );
    assert_eq!(resp.status, 400, "{}", resp.body_text());
    assert_eq!(
        h.idp.last_failure_reason().as_deref(),
        Some("login_expired")
    );
    assert_sets_no_session(&resp);
    assert_eq!(h.idp.fetches_of(&format!("{other}/token")), 0);
}

#[test]
fn provider_access_denied_is_a_cancelled_page_and_spends_the_transaction() {
    let h = Harness::new();
    let login = h.start_login();
    let denied = login.provider_return_url(&[
        ("error", "access_denied"),
        ("error_description", "The user cancelled"),
        ("state", &login.state),
        ("iss", ISSUER),
    ]);
    let resp = h.return_from_provider(&login, &denied);
    assert_eq!(resp.status, 403);
    assert!(
        resp.body_text().contains("cancelled"),
        "{}",
        resp.body_text()
    );
    assert!(
        resp.body_text().contains("/auth/login"),
        "offers to sign in again"
    );
    assert!(cookie_deleted(&resp, &login.tx_cookie.name));
    assert_sets_no_session(&resp);
    assert_eq!(h.idp.fetches_of(TOKEN_URL), 0);
}

#[test]
fn token_endpoint_invalid_grant_is_a_400() {
    let h = Harness::new();
    let login = h.start_login();
    let refusal =
        json!({"error": "invalid_grant", "error_description": "code already used"}).to_string();
    h.idp.serve(
        TOKEN_URL,
        Response::new(400).with_body("application/json", refusal),
    );
    let resp = h.return_from_provider(&login, &login.success_url());
    assert_eq!(resp.status, 400);
    assert_eq!(
        h.idp.last_failure_reason().as_deref(),
        Some("invalid_grant")
    );
    assert_sets_no_session(&resp);
    assert!(cookie_deleted(&resp, &login.tx_cookie.name));
}

#[test]
fn token_endpoint_server_error_is_a_502() {
    let h = Harness::new();
    let login = h.start_login();
    h.idp.serve(
        TOKEN_URL,
        Response::new(503).with_body("text/html", "<html>maintenance</html>"),
    );
    let resp = h.return_from_provider(&login, &login.success_url());
    assert_eq!(resp.status, 502);
    assert_eq!(
        h.idp.last_failure_reason().as_deref(),
        Some("token_endpoint_error")
    );
    assert_sets_no_session(&resp);
}

#[test]
fn token_endpoint_unreachable_is_a_502() {
    let h = Harness::new();
    let login = h.start_login();
    h.idp.set_network_down(true);
    let resp = h.return_from_provider(&login, &login.success_url());
    assert_eq!(resp.status, 502);
    assert_eq!(
        h.idp.last_failure_reason().as_deref(),
        Some("token_endpoint_error")
    );
    assert_eq!(h.idp.fetches_of(TOKEN_URL), 1);
    assert_sets_no_session(&resp);
    assert!(cookie_deleted(&resp, &login.tx_cookie.name));
}

#[test]
fn id_token_with_wrong_nonce_is_rejected() {
    let h = Harness::new();
    let resp = h.sign_in_with_claims(|c| c["nonce"] = "nonce-of-another-login".into());
    assert_id_token_rejected(&h, &resp, "nonce");
}

#[test]
fn id_token_for_another_audience_is_rejected() {
    let h = Harness::new();
    let resp = h.sign_in_with_claims(|c| c["aud"] = "another-client".into());
    assert_id_token_rejected(&h, &resp, "aud");
}

#[test]
fn expired_id_token_is_rejected() {
    let h = Harness::new();
    let now = h.idp.now();
    // Past the 300 s clock-skew allowance.
    let resp = h.sign_in_with_claims(|c| c["exp"] = (now.as_secs() - 301).into());
    assert_id_token_rejected(&h, &resp, "expired");
}

#[test]
fn id_token_signed_by_an_unpublished_key_with_a_known_kid_is_rejected() {
    let h = Harness::new();
    let impostor = TestKey::es256(Some("k1"));
    let login = h.start_login();
    let resp = h.finish_sign_in_with(&login, &impostor.sign(&h.claims(&login.nonce)));
    assert_id_token_rejected(&h, &resp, "signature");
}

// ----- provider keys and metadata --------------------------------------------------------------

#[test]
fn unknown_kid_refetches_the_key_set_once_and_then_rate_limits() {
    let h = Harness::with_key(TestKey::rsa(Some("k1")));
    let rotated = TestKey::rsa_other(Some("k2"));
    // The provider rotates right after the gate's first fetch.
    h.idp.serve_in_turn(
        JWKS_URL,
        vec![jwks_answer(&[&h.key]), jwks_answer(&[&h.key, &rotated])],
    );

    let login = h.start_login();
    let resp = h.finish_sign_in_with(&login, &rotated.sign(&h.claims(&login.nonce)));
    assert_eq!(resp.status, 302, "{}", resp.body_text());
    assert!(cookie_set(&resp, SESSION_COOKIE).is_some());
    assert_eq!(
        h.idp.fetches_of(JWKS_URL),
        2,
        "one normal fetch and one forced refetch"
    );
    assert_eq!(h.idp.logged("jwks_refetch").len(), 1);

    // Another unknown kid within a minute does not hit the provider again.
    h.idp.advance(FORCED_REFETCH_INTERVAL_SECS - 1);
    let stranger = TestKey::es256(Some("k3"));
    let login = h.start_login();
    let resp = h.finish_sign_in_with(&login, &stranger.sign(&h.claims(&login.nonce)));
    assert_eq!(resp.status, 401);
    assert_sets_no_session(&resp);
    assert_eq!(h.idp.fetches_of(JWKS_URL), 2);
    assert_eq!(h.idp.logged("jwks_refetch_skipped").len(), 1);

    // Once the minute has passed, an unknown kid may refetch again.
    h.idp.advance(1);
    let login = h.start_login();
    let resp = h.finish_sign_in_with(&login, &stranger.sign(&h.claims(&login.nonce)));
    assert_eq!(resp.status, 401);
    assert_eq!(h.idp.fetches_of(JWKS_URL), 3);
}

#[test]
fn key_set_unavailable_during_callback_is_a_503() {
    let h = Harness::new();
    h.idp.serve(JWKS_URL, Response::new(500));
    let resp = h.finish_sign_in(&h.start_login());
    assert_eq!(resp.status, 503, "{}", resp.body_text());
    assert_eq!(
        h.idp.last_failure_reason().as_deref(),
        Some("provider_unavailable")
    );
    assert_sets_no_session(&resp);
}

#[test]
fn login_is_503_when_discovery_is_unreachable_and_nothing_is_cached() {
    let h = Harness::new();
    h.idp.set_network_down(true);
    let resp = h.respond(&navigate(&app("/auth/login"), None));
    assert_eq!(resp.status, 503);
    assert_eq!(
        h.idp.last_failure_reason().as_deref(),
        Some("provider_unavailable")
    );
    assert_eq!(resp.headers.get("Location"), None);
    assert!(set_cookies(&resp).is_empty());
}

#[test]
fn login_is_503_when_discovery_answers_an_error_status() {
    let h = Harness::new();
    h.idp.serve(DISCOVERY_URL, Response::new(500));
    let resp = h.respond(&api_get(&app("/auth/login"), None));
    assert_eq!(resp.status, 503);
    assert_eq!(json_body(&resp)["error"], "provider_unavailable");
}

#[test]
fn stale_discovery_is_served_when_the_provider_goes_down() {
    let mut h = Harness::new();
    h.start_login();
    assert_eq!(h.idp.fetches_of(DISCOVERY_URL), 1);

    h.idp.advance(PROVIDER_MAX_AGE + 1);
    h.idp.set_network_down(true);
    let login = h.start_login();
    assert_eq!(
        h.idp.fetches_of(DISCOVERY_URL),
        2,
        "a stale entry is refetched first"
    );
    assert_eq!(login.param("client_id"), "client");
    assert!(!h.idp.logged("provider_unreachable").is_empty());

    // A new isolate finds the stale copy in KV.
    h.cache = ProviderCache::new();
    let login = h.start_login();
    assert_eq!(login.param("client_id"), "client");
    assert_eq!(h.idp.fetches_of(DISCOVERY_URL), 3);
}

#[test]
fn a_new_isolate_uses_fresh_provider_metadata_from_kv_without_fetching() {
    let mut h = Harness::new();
    h.start_login();
    assert_eq!(h.idp.fetches_of(DISCOVERY_URL), 1);
    assert!(!h.idp.kv.borrow().is_empty(), "discovery was written to KV");

    h.cache = ProviderCache::new();
    let login = h.start_login();
    assert_eq!(login.param("client_id"), "client");
    assert_eq!(h.idp.fetches_of(DISCOVERY_URL), 1);
}

#[test]
fn discovery_with_another_issuer_is_a_provider_configuration_error() {
    let h = Harness::new();
    let mut doc = discovery_doc(true);
    doc["issuer"] = "https://idp.example.com/".into();
    h.idp.serve(DISCOVERY_URL, cacheable_json(doc.to_string()));
    let resp = h.respond(&navigate(&app("/auth/login"), None));
    assert_eq!(resp.status, 500);
    assert_eq!(
        h.idp.last_failure_reason().as_deref(),
        Some("provider_configuration_error")
    );
    assert_eq!(resp.headers.get("Location"), None);
    assert!(set_cookies(&resp).is_empty());
}

// ----- sessions and routing --------------------------------------------------------------------

#[test]
fn program_without_session_gets_401_json_with_www_authenticate() {
    let h = Harness::new();
    let resp = h.respond(&api_get(&app("/api/items"), None));
    assert_eq!(resp.status, 401);
    assert_eq!(
        resp.headers.get("WWW-Authenticate"),
        Some("Bearer realm=\"portcullis\"")
    );
    let body = json_body(&resp);
    assert_eq!(body["error"], "unauthenticated");
    assert_eq!(body["login_url"], "/auth/login");
    assert!(set_cookies(&resp).is_empty());
}

#[test]
fn browser_post_without_session_gets_401_not_a_redirect() {
    let h = Harness::new();
    let resp = h.respond(&request(
        Method::Post,
        &app("/api/items"),
        &[("Accept", HTML)],
    ));
    assert_eq!(resp.status, 401);
}

#[test]
fn tampered_garbage_or_truncated_session_cookies_are_no_session() {
    let h = Harness::new();
    let good = h.sign_in();
    let value = good
        .split_once('=')
        .map(|(_, v)| v.to_owned())
        .expect("session pair");
    let mid = value.len() / 2;
    let flipped = if &value[mid..=mid] == "A" { "B" } else { "A" };
    let tampered = format!("{}{flipped}{}", &value[..mid], &value[mid + 1..]);
    for bad in [
        tampered.as_str(),
        &value[..mid],
        &value[..value.len() - 1],
        "garbage",
        "",
        "%%%",
        &"A".repeat(10_000),
    ] {
        let cookie = format!("{SESSION_COOKIE}={bad}");
        let resp = h.respond(&navigate(&app("/private"), Some(&cookie)));
        assert_eq!(resp.status, 302, "{bad:.20}");
        assert!(location(&resp).starts_with("/auth/login"), "{bad:.20}");
        assert!(cookie_deleted(&resp, SESSION_COOKIE), "{bad:.20}");

        let resp = h.respond(&api_get(&app("/api/items"), Some(&cookie)));
        assert_eq!(resp.status, 401, "{bad:.20}");
        assert!(cookie_deleted(&resp, SESSION_COOKIE), "{bad:.20}");
    }
    // The untouched cookie still works.
    let (_, protected, session) = h.forward(&navigate(&app("/private"), Some(&good)));
    assert!(protected && session.is_some());
}

#[test]
fn a_transaction_cookie_value_is_not_a_session() {
    let h = Harness::new();
    let login = h.start_login();
    let cookie = format!("{SESSION_COOKIE}={}", login.tx_cookie.value);
    let resp = h.respond(&navigate(&app("/private"), Some(&cookie)));
    assert_eq!(resp.status, 302);
    assert!(location(&resp).starts_with("/auth/login"));
}

#[test]
fn expired_session_redirects_to_login() {
    let h = Harness::new();
    let session = h.sign_in();
    h.idp.advance(h.cfg.session_ttl_secs - 1);
    let (_, protected, s) = h.forward(&navigate(&app("/private"), Some(&session)));
    assert!(
        protected && s.is_some(),
        "still valid a second before expiry"
    );

    h.idp.advance(1);
    let resp = h.respond(&navigate(&app("/private?x=1"), Some(&session)));
    assert_eq!(resp.status, 302);
    let to_login = Url::parse(APP)
        .and_then(|a| a.join(location(&resp)))
        .expect("login URL");
    assert_eq!(to_login.path(), "/auth/login");
    assert_eq!(
        query_param(&to_login, "return_to").as_deref(),
        Some("/private?x=1")
    );
    assert!(cookie_deleted(&resp, SESSION_COOKIE));
    let rejected = h.idp.logged("session_rejected");
    assert_eq!(
        rejected.last().map(|l| l["reason"].clone()),
        Some(json!("Expired"))
    );
}

#[test]
fn public_paths_pass_without_session_and_are_not_protected() {
    let h = Harness::with_config(&[("PUBLIC_PATHS", "/public/*")]);
    for path in ["/public", "/public/logo.png", "/public/a/b.css"] {
        let (_, protected, session) = h.forward(&navigate(&app(path), None));
        assert!(!protected, "{path}");
        assert!(session.is_none(), "{path}");
    }
    let resp = h.respond(&navigate(&app("/publicity"), None));
    assert_eq!(
        resp.status, 302,
        "a prefix match is on segment boundaries only"
    );
    assert!(
        h.idp.requests.borrow().is_empty(),
        "public paths never reach the provider"
    );
}

#[test]
fn encoded_slash_in_path_is_a_400() {
    let h = Harness::new();
    for path in ["/a%2Fb", "/a%5cb", "/auth%2Flogin", "/a%zz"] {
        let resp = h.respond(&navigate(&app(path), None));
        assert_eq!(resp.status, 400, "{path}");
        assert_eq!(
            h.idp.last_failure_reason().as_deref(),
            Some("ambiguous_path"),
            "{path}"
        );
    }
}

#[test]
fn unknown_auth_route_is_404_and_login_refuses_post() {
    let h = Harness::new();
    let resp = h.respond(&navigate(&app("/auth/nope"), None));
    assert_eq!(resp.status, 404);
    let resp = h.respond(&request(
        Method::Post,
        &app("/auth/login"),
        &[("Origin", APP)],
    ));
    assert_eq!(resp.status, 405);
    assert!(h.idp.requests.borrow().is_empty());
}

#[test]
fn userinfo_without_session_is_401() {
    let h = Harness::new();
    let resp = h.respond(&api_get(&app("/auth/userinfo"), None));
    assert_eq!(resp.status, 401);
    assert_eq!(json_body(&resp)["error"], "unauthenticated");
    assert!(resp.headers.get("WWW-Authenticate").is_some());
}

// ----- transport -------------------------------------------------------------------------------

#[test]
fn plain_http_navigation_on_a_public_host_is_redirected_to_https() {
    let h = Harness::new();
    let resp = h.respond(&navigate("http://app.example.com/private?x=1", None));
    assert_eq!(resp.status, 308);
    assert_eq!(location(&resp), "https://app.example.com/private?x=1");
    assert!(set_cookies(&resp).is_empty());

    let resp = h.respond(&request(
        Method::Post,
        "http://app.example.com/auth/logout",
        &[("Accept", HTML)],
    ));
    assert_eq!(resp.status, 400);
    assert_eq!(
        h.idp.last_failure_reason().as_deref(),
        Some("https_required")
    );
    let resp = h.respond(&api_get("http://app.example.com/api", None));
    assert_eq!(resp.status, 400);
}

#[test]
fn loopback_http_signs_in_with_plain_cookie_names_without_secure() {
    let h = Harness::new();
    let login = h.start_login_at(LOOPBACK_APP, Some("/private"), None);
    assert_eq!(
        login.param("redirect_uri"),
        "http://127.0.0.1:8787/auth/callback"
    );
    assert!(
        login.tx_cookie.name.starts_with("portcullis-tx-"),
        "{}",
        login.tx_cookie.name
    );
    assert!(!login.tx_cookie.has("Secure"));
    assert!(login.tx_cookie.has("HttpOnly"));

    let resp = h.finish_sign_in(&login);
    assert_eq!(resp.status, 302, "{}", resp.body_text());
    assert_eq!(location(&resp), "/private");
    let session = cookie_set(&resp, "portcullis").expect("plain session cookie on loopback");
    assert!(!session.has("Secure") && session.has("HttpOnly") && session.has("SameSite=Lax"));
    assert!(cookie_deleted(&resp, &login.tx_cookie.name));

    let (_, protected, s) = h.forward(&navigate(
        &format!("{LOOPBACK_APP}/private"),
        Some(&session.pair()),
    ));
    assert!(protected);
    assert_eq!(s.as_deref(), Some("alice"));
}

// ----- logout ----------------------------------------------------------------------------------

#[test]
fn logout_get_shows_a_confirmation_form() {
    let h = Harness::new();
    let session = h.sign_in();
    let resp = h.respond(&navigate(&app("/auth/logout"), Some(&session)));
    assert_eq!(resp.status, 200);
    let body = resp.body_text();
    assert!(
        body.contains("<form method=\"post\" action=\"/auth/logout\""),
        "{body}"
    );
    assert!(body.contains("alice@example.com"));
    assert!(set_cookies(&resp).is_empty(), "a GET must not sign out");
}

#[test]
fn cross_site_logout_post_is_refused() {
    let h = Harness::new();
    let session = h.sign_in();
    let attempts = [
        request(
            Method::Post,
            &app("/auth/logout"),
            &[("Origin", "https://evil.example"), ("Cookie", &session)],
        ),
        request(
            Method::Post,
            &app("/auth/logout"),
            &[("Sec-Fetch-Site", "cross-site"), ("Cookie", &session)],
        ),
    ];
    for req in &attempts {
        let resp = h.respond(req);
        assert_eq!(resp.status, 403);
        assert_eq!(
            h.idp.last_failure_reason().as_deref(),
            Some("cross_site_request")
        );
        assert!(set_cookies(&resp).is_empty());
    }
    let (_, _, s) = h.forward(&navigate(&app("/private"), Some(&session)));
    assert!(s.is_some(), "still signed in");
}

#[test]
fn same_origin_logout_redirects_to_the_end_session_endpoint_and_clears_the_session() {
    let h = Harness::new();
    let session = h.sign_in();
    let resp = h.respond(&request(
        Method::Post,
        &app("/auth/logout"),
        &[("Origin", APP), ("Accept", HTML), ("Cookie", &session)],
    ));
    assert_eq!(resp.status, 302, "{}", resp.body_text());
    let end = Url::parse(location(&resp)).expect("absolute end-session URL");
    assert_eq!(end.as_str().split('?').next(), Some(END_SESSION_URL));
    assert_eq!(query_param(&end, "client_id").as_deref(), Some("client"));
    assert_eq!(
        query_param(&end, "post_logout_redirect_uri").as_deref(),
        Some("https://app.example.com/auth/logged-out")
    );
    assert!(cookie_deleted(&resp, SESSION_COOKIE));
    assert_sets_no_session(&resp);
    let signed_out = h.idp.logged("sign_out");
    assert_eq!(
        signed_out.last().map(|l| l["sub"].clone()),
        Some(json!("alice"))
    );
}

#[test]
fn logout_with_the_provider_unreachable_still_clears_the_session() {
    let mut h = Harness::new();
    let session = h.sign_in();
    // A new isolate with nothing cached, and the provider down.
    h.cache = ProviderCache::new();
    h.idp.kv.borrow_mut().clear();
    h.idp.set_network_down(true);
    let resp = h.respond(&request(
        Method::Post,
        &app("/auth/logout"),
        &[("Origin", APP), ("Cookie", &session)],
    ));
    assert_eq!(resp.status, 302);
    assert_eq!(location(&resp), "/auth/logged-out");
    assert!(cookie_deleted(&resp, SESSION_COOKIE));
    assert_eq!(h.idp.logged("logout_local_only").len(), 1);

    let page = h.respond(&navigate(&app("/auth/logged-out"), None));
    assert_eq!(page.status, 200);
    assert!(page.body_text().contains("signed out"));
}

// ----- concurrent logins -----------------------------------------------------------------------

/// The `Cookie` header a browser holding `cookies` sends.
fn cookie_header(cookies: &[SetCookie]) -> Option<String> {
    (!cookies.is_empty()).then(|| {
        cookies
            .iter()
            .map(SetCookie::pair)
            .collect::<Vec<_>>()
            .join("; ")
    })
}

#[test]
fn a_login_beyond_the_cap_deletes_the_oldest_transaction_cookie() {
    let h = Harness::new();
    let mut logins: Vec<Login> = Vec::new();
    for i in 0..MAX_LIVE_TRANSACTIONS {
        let held: Vec<SetCookie> = logins.iter().map(|l| l.tx_cookie.clone()).collect();
        let login = h.start_login_at(APP, None, cookie_header(&held).as_deref());
        assert!(
            deleted_names(&login.response).is_empty(),
            "login {i} is within the cap"
        );
        logins.push(login);
        h.idp.advance(1);
    }
    let held: Vec<SetCookie> = logins.iter().map(|l| l.tx_cookie.clone()).collect();
    let newest = h.start_login_at(APP, None, cookie_header(&held).as_deref());
    assert_eq!(
        deleted_names(&newest.response),
        vec![logins[0].tx_cookie.name.clone()]
    );
    assert!(cookie_set(&newest.response, &newest.tx_cookie.name).is_some());

    // The other tabs' sign-ins still complete.
    let resp = h.finish_sign_in(&logins[1]);
    assert_eq!(resp.status, 302, "{}", resp.body_text());
}

#[test]
fn expired_or_unreadable_transaction_cookies_are_cleared_by_the_next_login() {
    let h = Harness::new();
    let old = h.start_login();
    h.idp.advance(TRANSACTION_TTL_SECS + 1);
    let junk = format!("{TX_COOKIE_PREFIX}junk=not-sealed");
    let login = h.start_login_at(
        APP,
        None,
        Some(&format!("{}; {junk}; theme=dark", old.tx_cookie.pair())),
    );
    let mut deleted = deleted_names(&login.response);
    deleted.sort();
    let mut expected = vec![
        old.tx_cookie.name.clone(),
        format!("{TX_COOKIE_PREFIX}junk"),
    ];
    expected.sort();
    assert_eq!(deleted, expected);
}

// --- Access policy and identity for the origin ---

/// A signed-in session whose ID token has `edit` applied (e.g. another user, other groups).
fn sign_in_as(h: &Harness, edit: impl FnOnce(&mut Value)) -> String {
    let resp = h.sign_in_with_claims(edit);
    assert_eq!(resp.status, 302, "sign-in failed: {}", resp.body_text());
    cookie_set(&resp, SESSION_COOKIE)
        .expect("session cookie")
        .pair()
}

const RULES: &str =
    "/admin/* group:admins\n/bob/* email:bob@example.com; /corp/* domain:example.com";

#[test]
fn policy_lets_each_person_reach_only_what_rules_allow() {
    let h = Harness::with_config(&[("ACCESS_RULES", RULES)]);
    let alice = h.sign_in();
    let bob = sign_in_as(&h, |c| {
        c["sub"] = "bob".into();
        c["email"] = "bob@example.com".into();
        c["groups"] = json!(["staff"]);
    });
    assert!(h.forward(&navigate(&app("/admin/x"), Some(&alice))).1);
    assert!(h.forward(&navigate(&app("/corp/x"), Some(&alice))).1);
    let denied = h.respond(&navigate(&app("/bob/x"), Some(&alice)));
    assert_eq!(denied.status, 403);
    let page = denied.body_text();
    assert!(page.contains("signed in as alice@example.com"), "{page}");
    assert!(page.contains("action=\"/auth/logout\""), "offers sign-out");

    assert!(h.forward(&navigate(&app("/bob/x"), Some(&bob))).1);
    let api = h.respond(&api_get(&app("/admin/x"), Some(&bob)));
    assert_eq!(api.status, 403);
    assert_eq!(json_body(&api)["error"], "forbidden");
}

#[test]
fn every_decision_writes_one_structured_log_line() {
    let h = Harness::with_config(&[("ACCESS_RULES", RULES)]);
    let alice = h.sign_in();
    h.forward(&navigate(&app("/admin/x?secret=1"), Some(&alice)));
    h.respond(&navigate(&app("/bob/y"), Some(&alice)));
    let lines = h.idp.logged("access");
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[0]["outcome"], "allow");
    assert_eq!(lines[0]["rule"], "ACCESS_RULES[1] /admin/*");
    assert_eq!(
        lines[0]["path"], "/admin/x",
        "the path only, never the query"
    );
    assert_eq!(lines[0]["sub"], "alice");
    assert_eq!(lines[0]["reason"], "matched group:admins");
    assert!(lines[0]["time"].is_u64());
    assert_eq!(lines[1]["outcome"], "deny");
    assert!(
        !lines.iter().any(|l| l.to_string().contains("portcullis=")),
        "no cookie in logs"
    );
}

#[test]
fn encoded_and_dotted_paths_cannot_slip_past_a_rule() {
    let h = Harness::with_config(&[
        ("ACCESS_RULES", "/admin/* group:admins"),
        ("PUBLIC_PATHS", "/public/*"),
    ]);
    let bob = sign_in_as(&h, |c| c["groups"] = json!(["staff"]));
    for path in [
        "/admin/x",
        "//admin/x",
        "/%61dmin/x",
        "/public/../admin/x",
        "/public/%2e%2e/admin/x",
        "/./admin",
    ] {
        let resp = h.respond(&navigate(&app(path), Some(&bob)));
        assert_eq!(resp.status, 403, "{path}");
    }
    for path in [
        "/public%2F..%2Fadmin/x",
        "/admin;x/y",
        "/admin./x",
        "/admin%00",
    ] {
        let resp = h.respond(&navigate(&app(path), Some(&bob)));
        assert_eq!(resp.status, 400, "{path}");
    }
}

#[test]
fn the_origin_receives_the_normalized_path_the_policy_judged() {
    let h = Harness::new();
    let alice = h.sign_in();
    match h.handle(&navigate(&app("//docs/./a/../%62?q=1"), Some(&alice))) {
        Outcome::Forward { path, .. } => assert_eq!(path, "/docs/b"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn unverified_email_does_not_satisfy_a_domain_rule() {
    let h = Harness::with_config(&[("ALLOW_EMAIL_DOMAINS", "example.com")]);
    let unverified = sign_in_as(&h, |c| c["email_verified"] = false.into());
    assert_eq!(
        h.respond(&navigate(&app("/"), Some(&unverified))).status,
        403
    );
    let verified = h.sign_in();
    assert!(h.forward(&navigate(&app("/"), Some(&verified))).1);
}

#[test]
fn roles_come_from_the_configured_claim() {
    let h = Harness::with_config(&[
        ("ALLOW_ROLES", "reader"),
        ("ROLES_CLAIM", "realm_access.roles"),
    ]);
    let reader = sign_in_as(&h, |c| c["realm_access"] = json!({"roles": ["reader"]}));
    assert!(h.forward(&navigate(&app("/"), Some(&reader))).1);
    let other = sign_in_as(&h, |c| c["roles"] = json!(["reader"]));
    assert_eq!(h.respond(&navigate(&app("/"), Some(&other))).status, 403);
}

#[test]
fn spoofed_identity_headers_are_replaced_by_the_real_identity() {
    let h = Harness::with_config(&[
        ("IDENTITY_HEADER_EMAIL", "X-Email"),
        ("IDENTITY_HEADER_GROUPS", "none"),
    ]);
    let alice = h.sign_in();
    let req = request(
        Method::Get,
        &app("/"),
        &[
            ("Accept", HTML),
            ("Cookie", &alice),
            ("X-Auth-Request-User", "mallory"),
            ("x_auth_request_user", "mallory"),
            ("X-Email", "mallory@evil"),
            ("X-Auth-Request-Groups", "admins"),
            ("X-Portcullis-Assertion", "forged"),
        ],
    );
    let (headers, _, user) = h.forward(&req);
    assert_eq!(user.as_deref(), Some("alice"));
    let all: Vec<(&str, &str)> = headers.iter().collect();
    assert_eq!(
        all.iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case("x-auth-request-user")
                || *n == "x_auth_request_user")
            .count(),
        1,
        "{all:?}"
    );
    assert_eq!(headers.get("X-Email"), Some("alice@example.com"));
    assert_eq!(
        headers.get("X-Auth-Request-Groups"),
        None,
        "groups header disabled and spoof stripped"
    );
    assert_eq!(headers.get("X-Portcullis-Assertion"), None);
}

#[test]
fn access_token_is_passed_only_when_configured() {
    let h = Harness::with_config(&[("PASS_ACCESS_TOKEN", "authorization")]);
    let alice = h.sign_in();
    let (headers, ..) = h.forward(&navigate(&app("/"), Some(&alice)));
    assert_eq!(
        headers.get("Authorization"),
        Some(format!("Bearer {ACCESS_TOKEN}").as_str())
    );
    let plain = Harness::new();
    let s = plain.sign_in();
    let (headers, ..) = plain.forward(&request(
        Method::Get,
        &app("/"),
        &[
            ("Accept", HTML),
            ("Cookie", &s),
            ("Authorization", "Bearer client-own"),
        ],
    ));
    assert_eq!(
        headers.get("Authorization"),
        Some("Bearer client-own"),
        "a client's own Authorization passes untouched"
    );
}

fn assertion_key_json(kid: &str) -> String {
    let sk = p256::ecdsa::SigningKey::random(&mut rand_core::OsRng);
    let mut v = serde_json::to_value(jwt_compact::jwk::JsonWebKey::from(&sk)).expect("jwk");
    v["kid"] = kid.into();
    v.to_string()
}

#[test]
fn the_signed_assertion_verifies_against_jwks_json() {
    let keys = format!(
        "[{}, {}]",
        assertion_key_json("current"),
        assertion_key_json("previous")
    );
    let h = Harness::with_config(&[
        ("ASSERTION_AUDIENCE", "origin-app"),
        ("ASSERTION_SIGNING_KEYS", &keys),
    ]);
    let alice = h.sign_in();
    let (headers, ..) = h.forward(&navigate(&app("/"), Some(&alice)));
    let jwt = headers
        .get("X-Portcullis-Assertion")
        .expect("assertion header")
        .to_owned();

    let jwks = h.respond(&api_get(&app("/auth/jwks.json"), None));
    assert_eq!(jwks.status, 200);
    let set = crate::jose::jwks::JwkSet::parse(&jwks.body).expect("jwks");
    assert_eq!(set.keys.len(), 2);
    let jws = crate::jose::jws::UnverifiedJws::parse(&jwt).expect("jws");
    assert_eq!(jws.header.kid.as_deref(), Some("current"));
    let key = set.select(&jws.header).expect("key");
    crate::jose::verify::verify_rust(jws.header.alg, key, jws.signing_input(), jws.signature())
        .expect("signature");
    let claims: Value = serde_json::from_slice(
        &URL_SAFE_NO_PAD
            .decode(jwt.split('.').nth(1).expect("payload"))
            .expect("b64"),
    )
    .expect("json");
    assert_eq!(claims["iss"], APP);
    assert_eq!(claims["aud"], "origin-app");
    assert_eq!(claims["sub"], "alice");
    assert_eq!(claims["email"], "alice@example.com");
    assert_eq!(claims["groups"], json!(["staff", "admins"]));
    assert_eq!(
        claims["exp"].as_u64().expect("exp") - claims["iat"].as_u64().expect("iat"),
        300
    );
}

#[test]
fn jwks_json_is_empty_without_an_assertion_key() {
    let h = Harness::new();
    let resp = h.respond(&api_get(&app("/auth/jwks.json"), None));
    assert_eq!(json_body(&resp), json!({"keys": []}));
}

// --- Review fixes ---

#[test]
fn an_unusable_provider_answer_falls_back_to_the_cached_copy_and_backs_off() {
    let h = Harness::new();
    h.start_login();
    h.idp.advance(PROVIDER_MAX_AGE + 1);
    h.idp
        .serve(DISCOVERY_URL, cacheable_json("<html>maintenance</html>"));
    let login = h.start_login();
    assert_eq!(
        login.param("client_id"),
        "client",
        "the stale copy still serves"
    );
    assert_eq!(h.idp.fetches_of(DISCOVERY_URL), 2);
    h.start_login();
    assert_eq!(
        h.idp.fetches_of(DISCOVERY_URL),
        2,
        "no refetch within the back-off minute"
    );
    h.idp.advance(61);
    h.start_login();
    assert_eq!(h.idp.fetches_of(DISCOVERY_URL), 3);
}

#[test]
fn provider_error_text_needs_a_live_sign_in() {
    let h = Harness::new();
    let forged = app("/auth/callback?error=access_denied&error_description=Your+account+is+locked%2C+call+555&state=made-up");
    let resp = h.respond(&navigate(&forged, None));
    assert_eq!(resp.status, 400);
    assert!(
        !resp.body_text().contains("555"),
        "forged provider text is not shown"
    );
    assert_eq!(
        h.idp.last_failure_reason().as_deref(),
        Some("login_expired")
    );
}

#[test]
fn pass_access_token_mode_never_forwards_the_clients_own_authorization() {
    let h = Harness::with_config(&[
        ("PASS_ACCESS_TOKEN", "authorization"),
        ("PUBLIC_PATHS", "/public/*"),
    ]);
    let req = request(
        Method::Get,
        &app("/public/x"),
        &[("Accept", HTML), ("Authorization", "Bearer forged")],
    );
    let (headers, protected, _) = h.forward(&req);
    assert!(!protected);
    assert_eq!(headers.get("Authorization"), None);
}

#[test]
fn access_log_deny_keeps_only_denials() {
    let h = Harness::with_config(&[("ACCESS_RULES", RULES), ("ACCESS_LOG", "deny")]);
    let alice = h.sign_in();
    h.forward(&navigate(&app("/admin/x"), Some(&alice)));
    h.respond(&navigate(&app("/bob/y"), Some(&alice)));
    let lines = h.idp.logged("access");
    assert_eq!(lines.len(), 1);
    assert_eq!(lines[0]["outcome"], "deny");
}

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
    url::form_urlencoded::parse(req.body.as_deref().unwrap_or_default().as_bytes())
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
                (headers, cookies)
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

#[test]
fn a_due_refresh_rewrites_the_cookie_and_passes_the_new_access_token() {
    let h = Harness::with_config(&[
        ("PASS_ACCESS_TOKEN", "authorization"),
        ("SESSION_REFRESH_MARGIN", "10s"),
    ]);
    let session = h.sign_in_with_refresh(vec![
        refresh_answer("access-token-2", "refresh-token-2"),
        refresh_answer("access-token-3", "refresh-token-3"),
    ]);

    // Not yet within the margin of the access token's expiry: nothing is refreshed.
    h.idp.advance(49);
    let (headers, cookies) = h.forward_setting(&navigate(&app("/private"), Some(&session)));
    assert_eq!(
        headers.get("Authorization"),
        Some(format!("Bearer {ACCESS_TOKEN}").as_str())
    );
    assert!(cookies.is_empty(), "{cookies:?}");
    assert!(refresh_grants(&h).is_empty());

    // Within it: the refresh token is spent, and the new tokens go into a new cookie.
    h.idp.advance(2);
    let (headers, cookies) = h.forward_setting(&navigate(&app("/private"), Some(&session)));
    assert_eq!(headers.get("Authorization"), Some("Bearer access-token-2"));
    assert_eq!(headers.get("X-Auth-Request-User"), Some("alice"));
    let refreshed = session_cookie_in(&cookies).expect("the refreshed session is set");
    assert_secure_browser_cookie(&refreshed);
    assert_ne!(refreshed.pair(), session);
    assert_eq!(refresh_grants(&h), vec![REFRESH_TOKEN.to_owned()]);
    let grant = h.idp.requests_to(TOKEN_URL).pop().expect("refresh request");
    assert_eq!(grant.method, "POST");
    assert_eq!(
        grant.headers.get("Authorization"),
        Some(
            format!(
                "Basic {}",
                STANDARD.encode(format!("client:{CLIENT_SECRET}"))
            )
            .as_str()
        ),
        "the refresh authenticates the client"
    );
    assert_eq!(h.idp.logged("session_refreshed").len(), 1);

    // The new cookie carries the new tokens: no refresh until its own margin...
    let (headers, cookies) =
        h.forward_setting(&navigate(&app("/private"), Some(&refreshed.pair())));
    assert_eq!(headers.get("Authorization"), Some("Bearer access-token-2"));
    assert!(cookies.is_empty());
    assert_eq!(refresh_grants(&h).len(), 1);

    // ...and then it spends the rotated refresh token, not the first one.
    h.idp.advance(51);
    let (headers, cookies) =
        h.forward_setting(&navigate(&app("/private"), Some(&refreshed.pair())));
    assert_eq!(headers.get("Authorization"), Some("Bearer access-token-3"));
    assert!(session_cookie_in(&cookies).is_some());
    assert_eq!(
        refresh_grants(&h),
        vec![REFRESH_TOKEN.to_owned(), "refresh-token-2".to_owned()]
    );

    let logs = h
        .idp
        .logs
        .borrow()
        .iter()
        .map(Value::to_string)
        .collect::<Vec<_>>()
        .join("\n");
    for secret in [REFRESH_TOKEN, "refresh-token-2", "access-token-2"] {
        assert!(!logs.contains(secret), "a log line contains {secret}");
    }
}

#[test]
fn a_request_with_the_old_cookie_just_after_a_refresh_shares_it() {
    let h = Harness::with_config(&[
        ("PASS_ACCESS_TOKEN", "authorization"),
        ("SESSION_REFRESH_MARGIN", "10s"),
    ]);
    let session = h.sign_in_with_refresh(vec![
        refresh_answer("access-token-2", "refresh-token-2"),
        refused_refresh(),
    ]);
    h.idp.advance(55);
    let (headers, cookies) = h.forward_setting(&navigate(&app("/a"), Some(&session)));
    assert_eq!(headers.get("Authorization"), Some("Bearer access-token-2"));
    assert!(session_cookie_in(&cookies).is_some());

    // Another tab's request left with the old cookie before the new one arrived.
    h.idp.advance(1);
    let (headers, cookies) = h.forward_setting(&navigate(&app("/b"), Some(&session)));
    assert_eq!(headers.get("Authorization"), Some("Bearer access-token-2"));
    assert!(
        session_cookie_in(&cookies).is_some(),
        "it gets the new session too"
    );
    assert_eq!(
        refresh_grants(&h).len(),
        1,
        "the spent refresh token is not sent again"
    );
}

#[test]
fn a_refused_refresh_after_the_access_token_expired_ends_the_session() {
    let h = Harness::new();
    let session = h.sign_in_with_refresh(vec![refused_refresh()]);
    h.idp.advance(61);
    let resp = h.respond(&navigate(&app("/private?x=1"), Some(&session)));
    assert_eq!(resp.status, 302, "{}", resp.body_text());
    let to_login = Url::parse(APP)
        .and_then(|a| a.join(location(&resp)))
        .expect("login URL");
    assert_eq!(to_login.path(), "/auth/login");
    assert_eq!(
        query_param(&to_login, "return_to").as_deref(),
        Some("/private?x=1")
    );
    assert!(cookie_deleted(&resp, SESSION_COOKIE));
    assert_sets_no_session(&resp);
    assert_eq!(refresh_grants(&h), vec![REFRESH_TOKEN.to_owned()]);
    let ended = h.idp.logged("session_ended");
    assert_eq!(ended.len(), 1);
    assert_eq!(ended[0]["sub"], "alice");
    assert_eq!(ended[0]["reason"], "refresh refused");
    assert!(
        ended[0]["detail"]
            .as_str()
            .is_some_and(|d| d.contains("invalid_grant")),
        "{ended:?}"
    );

    // A program with the same cookie gets a 401; the refusal is not asked for again.
    let resp = h.respond(&api_get(&app("/api/items"), Some(&session)));
    assert_eq!(resp.status, 401);
    assert!(cookie_deleted(&resp, SESSION_COOKIE));
    assert_eq!(refresh_grants(&h).len(), 1);
}

#[test]
fn a_refused_refresh_keeps_the_session_while_its_access_token_lasts() {
    let h = Harness::new();
    let session = h.sign_in_with_refresh(vec![refused_refresh()]);
    // Due at once (the default margin is a minute), refused, but the access token is live.
    h.idp.advance(30);
    let (_, cookies) = h.forward_setting(&navigate(&app("/private"), Some(&session)));
    assert!(cookies.is_empty(), "{cookies:?}");
    assert_eq!(h.idp.logged("refresh_refused_session_kept").len(), 1);
    assert!(h.idp.logged("session_ended").is_empty());

    h.idp.advance(31);
    let resp = h.respond(&navigate(&app("/private"), Some(&session)));
    assert_eq!(resp.status, 302);
    assert!(cookie_deleted(&resp, SESSION_COOKIE));
    assert_eq!(h.idp.logged("session_ended").len(), 1);
}

#[test]
fn a_refresh_with_the_provider_down_goes_on_with_the_old_session() {
    let h = Harness::with_config(&[
        ("PASS_ACCESS_TOKEN", "authorization"),
        ("SESSION_REFRESH_MARGIN", "10s"),
    ]);
    let session = h.sign_in_with_refresh(vec![refresh_answer("access-token-2", "refresh-token-2")]);
    h.idp.advance(55);
    h.idp.set_network_down(true);
    let (headers, cookies) = h.forward_setting(&navigate(&app("/private"), Some(&session)));
    assert!(cookies.is_empty(), "no cookie rewrite: {cookies:?}");
    assert_eq!(
        headers.get("Authorization"),
        Some(format!("Bearer {ACCESS_TOKEN}").as_str()),
        "the old access token is still valid"
    );
    assert_eq!(h.idp.fetches_of(TOKEN_URL), 2, "the refresh was tried");
    let unavailable = h.idp.logged("refresh_unavailable");
    assert_eq!(unavailable.len(), 1);
    assert_eq!(unavailable[0]["sub"], "alice");
    assert!(h.idp.logged("session_ended").is_empty());

    // The outage is not remembered: once the provider is back, the next request refreshes.
    h.idp.set_network_down(false);
    let (headers, cookies) = h.forward_setting(&navigate(&app("/private"), Some(&session)));
    assert_eq!(headers.get("Authorization"), Some("Bearer access-token-2"));
    assert!(session_cookie_in(&cookies).is_some());
}

#[test]
fn a_refreshed_id_token_for_another_subject_ends_the_session() {
    let h = Harness::new();
    let other = token_answer_with(json!({
        "id_token": h.refreshed_id_token("mallory"),
        "access_token": "access-token-2", "expires_in": 60,
    }));
    let session = h.sign_in_with_refresh(vec![other]);
    h.idp.advance(61);
    let resp = h.respond(&navigate(&app("/private"), Some(&session)));
    assert_eq!(resp.status, 302, "{}", resp.body_text());
    assert!(location(&resp).starts_with("/auth/login"));
    assert!(cookie_deleted(&resp, SESSION_COOKIE));
    assert_sets_no_session(&resp);
    let ended = h.idp.logged("session_ended");
    assert_eq!(ended.len(), 1);
    assert!(
        ended[0]["detail"]
            .as_str()
            .is_some_and(|d| d.contains("another subject")),
        "{ended:?}"
    );
    assert!(h.idp.logged("session_refreshed").is_empty());
}

#[test]
fn a_refreshed_id_token_for_the_same_person_updates_the_identity() {
    let h = Harness::with_config(&[("SESSION_REFRESH_MARGIN", "10s")]);
    let mut claims = h.claims("unused");
    claims.as_object_mut().expect("claims").remove("nonce");
    claims["groups"] = json!(["staff", "auditors"]);
    claims["email"] = "alice@new.example.com".into();
    let answer = token_answer_with(json!({
        "id_token": h.key.sign(&claims), "access_token": "access-token-2", "expires_in": 60,
    }));
    let session = h.sign_in_with_refresh(vec![answer]);
    h.idp.advance(55);
    let (headers, cookies) = h.forward_setting(&navigate(&app("/private"), Some(&session)));
    assert_eq!(headers.get("X-Auth-Request-User"), Some("alice"));
    assert_eq!(headers.get("X-Auth-Request-Groups"), Some("staff,auditors"));
    assert_eq!(
        headers.get("X-Auth-Request-Email"),
        Some("alice@new.example.com")
    );
    let refreshed = session_cookie_in(&cookies).expect("refreshed cookie");
    let info = json_body(&h.respond(&api_get(&app("/auth/userinfo"), Some(&refreshed.pair()))));
    assert_eq!(info["groups"], json!(["staff", "auditors"]));
    assert_eq!(
        info["iat"].as_u64(),
        Some(NOW),
        "the session keeps its start"
    );
}

// ----- idle sessions ---------------------------------------------------------------------------

#[test]
fn an_idle_session_ends_and_an_active_one_is_rewritten_only_every_tenth_of_the_idle_time() {
    // Ten minutes idle: the timer moves (and the cookie is rewritten) once a minute at most.
    let h = Harness::with_config(&[("SESSION_IDLE_TTL", "10m")]);
    let first = h.sign_in();

    h.idp.advance(30);
    let (_, cookies) = h.forward_setting(&navigate(&app("/private"), Some(&first)));
    assert!(cookies.is_empty(), "within a tenth: {cookies:?}");

    h.idp.advance(40);
    let (_, cookies) = h.forward_setting(&navigate(&app("/private"), Some(&first)));
    let moved = session_cookie_in(&cookies).expect("past a tenth the timer moves");
    assert_secure_browser_cookie(&moved);
    assert!(moved.has(&format!("Max-Age={}", h.cfg.session_ttl_secs - 70)));

    h.idp.advance(30);
    let (_, cookies) = h.forward_setting(&navigate(&app("/private"), Some(&moved.pair())));
    assert!(cookies.is_empty(), "{cookies:?}");

    // Ten minutes after sign-in: the cookie never used since is idle; the moved one is not.
    h.idp.advance(500);
    let resp = h.respond(&navigate(&app("/private"), Some(&first)));
    assert_eq!(resp.status, 302);
    assert!(location(&resp).starts_with("/auth/login"));
    assert!(cookie_deleted(&resp, SESSION_COOKIE));
    assert_eq!(
        h.idp
            .logged("session_rejected")
            .last()
            .map(|l| l["reason"].clone()),
        Some(json!("Idle"))
    );
    let (_, _, user) = h.forward(&navigate(&app("/private"), Some(&moved.pair())));
    assert_eq!(user.as_deref(), Some("alice"));

    // And unused for ten minutes after its last move, it ends too.
    h.idp.advance(70);
    let resp = h.respond(&api_get(&app("/api/items"), Some(&moved.pair())));
    assert_eq!(resp.status, 401);
    assert!(cookie_deleted(&resp, SESSION_COOKIE));
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

#[test]
fn durable_object_sessions_keep_only_a_reference_in_the_cookie_and_end_at_logout() {
    let h = durable_harness(&[]);
    let resp = h.finish_sign_in(&h.start_login());
    assert_eq!(resp.status, 302, "{}", resp.body_text());
    let cookie = cookie_set(&resp, SESSION_COOKIE).expect("session cookie");
    assert_secure_browser_cookie(&cookie);
    assert!(
        cookie.value.len() < 400 && !cookie.value.contains('~'),
        "a small reference, not the session: {} bytes",
        cookie.value.len()
    );
    let chunks: Vec<String> = set_cookies(&resp)
        .into_iter()
        .map(|c| c.name)
        .filter(|n| {
            n.strip_prefix(&format!("{SESSION_COOKIE}-"))
                .is_some_and(|i| i.bytes().all(|b| b.is_ascii_digit()))
        })
        .collect();
    assert!(chunks.is_empty(), "no chunks: {chunks:?}");
    let stored = stored_sessions(&h);
    assert_eq!(stored.len(), 1, "{stored:?}");
    assert!(stored[0].0.starts_with("user:") && stored[0].1 == 1);
    let session = cookie.pair();

    let (headers, cookies) = h.forward_setting(&navigate(&app("/private"), Some(&session)));
    assert_eq!(headers.get("X-Auth-Request-User"), Some("alice"));
    assert!(cookies.is_empty());
    let info = json_body(&h.respond(&api_get(&app("/auth/userinfo"), Some(&session))));
    assert_eq!(info["email"], "alice@example.com");

    let resp = h.respond(&request(
        Method::Post,
        &app("/auth/logout"),
        &[("Origin", APP), ("Accept", HTML), ("Cookie", &session)],
    ));
    assert_eq!(resp.status, 302, "{}", resp.body_text());
    assert!(cookie_deleted(&resp, SESSION_COOKIE));
    assert_eq!(
        h.idp.logged("sign_out").last().map(|l| l["sub"].clone()),
        Some(json!("alice"))
    );
    assert!(stored_sessions(&h).is_empty(), "the object deleted it");

    // The browser (or a thief) still holding the cookie is signed out.
    let resp = h.respond(&navigate(&app("/private"), Some(&session)));
    assert_eq!(resp.status, 302);
    assert!(location(&resp).starts_with("/auth/login"));
    assert!(cookie_deleted(&resp, SESSION_COOKIE));
    assert_eq!(
        h.idp
            .logged("session_rejected")
            .last()
            .map(|l| l["reason"].clone()),
        Some(json!("Ended"))
    );
}

#[test]
fn an_unreachable_session_store_is_a_503_not_a_sign_in() {
    let h = durable_harness(&[]);
    let session = h.sign_in();
    h.idp.store_down.set(true);
    for req in [
        navigate(&app("/private"), Some(&session)),
        api_get(&app("/api/items"), Some(&session)),
        api_get(&app("/auth/userinfo"), Some(&session)),
    ] {
        let resp = h.respond(&req);
        assert_eq!(resp.status, 503, "{}", req.url);
        assert_eq!(resp.headers.get("Location"), None);
        assert!(
            set_cookies(&resp).is_empty(),
            "the cookie is kept: {:?}",
            set_cookies(&resp)
        );
        assert_eq!(
            h.idp.last_failure_reason().as_deref(),
            Some("session_store_unavailable")
        );
    }
    assert_eq!(h.idp.logged("session_store_failed").len(), 3);

    // Sign-in fails the same way rather than handing out a cookie that leads nowhere.
    let resp = h.finish_sign_in(&h.start_login());
    assert_eq!(resp.status, 503);
    assert_sets_no_session(&resp);

    h.idp.store_down.set(false);
    let (_, _, user) = h.forward(&navigate(&app("/private"), Some(&session)));
    assert_eq!(user.as_deref(), Some("alice"));
}

#[test]
fn durable_object_sessions_refresh_inside_the_object_without_a_cookie_rewrite() {
    let h = durable_harness(&[
        ("PASS_ACCESS_TOKEN", "authorization"),
        ("SESSION_REFRESH_MARGIN", "10s"),
    ]);
    let session = h.sign_in_with_refresh(vec![
        refresh_answer("access-token-2", "refresh-token-2"),
        refused_refresh(),
    ]);
    h.idp.advance(51);
    let (headers, cookies) = h.forward_setting(&navigate(&app("/private"), Some(&session)));
    assert_eq!(headers.get("Authorization"), Some("Bearer access-token-2"));
    assert!(cookies.is_empty(), "the cookie only names the session");
    assert_eq!(
        h.idp
            .logged("session_refreshed")
            .last()
            .map(|l| l["store"].clone()),
        Some(json!("durable_object"))
    );

    // The object kept the rotated refresh token; its refusal, past expiry, ends the session.
    h.idp.advance(61);
    let resp = h.respond(&navigate(&app("/private"), Some(&session)));
    assert_eq!(resp.status, 302);
    assert!(cookie_deleted(&resp, SESSION_COOKIE));
    assert_eq!(
        refresh_grants(&h),
        vec![REFRESH_TOKEN.to_owned(), "refresh-token-2".to_owned()]
    );
    assert_eq!(h.idp.logged("session_ended").len(), 1);
    assert!(stored_sessions(&h).is_empty());
}

// ----- back-channel logout ---------------------------------------------------------------------

/// A logout token signed by the provider's key, with `edit` applied to its claims.
fn logout_token(h: &Harness, edit: impl FnOnce(&mut Value)) -> String {
    let mut header = h.key.header();
    header["typ"] = "logout+jwt".into();
    let mut claims = json!({
        "iss": ISSUER, "aud": "client", "iat": h.idp.now(), "jti": "jti-1",
        "sub": "alice", "sid": "sid-1", "events": {BACKCHANNEL_LOGOUT_EVENT: {}},
    });
    edit(&mut claims);
    h.key.sign_raw(&header, &claims)
}

/// The provider POSTing a logout token.
fn backchannel_logout(h: &Harness, token: &str) -> Response {
    let mut req = request(
        Method::Post,
        &app("/auth/backchannel-logout"),
        &[("Content-Type", "application/x-www-form-urlencoded")],
    );
    req.body = Some(
        url::form_urlencoded::Serializer::new(String::new())
            .append_pair("logout_token", token)
            .finish(),
    );
    h.respond(&req)
}

fn is_signed_in(h: &Harness, session: &str) -> bool {
    match h.handle(&api_get(&app("/private"), Some(session))) {
        Outcome::Forward { .. } => true,
        Outcome::Respond(r) => {
            assert_eq!(r.status, 401, "{}", r.body_text());
            false
        }
    }
}

#[test]
fn back_channel_logout_ends_the_sessions_the_logout_token_names() {
    let h = durable_harness(&[]);
    let first = sign_in_as(&h, |c| c["sid"] = "sid-1".into());
    let second = sign_in_as(&h, |c| c["sid"] = "sid-2".into());
    let third = h.sign_in();
    assert!(is_signed_in(&h, &first) && is_signed_in(&h, &second) && is_signed_in(&h, &third));

    // sub and sid: that provider session of that person.
    let resp = backchannel_logout(&h, &logout_token(&h, |_| {}));
    assert_eq!(resp.status, 200, "{}", resp.body_text());
    assert_eq!(resp.headers.get("Cache-Control"), Some("no-store"));
    assert!(!is_signed_in(&h, &first));
    assert!(is_signed_in(&h, &second) && is_signed_in(&h, &third));
    let done = h.idp.logged("backchannel_logout");
    assert_eq!(
        done.last().map(|l| l["sessions_ended"].clone()),
        Some(json!(1))
    );

    // sid alone: found through the provider-session index.
    let resp = backchannel_logout(
        &h,
        &logout_token(&h, |c| {
            c.as_object_mut().expect("claims").remove("sub");
            c["sid"] = "sid-2".into();
            c["jti"] = "jti-2".into();
        }),
    );
    assert_eq!(resp.status, 200, "{}", resp.body_text());
    assert!(!is_signed_in(&h, &second));
    assert!(is_signed_in(&h, &third));

    // sub alone: every session of that person.
    let resp = backchannel_logout(
        &h,
        &logout_token(&h, |c| {
            c.as_object_mut().expect("claims").remove("sid");
            c["jti"] = "jti-3".into();
        }),
    );
    assert_eq!(resp.status, 200, "{}", resp.body_text());
    assert!(!is_signed_in(&h, &third));
    assert!(stored_sessions(&h).is_empty());
}

#[test]
fn back_channel_logout_refuses_bad_logout_tokens() {
    let h = durable_harness(&[]);
    let session = sign_in_as(&h, |c| c["sid"] = "sid-1".into());
    let impostor = TestKey::es256(Some("k1"));
    let mut forged_header = impostor.header();
    forged_header["typ"] = "logout+jwt".into();
    let good_claims = json!({
        "iss": ISSUER, "aud": "client", "iat": h.idp.now(), "jti": "jti-1",
        "sub": "alice", "sid": "sid-1", "events": {BACKCHANNEL_LOGOUT_EVENT: {}},
    });
    let bad = [
        ("nonce", logout_token(&h, |c| c["nonce"] = "n-1".into())),
        (
            "wrong aud",
            logout_token(&h, |c| c["aud"] = "another-client".into()),
        ),
        ("no event", logout_token(&h, |c| c["events"] = json!({}))),
        ("an ID token", h.key.sign(&h.claims("n"))),
        (
            "unpublished key",
            impostor.sign_raw(&forged_header, &good_claims),
        ),
        ("not a JWT", "not-a-jwt".to_owned()),
    ];
    for (what, token) in &bad {
        let resp = backchannel_logout(&h, token);
        assert_eq!(resp.status, 400, "{what}: {}", resp.body_text());
        assert_eq!(
            resp.headers.get("Cache-Control"),
            Some("no-store"),
            "{what}"
        );
        assert_eq!(json_body(&resp)["error"], "invalid_request", "{what}");
    }
    assert_eq!(h.idp.logged("backchannel_logout_refused").len(), bad.len());

    let mut no_token = request(
        Method::Post,
        &app("/auth/backchannel-logout"),
        &[("Content-Type", "application/x-www-form-urlencoded")],
    );
    no_token.body = Some("other=1".into());
    assert_eq!(h.respond(&no_token).status, 400);
    assert_eq!(
        h.respond(&api_get(&app("/auth/backchannel-logout"), None))
            .status,
        405
    );

    assert!(is_signed_in(&h, &session), "nothing was ended");
    assert!(h.idp.logged("backchannel_logout").is_empty());
}

#[test]
fn back_channel_logout_with_cookie_sessions_is_501() {
    let h = Harness::new();
    let session = h.sign_in();
    let resp = backchannel_logout(&h, &logout_token(&h, |_| {}));
    assert_eq!(resp.status, 501, "{}", resp.body_text());
    assert_eq!(resp.headers.get("Cache-Control"), Some("no-store"));
    assert_eq!(json_body(&resp)["error"], "not_supported");
    assert_eq!(h.idp.logged("backchannel_logout_refused").len(), 1);
    assert!(is_signed_in(&h, &session));
}

// ----- RP-initiated logout ---------------------------------------------------------------------

#[test]
fn rp_initiated_logout_sends_the_hint_and_state_revokes_and_checks_the_state_on_return() {
    let h = Harness::new();
    let mut doc = discovery_doc(true);
    doc["revocation_endpoint"] = REVOCATION_URL.into();
    h.idp.serve(DISCOVERY_URL, cacheable_json(doc.to_string()));
    h.idp.serve(REVOCATION_URL, Response::new(200));

    let login = h.start_login();
    let id_token = h.key.sign(&h.claims(&login.nonce));
    h.idp.serve(
        TOKEN_URL,
        token_answer_with(json!({"id_token": id_token, "refresh_token": REFRESH_TOKEN})),
    );
    let resp = h.return_from_provider(&login, &login.success_url());
    let session = cookie_set(&resp, SESSION_COOKIE)
        .expect("session cookie")
        .pair();

    let resp = h.respond(&request(
        Method::Post,
        &app("/auth/logout"),
        &[("Origin", APP), ("Accept", HTML), ("Cookie", &session)],
    ));
    assert_eq!(resp.status, 302, "{}", resp.body_text());
    assert!(cookie_deleted(&resp, SESSION_COOKIE));
    let end = Url::parse(location(&resp)).expect("absolute end-session URL");
    assert_eq!(end.as_str().split('?').next(), Some(END_SESSION_URL));
    assert_eq!(
        query_param(&end, "id_token_hint").as_deref(),
        Some(id_token.as_str())
    );
    assert_eq!(query_param(&end, "client_id").as_deref(), Some("client"));
    assert_eq!(
        query_param(&end, "post_logout_redirect_uri").as_deref(),
        Some("https://app.example.com/auth/logged-out")
    );
    let state = query_param(&end, "state").expect("the logout URL carries state");
    assert!(state.len() >= 16, "{state}");
    let logout_cookie =
        cookie_set(&resp, "__Host-portcullis-logout").expect("the state is remembered");
    assert_secure_browser_cookie(&logout_cookie);
    assert!(logout_cookie.has("Max-Age=600"));
    assert!(!logout_cookie.value.contains(&state), "sealed");

    // The refresh token was revoked (RFC 7009), with client authentication.
    let revocations = h.idp.requests_to(REVOCATION_URL);
    assert_eq!(revocations.len(), 1);
    assert_eq!(revocations[0].method, "POST");
    let form = form_of(&revocations[0]);
    assert_eq!(form.get("token").map(String::as_str), Some(REFRESH_TOKEN));
    assert_eq!(
        form.get("token_type_hint").map(String::as_str),
        Some("refresh_token")
    );
    assert!(revocations[0]
        .headers
        .get("Authorization")
        .is_some_and(|a| a.starts_with("Basic ")));
    assert_eq!(h.idp.logged("refresh_token_revoked").len(), 1);

    // The provider sends the browser back with the state: it matches the cookie.
    let back = |state: &str, cookie: Option<&str>| {
        let mut url = Url::parse(&app("/auth/logged-out")).expect("url");
        url.query_pairs_mut().append_pair("state", state);
        h.respond(&navigate(url.as_str(), cookie))
    };
    let resp = back(&state, Some(&logout_cookie.pair()));
    assert_eq!(resp.status, 200, "{}", resp.body_text());
    assert!(resp.body_text().contains("signed out"));
    assert!(cookie_deleted(&resp, &logout_cookie.name));

    let resp = back("another-state", Some(&logout_cookie.pair()));
    assert_eq!(resp.status, 400);
    assert_eq!(
        h.idp.last_failure_reason().as_deref(),
        Some("logout_state_mismatch")
    );
    assert!(cookie_deleted(&resp, &logout_cookie.name));

    let resp = back(&state, None);
    assert_eq!(resp.status, 400, "no cookie, no match");

    h.idp.advance(600);
    let resp = back(&state, Some(&logout_cookie.pair()));
    assert_eq!(resp.status, 400, "the state has expired");
}

#[test]
fn rp_initiated_logout_on_loopback_uses_a_plain_logout_cookie_name() {
    let h = Harness::new();
    let login = h.start_login_at(LOOPBACK_APP, None, None);
    let resp = h.finish_sign_in(&login);
    let session = cookie_set(&resp, "portcullis").expect("session").pair();
    let resp = h.respond(&request(
        Method::Post,
        &format!("{LOOPBACK_APP}/auth/logout"),
        &[("Origin", LOOPBACK_APP), ("Cookie", &session)],
    ));
    assert_eq!(resp.status, 302, "{}", resp.body_text());
    let end = Url::parse(location(&resp)).expect("absolute end-session URL");
    assert_eq!(
        query_param(&end, "post_logout_redirect_uri").as_deref(),
        Some("http://127.0.0.1:8787/auth/logged-out")
    );
    let cookie = cookie_set(&resp, "portcullis-logout").expect("plain logout cookie");
    assert!(!cookie.has("Secure"));
    assert!(
        h.idp.requests_to(REVOCATION_URL).is_empty(),
        "no revocation endpoint"
    );
}
