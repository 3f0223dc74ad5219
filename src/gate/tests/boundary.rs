//! The trust boundary: only the right people reach the origin, and the origin learns who they
//! really are. One test per class of bypass the security review found.

use super::bearer::{access_token, api_harness, with_bearer, OTHER_ISSUER};
use super::*;

fn forwarded(h: &Harness, req: &GateRequest) -> Headers {
    h.forward(req).0
}

#[test]
fn an_unverified_email_never_reaches_the_origin_as_the_persons() {
    let keys = assertion_key_json("a1");
    let h = Harness::with_config(&[
        ("ASSERTION_AUDIENCE", "origin-app"),
        ("ASSERTION_SIGNING_KEYS", &keys),
    ]);
    for verified in [json!(false), Value::Null] {
        let cookie = sign_in_as(&h, |c| {
            c["email"] = "victim@corp.example".into();
            match &verified {
                Value::Null => {
                    c.as_object_mut().unwrap().remove("email_verified");
                }
                v => c["email_verified"] = v.clone(),
            }
        });
        let headers = forwarded(&h, &navigate(&app("/"), Some(&cookie)));
        assert_eq!(headers.get("X-Auth-Request-Email"), None, "{verified}");
        // Nor the site's own scripts, through /auth/userinfo.
        let me = json_body(&h.respond(&api_get(&app("/auth/userinfo"), Some(&cookie))));
        assert_eq!(me["email"], Value::Null, "{verified}: {me}");
        assert_eq!(me["sub"], "alice");
        assert_eq!(headers.get("X-Auth-Request-User"), Some("alice"));
        let claims = assertion_claims(&headers);
        assert!(claims.get("email").is_none(), "{verified}: {claims}");
        assert_eq!(claims["sub"], "alice");
        assert_eq!(claims["idp"], ISSUER);
    }
    // Verified: it travels, and the assertion says so.
    let cookie = sign_in_as(&h, |_| {});
    let headers = forwarded(&h, &navigate(&app("/"), Some(&cookie)));
    assert_eq!(
        headers.get("X-Auth-Request-Email"),
        Some("alice@example.com")
    );
    assert_eq!(assertion_claims(&headers)["email_verified"], true);
}

#[test]
fn with_allow_unverified_email_an_unstated_email_travels_marked_unverified() {
    let keys = assertion_key_json("a1");
    let h = Harness::with_config(&[
        ("ASSERTION_AUDIENCE", "origin-app"),
        ("ASSERTION_SIGNING_KEYS", &keys),
        ("ALLOW_UNVERIFIED_EMAIL", "true"),
    ]);
    let unstated = sign_in_as(&h, |c| {
        c.as_object_mut().unwrap().remove("email_verified");
    });
    let headers = forwarded(&h, &navigate(&app("/"), Some(&unstated)));
    assert_eq!(
        headers.get("X-Auth-Request-Email"),
        Some("alice@example.com")
    );
    assert_eq!(assertion_claims(&headers)["email_verified"], false);
    // `email_verified: false` never counts, whatever the setting.
    let refused = sign_in_as(&h, |c| c["email_verified"] = false.into());
    let headers = forwarded(&h, &navigate(&app("/"), Some(&refused)));
    assert_eq!(headers.get("X-Auth-Request-Email"), None);
}

#[test]
fn a_bearer_tokens_unverified_email_or_login_name_is_not_an_email() {
    let (h, _) = api_harness(&[]);
    let entra = access_token(&h.key, ISSUER, |c| {
        c["email"] = "victim@corp.example".into();
        c["preferred_username"] = "victim@corp.example".into();
    });
    let headers = forwarded(&h, &with_bearer(Method::Get, &app("/api/data/1"), &entra));
    assert_eq!(headers.get("X-Auth-Request-Email"), None);
    assert!(assertion_claims(&headers).get("email").is_none());
    let verified = access_token(&h.key, ISSUER, |c| {
        c["email"] = "alice@example.com".into();
        c["email_verified"] = true.into();
    });
    let headers = forwarded(
        &h,
        &with_bearer(Method::Get, &app("/api/data/1"), &verified),
    );
    assert_eq!(
        headers.get("X-Auth-Request-Email"),
        Some("alice@example.com")
    );
}

/// `ALLOW_UNVERIFIED_EMAIL` speaks for the providers it covers: a token their issuer signed,
/// never another of `API_ISSUERS` (or a tenant of a multi-tenant API).
#[test]
fn an_unstated_email_counts_only_from_a_provider_allow_unverified_email_covers() {
    let (h, other) = api_harness(&[("ALLOW_UNVERIFIED_EMAIL", "true")]);
    let unstated = |key: &TestKey, iss: &str| {
        access_token(key, iss, |c| c["email"] = "alice@example.com".into())
    };
    let ours = unstated(&h.key, ISSUER);
    let headers = forwarded(&h, &with_bearer(Method::Get, &app("/api/data/1"), &ours));
    assert_eq!(
        headers.get("X-Auth-Request-Email"),
        Some("alice@example.com")
    );
    assert_eq!(assertion_claims(&headers)["email_verified"], false);
    let theirs = unstated(&other, OTHER_ISSUER);
    let headers = forwarded(&h, &with_bearer(Method::Get, &app("/api/data/1"), &theirs));
    assert_eq!(headers.get("X-Auth-Request-Email"), None);
    assert!(assertion_claims(&headers).get("email").is_none());
}

#[test]
fn a_token_without_sub_is_refused() {
    let (h, _) = api_harness(&[]);
    let token = access_token(&h.key, ISSUER, |c| {
        c.as_object_mut().unwrap().remove("sub");
    });
    let resp = h.respond(&with_bearer(Method::Get, &app("/api/data/1"), &token));
    assert_eq!(resp.status, 401);
    assert!(resp
        .headers
        .get("WWW-Authenticate")
        .unwrap()
        .contains("invalid_token"));
}

#[test]
fn a_rule_on_a_static_file_covers_every_path_the_assets_serve_it_at() {
    let h = Harness::with_config(&[
        ("UPSTREAM", "assets"),
        (
            "ACCESS_RULES",
            "/secret.html group:admins; /private/* group:admins",
        ),
    ]);
    let staff = sign_in_as(&h, |c| c["groups"] = json!(["staff"]));
    for path in [
        "/secret.html",
        "/secret",
        "/secret/",
        "/SECRET",
        "/secret/index.html",
        "/private/index.html",
        "/private/",
        "/private",
        "/private/index",
    ] {
        let resp = h.respond(&navigate(&app(path), Some(&staff)));
        assert_eq!(resp.status, 403, "{path}");
    }
    let admin = sign_in_as(&h, |c| c["groups"] = json!(["admins"]));
    let (_, protected, _) = h.forward(&navigate(&app("/secret"), Some(&admin)));
    assert!(protected);
}

#[test]
fn an_origin_upstream_is_judged_on_the_path_as_sent() {
    let h = Harness::with_config(&[
        ("UPSTREAM", "https://origin.example.com"),
        ("ACCESS_RULES", "/secret.html group:admins"),
    ]);
    let staff = sign_in_as(&h, |c| c["groups"] = json!(["staff"]));
    assert_eq!(
        h.respond(&navigate(&app("/secret.html"), Some(&staff)))
            .status,
        403
    );
    // No alias is assumed for an origin: /secret is another resource there.
    let (_, protected, _) = h.forward(&navigate(&app("/secret"), Some(&staff)));
    assert!(protected);
}

#[test]
fn unicode_look_alikes_of_a_path_are_a_400() {
    let h = Harness::with_config(&[("ACCESS_RULES", "/admin/* group:admins")]);
    let staff = sign_in_as(&h, |c| c["groups"] = json!(["staff"]));
    for path in [
        "/adm%C4%B1n/",
        "/%EF%BD%81dmin/",
        "/ad%E2%80%8Bmin/",
        "/%C0%AFadmin",
    ] {
        let resp = h.respond(&navigate(&app(path), Some(&staff)));
        assert_eq!(resp.status, 400, "{path}");
        assert_eq!(
            h.idp.last_failure_reason().as_deref(),
            Some("ambiguous_path")
        );
    }
}

#[test]
fn no_method_gets_around_an_api_route_and_overrides_never_reach_the_origin() {
    let (h, _) = api_harness(&[(
        "API_ROUTES",
        "GET /api/data/* scope:data.write; * /api/open/* any",
    )]);
    let reader = access_token(&h.key, ISSUER, |_| {});
    // HEAD follows GET's entry: refused the same way.
    let head = h.respond(&with_bearer(Method::Head, &app("/api/data/1"), &reader));
    assert_eq!(head.status, 403);
    for method in [Method::Post, Method::Delete, Method::Put, Method::Other] {
        let resp = h.respond(&with_bearer(method, &app("/api/data/1"), &reader));
        assert_eq!(resp.status, 405, "{method:?}");
        assert_eq!(resp.headers.get("Allow"), Some("GET, HEAD"));
    }
    // Without any credential too: the route's path is never forwarded with another method.
    let resp = h.respond(&request(Method::Delete, &app("/api/data/1"), &[]));
    assert_eq!(resp.status, 405);
    let auth = format!("Bearer {reader}");
    let overridden = request(
        Method::Post,
        &app("/api/data/1"),
        &[("Authorization", &auth), ("X-HTTP-Method-Override", "GET")],
    );
    assert_eq!(h.respond(&overridden).status, 405);
    let open = request(
        Method::Post,
        &app("/api/open/x"),
        &[
            ("Authorization", &auth),
            ("X-HTTP-Method-Override", "DELETE"),
            ("X-HTTP-Method", "DELETE"),
            ("X-Method-Override", "DELETE"),
        ],
    );
    let headers = forwarded(&h, &open);
    for name in [
        "X-HTTP-Method-Override",
        "X-HTTP-Method",
        "X-Method-Override",
    ] {
        assert_eq!(headers.get(name), None, "{name}");
    }
}

#[test]
fn a_method_override_in_the_query_on_an_api_path_is_a_400_in_every_spelling_php_reads() {
    let (h, _) = api_harness(&[(
        "API_ROUTES",
        "POST /api/data/* scope:data.write; DELETE /api/data/* scope:data.admin",
    )]);
    let writer = access_token(&h.key, ISSUER, |c| c["scope"] = json!("data.write"));
    let post = |query: &str| {
        let url = app(&format!("/api/data/42{query}"));
        h.respond(&with_bearer(Method::Post, &url, &writer))
    };
    for query in [
        "?_method=DELETE",
        "?.method=DELETE",
        "?+_method=DELETE",
        "?%20.method=DELETE",
        "?[method=DELETE",
        "?_method[]=DELETE",
        "?a=1&_METHOD=DELETE",
    ] {
        let resp = post(query);
        assert_eq!(resp.status, 400, "{query}");
        assert!(resp.body_text().contains("invalid_request"), "{query}");
    }
    let other_names = app("/api/data/42?method=x&x_method=y");
    let forwarded = h.handle(&with_bearer(Method::Post, &other_names, &writer));
    assert!(
        matches!(forwarded, Outcome::Forward { .. }),
        "{forwarded:?}"
    );
}

#[test]
fn rewrite_and_forwarding_headers_are_set_by_the_gate() {
    let h = Harness::new();
    let cookie = sign_in_as(&h, |_| {});
    let req = request(
        Method::Get,
        &app("/page"),
        &[
            ("Accept", HTML),
            ("Cookie", &cookie),
            ("X-Original-URL", "/admin"),
            ("X-Rewrite-URL", "/admin"),
            ("X-Forwarded-Host", "evil.example"),
            ("X-Forwarded-Proto", "http"),
            ("X-Forwarded-For", "10.0.0.1"),
            ("Forwarded", "for=10.0.0.1;host=evil.example"),
            ("CF-Connecting-IP", "203.0.113.9"),
        ],
    );
    let headers = forwarded(&h, &req);
    assert_eq!(headers.get("X-Original-URL"), None);
    assert_eq!(headers.get("X-Rewrite-URL"), None);
    assert_eq!(headers.get("X-Forwarded-Host"), Some("app.example.com"));
    assert_eq!(headers.get("X-Forwarded-Proto"), Some("https"));
    assert_eq!(headers.get("X-Forwarded-For"), Some("203.0.113.9"));
    assert_eq!(
        headers.get("Forwarded"),
        Some("for=203.0.113.9;host=\"app.example.com\";proto=https")
    );
    // Public paths get the same treatment.
    let public = Harness::with_config(&[("PUBLIC_PATHS", "/open/*")]);
    let headers = forwarded(
        &public,
        &request(
            Method::Get,
            &app("/open/x"),
            &[("X-Original-URL", "/admin")],
        ),
    );
    assert_eq!(headers.get("X-Original-URL"), None);
}

#[test]
fn a_malformed_bearer_header_is_refused_not_forwarded_beside_a_cookie() {
    let (h, _) = api_harness(&[]);
    let cookie = sign_in_as(&h, |_| {});
    for value in ["Bearer\tx", "Bearer", "bearer a b", "Bearer x, Bearer y"] {
        let req = request(
            Method::Get,
            &app("/page"),
            &[
                ("Accept", HTML),
                ("Cookie", &cookie),
                ("Authorization", value),
            ],
        );
        let resp = h.respond(&req);
        assert_eq!(resp.status, 400, "{value:?}");
        assert_eq!(json_body(&resp)["error"], "invalid_request");
    }
}

#[test]
fn a_public_file_opens_only_the_paths_that_serve_it_in_front_of_static_assets() {
    let h = Harness::with_config(&[
        ("UPSTREAM", "assets"),
        ("PUBLIC_PATHS", "/docs.html /open/* /index/*"),
        ("ACCESS_RULES", "/docs/* group:admins"),
    ]);
    for open in ["/docs.html", "/docs", "/open/x.html", "/open/"] {
        let (_, protected, _) = h.forward(&navigate(&app(open), None));
        assert!(!protected, "{open}");
    }
    // Another file with the same canonical name, a sibling of a public directory, and
    // everything when a public prefix canonicalizes to the root: all still need sign-in.
    for closed in [
        "/docs/",
        "/docs/index.html",
        "/open.html",
        "/secret.html",
        "/",
    ] {
        let resp = h.respond(&navigate(&app(closed), None));
        assert_eq!(resp.status, 302, "{closed}");
        assert!(location(&resp).contains("/auth/login"), "{closed}");
    }
}
