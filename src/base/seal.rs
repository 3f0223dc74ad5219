//! Cookie sealing: XChaCha20-Poly1305 with a key per purpose derived from COOKIE_SECRET by
//! HKDF-SHA256. The cookie name is the associated data, so a value sealed for one cookie does
//! not open under another name. Several secrets may be configured (newest first): cookies open
//! under any of them and are sealed with the newest.
//!
//! Wire format: base64url( version(1) || nonce(24) || ciphertext+tag ).

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use hkdf::Hkdf;
use serde::de::DeserializeOwned;
use serde::Serialize;
use sha2::Sha256;

use crate::base::random::{random_bytes, RandomError};

const VERSION: u8 = 1;
const NONCE_LEN: usize = 24;
const TAG_LEN: usize = 16;
const HKDF_SALT: &[u8] = b"portcullis cookie sealing v1";
/// Longest sealed value we try to open; anything longer is not ours.
const MAX_SEALED_LEN: usize = 32 * 1024;

/// What a sealed value is for; each purpose has its own key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Purpose {
    LoginTransaction,
    Session,
}

impl Purpose {
    const ALL: [Purpose; 2] = [Purpose::LoginTransaction, Purpose::Session];

    fn info(self) -> &'static [u8] {
        match self {
            Purpose::LoginTransaction => b"portcullis login transaction",
            Purpose::Session => b"portcullis session",
        }
    }

    fn index(self) -> usize {
        match self {
            Purpose::LoginTransaction => 0,
            Purpose::Session => 1,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SealError {
    Random(RandomError),
    Encode,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpenError {
    /// Not base64url, too short, too long or an unknown version.
    Malformed,
    /// No configured key authenticates it: tampered, another name, or an old secret.
    Unauthentic,
    /// Authentic but not the expected shape (a bug or a format change).
    Undecodable,
}

/// The keys derived from one secret.
struct KeySet([XChaCha20Poly1305; 2]);

/// Seals and opens cookie values. Holds derived keys only, never prints them.
pub struct Sealer {
    /// Newest first; index 0 seals.
    key_sets: Vec<KeySet>,
}

impl std::fmt::Debug for Sealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Sealer({} key set(s), [redacted])", self.key_sets.len())
    }
}

impl Sealer {
    /// `secrets` newest first; each at least 32 bytes (checked by the config parser).
    /// Returns `None` for an empty list.
    pub fn new<S: AsRef<[u8]>>(secrets: &[S]) -> Option<Self> {
        if secrets.is_empty() {
            return None;
        }
        let key_sets = secrets
            .iter()
            .map(|secret| {
                let hk = Hkdf::<Sha256>::new(Some(HKDF_SALT), secret.as_ref());
                KeySet(Purpose::ALL.map(|p| {
                    let mut okm = [0u8; 32];
                    // 32 bytes is far below HKDF-SHA256's 8160-byte limit: cannot fail.
                    let _ = hk.expand(p.info(), &mut okm);
                    XChaCha20Poly1305::new(&okm.into())
                }))
            })
            .collect();
        Some(Self { key_sets })
    }

    pub fn seal(
        &self,
        purpose: Purpose,
        name: &str,
        plaintext: &[u8],
    ) -> Result<String, SealError> {
        let nonce_bytes = random_bytes::<NONCE_LEN>().map_err(SealError::Random)?;
        let cipher = &self.key_sets[0].0[purpose.index()];
        let ciphertext = cipher
            .encrypt(
                XNonce::from_slice(&nonce_bytes),
                Payload {
                    msg: plaintext,
                    aad: name.as_bytes(),
                },
            )
            .map_err(|_| SealError::Encode)?;
        let mut out = Vec::with_capacity(1 + NONCE_LEN + ciphertext.len());
        out.push(VERSION);
        out.extend_from_slice(&nonce_bytes);
        out.extend_from_slice(&ciphertext);
        Ok(URL_SAFE_NO_PAD.encode(out))
    }

    pub fn open(&self, purpose: Purpose, name: &str, sealed: &str) -> Result<Vec<u8>, OpenError> {
        if sealed.len() > MAX_SEALED_LEN {
            return Err(OpenError::Malformed);
        }
        let raw = URL_SAFE_NO_PAD
            .decode(sealed)
            .map_err(|_| OpenError::Malformed)?;
        let (&version, rest) = raw.split_first().ok_or(OpenError::Malformed)?;
        if version != VERSION || rest.len() < NONCE_LEN + TAG_LEN {
            return Err(OpenError::Malformed);
        }
        let (nonce, ciphertext) = rest.split_at(NONCE_LEN);
        self.key_sets
            .iter()
            .find_map(|set| {
                set.0[purpose.index()]
                    .decrypt(
                        XNonce::from_slice(nonce),
                        Payload {
                            msg: ciphertext,
                            aad: name.as_bytes(),
                        },
                    )
                    .ok()
            })
            .ok_or(OpenError::Unauthentic)
    }

    pub fn seal_json<T: Serialize>(
        &self,
        purpose: Purpose,
        name: &str,
        value: &T,
    ) -> Result<String, SealError> {
        let plaintext = serde_json::to_vec(value).map_err(|_| SealError::Encode)?;
        self.seal(purpose, name, &plaintext)
    }

    pub fn open_json<T: DeserializeOwned>(
        &self,
        purpose: Purpose,
        name: &str,
        sealed: &str,
    ) -> Result<T, OpenError> {
        let plaintext = self.open(purpose, name, sealed)?;
        serde_json::from_slice(&plaintext).map_err(|_| OpenError::Undecodable)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sealer(secret: &[u8]) -> Sealer {
        Sealer::new(&[secret]).unwrap()
    }

    const K1: &[u8] = &[7u8; 32];
    const K2: &[u8] = &[9u8; 32];

    #[test]
    fn sealed_value_opens_with_same_key_name_and_purpose() {
        let s = sealer(K1);
        let sealed = s.seal(Purpose::Session, "sess", b"hello").unwrap();
        assert_eq!(s.open(Purpose::Session, "sess", &sealed).unwrap(), b"hello");
    }

    #[test]
    fn sealing_twice_gives_different_ciphertexts() {
        let s = sealer(K1);
        let a = s.seal(Purpose::Session, "sess", b"x").unwrap();
        let b = s.seal(Purpose::Session, "sess", b"x").unwrap();
        assert_ne!(a, b);
    }

    #[test]
    fn tampered_value_does_not_open() {
        let s = sealer(K1);
        let sealed = s.seal(Purpose::Session, "sess", b"hello").unwrap();
        let mut raw = URL_SAFE_NO_PAD.decode(&sealed).unwrap();
        let last = raw.len() - 1;
        raw[last] ^= 1;
        let tampered = URL_SAFE_NO_PAD.encode(raw);
        assert_eq!(
            s.open(Purpose::Session, "sess", &tampered),
            Err(OpenError::Unauthentic)
        );
    }

    #[test]
    fn value_sealed_under_another_key_does_not_open() {
        let sealed = sealer(K1).seal(Purpose::Session, "sess", b"hello").unwrap();
        assert_eq!(
            sealer(K2).open(Purpose::Session, "sess", &sealed),
            Err(OpenError::Unauthentic)
        );
    }

    #[test]
    fn value_sealed_for_another_cookie_name_does_not_open() {
        let s = sealer(K1);
        let sealed = s.seal(Purpose::Session, "tx-a", b"hello").unwrap();
        assert_eq!(
            s.open(Purpose::Session, "tx-b", &sealed),
            Err(OpenError::Unauthentic)
        );
    }

    #[test]
    fn value_sealed_for_another_purpose_does_not_open() {
        let s = sealer(K1);
        let sealed = s.seal(Purpose::LoginTransaction, "c", b"hello").unwrap();
        assert_eq!(
            s.open(Purpose::Session, "c", &sealed),
            Err(OpenError::Unauthentic)
        );
    }

    #[test]
    fn garbage_and_truncated_values_are_malformed() {
        let s = sealer(K1);
        for bad in ["", "!!!", "AQ", "AAAA", &"A".repeat(MAX_SEALED_LEN + 1)] {
            assert_eq!(
                s.open(Purpose::Session, "c", bad),
                Err(OpenError::Malformed),
                "{bad:.20}"
            );
        }
        let sealed = s.seal(Purpose::Session, "c", b"hello world").unwrap();
        let truncated = &sealed[..sealed.len() - 4];
        assert!(s.open(Purpose::Session, "c", truncated).is_err());
    }

    #[test]
    fn old_secret_still_opens_and_newest_seals() {
        let old = sealer(K1);
        let rotated = Sealer::new(&[K2, K1]).unwrap();
        let from_old = old.seal(Purpose::Session, "c", b"v").unwrap();
        assert_eq!(
            rotated.open(Purpose::Session, "c", &from_old).unwrap(),
            b"v"
        );
        let from_new = rotated.seal(Purpose::Session, "c", b"v").unwrap();
        assert!(old.open(Purpose::Session, "c", &from_new).is_err());
        assert!(sealer(K2).open(Purpose::Session, "c", &from_new).is_ok());
    }

    #[test]
    fn debug_does_not_print_keys() {
        assert_eq!(
            format!("{:?}", sealer(K1)),
            "Sealer(1 key set(s), [redacted])"
        );
    }
}
