//! Where to send the browser after sign-in: only same-origin absolute paths. Anything doubtful
//! becomes `/` (never an error page: a bad return_to must not stop someone signing in).

use crate::http::http_url::resolve_path_reference;
use crate::http::path::RequestPath;

/// Kept short: it rides in the login cookie, of which up to four may be alive at once.
const MAX_LEN: usize = 1024;
const FALLBACK: &str = "/";

/// A validated same-origin path (with query), safe to put in a `Location` header.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReturnTo(String);

impl ReturnTo {
    pub fn root() -> Self {
        Self(FALLBACK.to_owned())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Validates a decoded `return_to` value. `auth_prefix` paths (login, callback...) are
    /// not destinations and become `/` too.
    pub fn parse(raw: Option<&str>, auth_prefix: &str) -> Self {
        raw.and_then(|r| validate(r, auth_prefix))
            .map_or_else(Self::root, Self)
    }

    /// Restores a value this module produced earlier (from a sealed transaction), checking again.
    pub fn from_trusted(value: &str, auth_prefix: &str) -> Self {
        Self::parse(Some(value), auth_prefix)
    }
}

fn validate(raw: &str, auth_prefix: &str) -> Option<String> {
    if raw.is_empty() || raw.len() > MAX_LEN || !looks_like_local_path(raw) {
        return None;
    }
    // Encoded tricks: a value that decodes (once or twice) into a network path is refused.
    let mut decoded = raw.to_owned();
    for _ in 0..3 {
        let next = percent_decode(&decoded)?;
        if !starts_like_local_path(&next) || next.chars().any(char::is_control) {
            return None;
        }
        if next == decoded {
            break;
        }
        decoded = next;
    }
    // Resolved as a browser resolves it against our origin (a path-absolute reference cannot
    // leave it): dot segments folded, the path and query in canonical form.
    let out = resolve_path_reference(raw)?;
    // Judged as the gate will judge the path when the browser comes back (`/%61uth/login` is
    // the login route); a path the gate would refuse is no destination either.
    let path = RequestPath::parse(out.split('?').next().unwrap_or_default()).ok()?;
    let path = path.judged();
    if path == auth_prefix || path.starts_with(&format!("{auth_prefix}/")) {
        return None;
    }
    // Dot segments can fold "/.//x" into "//x": check what actually leaves. And its length:
    // escaping can make it three times the value's, too long for the login cookie.
    (out.len() <= MAX_LEN && looks_like_local_path(&out)).then_some(out)
}

fn starts_like_local_path(s: &str) -> bool {
    let bytes = s.as_bytes();
    bytes.first() == Some(&b'/') && !matches!(bytes.get(1), Some(b'/') | Some(b'\\'))
}

/// A path starting with exactly one `/`, with no backslash, whitespace or control characters.
fn looks_like_local_path(s: &str) -> bool {
    starts_like_local_path(s)
        && !s
            .chars()
            .any(|c| c == '\\' || c.is_whitespace() || c.is_control() || c == '\u{feff}')
}

/// Percent-decodes; `None` when the result is not UTF-8.
fn percent_decode(s: &str) -> Option<String> {
    percent_encoding::percent_decode_str(s)
        .decode_utf8()
        .ok()
        .map(|c| c.into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rt(raw: &str) -> String {
        ReturnTo::parse(Some(raw), "/auth").as_str().to_owned()
    }

    #[test]
    fn plain_paths_are_kept() {
        assert_eq!(rt("/"), "/");
        assert_eq!(rt("/docs/page.html"), "/docs/page.html");
        assert_eq!(rt("/x?a=1&b=2"), "/x?a=1&b=2");
        assert_eq!(rt("/search?q=a%20b"), "/search?q=a%20b");
        assert_eq!(rt("/caf%C3%A9"), "/caf%C3%A9");
    }

    #[test]
    fn dot_segments_are_resolved_on_our_origin() {
        assert_eq!(rt("/a/../b"), "/b");
        assert_eq!(rt("/../../etc"), "/etc");
    }

    #[test]
    fn fragments_are_dropped() {
        assert_eq!(rt("/page#section"), "/page");
    }

    #[test]
    fn missing_or_empty_becomes_root() {
        assert_eq!(ReturnTo::parse(None, "/auth").as_str(), "/");
        assert_eq!(rt(""), "/");
    }

    #[test]
    fn open_redirect_payloads_become_root() {
        let payloads = [
            "//evil.com",
            "///evil.com",
            "/\\evil.com",
            "\\\\evil.com",
            "/\\/evil.com",
            "https://evil.com",
            "http:evil.com",
            "javascript:alert(1)",
            "data:text/html,x",
            "evil.com",
            "%2F%2Fevil.com",
            "/%2F/evil.com",
            "/%2f%2fevil.com",
            "/%5Cevil.com",
            "/%5cevil.com",
            "/%252F%252Fevil.com",
            "/%09/evil.com",
            "/\t/evil.com",
            "/\n/evil.com",
            "/ /evil.com",
            "/\r\nLocation: https://evil.com",
            "/%0d%0aSet-Cookie:x=y",
            "\u{feff}//evil.com",
            " /x",
            "/a\\b",
            "/%E0%A4%A",
            "/%ff",
            "//%09evil.com",
            "/.//evil.com",
        ];
        for p in payloads {
            let got = rt(p);
            assert!(
                got == "/" || !(got.starts_with("//") || got.contains('\\') || got.contains(':')),
                "{p:?} -> {got:?}"
            );
            assert!(
                !got.contains("evil.com") || got.starts_with("/evil.com") || got == "/",
                "{p:?} -> {got:?}"
            );
        }
        for p in [
            "//evil.com",
            "/\\evil.com",
            "https://evil.com",
            "%2F%2Fevil.com",
            "/%2F/evil.com",
            "/%5Cevil.com",
            "/%252F%252Fevil.com",
            "/\t/evil.com",
        ] {
            assert_eq!(rt(p), "/", "{p:?}");
        }
    }

    #[test]
    fn dot_slash_slash_cannot_become_a_network_path() {
        // "/.//evil.com" resolves to the path "//evil.com" on some parsers: must not leave as such.
        let got = rt("/.//evil.com");
        assert!(!got.starts_with("//"), "{got}");
    }

    #[test]
    fn auth_routes_are_not_destinations() {
        assert_eq!(rt("/auth/logout"), "/");
        assert_eq!(rt("/auth"), "/");
        assert_eq!(rt("/authors"), "/authors");
        for hidden in [
            "/%61uth/login%3Fprovider%3Dx",
            "/%61uth",
            "//auth/logout",
            "/x/../auth/callback",
            "/%2561uth/login",
        ] {
            assert_eq!(rt(hidden), "/", "{hidden}");
        }
    }

    #[test]
    fn overlong_values_become_root() {
        assert_eq!(rt(&format!("/{}", "a".repeat(MAX_LEN))), "/");
        // Short enough as given, three times longer once escaped: the login cookie would be
        // over 4 KB, and a browser drops it.
        assert_eq!(rt(&format!("/{}", "\"".repeat(600))), "/");
        assert_eq!(rt(&format!("/{}", "é".repeat(400))), "/");
        let fits = format!("/{}", "é".repeat(100));
        assert_eq!(rt(&fits), format!("/{}", "%C3%A9".repeat(100)));
    }
}
