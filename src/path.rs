//! The request path the gate judges. Encoded slashes or backslashes and malformed escapes are
//! ambiguous (the origin might decode them differently from us), so they are refused with 400
//! instead of guessed at.

/// A request path that passed the ambiguity checks; the `url` crate has already resolved dot
/// segments (including `%2e`) the way browsers do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RequestPath(String);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PathError {
    EncodedSeparator,
    MalformedEscape,
    Backslash,
}

impl RequestPath {
    pub fn parse(path: &str) -> Result<Self, PathError> {
        let bytes = path.as_bytes();
        let mut i = 0;
        while i < bytes.len() {
            match bytes[i] {
                b'\\' => return Err(PathError::Backslash),
                b'%' => {
                    let hex = bytes.get(i + 1..i + 3).ok_or(PathError::MalformedEscape)?;
                    let s = std::str::from_utf8(hex).map_err(|_| PathError::MalformedEscape)?;
                    let v = u8::from_str_radix(s, 16).map_err(|_| PathError::MalformedEscape)?;
                    if v == b'/' || v == b'\\' {
                        return Err(PathError::EncodedSeparator);
                    }
                    i += 3;
                }
                _ => i += 1,
            }
        }
        Ok(Self(path.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// One `PUBLIC_PATHS` entry: an exact path, or a prefix written `/dir/*` matching `/dir` and
/// everything below it on a segment boundary.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PathPattern {
    Exact(String),
    Prefix(String),
}

impl PathPattern {
    pub fn parse(s: &str) -> Option<Self> {
        if !s.starts_with('/') || s.contains(['?', '#', '\\', '%']) {
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

    pub fn matches(&self, path: &RequestPath) -> bool {
        let p = path.as_str();
        match self {
            Self::Exact(e) => p == e,
            Self::Prefix(dir) => {
                p == dir
                    || p.strip_prefix(dir.as_str())
                        .is_some_and(|rest| rest.starts_with('/'))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ordinary_paths_pass() {
        for p in ["/", "/a/b.html", "/caf%C3%A9", "/a%20b", "/x;y"] {
            assert!(RequestPath::parse(p).is_ok(), "{p}");
        }
    }

    #[test]
    fn ambiguous_paths_are_refused() {
        assert_eq!(
            RequestPath::parse("/a%2Fb"),
            Err(PathError::EncodedSeparator)
        );
        assert_eq!(
            RequestPath::parse("/a%2fb"),
            Err(PathError::EncodedSeparator)
        );
        assert_eq!(
            RequestPath::parse("/a%5Cb"),
            Err(PathError::EncodedSeparator)
        );
        assert_eq!(RequestPath::parse("/a%zz"), Err(PathError::MalformedEscape));
        assert_eq!(RequestPath::parse("/a%2"), Err(PathError::MalformedEscape));
        assert_eq!(RequestPath::parse("/a\\b"), Err(PathError::Backslash));
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
    }

    #[test]
    fn bad_patterns_are_refused() {
        for p in ["public", "/a?b", "/a*b", "/*/x", "/a%2f", "/a#b"] {
            assert_eq!(PathPattern::parse(p), None, "{p}");
        }
    }
}
