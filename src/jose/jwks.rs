//! The provider's JSON Web Key Set and choosing the key for a token.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde::Deserialize;

use crate::jose::jws::{JoseHeader, JwsAlg};

/// One public signing key from the set.
#[derive(Debug, Clone)]
pub struct PublicJwk {
    pub kid: Option<String>,
    pub alg: Option<String>,
    kty: String,
    crv: Option<String>,
    /// The key as published, for platforms that import JWKs themselves (WebCrypto).
    pub json: serde_json::Value,
}

impl PublicJwk {
    /// One key of a set, if it is a public signing key we can use: `use` absent or `sig`, an
    /// RSA, EC or OKP key with its public members in base64url, and no private part (a
    /// private key published by mistake is not trusted). The platform's import checks the
    /// rest (a point on its curve, the modulus size).
    pub fn from_json(value: serde_json::Value) -> Option<Self> {
        let meta = RawMeta::deserialize(&value).ok()?;
        let members: &[&str] = match meta.kty.as_str() {
            "RSA" => &["n", "e"],
            "EC" => &["x", "y"],
            "OKP" => &["x"],
            _ => return None,
        };
        let base64url = |name: &str| {
            value
                .get(name)
                .and_then(serde_json::Value::as_str)
                .is_some_and(|v| URL_SAFE_NO_PAD.decode(v.trim_end_matches('=')).is_ok())
        };
        if meta.use_.as_deref().is_some_and(|u| u != "sig")
            || (meta.kty != "RSA" && meta.crv.is_none())
            || !members.iter().all(|m| base64url(m))
            || value.get("d").is_some()
        {
            return None;
        }
        Some(PublicJwk {
            kid: meta.kid,
            alg: meta.alg,
            kty: meta.kty,
            crv: meta.crv,
            json: value,
        })
    }

    /// Whether this key can, by its type, curve and declared `alg`, verify `alg`.
    pub fn fits(&self, alg: JwsAlg) -> bool {
        let curve_ok = match alg {
            JwsAlg::Es256 => self.crv.as_deref() == Some("P-256"),
            JwsAlg::EdDsa => self.crv.as_deref() == Some("Ed25519"),
            _ => true,
        };
        self.kty == alg.key_type()
            && curve_ok
            && self.alg.as_deref().is_none_or(|a| a == alg.name())
    }
}

/// A key set document that is not one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JwksError(pub String);

impl std::fmt::Display for JwksError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

#[derive(Debug, Clone, Default)]
pub struct JwkSet {
    pub keys: Vec<PublicJwk>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyError {
    /// No key has the token's `kid`: the provider may have rotated (refetch once).
    UnknownKid,
    /// No `kid` and no key fits the algorithm.
    NoMatchingKey,
    /// No `kid` and several keys fit: refuse rather than try each.
    AmbiguousKey,
}

#[derive(Deserialize)]
struct RawSet {
    keys: Vec<serde_json::Value>,
}

#[derive(Deserialize)]
struct RawMeta {
    kty: String,
    #[serde(default)]
    kid: Option<String>,
    #[serde(default)]
    alg: Option<String>,
    #[serde(default, rename = "use")]
    use_: Option<String>,
    #[serde(default)]
    crv: Option<String>,
}

impl JwkSet {
    /// Parses a JWKS document. Keys we cannot use (encryption keys, symmetric keys, unknown
    /// types, private parts) are skipped, not fatal: providers publish mixed sets.
    pub fn parse(body: &[u8]) -> Result<Self, JwksError> {
        let raw: RawSet = serde_json::from_slice(body)
            .map_err(|e| JwksError(format!("JWKS is not valid JSON: {e}")))?;
        let keys = raw
            .keys
            .into_iter()
            .filter_map(PublicJwk::from_json)
            .collect();
        Ok(Self { keys })
    }

    /// Chooses the key for a token: by `kid` when it has one, else the single key that fits.
    pub fn select(&self, header: &JoseHeader) -> Result<&PublicJwk, KeyError> {
        match &header.kid {
            Some(kid) => self
                .keys
                .iter()
                .find(|k| k.kid.as_deref() == Some(kid.as_str()) && k.fits(header.alg))
                .ok_or(KeyError::UnknownKid),
            None => {
                let mut fitting = self.keys.iter().filter(|k| k.fits(header.alg));
                match (fitting.next(), fitting.next()) {
                    (Some(k), None) => Ok(k),
                    (None, _) => Err(KeyError::NoMatchingKey),
                    (Some(_), Some(_)) => Err(KeyError::AmbiguousKey),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EC_X: &str = "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU";
    const EC_Y: &str = "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0";

    fn ec(kid: Option<&str>) -> serde_json::Value {
        let mut v = serde_json::json!({"kty":"EC","crv":"P-256","x":EC_X,"y":EC_Y,"use":"sig"});
        if let Some(k) = kid {
            v["kid"] = k.into();
        }
        v
    }

    fn set(keys: Vec<serde_json::Value>) -> JwkSet {
        JwkSet::parse(serde_json::json!({ "keys": keys }).to_string().as_bytes()).unwrap()
    }

    fn header(alg: JwsAlg, kid: Option<&str>) -> JoseHeader {
        JoseHeader {
            alg,
            kid: kid.map(str::to_owned),
            typ: None,
        }
    }

    #[test]
    fn selects_by_kid() {
        let s = set(vec![ec(Some("a")), ec(Some("b"))]);
        assert_eq!(
            s.select(&header(JwsAlg::Es256, Some("b")))
                .unwrap()
                .kid
                .as_deref(),
            Some("b")
        );
        assert_eq!(
            s.select(&header(JwsAlg::Es256, Some("c"))).unwrap_err(),
            KeyError::UnknownKid
        );
    }

    #[test]
    fn kid_with_wrong_key_type_is_unknown() {
        let s = set(vec![ec(Some("a"))]);
        assert_eq!(
            s.select(&header(JwsAlg::Rs256, Some("a"))).unwrap_err(),
            KeyError::UnknownKid
        );
    }

    #[test]
    fn without_kid_only_a_single_fitting_key_is_used() {
        assert!(set(vec![ec(None)])
            .select(&header(JwsAlg::Es256, None))
            .is_ok());
        assert_eq!(
            set(vec![ec(None), ec(Some("x"))])
                .select(&header(JwsAlg::Es256, None))
                .unwrap_err(),
            KeyError::AmbiguousKey
        );
        assert_eq!(
            set(vec![ec(None)])
                .select(&header(JwsAlg::EdDsa, None))
                .unwrap_err(),
            KeyError::NoMatchingKey
        );
    }

    #[test]
    fn encryption_symmetric_and_private_keys_are_skipped() {
        let mut enc = ec(Some("e"));
        enc["use"] = "enc".into();
        let oct = serde_json::json!({"kty":"oct","k":"c2VjcmV0","kid":"o"});
        let mut private = ec(Some("p"));
        private["d"] = "jpsQnnGQmL-YBIffH1136cspYG6-0iY7X1fCE9-E9LI".into();
        let s = set(vec![
            enc,
            oct,
            private,
            serde_json::json!({"kty":"weird"}),
            ec(Some("ok")),
        ]);
        assert_eq!(s.keys.len(), 1);
        assert_eq!(s.keys[0].kid.as_deref(), Some("ok"));
    }

    #[test]
    fn declared_alg_must_match() {
        let mut k = ec(Some("a"));
        k["alg"] = "ES384".into();
        assert_eq!(
            set(vec![k])
                .select(&header(JwsAlg::Es256, Some("a")))
                .unwrap_err(),
            KeyError::UnknownKid
        );
    }

    #[test]
    fn garbage_jwks_is_an_error() {
        assert!(JwkSet::parse(b"not json").is_err());
        assert!(JwkSet::parse(b"{}").is_err());
    }
}
