//! `/auth/callback`: a full sign-in, and every way a callback can fail.

use super::*;

// ----- sign-in ---------------------------------------------------------------------------------

#[test]
fn full_sign_in_returns_to_the_page_with_a_session_and_forwards_without_our_cookies() {
    let h = Harness::new();

    // An anonymous browser is sent to the login route, remembering where it was going.
    let resp = h.respond(&navigate(&app("/private?x=1"), None));
    assert_eq!(resp.status, 302);
    let to_login = Url::parse(APP)
        .and_then(|a| a.join(location(&resp)))
        .expect("login URL");
    assert_eq!(to_login.path(), "/auth/login");
    assert_eq!(
        query_param(&to_login, "return_to").as_deref(),
        Some("/private?x=1")
    );
    assert!(
        set_cookies(&resp).is_empty(),
        "no cookie to clear for a browser without one"
    );

    // The login route sends it to the provider with a sealed transaction cookie.
    let login = Login::from_response(h.respond(&navigate(to_login.as_str(), None)));
    assert_eq!(login.param("response_type"), "code");
    assert_eq!(login.param("client_id"), "client");
    assert_eq!(
        login.param("redirect_uri"),
        "https://app.example.com/auth/callback"
    );
    assert_eq!(login.param("scope"), "openid profile email");
    assert_eq!(login.param("code_challenge_method"), "S256");
    assert!(
        login.tx_cookie.name.starts_with(TX_COOKIE_PREFIX),
        "{}",
        login.tx_cookie.name
    );
    assert_secure_browser_cookie(&login.tx_cookie);
    assert!(login
        .tx_cookie
        .has(&format!("Max-Age={TRANSACTION_TTL_SECS}")));
    assert!(
        !login.tx_cookie.value.contains(&login.state)
            && !login.tx_cookie.value.contains(&login.nonce)
    );

    // The provider sends it back with a code; the gate redeems it and sets the session.
    let resp = h.finish_sign_in(&login);
    assert_eq!(resp.status, 302, "{}", resp.body_text());
    assert_eq!(location(&resp), "/private?x=1");
    let session = cookie_set(&resp, SESSION_COOKIE).expect("session cookie");
    assert!(!session.value.is_empty());
    assert_secure_browser_cookie(&session);
    assert!(
        cookie_deleted(&resp, &login.tx_cookie.name),
        "the transaction cookie is spent"
    );
    assert_eq!(h.idp.logged("sign_in").len(), 1);

    // The token request: client_secret_basic, the code, and the PKCE verifier for the challenge.
    let token_requests = h.idp.requests_to(TOKEN_URL);
    assert_eq!(token_requests.len(), 1);
    let token_req = &token_requests[0];
    assert_eq!(token_req.method, "POST");
    let expected_basic = format!(
        "Basic {}",
        STANDARD.encode(format!("client:{CLIENT_SECRET}"))
    );
    assert_eq!(
        token_req.headers.get("Authorization"),
        Some(expected_basic.as_str())
    );
    assert_eq!(
        token_req.headers.get("Content-Type"),
        Some("application/x-www-form-urlencoded")
    );
    let form: HashMap<String, String> =
        form_urlencoded::parse(token_req.body.as_deref().unwrap_or_default().as_bytes())
            .into_owned()
            .collect();
    assert_eq!(
        form.get("grant_type").map(String::as_str),
        Some("authorization_code")
    );
    assert_eq!(form.get("code").map(String::as_str), Some(CODE));
    assert_eq!(
        form.get("redirect_uri").map(String::as_str),
        Some("https://app.example.com/auth/callback")
    );
    assert!(!form.contains_key("client_secret"));
    let verifier = form
        .get("code_verifier")
        .expect("token request carries code_verifier");
    assert_eq!(
        URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes())),
        login.param("code_challenge")
    );

    // Signed in: the page is forwarded, protected, without our cookies or forged identity headers.
    let cookie = format!("theme=dark; {}; {}", session.pair(), login.tx_cookie.pair());
    let req = request(
        Method::Get,
        &app("/private?x=1"),
        &[
            ("Accept", HTML),
            ("Cookie", &cookie),
            ("X-Forwarded-User", "mallory"),
        ],
    );
    let (headers, protected, forwarded_session) = h.forward(&req);
    assert!(protected);
    let user = forwarded_session.expect("the origin is told who signed in");
    assert_eq!(user, "alice");
    assert_eq!(
        headers.get("X-Auth-Request-Email"),
        Some("alice@example.com")
    );
    assert_eq!(headers.get("X-Auth-Request-Groups"), Some("staff,admins"));
    assert_eq!(headers.get("Cookie"), Some("theme=dark"));
    assert_eq!(headers.get("X-Forwarded-User"), None);
    assert!(
        headers.iter().all(|(_, v)| !v.contains("portcullis")),
        "{headers:?}"
    );

    // And userinfo describes the session.
    let resp = h.respond(&api_get(&app("/auth/userinfo"), Some(&session.pair())));
    assert_eq!(resp.status, 200);
    assert_eq!(resp.headers.get("Cache-Control"), Some("no-store"));
    let info = json_body(&resp);
    assert_eq!(info["sub"], "alice");
    assert_eq!(info["iss"], ISSUER);
    assert_eq!(info["email"], "alice@example.com");
}

#[test]
fn sign_in_with_rsa_and_client_secret_post_sends_credentials_in_the_body() {
    let h = Harness::build(
        test_config(&[("OIDC_TOKEN_AUTH_METHOD", "client_secret_post")]),
        true,
        TestKey::rsa(Some("r1")),
    );
    let resp = h.finish_sign_in(&h.start_login());
    assert_eq!(resp.status, 302, "{}", resp.body_text());
    assert!(cookie_set(&resp, SESSION_COOKIE).is_some());
    let token_requests = h.idp.requests_to(TOKEN_URL);
    assert_eq!(token_requests.len(), 1);
    assert_eq!(token_requests[0].headers.get("Authorization"), None);
    let form: HashMap<String, String> = form_urlencoded::parse(
        token_requests[0]
            .body
            .as_deref()
            .unwrap_or_default()
            .as_bytes(),
    )
    .into_owned()
    .collect();
    assert_eq!(form.get("client_id").map(String::as_str), Some("client"));
    assert_eq!(
        form.get("client_secret").map(String::as_str),
        Some(CLIENT_SECRET)
    );
}

#[test]
fn logs_of_a_sign_in_never_contain_the_code_tokens_or_client_secret() {
    let h = Harness::new();
    let login = h.start_login();
    let id_token = h.key.sign(&h.claims(&login.nonce));
    let resp = h.finish_sign_in_with(&login, &id_token);
    assert_eq!(resp.status, 302);
    let logs = h
        .idp
        .logs
        .borrow()
        .iter()
        .map(Value::to_string)
        .collect::<Vec<_>>()
        .join("\n");
    assert!(!logs.is_empty());
    for secret in [
        CODE,
        ACCESS_TOKEN,
        CLIENT_SECRET,
        id_token.as_str(),
        login.nonce.as_str(),
        login.state.as_str(),
    ] {
        assert!(!logs.contains(secret), "a log line contains {secret:.16}…");
    }
}

#[test]
fn return_to_pointing_off_site_ends_at_root_after_sign_in() {
    let h = Harness::new();
    for hostile in [
        "//evil.com",
        "https://evil.com/",
        "/\\evil.com",
        "/auth/logout",
    ] {
        let login = h.start_login_at(APP, Some(hostile), None);
        let resp = h.finish_sign_in(&login);
        assert_eq!(resp.status, 302, "{hostile}: {}", resp.body_text());
        assert_eq!(location(&resp), "/", "{hostile}");
    }
}

#[test]
fn callback_without_iss_succeeds_when_the_provider_does_not_advertise_it() {
    let h = Harness::without_iss_parameter();
    let login = h.start_login();
    h.idp.serve(
        TOKEN_URL,
        token_answer(&h.key.sign(&h.claims(&login.nonce))),
    );
    let resp = h.return_from_provider(
        &login,
        &login.provider_return_url(&[("code", CODE), ("state", &login.state)]),
    );
    assert_eq!(resp.status, 302, "{}", resp.body_text());
    assert!(cookie_set(&resp, SESSION_COOKIE).is_some());
}

// ----- callback failures -----------------------------------------------------------------------

#[test]
fn replayed_callback_without_the_spent_transaction_is_login_expired() {
    let h = Harness::new();
    let login = h.start_login();
    let first = h.finish_sign_in(&login);
    assert_eq!(first.status, 302);
    assert!(cookie_deleted(&first, &login.tx_cookie.name));
    let session = cookie_set(&first, SESSION_COOKIE)
        .expect("first callback signs in")
        .pair();

    // The browser applied the deletion: only the session cookie is left.
    let resp = h.respond(&navigate(&login.success_url(), Some(&session)));
    assert_eq!(resp.status, 400);
    assert_eq!(
        h.idp.last_failure_reason().as_deref(),
        Some("login_expired")
    );
    assert!(resp.body_text().contains("expired or was already used"));
    assert!(set_cookies(&resp).is_empty(), "{:?}", set_cookies(&resp));
    assert_eq!(
        h.idp.fetches_of(TOKEN_URL),
        1,
        "the code is not redeemed twice"
    );
}

#[test]
fn callback_rejects_wrong_state() {
    let h = Harness::new();
    let login = h.start_login();
    h.idp.serve(
        TOKEN_URL,
        token_answer(&h.key.sign(&h.claims(&login.nonce))),
    );

    let forged =
        login.provider_return_url(&[("code", CODE), ("state", "attacker-state"), ("iss", ISSUER)]);
    let resp = h.return_from_provider(&login, &forged);
    assert!((400..500).contains(&resp.status), "{}", resp.status);
    assert_sets_no_session(&resp);

    // Even with the real transaction renamed to the forged state's cookie name.
    let renamed = CookieJar::new(true).transaction_name_for_state_str("attacker-state");
    let resp = h.respond(&navigate(
        &forged,
        Some(&format!("{renamed}={}", login.tx_cookie.value)),
    ));
    assert!((400..500).contains(&resp.status), "{}", resp.status);
    assert_sets_no_session(&resp);
    assert_eq!(h.idp.fetches_of(TOKEN_URL), 0);
}

#[test]
fn callback_without_state_is_a_400() {
    let h = Harness::new();
    let login = h.start_login();
    let resp = h.return_from_provider(
        &login,
        &login.provider_return_url(&[("code", CODE), ("iss", ISSUER)]),
    );
    assert_eq!(resp.status, 400);
    assert_eq!(
        h.idp.last_failure_reason().as_deref(),
        Some("invalid_request")
    );
    assert_sets_no_session(&resp);
}

#[test]
fn callback_requires_iss_when_the_provider_advertises_it() {
    let h = Harness::new();
    let login = h.start_login();
    h.idp.serve(
        TOKEN_URL,
        token_answer(&h.key.sign(&h.claims(&login.nonce))),
    );
    let resp = h.return_from_provider(
        &login,
        &login.provider_return_url(&[("code", CODE), ("state", &login.state)]),
    );
    assert_eq!(resp.status, 400);
    assert_eq!(
        h.idp.last_failure_reason().as_deref(),
        Some("invalid_callback")
    );
    assert_sets_no_session(&resp);
    assert!(cookie_deleted(&resp, &login.tx_cookie.name));
    assert_eq!(h.idp.fetches_of(TOKEN_URL), 0);
}

#[test]
fn callback_rejects_wrong_iss() {
    let h = Harness::without_iss_parameter();
    let login = h.start_login();
    h.idp.serve(
        TOKEN_URL,
        token_answer(&h.key.sign(&h.claims(&login.nonce))),
    );
    let mixed_up = login.provider_return_url(&[
        ("code", CODE),
        ("state", &login.state),
        ("iss", "https://evil.example"),
    ]);
    let resp = h.return_from_provider(&login, &mixed_up);
    assert_eq!(resp.status, 400);
    assert_eq!(
        h.idp.last_failure_reason().as_deref(),
        Some("invalid_callback")
    );
    assert_sets_no_session(&resp);
    assert_eq!(h.idp.fetches_of(TOKEN_URL), 0);
}

#[test]
fn callback_after_the_transaction_expired_is_login_expired() {
    let h = Harness::new();
    let login = h.start_login();
    h.idp.advance(TRANSACTION_TTL_SECS);
    h.idp.serve(
        TOKEN_URL,
        token_answer(&h.key.sign(&h.claims(&login.nonce))),
    );
    let resp = h.return_from_provider(&login, &login.success_url());
    assert_eq!(resp.status, 400);
    assert_eq!(
        h.idp.last_failure_reason().as_deref(),
        Some("login_expired")
    );
    assert_sets_no_session(&resp);
    assert!(cookie_deleted(&resp, &login.tx_cookie.name));
    assert_eq!(h.idp.fetches_of(TOKEN_URL), 0);
}

#[test]
fn login_started_under_another_issuer_is_not_completed_after_the_issuer_changes() {
    let mut h = Harness::without_iss_parameter();
    let login = h.start_login();

    // The operator points the gateway at another provider (same COOKIE_SECRET) mid-sign-in.
    let other = "https://idp2.example.com";
    h.cfg = test_config(&[("OIDC_ISSUER", other)]);
    let doc = json!({
        "issuer": other,
        "authorization_endpoint": format!("{other}/authorize"),
        "token_endpoint": format!("{other}/token"),
        "jwks_uri": format!("{other}/jwks"),
    });
    h.idp.serve(
        &format!("{other}/.well-known/openid-configuration"),
        cacheable_json(doc.to_string()),
    );
    h.idp
        .serve(&format!("{other}/jwks"), jwks_answer(&[&h.key]));
    let mut claims = h.claims(&login.nonce);
    claims["iss"] = other.into();
    h.idp.serve(
        &format!("{other}/token"),
        token_answer(&h.key.sign(&claims)),
    );

    let resp = h.return_from_provider(
        &login,
        &login.provider_return_url(&[("code", CODE), ("state", &login.state)]),
    );
    assert_eq!(resp.status, 400, "{}", resp.body_text());
    assert_eq!(
        h.idp.last_failure_reason().as_deref(),
        Some("login_expired")
    );
    assert_sets_no_session(&resp);
    assert_eq!(h.idp.fetches_of(&format!("{other}/token")), 0);
}

#[test]
fn provider_access_denied_is_a_cancelled_page_and_spends_the_transaction() {
    let h = Harness::new();
    let login = h.start_login();
    let denied = login.provider_return_url(&[
        ("error", "access_denied"),
        ("error_description", "The user cancelled"),
        ("state", &login.state),
        ("iss", ISSUER),
    ]);
    let resp = h.return_from_provider(&login, &denied);
    assert_eq!(resp.status, 403);
    assert!(
        resp.body_text().contains("cancelled"),
        "{}",
        resp.body_text()
    );
    assert!(
        resp.body_text().contains("/auth/login"),
        "offers to sign in again"
    );
    assert!(cookie_deleted(&resp, &login.tx_cookie.name));
    assert_sets_no_session(&resp);
    assert_eq!(h.idp.fetches_of(TOKEN_URL), 0);
}

/// RFC 6749 3.1: no parameter twice. A second `iss` or `code` is refused before anything goes
/// to the token endpoint (which copy counts would be a guess, and RFC 9207's check void).
#[test]
fn a_repeated_parameter_at_the_callback_is_refused_before_any_token_request() {
    let h = Harness::new();
    for params in [
        vec![("iss", ISSUER), ("iss", "https://evil.example.com")],
        vec![("code", "attacker-code")],
        vec![("state", "another-state")],
    ] {
        let login = h.start_login();
        let mut all = vec![
            ("code", CODE),
            ("state", login.state.as_str()),
            ("iss", ISSUER),
        ];
        all.extend(params);
        let resp = h.return_from_provider(&login, &login.provider_return_url(&all));
        assert_eq!(resp.status, 400, "{all:?}: {}", resp.body_text());
        assert!(
            resp.body_text().contains("more than once"),
            "{}",
            resp.body_text()
        );
        assert_sets_no_session(&resp);
    }
    assert_eq!(h.idp.fetches_of(TOKEN_URL), 0);
}

/// RFC 9207 2.4 holds for refusals too: a provider's error text is shown only when the answer
/// names this sign-in's issuer and came back to its redirect URI.
#[test]
fn a_provider_error_is_shown_only_with_this_sign_ins_issuer() {
    let h = Harness::new();
    let text = "Call +1-555-0100 to unlock your account";
    for iss in [Some("https://evil.example.com"), None] {
        let login = h.start_login();
        let mut params = vec![
            ("error", "login_required"),
            ("error_description", text),
            ("state", login.state.as_str()),
        ];
        params.extend(iss.map(|i| ("iss", i)));
        let resp = h.return_from_provider(&login, &login.provider_return_url(&params));
        assert_eq!(resp.status, 400, "{iss:?}");
        assert!(!resp.body_text().contains("unlock"), "{}", resp.body_text());
        assert!(cookie_deleted(&resp, &login.tx_cookie.name));
    }
    let login = h.start_login();
    let params = [
        ("error", "login_required"),
        ("error_description", text),
        ("state", login.state.as_str()),
        ("iss", ISSUER),
    ];
    let resp = h.return_from_provider(&login, &login.provider_return_url(&params));
    assert!(resp.body_text().contains("unlock"), "{}", resp.body_text());
}

#[test]
fn token_endpoint_invalid_grant_is_a_400() {
    let h = Harness::new();
    let login = h.start_login();
    let refusal =
        json!({"error": "invalid_grant", "error_description": "code already used"}).to_string();
    h.idp.serve(
        TOKEN_URL,
        Response::new(400).with_body("application/json", refusal),
    );
    let resp = h.return_from_provider(&login, &login.success_url());
    assert_eq!(resp.status, 400);
    assert_eq!(
        h.idp.last_failure_reason().as_deref(),
        Some("invalid_grant")
    );
    assert_sets_no_session(&resp);
    assert!(cookie_deleted(&resp, &login.tx_cookie.name));
}

#[test]
fn token_endpoint_server_error_is_a_502() {
    let h = Harness::new();
    let login = h.start_login();
    h.idp.serve(
        TOKEN_URL,
        Response::new(503).with_body("text/html", "<html>maintenance</html>"),
    );
    let resp = h.return_from_provider(&login, &login.success_url());
    assert_eq!(resp.status, 502);
    assert_eq!(
        h.idp.last_failure_reason().as_deref(),
        Some("token_endpoint_error")
    );
    assert_sets_no_session(&resp);
}

#[test]
fn token_endpoint_unreachable_is_a_502() {
    let h = Harness::new();
    let login = h.start_login();
    h.idp.set_network_down(true);
    let resp = h.return_from_provider(&login, &login.success_url());
    assert_eq!(resp.status, 502);
    assert_eq!(
        h.idp.last_failure_reason().as_deref(),
        Some("token_endpoint_error")
    );
    assert_eq!(h.idp.fetches_of(TOKEN_URL), 1);
    assert_sets_no_session(&resp);
    assert!(cookie_deleted(&resp, &login.tx_cookie.name));
}

#[test]
fn id_token_with_wrong_nonce_is_rejected() {
    let h = Harness::new();
    let resp = h.sign_in_with_claims(|c| c["nonce"] = "nonce-of-another-login".into());
    assert_id_token_rejected(&h, &resp, "nonce");
}

#[test]
fn id_token_for_another_audience_is_rejected() {
    let h = Harness::new();
    let resp = h.sign_in_with_claims(|c| c["aud"] = "another-client".into());
    assert_id_token_rejected(&h, &resp, "aud");
}

#[test]
fn expired_id_token_is_rejected() {
    let h = Harness::new();
    let now = h.idp.now();
    // Past the 300 s clock-skew allowance.
    let resp = h.sign_in_with_claims(|c| c["exp"] = (now.as_secs() - 301).into());
    assert_id_token_rejected(&h, &resp, "expired");
}

#[test]
fn id_token_signed_by_an_unpublished_key_with_a_known_kid_is_rejected() {
    let h = Harness::new();
    let impostor = TestKey::es256(Some("k1"));
    let login = h.start_login();
    let resp = h.finish_sign_in_with(&login, &impostor.sign(&h.claims(&login.nonce)));
    assert_id_token_rejected(&h, &resp, "signature");
}
