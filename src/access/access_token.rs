//! Bearer access tokens for APIs behind the gate (RFC 9068 JWT access tokens, and Entra ID's
//! `typ: JWT` tokens): the claim rules, shared by every signature verifier.
//!
//! A [`VerifiedAccessToken`] can only be made here.

use crate::access::step_up::AuthContext;
use crate::base::time::UnixTime;
use crate::base::types::Issuer;
use crate::jose::claims::{Claims, ClaimsError, Clock, ListClaims, Typ};
use crate::jose::jws::VerifiedJws;

/// Clock leeway for `exp`, `nbf` and `iat` on access tokens.
pub const LEEWAY_SECS: u64 = 60;

/// Which `typ` headers are accepted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TypPolicy {
    /// RFC 9068 only: `at+jwt` (or `application/at+jwt`).
    AtJwtOnly,
    /// `at+jwt`, or plain `JWT` / none for providers that issue those (Entra ID, Auth0, Okta).
    AtJwtOrJwt,
}

pub struct AccessExpectations<'a> {
    pub issuers: &'a [Issuer],
    pub audiences: &'a [String],
    pub typ: TypPolicy,
    pub now: UnixTime,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AccessTokenError {
    Claims,
    WrongType,
    LooksLikeIdToken,
    UntrustedIssuer,
    WrongAudience,
    Expired,
    MissingExpiry,
    NotYetValid,
    IssuedInFuture,
    MissingSubject,
}

impl std::fmt::Display for AccessTokenError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl AccessTokenError {
    /// A fixed text, safe for the RFC 6750 `error_description`.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Claims => "the token's claims are not valid",
            Self::WrongType => "the token type is not that of an access token",
            Self::LooksLikeIdToken => "an ID token is not an access token",
            Self::UntrustedIssuer => "the token's issuer is not trusted",
            Self::WrongAudience => "the token is not for this API",
            Self::Expired => "the token has expired",
            Self::MissingExpiry => "the token has no expiry",
            Self::NotYetValid => "the token is not valid yet",
            Self::IssuedInFuture => "the token was issued in the future",
            Self::MissingSubject => "the token has no subject",
        }
    }
}

/// An access token that passed every rule. Only [`validate`] makes one.
#[allow(clippy::manual_non_exhaustive)] // the private field keeps other modules from building one
#[derive(Debug, Clone, PartialEq)]
pub struct VerifiedAccessToken {
    pub issuer: Issuer,
    /// The user (`sub`); RFC 9068 2.2 requires it (for client credentials, the client).
    pub subject: String,
    pub client: Option<String>,
    /// The `email` claim; never `preferred_username`, which is a login name, not an address.
    pub email: Option<String>,
    /// `email_verified`, when the token states it.
    pub email_verified: Option<bool>,
    pub scopes: Vec<String>,
    pub roles: Vec<String>,
    pub groups: Vec<String>,
    pub expires_at: UnixTime,
    /// How the person signed in (RFC 9068 2.2.1: `acr`, `amr`, `auth_time`), for step-up rules.
    pub auth: AuthContext,
    /// A multi-tenant API's token: the tenant its `iss` names, which its `tid` matched.
    pub tenant: Option<String>,
    _sealed: (),
}

impl VerifiedAccessToken {
    /// The tenant the gate matched between the token's `iss` and its `tid`.
    pub fn of_tenant(self, tenant: Option<String>) -> Self {
        Self { tenant, ..self }
    }
}

pub fn validate(
    jws: &VerifiedJws,
    expect: &AccessExpectations<'_>,
    lists: &ListClaims,
) -> Result<VerifiedAccessToken, AccessTokenError> {
    let typ_ok = matches!(
        (expect.typ, Typ::of(jws)),
        (_, Typ::AccessToken) | (TypPolicy::AtJwtOrJwt, Typ::Absent | Typ::Jwt)
    );
    if !typ_ok {
        return Err(AccessTokenError::WrongType);
    }
    let c = Claims::parse(jws).map_err(|_| AccessTokenError::Claims)?;
    // ID tokens carry these; access tokens never do (RFC 9068 2.2, OIDC Core 2).
    if c.has("nonce") || c.has("at_hash") || c.has("c_hash") {
        return Err(AccessTokenError::LooksLikeIdToken);
    }
    let r = &c.registered;
    if !expect.issuers.iter().any(|i| i.as_str() == r.iss) {
        return Err(AccessTokenError::UntrustedIssuer);
    }
    if !expect.audiences.iter().any(|want| r.aud.contains(want)) {
        return Err(AccessTokenError::WrongAudience);
    }
    let clock = Clock {
        now: expect.now,
        leeway: LEEWAY_SECS,
    };
    clock.check_validity(r, true).map_err(|e| match e {
        ClaimsError::MissingExpiry => AccessTokenError::MissingExpiry,
        ClaimsError::NotYetValid => AccessTokenError::NotYetValid,
        _ => AccessTokenError::Expired,
    })?;
    clock
        .check_issued(r, false, None)
        .map_err(|_| AccessTokenError::IssuedInFuture)?;
    // Scopes: `scp` (Entra: space-separated string; Okta: array) or `scope` (RFC 9068).
    let mut scopes = c.scope_list("scp");
    scopes.extend(c.scope_list("scope"));
    let string = |name| c.string(name).map_err(|_| AccessTokenError::Claims);
    let (client_id, azp, email) = (string("client_id")?, string("azp")?, string("email")?);
    let client = client_id
        .or(azp)
        .or_else(|| c.str("appid"))
        .map(str::to_owned);
    // RFC 9068 2.2: `sub` is required (for client credentials, it names the client).
    let subject = r
        .subject()
        .map(str::to_owned)
        .ok_or(AccessTokenError::MissingSubject)?;
    let email_verified = match c.all.get("email_verified") {
        Some(serde_json::Value::Bool(b)) => Some(*b),
        Some(serde_json::Value::String(s)) => Some(s.eq_ignore_ascii_case("true")),
        _ => None,
    };
    Ok(VerifiedAccessToken {
        subject,
        issuer: Issuer::new(r.iss.clone()),
        client,
        email: email.map(str::to_owned),
        email_verified,
        scopes,
        roles: c.string_list(&lists.roles),
        groups: c.string_list(&lists.groups),
        expires_at: r
            .exp
            .map_or(UnixTime::EPOCH, |e| UnixTime::from_i64(e.secs())),
        auth: AuthContext::from_claims(&c.all),
        tenant: None,
        _sealed: (),
    })
}

#[cfg(test)]
mod tests {
    use serde_json::{json, Value};

    use super::*;
    use crate::jose::jwks::JwkSet;
    use crate::jose::jws::UnverifiedJws;
    use crate::jose::verify::{self, RustVerifier};
    use crate::testing::{block_on, jwks_json, TestKey};

    const NOW: i64 = 1_800_000_000;
    const ISS: &str = "https://login.microsoftonline.com/tid/v2.0";
    const V1_ISS: &str = "https://sts.windows.net/tid/";
    const AUD: &str = "api://portcullis-api";

    fn rfc9068() -> Value {
        json!({"iss": ISS, "sub": "alice", "aud": AUD, "exp": NOW + 600, "iat": NOW, "client_id": "spa", "scope": "data.read profile", "jti": "1"})
    }

    fn entra_v2() -> Value {
        json!({"iss": ISS, "sub": "u1", "oid": "o1", "tid": "tid", "aud": "11111111-2222-3333-4444-555555555555", "exp": NOW + 600, "nbf": NOW - 5, "iat": NOW - 5,
               "scp": "data.read data.write", "roles": ["Data.Admin"], "azp": "client-app", "ver": "2.0", "preferred_username": "u1@contoso.com"})
    }

    fn check_with(
        key: &TestKey,
        header: Value,
        claims: &Value,
        typ: TypPolicy,
    ) -> Result<VerifiedAccessToken, String> {
        let token = key.sign_raw(&header, claims);
        let set = JwkSet::parse(&jwks_json(&[key])).unwrap();
        let jws = UnverifiedJws::parse(&token).map_err(|e| format!("jws: {e}"))?;
        let jwk = set.select(&jws.header).map_err(|e| format!("key: {e:?}"))?;
        let verified =
            block_on(verify::verify(&RustVerifier, jws, jwk)).map_err(|e| format!("sig: {e}"))?;
        let issuers = [Issuer::new(ISS), Issuer::new(V1_ISS)];
        let audiences = [
            AUD.to_owned(),
            "11111111-2222-3333-4444-555555555555".to_owned(),
        ];
        validate(
            &verified,
            &AccessExpectations {
                issuers: &issuers,
                audiences: &audiences,
                typ,
                now: UnixTime::from_i64(NOW),
            },
            &ListClaims::default(),
        )
        .map_err(|e| e.to_string())
    }

    fn at_header(key: &TestKey) -> Value {
        let mut h = key.header();
        h["typ"] = "at+jwt".into();
        h
    }

    fn check(key: &TestKey, claims: &Value) -> Result<VerifiedAccessToken, String> {
        check_with(key, at_header(key), claims, TypPolicy::AtJwtOrJwt)
    }

    fn with(mut c: Value, k: &str, v: Value) -> Value {
        c[k] = v;
        c
    }

    #[test]
    fn rfc9068_tokens_pass_with_rsa_ec_and_eddsa() {
        for key in [
            TestKey::rsa(Some("r")),
            TestKey::es256(Some("e")),
            TestKey::ed25519(Some("d")),
        ] {
            let t =
                check(&key, &rfc9068()).unwrap_or_else(|e| panic!("{}: {e}", key.default_alg()));
            assert_eq!(t.subject, "alice");
            assert_eq!(t.scopes, vec!["data.read", "profile"]);
            assert_eq!(t.client.as_deref(), Some("spa"));
        }
    }

    #[test]
    fn entra_v2_tokens_with_typ_jwt_scp_and_roles_pass() {
        let key = TestKey::rsa(Some("r"));
        let t = check_with(&key, key.header(), &entra_v2(), TypPolicy::AtJwtOrJwt).unwrap();
        assert_eq!(t.scopes, vec!["data.read", "data.write"]);
        assert_eq!(t.roles, vec!["Data.Admin"]);
        assert_eq!(t.email, None, "preferred_username is not an email");
    }

    #[test]
    fn entra_v1_issuer_is_accepted_when_listed() {
        let key = TestKey::rsa(Some("r"));
        let c = with(with(entra_v2(), "iss", V1_ISS.into()), "aud", AUD.into());
        assert!(check_with(&key, key.header(), &c, TypPolicy::AtJwtOrJwt).is_ok());
    }

    #[test]
    fn okta_array_scp_is_read() {
        let key = TestKey::es256(Some("e"));
        let t = check(&key, &with(rfc9068(), "scp", json!(["data.write"]))).unwrap();
        assert!(t.scopes.contains(&"data.write".to_owned()));
    }

    #[test]
    fn strict_typ_refuses_plain_jwt() {
        let key = TestKey::rsa(Some("r"));
        assert_eq!(
            check_with(&key, key.header(), &rfc9068(), TypPolicy::AtJwtOnly).unwrap_err(),
            "the token type is not that of an access token"
        );
        let mut h = key.header();
        h["typ"] = "logout+jwt".into();
        assert!(check_with(&key, h, &rfc9068(), TypPolicy::AtJwtOrJwt).is_err());
    }

    #[test]
    fn id_tokens_never_pass_as_access_tokens() {
        let key = TestKey::rsa(Some("r"));
        let id_token = json!({"iss": ISS, "sub": "alice", "aud": AUD, "exp": NOW + 600, "iat": NOW, "nonce": "n"});
        assert_eq!(
            check_with(&key, key.header(), &id_token, TypPolicy::AtJwtOrJwt).unwrap_err(),
            "an ID token is not an access token"
        );
        let with_hash = with(with(rfc9068(), "at_hash", "x".into()), "nonce", Value::Null);
        assert!(check(&key, &with_hash).is_err());
    }

    #[test]
    fn each_claim_rule_refuses_its_bad_token() {
        let key = TestKey::es256(Some("e"));
        let cases: Vec<(Value, &str)> = vec![
            (
                with(rfc9068(), "iss", "https://evil.example".into()),
                "the token's issuer is not trusted",
            ),
            (
                with(rfc9068(), "iss", format!("{ISS}/").into()),
                "the token's issuer is not trusted",
            ),
            (
                with(rfc9068(), "aud", "api://other".into()),
                "the token is not for this API",
            ),
            (
                with(rfc9068(), "aud", json!(["a", "b"])),
                "the token is not for this API",
            ),
            (
                with(rfc9068(), "exp", (NOW - LEEWAY_SECS as i64 - 1).into()),
                "the token has expired",
            ),
            (
                with(rfc9068(), "exp", Value::Null),
                "the token has no expiry",
            ),
            (
                with(rfc9068(), "nbf", (NOW + LEEWAY_SECS as i64 + 30).into()),
                "the token is not valid yet",
            ),
            (
                with(rfc9068(), "iat", (NOW + LEEWAY_SECS as i64 + 30).into()),
                "the token was issued in the future",
            ),
            (
                with(rfc9068(), "aud", 7.into()),
                "the token's claims are not valid",
            ),
            (
                with(rfc9068(), "sub", Value::Null),
                "the token has no subject",
            ),
            (
                with(rfc9068(), "sub", "".into()),
                "the token has no subject",
            ),
        ];
        for (claims, want) in cases {
            assert_eq!(check(&key, &claims).unwrap_err(), want, "{claims}");
        }
        assert!(
            check(&key, &with(rfc9068(), "exp", (NOW - 30).into())).is_ok(),
            "within leeway"
        );
        assert!(check(&key, &with(rfc9068(), "aud", json!(["other", AUD]))).is_ok());
    }
}
