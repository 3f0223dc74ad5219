//! Step-up: what a path asks of how the person signed in (`acr:VALUE`, `acrs:ID` and
//! `fresh:DURATION` in `ACCESS_RULES`), what the authorization request then asks of the provider
//! (`acr_values`, `claims`, `max_age`), and the check of the provider's answer against what was
//! asked (OpenID Connect Core 3.1.3.7, steps 12 and 13).

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::base::time::UnixTime;

/// The shortest `fresh:`: signing in again and coming back must fit in it.
pub const MIN_FRESH_SECS: u64 = 60;
/// The longest `fresh:` (as long as the longest session).
pub const MAX_FRESH_SECS: u64 = 30 * 86_400;
/// An `auth_time` later than our clock by more than this is refused.
const FUTURE_SKEW_SECS: u64 = 300;
/// Values kept from a token: more or longer ones are not an authentication context.
const MAX_VALUES: usize = 16;
const MAX_VALUE_LEN: usize = 256;

/// How the person signed in, as the provider says: `acr` (the assurance level of the sign-in),
/// `amr` (its methods: `pwd`, `mfa`, `otp`...), Entra's `acrs` (the authentication contexts it
/// satisfied) and `auth_time` (when the person last actively authenticated).
/// Kept in the session with short names.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuthContext {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acr: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub amr: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub acrs: Vec<String>,
    #[serde(default, rename = "t", skip_serializing_if = "Option::is_none")]
    pub auth_time: Option<UnixTime>,
}

/// Nothing known of how the person signed in.
pub static NO_AUTH: AuthContext = AuthContext::NONE;

impl AuthContext {
    pub const NONE: Self = Self {
        acr: None,
        amr: Vec::new(),
        acrs: Vec::new(),
        auth_time: None,
    };

    pub fn is_empty(&self) -> bool {
        *self == Self::NONE
    }

    /// Reads the four claims of a verified token. One of another shape than the
    /// specification's (a string, arrays of strings, a non-negative integer; or longer than
    /// anything real) counts as absent: no requirement passes on it, and a sign-in that
    /// asked for none of them goes on.
    pub fn from_claims(claims: &Value) -> Self {
        let acr = match claims.get("acr") {
            Some(Value::String(s)) if s.len() <= MAX_VALUE_LEN => Some(s.clone()),
            _ => None,
        };
        Self {
            acr,
            amr: strings(claims.get("amr")).unwrap_or_default(),
            acrs: strings(claims.get("acrs")).unwrap_or_default(),
            auth_time: claims
                .get("auth_time")
                .and_then(Value::as_u64)
                .map(UnixTime::from_secs),
        }
    }

    /// Whether the person authenticated at most `secs` ago: never when the provider did not say
    /// when, nor when it says a time further ahead of our clock than the skew allowed.
    pub fn fresh_within(&self, secs: u64, now: UnixTime) -> bool {
        self.auth_time
            .is_some_and(|t| t <= now.plus(FUTURE_SKEW_SECS) && now.since(t) <= secs)
    }
}

/// An array of strings (Entra also writes a lone string); `None` for any other shape.
fn strings(v: Option<&Value>) -> Option<Vec<String>> {
    let ok = |s: &String| s.len() <= MAX_VALUE_LEN;
    match v {
        None | Some(Value::Null) => Some(Vec::new()),
        Some(Value::String(s)) if ok(s) => Some(vec![s.clone()]),
        Some(Value::Array(items)) if items.len() <= MAX_VALUES => items
            .iter()
            .map(|i| i.as_str().map(str::to_owned).filter(ok))
            .collect(),
        Some(_) => None,
    }
}

/// What a sign-in asks the provider for, beyond an ordinary one.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StepUp {
    /// `acr_values`: the sign-in's `acr` must be one of them.
    #[serde(default, rename = "a", skip_serializing_if = "Vec::is_empty")]
    pub acr: Vec<String>,
    /// Entra authentication contexts (`claims` asking for `acrs`): each must be satisfied.
    #[serde(default, rename = "c", skip_serializing_if = "Vec::is_empty")]
    pub acrs: Vec<String>,
    /// `max_age`, seconds: `auth_time` must be at most this old.
    #[serde(default, rename = "m", skip_serializing_if = "Option::is_none")]
    pub max_age: Option<u64>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StepUpError {
    AcrNotMet,
    AcrsNotMet,
    AuthTimeMissing,
    AuthTimeInFuture,
    TooOld,
}

impl std::fmt::Display for StepUpError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::AcrNotMet => "the ID token's acr is not one of the acr_values asked for",
            Self::AcrsNotMet => "the ID token's acrs lacks an authentication context asked for",
            Self::AuthTimeMissing => "max_age was asked for, but the ID token has no auth_time",
            Self::AuthTimeInFuture => "the ID token's auth_time is in the future",
            Self::TooOld => "the ID token's auth_time is older than the max_age asked for",
        })
    }
}

impl StepUp {
    pub fn is_empty(&self) -> bool {
        self.acr.is_empty() && self.acrs.is_empty() && self.max_age.is_none()
    }

    /// The authorization request's parameters for it: `acr_values` (space-separated, in
    /// order of preference), `claims` asking for the `acrs` as essential (Entra's
    /// authentication context), and `max_age`.
    pub fn auth_params(&self) -> Vec<(&'static str, String)> {
        let mut out = Vec::new();
        if !self.acr.is_empty() {
            out.push(("acr_values", self.acr.join(" ")));
        }
        if !self.acrs.is_empty() {
            let wanted = match self.acrs.as_slice() {
                [one] => serde_json::json!({ "essential": true, "value": one }),
                many => serde_json::json!({ "essential": true, "values": many }),
            };
            out.push((
                "claims",
                serde_json::json!({ "id_token": { "acrs": wanted } }).to_string(),
            ));
        }
        if let Some(m) = self.max_age {
            out.push(("max_age", m.to_string()));
        }
        out
    }

    /// The provider's answer against what was asked: the `acr` one of those asked, every
    /// context in `acrs`, and with `max_age` an `auth_time` present, not in the future and no
    /// older than asked. The same comparison the policy makes afterwards, so a sign-in that
    /// passes here is let in there (no loop through sign-in).
    pub fn check(&self, auth: &AuthContext, now: UnixTime) -> Result<(), StepUpError> {
        if !self.acr.is_empty() && !auth.acr.as_ref().is_some_and(|a| self.acr.contains(a)) {
            return Err(StepUpError::AcrNotMet);
        }
        if !self.acrs.iter().all(|c| auth.acrs.contains(c)) {
            return Err(StepUpError::AcrsNotMet);
        }
        if let Some(max_age) = self.max_age {
            let at = auth.auth_time.ok_or(StepUpError::AuthTimeMissing)?;
            if at > now.plus(FUTURE_SKEW_SECS) {
                return Err(StepUpError::AuthTimeInFuture);
            }
            if !auth.fresh_within(max_age, now) {
                return Err(StepUpError::TooOld);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const NOW: UnixTime = UnixTime::from_secs(1_800_000_000);

    fn ctx(acr: Option<&str>, acrs: &[&str], auth_age: Option<u64>) -> AuthContext {
        AuthContext {
            acr: acr.map(str::to_owned),
            amr: vec!["pwd".into()],
            acrs: acrs.iter().map(|s| s.to_string()).collect(),
            auth_time: auth_age.map(|a| NOW.minus(a)),
        }
    }

    #[test]
    fn claims_of_the_right_type_are_read() {
        let c = AuthContext::from_claims(&json!({
            "acr": "mfa", "amr": ["pwd", "otp"], "acrs": ["c1", "c2"], "auth_time": 1_700_000_000u64,
        }));
        assert_eq!(c.acr.as_deref(), Some("mfa"));
        assert_eq!(c.amr, ["pwd", "otp"]);
        assert_eq!(c.acrs, ["c1", "c2"]);
        assert_eq!(c.auth_time, Some(UnixTime::from_secs(1_700_000_000)));
        // Entra may write one context as a string; absent and null claims are absent.
        let c = AuthContext::from_claims(&json!({"acrs": "c1", "acr": null}));
        assert_eq!(c.acrs, ["c1"]);
        assert_eq!(AuthContext::from_claims(&json!({})), AuthContext::NONE);
    }

    #[test]
    fn claims_of_another_shape_count_as_absent() {
        for bad in [
            json!({"acr": 2}),
            json!({"acr": ["mfa"]}),
            json!({"amr": {"pwd": true}}),
            json!({"amr": [1]}),
            json!({"acrs": [true]}),
            json!({"auth_time": "1700000000"}),
            json!({"auth_time": -5}),
            json!({"auth_time": 1.5}),
            json!({"acr": "x".repeat(300)}),
            json!({"amr": vec!["pwd"; 17]}),
        ] {
            assert_eq!(AuthContext::from_claims(&bad), AuthContext::NONE, "{bad}");
        }
    }

    #[test]
    fn parameters_ask_for_each_part() {
        let s = StepUp {
            acr: vec!["mfa".into(), "phr".into()],
            acrs: vec!["c1".into()],
            max_age: Some(600),
        };
        let p = s.auth_params();
        assert_eq!(p[0], ("acr_values", "mfa phr".to_owned()));
        let claims: Value = serde_json::from_str(&p[1].1).unwrap();
        assert_eq!(
            claims,
            json!({"id_token": {"acrs": {"essential": true, "value": "c1"}}})
        );
        assert_eq!(p[2], ("max_age", "600".to_owned()));
        let two = StepUp {
            acrs: vec!["c1".into(), "c2".into()],
            ..StepUp::default()
        };
        let claims: Value = serde_json::from_str(&two.auth_params()[0].1).unwrap();
        assert_eq!(claims["id_token"]["acrs"]["values"], json!(["c1", "c2"]));
        assert!(StepUp::default().auth_params().is_empty());
        assert!(StepUp::default().is_empty());
    }

    #[test]
    fn the_answer_must_meet_what_was_asked() {
        let acr = StepUp {
            acr: vec!["mfa".into(), "phr".into()],
            ..StepUp::default()
        };
        assert_eq!(acr.check(&ctx(Some("phr"), &[], None), NOW), Ok(()));
        assert_eq!(
            acr.check(&ctx(Some("pwd"), &[], None), NOW),
            Err(StepUpError::AcrNotMet)
        );
        assert_eq!(
            acr.check(&ctx(None, &[], None), NOW),
            Err(StepUpError::AcrNotMet)
        );
        let acrs = StepUp {
            acrs: vec!["c1".into(), "c2".into()],
            ..StepUp::default()
        };
        assert_eq!(acrs.check(&ctx(None, &["c2", "c1"], None), NOW), Ok(()));
        assert_eq!(
            acrs.check(&ctx(None, &["c1"], None), NOW),
            Err(StepUpError::AcrsNotMet)
        );
        let fresh = StepUp {
            max_age: Some(600),
            ..StepUp::default()
        };
        assert_eq!(fresh.check(&ctx(None, &[], Some(600)), NOW), Ok(()));
        assert_eq!(fresh.check(&ctx(None, &[], Some(0)), NOW), Ok(()));
        assert_eq!(
            fresh.check(&ctx(None, &[], Some(601)), NOW),
            Err(StepUpError::TooOld)
        );
        assert_eq!(
            fresh.check(&ctx(None, &[], None), NOW),
            Err(StepUpError::AuthTimeMissing)
        );
        let mut future = ctx(None, &[], None);
        future.auth_time = Some(NOW.plus(FUTURE_SKEW_SECS + 1));
        assert_eq!(
            fresh.check(&future, NOW),
            Err(StepUpError::AuthTimeInFuture)
        );
        assert!(!future.fresh_within(600, NOW), "the policy refuses it too");
        future.auth_time = Some(NOW.plus(30));
        assert!(fresh.check(&future, NOW).is_ok());
        // Nothing asked: anything passes.
        assert!(StepUp::default().check(&AuthContext::NONE, NOW).is_ok());
    }
}
