// Step-up against oidc-provider: `acr:mfa` answered through acr_values, `fresh:` through max_age
// and auth_time, and a provider that ignores acr_values refused at the callback.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startIdp } from '../support/idp.mjs';
import { startWorker, freePort, Agent, clientVars } from '../support/harness.mjs';

let idp; let worker;

before(async () => {
  const [idpPort, workerPort] = [await freePort(), await freePort()];
  idp = await startIdp({ port: idpPort, workerOrigins: [`http://127.0.0.1:${workerPort}`] });
  worker = await startWorker({
    port: workerPort,
    vars: clientVars(idp.issuer, { ACCESS_RULES: '/docs/* acr:mfa; /public/* fresh:10m' }),
  });
});

after(async () => {
  await worker?.stop();
  await idp?.close();
});

const url = (p) => `${worker.origin}${p}`;

async function me(agent) {
  const res = await agent.request(url('/auth/userinfo'), { html: false });
  assert.equal(res.status, 200, res.text_);
  return JSON.parse(res.text_);
}

test('a password sign-in steps up to mfa for /docs/ and comes back to the page', async () => {
  idp.settings.honourAcr = true;
  const agent = new Agent();
  const [home] = await agent.signIn(url('/'));
  assert.equal(home.status, 200);
  assert.notEqual((await me(agent)).acr, 'mfa');
  const before = agent.cookie(worker.origin, 'portcullis');

  const asked = await agent.request(url('/docs/?page=2'));
  assert.equal(asked.status, 302);
  const login = new URL(asked.headers.get('location'), worker.origin);
  assert.equal(login.pathname, '/auth/login');
  assert.equal(login.searchParams.get('step_up'), 'acr:mfa');
  assert.equal(login.searchParams.get('return_to'), '/docs/?page=2');

  const [page, at] = await agent.signIn(login.toString());
  assert.equal(page.status, 200, page.text_.slice(0, 300));
  assert.equal(new URL(at).pathname, '/docs/');
  assert.equal(new URL(at).search, '?page=2');
  const auth = idp.requests.filter((r) => r.route === 'authorization').at(-1);
  assert.ok(auth.query.includes('acr_values'), 'the provider was asked for the acr');
  const stepped = await me(agent);
  assert.equal(stepped.acr, 'mfa');
  assert.equal(stepped.email, 'alice@example.com', 'the new session has the person as before');
  assert.notEqual(agent.cookie(worker.origin, 'portcullis'), before, 'a new session');
});

test('a stale auth_time asks for max_age and a new sign-in; a provider that ignores it is refused', async () => {
  idp.settings.honourAcr = true;
  idp.settings.loginAge = 3600;
  const agent = new Agent();
  try {
    const [home] = await agent.signIn(url('/'));
    assert.equal(home.status, 200);
  } finally {
    idp.settings.loginAge = 0;
  }
  const asked = await agent.request(url('/public/'));
  assert.equal(asked.status, 302);
  const login = new URL(asked.headers.get('location'), worker.origin);
  assert.equal(login.searchParams.get('step_up'), 'fresh:600s');
  const [page, at] = await agent.signIn(login.toString());
  assert.equal(page.status, 200, page.text_.slice(0, 300));
  assert.equal(new URL(at).pathname, '/public/');
  const auth = idp.requests.filter((r) => r.route === 'authorization').at(-1);
  assert.ok(auth.query.includes('max_age'));
  const fresh = await me(agent);
  assert.ok(Math.abs(fresh.auth_time - Date.now() / 1000) < 30, `auth_time ${fresh.auth_time}`);
  assert.equal((await agent.request(url('/public/'))).status, 200);

  // A provider that re-authenticates but reports an old auth_time: refused, no loop, and the
  // session from before stays.
  idp.settings.loginAge = 3600;
  try {
    const old = new Agent();
    await old.signIn(url('/'));
    const cookie = old.cookie(worker.origin, 'portcullis');
    const step = await old.request(url('/public/'));
    const [refused] = await old.signIn(new URL(step.headers.get('location'), worker.origin).toString());
    assert.equal(refused.status, 403, refused.text_.slice(0, 300));
    assert.match(refused.text_, /auth_time/);
    assert.equal(old.cookie(worker.origin, 'portcullis'), cookie);
    assert.equal((await old.request(url('/'))).status, 200);
  } finally {
    idp.settings.loginAge = 0;
  }
});

test('a provider that ignores acr_values gets a refusal page, not a loop', async () => {
  idp.settings.honourAcr = false;
  try {
    const agent = new Agent();
    await agent.signIn(url('/'));
    const step = await agent.request(url('/docs/'));
    const [refused, at] = await agent.signIn(new URL(step.headers.get('location'), worker.origin).toString());
    assert.equal(new URL(at).pathname, '/auth/callback');
    assert.equal(refused.status, 403);
    assert.match(refused.text_, /Sign-in not strong enough/);
    await worker.waitForLog(/"reason":"step_up_failed"/);
  } finally {
    idp.settings.honourAcr = true;
  }
});
