//! APIs behind the gate: which issuers and audiences are trusted for Bearer tokens, and what
//! each route requires (`API_ROUTES`), matched on the normalized path only.
//!
//! `API_ROUTES` lists `METHODS PATTERN REQUIREMENT...` entries, one per line or separated by
//! `;`. METHODS is `*` or a comma list (`GET,HEAD`); a requirement is `scope:NAME`, `role:NAME`
//! or `any` (any valid token); several mean any of them. The first matching entry decides.

use crate::access::access_token::{TypPolicy, VerifiedAccessToken};
use crate::base::types::Issuer;
use crate::http::path::{PathPattern, RequestPath};
use crate::http::Method;

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
    /// The upstream is Workers Static Assets: routes judge asset resources.
    assets: bool,
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
            assets: false,
        })
    }

    /// The entry for a request. HEAD follows GET's entry (RFC 9110 9.3.2); a path some entry
    /// covers with a method no covering entry lists is not an API route to fall through: it is
    /// refused, so a method never gets around a requirement.
    pub fn route_for(&self, method: Method, path: &RequestPath) -> RouteMatch<'_> {
        // In front of static assets, a route covers every path that serves its file.
        let resource = self.assets.then(|| path.asset_resource());
        let path = resource.as_ref().unwrap_or(path);
        let covering: Vec<&ApiRoute> = self
            .routes
            .iter()
            .filter(|r| r.pattern.covers(path))
            .collect();
        if let Some(route) = covering.iter().find(|r| r.allows(method)) {
            return RouteMatch::Route(route);
        }
        if covering.is_empty() {
            return RouteMatch::None;
        }
        let mut allow: Vec<&str> = covering
            .iter()
            .flat_map(|r| r.methods.iter().flatten().map(String::as_str))
            .collect();
        if allow.contains(&"GET") {
            allow.push("HEAD");
        }
        allow.sort_unstable();
        allow.dedup();
        RouteMatch::MethodNotListed {
            allow: allow.join(", "),
        }
    }

    /// The same routes over the resources Workers Static Assets serve.
    pub fn for_assets(mut self) -> Self {
        for route in &mut self.routes {
            route.pattern = route.pattern.for_assets();
        }
        self.assets = true;
        self
    }
}

/// How `API_ROUTES` answers for one request.
#[derive(Debug, PartialEq, Eq)]
pub enum RouteMatch<'a> {
    /// No entry covers the path.
    None,
    Route(&'a ApiRoute),
    /// Entries cover the path, but none lists the method; `allow` is what they list.
    MethodNotListed {
        allow: String,
    },
}

impl ApiRoute {
    fn allows(&self, method: Method) -> bool {
        let Some(methods) = &self.methods else {
            return true;
        };
        let listed = |m: Method| methods.iter().any(|x| x == m.as_str());
        listed(method) || (method == Method::Head && listed(Method::Get))
    }

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

    fn name(m: RouteMatch<'_>) -> String {
        match m {
            RouteMatch::Route(r) => r.name.clone(),
            other => format!("{other:?}"),
        }
    }

    #[test]
    fn routes_match_method_and_normalized_path_first_wins() {
        let c = cfg("GET,HEAD /api/data/* scope:data.read\nPOST /api/data/* scope:data.write role:Data.Writer; * /api/* any");
        assert_eq!(
            name(c.route_for(Method::Get, &path("/api/data/1"))),
            "API_ROUTES[1] GET,HEAD /api/data/* scope:data.read"
        );
        assert!(name(c.route_for(Method::Post, &path("/api/data"))).starts_with("API_ROUTES[2]"));
        assert!(
            name(c.route_for(Method::Delete, &path("/api/data/1"))).starts_with("API_ROUTES[3]")
        );
        assert_eq!(c.route_for(Method::Get, &path("/other")), RouteMatch::None);
        assert!(
            name(c.route_for(Method::Get, &path("//api/%64ata/x"))).starts_with("API_ROUTES[1]")
        );
    }

    #[test]
    fn in_front_of_static_assets_a_route_covers_every_path_of_its_file() {
        let c = cfg("GET /reports/q1.html scope:reports.read").for_assets();
        for p in ["/reports/q1.html", "/reports/q1", "/reports/q1/"] {
            assert!(
                name(c.route_for(Method::Get, &path(p))).starts_with("API_ROUTES[1]"),
                "{p}"
            );
        }
    }

    #[test]
    fn no_method_gets_around_a_route_requirement() {
        let c = cfg("GET /api/data/* scope:data.read");
        // HEAD follows GET's entry.
        assert!(name(c.route_for(Method::Head, &path("/api/data/1"))).starts_with("API_ROUTES[1]"));
        for m in [
            Method::Post,
            Method::Put,
            Method::Patch,
            Method::Delete,
            Method::Options,
            Method::Other,
        ] {
            assert_eq!(
                c.route_for(m, &path("/api/data/1")),
                RouteMatch::MethodNotListed {
                    allow: "GET, HEAD".into()
                },
                "{m:?}"
            );
        }
        assert_eq!(
            c.route_for(Method::Delete, &path("/elsewhere")),
            RouteMatch::None
        );
        let star = cfg("GET /api/data/* scope:data.read; * /api/* any");
        assert!(
            name(star.route_for(Method::Delete, &path("/api/data/1"))).starts_with("API_ROUTES[2]")
        );
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
