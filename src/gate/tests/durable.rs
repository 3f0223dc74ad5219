//! Server-side sessions (`SESSION_STORE=durable_object`) through the gate.

use super::*;

#[test]
fn durable_object_sessions_keep_only_a_reference_in_the_cookie_and_end_at_logout() {
    let h = durable_harness(&[]);
    let resp = h.finish_sign_in(&h.start_login());
    assert_eq!(resp.status, 302, "{}", resp.body_text());
    let cookie = cookie_set(&resp, SESSION_COOKIE).expect("session cookie");
    assert_secure_browser_cookie(&cookie);
    assert!(
        cookie.value.len() < 400 && !cookie.value.contains('~'),
        "a small reference, not the session: {} bytes",
        cookie.value.len()
    );
    let chunks: Vec<String> = set_cookies(&resp)
        .into_iter()
        .map(|c| c.name)
        .filter(|n| {
            n.strip_prefix(&format!("{SESSION_COOKIE}-"))
                .is_some_and(|i| i.bytes().all(|b| b.is_ascii_digit()))
        })
        .collect();
    assert!(chunks.is_empty(), "no chunks: {chunks:?}");
    let stored = stored_sessions(&h);
    assert_eq!(stored.len(), 1, "{stored:?}");
    assert!(stored[0].0.starts_with("user:") && stored[0].1 == 1);
    let session = cookie.pair();

    let (headers, cookies) = h.forward_setting(&navigate(&app("/private"), Some(&session)));
    assert_eq!(headers.get("X-Auth-Request-User"), Some("alice"));
    assert!(cookies.is_empty());
    let info = json_body(&h.respond(&api_get(&app("/auth/userinfo"), Some(&session))));
    assert_eq!(info["email"], "alice@example.com");

    let resp = h.respond(&request(
        Method::Post,
        &app("/auth/logout"),
        &[("Origin", APP), ("Accept", HTML), ("Cookie", &session)],
    ));
    assert_eq!(resp.status, 302, "{}", resp.body_text());
    assert!(cookie_deleted(&resp, SESSION_COOKIE));
    assert_eq!(
        h.idp.logged("sign_out").last().map(|l| l["sub"].clone()),
        Some(json!("alice"))
    );
    assert!(stored_sessions(&h).is_empty(), "the object deleted it");

    // The browser (or a thief) still holding the cookie is signed out.
    let resp = h.respond(&navigate(&app("/private"), Some(&session)));
    assert_eq!(resp.status, 302);
    assert!(location(&resp).starts_with("/auth/login"));
    assert!(cookie_deleted(&resp, SESSION_COOKIE));
    assert_eq!(h.idp.last_rejection(), Some(json!("Ended")));
}

#[test]
fn an_unreachable_session_store_is_a_503_not_a_sign_in() {
    let h = durable_harness(&[]);
    let session = h.sign_in();
    h.idp.store_down.set(true);
    for req in [
        navigate(&app("/private"), Some(&session)),
        api_get(&app("/api/items"), Some(&session)),
        api_get(&app("/auth/userinfo"), Some(&session)),
    ] {
        let resp = h.respond(&req);
        assert_eq!(resp.status, 503, "{}", req.url);
        assert_eq!(resp.headers.get("Location"), None);
        assert!(
            set_cookies(&resp).is_empty(),
            "the cookie is kept: {:?}",
            set_cookies(&resp)
        );
        assert_eq!(
            h.idp.last_failure_reason().as_deref(),
            Some("session_store_unavailable")
        );
    }
    assert_eq!(h.idp.logged("session_store_failed").len(), 3);

    // Sign-in fails the same way rather than handing out a cookie that leads nowhere.
    let resp = h.finish_sign_in(&h.start_login());
    assert_eq!(resp.status, 503);
    assert_sets_no_session(&resp);

    h.idp.store_down.set(false);
    let (_, _, user) = h.forward(&navigate(&app("/private"), Some(&session)));
    assert_eq!(user.as_deref(), Some("alice"));
}

#[test]
fn durable_object_sessions_refresh_inside_the_object_without_a_cookie_rewrite() {
    let h = durable_harness(&[
        ("PASS_ACCESS_TOKEN", "authorization"),
        ("SESSION_REFRESH_MARGIN", "10s"),
    ]);
    let session = h.sign_in_with_refresh(vec![
        refresh_answer("access-token-2", "refresh-token-2"),
        refused_refresh(),
    ]);
    h.idp.advance(51);
    let (headers, cookies) = h.forward_setting(&navigate(&app("/private"), Some(&session)));
    assert_eq!(headers.get("Authorization"), Some("Bearer access-token-2"));
    assert!(cookies.is_empty(), "the cookie only names the session");
    assert_eq!(
        h.idp
            .logged("session_refreshed")
            .last()
            .map(|l| l["store"].clone()),
        Some(json!("durable_object"))
    );

    // The object kept the rotated refresh token; its refusal, past expiry, ends the session.
    h.idp.advance(61);
    let resp = h.respond(&navigate(&app("/private"), Some(&session)));
    assert_eq!(resp.status, 302);
    assert!(cookie_deleted(&resp, SESSION_COOKIE));
    assert_eq!(
        refresh_grants(&h),
        vec![REFRESH_TOKEN.to_owned(), "refresh-token-2".to_owned()]
    );
    assert_eq!(h.idp.logged("session_ended").len(), 1);
    assert!(stored_sessions(&h).is_empty());
}
