//! Who may enter which part of the site.
//!
//! `ACCESS_RULES` lists `PATTERN REQUIREMENT...` entries, one per line or separated by `;`;
//! the first pattern matching the normalized path decides. A requirement is `public`,
//! `authenticated`, `email:ADDRESS`, `domain:DOMAIN`, `group:NAME`, `role:NAME`,
//! `provider:ID`, `hd:DOMAIN`, `github-org:NAME` or `github-team:ORG/SLUG`, or one on how the
//! person signed in (step-up: `acr:VALUE`, `acrs:ID`, `fresh:DURATION`); several on one rule
//! mean any of them, and requirements joined by `&` mean all of them
//! (`provider:entra&group:admins`). Paths no rule matches fall to the default rule built from
//! `ALLOW_EMAILS`, `ALLOW_EMAIL_DOMAINS`, `ALLOW_GROUPS` and `ALLOW_ROLES` (any of them), or,
//! when none is set, any signed-in person.

use crate::access::step_up::{AuthContext, StepUp, MAX_FRESH_SECS, MIN_FRESH_SECS, NO_AUTH};
use crate::base::time::{parse_duration, UnixTime};
use crate::http::path::{PathPattern, RequestPath};

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Requirement {
    Public,
    Authenticated,
    Email(String),
    Domain(String),
    Group(String),
    Role(String),
    /// Signed in with this provider (its id in `PROVIDERS`).
    Provider(String),
    /// Google's verified `hd` claim (the Workspace domain), lowercase.
    HostedDomain(String),
    /// Entra: signed in from this tenant (its id, lowercase).
    Tenant(String),
    /// A member of this GitHub organization, lowercase.
    GitHubOrg(String),
    /// A member of this GitHub team, `org/slug`, lowercase.
    GitHubTeam(String),
    /// Step-up: the sign-in's `acr` is this value.
    Acr(String),
    /// Step-up: Entra's `acrs` has this authentication context (`c1`...).
    Acrs(String),
    /// Step-up: the person authenticated at most this many seconds ago (`auth_time`).
    Fresh(u64),
}

impl Requirement {
    fn parse(token: &str) -> Option<Self> {
        let (kind, value) = token
            .split_once(':')
            .map_or((token, ""), |(k, v)| (k, v.trim()));
        let value_ok =
            !value.is_empty() && !value.chars().any(|c| c.is_whitespace() || c.is_control());
        Some(match kind {
            "public" if value.is_empty() => Self::Public,
            "authenticated" if value.is_empty() => Self::Authenticated,
            "email" if value_ok && value.matches('@').count() == 1 => {
                Self::Email(value.to_ascii_lowercase())
            }
            "domain" if value_ok && !value.contains('@') => {
                Self::Domain(value.to_ascii_lowercase())
            }
            "group" if value_ok => Self::Group(value.to_owned()),
            "role" if value_ok => Self::Role(value.to_owned()),
            "provider" if value_ok => Self::Provider(value.to_owned()),
            "tenant"
                if value_ok
                    && value.len() == 36
                    && value.chars().all(|c| c.is_ascii_hexdigit() || c == '-') =>
            {
                Self::Tenant(value.to_ascii_lowercase())
            }
            "hd" if value_ok && !value.contains('@') => {
                Self::HostedDomain(value.to_ascii_lowercase())
            }
            "github-org" if value_ok && !value.contains('/') => {
                Self::GitHubOrg(value.to_ascii_lowercase())
            }
            "acr" if value_ok && !value.contains('&') => Self::Acr(value.to_owned()),
            "acrs" if value_ok && !value.contains('&') => Self::Acrs(value.to_owned()),
            "fresh" => Self::Fresh(
                parse_duration(value).filter(|s| (MIN_FRESH_SECS..=MAX_FRESH_SECS).contains(s))?,
            ),
            "github-team"
                if value_ok
                    && value.split('/').filter(|p| !p.is_empty()).count() == 2
                    && value.matches('/').count() == 1 =>
            {
                Self::GitHubTeam(value.to_ascii_lowercase())
            }
            _ => return None,
        })
    }
}

impl Requirement {
    /// About how the person signed in, which signing in again can change.
    fn is_step_up(&self) -> bool {
        matches!(self, Self::Acr(_) | Self::Acrs(_) | Self::Fresh(_))
    }

    fn is_github(&self) -> bool {
        matches!(self, Self::GitHubOrg(_) | Self::GitHubTeam(_))
    }
}

/// A step-up as the login route's `step_up` parameter writes it: `acr:mfa&fresh:600s`.
pub fn step_up_text(s: &StepUp) -> String {
    let parts: Vec<String> = s
        .acr
        .iter()
        .map(|v| Requirement::Acr(v.clone()))
        .chain(s.acrs.iter().map(|v| Requirement::Acrs(v.clone())))
        .chain(s.max_age.map(Requirement::Fresh))
        .map(|r| r.to_string())
        .collect();
    parts.join("&")
}

impl std::fmt::Display for Requirement {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Public => f.write_str("public"),
            Self::Authenticated => f.write_str("authenticated"),
            Self::Email(v) => write!(f, "email:{v}"),
            Self::Domain(v) => write!(f, "domain:{v}"),
            Self::Group(v) => write!(f, "group:{v}"),
            Self::Role(v) => write!(f, "role:{v}"),
            Self::Provider(v) => write!(f, "provider:{v}"),
            Self::HostedDomain(v) => write!(f, "hd:{v}"),
            Self::Tenant(v) => write!(f, "tenant:{v}"),
            Self::GitHubOrg(v) => write!(f, "github-org:{v}"),
            Self::GitHubTeam(v) => write!(f, "github-team:{v}"),
            Self::Acr(v) => write!(f, "acr:{v}"),
            Self::Acrs(v) => write!(f, "acrs:{v}"),
            Self::Fresh(secs) => write!(f, "fresh:{secs}s"),
        }
    }
}

/// Requirements that must all be met (`a&b`); a rule's alternatives are any of these.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AllOf(Vec<Requirement>);

impl AllOf {
    fn parse(token: &str) -> Option<Self> {
        let all = token
            .split('&')
            .map(Requirement::parse)
            .collect::<Option<Vec<_>>>()?;
        // `public` opens a path to everyone: it cannot be one condition among others.
        if all.len() > 1 && all.contains(&Requirement::Public) {
            return None;
        }
        // A sign-in has one `acr`, and one freshness is asked at a time.
        let count = |f: fn(&Requirement) -> bool| all.iter().filter(|r| f(r)).count();
        if count(|r| matches!(r, Requirement::Acr(_))) > 1
            || count(|r| matches!(r, Requirement::Fresh(_))) > 1
        {
            return None;
        }
        Some(Self(all))
    }

    /// What a sign-in must ask the provider for to meet this alternative's step-up parts.
    fn step_up(&self) -> StepUp {
        let mut s = StepUp::default();
        for r in &self.0 {
            match r {
                Requirement::Acr(v) => s.acr.push(v.clone()),
                Requirement::Acrs(v) => s.acrs.push(v.clone()),
                Requirement::Fresh(secs) => s.max_age = Some(*secs),
                _ => {}
            }
        }
        s
    }

    fn provider(&self) -> Option<&str> {
        self.0.iter().find_map(|r| match r {
            Requirement::Provider(p) => Some(p.as_str()),
            _ => None,
        })
    }
}

impl std::fmt::Display for AllOf {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (i, r) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("&")?;
            }
            r.fmt(f)?;
        }
        Ok(())
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rule {
    /// How the rule is named in logs: `ACCESS_RULES[2] /admin/*`, `PUBLIC_PATHS /x`, `default`.
    pub name: String,
    pattern: Option<PathPattern>,
    /// For the assets upstream, a restricting rule's pattern over asset resources.
    asset_pattern: Option<PathPattern>,
    any_of: Vec<AllOf>,
}

impl Rule {
    pub fn is_public(&self) -> bool {
        self.any_of.iter().any(|a| a.0 == [Requirement::Public])
    }

    /// What the first sign-in should already ask for: when every alternative needs a step-up,
    /// the first one's (an ordinary sign-in could not pass).
    pub fn sign_in_step_up(&self) -> Option<StepUp> {
        let asks: Vec<StepUp> = self.any_of.iter().map(AllOf::step_up).collect();
        if asks.iter().all(|s| !s.is_empty()) {
            asks.into_iter().next()
        } else {
            None
        }
    }

    /// The providers a person may sign in with to pass this rule; `None` when any will do.
    pub fn providers(&self) -> Option<Vec<&str>> {
        self.any_of.iter().map(AllOf::provider).collect()
    }
}

/// What the policy needs to know about a signed-in person.
pub struct Identity<'a> {
    pub email: Option<&'a str>,
    /// `Some(false)` when the provider said the address is not verified.
    pub email_verified: Option<bool>,
    /// `ALLOW_UNVERIFIED_EMAIL` covers the provider: an address whose verification it does not
    /// state counts (marked unverified).
    pub unstated_email_trusted: bool,
    pub groups: &'a [String],
    pub roles: &'a [String],
    /// The provider of a session; `None` for a Bearer token, which meets no `provider:`.
    pub provider: Option<&'a str>,
    /// Google's `hd`, only ever from a Google provider.
    pub hosted_domain: Option<&'a str>,
    /// Entra multi-tenant sign-in: the tenant id.
    pub tenant: Option<&'a str>,
    /// The token had too many groups and Microsoft Graph did not give them.
    pub groups_unresolved: bool,
    /// GitHub organizations and `org/team` slugs, as GitHub spells them.
    pub github_orgs: &'a [String],
    pub github_teams: &'a [String],
    /// GitHub could not be asked again in time, so the memberships above are not known.
    pub github_unresolved: bool,
    /// How the person signed in (`acr`, `acrs`, `auth_time`), for step-up requirements.
    pub auth: &'a AuthContext,
}

impl Identity<'_> {
    /// What the policy knows of a person with only these claims (tests, Bearer tokens).
    pub fn basic<'a>(
        email: Option<&'a str>,
        email_verified: Option<bool>,
        groups: &'a [String],
        roles: &'a [String],
    ) -> Identity<'a> {
        Identity {
            email,
            email_verified,
            unstated_email_trusted: false,
            groups,
            roles,
            provider: None,
            hosted_domain: None,
            tenant: None,
            groups_unresolved: false,
            github_orgs: &[],
            github_teams: &[],
            github_unresolved: false,
            auth: &NO_AUTH,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decision {
    Allow {
        reason: String,
    },
    Deny {
        reason: String,
    },
    /// Not met as the person signed in, but an alternative would be after signing in again
    /// with `ask` (step-up).
    StepUp {
        reason: String,
        ask: StepUp,
    },
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Policy {
    rules: Vec<Rule>,
    default: Rule,
    /// The upstream is Workers Static Assets, which serve one file under several paths.
    assets: bool,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PolicyError {
    pub variable: &'static str,
    pub problem: String,
}

/// Splits a list variable on commas and whitespace.
pub fn list(v: &str) -> impl Iterator<Item = &str> {
    v.split(|c: char| c == ',' || c.is_whitespace())
        .filter(|s| !s.is_empty())
}

impl Policy {
    /// `public_paths` come first (as `public` rules), then `ACCESS_RULES`, then the default.
    pub fn new(
        public_paths: &[PathPattern],
        access_rules: Option<&str>,
        allow: &AllowLists<'_>,
    ) -> Result<Self, PolicyError> {
        let mut rules: Vec<Rule> = public_paths
            .iter()
            .map(|p| Rule {
                name: format!("PUBLIC_PATHS {p}"),
                pattern: Some(p.clone()),
                asset_pattern: None,
                any_of: vec![AllOf(vec![Requirement::Public])],
            })
            .collect();
        let entries = access_rules
            .unwrap_or("")
            .split(['\n', ';'])
            .map(str::trim)
            .filter(|e| !e.is_empty() && !e.starts_with('#'));
        for (i, entry) in entries.enumerate() {
            let bad = |problem: String| PolicyError {
                variable: "ACCESS_RULES",
                problem: format!("rule {}: {problem}", i + 1),
            };
            let mut tokens = entry.split_whitespace();
            let pattern_text = tokens.next().unwrap_or_default();
            let pattern = PathPattern::parse(pattern_text)
                .ok_or_else(|| bad("the pattern must be an absolute path or /dir/*".into()))?;
            let any_of = tokens
                .flat_map(|t| t.split(',').filter(|s| !s.is_empty()))
                .map(|t| AllOf::parse(t).ok_or_else(|| bad("requirements are public, authenticated, email:ADDRESS, domain:DOMAIN, group:NAME, role:NAME, provider:ID, tenant:GUID, hd:DOMAIN, github-org:NAME, github-team:ORG/SLUG, acr:VALUE, acrs:ID or fresh:DURATION (1m to 30d), joined by & when all are needed (one acr: and one fresh: at most)".into())))
                .collect::<Result<Vec<_>, _>>()?;
            if any_of.is_empty() {
                return Err(bad("a rule needs at least one requirement".into()));
            }
            rules.push(Rule {
                name: format!("ACCESS_RULES[{}] {pattern}", i + 1),
                pattern: Some(pattern),
                asset_pattern: None,
                any_of,
            });
        }
        let mut any_of: Vec<AllOf> = Vec::new();
        for (var, items, make) in [
            (
                "ALLOW_EMAILS",
                allow.emails,
                (|v: &str| Requirement::parse(&format!("email:{v}")))
                    as fn(&str) -> Option<Requirement>,
            ),
            ("ALLOW_EMAIL_DOMAINS", allow.domains, |v| {
                Requirement::parse(&format!("domain:{v}"))
            }),
            ("ALLOW_GROUPS", allow.groups, |v| {
                Requirement::parse(&format!("group:{v}"))
            }),
            ("ALLOW_ROLES", allow.roles, |v| {
                Requirement::parse(&format!("role:{v}"))
            }),
        ] {
            for item in list(items.unwrap_or("")) {
                let req = make(item).ok_or_else(|| PolicyError {
                    variable: var,
                    problem: "has an entry that is not valid".into(),
                })?;
                any_of.push(AllOf(vec![req]));
            }
        }
        if any_of.is_empty() {
            any_of.push(AllOf(vec![Requirement::Authenticated]));
        }
        Ok(Self {
            rules,
            default: Rule {
                name: "default".into(),
                pattern: None,
                asset_pattern: None,
                any_of,
            },
            assets: false,
        })
    }

    /// The same policy in front of Workers Static Assets: a restricting rule covers every path
    /// that serves its file ([`RequestPath::asset_resource`]); a rule that opens a path opens
    /// only the paths that serve exactly its file ([`PathPattern::opens_asset`]), never more.
    pub fn for_assets(mut self) -> Self {
        for rule in &mut self.rules {
            rule.asset_pattern = rule.pattern.as_ref().map(PathPattern::for_assets);
        }
        self.assets = true;
        self
    }

    /// The rule that governs `path` (normalized, as the upstream receives it). Rules that open
    /// a path match it exactly; rules that restrict it match loosely (any case, trailing
    /// slash, and for static assets every alias of the file), so a path cannot dodge them.
    pub fn rule_for(&self, path: &RequestPath) -> &Rule {
        let resource = self.assets.then(|| path.asset_resource());
        self.rules
            .iter()
            .find(|r| match (&r.pattern, &r.asset_pattern, &resource) {
                (Some(p), _, None) if r.is_public() => p.matches(path),
                (Some(p), _, Some(_)) if r.is_public() => p.opens_asset(path),
                (Some(p), _, None) => p.covers(path),
                (_, Some(a), Some(res)) => a.covers(res),
                _ => false,
            })
            .unwrap_or(&self.default)
    }

    /// Every provider id the rules name, for the configuration to check.
    pub fn named_providers(&self) -> Vec<&str> {
        self.requirements()
            .filter_map(|r| match r {
                Requirement::Provider(p) => Some(p.as_str()),
                _ => None,
            })
            .collect()
    }

    /// Whether a rule reads GitHub organizations or teams (GitHub then needs `read:org`).
    pub fn reads_github_orgs(&self) -> bool {
        self.requirements().any(Requirement::is_github)
    }

    /// Whether some alternative reads GitHub organizations or teams without naming its
    /// provider: two GitHub providers (github.com and an Enterprise Server) share org names.
    pub fn has_unpinned_github_rule(&self) -> bool {
        let all = self.rules.iter().chain(std::iter::once(&self.default));
        all.flat_map(|r| r.any_of.iter()).any(|a| {
            let named = a.0.iter().any(|r| matches!(r, Requirement::Provider(_)));
            !named && a.0.iter().any(Requirement::is_github)
        })
    }

    fn requirements(&self) -> impl Iterator<Item = &Requirement> {
        self.rules
            .iter()
            .chain(std::iter::once(&self.default))
            .flat_map(|r| r.any_of.iter().flat_map(|a| a.0.iter()))
    }

    /// Every step-up some rule asks for, as `/auth/login?step_up=` names it.
    pub fn step_up_named(&self, text: &str) -> Option<StepUp> {
        let asked = AllOf::parse(text)?;
        if !asked.0.iter().all(Requirement::is_step_up) {
            return None;
        }
        let asked = asked.step_up();
        self.rules
            .iter()
            .chain(std::iter::once(&self.default))
            .flat_map(|r| r.any_of.iter().map(AllOf::step_up))
            .find(|s| !s.is_empty() && *s == asked)
    }

    /// Judges a signed-in person against a rule at `now`.
    pub fn judge(&self, rule: &Rule, who: &Identity<'_>, now: UnixTime) -> Decision {
        let email = self.usable_email(who);
        let meets = |req: &Requirement| match req {
            Requirement::Public | Requirement::Authenticated => true,
            Requirement::Email(want) => email.is_some_and(|e| e.eq_ignore_ascii_case(want)),
            Requirement::Domain(want) => email
                .and_then(email_domain)
                .is_some_and(|d| d.eq_ignore_ascii_case(want)),
            Requirement::Group(g) => who.groups.iter().any(|x| x == g),
            Requirement::Role(r) => who.roles.iter().any(|x| x == r),
            Requirement::Provider(p) => who.provider == Some(p.as_str()),
            Requirement::HostedDomain(d) => {
                who.hosted_domain.is_some_and(|h| h.eq_ignore_ascii_case(d))
            }
            Requirement::Tenant(t) => who.tenant.is_some_and(|x| x.eq_ignore_ascii_case(t)),
            Requirement::GitHubOrg(o) => who.github_orgs.iter().any(|x| x.eq_ignore_ascii_case(o)),
            Requirement::GitHubTeam(t) => {
                who.github_teams.iter().any(|x| x.eq_ignore_ascii_case(t))
            }
            Requirement::Acr(v) => who.auth.acr.as_deref() == Some(v.as_str()),
            Requirement::Acrs(v) => who.auth.acrs.contains(v),
            Requirement::Fresh(secs) => who.auth.fresh_within(*secs, now),
        };
        for alternative in &rule.any_of {
            if alternative.0.iter().all(meets) {
                return Decision::Allow {
                    reason: format!("matched {alternative}"),
                };
            }
        }
        // The first alternative whose only unmet parts are about how the person signed in.
        let closest = rule
            .any_of
            .iter()
            .find(|a| a.0.iter().filter(|r| !r.is_step_up()).all(&meets));
        if let Some(alternative) = closest {
            return Decision::StepUp {
                reason: format!("{alternative} needs a stronger or more recent sign-in"),
                ask: alternative.step_up(),
            };
        }
        let wants =
            |f: fn(&Requirement) -> bool| rule.any_of.iter().flat_map(|a| a.0.iter()).any(f);
        let unverified = email.is_none()
            && who.email.is_some()
            && wants(|r| matches!(r, Requirement::Email(_) | Requirement::Domain(_)));
        let wants_group = wants(|r| matches!(r, Requirement::Group(_)));
        let wants_github = wants(Requirement::is_github);
        Decision::Deny {
            reason: if wants_group && who.groups_unresolved {
                GROUPS_UNRESOLVED.into()
            } else if wants_github && who.github_unresolved {
                GITHUB_UNRESOLVED.into()
            } else if unverified {
                "email address not verified by the provider".into()
            } else {
                "no requirement of the rule is met".into()
            },
        }
    }

    /// The email for email/domain rules: verified by the provider, or, when trusted, not
    /// stated either way. `email_verified: false` never counts.
    fn usable_email<'a>(&self, who: &Identity<'a>) -> Option<&'a str> {
        self.vouched_email(who).map(|v| v.address)
    }

    /// The one rule for which email counts as the person's, for rules, identity headers and the
    /// assertion alike: verified by the provider, or, from a provider `ALLOW_UNVERIFIED_EMAIL`
    /// covers, not stated either way (then marked unverified). `email_verified: false` never
    /// counts.
    pub fn vouched_email<'a>(&self, who: &Identity<'a>) -> Option<VouchedEmail<'a>> {
        let address = who.email?;
        match who.email_verified {
            Some(true) => Some(VouchedEmail {
                address,
                verified: true,
            }),
            None if who.unstated_email_trusted => Some(VouchedEmail {
                address,
                verified: false,
            }),
            _ => None,
        }
    }
}

/// Why a group rule denies someone whose groups Microsoft Graph did not give.
pub const GROUPS_UNRESOLVED: &str = "groups could not be read from Microsoft Graph";
pub const GITHUB_UNRESOLVED: &str =
    "GitHub memberships could not be read again in time (GitHub down or rate-limited)";

/// An email the origin may be told: the address, and whether the provider verified it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VouchedEmail<'a> {
    pub address: &'a str,
    pub verified: bool,
}

pub struct AllowLists<'a> {
    pub emails: Option<&'a str>,
    pub domains: Option<&'a str>,
    pub groups: Option<&'a str>,
    pub roles: Option<&'a str>,
}

/// The part after the single `@`; `None` for addresses with zero or several.
pub fn email_domain(email: &str) -> Option<&str> {
    let mut parts = email.split('@');
    match (parts.next(), parts.next(), parts.next()) {
        (Some(local), Some(domain), None) if !local.is_empty() && !domain.is_empty() => {
            Some(domain)
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: UnixTime = UnixTime::from_secs(1_800_000_000);

    const NO_ALLOW: AllowLists<'static> = AllowLists {
        emails: None,
        domains: None,
        groups: None,
        roles: None,
    };

    fn policy(rules: &str, allow: &AllowLists<'_>) -> Policy {
        Policy::new(
            &[PathPattern::parse("/public/*").unwrap()],
            Some(rules),
            allow,
        )
        .unwrap()
    }

    fn who<'a>(
        email: &'a str,
        verified: Option<bool>,
        groups: &'a [String],
        roles: &'a [String],
    ) -> Identity<'a> {
        // From a provider ALLOW_UNVERIFIED_EMAIL covers, unless a test says otherwise.
        Identity {
            unstated_email_trusted: true,
            ..Identity::basic(Some(email), verified, groups, roles)
        }
    }

    fn decide(p: &Policy, path: &str, id: &Identity<'_>) -> bool {
        let rule = p.rule_for(&RequestPath::parse(path).unwrap());
        matches!(p.judge(rule, id, NOW), Decision::Allow { .. })
    }

    fn signed_in(acr: Option<&str>, acrs: &[&str], auth_age: Option<u64>) -> AuthContext {
        AuthContext {
            acr: acr.map(str::to_owned),
            amr: Vec::new(),
            acrs: acrs.iter().map(|s| s.to_string()).collect(),
            auth_time: auth_age.map(|a| NOW.minus(a)),
        }
    }

    fn judge_at(p: &Policy, path: &str, groups: &[String], auth: &AuthContext) -> Decision {
        let rule = p.rule_for(&RequestPath::parse(path).unwrap());
        let id = Identity {
            auth,
            ..who("a@example.com", Some(true), groups, &[])
        };
        p.judge(rule, &id, NOW)
    }

    #[test]
    fn step_up_requirements_parse_and_print() {
        let p = policy(
            "/admin/* group:admins&acr:mfa&fresh:15m, acrs:c1; /pay/* fresh:1h",
            &NO_ALLOW,
        );
        let rule = p.rule_for(&RequestPath::parse("/admin/x").unwrap());
        assert_eq!(
            rule.any_of
                .iter()
                .map(|a| a.to_string())
                .collect::<Vec<_>>(),
            ["group:admins&acr:mfa&fresh:900s", "acrs:c1"]
        );
        for bad in [
            "/a/* acr:",
            "/a/* acrs:",
            "/a/* fresh:",
            "/a/* fresh:30s",
            "/a/* fresh:31d",
            "/a/* fresh:soon",
            "/a/* acr:a&acr:b",
            "/a/* fresh:1h&fresh:2h",
            "/a/* public&fresh:1h",
        ] {
            assert!(Policy::new(&[], Some(bad), &NO_ALLOW).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_rule_met_but_for_how_the_person_signed_in_asks_for_a_step_up() {
        let admins = vec!["admins".to_owned()];
        let p = policy(
            "/admin/* group:admins&acr:mfa; /pay/* fresh:10m; /ctx/* acrs:c1 acrs:c2",
            &NO_ALLOW,
        );
        let weak = signed_in(Some("pwd"), &[], Some(3600));
        // Not an admin: no sign-in would help.
        assert!(matches!(
            judge_at(&p, "/admin/x", &[], &weak),
            Decision::Deny { .. }
        ));
        match judge_at(&p, "/admin/x", &admins, &weak) {
            Decision::StepUp { ask, reason } => {
                assert_eq!(ask.acr, ["mfa"]);
                assert!(ask.acrs.is_empty() && ask.max_age.is_none());
                assert!(reason.contains("group:admins&acr:mfa"), "{reason}");
            }
            other => panic!("{other:?}"),
        }
        let strong = signed_in(Some("mfa"), &[], Some(3600));
        assert!(matches!(
            judge_at(&p, "/admin/x", &admins, &strong),
            Decision::Allow { .. }
        ));
        // Freshness: auth_time within the duration; unknown is never fresh.
        let ask = |d: Decision| match d {
            Decision::StepUp { ask, .. } => ask,
            other => panic!("{other:?}"),
        };
        assert_eq!(ask(judge_at(&p, "/pay", &[], &weak)).max_age, Some(600));
        assert_eq!(
            ask(judge_at(&p, "/pay", &[], &signed_in(None, &[], None))).max_age,
            Some(600)
        );
        assert!(matches!(
            judge_at(&p, "/pay", &[], &signed_in(None, &[], Some(600))),
            Decision::Allow { .. }
        ));
        // Entra authentication contexts: any alternative; the first is asked for.
        assert!(matches!(
            judge_at(&p, "/ctx/x", &[], &signed_in(None, &["c2"], None)),
            Decision::Allow { .. }
        ));
        assert_eq!(ask(judge_at(&p, "/ctx/x", &[], &weak)).acrs, ["c1"]);
        // A Bearer token's identity knows nothing of how its person signed in.
        let rule = p.rule_for(&RequestPath::parse("/pay").unwrap());
        assert!(matches!(
            p.judge(rule, &who("a@example.com", Some(true), &[], &[]), NOW),
            Decision::StepUp { .. }
        ));
    }

    #[test]
    fn the_login_route_takes_only_a_step_up_some_rule_asks_for() {
        let p = policy(
            "/admin/* group:admins&acr:mfa&fresh:15m; /pay/* fresh:10m authenticated",
            &NO_ALLOW,
        );
        let named = p.step_up_named("acr:mfa&fresh:900s").unwrap();
        assert_eq!(named.acr, ["mfa"]);
        assert_eq!(named.max_age, Some(900));
        assert_eq!(step_up_text(&named), "acr:mfa&fresh:900s");
        assert_eq!(p.step_up_named("fresh:15m"), None, "not asked alone");
        assert!(p.step_up_named("fresh:10m").is_some());
        for other in [
            "acr:low",
            "acr:mfa",
            "group:admins&acr:mfa&fresh:900s",
            "",
            "x",
        ] {
            assert_eq!(p.step_up_named(other), None, "{other}");
        }
        // The first sign-in asks for it only when no alternative passes without one.
        let admin = p.rule_for(&RequestPath::parse("/admin/").unwrap());
        assert_eq!(admin.sign_in_step_up(), Some(named));
        let pay = p.rule_for(&RequestPath::parse("/pay").unwrap());
        assert_eq!(pay.sign_in_step_up(), None);
    }

    #[test]
    fn first_matching_rule_wins_and_public_paths_come_first() {
        let p = policy("/admin/* group:admins\n/admin/open/* authenticated; /reports/* domain:example.com email:boss@other.org", &NO_ALLOW);
        assert_eq!(
            p.rule_for(&RequestPath::parse("/public/x").unwrap()).name,
            "PUBLIC_PATHS /public/*"
        );
        assert!(p
            .rule_for(&RequestPath::parse("/public/x").unwrap())
            .is_public());
        assert_eq!(
            p.rule_for(&RequestPath::parse("/admin/open/x").unwrap())
                .name,
            "ACCESS_RULES[1] /admin/*"
        );
        assert_eq!(
            p.rule_for(&RequestPath::parse("/reports").unwrap()).name,
            "ACCESS_RULES[3] /reports/*"
        );
        assert_eq!(
            p.rule_for(&RequestPath::parse("/other").unwrap()).name,
            "default"
        );
    }

    #[test]
    fn groups_roles_emails_and_domains() {
        let admins = vec!["admins".to_owned()];
        let readers = vec!["reader".to_owned()];
        let p = policy("/admin/* group:admins; /data/* role:reader; /reports/* domain:example.com,email:boss@other.org", &NO_ALLOW);
        assert!(decide(
            &p,
            "/admin/x",
            &who("a@example.com", Some(true), &admins, &[])
        ));
        assert!(!decide(
            &p,
            "/admin/x",
            &who("a@example.com", Some(true), &[], &readers)
        ));
        assert!(decide(
            &p,
            "/data/x",
            &who("a@example.com", None, &[], &readers)
        ));
        assert!(decide(
            &p,
            "/reports/q",
            &who("Someone@Example.COM", Some(true), &[], &[])
        ));
        assert!(decide(
            &p,
            "/reports/q",
            &who("boss@other.org", None, &[], &[])
        ));
        assert!(!decide(
            &p,
            "/reports/q",
            &who("intern@other.org", None, &[], &[])
        ));
        assert!(
            decide(&p, "/anything", &who("x@y.z", None, &[], &[])),
            "default: any signed-in person"
        );
    }

    #[test]
    fn domain_rules_take_only_the_part_after_a_single_at() {
        let p = policy("/* domain:company.com", &NO_ALLOW);
        for email in [
            "a@evil.com@company.com",
            "@company.com",
            "company.com",
            "a@company.com.evil.com",
            "a@sub.company.com",
        ] {
            assert!(
                !decide(&p, "/", &who(email, Some(true), &[], &[])),
                "{email}"
            );
        }
        assert!(decide(&p, "/", &who("a@company.com", Some(true), &[], &[])));
    }

    #[test]
    fn whole_address_is_compared_for_email_rules() {
        let p = policy("/* email:bob@example.com", &NO_ALLOW);
        for email in [
            "xbob@example.com",
            "bob@example.com.evil",
            "bob@example.co",
            "evil@bob@example.com",
        ] {
            assert!(!decide(&p, "/", &who(email, None, &[], &[])), "{email}");
        }
        assert!(decide(&p, "/", &who("BOB@example.com", None, &[], &[])));
    }

    #[test]
    fn unverified_emails_do_not_pass_email_or_domain_rules() {
        let p = policy("/* domain:example.com email:bob@example.com", &NO_ALLOW);
        let id = who("bob@example.com", Some(false), &[], &[]);
        let rule = p.rule_for(&RequestPath::parse("/").unwrap());
        assert_eq!(
            p.judge(rule, &id, NOW),
            Decision::Deny {
                reason: "email address not verified by the provider".into()
            }
        );
    }

    #[test]
    fn unstated_verification_counts_only_when_trusted() {
        let p = Policy::new(&[], Some("/* domain:example.com"), &NO_ALLOW).unwrap();
        let rule = p.rule_for(&RequestPath::parse("/").unwrap());
        let untrusted = Identity::basic(Some("a@example.com"), None, &[], &[]);
        assert!(matches!(
            p.judge(rule, &untrusted, NOW),
            Decision::Deny { .. }
        ));
        assert_eq!(p.vouched_email(&untrusted), None);
        let verified = Identity::basic(Some("a@example.com"), Some(true), &[], &[]);
        assert!(matches!(
            p.judge(rule, &verified, NOW),
            Decision::Allow { .. }
        ));
        let trusted = who("a@example.com", None, &[], &[]);
        assert!(matches!(
            p.judge(rule, &trusted, NOW),
            Decision::Allow { .. }
        ));
        assert_eq!(
            p.vouched_email(&trusted),
            Some(VouchedEmail {
                address: "a@example.com",
                verified: false
            })
        );
        let refuted = who("a@example.com", Some(false), &[], &[]);
        assert!(matches!(
            p.judge(rule, &refuted, NOW),
            Decision::Deny { .. }
        ));
    }

    #[test]
    fn restricting_rules_cannot_be_dodged_by_case_but_public_ones_stay_exact() {
        let public = [PathPattern::parse("/public/*").unwrap()];
        let p = Policy::new(&public, Some("/admin/* group:admins"), &NO_ALLOW).unwrap();
        let rule = |s: &str| p.rule_for(&RequestPath::parse(s).unwrap()).name.clone();
        assert_eq!(rule("/ADMIN/users"), "ACCESS_RULES[1] /admin/*");
        assert_eq!(rule("/Admin"), "ACCESS_RULES[1] /admin/*");
        assert_eq!(rule("/PUBLIC/x"), "default");
    }

    #[test]
    fn allow_lists_form_the_default_rule() {
        let allow = AllowLists {
            emails: Some("ceo@x.org"),
            domains: Some("example.com, example.org"),
            groups: Some("staff"),
            roles: None,
        };
        let p = Policy::new(&[], None, &allow).unwrap();
        let staff = vec!["staff".to_owned()];
        assert!(decide(&p, "/", &who("a@example.org", None, &[], &[])));
        assert!(decide(&p, "/", &who("ceo@x.org", None, &[], &[])));
        assert!(decide(&p, "/", &who("z@z.z", None, &staff, &[])));
        assert!(!decide(&p, "/", &who("z@z.z", None, &[], &[])));
    }

    #[test]
    fn bad_rules_name_the_variable_and_entry() {
        for (rules, want) in [
            ("admin group:x", "rule 1"),
            ("/a/* group:", "rule 1"),
            ("/a/* authenticated; /b/* sometimes", "rule 2"),
            ("/a/*", "rule 1"),
            ("/a/* email:nope", "rule 1"),
        ] {
            let e = Policy::new(&[], Some(rules), &NO_ALLOW).unwrap_err();
            assert_eq!(e.variable, "ACCESS_RULES");
            assert!(e.problem.starts_with(want), "{rules}: {}", e.problem);
        }
        let e = Policy::new(
            &[],
            None,
            &AllowLists {
                emails: Some("not-an-email"),
                ..NO_ALLOW
            },
        )
        .unwrap_err();
        assert_eq!(e.variable, "ALLOW_EMAILS");
    }

    #[test]
    fn comments_and_blank_lines_are_ignored() {
        let p = Policy::new(
            &[],
            Some("# admins only\n\n/admin/* group:admins\n"),
            &NO_ALLOW,
        )
        .unwrap();
        assert_eq!(
            p.rule_for(&RequestPath::parse("/admin").unwrap()).name,
            "ACCESS_RULES[1] /admin/*"
        );
    }

    fn signed_in_with<'a>(provider: &'a str, groups: &'a [String]) -> Identity<'a> {
        Identity {
            provider: Some(provider),
            ..Identity::basic(Some("a@example.com"), Some(true), groups, &[])
        }
    }

    #[test]
    fn provider_rules_and_conjunctions_keep_providers_apart() {
        let admins = vec!["admins".to_owned()];
        let p = policy(
            "/admin/* provider:entra&group:admins; /docs/* provider:entra provider:github",
            &NO_ALLOW,
        );
        assert!(decide(&p, "/admin/x", &signed_in_with("entra", &admins)));
        assert!(
            !decide(&p, "/admin/x", &signed_in_with("partner", &admins)),
            "another provider's group of the same name"
        );
        assert!(!decide(&p, "/admin/x", &signed_in_with("entra", &[])));
        assert!(decide(&p, "/docs/a", &signed_in_with("github", &[])));
        assert!(!decide(&p, "/docs/a", &signed_in_with("google", &[])));
        let token = Identity::basic(Some("a@example.com"), Some(true), &admins, &[]);
        assert!(
            !decide(&p, "/docs/a", &token),
            "a Bearer token has no provider"
        );
        let rule = |path: &str| p.rule_for(&RequestPath::parse(path).unwrap());
        assert_eq!(rule("/docs/a").providers(), Some(vec!["entra", "github"]));
        assert_eq!(rule("/admin").providers(), Some(vec!["entra"]));
        assert_eq!(rule("/other").providers(), None);
        assert_eq!(p.named_providers(), vec!["entra", "entra", "github"]);
        assert!(!p.reads_github_orgs());
    }

    #[test]
    fn hosted_domain_and_github_membership() {
        let p = policy(
            "/corp/* hd:Corp.Example; /oss/* github-org:Acme; /team/* github-team:acme/Admins",
            &NO_ALLOW,
        );
        assert!(p.reads_github_orgs());
        let google = |hd: Option<&'static str>| Identity {
            hosted_domain: hd,
            ..Identity::basic(Some("boss@corp.example"), Some(true), &[], &[])
        };
        assert!(decide(&p, "/corp/x", &google(Some("corp.example"))));
        assert!(
            !decide(&p, "/corp/x", &google(None)),
            "the email's domain is not the hd claim"
        );
        assert!(!decide(&p, "/corp/x", &google(Some("corp.example.evil"))));
        let orgs = vec!["ACME".to_owned()];
        let teams = vec!["acme/admins".to_owned(), "other/x".to_owned()];
        let gh = Identity {
            github_orgs: &orgs,
            github_teams: &teams,
            ..Identity::basic(None, None, &[], &[])
        };
        assert!(decide(&p, "/oss/x", &gh));
        assert!(decide(&p, "/team/x", &gh));
        let outsider = Identity {
            github_teams: &orgs,
            ..Identity::basic(None, None, &[], &[])
        };
        assert!(
            !decide(&p, "/oss/x", &outsider),
            "a team named like the org"
        );
        assert!(!decide(&p, "/team/x", &outsider));
        let tenant = Identity {
            tenant: Some("11111111-2222-3333-4444-555555555555"),
            ..Identity::basic(None, None, &[], &[])
        };
        let t = policy(
            "/t/* tenant:11111111-2222-3333-4444-555555555555",
            &NO_ALLOW,
        );
        assert!(decide(&t, "/t/x", &tenant));
        assert!(!decide(&t, "/t/x", &Identity::basic(None, None, &[], &[])));
        for bad in [
            "/a/* tenant:contoso.com",
            "/a/* github-team:acme",
            "/a/* github-team:acme/x/y",
            "/a/* github-team:/x",
            "/a/* github-org:a/b",
            "/a/* hd:a@b",
            "/a/* provider:",
            "/a/* public&provider:x",
            "/a/* group:x&",
        ] {
            assert!(Policy::new(&[], Some(bad), &NO_ALLOW).is_err(), "{bad}");
        }
    }
}
