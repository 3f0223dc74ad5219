//! Our own private keys, as JWKs, checked once and never printed: the client's
//! (`OIDC_CLIENT_KEY`, for `private_key_jwt` client authentication, RFC 7523 and OpenID Connect
//! Core 9: RSA for RS256 or PS256 as Entra's certificate credentials, or EC P-256 for ES256)
//! and the identity assertion's (`ASSERTION_SIGNING_KEYS`: EC P-256 for ES256 or OKP Ed25519
//! for EdDSA). The platform signs with them (WebCrypto in the worker).

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};

use crate::jose::jws::JwsAlg;

/// A private signing key: its algorithm, its `kid` and certificate thumbprint (`x5t#S256`)
/// for the JWS header, and the members the platform imports.
#[derive(Clone)]
pub struct SigningKey {
    pub alg: JwsAlg,
    pub kid: Option<String>,
    /// Base64url SHA-256 of the certificate (Entra's certificate credentials want it).
    pub x5t_s256: Option<String>,
    /// Only the key's own members (`kty`, `n`, `e`, `d`... or `kty`, `crv`, `x`, `y`, `d`).
    jwk: Value,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SigningKey({}, [redacted])", self.alg.name())
    }
}

/// The members of each key type: public first, then private.
const RSA_MEMBERS: [&str; 5] = ["n", "e", "d", "p", "q"];
/// The CRT members, copied when present (WebCrypto's import wants them; the key script writes
/// them).
const RSA_CRT: [&str; 3] = ["dp", "dq", "qi"];
const EC_MEMBERS: [&str; 3] = ["x", "y", "d"];
const OKP_MEMBERS: [&str; 2] = ["x", "d"];
const PRIVATE_MEMBERS: [&str; 6] = ["d", "p", "q", "dp", "dq", "qi"];

/// Which key types a use accepts, and what to say about the others.
struct Accepts {
    rsa: bool,
    ed25519: bool,
    otherwise: &'static str,
}

impl SigningKey {
    /// The client's key (`OIDC_CLIENT_KEY`): a private RSA or EC P-256 JWK as JSON. The
    /// problem says what is wrong, never what the key holds.
    pub fn client(v: &str) -> Result<Self, &'static str> {
        let all: Map<String, Value> = serde_json::from_slice(v.as_bytes()).map_err(|_| {
            "must be a private JWK in JSON (make one with node scripts/client-key.mjs)"
        })?;
        Self::parse(
            &all,
            Accepts {
                rsa: true,
                ed25519: false,
                otherwise: "must be an RSA or an EC P-256 private JWK",
            },
        )
    }

    /// One identity assertion key (an entry of `ASSERTION_SIGNING_KEYS`): a private EC P-256
    /// or OKP Ed25519 JWK.
    pub fn assertion(v: &Value) -> Result<Self, &'static str> {
        let all = v.as_object().ok_or("is not a JWK")?;
        Self::parse(
            all,
            Accepts {
                rsa: false,
                ed25519: true,
                otherwise: "must be an EC P-256 (ES256) or OKP Ed25519 (EdDSA) key",
            },
        )
    }

    fn parse(all: &Map<String, Value>, accepts: Accepts) -> Result<Self, &'static str> {
        let text = |name: &str| {
            all.get(name)
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
        };
        type Kind = (&'static [&'static str], JwsAlg, &'static [JwsAlg], usize);
        let (members, default_alg, allowed, point_len): Kind = match (text("kty"), text("crv")) {
            (Some("RSA"), _) if accepts.rsa => (
                &RSA_MEMBERS,
                JwsAlg::Rs256,
                &[JwsAlg::Rs256, JwsAlg::Ps256],
                0,
            ),
            (Some("EC"), Some("P-256")) => (&EC_MEMBERS, JwsAlg::Es256, &[JwsAlg::Es256], 32),
            (Some("OKP"), Some("Ed25519")) if accepts.ed25519 => {
                (&OKP_MEMBERS, JwsAlg::EdDsa, &[JwsAlg::EdDsa], 32)
            }
            _ => return Err(accepts.otherwise),
        };
        let mut jwk = Map::new();
        jwk.insert("kty".into(), json!(text("kty")));
        if let Some(crv) = text("crv").filter(|_| point_len > 0) {
            jwk.insert("crv".into(), json!(crv));
        }
        for m in members {
            let value = text(m).ok_or(if *m == "d" {
                "is a public key: the private part (d) is needed"
            } else {
                "lacks a key member (a private JWK has its public members too)"
            })?;
            // Curve coordinates and scalars have one length; a wrong one is not this key type.
            let decoded = URL_SAFE_NO_PAD
                .decode(value.trim_end_matches('='))
                .map_err(|_| "has a member that is not base64url")?;
            if point_len > 0 && decoded.len() != point_len {
                return Err("has a member of the wrong length for its curve");
            }
            jwk.insert((*m).into(), json!(value.trim_end_matches('=')));
        }
        for m in RSA_CRT.iter().filter(|_| default_alg == JwsAlg::Rs256) {
            if let Some(value) = text(m) {
                jwk.insert((*m).into(), json!(value));
            }
        }
        let alg = match text("alg") {
            None => default_alg,
            Some(a) => JwsAlg::parse(a).filter(|a| allowed.contains(a)).ok_or(
                "has an alg its key type cannot sign with (RS256 or PS256 for RSA, ES256 for EC P-256, EdDSA for Ed25519)",
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

    /// The public half, as a JWK: the key's type and public members, nothing else.
    pub fn public_jwk(&self) -> Value {
        let mut v = self.jwk.clone();
        if let Some(o) = v.as_object_mut() {
            for private in PRIVATE_MEMBERS {
                o.remove(private);
            }
        }
        v
    }

    /// The RFC 7638 thumbprint of the public key, base64url: SHA-256 of its required
    /// members in lexical order, without spaces (every member is base64url, checked above:
    /// nothing to escape).
    pub fn thumbprint(&self) -> String {
        let m = |name: &str| self.jwk.get(name).and_then(Value::as_str).unwrap_or("");
        let canonical = match self.alg {
            JwsAlg::Es256 => format!(
                r#"{{"crv":"P-256","kty":"EC","x":"{}","y":"{}"}}"#,
                m("x"),
                m("y")
            ),
            JwsAlg::EdDsa => format!(r#"{{"crv":"Ed25519","kty":"OKP","x":"{}"}}"#, m("x")),
            _ => format!(r#"{{"e":"{}","kty":"RSA","n":"{}"}}"#, m("e"), m("n")),
        };
        URL_SAFE_NO_PAD.encode(Sha256::digest(canonical.as_bytes()))
    }

    /// The JWS header of a token signed with this key.
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
        let key = SigningKey::client(&with_thumbprint.to_string()).unwrap();
        assert_eq!(key.alg, JwsAlg::Rs256);
        assert_eq!(
            key.header(),
            json!({"alg": "RS256", "typ": "JWT", "kid": "k1", "x5t#S256": "thumb"})
        );
        assert_eq!(format!("{key:?}"), "SigningKey(RS256, [redacted])");
        assert!(key.private_jwk().get("use").is_none());
        with_thumbprint["alg"] = json!("PS256");
        assert_eq!(
            SigningKey::client(&with_thumbprint.to_string())
                .unwrap()
                .alg,
            JwsAlg::Ps256
        );
        let ec = SigningKey::client(&TestKey::es256(Some("e1")).private_jwk()).unwrap();
        assert_eq!(ec.alg, JwsAlg::Es256);
    }

    #[test]
    fn public_keys_weak_keys_and_mismatched_algorithms_are_refused() {
        let rsa: Value = serde_json::from_str(&TestKey::rsa(None).private_jwk()).unwrap();
        let mut public = rsa.clone();
        public.as_object_mut().unwrap().remove("d");
        assert!(SigningKey::client(&public.to_string()).is_err());
        let mut wrong_alg = rsa.clone();
        wrong_alg["alg"] = json!("ES256");
        assert!(SigningKey::client(&wrong_alg.to_string()).is_err());
        let mut hmac = rsa.clone();
        hmac["alg"] = json!("HS256");
        assert!(SigningKey::client(&hmac.to_string()).is_err());
        let mut short = rsa;
        short["n"] = json!("AQAB");
        assert!(SigningKey::client(&short.to_string()).is_err());
        for bad in [
            "",
            "not json",
            "[]",
            r#"{"kty":"oct","k":"x"}"#,
            r#"{"kty":"EC","crv":"P-384","x":"a","y":"b","d":"c"}"#,
        ] {
            assert!(SigningKey::client(bad).is_err(), "{bad}");
        }
    }
}
