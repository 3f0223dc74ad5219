//! Provider metadata and signing keys, cached in isolate memory and in KV, per issuer.
//!
//! Freshness comes from the provider's Cache-Control (clamped to [60 s, 24 h]). When the
//! provider is unreachable, stale copies keep serving; an unknown `kid` refetches the key set,
//! at most once a minute per key set and isolate.

use std::cell::Cell;
use std::rc::Rc;

use serde::{Deserialize, Serialize};

use crate::base::cache::BoundedCache;
use crate::base::log_line::log_line;
use crate::base::time::UnixTime;
use crate::base::types::Issuer;
use crate::http::http_url::HttpUrl;
use crate::http::OutboundRequest;
use crate::jose::jwks::{JwkSet, KeyError, PublicJwk};
use crate::jose::jws::{JoseHeader, UnverifiedJws, VerifiedJws};
use crate::jose::verify::{self, SignatureError};
use crate::oidc::discovery::{cache_ttl, ProviderMetadata};
use crate::platform::Platform;

/// KV copies outlive their freshness so they can serve while the provider is down.
const KV_RETENTION_SECS: u64 = 7 * 86400;
/// Minimum time between key-set refetches forced by an unknown `kid`.
pub const FORCED_REFETCH_INTERVAL_SECS: u64 = 60;
const MAX_DOCUMENT_BYTES: usize = 512 * 1024;
/// After a failed fetch, a stale copy serves this long before the next attempt; a tenant whose
/// documents cannot be had is not asked again sooner either.
const RETRY_AFTER_FAILURE_SECS: u64 = 60;
/// Documents kept per kind. Configured issuers are a handful; a multi-tenant API adds one per
/// tenant it sees, so the oldest go first (and come back from KV when asked for again).
const MAX_DOCUMENTS: usize = 64;
/// Network fetches per minute and isolate for a multi-tenant API's tenants that no verified
/// token has come from here yet: a token names its tenant before anything about it is
/// verified, so this is what an anonymous client can make the gate fetch. A token bucket: up
/// to this many at once, then one every 60/this seconds.
pub const TENANT_FETCHES_PER_MINUTE: u32 = 30;
/// Tenants whose tokens have verified here, which the budget does not hold back.
const MAX_VERIFIED_TENANTS: usize = 256;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProviderError {
    /// Nothing usable could be fetched and nothing is cached.
    Unavailable(String),
    /// The provider answered with something we must not use (issuer mismatch, bad JWKS).
    Invalid(String),
}

impl std::fmt::Display for ProviderError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Unavailable(why) | Self::Invalid(why) => f.write_str(why),
        }
    }
}

/// Why a signed token from a provider could not be checked, or did not check out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SignedTokenError {
    /// The provider's keys cannot be had (nothing cached, or unusable as published).
    Provider(ProviderError),
    /// No published key fits the token.
    Key(KeyError),
    Signature(SignatureError),
}

impl std::fmt::Display for SignedTokenError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Provider(e) => e.fmt(f),
            Self::Key(k) => write!(f, "no signing key of the provider fits the token ({k:?})"),
            Self::Signature(e) => e.fmt(f),
        }
    }
}

/// When an unknown `kid` may refetch the key set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refetch {
    /// Always once: for ID tokens straight from the token endpoint (callback, refresh), where
    /// the code exchange already bounds how often it can happen, so a real rotation never
    /// fails a sign-in.
    Always,
    /// At most once a minute per key set: for tokens anyone can send (Bearer, logout tokens).
    RateLimited,
}

/// Why one fetch of a document failed.
enum Failure {
    /// No answer, or an error status.
    Unreachable(String),
    /// An answer we must not use (not parsable, issuer mismatch).
    Unusable(String),
}

struct Entry<T> {
    value: Rc<T>,
    fresh_until: UnixTime,
}

impl<T> Clone for Entry<T> {
    fn clone(&self) -> Self {
        Self {
            value: self.value.clone(),
            fresh_until: self.fresh_until,
        }
    }
}

/// Documents by URL. Kept past their freshness (as stale copies for when the provider is
/// down) until evicted.
type Slots<T> = BoundedCache<String, Entry<T>>;

/// Discovery documents and key sets, by URL.
struct Documents {
    metadata: Slots<ProviderMetadata>,
    jwks: Slots<JwkSet>,
}

impl Documents {
    fn new() -> Self {
        Self {
            metadata: BoundedCache::new(MAX_DOCUMENTS),
            jwks: BoundedCache::new(MAX_DOCUMENTS),
        }
    }
}

/// Whose documents a lookup is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lookup {
    /// A configured issuer's: a handful, fetched whenever needed.
    Configured,
    /// A tenant of a multi-tenant API, named by a token: kept apart from the configured
    /// issuers' (so naming tenants pushes none of theirs out), and fetched from the network
    /// under the isolate's tenant budget unless a token of the tenant has verified here.
    Tenant { budgeted: bool },
}

/// The per-isolate cache. One lives for the isolate's lifetime in the worker.
pub struct ProviderCache {
    configured: Documents,
    tenants: Documents,
    /// Key sets refetched for an unknown `kid`, until they may be again.
    forced_jwks: BoundedCache<String, ()>,
    /// Tenants whose documents could not be had, until they are asked again.
    failed_tenants: BoundedCache<String, ProviderError>,
    /// Tenants a token has verified from.
    verified_tenants: BoundedCache<String, ()>,
    /// The tenant budget: when it was last filled, and what is left, in sixtieths of a fetch.
    tenant_budget: Cell<(UnixTime, u64)>,
}

impl Default for ProviderCache {
    fn default() -> Self {
        Self {
            configured: Documents::new(),
            tenants: Documents::new(),
            forced_jwks: BoundedCache::new(4 * MAX_VERIFIED_TENANTS),
            failed_tenants: BoundedCache::new(MAX_DOCUMENTS),
            verified_tenants: BoundedCache::new(MAX_VERIFIED_TENANTS),
            tenant_budget: Cell::new((UnixTime::EPOCH, 0)),
        }
    }
}

#[derive(Serialize, Deserialize)]
struct KvRecord {
    fresh_until: UnixTime,
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
        self.issuer_metadata(p, issuer, Lookup::Configured).await
    }

    /// How a Bearer token from this tenant's issuer is looked up.
    pub fn tenant_lookup(&self, issuer: &Issuer, now: UnixTime) -> Lookup {
        let verified = self.verified_tenants.get(issuer.as_str(), now).is_some();
        Lookup::Tenant {
            budgeted: !verified,
        }
    }

    /// A token of this tenant verified: its lookups are no longer held back by the budget.
    pub fn tenant_verified(&self, issuer: &Issuer) {
        self.verified_tenants
            .insert(issuer.as_str().to_owned(), (), UnixTime::NEVER);
    }

    /// An issuer's metadata. A tenant's that cannot be had is remembered for a minute.
    pub async fn issuer_metadata<P: Platform>(
        &self,
        p: &P,
        issuer: &Issuer,
        lookup: Lookup,
    ) -> Result<Rc<ProviderMetadata>, ProviderError> {
        let url = discovery_url(issuer)?;
        let parse = |body: &[u8]| ProviderMetadata::parse(body, issuer).map_err(|e| e.to_string());
        let now = p.now();
        if lookup == Lookup::Configured {
            let slots = &self.configured.metadata;
            return load(p, slots, "discovery", &url, false, parse, &|| true).await;
        }
        if let Some(e) = self.failed_tenants.get(issuer.as_str(), now) {
            return Err(e);
        }
        let held_back = Cell::new(false);
        let may_fetch = || {
            let may = self.may_fetch(lookup, now);
            held_back.set(!may);
            may
        };
        let slots = &self.tenants.metadata;
        let result = load(p, slots, "discovery", &url, false, parse, &may_fetch).await;
        // Held back by the budget is no answer about the tenant: it may ask again.
        if let Some(e) = result.as_ref().err().filter(|_| !held_back.get()) {
            let retry_at = now.plus(RETRY_AFTER_FAILURE_SECS);
            self.failed_tenants
                .insert(issuer.as_str().to_owned(), e.clone(), retry_at);
        }
        result
    }

    /// Whether a lookup may go to the network now, spending the tenant budget if it is held
    /// to it.
    fn may_fetch(&self, lookup: Lookup, now: UnixTime) -> bool {
        if lookup != (Lookup::Tenant { budgeted: true }) {
            return true;
        }
        const FETCH: u64 = 60;
        let full = u64::from(TENANT_FETCHES_PER_MINUTE) * FETCH;
        let (filled_at, left) = self.tenant_budget.get();
        let refill = now
            .since(filled_at)
            .saturating_mul(u64::from(TENANT_FETCHES_PER_MINUTE));
        let left = left.saturating_add(refill).min(full);
        let spent = left >= FETCH;
        self.tenant_budget
            .set((now, if spent { left - FETCH } else { left }));
        spent
    }

    pub async fn jwks<P: Platform>(
        &self,
        p: &P,
        jwks_uri: &HttpUrl,
        force: bool,
        lookup: Lookup,
    ) -> Result<Rc<JwkSet>, ProviderError> {
        let now = p.now();
        let slots = match lookup {
            Lookup::Configured => &self.configured.jwks,
            Lookup::Tenant { .. } => &self.tenants.jwks,
        };
        let parse = |b: &[u8]| JwkSet::parse(b).map_err(|e| e.0);
        let may_fetch = || self.may_fetch(lookup, now);
        load(p, slots, "jwks", jwks_uri, force, parse, &may_fetch).await
    }

    /// Discovery documents and key sets in memory, stale ones included.
    #[cfg(test)]
    pub fn documents_in_memory(&self) -> usize {
        let count = |d: &Documents| d.metadata.len() + d.jwks.len();
        count(&self.configured) + count(&self.tenants)
    }

    /// Checks a token's signature with the keys at `jwks_uri`: the one sequence (pick the key,
    /// refetching once for an unknown `kid`; verify) for ID, access and logout tokens.
    pub async fn verify<P: Platform>(
        &self,
        p: &P,
        jwks_uri: &HttpUrl,
        jws: UnverifiedJws<'_>,
        refetch: Refetch,
    ) -> Result<VerifiedJws, SignedTokenError> {
        self.verify_as(p, jwks_uri, jws, refetch, Lookup::Configured)
            .await
    }

    /// [`Self::verify`], for an issuer looked up as `lookup` says.
    pub async fn verify_as<P: Platform>(
        &self,
        p: &P,
        jwks_uri: &HttpUrl,
        jws: UnverifiedJws<'_>,
        refetch: Refetch,
        lookup: Lookup,
    ) -> Result<VerifiedJws, SignedTokenError> {
        let (key, refetched) = self
            .key_for(p, jwks_uri, &jws.header, refetch, lookup)
            .await?;
        let jws = match verify::attempt(p.verifier(), jws, &key).await {
            Ok(v) => return Ok(v),
            // A provider that names no `kid` and has rotated its one key: the cached set still
            // holds the old one. Asked again once, on the same terms as an unknown `kid`.
            Err((SignatureError::BadSignature, jws)) if jws.header.kid.is_none() && !refetched => {
                jws
            }
            Err((e, _)) => return Err(SignedTokenError::Signature(e)),
        };
        let reason = "no kid, and the cached key does not verify";
        let Some(set) = self.refetch(p, jwks_uri, refetch, lookup, reason).await? else {
            return Err(SignedTokenError::Signature(SignatureError::BadSignature));
        };
        let fresh = set.select(&jws.header).map_err(SignedTokenError::Key)?;
        verify::verify(p.verifier(), jws, fresh)
            .await
            .map_err(SignedTokenError::Signature)
    }

    /// The key for a token's header, refetching the set once when the `kid` is unknown; and
    /// whether the set was fetched again for it.
    async fn key_for<P: Platform>(
        &self,
        p: &P,
        jwks_uri: &HttpUrl,
        header: &JoseHeader,
        refetch: Refetch,
        lookup: Lookup,
    ) -> Result<(PublicJwk, bool), SignedTokenError> {
        let set = self
            .jwks(p, jwks_uri, false, lookup)
            .await
            .map_err(SignedTokenError::Provider)?;
        match set.select(header) {
            Ok(k) => return Ok((k.clone(), false)),
            Err(KeyError::UnknownKid | KeyError::NoMatchingKey) => {}
            Err(e) => return Err(SignedTokenError::Key(e)),
        }
        let (set, refetched) = match self
            .refetch(p, jwks_uri, refetch, lookup, "unknown kid")
            .await?
        {
            Some(fresh) => (fresh, true),
            None => (set, false),
        };
        set.select(header)
            .map(|k| (k.clone(), refetched))
            .map_err(SignedTokenError::Key)
    }

    /// The set at `jwks_uri` fetched again, unless `refetch` is rate-limited and it was less
    /// than a minute ago (then none).
    async fn refetch<P: Platform>(
        &self,
        p: &P,
        jwks_uri: &HttpUrl,
        refetch: Refetch,
        lookup: Lookup,
        reason: &str,
    ) -> Result<Option<Rc<JwkSet>>, SignedTokenError> {
        let now = p.now();
        let cooling = self.forced_jwks.get(jwks_uri.as_str(), now).is_some();
        if cooling && refetch == Refetch::RateLimited {
            p.log_json(log_line!("level":"warn","event":"jwks_refetch_skipped","reason":reason,"detail":"refetched less than a minute ago"));
            return Ok(None);
        }
        self.forced_jwks.insert(
            jwks_uri.to_string(),
            (),
            now.plus(FORCED_REFETCH_INTERVAL_SECS),
        );
        p.log_json(log_line!("level":"info","event":"jwks_refetch","reason":reason));
        self.jwks(p, jwks_uri, true, lookup)
            .await
            .map(Some)
            .map_err(SignedTokenError::Provider)
    }
}

fn discovery_url(issuer: &Issuer) -> Result<HttpUrl, ProviderError> {
    let url = format!(
        "{}/.well-known/openid-configuration",
        issuer.as_str().trim_end_matches('/')
    );
    HttpUrl::normalize(&url).map_err(|_| ProviderError::Invalid("the issuer is not a URL".into()))
}

fn read_kv_record(s: &str) -> Option<KvRecord> {
    serde_json::from_slice(s.as_bytes()).ok()
}

/// A KV record's freshness, never trusted beyond the longest lifetime we would have given it.
fn kv_fresh_until(rec: &KvRecord, now: UnixTime) -> UnixTime {
    rec.fresh_until
        .min(now.plus(crate::oidc::discovery::MAX_CACHE_TTL_SECS))
}

/// Memory, then KV, then the network; stale copies when the network fails.
async fn load<P: Platform, T>(
    p: &P,
    slots: &Slots<T>,
    kind: &str,
    url: &HttpUrl,
    force: bool,
    parse: impl Fn(&[u8]) -> Result<T, String>,
    may_fetch: &dyn Fn() -> bool,
) -> Result<Rc<T>, ProviderError> {
    let now = p.now();
    let in_memory = slots
        .get(url.as_str(), now)
        .map(|e| (e.value, e.fresh_until));
    if let Some((value, fresh_until)) = &in_memory {
        if !force && now < *fresh_until {
            return Ok(value.clone());
        }
    }
    let key = kv_key(kind, url.as_str());
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
                keep(slots, url, value.clone(), fresh_until);
                return Ok(value);
            }
        }
    }

    let fetched = if may_fetch() {
        fetch_document(p, url).await
    } else {
        Err(Failure::Unreachable(format!(
            "not fetched: the budget of {TENANT_FETCHES_PER_MINUTE} fetches a minute for tenants no token has verified from is spent"
        )))
    };
    let fetched = fetched.and_then(|(body, ttl)| {
        parse(body.as_bytes())
            .map(|v| (v, body, ttl))
            .map_err(Failure::Unusable)
    });
    match fetched {
        Ok((value, body, ttl)) => {
            let value = Rc::new(value);
            let fresh_until = now.plus(ttl);
            keep(slots, url, value.clone(), fresh_until);
            if let Ok(s) = serde_json::to_string(&KvRecord { fresh_until, body }) {
                p.kv_put(&key, &s, KV_RETENTION_SECS).await;
            }
            Ok(value)
        }
        Err(failure) => {
            let why = match &failure {
                Failure::Unreachable(why) => why.clone(),
                Failure::Unusable(why) => format!("unusable answer: {why}"),
            };
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
                    p.log_json(log_line!("level":"warn","event":"provider_unreachable","kind":kind,"serving":"stale cached copy","reason":why));
                    // Back off: the stale copy serves for a minute before the next attempt.
                    let retry_at = now.plus(RETRY_AFTER_FAILURE_SECS);
                    keep(slots, url, value.clone(), retry_at);
                    Ok(value)
                }
                None => Err(match failure {
                    Failure::Unusable(_) => ProviderError::Invalid(why),
                    Failure::Unreachable(_) => {
                        ProviderError::Unavailable(format!("{kind} fetch failed: {why}"))
                    }
                }),
            }
        }
    }
}

fn keep<T>(slots: &Slots<T>, url: &HttpUrl, value: Rc<T>, fresh_until: UnixTime) {
    let entry = Entry { value, fresh_until };
    slots.insert(url.to_string(), entry, UnixTime::NEVER);
}

async fn fetch_document<P: Platform>(p: &P, url: &HttpUrl) -> Result<(String, u64), Failure> {
    let resp = p
        .fetch(OutboundRequest::get(url))
        .await
        .map_err(|e| Failure::Unreachable(e.0))?;
    if resp.status != 200 {
        return Err(Failure::Unreachable(format!(
            "{url} answered {}",
            resp.status
        )));
    }
    if resp.body.len() > MAX_DOCUMENT_BYTES {
        return Err(Failure::Unreachable(format!(
            "{url} answered more than {MAX_DOCUMENT_BYTES} bytes"
        )));
    }
    let ttl = cache_ttl(resp.headers.get("Cache-Control"));
    let body = String::from_utf8(resp.body)
        .map_err(|_| Failure::Unreachable(format!("{url} answered non-UTF-8")))?;
    Ok((body, ttl))
}
