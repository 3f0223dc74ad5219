// Several identity providers behind one gate. Two oidc-provider instances (`one`, `two`, 4-second
// access tokens) kept apart, a fake GitHub (OAuth 2.0 and its REST API) and a fake Google
// (hd, iss spellings, offline access), all on loopback, in front of an origin that echoes
// what it receives.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { startIdp } from '../support/idp.mjs';
import { startFakeGitHub } from '../support/github.mjs';
import { startFakeGoogle } from '../support/google.mjs';
import { startWorker, freePort, Agent, TEST_COOKIE_SECRET } from '../support/harness.mjs';

const ACCESS_TOKEN_TTL = 4;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
/** Past an access token's expiry (less the 1 s margin), so the next request refreshes. */
const untilRefreshDue = () => sleep((ACCESS_TOKEN_TTL - 1) * 1000 + 400);

const CLIENTS = {
  one: { id: 'client-one', secret: 'secret-one' },
  two: { id: 'client-two', secret: 'secret-two' },
  github: { id: 'Iv1.portcullis-e2e', secret: 'github-secret' },
  google: { id: '1234-e2e.apps.googleusercontent.example', secret: 'google-secret' },
};
// Display names on the chooser; one needs escaping.
const NAMES = { one: 'Provider One', two: 'Two & <Partners>', github: 'GitHub', google: 'Google' };
const GITHUB_SCOPES = 'read:user user:email read:org';

let ports; let one; let two; let github; let google; let echo; let worker; let defaultWorker;
/** grant_type of every successful token request at each oidc-provider instance. */
const grants = { one: [], two: [] };

/** `{ ISSUER: x }` as `ID_OIDC_ISSUER = x` for provider `id`. */
function providerVars(id, fields) {
  return Object.fromEntries(Object.entries(fields).map(([k, v]) => [`${id.toUpperCase()}_OIDC_${k}`, v]));
}

function oidcProvider(id, idp) {
  return providerVars(id, {
    ISSUER: idp.issuer,
    CLIENT_ID: CLIENTS[id].id,
    CLIENT_SECRET: CLIENTS[id].secret,
    SCOPES: 'openid profile email offline_access',
    PROVIDER_NAME: NAMES[id],
  });
}

function mainVars() {
  return {
    PROVIDERS: 'one two github google',
    COOKIE_SECRET: TEST_COOKIE_SECRET,
    UPSTREAM: `http://127.0.0.1:${ports.echo}`,
    PASS_ACCESS_TOKEN: 'authorization',
    SESSION_REFRESH_MARGIN: '1s',
    ACCESS_RULES: [
      '/two-only/* provider:two',
      '/org/* github-org:acme',
      '/team/* github-team:acme/admins',
      '/corp/* hd:corp.example',
    ].join('; '),
    ...oidcProvider('one', one),
    ...oidcProvider('two', two),
    // The id `github` implies PROVIDER_KIND github.
    ...providerVars('github', {
      ISSUER: github.url,
      CLIENT_ID: CLIENTS.github.id,
      CLIENT_SECRET: CLIENTS.github.secret,
      SCOPES: GITHUB_SCOPES,
      PROVIDER_NAME: NAMES.github,
    }),
    ...providerVars('google', {
      ISSUER: google.issuer,
      CLIENT_ID: CLIENTS.google.id,
      CLIENT_SECRET: CLIENTS.google.secret,
      SCOPES: 'openid email profile',
      PROVIDER_NAME: NAMES.google,
      PROVIDER_KIND: 'google',
      AUTH_PARAMS: 'hd=corp.example&login_hint=worker%40corp.example',
    }),
  };
}

before(async () => {
  ports = { one: await freePort(), two: await freePort(), github: await freePort(), google: await freePort(), echo: await freePort(), worker: await freePort(), default: await freePort() };
  echo = http.createServer((req, res) => {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ url: req.url, headers: req.headers }));
  });
  await new Promise((r) => echo.listen(ports.echo, '127.0.0.1', r));
  const workerOrigins = [ports.worker, ports.default].map((p) => `http://127.0.0.1:${p}`);
  [one, two, github, google] = await Promise.all([
    startIdp({ port: ports.one, workerOrigins, clientId: CLIENTS.one.id, clientSecret: CLIENTS.one.secret, accessTokenTTL: ACCESS_TOKEN_TTL, callbackIds: ['one'] }),
    startIdp({ port: ports.two, workerOrigins, clientId: CLIENTS.two.id, clientSecret: CLIENTS.two.secret, accessTokenTTL: ACCESS_TOKEN_TTL, callbackIds: ['two'] }),
    startFakeGitHub({ port: ports.github, clientId: CLIENTS.github.id, clientSecret: CLIENTS.github.secret }),
    startFakeGoogle({ port: ports.google, clientId: CLIENTS.google.id, clientSecret: CLIENTS.google.secret }),
  ]);
  one.provider.on('grant.success', (ctx) => grants.one.push(ctx.oidc.params.grant_type));
  two.provider.on('grant.success', (ctx) => grants.two.push(ctx.oidc.params.grant_type));
  [worker, defaultWorker] = await Promise.all([
    startWorker({ port: ports.worker, vars: mainVars() }),
    startWorker({
      port: ports.default,
      vars: {
        PROVIDERS: 'one two',
        LOGIN_PROVIDER_DEFAULT: 'two',
        COOKIE_SECRET: TEST_COOKIE_SECRET,
        UPSTREAM: `http://127.0.0.1:${ports.echo}`,
        ...oidcProvider('one', one),
        ...oidcProvider('two', two),
      },
    }),
  ]);
});

after(async () => {
  await Promise.all([worker?.stop(), defaultWorker?.stop()]);
  await Promise.all([one?.close(), two?.close(), github?.close(), google?.close()]);
  echo?.close();
});

const url = (p) => `${worker.origin}${p}`;
const loginUrl = (provider, returnTo = '/whoami') => url(`/auth/login?provider=${provider}&return_to=${encodeURIComponent(returnTo)}`);
const refreshes = (id) => grants[id].filter((g) => g === 'refresh_token').length;

function sessionCookies(agent, origin = worker.origin) {
  return [...agent.jar(origin).keys()].filter((n) => n.startsWith('portcullis') && !n.includes('-tx-') && n !== 'portcullis-logout');
}

/** What the origin saw for `path`, as this agent. */
async function seen(agent, path = '/whoami', origin = worker.origin) {
  const res = await agent.request(`${origin}${path}`);
  assert.equal(res.status, 200, `${path}: ${res.status} ${res.text_.slice(0, 300)}`);
  return JSON.parse(res.text_).headers;
}

/** Through an oidc-provider instance's login and consent; answers the origin's echo. */
async function signInOidc(agent, provider, user = 'alice', returnTo = '/whoami') {
  const [res, at] = await agent.signIn(loginUrl(provider, returnTo), { user });
  assert.equal(res.status, 200, `sign-in at ${provider} ended at ${at}: ${res.text_.slice(0, 300)}`);
  return JSON.parse(res.text_).headers;
}

/** Through a fake (GitHub or Google) that signs in at once; the final response and its URL. */
function signInFake(agent, provider, returnTo = '/whoami') {
  return agent.follow(loginUrl(provider, returnTo));
}

async function signInFakeOk(agent, provider, returnTo = '/whoami') {
  const [res, at] = await signInFake(agent, provider, returnTo);
  assert.equal(res.status, 200, `sign-in at ${provider} ended at ${at}: ${res.status} ${res.text_.slice(0, 300)}`);
  return JSON.parse(res.text_).headers;
}

const unescapeHtml = (s) => s.replace(/&quot;/g, '"').replace(/&#x27;|&#39;/g, "'").replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&amp;/g, '&');
const attr = (tag, name) => {
  const m = new RegExp(`\\s${name}="([^"]*)"`, 'i').exec(tag);
  return m ? unescapeHtml(m[1]) : undefined;
};

/**
 * The chooser's choices: for each button inside a GET form, the label and the URL the browser
 * would go to (the form's action, its hidden fields, and the button's own name=value).
 */
function chooserChoices(html, pageUrl) {
  const choices = [];
  for (const [, formTag, inner] of html.matchAll(/<form(\s[^>]*)?>([\s\S]*?)<\/form>/gi)) {
    const method = (attr(formTag ?? '', 'method') ?? 'get').toLowerCase();
    if (method !== 'get') continue;
    const hidden = [...inner.matchAll(/<input(\s[^>]*)>/gi)].map(([, t]) => t).filter((t) => attr(t, 'type')?.toLowerCase() === 'hidden');
    for (const [, buttonTag, label] of inner.matchAll(/<button(\s[^>]*)?>([\s\S]*?)<\/button>/gi)) {
      const target = new URL(attr(formTag ?? '', 'action') ?? pageUrl, pageUrl);
      target.search = '';
      for (const t of hidden) target.searchParams.append(attr(t, 'name'), attr(t, 'value') ?? '');
      const name = attr(buttonTag ?? '', 'name');
      if (name) target.searchParams.append(name, attr(buttonTag, 'value') ?? '');
      choices.push({ label: unescapeHtml(label.replace(/<[^>]*>/g, '').trim()), url: target.toString() });
    }
  }
  return choices;
}

// ---------------------------------------------------------------- choosing a provider

test('with several providers and no default, sign-in starts at a chooser that keeps return_to', async () => {
  const agent = new Agent();
  const first = await agent.request(url('/docs/?tab=2'));
  assert.equal(first.status, 302);
  const [page, pageUrl] = await agent.follow(new URL(first.headers.get('location'), worker.origin).toString());
  assert.equal(page.status, 200);
  assert.match(page.headers.get('content-type'), /^text\/html/);
  assert.equal(new URL(pageUrl).pathname, '/auth/login');

  // One button per provider, labelled with its display name (perhaps within a longer text).
  const choices = chooserChoices(page.text_, pageUrl);
  assert.equal(choices.length, Object.keys(NAMES).length, page.text_);
  for (const name of Object.values(NAMES)) {
    assert.equal(choices.filter((c) => c.label.includes(name)).length, 1, `one button for ${name}`);
  }
  assert.ok(page.text_.includes('Two &amp; &lt;Partners&gt;'), 'the display name is escaped');
  assert.ok(!page.text_.includes('<Partners>'));
  for (const c of choices) {
    const target = new URL(c.url);
    assert.equal(target.origin + target.pathname, url('/auth/login'), c.label);
    assert.equal(target.searchParams.get('return_to'), '/docs/?tab=2', c.label);
  }

  // The choice of "Provider One" goes to provider one's authorization endpoint.
  const choice = choices.find((c) => c.label.includes(NAMES.one));
  const go = await agent.request(choice.url);
  assert.equal(go.status, 302);
  const authz = new URL(go.headers.get('location'));
  assert.equal(authz.origin, one.issuer);
  assert.equal(authz.searchParams.get('client_id'), CLIENTS.one.id);
});

test('the chooser escapes a hostile return_to', async () => {
  const evil = '/x"><script>alert(1)</script>';
  const res = await new Agent().request(url(`/auth/login?return_to=${encodeURIComponent(evil)}`));
  assert.equal(res.status, 200);
  assert.ok(!res.text_.includes('<script>alert'), res.text_);
});

test('?provider= goes straight to that provider; an unknown one is a 400', async () => {
  const endpoints = {
    one: [`${one.issuer}/auth`, CLIENTS.one.id],
    two: [`${two.issuer}/auth`, CLIENTS.two.id],
    github: [`${github.url}/login/oauth/authorize`, CLIENTS.github.id],
    google: [`${google.issuer}/o/oauth2/v2/auth`, CLIENTS.google.id],
  };
  for (const [id, [endpoint, clientId]] of Object.entries(endpoints)) {
    const res = await new Agent().request(loginUrl(id, '/x'));
    assert.equal(res.status, 302, id);
    const authz = new URL(res.headers.get('location'));
    assert.equal(authz.origin + authz.pathname, endpoint, id);
    assert.equal(authz.searchParams.get('client_id'), clientId, id);
    assert.equal(authz.searchParams.get('code_challenge_method'), 'S256', id);
    assert.ok(authz.searchParams.get('state')?.length >= 43, id);
  }
  for (const bad of ['nope', 'github.evil', '../one']) {
    const res = await new Agent().request(url(`/auth/login?provider=${encodeURIComponent(bad)}&return_to=/x`));
    assert.equal(res.status, 400, bad);
    assert.ok(!res.text_.includes('<script'), bad);
  }
});

test('LOGIN_PROVIDER_DEFAULT skips the chooser; ?provider= still picks another', async () => {
  const res = await new Agent().request(`${defaultWorker.origin}/auth/login?return_to=/x`);
  assert.equal(res.status, 302);
  assert.equal(new URL(res.headers.get('location')).origin, two.issuer);
  const other = await new Agent().request(`${defaultWorker.origin}/auth/login?provider=one&return_to=/x`);
  assert.equal(other.status, 302);
  assert.equal(new URL(other.headers.get('location')).origin, one.issuer);

  const agent = new Agent();
  const [signedIn, at] = await agent.signIn(`${defaultWorker.origin}/whoami`, { user: 'bob' });
  assert.equal(signedIn.status, 200, `ended at ${at}`);
  assert.equal(JSON.parse(signedIn.text_).headers['x-auth-request-user'], 'two:bob');
});

// ---------------------------------------------------------------- two OpenID providers, kept apart

test('the same subject at two providers is two people: one:alice is not two:alice', async () => {
  const agent = new Agent();
  const headers = await signInOidc(agent, 'one', 'alice');
  assert.equal(headers['x-auth-request-user'], 'one:alice');
  assert.equal(headers['x-auth-request-email'], 'alice@example.com');

  // provider:two refuses a session from one, and offers sign-in with two.
  const denied = await agent.request(url('/two-only/x'));
  assert.equal(denied.status, 403);
  const link = /href="(\/auth\/login\?[^"]*)"/g;
  const hrefs = [...denied.text_.matchAll(link)].map((m) => new URL(unescapeHtml(m[1]), worker.origin));
  const toTwo = hrefs.find((h) => h.searchParams.get('provider') === 'two');
  assert.ok(toTwo, `a link to /auth/login?provider=two in:\n${denied.text_}`);
  const api = await agent.request(url('/two-only/x'), { html: false });
  assert.equal(api.status, 403);
  assert.equal(JSON.parse(api.text_).error, 'forbidden');

  const [res, at] = await agent.signIn(toTwo.toString(), { user: 'alice' });
  assert.ok(res.status < 400, `sign-in with two ended at ${at}: ${res.status}`);
  const now = await seen(agent, '/two-only/x');
  assert.equal(now['x-auth-request-user'], 'two:alice');
});

test('a callback naming the other provider as its issuer is refused (mix-up)', async () => {
  const agent = new Agent();
  const [, callback] = await agent.signIn(loginUrl('one'), { stopAtCallback: true });
  assert.equal(new URL(callback).searchParams.get('iss'), one.issuer);
  const forged = new URL(callback);
  forged.searchParams.set('iss', two.issuer);
  const res = await agent.request(forged.toString());
  assert.equal(res.status, 400);
  assert.deepEqual(sessionCookies(agent), []);
});

test("an answer at another provider's redirect URI is refused before any token request (mix-up)", async () => {
  for (const path of ['/auth/callback/two', '/auth/callback']) {
    const agent = new Agent();
    const [, callback] = await agent.signIn(loginUrl('one'), { stopAtCallback: true });
    assert.equal(new URL(callback).pathname, '/auth/callback/one');
    const forged = new URL(callback);
    forged.pathname = path;
    const before = grants.two.length + grants.one.length;
    const res = await agent.request(forged.toString());
    assert.equal(res.status, 400, path);
    assert.match(res.text_, /redirect URI/);
    assert.equal(grants.two.length + grants.one.length, before, `${path}: a code was redeemed`);
    assert.deepEqual(sessionCookies(agent), []);
  }
});

test('each session refreshes at its own provider', async () => {
  const a = new Agent();
  const b = new Agent();
  const firstA = (await signInOidc(a, 'one')).authorization;
  const firstB = (await signInOidc(b, 'two')).authorization;
  assert.match(firstA, /^Bearer /);
  await untilRefreshDue();

  let before = { one: refreshes('one'), two: refreshes('two') };
  const nowA = await seen(a);
  assert.notEqual(nowA.authorization, firstA, 'a new access token from one');
  assert.equal(nowA['x-auth-request-user'], 'one:alice');
  assert.equal(refreshes('one'), before.one + 1, 'refreshed at one');
  assert.equal(refreshes('two'), before.two, 'not at two');

  before = { one: refreshes('one'), two: refreshes('two') };
  const nowB = await seen(b);
  assert.notEqual(nowB.authorization, firstB, 'a new access token from two');
  assert.equal(nowB['x-auth-request-user'], 'two:alice');
  assert.equal(refreshes('two'), before.two + 1, 'refreshed at two');
  assert.equal(refreshes('one'), before.one, 'not at one');
});

test('logout goes to the session\'s own provider', async () => {
  for (const [id, idp] of [['one', one], ['two', two]]) {
    const agent = new Agent();
    await signInOidc(agent, id);
    const res = await agent.request(url('/auth/logout'), { method: 'POST', headers: { origin: worker.origin } });
    assert.equal(res.status, 302, id);
    const end = new URL(res.headers.get('location'));
    assert.equal(end.origin, idp.issuer, id);
    assert.equal(end.searchParams.get('client_id'), CLIENTS[id].id, id);
    assert.equal(end.searchParams.get('post_logout_redirect_uri'), url('/auth/logged-out'), id);
    assert.deepEqual(sessionCookies(agent), [], id);
  }
});

// ---------------------------------------------------------------- GitHub

test('GitHub through the chooser: the numeric id and the primary verified email reach the origin', async () => {
  github.signInAs('octocat');
  const agent = new Agent();
  const [page, pageUrl] = await agent.follow(url('/auth/login?return_to=/whoami'));
  assert.equal(page.status, 200);
  const choice = chooserChoices(page.text_, pageUrl).find((c) => c.label.includes(NAMES.github));
  assert.ok(choice, page.text_);
  const before = github.requests.length;
  const [res, at] = await agent.follow(choice.url);
  assert.equal(res.status, 200, `ended at ${at}: ${res.text_.slice(0, 300)}`);
  const headers = JSON.parse(res.text_).headers;
  assert.equal(headers['x-auth-request-user'], 'github:583231');
  assert.equal(headers['x-auth-request-email'], 'octocat@github.example');

  const mine = github.requests.slice(before);
  const authz = mine.find((r) => r.path === '/login/oauth/authorize').query;
  assert.equal(authz.client_id, CLIENTS.github.id);
  assert.equal(authz.code_challenge_method, 'S256');
  assert.ok(authz.state.length >= 43);
  assert.deepEqual(authz.scope.split(/[\s,]+/).sort(), GITHUB_SCOPES.split(' ').sort());
  assert.equal(new URL(authz.redirect_uri).origin, worker.origin);
  const token = mine.find((r) => r.path === '/login/oauth/access_token');
  assert.equal(token.query.client_secret, undefined, 'the secret is not in the URL');
  assert.equal(token.query.code, undefined, 'the code is not in the URL');
  assert.ok(mine.some((r) => r.path === '/api/v3/user'), 'the user came from the API');
});

test('a renamed GitHub login is the same person (identity is the numeric id)', async () => {
  github.rename('octocat', 'octocat-renamed');
  try {
    github.signInAs('octocat-renamed');
    const headers = await signInFakeOk(new Agent(), 'github');
    assert.equal(headers['x-auth-request-user'], 'github:583231');
  } finally {
    github.rename('octocat-renamed', 'octocat');
    github.signInAs('octocat');
  }
});

test('GitHub: an unverified primary address is no email at all', async () => {
  github.signInAs('sneaky');
  try {
    const headers = await signInFakeOk(new Agent(), 'github');
    assert.equal(headers['x-auth-request-user'], 'github:1002');
    assert.notEqual(headers['x-auth-request-email'], 'victim@corp.example');
    assert.equal(headers['x-auth-request-email'], undefined, 'not the verified secondary address either');
  } finally {
    github.signInAs('octocat');
  }
});

test('github-org and github-team rules', async () => {
  const expect = { octocat: [200, 200], hubot: [200, 403], sneaky: [403, 403] };
  for (const [login, [org, team]] of Object.entries(expect)) {
    github.signInAs(login);
    const agent = new Agent();
    await signInFakeOk(agent, 'github');
    assert.equal((await agent.request(url('/org/x'))).status, org, `${login} /org`);
    assert.equal((await agent.request(url('/team/x'))).status, team, `${login} /team`);
  }
  github.signInAs('octocat');
  // Someone from another provider is no member of a GitHub organisation.
  const other = new Agent();
  await signInOidc(other, 'one');
  assert.equal((await other.request(url('/org/x'))).status, 403);
  assert.equal((await other.request(url('/team/x'))).status, 403);
});

test('an error in GitHub\'s 200 token answer is an error page, not a session', async () => {
  github.failNextToken({ error: 'bad_verification_code', error_description: 'The code passed is incorrect or expired.', error_uri: 'https://docs.github.com/apps/troubleshooting' });
  const agent = new Agent();
  const tokenCalls = github.requests.filter((r) => r.path === '/login/oauth/access_token').length;
  const [res, at] = await signInFake(agent, 'github');
  assert.equal(github.requests.filter((r) => r.path === '/login/oauth/access_token').length, tokenCalls + 1, 'the code reached the token endpoint');
  assert.ok(res.status === 502 || (res.status >= 400 && res.status < 500), `ended at ${at} with ${res.status}`);
  assert.match(res.headers.get('content-type'), /^text\/html/);
  assert.deepEqual(sessionCookies(agent), []);
  assert.equal((await agent.request(url('/auth/userinfo'), { html: false })).status, 401);
});

test('a form-encoded GitHub token answer works too', async () => {
  github.tokenFormat = 'form';
  github.signInAs('hubot');
  try {
    const headers = await signInFakeOk(new Agent(), 'github');
    assert.equal(headers['x-auth-request-user'], 'github:1001');
    assert.equal(headers['x-auth-request-email'], 'hubot@github.example');
  } finally {
    github.tokenFormat = 'json';
    github.signInAs('octocat');
  }
});

test('a GitHub token the API refuses signs no one in', async () => {
  // The worker reads the API right after the code exchange; a token the API calls bad is no session.
  const agent = new Agent();
  const [, callback] = await agent.signIn(loginUrl('github'), { stopAtCallback: true });
  assert.equal(new URL(callback).pathname, '/auth/callback/github');
  github.failNextToken({ access_token: 'gho_notissuedbythisfakeatallxxxxxxxxxx', token_type: 'bearer', scope: 'read:user,user:email,read:org' });
  const res = await agent.request(callback);
  assert.ok(res.status >= 400, `${res.status}`);
  assert.deepEqual(sessionCookies(agent), []);
});

test('every GitHub API request carried a User-Agent', () => {
  assert.ok(github.requests.some((r) => r.path.startsWith('/api/v3/')), 'the API was called');
  assert.equal(github.missingUserAgent, 0);
});

// ---------------------------------------------------------------- Google

test('hd:corp.example admits the Workspace account only, not a matching email without hd', async () => {
  try {
    google.signInAs('worker');
    const ok = new Agent();
    const headers = await signInFakeOk(ok, 'google', '/corp/x');
    assert.equal(headers['x-auth-request-user'], 'google:1098765');
    assert.equal(headers['x-auth-request-email'], 'worker@corp.example');

    for (const user of ['spoof', 'consumer']) {
      google.signInAs(user);
      const agent = new Agent();
      const [res, at] = await signInFake(agent, 'google', '/corp/x');
      assert.equal(res.status, 403, `${user} ended at ${at}`);
      assert.ok(sessionCookies(agent).length > 0, `${user} is signed in, just not allowed`);
      assert.equal((await agent.request(url('/whoami'))).status, 200, `${user} passes where no rule applies`);
    }
  } finally {
    google.signInAs('worker');
  }
});

test('Google\'s authorization request: offline access with consent, AUTH_PARAMS, our state, nonce and PKCE', async () => {
  const agent = new Agent();
  const start = await agent.request(loginUrl('google'));
  assert.equal(start.status, 302);
  const sent = new URL(start.headers.get('location')).searchParams;
  const before = google.requests.length;
  const [res] = await agent.follow(new URL(start.headers.get('location')).toString());
  assert.equal(res.status, 200);
  const q = google.requests.slice(before).find((r) => r.path === '/o/oauth2/v2/auth').query;
  assert.equal(q.access_type, 'offline');
  assert.equal(q.prompt, 'consent');
  assert.equal(q.login_hint, 'worker@corp.example');
  assert.equal(q.hd, 'corp.example');
  assert.equal(q.client_id, CLIENTS.google.id);
  assert.equal(q.response_type, 'code');
  assert.equal(q.code_challenge_method, 'S256');
  assert.equal(q.state, sent.get('state'));
  assert.ok(q.state.length >= 43 && q.nonce.length >= 43);
  assert.deepEqual(q.scope.split(' ').sort(), ['email', 'openid', 'profile']);
});

test('Google\'s iss with or without the scheme signs in; any other iss is refused', async () => {
  const bare = google.issuer.replace(/^http:\/\//, '');
  try {
    for (const spelling of ['url', 'bare']) {
      google.issSpelling = spelling;
      const headers = await signInFakeOk(new Agent(), 'google');
      assert.equal(headers['x-auth-request-user'], 'google:1098765', spelling);
    }
    for (const spelling of [`https://${bare}`, `${google.issuer}/`, 'accounts.google.com', `${bare}.evil.example`]) {
      google.issSpelling = spelling;
      const agent = new Agent();
      const tokenCalls = google.requests.filter((r) => r.path === '/token').length;
      const [res, at] = await signInFake(agent, 'google');
      assert.equal(google.requests.filter((r) => r.path === '/token').length, tokenCalls + 1, `${spelling}: an ID token was issued`);
      assert.ok(res.status >= 400, `${spelling}: ended at ${at} with ${res.status}`);
      assert.deepEqual(sessionCookies(agent), [], spelling);
    }
  } finally {
    google.issSpelling = 'url';
  }
});

test('a Google session refreshes at Google with the refresh token from access_type=offline', async () => {
  google.expiresIn = ACCESS_TOKEN_TTL;
  try {
    const agent = new Agent();
    const first = await signInFakeOk(agent, 'google');
    await untilRefreshDue();
    const before = { google: google.requests.length, one: refreshes('one'), two: refreshes('two') };
    const now = await seen(agent);
    assert.notEqual(now.authorization, first.authorization, 'a new access token');
    assert.equal(now['x-auth-request-user'], 'google:1098765');
    const refresh = google.requests.slice(before.google).filter((r) => r.path === '/token' && r.form.grant_type === 'refresh_token');
    assert.equal(refresh.length, 1, 'one refresh at Google');
    assert.deepEqual([refreshes('one'), refreshes('two')], [before.one, before.two], 'none elsewhere');
    // Google does not rotate refresh tokens: the next refresh uses the same one.
    await untilRefreshDue();
    assert.equal((await seen(agent))['x-auth-request-user'], 'google:1098765');
  } finally {
    google.expiresIn = 3599;
  }
});

test('logout of a Google or GitHub session stays off the other providers; Google\'s refresh token is revoked', async () => {
  const agent = new Agent();
  await signInFakeOk(agent, 'google');
  const before = google.requests.length;
  const res = await agent.request(url('/auth/logout'), { method: 'POST', headers: { origin: worker.origin } });
  assert.ok([200, 302, 303].includes(res.status), `${res.status}`);
  const location = res.headers.get('location');
  if (location) assert.equal(new URL(location, worker.origin).origin, worker.origin, 'Google has no end_session_endpoint');
  assert.deepEqual(sessionCookies(agent), []);
  const until = Date.now() + 5000;
  while (!google.requests.slice(before).some((r) => r.path === '/revoke') && Date.now() < until) await sleep(50);
  assert.ok(google.requests.slice(before).some((r) => r.path === '/revoke' && r.form.token), 'revoked at Google');

  const gh = new Agent();
  await signInFakeOk(gh, 'github');
  const out = await gh.request(url('/auth/logout'), { method: 'POST', headers: { origin: worker.origin } });
  const ghLocation = out.headers.get('location');
  if (ghLocation) assert.ok(![one.issuer, two.issuer, google.issuer].includes(new URL(ghLocation, worker.origin).origin), ghLocation);
  assert.deepEqual(sessionCookies(gh), []);
});

// ---------------------------------------------------------------- configuration

test('AUTH_PARAMS that would override the protocol, and an incomplete provider, are configuration errors', async () => {
  const base = { COOKIE_SECRET: TEST_COOKIE_SECRET, ...oidcProvider('one', one) };
  const cases = [
    ['ONE_OIDC_AUTH_PARAMS', { PROVIDERS: 'one', ONE_OIDC_AUTH_PARAMS: 'state=leak-me-state' }],
    ['ONE_OIDC_AUTH_PARAMS', { PROVIDERS: 'one', ONE_OIDC_AUTH_PARAMS: 'prompt=login&nonce=leak-me-nonce' }],
    ['ONE_OIDC_AUTH_PARAMS', { PROVIDERS: 'one', ONE_OIDC_AUTH_PARAMS: `redirect_uri=${encodeURIComponent('https://leak-me.example/cb')}` }],
    ['ONE_OIDC_AUTH_PARAMS', { PROVIDERS: 'one', ONE_OIDC_AUTH_PARAMS: 'code_challenge_method=plain&x=leak-me' }],
    ['THREE_OIDC_', { PROVIDERS: 'one three' }],
  ];
  const workers = await Promise.all(cases.map(async ([, vars]) => startWorker({ port: await freePort(), vars: { ...base, ...vars } })));
  try {
    for (const [i, [variable]] of cases.entries()) {
      const res = await fetch(`${workers[i].origin}/auth/login`, { headers: { accept: 'text/html' }, redirect: 'manual' });
      assert.equal(res.status, 500, variable);
      const body = await res.text();
      assert.ok(body.includes(variable), `${variable} named in: ${body.slice(0, 300)}`);
      assert.ok(!body.includes('leak-me'), 'the value is not shown');
      await workers[i].waitForLog(/configuration_error/);
    }
  } finally {
    await Promise.all(workers.map((w) => w.stop()));
  }
});
