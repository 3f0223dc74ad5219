// End-to-end harness: free loopback ports, the built worker under `wrangler dev` (workerd),
// and an HTTP agent with a cookie jar that signs in through oidc-provider's forms.
import net from 'node:net';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { DEMO_CLIENT_ID, DEMO_CLIENT_SECRET } from './idp.mjs';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

export function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

/** A private ES256 JWK for the signed identity assertion (ASSERTION_SIGNING_KEYS). */
export function assertionKey(kid) {
  const { privateKey } = crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' });
  return { ...privateKey.export({ format: 'jwk' }), kid, alg: 'ES256', use: 'sig' };
}

export const TEST_COOKIE_SECRET = Buffer.alloc(32, 7).toString('base64');

/** The worker variables for the test provider's demo client, plus `extra`. */
export function clientVars(issuer, extra = {}) {
  return {
    OIDC_ISSUER: issuer,
    OIDC_CLIENT_ID: DEMO_CLIENT_ID,
    OIDC_CLIENT_SECRET: DEMO_CLIENT_SECRET,
    COOKIE_SECRET: TEST_COOKIE_SECRET,
    ...extra,
  };
}

/**
 * A second Worker for `UPSTREAM = "service:APP"`: it answers every request with JSON saying
 * what it received (method, URL, headers, body), as an app behind the gate would see it.
 */
const ECHO_WORKER = `export default {
  async fetch(request) {
    const body = ['GET', 'HEAD'].includes(request.method) ? '' : await request.text();
    return Response.json({ worker: 'app', method: request.method, url: request.url,
      headers: Object.fromEntries(request.headers), body },
      { headers: { 'cache-control': 'public, max-age=600' } });
  },
};
`;

/**
 * Runs build/index.js (already built) in workerd through `wrangler dev`, with its own port,
 * inspector port and state directory. `vars` become worker variables. `serviceApp`: a second
 * Worker (ECHO_WORKER) runs in the same workerd, bound to the gate as the service `APP`.
 */
export async function startWorker(options) {
  // wrangler and workerd pick some loopback ports of their own, and several workers starting at
  // once can pick the same one: such a start is tried again.
  for (let attempt = 1; ; attempt++) {
    try {
      return await startWorkerOnce(options);
    } catch (e) {
      if (attempt >= 3 || !/Address already in use/.test(String(e.message))) throw e;
    }
  }
}

/** Every wrangler process group started and not stopped yet: none outlives the test file. */
const running = new Set();
/** The output of each running worker, by origin: a request that gets no answer shows it. */
const outputs = new Map();
/** How long an agent's request may go unanswered: far beyond any answer's real time. */
const REQUEST_TIMEOUT_MS = 30_000;
process.on('exit', () => { for (const child of running) stopGroup(child); });

async function startWorkerOnce({ port, vars, assets = path.join(ROOT, 'public'), serviceApp = false }) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'portcullis-e2e-'));
  const config = path.join(dir, 'wrangler.toml');
  const appConfig = path.join(dir, 'app.toml');
  if (serviceApp) {
    fs.writeFileSync(path.join(dir, 'app.mjs'), ECHO_WORKER);
    fs.writeFileSync(appConfig, ['name = "portcullis-e2e-app"', `main = ${JSON.stringify(path.join(dir, 'app.mjs'))}`,
      'compatibility_date = "2026-04-01"', ''].join('\n'));
  }
  fs.writeFileSync(config, [
    'name = "portcullis-e2e"',
    `main = ${JSON.stringify(path.join(ROOT, 'build/index.js'))}`,
    'compatibility_date = "2026-04-01"',
    '[assets]',
    `directory = ${JSON.stringify(assets)}`,
    'binding = "ASSETS"',
    'run_worker_first = true',
    '[[kv_namespaces]]',
    'binding = "JWKS_CACHE"',
    'id = "e2e"',
    '[[durable_objects.bindings]]',
    'name = "SESSIONS"',
    'class_name = "SessionObject"',
    '[[migrations]]',
    'tag = "v1"',
    'new_sqlite_classes = ["SessionObject"]',
    ...(serviceApp ? ['[[services]]', 'binding = "APP"', 'service = "portcullis-e2e-app"'] : []),
    '',
  ].join('\n'));
  const inspector = await freePort();
  const args = ['wrangler', 'dev', '-c', config, '--ip', '127.0.0.1', '--port', String(port),
    '--inspector-port', String(inspector), '--persist-to', path.join(dir, 'state'), '--log-level', 'log',
    '--show-interactive-dev-session=false'];
  // Several configurations: one workerd runs them all, the first is the one on `port`.
  if (serviceApp) args.splice(4, 0, '-c', appConfig);
  for (const [k, v] of Object.entries(vars)) args.push('--var', `${k}:${v}`);
  const child = spawn('npx', args, {
    cwd: ROOT, detached: true, stdio: ['ignore', 'pipe', 'pipe'],
    // Each worker has a dev registry of its own: all are named alike, and none binds another.
    env: { ...process.env, WRANGLER_SEND_METRICS: 'false', NO_COLOR: '1', CI: '1', WRANGLER_REGISTRY_PATH: path.join(dir, 'registry'),
      // Nothing edits the configuration while a test runs: no watcher that could reload it.
      WRANGLER_CI_DISABLE_CONFIG_WATCHING: 'true',
      // No request for a real `request.cf` to workers.cloudflare.com: nothing leaves loopback.
      CLOUDFLARE_CF_FETCH_ENABLED: 'false' },
  });
  // A worker a failed setup never got to stop must not keep the test file's process alive: the
  // process ends when its tests do, and its exit stops the group.
  running.add(child);
  child.unref();
  child.stdout.unref();
  child.stderr.unref();
  let output = '';
  child.stdout.on('data', (d) => { output += d; });
  child.stderr.on('data', (d) => { output += d; });
  const origin = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 60_000;
  for (;;) {
    if (child.exitCode !== null) {
      stopGroup(child);
      fs.rmSync(dir, { recursive: true, force: true });
      throw new Error(`wrangler dev exited early:\n${output}`);
    }
    try {
      await fetch(`${origin}/auth/userinfo`, { signal: AbortSignal.timeout(2000) });
      break;
    } catch {
      if (Date.now() > deadline) { stopGroup(child); throw new Error(`wrangler dev did not start:\n${output}`); }
      await new Promise((r) => setTimeout(r, 250));
    }
  }
  outputs.set(origin, () => output);
  return {
    origin,
    logs: () => output,
    /** Waits until the worker's output matches `re` (logs reach wrangler's stdout a little later). */
    waitForLog: async (re, timeoutMs = 5000) => {
      const until = Date.now() + timeoutMs;
      while (!re.test(output)) {
        if (Date.now() > until) throw new Error(`no log line matching ${re} in:\n${output.slice(-2000)}`);
        await new Promise((r) => setTimeout(r, 50));
      }
    },
    stop: async () => { outputs.delete(origin); stopGroup(child); await new Promise((r) => setTimeout(r, 200)); fs.rmSync(dir, { recursive: true, force: true }); },
  };
}

function stopGroup(child) {
  running.delete(child);
  try { process.kill(-child.pid, 'SIGTERM'); } catch { /* already gone */ }
}

class Unanswered extends Error {}

/** A minimal browser: cookie jar per origin, manual redirects, form posts. */
export class Agent {
  constructor() { this.jars = new Map(); }

  jar(origin) {
    if (!this.jars.has(origin)) this.jars.set(origin, new Map());
    return this.jars.get(origin);
  }

  cookieHeader(url) {
    const jar = this.jar(new URL(url).origin);
    return [...jar].map(([k, v]) => `${k}=${v}`).join('; ');
  }

  cookie(origin, name) { return this.jar(origin).get(name); }

  setCookie(origin, name, value) { this.jar(origin).set(name, value); }

  storeCookies(url, res) {
    const jar = this.jar(new URL(url).origin);
    for (const line of res.headers.getSetCookie()) {
      const [pair, ...attrs] = line.split(';');
      const eq = pair.indexOf('=');
      const name = pair.slice(0, eq).trim();
      const value = pair.slice(eq + 1).trim();
      const expired = attrs.some((a) => /^\s*max-age=0\s*$/i.test(a));
      if (expired || value === '') jar.delete(name); else jar.set(name, value);
    }
  }

  async request(url, opts = {}) {
    const method = opts.method ?? 'GET';
    try {
      return await this.requestOnce(url, opts);
    } catch (e) {
      if (!(e instanceof Unanswered) || !['GET', 'HEAD'].includes(method)) throw e;
      // wrangler dev's local proxy sometimes leaves a request unanswered (see the README's
      // "The two commands"; its ProxyWorker also parks a GET that failed during a reload until
      // another request comes): asking again is such a request. Said in the output, never
      // silent; a request that hangs twice fails the test.
      console.error(`${e.message}\nasking once more`);
      return this.requestOnce(url, opts);
    }
  }

  async requestOnce(url, { method = 'GET', headers = {}, body, html = true } = {}) {
    const h = { ...headers };
    if (html && !h.accept) h.accept = 'text/html,application/xhtml+xml';
    const cookie = this.cookieHeader(url);
    if (cookie) h.cookie = cookie;
    const signal = AbortSignal.timeout(REQUEST_TIMEOUT_MS);
    try {
      const res = await fetch(url, { method, headers: h, body, redirect: 'manual', signal });
      this.storeCookies(url, res);
      res.text_ = await res.text();
      return res;
    } catch (e) {
      if (!signal.aborted) throw e;
      // Which request hung, and what the worker serving it said last.
      const output = outputs.get(new URL(url).origin)?.() ?? '(not a worker of this file)';
      throw new Unanswered(`${method} ${url}: no answer in ${REQUEST_TIMEOUT_MS / 1000} s; the server's output ends:\n${output.slice(-3000)}`);
    }
  }

  /** Follows redirects (any origin) until a non-redirect answer; returns [response, url]. */
  async follow(url, opts = {}) {
    let current = url;
    let res = await this.request(current, opts);
    for (let i = 0; i < 20 && res.status >= 300 && res.status < 400; i++) {
      current = new URL(res.headers.get('location'), current).toString();
      res = await this.request(current);
    }
    return [res, current];
  }

  /**
   * From `startUrl` through the provider's login and consent pages. `deny` aborts at consent.
   * Returns the final response (after the callback's redirect was followed) and its URL.
   */
  async signIn(startUrl, { user = 'alice', deny = false, stopAtCallback = false } = {}) {
    let [res, url] = await this.followUntilCallback(startUrl, stopAtCallback);
    for (let i = 0; i < 6 && res && res.status === 200 && url.includes('/interaction/'); i++) {
      const action = /<form[^>]*action="([^"]+)"/.exec(res.text_)?.[1];
      if (!action) throw new Error(`no form on ${url}:\n${res.text_.slice(0, 500)}`);
      const target = new URL(action, url).toString();
      const prompt = /name="prompt" value="([^"]+)"/.exec(res.text_)?.[1];
      if (prompt === 'login') {
        [res, url] = await this.postForm(target, { prompt: 'login', login: user, password: 'any' }, stopAtCallback);
      } else if (deny) {
        const uid = /\/interaction\/([^/]+)/.exec(action)[1];
        [res, url] = await this.followUntilCallback(new URL(`/interaction/${uid}/abort`, url).toString(), stopAtCallback);
      } else {
        [res, url] = await this.postForm(target, { prompt: 'consent' }, stopAtCallback);
      }
    }
    return [res, url];
  }

  async postForm(url, fields, stopAtCallback) {
    const res = await this.request(url, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams(fields).toString() });
    if (res.status >= 300 && res.status < 400) {
      return this.followUntilCallback(new URL(res.headers.get('location'), url).toString(), stopAtCallback);
    }
    return [res, url];
  }

  /** Like follow, but can stop before requesting the worker's callback (to replay it). */
  async followUntilCallback(url, stopAtCallback) {
    let current = url;
    for (let i = 0; i < 20; i++) {
      if (stopAtCallback && /^\/auth\/callback(\/|$)/.test(new URL(current).pathname)) return [null, current];
      const res = await this.request(current);
      if (!(res.status >= 300 && res.status < 400)) return [res, current];
      current = new URL(res.headers.get('location'), current).toString();
    }
    throw new Error('too many redirects');
  }
}
