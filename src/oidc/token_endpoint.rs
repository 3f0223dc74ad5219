//! The token endpoint: the one builder of client-authenticated requests (token, refresh,
//! revocation) and its answers (RFC 6749 5.1 / 5.2).

use serde::Deserialize;

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;

use crate::base::random::random_token;
use crate::base::secret::secret_type;
use crate::base::time::UnixTime;
use crate::config::providers::ProviderConfig;
use crate::config::TokenAuthMethod;
use crate::http::http_url::HttpUrl;
use crate::http::{OutboundRequest, Response};
use crate::jose::signing_key::SigningKey;
use crate::jose::verify::SignatureVerifier;
use crate::platform::Platform;

secret_type!(
    /// The raw ID token JWT as received.
    RawIdToken(String)
);
secret_type!(
    /// An OAuth access token.
    AccessToken(String)
);
secret_type!(
    /// An OAuth refresh token.
    RefreshToken(String)
);

#[derive(Debug)]
pub struct TokenResponse {
    pub id_token: RawIdToken,
    pub access_token: Option<AccessToken>,
    /// Seconds until the access token expires, when the provider says.
    pub expires_in: Option<u64>,
    /// Issued with `offline_access` (or always, by some providers).
    pub refresh_token: Option<RefreshToken>,
}

/// The answer to a refresh (RFC 6749 6): the ID token is optional (OIDC Core 12.2).
#[derive(Debug)]
pub struct RefreshResponse {
    pub id_token: Option<RawIdToken>,
    pub access_token: Option<AccessToken>,
    pub expires_in: Option<u64>,
    /// A new refresh token when the provider rotates them; `None` keeps the old one.
    pub refresh_token: Option<RefreshToken>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenError {
    /// The provider refused (`invalid_grant` for a used or expired code).
    Refused {
        status: u16,
        error: String,
        description: Option<String>,
    },
    /// Not the JSON a token endpoint answers with.
    Malformed(String),
    /// A successful answer without an ID token: not an OpenID Connect response.
    NoIdToken,
}

impl std::fmt::Display for TokenError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Refused {
                status,
                error,
                description,
            } => {
                write!(f, "token endpoint answered {status} {error}")?;
                if let Some(d) = description {
                    write!(f, ": {}", d.chars().take(200).collect::<String>())?;
                }
                Ok(())
            }
            Self::Malformed(e) => write!(f, "token endpoint answer is not valid: {e}"),
            Self::NoIdToken => f.write_str("token endpoint answered without an id_token"),
        }
    }
}

#[derive(Deserialize)]
struct Success {
    #[serde(default)]
    id_token: Option<String>,
    #[serde(default)]
    access_token: Option<String>,
    #[serde(default)]
    token_type: Option<String>,
    #[serde(default)]
    expires_in: Option<serde_json::Value>,
    #[serde(default)]
    refresh_token: Option<String>,
}

#[derive(Deserialize)]
struct Failure {
    error: String,
    #[serde(default)]
    error_description: Option<String>,
}

impl TokenResponse {
    /// The answer to the authorization code grant: it must carry an ID token.
    pub fn parse(resp: &Response) -> Result<Self, TokenError> {
        let r = RefreshResponse::parse(resp)?;
        Ok(Self {
            id_token: r.id_token.ok_or(TokenError::NoIdToken)?,
            access_token: r.access_token,
            expires_in: r.expires_in,
            refresh_token: r.refresh_token,
        })
    }
}

/// The answer's fields: a JSON object, or a form-encoded body when the provider says so
/// (GitHub without `Accept: application/json`).
fn answer_fields(resp: &Response) -> Result<serde_json::Value, String> {
    let form = resp.headers.get("Content-Type").is_some_and(|t| {
        t.trim_start()
            .starts_with("application/x-www-form-urlencoded")
    });
    if form {
        let fields: serde_json::Map<String, serde_json::Value> = form_urlencoded::parse(&resp.body)
            .map(|(k, v)| (k.into_owned(), serde_json::Value::String(v.into_owned())))
            .collect();
        return Ok(serde_json::Value::Object(fields));
    }
    match serde_json::from_slice(&resp.body) {
        Ok(v @ serde_json::Value::Object(_)) => Ok(v),
        Ok(_) => Err("not a JSON object".into()),
        Err(e) => Err(e.to_string()),
    }
}

impl RefreshResponse {
    pub fn parse(resp: &Response) -> Result<Self, TokenError> {
        let fields = answer_fields(resp);
        // An `error` is a refusal whatever the status: GitHub answers its errors with a 200.
        let failure = fields
            .as_ref()
            .ok()
            .and_then(|f| Failure::deserialize(f).ok());
        if let Some(f) = failure {
            return Err(TokenError::Refused {
                status: resp.status,
                error: printable(&f.error, 64),
                description: f.error_description.map(|d| printable(&d, 200)),
            });
        }
        if resp.status != 200 {
            // A redirect among them: the gate follows none (a code and its verifier are posted
            // to the token endpoint discovery names, nowhere else).
            return Err(TokenError::Refused {
                status: resp.status,
                error: "unexpected_response".into(),
                description: Some(format!("the token endpoint answered {}", resp.status)),
            });
        }
        let s = fields
            .and_then(|f| Success::deserialize(f).map_err(|e| e.to_string()))
            .map_err(TokenError::Malformed)?;
        // RFC 6749 5.1: both are required; and a token of another type than Bearer (DPoP, which
        // the gate never asks for) must not be passed on as one.
        if !s
            .token_type
            .as_deref()
            .is_some_and(|t| t.eq_ignore_ascii_case("bearer"))
        {
            return Err(TokenError::Malformed(match s.token_type {
                Some(_) => "token_type is not Bearer".into(),
                None => "the answer has no token_type".into(),
            }));
        }
        let non_empty = |t: Option<String>| t.filter(|t| !t.is_empty());
        let access_token = non_empty(s.access_token)
            .ok_or_else(|| TokenError::Malformed("the answer has no access_token".into()))?;
        Ok(Self {
            id_token: non_empty(s.id_token).map(RawIdToken::new),
            access_token: Some(AccessToken::new(access_token)),
            // Some providers send a string ("3600").
            expires_in: s.expires_in.and_then(|v| {
                v.as_u64()
                    .or_else(|| v.as_str().and_then(|t| t.parse().ok()))
            }),
            refresh_token: non_empty(s.refresh_token).map(RefreshToken::new),
        })
    }
}

secret_type!(
    /// A signed client assertion (`private_key_jwt`): good for one call.
    ClientAssertion(String)
);

/// How long a client assertion is good for.
pub const ASSERTION_TTL_SECS: u64 = 300;

/// The signing input of a client assertion (RFC 7523 3): `iss` and `sub` the client, `aud` the
/// token endpoint, a fresh `jti`, five minutes.
pub fn assertion_input(
    cfg: &ProviderConfig,
    key: &SigningKey,
    aud: &HttpUrl,
    now: UnixTime,
    jti: &str,
) -> String {
    let claims = serde_json::json!({
        "iss": cfg.client_id.as_str(), "sub": cfg.client_id.as_str(), "aud": aud.as_str(),
        "jti": jti, "iat": now, "nbf": now, "exp": now.plus(ASSERTION_TTL_SECS),
    });
    format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(key.header().to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    )
}

/// A fresh assertion for `private_key_jwt` (signed by the platform: WebCrypto in the worker);
/// `None` for the other methods. `aud` is the provider's token endpoint, whichever endpoint
/// the call goes to (RFC 9126 2 accepts it at the pushed authorization endpoint too).
pub async fn client_assertion<P: Platform>(
    platform: &P,
    cfg: &ProviderConfig,
    aud: &HttpUrl,
) -> Result<Option<ClientAssertion>, String> {
    let Some(key) = cfg.client_key.as_ref() else {
        return Ok(None);
    };
    let jti = random_token().map_err(|_| "no randomness for the client assertion".to_owned())?;
    let input = assertion_input(cfg, key, aud, platform.now(), &jti);
    let signature = platform
        .verifier()
        .sign(key, input.as_bytes())
        .await
        .map_err(|e| format!("signing the client assertion: {e}"))?;
    Ok(Some(ClientAssertion::new(format!(
        "{input}.{}",
        URL_SAFE_NO_PAD.encode(signature)
    ))))
}

/// A form POST from the confidential client to one of the provider's endpoints (token,
/// revocation, pushed authorization), authenticated as `OIDC_TOKEN_AUTH_METHOD` says;
/// `assertion` is the one [`client_assertion`] made for `private_key_jwt`.
pub fn client_request(
    cfg: &ProviderConfig,
    endpoint: &HttpUrl,
    params: &[(&str, &str)],
    assertion: Option<&ClientAssertion>,
) -> OutboundRequest {
    let mut form = form_urlencoded::Serializer::new(String::new());
    form.extend_pairs(params);
    let mut req = OutboundRequest::get(endpoint);
    req.method = "POST";
    req.headers
        .append("Content-Type", "application/x-www-form-urlencoded");
    req.headers.append("Accept", "application/json");
    match cfg.token_auth_method {
        TokenAuthMethod::ClientSecretBasic => {
            req.headers.append(
                "Authorization",
                basic_auth(cfg.client_id.as_str(), cfg.client_secret.secret()),
            );
        }
        TokenAuthMethod::ClientSecretPost => {
            // A pushed authorization request carries `client_id` already: never twice.
            if !params.iter().any(|(k, _)| *k == "client_id") {
                form.append_pair("client_id", cfg.client_id.as_str());
            }
            form.append_pair("client_secret", cfg.client_secret.secret());
        }
        TokenAuthMethod::PrivateKeyJwt => {
            if !params.iter().any(|(k, _)| *k == "client_id") {
                form.append_pair("client_id", cfg.client_id.as_str());
            }
            form.append_pair(
                "client_assertion_type",
                "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            );
            // Without one the provider refuses the call, and says so.
            form.append_pair(
                "client_assertion",
                assertion.map(|a| a.secret().as_str()).unwrap_or_default(),
            );
        }
    }
    req.body = Some(form.finish());
    req
}

/// RFC 6749 2.3.1: both parts form-urlencoded before base64.
fn basic_auth(id: &str, secret: &str) -> String {
    let enc = |s: &str| form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
    format!(
        "Basic {}",
        STANDARD.encode(format!("{}:{}", enc(id), enc(secret)))
    )
}

/// Provider-supplied text, cut short and stripped of control characters, for logs and pages.
pub fn printable(s: &str, max: usize) -> String {
    s.chars().filter(|c| !c.is_control()).take(max).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_auth_form_encodes_special_characters() {
        assert_eq!(
            basic_auth("a:b", "p@ss word"),
            format!("Basic {}", STANDARD.encode("a%3Ab:p%40ss+word"))
        );
    }

    fn resp(status: u16, body: &str) -> Response {
        Response::new(status).with_body("application/json", body)
    }

    #[test]
    fn success_with_id_token() {
        let t = TokenResponse::parse(&resp(
            200,
            r#"{"id_token":"a.b.c","access_token":"at","token_type":"Bearer","expires_in":3600}"#,
        ))
        .unwrap();
        assert_eq!(t.id_token.secret(), "a.b.c");
        assert_eq!(t.access_token.unwrap().secret(), "at");
    }

    #[test]
    fn refusal_carries_the_oauth_error() {
        let e = TokenResponse::parse(&resp(
            400,
            r#"{"error":"invalid_grant","error_description":"grant request is invalid"}"#,
        ))
        .unwrap_err();
        assert_eq!(
            e,
            TokenError::Refused {
                status: 400,
                error: "invalid_grant".into(),
                description: Some("grant request is invalid".into())
            }
        );
    }

    #[test]
    fn errors_in_a_200_and_form_encoded_answers_are_read() {
        let e = RefreshResponse::parse(&resp(
            200,
            r#"{"error":"bad_verification_code","error_description":"The code passed is incorrect or expired."}"#,
        ))
        .unwrap_err();
        assert!(
            matches!(e, TokenError::Refused { status: 200, ref error, .. } if error == "bad_verification_code")
        );
        let form = |body: &str| {
            Response::new(200).with_body("application/x-www-form-urlencoded; charset=utf-8", body)
        };
        let ok = RefreshResponse::parse(&form(
            "access_token=gho_x&scope=read%3Aorg&token_type=bearer",
        ))
        .unwrap();
        assert_eq!(ok.access_token.unwrap().secret(), "gho_x");
        let e = RefreshResponse::parse(&form("error=incorrect_client_credentials")).unwrap_err();
        assert!(matches!(e, TokenError::Refused { .. }));
        assert!(matches!(
            RefreshResponse::parse(&resp(200, "access_token=x")).unwrap_err(),
            TokenError::Malformed(_)
        ));
        assert!(matches!(
            RefreshResponse::parse(&resp(200, "[1]")).unwrap_err(),
            TokenError::Malformed(_)
        ));
    }

    #[test]
    fn html_error_pages_are_refusals_too() {
        let e = TokenResponse::parse(&resp(502, "<html>bad gateway</html>")).unwrap_err();
        assert!(matches!(e, TokenError::Refused { status: 502, .. }));
    }

    #[test]
    fn refresh_answers_may_lack_an_id_token_and_carry_a_new_refresh_token() {
        let r = RefreshResponse::parse(&resp(
            200,
            r#"{"access_token":"at2","token_type":"Bearer","expires_in":"60","refresh_token":"rt2"}"#,
        ))
        .unwrap();
        assert!(r.id_token.is_none());
        assert_eq!(r.expires_in, Some(60));
        assert_eq!(r.refresh_token.unwrap().secret(), "rt2");
        assert_eq!(
            format!("{:?}", RefreshToken::new("x".into())),
            "RefreshToken([redacted])"
        );
        let code = TokenResponse::parse(&resp(
            200,
            r#"{"id_token":"a.b.c","access_token":"at","token_type":"bearer","refresh_token":"rt"}"#,
        ))
        .unwrap();
        assert_eq!(code.refresh_token.unwrap().secret(), "rt");
    }

    /// RFC 6749 5.1: `access_token` and `token_type` are required, and the type must be
    /// Bearer: a DPoP-bound token (never asked for) would otherwise be passed on as a Bearer one.
    #[test]
    fn an_answer_without_an_access_token_or_not_of_type_bearer_is_refused() {
        for body in [
            r#"{"id_token":"a.b.c","access_token":"at"}"#,
            r#"{"id_token":"a.b.c","access_token":"at","token_type":"DPoP"}"#,
            r#"{"id_token":"a.b.c","access_token":"at","token_type":"mac"}"#,
            r#"{"id_token":"a.b.c","token_type":"Bearer"}"#,
            r#"{"id_token":"a.b.c","access_token":"","token_type":"Bearer"}"#,
        ] {
            let e = TokenResponse::parse(&resp(200, body)).err();
            assert!(matches!(e, Some(TokenError::Malformed(_))), "{body}: {e:?}");
            let e = RefreshResponse::parse(&resp(200, body)).err();
            assert!(matches!(e, Some(TokenError::Malformed(_))), "{body}: {e:?}");
        }
    }

    /// A redirect is not followed (glue.js `send`): the log says what the endpoint answered.
    #[test]
    fn a_redirect_from_the_token_endpoint_is_a_refusal_that_names_its_status() {
        let e = TokenResponse::parse(&resp(307, "")).unwrap_err();
        assert!(matches!(e, TokenError::Refused { status: 307, .. }));
        assert!(e.to_string().contains("307"), "{e}");
    }

    #[test]
    fn success_without_id_token_is_refused() {
        assert_eq!(
            TokenResponse::parse(&resp(200, r#"{"access_token":"x","token_type":"Bearer"}"#)).err(),
            Some(TokenError::NoIdToken)
        );
        assert!(matches!(
            TokenResponse::parse(&resp(200, "nope")).err(),
            Some(TokenError::Malformed(_))
        ));
        assert!(matches!(
            TokenResponse::parse(&resp(200, r#"{"id_token":"a","token_type":"mac"}"#)).err(),
            Some(TokenError::Malformed(_))
        ));
    }

    #[test]
    fn provider_text_is_sanitised() {
        assert_eq!(printable("a\r\nb\u{7}c", 10), "abc");
        assert_eq!(printable(&"x".repeat(500), 5), "xxxxx");
    }
}
