//! A browser form posted without a live session is kept in the browser through sign-in and
//! posted again once after it; other posts keep the 401.

use super::*;

const FORM: &str = "application/x-www-form-urlencoded";

fn form_post(url: &str, site: &str, body: Option<&[u8]>, cookie: Option<&str>) -> GateRequest {
    let origin = Url::parse(url).unwrap().origin().ascii_serialization();
    let mut headers = vec![
        ("Accept", HTML),
        ("Content-Type", FORM),
        ("Sec-Fetch-Mode", "navigate"),
        ("Sec-Fetch-Site", site),
        ("Origin", origin.as_str()),
    ];
    if let Some(c) = cookie {
        headers.push(("Cookie", c));
    }
    let mut req = request(Method::Post, url, &headers);
    req.body = body.map(<[u8]>::to_vec);
    req
}

/// The JSON the page hands to the browser to keep.
fn kept(resp: &Response) -> Value {
    let html = resp.body_text();
    let start = html.find("id=\"form\">").expect("a kept form") + "id=\"form\">".len();
    let end = start + html[start..].find("</script>").unwrap();
    serde_json::from_str(&html[start..end]).unwrap()
}

fn login_link(resp: &Response) -> String {
    let html = resp.body_text();
    let start = html.find("id=\"login\" href=\"").unwrap() + "id=\"login\" href=\"".len();
    let end = start + html[start..].find('"').unwrap();
    html[start..end].replace("&amp;", "&")
}

#[test]
fn a_same_origin_form_without_a_session_is_kept_and_posted_again_after_sign_in() {
    let h = Harness::new();
    let resp = h.respond(&form_post(
        &app("/contact?lang=en"),
        "same-origin",
        Some(b"name=Ada&msg=hello%0D%0Aworld"),
        None,
    ));
    assert_eq!(resp.status, 401);
    let csp = resp.headers.get("Content-Security-Policy").unwrap();
    let nonce = csp
        .split("'nonce-")
        .nth(1)
        .unwrap()
        .split('\'')
        .next()
        .unwrap();
    assert!(nonce.len() >= 16, "{csp}");
    assert!(resp
        .body_text()
        .contains(&format!("<script nonce=\"{nonce}\">")));
    assert!(!resp.body_text().contains("onclick") && !resp.body_text().contains("onload"));
    let form = kept(&resp);
    assert_eq!(form["path"], "/contact?lang=en");
    assert_eq!(
        form["fields"],
        json!([["name", "Ada"], ["msg", "hello\r\nworld"]])
    );
    assert_eq!(h.idp.logged("form_kept").len(), 1);

    let link = login_link(&resp);
    let id = form["id"].as_str().unwrap();
    assert!(id.len() >= 32, "{id}");
    assert_eq!(
        link,
        format!("/auth/login?return_to=%2Fcontact%3Flang%3Den&resume={id}")
    );
    let login = Login::from_response(h.respond(&navigate(&app(&link), None)));
    let back = h.finish_sign_in(&login);
    assert_eq!(back.status, 200, "{}", back.body_text());
    assert!(cookie_set(&back, SESSION_COOKIE).is_some(), "signed in");
    let page = back.body_text();
    assert!(
        page.contains(&format!("href=\"/contact?lang=en\" data-id=\"{id}\"")),
        "{page}"
    );
    assert!(page.contains("sessionStorage"));
    let csp = back.headers.get("Content-Security-Policy").unwrap();
    assert!(csp.contains("script-src 'nonce-"), "{csp}");
    // A resume value that is not a kept form's id is no resume.
    let odd = Login::from_response(h.respond(&navigate(
        &app("/auth/login?return_to=%2Fcontact&resume=form"),
        None,
    )));
    assert_eq!(h.finish_sign_in(&odd).status, 302);
    // A plain sign-in still redirects.
    let plain = h.finish_sign_in(&h.start_login());
    assert_eq!(plain.status, 302);
}

#[test]
fn cross_site_forms_api_posts_and_forms_of_other_encodings_keep_the_401() {
    let h = Harness::new();
    for site in ["cross-site", "same-site", "none"] {
        let resp = h.respond(&form_post(&app("/contact"), site, Some(b"a=1"), None));
        assert_eq!(resp.status, 401, "{site}");
        assert_eq!(json_body(&resp)["error"], "unauthenticated", "{site}");
    }
    // A forged Origin with a same-origin claim is not this origin.
    let mut forged = form_post(&app("/contact"), "same-origin", Some(b"a=1"), None);
    forged.headers.set("Origin", "https://evil.example");
    assert_eq!(json_body(&h.respond(&forged))["error"], "unauthenticated");
    // fetch() of JSON, and a form post that is not a navigation.
    let mut json_post = form_post(&app("/api/x"), "same-origin", Some(b"{}"), None);
    json_post.headers.set("Content-Type", "application/json");
    assert_eq!(
        json_body(&h.respond(&json_post))["error"],
        "unauthenticated"
    );
    let mut xhr = form_post(&app("/contact"), "same-origin", Some(b"a=1"), None);
    xhr.headers.set("Sec-Fetch-Mode", "cors");
    assert_eq!(json_body(&h.respond(&xhr))["error"], "unauthenticated");
}

#[test]
fn a_form_that_cannot_be_kept_gets_a_page_saying_so() {
    let h = Harness::new();
    // The shell read no body: larger than FORM_REPLAY_MAX_BYTES.
    let big = h.respond(&form_post(&app("/contact"), "same-origin", None, None));
    assert_eq!(big.status, 401);
    assert!(big.body_text().contains("could not be kept"));
    assert!(!big.body_text().contains("id=\"form\""));
    let bad = h.respond(&form_post(
        &app("/contact"),
        "same-origin",
        Some(b"a=%FF"),
        None,
    ));
    assert!(bad.body_text().contains("could not be kept"));
    // Posted where return_to could not say exactly (a control character in the query): not
    // kept, so never sent to another address.
    let odd = h.respond(&form_post(
        &app("/?a=%0A"),
        "same-origin",
        Some(b"a=1"),
        None,
    ));
    assert!(odd.body_text().contains("could not be kept"));
    let lines = h.idp.logged("form_not_kept");
    assert_eq!(lines.len(), 3);
    assert!(lines[1]["reason"].as_str().unwrap().contains("UTF-8"));
    // Turned off.
    let off = Harness::with_config(&[("FORM_REPLAY_MAX_BYTES", "0")]);
    let resp = off.respond(&form_post(
        &app("/contact"),
        "same-origin",
        Some(b"a=1"),
        None,
    ));
    assert!(resp.body_text().contains("could not be kept"));
}

#[test]
fn a_form_posted_to_a_step_up_path_is_kept_through_the_step_up() {
    let h = Harness::with_config(&[("ACCESS_RULES", "/pay/* fresh:10m")]);
    let alice = h.sign_in();
    let resp = h.respond(&form_post(
        &app("/pay/confirm"),
        "same-origin",
        Some(b"amount=10"),
        Some(&alice),
    ));
    assert_eq!(resp.status, 401);
    let form = kept(&resp);
    assert_eq!(form["fields"], json!([["amount", "10"]]));
    assert_eq!(
        login_link(&resp),
        format!(
            "/auth/login?return_to=%2Fpay%2Fconfirm&step_up=fresh%3A600s&resume={}",
            form["id"].as_str().unwrap()
        )
    );
}

#[test]
fn the_shell_reads_only_small_same_origin_form_navigations() {
    let headers = |pairs: &[(&str, &str)]| {
        let mut h = Headers::new();
        for (k, v) in pairs {
            h.append(*k, *v);
        }
        h
    };
    let good = [
        ("Content-Type", "multipart/form-data; boundary=x"),
        ("Sec-Fetch-Mode", "navigate"),
        ("Sec-Fetch-Site", "same-origin"),
        ("Content-Length", "100"),
    ];
    assert!(GateRequest::form_worth_reading(
        Method::Post,
        &headers(&good),
        100
    ));
    assert!(!GateRequest::form_worth_reading(
        Method::Post,
        &headers(&good),
        99
    ));
    assert!(!GateRequest::form_worth_reading(
        Method::Put,
        &headers(&good),
        100
    ));
    for drop in 0..good.len() {
        let partial: Vec<_> = good
            .iter()
            .enumerate()
            .filter(|(i, _)| *i != drop)
            .map(|(_, p)| *p)
            .collect();
        assert!(!GateRequest::form_worth_reading(
            Method::Post,
            &headers(&partial),
            100
        ));
    }
}
