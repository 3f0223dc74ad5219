//! A bounded per-isolate cache of verified access tokens: an API client re-using its token
//! pays the signature check once. Keyed by the token's SHA-256; entries never outlive `exp`;
//! the oldest entries go first when full.

use std::rc::Rc;

use sha2::{Digest, Sha256};

use crate::access::access_token::VerifiedAccessToken;
use crate::base::cache::BoundedCache;
use crate::base::time::UnixTime;

pub const DEFAULT_CAPACITY: usize = 10_000;

/// A token's digest: the cache key, and the assertion cache's key for a Bearer request.
pub type TokenDigest = [u8; 32];

pub fn digest(token: &str) -> TokenDigest {
    Sha256::digest(token.as_bytes()).into()
}

pub struct TokenCache(BoundedCache<TokenDigest, Rc<VerifiedAccessToken>>);

impl Default for TokenCache {
    fn default() -> Self {
        Self(BoundedCache::new(DEFAULT_CAPACITY))
    }
}

impl TokenCache {
    /// The verified token, unless absent or expired.
    pub fn get(&self, token: &TokenDigest, now: UnixTime) -> Option<Rc<VerifiedAccessToken>> {
        self.0.get(token, now)
    }

    pub fn insert(
        &self,
        token: TokenDigest,
        verified: VerifiedAccessToken,
    ) -> Rc<VerifiedAccessToken> {
        let value = Rc::new(verified);
        self.0.insert(token, value.clone(), value.expires_at);
        value
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::access::access_token::{validate, AccessExpectations, TypPolicy};
    use crate::base::types::Issuer;
    use crate::jose::claims::ListClaims;
    use crate::jose::jws::{JoseHeader, JwsAlg, VerifiedJws};

    fn verified(exp: i64) -> VerifiedAccessToken {
        // Built through the real rules, from an already "verified" payload.
        let jws = VerifiedJws::assume_verified(
            JoseHeader {
                alg: JwsAlg::Es256,
                kid: None,
                typ: Some("at+jwt".into()),
            },
            serde_json::json!({"iss":"i","aud":"a","sub":"s","exp":exp})
                .to_string()
                .into_bytes(),
        );
        let (iss, aud) = ([Issuer::new("i")], ["a".to_owned()]);
        validate(
            &jws,
            &AccessExpectations {
                issuers: &iss,
                audiences: &aud,
                typ: TypPolicy::AtJwtOnly,
                now: UnixTime::EPOCH,
            },
            &ListClaims::default(),
        )
        .unwrap()
    }

    #[test]
    fn hits_until_expiry() {
        let c = TokenCache::default();
        c.insert(digest("t1"), verified(100));
        assert!(c.get(&digest("t1"), UnixTime::from_secs(99)).is_some());
        assert!(
            c.get(&digest("t1"), UnixTime::from_secs(100)).is_none(),
            "never outlives exp"
        );
        assert!(c.get(&digest("t2"), UnixTime::EPOCH).is_none());
    }
}
