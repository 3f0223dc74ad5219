//! Concurrent refreshes of one refresh token within an isolate share one call to the
//! provider: the first request does it; the others, seeing it under way, check back every
//! [`WAIT_STEP_MS`] until its answer is in (workerd does not let one request wait on another's
//! promise, so they poll on their own timers); and requests that still carry the old token
//! within [`REFRESH_GRACE_SECS`] get the same answer.

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

impl RefreshCoalescer {
    pub async fn run<P: Platform, F>(
        &self,
        platform: &P,
        refresh_token: &str,
        now: UnixTime,
        work: impl FnOnce() -> F,
    ) -> Result<Session, RefreshError>
    where
        F: Future<Output = Result<Session, RefreshError>>,
    {
        let key: Key = Sha256::digest(refresh_token.as_bytes()).into();
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

    fn session(tag: &str) -> Session {
        Session {
            sub: tag.into(),
            ..Session::blank(
                ProviderId::default_id(),
                Issuer::new("https://idp"),
                SessionTokens::default(),
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
        let mut first = Box::pin(c.run(&Clock, "rt-1", t(100), work));
        let mut second = Box::pin(c.run(&Clock, "rt-1", t(100), || async {
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
        let late = block_on(c.run(&Clock, "rt-1", t(150), || async { Ok(session("again")) }));
        assert_eq!(late.unwrap().sub, "new");
        // After it, the provider is asked again.
        let later = block_on(
            c.run(&Clock, "rt-1", t(100 + REFRESH_GRACE_SECS), || async {
                Ok(session("again"))
            }),
        );
        assert_eq!(later.unwrap().sub, "again");
    }

    #[test]
    fn outages_are_not_remembered_and_an_abandoned_leader_releases_waiters() {
        let c = RefreshCoalescer::default();
        let down = block_on(c.run(&Clock, "rt", t(1), || async {
            Err(RefreshError::Unavailable("down".into()))
        }));
        assert!(!down.unwrap_err().ends_session());
        let up = block_on(c.run(&Clock, "rt", t(2), || async { Ok(session("up")) }));
        assert_eq!(up.unwrap().sub, "up");

        let never = Cell::new(false);
        let mut leader = Box::pin(c.run(&Clock, "rt-x", t(1), || async {
            Gate(&never).await;
            Ok(session("never"))
        }));
        let mut waiter = Box::pin(c.run(&Clock, "rt-x", t(1), || async { Ok(session("w")) }));
        assert!(poll(leader.as_mut()).is_pending());
        assert!(poll(waiter.as_mut()).is_pending());
        drop(leader);
        let Poll::Ready(r) = poll(waiter.as_mut()) else {
            panic!("waiter still pending")
        };
        assert!(matches!(r, Err(RefreshError::Unavailable(_))));
        let refused = block_on(c.run(&Clock, "rt-y", t(1), || async {
            Err(RefreshError::Refused("invalid_grant".into()))
        }));
        assert!(refused.unwrap_err().ends_session());
        let again = block_on(c.run(&Clock, "rt-y", t(2), || async { Ok(session("no")) }));
        assert!(again.is_err(), "a refusal answers for the spent token too");
    }
}
