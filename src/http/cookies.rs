//! Cookie names, `Cookie` header parsing and `Set-Cookie` values.
//!
//! On https every cookie is `__Host-` prefixed and Secure; plain http is only served for
//! loopback development hosts, where browsers refuse both.

use sha2::{Digest, Sha256};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;

use crate::base::types::State;

/// Longest `Cookie` header we read, in bytes: Cloudflare accepts at most 128 KB of request
/// headers in all, so no request that reaches the worker has our cookies past it. The work is
/// bounded by bytes, never by a count of cookies that other sites' cookies could fill.
const MAX_COOKIE_HEADER: usize = 128 * 1024;
const BASE_NAME: &str = "portcullis";
const TX_INFIX: &str = "-tx-";
const LOGOUT_SUFFIX: &str = "-logout";
/// Browsers keep about 4096 bytes per cookie, name and attributes included.
pub const MAX_COOKIE_VALUE: usize = 3800;
/// A value too long for one cookie is split over at most this many (about 19 KB in all).
pub const MAX_CHUNKS: usize = 5;
/// Marks a first cookie that holds a count: `3~<first part>`. Sealed values are base64url, so
/// they never contain it.
const CHUNK_MARK: char = '~';

/// Decides cookie names and attributes for one request's origin.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CookieJar {
    secure: bool,
}

impl CookieJar {
    pub fn new(secure: bool) -> Self {
        Self { secure }
    }

    /// The request came over HTTPS: cookie names take the `__Host-` prefix.
    pub fn is_secure(&self) -> bool {
        self.secure
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

    /// The `i`th continuation of a chunked cookie (`i` from 1).
    pub fn chunk_name(&self, name: &str, i: usize) -> String {
        format!("{name}-{i}")
    }

    /// The cookie carrying the state of an RP-initiated logout, checked on the way back.
    pub fn logout_name(&self) -> String {
        format!("{}{BASE_NAME}{LOGOUT_SUFFIX}", self.prefix())
    }

    /// True for every cookie this worker owns (so they can be kept from the origin).
    pub fn is_ours(&self, name: &str) -> bool {
        let session = self.session_name();
        name == session
            || self.is_transaction_name(name)
            || name == self.logout_name()
            || name
                .strip_prefix(session.as_str())
                .and_then(|rest| rest.strip_prefix('-'))
                .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
    }

    /// `Set-Cookie` values that store `value` under `name`, split over numbered cookies when
    /// it is too long for one, and that delete the continuations in `present` no longer used.
    /// `None` when it would need more than [`MAX_CHUNKS`] cookies.
    pub fn set_chunked(
        &self,
        name: &str,
        value: &str,
        max_age_secs: u64,
        present: &[usize],
    ) -> Option<Vec<String>> {
        // Room for the count marker in the first cookie.
        let per = MAX_COOKIE_VALUE - 2;
        let parts: Vec<&str> = if value.len() <= MAX_COOKIE_VALUE {
            vec![value]
        } else {
            value
                .as_bytes()
                .chunks(per)
                .map(|c| std::str::from_utf8(c).unwrap_or_default())
                .collect()
        };
        if parts.len() > MAX_CHUNKS || parts.iter().any(|p| p.is_empty()) {
            return None;
        }
        let mut out = Vec::with_capacity(parts.len() + present.len());
        if parts.len() == 1 {
            out.push(self.set(name, value, max_age_secs));
        } else {
            let first = format!("{}{CHUNK_MARK}{}", parts.len(), parts[0]);
            out.push(self.set(name, &first, max_age_secs));
            for (i, part) in parts.iter().enumerate().skip(1) {
                out.push(self.set(&self.chunk_name(name, i), part, max_age_secs));
            }
        }
        for &i in present.iter().filter(|&&i| i >= parts.len()) {
            out.push(self.delete(&self.chunk_name(name, i)));
        }
        Some(out)
    }

    /// Deletes `name` and the continuations in `present`.
    pub fn delete_chunked(&self, name: &str, present: &[usize]) -> Vec<String> {
        std::iter::once(self.delete(name))
            .chain(
                present
                    .iter()
                    .map(|&i| self.delete(&self.chunk_name(name, i))),
            )
            .collect()
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

/// Splits a `Cookie` header into (name, value) pairs, bounded in bytes. Malformed pairs are
/// skipped rather than failing the request.
pub fn parse_cookie_header(header: &str) -> Vec<(&str, &str)> {
    let mut cut = header.len().min(MAX_COOKIE_HEADER);
    while !header.is_char_boundary(cut) {
        cut -= 1;
    }
    header[..cut]
        .split(';')
        .filter_map(|pair| {
            let (name, value) = pair.split_once('=')?;
            let name = name.trim();
            let value = value.trim().trim_matches('"');
            (!name.is_empty()).then_some((name, value))
        })
        .collect()
}

/// A value stored by [`CookieJar::set_chunked`], read back from the request's cookies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChunkedValue {
    /// The joined value; `None` when absent or when a continuation is missing or malformed.
    pub value: Option<String>,
    /// The continuation numbers present in the request (to delete the stale ones).
    pub present: Vec<usize>,
}

/// Joins the cookie `name` and its numbered continuations.
pub fn read_chunked(jar: &CookieJar, cookies: &[(&str, &str)], name: &str) -> ChunkedValue {
    let present: Vec<usize> = cookies
        .iter()
        .filter_map(|(n, _)| n.strip_prefix(name)?.strip_prefix('-')?.parse().ok())
        .filter(|i| (1..=MAX_CHUNKS * 2).contains(i))
        .collect();
    let find = |n: &str| cookies.iter().find(|(c, _)| *c == n).map(|(_, v)| *v);
    let value = find(name).and_then(|first| match first.split_once(CHUNK_MARK) {
        None => Some(first.to_owned()),
        Some((count, part0)) => {
            let count: usize = count
                .parse()
                .ok()
                .filter(|c| (2..=MAX_CHUNKS).contains(c))?;
            let mut joined = part0.to_owned();
            for i in 1..count {
                joined.push_str(find(&jar.chunk_name(name, i))?);
            }
            Some(joined)
        }
    });
    ChunkedValue { value, present }
}

/// The `name=value` pairs of a `Cookie` header, each with its name.
fn cookie_pairs(header: &str) -> impl Iterator<Item = (&str, &str)> {
    header
        .split(';')
        .map(str::trim)
        .filter(|pair| !pair.is_empty())
        .map(|pair| (pair.split_once('=').map_or(pair, |(n, _)| n).trim(), pair))
}

/// Whether a `Cookie` header holds a cookie `select` picks.
pub fn cookie_header_holds(header: &str, select: impl Fn(&str) -> bool) -> bool {
    cookie_pairs(header).any(|(name, _)| select(name))
}

/// The `Cookie` header without the cookies `drop` selects; `None` when nothing is left.
pub fn filter_cookie_header(header: &str, drop: impl Fn(&str) -> bool) -> Option<String> {
    let kept: Vec<&str> = cookie_pairs(header)
        .filter(|(name, _)| !drop(name))
        .map(|(_, pair)| pair)
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

    fn as_request(set_cookies: &[String]) -> String {
        set_cookies
            .iter()
            .filter(|c| !c.contains("Max-Age=0"))
            .map(|c| c.split(';').next().unwrap().to_owned())
            .collect::<Vec<_>>()
            .join("; ")
    }

    #[test]
    fn short_values_take_one_cookie_and_long_ones_are_chunked_and_joined() {
        let jar = CookieJar::new(true);
        let name = jar.session_name();
        let short = "a".repeat(100);
        let one = jar.set_chunked(&name, &short, 60, &[]).unwrap();
        assert_eq!(one.len(), 1);
        let header = as_request(&one);
        let got = read_chunked(&jar, &parse_cookie_header(&header), &name);
        assert_eq!(got.value.as_deref(), Some(short.as_str()));

        let long: String = (0..12_000)
            .map(|i| (b'a' + (i % 26) as u8) as char)
            .collect();
        let many = jar.set_chunked(&name, &long, 60, &[]).unwrap();
        assert_eq!(many.len(), 4);
        assert!(many.iter().all(|c| c.len() < 4000));
        assert!(many[1].starts_with("__Host-portcullis-1="));
        let header = format!("x=1; {}", as_request(&many));
        let cookies = parse_cookie_header(&header);
        let got = read_chunked(&jar, &cookies, &name);
        assert_eq!(got.value.as_deref(), Some(long.as_str()));
        assert_eq!(got.present, vec![1, 2, 3]);
        assert!(cookies.iter().skip(1).all(|(n, _)| jar.is_ours(n)));
    }

    #[test]
    fn shrinking_deletes_stale_chunks_and_a_missing_chunk_reads_as_nothing() {
        let jar = CookieJar::new(false);
        let out = jar
            .set_chunked("portcullis", "short", 60, &[1, 2, 3])
            .unwrap();
        assert_eq!(out.len(), 4);
        assert!(out[1].starts_with("portcullis-1=; Max-Age=0"));
        assert!(out[3].starts_with("portcullis-3=; Max-Age=0"));

        let long = "b".repeat(9000);
        let set = jar.set_chunked("portcullis", &long, 60, &[]).unwrap();
        let header = as_request(&set[..2]); // the last chunk lost
        let got = read_chunked(&jar, &parse_cookie_header(&header), "portcullis");
        assert_eq!(got.value, None);
        for bad in ["portcullis=9~abc", "portcullis=1~abc", "portcullis=x~abc"] {
            let got = read_chunked(&jar, &parse_cookie_header(bad), "portcullis");
            assert_eq!(got.value, None, "{bad}");
        }
        assert_eq!(jar.delete_chunked("portcullis", &[1]).len(), 2);
    }

    #[test]
    fn values_past_the_cap_are_refused() {
        let jar = CookieJar::new(true);
        let huge = "c".repeat(MAX_CHUNKS * MAX_COOKIE_VALUE);
        assert_eq!(jar.set_chunked("n", &huge, 60, &[]), None);
        assert!(!jar.is_ours("__Host-portcullis-x") && !jar.is_ours("__Host-portcullis-"));
        assert!(jar.is_ours(&jar.logout_name()));
    }

    #[test]
    fn cookie_header_parses_and_skips_junk() {
        let got = parse_cookie_header("a=1; b=\"2\";junk; =x; c=3=4");
        assert_eq!(got, vec![("a", "1"), ("b", "2"), ("c", "3=4")]);
    }

    #[test]
    fn huge_cookie_headers_are_bounded_by_bytes() {
        let header = "a=b; ".repeat(100_000);
        assert!(parse_cookie_header(&header).len() <= MAX_COOKIE_HEADER / 4);
        let multibyte = "é".repeat(MAX_COOKIE_HEADER + 10);
        let _ = parse_cookie_header(&multibyte);
    }

    #[test]
    fn our_cookie_is_found_behind_any_number_of_other_cookies() {
        // Sibling subdomains can set many cookies for the parent domain; they come first.
        let jar = CookieJar::new(true);
        let junk: String = (0..2000)
            .map(|i| format!("sibling{i}=xxxxxxxx; "))
            .collect();
        let header = format!("{junk}{}=ours", jar.session_name());
        let cookies = parse_cookie_header(&header);
        let got = read_chunked(&jar, &cookies, &jar.session_name());
        assert_eq!(got.value.as_deref(), Some("ours"));
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
