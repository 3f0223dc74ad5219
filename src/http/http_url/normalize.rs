//! An http(s) URL as written by a person (configuration) or a provider (discovery, Graph's next
//! page), brought to the canonical form WHATWG's URL serializer writes, so that [`HttpUrl`]
//! can read it by splitting. On what it accepts the result is exactly the `url` crate's
//! serialization (a property test checks it); what a configured or discovered URL has no
//! business carrying is refused rather than repaired: userinfo, a fragment, backslashes,
//! controls, a host that is not plain ASCII, and the legacy IPv4 spellings (`127.1`, octal,
//! hex) that browsers would read as another address.
//!
//! [`HttpUrl`]: super::HttpUrl

use std::fmt::Write;

use percent_encoding::{utf8_percent_encode, AsciiSet, CONTROLS};

use super::UrlError;

/// The canonical form of `input`: scheme and host in lower case, no default port, at least
/// `/` as the path, dot segments (also percent-encoded ones) resolved, and what may not stand
/// bare in a path or query percent-encoded.
pub(super) fn normalize(input: &str) -> Result<String, UrlError> {
    // WHATWG drops leading and trailing C0 controls and spaces (a secret pasted with its
    // newline); anything else below 0x21 other than a space inside is refused.
    let input = input.trim_matches(|c: char| c <= ' ');
    if input.bytes().any(|b| (b < b' ' || b == 0x7f) || b == b'\\') {
        return Err(UrlError::Character);
    }
    let colon = input.find(':').ok_or(UrlError::Scheme)?;
    let scheme = input[..colon].to_ascii_lowercase();
    let default_port = match scheme.as_str() {
        "https" => 443,
        "http" => 80,
        _ => return Err(UrlError::Scheme),
    };
    let rest = input[colon + 1..]
        .strip_prefix("//")
        .filter(|r| !r.starts_with('/'))
        .ok_or(UrlError::Scheme)?;
    if rest.contains('#') {
        return Err(UrlError::Fragment);
    }
    let authority_len = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_len);
    if authority.contains('@') {
        return Err(UrlError::UserInfo);
    }
    let (host, port) = super::split_port(authority)?;
    let mut out = String::with_capacity(input.len() + 8);
    out.push_str(&scheme);
    out.push_str("://");
    write_host(&mut out, host)?;
    if let Some(port) = port.filter(|p| *p != default_port) {
        let _ = write!(out, ":{port}");
    }
    let (path, query) = match tail.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (tail, None),
    };
    write_path(&mut out, path);
    if let Some(q) = query {
        out.push('?');
        encode_into(&mut out, q, QUERY_SET);
    }
    Ok(out)
}

/// A path-absolute reference (`/a/../b?q`, as `return_to` carries), resolved as a browser
/// resolves it against any http(s) URL: the path and query in canonical form, the fragment
/// dropped, trailing spaces trimmed. `None` for what does not begin with exactly one `/`, or has a backslash or a
/// control character.
pub fn resolve_path_reference(reference: &str) -> Option<String> {
    let reference = reference.trim_end_matches(' ');
    let bytes = reference.as_bytes();
    if bytes.first() != Some(&b'/')
        || bytes.get(1) == Some(&b'/')
        || bytes.iter().any(|&b| b < b' ' || b == 0x7f || b == b'\\')
    {
        return None;
    }
    let reference = reference.split('#').next().unwrap_or_default();
    let (path, query) = match reference.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (reference, None),
    };
    let mut out = String::with_capacity(reference.len() + 8);
    write_path(&mut out, path);
    if let Some(q) = query {
        out.push('?');
        encode_into(&mut out, q, QUERY_SET);
    }
    Some(out)
}

/// A host as WHATWG serializes it, of the forms a configured URL may use: a name of ASCII
/// letters, digits, `-`, `_` and `.` (punycode for international names), an IPv4 address in
/// plain dotted-decimal, or an IPv6 address in brackets.
fn write_host(out: &mut String, host: &str) -> Result<(), UrlError> {
    if !host.is_ascii() {
        return Err(UrlError::NotAsciiHost);
    }
    if let Some(inner) = host.strip_prefix('[') {
        let inner = inner.strip_suffix(']').ok_or(UrlError::Host)?;
        write_ipv6(out, &parse_ipv6(inner)?);
        return Ok(());
    }
    let lower = host.to_ascii_lowercase();
    if lower.is_empty()
        || !lower.bytes().all(|b| {
            b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'-' | b'_' | b'.')
        })
    {
        return Err(UrlError::Host);
    }
    // WHATWG reads a host whose last label is a number as an IPv4 address, in forms
    // (`127.1`, `0x7f.1`, `0177.0.0.1`) that name another host than they seem to: only the
    // plain four-part form is taken.
    let last = lower.strip_suffix('.').unwrap_or(&lower);
    let last = last.rsplit('.').next().unwrap_or_default();
    let numeric = (!last.is_empty() && last.bytes().all(|b| b.is_ascii_digit()))
        || last
            .strip_prefix("0x")
            .is_some_and(|h| h.bytes().all(|b| b.is_ascii_hexdigit()));
    if numeric && !is_dotted_quad(&lower) {
        return Err(UrlError::Host);
    }
    out.push_str(&lower);
    Ok(())
}

fn is_dotted_quad(host: &str) -> bool {
    let parts: Vec<&str> = host.split('.').collect();
    parts.len() == 4
        && parts.iter().all(|p| {
            !p.is_empty()
                && p.len() <= 3
                && p.bytes().all(|b| b.is_ascii_digit())
                && (p.len() == 1 || !p.starts_with('0'))
                && p.parse::<u16>().is_ok_and(|n| n <= 255)
        })
}

/// The eight pieces of an IPv6 address. An embedded IPv4 part (`::ffff:1.2.3.4`) and zone
/// identifiers are refused: no configured URL needs them.
fn parse_ipv6(text: &str) -> Result<[u16; 8], UrlError> {
    if text.contains('.') {
        return Err(UrlError::Host);
    }
    let (head, tail) = match text.split_once("::") {
        Some((h, t)) => (h, Some(t)),
        None => (text, None),
    };
    let pieces = |s: &str| -> Result<Vec<u16>, UrlError> {
        if s.is_empty() {
            return Ok(Vec::new());
        }
        s.split(':')
            .map(|p| {
                if p.is_empty() || p.len() > 4 || !p.bytes().all(|b| b.is_ascii_hexdigit()) {
                    return Err(UrlError::Host);
                }
                u16::from_str_radix(p, 16).map_err(|_| UrlError::Host)
            })
            .collect()
    };
    let head = pieces(head)?;
    let mut address = [0u16; 8];
    match tail {
        None if head.len() == 8 => address.copy_from_slice(&head),
        None => return Err(UrlError::Host),
        Some(tail) => {
            let tail = pieces(tail)?;
            // `::` stands for at least one piece of zeros.
            if head.len() + tail.len() > 7 {
                return Err(UrlError::Host);
            }
            address[..head.len()].copy_from_slice(&head);
            address[8 - tail.len()..].copy_from_slice(&tail);
        }
    }
    Ok(address)
}

/// WHATWG's IPv6 serializer: lower-case hex without leading zeros, the first longest run of
/// two or more zero pieces written `::`.
fn write_ipv6(out: &mut String, address: &[u16; 8]) {
    let (mut best_start, mut best_len) = (8, 0);
    let mut i = 0;
    while i < 8 {
        if address[i] == 0 {
            let start = i;
            while i < 8 && address[i] == 0 {
                i += 1;
            }
            if i - start > best_len {
                (best_start, best_len) = (start, i - start);
            }
        } else {
            i += 1;
        }
    }
    if best_len < 2 {
        best_start = 8;
    }
    out.push('[');
    let mut i = 0;
    while i < 8 {
        if i == best_start {
            out.push_str(if i == 0 { "::" } else { ":" });
            i += best_len;
            continue;
        }
        let _ = write!(out, "{:x}", address[i]);
        if i < 7 {
            out.push(':');
        }
        i += 1;
    }
    out.push(']');
}

/// The path with dot segments resolved (`.`, `..` and their percent-encoded spellings, as
/// WHATWG reads them) and each segment percent-encoded; `/` when empty.
fn write_path(out: &mut String, path: &str) {
    let mut segments: Vec<&str> = Vec::new();
    let path = path.strip_prefix('/').unwrap_or(path);
    let parts: Vec<&str> = path.split('/').collect();
    for (i, segment) in parts.iter().enumerate() {
        let last = i + 1 == parts.len();
        if is_double_dot(segment) {
            segments.pop();
            if last {
                segments.push("");
            }
        } else if is_single_dot(segment) {
            if last {
                segments.push("");
            }
        } else {
            segments.push(segment);
        }
    }
    // Never empty: the last part always leaves a segment, if only an empty one.
    for segment in segments {
        out.push('/');
        encode_into(out, segment, PATH_SET);
    }
}

fn is_single_dot(s: &str) -> bool {
    s == "." || s.eq_ignore_ascii_case("%2e")
}

fn is_double_dot(s: &str) -> bool {
    let lower = s.to_ascii_lowercase();
    matches!(lower.as_str(), ".." | ".%2e" | "%2e." | "%2e%2e")
}

/// WHATWG's special-query percent-encode set: the controls, space, `"`, `#`, `'`, `<`, `>`
/// (and, as in every set of the `percent-encoding` crate, everything past `~`).
const QUERY_SET: &AsciiSet = &CONTROLS
    .add(b' ')
    .add(b'"')
    .add(b'#')
    .add(b'\'')
    .add(b'<')
    .add(b'>');

/// WHATWG's path percent-encode set: the query set without `'`, with `?`, `` ` ``, `{`, `}`.
const PATH_SET: &AsciiSet = &QUERY_SET
    .remove(b'\'')
    .add(b'?')
    .add(b'`')
    .add(b'{')
    .add(b'}');

fn encode_into(out: &mut String, s: &str, set: &'static AsciiSet) {
    out.extend(utf8_percent_encode(s, set));
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn norm(s: &str) -> String {
        normalize(s).unwrap_or_else(|e| panic!("{s}: {e:?}"))
    }

    #[test]
    fn writes_the_canonical_form() {
        for (input, canonical) in [
            ("https://Login.Example.COM", "https://login.example.com/"),
            ("HTTPS://idp.example:443/a", "https://idp.example/a"),
            ("http://127.0.0.1:80/x?y", "http://127.0.0.1/x?y"),
            ("http://localhost:8787", "http://localhost:8787/"),
            ("https://h.example?x=1", "https://h.example/?x=1"),
            ("https://h.example/a/./b/../c/", "https://h.example/a/c/"),
            ("https://h.example/a/%2E%2e/b/.%2E", "https://h.example/"),
            ("https://h.example/a/%2e/b/%2E", "https://h.example/a/b/"),
            (
                "https://h.example/a b/é?q=a b&'",
                "https://h.example/a%20b/%C3%A9?q=a%20b&%27",
            ),
            (
                "https://h.example/{x}`<>\"?{x}`",
                "https://h.example/%7Bx%7D%60%3C%3E%22?{x}`",
            ),
            ("  https://h.example/\n", "https://h.example/"),
            ("https://[0:0:0:0:0:0:0:1]:8443/", "https://[::1]:8443/"),
            (
                "https://[2001:DB8:0:0:1:0:0:1]/",
                "https://[2001:db8::1:0:0:1]/",
            ),
            ("https://h.example:/", "https://h.example/"),
            (
                "https://xn--bcher-kva.example/",
                "https://xn--bcher-kva.example/",
            ),
            (
                "https://tenant.b2clogin.com/t/oauth2/v2.0/authorize?p=B2C_1_signin",
                "https://tenant.b2clogin.com/t/oauth2/v2.0/authorize?p=B2C_1_signin",
            ),
        ] {
            assert_eq!(norm(input), canonical, "{input}");
            agrees_with_url(input);
        }
    }

    #[test]
    fn refuses_what_a_configured_url_has_no_business_carrying() {
        for (input, why) in [
            ("ftp://h.example/", UrlError::Scheme),
            ("h.example/path", UrlError::Scheme),
            ("https:h.example", UrlError::Scheme),
            ("https:///h.example", UrlError::Scheme),
            ("https://user:pw@h.example/", UrlError::UserInfo),
            ("https://h.example/#x", UrlError::Fragment),
            ("https://h.example\\evil.example/", UrlError::Character),
            ("https://h.example/a\tb", UrlError::Character),
            ("https://bücher.example/", UrlError::NotAsciiHost),
            ("https://127.1/", UrlError::Host),
            ("https://0x7f.0.0.1/", UrlError::Host),
            ("https://0177.0.0.1/", UrlError::Host),
            ("https://1.2.3.256/", UrlError::Host),
            ("https://h.example.0x/", UrlError::Host),
            ("https://[::ffff:1.2.3.4]/", UrlError::Host),
            ("https://[1::2::3]/", UrlError::Host),
            ("https://[1:2:3:4:5:6:7:8:9]/", UrlError::Host),
            ("https://h%2eexample/", UrlError::Host),
            ("https://h.example:99999/", UrlError::Port),
            ("https:///", UrlError::Scheme),
            ("https://", UrlError::Host),
        ] {
            assert_eq!(normalize(input), Err(why), "{input}");
        }
    }

    #[test]
    fn a_path_reference_resolves_on_its_own_origin() {
        assert_eq!(
            resolve_path_reference("/a/../b?x#f").as_deref(),
            Some("/b?x")
        );
        assert_eq!(
            resolve_path_reference("/../../etc").as_deref(),
            Some("/etc")
        );
        assert_eq!(resolve_path_reference("/.//x").as_deref(), Some("//x"));
        for refused in ["//evil.example", "/\\evil.example", "evil", "", "/a\nb"] {
            assert_eq!(resolve_path_reference(refused), None, "{refused:?}");
        }
    }

    /// What we accept, the `url` crate reads the same, to the byte.
    fn agrees_with_url(input: &str) {
        let Ok(ours) = normalize(input) else {
            return;
        };
        let reference = url::Url::parse(input)
            .unwrap_or_else(|e| panic!("{input:?}: we read {ours}, the url crate refuses: {e}"));
        assert_eq!(ours, reference.as_str(), "{input:?}");
    }

    fn path_reference_agrees_with_url(reference: &str) {
        let Some(ours) = resolve_path_reference(reference) else {
            return;
        };
        let base = url::Url::parse("https://portcullis.invalid/").expect("base");
        let joined = base.join(reference).expect("a path reference joins");
        assert_eq!(joined.origin(), base.origin(), "{reference:?}");
        let mut expected = joined.path().to_owned();
        if let Some(q) = joined.query() {
            expected.push('?');
            expected.push_str(q);
        }
        assert_eq!(ours, expected, "{reference:?}");
    }

    proptest! {
        #[test]
        fn never_panics_and_agrees_with_url(
            scheme in "(https?|HTTPS|Http|ftp)",
            host in "([a-zA-Z0-9._%-]{0,12}|[0-9x.]{1,15}|\\[[0-9a-fA-F:.]{0,20}\\]|\\PC{0,8})",
            port in "(:[0-9]{0,6})?",
            path in "[a-zA-Z0-9%./?'\"`{}<> é&=~_-]{0,30}",
            noise in "\\PC{0,40}",
        ) {
            let _ = normalize(&noise);
            let _ = resolve_path_reference(&noise);
            agrees_with_url(&noise);
            agrees_with_url(&format!("{scheme}://{host}{port}/{path}"));
            agrees_with_url(&format!("{scheme}://{host}{port}{path}"));
            path_reference_agrees_with_url(&format!("/{path}"));
            path_reference_agrees_with_url(&noise);
        }
    }
}
