//! The signed-in session: who the person is and until when, sealed in a cookie.

use serde::{Deserialize, Serialize};

use crate::cookies::{parse_cookie_header, CookieJar};
use crate::id_token::{string_list_claim, VerifiedIdToken};
use crate::seal::{Purpose, SealError, Sealer};
use crate::types::{ClientId, Issuer};

/// Browsers keep about 4096 bytes per cookie, name and attributes included.
pub const MAX_COOKIE_VALUE: usize = 3800;

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
pub struct Session {
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
    /// True when the groups did not fit in the cookie and were left out.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub groups_omitted: bool,
    /// The access token, kept only when it is passed to the origin (`PASS_ACCESS_TOKEN`).
    #[serde(default, rename = "at", skip_serializing_if = "Option::is_none")]
    pub access_token: Option<StoredAccessToken>,
    pub iat: u64,
    pub exp: u64,
}

#[derive(Serialize, Deserialize, Clone, PartialEq)]
pub struct StoredAccessToken {
    #[serde(rename = "v")]
    value: String,
    /// When it expires (seconds since the epoch); `None` when the provider did not say.
    #[serde(rename = "e", default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<u64>,
}

impl StoredAccessToken {
    pub fn new(value: String, expires_at: Option<u64>) -> Self {
        Self { value, expires_at }
    }

    pub fn secret(&self) -> &str {
        &self.value
    }
}

impl std::fmt::Debug for StoredAccessToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "StoredAccessToken([redacted], expires_at: {:?})",
            self.expires_at
        )
    }
}

/// Claim names for groups and roles (dotted paths allowed: `realm_access.roles`).
pub struct ClaimNames<'a> {
    pub groups: &'a str,
    pub roles: &'a str,
}

impl Session {
    pub fn from_id_token(
        t: VerifiedIdToken,
        names: &ClaimNames<'_>,
        access_token: Option<StoredAccessToken>,
        now: u64,
        ttl_secs: u64,
    ) -> Self {
        Self {
            groups: string_list_claim(&t.claims, names.groups),
            roles: string_list_claim(&t.claims, names.roles),
            iss: t.issuer,
            sub: t.subject,
            email: t.email,
            email_verified: t.email_verified,
            name: t.name,
            groups_omitted: false,
            access_token,
            iat: now,
            exp: now.saturating_add(ttl_secs),
        }
    }

    /// Seals the session for its cookie. Groups that would overflow the cookie are left out
    /// (and marked so) rather than failing the sign-in.
    pub fn seal(
        mut self,
        sealer: &Sealer,
        name: &str,
        client_id: &ClientId,
    ) -> Result<(Self, String), SessionSealError> {
        let ad = binding(name, client_id);
        let sealed = sealer
            .seal_json(Purpose::Session, &ad, &self)
            .map_err(SessionSealError::Seal)?;
        if sealed.len() <= MAX_COOKIE_VALUE {
            return Ok((self, sealed));
        }
        if !self.groups.is_empty() {
            self.groups.clear();
            self.groups_omitted = true;
            let sealed = sealer
                .seal_json(Purpose::Session, &ad, &self)
                .map_err(SessionSealError::Seal)?;
            if sealed.len() <= MAX_COOKIE_VALUE {
                return Ok((self, sealed));
            }
        }
        Err(SessionSealError::TooLarge)
    }

    pub fn subject(&self) -> crate::assertion::Subject<'_> {
        crate::assertion::Subject {
            idp: self.iss.as_str(),
            sub: &self.sub,
            email: self.email.as_deref(),
            name: self.name.as_deref(),
            groups: &self.groups,
            roles: &self.roles,
            since: self.iat,
            until: self.exp,
        }
    }

    pub fn is_current(&self, now: u64, issuer: &Issuer) -> bool {
        now < self.exp && self.iat <= now.saturating_add(60) && &self.iss == issuer
    }

    pub fn userinfo(&self) -> serde_json::Value {
        serde_json::json!({
            "iss": self.iss.as_str(),
            "sub": self.sub,
            "email": self.email,
            "email_verified": self.email_verified,
            "name": self.name,
            "groups": self.groups,
            "roles": self.roles,
            "groups_omitted": self.groups_omitted,
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
}

/// What a session cookie is bound to (the AEAD's associated data): its name and the client
/// id, so a cookie from another deployment sharing COOKIE_SECRET and the issuer does not open.
fn binding(name: &str, client_id: &ClientId) -> String {
    format!("{name}\u{0}{}", client_id.as_str())
}

/// Reads the session from the request's `Cookie` header: absent, unopenable (tampered, other
/// key, truncated) or expired all mean no session.
pub fn read_session(
    sealer: &Sealer,
    jar: &CookieJar,
    cookie_header: Option<&str>,
    issuer: &Issuer,
    client_id: &ClientId,
    now: u64,
) -> Result<Session, NoSession> {
    let name = jar.session_name();
    let value = cookie_header
        .and_then(|h| {
            parse_cookie_header(h)
                .into_iter()
                .find(|(n, _)| *n == name)
                .map(|(_, v)| v)
        })
        .ok_or(NoSession::NoCookie)?;
    let session: Session = sealer
        .open_json(Purpose::Session, &binding(&name, client_id), value)
        .map_err(|_| NoSession::Unreadable)?;
    if session.is_current(now, issuer) {
        Ok(session)
    } else {
        Err(NoSession::Expired)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client() -> ClientId {
        ClientId::new("client")
    }

    fn sealer() -> Sealer {
        Sealer::new(&[[3u8; 32]]).unwrap()
    }

    fn session(groups: usize) -> Session {
        Session {
            iss: Issuer::new("https://idp"),
            sub: "alice".into(),
            email: Some("alice@example.com".into()),
            email_verified: Some(true),
            name: Some("Alice".into()),
            groups: (0..groups)
                .map(|i| format!("00000000-0000-0000-0000-{i:012}"))
                .collect(),
            roles: vec!["reader".into()],
            groups_omitted: false,
            access_token: None,
            iat: 100,
            exp: 1000,
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
    fn too_many_groups_are_left_out_rather_than_failing() {
        let (s, sealed) = session(200).seal(&sealer(), "n", &client()).unwrap();
        assert!(s.groups.is_empty() && s.groups_omitted);
        assert!(sealed.len() <= MAX_COOKIE_VALUE);
    }
}
