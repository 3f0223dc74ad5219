//! What the core needs from the runtime, behind one trait: the worker implements it over
//! workerd (fetch, KV, Date, console), host tests with doubles.

use crate::http::{OutboundRequest, Response};
use crate::jose::jws::SignatureVerifier;
use crate::session::durable_object::{StoreAnswer, StoreCall};

#[allow(async_fn_in_trait)] // single-threaded wasm: futures need not be Send
pub trait Platform {
    /// Checks signatures: WebCrypto in the worker, pure Rust on the host.
    type Verifier: SignatureVerifier;
    fn verifier(&self) -> &Self::Verifier;
    /// Seconds since the Unix epoch.
    fn now(&self) -> u64;
    /// An outbound HTTP request; `Err` for network failures only (any status is `Ok`).
    async fn fetch(&self, req: OutboundRequest) -> Result<Response, String>;
    /// Shared cache (Workers KV); failures read as a miss.
    async fn kv_get(&self, key: &str) -> Option<String>;
    /// Best effort: a failed write is logged by the implementation and otherwise ignored.
    async fn kv_put(&self, key: &str, value: &str, ttl_secs: u64);
    /// A call to one session object (`SESSION_STORE=durable_object`), by object name.
    async fn session_store(&self, object: &str, call: StoreCall) -> Result<StoreAnswer, String>;
    /// Waits on a timer of the request's own (workerd lets no request wait on another's).
    async fn sleep_ms(&self, ms: u64);
    /// One structured log line (JSON).
    fn log(&self, line: &serde_json::Value);
}
