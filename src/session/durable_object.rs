//! Server-side sessions (`SESSION_STORE=durable_object`): one Durable Object per person holds
//! that person's sessions and tokens; the browser's cookie holds only a sealed reference. The
//! object runs one call at a time, so refreshes never race, and a session it deletes is gone
//! for good (logout, back-channel logout, a refused refresh).
//!
//! This is the object's logic over a small storage trait; `runtime/durable.rs` binds it to
//! workerd, and [`super::store`] calls it.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::base::log_line::log_line;
use crate::base::time::UnixTime;
use crate::base::types::Issuer;
use crate::config::Config;
use crate::oidc::provider::ProviderCache;
use crate::platform::Platform;
use crate::session::refresh::refresh_session;
use crate::session::Session;

/// A request to one session object, as JSON in serde's default form (`{"load": {"id": …}}`,
/// `"resolve"`): reading an internally tagged form (`{"op": "load", …}`) buffers every member
/// through serde's `Content`, a second copy of the session's deserializer in the wasm. The
/// object still reads that form ([`StoreCall::read`]), which the version before wrote.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
#[serde(rename_all = "snake_case")]
pub enum StoreCall {
    /// Keep a new session.
    Create { id: String, session: Box<Session> },
    /// The session if it is still live (moving its idle timer when due).
    Load { id: String },
    /// The session with fresh tokens: refreshed here if due, one call at a time.
    Refresh { id: String },
    /// Delete one session, answering it (for revocation and `id_token_hint`).
    End { id: String },
    /// Delete this person's sessions: all, or those of one provider session (`sid`); with
    /// `by_sub` (the logout token named the person), sessions that recorded no `sid` too.
    /// `jti` makes the logout token single use: a second call with it ends nothing.
    EndMatching {
        sid: Option<String>,
        #[serde(default)]
        by_sub: bool,
        #[serde(default)]
        jti: Option<SpentToken>,
    },
    /// In a provider-session index object: remember which person object holds it.
    Link { user: ObjectName },
    /// In a provider-session index object: the person object, if known.
    Resolve,
}

impl StoreCall {
    /// A call from the body of the request to the object. A deployment briefly runs the
    /// version before beside this one, so a call in that version's form (`{"op": "load",
    /// "id": …}`) is rewritten to this one's first; remove this after the next release.
    pub fn read(body: &[u8]) -> Result<Self, String> {
        serde_json::from_slice(body).or_else(|e| {
            tagged_to_external(body)
                .and_then(|b| serde_json::from_slice(&b).ok())
                .ok_or_else(|| e.to_string())
        })
    }
}

/// `{"op": "name", members…}` as `{"name": {members…}}` (`"name"` when it has none).
fn tagged_to_external(body: &[u8]) -> Option<Vec<u8>> {
    let mut value: serde_json::Value = serde_json::from_slice(body).ok()?;
    let members = value.as_object_mut()?;
    let op = members.remove("op")?.as_str()?.to_owned();
    let call = if members.is_empty() {
        serde_json::Value::String(op)
    } else {
        let mut outer = serde_json::Map::new();
        outer.insert(op, serde_json::Value::Object(std::mem::take(members)));
        serde_json::Value::Object(outer)
    };
    serde_json::to_vec(&call).ok()
}

/// A logout token's `jti`, remembered until `until` (after which the token is refused for its
/// age anyway).
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
pub struct SpentToken {
    pub jti: String,
    pub until: UnixTime,
}

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
#[serde(rename_all = "snake_case")]
pub enum StoreAnswer {
    Session(Option<Box<Session>>),
    Ended(usize),
    /// The logout token was used already.
    Replayed,
    User(Option<ObjectName>),
    Done,
}

/// What the browser's cookie holds in this mode: which object, which session in it.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
pub struct StoreRef {
    #[serde(rename = "o")]
    pub object: ObjectName,
    pub id: String,
}

/// The name of one session object (what `idFromName` is given): a digest, revealing nobody.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
#[serde(transparent)]
pub struct ObjectName(String);

impl ObjectName {
    /// The object holding one person's sessions.
    pub fn user(iss: &Issuer, sub: &str) -> Self {
        Self(format!("user:{}", digest(iss, sub)))
    }

    /// The index object for one provider session id.
    pub fn sid(iss: &Issuer, sid: &str) -> Self {
        Self(format!("sid:{}", digest(iss, sid)))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A session object or its storage failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreError(pub String);

impl std::fmt::Display for StoreError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

fn digest(iss: &Issuer, value: &str) -> String {
    let d = Sha256::digest(format!("{}\u{0}{value}", iss.as_str()).as_bytes());
    URL_SAFE_NO_PAD.encode(d)
}

/// An object's durable storage (string values, JSON).
#[allow(async_fn_in_trait)] // single-threaded wasm
pub trait Storage {
    async fn get(&self, key: &str) -> Result<Option<String>, StoreError>;
    async fn put(&self, key: &str, value: String) -> Result<(), StoreError>;
    async fn delete(&self, key: &str) -> Result<(), StoreError>;
    async fn keys(&self, prefix: &str) -> Result<Vec<String>, StoreError>;
}

const SESSION_PREFIX: &str = "s:";
const USER_KEY: &str = "user";

/// Runs one call against an object's storage.
pub async fn handle<S: Storage, P: Platform>(
    cfg: &Config,
    cache: &ProviderCache,
    platform: &P,
    storage: &S,
    call: StoreCall,
) -> Result<StoreAnswer, StoreError> {
    let now = platform.now();
    match call {
        StoreCall::Create { id, session } => {
            // Old sessions of this person go when a new one starts.
            for key in storage.keys(SESSION_PREFIX).await? {
                if read(storage, &key).await?.is_none_or(|s| now >= s.exp) {
                    storage.delete(&key).await?;
                }
            }
            write(storage, &id, &session).await?;
            Ok(StoreAnswer::Done)
        }
        StoreCall::Load { id } => Ok(StoreAnswer::Session(
            live(cfg, storage, &id, now).await?.map(Box::new),
        )),
        StoreCall::Refresh { id } => {
            let Some(session) = live(cfg, storage, &id, now).await? else {
                return Ok(StoreAnswer::Session(None));
            };
            if !session.needs_refresh(now, cfg.refresh_margin_secs) {
                return Ok(StoreAnswer::Session(Some(Box::new(session))));
            }
            match refresh_session(cfg, cache, platform, &session).await {
                Ok(next) => {
                    write(storage, &id, &next).await?;
                    platform.log_json(log_line!("level":"info","event":"session_refreshed","sub":next.sub,"store":"durable_object"));
                    Ok(StoreAnswer::Session(Some(Box::new(next))))
                }
                Err(e) if e.ends_session() => {
                    storage.delete(&key(&id)).await?;
                    platform.log_json(log_line!("level":"info","event":"session_ended","sub":session.sub,"reason":"refresh refused","detail":e.detail()));
                    Ok(StoreAnswer::Session(None))
                }
                Err(e) => {
                    platform.log_json(log_line!("level":"warn","event":"refresh_unavailable","sub":session.sub,"detail":e.detail(),"store":"durable_object"));
                    let mut session = session;
                    if session.drop_overdue_memberships(&cfg.providers, now) {
                        platform.log_json(log_line!("level":"warn","event":"memberships_dropped","sub":session.sub,"reason":"GitHub could not be asked again for more than OIDC_MEMBERSHIP_TTL","store":"durable_object"));
                        write(storage, &id, &session).await?;
                    }
                    Ok(StoreAnswer::Session(Some(Box::new(session))))
                }
            }
        }
        StoreCall::End { id } => {
            let session = read(storage, &key(&id)).await?;
            storage.delete(&key(&id)).await?;
            Ok(StoreAnswer::Session(session.map(Box::new)))
        }
        StoreCall::EndMatching { sid, by_sub, jti } => {
            if let Some(spent) = &jti {
                if jti_spent(storage, spent, now).await? {
                    return Ok(StoreAnswer::Replayed);
                }
            }
            let mut ended = 0;
            for key in storage.keys(SESSION_PREFIX).await? {
                let matches = match (&sid, read(storage, &key).await?) {
                    (_, None) => true,
                    (None, Some(_)) => true,
                    (Some(sid), Some(s)) => match s.provider_sid.as_deref() {
                        Some(stored) => stored == sid.as_str(),
                        // The token names the person: a session that kept no sid is theirs.
                        None => by_sub,
                    },
                };
                if matches {
                    storage.delete(&key).await?;
                    ended += 1;
                }
            }
            // Spent once its sessions are gone: a provider that retries after a failure part-way
            // is not refused as a replay.
            if let Some(spent) = &jti {
                storage
                    .put(&jti_key(spent), spent.until.to_string())
                    .await?;
            }
            Ok(StoreAnswer::Ended(ended))
        }
        StoreCall::Link { user } => {
            storage.put(USER_KEY, user.0).await?;
            Ok(StoreAnswer::Done)
        }
        StoreCall::Resolve => Ok(StoreAnswer::User(
            storage.get(USER_KEY).await?.map(ObjectName),
        )),
    }
}

const JTI_PREFIX: &str = "j:";

fn jti_key(spent: &SpentToken) -> String {
    let digest = Sha256::digest(spent.jti.as_bytes());
    format!("{JTI_PREFIX}{}", URL_SAFE_NO_PAD.encode(digest))
}

/// Whether a logout token's `jti` was spent already (a replay). Expired records are dropped on
/// the way.
async fn jti_spent<S: Storage>(
    storage: &S,
    spent: &SpentToken,
    now: UnixTime,
) -> Result<bool, StoreError> {
    for old in storage.keys(JTI_PREFIX).await? {
        let until = storage
            .get(&old)
            .await?
            .and_then(|v| v.parse::<u64>().ok())
            .map(UnixTime::from_secs);
        if until.is_none_or(|u| u <= now) {
            storage.delete(&old).await?;
        }
    }
    Ok(storage.get(&jti_key(spent)).await?.is_some())
}

fn key(id: &str) -> String {
    format!("{SESSION_PREFIX}{id}")
}

async fn read<S: Storage>(storage: &S, key: &str) -> Result<Option<Session>, StoreError> {
    Ok(storage
        .get(key)
        .await?
        .and_then(|v| serde_json::from_slice(v.as_bytes()).ok()))
}

async fn write<S: Storage>(storage: &S, id: &str, session: &Session) -> Result<(), StoreError> {
    let json = serde_json::to_string(session).map_err(|e| StoreError(e.to_string()))?;
    storage.put(&key(id), json).await
}

/// The session if it is live; an expired or idle one is deleted. The idle timer is written
/// back only when it has moved enough.
async fn live<S: Storage>(
    cfg: &Config,
    storage: &S,
    id: &str,
    now: UnixTime,
) -> Result<Option<Session>, StoreError> {
    let Some(mut session) = read(storage, &key(id)).await? else {
        return Ok(None);
    };
    if session
        .check(
            now,
            &cfg.providers,
            cfg.session_ttl_secs,
            cfg.session_idle_secs,
        )
        .is_err()
    {
        storage.delete(&key(id)).await?;
        return Ok(None);
    }
    if session.touch(now, cfg.session_idle_secs) {
        write(storage, id, &session).await?;
    }
    Ok(Some(session))
}

/// Storage in memory, for host tests.
#[cfg(test)]
#[derive(Default)]
pub struct MemoryStorage(pub std::cell::RefCell<std::collections::BTreeMap<String, String>>);

#[cfg(test)]
impl Storage for MemoryStorage {
    async fn get(&self, key: &str) -> Result<Option<String>, StoreError> {
        Ok(self.0.borrow().get(key).cloned())
    }
    async fn put(&self, key: &str, value: String) -> Result<(), StoreError> {
        self.0.borrow_mut().insert(key.to_owned(), value);
        Ok(())
    }
    async fn delete(&self, key: &str) -> Result<(), StoreError> {
        self.0.borrow_mut().remove(key);
        Ok(())
    }
    async fn keys(&self, prefix: &str) -> Result<Vec<String>, StoreError> {
        Ok(self
            .0
            .borrow()
            .keys()
            .filter(|k| k.starts_with(prefix))
            .cloned()
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn object_names_are_per_person_and_per_provider_session_and_reveal_neither() {
        let iss = Issuer::new("https://idp");
        let a = ObjectName::user(&iss, "alice");
        assert_ne!(a, ObjectName::user(&iss, "bob"));
        assert_ne!(a, ObjectName::user(&Issuer::new("https://other"), "alice"));
        assert!(!a.as_str().contains("alice") && a.as_str().starts_with("user:"));
        assert!(ObjectName::sid(&iss, "s1").as_str().starts_with("sid:"));
        let call = StoreCall::EndMatching {
            sid: Some("s1".into()),
            by_sub: true,
            jti: None,
        };
        let json = serde_json::to_string(&call).unwrap();
        assert_eq!(
            json,
            r#"{"end_matching":{"sid":"s1","by_sub":true,"jti":null}}"#
        );
        assert_eq!(StoreCall::read(json.as_bytes()).unwrap(), call);
        assert_eq!(
            StoreCall::read(br#""resolve""#).unwrap(),
            StoreCall::Resolve
        );
    }

    #[test]
    fn calls_in_the_previous_versions_form_are_read_too() {
        for (old, call) in [
            (
                r#"{"op":"end_matching","sid":"s1","by_sub":true,"jti":null}"#,
                StoreCall::EndMatching {
                    sid: Some("s1".into()),
                    by_sub: true,
                    jti: None,
                },
            ),
            (
                r#"{"id":"x","op":"load"}"#,
                StoreCall::Load { id: "x".into() },
            ),
            (
                r#"{"op":"refresh","id":"x"}"#,
                StoreCall::Refresh { id: "x".into() },
            ),
            (r#"{"op":"resolve"}"#, StoreCall::Resolve),
            (
                r#"{"op":"link","user":"user:abc"}"#,
                StoreCall::Link {
                    user: ObjectName("user:abc".into()),
                },
            ),
        ] {
            assert_eq!(StoreCall::read(old.as_bytes()).unwrap(), call, "{old}");
        }
        let session = crate::session::Session {
            sub: "alice".into(),
            ..crate::session::Session::blank(
                crate::config::providers::ProviderId::default_id(),
                Issuer::new("https://idp"),
                crate::session::SessionTokens::default(),
                UnixTime::EPOCH,
                UnixTime::from_secs(10_000),
            )
        };
        let session = serde_json::to_value(session).unwrap();
        let old = serde_json::json!({"op": "create", "id": "x", "session": session});
        assert!(matches!(
            StoreCall::read(old.to_string().as_bytes()),
            Ok(StoreCall::Create { .. })
        ));
        for bad in [
            r#"{"op":"drop_all"}"#,
            r#"{"op":5}"#,
            "[]",
            "{",
            r#"{"id":"x"}"#,
        ] {
            assert!(StoreCall::read(bad.as_bytes()).is_err(), "{bad}");
        }
    }
}
