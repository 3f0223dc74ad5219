//! `/auth/logout` (a confirmation page, then a same-site POST) and `/auth/logged-out`, where
//! the provider's logout (RP-Initiated Logout 1.0) sends the browser back.

use crate::base::log_line::log_line;
use crate::base::seal::Purpose;
use crate::base::time::UnixTime;
use crate::base::types::State;
use crate::config::providers::ProviderConfig;
use crate::gate::error::GateError;
use crate::gate::{with_cookies, Gate, GateRequest};
use crate::http::cookies::{parse_cookie_header, CookieJar};
use crate::http::http_url::HttpUrl;
use crate::http::pages::{page, Action};
use crate::http::{Method, Response};
use crate::oidc::discovery::ProviderMetadata;
use crate::oidc::token_endpoint::{client_assertion, client_request};
use crate::platform::Platform;
use crate::session::store::SessionObjects;

/// The state of an RP-initiated logout, sealed in a cookie until the provider sends the
/// browser back.
#[derive(serde::Serialize, serde::Deserialize)]
struct LogoutState {
    state: State,
    exp: UnixTime,
}

const LOGOUT_STATE_TTL_SECS: u64 = 600;

/// A state-changing request a browser says came from another site.
fn is_cross_site(req: &GateRequest) -> bool {
    if let Some(origin) = req.headers.get("Origin") {
        return origin != req.origin();
    }
    req.headers
        .get("Sec-Fetch-Site")
        .is_some_and(|s| s != "same-origin" && s != "none")
}

impl<P: Platform + SessionObjects> Gate<'_, P> {
    pub(super) async fn logout(
        &self,
        req: &GateRequest,
        jar: &CookieJar,
    ) -> Result<Response, GateError> {
        match req.method {
            Method::Get | Method::Head => {
                let signed_in = self.sessions(req, jar).load(false).await.ok();
                let who = signed_in
                    .as_ref()
                    .and_then(|l| l.session.email.clone().or(l.session.name.clone()))
                    .unwrap_or_else(|| "this site".into());
                let line = if signed_in.is_some() {
                    format!("You are signed in as {who}.")
                } else {
                    "You are not signed in.".to_owned()
                };
                let action = self.cfg.auth_path("logout");
                Ok(page(
                    200,
                    "Sign out?",
                    &[&line],
                    &[
                        Action::PostButton {
                            action: &action,
                            label: "Sign out",
                        },
                        Action::Link {
                            href: "/",
                            label: "Cancel",
                        },
                    ],
                ))
            }
            Method::Post => {
                if is_cross_site(req) {
                    return Err(GateError::CrossSiteLogout);
                }
                Ok(self.sign_out(req, jar).await)
            }
            _ => Err(GateError::MethodNotAllowed),
        }
    }

    /// Ends the session here whatever the provider does, revokes its refresh token, and sends
    /// the browser to the provider's logout (RP-Initiated Logout 1.0) when it has one.
    async fn sign_out(&self, req: &GateRequest, jar: &CookieJar) -> Response {
        let (ended, mut set_cookies) = self.sessions(req, jar).end().await;
        self.platform.log_json(log_line!("level":"info","event":"sign_out","sub":ended.as_ref().map(|s| s.sub.clone())));
        let logged_out_path = self.cfg.auth_path("logged-out");
        // The session's own provider; without a session, the only one there is.
        let provider = match &ended {
            Some(s) => self.cfg.providers.get(s.provider.as_str()),
            None => self
                .cfg
                .providers
                .login_default()
                .filter(|_| self.cfg.providers.len() == 1),
        };
        // GitHub has no logout: the session ends here only.
        let Some(provider) = provider.filter(|p| p.is_oidc()) else {
            let mut resp = with_cookies(Response::redirect(&logged_out_path), set_cookies);
            resp.headers.append("Clear-Site-Data", "\"cache\"");
            return resp;
        };
        let location = match self.metadata(provider).await {
            Err(e) => {
                self.platform.log_json(
                    log_line!("level":"warn","event":"logout_local_only","detail":e.log_detail()),
                );
                logged_out_path
            }
            Ok(meta) => {
                if let (Some(endpoint), Some(rt)) = (
                    meta.revocation_endpoint.as_ref(),
                    ended.as_ref().and_then(|s| s.tokens.refresh_token.as_ref()),
                ) {
                    self.revoke(provider, &meta, endpoint, rt.secret()).await;
                }
                match meta.end_session_endpoint.clone() {
                    None => logged_out_path,
                    Some(end) => {
                        let ours = format!("{}{logged_out_path}", req.origin());
                        let post_logout = self
                            .cfg
                            .post_logout_redirect_uri
                            .as_ref()
                            .map_or_else(|| ours.clone(), HttpUrl::to_string);
                        let hint = ended
                            .as_ref()
                            .and_then(|s| s.tokens.id_token.as_ref())
                            .map(|t| ("id_token_hint", t.secret().as_str()));
                        let mut end = end.with_pairs(
                            [
                                ("client_id", provider.client_id.as_str()),
                                ("post_logout_redirect_uri", post_logout.as_str()),
                            ]
                            .into_iter()
                            .chain(hint),
                        );
                        // The state comes back to our logged-out page, which checks it.
                        if post_logout == ours {
                            if let Some(cookie) = self.logout_state_cookie(jar, &mut end) {
                                set_cookies.push(cookie);
                            }
                        }
                        end.to_string()
                    }
                }
            }
        };
        let mut resp = with_cookies(Response::redirect(&location), set_cookies);
        resp.headers.append("Clear-Site-Data", "\"cache\"");
        resp
    }

    /// Adds `state` to the provider's logout URL and returns the cookie that remembers it.
    fn logout_state_cookie(&self, jar: &CookieJar, end: &mut HttpUrl) -> Option<String> {
        let state = State::generate().ok()?;
        let name = jar.logout_name();
        let sealed = self
            .cfg
            .sealer
            .seal_json(
                Purpose::LoginTransaction,
                &name,
                &LogoutState {
                    state: state.clone(),
                    exp: self.platform.now().plus(LOGOUT_STATE_TTL_SECS),
                },
            )
            .ok()?;
        *end = end.with_pairs([("state", state.as_str())]);
        Some(jar.set(&name, &sealed, LOGOUT_STATE_TTL_SECS))
    }

    /// RFC 7009: best effort; the session has ended here whatever the answer.
    async fn revoke(
        &self,
        provider: &ProviderConfig,
        meta: &ProviderMetadata,
        endpoint: &HttpUrl,
        refresh_token: &str,
    ) {
        let assertion = match client_assertion(self.platform, provider, &meta.token_endpoint).await
        {
            Ok(a) => a,
            Err(why) => {
                self.platform
                    .log_json(log_line!("level":"warn","event":"revocation_failed","detail":why));
                return;
            }
        };
        let req = client_request(
            provider,
            endpoint,
            &[
                ("token", refresh_token),
                ("token_type_hint", "refresh_token"),
            ],
            assertion.as_ref(),
        );
        match self.platform.fetch(req).await {
            Ok(r) if r.status == 200 => self
                .platform
                .log_json(log_line!("level":"info","event":"refresh_token_revoked")),
            Ok(r) => self
                .platform
                .log_json(log_line!("level":"warn","event":"revocation_failed","status":r.status)),
            Err(e) => self
                .platform
                .log_json(log_line!("level":"warn","event":"revocation_failed","detail":e.0)),
        }
    }

    /// Where the provider's logout sends the browser back: checks the `state` it carries
    /// against the one this browser's sign-out sent.
    pub(super) fn logged_out(
        &self,
        req: &GateRequest,
        jar: &CookieJar,
    ) -> Result<Response, GateError> {
        req.read_only()?;
        let name = jar.logout_name();
        let sent = req.cookie_header().and_then(|h| {
            parse_cookie_header(h)
                .into_iter()
                .find(|(n, _)| *n == name)
                .map(|(_, v)| v.to_owned())
        });
        let mut resp = match req.query("state") {
            None => self.logged_out_page(),
            Some(returned) => {
                let matches = sent
                    .as_deref()
                    .and_then(|v| {
                        self.cfg
                            .sealer
                            .open_json::<LogoutState>(Purpose::LoginTransaction, &name, v)
                            .ok()
                    })
                    .is_some_and(|s| s.exp > self.platform.now() && s.state.matches(&returned));
                if matches {
                    self.logged_out_page()
                } else {
                    self.fail(req, GateError::LogoutStateMismatch)
                }
            }
        };
        if sent.is_some() {
            resp.headers.append("Set-Cookie", jar.delete(&name));
        }
        Ok(resp)
    }

    fn logged_out_page(&self) -> Response {
        let login = self.cfg.auth_path("login");
        page(
            200,
            "You are signed out",
            &["Your session on this site has ended."],
            &[Action::Link {
                href: &login,
                label: "Sign in again",
            }],
        )
    }
}
