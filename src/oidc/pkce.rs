//! PKCE (RFC 7636) with the S256 method only.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::base::random::{random_token, RandomError};

/// The code verifier. Not `Clone`: one verifier belongs to one login transaction, and
/// `Debug` never shows it.
#[derive(Serialize, Deserialize)]
#[serde(transparent)]
pub struct PkceVerifier(String);

impl PkceVerifier {
    /// 32 random bytes as base64url: 43 characters from the unreserved set (RFC 7636 4.1).
    pub fn generate() -> Result<Self, RandomError> {
        random_token().map(Self)
    }

    #[cfg(test)]
    pub fn from_string(value: &str) -> Self {
        Self(value.to_owned())
    }

    /// `BASE64URL(SHA256(ASCII(code_verifier)))`.
    pub fn challenge_s256(&self) -> String {
        URL_SAFE_NO_PAD.encode(Sha256::digest(self.0.as_bytes()))
    }

    pub fn secret(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for PkceVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PkceVerifier([redacted])")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn challenge_matches_rfc7636_appendix_b() {
        let v = PkceVerifier::from_string("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk");
        assert_eq!(
            v.challenge_s256(),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
    }

    #[test]
    fn generated_verifier_is_43_unreserved_chars() {
        let v = PkceVerifier::generate().unwrap();
        assert_eq!(v.secret().len(), 43);
        assert!(v
            .secret()
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
        assert_eq!(format!("{v:?}"), "PkceVerifier([redacted])");
    }
}
