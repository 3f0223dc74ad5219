// The gate's own requests to a provider never follow a redirect: a key set that answers 302
// (which could point at an http:// address) is not a key set, and a token endpoint that answers
// 307 does not get the code, its verifier and the client's credentials posted on to its Location.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startIdp } from '../support/idp.mjs';
import { startWorker, freePort, clientVars, Agent } from '../support/harness.mjs';

const pairs = [];

/**
 * A provider whose discovery names `/<endpoint>-moved` for `field`, an address that answers
 * `status` with a Location of the real endpoint; and a worker in front of it.
 */
async function movedEndpoint(field, endpoint, status) {
  const [idpPort, workerPort] = [await freePort(), await freePort()];
  const issuer = `http://127.0.0.1:${idpPort}`;
  const moved = `/${endpoint}-moved`;
  const idp = await startIdp({
    port: idpPort,
    workerOrigins: [`http://127.0.0.1:${workerPort}`],
    middleware: [async (ctx, next) => {
      if (ctx.path === moved) {
        ctx.redirect(`${issuer}/${endpoint}`);
        ctx.status = status;
        return;
      }
      await next();
      if (ctx.oidc?.route === 'discovery' && ctx.body && typeof ctx.body === 'object') {
        ctx.body = { ...ctx.body, [field]: `${issuer}${moved}` };
      }
    }],
  });
  const worker = await startWorker({ port: workerPort, vars: clientVars(idp.issuer) });
  const pair = { idp, worker, moved };
  pairs.push(pair);
  return pair;
}

let keys; let token;

before(async () => {
  [keys, token] = await Promise.all([movedEndpoint('jwks_uri', 'jwks', 302), movedEndpoint('token_endpoint', 'token', 307)]);
});

after(async () => {
  await Promise.all(pairs.map((p) => p.worker.stop()));
  await Promise.all(pairs.map((p) => p.idp.close()));
});

async function signInFails({ idp, worker, moved }) {
  const agent = new Agent();
  const [res, url] = await agent.signIn(`${worker.origin}/private/`);
  assert.equal(new URL(url).pathname, '/auth/callback', `stopped at the callback, not ${url}`);
  assert.ok(res.status >= 400, `the callback answers an error page, not ${res.status}`);
  assert.ok(idp.requests.some((r) => r.path === moved), 'the gate asked the moved address');
  assert.equal(agent.jar(worker.origin).has('__Host-portcullis') || agent.jar(worker.origin).has('portcullis'), false, 'no session');
  return res;
}

test('a key set that answers with a redirect is not followed: no sign-in, and the log says why', async () => {
  await signInFails(keys);
  assert.equal(keys.idp.requests.filter((r) => r.route === 'jwks').length, 0, 'the real key set was never fetched');
  await keys.worker.waitForLog(/answered 302/);
});

test('a token endpoint that answers 307 does not get the code posted on', async () => {
  await signInFails(token);
  assert.equal(token.idp.requests.filter((r) => r.route === 'token').length, 0, 'the real token endpoint got nothing');
  await token.worker.waitForLog(/token endpoint answered 307/);
});
