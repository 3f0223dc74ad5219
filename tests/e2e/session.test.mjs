// Sessions end to end against oidc-provider with 4-second access tokens and rotating refresh
// tokens: refresh inside a request, concurrent refreshes, a reused refresh token, Entra-sized
// tokens in chunked cookies, COOKIE_SECRET rotation, logout at the provider and back, and
// back-channel logout of a Durable Object session.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import crypto from 'node:crypto';
import { startIdp } from '../support/idp.mjs';
import { startWorker, freePort, Agent, clientVars, TEST_COOKIE_SECRET } from '../support/harness.mjs';

const ACCESS_TOKEN_TTL = 4;
const NEW_SECRET = crypto.randomBytes(32).toString('base64');
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
/** Past the access token's expiry (less the 1 s margin), so the next request refreshes. */
const untilRefreshDue = () => sleep((ACCESS_TOKEN_TTL - 1) * 1000 + 400);

let idp; let echo; let cookieWorker; let doWorker; let rotatedWorker; let ports;

function vars(extra = {}) {
  return clientVars(idp.issuer, {
    UPSTREAM: `http://127.0.0.1:${ports.echo}`,
    OIDC_SCOPES: 'openid profile email offline_access',
    PASS_ACCESS_TOKEN: 'authorization',
    SESSION_REFRESH_MARGIN: '1s',
    ...extra,
  });
}

before(async () => {
  ports = { idp: await freePort(), echo: await freePort(), cookie: await freePort(), durable: await freePort(), rotated: await freePort(), newOnly: await freePort() };
  echo = http.createServer((req, res) => {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ url: req.url, authorization: req.headers.authorization ?? null, cookie: req.headers.cookie ?? null }));
  });
  await new Promise((r) => echo.listen(ports.echo, '127.0.0.1', r));
  idp = await startIdp({
    port: ports.idp,
    // The Durable Object worker first: it gets the back-channel logout tokens.
    workerOrigins: [ports.durable, ports.cookie, ports.rotated, ports.newOnly].map((p) => `http://127.0.0.1:${p}`),
    accessTokenTTL: ACCESS_TOKEN_TTL,
    // Entra-sized: the ID token alone is about 6 KB.
    padBytes: 4000,
  });
  [cookieWorker, doWorker] = await Promise.all([
    // With the ID token kept for logout (OIDC_LOGOUT_ID_TOKEN_HINT): with the padded tokens,
    // a session that needs chunks.
    startWorker({ port: ports.cookie, vars: vars({ OIDC_LOGOUT_ID_TOKEN_HINT: 'true' }) }),
    startWorker({ port: ports.durable, vars: vars({ SESSION_STORE: 'durable_object' }) }),
  ]);
});

after(async () => {
  await Promise.all([cookieWorker?.stop(), doWorker?.stop(), rotatedWorker?.stop()]);
  await idp?.close();
  echo?.close();
});

/** Signs `agent` in at `worker` and answers the echo of the first protected request. */
async function signIn(agent, worker, user = 'alice') {
  const [res, url] = await agent.signIn(`${worker.origin}/private/echo`, { user });
  assert.equal(res.status, 200, `sign-in ended at ${url}: ${res.text_.slice(0, 300)}`);
  return JSON.parse(res.text_);
}

async function echoed(agent, worker) {
  const res = await agent.request(`${worker.origin}/private/echo`);
  return { status: res.status, res, body: res.status === 200 ? JSON.parse(res.text_) : null };
}

function sessionCookies(agent, origin) {
  return [...agent.jar(origin).keys()].filter((n) => n.startsWith('portcullis') && !n.includes('-tx-'));
}

function refusedGrants() {
  return idp.events.filter((e) => e.event === 'grant.error' && e.error === 'invalid_grant').length;
}

test('a session outlives several access tokens, refreshed in the worker', async () => {
  const agent = new Agent();
  const first = await signIn(agent, cookieWorker);
  assert.match(first.authorization, /^Bearer .+/);
  let previous = first.authorization;
  for (let i = 0; i < 3; i++) {
    await untilRefreshDue();
    const { status, body } = await echoed(agent, cookieWorker);
    assert.equal(status, 200);
    assert.notEqual(body.authorization, previous, `access token ${i + 2} is new`);
    previous = body.authorization;
  }
  await cookieWorker.waitForLog(/"event":"session_refreshed"/);
  // The session never reaches the origin.
  assert.equal(first.cookie, null);
});

test('an Entra-sized session round-trips through chunked cookies', async () => {
  const agent = new Agent();
  await signIn(agent, cookieWorker);
  const names = sessionCookies(agent, cookieWorker.origin);
  assert.ok(names.includes('portcullis') && names.includes('portcullis-1'), `chunks: ${names}`);
  for (const n of names) assert.ok(agent.cookie(cookieWorker.origin, n).length < 4000, `${n} fits a cookie`);
  const info = await agent.request(`${cookieWorker.origin}/auth/userinfo`, { html: false });
  assert.equal(info.status, 200);
  assert.equal(JSON.parse(info.text_).sub, 'alice');
  // A missing chunk is no session, and the rest is cleared.
  const broken = new Agent();
  for (const n of names.filter((x) => x !== 'portcullis-1')) broken.setCookie(cookieWorker.origin, n, agent.cookie(cookieWorker.origin, n));
  const res = await broken.request(`${cookieWorker.origin}/private/echo`);
  assert.equal(res.status, 302);
  assert.match(res.headers.get('location'), /^\/auth\/login/);
});

test('two concurrent requests at refresh time both succeed, with one refresh', async () => {
  const agent = new Agent();
  const first = await signIn(agent, cookieWorker);
  const refusedBefore = refusedGrants();
  await untilRefreshDue();
  const answers = await Promise.all([1, 2, 3].map(() => echoed(agent, cookieWorker)));
  for (const a of answers) assert.equal(a.status, 200);
  const tokens = new Set(answers.map((a) => a.body.authorization));
  assert.equal(tokens.size, 1, 'all three got the one refreshed token');
  assert.ok(!tokens.has(first.authorization));
  // The rotated refresh token still works: the provider saw no reuse.
  await untilRefreshDue();
  const later = await echoed(agent, cookieWorker);
  assert.equal(later.status, 200);
  assert.ok(!tokens.has(later.body.authorization));
  assert.equal(refusedGrants(), refusedBefore);
});

test('a reused old refresh token ends the session cleanly; old and new COOKIE_SECRET keys open', async () => {
  const agent = new Agent();
  await signIn(agent, cookieWorker);
  const old = new Map(agent.jar(cookieWorker.origin));
  await untilRefreshDue();
  assert.equal((await echoed(agent, cookieWorker)).status, 200, 'refreshed once');

  // Another isolate, with the secret rotated (new key first, the old one still listed).
  rotatedWorker = await startWorker({ port: ports.rotated, vars: vars({ COOKIE_SECRET: `${NEW_SECRET},${TEST_COOKIE_SECRET}` }) });
  const current = new Agent();
  for (const [k, v] of agent.jar(cookieWorker.origin)) current.setCookie(rotatedWorker.origin, k, v);
  const opened = await echoed(current, rotatedWorker);
  assert.equal(opened.status, 200, 'a cookie sealed with the old key opens');

  // The spent refresh token, replayed after its access token expired: the provider refuses it.
  const replay = new Agent();
  for (const [k, v] of old) replay.setCookie(rotatedWorker.origin, k, v);
  await sleep(1500);
  const refusedBefore = refusedGrants();
  const res = await replay.request(`${rotatedWorker.origin}/private/echo`);
  assert.equal(res.status, 302);
  assert.match(res.headers.get('location'), /^\/auth\/login/);
  assert.deepEqual(sessionCookies(replay, rotatedWorker.origin), [], 'every chunk is cleared');
  assert.ok(refusedGrants() > refusedBefore, 'the provider answered invalid_grant');
  await rotatedWorker.waitForLog(/"event":"session_ended".*refresh refused/);

  // New cookies are sealed with the new key: a worker with only that key opens them.
  const fresh = new Agent();
  await signIn(fresh, rotatedWorker);
  const newOnly = await startWorker({ port: ports.newOnly, vars: vars({ COOKIE_SECRET: NEW_SECRET }) });
  try {
    const moved = new Agent();
    for (const [k, v] of fresh.jar(rotatedWorker.origin)) moved.setCookie(newOnly.origin, k, v);
    assert.equal((await echoed(moved, newOnly)).status, 200, 'new cookie opens under the new key alone');
    const stale = new Agent();
    for (const [k, v] of old) stale.setCookie(newOnly.origin, k, v);
    assert.equal((await stale.request(`${newOnly.origin}/private/echo`)).status, 302, 'the retired key no longer opens');
  } finally {
    await newOnly.stop();
  }
});

/** At the provider's logout page: submits its confirmation form ("yes, sign me out"). */
async function confirmProviderLogout(agent, res, url) {
  assert.equal(res.status, 200, `provider logout page at ${url}`);
  const form = /<form[^>]*action="([^"]+)"[^>]*>([\s\S]*?)<\/form>/.exec(res.text_);
  assert.ok(form, `a confirmation form: ${res.text_.slice(0, 300)}`);
  const fields = {};
  for (const m of form[2].matchAll(/<input[^>]*name="([^"]+)"[^>]*value="([^"]*)"/g)) fields[m[1]] = m[2];
  fields.logout = 'yes';
  const posted = await agent.request(new URL(form[1], url).toString(), {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams(fields).toString(),
  });
  if (posted.status >= 300 && posted.status < 400) return agent.follow(new URL(posted.headers.get('location'), url).toString());
  return [posted, url];
}

test('logout at the provider then back: id_token_hint, state checked, refresh token revoked', async () => {
  const agent = new Agent();
  await signIn(agent, cookieWorker);
  const out = await agent.request(`${cookieWorker.origin}/auth/logout`, { method: 'POST', headers: { origin: cookieWorker.origin } });
  assert.equal(out.status, 302);
  const end = new URL(out.headers.get('location'));
  assert.equal(end.origin, idp.issuer);
  assert.ok(end.searchParams.get('id_token_hint'), 'id_token_hint sent');
  assert.equal(end.searchParams.get('post_logout_redirect_uri'), `${cookieWorker.origin}/auth/logged-out`);
  const state = end.searchParams.get('state');
  assert.ok(state && state.length >= 32, 'state sent');
  assert.deepEqual(sessionCookies(agent, cookieWorker.origin), ['portcullis-logout']);
  await cookieWorker.waitForLog(/"event":"refresh_token_revoked"/);

  const [page, pageUrl] = await agent.follow(end.toString());
  const [back, backUrl] = await confirmProviderLogout(agent, page, pageUrl);
  assert.equal(new URL(backUrl).pathname, '/auth/logged-out');
  assert.equal(new URL(backUrl).searchParams.get('state'), state);
  assert.equal(back.status, 200);
  assert.match(back.text_, /signed out/);
  assert.deepEqual(sessionCookies(agent, cookieWorker.origin), [], 'session and logout state cleared');
  assert.equal((await agent.request(`${cookieWorker.origin}/private/echo`)).status, 302);

  // A state this browser did not send is refused.
  const forged = await agent.request(`${cookieWorker.origin}/auth/logged-out?state=${state}`);
  assert.equal(forged.status, 400);
});

test('Durable Object sessions: refresh, concurrent requests, back-channel logout ends them', async () => {
  const agent = new Agent();
  const first = await signIn(agent, doWorker);
  assert.deepEqual(sessionCookies(agent, doWorker.origin), ['portcullis'], 'only a reference in the cookie');
  assert.ok(agent.cookie(doWorker.origin, 'portcullis').length < 400);
  await untilRefreshDue();
  const answers = await Promise.all([1, 2, 3].map(() => echoed(agent, doWorker)));
  for (const a of answers) assert.equal(a.status, 200);
  const tokens = new Set(answers.map((a) => a.body.authorization));
  assert.equal(tokens.size, 1);
  assert.ok(!tokens.has(first.authorization));

  // Sign out at the provider (not through the worker): it sends a logout token to the worker.
  const [page, pageUrl] = await agent.follow(`${idp.issuer}/session/end?client_id=portcullis-demo`);
  await confirmProviderLogout(agent, page, pageUrl);
  await doWorker.waitForLog(/"event":"backchannel_logout".*"sessions_ended":1/, 10_000);
  assert.ok(idp.events.some((e) => e.event === 'backchannel.success'));
  const res = await agent.request(`${doWorker.origin}/private/echo`);
  assert.equal(res.status, 302, 'the session has ended for good');
  assert.match(res.headers.get('location'), /^\/auth\/login/);

  // A forged logout token is refused with 400.
  const forged = await fetch(`${doWorker.origin}/auth/backchannel-logout`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: 'logout_token=eyJhbGciOiJub25lIn0.eyJzdWIiOiJhbGljZSJ9.',
  });
  assert.equal(forged.status, 400);
  assert.equal(forged.headers.get('cache-control'), 'no-store');
});

test('back-channel logout is refused where sessions live in cookies', async () => {
  const res = await fetch(`${cookieWorker.origin}/auth/backchannel-logout`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: 'logout_token=x',
  });
  assert.equal(res.status, 501);
});
