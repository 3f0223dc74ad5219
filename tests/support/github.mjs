// A fake GitHub on 127.0.0.1, laid out like GitHub Enterprise Server (the web flow under
// /login/oauth, the REST API under /api/v3). Plain OAuth 2.0, no OpenID Connect: no discovery,
// no ID token, identity from the API. It behaves like GitHub where a gateway can go wrong:
// token errors come back as HTTP 200, the token answer is form-encoded unless JSON is asked
// for, the API refuses requests without a User-Agent, /user's `email` is not to be trusted
// (here it is the primary address, verified or not), and a login can be renamed while the
// numeric id stays. No dependencies.
import http from 'node:http';
import crypto from 'node:crypto';
import { readBody, basicCredentials, send } from './http.mjs';

/**
 * The default users, keyed by login. `emails` as /user/emails lists them; `orgs` by login;
 * `teams` as [org, team slug] pairs.
 */
export const GITHUB_USERS = {
  octocat: {
    id: 583231,
    name: 'The Octocat',
    emails: [{ email: 'octocat@github.example', primary: true, verified: true }],
    orgs: ['acme'],
    teams: [['acme', 'admins']],
  },
  hubot: {
    id: 1001,
    name: 'Hubot',
    emails: [{ email: 'hubot@github.example', primary: true, verified: true }],
    orgs: ['acme'],
    teams: [],
  },
  // Added someone else's address as primary without verifying it; a second address is verified.
  sneaky: {
    id: 1002,
    name: 'Sneaky',
    emails: [
      { email: 'victim@corp.example', primary: true, verified: false },
      { email: 'sneaky@github.example', primary: false, verified: true },
    ],
    orgs: [],
    teams: [],
  },
};

const CODE_TTL_MS = 10 * 60 * 1000;
const DOCS = 'https://docs.github.com/enterprise-server/rest';

const random = (bytes = 20) => crypto.randomBytes(bytes).toString('hex');
const s256 = (verifier) => crypto.createHash('sha256').update(verifier).digest('base64url');
const splitScopes = (s) => [...new Set((s ?? '').split(/[\s,]+/).filter(Boolean))];
/** A stable small number for an organization or team name (GitHub ids are numbers). */
const idFor = (name) => crypto.createHash('sha256').update(name).digest().readUInt32BE(0) % 1_000_000;

/** Form or JSON body (GitHub takes both) as a plain object of strings. */
function parseBody(req, raw) {
  if (/application\/json/i.test(req.headers['content-type'] ?? '')) {
    try { return Object.fromEntries(Object.entries(JSON.parse(raw)).map(([k, v]) => [k, String(v)])); } catch { return {}; }
  }
  return Object.fromEntries(new URLSearchParams(raw));
}

/**
 * Starts the fake. `users` (default GITHUB_USERS) is copied, so renames stay in this fake.
 * `enforceScopes`: /user/emails needs `user:email` (or `user`), /user/teams needs `read:org`
 * (or `user`, `repo`), and /user/orgs lists memberships only with `read:org` (or `user`),
 * as GitHub does for private memberships. `requirePkce`: refuse an authorization request
 * without an S256 code challenge.
 */
export async function startFakeGitHub({ port, clientId, clientSecret, users = GITHUB_USERS, enforceScopes = true, requirePkce = true }) {
  const url = `http://127.0.0.1:${port}`;
  const accounts = new Map(Object.entries(structuredClone(users)).map(([login, u]) => [login, { login, ...u }]));
  const byId = (id) => [...accounts.values()].find((u) => u.id === id);
  const codes = new Map();   // code -> { userId, redirectUri, scopes, challenge, expires }
  const tokens = new Map();  // access token -> { userId, scopes }

  const fake = {
    url,
    requests: [],
    /** 'json' answers JSON when asked to; 'form' answers form-encoded whatever was asked. */
    tokenFormat: 'json',
    /** API requests refused for lacking a User-Agent (a gateway should never cause one). */
    missingUserAgent: 0,
    current: accounts.keys().next().value,
    /** The user the next authorization request signs in. */
    signInAs(login) {
      if (!accounts.has(login)) throw new Error(`fake GitHub: no user ${login}`);
      fake.current = login;
    },
    /** The next token request gets this object as a 200 answer (GitHub's error style). */
    failNextToken(body) { fake.nextTokenAnswer = body; },
    nextTokenAnswer: null,
    /** Invalidates every access token issued so far. */
    revokeAll() { tokens.clear(); },
    /** Renames a login; the numeric id, and tokens already issued, stay. */
    rename(login, newLogin) {
      const u = accounts.get(login);
      if (!u || accounts.has(newLogin)) throw new Error(`fake GitHub: cannot rename ${login} to ${newLogin}`);
      accounts.delete(login);
      u.login = newLogin;
      accounts.set(newLogin, u);
      if (fake.current === login) fake.current = newLogin;
    },
    /** Live access tokens (for assertions). */
    liveTokens: () => [...tokens.keys()],
    close: () => new Promise((resolve) => { server.closeAllConnections?.(); server.close(() => resolve()); }),
  };


  function authorize(req, res, q) {
    if (q.get('client_id') !== clientId) return send(res, 404, '<h1>404: the OAuth application was not found</h1>');
    const redirectUri = q.get('redirect_uri');
    let target;
    try { target = new URL(redirectUri); } catch { return send(res, 400, '<h1>The redirect_uri is missing or not a URL</h1>'); }
    const challenge = q.get('code_challenge');
    const method = q.get('code_challenge_method');
    if (challenge ? method !== 'S256' : requirePkce) {
      target.searchParams.set('error', 'invalid_request');
      target.searchParams.set('error_description', 'PKCE with code_challenge_method S256 is required');
    } else {
      const code = random(10);
      codes.set(code, {
        userId: accounts.get(fake.current).id,
        redirectUri,
        scopes: splitScopes(q.get('scope')),
        challenge,
        expires: Date.now() + CODE_TTL_MS,
      });
      target.searchParams.set('code', code);
    }
    if (q.has('state')) target.searchParams.set('state', q.get('state'));
    res.writeHead(302, { location: target.toString() });
    res.end();
  }

  function accessToken(req, res, params) {
    const wantsJson = fake.tokenFormat === 'json' && /application\/json/i.test(req.headers.accept ?? '');
    const answer = (body) => {
      if (wantsJson) return send(res, 200, body);
      res.writeHead(200, { 'content-type': 'application/x-www-form-urlencoded; charset=utf-8' });
      return res.end(new URLSearchParams(body).toString());
    };
    const error = (code, description) => answer({ error: code, error_description: description, error_uri: `${DOCS}/oauth#${code}` });
    if (fake.nextTokenAnswer) {
      const body = fake.nextTokenAnswer;
      fake.nextTokenAnswer = null;
      return answer(body);
    }
    const basic = basicCredentials(req.headers.authorization);
    const client = basic ?? { id: params.client_id, secret: params.client_secret };
    if (client.id !== clientId || client.secret !== clientSecret) {
      return error('incorrect_client_credentials', 'The client_id and/or client_secret passed are incorrect.');
    }
    const grant = codes.get(params.code);
    codes.delete(params.code);
    if (!grant || grant.expires < Date.now()) return error('bad_verification_code', 'The code passed is incorrect or expired.');
    if (params.redirect_uri !== undefined && params.redirect_uri !== grant.redirectUri) {
      return error('redirect_uri_mismatch', 'The redirect_uri MUST match the registered callback URL for this application.');
    }
    if (grant.challenge && (!params.code_verifier || s256(params.code_verifier) !== grant.challenge)) {
      return error('bad_verification_code', 'The code_verifier does not match the code_challenge.');
    }
    const token = `gho_${crypto.randomBytes(27).toString('base64url').replace(/[-_]/g, 'x').slice(0, 36)}`;
    tokens.set(token, { userId: grant.userId, scopes: grant.scopes });
    return answer({ access_token: token, token_type: 'bearer', scope: grant.scopes.join(',') });
  }

  function api(req, res, route, q) {
    if (!(req.headers['user-agent'] ?? '').trim()) {
      fake.missingUserAgent += 1;
      return send(res, 403, { message: 'Request forbidden by administrative rules. Please make sure your request has a User-Agent header', documentation_url: `${DOCS}/overview/resources-in-the-rest-api#user-agent-required` });
    }
    const m = /^(?:Bearer|token)\s+(\S+)$/i.exec(req.headers.authorization ?? '');
    const grant = m && tokens.get(m[1]);
    const user = grant && byId(grant.userId);
    if (!user) return send(res, 401, { message: 'Bad credentials', documentation_url: DOCS });
    const has = (...wanted) => !enforceScopes || wanted.some((s) => grant.scopes.includes(s));
    const headers = { 'x-oauth-scopes': grant.scopes.join(', ') };
    if (req.method !== 'GET') return send(res, 404, { message: 'Not Found', documentation_url: DOCS }, headers);
    // Everything fits on the first page; later pages are empty.
    const page = Number(q.get('page') ?? '1');
    const list = (items) => send(res, 200, page > 1 ? [] : items, headers);
    switch (route) {
      case '/user':
        return send(res, 200, {
          login: user.login,
          id: user.id,
          node_id: `U_${user.id}`,
          type: 'User',
          site_admin: false,
          name: user.name ?? null,
          // The profile's public address: here the primary one, verified or not.
          email: user.emails?.find((e) => e.primary)?.email ?? null,
        }, headers);
      case '/user/emails':
        if (!has('user:email', 'user')) return send(res, 404, { message: 'Not Found', documentation_url: DOCS }, { ...headers, 'x-accepted-oauth-scopes': 'user, user:email' });
        return list((user.emails ?? []).map((e) => ({ email: e.email, primary: !!e.primary, verified: !!e.verified, visibility: e.primary ? 'private' : null })));
      case '/user/orgs':
        if (!has('read:org', 'user', 'admin:org', 'write:org')) return list([]);
        return list((user.orgs ?? []).map((login) => ({ login, id: idFor(login), node_id: `O_${idFor(login)}` })));
      case '/user/teams':
        if (!has('read:org', 'user', 'repo', 'admin:org', 'write:org')) {
          return send(res, 403, { message: 'Resource not accessible by integration', documentation_url: DOCS }, { ...headers, 'x-accepted-oauth-scopes': 'read:org, repo, user' });
        }
        return list((user.teams ?? []).map(([org, slug]) => ({
          id: idFor(`${org}/${slug}`),
          slug,
          name: slug,
          organization: { login: org, id: idFor(org) },
        })));
      default:
        return send(res, 404, { message: 'Not Found', documentation_url: DOCS }, headers);
    }
  }

  const server = http.createServer(async (req, res) => {
    try {
      const u = new URL(req.url, url);
      const raw = req.method === 'POST' ? await readBody(req) : '';
      const form = raw ? parseBody(req, raw) : {};
      fake.requests.push({ method: req.method, path: u.pathname, query: Object.fromEntries(u.searchParams), headers: req.headers, form });
      if (req.method === 'GET' && u.pathname === '/login/oauth/authorize') return authorize(req, res, u.searchParams);
      // GitHub also reads these parameters from the query string; the body wins.
      if (req.method === 'POST' && u.pathname === '/login/oauth/access_token') return accessToken(req, res, { ...Object.fromEntries(u.searchParams), ...form });
      if (u.pathname.startsWith('/api/v3/')) return api(req, res, u.pathname.slice('/api/v3'.length).replace(/\/$/, ''), u.searchParams);
      return send(res, 404, '<h1>Not Found</h1>');
    } catch (err) {
      send(res, 500, { message: String(err) });
    }
  });
  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', resolve);
  });
  return fake;
}
