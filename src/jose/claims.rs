//! The one claims verifier: what ID tokens, access tokens and logout tokens share. The `typ`
//! header normalized once, NumericDate parsed one way, the registered claims (RFC 7519 4.1)
//! read once, and the time rules with their leeway. Each token kind adds its own rules.

use serde_json::Value;

use crate::base::time::UnixTime;
use crate::jose::jws::VerifiedJws;

/// A JWT `typ` header, lower-cased and without the `application/` prefix (RFC 7515 4.1.9).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Typ {
    /// No `typ` header.
    Absent,
    /// `JWT`.
    Jwt,
    /// `at+jwt` (RFC 9068).
    AccessToken,
    /// `logout+jwt` (Back-Channel Logout 1.0).
    LogoutToken,
    Other,
}

impl Typ {
    pub fn of(jws: &VerifiedJws) -> Self {
        let Some(typ) = jws.header().typ.as_deref() else {
            return Self::Absent;
        };
        let t = typ.to_ascii_lowercase();
        match t.strip_prefix("application/").unwrap_or(&t) {
            "jwt" => Self::Jwt,
            "at+jwt" => Self::AccessToken,
            "logout+jwt" => Self::LogoutToken,
            _ => Self::Other,
        }
    }
}

/// RFC 7519 NumericDate: seconds since the epoch; fractions are allowed and dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct NumericDate(i64);

impl NumericDate {
    pub fn secs(self) -> i64 {
        self.0
    }
}

impl NumericDate {
    /// A claim's value: a number (absent or `null` is `None`); anything else is refused.
    fn read(claims: &Value, name: &str) -> Result<Option<Self>, String> {
        let n = match claims.get(name) {
            None | Some(Value::Null) => return Ok(None),
            Some(Value::Number(n)) => n,
            Some(_) => return Err(format!("{name} is not a NumericDate")),
        };
        n.as_i64()
            .or_else(|| {
                n.as_f64()
                    .filter(|f| f.is_finite())
                    .map(|f| f.floor() as i64)
            })
            .map(|s| Some(Self(s)))
            .ok_or_else(|| format!("{name} is not a NumericDate"))
    }
}

/// `aud`: one string or an array of them.
#[derive(Debug, Clone, PartialEq)]
pub enum Audiences {
    One(String),
    Many(Vec<String>),
}

impl Audiences {
    pub fn iter(&self) -> impl Iterator<Item = &str> {
        let (one, many): (Option<&str>, &[String]) = match self {
            Self::One(s) => (Some(s.as_str()), &[]),
            Self::Many(v) => (None, v.as_slice()),
        };
        one.into_iter().chain(many.iter().map(String::as_str))
    }

    pub fn contains(&self, audience: &str) -> bool {
        self.iter().any(|a| a == audience)
    }
}

/// The registered claims every token kind has, parsed once.
#[derive(Debug)]
pub struct Registered {
    pub iss: String,
    pub sub: Option<String>,
    pub aud: Audiences,
    pub exp: Option<NumericDate>,
    pub nbf: Option<NumericDate>,
    pub iat: Option<NumericDate>,
}

impl Registered {
    /// Read from the claims object by hand: a derive would instantiate serde's buffering
    /// (`untagged`) and a second deserializer over `Value`, for six members. `iss` and `aud`
    /// are required; a member of the wrong type is refused, never skipped.
    fn read(claims: &Value) -> Result<Self, String> {
        if !claims.is_object() {
            return Err("the claims are not a JSON object".into());
        }
        let iss = match claims.get("iss") {
            Some(Value::String(s)) => s.clone(),
            None | Some(Value::Null) => return Err("missing field `iss`".into()),
            Some(_) => return Err("iss is not a string".into()),
        };
        let sub = match claims.get("sub") {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => Some(s.clone()),
            Some(_) => return Err("sub is not a string".into()),
        };
        let aud = match claims.get("aud") {
            Some(Value::String(s)) => Audiences::One(s.clone()),
            Some(Value::Array(items)) => Audiences::Many(
                items
                    .iter()
                    .map(|a| a.as_str().map(str::to_owned))
                    .collect::<Option<Vec<_>>>()
                    .ok_or("aud has a member that is not a string")?,
            ),
            None | Some(Value::Null) => return Err("missing field `aud`".into()),
            Some(_) => return Err("aud is neither a string nor an array of strings".into()),
        };
        Ok(Self {
            iss,
            sub,
            aud,
            exp: NumericDate::read(claims, "exp")?,
            nbf: NumericDate::read(claims, "nbf")?,
            iat: NumericDate::read(claims, "iat")?,
        })
    }

    /// `sub`, when present and not empty.
    pub fn subject(&self) -> Option<&str> {
        self.sub.as_deref().filter(|s| !s.is_empty())
    }
}

/// A token's claims: the registered ones typed, and all of them for the kind's own rules.
pub struct Claims {
    pub registered: Registered,
    pub all: Value,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClaimsError {
    /// The payload is not a JSON object with the registered claims' types.
    Shape(String),
    MissingExpiry,
    Expired,
    NotYetValid,
    MissingIssuedAt,
    IssuedInFuture,
    IssuedTooLongAgo,
}

impl Claims {
    pub fn parse(jws: &VerifiedJws) -> Result<Self, ClaimsError> {
        let all: Value =
            serde_json::from_slice(jws.payload()).map_err(|e| ClaimsError::Shape(e.to_string()))?;
        let registered = Registered::read(&all).map_err(ClaimsError::Shape)?;
        Ok(Self { registered, all })
    }

    /// A string claim, when present and a string (anything else reads as absent).
    pub fn str(&self, name: &str) -> Option<&str> {
        self.all.get(name).and_then(Value::as_str)
    }

    /// A string claim the token kind defines: absent or null is `None`; any other type makes
    /// the claims invalid rather than silently skipped.
    pub fn string(&self, name: &str) -> Result<Option<&str>, ClaimsError> {
        match self.all.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(_) => Err(ClaimsError::Shape(format!("{name} is not a string"))),
        }
    }

    pub fn has(&self, name: &str) -> bool {
        self.all.get(name).is_some_and(|v| !v.is_null())
    }

    /// The strings at a claim path such as `groups` or `realm_access.roles`: an array of
    /// strings, or one string as one value.
    pub fn string_list(&self, path: &str) -> Vec<String> {
        string_list(&self.all, path)
    }

    /// The scopes in `scp` or `scope`: an array of strings, or one space-separated string.
    pub fn scope_list(&self, path: &str) -> Vec<String> {
        scope_list(&self.all, path)
    }
}

/// The time rules, with `leeway` seconds of clock difference allowed each way.
#[derive(Debug, Clone, Copy)]
pub struct Clock {
    pub now: UnixTime,
    pub leeway: u64,
}

impl Clock {
    fn now(self) -> i64 {
        self.now.as_i64()
    }

    fn leeway(self) -> i64 {
        i64::try_from(self.leeway).unwrap_or(i64::MAX)
    }

    /// `exp` (required or not) is not past; `nbf`, when present, is not ahead.
    pub fn check_validity(self, c: &Registered, exp_required: bool) -> Result<(), ClaimsError> {
        match c.exp {
            Some(exp) if self.now() >= exp.secs().saturating_add(self.leeway()) => {
                return Err(ClaimsError::Expired)
            }
            None if exp_required => return Err(ClaimsError::MissingExpiry),
            _ => {}
        }
        if c.nbf
            .is_some_and(|nbf| nbf.secs() > self.now().saturating_add(self.leeway()))
        {
            return Err(ClaimsError::NotYetValid);
        }
        Ok(())
    }

    /// `iat` is not ahead, and, with `max_age`, not older than that (plus leeway).
    /// `Ok(None)` when absent and not required.
    pub fn check_issued(
        self,
        c: &Registered,
        required: bool,
        max_age: Option<u64>,
    ) -> Result<Option<NumericDate>, ClaimsError> {
        let Some(iat) = c.iat else {
            return if required {
                Err(ClaimsError::MissingIssuedAt)
            } else {
                Ok(None)
            };
        };
        if iat.secs() > self.now().saturating_add(self.leeway()) {
            return Err(ClaimsError::IssuedInFuture);
        }
        if let Some(max_age) = max_age {
            let oldest = self
                .now()
                .saturating_sub(i64::try_from(max_age).unwrap_or(i64::MAX))
                .saturating_sub(self.leeway());
            if iat.secs() < oldest {
                return Err(ClaimsError::IssuedTooLongAgo);
            }
        }
        Ok(Some(iat))
    }
}

/// The strings at a claim path such as `groups` or `realm_access.roles`: an array of strings,
/// or one string as one value. A group's or role's name may hold spaces (AD FS sends
/// `"Domain Admins"` as a lone string): it is never split into other names.
pub fn string_list(claims: &Value, path: &str) -> Vec<String> {
    match claim_at(claims, path) {
        Some(Value::String(s)) if !s.is_empty() => vec![s.clone()],
        v => array_strings(v),
    }
}

/// Scopes (`scp`, `scope`): an array of strings, or one space-separated string (RFC 8693 4.2,
/// RFC 9068 2.2.3).
pub fn scope_list(claims: &Value, path: &str) -> Vec<String> {
    match claim_at(claims, path) {
        Some(Value::String(s)) => s.split_whitespace().map(str::to_owned).collect(),
        v => array_strings(v),
    }
}

/// The claim named `path` as a whole (Auth0's namespaced claims are URLs:
/// `https://example.com/roles`), else a dotted path into objects (`realm_access.roles`).
fn claim_at<'a>(claims: &'a Value, path: &str) -> Option<&'a Value> {
    claims
        .get(path)
        .or_else(|| path.split('.').try_fold(claims, |v, part| v.get(part)))
}

fn array_strings(v: Option<&Value>) -> Vec<String> {
    match v {
        Some(Value::Array(items)) => items
            .iter()
            .filter_map(|i| i.as_str().map(str::to_owned))
            .collect(),
        _ => Vec::new(),
    }
}

/// Which claims hold a person's groups and roles (`GROUPS_CLAIM`, `ROLES_CLAIM`; dotted paths
/// allowed), for sessions and access tokens alike.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListClaims {
    pub groups: String,
    pub roles: String,
}

impl Default for ListClaims {
    fn default() -> Self {
        Self {
            groups: "groups".into(),
            roles: "roles".into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::jose::jws::{JoseHeader, JwsAlg};

    fn jws(typ: Option<&str>, claims: Value) -> VerifiedJws {
        VerifiedJws::assume_verified(
            JoseHeader {
                alg: JwsAlg::Es256,
                kid: None,
                typ: typ.map(str::to_owned),
            },
            claims.to_string().into_bytes(),
        )
    }

    #[test]
    fn typ_is_normalized_once() {
        for (typ, want) in [
            (None, Typ::Absent),
            (Some("JWT"), Typ::Jwt),
            (Some("application/jwt"), Typ::Jwt),
            (Some("AT+JWT"), Typ::AccessToken),
            (Some("application/at+jwt"), Typ::AccessToken),
            (Some("logout+jwt"), Typ::LogoutToken),
            (Some("secevent+jwt"), Typ::Other),
        ] {
            assert_eq!(Typ::of(&jws(typ, json!({}))), want, "{typ:?}");
        }
    }

    #[test]
    fn numeric_dates_allow_fractions_and_refuse_other_types() {
        let c = Claims::parse(&jws(None, json!({"iss":"i","aud":"a","exp":10.9,"iat":5}))).unwrap();
        assert_eq!(c.registered.exp, Some(NumericDate(10)));
        assert_eq!(c.registered.iat, Some(NumericDate(5)));
        assert!(Claims::parse(&jws(None, json!({"iss":"i","aud":"a","exp":"10"}))).is_err());
        assert!(Claims::parse(&jws(None, json!({"iss":"i","aud":7}))).is_err());
        assert!(Claims::parse(&jws(None, json!([1]))).is_err());
        // The registered members, each of its own type or refused.
        let many = Claims::parse(&jws(None, json!({"iss":"i","aud":["a","b"],"sub":null})));
        let many = many.unwrap().registered;
        assert_eq!(many.aud.iter().collect::<Vec<_>>(), ["a", "b"]);
        assert_eq!(many.sub, None);
        for bad in [
            json!({"aud":"a"}),
            json!({"iss":"i"}),
            json!({"iss":5,"aud":"a"}),
            json!({"iss":"i","aud":["a",5]}),
            json!({"iss":"i","aud":{"a":1}}),
            json!({"iss":"i","aud":"a","sub":1}),
            json!({"iss":"i","aud":"a","nbf":true}),
            json!({"iss":"i","aud":"a","iat":[1]}),
        ] {
            assert!(
                matches!(
                    Claims::parse(&jws(None, bad.clone())),
                    Err(ClaimsError::Shape(_))
                ),
                "{bad}"
            );
        }
        let c = Claims::parse(&jws(
            None,
            json!({"iss":"i","aud":"a","sid":5,"nonce":null,"n":"x"}),
        ))
        .unwrap();
        assert!(c.string("sid").is_err(), "present with another type");
        assert_eq!(c.string("nonce"), Ok(None));
        assert_eq!(c.string("n"), Ok(Some("x")));
    }

    #[test]
    fn time_rules_apply_the_leeway_both_ways() {
        let clock = Clock {
            now: UnixTime::from_secs(1000),
            leeway: 60,
        };
        let reg = |v: Value| Claims::parse(&jws(None, v)).unwrap().registered;
        let base = json!({"iss":"i","aud":"a"});
        let with = |k: &str, v: i64| {
            let mut b = base.clone();
            b[k] = v.into();
            reg(b)
        };
        assert_eq!(
            clock.check_validity(&reg(base.clone()), true),
            Err(ClaimsError::MissingExpiry)
        );
        assert_eq!(clock.check_validity(&reg(base.clone()), false), Ok(()));
        assert_eq!(clock.check_validity(&with("exp", 941), true), Ok(()));
        assert_eq!(
            clock.check_validity(&with("exp", 940), true),
            Err(ClaimsError::Expired)
        );
        assert_eq!(
            clock.check_validity(&with("nbf", 1061), false),
            Err(ClaimsError::NotYetValid)
        );
        assert_eq!(
            clock.check_issued(&with("iat", 1061), true, None),
            Err(ClaimsError::IssuedInFuture)
        );
        assert_eq!(
            clock.check_issued(&with("iat", 839), true, Some(100)),
            Err(ClaimsError::IssuedTooLongAgo)
        );
        assert_eq!(
            clock.check_issued(&with("iat", 840), true, Some(100)),
            Ok(Some(NumericDate(840)))
        );
        assert_eq!(
            clock.check_issued(&reg(base.clone()), true, None),
            Err(ClaimsError::MissingIssuedAt)
        );
        assert_eq!(clock.check_issued(&reg(base), false, None), Ok(None));
    }

    #[test]
    fn list_claims_follow_dotted_paths_and_only_scopes_are_split() {
        let v = json!({"realm_access":{"roles":["a","b"]},"scp":"x y","n":5,"group":"Domain Admins","e":""});
        assert_eq!(string_list(&v, "realm_access.roles"), vec!["a", "b"]);
        assert_eq!(scope_list(&v, "scp"), vec!["x", "y"]);
        assert_eq!(scope_list(&v, "realm_access.roles"), vec!["a", "b"]);
        // A lone group name with a space is one group, never "Domain" and "Admins".
        assert_eq!(string_list(&v, "group"), vec!["Domain Admins"]);
        // Auth0's namespaced claims are URLs, dots and all: the whole name first.
        let auth0 =
            json!({"https://example.com/roles": ["admin"], "https://example": {"com/x": ["no"]}});
        assert_eq!(
            string_list(&auth0, "https://example.com/roles"),
            vec!["admin"]
        );
        for path in ["n", "e", "missing.path", "scp.x"] {
            assert!(string_list(&v, path).is_empty(), "{path}");
        }
        assert!(scope_list(&v, "n").is_empty());
        let aud = Audiences::Many(vec!["a".into(), "b".into()]);
        assert!(aud.contains("b") && !aud.contains("c"));
        assert_eq!(
            Audiences::One("a".into()).iter().collect::<Vec<_>>(),
            vec!["a"]
        );
    }
}
