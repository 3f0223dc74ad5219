//! The one session interface the gate uses: load a request's session (checked, refreshed when
//! due), start one after sign-in, end one at logout. Two backends sit behind it, chosen by
//! `SESSION_STORE`: everything sealed in the browser's cookies, or a Durable Object per person
//! with only a sealed reference in the cookie. No caller branches on which is configured.

use std::rc::Rc;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;

use crate::base::cache::BoundedCache;
use crate::base::log_line::log_line;
use crate::base::random::random_bytes;
use crate::base::seal::Purpose;
use crate::base::time::UnixTime;
use crate::base::types::Issuer;
use crate::config::{Config, SessionStore};
use crate::http::cookies::CookieJar;
use crate::oidc::provider::ProviderCache;
use crate::platform::Platform;
use crate::session::coalescer::RefreshCoalescer;
use crate::session::durable_object::{
    ObjectName, SpentToken, StoreAnswer, StoreCall, StoreError, StoreRef,
};
use crate::session::refresh::{refresh_session, RefreshError};
use crate::session::{binding, open_session, NoSession, Session, SessionCookie, SessionSealError};

/// Calls to session objects (Durable Objects), made by the runtime.
#[allow(async_fn_in_trait)] // single-threaded wasm
pub trait SessionObjects {
    async fn call(&self, object: &ObjectName, call: StoreCall) -> Result<StoreAnswer, StoreError>;
}

/// A live session, and the `Set-Cookie` values that go with the answer.
pub struct Loaded {
    /// Shared with the isolate's opened-session cache: read on every request, copied only
    /// when it changes.
    pub session: Rc<Session>,
    pub set_cookies: Vec<String>,
}

/// No session, and the `Set-Cookie` values that clear what is left of one.
pub struct Unloaded {
    pub why: NoSession,
    pub set_cookies: Vec<String>,
}

impl Unloaded {
    /// An unreadable cookie is deleted; no cookie, nothing to delete.
    fn clearing(why: NoSession, jar: &CookieJar, cookie: &SessionCookie) -> Self {
        let set_cookies = if why == NoSession::NoCookie {
            Vec::new()
        } else {
            cookie.delete(jar)
        };
        Self { why, set_cookies }
    }

    fn quiet(why: NoSession) -> Self {
        Self {
            why,
            set_cookies: Vec::new(),
        }
    }
}

/// Why a session could not be started.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StartError {
    /// It does not fit in its cookies, or sealing failed.
    Seal(String),
    /// The session object could not be reached.
    Store(StoreError),
}

impl std::fmt::Display for StartError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Seal(why) => f.write_str(why),
            Self::Store(e) => e.fmt(f),
        }
    }
}

/// How long an opened session cookie is remembered by the isolate.
const OPENED_TTL_SECS: u64 = 600;
const MAX_OPENED: usize = 1024;
/// Only cookies up to this size are remembered (a plain sign-in's is about 460 bytes): a few
/// megabytes at most, even with every entry full, whatever the sessions hold.
const MAX_OPENED_LEN: usize = 4096;

/// Session cookies (up to 4 KB) this isolate has opened, by their exact sealed value and the name they were
/// sealed under: a person's next request skips the decryption and the JSON. Opening is a pure
/// function of these and the isolate's keys, so a remembered session is exactly what opening
/// would give; every check after opening (lifetimes, refresh) still runs on each request.
/// Keyed by the sealed value alone (looked up without a copy of it); the entry says which
/// cookie name it was opened under (`__Host-` or not: the rest of the binding is the
/// isolate's), and a lookup under the other name is a miss.
pub struct OpenedSessions(BoundedCache<String, Opened>);

#[derive(Clone)]
struct Opened {
    secure: bool,
    session: Rc<Session>,
}

impl Default for OpenedSessions {
    fn default() -> Self {
        Self(BoundedCache::new(MAX_OPENED))
    }
}

/// The request's sessions: its cookies, the configuration and the isolate's helpers.
pub struct Sessions<'a, P> {
    pub cfg: &'a Config,
    pub cache: &'a ProviderCache,
    pub refreshes: &'a RefreshCoalescer,
    pub opened: &'a OpenedSessions,
    pub platform: &'a P,
    pub jar: &'a CookieJar,
    /// The request's `Cookie` header.
    pub cookie_header: Option<&'a str>,
}

impl<P: Platform + SessionObjects> Sessions<'_, P> {
    fn cookie(&self) -> SessionCookie {
        SessionCookie::from_header(self.jar, self.cookie_header)
    }

    /// The request's session: opened from its cookie (or fetched from its object), checked
    /// against both lifetimes, and refreshed when `refresh` allows and it is due.
    pub async fn load(&self, refresh: bool) -> Result<Loaded, Unloaded> {
        let cookie = self.cookie();
        match self.cfg.session_store {
            SessionStore::Cookie => self.load_from_cookie(cookie, refresh).await,
            SessionStore::DurableObject => self.load_from_object(cookie, refresh).await,
        }
    }

    /// Starts a new session after sign-in: the cookies that hold it (or refer to it).
    pub async fn start(
        &self,
        session: Session,
        now: UnixTime,
    ) -> Result<(Session, Vec<String>), StartError> {
        let present = self.cookie().chunks;
        if self.cfg.session_store == SessionStore::Cookie {
            return self.write_cookie(session, &present, now);
        }
        let id = URL_SAFE_NO_PAD
            .encode(random_bytes::<32>().map_err(|e| StartError::Seal(format!("random: {e}")))?);
        let object = ObjectName::user(&session.iss, &session.sub);
        let create = StoreCall::Create {
            id: id.clone(),
            session: Box::new(session.clone()),
        };
        self.call(&object, create)
            .await
            .map_err(StartError::Store)?;
        if let Some(sid) = &session.provider_sid {
            let link = StoreCall::Link {
                user: object.clone(),
            };
            self.call(&ObjectName::sid(&session.iss, sid), link)
                .await
                .map_err(StartError::Store)?;
        }
        let name = self.jar.session_name();
        let sealed = self
            .cfg
            .sealer
            .seal_json(
                Purpose::Session,
                &binding(&name, self.cfg.providers.session_binding()),
                &StoreRef { object, id },
            )
            .map_err(|e| StartError::Seal(format!("sealing the session reference: {e:?}")))?;
        let cookies = self
            .jar
            .set_chunked(&name, &sealed, session.exp.since(now), &present)
            .ok_or_else(|| StartError::Seal("the session reference does not fit".into()))?;
        Ok((session, cookies))
    }

    /// Ends the request's session here: the session it was (for revocation and
    /// `id_token_hint`), and the cookies that clear it in the browser.
    pub async fn end(&self) -> (Option<Session>, Vec<String>) {
        let cookie = self.cookie();
        let ended = match self.cfg.session_store {
            SessionStore::Cookie => open_session(
                &self.cfg.sealer,
                self.jar,
                &cookie,
                self.cfg.providers.session_binding(),
            )
            .ok(),
            SessionStore::DurableObject => match self.open_ref(&cookie) {
                Ok(r) => self
                    .call(&r.object, StoreCall::End { id: r.id })
                    .await
                    .and_then(session_answer)
                    .unwrap_or_else(|e| {
                        self.store_failed(&e);
                        None
                    }),
                Err(_) => None,
            },
        };
        (ended, cookie.delete(self.jar))
    }

    async fn call(&self, object: &ObjectName, call: StoreCall) -> Result<StoreAnswer, StoreError> {
        self.platform.call(object, call).await
    }

    fn store_failed(&self, e: &StoreError) {
        self.platform
            .log_json(log_line!("level":"error","event":"session_store_failed","detail":e.0));
    }

    /// The session sealed in `cookie`, as this isolate opened it before or opened now.
    fn open_cookie(&self, cookie: &SessionCookie, now: UnixTime) -> Result<Rc<Session>, NoSession> {
        let sealed = cookie.sealed.as_deref().ok_or(NoSession::NoCookie)?;
        let cfg = self.cfg;
        let open = || {
            open_session(
                &cfg.sealer,
                self.jar,
                cookie,
                cfg.providers.session_binding(),
            )
        };
        if sealed.len() > MAX_OPENED_LEN {
            return open().map(Rc::new);
        }
        let secure = self.jar.is_secure();
        if let Some(opened) = self.opened.0.get(sealed, now) {
            if opened.secure == secure {
                return Ok(opened.session);
            }
        }
        let session = Rc::new(open()?);
        let opened = Opened {
            secure,
            session: session.clone(),
        };
        self.opened
            .0
            .insert(sealed.to_owned(), opened, now.plus(OPENED_TTL_SECS));
        Ok(session)
    }

    fn open_ref(&self, cookie: &SessionCookie) -> Result<StoreRef, NoSession> {
        let value = cookie.sealed.as_deref().ok_or(NoSession::NoCookie)?;
        self.cfg
            .sealer
            .open_json(
                Purpose::Session,
                &binding(
                    &self.jar.session_name(),
                    self.cfg.providers.session_binding(),
                ),
                value,
            )
            .map_err(|_| NoSession::Unreadable)
    }

    /// A plain read first; only a due refresh goes through the object's one-at-a-time path
    /// (which reads again, so a refresh another request just did is not redone).
    async fn load_from_object(
        &self,
        cookie: SessionCookie,
        refresh: bool,
    ) -> Result<Loaded, Unloaded> {
        let jar = self.jar;
        let now = self.platform.now();
        let store_ref = self
            .open_ref(&cookie)
            .map_err(|why| Unloaded::clearing(why, jar, &cookie))?;
        let read = |call| async {
            self.call(&store_ref.object, call)
                .await
                .and_then(session_answer)
        };
        let mut answer = read(StoreCall::Load {
            id: store_ref.id.clone(),
        })
        .await;
        if let Ok(Some(s)) = &answer {
            if refresh && s.needs_refresh(now, self.cfg.refresh_margin_secs) {
                answer = read(StoreCall::Refresh {
                    id: store_ref.id.clone(),
                })
                .await;
            }
        }
        let gone = |why| Unloaded {
            why,
            set_cookies: cookie.delete(jar),
        };
        match answer {
            Ok(Some(session)) => {
                match session.check(now, &self.cfg.providers, self.cfg.session_ttl_secs, None) {
                    Ok(()) => Ok(Loaded {
                        session: Rc::new(session),
                        set_cookies: Vec::new(),
                    }),
                    Err(why) => Err(gone(why)),
                }
            }
            Ok(None) => Err(gone(NoSession::Ended)),
            Err(e) => {
                self.store_failed(&e);
                Err(Unloaded::quiet(NoSession::StoreUnavailable))
            }
        }
    }

    /// Concurrent refreshes of one cookie session share one provider call.
    async fn load_from_cookie(
        &self,
        cookie: SessionCookie,
        refresh: bool,
    ) -> Result<Loaded, Unloaded> {
        let (cfg, jar, platform) = (self.cfg, self.jar, self.platform);
        let now = platform.now();
        let mut session = self
            .open_cookie(&cookie, now)
            .map_err(|why| Unloaded::clearing(why, jar, &cookie))?;
        if let Err(why) = session.check(
            now,
            &cfg.providers,
            cfg.session_ttl_secs,
            cfg.session_idle_secs,
        ) {
            return Err(Unloaded {
                why,
                set_cookies: cookie.delete(jar),
            });
        }
        let mut changed = false;
        if refresh && session.needs_refresh(now, cfg.refresh_margin_secs) {
            let current = Rc::clone(&session);
            let result = self
                .refreshes
                .run(platform, &session, now, || {
                    refresh_session(cfg, self.cache, platform, &current)
                })
                .await;
            match result {
                Ok(next) => {
                    platform.log_json(
                        log_line!("level":"info","event":"session_refreshed","sub":next.sub),
                    );
                    session = Rc::new(next);
                    changed = true;
                }
                Err(e) if e.ends_session() => {
                    // Another isolate may have spent this refresh token for a request that
                    // raced this one; while the access token lasts, this request goes on. Not
                    // when the provider said more (a revoked access token, another person).
                    let raced = matches!(e, RefreshError::Refused(_));
                    if raced && session.tokens.access_expires_at.is_some_and(|e| e > now) {
                        platform.log_json(log_line!("level":"warn","event":"refresh_refused_session_kept","sub":session.sub,"detail":e.detail()));
                    } else {
                        platform.log_json(log_line!("level":"info","event":"session_ended","sub":session.sub,"reason":"refresh refused","detail":e.detail()));
                        return Err(Unloaded {
                            why: NoSession::Ended,
                            set_cookies: cookie.delete(jar),
                        });
                    }
                }
                Err(e) => {
                    platform.log_json(log_line!("level":"warn","event":"refresh_unavailable","sub":session.sub,"detail":e.detail()));
                    if Rc::make_mut(&mut session).drop_overdue_memberships(&cfg.providers, now) {
                        platform.log_json(log_line!("level":"warn","event":"memberships_dropped","sub":session.sub,"reason":"GitHub could not be asked again for more than OIDC_MEMBERSHIP_TTL"));
                        changed = true;
                    }
                }
            }
        }
        // Copied out of the cache only when the idle timer moves.
        if session.touch_due(now, cfg.session_idle_secs) {
            changed |= Rc::make_mut(&mut session).touch(now, cfg.session_idle_secs);
        }
        if !changed {
            return Ok(Loaded {
                session,
                set_cookies: Vec::new(),
            });
        }
        match self.write_cookie(Session::clone(&session), &cookie.chunks, now) {
            Ok((session, set_cookies)) => Ok(Loaded {
                session: Rc::new(session),
                set_cookies,
            }),
            Err(e) => {
                // The session still holds for this request; a later one tries again.
                platform.log_json(log_line!("level":"error","event":"session_rewrite_failed","detail":e.to_string()));
                Ok(Loaded {
                    session,
                    set_cookies: Vec::new(),
                })
            }
        }
    }

    /// Seals a session into its cookies (chunked when large), deleting stale chunks.
    fn write_cookie(
        &self,
        session: Session,
        present_chunks: &[usize],
        now: UnixTime,
    ) -> Result<(Session, Vec<String>), StartError> {
        let name = self.jar.session_name();
        let too_large = || StartError::Seal("the session does not fit in its cookies".into());
        let (session, sealed) = session
            .seal(
                &self.cfg.sealer,
                &name,
                self.cfg.providers.session_binding(),
            )
            .map_err(|e| match e {
                SessionSealError::TooLarge => too_large(),
                SessionSealError::Seal(e) => {
                    StartError::Seal(format!("sealing the session: {e:?}"))
                }
            })?;
        let cookies = self
            .jar
            .set_chunked(&name, &sealed, session.exp.since(now), present_chunks)
            .ok_or_else(too_large)?;
        Ok((session, cookies))
    }
}

/// The one place an object's answer is matched against the call that was made.
fn session_answer(answer: StoreAnswer) -> Result<Option<Session>, StoreError> {
    match answer {
        StoreAnswer::Session(s) => Ok(s.map(|s| *s)),
        other => Err(unexpected(&other)),
    }
}

fn unexpected(answer: &StoreAnswer) -> StoreError {
    StoreError(format!("unexpected answer {answer:?}"))
}

/// What a back-channel logout did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogoutOutcome {
    Ended(usize),
    /// The logout token was used already: nothing was done.
    Replayed,
}

/// Ends the sessions a back-channel logout token names: all of `sub`'s (or, with `sid` too,
/// that provider session's and those that kept no sid), or those of the provider session
/// `sid`. `spent` makes the token single use.
pub async fn end_matching<O: SessionObjects>(
    objects: &O,
    issuer: &Issuer,
    sub: Option<&str>,
    sid: Option<&str>,
    spent: SpentToken,
) -> Result<LogoutOutcome, StoreError> {
    let object = match (sub, sid) {
        (Some(sub), _) => Some(ObjectName::user(issuer, sub)),
        (None, Some(sid)) => match objects
            .call(&ObjectName::sid(issuer, sid), StoreCall::Resolve)
            .await?
        {
            StoreAnswer::User(u) => u,
            other => return Err(unexpected(&other)),
        },
        (None, None) => None,
    };
    let Some(object) = object else {
        return Ok(LogoutOutcome::Ended(0));
    };
    let call = StoreCall::EndMatching {
        sid: sid.map(str::to_owned),
        by_sub: sub.is_some(),
        jti: Some(spent),
    };
    match objects.call(&object, call).await? {
        StoreAnswer::Ended(n) => Ok(LogoutOutcome::Ended(n)),
        StoreAnswer::Replayed => Ok(LogoutOutcome::Replayed),
        other => Err(unexpected(&other)),
    }
}
