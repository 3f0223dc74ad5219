// The origin every measured worker forwards to: a fixed small page, no I/O.
const BODY = '<!doctype html><title>upstream</title><p>hello from the benchmark upstream</p>\n';
export default {
  fetch() {
    return new Response(BODY, { headers: { 'content-type': 'text/html; charset=utf-8' } });
  },
};
