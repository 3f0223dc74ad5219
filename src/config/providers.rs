//! The identity providers a deployment trusts. One provider comes from the `OIDC_*` variables
//! (its id is `default`); several are named in `PROVIDERS`, each read from the same variables
//! with its id in front (`ENTRA_OIDC_ISSUER`, `GITHUB_OIDC_CLIENT_ID`, ...).

use crate::base::secret::ClientSecret;
use crate::base::types::{ClientId, Issuer};
use crate::config::entra::{default_graph_url, is_entra_host};
pub use crate::config::entra::{is_guid, IssuerTemplate, Tenants, TENANT_PLACEHOLDER};
use crate::config::read::{err, parse_http_url, parse_issuer_var, Vars};
use crate::config::{ConfigError, TokenAuthMethod, DEFAULT_SCOPES};
use crate::http::http_url::HttpUrl;
use crate::jose::signing_key::SigningKey;

/// The id of the provider the single-provider variables describe.
pub const DEFAULT_PROVIDER: &str = "default";
pub const GITHUB_DEFAULT_URL: &str = "https://github.com";
pub const GITHUB_DEFAULT_SCOPES: &str = "read:user user:email";
/// How often a GitHub session's organizations and teams are read again, by default.
pub const DEFAULT_MEMBERSHIP_TTL_SECS: u64 = 3600;

/// Authorization parameters the gate sets itself; `OIDC_AUTH_PARAMS` may not name them.
/// `request` and `request_uri` would replace them all, `response_mode` would break the callback.
pub const RESERVED_AUTH_PARAMS: [&str; 11] = [
    "state",
    "nonce",
    "client_id",
    "redirect_uri",
    "response_type",
    "scope",
    "code_challenge",
    "code_challenge_method",
    "request",
    "request_uri",
    "response_mode",
];

/// A provider's id: lowercase letters, digits and `-`, starting with a letter, at most 32.
#[derive(Clone, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(transparent)]
pub struct ProviderId(String);

impl ProviderId {
    pub fn parse(v: &str) -> Option<Self> {
        let ok = (1..=32).contains(&v.len())
            && v.starts_with(|c: char| c.is_ascii_lowercase())
            && v.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        ok.then(|| Self(v.to_owned()))
    }

    pub fn default_id() -> Self {
        Self(DEFAULT_PROVIDER.to_owned())
    }

    pub fn is_default(&self) -> bool {
        self.0 == DEFAULT_PROVIDER
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl Default for ProviderId {
    fn default() -> Self {
        Self::default_id()
    }
}

impl std::fmt::Display for ProviderId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// What protocol the provider speaks, and its quirks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProviderKind {
    /// OpenID Connect with discovery.
    Oidc,
    /// Google: OpenID Connect, an issuer also written without its scheme, `hd`, offline access.
    Google,
    /// GitHub (or GitHub Enterprise Server): OAuth 2.0 and its REST API, no OpenID Connect.
    GitHub,
    /// Microsoft Entra ID: OpenID Connect, multi-tenant issuer templates, group overage
    /// through Microsoft Graph.
    Entra,
}

/// When sign-in pushes its authorization request first (RFC 9126,
/// `OIDC_PUSHED_AUTHORIZATION`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pushed {
    /// When discovery requires it (`require_pushed_authorization_requests`).
    Auto,
    /// Whenever discovery has a `pushed_authorization_request_endpoint` (and an error
    /// without one).
    Always,
    Never,
}

/// GitHub's endpoints, from its base URL.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GitHubUrls {
    pub authorize: HttpUrl,
    pub token: HttpUrl,
    /// The REST API root, ending with `/`.
    pub api: HttpUrl,
}

#[derive(Debug)]
pub struct ProviderConfig {
    pub id: ProviderId,
    /// What the chooser and pages call it.
    pub name: String,
    pub kind: ProviderKind,
    /// The OpenID issuer; for GitHub, its base URL (the namespace of its user ids).
    pub issuer: Issuer,
    pub client_id: ClientId,
    pub client_secret: ClientSecret,
    /// Space-separated.
    pub scopes: String,
    pub token_auth_method: TokenAuthMethod,
    /// `OIDC_CLIENT_KEY`, for `private_key_jwt`.
    pub client_key: Option<SigningKey>,
    /// `OIDC_AUTH_PARAMS`: extra authorization parameters, none of them reserved.
    pub auth_params: Vec<(String, String)>,
    /// GitHub: how long organization and team membership is trusted before it is read again.
    pub membership_ttl_secs: u64,
    /// Entra multi-tenant (`common`, `organizations`): the tenants let in. `None`: the
    /// discovery issuer must be the configured one exactly.
    pub tenants: Option<Tenants>,
    /// Entra: Microsoft Graph, for groups beyond the token's limit (`OIDC_GRAPH_URL`).
    pub graph_url: Option<HttpUrl>,
    pub pushed: Pushed,
    /// `OIDC_LOGOUT_ID_TOKEN_HINT`: keep the ID token in the session, for `id_token_hint` at
    /// the provider's logout. Off by default (it is most of a cookie's size; logout sends
    /// `client_id` instead), on by default for Okta, which requires the hint.
    pub logout_id_token_hint: bool,
    /// `ALLOW_UNVERIFIED_EMAIL` covers it: an address whose verification it does not state
    /// counts (marked unverified). Never for a multi-tenant provider.
    pub trust_unstated_email: bool,
}

impl ProviderConfig {
    /// Another spelling of the issuer its ID tokens may carry: for Google only, the issuer
    /// without its scheme (`accounts.google.com`).
    pub fn issuer_spelling(&self) -> Option<&str> {
        if self.kind != ProviderKind::Google {
            return None;
        }
        let s = self.issuer.as_str();
        s.strip_prefix("https://")
            .or_else(|| s.strip_prefix("http://"))
    }

    /// GitHub's endpoints: github.com's API lives on api.github.com, Enterprise Server's under
    /// `/api/v3/`.
    pub fn github(&self) -> Option<GitHubUrls> {
        if self.kind != ProviderKind::GitHub {
            return None;
        }
        let base =
            HttpUrl::normalize(&format!("{}/", self.issuer.as_str().trim_end_matches('/'))).ok()?;
        let api = if base.host() == "github.com" {
            HttpUrl::normalize("https://api.github.com/").ok()?
        } else {
            base.join_path("api/v3/")?
        };
        Some(GitHubUrls {
            authorize: base.join_path("login/oauth/authorize")?,
            token: base.join_path("login/oauth/access_token")?,
            api,
        })
    }

    /// OpenID Connect providers have discovery, keys and ID tokens; GitHub has none.
    pub fn is_oidc(&self) -> bool {
        self.kind != ProviderKind::GitHub
    }

    fn has_scope(&self, scope: &str) -> bool {
        self.scopes.split(' ').any(|s| s == scope)
    }
}

#[derive(Debug)]
pub struct Providers {
    list: Vec<ProviderConfig>,
    /// `LOGIN_PROVIDER_DEFAULT`, or the only provider.
    login_default: Option<usize>,
    /// What sealed sessions are bound to: the client id, or with several providers every
    /// provider's id and client id (changing the set of providers ends every session).
    binding: ClientId,
}

impl Providers {
    pub fn get(&self, id: &str) -> Option<&ProviderConfig> {
        self.list.iter().find(|p| p.id.as_str() == id)
    }

    pub fn iter(&self) -> impl Iterator<Item = &ProviderConfig> {
        self.list.iter()
    }

    /// The first provider listed.
    #[cfg(test)]
    pub fn first(&self) -> &ProviderConfig {
        &self.list[0]
    }

    pub fn len(&self) -> usize {
        self.list.len()
    }

    /// Where `/auth/login` without `provider` goes; `None` shows the chooser.
    pub fn login_default(&self) -> Option<&ProviderConfig> {
        self.login_default.map(|i| &self.list[i])
    }

    pub fn session_binding(&self) -> &ClientId {
        &self.binding
    }

    /// The issuers whose JWT access tokens APIs accept by default.
    pub fn oidc_issuers(&self) -> Vec<Issuer> {
        self.list
            .iter()
            .filter(|p| matches!(p.kind, ProviderKind::Oidc | ProviderKind::Entra))
            .map(|p| p.issuer.clone())
            .collect()
    }

    pub(super) fn iter_mut(&mut self) -> impl Iterator<Item = &mut ProviderConfig> {
        self.list.iter_mut()
    }

    /// GitHub providers ask for `read:org` when the rules read organizations or teams.
    pub(super) fn want_github_orgs(&mut self) {
        for p in self.list.iter_mut() {
            if p.kind == ProviderKind::GitHub && !p.has_scope("read:org") {
                p.scopes.push_str(" read:org");
            }
        }
    }

    /// Every provider a requirement names must exist.
    pub(super) fn check_named(&self, ids: &[&str]) -> Result<(), ConfigError> {
        match ids.iter().find(|id| self.get(id).is_none()) {
            Some(id) => Err(err(
                "ACCESS_RULES",
                format!("provider:{id} names no provider in PROVIDERS"),
            )),
            None => Ok(()),
        }
    }
}

/// The providers, from `PROVIDERS` and the prefixed variables, or the single-provider ones.
pub(super) fn read_providers<F: Fn(&str) -> Option<String>>(
    vars: &Vars<F>,
) -> Result<Providers, ConfigError> {
    let Some(names) = vars.get("PROVIDERS") else {
        let p = read_provider(vars, ProviderId::default_id(), "")?;
        let binding = p.client_id.clone();
        return Ok(Providers {
            list: vec![p],
            login_default: Some(0),
            binding,
        });
    };
    if let Some(stray) = ["OIDC_ISSUER", "OIDC_CLIENT_ID"]
        .into_iter()
        .find(|n| vars.get(n).is_some())
    {
        return Err(err(
            stray,
            "is not read when PROVIDERS is set: put the provider's id in front (ENTRA_OIDC_ISSUER)",
        ));
    }
    let mut list: Vec<ProviderConfig> = Vec::new();
    for name in crate::access::policy::list(&names) {
        let id = ProviderId::parse(name).ok_or_else(|| {
            err("PROVIDERS", "each id must be lowercase letters, digits and -, starting with a letter (at most 32)")
        })?;
        if list.iter().any(|p| p.id == id) {
            return Err(err("PROVIDERS", format!("lists {id} twice")));
        }
        // `default` is the single-provider set-up's own: its users are named by `sub` alone
        // and it answers at `{prefix}/callback`, not at a redirect URI of its own.
        if id.is_default() {
            return Err(err(
                "PROVIDERS",
                "cannot list default: name the provider (entra, google, ...)",
            ));
        }
        let prefix = format!("{}_", id.as_str().to_ascii_uppercase().replace('-', "_"));
        list.push(read_provider(vars, id, &prefix)?);
    }
    if list.is_empty() {
        return Err(err("PROVIDERS", "lists no provider"));
    }
    let login_default = match vars.get("LOGIN_PROVIDER_DEFAULT") {
        None if list.len() == 1 => Some(0),
        None => None,
        Some(id) => Some(
            list.iter()
                .position(|p| p.id.as_str() == id)
                .ok_or_else(|| err("LOGIN_PROVIDER_DEFAULT", "names no provider in PROVIDERS"))?,
        ),
    };
    let binding = list
        .iter()
        .map(|p| format!("{}={}", p.id, p.client_id.as_str()))
        .collect::<Vec<_>>()
        .join(" ");
    Ok(Providers {
        list,
        login_default,
        binding: ClientId::new(binding),
    })
}

fn read_provider<F: Fn(&str) -> Option<String>>(
    vars: &Vars<F>,
    id: ProviderId,
    prefix: &str,
) -> Result<ProviderConfig, ConfigError> {
    let name = |base: &str| format!("{prefix}{base}");
    let issuer_var = name("OIDC_ISSUER");
    let kind_var = name("OIDC_PROVIDER_KIND");
    let stated_kind = vars.choice(
        &kind_var,
        None,
        &[
            ("oidc", Some(ProviderKind::Oidc)),
            ("google", Some(ProviderKind::Google)),
            ("github", Some(ProviderKind::GitHub)),
            ("entra", Some(ProviderKind::Entra)),
        ],
    )?;
    let issuer_text = vars.get(&issuer_var);
    let kind = stated_kind.unwrap_or(match issuer_text.as_deref() {
        _ if id.as_str() == "github" => ProviderKind::GitHub,
        Some("https://accounts.google.com") => ProviderKind::Google,
        Some(i) if is_entra_host(i) => ProviderKind::Entra,
        _ => ProviderKind::Oidc,
    });
    let issuer = match (kind, issuer_text) {
        (ProviderKind::GitHub, None) => Issuer::new(GITHUB_DEFAULT_URL),
        (_, Some(v)) => parse_issuer_var(&issuer_var, &v)?,
        (_, None) => return Err(err(issuer_var, "is not set")),
    };
    let client_id = ClientId::new(vars.required(&name("OIDC_CLIENT_ID"))?);

    let scopes_var = name("OIDC_SCOPES");
    let default_scopes = match kind {
        ProviderKind::GitHub => GITHUB_DEFAULT_SCOPES,
        _ => DEFAULT_SCOPES,
    };
    let scopes = vars
        .get(&scopes_var)
        .unwrap_or_else(|| default_scopes.to_owned());
    let scopes = scopes.split_whitespace().collect::<Vec<_>>().join(" ");
    if kind != ProviderKind::GitHub && !scopes.split(' ').any(|s| s == "openid") {
        return Err(err(scopes_var, "must include openid"));
    }
    if scopes.is_empty()
        || scopes
            .chars()
            .any(|c| c == '"' || c == '\\' || c.is_control())
    {
        return Err(err(
            scopes_var,
            "contains characters not allowed in a scope",
        ));
    }
    // GitHub documents its client credentials as form fields.
    let default_method = match kind {
        ProviderKind::GitHub => TokenAuthMethod::ClientSecretPost,
        _ => TokenAuthMethod::ClientSecretBasic,
    };
    let token_auth_method = vars.choice(
        &name("OIDC_TOKEN_AUTH_METHOD"),
        default_method,
        &[
            ("client_secret_basic", TokenAuthMethod::ClientSecretBasic),
            ("client_secret_post", TokenAuthMethod::ClientSecretPost),
            ("private_key_jwt", TokenAuthMethod::PrivateKeyJwt),
        ],
    )?;
    let key_var = name("OIDC_CLIENT_KEY");
    let (client_secret, client_key) = if token_auth_method == TokenAuthMethod::PrivateKeyJwt {
        if kind == ProviderKind::GitHub {
            return Err(err(
                name("OIDC_TOKEN_AUTH_METHOD"),
                "GitHub takes client_secret_post only",
            ));
        }
        let key = SigningKey::client(&vars.required(&key_var)?).map_err(|p| err(&key_var, p))?;
        (ClientSecret::new(String::new()), Some(key))
    } else {
        (
            ClientSecret::new(vars.required(&name("OIDC_CLIENT_SECRET"))?),
            None,
        )
    };
    let params_var = name("OIDC_AUTH_PARAMS");
    let auth_params = vars
        .get(&params_var)
        .map(|v| parse_auth_params(&v).map_err(|problem| err(&params_var, problem)))
        .transpose()?
        .unwrap_or_default();
    let display = vars.get(&name("OIDC_PROVIDER_NAME"));
    if display
        .as_deref()
        .is_some_and(|d| d.chars().count() > 64 || d.chars().any(char::is_control))
    {
        return Err(err(
            name("OIDC_PROVIDER_NAME"),
            "must be at most 64 characters, without control characters",
        ));
    }
    let display = display.unwrap_or_else(|| default_name(&id, kind, &issuer));
    let membership_ttl_secs = vars
        .duration(
            &name("OIDC_MEMBERSHIP_TTL"),
            60..=86400,
            "must be a duration between 1m and 1d, like 15m or 1h",
        )?
        .unwrap_or(DEFAULT_MEMBERSHIP_TTL_SECS);
    let tenants_var = name("OIDC_ALLOWED_TENANTS");
    let tenants = vars
        .get(&tenants_var)
        .map(|v| {
            Tenants::parse(&v).ok_or_else(|| {
                err(
                    &tenants_var,
                    "must be tenant ids (GUIDs) separated by spaces or commas, or * for any tenant",
                )
            })
        })
        .transpose()?;
    if tenants.is_some() && kind != ProviderKind::Entra {
        return Err(err(tenants_var, "applies to Entra ID providers only"));
    }
    let graph_var = name("OIDC_GRAPH_URL");
    let graph_url = match (kind, vars.get(&graph_var)) {
        (ProviderKind::Entra, Some(v)) => Some(parse_http_url(&graph_var, &v)?),
        (ProviderKind::Entra, None) => default_graph_url(&issuer),
        (_, Some(_)) => return Err(err(graph_var, "applies to Entra ID providers only")),
        (_, None) => None,
    };
    let pushed = vars.choice(
        &name("OIDC_PUSHED_AUTHORIZATION"),
        Pushed::Auto,
        &[
            ("auto", Pushed::Auto),
            ("always", Pushed::Always),
            ("never", Pushed::Never),
        ],
    )?;
    if pushed == Pushed::Always && kind == ProviderKind::GitHub {
        return Err(err(
            name("OIDC_PUSHED_AUTHORIZATION"),
            "GitHub has no pushed authorization requests",
        ));
    }
    let logout_id_token_hint = vars.choice(
        &name("OIDC_LOGOUT_ID_TOKEN_HINT"),
        requires_id_token_hint(&issuer),
        &[("true", true), ("false", false)],
    )?;
    Ok(ProviderConfig {
        id,
        name: display,
        kind,
        issuer,
        client_id,
        client_secret,
        scopes,
        token_auth_method,
        client_key,
        auth_params,
        membership_ttl_secs,
        tenants,
        graph_url,
        pushed,
        logout_id_token_hint,
        trust_unstated_email: false,
    })
}

/// Okta refuses RP-initiated logout without `id_token_hint`; the others take `client_id`.
fn requires_id_token_hint(issuer: &Issuer) -> bool {
    HttpUrl::normalize(issuer.as_str()).is_ok_and(|u| {
        [
            ".okta.com",
            ".oktapreview.com",
            ".okta-emea.com",
            ".okta-gov.com",
        ]
        .iter()
        .any(|d| u.host().ends_with(d))
    })
}

fn default_name(id: &ProviderId, kind: ProviderKind, issuer: &Issuer) -> String {
    match kind {
        ProviderKind::GitHub => "GitHub".into(),
        ProviderKind::Google => "Google".into(),
        ProviderKind::Entra if id.is_default() => "Microsoft".into(),
        ProviderKind::Oidc if id.is_default() => HttpUrl::normalize(issuer.as_str())
            .ok()
            .map(|u| u.host().to_owned())
            .unwrap_or_else(|| "your identity provider".into()),
        ProviderKind::Oidc | ProviderKind::Entra => {
            let mut chars = id.as_str().chars();
            chars
                .next()
                .map(|c| c.to_ascii_uppercase().to_string() + chars.as_str())
                .unwrap_or_default()
        }
    }
}

/// `prompt=select_account&login_hint=a%40b.example`: form-encoded pairs, each name once, none
/// of them one the gate sets.
pub fn parse_auth_params(v: &str) -> Result<Vec<(String, String)>, String> {
    let mut pairs: Vec<(String, String)> = Vec::new();
    for (k, val) in form_urlencoded::parse(v.as_bytes()) {
        let ok_name = !k.is_empty()
            && k.bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'));
        if !ok_name {
            return Err(
                "must be form-encoded pairs like prompt=select_account&login_hint=a%40b.example"
                    .into(),
            );
        }
        let lower = k.to_ascii_lowercase();
        // Asked for here, they would be sent but never checked: a provider may ignore them.
        if matches!(lower.as_str(), "acr_values" | "max_age") {
            return Err(format!("may not set {lower}: write the requirement as an acr: or fresh: rule in ACCESS_RULES (/* acr:mfa), which asks for it at sign-in and checks the answer"));
        }
        if RESERVED_AUTH_PARAMS.contains(&lower.as_str()) {
            return Err(format!(
                "may not set {lower}: the gate sets it for every sign-in"
            ));
        }
        if pairs.iter().any(|(n, _)| n.eq_ignore_ascii_case(&k)) {
            return Err(format!("names {k} twice"));
        }
        if val.chars().any(char::is_control) {
            return Err(format!("{k} has control characters"));
        }
        pairs.push((k.into_owned(), val.into_owned()));
    }
    Ok(pairs)
}

impl Providers {
    /// One OpenID provider, `default`, with this issuer and client id `client` (tests).
    #[cfg(test)]
    pub fn for_tests(issuer: &str) -> Self {
        let p = ProviderConfig {
            id: ProviderId::default_id(),
            name: "Test".into(),
            kind: ProviderKind::Oidc,
            issuer: Issuer::new(issuer),
            client_id: ClientId::new("client"),
            client_secret: ClientSecret::new("s3cret-value".into()),
            scopes: DEFAULT_SCOPES.into(),
            token_auth_method: TokenAuthMethod::ClientSecretBasic,
            client_key: None,
            auth_params: Vec::new(),
            membership_ttl_secs: DEFAULT_MEMBERSHIP_TTL_SECS,
            tenants: None,
            graph_url: None,
            pushed: Pushed::Auto,
            logout_id_token_hint: false,
            trust_unstated_email: false,
        };
        Self {
            binding: p.client_id.clone(),
            list: vec![p],
            login_default: Some(0),
        }
    }

    /// The test provider as a multi-tenant one letting `tenants` in.
    #[cfg(test)]
    pub fn with_tenants(mut self, tenants: Tenants) -> Self {
        for p in &mut self.list {
            p.tenants = Some(tenants.clone());
        }
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn read(pairs: &[(&str, &str)]) -> Result<Providers, ConfigError> {
        let m: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        read_providers(&Vars(|k: &str| m.get(k).cloned()))
    }

    #[test]
    fn providers_cannot_name_the_single_provider_set_up_default() {
        let e = read(&[
            ("PROVIDERS", "default github"),
            ("DEFAULT_OIDC_ISSUER", "https://login.example.com/t/v2.0"),
            ("DEFAULT_OIDC_CLIENT_ID", "c"),
            ("DEFAULT_OIDC_CLIENT_SECRET", "s"),
            ("GITHUB_OIDC_CLIENT_ID", "gh-client"),
            ("GITHUB_OIDC_CLIENT_SECRET", "s2"),
        ])
        .unwrap_err();
        assert_eq!(e.variable, "PROVIDERS");
    }

    const TWO: [(&str, &str); 7] = [
        ("PROVIDERS", "entra github"),
        ("ENTRA_OIDC_ISSUER", "https://login.example.com/t/v2.0"),
        ("ENTRA_OIDC_CLIENT_ID", "entra-client"),
        ("ENTRA_OIDC_CLIENT_SECRET", "s1"),
        ("GITHUB_OIDC_CLIENT_ID", "gh-client"),
        ("GITHUB_OIDC_CLIENT_SECRET", "s2"),
        ("ENTRA_OIDC_PROVIDER_NAME", "Contoso staff"),
    ];

    #[test]
    fn the_single_provider_variables_make_the_default_provider() {
        let p = read(&[
            ("OIDC_ISSUER", "https://idp.example.com"),
            ("OIDC_CLIENT_ID", "c"),
            ("OIDC_CLIENT_SECRET", "s"),
        ])
        .unwrap();
        assert_eq!(p.len(), 1);
        let only = p.login_default().unwrap();
        assert!(only.id.is_default());
        assert_eq!(only.kind, ProviderKind::Oidc);
        assert_eq!(only.name, "idp.example.com");
        assert_eq!(p.session_binding().as_str(), "c");
    }

    #[test]
    fn several_providers_read_their_prefixed_variables() {
        let p = read(&TWO).unwrap();
        assert_eq!(p.len(), 2);
        assert!(p.login_default().is_none(), "two providers: the chooser");
        let entra = p.get("entra").unwrap();
        assert_eq!(entra.name, "Contoso staff");
        assert_eq!(entra.client_id.as_str(), "entra-client");
        assert_eq!(entra.scopes, DEFAULT_SCOPES);
        let gh = p.get("github").unwrap();
        assert_eq!(gh.kind, ProviderKind::GitHub);
        assert_eq!(gh.issuer.as_str(), GITHUB_DEFAULT_URL);
        assert_eq!(gh.scopes, GITHUB_DEFAULT_SCOPES);
        let urls = gh.github().unwrap();
        assert_eq!(
            urls.authorize.as_str(),
            "https://github.com/login/oauth/authorize"
        );
        assert_eq!(urls.api.as_str(), "https://api.github.com/");
        assert_eq!(
            p.session_binding().as_str(),
            "entra=entra-client github=gh-client"
        );
        assert_eq!(p.oidc_issuers(), vec![entra.issuer.clone()]);
    }

    #[test]
    fn github_enterprise_server_has_its_api_under_api_v3() {
        let mut v = TWO.to_vec();
        v.push(("GITHUB_OIDC_ISSUER", "https://git.corp.example/"));
        let p = read(&v).unwrap();
        let urls = p.get("github").unwrap().github().unwrap();
        assert_eq!(urls.api.as_str(), "https://git.corp.example/api/v3/");
        assert_eq!(
            urls.token.as_str(),
            "https://git.corp.example/login/oauth/access_token"
        );
    }

    #[test]
    fn mistakes_name_the_prefixed_variable() {
        let cases: Vec<(Vec<(&str, &str)>, &str)> = vec![
            (vec![("ENTRA_OIDC_CLIENT_ID", "")], "ENTRA_OIDC_CLIENT_ID"),
            (
                vec![("ENTRA_OIDC_ISSUER", "http://idp.example.com")],
                "ENTRA_OIDC_ISSUER",
            ),
            (vec![("ENTRA_OIDC_SCOPES", "email")], "ENTRA_OIDC_SCOPES"),
            (
                vec![("GITHUB_OIDC_PROVIDER_KIND", "gitlab")],
                "GITHUB_OIDC_PROVIDER_KIND",
            ),
            (vec![("PROVIDERS", "entra Entra")], "PROVIDERS"),
            (vec![("PROVIDERS", "entra entra")], "PROVIDERS"),
            (
                vec![("OIDC_ISSUER", "https://idp.example.com")],
                "OIDC_ISSUER",
            ),
            (
                vec![("LOGIN_PROVIDER_DEFAULT", "google")],
                "LOGIN_PROVIDER_DEFAULT",
            ),
            (
                vec![("ENTRA_OIDC_AUTH_PARAMS", "state=x")],
                "ENTRA_OIDC_AUTH_PARAMS",
            ),
            (
                vec![("GITHUB_OIDC_MEMBERSHIP_TTL", "5s")],
                "GITHUB_OIDC_MEMBERSHIP_TTL",
            ),
        ];
        for (extra, var) in cases {
            let mut v: HashMap<&str, &str> = TWO.iter().copied().collect();
            v.extend(extra.iter().copied());
            let v: Vec<(&str, &str)> = v.into_iter().collect();
            let e = read(&v).unwrap_err();
            assert_eq!(e.variable, var, "{extra:?}: {e}");
        }
    }

    #[test]
    fn apis_need_an_issuer_of_jwt_access_tokens() {
        let github_only = [
            ("OIDC_ISSUER", ""),
            ("OIDC_CLIENT_ID", ""),
            ("PROVIDERS", "github"),
            ("GITHUB_OIDC_CLIENT_ID", "gh"),
            ("GITHUB_OIDC_CLIENT_SECRET", "s"),
            ("API_AUDIENCES", "api://x"),
        ];
        let m: HashMap<&str, &str> = github_only.into_iter().collect();
        let mut with_base = crate::config::tests_support::base_vars();
        with_base.extend(m.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())));
        let e = crate::config::Config::from_vars(|k| with_base.get(k).cloned()).unwrap_err();
        assert_eq!(e.variable, "API_ISSUERS");
        with_base.insert("API_ISSUERS".into(), "https://issuer.example".into());
        assert!(crate::config::Config::from_vars(|k| with_base.get(k).cloned()).is_ok());
    }

    #[test]
    fn entra_tenants_and_graph() {
        let entra = |extra: &[(&str, &str)]| {
            let mut v = vec![
                (
                    "OIDC_ISSUER",
                    "https://login.microsoftonline.us/organizations/v2.0",
                ),
                ("OIDC_CLIENT_ID", "c"),
                ("OIDC_CLIENT_SECRET", "s"),
            ];
            v.extend_from_slice(extra);
            read(&v)
        };
        let p = entra(&[(
            "OIDC_ALLOWED_TENANTS",
            "11111111-2222-3333-4444-555555555555, AAAAAAAA-2222-3333-4444-555555555555",
        )])
        .unwrap();
        let only = p.first();
        assert_eq!(only.kind, ProviderKind::Entra);
        assert_eq!(
            only.graph_url.as_ref().unwrap().as_str(),
            "https://graph.microsoft.us/"
        );
        let tenants = only.tenants.as_ref().unwrap();
        assert!(tenants.allows("aaaaaaaa-2222-3333-4444-555555555555"));
        assert!(!tenants.allows("bbbbbbbb-2222-3333-4444-555555555555"));
        assert_eq!(
            entra(&[("OIDC_ALLOWED_TENANTS", "*")])
                .unwrap()
                .first()
                .tenants,
            Some(Tenants::Any)
        );
        for bad in [
            "contoso.com",
            "*, 11111111-2222-3333-4444-555555555555",
            "11111111-2222-3333-4444-55555555555",
        ] {
            assert_eq!(
                entra(&[("OIDC_ALLOWED_TENANTS", bad)])
                    .unwrap_err()
                    .variable,
                "OIDC_ALLOWED_TENANTS",
                "{bad}"
            );
        }
        let e = read(&[
            ("OIDC_ISSUER", "https://idp.example.com"),
            ("OIDC_CLIENT_ID", "c"),
            ("OIDC_CLIENT_SECRET", "s"),
            ("OIDC_ALLOWED_TENANTS", "*"),
        ])
        .unwrap_err();
        assert_eq!(e.variable, "OIDC_ALLOWED_TENANTS");
        assert!(is_guid("11111111-2222-3333-4444-555555555555"));
        assert!(!is_guid("11111111-2222-3333-4444-555555555555-1"));
    }

    #[test]
    fn a_login_default_skips_the_chooser() {
        let mut v = TWO.to_vec();
        v.push(("LOGIN_PROVIDER_DEFAULT", "github"));
        let p = read(&v).unwrap();
        assert_eq!(p.login_default().unwrap().id.as_str(), "github");
    }

    fn accepts(p: &ProviderConfig, iss: &str) -> bool {
        iss == p.issuer.as_str() || Some(iss) == p.issuer_spelling()
    }

    #[test]
    fn google_accepts_its_issuer_without_the_scheme_and_no_one_else_does() {
        let p = read(&[
            ("PROVIDERS", "google corp"),
            ("GOOGLE_OIDC_ISSUER", "https://accounts.google.com"),
            ("GOOGLE_OIDC_CLIENT_ID", "g"),
            ("GOOGLE_OIDC_CLIENT_SECRET", "s"),
            ("CORP_OIDC_ISSUER", "https://idp.corp.example"),
            ("CORP_OIDC_CLIENT_ID", "c"),
            ("CORP_OIDC_CLIENT_SECRET", "s"),
        ])
        .unwrap();
        let google = p.get("google").unwrap();
        assert_eq!(google.kind, ProviderKind::Google);
        assert!(accepts(google, "https://accounts.google.com"));
        assert!(accepts(google, "accounts.google.com"));
        for other in [
            "http://accounts.google.com",
            "accounts.google.com/",
            "https://accounts.google.com/",
            "ACCOUNTS.GOOGLE.COM",
        ] {
            assert!(!accepts(google, other), "{other}");
        }
        let corp = p.get("corp").unwrap();
        assert!(!accepts(corp, "idp.corp.example"));
        assert_eq!(
            p.oidc_issuers(),
            vec![corp.issuer.clone()],
            "Google access tokens are opaque"
        );
    }

    #[test]
    fn extra_authorization_parameters_never_replace_the_gates_own() {
        assert_eq!(
            parse_auth_params("prompt=select_account&login_hint=a%40b.example").unwrap(),
            vec![
                ("prompt".to_owned(), "select_account".to_owned()),
                ("login_hint".to_owned(), "a@b.example".to_owned())
            ]
        );
        for unchecked in ["acr_values=mfa", "MAX_AGE=60", "prompt=login&acr_values=x"] {
            let e = parse_auth_params(unchecked).unwrap_err();
            assert!(e.contains("ACCESS_RULES"), "{unchecked}: {e}");
        }
        for reserved in RESERVED_AUTH_PARAMS {
            assert!(parse_auth_params(&format!("{reserved}=x")).is_err());
            let upper = reserved.to_ascii_uppercase();
            assert!(parse_auth_params(&format!("a=1&{upper}=x")).is_err());
        }
        for bad in ["=x", "a b=1", "prompt=1&prompt=2", "x=%0d%0a", "a%00=1"] {
            assert!(parse_auth_params(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn github_asks_for_read_org_when_rules_need_it() {
        let mut p = read(&TWO).unwrap();
        p.want_github_orgs();
        assert_eq!(
            p.get("github").unwrap().scopes,
            "read:user user:email read:org"
        );
        assert_eq!(p.get("entra").unwrap().scopes, DEFAULT_SCOPES);
        p.want_github_orgs();
        assert!(p.get("github").unwrap().scopes.matches("read:org").count() == 1);
    }

    #[test]
    fn the_id_token_is_kept_for_logout_only_for_okta_or_when_asked() {
        let hint = |issuer: &str, extra: &[(&str, &str)]| {
            let mut vars = vec![
                ("OIDC_ISSUER", issuer),
                ("OIDC_CLIENT_ID", "c"),
                ("OIDC_CLIENT_SECRET", "s"),
            ];
            vars.extend_from_slice(extra);
            read(&vars).map(|p| p.get("default").unwrap().logout_id_token_hint)
        };
        assert_eq!(hint("https://idp.example.com", &[]), Ok(false));
        assert_eq!(hint("https://dev-1.okta.com/oauth2/default", &[]), Ok(true));
        assert_eq!(hint("https://corp.oktapreview.com", &[]), Ok(true));
        assert_eq!(hint("https://okta.com.evil.example", &[]), Ok(false));
        let on = [("OIDC_LOGOUT_ID_TOKEN_HINT", "true")];
        assert_eq!(hint("https://idp.example.com", &on), Ok(true));
        let off = [("OIDC_LOGOUT_ID_TOKEN_HINT", "false")];
        assert_eq!(hint("https://dev-1.okta.com", &off), Ok(false));
        assert!(hint(
            "https://idp.example.com",
            &[("OIDC_LOGOUT_ID_TOKEN_HINT", "yes")]
        )
        .is_err());
    }
}
