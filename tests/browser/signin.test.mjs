// A real headless Chromium (Debian's) clicks through the demo sign-in and sees the page.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { launchChromium, signInAtProvider } from '../support/browser.mjs';
import { startIdp } from '../support/idp.mjs';
import { startWorker, freePort, clientVars } from '../support/harness.mjs';

let idp; let worker; let browser;

before(async () => {
  const [idpPort, workerPort] = [await freePort(), await freePort()];
  idp = await startIdp({ port: idpPort, workerOrigins: [`http://127.0.0.1:${workerPort}`] });
  worker = await startWorker({
    port: workerPort,
    vars: clientVars(idp.issuer),
  });
  browser = await launchChromium();
});

after(async () => {
  await browser?.close();
  await worker?.stop();
  await idp?.close();
});

test('a person signs in through the provider in a real browser and sees the protected page', async () => {
  const page = await browser.newPage();
  await page.goto(`${worker.origin}/docs/`);
  await signInAtProvider(page, 'alice');
  await page.waitForURL(`${worker.origin}/docs/`);
  assert.match(await page.textContent('h1'), /Protected documentation/);

  await page.goto(`${worker.origin}/`);
  await page.waitForFunction(() => document.getElementById('who')?.textContent.includes('@'));
  assert.equal(await page.textContent('#who'), 'alice@example.com');

  const cookies = await page.context().cookies(worker.origin);
  const session = cookies.find((c) => c.name === 'portcullis');
  assert.ok(session, 'session cookie');
  assert.equal(session.httpOnly, true);
  assert.equal(session.sameSite, 'Lax');
});
