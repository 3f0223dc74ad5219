//! The client's own private key (`OIDC_CLIENT_KEY`), for `private_key_jwt` client
//! authentication (RFC 7523, OpenID Connect Core 9): a private JWK, RSA (RS256 or PS256, as
//! Entra's certificate credentials) or EC P-256 (ES256). Never printed.

use serde_json::{json, Map, Value};

use crate::jose::jws::JwsAlg;

/// A private signing key, checked once: its algorithm, its `kid` and certificate thumbprint
/// (`x5t#S256`) for the assertion's header, and the private members the platform imports.
#[derive(Clone)]
pub struct ClientKey {
    pub alg: JwsAlg,
    pub kid: Option<String>,
    /// Base64url SHA-256 of the certificate (Entra's certificate credentials want it).
    pub x5t_s256: Option<String>,
    /// Only the key's own members (`kty`, `n`, `e`, `d`... or `kty`, `crv`, `x`, `y`, `d`).
    jwk: Value,
}

impl std::fmt::Debug for ClientKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ClientKey({}, [redacted])", self.alg.name())
    }
}

const RSA_MEMBERS: [&str; 5] = ["n", "e", "d", "p", "q"];
/// The CRT members, copied when present (WebCrypto's import wants them; the key script writes
/// them).
const RSA_CRT: [&str; 3] = ["dp", "dq", "qi"];
const EC_MEMBERS: [&str; 3] = ["x", "y", "d"];

impl ClientKey {
    /// A private JWK as JSON. The problem says what is wrong, never what the key holds.
    pub fn parse(v: &str) -> Result<Self, &'static str> {
        let all: Map<String, Value> = serde_json::from_str(v).map_err(|_| {
            "must be a private JWK in JSON (make one with node scripts/client-key.mjs)"
        })?;
        let text = |name: &str| {
            all.get(name)
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
        };
        let (members, default_alg, allowed): (&[&str], JwsAlg, &[JwsAlg]) = match text("kty") {
            Some("RSA") => (&RSA_MEMBERS, JwsAlg::Rs256, &[JwsAlg::Rs256, JwsAlg::Ps256]),
            Some("EC") if text("crv") == Some("P-256") => {
                (&EC_MEMBERS, JwsAlg::Es256, &[JwsAlg::Es256])
            }
            _ => return Err("must be an RSA or an EC P-256 private JWK"),
        };
        let mut jwk = Map::new();
        jwk.insert("kty".into(), json!(text("kty")));
        if default_alg == JwsAlg::Es256 {
            jwk.insert("crv".into(), json!("P-256"));
        }
        for m in members {
            let value = text(m).ok_or("lacks a private key member (a public key cannot sign)")?;
            jwk.insert((*m).into(), json!(value));
        }
        for m in RSA_CRT.iter().filter(|_| default_alg == JwsAlg::Rs256) {
            if let Some(value) = text(m) {
                jwk.insert((*m).into(), json!(value));
            }
        }
        let alg = match text("alg") {
            None => default_alg,
            Some(a) => JwsAlg::parse(a).filter(|a| allowed.contains(a)).ok_or(
                "has an alg this key type cannot sign with (RS256 or PS256 for RSA, ES256 for EC)",
            )?,
        };
        let modulus_ok = default_alg != JwsAlg::Rs256
            || text("n").is_some_and(|n| n.trim_end_matches('=').len() >= 342);
        if !modulus_ok {
            return Err("is an RSA key shorter than 2048 bits");
        }
        Ok(Self {
            alg,
            kid: text("kid").map(str::to_owned),
            x5t_s256: text("x5t#S256").map(str::to_owned),
            jwk: Value::Object(jwk),
        })
    }

    /// The private JWK members, for the platform's signer only.
    pub fn private_jwk(&self) -> &Value {
        &self.jwk
    }

    /// The JWS header of an assertion made with this key.
    pub fn header(&self) -> Value {
        let mut h = json!({"alg": self.alg.name(), "typ": "JWT"});
        if let Some(kid) = &self.kid {
            h["kid"] = json!(kid);
        }
        if let Some(t) = &self.x5t_s256 {
            h["x5t#S256"] = json!(t);
        }
        h
    }

    /// The public half, as a JWK (tests check signatures with it).
    #[cfg(test)]
    pub fn public_jwk(&self) -> Value {
        let mut v = self.jwk.clone();
        for private in ["d", "p", "q", "dp", "dq", "qi"] {
            v.as_object_mut().map(|o| o.remove(private));
        }
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::TestKey;

    #[test]
    fn rsa_and_ec_private_keys_parse_and_never_print() {
        let rsa = TestKey::rsa(Some("k1")).private_jwk();
        let mut with_thumbprint: Value = serde_json::from_str(&rsa).unwrap();
        with_thumbprint["x5t#S256"] = json!("thumb");
        with_thumbprint["use"] = json!("sig");
        let key = ClientKey::parse(&with_thumbprint.to_string()).unwrap();
        assert_eq!(key.alg, JwsAlg::Rs256);
        assert_eq!(
            key.header(),
            json!({"alg": "RS256", "typ": "JWT", "kid": "k1", "x5t#S256": "thumb"})
        );
        assert_eq!(format!("{key:?}"), "ClientKey(RS256, [redacted])");
        assert!(key.private_jwk().get("use").is_none());
        with_thumbprint["alg"] = json!("PS256");
        assert_eq!(
            ClientKey::parse(&with_thumbprint.to_string()).unwrap().alg,
            JwsAlg::Ps256
        );
        let ec = ClientKey::parse(&TestKey::es256(Some("e1")).private_jwk()).unwrap();
        assert_eq!(ec.alg, JwsAlg::Es256);
    }

    #[test]
    fn public_keys_weak_keys_and_mismatched_algorithms_are_refused() {
        let rsa: Value = serde_json::from_str(&TestKey::rsa(None).private_jwk()).unwrap();
        let mut public = rsa.clone();
        public.as_object_mut().unwrap().remove("d");
        assert!(ClientKey::parse(&public.to_string()).is_err());
        let mut wrong_alg = rsa.clone();
        wrong_alg["alg"] = json!("ES256");
        assert!(ClientKey::parse(&wrong_alg.to_string()).is_err());
        let mut hmac = rsa.clone();
        hmac["alg"] = json!("HS256");
        assert!(ClientKey::parse(&hmac.to_string()).is_err());
        let mut short = rsa;
        short["n"] = json!("AQAB");
        assert!(ClientKey::parse(&short.to_string()).is_err());
        for bad in [
            "",
            "not json",
            "[]",
            r#"{"kty":"oct","k":"x"}"#,
            r#"{"kty":"EC","crv":"P-384","x":"a","y":"b","d":"c"}"#,
        ] {
            assert!(ClientKey::parse(bad).is_err(), "{bad}");
        }
    }
}
