// The real built wasm in workerd (wrangler dev) against the real oidc-provider on loopback.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { startIdp, makeSigningKey, DEMO_CLIENT_ID } from '../support/idp.mjs';
import { startWorker, freePort, Agent, clientVars } from '../support/harness.mjs';

let idp; let idpPort; let worker; let workerPort; let firstKey;

function workerVars(issuer, extra = {}) {
  return clientVars(issuer, { PUBLIC_PATHS: '/public/*', ...extra });
}

before(async () => {
  [idpPort, workerPort] = [await freePort(), await freePort()];
  firstKey = makeSigningKey('first');
  idp = await startIdp({ port: idpPort, keys: [firstKey], workerOrigins: [`http://127.0.0.1:${workerPort}`] });
  worker = await startWorker({ port: workerPort, vars: workerVars(idp.issuer) });
});

after(async () => {
  await worker?.stop();
  await idp?.close();
});

const url = (p) => `${worker.origin}${p}`;
const SESSION = 'portcullis';

test('a browser without a session is sent to sign in and comes back to the page it asked for', async () => {
  const agent = new Agent();
  const first = await agent.request(url('/docs/?tab=2'));
  assert.equal(first.status, 302);
  assert.equal(first.headers.get('location'), '/auth/login?return_to=%2Fdocs%2F%3Ftab%3D2');

  const [res, finalUrl] = await agent.signIn(url('/docs/?tab=2'));
  assert.equal(res.status, 200, res.text_.slice(0, 300));
  assert.equal(finalUrl, url('/docs/?tab=2'));
  assert.match(res.text_, /Protected documentation/);
  assert.equal(res.headers.get('cache-control')?.startsWith('private'), true);
  assert.match(res.headers.get('vary') ?? '', /Cookie/);
  assert.ok(agent.cookie(worker.origin, SESSION), 'session cookie set');
  assert.equal([...agent.jar(worker.origin).keys()].filter((k) => k.includes('-tx-')).length, 0, 'transaction cookie removed');

  const me = await agent.request(url('/auth/userinfo'), { html: false });
  assert.equal(me.status, 200);
  const info = JSON.parse(me.text_);
  assert.equal(info.sub, 'alice');
  assert.equal(info.email, 'alice@example.com');
  assert.deepEqual(info.groups, ['staff', 'admins']);
});

test('the authorization request carries PKCE S256, state and nonce, and the login cookie is sealed', async () => {
  const agent = new Agent();
  const res = await agent.request(url('/auth/login?return_to=/x'));
  assert.equal(res.status, 302);
  const authz = new URL(res.headers.get('location'));
  assert.equal(authz.origin, idp.issuer);
  const q = authz.searchParams;
  assert.equal(q.get('response_type'), 'code');
  assert.equal(q.get('client_id'), DEMO_CLIENT_ID);
  assert.equal(q.get('redirect_uri'), url('/auth/callback'));
  assert.equal(q.get('code_challenge_method'), 'S256');
  assert.ok(q.get('code_challenge').length === 43);
  assert.ok(q.get('state').length >= 43 && q.get('nonce').length >= 43);
  const setCookie = res.headers.getSetCookie().find((c) => c.startsWith('portcullis-tx-'));
  assert.match(setCookie, /HttpOnly/);
  assert.match(setCookie, /SameSite=Lax/);
  assert.match(setCookie, /Max-Age=600/);
  assert.ok(!setCookie.includes(q.get('state')), 'state is not readable in the cookie');
});

test('two sign-ins in parallel tabs both complete', async () => {
  const agent = new Agent();
  const [, cbA] = await agent.signIn(url('/auth/login?return_to=/a'), { stopAtCallback: true });
  const [, cbB] = await agent.signIn(url('/auth/login?return_to=/docs/'), { stopAtCallback: true });
  const a = await agent.request(cbA);
  assert.equal(a.status, 302);
  assert.equal(a.headers.get('location'), '/a');
  const b = await agent.request(cbB);
  assert.equal(b.status, 302);
  assert.equal(b.headers.get('location'), '/docs/');
});

test('a replayed callback is refused', async () => {
  const agent = new Agent();
  const [, callback] = await agent.signIn(url('/'), { stopAtCallback: true });
  const txCookies = [...agent.jar(worker.origin)].filter(([k]) => k.includes('-tx-'));
  const ok = await agent.request(callback);
  assert.equal(ok.status, 302);
  const replay = await agent.request(callback);
  assert.equal(replay.status, 400);
  assert.match(replay.text_, /expired or was already used/);

  // Even with the spent transaction cookie put back, the code is single-use at the provider.
  const attacker = new Agent();
  for (const [k, v] of txCookies) attacker.setCookie(worker.origin, k, v);
  const again = await attacker.request(callback);
  assert.ok(again.status >= 400 && again.status < 500, `status ${again.status}`);
  assert.equal(attacker.cookie(worker.origin, SESSION), undefined);
});

test('a callback with the wrong state is refused', async () => {
  const agent = new Agent();
  const [, callback] = await agent.signIn(url('/'), { stopAtCallback: true });
  const forged = new URL(callback);
  forged.searchParams.set('state', 'A'.repeat(43));
  const res = await agent.request(forged.toString());
  assert.equal(res.status, 400);
  assert.equal(agent.cookie(worker.origin, SESSION), undefined);
});

test('a callback whose iss is another issuer is refused (RFC 9207)', async () => {
  const agent = new Agent();
  const [, callback] = await agent.signIn(url('/'), { stopAtCallback: true });
  const forged = new URL(callback);
  forged.searchParams.set('iss', 'http://127.0.0.1:1');
  const res = await agent.request(forged.toString());
  assert.equal(res.status, 400);
  assert.equal(agent.cookie(worker.origin, SESSION), undefined);
});

test('denied consent shows a clear page, not a server error', async () => {
  const agent = new Agent();
  const [res] = await agent.signIn(url('/'), { deny: true });
  assert.equal(res.status, 403);
  assert.match(res.text_, /Sign-in was cancelled/);
  assert.equal(agent.cookie(worker.origin, SESSION), undefined);
});

test('return_to outside the site ends at /', async () => {
  for (const evil of ['//evil.example', '/\\evil.example', 'https://evil.example/', '/%2F%2Fevil.example', '/.//evil.example']) {
    const agent = new Agent();
    const [, callback] = await agent.signIn(url(`/auth/login?return_to=${encodeURIComponent(evil)}`), { stopAtCallback: true });
    const res = await agent.request(callback);
    assert.equal(res.status, 302);
    assert.equal(res.headers.get('location'), '/', evil);
  }
});

test('logout ends the session and goes through the provider', async () => {
  const agent = new Agent();
  await agent.signIn(url('/'));
  const page = await agent.request(url('/auth/logout'));
  assert.equal(page.status, 200);
  assert.match(page.text_, /<form method="post"/);
  assert.ok(agent.cookie(worker.origin, SESSION), 'GET does not log out');

  const crossSite = await agent.request(url('/auth/logout'), { method: 'POST', headers: { origin: 'https://evil.example' } });
  assert.equal(crossSite.status, 403);
  assert.ok(agent.cookie(worker.origin, SESSION), 'a cross-site POST does not log out');

  const res = await agent.request(url('/auth/logout'), { method: 'POST', headers: { origin: worker.origin } });
  assert.equal(res.status, 302);
  const end = new URL(res.headers.get('location'));
  assert.equal(end.origin, idp.issuer);
  assert.equal(end.searchParams.get('client_id'), DEMO_CLIENT_ID);
  assert.equal(end.searchParams.get('post_logout_redirect_uri'), url('/auth/logged-out'));
  assert.equal(agent.cookie(worker.origin, SESSION), undefined);
  const me = await agent.request(url('/auth/userinfo'), { html: false });
  assert.equal(me.status, 401);
});

test('API clients get 401 JSON with WWW-Authenticate, never a redirect', async () => {
  const res = await fetch(url('/docs/'), { headers: { accept: 'application/json' }, redirect: 'manual' });
  assert.equal(res.status, 401);
  assert.match(res.headers.get('www-authenticate'), /^Bearer realm=/);
  assert.equal((await res.json()).error, 'unauthenticated');
});

test('public paths are served without sign-in', async () => {
  const res = await fetch(url('/public/'), { headers: { accept: 'text/html' }, redirect: 'manual' });
  assert.equal(res.status, 200);
  assert.match(await res.text(), /Public page/);
});

test('tampered, truncated and garbage cookies and bad requests get 4xx, never 5xx', async () => {
  const agent = new Agent();
  await agent.signIn(url('/'));
  const good = agent.cookie(worker.origin, SESSION);
  const flipped = good.slice(0, 20) + (good[20] === 'A' ? 'B' : 'A') + good.slice(21);
  const cases = [
    ['/', `${SESSION}=${flipped}`],
    ['/', `${SESSION}=${good.slice(0, good.length - 10)}`],
    ['/', `${SESSION}=garbage!!`],
    ['/', `${SESSION}=`],
    ['/', `${SESSION}=${'A'.repeat(9000)}`],
    ['/', `portcullis-tx-xxxxxxxx=${'B'.repeat(100)}; ${SESSION}=%%%`],
    ['/auth/userinfo', `${SESSION}=${flipped}`],
    ['/auth/callback', ''],
    ['/auth/callback?state=abc', ''],
    ['/auth/callback?code=abc', ''],
    ['/auth/callback?code=abc&state=abc', 'portcullis-tx-zzz=junk'],
    ['/auth/callback?error=server_error&error_description=%3Cscript%3E', ''],
    ['/auth/nope', ''],
    ['/a%2Fb', ''],
    ['/a%zz', ''],
  ];
  for (const [p, cookie] of cases) {
    for (const accept of ['text/html', 'application/json']) {
      const res = await fetch(url(p), { headers: { accept, cookie }, redirect: 'manual' });
      const body = await res.text();
      assert.ok(res.status < 500 || p.includes('server_error'), `${p} [${cookie.slice(0, 30)}] -> ${res.status}`);
      assert.notEqual(res.status, 200, `${p} [${cookie.slice(0, 30)}] should not succeed`);
      assert.ok(accept !== 'text/html' || !body.includes('<script>'), `${p} [${cookie.slice(0, 30)}] ${res.status}: ${body.slice(0, 300)}`);
      if (p === '/' && accept === 'application/json') assert.equal(res.status, 401);
    }
  }
  const huge = await fetch(url('/'), { headers: { accept: 'text/html', cookie: `x=${'y'.repeat(60_000)}` }, redirect: 'manual' });
  assert.ok(huge.status < 500, `oversized header -> ${huge.status}`);
  const manyCookies = Array.from({ length: 300 }, (_, i) => `c${i}=v`).join('; ');
  const many = await fetch(url('/'), { headers: { accept: 'text/html', cookie: manyCookies }, redirect: 'manual' });
  assert.ok(many.status < 500, `many cookies -> ${many.status}`);
});

test('key rotation at the provider: sign-in still works, and cached metadata serves while it is down', async () => {
  await idp.close();
  // Provider down: metadata comes from the cache, so sign-in still starts.
  const down = await fetch(url('/auth/login'), { redirect: 'manual' });
  assert.equal(down.status, 302);
  assert.ok(down.headers.get('location').startsWith(`http://127.0.0.1:${idpPort}/`));

  const newKey = makeSigningKey('second');
  idp = await startIdp({ port: idpPort, keys: [newKey, firstKey], workerOrigins: [worker.origin] });
  const agent = new Agent();
  const [res, finalUrl] = await agent.signIn(url('/docs/'));
  assert.equal(res.status, 200, `${finalUrl}: ${res.text_.slice(0, 300)}`);
  assert.match(res.text_, /Protected documentation/);
  await worker.waitForLog(/jwks_refetch/);
});

test('an origin upstream gets method, body and clean headers; responses leave private', async () => {
  const echo = http.createServer((req, res) => {
    let body = '';
    req.on('data', (d) => { body += d; });
    req.on('end', () => {
      if (req.url === '/redirect') { res.writeHead(302, { location: '/elsewhere' }); return res.end(); }
      res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'public, max-age=120, s-maxage=3600' });
      res.end(JSON.stringify({ method: req.method, url: req.url, headers: req.headers, body }));
    });
  });
  const echoPort = await freePort();
  await new Promise((r) => echo.listen(echoPort, '127.0.0.1', r));
  const port = await freePort();
  const saved = idp;
  await saved.close();
  idp = await startIdp({ port: idpPort, keys: [makeSigningKey('third')], workerOrigins: [worker.origin, `http://127.0.0.1:${port}`] });
  const w = await startWorker({ port, vars: workerVars(idp.issuer, { UPSTREAM: `http://127.0.0.1:${echoPort}` }) });
  try {
    const agent = new Agent();
    const [signedIn] = await agent.signIn(`${w.origin}/api/items?x=1`);
    assert.equal(signedIn.status, 200);
    const res = await agent.request(`${w.origin}/api/items?x=1`, {
      method: 'POST', html: false,
      headers: { 'content-type': 'text/plain', 'x-auth-request-user': 'mallory', 'X_Forwarded_Email': 'm@evil', 'x-custom': 'kept' },
      body: 'hello origin',
    });
    assert.equal(res.status, 200);
    const seen = JSON.parse(res.text_);
    assert.equal(seen.method, 'POST');
    assert.equal(seen.url, '/api/items?x=1');
    assert.equal(seen.body, 'hello origin');
    assert.equal(seen.headers['x-custom'], 'kept');
    assert.equal(seen.headers['x-auth-request-user'], 'alice', 'the real identity replaces the spoofed one');
    assert.equal(seen.headers.x_forwarded_email, undefined);
    assert.ok(!(seen.headers.cookie ?? '').includes('portcullis'), 'session cookie is not forwarded');
    assert.equal(res.headers.get('cache-control'), 'private, max-age=120');
    assert.match(res.headers.get('vary'), /Cookie/);

    const redirect = await agent.request(`${w.origin}/redirect`, { html: false });
    assert.equal(redirect.status, 302, 'redirects from the origin pass through, not followed');
    assert.equal(redirect.headers.get('location'), '/elsewhere');

    await new Promise((r) => { echo.closeAllConnections(); echo.close(r); });
    const down = await agent.request(`${w.origin}/api/items`, { html: false });
    assert.equal(down.status, 502, 'the origin is down');
    assert.equal(JSON.parse(down.text_).error, 'upstream_unavailable');
  } finally {
    await w.stop();
    echo.close();
  }
});

test('a configuration error names the variable, never its value', async () => {
  const port = await freePort();
  const w = await startWorker({ port, vars: { ...workerVars(idp.issuer), COOKIE_SECRET: 'dG9vLXNob3J0' } });
  try {
    const res = await fetch(`${w.origin}/`, { headers: { accept: 'text/html' }, redirect: 'manual' });
    assert.equal(res.status, 500);
    const body = await res.text();
    assert.match(body, /COOKIE_SECRET/);
    assert.ok(!body.includes('dG9vLXNob3J0'));
    await w.waitForLog(/configuration_error/);
  } finally {
    await w.stop();
  }
});
