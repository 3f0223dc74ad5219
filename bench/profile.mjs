#!/usr/bin/env node
// Where the time of a request goes, two ways, for one scenario:
//   - a CPU profile of the built worker under load, from workerd's V8 inspector, wasm functions
//     included (by name: scripts/build.sh keeps a copy of the wasm with its name section in
//     target/profile/index_bg.wasm, used here instead of the stripped one);
//   - with --instructions, no profiler: workerd runs under valgrind's callgrind, and the figure
//     is the instructions its request thread executes per request, counted over --requests
//     after --warmup. Instructions, unlike CPU time, do not depend on what else the machine
//     is doing: portcullis's logging scenarios repeat to within a few thousand, so two builds
//     compare closely. Scenarios that write no log line (Hono, --access-log none, public) have
//     moved by up to 400,000 between runs (JIT or GC work at other times): run those several
//     times.
//
//   node bench/profile.mjs [--scenario cookie|bearer|public|bare|hono] [--seconds 5] [--top 40]
//                          [--access-log all|deny|none] [--out PATH.cpuprofile]
//                          [--upstream origin|assets]
//                          [--instructions [--requests 1000] [--warmup 1500] [--callgrind-out FILE]]
//
// Everything on free 127.0.0.1 ports, stopped at the end: a Node upstream, oidc-provider
// (tests/support/idp.mjs: one real sign-in for the cookie, client credentials for the Bearer
// token), portcullis in workerd through Miniflare with its inspector open. The worker is warmed
// up, then sampled (100 us interval) while wrk sends the scenario's request for --seconds.
// `--scenario bare` profiles bench/workers/bare.mjs (the pass-through every figure is measured
// against) with the same cookie, so the two profiles subtract; `--scenario hono` the Hono peer
// (bench/peers/build/hono.mjs, made by `make bench`) after its own sign-in.
// `--upstream assets` serves the page from Workers Static Assets (the default UPSTREAM) instead
// of the Node origin; bare is then a worker that passes each request to its ASSETS binding.
// Prints the self time of the hottest functions, and the inclusive time of the stages a
// request goes through (grouped by name below). The .cpuprofile opens in Chrome's DevTools.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import http from 'node:http';
import crypto from 'node:crypto';
import { spawn, execFileSync } from 'node:child_process';
import { parseArgs } from 'node:util';
import { Miniflare } from 'miniflare';
import workerd from 'workerd';
import WebSocket from 'ws';
import { ROOT, freePort, Agent } from '../tests/support/harness.mjs';
import { startIdp, clientCredentialsToken, DEMO_CLIENT_ID, DEMO_CLIENT_SECRET } from '../tests/support/idp.mjs';

const { values: opt } = parseArgs({
  options: {
    scenario: { type: 'string', default: 'cookie' },
    seconds: { type: 'string', default: '5' },
    top: { type: 'string', default: '40' },
    'access-log': { type: 'string', default: 'all' },
    out: { type: 'string', default: path.join(os.tmpdir(), 'portcullis.cpuprofile') },
    instructions: { type: 'boolean', default: false },
    requests: { type: 'string', default: '1000' },
    warmup: { type: 'string', default: '1500' },
    'callgrind-out': { type: 'string' },
    upstream: { type: 'string', default: 'origin' },
  },
});
const HOST = '127.0.0.1';
// The workerd binary Miniflare runs (the package is CommonJS: its path is the default export).
const workerdBinary = workerd.default ?? workerd;
const API = 'https://bench-api.example';
const BODY = '<!doctype html><title>upstream</title><p>hello from the profiling upstream</p>\n';
const cleanups = [];
const log = (m) => process.stderr.write(`[profile] ${m}\n`);

async function main() {
  const named = path.join(ROOT, 'target/profile/index_bg.wasm');
  if (!fs.existsSync(named)) throw new Error(`${named} is missing: build first (make build)`);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'portcullis-profile-'));
  cleanups.push(() => fs.rmSync(dir, { recursive: true, force: true }));
  fs.copyFileSync(path.join(ROOT, 'build/index.js'), path.join(dir, 'index.js'));
  fs.copyFileSync(named, path.join(dir, 'index_bg.wasm'));

  const upstreamPort = await freePort();
  const up = http.createServer((req, res) => {
    req.resume();
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'content-length': Buffer.byteLength(BODY) });
    res.end(BODY);
  });
  up.keepAliveTimeout = 60_000;
  await new Promise((r) => up.listen(upstreamPort, HOST, r));
  cleanups.push(() => new Promise((r) => { up.closeAllConnections(); up.close(r); }));

  const [idpPort, pcPort, inspectorPort] = await Promise.all([freePort(), freePort(), freePort()]);
  // Under callgrind, Miniflare starts workerd through a wrapper (it reads the variable when it
  // starts a process); instructions are counted only once switched on (callgrind_control), per
  // thread, so sign-in and warm-up run at valgrind's uninstrumented speed.
  const counted = opt.instructions ? callgrindWrapper(dir) : null;
  const inspector = counted ? {} : { inspectorPort, unsafeInspectorProxy: true };
  const PC = `http://${HOST}:${pcPort}`;
  for (const m of ['log', 'info', 'warn']) {
    const orig = console[m];
    console[m] = (...a) => { if (!String(a[0]).startsWith('oidc-provider ')) orig(...a); };
  }
  const idp = await startIdp({ port: idpPort, workerOrigins: [PC], apiResource: API });
  cleanups.push(() => idp.close());

  const bare = opt.scenario === 'bare';
  if (bare) fs.copyFileSync(path.join(ROOT, 'bench/workers/bare.mjs'), path.join(dir, 'bare.mjs'));
  if (!['origin', 'assets'].includes(opt.upstream)) throw new Error(`--upstream is origin or assets, not ${opt.upstream}`);
  const onAssets = opt.upstream === 'assets';
  const site = path.join(dir, 'site');
  fs.mkdirSync(site);
  fs.writeFileSync(path.join(site, 'page.html'), BODY);
  fs.writeFileSync(path.join(site, 'bench.html'), BODY);
  fs.mkdirSync(path.join(site, 'api'));
  fs.writeFileSync(path.join(site, 'api/data.html'), BODY);
  if (onAssets && opt.scenario === 'hono') throw new Error('the Hono peer forwards to an origin only');
  // As bare.mjs passes a request to an origin: its method and headers, redirects not followed.
  fs.writeFileSync(path.join(dir, 'bare-assets.mjs'), `export default {
  fetch: (req, env) => env.ASSETS.fetch(req.url, { method: req.method, headers: req.headers, redirect: 'manual' }),
};\n`);
  const assets = onAssets
    ? { assets: { directory: site, binding: 'ASSETS', routerConfig: { has_user_worker: true, invoke_user_worker_ahead_of_assets: true } } }
    : {};
  const upstream = onAssets ? 'assets' : `http://${HOST}:${upstreamPort}`;
  const mf = new Miniflare({
    name: 'portcullis',
    modules: true,
    scriptPath: path.join(dir, 'index.js'),
    modulesRoot: dir,
    modulesRules: [{ type: 'CompiledWasm', include: ['**/*.wasm'] }],
    compatibilityDate: '2026-04-01',
    host: HOST,
    port: pcPort,
    ...inspector,
    cf: false,
    logRequests: false,
    handleRuntimeStdio(stdout, stderr) { stdout.resume(); stderr.resume(); },
    kvNamespaces: ['JWKS_CACHE'],
    ...assets,
    bindings: {
      ACCESS_LOG: opt['access-log'],
      OIDC_ISSUER: idp.issuer,
      OIDC_CLIENT_ID: DEMO_CLIENT_ID,
      OIDC_CLIENT_SECRET: DEMO_CLIENT_SECRET,
      COOKIE_SECRET: crypto.randomBytes(32).toString('base64'),
      UPSTREAM: upstream,
      API_AUDIENCES: API,
      API_ISSUERS: idp.issuer,
      API_ROUTES: 'GET /api/* scope:data.read',
      ...(opt.scenario === 'public' ? { PUBLIC_PATHS: '/*' } : {}),
    },
  });
  cleanups.push(() => mf.dispose());
  await mf.ready;

  const agent = new Agent();
  // With PUBLIC_PATHS=/* only the sign-in route itself starts a sign-in.
  const start = opt.scenario === 'public' ? '/auth/login?rd=%2Fbench' : '/bench';
  const [page] = await agent.signIn(`${PC}${start}`, { user: 'alice' });
  const cookie = agent.cookie(PC, 'portcullis');
  if (!cookie || page?.status !== 200) throw new Error(`sign-in failed: ${page?.status}`);
  let header = `Cookie: portcullis=${cookie}`;
  if (bare) {
    // The same request as the cookie scenario's, through the pass-through.
    await mf.setOptions({
      name: 'portcullis', modules: true, scriptPath: path.join(dir, onAssets ? 'bare-assets.mjs' : 'bare.mjs'),
      modulesRoot: dir, compatibilityDate: '2026-04-01', host: HOST, port: pcPort, ...inspector,
      cf: false, logRequests: false, handleRuntimeStdio(o, e) { o.resume(); e.resume(); },
      ...assets,
      bindings: { UPSTREAM: `http://${HOST}:${upstreamPort}` },
    });
  }
  if (opt.scenario === 'hono') {
    // The Hono peer on the same origin, signed in through the same provider.
    const hono = path.join(ROOT, 'bench/peers/build/hono.mjs');
    if (!fs.existsSync(hono)) throw new Error(`${hono} is missing: make bench builds it`);
    fs.copyFileSync(hono, path.join(dir, 'hono.mjs'));
    await mf.setOptions({
      name: 'portcullis', modules: true, scriptPath: path.join(dir, 'hono.mjs'), modulesRoot: dir,
      compatibilityDate: '2026-04-01', host: HOST, port: pcPort, ...inspector,
      cf: false, logRequests: false, handleRuntimeStdio(o, e) { o.resume(); e.resume(); },
      bindings: {
        UPSTREAM: `http://${HOST}:${upstreamPort}`, OIDC_ISSUER: idp.issuer, OIDC_CLIENT_ID: DEMO_CLIENT_ID,
        OIDC_CLIENT_SECRET: DEMO_CLIENT_SECRET, OIDC_AUTH_SECRET: crypto.randomBytes(32).toString('base64url'),
        OIDC_REDIRECT_URI: '/auth/callback', OIDC_SCOPES: 'openid email profile', OIDC_AUTH_REFRESH_INTERVAL: '3600',
      },
    });
    const honoAgent = new Agent();
    const [honoPage] = await honoAgent.signIn(`${PC}/bench`, { user: 'alice' });
    const honoCookie = honoAgent.cookie(PC, 'oidc-auth');
    if (!honoCookie || honoPage?.status !== 200) throw new Error(`Hono sign-in failed: ${honoPage?.status}`);
    header = `Cookie: oidc-auth=${honoCookie}`;
  }
  let url = `${PC}/page`;
  if (opt.scenario === 'bearer') {
    url = `${PC}/api/data`;
    header = `Authorization: Bearer ${await clientCredentialsToken(idp.issuer, API, 'data.read')}`;
  } else if (!['cookie', 'public', 'bare', 'hono'].includes(opt.scenario)) {
    throw new Error(`--scenario is cookie, bearer, public, bare or hono, not ${opt.scenario}`);
  }
  const check = await fetch(url, { headers: Object.fromEntries([header.split(': ')]) });
  if (check.status !== 200 || (await check.text()) !== BODY) throw new Error(`${url} answered ${check.status}`);
  log(`${opt.scenario}: ${header.slice(0, 40)}... (${header.length} bytes)`);

  if (counted) {
    await count(counted, url, Object.fromEntries([header.split(': ')]));
    return;
  }
  const wrk = (seconds) => new Promise((resolve, reject) => {
    const p = spawn('wrk', ['-t1', '-c16', `-d${seconds}s`, '-H', header, url], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    p.stdout.on('data', (d) => { out += d; });
    p.on('error', reject);
    p.on('exit', () => resolve(out));
  });
  await wrk(2);

  const targets = await (await fetch(`http://${HOST}:${inspectorPort}/json`)).json();
  const target = targets.find((t) => t.title?.includes('portcullis')) ?? targets[0];
  const ws = new WebSocket(target.webSocketDebuggerUrl);
  await new Promise((resolve, reject) => { ws.once('open', resolve); ws.once('error', reject); });
  let id = 0;
  const pending = new Map();
  ws.on('message', (m) => {
    const msg = JSON.parse(m);
    if (msg.id && pending.has(msg.id)) { pending.get(msg.id)(msg); pending.delete(msg.id); }
  });
  const send = (method, params = {}) => new Promise((resolve, reject) => {
    const n = ++id;
    pending.set(n, (msg) => (msg.error ? reject(new Error(`${method}: ${msg.error.message}`)) : resolve(msg.result)));
    ws.send(JSON.stringify({ id: n, method, params }));
  });
  await send('Profiler.enable');
  await send('Profiler.setSamplingInterval', { interval: 100 });
  await send('Profiler.start');
  const out = await wrk(Number(opt.seconds));
  const { profile } = await send('Profiler.stop');
  ws.close();
  fs.writeFileSync(opt.out, JSON.stringify(profile));
  const requests = Number(/(\d+) requests in/.exec(out)?.[1] ?? 0);
  log(`wrk: ${requests} requests; ${/Requests\/sec:\s+([\d.]+)/.exec(out)?.[1]} req/s; profile in ${opt.out}`);
  report(profile, requests);
}

/** A script that runs workerd under callgrind, its output files in `dir`/callgrind. */
function callgrindWrapper(dir) {
  try {
    execFileSync('valgrind', ['--version'], { stdio: 'ignore' });
  } catch {
    throw new Error('--instructions needs valgrind (apt-get install valgrind)');
  }
  const out = path.join(dir, 'callgrind');
  fs.mkdirSync(out);
  const wrapper = path.join(dir, 'workerd-callgrind');
  fs.writeFileSync(wrapper, `#!/bin/sh\nexec valgrind --tool=callgrind --separate-threads=yes --instr-atstart=no --callgrind-out-file=${out}/run.%p ${workerdBinary} "$@"\n`, { mode: 0o755 });
  process.env.MINIFLARE_WORKERD_PATH = wrapper;
  return out;
}

/**
 * Instructions per request on workerd's request thread: --warmup requests (the JIT settles),
 * then counting switched on for --requests, four at a time. The serving process is the
 * newest one under callgrind (a scenario that swaps the worker restarts workerd).
 */
async function count(out, url, headers) {
  const send = async (n) => {
    let left = n;
    const one = async () => {
      while (left-- > 0) {
        const r = await fetch(url, { headers });
        await r.arrayBuffer();
        if (r.status !== 200) throw new Error(`${url} answered ${r.status}`);
      }
    };
    await Promise.all([one(), one(), one(), one()]);
  };
  await send(Number(opt.warmup));
  const pids = execFileSync('pgrep', ['-f', `callgrind.*${workerdBinary}`]).toString().trim().split('\n').map(Number);
  const pid = String(Math.max(...pids));
  const control = (what) => execFileSync('callgrind_control', [what, pid], { stdio: 'ignore' });
  control('--instr=on');
  control('--zero');
  const n = Number(opt.requests);
  await send(n);
  control('--dump');
  // One file per thread: the request thread is the one that did the work.
  const threads = fs.readdirSync(out).filter((f) => f.startsWith(`run.${pid}.`)).map((f) => {
    const text = fs.readFileSync(path.join(out, f), 'utf8');
    return { file: path.join(out, f), count: Number(/^(?:summary|totals): (\d+)/m.exec(text)?.[1] ?? 0) };
  });
  const busiest = Math.max(0, ...threads.map((t) => t.count));
  // The request thread's dump, per function (workerd has its symbols): `callgrind_annotate
  // --inclusive=yes FILE`, and two scenarios' dumps subtract.
  const kept = opt['callgrind-out'];
  if (kept) fs.copyFileSync(threads.find((t) => t.count === busiest).file, kept);
  const result = { scenario: opt.scenario, access_log: opt['access-log'], requests: n, instructions_per_request: Math.round(busiest / n) };
  console.log(JSON.stringify(result));
}

/** Self and inclusive time per function name, per request. */
function report(profile, requests) {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const parent = new Map();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const self = new Map();
  const inclusive = new Map();
  let total = 0;
  profile.samples.forEach((sample, i) => {
    const dt = profile.timeDeltas[i] ?? 0;
    total += dt;
    const leaf = byId.get(sample);
    const name = label(leaf);
    self.set(name, (self.get(name) ?? 0) + dt);
    const seen = new Set();
    for (let id = sample; id !== undefined; id = parent.get(id)) {
      const nm = label(byId.get(id));
      if (!seen.has(nm)) { seen.add(nm); inclusive.set(nm, (inclusive.get(nm) ?? 0) + dt); }
    }
  });
  const per = (us) => (requests ? (us / requests).toFixed(1).padStart(7) : '');
  const idle = ['(idle)', '(program)', '(garbage collector)'].reduce((a, k) => a + (self.get(k) ?? 0), 0);
  console.log(`\nsampled ${(total / 1000).toFixed(0)} ms; not idle ${((total - (self.get('(idle)') ?? 0)) / 1000).toFixed(0)} ms; ${requests} requests`);
  console.log(`(program) ${per(self.get('(program)') ?? 0)} us/req, (garbage collector) ${per(self.get('(garbage collector)') ?? 0)} us/req`);
  console.log(`JS and wasm on the isolate's thread: ${per(total - idle)} us/req\n`);
  const top = Number(opt.top);
  console.log('self time, us per request');
  for (const [name, us] of [...self].filter(([k]) => k !== '(idle)').sort((a, b) => b[1] - a[1]).slice(0, top)) {
    console.log(`${per(us)}  ${name}`);
  }
  console.log('\ninclusive time, us per request');
  for (const [name, us] of [...inclusive].filter(([k]) => !k.startsWith('(')).sort((a, b) => b[1] - a[1]).slice(0, top)) {
    console.log(`${per(us)}  ${name}`);
  }
}

function label(node) {
  const f = node.callFrame;
  const name = f.functionName || '(anonymous)';
  if (name.startsWith('(')) return name;
  const file = f.url ? path.basename(f.url.split('?')[0]) : '';
  return file ? `${name} [${file}]` : name;
}

try {
  await main();
} catch (e) {
  console.error(`profile: ${e.stack ?? e}`);
  process.exitCode = 1;
} finally {
  for (const c of cleanups.reverse()) { try { await c(); } catch { /* best effort */ } }
}
