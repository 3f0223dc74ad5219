#!/usr/bin/env node
// `make bench`: where the built worker stands, in one report.
//   1. size: build/index_bg.wasm raw and gzip, and the entry module;
//   2. cold start: bench/coldstart.mjs (fresh workerd to the first answer, against bare);
//   3. the peers, in one interleaved run (bench/peers/bench-peers.mjs): a bare pass-through,
//      portcullis with its session cookie and with a cached Bearer token, Hono with
//      @hono/oidc-auth, cpilsworth/oidc-worker-gate: req/s, ratio to bare, workerd CPU per
//      request and over bare, session cookie bytes;
//   4. instructions per request on workerd's request thread under callgrind (bench/profile.mjs
//      --instructions): bare, the session cookie, the cached Bearer token, and Hono when the
//      peers ran. Needs valgrind; steadier than CPU time (bench/profile.mjs says how far).
//
//   node bench/all.mjs [--rounds 3] [--skip-peers] [--skip-instructions]
//
// The peers' packages are installed into bench/peers/node_modules on first use. The
// oidc-worker-gate source is not in this repository (it states no license): put an export of
// github.com/cpilsworth/oidc-worker-gate (measured at 32913e75) in bench/peers/owg/, or keep one
// in ../shared/bench-peers/owg/, which is copied. Without it the peers are skipped, said so.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import zlib from 'node:zlib';
import { spawnSync } from 'node:child_process';
import { parseArgs } from 'node:util';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const PEERS = path.join(ROOT, 'bench/peers');
const { values: opt } = parseArgs({
  options: {
    rounds: { type: 'string', default: '3' },
    'skip-peers': { type: 'boolean', default: false },
    'skip-instructions': { type: 'boolean', default: false },
  },
});

function run(cmd, args, options = {}) {
  const r = spawnSync(cmd, args, { stdio: 'inherit', cwd: ROOT, ...options });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} exited with ${r.status}`);
}

function sizes() {
  const wasm = fs.readFileSync(path.join(ROOT, 'build/index_bg.wasm'));
  const js = fs.readFileSync(path.join(ROOT, 'build/index.js'));
  const gz = (b) => zlib.gzipSync(b, { level: 9 }).length;
  return { wasm_bytes: wasm.length, wasm_gzip: gz(wasm), js_bytes: js.length, js_gzip: gz(js) };
}

function peersReady() {
  const owg = path.join(PEERS, 'owg');
  const shared = path.join(ROOT, '../shared/bench-peers/owg');
  if (!fs.existsSync(path.join(owg, 'src/index.js')) && fs.existsSync(path.join(shared, 'src/index.js'))) {
    fs.cpSync(shared, owg, { recursive: true });
  }
  if (!fs.existsSync(path.join(owg, 'src/index.js'))) {
    console.error('bench: bench/peers/owg/ is missing (the oidc-worker-gate source; see bench/peers/README.md): peers skipped');
    return false;
  }
  if (!fs.existsSync(path.join(PEERS, 'node_modules/@hono/oidc-auth'))) {
    run('npm', ['ci', '--no-audit', '--no-fund', '--loglevel=error'], { cwd: PEERS });
  }
  return true;
}

const kb = (n) => `${(n / 1024).toFixed(0)} KiB`;

function main() {
  const size = sizes();
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'portcullis-bench-all-'));
  try {
    const coldJson = path.join(tmp, 'cold.json');
    run(process.execPath, ['bench/coldstart.mjs', '--json', coldJson]);
    const cold = JSON.parse(fs.readFileSync(coldJson, 'utf8'));

    let peers = null;
    if (!opt['skip-peers'] && peersReady()) {
      const peersJson = path.join(tmp, 'peers.json');
      run(process.execPath, [path.join(PEERS, 'bench-peers.mjs'), '--project', ROOT, '--rounds', opt.rounds, '--json', peersJson]);
      peers = JSON.parse(fs.readFileSync(peersJson, 'utf8'));
    }

    const counted = [];
    if (!opt['skip-instructions']) {
      const scenarios = ['bare', 'cookie', 'bearer'];
      if (peers && fs.existsSync(path.join(PEERS, 'build/hono.mjs'))) scenarios.push('hono');
      for (const scenario of scenarios) {
        const r = spawnSync(process.execPath, ['bench/profile.mjs', '--instructions', '--scenario', scenario], { cwd: ROOT, encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
        if (r.status !== 0) throw new Error(`bench/profile.mjs --instructions --scenario ${scenario} exited with ${r.status}`);
        counted.push(JSON.parse(r.stdout.trim().split('\n').pop()));
      }
    }

    console.log('\n=== portcullis: where it stands ===');
    console.log(`wasm: ${size.wasm_bytes} bytes (${kb(size.wasm_bytes)}), gzip ${size.wasm_gzip} bytes (${kb(size.wasm_gzip)}); entry JS ${size.js_bytes} bytes, gzip ${size.js_gzip}`);
    const c = cold.portcullis;
    const b = cold.bare;
    console.log(`cold start (medians of ${cold.runs}): workerd ready ${c.ready_ms.toFixed(0)} ms (bare ${b.ready_ms.toFixed(0)} ms), ` +
      `first request ${c.first_ms.toFixed(1)} ms (bare ${b.first_ms.toFixed(1)} ms; next ones ${c.next_ms.toFixed(1)} ms), ` +
      `workerd CPU to the first answer ${c.cpu_ms.toFixed(0)} ms (bare ${b.cpu_ms.toFixed(0)} ms)`);
    if (counted.length) {
      const bare = counted.find((x) => x.scenario === 'bare').instructions_per_request;
      const label = { bare: 'bare pass-through', cookie: 'portcullis: session cookie', bearer: 'portcullis: Bearer token, cached', hono: 'Hono @hono/oidc-auth: session cookie' };
      console.log(`\ninstructions per request on workerd's request thread (callgrind, ${counted[0].requests} requests after a warm-up)`);
      console.log('| scenario | instructions/req | over bare |');
      console.log('|---|--:|--:|');
      for (const x of counted) {
        const over = x.instructions_per_request - bare;
        console.log(`| ${label[x.scenario]} | ${x.instructions_per_request.toLocaleString('en-US')} | ${x.scenario === 'bare' ? '' : `${over >= 0 ? '+' : ''}${over.toLocaleString('en-US')}`} |`);
      }
    }
    if (!peers) return;
    const cookieOf = { portcullis: peers.cookies.portcullis, 'portcullis-bearer': null, hono: peers.cookies.hono, owg: peers.cookies.owg, 'portcullis-nolog': peers.cookies['portcullis-nolog'] };
    const rows = peers.summary.filter((r) => r.phase === 'signed-in');
    console.log(`\nsigned-in requests, medians of ${opt.rounds} interleaved rounds (wrk -t1 -c16 -d5s each; CPU = workerd's user+system per request)`);
    console.log('| scenario | req/s | ratio to bare | workerd CPU/req | CPU/req over bare | session cookie |');
    console.log('|---|--:|--:|--:|--:|--:|');
    for (const r of rows) {
      const ck = cookieOf[r.key];
      console.log(`| ${r.label} | ${r.rps_median.toFixed(0)} | ${r.ratio_median.toFixed(2)} | ${r.cpu_us_median.toFixed(0)} us | ` +
        `${r.key === 'bare' ? '' : `${r.cpu_over_bare_us_median >= 0 ? '+' : ''}${r.cpu_over_bare_us_median.toFixed(0)} us`} | ${ck ? `${ck.bytes} B` : ''} |`);
    }
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}

try {
  main();
} catch (e) {
  console.error(`bench: ${e.message}`);
  process.exitCode = 1;
}
