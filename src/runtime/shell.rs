//! The worker shell: adapts workerd's request, environment and bindings to the gate and its
//! answer back. No decisions are made here.

use std::cell::RefCell;
use std::rc::Rc;

use wasm_bindgen::JsValue;
use worker::{
    console_log, event, wasm_bindgen, web_sys, Context, Date, Env, Fetch, Request, RequestInit,
    Response as WorkerResponse, Result,
};

use crate::access::token_cache::TokenCache;
use crate::base::time::UnixTime;
use crate::config::{Config, Upstream, DEFAULT_AUTH_PREFIX};
use crate::gate::error::GateError;
use crate::gate::{Gate, GateRequest, Outcome};
use crate::http::upstream::{header_changes, protected_caching, CDN_CACHE_HEADERS};
use crate::http::{Headers, Method, OutboundRequest, Response};
use crate::oidc::provider::ProviderCache;
use crate::platform::NetworkError;
use crate::platform::Platform;
use crate::runtime::webcrypto::WebCryptoVerifier;
use crate::session::coalescer::RefreshCoalescer;
use crate::session::durable_object::{ObjectName, StoreAnswer, StoreCall, StoreError};
use crate::session::store::SessionObjects;

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
    pub verifier: WebCryptoVerifier,
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
    let i = Rc::new(Isolate {
        config,
        cache: ProviderCache::new(),
        tokens: TokenCache::default(),
        refreshes: RefreshCoalescer::default(),
        verifier: WebCryptoVerifier::default(),
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
        UnixTime::from_secs(Date::now().as_millis() / 1000)
    }

    async fn fetch(&self, req: OutboundRequest) -> std::result::Result<Response, NetworkError> {
        let attempt = async {
            let headers = to_worker_headers(&req.headers)?;
            headers.set("User-Agent", "portcullis")?;
            let mut init = RequestInit::new();
            init.with_method(req.method.to_string().into())
                .with_headers(headers);
            if let Some(body) = &req.body {
                init.with_body(Some(JsValue::from_str(body)));
            }
            let mut resp = Fetch::Request(Request::new_with_init(&req.url, &init)?)
                .send()
                .await?;
            let status = resp.status_code();
            let headers = from_worker_headers(resp.headers());
            let body = resp.bytes().await?;
            Ok::<_, worker::Error>(Response {
                status,
                headers,
                body,
            })
        };
        attempt.await.map_err(|e| NetworkError(e.to_string()))
    }

    async fn kv_get(&self, key: &str) -> Option<String> {
        let kv = self.env.kv(KV_BINDING).ok()?;
        kv.get(key).text().await.ok().flatten()
    }

    async fn kv_put(&self, key: &str, value: &str, ttl_secs: u64) {
        let Ok(kv) = self.env.kv(KV_BINDING) else {
            self.log(&serde_json::json!({"level":"warn","event":"kv_missing","detail":"no JWKS_CACHE binding: caching in isolate memory only"}));
            return;
        };
        // KV refuses expirationTtl below 60 s.
        let result = match kv.put(key, value) {
            Ok(builder) => builder
                .expiration_ttl(ttl_secs.max(60))
                .execute()
                .await
                .map_err(|e| e.to_string()),
            Err(e) => Err(e.to_string()),
        };
        if let Err(e) = result {
            self.log(&serde_json::json!({"level":"warn","event":"kv_write_failed","detail":e}));
        }
    }

    async fn sleep_ms(&self, ms: u64) {
        worker::Delay::from(std::time::Duration::from_millis(ms)).await;
    }

    fn log(&self, line: &serde_json::Value) {
        console_log!("{}", line);
    }
}

impl SessionObjects for WorkerPlatform<'_> {
    async fn call(
        &self,
        object: &ObjectName,
        call: StoreCall,
    ) -> std::result::Result<StoreAnswer, StoreError> {
        let attempt = async {
            let stub = self
                .env
                .durable_object(SESSIONS_BINDING)?
                .id_from_name(object.as_str())?
                .get_stub()?;
            let body = serde_json::to_string(&call)?;
            let mut init = RequestInit::new();
            init.with_method(worker::Method::Post)
                .with_body(Some(JsValue::from_str(&body)));
            let req = Request::new_with_init("https://session-store/", &init)?;
            let mut resp = stub.fetch_with_request(req).await?;
            let text = resp.text().await?;
            if resp.status_code() != 200 {
                return Err(worker::Error::RustError(format!(
                    "session object answered {}: {text}",
                    resp.status_code()
                )));
            }
            Ok(serde_json::from_str::<StoreAnswer>(&text)?)
        };
        attempt.await.map_err(|e: worker::Error| {
            StoreError(format!(
                "session store ({SESSIONS_BINDING} Durable Object binding): {e}"
            ))
        })
    }
}

#[event(fetch)]
async fn fetch(mut req: Request, env: Env, _ctx: Context) -> Result<WorkerResponse> {
    let wants_html = req
        .headers()
        .get("Accept")
        .ok()
        .flatten()
        .is_some_and(|a| a.contains("text/html"));
    let isolate = match isolate(&env) {
        Ok(i) => i,
        Err(e) => {
            console_log!(
                "{}",
                serde_json::json!({"level":"error","event":"configuration_error","detail":e.log_detail()})
            );
            return to_worker_response(e.to_response(wants_html, DEFAULT_AUTH_PREFIX));
        }
    };
    let Ok(url) = req.url() else {
        return to_worker_response(
            GateError::MissingParameter("url").to_response(wants_html, &isolate.config.auth_prefix),
        );
    };
    let method = Method::parse(req.inner().method().as_str());
    // Only the back-channel logout route takes a body; everything else streams through.
    let body = if method == Method::Post
        && url.path() == isolate.config.auth_path("backchannel-logout")
        && req
            .headers()
            .get("Content-Length")
            .ok()
            .flatten()
            .and_then(|l| l.parse::<usize>().ok())
            .is_some_and(|l| l <= MAX_BODY)
    {
        req.text().await.ok()
    } else {
        None
    };
    let gate_req = GateRequest {
        method,
        url,
        headers: from_worker_headers(req.headers()),
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
        platform: &platform,
    };
    match gate.handle(&gate_req).await {
        Outcome::Respond(resp) => to_worker_response(resp),
        Outcome::Forward {
            path,
            headers,
            protected,
            set_cookies,
        } => match forward(
            &env,
            &isolate.config.upstream,
            &req,
            &gate_req,
            &path,
            &headers,
            protected,
            &set_cookies,
        )
        .await
        {
            Ok(resp) => Ok(resp),
            Err(e) => {
                platform.log(&serde_json::json!({"level":"error","event":"upstream_failed","path":gate_req.url.path(),"detail":e.to_string()}));
                to_worker_response(
                    GateError::UpstreamUnavailable
                        .to_response(wants_html, &isolate.config.auth_prefix),
                )
            }
        },
    }
}

/// Passes the request on (method, body and the cleaned headers; redirects are not followed)
/// and, for protected content, makes the response private and adds the session's cookies.
#[allow(clippy::too_many_arguments)] // one call site; the shell's glue in one place
async fn forward(
    env: &Env,
    upstream: &Upstream,
    req: &Request,
    gate_req: &GateRequest,
    path: &str,
    headers: &Headers,
    protected: bool,
    set_cookies: &[String],
) -> Result<WorkerResponse> {
    // The normalized path the policy judged, never the raw one.
    let base = match upstream {
        Upstream::Assets => gate_req.url.origin().ascii_serialization(),
        Upstream::Origin(base) => base.as_str().trim_end_matches('/').to_owned(),
    };
    let mut target = format!("{base}{path}");
    if let Some(q) = gate_req.url.query() {
        target.push('?');
        target.push_str(q);
    }
    // Start from the runtime's own copy of the inbound headers and apply only the gate's
    // changes: far fewer crossings into JS than rebuilding every header.
    let outbound_headers = web_sys::Headers::new_with_headers(&req.inner().headers())?;
    let (removed, replaced) = header_changes(&gate_req.headers, headers);
    for name in removed {
        outbound_headers.delete(&name)?;
    }
    for (name, values) in replaced {
        outbound_headers.delete(name)?;
        for v in values {
            outbound_headers.append(name, v)?;
        }
    }
    let init = web_sys::RequestInit::new();
    init.set_method(&req.inner().method());
    init.set_headers(&outbound_headers.into());
    init.set_redirect(web_sys::RequestRedirect::Manual);
    // A protected response is one person's: never served from, nor stored in, Cloudflare's
    // cache under its URL. Public paths keep the origin's caching.
    if protected && matches!(upstream, Upstream::Origin(_)) {
        init.set_cache(web_sys::RequestCache::NoStore);
    }
    if !matches!(gate_req.method, Method::Get | Method::Head) {
        if let Some(body) = req.inner().body() {
            init.set_body(&body.into());
        }
    }
    let outbound: Request = web_sys::Request::new_with_str_and_init(&target, &init)?.into();
    let resp = match upstream {
        Upstream::Assets => env.assets(ASSETS_BINDING)?.fetch_request(outbound).await?,
        Upstream::Origin(_) => Fetch::Request(outbound).send().await?,
    };
    // A WebSocket upgrade (101) carries no cacheable body, and a Response with status 101
    // cannot be rebuilt: pass it through as it is.
    if !protected || resp.status_code() == 101 {
        return Ok(resp);
    }
    let sys: web_sys::Response = resp.into();
    let out_headers = web_sys::Headers::new_with_headers(&sys.headers())?;
    let edits = protected_caching(
        out_headers.get("Cache-Control")?.as_deref(),
        out_headers.get("Vary")?.as_deref(),
    );
    for (name, value) in edits {
        out_headers.set(name, &value)?;
    }
    for name in CDN_CACHE_HEADERS {
        out_headers.delete(name)?;
    }
    for cookie in set_cookies {
        out_headers.append("Set-Cookie", cookie)?;
    }
    let init = web_sys::ResponseInit::new();
    init.set_status(sys.status());
    init.set_status_text(&sys.status_text());
    init.set_headers(&out_headers.into());
    let rebuilt =
        web_sys::Response::new_with_opt_readable_stream_and_init(sys.body().as_ref(), &init)?;
    Ok(rebuilt.into())
}

fn from_worker_headers(h: &worker::Headers) -> Headers {
    let mut out = Headers::new();
    for (name, value) in h.entries() {
        out.append(name, value);
    }
    out
}

fn to_worker_headers(h: &Headers) -> Result<worker::Headers> {
    let out = worker::Headers::new();
    for (name, value) in h.iter() {
        out.append(name, value)?;
    }
    Ok(out)
}

fn to_worker_response(r: Response) -> Result<WorkerResponse> {
    let headers = to_worker_headers(&r.headers)?;
    Ok(WorkerResponse::builder()
        .with_status(r.status)
        .with_headers(headers)
        .fixed(r.body))
}
