// OAuth 2.0 provider for Portcullis tests. The OAuth protocol work (authorize
// redirect, code generation, PKCE verification, JWT signing, revocation and
// userinfo endpoints) is done by oauth2-mock-server; that package is stateless,
// so this file adds the state a real provider keeps (which codes, refresh and
// access tokens are live), client authentication, and the test quirks.
//
// Layout: the package's server listens on a private loopback port; a thin front
// on the public port validates, keeps state, and forwards to it. The front
// passes per-request facts (subject, scopes, scripted quirk) to the package's
// hooks in an internal header, so the hooks shape what the package emits.
import { createServer } from 'node:http';
import { fstatSync } from 'node:fs';
import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { OAuth2Server } from 'oauth2-mock-server';

const HOST = '127.0.0.1';
const CTX_HEADER = 'x-portcullis-ctx';
const DEFAULTS = {
  client_id: 'portcullis-test',
  client_secret: 'portcullis-test-secret',
  subject: 'user-1',
  deny: false,
  scope_separator: ' ',
  grant_scopes: null,
  access_ttl: 3600,
  issue_refresh_token: true,
  rotate: true,
  token_delay_ms: 0,
  refresh_script: [],
};

let cfg, codes, refreshTokens, accessTokens, log;
function reset() {
  cfg = structuredClone(DEFAULTS);
  codes = new Map(); // code -> { clientId, redirectUri, sub, scopes, challenge, grant, used }
  refreshTokens = new Map(); // token -> { clientId, sub, scopes, grant }
  accessTokens = new Map(); // token -> { clientId, sub, scopes, grant, exp (ms) }
  log = { token_requests: [], refresh_count: 0, code_exchange_count: 0, revocations: [], authorize_requests: [], jwks_requests: 0 };
}
reset();

const splitScopes = (s) => (typeof s === 'string' ? s.split(/[\s,]+/).filter(Boolean) : []);
const granted = (requested) => (cfg.grant_scopes != null ? splitScopes(cfg.grant_scopes) : requested);

// Tokens must really expire (tests set access_ttl to a few seconds), so expiry
// is checked on every use rather than trusted from the JWT.
function liveAccess(authorization) {
  const m = /^Bearer\s+(\S+)$/i.exec(authorization ?? '');
  const t = m && accessTokens.get(m[1]);
  if (!t) return null;
  if (Date.now() >= t.exp) {
    accessTokens.delete(m[1]);
    return null;
  }
  return t;
}

// RFC 6749 2.3.1: Basic credentials are form-urlencoded before base64.
function clientAuth(req, fields) {
  const formDecode = (s) => decodeURIComponent(s.replace(/\+/g, ' '));
  const m = /^Basic\s+(\S+)$/i.exec(req.headers.authorization ?? '');
  let method = 'none', id, secret;
  if (m) {
    const raw = Buffer.from(m[1], 'base64').toString();
    const i = raw.indexOf(':');
    method = 'basic';
    try {
      [id, secret] = i < 0 ? [formDecode(raw), ''] : [formDecode(raw.slice(0, i)), formDecode(raw.slice(i + 1))];
    } catch { /* malformed escapes: leave undefined, i.e. a bad client */ }
  } else if (fields.client_id !== undefined || fields.client_secret !== undefined) {
    method = 'post';
    [id, secret] = [fields.client_id, fields.client_secret];
  }
  return { method, clientId: id, ok: id === cfg.client_id && secret === cfg.client_secret };
}

// ---- the real server and its hooks -------------------------------------------------

const oauth = new OAuth2Server();
await oauth.issuer.keys.generate('RS256');
const service = oauth.service;
const ctxOf = (req) => {
  const h = req.headers[CTX_HEADER];
  return h ? JSON.parse(Buffer.from(h, 'base64url').toString()) : null;
};

service.on('beforeAuthorizeRedirect', ({ url }, req) => {
  const code = url.searchParams.get('code');
  if (!code) return; // the package already answered with an error (e.g. bad response_type)
  if (cfg.deny) {
    url.searchParams.delete('code');
    url.searchParams.set('error', 'access_denied');
    url.searchParams.set('error_description', 'The resource owner denied the request');
    return;
  }
  const q = req.query;
  codes.set(code, {
    clientId: q.client_id, redirectUri: q.redirect_uri, sub: cfg.subject,
    scopes: granted(splitScopes(q.scope)), challenge: Boolean(q.code_challenge),
    grant: randomUUID(), used: false,
  });
});

service.on('beforeTokenSigning', (token, req) => {
  const ctx = ctxOf(req);
  if (!ctx) return;
  token.payload.sub = ctx.sub;
  if ('scope' in token.payload) { // the access token; the id_token carries no scope
    token.payload.scope = ctx.scopes.join(' ');
    token.payload.exp = token.payload.iat + cfg.access_ttl;
    token.payload.client_id = ctx.clientId;
    token.payload.jti = randomUUID(); // two tokens minted in the same second must differ
  }
});

service.on('beforeResponse', (response, req) => {
  const ctx = ctxOf(req);
  if (!ctx || response.statusCode !== 200) return;
  const body = response.body;
  const item = ctx.item ?? {};
  const record = { clientId: ctx.clientId, sub: ctx.sub, scopes: ctx.scopes, grant: ctx.grant };
  accessTokens.set(body.access_token, { ...record, exp: Date.now() + cfg.access_ttl * 1000 });
  body.scope = ctx.scopes.join(cfg.scope_separator);
  body.expires_in = cfg.access_ttl;
  const issueRefresh = ctx.kind === 'code' ? cfg.issue_refresh_token : cfg.rotate && !item.omit_refresh_token;
  if (issueRefresh) refreshTokens.set(body.refresh_token, record);
  else delete body.refresh_token;
  if (item.omit_expires_in) delete body.expires_in;
  if (item.expires_in_string) body.expires_in = String(body.expires_in);
  if (item.token_type) body.token_type = item.token_type;
});

service.on('beforeUserinfo', (response, req) => {
  const t = liveAccess(req.headers.authorization);
  if (!t) {
    response.statusCode = 401;
    response.body = { error: 'invalid_token' };
    return;
  }
  response.body = { sub: t.sub, email: `${t.sub}@example.test`, login: t.sub };
});

// RFC 7009: revoking a refresh token also kills the access tokens of its grant;
// unknown tokens and other clients' tokens are ignored and still answered 200.
service.on('beforeRevoke', (_response, req) => {
  const ctx = ctxOf(req);
  const token = req.body?.token;
  const rt = refreshTokens.get(token);
  if (rt && rt.clientId === ctx?.clientId) {
    for (const store of [refreshTokens, accessTokens]) {
      for (const [k, v] of store) if (v.grant === rt.grant) store.delete(k);
    }
  } else if (accessTokens.get(token)?.clientId === ctx?.clientId) {
    accessTokens.delete(token);
  }
});

// ---- the front ---------------------------------------------------------------------

function send(res, status, body, headers = {}) {
  res.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store', ...headers });
  res.end(JSON.stringify(body));
}
const invalidGrant = (res, description) => send(res, 400, { error: 'invalid_grant', error_description: description });

async function forward(req, path, { body, contentType, ctx } = {}) {
  const headers = {};
  if (req.headers.authorization) headers.authorization = req.headers.authorization;
  if (contentType) headers['content-type'] = contentType;
  if (ctx) headers[CTX_HEADER] = Buffer.from(JSON.stringify(ctx)).toString('base64url');
  const r = await fetch(`${innerUrl}${path}`, { method: req.method, headers, body, redirect: 'manual' });
  const out = {};
  for (const h of ['content-type', 'location', 'cache-control', 'pragma']) if (r.headers.has(h)) out[h] = r.headers.get(h);
  return { status: r.status, headers: out, text: await r.text() };
}
function relay(res, r, extraHeaders = {}) {
  res.writeHead(r.status, { ...r.headers, ...extraHeaders });
  res.end(r.text);
}

async function readBody(req) {
  const chunks = [];
  for await (const c of req) chunks.push(c);
  const raw = Buffer.concat(chunks).toString();
  if (!raw) return {};
  if ((req.headers['content-type'] ?? '').includes('json')) return JSON.parse(raw);
  return Object.fromEntries(new URLSearchParams(raw));
}

async function authorize(req, res, url) {
  const q = Object.fromEntries(url.searchParams);
  log.authorize_requests.push(q);
  if (!q.client_id || !q.redirect_uri) {
    return send(res, 400, { error: 'invalid_request', error_description: 'client_id and redirect_uri are required' });
  }
  if (q.client_id !== cfg.client_id) return send(res, 401, { error: 'invalid_client' });
  relay(res, await forward(req, url.pathname + url.search));
}

async function token(req, res, fields) {
  const auth = clientAuth(req, fields);
  log.token_requests.push({ grant_type: fields.grant_type, fields, auth: auth.method, at: Date.now() });
  if (!auth.ok) {
    return send(res, 401, { error: 'invalid_client' }, auth.method === 'basic' ? { 'www-authenticate': 'Basic realm="oauth"' } : {});
  }
  let ctx;
  if (fields.grant_type === 'authorization_code') {
    log.code_exchange_count++;
    const c = codes.get(fields.code);
    if (!c || c.used) return invalidGrant(res, 'unknown or already used code');
    c.used = true; // burnt even if the checks below fail, as real providers do
    if (c.clientId !== auth.clientId) return invalidGrant(res, 'code was issued to another client');
    if (c.redirectUri !== fields.redirect_uri) return invalidGrant(res, 'redirect_uri does not match the authorization request');
    // The package only verifies PKCE when a verifier is sent; a missing one must fail too.
    if (c.challenge && !fields.code_verifier) return invalidGrant(res, 'code_verifier required');
    ctx = { kind: 'code', sub: c.sub, scopes: c.scopes, clientId: c.clientId, grant: c.grant };
  } else if (fields.grant_type === 'refresh_token') {
    log.refresh_count++;
    if (cfg.token_delay_ms > 0) await sleep(cfg.token_delay_ms);
    const item = cfg.refresh_script.shift();
    if (item?.invalid_grant) return invalidGrant(res, 'scripted');
    if (item && 'body' in item) return send(res, item.status ?? 200, item.body);
    if (item?.status) return send(res, item.status, { error: 'server_error', error_description: 'scripted' });
    const t = refreshTokens.get(fields.refresh_token);
    if (!t || t.clientId !== auth.clientId) return invalidGrant(res, 'unknown, rotated or revoked refresh token');
    // Burn the old token before any await, so two concurrent refreshes cannot both win.
    if (cfg.rotate && !item?.omit_refresh_token) refreshTokens.delete(fields.refresh_token);
    const scopes = cfg.grant_scopes != null ? splitScopes(cfg.grant_scopes) : t.scopes;
    ctx = { kind: 'refresh', sub: t.sub, scopes, clientId: t.clientId, grant: t.grant, item };
  } else {
    return send(res, 400, { error: 'unsupported_grant_type' });
  }
  const r = await forward(req, '/token', {
    body: new URLSearchParams(fields).toString(), contentType: 'application/x-www-form-urlencoded', ctx,
  });
  if (r.status === 400) { // the package's PKCE rejection says invalid_request; RFC 7636 4.6 wants invalid_grant
    return invalidGrant(res, JSON.parse(r.text).error_description);
  }
  relay(res, r);
}

async function revoke(req, res, fields) {
  const auth = clientAuth(req, fields);
  log.revocations.push({ token_type_hint: fields.token_type_hint ?? null, token: fields.token ?? null });
  if (!auth.ok) return send(res, 401, { error: 'invalid_client' });
  if (!fields.token) return send(res, 400, { error: 'invalid_request', error_description: 'token is required' });
  // The package parses only JSON on /revoke; sending JSON lets its hook see the token.
  relay(res, await forward(req, '/revoke', {
    body: JSON.stringify({ token: fields.token, token_type_hint: fields.token_type_hint }),
    contentType: 'application/json', ctx: { clientId: auth.clientId },
  }));
}

// As an identity provider: signs ID tokens with the package's keystore (published at /jwks)
// for the claims a test asks for; `null` removes a default claim (iss, exp, nbf, iat).
async function idToken(res, body) {
  const { claims = {}, expires_in: expiresIn = 3600, alg, kid: wantKid } = body;
  let kid = wantKid;
  if (alg && !kid) kid = oauth.issuer.keys.toJSON().find((k) => k.alg === alg)?.kid;
  if (alg && !kid) return send(res, 400, { error: `no ${alg} key: POST /control/idp/keys first` });
  const token = await oauth.issuer.buildToken({
    kid,
    expiresIn,
    scopesOrTransform: (_header, payload) => {
      for (const [k, v] of Object.entries(claims)) {
        if (v === null) delete payload[k];
        else payload[k] = v;
      }
    },
  });
  return send(res, 200, { token });
}

async function control(req, res, path, body) {
  if (path === '/control/idp/token' && req.method === 'POST') return idToken(res, body);
  if (path === '/control/idp/keys' && req.method === 'POST') {
    // A new signing key, as an IDP rotating its keys publishes one: tokens name it by kid.
    const jwk = await oauth.issuer.keys.generate(body.alg ?? 'RS256', body.kid ? { kid: body.kid } : undefined);
    return send(res, 200, { kid: jwk.kid, alg: jwk.alg });
  }
  if (path === '/control/log' && req.method === 'GET') return send(res, 200, log);
  if (path === '/control/reset' && req.method === 'POST') {
    reset();
    return send(res, 200, { ok: true });
  }
  if (path === '/control/config' && req.method === 'POST') {
    const unknown = Object.keys(body).filter((k) => !(k in DEFAULTS));
    if (unknown.length) return send(res, 400, { error: `unknown config keys: ${unknown.join(', ')}` });
    if ('refresh_script' in body && !Array.isArray(body.refresh_script)) return send(res, 400, { error: 'refresh_script must be an array' });
    Object.assign(cfg, structuredClone(body));
    return send(res, 200, { ok: true, config: cfg });
  }
  send(res, 404, { error: 'not_found' });
}

async function handle(req, res) {
  const url = new URL(req.url, 'http://front.invalid'); // only the path and query matter
  const path = url.pathname;
  let body;
  try {
    body = await readBody(req);
  } catch {
    return send(res, 400, { error: 'invalid_request', error_description: 'unparseable body' });
  }
  if (path.startsWith('/control/')) return control(req, res, path, body);
  if (path === '/api' || path.startsWith('/api/')) {
    const t = liveAccess(req.headers.authorization);
    if (!t) return send(res, 401, { error: 'invalid_token' }, { 'www-authenticate': 'Bearer error="invalid_token"' });
    return send(res, 200, { ok: true, sub: t.sub, scope: t.scopes.join(' '), path });
  }
  if (path === '/authorize' && req.method === 'GET') return authorize(req, res, url);
  if (path === '/token' && req.method === 'POST') return token(req, res, body);
  if (path === '/revoke' && req.method === 'POST') return revoke(req, res, body);
  if (path === '/userinfo' && req.method === 'GET') {
    const r = await forward(req, '/userinfo');
    return relay(res, r, r.status === 401 ? { 'www-authenticate': 'Bearer error="invalid_token"' } : {});
  }
  if (path === '/.well-known/openid-configuration') {
    // The package advertises only its own defaults (auth method "none", no
    // refresh grant); tell discovery clients what this front actually accepts.
    const doc = JSON.parse((await forward(req, path)).text);
    Object.assign(doc, {
      token_endpoint_auth_methods_supported: ['client_secret_basic', 'client_secret_post'],
      grant_types_supported: ['authorization_code', 'refresh_token'],
    });
    return send(res, 200, doc);
  }
  if (path === '/jwks') log.jwks_requests++;
  relay(res, await forward(req, url.pathname + url.search)); // jwks, introspect, endsession

}

// ---- startup -------------------------------------------------------------------------

const argv = process.argv.slice(2);
const portArg = argv.find((a) => a.startsWith('--port='))?.slice(7) ?? argv[argv.indexOf('--port') + 1];
const port = argv.some((a) => a.startsWith('--port')) ? Number(portArg) : 0;
if (!Number.isInteger(port) || port < 0 || port > 65535) {
  console.error(`invalid --port ${portArg}`);
  process.exit(2);
}

const front = createServer((req, res) => {
  handle(req, res).catch((err) => {
    console.error('provider error:', err);
    if (!res.headersSent) send(res, 500, { error: 'server_error' });
    else res.end();
  });
});
await new Promise((resolve, reject) => front.once('error', reject).listen(port, HOST, resolve));
const issuer = `http://${HOST}:${front.address().port}`;
oauth.issuer.url = issuer; // tokens and discovery name the public front, not the private port
await oauth.start(0, HOST);
const innerUrl = `http://${HOST}:${oauth.address().port}`;

const shutdown = () => process.exit(0);
process.on('SIGTERM', shutdown);
process.on('SIGINT', shutdown);
// Only a pipe means "my parent went away when it closes"; /dev/null or a file as
// stdin (e.g. a backgrounded shell job) would otherwise end the process at once.
let stdinIsPipe = false;
try {
  const st = fstatSync(0);
  stdinIsPipe = st.isFIFO() || st.isSocket();
} catch { /* no fd 0 */ }
if (stdinIsPipe) {
  process.stdin.on('end', shutdown).on('close', shutdown).on('error', shutdown).resume();
}

process.stdout.write(`${JSON.stringify({ ready: true, port: front.address().port, issuer })}\n`);
