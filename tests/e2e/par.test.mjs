// Pushed authorization requests (RFC 9126) with a client secret, against oidc-provider that
// requires them: the browser carries only client_id and request_uri, and sign-in completes.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startIdp } from '../support/idp.mjs';
import { startWorker, freePort, clientVars, Agent } from '../support/harness.mjs';

let idp; let worker;

before(async () => {
  const [idpPort, workerPort] = [await freePort(), await freePort()];
  idp = await startIdp({ port: idpPort, workerOrigins: [`http://127.0.0.1:${workerPort}`], par: { required: true } });
  worker = await startWorker({ port: workerPort, vars: clientVars(idp.issuer) });
});

after(async () => {
  await worker?.stop();
  await idp?.close();
});

test('a provider that requires PAR gets the request pushed, and the browser only a request_uri', async () => {
  const agent = new Agent();
  const start = await agent.request(`${worker.origin}/auth/login?return_to=/docs/`);
  assert.equal(start.status, 302, start.text_);
  const authz = new URL(start.headers.get('location'));
  assert.equal(authz.origin, idp.issuer);
  assert.deepEqual([...authz.searchParams.keys()], ['client_id', 'request_uri']);
  const pushed = idp.requests.filter((r) => r.route === 'pushed_authorization_request' && r.status === 201);
  assert.equal(pushed.length, 1, 'one pushed request');
  assert.equal(pushed[0].authMethod, 'client_secret_basic');

  const [res, url] = await agent.signIn(authz.toString());
  assert.equal(res.status, 200, `sign-in ended at ${url}`);
  assert.equal(new URL(url).pathname, '/docs/');
  const me = await agent.request(`${worker.origin}/auth/userinfo`, { html: false });
  assert.equal(me.status, 200);
  assert.equal(JSON.parse(me.text_).email, 'alice@example.com');
});
