// Bearer access tokens end to end: RFC 9068 tokens from the real oidc-provider, and tokens
// shaped like Entra ID's (typ JWT, scp, roles) from a static issuer, against the built worker.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { startIdp, clientCredentialsToken } from '../support/idp.mjs';
import { startStaticIssuer } from '../support/issuer.mjs';
import { startWorker, freePort, Agent, clientVars } from '../support/harness.mjs';

const API = 'https://api.portcullis.test/';
const ENTRA_API = 'aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee';
let idp; let entra; let worker; let echo;

before(async () => {
  const [idpPort, entraPort, workerPort, echoPort] = [await freePort(), await freePort(), await freePort(), await freePort()];
  echo = http.createServer((req, res) => {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ method: req.method, url: req.url, headers: req.headers }));
  });
  await new Promise((r) => echo.listen(echoPort, '127.0.0.1', r));
  idp = await startIdp({ port: idpPort, workerOrigins: [`http://127.0.0.1:${workerPort}`], apiResource: API });
  entra = await startStaticIssuer({ port: entraPort });
  worker = await startWorker({
    port: workerPort,
    vars: clientVars(idp.issuer, {
      UPSTREAM: `http://127.0.0.1:${echoPort}`,
      API_AUDIENCES: `${API} ${ENTRA_API}`,
      API_ISSUERS: `${idp.issuer} ${entra.issuer}`,
      API_ROUTES: 'GET,HEAD /api/data/* scope:data.read; POST,PUT,DELETE /api/data/* scope:data.write role:Data.Writer; * /api/* any',
    }),
  });
});

after(async () => {
  await worker?.stop();
  await idp?.close();
  await entra?.close();
  echo?.close();
});

function call(path, { token, method = 'GET', headers = {} } = {}) {
  const h = { accept: 'application/json', ...headers };
  if (token) h.authorization = `Bearer ${token}`;
  return fetch(`${worker.origin}${path}`, { method, headers: h, redirect: 'manual' });
}

async function expectChallenge(res, status, error) {
  assert.equal(res.status, status);
  const challenge = res.headers.get('www-authenticate') ?? '';
  assert.match(challenge, /^Bearer realm="portcullis"/);
  if (error) assert.match(challenge, new RegExp(`error="${error}"`));
  const body = await res.json();
  return { challenge, body };
}

test('an RFC 9068 token from the provider with data.read reads, and cannot write', async () => {
  const token = await clientCredentialsToken(idp.issuer, API, 'data.read');
  const header = JSON.parse(Buffer.from(token.split('.')[0], 'base64url'));
  assert.equal(header.typ, 'at+jwt');
  const read = await call('/api/data/items', { token });
  assert.equal(read.status, 200);
  const seen = await read.json();
  assert.equal(seen.url, '/api/data/items');
  assert.equal(seen.headers.authorization, `Bearer ${token}`, 'the API receives its token');
  assert.equal(seen.headers['x-auth-request-user'], 'api-client');

  const write = await call('/api/data/items', { token, method: 'POST' });
  const { challenge, body } = await expectChallenge(write, 403, 'insufficient_scope');
  assert.match(challenge, /scope="data.write Data.Writer"/);
  assert.equal(body.error, 'insufficient_scope');
});

test('data.write from the provider writes', async () => {
  const token = await clientCredentialsToken(idp.issuer, API, 'data.write');
  assert.equal((await call('/api/data/items', { token, method: 'POST' })).status, 200);
});

test('Entra-shaped tokens: typ JWT with scp string and roles array', async () => {
  const reader = entra.mint({ aud: ENTRA_API, sub: 'u1', oid: 'o1', scp: 'data.read', azp: 'spa-client' });
  assert.equal((await call('/api/data/x', { token: reader })).status, 200);
  await expectChallenge(await call('/api/data/x', { token: reader, method: 'DELETE' }), 403, 'insufficient_scope');
  const writerApp = entra.mint({ aud: ENTRA_API, sub: 'app-1', roles: ['Data.Writer'] }, { alg: 'ES256' });
  assert.equal((await call('/api/data/x', { token: writerApp, method: 'PUT' })).status, 200);
  const v1 = entra.mint({ aud: ENTRA_API, scp: 'data.read', iss: `https://sts.windows.net/${entra.tenant}/`, ver: '1.0' });
  await expectChallenge(await call('/api/data/x', { token: v1 }), 401, 'invalid_token');
});

test('bad tokens are refused with invalid_token', async () => {
  const now = Math.floor(Date.now() / 1000);
  const cases = {
    expired: entra.mint({ aud: ENTRA_API, scp: 'data.read', exp: now - 3600, iat: now - 7200, nbf: now - 7200 }),
    'wrong audience': entra.mint({ aud: 'api://someone-else', scp: 'data.read' }),
    'an ID token': entra.mint({ aud: ENTRA_API, scp: 'data.read', nonce: 'n-123' }),
    'alg none': entra.mint({ aud: ENTRA_API, scp: 'data.read' }, { alg: 'none' }),
    'HS256 signed with the RSA public key': entra.mint({ aud: ENTRA_API, scp: 'data.read' }, { alg: 'HS256' }),
    'unknown kid': entra.mint({ aud: ENTRA_API, scp: 'data.read' }, { kid: 'not-published' }),
    'untrusted issuer': entra.mint({ aud: ENTRA_API, scp: 'data.read', iss: 'http://127.0.0.1:9/evil/v2.0' }),
    garbage: 'not.a.token',
    tampered: (() => { const t = entra.mint({ aud: ENTRA_API, scp: 'data.read' }).split('.'); t[1] = Buffer.from(JSON.stringify({ iss: entra.issuer, aud: ENTRA_API, scp: 'data.write', exp: now + 60 })).toString('base64url'); return t.join('.'); })(),
  };
  for (const [name, token] of Object.entries(cases)) {
    const res = await call('/api/data/x', { token });
    assert.equal(res.status, 401, name);
    assert.match(res.headers.get('www-authenticate'), /error="invalid_token"/, name);
    assert.equal((await res.json()).error, 'invalid_token', name);
  }
});

test('an ID token (nonce, at_hash) for the API audience is not an access token', async () => {
  const idToken = entra.mint({ aud: ENTRA_API, nonce: 'abc', at_hash: 'x' });
  const { body } = await expectChallenge(await call('/api/data/x', { token: idToken }), 401, 'invalid_token');
  assert.match(body.error_description, /ID token/);
});

test('API routes need a token: none gives 401 without an error code, query tokens are ignored', async () => {
  const { challenge, body } = await expectChallenge(await call('/api/data/x'), 401);
  assert.ok(!challenge.includes('error='), challenge);
  assert.equal(body.error, 'unauthenticated');
  const token = entra.mint({ aud: ENTRA_API, scp: 'data.read' });
  await expectChallenge(await call(`/api/data/x?access_token=${token}`), 401);
  const malformed = await call('/api/data/x', { headers: { authorization: 'Bearer ' } });
  assert.equal(malformed.status, 400);
  const basic = await call('/api/data/x', { headers: { authorization: 'Basic dXNlcjpwYXNz' } });
  assert.equal(basic.status, 401, 'other schemes are not Bearer tokens');
});

test('matching uses the normalized path, never the query string', async () => {
  const reader = entra.mint({ aud: ENTRA_API, scp: 'data.read' });
  for (const path of ['/api/data/x?x=/../../public', '//api/data/x', '/API/DATA/x', '/api/%64ata/x']) {
    const res = await call(path, { token: reader, method: 'DELETE' });
    assert.equal(res.status, 403, path);
  }
});

test('a token wins over a session cookie: a bad token with a good cookie is still refused', async () => {
  const agent = new Agent();
  const [signedIn] = await agent.signIn(`${worker.origin}/docs/`);
  assert.equal(signedIn.status, 200);
  const res = await agent.request(`${worker.origin}/docs/`, { html: false, headers: { authorization: 'Bearer not.a.token' } });
  assert.equal(res.status, 401);
  // The cookie alone is enough for pages, but API routes want a token.
  assert.equal((await agent.request(`${worker.origin}/docs/`)).status, 200);
  assert.equal((await agent.request(`${worker.origin}/api/data/x`, { html: false })).status, 401);
});

test('a repeated token keeps working (the verified-token cache serves it)', async () => {
  const token = entra.mint({ aud: ENTRA_API, scp: 'data.read' });
  for (let i = 0; i < 5; i++) assert.equal((await call('/api/data/x', { token })).status, 200);
});
