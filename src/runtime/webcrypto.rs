//! Signatures through WebCrypto (SubtleCrypto) inside workerd: checks of the providers'
//! tokens, and our own assertions signed. Imported CryptoKeys are kept per isolate, keyed by
//! algorithm and key material.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use js_sys::{Array, Object, Reflect};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;
use web_sys::{CryptoKey, SubtleCrypto};

use crate::base::cache::BoundedCache;
use crate::base::time::UnixTime;
use crate::jose::jwks::PublicJwk;
use crate::jose::jws::JwsAlg;
use crate::jose::signing_key::SigningKey;
use crate::jose::verify::{SignatureError, SignatureVerifier, WideHash};

/// Imported keys kept per isolate; providers publish a handful.
const MAX_KEYS: usize = 64;
const MIN_RSA_MODULUS_BYTES: usize = 256;

pub struct WebCryptoVerifier {
    keys: BoundedCache<String, CryptoKey>,
    /// Our own private keys (the client's and the assertion's), imported once per isolate,
    /// keyed by a digest of the JWK.
    signing_keys: BoundedCache<[u8; 32], CryptoKey>,
}

impl Default for WebCryptoVerifier {
    fn default() -> Self {
        Self {
            keys: BoundedCache::new(MAX_KEYS),
            signing_keys: BoundedCache::new(MAX_KEYS),
        }
    }
}

fn platform(e: JsValue) -> SignatureError {
    SignatureError::Platform(
        e.as_string()
            .or_else(|| js_sys::JSON::stringify(&e).ok().and_then(|s| s.as_string()))
            .unwrap_or_else(|| "WebCrypto error".into()),
    )
}

fn to_object(v: &Value) -> Result<Object, SignatureError> {
    js_sys::JSON::parse(&v.to_string())
        .map_err(platform)?
        .dyn_into::<Object>()
        .map_err(|_| SignatureError::Platform("not an object".into()))
}

fn subtle() -> Result<SubtleCrypto, SignatureError> {
    let crypto = Reflect::get(&js_sys::global(), &JsValue::from_str("crypto")).map_err(platform)?;
    let crypto: web_sys::Crypto = crypto
        .dyn_into()
        .map_err(|_| SignatureError::Platform("no crypto global".into()))?;
    Ok(crypto.subtle())
}

fn hash(alg: JwsAlg) -> &'static str {
    match alg {
        JwsAlg::Rs384 | JwsAlg::Ps384 => "SHA-384",
        JwsAlg::Rs512 | JwsAlg::Ps512 => "SHA-512",
        _ => "SHA-256",
    }
}

/// (import algorithm, verify algorithm, the JWK members WebCrypto needs).
fn params(alg: JwsAlg, jwk: &Value) -> Result<(Value, Value, Value), SignatureError> {
    let member = |name: &str| {
        jwk.get(name)
            .and_then(Value::as_str)
            .map(str::to_owned)
            .ok_or_else(|| SignatureError::UnusableKey(format!("JWK has no {name}")))
    };
    Ok(match alg {
        JwsAlg::Rs256
        | JwsAlg::Rs384
        | JwsAlg::Rs512
        | JwsAlg::Ps256
        | JwsAlg::Ps384
        | JwsAlg::Ps512 => {
            let n = member("n")?;
            let modulus = URL_SAFE_NO_PAD
                .decode(n.trim_end_matches('='))
                .map_err(|_| SignatureError::UnusableKey("bad modulus".into()))?;
            let significant = modulus.iter().skip_while(|b| **b == 0).count();
            if significant < MIN_RSA_MODULUS_BYTES {
                return Err(SignatureError::UnusableKey(
                    "RSA key shorter than 2048 bits".into(),
                ));
            }
            let pss = matches!(alg, JwsAlg::Ps256 | JwsAlg::Ps384 | JwsAlg::Ps512);
            let name = if pss { "RSA-PSS" } else { "RSASSA-PKCS1-v1_5" };
            let salt = match alg {
                JwsAlg::Ps384 => 48,
                JwsAlg::Ps512 => 64,
                _ => 32,
            };
            let verify = if pss {
                json!({"name": name, "saltLength": salt})
            } else {
                json!({"name": name})
            };
            (
                json!({"name": name, "hash": {"name": hash(alg)}}),
                verify,
                json!({"kty": "RSA", "n": n, "e": member("e")?}),
            )
        }
        JwsAlg::Es256 => (
            json!({"name": "ECDSA", "namedCurve": "P-256"}),
            json!({"name": "ECDSA", "hash": {"name": "SHA-256"}}),
            json!({"kty": "EC", "crv": "P-256", "x": member("x")?, "y": member("y")?}),
        ),
        JwsAlg::EdDsa => (
            json!({"name": "Ed25519"}),
            json!({"name": "Ed25519"}),
            json!({"kty": "OKP", "crv": "Ed25519", "x": member("x")?}),
        ),
    })
}

impl WebCryptoVerifier {
    async fn key(
        &self,
        subtle: &SubtleCrypto,
        alg: JwsAlg,
        import: &Value,
        jwk: &Value,
    ) -> Result<CryptoKey, SignatureError> {
        let cache_key = format!("{}|{}", alg.name(), jwk);
        // Imported keys do not expire: a rotated-out key just stops being asked for.
        if let Some(k) = self.keys.get(&cache_key, UnixTime::EPOCH) {
            return Ok(k);
        }
        let key = import_key(subtle, jwk, import, "verify").await?;
        self.keys.insert(cache_key, key.clone(), UnixTime::NEVER);
        Ok(key)
    }
}

/// WebCrypto's `importKey` of a JWK for one usage (`verify` or `sign`).
async fn import_key(
    subtle: &SubtleCrypto,
    jwk: &Value,
    import: &Value,
    usage: &str,
) -> Result<CryptoKey, SignatureError> {
    let usages = Array::of1(&JsValue::from_str(usage));
    let promise = subtle
        .import_key_with_object("jwk", &to_object(jwk)?, &to_object(import)?, false, &usages)
        .map_err(platform)?;
    JsFuture::from(promise)
        .await
        .map_err(|e| {
            SignatureError::UnusableKey(format!("WebCrypto refused the key: {}", platform(e)))
        })?
        .dyn_into()
        .map_err(|_| SignatureError::Platform("importKey did not give a CryptoKey".into()))
}

impl SignatureVerifier for WebCryptoVerifier {
    async fn sign(
        &self,
        key: &SigningKey,
        signing_input: &[u8],
    ) -> Result<Vec<u8>, SignatureError> {
        let (import, sign, _) = params(key.alg, key.private_jwk())?;
        let subtle = subtle()?;
        let jwk = key.private_jwk();
        let cache_key: [u8; 32] = Sha256::digest(format!("{}|{jwk}", key.alg.name())).into();
        let crypto_key = match self.signing_keys.get(&cache_key, UnixTime::EPOCH) {
            Some(k) => k,
            None => {
                let k = import_key(&subtle, jwk, &import, "sign").await?;
                self.signing_keys
                    .insert(cache_key, k.clone(), UnixTime::NEVER);
                k
            }
        };
        let promise = subtle
            .sign_with_object_and_u8_array(&to_object(&sign)?, &crypto_key, signing_input)
            .map_err(platform)?;
        let signature = JsFuture::from(promise).await.map_err(platform)?;
        Ok(js_sys::Uint8Array::new(&signature).to_vec())
    }

    async fn wide_digest(&self, hash: WideHash, data: &[u8]) -> Result<Vec<u8>, SignatureError> {
        let promise = subtle()?
            .digest_with_str_and_u8_array(hash.name(), data)
            .map_err(platform)?;
        let digest = JsFuture::from(promise).await.map_err(platform)?;
        Ok(js_sys::Uint8Array::new(&digest).to_vec())
    }

    async fn verify(
        &self,
        alg: JwsAlg,
        key: &PublicJwk,
        signing_input: &[u8],
        signature: &[u8],
    ) -> Result<(), SignatureError> {
        let (import, verify, jwk) = params(alg, &key.json)?;
        let subtle = subtle()?;
        let crypto_key = self.key(&subtle, alg, &import, &jwk).await?;
        let promise = subtle
            .verify_with_object_and_u8_array_and_u8_array(
                &to_object(&verify)?,
                &crypto_key,
                signature,
                signing_input,
            )
            .map_err(platform)?;
        let ok = JsFuture::from(promise)
            .await
            .map_err(|_| SignatureError::BadSignature)?;
        if ok.as_bool() == Some(true) {
            Ok(())
        } else {
            Err(SignatureError::BadSignature)
        }
    }
}
