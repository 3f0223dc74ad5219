//! The signed-in session: who the person is and until when, sealed in a cookie.

pub mod coalescer;
pub mod durable_object;
pub mod refresh;
pub mod store;

use serde::{Deserialize, Serialize};

use crate::access::policy::VouchedEmail;
use crate::access::step_up::AuthContext;
use crate::base::seal::{Purpose, SealError, Sealer};
use crate::base::secret::secret_type;
use crate::base::time::UnixTime;
use crate::base::types::{ClientId, Issuer};
use crate::config::providers::{ProviderConfig, ProviderId, ProviderKind, Providers};
use crate::http::cookies::{read_chunked, CookieJar};
use crate::jose::claims::ListClaims;
use crate::oidc::github::GitHubIdentity;
use crate::oidc::graph::GraphError;
use crate::oidc::id_token::VerifiedIdToken;

pub use crate::http::cookies::MAX_COOKIE_VALUE;

secret_type!(
    /// A token kept in the session: sealed in the cookie or held by the session store, never
    /// printed.
    #[derive(Serialize, Deserialize, Clone, PartialEq)]
    #[serde(transparent)]
    StoredSecret(String)
);

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
#[serde(from = "SessionRead")]
pub struct Session {
    /// The provider the person signed in with (`default` for the single-provider variables).
    #[serde(default, rename = "p", skip_serializing_if = "ProviderId::is_default")]
    pub provider: ProviderId,
    pub iss: Issuer,
    pub sub: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email_verified: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub groups: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub roles: Vec<String>,
    /// True when the token had too many groups and Microsoft Graph did not give them.
    #[serde(default, rename = "gu", skip_serializing_if = "std::ops::Not::not")]
    pub groups_unresolved: bool,
    /// True when the groups did not fit in the cookie and were left out.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub groups_omitted: bool,
    /// Entra multi-tenant: the person's tenant id (`sub` is then `tid/oid`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tid: Option<String>,
    /// Google's `hd` (the Workspace domain), kept only from a Google provider.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hd: Option<String>,
    /// GitHub: the person's organizations and `org/team` slugs, when the rules read them.
    #[serde(default, rename = "gho", skip_serializing_if = "Vec::is_empty")]
    pub github_orgs: Vec<String>,
    #[serde(default, rename = "ght", skip_serializing_if = "Vec::is_empty")]
    pub github_teams: Vec<String>,
    /// GitHub: until when the identity and memberships read from its API are trusted; then
    /// they are read again, as a refresh.
    #[serde(default, rename = "ghu", skip_serializing_if = "Option::is_none")]
    pub github_until: Option<UnixTime>,
    /// GitHub: the memberships were dropped because GitHub could not be asked again in time;
    /// rules naming them deny, saying so, until it answers.
    #[serde(default, rename = "ghx", skip_serializing_if = "std::ops::Not::not")]
    pub github_unresolved: bool,
    /// The provider's session id (`sid`), which back-channel logout names.
    #[serde(default, rename = "psid", skip_serializing_if = "Option::is_none")]
    pub provider_sid: Option<String>,
    /// How the person signed in (`acr`, `amr`, Entra's `acrs`, `auth_time`), as the ID token
    /// of the sign-in said; a refresh does not change it.
    #[serde(default, rename = "au", skip_serializing_if = "AuthContext::is_empty")]
    pub auth: AuthContext,
    /// The tokens the session needs; see [`SessionTokens`].
    #[serde(flatten)]
    pub tokens: SessionTokens,
    /// When the session began (sign-in).
    pub iat: UnixTime,
    /// When it ends whatever happens (`SESSION_TTL` after sign-in).
    pub exp: UnixTime,
    /// Last activity, for `SESSION_IDLE_TTL`; moved only when it has moved enough.
    #[serde(default)]
    pub seen: UnixTime,
}

/// A session as read from its JSON: the same fields as [`Session`] with the tokens beside the
/// others, as `#[serde(flatten)]` writes them. Reading through `flatten` buffers every field
/// of the map first; this reads them in one pass (about a third of a cookie's parse time).
#[derive(Deserialize)]
struct SessionRead {
    #[serde(default, rename = "p")]
    provider: ProviderId,
    iss: Issuer,
    sub: String,
    #[serde(default)]
    email: Option<String>,
    #[serde(default)]
    email_verified: Option<bool>,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    groups: Vec<String>,
    #[serde(default)]
    roles: Vec<String>,
    #[serde(default, rename = "gu")]
    groups_unresolved: bool,
    #[serde(default)]
    groups_omitted: bool,
    #[serde(default)]
    tid: Option<String>,
    #[serde(default)]
    hd: Option<String>,
    #[serde(default, rename = "gho")]
    github_orgs: Vec<String>,
    #[serde(default, rename = "ght")]
    github_teams: Vec<String>,
    #[serde(default, rename = "ghu")]
    github_until: Option<UnixTime>,
    #[serde(default, rename = "ghx")]
    github_unresolved: bool,
    #[serde(default, rename = "psid")]
    provider_sid: Option<String>,
    #[serde(default, rename = "au")]
    auth: AuthContext,
    #[serde(default, rename = "at")]
    access_token: Option<StoredSecret>,
    #[serde(default, rename = "ate")]
    access_expires_at: Option<UnixTime>,
    #[serde(default, rename = "rt")]
    refresh_token: Option<StoredSecret>,
    #[serde(default, rename = "idt")]
    id_token: Option<StoredSecret>,
    iat: UnixTime,
    exp: UnixTime,
    #[serde(default)]
    seen: UnixTime,
}

impl From<SessionRead> for Session {
    fn from(r: SessionRead) -> Self {
        Self {
            provider: r.provider,
            iss: r.iss,
            sub: r.sub,
            email: r.email,
            email_verified: r.email_verified,
            name: r.name,
            groups: r.groups,
            roles: r.roles,
            groups_unresolved: r.groups_unresolved,
            groups_omitted: r.groups_omitted,
            tid: r.tid,
            hd: r.hd,
            github_orgs: r.github_orgs,
            github_teams: r.github_teams,
            github_until: r.github_until,
            github_unresolved: r.github_unresolved,
            provider_sid: r.provider_sid,
            auth: r.auth,
            tokens: SessionTokens {
                access_token: r.access_token,
                access_expires_at: r.access_expires_at,
                refresh_token: r.refresh_token,
                id_token: r.id_token,
            },
            iat: r.iat,
            exp: r.exp,
            seen: r.seen,
        }
    }
}

/// Only what is needed is kept: the access token when it goes to the origin
/// (`PASS_ACCESS_TOKEN`), the refresh token when the provider issued one, and the ID token
/// when the provider has an end_session_endpoint (for `id_token_hint`).
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Default)]
pub struct SessionTokens {
    #[serde(default, rename = "at", skip_serializing_if = "Option::is_none")]
    pub access_token: Option<StoredSecret>,
    /// When the access token expires (seconds since the epoch), kept even when the token
    /// itself is not: refreshing is timed by it.
    #[serde(default, rename = "ate", skip_serializing_if = "Option::is_none")]
    pub access_expires_at: Option<UnixTime>,
    #[serde(default, rename = "rt", skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<StoredSecret>,
    #[serde(default, rename = "idt", skip_serializing_if = "Option::is_none")]
    pub id_token: Option<StoredSecret>,
}

impl Session {
    pub fn from_id_token(
        provider: &ProviderConfig,
        t: VerifiedIdToken,
        names: &ListClaims,
        tokens: SessionTokens,
        now: UnixTime,
        ttl_secs: u64,
    ) -> Self {
        Self {
            provider: provider.id.clone(),
            tid: t.tenant.clone(),
            hd: hosted_domain(provider, &t),
            github_orgs: Vec::new(),
            github_teams: Vec::new(),
            github_until: None,
            github_unresolved: false,
            groups: t.list(&names.groups),
            roles: t.list(&names.roles),
            provider_sid: t
                .claims
                .get("sid")
                .and_then(|v| v.as_str())
                .filter(|s| !s.is_empty() && s.len() <= 256)
                .map(str::to_owned),
            iss: t.issuer,
            sub: t.subject,
            email: t.email,
            email_verified: t.email_verified,
            name: t.name,
            groups_omitted: false,
            groups_unresolved: false,
            auth: t.auth,
            tokens,
            iat: now,
            exp: now.plus(ttl_secs),
            seen: now,
        }
    }

    /// Groups read from Microsoft Graph for a token that had too many (`None`: the token had
    /// them). When Graph gave none, the person has no groups, marked so.
    pub fn apply_overage(&mut self, overage: Option<Result<Vec<String>, GraphError>>) {
        match overage {
            None => {}
            Some(Ok(groups)) => {
                self.groups = groups;
                self.groups_unresolved = false;
            }
            Some(Err(_)) => {
                self.groups.clear();
                self.groups_unresolved = true;
            }
        }
    }

    /// A GitHub sign-in: the numeric id is the subject, in the namespace of the GitHub
    /// instance's URL.
    pub fn from_github(
        provider: &ProviderConfig,
        who: GitHubIdentity,
        tokens: SessionTokens,
        now: UnixTime,
        ttl_secs: u64,
    ) -> Self {
        let mut s = Self::blank(
            provider.id.clone(),
            provider.issuer.clone(),
            tokens,
            now,
            now.plus(ttl_secs),
        );
        s.update_github(provider, who, now);
        s
    }

    /// A session of `iss` from `iat` to `exp` that says nothing of the person yet.
    pub(crate) fn blank(
        provider: ProviderId,
        iss: Issuer,
        tokens: SessionTokens,
        iat: UnixTime,
        exp: UnixTime,
    ) -> Self {
        Self {
            provider,
            iss,
            sub: String::new(),
            email: None,
            email_verified: None,
            name: None,
            groups: Vec::new(),
            roles: Vec::new(),
            groups_omitted: false,
            groups_unresolved: false,
            tid: None,
            hd: None,
            github_orgs: Vec::new(),
            github_teams: Vec::new(),
            github_until: None,
            github_unresolved: false,
            provider_sid: None,
            auth: AuthContext::default(),
            tokens,
            iat,
            exp,
            seen: iat,
        }
    }

    /// What GitHub's API says now replaces what it said before.
    pub fn update_github(&mut self, provider: &ProviderConfig, who: GitHubIdentity, now: UnixTime) {
        self.sub = who.id;
        self.email_verified = who.email.as_ref().map(|_| true);
        self.email = who.email;
        self.name = who.name;
        self.github_orgs = who.orgs;
        self.github_teams = who.teams;
        self.github_until = Some(now.plus(provider.membership_ttl_secs));
        self.github_unresolved = false;
    }

    /// GitHub could not be asked again (down, or the person's rate limit spent). What it said
    /// (memberships and address) overdue by more than one more `OIDC_MEMBERSHIP_TTL` stops
    /// counting: dropped until GitHub answers. True when it was dropped now.
    pub fn drop_overdue_memberships(&mut self, providers: &Providers, now: UnixTime) -> bool {
        let Some(until) = self.github_until else {
            return false;
        };
        let ttl = providers
            .get(self.provider.as_str())
            .map_or(0, |p| p.membership_ttl_secs);
        if self.github_unresolved || now < until.plus(ttl) {
            return false;
        }
        self.github_orgs.clear();
        self.github_teams.clear();
        self.email = None;
        self.email_verified = None;
        self.github_unresolved = true;
        true
    }

    /// The identity claims of a refreshed ID token replace the old ones (groups may have
    /// changed); the session's lifetimes stay.
    pub fn update_identity(
        &mut self,
        provider: &ProviderConfig,
        t: VerifiedIdToken,
        names: &ListClaims,
    ) {
        self.hd = hosted_domain(provider, &t);
        self.groups = t.list(&names.groups);
        self.groups_unresolved = false;
        self.roles = t.list(&names.roles);
        self.groups_omitted = false;
        self.email = t.email;
        self.email_verified = t.email_verified;
        self.name = t.name;
    }

    /// Seals the session for its cookie (split over several when needed). What would overflow
    /// [`crate::http::cookies::MAX_CHUNKS`] cookies is left out, least needed first: the ID token
    /// (logout then goes without `id_token_hint`), then the groups (marked so).
    pub fn seal(
        mut self,
        sealer: &Sealer,
        name: &str,
        client_id: &ClientId,
    ) -> Result<(Self, String), SessionSealError> {
        let ad = binding(name, client_id);
        let max = crate::http::cookies::MAX_CHUNKS * (MAX_COOKIE_VALUE - 2);
        loop {
            let sealed = sealer
                .seal_json(Purpose::Session, &ad, &self)
                .map_err(SessionSealError::Seal)?;
            if sealed.len() <= max {
                return Ok((self, sealed));
            }
            if self.tokens.id_token.is_some() {
                self.tokens.id_token = None;
            } else if !self.groups.is_empty() {
                self.groups.clear();
                self.groups_omitted = true;
            } else {
                return Err(SessionSealError::TooLarge);
            }
        }
    }

    /// How the person is named on pages: email, else name, else `sub`.
    pub fn shown_as(&self) -> &str {
        self.email
            .as_deref()
            .or(self.name.as_deref())
            .unwrap_or(&self.sub)
    }

    /// Whether the session is still good at `now`: not past its absolute end (nor `ttl_secs`
    /// after sign-in, when `SESSION_TTL` was lowered since), not idle for longer than
    /// `idle_secs`, and from a configured provider and its issuer.
    pub fn check(
        &self,
        now: UnixTime,
        providers: &Providers,
        ttl_secs: u64,
        idle_secs: Option<u64>,
    ) -> Result<(), NoSession> {
        // A multi-tenant provider's session is good while its tenant is still let in: taking a
        // tenant off OIDC_ALLOWED_TENANTS ends its sessions, not only its next sign-ins.
        let known = providers.get(self.provider.as_str()).is_some_and(|p| {
            p.issuer == self.iss
                && p.tenants.as_ref().is_none_or(|allowed| {
                    self.tid.as_deref().is_some_and(|tid| allowed.allows(tid))
                })
        });
        let ends = self.exp.min(self.iat.plus(ttl_secs));
        if !known || now >= ends || self.iat > now.plus(60) {
            return Err(NoSession::Expired);
        }
        if idle_secs.is_some_and(|idle| now >= self.seen.max(self.iat).plus(idle)) {
            return Err(NoSession::Idle);
        }
        Ok(())
    }

    /// Moves the idle timer when it has moved enough (a tenth of the idle lifetime), so the
    /// cookie is not rewritten on every request. True when it moved.
    pub fn touch(&mut self, now: UnixTime, idle_secs: Option<u64>) -> bool {
        if self.touch_due(now, idle_secs) {
            self.seen = now;
            return true;
        }
        false
    }

    /// `touch` would move the idle timer.
    pub fn touch_due(&self, now: UnixTime, idle_secs: Option<u64>) -> bool {
        idle_secs.is_some_and(|idle| now.since(self.seen.max(self.iat)) >= (idle / 10).max(1))
    }

    /// A refresh is due: there is a refresh token and the access token is gone or within
    /// `margin` seconds of expiry (without a known expiry, never), or what GitHub said is
    /// due to be read again.
    pub fn needs_refresh(&self, now: UnixTime, margin: u64) -> bool {
        if self.github_until.is_some_and(|until| now >= until) {
            return true;
        }
        self.tokens.refresh_token.is_some()
            && self
                .tokens
                .access_expires_at
                .is_some_and(|e| now.plus(margin) >= e)
    }

    /// The access token for the origin, while it is valid.
    pub fn live_access_token(&self, now: UnixTime) -> Option<&str> {
        let token = self.tokens.access_token.as_ref()?;
        self.tokens
            .access_expires_at
            .is_none_or(|e| e > now)
            .then(|| token.secret().as_str())
    }

    /// The person as `/auth/userinfo` shows them; `email` is the one the policy vouches for
    /// (the same the origin is told), never an address the provider did not verify.
    pub fn userinfo(&self, email: Option<VouchedEmail<'_>>) -> serde_json::Value {
        serde_json::json!({
            "provider": self.provider.as_str(),
            "tid": self.tid,
            "iss": self.iss.as_str(),
            "sub": self.sub,
            "email": email.map(|e| e.address),
            "email_verified": email.map(|e| e.verified),
            "name": self.name,
            "groups": self.groups,
            "roles": self.roles,
            "groups_omitted": self.groups_omitted,
            "groups_unresolved": self.groups_unresolved,
            "acr": self.auth.acr,
            "amr": self.auth.amr,
            "auth_time": self.auth.auth_time,
            "iat": self.iat,
            "exp": self.exp,
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SessionSealError {
    Seal(SealError),
    TooLarge,
}

/// Why a request has no session (for the log line; the person just signs in again).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoSession {
    NoCookie,
    Unreadable,
    Expired,
    Idle,
    /// Ended by logout, back-channel logout or a refused refresh (server-side sessions).
    Ended,
    /// The session store could not be reached (server-side sessions).
    StoreUnavailable,
}

/// What a session cookie is bound to (the AEAD's associated data): its name and the client
/// id, so a cookie from another deployment sharing COOKIE_SECRET and the issuer does not open.
pub fn binding(name: &str, client_id: &ClientId) -> String {
    format!("{name}\u{0}{}", client_id.as_str())
}

/// Google's `hd` claim, only from a Google provider: another provider's `hd` means nothing.
fn hosted_domain(provider: &ProviderConfig, t: &VerifiedIdToken) -> Option<String> {
    if provider.kind != ProviderKind::Google {
        return None;
    }
    t.claims
        .get("hd")
        .and_then(|v| v.as_str())
        .filter(|d| !d.is_empty() && d.len() <= 253)
        .map(str::to_ascii_lowercase)
}

/// The session cookie as it came in: its sealed value (joined from its chunks) and the chunk
/// numbers present, so that a rewrite can delete the stale ones.
#[derive(Debug, Clone, Default)]
pub struct SessionCookie {
    pub sealed: Option<String>,
    pub chunks: Vec<usize>,
}

impl SessionCookie {
    pub fn from_header(jar: &CookieJar, cookie_header: Option<&str>) -> Self {
        let Some(header) = cookie_header else {
            return Self::default();
        };
        let cookies = crate::http::cookies::parse_cookie_header(header);
        let read = read_chunked(jar, &cookies, &jar.session_name());
        Self {
            sealed: read.value,
            chunks: read.present,
        }
    }

    /// The `Set-Cookie` values that end the session in the browser.
    pub fn delete(&self, jar: &CookieJar) -> Vec<String> {
        jar.delete_chunked(&jar.session_name(), &self.chunks)
    }
}

/// Opens a cookie session: absent, unopenable (tampered, other key, truncated) or expired all
/// mean no session.
pub fn open_session(
    sealer: &Sealer,
    jar: &CookieJar,
    cookie: &SessionCookie,
    client_id: &ClientId,
) -> Result<Session, NoSession> {
    let value = cookie.sealed.as_deref().ok_or(NoSession::NoCookie)?;
    sealer
        .open_json(
            Purpose::Session,
            &binding(&jar.session_name(), client_id),
            value,
        )
        .map_err(|_| NoSession::Unreadable)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Reads and checks the session from a `Cookie` header, as a request would.
    fn read_session(
        sealer: &Sealer,
        jar: &CookieJar,
        cookie_header: Option<&str>,
        issuer: &Issuer,
        client_id: &ClientId,
        now: u64,
    ) -> Result<Session, NoSession> {
        let cookie = SessionCookie::from_header(jar, cookie_header);
        let session = open_session(sealer, jar, &cookie, client_id)?;
        session.check(
            UnixTime::from_secs(now),
            &Providers::for_tests(issuer.as_str()),
            u64::MAX,
            None,
        )?;
        Ok(session)
    }

    fn t(secs: u64) -> UnixTime {
        UnixTime::from_secs(secs)
    }

    fn client() -> ClientId {
        ClientId::new("client")
    }

    fn sealer() -> Sealer {
        Sealer::new(&[[3u8; 32]]).unwrap()
    }

    fn session(groups: usize) -> Session {
        Session {
            sub: "alice".into(),
            email: Some("alice@example.com".into()),
            email_verified: Some(true),
            name: Some("Alice".into()),
            groups: (0..groups)
                .map(|i| format!("00000000-0000-0000-0000-{i:012}"))
                .collect(),
            roles: vec!["reader".into()],
            ..Session::blank(
                ProviderId::default_id(),
                Issuer::new("https://idp"),
                SessionTokens::default(),
                UnixTime::from_secs(100),
                UnixTime::from_secs(1000),
            )
        }
    }

    fn header(jar: &CookieJar, sealed: &str) -> String {
        format!("other=1; {}={sealed}", jar.session_name())
    }

    #[test]
    fn session_round_trips_through_its_cookie() {
        let jar = CookieJar::new(true);
        let (s, sealed) = session(3)
            .seal(&sealer(), &jar.session_name(), &client())
            .unwrap();
        let read = read_session(
            &sealer(),
            &jar,
            Some(&header(&jar, &sealed)),
            &Issuer::new("https://idp"),
            &client(),
            500,
        )
        .unwrap();
        assert_eq!(read, s);
    }

    /// Every field, set to something other than its default, reads back as written: the
    /// reading struct and the written one name the fields alike.
    #[test]
    fn every_field_reads_back_as_written() {
        let full = Session {
            provider: ProviderId::parse("staff").unwrap(),
            groups_unresolved: true,
            groups_omitted: true,
            tid: Some("tenant".into()),
            hd: Some("example.com".into()),
            github_orgs: vec!["acme".into()],
            github_teams: vec!["acme/ops".into()],
            github_until: Some(UnixTime::from_secs(900)),
            github_unresolved: true,
            provider_sid: Some("sid-1".into()),
            auth: AuthContext {
                acr: Some("mfa".into()),
                amr: vec!["pwd".into(), "otp".into()],
                acrs: vec!["c1".into()],
                auth_time: Some(UnixTime::from_secs(90)),
            },
            tokens: SessionTokens {
                access_token: Some(StoredSecret::new("at".into())),
                access_expires_at: Some(UnixTime::from_secs(400)),
                refresh_token: Some(StoredSecret::new("rt".into())),
                id_token: Some(StoredSecret::new("idt".into())),
            },
            seen: UnixTime::from_secs(300),
            ..session(2)
        };
        let json = serde_json::to_value(&full).unwrap();
        let fields = json.as_object().unwrap();
        assert_eq!(fields.len(), 25, "{json}");
        let read: Session = serde_json::from_value(json.clone()).unwrap();
        assert_eq!(read, full);
        // And the smallest session: only what has no default.
        let least: Session =
            serde_json::from_str(r#"{"iss":"https://idp","sub":"alice","iat":100,"exp":1000}"#)
                .unwrap();
        assert_eq!(least.tokens, SessionTokens::default());
        assert!(least.auth.is_empty() && least.provider.is_default());
    }

    #[test]
    fn expired_or_foreign_issuer_sessions_are_not_sessions() {
        let jar = CookieJar::new(true);
        let (_, sealed) = session(0)
            .seal(&sealer(), &jar.session_name(), &client())
            .unwrap();
        let h = header(&jar, &sealed);
        assert_eq!(
            read_session(
                &sealer(),
                &jar,
                Some(&h),
                &Issuer::new("https://idp"),
                &client(),
                1000
            ),
            Err(NoSession::Expired)
        );
        assert_eq!(
            read_session(
                &sealer(),
                &jar,
                Some(&h),
                &Issuer::new("https://other"),
                &client(),
                500
            ),
            Err(NoSession::Expired)
        );
    }

    #[test]
    fn tampered_garbage_and_foreign_key_cookies_are_not_sessions() {
        let jar = CookieJar::new(false);
        let (_, sealed) = session(0)
            .seal(&sealer(), &jar.session_name(), &client())
            .unwrap();
        let iss = Issuer::new("https://idp");
        let mut flipped = sealed.clone().into_bytes();
        flipped[10] = if flipped[10] == b'A' { b'B' } else { b'A' };
        let flipped = String::from_utf8(flipped).unwrap();
        let other_key = Sealer::new(&[[4u8; 32]]).unwrap();
        for bad in [flipped.as_str(), &sealed[..sealed.len() / 2], "garbage", ""] {
            assert_eq!(
                read_session(
                    &sealer(),
                    &jar,
                    Some(&header(&jar, bad)),
                    &iss,
                    &client(),
                    500
                ),
                Err(NoSession::Unreadable),
                "{bad:.12}"
            );
        }
        assert_eq!(
            read_session(
                &other_key,
                &jar,
                Some(&header(&jar, &sealed)),
                &iss,
                &client(),
                500
            ),
            Err(NoSession::Unreadable)
        );
        assert_eq!(
            read_session(&sealer(), &jar, None, &iss, &client(), 500),
            Err(NoSession::NoCookie)
        );
    }

    #[test]
    fn a_transaction_cookie_cannot_pose_as_a_session() {
        let jar = CookieJar::new(true);
        let sealed = sealer()
            .seal_json(Purpose::LoginTransaction, &jar.session_name(), &session(0))
            .unwrap();
        assert_eq!(
            read_session(
                &sealer(),
                &jar,
                Some(&header(&jar, &sealed)),
                &Issuer::new("https://idp"),
                &client(),
                500
            ),
            Err(NoSession::Unreadable)
        );
    }

    #[test]
    fn a_session_from_another_client_does_not_open() {
        let jar = CookieJar::new(true);
        let (_, sealed) = session(0)
            .seal(&sealer(), &jar.session_name(), &ClientId::new("app-a"))
            .unwrap();
        let iss = Issuer::new("https://idp");
        assert_eq!(
            read_session(
                &sealer(),
                &jar,
                Some(&header(&jar, &sealed)),
                &iss,
                &ClientId::new("app-b"),
                500
            ),
            Err(NoSession::Unreadable)
        );
        assert!(read_session(
            &sealer(),
            &jar,
            Some(&header(&jar, &sealed)),
            &iss,
            &ClientId::new("app-a"),
            500
        )
        .is_ok());
    }

    #[test]
    fn a_big_session_is_chunked_and_what_overflows_is_left_out_in_order() {
        let jar = CookieJar::new(true);
        // Entra-sized: tokens of several KB each.
        let mut s = session(40);
        s.tokens = SessionTokens {
            access_token: Some(StoredSecret::new("a".repeat(5000))),
            access_expires_at: Some(UnixTime::from_secs(900)),
            refresh_token: Some(StoredSecret::new("r".repeat(1500))),
            id_token: Some(StoredSecret::new("i".repeat(4000))),
        };
        let (kept, sealed) = s
            .clone()
            .seal(&sealer(), &jar.session_name(), &client())
            .unwrap();
        assert_eq!(kept, s, "it fits in chunks unchanged");
        let set = jar
            .set_chunked(&jar.session_name(), &sealed, 60, &[])
            .unwrap();
        assert!(set.len() > 3);
        let header: String = set
            .iter()
            .map(|c| c.split(';').next().unwrap())
            .collect::<Vec<_>>()
            .join("; ");
        let read = read_session(
            &sealer(),
            &jar,
            Some(&header),
            &Issuer::new("https://idp"),
            &client(),
            500,
        )
        .unwrap();
        assert_eq!(read, s);

        // Too big even for the chunks: the ID token goes first, then the groups.
        s.tokens.id_token = Some(StoredSecret::new("i".repeat(9000)));
        s.groups = (0..400)
            .map(|i| format!("group-{i:04}-{}", "g".repeat(20)))
            .collect();
        let (kept, _) = s.clone().seal(&sealer(), "n", &client()).unwrap();
        assert!(kept.tokens.id_token.is_none());
        assert!(kept.groups.is_empty() && kept.groups_omitted);
        assert!(kept.tokens.refresh_token.is_some());

        s.tokens.access_token = Some(StoredSecret::new("a".repeat(30_000)));
        assert_eq!(
            s.seal(&sealer(), "n", &client()).unwrap_err(),
            SessionSealError::TooLarge
        );
    }

    #[test]
    fn a_tenant_taken_off_the_allowed_list_ends_its_sessions() {
        use crate::config::providers::Tenants;
        const T: &str = "72f988bf-86f1-41af-91ab-2d7cd011db47";
        const U: &str = "11111111-2222-3333-4444-555555555555";
        let listed =
            |t: &str| Providers::for_tests("https://idp").with_tenants(Tenants::parse(t).unwrap());
        let mut s = session(0);
        s.tid = Some(T.into());
        assert_eq!(s.check(t(150), &listed(T), u64::MAX, None), Ok(()));
        assert_eq!(s.check(t(150), &listed("*"), u64::MAX, None), Ok(()));
        assert_eq!(
            s.check(t(150), &listed(U), u64::MAX, None),
            Err(NoSession::Expired)
        );
        // A session without a tenant from a provider that lets tenants in: none of them.
        s.tid = None;
        assert_eq!(
            s.check(t(150), &listed("*"), u64::MAX, None),
            Err(NoSession::Expired)
        );
    }

    #[test]
    fn idle_sessions_end_and_the_timer_moves_only_in_steps() {
        let iss = Providers::for_tests("https://idp");
        let mut s = session(0);
        let idle = Some(100);
        assert_eq!(s.check(t(150), &iss, u64::MAX, idle), Ok(()));
        assert_eq!(s.check(t(200), &iss, u64::MAX, idle), Err(NoSession::Idle));
        assert_eq!(s.check(t(200), &iss, u64::MAX, None), Ok(()));
        assert!(
            !s.touch(t(105), idle),
            "moved less than a tenth: no rewrite"
        );
        assert!(s.touch(t(110), idle));
        assert_eq!(s.seen, t(110));
        assert_eq!(s.check(t(200), &iss, u64::MAX, idle), Ok(()));
        assert!(!s.touch(t(500), None));
        assert_eq!(
            s.check(t(1000), &iss, u64::MAX, idle),
            Err(NoSession::Expired)
        );
    }

    #[test]
    fn refresh_is_due_near_expiry_only_with_a_refresh_token() {
        let mut s = session(0);
        s.tokens.access_expires_at = Some(t(400));
        assert!(!s.needs_refresh(t(390), 60), "no refresh token");
        s.tokens.refresh_token = Some(StoredSecret::new("rt".into()));
        assert!(!s.needs_refresh(t(300), 60));
        assert!(s.needs_refresh(t(340), 60));
        assert!(s.needs_refresh(t(500), 0));
        s.tokens.access_expires_at = None;
        assert!(!s.needs_refresh(t(500), 60));
        s.tokens.access_token = Some(StoredSecret::new("at".into()));
        assert_eq!(s.live_access_token(t(500)), Some("at"));
        s.tokens.access_expires_at = Some(t(400));
        assert_eq!(s.live_access_token(t(399)), Some("at"));
        assert_eq!(s.live_access_token(t(400)), None);
        assert_eq!(
            format!("{:?}", s.tokens.access_token),
            "Some(StoredSecret([redacted]))"
        );
    }
}
