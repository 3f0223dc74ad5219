//! Property tests of every parser of untrusted input: arbitrary and shaped inputs, zero panics,
//! and the invariants each parser promises. `make test` runs each target for
//! `PROPTEST_CASES` inputs (256 by default); `make fuzz` runs them far longer.

use proptest::prelude::*;
use serde_json::{json, Value};
use url::Url;

use crate::access::access_token::{self, AccessExpectations, TypPolicy};
use crate::base::time::UnixTime;
use crate::base::types::{ClientId, Issuer, Nonce};
use crate::config::Config;
use crate::http::authorization::{bearer_credential, Credential};
use crate::http::cookies::{parse_cookie_header, read_chunked, CookieJar};
use crate::http::path::{PathPattern, RequestPath};
use crate::http::return_to::ReturnTo;
use crate::http::{Headers, Response};
use crate::jose::claims::ListClaims;
use crate::jose::jwks::JwkSet;
use crate::jose::jws::{JoseHeader, JwsAlg, UnverifiedJws, VerifiedJws};
use crate::oidc::discovery::ProviderMetadata;
use crate::oidc::id_token::{self, Expectations};
use crate::oidc::logout_token;
use crate::oidc::token_endpoint::{RefreshResponse, TokenResponse};
use crate::oidc::transaction::CallbackParams;

/// Strings made of the characters that matter to URL paths and their escapes.
fn path_like() -> impl Strategy<Value = String> {
    prop::string::string_regex(
        "/?([a-zA-Z0-9._~;:@!$&'()*+,=-]|/|\\\\|%[0-9a-fA-F]{0,2}|%25|%3[0-9]|%4[1-6]|%6[1-6]|%C4%B1|%EF%BD%81|%E2%80%8B|%C0%AF|\\.\\.|é|ı){0,24}",
    )
    .expect("regex")
}

/// JSON values of claim-like shapes, with arbitrary types where claims are expected.
fn claim_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(|f| json!(f)),
        "[a-z@.:/ ]{0,12}".prop_map(Value::from),
    ];
    leaf.prop_recursive(2, 8, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::from),
            prop::collection::btree_map("[a-z]{1,4}", inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// Claims sets that mix well-formed registered claims with arbitrary ones.
fn claims() -> impl Strategy<Value = Value> {
    let names = [
        "iss",
        "sub",
        "aud",
        "exp",
        "nbf",
        "iat",
        "jti",
        "nonce",
        "azp",
        "at_hash",
        "email",
        "email_verified",
        "sid",
        "events",
        "scp",
        "scope",
        "groups",
        "roles",
        "client_id",
    ];
    prop::collection::vec((0..names.len(), claim_value(), any::<bool>()), 0..12).prop_map(
        move |entries| {
            let mut c = json!({"iss": "https://idp", "aud": "client", "sub": "s", "exp": 2_000_000_000i64, "iat": 1_800_000_000i64});
            for (i, v, keep_sane) in entries {
                if !keep_sane {
                    c[names[i]] = v;
                }
            }
            c
        },
    )
}

fn verified(typ: Option<String>, claims: &Value) -> VerifiedJws {
    VerifiedJws::assume_verified(
        JoseHeader {
            alg: JwsAlg::Es256,
            kid: None,
            typ,
        },
        claims.to_string().into_bytes(),
    )
}

proptest! {
    #[test]
    fn cookie_headers_never_panic_and_chunks_reassemble(header in any::<String>(), value in "[A-Za-z0-9_-]{1,12000}") {
        let jar = CookieJar::new(true);
        let cookies = parse_cookie_header(&header);
        let _ = read_chunked(&jar, &cookies, &jar.session_name());
        // What the jar writes, it reads back, whatever precedes it.
        if let Some(set) = jar.set_chunked(&jar.session_name(), &value, 60, &[]) {
            let pairs: Vec<&str> = set.iter().map(|c| c.split(';').next().unwrap_or("")).collect();
            let sent = format!("{header}; {}", pairs.join("; "));
            let read = read_chunked(&jar, &parse_cookie_header(&sent), &jar.session_name());
            if !header.contains(&jar.session_name()) {
                prop_assert_eq!(read.value.as_deref(), Some(value.as_str()));
            }
        }
    }

    #[test]
    fn paths_normalize_once_and_for_all(raw in prop_oneof![path_like(), any::<String>(), "/(/|%25|%3[0-9]|%4[1-6]|%6[1-6]|[0-9a-f.]){0,12}"]) {
        if let Ok(p) = RequestPath::parse(&raw) {
            let again = RequestPath::parse(p.as_str());
            prop_assert_eq!(again.as_ref().map(RequestPath::as_str), Ok(p.as_str()), "idempotent");
            prop_assert!(p.as_str().starts_with('/'));
            prop_assert!(!p.as_str().contains("//") && !p.as_str().contains('\\'));
            prop_assert!(!p.as_str().split('/').any(|s| s == ".." || s == "."));
            // Decoded once more, as a server that decodes twice would, it is what was judged.
            let twice = p.judged().as_bytes().windows(3).any(|w| {
                w[0] == b'%' && w[1].is_ascii_hexdigit() && w[2].is_ascii_hexdigit()
            });
            prop_assert!(!twice, "{} judged as {}", p.as_str(), p.judged());
            let a = p.asset_resource();
            prop_assert!(a.as_str().starts_with('/'));
        }
        if let Some(pattern) = PathPattern::parse(&raw) {
            let root = RequestPath::parse("/").expect("root");
            let _ = (pattern.matches(&root), pattern.covers(&root), pattern.for_assets());
        }
    }

    #[test]
    fn return_to_is_always_a_local_path(raw in prop_oneof![path_like(), any::<String>(), "(https?:)?//[a-z.]{1,10}/.*"]) {
        let r = ReturnTo::parse(Some(&raw), "/auth");
        let s = r.as_str();
        prop_assert!(s.starts_with('/'));
        prop_assert!(!s.starts_with("//") && !s.starts_with("/\\"));
        prop_assert!(!s.chars().any(|c| c.is_control()));
        let base = Url::parse("https://app.example.com/").expect("base");
        let resolved = base.join(s).map(|u| u.origin());
        prop_assert_eq!(resolved.ok(), Some(base.origin()), "same origin");
    }

    #[test]
    fn compact_jws_and_key_sets_never_panic(token in prop_oneof![any::<String>(), "[A-Za-z0-9_-]{0,40}\\.[A-Za-z0-9_-]{0,40}\\.[A-Za-z0-9_-]{0,40}"], body in prop::collection::vec(any::<u8>(), 0..256), keys in prop::collection::vec(claim_value(), 0..4)) {
        if let Ok(jws) = UnverifiedJws::parse(&token) {
            let _ = jws.unverified_issuer();
        }
        let _ = JwkSet::parse(&body);
        let set = json!({"keys": keys}).to_string();
        if let Ok(set) = JwkSet::parse(set.as_bytes()) {
            for alg in ["RS256", "ES256", "EdDSA"] {
                let header = JoseHeader { alg: JwsAlg::parse(alg).expect("alg"), kid: None, typ: None };
                let _ = set.select(&header);
            }
        }
    }

    #[test]
    fn token_endpoint_answers_never_panic(status in 100u16..600, body in prop_oneof![any::<String>(), claim_value().prop_map(|v| v.to_string())]) {
        let resp = Response::new(status).with_body("application/json", body);
        let _ = TokenResponse::parse(&resp);
        let _ = RefreshResponse::parse(&resp);
    }

    #[test]
    fn claims_validators_never_panic(c in claims(), typ in prop::option::of("[a-zA-Z/+]{0,20}")) {
        let jws = verified(typ.clone(), &c);
        let (iss, client, now) = (Issuer::new("https://idp"), ClientId::new("client"), UnixTime::from_secs(1_800_000_000));
        let _ = logout_token::validate(&jws, &iss, &client, now);
        let nonce = Nonce::new("n");
        let _ = id_token::validate(verified(typ.clone(), &c), &Expectations { issuer: &iss, issuer_spelling: None, client_id: &client, nonce: Some(&nonce), now, at_hash: Some("at"), tenancy: None });
        let issuers = [iss.clone()];
        let audiences = ["client".to_owned()];
        let expect = AccessExpectations { issuers: &issuers, audiences: &audiences, typ: TypPolicy::AtJwtOrJwt, now };
        if let Ok(t) = access_token::validate(&jws, &expect, &ListClaims::default()) {
            prop_assert!(!t.subject.is_empty(), "a token without sub is never accepted");
        }
    }

    #[test]
    fn authorization_headers_parse_to_a_bearer_token_or_a_refusal(value in prop_oneof![any::<String>(), "(?i:bearer)[ \t]{0,3}[A-Za-z0-9=,. +/\t-]{0,20}"]) {
        let headers = Headers::from([("Authorization", value.as_str())]);
        if let Credential::Bearer(t) = bearer_credential(&headers) {
            let body = t.trim_end_matches('=');
            prop_assert!(!body.is_empty());
            prop_assert!(body.bytes().all(|b| b.is_ascii_alphanumeric() || b"-._~+/".contains(&b)));
        }
    }

    #[test]
    fn callback_queries_and_discovery_documents_never_panic(query in any::<String>(), doc in claim_value()) {
        let _ = CallbackParams::from_query(&query);
        let _ = ProviderMetadata::parse(doc.to_string().as_bytes(), &Issuer::new("https://idp"));
    }

    #[test]
    fn configuration_values_give_a_config_or_an_error_naming_a_variable(which in 0usize..24, value in prop_oneof![any::<String>(), "[a-z0-9:/._ *,;#@-]{0,40}", "(https?://)?zq9[a-z0-9:/._ *,;#@-]{0,30}"]) {
        const NAMES: [&str; 24] = [
            "OIDC_ISSUER", "OIDC_SCOPES", "OIDC_REDIRECT_URI", "OIDC_POST_LOGOUT_REDIRECT_URI",
            "OIDC_TOKEN_AUTH_METHOD", "COOKIE_SECRET", "SESSION_TTL", "SESSION_IDLE_TTL",
            "SESSION_REFRESH_MARGIN", "SESSION_STORE", "PUBLIC_PATHS", "ACCESS_RULES",
            "ALLOW_EMAILS", "ALLOW_EMAIL_DOMAINS", "ALLOW_GROUPS", "ALLOW_UNVERIFIED_EMAIL",
            "ACCESS_LOG", "GROUPS_CLAIM", "IDENTITY_HEADER_USER", "PASS_ACCESS_TOKEN",
            "API_AUDIENCES", "API_ROUTES", "UPSTREAM", "AUTH_PATH_PREFIX",
        ];
        let base = [
            ("OIDC_ISSUER", "https://idp.example.com"),
            ("OIDC_CLIENT_ID", "client"),
            ("OIDC_CLIENT_SECRET", "secret"),
            ("COOKIE_SECRET", crate::config::tests_support::SECRET_B64),
        ];
        let name = NAMES[which];
        let get = |k: &str| {
            if k == name {
                return Some(value.clone());
            }
            base.iter().find(|(n, _)| *n == k).map(|(_, v)| (*v).to_owned())
        };
        if let Err(e) = Config::from_vars(get) {
            prop_assert!(!e.variable.is_empty());
            // A distinctive value never shows up in the error.
            prop_assert!(!e.problem.contains("zq9"), "{} echoes its value", e.variable);
        }
    }
}
