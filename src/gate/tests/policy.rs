//! The protected path with a session: the policy, and the identity the origin receives.

use super::*;

const RULES: &str =
    "/admin/* group:admins\n/bob/* email:bob@example.com; /corp/* domain:example.com";

#[test]
fn a_lone_group_name_with_a_space_is_one_group() {
    // AD FS and single-valued Keycloak mappers send one group as a bare string.
    let h = Harness::with_config(&[("ACCESS_RULES", "/admin/* group:admins")]);
    let domain_admins = sign_in_as(&h, |c| c["groups"] = json!("Domain admins"));
    let resp = h.respond(&navigate(&app("/admin/x"), Some(&domain_admins)));
    assert_eq!(resp.status, 403, "\"Domain admins\" is not \"admins\"");
    let admins = sign_in_as(&h, |c| c["groups"] = json!("admins"));
    let (headers, _, _) = h.forward(&navigate(&app("/admin/x"), Some(&admins)));
    assert_eq!(headers.get("X-Auth-Request-Groups"), Some("admins"));
}

#[test]
fn policy_lets_each_person_reach_only_what_rules_allow() {
    let h = Harness::with_config(&[("ACCESS_RULES", RULES)]);
    let alice = h.sign_in();
    let bob = sign_in_as(&h, |c| {
        c["sub"] = "bob".into();
        c["email"] = "bob@example.com".into();
        c["groups"] = json!(["staff"]);
    });
    assert!(h.forward(&navigate(&app("/admin/x"), Some(&alice))).1);
    assert!(h.forward(&navigate(&app("/corp/x"), Some(&alice))).1);
    let denied = h.respond(&navigate(&app("/bob/x"), Some(&alice)));
    assert_eq!(denied.status, 403);
    let page = denied.body_text();
    assert!(page.contains("signed in as alice@example.com"), "{page}");
    assert!(page.contains("action=\"/auth/logout\""), "offers sign-out");

    assert!(h.forward(&navigate(&app("/bob/x"), Some(&bob))).1);
    let api = h.respond(&api_get(&app("/admin/x"), Some(&bob)));
    assert_eq!(api.status, 403);
    assert_eq!(json_body(&api)["error"], "forbidden");
}

#[test]
fn every_decision_writes_one_structured_log_line() {
    let h = Harness::with_config(&[("ACCESS_RULES", RULES)]);
    let alice = h.sign_in();
    h.forward(&navigate(&app("/admin/x?secret=1"), Some(&alice)));
    h.respond(&navigate(&app("/bob/y"), Some(&alice)));
    let lines = h.idp.logged("access");
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[0]["outcome"], "allow");
    assert_eq!(lines[0]["rule"], "ACCESS_RULES[1] /admin/*");
    assert_eq!(
        lines[0]["path"], "/admin/x",
        "the path only, never the query"
    );
    assert_eq!(lines[0]["sub"], "alice");
    assert_eq!(lines[0]["reason"], "matched group:admins");
    assert!(lines[0]["time"].is_u64());
    assert_eq!(lines[1]["outcome"], "deny");
    assert!(
        !lines.iter().any(|l| l.to_string().contains("portcullis=")),
        "no cookie in logs"
    );
}

#[test]
fn encoded_and_dotted_paths_cannot_slip_past_a_rule() {
    let h = Harness::with_config(&[
        ("ACCESS_RULES", "/admin/* group:admins"),
        ("PUBLIC_PATHS", "/public/*"),
    ]);
    let bob = sign_in_as(&h, |c| c["groups"] = json!(["staff"]));
    for path in [
        "/admin/x",
        "//admin/x",
        "/%61dmin/x",
        "/public/../admin/x",
        "/public/%2e%2e/admin/x",
        "/./admin",
    ] {
        let resp = h.respond(&navigate(&app(path), Some(&bob)));
        assert_eq!(resp.status, 403, "{path}");
    }
    for path in [
        "/public%2F..%2Fadmin/x",
        "/admin;x/y",
        "/admin./x",
        "/admin%00",
    ] {
        let resp = h.respond(&navigate(&app(path), Some(&bob)));
        assert_eq!(resp.status, 400, "{path}");
    }
}

#[test]
fn the_origin_receives_the_normalized_path_the_policy_judged() {
    let h = Harness::new();
    let alice = h.sign_in();
    match h.handle(&navigate(&app("//docs/./a/../%62?q=1"), Some(&alice))) {
        Outcome::Forward { path, .. } => assert_eq!(path, "/docs/b"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn unverified_email_does_not_satisfy_a_domain_rule() {
    let h = Harness::with_config(&[("ALLOW_EMAIL_DOMAINS", "example.com")]);
    let unverified = sign_in_as(&h, |c| c["email_verified"] = false.into());
    assert_eq!(
        h.respond(&navigate(&app("/"), Some(&unverified))).status,
        403
    );
    let verified = h.sign_in();
    assert!(h.forward(&navigate(&app("/"), Some(&verified))).1);
}

#[test]
fn roles_come_from_the_configured_claim() {
    let h = Harness::with_config(&[
        ("ALLOW_ROLES", "reader"),
        ("ROLES_CLAIM", "realm_access.roles"),
    ]);
    let reader = sign_in_as(&h, |c| c["realm_access"] = json!({"roles": ["reader"]}));
    assert!(h.forward(&navigate(&app("/"), Some(&reader))).1);
    let other = sign_in_as(&h, |c| c["roles"] = json!(["reader"]));
    assert_eq!(h.respond(&navigate(&app("/"), Some(&other))).status, 403);
}

#[test]
fn spoofed_identity_headers_are_replaced_by_the_real_identity() {
    let h = Harness::with_config(&[
        ("IDENTITY_HEADER_EMAIL", "X-Email"),
        ("IDENTITY_HEADER_GROUPS", "none"),
    ]);
    let alice = h.sign_in();
    let req = request(
        Method::Get,
        &app("/"),
        &[
            ("Accept", HTML),
            ("Cookie", &alice),
            ("X-Auth-Request-User", "mallory"),
            ("x_auth_request_user", "mallory"),
            ("X-Email", "mallory@evil"),
            ("X-Auth-Request-Groups", "admins"),
            ("X-Portcullis-Assertion", "forged"),
        ],
    );
    let (headers, _, user) = h.forward(&req);
    assert_eq!(user.as_deref(), Some("alice"));
    let all: Vec<(&str, &str)> = headers.iter().collect();
    assert_eq!(
        all.iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case("x-auth-request-user")
                || *n == "x_auth_request_user")
            .count(),
        1,
        "{all:?}"
    );
    assert_eq!(headers.get("X-Email"), Some("alice@example.com"));
    assert_eq!(
        headers.get("X-Auth-Request-Groups"),
        None,
        "groups header disabled and spoof stripped"
    );
    assert_eq!(headers.get("X-Portcullis-Assertion"), None);
}

#[test]
fn access_token_is_passed_only_when_configured() {
    let h = Harness::with_config(&[("PASS_ACCESS_TOKEN", "authorization")]);
    let alice = h.sign_in();
    let (headers, ..) = h.forward(&navigate(&app("/"), Some(&alice)));
    assert_eq!(
        headers.get("Authorization"),
        Some(format!("Bearer {ACCESS_TOKEN}").as_str())
    );
    let plain = Harness::new();
    let s = plain.sign_in();
    let (headers, ..) = plain.forward(&request(
        Method::Get,
        &app("/"),
        &[
            ("Accept", HTML),
            ("Cookie", &s),
            ("Authorization", "Bearer client-own"),
        ],
    ));
    assert_eq!(
        headers.get("Authorization"),
        Some("Bearer client-own"),
        "a client's own Authorization passes untouched"
    );
}

#[test]
fn the_signed_assertion_verifies_against_jwks_json() {
    let keys = format!(
        "[{}, {}]",
        assertion_key_json("current"),
        assertion_key_json("previous")
    );
    let h = Harness::with_config(&[
        ("ASSERTION_AUDIENCE", "origin-app"),
        ("ASSERTION_SIGNING_KEYS", &keys),
    ]);
    let alice = h.sign_in();
    let (headers, ..) = h.forward(&navigate(&app("/"), Some(&alice)));
    let jwt = headers
        .get("X-Portcullis-Assertion")
        .expect("assertion header")
        .to_owned();

    let jwks = h.respond(&api_get(&app("/auth/jwks.json"), None));
    assert_eq!(jwks.status, 200);
    let set = crate::jose::jwks::JwkSet::parse(&jwks.body).expect("jwks");
    assert_eq!(set.keys.len(), 2);
    let jws = crate::jose::jws::UnverifiedJws::parse(&jwt).expect("jws");
    assert_eq!(jws.header.kid.as_deref(), Some("current"));
    let key = set.select(&jws.header).expect("key");
    crate::jose::verify::verify_rust(jws.header.alg, key, jws.signing_input(), jws.signature())
        .expect("signature");
    let claims: Value = serde_json::from_slice(
        &URL_SAFE_NO_PAD
            .decode(jwt.split('.').nth(1).expect("payload"))
            .expect("b64"),
    )
    .expect("json");
    assert_eq!(claims["iss"], APP);
    assert_eq!(claims["aud"], "origin-app");
    assert_eq!(claims["sub"], "alice");
    assert_eq!(claims["email"], "alice@example.com");
    assert_eq!(claims["groups"], json!(["staff", "admins"]));
    assert_eq!(
        claims["exp"].as_u64().expect("exp") - claims["iat"].as_u64().expect("iat"),
        300
    );
}

#[test]
fn jwks_json_is_empty_without_an_assertion_key() {
    let h = Harness::new();
    let resp = h.respond(&api_get(&app("/auth/jwks.json"), None));
    assert_eq!(json_body(&resp), json!({"keys": []}));
}

// --- Review fixes ---

#[test]
fn an_unusable_provider_answer_falls_back_to_the_cached_copy_and_backs_off() {
    let h = Harness::new();
    h.start_login();
    h.idp.advance(PROVIDER_MAX_AGE + 1);
    h.idp
        .serve(DISCOVERY_URL, cacheable_json("<html>maintenance</html>"));
    let login = h.start_login();
    assert_eq!(
        login.param("client_id"),
        "client",
        "the stale copy still serves"
    );
    assert_eq!(h.idp.fetches_of(DISCOVERY_URL), 2);
    h.start_login();
    assert_eq!(
        h.idp.fetches_of(DISCOVERY_URL),
        2,
        "no refetch within the back-off minute"
    );
    h.idp.advance(61);
    h.start_login();
    assert_eq!(h.idp.fetches_of(DISCOVERY_URL), 3);
}

#[test]
fn provider_error_text_needs_a_live_sign_in() {
    let h = Harness::new();
    let forged = app("/auth/callback?error=access_denied&error_description=Your+account+is+locked%2C+call+555&state=made-up");
    let resp = h.respond(&navigate(&forged, None));
    assert_eq!(resp.status, 400);
    assert!(
        !resp.body_text().contains("555"),
        "forged provider text is not shown"
    );
    assert_eq!(
        h.idp.last_failure_reason().as_deref(),
        Some("login_expired")
    );
}

#[test]
fn pass_access_token_mode_never_forwards_the_clients_own_authorization() {
    let h = Harness::with_config(&[
        ("PASS_ACCESS_TOKEN", "authorization"),
        ("PUBLIC_PATHS", "/public/*"),
    ]);
    let req = request(
        Method::Get,
        &app("/public/x"),
        &[("Accept", HTML), ("Authorization", "Bearer forged")],
    );
    let (headers, protected, _) = h.forward(&req);
    assert!(!protected);
    assert_eq!(headers.get("Authorization"), None);
}

/// With APIs on, the client's `Authorization` is its API credential on API requests; on the
/// session path, with the origin told that `Authorization` is the gate's, a client's own (Basic,
/// DPoP) never goes on, also when the session has no live access token to put there.
#[test]
fn pass_access_token_mode_with_apis_never_forwards_a_clients_authorization_on_a_session() {
    let h = Harness::with_config(&[
        ("PASS_ACCESS_TOKEN", "authorization"),
        ("API_AUDIENCES", "https://api.example.com"),
    ]);
    let alice = h.sign_in();
    for advance in [0, 3_600] {
        h.idp.advance(advance);
        let (headers, ..) = h.forward(&request(
            Method::Get,
            &app("/page"),
            &[
                ("Accept", HTML),
                ("Cookie", &alice),
                ("Authorization", "Basic Zm9vOmJhcg=="),
            ],
        ));
        let sent = headers.get("Authorization");
        assert!(
            sent.is_none_or(|v| v == format!("Bearer {ACCESS_TOKEN}")),
            "after {advance}s: {sent:?}"
        );
    }
}

#[test]
fn access_log_deny_keeps_only_denials() {
    let h = Harness::with_config(&[("ACCESS_RULES", RULES), ("ACCESS_LOG", "deny")]);
    let alice = h.sign_in();
    h.forward(&navigate(&app("/admin/x"), Some(&alice)));
    h.respond(&navigate(&app("/bob/y"), Some(&alice)));
    let lines = h.idp.logged("access");
    assert_eq!(lines.len(), 1);
    assert_eq!(lines[0]["outcome"], "deny");
}
