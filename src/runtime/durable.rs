//! The session object (`SESSION_STORE=durable_object`): binds [`crate::session::durable_object`] to a
//! Durable Object's storage. Refreshes run inside `blockConcurrencyWhile`, so two requests of
//! one person never spend a refresh token twice.

use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;
use worker::worker_sys::DurableObjectStorage;
use worker::{
    durable_object, js_sys, wasm_bindgen, DurableObject, Env, Request, Response, Result, State,
};

use crate::runtime::shell::{isolate, WorkerPlatform};
use crate::session::durable_object::{handle, Storage, StoreCall, StoreError};

#[durable_object]
pub struct SessionObject {
    state: State,
    env: Env,
}

/// The object's storage through its JS methods directly: every value is a string (JSON), so
/// workers-rs's typed `Storage` (values through serde_wasm_bindgen) is not needed.
struct ObjectStorage(DurableObjectStorage);

fn store_error(e: wasm_bindgen::JsValue) -> StoreError {
    StoreError(
        e.dyn_ref::<js_sys::Error>()
            .map(|e| String::from(e.message()))
            .or_else(|| e.as_string())
            .unwrap_or_else(|| "the object's storage failed".into()),
    )
}

async fn settle(
    call: std::result::Result<js_sys::Promise, wasm_bindgen::JsValue>,
) -> std::result::Result<wasm_bindgen::JsValue, StoreError> {
    JsFuture::from(call.map_err(store_error)?)
        .await
        .map_err(store_error)
}

impl Storage for ObjectStorage {
    async fn get(&self, key: &str) -> std::result::Result<Option<String>, StoreError> {
        let value = settle(self.0.get(key)).await?;
        if value.is_undefined() {
            return Ok(None);
        }
        value
            .as_string()
            .map(Some)
            .ok_or_else(|| StoreError(format!("the stored value of {key} is not text")))
    }

    async fn put(&self, key: &str, value: String) -> std::result::Result<(), StoreError> {
        settle(self.0.put(key, value.into())).await.map(|_| ())
    }

    async fn delete(&self, key: &str) -> std::result::Result<(), StoreError> {
        settle(self.0.delete(key)).await.map(|_| ())
    }

    async fn keys(&self, prefix: &str) -> std::result::Result<Vec<String>, StoreError> {
        let options = js_sys::Object::new();
        js_sys::Reflect::set(&options, &"prefix".into(), &prefix.into()).map_err(store_error)?;
        let map: js_sys::Map = settle(self.0.list_with_options(options))
            .await?
            .unchecked_into();
        Ok(js_sys::Array::from(&map.keys().into())
            .iter()
            .filter_map(|k| k.as_string())
            .collect())
    }
}

async fn run(
    env: Env,
    storage: DurableObjectStorage,
    call: StoreCall,
) -> std::result::Result<String, String> {
    let isolate = isolate(&env).map_err(|e| e.log_detail())?;
    let platform = WorkerPlatform {
        env: &env,
        verifier: &isolate.verifier,
    };
    let answer = handle(
        &isolate.config,
        &isolate.cache,
        &platform,
        &ObjectStorage(storage),
        call,
    )
    .await
    .map_err(|e| e.0)?;
    serde_json::to_string(&answer).map_err(|e| e.to_string())
}

impl DurableObject for SessionObject {
    fn new(state: State, env: Env) -> Self {
        Self { state, env }
    }

    async fn fetch(&self, mut req: Request) -> Result<Response> {
        // Read as text and parsed by serde_json, which the worker has anyway: `Request::json`
        // would go through a second deserializer (serde_wasm_bindgen) for the same type.
        let call: StoreCall = match req
            .text()
            .await
            .map_err(|e| e.to_string())
            .and_then(|t| StoreCall::read(t.as_bytes()))
        {
            Ok(c) => c,
            Err(e) => return Response::error(format!("not a session store call: {e}"), 400),
        };
        let serialized = matches!(call, StoreCall::Refresh { .. });
        let work = run(
            self.env.clone(),
            wasm_bindgen::JsValue::from(self.state.storage().as_raw()).unchecked_into(),
            call,
        );
        let result = if serialized {
            // Errors are values here: an Err would reset the object.
            self.state
                .block_concurrency_while(async move { Ok(work.await) })
                .await?
        } else {
            work.await
        };
        match result {
            Ok(json) => Response::ok(json),
            Err(e) => Response::error(e, 500),
        }
    }
}
