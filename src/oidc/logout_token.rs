//! Logout tokens, OpenID Connect Back-Channel Logout 1.0 section 2.6: the claim rules, over a
//! token whose signature the provider's keys already verified.

use serde::Deserialize;

use crate::oidc::id_token::{OneOrMany, MAX_CLOCK_SKEW_SECS};
use crate::jose::jws::VerifiedJws;
use crate::base::types::{ClientId, Issuer};

pub const BACKCHANNEL_LOGOUT_EVENT: &str = "http://schemas.openid.net/event/backchannel-logout";
/// A logout token older than this is refused (the provider sends it as the logout happens).
pub const MAX_LOGOUT_TOKEN_AGE_SECS: i64 = 300;

/// Which sessions to end: the provider session `sid`, or every session of `sub`, or both.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogoutRequest {
    pub sub: Option<String>,
    pub sid: Option<String>,
    pub jti: String,
    pub iat: i64,
}

#[derive(Debug, Deserialize)]
struct Claims {
    iss: String,
    aud: OneOrMany,
    #[serde(default)]
    iat: Option<i64>,
    #[serde(default)]
    exp: Option<i64>,
    #[serde(default)]
    jti: Option<String>,
    #[serde(default)]
    sub: Option<String>,
    #[serde(default)]
    sid: Option<String>,
    #[serde(default)]
    events: Option<serde_json::Map<String, serde_json::Value>>,
    #[serde(default)]
    nonce: Option<serde_json::Value>,
}

/// Checks a signature-verified logout token: explicit type when typed, issuer, audience, age,
/// the back-channel logout event, no nonce, and a `sub` or `sid` to act on.
pub fn validate(
    jws: &VerifiedJws,
    issuer: &Issuer,
    client_id: &ClientId,
    now: i64,
) -> Result<LogoutRequest, String> {
    if let Some(typ) = &jws.header().typ {
        let t = typ.to_ascii_lowercase();
        if t != "logout+jwt" && t != "application/logout+jwt" && t != "jwt" {
            return Err(format!("typ {typ:?} is not that of a logout token"));
        }
    }
    let c: Claims = serde_json::from_slice(jws.payload())
        .map_err(|e| format!("claims are not those of a logout token: {e}"))?;
    if c.iss != issuer.as_str() {
        return Err("iss is not the configured issuer".into());
    }
    if !c.aud.iter().any(|a| a == client_id.as_str()) {
        return Err("aud does not contain our client_id".into());
    }
    let iat = c.iat.ok_or("the token has no iat")?;
    if iat > now.saturating_add(MAX_CLOCK_SKEW_SECS) {
        return Err("iat is in the future".into());
    }
    if iat < now.saturating_sub(MAX_LOGOUT_TOKEN_AGE_SECS + MAX_CLOCK_SKEW_SECS) {
        return Err("the token is too old".into());
    }
    if c.exp
        .is_some_and(|exp| now >= exp.saturating_add(MAX_CLOCK_SKEW_SECS))
    {
        return Err("the token has expired".into());
    }
    let event_ok = c
        .events
        .as_ref()
        .and_then(|e| e.get(BACKCHANNEL_LOGOUT_EVENT))
        .is_some_and(serde_json::Value::is_object);
    if !event_ok {
        return Err("events has no back-channel logout event".into());
    }
    if c.nonce.is_some() {
        return Err("a logout token must not carry a nonce".into());
    }
    let sub = c.sub.filter(|s| !s.is_empty());
    let sid = c.sid.filter(|s| !s.is_empty());
    if sub.is_none() && sid.is_none() {
        return Err("the token names neither sub nor sid".into());
    }
    let jti = c
        .jti
        .filter(|j| !j.is_empty())
        .ok_or("the token has no jti")?;
    Ok(LogoutRequest { sub, sid, jti, iat })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jose::jws::{verify, RustVerifier, UnverifiedJws};
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

    fn check_typed(claims: &Value, typ: Option<&str>) -> Result<LogoutRequest, String> {
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
            NOW,
        )
    }

    fn check(claims: &Value) -> Result<LogoutRequest, String> {
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
