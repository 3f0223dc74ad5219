// A static token issuer on loopback shaped like Microsoft Entra ID: discovery, a JWKS with an
// RSA and an EC key, and tokens minted here (typ JWT, scp string, roles array).
import http from 'node:http';
import crypto from 'node:crypto';

const b64url = (buf) => Buffer.from(buf).toString('base64url');

export async function startStaticIssuer({ port, tenant = '11111111-2222-3333-4444-555555555555' }) {
  const issuer = `http://127.0.0.1:${port}/${tenant}/v2.0`;
  const rsa = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
  const ec = crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const jwks = {
    keys: [
      { ...rsa.publicKey.export({ format: 'jwk' }), kid: 'entra-rsa', use: 'sig' },
      { ...ec.publicKey.export({ format: 'jwk' }), kid: 'entra-ec', use: 'sig', alg: 'ES256' },
    ],
  };
  const server = http.createServer((req, res) => {
    const json = (v) => { res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'max-age=3600' }); res.end(JSON.stringify(v)); };
    if (req.url === `/${tenant}/v2.0/.well-known/openid-configuration`) {
      return json({
        issuer,
        authorization_endpoint: `http://127.0.0.1:${port}/${tenant}/oauth2/v2.0/authorize`,
        token_endpoint: `http://127.0.0.1:${port}/${tenant}/oauth2/v2.0/token`,
        jwks_uri: `http://127.0.0.1:${port}/${tenant}/discovery/v2.0/keys`,
      });
    }
    if (req.url === `/${tenant}/discovery/v2.0/keys`) return json(jwks);
    res.writeHead(404); res.end();
  });
  await new Promise((r) => server.listen(port, '127.0.0.1', r));

  /** Signs `claims` (defaults merged in) with the RSA key unless `alg` says otherwise. */
  function mint(claims = {}, { alg = 'RS256', typ = 'JWT', kid } = {}) {
    const now = Math.floor(Date.now() / 1000);
    // Entra always sends sub and oid; pass `sub: undefined` for a token without one.
    const body = { iss: issuer, tid: tenant, sub: 'entra-sub-1', oid: '00000000-0000-0000-0000-00000000000a', iat: now, nbf: now, exp: now + 3600, ver: '2.0', ...claims };
    const header = { alg, typ, kid: kid ?? (alg === 'ES256' ? 'entra-ec' : 'entra-rsa') };
    const input = `${b64url(JSON.stringify(header))}.${b64url(JSON.stringify(body))}`;
    let sig;
    if (alg === 'RS256') sig = crypto.sign('sha256', Buffer.from(input), rsa.privateKey);
    else if (alg === 'ES256') sig = crypto.sign('sha256', Buffer.from(input), { key: ec.privateKey, dsaEncoding: 'ieee-p1363' });
    else if (alg === 'HS256') sig = crypto.createHmac('sha256', rsa.publicKey.export({ format: 'pem', type: 'spki' })).update(input).digest();
    else if (alg === 'none') sig = Buffer.alloc(0);
    return `${input}.${b64url(sig)}`;
  }

  return { issuer, tenant, mint, close: () => new Promise((r) => { server.closeAllConnections?.(); server.close(() => r()); }) };
}
