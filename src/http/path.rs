//! The request path the gate judges, and the one the origin receives: the same string.
//!
//! Normalization: escapes of unreserved characters are decoded (`%41` is `A`), other escapes
//! get upper-case hex, runs of `/` collapse, and `.`/`..` segments resolve. What different
//! servers could read differently is refused with 400 instead of guessed at: encoded `/` or
//! `\`, backslashes, malformed escapes, encoded control characters, `;` path parameters and
//! segments ending in a dot (some servers strip those), and double encoding (`%25` before two
//! hex digits: a server that decodes twice would read another path).
//!
//! Rules are matched against the path as the origin reads it ([`RequestPath::judged`]: every
//! escape left decoded), so `/c%2B%2B` is `/c++` and `/donn%C3%A9es` is `/données` to a rule.

use crate::http::lookalike::check_non_ascii;

/// A normalized request path, and the form rules judge ([`RequestPath::judged`]) when it has
/// escapes left: decoded once, when the path is made, however many rules read it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RequestPath(String, Option<String>);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PathError {
    EncodedSeparator,
    MalformedEscape,
    Backslash,
    ControlCharacter,
    PathParameter,
    TrailingDot,
    TrailingSpace,
    NotAbsolute,
    /// Percent-encoded bytes that are not UTF-8 (overlong forms such as `%C0%AF` included).
    InvalidUtf8,
    /// A non-ASCII character that case mapping or NFKC turns into ASCII (`ı`, `ſ`, `K`,
    /// fullwidth letters): some origins would read it as the ASCII one.
    AsciiLookalike,
    /// An invisible character: zero-width, bidirectional controls and other format characters.
    Invisible,
    /// `%25` before two hex digits: an encoded escape, which a server decoding twice reads as
    /// another character (`%252F` as `/`).
    DoubleEncoded,
}

impl std::fmt::Display for PathError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::EncodedSeparator => "encoded / or \\ in the path",
            Self::MalformedEscape => "malformed percent-escape in the path",
            Self::Backslash => "backslash in the path",
            Self::ControlCharacter => "control character in the path",
            Self::PathParameter => "; path parameter in the path",
            Self::TrailingDot => "a path segment ends with a dot",
            Self::TrailingSpace => "a path segment ends with a space",
            Self::NotAbsolute => "the path does not start with /",
            Self::InvalidUtf8 => "percent-encoded bytes in the path are not UTF-8",
            Self::AsciiLookalike => "a character in the path stands for an ASCII one",
            Self::Invisible => "an invisible character in the path",
            Self::DoubleEncoded => {
                "a double-encoded escape (%25 before two hex digits) in the path"
            }
        })
    }
}

fn is_unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~')
}

pub(super) fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

impl RequestPath {
    /// Normalizes a path as it appears in a request URL (still percent-encoded).
    pub fn parse(path: &str) -> Result<Self, PathError> {
        if !path.starts_with('/') {
            return Err(PathError::NotAbsolute);
        }
        // 1. Escapes: decode unreserved, refuse separators and controls, canonical hex.
        let bytes = path.as_bytes();
        let mut decoded = String::with_capacity(path.len());
        let mut i = 0;
        while i < bytes.len() {
            match bytes[i] {
                b'\\' => return Err(PathError::Backslash),
                b';' => return Err(PathError::PathParameter),
                b if b < 0x20 || b == 0x7f => return Err(PathError::ControlCharacter),
                b'%' => {
                    let (Some(h), Some(l)) = (
                        bytes.get(i + 1).copied().and_then(hex),
                        bytes.get(i + 2).copied().and_then(hex),
                    ) else {
                        return Err(PathError::MalformedEscape);
                    };
                    let v = h * 16 + l;
                    match v {
                        b'/' | b'\\' => return Err(PathError::EncodedSeparator),
                        b';' => return Err(PathError::PathParameter),
                        v if v < 0x20 || v == 0x7f => return Err(PathError::ControlCharacter),
                        v if is_unreserved(v) => decoded.push(char::from(v)),
                        v => decoded.push_str(&format!("%{v:02X}")),
                    }
                    i += 3;
                }
                _ => {
                    // Copy one UTF-8 character (the input is a &str: boundaries are valid).
                    let ch_len = path[i..].chars().next().map_or(1, char::len_utf8);
                    decoded.push_str(&path[i..i + ch_len]);
                    i += ch_len;
                }
            }
        }
        // A `%25` before two hex digits once unreserved escapes are decoded: `%25%32%66` is
        // `%252f` here, which a server decoding twice reads as `/`.
        let db = decoded.as_bytes();
        let double = db
            .windows(5)
            .any(|w| w.starts_with(b"%25") && hex(w[3]).is_some() && hex(w[4]).is_some());
        if double {
            return Err(PathError::DoubleEncoded);
        }
        check_non_ascii(&decoded)?;
        // 2. Segments: collapse empty ones, resolve dot segments, refuse trailing dots.
        let trailing_slash =
            decoded.ends_with('/') || decoded.ends_with("/.") || decoded.ends_with("/..");
        let mut out: Vec<&str> = Vec::new();
        for seg in decoded.split('/') {
            match seg {
                "" | "." => {}
                ".." => {
                    out.pop();
                }
                s if s.ends_with('.') => return Err(PathError::TrailingDot),
                // Windows servers strip trailing spaces too (`/admin%20/` is `/admin/` there).
                s if s.ends_with("%20") => return Err(PathError::TrailingSpace),
                s => out.push(s),
            }
        }
        let mut normalized = String::with_capacity(decoded.len());
        for seg in &out {
            normalized.push('/');
            normalized.push_str(seg);
        }
        if normalized.is_empty() || trailing_slash {
            normalized.push('/');
        }
        Ok(Self::normalized(normalized))
    }

    fn normalized(path: String) -> Self {
        let judged = path.contains('%').then(|| decode_escapes(&path));
        Self(path, judged)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The path as the origin reads it, which rules are matched against: the escapes
    /// [`RequestPath::parse`] keeps (reserved and non-ASCII characters; never `/`, `\\`, a
    /// control character or a double encoding) decoded. Origins and static assets serve
    /// `/c%2B%2B` and `/c++` alike, and a rule is written the second way.
    pub fn judged(&self) -> &str {
        self.1.as_deref().unwrap_or(&self.0)
    }

    /// The resource Workers Static Assets serve at this path. With `html_handling =
    /// "auto-trailing-slash"` (the default) `/page.html`, `/page` and `/page/` are one file, and
    /// `/dir/index.html`, `/dir/index`, `/dir/` and `/dir` another: all are judged as `/page`
    /// and `/dir`.
    pub fn asset_resource(&self) -> Self {
        Self::normalized(asset_canonical(&self.0))
    }
}

/// Every `%XX` decoded. The escapes `RequestPath::parse` keeps are valid UTF-8 (non-ASCII
/// ones are checked there); decoded lossily all the same.
fn decode_escapes(path: &str) -> String {
    let bytes = path.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let escaped = (bytes[i] == b'%')
            .then(|| {
                let h = bytes.get(i + 1).copied().and_then(hex)?;
                let l = bytes.get(i + 2).copied().and_then(hex)?;
                Some(h * 16 + l)
            })
            .flatten();
        match escaped {
            Some(v) => {
                out.push(v);
                i += 3;
            }
            None => {
                out.push(bytes[i]);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// `/page.html`, `/page/` -> `/page`; `/dir/index.html`, `/dir/index`, `/dir/` -> `/dir`.
fn asset_canonical(path: &str) -> String {
    let mut p = path.trim_end_matches('/');
    let len = p.len();
    if len >= 5 && p.is_char_boundary(len - 5) && p[len - 5..].eq_ignore_ascii_case(".html") {
        p = &p[..len - 5];
    }
    let len = p.len();
    if len >= 6 && p.is_char_boundary(len - 6) && p[len - 6..].eq_ignore_ascii_case("/index") {
        p = &p[..len - 6];
    }
    let p = p.trim_end_matches('/');
    if p.is_empty() {
        "/".to_owned()
    } else {
        p.to_owned()
    }
}

/// A path pattern: an exact path, or a prefix written `/dir/*` matching `/dir` and everything
/// below it on a segment boundary (`/*` matches everything).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PathPattern {
    Exact(String),
    Prefix(String),
}

impl PathPattern {
    /// The pattern over the resources Workers Static Assets serve (see
    /// [`RequestPath::asset_resource`]): `/secret.html` covers `/secret` and `/secret/` too.
    pub fn for_assets(&self) -> Self {
        match self {
            Self::Exact(e) => Self::Exact(asset_canonical(e)),
            Self::Prefix(d) if d.is_empty() => Self::Prefix(String::new()),
            Self::Prefix(d) => Self::Prefix(asset_canonical(d)).normalize_root(),
        }
    }

    /// `Prefix("/")` after canonicalization means everything: `Prefix("")`.
    fn normalize_root(self) -> Self {
        match self {
            Self::Prefix(d) if d == "/" => Self::Prefix(String::new()),
            other => other,
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        if !s.starts_with('/') || s.contains(['?', '#', '\\', '%', ';']) {
            return None;
        }
        if s == "/*" {
            return Some(Self::Prefix(String::new()));
        }
        match s.strip_suffix("/*") {
            Some(dir) if !dir.contains('*') => Some(Self::Prefix(dir.to_owned())),
            Some(_) => None,
            None if s.contains('*') => None,
            None => Some(Self::Exact(s.to_owned())),
        }
    }

    /// For rules that open a path in front of Workers Static Assets: the paths that serve
    /// exactly this pattern's file, never more. `/x.html` opens `/x.html` and `/x`;
    /// `/d/index.html` (or `/d/`) opens `/d/`, `/d/index.html` and `/d/index`; other exact
    /// paths open themselves; a prefix opens what is below it, as written, but not the bare
    /// directory (`/open` serves `open.html`). Case-sensitive.
    pub fn opens_asset(&self, path: &RequestPath) -> bool {
        let p = path.judged();
        let e = match self {
            Self::Exact(e) => e,
            // `/open` itself is not below `/open/`: static assets serve `/open.html` there.
            Self::Prefix(dir) => {
                return p
                    .strip_prefix(dir.as_str())
                    .is_some_and(|rest| rest.starts_with('/'))
            }
        };
        if p == e {
            return true;
        }
        if let Some(dir) = e
            .strip_suffix("/index.html")
            .or_else(|| e.strip_suffix('/'))
        {
            return p == format!("{dir}/")
                || p == format!("{dir}/index.html")
                || p == format!("{dir}/index");
        }
        e.strip_suffix(".html").is_some_and(|stem| p == stem)
    }

    /// Exact, case-sensitive matching: for rules that open a path (`public`), so a
    /// differently-cased path never becomes public by accident.
    pub fn matches(&self, path: &RequestPath) -> bool {
        let p = path.judged();
        match self {
            Self::Exact(e) => p == e,
            Self::Prefix(dir) => {
                p == dir
                    || p.strip_prefix(dir.as_str())
                        .is_some_and(|rest| rest.starts_with('/'))
            }
        }
    }

    /// Loose matching for rules that restrict a path: case-insensitive; an exact pattern
    /// also matches with a trailing `/`, because many origins (IIS, ASP.NET, Express by
    /// default) serve `/ADMIN/` as `/admin`; and both also match with a format suffix
    /// (`/admin.json` for `/admin/*` or `/admin`), which Rails' `(.:format)` routes and
    /// Spring's suffix matching serve as the path without it. Case folds beyond ASCII too
    /// (`/DONNÉES` is `/données`): IIS and ASP.NET compare paths case-insensitively for every
    /// letter ([`fold_case`]).
    pub fn covers(&self, path: &RequestPath) -> bool {
        let (Self::Exact(pattern) | Self::Prefix(pattern)) = self;
        let judged = path.judged();
        let folded;
        let (p, pattern) = if judged.is_ascii() && pattern.is_ascii() {
            (judged, pattern.as_str())
        } else {
            let fold = |s: &str| s.chars().map(fold_case).collect::<String>();
            folded = (fold(judged), fold(pattern));
            (folded.0.as_str(), folded.1.as_str())
        };
        let rest = (p.len() >= pattern.len()
            && p.is_char_boundary(pattern.len())
            && p[..pattern.len()].eq_ignore_ascii_case(pattern))
        .then(|| &p[pattern.len()..]);
        let format_suffix = |rest: &str| rest.starts_with('.') && !rest.contains('/');
        rest.is_some_and(|rest| match self {
            Self::Exact(_) => rest.is_empty() || rest == "/" || format_suffix(rest),
            Self::Prefix(_) => rest.is_empty() || rest.starts_with('/') || format_suffix(rest),
        })
    }
}

/// Lower case for the letters of the scripts paths are written in (Basic Latin, Latin-1,
/// Latin Extended-A, Greek, Cyrillic); anything else as it is. Without the standard library's
/// tables (about 8 KB of gzip in the worker), and length-preserving in UTF-8. The letters that
/// fold to ASCII (`İ`, `ı`, `ſ`) are refused before any rule sees them.
fn fold_case(c: char) -> char {
    let u = u32::from(c);
    let lower = match u {
        0x41..=0x5A | 0xC0..=0xD6 | 0xD8..=0xDE | 0x391..=0x3A1 | 0x3A3..=0x3AB => u + 0x20,
        0x410..=0x42F => u + 0x20,
        0x400..=0x40F => u + 0x50,
        0x100..=0x12F | 0x132..=0x137 | 0x14A..=0x177 if u % 2 == 0 => u + 1,
        0x139..=0x148 | 0x179..=0x17E if u % 2 == 1 => u + 1,
        0x178 => 0xFF,
        _ => u,
    };
    char::from_u32(lower).unwrap_or(c)
}

impl std::fmt::Display for PathPattern {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Exact(e) => f.write_str(e),
            Self::Prefix(d) => write!(f, "{d}/*"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_alias_of_a_static_asset_is_one_resource() {
        let same = |a: &str, b: &str| {
            assert_eq!(
                RequestPath::parse(a).unwrap().asset_resource(),
                RequestPath::parse(b).unwrap().asset_resource(),
                "{a} ~ {b}"
            )
        };
        same("/secret.html", "/secret");
        same("/secret.html", "/secret/");
        same("/secret.HTML", "/secret");
        same("/dir/index.html", "/dir/");
        same("/dir/index.html", "/dir");
        same("/dir/index", "/dir");
        same("/index.html", "/");
        assert_eq!(
            RequestPath::parse("/a/b.html")
                .unwrap()
                .asset_resource()
                .as_str(),
            "/a/b"
        );
        let rule = PathPattern::parse("/secret.html").unwrap().for_assets();
        for p in [
            "/secret.html",
            "/secret",
            "/secret/",
            "/SECRET",
            "/secret/index.html",
        ] {
            assert!(
                rule.covers(&RequestPath::parse(p).unwrap().asset_resource()),
                "{p}"
            );
        }
        // Opening is never wider than the file: /docs.html does not open docs/index.html.
        let public = |pat: &str, p: &str| {
            PathPattern::parse(pat)
                .unwrap()
                .opens_asset(&RequestPath::parse(p).unwrap())
        };
        assert!(public("/docs.html", "/docs.html") && public("/docs.html", "/docs"));
        for p in ["/docs/", "/docs/index.html", "/Docs", "/docs/x"] {
            assert!(!public("/docs.html", p), "{p}");
        }
        assert!(public("/d/index.html", "/d/") && public("/d/", "/d/index.html"));
        assert!(!public("/d/index.html", "/d") && !public("/d/", "/d.html"));
        assert!(public("/", "/index.html") && !public("/", "/x"));
        assert!(!public("/open/*", "/open.html") && public("/open/*", "/open/x.html"));
        // Static assets serve /open.html at /open: a public directory does not open it.
        assert!(!public("/open/*", "/open") && public("/open/*", "/open/"));
        assert!(!public("/index/*", "/secret.html"));
        let dir = PathPattern::parse("/dir/*").unwrap().for_assets();
        assert!(dir.covers(
            &RequestPath::parse("/dir/index.html")
                .unwrap()
                .asset_resource()
        ));
        assert!(dir.covers(&RequestPath::parse("/dir").unwrap().asset_resource()));
        assert!(!dir.covers(&RequestPath::parse("/dirt").unwrap().asset_resource()));
    }

    fn norm(p: &str) -> Result<String, PathError> {
        RequestPath::parse(p).map(|r| r.0)
    }

    #[test]
    fn tricky_paths_normalize_or_are_refused() {
        let table: &[(&str, Result<&str, PathError>)] = &[
            ("/", Ok("/")),
            ("/a/b.html", Ok("/a/b.html")),
            ("/admin", Ok("/admin")),
            ("/admin/", Ok("/admin/")),
            ("//admin", Ok("/admin")),
            ("/a//b///c", Ok("/a/b/c")),
            ("/public/../admin", Ok("/admin")),
            ("/public/%2e%2e/admin", Ok("/admin")),
            ("/public/%2E%2E/admin", Ok("/admin")),
            ("/public/.%2e/admin", Ok("/admin")),
            ("/./admin/./x", Ok("/admin/x")),
            ("/../../admin", Ok("/admin")),
            ("/a/..", Ok("/")),
            ("/a/.", Ok("/a/")),
            ("/%61dmin", Ok("/admin")),
            ("/%7Euser", Ok("/~user")),
            ("/caf%c3%a9", Ok("/caf%C3%A9")),
            ("/caf%C3%A9", Ok("/caf%C3%A9")),
            ("/a%20b", Ok("/a%20b")),
            ("/a%2Fb", Err(PathError::EncodedSeparator)),
            ("/a%2fb", Err(PathError::EncodedSeparator)),
            ("/public%2F..%2Fadmin", Err(PathError::EncodedSeparator)),
            ("/a%5Cb", Err(PathError::EncodedSeparator)),
            ("/a\\b", Err(PathError::Backslash)),
            ("/a%zz", Err(PathError::MalformedEscape)),
            ("/a%2", Err(PathError::MalformedEscape)),
            ("/a%", Err(PathError::MalformedEscape)),
            ("/a%00b", Err(PathError::ControlCharacter)),
            ("/a%0d%0ab", Err(PathError::ControlCharacter)),
            ("/admin;jsessionid=x", Err(PathError::PathParameter)),
            ("/admin%3B/x", Err(PathError::PathParameter)),
            ("/admin./x", Err(PathError::TrailingDot)),
            ("/admin.", Err(PathError::TrailingDot)),
            ("/admin%2e", Err(PathError::TrailingDot)),
            ("/admin%20/x", Err(PathError::TrailingSpace)),
            ("/open/..%252fadmin", Err(PathError::DoubleEncoded)),
            // The escape's own digits escaped: the same, once decoded.
            (
                "/public/%25%32%65%25%32%65/admin/x",
                Err(PathError::DoubleEncoded),
            ),
            ("/public/..%25%32%66admin", Err(PathError::DoubleEncoded)),
            ("/docs/%25%36%39nternal/x", Err(PathError::DoubleEncoded)),
            ("/%25%36%31dmin/x", Err(PathError::DoubleEncoded)),
            ("/admin%25%32%65", Err(PathError::DoubleEncoded)),
            ("/admin%25%32%30", Err(PathError::DoubleEncoded)),
            ("/a%25%34%31", Err(PathError::DoubleEncoded)),
            ("/a%25%341", Err(PathError::DoubleEncoded)),
            ("/a%2541", Err(PathError::DoubleEncoded)),
            ("/100%25", Ok("/100%25")),
            ("/100%25-off", Ok("/100%25-off")),
            ("/a%252", Ok("/a%252")),
            ("/a%20b/x", Ok("/a%20b/x")),
            ("/.well-known/x", Ok("/.well-known/x")),
            ("/v1.2/x", Ok("/v1.2/x")),
            ("admin", Err(PathError::NotAbsolute)),
        ];
        for (input, want) in table {
            assert_eq!(norm(input).as_deref().map_err(|e| *e), *want, "{input}");
        }
    }

    #[test]
    fn non_ascii_paths_do_not_panic() {
        assert_eq!(norm("/é/ü").unwrap(), "/é/ü");
        assert_eq!(norm("/日本/../語").unwrap(), "/語");
    }

    #[test]
    fn patterns_match_on_segment_boundaries() {
        let p = PathPattern::parse("/public/*").unwrap();
        let m = |s: &str| p.matches(&RequestPath::parse(s).unwrap());
        assert!(m("/public") && m("/public/") && m("/public/a/b"));
        assert!(!m("/publicity") && !m("/") && !m("/x/public/a"));
        let e = PathPattern::parse("/favicon.ico").unwrap();
        assert!(e.matches(&RequestPath::parse("/favicon.ico").unwrap()));
        assert!(!e.matches(&RequestPath::parse("/favicon.ico/x").unwrap()));
        let all = PathPattern::parse("/*").unwrap();
        assert!(all.matches(&RequestPath::parse("/anything").unwrap()));
        assert_eq!(p.to_string(), "/public/*");
    }

    #[test]
    fn patterns_cannot_be_bypassed_by_encoding() {
        let admin = PathPattern::parse("/admin/*").unwrap();
        for p in [
            "//admin/x",
            "/%61dmin/x",
            "/public/../admin/x",
            "/public/%2e%2e/admin/x",
            "/./admin",
        ] {
            assert!(admin.matches(&RequestPath::parse(p).unwrap()), "{p}");
        }
    }

    #[test]
    fn restricting_patterns_cover_other_cases_and_trailing_slashes() {
        let admin = PathPattern::parse("/admin/*").unwrap();
        let exact = PathPattern::parse("/admin").unwrap();
        let p = |s: &str| RequestPath::parse(s).unwrap();
        for s in ["/ADMIN/users", "/Admin", "/aDmIn/x"] {
            assert!(admin.covers(&p(s)), "{s}");
            assert!(!admin.matches(&p(s)), "{s}: strict matching stays exact");
        }
        assert!(exact.covers(&p("/admin/")) && exact.covers(&p("/ADMIN")));
        assert!(!exact.covers(&p("/admin/x")) && !admin.covers(&p("/administrator")));
        assert!(admin.covers(&p("/é/..//admin/x")));
        assert!(!PathPattern::parse("/é/*").unwrap().covers(&p("/")));
        // Beyond ASCII too: IIS serves /DONNÉES as /données.
        let donnees = PathPattern::parse("/données/*").unwrap();
        for s in [
            "/donn%C3%89es/x",
            "/DONN%C3%89ES/x",
            "/Donn%C3%A9es",
            "/DONNÉES/x.json",
        ] {
            assert!(donnees.covers(&p(s)), "{s}");
            assert!(!donnees.matches(&p(s)), "{s}: strict matching stays exact");
        }
        for (upper, lower) in [
            ("/ŁÓDŹ/*", "/%C5%82%C3%B3d%C5%BA/x"),
            ("/ΑΘΗΝΑ/*", "/αθηνα"),
            ("/МОСКВА/*", "/москва/x"),
            ("/ЁЖ/*", "/ёж"),
        ] {
            let rule = PathPattern::parse(upper).unwrap();
            assert!(rule.covers(&p(lower)), "{upper} covers {lower}");
        }
        // Exactly the standard library's lower case in the ranges it claims (but İ, which
        // folds to ASCII and is refused anyway), nothing elsewhere.
        for u in 0..0x500u32 {
            let Some(c) = char::from_u32(u) else { continue };
            let mut std = c.to_lowercase();
            let (std, more) = (std.next().unwrap(), std.next().is_some());
            let claimed = matches!(u, 0x41..=0x17F | 0x391..=0x3AB | 0x400..=0x42F);
            if claimed && !more && u != 0x130 {
                assert_eq!(fold_case(c), std, "U+{u:04X}");
            } else if !claimed {
                assert_eq!(fold_case(c), c, "U+{u:04X}");
            }
            assert_eq!(fold_case(c).len_utf8(), c.len_utf8());
        }
        let upper = PathPattern::parse("/ÉQUIPE/*").unwrap();
        assert!(upper.covers(&p("/%C3%A9quipe/x")));
        assert!(!donnees.covers(&p("/donn%C3%A9esx")));
    }

    #[test]
    fn rules_judge_the_path_the_origin_reads_whatever_its_escapes() {
        let p = |s: &str| RequestPath::parse(s).unwrap();
        for (pattern, path) in [
            ("/données/*", "/donn%C3%A9es/rapport.html"),
            ("/données/*", "/donn%c3%a9es/x"),
            ("/c++/*", "/c%2B%2B/x"),
            ("/c++/*", "/c%2b+/x"),
            ("/@ops/*", "/%40ops/x"),
            ("/a b/*", "/a%20b/x"),
        ] {
            let rule = PathPattern::parse(pattern).unwrap();
            assert!(rule.covers(&p(path)), "{pattern} covers {path}");
            assert!(rule.matches(&p(path)), "{pattern} matches {path}");
            assert!(
                rule.for_assets().covers(&p(path).asset_resource()),
                "{path}"
            );
        }
        assert_eq!(p("/c%2B%2B/x").judged(), "/c++/x");
        assert_eq!(
            p("/c%2B%2B/x").as_str(),
            "/c%2B%2B/x",
            "the origin gets it as sent"
        );
        assert_eq!(p("/100%25").judged(), "/100%");
        assert_eq!(p("/plain").judged(), "/plain");
    }

    #[test]
    fn restricting_patterns_cover_format_suffixes_and_public_ones_do_not() {
        let p = |s: &str| RequestPath::parse(s).unwrap();
        let dir = PathPattern::parse("/admin/*").unwrap();
        let exact = PathPattern::parse("/admin").unwrap();
        for s in ["/admin.json", "/admin.html", "/ADMIN.xml"] {
            assert!(dir.covers(&p(s)) && exact.covers(&p(s)), "{s}");
            assert!(!dir.matches(&p(s)) && !exact.matches(&p(s)), "{s}");
        }
        for s in ["/administrator", "/admin-x", "/admin.d/x", "/adminjson"] {
            assert!(!dir.covers(&p(s)) && !exact.covers(&p(s)), "{s}");
        }
    }

    #[test]
    fn bad_patterns_are_refused() {
        for p in ["public", "/a?b", "/a*b", "/*/x", "/a%2f", "/a#b", "/a;b"] {
            assert_eq!(PathPattern::parse(p), None, "{p}");
        }
    }
}
