//! The signed identity assertion for the origin (like Cloudflare Access's
//! `Cf-Access-Jwt-Assertion`): a short-lived JWT signed with the worker's own key, published
//! with the previous key at `/auth/jwks.json` so keys can rotate.

use std::cell::Cell;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::access::policy::VouchedEmail;
use crate::access::step_up::AuthContext;
use crate::base::cache::BoundedCache;
use crate::base::time::UnixTime;
use crate::jose::jwks::PublicJwk;
use crate::jose::signing_key::SigningKey;
use crate::jose::verify::{SignatureError, SignatureVerifier};

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

/// Signs assertions for one audience; keeps recent ones per session to skip re-signing. The
/// platform signs (WebCrypto in the worker), so no signing code is in the wasm.
pub struct AssertionSigner {
    /// The first signs; all are published. Each has its `kid` (given, or its thumbprint).
    keys: Vec<SigningKey>,
    /// Whether the first key's signature has been checked against its published half, which
    /// a JWK states separately from the private part and could contradict.
    checked: Cell<bool>,
    pub audience: String,
    pub header: String,
    /// (credential, origin) digest -> assertion, until shortly before it expires.
    cache: BoundedCache<[u8; 32], String>,
}

impl std::fmt::Debug for AssertionSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kids: Vec<&str> = self.keys.iter().filter_map(|k| k.kid.as_deref()).collect();
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
        let value: Value = serde_json::from_slice(keys_json.as_bytes())
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
            .map(|(i, v)| {
                let mut key =
                    SigningKey::assertion(v).map_err(|e| format!("key {}: {e}", i + 1))?;
                if key.kid.is_none() {
                    key.kid = Some(key.thumbprint());
                }
                // Entra-style certificate thumbprints mean nothing here.
                key.x5t_s256 = None;
                Ok(key)
            })
            .collect::<Result<Vec<_>, String>>()?;
        Ok(Self {
            keys,
            checked: Cell::new(false),
            audience,
            header,
            cache: BoundedCache::new(MAX_CACHED),
        })
    }

    /// The public keys, for `/auth/jwks.json`.
    pub fn jwks(&self) -> Value {
        json!({ "keys": self.keys.iter().map(published).collect::<Vec<_>>() })
    }

    /// An assertion for `who`, issued by `issuer` (the worker's public origin), signed by
    /// `signer`. The first signature of an isolate is checked against the published key.
    pub async fn assertion<V: SignatureVerifier>(
        &self,
        signer: &V,
        issuer: &str,
        who: &Subject<'_>,
        now: UnixTime,
    ) -> Result<String, SignatureError> {
        let mut h = Sha256::new();
        h.update(who.credential);
        h.update(issuer.as_bytes());
        let cache_key: [u8; 32] = h.finalize().into();
        if let Some(jwt) = self.cache.get(&cache_key, now) {
            return Ok(jwt);
        }
        let exp = now.plus(ASSERTION_TTL_SECS).min(who.until.max(now.plus(1)));
        let key = &self.keys[0];
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
            URL_SAFE_NO_PAD.encode(key.header().to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        let signature = signer.sign(key, input.as_bytes()).await?;
        if !self.checked.get() {
            let public = PublicJwk::from_json(published(key)).ok_or_else(|| {
                SignatureError::UnusableKey("the published key does not read back".into())
            })?;
            signer
                .verify(key.alg, &public, input.as_bytes(), &signature)
                .await
                .map_err(|_| {
                    SignatureError::UnusableKey(
                        "ASSERTION_SIGNING_KEYS key 1: its public members (x, y) are not those of its private part (d)".into(),
                    )
                })?;
            self.checked.set(true);
        }
        let jwt = format!("{input}.{}", URL_SAFE_NO_PAD.encode(signature));
        self.cache
            .insert(cache_key, jwt.clone(), exp.minus(REUSE_MARGIN_SECS));
        Ok(jwt)
    }
}

/// A key as `/auth/jwks.json` shows it: the public members, `kid`, `use` and `alg`.
fn published(key: &SigningKey) -> Value {
    let mut public = key.public_jwk();
    public["kid"] = key.kid.clone().into();
    public["use"] = "sig".into();
    public["alg"] = key.alg.name().into();
    public
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jose::jwks::JwkSet;
    use crate::jose::jws::UnverifiedJws;
    use crate::jose::verify::{verify_rust, RustVerifier};
    use crate::testing::block_on;
    use jwt_compact::alg::Ed25519;
    use jwt_compact::jwk::JsonWebKey;

    /// An assertion signed on the host (the worker signs with WebCrypto).
    fn sign(signer: &AssertionSigner, issuer: &str, who: &Subject<'_>, now: UnixTime) -> String {
        block_on(signer.assertion(&RustVerifier, issuer, who, now)).unwrap()
    }

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
            let jwt = sign(&signer, "https://app.example.com", &subject(), t(2000));
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
        let jwt = sign(&signer, "https://o", &subject(), t(2000));
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
        let a = sign(&signer, "https://o", &subject(), t(2000));
        assert_eq!(sign(&signer, "https://o", &subject(), t(2100)), a);
        assert_ne!(
            sign(
                &signer,
                "https://o",
                &subject(),
                t(2000 + ASSERTION_TTL_SECS - 30)
            ),
            a
        );
        assert_ne!(sign(&signer, "https://other", &subject(), t(2000)), a);
    }

    #[test]
    fn another_credential_with_the_same_sub_gets_its_own_assertion() {
        let signer =
            AssertionSigner::new(&es256_private_jwk(None).to_string(), "a".into(), "h".into())
                .unwrap();
        let first = sign(&signer, "https://o", &subject(), t(2000));
        let mut other = subject();
        other.idp = "https://other-idp";
        other.groups = GROUPS;
        other.credential = [2; 32];
        let second = verify(&signer, &sign(&signer, "https://o", &other, t(2001)));
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
        let claims = verify(&signer, &sign(&signer, "https://o", &s, t(2000)));
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

    #[test]
    fn a_kid_left_out_is_the_rfc7638_thumbprint() {
        for key in [es256_private_jwk(None), ed25519_private_jwk()] {
            let jwk: JsonWebKey<'_> = serde_json::from_value(key.clone()).unwrap();
            let expected = URL_SAFE_NO_PAD.encode(jwk.to_verifying_key().thumbprint::<Sha256>());
            let signer = AssertionSigner::new(&key.to_string(), "a".into(), "h".into()).unwrap();
            assert_eq!(signer.jwks()["keys"][0]["kid"], expected);
        }
    }

    #[test]
    fn a_key_whose_public_part_is_not_its_own_never_signs() {
        for (key, other) in [
            (es256_private_jwk(None), es256_private_jwk(None)),
            (ed25519_private_jwk(), ed25519_private_jwk()),
        ] {
            let mut mixed = key.clone();
            mixed["x"] = other["x"].clone();
            if let Some(y) = other.get("y") {
                mixed["y"] = y.clone();
            }
            let signer = AssertionSigner::new(&mixed.to_string(), "a".into(), "h".into()).unwrap();
            let e = block_on(signer.assertion(&RustVerifier, "https://o", &subject(), t(2000)))
                .unwrap_err();
            // Refused by the signer's import, or else by the check against the published half.
            assert!(matches!(e, SignatureError::UnusableKey(_)), "{e}");
            let d = key["d"].as_str().unwrap();
            assert!(!e.to_string().contains(d) && !format!("{signer:?}").contains(d));
        }
    }

    #[test]
    fn keys_of_the_wrong_shape_are_refused_at_configuration() {
        let good = es256_private_jwk(None);
        let mut short = good.clone();
        short["x"] = "AQAB".into();
        let mut not_base64 = good.clone();
        not_base64["d"] = "not base64!".into();
        let mut rsa = good.clone();
        rsa["kty"] = "RSA".into();
        let mut wrong_alg = ed25519_private_jwk();
        wrong_alg["alg"] = "ES256".into();
        for bad in [short, not_base64, rsa, wrong_alg] {
            let e = AssertionSigner::new(&bad.to_string(), "a".into(), "h".into()).unwrap_err();
            assert!(e.starts_with("key 1: "), "{e}");
        }
    }

    /// A signer whose signatures do not match the published key, as a JWK whose public
    /// members contradict its private part would give where the import does not check them.
    struct Contradicting;

    impl SignatureVerifier for Contradicting {
        async fn verify(
            &self,
            alg: crate::jose::jws::JwsAlg,
            key: &PublicJwk,
            input: &[u8],
            signature: &[u8],
        ) -> Result<(), SignatureError> {
            verify_rust(alg, key, input, signature)
        }

        async fn sign(&self, _: &SigningKey, _: &[u8]) -> Result<Vec<u8>, SignatureError> {
            Ok(vec![7; 64])
        }
    }

    #[test]
    fn the_first_signature_is_checked_against_the_published_key() {
        let signer =
            AssertionSigner::new(&es256_private_jwk(None).to_string(), "a".into(), "h".into())
                .unwrap();
        let e = block_on(signer.assertion(&Contradicting, "https://o", &subject(), t(2000)))
            .unwrap_err();
        assert!(
            e.to_string().contains("are not those of its private part"),
            "{e}"
        );
        assert!(!signer.checked.get());
        sign(&signer, "https://o", &subject(), t(2000));
        assert!(signer.checked.get());
    }
}
