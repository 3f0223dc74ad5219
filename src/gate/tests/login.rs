//! `/auth/login`: login transactions, several at once.

use super::*;

// ----- concurrent logins -----------------------------------------------------------------------

/// The `Cookie` header a browser holding `cookies` sends.
fn cookie_header(cookies: &[SetCookie]) -> Option<String> {
    (!cookies.is_empty()).then(|| {
        cookies
            .iter()
            .map(SetCookie::pair)
            .collect::<Vec<_>>()
            .join("; ")
    })
}

#[test]
fn a_login_beyond_the_cap_deletes_the_oldest_transaction_cookie() {
    let h = Harness::new();
    let mut logins: Vec<Login> = Vec::new();
    for i in 0..MAX_LIVE_TRANSACTIONS {
        let held: Vec<SetCookie> = logins.iter().map(|l| l.tx_cookie.clone()).collect();
        let login = h.start_login_at(APP, None, cookie_header(&held).as_deref());
        assert!(
            deleted_names(&login.response).is_empty(),
            "login {i} is within the cap"
        );
        logins.push(login);
        h.idp.advance(1);
    }
    let held: Vec<SetCookie> = logins.iter().map(|l| l.tx_cookie.clone()).collect();
    let newest = h.start_login_at(APP, None, cookie_header(&held).as_deref());
    assert_eq!(
        deleted_names(&newest.response),
        vec![logins[0].tx_cookie.name.clone()]
    );
    assert!(cookie_set(&newest.response, &newest.tx_cookie.name).is_some());

    // The other tabs' sign-ins still complete.
    let resp = h.finish_sign_in(&logins[1]);
    assert_eq!(resp.status, 302, "{}", resp.body_text());
}

#[test]
fn expired_or_unreadable_transaction_cookies_are_cleared_by_the_next_login() {
    let h = Harness::new();
    let old = h.start_login();
    h.idp.advance(TRANSACTION_TTL_SECS + 1);
    let junk = format!("{TX_COOKIE_PREFIX}junk=not-sealed");
    let login = h.start_login_at(
        APP,
        None,
        Some(&format!("{}; {junk}; theme=dark", old.tx_cookie.pair())),
    );
    let mut deleted = deleted_names(&login.response);
    deleted.sort();
    let mut expected = vec![
        old.tx_cookie.name.clone(),
        format!("{TX_COOKIE_PREFIX}junk"),
    ];
    expected.sort();
    assert_eq!(deleted, expected);
}

// --- Access policy and identity for the origin ---
