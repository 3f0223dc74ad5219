//! `/auth/callback`: the provider sends the browser back. The login transaction is spent
//! whatever happens; the code is redeemed, the ID token verified, and a session started.

use serde_json::json;

use crate::base::seal::Purpose;
use crate::gate::error::GateError;
use crate::gate::{with_cookies, Gate, GateRequest};
use crate::http::cookies::{parse_cookie_header, CookieJar};
use crate::http::return_to::ReturnTo;
use crate::http::{Method, Response};
use crate::oidc::id_token::{self, IdTokenCheck, IdTokenFailure};
use crate::oidc::token_endpoint::{printable, TokenError, TokenResponse};
use crate::oidc::transaction::{CallbackError, CallbackParams, LoginTransaction};
use crate::platform::Platform;
use crate::session::store::{SessionObjects, StartError};
use crate::session::{Session, SessionTokens, StoredSecret};

impl From<IdTokenFailure> for GateError {
    fn from(e: IdTokenFailure) -> Self {
        match e {
            IdTokenFailure::Provider(p) => p.into(),
            IdTokenFailure::Rejected(why) => Self::IdTokenRejected(why),
        }
    }
}

impl From<StartError> for GateError {
    fn from(e: StartError) -> Self {
        match e {
            StartError::Seal(why) => Self::Internal(why),
            StartError::Store(e) => Self::SessionStoreUnavailable(e.0),
        }
    }
}

/// The login transaction a callback names: its cookie's name and value, when present.
struct Transaction {
    name: Option<String>,
    value: Option<String>,
}

impl<P: Platform + SessionObjects> Gate<'_, P> {
    pub(super) async fn callback(&self, req: &GateRequest, jar: &CookieJar) -> Response {
        let params = CallbackParams::from_query(&req.url);
        let name = params
            .state
            .as_deref()
            .map(|s| jar.transaction_name_for_state_str(s));
        let value = name.as_deref().and_then(|name| {
            req.cookie_header().and_then(|h| {
                parse_cookie_header(h)
                    .into_iter()
                    .find(|(n, _)| n == &name)
                    .map(|(_, v)| v.to_owned())
            })
        });
        let tx = Transaction { name, value };
        let mut resp = match self.finish(req, jar, &params, &tx).await {
            Ok(r) => r,
            Err(e) => self.fail(req, e),
        };
        // One use only: whatever happened, this transaction is spent.
        if let (Some(name), Some(_)) = (tx.name, tx.value) {
            resp.headers.append("Set-Cookie", jar.delete(&name));
        }
        resp
    }

    async fn finish(
        &self,
        req: &GateRequest,
        jar: &CookieJar,
        params: &CallbackParams,
        tx: &Transaction,
    ) -> Result<Response, GateError> {
        if req.method != Method::Get {
            return Err(GateError::MethodNotAllowed);
        }
        let open = |name: &str, value: &str| {
            self.cfg
                .sealer
                .open_json::<LoginTransaction>(Purpose::LoginTransaction, name, value)
        };
        if let Some(error) = &params.error {
            // Only an answer to a sign-in this browser started may show provider text on our
            // domain; anything else is a stale or forged link.
            let live = match (&tx.name, &tx.value, params.state.as_deref()) {
                (Some(name), Some(value), Some(state)) => {
                    open(name, value).is_ok_and(|tx| tx.state().matches(state))
                }
                _ => false,
            };
            if !live {
                return Err(GateError::LoginNotFound);
            }
            return Err(GateError::ProviderSaidNo {
                error: printable(error, 64),
                description: params
                    .error_description
                    .as_deref()
                    .map(|d| printable(d, 300)),
            });
        }
        let (Some(name), Some(value)) = (&tx.name, &tx.value) else {
            return Err(if params.state.is_none() {
                GateError::MissingParameter("state")
            } else {
                GateError::LoginNotFound
            });
        };
        if params.code.is_none() {
            return Err(GateError::MissingParameter("code"));
        }
        let login = open(name, value).map_err(|_| GateError::LoginNotFound)?;
        let meta = self.metadata().await?;
        let now = self.platform.now();
        let exchange = login
            .complete(
                params,
                meta.authorization_response_iss_parameter_supported,
                now,
            )
            .map_err(|e| {
                if e == CallbackError::Expired {
                    GateError::LoginNotFound
                } else {
                    GateError::Callback(e)
                }
            })?;
        if exchange.issuer != self.cfg.issuer {
            return Err(GateError::LoginNotFound);
        }

        let token_resp = self
            .platform
            .fetch(exchange.token_request(self.cfg, &meta.token_endpoint))
            .await
            .map_err(|e| GateError::TokenEndpoint(format!("token request failed: {e}")))?;
        let tokens = TokenResponse::parse(&token_resp).map_err(|e| match e {
            TokenError::Refused {
                status,
                error,
                description,
            } if status < 500 => GateError::CodeRefused { error, description },
            other => GateError::TokenEndpoint(other.to_string()),
        })?;

        let check = IdTokenCheck {
            raw: tokens.id_token.secret(),
            jwks_uri: &meta.jwks_uri,
            nonce: Some(&exchange.nonce),
            access_token: tokens.access_token.as_ref().map(|t| t.secret().as_str()),
            now,
        };
        let verified = id_token::verify(self.cfg, self.cache, self.platform, check).await?;
        let session_tokens = SessionTokens {
            access_token: self
                .cfg
                .pass_access_token
                .and(tokens.access_token.as_ref())
                .map(|t| StoredSecret::new(t.secret().clone())),
            access_expires_at: tokens.expires_in.map(|e| now.plus(e)),
            refresh_token: tokens
                .refresh_token
                .as_ref()
                .map(|t| StoredSecret::new(t.secret().clone())),
            // Only for `id_token_hint` at the provider's logout.
            id_token: meta
                .end_session_endpoint
                .as_ref()
                .map(|_| StoredSecret::new(tokens.id_token.secret().clone())),
        };
        let session = Session::from_id_token(
            verified,
            &self.cfg.list_claims,
            session_tokens,
            now,
            self.cfg.session_ttl_secs,
        );
        let (session, cookies) = self.sessions(req, jar).start(session, now).await?;
        self.platform.log(&json!({
            "level":"info","event":"sign_in","iss":session.iss.as_str(),"sub":session.sub,
            "groups_omitted":session.groups_omitted,
            "refresh_token":session.tokens.refresh_token.is_some(),
        }));
        let return_to = ReturnTo::from_trusted(&exchange.return_to, &self.cfg.auth_prefix);
        Ok(with_cookies(
            Response::redirect(return_to.as_str()),
            cookies,
        ))
    }
}
