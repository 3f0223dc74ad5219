//! A bounded per-isolate cache of verified access tokens: an API client re-using its token
//! pays the signature check once. Keyed by the token's SHA-256; entries never outlive `exp`;
//! the oldest entries go first when full.

use std::cell::RefCell;
use std::collections::{HashMap, VecDeque};
use std::rc::Rc;

use sha2::{Digest, Sha256};

use crate::access::access_token::VerifiedAccessToken;

pub const DEFAULT_CAPACITY: usize = 10_000;

type Key = [u8; 32];

pub struct TokenCache {
    capacity: usize,
    entries: RefCell<HashMap<Key, Rc<VerifiedAccessToken>>>,
    order: RefCell<VecDeque<Key>>,
}

impl Default for TokenCache {
    fn default() -> Self {
        Self::with_capacity(DEFAULT_CAPACITY)
    }
}

fn key(token: &str) -> Key {
    Sha256::digest(token.as_bytes()).into()
}

impl TokenCache {
    pub fn with_capacity(capacity: usize) -> Self {
        Self {
            capacity: capacity.max(1),
            entries: RefCell::default(),
            order: RefCell::default(),
        }
    }

    /// The verified token, unless absent or expired (`now` in seconds).
    pub fn get(&self, token: &str, now: i64) -> Option<Rc<VerifiedAccessToken>> {
        let k = key(token);
        let hit = self.entries.borrow().get(&k).cloned();
        match hit {
            Some(t) if now < t.expires_at => Some(t),
            Some(_) => {
                self.entries.borrow_mut().remove(&k);
                None
            }
            None => None,
        }
    }

    pub fn insert(&self, token: &str, verified: VerifiedAccessToken) -> Rc<VerifiedAccessToken> {
        let k = key(token);
        let value = Rc::new(verified);
        let mut entries = self.entries.borrow_mut();
        let mut order = self.order.borrow_mut();
        if entries.insert(k, value.clone()).is_none() {
            order.push_back(k);
        }
        // Evict the oldest; keys already removed (expired) are skipped.
        while entries.len() > self.capacity {
            match order.pop_front() {
                Some(old) => {
                    entries.remove(&old);
                }
                None => break,
            }
        }
        // Keep the order queue from growing with keys that expired out of the map.
        if order.len() > self.capacity.saturating_mul(2) {
            order.retain(|k| entries.contains_key(k));
        }
        value
    }

    pub fn len(&self) -> usize {
        self.entries.borrow().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::access::access_token::{validate, AccessExpectations, ListClaims, TypPolicy};
    use crate::jose::jws::VerifiedJws;

    fn verified(exp: i64) -> VerifiedAccessToken {
        // Built through the real rules, from an already "verified" payload.
        let jws = VerifiedJws::assume_verified(
            crate::jose::jws::JoseHeader {
                alg: crate::jose::jws::JwsAlg::Es256,
                kid: None,
                typ: Some("at+jwt".into()),
            },
            serde_json::json!({"iss":"i","aud":"a","sub":"s","exp":exp})
                .to_string()
                .into_bytes(),
        );
        let (iss, aud) = (["i".to_owned()], ["a".to_owned()]);
        validate(
            &jws,
            &AccessExpectations {
                issuers: &iss,
                audiences: &aud,
                typ: TypPolicy::AtJwtOnly,
                now: 0,
            },
            &ListClaims {
                groups: "groups",
                roles: "roles",
            },
        )
        .unwrap()
    }

    #[test]
    fn hits_until_expiry() {
        let c = TokenCache::with_capacity(10);
        c.insert("t1", verified(100));
        assert!(c.get("t1", 99).is_some());
        assert!(c.get("t1", 100).is_none(), "never outlives exp");
        assert!(c.get("t1", 50).is_none(), "expired entries are removed");
        assert!(c.get("t2", 0).is_none());
    }

    #[test]
    fn capacity_evicts_the_oldest() {
        let c = TokenCache::with_capacity(3);
        for t in ["a", "b", "c", "d"] {
            c.insert(t, verified(100));
        }
        assert_eq!(c.len(), 3);
        assert!(c.get("a", 0).is_none());
        assert!(c.get("d", 0).is_some());
        for i in 0..1000 {
            c.insert(&format!("x{i}"), verified(100));
        }
        assert_eq!(c.len(), 3);
        assert!(c.order.borrow().len() <= 6);
    }
}
