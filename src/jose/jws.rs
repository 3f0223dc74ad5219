//! Compact JWS parsing, the algorithm allow-list and signature verification.
//!
//! Parsing is pure and shared by every verifier; the signature check is in [`super::verify`].

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde::Deserialize;

/// Longest token we parse (Entra tokens with many groups run past 10 KB).
pub const MAX_TOKEN_LEN: usize = 32 * 1024;

/// The signature algorithms we accept. `none` and every HMAC (`HS*`) are absent on purpose:
/// a public key must never be usable as a shared secret.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum JwsAlg {
    Rs256,
    Rs384,
    Rs512,
    Ps256,
    Ps384,
    Ps512,
    Es256,
    EdDsa,
}

impl JwsAlg {
    pub fn parse(name: &str) -> Option<Self> {
        Some(match name {
            "RS256" => Self::Rs256,
            "RS384" => Self::Rs384,
            "RS512" => Self::Rs512,
            "PS256" => Self::Ps256,
            "PS384" => Self::Ps384,
            "PS512" => Self::Ps512,
            "ES256" => Self::Es256,
            "EdDSA" => Self::EdDsa,
            _ => return None,
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::Rs256 => "RS256",
            Self::Rs384 => "RS384",
            Self::Rs512 => "RS512",
            Self::Ps256 => "PS256",
            Self::Ps384 => "PS384",
            Self::Ps512 => "PS512",
            Self::Es256 => "ES256",
            Self::EdDsa => "EdDSA",
        }
    }

    /// The JWK `kty` a key for this algorithm has.
    pub fn key_type(self) -> &'static str {
        match self {
            Self::Es256 => "EC",
            Self::EdDsa => "OKP",
            _ => "RSA",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JwsError {
    TooLong,
    NotCompact,
    BadBase64,
    BadHeader,
    /// `alg` outside the allow-list (the name is kept for the log).
    AlgorithmNotAllowed(String),
    /// A `crit` header we do not understand must make the token invalid (RFC 7515 4.1.11).
    CriticalHeader,
}

impl std::fmt::Display for JwsError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::TooLong => f.write_str("token too long"),
            Self::NotCompact => f.write_str("not a compact JWS (three dot-separated parts)"),
            Self::BadBase64 => f.write_str("a part is not base64url"),
            Self::BadHeader => f.write_str("the header is not valid JSON"),
            Self::AlgorithmNotAllowed(alg) => {
                let shown: String = alg
                    .chars()
                    .take(16)
                    .filter(|c| c.is_ascii_graphic())
                    .collect();
                write!(f, "algorithm {shown:?} is not allowed")
            }
            Self::CriticalHeader => f.write_str("token has critical header parameters"),
        }
    }
}

#[derive(Debug, Deserialize)]
struct RawHeader {
    alg: String,
    #[serde(default)]
    kid: Option<String>,
    #[serde(default)]
    typ: Option<String>,
    #[serde(default)]
    crit: Option<serde_json::Value>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JoseHeader {
    pub alg: JwsAlg,
    pub kid: Option<String>,
    pub typ: Option<String>,
}

/// A parsed but unverified token. Its payload is only reachable once a signature check passed
/// (see [`super::verify::verify`]).
#[derive(Debug)]
pub struct UnverifiedJws<'a> {
    pub header: JoseHeader,
    signing_input: &'a str,
    payload: Vec<u8>,
    signature: Vec<u8>,
}

impl<'a> UnverifiedJws<'a> {
    pub fn parse(token: &'a str) -> Result<Self, JwsError> {
        if token.len() > MAX_TOKEN_LEN {
            return Err(JwsError::TooLong);
        }
        let mut parts = token.split('.');
        let (Some(h), Some(p), Some(s), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(JwsError::NotCompact);
        };
        let header_bytes = URL_SAFE_NO_PAD.decode(h).map_err(|_| JwsError::BadBase64)?;
        let payload = URL_SAFE_NO_PAD.decode(p).map_err(|_| JwsError::BadBase64)?;
        let signature = URL_SAFE_NO_PAD.decode(s).map_err(|_| JwsError::BadBase64)?;
        let raw: RawHeader =
            serde_json::from_slice(&header_bytes).map_err(|_| JwsError::BadHeader)?;
        let alg = JwsAlg::parse(&raw.alg).ok_or(JwsError::AlgorithmNotAllowed(raw.alg))?;
        if raw.crit.is_some() {
            return Err(JwsError::CriticalHeader);
        }
        Ok(Self {
            header: JoseHeader {
                alg,
                kid: raw.kid,
                typ: raw.typ,
            },
            signing_input: &token[..h.len() + 1 + p.len()],
            payload,
            signature,
        })
    }

    pub fn signing_input(&self) -> &[u8] {
        self.signing_input.as_bytes()
    }

    pub fn signature(&self) -> &[u8] {
        &self.signature
    }

    /// The `iss` claim before any check: only to choose which trusted issuer's keys to try.
    pub fn unverified_issuer(&self) -> Option<String> {
        #[derive(Deserialize)]
        struct Iss {
            iss: String,
        }
        serde_json::from_slice::<Iss>(&self.payload)
            .ok()
            .map(|i| i.iss)
    }
}

/// A token whose signature checked out. Only [`super::verify::verify`] makes one (fields are private).
#[derive(Debug)]
pub struct VerifiedJws {
    header: JoseHeader,
    payload: Vec<u8>,
}

impl VerifiedJws {
    pub fn header(&self) -> &JoseHeader {
        &self.header
    }

    pub fn payload(&self) -> &[u8] {
        &self.payload
    }

    /// Only the signature check ([`super::verify::verify`]) turns a parsed token into this.
    pub(super) fn checked(jws: UnverifiedJws<'_>) -> Self {
        Self {
            header: jws.header,
            payload: jws.payload,
        }
    }

    /// Unit tests of claim rules may start from a payload they call verified.
    #[cfg(test)]
    pub fn assume_verified(header: JoseHeader, payload: Vec<u8>) -> Self {
        Self { header, payload }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b64(s: &str) -> String {
        URL_SAFE_NO_PAD.encode(s)
    }

    #[test]
    fn none_and_hmac_are_not_allowed() {
        for alg in ["none", "None", "HS256", "HS384", "HS512", "RS1", ""] {
            let t = format!("{}.{}.", b64(&format!(r#"{{"alg":"{alg}"}}"#)), b64("{}"));
            assert_eq!(
                UnverifiedJws::parse(&t).unwrap_err(),
                JwsError::AlgorithmNotAllowed(alg.into())
            );
        }
    }

    #[test]
    fn malformed_tokens_are_refused() {
        assert_eq!(
            UnverifiedJws::parse("a.b").unwrap_err(),
            JwsError::NotCompact
        );
        assert_eq!(
            UnverifiedJws::parse("a.b.c.d").unwrap_err(),
            JwsError::NotCompact
        );
        assert_eq!(
            UnverifiedJws::parse("!!.b.c").unwrap_err(),
            JwsError::BadBase64
        );
        assert_eq!(
            UnverifiedJws::parse(&format!("{}.e30.", b64("nope"))).unwrap_err(),
            JwsError::BadHeader
        );
        assert_eq!(
            UnverifiedJws::parse(&"a".repeat(MAX_TOKEN_LEN + 1)).unwrap_err(),
            JwsError::TooLong
        );
    }

    #[test]
    fn crit_headers_are_refused() {
        let t = format!(
            "{}.{}.",
            b64(r#"{"alg":"RS256","crit":["exp"]}"#),
            b64("{}")
        );
        assert_eq!(
            UnverifiedJws::parse(&t).unwrap_err(),
            JwsError::CriticalHeader
        );
    }

    #[test]
    fn signing_input_is_header_dot_payload() {
        let h = b64(r#"{"alg":"ES256","kid":"k1","typ":"JWT"}"#);
        let t = format!("{h}.{}.AAAA", b64("{}"));
        let jws = UnverifiedJws::parse(&t).unwrap();
        assert_eq!(jws.signing_input(), format!("{h}.{}", b64("{}")).as_bytes());
        assert_eq!(jws.header.kid.as_deref(), Some("k1"));
        assert_eq!(jws.header.alg, JwsAlg::Es256);
    }
}
