use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;

use super::read::parse_duration;
use super::*;
use std::collections::HashMap;

pub const SECRET_B64: &str = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=";

fn vars(extra: &[(&str, &str)]) -> HashMap<String, String> {
    let mut m: HashMap<String, String> = [
        ("OIDC_ISSUER", "https://login.example.com/tenant/v2.0"),
        ("OIDC_CLIENT_ID", "client"),
        ("OIDC_CLIENT_SECRET", "s3cret-value"),
        ("COOKIE_SECRET", SECRET_B64),
    ]
    .iter()
    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
    .collect();
    for (k, v) in extra {
        m.insert((*k).to_owned(), (*v).to_owned());
    }
    m
}

fn parse(extra: &[(&str, &str)]) -> Result<Config, ConfigError> {
    let m = vars(extra);
    Config::from_vars(|k| m.get(k).cloned())
}

fn problem_var(extra: &[(&str, &str)]) -> String {
    parse(extra).unwrap_err().variable
}

#[test]
fn defaults_apply() {
    let c = parse(&[]).unwrap();
    assert_eq!(c.providers.first().scopes, "openid profile email");
    assert_eq!(
        c.providers.first().token_auth_method,
        TokenAuthMethod::ClientSecretBasic
    );
    assert_eq!(c.session_ttl_secs, 8 * 3600);
    assert_eq!(c.upstream, Upstream::Assets);
    assert_eq!(c.auth_prefix, "/auth");
    assert_eq!(c.list_claims.groups, "groups");
    assert_eq!(
        c.identity_headers.user.as_deref(),
        Some("X-Auth-Request-User")
    );
    assert!(c.assertion.is_none() && c.pass_access_token.is_none());
}

#[test]
fn missing_variables_are_named() {
    for name in [
        "OIDC_ISSUER",
        "OIDC_CLIENT_ID",
        "OIDC_CLIENT_SECRET",
        "COOKIE_SECRET",
    ] {
        let mut m = vars(&[]);
        m.remove(name);
        let e = Config::from_vars(|k| m.get(k).cloned()).unwrap_err();
        assert_eq!(e.variable, name);
        assert_eq!(e.problem, "is not set");
    }
}

#[test]
fn issuer_must_be_https_except_loopback() {
    assert_eq!(
        problem_var(&[("OIDC_ISSUER", "http://idp.example.com")]),
        "OIDC_ISSUER"
    );
    assert_eq!(problem_var(&[("OIDC_ISSUER", "not a url")]), "OIDC_ISSUER");
    assert_eq!(
        problem_var(&[("OIDC_ISSUER", "https://idp.example.com/?x=1")]),
        "OIDC_ISSUER"
    );
    assert!(parse(&[("OIDC_ISSUER", "http://127.0.0.1:9000")]).is_ok());
    // International domain names: punycode, as the worker has no Unicode data for them.
    let e = parse(&[("OIDC_ISSUER", "https://bücher.example/realms/x")]).unwrap_err();
    assert!(e.problem.contains("punycode"), "{e}");
    assert!(parse(&[("OIDC_ISSUER", "https://xn--bcher-kva.example/realms/x")]).is_ok());
    for name in [
        "UPSTREAM",
        "OIDC_REDIRECT_URI",
        "OIDC_POST_LOGOUT_REDIRECT_URI",
    ] {
        let e = parse(&[(name, "http://app.example.com/x")]).unwrap_err();
        assert_eq!(e.variable, name);
        assert!(e.problem.contains("https"), "{e}");
        assert!(!e.problem.contains("app.example.com"), "never the value");
        assert!(
            parse(&[(name, "http://127.0.0.1:8787/x")]).is_ok(),
            "{name}"
        );
        assert!(
            parse(&[(name, "https://app.example.com/x")]).is_ok(),
            "{name}"
        );
        // What a configured URL has no business carrying is named, never repaired.
        for (bad, says) in [
            ("https://user:pw@app.example.com/x", "user:password@"),
            ("https://app.example.com/x#top", "#fragment"),
            ("https://127.1/x", "dotted-decimal"),
            ("https://app.example.com\\evil.example/", "backslash"),
        ] {
            let e = parse(&[(name, bad)]).unwrap_err();
            assert_eq!(e.variable, name);
            assert!(e.problem.contains(says), "{bad}: {e}");
            assert!(!e.problem.contains("app.example.com"), "never the value");
        }
    }
    assert!(parse(&[("OIDC_ISSUER", "http://localhost:9000/realms/x")]).is_ok());
    let c = parse(&[("OIDC_ISSUER", "https://tenant.auth0.com/")]).unwrap();
    assert_eq!(
        c.providers.first().issuer.as_str(),
        "https://tenant.auth0.com/"
    );
}

#[test]
fn cookie_secret_must_be_long_base64() {
    assert_eq!(problem_var(&[("COOKIE_SECRET", "short")]), "COOKIE_SECRET");
    assert_eq!(
        problem_var(&[("COOKIE_SECRET", "c2hvcnQ=")]),
        "COOKIE_SECRET"
    );
    assert_eq!(
        problem_var(&[("COOKIE_SECRET", "***not base64***")]),
        "COOKIE_SECRET"
    );
    let two = format!("{SECRET_B64}, {}", URL_SAFE_NO_PAD.encode([5u8; 40]));
    assert!(parse(&[("COOKIE_SECRET", &two)]).is_ok());
}

#[test]
fn errors_never_contain_the_value() {
    let e = parse(&[("COOKIE_SECRET", "topsecretvalue")]).unwrap_err();
    assert!(!e.to_string().contains("topsecretvalue"));
    let e = parse(&[("OIDC_ISSUER", "ftp://secret-host.example")]).unwrap_err();
    assert!(!e.to_string().contains("secret-host"));
}

#[test]
fn scopes_must_include_openid() {
    assert_eq!(
        problem_var(&[("OIDC_SCOPES", "profile email")]),
        "OIDC_SCOPES"
    );
    assert_eq!(
        parse(&[("OIDC_SCOPES", "  openid   offline_access ")])
            .unwrap()
            .providers
            .first()
            .scopes,
        "openid offline_access"
    );
}

#[test]
fn token_auth_method_choices() {
    assert_eq!(
        parse(&[("OIDC_TOKEN_AUTH_METHOD", "client_secret_post")])
            .unwrap()
            .providers
            .first()
            .token_auth_method,
        TokenAuthMethod::ClientSecretPost
    );
    assert_eq!(
        problem_var(&[("OIDC_TOKEN_AUTH_METHOD", "client_secret_jwt")]),
        "OIDC_TOKEN_AUTH_METHOD"
    );
}

#[test]
fn durations() {
    assert_eq!(parse_duration("8h"), Some(28800));
    assert_eq!(parse_duration("90m"), Some(5400));
    assert_eq!(parse_duration("3600"), Some(3600));
    assert_eq!(parse_duration("1d"), Some(86400));
    assert_eq!(parse_duration("h"), None);
    assert_eq!(parse_duration("5y"), None);
    assert_eq!(parse_duration("99999999999999999999d"), None);
    assert_eq!(problem_var(&[("SESSION_TTL", "10s")]), "SESSION_TTL");
    assert_eq!(
        problem_var(&[("SESSION_IDLE_TTL", "10s")]),
        "SESSION_IDLE_TTL"
    );
    assert_eq!(
        problem_var(&[("SESSION_TTL", "1h"), ("SESSION_IDLE_TTL", "2h")]),
        "SESSION_IDLE_TTL"
    );
    assert_eq!(
        problem_var(&[("SESSION_REFRESH_MARGIN", "2h")]),
        "SESSION_REFRESH_MARGIN"
    );
    assert_eq!(problem_var(&[("SESSION_STORE", "redis")]), "SESSION_STORE");
    let c = parse(&[
        ("SESSION_IDLE_TTL", "30m"),
        ("SESSION_REFRESH_MARGIN", "0"),
        ("SESSION_STORE", "durable_object"),
    ])
    .unwrap();
    assert_eq!(c.session_idle_secs, Some(1800));
    assert_eq!(c.refresh_margin_secs, 0);
    assert_eq!(c.session_store, SessionStore::DurableObject);
    let d = parse(&[]).unwrap();
    assert_eq!(
        (d.session_idle_secs, d.refresh_margin_secs, d.session_store),
        (None, 60, SessionStore::Cookie)
    );
    assert_eq!(
        parse(&[("SESSION_TTL", "12h")]).unwrap().session_ttl_secs,
        43200
    );
}

#[test]
fn public_paths_and_upstream() {
    let c = parse(&[
        ("PUBLIC_PATHS", "/favicon.ico, /public/*"),
        ("UPSTREAM", "https://origin.example.com/base"),
    ])
    .unwrap();
    let public = crate::http::path::RequestPath::parse("/public/x").unwrap();
    assert!(c.policy.rule_for(&public).is_public());
    assert!(matches!(c.upstream, Upstream::Origin(_)));
    assert_eq!(problem_var(&[("PUBLIC_PATHS", "nope")]), "PUBLIC_PATHS");
    assert_eq!(problem_var(&[("UPSTREAM", "ftp://x")]), "UPSTREAM");
}

#[test]
fn form_replay_size() {
    assert_eq!(parse(&[]).unwrap().form_replay_max_bytes, 65536);
    assert_eq!(
        parse(&[("FORM_REPLAY_MAX_BYTES", "0")])
            .unwrap()
            .form_replay_max_bytes,
        0
    );
    for bad in ["1048577", "-1", "64k"] {
        assert_eq!(
            problem_var(&[("FORM_REPLAY_MAX_BYTES", bad)]),
            "FORM_REPLAY_MAX_BYTES",
            "{bad}"
        );
    }
}

#[test]
fn upstream_service_binding() {
    let c = parse(&[("UPSTREAM", "service:APP_1")]).unwrap();
    assert_eq!(c.upstream, Upstream::Service("APP_1".into()));
    // Not a binding name, no name, or the assets binding by another spelling.
    for bad in [
        "service:",
        "service: ",
        "service:1app",
        "service:app-x",
        "service:a b",
        "service:ASSETS",
        "service:https://x.example",
    ] {
        assert_eq!(problem_var(&[("UPSTREAM", bad)]), "UPSTREAM", "{bad}");
    }
    let long = format!("service:{}", "a".repeat(65));
    assert_eq!(problem_var(&[("UPSTREAM", &long)]), "UPSTREAM");
}

#[test]
fn policy_and_origin_identity_settings() {
    assert_eq!(
        problem_var(&[("ACCESS_RULES", "/admin/* group:")]),
        "ACCESS_RULES"
    );
    assert_eq!(
        problem_var(&[("ALLOW_EMAIL_DOMAINS", "a@b")]),
        "ALLOW_EMAIL_DOMAINS"
    );
    assert_eq!(
        problem_var(&[("ROLES_CLAIM", "realm_access..roles")]),
        "ROLES_CLAIM"
    );
    assert_eq!(
        parse(&[("ROLES_CLAIM", "realm_access.roles")])
            .unwrap()
            .list_claims
            .roles,
        "realm_access.roles"
    );
    assert_eq!(
        problem_var(&[("IDENTITY_HEADER_USER", "X User")]),
        "IDENTITY_HEADER_USER"
    );
    assert_eq!(
        parse(&[("IDENTITY_HEADER_GROUPS", "none")])
            .unwrap()
            .identity_headers
            .groups,
        None
    );
    assert_eq!(
        parse(&[("PASS_ACCESS_TOKEN", "Authorization")])
            .unwrap()
            .pass_access_token,
        Some(PassAccessToken::Authorization)
    );
    assert_eq!(
        problem_var(&[("PASS_ACCESS_TOKEN", "cookie")]),
        "PASS_ACCESS_TOKEN"
    );
    assert_eq!(
        problem_var(&[("ASSERTION_AUDIENCE", "origin")]),
        "ASSERTION_SIGNING_KEYS"
    );
    assert_eq!(
        problem_var(&[("ASSERTION_SIGNING_KEYS", "{}")]),
        "ASSERTION_AUDIENCE"
    );
    assert_eq!(
        problem_var(&[
            ("ASSERTION_AUDIENCE", "o"),
            ("ASSERTION_SIGNING_KEYS", "not json")
        ]),
        "ASSERTION_SIGNING_KEYS"
    );
}

#[test]
fn api_settings() {
    assert!(parse(&[]).unwrap().api.is_none());
    let c = parse(&[
        ("API_AUDIENCES", "api://x, 1111"),
        ("API_ROUTES", "GET /api/* scope:data.read"),
    ])
    .unwrap();
    let api = c.api.unwrap();
    assert_eq!(api.audiences, vec!["api://x", "1111"]);
    assert_eq!(
        api.issuers,
        vec![Issuer::new("https://login.example.com/tenant/v2.0")]
    );
    assert_eq!(
        problem_var(&[("API_ROUTES", "GET /api/* scope:x")]),
        "API_AUDIENCES"
    );
    assert_eq!(
        problem_var(&[("API_AUDIENCES", "a"), ("API_ROUTES", "GET api scope:x")]),
        "API_ROUTES"
    );
    assert_eq!(
        problem_var(&[
            ("API_AUDIENCES", "a"),
            ("API_ISSUERS", "http://evil.example")
        ]),
        "API_ISSUERS"
    );
    assert_eq!(
        problem_var(&[("API_AUDIENCES", "a"), ("API_TOKEN_TYP", "jwt")]),
        "API_TOKEN_TYP"
    );
}

#[test]
fn auth_prefix_rules() {
    assert_eq!(
        parse(&[("AUTH_PATH_PREFIX", "/_sso")])
            .unwrap()
            .auth_path("login"),
        "/_sso/login"
    );
    for bad in ["auth", "/", "/auth/", "/a b", "//x"] {
        assert_eq!(
            problem_var(&[("AUTH_PATH_PREFIX", bad)]),
            "AUTH_PATH_PREFIX",
            "{bad}"
        );
    }
}

#[test]
fn debug_output_hides_secrets() {
    let c = parse(&[]).unwrap();
    let d = format!("{c:?}");
    assert!(!d.contains("s3cret-value"));
    assert!(!d.contains(SECRET_B64));
}

#[test]
fn allow_unverified_email_covers_named_single_tenant_providers_only() {
    let provider = |id: &str| {
        [
            (
                format!("{id}_OIDC_ISSUER"),
                format!("https://{id}.example.com"),
            ),
            (format!("{id}_OIDC_CLIENT_ID"), "c".to_owned()),
            (format!("{id}_OIDC_CLIENT_SECRET"), "s".to_owned()),
        ]
    };
    let two = |allow: &str| {
        let mut m = vars(&[
            ("PROVIDERS", "staff partners"),
            ("ALLOW_UNVERIFIED_EMAIL", allow),
        ]);
        m.remove("OIDC_ISSUER");
        m.remove("OIDC_CLIENT_ID");
        m.remove("OIDC_CLIENT_SECRET");
        m.extend(provider("STAFF").into_iter().chain(provider("PARTNERS")));
        Config::from_vars(|k| m.get(k).cloned())
    };
    let trusted = |c: &Config| {
        c.providers
            .iter()
            .filter(|p| p.trust_unstated_email)
            .map(|p| p.id.to_string())
            .collect::<Vec<_>>()
    };
    assert_eq!(trusted(&two("staff").unwrap()), ["staff"]);
    assert_eq!(trusted(&two("true").unwrap()), ["staff", "partners"]);
    assert!(trusted(&two("false").unwrap()).is_empty());
    assert_eq!(
        two("staff, nobody").unwrap_err().variable,
        "ALLOW_UNVERIFIED_EMAIL"
    );
    assert!(trusted(&parse(&[]).unwrap()).is_empty(), "off by default");

    // A multi-tenant provider: any tenant's administrators write its users' addresses.
    let multi = [
        (
            "OIDC_ISSUER",
            "https://login.microsoftonline.com/organizations/v2.0",
        ),
        ("OIDC_ALLOWED_TENANTS", "*"),
        ("ALLOW_UNVERIFIED_EMAIL", "true"),
    ];
    let e = parse(&multi).unwrap_err();
    assert_eq!(e.variable, "ALLOW_UNVERIFIED_EMAIL");
    assert!(e.problem.contains("multi-tenant"), "{}", e.problem);
}

#[test]
fn two_github_providers_need_membership_rules_pinned_to_one() {
    let two_githubs = |rules: &str| {
        let mut m = vars(&[("PROVIDERS", "github ghes"), ("ACCESS_RULES", rules)]);
        for k in ["OIDC_ISSUER", "OIDC_CLIENT_ID", "OIDC_CLIENT_SECRET"] {
            m.remove(k);
        }
        for (id, issuer) in [
            ("GITHUB", "https://github.com"),
            ("GHES", "https://git.corp.example"),
        ] {
            m.insert(format!("{id}_OIDC_ISSUER"), issuer.to_owned());
            m.insert(format!("{id}_OIDC_PROVIDER_KIND"), "github".to_owned());
            m.insert(format!("{id}_OIDC_CLIENT_ID"), "c".to_owned());
            m.insert(format!("{id}_OIDC_CLIENT_SECRET"), "s".to_owned());
        }
        Config::from_vars(|k| m.get(k).cloned())
    };
    for unpinned in [
        "/x/* github-org:acme",
        "/x/* provider:ghes&github-org:acme github-team:acme/ops",
    ] {
        let e = two_githubs(unpinned).unwrap_err();
        assert_eq!(e.variable, "ACCESS_RULES", "{unpinned}");
    }
    two_githubs("/x/* provider:ghes&github-org:acme provider:github&github-team:acme/ops").unwrap();
}
