// The provider chooser in a real headless Chromium: both buttons are there, seen and named as a
// person (or a screen reader) finds them, and a full sign-in goes through the second provider.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { launchChromium, signInAtProvider } from '../support/browser.mjs';
import { startIdp, DEMO_CLIENT_ID, DEMO_CLIENT_SECRET } from '../support/idp.mjs';
import { startWorker, freePort, TEST_COOKIE_SECRET } from '../support/harness.mjs';

let staff; let partners; let worker; let browser;

before(async () => {
  const [staffPort, partnersPort, workerPort] = [await freePort(), await freePort(), await freePort()];
  const workerOrigins = [`http://127.0.0.1:${workerPort}`];
  staff = await startIdp({ port: staffPort, workerOrigins, callbackIds: ['staff'] });
  partners = await startIdp({ port: partnersPort, workerOrigins, callbackIds: ['partners'] });
  worker = await startWorker({
    port: workerPort,
    vars: {
      PROVIDERS: 'staff partners',
      STAFF_OIDC_ISSUER: staff.issuer,
      STAFF_OIDC_CLIENT_ID: DEMO_CLIENT_ID,
      STAFF_OIDC_CLIENT_SECRET: DEMO_CLIENT_SECRET,
      STAFF_OIDC_PROVIDER_NAME: 'Staff',
      PARTNERS_OIDC_ISSUER: partners.issuer,
      PARTNERS_OIDC_CLIENT_ID: DEMO_CLIENT_ID,
      PARTNERS_OIDC_CLIENT_SECRET: DEMO_CLIENT_SECRET,
      PARTNERS_OIDC_PROVIDER_NAME: 'Partners',
      COOKIE_SECRET: TEST_COOKIE_SECRET,
    },
  });
  browser = await launchChromium();
});

after(async () => {
  await browser?.close();
  await worker?.stop();
  await staff?.close();
  await partners?.close();
});

/** The PNG's width and height, from its IHDR chunk. */
function pngSize(png) {
  assert.equal(png.subarray(1, 4).toString('latin1'), 'PNG', 'a PNG screenshot');
  return { width: png.readUInt32BE(16), height: png.readUInt32BE(20) };
}

test('the chooser shows both providers as buttons and signs in through the second', async () => {
  const page = await browser.newPage({ viewport: { width: 800, height: 600 } });
  await page.goto(`${worker.origin}/docs/`);
  await page.waitForURL(/\/auth\/login\?return_to=/);
  const staffButton = page.getByRole('button', { name: 'Sign in with Staff' });
  const partnersButton = page.getByRole('button', { name: 'Sign in with Partners' });
  await staffButton.waitFor();

  // The screenshot: the whole page, and each button drawn visibly, inside the viewport, apart.
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'portcullis-chooser-'));
  const shot = await page.screenshot({ path: path.join(dir, 'chooser.png'), fullPage: true });
  assert.deepEqual(pngSize(shot).width, 800);
  const boxes = [await staffButton.boundingBox(), await partnersButton.boundingBox()];
  for (const box of boxes) {
    assert.ok(box && box.width > 40 && box.height > 16, `a button of a usable size: ${JSON.stringify(box)}`);
    assert.ok(box.x >= 0 && box.y >= 0 && box.x + box.width <= 800 && box.y + box.height <= 600, 'inside the first screen');
  }
  assert.ok(boxes[1].y >= boxes[0].y + boxes[0].height, 'one under the other, not overlapping');
  const [a, b] = [await staffButton.screenshot(), await partnersButton.screenshot()];
  assert.notDeepEqual(a, b, 'the two buttons look different (their labels)');
  assert.equal(await page.locator('script').count(), 0, 'no JavaScript needed');

  // Keyboard: Tab reaches the first button, Enter would submit it.
  await page.keyboard.press('Tab');
  assert.equal(await page.evaluate(() => document.activeElement?.textContent), 'Sign in with Staff');

  await partnersButton.click();
  await page.waitForURL((u) => u.origin === partners.issuer);
  await signInAtProvider(page, 'bob');
  await page.waitForURL(`${worker.origin}/docs/`);
  assert.match(await page.textContent('h1'), /Protected documentation/);

  const me = await page.evaluate(async () => (await fetch('/auth/userinfo')).json());
  assert.equal(me.provider, 'partners');
  assert.equal(me.iss, partners.issuer);
  assert.equal(me.email, 'bob@example.com');
});
