//! Step-up: a signed-in person whose sign-in is not strong or recent enough for a path signs in
//! again, asked for what the rule needs; the provider's answer is checked against it.

use super::*;

const RULES: &str = "/admin/* group:admins&acr:mfa; /pay/* fresh:10m; /ctx/* acrs:c1";

/// Follows the gate's redirect to `/auth/login` (with the session cookie) to the provider.
fn login_from(h: &Harness, resp: &Response, cookie: &str) -> Login {
    assert_eq!(resp.status, 302, "{}", resp.body_text());
    let to = app(location(resp));
    Login::from_response(h.respond(&navigate(&to, Some(cookie))))
}

fn finish(h: &Harness, login: &Login, edit: impl FnOnce(&mut Value)) -> Response {
    let mut claims = h.claims(&login.nonce);
    edit(&mut claims);
    h.finish_sign_in_with(login, &h.key.sign(&claims))
}

#[test]
fn a_weak_sign_in_signs_in_again_with_acr_values_and_comes_back() {
    let h = Harness::with_config(&[("ACCESS_RULES", RULES)]);
    let alice = sign_in_as(&h, |c| c["acr"] = "pwd".into());
    let resp = h.respond(&navigate(&app("/admin/x?y=1"), Some(&alice)));
    assert_eq!(
        location(&resp),
        "/auth/login?return_to=%2Fadmin%2Fx%3Fy%3D1&step_up=acr%3Amfa"
    );
    assert_eq!(h.idp.logged("access")[0]["outcome"], "step_up");
    let login = login_from(&h, &resp, &alice);
    assert_eq!(login.param("acr_values"), "mfa");
    let back = finish(&h, &login, |c| {
        c["acr"] = "mfa".into();
        c["amr"] = json!(["pwd", "otp"]);
    });
    assert_eq!(back.status, 302, "{}", back.body_text());
    assert_eq!(location(&back), "/admin/x?y=1");
    let stepped = cookie_set(&back, SESSION_COOKIE)
        .expect("a new session")
        .pair();
    let (_, _, user) = h.forward(&navigate(&app("/admin/x?y=1"), Some(&stepped)));
    assert_eq!(user.as_deref(), Some("alice"));
    let me = json_body(&h.respond(&api_get(&app("/auth/userinfo"), Some(&stepped))));
    assert_eq!(me["acr"], "mfa");
    assert_eq!(me["amr"], json!(["pwd", "otp"]));
    // Someone outside the group is refused outright: no sign-in would help.
    let bob = sign_in_as(&h, |c| {
        c["sub"] = "bob".into();
        c["groups"] = json!(["staff"]);
        c["acr"] = "mfa".into();
    });
    assert_eq!(
        h.respond(&navigate(&app("/admin/x"), Some(&bob))).status,
        403
    );
}

#[test]
fn an_answer_that_does_not_meet_the_step_up_is_refused_and_the_old_session_stays() {
    let h = Harness::with_config(&[("ACCESS_RULES", RULES)]);
    let alice = h.sign_in();
    let resp = h.respond(&navigate(&app("/admin/x"), Some(&alice)));
    let login = login_from(&h, &resp, &alice);
    for acr in [json!("pwd"), Value::Null] {
        let login = login_from(&h, &resp, &alice);
        let refused = finish(&h, &login, |c| c["acr"] = acr.clone());
        assert_eq!(refused.status, 403, "{}", refused.body_text());
        assert!(refused.body_text().contains("acr_values"));
        assert_eq!(
            h.idp.last_failure_reason().as_deref(),
            Some("step_up_failed")
        );
        assert!(cookie_set(&refused, SESSION_COOKIE).is_none());
    }
    // An acr of the wrong shape is no acr.
    let odd = finish(&h, &login, |c| c["acr"] = json!(["mfa"]));
    assert_eq!(odd.status, 403);
    assert_eq!(
        h.idp.last_failure_reason().as_deref(),
        Some("step_up_failed")
    );
    // The session from before still opens what it opened.
    assert!(h.forward(&navigate(&app("/elsewhere"), Some(&alice))).1);
}

#[test]
fn a_stale_sign_in_asks_for_max_age_and_needs_a_recent_auth_time() {
    let h = Harness::with_config(&[("ACCESS_RULES", RULES)]);
    let now = h.idp.now().as_secs();
    let alice = sign_in_as(&h, |c| c["auth_time"] = (now - 3600).into());
    let resp = h.respond(&navigate(&app("/pay"), Some(&alice)));
    assert_eq!(
        location(&resp),
        "/auth/login?return_to=%2Fpay&step_up=fresh%3A600s"
    );
    // Missing, too old, or far in the future: refused (OIDC Core 3.1.3.7 step 13).
    for auth_time in [Value::Null, (now - 601).into(), (now + 3600).into()] {
        let login = login_from(&h, &resp, &alice);
        assert_eq!(login.param("max_age"), "600");
        let refused = finish(&h, &login, |c| c["auth_time"] = auth_time.clone());
        assert_eq!(refused.status, 403, "{auth_time}: {}", refused.body_text());
        assert_eq!(
            h.idp.last_failure_reason().as_deref(),
            Some("step_up_failed")
        );
    }
    let login = login_from(&h, &resp, &alice);
    let back = finish(&h, &login, |c| c["auth_time"] = (now - 5).into());
    assert_eq!(location(&back), "/pay");
    let fresh = cookie_set(&back, SESSION_COOKIE).expect("session").pair();
    assert!(h.forward(&navigate(&app("/pay"), Some(&fresh))).1);
    // Ten minutes after auth_time, the same session is stale again for this path, and only
    // for it.
    h.idp.advance(595);
    assert!(h.forward(&navigate(&app("/pay"), Some(&fresh))).1);
    h.idp.advance(1);
    assert_eq!(h.respond(&navigate(&app("/pay"), Some(&fresh))).status, 302);
    assert!(h.forward(&navigate(&app("/other"), Some(&fresh))).1);
}

#[test]
fn entra_authentication_contexts_are_asked_for_with_the_claims_parameter() {
    let h = Harness::with_config(&[("ACCESS_RULES", RULES)]);
    let alice = h.sign_in();
    let resp = h.respond(&navigate(&app("/ctx/a"), Some(&alice)));
    let login = login_from(&h, &resp, &alice);
    let claims: Value = serde_json::from_str(&login.param("claims")).unwrap();
    assert_eq!(
        claims,
        json!({"id_token": {"acrs": {"essential": true, "value": "c1"}}})
    );
    let refused = finish(&h, &login, |c| c["acrs"] = json!(["c2"]));
    assert_eq!(refused.status, 403);
    let login = login_from(&h, &resp, &alice);
    let back = finish(&h, &login, |c| c["acrs"] = json!(["c2", "c1"]));
    let s = cookie_set(&back, SESSION_COOKIE).expect("session").pair();
    assert!(h.forward(&navigate(&app("/ctx/a"), Some(&s))).1);
}

#[test]
fn programs_get_a_401_naming_the_step_up_and_first_sign_ins_ask_for_it_at_once() {
    let h = Harness::with_config(&[("ACCESS_RULES", RULES)]);
    let alice = h.sign_in();
    let api = h.respond(&api_get(&app("/pay"), Some(&alice)));
    assert_eq!(api.status, 401);
    let body = json_body(&api);
    assert_eq!(body["error"], "step_up_required");
    assert_eq!(
        body["login_url"],
        "/auth/login?return_to=%2Fpay&step_up=fresh%3A600s"
    );
    // No session yet: a path only a step-up can pass asks for it in the first sign-in.
    let first = h.respond(&navigate(&app("/pay"), None));
    assert_eq!(
        location(&first),
        "/auth/login?return_to=%2Fpay&step_up=fresh%3A600s"
    );
    // The login route takes only a step-up a rule asks for; others are a plain sign-in.
    for forged in ["fresh%3A1m", "acr%3Aanything", "group%3Aadmins"] {
        let login = Login::from_response(h.respond(&navigate(
            &app(&format!("/auth/login?step_up={forged}")),
            None,
        )));
        assert!(
            query_param(&login.authorize, "max_age").is_none(),
            "{forged}"
        );
        assert!(
            query_param(&login.authorize, "acr_values").is_none(),
            "{forged}"
        );
    }
}

#[test]
fn a_bearer_token_from_a_weak_sign_in_gets_an_rfc_9470_challenge() {
    use super::bearer::{access_token, api_harness, with_bearer};
    let (h, _) = api_harness(&[("ACCESS_RULES", "/reports/* acr:mfa&fresh:5m")]);
    let weak = access_token(&h.key, ISSUER, |c| c["acr"] = "pwd".into());
    let resp = h.respond(&with_bearer(Method::Get, &app("/reports/q"), &weak));
    assert_eq!(resp.status, 401);
    let challenge = resp.headers.get("WWW-Authenticate").unwrap();
    assert!(
        challenge.contains("error=\"insufficient_user_authentication\""),
        "{challenge}"
    );
    assert!(challenge.contains("acr_values=\"mfa\""), "{challenge}");
    assert!(challenge.contains("max_age=\"300\""), "{challenge}");
    assert_eq!(json_body(&resp)["max_age"], "300");
    let strong = access_token(&h.key, ISSUER, |c| {
        c["acr"] = "mfa".into();
        c["auth_time"] = (NOW - 60).into();
    });
    let (headers, _, user) = h.forward(&with_bearer(Method::Get, &app("/reports/q"), &strong));
    assert_eq!(user.as_deref(), Some("alice"));
    // The assertion tells the origin how the person signed in.
    let claims = assertion_claims(&headers);
    assert_eq!(claims["acr"], "mfa");
    assert_eq!(claims["auth_time"], NOW - 60);
}
