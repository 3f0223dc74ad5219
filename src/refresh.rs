//! Refreshing a session's tokens (RFC 6749 section 6, OpenID Connect Core 12.2) and keeping
//! concurrent refreshes of one session from spending its refresh token twice.

use std::cell::RefCell;
use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};

use sha2::{Digest, Sha256};

use crate::config::Config;
use crate::error::GateError;
use crate::id_token::{self, Expectations, VerifiedIdToken};
use crate::jws::{self, UnverifiedJws};
use crate::platform::Platform;
use crate::provider::{KeyLookupError, ProviderCache, ProviderError};
use crate::session::{ClaimNames, Session, StoredSecret};
use crate::token_response::{RefreshResponse, TokenError};
use crate::transaction::client_request;
use crate::types::Nonce;

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

/// Verifies an ID token from the token endpoint: signature with the provider's keys, then
/// every claim rule. `nonce` is `None` for refreshed tokens.
pub async fn verify_id_token<P: Platform>(
    cfg: &Config,
    cache: &ProviderCache,
    platform: &P,
    raw: &str,
    jwks_uri: &str,
    nonce: Option<&Nonce>,
    access_token: Option<&str>,
    now: u64,
) -> Result<VerifiedIdToken, GateError> {
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
        return Err(RefreshError::Refused("the session has no refresh token".into()));
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
        let verified = verify_id_token(
            cfg,
            cache,
            platform,
            raw.secret(),
            &meta.jwks_uri,
            None,
            answer.access_token.as_ref().map(|t| t.secret().as_str()),
            now,
        )
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
/// provider: the first request does it, the others wait for its answer, and requests that
/// still carry the old token within [`REFRESH_GRACE_SECS`] get the same answer.
#[derive(Default)]
pub struct RefreshCoalescer {
    entries: RefCell<HashMap<[u8; 32], Entry>>,
}

enum Entry {
    Pending(Rc<Slot>),
    Done {
        result: Result<Session, RefreshError>,
        until: u64,
    },
}

#[derive(Default)]
struct Slot {
    result: RefCell<Option<Result<Session, RefreshError>>>,
    wakers: RefCell<Vec<Waker>>,
}

impl Slot {
    fn finish(&self, result: Result<Session, RefreshError>) {
        *self.result.borrow_mut() = Some(result);
        for w in self.wakers.borrow_mut().drain(..) {
            w.wake();
        }
    }
}

struct Wait(Rc<Slot>);

impl Future for Wait {
    type Output = Result<Session, RefreshError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        if let Some(r) = self.0.result.borrow().as_ref() {
            return Poll::Ready(r.clone());
        }
        self.0.wakers.borrow_mut().push(cx.waker().clone());
        Poll::Pending
    }
}

/// Wakes the waiters with an error if the leading request goes away before it finishes.
struct Leader<'a> {
    coalescer: &'a RefreshCoalescer,
    key: [u8; 32],
    slot: Rc<Slot>,
    done: bool,
}

impl Drop for Leader<'_> {
    fn drop(&mut self) {
        if !self.done {
            self.coalescer.entries.borrow_mut().remove(&self.key);
            self.slot.finish(Err(RefreshError::Unavailable(
                "the refreshing request was cancelled".into(),
            )));
        }
    }
}

impl RefreshCoalescer {
    pub async fn run<F>(
        &self,
        refresh_token: &str,
        now: u64,
        work: impl FnOnce() -> F,
    ) -> Result<Session, RefreshError>
    where
        F: Future<Output = Result<Session, RefreshError>>,
    {
        let key: [u8; 32] = Sha256::digest(refresh_token.as_bytes()).into();
        let waiting = {
            let mut entries = self.entries.borrow_mut();
            match entries.get(&key) {
                Some(Entry::Done { result, until }) if *until > now => return result.clone(),
                Some(Entry::Pending(slot)) => Some(slot.clone()),
                _ => {
                    entries.retain(|_, e| !matches!(e, Entry::Done { until, .. } if *until <= now));
                    if entries.len() >= MAX_REMEMBERED {
                        entries.retain(|_, e| matches!(e, Entry::Pending(_)));
                    }
                    None
                }
            }
        };
        if let Some(slot) = waiting {
            return Wait(slot).await;
        }
        let slot = Rc::new(Slot::default());
        self.entries
            .borrow_mut()
            .insert(key, Entry::Pending(slot.clone()));
        let mut leader = Leader {
            coalescer: self,
            key,
            slot,
            done: false,
        };
        let result = work().await;
        leader.done = true;
        {
            let mut entries = self.entries.borrow_mut();
            if matches!(result, Err(RefreshError::Unavailable(_))) {
                entries.remove(&key);
            } else {
                entries.insert(
                    key,
                    Entry::Done {
                        result: result.clone(),
                        until: now.saturating_add(REFRESH_GRACE_SECS),
                    },
                );
            }
        }
        leader.slot.finish(result.clone());
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::session::SessionTokens;
    use crate::test_support::block_on;
    use crate::types::Issuer;
    use std::cell::Cell;
    use std::task::Wake;

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
        let mut first = Box::pin(c.run("rt-1", 100, work));
        let mut second = Box::pin(c.run("rt-1", 100, || async {
            calls.set(calls.get() + 100);
            Ok(session("other"))
        }));
        assert!(poll(first.as_mut()).is_pending());
        assert!(poll(second.as_mut()).is_pending());
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
        let late = block_on(c.run("rt-1", 150, || async { Ok(session("again")) }));
        assert_eq!(late.unwrap().sub, "new");
        // After it, the provider is asked again.
        let later = block_on(c.run("rt-1", 100 + REFRESH_GRACE_SECS, || async {
            Ok(session("again"))
        }));
        assert_eq!(later.unwrap().sub, "again");
    }

    #[test]
    fn outages_are_not_remembered_and_an_abandoned_leader_releases_waiters() {
        let c = RefreshCoalescer::default();
        let down = block_on(c.run("rt", 1, || async {
            Err(RefreshError::Unavailable("down".into()))
        }));
        assert!(!down.unwrap_err().ends_session());
        let up = block_on(c.run("rt", 2, || async { Ok(session("up")) }));
        assert_eq!(up.unwrap().sub, "up");

        let never = Cell::new(false);
        let mut leader = Box::pin(c.run("rt-x", 1, || async {
            Gate(&never).await;
            Ok(session("never"))
        }));
        let mut waiter = Box::pin(c.run("rt-x", 1, || async { Ok(session("w")) }));
        assert!(poll(leader.as_mut()).is_pending());
        assert!(poll(waiter.as_mut()).is_pending());
        drop(leader);
        let Poll::Ready(r) = poll(waiter.as_mut()) else {
            panic!("waiter still pending")
        };
        assert!(matches!(r, Err(RefreshError::Unavailable(_))));
        let refused = block_on(c.run("rt-y", 1, || async {
            Err(RefreshError::Refused("invalid_grant".into()))
        }));
        assert!(refused.unwrap_err().ends_session());
        let again = block_on(c.run("rt-y", 2, || async { Ok(session("no")) }));
        assert!(again.is_err(), "a refusal answers for the spent token too");
    }
}
