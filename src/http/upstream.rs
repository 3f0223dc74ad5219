//! What crosses to the origin and back: inbound identity headers and our own cookies are
//! stripped from requests; protected responses leave as `Cache-Control: private` with
//! `Vary: Cookie`, so no shared cache hands them to someone else.

use std::net::IpAddr;

use crate::http::cookies::{cookie_header_holds, filter_cookie_header, CookieJar};
use crate::http::http_url::HttpUrl;
use crate::http::Headers;

/// Headers an origin could take for identity asserted by the gate. Compared after lowercasing
/// and turning `_` into `-` (some servers treat them alike).
const IDENTITY_HEADERS: &[&str] = &[
    "x-forwarded-user",
    "x-forwarded-email",
    "x-forwarded-groups",
    "x-forwarded-preferred-username",
    "x-forwarded-access-token",
    "x-portcullis-assertion",
    "x-goog-iap-jwt-assertion",
    "cf-access-jwt-assertion",
    "cf-access-authenticated-user-email",
];
/// Whole families other gates use, which origins are set up to read: oauth2-proxy's, Authelia's
/// and Apache's `Remote-*`, Grafana's `X-WEBAUTH-*`, Azure App Service's, Google IAP's and AWS
/// ALB's.
const IDENTITY_PREFIXES: &[&str] = &[
    "x-auth-request-",
    "remote-",
    "x-remote-",
    "x-webauth-",
    "x-ms-client-principal",
    "x-goog-authenticated-user-",
    "x-amzn-oidc-",
];

/// Headers that make an origin serve another path or method, or believe another host, scheme
/// or client: never the client's. The `X-Forwarded-*` and `Forwarded` ones are set again from
/// the real request ([`forwarding_headers`]).
const ROUTING_HEADERS: &[&str] = &[
    "x-http-method-override",
    "x-http-method",
    "x-method-override",
    "x-original-url",
    "x-rewrite-url",
    "x-original-uri",
    "x-original-method",
    "x-original-host",
    "x-envoy-original-path",
    "x-forwarded-uri",
    "x-forwarded-path",
    "x-forwarded-method",
    "x-host",
    "x-scheme",
    "x-script-name",
    "true-client-ip",
    "x-forwarded-host",
    "x-forwarded-proto",
    "x-forwarded-for",
    "x-forwarded-port",
    "x-forwarded-server",
    "x-forwarded-prefix",
    "x-forwarded-scheme",
    "x-forwarded-ssl",
    "x-url-scheme",
    "front-end-https",
    "forwarded",
    "x-real-ip",
    "x-client-ip",
    "x-cluster-client-ip",
    "client-ip",
    "x-forwarded",
    "forwarded-for",
    "x-originating-ip",
    "fastly-client-ip",
];

fn is_routing_header(name: &str) -> bool {
    may_be_listed(name) && ROUTING_HEADERS.iter().any(|r| same_name(name, r))
}

/// The first bytes, in either case, of every name and prefix in the lists above: most of a
/// request's headers (Accept, Cookie, Host, User-Agent, Sec-Fetch-*) start with none of them
/// and are passed over without comparing each name.
const FIRST_BYTES: [bool; 256] = {
    let mut table = [false; 256];
    let lists: [&[&str]; 3] = [IDENTITY_HEADERS, IDENTITY_PREFIXES, ROUTING_HEADERS];
    let mut l = 0;
    while l < lists.len() {
        let mut i = 0;
        while i < lists[l].len() {
            let first = lists[l][i].as_bytes()[0];
            table[first.to_ascii_lowercase() as usize] = true;
            table[first.to_ascii_uppercase() as usize] = true;
            i += 1;
        }
        l += 1;
    }
    table
};

fn may_be_listed(name: &str) -> bool {
    name.as_bytes()
        .first()
        .is_some_and(|&b| FIRST_BYTES[usize::from(b)])
}

/// Header names compared the way the lists above are: ASCII case ignored, `_` taken for `-`.
/// Byte by byte, without a lowercased copy: every request's every header goes through here.
fn same_name(a: &str, b: &str) -> bool {
    a.len() == b.len() && starts_with_name(a, b)
}

fn starts_with_name(name: &str, prefix: &str) -> bool {
    let fold = |b: u8| {
        if b == b'_' {
            b'-'
        } else {
            b.to_ascii_lowercase()
        }
    };
    name.as_bytes().get(..prefix.len()).is_some_and(|head| {
        head.iter()
            .zip(prefix.bytes())
            .all(|(&x, y)| fold(x) == fold(y))
    })
}

/// `X-Forwarded-Host`, `-Proto`, `-For` and `Forwarded` (RFC 7239) for the request as it
/// really came: its URL, and the client address Cloudflare saw (`CF-Connecting-IP`, which the
/// edge always sets itself), when it is an IP address.
pub fn forwarding_headers(url: &HttpUrl, client_ip: Option<&str>) -> Vec<(&'static str, String)> {
    let host = match url.port() {
        Some(port) => format!("{}:{port}", url.host()),
        None => url.host().to_owned(),
    };
    let proto = url.scheme();
    // What the standard library reads as IPv4 is already in its one textual form (four
    // decimal numbers, no leading zeros); only IPv6 is written again (RFC 5952).
    let ip = client_ip
        .map(str::trim)
        .and_then(|text| match text.parse::<IpAddr>() {
            Ok(IpAddr::V4(_)) => Some((text.to_owned(), false)),
            Ok(IpAddr::V6(v6)) => Some((v6.to_string(), true)),
            Err(_) => None,
        });
    let mut forwarded = String::with_capacity(host.len() + 48);
    if let Some((ip, v6)) = &ip {
        let (open, close) = if *v6 { ("\"[", "]\"") } else { ("", "") };
        for part in ["for=", open, ip, close, ";"] {
            forwarded.push_str(part);
        }
    }
    for part in ["host=\"", &host, "\";proto=", proto] {
        forwarded.push_str(part);
    }
    let mut out = Vec::with_capacity(4);
    out.push(("X-Forwarded-Host", host));
    out.push(("X-Forwarded-Proto", proto.to_owned()));
    if let Some((ip, _)) = ip {
        out.push(("X-Forwarded-For", ip));
    }
    out.push(("Forwarded", forwarded));
    out
}

/// Whether a query parameter named `name` (decoded) reaches an origin as `_method`, the method
/// override Laravel and Symfony read from the query (Express's method-override, when set up
/// so): PHP drops a name's leading spaces and turns ` `, `.` and an unclosed `[` into `_`
/// (`.method`, `+_method`, `[method` all arrive as `_method`), and `_method[x]` is `_method`.
/// Matched in any case.
pub fn overrides_method(name: &str) -> bool {
    const NAME: &[u8] = b"_method";
    let name = name.trim_start_matches(' ');
    let array_base = name.split_once('[').map_or(name, |(base, _)| base);
    let mangled = name.len() == NAME.len()
        && name.bytes().zip(NAME).all(|(b, want)| {
            let b = if matches!(b, b' ' | b'.' | b'[') {
                b'_'
            } else {
                b
            };
            b.eq_ignore_ascii_case(want)
        });
    mangled || array_base.eq_ignore_ascii_case("_method")
}

pub fn is_identity_header(name: &str) -> bool {
    may_be_listed(name)
        && (IDENTITY_HEADERS.iter().any(|h| same_name(name, h))
            || IDENTITY_PREFIXES.iter().any(|p| starts_with_name(name, p)))
}

/// The request headers an origin receives, as changes to the request's own: the names it
/// does not get (every value of each), then what the gate adds after what the request keeps.
/// The runtime passes the request's headers on itself (glue.js `forward`), so what goes on
/// unchanged (most of a browser's headers, and never the session cookie) is not copied, and
/// the work follows what changes, not the size of the request.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct OriginHeaders {
    remove: Vec<String>,
    add: Vec<(String, String)>,
}

impl OriginHeaders {
    /// The request's headers without identity headers (the built-in list and `also_strip`, in
    /// any spelling), without routing headers, and without our cookies.
    pub fn strip(incoming: &Headers, jar: &CookieJar, also_strip: &[&str]) -> Self {
        let mut out = Self::default();
        let mut ours = false;
        for (name, value) in incoming.iter() {
            if name.eq_ignore_ascii_case("Cookie") {
                ours |= cookie_header_holds(value, |n| jar.is_ours(n));
            } else if is_identity_header(name)
                || is_routing_header(name)
                || also_strip.iter().any(|n| same_name(name, n))
            {
                // The runtime gives each name once: no need to look for it among the others.
                out.remove.push(name.to_owned());
            }
        }
        // A Cookie header that holds one of ours goes on without them, or not at all.
        if ours {
            out.drop_name("Cookie");
            let values = incoming
                .iter()
                .filter(|(n, _)| n.eq_ignore_ascii_case("Cookie"));
            for (_, value) in values {
                if let Some(kept) = filter_cookie_header(value, |n| jar.is_ours(n)) {
                    out.add.push(("Cookie".to_owned(), kept));
                }
            }
        }
        out
    }

    /// `name` with one value, whatever the request had.
    pub fn set(&mut self, incoming: &Headers, name: &str, value: impl Into<String>) {
        self.remove(incoming, name);
        self.add.push((name.to_owned(), value.into()));
    }

    /// No value of `name`, whatever the request had.
    pub fn remove(&mut self, incoming: &Headers, name: &str) {
        self.add.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
        if incoming.get(name).is_some() {
            self.drop_name(name);
        }
    }

    fn drop_name(&mut self, name: &str) {
        if !self.drops(name) {
            self.remove.push(name.to_owned());
        }
    }

    fn drops(&self, name: &str) -> bool {
        self.remove.iter().any(|r| r.eq_ignore_ascii_case(name))
    }

    /// The names of the request's own headers the origin does not get.
    pub fn removed(&self) -> impl Iterator<Item = &str> {
        self.remove.iter().map(String::as_str)
    }

    /// What the gate adds, in order.
    pub fn added(&self) -> impl Iterator<Item = (&str, &str)> {
        self.add.iter().map(|(n, v)| (n.as_str(), v.as_str()))
    }

    /// The headers the origin receives for a request with `incoming`: what the runtime does
    /// with the edits (glue.js `forward`), for tests to read.
    #[cfg(test)]
    pub fn apply(&self, incoming: &Headers) -> Headers {
        let mut out = Headers::new();
        for (name, value) in incoming.iter().filter(|(n, _)| !self.drops(n)) {
            out.append(name, value);
        }
        for (name, value) in self.added() {
            out.append(name, value);
        }
        out
    }
}

/// A header value from identity data: printable ASCII kept, anything else percent-encoded
/// (UTF-8), so a name or group with CR/LF or non-Latin text can neither inject a header nor
/// make the runtime reject the request.
pub fn header_value(s: &str) -> String {
    let plain = |b: u8| (b' '..=b'~').contains(&b) && b != b'%';
    if s.bytes().all(plain) {
        return s.to_owned();
    }
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if c.is_ascii() && plain(c as u8) {
            out.push(c);
        } else {
            let mut buf = [0u8; 4];
            for b in c.encode_utf8(&mut buf).bytes() {
                out.push_str(&format!("%{b:02X}"));
            }
        }
    }
    out
}

/// `Cache-Control` for protected content: `private`, keeping the origin's freshness and
/// revalidation directives, dropping `public` and `s-maxage`.
pub fn private_cache_control(upstream: Option<&str>) -> String {
    const DROPPED: [&str; 4] = ["public", "private", "s-maxage", "proxy-revalidate"];
    let mut out = String::from("private");
    for d in upstream
        .unwrap_or("")
        .split(',')
        .map(str::trim)
        .filter(|d| !d.is_empty())
    {
        let name = d.split('=').next().unwrap_or("").trim();
        if DROPPED.iter().any(|n| name.eq_ignore_ascii_case(n)) {
            continue;
        }
        out.push_str(", ");
        out.push_str(d);
    }
    out
}

/// `Vary` with `Cookie` added once.
pub fn vary_with_cookie(upstream: Option<&str>) -> String {
    match upstream.map(str::trim).filter(|v| !v.is_empty()) {
        None => "Cookie".to_owned(),
        Some(v)
            if v == "*"
                || v.split(',')
                    .any(|p| p.trim().eq_ignore_ascii_case("cookie")) =>
        {
            v.to_owned()
        }
        Some(v) => format!("{v}, Cookie"),
    }
}

/// Headers a protected response must not keep: a CDN-specific one would let Cloudflare's
/// cache store it regardless of `Cache-Control`.
pub const CDN_CACHE_HEADERS: [&str; 3] = [
    "CDN-Cache-Control",
    "Cloudflare-CDN-Cache-Control",
    "Surrogate-Control",
];

/// The caching headers a protected response leaves with, from the origin's two.
pub fn protected_caching(
    cache_control: Option<&str>,
    vary: Option<&str>,
) -> [(&'static str, String); 2] {
    [
        ("Cache-Control", private_cache_control(cache_control)),
        ("Vary", vary_with_cookie(vary)),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request_headers_for_origin(h: &Headers, jar: &CookieJar, also: &[&str]) -> Headers {
        OriginHeaders::strip(h, jar, also).apply(h)
    }

    #[test]
    fn identity_headers_in_every_spelling_are_stripped() {
        let jar = CookieJar::new(true);
        let h = Headers::from([
            ("X-Auth-Request-User", "mallory"),
            ("x-auth-request-email", "m@evil"),
            ("X_Auth_Request_Groups", "admins"),
            ("X-FORWARDED-USER", "mallory"),
            ("x_forwarded_email", "m"),
            ("X-Forwarded-Preferred-Username", "m"),
            ("X-Forwarded-Groups", "g"),
            ("X-Portcullis-Assertion", "forged"),
            ("Accept", "text/html"),
            ("X-Forwarded-For", "1.2.3.4"),
            // Other gates' families, which origins set up for them read.
            ("Remote-Groups", "admins"),
            ("remote_email", "m@evil"),
            ("X-Remote-User", "m"),
            ("X-WEBAUTH-ROLE", "Admin"),
            ("X-MS-CLIENT-PRINCIPAL-NAME", "m"),
            (
                "X-Goog-Authenticated-User-Email",
                "accounts.google.com:m@evil",
            ),
            ("x-amzn-oidc-identity", "m"),
            ("Cf-Access-Authenticated-User-Email", "m@evil"),
            // Client addresses some frameworks read.
            ("Client-IP", "10.0.0.1"),
            ("X-Forwarded", "for=10.0.0.1"),
            ("Fastly-Client-IP", "10.0.0.1"),
        ]);
        let out = request_headers_for_origin(&h, &jar, &[]);
        let names: Vec<&str> = out.iter().map(|(n, _)| n).collect();
        // X-Forwarded-For is set again by the gate from the real request.
        assert_eq!(names, vec!["Accept"]);
    }

    #[test]
    fn configured_identity_headers_are_stripped_too() {
        let jar = CookieJar::new(true);
        let h = Headers::from([("X-Email", "m@evil"), ("x_user", "m"), ("X-Other", "ok")]);
        let out = request_headers_for_origin(&h, &jar, &["X-Email", "X-User"]);
        let names: Vec<&str> = out.iter().map(|(n, _)| n).collect();
        assert_eq!(names, vec!["X-Other"]);
    }

    #[test]
    fn identity_values_cannot_inject_headers() {
        assert_eq!(header_value("alice@example.com"), "alice@example.com");
        assert_eq!(header_value("a\r\nX-Evil: 1"), "a%0D%0AX-Evil: 1");
        assert_eq!(header_value("José 日"), "Jos%C3%A9 %E6%97%A5");
        assert_eq!(header_value("100%"), "100%25");
    }

    #[test]
    fn our_cookies_never_reach_the_origin() {
        let jar = CookieJar::new(false);
        let h = Headers::from([(
            "Cookie",
            "portcullis=sealed; theme=dark; portcullis-tx-abc=t",
        )]);
        assert_eq!(
            request_headers_for_origin(&h, &jar, &[]).get("Cookie"),
            Some("theme=dark")
        );
        let only_ours = Headers::from([("Cookie", "portcullis=sealed")]);
        assert_eq!(
            request_headers_for_origin(&only_ours, &jar, &[]).get("Cookie"),
            None
        );
    }

    #[test]
    fn cache_control_becomes_private_and_keeps_max_age() {
        assert_eq!(private_cache_control(None), "private");
        assert_eq!(
            private_cache_control(Some("public, max-age=600, s-maxage=3600")),
            "private, max-age=600"
        );
        assert_eq!(
            private_cache_control(Some("max-age=60, must-revalidate")),
            "private, max-age=60, must-revalidate"
        );
        assert_eq!(private_cache_control(Some("no-store")), "private, no-store");
        assert_eq!(private_cache_control(Some("PUBLIC,S-MAXAGE=1")), "private");
    }

    #[test]
    fn vary_gets_cookie_once() {
        assert_eq!(vary_with_cookie(None), "Cookie");
        assert_eq!(
            vary_with_cookie(Some("Accept-Encoding")),
            "Accept-Encoding, Cookie"
        );
        assert_eq!(
            vary_with_cookie(Some("accept-encoding, cookie")),
            "accept-encoding, cookie"
        );
        assert_eq!(vary_with_cookie(Some("*")), "*");
    }

    #[test]
    fn routing_headers_are_the_gates_not_the_clients() {
        let jar = CookieJar::new(true);
        let incoming = Headers::from([
            ("X-HTTP-Method-Override", "GET"),
            ("x-http-method", "GET"),
            ("X-Method-Override", "GET"),
            ("X-Original-URL", "/admin"),
            ("X_Rewrite_URL", "/admin"),
            ("X-Forwarded-Host", "evil.example"),
            ("X-Forwarded-For", "10.0.0.1"),
            ("Forwarded", "for=10.0.0.1;host=evil.example"),
            ("X-Real-IP", "10.0.0.1"),
            ("X-Forwarded-Uri", "/admin"),
            ("x-envoy-original-path", "/admin"),
            ("X-Host", "evil.example"),
            ("True-Client-IP", "10.0.0.1"),
            ("Accept", "text/html"),
        ]);
        let out = request_headers_for_origin(&incoming, &jar, &[]);
        let names: Vec<&str> = out.iter().map(|(n, _)| n).collect();
        assert_eq!(names, vec!["Accept"]);
    }

    proptest::proptest! {
        /// `forwarding_headers` passes an IPv4 address on as the client sent it: that is only
        /// right if whatever the standard library reads as IPv4 is already in its own form.
        #[test]
        fn fuzz_an_ipv4_address_read_is_in_its_one_form(
            text in "(0{0,2}[0-9]{1,3}\\.){3}0{0,2}[0-9]{1,3}|[0-9.x]{1,20}"
        ) {
            if let Ok(ip) = text.parse::<std::net::Ipv4Addr>() {
                proptest::prop_assert_eq!(ip.to_string(), text);
            }
        }
    }

    #[test]
    fn ipv4_spellings_with_leading_zeros_are_not_addresses() {
        for text in [
            "01.2.3.4",
            "1.2.3.04",
            "0x7f.0.0.1",
            "127.1",
            "1.2.3.4.",
            " 1.2.3.4",
        ] {
            assert!(text.parse::<std::net::Ipv4Addr>().is_err(), "{text}");
        }
        let url = HttpUrl::parse("https://app.example/").unwrap();
        let h: std::collections::HashMap<_, _> = forwarding_headers(&url, Some(" 10.0.0.1 "))
            .into_iter()
            .collect();
        assert_eq!(h["X-Forwarded-For"], "10.0.0.1");
        assert_eq!(
            h["Forwarded"],
            "for=10.0.0.1;host=\"app.example\";proto=https"
        );
        let h: std::collections::HashMap<_, _> =
            forwarding_headers(&url, Some("2001:0db8:0:0:0:0:0:1"))
                .into_iter()
                .collect();
        assert_eq!(h["X-Forwarded-For"], "2001:db8::1");
    }

    #[test]
    fn every_listed_name_is_caught_in_every_spelling() {
        let spellings = |n: &str| {
            [
                n.to_owned(),
                n.to_ascii_uppercase(),
                n.replace('-', "_"),
                n.to_ascii_uppercase().replace('-', "_"),
            ]
        };
        for name in IDENTITY_HEADERS {
            for s in spellings(name) {
                assert!(is_identity_header(&s), "{s}");
            }
        }
        for prefix in IDENTITY_PREFIXES {
            for s in spellings(&format!("{prefix}anything")) {
                assert!(is_identity_header(&s), "{s}");
            }
        }
        for name in ROUTING_HEADERS {
            for s in spellings(name) {
                assert!(is_routing_header(&s), "{s}");
            }
        }
        for other in [
            "accept",
            "Cookie",
            "host",
            "user-agent",
            "sec-fetch-mode",
            "",
            "é",
        ] {
            assert!(
                !is_identity_header(other) && !is_routing_header(other),
                "{other}"
            );
        }
    }

    #[test]
    fn header_names_compare_in_any_case_and_with_underscores() {
        assert!(same_name("X_Forwarded-FOR", "x-forwarded-for"));
        assert!(!same_name("x-forwarded-fo", "x-forwarded-for"));
        assert!(starts_with_name("X_AUTH_REQUEST_USER", "x-auth-request-"));
        assert!(!starts_with_name("x-auth", "x-auth-request-"));
        // Not ASCII: compared as bytes, never sliced inside a character.
        assert!(!starts_with_name("x-auth-requést-user", "x-auth-request-"));
        assert!(!is_identity_header("é"));
    }

    #[test]
    fn forwarding_headers_describe_the_real_request() {
        let url = HttpUrl::parse("https://app.example.com:8443/x?y").unwrap();
        let h: std::collections::HashMap<_, _> = forwarding_headers(&url, Some("2001:db8::1"))
            .into_iter()
            .collect();
        assert_eq!(h["X-Forwarded-Host"], "app.example.com:8443");
        assert_eq!(h["X-Forwarded-Proto"], "https");
        assert_eq!(h["X-Forwarded-For"], "2001:db8::1");
        assert_eq!(
            h["Forwarded"],
            "for=\"[2001:db8::1]\";host=\"app.example.com:8443\";proto=https"
        );
        let plain = HttpUrl::parse("http://127.0.0.1:8787/").unwrap();
        let h: std::collections::HashMap<_, _> =
            forwarding_headers(&plain, Some("not an ip, 1.2.3.4"))
                .into_iter()
                .collect();
        assert!(
            !h.contains_key("X-Forwarded-For"),
            "only a real address is passed"
        );
        assert_eq!(h["Forwarded"], "host=\"127.0.0.1:8787\";proto=http");
    }

    #[test]
    fn protected_response_caching_is_private_and_varies_on_cookie() {
        let edits = protected_caching(Some("public, max-age=300"), None);
        let h: std::collections::HashMap<_, _> = edits.into_iter().collect();
        assert_eq!(h["Cache-Control"], "private, max-age=300");
        assert_eq!(h["Vary"], "Cookie");
        assert!(CDN_CACHE_HEADERS.contains(&"CDN-Cache-Control"));
    }

    #[test]
    fn every_spelling_php_reads_as_method_override_is_one() {
        let yes = [
            "_method",
            "_METHOD",
            ".method",
            " _method",
            "  .method",
            "[method",
            "_method[]",
            "_method[x]",
        ];
        for name in yes {
            assert!(overrides_method(name), "{name:?}");
        }
        let no = [
            "method",
            " method",
            "_method.",
            "_method ",
            "x_method",
            "_methods",
            "_meth od",
            "a[_method]",
            "",
        ];
        for name in no {
            assert!(!overrides_method(name), "{name:?}");
        }
    }
}
