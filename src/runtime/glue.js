// The JavaScript half of the worker's entry (src/runtime/shell.rs): each function is one
// crossing between wasm and JS for work that would otherwise take one crossing per header or
// per property. No decisions are made here: what to send and where comes from the Rust side,
// and the caching rule for a protected response is asked of it (`cacheEdits`).
//
// Lists travel as strings with "\n" between items: the Fetch standard forbids CR, LF and NUL
// in header names and values, so the separator cannot occur inside an item.

const LF = '\n';
const NUL = '\0';
const PROTECTED = 1;
const NO_STORE = 2;
const WITH_BODY = 4;
const WANTS_HTML = 8;

/** The request line and headers: "METHOD\nURL" then "\nname\nvalue" per header. */
export function requestHead(request) {
  let head = request.method + LF + request.url;
  for (const [name, value] of request.headers) head += LF + name + LF + value;
  return head;
}

function pairs(list) {
  return list === '' ? [] : list.split(LF);
}

/** An answer of the gate's own: `headers` as "name\nvalue" pairs, an empty body as none. */
export function respond(status, headers, body) {
  const h = new Headers();
  const p = pairs(headers);
  for (let i = 0; i + 1 < p.length; i += 2) h.append(p[i], p[i + 1]);
  return new Response(body.length === 0 ? null : body, { status, headers: h });
}

/**
 * Passes `request` on, as `plan` says: its four parts, separated by NUL, are the target URL, the
 * names to delete from the runtime's own copy of the request's headers, the pairs to append,
 * and the cookies to set (one string: one crossing; wire.rs `forward_plan`). Without deletes or
 * appends (static assets), the request's headers go on as they are, not copied. Redirects are not
 * followed. For protected content (`flags & PROTECTED`) the answer's headers get the edits
 * `cacheEdits(cacheControl, vary)` gives ("name\nvalue" pairs; an empty value removes the
 * header), and the cookies are added. If the upstream cannot be reached,
 * `failed(error, path, wantsHtml)` gives the answer.
 */
export async function forward(request, plan, flags, fetcher, cacheEdits, failed) {
  const [target, remove, append, cookies] = plan.split(NUL);
  let answer;
  try {
    let headers = request.headers;
    if (remove !== '' || append !== '') {
      headers = new Headers(headers);
      for (const name of pairs(remove)) headers.delete(name);
      const add = pairs(append);
      for (let i = 0; i + 1 < add.length; i += 2) headers.append(add[i], add[i + 1]);
    }
    const init = { method: request.method, headers, redirect: 'manual' };
    if (flags & NO_STORE) init.cache = 'no-store';
    if (flags & WITH_BODY) init.body = request.body;
    answer = await (fetcher ? fetcher.fetch(target, init) : fetch(target, init));
  } catch (e) {
    return failed(String(e && e.message ? e.message : e), new URL(request.url).pathname, (flags & WANTS_HTML) !== 0);
  }
  // A WebSocket upgrade (101) carries no cacheable body and cannot be rebuilt.
  if (!(flags & PROTECTED) || answer.status === 101) return answer;
  // The answer's own headers are immutable: one copy (the new Response's), edited in place.
  const theirs = answer.headers;
  const edits = responseEdits(cacheEdits, theirs.get('Cache-Control'), theirs.get('Vary'));
  const out = new Response(answer.body, answer);
  const headers = out.headers;
  for (let i = 0; i + 1 < edits.length; i += 2) {
    if (edits[i + 1] === '') headers.delete(edits[i]);
    else headers.set(edits[i], edits[i + 1]);
  }
  for (const cookie of pairs(cookies)) headers.append('Set-Cookie', cookie);
  return out;
}

// `cacheEdits` is a pure function of the origin's two headers, and an origin sends few
// distinct pairs: its answers are kept, so a protected response usually costs no second
// crossing into wasm. NUL cannot occur in a header value, so it marks an absent header.
const editsKept = new Map();
const EDITS_KEPT_MAX = 256;

function responseEdits(cacheEdits, cacheControl, vary) {
  const key = (cacheControl ?? '\0') + LF + (vary ?? '\0');
  let edits = editsKept.get(key);
  if (edits === undefined) {
    edits = pairs(cacheEdits(cacheControl ?? undefined, vary ?? undefined));
    if (editsKept.size >= EDITS_KEPT_MAX) editsKept.clear();
    editsKept.set(key, edits);
  }
  return edits;
}

/**
 * A request of the gate's own (to a provider, or to a session object): `headers` as
 * "name\nvalue" pairs, `body` a string or undefined. Resolves to [status, the answer's headers as
 * pairs, its body as bytes]; rejects when there is no answer. Redirects are not followed.
 */
export async function send(fetcher, target, method, headers, body) {
  const h = new Headers();
  const p = pairs(headers);
  for (let i = 0; i + 1 < p.length; i += 2) h.append(p[i], p[i + 1]);
  // A redirect is an answer like any other (and not a 200): followed, it would take a key set
  // from an http:// address, or post a code, its verifier or a client secret to another URL.
  const init = { method, headers: h, body, redirect: 'manual' };
  const answer = await (fetcher ? fetcher.fetch(target, init) : fetch(target, init));
  const bytes = new Uint8Array(await answer.arrayBuffer());
  let head = '';
  for (const [name, value] of answer.headers) head += (head === '' ? '' : LF) + name + LF + value;
  return [answer.status, head, bytes];
}

/** The session object named `name` in the Durable Object namespace `binding` of `env`. */
export function sessionObject(env, binding, name) {
  const namespace = env[binding];
  if (!namespace) throw new Error(`no ${binding} Durable Object binding`);
  return namespace.get(namespace.idFromName(name));
}

/** `key` from the KV namespace `binding` as text, or null. */
export function kvGet(env, binding, key) {
  return env[binding].get(key);
}

/** Stores `value` under `key` in the KV namespace `binding` for `ttl` seconds. */
export function kvPut(env, binding, key, value, ttl) {
  return env[binding].put(key, value, { expirationTtl: ttl });
}

/** A promise resolved after `ms`: a timer the Rust side awaits like any other promise. */
export function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** One log line. */
export function log(line) {
  console.log(line);
}
