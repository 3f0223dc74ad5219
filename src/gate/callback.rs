//! `/auth/callback` (`/auth/callback/{id}` for each of `PROVIDERS`): the provider sends the
//! browser back. The login transaction is spent
//! whatever happens; the code is redeemed, the ID token verified, and a session started.

use crate::base::log_line::log_line;
use crate::base::random::random_token;
use crate::base::seal::Purpose;
use crate::base::time::UnixTime;
use crate::config::providers::{GitHubUrls, ProviderConfig};
use crate::gate::error::GateError;
use crate::gate::{with_cookies, Gate, GateRequest};
use crate::http::cookies::{parse_cookie_header, CookieJar};
use crate::http::form_replay;
use crate::http::return_to::ReturnTo;
use crate::http::OutboundRequest;
use crate::http::{Method, Response};
use crate::oidc::discovery::ProviderMetadata;
use crate::oidc::github::{reads_memberships, GitHubClient, GitHubError};
use crate::oidc::graph::overage_groups;
use crate::oidc::id_token::{self, IdTokenCheck, IdTokenFailure};
use crate::oidc::token_endpoint::{
    client_assertion, printable, RefreshResponse, TokenError, TokenResponse,
};
use crate::oidc::transaction::{CallbackError, CallbackParams, CodeExchange, LoginTransaction};
use crate::platform::Platform;
use crate::session::store::{SessionObjects, StartError};
use crate::session::{Session, SessionTokens, StoredSecret};

impl From<IdTokenFailure> for GateError {
    fn from(e: IdTokenFailure) -> Self {
        match e {
            IdTokenFailure::Provider(p) => p.into(),
            IdTokenFailure::Rejected(why) => Self::IdTokenRejected(why),
            IdTokenFailure::TenantNotAllowed => Self::TenantNotAllowed,
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
        let params = match CallbackParams::from_query(req.url.query().unwrap_or_default()) {
            Ok(p) => p,
            Err(e) => return self.fail(req, GateError::Callback(e)),
        };
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
            // domain; anything else is a stale or forged link. And only the answer of the
            // provider it went to: at its redirect URI, naming its issuer (RFC 9207 2.4).
            let login = match (&tx.name, &tx.value, params.state.as_deref()) {
                (Some(name), Some(value), Some(state)) => open(name, value)
                    .ok()
                    .filter(|tx| tx.state().matches(state)),
                _ => None,
            };
            let Some(login) = login else {
                return Err(GateError::LoginNotFound);
            };
            if !login.answers_at(req.url.path()) {
                return Err(GateError::Callback(CallbackError::WrongRedirect));
            }
            let provider = self.provider(login.provider())?;
            let iss_required = match provider.github() {
                Some(_) => false,
                None => {
                    self.metadata(provider)
                        .await?
                        .authorization_response_iss_parameter_supported
                }
            };
            login
                .check_issuer(params, iss_required)
                .map_err(GateError::Callback)?;
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
        // Before anything goes to a token endpoint: the code must come from the provider this
        // sign-in went to, and only its redirect URI says so when it sends no `iss`.
        if !login.answers_at(req.url.path()) {
            return Err(GateError::Callback(CallbackError::WrongRedirect));
        }
        // Only the provider the sign-in went to: its metadata, its keys, its client.
        let provider = self.provider(login.provider())?;
        let now = self.platform.now();
        let (session, return_to, resume_form) = match provider.github() {
            Some(urls) => {
                let exchange = complete(login, params, false, now)?;
                if exchange.issuer != provider.issuer {
                    return Err(GateError::LoginNotFound);
                }
                if exchange.step_up.is_some() {
                    return Err(GateError::StepUpNotMet(
                        "GitHub does not say how or when a person signed in".into(),
                    ));
                }
                let req = exchange.token_request(provider, &urls.token, None);
                let answer = self.redeem(req, RefreshResponse::parse).await?;
                let session = self.github_session(provider, &urls, answer, now).await?;
                (session, exchange.return_to, exchange.resume_form)
            }
            None => {
                let meta = self.metadata(provider).await?;
                let iss_required = meta.authorization_response_iss_parameter_supported;
                let exchange = complete(login, params, iss_required, now)?;
                if exchange.issuer != provider.issuer {
                    return Err(GateError::LoginNotFound);
                }
                let assertion = client_assertion(self.platform, provider, &meta.token_endpoint)
                    .await
                    .map_err(GateError::Internal)?;
                let req =
                    exchange.token_request(provider, &meta.token_endpoint, assertion.as_ref());
                let tokens = self.redeem(req, TokenResponse::parse).await?;
                let session = self
                    .oidc_session(provider, &meta, &exchange, tokens, now)
                    .await?;
                (session, exchange.return_to, exchange.resume_form)
            }
        };
        let (session, cookies) = self.sessions(req, jar).start(session, now).await?;
        self.platform.log_json(
            log_line!("level":"info","event":"sign_in","provider":session.provider.as_str(),
            "iss":session.iss.as_str(),"sub":session.sub,
            "groups_omitted":session.groups_omitted,
            "refresh_token":session.tokens.refresh_token.is_some(),
            "acr":session.auth.acr,"auth_time":session.auth.auth_time),
        );
        let return_to = ReturnTo::from_trusted(&return_to, &self.cfg.auth_prefix);
        // A form kept in the browser: a page posts it again to `return_to` (and only there).
        let answer = match (resume_form, random_token()) {
            (Some(id), Ok(nonce)) => form_replay::resume_page(return_to.as_str(), &id, &nonce),
            _ => Response::redirect(return_to.as_str()),
        };
        Ok(with_cookies(answer, cookies))
    }

    /// The token request, and its answer read by `parse`.
    async fn redeem<T>(
        &self,
        req: OutboundRequest,
        parse: impl Fn(&Response) -> Result<T, TokenError>,
    ) -> Result<T, GateError> {
        let resp = self
            .platform
            .fetch(req)
            .await
            .map_err(|e| GateError::TokenEndpoint(format!("token request failed: {e}")))?;
        parse(&resp).map_err(|e| match e {
            TokenError::Refused {
                status,
                error,
                description,
            } if status < 500 => GateError::CodeRefused { error, description },
            other => GateError::TokenEndpoint(other.to_string()),
        })
    }

    /// An OpenID Connect sign-in: the ID token decides who it is.
    async fn oidc_session(
        &self,
        provider: &ProviderConfig,
        meta: &ProviderMetadata,
        exchange: &CodeExchange,
        tokens: TokenResponse,
        now: UnixTime,
    ) -> Result<Session, GateError> {
        let check = IdTokenCheck {
            raw: tokens.id_token.secret(),
            jwks_uri: &meta.jwks_uri,
            nonce: Some(&exchange.nonce),
            access_token: tokens.access_token.as_ref().map(|t| t.secret().as_str()),
            now,
            issuer_template: meta.issuer_template.as_ref(),
        };
        let verified = id_token::verify(provider, self.cache, self.platform, check).await?;
        // OIDC Core 3.1.3.7 steps 12 and 13: what the step-up asked for, the sign-in shows.
        if let Some(ask) = &exchange.step_up {
            ask.check(&verified.auth, now)
                .map_err(|e| GateError::StepUpNotMet(e.to_string()))?;
        }
        let access_token = tokens.access_token.as_ref().map(|t| t.secret().as_str());
        let overage = overage_groups(provider, self.platform, &verified.claims, access_token).await;
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
            // Only for `id_token_hint` at the provider's logout, when asked for.
            id_token: meta
                .end_session_endpoint
                .as_ref()
                .filter(|_| provider.logout_id_token_hint)
                .map(|_| StoredSecret::new(tokens.id_token.secret().clone())),
        };
        let mut session = Session::from_id_token(
            provider,
            verified,
            &self.cfg.list_claims,
            session_tokens,
            now,
            self.cfg.session_ttl_secs,
        );
        session.apply_overage(overage);
        Ok(session)
    }

    /// A GitHub sign-in: its API says who holds the access token.
    async fn github_session(
        &self,
        provider: &ProviderConfig,
        urls: &GitHubUrls,
        answer: RefreshResponse,
        now: UnixTime,
    ) -> Result<Session, GateError> {
        let access = answer.access_token.ok_or_else(|| {
            GateError::TokenEndpoint("GitHub answered without an access_token".into())
        })?;
        let client = GitHubClient::new(self.platform, urls, access.secret());
        let who = client
            .identify(reads_memberships(provider))
            .await
            .map_err(|e| match e {
                GitHubError::Revoked => GateError::TokenEndpoint(e.to_string()),
                GitHubError::Unavailable(why) => GateError::ProviderUnavailable(why),
            })?;
        let tokens = SessionTokens {
            // Kept whatever PASS_ACCESS_TOKEN says: memberships are read again with it.
            access_token: Some(StoredSecret::new(access.secret().clone())),
            access_expires_at: answer.expires_in.map(|e| now.plus(e)),
            refresh_token: answer
                .refresh_token
                .map(|t| StoredSecret::new(t.secret().clone())),
            id_token: None,
        };
        Ok(Session::from_github(
            provider,
            who,
            tokens,
            now,
            self.cfg.session_ttl_secs,
        ))
    }
}

/// The callback against its transaction; an expired one reads as no sign-in at all.
fn complete(
    login: LoginTransaction,
    params: &CallbackParams,
    iss_required: bool,
    now: UnixTime,
) -> Result<CodeExchange, GateError> {
    login
        .complete(params, iss_required, now)
        .map_err(|e| match e {
            CallbackError::Expired => GateError::LoginNotFound,
            e => GateError::Callback(e),
        })
}
