// Makes the client's key for private_key_jwt (OIDC_TOKEN_AUTH_METHOD = private_key_jwt): an RSA
// 2048 key pair and a self-signed X.509 certificate for it (openssl), as for Microsoft Entra ID.
//   node scripts/client-key.mjs [--kid NAME] [--alg RS256|PS256] [--days N] [--out DIR] [--force]
// Writes cert.pem (into DIR, or the current directory) to upload to the app registration:
// "Certificates & secrets" -> "Certificates" -> "Upload certificate". Prints the private key,
// as the JWK that OIDC_CLIENT_KEY takes (kid, alg, x5t#S256), on stdout and nowhere else:
//   node scripts/client-key.mjs | npx wrangler secret put OIDC_CLIENT_KEY
// With --out, the key is also kept there, readable by you alone (client-key.json, key.pem).
// Everything else (where the certificate is, its thumbprints, what to do next) goes to stderr.
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { parseArgs } from 'node:util';

const USAGE = 'usage: node scripts/client-key.mjs [--kid NAME] [--alg RS256|PS256] [--days N] [--subject /CN=NAME] [--out DIR] [--force]';

function fail(message) {
  process.stderr.write(`client-key: ${message}\n`);
  process.exit(1);
}

let values;
try {
  ({ values } = parseArgs({
    options: {
      kid: { type: 'string' },
      alg: { type: 'string', default: 'RS256' },
      days: { type: 'string', default: '730' },
      subject: { type: 'string', default: '/CN=portcullis' },
      out: { type: 'string' },
      force: { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
  }));
} catch (err) {
  fail(`${err.message}\n${USAGE}`);
}
if (values.help) {
  process.stderr.write(`${USAGE}\n`);
  process.exit(0);
}
if (!['RS256', 'PS256'].includes(values.alg)) fail(`--alg must be RS256 or PS256, not ${values.alg}`);
if (!/^[1-9][0-9]{0,4}$/.test(values.days)) fail(`--days must be a number of days, not ${values.days}`);
if (values.kid !== undefined && !/^[\x21-\x7e]{1,128}$/.test(values.kid)) fail('--kid must be 1 to 128 printable characters, no spaces');

// openssl must be there before anything is made.
const version = spawnSync('openssl', ['version'], { encoding: 'utf8' });
if (version.error || version.status !== 0) {
  fail(version.error?.code === 'ENOENT'
    ? 'openssl is not installed or not on PATH; it makes the certificate (node cannot).\n'
      + '  Debian/Ubuntu: sudo apt-get install openssl   macOS: brew install openssl   Windows: use Git Bash or WSL'
    : `openssl does not run: ${version.error?.message ?? version.stderr.trim()}`);
}

const outDir = path.resolve(values.out ?? '.');
const certPath = path.join(outDir, 'cert.pem');
const keyJsonPath = path.join(outDir, 'client-key.json');
const keyPemPath = path.join(outDir, 'key.pem');
const writing = values.out ? [certPath, keyJsonPath, keyPemPath] : [certPath];
if (values.out) {
  try {
    fs.mkdirSync(outDir, { recursive: true, mode: 0o700 });
  } catch (err) {
    fail(`cannot create ${outDir}: ${err.message}`);
  }
}
if (!values.force) {
  const existing = writing.filter((p) => fs.existsSync(p));
  if (existing.length) fail(`${existing.join(', ')} would be overwritten; move it away or pass --force`);
}

const { privateKey } = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
const keyPem = privateKey.export({ format: 'pem', type: 'pkcs8' });

// openssl reads the key from a file in a private temporary directory, removed afterwards.
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'portcullis-client-key-'));
let certPem;
let opensslError;
try {
  const tmpKey = path.join(tmp, 'key.pem');
  fs.writeFileSync(tmpKey, keyPem, { mode: 0o600 });
  const tmpCert = path.join(tmp, 'cert.pem');
  // Our own minimal configuration: the same certificate wherever openssl.cnf is (or is not).
  const tmpConf = path.join(tmp, 'openssl.cnf');
  fs.writeFileSync(tmpConf, [
    '[req]', 'distinguished_name = dn', 'x509_extensions = ext', 'prompt = no',
    '[dn]', 'CN = portcullis',
    '[ext]', 'basicConstraints = critical, CA:FALSE', 'keyUsage = critical, digitalSignature',
    'subjectKeyIdentifier = hash', '',
  ].join('\n'));
  const req = spawnSync('openssl', ['req', '-x509', '-new', '-config', tmpConf, '-key', tmpKey, '-sha256',
    '-days', values.days, '-subj', values.subject, '-out', tmpCert], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  if (req.error || req.status !== 0) opensslError = req.error?.message ?? req.stderr.trim();
  else certPem = fs.readFileSync(tmpCert, 'utf8');
} finally {
  fs.rmSync(tmp, { recursive: true, force: true });
}
if (opensslError !== undefined) fail(`openssl could not make the certificate:\n${opensslError}`);

const cert = new crypto.X509Certificate(certPem);
if (!cert.publicKey.equals(crypto.createPublicKey(privateKey))) fail('the certificate openssl made is not for this key');
const der = cert.raw;
const x5tS256 = crypto.createHash('sha256').update(der).digest('base64url');
const sha1Hex = crypto.createHash('sha1').update(der).digest('hex').toUpperCase();

const kid = values.kid ?? `portcullis-${new Date().toISOString().slice(0, 10)}-${crypto.randomBytes(3).toString('hex')}`;
const jwk = { ...privateKey.export({ format: 'jwk' }), kid, alg: values.alg, use: 'sig', 'x5t#S256': x5tS256 };
const jwkJson = JSON.stringify(jwk);

fs.writeFileSync(certPath, certPem, { mode: 0o644 });
if (values.out) {
  for (const [file, data] of [[keyJsonPath, `${jwkJson}\n`], [keyPemPath, keyPem]]) {
    fs.writeFileSync(file, data, { mode: 0o600 });
    fs.chmodSync(file, 0o600); // also when --force replaced a file with wider permissions
  }
}

process.stdout.write(process.stdout.isTTY ? `${jwkJson}\n` : jwkJson);

const info = [
  '',
  `Certificate: ${certPath} (subject ${cert.subject.replace(/\n/g, ', ')}, valid until ${cert.validTo})`,
  `  SHA-1 thumbprint (what the Entra portal lists): ${sha1Hex}`,
  `  x5t#S256: ${x5tS256}`,
  `Key id (kid): ${kid}, alg ${values.alg}`,
  ...(values.out ? [`Private key kept in ${keyJsonPath} (the JWK) and ${keyPemPath} (PEM), mode 0600.`] : []),
  '',
  'Next:',
  `  1. Upload ${path.relative(process.cwd(), certPath) || certPath} to the app registration: Certificates & secrets -> Certificates -> Upload certificate.`,
  '  2. Give the worker the private JWK (the JSON on stdout) as a secret:',
  values.out
    ? `       npx wrangler secret put OIDC_CLIENT_KEY < ${path.relative(process.cwd(), keyJsonPath) || keyJsonPath}`
    : (process.stdout.isTTY
      ? '       npx wrangler secret put OIDC_CLIENT_KEY      (paste the JSON line above when asked)'
      : '       npx wrangler secret put OIDC_CLIENT_KEY      (if you did not pipe this output into it)'),
  '  3. Set OIDC_TOKEN_AUTH_METHOD = "private_key_jwt" in wrangler.toml [vars]. OIDC_CLIENT_SECRET is then',
  '     unused: once sign-in works, delete it (npx wrangler secret delete OIDC_CLIENT_SECRET) and the secret in Entra.',
  '',
];
process.stderr.write(`${info.join('\n')}\n`);
