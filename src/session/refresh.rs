//! Refreshing a session's tokens (RFC 6749 section 6, OpenID Connect Core 12.2) and keeping
//! concurrent refreshes of one session from spending its refresh token twice.

use std::cell::RefCell;
use std::collections::HashMap;
use std::future::Future;

use sha2::{Digest, Sha256};

use crate::config::Config;
use crate::gate::error::GateError;
use crate::oidc::id_token::{self, Expectations, VerifiedIdToken};
use crate::jose::jws::{self, UnverifiedJws};
use crate::platform::Platform;
use crate::oidc::provider::{KeyLookupError, ProviderCache, ProviderError};
use crate::session::{ClaimNames, Session, StoredSecret};
use crate::oidc::token_endpoint::{RefreshResponse, TokenError};
use crate::oidc::transaction::client_request;
use crate::base::types::Nonce;

/// How long a finished refresh answers for the refresh token it spent: a request that left the
/// browser with the old cookie before the new one arrived gets the new session too.
pub const REFRESH_GRACE_SECS: u64 = 60;
/// Finished refreshes remembered per isolate, at most.
const MAX_REMEMBERED: usize = 1000;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RefreshError {
    /// The provider refused the refresh token (`invalid_grant`: revoked, expired, reused): the
    /// session is over.
    Refused(String),
    /// The provider answered, but not acceptably (an ID token for someone else, a bad
    /// signature): the session is over too.
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

/// An ID token from the token endpoint and what it must match.
pub struct IdTokenCheck<'a> {
    pub raw: &'a str,
    pub jwks_uri: &'a str,
    /// `None` for refreshed tokens.
    pub nonce: Option<&'a Nonce>,
    /// The access token from the same answer, for `at_hash`.
    pub access_token: Option<&'a str>,
    pub now: u64,
}

/// Verifies an ID token from the token endpoint: signature with the provider's keys, then
/// every claim rule.
pub async fn verify_id_token<P: Platform>(
    cfg: &Config,
    cache: &ProviderCache,
    platform: &P,
    check: IdTokenCheck<'_>,
) -> Result<VerifiedIdToken, GateError> {
    let IdTokenCheck {
        raw,
        jwks_uri,
        nonce,
        access_token,
        now,
    } = check;
    let reject = |why: String| GateError::IdTokenRejected(why);
    let jws = UnverifiedJws::parse(raw).map_err(|e| reject(e.to_string()))?;
    let key = cache
        .key_for(platform, jwks_uri, &jws.header)
        .await
        .map_err(|e| match e {
            KeyLookupError::Provider(ProviderError::Unavailable(why)) => {
                GateError::ProviderUnavailable(why)
            }
            KeyLookupError::Provider(ProviderError::Invalid(why)) => GateError::ProviderConfig(why),
            KeyLookupError::Key(k) => reject(format!("no signing key for the token ({k:?})")),
        })?;
    let verified = jws::verify(platform.verifier(), jws, &key)
        .await
        .map_err(|e| reject(e.to_string()))?;
    let expect = Expectations {
        issuer: &cfg.issuer,
        client_id: &cfg.client_id,
        nonce,
        trusted_audiences: &[],
        now: i64::try_from(now).unwrap_or(i64::MAX),
        access_token,
    };
    id_token::validate(verified, &expect).map_err(|e| reject(e.to_string()))
}

/// Spends the session's refresh token at the token endpoint and returns the session with the
/// new tokens. A new ID token must be for the same person from the same issuer for this client
/// (OIDC Core 12.2); its identity claims then replace the old ones.
pub async fn refresh_session<P: Platform>(
    cfg: &Config,
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
        .metadata(platform, &cfg.issuer)
        .await
        .map_err(|e| RefreshError::Unavailable(format!("{e:?}")))?;
    let req = client_request(
        cfg,
        &meta.token_endpoint,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh_token.secret()),
        ],
    );
    let resp = platform
        .fetch(req)
        .await
        .map_err(|e| RefreshError::Unavailable(format!("token request failed: {e}")))?;
    let answer = RefreshResponse::parse(&resp).map_err(|e| match e {
        TokenError::Refused { status, .. } if status < 500 => RefreshError::Refused(e.to_string()),
        other => RefreshError::Unavailable(other.to_string()),
    })?;
    let now = platform.now();
    let mut next = session.clone();
    if let Some(raw) = &answer.id_token {
        let check = IdTokenCheck {
            raw: raw.secret(),
            jwks_uri: &meta.jwks_uri,
            nonce: None,
            access_token: answer.access_token.as_ref().map(|t| t.secret().as_str()),
            now,
        };
        let verified = verify_id_token(cfg, cache, platform, check)
            .await
            .map_err(|e| match e {
                GateError::ProviderUnavailable(why) => RefreshError::Unavailable(why),
                other => RefreshError::Rejected(other.log_detail()),
            })?;
        // iss and aud were checked by the claim rules; the person must be the same.
        if verified.subject != session.sub {
            return Err(RefreshError::Rejected(
                "the refreshed ID token is for another subject".into(),
            ));
        }
        let names = ClaimNames {
            groups: &cfg.groups_claim,
            roles: &cfg.roles_claim,
        };
        next.update_identity(verified, &names);
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
    next.tokens.access_expires_at = answer.expires_in.map(|e| now.saturating_add(e));
    if let Some(rt) = &answer.refresh_token {
        next.tokens.refresh_token = Some(StoredSecret::new(rt.secret().clone()));
    }
    next.seen = now;
    Ok(next)
}

/// Concurrent refreshes of one refresh token within an isolate share one call to the
/// provider: the first request does it; the others, seeing it under way, check back every
/// [`WAIT_STEP_MS`] until its answer is in (workerd does not let one request wait on another's
/// promise, so they poll on their own timers); and requests that still carry the old token
/// within [`REFRESH_GRACE_SECS`] get the same answer.
#[derive(Default)]
pub struct RefreshCoalescer {
    entries: RefCell<HashMap<[u8; 32], Entry>>,
}

/// How often a waiting request checks whether the refresh it waits for is done.
pub const WAIT_STEP_MS: u64 = 25;
/// How long a request waits for another's refresh before giving up on it (and going on with
/// the session it has).
pub const MAX_WAIT_MS: u64 = 10_000;

enum Entry {
    Pending,
    Done {
        result: Box<Result<Session, RefreshError>>,
        until: u64,
    },
}

/// Clears the pending mark if the leading request goes away before it finishes, so the
/// waiters stop waiting.
struct Leader<'a> {
    coalescer: &'a RefreshCoalescer,
    key: [u8; 32],
    done: bool,
}

impl Drop for Leader<'_> {
    fn drop(&mut self) {
        if !self.done {
            self.coalescer.entries.borrow_mut().remove(&self.key);
        }
    }
}

enum Seen {
    Done(Box<Result<Session, RefreshError>>),
    Pending,
    Nothing,
}

impl RefreshCoalescer {
    fn look(&self, key: &[u8; 32], now: u64) -> Seen {
        match self.entries.borrow().get(key) {
            Some(Entry::Done { result, until }) if *until > now => Seen::Done(result.clone()),
            Some(Entry::Pending) => Seen::Pending,
            _ => Seen::Nothing,
        }
    }

    pub async fn run<P: Platform, F>(
        &self,
        platform: &P,
        refresh_token: &str,
        now: u64,
        work: impl FnOnce() -> F,
    ) -> Result<Session, RefreshError>
    where
        F: Future<Output = Result<Session, RefreshError>>,
    {
        let key: [u8; 32] = Sha256::digest(refresh_token.as_bytes()).into();
        let mut waited = 0;
        loop {
            match self.look(&key, now) {
                Seen::Done(result) => return *result,
                Seen::Nothing if waited > 0 => {
                    return Err(RefreshError::Unavailable(
                        "the request refreshing this session went away".into(),
                    ))
                }
                Seen::Nothing => break,
                Seen::Pending if waited >= MAX_WAIT_MS => {
                    return Err(RefreshError::Unavailable(
                        "timed out waiting for another request's refresh".into(),
                    ))
                }
                Seen::Pending => {
                    platform.sleep_ms(WAIT_STEP_MS).await;
                    waited += WAIT_STEP_MS;
                }
            }
        }
        {
            let mut entries = self.entries.borrow_mut();
            entries.retain(|_, e| !matches!(e, Entry::Done { until, .. } if *until <= now));
            if entries.len() >= MAX_REMEMBERED {
                entries.retain(|_, e| matches!(e, Entry::Pending));
            }
            entries.insert(key, Entry::Pending);
        }
        let mut leader = Leader {
            coalescer: self,
            key,
            done: false,
        };
        let result = work().await;
        leader.done = true;
        let mut entries = self.entries.borrow_mut();
        if matches!(result, Err(RefreshError::Unavailable(_))) {
            entries.remove(&key);
        } else {
            entries.insert(
                key,
                Entry::Done {
                    result: Box::new(result.clone()),
                    until: now.saturating_add(REFRESH_GRACE_SECS),
                },
            );
        }
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::session::SessionTokens;
    use crate::testing::block_on;
    use crate::base::types::Issuer;
    use std::cell::Cell;
    use std::pin::Pin;
    use std::task::{Context, Poll, Wake, Waker};

    fn session(tag: &str) -> Session {
        Session {
            iss: Issuer::new("https://idp"),
            sub: tag.into(),
            email: None,
            email_verified: None,
            name: None,
            groups: vec![],
            roles: vec![],
            groups_omitted: false,
            provider_sid: None,
            tokens: SessionTokens::default(),
            iat: 0,
            exp: 10_000,
            seen: 0,
        }
    }

    /// A future that stays pending until `open` is set.
    struct Gate<'a>(&'a Cell<bool>);
    impl Future for Gate<'_> {
        type Output = ();
        fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
            if self.0.get() {
                Poll::Ready(())
            } else {
                cx.waker().wake_by_ref();
                Poll::Pending
            }
        }
    }

    struct Noop;
    impl Wake for Noop {
        fn wake(self: std::sync::Arc<Self>) {}
    }

    fn poll<F: Future>(f: Pin<&mut F>) -> Poll<F::Output> {
        let waker = Waker::from(std::sync::Arc::new(Noop));
        f.poll(&mut Context::from_waker(&waker))
    }

    /// Sleeps are one poll long: the waiter yields once per step.
    struct Clock;
    impl Platform for Clock {
        type Verifier = crate::jose::jws::RustVerifier;
        fn verifier(&self) -> &Self::Verifier {
            &crate::jose::jws::RustVerifier
        }
        fn now(&self) -> u64 {
            0
        }
        async fn fetch(
            &self,
            _: crate::http::OutboundRequest,
        ) -> Result<crate::http::Response, String> {
            Err("no network".into())
        }
        async fn kv_get(&self, _: &str) -> Option<String> {
            None
        }
        async fn kv_put(&self, _: &str, _: &str, _: u64) {}
        async fn session_store(
            &self,
            _: &str,
            _: crate::session::durable_object::StoreCall,
        ) -> Result<crate::session::durable_object::StoreAnswer, String> {
            Err("no store".into())
        }
        async fn sleep_ms(&self, _: u64) {
            let mut yielded = false;
            std::future::poll_fn(|cx| {
                if yielded {
                    Poll::Ready(())
                } else {
                    yielded = true;
                    cx.waker().wake_by_ref();
                    Poll::Pending
                }
            })
            .await
        }
        fn log(&self, _: &serde_json::Value) {}
    }

    #[test]
    fn concurrent_refreshes_of_one_token_call_the_provider_once() {
        let c = RefreshCoalescer::default();
        let calls = Cell::new(0);
        let open = Cell::new(false);
        let work = || async {
            calls.set(calls.get() + 1);
            Gate(&open).await;
            Ok(session("new"))
        };
        let mut first = Box::pin(c.run(&Clock, "rt-1", 100, work));
        let mut second = Box::pin(c.run(&Clock, "rt-1", 100, || async {
            calls.set(calls.get() + 100);
            Ok(session("other"))
        }));
        assert!(poll(first.as_mut()).is_pending());
        assert!(poll(second.as_mut()).is_pending());
        assert!(poll(second.as_mut()).is_pending(), "still waiting");
        open.set(true);
        let Poll::Ready(a) = poll(first.as_mut()) else {
            panic!("first did not finish")
        };
        let Poll::Ready(b) = poll(second.as_mut()) else {
            panic!("second did not finish")
        };
        assert_eq!(a.unwrap().sub, "new");
        assert_eq!(b.unwrap().sub, "new");
        assert_eq!(calls.get(), 1);

        // Later, within the grace period, the old token still gets the new session.
        let late = block_on(c.run(&Clock, "rt-1", 150, || async { Ok(session("again")) }));
        assert_eq!(late.unwrap().sub, "new");
        // After it, the provider is asked again.
        let later = block_on(c.run(&Clock, "rt-1", 100 + REFRESH_GRACE_SECS, || async {
            Ok(session("again"))
        }));
        assert_eq!(later.unwrap().sub, "again");
    }

    #[test]
    fn outages_are_not_remembered_and_an_abandoned_leader_releases_waiters() {
        let c = RefreshCoalescer::default();
        let down = block_on(c.run(&Clock, "rt", 1, || async {
            Err(RefreshError::Unavailable("down".into()))
        }));
        assert!(!down.unwrap_err().ends_session());
        let up = block_on(c.run(&Clock, "rt", 2, || async { Ok(session("up")) }));
        assert_eq!(up.unwrap().sub, "up");

        let never = Cell::new(false);
        let mut leader = Box::pin(c.run(&Clock, "rt-x", 1, || async {
            Gate(&never).await;
            Ok(session("never"))
        }));
        let mut waiter = Box::pin(c.run(&Clock, "rt-x", 1, || async { Ok(session("w")) }));
        assert!(poll(leader.as_mut()).is_pending());
        assert!(poll(waiter.as_mut()).is_pending());
        drop(leader);
        let Poll::Ready(r) = poll(waiter.as_mut()) else {
            panic!("waiter still pending")
        };
        assert!(matches!(r, Err(RefreshError::Unavailable(_))));
        let refused = block_on(c.run(&Clock, "rt-y", 1, || async {
            Err(RefreshError::Refused("invalid_grant".into()))
        }));
        assert!(refused.unwrap_err().ends_session());
        let again = block_on(c.run(&Clock, "rt-y", 2, || async { Ok(session("no")) }));
        assert!(again.is_err(), "a refusal answers for the spent token too");
    }
}
