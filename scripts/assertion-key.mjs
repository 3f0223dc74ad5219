// Prints a fresh private signing key (EC P-256, ES256) as a JWK, for ASSERTION_SIGNING_KEYS:
//   node scripts/assertion-key.mjs | npx wrangler secret put ASSERTION_SIGNING_KEYS
// To rotate, put a JSON array [new, old]: the first signs, both are published.
import crypto from 'node:crypto';

const { privateKey } = crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' });
const jwk = privateKey.export({ format: 'jwk' });
jwk.kid = `portcullis-${new Date().toISOString().slice(0, 10)}-${crypto.randomBytes(3).toString('hex')}`;
jwk.alg = 'ES256';
jwk.use = 'sig';
process.stdout.write(JSON.stringify(jwk));
