//! Logout tokens, OpenID Connect Back-Channel Logout 1.0 section 2.6: the claim rules, over a
//! token whose signature the provider's keys already verified.

use crate::base::time::UnixTime;
use crate::base::types::{ClientId, Issuer};
use crate::jose::claims::{Claims, ClaimsError, Clock, Typ};
use crate::jose::jws::VerifiedJws;
use crate::oidc::id_token::MAX_CLOCK_SKEW_SECS;

pub const BACKCHANNEL_LOGOUT_EVENT: &str = "http://schemas.openid.net/event/backchannel-logout";
/// A logout token older than this is refused (the provider sends it as the logout happens).
pub const MAX_LOGOUT_TOKEN_AGE_SECS: u64 = 300;

/// Which sessions to end: the provider session `sid`, or every session of `sub`, or both.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogoutRequest {
    pub sub: Option<String>,
    pub sid: Option<String>,
    pub jti: String,
    pub iat: i64,
    /// Until when this token could be accepted: its `jti` is remembered that long.
    pub acceptable_until: UnixTime,
}

/// Why a logout token is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LogoutTokenError {
    /// The `typ` header, cut short and printable.
    WrongType(String),
    Claims(ClaimsError),
    IssuerMismatch,
    AudienceMismatch,
    TooOld,
    NoLogoutEvent,
    HasNonce,
    NoSubjectOrSid,
    NoJti,
}

impl std::fmt::Display for LogoutTokenError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::WrongType(typ) => return write!(f, "typ {typ:?} is not that of a logout token"),
            Self::Claims(ClaimsError::Shape(e)) => {
                return write!(f, "claims are not those of a logout token: {e}")
            }
            Self::Claims(ClaimsError::MissingIssuedAt) => "the token has no iat",
            Self::Claims(ClaimsError::IssuedInFuture) => "iat is in the future",
            Self::Claims(ClaimsError::Expired) => "the token has expired",
            Self::Claims(_) => "the token's times are not valid",
            Self::IssuerMismatch => "iss is not the configured issuer",
            Self::AudienceMismatch => "aud does not contain our client_id",
            Self::TooOld => "the token is too old",
            Self::NoLogoutEvent => "events has no back-channel logout event",
            Self::HasNonce => "a logout token must not carry a nonce",
            Self::NoSubjectOrSid => "the token names neither sub nor sid",
            Self::NoJti => "the token has no jti",
        })
    }
}

/// Checks a signature-verified logout token: explicit type when typed, issuer, audience, age,
/// the back-channel logout event, no nonce, and a `sub` or `sid` to act on.
pub fn validate(
    jws: &VerifiedJws,
    issuer: &Issuer,
    client_id: &ClientId,
    now: UnixTime,
) -> Result<LogoutRequest, LogoutTokenError> {
    if !matches!(Typ::of(jws), Typ::Absent | Typ::Jwt | Typ::LogoutToken) {
        let typ = jws.header().typ.as_deref().unwrap_or_default();
        let shown = typ
            .chars()
            .filter(|c| c.is_ascii_graphic())
            .take(40)
            .collect();
        return Err(LogoutTokenError::WrongType(shown));
    }
    let c = Claims::parse(jws).map_err(LogoutTokenError::Claims)?;
    let r = &c.registered;
    if r.iss != issuer.as_str() {
        return Err(LogoutTokenError::IssuerMismatch);
    }
    if !r.aud.contains(client_id.as_str()) {
        return Err(LogoutTokenError::AudienceMismatch);
    }
    let clock = Clock {
        now,
        leeway: MAX_CLOCK_SKEW_SECS,
    };
    let iat = clock
        .check_issued(r, true, Some(MAX_LOGOUT_TOKEN_AGE_SECS))
        .map_err(|e| match e {
            ClaimsError::IssuedTooLongAgo => LogoutTokenError::TooOld,
            other => LogoutTokenError::Claims(other),
        })?
        .map_or(0, |d| d.secs());
    clock
        .check_validity(r, false)
        .map_err(LogoutTokenError::Claims)?;
    let event_ok = c
        .all
        .get("events")
        .and_then(|e| e.get(BACKCHANNEL_LOGOUT_EVENT))
        .is_some_and(serde_json::Value::is_object);
    if !event_ok {
        return Err(LogoutTokenError::NoLogoutEvent);
    }
    if c.has("nonce") {
        return Err(LogoutTokenError::HasNonce);
    }
    let sub = r.subject().map(str::to_owned);
    let sid = c
        .string("sid")
        .map_err(LogoutTokenError::Claims)?
        .filter(|s| !s.is_empty())
        .map(str::to_owned);
    if sub.is_none() && sid.is_none() {
        return Err(LogoutTokenError::NoSubjectOrSid);
    }
    let jti = c
        .string("jti")
        .map_err(LogoutTokenError::Claims)?
        .filter(|j| !j.is_empty())
        .ok_or(LogoutTokenError::NoJti)?
        .to_owned();
    // Accepted while iat is young enough and exp (if any) not past, each with the leeway.
    let by_age = UnixTime::from_i64(iat).plus(MAX_LOGOUT_TOKEN_AGE_SECS + MAX_CLOCK_SKEW_SECS);
    let acceptable_until = match r.exp {
        Some(exp) => by_age.min(UnixTime::from_i64(exp.secs()).plus(MAX_CLOCK_SKEW_SECS)),
        None => by_age,
    };
    Ok(LogoutRequest {
        sub,
        sid,
        jti,
        iat,
        acceptable_until,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jose::jws::UnverifiedJws;
    use crate::jose::verify::{verify, RustVerifier};
    use crate::testing::{block_on, jwks_json, TestKey};
    use serde_json::{json, Value};

    const NOW: i64 = 1_800_000_000;

    fn good() -> Value {
        json!({
            "iss": "https://idp", "aud": "client", "iat": NOW - 5, "exp": NOW + 120,
            "jti": "j-1", "sub": "alice", "sid": "s-1",
            "events": {BACKCHANNEL_LOGOUT_EVENT: {}},
        })
    }

    fn check_typed(claims: &Value, typ: Option<&str>) -> Result<LogoutRequest, LogoutTokenError> {
        let key = TestKey::es256(Some("k"));
        let mut header = key.header();
        match typ {
            Some(t) => header["typ"] = t.into(),
            None => {
                header.as_object_mut().unwrap().remove("typ");
            }
        }
        let token = key.sign_raw(&header, claims);
        let jws = UnverifiedJws::parse(&token).unwrap();
        let set = crate::jose::jwks::JwkSet::parse(&jwks_json(&[&key])).unwrap();
        let jwk = set.select(&jws.header).unwrap();
        let verified = block_on(verify(&RustVerifier, jws, jwk)).unwrap();
        validate(
            &verified,
            &Issuer::new("https://idp"),
            &ClientId::new("client"),
            UnixTime::from_i64(NOW),
        )
    }

    fn check(claims: &Value) -> Result<LogoutRequest, LogoutTokenError> {
        check_typed(claims, Some("logout+jwt"))
    }

    fn without(field: &str) -> Value {
        let mut c = good();
        c.as_object_mut().unwrap().remove(field);
        c
    }

    fn with(field: &str, v: Value) -> Value {
        let mut c = good();
        c[field] = v;
        c
    }

    #[test]
    fn a_good_logout_token_names_the_sessions() {
        let r = check(&good()).unwrap();
        assert_eq!(r.sub.as_deref(), Some("alice"));
        assert_eq!(r.sid.as_deref(), Some("s-1"));
        assert!(check(&without("sub")).is_ok(), "sid alone is enough");
        assert!(check(&without("sid")).is_ok(), "sub alone is enough");
        assert!(check(&without("exp")).is_ok(), "exp is optional");
        assert!(check_typed(&good(), None).is_ok());
    }

    #[test]
    fn every_rule_refuses_its_bad_token() {
        let bad = [
            ("wrong issuer", with("iss", json!("https://evil"))),
            ("wrong audience", with("aud", json!(["other"]))),
            ("no iat", without("iat")),
            ("old", with("iat", json!(NOW - 3600))),
            ("future", with("iat", json!(NOW + 3600))),
            ("expired", with("exp", json!(NOW - 3600))),
            ("no events", without("events")),
            (
                "other event",
                with("events", json!({"http://example.com/other": {}})),
            ),
            (
                "event not an object",
                with("events", json!({BACKCHANNEL_LOGOUT_EVENT: "x"})),
            ),
            ("nonce", with("nonce", json!("n"))),
            ("sid not a string", with("sid", json!(5))),
            ("jti not a string", with("jti", json!(7))),
            ("no jti", without("jti")),
            ("neither sub nor sid", {
                let mut c = without("sub");
                c.as_object_mut().unwrap().remove("sid");
                c
            }),
        ];
        for (name, claims) in bad {
            assert!(check(&claims).is_err(), "{name} was accepted");
        }
        assert!(check_typed(&good(), Some("at+jwt")).is_err());
    }
}
