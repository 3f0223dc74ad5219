import { Miniflare } from 'miniflare';
import http from 'node:http';
import { execFile } from 'node:child_process'; import { promisify } from 'node:util'; const ex = promisify(execFile);
const W = '/work/main/bench/workers/';
const base = { modules: true, compatibilityDate: '2026-04-01', host: '127.0.0.1', cf: false, handleRuntimeStdio: (o, e) => { o.resume(); e.resume(); } };
const up = new Miniflare({ ...base, scriptPath: W + 'upstream.mjs', port: 18801 });
await up.ready;
const node = http.createServer((q, s) => { s.writeHead(200, { 'content-type': 'text/html' }); s.end('<!doctype html><title>upstream</title><p>hello from the benchmark upstream</p>\n'); });
await new Promise(r => node.listen(18802, '127.0.0.1', r));
const bw = new Miniflare({ ...base, scriptPath: W + 'bare.mjs', port: 18803, bindings: { UPSTREAM: 'http://127.0.0.1:18801' } });
await bw.ready;
const bn = new Miniflare({ ...base, scriptPath: W + 'bare.mjs', port: 18804, bindings: { UPSTREAM: 'http://127.0.0.1:18802' } });
await bn.ready;
const run = async (url, c=16) => { const o = (await ex('wrk', ['-t1', `-c${c}`, '-d4s', '--latency', url])).stdout; return o.match(/Requests\/sec:\s+(\S+)/)[1] + ' ' + o.match(/99%\s+(\S+)/)[1]; };
console.log('fetch', (await fetch('http://127.0.0.1:18803/x')).status, (await fetch('http://127.0.0.1:18804/x')).status);
for (const [n,u] of [['upstream direct','http://127.0.0.1:18801/'],['bare->workerd','http://127.0.0.1:18803/'],['bare->node','http://127.0.0.1:18804/'],['node direct','http://127.0.0.1:18802/']]) {
  await run(u); console.log(n, await run(u), 'c8', await run(u, 8), 'c32', await run(u,32), 'c64', await run(u,64));
}
await up.dispose(); await bw.dispose(); await bn.dispose(); node.close();
