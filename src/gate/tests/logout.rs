//! `/auth/logout` and `/auth/logged-out`, local and RP-initiated.

use super::*;

// ----- logout ----------------------------------------------------------------------------------

#[test]
fn logout_get_shows_a_confirmation_form() {
    let h = Harness::new();
    let session = h.sign_in();
    let resp = h.respond(&navigate(&app("/auth/logout"), Some(&session)));
    assert_eq!(resp.status, 200);
    let body = resp.body_text();
    assert!(
        body.contains("<form method=\"post\" action=\"/auth/logout\""),
        "{body}"
    );
    assert!(body.contains("alice@example.com"));
    assert!(set_cookies(&resp).is_empty(), "a GET must not sign out");
}

#[test]
fn cross_site_logout_post_is_refused() {
    let h = Harness::new();
    let session = h.sign_in();
    let attempts = [
        request(
            Method::Post,
            &app("/auth/logout"),
            &[("Origin", "https://evil.example"), ("Cookie", &session)],
        ),
        request(
            Method::Post,
            &app("/auth/logout"),
            &[("Sec-Fetch-Site", "cross-site"), ("Cookie", &session)],
        ),
    ];
    for req in &attempts {
        let resp = h.respond(req);
        assert_eq!(resp.status, 403);
        assert_eq!(
            h.idp.last_failure_reason().as_deref(),
            Some("cross_site_request")
        );
        assert!(set_cookies(&resp).is_empty());
    }
    let (_, _, s) = h.forward(&navigate(&app("/private"), Some(&session)));
    assert!(s.is_some(), "still signed in");
}

#[test]
fn same_origin_logout_redirects_to_the_end_session_endpoint_and_clears_the_session() {
    let h = Harness::new();
    let session = h.sign_in();
    let resp = h.respond(&request(
        Method::Post,
        &app("/auth/logout"),
        &[("Origin", APP), ("Accept", HTML), ("Cookie", &session)],
    ));
    assert_eq!(resp.status, 302, "{}", resp.body_text());
    let end = Url::parse(location(&resp)).expect("absolute end-session URL");
    assert_eq!(end.as_str().split('?').next(), Some(END_SESSION_URL));
    assert_eq!(query_param(&end, "client_id").as_deref(), Some("client"));
    assert_eq!(
        query_param(&end, "post_logout_redirect_uri").as_deref(),
        Some("https://app.example.com/auth/logged-out")
    );
    assert!(cookie_deleted(&resp, SESSION_COOKIE));
    assert_sets_no_session(&resp);
    let signed_out = h.idp.logged("sign_out");
    assert_eq!(
        signed_out.last().map(|l| l["sub"].clone()),
        Some(json!("alice"))
    );
}

#[test]
fn logout_with_the_provider_unreachable_still_clears_the_session() {
    let mut h = Harness::new();
    let session = h.sign_in();
    // A new isolate with nothing cached, and the provider down.
    h.cache = ProviderCache::new();
    h.idp.kv.borrow_mut().clear();
    h.idp.set_network_down(true);
    let resp = h.respond(&request(
        Method::Post,
        &app("/auth/logout"),
        &[("Origin", APP), ("Cookie", &session)],
    ));
    assert_eq!(resp.status, 302);
    assert_eq!(location(&resp), "/auth/logged-out");
    assert!(cookie_deleted(&resp, SESSION_COOKIE));
    assert_eq!(h.idp.logged("logout_local_only").len(), 1);

    let page = h.respond(&navigate(&app("/auth/logged-out"), None));
    assert_eq!(page.status, 200);
    assert!(page.body_text().contains("signed out"));
}

// ----- RP-initiated logout ---------------------------------------------------------------------

#[test]
fn by_default_the_id_token_stays_out_of_the_session_and_logout_names_the_client() {
    let with_hint = Harness::with_config(&[("OIDC_LOGOUT_ID_TOKEN_HINT", "true")]);
    let h = Harness::new();
    let mut sizes = Vec::new();
    for h in [&with_hint, &h] {
        h.idp.serve(
            DISCOVERY_URL,
            cacheable_json(discovery_doc(true).to_string()),
        );
        let login = h.start_login();
        let id_token = h.key.sign(&h.claims(&login.nonce));
        h.idp
            .serve(TOKEN_URL, token_answer_with(json!({"id_token": id_token})));
        let resp = h.return_from_provider(&login, &login.success_url());
        sizes.push(
            cookie_set(&resp, SESSION_COOKIE)
                .expect("session")
                .value
                .len(),
        );
    }
    assert!(
        sizes[1] + 200 < sizes[0],
        "the ID token is not kept: {sizes:?}"
    );

    let login = h.start_login();
    let id_token = h.key.sign(&h.claims(&login.nonce));
    h.idp
        .serve(TOKEN_URL, token_answer_with(json!({"id_token": id_token})));
    let resp = h.return_from_provider(&login, &login.success_url());
    let session = cookie_set(&resp, SESSION_COOKIE).expect("session").pair();
    let resp = h.respond(&request(
        Method::Post,
        &app("/auth/logout"),
        &[("Origin", APP), ("Accept", HTML), ("Cookie", &session)],
    ));
    assert_eq!(resp.status, 302, "{}", resp.body_text());
    let end = Url::parse(location(&resp)).expect("absolute end-session URL");
    assert_eq!(query_param(&end, "id_token_hint"), None);
    assert_eq!(query_param(&end, "client_id").as_deref(), Some("client"));
    assert!(query_param(&end, "state").is_some());
}

#[test]
fn rp_initiated_logout_sends_the_hint_and_state_revokes_and_checks_the_state_on_return() {
    let h = Harness::with_config(&[("OIDC_LOGOUT_ID_TOKEN_HINT", "true")]);
    let mut doc = discovery_doc(true);
    doc["revocation_endpoint"] = REVOCATION_URL.into();
    h.idp.serve(DISCOVERY_URL, cacheable_json(doc.to_string()));
    h.idp.serve(REVOCATION_URL, Response::new(200));

    let login = h.start_login();
    let id_token = h.key.sign(&h.claims(&login.nonce));
    h.idp.serve(
        TOKEN_URL,
        token_answer_with(json!({"id_token": id_token, "refresh_token": REFRESH_TOKEN})),
    );
    let resp = h.return_from_provider(&login, &login.success_url());
    let session = cookie_set(&resp, SESSION_COOKIE)
        .expect("session cookie")
        .pair();

    let resp = h.respond(&request(
        Method::Post,
        &app("/auth/logout"),
        &[("Origin", APP), ("Accept", HTML), ("Cookie", &session)],
    ));
    assert_eq!(resp.status, 302, "{}", resp.body_text());
    assert!(cookie_deleted(&resp, SESSION_COOKIE));
    let end = Url::parse(location(&resp)).expect("absolute end-session URL");
    assert_eq!(end.as_str().split('?').next(), Some(END_SESSION_URL));
    assert_eq!(
        query_param(&end, "id_token_hint").as_deref(),
        Some(id_token.as_str())
    );
    assert_eq!(query_param(&end, "client_id").as_deref(), Some("client"));
    assert_eq!(
        query_param(&end, "post_logout_redirect_uri").as_deref(),
        Some("https://app.example.com/auth/logged-out")
    );
    let state = query_param(&end, "state").expect("the logout URL carries state");
    assert!(state.len() >= 16, "{state}");
    let logout_cookie =
        cookie_set(&resp, "__Host-portcullis-logout").expect("the state is remembered");
    assert_secure_browser_cookie(&logout_cookie);
    assert!(logout_cookie.has("Max-Age=600"));
    assert!(!logout_cookie.value.contains(&state), "sealed");

    // The refresh token was revoked (RFC 7009), with client authentication.
    let revocations = h.idp.requests_to(REVOCATION_URL);
    assert_eq!(revocations.len(), 1);
    assert_eq!(revocations[0].method, "POST");
    let form = form_of(&revocations[0]);
    assert_eq!(form.get("token").map(String::as_str), Some(REFRESH_TOKEN));
    assert_eq!(
        form.get("token_type_hint").map(String::as_str),
        Some("refresh_token")
    );
    assert!(revocations[0]
        .headers
        .get("Authorization")
        .is_some_and(|a| a.starts_with("Basic ")));
    assert_eq!(h.idp.logged("refresh_token_revoked").len(), 1);

    // The provider sends the browser back with the state: it matches the cookie.
    let back = |state: &str, cookie: Option<&str>| {
        let mut url = Url::parse(&app("/auth/logged-out")).expect("url");
        url.query_pairs_mut().append_pair("state", state);
        h.respond(&navigate(url.as_str(), cookie))
    };
    let resp = back(&state, Some(&logout_cookie.pair()));
    assert_eq!(resp.status, 200, "{}", resp.body_text());
    assert!(resp.body_text().contains("signed out"));
    assert!(cookie_deleted(&resp, &logout_cookie.name));

    let resp = back("another-state", Some(&logout_cookie.pair()));
    assert_eq!(resp.status, 400);
    assert_eq!(
        h.idp.last_failure_reason().as_deref(),
        Some("logout_state_mismatch")
    );
    assert!(cookie_deleted(&resp, &logout_cookie.name));

    let resp = back(&state, None);
    assert_eq!(resp.status, 400, "no cookie, no match");

    h.idp.advance(600);
    let resp = back(&state, Some(&logout_cookie.pair()));
    assert_eq!(resp.status, 400, "the state has expired");
}

#[test]
fn rp_initiated_logout_on_loopback_uses_a_plain_logout_cookie_name() {
    let h = Harness::new();
    let login = h.start_login_at(LOOPBACK_APP, None, None);
    let resp = h.finish_sign_in(&login);
    let session = cookie_set(&resp, "portcullis").expect("session").pair();
    let resp = h.respond(&request(
        Method::Post,
        &format!("{LOOPBACK_APP}/auth/logout"),
        &[("Origin", LOOPBACK_APP), ("Cookie", &session)],
    ));
    assert_eq!(resp.status, 302, "{}", resp.body_text());
    let end = Url::parse(location(&resp)).expect("absolute end-session URL");
    assert_eq!(
        query_param(&end, "post_logout_redirect_uri").as_deref(),
        Some("http://127.0.0.1:8787/auth/logged-out")
    );
    let cookie = cookie_set(&resp, "portcullis-logout").expect("plain logout cookie");
    assert!(!cookie.has("Secure"));
    assert!(
        h.idp.requests_to(REVOCATION_URL).is_empty(),
        "no revocation endpoint"
    );
}
