//! Provider keys and metadata as the sign-in routes see them: rotation, outages, KV.

use super::*;

// ----- provider keys and metadata --------------------------------------------------------------

#[test]
fn an_unknown_kid_at_sign_in_always_gets_one_refetch() {
    let h = Harness::with_key(TestKey::rsa(Some("k1")));
    let rotated = TestKey::rsa_other(Some("k2"));
    // The provider rotates right after the gate's first fetch.
    h.idp.serve_in_turn(
        JWKS_URL,
        vec![jwks_answer(&[&h.key]), jwks_answer(&[&h.key, &rotated])],
    );

    let login = h.start_login();
    let resp = h.finish_sign_in_with(&login, &rotated.sign(&h.claims(&login.nonce)));
    assert_eq!(resp.status, 302, "{}", resp.body_text());
    assert!(cookie_set(&resp, SESSION_COOKIE).is_some());
    assert_eq!(
        h.idp.fetches_of(JWKS_URL),
        2,
        "one normal fetch and one forced refetch"
    );
    assert_eq!(h.idp.logged("jwks_refetch").len(), 1);

    // Another unknown kid at sign-in a moment later refetches again: the code exchange
    // already bounds how often that can happen.
    h.idp.advance(1);
    let stranger = TestKey::es256(Some("k3"));
    let login = h.start_login();
    let resp = h.finish_sign_in_with(&login, &stranger.sign(&h.claims(&login.nonce)));
    assert_eq!(resp.status, 401);
    assert_sets_no_session(&resp);
    assert_eq!(h.idp.fetches_of(JWKS_URL), 3);
}

#[test]
fn a_made_up_kid_on_a_bearer_token_never_blocks_a_real_rotation_at_sign_in() {
    let (h, _) = super::bearer::api_harness(&[]);
    let rotated = TestKey::es256(Some("rotated"));
    // Published keys: the first fetch, after the Bearer refetch, and after the rotation.
    h.idp.serve_in_turn(
        JWKS_URL,
        vec![
            jwks_answer(&[&h.key]),
            jwks_answer(&[&h.key]),
            jwks_answer(&[&h.key, &rotated]),
        ],
    );
    let forged = super::bearer::access_token(&TestKey::es256(Some("made-up")), ISSUER, |_| {});
    let bearer = |t: &str| super::bearer::with_bearer(Method::Get, &app("/api/data/1"), t);
    assert_eq!(h.respond(&bearer(&forged)).status, 401);
    assert_eq!(
        h.idp.fetches_of(JWKS_URL),
        2,
        "one fetch, one refetch for the unknown kid"
    );
    // Bearer tokens with unknown kids are rate-limited: no more fetches within the minute.
    assert_eq!(h.respond(&bearer(&forged)).status, 401);
    assert_eq!(h.idp.fetches_of(JWKS_URL), 2);
    assert_eq!(h.idp.logged("jwks_refetch_skipped").len(), 1);
    // The provider rotates; a sign-in with the new key works at once.
    let login = h.start_login();
    let resp = h.finish_sign_in_with(&login, &rotated.sign(&h.claims(&login.nonce)));
    assert_eq!(resp.status, 302, "{}", resp.body_text());
    assert_eq!(h.idp.fetches_of(JWKS_URL), 3);
}

/// A provider that names no `kid` and rotates its one key: the cached key fails the
/// signature, and the set is asked for again once (not only after its cache time, up to 24 h).
/// A forged kid-less Bearer token gets the same one refetch a minute as an unknown `kid`.
#[test]
fn a_rotation_of_a_key_without_kid_is_seen_at_once_and_forged_tokens_refetch_once_a_minute() {
    let (h, _) = super::bearer::api_harness(&[]);
    let old = TestKey::es256(None);
    let rotated = TestKey::es256(None);
    h.idp.serve_in_turn(
        JWKS_URL,
        vec![jwks_answer(&[&old]), jwks_answer(&[&rotated])],
    );
    let login = h.start_login();
    let resp = h.finish_sign_in_with(&login, &old.sign(&h.claims(&login.nonce)));
    assert_eq!(resp.status, 302, "{}", resp.body_text());
    assert_eq!(h.idp.fetches_of(JWKS_URL), 1);

    h.idp.advance(1);
    let login = h.start_login();
    let resp = h.finish_sign_in_with(&login, &rotated.sign(&h.claims(&login.nonce)));
    assert_eq!(resp.status, 302, "{}", resp.body_text());
    assert_eq!(
        h.idp.fetches_of(JWKS_URL),
        2,
        "one refetch for the rotation"
    );
    assert_eq!(h.idp.logged("jwks_refetch").len(), 1);

    // Bearer tokens anyone can send: signed by a stranger, no kid.
    h.idp.advance(1);
    let forged = super::bearer::access_token(&TestKey::es256(None), ISSUER, |_| {});
    let bearer = |t: &str| super::bearer::with_bearer(Method::Get, &app("/api/data/1"), t);
    for _ in 0..3 {
        assert_eq!(h.respond(&bearer(&forged)).status, 401);
    }
    assert_eq!(
        h.idp.fetches_of(JWKS_URL),
        2,
        "within the minute of the last refetch"
    );
    h.idp.advance(61);
    for _ in 0..3 {
        assert_eq!(h.respond(&bearer(&forged)).status, 401);
    }
    assert_eq!(h.idp.fetches_of(JWKS_URL), 3, "one more a minute later");
    let genuine = super::bearer::access_token(&rotated, ISSUER, |_| {});
    assert!(matches!(
        h.handle(&bearer(&genuine)),
        Outcome::Forward { .. }
    ));
}

#[test]
fn key_set_unavailable_during_callback_is_a_503() {
    let h = Harness::new();
    h.idp.serve(JWKS_URL, Response::new(500));
    let resp = h.finish_sign_in(&h.start_login());
    assert_eq!(resp.status, 503, "{}", resp.body_text());
    assert_eq!(
        h.idp.last_failure_reason().as_deref(),
        Some("provider_unavailable")
    );
    assert_sets_no_session(&resp);
}

#[test]
fn login_is_503_when_discovery_is_unreachable_and_nothing_is_cached() {
    let h = Harness::new();
    h.idp.set_network_down(true);
    let resp = h.respond(&navigate(&app("/auth/login"), None));
    assert_eq!(resp.status, 503);
    assert_eq!(
        h.idp.last_failure_reason().as_deref(),
        Some("provider_unavailable")
    );
    assert_eq!(resp.headers.get("Location"), None);
    assert!(set_cookies(&resp).is_empty());
}

#[test]
fn login_is_503_when_discovery_answers_an_error_status() {
    let h = Harness::new();
    h.idp.serve(DISCOVERY_URL, Response::new(500));
    let resp = h.respond(&api_get(&app("/auth/login"), None));
    assert_eq!(resp.status, 503);
    assert_eq!(json_body(&resp)["error"], "provider_unavailable");
}

#[test]
fn stale_discovery_is_served_when_the_provider_goes_down() {
    let mut h = Harness::new();
    h.start_login();
    assert_eq!(h.idp.fetches_of(DISCOVERY_URL), 1);

    h.idp.advance(PROVIDER_MAX_AGE + 1);
    h.idp.set_network_down(true);
    let login = h.start_login();
    assert_eq!(
        h.idp.fetches_of(DISCOVERY_URL),
        2,
        "a stale entry is refetched first"
    );
    assert_eq!(login.param("client_id"), "client");
    assert!(!h.idp.logged("provider_unreachable").is_empty());

    // A new isolate finds the stale copy in KV.
    h.cache = ProviderCache::new();
    let login = h.start_login();
    assert_eq!(login.param("client_id"), "client");
    assert_eq!(h.idp.fetches_of(DISCOVERY_URL), 3);
}

#[test]
fn a_new_isolate_uses_fresh_provider_metadata_from_kv_without_fetching() {
    let mut h = Harness::new();
    h.start_login();
    assert_eq!(h.idp.fetches_of(DISCOVERY_URL), 1);
    assert!(!h.idp.kv.borrow().is_empty(), "discovery was written to KV");

    h.cache = ProviderCache::new();
    let login = h.start_login();
    assert_eq!(login.param("client_id"), "client");
    assert_eq!(h.idp.fetches_of(DISCOVERY_URL), 1);
}

#[test]
fn discovery_with_another_issuer_is_a_provider_configuration_error() {
    let h = Harness::new();
    let mut doc = discovery_doc(true);
    doc["issuer"] = "https://idp.example.com/".into();
    h.idp.serve(DISCOVERY_URL, cacheable_json(doc.to_string()));
    let resp = h.respond(&navigate(&app("/auth/login"), None));
    assert_eq!(resp.status, 500);
    assert_eq!(
        h.idp.last_failure_reason().as_deref(),
        Some("provider_configuration_error")
    );
    assert_eq!(resp.headers.get("Location"), None);
    assert!(set_cookies(&resp).is_empty());
}
