//! Cookie names, `Cookie` header parsing and `Set-Cookie` values.
//!
//! On https every cookie is `__Host-` prefixed and Secure; plain http is only served for
//! loopback development hosts, where browsers refuse both.

use sha2::{Digest, Sha256};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;

use crate::types::State;

/// Longest `Cookie` header we read; longer ones are cut (cookies past it are ignored).
const MAX_COOKIE_HEADER: usize = 32 * 1024;
/// At most this many cookies are read from one header.
const MAX_COOKIES: usize = 64;
const BASE_NAME: &str = "portcullis";
const TX_INFIX: &str = "-tx-";

/// Decides cookie names and attributes for one request's origin.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CookieJar {
    secure: bool,
}

impl CookieJar {
    pub fn new(secure: bool) -> Self {
        Self { secure }
    }

    fn prefix(&self) -> &'static str {
        if self.secure {
            "__Host-"
        } else {
            ""
        }
    }

    pub fn session_name(&self) -> String {
        format!("{}{BASE_NAME}", self.prefix())
    }

    /// The login transaction cookie for `state`: a short tag of the state keeps two tabs'
    /// sign-ins apart without putting the state itself in a name.
    pub fn transaction_name(&self, state: &State) -> String {
        self.transaction_name_for_state_str(state.as_str())
    }

    pub fn transaction_name_for_state_str(&self, state: &str) -> String {
        let digest = Sha256::digest(state.as_bytes());
        let tag = URL_SAFE_NO_PAD.encode(&digest[..6]);
        format!("{}{BASE_NAME}{TX_INFIX}{tag}", self.prefix())
    }

    pub fn is_transaction_name(&self, name: &str) -> bool {
        name.strip_prefix(self.prefix())
            .and_then(|rest| rest.strip_prefix(BASE_NAME))
            .is_some_and(|rest| rest.starts_with(TX_INFIX))
    }

    /// True for every cookie this worker owns (so they can be kept from the origin).
    pub fn is_ours(&self, name: &str) -> bool {
        name == self.session_name() || self.is_transaction_name(name)
    }

    pub fn set(&self, name: &str, value: &str, max_age_secs: u64) -> String {
        format!(
            "{name}={value}; Max-Age={max_age_secs}; Path=/; HttpOnly; SameSite=Lax{}",
            self.secure_attr()
        )
    }

    pub fn delete(&self, name: &str) -> String {
        format!("{name}=; Max-Age=0; Expires=Thu, 01 Jan 1970 00:00:00 GMT; Path=/; HttpOnly; SameSite=Lax{}", self.secure_attr())
    }

    fn secure_attr(&self) -> &'static str {
        if self.secure {
            "; Secure"
        } else {
            ""
        }
    }
}

/// Splits a `Cookie` header into (name, value) pairs, bounded in size and count. Malformed
/// pairs are skipped rather than failing the request.
pub fn parse_cookie_header(header: &str) -> Vec<(&str, &str)> {
    let header = match header.char_indices().nth(MAX_COOKIE_HEADER) {
        Some((cut, _)) => &header[..cut],
        None => header,
    };
    header
        .split(';')
        .filter_map(|pair| {
            let (name, value) = pair.split_once('=')?;
            let name = name.trim();
            let value = value.trim().trim_matches('"');
            (!name.is_empty()).then_some((name, value))
        })
        .take(MAX_COOKIES)
        .collect()
}

/// The `Cookie` header without the cookies `drop` selects; `None` when nothing is left.
pub fn filter_cookie_header(header: &str, drop: impl Fn(&str) -> bool) -> Option<String> {
    let kept: Vec<&str> = header
        .split(';')
        .map(str::trim)
        .filter(|pair| {
            let name = pair.split_once('=').map_or(*pair, |(n, _)| n).trim();
            !pair.is_empty() && !drop(name)
        })
        .collect();
    (!kept.is_empty()).then(|| kept.join("; "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn https_cookies_are_host_prefixed_and_secure() {
        let jar = CookieJar::new(true);
        assert_eq!(jar.session_name(), "__Host-portcullis");
        let c = jar.set(&jar.session_name(), "v", 60);
        assert_eq!(
            c,
            "__Host-portcullis=v; Max-Age=60; Path=/; HttpOnly; SameSite=Lax; Secure"
        );
    }

    #[test]
    fn loopback_http_cookies_are_plain() {
        let jar = CookieJar::new(false);
        assert_eq!(jar.session_name(), "portcullis");
        assert!(!jar.set("portcullis", "v", 1).contains("Secure"));
        assert!(jar.delete("portcullis").contains("Max-Age=0"));
    }

    #[test]
    fn transaction_names_differ_per_state_and_are_recognised() {
        let jar = CookieJar::new(true);
        let a = jar.transaction_name(&State::new("state-a"));
        let b = jar.transaction_name(&State::new("state-b"));
        assert_ne!(a, b);
        assert!(a.starts_with("__Host-portcullis-tx-"));
        assert!(!a.contains("state-a"));
        assert!(jar.is_transaction_name(&a));
        assert!(!jar.is_transaction_name("__Host-portcullis"));
        assert!(jar.is_ours(&a) && jar.is_ours("__Host-portcullis"));
        assert!(!jar.is_ours("other"));
    }

    #[test]
    fn cookie_header_parses_and_skips_junk() {
        let got = parse_cookie_header("a=1; b=\"2\";junk; =x; c=3=4");
        assert_eq!(got, vec![("a", "1"), ("b", "2"), ("c", "3=4")]);
    }

    #[test]
    fn huge_cookie_headers_are_bounded() {
        let header = "a=b; ".repeat(100_000);
        assert!(parse_cookie_header(&header).len() <= MAX_COOKIES);
        let multibyte = "é".repeat(MAX_COOKIE_HEADER + 10);
        let _ = parse_cookie_header(&multibyte);
    }

    #[test]
    fn our_cookies_are_filtered_from_the_forwarded_header() {
        let jar = CookieJar::new(true);
        let out = filter_cookie_header(
            "a=1; __Host-portcullis=s; __Host-portcullis-tx-abc=t; b=2",
            |n| jar.is_ours(n),
        );
        assert_eq!(out.as_deref(), Some("a=1; b=2"));
        assert_eq!(
            filter_cookie_header("__Host-portcullis=s", |n| jar.is_ours(n)),
            None
        );
    }
}
