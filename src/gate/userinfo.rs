//! `/auth/userinfo`: the signed-in person as JSON, for the site's own scripts.

use crate::gate::error::GateError;
use crate::gate::principal::Principal;
use crate::gate::{with_cookies, Gate, GateRequest};
use crate::http::cookies::CookieJar;
use crate::http::Response;
use crate::platform::Platform;
use crate::session::store::{SessionObjects, Unloaded};
use crate::session::NoSession;

impl<P: Platform + SessionObjects> Gate<'_, P> {
    pub(super) async fn userinfo(
        &self,
        req: &GateRequest,
        jar: &CookieJar,
    ) -> Result<Response, GateError> {
        req.read_only()?;
        match self.sessions(req, jar).load(true).await {
            Ok(l) => {
                let who = Principal::Session(&l.session);
                let email = self
                    .cfg
                    .policy
                    .vouched_email(&who.identity(&self.cfg.providers));
                let mut resp = Response::json(200, &l.session.userinfo(email));
                resp.headers.set("Cache-Control", "no-store");
                Ok(with_cookies(resp, l.set_cookies))
            }
            Err(Unloaded {
                why: NoSession::StoreUnavailable,
                ..
            }) => Err(GateError::SessionStoreUnavailable(
                "see the session_store_failed line".into(),
            )),
            Err(gone) => {
                let e = GateError::SignInRequired {
                    description: "No session.",
                    login_url: self.login_href(None),
                };
                Ok(with_cookies(
                    e.to_response(false, &self.cfg.auth_prefix),
                    gone.set_cookies,
                ))
            }
        }
    }
}
