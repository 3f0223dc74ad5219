// The trust boundary, end to end in workerd: only the right people reach the origin, and the
// origin learns who they really are. One test per class of bypass the security review found.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import crypto from 'node:crypto';
import { startIdp, makeSigningKey } from '../support/idp.mjs';
import { startStaticIssuer } from '../support/issuer.mjs';
import { startWorker, freePort, Agent, clientVars, assertionKey } from '../support/harness.mjs';

const API_AUD = 'api://portcullis-boundary';
const b64url = (v) => Buffer.from(v).toString('base64url');

let idp; let idpPort; let signingKey; let issuer; let echo; let origin; let assets;
let alice; let bob; let mallory; let assetsBob; let seen = [];

/** A JWT signed RS256 with a private JWK (the provider's own key, or a made-up one). */
function signRs256(jwk, header, claims) {
  const input = `${b64url(JSON.stringify({ alg: 'RS256', kid: jwk.kid, ...header }))}.${b64url(JSON.stringify(claims))}`;
  const key = crypto.createPrivateKey({ key: jwk, format: 'jwk' });
  return `${input}.${b64url(crypto.sign('sha256', Buffer.from(input), key))}`;
}

const assertionOf = (headers) => JSON.parse(Buffer.from(headers['x-portcullis-assertion'].split('.')[1], 'base64url'));

before(async () => {
  const [echoPort, originPort, assetsPort, issuerPort] = [await freePort(), await freePort(), await freePort(), await freePort()];
  idpPort = await freePort();
  echo = http.createServer((req, res) => {
    seen.push({ method: req.method, url: req.url, headers: req.headers });
    res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'public, max-age=600' });
    res.end(JSON.stringify({ method: req.method, url: req.url, headers: req.headers }));
  });
  await new Promise((r) => echo.listen(echoPort, '127.0.0.1', r));
  signingKey = makeSigningKey('boundary-1');
  idp = await startIdp({
    port: idpPort,
    keys: [signingKey],
    workerOrigins: [`http://127.0.0.1:${originPort}`, `http://127.0.0.1:${assetsPort}`],
  });
  issuer = await startStaticIssuer({ port: issuerPort });
  origin = await startWorker({
    port: originPort,
    vars: clientVars(idp.issuer, {
      UPSTREAM: `http://127.0.0.1:${echoPort}`,
      PUBLIC_PATHS: '/open/*',
      ACCESS_RULES: '/admin/* group:admins',
      SESSION_STORE: 'durable_object',
      API_AUDIENCES: API_AUD,
      API_ISSUERS: `${issuer.issuer} ${idp.issuer}`,
      API_ROUTES: 'GET /api/data/* scope:data.write; * /api/open/* any',
      ASSERTION_AUDIENCE: 'origin-app',
      ASSERTION_SIGNING_KEYS: JSON.stringify(assertionKey('a1')),
    }),
  });
  const site = fs.mkdtempSync(path.join(os.tmpdir(), 'portcullis-assets-'));
  fs.mkdirSync(path.join(site, 'private'));
  fs.writeFileSync(path.join(site, 'index.html'), '<h1>home</h1>');
  fs.writeFileSync(path.join(site, 'secret.html'), '<h1>the secret</h1>');
  fs.writeFileSync(path.join(site, 'private', 'index.html'), '<h1>private index</h1>');
  fs.mkdirSync(path.join(site, 'docs'));
  fs.writeFileSync(path.join(site, 'docs.html'), '<h1>public docs</h1>');
  fs.writeFileSync(path.join(site, 'docs', 'index.html'), '<h1>staff docs</h1>');
  assets = await startWorker({
    port: assetsPort,
    assets: site,
    vars: clientVars(idp.issuer, { PUBLIC_PATHS: '/docs.html', ACCESS_RULES: '/secret.html group:admins; /private/* group:admins; /docs/* group:admins' }),
  });
  alice = new Agent(); bob = new Agent(); mallory = new Agent(); assetsBob = new Agent();
  for (const [agent, user, w] of [[alice, 'alice', origin], [bob, 'bob', origin], [mallory, 'mallory', origin], [assetsBob, 'bob', assets]]) {
    const [res] = await agent.signIn(`${w.origin}/`, { user });
    assert.equal(res.status, 200, `${user} signs in`);
  }
});

after(async () => {
  await origin?.stop();
  await assets?.stop();
  await idp?.close();
  await issuer?.close();
  echo?.close();
});

const echoed = async (agent, p, init = {}) => {
  const res = await agent.request(`${origin.origin}${p}`, { html: false, ...init });
  assert.equal(res.status, 200, `${p}: ${res.text_}`);
  return JSON.parse(res.text_).headers;
};

/** Sends `p` exactly as written (fetch would normalize it first). */
function rawRequest(w, agent, p, headers = {}) {
  const { hostname, port } = new URL(w.origin);
  return new Promise((resolve, reject) => {
    const req = http.request({ hostname, port, path: p, headers: { accept: 'text/html', cookie: agent.cookieHeader(w.origin), ...headers } }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode));
    });
    req.on('error', reject);
    req.end();
  });
}

test('an email the provider does not vouch for never reaches the origin as the person\'s', async () => {
  const h = await echoed(mallory, '/whoami');
  assert.equal(h['x-auth-request-user'], 'mallory');
  assert.equal(h['x-auth-request-email'], undefined);
  const claims = assertionOf(h);
  assert.equal(claims.sub, 'mallory');
  assert.equal(claims.email, undefined);
  const verified = await echoed(alice, '/whoami');
  assert.equal(verified['x-auth-request-email'], 'alice@example.com');
  assert.equal(assertionOf(verified).email_verified, true);
  // Bearer tokens: an unverified email claim or a login name is not an email either.
  const token = issuer.mint({ sub: 'u1', aud: API_AUD, scp: 'data.read', email: 'victim@corp.example', preferred_username: 'victim@corp.example' });
  const api = await echoed(new Agent(), '/api/open/x', { headers: { authorization: `Bearer ${token}` } });
  assert.equal(api['x-auth-request-email'], undefined);
});

test('the assertion belongs to the credential presented, and a token without sub is refused', async () => {
  const a = issuer.mint({ sub: 'same', aud: API_AUD, roles: ['Data.Admin'] });
  const b = issuer.mint({ sub: 'same', aud: API_AUD, jti: 'other' });
  const first = assertionOf(await echoed(new Agent(), '/api/open/x', { headers: { authorization: `Bearer ${a}` } }));
  const second = assertionOf(await echoed(new Agent(), '/api/open/x', { headers: { authorization: `Bearer ${b}` } }));
  assert.deepEqual(first.roles, ['Data.Admin']);
  assert.equal(second.roles, undefined);
  const noSub = issuer.mint({ sub: undefined, aud: API_AUD, scp: 'data.write' });
  const res = await fetch(`${origin.origin}/api/open/x`, { headers: { authorization: `Bearer ${noSub}` } });
  assert.equal(res.status, 401);
  assert.match(res.headers.get('www-authenticate'), /invalid_token/);
});

test('a rule on a static file covers every path the assets serve it at', async () => {
  for (const p of ['/secret.html', '/secret', '/secret/', '/private/', '/private', '/private/index.html']) {
    const res = await assetsBob.request(`${assets.origin}${p}`);
    assert.equal(res.status, 403, `${p}: ${res.status} ${res.text_.slice(0, 80)}`);
    assert.ok(!res.text_.includes('the secret') && !res.text_.includes('private index'), p);
  }
  const home = await assetsBob.request(`${assets.origin}/`);
  assert.equal(home.status, 200);
  // A public file opens only the paths that serve it, not another file of the same name.
  const anonymous = new Agent();
  const docs = await anonymous.request(`${assets.origin}/docs`);
  assert.equal(docs.status, 200);
  assert.match(docs.text_, /public docs/);
  for (const p of ['/docs/', '/docs/index.html']) {
    const res = await anonymous.request(`${assets.origin}${p}`);
    assert.equal(res.status, 302, p);
    assert.ok(!res.text_.includes('staff docs'), p);
  }
});

test('unicode look-alikes and invisible characters in a path are a 400', async () => {
  for (const p of ['/adm%C4%B1n/', '/%EF%BD%81dmin/', '/ad%E2%80%8Bmin/', '/%C0%AFadmin/', '/open/%E2%80%A5/admin/', '/a%E2%88%95admin/']) {
    assert.equal(await rawRequest(origin, bob, p), 400, p);
  }
});

test('no method gets around an API route, and method overrides never reach the origin', async () => {
  const reader = issuer.mint({ sub: 'u1', aud: API_AUD, scp: 'data.read' });
  const call = (method, p, headers = {}) => fetch(`${origin.origin}${p}`, { method, headers: { authorization: `Bearer ${reader}`, ...headers } });
  assert.equal((await call('GET', '/api/data/1')).status, 403);
  assert.equal((await call('HEAD', '/api/data/1')).status, 403);
  for (const method of ['DELETE', 'POST', 'PUT', 'PROPFIND']) {
    const res = await call(method, '/api/data/1');
    assert.equal(res.status, 405, method);
    assert.equal(res.headers.get('allow'), 'GET, HEAD');
  }
  assert.equal((await call('POST', '/api/data/1', { 'x-http-method-override': 'GET' })).status, 405);
  const res = await call('POST', '/api/open/x', { 'x-http-method-override': 'DELETE', 'x-http-method': 'DELETE', 'x-method-override': 'DELETE' });
  const h = JSON.parse(await res.text()).headers;
  for (const name of ['x-http-method-override', 'x-http-method', 'x-method-override']) assert.equal(h[name], undefined, name);
  assert.equal((await call('POST', '/api/open/x?_method=DELETE')).status, 400);
});

test('rewrite and forwarding headers are set by the gate, never taken from the client', async () => {
  const h = await echoed(alice, '/page', {
    headers: {
      'x-original-url': '/admin/', 'x-rewrite-url': '/admin/', 'x-forwarded-uri': '/admin/', 'x-forwarded-host': 'evil.example',
      'x-forwarded-proto': 'https', 'x-forwarded-for': '10.9.9.9', forwarded: 'for=10.9.9.9;host=evil.example',
    },
  });
  assert.equal(h['x-original-url'], undefined);
  assert.equal(h['x-rewrite-url'], undefined);
  assert.equal(h['x-forwarded-uri'], undefined);
  assert.equal(h['x-forwarded-host'], new URL(origin.origin).host);
  assert.equal(h['x-forwarded-proto'], 'http');
  assert.ok(!String(h['x-forwarded-for'] ?? '').includes('10.9.9.9'), h['x-forwarded-for']);
  assert.ok(!h.forwarded.includes('evil.example') && !h.forwarded.includes('10.9.9.9'), h.forwarded);
});

test('a malformed Bearer header is refused, not forwarded beside the cookie identity', async () => {
  for (const value of ['Bearer\tx', 'Bearer', 'bearer a b', 'BearerXabc', 'Basic Zg==, Bearer x']) {
    const res = await alice.request(`${origin.origin}/page`, { headers: { authorization: value } });
    assert.equal(res.status, 400, JSON.stringify(value));
    assert.equal(JSON.parse(res.text_).error, 'invalid_request');
  }
});

test('cookies from sibling subdomains ahead of ours cannot sign a person out', async () => {
  const junk = Array.from({ length: 300 }, (_, i) => `sibling${i}=x`).join('; ');
  const res = await fetch(`${origin.origin}/page`, { headers: { cookie: `${junk}; ${alice.cookieHeader(origin.origin)}` }, redirect: 'manual' });
  assert.equal(res.status, 200);
  assert.equal(JSON.parse(await res.text()).headers['x-auth-request-user'], 'alice');
});

test('a back-channel logout token is single use', async () => {
  const token = (jti) => signRs256(signingKey, { typ: 'logout+jwt' }, {
    iss: idp.issuer, aud: 'portcullis-demo', iat: Math.floor(Date.now() / 1000), jti,
    sub: 'nobody', events: { 'http://schemas.openid.net/event/backchannel-logout': {} },
  });
  const post = (t) => fetch(`${origin.origin}/auth/backchannel-logout`, {
    method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams({ logout_token: t }).toString(),
  });
  const once = token(`jti-${crypto.randomUUID()}`);
  assert.equal((await post(once)).status, 200);
  const again = await post(once);
  assert.equal(again.status, 400);
  assert.match(await again.text(), /already used/);
});

test('plain http to a non-loopback upstream is a configuration error naming the variable', async () => {
  const port = await freePort();
  const w = await startWorker({ port, vars: clientVars(idp.issuer, { UPSTREAM: 'http://origin.example.com' }) });
  try {
    const res = await fetch(`${w.origin}/`, { headers: { accept: 'text/html' }, redirect: 'manual' });
    assert.equal(res.status, 500);
    const body = await res.text();
    assert.match(body, /UPSTREAM/);
    assert.ok(!body.includes('origin.example.com'));
  } finally {
    await w.stop();
  }
});

test('a protected response is fetched past the shared cache; a public one is not forced', async () => {
  seen = [];
  await echoed(alice, '/cached-page');
  await echoed(new Agent(), '/open/cached');
  const byUrl = Object.fromEntries(seen.map((r) => [r.url, r.headers]));
  // workerd turns `cache: "no-store"` into request directives the origin can see.
  assert.match(String(byUrl['/cached-page']['cache-control'] ?? byUrl['/cached-page'].pragma ?? ''), /no-(store|cache)/);
  assert.doesNotMatch(String(byUrl['/open/cached']['cache-control'] ?? ''), /no-(store|cache)/);
});

// Last: restarts the provider with a new key.
test('a made-up kid on a Bearer token never blocks a real key rotation at sign-in', async () => {
  const madeUp = makeSigningKey('made-up');
  const forged = signRs256(madeUp, { typ: 'at+jwt' }, { iss: idp.issuer, sub: 'x', aud: API_AUD, exp: Math.floor(Date.now() / 1000) + 600 });
  const res = await fetch(`${origin.origin}/api/open/x`, { headers: { authorization: `Bearer ${forged}` } });
  assert.equal(res.status, 401);
  await origin.waitForLog(/jwks_refetch/);
  await idp.close();
  const rotated = makeSigningKey('boundary-2');
  idp = await startIdp({ port: idpPort, keys: [rotated, signingKey], workerOrigins: [origin.origin, assets.origin] });
  const carol = new Agent();
  const [done] = await carol.signIn(`${origin.origin}/page`, { user: 'carol' });
  assert.equal(done.status, 200, done.text_.slice(0, 300));
  assert.equal(JSON.parse(done.text_).headers['x-auth-request-user'], 'carol');
});
