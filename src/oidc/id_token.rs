//! ID token validation, OpenID Connect Core 1.0 section 3.1.3.7 (code flow). The claim rules
//! are plain functions over already signature-checked tokens, whichever verifier ran.
//!
//! A [`VerifiedIdToken`] can only be made here.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde::{Deserialize, Deserializer};
use sha2::{Digest, Sha256, Sha384, Sha512};

use crate::jose::jws::{JwsAlg, VerifiedJws};
use crate::base::types::{ClientId, Issuer, Nonce};

/// Allowed clock difference between the provider and the edge.
pub const MAX_CLOCK_SKEW_SECS: i64 = 300;

/// What the relying party expects of this ID token.
pub struct Expectations<'a> {
    pub issuer: &'a Issuer,
    pub client_id: &'a ClientId,
    /// The login's nonce; `None` for a refreshed ID token (OIDC Core 12.2), which has no new
    /// nonce to match.
    pub nonce: Option<&'a Nonce>,
    /// Audiences besides our client id that may appear in `aud` (normally none).
    pub trusted_audiences: &'a [String],
    pub now: i64,
    /// The access token from the same response, to check `at_hash` when present.
    pub access_token: Option<&'a str>,
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
        };
        f.write_str(s)
    }
}

#[derive(Debug, Deserialize, Clone, PartialEq)]
#[serde(untagged)]
pub enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

impl OneOrMany {
    pub fn iter(&self) -> Box<dyn Iterator<Item = &str> + '_> {
        match self {
            Self::One(s) => Box::new(std::iter::once(s.as_str())),
            Self::Many(v) => Box::new(v.iter().map(String::as_str)),
        }
    }
}

/// NumericDate: seconds since the epoch; fractions are allowed by RFC 7519 and dropped.
fn numeric_date<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    let v: Option<serde_json::Number> = Option::deserialize(d)?;
    Ok(v.and_then(|n| {
        n.as_i64().or_else(|| {
            n.as_f64()
                .filter(|f| f.is_finite())
                .map(|f| f.floor() as i64)
        })
    }))
}

#[derive(Debug, Deserialize)]
struct Claims {
    iss: String,
    #[serde(default)]
    sub: Option<String>,
    aud: OneOrMany,
    #[serde(default, deserialize_with = "numeric_date")]
    exp: Option<i64>,
    #[serde(default, deserialize_with = "numeric_date")]
    iat: Option<i64>,
    #[serde(default, deserialize_with = "numeric_date")]
    nbf: Option<i64>,
    #[serde(default)]
    nonce: Option<String>,
    #[serde(default)]
    azp: Option<String>,
    #[serde(default)]
    at_hash: Option<String>,
    #[serde(default)]
    email: Option<String>,
    #[serde(default)]
    email_verified: Option<serde_json::Value>,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    preferred_username: Option<String>,
}

/// An ID token that passed every check. Only [`validate`] makes one: the private field keeps
/// every other module (not just other crates, as `#[non_exhaustive]` would) from building it.
#[allow(clippy::manual_non_exhaustive)]
#[derive(Debug, Clone, PartialEq)]
pub struct VerifiedIdToken {
    pub issuer: Issuer,
    pub subject: String,
    pub email: Option<String>,
    /// `None` when the provider did not say.
    pub email_verified: Option<bool>,
    pub name: Option<String>,
    pub expires_at: i64,
    /// Every claim, for the configurable ones (groups, roles).
    pub claims: serde_json::Value,
    _sealed: (),
}

/// Applies the claim rules to a signature-checked token.
pub fn validate(
    jws: VerifiedJws,
    expect: &Expectations<'_>,
) -> Result<VerifiedIdToken, IdTokenError> {
    // An access token (RFC 9068 `at+jwt`) or logout token is not an ID token.
    if let Some(typ) = &jws.header().typ {
        let t = typ.to_ascii_lowercase();
        if t != "jwt" && t != "application/jwt" {
            return Err(IdTokenError::WrongType);
        }
    }
    let all: serde_json::Value =
        serde_json::from_slice(jws.payload()).map_err(|e| IdTokenError::Claims(e.to_string()))?;
    let c: Claims =
        serde_json::from_value(all.clone()).map_err(|e| IdTokenError::Claims(e.to_string()))?;
    if c.iss != expect.issuer.as_str() {
        return Err(IdTokenError::IssuerMismatch);
    }
    if !c.aud.iter().any(|a| a == expect.client_id.as_str()) {
        return Err(IdTokenError::AudienceMismatch);
    }
    if c.aud
        .iter()
        .any(|a| a != expect.client_id.as_str() && !expect.trusted_audiences.iter().any(|t| t == a))
    {
        return Err(IdTokenError::UntrustedAudience);
    }
    if c.azp
        .as_deref()
        .is_some_and(|azp| azp != expect.client_id.as_str())
    {
        return Err(IdTokenError::AzpMismatch);
    }
    let now = expect.now;
    let exp = c.exp.ok_or(IdTokenError::MissingExpiry)?;
    if now >= exp.saturating_add(MAX_CLOCK_SKEW_SECS) {
        return Err(IdTokenError::Expired);
    }
    let iat = c.iat.ok_or(IdTokenError::MissingIssuedAt)?;
    if iat > now.saturating_add(MAX_CLOCK_SKEW_SECS) {
        return Err(IdTokenError::IssuedInFuture);
    }
    // Minted at the token endpoint moments ago: an old iat means a token from somewhere else.
    if iat < now.saturating_sub(MAX_CLOCK_SKEW_SECS) {
        return Err(IdTokenError::IssuedTooLongAgo);
    }
    if c.nbf
        .is_some_and(|nbf| nbf > now.saturating_add(MAX_CLOCK_SKEW_SECS))
    {
        return Err(IdTokenError::NotYetValid);
    }
    if let Some(nonce) = expect.nonce {
        if !c.nonce.as_deref().is_some_and(|n| nonce.matches(n)) {
            return Err(IdTokenError::NonceMismatch);
        }
    }
    let subject = c
        .sub
        .filter(|s| !s.is_empty())
        .ok_or(IdTokenError::MissingSubject)?;
    if let (Some(at_hash), Some(access_token)) = (&c.at_hash, expect.access_token) {
        if *at_hash != access_token_hash(jws.header().alg, access_token) {
            return Err(IdTokenError::AccessTokenHashMismatch);
        }
    }
    let email_verified = match c.email_verified {
        Some(serde_json::Value::Bool(b)) => Some(b),
        // Some providers send "true"/"false" strings.
        Some(serde_json::Value::String(s)) => Some(s.eq_ignore_ascii_case("true")),
        _ => None,
    };
    Ok(VerifiedIdToken {
        issuer: expect.issuer.clone(),
        subject,
        email: c.email,
        email_verified,
        name: c.name.or(c.preferred_username),
        expires_at: exp,
        claims: all,
        _sealed: (),
    })
}

/// The strings at a claim path such as `groups` or `realm_access.roles`: an array of strings,
/// or one space-separated string.
pub fn string_list_claim(claims: &serde_json::Value, path: &str) -> Vec<String> {
    let mut v = claims;
    for part in path.split('.') {
        match v.get(part) {
            Some(next) => v = next,
            None => return Vec::new(),
        }
    }
    match v {
        serde_json::Value::Array(items) => items
            .iter()
            .filter_map(|i| i.as_str().map(str::to_owned))
            .collect(),
        serde_json::Value::String(s) => s.split_whitespace().map(str::to_owned).collect(),
        _ => Vec::new(),
    }
}

/// `at_hash`: base64url of the left half of the hash of the access token, the hash being the
/// one the signature algorithm uses (SHA-512 for Ed25519).
fn access_token_hash(alg: JwsAlg, token: &str) -> String {
    let digest: Vec<u8> = match alg {
        JwsAlg::Rs256 | JwsAlg::Ps256 | JwsAlg::Es256 => Sha256::digest(token).to_vec(),
        JwsAlg::Rs384 | JwsAlg::Ps384 => Sha384::digest(token).to_vec(),
        JwsAlg::Rs512 | JwsAlg::Ps512 | JwsAlg::EdDsa => Sha512::digest(token).to_vec(),
    };
    URL_SAFE_NO_PAD.encode(&digest[..digest.len() / 2])
}

#[cfg(test)]
mod tests;
