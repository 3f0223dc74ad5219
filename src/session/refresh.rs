//! Refreshing a session's tokens (RFC 6749 section 6, OpenID Connect Core 12.2).

use crate::config::providers::{GitHubUrls, ProviderConfig};
use crate::config::Config;
use crate::http::http_url::HttpUrl;
use crate::oidc::github::{reads_memberships, GitHubClient, GitHubError};
use crate::oidc::graph::overage_groups;
use crate::oidc::id_token::{self, IdTokenCheck, IdTokenFailure};
use crate::oidc::provider::{ProviderCache, ProviderError};
use crate::oidc::token_endpoint::{client_assertion, client_request, RefreshResponse, TokenError};
use crate::platform::Platform;
use crate::session::{Session, StoredSecret};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RefreshError {
    /// The provider refused the refresh token (`invalid_grant`: revoked, expired, reused): the
    /// session is over.
    Refused(String),
    /// The provider answered, but not acceptably (an ID token for someone else, a bad
    /// signature), or said the session's access token is revoked (GitHub): the session is over
    /// too, at once (no refresh token was spent that another request could have raced).
    Rejected(String),
    /// The provider could not be reached or failed (5xx): try again on a later request.
    Unavailable(String),
}

impl RefreshError {
    pub fn ends_session(&self) -> bool {
        !matches!(self, Self::Unavailable(_))
    }

    pub fn detail(&self) -> &str {
        match self {
            Self::Refused(d) | Self::Rejected(d) | Self::Unavailable(d) => d,
        }
    }
}

/// Refreshes a session at its own provider: GitHub's are read again from its API, others
/// spend their refresh token.
pub async fn refresh_session<P: Platform>(
    cfg: &Config,
    cache: &ProviderCache,
    platform: &P,
    session: &Session,
) -> Result<Session, RefreshError> {
    let provider = cfg
        .providers
        .get(session.provider.as_str())
        .filter(|p| p.issuer == session.iss)
        .ok_or_else(|| {
            RefreshError::Rejected("the session's provider is no longer configured".into())
        })?;
    match provider.github() {
        Some(urls) => refresh_github(cfg, provider, &urls, platform, session).await,
        None => refresh_oidc(cfg, provider, cache, platform, session).await,
    }
}

/// Spends the refresh token at the token endpoint (`endpoint`).
async fn spend_refresh_token<P: Platform>(
    provider: &ProviderConfig,
    endpoint: &HttpUrl,
    platform: &P,
    refresh_token: &StoredSecret,
) -> Result<RefreshResponse, RefreshError> {
    let assertion = client_assertion(platform, provider, endpoint)
        .await
        .map_err(RefreshError::Unavailable)?;
    let req = client_request(
        provider,
        endpoint,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh_token.secret()),
        ],
        assertion.as_ref(),
    );
    let resp = platform
        .fetch(req)
        .await
        .map_err(|e| RefreshError::Unavailable(format!("token request failed: {e}")))?;
    RefreshResponse::parse(&resp).map_err(|e| match e {
        TokenError::Refused { status, .. } if status < 500 => RefreshError::Refused(e.to_string()),
        other => RefreshError::Unavailable(other.to_string()),
    })
}

/// A GitHub session: a new access token when it expires (GitHub Apps' expiring tokens), then
/// the person read again: the same numeric id, their memberships now.
async fn refresh_github<P: Platform>(
    cfg: &Config,
    provider: &ProviderConfig,
    urls: &GitHubUrls,
    platform: &P,
    session: &Session,
) -> Result<Session, RefreshError> {
    let now = platform.now();
    let mut next = session.clone();
    let expiring = next
        .tokens
        .access_expires_at
        .is_some_and(|e| now.plus(cfg.refresh_margin_secs) >= e);
    if let (true, Some(rt)) = (expiring, &session.tokens.refresh_token) {
        let answer = spend_refresh_token(provider, &urls.token, platform, rt).await?;
        let at = answer.access_token.ok_or_else(|| {
            RefreshError::Rejected("GitHub answered without an access_token".into())
        })?;
        next.tokens.access_token = Some(StoredSecret::new(at.secret().clone()));
        next.tokens.access_expires_at = answer.expires_in.map(|e| now.plus(e));
        if let Some(rt) = answer.refresh_token {
            next.tokens.refresh_token = Some(StoredSecret::new(rt.secret().clone()));
        }
    }
    let token = next
        .tokens
        .access_token
        .clone()
        .ok_or_else(|| RefreshError::Rejected("the session has no access token".into()))?;
    let who = GitHubClient::new(platform, urls, token.secret())
        .identify(reads_memberships(provider))
        .await
        .map_err(|e| match e {
            GitHubError::Revoked => RefreshError::Rejected(e.to_string()),
            GitHubError::Unavailable(why) => RefreshError::Unavailable(why),
        })?;
    if who.id != session.sub {
        return Err(RefreshError::Rejected(
            "GitHub says the token is another user's".into(),
        ));
    }
    next.update_github(provider, who, now);
    next.seen = now;
    Ok(next)
}

/// Spends the session's refresh token and returns the session with the new tokens. A new ID
/// token must be for the same person from the same issuer for this client (OIDC Core 12.2);
/// its identity claims then replace the old ones.
async fn refresh_oidc<P: Platform>(
    cfg: &Config,
    provider: &ProviderConfig,
    cache: &ProviderCache,
    platform: &P,
    session: &Session,
) -> Result<Session, RefreshError> {
    let Some(refresh_token) = &session.tokens.refresh_token else {
        return Err(RefreshError::Refused(
            "the session has no refresh token".into(),
        ));
    };
    let meta = cache
        .metadata(platform, &provider.issuer)
        .await
        .map_err(|e| RefreshError::Unavailable(format!("{e:?}")))?;
    let answer =
        spend_refresh_token(provider, &meta.token_endpoint, platform, refresh_token).await?;
    let now = platform.now();
    let mut next = session.clone();
    if let Some(raw) = &answer.id_token {
        let check = IdTokenCheck {
            raw: raw.secret(),
            jwks_uri: &meta.jwks_uri,
            nonce: None,
            access_token: answer.access_token.as_ref().map(|t| t.secret().as_str()),
            now,
            issuer_template: meta.issuer_template.as_ref(),
        };
        let verified = id_token::verify(provider, cache, platform, check)
            .await
            .map_err(|e| match e {
                IdTokenFailure::Provider(ProviderError::Unavailable(why)) => {
                    RefreshError::Unavailable(why)
                }
                IdTokenFailure::Provider(ProviderError::Invalid(why)) => {
                    RefreshError::Rejected(why)
                }
                IdTokenFailure::Rejected(why) => RefreshError::Rejected(why),
                IdTokenFailure::TenantNotAllowed => {
                    RefreshError::Rejected("the tenant is no longer allowed".into())
                }
            })?;
        // iss and aud were checked by the claim rules; the person must be the same.
        if verified.subject != session.sub {
            return Err(RefreshError::Rejected(
                "the refreshed ID token is for another subject".into(),
            ));
        }
        let access = answer.access_token.as_ref().map(|t| t.secret().as_str());
        let overage = overage_groups(provider, platform, &verified.claims, access).await;
        next.update_identity(provider, verified, &cfg.list_claims);
        next.apply_overage(overage);
        // Kept only when sign-in kept one (the provider has an end_session_endpoint).
        if next.tokens.id_token.is_some() {
            next.tokens.id_token = Some(StoredSecret::new(raw.secret().clone()));
        }
    }
    if let Some(at) = &answer.access_token {
        if next.tokens.access_token.is_some() || cfg.pass_access_token.is_some() {
            next.tokens.access_token = Some(StoredSecret::new(at.secret().clone()));
        }
    }
    next.tokens.access_expires_at = answer.expires_in.map(|e| now.plus(e));
    if let Some(rt) = &answer.refresh_token {
        next.tokens.refresh_token = Some(StoredSecret::new(rt.secret().clone()));
    }
    next.seen = now;
    Ok(next)
}
