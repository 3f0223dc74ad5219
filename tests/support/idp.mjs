// A real OpenID Provider (panva's oidc-provider, OpenID Certified) on 127.0.0.1, for the
// demo and the end-to-end tests. Run directly for the demo:
//   node tests/support/idp.mjs --port 9090 --redirect http://127.0.0.1:8787
import http from 'node:http';
import crypto from 'node:crypto';
import { parseArgs } from 'node:util';
import Provider, { interactionPolicy } from 'oidc-provider';

export const DEMO_CLIENT_ID = 'portcullis-demo';
export const DEMO_CLIENT_SECRET = 'portcullis-demo-secret';
export const API_CLIENT_ID = 'api-client';
export const API_CLIENT_SECRET = 'api-client-secret';

/** An RFC 9068 access token from the provider, by client credentials. */
export async function clientCredentialsToken(issuer, resource, scope) {
  const res = await fetch(`${issuer}/token`, {
    method: 'POST',
    headers: {
      authorization: `Basic ${Buffer.from(`${API_CLIENT_ID}:${API_CLIENT_SECRET}`).toString('base64')}`,
      'content-type': 'application/x-www-form-urlencoded',
    },
    body: new URLSearchParams({ grant_type: 'client_credentials', resource, scope }).toString(),
  });
  const body = await res.json();
  if (!res.ok) throw new Error(`token endpoint: ${JSON.stringify(body)}`);
  return body.access_token;
}

export const USERS = {
  alice: { email: 'alice@example.com', email_verified: true, name: 'Alice Example', groups: ['staff', 'admins'] },
  bob: { email: 'bob@example.com', email_verified: true, name: 'Bob Example', groups: ['staff'] },
  // Registered someone else's address at a provider that did not verify it.
  mallory: { email: 'victim@corp.example', email_verified: false, name: 'Mallory', groups: ['staff'] },
};

/** A fresh RSA signing key as a private JWK with a kid. */
export function makeSigningKey(kid = `k-${crypto.randomBytes(6).toString('hex')}`) {
  const { privateKey } = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
  return { ...privateKey.export({ format: 'jwk' }), kid, use: 'sig', alg: 'RS256' };
}

/** The public part of a JWK (what a client registers): no private members. */
export function publicJwk(jwk) {
  const pub = crypto.createPublicKey({ key: jwk, format: 'jwk' }).export({ format: 'jwk' });
  for (const k of ['kid', 'alg', 'use', 'x5c', 'x5t', 'x5t#S256']) if (jwk[k] !== undefined) pub[k] = jwk[k];
  return pub;
}

// The endpoints at which a client authenticates (oidc-provider's route names).
const CLIENT_AUTH_ROUTES = new Set(['token', 'pushed_authorization_request', 'revocation', 'introspection', 'device_authorization', 'backchannel_authentication']);

/**
 * Records every request the provider serves, in order, as
 * `{ method, path, route, query, body, status, clientId, grantType, authMethod, assertion, error }`:
 * `route` is oidc-provider's name for the endpoint ('authorization', 'resume',
 * 'pushed_authorization_request', 'token', 'discovery', 'jwks', ...; undefined for the
 * interaction pages); `query` the names of the query parameters (what a browser carried to
 * the authorization endpoint); `body` the names of the form parameters posted to an
 * endpoint (names only: never values); `clientId` the client the request named; `authMethod`, at
 * the endpoints where clients authenticate and only when that succeeded, the method used
 * (the registered one: oidc-provider refuses any other); `assertion`, when the request had a
 * client_assertion, its decoded `{ header, payload }` (whether or not it was accepted);
 * `grantType` the token request's grant_type; `error` the OAuth error of a refused one.
 */
export function logRequests(provider) {
  const requests = [];
  provider.use(async (ctx, next) => {
    const entry = { method: ctx.method, path: ctx.path, query: Object.keys(ctx.query) };
    requests.push(entry);
    try {
      await next();
    } finally {
      const oidc = ctx.oidc;
      entry.status = ctx.status;
      entry.route = oidc?.route;
      const params = oidc?.params ?? {};
      entry.clientId = oidc?.client?.clientId ?? params.client_id;
      if (params.grant_type) entry.grantType = params.grant_type;
      // The body as posted: at the PAR endpoint `params` no longer has the auth parameters.
      const assertion = oidc?.body?.client_assertion ?? params.client_assertion;
      if (typeof assertion === 'string') entry.assertion = decodeJwt(assertion);
      if (oidc?.body && typeof oidc.body === 'object') entry.body = Object.keys(oidc.body);
      if (oidc?.client && CLIENT_AUTH_ROUTES.has(entry.route) && ctx.status < 400) entry.authMethod = oidc.client.clientAuthMethod;
      if (ctx.status >= 400 && ctx.body && typeof ctx.body === 'object' && ctx.body.error) entry.error = ctx.body.error;
    }
  });
  return requests;
}

function decodeJwt(jwt) {
  const [h, p] = jwt.split('.');
  try {
    return { header: JSON.parse(Buffer.from(h, 'base64url')), payload: JSON.parse(Buffer.from(p, 'base64url')) };
  } catch {
    return { malformed: true };
  }
}

/**
 * Starts the provider. `keys`: private JWKs, the first one signs. `workerOrigins`: origins of
 * the worker(s) allowed as redirect targets; the first one also gets back-channel logout
 * tokens. `accessTokenTTL`: seconds (short ones make refreshes happen inside a test).
 * `padBytes`: a claim of that many bytes in every ID token (Entra-sized tokens).
 * Refresh tokens are issued at every sign-in, as Entra ID does with offline_access, and
 * rotated at every refresh; reusing a spent one is refused (and revokes the grant).
 *
 * Client authentication: `tokenAuthMethod` is the client's token_endpoint_auth_method
 * (client_secret_basic unless told). With 'private_key_jwt' the client has no secret and
 * `clientJwks` (JWKs, an array or a `{ keys }` set; private members are dropped, so the
 * client's private JWK will do) verifies its assertions; `clientAuthAlg` pins the one alg
 * accepted (token_endpoint_auth_signing_alg), otherwise any asymmetric one.
 * Pushed authorization requests (RFC 9126): oidc-provider enables them by default (the
 * endpoint is in discovery, not required), and that stays so unless `par` is given:
 * `par: { required: true }` also requires them (require_pushed_authorization_requests in
 * discovery, plain authorization requests refused), `par: { required: false }` is the
 * default made explicit, `par: false` removes the endpoint.
 * The answer's `requests` lists every request the provider served, see `logRequests`.
 *
 * How people sign in (for step-up): a login answers `acr_values` containing `mfa` with
 * `acr: 'mfa'` and `amr: ['pwd', 'otp']` (as if a second factor was asked), anything else with
 * `acr: 'pwd'`; `idp.settings.honourAcr = false` makes every login `pwd` (a provider that
 * ignores acr_values). A session whose acr is not among those asked signs in again, as does one
 * older than `max_age` (oidc-provider's own check). `idp.settings.loginAge` (seconds) makes
 * the next logins look that long ago (`auth_time`), as if the person signed in earlier.
 * `middleware`: Koa middleware `(ctx, next)` put in front of the provider's own routes
 * (a provider that misbehaves in one way).
 */
export async function startIdp({ port, keys = [makeSigningKey()], workerOrigins, clientId = DEMO_CLIENT_ID, clientSecret = DEMO_CLIENT_SECRET, tokenAuthMethod = 'client_secret_basic', clientJwks, clientAuthAlg, par, apiResource, accessTokenTTL = 3600, padBytes = 0, callbackIds = [], middleware = [] }) {
  const issuer = `http://127.0.0.1:${port}`;
  const keyBased = tokenAuthMethod === 'private_key_jwt';
  if (keyBased && !clientJwks) throw new Error('private_key_jwt needs clientJwks');
  const clientAuth = {
    ...(keyBased ? {} : { client_secret: clientSecret }),
    ...(clientJwks ? { jwks: { keys: (Array.isArray(clientJwks) ? clientJwks : clientJwks.keys).map(publicJwk) } } : {}),
    ...(clientAuthAlg ? { token_endpoint_auth_signing_alg: clientAuthAlg } : {}),
  };
  const parFeature = par === undefined ? {} : {
    pushedAuthorizationRequests: par === false
      ? { enabled: false }
      : { enabled: true, requirePushedAuthorizationRequests: Boolean(par.required) },
  };
  // With `apiResource`, a second client gets RFC 9068 JWT access tokens for that API through
  // client credentials (API_CLIENT_ID / API_CLIENT_SECRET), scopes data.read and data.write.
  const apiClients = apiResource ? [{
    client_id: API_CLIENT_ID,
    client_secret: API_CLIENT_SECRET,
    grant_types: ['client_credentials'],
    response_types: [],
    redirect_uris: [],
    token_endpoint_auth_method: 'client_secret_basic',
  }] : [];
  const apiFeatures = apiResource ? {
    clientCredentials: { enabled: true },
    resourceIndicators: {
      enabled: true,
      defaultResource: () => apiResource,
      useGrantedResource: () => true,
      getResourceServerInfo: (ctx, resource) => {
        if (resource !== apiResource) throw new Error('unknown resource');
        return { scope: 'data.read data.write', accessTokenFormat: 'jwt', accessTokenTTL: 600, jwt: { sign: { alg: 'RS256' } } };
      },
    },
  } : {};
  const settings = { honourAcr: true, loginAge: 0 };
  // A session signed in with another acr than the one asked for signs in again.
  const policy = interactionPolicy.base();
  policy.get('login').checks.add(new interactionPolicy.Check('acr_values_unmet', 'the acr asked for is not that of the session', (ctx) => {
    const asked = ctx.oidc.params.acr_values?.split(' ');
    return settings.honourAcr && asked !== undefined && !asked.includes(ctx.oidc.session.acr)
      ? interactionPolicy.Check.REQUEST_PROMPT : interactionPolicy.Check.NO_NEED_TO_PROMPT;
  }));
  const provider = new Provider(issuer, {
    clients: [...apiClients, {
      client_id: clientId,
      ...clientAuth,
      // A worker with PROVIDERS has a redirect URI per provider: /auth/callback/<id>.
      redirect_uris: workerOrigins.flatMap((o) => [`${o}/auth/callback`, ...callbackIds.map((id) => `${o}/auth/callback/${id}`)]),
      post_logout_redirect_uris: workerOrigins.map((o) => `${o}/auth/logged-out`),
      backchannel_logout_uri: `${workerOrigins[0]}/auth/backchannel-logout`,
      backchannel_logout_session_required: true,
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
      token_endpoint_auth_method: tokenAuthMethod,
    }],
    pkce: { required: () => true, methods: ['S256'] },
    jwks: { keys },
    cookies: { keys: [crypto.randomBytes(16).toString('hex')] },
    interactions: { policy },
    acrValues: ['pwd', 'mfa'],
    claims: {
      acr: null,
      amr: null,
      auth_time: null,
      sid: null,
      iss: null,
      openid: ['sub'],
      email: ['email', 'email_verified'],
      profile: ['name', 'groups', 'pad'],
    },
    ttl: { AccessToken: accessTokenTTL, RefreshToken: 86400 },
    issueRefreshToken: async (ctx, client) => client.grantTypeAllowed('refresh_token'),
    rotateRefreshToken: true,
    // Put the scope's claims in the ID token itself (the gate reads them from there).
    conformIdTokenClaims: false,
    features: {
      devInteractions: { enabled: true },
      rpInitiatedLogout: { enabled: true },
      revocation: { enabled: true },
      backchannelLogout: { enabled: true },
      ...parFeature,
      ...apiFeatures,
    },
    findAccount: (ctx, id) => ({
      accountId: id,
      claims: () => ({
        sub: id,
        ...(USERS[id] ?? { email: `${id}@example.com`, email_verified: true, name: id }),
        ...(padBytes ? { pad: 'p'.repeat(padBytes) } : {}),
      }),
    }),
  });
  provider.proxy = false;
  // Every login of the development interactions goes through here: acr, amr and its time.
  const finished = provider.interactionFinished.bind(provider);
  provider.interactionFinished = async (req, res, result, options) => {
    if (result.login) {
      const { params } = await provider.interactionDetails(req, res);
      const mfa = settings.honourAcr && (params.acr_values ?? '').split(' ').includes('mfa');
      result.login.acr = mfa ? 'mfa' : 'pwd';
      result.login.amr = mfa ? ['pwd', 'otp'] : ['pwd'];
      result.login.ts = Math.floor(Date.now() / 1000) - settings.loginAge;
    }
    return finished(req, res, result, options);
  };
  const requests = logRequests(provider);
  for (const m of middleware) provider.use(m);
  const server = http.createServer(provider.callback());
  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', resolve);
  });
  // Every token the provider has refused, to tell a refused reuse from other errors.
  const events = [];
  provider.on('grant.error', (ctx, err) => events.push({ event: 'grant.error', error: err.error, description: err.error_description }));
  provider.on('backchannel.success', (client) => events.push({ event: 'backchannel.success', client: client.clientId }));
  provider.on('backchannel.error', (client, err) => events.push({ event: 'backchannel.error', error: err.message }));
  provider.on('grant.revoked', () => events.push({ event: 'grant.revoked' }));
  provider.on('pushed_authorization_request.success', (ctx, client) => events.push({ event: 'pushed_authorization_request.success', client: client.clientId, authMethod: client.clientAuthMethod }));
  provider.on('pushed_authorization_request.error', (ctx, err) => events.push({ event: 'pushed_authorization_request.error', error: err.error, description: err.error_description }));
  return {
    issuer,
    provider,
    settings,
    events,
    requests,
    close: () => new Promise((resolve) => { server.closeAllConnections?.(); server.close(() => resolve()); }),
  };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const { values } = parseArgs({ options: { port: { type: 'string', default: '9090' }, redirect: { type: 'string', multiple: true }, 'callback-id': { type: 'string', multiple: true } } });
  const origins = values.redirect ?? ['http://127.0.0.1:8787', 'http://localhost:8787'];
  // --callback-id ID: the worker lists this provider as ID in PROVIDERS (redirect URI /auth/callback/ID).
  const idp = await startIdp({ port: Number(values.port), workerOrigins: origins, callbackIds: values['callback-id'] ?? [] });
  console.log(`OpenID Provider at ${idp.issuer} (users: ${Object.keys(USERS).join(', ')}; any password)`);
  const stop = async () => { await idp.close(); process.exit(0); };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
}
