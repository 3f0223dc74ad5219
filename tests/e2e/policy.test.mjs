// Access policy and identity to the origin, end to end: two users in different groups, an
// origin that echoes what it receives, and the signed assertion checked with jose.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import crypto from 'node:crypto';
import { createRemoteJWKSet, jwtVerify } from 'jose';
import { startIdp } from '../support/idp.mjs';
import { startWorker, freePort, Agent, clientVars, assertionKey } from '../support/harness.mjs';

let idp; let worker; let echo; let alice; let bob; let echoPort; let edPort; let badPort;

before(async () => {
  const [idpPort, workerPort] = [await freePort(), await freePort()];
  [echoPort, edPort, badPort] = [await freePort(), await freePort(), await freePort()];
  echo = http.createServer((req, res) => {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ url: req.url, headers: req.headers }));
  });
  await new Promise((r) => echo.listen(echoPort, '127.0.0.1', r));
  const workerOrigins = [workerPort, edPort, badPort].map((p) => `http://127.0.0.1:${p}`);
  idp = await startIdp({ port: idpPort, workerOrigins });
  worker = await startWorker({
    port: workerPort,
    vars: clientVars(idp.issuer, {
      UPSTREAM: `http://127.0.0.1:${echoPort}`,
      PUBLIC_PATHS: '/public/*',
      ACCESS_RULES: '/admin/* group:admins; /bob-only/* email:bob@example.com; /staff/* group:staff; /corp/* domain:example.com',
      ALLOW_GROUPS: 'staff',
      ASSERTION_AUDIENCE: 'origin-app',
      ASSERTION_SIGNING_KEYS: JSON.stringify([assertionKey('current'), assertionKey('previous')]),
    }),
  });
  alice = new Agent();
  bob = new Agent();
  for (const [agent, user] of [[alice, 'alice'], [bob, 'bob']]) {
    const [res] = await agent.signIn(`${worker.origin}/staff/`, { user });
    assert.equal(res.status, 200, `${user} signs in`);
  }
});

after(async () => {
  await worker?.stop();
  await idp?.close();
  echo?.close();
});

const get = (agent, path, headers = {}) => agent.request(`${worker.origin}${path}`, { headers });

/** Sends `path` exactly as written (fetch would resolve dot segments first). */
function rawGet(agent, path, headers = {}) {
  const { hostname, port } = new URL(worker.origin);
  return new Promise((resolve, reject) => {
    const req = http.request({ hostname, port, path, headers: { accept: 'text/html', cookie: agent.cookieHeader(worker.origin), ...headers } }, (res) => {
      let body = '';
      res.on('data', (d) => { body += d; });
      res.on('end', () => resolve({ status: res.statusCode, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

test('each person reaches only what the policy allows', async () => {
  assert.equal((await get(alice, '/admin/panel')).status, 200);
  const denied = await get(bob, '/admin/panel');
  assert.equal(denied.status, 403);
  assert.match(denied.text_, /signed in as bob@example\.com/);
  assert.match(denied.text_, /Sign out/);
  assert.equal((await get(bob, '/bob-only/x')).status, 200);
  assert.equal((await get(alice, '/bob-only/x')).status, 403);
  assert.equal((await get(alice, '/corp/x')).status, 200);
  assert.equal((await get(bob, '/elsewhere')).status, 200, 'default rule: ALLOW_GROUPS staff');
  const api = await bob.request(`${worker.origin}/admin/panel`, { html: false });
  assert.equal(api.status, 403);
  assert.equal(JSON.parse(api.text_).error, 'forbidden');
  await worker.waitForLog(/"event":"access"[^\n]*"outcome":"deny"/);
});

test('encoded, dotted and doubled paths are judged as the origin will see them', async () => {
  for (const path of ['//admin/panel', '/%61dmin/panel', '/public/../admin/panel', '/public/%2e%2e/admin/panel', '/staff/../admin/x']) {
    const res = await rawGet(bob, path);
    assert.equal(res.status, 403, path);
  }
  for (const path of ['/public%2F..%2Fadmin/panel', '/admin;x=1/panel', '/admin./panel', '/admin%5cpanel']) {
    const res = await rawGet(bob, path);
    assert.equal(res.status, 400, path);
  }
  const ok = await rawGet(alice, '//admin/./x/../panel?q=%2F');
  assert.equal(ok.status, 200);
  assert.equal(JSON.parse(ok.body).url, '/admin/panel?q=%2F', 'the origin gets the normalized path, query untouched');
});

test('spoofed identity headers never reach the origin; the real identity does', async () => {
  const res = await get(bob, '/staff/echo', {
    'X-Auth-Request-User': 'alice',
    'X-Auth-Request-Email': 'alice@example.com',
    'X-Auth-Request-Groups': 'admins',
    'X-Forwarded-User': 'alice',
    'X-Forwarded-Email': 'alice@example.com',
    'X-Forwarded-Preferred-Username': 'alice',
    'X-Portcullis-Assertion': 'forged',
  });
  assert.equal(res.status, 200);
  const seen = JSON.parse(res.text_).headers;
  assert.equal(seen['x-auth-request-user'], 'bob');
  assert.equal(seen['x-auth-request-email'], 'bob@example.com');
  assert.equal(seen['x-auth-request-groups'], 'staff');
  assert.equal(seen['x-forwarded-user'], undefined);
  assert.equal(seen['x-forwarded-email'], undefined);
  assert.equal(seen['x-forwarded-preferred-username'], undefined);
  assert.notEqual(seen['x-portcullis-assertion'], 'forged');
  assert.ok(!(seen.cookie ?? '').includes('portcullis'));
});

test('the assertion verifies with an independent JWT library against /auth/jwks.json', async () => {
  const res = await get(alice, '/admin/echo');
  const jwt = JSON.parse(res.text_).headers['x-portcullis-assertion'];
  assert.ok(jwt, 'assertion header present');
  const jwks = createRemoteJWKSet(new URL(`${worker.origin}/auth/jwks.json`));
  const { payload, protectedHeader } = await jwtVerify(jwt, jwks, { issuer: worker.origin, audience: 'origin-app', algorithms: ['ES256'] });
  assert.equal(protectedHeader.kid, 'current');
  assert.equal(payload.sub, 'alice');
  assert.equal(payload.email, 'alice@example.com');
  assert.deepEqual(payload.groups, ['staff', 'admins']);
  assert.ok(payload.exp - payload.iat <= 300);
  await assert.rejects(jwtVerify(jwt, jwks, { issuer: worker.origin, audience: 'another-app' }), /aud/);
  await assert.rejects(jwtVerify(jwt.slice(0, -4) + 'AAAA', jwks, { audience: 'origin-app' }));

  const published = await (await fetch(`${worker.origin}/auth/jwks.json`)).json();
  assert.deepEqual(published.keys.map((k) => k.kid), ['current', 'previous']);
  assert.ok(published.keys.every((k) => !('d' in k)), 'no private key material');
});

test('public paths skip sign-in and carry no identity', async () => {
  const res = await fetch(`${worker.origin}/public/x`, { headers: { 'x-auth-request-user': 'mallory' } });
  assert.equal(res.status, 200);
  const seen = (await res.json()).headers;
  assert.equal(seen['x-auth-request-user'], undefined);
  assert.equal(seen['x-portcullis-assertion'], undefined);
});

test('Ed25519 assertion keys sign through WebCrypto, and a key whose public half is not its own never signs', async () => {
  const ed = crypto.generateKeyPairSync('ed25519').privateKey.export({ format: 'jwk' });
  const p256 = () => crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ format: 'jwk' });
  const other = p256();
  const contradicting = { ...p256(), x: other.x, y: other.y };
  const workers = [];
  try {
    for (const [port, key] of [[edPort, ed], [badPort, contradicting]]) {
      workers.push(await startWorker({
        port,
        vars: clientVars(idp.issuer, {
          UPSTREAM: `http://127.0.0.1:${echoPort}`,
          ASSERTION_AUDIENCE: 'origin-app',
          ASSERTION_SIGNING_KEYS: JSON.stringify(key),
        }),
      }));
    }
    const [edWorker, badWorker] = workers;
    const carol = new Agent();
    const [signedIn] = await carol.signIn(`${edWorker.origin}/x`, { user: 'alice' });
    assert.equal(signedIn.status, 200);
    const jwt = JSON.parse((await carol.request(`${edWorker.origin}/x`)).text_).headers['x-portcullis-assertion'];
    const jwks = createRemoteJWKSet(new URL(`${edWorker.origin}/auth/jwks.json`));
    const { payload, protectedHeader } = await jwtVerify(jwt, jwks, { issuer: edWorker.origin, audience: 'origin-app', algorithms: ['EdDSA'] });
    assert.equal(payload.sub, 'alice');
    assert.equal(protectedHeader.kid.length, 43, 'a kid left out is the key thumbprint');

    const dave = new Agent();
    const [refused] = await dave.signIn(`${badWorker.origin}/x`, { user: 'alice' });
    assert.equal(refused.status, 500, 'the signed-in request is refused, not forwarded without its assertion');
    assert.ok(!refused.text_.includes(contradicting.d));
  } finally {
    for (const w of workers) await w.stop();
  }
});
