//! An http(s) URL in canonical form: the URL of the request the gate answers, as the runtime
//! hands it over, and every URL of configuration or discovery, brought to that form first
//! ([`HttpUrl::normalize`], in `normalize.rs`).
//!
//! workerd serializes `request.url` with its own WHATWG URL parser: scheme and host in lower
//! case, the default port left out, dot segments resolved, the path and query percent-encoded.
//! Parsing that again with the `url` crate cost about 30 us per request (a third of a
//! signed-in request's Rust time), so this reads the canonical form by splitting it, and
//! refuses anything that is not in that form rather than guessing how another parser would
//! read it: userinfo, backslashes, whitespace and controls, non-ASCII, a host with characters
//! no canonical host has, a port out of range, and literal dot segments.

use std::fmt;

mod normalize;
pub use normalize::resolve_path_reference;

#[derive(Clone, PartialEq, Eq)]
pub struct HttpUrl {
    /// The URL without its fragment.
    text: String,
    /// `https` or `http`.
    secure: bool,
    /// Where the host (with any port) ends and the path begins.
    path_start: usize,
    /// The port when it is not the scheme's default.
    port: Option<u16>,
    /// The length of the host within the authority (the authority minus `:port`).
    host_len: usize,
    /// Where the `?` is, if any.
    query_at: Option<usize>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UrlError {
    Scheme,
    Host,
    Port,
    Character,
    DotSegment,
    /// Only from [`HttpUrl::normalize`]: `user:password@` before the host.
    UserInfo,
    /// Only from [`HttpUrl::normalize`]: a `#fragment`.
    Fragment,
    /// Only from [`HttpUrl::normalize`]: a host that is not ASCII (IDNA is not built in).
    NotAsciiHost,
}

impl fmt::Display for UrlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Scheme => "is not an http(s) URL (https://host/path)",
            Self::Host => "has a host that is not a name, a dotted-decimal IPv4 address or an [IPv6] address",
            Self::Port => "has a port that is not a number from 0 to 65535",
            Self::Character => "has a backslash or a control character",
            Self::DotSegment => "has a . or .. segment",
            Self::UserInfo => "must not carry user:password@",
            Self::Fragment => "must not have a #fragment",
            Self::NotAsciiHost => "has a host that is not ASCII: write an international domain name in punycode (xn--...)",
        })
    }
}

impl HttpUrl {
    /// A URL already in canonical form (the runtime's `request.url`); anything that is not in
    /// that form is refused, not repaired.
    pub fn parse(url: &str) -> Result<Self, UrlError> {
        let url = url.split('#').next().unwrap_or_default();
        if url.bytes().any(|b| b <= b' ' || b >= 0x7f || b == b'\\') {
            return Err(UrlError::Character);
        }
        let (secure, rest) = if let Some(rest) = url.strip_prefix("https://") {
            (true, rest)
        } else if let Some(rest) = url.strip_prefix("http://") {
            (false, rest)
        } else {
            return Err(UrlError::Scheme);
        };
        let authority_start = url.len() - rest.len();
        let authority_len = rest.find(['/', '?']).unwrap_or(rest.len());
        let authority = &rest[..authority_len];
        let (host, port) = split_port(authority)?;
        check_host(host)?;
        let default = if secure { 443 } else { 80 };
        let port = port.filter(|p| *p != default);

        // Rebuilt so that the path always begins with `/` and a default port is dropped, as
        // the `url` crate and the runtime write them.
        let mut text = String::with_capacity(url.len() + 1);
        text.push_str(&url[..authority_start]);
        text.push_str(host);
        if let Some(p) = port {
            text.push(':');
            text.push_str(&p.to_string());
        }
        let path_start = text.len();
        let tail = &rest[authority_len..];
        if !tail.starts_with('/') {
            text.push('/');
        }
        text.push_str(tail);
        let query_at = text[path_start..].find('?').map(|i| path_start + i);
        let path = &text[path_start..query_at.unwrap_or(text.len())];
        if path
            .split('/')
            .any(|segment| segment == "." || segment == "..")
        {
            return Err(UrlError::DotSegment);
        }
        Ok(Self {
            secure,
            path_start,
            port,
            host_len: host.len(),
            query_at,
            text,
        })
    }

    /// A URL written by a person or a provider, in the canonical form first (see
    /// `normalize.rs` for what is refused).
    pub fn normalize(input: &str) -> Result<Self, UrlError> {
        Self::parse(&normalize::normalize(input)?)
    }

    /// The whole URL, as a `Location` header or a request would carry it.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The same URL with `pairs` added at the end of its query, form-encoded.
    pub fn with_pairs<'a>(&self, pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> Self {
        let mut text = self.text.clone();
        let query_start = match self.query_at {
            Some(q) => q + 1,
            None => {
                text.push('?');
                text.len()
            }
        };
        form_urlencoded::Serializer::for_suffix(&mut text, query_start).extend_pairs(pairs);
        Self {
            text,
            secure: self.secure,
            path_start: self.path_start,
            port: self.port,
            host_len: self.host_len,
            query_at: Some(query_start - 1),
        }
    }

    /// A path (with any query) relative to this URL's directory (`api/v3/` against
    /// `https://h/` gives `https://h/api/v3/`); `None` for anything but a relative path.
    pub fn join_path(&self, relative: &str) -> Option<Self> {
        if relative.starts_with('/') || relative.contains(['#', ':']) {
            return None;
        }
        let path = self.path();
        let dir = &path[..path.rfind('/').map_or(0, |i| i + 1)];
        Self::normalize(&format!("{}{dir}{relative}", self.origin())).ok()
    }

    pub fn scheme(&self) -> &str {
        if self.secure {
            "https"
        } else {
            "http"
        }
    }

    pub fn is_secure(&self) -> bool {
        self.secure
    }

    fn host_start(&self) -> usize {
        self.scheme().len() + 3
    }

    /// The host: a name, an IPv4 address, or an IPv6 address in brackets.
    pub fn host(&self) -> &str {
        let start = self.host_start();
        &self.text[start..start + self.host_len]
    }

    /// The port when it is not the scheme's default.
    pub fn port(&self) -> Option<u16> {
        self.port
    }

    /// `scheme://host[:port]`, as an `Origin` header writes it.
    pub fn origin(&self) -> &str {
        &self.text[..self.path_start]
    }

    /// The path, percent-encoded as the runtime gave it; at least `/`.
    pub fn path(&self) -> &str {
        &self.text[self.path_start..self.query_at.unwrap_or(self.text.len())]
    }

    /// The query without its `?`.
    pub fn query(&self) -> Option<&str> {
        self.query_at.map(|q| &self.text[q + 1..])
    }

    /// The query's decoded `name=value` pairs.
    pub fn query_pairs(&self) -> form_urlencoded::Parse<'_> {
        form_urlencoded::parse(self.query().unwrap_or_default().as_bytes())
    }

    /// The same URL with `https`.
    pub fn to_https(&self) -> String {
        format!("https://{}", &self.text[self.host_start()..])
    }
}

impl fmt::Debug for HttpUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("HttpUrl").field(&self.text).finish()
    }
}

impl fmt::Display for HttpUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

fn split_port(authority: &str) -> Result<(&str, Option<u16>), UrlError> {
    let colon = if authority.starts_with('[') {
        let close = authority.find(']').ok_or(UrlError::Host)?;
        match &authority[close + 1..] {
            "" => None,
            after if after.starts_with(':') => Some(close + 1),
            _ => return Err(UrlError::Host),
        }
    } else {
        authority.find(':')
    };
    let Some(colon) = colon else {
        return Ok((authority, None));
    };
    let digits = &authority[colon + 1..];
    if digits.is_empty() {
        return Ok((&authority[..colon], None));
    }
    if digits.len() > 5 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(UrlError::Port);
    }
    let port = digits.parse::<u16>().map_err(|_| UrlError::Port)?;
    Ok((&authority[..colon], Some(port)))
}

/// A canonical host: lower-case letters, digits, `-`, `.` and `_` (punycode for international
/// names), or an IPv6 address in brackets.
fn check_host(host: &str) -> Result<(), UrlError> {
    let fine = if let Some(v6) = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        !v6.is_empty()
            && v6
                .bytes()
                .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase() || b == b':' || b == b'.')
    } else {
        !host.is_empty()
            && host.bytes().all(|b| {
                b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'-' | b'.' | b'_')
            })
    };
    if fine {
        Ok(())
    } else {
        Err(UrlError::Host)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn parse(s: &str) -> HttpUrl {
        HttpUrl::parse(s).unwrap()
    }

    #[test]
    fn reads_the_parts_of_a_canonical_url() {
        let u = parse("https://app.example.com:8443/a/b%20c?x=1&y=%C3%A9#frag");
        assert_eq!(u.scheme(), "https");
        assert_eq!(u.host(), "app.example.com");
        assert_eq!(u.port(), Some(8443));
        assert_eq!(u.origin(), "https://app.example.com:8443");
        assert_eq!(u.path(), "/a/b%20c");
        assert_eq!(u.query(), Some("x=1&y=%C3%A9"));
        let pairs: Vec<(String, String)> = u
            .query_pairs()
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        assert_eq!(pairs, [("x".into(), "1".into()), ("y".into(), "é".into())]);
        assert_eq!(
            u.to_string(),
            "https://app.example.com:8443/a/b%20c?x=1&y=%C3%A9"
        );
        assert_eq!(u.to_https(), u.to_string());
    }

    #[test]
    fn fills_in_what_the_canonical_form_has() {
        let u = parse("http://localhost:80");
        assert_eq!(u.path(), "/");
        assert_eq!(u.port(), None);
        assert_eq!(u.origin(), "http://localhost");
        assert_eq!(u.to_string(), "http://localhost/");
        assert_eq!(u.to_https(), "https://localhost/");
        let q = parse("https://a.example:443?x");
        assert_eq!((q.path(), q.query()), ("/", Some("x")));
        assert_eq!(q.to_string(), "https://a.example/?x");
        assert_eq!(parse("https://a.example/?").query(), Some(""));
        assert_eq!(parse("https://a.example/").query(), None);
        let v6 = parse("http://[::1]:8787/p");
        assert_eq!((v6.host(), v6.port()), ("[::1]", Some(8787)));
        assert_eq!(v6.origin(), "http://[::1]:8787");
    }

    #[test]
    fn pairs_go_at_the_end_of_the_query_form_encoded() {
        let end = HttpUrl::normalize("https://idp.example/logout?tenant=t").unwrap();
        let with = end.with_pairs([("client_id", "c 1"), ("state", "a&b=")]);
        assert_eq!(
            with.as_str(),
            "https://idp.example/logout?tenant=t&client_id=c+1&state=a%26b%3D"
        );
        assert_eq!(with.path(), "/logout");
        assert_eq!(with.query_pairs().count(), 3);
        let bare = HttpUrl::normalize("https://idp.example/logout").unwrap();
        assert_eq!(
            bare.with_pairs([("x", "1")]).as_str(),
            "https://idp.example/logout?x=1"
        );
        assert_eq!(bare.with_pairs([("x", "1")]).query(), Some("x=1"));
    }

    #[test]
    fn a_relative_path_joins_the_directory() {
        let api = HttpUrl::normalize("https://git.example/api/v3/").unwrap();
        assert_eq!(
            api.join_path("user/orgs?per_page=100").unwrap().as_str(),
            "https://git.example/api/v3/user/orgs?per_page=100"
        );
        let file = HttpUrl::normalize("https://git.example/a/b").unwrap();
        assert_eq!(
            file.join_path("c").unwrap().as_str(),
            "https://git.example/a/c"
        );
        for refused in ["/root", "https://evil.example/", "x#f", "a:b"] {
            assert!(api.join_path(refused).is_none(), "{refused}");
        }
    }

    #[test]
    fn refuses_what_is_not_canonical() {
        for bad in [
            "ftp://a.example/",
            "https:/a.example/",
            "HTTPS://a.example/",
            "https://A.example/",
            "https://user@a.example/",
            "https://a.example/a\\b",
            "https://a.example/a b",
            "https://a.example/\t",
            "https://a.example/é",
            "https:///x",
            "https://a.example:99999/",
            "https://a.example:8x/",
            "https://a.exa%6dple/",
            "https://[::1/",
            "https://[::1]x/",
            "https://[]/",
            "https://a.example/./x",
            "https://a.example/x/..",
            "https://a.example/x/../y?z",
        ] {
            assert!(HttpUrl::parse(bad).is_err(), "{bad}");
        }
        // Encoded dots are the path checks' to judge, as the runtime leaves them.
        assert_eq!(parse("https://a.example/%2e%2e/x").path(), "/%2e%2e/x");
    }

    /// On the URLs the runtime hands over (what the `url` crate writes, as WHATWG says), the
    /// parts are exactly the `url` crate's.
    fn agrees_with_url(input: &str) {
        let Ok(reference) = url::Url::parse(input) else {
            return;
        };
        if !matches!(reference.scheme(), "http" | "https") {
            return;
        }
        let canonical = reference.as_str();
        let Ok(ours) = HttpUrl::parse(canonical) else {
            // Refused: only what the canonical form cannot have from a request.
            assert!(
                !reference.username().is_empty()
                    || reference.password().is_some()
                    || canonical
                        .bytes()
                        .any(|b| b <= b' ' || b >= 0x7f || b == b'\\')
                    || reference.host_str().is_some_and(|h| {
                        !h.starts_with('[')
                            && !h.bytes().all(|b| {
                                b.is_ascii_lowercase() || b.is_ascii_digit() || b"-._".contains(&b)
                            })
                    }),
                "refused {canonical}"
            );
            return;
        };
        let mut no_fragment = reference.clone();
        no_fragment.set_fragment(None);
        assert_eq!(ours.to_string(), no_fragment.as_str());
        assert_eq!(ours.path(), reference.path());
        assert_eq!(ours.query(), reference.query());
        assert_eq!(Some(ours.host()), reference.host_str());
        assert_eq!(ours.port(), reference.port());
        assert_eq!(ours.origin(), reference.origin().ascii_serialization());
    }

    #[test]
    fn agrees_with_the_url_crate_on_canonical_urls() {
        for input in [
            "https://app.example/a/./b/../c?x#y",
            "https://APP.example:443/%7Euser/",
            "http://127.0.0.1:8787/auth/callback?code=a%20b&state=s",
            "https://xn--bcher-kva.example/",
            "https://bücher.example/ä?ö",
            "http://[0:0::1]:80/",
            "https://a.example/a/%2E%2E/b",
            "https://a.example\\x\\y",
            "https://a.example/?a=<b>&c=\"d\"",
        ] {
            agrees_with_url(input);
        }
    }

    proptest! {
        #[test]
        fn never_panics_and_agrees_with_url(s in "\\PC{0,60}", path in "[a-z0-9%./?#=&~-]{0,40}") {
            let _ = HttpUrl::parse(&s);
            agrees_with_url(&format!("https://app.example/{path}"));
            agrees_with_url(&format!("http://{s}"));
        }
    }
}
