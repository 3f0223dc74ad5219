// A real OpenID Provider (panva's oidc-provider, OpenID Certified) on 127.0.0.1, for the
// demo and the end-to-end tests. Run directly for the demo:
//   node tests/support/idp.mjs --port 9090 --redirect http://127.0.0.1:8787
import http from 'node:http';
import crypto from 'node:crypto';
import { parseArgs } from 'node:util';
import Provider from 'oidc-provider';

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
};

/** A fresh RSA signing key as a private JWK with a kid. */
export function makeSigningKey(kid = `k-${crypto.randomBytes(6).toString('hex')}`) {
  const { privateKey } = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
  return { ...privateKey.export({ format: 'jwk' }), kid, use: 'sig', alg: 'RS256' };
}

/**
 * Starts the provider. `keys`: private JWKs, the first one signs. `workerOrigins`: origins of
 * the worker(s) allowed as redirect targets.
 */
export async function startIdp({ port, keys = [makeSigningKey()], workerOrigins, clientId = DEMO_CLIENT_ID, clientSecret = DEMO_CLIENT_SECRET, tokenAuthMethod = 'client_secret_basic', apiResource }) {
  const issuer = `http://127.0.0.1:${port}`;
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
  const provider = new Provider(issuer, {
    clients: [...apiClients, {
      client_id: clientId,
      client_secret: clientSecret,
      redirect_uris: workerOrigins.map((o) => `${o}/auth/callback`),
      post_logout_redirect_uris: workerOrigins.map((o) => `${o}/auth/logged-out`),
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
      token_endpoint_auth_method: tokenAuthMethod,
    }],
    pkce: { required: () => true, methods: ['S256'] },
    jwks: { keys },
    cookies: { keys: [crypto.randomBytes(16).toString('hex')] },
    claims: {
      openid: ['sub'],
      email: ['email', 'email_verified'],
      profile: ['name', 'groups'],
    },
    // Put the scope's claims in the ID token itself (the gate reads them from there).
    conformIdTokenClaims: false,
    features: {
      devInteractions: { enabled: true },
      rpInitiatedLogout: { enabled: true },
      ...apiFeatures,
    },
    findAccount: (ctx, id) => ({
      accountId: id,
      claims: () => ({ sub: id, ...(USERS[id] ?? { email: `${id}@example.com`, email_verified: true, name: id }) }),
    }),
  });
  provider.proxy = false;
  const server = http.createServer(provider.callback());
  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', resolve);
  });
  return {
    issuer,
    provider,
    close: () => new Promise((resolve) => { server.closeAllConnections?.(); server.close(() => resolve()); }),
  };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const { values } = parseArgs({ options: { port: { type: 'string', default: '9090' }, redirect: { type: 'string', multiple: true } } });
  const origins = values.redirect ?? ['http://127.0.0.1:8787', 'http://localhost:8787'];
  const idp = await startIdp({ port: Number(values.port), workerOrigins: origins });
  console.log(`OpenID Provider at ${idp.issuer} (users: ${Object.keys(USERS).join(', ')}; any password)`);
  const stop = async () => { await idp.close(); process.exit(0); };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
}
