//! The login transaction: what `/auth/login` starts and `/auth/callback` finishes.
//!
//! Each step is its own type and consumes the previous one: a [`LoginTransaction`] becomes a
//! [`CodeExchange`] only after the callback's state and issuer check out, and the PKCE verifier
//! moves with it, so no step can be replayed or skipped.

use serde::{Deserialize, Serialize};

use crate::access::step_up::StepUp;
use crate::base::random::RandomError;
use crate::base::secret::AuthorizationCode;
use crate::base::time::UnixTime;
use crate::base::types::{Issuer, Nonce, State};
use crate::config::providers::{
    ProviderConfig, ProviderId, ProviderKind, Pushed, RESERVED_AUTH_PARAMS,
};
use crate::http::http_url::HttpUrl;
use crate::http::return_to::ReturnTo;
use crate::http::OutboundRequest;
use crate::oidc::discovery::ProviderMetadata;
use crate::oidc::pkce::PkceVerifier;
use crate::oidc::token_endpoint::{client_request, ClientAssertion};

/// How long a sign-in may take, from redirect to callback.
pub const TRANSACTION_TTL_SECS: u64 = 600;
/// Sign-ins in flight at once per browser (tabs); the oldest beyond this are dropped.
pub const MAX_LIVE_TRANSACTIONS: usize = 4;

/// Sealed into its own cookie between login and callback. Short field names keep it small.
#[derive(Serialize, Deserialize, Debug)]
pub struct LoginTransaction {
    #[serde(rename = "s")]
    state: State,
    #[serde(rename = "n")]
    nonce: Nonce,
    #[serde(rename = "v")]
    verifier: PkceVerifier,
    #[serde(rename = "r")]
    return_to: String,
    #[serde(rename = "i")]
    issuer: Issuer,
    /// The provider this sign-in went to: the callback uses only its metadata, keys and
    /// client (the mix-up defence when the answer has no `iss`, RFC 9700 4.4).
    #[serde(rename = "p", default)]
    provider: ProviderId,
    #[serde(rename = "u")]
    redirect_uri: String,
    #[serde(rename = "t")]
    created_at: UnixTime,
    /// What this sign-in asked beyond an ordinary one (step-up), checked in the answer.
    #[serde(rename = "su", default, skip_serializing_if = "Option::is_none")]
    step_up: Option<StepUp>,
    /// The browser kept a form under this id to post again to `return_to` after sign-in.
    #[serde(rename = "f", default, skip_serializing_if = "Option::is_none")]
    resume_form: Option<String>,
}

/// The parameters of a request to the callback.
/// The authorization endpoint with `params` in its query. The endpoint's own query
/// parameters stay, except ones of a reserved name, which would come first and win at many
/// providers.
pub fn authorization_url(authorize: &HttpUrl, params: &[(String, String)]) -> String {
    let kept: Vec<(String, String)> = authorize
        .query_pairs()
        .filter(|(k, _)| !RESERVED_AUTH_PARAMS.contains(&k.to_ascii_lowercase().as_str()))
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    let mut url = format!("{}{}?", authorize.origin(), authorize.path());
    let start = url.len();
    form_urlencoded::Serializer::for_suffix(&mut url, start)
        .extend_pairs(&kept)
        .extend_pairs(params);
    url
}

/// RFC 9126: the parameters pushed to the provider, client-authenticated.
pub fn pushed_request(
    provider: &ProviderConfig,
    endpoint: &HttpUrl,
    params: &[(String, String)],
    assertion: Option<&ClientAssertion>,
) -> OutboundRequest {
    // `client_id` stays in the body whatever the client authentication (RFC 9126 2.1).
    let pairs: Vec<(&str, &str)> = params
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    client_request(provider, endpoint, &pairs, assertion)
}

/// The `request_uri` of a pushed request's answer (RFC 9126 2.2: 201 with JSON).
pub fn pushed_request_uri(resp: &crate::http::Response) -> Result<String, String> {
    if resp.status != 201 && resp.status != 200 {
        let error = serde_json::from_slice::<serde_json::Value>(&resp.body)
            .ok()
            .and_then(|v| v["error"].as_str().map(str::to_owned))
            .unwrap_or_default();
        return Err(format!(
            "the pushed authorization request was answered {} {}",
            resp.status,
            crate::oidc::token_endpoint::printable(&error, 64)
        ));
    }
    serde_json::from_slice::<serde_json::Value>(&resp.body)
        .ok()
        .and_then(|v| v["request_uri"].as_str().map(str::to_owned))
        .filter(|u| !u.is_empty() && u.len() <= 2048)
        .ok_or_else(|| "the pushed authorization request's answer has no request_uri".into())
}

/// The endpoint to push the authorization request to, if any.
pub fn pushed_endpoint(mode: Pushed, meta: &ProviderMetadata) -> Result<Option<&HttpUrl>, String> {
    let endpoint = meta.pushed_authorization_request_endpoint.as_ref();
    match mode {
        Pushed::Never => Ok(None),
        Pushed::Auto => Ok(endpoint.filter(|_| meta.require_pushed_authorization_requests)),
        Pushed::Always => endpoint.map(Some).ok_or_else(|| {
            "OIDC_PUSHED_AUTHORIZATION is always, but discovery has no pushed_authorization_request_endpoint".into()
        }),
    }
}

/// The browser's authorization URL after a pushed request: only `client_id` and
/// `request_uri` (RFC 9126 4).
pub fn pushed_authorization_url(authorize: &HttpUrl, client_id: &str, request_uri: &str) -> String {
    authorization_url(
        authorize,
        &[
            ("client_id".to_owned(), client_id.to_owned()),
            ("request_uri".to_owned(), request_uri.to_owned()),
        ],
    )
}

#[derive(Debug, Default, Clone)]
pub struct CallbackParams {
    pub code: Option<String>,
    pub state: Option<String>,
    pub iss: Option<String>,
    pub error: Option<String>,
    pub error_description: Option<String>,
}

impl CallbackParams {
    /// The authorization response's parameters. One that appears twice is refused (RFC 6749
    /// 3.1): which copy counts would be a guess, and a second `iss` would void RFC 9207's check.
    pub fn from_query(query: &str) -> Result<Self, CallbackError> {
        let mut p = Self::default();
        for (k, v) in form_urlencoded::parse(query.as_bytes()) {
            let (name, slot) = match k.as_ref() {
                "code" => ("code", &mut p.code),
                "state" => ("state", &mut p.state),
                "iss" => ("iss", &mut p.iss),
                "error" => ("error", &mut p.error),
                "error_description" => ("error_description", &mut p.error_description),
                _ => continue,
            };
            if slot.is_some() {
                return Err(CallbackError::Repeated(name));
            }
            *slot = Some(v.into_owned());
        }
        Ok(p)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallbackError {
    StateMismatch,
    IssuerMismatch,
    IssuerMissing,
    MissingCode,
    Expired,
    /// The answer came back to another redirect URI than this sign-in's: one provider's
    /// answer taken to a sign-in at another (a mix-up).
    WrongRedirect,
    /// A parameter of the authorization response appears more than once.
    Repeated(&'static str),
}

impl std::fmt::Display for CallbackError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::StateMismatch => "state does not match the login transaction",
            Self::IssuerMismatch => {
                "iss in the authorization response is not our issuer (RFC 9207)"
            }
            Self::IssuerMissing => {
                "the provider promises iss in authorization responses but sent none (RFC 9207)"
            }
            Self::MissingCode => "the callback has no code",
            Self::Expired => "the login transaction is older than 10 minutes",
            Self::WrongRedirect => {
                "it came back to another provider's redirect URI than this sign-in's"
            }
            Self::Repeated(name) => {
                return write!(f, "the parameter {name} appears more than once")
            }
        })
    }
}

impl LoginTransaction {
    /// Starts a sign-in: fresh state, nonce and PKCE verifier, and the authorization URL.
    /// A new sign-in at `provider`, and its authorization request's parameters. `offline`:
    /// the session will want a refresh token (Google then asks for offline access).
    pub fn begin(
        provider: &ProviderConfig,
        redirect_uri: &str,
        return_to: &ReturnTo,
        now: UnixTime,
        offline: bool,
        step_up: Option<StepUp>,
    ) -> Result<(Self, Vec<(String, String)>), RandomError> {
        let tx = Self {
            state: State::generate()?,
            nonce: Nonce::generate()?,
            verifier: PkceVerifier::generate()?,
            return_to: return_to.as_str().to_owned(),
            issuer: provider.issuer.clone(),
            provider: provider.id.clone(),
            redirect_uri: redirect_uri.to_owned(),
            created_at: now,
            step_up: step_up.filter(|s| !s.is_empty()),
            resume_form: None,
        };
        let params = tx.authorization_params(provider, offline);
        Ok((tx, params))
    }

    /// The authorization request's parameters: ours, then the provider's extra ones (which
    /// cannot name ours).
    fn authorization_params(
        &self,
        provider: &ProviderConfig,
        offline: bool,
    ) -> Vec<(String, String)> {
        let mut q: Vec<(String, String)> = Vec::new();
        let mut add = |k: &str, v: &str| q.push((k.to_owned(), v.to_owned()));
        add("response_type", "code");
        add("client_id", provider.client_id.as_str());
        add("redirect_uri", &self.redirect_uri);
        add("scope", &provider.scopes);
        add("state", self.state.as_str());
        if provider.is_oidc() {
            add("nonce", self.nonce.as_str());
        }
        add("code_challenge", &self.verifier.challenge_s256());
        add("code_challenge_method", "S256");
        // A step-up's parameters replace the provider's own of the same names.
        let mut step_up: Vec<(&str, String)> = self
            .step_up
            .as_ref()
            .map(StepUp::auth_params)
            .unwrap_or_default();
        // Entra is not known to honour max_age: a re-authentication is asked for outright.
        if provider.kind == ProviderKind::Entra
            && self.step_up.as_ref().is_some_and(|s| s.max_age.is_some())
        {
            step_up.push(("prompt", "login".to_owned()));
        }
        let stepped = |name: &str| step_up.iter().any(|(k, _)| *k == name);
        let set = |name: &str| provider.auth_params.iter().any(|(k, _)| k == name);
        if provider.kind == ProviderKind::Google && offline {
            if !set("access_type") {
                add("access_type", "offline");
            }
            if !set("prompt") && !stepped("prompt") {
                add("prompt", "consent");
            }
        }
        q.extend(
            provider
                .auth_params
                .iter()
                .filter(|(k, _)| !stepped(k))
                .cloned(),
        );
        q.extend(step_up.into_iter().map(|(k, v)| (k.to_owned(), v)));
        q
    }

    /// After sign-in, the page posts the form the browser kept under this id (`resume=ID`).
    pub fn resuming_form(mut self, resume: Option<String>) -> Self {
        self.resume_form = resume;
        self
    }

    pub fn provider(&self) -> &ProviderId {
        &self.provider
    }

    pub fn state(&self) -> &State {
        &self.state
    }

    pub fn created_at(&self) -> UnixTime {
        self.created_at
    }

    pub fn is_expired(&self, now: UnixTime) -> bool {
        now >= self.created_at.plus(TRANSACTION_TTL_SECS) || self.created_at > now.plus(60)
    }

    /// Whether an answer arriving at `path` came back where this sign-in asked: each provider
    /// has its own redirect URI, so an answer at another's belongs to another provider.
    pub fn answers_at(&self, path: &str) -> bool {
        HttpUrl::parse(&self.redirect_uri).is_ok_and(|u| u.path() == path)
    }

    /// RFC 9207 2.4: an authorization response, a refusal as much as a code, names this
    /// sign-in's issuer, or none where the provider does not promise one.
    pub fn check_issuer(
        &self,
        params: &CallbackParams,
        iss_required: bool,
    ) -> Result<(), CallbackError> {
        match params.iss.as_deref() {
            Some(iss) if iss != self.issuer.as_str() => Err(CallbackError::IssuerMismatch),
            None if iss_required => Err(CallbackError::IssuerMissing),
            _ => Ok(()),
        }
    }

    /// Checks the callback against this transaction and moves on to the code exchange.
    /// `iss_required`: discovery's `authorization_response_iss_parameter_supported`.
    pub fn complete(
        self,
        params: &CallbackParams,
        iss_required: bool,
        now: UnixTime,
    ) -> Result<CodeExchange, CallbackError> {
        if self.is_expired(now) {
            return Err(CallbackError::Expired);
        }
        if !params
            .state
            .as_deref()
            .is_some_and(|s| self.state.matches(s))
        {
            return Err(CallbackError::StateMismatch);
        }
        self.check_issuer(params, iss_required)?;
        let code = params
            .code
            .clone()
            .filter(|c| !c.is_empty())
            .ok_or(CallbackError::MissingCode)?;
        Ok(CodeExchange {
            code: AuthorizationCode::new(code),
            verifier: self.verifier,
            redirect_uri: self.redirect_uri,
            nonce: self.nonce,
            return_to: self.return_to,
            issuer: self.issuer,
            step_up: self.step_up,
            resume_form: self.resume_form,
        })
    }
}

/// A callback that passed the state and issuer checks: ready to redeem the code.
#[derive(Debug)]
pub struct CodeExchange {
    code: AuthorizationCode,
    verifier: PkceVerifier,
    redirect_uri: String,
    pub nonce: Nonce,
    pub return_to: String,
    pub issuer: Issuer,
    /// What the sign-in asked beyond an ordinary one: the ID token must show it was met.
    pub step_up: Option<StepUp>,
    /// Answer with the page that posts the form kept under this id, not a redirect.
    pub resume_form: Option<String>,
}

impl CodeExchange {
    /// The token request (RFC 6749 4.1.3 with the PKCE verifier, RFC 7636 4.5).
    pub fn token_request(
        &self,
        provider: &ProviderConfig,
        token_endpoint: &HttpUrl,
        assertion: Option<&ClientAssertion>,
    ) -> OutboundRequest {
        client_request(
            provider,
            token_endpoint,
            &[
                ("grant_type", "authorization_code"),
                ("code", self.code.secret()),
                ("redirect_uri", &self.redirect_uri),
                ("code_verifier", self.verifier.secret()),
            ],
            assertion,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::tests_support::test_config;
    use crate::config::Config;

    fn authorize() -> HttpUrl {
        HttpUrl::normalize("https://idp.example.com/authorize?tenant=x&state=planted&Scope=y")
            .unwrap()
    }

    fn begin_at(cfg: &Config, id: &str, offline: bool) -> (LoginTransaction, HttpUrl) {
        begin_step_up(cfg, id, offline, None)
    }

    fn begin_step_up(
        cfg: &Config,
        id: &str,
        offline: bool,
        step_up: Option<StepUp>,
    ) -> (LoginTransaction, HttpUrl) {
        let (tx, params) = LoginTransaction::begin(
            cfg.providers.get(id).unwrap(),
            "https://app.example.com/auth/callback",
            &ReturnTo::parse(Some("/x"), "/auth"),
            UnixTime::from_secs(1000),
            offline,
            step_up,
        )
        .unwrap();
        let url = authorization_url(&authorize(), &params);
        (tx, HttpUrl::normalize(&url).unwrap())
    }

    fn begin() -> (LoginTransaction, HttpUrl) {
        begin_at(&test_config(&[]), "default", false)
    }

    fn query(url: &HttpUrl) -> Vec<(String, String)> {
        url.query_pairs().into_owned().collect()
    }

    fn several() -> Config {
        test_config(&[
            ("OIDC_ISSUER", ""),
            ("OIDC_CLIENT_ID", ""),
            ("OIDC_CLIENT_SECRET", ""),
            ("PROVIDERS", "google github"),
            ("GOOGLE_OIDC_ISSUER", "https://accounts.google.com"),
            ("GOOGLE_OIDC_CLIENT_ID", "g-client"),
            ("GOOGLE_OIDC_CLIENT_SECRET", "g"),
            (
                "GOOGLE_OIDC_AUTH_PARAMS",
                "hd=corp.example&login_hint=a%40corp.example",
            ),
            ("GITHUB_OIDC_CLIENT_ID", "gh-client"),
            ("GITHUB_OIDC_CLIENT_SECRET", "gh"),
        ])
    }

    #[test]
    fn each_name_appears_once_and_the_gates_own_values_win() {
        for (id, offline) in [("google", true), ("google", false), ("github", true)] {
            let cfg = several();
            let (tx, url) = begin_at(&cfg, id, offline);
            let q = query(&url);
            for name in RESERVED_AUTH_PARAMS {
                let n = q
                    .iter()
                    .filter(|(k, _)| k.eq_ignore_ascii_case(name))
                    .count();
                let want = match name {
                    "nonce" if id == "github" => 0,
                    "request" | "request_uri" | "response_mode" => 0,
                    _ => 1,
                };
                assert_eq!(n, want, "{id}: {name} in {url}");
            }
            let get = |k: &str| q.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
            assert_eq!(get("state"), Some(tx.state.as_str()));
            assert_eq!(tx.provider().as_str(), id);
            assert_eq!(get("tenant"), Some("x"));
        }
    }

    #[test]
    fn google_asks_for_offline_access_only_when_a_refresh_token_is_wanted() {
        let cfg = several();
        let (_, url) = begin_at(&cfg, "google", true);
        let q = query(&url);
        let get = |k: &str| q.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
        assert_eq!(get("access_type"), Some("offline"));
        assert_eq!(get("prompt"), Some("consent"));
        assert_eq!(get("hd"), Some("corp.example"));
        assert_eq!(get("login_hint"), Some("a@corp.example"));
        let (_, url) = begin_at(&cfg, "google", false);
        assert!(!url.query().unwrap().contains("access_type"));
        let (_, url) = begin_at(&cfg, "github", true);
        assert!(!url.query().unwrap().contains("access_type"));
        assert!(url
            .query()
            .unwrap()
            .contains("scope=read%3Auser+user%3Aemail"));
    }

    #[test]
    fn a_step_up_asks_once_for_each_part_and_its_values_win() {
        let cfg = test_config(&[("OIDC_AUTH_PARAMS", "claims=x&prompt=select_account")]);
        let ask = StepUp {
            acr: vec!["mfa".into()],
            acrs: vec!["c1".into()],
            max_age: Some(600),
        };
        let (tx, url) = begin_step_up(&cfg, "default", false, Some(ask.clone()));
        let q = query(&url);
        let all = |k: &str| -> Vec<&str> {
            q.iter()
                .filter(|(n, _)| n == k)
                .map(|(_, v)| v.as_str())
                .collect()
        };
        assert_eq!(all("acr_values"), ["mfa"]);
        assert_eq!(all("max_age"), ["600"]);
        assert_eq!(
            all("claims"),
            [r#"{"id_token":{"acrs":{"essential":true,"value":"c1"}}}"#]
        );
        // Not Entra: its own prompt stays, none is added.
        assert_eq!(all("prompt"), ["select_account"]);
        // What was asked travels to the callback, which checks the answer against it.
        let p = params(&tx);
        let ex = tx.complete(&p, false, UnixTime::from_secs(1001)).unwrap();
        assert_eq!(ex.step_up, Some(ask));
        // Without a step-up, the provider's own parameters go as they are.
        let (_, url) = begin_at(&cfg, "default", false);
        assert!(url.query().unwrap().contains("claims=x"));
        assert!(!url.query().unwrap().contains("acr_values"));
        // An empty step-up is none.
        let (tx, _) = begin_step_up(&cfg, "default", false, Some(StepUp::default()));
        assert!(tx.step_up.is_none());
    }

    #[test]
    fn entra_is_asked_to_authenticate_again_for_a_fresh_sign_in() {
        let cfg = test_config(&[
            (
                "OIDC_ISSUER",
                "https://login.microsoftonline.com/72f988bf-86f1-41af-91ab-2d7cd011db47/v2.0",
            ),
            ("OIDC_AUTH_PARAMS", "prompt=select_account"),
        ]);
        let fresh = StepUp {
            max_age: Some(900),
            ..StepUp::default()
        };
        let (_, url) = begin_step_up(&cfg, "default", false, Some(fresh));
        let q = query(&url);
        let prompts: Vec<&str> = q
            .iter()
            .filter(|(n, _)| n == "prompt")
            .map(|(_, v)| v.as_str())
            .collect();
        assert_eq!(prompts, ["login"]);
        let acr_only = StepUp {
            acrs: vec!["c1".into()],
            ..StepUp::default()
        };
        let (_, url) = begin_step_up(&cfg, "default", false, Some(acr_only));
        assert!(url.query().unwrap().contains("prompt=select_account"));
    }

    fn params(tx: &LoginTransaction) -> CallbackParams {
        CallbackParams {
            code: Some("c0de".into()),
            state: Some(tx.state.as_str().into()),
            iss: Some("https://idp.example.com".into()),
            ..Default::default()
        }
    }

    #[test]
    fn authorization_url_carries_every_parameter() {
        let (tx, url) = begin();
        assert!(!url.as_str().contains("planted") && !url.as_str().contains("Scope=y"));
        let q: std::collections::HashMap<_, _> = url.query_pairs().into_owned().collect();
        assert_eq!(q["tenant"], "x");
        assert_eq!(q["response_type"], "code");
        assert_eq!(q["client_id"], "client");
        assert_eq!(q["redirect_uri"], "https://app.example.com/auth/callback");
        assert_eq!(q["scope"], "openid profile email");
        assert_eq!(q["state"], tx.state.as_str());
        assert_eq!(q["nonce"], tx.nonce.as_str());
        assert_eq!(q["code_challenge"], tx.verifier.challenge_s256());
        assert_eq!(q["code_challenge_method"], "S256");
        assert!(q["state"].len() >= 43 && q["nonce"].len() >= 43);
    }

    #[test]
    fn matching_callback_moves_to_code_exchange() {
        let (tx, _) = begin();
        let p = params(&tx);
        let ex = tx.complete(&p, true, UnixTime::from_secs(1001)).unwrap();
        assert_eq!(ex.return_to, "/x");
    }

    #[test]
    fn wrong_or_missing_state_is_refused() {
        let (tx, _) = begin();
        let mut p = params(&tx);
        p.state = Some("other".into());
        assert_eq!(
            tx.complete(&p, false, UnixTime::from_secs(1001))
                .unwrap_err(),
            CallbackError::StateMismatch
        );
        let (tx, _) = begin();
        let mut p = params(&tx);
        p.state = None;
        assert_eq!(
            tx.complete(&p, false, UnixTime::from_secs(1001))
                .unwrap_err(),
            CallbackError::StateMismatch
        );
    }

    #[test]
    fn iss_parameter_rules() {
        let (tx, _) = begin();
        let mut p = params(&tx);
        p.iss = Some("https://evil.example.com".into());
        assert_eq!(
            tx.complete(&p, false, UnixTime::from_secs(1001))
                .unwrap_err(),
            CallbackError::IssuerMismatch
        );
        let (tx, _) = begin();
        let mut p = params(&tx);
        p.iss = None;
        assert_eq!(
            tx.complete(&p, true, UnixTime::from_secs(1001))
                .unwrap_err(),
            CallbackError::IssuerMissing
        );
        let (tx, _) = begin();
        let mut p = params(&tx);
        p.iss = None;
        assert!(
            tx.complete(&p, false, UnixTime::from_secs(1001)).is_ok(),
            "absent iss is fine when not advertised (Entra)"
        );
    }

    #[test]
    fn old_transactions_expire() {
        let (tx, _) = begin();
        let p = params(&tx);
        assert_eq!(
            tx.complete(&p, false, UnixTime::from_secs(1000 + TRANSACTION_TTL_SECS))
                .unwrap_err(),
            CallbackError::Expired
        );
    }

    #[test]
    fn missing_code_is_refused() {
        let (tx, _) = begin();
        let mut p = params(&tx);
        p.code = Some(String::new());
        assert_eq!(
            tx.complete(&p, false, UnixTime::from_secs(1001))
                .unwrap_err(),
            CallbackError::MissingCode
        );
    }

    #[test]
    fn token_request_encodes_client_authentication() {
        let (tx, _) = begin();
        let verifier = tx.verifier.secret().to_owned();
        let p = params(&tx);
        let ex = tx.complete(&p, false, UnixTime::from_secs(1001)).unwrap();

        let basic = ex.token_request(
            test_config(&[]).providers.first(),
            &HttpUrl::normalize("https://idp.example.com/token").unwrap(),
            None,
        );
        assert_eq!(basic.method, "POST");
        let body: std::collections::HashMap<_, _> =
            form_urlencoded::parse(basic.body.as_deref().unwrap().as_bytes())
                .into_owned()
                .collect();
        assert_eq!(body["grant_type"], "authorization_code");
        assert_eq!(body["code"], "c0de");
        assert_eq!(body["code_verifier"], verifier);
        assert_eq!(
            body["redirect_uri"],
            "https://app.example.com/auth/callback"
        );
        assert!(!body.contains_key("client_secret"));
        // "client" : "s3cret-value"
        assert_eq!(
            basic.headers.get("Authorization"),
            Some("Basic Y2xpZW50OnMzY3JldC12YWx1ZQ==")
        );

        let post = ex.token_request(
            test_config(&[("OIDC_TOKEN_AUTH_METHOD", "client_secret_post")])
                .providers
                .first(),
            &HttpUrl::normalize("https://idp.example.com/token").unwrap(),
            None,
        );
        let body: std::collections::HashMap<_, _> =
            form_urlencoded::parse(post.body.as_deref().unwrap().as_bytes())
                .into_owned()
                .collect();
        assert_eq!(body["client_id"], "client");
        assert_eq!(body["client_secret"], "s3cret-value");
        assert_eq!(post.headers.get("Authorization"), None);
    }

    #[test]
    fn a_repeated_callback_parameter_is_refused() {
        for (query, name) in [
            ("state=a&state=b&code=1", "state"),
            ("code=1&state=a&code=2", "code"),
            ("code=1&state=a&iss=x&iss=y", "iss"),
            ("code=1&state=a&iss=x&%69ss=x", "iss"),
            ("error=e&error=f&state=a", "error"),
            (
                "error=e&error_description=a&error_description=b",
                "error_description",
            ),
        ] {
            let e = CallbackParams::from_query(query).unwrap_err();
            assert_eq!(e, CallbackError::Repeated(name), "{query}");
        }
        let p = CallbackParams::from_query("code=1&state=a&iss=x&other=1&other=2").unwrap();
        assert_eq!(p.iss.as_deref(), Some("x"));
    }
}
