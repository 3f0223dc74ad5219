//! portcullis: OpenID Connect sign-in at the edge, as one Rust Cloudflare Worker.

pub mod access_token;
pub mod api;
pub mod assertion;
pub mod config;
pub mod cookies;
pub mod discovery;
pub mod error;
pub mod gate;
pub mod http;
pub mod id_token;
pub mod jwks;
pub mod jws;
pub mod logout_token;
pub mod pages;
pub mod path;
pub mod pkce;
pub mod platform;
pub mod policy;
pub mod provider;
pub mod random;
pub mod refresh;
pub mod return_to;
pub mod seal;
pub mod secret;
pub mod session;
pub mod session_store;
pub mod token_cache;
pub mod token_response;
pub mod transaction;
pub mod types;
pub mod upstream;

#[cfg(test)]
mod test_support;

#[cfg(target_arch = "wasm32")]
mod durable;
#[cfg(target_arch = "wasm32")]
mod shell;
#[cfg(target_arch = "wasm32")]
mod webcrypto;
