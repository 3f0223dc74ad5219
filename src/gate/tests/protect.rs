//! The protected path without a session, public paths, path checks and transport.

use super::*;

// ----- sessions and routing --------------------------------------------------------------------

#[test]
fn program_without_session_gets_401_json_with_www_authenticate() {
    let h = Harness::new();
    let resp = h.respond(&api_get(&app("/api/items"), None));
    assert_eq!(resp.status, 401);
    assert_eq!(
        resp.headers.get("WWW-Authenticate"),
        Some("Bearer realm=\"portcullis\"")
    );
    let body = json_body(&resp);
    assert_eq!(body["error"], "unauthenticated");
    assert_eq!(body["login_url"], "/auth/login");
    assert!(set_cookies(&resp).is_empty());
}

#[test]
fn browser_post_without_session_gets_401_not_a_redirect() {
    let h = Harness::new();
    let resp = h.respond(&request(
        Method::Post,
        &app("/api/items"),
        &[("Accept", HTML)],
    ));
    assert_eq!(resp.status, 401);
}

#[test]
fn tampered_garbage_or_truncated_session_cookies_are_no_session() {
    let h = Harness::new();
    let good = h.sign_in();
    let value = good
        .split_once('=')
        .map(|(_, v)| v.to_owned())
        .expect("session pair");
    let mid = value.len() / 2;
    let flipped = if &value[mid..=mid] == "A" { "B" } else { "A" };
    let tampered = format!("{}{flipped}{}", &value[..mid], &value[mid + 1..]);
    for bad in [
        tampered.as_str(),
        &value[..mid],
        &value[..value.len() - 1],
        "garbage",
        "",
        "%%%",
        &"A".repeat(10_000),
    ] {
        let cookie = format!("{SESSION_COOKIE}={bad}");
        let resp = h.respond(&navigate(&app("/private"), Some(&cookie)));
        assert_eq!(resp.status, 302, "{bad:.20}");
        assert!(location(&resp).starts_with("/auth/login"), "{bad:.20}");
        assert!(cookie_deleted(&resp, SESSION_COOKIE), "{bad:.20}");

        let resp = h.respond(&api_get(&app("/api/items"), Some(&cookie)));
        assert_eq!(resp.status, 401, "{bad:.20}");
        assert!(cookie_deleted(&resp, SESSION_COOKIE), "{bad:.20}");
    }
    // The untouched cookie still works.
    let (_, protected, session) = h.forward(&navigate(&app("/private"), Some(&good)));
    assert!(protected && session.is_some());
}

#[test]
fn a_transaction_cookie_value_is_not_a_session() {
    let h = Harness::new();
    let login = h.start_login();
    let cookie = format!("{SESSION_COOKIE}={}", login.tx_cookie.value);
    let resp = h.respond(&navigate(&app("/private"), Some(&cookie)));
    assert_eq!(resp.status, 302);
    assert!(location(&resp).starts_with("/auth/login"));
}

#[test]
fn expired_session_redirects_to_login() {
    let h = Harness::new();
    let session = h.sign_in();
    h.idp.advance(h.cfg.session_ttl_secs - 1);
    let (_, protected, s) = h.forward(&navigate(&app("/private"), Some(&session)));
    assert!(
        protected && s.is_some(),
        "still valid a second before expiry"
    );

    h.idp.advance(1);
    let resp = h.respond(&navigate(&app("/private?x=1"), Some(&session)));
    assert_eq!(resp.status, 302);
    let to_login = Url::parse(APP)
        .and_then(|a| a.join(location(&resp)))
        .expect("login URL");
    assert_eq!(to_login.path(), "/auth/login");
    assert_eq!(
        query_param(&to_login, "return_to").as_deref(),
        Some("/private?x=1")
    );
    assert!(cookie_deleted(&resp, SESSION_COOKIE));
    let rejected = h.idp.logged("session_rejected");
    assert_eq!(
        rejected.last().map(|l| l["reason"].clone()),
        Some(json!("Expired"))
    );
}

#[test]
fn public_paths_pass_without_session_and_are_not_protected() {
    let h = Harness::with_config(&[("PUBLIC_PATHS", "/public/*")]);
    for path in ["/public", "/public/logo.png", "/public/a/b.css"] {
        let (_, protected, session) = h.forward(&navigate(&app(path), None));
        assert!(!protected, "{path}");
        assert!(session.is_none(), "{path}");
    }
    let resp = h.respond(&navigate(&app("/publicity"), None));
    assert_eq!(
        resp.status, 302,
        "a prefix match is on segment boundaries only"
    );
    assert!(
        h.idp.requests.borrow().is_empty(),
        "public paths never reach the provider"
    );
}

#[test]
fn encoded_slash_in_path_is_a_400() {
    let h = Harness::new();
    // Double encodings too, however the escape's own digits are written: an origin that
    // decodes twice would serve another path than the one judged.
    for path in [
        "/a%2Fb",
        "/a%5cb",
        "/auth%2Flogin",
        "/a%zz",
        "/public/..%252fadmin",
        "/public/%25%32%65%25%32%65/admin/x",
        "/public/..%25%32%66admin",
        "/%25%36%31dmin/x",
    ] {
        let resp = h.respond(&navigate(&app(path), None));
        assert_eq!(resp.status, 400, "{path}");
        assert_eq!(
            h.idp.last_failure_reason().as_deref(),
            Some("ambiguous_path"),
            "{path}"
        );
    }
}

#[test]
fn unknown_auth_route_is_404_and_login_refuses_post() {
    let h = Harness::new();
    let resp = h.respond(&navigate(&app("/auth/nope"), None));
    assert_eq!(resp.status, 404);
    let resp = h.respond(&request(
        Method::Post,
        &app("/auth/login"),
        &[("Origin", APP)],
    ));
    assert_eq!(resp.status, 405);
    assert!(h.idp.requests.borrow().is_empty());
}

#[test]
fn userinfo_without_session_is_401() {
    let h = Harness::new();
    let resp = h.respond(&api_get(&app("/auth/userinfo"), None));
    assert_eq!(resp.status, 401);
    assert_eq!(json_body(&resp)["error"], "unauthenticated");
    assert!(resp.headers.get("WWW-Authenticate").is_some());
}

// ----- transport -------------------------------------------------------------------------------

#[test]
fn plain_http_navigation_on_a_public_host_is_redirected_to_https() {
    let h = Harness::new();
    let resp = h.respond(&navigate("http://app.example.com/private?x=1", None));
    assert_eq!(resp.status, 308);
    assert_eq!(location(&resp), "https://app.example.com/private?x=1");
    assert!(set_cookies(&resp).is_empty());
    // Its host comes from the request's `Host`: no cache keeps it for anyone else.
    assert_eq!(resp.headers.get("Cache-Control"), Some("no-store"));

    let resp = h.respond(&request(
        Method::Post,
        "http://app.example.com/auth/logout",
        &[("Accept", HTML)],
    ));
    assert_eq!(resp.status, 400);
    assert_eq!(
        h.idp.last_failure_reason().as_deref(),
        Some("https_required")
    );
    let resp = h.respond(&api_get("http://app.example.com/api", None));
    assert_eq!(resp.status, 400);
}

#[test]
fn loopback_http_signs_in_with_plain_cookie_names_without_secure() {
    let h = Harness::new();
    let login = h.start_login_at(LOOPBACK_APP, Some("/private"), None);
    assert_eq!(
        login.param("redirect_uri"),
        "http://127.0.0.1:8787/auth/callback"
    );
    assert!(
        login.tx_cookie.name.starts_with("portcullis-tx-"),
        "{}",
        login.tx_cookie.name
    );
    assert!(!login.tx_cookie.has("Secure"));
    assert!(login.tx_cookie.has("HttpOnly"));

    let resp = h.finish_sign_in(&login);
    assert_eq!(resp.status, 302, "{}", resp.body_text());
    assert_eq!(location(&resp), "/private");
    let session = cookie_set(&resp, "portcullis").expect("plain session cookie on loopback");
    assert!(!session.has("Secure") && session.has("HttpOnly") && session.has("SameSite=Lax"));
    assert!(cookie_deleted(&resp, &login.tx_cookie.name));

    let (_, protected, s) = h.forward(&navigate(
        &format!("{LOOPBACK_APP}/private"),
        Some(&session.pair()),
    ));
    assert!(protected);
    assert_eq!(s.as_deref(), Some("alice"));
}

/// Not a test: the Rust half of a signed-in request, timed on the host (`cargo test --release
/// hot_path_figures -- --ignored --nocapture`). What the shell does with a request: read the
/// head the runtime sends, decide, and turn the outcome into the edits glue.js applies. Where
/// its instructions go: `HOT_PATH_N=2000 valgrind --tool=callgrind <the test binary>
/// hot_path_figures --ignored`, then `callgrind_annotate`.
#[test]
#[ignore]
fn hot_path_figures() {
    use crate::http::wire::{forward_plan, parse_head, protected_response_edits};
    let h = Harness::with_config(&[("ACCESS_LOG", "none")]);
    let cookie = h.sign_in();
    let head = format!(
        "GET\n{APP}/page\nhost\napp.example.com\ncookie\n{cookie}\naccept\n{HTML}\naccept-encoding\nbr, gzip\ncf-connecting-ip\n203.0.113.9\nuser-agent\nwrk"
    );
    let once = || {
        let parsed = parse_head(&head).expect("head");
        let req = GateRequest {
            method: Method::parse(parsed.method),
            url: HttpUrl::parse(parsed.url).expect("url"),
            headers: parsed.headers,
            body: None,
        };
        match h.handle(&req) {
            Outcome::Forward { headers, .. } => {
                let headers = headers.expect("an origin gets the gate's headers");
                let plan = forward_plan(APP, Some(&headers), &[]).expect("plan");
                let cache = protected_response_edits(None, None);
                plan.len() + cache.len()
            }
            Outcome::Respond(r) => panic!("answered {}", r.status),
        }
    };
    for _ in 0..2_000 {
        std::hint::black_box(once());
    }
    let n: u32 = std::env::var("HOT_PATH_N")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(50_000);
    let start = std::time::Instant::now();
    for _ in 0..n {
        std::hint::black_box(once());
    }
    let per = start.elapsed().as_secs_f64() * 1e6 / f64::from(n);
    println!("signed-in request, Rust half on the host: {per:.2} us");
}
