//! Who a request is: a live session or a verified access token, made once per request. The
//! policy's view, the identity headers and the signed assertion are all derived from it.

use std::borrow::Cow;

use sha2::{Digest, Sha256};

use crate::access::access_token::VerifiedAccessToken;
use crate::access::assertion::Subject;
use crate::access::policy::{Identity, VouchedEmail};
use crate::access::token_cache::TokenDigest;
use crate::config::providers::{ProviderId, Providers};
use crate::session::Session;

pub enum Principal<'a> {
    Session(&'a Session),
    /// A Bearer token, with the digest of the token itself and the configured provider whose
    /// issuer signed it (`None`: another of `API_ISSUERS`, or one tenant of a multi-tenant API).
    Token(&'a VerifiedAccessToken, TokenDigest, Option<&'a ProviderId>),
}

impl Principal<'_> {
    /// Who the origin and the log are told: `sub`, and for a named provider (`PROVIDERS`)
    /// `provider:sub`, for a session and for a token its issuer signed alike; a token from any
    /// other issuer is `issuer#sub`. Two issuers' users never share a name.
    pub fn user(&self) -> Cow<'_, str> {
        match self {
            Self::Session(s) if !s.provider.is_default() => {
                Cow::Owned(format!("{}:{}", s.provider, s.sub))
            }
            Self::Session(s) => Cow::Borrowed(&s.sub),
            Self::Token(t, _, Some(p)) if p.is_default() => Cow::Borrowed(&t.subject),
            Self::Token(t, _, Some(p)) => Cow::Owned(format!("{p}:{}", t.subject)),
            Self::Token(t, _, None) => Cow::Owned(format!("{}#{}", t.issuer.as_str(), t.subject)),
        }
    }

    pub fn groups(&self) -> &[String] {
        match self {
            Self::Session(s) => &s.groups,
            Self::Token(t, ..) => &t.groups,
        }
    }

    /// What the policy judges. An unstated email counts only from a provider
    /// `ALLOW_UNVERIFIED_EMAIL` covers: a session of it, or a token its issuer signed.
    pub fn identity(&self, providers: &Providers) -> Identity<'_> {
        let trusted = |id: &ProviderId| {
            providers
                .get(id.as_str())
                .is_some_and(|p| p.trust_unstated_email)
        };
        match self {
            Self::Session(s) => Identity {
                email: s.email.as_deref(),
                email_verified: s.email_verified,
                unstated_email_trusted: trusted(&s.provider),
                groups: &s.groups,
                roles: &s.roles,
                provider: Some(s.provider.as_str()),
                hosted_domain: s.hd.as_deref(),
                tenant: s.tid.as_deref(),
                groups_unresolved: s.groups_unresolved,
                github_orgs: &s.github_orgs,
                github_teams: &s.github_teams,
                github_unresolved: s.github_unresolved,
                auth: &s.auth,
            },
            Self::Token(t, _, provider) => Identity {
                auth: &t.auth,
                unstated_email_trusted: provider.is_some_and(trusted),
                tenant: t.tenant.as_deref(),
                ..Identity::basic(t.email.as_deref(), t.email_verified, &t.groups, &t.roles)
            },
        }
    }

    /// What the signed assertion says, keyed by the credential that was presented. `email`
    /// is only one the policy vouches for.
    pub fn subject<'p>(&'p self, email: Option<VouchedEmail<'p>>) -> Subject<'p> {
        match self {
            Self::Session(s) => Subject {
                idp: s.iss.as_str(),
                sub: &s.sub,
                email,
                name: s.name.as_deref(),
                groups: &s.groups,
                roles: &s.roles,
                credential: session_digest(s),
                until: s.exp,
                auth: &s.auth,
            },
            Self::Token(t, digest, _) => Subject {
                idp: t.issuer.as_str(),
                sub: &t.subject,
                email,
                name: None,
                groups: &t.groups,
                roles: &t.roles,
                credential: token_digest(t, digest),
                until: t.expires_at,
                auth: &t.auth,
            },
        }
    }
}

/// A session's identity as the assertion states it: a refresh that changes the groups, or
/// another session of the same person, is another credential. Serialized as JSON, so no two
/// different identities hash alike.
fn session_digest(s: &Session) -> [u8; 32] {
    let identity = (
        s.provider.as_str(),
        s.iss.as_str(),
        &s.sub,
        &s.email,
        &s.name,
        &s.groups,
        &s.roles,
        s.iat,
        s.exp,
        &s.auth,
    );
    let bytes = serde_json::to_vec(&identity).unwrap_or_default();
    let mut h = Sha256::new();
    h.update(b"session\0");
    h.update(bytes);
    h.finalize().into()
}

/// The token itself, and the issuer that vouched for it.
fn token_digest(t: &VerifiedAccessToken, token: &TokenDigest) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(b"token\0");
    h.update(token);
    h.update(t.issuer.as_str().as_bytes());
    h.finalize().into()
}
