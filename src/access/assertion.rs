//! The signed identity assertion for the origin (like Cloudflare Access's
//! `Cf-Access-Jwt-Assertion`): a short-lived JWT signed with the worker's own key, published
//! with the previous key at `/auth/jwks.json` so keys can rotate.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jwt_compact::alg::{Ed25519, Es256};
use jwt_compact::jwk::JsonWebKey;
use jwt_compact::{Algorithm, AlgorithmSignature};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::access::policy::VouchedEmail;
use crate::access::step_up::AuthContext;
use crate::base::cache::BoundedCache;
use crate::base::time::UnixTime;

/// Who an assertion is about: a signed-in session or a verified Bearer token.
pub struct Subject<'a> {
    pub idp: &'a str,
    pub sub: &'a str,
    /// Only an address the provider vouches for (see `Policy::vouched_email`).
    pub email: Option<VouchedEmail<'a>>,
    pub name: Option<&'a str>,
    pub groups: &'a [String],
    pub roles: &'a [String],
    /// A digest of the credential the request presented (the session's identity, or the
    /// Bearer token) and its issuer: the cache key, so an assertion is only ever reused for
    /// the same credential.
    pub credential: [u8; 32],
    /// When it ends: the assertion never outlives it.
    pub until: UnixTime,
    /// How the person signed in: `acr`, `amr` and `auth_time` are passed on when known.
    pub auth: &'a AuthContext,
}

/// Lifetime of one assertion.
pub const ASSERTION_TTL_SECS: u64 = 300;
/// A cached assertion is reused until this long before it expires.
const REUSE_MARGIN_SECS: u64 = 60;
const MAX_CACHED: usize = 4096;

enum Key {
    Es256(Box<<Es256 as Algorithm>::SigningKey>),
    Ed25519(<Ed25519 as Algorithm>::SigningKey),
}

struct SigningJwk {
    kid: String,
    key: Key,
    public: Value,
}

impl SigningJwk {
    fn alg(&self) -> &'static str {
        match self.key {
            Key::Es256(_) => "ES256",
            Key::Ed25519(_) => "EdDSA",
        }
    }

    fn sign(&self, message: &[u8]) -> Vec<u8> {
        match &self.key {
            Key::Es256(k) => Es256.sign(k, message).as_bytes().into_owned(),
            Key::Ed25519(k) => Ed25519.sign(k, message).as_bytes().into_owned(),
        }
    }
}

/// Signs assertions for one audience; keeps recent ones per session to skip re-signing.
pub struct AssertionSigner {
    keys: Vec<SigningJwk>,
    pub audience: String,
    pub header: String,
    /// (credential, origin) digest -> assertion, until shortly before it expires.
    cache: BoundedCache<[u8; 32], String>,
}

impl std::fmt::Debug for AssertionSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kids: Vec<&str> = self.keys.iter().map(|k| k.kid.as_str()).collect();
        write!(
            f,
            "AssertionSigner(aud {:?}, kids {kids:?}, [private keys redacted])",
            self.audience
        )
    }
}

impl AssertionSigner {
    /// `keys_json`: one private JWK (EC P-256 or OKP Ed25519) or a JSON array of them, the
    /// first signs. Errors never contain key material.
    pub fn new(keys_json: &str, audience: String, header: String) -> Result<Self, String> {
        let value: Value = serde_json::from_str(keys_json)
            .map_err(|_| "is not JSON (a private JWK or an array of them)".to_owned())?;
        let list = match value {
            Value::Array(v) => v,
            Value::Object(_) => vec![value],
            _ => return Err("must be a private JWK or an array of them".into()),
        };
        if list.is_empty() {
            return Err("holds no key".into());
        }
        let keys = list
            .iter()
            .enumerate()
            .map(|(i, v)| parse_key(v).map_err(|e| format!("key {}: {e}", i + 1)))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self {
            keys,
            audience,
            header,
            cache: BoundedCache::new(MAX_CACHED),
        })
    }

    /// The public keys, for `/auth/jwks.json`.
    pub fn jwks(&self) -> Value {
        json!({ "keys": self.keys.iter().map(|k| k.public.clone()).collect::<Vec<_>>() })
    }

    /// An assertion for `who`, issued by `issuer` (the worker's public origin).
    pub fn assertion(&self, issuer: &str, who: &Subject<'_>, now: UnixTime) -> String {
        let mut h = Sha256::new();
        h.update(who.credential);
        h.update(issuer.as_bytes());
        let cache_key: [u8; 32] = h.finalize().into();
        if let Some(jwt) = self.cache.get(&cache_key, now) {
            return jwt;
        }
        let exp = now.plus(ASSERTION_TTL_SECS).min(who.until.max(now.plus(1)));
        let key = &self.keys[0];
        let header = json!({ "alg": key.alg(), "typ": "JWT", "kid": key.kid });
        let mut claims = json!({
            "iss": issuer, "aud": self.audience, "sub": who.sub, "iat": now, "exp": exp, "idp": who.idp,
        });
        if let Some(e) = who.email {
            claims["email"] = e.address.into();
            claims["email_verified"] = e.verified.into();
        }
        if let Some(n) = who.name {
            claims["name"] = n.into();
        }
        if !who.groups.is_empty() {
            claims["groups"] = who.groups.into();
        }
        if !who.roles.is_empty() {
            claims["roles"] = who.roles.into();
        }
        if let Some(acr) = &who.auth.acr {
            claims["acr"] = acr.as_str().into();
        }
        if !who.auth.amr.is_empty() {
            claims["amr"] = who.auth.amr.as_slice().into();
        }
        if let Some(t) = who.auth.auth_time {
            claims["auth_time"] = t.as_secs().into();
        }
        let input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        let jwt = format!(
            "{input}.{}",
            URL_SAFE_NO_PAD.encode(key.sign(input.as_bytes()))
        );
        self.cache
            .insert(cache_key, jwt.clone(), exp.minus(REUSE_MARGIN_SECS));
        jwt
    }
}

fn parse_key(v: &Value) -> Result<SigningJwk, String> {
    let jwk: JsonWebKey<'_> =
        serde_json::from_value(v.clone()).map_err(|_| "is not a JWK".to_owned())?;
    if !jwk.is_signing_key() {
        return Err("is a public key: the private part (d) is needed".into());
    }
    let key = match &jwk {
        JsonWebKey::EllipticCurve { curve, .. } if curve == "P-256" => Key::Es256(Box::new(
            <Es256 as Algorithm>::SigningKey::try_from(&jwk)
                .map_err(|_| "is not a valid P-256 private key".to_owned())?,
        )),
        JsonWebKey::KeyPair { curve, .. } if curve == "Ed25519" => Key::Ed25519(
            <Ed25519 as Algorithm>::SigningKey::try_from(&jwk)
                .map_err(|_| "is not a valid Ed25519 private key".to_owned())?,
        ),
        _ => return Err("must be an EC P-256 (ES256) or OKP Ed25519 (EdDSA) key".into()),
    };
    let public_jwk = jwk.to_verifying_key();
    let kid = match v.get("kid").and_then(Value::as_str) {
        Some(k) if !k.is_empty() => k.to_owned(),
        _ => URL_SAFE_NO_PAD.encode(public_jwk.thumbprint::<Sha256>()),
    };
    let mut public =
        serde_json::to_value(&public_jwk).map_err(|_| "cannot be published".to_owned())?;
    public["kid"] = kid.clone().into();
    public["use"] = "sig".into();
    let mut signing = SigningJwk { kid, key, public };
    signing.public["alg"] = signing.alg().into();
    Ok(signing)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jose::jwks::JwkSet;
    use crate::jose::jws::UnverifiedJws;
    use crate::jose::verify::verify_rust;

    fn es256_private_jwk(kid: Option<&str>) -> Value {
        let sk = p256::ecdsa::SigningKey::random(&mut rand_core::OsRng);
        let mut v = serde_json::to_value(JsonWebKey::from(&sk)).unwrap();
        if let Some(k) = kid {
            v["kid"] = k.into();
        }
        v
    }

    fn ed25519_private_jwk() -> Value {
        let (sk, _) = Ed25519::generate(&mut rand_core::OsRng);
        serde_json::to_value(JsonWebKey::from(&sk)).unwrap()
    }

    const GROUPS: &[String] = &[];

    fn subject() -> Subject<'static> {
        static ADMINS: std::sync::OnceLock<Vec<String>> = std::sync::OnceLock::new();
        Subject {
            idp: "https://idp",
            sub: "alice",
            email: Some(VouchedEmail {
                address: "alice@example.com",
                verified: true,
            }),
            name: Some("Alice"),
            groups: ADMINS.get_or_init(|| vec!["admins".into()]),
            roles: GROUPS,
            credential: [1; 32],
            until: t(1000 + 8 * 3600),
            auth: &crate::access::step_up::NO_AUTH,
        }
    }

    fn t(secs: u64) -> UnixTime {
        UnixTime::from_secs(secs)
    }

    fn verify(signer: &AssertionSigner, jwt: &str) -> Value {
        let set = JwkSet::parse(signer.jwks().to_string().as_bytes()).unwrap();
        let jws = UnverifiedJws::parse(jwt).unwrap();
        let key = set.select(&jws.header).unwrap();
        verify_rust(jws.header.alg, key, jws.signing_input(), jws.signature()).unwrap();
        let payload = jwt.split('.').nth(1).unwrap();
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap()
    }

    #[test]
    fn es256_and_eddsa_assertions_verify_against_the_published_keys() {
        for key in [es256_private_jwk(Some("k1")), ed25519_private_jwk()] {
            let signer = AssertionSigner::new(
                &key.to_string(),
                "origin-aud".into(),
                "X-Portcullis-Assertion".into(),
            )
            .unwrap();
            let jwt = signer.assertion("https://app.example.com", &subject(), t(2000));
            let claims = verify(&signer, &jwt);
            assert_eq!(claims["iss"], "https://app.example.com");
            assert_eq!(claims["aud"], "origin-aud");
            assert_eq!(claims["sub"], "alice");
            assert_eq!(claims["email"], "alice@example.com");
            assert_eq!(claims["email_verified"], true);
            assert_eq!(claims["groups"], json!(["admins"]));
            assert_eq!(claims["iat"], 2000);
            assert_eq!(claims["exp"], 2000 + ASSERTION_TTL_SECS);
        }
    }

    #[test]
    fn the_first_key_signs_and_all_are_published() {
        let keys = json!([
            es256_private_jwk(Some("new")),
            es256_private_jwk(Some("old"))
        ]);
        let signer = AssertionSigner::new(&keys.to_string(), "a".into(), "h".into()).unwrap();
        let published = signer.jwks();
        let kids: Vec<&str> = published["keys"]
            .as_array()
            .unwrap()
            .iter()
            .map(|k| k["kid"].as_str().unwrap())
            .collect();
        assert_eq!(kids, vec!["new", "old"]);
        assert!(
            published["keys"]
                .as_array()
                .unwrap()
                .iter()
                .all(|k| k.get("d").is_none()),
            "no private parts published"
        );
        let jwt = signer.assertion("https://o", &subject(), t(2000));
        assert_eq!(
            UnverifiedJws::parse(&jwt).unwrap().header.kid.as_deref(),
            Some("new")
        );
    }

    #[test]
    fn keys_without_kid_get_their_thumbprint() {
        let signer =
            AssertionSigner::new(&ed25519_private_jwk().to_string(), "a".into(), "h".into())
                .unwrap();
        assert_eq!(signer.jwks()["keys"][0]["kid"].as_str().unwrap().len(), 43);
    }

    #[test]
    fn assertions_are_reused_until_near_expiry() {
        let signer =
            AssertionSigner::new(&es256_private_jwk(None).to_string(), "a".into(), "h".into())
                .unwrap();
        let a = signer.assertion("https://o", &subject(), t(2000));
        assert_eq!(signer.assertion("https://o", &subject(), t(2100)), a);
        assert_ne!(
            signer.assertion("https://o", &subject(), t(2000 + ASSERTION_TTL_SECS - 30)),
            a
        );
        assert_ne!(signer.assertion("https://other", &subject(), t(2000)), a);
    }

    #[test]
    fn another_credential_with_the_same_sub_gets_its_own_assertion() {
        let signer =
            AssertionSigner::new(&es256_private_jwk(None).to_string(), "a".into(), "h".into())
                .unwrap();
        let first = signer.assertion("https://o", &subject(), t(2000));
        let mut other = subject();
        other.idp = "https://other-idp";
        other.groups = GROUPS;
        other.credential = [2; 32];
        let second = verify(&signer, &signer.assertion("https://o", &other, t(2001)));
        assert_ne!(verify(&signer, &first), second);
        assert_eq!(second["idp"], "https://other-idp");
        assert!(
            second.get("groups").is_none(),
            "not the first credential's groups"
        );
    }

    #[test]
    fn assertions_never_outlive_the_session() {
        let signer =
            AssertionSigner::new(&es256_private_jwk(None).to_string(), "a".into(), "h".into())
                .unwrap();
        let mut s = subject();
        s.until = t(2100);
        let claims = verify(&signer, &signer.assertion("https://o", &s, t(2000)));
        assert_eq!(claims["exp"], 2100);
    }

    #[test]
    fn bad_keys_are_refused_without_echoing_them() {
        let public_only = json!({"kty":"EC","crv":"P-256","x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU","y":"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"});
        for bad in [
            "nope",
            "[]",
            "5",
            &public_only.to_string(),
            r#"{"kty":"oct","k":"c2VjcmV0c2VjcmV0"}"#,
        ] {
            let e = AssertionSigner::new(bad, "a".into(), "h".into()).unwrap_err();
            assert!(!e.contains("c2VjcmV0"), "{e}");
        }
        let signer =
            AssertionSigner::new(&es256_private_jwk(None).to_string(), "a".into(), "h".into())
                .unwrap();
        assert!(format!("{signer:?}").contains("redacted"));
    }
}
