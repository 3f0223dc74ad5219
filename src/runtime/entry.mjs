// The worker's entry module (build/index.js, bundled by scripts/build.sh around the module
// worker-build makes, build/shim.js).
//
// worker-build's shim exports the fetch handler as a WorkerEntrypoint class behind a Proxy that
// is constructed for every request, then wraps the method in a second Proxy and an async
// function: about 20 us of a signed-in request's CPU in workerd. Its purpose is to recover
// from a wasm trap: a RuntimeError marks the instance broken, and the next construction
// re-instantiates the wasm module. Here requests call the handler directly, and only go
// through the shim's construction when the instance is marked broken, so recovery stays.
// Pinned to worker-build's version (scripts/env.sh): the e2e tests run through this file.
import Shim, { SessionObject } from './shim.js';

const state = globalThis.__worker_init_state;
const handler = Shim.prototype.fetch;

function broken(e) {
  if (e instanceof WebAssembly.RuntimeError) {
    console.error('Critical', e);
    state.criticalError = true;
  }
  throw e;
}

export default {
  fetch(request, env, ctx) {
    // The shim's own path re-instantiates the wasm first.
    if (state.criticalError) return new Shim(ctx, env).fetch(request);
    try {
      return handler.call({ env, ctx }, request).catch(broken);
    } catch (e) {
      return broken(e);
    }
  },
};

export { SessionObject };
