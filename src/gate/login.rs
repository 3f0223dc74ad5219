//! `/auth/login`: a new login transaction sealed in its own cookie, and the redirect to the
//! provider.

use crate::access::policy::step_up_text;
use crate::access::step_up::StepUp;
use crate::base::seal::Purpose;
use crate::base::time::UnixTime;
use crate::config::providers::ProviderConfig;
use crate::gate::error::GateError;
use crate::gate::{Gate, GateRequest};
use crate::http::cookies::{parse_cookie_header, CookieJar};
use crate::http::pages::{page, Action};
use crate::http::return_to::ReturnTo;
use crate::http::Response;
use crate::oidc::id_token::tenancy;
use crate::oidc::token_endpoint::client_assertion;
use crate::oidc::transaction::{
    authorization_url, pushed_authorization_url, pushed_endpoint, pushed_request,
    pushed_request_uri, LoginTransaction, MAX_LIVE_TRANSACTIONS, TRANSACTION_TTL_SECS,
};
use crate::platform::Platform;
use crate::session::store::SessionObjects;

impl<P: Platform + SessionObjects> Gate<'_, P> {
    pub(super) async fn login(
        &self,
        req: &GateRequest,
        jar: &CookieJar,
    ) -> Result<Response, GateError> {
        req.read_only()?;
        let return_to = ReturnTo::parse(req.query("return_to").as_deref(), &self.cfg.auth_prefix);
        // Only a step-up some rule asks for; anything else (an old link) is a plain sign-in,
        // after which the rule asks again if it must.
        let step_up = req
            .query("step_up")
            .and_then(|s| self.cfg.policy.step_up_named(&s));
        // The browser keeps a form under this id to post again after sign-in
        // (`http::form_replay`); the callback's page posts only the form of that id.
        let resume = req.query("resume").filter(|id| {
            (16..=64).contains(&id.len())
                && id
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        });
        let provider = match req.query("provider") {
            Some(id) => self
                .cfg
                .providers
                .get(&id)
                .ok_or(GateError::UnknownProvider)?,
            None => match self.cfg.providers.login_default() {
                Some(p) => p,
                None => return Ok(self.chooser(&return_to, step_up.as_ref(), resume.as_deref())),
            },
        };
        let now = self.platform.now();
        // A refresh token keeps the access token the origin gets alive.
        let offline = self.cfg.pass_access_token.is_some();
        let (tx, params) = LoginTransaction::begin(
            provider,
            &self.redirect_uri(req, provider),
            &return_to,
            now,
            offline,
            step_up,
        )
        .map_err(|e| GateError::Internal(e.to_string()))?;
        let tx = tx.resuming_form(resume);
        let authorize_url = self.authorization_redirect(provider, &params).await?;
        let name = jar.transaction_name(tx.state());
        let sealed = self
            .cfg
            .sealer
            .seal_json(Purpose::LoginTransaction, &name, &tx)
            .map_err(|e| GateError::Internal(format!("sealing the login transaction: {e:?}")))?;
        let mut resp = Response::redirect(&authorize_url);
        for stale in self.transactions_to_drop(req, jar, now) {
            resp.headers.append("Set-Cookie", jar.delete(&stale));
        }
        resp.headers
            .append("Set-Cookie", jar.set(&name, &sealed, TRANSACTION_TTL_SECS));
        Ok(resp)
    }

    /// Where the browser goes: the authorization endpoint with the request's parameters, or,
    /// once they are pushed to the provider (RFC 9126), with only `client_id` and `request_uri`.
    async fn authorization_redirect(
        &self,
        provider: &ProviderConfig,
        params: &[(String, String)],
    ) -> Result<String, GateError> {
        if let Some(urls) = provider.github() {
            return Ok(authorization_url(&urls.authorize, params));
        }
        let meta = self.metadata(provider).await?;
        // A multi-tenant authority without its allow-list: refused before anyone signs in.
        tenancy(provider, meta.issuer_template.as_ref())?;
        let endpoint =
            pushed_endpoint(provider.pushed, &meta).map_err(GateError::ProviderConfig)?;
        let Some(endpoint) = endpoint else {
            return Ok(authorization_url(&meta.authorization_endpoint, params));
        };
        let assertion = client_assertion(self.platform, provider, &meta.token_endpoint)
            .await
            .map_err(GateError::Internal)?;
        let resp = self
            .platform
            .fetch(pushed_request(
                provider,
                endpoint,
                params,
                assertion.as_ref(),
            ))
            .await
            .map_err(|e| {
                GateError::ProviderUnavailable(format!("pushed authorization request: {e}"))
            })?;
        let request_uri = pushed_request_uri(&resp).map_err(|why| {
            if resp.status >= 500 {
                GateError::ProviderUnavailable(why)
            } else {
                GateError::ProviderConfig(why)
            }
        })?;
        Ok(pushed_authorization_url(
            &meta.authorization_endpoint,
            provider.client_id.as_str(),
            &request_uri,
        ))
    }

    /// One button per provider, in the order of `PROVIDERS`; no JavaScript.
    fn chooser(
        &self,
        return_to: &ReturnTo,
        step_up: Option<&StepUp>,
        resume: Option<&str>,
    ) -> Response {
        let labels: Vec<(String, String)> = self
            .cfg
            .providers
            .iter()
            .map(|p| (p.id.to_string(), format!("Sign in with {}", p.name)))
            .collect();
        let choices: Vec<(&str, &str)> = labels
            .iter()
            .map(|(id, label)| (id.as_str(), label.as_str()))
            .collect();
        let step_up = step_up.map(step_up_text);
        let hidden: Vec<(&str, &str)> = [
            Some(("return_to", return_to.as_str())).filter(|_| return_to.as_str() != "/"),
            step_up.as_deref().map(|s| ("step_up", s)),
            resume.map(|id| ("resume", id)),
        ]
        .into_iter()
        .flatten()
        .collect();
        let action = self.cfg.auth_path("login");
        page(
            200,
            "Sign in",
            &["Choose how to sign in."],
            &[Action::Choices {
                action: &action,
                hidden: &hidden,
                field: "provider",
                choices: &choices,
            }],
        )
    }

    /// Where `provider` sends the browser back: `{prefix}/callback` for the one provider of a
    /// single-provider set-up, `{prefix}/callback/{id}` for each of `PROVIDERS`. A redirect URI
    /// of its own per provider is the mix-up defence (RFC 9700 4.4.2) for providers that send
    /// no `iss` with the code (Entra ID, GitHub): an answer from one provider can never be
    /// taken for an answer to a sign-in at another, whose token endpoint would get the code.
    fn redirect_uri(&self, req: &GateRequest, provider: &ProviderConfig) -> String {
        let base = match &self.cfg.redirect_uri {
            Some(u) => u.to_string(),
            None => format!("{}{}", req.origin(), self.cfg.auth_path("callback")),
        };
        if provider.id.is_default() {
            return base;
        }
        let id = provider.id.as_str();
        match base.split_once('?') {
            Some((path, query)) => format!("{}/{id}?{query}", path.trim_end_matches('/')),
            None => format!("{}/{id}", base.trim_end_matches('/')),
        }
    }

    /// Transaction cookies to delete before adding one: unreadable or expired ones, and the
    /// oldest live ones beyond the cap.
    fn transactions_to_drop(
        &self,
        req: &GateRequest,
        jar: &CookieJar,
        now: UnixTime,
    ) -> Vec<String> {
        let Some(header) = req.cookie_header() else {
            return Vec::new();
        };
        let mut drop = Vec::new();
        let mut live: Vec<(UnixTime, String)> = Vec::new();
        for (name, value) in parse_cookie_header(header) {
            if !jar.is_transaction_name(name) {
                continue;
            }
            match self.cfg.sealer.open_json::<LoginTransaction>(
                Purpose::LoginTransaction,
                name,
                value,
            ) {
                Ok(tx) if !tx.is_expired(now) => live.push((tx.created_at(), name.to_owned())),
                _ => drop.push(name.to_owned()),
            }
        }
        live.sort();
        let excess = (live.len() + 1).saturating_sub(MAX_LIVE_TRANSACTIONS);
        drop.extend(live.into_iter().take(excess).map(|(_, n)| n));
        drop
    }
}
