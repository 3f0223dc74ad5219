//! What the core needs from the runtime, behind one trait: the worker implements it over
//! workerd (fetch, KV, Date, timers, console), host tests with doubles.

use crate::base::time::UnixTime;
use crate::http::{OutboundRequest, Response};
use crate::jose::verify::SignatureVerifier;

/// An outbound request that got no HTTP answer (DNS, connection, TLS): any status is an answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetworkError(pub String);

impl std::fmt::Display for NetworkError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

#[allow(async_fn_in_trait)] // single-threaded wasm: futures need not be Send
pub trait Platform {
    /// Checks signatures: WebCrypto in the worker, pure Rust on the host.
    type Verifier: SignatureVerifier;
    fn verifier(&self) -> &Self::Verifier;
    fn now(&self) -> UnixTime;
    async fn fetch(&self, req: OutboundRequest) -> Result<Response, NetworkError>;
    /// Shared cache (Workers KV); failures read as a miss.
    async fn kv_get(&self, key: &str) -> Option<String>;
    /// Best effort: a failed write is logged by the implementation and otherwise ignored.
    async fn kv_put(&self, key: &str, value: &str, ttl_secs: u64);
    /// Waits on a timer of the request's own (workerd lets no request wait on another's).
    async fn sleep_ms(&self, ms: u64);
    /// One log line, already written as JSON ([`crate::base::log_line::log_line!`] or
    /// [`crate::base::log_line::LogLine`]).
    fn log_json(&self, line: String);
}
