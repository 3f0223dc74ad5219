//! The worker shell: adapts workerd's request, environment and bindings to the gate and its
//! answer back. No decisions are made here.

use std::cell::RefCell;
use std::future::Future;
use std::rc::Rc;
use std::sync::{Arc, Mutex};
use std::task::{Context as TaskContext, Poll, Wake, Waker};

use wasm_bindgen::closure::Closure;
use wasm_bindgen::prelude::wasm_bindgen;
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;
use worker::{js_sys, web_sys, Env};

use crate::access::token_cache::TokenCache;
use crate::base::log_line::log_line;
use crate::base::time::UnixTime;
use crate::config::{Config, ConfigError, Upstream, DEFAULT_AUTH_PREFIX};
use crate::gate::error::GateError;
use crate::gate::{Gate, GateRequest, Outcome};
use crate::http::http_url::HttpUrl;
use crate::http::upstream::OriginHeaders;
use crate::http::wire::{forward_plan, pairs, parse_head, parse_pairs, protected_response_edits};
use crate::http::{Headers, Method, OutboundRequest, Response};
use crate::oidc::provider::ProviderCache;
use crate::platform::NetworkError;
use crate::platform::Platform;
use crate::runtime::webcrypto::WebCryptoVerifier;
use crate::session::coalescer::RefreshCoalescer;
use crate::session::durable_object::{ObjectName, StoreAnswer, StoreCall, StoreError};
use crate::session::store::{OpenedSessions, SessionObjects};

const KV_BINDING: &str = "JWKS_CACHE";
const ASSETS_BINDING: &str = "ASSETS";
const SESSIONS_BINDING: &str = "SESSIONS";
/// Largest body read for the routes that take one (back-channel logout).
const MAX_BODY: usize = 64 * 1024;

/// What lives as long as the isolate: the parsed configuration and the provider cache.
pub(crate) struct Isolate {
    pub config: Config,
    pub cache: ProviderCache,
    pub tokens: TokenCache,
    pub refreshes: RefreshCoalescer,
    pub opened: OpenedSessions,
    pub verifier: WebCryptoVerifier,
    pub glue: Glue,
}

thread_local! {
    static ISOLATE: RefCell<Option<Rc<Isolate>>> = const { RefCell::new(None) };
}

pub(crate) fn isolate(env: &Env) -> std::result::Result<Rc<Isolate>, GateError> {
    if let Some(i) = ISOLATE.with(|s| s.borrow().clone()) {
        return Ok(i);
    }
    // Config asks for exactly the names it knows; vars and secrets read the same way.
    let config = Config::from_vars(|name| {
        env.var(name)
            .map(|v| v.to_string())
            .or_else(|_| env.secret(name).map(|v| v.to_string()))
            .ok()
    })
    .map_err(GateError::Config)?;
    // A named service binding that wrangler.toml does not declare: refused like any other
    // configuration error, before anyone signs in.
    if let Upstream::Service(name) = &config.upstream {
        if env.service(name).is_err() {
            return Err(GateError::Config(ConfigError {
                variable: "UPSTREAM".into(),
                problem: format!(
                    "names the service binding {name}, but wrangler.toml has no [[services]] entry with binding = \"{name}\""
                ),
            }));
        }
    }
    let i = Rc::new(Isolate {
        cache: ProviderCache::new(),
        tokens: TokenCache::default(),
        refreshes: RefreshCoalescer::default(),
        opened: OpenedSessions::default(),
        verifier: WebCryptoVerifier::default(),
        glue: Glue::new(config.auth_prefix.clone()),
        config,
    });
    ISOLATE.with(|s| *s.borrow_mut() = Some(i.clone()));
    Ok(i)
}

pub(crate) struct WorkerPlatform<'a> {
    pub env: &'a Env,
    pub verifier: &'a WebCryptoVerifier,
}

impl Platform for WorkerPlatform<'_> {
    type Verifier = WebCryptoVerifier;

    fn verifier(&self) -> &WebCryptoVerifier {
        self.verifier
    }

    fn now(&self) -> UnixTime {
        // `Date.now()` itself: worker's `Date::now` builds a Date object for each reading.
        // Milliseconds since 1970 as an f64 are whole and far below 2^53: the cast is exact.
        UnixTime::from_secs(js_sys::Date::now() as u64 / 1000)
    }

    async fn fetch(&self, req: OutboundRequest) -> std::result::Result<Response, NetworkError> {
        let mut headers = req.headers;
        headers.set("User-Agent", "portcullis");
        let target = req.url.as_str();
        send_own(
            &JsValue::UNDEFINED,
            target,
            req.method,
            &headers,
            req.body.as_deref(),
        )
        .await
        .map_err(NetworkError)
    }

    async fn kv_get(&self, key: &str) -> Option<String> {
        if !self.has_binding(KV_BINDING) {
            return None;
        }
        let promise = kv_get(self.env, KV_BINDING, key).ok()?;
        JsFuture::from(promise).await.ok()?.as_string()
    }

    async fn kv_put(&self, key: &str, value: &str, ttl_secs: u64) {
        if !self.has_binding(KV_BINDING) {
            self.log_json(log_line!("level":"warn","event":"kv_missing","detail":"no JWKS_CACHE binding: caching in isolate memory only"));
            return;
        }
        // KV refuses expirationTtl below 60 s.
        let ttl = ttl_secs.max(60) as f64;
        let result = match kv_put(self.env, KV_BINDING, key, value, ttl) {
            Ok(promise) => JsFuture::from(promise).await.map(|_| ()),
            Err(e) => Err(e),
        };
        if let Err(e) = result {
            self.log_json(
                log_line!("level":"warn","event":"kv_write_failed","detail":js_error(&e)),
            );
        }
    }

    async fn sleep_ms(&self, ms: u64) {
        // A promise, not worker::Delay: Delay keeps the waker of its first poll, which is not
        // a task's when the request is first polled outside the executor (see `Relay`).
        let _ = JsFuture::from(sleep(ms as f64)).await;
    }

    fn log_json(&self, line: String) {
        log_js(&line);
    }
}

impl SessionObjects for WorkerPlatform<'_> {
    async fn call(
        &self,
        object: &ObjectName,
        call: StoreCall,
    ) -> std::result::Result<StoreAnswer, StoreError> {
        let failed = |why: String| {
            StoreError(format!(
                "session store ({SESSIONS_BINDING} Durable Object binding): {why}"
            ))
        };
        let stub = session_object(self.env, SESSIONS_BINDING, object.as_str())
            .map_err(|e| failed(js_error(&e)))?;
        let body = serde_json::to_string(&call).map_err(|e| failed(e.to_string()))?;
        let answer = send_own(
            &stub,
            "https://session-store/",
            "POST",
            &Headers::new(),
            Some(&body),
        )
        .await
        .map_err(failed)?;
        let text = String::from_utf8_lossy(&answer.body);
        if answer.status != 200 {
            return Err(failed(format!(
                "session object answered {}: {text}",
                answer.status
            )));
        }
        serde_json::from_slice::<StoreAnswer>(text.as_bytes()).map_err(|e| failed(e.to_string()))
    }
}

impl WorkerPlatform<'_> {
    fn has_binding(&self, name: &str) -> bool {
        js_sys::Reflect::get(self.env, &JsValue::from_str(name)).is_ok_and(|b| !b.is_undefined())
    }
}

/// One request of the gate's own through `send` (glue.js): to the network when `fetcher` is
/// undefined, else to that binding. `Err` says why there was no answer.
async fn send_own(
    fetcher: &JsValue,
    target: &str,
    method: &str,
    headers: &Headers,
    body: Option<&str>,
) -> std::result::Result<Response, String> {
    let head = pairs(headers.iter()).map_err(|e| e.to_string())?;
    let promise = send(fetcher, target, method, &head, body).map_err(|e| js_error(&e))?;
    let answer: js_sys::Array = JsFuture::from(promise)
        .await
        .map_err(|e| js_error(&e))?
        .unchecked_into();
    let status = answer.get(0).as_f64().unwrap_or(0.0) as u16;
    let head = answer.get(1).as_string().unwrap_or_default();
    let headers = parse_pairs(&head).map_err(|e| e.to_string())?;
    let body = js_sys::Uint8Array::new(&answer.get(2)).to_vec();
    Ok(Response {
        status,
        headers,
        body,
    })
}

/// What a JS exception says: an Error's message, a thrown string, or its JSON.
fn js_error(e: &JsValue) -> String {
    if let Some(err) = e.dyn_ref::<js_sys::Error>() {
        return String::from(err.message());
    }
    e.as_string()
        .or_else(|| js_sys::JSON::stringify(e).ok().and_then(|s| s.as_string()))
        .unwrap_or_else(|| "a JavaScript error".into())
}

#[wasm_bindgen(module = "/src/runtime/glue.js")]
extern "C" {
    #[wasm_bindgen(js_name = requestHead)]
    fn request_head(request: &web_sys::Request) -> String;
    fn respond(status: u16, headers: &str, body: Vec<u8>) -> web_sys::Response;
    fn forward(
        request: &web_sys::Request,
        plan: &str,
        flags: u32,
        fetcher: &JsValue,
        cache_edits: &js_sys::Function,
        failed: &js_sys::Function,
    ) -> js_sys::Promise;
    #[wasm_bindgen(catch)]
    fn send(
        fetcher: &JsValue,
        target: &str,
        method: &str,
        headers: &str,
        body: Option<&str>,
    ) -> std::result::Result<js_sys::Promise, JsValue>;
    #[wasm_bindgen(catch, js_name = sessionObject)]
    fn session_object(
        env: &Env,
        binding: &str,
        name: &str,
    ) -> std::result::Result<JsValue, JsValue>;
    #[wasm_bindgen(catch, js_name = kvGet)]
    fn kv_get(env: &Env, binding: &str, key: &str)
        -> std::result::Result<js_sys::Promise, JsValue>;
    #[wasm_bindgen(catch, js_name = kvPut)]
    fn kv_put(
        env: &Env,
        binding: &str,
        key: &str,
        value: &str,
        ttl: f64,
    ) -> std::result::Result<js_sys::Promise, JsValue>;
    fn sleep(ms: f64) -> js_sys::Promise;
    #[wasm_bindgen(js_name = log)]
    fn log_js(line: &str);
}

/// `forward`'s flags (glue.js).
const PROTECTED: u32 = 1;
const NO_STORE: u32 = 2;
const WITH_BODY: u32 = 4;
const WANTS_HTML: u32 = 8;

/// The two Rust functions glue.js calls back, made once per isolate.
pub(crate) struct Glue {
    cache_edits: js_sys::Function,
    failed: js_sys::Function,
}

impl Glue {
    fn new(auth_prefix: String) -> Self {
        let cache_edits = Closure::<dyn Fn(Option<String>, Option<String>) -> String>::new(
            |cc: Option<String>, vary: Option<String>| {
                protected_response_edits(cc.as_deref(), vary.as_deref())
            },
        );
        let failed = Closure::<dyn Fn(String, String, bool) -> web_sys::Response>::new(
            move |detail: String, path: String, wants_html: bool| {
                upstream_failed(&path, &detail, wants_html, &auth_prefix)
            },
        );
        Self {
            cache_edits: cache_edits.into_js_value().unchecked_into(),
            failed: failed.into_js_value().unchecked_into(),
        }
    }
}

/// Wakes whichever task polls the request's work last. The work is first polled right here,
/// with no task at all: a signed-in request usually needs nothing it has to wait for, and then
/// its answer (or the upstream's promise) goes back without a trip through the futures
/// executor. A timer that kept the first waker still reaches the task that took over.
#[derive(Default)]
struct Relay(Mutex<Option<Waker>>);

impl Wake for Relay {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        if let Ok(slot) = self.0.lock() {
            if let Some(w) = slot.as_ref() {
                w.wake_by_ref();
            }
        }
    }
}

/// The worker's fetch handler (worker-build's shim calls the export named `fetch`).
#[wasm_bindgen]
pub fn fetch(request: web_sys::Request, env: Env, _ctx: JsValue) -> js_sys::Promise {
    let mut work = Box::pin(handle(request, env));
    let relay = Arc::new(Relay::default());
    let waker = Waker::from(relay.clone());
    match work.as_mut().poll(&mut TaskContext::from_waker(&waker)) {
        Poll::Ready(answer) => js_sys::Promise::resolve(&answer),
        Poll::Pending => wasm_bindgen_futures::future_to_promise(async move {
            let answer = std::future::poll_fn(|cx| {
                if let Ok(mut slot) = relay.0.lock() {
                    *slot = Some(cx.waker().clone());
                }
                work.as_mut().poll(cx)
            })
            .await;
            Ok(answer)
        }),
    }
}

/// One request: the gate's decision, then its answer or the promise of the upstream's.
async fn handle(request: web_sys::Request, env: Env) -> JsValue {
    let head_text = request_head(&request);
    let head = match parse_head(&head_text) {
        Ok(h) => h,
        Err(e) => {
            log_js(&log_line!("level":"error","event":"bad_request","detail":e.to_string()));
            return to_js_response(
                GateError::MissingParameter("url").to_response(false, DEFAULT_AUTH_PREFIX),
            )
            .into();
        }
    };
    let wants_html = head
        .headers
        .get("Accept")
        .is_some_and(|a| a.contains("text/html"));
    let isolate = match isolate(&env) {
        Ok(i) => i,
        Err(e) => {
            log_js(
                &log_line!("level":"error","event":"configuration_error","detail":e.log_detail()),
            );
            return to_js_response(e.to_response(wants_html, DEFAULT_AUTH_PREFIX)).into();
        }
    };
    let url = match HttpUrl::parse(head.url) {
        Ok(url) => url,
        Err(why) => {
            log_js(
                &log_line!("level":"error","event":"bad_request","detail":format!("request URL not in canonical form: {why:?}")),
            );
            return to_js_response(
                GateError::BadRequestUrl.to_response(wants_html, &isolate.config.auth_prefix),
            )
            .into();
        }
    };
    let method = Method::parse(head.method);
    // Only the back-channel logout route takes a body, and a small same-origin browser form the
    // gate may keep through sign-in (read from a copy: the request can still go on whole);
    // everything else streams through.
    let auth_prefix = isolate.config.auth_prefix.as_str();
    let under_prefix = url
        .path()
        .strip_prefix(auth_prefix)
        .is_some_and(|r| r.is_empty() || r.starts_with('/'));
    let body = if method == Method::Post
        && url.path() == isolate.config.auth_path("backchannel-logout")
        && head
            .headers
            .get("Content-Length")
            .and_then(|l| l.parse::<usize>().ok())
            .is_some_and(|l| l <= MAX_BODY)
    {
        match request.text() {
            Ok(p) => JsFuture::from(p)
                .await
                .ok()
                .and_then(|t| t.as_string())
                .map(String::into_bytes),
            Err(_) => None,
        }
    } else if !under_prefix
        && GateRequest::form_worth_reading(
            method,
            &head.headers,
            isolate.config.form_replay_max_bytes,
        )
    {
        match request.clone().and_then(|copy| copy.array_buffer()) {
            Ok(p) => JsFuture::from(p)
                .await
                .ok()
                .map(|b| js_sys::Uint8Array::new(&b).to_vec()),
            Err(_) => None,
        }
    } else {
        None
    };
    let gate_req = GateRequest {
        method,
        url,
        headers: head.headers,
        body,
    };
    let platform = WorkerPlatform {
        env: &env,
        verifier: &isolate.verifier,
    };
    let gate = Gate {
        cfg: &isolate.config,
        cache: &isolate.cache,
        tokens: &isolate.tokens,
        refreshes: &isolate.refreshes,
        opened: &isolate.opened,
        platform: &platform,
    };
    match gate.handle(&gate_req).await {
        Outcome::Respond(resp) => to_js_response(resp).into(),
        Outcome::Forward {
            path,
            headers,
            protected,
            set_cookies,
        } => {
            match pass_on(
                &env,
                &isolate,
                &request,
                &gate_req,
                &path,
                headers.as_ref(),
                protected,
                &set_cookies,
                wants_html,
            ) {
                Ok(promise) => promise.into(),
                Err(detail) => upstream_failed(
                    gate_req.url.path(),
                    &detail,
                    wants_html,
                    &isolate.config.auth_prefix,
                )
                .into(),
            }
        }
    }
}

/// Passes the request on (glue.js `forward`): method, body and the gate's header edits;
/// redirects are not followed; protected content made private, with the session's cookies.
#[allow(clippy::too_many_arguments)] // one call site; the shell's glue in one place
fn pass_on(
    env: &Env,
    isolate: &Isolate,
    request: &web_sys::Request,
    gate_req: &GateRequest,
    path: &str,
    headers: Option<&OriginHeaders>,
    protected: bool,
    set_cookies: &[String],
    wants_html: bool,
) -> std::result::Result<js_sys::Promise, String> {
    let upstream = &isolate.config.upstream;
    // The normalized path the policy judged, never the raw one.
    let base = match upstream {
        Upstream::Assets | Upstream::Service(_) => gate_req.url.origin().to_owned(),
        Upstream::Origin(base) => base.as_str().trim_end_matches('/').to_owned(),
    };
    let mut target = format!("{base}{path}");
    if let Some(q) = gate_req.url.query() {
        target.push('?');
        target.push_str(q);
    }
    let plan = forward_plan(&target, headers, set_cookies).map_err(|e| e.to_string())?;
    let mut flags = 0;
    if protected {
        flags |= PROTECTED;
        // A protected response is one person's: never served from, nor stored in,
        // Cloudflare's cache under its URL. Public paths keep the origin's caching.
        if matches!(upstream, Upstream::Origin(_)) {
            flags |= NO_STORE;
        }
    }
    if !matches!(gate_req.method, Method::Get | Method::Head) {
        flags |= WITH_BODY;
    }
    if wants_html {
        flags |= WANTS_HTML;
    }
    let fetcher: JsValue = match upstream {
        Upstream::Assets => env
            .assets(ASSETS_BINDING)
            .map_err(|e| e.to_string())?
            .into(),
        Upstream::Service(name) => env.service(name).map_err(|e| e.to_string())?.into(),
        Upstream::Origin(_) => JsValue::UNDEFINED,
    };
    Ok(forward(
        request,
        &plan,
        flags,
        &fetcher,
        &isolate.glue.cache_edits,
        &isolate.glue.failed,
    ))
}

/// The request could not be passed on: one log line, and the 502 page or JSON.
fn upstream_failed(
    path: &str,
    detail: &str,
    wants_html: bool,
    auth_prefix: &str,
) -> web_sys::Response {
    log_js(&log_line!("level":"error","event":"upstream_failed","path":path,"detail":detail));
    to_js_response(GateError::UpstreamUnavailable.to_response(wants_html, auth_prefix))
}

/// A gate answer as a runtime Response. A header that cannot cross (a line break in a value)
/// turns the answer into a 500 with a log line, never into a split header.
fn to_js_response(r: Response) -> web_sys::Response {
    match pairs(r.headers.iter()) {
        Ok(headers) => respond(r.status, &headers, r.body),
        Err(e) => {
            log_js(
                &log_line!("level":"error","event":"bad_response_header","detail":e.to_string()),
            );
            respond(
                500,
                "content-type\ntext/plain; charset=utf-8",
                b"internal error\n".to_vec(),
            )
        }
    }
}
