//! Signature verification: one trait with a platform implementation (WebCrypto in the
//! worker) and a pure-Rust one for host tests, and the one step that releases a payload.

use crate::jose::jwks::PublicJwk;
use crate::jose::jws::{JwsAlg, UnverifiedJws, VerifiedJws};
use crate::jose::signing_key::SigningKey;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SignatureError {
    /// The key cannot be used with this algorithm (wrong type, weak RSA modulus, bad point).
    UnusableKey(String),
    BadSignature,
    /// The platform's crypto failed (WebCrypto rejected the call).
    Platform(String),
}

impl std::fmt::Display for SignatureError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::UnusableKey(why) => write!(f, "the key cannot be used: {why}"),
            Self::BadSignature => f.write_str("signature does not verify"),
            Self::Platform(why) => write!(f, "crypto failed: {why}"),
        }
    }
}

/// The wide SHA-2 hashes an `at_hash` may need: SHA-384 (RS384, PS384) and SHA-512 (RS512,
/// PS512, EdDSA).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WideHash {
    Sha384,
    Sha512,
}

impl WideHash {
    /// The name WebCrypto gives it.
    pub fn name(self) -> &'static str {
        match self {
            Self::Sha384 => "SHA-384",
            Self::Sha512 => "SHA-512",
        }
    }
}

/// Checks a signature with a public key, and signs the client's own assertions
/// (`private_key_jwt`). One implementation per platform.
#[allow(async_fn_in_trait)] // single-threaded wasm: futures need not be Send
pub trait SignatureVerifier {
    async fn verify(
        &self,
        alg: JwsAlg,
        key: &PublicJwk,
        signing_input: &[u8],
        signature: &[u8],
    ) -> Result<(), SignatureError>;

    /// Signs `signing_input` with the client's private key.
    async fn sign(&self, key: &SigningKey, signing_input: &[u8])
        -> Result<Vec<u8>, SignatureError>;

    /// `data` hashed with `hash`: Rust's SHA-2 unless the platform has its own. The worker
    /// asks WebCrypto, which keeps the SHA-512 code (about 11 KB) out of the wasm; these
    /// hashes are needed only at sign-in, for a rare algorithm.
    async fn wide_digest(&self, hash: WideHash, data: &[u8]) -> Result<Vec<u8>, SignatureError> {
        use sha2::Digest;
        Ok(match hash {
            WideHash::Sha384 => sha2::Sha384::digest(data).to_vec(),
            WideHash::Sha512 => sha2::Sha512::digest(data).to_vec(),
        })
    }
}

/// Checks `jws` with `key` and releases the payload.
pub async fn verify<V: SignatureVerifier>(
    verifier: &V,
    jws: UnverifiedJws<'_>,
    key: &PublicJwk,
) -> Result<VerifiedJws, SignatureError> {
    attempt(verifier, jws, key).await.map_err(|(e, _)| e)
}

/// [`verify`], giving the token back with the error: a caller that chose the key without a
/// `kid` may fetch the set again and try the key it now holds.
pub async fn attempt<'a, V: SignatureVerifier>(
    verifier: &V,
    jws: UnverifiedJws<'a>,
    key: &PublicJwk,
) -> Result<VerifiedJws, (SignatureError, UnverifiedJws<'a>)> {
    match verifier
        .verify(jws.header.alg, key, jws.signing_input(), jws.signature())
        .await
    {
        Ok(()) => Ok(VerifiedJws::checked(jws)),
        Err(e) => Err((e, jws)),
    }
}

/// Pure-Rust verification through jwt-compact (RSA keys under 2048 bits refused), for host
/// tests; the worker checks signatures with WebCrypto.
#[cfg(test)]
pub struct RustVerifier;

#[cfg(test)]
impl SignatureVerifier for RustVerifier {
    async fn verify(
        &self,
        alg: JwsAlg,
        key: &PublicJwk,
        signing_input: &[u8],
        signature: &[u8],
    ) -> Result<(), SignatureError> {
        verify_rust(alg, key, signing_input, signature)
    }

    async fn sign(
        &self,
        key: &SigningKey,
        signing_input: &[u8],
    ) -> Result<Vec<u8>, SignatureError> {
        use jwt_compact::alg::{Ed25519, Es256, Rsa, RsaPrivateKey};
        use jwt_compact::jwk::JsonWebKey;
        use jwt_compact::{Algorithm, AlgorithmSignature};
        let unusable = |e: &dyn std::fmt::Display| SignatureError::UnusableKey(e.to_string());
        let jwk: JsonWebKey<'_> =
            serde_json::from_value(key.private_jwk().clone()).map_err(|e| unusable(&e))?;
        Ok(match key.alg {
            JwsAlg::Es256 => {
                let sk =
                    <Es256 as Algorithm>::SigningKey::try_from(&jwk).map_err(|e| unusable(&e))?;
                Es256.sign(&sk, signing_input).as_bytes().into_owned()
            }
            JwsAlg::EdDsa => {
                let sk =
                    <Ed25519 as Algorithm>::SigningKey::try_from(&jwk).map_err(|e| unusable(&e))?;
                Ed25519.sign(&sk, signing_input).as_bytes().into_owned()
            }
            alg => {
                let sk = RsaPrivateKey::try_from(&jwk).map_err(|e| unusable(&e))?;
                Rsa::with_name(alg.name())
                    .sign(&sk, signing_input)
                    .as_bytes()
                    .into_owned()
            }
        })
    }
}

#[cfg(test)]
pub fn verify_rust(
    alg: JwsAlg,
    key: &PublicJwk,
    message: &[u8],
    signature: &[u8],
) -> Result<(), SignatureError> {
    use jwt_compact::alg::{Ed25519, Es256, Rsa, RsaPublicKey, StrongKey};
    use jwt_compact::{Algorithm, AlgorithmSignature};

    fn check<A: Algorithm>(
        alg: &A,
        key: &A::VerifyingKey,
        message: &[u8],
        signature: &[u8],
    ) -> Result<(), SignatureError> {
        if let Some(len) = <A::Signature as AlgorithmSignature>::LENGTH {
            if signature.len() != len.get() {
                return Err(SignatureError::BadSignature);
            }
        }
        let sig = <A::Signature as AlgorithmSignature>::try_from_slice(signature)
            .map_err(|_| SignatureError::BadSignature)?;
        if alg.verify_signature(&sig, key, message) {
            Ok(())
        } else {
            Err(SignatureError::BadSignature)
        }
    }
    let unusable = |e: &dyn std::fmt::Display| SignatureError::UnusableKey(e.to_string());
    let jwk: jwt_compact::jwk::JsonWebKey<'_> =
        serde_json::from_value(key.json.clone()).map_err(|e| unusable(&e))?;
    let jwk = &jwk;
    match alg {
        JwsAlg::Rs256
        | JwsAlg::Rs384
        | JwsAlg::Rs512
        | JwsAlg::Ps256
        | JwsAlg::Ps384
        | JwsAlg::Ps512 => {
            let public = RsaPublicKey::try_from(jwk).map_err(|e| unusable(&e))?;
            let strong = StrongKey::try_from(public).map_err(|e| unusable(&e))?;
            let rsa: Rsa = alg.name().parse().map_err(|e| unusable(&e))?;
            check(&rsa, strong.as_ref(), message, signature)
        }
        JwsAlg::Es256 => {
            let public =
                <Es256 as Algorithm>::VerifyingKey::try_from(jwk).map_err(|e| unusable(&e))?;
            check(&Es256, &public, message, signature)
        }
        JwsAlg::EdDsa => {
            let public =
                <Ed25519 as Algorithm>::VerifyingKey::try_from(jwk).map_err(|e| unusable(&e))?;
            check(&Ed25519, &public, message, signature)
        }
    }
}
