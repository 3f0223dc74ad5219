// The baseline: a pass-through to the same upstream, no checks.
export default {
  fetch(req, env) {
    const u = new URL(req.url);
    return fetch(env.UPSTREAM + u.pathname + u.search, {
      method: req.method, headers: req.headers, body: req.body, redirect: 'manual',
    });
  },
};
