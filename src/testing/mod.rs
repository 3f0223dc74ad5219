//! Test helpers: real signing keys made in the test, tokens signed with them, a tiny executor.

mod fuzz;
mod layout;

use std::future::Future;
use std::sync::OnceLock;
use std::task::{Context, Poll, Waker};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jwt_compact::alg::{Ed25519, Es256, Rsa, RsaPrivateKey};
use jwt_compact::jwk::JsonWebKey;
use jwt_compact::{Algorithm, AlgorithmSignature};
use serde_json::{json, Value};

/// Runs a future that never waits on I/O (host test doubles complete immediately).
pub fn block_on<F: Future>(fut: F) -> F::Output {
    let mut fut = std::pin::pin!(fut);
    let mut cx = Context::from_waker(Waker::noop());
    loop {
        if let Poll::Ready(v) = fut.as_mut().poll(&mut cx) {
            return v;
        }
    }
}

enum Signer {
    Rsa(Box<RsaPrivateKey>),
    Es256(p256::ecdsa::SigningKey),
    Ed25519(ed25519_compact::SecretKey),
}

pub struct TestKey {
    pub kid: Option<String>,
    signer: Signer,
}

fn rsa_key(slot: usize) -> RsaPrivateKey {
    static KEYS: [OnceLock<RsaPrivateKey>; 2] = [OnceLock::new(), OnceLock::new()];
    KEYS[slot]
        .get_or_init(|| RsaPrivateKey::new(&mut rand_core::OsRng, 2048).expect("rsa keygen"))
        .clone()
}

impl TestKey {
    pub fn rsa(kid: Option<&str>) -> Self {
        Self {
            kid: kid.map(Into::into),
            signer: Signer::Rsa(Box::new(rsa_key(0))),
        }
    }

    /// A second, different RSA key (rotation and wrong-key tests).
    pub fn rsa_other(kid: Option<&str>) -> Self {
        Self {
            kid: kid.map(Into::into),
            signer: Signer::Rsa(Box::new(rsa_key(1))),
        }
    }

    pub fn es256(kid: Option<&str>) -> Self {
        Self {
            kid: kid.map(Into::into),
            signer: Signer::Es256(p256::ecdsa::SigningKey::random(&mut rand_core::OsRng)),
        }
    }

    pub fn ed25519(kid: Option<&str>) -> Self {
        let (sk, _) = Ed25519::generate(&mut rand_core::OsRng);
        Self {
            kid: kid.map(Into::into),
            signer: Signer::Ed25519(sk),
        }
    }

    /// The private key as a JWK (JSON), with the kid.
    pub fn private_jwk(&self) -> String {
        let jwk: JsonWebKey<'_> = match &self.signer {
            Signer::Rsa(k) => JsonWebKey::from(k.as_ref()),
            Signer::Es256(k) => JsonWebKey::from(k),
            Signer::Ed25519(k) => JsonWebKey::from(k),
        };
        let mut v = serde_json::to_value(&jwk).expect("jwk json");
        if let Some(kid) = &self.kid {
            v["kid"] = kid.clone().into();
        }
        v.to_string()
    }

    pub fn default_alg(&self) -> &'static str {
        match self.signer {
            Signer::Rsa(_) => "RS256",
            Signer::Es256(_) => "ES256",
            Signer::Ed25519(_) => "EdDSA",
        }
    }

    pub fn public_jwk(&self) -> Value {
        let jwk: JsonWebKey<'_> = match &self.signer {
            Signer::Rsa(k) => JsonWebKey::from(k.as_ref()).to_verifying_key(),
            Signer::Es256(k) => JsonWebKey::from(k).to_verifying_key(),
            Signer::Ed25519(k) => JsonWebKey::from(k).to_verifying_key(),
        };
        let mut v = serde_json::to_value(&jwk).expect("jwk json");
        if let Some(kid) = &self.kid {
            v["kid"] = kid.clone().into();
        }
        v["use"] = "sig".into();
        v
    }

    /// Signs `claims` under `header` exactly as given (so tests can write bad headers).
    pub fn sign_raw(&self, header: &Value, claims: &Value) -> String {
        let input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        let alg = header["alg"].as_str().unwrap_or(self.default_alg());
        let sig: Vec<u8> = match &self.signer {
            Signer::Rsa(k) => Rsa::with_name(alg)
                .sign(k, input.as_bytes())
                .as_bytes()
                .into_owned(),
            Signer::Es256(k) => Es256.sign(k, input.as_bytes()).as_bytes().into_owned(),
            Signer::Ed25519(k) => Ed25519.sign(k, input.as_bytes()).as_bytes().into_owned(),
        };
        format!("{input}.{}", URL_SAFE_NO_PAD.encode(sig))
    }

    /// Signs with this key's default algorithm and its kid in the header.
    pub fn sign(&self, claims: &Value) -> String {
        self.sign_raw(&self.header(), claims)
    }

    pub fn header(&self) -> Value {
        let mut h = json!({ "alg": self.default_alg(), "typ": "JWT" });
        if let Some(kid) = &self.kid {
            h["kid"] = kid.clone().into();
        }
        h
    }
}

pub fn jwks_json(keys: &[&TestKey]) -> Vec<u8> {
    json!({ "keys": keys.iter().map(|k| k.public_jwk()).collect::<Vec<_>>() })
        .to_string()
        .into_bytes()
}
