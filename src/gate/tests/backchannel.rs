//! `/auth/backchannel-logout`.

use super::*;
use crate::oidc::logout_token::BACKCHANNEL_LOGOUT_EVENT;

// ----- back-channel logout ---------------------------------------------------------------------

/// A logout token signed by the provider's key, with `edit` applied to its claims.
fn logout_token(h: &Harness, edit: impl FnOnce(&mut Value)) -> String {
    let mut header = h.key.header();
    header["typ"] = "logout+jwt".into();
    let mut claims = json!({
        "iss": ISSUER, "aud": "client", "iat": h.idp.now(), "jti": "jti-1",
        "sub": "alice", "sid": "sid-1", "events": {BACKCHANNEL_LOGOUT_EVENT: {}},
    });
    edit(&mut claims);
    h.key.sign_raw(&header, &claims)
}

/// The provider POSTing a logout token.
fn backchannel_logout(h: &Harness, token: &str) -> Response {
    let mut req = request(
        Method::Post,
        &app("/auth/backchannel-logout"),
        &[("Content-Type", "application/x-www-form-urlencoded")],
    );
    req.body = Some(
        form_urlencoded::Serializer::new(String::new())
            .append_pair("logout_token", token)
            .finish()
            .into_bytes(),
    );
    h.respond(&req)
}

fn is_signed_in(h: &Harness, session: &str) -> bool {
    match h.handle(&api_get(&app("/private"), Some(session))) {
        Outcome::Forward { .. } => true,
        Outcome::Respond(r) => {
            assert_eq!(r.status, 401, "{}", r.body_text());
            false
        }
    }
}

#[test]
fn back_channel_logout_ends_the_sessions_the_logout_token_names() {
    let h = durable_harness(&[]);
    let first = sign_in_as(&h, |c| c["sid"] = "sid-1".into());
    let second = sign_in_as(&h, |c| c["sid"] = "sid-2".into());
    let third = sign_in_as(&h, |c| c["sid"] = "sid-3".into());
    assert!(is_signed_in(&h, &first) && is_signed_in(&h, &second) && is_signed_in(&h, &third));

    // sub and sid: that provider session of that person.
    let resp = backchannel_logout(&h, &logout_token(&h, |_| {}));
    assert_eq!(resp.status, 200, "{}", resp.body_text());
    assert_eq!(resp.headers.get("Cache-Control"), Some("no-store"));
    assert!(!is_signed_in(&h, &first));
    assert!(is_signed_in(&h, &second) && is_signed_in(&h, &third));
    let done = h.idp.logged("backchannel_logout");
    assert_eq!(
        done.last().map(|l| l["sessions_ended"].clone()),
        Some(json!(1))
    );

    // sid alone: found through the provider-session index.
    let resp = backchannel_logout(
        &h,
        &logout_token(&h, |c| {
            c.as_object_mut().expect("claims").remove("sub");
            c["sid"] = "sid-2".into();
            c["jti"] = "jti-2".into();
        }),
    );
    assert_eq!(resp.status, 200, "{}", resp.body_text());
    assert!(!is_signed_in(&h, &second));
    assert!(is_signed_in(&h, &third));

    // sub alone: every session of that person.
    let resp = backchannel_logout(
        &h,
        &logout_token(&h, |c| {
            c.as_object_mut().expect("claims").remove("sid");
            c["jti"] = "jti-3".into();
        }),
    );
    assert_eq!(resp.status, 200, "{}", resp.body_text());
    assert!(!is_signed_in(&h, &third));
    assert!(stored_sessions(&h).is_empty());
}

#[test]
fn a_logout_token_with_sub_and_sid_ends_the_persons_sessions_that_kept_no_sid() {
    let h = durable_harness(&[]);
    let without_sid = h.sign_in();
    let other_sid = sign_in_as(&h, |c| c["sid"] = "sid-9".into());
    let resp = backchannel_logout(&h, &logout_token(&h, |_| {}));
    assert_eq!(resp.status, 200, "{}", resp.body_text());
    assert!(
        !is_signed_in(&h, &without_sid),
        "no sid recorded: the person's"
    );
    assert!(
        is_signed_in(&h, &other_sid),
        "another provider session stays"
    );
}

#[test]
fn a_logout_token_is_single_use() {
    let h = durable_harness(&[]);
    let token = logout_token(&h, |_| {});
    let first = sign_in_as(&h, |c| c["sid"] = "sid-1".into());
    assert_eq!(backchannel_logout(&h, &token).status, 200);
    assert!(!is_signed_in(&h, &first));
    // The same token again: refused, and it ends nothing (a new session of that sid stays).
    let again = sign_in_as(&h, |c| c["sid"] = "sid-1".into());
    let resp = backchannel_logout(&h, &token);
    assert_eq!(resp.status, 400, "{}", resp.body_text());
    assert!(json_body(&resp)["error_description"]
        .as_str()
        .unwrap_or_default()
        .contains("already used"));
    assert!(is_signed_in(&h, &again));
    // Past the time the token could be accepted at all, the record goes.
    h.idp.advance(3600);
    let fresh = logout_token(&h, |c| c["jti"] = "jti-other".into());
    assert_eq!(backchannel_logout(&h, &fresh).status, 200);
}

#[test]
fn back_channel_logout_refuses_bad_logout_tokens() {
    let h = durable_harness(&[]);
    let session = sign_in_as(&h, |c| c["sid"] = "sid-1".into());
    let impostor = TestKey::es256(Some("k1"));
    let mut forged_header = impostor.header();
    forged_header["typ"] = "logout+jwt".into();
    let good_claims = json!({
        "iss": ISSUER, "aud": "client", "iat": h.idp.now(), "jti": "jti-1",
        "sub": "alice", "sid": "sid-1", "events": {BACKCHANNEL_LOGOUT_EVENT: {}},
    });
    let bad = [
        ("nonce", logout_token(&h, |c| c["nonce"] = "n-1".into())),
        (
            "wrong aud",
            logout_token(&h, |c| c["aud"] = "another-client".into()),
        ),
        ("no event", logout_token(&h, |c| c["events"] = json!({}))),
        ("an ID token", h.key.sign(&h.claims("n"))),
        (
            "unpublished key",
            impostor.sign_raw(&forged_header, &good_claims),
        ),
        ("not a JWT", "not-a-jwt".to_owned()),
    ];
    for (what, token) in &bad {
        let resp = backchannel_logout(&h, token);
        assert_eq!(resp.status, 400, "{what}: {}", resp.body_text());
        assert_eq!(
            resp.headers.get("Cache-Control"),
            Some("no-store"),
            "{what}"
        );
        assert_eq!(json_body(&resp)["error"], "invalid_request", "{what}");
    }
    assert_eq!(h.idp.logged("backchannel_logout_refused").len(), bad.len());

    let mut no_token = request(
        Method::Post,
        &app("/auth/backchannel-logout"),
        &[("Content-Type", "application/x-www-form-urlencoded")],
    );
    no_token.body = Some(b"other=1".to_vec());
    assert_eq!(h.respond(&no_token).status, 400);
    assert_eq!(
        h.respond(&api_get(&app("/auth/backchannel-logout"), None))
            .status,
        405
    );

    assert!(is_signed_in(&h, &session), "nothing was ended");
    assert!(h.idp.logged("backchannel_logout").is_empty());
}

#[test]
fn back_channel_logout_with_cookie_sessions_is_501() {
    let h = Harness::new();
    let session = h.sign_in();
    let resp = backchannel_logout(&h, &logout_token(&h, |_| {}));
    assert_eq!(resp.status, 501, "{}", resp.body_text());
    assert_eq!(resp.headers.get("Cache-Control"), Some("no-store"));
    assert_eq!(json_body(&resp)["error"], "not_supported");
    assert_eq!(h.idp.logged("backchannel_logout_refused").len(), 1);
    assert!(is_signed_in(&h, &session));
}
