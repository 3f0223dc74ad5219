//! What crosses between the shell's two halves (src/runtime/shell.rs and src/runtime/glue.js):
//! lists as one string with `\n` between items, so a request's head or a set of header edits
//! costs one crossing instead of one per header. The Fetch standard forbids CR, LF and NUL in
//! header names and values; an item that holds one anyway is refused here, never sent on,
//! because it would split into items of its own on the other side.

use super::upstream::{protected_caching, OriginHeaders, CDN_CACHE_HEADERS};
use super::Headers;

const LF: char = '\n';

/// An inbound request's method, URL and headers, as `requestHead` (glue.js) sends them.
#[derive(Debug, PartialEq)]
pub struct Head<'a> {
    pub method: &'a str,
    pub url: &'a str,
    pub headers: Headers,
}

/// Why a list could not cross.
#[derive(Debug, PartialEq)]
pub enum WireError {
    /// The head had no URL, or a header name without its value.
    MalformedHead,
    /// A name or value holds CR, LF or NUL.
    LineBreak(String),
}

impl std::fmt::Display for WireError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::MalformedHead => f.write_str("malformed request head from the runtime"),
            Self::LineBreak(name) => write!(f, "header {name:?} holds a line break or NUL"),
        }
    }
}

/// `METHOD\nURL` then `\nname\nvalue` per header.
pub fn parse_head(s: &str) -> Result<Head<'_>, WireError> {
    let mut items = s.split(LF);
    let method = items.next().ok_or(WireError::MalformedHead)?;
    let url = items.next().ok_or(WireError::MalformedHead)?;
    Ok(Head {
        method,
        url,
        headers: read_pairs(items)?,
    })
}

/// `name\nvalue\n...` as `send` (glue.js) gives an answer's headers; empty for none.
pub fn parse_pairs(s: &str) -> Result<Headers, WireError> {
    if s.is_empty() {
        return Ok(Headers::new());
    }
    read_pairs(s.split(LF))
}

fn read_pairs<'a>(mut items: impl Iterator<Item = &'a str>) -> Result<Headers, WireError> {
    let mut headers = Headers::new();
    while let Some(name) = items.next() {
        let value = items.next().ok_or(WireError::MalformedHead)?;
        headers.append(name, value);
    }
    Ok(headers)
}

fn breaks(s: &str) -> bool {
    // Bytes, not chars: the three are ASCII, and UTF-8 never uses their bytes inside a
    // character. (A `[char; 3]` pattern decodes every character first.)
    s.bytes().any(|b| matches!(b, b'\n' | b'\r' | 0))
}

fn push(out: &mut String, item: &str) {
    if !out.is_empty() {
        out.push(LF);
    }
    out.push_str(item);
}

/// `name\nvalue\n...`, or the name of the first pair that cannot cross.
pub fn pairs<'a>(list: impl IntoIterator<Item = (&'a str, &'a str)>) -> Result<String, WireError> {
    let mut out = String::new();
    for (name, value) in list {
        if breaks(name) || breaks(value) {
            return Err(WireError::LineBreak(name.to_owned()));
        }
        push(&mut out, name);
        push_value(&mut out, value);
    }
    Ok(out)
}

/// A value goes after its name even when empty (`push` would drop the separator).
fn push_value(out: &mut String, value: &str) {
    out.push(LF);
    out.push_str(value);
}

/// Items one per line (cookies, header names).
pub fn items<'a>(list: impl IntoIterator<Item = &'a str>) -> Result<String, WireError> {
    let mut out = String::new();
    for item in list {
        if breaks(item) || item.is_empty() {
            return Err(WireError::LineBreak(item.to_owned()));
        }
        push(&mut out, item);
    }
    Ok(out)
}

/// What `forward` (glue.js) is told, as one string so that it is one crossing: the target
/// URL, the names to delete, the pairs to append and the cookies to set, separated by NUL.
/// NUL cannot occur in any of them (a URL percent-encodes it; `items` and `pairs` refuse it).
pub fn forward_plan(
    target: &str,
    headers: Option<&OriginHeaders>,
    cookies: &[String],
) -> Result<String, WireError> {
    if target.contains('\0') {
        return Err(WireError::LineBreak("target URL".into()));
    }
    let (remove, append) = match headers {
        Some(h) => (items(h.removed())?, pairs(h.added())?),
        None => (String::new(), String::new()),
    };
    let cookies = items(cookies.iter().map(String::as_str))?;
    let mut plan =
        String::with_capacity(target.len() + remove.len() + append.len() + cookies.len() + 3);
    for (i, part) in [target, &remove, &append, &cookies].into_iter().enumerate() {
        if i > 0 {
            plan.push('\0');
        }
        plan.push_str(part);
    }
    Ok(plan)
}

/// The edits a protected response gets (glue.js `forward`): its caching headers made private
/// and the CDN-only ones removed (an empty value removes).
pub fn protected_response_edits(cache_control: Option<&str>, vary: Option<&str>) -> String {
    let [(cc_name, cc), (vary_name, vary)] = protected_caching(cache_control, vary);
    let mut out = String::new();
    for (name, value) in [(cc_name, cc.as_str()), (vary_name, vary.as_str())]
        .into_iter()
        .chain(CDN_CACHE_HEADERS.iter().map(|n| (*n, "")))
    {
        // The runtime's own values hold no line break; one that did is dropped, not split.
        if breaks(value) {
            continue;
        }
        push(&mut out, name);
        push_value(&mut out, value);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::cookies::CookieJar;

    #[test]
    fn a_head_parses_with_every_header_and_empty_values() {
        let h = parse_head("GET\nhttps://a.example/p?q=1\ncookie\nx=1\nx-empty\n\naccept\n*/*")
            .unwrap();
        assert_eq!(h.method, "GET");
        assert_eq!(h.url, "https://a.example/p?q=1");
        assert_eq!(
            h.headers.iter().collect::<Vec<_>>(),
            [("cookie", "x=1"), ("x-empty", ""), ("accept", "*/*")]
        );
        assert_eq!(
            parse_head("GET\nhttps://a/").unwrap().headers,
            Headers::new()
        );
    }

    #[test]
    fn a_malformed_head_is_refused() {
        assert_eq!(parse_head("GET"), Err(WireError::MalformedHead));
        assert_eq!(
            parse_head("GET\nhttps://a/\nname-without-value"),
            Err(WireError::MalformedHead)
        );
    }

    #[test]
    fn an_answers_headers_read_back_in_order() {
        let h = parse_pairs(
            "content-type\napplication/json\nset-cookie\na=1\nset-cookie\nb=2\nx-empty\n",
        )
        .unwrap();
        assert_eq!(h.get("Content-Type"), Some("application/json"));
        let cookies: Vec<&str> = h
            .iter()
            .filter(|(n, _)| *n == "set-cookie")
            .map(|(_, v)| v)
            .collect();
        assert_eq!(cookies, ["a=1", "b=2"]);
        assert_eq!(h.get("x-empty"), Some(""));
        assert_eq!(parse_pairs("").unwrap(), Headers::new());
        assert_eq!(parse_pairs("lonely"), Err(WireError::MalformedHead));
    }

    #[test]
    fn pairs_round_trip_through_the_head_format() {
        let list = [("a", "1"), ("b", ""), ("c", "x, y")];
        let s = pairs(list).unwrap();
        assert_eq!(s, "a\n1\nb\n\nc\nx, y");
        let head = format!("GET\nu\n{s}");
        let back = parse_head(&head).unwrap();
        assert_eq!(back.headers.iter().collect::<Vec<_>>(), list);
        assert_eq!(pairs([]).unwrap(), "");
    }

    #[test]
    fn a_line_break_in_any_item_is_refused_not_split() {
        for bad in ["a\nX-Admin", "a\rb", "a\0b"] {
            assert!(matches!(
                pairs([("X-User", bad)]),
                Err(WireError::LineBreak(_))
            ));
            assert!(matches!(pairs([(bad, "v")]), Err(WireError::LineBreak(_))));
            assert!(matches!(items([bad]), Err(WireError::LineBreak(_))));
        }
        assert!(matches!(items([""]), Err(WireError::LineBreak(_))));
    }

    /// What glue.js does with a plan's header parts, on the runtime's copy of `from`.
    fn apply(from: &Headers, plan: &str) -> Vec<(String, String)> {
        let parts: Vec<&str> = plan.split('\0').collect();
        let mut out: Vec<(String, String)> = from
            .iter()
            .map(|(n, v)| (n.to_owned(), v.to_owned()))
            .collect();
        for name in parts[1].split('\n').filter(|n| !n.is_empty()) {
            out.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
        }
        let added: Vec<&str> = parts[2].split('\n').collect();
        for pair in added.chunks(2).filter(|p| p.len() == 2) {
            out.push((pair[0].to_owned(), pair[1].to_owned()));
        }
        out
    }

    fn listed(h: &Headers) -> Vec<(String, String)> {
        h.iter()
            .map(|(n, v)| (n.to_owned(), v.to_owned()))
            .collect()
    }

    #[test]
    fn a_plan_deletes_only_what_does_not_go_on_unchanged() {
        let jar = CookieJar::new(false);
        let from = Headers::from([
            ("cookie", "portcullis=x; theme=dark"),
            ("x-auth-request-user", "mallory"),
            ("accept", "*/*"),
        ]);
        let mut to = OriginHeaders::strip(&from, &jar, &[]);
        to.set(&from, "X-Auth-Request-User", "alice");
        to.set(&from, "X-Auth-Request-Groups", "a");
        let plan = forward_plan("https://o/", Some(&to), &[]).unwrap();
        // Accept goes on as it came; only the two names that change are deleted.
        assert_eq!(
            plan,
            "https://o/\0x-auth-request-user\nCookie\0Cookie\ntheme=dark\nX-Auth-Request-User\nalice\nX-Auth-Request-Groups\na\0"
        );
        assert_eq!(apply(&from, &plan), listed(&to.apply(&from)));
        let untouched = Headers::from([("cookie", "theme=dark"), ("accept", "*/*")]);
        let none = OriginHeaders::strip(&untouched, &jar, &[]);
        assert_eq!(
            forward_plan("https://o/", Some(&none), &[]).unwrap(),
            "https://o/\0\0\0"
        );
    }

    proptest::proptest! {
        /// Whatever the request's headers and the gate's changes, the runtime ends with exactly
        /// the headers the gate meant, and none the client sent under a name the gate sets.
        #[test]
        fn fuzz_a_plan_gives_exactly_the_outbound_headers(
            from in proptest::collection::vec(
                ("[a-cA-C_-]{1,2}|x-auth-request-user|Cookie", "[xy=;]{0,4}|portcullis=s; [xy]=1"),
                0..8,
            ),
            set in proptest::collection::vec(("[a-dA-D]{1,2}|X-Auth-Request-User", "[xyz]{0,2}"), 0..5),
            removed in proptest::collection::vec("[a-dA-D]{1,2}", 0..3),
        ) {
            let jar = CookieJar::new(false);
            let mut f = Headers::new();
            for (n, v) in &from {
                f.append(n.as_str(), v.as_str());
            }
            let mut to = OriginHeaders::strip(&f, &jar, &[]);
            for (n, v) in &set {
                to.set(&f, n, v.as_str());
            }
            for n in &removed {
                to.remove(&f, n);
            }
            let plan = forward_plan("https://o/", Some(&to), &[]).unwrap();
            let out = apply(&f, &plan);
            proptest::prop_assert_eq!(&out, &listed(&to.apply(&f)));
            let values = |name: &str| -> Vec<String> {
                out.iter()
                    .filter(|(m, _)| m.eq_ignore_ascii_case(name))
                    .map(|(_, v)| v.clone())
                    .collect()
            };
            for (n, _) in &set {
                if removed.iter().any(|r| r.eq_ignore_ascii_case(n)) {
                    continue;
                }
                let last = set.iter().rev().find(|(m, _)| m.eq_ignore_ascii_case(n));
                proptest::prop_assert_eq!(values(n), vec![last.unwrap().1.clone()]);
            }
            for n in &removed {
                proptest::prop_assert!(values(n).is_empty());
            }
            // The session cookie never goes on; the client's own cookies do.
            for cookie in values("Cookie") {
                proptest::prop_assert!(!cookie.contains("portcullis="), "{}", cookie);
            }
            if !set.iter().any(|(n, _)| n.eq_ignore_ascii_case("x-auth-request-user")) {
                proptest::prop_assert!(values("x-auth-request-user").is_empty());
            }
        }
    }

    #[test]
    fn a_forward_plan_is_four_parts_and_refuses_nul() {
        let from = Headers::from([("cookie", "portcullis=x")]);
        let mut edits = OriginHeaders::strip(&from, &CookieJar::new(false), &[]);
        edits.set(&from, "X-Auth-Request-User", "alice");
        let plan = forward_plan(
            "https://origin.example/p?q",
            Some(&edits),
            &["a=1; Path=/".to_owned(), "b=2".to_owned()],
        )
        .unwrap();
        assert_eq!(
            plan.split('\0').collect::<Vec<_>>(),
            [
                "https://origin.example/p?q",
                "Cookie",
                "X-Auth-Request-User\nalice",
                "a=1; Path=/\nb=2"
            ]
        );
        assert_eq!(
            forward_plan("https://o/", None, &[]).unwrap(),
            "https://o/\0\0\0"
        );
        assert!(forward_plan("https://o/\0", None, &[]).is_err());
        assert!(forward_plan("https://o/", None, &["a=1\0".to_owned()]).is_err());
    }

    #[test]
    fn an_identity_value_with_a_line_break_never_crosses() {
        let mut to = OriginHeaders::default();
        to.set(
            &Headers::new(),
            "X-Auth-Request-Email",
            "a@b\nX-Admin\ntrue",
        );
        assert!(forward_plan("https://o/", Some(&to), &[]).is_err());
    }

    #[test]
    fn protected_responses_become_private_and_lose_cdn_headers() {
        assert_eq!(
            protected_response_edits(Some("public, max-age=60"), None),
            "Cache-Control\nprivate, max-age=60\nVary\nCookie\nCDN-Cache-Control\n\nCloudflare-CDN-Cache-Control\n\nSurrogate-Control\n"
        );
    }
}
