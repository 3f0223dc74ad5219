// UPSTREAM = "service:APP": the gate in front of another Worker through a service binding, both
// in one workerd (the second Worker echoes what it receives).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startIdp } from '../support/idp.mjs';
import { startWorker, freePort, Agent, clientVars } from '../support/harness.mjs';

let idp; let worker; let missing;

before(async () => {
  const [idpPort, workerPort, missingPort] = [await freePort(), await freePort(), await freePort()];
  const origins = [`http://127.0.0.1:${workerPort}`, `http://127.0.0.1:${missingPort}`];
  idp = await startIdp({ port: idpPort, workerOrigins: origins });
  worker = await startWorker({
    port: workerPort,
    serviceApp: true,
    vars: clientVars(idp.issuer, { UPSTREAM: 'service:APP', PUBLIC_PATHS: '/open/*' }),
  });
  // The same setting without the binding in wrangler.toml.
  missing = await startWorker({ port: missingPort, vars: clientVars(idp.issuer, { UPSTREAM: 'service:APP' }) });
});

after(async () => {
  await worker?.stop();
  await missing?.stop();
  await idp?.close();
});

test('a signed-in request reaches the bound Worker with the identity headers, spoofed ones stripped', async () => {
  const agent = new Agent();
  const [page] = await agent.signIn(`${worker.origin}/reports/q3?x=1`);
  assert.equal(page.status, 200, page.text_.slice(0, 300));
  const first = JSON.parse(page.text_);
  assert.equal(first.worker, 'app');
  assert.equal(new URL(first.url).pathname, '/reports/q3');
  const res = await agent.request(`${worker.origin}/reports/%71%33?x=2`, {
    method: 'POST',
    headers: { 'content-type': 'text/plain', 'x-auth-request-user': 'mallory', 'x-auth-request-email': 'm@evil.example' },
    body: 'hello app',
  });
  assert.equal(res.status, 200, res.text_);
  const seen = JSON.parse(res.text_);
  assert.equal(seen.method, 'POST');
  assert.equal(seen.body, 'hello app');
  const url = new URL(seen.url);
  assert.equal(url.pathname, '/reports/q3', 'the app gets the normalized path the policy judged');
  assert.equal(url.search, '?x=2');
  assert.equal(seen.headers['x-auth-request-user'], 'alice');
  assert.equal(seen.headers['x-auth-request-email'], 'alice@example.com');
  assert.ok(!/portcullis=/.test(seen.headers.cookie ?? ''), 'the session cookie stays with the gate');
  // A protected answer is private whatever the app said.
  assert.match(res.headers.get('cache-control'), /private/);
});

test('without a session the bound Worker is never called; public paths pass without identity', async () => {
  const res = await new Agent().request(`${worker.origin}/reports`, { html: false });
  assert.equal(res.status, 401);
  const open = await new Agent().request(`${worker.origin}/open/x`, { headers: { 'x-auth-request-user': 'mallory' } });
  assert.equal(open.status, 200);
  const seen = JSON.parse(open.text_);
  assert.equal(seen.worker, 'app');
  assert.equal(seen.headers['x-auth-request-user'], undefined);
});

test('a service binding missing from wrangler.toml is a configuration error naming UPSTREAM', async () => {
  const res = await new Agent().request(`${missing.origin}/x`, { html: false });
  assert.equal(res.status, 500);
  const body = JSON.parse(res.text_);
  assert.equal(body.error, 'configuration_error');
  assert.match(body.error_description, /UPSTREAM.*service binding APP/);
  await missing.waitForLog(/UPSTREAM: names the service binding APP, but wrangler.toml has no \[\[services\]\]/);
});
