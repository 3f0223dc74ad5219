//! Concurrent refreshes of one session within an isolate share one call to the provider: the
//! first request does it; the others, seeing it under way, check back every [`WAIT_STEP_MS`]
//! until its answer is in (workerd does not let one request wait on another's promise, so they
//! poll on their own timers); and requests that still carry the old cookie within
//! [`REFRESH_GRACE_SECS`] get the same answer. A refresh is shared only by one session's
//! requests (see [`key`]): never with another person's, nor another sign-in's.

use std::cell::RefCell;
use std::collections::HashSet;
use std::future::Future;

use sha2::{Digest, Sha256};

use crate::base::cache::BoundedCache;
use crate::base::time::UnixTime;
use crate::platform::Platform;
use crate::session::refresh::RefreshError;
use crate::session::Session;

/// How long a finished refresh answers for the refresh token it spent: a request that left the
/// browser with the old cookie before the new one arrived gets the new session too.
pub const REFRESH_GRACE_SECS: u64 = 60;
/// Finished refreshes remembered per isolate, at most.
const MAX_REMEMBERED: usize = 1000;
/// How often a waiting request checks whether the refresh it waits for is done.
pub const WAIT_STEP_MS: u64 = 25;
/// How long a request waits for another's refresh before giving up on it (and going on with
/// the session it has).
pub const MAX_WAIT_MS: u64 = 10_000;

type Key = [u8; 32];
type Answer = Box<Result<Session, RefreshError>>;

pub struct RefreshCoalescer {
    /// Refreshes under way: never evicted; the leading request clears its own mark when it
    /// finishes or goes away.
    pending: RefCell<HashSet<Key>>,
    /// Finished refreshes, for the grace period.
    done: BoundedCache<Key, Answer>,
}

impl Default for RefreshCoalescer {
    fn default() -> Self {
        Self {
            pending: RefCell::default(),
            done: BoundedCache::new(MAX_REMEMBERED),
        }
    }
}

/// Clears the pending mark if the leading request goes away before it finishes, so the
/// waiters stop waiting.
struct Leader<'a> {
    coalescer: &'a RefreshCoalescer,
    key: Key,
    done: bool,
}

impl Drop for Leader<'_> {
    fn drop(&mut self) {
        if !self.done {
            self.coalescer.pending.borrow_mut().remove(&self.key);
        }
    }
}

/// What a refresh is shared under: the session's lineage (provider, issuer, subject, sign-in
/// time) and the refresh token it spends, each length-prefixed. A refresh token alone is not
/// enough: a session may have none (a GitHub membership re-read spends nothing), and then
/// every such session would share one answer, another person's.
fn key(session: &Session) -> Key {
    let refresh_token = session
        .tokens
        .refresh_token
        .as_ref()
        .map(|t| t.secret().as_str());
    let iat = session.iat.as_secs().to_be_bytes();
    let mut hash = Sha256::new();
    for part in [
        session.provider.as_str().as_bytes(),
        session.iss.as_str().as_bytes(),
        session.sub.as_bytes(),
        &iat,
        refresh_token.unwrap_or_default().as_bytes(),
    ] {
        hash.update((part.len() as u64).to_be_bytes());
        hash.update(part);
    }
    hash.finalize().into()
}

impl RefreshCoalescer {
    /// `work` refreshes `session`, unless a request of the same session is doing it or has
    /// just done it; then that answer is this one's too. An answer for anyone else than the
    /// session's own person is never given (it cannot be, by [`key`]; checked all the same).
    pub async fn run<P: Platform, F>(
        &self,
        platform: &P,
        session: &Session,
        now: UnixTime,
        work: impl FnOnce() -> F,
    ) -> Result<Session, RefreshError>
    where
        F: Future<Output = Result<Session, RefreshError>>,
    {
        let result = self.shared(platform, key(session), now, work).await;
        match result {
            Ok(next)
                if next.provider != session.provider
                    || next.iss != session.iss
                    || next.sub != session.sub =>
            {
                Err(RefreshError::Unavailable(
                    "a refresh answered for another person; not used".into(),
                ))
            }
            other => other,
        }
    }

    async fn shared<P: Platform, F>(
        &self,
        platform: &P,
        key: Key,
        now: UnixTime,
        work: impl FnOnce() -> F,
    ) -> Result<Session, RefreshError>
    where
        F: Future<Output = Result<Session, RefreshError>>,
    {
        let mut waited = 0;
        loop {
            if let Some(result) = self.done.get(&key, now) {
                return *result;
            }
            let pending = self.pending.borrow().contains(&key);
            match pending {
                false if waited > 0 => {
                    return Err(RefreshError::Unavailable(
                        "the request refreshing this session went away".into(),
                    ))
                }
                false => break,
                true if waited >= MAX_WAIT_MS => {
                    return Err(RefreshError::Unavailable(
                        "timed out waiting for another request's refresh".into(),
                    ))
                }
                true => {
                    platform.sleep_ms(WAIT_STEP_MS).await;
                    waited += WAIT_STEP_MS;
                }
            }
        }
        self.pending.borrow_mut().insert(key);
        let mut leader = Leader {
            coalescer: self,
            key,
            done: false,
        };
        let result = work().await;
        leader.done = true;
        self.pending.borrow_mut().remove(&key);
        // An outage is not remembered: the next request tries again.
        if !matches!(result, Err(RefreshError::Unavailable(_))) {
            self.done
                .insert(key, Box::new(result.clone()), now.plus(REFRESH_GRACE_SECS));
        }
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::base::types::Issuer;
    use crate::config::providers::ProviderId;
    use crate::session::refresh::RefreshError;
    use crate::session::SessionTokens;
    use crate::testing::block_on;
    use std::cell::Cell;
    use std::pin::Pin;
    use std::task::{Context, Poll, Wake, Waker};

    fn t(secs: u64) -> UnixTime {
        UnixTime::from_secs(secs)
    }

    /// Alice's session as a refresh gives it back, told apart by `tag` (its `name`).
    fn session(tag: &str) -> Session {
        Session {
            name: Some(tag.into()),
            ..person("alice", None)
        }
    }

    /// Alice's session holding the refresh token `rt`, for the test's whole run.
    fn held(rt: &str) -> &'static Session {
        Box::leak(Box::new(person("alice", Some(rt))))
    }

    /// `sub`'s session, holding the refresh token `rt` (GitHub's hold none).
    fn person(sub: &str, rt: Option<&str>) -> Session {
        let tokens = SessionTokens {
            refresh_token: rt.map(|t| crate::session::StoredSecret::new(t.into())),
            ..SessionTokens::default()
        };
        Session {
            sub: sub.into(),
            ..Session::blank(
                ProviderId::default_id(),
                Issuer::new("https://idp"),
                tokens,
                UnixTime::EPOCH,
                UnixTime::from_secs(10_000),
            )
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
        type Verifier = crate::jose::verify::RustVerifier;
        fn verifier(&self) -> &Self::Verifier {
            &crate::jose::verify::RustVerifier
        }
        fn now(&self) -> UnixTime {
            UnixTime::EPOCH
        }
        async fn fetch(
            &self,
            _: crate::http::OutboundRequest,
        ) -> Result<crate::http::Response, crate::platform::NetworkError> {
            Err(crate::platform::NetworkError("no network".into()))
        }
        async fn kv_get(&self, _: &str) -> Option<String> {
            None
        }
        async fn kv_put(&self, _: &str, _: &str, _: u64) {}
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
        fn log_json(&self, _: String) {}
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
        let mut first = Box::pin(c.run(&Clock, held("rt-1"), t(100), work));
        let mut second = Box::pin(c.run(&Clock, held("rt-1"), t(100), || async {
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
        assert_eq!(a.unwrap().name.as_deref(), Some("new"));
        assert_eq!(b.unwrap().name.as_deref(), Some("new"));
        assert_eq!(calls.get(), 1);

        // Later, within the grace period, the old token still gets the new session.
        let late = block_on(c.run(&Clock, held("rt-1"), t(150), || async {
            Ok(session("again"))
        }));
        assert_eq!(late.unwrap().name.as_deref(), Some("new"));
        // After it, the provider is asked again.
        let later = block_on(c.run(
            &Clock,
            held("rt-1"),
            t(100 + REFRESH_GRACE_SECS),
            || async { Ok(session("again")) },
        ));
        assert_eq!(later.unwrap().name.as_deref(), Some("again"));
    }

    #[test]
    fn a_refresh_is_shared_only_by_one_sessions_requests() {
        let c = RefreshCoalescer::default();
        let refreshed = |s: &Session| Session {
            name: Some("refreshed".into()),
            ..s.clone()
        };
        // No refresh token at all (GitHub): alice's answer is hers alone.
        let alice = person("alice", None);
        let mallory = person("mallory", None);
        let a = block_on(c.run(&Clock, &alice, t(1), || async { Ok(refreshed(&alice)) }));
        assert_eq!(a.unwrap().sub, "alice");
        let calls = Cell::new(0);
        let m = block_on(c.run(&Clock, &mallory, t(2), || async {
            calls.set(calls.get() + 1);
            Ok(refreshed(&mallory))
        }));
        assert_eq!(m.unwrap().sub, "mallory");
        assert_eq!(calls.get(), 1, "mallory's own refresh ran");
        // The same person's other sign-in, and another provider's same `sub`: their own too.
        let other_sign_in = Session {
            iat: t(5),
            ..alice.clone()
        };
        let elsewhere = Session {
            provider: ProviderId::parse("github").expect("a provider id"),
            ..alice.clone()
        };
        for other in [other_sign_in, elsewhere] {
            let calls = Cell::new(0);
            let r = block_on(c.run(&Clock, &other, t(3), || async {
                calls.set(calls.get() + 1);
                Ok(refreshed(&other))
            }));
            assert!(r.is_ok());
            assert_eq!(calls.get(), 1);
        }
        // An answer about anyone else is never used.
        let bob = person("bob", Some("rt-b"));
        let wrong = block_on(c.run(&Clock, &bob, t(4), || async { Ok(person("mallory", None)) }));
        assert!(matches!(wrong, Err(RefreshError::Unavailable(_))));
    }

    #[test]
    fn outages_are_not_remembered_and_an_abandoned_leader_releases_waiters() {
        let c = RefreshCoalescer::default();
        let down = block_on(c.run(&Clock, held("rt"), t(1), || async {
            Err(RefreshError::Unavailable("down".into()))
        }));
        assert!(!down.unwrap_err().ends_session());
        let up = block_on(c.run(&Clock, held("rt"), t(2), || async { Ok(session("up")) }));
        assert_eq!(up.unwrap().name.as_deref(), Some("up"));

        let never = Cell::new(false);
        let mut leader = Box::pin(c.run(&Clock, held("rt-x"), t(1), || async {
            Gate(&never).await;
            Ok(session("never"))
        }));
        let mut waiter = Box::pin(c.run(&Clock, held("rt-x"), t(1), || async { Ok(session("w")) }));
        assert!(poll(leader.as_mut()).is_pending());
        assert!(poll(waiter.as_mut()).is_pending());
        drop(leader);
        let Poll::Ready(r) = poll(waiter.as_mut()) else {
            panic!("waiter still pending")
        };
        assert!(matches!(r, Err(RefreshError::Unavailable(_))));
        let refused = block_on(c.run(&Clock, held("rt-y"), t(1), || async {
            Err(RefreshError::Refused("invalid_grant".into()))
        }));
        assert!(refused.unwrap_err().ends_session());
        let again = block_on(c.run(&Clock, held("rt-y"), t(2), || async { Ok(session("no")) }));
        assert!(again.is_err(), "a refusal answers for the spent token too");
    }
}
