//! Provider metadata (OpenID Connect Discovery 1.0) and cache lifetimes.

use serde::Deserialize;

use crate::base::types::Issuer;
pub use crate::config::providers::IssuerTemplate;
use crate::http::http_url::HttpUrl;
use crate::http::is_loopback_host;

pub const MIN_CACHE_TTL_SECS: u64 = 60;
pub const MAX_CACHE_TTL_SECS: u64 = 86400;
/// Lifetime when the provider sends no usable Cache-Control.
pub const DEFAULT_CACHE_TTL_SECS: u64 = 3600;

/// A provider's metadata, checked: every endpoint parsed once into a URL.
#[derive(Debug, Clone, PartialEq)]
pub struct ProviderMetadata {
    pub issuer: Issuer,
    pub authorization_endpoint: HttpUrl,
    pub token_endpoint: HttpUrl,
    pub jwks_uri: HttpUrl,
    pub end_session_endpoint: Option<HttpUrl>,
    /// RFC 7009 token revocation, used at logout for the refresh token.
    pub revocation_endpoint: Option<HttpUrl>,
    pub code_challenge_methods_supported: Option<Vec<String>>,
    pub authorization_response_iss_parameter_supported: bool,
    /// A multi-tenant authority's issuer (Entra's `common`, `organizations`): a template with
    /// `{tenantid}` where the configured issuer has `organizations`, which no token carries.
    pub issuer_template: Option<IssuerTemplate>,
    /// RFC 9126 pushed authorization requests.
    pub pushed_authorization_request_endpoint: Option<HttpUrl>,
    pub require_pushed_authorization_requests: bool,
}

/// The document as published (OpenID Connect Discovery 1.0 section 3).
#[derive(Deserialize)]
struct Document {
    issuer: String,
    authorization_endpoint: String,
    token_endpoint: String,
    jwks_uri: String,
    #[serde(default)]
    end_session_endpoint: Option<String>,
    #[serde(default)]
    revocation_endpoint: Option<String>,
    #[serde(default)]
    code_challenge_methods_supported: Option<Vec<String>>,
    #[serde(default)]
    authorization_response_iss_parameter_supported: bool,
    #[serde(default)]
    pushed_authorization_request_endpoint: Option<String>,
    #[serde(default)]
    require_pushed_authorization_requests: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DiscoveryError {
    Unparsable(String),
    IssuerMismatch,
    InsecureEndpoint(&'static str),
    NoS256,
}

impl std::fmt::Display for DiscoveryError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Unparsable(e) => write!(f, "discovery document is not valid: {e}"),
            Self::IssuerMismatch => {
                f.write_str("the discovery document's issuer is not exactly OIDC_ISSUER")
            }
            Self::InsecureEndpoint(which) => write!(f, "discovery's {which} is not an https URL"),
            Self::NoS256 => {
                f.write_str("the provider lists code_challenge_methods_supported without S256")
            }
        }
    }
}

impl ProviderMetadata {
    /// Parses and checks a discovery document against the configured issuer.
    pub fn parse(body: &[u8], expected: &Issuer) -> Result<Self, DiscoveryError> {
        let d: Document =
            serde_json::from_slice(body).map_err(|e| DiscoveryError::Unparsable(e.to_string()))?;
        let issuer_template = if d.issuer == expected.as_str() {
            None
        } else {
            Some(
                IssuerTemplate::fitting(&d.issuer, expected.as_str())
                    .ok_or(DiscoveryError::IssuerMismatch)?,
            )
        };
        // Endpoints on loopback may be http only when the issuer itself is (local development).
        let issuer_is_loopback =
            HttpUrl::normalize(expected.as_str()).is_ok_and(|u| u.scheme() == "http");
        let endpoint = |name: &'static str, url: &str| {
            HttpUrl::normalize(url)
                .ok()
                .filter(|u| {
                    u.scheme() == "https"
                        || (issuer_is_loopback
                            && u.scheme() == "http"
                            && is_loopback_host(u.host()))
                })
                .ok_or(DiscoveryError::InsecureEndpoint(name))
        };
        let optional =
            |name: &'static str, url: Option<&str>| url.map(|u| endpoint(name, u)).transpose();
        let authorization_endpoint = endpoint("authorization_endpoint", &d.authorization_endpoint)?;
        let token_endpoint = endpoint("token_endpoint", &d.token_endpoint)?;
        let jwks_uri = endpoint("jwks_uri", &d.jwks_uri)?;
        let end_session_endpoint =
            optional("end_session_endpoint", d.end_session_endpoint.as_deref())?;
        let revocation_endpoint =
            optional("revocation_endpoint", d.revocation_endpoint.as_deref())?;
        let pushed_authorization_request_endpoint = optional(
            "pushed_authorization_request_endpoint",
            d.pushed_authorization_request_endpoint.as_deref(),
        )?;
        // Absent means "not advertised" (Entra ID), which still works; a list without S256 does not.
        if d.code_challenge_methods_supported
            .as_ref()
            .is_some_and(|l| !l.iter().any(|x| x == "S256"))
        {
            return Err(DiscoveryError::NoS256);
        }
        Ok(Self {
            issuer: expected.clone(),
            authorization_endpoint,
            token_endpoint,
            jwks_uri,
            end_session_endpoint,
            revocation_endpoint,
            code_challenge_methods_supported: d.code_challenge_methods_supported,
            authorization_response_iss_parameter_supported: d
                .authorization_response_iss_parameter_supported,
            issuer_template,
            pushed_authorization_request_endpoint,
            require_pushed_authorization_requests: d.require_pushed_authorization_requests,
        })
    }
}

/// Cache lifetime from a `Cache-Control` header, clamped to [60 s, 24 h].
pub fn cache_ttl(cache_control: Option<&str>) -> u64 {
    let Some(cc) = cache_control else {
        return DEFAULT_CACHE_TTL_SECS;
    };
    let mut max_age = None;
    for directive in cc.split(',').map(|d| d.trim().to_ascii_lowercase()) {
        if directive == "no-store" || directive == "no-cache" {
            return MIN_CACHE_TTL_SECS;
        }
        if let Some(v) = directive.strip_prefix("max-age=") {
            max_age = v.trim_matches('"').parse::<u64>().ok();
        }
    }
    max_age
        .unwrap_or(DEFAULT_CACHE_TTL_SECS)
        .clamp(MIN_CACHE_TTL_SECS, MAX_CACHE_TTL_SECS)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const ISS: &str = "https://login.example.com/t/v2.0";

    fn doc() -> serde_json::Value {
        json!({
            "issuer": ISS,
            "authorization_endpoint": "https://login.example.com/t/authorize",
            "token_endpoint": "https://login.example.com/t/token",
            "jwks_uri": "https://login.example.com/t/keys",
        })
    }

    fn parse(v: &serde_json::Value, iss: &str) -> Result<ProviderMetadata, DiscoveryError> {
        ProviderMetadata::parse(v.to_string().as_bytes(), &Issuer::new(iss))
    }

    #[test]
    fn entra_style_document_without_pkce_methods_is_accepted() {
        let m = parse(&doc(), ISS).unwrap();
        assert_eq!(m.code_challenge_methods_supported, None);
        assert!(!m.authorization_response_iss_parameter_supported);
    }

    #[test]
    fn issuer_must_match_exactly() {
        assert_eq!(
            parse(&doc(), "https://login.example.com/t/v2.0/").unwrap_err(),
            DiscoveryError::IssuerMismatch
        );
        assert_eq!(
            parse(&doc(), "https://LOGIN.example.com/t/v2.0").unwrap_err(),
            DiscoveryError::IssuerMismatch
        );
    }

    #[test]
    fn a_multi_tenant_template_fits_only_its_own_authority() {
        let mut d = doc();
        d["issuer"] = json!("https://login.example.com/{tenantid}/v2.0");
        let m = parse(&d, "https://login.example.com/organizations/v2.0").unwrap();
        let t = m.issuer_template.unwrap();
        assert_eq!(
            t.issuer_of("11111111-2222-3333-4444-555555555555"),
            "https://login.example.com/11111111-2222-3333-4444-555555555555/v2.0"
        );
        for configured in [
            "https://login.example.com/a/b/v2.0",
            "https://login.example.com//v2.0",
            "https://other.example.com/organizations/v2.0",
            "https://login.example.com/organizations/v2.0/",
            "https://login.example.com.evil/organizations/v2.0",
        ] {
            assert_eq!(
                parse(&d, configured).unwrap_err(),
                DiscoveryError::IssuerMismatch,
                "{configured}"
            );
        }
        for template in [
            "https://login.example.com/{tenantid}/{tenantid}/v2.0",
            "https://login.example.com{tenantid}/v2.0",
            "https://{tenantid}.example.com/organizations/v2.0",
        ] {
            d["issuer"] = json!(template);
            assert!(
                parse(&d, "https://login.example.com/organizations/v2.0").is_err(),
                "{template}"
            );
        }
        let exact = parse(&doc(), ISS).unwrap();
        assert!(exact.issuer_template.is_none());
    }

    #[test]
    fn pkce_methods_without_s256_is_a_configuration_error() {
        let mut d = doc();
        d["code_challenge_methods_supported"] = json!(["plain"]);
        assert_eq!(parse(&d, ISS).unwrap_err(), DiscoveryError::NoS256);
        d["code_challenge_methods_supported"] = json!(["plain", "S256"]);
        assert!(parse(&d, ISS).is_ok());
    }

    #[test]
    fn http_endpoints_are_refused_for_https_issuers() {
        let mut d = doc();
        d["token_endpoint"] = "http://login.example.com/t/token".into();
        assert_eq!(
            parse(&d, ISS).unwrap_err(),
            DiscoveryError::InsecureEndpoint("token_endpoint")
        );
    }

    #[test]
    fn loopback_issuer_may_use_http() {
        let d = json!({
            "issuer": "http://127.0.0.1:9000",
            "authorization_endpoint": "http://127.0.0.1:9000/auth",
            "token_endpoint": "http://127.0.0.1:9000/token",
            "jwks_uri": "http://127.0.0.1:9000/jwks",
            "end_session_endpoint": "http://127.0.0.1:9000/session/end",
            "authorization_response_iss_parameter_supported": true,
        });
        let m = parse(&d, "http://127.0.0.1:9000").unwrap();
        assert!(m.authorization_response_iss_parameter_supported);
    }

    #[test]
    fn garbage_is_unparsable() {
        assert!(matches!(
            ProviderMetadata::parse(b"<html>", &Issuer::new(ISS)),
            Err(DiscoveryError::Unparsable(_))
        ));
    }

    #[test]
    fn ttl_is_clamped() {
        assert_eq!(cache_ttl(None), 3600);
        assert_eq!(cache_ttl(Some("public, max-age=10")), 60);
        assert_eq!(cache_ttl(Some("max-age=7200")), 7200);
        assert_eq!(cache_ttl(Some("max-age=9999999")), 86400);
        assert_eq!(cache_ttl(Some("no-store")), 60);
        assert_eq!(cache_ttl(Some("max-age=abc")), 3600);
    }
}
