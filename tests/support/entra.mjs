// A fake Microsoft Entra ID (v2.0 endpoints) and a fake Microsoft Graph on 127.0.0.1.
//
// Entra as a multi-tenant app sees it: the `organizations` authority, whose discovery names the
// issuer as the template `.../{tenantid}/v2.0` (the worker fills in the token's `tid`), and
// per-tenant authorities `/{tid}/...` with a concrete issuer (for Bearer tokens). Its habits:
// no `code_challenge_methods_supported` and no `authorization_response_iss_parameter_supported`
// in discovery, no `iss` on the redirect (but `session_state`), a refresh token only for
// `offline_access`, refresh tokens rotated (the old one stays valid), errors in the AADSTS
// style, and the group overage: a user in too many groups gets no `groups` claim but
// `_claim_names`/`_claim_sources` pointing at the retired Azure AD Graph, which a client must
// never call; the groups are read from Microsoft Graph with the access token instead.
//
// The fake Graph answers /v1.0/me/transitiveMemberOf (also the /microsoft.graph.group cast)
// in pages of `pageSize` with an `@odata.nextLink`, mixes a directory role into the groups,
// and can be told to refuse. The fake Entra grants every access token it issues at the fake
// Graph (`graph` option), so the token the worker got is the one Graph accepts.
// node:http and node:crypto only; sign-in is immediate for the user chosen by signInAs.
import http from 'node:http';
import crypto from 'node:crypto';
import { readBody, basicCredentials, send } from './http.mjs';

const CODE_TTL_MS = 10 * 60 * 1000;
const NO_STORE = { 'cache-control': 'no-store, no-cache', pragma: 'no-cache' };
/** The authority for work and school accounts of any tenant. */
const MULTI_TENANT = 'organizations';

const random = (bytes = 24) => crypto.randomBytes(bytes).toString('base64url');
const guid = () => crypto.randomUUID();
const b64url = (v) => Buffer.from(typeof v === 'string' ? v : JSON.stringify(v)).toString('base64url');
const s256 = (verifier) => crypto.createHash('sha256').update(verifier).digest('base64url');
const splitScopes = (s) => [...new Set((s ?? '').split(' ').filter(Boolean))];


const closer = (server) => () => new Promise((resolve) => { server.closeAllConnections?.(); server.close(() => resolve()); });

function listen(server, port) {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', resolve);
  });
}

/** An Entra error body: `error`, an AADSTS description, `error_codes` and the trace fields. */
function aadError(error, code, message) {
  const trace = guid();
  const correlation = guid();
  const timestamp = new Date().toISOString().replace('T', ' ').replace(/\.\d+Z$/, 'Z');
  return {
    error,
    error_description: `AADSTS${code}: ${message} Trace ID: ${trace} Correlation ID: ${correlation} Timestamp: ${timestamp}`,
    error_codes: [code],
    timestamp,
    trace_id: trace,
    correlation_id: correlation,
    error_uri: `https://login.microsoftonline.com/error?code=${code}`,
  };
}

/** Entra's own error page (what it shows instead of redirecting to an unknown client). */
const errorPage = (code, message) => `<!DOCTYPE html><title>Sign in to your account</title><h1>Sorry, but we're having trouble signing you in.</h1><p>AADSTS${code}: ${message}</p>`;

/**
 * Starts the fake Entra ID.
 * - `tenants`: the tenant GUIDs that exist (per-tenant discovery, and signInAs's `tenant`).
 * - `graph`: a startFakeGraph() object; every access token issued is granted there with the
 *   user's groups (all of them, overage or not).
 * - `redirectUris`: if given, the registered redirect URIs (others get Entra's AADSTS50011 page).
 * - `claimSourcesBase`: where the overage `_claim_sources` endpoint points
 *   (`<base>/<tid>/users/<oid>/getMemberObjects`); Azure AD Graph by default. A test can point
 *   it at the fake Graph to see that nobody calls it.
 * - `expiresIn`: the access tokens' lifetime in seconds (also settable on the returned object).
 */
export async function startFakeEntra({ port, clientId, clientSecret, tenants, graph, redirectUris, claimSourcesBase = 'https://graph.windows.net', expiresIn = 3599 }) {
  if (!Array.isArray(tenants) || tenants.length === 0) throw new Error('fake Entra: tenants is a non-empty list of tenant GUIDs');
  const url = `http://127.0.0.1:${port}`;
  const issuerFor = (tid) => `${url}/${tid}/v2.0`;
  const issuerTemplate = `${url}/{tenantid}/v2.0`;
  const { privateKey, publicKey } = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
  const kid = random(20);
  const jwk = { ...publicKey.export({ format: 'jwk' }), kid, use: 'sig', alg: 'RS256' };
  // Entra's multi-tenant key set names the issuer template on each key.
  const jwks = { keys: [{ ...jwk, issuer: issuerTemplate }] };
  const codes = new Map();          // code -> { user, authority, redirectUri, scopes, nonce, challenge, expires, used, tokens }
  const accessTokens = new Map();   // token -> { user, scopes, expires }
  const refreshTokens = new Map();  // token -> { user, scopes }

  const fake = {
    url,
    /** What OIDC_ISSUER says for the multi-tenant app. */
    issuer: `${url}/${MULTI_TENANT}/v2.0`,
    issuerTemplate,
    issuerFor,
    tenants: [...tenants],
    kid,
    jwks,
    /** Every request: { method, path, query, headers, form, status }. */
    requests: [],
    expiresIn,
    current: null,
    /**
     * The user the next authorization request signs in: { tenant, oid, sub?, name?,
     * preferred_username?, email?, groups?, overage?, issTenant? }. `sub` defaults to a
     * pairwise value from oid and the client (as Entra's), `issTenant` to `tenant`.
     */
    signInAs(user) {
      if (!user || !tenants.includes(user.tenant)) throw new Error(`fake Entra: tenant ${user?.tenant} is not one of ${tenants.join(', ')}`);
      if (!user.oid) throw new Error('fake Entra: a user needs an oid');
      fake.current = {
        sub: crypto.createHash('sha256').update(`${user.oid}|${clientId}`).digest('base64url'),
        name: 'Entra User',
        preferred_username: `${user.oid.slice(0, 8)}@${user.tenant.slice(0, 8)}.onmicrosoft.example`,
        groups: [],
        overage: false,
        ...structuredClone(user),
      };
      return fake.current;
    },
    /** Invalidates every access and refresh token issued so far (at Entra; Graph keeps its own). */
    revokeAll() { accessTokens.clear(); refreshTokens.clear(); },
    /** Signs exactly `claims` with this provider's key (typ JWT, RS256, its kid unless `header` says otherwise). */
    mint,
    /** The claims of an ID token for `user` (a signInAs-shaped object), to adjust and mint. */
    idTokenClaims,
    close: null,
  };

  function mint(claims, header = {}) {
    const input = `${b64url({ typ: 'JWT', alg: 'RS256', kid, ...header })}.${b64url(claims)}`;
    return `${input}.${crypto.sign('sha256', Buffer.from(input), privateKey).toString('base64url')}`;
  }

  function idTokenClaims(user, nonce) {
    const now = Math.floor(Date.now() / 1000);
    const claims = {
      aud: clientId,
      iss: issuerFor(user.issTenant ?? user.tenant),
      iat: now,
      nbf: now,
      exp: now + 3600,
      aio: random(40),
      ...(user.email ? { email: user.email } : {}),
      name: user.name,
      ...(nonce ? { nonce } : {}),
      oid: user.oid,
      preferred_username: user.preferred_username,
      rh: `0.${random(30)}.`,
      sid: guid(),
      sub: user.sub,
      tid: user.tenant,
      uti: random(16),
      ver: '2.0',
    };
    if (user.overage) {
      // Too many groups for a token: a pointer instead, at an API the client must not call.
      claims._claim_names = { groups: 'src1' };
      claims._claim_sources = { src1: { endpoint: `${claimSourcesBase}/${user.tenant}/users/${user.oid}/getMemberObjects` } };
    } else if (user.groups?.length) {
      claims.groups = [...user.groups];
    }
    return claims;
  }

  /** The discovery document of `authority` (the multi-tenant one or a tenant GUID). */
  function discovery(authority) {
    const base = `${url}/${authority}`;
    return {
      token_endpoint: `${base}/oauth2/v2.0/token`,
      token_endpoint_auth_methods_supported: ['client_secret_post', 'private_key_jwt', 'client_secret_basic'],
      jwks_uri: `${base}/discovery/v2.0/keys`,
      response_modes_supported: ['query', 'fragment', 'form_post'],
      subject_types_supported: ['pairwise'],
      id_token_signing_alg_values_supported: ['RS256'],
      response_types_supported: ['code'],
      scopes_supported: ['openid', 'profile', 'email', 'offline_access'],
      issuer: authority === MULTI_TENANT ? issuerTemplate : issuerFor(authority),
      request_uri_parameter_supported: false,
      authorization_endpoint: `${base}/oauth2/v2.0/authorize`,
      end_session_endpoint: `${base}/oauth2/v2.0/logout`,
      frontchannel_logout_supported: true,
      http_logout_supported: true,
      claims_supported: ['sub', 'iss', 'cloud_instance_name', 'cloud_instance_host_name', 'cloud_graph_host_name', 'msgraph_host', 'aud', 'exp', 'iat', 'auth_time', 'acr', 'nonce', 'preferred_username', 'name', 'tid', 'ver', 'at_hash', 'c_hash', 'email'],
      tenant_region_scope: authority === MULTI_TENANT ? null : 'EU',
      cloud_instance_name: 'microsoftonline.example',
    };
  }

  function authorize(res, authority, q) {
    // Entra checks the client and the redirect URI before it would redirect anywhere.
    if (q.get('client_id') !== clientId) return send(res, 400, errorPage(700016, `Application with identifier '${q.get('client_id')}' was not found in the directory.`));
    const redirectUri = q.get('redirect_uri');
    let target;
    try { target = new URL(redirectUri); } catch { return send(res, 400, errorPage(900144, "The request body must contain the following parameter: 'redirect_uri'.")); }
    if (redirectUris && !redirectUris.includes(redirectUri)) return send(res, 400, errorPage(50011, `The redirect URI '${redirectUri}' specified in the request does not match the redirect URIs configured for the application '${clientId}'.`));
    const formPost = q.get('response_mode') === 'form_post';
    const back = (params) => {
      const all = { ...params, ...(q.has('state') ? { state: q.get('state') } : {}) };
      if (formPost) {
        const inputs = Object.entries(all).map(([k, v]) => `<input type="hidden" name="${k}" value="${String(v).replace(/&/g, '&amp;').replace(/"/g, '&quot;').replace(/</g, '&lt;')}">`).join('');
        return send(res, 200, `<html><body onload="document.forms[0].submit()"><form method="POST" action="${redirectUri.replace(/"/g, '&quot;')}">${inputs}</form></body></html>`);
      }
      for (const [k, v] of Object.entries(all)) target.searchParams.set(k, v);
      res.writeHead(302, { location: target.toString() });
      return res.end();
    };
    const fail = (error, code, message) => back({ error, error_description: `AADSTS${code}: ${message}`, error_uri: `https://login.microsoftonline.com/error?code=${code}` });
    if (q.get('response_type') !== 'code') return fail('unsupported_response_type', 700054, `response_type '${q.get('response_type')}' is not enabled for the application.`);
    if (!q.get('scope')) return fail('invalid_request', 900144, "The request body must contain the following parameter: 'scope'.");
    if (!q.get('code_challenge')) return fail('invalid_request', 9002325, 'Proof Key for Code Exchange is required for cross-origin authorization code redemption.');
    if (q.get('code_challenge_method') !== 'S256') return fail('invalid_request', 501491, "Invalid size of Code_Challenge parameter or code_challenge_method other than 'S256'.");
    const user = fake.current;
    if (!user) return send(res, 500, errorPage(50058, 'fake Entra: nobody to sign in (call signInAs first).'));
    if (authority !== MULTI_TENANT && authority !== user.tenant) {
      return send(res, 400, errorPage(50020, `User account '${user.preferred_username}' from identity provider does not exist in tenant '${authority}'.`));
    }
    const code = `1.A${random(60)}`;
    codes.set(code, {
      user: structuredClone(user),
      authority,
      redirectUri,
      scopes: splitScopes(q.get('scope')),
      nonce: q.get('nonce'),
      challenge: q.get('code_challenge'),
      expires: Date.now() + CODE_TTL_MS,
      used: false,
      tokens: [],
    });
    return back({ code, session_state: guid() });
  }

  /** The access token (opaque here), granted at the fake Graph, and perhaps a refresh token. */
  function issue(user, scopes, nonce, tokens) {
    const access = `EwB${random(48)}`;
    const expires = Date.now() + fake.expiresIn * 1000;
    accessTokens.set(access, { user, scopes, expires });
    tokens?.push(access);
    graph?.grant(access, user.groups ?? [], { expiresAt: expires });
    // Entra's access token is for Microsoft Graph; it answers with Graph's scopes too.
    const granted = [...new Set([...scopes.filter((s) => s !== 'offline_access'), 'User.Read'])];
    const body = { token_type: 'Bearer', scope: granted.join(' '), expires_in: fake.expiresIn, ext_expires_in: fake.expiresIn, access_token: access };
    if (scopes.includes('offline_access')) {
      const refresh = `1.A${random(90)}`;
      refreshTokens.set(refresh, { user, scopes });
      tokens?.push(refresh);
      body.refresh_token = refresh;
    }
    if (scopes.includes('openid')) body.id_token = mint(idTokenClaims(user, nonce));
    return body;
  }

  function token(req, res, authority, form) {
    const err = (status, error, code, message) => send(res, status, aadError(error, code, message), NO_STORE);
    const basic = basicCredentials(req.headers.authorization);
    if (basic && form.client_secret !== undefined) return err(400, 'invalid_request', 50027, 'Only one client authentication method may be used.');
    const client = basic ?? { id: form.client_id, secret: form.client_secret };
    if (basic && form.client_id !== undefined && form.client_id !== basic.id) return err(400, 'invalid_request', 700026, 'The client_id in the request body does not match the authenticated client.');
    if (client.id === undefined) return err(400, 'invalid_request', 900144, "The request body must contain the following parameter: 'client_id'.");
    if (client.id !== clientId) return err(400, 'unauthorized_client', 700016, `Application with identifier '${client.id}' was not found in the directory.`);
    if (client.secret === undefined) return err(401, 'invalid_client', 7000218, "The request body must contain the following parameter: 'client_assertion' or 'client_secret'.");
    if (client.secret !== clientSecret) return err(401, 'invalid_client', 7000215, 'Invalid client secret provided.');

    if (form.grant_type === 'authorization_code') {
      const grant = codes.get(form.code);
      if (!grant || grant.expires < Date.now()) return err(400, 'invalid_grant', 70008, 'The provided authorization code or refresh token has expired or was revoked.');
      if (grant.used) {
        for (const t of grant.tokens) { accessTokens.delete(t); refreshTokens.delete(t); graph?.revoke(t); }
        return err(400, 'invalid_grant', 54005, 'OAuth2 Authorization code was already redeemed, please retry with a new valid code or use an existing refresh token.');
      }
      grant.used = true;
      if (authority !== grant.authority) return err(400, 'invalid_grant', 700005, 'Provided Authorization Code is intended to use against other tenant, thus rejected.');
      if (form.redirect_uri !== grant.redirectUri) return err(400, 'invalid_grant', 70002, "The reply URL specified in the request does not match the reply URL used in the authorization request.");
      if (!form.code_verifier) return err(400, 'invalid_request', 50148, 'The code_verifier does not match the code_challenge supplied in the authorization request for PKCE.');
      if (s256(form.code_verifier) !== grant.challenge) return err(400, 'invalid_grant', 501481, 'The Code_Verifier does not match the code_challenge supplied in the authorization request.');
      return send(res, 200, issue(grant.user, grant.scopes, grant.nonce, grant.tokens), NO_STORE);
    }
    if (form.grant_type === 'refresh_token') {
      const grant = refreshTokens.get(form.refresh_token);
      if (!grant) return err(400, 'invalid_grant', 9002313, 'Invalid request. Request is malformed or invalid.');
      if (authority !== MULTI_TENANT && authority !== grant.user.tenant) return err(400, 'invalid_grant', 700005, 'Provided refresh token is intended to use against other tenant, thus rejected.');
      // Rotated: a new refresh token comes back; the old one stays valid (as at Entra).
      // Without `scope` the original scopes; a refresh token keeps its offline access.
      const scopes = form.scope ? [...new Set([...splitScopes(form.scope), 'offline_access'])] : grant.scopes;
      return send(res, 200, issue(grant.user, scopes), NO_STORE);
    }
    return err(400, 'unsupported_grant_type', 70003, `The app requested an unsupported grant type '${form.grant_type ?? ''}'.`);
  }

  function logout(res, q) {
    const back = q.get('post_logout_redirect_uri');
    if (back) {
      let target;
      try { target = new URL(back); } catch { return send(res, 400, errorPage(50011, 'The post-logout redirect URI is not valid.')); }
      if (q.has('state')) target.searchParams.set('state', q.get('state'));
      res.writeHead(302, { location: target.toString() });
      return res.end();
    }
    return send(res, 200, '<!DOCTYPE html><title>Sign out</title><p>You signed out of your account.</p>');
  }

  const server = http.createServer(async (req, res) => {
    const record = { method: req.method, path: '', query: {}, headers: req.headers, form: {}, status: 0 };
    const writeHead = res.writeHead.bind(res);
    res.writeHead = (status, ...rest) => { record.status = status; return writeHead(status, ...rest); };
    try {
      const u = new URL(req.url, url);
      const raw = req.method === 'POST' ? await readBody(req) : '';
      const form = Object.fromEntries(new URLSearchParams(raw));
      Object.assign(record, { path: u.pathname, query: Object.fromEntries(u.searchParams), form });
      fake.requests.push(record);
      const m = /^\/([^/]+)(\/.*)$/.exec(u.pathname);
      if (!m) return send(res, 404, errorPage(90002, 'Not found.'));
      const [, authority, rest] = m;
      if (authority !== MULTI_TENANT && !tenants.includes(authority)) {
        return send(res, 400, aadError('invalid_tenant', 90002, `Tenant '${authority}' not found. Check to make sure you have the correct tenant ID and are signing into the correct cloud.`));
      }
      const route = `${req.method} ${rest}`;
      if (route === 'GET /v2.0/.well-known/openid-configuration') return send(res, 200, discovery(authority), { 'cache-control': 'max-age=86400, private' });
      if (route === 'GET /discovery/v2.0/keys') return send(res, 200, jwks, { 'cache-control': 'max-age=3600' });
      if (route === 'GET /oauth2/v2.0/authorize') return authorize(res, authority, u.searchParams);
      if (route === 'POST /oauth2/v2.0/token') return token(req, res, authority, form);
      if (route === 'GET /oauth2/v2.0/logout' || route === 'POST /oauth2/v2.0/logout') return logout(res, new URLSearchParams({ ...Object.fromEntries(u.searchParams), ...form }));
      return send(res, 404, errorPage(90002, 'Not found.'));
    } catch (err) {
      send(res, 500, { error: 'server_error', error_description: String(err) });
    }
  });
  await listen(server, port);
  fake.close = closer(server);
  return fake;
}

/** The directory role every user also holds in the fake Graph's answer (not a group). */
export const DIRECTORY_ROLE_ID = '5b3c9a41-7d0e-4f6a-9c2b-8e1d4a7f6c30';

const GRAPH_JSON = 'application/json;odata.metadata=minimal;odata.streaming=true;IEEE754Compatible=false;charset=utf-8';
const REFUSALS = {
  forbidden: [403, 'Authorization_RequestDenied', 'Insufficient privileges to complete the operation.'],
  unauthorized: [401, 'InvalidAuthenticationToken', 'Access token validation failure. Invalid audience.'],
  throttled: [429, 'TooManyRequests', 'Too many requests.'],
  unavailable: [503, 'serviceNotAvailable', 'Service unavailable.'],
};
const MEMBER_OF = '/v1.0/me/transitiveMemberOf';
const GROUP_CAST = `${MEMBER_OF}/microsoft.graph.group`;

/**
 * Starts the fake Microsoft Graph. `pageSize` entries per page (whatever `$top` asks: a
 * server may send fewer). Returns { url, requests, grant, revoke, refuse, close }.
 */
export async function startFakeGraph({ port, pageSize = 2 }) {
  const url = `http://127.0.0.1:${port}`;
  const tokens = new Map(); // access token -> { entries, expiresAt }
  let refusal = null;       // { mode, fromPage }

  const graph = {
    url,
    /** Every request: { method, path, query, headers, status }. */
    requests: [],
    /**
     * Makes `accessToken` valid for /me with these group ids (plus one directory role, placed
     * second, which is not a group). `expiresAt` in ms since the epoch, or none.
     */
    grant(accessToken, groups, { expiresAt, directoryRoles = [DIRECTORY_ROLE_ID] } = {}) {
      const entries = groups.map((id) => ({ '@odata.type': '#microsoft.graph.group', id, displayName: `Group ${id.slice(0, 8)}`, securityEnabled: true }));
      entries.splice(Math.min(1, entries.length), 0, ...directoryRoles.map((id) => ({ '@odata.type': '#microsoft.graph.directoryRole', id, displayName: 'Global Reader', roleTemplateId: 'f2ef992c-3afb-46b9-b7cf-a126ee74c451' })));
      tokens.set(accessToken, { entries, expiresAt });
    },
    revoke(accessToken) { tokens.delete(accessToken); },
    /**
     * 'forbidden' (403 Authorization_RequestDenied), 'unauthorized' (401), 'throttled' (429 with
     * Retry-After) or 'unavailable' (503) for every membership request from page `fromPage` on
     * (1: all of them); null answers normally again.
     */
    refuse(mode, { fromPage = 1 } = {}) {
      if (mode !== null && !REFUSALS[mode]) throw new Error(`fake Graph: unknown refusal ${mode}`);
      refusal = mode === null ? null : { mode, fromPage };
    },
    close: null,
  };

  const graphError = (res, status, code, message, headers = {}) => {
    const date = new Date().toISOString().replace(/\.\d+Z$/, '');
    const id = guid();
    return send(res, status, { error: { code, message, innerError: { date, 'request-id': id, 'client-request-id': id } } }, { 'content-type': GRAPH_JSON, 'request-id': id, ...headers });
  };

  function memberOf(req, res, u, groupsOnly) {
    const m = /^Bearer\s+(\S+)$/i.exec(req.headers.authorization ?? '');
    const grant = m && tokens.get(m[1]);
    const challenge = { 'www-authenticate': 'Bearer realm="", authorization_uri="https://login.microsoftonline.com/common/oauth2/authorize", client_id="00000003-0000-0000-c000-000000000000"' };
    if (!grant) return graphError(res, 401, 'InvalidAuthenticationToken', m ? 'Access token validation failure. Invalid audience.' : 'Access token is empty.', challenge);
    if (grant.expiresAt && grant.expiresAt < Date.now()) return graphError(res, 401, 'InvalidAuthenticationToken', 'Lifetime validation failed, the token is expired.', challenge);

    let offset = 0;
    const skip = u.searchParams.get('$skiptoken');
    if (skip !== null) {
      const parsed = /^RFNwdA(\d+)$/.exec(skip);
      if (!parsed) return graphError(res, 400, 'Request_BadRequest', 'Invalid skip token.');
      offset = Number(parsed[1]);
    }
    const page = Math.floor(offset / pageSize) + 1;
    if (refusal && page >= refusal.fromPage) {
      const [status, code, message] = REFUSALS[refusal.mode];
      return graphError(res, status, code, message, status === 429 ? { 'retry-after': '1' } : {});
    }

    const all = groupsOnly ? grant.entries.filter((e) => e['@odata.type'] === '#microsoft.graph.group') : grant.entries;
    const select = u.searchParams.get('$select');
    const fields = select ? select.split(',').map((f) => f.trim()).filter(Boolean) : null;
    const shape = (e) => (fields ? Object.fromEntries(Object.entries(e).filter(([k]) => k === '@odata.type' || fields.includes(k))) : { ...e });
    const value = all.slice(offset, offset + pageSize).map(shape);
    const body = {
      '@odata.context': `${url}/v1.0/$metadata#directoryObjects${groupsOnly ? '/microsoft.graph.group' : ''}${fields ? `(${fields.join(',')})` : ''}`,
    };
    if (offset + pageSize < all.length) {
      // Graph keeps $select (and $top) in the next link, written with a literal `$`.
      const kept = (u.search.startsWith('?') ? u.search.slice(1) : u.search).split('&')
        .filter((p) => p && !/^(\$|%24)skiptoken=/i.test(p));
      kept.push(`$skiptoken=RFNwdA${offset + pageSize}`);
      body['@odata.nextLink'] = `${url}${u.pathname}?${kept.join('&')}`;
    }
    body.value = value;
    return send(res, 200, body, { 'content-type': GRAPH_JSON, 'request-id': guid() });
  }

  const server = http.createServer((req, res) => {
    const u = new URL(req.url, url);
    const record = { method: req.method, path: u.pathname, query: Object.fromEntries(u.searchParams), headers: req.headers, status: 0 };
    graph.requests.push(record);
    const writeHead = res.writeHead.bind(res);
    res.writeHead = (status, ...rest) => { record.status = status; return writeHead(status, ...rest); };
    req.resume();
    try {
      if (req.method === 'GET' && u.pathname === MEMBER_OF) return memberOf(req, res, u, false);
      if (req.method === 'GET' && u.pathname === GROUP_CAST) return memberOf(req, res, u, true);
      return graphError(res, 400, 'Request_BadRequest', `Invalid request: ${req.method} ${u.pathname} is not served here.`);
    } catch (err) {
      return graphError(res, 500, 'generalException', String(err));
    }
  });
  await listen(server, port);
  graph.close = closer(server);
  return graph;
}
