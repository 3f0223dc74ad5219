//! Several providers at once: the chooser, the provider bound into the login transaction and
//! the session, `provider:` rules, and GitHub (OAuth 2.0 and its REST API).

use super::*;

const GH: &str = "https://git.example";
const GH_AUTHORIZE: &str = "https://git.example/login/oauth/authorize";
const GH_TOKEN: &str = "https://git.example/login/oauth/access_token";
const GH_API: &str = "https://git.example/api/v3/";
const GH_TOKEN_VALUE: &str = "gho_16C7e42F292c6912E7710c838347Ae178B4a";

fn two_providers(extra: &[(&'static str, &'static str)]) -> Harness {
    // The first of a name wins: `extra` overrides.
    let mut vars = extra.to_vec();
    vars.extend_from_slice(&[
        ("OIDC_ISSUER", ""),
        ("OIDC_CLIENT_ID", ""),
        ("OIDC_CLIENT_SECRET", ""),
        ("PROVIDERS", "idp github"),
        ("IDP_OIDC_ISSUER", ISSUER),
        ("IDP_OIDC_CLIENT_ID", "client"),
        ("IDP_OIDC_CLIENT_SECRET", CLIENT_SECRET),
        ("IDP_OIDC_PROVIDER_NAME", "Staff"),
        ("GITHUB_OIDC_ISSUER", GH),
        ("GITHUB_OIDC_CLIENT_ID", "gh-client"),
        ("GITHUB_OIDC_CLIENT_SECRET", "gh-secret"),
    ]);
    let h = Harness::with_config(&vars);
    // With server-side sessions, the objects' isolate reads the same configuration.
    if extra.contains(&("SESSION_STORE", "durable_object")) {
        *h.idp.object_isolate.borrow_mut() =
            Some(std::rc::Rc::new((test_config(&vars), ProviderCache::new())));
    }
    h
}

fn json_answer(body: Value) -> Response {
    Response::new(200).with_body("application/json", body.to_string())
}

/// GitHub's API as one user sees it: `teams` as (org, slug).
fn serve_github_user(h: &Harness, emails: Value, orgs: &[&str], teams: &[(&str, &str)]) {
    h.idp.serve(
        &format!("{GH_API}user"),
        json_answer(json!({"id": 583231, "login": "octocat", "name": "The Octocat"})),
    );
    h.idp
        .serve(&format!("{GH_API}user/emails"), json_answer(emails));
    let orgs: Vec<Value> = orgs.iter().map(|o| json!({"login": o})).collect();
    let teams: Vec<Value> = teams
        .iter()
        .map(|(o, s)| json!({"slug": s, "organization": {"login": o}}))
        .collect();
    h.idp.serve(
        &format!("{GH_API}user/orgs?per_page=100&page=1"),
        json_answer(json!(orgs)),
    );
    h.idp.serve(
        &format!("{GH_API}user/teams?per_page=100&page=1"),
        json_answer(json!(teams)),
    );
}

fn verified_primary() -> Value {
    json!([
        {"email": "other@github.example", "primary": false, "verified": true},
        {"email": "octocat@github.example", "primary": true, "verified": true},
    ])
}

/// A GitHub login: the redirect, its state and transaction cookie.
struct GitHubLogin {
    authorize: Url,
    state: String,
    tx_cookie: SetCookie,
}

fn start_github_login(h: &Harness) -> GitHubLogin {
    let resp = h.respond(&navigate(
        &app("/auth/login?provider=github&return_to=/docs"),
        None,
    ));
    assert_eq!(resp.status, 302, "{}", resp.body_text());
    let authorize = Url::parse(location(&resp)).unwrap();
    assert_eq!(authorize.as_str().split('?').next(), Some(GH_AUTHORIZE));
    let state = query_param(&authorize, "state").unwrap();
    let tx_cookie = set_cookies(&resp)
        .into_iter()
        .find(|c| c.name.contains("portcullis-tx-") && !c.is_deletion())
        .unwrap();
    GitHubLogin {
        authorize,
        state,
        tx_cookie,
    }
}

fn finish_github_login(h: &Harness, login: &GitHubLogin, token_answer: Response) -> Response {
    h.idp.serve(GH_TOKEN, token_answer);
    let url = app(&format!(
        "/auth/callback/github?code={CODE}&state={}",
        login.state
    ));
    h.respond(&navigate(&url, Some(&login.tx_cookie.pair())))
}

fn github_token() -> Response {
    json_answer(
        json!({"access_token": GH_TOKEN_VALUE, "token_type": "bearer", "scope": "read:user,user:email"}),
    )
}

fn github_session(h: &Harness) -> String {
    let login = start_github_login(h);
    let resp = finish_github_login(h, &login, github_token());
    assert_eq!(resp.status, 302, "{}", resp.body_text());
    assert_eq!(location(&resp), "/docs");
    cookie_set(&resp, SESSION_COOKIE).unwrap().pair()
}

#[test]
fn two_providers_get_a_chooser_that_keeps_the_return_path() {
    let h = two_providers(&[]);
    let resp = h.respond(&navigate(
        &app("/auth/login?return_to=/reports/q%3F1"),
        None,
    ));
    assert_eq!(resp.status, 200);
    let body = resp.body_text();
    assert!(
        body.contains(r#"<form method="get" action="/auth/login">"#),
        "{body}"
    );
    assert!(body.contains(r#"name="provider" value="idp">Sign in with Staff</button>"#));
    assert!(body.contains(r#"name="provider" value="github">Sign in with GitHub</button>"#));
    assert!(body.contains(r#"name="return_to" value="/reports/q?1""#));
    assert!(
        set_cookies(&resp).is_empty(),
        "no transaction before a choice"
    );

    let unknown = h.respond(&navigate(&app("/auth/login?provider=gitlab"), None));
    assert_eq!(unknown.status, 400);
    assert_eq!(
        h.idp.last_failure_reason().as_deref(),
        Some("unknown_provider")
    );

    // A protected page sends the browser to the chooser.
    let resp = h.respond(&navigate(&app("/reports"), None));
    assert_eq!(location(&resp), "/auth/login?return_to=%2Freports");
}

#[test]
fn a_login_default_skips_the_chooser() {
    let h = two_providers(&[("LOGIN_PROVIDER_DEFAULT", "idp")]);
    let login = h.start_login();
    assert_eq!(login.param("client_id"), "client");
}

#[test]
fn each_provider_signs_in_under_its_own_name() {
    let h = two_providers(&[]);
    let url = app("/auth/login?provider=idp");
    let login = Login::from_response(h.respond(&navigate(&url, None)));
    let resp = h.finish_sign_in(&login);
    assert_eq!(resp.status, 302, "{}", resp.body_text());
    let idp = cookie_set(&resp, SESSION_COOKIE).unwrap().pair();
    let (_, _, user) = h.forward(&navigate(&app("/x"), Some(&idp)));
    assert_eq!(user.as_deref(), Some("idp:alice"));

    serve_github_user(&h, verified_primary(), &[], &[]);
    let gh = github_session(&h);
    let (headers, _, user) = h.forward(&navigate(&app("/x"), Some(&gh)));
    assert_eq!(
        user.as_deref(),
        Some("github:583231"),
        "the numeric id, never the login"
    );
    assert_eq!(
        headers.get("X-Auth-Request-Email"),
        Some("octocat@github.example")
    );
    let logged = h.idp.logged("sign_in");
    assert_eq!(logged.last().unwrap()["provider"], "github");
}

/// `ALLOW_UNVERIFIED_EMAIL` names the providers it covers: another provider's unstated
/// address stays away from the origin and from `/auth/userinfo`.
#[test]
fn an_unstated_email_counts_only_from_the_providers_allow_unverified_email_names() {
    for (covered, travels) in [("idp", true), ("github", false)] {
        let h = two_providers(&[("ALLOW_UNVERIFIED_EMAIL", covered)]);
        let login =
            Login::from_response(h.respond(&navigate(&app("/auth/login?provider=idp"), None)));
        let mut claims = h.claims(&login.nonce);
        claims.as_object_mut().unwrap().remove("email_verified");
        let resp = h.finish_sign_in_with(&login, &h.key.sign(&claims));
        assert_eq!(resp.status, 302, "{}", resp.body_text());
        let idp = cookie_set(&resp, SESSION_COOKIE).unwrap().pair();
        let (headers, _, _) = h.forward(&navigate(&app("/x"), Some(&idp)));
        let email = travels.then_some("alice@example.com");
        assert_eq!(headers.get("X-Auth-Request-Email"), email, "{covered}");
        let me = json_body(&h.respond(&api_get(&app("/auth/userinfo"), Some(&idp))));
        assert_eq!(me["email"].as_str(), email, "{covered}");
    }
}

/// The mix-up attack (RFC 9700 4.4.2): a hostile provider among `PROVIDERS` bounces a person
/// signing in with it to an honest provider that sends no `iss` (Entra ID, GitHub), with the
/// attacker's own state from a login there. The honest code comes back to the gate under the
/// person's transaction for the hostile provider, whose token endpoint would get it. Each
/// provider answers at its own redirect URI, so the answer is refused before any token request.
#[test]
fn an_answer_at_another_providers_redirect_uri_never_reaches_a_token_endpoint() {
    let h = two_providers(&[]);
    serve_github_user(&h, verified_primary(), &[], &[]);
    let idp = Login::from_response(h.respond(&navigate(&app("/auth/login?provider=idp"), None)));
    assert_eq!(idp.param("redirect_uri"), app("/auth/callback/idp"));
    let github = start_github_login(&h);
    assert_eq!(
        query_param(&github.authorize, "redirect_uri").as_deref(),
        Some(app("/auth/callback/github").as_str())
    );
    h.idp.serve(GH_TOKEN, github_token());
    h.idp
        .serve(TOKEN_URL, token_answer(&h.key.sign(&h.claims(&idp.nonce))));
    // Each transaction answered at the other's redirect URI, and at the shared one.
    let tries = [
        (
            format!("/auth/callback/idp?code={CODE}&state={}", github.state),
            &github.tx_cookie,
        ),
        (
            format!("/auth/callback?code={CODE}&state={}", github.state),
            &github.tx_cookie,
        ),
        (
            format!("/auth/callback/github?code={CODE}&state={}", idp.state),
            &idp.tx_cookie,
        ),
        (
            format!("/auth/callback/nobody?code={CODE}&state={}", idp.state),
            &idp.tx_cookie,
        ),
    ];
    for (path, cookie) in tries {
        let resp = h.respond(&navigate(&app(&path), Some(&cookie.pair())));
        assert_eq!(resp.status, 400, "{path}: {}", resp.body_text());
        assert!(resp.body_text().contains("redirect URI"), "{path}");
        assert!(
            h.idp.requests_to(GH_TOKEN).is_empty() && h.idp.requests_to(TOKEN_URL).is_empty(),
            "{path}: a code went to a token endpoint"
        );
    }
    // At its own redirect URI, each sign-in completes.
    let idp = Login::from_response(h.respond(&navigate(&app("/auth/login?provider=idp"), None)));
    let resp = h.finish_sign_in(&idp);
    assert_eq!(resp.status, 302, "{}", resp.body_text());
    assert_eq!(h.idp.requests_to(TOKEN_URL).len(), 1);
    let resp = finish_github_login(&h, &start_github_login(&h), github_token());
    assert_eq!(resp.status, 302, "{}", resp.body_text());
}

#[test]
fn the_callback_uses_only_the_provider_the_login_went_to() {
    let h = two_providers(&[]);
    serve_github_user(&h, verified_primary(), &[], &[]);
    let login = start_github_login(&h);
    assert!(query_param(&login.authorize, "nonce").is_none());
    assert_eq!(
        query_param(&login.authorize, "code_challenge_method").as_deref(),
        Some("S256")
    );
    // The answer names the other provider as its issuer: GitHub sends no `iss`, and the
    // provider's identity comes from the sealed transaction, never from the callback.
    h.idp.serve(GH_TOKEN, github_token());
    let url = app(&format!(
        "/auth/callback/github?code={CODE}&state={}&iss={}",
        login.state,
        form_urlencoded::byte_serialize(ISSUER.as_bytes()).collect::<String>()
    ));
    let resp = h.respond(&navigate(&url, Some(&login.tx_cookie.pair())));
    assert_eq!(
        resp.status,
        400,
        "an iss that is not GitHub's: {}",
        resp.body_text()
    );
    assert!(h.idp.requests_to(TOKEN_URL).is_empty());
    assert!(h.idp.requests_to(GH_TOKEN).is_empty());

    let login = start_github_login(&h);
    let resp = finish_github_login(&h, &login, github_token());
    assert_eq!(resp.status, 302);
    assert!(
        h.idp.requests_to(TOKEN_URL).is_empty(),
        "never the other provider's token endpoint"
    );
    let token_call = &h.idp.requests_to(GH_TOKEN)[0];
    assert_eq!(token_call.headers.get("Accept"), Some("application/json"));
    let body = token_call.body.as_deref().unwrap();
    assert!(body.contains("client_id=gh-client") && body.contains("code_verifier="));
    for req in h
        .idp
        .requests
        .borrow()
        .iter()
        .filter(|r| r.url.starts_with(GH))
    {
        let ua = req.headers.get("User-Agent");
        assert!(
            req.url == GH_TOKEN || ua.is_some_and(|u| !u.is_empty()),
            "{} without a User-Agent",
            req.url
        );
    }
}

#[test]
fn github_errors_in_a_200_and_form_answers() {
    let h = two_providers(&[]);
    serve_github_user(&h, verified_primary(), &[], &[]);
    let login = start_github_login(&h);
    let refusal = json_answer(
        json!({"error": "bad_verification_code", "error_description": "The code passed is incorrect or expired."}),
    );
    let resp = finish_github_login(&h, &login, refusal);
    assert_eq!(resp.status, 400, "{}", resp.body_text());
    assert_sets_no_session(&resp);
    assert_eq!(
        h.idp.last_failure_reason().as_deref(),
        Some("invalid_grant")
    );

    let login = start_github_login(&h);
    let form = Response::new(200).with_body(
        "application/x-www-form-urlencoded; charset=utf-8",
        format!("access_token={GH_TOKEN_VALUE}&scope=read%3Auser&token_type=bearer"),
    );
    let resp = finish_github_login(&h, &login, form);
    assert_eq!(resp.status, 302, "{}", resp.body_text());
}

#[test]
fn an_unverified_primary_address_is_no_address() {
    let h = two_providers(&[("ACCESS_RULES", "/corp/* domain:corp.example")]);
    serve_github_user(
        &h,
        json!([
            {"email": "victim@corp.example", "primary": true, "verified": false},
            {"email": "sneaky@github.example", "primary": false, "verified": true},
        ]),
        &[],
        &[],
    );
    let gh = github_session(&h);
    let (headers, _, _) = h.forward(&navigate(&app("/x"), Some(&gh)));
    assert_eq!(headers.get("X-Auth-Request-Email"), None);
    let resp = h.respond(&navigate(&app("/corp/x"), Some(&gh)));
    assert_eq!(resp.status, 403);
}

#[test]
fn provider_rules_refuse_another_providers_session_and_offer_the_right_one() {
    let h = two_providers(&[("ACCESS_RULES", "/admin/* provider:idp&group:admins")]);
    serve_github_user(&h, verified_primary(), &[], &[]);
    let gh = github_session(&h);
    let resp = h.respond(&navigate(&app("/admin/users"), Some(&gh)));
    assert_eq!(resp.status, 403);
    let body = resp.body_text();
    assert!(
        body.contains(
            r#"href="/auth/login?provider=idp&amp;return_to=%2Fadmin%2Fusers">Sign in with Staff"#
        ),
        "{body}"
    );
    assert!(!body.contains("provider=github"));
    let json = h.respond(&api_get(&app("/admin/users"), Some(&gh)));
    assert_eq!(json_body(&json)["sub"], "github:583231");
}

#[test]
fn github_memberships_are_read_again_when_due_and_a_revoked_token_ends_the_session() {
    let h = two_providers(&[
        (
            "ACCESS_RULES",
            "/team/* github-team:acme/admins; /org/* github-org:acme",
        ),
        ("GITHUB_OIDC_MEMBERSHIP_TTL", "60"),
    ]);
    serve_github_user(&h, verified_primary(), &["Acme"], &[("Acme", "admins")]);
    let login = start_github_login(&h);
    let scope = query_param(&login.authorize, "scope").unwrap();
    assert_eq!(
        scope, "read:user user:email read:org",
        "read:org added for the rules"
    );
    let resp = finish_github_login(&h, &login, github_token());
    let gh = cookie_set(&resp, SESSION_COOKIE).unwrap().pair();
    h.forward(&navigate(&app("/team/x"), Some(&gh)));
    h.forward(&navigate(&app("/org/x"), Some(&gh)));

    // Removed from the team: within the interval nothing is read, after it the rule refuses.
    serve_github_user(&h, verified_primary(), &["Acme"], &[]);
    let calls = h.idp.fetches_of(&format!("{GH_API}user"));
    h.idp.advance(30);
    h.forward(&navigate(&app("/team/x"), Some(&gh)));
    assert_eq!(h.idp.fetches_of(&format!("{GH_API}user")), calls);
    h.idp.advance(31);
    let resp = match h.handle(&navigate(&app("/team/x"), Some(&gh))) {
        Outcome::Respond(r) => r,
        Outcome::Forward { .. } => panic!("a removed team member got in"),
    };
    assert_eq!(resp.status, 403);
    let rewritten = cookie_set(&resp, SESSION_COOKIE).unwrap().pair();
    h.forward(&navigate(&app("/org/x"), Some(&rewritten)));

    // The token is revoked at GitHub: the next check ends the session.
    h.idp.serve(
        &format!("{GH_API}user"),
        Response::new(401).with_body("application/json", r#"{"message":"Bad credentials"}"#),
    );
    h.idp.advance(61);
    let resp = h.respond(&navigate(&app("/org/x"), Some(&rewritten)));
    assert_eq!(resp.status, 302);
    assert!(location(&resp).starts_with("/auth/login"));
    assert!(cookie_deleted(&resp, SESSION_COOKIE));
}

/// A member who keeps GitHub from answering (their own rate limit spent, say) keeps their
/// memberships for one more `OIDC_MEMBERSHIP_TTL`, not for the rest of the session.
#[test]
fn memberships_github_cannot_read_again_in_time_stop_counting() {
    for store in ["cookie", "durable_object"] {
        memberships_github_cannot_read_again_stop_counting_in(store);
    }
}

fn memberships_github_cannot_read_again_stop_counting_in(store: &'static str) {
    let h = two_providers(&[
        ("ACCESS_RULES", "/team/* github-team:acme/admins"),
        ("GITHUB_OIDC_MEMBERSHIP_TTL", "60"),
        ("SESSION_STORE", store),
    ]);
    serve_github_user(&h, verified_primary(), &["Acme"], &[("Acme", "admins")]);
    let gh = github_session(&h);
    h.forward(&navigate(&app("/team/x"), Some(&gh)));

    let limited = || {
        Response::new(403).with_body(
            "application/json",
            r#"{"message":"API rate limit exceeded for user ID 583231."}"#,
        )
    };
    for path in [
        "user",
        "user/orgs?per_page=100&page=1",
        "user/teams?per_page=100&page=1",
    ] {
        h.idp.serve(&format!("{GH_API}{path}"), limited());
    }
    // Due, and GitHub does not answer: one more interval on what it said last.
    h.idp.advance(61);
    h.forward(&navigate(&app("/team/x"), Some(&gh)));
    h.idp.advance(30);
    h.forward(&navigate(&app("/team/x"), Some(&gh)));
    // Overdue by a whole interval: the memberships no longer count, and the log says why.
    h.idp.advance(30);
    let resp = h.respond(&navigate(&app("/team/x"), Some(&gh)));
    assert_eq!(resp.status, 403, "{store}");
    let access = h.idp.logged("access").pop().unwrap();
    assert_eq!(access["reason"], crate::access::policy::GITHUB_UNRESOLVED);
    assert_eq!(h.idp.logged("memberships_dropped").len(), 1);
    // The address GitHub gave is dropped with them.
    let me = json_body(&h.respond(&api_get(&app("/auth/userinfo"), Some(&gh))));
    assert_eq!(me["email"], Value::Null, "{store}");
    // A cookie session is rewritten; a server-side one keeps its reference.
    let dropped = cookie_set(&resp, SESSION_COOKIE).map_or(gh.clone(), |c| c.pair());
    // The old cookie is no better than the rewritten one.
    assert_eq!(h.respond(&navigate(&app("/team/x"), Some(&gh))).status, 403);
    assert_eq!(
        h.respond(&navigate(&app("/team/x"), Some(&dropped))).status,
        403
    );

    // GitHub answers again: the memberships it gives count.
    serve_github_user(&h, verified_primary(), &["Acme"], &[("Acme", "admins")]);
    h.forward(&navigate(&app("/team/x"), Some(&dropped)));
}

/// A GitHub App's user token lasts 8 hours. Revoked at GitHub (the person suspended, the app's
/// authorization withdrawn), it ends the session at the next membership read, not when it
/// expires: the grace a refused refresh token gets (another request may have spent it) is no
/// grace for a token GitHub calls bad.
#[test]
fn a_revoked_expiring_github_token_ends_the_session_at_once() {
    let h = two_providers(&[
        ("ACCESS_RULES", "/org/* github-org:acme"),
        ("GITHUB_OIDC_MEMBERSHIP_TTL", "60"),
    ]);
    serve_github_user(&h, verified_primary(), &["Acme"], &[]);
    let login = start_github_login(&h);
    let answer = json_answer(json!({
        "access_token": GH_TOKEN_VALUE, "token_type": "bearer", "expires_in": 28800,
        "refresh_token": "ghr_refresh", "refresh_token_expires_in": 15_897_600,
        "scope": "read:user,user:email,read:org",
    }));
    let resp = finish_github_login(&h, &login, answer);
    let gh = cookie_set(&resp, SESSION_COOKIE).unwrap().pair();
    h.forward(&navigate(&app("/org/x"), Some(&gh)));
    h.idp.serve(
        &format!("{GH_API}user"),
        Response::new(401).with_body("application/json", r#"{"message":"Bad credentials"}"#),
    );
    h.idp.advance(61);
    let resp = match h.handle(&navigate(&app("/org/x"), Some(&gh))) {
        Outcome::Respond(r) => r,
        Outcome::Forward { .. } => panic!("a token GitHub revoked kept its session"),
    };
    assert_eq!(resp.status, 302);
    assert!(location(&resp).starts_with("/auth/login"));
    assert!(cookie_deleted(&resp, SESSION_COOKIE));
}

#[test]
fn a_session_from_a_provider_no_longer_configured_is_no_session() {
    let h = two_providers(&[]);
    serve_github_user(&h, verified_primary(), &[], &[]);
    let gh = github_session(&h);
    let other = two_providers(&[("PROVIDERS", "idp")]);
    let resp = other.respond(&navigate(&app("/x"), Some(&gh)));
    assert_eq!(resp.status, 302, "the provider set changed: sign in again");
}

// ----- Entra: groups beyond the token's limit ---------------------------------------------------

const GRAPH: &str = "https://graph.example";
const GRAPH_FIRST: &str = "https://graph.example/v1.0/me/transitiveMemberOf?$select=id&$top=999";
const GRAPH_SECOND: &str =
    "https://graph.example/v1.0/me/transitiveMemberOf?$select=id&$skiptoken=2";

fn entra_overage(h: &Harness) -> Response {
    h.sign_in_with_claims(|c| {
        c.as_object_mut().unwrap().remove("groups");
        c["_claim_names"] = json!({"groups": "src1"});
        c["_claim_sources"] =
            json!({"src1": {"endpoint": "https://graph.windows.net/t/users/o/getMemberObjects"}});
    })
}

fn entra() -> Harness {
    Harness::with_config(&[
        ("OIDC_PROVIDER_KIND", "entra"),
        ("OIDC_GRAPH_URL", GRAPH),
        ("ACCESS_RULES", "/g/* group:g3"),
    ])
}

#[test]
fn an_overage_token_gets_its_groups_from_graph_page_by_page() {
    let h = entra();
    h.idp.serve(
        GRAPH_FIRST,
        json_answer(json!({
            "value": [
                {"@odata.type": "#microsoft.graph.group", "id": "g1"},
                {"@odata.type": "#microsoft.graph.directoryRole", "id": "role-1"},
                {"@odata.type": "#microsoft.graph.group", "id": "g2"},
            ],
            "@odata.nextLink": GRAPH_SECOND,
        })),
    );
    h.idp.serve(
        GRAPH_SECOND,
        json_answer(json!({"value": [{"@odata.type": "#microsoft.graph.group", "id": "g3"}]})),
    );
    let resp = entra_overage(&h);
    assert_eq!(resp.status, 302, "{}", resp.body_text());
    let cookie = cookie_set(&resp, SESSION_COOKIE).unwrap().pair();
    let (headers, _, _) = h.forward(&navigate(&app("/g/x"), Some(&cookie)));
    assert_eq!(headers.get("X-Auth-Request-Groups"), Some("g1,g2,g3"));
    let graph_call = &h.idp.requests_to(GRAPH_FIRST)[0];
    assert_eq!(
        graph_call.headers.get("Authorization"),
        Some(format!("Bearer {ACCESS_TOKEN}").as_str())
    );
    assert!(
        !h.idp
            .requests
            .borrow()
            .iter()
            .any(|r| r.url.contains("graph.windows.net")),
        "the token's _claim_sources endpoint is never called"
    );
}

#[test]
fn when_graph_refuses_the_person_signs_in_without_groups_and_is_told_why() {
    let h = entra();
    h.idp.serve(
        GRAPH_FIRST,
        Response::new(403).with_body(
            "application/json",
            r#"{"error":{"code":"Authorization_RequestDenied"}}"#,
        ),
    );
    let resp = entra_overage(&h);
    assert_eq!(resp.status, 302, "{}", resp.body_text());
    let cookie = cookie_set(&resp, SESSION_COOKIE).unwrap().pair();
    let resp = h.respond(&navigate(&app("/g/x"), Some(&cookie)));
    assert_eq!(resp.status, 403);
    assert!(resp
        .body_text()
        .contains("could not be read from Microsoft Graph"));
    let denied = h.idp.logged("access");
    assert_eq!(
        denied.last().unwrap()["reason"],
        crate::access::policy::GROUPS_UNRESOLVED
    );
    assert_eq!(
        h.idp.logged("groups_unresolved")[0]["reason"],
        "Graph answered 403 Authorization_RequestDenied"
    );
}

#[test]
fn a_token_with_its_groups_never_calls_graph() {
    let h = entra();
    let cookie = h.sign_in();
    h.forward(&navigate(&app("/x"), Some(&cookie)));
    assert_eq!(h.idp.fetches_of(GRAPH_FIRST), 0);
}

// ----- pushed authorization requests (RFC 9126) ---------------------------------------------------

const PAR_URL: &str = "https://idp.example.com/par";

fn with_par(required: bool, mode: &'static str) -> Harness {
    let h = Harness::with_config(&[("OIDC_PUSHED_AUTHORIZATION", mode)]);
    let mut doc = discovery_doc(true);
    doc["pushed_authorization_request_endpoint"] = PAR_URL.into();
    doc["require_pushed_authorization_requests"] = required.into();
    h.idp.serve(DISCOVERY_URL, cacheable_json(doc.to_string()));
    h
}

fn login_location(h: &Harness) -> (Response, Url) {
    let resp = h.respond(&navigate(&app("/auth/login"), None));
    let url = Url::parse(location(&resp)).unwrap();
    (resp, url)
}

#[test]
fn a_provider_that_requires_par_gets_the_request_pushed_and_the_browser_only_a_request_uri() {
    let h = with_par(true, "auto");
    h.idp.serve(
        PAR_URL,
        Response::new(201).with_body(
            "application/json",
            r#"{"request_uri":"urn:ietf:params:oauth:request_uri:abc","expires_in":60}"#,
        ),
    );
    let (resp, url) = login_location(&h);
    assert_eq!(resp.status, 302);
    let names: Vec<String> = url.query_pairs().map(|(k, _)| k.into_owned()).collect();
    assert_eq!(names, vec!["client_id", "request_uri"]);
    assert_eq!(
        query_param(&url, "request_uri").as_deref(),
        Some("urn:ietf:params:oauth:request_uri:abc")
    );
    let pushed = &h.idp.requests_to(PAR_URL)[0];
    assert_eq!(pushed.method, "POST");
    assert!(pushed
        .headers
        .get("Authorization")
        .is_some_and(|a| a.starts_with("Basic ")));
    let form: HashMap<String, String> =
        form_urlencoded::parse(pushed.body.as_deref().unwrap().as_bytes())
            .into_owned()
            .collect();
    for name in [
        "state",
        "nonce",
        "code_challenge",
        "redirect_uri",
        "scope",
        "response_type",
    ] {
        assert!(form.contains_key(name), "pushed without {name}");
    }
    // The transaction is the one the pushed state names.
    let tx = set_cookies(&resp)
        .into_iter()
        .find(|c| c.name.contains("portcullis-tx-"))
        .unwrap();
    let state = crate::base::types::State::new(form["state"].clone());
    assert_eq!(tx.name, CookieJar::new(true).transaction_name(&state));
}

#[test]
fn par_is_used_only_when_required_or_asked_for_and_its_refusal_is_an_error_page() {
    let h = with_par(false, "auto");
    let (_, url) = login_location(&h);
    assert!(
        query_param(&url, "state").is_some(),
        "not required: a plain request"
    );
    assert_eq!(h.idp.fetches_of(PAR_URL), 0);

    let h = with_par(false, "always");
    h.idp.serve(
        PAR_URL,
        Response::new(400).with_body("application/json", r#"{"error":"invalid_client"}"#),
    );
    let resp = h.respond(&navigate(&app("/auth/login"), None));
    assert_eq!(resp.status, 500, "{}", resp.body_text());
    assert!(h.idp.last_failure().unwrap()["detail"]
        .to_string()
        .contains("invalid_client"));
    assert!(set_cookies(&resp)
        .iter()
        .all(|c| !c.name.contains("portcullis-tx-") || c.is_deletion()));

    let h = with_par(true, "never");
    let (_, url) = login_location(&h);
    assert!(query_param(&url, "state").is_some());
}

// ----- private_key_jwt ---------------------------------------------------------------------------

#[test]
fn private_key_jwt_signs_a_fresh_assertion_for_each_call_and_sends_no_secret() {
    let client_key = TestKey::rsa_other(Some("client-1"));
    let mut jwk: Value = serde_json::from_str(&client_key.private_jwk()).unwrap();
    jwk["x5t#S256"] = "thumbprint".into();
    let jwk = jwk.to_string();
    let h = Harness::with_config(&[
        ("OIDC_TOKEN_AUTH_METHOD", "private_key_jwt"),
        ("OIDC_CLIENT_KEY", &jwk),
        ("OIDC_CLIENT_SECRET", ""),
    ]);
    h.sign_in();
    h.sign_in();
    let calls = h.idp.requests_to(TOKEN_URL);
    assert_eq!(calls.len(), 2);
    let mut jtis = Vec::new();
    for call in &calls {
        assert_eq!(call.headers.get("Authorization"), None);
        let form: HashMap<String, String> =
            form_urlencoded::parse(call.body.as_deref().unwrap().as_bytes())
                .into_owned()
                .collect();
        assert!(!form.contains_key("client_secret"));
        assert_eq!(form["client_id"], "client");
        assert_eq!(
            form["client_assertion_type"],
            "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
        );
        let jws = crate::jose::jws::UnverifiedJws::parse(&form["client_assertion"]).unwrap();
        assert_eq!(jws.header.kid.as_deref(), Some("client-1"));
        let public = crate::jose::jwks::JwkSet::parse(&jwks_json(&[&client_key])).unwrap();
        let key = public.select(&jws.header).unwrap().clone();
        let verified = block_on(crate::jose::verify::verify(
            &crate::jose::verify::RustVerifier,
            jws,
            &key,
        ))
        .expect("the assertion verifies with the client's public key");
        let claims: Value = serde_json::from_slice(verified.payload()).unwrap();
        assert_eq!(claims["iss"], "client");
        assert_eq!(claims["sub"], "client");
        assert_eq!(claims["aud"], TOKEN_URL);
        assert_eq!(
            claims["exp"].as_u64().unwrap(),
            claims["iat"].as_u64().unwrap() + 300
        );
        jtis.push(claims["jti"].as_str().unwrap().to_owned());
    }
    assert_ne!(jtis[0], jtis[1], "a fresh jti for every call");
    let header: Value = serde_json::from_slice(
        &URL_SAFE_NO_PAD
            .decode(
                h.idp.requests_to(TOKEN_URL)[0]
                    .body
                    .as_deref()
                    .unwrap()
                    .split("client_assertion=")
                    .nth(1)
                    .unwrap()
                    .split('.')
                    .next()
                    .unwrap(),
            )
            .unwrap(),
    )
    .unwrap();
    assert_eq!(header["x5t#S256"], "thumbprint");
}

#[test]
fn private_key_jwt_needs_a_private_key() {
    let public = TestKey::rsa(None).public_jwk().to_string();
    let vars = crate::config::tests_support::base_vars();
    let get = |k: &str| match k {
        "OIDC_TOKEN_AUTH_METHOD" => Some("private_key_jwt".to_owned()),
        "OIDC_CLIENT_KEY" => Some(public.clone()),
        _ => vars.get(k).cloned(),
    };
    let e = Config::from_vars(get).unwrap_err();
    assert_eq!(e.variable, "OIDC_CLIENT_KEY");
    assert!(!e.problem.contains(&public[..20]));
}

#[test]
fn graph_paging_stops_at_its_cap() {
    let h = entra();
    // A next link that never ends: read up to the cap, and the sign-in still completes.
    h.idp.serve(
        GRAPH_FIRST,
        json_answer(json!({
            "value": [{"@odata.type": "#microsoft.graph.group", "id": "g3"}],
            "@odata.nextLink": GRAPH_FIRST,
        })),
    );
    let resp = entra_overage(&h);
    assert_eq!(resp.status, 302, "{}", resp.body_text());
    assert_eq!(h.idp.fetches_of(GRAPH_FIRST), crate::oidc::graph::MAX_PAGES);
    assert_eq!(h.idp.logged("groups_capped").len(), 1);
}

#[test]
fn two_github_people_due_for_a_membership_read_never_share_one() {
    // GitHub sessions hold no refresh token: each re-read is its own person's, even when
    // both come due in the same minute of one isolate.
    let h = two_providers(&[
        ("ACCESS_RULES", "/team/* github-team:acme/admins"),
        ("GITHUB_OIDC_MEMBERSHIP_TTL", "60"),
    ]);
    serve_github_user(&h, verified_primary(), &["Acme"], &[("Acme", "admins")]);
    let admin = github_session(&h);
    let serve_mallory = || {
        h.idp.serve(
            &format!("{GH_API}user"),
            json_answer(json!({"id": 666, "login": "mallory", "name": "Mallory"})),
        );
        h.idp.serve(
            &format!("{GH_API}user/emails"),
            json_answer(
                json!([{"email": "mallory@github.example", "primary": true, "verified": true}]),
            ),
        );
        for list in ["orgs", "teams"] {
            h.idp.serve(
                &format!("{GH_API}user/{list}?per_page=100&page=1"),
                json_answer(json!([])),
            );
        }
    };
    serve_mallory();
    let mallory = github_session(&h);
    let resp = h.respond(&navigate(&app("/team/x"), Some(&mallory)));
    assert_eq!(resp.status, 403, "mallory is not on the team");

    h.idp.advance(61);
    serve_github_user(&h, verified_primary(), &["Acme"], &[("Acme", "admins")]);
    let (_, _, user) = h.forward(&navigate(&app("/team/x"), Some(&admin)));
    assert_eq!(user.as_deref(), Some("github:583231"));

    // Mallory's own re-read happens, and she stays herself: still not on the team.
    serve_mallory();
    let before = h.idp.fetches_of(&format!("{GH_API}user"));
    let resp = h.respond(&navigate(&app("/team/x"), Some(&mallory)));
    assert_eq!(resp.status, 403, "{}", resp.body_text());
    assert_eq!(h.idp.fetches_of(&format!("{GH_API}user")), before + 1);
    let resp = h.respond(&navigate(&app("/auth/userinfo"), Some(&mallory)));
    let me: Value = serde_json::from_str(&resp.body_text()).expect("userinfo JSON");
    assert_eq!(
        (me["sub"].as_str(), me["name"].as_str()),
        (Some("666"), Some("Mallory"))
    );
    assert_eq!(me["email"], "mallory@github.example");
}
