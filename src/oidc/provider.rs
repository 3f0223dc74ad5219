//! Provider metadata and signing keys, cached in isolate memory and in KV, per issuer.
//!
//! Freshness comes from the provider's Cache-Control (clamped to [60 s, 24 h]). When the
//! provider is unreachable, stale copies keep serving; an unknown `kid` refetches the key set,
//! at most once a minute per key set and isolate.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::oidc::discovery::{cache_ttl, ProviderMetadata};
use crate::http::OutboundRequest;
use crate::jose::jwks::{JwkSet, KeyError, PublicJwk};
use crate::jose::jws::JoseHeader;
use crate::platform::Platform;
use crate::base::types::Issuer;

/// KV copies outlive their freshness so they can serve while the provider is down.
const KV_RETENTION_SECS: u64 = 7 * 86400;
/// Minimum time between key-set refetches forced by an unknown `kid`.
pub const FORCED_REFETCH_INTERVAL_SECS: u64 = 60;
const MAX_DOCUMENT_BYTES: usize = 512 * 1024;
/// After a failed fetch, a stale copy serves this long before the next attempt.
const RETRY_AFTER_FAILURE_SECS: u64 = 60;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProviderError {
    /// Nothing usable could be fetched and nothing is cached.
    Unavailable(String),
    /// The provider answered with something we must not use (issuer mismatch, bad JWKS).
    Invalid(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyLookupError {
    Provider(ProviderError),
    Key(KeyError),
}

struct Entry<T> {
    value: Rc<T>,
    fresh_until: u64,
}

/// Documents by URL: one per trusted issuer, a handful.
type Slots<T> = RefCell<HashMap<String, Entry<T>>>;

/// The per-isolate cache. One lives for the isolate's lifetime in the worker.
#[derive(Default)]
pub struct ProviderCache {
    metadata: Slots<ProviderMetadata>,
    jwks: Slots<JwkSet>,
    last_forced_jwks: RefCell<HashMap<String, u64>>,
}

#[derive(Serialize, Deserialize)]
struct KvRecord {
    fresh_until: u64,
    body: String,
}

fn kv_key(kind: &str, url: &str) -> String {
    format!("portcullis:v1:{kind}:{url}")
}

impl ProviderCache {
    pub fn new() -> Self {
        Self::default()
    }

    pub async fn metadata<P: Platform>(
        &self,
        p: &P,
        issuer: &Issuer,
    ) -> Result<Rc<ProviderMetadata>, ProviderError> {
        let url = format!(
            "{}/.well-known/openid-configuration",
            issuer.as_str().trim_end_matches('/')
        );
        let parse = |body: &[u8]| ProviderMetadata::parse(body, issuer).map_err(|e| e.to_string());
        load(p, &self.metadata, "discovery", &url, false, parse).await
    }

    pub async fn jwks<P: Platform>(
        &self,
        p: &P,
        jwks_uri: &str,
        force: bool,
    ) -> Result<Rc<JwkSet>, ProviderError> {
        load(p, &self.jwks, "jwks", jwks_uri, force, JwkSet::parse).await
    }

    /// The key for a token's header, refetching the set once when the `kid` is unknown.
    pub async fn key_for<P: Platform>(
        &self,
        p: &P,
        jwks_uri: &str,
        header: &JoseHeader,
    ) -> Result<PublicJwk, KeyLookupError> {
        let set = self
            .jwks(p, jwks_uri, false)
            .await
            .map_err(KeyLookupError::Provider)?;
        match set.select(header) {
            Ok(k) => return Ok(k.clone()),
            Err(KeyError::UnknownKid | KeyError::NoMatchingKey) => {}
            Err(e) => return Err(KeyLookupError::Key(e)),
        }
        let now = p.now();
        let last = self.last_forced_jwks.borrow().get(jwks_uri).copied();
        if last.is_some_and(|t| now < t.saturating_add(FORCED_REFETCH_INTERVAL_SECS)) {
            p.log(&json!({"level":"warn","event":"jwks_refetch_skipped","reason":"unknown kid, refetched less than a minute ago"}));
            return set.select(header).cloned().map_err(KeyLookupError::Key);
        }
        self.last_forced_jwks
            .borrow_mut()
            .insert(jwks_uri.to_owned(), now);
        p.log(&json!({"level":"info","event":"jwks_refetch","reason":"unknown kid"}));
        let set = self
            .jwks(p, jwks_uri, true)
            .await
            .map_err(KeyLookupError::Provider)?;
        set.select(header).cloned().map_err(KeyLookupError::Key)
    }
}

fn read_kv_record(s: &str) -> Option<KvRecord> {
    serde_json::from_str(s).ok()
}

/// A KV record's freshness, never trusted beyond the longest lifetime we would have given it.
fn kv_fresh_until(rec: &KvRecord, now: u64) -> u64 {
    rec.fresh_until
        .min(now.saturating_add(crate::oidc::discovery::MAX_CACHE_TTL_SECS))
}

/// Memory, then KV, then the network; stale copies when the network fails.
async fn load<P: Platform, T>(
    p: &P,
    slots: &Slots<T>,
    kind: &str,
    url: &str,
    force: bool,
    parse: impl Fn(&[u8]) -> Result<T, String>,
) -> Result<Rc<T>, ProviderError> {
    let now = p.now();
    let in_memory = slots
        .borrow()
        .get(url)
        .map(|e| (e.value.clone(), e.fresh_until));
    if let Some((value, fresh_until)) = &in_memory {
        if !force && now < *fresh_until {
            return Ok(value.clone());
        }
    }
    let key = kv_key(kind, url);
    // A forced refetch, or a stale memory copy, goes to the network first; KV's copy is at
    // most as new as what this isolate already had.
    let kv_record = match (force, &in_memory) {
        (false, None) => p.kv_get(&key).await.as_deref().and_then(read_kv_record),
        _ => None,
    };
    if let Some(rec) = &kv_record {
        let fresh_until = kv_fresh_until(rec, now);
        if now < fresh_until {
            if let Ok(value) = parse(rec.body.as_bytes()) {
                let value = Rc::new(value);
                slots.borrow_mut().insert(
                    url.to_owned(),
                    Entry {
                        value: value.clone(),
                        fresh_until,
                    },
                );
                return Ok(value);
            }
        }
    }

    let fetched = fetch_document(p, url).await.and_then(|(body, ttl)| {
        parse(body.as_bytes())
            .map(|v| (v, body, ttl))
            .map_err(|e| format!("unusable answer: {e}"))
    });
    match fetched {
        Ok((value, body, ttl)) => {
            let value = Rc::new(value);
            let fresh_until = now.saturating_add(ttl);
            slots.borrow_mut().insert(
                url.to_owned(),
                Entry {
                    value: value.clone(),
                    fresh_until,
                },
            );
            if let Ok(s) = serde_json::to_string(&KvRecord { fresh_until, body }) {
                p.kv_put(&key, &s, KV_RETENTION_SECS).await;
            }
            Ok(value)
        }
        Err(why) => {
            let stale = match in_memory {
                Some((value, _)) => Some(value),
                None => {
                    let rec = match kv_record {
                        Some(r) => Some(r),
                        None => p.kv_get(&key).await.as_deref().and_then(read_kv_record),
                    };
                    rec.and_then(|r| parse(r.body.as_bytes()).ok()).map(Rc::new)
                }
            };
            match stale {
                Some(value) => {
                    p.log(&json!({"level":"warn","event":"provider_unreachable","kind":kind,"serving":"stale cached copy","reason":why}));
                    // Back off: the stale copy serves for a minute before the next attempt.
                    let retry_at = now.saturating_add(RETRY_AFTER_FAILURE_SECS);
                    slots.borrow_mut().insert(
                        url.to_owned(),
                        Entry {
                            value: value.clone(),
                            fresh_until: retry_at,
                        },
                    );
                    Ok(value)
                }
                None if why.starts_with("unusable answer") => Err(ProviderError::Invalid(why)),
                None => Err(ProviderError::Unavailable(format!(
                    "{kind} fetch failed: {why}"
                ))),
            }
        }
    }
}

async fn fetch_document<P: Platform>(p: &P, url: &str) -> Result<(String, u64), String> {
    let resp = p.fetch(OutboundRequest::get(url)).await?;
    if resp.status != 200 {
        return Err(format!("{url} answered {}", resp.status));
    }
    if resp.body.len() > MAX_DOCUMENT_BYTES {
        return Err(format!(
            "{url} answered more than {MAX_DOCUMENT_BYTES} bytes"
        ));
    }
    let ttl = cache_ttl(resp.headers.get("Cache-Control"));
    let body = String::from_utf8(resp.body).map_err(|_| format!("{url} answered non-UTF-8"))?;
    Ok((body, ttl))
}
