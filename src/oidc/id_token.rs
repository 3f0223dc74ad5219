//! ID token validation, OpenID Connect Core 1.0 section 3.1.3.7 (code flow). The claim rules
//! are plain functions over already signature-checked tokens, whichever verifier ran.
//!
//! A [`VerifiedIdToken`] can only be made here.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use sha2::{Digest, Sha256};

use crate::access::step_up::AuthContext;
use crate::base::time::UnixTime;
use crate::http::http_url::HttpUrl;
use crate::jose::claims::{string_list, Claims, ClaimsError, Clock, Typ};
use crate::jose::jws::{JwsAlg, VerifiedJws};
use crate::jose::verify::{SignatureError, SignatureVerifier, WideHash};

use crate::base::types::{ClientId, Issuer, Nonce};
use crate::config::providers::{is_guid, ProviderConfig, Tenants};
use crate::jose::jws::UnverifiedJws;
use crate::oidc::discovery::IssuerTemplate;
use crate::oidc::provider::{ProviderCache, ProviderError, Refetch, SignedTokenError};
use crate::platform::Platform;

/// Allowed clock difference between the provider and the edge.
pub const MAX_CLOCK_SKEW_SECS: u64 = 300;

/// What the relying party expects of this ID token.
pub struct Expectations<'a> {
    pub issuer: &'a Issuer,
    /// Another spelling of the issuer a token may carry (Google's `accounts.google.com`).
    pub issuer_spelling: Option<&'a str>,
    pub client_id: &'a ClientId,
    /// The login's nonce; `None` for a refreshed ID token (OIDC Core 12.2), which has no new
    /// nonce to match.
    pub nonce: Option<&'a Nonce>,
    pub now: UnixTime,
    /// What `at_hash` must be when present: [`access_token_hash`] of the access token from
    /// the same response.
    pub at_hash: Option<&'a str>,
    /// A multi-tenant authority: the issuer is the template filled with the token's `tid`.
    pub tenancy: Option<Tenancy<'a>>,
}

/// Entra's `common` / `organizations`: which tenants' issuers are accepted.
#[derive(Clone, Copy)]
pub struct Tenancy<'a> {
    pub template: &'a IssuerTemplate,
    pub allowed: &'a Tenants,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IdTokenError {
    Claims(String),
    WrongType,
    IssuerMismatch,
    AudienceMismatch,
    UntrustedAudience,
    AzpMismatch,
    Expired,
    MissingExpiry,
    IssuedInFuture,
    IssuedTooLongAgo,
    MissingIssuedAt,
    NotYetValid,
    NonceMismatch,
    MissingSubject,
    AccessTokenHashMismatch,
    /// Multi-tenant: `tid` absent or not a GUID.
    BadTenant,
    /// Multi-tenant: `oid` absent or not a GUID.
    BadObjectId,
    /// Multi-tenant: a tenant the allow-list does not name.
    TenantNotAllowed,
}

impl std::fmt::Display for IdTokenError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let s = match self {
            Self::Claims(e) => {
                return write!(f, "claims are not valid JSON of the expected shape: {e}")
            }
            Self::WrongType => "header typ is not that of an ID token",
            Self::IssuerMismatch => "iss is not the configured issuer",
            Self::AudienceMismatch => "aud does not contain our client_id",
            Self::UntrustedAudience => "aud contains an audience we do not trust",
            Self::AzpMismatch => "azp is not our client_id",
            Self::Expired => "token has expired",
            Self::MissingExpiry => "token has no exp",
            Self::IssuedInFuture => "iat is in the future",
            Self::IssuedTooLongAgo => "iat is too far in the past",
            Self::MissingIssuedAt => "token has no iat",
            Self::NotYetValid => "nbf is in the future",
            Self::NonceMismatch => "nonce is missing or does not match the login",
            Self::MissingSubject => "token has no sub",
            Self::AccessTokenHashMismatch => "at_hash does not match the access token",
            Self::BadTenant => "tid is missing or not a tenant id",
            Self::BadObjectId => "oid is missing or not an object id",
            Self::TenantNotAllowed => "the tenant is not in OIDC_ALLOWED_TENANTS",
        };
        f.write_str(s)
    }
}

impl From<ClaimsError> for IdTokenError {
    fn from(e: ClaimsError) -> Self {
        match e {
            ClaimsError::Shape(why) => Self::Claims(why),
            ClaimsError::MissingExpiry => Self::MissingExpiry,
            ClaimsError::Expired => Self::Expired,
            ClaimsError::NotYetValid => Self::NotYetValid,
            ClaimsError::MissingIssuedAt => Self::MissingIssuedAt,
            ClaimsError::IssuedInFuture => Self::IssuedInFuture,
            ClaimsError::IssuedTooLongAgo => Self::IssuedTooLongAgo,
        }
    }
}

/// An ID token that passed every check. Only [`validate`] makes one: the private field keeps
/// every other module (not just other crates, as `#[non_exhaustive]` would) from building it.
#[allow(clippy::manual_non_exhaustive)]
#[derive(Debug, Clone, PartialEq)]
pub struct VerifiedIdToken {
    /// The configured issuer (for a multi-tenant authority, its `organizations` form).
    pub issuer: Issuer,
    /// `sub`; for a multi-tenant authority, `tid/oid` (Entra's stable names of the tenant and
    /// the user in it).
    pub subject: String,
    /// Multi-tenant: the tenant id (`tid`), lowercase.
    pub tenant: Option<String>,
    pub email: Option<String>,
    /// `None` when the provider did not say.
    pub email_verified: Option<bool>,
    pub name: Option<String>,
    /// How the person signed in: `acr`, `amr`, `acrs`, `auth_time`.
    pub auth: AuthContext,
    /// Every claim, for the configurable ones (groups, roles).
    pub claims: serde_json::Value,
    _sealed: (),
}

impl VerifiedIdToken {
    /// The strings at a configured claim path (groups, roles).
    pub fn list(&self, path: &str) -> Vec<String> {
        string_list(&self.claims, path)
    }
}

/// Applies the claim rules to a signature-checked token.
pub fn validate(
    jws: VerifiedJws,
    expect: &Expectations<'_>,
) -> Result<VerifiedIdToken, IdTokenError> {
    // An access token (RFC 9068 `at+jwt`) or logout token is not an ID token.
    if !matches!(Typ::of(&jws), Typ::Absent | Typ::Jwt) {
        return Err(IdTokenError::WrongType);
    }
    let c = Claims::parse(&jws)?;
    let r = &c.registered;
    let tenant = match expect.tenancy {
        None => {
            if r.iss != expect.issuer.as_str() && Some(r.iss.as_str()) != expect.issuer_spelling {
                return Err(IdTokenError::IssuerMismatch);
            }
            None
        }
        Some(t) => Some(tenant_of(&c, t)?),
    };
    let client_id = expect.client_id.as_str();
    if !r.aud.contains(client_id) {
        return Err(IdTokenError::AudienceMismatch);
    }
    if r.aud.iter().any(|a| a != client_id) {
        return Err(IdTokenError::UntrustedAudience);
    }
    // Claims this rule set reads are strings when present; another type is not skipped.
    let [azp, nonce, at_hash, email, name, preferred_username] = [
        "azp",
        "nonce",
        "at_hash",
        "email",
        "name",
        "preferred_username",
    ]
    .map(|n| c.string(n));
    if azp?.is_some_and(|azp| azp != client_id) {
        return Err(IdTokenError::AzpMismatch);
    }
    let clock = Clock {
        now: expect.now,
        leeway: MAX_CLOCK_SKEW_SECS,
    };
    clock.check_validity(r, true)?;
    // Minted at the token endpoint moments ago: an old iat means a token from somewhere else.
    clock.check_issued(r, true, Some(0))?;
    let nonce_claim = nonce?;
    if let Some(nonce) = expect.nonce {
        if !nonce_claim.is_some_and(|n| nonce.matches(n)) {
            return Err(IdTokenError::NonceMismatch);
        }
    }
    let sub = r.subject().ok_or(IdTokenError::MissingSubject)?;
    let subject = match &tenant {
        None => sub.to_owned(),
        Some(tid) => {
            let oid = c
                .string("oid")?
                .filter(|o| is_guid(o))
                .ok_or(IdTokenError::BadObjectId)?;
            format!("{tid}/{}", oid.to_ascii_lowercase())
        }
    };
    if let (Some(at_hash), Some(expected)) = (at_hash?, expect.at_hash) {
        if at_hash != expected {
            return Err(IdTokenError::AccessTokenHashMismatch);
        }
    }
    let email_verified = match c.all.get("email_verified") {
        Some(serde_json::Value::Bool(b)) => Some(*b),
        // Some providers send "true"/"false" strings.
        Some(serde_json::Value::String(s)) => Some(s.eq_ignore_ascii_case("true")),
        _ => None,
    };
    Ok(VerifiedIdToken {
        issuer: expect.issuer.clone(),
        subject,
        email: email?.map(str::to_owned),
        email_verified,
        name: name?.or(preferred_username?).map(str::to_owned),
        tenant,
        auth: AuthContext::from_claims(&c.all),
        claims: c.all,
        _sealed: (),
    })
}

/// The tenant of a multi-tenant token: its `tid` is a GUID, its `iss` is the template filled
/// with that `tid` (so a token cannot claim one tenant and be issued by another), and the
/// tenant is allowed.
fn tenant_of(c: &Claims, t: Tenancy<'_>) -> Result<String, IdTokenError> {
    let tid = c
        .string("tid")?
        .filter(|t| is_guid(t))
        .ok_or(IdTokenError::BadTenant)?;
    if c.registered.iss != t.template.issuer_of(tid) {
        return Err(IdTokenError::IssuerMismatch);
    }
    if !t.allowed.allows(tid) {
        return Err(IdTokenError::TenantNotAllowed);
    }
    Ok(tid.to_ascii_lowercase())
}

/// `at_hash`: base64url of the left half of the hash of the access token, the hash being the
/// one the signature algorithm uses (SHA-512 for Ed25519). SHA-256 here, the wider ones from
/// the platform.
pub async fn access_token_hash<V: SignatureVerifier>(
    verifier: &V,
    alg: JwsAlg,
    token: &str,
) -> Result<String, SignatureError> {
    let digest: Vec<u8> = match alg {
        JwsAlg::Rs256 | JwsAlg::Ps256 | JwsAlg::Es256 => Sha256::digest(token).to_vec(),
        JwsAlg::Rs384 | JwsAlg::Ps384 => {
            verifier
                .wide_digest(WideHash::Sha384, token.as_bytes())
                .await?
        }
        JwsAlg::Rs512 | JwsAlg::Ps512 | JwsAlg::EdDsa => {
            verifier
                .wide_digest(WideHash::Sha512, token.as_bytes())
                .await?
        }
    };
    Ok(URL_SAFE_NO_PAD.encode(&digest[..digest.len() / 2]))
}

/// An ID token from the token endpoint and what it must match.
pub struct IdTokenCheck<'a> {
    pub raw: &'a str,
    pub jwks_uri: &'a HttpUrl,
    /// `None` for refreshed tokens.
    pub nonce: Option<&'a Nonce>,
    /// The access token from the same answer, for `at_hash`.
    pub access_token: Option<&'a str>,
    pub now: UnixTime,
    /// Discovery's multi-tenant issuer template, when it has one.
    pub issuer_template: Option<&'a IssuerTemplate>,
}

/// Why an ID token from the token endpoint was not accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IdTokenFailure {
    /// The provider's keys cannot be had: nothing was decided about the token.
    Provider(ProviderError),
    /// The token is not acceptable (malformed, no fitting key, bad signature, a claim rule).
    Rejected(String),
    /// A multi-tenant token from a tenant the allow-list does not name.
    TenantNotAllowed,
}

/// How tokens of `provider` name their issuer, given discovery's `template`: a multi-tenant
/// authority needs its allow-list.
pub fn tenancy<'a>(
    provider: &'a ProviderConfig,
    template: Option<&'a IssuerTemplate>,
) -> Result<Option<Tenancy<'a>>, ProviderError> {
    match (template, &provider.tenants) {
        (None, _) => Ok(None),
        (Some(template), Some(allowed)) => Ok(Some(Tenancy { template, allowed })),
        (Some(_), None) => Err(ProviderError::Invalid(
            "the issuer is a multi-tenant authority: set OIDC_ALLOWED_TENANTS to the tenant ids to let in (or *)".into(),
        )),
    }
}

/// Verifies an ID token from the token endpoint: signature with the provider's keys, then
/// every claim rule.
pub async fn verify<P: Platform>(
    provider: &ProviderConfig,
    cache: &ProviderCache,
    platform: &P,
    check: IdTokenCheck<'_>,
) -> Result<VerifiedIdToken, IdTokenFailure> {
    let reject = |why: String| IdTokenFailure::Rejected(why);
    let tenancy = tenancy(provider, check.issuer_template).map_err(IdTokenFailure::Provider)?;
    let jws = UnverifiedJws::parse(check.raw).map_err(|e| reject(e.to_string()))?;
    let verified = cache
        .verify(platform, check.jwks_uri, jws, Refetch::Always)
        .await
        .map_err(|e| match e {
            SignedTokenError::Provider(p) => IdTokenFailure::Provider(p),
            SignedTokenError::Key(k) => reject(format!("no signing key for the token ({k:?})")),
            SignedTokenError::Signature(s) => reject(s.to_string()),
        })?;
    let at_hash = match check.access_token {
        Some(token) => Some(
            access_token_hash(platform.verifier(), verified.header().alg, token)
                .await
                .map_err(|e| reject(e.to_string()))?,
        ),
        None => None,
    };
    let expect = Expectations {
        issuer: &provider.issuer,
        issuer_spelling: provider.issuer_spelling(),
        client_id: &provider.client_id,
        nonce: check.nonce,
        now: check.now,
        at_hash: at_hash.as_deref(),
        tenancy,
    };
    validate(verified, &expect).map_err(|e| match e {
        IdTokenError::TenantNotAllowed => IdTokenFailure::TenantNotAllowed,
        e => reject(e.to_string()),
    })
}

#[cfg(test)]
mod tests;
