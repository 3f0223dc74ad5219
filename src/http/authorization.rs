//! The `Authorization` header as the gate reads it: a Bearer credential (RFC 6750 2.1), or
//! something that tries to be one and does not parse, or the origin's business (Basic, other
//! schemes, none).

use crate::http::Headers;

#[derive(Debug, PartialEq, Eq)]
pub enum Credential<'r> {
    None,
    Bearer(&'r str),
    /// Looks like a Bearer credential (the scheme, in any case, then anything) but is not one:
    /// refused, never passed on beside another identity.
    Malformed,
}

/// `Authorization: Bearer 1*SP b64token`. Tokens in the query string or body are never read.
pub fn bearer_credential(headers: &Headers) -> Credential<'_> {
    let Some(value) = headers.get("Authorization") else {
        return Credential::None;
    };
    let value = value.trim_matches(|c| c == ' ' || c == '\t');
    let starts_bearer = value
        .get(..6)
        .is_some_and(|s| s.eq_ignore_ascii_case("bearer"));
    if !starts_bearer {
        // Basic and other schemes belong to the origin, unless a Bearer credential hides in a
        // list (two headers joined: `Basic x, Bearer y`).
        let hidden = value.split(',').skip(1).any(|part| {
            part.trim_start()
                .get(..6)
                .is_some_and(|s| s.eq_ignore_ascii_case("bearer"))
        });
        return if hidden {
            Credential::Malformed
        } else {
            Credential::None
        };
    }
    // The scheme is `Bearer` exactly; `BearerXyz`, `Bearer-`, `Bearer\t` are attempts at it.
    let rest = &value[6..];
    let token = rest.trim_start_matches(' ');
    if token.len() == rest.len() || !is_b64token(token) {
        return Credential::Malformed;
    }
    Credential::Bearer(token)
}

/// RFC 6750 `b64token`: `1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="`.
fn is_b64token(t: &str) -> bool {
    let body = t.trim_end_matches('=');
    !body.is_empty()
        && body.bytes().all(|b| {
            b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'+' | b'/')
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(value: &str) -> Credential<'_> {
        // The header value lives in the test's string; Headers owns a copy.
        let headers = Headers::from([("Authorization", value)]);
        match bearer_credential(&headers) {
            Credential::Bearer(t) => Credential::Bearer(&value[value.len() - t.len()..]),
            Credential::None => Credential::None,
            Credential::Malformed => Credential::Malformed,
        }
    }

    #[test]
    fn bearer_tokens_are_read_in_any_scheme_case() {
        assert_eq!(
            read("Bearer abc.def-ghi_~+/=="),
            Credential::Bearer("abc.def-ghi_~+/==")
        );
        assert_eq!(read("bearer abc"), Credential::Bearer("abc"));
        assert_eq!(read("BEARER   abc"), Credential::Bearer("abc"));
        assert_eq!(bearer_credential(&Headers::new()), Credential::None);
    }

    #[test]
    fn anything_that_tries_to_be_bearer_and_does_not_parse_is_malformed() {
        for bad in [
            "Bearer\tabc",
            "Bearer",
            "Bearer ",
            "Bearer a b",
            "Bearer abc, Bearer def",
            "Bearer a\"b",
            "Bearer ===",
            "Bearer-abc",
            "Bearer:abc",
            "bEaReR\u{a0}abc",
            "BearerXeyJhbGci",
            "Basic Zg==, Bearer eyJ",
            "Basic Zg==,bearer x",
            "Bearerish abc",
        ] {
            assert_eq!(read(bad), Credential::Malformed, "{bad:?}");
        }
    }

    #[test]
    fn other_schemes_are_the_origins() {
        for other in [
            "Basic dXNlcjpwYXNz",
            "Digest username=x",
            "Token abc",
            "Beare x",
            "Negotiate a,b",
        ] {
            assert_eq!(read(other), Credential::None, "{other}");
        }
    }
}
