// Small HTTP helpers the loopback fakes share: request bodies and client credentials.

export function readBody(req) {
  return new Promise((resolve, reject) => {
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (d) => { body += d; });
    req.on('end', () => resolve(body));
    req.on('error', reject);
  });
}

/** `client_id:client_secret` from an HTTP Basic header (RFC 6749 2.3.1 form-encoding). */
export function basicCredentials(header) {
  const m = /^Basic\s+(\S+)$/i.exec(header ?? '');
  if (!m) return null;
  const decoded = Buffer.from(m[1], 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  if (colon < 0) return null;
  const unform = (s) => decodeURIComponent(s.replace(/\+/g, ' '));
  try { return { id: unform(decoded.slice(0, colon)), secret: unform(decoded.slice(colon + 1)) }; } catch { return null; }
}

/** An HTML page (a string body) or JSON (anything else). */
export function send(res, status, body, headers = {}) {
  if (typeof body === 'string') {
    res.writeHead(status, { 'content-type': 'text/html; charset=utf-8', ...headers });
    return res.end(body);
  }
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', ...headers });
  return res.end(JSON.stringify(body));
}
