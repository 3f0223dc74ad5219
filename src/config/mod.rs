//! Configuration: wrangler vars and secrets, read and validated once per isolate into a typed
//! [`Config`]. Errors name the variable, never its value.

use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
use base64::Engine;
use url::Url;

use crate::access::access_token::TypPolicy;
use crate::access::api::ApiConfig;
use crate::access::assertion::AssertionSigner;
use crate::access::policy::{AllowLists, Policy};
use crate::base::seal::Sealer;
use crate::base::secret::ClientSecret;
use crate::base::types::{ClientId, Issuer};
use crate::http::is_loopback_host;
use crate::http::path::PathPattern;
use crate::jose::claims::ListClaims;

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
const MIN_SECRET_BYTES: usize = 32;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TokenAuthMethod {
    ClientSecretBasic,
    ClientSecretPost,
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

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Upstream {
    /// Workers Static Assets through the `ASSETS` binding.
    Assets,
    /// An origin URL: the request's path and query are appended to it.
    Origin(Url),
}

#[derive(Debug)]
pub struct Config {
    pub issuer: Issuer,
    pub client_id: ClientId,
    pub client_secret: ClientSecret,
    pub scopes: String,
    pub redirect_uri: Option<Url>,
    pub post_logout_redirect_uri: Option<Url>,
    pub token_auth_method: TokenAuthMethod,
    pub sealer: Sealer,
    pub session_ttl_secs: u64,
    /// `SESSION_IDLE_TTL`: a session unused this long ends; `None` for no idle limit.
    pub session_idle_secs: Option<u64>,
    /// `SESSION_REFRESH_MARGIN`: refresh when the access token has less than this left.
    pub refresh_margin_secs: u64,
    pub session_store: SessionStore,
    pub policy: Policy,
    pub access_log: AccessLog,
    /// `GROUPS_CLAIM` and `ROLES_CLAIM`.
    pub list_claims: ListClaims,
    pub identity_headers: IdentityHeaders,
    pub pass_access_token: Option<PassAccessToken>,
    pub assertion: Option<AssertionSigner>,
    /// Bearer access tokens, when `API_AUDIENCES` is set.
    pub api: Option<ApiConfig>,
    pub upstream: Upstream,
    pub auth_prefix: String,
}

/// A configuration problem: which variable, and what is wrong with it (never its value).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub variable: &'static str,
    pub problem: String,
}

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.variable, self.problem)
    }
}

fn err(variable: &'static str, problem: impl Into<String>) -> ConfigError {
    ConfigError {
        variable,
        problem: problem.into(),
    }
}

impl Config {
    /// Reads every variable through `get` (wrangler vars and secrets alike).
    pub fn from_vars(get: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let var = |name: &'static str| {
            get(name)
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
        };
        let required = |name: &'static str| var(name).ok_or_else(|| err(name, "is not set"));

        let issuer = parse_issuer(&required("OIDC_ISSUER")?)?;
        let client_id = ClientId::new(required("OIDC_CLIENT_ID")?);
        let client_secret = ClientSecret::new(required("OIDC_CLIENT_SECRET")?);

        let scopes = var("OIDC_SCOPES").unwrap_or_else(|| DEFAULT_SCOPES.to_owned());
        let scopes = scopes.split_whitespace().collect::<Vec<_>>().join(" ");
        if !scopes.split(' ').any(|s| s == "openid") {
            return Err(err("OIDC_SCOPES", "must include openid"));
        }
        if scopes
            .chars()
            .any(|c| c == '"' || c == '\\' || c.is_control())
        {
            return Err(err(
                "OIDC_SCOPES",
                "contains characters not allowed in a scope",
            ));
        }

        let redirect_uri = var("OIDC_REDIRECT_URI")
            .map(|v| parse_http_url("OIDC_REDIRECT_URI", &v))
            .transpose()?;
        let post_logout_redirect_uri = var("OIDC_POST_LOGOUT_REDIRECT_URI")
            .map(|v| parse_http_url("OIDC_POST_LOGOUT_REDIRECT_URI", &v))
            .transpose()?;

        let token_auth_method = match var("OIDC_TOKEN_AUTH_METHOD").as_deref() {
            None | Some("client_secret_basic") => TokenAuthMethod::ClientSecretBasic,
            Some("client_secret_post") => TokenAuthMethod::ClientSecretPost,
            Some(_) => {
                return Err(err(
                    "OIDC_TOKEN_AUTH_METHOD",
                    "must be client_secret_basic or client_secret_post",
                ))
            }
        };

        let sealer = parse_cookie_secret(&required("COOKIE_SECRET")?)?;

        let session_ttl_secs = match var("SESSION_TTL") {
            None => DEFAULT_SESSION_TTL_SECS,
            Some(v) => parse_duration(&v)
                .filter(|s| (300..=30 * 86400).contains(s))
                .ok_or_else(|| {
                    err(
                        "SESSION_TTL",
                        "must be a duration between 5m and 30d, like 8h, 90m or 3600",
                    )
                })?,
        };

        let session_idle_secs = var("SESSION_IDLE_TTL")
            .map(|v| {
                parse_duration(&v)
                    .filter(|s| (60..=session_ttl_secs).contains(s))
                    .ok_or_else(|| {
                        err(
                            "SESSION_IDLE_TTL",
                            "must be a duration between 1m and SESSION_TTL, like 30m",
                        )
                    })
            })
            .transpose()?;
        let refresh_margin_secs = match var("SESSION_REFRESH_MARGIN") {
            None => DEFAULT_REFRESH_MARGIN_SECS,
            Some(v) => parse_duration(&v).filter(|s| *s <= 3600).ok_or_else(|| {
                err(
                    "SESSION_REFRESH_MARGIN",
                    "must be a duration between 0s and 1h, like 60s",
                )
            })?,
        };
        let session_store = match var("SESSION_STORE").as_deref() {
            None | Some("cookie") => SessionStore::Cookie,
            Some("durable_object") => SessionStore::DurableObject,
            Some(_) => return Err(err("SESSION_STORE", "must be cookie or durable_object")),
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
        let trust_unstated_email = match var("ALLOW_UNVERIFIED_EMAIL").as_deref() {
            None | Some("false") => false,
            Some("true") => true,
            Some(_) => return Err(err("ALLOW_UNVERIFIED_EMAIL", "must be true or false")),
        };
        let policy = Policy::new(
            &public_paths,
            access_rules.as_deref(),
            &allow,
            trust_unstated_email,
        )
        .map_err(|e| err(e.variable, e.problem))?;

        let access_log = match var("ACCESS_LOG").as_deref() {
            None | Some("all") => AccessLog::All,
            Some("deny") => AccessLog::Deny,
            Some("none") => AccessLog::None,
            Some(_) => return Err(err("ACCESS_LOG", "must be all, deny or none")),
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
        let groups_claim = claim_name("GROUPS_CLAIM", "groups")?;
        let roles_claim = claim_name("ROLES_CLAIM", "roles")?;

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
        let pass_access_token = match var("PASS_ACCESS_TOKEN")
            .map(|v| v.to_ascii_lowercase())
            .as_deref()
        {
            None | Some("none") => None,
            Some("authorization") => Some(PassAccessToken::Authorization),
            Some("x-forwarded-access-token") => Some(PassAccessToken::XForwardedAccessToken),
            Some(_) => {
                return Err(err(
                    "PASS_ACCESS_TOKEN",
                    "must be authorization, x-forwarded-access-token or none",
                ))
            }
        };
        let assertion = match (var("ASSERTION_AUDIENCE"), var("ASSERTION_SIGNING_KEYS")) {
            (None, None) => None,
            (None, Some(_)) => return Err(err("ASSERTION_AUDIENCE", "is not set, but ASSERTION_SIGNING_KEYS is: set the audience the origin expects")),
            (Some(_), None) => return Err(err("ASSERTION_SIGNING_KEYS", "is not set, but ASSERTION_AUDIENCE is: generate a key with node scripts/assertion-key.mjs")),
            (Some(aud), Some(keys)) => {
                let header = header_name("ASSERTION_HEADER", "X-Portcullis-Assertion")?.ok_or_else(|| err("ASSERTION_HEADER", "cannot be none while the assertion is on"))?;
                Some(AssertionSigner::new(&keys, aud, header).map_err(|problem| err("ASSERTION_SIGNING_KEYS", problem))?)
            }
        };

        let api = match var("API_AUDIENCES") {
            None => {
                if var("API_ROUTES").is_some() {
                    return Err(err("API_AUDIENCES", "is not set, but API_ROUTES is: set the audience(s) your API's tokens carry"));
                }
                None
            }
            Some(auds) => {
                let audiences: Vec<String> = crate::access::policy::list(&auds)
                    .map(str::to_owned)
                    .collect();
                let issuers: Vec<Issuer> = match var("API_ISSUERS") {
                    Some(v) => crate::access::policy::list(&v)
                        .map(|i| parse_issuer(i).map_err(|_| err("API_ISSUERS", "each issuer must be an https URL (http only for localhost or 127.0.0.1)")))
                        .collect::<Result<_, _>>()?,
                    None => vec![issuer.clone()],
                };
                let typ = match var("API_TOKEN_TYP").as_deref() {
                    None | Some("any") => TypPolicy::AtJwtOrJwt,
                    Some("at+jwt") => TypPolicy::AtJwtOnly,
                    Some(_) => return Err(err("API_TOKEN_TYP", "must be at+jwt or any")),
                };
                Some(
                    ApiConfig::new(issuers, audiences, typ, var("API_ROUTES").as_deref())
                        .map_err(|p| err("API_ROUTES", p))?,
                )
            }
        };

        let upstream = match var("UPSTREAM").as_deref() {
            None | Some("assets") => Upstream::Assets,
            Some(v) => {
                let url = parse_http_url("UPSTREAM", v)?;
                if url.query().is_some() || url.fragment().is_some() {
                    return Err(err("UPSTREAM", "must not have a query or fragment"));
                }
                Upstream::Origin(url)
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
            issuer,
            client_id,
            client_secret,
            scopes,
            redirect_uri,
            post_logout_redirect_uri,
            token_auth_method,
            sealer,
            session_ttl_secs,
            session_idle_secs,
            refresh_margin_secs,
            session_store,
            policy,
            access_log,
            list_claims: ListClaims {
                groups: groups_claim,
                roles: roles_claim,
            },
            identity_headers,
            pass_access_token,
            assertion,
            api,
            upstream,
            auth_prefix,
        })
    }

    pub fn auth_path(&self, route: &str) -> String {
        format!("{}/{route}", self.auth_prefix)
    }
}

fn is_header_name(v: &str) -> bool {
    !v.is_empty()
        && v.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

fn parse_issuer(v: &str) -> Result<Issuer, ConfigError> {
    let url = Url::parse(v).map_err(|_| err("OIDC_ISSUER", "is not a URL"))?;
    match url.scheme() {
        "https" => {}
        "http" if is_loopback_host(url.host_str()) => {}
        _ => {
            return Err(err(
                "OIDC_ISSUER",
                "must be an https URL (http only for localhost or 127.0.0.1)",
            ))
        }
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(err("OIDC_ISSUER", "must not have a query or fragment"));
    }
    // Kept exactly as written: issuers compare as strings (a trailing slash matters).
    Ok(Issuer::new(v))
}

fn parse_http_url(name: &'static str, v: &str) -> Result<Url, ConfigError> {
    let url = Url::parse(v).map_err(|_| err(name, "is not a URL"))?;
    if !matches!(url.scheme(), "https" | "http") || url.host_str().is_none() {
        return Err(err(name, "must be an http(s) URL"));
    }
    Ok(url)
}

/// One or more base64 secrets (standard or url-safe, padded or not), newest first, separated
/// by commas or whitespace; each at least 32 bytes.
fn parse_cookie_secret(v: &str) -> Result<Sealer, ConfigError> {
    let secrets = v
        .split(|c: char| c == ',' || c.is_whitespace())
        .filter(|s| !s.is_empty())
        .map(|s| {
            [&STANDARD, &STANDARD_NO_PAD, &URL_SAFE, &URL_SAFE_NO_PAD]
                .iter()
                .find_map(|engine| engine.decode(s).ok())
                .ok_or_else(|| err("COOKIE_SECRET", "is not base64 (generate one with: openssl rand -base64 32)"))
                .and_then(|bytes| {
                    if bytes.len() >= MIN_SECRET_BYTES {
                        Ok(bytes)
                    } else {
                        Err(err("COOKIE_SECRET", "must decode to at least 32 bytes (generate one with: openssl rand -base64 32)"))
                    }
                })
        })
        .collect::<Result<Vec<_>, _>>()?;
    Sealer::new(&secrets).ok_or_else(|| err("COOKIE_SECRET", "is not set"))
}

/// `90`, `90s`, `15m`, `8h`, `1d`: seconds.
pub fn parse_duration(v: &str) -> Option<u64> {
    let v = v.trim();
    let (digits, unit) = match v.find(|c: char| !c.is_ascii_digit()) {
        Some(i) => v.split_at(i),
        None => (v, "s"),
    };
    let n: u64 = digits.parse().ok()?;
    let mult = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86400,
        _ => return None,
    };
    n.checked_mul(mult)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    pub const SECRET_B64: &str = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=";

    fn vars(extra: &[(&str, &str)]) -> HashMap<String, String> {
        let mut m: HashMap<String, String> = [
            ("OIDC_ISSUER", "https://login.example.com/tenant/v2.0"),
            ("OIDC_CLIENT_ID", "client"),
            ("OIDC_CLIENT_SECRET", "s3cret-value"),
            ("COOKIE_SECRET", SECRET_B64),
        ]
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
        for (k, v) in extra {
            m.insert((*k).to_owned(), (*v).to_owned());
        }
        m
    }

    fn parse(extra: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let m = vars(extra);
        Config::from_vars(|k| m.get(k).cloned())
    }

    fn problem_var(extra: &[(&str, &str)]) -> &'static str {
        parse(extra).unwrap_err().variable
    }

    #[test]
    fn defaults_apply() {
        let c = parse(&[]).unwrap();
        assert_eq!(c.scopes, "openid profile email");
        assert_eq!(c.token_auth_method, TokenAuthMethod::ClientSecretBasic);
        assert_eq!(c.session_ttl_secs, 8 * 3600);
        assert_eq!(c.upstream, Upstream::Assets);
        assert_eq!(c.auth_prefix, "/auth");
        assert_eq!(c.list_claims.groups, "groups");
        assert_eq!(
            c.identity_headers.user.as_deref(),
            Some("X-Auth-Request-User")
        );
        assert!(c.assertion.is_none() && c.pass_access_token.is_none());
    }

    #[test]
    fn missing_variables_are_named() {
        for name in [
            "OIDC_ISSUER",
            "OIDC_CLIENT_ID",
            "OIDC_CLIENT_SECRET",
            "COOKIE_SECRET",
        ] {
            let mut m = vars(&[]);
            m.remove(name);
            let e = Config::from_vars(|k| m.get(k).cloned()).unwrap_err();
            assert_eq!(e.variable, name);
            assert_eq!(e.problem, "is not set");
        }
    }

    #[test]
    fn issuer_must_be_https_except_loopback() {
        assert_eq!(
            problem_var(&[("OIDC_ISSUER", "http://idp.example.com")]),
            "OIDC_ISSUER"
        );
        assert_eq!(problem_var(&[("OIDC_ISSUER", "not a url")]), "OIDC_ISSUER");
        assert_eq!(
            problem_var(&[("OIDC_ISSUER", "https://idp.example.com/?x=1")]),
            "OIDC_ISSUER"
        );
        assert!(parse(&[("OIDC_ISSUER", "http://127.0.0.1:9000")]).is_ok());
        assert!(parse(&[("OIDC_ISSUER", "http://localhost:9000/realms/x")]).is_ok());
        let c = parse(&[("OIDC_ISSUER", "https://tenant.auth0.com/")]).unwrap();
        assert_eq!(c.issuer.as_str(), "https://tenant.auth0.com/");
    }

    #[test]
    fn cookie_secret_must_be_long_base64() {
        assert_eq!(problem_var(&[("COOKIE_SECRET", "short")]), "COOKIE_SECRET");
        assert_eq!(
            problem_var(&[("COOKIE_SECRET", "c2hvcnQ=")]),
            "COOKIE_SECRET"
        );
        assert_eq!(
            problem_var(&[("COOKIE_SECRET", "***not base64***")]),
            "COOKIE_SECRET"
        );
        let two = format!("{SECRET_B64}, {}", URL_SAFE_NO_PAD.encode([5u8; 40]));
        assert!(parse(&[("COOKIE_SECRET", &two)]).is_ok());
    }

    #[test]
    fn errors_never_contain_the_value() {
        let e = parse(&[("COOKIE_SECRET", "topsecretvalue")]).unwrap_err();
        assert!(!e.to_string().contains("topsecretvalue"));
        let e = parse(&[("OIDC_ISSUER", "ftp://secret-host.example")]).unwrap_err();
        assert!(!e.to_string().contains("secret-host"));
    }

    #[test]
    fn scopes_must_include_openid() {
        assert_eq!(
            problem_var(&[("OIDC_SCOPES", "profile email")]),
            "OIDC_SCOPES"
        );
        assert_eq!(
            parse(&[("OIDC_SCOPES", "  openid   offline_access ")])
                .unwrap()
                .scopes,
            "openid offline_access"
        );
    }

    #[test]
    fn token_auth_method_choices() {
        assert_eq!(
            parse(&[("OIDC_TOKEN_AUTH_METHOD", "client_secret_post")])
                .unwrap()
                .token_auth_method,
            TokenAuthMethod::ClientSecretPost
        );
        assert_eq!(
            problem_var(&[("OIDC_TOKEN_AUTH_METHOD", "private_key_jwt")]),
            "OIDC_TOKEN_AUTH_METHOD"
        );
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("8h"), Some(28800));
        assert_eq!(parse_duration("90m"), Some(5400));
        assert_eq!(parse_duration("3600"), Some(3600));
        assert_eq!(parse_duration("1d"), Some(86400));
        assert_eq!(parse_duration("h"), None);
        assert_eq!(parse_duration("5y"), None);
        assert_eq!(parse_duration("99999999999999999999d"), None);
        assert_eq!(problem_var(&[("SESSION_TTL", "10s")]), "SESSION_TTL");
        assert_eq!(
            problem_var(&[("SESSION_IDLE_TTL", "10s")]),
            "SESSION_IDLE_TTL"
        );
        assert_eq!(
            problem_var(&[("SESSION_TTL", "1h"), ("SESSION_IDLE_TTL", "2h")]),
            "SESSION_IDLE_TTL"
        );
        assert_eq!(
            problem_var(&[("SESSION_REFRESH_MARGIN", "2h")]),
            "SESSION_REFRESH_MARGIN"
        );
        assert_eq!(problem_var(&[("SESSION_STORE", "redis")]), "SESSION_STORE");
        let c = parse(&[
            ("SESSION_IDLE_TTL", "30m"),
            ("SESSION_REFRESH_MARGIN", "0"),
            ("SESSION_STORE", "durable_object"),
        ])
        .unwrap();
        assert_eq!(c.session_idle_secs, Some(1800));
        assert_eq!(c.refresh_margin_secs, 0);
        assert_eq!(c.session_store, SessionStore::DurableObject);
        let d = parse(&[]).unwrap();
        assert_eq!(
            (d.session_idle_secs, d.refresh_margin_secs, d.session_store),
            (None, 60, SessionStore::Cookie)
        );
        assert_eq!(
            parse(&[("SESSION_TTL", "12h")]).unwrap().session_ttl_secs,
            43200
        );
    }

    #[test]
    fn public_paths_and_upstream() {
        let c = parse(&[
            ("PUBLIC_PATHS", "/favicon.ico, /public/*"),
            ("UPSTREAM", "https://origin.example.com/base"),
        ])
        .unwrap();
        let public = crate::http::path::RequestPath::parse("/public/x").unwrap();
        assert!(c.policy.rule_for(&public).is_public());
        assert!(matches!(c.upstream, Upstream::Origin(_)));
        assert_eq!(problem_var(&[("PUBLIC_PATHS", "nope")]), "PUBLIC_PATHS");
        assert_eq!(problem_var(&[("UPSTREAM", "ftp://x")]), "UPSTREAM");
    }

    #[test]
    fn policy_and_origin_identity_settings() {
        assert_eq!(
            problem_var(&[("ACCESS_RULES", "/admin/* group:")]),
            "ACCESS_RULES"
        );
        assert_eq!(
            problem_var(&[("ALLOW_EMAIL_DOMAINS", "a@b")]),
            "ALLOW_EMAIL_DOMAINS"
        );
        assert_eq!(
            problem_var(&[("ROLES_CLAIM", "realm_access..roles")]),
            "ROLES_CLAIM"
        );
        assert_eq!(
            parse(&[("ROLES_CLAIM", "realm_access.roles")])
                .unwrap()
                .list_claims
                .roles,
            "realm_access.roles"
        );
        assert_eq!(
            problem_var(&[("IDENTITY_HEADER_USER", "X User")]),
            "IDENTITY_HEADER_USER"
        );
        assert_eq!(
            parse(&[("IDENTITY_HEADER_GROUPS", "none")])
                .unwrap()
                .identity_headers
                .groups,
            None
        );
        assert_eq!(
            parse(&[("PASS_ACCESS_TOKEN", "Authorization")])
                .unwrap()
                .pass_access_token,
            Some(PassAccessToken::Authorization)
        );
        assert_eq!(
            problem_var(&[("PASS_ACCESS_TOKEN", "cookie")]),
            "PASS_ACCESS_TOKEN"
        );
        assert_eq!(
            problem_var(&[("ASSERTION_AUDIENCE", "origin")]),
            "ASSERTION_SIGNING_KEYS"
        );
        assert_eq!(
            problem_var(&[("ASSERTION_SIGNING_KEYS", "{}")]),
            "ASSERTION_AUDIENCE"
        );
        assert_eq!(
            problem_var(&[
                ("ASSERTION_AUDIENCE", "o"),
                ("ASSERTION_SIGNING_KEYS", "not json")
            ]),
            "ASSERTION_SIGNING_KEYS"
        );
    }

    #[test]
    fn api_settings() {
        assert!(parse(&[]).unwrap().api.is_none());
        let c = parse(&[
            ("API_AUDIENCES", "api://x, 1111"),
            ("API_ROUTES", "GET /api/* scope:data.read"),
        ])
        .unwrap();
        let api = c.api.unwrap();
        assert_eq!(api.audiences, vec!["api://x", "1111"]);
        assert_eq!(
            api.issuers,
            vec![Issuer::new("https://login.example.com/tenant/v2.0")]
        );
        assert_eq!(
            problem_var(&[("API_ROUTES", "GET /api/* scope:x")]),
            "API_AUDIENCES"
        );
        assert_eq!(
            problem_var(&[("API_AUDIENCES", "a"), ("API_ROUTES", "GET api scope:x")]),
            "API_ROUTES"
        );
        assert_eq!(
            problem_var(&[
                ("API_AUDIENCES", "a"),
                ("API_ISSUERS", "http://evil.example")
            ]),
            "API_ISSUERS"
        );
        assert_eq!(
            problem_var(&[("API_AUDIENCES", "a"), ("API_TOKEN_TYP", "jwt")]),
            "API_TOKEN_TYP"
        );
    }

    #[test]
    fn auth_prefix_rules() {
        assert_eq!(
            parse(&[("AUTH_PATH_PREFIX", "/_sso")])
                .unwrap()
                .auth_path("login"),
            "/_sso/login"
        );
        for bad in ["auth", "/", "/auth/", "/a b", "//x"] {
            assert_eq!(
                problem_var(&[("AUTH_PATH_PREFIX", bad)]),
                "AUTH_PATH_PREFIX",
                "{bad}"
            );
        }
    }

    #[test]
    fn debug_output_hides_secrets() {
        let c = parse(&[]).unwrap();
        let d = format!("{c:?}");
        assert!(!d.contains("s3cret-value"));
        assert!(!d.contains(SECRET_B64));
    }
}

#[cfg(test)]
pub mod tests_support {
    use super::Config;

    pub const SECRET_B64: &str = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=";

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
