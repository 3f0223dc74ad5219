//! `/auth/backchannel-logout`: OpenID Connect Back-Channel Logout 1.0. The provider POSTs a
//! logout token; the sessions it names end. Needs server-side sessions: a cookie cannot be
//! reached from here.

use crate::base::log_line::log_line;
use crate::config::providers::ProviderConfig;
use crate::config::SessionStore;
use crate::gate::error::GateError;
use crate::gate::{Gate, GateRequest};
use crate::http::{Method, Response};
use crate::jose::jws::UnverifiedJws;
use crate::oidc::logout_token;
use crate::oidc::provider::{Refetch, SignedTokenError};
use crate::platform::Platform;
use crate::session::durable_object::SpentToken;
use crate::session::store::{self, LogoutOutcome, SessionObjects};

const KEYS_UNAVAILABLE: &str = "The provider's keys cannot be fetched.";

impl<P: Platform + SessionObjects> Gate<'_, P> {
    pub(super) async fn backchannel_logout(
        &self,
        req: &GateRequest,
    ) -> Result<Response, GateError> {
        if req.method != Method::Post {
            return Err(GateError::BackchannelMethod);
        }
        if self.cfg.session_store != SessionStore::DurableObject {
            return Err(GateError::BackchannelUnsupported);
        }
        let refuse = GateError::LogoutTokenRefused;
        let token = req
            .body
            .as_deref()
            .and_then(|b| {
                form_urlencoded::parse(b)
                    .find(|(k, _)| k == "logout_token")
                    .map(|(_, v)| v.into_owned())
            })
            .ok_or_else(|| refuse("no logout_token in the form body".into()))?;
        let jws = UnverifiedJws::parse(&token).map_err(|e| refuse(format!("logout_token: {e}")))?;
        // The issuer picks the providers whose keys are fetched: no other URL is ever read.
        let iss = jws.unverified_issuer().unwrap_or_default().to_owned();
        let candidates: Vec<&ProviderConfig> = self
            .cfg
            .providers
            .iter()
            .filter(|p| p.is_oidc() && p.issuer.as_str() == iss)
            .collect();
        let Some(first) = candidates.first() else {
            return Err(refuse(
                "logout_token: iss is not a configured provider".into(),
            ));
        };
        let meta = self
            .metadata(first)
            .await
            .map_err(|e| GateError::BackchannelUnavailable {
                public: KEYS_UNAVAILABLE,
                log: e.log_detail(),
            })?;
        let verified = self
            .cache
            .verify(self.platform, &meta.jwks_uri, jws, Refetch::RateLimited)
            .await
            .map_err(|e| match e {
                SignedTokenError::Provider(p) => GateError::BackchannelUnavailable {
                    public: KEYS_UNAVAILABLE,
                    log: format!("{p:?}"),
                },
                SignedTokenError::Key(k) => {
                    refuse(format!("no provider key fits the logout token ({k:?})"))
                }
                SignedTokenError::Signature(e) => refuse(format!("logout_token signature: {e}")),
            })?;
        // Providers of one issuer differ by client: the token's audience says which.
        let now = self.platform.now();
        let mut result = Err(refuse("logout_token: no provider".into()));
        for p in &candidates {
            result = logout_token::validate(&verified, &p.issuer, &p.client_id, now)
                .map_err(|why| refuse(format!("logout_token: {why}")));
            if result.is_ok() {
                break;
            }
        }
        let logout = result?;
        let (sub, sid) = (logout.sub.as_deref(), logout.sid.as_deref());
        let spent = SpentToken {
            jti: logout.jti.clone(),
            until: logout.acceptable_until,
        };
        let outcome = store::end_matching(self.platform, &first.issuer, sub, sid, spent)
            .await
            .map_err(|e| GateError::BackchannelUnavailable {
                public: "Sessions could not be ended; try again.",
                log: e.0,
            })?;
        let LogoutOutcome::Ended(ended) = outcome else {
            return Err(refuse(
                "logout_token: already used (its jti was seen)".into(),
            ));
        };
        self.platform.log_json(log_line!("level":"info","event":"backchannel_logout","sub":logout.sub,"sid":logout.sid,"sessions_ended":ended));
        let mut r = Response::new(200);
        r.headers.set("Cache-Control", "no-store");
        Ok(r)
    }
}
