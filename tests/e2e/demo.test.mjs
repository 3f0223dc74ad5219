// `make demo` without a terminal: its script run the way a container or CI job runs it (stdin a
// pipe already at its end, no tty), on free ports, then one sign-in through the demo.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { ROOT, freePort, Agent } from '../support/harness.mjs';

test('the demo starts without a terminal and signs a person in', { timeout: 240_000 }, async () => {
  const [port, staff, partners] = [await freePort(), await freePort(), await freePort()];
  const child = spawn('bash', ['scripts/demo.sh'], {
    cwd: ROOT,
    detached: true,
    stdio: ['pipe', 'pipe', 'pipe'],
    env: { ...process.env, DEMO_PORT: String(port), DEMO_STAFF_PORT: String(staff), DEMO_PARTNERS_PORT: String(partners), NO_COLOR: '1' },
  });
  child.stdin.end();
  let output = '';
  child.stdout.on('data', (d) => { output += d; });
  child.stderr.on('data', (d) => { output += d; });
  const origin = `http://127.0.0.1:${port}`;
  try {
    const deadline = Date.now() + 200_000;
    for (;;) {
      assert.equal(child.exitCode, null, `the demo exited early:\n${output.slice(-3000)}`);
      try {
        await fetch(`${origin}/auth/userinfo`, { signal: AbortSignal.timeout(2000) });
        break;
      } catch {
        assert.ok(Date.now() < deadline, `the demo did not start:\n${output.slice(-3000)}`);
        await new Promise((r) => setTimeout(r, 500));
      }
    }
    const agent = new Agent();
    const chooser = await agent.request(`${origin}/`);
    assert.equal(chooser.status, 302);
    const [page, at] = await agent.signIn(`${origin}/auth/login?provider=staff`);
    assert.equal(page.status, 200, page.text_.slice(0, 300));
    assert.equal(new URL(at).origin, origin);
    const me = await agent.request(`${origin}/auth/userinfo`, { html: false });
    assert.equal(me.status, 200);
    assert.equal(JSON.parse(me.text_).email, 'alice@example.com');
  } finally {
    try { process.kill(-child.pid, 'SIGTERM'); } catch { /* gone */ }
    await new Promise((r) => setTimeout(r, 500));
  }
});
