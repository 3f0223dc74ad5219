//! Cookie sessions on the protected path: refresh, concurrent refreshes, idle time.

use super::*;

#[test]
fn a_due_refresh_rewrites_the_cookie_and_passes_the_new_access_token() {
    let h = Harness::with_config(&[
        ("PASS_ACCESS_TOKEN", "authorization"),
        ("SESSION_REFRESH_MARGIN", "10s"),
    ]);
    let session = h.sign_in_with_refresh(vec![
        refresh_answer("access-token-2", "refresh-token-2"),
        refresh_answer("access-token-3", "refresh-token-3"),
    ]);

    // Not yet within the margin of the access token's expiry: nothing is refreshed.
    h.idp.advance(49);
    let (headers, cookies) = h.forward_setting(&navigate(&app("/private"), Some(&session)));
    assert_eq!(
        headers.get("Authorization"),
        Some(format!("Bearer {ACCESS_TOKEN}").as_str())
    );
    assert!(cookies.is_empty(), "{cookies:?}");
    assert!(refresh_grants(&h).is_empty());

    // Within it: the refresh token is spent, and the new tokens go into a new cookie.
    h.idp.advance(2);
    let (headers, cookies) = h.forward_setting(&navigate(&app("/private"), Some(&session)));
    assert_eq!(headers.get("Authorization"), Some("Bearer access-token-2"));
    assert_eq!(headers.get("X-Auth-Request-User"), Some("alice"));
    let refreshed = session_cookie_in(&cookies).expect("the refreshed session is set");
    assert_secure_browser_cookie(&refreshed);
    assert_ne!(refreshed.pair(), session);
    assert_eq!(refresh_grants(&h), vec![REFRESH_TOKEN.to_owned()]);
    let grant = h.idp.requests_to(TOKEN_URL).pop().expect("refresh request");
    assert_eq!(grant.method, "POST");
    assert_eq!(
        grant.headers.get("Authorization"),
        Some(
            format!(
                "Basic {}",
                STANDARD.encode(format!("client:{CLIENT_SECRET}"))
            )
            .as_str()
        ),
        "the refresh authenticates the client"
    );
    assert_eq!(h.idp.logged("session_refreshed").len(), 1);

    // The new cookie carries the new tokens: no refresh until its own margin...
    let (headers, cookies) =
        h.forward_setting(&navigate(&app("/private"), Some(&refreshed.pair())));
    assert_eq!(headers.get("Authorization"), Some("Bearer access-token-2"));
    assert!(cookies.is_empty());
    assert_eq!(refresh_grants(&h).len(), 1);

    // ...and then it spends the rotated refresh token, not the first one.
    h.idp.advance(51);
    let (headers, cookies) =
        h.forward_setting(&navigate(&app("/private"), Some(&refreshed.pair())));
    assert_eq!(headers.get("Authorization"), Some("Bearer access-token-3"));
    assert!(session_cookie_in(&cookies).is_some());
    assert_eq!(
        refresh_grants(&h),
        vec![REFRESH_TOKEN.to_owned(), "refresh-token-2".to_owned()]
    );

    let logs = h
        .idp
        .logs
        .borrow()
        .iter()
        .map(Value::to_string)
        .collect::<Vec<_>>()
        .join("\n");
    for secret in [REFRESH_TOKEN, "refresh-token-2", "access-token-2"] {
        assert!(!logs.contains(secret), "a log line contains {secret}");
    }
}

#[test]
fn a_request_with_the_old_cookie_just_after_a_refresh_shares_it() {
    let h = Harness::with_config(&[
        ("PASS_ACCESS_TOKEN", "authorization"),
        ("SESSION_REFRESH_MARGIN", "10s"),
    ]);
    let session = h.sign_in_with_refresh(vec![
        refresh_answer("access-token-2", "refresh-token-2"),
        refused_refresh(),
    ]);
    h.idp.advance(55);
    let (headers, cookies) = h.forward_setting(&navigate(&app("/a"), Some(&session)));
    assert_eq!(headers.get("Authorization"), Some("Bearer access-token-2"));
    assert!(session_cookie_in(&cookies).is_some());

    // Another tab's request left with the old cookie before the new one arrived.
    h.idp.advance(1);
    let (headers, cookies) = h.forward_setting(&navigate(&app("/b"), Some(&session)));
    assert_eq!(headers.get("Authorization"), Some("Bearer access-token-2"));
    assert!(
        session_cookie_in(&cookies).is_some(),
        "it gets the new session too"
    );
    assert_eq!(
        refresh_grants(&h).len(),
        1,
        "the spent refresh token is not sent again"
    );
}

#[test]
fn a_refused_refresh_after_the_access_token_expired_ends_the_session() {
    let h = Harness::new();
    let session = h.sign_in_with_refresh(vec![refused_refresh()]);
    h.idp.advance(61);
    let resp = h.respond(&navigate(&app("/private?x=1"), Some(&session)));
    assert_eq!(resp.status, 302, "{}", resp.body_text());
    let to_login = Url::parse(APP)
        .and_then(|a| a.join(location(&resp)))
        .expect("login URL");
    assert_eq!(to_login.path(), "/auth/login");
    assert_eq!(
        query_param(&to_login, "return_to").as_deref(),
        Some("/private?x=1")
    );
    assert!(cookie_deleted(&resp, SESSION_COOKIE));
    assert_sets_no_session(&resp);
    assert_eq!(refresh_grants(&h), vec![REFRESH_TOKEN.to_owned()]);
    let ended = h.idp.logged("session_ended");
    assert_eq!(ended.len(), 1);
    assert_eq!(ended[0]["sub"], "alice");
    assert_eq!(ended[0]["reason"], "refresh refused");
    assert!(
        ended[0]["detail"]
            .as_str()
            .is_some_and(|d| d.contains("invalid_grant")),
        "{ended:?}"
    );

    // A program with the same cookie gets a 401; the refusal is not asked for again.
    let resp = h.respond(&api_get(&app("/api/items"), Some(&session)));
    assert_eq!(resp.status, 401);
    assert!(cookie_deleted(&resp, SESSION_COOKIE));
    assert_eq!(refresh_grants(&h).len(), 1);
}

#[test]
fn a_refused_refresh_keeps_the_session_while_its_access_token_lasts() {
    let h = Harness::new();
    let session = h.sign_in_with_refresh(vec![refused_refresh()]);
    // Due at once (the default margin is a minute), refused, but the access token is live.
    h.idp.advance(30);
    let (_, cookies) = h.forward_setting(&navigate(&app("/private"), Some(&session)));
    assert!(cookies.is_empty(), "{cookies:?}");
    assert_eq!(h.idp.logged("refresh_refused_session_kept").len(), 1);
    assert!(h.idp.logged("session_ended").is_empty());

    h.idp.advance(31);
    let resp = h.respond(&navigate(&app("/private"), Some(&session)));
    assert_eq!(resp.status, 302);
    assert!(cookie_deleted(&resp, SESSION_COOKIE));
    assert_eq!(h.idp.logged("session_ended").len(), 1);
}

#[test]
fn a_refresh_with_the_provider_down_goes_on_with_the_old_session() {
    let h = Harness::with_config(&[
        ("PASS_ACCESS_TOKEN", "authorization"),
        ("SESSION_REFRESH_MARGIN", "10s"),
    ]);
    let session = h.sign_in_with_refresh(vec![refresh_answer("access-token-2", "refresh-token-2")]);
    h.idp.advance(55);
    h.idp.set_network_down(true);
    let (headers, cookies) = h.forward_setting(&navigate(&app("/private"), Some(&session)));
    assert!(cookies.is_empty(), "no cookie rewrite: {cookies:?}");
    assert_eq!(
        headers.get("Authorization"),
        Some(format!("Bearer {ACCESS_TOKEN}").as_str()),
        "the old access token is still valid"
    );
    assert_eq!(h.idp.fetches_of(TOKEN_URL), 2, "the refresh was tried");
    let unavailable = h.idp.logged("refresh_unavailable");
    assert_eq!(unavailable.len(), 1);
    assert_eq!(unavailable[0]["sub"], "alice");
    assert!(h.idp.logged("session_ended").is_empty());

    // The outage is not remembered: once the provider is back, the next request refreshes.
    h.idp.set_network_down(false);
    let (headers, cookies) = h.forward_setting(&navigate(&app("/private"), Some(&session)));
    assert_eq!(headers.get("Authorization"), Some("Bearer access-token-2"));
    assert!(session_cookie_in(&cookies).is_some());
}

#[test]
fn a_refreshed_id_token_for_another_subject_ends_the_session() {
    let h = Harness::new();
    let other = token_answer_with(json!({
        "id_token": h.refreshed_id_token("mallory"),
        "access_token": "access-token-2", "expires_in": 60,
    }));
    let session = h.sign_in_with_refresh(vec![other]);
    h.idp.advance(61);
    let resp = h.respond(&navigate(&app("/private"), Some(&session)));
    assert_eq!(resp.status, 302, "{}", resp.body_text());
    assert!(location(&resp).starts_with("/auth/login"));
    assert!(cookie_deleted(&resp, SESSION_COOKIE));
    assert_sets_no_session(&resp);
    let ended = h.idp.logged("session_ended");
    assert_eq!(ended.len(), 1);
    assert!(
        ended[0]["detail"]
            .as_str()
            .is_some_and(|d| d.contains("another subject")),
        "{ended:?}"
    );
    assert!(h.idp.logged("session_refreshed").is_empty());
}

#[test]
fn a_refreshed_id_token_for_the_same_person_updates_the_identity() {
    let h = Harness::with_config(&[("SESSION_REFRESH_MARGIN", "10s")]);
    let mut claims = h.claims("unused");
    claims.as_object_mut().expect("claims").remove("nonce");
    claims["groups"] = json!(["staff", "auditors"]);
    claims["email"] = "alice@new.example.com".into();
    let answer = token_answer_with(json!({
        "id_token": h.key.sign(&claims), "access_token": "access-token-2", "expires_in": 60,
    }));
    let session = h.sign_in_with_refresh(vec![answer]);
    h.idp.advance(55);
    let (headers, cookies) = h.forward_setting(&navigate(&app("/private"), Some(&session)));
    assert_eq!(headers.get("X-Auth-Request-User"), Some("alice"));
    assert_eq!(headers.get("X-Auth-Request-Groups"), Some("staff,auditors"));
    assert_eq!(
        headers.get("X-Auth-Request-Email"),
        Some("alice@new.example.com")
    );
    let refreshed = session_cookie_in(&cookies).expect("refreshed cookie");
    let info = json_body(&h.respond(&api_get(&app("/auth/userinfo"), Some(&refreshed.pair()))));
    assert_eq!(info["groups"], json!(["staff", "auditors"]));
    assert_eq!(
        info["iat"].as_u64(),
        Some(NOW),
        "the session keeps its start"
    );
}

// ----- idle sessions ---------------------------------------------------------------------------

#[test]
fn an_idle_session_ends_and_an_active_one_is_rewritten_only_every_tenth_of_the_idle_time() {
    // Ten minutes idle: the timer moves (and the cookie is rewritten) once a minute at most.
    let h = Harness::with_config(&[("SESSION_IDLE_TTL", "10m")]);
    let first = h.sign_in();

    h.idp.advance(30);
    let (_, cookies) = h.forward_setting(&navigate(&app("/private"), Some(&first)));
    assert!(cookies.is_empty(), "within a tenth: {cookies:?}");

    h.idp.advance(40);
    let (_, cookies) = h.forward_setting(&navigate(&app("/private"), Some(&first)));
    let moved = session_cookie_in(&cookies).expect("past a tenth the timer moves");
    assert_secure_browser_cookie(&moved);
    assert!(moved.has(&format!("Max-Age={}", h.cfg.session_ttl_secs - 70)));

    h.idp.advance(30);
    let (_, cookies) = h.forward_setting(&navigate(&app("/private"), Some(&moved.pair())));
    assert!(cookies.is_empty(), "{cookies:?}");

    // Ten minutes after sign-in: the cookie never used since is idle; the moved one is not.
    h.idp.advance(500);
    let resp = h.respond(&navigate(&app("/private"), Some(&first)));
    assert_eq!(resp.status, 302);
    assert!(location(&resp).starts_with("/auth/login"));
    assert!(cookie_deleted(&resp, SESSION_COOKIE));
    assert_eq!(h.idp.last_rejection(), Some(json!("Idle")));
    let (_, _, user) = h.forward(&navigate(&app("/private"), Some(&moved.pair())));
    assert_eq!(user.as_deref(), Some("alice"));

    // And unused for ten minutes after its last move, it ends too.
    h.idp.advance(70);
    let resp = h.respond(&api_get(&app("/api/items"), Some(&moved.pair())));
    assert_eq!(resp.status, 401);
    assert!(cookie_deleted(&resp, SESSION_COOKIE));
}

#[test]
fn a_session_the_isolate_opened_before_is_still_checked_on_every_request() {
    // The isolate remembers opened cookies (ten minutes): the idle limit still ends the session.
    let h = Harness::with_config(&[("SESSION_IDLE_TTL", "5m")]);
    let first = h.sign_in();
    h.idp.advance(10);
    let (_, _, user) = h.forward(&navigate(&app("/private"), Some(&first)));
    assert_eq!(user.as_deref(), Some("alice"));

    // One character changed in the remembered cookie's value: not the remembered session.
    let (name, value) = first.split_once('=').unwrap();
    let last = value.chars().last().unwrap();
    let flipped = format!(
        "{name}={}{}",
        &value[..value.len() - 1],
        if last == 'A' { 'B' } else { 'A' }
    );
    let resp = h.respond(&navigate(&app("/private"), Some(&flipped)));
    assert_eq!(resp.status, 302, "a tampered cookie is no session");

    h.idp.advance(301);
    let resp = h.respond(&navigate(&app("/private"), Some(&first)));
    assert_eq!(resp.status, 302);
    assert_eq!(h.idp.last_rejection(), Some(json!("Idle")));
}

#[test]
fn a_remembered_session_opens_only_under_the_name_it_was_sealed_under() {
    // Sealed as __Host-portcullis (HTTPS) and remembered by the isolate: the same value sent
    // as plain `portcullis` (an http:// origin's name) is not that session.
    let h = Harness::new();
    let first = h.sign_in();
    let (_, _, user) = h.forward(&navigate(&app("/private"), Some(&first)));
    assert_eq!(user.as_deref(), Some("alice"));
    let value = first.split_once('=').unwrap().1;
    let renamed = format!("portcullis={value}");
    let resp = h.respond(&api_get(
        &format!("{LOOPBACK_APP}/api/items"),
        Some(&renamed),
    ));
    assert_eq!(resp.status, 401);
}

/// An operator who lowers `SESSION_TTL` (after an incident, say) ends the sessions already
/// made under the longer one, for cookies and server-side sessions alike, without rotating
/// `COOKIE_SECRET`.
#[test]
fn a_lowered_session_ttl_ends_sessions_made_under_the_longer_one() {
    for store in [None, Some("durable_object")] {
        let with = |ttl: &'static str| {
            let mut vars = vec![("SESSION_TTL", ttl)];
            vars.extend(store.map(|s| ("SESSION_STORE", s)));
            match store {
                Some(_) => durable_harness(&vars),
                None => Harness::with_config(&vars),
            }
        };
        let before = with("30d");
        let cookie = before.sign_in();
        let after = with("1h");
        // Server-side sessions live in the objects: the redeployed worker reaches the same ones.
        after.idp.objects.swap(&before.idp.objects);
        after.idp.advance(1800);
        let (_, _, user) = after.forward(&navigate(&app("/private"), Some(&cookie)));
        assert_eq!(user.as_deref(), Some("alice"), "{store:?}");
        after.idp.advance(1801);
        let resp = after.respond(&navigate(&app("/private"), Some(&cookie)));
        assert_eq!(resp.status, 302, "{store:?}");
        assert!(location(&resp).starts_with("/auth/login"));
        assert!(cookie_deleted(&resp, SESSION_COOKIE));
    }
}
