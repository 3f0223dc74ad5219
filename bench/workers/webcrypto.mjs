// Plain JS: one WebCrypto RS256 signature check per request (the imported key is cached in
// module scope), then the same pass-through as bare.mjs. No token cache: every request pays the
// verify. It decodes the claims and checks exp too, but trusts everything else.
let keyPromise;
function key(env) {
  keyPromise ??= crypto.subtle.importKey('jwk', JSON.parse(env.RS256_JWK),
    { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256' }, false, ['verify']);
  return keyPromise;
}

function b64urlBytes(s) {
  const bin = atob(s.replace(/-/g, '+').replace(/_/g, '/'));
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

const enc = new TextEncoder();
const dec = new TextDecoder();

export default {
  async fetch(req, env) {
    const auth = req.headers.get('authorization') ?? '';
    const token = auth.startsWith('Bearer ') ? auth.slice(7) : '';
    const parts = token.split('.');
    if (parts.length !== 3) return new Response('no token\n', { status: 401 });
    const ok = await crypto.subtle.verify('RSASSA-PKCS1-v1_5', await key(env),
      b64urlBytes(parts[2]), enc.encode(`${parts[0]}.${parts[1]}`));
    if (!ok) return new Response('bad signature\n', { status: 401 });
    const claims = JSON.parse(dec.decode(b64urlBytes(parts[1])));
    if (!(claims.exp > Date.now() / 1000)) return new Response('expired\n', { status: 401 });
    const u = new URL(req.url);
    return fetch(env.UPSTREAM + u.pathname + u.search, {
      method: req.method, headers: req.headers, body: req.body, redirect: 'manual',
    });
  },
};
