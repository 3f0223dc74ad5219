// Microsoft Entra ID as a multi-tenant app (the `organizations` authority, whose discovery
// names the issuer `.../{tenantid}/v2.0`), with a tenant allow-list, tenant rules and the group
// overage read from Microsoft Graph. A fake Entra and a fake Graph on loopback, two workers
// (one tenant allowed; any tenant), in front of an origin that echoes what it receives.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { startFakeEntra, startFakeGraph, DIRECTORY_ROLE_ID } from '../support/entra.mjs';
import { startWorker, freePort, Agent, TEST_COOKIE_SECRET } from '../support/harness.mjs';

const TENANT_A = '3f2a9c1e-5b7d-4e8f-9a0b-1c2d3e4f5a6b';
const TENANT_B = '8d7c6b5a-4f3e-4d2c-8b1a-0f9e8d7c6b5a';
/** Allowed too (the list form), but nobody signs in from it. */
const TENANT_C = 'c1c1c1c1-2d2d-4e3e-8f4f-5a5a5a5a5a5a';
const CLIENT = { id: '0c7e2b4a-91d3-4f6e-a8b5-2d1c0e9f7a63', secret: 'Qx8~e2e.entra_secret-value' };
const SCOPES = 'openid profile email offline_access';
/** The overage user's groups: five, read in pages of two (with a directory role among them). */
const OVERAGE_GROUPS = [
  'a1000000-0000-4000-8000-000000000001',
  'a2000000-0000-4000-8000-000000000002',
  'a3000000-0000-4000-8000-000000000003',
  'a4000000-0000-4000-8000-000000000004',
  'a5000000-0000-4000-8000-000000000005',
];
/** The group the /g/* rule asks for: on Graph's first page, so a partial read would pass it. */
const RULE_GROUP = OVERAGE_GROUPS[0];

const USERS = {
  alice: { tenant: TENANT_A, oid: '0a11ce00-0000-4000-8000-00000000000a', name: 'Alice A', groups: ['b0000000-0000-4000-8000-0000000000b0'] },
  bob: { tenant: TENANT_B, oid: '0b0b0000-0000-4000-8000-00000000000b', name: 'Bob B', groups: [] },
  carol: { tenant: TENANT_A, oid: '0ca401c0-0000-4000-8000-00000000000c', name: 'Carol Overage', groups: OVERAGE_GROUPS, overage: true },
  // A token whose iss names another tenant than its tid, both ways round.
  eve: { tenant: TENANT_B, oid: '0e0e0000-0000-4000-8000-00000000000e', name: 'Eve', issTenant: TENANT_A },
  mallory: { tenant: TENANT_A, oid: '0a110000-0000-4000-8000-0000000000a1', name: 'Mallory', issTenant: TENANT_B },
};

let ports; let entra; let graph; let echo; let strict; let open;

function workerVars(extra) {
  return {
    OIDC_ISSUER: `http://127.0.0.1:${ports.entra}/organizations/v2.0`,
    OIDC_CLIENT_ID: CLIENT.id,
    OIDC_CLIENT_SECRET: CLIENT.secret,
    COOKIE_SECRET: TEST_COOKIE_SECRET,
    OIDC_PROVIDER_KIND: 'entra',
    OIDC_GRAPH_URL: `http://127.0.0.1:${ports.graph}`,
    OIDC_SCOPES: SCOPES,
    UPSTREAM: `http://127.0.0.1:${ports.echo}`,
    ...extra,
  };
}

before(async () => {
  ports = { entra: await freePort(), graph: await freePort(), echo: await freePort(), strict: await freePort(), open: await freePort() };
  echo = http.createServer((req, res) => {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ url: req.url, headers: req.headers }));
  });
  await new Promise((r) => echo.listen(ports.echo, '127.0.0.1', r));
  graph = await startFakeGraph({ port: ports.graph, pageSize: 2 });
  entra = await startFakeEntra({
    port: ports.entra,
    clientId: CLIENT.id,
    clientSecret: CLIENT.secret,
    tenants: [TENANT_A, TENANT_B, TENANT_C],
    graph,
    redirectUris: [ports.strict, ports.open].map((p) => `http://127.0.0.1:${p}/auth/callback`),
    // The overage pointer names a path on the fake Graph, so a call to it would be seen there.
    claimSourcesBase: graph.url,
  });
  [strict, open] = await Promise.all([
    startWorker({
      port: ports.strict,
      vars: workerVars({
        OIDC_ALLOWED_TENANTS: `${TENANT_A}, ${TENANT_C}`,
        ACCESS_RULES: `/t/* tenant:${TENANT_A}; /g/* group:${RULE_GROUP}`,
      }),
    }),
    startWorker({
      port: ports.open,
      vars: workerVars({
        OIDC_ALLOWED_TENANTS: '*',
        ACCESS_RULES: `/t/* tenant:${TENANT_A}`,
      }),
    }),
  ]);
});

after(async () => {
  await Promise.all([strict?.stop(), open?.stop()]);
  await Promise.all([entra?.close(), graph?.close()]);
  echo?.close();
});

const TOKEN_PATH = '/organizations/oauth2/v2.0/token';
const tokenCalls = () => entra.requests.filter((r) => r.path === TOKEN_PATH).length;
const userHeader = (u) => `${u.tenant}/${u.oid}`;
const groupList = (h) => (h ?? '').split(',').map((s) => s.trim()).filter(Boolean).sort();

/** Session cookies (`__Host-portcullis...` or `portcullis...`), not login transactions. */
function sessionCookies(agent, worker) {
  return [...agent.jar(worker.origin).keys()]
    .map((n) => n.replace(/^__Host-/, ''))
    .filter((n) => n.startsWith('portcullis') && !n.includes('-tx-') && n !== 'portcullis-logout');
}

/** Signs `user` in at `worker` (the fake Entra answers at once); the final response and URL. */
async function signIn(worker, user, returnTo = '/whoami') {
  entra.signInAs(user);
  const agent = new Agent();
  const [res, at] = await agent.follow(`${worker.origin}/auth/login?return_to=${encodeURIComponent(returnTo)}`);
  return { agent, res, at };
}

/** Signs in and expects the origin's echo; the agent and the headers the origin got. */
async function signInOk(worker, user, returnTo = '/whoami') {
  const { agent, res, at } = await signIn(worker, user, returnTo);
  assert.equal(res.status, 200, `sign-in ended at ${at}: ${res.status} ${res.text_.slice(0, 400)}`);
  return { agent, headers: JSON.parse(res.text_).headers };
}

/** A sign-in that the worker refuses after the code exchange: `status`, an HTML page, no session. */
async function expectRefused(worker, user, status) {
  const calls = tokenCalls();
  const { agent, res, at } = await signIn(worker, user);
  assert.equal(tokenCalls(), calls + 1, 'the code was redeemed (an ID token was issued)');
  assert.equal(res.status, status, `ended at ${at}: ${res.status} ${res.text_.slice(0, 400)}`);
  assert.match(res.headers.get('content-type') ?? '', /^text\/html/);
  assert.deepEqual(sessionCookies(agent, worker), [], 'no session cookie');
  assert.equal((await agent.request(`${worker.origin}/auth/userinfo`, { html: false })).status, 401);
  return res;
}

async function seen(agent, worker, path) {
  const res = await agent.request(`${worker.origin}${path}`);
  assert.equal(res.status, 200, `${path}: ${res.status} ${res.text_.slice(0, 300)}`);
  return JSON.parse(res.text_).headers;
}

test('a user of an allowed tenant signs in through the organizations authority; the user is tid/oid', async () => {
  const before = { entra: entra.requests.length, graph: graph.requests.length };
  const { agent, headers } = await signInOk(strict, USERS.alice);
  assert.equal(headers['x-auth-request-user'], userHeader(USERS.alice));
  assert.ok(!headers['x-auth-request-user'].includes(entra.current.sub), 'not the pairwise sub');
  assert.deepEqual(groupList(headers['x-auth-request-groups']), USERS.alice.groups, 'groups from the ID token');
  assert.equal(graph.requests.length, before.graph, 'no Graph call without an overage');

  const authz = entra.requests.slice(before.entra).find((r) => r.path === '/organizations/oauth2/v2.0/authorize');
  assert.ok(authz, 'the organizations authorization endpoint');
  assert.equal(authz.query.client_id, CLIENT.id);
  assert.equal(authz.query.code_challenge_method, 'S256');
  assert.deepEqual(authz.query.scope.split(' ').sort(), SCOPES.split(' ').sort());
  assert.equal(authz.query.redirect_uri, `${strict.origin}/auth/callback`);

  const me = await agent.request(`${strict.origin}/auth/userinfo`, { html: false });
  assert.equal(me.status, 200);
  assert.equal(JSON.parse(me.text_).tid, TENANT_A);
});

test('a user of a tenant not in OIDC_ALLOWED_TENANTS gets a 403 sign-in error and no session', async () => {
  await expectRefused(strict, USERS.bob, 403);
});

test('OIDC_ALLOWED_TENANTS = * lets any tenant sign in', async () => {
  const { headers } = await signInOk(open, USERS.bob);
  assert.equal(headers['x-auth-request-user'], userHeader(USERS.bob));
});

test('an ID token whose iss names another tenant than its tid is refused', async () => {
  // iss says tenant A (allowed everywhere), tid says B.
  await expectRefused(open, USERS.eve, 401);
  // tid says tenant A (allowed here), iss says B.
  await expectRefused(strict, USERS.mallory, 401);
});

test('tenant: rules', async () => {
  const a = (await signInOk(strict, USERS.alice, '/t/x')).headers;
  assert.equal(a['x-auth-request-user'], userHeader(USERS.alice));

  const alice = (await signInOk(open, USERS.alice, '/t/x')).agent;
  assert.equal((await alice.request(`${open.origin}/t/y`)).status, 200);

  const { agent: bob, res, at } = await signIn(open, USERS.bob, '/t/x');
  assert.equal(res.status, 403, `bob ended at ${at}`);
  assert.ok(sessionCookies(bob, open).length > 0, 'bob is signed in, just not allowed there');
  assert.equal((await bob.request(`${open.origin}/elsewhere`)).status, 200);
});

test('group overage: the groups come from Microsoft Graph across pages, never from _claim_sources', async () => {
  const before = { graph: graph.requests.length, entra: entra.requests.length };
  const { agent, headers } = await signInOk(strict, USERS.carol);
  assert.equal(headers['x-auth-request-user'], userHeader(USERS.carol));
  assert.deepEqual(groupList(headers['x-auth-request-groups']), [...OVERAGE_GROUPS].sort(), 'all five groups, not the directory role');
  assert.ok(!headers['x-auth-request-groups'].includes(DIRECTORY_ROLE_ID));

  const calls = graph.requests.slice(before.graph);
  assert.ok(calls.length >= 3, `all pages read (${calls.length} Graph requests)`);
  for (const c of calls) {
    assert.equal(c.method, 'GET');
    assert.ok(c.path.startsWith('/v1.0/me/transitiveMemberOf'), `only the membership listing: ${c.method} ${c.path}`);
    assert.match(c.headers.authorization ?? '', /^Bearer \S+$/);
    assert.equal(c.status, 200, `${c.path}?${new URLSearchParams(c.query)}`);
  }
  assert.ok(calls.some((c) => c.query.$skiptoken), 'the nextLink was followed');
  assert.equal(graph.requests.filter((c) => c.path.includes('getMemberObjects')).length, 0, 'the _claim_sources endpoint was not called');
  // At Entra, only its protocol endpoints (the organizations authority, or a tenant's).
  const known = /^\/(organizations|[0-9a-f-]{36})\/(v2\.0\/\.well-known\/openid-configuration|discovery\/v2\.0\/keys|oauth2\/v2\.0\/(authorize|token))$/;
  for (const r of entra.requests.slice(before.entra)) assert.match(r.path, known);

  assert.equal((await agent.request(`${strict.origin}/g/x`)).status, 200, 'group rule passes');
  const me = JSON.parse((await agent.request(`${strict.origin}/auth/userinfo`, { html: false })).text_);
  assert.deepEqual([...(me.groups ?? [])].sort(), [...OVERAGE_GROUPS].sort());

  // Someone without the group: refused there.
  const alice = (await signInOk(strict, USERS.alice)).agent;
  assert.equal((await alice.request(`${strict.origin}/g/x`)).status, 403);
});

test('group overage with Graph refusing: signed in without groups; a group rule says the groups could not be read', async () => {
  graph.refuse('forbidden');
  try {
    const before = graph.requests.length;
    const { agent, headers } = await signInOk(strict, USERS.carol);
    assert.equal(headers['x-auth-request-user'], userHeader(USERS.carol));
    assert.deepEqual(groupList(headers['x-auth-request-groups']), [], 'no groups');
    assert.ok(graph.requests.slice(before).some((c) => c.status === 403), 'Graph was asked and refused');

    const denied = await agent.request(`${strict.origin}/g/x`);
    assert.equal(denied.status, 403);
    assert.match(denied.headers.get('content-type') ?? '', /^text\/html/);
    assert.match(denied.text_, /groups could not be read/i);
    assert.equal((await agent.request(`${strict.origin}/whoami`)).status, 200, 'no rule applies there');
  } finally {
    graph.refuse(null);
  }
});

test('group overage with Graph failing after the first page: the partial list is never used', async () => {
  // The first page holds RULE_GROUP; the second fails. Either no session, or one without groups.
  graph.refuse('unavailable', { fromPage: 2 });
  try {
    const before = graph.requests.length;
    const { agent, res } = await signIn(strict, USERS.carol);
    assert.ok(graph.requests.slice(before).some((c) => c.status === 200), 'the first page was read');
    assert.ok(graph.requests.slice(before).some((c) => c.status === 503), 'a later page failed');
    if (res.status === 200) {
      const headers = JSON.parse(res.text_).headers;
      assert.deepEqual(groupList(headers['x-auth-request-groups']), [], 'not the first page\'s groups');
      const denied = await agent.request(`${strict.origin}/g/x`);
      assert.equal(denied.status, 403);
      assert.match(denied.text_, /groups could not be read/i);
    } else {
      assert.ok(res.status >= 400, `${res.status}`);
      assert.deepEqual(sessionCookies(agent, strict), []);
      assert.notEqual((await agent.request(`${strict.origin}/g/x`, { html: false })).status, 200);
    }
  } finally {
    graph.refuse(null);
  }
});

test('nothing ever asked for the overage claim source, and Graph was only asked for memberships', () => {
  assert.ok(graph.requests.length > 0);
  for (const c of graph.requests) assert.ok(c.path.startsWith('/v1.0/me/transitiveMemberOf'), `${c.method} ${c.path}`);
});
