//! Configuration: wrangler vars and secrets, read and validated once per isolate into a typed
//! [`Config`]. Errors name the variable, never its value.

use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
use base64::Engine;
use url::Url;

use crate::path::PathPattern;
use crate::seal::Sealer;
use crate::secret::ClientSecret;
use crate::types::{ClientId, Issuer};

pub const DEFAULT_SCOPES: &str = "openid profile email";
pub const DEFAULT_SESSION_TTL_SECS: u64 = 8 * 3600;
pub const DEFAULT_AUTH_PREFIX: &str = "/auth";
const MIN_SECRET_BYTES: usize = 32;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TokenAuthMethod {
    ClientSecretBasic,
    ClientSecretPost,
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
    pub public_paths: Vec<PathPattern>,
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

pub fn is_loopback_host(host: Option<&str>) -> bool {
    matches!(host, Some("localhost" | "127.0.0.1" | "[::1]" | "::1"))
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

        let public_paths = var("PUBLIC_PATHS")
            .map(|v| {
                v.split(|c: char| c == ',' || c.is_whitespace())
                    .filter(|s| !s.is_empty())
                    .map(|p| {
                        PathPattern::parse(p).ok_or_else(|| err("PUBLIC_PATHS", "each entry must be an absolute path, or a directory written /dir/*, without ?, #, % or \\"))
                    })
                    .collect::<Result<Vec<_>, _>>()
            })
            .transpose()?
            .unwrap_or_default();

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
            public_paths,
            upstream,
            auth_prefix,
        })
    }

    pub fn auth_path(&self, route: &str) -> String {
        format!("{}/{route}", self.auth_prefix)
    }
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
        assert!(c.public_paths.is_empty());
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
        assert_eq!(c.public_paths.len(), 2);
        assert!(matches!(c.upstream, Upstream::Origin(_)));
        assert_eq!(problem_var(&[("PUBLIC_PATHS", "nope")]), "PUBLIC_PATHS");
        assert_eq!(problem_var(&[("UPSTREAM", "ftp://x")]), "UPSTREAM");
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
