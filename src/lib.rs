//! portcullis: OpenID Connect sign-in at the edge, as one Rust Cloudflare Worker.
//!
//! Folders by concern, lowest first (a folder uses only those above it in this list):
//! `base` (protocol newtypes, secrets, randomness, the clock, the bounded cache), `http`
//! (plain HTTP values, paths, cookies, pages, upstream header rules), `jose` (JWS, JWKS, the
//! one claims verifier), `platform` (what the core asks of the runtime), `oidc` (discovery,
//! provider cache, login transaction, token endpoint, ID and logout tokens), `session` (the
//! session, sealing, refresh, the two stores), `access` (policy, API routes, access tokens,
//! the principal, the signed assertion), `gate` (one file per route), `config` (reads every
//! variable into the sub-structs above), `runtime` (the only users of `worker::*`).

// On the host only the tests reach the core (the shell is wasm-only): dead code is found by
// the wasm32 build and clippy, where the shell uses everything that is live.
#![cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]

mod access;
mod base;
mod config;
mod gate;
mod http;
mod jose;
mod oidc;
mod platform;
mod session;

#[cfg(test)]
mod testing;

#[cfg(target_arch = "wasm32")]
mod runtime;
