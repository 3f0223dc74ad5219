//! The Bearer path through the gate (`API_AUDIENCES`): token checks, RFC 6750 answers, the
//! verified-token cache, and the identity the origin receives for a token.

use super::*;

pub(super) const OTHER_ISSUER: &str = "https://other.example.com";
const OTHER_DISCOVERY: &str = "https://other.example.com/.well-known/openid-configuration";
const OTHER_JWKS: &str = "https://other.example.com/jwks";
const API_AUD: &str = "api://portcullis";

/// An API with two trusted issuers (ours and another), routes, and the signed assertion.
pub(super) fn api_harness(extra: &[(&str, &str)]) -> (Harness, TestKey) {
    let assertion_keys = assertion_key_json("a1");
    // The first value of a name wins: `extra` goes first.
    let mut vars: Vec<(&str, &str)> = extra.to_vec();
    vars.extend_from_slice(&[
        ("API_AUDIENCES", API_AUD),
        (
            "API_ISSUERS",
            "https://idp.example.com https://other.example.com",
        ),
        (
            "API_ROUTES",
            "GET /api/data/* scope:data.read; POST /api/data/* scope:data.write",
        ),
        ("ASSERTION_AUDIENCE", "origin-app"),
        ("ASSERTION_SIGNING_KEYS", assertion_keys.as_str()),
    ]);
    let h = Harness::with_config(&vars);
    let other = TestKey::rsa(Some("other-1"));
    h.idp.serve(
        OTHER_DISCOVERY,
        cacheable_json(
            json!({
                "issuer": OTHER_ISSUER,
                "authorization_endpoint": "https://other.example.com/authorize",
                "token_endpoint": "https://other.example.com/token",
                "jwks_uri": OTHER_JWKS,
            })
            .to_string(),
        ),
    );
    h.idp.serve(OTHER_JWKS, jwks_answer(&[&other]));
    (h, other)
}

/// An RFC 9068 access token from `iss`, signed by `key`, with `edit` applied to its claims.
pub(super) fn access_token(key: &TestKey, iss: &str, edit: impl FnOnce(&mut Value)) -> String {
    let now = NOW;
    let mut claims = json!({
        "iss": iss, "sub": "alice", "aud": API_AUD, "exp": now + 600, "iat": now,
        "client_id": "spa", "scope": "data.read", "jti": "j1",
    });
    edit(&mut claims);
    let mut header = key.header();
    header["typ"] = "at+jwt".into();
    key.sign_raw(&header, &claims)
}

pub(super) fn with_bearer(method: Method, url: &str, token: &str) -> GateRequest {
    let auth = format!("Bearer {token}");
    request(
        method,
        url,
        &[("Accept", "application/json"), ("Authorization", &auth)],
    )
}

fn challenge(resp: &Response) -> &str {
    resp.headers.get("WWW-Authenticate").expect("a challenge")
}

#[test]
fn a_valid_token_is_forwarded_with_its_identity_and_no_cookie_is_consulted() {
    let (h, _) = api_harness(&[]);
    let token = access_token(&h.key, ISSUER, |c| c["groups"] = json!(["staff"]));
    let (headers, protected, user) =
        h.forward(&with_bearer(Method::Get, &app("/api/data/1"), &token));
    assert!(protected);
    assert_eq!(user.as_deref(), Some("alice"));
    assert_eq!(headers.get("X-Auth-Request-Groups"), Some("staff"));
    let claims = assertion_claims(&headers);
    assert_eq!(claims["sub"], "alice");
    assert_eq!(claims["idp"], ISSUER);
    let access = h.idp.logged("access");
    assert_eq!(access.last().expect("an access line")["outcome"], "allow");
}

#[test]
fn two_tokens_with_the_same_sub_from_two_issuers_get_their_own_assertions() {
    let (h, other) = api_harness(&[]);
    let ours = access_token(&h.key, ISSUER, |c| {
        c["groups"] = json!(["admins"]);
        c["roles"] = json!(["Data.Admin"]);
    });
    let theirs = access_token(&other, OTHER_ISSUER, |_| {});
    let (first, _, first_user) = h.forward(&with_bearer(Method::Get, &app("/api/data/1"), &ours));
    let (second, _, second_user) =
        h.forward(&with_bearer(Method::Get, &app("/api/data/1"), &theirs));
    // The provider's own users are named as its sessions are; another issuer's with it.
    assert_eq!(first_user.as_deref(), Some("alice"));
    let theirs_named = format!("{OTHER_ISSUER}#alice");
    assert_eq!(second_user.as_deref(), Some(theirs_named.as_str()));
    let (a, b) = (assertion_claims(&first), assertion_claims(&second));
    assert_eq!(a["idp"], ISSUER);
    assert_eq!(a["groups"], json!(["admins"]));
    assert_eq!(b["sub"], "alice");
    assert_eq!(b["idp"], OTHER_ISSUER, "not the first token's issuer");
    assert!(b.get("groups").is_none(), "not the first token's groups");
    assert!(b.get("roles").is_none(), "not the first token's roles");
}

#[test]
fn the_same_person_with_fewer_roles_gets_an_assertion_with_fewer_roles() {
    let (h, _) = api_harness(&[]);
    let admin = access_token(&h.key, ISSUER, |c| c["roles"] = json!(["Data.Admin"]));
    let reader = access_token(&h.key, ISSUER, |c| c["jti"] = "j2".into());
    let (first, ..) = h.forward(&with_bearer(Method::Get, &app("/api/data/1"), &admin));
    let (second, ..) = h.forward(&with_bearer(Method::Get, &app("/api/data/1"), &reader));
    assert_eq!(assertion_claims(&first)["roles"], json!(["Data.Admin"]));
    assert!(assertion_claims(&second).get("roles").is_none());
    // The same token again reuses its own assertion.
    let (again, ..) = h.forward(&with_bearer(Method::Get, &app("/api/data/1"), &admin));
    assert_eq!(
        again.get("X-Portcullis-Assertion"),
        first.get("X-Portcullis-Assertion")
    );
}

#[test]
fn a_verified_token_is_checked_once_per_isolate() {
    let (h, _) = api_harness(&[]);
    let token = access_token(&h.key, ISSUER, |_| {});
    for _ in 0..3 {
        h.forward(&with_bearer(Method::Get, &app("/api/data/1"), &token));
    }
    assert_eq!(h.idp.fetches_of(JWKS_URL), 1);
    assert_eq!(h.idp.fetches_of(DISCOVERY_URL), 1);
}

#[test]
fn api_routes_answer_rfc6750_for_missing_malformed_and_insufficient_tokens() {
    let (h, _) = api_harness(&[]);
    let missing = h.respond(&api_get(&app("/api/data/1"), None));
    assert_eq!(missing.status, 401);
    assert_eq!(challenge(&missing), "Bearer realm=\"portcullis\"");
    assert_eq!(json_body(&missing)["error"], "unauthenticated");

    let malformed = h.respond(&request(
        Method::Get,
        &app("/api/data/1"),
        &[("Authorization", "Bearer two parts")],
    ));
    assert_eq!(malformed.status, 400);
    assert!(challenge(&malformed).contains("error=\"invalid_request\""));

    let reader = access_token(&h.key, ISSUER, |_| {});
    let write = h.respond(&with_bearer(Method::Post, &app("/api/data/1"), &reader));
    assert_eq!(write.status, 403);
    assert!(challenge(&write).contains("error=\"insufficient_scope\""));
    assert!(challenge(&write).contains("scope=\"data.write\""));
    assert_eq!(json_body(&write)["scope"], "data.write");
    let denied = h.idp.logged("access");
    assert_eq!(denied.last().expect("an access line")["outcome"], "deny");
}

#[test]
fn every_bad_token_is_a_401_invalid_token_and_a_log_line() {
    let (h, _) = api_harness(&[]);
    let stranger = TestKey::es256(Some("k1"));
    let cases: Vec<(&str, String)> = vec![
        ("garbage", "not-a-jwt".into()),
        (
            "untrusted issuer",
            access_token(&h.key, "https://evil.example.com", |_| {}),
        ),
        ("forged signature", access_token(&stranger, ISSUER, |_| {})),
        (
            "expired",
            access_token(&h.key, ISSUER, |c| c["exp"] = (NOW - 3600).into()),
        ),
        (
            "other audience",
            access_token(&h.key, ISSUER, |c| c["aud"] = "api://other".into()),
        ),
        (
            "an ID token",
            access_token(&h.key, ISSUER, |c| c["nonce"] = "n".into()),
        ),
    ];
    for (what, token) in cases {
        let before = h.idp.logged("bearer_rejected").len();
        let resp = h.respond(&with_bearer(Method::Get, &app("/api/data/1"), &token));
        assert_eq!(resp.status, 401, "{what}: {}", resp.body_text());
        assert!(
            challenge(&resp).contains("error=\"invalid_token\""),
            "{what}"
        );
        assert_eq!(h.idp.logged("bearer_rejected").len(), before + 1, "{what}");
    }
    assert_eq!(
        h.idp
            .fetches_of("https://evil.example.com/.well-known/openid-configuration"),
        0,
        "an untrusted issuer's keys are never fetched"
    );
}

#[test]
fn an_issuer_whose_keys_cannot_be_had_is_a_503() {
    let (h, _) = api_harness(&[]);
    h.idp.set_network_down(true);
    let token = access_token(&h.key, ISSUER, |_| {});
    let resp = h.respond(&with_bearer(Method::Get, &app("/api/data/1"), &token));
    assert_eq!(resp.status, 503);
    assert!(challenge(&resp).contains("temporarily_unavailable"));
}

#[test]
fn off_api_routes_the_access_policy_judges_the_token() {
    let (h, _) = api_harness(&[("ACCESS_RULES", "/admin/* group:admins")]);
    let staff = access_token(&h.key, ISSUER, |c| c["groups"] = json!(["staff"]));
    let resp = h.respond(&with_bearer(Method::Get, &app("/admin/x"), &staff));
    assert_eq!(resp.status, 403);
    assert_eq!(json_body(&resp)["error"], "forbidden");
    let admin = access_token(&h.key, ISSUER, |c| c["groups"] = json!(["admins"]));
    let (_, protected, user) = h.forward(&with_bearer(Method::Get, &app("/admin/x"), &admin));
    assert!(protected);
    assert_eq!(user.as_deref(), Some("alice"));
}

#[test]
fn a_client_cannot_pose_as_another_identity_with_headers_beside_its_token() {
    let (h, _) = api_harness(&[]);
    let token = access_token(&h.key, ISSUER, |_| {});
    let auth = format!("Bearer {token}");
    let req = request(
        Method::Get,
        &app("/api/data/1"),
        &[
            ("Authorization", &auth),
            ("X-Auth-Request-User", "mallory"),
            ("X-Portcullis-Assertion", "forged"),
        ],
    );
    let (headers, _, user) = h.forward(&req);
    assert_eq!(user.as_deref(), Some("alice"));
    assert_ne!(headers.get("X-Portcullis-Assertion"), Some("forged"));
}

#[test]
fn static_assets_get_each_request_as_it_came_and_an_origin_gets_the_gates_headers() {
    // Static assets read no request header: nothing is stripped, set or signed for them.
    // Any other upstream gets the identity, whatever the client sent beside its credential.
    for (upstream, gate_headers) in [("assets", false), ("https://origin.example.com", true)] {
        let (h, _) = api_harness(&[("UPSTREAM", upstream), ("PUBLIC_PATHS", "/open/*")]);
        let token = access_token(&h.key, ISSUER, |_| {});
        let auth = format!("Bearer {token}");
        let cookie = sign_in_as(&h, |_| {});
        let spoof = ("X-Auth-Request-User", "mallory");
        let mut session = navigate(&app("/page"), Some(&cookie));
        session.headers.append(spoof.0, spoof.1);
        for req in [
            request(
                Method::Get,
                &app("/api/data/1"),
                &[("Authorization", &auth), spoof],
            ),
            session,
            request(Method::Get, &app("/open/x"), &[spoof]),
        ] {
            let Outcome::Forward { headers, .. } = h.handle(&req) else {
                panic!("{upstream}: {} is forwarded", req.url.path());
            };
            match headers {
                None => assert!(!gate_headers, "{upstream}: {}", req.url.path()),
                Some(edits) => {
                    assert!(gate_headers, "{upstream}: {}", req.url.path());
                    let headers = edits.apply(&req.headers);
                    let user = headers.get("X-Auth-Request-User");
                    let public = req.url.path().starts_with("/open/");
                    assert_eq!(user, (!public).then_some("alice"), "{}", req.url.path());
                    assert!(headers.get("X-Forwarded-Host").is_some());
                }
            }
        }
    }
}

// ----- a multi-tenant API ----------------------------------------------------------------------

const TENANT_A: &str = "11111111-2222-3333-4444-555555555555";
const TENANT_B: &str = "99999999-8888-7777-6666-555555555555";

fn tenant_issuer(tid: &str) -> String {
    format!("https://tenants.example.com/{tid}/v2.0")
}

/// `API_ISSUERS` with a `{tenantid}` template; tenant A's discovery and keys are served.
fn multi_tenant_api(allowed: &str) -> (Harness, TestKey) {
    let h = Harness::with_config(&[
        ("API_AUDIENCES", API_AUD),
        ("API_ISSUERS", "https://tenants.example.com/{tenantid}/v2.0"),
        ("API_ALLOWED_TENANTS", allowed),
    ]);
    let key = TestKey::rsa(Some("t-1"));
    for tid in [TENANT_A, TENANT_B] {
        let iss = tenant_issuer(tid);
        let jwks = format!("https://tenants.example.com/{tid}/keys");
        h.idp.serve(
            &format!("{iss}/.well-known/openid-configuration"),
            cacheable_json(
                json!({"issuer": iss, "authorization_endpoint": format!("{iss}/a"), "token_endpoint": format!("{iss}/t"), "jwks_uri": jwks})
                    .to_string(),
            ),
        );
        h.idp.serve(&jwks, jwks_answer(&[&key]));
    }
    (h, key)
}

#[test]
fn a_multi_tenant_api_accepts_its_allowed_tenants_own_tokens_only() {
    let (h, key) = multi_tenant_api(TENANT_A);
    let good = access_token(&key, &tenant_issuer(TENANT_A), |c| {
        c["tid"] = TENANT_A.into()
    });
    let (_, _, user) = h.forward(&with_bearer(Method::Get, &app("/api/x"), &good));
    // A tenant's users are named with their issuer: two tenants' `alice` are two people.
    let named = format!("{}#alice", tenant_issuer(TENANT_A));
    assert_eq!(user.as_deref(), Some(named.as_str()));

    let other_tenant = access_token(&key, &tenant_issuer(TENANT_B), |c| {
        c["tid"] = TENANT_B.into()
    });
    let resp = h.respond(&with_bearer(Method::Get, &app("/api/x"), &other_tenant));
    assert_eq!(resp.status, 401);
    assert_eq!(
        h.idp.fetches_of(&format!(
            "{}/.well-known/openid-configuration",
            tenant_issuer(TENANT_B)
        )),
        0,
        "a tenant not allowed: nothing fetched"
    );

    let mismatched = access_token(&key, &tenant_issuer(TENANT_A), |c| {
        c["tid"] = TENANT_B.into()
    });
    let resp = h.respond(&with_bearer(Method::Get, &app("/api/x"), &mismatched));
    assert_eq!(resp.status, 401);
    let not_a_guid = access_token(&key, "https://tenants.example.com/common/v2.0", |c| {
        c["tid"] = "common".into()
    });
    assert_eq!(
        h.respond(&with_bearer(Method::Get, &app("/api/x"), &not_a_guid))
            .status,
        401
    );

    let (h, key) = multi_tenant_api("*");
    let b = access_token(&key, &tenant_issuer(TENANT_B), |c| {
        c["tid"] = TENANT_B.into()
    });
    h.forward(&with_bearer(Method::Get, &app("/api/x"), &b));
}

/// A multi-tenant API's rules can pin a tenant: each tenant's admins assign its users' roles,
/// so `role:` alone would let any tenant's self-made admin in.
#[test]
fn a_tenant_rule_pins_a_multi_tenant_apis_tokens_to_their_tenant() {
    let (h, key) = multi_tenant_api("*");
    let h = Harness {
        cfg: crate::config::tests_support::test_config(&[
            ("API_AUDIENCES", API_AUD),
            ("API_ISSUERS", "https://tenants.example.com/{tenantid}/v2.0"),
            ("API_ALLOWED_TENANTS", "*"),
            (
                "ACCESS_RULES",
                &format!("/admin/* tenant:{TENANT_A}&role:Admin"),
            ),
        ]),
        ..h
    };
    let admin_of = |tid: &str| {
        access_token(&key, &tenant_issuer(tid), |c| {
            c["tid"] = tid.into();
            c["roles"] = json!(["Admin"]);
        })
    };
    h.forward(&with_bearer(
        Method::Get,
        &app("/admin/x"),
        &admin_of(TENANT_A),
    ));
    let resp = h.respond(&with_bearer(
        Method::Get,
        &app("/admin/x"),
        &admin_of(TENANT_B),
    ));
    assert_eq!(resp.status, 403);
}

/// What an anonymous client can make a multi-tenant API with `API_ALLOWED_TENANTS=*` fetch
/// by naming tenants in tokens nobody has verified: each tenant that cannot be had once a
/// minute, a bounded number of fetches a minute, and memory that stays bounded; and none of it
/// locks out a tenant whose tokens have verified.
#[test]
fn tokens_naming_unknown_tenants_make_the_gate_fetch_a_bounded_amount() {
    use crate::oidc::provider::TENANT_FETCHES_PER_MINUTE as BUDGET;
    let (h, key) = multi_tenant_api("*");
    let tenant = |i: u32| format!("{i:08x}-0000-4000-8000-000000000000");
    // Long-lived, as the test's clock moves on by minutes.
    let token_by = |key: &TestKey, tid: &str, jti: &str| {
        access_token(key, &tenant_issuer(tid), |c| {
            c["tid"] = tid.into();
            c["exp"] = (NOW + 86400).into();
            c["jti"] = jti.into();
        })
    };
    let token = |tid: &str| token_by(&key, tid, "j1");
    let ask = |tid: &str| h.respond(&with_bearer(Method::Get, &app("/api/x"), &token(tid)));
    let discovery = |tid: &str| format!("{}/.well-known/openid-configuration", tenant_issuer(tid));
    let serve_tenant = |tid: &str| {
        let keys = format!("https://tenants.example.com/{tid}/keys");
        h.idp.serve(
            &discovery(tid),
            cacheable_json(
                json!({"issuer": tenant_issuer(tid), "authorization_endpoint": "https://tenants.example.com/a", "token_endpoint": "https://tenants.example.com/t", "jwks_uri": keys})
                    .to_string(),
            ),
        );
        h.idp.serve(&keys, jwks_answer(&[&key]));
    };
    let reason = || {
        h.idp
            .logged("bearer_rejected")
            .pop()
            .expect("each refusal is logged")["detail"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    };
    let fetches = || h.idp.requests.borrow().len();

    // A tenant that does not exist is asked once a minute, however often it is named.
    let ghost = tenant(0);
    for n in 1..=5 {
        assert_eq!(ask(&ghost).status, 503);
        assert_eq!(h.idp.logged("bearer_rejected").len(), n);
    }
    assert_eq!(h.idp.fetches_of(&discovery(&ghost)), 1);
    h.idp.advance(61);
    assert_eq!(ask(&ghost).status, 503);
    assert_eq!(h.idp.fetches_of(&discovery(&ghost)), 2);

    // Tenant B's token verifies: from now on the budget never holds B back.
    h.forward(&with_bearer(Method::Get, &app("/api/x"), &token(TENANT_B)));

    // Fresh tenants: the budget's worth of fetches, then nothing until it fills again.
    h.idp.advance(120);
    let before = fetches();
    for i in 1..=BUDGET {
        assert_eq!(ask(&tenant(i)).status, 503);
    }
    assert_eq!(fetches() - before, BUDGET as usize);
    let over = tenant(1000);
    assert_eq!(ask(&over).status, 503);
    assert_eq!(
        h.idp.fetches_of(&discovery(&over)),
        0,
        "over budget: nothing fetched"
    );
    assert!(reason().contains("budget"), "{}", reason());
    // Held back is no answer about the tenant: once the budget has a fetch again, it is asked.
    h.idp.advance(2);
    assert_eq!(ask(&over).status, 503);
    assert_eq!(h.idp.fetches_of(&discovery(&over)), 1);

    // An attacker fills memory with real tenants (forged signatures), then keeps the budget
    // spent. B's next token still verifies, and the configured issuers were never touched.
    let forger = TestKey::rsa_other(Some("t-1"));
    for minute in 0..10 {
        h.idp.advance(60);
        for i in 0..BUDGET / 2 {
            let tid = tenant(10_000 + minute * 100 + i);
            serve_tenant(&tid);
            let forged = token_by(&forger, &tid, "j1");
            let resp = h.respond(&with_bearer(Method::Get, &app("/api/x"), &forged));
            assert_eq!(resp.status, 401);
        }
    }
    assert!(
        h.cache.documents_in_memory() <= 4 * 64,
        "memory stays bounded"
    );
    h.idp.advance(60);
    for i in 2000..2000 + BUDGET {
        ask(&tenant(i));
    }
    assert_eq!(ask(&tenant(3000)).status, 503, "the budget is spent");
    h.idp.kv.borrow_mut().clear();
    let again = token_by(&key, TENANT_B, "j2");
    h.forward(&with_bearer(Method::Get, &app("/api/x"), &again));
}

#[test]
fn a_tenant_template_needs_its_allow_list() {
    let vars = crate::config::tests_support::base_vars();
    let get = |k: &str| match k {
        "API_AUDIENCES" => Some(API_AUD.to_owned()),
        "API_ISSUERS" => Some("https://tenants.example.com/{tenantid}/v2.0".to_owned()),
        _ => vars.get(k).cloned(),
    };
    assert_eq!(
        Config::from_vars(get).unwrap_err().variable,
        "API_ALLOWED_TENANTS"
    );
    let get = |k: &str| match k {
        "API_AUDIENCES" => Some(API_AUD.to_owned()),
        "API_ISSUERS" => Some("https://{tenantid}.example.com/v2.0".to_owned()),
        "API_ALLOWED_TENANTS" => Some("*".to_owned()),
        _ => vars.get(k).cloned(),
    };
    assert_eq!(Config::from_vars(get).unwrap_err().variable, "API_ISSUERS");
}
