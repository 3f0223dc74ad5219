//! APIs behind the gate: which issuers and audiences are trusted for Bearer tokens, and what
//! each route requires (`API_ROUTES`), matched on the normalized path only.
//!
//! `API_ROUTES` lists `METHODS PATTERN REQUIREMENT...` entries, one per line or separated by
//! `;`. METHODS is `*` or a comma list (`GET,HEAD`); a requirement is `scope:NAME`, `role:NAME`
//! or `any` (any valid token); several mean any of them. The first matching entry decides.

use crate::access::access_token::{TypPolicy, VerifiedAccessToken};
use crate::base::types::Issuer;
use crate::http::path::{PathPattern, RequestPath};

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ApiRequirement {
    Scope(String),
    Role(String),
    AnyToken,
}

/// What is wrong with an `API_ROUTES` entry (never its value beyond the entry's number).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RouteError(pub String);

/// The scopes and roles a route wants (space-separated), for `insufficient_scope`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Wanted(pub String);

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApiRoute {
    pub name: String,
    methods: Option<Vec<String>>,
    pattern: PathPattern,
    any_of: Vec<ApiRequirement>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApiConfig {
    pub issuers: Vec<Issuer>,
    pub audiences: Vec<String>,
    pub typ: TypPolicy,
    routes: Vec<ApiRoute>,
}

impl ApiConfig {
    pub fn new(
        issuers: Vec<Issuer>,
        audiences: Vec<String>,
        typ: TypPolicy,
        routes: Option<&str>,
    ) -> Result<Self, RouteError> {
        let mut parsed = Vec::new();
        let entries = routes
            .unwrap_or("")
            .split(['\n', ';'])
            .map(str::trim)
            .filter(|e| !e.is_empty() && !e.starts_with('#'));
        for (i, entry) in entries.enumerate() {
            let bad = |why: &str| RouteError(format!("route {}: {why}", i + 1));
            let mut tokens = entry.split_whitespace();
            let methods = match tokens.next() {
                Some("*") => None,
                Some(m)
                    if m.split(',')
                        .all(|x| !x.is_empty() && x.bytes().all(|b| b.is_ascii_uppercase())) =>
                {
                    Some(m.split(',').map(str::to_owned).collect())
                }
                _ => return Err(bad("start with * or upper-case methods like GET,HEAD")),
            };
            let pattern = tokens
                .next()
                .and_then(PathPattern::parse)
                .ok_or_else(|| bad("the pattern must be an absolute path or /dir/*"))?;
            let any_of = tokens
                .flat_map(|t| t.split(',').filter(|s| !s.is_empty()))
                .map(|t| match t.split_once(':') {
                    Some(("scope", v)) if !v.is_empty() => Ok(ApiRequirement::Scope(v.to_owned())),
                    Some(("role", v)) if !v.is_empty() => Ok(ApiRequirement::Role(v.to_owned())),
                    None if t == "any" => Ok(ApiRequirement::AnyToken),
                    _ => Err(bad("requirements are scope:NAME, role:NAME or any")),
                })
                .collect::<Result<Vec<_>, _>>()?;
            if any_of.is_empty() {
                return Err(bad(
                    "a route needs at least one requirement (any for any valid token)",
                ));
            }
            parsed.push(ApiRoute {
                name: format!("API_ROUTES[{}] {entry}", i + 1),
                methods,
                pattern,
                any_of,
            });
        }
        Ok(Self {
            issuers,
            audiences,
            typ,
            routes: parsed,
        })
    }

    pub fn route_for(&self, method: &str, path: &RequestPath) -> Option<&ApiRoute> {
        self.routes.iter().find(|r| {
            r.methods
                .as_ref()
                .is_none_or(|m| m.iter().any(|x| x == method))
                && r.pattern.covers(path)
        })
    }
}

impl ApiRoute {
    /// The reason it is allowed, or what the route wants instead.
    pub fn judge(&self, token: &VerifiedAccessToken) -> Result<String, Wanted> {
        for req in &self.any_of {
            match req {
                ApiRequirement::AnyToken => return Ok("any valid token".into()),
                ApiRequirement::Scope(s) if token.scopes.iter().any(|x| x == s) => {
                    return Ok(format!("scope:{s}"))
                }
                ApiRequirement::Role(r) if token.roles.iter().any(|x| x == r) => {
                    return Ok(format!("role:{r}"))
                }
                _ => {}
            }
        }
        let wanted: Vec<&str> = self
            .any_of
            .iter()
            .filter_map(|r| match r {
                ApiRequirement::Scope(s) | ApiRequirement::Role(s) => Some(s.as_str()),
                ApiRequirement::AnyToken => None,
            })
            .collect();
        Err(Wanted(wanted.join(" ")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(routes: &str) -> ApiConfig {
        ApiConfig::new(
            vec![Issuer::new("https://idp")],
            vec!["api".into()],
            TypPolicy::AtJwtOrJwt,
            Some(routes),
        )
        .unwrap()
    }

    fn path(p: &str) -> RequestPath {
        RequestPath::parse(p).unwrap()
    }

    #[test]
    fn routes_match_method_and_normalized_path_first_wins() {
        let c = cfg("GET,HEAD /api/data/* scope:data.read\nPOST /api/data/* scope:data.write role:Data.Writer; * /api/* any");
        assert_eq!(
            c.route_for("GET", &path("/api/data/1")).unwrap().name,
            "API_ROUTES[1] GET,HEAD /api/data/* scope:data.read"
        );
        assert!(c
            .route_for("POST", &path("/api/data"))
            .unwrap()
            .name
            .starts_with("API_ROUTES[2]"));
        assert!(c
            .route_for("DELETE", &path("/api/data/1"))
            .unwrap()
            .name
            .starts_with("API_ROUTES[3]"));
        assert!(c.route_for("GET", &path("/other")).is_none());
        assert!(c
            .route_for("GET", &path("//api/%64ata/x"))
            .unwrap()
            .name
            .starts_with("API_ROUTES[1]"));
    }

    #[test]
    fn bad_routes_are_refused() {
        for bad in [
            "get /a scope:x",
            "GET a scope:x",
            "GET /a",
            "GET /a scope:",
            "GET /a read",
        ] {
            assert!(
                ApiConfig::new(vec![], vec![], TypPolicy::AtJwtOrJwt, Some(bad)).is_err(),
                "{bad}"
            );
        }
    }
}
