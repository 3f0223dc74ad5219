//! What crosses between the shell's two halves (src/runtime/shell.rs and src/runtime/glue.js):
//! lists as one string with `\n` between items, so a request's head or a set of header edits
//! costs one crossing instead of one per header. The Fetch standard forbids CR, LF and NUL in
//! header names and values; an item that holds one anyway is refused here, never sent on,
//! because it would split into items of its own on the other side.

use super::upstream::{protected_caching, CDN_CACHE_HEADERS};
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

/// The edits that turn the inbound headers `from` into the outbound `to`, for glue.js, which
/// applies them to the runtime's own copy of the request's headers: names to delete (every
/// value of each), then pairs to append.
#[derive(Debug, Default, PartialEq)]
pub struct ForwardEdits {
    pub remove: String,
    pub append: String,
}

/// The gate builds `to` from `from` by removing entries and appending others
/// ([`Headers::set`] removes and appends), so `to` is what `from` keeps, in order, then what
/// was added: one walk finds both, and only the names that do not go on unchanged are deleted
/// (each delete is a call into the runtime). This holds when `from` has each name once, as
/// the runtime gives a request's headers; otherwise every name is deleted and all of `to`
/// appended. Either way, applying the edits to `from` gives exactly `to`.
pub fn forward_edits(from: &Headers, to: &Headers) -> Result<ForwardEdits, WireError> {
    let once = from.iter().enumerate().all(|(i, (name, _))| {
        from.iter()
            .skip(i + 1)
            .all(|(other, _)| !other.eq_ignore_ascii_case(name))
    });
    let mut rest = to.iter().peekable();
    let mut removed: Vec<&str> = Vec::new();
    for entry in from.iter() {
        if once && rest.peek() == Some(&entry) {
            rest.next();
        } else {
            removed.push(entry.0);
        }
    }
    Ok(ForwardEdits {
        remove: items(removed)?,
        append: pairs(rest)?,
    })
}

/// What `forward` (glue.js) is told, as one string so that it is one crossing: the target
/// URL, the names to delete, the pairs to append and the cookies to set, separated by NUL.
/// NUL cannot occur in any of them (a URL percent-encodes it; `items` and `pairs` refuse it).
pub fn forward_plan(
    target: &str,
    edits: &ForwardEdits,
    cookies: &[String],
) -> Result<String, WireError> {
    if target.contains('\0') {
        return Err(WireError::LineBreak("target URL".into()));
    }
    let cookies = items(cookies.iter().map(String::as_str))?;
    let mut plan = String::with_capacity(
        target.len() + edits.remove.len() + edits.append.len() + cookies.len() + 3,
    );
    for (i, part) in [target, &edits.remove, &edits.append, &cookies]
        .into_iter()
        .enumerate()
    {
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

    /// What glue.js does with the edits, on the runtime's copy of `from`.
    fn apply(from: &Headers, edits: &ForwardEdits) -> Vec<(String, String)> {
        let mut out: Vec<(String, String)> = from
            .iter()
            .map(|(n, v)| (n.to_owned(), v.to_owned()))
            .collect();
        for name in edits.remove.split('\n').filter(|n| !n.is_empty()) {
            out.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
        }
        let added: Vec<&str> = edits.append.split('\n').collect();
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
    fn forward_edits_delete_only_what_does_not_go_on_unchanged() {
        let from = Headers::from([
            ("cookie", "portcullis=x; theme=dark"),
            ("x-auth-request-user", "mallory"),
            ("accept", "*/*"),
        ]);
        let mut to = from.clone();
        to.remove("x-auth-request-user");
        to.set("Cookie", "theme=dark");
        to.set("X-Auth-Request-User", "alice");
        to.append("X-Auth-Request-Groups", "a");
        to.append("X-Auth-Request-Groups", "b");
        let e = forward_edits(&from, &to).unwrap();
        // Groups is new: nothing to delete before appending it.
        assert_eq!(e.remove, "cookie\nx-auth-request-user");
        assert_eq!(
            e.append,
            "Cookie\ntheme=dark\nX-Auth-Request-User\nalice\nX-Auth-Request-Groups\na\nX-Auth-Request-Groups\nb"
        );
        assert_eq!(apply(&from, &e), listed(&to));
        let same = forward_edits(&from, &from).unwrap();
        assert_eq!(
            same,
            ForwardEdits {
                remove: String::new(),
                append: String::new()
            }
        );
    }

    #[test]
    fn a_request_with_a_name_twice_is_rebuilt_whole() {
        let from = Headers::from([("x-a", "1"), ("X-A", "2"), ("accept", "*/*")]);
        let to = Headers::from([("X-A", "2"), ("accept", "*/*")]);
        let e = forward_edits(&from, &to).unwrap();
        assert_eq!(e.remove, "x-a\nX-A\naccept");
        assert_eq!(apply(&from, &e), listed(&to));
    }

    proptest::proptest! {
        /// Whatever the two lists, glue.js ends with exactly `to`: from the gate's own kind of
        /// change (some entries dropped, some appended) and from any other.
        #[test]
        fn fuzz_forward_edits_give_exactly_the_outbound_headers(
            from in proptest::collection::vec(("[a-cA-C]{1,2}", "[xy]{0,2}"), 0..8),
            keep in proptest::collection::vec(proptest::bool::ANY, 8),
            added in proptest::collection::vec(("[a-dA-D]{1,2}", "[xyz]{0,2}"), 0..5),
            other in proptest::collection::vec(("[a-cA-C]{1,2}", "[xy]{0,2}"), 0..8),
        ) {
            let mut f = Headers::new();
            for (n, v) in &from {
                f.append(n.as_str(), v.as_str());
            }
            let mut derived = Headers::new();
            for (i, (n, v)) in f.iter().enumerate() {
                if keep[i] {
                    derived.append(n, v);
                }
            }
            for (n, v) in &added {
                derived.append(n.as_str(), v.as_str());
            }
            let mut unrelated = Headers::new();
            for (n, v) in &other {
                unrelated.append(n.as_str(), v.as_str());
            }
            for to in [derived, unrelated] {
                let e = forward_edits(&f, &to).unwrap();
                proptest::prop_assert_eq!(apply(&f, &e), listed(&to));
            }
        }
    }

    #[test]
    fn a_forward_plan_is_four_parts_and_refuses_nul() {
        let edits = ForwardEdits {
            remove: "cookie".into(),
            append: "X-Auth-Request-User\nalice".into(),
        };
        let plan = forward_plan(
            "https://origin.example/p?q",
            &edits,
            &["a=1; Path=/".to_owned(), "b=2".to_owned()],
        )
        .unwrap();
        assert_eq!(
            plan.split('\0').collect::<Vec<_>>(),
            [
                "https://origin.example/p?q",
                "cookie",
                "X-Auth-Request-User\nalice",
                "a=1; Path=/\nb=2"
            ]
        );
        let none = ForwardEdits {
            remove: String::new(),
            append: String::new(),
        };
        assert_eq!(
            forward_plan("https://o/", &none, &[]).unwrap(),
            "https://o/\0\0\0"
        );
        assert!(forward_plan("https://o/\0", &none, &[]).is_err());
        assert!(forward_plan("https://o/", &none, &["a=1\0".to_owned()]).is_err());
    }

    #[test]
    fn an_identity_value_with_a_line_break_never_crosses() {
        let from = Headers::new();
        let to = Headers::from([("X-Auth-Request-Email", "a@b\nX-Admin\ntrue")]);
        assert!(forward_edits(&from, &to).is_err());
    }

    #[test]
    fn protected_responses_become_private_and_lose_cdn_headers() {
        assert_eq!(
            protected_response_edits(Some("public, max-age=60"), None),
            "Cache-Control\nprivate, max-age=60\nVary\nCookie\nCDN-Cache-Control\n\nCloudflare-CDN-Cache-Control\n\nSurrogate-Control\n"
        );
    }
}
