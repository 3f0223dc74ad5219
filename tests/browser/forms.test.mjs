// A real headless Chromium: a form typed while signed in, the session gone before it is sent,
// sign-in, and the form reaching the origin once with every field (a file too); a form from
// another site is never sent again.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { launchChromium, signInAtProvider } from '../support/browser.mjs';
import { startIdp } from '../support/idp.mjs';
import { startWorker, freePort, clientVars } from '../support/harness.mjs';

let idp; let worker; let browser; let origin; let attacker;
/** Every POST the origin received: `{ url, contentType, body }`. */
const posts = [];

const FORM_PAGE = `<!doctype html><html><head><meta charset="utf-8"></head><body><h1>Feedback</h1>
<form method="post" action="/submit?x=1" enctype="multipart/form-data">
<input name="title"><textarea name="body"></textarea><input type="file" name="doc">
<button id="send">Send</button></form></body></html>`;

function serve(handler) {
  const server = http.createServer(handler);
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(server)));
}

before(async () => {
  origin = await serve((req, res) => {
    if (req.method === 'POST') {
      const chunks = [];
      req.on('data', (c) => chunks.push(c));
      req.on('end', () => {
        posts.push({ url: req.url, contentType: req.headers['content-type'], user: req.headers['x-auth-request-user'], body: Buffer.concat(chunks).toString('latin1') });
        res.writeHead(200, { 'content-type': 'text/html' });
        res.end('<h1>received</h1>');
      });
      return;
    }
    res.writeHead(200, { 'content-type': 'text/html' });
    res.end(FORM_PAGE);
  });
  const [idpPort, workerPort] = [await freePort(), await freePort()];
  const workerOrigin = `http://127.0.0.1:${workerPort}`;
  // Another site (localhost is not 127.0.0.1's site) whose page posts a form to the gate.
  attacker = await serve((req, res) => {
    res.writeHead(200, { 'content-type': 'text/html' });
    res.end(`<form method="post" action="${workerOrigin}/submit?x=1"><input name="title" value="forged"><button id="send">Go</button></form>`);
  });
  idp = await startIdp({ port: idpPort, workerOrigins: [workerOrigin] });
  worker = await startWorker({
    port: workerPort,
    vars: clientVars(idp.issuer, { UPSTREAM: `http://127.0.0.1:${origin.address().port}` }),
  });
  browser = await launchChromium();
});

after(async () => {
  await browser?.close();
  await worker?.stop();
  await idp?.close();
  origin?.close();
  attacker?.close();
});

test('a form typed before the session ended arrives once, with its fields, after sign-in', async () => {
  const context = await browser.newContext();
  const page = await context.newPage();
  await page.goto(`${worker.origin}/form`);
  await signInAtProvider(page, 'alice');
  await page.waitForURL(`${worker.origin}/form`);
  await page.fill('input[name="title"]', 'Caf\u00e9 & <friends>');
  await page.fill('textarea[name="body"]', 'first line\nsecond line');
  await page.setInputFiles('input[name="doc"]', { name: 'notes.txt', mimeType: 'text/plain', buffer: Buffer.from('file \x00 bytes') });
  // The session ends while the person types (here: every cookie goes, the provider's too).
  await context.clearCookies();
  const before = posts.length;
  await page.click('#send');
  await signInAtProvider(page, 'alice');
  await page.waitForSelector('text=received');
  assert.equal(new URL(page.url()).pathname, '/submit');
  assert.equal(posts.length, before + 1, 'exactly one post reached the origin');
  const got = posts.at(-1);
  assert.equal(got.url, '/submit?x=1');
  assert.equal(got.user, 'alice');
  assert.match(got.contentType, /^multipart\/form-data; boundary=/);
  const text = Buffer.from(got.body, 'latin1').toString('utf8');
  assert.match(text, /name="title"\r\n\r\nCaf\u00e9 & <friends>\r\n/);
  assert.match(text, /name="body"\r\n\r\nfirst line\r\nsecond line\r\n/);
  assert.match(text, /name="doc"; filename="notes.txt"\r\nContent-Type: text\/plain\r\n\r\nfile \x00 bytes\r\n/);
  // Nothing is left to send again: a reload of the page after does not post twice.
  await page.goto(`${worker.origin}/form`);
  await page.waitForSelector('#send');
  assert.equal(posts.length, before + 1);
  await context.close();
});

test('a form posted from another site is never kept nor sent again', async () => {
  const context = await browser.newContext();
  const page = await context.newPage();
  const before = posts.length;
  await page.goto(`http://localhost:${attacker.address().port}/`);
  await page.click('#send');
  await page.waitForLoadState();
  assert.match(await page.content(), /unauthenticated/);
  // Signing in afterwards sends nothing.
  await page.goto(`${worker.origin}/form`);
  await signInAtProvider(page, 'alice');
  await page.waitForURL(`${worker.origin}/form`);
  assert.equal(posts.length, before);
  await context.close();
});
