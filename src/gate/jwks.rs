//! `/auth/jwks.json`: the public keys of the signed identity assertion.

use serde_json::json;

use crate::gate::Gate;
use crate::http::Response;

impl<P> Gate<'_, P> {
    pub(super) fn jwks(&self) -> Response {
        let keys = self
            .cfg
            .assertion
            .as_ref()
            .map_or_else(|| json!({"keys": []}), |a| a.jwks());
        let mut r = Response::json(200, &keys);
        r.headers.set("Cache-Control", "public, max-age=300");
        r
    }
}
