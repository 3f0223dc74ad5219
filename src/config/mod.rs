//! Configuration: wrangler vars and secrets, read and validated once per isolate into a typed
//! [`Config`]. Errors name the variable, never its value.

mod entra;
pub mod providers;
mod read;

use crate::access::access_token::TypPolicy;
use crate::access::api::ApiConfig;
use crate::access::assertion::AssertionSigner;
use crate::access::policy::{AllowLists, Policy};
use crate::base::seal::Sealer;
use crate::base::types::Issuer;
use crate::http::http_url::HttpUrl;
use crate::http::path::PathPattern;
use crate::jose::claims::ListClaims;
use providers::{
    read_providers, IssuerTemplate, ProviderKind, Providers, Tenants, TENANT_PLACEHOLDER,
};
use read::{err, is_header_name, parse_cookie_secret, parse_http_url, parse_issuer, Vars};

pub const DEFAULT_SCOPES: &str = "openid profile email";
pub const DEFAULT_SESSION_TTL_SECS: u64 = 8 * 3600;
pub const DEFAULT_AUTH_PREFIX: &str = "/auth";
/// Refresh this long before the access token expires, by default.
pub const DEFAULT_REFRESH_MARGIN_SECS: u64 = 60;

/// Where sessions live (`SESSION_STORE`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SessionStore {
    /// Everything sealed in the browser's cookies (the default).
    Cookie,
    /// A Durable Object per user holds the sessions; the cookie holds a sealed reference.
    DurableObject,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TokenAuthMethod {
    ClientSecretBasic,
    ClientSecretPost,
    /// A JWT signed with `OIDC_CLIENT_KEY` (RFC 7523, OpenID Connect Core 9).
    PrivateKeyJwt,
}

/// Which access decisions get a log line (`ACCESS_LOG`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AccessLog {
    All,
    Deny,
    None,
}

/// Where the access token goes on forwarded requests (`PASS_ACCESS_TOKEN`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PassAccessToken {
    Authorization,
    XForwardedAccessToken,
}

/// Names of the identity headers set for the origin; `None` disables one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IdentityHeaders {
    pub user: Option<String>,
    pub email: Option<String>,
    pub groups: Option<String>,
}

/// The largest form kept through sign-in by default (`FORM_REPLAY_MAX_BYTES`), and the most it
/// may be set to: the browser keeps the form in `sessionStorage` (about 5 MB per site).
pub const DEFAULT_FORM_REPLAY_BYTES: usize = 64 * 1024;
pub const MAX_FORM_REPLAY_BYTES: usize = 1024 * 1024;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Upstream {
    /// Workers Static Assets through the `ASSETS` binding.
    Assets,
    /// An origin URL: the request's path and query are appended to it.
    Origin(HttpUrl),
    /// Another Worker, through the service binding of this name (`UPSTREAM = "service:NAME"`
    /// and a `[[services]]` entry in wrangler.toml). It receives the request's own URL.
    Service(String),
}

impl Upstream {
    /// The `NAME` of `service:NAME`: a binding name as wrangler.toml accepts it.
    fn service(name: &str) -> Result<Self, ConfigError> {
        let name = name.trim();
        let valid = name.len() <= 64
            && name.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
            && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !valid {
            Err(err(
                "UPSTREAM",
                "service:NAME needs the name of a service binding (letters, digits and _, as in [[services]] binding = \"NAME\")",
            ))
        } else if name == "ASSETS" {
            Err(err(
                "UPSTREAM",
                "the ASSETS binding is the static assets upstream: write UPSTREAM = \"assets\"",
            ))
        } else {
            Ok(Self::Service(name.to_owned()))
        }
    }
}

#[derive(Debug)]
pub struct Config {
    /// The identity providers people sign in with.
    pub providers: Providers,
    pub redirect_uri: Option<HttpUrl>,
    pub post_logout_redirect_uri: Option<HttpUrl>,
    pub sealer: Sealer,
    pub session_ttl_secs: u64,
    /// `SESSION_IDLE_TTL`: a session unused this long ends; `None` for no idle limit.
    pub session_idle_secs: Option<u64>,
    /// `SESSION_REFRESH_MARGIN`: refresh when the access token has less than this left.
    pub refresh_margin_secs: u64,
    pub session_store: SessionStore,
    pub policy: Policy,
    pub access_log: AccessLog,
    /// `FORM_REPLAY_MAX_BYTES`: the largest browser form kept through sign-in; 0 for none.
    pub form_replay_max_bytes: usize,
    /// `GROUPS_CLAIM` and `ROLES_CLAIM`.
    pub list_claims: ListClaims,
    pub identity_headers: IdentityHeaders,
    pub pass_access_token: Option<PassAccessToken>,
    pub assertion: Option<AssertionSigner>,
    /// Bearer access tokens, when `API_AUDIENCES` is set.
    pub api: Option<ApiConfig>,
    /// Multi-tenant APIs: `API_ISSUERS` templates and `API_ALLOWED_TENANTS`.
    pub api_tenancy: Option<ApiTenancy>,
    pub upstream: Upstream,
    pub auth_prefix: String,
}

/// The issuers of a multi-tenant API (Entra's v1 `https://sts.windows.net/{tenantid}/` and v2
/// `https://login.microsoftonline.com/{tenantid}/v2.0`), for the tenants allowed.
#[derive(Debug)]
pub struct ApiTenancy {
    pub templates: Vec<IssuerTemplate>,
    pub allowed: Tenants,
}

impl ApiTenancy {
    /// The tenant of a token's `iss`, when a template names it and the tenant is allowed.
    pub fn tenant_of<'a>(&self, iss: &'a str) -> Option<&'a str> {
        self.templates
            .iter()
            .find_map(|t| t.tenant_in(iss))
            .filter(|tid| self.allowed.allows(tid))
    }
}

/// A configuration problem: which variable, and what is wrong with it (never its value).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub variable: String,
    pub problem: String,
}

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.variable, self.problem)
    }
}

impl Config {
    /// Reads every variable through `get` (wrangler vars and secrets alike).
    pub fn from_vars(get: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let vars = Vars(get);
        let var = |name: &'static str| vars.get(name);

        let mut providers = read_providers(&vars)?;

        let redirect_uri = var("OIDC_REDIRECT_URI")
            .map(|v| parse_http_url("OIDC_REDIRECT_URI", &v))
            .transpose()?;
        let post_logout_redirect_uri = var("OIDC_POST_LOGOUT_REDIRECT_URI")
            .map(|v| parse_http_url("OIDC_POST_LOGOUT_REDIRECT_URI", &v))
            .transpose()?;

        let sealer = parse_cookie_secret(&vars.required("COOKIE_SECRET")?)?;

        let session_ttl_secs = vars
            .duration(
                "SESSION_TTL",
                300..=30 * 86400,
                "must be a duration between 5m and 30d, like 8h, 90m or 3600",
            )?
            .unwrap_or(DEFAULT_SESSION_TTL_SECS);
        let session_idle_secs = vars.duration(
            "SESSION_IDLE_TTL",
            60..=session_ttl_secs,
            "must be a duration between 1m and SESSION_TTL, like 30m",
        )?;
        let refresh_margin_secs = vars
            .duration(
                "SESSION_REFRESH_MARGIN",
                0..=3600,
                "must be a duration between 0s and 1h, like 60s",
            )?
            .unwrap_or(DEFAULT_REFRESH_MARGIN_SECS);
        let session_store = vars.choice(
            "SESSION_STORE",
            SessionStore::Cookie,
            &[
                ("cookie", SessionStore::Cookie),
                ("durable_object", SessionStore::DurableObject),
            ],
        )?;

        let upstream = match var("UPSTREAM").as_deref() {
            None | Some("assets") => Upstream::Assets,
            Some(v) if v.starts_with("service:") => Upstream::service(&v["service:".len()..])?,
            Some(v) => {
                let url = parse_http_url("UPSTREAM", v)?;
                if url.query().is_some() {
                    return Err(err("UPSTREAM", "must not have a query or fragment"));
                }
                Upstream::Origin(url)
            }
        };

        let public_paths = var("PUBLIC_PATHS")
            .map(|v| {
                crate::access::policy::list(&v)
                    .map(|p| {
                        PathPattern::parse(p).ok_or_else(|| err("PUBLIC_PATHS", "each entry must be an absolute path, or a directory written /dir/*, without ?, #, %, ; or \\"))
                    })
                    .collect::<Result<Vec<_>, _>>()
            })
            .transpose()?
            .unwrap_or_default();
        let (access_rules, emails, domains, groups, roles) = (
            var("ACCESS_RULES"),
            var("ALLOW_EMAILS"),
            var("ALLOW_EMAIL_DOMAINS"),
            var("ALLOW_GROUPS"),
            var("ALLOW_ROLES"),
        );
        let allow = AllowLists {
            emails: emails.as_deref(),
            domains: domains.as_deref(),
            groups: groups.as_deref(),
            roles: roles.as_deref(),
        };
        trust_unstated_email(&mut providers, var("ALLOW_UNVERIFIED_EMAIL").as_deref())?;
        let policy = Policy::new(&public_paths, access_rules.as_deref(), &allow)
            .map_err(|e| err(e.variable, e.problem))?;
        providers.check_named(&policy.named_providers())?;
        if policy.reads_github_orgs() {
            providers.want_github_orgs();
        }
        let github = providers.iter().filter(|p| p.kind == ProviderKind::GitHub);
        if github.count() > 1 && policy.has_unpinned_github_rule() {
            return Err(err("ACCESS_RULES", "with two GitHub providers, pair each github-org: or github-team: with provider:<id> (an organization name on one is anyone's on the other)"));
        }
        // Static assets serve one file under several paths: rules cover them all.
        let policy = match upstream {
            Upstream::Assets => policy.for_assets(),
            Upstream::Origin(_) | Upstream::Service(_) => policy,
        };

        let access_log = vars.choice(
            "ACCESS_LOG",
            AccessLog::All,
            &[
                ("all", AccessLog::All),
                ("deny", AccessLog::Deny),
                ("none", AccessLog::None),
            ],
        )?;

        let form_replay_max_bytes = match var("FORM_REPLAY_MAX_BYTES") {
            None => DEFAULT_FORM_REPLAY_BYTES,
            Some(v) => v
                .parse::<usize>()
                .ok()
                .filter(|n| *n <= MAX_FORM_REPLAY_BYTES)
                .ok_or_else(|| {
                    err(
                        "FORM_REPLAY_MAX_BYTES",
                        "must be a number of bytes from 0 (off) to 1048576",
                    )
                })?,
        };

        let claim_name = |name: &'static str, default: &str| -> Result<String, ConfigError> {
            let v = var(name).unwrap_or_else(|| default.to_owned());
            let ok = v.split('.').all(|p| {
                !p.is_empty()
                    && p.chars()
                        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | ':' | '/'))
            });
            ok.then_some(v).ok_or_else(|| {
                err(
                    name,
                    "must be a claim name, or a dotted path like realm_access.roles",
                )
            })
        };
        let list_claims = ListClaims {
            groups: claim_name("GROUPS_CLAIM", "groups")?,
            roles: claim_name("ROLES_CLAIM", "roles")?,
        };

        let header_name =
            |name: &'static str, default: &str| -> Result<Option<String>, ConfigError> {
                match var(name).as_deref() {
                    Some("none") => Ok(None),
                    Some(v) if is_header_name(v) => Ok(Some(v.to_owned())),
                    Some(_) => Err(err(name, "must be an HTTP header name, or none")),
                    None => Ok(Some(default.to_owned())),
                }
            };
        let identity_headers = IdentityHeaders {
            user: header_name("IDENTITY_HEADER_USER", "X-Auth-Request-User")?,
            email: header_name("IDENTITY_HEADER_EMAIL", "X-Auth-Request-Email")?,
            groups: header_name("IDENTITY_HEADER_GROUPS", "X-Auth-Request-Groups")?,
        };
        let pass_access_token = vars.choice_any_case(
            "PASS_ACCESS_TOKEN",
            None,
            &[
                ("authorization", Some(PassAccessToken::Authorization)),
                (
                    "x-forwarded-access-token",
                    Some(PassAccessToken::XForwardedAccessToken),
                ),
                ("none", None),
            ],
        )?;
        let assertion = match (var("ASSERTION_AUDIENCE"), var("ASSERTION_SIGNING_KEYS")) {
            (None, None) => None,
            (None, Some(_)) => return Err(err("ASSERTION_AUDIENCE", "is not set, but ASSERTION_SIGNING_KEYS is: set the audience the origin expects")),
            (Some(_), None) => return Err(err("ASSERTION_SIGNING_KEYS", "is not set, but ASSERTION_AUDIENCE is: generate a key with node scripts/assertion-key.mjs")),
            (Some(aud), Some(keys)) => {
                let header = header_name("ASSERTION_HEADER", "X-Portcullis-Assertion")?.ok_or_else(|| err("ASSERTION_HEADER", "cannot be none while the assertion is on"))?;
                Some(AssertionSigner::new(&keys, aud, header).map_err(|problem| err("ASSERTION_SIGNING_KEYS", problem))?)
            }
        };

        let (api, api_tenancy) = match var("API_AUDIENCES") {
            None => {
                if var("API_ROUTES").is_some() {
                    return Err(err("API_AUDIENCES", "is not set, but API_ROUTES is: set the audience(s) your API's tokens carry"));
                }
                (None, None)
            }
            Some(auds) => {
                let audiences: Vec<String> = crate::access::policy::list(&auds)
                    .map(str::to_owned)
                    .collect();
                let listed = var("API_ISSUERS");
                let (templates, exact): (Vec<&str>, Vec<&str>) = listed
                    .as_deref()
                    .map(|v| {
                        crate::access::policy::list(v).partition(|i| i.contains(TENANT_PLACEHOLDER))
                    })
                    .unwrap_or_default();
                let bad_issuer = || {
                    err("API_ISSUERS", "each issuer must be an https URL (http only for localhost or 127.0.0.1), with {tenantid} at most once, in its path")
                };
                let issuers: Vec<Issuer> = match listed {
                    Some(_) => exact
                        .iter()
                        .map(|i| parse_issuer(i).map_err(|_| bad_issuer()))
                        .collect::<Result<_, _>>()?,
                    None => providers.oidc_issuers(),
                };
                let api_tenancy = if templates.is_empty() {
                    None
                } else {
                    let templates = templates
                        .iter()
                        .map(|t| {
                            parse_issuer(&t.replace(
                                TENANT_PLACEHOLDER,
                                "00000000-0000-0000-0000-000000000000",
                            ))
                            .ok()
                            .and(IssuerTemplate::parse(t))
                            .ok_or_else(bad_issuer)
                        })
                        .collect::<Result<Vec<_>, _>>()?;
                    let allowed = var("API_ALLOWED_TENANTS")
                        .ok_or_else(|| err("API_ALLOWED_TENANTS", "is not set, but API_ISSUERS has a {tenantid} template: list the tenant ids to accept, or *"))
                        .and_then(|v| Tenants::parse(&v).ok_or_else(|| err("API_ALLOWED_TENANTS", "must be tenant ids (GUIDs) separated by spaces or commas, or *")))?;
                    Some(ApiTenancy { templates, allowed })
                };
                if issuers.is_empty() && api_tenancy.is_none() {
                    return Err(err("API_ISSUERS", "is not set, and no provider's access tokens are JWTs (GitHub's and Google's are opaque): list the issuers of your API's tokens"));
                }
                let typ = vars.choice(
                    "API_TOKEN_TYP",
                    TypPolicy::AtJwtOrJwt,
                    &[
                        ("at+jwt", TypPolicy::AtJwtOnly),
                        ("any", TypPolicy::AtJwtOrJwt),
                    ],
                )?;
                let api = ApiConfig::new(issuers, audiences, typ, var("API_ROUTES").as_deref())
                    .map_err(|p| err("API_ROUTES", p.0))?;
                let api = match upstream {
                    Upstream::Assets => api.for_assets(),
                    Upstream::Origin(_) | Upstream::Service(_) => api,
                };
                (Some(api), api_tenancy)
            }
        };

        let auth_prefix = var("AUTH_PATH_PREFIX").unwrap_or_else(|| DEFAULT_AUTH_PREFIX.to_owned());
        let prefix_ok = auth_prefix.len() > 1
            && auth_prefix.starts_with('/')
            && !auth_prefix.ends_with('/')
            && auth_prefix
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'/' | b'-' | b'_' | b'.'))
            && !auth_prefix.contains("//");
        if !prefix_ok {
            return Err(err("AUTH_PATH_PREFIX", "must be a path like /auth: starting with /, no trailing /, letters, digits, - _ . only"));
        }

        Ok(Self {
            providers,
            redirect_uri,
            post_logout_redirect_uri,
            sealer,
            session_ttl_secs,
            session_idle_secs,
            refresh_margin_secs,
            session_store,
            policy,
            access_log,
            form_replay_max_bytes,
            list_claims,
            identity_headers,
            pass_access_token,
            assertion,
            api,
            api_tenancy,
            upstream,
            auth_prefix,
        })
    }

    pub fn auth_path(&self, route: &str) -> String {
        format!("{}/{route}", self.auth_prefix)
    }
}

/// `ALLOW_UNVERIFIED_EMAIL`: `true` for every provider, or the ids of some (`PROVIDERS`).
/// Never a multi-tenant one: any tenant's administrators can put any address on an account.
fn trust_unstated_email(providers: &mut Providers, value: Option<&str>) -> Result<(), ConfigError> {
    let name = "ALLOW_UNVERIFIED_EMAIL";
    let ids: Option<Vec<&str>> = match value.map(str::trim) {
        None | Some("" | "false") => return Ok(()),
        Some("true") => None,
        Some(v) => Some(crate::access::policy::list(v).collect()),
    };
    if ids.iter().flatten().any(|id| providers.get(id).is_none()) {
        return Err(err(
            name,
            "must be true, false, or ids of providers in PROVIDERS",
        ));
    }
    for p in providers.iter_mut() {
        if ids.as_ref().is_none_or(|ids| ids.contains(&p.id.as_str())) {
            if p.tenants.is_some() {
                return Err(err(name, format!("cannot cover the multi-tenant provider {}: any tenant's administrators can put any address on an account (use tenant:, group: or role: rules)", p.id)));
            }
            p.trust_unstated_email = true;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;

#[cfg(test)]
pub mod tests_support {
    use super::Config;

    pub const SECRET_B64: &str = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=";

    /// The variables of [`test_config`] before its `extra`.
    pub fn base_vars() -> std::collections::HashMap<String, String> {
        [
            ("OIDC_ISSUER", "https://idp.example.com"),
            ("OIDC_CLIENT_ID", "client"),
            ("OIDC_CLIENT_SECRET", "s3cret-value"),
            ("COOKIE_SECRET", SECRET_B64),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
    }

    /// A valid configuration for unit tests, with `extra` overriding or adding variables.
    pub fn test_config(extra: &[(&str, &str)]) -> Config {
        let base = [
            ("OIDC_ISSUER", "https://idp.example.com"),
            ("OIDC_CLIENT_ID", "client"),
            ("OIDC_CLIENT_SECRET", "s3cret-value"),
            ("COOKIE_SECRET", SECRET_B64),
        ];
        let get = |k: &str| {
            extra
                .iter()
                .chain(base.iter())
                .find(|(n, _)| *n == k)
                .map(|(_, v)| (*v).to_owned())
        };
        Config::from_vars(get).expect("test config is valid")
    }
}
