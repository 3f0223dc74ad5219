// Client authentication with a key (private_key_jwt, RFC 7523 / OIDC Core 9) and pushed
// authorization requests (PAR, RFC 9126), end to end against oidc-provider, which records every
// request it serves (idp.requests). Two providers: `par` requires PAR of every client; `plain`
// only offers it. At both the worker's client has no secret, only keys: RS256 with x5t#S256
// (as for Entra ID) at `par`, ES256 and PS256 at `plain`.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import crypto from 'node:crypto';
import { startIdp, makeSigningKey, DEMO_CLIENT_ID } from '../support/idp.mjs';
import { startWorker, freePort, Agent, clientVars } from '../support/harness.mjs';

const ACCESS_TOKEN_TTL = 4;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
/** Past the access token's expiry (less the 1 s margin), so the next request refreshes. */
const untilRefreshDue = () => sleep((ACCESS_TOKEN_TTL - 1) * 1000 + 400);
const ASSERTION_TYPE = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer';
const PAR_URN = 'urn:ietf:params:oauth:request_uri:';

function ecKey(kid) {
  const { privateKey } = crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' });
  return { ...privateKey.export({ format: 'jwk' }), kid, alg: 'ES256', use: 'sig' };
}

// The client's keys (private JWKs, as OIDC_CLIENT_KEY takes them). The wrong ones have the kid
// and alg of a registered one but other key material: only the signature gives them away.
const KEYS = {
  rs256: { ...makeSigningKey('portcullis-client'), 'x5t#S256': crypto.createHash('sha256').update(crypto.randomBytes(64)).digest('base64url') },
  es256: ecKey('portcullis-ec'),
  ps256: { ...makeSigningKey('portcullis-ps'), alg: 'PS256' },
  wrongRs256: makeSigningKey('portcullis-client'),
  wrongPs256: { ...makeSigningKey('portcullis-ps'), alg: 'PS256' },
};

let ports; let echo; let par; let plain;
/** Workers: good (auto, at `par`), wrongPar (at `par`), never and always (at `plain`), wrongToken (never, at `plain`). */
const w = {};

function vars(idp, key, extra = {}) {
  const v = clientVars(idp.issuer, {
    UPSTREAM: `http://127.0.0.1:${ports.echo}`,
    OIDC_SCOPES: 'openid profile email offline_access',
    PASS_ACCESS_TOKEN: 'authorization',
    SESSION_REFRESH_MARGIN: '1s',
    OIDC_TOKEN_AUTH_METHOD: 'private_key_jwt',
    OIDC_CLIENT_KEY: JSON.stringify(key),
    ...extra,
  });
  // No secret: the key is the client's only credential.
  delete v.OIDC_CLIENT_SECRET;
  return v;
}

before(async () => {
  ports = { par: await freePort(), plain: await freePort(), echo: await freePort() };
  for (const name of ['good', 'wrongPar', 'never', 'always', 'wrongToken']) ports[name] = await freePort();
  const origin = (name) => `http://127.0.0.1:${ports[name]}`;
  echo = http.createServer((req, res) => {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ url: req.url, authorization: req.headers.authorization ?? null }));
  });
  await new Promise((r) => echo.listen(ports.echo, '127.0.0.1', r));
  [par, plain] = await Promise.all([
    startIdp({
      port: ports.par,
      workerOrigins: [origin('good'), origin('wrongPar')],
      tokenAuthMethod: 'private_key_jwt',
      clientJwks: [KEYS.rs256],
      par: { required: true },
      accessTokenTTL: ACCESS_TOKEN_TTL,
    }),
    startIdp({
      port: ports.plain,
      workerOrigins: [origin('never'), origin('always'), origin('wrongToken')],
      tokenAuthMethod: 'private_key_jwt',
      clientJwks: [KEYS.es256, KEYS.ps256],
      par: { required: false },
      accessTokenTTL: ACCESS_TOKEN_TTL,
    }),
  ]);
  const started = await Promise.all([
    startWorker({ port: ports.good, vars: vars(par, KEYS.rs256) }),
    startWorker({ port: ports.wrongPar, vars: vars(par, KEYS.wrongRs256) }),
    startWorker({ port: ports.never, vars: vars(plain, KEYS.es256, { OIDC_PUSHED_AUTHORIZATION: 'never' }) }),
    startWorker({ port: ports.always, vars: vars(plain, KEYS.ps256, { OIDC_PUSHED_AUTHORIZATION: 'always' }) }),
    // Another key than the one `plain` has: refused at the token endpoint, after the sign-in.
    startWorker({ port: ports.wrongToken, vars: vars(plain, KEYS.wrongPs256, { OIDC_PUSHED_AUTHORIZATION: 'never' }) }),
  ]);
  [w.good, w.wrongPar, w.never, w.always, w.wrongToken] = started;
});

after(async () => {
  await Promise.all(Object.values(w).map((x) => x?.stop()));
  await Promise.all([par?.close(), plain?.close()]);
  echo?.close();
});

function sessionCookies(agent, worker) {
  return [...agent.jar(worker.origin).keys()].filter((n) => n.startsWith('portcullis') && !n.includes('-tx-'));
}

/** The provider's requests from index `from` on, at oidc-provider route `route`. */
function at(idp, route, from = 0) {
  return idp.requests.slice(from).filter((r) => r.route === route);
}

/** The worker's answer to a fresh browser's sign-in: the authorization URL it is sent to. */
async function startLogin(agent, worker, idp) {
  const res = await agent.request(`${worker.origin}/auth/login?return_to=%2Fprivate%2Fecho`);
  assert.equal(res.status, 302, `login: ${res.status} ${res.text_.slice(0, 300)}`);
  const authz = new URL(res.headers.get('location'));
  assert.equal(`${authz.origin}${authz.pathname}`, `${idp.issuer}/auth`, 'to the authorization endpoint');
  return authz;
}

/** Checks the client assertion of a provider request: its header, claims and method. */
function assertClientAssertion(entry, idp, key, what) {
  assert.equal(entry.authMethod, 'private_key_jwt', `${what}: authenticated with private_key_jwt`);
  assert.ok(entry.body.includes('client_assertion') && entry.body.includes('client_assertion_type'), `${what}: body ${entry.body}`);
  assert.ok(!entry.body.includes('client_secret'), `${what}: no client_secret`);
  assert.ok(entry.body.includes('client_id'), `${what}: client_id`);
  const { header, payload } = entry.assertion;
  assert.equal(header.alg, key.alg, `${what}: alg`);
  assert.equal(header.typ, 'JWT', `${what}: typ`);
  assert.equal(header.kid, key.kid, `${what}: kid`);
  assert.equal(header['x5t#S256'], key['x5t#S256'], `${what}: x5t#S256 as in the JWK (or absent)`);
  assert.equal(payload.iss, DEMO_CLIENT_ID, `${what}: iss`);
  assert.equal(payload.sub, DEMO_CLIENT_ID, `${what}: sub`);
  assert.equal(payload.aud, `${idp.issuer}/token`, `${what}: aud is the token endpoint`);
  assert.ok(typeof payload.jti === 'string' && payload.jti.length >= 16, `${what}: jti`);
  assert.ok(Number.isInteger(payload.iat) && Math.abs(payload.iat - Date.now() / 1000) < 60, `${what}: iat`);
  assert.equal(payload.nbf, payload.iat, `${what}: nbf`);
  assert.equal(payload.exp, payload.iat + 300, `${what}: exp`);
  return payload.jti;
}

test('private_key_jwt with PAR required: sign-in, refresh, every call authenticated by the key', async () => {
  const from = par.requests.length;
  const agent = new Agent();
  const authz = await startLogin(agent, w.good, par);
  assert.deepEqual([...authz.searchParams.keys()].sort(), ['client_id', 'request_uri'], `only client_id and request_uri: ${authz}`);
  assert.equal(authz.searchParams.get('client_id'), DEMO_CLIENT_ID);
  assert.ok(authz.searchParams.get('request_uri').startsWith(PAR_URN), authz.searchParams.get('request_uri'));

  // The pushed request: authenticated with the key, carrying the authorization parameters.
  const pushed = at(par, 'pushed_authorization_request', from);
  assert.equal(pushed.length, 1, 'one pushed request');
  assert.equal(pushed[0].status, 201);
  const jtis = [assertClientAssertion(pushed[0], par, KEYS.rs256, 'PAR')];
  for (const p of ['response_type', 'redirect_uri', 'scope', 'state', 'nonce', 'code_challenge', 'code_challenge_method']) {
    assert.ok(pushed[0].body.includes(p), `PAR carries ${p}: ${pushed[0].body}`);
  }

  const [res, url] = await agent.signIn(authz.toString());
  assert.equal(res.status, 200, `sign-in ended at ${url}: ${res.text_.slice(0, 300)}`);
  assert.equal(url, `${w.good.origin}/private/echo`);
  const first = JSON.parse(res.text_);
  assert.match(first.authorization, /^Bearer .+/);
  const authzCalls = at(par, 'authorization', from);
  assert.equal(authzCalls.length, 1);
  assert.deepEqual(authzCalls[0].query.sort(), ['client_id', 'request_uri'], 'the provider saw the same');

  const codeCalls = at(par, 'token', from);
  assert.equal(codeCalls.length, 1);
  assert.equal(codeCalls[0].grantType, 'authorization_code');
  assert.equal(codeCalls[0].status, 200);
  jtis.push(assertClientAssertion(codeCalls[0], par, KEYS.rs256, 'code exchange'));

  // The access token expires: the worker refreshes it, authenticated by the key again.
  await untilRefreshDue();
  const after1 = await agent.request(`${w.good.origin}/private/echo`);
  assert.equal(after1.status, 200, `after the refresh: ${after1.text_.slice(0, 300)}`);
  const refreshed = JSON.parse(after1.text_);
  assert.match(refreshed.authorization, /^Bearer .+/);
  assert.notEqual(refreshed.authorization, first.authorization, 'a new access token');
  const refreshes = at(par, 'token', from).filter((r) => r.grantType === 'refresh_token');
  assert.equal(refreshes.length, 1, 'one refresh');
  assert.equal(refreshes[0].status, 200);
  jtis.push(assertClientAssertion(refreshes[0], par, KEYS.rs256, 'refresh'));
  assert.equal(new Set(jtis).size, jtis.length, 'a new jti every time');

  const me = await agent.request(`${w.good.origin}/auth/userinfo`, { html: false });
  assert.equal(me.status, 200);
  assert.equal(JSON.parse(me.text_).sub, 'alice');
  assert.equal(at(par, 'token', from).filter((r) => r.status !== 200).length, 0, 'no refused token call');
});

test('the wrong key: refused at the PAR endpoint, an error page and no session', async () => {
  const from = par.requests.length;
  const agent = new Agent();
  const [res, url] = await agent.follow(`${w.wrongPar.origin}/private/echo`);
  assert.equal(new URL(url).origin, w.wrongPar.origin, `stays at the worker: ${url}`);
  assert.ok(res.status >= 400, `an error, not ${res.status} at ${url}`);
  assert.match(res.headers.get('content-type') ?? '', /^text\/html/);
  const pushed = at(par, 'pushed_authorization_request', from);
  assert.equal(pushed.length, 1, 'the worker pushed once');
  assert.equal(pushed[0].status, 401);
  assert.equal(pushed[0].error, 'invalid_client');
  assert.equal(pushed[0].assertion.header.kid, KEYS.rs256.kid, 'a registered kid, the wrong signature');
  assert.equal(at(par, 'authorization', from).length, 0, 'the browser never reached the provider');
  assert.deepEqual(sessionCookies(agent, w.wrongPar), []);
  assert.equal((await agent.request(`${w.wrongPar.origin}/auth/userinfo`, { html: false })).status, 401);
});

test('the wrong key without PAR: the code is refused at the token endpoint, no session', async () => {
  const from = plain.requests.length;
  const agent = new Agent();
  const [res, url] = await agent.signIn(`${w.wrongToken.origin}/private/echo`);
  assert.equal(new URL(url).origin, w.wrongToken.origin, `back at the worker: ${url}`);
  assert.ok(res.status >= 400, `an error, not ${res.status} at ${url}`);
  assert.match(res.headers.get('content-type') ?? '', /^text\/html/);
  assert.equal(at(plain, 'pushed_authorization_request', from).length, 0);
  const tokens = at(plain, 'token', from);
  assert.equal(tokens.length, 1);
  assert.equal(tokens[0].grantType, 'authorization_code');
  assert.equal(tokens[0].status, 401);
  assert.equal(tokens[0].error, 'invalid_client');
  assert.deepEqual(sessionCookies(agent, w.wrongToken), []);
  assert.equal((await agent.request(`${w.wrongToken.origin}/auth/userinfo`, { html: false })).status, 401);
});

test('OIDC_PUSHED_AUTHORIZATION=never: a plain authorization request, the key at the token endpoint', async () => {
  const from = plain.requests.length;
  const agent = new Agent();
  const authz = await startLogin(agent, w.never, plain);
  const q = authz.searchParams;
  assert.equal(q.get('request_uri'), null, 'no request_uri');
  assert.equal(q.get('response_type'), 'code');
  assert.equal(q.get('client_id'), DEMO_CLIENT_ID);
  assert.equal(q.get('redirect_uri'), `${w.never.origin}/auth/callback`);
  assert.match(q.get('scope'), /\bopenid\b/);
  assert.equal(q.get('code_challenge_method'), 'S256');
  assert.equal(q.get('code_challenge').length, 43);
  assert.ok(q.get('state').length >= 43 && q.get('nonce').length >= 43);

  const [res, url] = await agent.signIn(authz.toString());
  assert.equal(res.status, 200, `sign-in ended at ${url}: ${res.text_.slice(0, 300)}`);
  assert.match(JSON.parse(res.text_).authorization, /^Bearer .+/);
  assert.equal(at(plain, 'pushed_authorization_request', from).length, 0, 'nothing pushed');
  const tokens = at(plain, 'token', from);
  assert.equal(tokens.length, 1);
  assertClientAssertion(tokens[0], plain, KEYS.es256, 'code exchange (ES256)');
});

test('OIDC_PUSHED_AUTHORIZATION=always: PAR where the provider offers it without requiring it', async () => {
  const from = plain.requests.length;
  const agent = new Agent();
  const authz = await startLogin(agent, w.always, plain);
  assert.deepEqual([...authz.searchParams.keys()].sort(), ['client_id', 'request_uri'], `only client_id and request_uri: ${authz}`);
  const pushed = at(plain, 'pushed_authorization_request', from);
  assert.equal(pushed.length, 1);
  assert.equal(pushed[0].status, 201);
  assertClientAssertion(pushed[0], plain, KEYS.ps256, 'PAR (PS256)');

  const [res, url] = await agent.signIn(authz.toString());
  assert.equal(res.status, 200, `sign-in ended at ${url}: ${res.text_.slice(0, 300)}`);
  assert.match(JSON.parse(res.text_).authorization, /^Bearer .+/);
  const tokens = at(plain, 'token', from);
  assert.equal(tokens.length, 1);
  assertClientAssertion(tokens[0], plain, KEYS.ps256, 'code exchange (PS256)');
});
