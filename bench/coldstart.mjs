#!/usr/bin/env node
// Cold start: from a fresh workerd to the first answered request, for the built worker and for
// the bare pass-through (bench/workers/bare.mjs) as the reference, --runs times each, medians.
//
//   node bench/coldstart.mjs [--runs 5] [--json PATH]
//
// Per run, on free 127.0.0.1 ports: Miniflare starts one workerd with the worker (the script
// is compiled and, for portcullis, the wasm module compiled and instantiated before workerd
// says it is ready), then one request is timed (portcullis: an unauthenticated navigation,
// answered 302 to its sign-in route, which reads and checks the whole configuration first),
// then 20 more. Reported: time to ready, the first request, the median of the next ones, and
// workerd's CPU from its start to the first answer. The differences to bare are what the
// worker adds: wasm compile and instantiate, then configuration parsing on the first request.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import crypto from 'node:crypto';
import http from 'node:http';
import { execFileSync } from 'node:child_process';
import { parseArgs } from 'node:util';
import { performance } from 'node:perf_hooks';
import { Miniflare } from 'miniflare';
import { ROOT, freePort } from '../tests/support/harness.mjs';

const { values: opt } = parseArgs({
  options: {
    runs: { type: 'string', default: '5' },
    json: { type: 'string', default: path.join(os.tmpdir(), 'portcullis-coldstart.json') },
  },
});
const HOST = '127.0.0.1';
const CLK_TCK = Number(execFileSync('getconf', ['CLK_TCK']).toString().trim()) || 100;

function cpuMs(pid) {
  const f = fs.readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  return ((Number(f[11]) + Number(f[12])) * 1000) / CLK_TCK;
}

function workerdPid(port) {
  const out = execFileSync('ss', ['-ltnpH', `sport = :${port}`]).toString();
  return Number(/pid=(\d+)/.exec(out)?.[1] ?? 0);
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

let UPSTREAM = '';

async function once(kind, dir) {
  const port = await freePort();
  const portcullis = kind === 'portcullis';
  const t0 = performance.now();
  const mf = new Miniflare({
    name: kind,
    modules: true,
    scriptPath: portcullis ? path.join(dir, 'index.js') : path.join(ROOT, 'bench/workers/bare.mjs'),
    modulesRoot: portcullis ? dir : path.join(ROOT, 'bench/workers'),
    modulesRules: portcullis ? [{ type: 'CompiledWasm', include: ['**/*.wasm'] }] : undefined,
    compatibilityDate: '2026-04-01',
    host: HOST,
    port,
    cf: false,
    logRequests: false,
    handleRuntimeStdio(stdout, stderr) { stdout.resume(); stderr.resume(); },
    kvNamespaces: portcullis ? ['JWKS_CACHE'] : undefined,
    bindings: portcullis
      ? {
        OIDC_ISSUER: 'https://idp.invalid',
        OIDC_CLIENT_ID: 'bench',
        OIDC_CLIENT_SECRET: 'bench-secret',
        COOKIE_SECRET: crypto.randomBytes(32).toString('base64'),
        UPSTREAM,
        ACCESS_RULES: '/admin/* group:admins; /* authenticated',
      }
      : { UPSTREAM },
  });
  try {
    await mf.ready;
    const ready = performance.now() - t0;
    const pid = workerdPid(port);
    const url = `http://${HOST}:${port}/page`;
    const headers = { accept: 'text/html' };
    const request = async () => {
      const t = performance.now();
      const res = await fetch(url, { headers, redirect: 'manual' });
      await res.arrayBuffer();
      return [res.status, performance.now() - t];
    };
    const [status, first] = await request();
    const cpu = pid ? cpuMs(pid) : NaN;
    const expected = portcullis ? 302 : 200;
    if (status !== expected) throw new Error(`${kind}: first request answered ${status}, expected ${expected}: ${await (await fetch(url)).text()}`);
    const next = [];
    for (let i = 0; i < 20; i++) next.push((await request())[1]);
    return { ready, first, next: median(next), cpu };
  } finally {
    await mf.dispose();
  }
}

async function main() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'portcullis-cold-'));
  try {
    for (const f of ['index.js', 'index_bg.wasm']) {
      const src = path.join(ROOT, 'build', f);
      if (!fs.existsSync(src)) throw new Error(`${src} is missing: build first (make build)`);
      fs.copyFileSync(src, path.join(dir, f));
    }
    const up = http.createServer((req, res) => { req.resume(); res.end('upstream\n'); });
    await new Promise((r) => up.listen(0, HOST, r));
    UPSTREAM = `http://${HOST}:${up.address().port}`;
    cleanup = () => new Promise((r) => { up.closeAllConnections(); up.close(r); });
    const runs = Number(opt.runs);
    const results = { bare: [], portcullis: [] };
    for (let i = 0; i < runs; i++) {
      for (const kind of ['bare', 'portcullis']) results[kind].push(await once(kind, dir));
    }
    const med = (kind, k) => median(results[kind].map((r) => r[k]));
    const row = (kind) => ({
      ready_ms: med(kind, 'ready'), first_ms: med(kind, 'first'), next_ms: med(kind, 'next'), cpu_ms: med(kind, 'cpu'),
    });
    const summary = { bare: row('bare'), portcullis: row('portcullis'), runs };
    const f = (x) => x.toFixed(1).padStart(8);
    console.log(`\nCold start (medians of ${runs} fresh workerd processes each)`);
    console.log('| worker     | workerd ready | first request | next requests | workerd CPU to first answer |');
    console.log('|------------|--------------:|--------------:|--------------:|----------------------------:|');
    for (const kind of ['bare', 'portcullis']) {
      const r = summary[kind];
      console.log(`| ${kind.padEnd(10)} | ${f(r.ready_ms)} ms | ${f(r.first_ms)} ms | ${f(r.next_ms)} ms | ${f(r.cpu_ms)} ms |`);
    }
    const p = summary.portcullis;
    const b = summary.bare;
    console.log(`portcullis adds ${(p.ready_ms - b.ready_ms).toFixed(1)} ms before workerd is ready (script and wasm compile, instantiate), ` +
      `${(p.first_ms - p.next_ms - (b.first_ms - b.next_ms)).toFixed(1)} ms to its first request (configuration read on first use), ` +
      `${(p.cpu_ms - b.cpu_ms).toFixed(0)} ms of workerd CPU up to the first answer.`);
    fs.writeFileSync(opt.json, `${JSON.stringify({ ...summary, date: new Date().toISOString() }, null, 2)}\n`);
  } finally {
    await cleanup();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

let cleanup = async () => {};
main().catch((e) => {
  console.error(`coldstart: ${e.stack ?? e}`);
  process.exitCode = 1;
});
