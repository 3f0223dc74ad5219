//! GitHub (and GitHub Enterprise Server): OAuth 2.0 without OpenID Connect. The person is
//! read from the REST API with the access token: `/user` (keyed on the numeric `id`, never the
//! `login`, which can change hands), the primary verified address from `/user/emails`, and,
//! when the rules read them, organizations and teams. Every call carries a `User-Agent`
//! (GitHub refuses calls without one; a Worker's fetch sends none).

use serde::Deserialize;

use crate::base::log_line::log_line;
use crate::config::providers::{GitHubUrls, ProviderConfig};
use crate::http::{OutboundRequest, Response};
use crate::platform::Platform;

pub const USER_AGENT: &str = "portcullis";
/// Organizations or teams read at most: pages of 100.
const MAX_PAGES: usize = 5;
const PER_PAGE: usize = 100;

/// Who a GitHub user is, as its API says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GitHubIdentity {
    /// The numeric id, as a string: the user's stable name.
    pub id: String,
    pub login: String,
    pub name: Option<String>,
    /// The primary address, only when GitHub verified it.
    pub email: Option<String>,
    pub orgs: Vec<String>,
    /// `org/slug`.
    pub teams: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GitHubError {
    /// The token is no longer good (401): the session is over.
    Revoked,
    /// GitHub could not be reached or answered something else.
    Unavailable(String),
}

impl std::fmt::Display for GitHubError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Revoked => f.write_str("GitHub no longer accepts the access token"),
            Self::Unavailable(why) => f.write_str(why),
        }
    }
}

#[derive(Deserialize)]
struct User {
    id: u64,
    login: String,
    #[serde(default)]
    name: Option<String>,
}

#[derive(Deserialize)]
struct Email {
    email: String,
    #[serde(default)]
    primary: bool,
    #[serde(default)]
    verified: bool,
}

#[derive(Deserialize)]
struct Org {
    login: String,
}

#[derive(Deserialize)]
struct Team {
    slug: String,
    organization: Org,
}

/// A GET of the REST API with the person's token.
pub fn api_request(urls: &GitHubUrls, path: &str, token: &str) -> Option<OutboundRequest> {
    let url = urls.api.join_path(path)?;
    let mut req = OutboundRequest::get(&url);
    req.headers = crate::http::Headers::new();
    req.headers.append("Accept", "application/vnd.github+json");
    req.headers
        .append("Authorization", format!("Bearer {token}"));
    req.headers.append("User-Agent", USER_AGENT);
    req.headers.append("X-GitHub-Api-Version", "2022-11-28");
    Some(req)
}

fn parse<'a, T: Deserialize<'a>>(what: &str, resp: &'a Response) -> Result<T, GitHubError> {
    match resp.status {
        200 => serde_json::from_slice(&resp.body).map_err(|e| {
            GitHubError::Unavailable(format!("GitHub's {what} answer is not valid: {e}"))
        }),
        401 => Err(GitHubError::Revoked),
        s => Err(GitHubError::Unavailable(format!(
            "GitHub's {what} answered {s}"
        ))),
    }
}

/// The user, from `/user`.
fn read_user(resp: &Response) -> Result<User, GitHubError> {
    let user: User = parse("user", resp)?;
    if user.login.is_empty() || user.login.len() > 100 {
        return Err(GitHubError::Unavailable(
            "GitHub's user has no usable login".into(),
        ));
    }
    Ok(user)
}

/// The primary address, when verified; a verified secondary address is not the person's name.
fn primary_verified_email(emails: &[Email]) -> Option<String> {
    emails
        .iter()
        .find(|e| e.primary && e.verified && e.email.contains('@'))
        .map(|e| e.email.clone())
}

impl<P: Platform> GitHubClient<'_, P> {
    async fn get(&self, path: &str) -> Result<Response, GitHubError> {
        let req = api_request(self.urls, path, self.token)
            .ok_or_else(|| GitHubError::Unavailable(format!("no API URL for {path}")))?;
        self.platform
            .fetch(req)
            .await
            .map_err(|e| GitHubError::Unavailable(format!("GitHub API: {e}")))
    }

    /// Every page of a list, up to [`MAX_PAGES`].
    async fn list<T: for<'a> Deserialize<'a>>(&self, path: &str) -> Result<Vec<T>, GitHubError> {
        let mut all = Vec::new();
        for page in 1..=MAX_PAGES {
            let resp = self
                .get(&format!("{path}?per_page={PER_PAGE}&page={page}"))
                .await?;
            let items: Vec<T> = parse(path, &resp)?;
            let last = items.len() < PER_PAGE;
            all.extend(items);
            if last {
                return Ok(all);
            }
        }
        self.platform.log_json(
            log_line!("level":"warn","event":"github_list_capped","path":path,"pages":MAX_PAGES),
        );
        Ok(all)
    }

    /// The person behind the token; organizations and teams only when `memberships`.
    pub async fn identify(&self, memberships: bool) -> Result<GitHubIdentity, GitHubError> {
        let user = read_user(&self.get("user").await?)?;
        // Without `user:email` GitHub answers 404 (or 403): the person has no address here.
        let emails = self.get("user/emails").await?;
        let email = match emails.status {
            200 => primary_verified_email(&parse::<Vec<Email>>("user/emails", &emails)?),
            401 => return Err(GitHubError::Revoked),
            _ => None,
        };
        let (orgs, teams) = if memberships {
            let orgs: Vec<Org> = self.list("user/orgs").await?;
            let teams: Vec<Team> = self.list("user/teams").await?;
            (
                orgs.into_iter().map(|o| o.login).collect(),
                teams
                    .into_iter()
                    .map(|t| format!("{}/{}", t.organization.login, t.slug))
                    .collect(),
            )
        } else {
            (Vec::new(), Vec::new())
        };
        Ok(GitHubIdentity {
            id: user.id.to_string(),
            name: user
                .name
                .filter(|n| !n.is_empty())
                .or(Some(user.login.clone())),
            login: user.login,
            email,
            orgs,
            teams,
        })
    }
}

/// The REST API with one person's token.
pub struct GitHubClient<'a, P> {
    pub platform: &'a P,
    pub urls: &'a GitHubUrls,
    pub token: &'a str,
}

impl<'a, P> GitHubClient<'a, P> {
    pub fn new(platform: &'a P, urls: &'a GitHubUrls, token: &'a str) -> Self {
        Self {
            platform,
            urls,
            token,
        }
    }
}

/// Whether organizations and teams are worth reading: the `read:org` scope was asked for
/// (the configuration asks for it when a rule reads them).
pub fn reads_memberships(provider: &ProviderConfig) -> bool {
    provider.scopes.split(' ').any(|s| s == "read:org")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::base::time::UnixTime;
    use crate::http::http_url::HttpUrl;
    use crate::http::Response;
    use crate::platform::NetworkError;
    use crate::testing::block_on;
    use serde_json::json;
    use std::cell::RefCell;

    fn urls() -> GitHubUrls {
        GitHubUrls {
            authorize: HttpUrl::normalize("https://git.example/login/oauth/authorize").unwrap(),
            token: HttpUrl::normalize("https://git.example/login/oauth/access_token").unwrap(),
            api: HttpUrl::normalize("https://git.example/api/v3/").unwrap(),
        }
    }

    /// Answers API paths from a table and records every request.
    struct FakeApi {
        answers: Vec<(&'static str, u16, String)>,
        seen: RefCell<Vec<OutboundRequest>>,
    }

    impl crate::platform::Platform for FakeApi {
        type Verifier = crate::jose::verify::RustVerifier;
        fn verifier(&self) -> &Self::Verifier {
            &crate::jose::verify::RustVerifier
        }
        fn now(&self) -> UnixTime {
            UnixTime::from_secs(1000)
        }
        async fn fetch(&self, req: OutboundRequest) -> Result<Response, NetworkError> {
            let path = req.url.split("/api/v3/").nth(1).unwrap_or("").to_owned();
            self.seen.borrow_mut().push(req);
            let (_, status, body) = self
                .answers
                .iter()
                .find(|(p, _, _)| path.starts_with(p))
                .cloned()
                .unwrap_or(("", 404, "{}".into()));
            Ok(Response::new(status).with_body("application/json", body.as_str()))
        }
        async fn kv_get(&self, _: &str) -> Option<String> {
            None
        }
        async fn kv_put(&self, _: &str, _: &str, _: u64) {}
        async fn sleep_ms(&self, _: u64) {}
        fn log_json(&self, _: String) {}
    }

    fn api(answers: Vec<(&'static str, u16, String)>) -> FakeApi {
        FakeApi {
            answers,
            seen: RefCell::new(Vec::new()),
        }
    }

    fn identify(fake: &FakeApi, memberships: bool) -> Result<GitHubIdentity, GitHubError> {
        let urls = urls();
        block_on(GitHubClient::new(fake, &urls, "gho_t").identify(memberships))
    }

    const USER: &str = r#"{"id":583231,"login":"octocat","name":"The Octocat"}"#;

    #[test]
    fn the_numeric_id_and_only_the_primary_verified_address_count() {
        let fake = api(vec![
            ("user/emails", 200, r#"[{"email":"other@x.example","primary":false,"verified":true},{"email":"victim@corp.example","primary":true,"verified":false}]"#.into()),
            ("user", 200, USER.into()),
        ]);
        let who = identify(&fake, false).unwrap();
        assert_eq!(who.id, "583231");
        assert_eq!(who.login, "octocat");
        assert_eq!(who.email, None, "primary unverified, secondary not primary");
        let fake = api(vec![
            (
                "user/emails",
                200,
                r#"[{"email":"o@github.example","primary":true,"verified":true}]"#.into(),
            ),
            ("user", 200, USER.into()),
        ]);
        assert_eq!(
            identify(&fake, false).unwrap().email.as_deref(),
            Some("o@github.example")
        );
        for req in fake.seen.borrow().iter() {
            assert_eq!(req.headers.get("User-Agent"), Some(USER_AGENT));
            assert_eq!(req.headers.get("Authorization"), Some("Bearer gho_t"));
        }
    }

    #[test]
    fn no_email_scope_means_no_address_and_a_revoked_token_ends_it() {
        let fake = api(vec![
            ("user/emails", 404, "{}".into()),
            ("user", 200, USER.into()),
        ]);
        assert_eq!(identify(&fake, false).unwrap().email, None);
        let fake = api(vec![(
            "user",
            401,
            r#"{"message":"Bad credentials"}"#.into(),
        )]);
        assert_eq!(identify(&fake, false).unwrap_err(), GitHubError::Revoked);
        let fake = api(vec![("user", 200, r#"{"login":"no-id"}"#.into())]);
        assert!(matches!(
            identify(&fake, false),
            Err(GitHubError::Unavailable(_))
        ));
        let fake = api(vec![("user", 502, "".into())]);
        assert!(matches!(
            identify(&fake, false),
            Err(GitHubError::Unavailable(_))
        ));
    }

    #[test]
    fn organizations_and_teams_are_read_page_by_page_up_to_a_cap() {
        let page: Vec<serde_json::Value> = (0..PER_PAGE)
            .map(|i| json!({"login": format!("org{i}")}))
            .collect();
        let fake = api(vec![
            ("user/emails", 200, "[]".into()),
            ("user/orgs", 200, serde_json::to_string(&page).unwrap()),
            (
                "user/teams",
                200,
                r#"[{"slug":"admins","organization":{"login":"Acme"}}]"#.into(),
            ),
            ("user", 200, USER.into()),
        ]);
        let who = identify(&fake, true).unwrap();
        assert_eq!(
            who.orgs.len(),
            PER_PAGE * MAX_PAGES,
            "full pages: read up to the cap"
        );
        assert_eq!(who.teams, vec!["Acme/admins"]);
        let org_calls = fake
            .seen
            .borrow()
            .iter()
            .filter(|r| r.url.contains("user/orgs"))
            .count();
        assert_eq!(org_calls, MAX_PAGES);
        let fake = api(vec![
            ("user/emails", 200, "[]".into()),
            ("user", 200, USER.into()),
        ]);
        let who = identify(&fake, false).unwrap();
        assert!(who.orgs.is_empty());
        assert_eq!(
            fake.seen.borrow().len(),
            2,
            "no membership calls without read:org"
        );
    }
}
