// A fake Google OpenID Provider on 127.0.0.1: discovery, an RS256 JWKS, the authorization,
// token, revocation and userinfo endpoints, with Google's habits: no end_session_endpoint,
// a refresh token only for `access_type=offline`, refresh tokens that are not rotated, an
// ID token again at refresh, scopes answered as URLs, `hd` for Workspace accounts only, and
// an `iss` that may be written without its scheme (Google's `accounts.google.com`).
// node:http and node:crypto only; sign-in is immediate for the user chosen by signInAs.
import http from 'node:http';
import crypto from 'node:crypto';
import { readBody, basicCredentials, send } from './http.mjs';

/** The users, keyed by what signInAs takes. `hd` marks a Workspace (hosted domain) account. */
export const GOOGLE_USERS = {
  worker: { sub: '1098765', email: 'worker@corp.example', email_verified: true, hd: 'corp.example', name: 'Corp Worker' },
  consumer: { sub: '2098765', email: 'someone@gmail.example', email_verified: true, name: 'Consumer' },
  // A personal account registered with a corp.example address: the email matches, no hd.
  spoof: { sub: '3098765', email: 'boss@corp.example', email_verified: true, name: 'Spoof' },
};

const CODE_TTL_MS = 10 * 60 * 1000;
const SCOPE_URLS = {
  email: 'https://www.googleapis.com/auth/userinfo.email',
  profile: 'https://www.googleapis.com/auth/userinfo.profile',
};
const NO_STORE = { 'cache-control': 'no-cache, no-store, max-age=0, must-revalidate', pragma: 'no-cache' };

const random = (bytes = 24) => crypto.randomBytes(bytes).toString('base64url');
const b64url = (v) => Buffer.from(typeof v === 'string' ? v : JSON.stringify(v)).toString('base64url');

/**
 * Starts the fake. `users` defaults to GOOGLE_USERS. `expiresIn` (seconds, also settable on
 * the returned object) is the access tokens' lifetime; short ones make refreshes happen.
 * `issSpelling` on the returned object: 'url' (the discovery issuer), 'bare' (without its
 * `http://`), or any other string used as `iss` as it is.
 */
export async function startFakeGoogle({ port, clientId, clientSecret, users = GOOGLE_USERS, expiresIn = 3599 }) {
  const issuer = `http://127.0.0.1:${port}`;
  const { privateKey, publicKey } = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
  const kid = crypto.randomBytes(8).toString('hex');
  const jwks = { keys: [{ ...publicKey.export({ format: 'jwk' }), kid, alg: 'RS256', use: 'sig' }] };
  const codes = new Map();          // code -> { user, redirectUri, scopes, nonce, challenge, method, offline, expires, tokens: [] }
  const accessTokens = new Map();   // token -> { user, scopes, expires }
  const refreshTokens = new Map();  // token -> { user, scopes, accessTokens: [] }

  const fake = {
    issuer,
    requests: [],
    issSpelling: 'url',
    expiresIn,
    current: Object.keys(users)[0],
    /** The user the next authorization request signs in. */
    signInAs(userKey) {
      if (!users[userKey]) throw new Error(`fake Google: no user ${userKey}`);
      fake.current = userKey;
    },
    /** Invalidates every access and refresh token issued so far. */
    revokeAll() { accessTokens.clear(); refreshTokens.clear(); },
    /** Signs claims as this provider (to hand-craft ID tokens in tests). */
    sign,
    close: () => new Promise((resolve) => { server.closeAllConnections?.(); server.close(() => resolve()); }),
  };

  function iss() {
    if (fake.issSpelling === 'url') return issuer;
    if (fake.issSpelling === 'bare') return issuer.replace(/^https?:\/\//, '');
    return fake.issSpelling;
  }

  function sign(claims) {
    const input = `${b64url({ alg: 'RS256', kid, typ: 'JWT' })}.${b64url(claims)}`;
    return `${input}.${crypto.sign('sha256', Buffer.from(input), privateKey).toString('base64url')}`;
  }

  /** An ID token for `userKey`; `nonce` only at sign-in (OpenID Connect Core 12.2). */
  function idToken(userKey, nonce) {
    const u = users[userKey];
    const now = Math.floor(Date.now() / 1000);
    return sign({
      iss: iss(),
      azp: clientId,
      aud: clientId,
      sub: u.sub,
      ...(u.hd ? { hd: u.hd } : {}),
      email: u.email,
      email_verified: u.email_verified,
      ...(nonce ? { nonce } : {}),
      name: u.name,
      iat: now,
      exp: now + 3600,
    });
  }


  const discovery = {
    issuer,
    authorization_endpoint: `${issuer}/o/oauth2/v2/auth`,
    token_endpoint: `${issuer}/token`,
    userinfo_endpoint: `${issuer}/v1/userinfo`,
    revocation_endpoint: `${issuer}/revoke`,
    jwks_uri: `${issuer}/oauth2/v3/certs`,
    response_types_supported: ['code', 'token', 'id_token', 'code token', 'code id_token', 'token id_token', 'code token id_token', 'none'],
    subject_types_supported: ['public'],
    id_token_signing_alg_values_supported: ['RS256'],
    scopes_supported: ['openid', 'email', 'profile'],
    token_endpoint_auth_methods_supported: ['client_secret_post', 'client_secret_basic'],
    claims_supported: ['aud', 'email', 'email_verified', 'exp', 'family_name', 'given_name', 'iat', 'iss', 'name', 'picture', 'sub'],
    code_challenge_methods_supported: ['plain', 'S256'],
    grant_types_supported: ['authorization_code', 'refresh_token', 'urn:ietf:params:oauth:grant-type:device_code', 'urn:ietf:params:oauth:grant-type:jwt-bearer'],
  };

  function authorize(res, q) {
    // Google shows its own error page (no redirect) for an unknown client or redirect URI.
    if (q.get('client_id') !== clientId) return send(res, 401, '<h1>Error 401: invalid_client</h1><p>The OAuth client was not found.</p>');
    let target;
    try { target = new URL(q.get('redirect_uri')); } catch { return send(res, 400, '<h1>Error 400: redirect_uri_mismatch</h1>'); }
    if (!q.get('scope')) return send(res, 400, '<h1>Error 400: invalid_request</h1><p>Missing required parameter: scope</p>');
    const back = (params) => {
      for (const [k, v] of Object.entries(params)) if (v !== undefined) target.searchParams.set(k, v);
      if (q.has('state')) target.searchParams.set('state', q.get('state'));
      res.writeHead(302, { location: target.toString() });
      res.end();
    };
    if (q.get('response_type') !== 'code') return back({ error: 'unsupported_response_type' });
    const challenge = q.get('code_challenge');
    const method = q.get('code_challenge_method') ?? 'plain';
    if (challenge && !['plain', 'S256'].includes(method)) return back({ error: 'invalid_request', error_description: 'Invalid code_challenge_method' });
    const scopes = q.get('scope').split(' ').filter(Boolean).map((s) => SCOPE_URLS[s] ?? s);
    const code = `4/0A${random(30)}`;
    codes.set(code, {
      user: fake.current,
      redirectUri: q.get('redirect_uri'),
      scopes,
      nonce: q.get('nonce'),
      challenge,
      method,
      offline: q.get('access_type') === 'offline',
      expires: Date.now() + CODE_TTL_MS,
      tokens: [],
    });
    // Google adds these to the redirect; a client must not mind extra parameters.
    back({ code, scope: scopes.join(' '), authuser: '0', hd: users[fake.current].hd, prompt: q.get('prompt') === 'consent' ? 'consent' : 'none' });
  }

  function issueAccessToken(user, scopes) {
    const token = `ya29.${random(40)}`;
    accessTokens.set(token, { user, scopes, expires: Date.now() + fake.expiresIn * 1000 });
    return token;
  }

  function token(req, res, form) {
    const err = (status, error, error_description) => send(res, status, { error, error_description }, NO_STORE);
    const basic = basicCredentials(req.headers.authorization);
    if (basic && (form.client_secret !== undefined)) return err(400, 'invalid_request', 'More than one client authentication method was used.');
    const client = basic ?? { id: form.client_id, secret: form.client_secret };
    if (client.id !== clientId || client.secret !== clientSecret) return err(401, 'invalid_client', 'Unauthorized');
    if (basic && form.client_id !== undefined && form.client_id !== clientId) return err(401, 'invalid_client', 'Unauthorized');

    if (form.grant_type === 'authorization_code') {
      const grant = codes.get(form.code);
      if (!grant || grant.expires < Date.now()) return err(400, 'invalid_grant', 'Malformed auth code.');
      if (grant.used) {
        // A replayed code: refused, and what it issued is revoked (RFC 6749 4.1.2).
        for (const t of grant.tokens) { accessTokens.delete(t); refreshTokens.delete(t); }
        return err(400, 'invalid_grant', 'Bad Request');
      }
      grant.used = true;
      if (form.redirect_uri !== grant.redirectUri) return err(400, 'redirect_uri_mismatch', 'Bad Request');
      if (grant.challenge) {
        if (!form.code_verifier) return err(400, 'invalid_grant', 'Missing code verifier.');
        const computed = grant.method === 'S256' ? crypto.createHash('sha256').update(form.code_verifier).digest('base64url') : form.code_verifier;
        if (computed !== grant.challenge) return err(400, 'invalid_grant', 'Invalid code verifier.');
      }
      const access = issueAccessToken(grant.user, grant.scopes);
      grant.tokens.push(access);
      const body = { access_token: access, expires_in: fake.expiresIn, scope: grant.scopes.join(' '), token_type: 'Bearer' };
      if (grant.scopes.includes('openid')) body.id_token = idToken(grant.user, grant.nonce);
      if (grant.offline) {
        const refresh = `1//0${random(40)}`;
        refreshTokens.set(refresh, { user: grant.user, scopes: grant.scopes, accessTokens: [access] });
        grant.tokens.push(refresh);
        body.refresh_token = refresh;
      }
      return send(res, 200, body, NO_STORE);
    }
    if (form.grant_type === 'refresh_token') {
      const grant = refreshTokens.get(form.refresh_token);
      if (!grant) return err(400, 'invalid_grant', 'Token has been expired or revoked.');
      const access = issueAccessToken(grant.user, grant.scopes);
      grant.accessTokens.push(access);
      // The refresh token is not rotated: none comes back.
      const body = { access_token: access, expires_in: fake.expiresIn, scope: grant.scopes.join(' '), token_type: 'Bearer' };
      if (grant.scopes.includes('openid')) body.id_token = idToken(grant.user);
      return send(res, 200, body, NO_STORE);
    }
    return err(400, 'unsupported_grant_type', 'Invalid grant_type: ' + (form.grant_type ?? ''));
  }

  function revoke(res, form) {
    const t = form.token;
    if (refreshTokens.has(t)) {
      for (const a of refreshTokens.get(t).accessTokens) accessTokens.delete(a);
      refreshTokens.delete(t);
      return send(res, 200, {});
    }
    if (accessTokens.delete(t)) return send(res, 200, {});
    return send(res, 400, { error: 'invalid_token', error_description: 'Token expired or revoked' });
  }

  function userinfo(req, res) {
    const m = /^Bearer\s+(\S+)$/i.exec(req.headers.authorization ?? '');
    const grant = m && accessTokens.get(m[1]);
    if (!grant || grant.expires < Date.now()) {
      return send(res, 401, { error: 'invalid_request', error_description: 'Invalid Credentials' }, { 'www-authenticate': 'Bearer realm="https://accounts.google.com/", error="invalid_token"' });
    }
    const u = users[grant.user];
    return send(res, 200, { sub: u.sub, name: u.name, email: u.email, email_verified: u.email_verified, ...(u.hd ? { hd: u.hd } : {}) });
  }

  const server = http.createServer(async (req, res) => {
    try {
      const u = new URL(req.url, issuer);
      const raw = req.method === 'POST' ? await readBody(req) : '';
      const form = Object.fromEntries(new URLSearchParams(raw));
      fake.requests.push({ method: req.method, path: u.pathname, query: Object.fromEntries(u.searchParams), headers: req.headers, form });
      const route = `${req.method} ${u.pathname}`;
      if (route === 'GET /.well-known/openid-configuration') return send(res, 200, discovery, { 'cache-control': 'public, max-age=3600' });
      if (route === 'GET /oauth2/v3/certs') return send(res, 200, jwks, { 'cache-control': 'public, max-age=21600' });
      if (route === 'GET /o/oauth2/v2/auth') return authorize(res, u.searchParams);
      if (route === 'POST /token') return token(req, res, form);
      if (route === 'POST /revoke') return revoke(res, { ...Object.fromEntries(u.searchParams), ...form });
      if (route === 'GET /v1/userinfo') return userinfo(req, res);
      return send(res, 404, '<h1>404. That’s an error.</h1>');
    } catch (err) {
      send(res, 500, { error: 'internal_failure', error_description: String(err) });
    }
  });
  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', resolve);
  });
  return fake;
}
